package loadtest

import (
	"context"
	"encoding/json"
	"sync/atomic"
	"testing"
	"time"
)

func TestAppendPublishBody(t *testing.T) {
	const sent = int64(1795834788123456789)
	body := appendPublishBody(nil, "broadcast:bench", sent, padFor(64))
	var got struct {
		Channel string          `json:"channel"`
		Kind    string          `json:"kind"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatalf("body %s: %v", body, err)
	}
	if got.Channel != "broadcast:bench" || got.Kind != BenchKind {
		t.Errorf("channel, kind = %q, %q", got.Channel, got.Kind)
	}
	if len(got.Data) != 64 {
		t.Errorf("data is %d bytes, want 64: %s", len(got.Data), got.Data)
	}
	var data struct {
		Sent int64 `json:"sent"`
	}
	if err := json.Unmarshal(got.Data, &data); err != nil || data.Sent != sent {
		t.Errorf("data.sent = %d (%v), want %d", data.Sent, err, sent)
	}
	// What the server will deliver must scan back to the same time.
	msg := `{"type":"msg","channel":"broadcast:bench","offset":1,"epoch":"e","id":"x","kind":"bench","ts":1,"data":` + string(got.Data) + `}`
	if s := scanMessage([]byte(msg)); !s.hasSent || s.sent != sent {
		t.Errorf("scanMessage of the delivery = %+v, want sent %d", s, sent)
	}
}

func TestPadForSmall(t *testing.T) {
	if got := padFor(10); got != "" {
		t.Errorf("padFor(10) = %q, want none", got)
	}
}

func TestPace(t *testing.T) {
	var calls atomic.Int64
	seen := make([]atomic.Bool, 1000)
	start := time.Now()
	st := Pace(context.Background(), 200, start.Add(500*time.Millisecond), 2, func(_ context.Context, seq int64) {
		calls.Add(1)
		seen[seq].Store(true)
	})
	if st.Skipped != 0 {
		t.Errorf("skipped %d with idle workers", st.Skipped)
	}
	// 200/s over 0.5 s is 100 calls, the first at once; allow a slow
	// machine's last tick to come late.
	if got := calls.Load(); got != st.Issued || got < 50 || got > 101 {
		t.Errorf("calls = %d, issued = %d; want about 100", got, st.Issued)
	}
	for i := range st.Issued {
		if !seen[i].Load() {
			t.Fatalf("sequence %d never ran", i)
		}
	}
}

func TestPaceSkipsWhenBehind(t *testing.T) {
	// The only worker is stuck on its first call until a little after the
	// pacer's deadline, so the queue fills up and the rest is skipped.
	deadline := time.Now().Add(300 * time.Millisecond)
	ctx, cancel := context.WithDeadline(context.Background(), deadline.Add(50*time.Millisecond))
	defer cancel()
	var once atomic.Bool
	st := Pace(context.Background(), 1000, deadline, 1, func(context.Context, int64) {
		if once.CompareAndSwap(false, true) {
			<-ctx.Done()
		}
	})
	if st.Skipped == 0 {
		t.Errorf("nothing skipped with the only worker blocked: %+v", st)
	}
}

func TestPaceStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	st := Pace(ctx, 10, time.Now().Add(time.Hour), 1, func(context.Context, int64) {})
	if st.Issued > 1 {
		t.Errorf("issued %d after cancel, want at most the first", st.Issued)
	}
}
