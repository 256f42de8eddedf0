package loadtest

import (
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// benchMsg is a delivered msg as the server writes it.
func benchMsg(offset uint64, sent int64) string {
	return fmt.Sprintf(`{"type":"msg","channel":"broadcast:bench","offset":%d,"epoch":"e1","id":"01J","kind":"bench","ts":1,"data":{"sent":%d,"pad":"x"}}`, offset, sent)
}

func TestRecorderFrame(t *testing.T) {
	const ms = int64(time.Millisecond)
	w := Window{Start: 1000 * ms, End: 2000 * ms}
	rec := NewRecorder(4)
	rec.SetWindow(w)
	var last uint64 = 10 // from the sub reply
	// Offsets 11 and 12 in one packed frame, both in the window.
	rec.Frame(0, 1500*ms, []byte(benchMsg(11, 1490*ms)+"\n"+benchMsg(12, 1480*ms)), &last)
	// 13 is skipped; 14 was sent before the window.
	rec.Frame(0, 1500*ms, []byte(benchMsg(14, 900*ms)), &last)
	// 14 again, and a gap notice.
	rec.Frame(0, 1600*ms, []byte(benchMsg(14, 1590*ms)+"\n"+`{"type":"gap","channel":"broadcast:bench","epoch":"e1","offset":20}`), &last)
	// A frame with nothing but blank lines is not counted.
	rec.Frame(0, 1600*ms, []byte("\n\n"), &last)
	// Sent at the window's end: outside.
	rec.Frame(0, 2100*ms, []byte(benchMsg(15, 2000*ms)), &last)

	lat, counts := rec.Snapshot()
	wantCounts := Counts{Delivered: 3, Received: 5, Frames: 4, Missing: 1, Duplicates: 1, Gaps: 1}
	if diff := cmp.Diff(wantCounts, counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if got, want := last, uint64(15); got != want {
		t.Errorf("last offset = %d, want %d", got, want)
	}
	if lat.Count != 3 {
		t.Fatalf("latency count = %d, want 3", lat.Count)
	}
	// The latencies are 10, 20 and 10 ms.
	if got, want := lat.P50, 10*time.Millisecond; !near(got, want) {
		t.Errorf("p50 = %s, want %s", got, want)
	}
	if got, want := lat.Max, 20*time.Millisecond; got != want {
		t.Errorf("max = %s, want %s", got, want)
	}
	if got, want := lat.P99, 20*time.Millisecond; !near(got, want) {
		t.Errorf("p99 = %s, want %s", got, want)
	}
}

// near reports whether got is within the histogram's 0.1% of want.
func near(got, want time.Duration) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return d <= want/1000+time.Microsecond
}

func TestRecorderFirstOffsetAndClamps(t *testing.T) {
	rec := NewRecorder(1)
	rec.SetWindow(Window{Start: 0, End: 1 << 62})
	var last uint64                                                                  // no sub reply offset: the first msg sets it
	rec.Frame(0, 100, []byte(benchMsg(500, 200)), &last)                             // received before it was sent: 0
	rec.Frame(0, int64(time.Hour)+1000, []byte(benchMsg(501, 1000)), &last)          // above the range
	rec.Frame(0, 1000, []byte(`{"type":"msg","channel":"c:x","offset":502}`), &last) // no sent: offset only
	lat, counts := rec.Snapshot()
	want := Counts{Delivered: 2, Received: 2, Frames: 3, Overflow: 1}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("counts (-want +got):\n%s", diff)
	}
	if last != 502 {
		t.Errorf("last offset = %d, want 502", last)
	}
	if lat.Max != time.Hour {
		t.Errorf("max = %s, want the exact 1h", lat.Max)
	}
	if !near(lat.P99, 5*time.Minute) {
		t.Errorf("p99 = %s, want the histogram's top, 5m", lat.P99)
	}
}

func TestRecorderConcurrent(t *testing.T) {
	rec := NewRecorder(3)
	rec.SetWindow(Window{Start: 0, End: 1 << 62})
	const readers, frames = 8, 200
	var wg sync.WaitGroup
	for r := range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for i := 1; i <= frames; i++ {
				rec.Frame(r, int64(i)*1000+5000, []byte(benchMsg(uint64(i), int64(i)*1000)), &last)
			}
		}()
	}
	wg.Wait()
	lat, counts := rec.Snapshot()
	if counts.Delivered != readers*frames || counts.Missing != 0 || counts.Duplicates != 0 {
		t.Errorf("counts = %+v, want %d delivered and no missing or duplicates", counts, readers*frames)
	}
	if lat.Max != 5*time.Microsecond {
		t.Errorf("max = %s, want 5µs", lat.Max)
	}
	if got := rec.Counts(); got != counts {
		t.Errorf("Counts() = %+v, Snapshot counts = %+v", got, counts)
	}
}

func TestRecorderBeforeWindow(t *testing.T) {
	rec := NewRecorder(2)
	var last uint64
	join := `{"type":"event","channel":"broadcast:bench","event":"join","user":"u_2"}`
	rec.Frame(1, 2000, []byte(benchMsg(1, 1000)+"\n"+join), &last)
	_, counts := rec.Snapshot()
	want := Counts{Received: 1, Frames: 1, Events: 1}
	if diff := cmp.Diff(want, counts); diff != "" {
		t.Errorf("counts before SetWindow (-want +got):\n%s", diff)
	}
	rec.SetWindow(Window{Start: 0, End: 3000})
	rec.Frame(1, 2000, []byte(benchMsg(2, 1000)), &last)
	if lat, counts := rec.Snapshot(); counts.Delivered != 1 || lat.Count != 1 {
		t.Errorf("after SetWindow: %d delivered, %d latencies; want 1 and 1", counts.Delivered, lat.Count)
	}
}

func TestSnapshotEmpty(t *testing.T) {
	lat, counts := NewRecorder(0).Snapshot()
	if lat != (Latency{}) || counts != (Counts{}) {
		t.Errorf("empty snapshot = %+v, %+v; want zeros", lat, counts)
	}
}

func TestWindow(t *testing.T) {
	w := Window{Start: 10, End: 20}
	for _, tt := range []struct {
		t    int64
		want bool
	}{{9, false}, {10, true}, {19, true}, {20, false}} {
		if got := w.Contains(tt.t); got != tt.want {
			t.Errorf("Contains(%d) = %v, want %v", tt.t, got, tt.want)
		}
	}
	if got := w.Duration(); got != 10 {
		t.Errorf("Duration() = %d, want 10", got)
	}
}

func TestFormatMillis(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0 ms"},
		{412 * time.Microsecond, "0.412 ms"},
		{8130 * time.Microsecond, "8.13 ms"},
		{38400 * time.Microsecond, "38.4 ms"},
		{345 * time.Millisecond, "345 ms"},
		{3100 * time.Millisecond, "3100 ms"},
	}
	for _, tt := range tests {
		if got := FormatMillis(tt.d); got != tt.want {
			t.Errorf("FormatMillis(%s) = %q, want %q", tt.d, got, tt.want)
		}
	}
	s := Latency{Count: 3, P50: time.Millisecond}.String()
	if !strings.Contains(s, "p50 1.00 ms") || !strings.Contains(s, "n=3") {
		t.Errorf("Latency.String() = %q", s)
	}
}
