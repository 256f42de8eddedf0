package clips

import (
	"fmt"
	"math"
	"net/http"
	"strconv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/partyline/partyline"
)

// RateLimit is a per-user token bucket: Burst requests at once, refilled
// at Burst per Per. A zero RateLimit means the option's default; a
// negative Burst turns the limit off.
type RateLimit struct {
	Burst int
	Per   time.Duration
}

// limiter keeps one token bucket per user for one policy, at most max of
// them: when full, buckets idle long enough to have refilled are dropped
// first (a fresh bucket is the same as a full one), then any.
type limiter struct {
	name  string
	limit rate.Limit
	burst int
	off   bool
	max   int

	mu    sync.Mutex
	users map[string]*bucket
}

type bucket struct {
	lim  *rate.Limiter
	seen time.Time
}

func newLimiter(name string, rl, def RateLimit, max int) *limiter {
	l := &limiter{name: name, max: max, users: map[string]*bucket{}, off: rl.Burst < 0}
	if rl.Burst <= 0 {
		rl.Burst = def.Burst
	}
	if rl.Per <= 0 {
		rl.Per = def.Per
	}
	l.burst = rl.Burst
	l.limit = rate.Limit(float64(rl.Burst) / rl.Per.Seconds())
	return l
}

// refill is how long an empty bucket takes to fill up.
func (l *limiter) refill() time.Duration {
	return time.Duration(float64(l.burst) / float64(l.limit) * float64(time.Second))
}

// allow takes a token of user's bucket, sets the RateLimit-Policy and
// RateLimit headers (draft-ietf-httpapi-ratelimit-headers) and, when the
// bucket is empty, Retry-After, returning an error wrapping
// partyline.ErrRateLimited.
func (l *limiter) allow(w http.ResponseWriter, user string) error {
	if l.off {
		return nil
	}
	now := time.Now()
	l.mu.Lock()
	b := l.users[user]
	if b == nil {
		if len(l.users) >= l.max {
			l.evict(now)
		}
		b = &bucket{lim: rate.NewLimiter(l.limit, l.burst)}
		l.users[user] = b
	}
	b.seen = now
	ok := b.lim.AllowN(now, 1)
	tokens := b.lim.TokensAt(now)
	l.mu.Unlock()

	window := int(math.Ceil(l.refill().Seconds()))
	h := w.Header()
	h.Set("RateLimit-Policy", fmt.Sprintf("%q;q=%d;w=%d", l.name, l.burst, window))
	remaining := max(int(math.Floor(tokens)), 0)
	// t: seconds until the bucket is full again.
	reset := int(math.Ceil((float64(l.burst) - tokens) / float64(l.limit)))
	h.Set("RateLimit", fmt.Sprintf("%q;r=%d;t=%d", l.name, remaining, max(reset, 0)))
	if ok {
		return nil
	}
	wait := int(math.Ceil((1 - tokens) / float64(l.limit)))
	h.Set("Retry-After", strconv.Itoa(max(wait, 1)))
	return partyline.Errorf(partyline.ErrRateLimited, "too many %s; retry in %d s", l.name, max(wait, 1))
}

// evict makes room for one bucket. l.mu is held.
func (l *limiter) evict(now time.Time) {
	idle := l.refill()
	for u, b := range l.users {
		if now.Sub(b.seen) >= idle {
			delete(l.users, u)
		}
	}
	for u := range l.users {
		if len(l.users) < l.max {
			break
		}
		delete(l.users, u)
	}
}

// size returns how many buckets are kept.
func (l *limiter) size() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.users)
}
