package redis

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/partyline/partyline/realtime"
)

// Presence is the realtime.Presence on Redis. Each channel has a sorted
// set of connection ids scored by expiry (Unix milliseconds, Redis time),
// a hash of connection id to member, and a hash of user to connection
// count, all under the channel's hash tag; Join, Leave and Members are Lua
// scripts that first sweep the expired entries, so the counts, and with
// them firstForUser and lastForUser, are exact across nodes.
//
// A Presence remembers the entries joined through it and its Run renews
// them every PresenceTTL/3, putting back any that Redis lost; entries of a
// node that stops renewing disappear within PresenceTTL. Statuses are
// plain keys without expiry.
//
// The zero value is not usable; New makes one. Methods are safe for
// concurrent use.
type Presence struct {
	client goredis.UniversalClient
	keys   keyspace
	ttl    time.Duration
	keyTTL time.Duration

	mu    sync.Mutex
	owned map[string]map[string]realtime.Member // channel -> connection id -> member
}

var _ realtime.Presence = (*Presence)(nil)

// renewBatch caps the connections renewed by one script run, so one
// large channel does not hold Redis for long.
const renewBatch = 256

func newPresence(opts Options) *Presence {
	return &Presence{
		client: opts.Client,
		keys:   keyspace{prefix: opts.Prefix},
		ttl:    opts.PresenceTTL,
		// Every write pushes the keys' expiry past every entry's.
		keyTTL: 2 * opts.PresenceTTL,
		owned:  make(map[string]map[string]realtime.Member),
	}
}

// Join adds m to ch for PresenceTTL, renewed by Run. firstForUser is true
// when no other live connection of m.User is in ch on any node. Joining
// again with a ConnID that is there renews it, changes nothing else and
// returns false.
func (p *Presence) Join(ctx context.Context, ch string, m realtime.Member) (firstForUser bool, err error) {
	res, err := joinScript.Run(ctx, p.client, p.keys.presence(ch),
		p.ttl.Milliseconds(), p.keyTTL.Milliseconds(), m.ConnID, m.User, encodeMember(m)).Int64Slice()
	if err != nil {
		return false, fmt.Errorf("redis: join %s: %w", ch, err)
	}
	// Index the channel so that Reap finds it when entries expire. GT only
	// moves its due time later, which can postpone the reaping of a dead
	// node's entries by at most one TTL.
	due := time.Now().Add(p.ttl).UnixMilli()
	if err := p.client.ZAddGT(ctx, p.keys.presenceIndex(), goredis.Z{Score: float64(due), Member: ch}).Err(); err != nil {
		return false, fmt.Errorf("redis: join %s: index: %w", ch, err)
	}
	p.mu.Lock()
	conns := p.owned[ch]
	if conns == nil {
		conns = make(map[string]realtime.Member)
		p.owned[ch] = conns
	}
	conns[m.ConnID] = m
	p.mu.Unlock()
	return len(res) == 1 && res[0] == 1, nil
}

// Leave removes the connection m.ConnID from ch; the other fields of m
// are not consulted. lastForUser is true when it was its user's last live
// connection in ch on any node. Leaving a connection that is not there
// (or whose entry expired) returns false.
func (p *Presence) Leave(ctx context.Context, ch string, m realtime.Member) (lastForUser bool, err error) {
	p.mu.Lock()
	if conns := p.owned[ch]; conns != nil {
		delete(conns, m.ConnID)
		if len(conns) == 0 {
			delete(p.owned, ch)
		}
	}
	p.mu.Unlock()
	n, err := leaveScript.Run(ctx, p.client, p.keys.presence(ch), m.ConnID).Int64()
	if err != nil {
		return false, fmt.Errorf("redis: leave %s: %w", ch, err)
	}
	return n == 1, nil
}

// Members returns ch's live entries, one per connection, in no set order;
// it is empty (nil) when nobody is in ch.
func (p *Presence) Members(ctx context.Context, ch string) ([]realtime.Member, error) {
	flat, err := membersScript.Run(ctx, p.client, p.keys.presence(ch)).StringSlice()
	if err != nil {
		return nil, fmt.Errorf("redis: members of %s: %w", ch, err)
	}
	if len(flat) == 0 {
		return nil, nil
	}
	ms := make([]realtime.Member, 0, len(flat)/2)
	for i := 0; i+1 < len(flat); i += 2 {
		m, err := decodeMember(flat[i], flat[i+1])
		if err != nil {
			return nil, fmt.Errorf("redis: members of %s: %w", ch, err)
		}
		ms = append(ms, m)
	}
	return ms, nil
}

// reapBatch caps the channels one Reap sweeps.
const reapBatch = 256

var _ realtime.PresenceReaper = (*Presence)(nil)

// Reap sweeps the channels whose entries may have expired, because the
// node that joined them stopped renewing them (it died), and returns each
// user whose last connection in a channel went that way. A departure is
// reported by exactly one of the nodes calling Reap, since each sweep is
// one script. Departures come within two PresenceTTLs of the node's death.
func (p *Presence) Reap(ctx context.Context) ([]realtime.Departure, error) {
	now := time.Now().UnixMilli()
	idx := p.keys.presenceIndex()
	due, err := p.client.ZRangeByScore(ctx, idx, &goredis.ZRangeBy{
		Min: "-inf", Max: strconv.FormatInt(now, 10), Count: reapBatch,
	}).Result()
	if err != nil {
		return nil, fmt.Errorf("redis: reap: %w", err)
	}
	var out []realtime.Departure
	for _, ch := range due {
		res, err := reapScript.Run(ctx, p.client, p.keys.presence(ch)).StringSlice()
		if err != nil || len(res) == 0 {
			return out, fmt.Errorf("redis: reap %s: %w", ch, err)
		}
		for _, u := range res[1:] {
			out = append(out, realtime.Departure{Channel: ch, User: u})
		}
		if next, _ := strconv.ParseFloat(res[0], 64); next >= 0 {
			err = p.client.ZAdd(ctx, idx, goredis.Z{Score: next, Member: ch}).Err()
		} else {
			err = unindexScript.Run(ctx, p.client, []string{idx}, ch, now).Err()
		}
		if err != nil {
			return out, fmt.Errorf("redis: reap %s: index: %w", ch, err)
		}
	}
	return out, nil
}

// SetStatus stores st as the user's status, without expiry.
func (p *Presence) SetStatus(ctx context.Context, user string, st realtime.Status) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("redis: set status of %s: %w", user, err)
	}
	if err := p.client.Set(ctx, p.keys.status(user), b, 0).Err(); err != nil {
		return fmt.Errorf("redis: set status of %s: %w", user, err)
	}
	return nil
}

// GetStatus returns the user's latest status; ok is false when none was
// set.
func (p *Presence) GetStatus(ctx context.Context, user string) (st realtime.Status, ok bool, err error) {
	b, err := p.client.Get(ctx, p.keys.status(user)).Bytes()
	if errors.Is(err, goredis.Nil) {
		return realtime.Status{}, false, nil
	}
	if err != nil {
		return realtime.Status{}, false, fmt.Errorf("redis: get status of %s: %w", user, err)
	}
	if err := json.Unmarshal(b, &st); err != nil {
		return realtime.Status{}, false, fmt.Errorf("redis: get status of %s: %w", user, err)
	}
	return st, true, nil
}

// Run renews the entries joined through this Presence every PresenceTTL/3
// until ctx is done, then returns nil. It runs on the calling goroutine
// and starts no other. A failed renewal is retried at the next tick; an
// entry that expired meanwhile is put back. Run does not remove the
// entries when it returns: they expire unless Left.
func (p *Presence) Run(ctx context.Context) error {
	t := time.NewTicker(p.ttl / 3)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, p.ttl/3)
			p.renew(rctx)
			cancel()
		}
	}
}

// renew runs the join script over every owned entry, in one pipeline.
func (p *Presence) renew(ctx context.Context) {
	var calls []scriptCall
	p.mu.Lock()
	for ch, conns := range p.owned {
		keys := p.keys.presence(ch)
		var args []any
		flush := func() {
			calls = append(calls, scriptCall{script: joinScript, keys: keys, args: args})
			args = nil
		}
		for _, m := range conns {
			if args == nil {
				args = append(make([]any, 0, 2+3*min(len(conns), renewBatch)), p.ttl.Milliseconds(), p.keyTTL.Milliseconds())
			}
			args = append(args, m.ConnID, m.User, encodeMember(m))
			if len(args) >= 2+3*renewBatch {
				flush()
			}
		}
		if args != nil {
			flush()
		}
	}
	p.mu.Unlock()
	if len(calls) > 0 {
		runScripts(ctx, p.client, calls)
	}
}

// encodeMember spells m's user and node as "<len(user)>:<user><node>",
// the value the presence scripts keep per connection.
func encodeMember(m realtime.Member) string {
	return strconv.Itoa(len(m.User)) + ":" + m.User + m.Node
}

func decodeMember(conn, v string) (realtime.Member, error) {
	i := strings.IndexByte(v, ':')
	if i < 0 {
		return realtime.Member{}, fmt.Errorf("malformed presence entry %q", v)
	}
	n, err := strconv.Atoi(v[:i])
	if err != nil || n < 0 || i+1+n > len(v) {
		return realtime.Member{}, fmt.Errorf("malformed presence entry %q", v)
	}
	return realtime.Member{ConnID: conn, User: v[i+1 : i+1+n], Node: v[i+1+n:]}, nil
}
