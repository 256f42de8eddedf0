package executor

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/partyline/partyline/loadtest/metrics"
)

// VU is a virtual user: the state one scenario keeps between the
// iterations that the executor runs on it. A VU runs one iteration at a
// time.
type VU struct {
	// ID is unique within the scenario's run, from 1.
	ID int64
	// Iteration counts the iterations this VU started, from 0 for the one
	// now running.
	Iteration int64
	// Scheduled is when the running iteration was meant to start. The
	// arrival-rate executors set it from the schedule, so a late start
	// shows in latencies measured from it instead of being hidden; the
	// others set it to the actual start.
	Scheduled time.Time
	// State is the scenario's own, such as the VU's connection.
	State any
	// Ending is closed when the executor will start no more iterations on
	// this VU: at the end of the duration, or when ramping-vus retires it.
	// An iteration that holds something open until the end, such as an
	// idle connection, returns on it instead of waiting for the graceful
	// stop to cancel it.
	Ending <-chan struct{}
}

// Options configures one scenario's run.
type Options struct {
	// Scenario names the scenario; it tags the executor's metrics.
	Scenario string
	Config   Config
	// Iterate runs one iteration on vu. ctx ends when the iteration must
	// stop: at the end of the graceful stop, or when the run is aborted.
	// Required.
	Iterate func(ctx context.Context, vu *VU) error
	// Retire releases a VU's state when it will run no more iterations.
	// Nil means nothing to release.
	Retire func(vu *VU)
	// OnError receives the errors of iterations. Nil means they are only
	// counted.
	OnError func(vu *VU, err error)
	// Registry receives the metrics iterations, iteration_duration,
	// dropped_iterations, vus and vus_max. Required.
	Registry *metrics.Registry
	// Clock is the time source. Nil means the wall clock.
	Clock Clock
}

// Result counts what a run did.
type Result struct {
	Iterations  int64 // completed iterations
	Interrupted int64 // iterations cut by the end of the graceful stop
	Dropped     int64 // arrival-rate iterations that found no free VU
	Errors      int64 // iterations that returned an error
	MaxVUs      int64 // the most VUs allocated
}

// run is one scenario's state while it runs.
type run struct {
	o      *Options
	clock  Clock
	tags   metrics.Tags
	iters  *metrics.Handle
	dur    *metrics.Handle
	drops  *metrics.Handle
	errs   *metrics.Handle
	vus    *metrics.Handle
	vusMax *metrics.Handle

	active, allocated atomic.Int64
	res               Result
	resMu             sync.Mutex
	nextID            atomic.Int64
}

// Run runs the scenario's executor to its end: it waits for StartTime,
// runs iterations as the executor says, lets running iterations finish
// within the graceful stop, retires every VU and returns. It returns early,
// with ctx's error, when ctx is done; running iterations are cancelled then.
func Run(ctx context.Context, o Options) (Result, error) {
	if o.Iterate == nil || o.Registry == nil {
		return Result{}, errors.New("executor: Iterate and Registry are required")
	}
	if err := o.Config.Validate(); err != nil {
		return Result{}, err
	}
	if o.Clock == nil {
		o.Clock = RealClock{}
	}
	tags := metrics.Tags{"scenario": o.Scenario}
	r := &run{
		o: &o, clock: o.Clock, tags: tags,
		iters:  o.Registry.Counter("iterations").With(tags),
		dur:    o.Registry.Trend("iteration_duration", true).With(tags),
		drops:  o.Registry.Counter("dropped_iterations").With(tags),
		errs:   o.Registry.Counter("iteration_errors").With(tags),
		vus:    o.Registry.Gauge("vus").With(tags),
		vusMax: o.Registry.Gauge("vus_max").With(tags),
	}
	r.vus.Set(0)
	r.vusMax.Set(0)
	start := o.Clock.Now().Add(time.Duration(o.Config.StartTime))
	if !o.Clock.SleepUntil(ctx, start) {
		return Result{}, ctx.Err()
	}
	// Two contexts: starting stops at the end of the duration, running
	// iterations are cancelled a graceful stop later.
	iterCtx, cancelIters := context.WithCancel(ctx)
	defer cancelIters()
	startCtx, stopStarting := context.WithCancel(iterCtx)
	defer stopStarting()
	end := start.Add(o.Config.TotalDuration())
	graceful := func() {
		if o.Clock.SleepUntil(iterCtx, end.Add(o.Config.gracefulStop())) {
			cancelIters()
		}
	}
	if ex := o.Config.Executor; ex != ConstantArrivalRate && ex != RampingArrivalRate {
		go func() {
			if o.Clock.SleepUntil(startCtx, end) {
				stopStarting()
			}
			graceful()
		}()
	}
	switch o.Config.Executor {
	case ConstantVUs:
		r.runVUs(startCtx, iterCtx, o.Config.VUs, func(*VU) bool { return true })
	case PerVUIterations:
		n := o.Config.Iterations
		r.runVUs(startCtx, iterCtx, o.Config.VUs, func(vu *VU) bool { return vu.Iteration < n })
	case SharedIterations:
		var left atomic.Int64
		left.Store(o.Config.Iterations)
		r.runVUs(startCtx, iterCtx, o.Config.VUs, func(*VU) bool { return left.Add(-1) >= 0 })
	case RampingVUs:
		r.rampVUs(startCtx, iterCtx, start)
	case ConstantArrivalRate, RampingArrivalRate:
		// The schedule itself ends the starting, so that only one
		// goroutine waits on the clock at a time.
		r.arrivals(startCtx, iterCtx, start, end, func() {
			stopStarting()
			go graceful()
		})
	}
	r.resMu.Lock()
	res := r.res
	r.resMu.Unlock()
	res.MaxVUs = r.allocated.Load()
	r.vus.Set(0)
	if err := ctx.Err(); err != nil {
		return res, err
	}
	return res, nil
}

func (r *run) newVU() *VU {
	n := r.allocated.Add(1)
	r.vusMax.Set(float64(n))
	return &VU{ID: r.nextID.Add(1)}
}

func (r *run) retire(vu *VU) {
	if r.o.Retire != nil {
		r.o.Retire(vu)
	}
}

// iterate runs one iteration of vu and records it.
func (r *run) iterate(ctx context.Context, vu *VU, scheduled time.Time) {
	vu.Scheduled = scheduled
	began := r.clock.Now()
	err := r.o.Iterate(ctx, vu)
	vu.Iteration++
	r.resMu.Lock()
	defer r.resMu.Unlock()
	switch {
	case ctx.Err() != nil:
		r.res.Interrupted++
	case err != nil:
		r.res.Errors++
		r.errs.Add(1)
		if r.o.OnError != nil {
			r.o.OnError(vu, err)
		}
	default:
		r.res.Iterations++
		r.iters.Add(1)
		r.dur.Observe(r.clock.Now().Sub(began))
	}
}

// runVUs runs n VUs that loop while more says so and starting is allowed.
func (r *run) runVUs(startCtx, iterCtx context.Context, n int64, more func(*VU) bool) {
	var wg sync.WaitGroup
	for range n {
		vu := r.newVU()
		vu.Ending = startCtx.Done()
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.retire(vu)
			r.vus.Set(float64(r.active.Add(1)))
			defer func() { r.vus.Set(float64(r.active.Add(-1))) }()
			for startCtx.Err() == nil && more(vu) {
				r.iterate(iterCtx, vu, r.clock.Now())
			}
		}()
	}
	wg.Wait()
}

// rampVUs runs ramping-vus: the number of looping VUs follows the stages
// linearly. A VU that is ramped down finishes its iteration within the
// graceful ramp-down and is then cancelled.
func (r *run) rampVUs(startCtx, iterCtx context.Context, start time.Time) {
	type slot struct {
		vu     *VU
		stop   context.CancelFunc // ends its loop after the iteration
		cancel context.CancelFunc // cuts its iteration
	}
	var (
		wg    sync.WaitGroup
		slots []*slot
	)
	target := func(at time.Duration) int64 {
		prev := r.o.Config.StartVUs
		for _, st := range r.o.Config.Stages {
			d := time.Duration(st.Duration)
			if at < d {
				if d == 0 {
					return st.Target
				}
				f := float64(at) / float64(d)
				return prev + int64(f*float64(st.Target-prev))
			}
			at -= d
			prev = st.Target
		}
		return prev
	}
	grace := r.o.Config.gracefulRampDown()
	const step = 100 * time.Millisecond
	for at := time.Duration(0); startCtx.Err() == nil; at += step {
		want := target(at)
		for int64(len(slots)) < want {
			loopCtx, stop := context.WithCancel(startCtx)
			runCtx, cancel := context.WithCancel(iterCtx)
			s := &slot{vu: r.newVU(), stop: stop, cancel: cancel}
			s.vu.Ending = loopCtx.Done()
			slots = append(slots, s)
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer r.retire(s.vu)
				defer cancel()
				r.vus.Set(float64(r.active.Add(1)))
				defer func() { r.vus.Set(float64(r.active.Add(-1))) }()
				for loopCtx.Err() == nil {
					r.iterate(runCtx, s.vu, r.clock.Now())
				}
			}()
		}
		for int64(len(slots)) > want {
			s := slots[len(slots)-1]
			slots = slots[:len(slots)-1]
			s.stop()
			time.AfterFunc(grace, s.cancel)
		}
		if !r.clock.SleepUntil(startCtx, start.Add(at+step)) {
			break
		}
	}
	for _, s := range slots {
		s.stop()
	}
	wg.Wait()
}

// arrivals runs the arrival-rate executors: iterations start on the
// schedule, each on a free VU; with none free a new VU is allocated up to
// maxVUs, and past that the iteration is dropped and counted.
func (r *run) arrivals(startCtx, iterCtx context.Context, start, end time.Time, ended func()) {
	sched := newSchedule(&r.o.Config)
	idle := make(chan *VU, r.o.Config.MaxVUs)
	var wg sync.WaitGroup
	work := map[*VU]chan time.Time{}
	spawn := func() *VU {
		vu := r.newVU()
		vu.Ending = startCtx.Done()
		ch := make(chan time.Time, 1)
		work[vu] = ch
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer r.retire(vu)
			for t := range ch {
				r.vus.Set(float64(r.active.Add(1)))
				r.iterate(iterCtx, vu, t)
				r.vus.Set(float64(r.active.Add(-1)))
				idle <- vu
			}
		}()
		return vu
	}
	for range r.o.Config.PreAllocatedVUs {
		idle <- spawn()
	}
	for n := int64(0); ; n++ {
		off, ok := sched.offset(n)
		if !ok {
			break
		}
		at := start.Add(off)
		if !at.Before(end) || !r.clock.SleepUntil(startCtx, at) {
			break
		}
		select {
		case vu := <-idle:
			work[vu] <- at
			continue
		default:
		}
		if r.allocated.Load() < r.o.Config.MaxVUs {
			vu := spawn()
			work[vu] <- at
			continue
		}
		r.resMu.Lock()
		r.res.Dropped++
		r.resMu.Unlock()
		r.drops.Add(1)
	}
	ended()
	for _, ch := range work {
		close(ch)
	}
	wg.Wait()
}
