package testenv

import (
	"context"
	"sync"
	"testing"
	"time"
)

// StopWait is how long a stop from Go waits for its function to return.
const StopWait = 30 * time.Second

// Go calls run on a new goroutine with a context that ends when stop is
// called, and returns stop. Stop cancels that context and waits for run to
// return; it fails the test if run returns an error or takes longer than
// StopWait. The test's cleanup calls stop too; calls after the first do
// nothing. What names run in the failures, as "Run" or "Presence.Run".
func Go(tb testing.TB, what string, run func(ctx context.Context) error) (stop func()) {
	tb.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-errc:
				if err != nil {
					tb.Errorf("%s: %v", what, err)
				}
			case <-time.After(StopWait):
				tb.Errorf("%s did not return within %v of its context ending", what, StopWait)
			}
		})
	}
	tb.Cleanup(stop)
	return stop
}
