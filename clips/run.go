package clips

import (
	"context"
	"errors"
	"sync"
	"time"
)

// expirySweep is how often Run removes expired resumable uploads.
const expirySweep = 10 * time.Minute

// Run does the work off the request path until ctx ends: processing of
// uploaded clips (Options.ProcessWorkers goroutines), the clip.stats loop
// that coalesces counter changes, the clip.new fan-out, and the expiry of
// abandoned resumable uploads. At start it queues the clips a previous run
// left processing. It returns nil once ctx has ended and every goroutine
// it started has returned; a clip being processed then stays processing
// and is resumed by the next Run. Run may be called once.
func (s *Service) Run(ctx context.Context) error {
	if !s.running.CompareAndSwap(false, true) {
		return errors.New("clips: Run called twice")
	}
	if s.ffprobe == "" {
		s.log.Warn("clip processing is limited: ffprobe and ffmpeg are not in use, so clips become ready with unknown duration and no thumbnail")
	}
	var wg sync.WaitGroup
	spawn := func(f func(context.Context)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f(ctx)
		}()
	}
	spawn(s.resume)
	for range s.opts.ProcessWorkers {
		spawn(s.processLoop)
	}
	spawn(s.statsLoop)
	spawn(s.fanoutLoop)
	if s.tus != nil {
		spawn(s.expireLoop)
	}
	wg.Wait()
	return nil
}

// expireLoop removes abandoned resumable uploads now and then.
func (s *Service) expireLoop(ctx context.Context) {
	t := time.NewTicker(expirySweep)
	defer t.Stop()
	for {
		if n := s.tus.expire(s.opts.UploadExpiry); n > 0 {
			s.log.Info("expired resumable uploads removed", "count", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
