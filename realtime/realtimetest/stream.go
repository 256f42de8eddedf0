package realtimetest

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
)

// StreamConfig is what a subtest of TestStream needs of the stream it
// builds.
type StreamConfig struct {
	// HistorySize is how many publications each channel keeps. Zero means
	// the implementation's default.
	HistorySize int
	// HistoryTTL is how long a publication is kept. Zero means the
	// implementation's default.
	HistoryTTL time.Duration
	// Now, when set, is the clock the stream must use for history age. An
	// implementation that cannot use an outside clock calls t.Skip in its
	// constructor when Now is set; the suite then still tests age trimming
	// with the real clock. Nil means the real clock.
	Now func() time.Time
}

// TestStream runs the Stream conformance suite. newStream builds a fresh
// Stream for each subtest, configured by cfg, together with the Broker it
// publishes through; it registers its own cleanup with t.Cleanup. The
// suite runs the broker's Run itself, so the broker must not be running.
//
// It checks that offsets start at 1 and are gapless per channel, that
// Current fixes the epoch the next Publish uses, that Since replays exactly
// what was missed or returns ErrUnrecoverable (wrong epoch, future offset,
// history trimmed by count or age), that concurrent publishers get
// gapless offsets and a subscribed Deliverer sees each channel in offset
// order, that only subscribed channels are delivered, and that payload
// bytes come back unchanged.
func TestStream(t *testing.T, newStream func(t *testing.T, cfg StreamConfig) (realtime.Stream, realtime.Broker)) {
	setup := func(t *testing.T, cfg StreamConfig) (realtime.Stream, realtime.Broker, *Recorder) {
		t.Helper()
		s, b := newStream(t, cfg)
		rec := run(t, b)
		t.Cleanup(func() { rec.CheckNoOverlaps(t) })
		return s, b, rec
	}

	t.Run("OffsetsStartAtOneAndAreGapless", func(t *testing.T) {
		s, _, _ := setup(t, StreamConfig{})
		a, b := name("room:a"), name("room:b")
		first := publish(t, s, a, "a1")
		if first.Offset != 1 || first.Epoch == "" {
			t.Fatalf("first Publish on %s = %+v, want offset 1 and an epoch", a, first)
		}
		for i := 2; i <= 10; i++ {
			want := realtime.Position{Epoch: first.Epoch, Offset: uint64(i)}
			if got := publish(t, s, a, fmt.Sprintf("a%d", i)); got != want {
				t.Fatalf("Publish #%d on %s = %+v, want %+v", i, a, got, want)
			}
		}
		if got, want := current(t, s, a), (realtime.Position{Epoch: first.Epoch, Offset: 10}); got != want {
			t.Errorf("Current(%s) = %+v, want %+v", a, got, want)
		}
		if got := publish(t, s, b, "b1"); got.Offset != 1 {
			t.Errorf("first Publish on %s, after 10 on another channel = %+v, want offset 1", b, got)
		}
	})

	t.Run("CurrentThenPublishKeepsEpoch", func(t *testing.T) {
		s, _, _ := setup(t, StreamConfig{})
		ch := name("room:c")
		checkNewChannel(t, s, ch, "Current", current(t, s, ch))
	})

	t.Run("SinceReturnsTheMissedPublications", func(t *testing.T) {
		s, _, _ := setup(t, StreamConfig{HistorySize: 100})
		ch := name("room:s")
		want := publishN(t, s, ch, 5)
		epoch := want[0].Epoch
		for _, from := range []uint64{0, 1, 2, 4, 5} {
			pubs, cur := since(t, s, ch, realtime.Position{Epoch: epoch, Offset: from})
			if diff := cmp.Diff(want[from:], pubsOf(pubs)); diff != "" {
				t.Errorf("Since offset %d: publications (-want +got):\n%s", from, diff)
			}
			if cur != (realtime.Position{Epoch: epoch, Offset: 5}) {
				t.Errorf("Since offset %d: current = %+v, want offset 5 of %s", from, cur, epoch)
			}
		}
	})

	t.Run("SinceOnNewChannel", func(t *testing.T) {
		s, _, _ := setup(t, StreamConfig{})
		ch := name("room:n")
		cur := sinceUnrecoverable(t, s, ch, realtime.Position{Epoch: "nope", Offset: 3})
		if pubs, _ := since(t, s, ch, cur); len(pubs) != 0 {
			t.Errorf("Since(current) = %v, want none", pubsOf(pubs))
		}
		checkNewChannel(t, s, ch, "Since", cur)
	})

	t.Run("SinceUnrecoverable", func(t *testing.T) {
		s, _, _ := setup(t, StreamConfig{HistorySize: 3})
		ch := name("room:u")
		all := publishN(t, s, ch, 10)
		epoch := all[0].Epoch
		want := realtime.Position{Epoch: epoch, Offset: 10}
		for _, tc := range []struct {
			name string
			from realtime.Position
		}{
			{"OtherEpoch", realtime.Position{Epoch: epoch + "x", Offset: 9}},
			{"NoEpoch", realtime.Position{}},
			{"AheadOfStream", realtime.Position{Epoch: epoch, Offset: 11}},
			{"FarAhead", realtime.Position{Epoch: epoch, Offset: 1 << 40}},
			{"Trimmed", realtime.Position{Epoch: epoch, Offset: 6}},
			{"FromStart", realtime.Position{Epoch: epoch, Offset: 0}},
		} {
			t.Run(tc.name, func(t *testing.T) {
				if cur := sinceUnrecoverable(t, s, ch, tc.from); cur != want {
					t.Errorf("current = %+v, want %+v", cur, want)
				}
			})
		}
		// The oldest position that can still be served.
		pubs, _ := since(t, s, ch, realtime.Position{Epoch: epoch, Offset: 7})
		if diff := cmp.Diff(all[7:], pubsOf(pubs)); diff != "" {
			t.Errorf("Since offset 7 with 3 retained (-want +got):\n%s", diff)
		}
	})

	t.Run("CountTrimming", func(t *testing.T) {
		s, _, _ := setup(t, StreamConfig{HistorySize: 5})
		ch := name("room:t")
		all := publishN(t, s, ch, 12)
		epoch := all[0].Epoch
		pubs, _ := since(t, s, ch, realtime.Position{Epoch: epoch, Offset: 7})
		if diff := cmp.Diff(all[7:], pubsOf(pubs)); diff != "" {
			t.Errorf("Since offset 7 (-want +got):\n%s", diff)
		}
		sinceUnrecoverable(t, s, ch, realtime.Position{Epoch: epoch, Offset: 6})
		all = append(all, pubOf(publishPayload(t, s, ch, "p13")))
		sinceUnrecoverable(t, s, ch, realtime.Position{Epoch: epoch, Offset: 7})
		pubs, _ = since(t, s, ch, realtime.Position{Epoch: epoch, Offset: 8})
		if diff := cmp.Diff(all[8:], pubsOf(pubs)); diff != "" {
			t.Errorf("Since offset 8 after a 13th publication (-want +got):\n%s", diff)
		}
	})

	t.Run("AgeTrimmingInjectedClock", func(t *testing.T) {
		clk := testenv.NewClock(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
		s, _, _ := setup(t, StreamConfig{HistorySize: 100, HistoryTTL: time.Minute, Now: clk.Now})
		ch := name("room:age")
		all := publishN(t, s, ch, 3) // offsets 1-3 at 0s
		epoch := all[0].Epoch
		clk.Add(30 * time.Second)
		all = append(all, pubOf(publishPayload(t, s, ch, "p4")), pubOf(publishPayload(t, s, ch, "p5")))
		// At 70s, offsets 1-3 are too old.
		clk.Add(40 * time.Second)
		pubs, _ := since(t, s, ch, realtime.Position{Epoch: epoch, Offset: 3})
		if diff := cmp.Diff(all[3:], pubsOf(pubs)); diff != "" {
			t.Errorf("at 70s, Since offset 3 (-want +got):\n%s", diff)
		}
		sinceUnrecoverable(t, s, ch, realtime.Position{Epoch: epoch, Offset: 2})
		clk.Add(10 * time.Second)
		all = append(all, pubOf(publishPayload(t, s, ch, "p6")))
		// At 100s, offsets 4 and 5 are too old, and 6 is 20s old.
		clk.Add(20 * time.Second)
		pubs, cur := since(t, s, ch, realtime.Position{Epoch: epoch, Offset: 5})
		if diff := cmp.Diff(all[5:], pubsOf(pubs)); diff != "" {
			t.Errorf("at 100s, Since offset 5 (-want +got):\n%s", diff)
		}
		if want := (realtime.Position{Epoch: epoch, Offset: 6}); cur != want {
			t.Errorf("at 100s, current = %+v, want %+v", cur, want)
		}
		sinceUnrecoverable(t, s, ch, realtime.Position{Epoch: epoch, Offset: 4})
	})

	t.Run("AgeTrimmingRealClock", func(t *testing.T) {
		const ttl = 300 * time.Millisecond
		s, _, _ := setup(t, StreamConfig{HistorySize: 100, HistoryTTL: ttl})
		ch := name("room:agereal")
		start := time.Now()
		pos := publish(t, s, ch, "old")
		from := realtime.Position{Epoch: pos.Epoch, Offset: 0}
		pubs, _, err := s.Since(t.Context(), ch, from)
		if time.Since(start) < ttl/2 { // otherwise a slow machine may have aged it out already
			if err != nil || len(pubs) != 1 {
				t.Fatalf("Since right after Publish = %d publications, %v; want 1, nil", len(pubs), err)
			}
		}
		testenv.Eventually(t, "the publication to age out of history", func() bool {
			_, _, err := s.Since(t.Context(), ch, from)
			if err != nil && !errors.Is(err, realtime.ErrUnrecoverable) {
				t.Fatalf("Since: %v", err)
			}
			return err != nil
		})
	})

	t.Run("ConcurrentPublishersOneChannel", func(t *testing.T) {
		const goroutines, each = 16, 200
		s, b, rec := setup(t, StreamConfig{HistorySize: goroutines * each})
		ch := name("room:conc")
		subscribe(t, b, ch)
		payloadAt := concurrentPublish(t, s, goroutines, each, func(g, i int) string { return ch })
		checkChannel(t, s, rec, ch, payloadAt[ch], goroutines*each)
	})

	t.Run("ConcurrentPublishersManyChannels", func(t *testing.T) {
		const goroutines, each, channels = 16, 200, 8
		s, b, rec := setup(t, StreamConfig{HistorySize: goroutines * each})
		chs := make([]string, channels)
		for i := range chs {
			chs[i] = name(fmt.Sprintf("room:many%d", i))
			subscribe(t, b, chs[i])
		}
		payloadAt := concurrentPublish(t, s, goroutines, each, func(g, i int) string { return chs[(g+i)%channels] })
		for _, ch := range chs {
			checkChannel(t, s, rec, ch, payloadAt[ch], goroutines*each/channels)
		}
	})

	t.Run("DeliversOnlySubscribedChannels", func(t *testing.T) {
		s, b, rec := setup(t, StreamConfig{})
		ch, other := name("room:sub"), name("room:other")
		publish(t, s, ch, "before subscribe")
		publish(t, s, other, "never subscribed")
		subscribe(t, b, ch)
		subscribe(t, b, ch) // idempotent: still one delivery per publication
		p2 := publish(t, s, ch, "subscribed")
		testenv.Eventually(t, "the delivery of offset 2", func() bool { return rec.Count(ch) >= 1 })
		unsubscribe(t, b, ch) // once undoes both subscribes
		publish(t, s, ch, "unsubscribed")
		unsubscribe(t, b, ch) // idempotent
		subscribe(t, b, ch)
		p4 := publish(t, s, ch, "subscribed again")
		testenv.Eventually(t, "the delivery of offset 4", func() bool {
			got := rec.Got(ch)
			return len(got) > 0 && got[len(got)-1].Offset >= 4
		})
		want := []pub{
			{Epoch: p2.Epoch, Offset: 2, Payload: "subscribed"},
			{Epoch: p4.Epoch, Offset: 4, Payload: "subscribed again"},
		}
		if diff := cmp.Diff(want, pubsOf(rec.Got(ch))); diff != "" {
			t.Errorf("deliveries on %s (-want +got):\n%s", ch, diff)
		}
		// other's publication would have arrived before this one.
		subscribe(t, b, other)
		publish(t, s, other, "sentinel")
		testenv.Eventually(t, "the sentinel", func() bool { return rec.Count(other) >= 1 })
		if got := pubsOf(rec.Got(other)); len(got) != 1 || got[0].Offset != 2 {
			t.Errorf("deliveries on %s = %+v, want only offset 2", other, got)
		}
	})

	t.Run("PayloadRoundTrip", func(t *testing.T) {
		s, b, rec := setup(t, StreamConfig{HistorySize: 100})
		ch := name("room:bytes")
		subscribe(t, b, ch)
		all := make([]byte, 256)
		for i := range all {
			all[i] = byte(i)
		}
		payloads := [][]byte{
			{},
			[]byte(`"id":"01JD8X","kind":"message","from":"u_1","ts":1732760000123,"data":{"text":"gg é ✓ 🎮 \"q\" \\ \n"}`),
			all,
			bytes.Repeat([]byte("0123456789abcdef"), 4096), // 64 KiB
			[]byte(`"id":"x"`),
		}
		var first realtime.Position
		for i, p := range payloads {
			buf := bytes.Clone(p)
			pos, err := s.Publish(t.Context(), ch, buf)
			if err != nil {
				t.Fatalf("Publish #%d: %v", i+1, err)
			}
			if i == 0 {
				first = pos
			}
			for j := range buf { // the caller may reuse its buffer
				buf[j] = '!'
			}
		}
		check := func(what string, got []realtime.Publication) {
			t.Helper()
			if len(got) != len(payloads) {
				t.Fatalf("%s: %d publications, want %d", what, len(got), len(payloads))
			}
			for i, p := range got {
				if !bytes.Equal(p.Payload, payloads[i]) {
					t.Errorf("%s: payload #%d = %.60q (%d bytes), want %.60q (%d bytes)",
						what, i+1, p.Payload, len(p.Payload), payloads[i], len(payloads[i]))
				}
			}
		}
		testenv.Eventually(t, "every delivery", func() bool { return rec.Count(ch) >= len(payloads) })
		check("deliveries", rec.Got(ch))
		pubs, _ := since(t, s, ch, realtime.Position{Epoch: first.Epoch})
		check("Since", pubs)
	})
}

// publish publishes payload on ch or fails the test.
func publish(t *testing.T, s realtime.Stream, ch, payload string) realtime.Position {
	t.Helper()
	pos, err := s.Publish(t.Context(), ch, []byte(payload))
	if err != nil {
		t.Fatalf("Publish(%q): %v", ch, err)
	}
	return pos
}

// published is a publication's position with its payload.
type published struct {
	realtime.Position
	payload string
}

func publishPayload(t *testing.T, s realtime.Stream, ch, payload string) published {
	t.Helper()
	return published{publish(t, s, ch, payload), payload}
}

func pubOf(p published) pub {
	return pub{Epoch: p.Epoch, Offset: p.Offset, Payload: p.payload}
}

// publishN publishes payloads p1 through pn on ch and returns them as
// publications, checking that their offsets are 1 through n.
func publishN(t *testing.T, s realtime.Stream, ch string, n int) []pub {
	t.Helper()
	out := make([]pub, n)
	for i := range out {
		out[i] = pubOf(publishPayload(t, s, ch, fmt.Sprintf("p%d", i+1)))
		if out[i].Offset != uint64(i+1) || out[i].Epoch != out[0].Epoch {
			t.Fatalf("Publish #%d on %s = %+v, want offset %d of epoch %q", i+1, ch, out[i], i+1, out[0].Epoch)
		}
	}
	return out
}

// current returns ch's position or fails the test.
func current(t *testing.T, s realtime.Stream, ch string) realtime.Position {
	t.Helper()
	pos, err := s.Current(t.Context(), ch)
	if err != nil {
		t.Fatalf("Current(%q): %v", ch, err)
	}
	return pos
}

// since calls Since and fails the test if it returns an error.
func since(t *testing.T, s realtime.Stream, ch string, from realtime.Position) ([]realtime.Publication, realtime.Position) {
	t.Helper()
	pubs, cur, err := s.Since(t.Context(), ch, from)
	if err != nil {
		t.Fatalf("Since(%q, %+v): %v", ch, from, err)
	}
	return pubs, cur
}

// sinceUnrecoverable calls Since, fails the test unless it returns
// ErrUnrecoverable, and returns the current position it reported.
func sinceUnrecoverable(t *testing.T, s realtime.Stream, ch string, from realtime.Position) realtime.Position {
	t.Helper()
	pubs, cur, err := s.Since(t.Context(), ch, from)
	if !errors.Is(err, realtime.ErrUnrecoverable) {
		t.Fatalf("Since(%q, %+v) = %d publications, error %v; want ErrUnrecoverable", ch, from, len(pubs), err)
	}
	return cur
}

// concurrentPublish runs goroutines publishers that each publish each
// payloads, the i-th of publisher g on channel chOf(g, i). It checks that
// one publisher's offsets on a channel increase, and returns each
// channel's payloads by offset.
func concurrentPublish(t *testing.T, s realtime.Stream, goroutines, each int, chOf func(g, i int) string) map[string]map[realtime.Position]string {
	t.Helper()
	var (
		mu        sync.Mutex
		payloadAt = make(map[string]map[realtime.Position]string)
		wg        sync.WaitGroup
	)
	for g := range goroutines {
		wg.Go(func() {
			last := make(map[string]uint64)
			for i := range each {
				ch, payload := chOf(g, i), fmt.Sprintf("g%02d-%03d", g, i)
				pos, err := s.Publish(t.Context(), ch, []byte(payload))
				if err != nil {
					t.Errorf("publisher %d: Publish(%q): %v", g, ch, err)
					return
				}
				if pos.Offset <= last[ch] {
					t.Errorf("publisher %d: offset %d on %s after its own %d", g, pos.Offset, ch, last[ch])
				}
				last[ch] = pos.Offset
				mu.Lock()
				if payloadAt[ch] == nil {
					payloadAt[ch] = make(map[realtime.Position]string)
				}
				if prev, dup := payloadAt[ch][pos]; dup {
					t.Errorf("%s: position %+v given to %q and %q", ch, pos, prev, payload)
				}
				payloadAt[ch][pos] = payload
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return payloadAt
}

// checkChannel checks that ch's publications, returned by Publish as
// payloadAt, are offsets 1 through n of one epoch, and that the Deliverer
// and Since both saw exactly them in offset order.
func checkChannel(t *testing.T, s realtime.Stream, rec *Recorder, ch string, payloadAt map[realtime.Position]string, n int) {
	t.Helper()
	var epoch string
	for pos := range payloadAt {
		epoch = pos.Epoch
		break
	}
	want := make([]pub, n)
	for i := range want {
		pos := realtime.Position{Epoch: epoch, Offset: uint64(i + 1)}
		payload, ok := payloadAt[pos]
		if !ok {
			t.Fatalf("%s: no publication got position %+v", ch, pos)
		}
		want[i] = pub{Epoch: epoch, Offset: pos.Offset, Payload: payload}
	}
	if len(payloadAt) != n {
		offsets := make([]string, 0, len(payloadAt))
		for pos := range payloadAt {
			offsets = append(offsets, fmt.Sprintf("%s/%d", pos.Epoch, pos.Offset))
		}
		slices.Sort(offsets)
		t.Fatalf("%s: %d positions, want %d: %s", ch, len(payloadAt), n, strings.Join(offsets, " "))
	}
	testenv.Eventually(t, fmt.Sprintf("%d deliveries on %s", n, ch), func() bool { return rec.Count(ch) >= n })
	if diff := cmp.Diff(want, pubsOf(rec.Got(ch))); diff != "" {
		t.Errorf("%s: deliveries (-want +got):\n%s", ch, diff)
	}
	pubs, _ := since(t, s, ch, realtime.Position{Epoch: epoch})
	if diff := cmp.Diff(want, pubsOf(pubs)); diff != "" {
		t.Errorf("%s: Since offset 0 (-want +got):\n%s", ch, diff)
	}
}

// checkNewChannel checks cur, the position what gave for ch, a channel
// nothing was published on: it is offset 0 of an epoch, Current agrees,
// and the first Publish continues that epoch at offset 1.
func checkNewChannel(t *testing.T, s realtime.Stream, ch, what string, cur realtime.Position) {
	t.Helper()
	if cur.Offset != 0 || cur.Epoch == "" {
		t.Fatalf("%s on a new channel = %+v, want offset 0 and an epoch", what, cur)
	}
	if got := current(t, s, ch); got != cur {
		t.Fatalf("Current after %s = %+v, want %+v", what, got, cur)
	}
	want := realtime.Position{Epoch: cur.Epoch, Offset: 1}
	if got := publish(t, s, ch, "x"); got != want {
		t.Fatalf("Publish after %s = %+v, want %+v", what, got, want)
	}
	if got := current(t, s, ch); got != want {
		t.Errorf("Current after Publish = %+v, want %+v", got, want)
	}
}
