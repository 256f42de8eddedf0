package realtime

import (
	"sync"
	"sync/atomic"
	"time"
)

// subscription is one connection's subscription to one channel.
//
// It starts recovering: deliveries are buffered while the reader replays
// the stream, then flushed without the offsets already replayed, and the
// subscription turns live. A live delivery goes straight to the
// connection's queue unless its offset is at or before the position the
// subscription started from, which can happen when a publication raced the
// replay.
type subscription struct {
	conn    *Conn
	channel string
	hc      *hubChannel // set while added to the Hub; reader goroutine only

	live atomic.Bool
	// start is the position live delivery continues after; written before
	// live turns true and read only after, so no lock is needed.
	start Position

	mu      sync.Mutex // guards pending while recovering
	pending []pendingPub

	// lastTyping is when this connection last fanned out a typing event on
	// the channel; reader goroutine only.
	lastTyping time.Time
	// presence is true when the subscription joined the channel's presence.
	presence bool
}

type pendingPub struct {
	frame []byte
	pos   Position
	at    time.Time
}

// deliver queues a frame on the subscriber's connection, or buffers it
// while the subscription is recovering.
func (s *subscription) deliver(frame []byte, pos Position, at time.Time) {
	if s.live.Load() {
		s.deliverLive(frame, pos, at)
		return
	}
	s.mu.Lock()
	if !s.live.Load() {
		if pos.Offset > 0 { // ephemeral events are not buffered: at most once
			s.pending = append(s.pending, pendingPub{frame: frame, pos: pos, at: at})
		}
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	s.deliverLive(frame, pos, at)
}

func (s *subscription) deliverLive(frame []byte, pos Position, at time.Time) {
	if pos.Offset > 0 && pos.Epoch == s.start.Epoch && pos.Offset <= s.start.Offset {
		return // already replayed, or before the subscription started
	}
	s.conn.enqueue(frame, at)
}

// goLive ends recovery: it queues first (the sub reply, then the replay up
// to start), then the buffered deliveries after start, and turns live.
// Holding mu throughout keeps a concurrent delivery from overtaking any of
// it, and means a client that has seen the reply cannot trigger an event
// that this subscription would drop as still recovering.
func (s *subscription) goLive(start Position, first [][]byte) {
	s.mu.Lock()
	now := time.Now()
	for _, b := range first {
		s.conn.enqueue(b, now)
	}
	s.start = start
	for _, p := range s.pending {
		if p.pos.Epoch == start.Epoch && p.pos.Offset <= start.Offset {
			continue
		}
		s.conn.enqueue(p.frame, p.at)
	}
	s.pending = nil
	s.live.Store(true)
	s.mu.Unlock()
}
