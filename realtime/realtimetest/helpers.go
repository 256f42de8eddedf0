package realtimetest

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/partyline/partyline/internal/testenv"
	"github.com/partyline/partyline/realtime"
)

// waitFor bounds every wait of the suites. It is generous because a wait
// that succeeds returns as soon as its condition holds.
const waitFor = 10 * time.Second

// name returns a channel or user name no other test uses: prefix, then a
// random suffix.
func name(prefix string) string {
	return fmt.Sprintf("%s_rt%08x", prefix, rand.Uint32())
}

// run starts b.Run with a new Recorder in a goroutine, waits until it
// delivers, and returns the Recorder. The test's cleanup stops Run and
// waits for it to return.
func run(t *testing.T, b realtime.Broker) *Recorder {
	t.Helper()
	rec := NewRecorder()
	testenv.Go(t, "Run", func(ctx context.Context) error { return b.Run(ctx, rec) })
	waitRunning(t, b, rec)
	return rec
}

// waitRunning publishes events on a probe channel until rec receives one,
// which shows that Run is delivering.
func waitRunning(t *testing.T, b realtime.Broker, rec *Recorder) {
	t.Helper()
	ctx := t.Context()
	probe := name("probe:run")
	if err := b.Subscribe(ctx, probe); err != nil {
		t.Fatalf("Subscribe(%q): %v", probe, err)
	}
	testenv.Eventually(t, "the broker's Run to deliver", func() bool {
		if err := b.PublishEvent(ctx, probe, realtime.Publication{Payload: []byte(`{"type":"event"}`)}); err != nil {
			t.Fatalf("PublishEvent(%q): %v", probe, err)
		}
		return rec.Count(probe) > 0
	})
	if err := b.Unsubscribe(ctx, probe); err != nil {
		t.Fatalf("Unsubscribe(%q): %v", probe, err)
	}
}

// subscribe subscribes b to ch or fails the test.
func subscribe(t *testing.T, b realtime.Broker, ch string) {
	t.Helper()
	if err := b.Subscribe(t.Context(), ch); err != nil {
		t.Fatalf("Subscribe(%q): %v", ch, err)
	}
}

// unsubscribe unsubscribes b from ch or fails the test.
func unsubscribe(t *testing.T, b realtime.Broker, ch string) {
	t.Helper()
	if err := b.Unsubscribe(t.Context(), ch); err != nil {
		t.Fatalf("Unsubscribe(%q): %v", ch, err)
	}
}

// pub is a publication in a form cmp.Diff prints readably.
type pub struct {
	Epoch   string
	Offset  uint64
	Payload string
}

func pubsOf(ps []realtime.Publication) []pub {
	out := make([]pub, len(ps))
	for i, p := range ps {
		out[i] = pub{Epoch: p.Epoch, Offset: p.Offset, Payload: string(p.Payload)}
	}
	return out
}
