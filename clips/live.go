package clips

import (
	"context"
	"errors"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime"
	"github.com/partyline/partyline/realtime/wire"
)

var _ realtime.Extension = (*Service)(nil)

// Namespaces returns the namespace clips owns: clip.
func (s *Service) Namespaces() []realtime.Namespace {
	return []realtime.Namespace{{Name: wire.NSClip}}
}

// Authorize lets anyone who may view the clip subscribe to clip:<id> and
// read its presence; a clip they may not view is not_found, as over REST.
// Only the server publishes there.
func (s *Service) Authorize(ctx context.Context, sess *realtime.Session, ch string, act realtime.Action) error {
	_, id, err := wire.ParseChannel(ch)
	if err != nil {
		return err
	}
	if act == realtime.ActionPublish {
		return partyline.Errorf(partyline.ErrForbidden, "only the server publishes on %s", ch)
	}
	_, err = s.viewable(ctx, id, sess.User())
	if err != nil && !errors.Is(err, partyline.ErrNotFound) {
		return partyline.Errorf(partyline.ErrUnavailable, "clip %s cannot be checked now", id)
	}
	return err
}

// Requests returns no request types: clip channels are read-only.
func (s *Service) Requests() map[string]realtime.RequestHandler { return nil }

// statsJSON is the data of a clip.stats publication.
type statsJSON struct {
	Clip         string `json:"clip"`
	LikeCount    int64  `json:"like_count"`
	ViewCount    int64  `json:"view_count"`
	CommentCount int64  `json:"comment_count"`
}

// coalescer collects the clips whose counters moved and hands each out at
// most once per interval.
type coalescer struct {
	every time.Duration
	wake  chan struct{}

	mu    sync.Mutex
	dirty map[string]bool
	last  map[string]time.Time // when each clip was last handed out, within the interval
}

func newCoalescer(every time.Duration) *coalescer {
	return &coalescer{every: every, wake: make(chan struct{}, 1), dirty: map[string]bool{}, last: map[string]time.Time{}}
}

// mark records that the clip's counters moved.
func (c *coalescer) mark(id string) {
	c.mu.Lock()
	c.dirty[id] = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// due returns the clips to publish now and how long until the next one is
// due (0 when none is waiting).
func (c *coalescer) due(now time.Time) (ids []string, next time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for id, at := range c.last {
		if now.Sub(at) >= c.every && !c.dirty[id] {
			delete(c.last, id)
		}
	}
	for id := range c.dirty {
		at, seen := c.last[id]
		if wait := c.every - now.Sub(at); seen && wait > 0 {
			if next == 0 || wait < next {
				next = wait
			}
			continue
		}
		ids = append(ids, id)
		delete(c.dirty, id)
		c.last[id] = now
	}
	return ids, next
}

// statsLoop publishes clip.stats for the clips the coalescer hands out
// until ctx ends.
func (s *Service) statsLoop(ctx context.Context) {
	timer := time.NewTimer(time.Hour)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-s.stats.wake:
		case <-timer.C:
		}
		ids, next := s.stats.due(time.Now())
		for _, id := range ids {
			s.publishStats(ctx, id)
		}
		if next > 0 {
			timer.Reset(next)
		}
	}
}

// publishStats publishes the clip's current counters on clip:<id>.
func (s *Service) publishStats(ctx context.Context, id string) {
	c, err := s.store.GetClip(ctx, id)
	if errors.Is(err, partyline.ErrNotFound) || ctx.Err() != nil {
		return
	}
	if err != nil {
		s.log.Warn("clip stats: reading counters failed", "clip", id, "err", err)
		return
	}
	data := statsJSON{Clip: c.ID, LikeCount: c.Likes, ViewCount: c.Views, CommentCount: c.Comments}
	if err := s.publish(ctx, wire.NSClip+":"+id, KindStats, data); err != nil {
		s.log.Warn("clip stats: publish failed", "clip", id, "err", err)
	}
}

// announce queues a clip that became ready for clip.new to its owner's
// followers. Only public clips are announced.
func (s *Service) announce(c Clip) {
	if s.followers == nil || c.Visibility != Public || c.Status != StatusReady {
		return
	}
	s.workMu.Lock()
	s.toAnnounce = append(s.toAnnounce, c)
	s.workMu.Unlock()
	select {
	case s.wakeFan <- struct{}{}:
	default:
	}
}

// followersPage is how many followers one batch of clip.new covers.
const followersPage = 200

// fanoutParallel bounds the publications of one batch in flight.
const fanoutParallel = 16

// fanoutLoop sends clip.new for the queued clips until ctx ends.
func (s *Service) fanoutLoop(ctx context.Context) {
	for {
		s.workMu.Lock()
		var c Clip
		have := len(s.toAnnounce) > 0
		if have {
			c = s.toAnnounce[0]
			s.toAnnounce = s.toAnnounce[1:]
		}
		s.workMu.Unlock()
		if !have {
			select {
			case <-ctx.Done():
				return
			case <-s.wakeFan:
				continue
			}
		}
		s.fanout(ctx, c)
	}
}

// fanout publishes clip.new to user:<follower> for every follower of the
// clip's owner, a page of followers per batch.
func (s *Service) fanout(ctx context.Context, c Clip) {
	data := ToResource(c)
	cursor := ""
	sent := 0
	for {
		ids, next, err := s.followers(ctx, c.Owner, cursor, followersPage)
		if err != nil {
			if ctx.Err() == nil {
				s.log.Warn("clip.new: listing followers failed", "clip", c.ID, "owner", c.Owner, "sent", sent, "err", err)
			}
			return
		}
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(fanoutParallel)
		for _, id := range ids {
			g.Go(func() error {
				if err := s.publish(gctx, wire.NSUser+":"+id, KindNew, data); err != nil && gctx.Err() == nil {
					s.log.Warn("clip.new: publish failed", "clip", c.ID, "user", id, "err", err)
				}
				return nil
			})
		}
		_ = g.Wait()
		sent += len(ids)
		if next == "" || ctx.Err() != nil {
			return
		}
		cursor = next
	}
}
