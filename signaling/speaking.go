package signaling

import (
	"slices"
	"sync/atomic"
	"time"

	"github.com/partyline/partyline/realtime/wire"
)

// levelMeter smooths a participant's audio levels. observe runs on the
// participant's uplink reader alone; loudAt is read by the room's actor.
type levelMeter struct {
	smooth    int32 // -dBov in 1/256ths, exponentially smoothed
	threshold int32
	loudAt    atomic.Int64 // Unix ns of the last smoothed level at or above the threshold
}

func (l *levelMeter) init(threshold int) { l.smooth, l.threshold = 127<<8, int32(threshold)<<8 }

// observe folds one packet's level in. A quarter weight per 20 ms packet
// follows speech within about 60 ms and rides over single-packet spikes.
func (l *levelMeter) observe(level int, now time.Time) {
	l.smooth += (int32(level)<<8 - l.smooth) >> 2
	if l.smooth <= l.threshold {
		l.loudAt.Store(now.UnixNano())
	}
}

// checkSpeaking publishes the set of speakers when it changed. It runs on
// the actor every SpeakingInterval, so events go out at most that often.
func (r *room) checkSpeaking(now time.Time) {
	hold := r.v.opts.SpeakingHold.Nanoseconds()
	var set []string
	for _, p := range r.parts {
		at := p.level.loudAt.Load()
		if at != 0 && now.UnixNano()-at < hold && !p.muted.Load() {
			set = append(set, p.user)
		}
	}
	slices.Sort(set)
	if slices.Equal(set, r.speakers) {
		return
	}
	r.speakers = set
	users := append([]string{}, set...) // never nil: "users":[] when no one speaks
	v := r.v
	r.events.push(func() {
		ctx, cancel := v.bgCtx()
		defer cancel()
		if err := v.node.PublishEvent(ctx, r.ch, wire.EventSpeaking, "", "", users); err != nil {
			v.log.Debug("voice: speaking event failed", "room", r.id, "err", err)
		}
	})
}
