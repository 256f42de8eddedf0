package executor

import (
	"context"
	"time"
)

// Clock is the executor's time source. The arrival-rate executors
// schedule every iteration against it, so a test can run them on a fake
// clock and check that iterations start at their intended times.
type Clock interface {
	Now() time.Time
	// SleepUntil returns true at t, or false as soon as ctx is done.
	SleepUntil(ctx context.Context, t time.Time) bool
}

// RealClock is the wall clock.
type RealClock struct{}

// Now returns time.Now().
func (RealClock) Now() time.Time { return time.Now() }

// SleepUntil sleeps until t or ctx is done.
func (RealClock) SleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
