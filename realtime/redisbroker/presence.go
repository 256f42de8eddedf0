package redisbroker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/partyline/partyline"
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
// plain keys without expiry. Offline records (ScheduleOffline) are one
// sorted set of users by due time, shared by every node.
//
// The zero value is not usable; New makes one. Methods are safe for
// concurrent use.
type Presence struct {
	client goredis.UniversalClient
	keys   keyspace
	ttl    time.Duration
	keyTTL time.Duration
	logger *slog.Logger

	mu    sync.Mutex
	owned map[string]map[string]realtime.Member // channel -> connection id -> member
	// rejoined are the entries a renewal put back as their user's first
	// in the channel, until Rejoined takes them.
	rejoined []realtime.Departure
}

// Rejoined returns, and forgets, the entries that renewals put back as
// their user's first in the channel: entries that were gone (expired
// while Redis was too slow to renew them, or lost by Redis) while their
// connection was still open.
func (p *Presence) Rejoined() []realtime.Departure {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := p.rejoined
	p.rejoined = nil
	return out
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
		logger: opts.Logger,
		owned:  make(map[string]map[string]realtime.Member),
	}
}

// Join adds m to ch for PresenceTTL, renewed by Run. firstForUser is true
// when no other live connection of m.User is in ch on any node. Joining
// again with a ConnID that is there renews it, changes nothing else and
// returns false.
func (p *Presence) Join(ctx context.Context, ch string, m realtime.Member) (firstForUser bool, err error) {
	return p.join(ctx, ch, m, 0)
}

// JoinAtMost is Join, except that it adds nothing and returns an error
// wrapping partyline.ErrLimitExceeded when m.User has most live
// connections in ch already, on any node. The count and the add are one
// atomic step, so concurrent joins on several nodes never pass the cap.
func (p *Presence) JoinAtMost(ctx context.Context, ch string, m realtime.Member, most int) (firstForUser bool, err error) {
	if most < 1 {
		return false, partyline.Errorf(partyline.ErrInvalid, "a cap of %d connections", most)
	}
	return p.join(ctx, ch, m, most)
}

func (p *Presence) join(ctx context.Context, ch string, m realtime.Member, most int) (firstForUser bool, err error) {
	res, err := joinScript.Run(ctx, p.client, p.keys.presence(ch),
		p.ttl.Milliseconds(), p.keyTTL.Milliseconds(), most, m.ConnID, m.User, encodeMember(m)).Int64Slice()
	if err != nil {
		return false, fmt.Errorf("redis: join %s: %w", ch, err)
	}
	if len(res) != 3 {
		return false, fmt.Errorf("redis: join %s: unexpected reply %v", ch, res)
	}
	if res[0] == -1 {
		return false, partyline.Errorf(partyline.ErrLimitExceeded, "%s has %d connections already", m.User, most)
	}
	// Index the channel so that Reap visits it once the entry may have
	// expired. LT keeps the earliest due time: a later join never
	// postpones the reaping of a dead node's entry, which expires first.
	// Reap's claim, and its unindexing of an empty channel, are safe
	// against this update (see Reap).
	if err := p.client.ZAddLT(ctx, p.keys.presenceIndex(), goredis.Z{Score: float64(res[1]), Member: ch}).Err(); err != nil {
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
	return res[0] == 1, nil
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

// Reap's batches: each claim takes at most reapBatch channels, and one
// Reap makes at most reapClaims claims, so it ends in bounded time; the
// next call (on any node) takes the rest.
const (
	reapBatch  = 256
	reapClaims = 16
)

// Reap visits the channels whose entries may have expired, because the
// node that joined them stopped renewing them (it died), and returns each
// user whose last connection in a channel went that way. A departure is
// reported by exactly one of the nodes calling Reap, since each sweep is
// one script.
//
// The index holds, for each channel with entries, a due time no later
// than the earliest expiry among them: Join adds its entry's expiry with
// LT, renewals set the earliest expiry they saw in the channel (putting
// back a channel the index lost), and a visit sets the earliest expiry
// left. So a dead node's entries,
// which expire within PresenceTTL of its death, are reported by the first
// Reap after that: within PresenceTTL plus the reap interval.
//
// A claim leases the due channels to the caller (their due time moves
// PresenceTTL/3 ahead), so concurrent Reaps on other nodes take other
// channels; a caller that fails before putting a channel back leaves it
// to be claimed again when the lease ends.
func (p *Presence) Reap(ctx context.Context) ([]realtime.Departure, error) {
	idx := p.keys.presenceIndex()
	var out []realtime.Departure
	for range reapClaims {
		due, err := claimReapScript.Run(ctx, p.client, []string{idx}, reapBatch, p.reapLease().Milliseconds()).StringSlice()
		if err != nil {
			return out, fmt.Errorf("redis: reap: %w", err)
		}
		for _, ch := range due {
			if out, err = p.reapChannel(ctx, ch, out); err != nil {
				return out, err
			}
		}
		if len(due) < reapBatch {
			break
		}
	}
	return out, nil
}

// reapLease is how long a Reap's claim keeps a channel from the others.
func (p *Presence) reapLease() time.Duration { return max(p.ttl/3, time.Millisecond) }

// reapChannel sweeps one claimed channel, appends its departures to out,
// and puts it back in the index at its earliest expiry, or forgets it when
// it is empty.
func (p *Presence) reapChannel(ctx context.Context, ch string, out []realtime.Departure) ([]realtime.Departure, error) {
	idx := p.keys.presenceIndex()
	next, out, err := p.sweep(ctx, ch, out)
	if err != nil {
		return out, err
	}
	if next >= 0 {
		err = p.client.ZAdd(ctx, idx, goredis.Z{Score: float64(next), Member: ch}).Err()
	} else {
		// Forget the empty channel, then look again. A Join racing this
		// adds its entry, then indexes it with LT: if that index update
		// came before the ZREM, the entry was there before it too, and the
		// second sweep puts the channel back; if it comes after, it stays.
		if err = p.client.ZRem(ctx, idx, ch).Err(); err == nil {
			if next, out, err = p.sweep(ctx, ch, out); err != nil {
				return out, err
			}
			if next >= 0 {
				err = p.client.ZAddLT(ctx, idx, goredis.Z{Score: float64(next), Member: ch}).Err()
			}
		}
	}
	if err != nil {
		return out, fmt.Errorf("redis: reap %s: index: %w", ch, err)
	}
	return out, nil
}

// sweep runs the reap script on ch: it appends the departures to out and
// returns the earliest expiry left (Unix ms), or -1 when ch is empty.
func (p *Presence) sweep(ctx context.Context, ch string, out []realtime.Departure) (int64, []realtime.Departure, error) {
	res, err := reapScript.Run(ctx, p.client, p.keys.presence(ch)).StringSlice()
	if err != nil {
		return -1, out, fmt.Errorf("redis: reap %s: %w", ch, err)
	}
	if len(res) == 0 {
		return -1, out, fmt.Errorf("redis: reap %s: empty reply", ch)
	}
	for _, u := range res[1:] {
		out = append(out, realtime.Departure{Channel: ch, User: u})
	}
	next, err := strconv.ParseFloat(res[0], 64)
	if err != nil {
		return -1, out, fmt.Errorf("redis: reap %s: earliest expiry %q: %w", ch, res[0], err)
	}
	return int64(next), out, nil
}

// offlineBatch and offlineClaims bound one ClaimDueOffline as reapBatch
// and reapClaims bound one Reap.
const (
	offlineBatch  = 256
	offlineClaims = 16
)

// ScheduleOffline records that the user's offline is due delay from now
// (Redis time), replacing their earlier record. The record has no expiry:
// it stays until a node claims it.
func (p *Presence) ScheduleOffline(ctx context.Context, user string, delay time.Duration) error {
	err := scheduleOfflineScript.Run(ctx, p.client, []string{p.keys.offlineDue()}, user, delay.Milliseconds()).Err()
	if err != nil {
		return fmt.Errorf("redis: schedule offline of %s: %w", user, err)
	}
	return nil
}

// ClaimOffline takes the user's offline record if it is due, in one
// script, so exactly one caller on any node gets claimed true. A record
// not yet due is left, and wait is how long until it is.
func (p *Presence) ClaimOffline(ctx context.Context, user string) (claimed bool, wait time.Duration, err error) {
	ms, err := claimOfflineScript.Run(ctx, p.client, []string{p.keys.offlineDue()}, user).Int64()
	switch {
	case err != nil:
		return false, 0, fmt.Errorf("redis: claim offline of %s: %w", user, err)
	case ms == 0:
		return true, 0, nil
	case ms < 0:
		return false, 0, nil
	default:
		return false, time.Duration(ms) * time.Millisecond, nil
	}
}

// ClaimDueOffline takes the offline records that are due, in claims of at
// most offlineBatch users (each one script, so each record goes to one
// caller), up to offlineClaims of them, and returns their users.
func (p *Presence) ClaimDueOffline(ctx context.Context) ([]string, error) {
	var out []string
	for range offlineClaims {
		users, err := claimDueOfflineScript.Run(ctx, p.client, []string{p.keys.offlineDue()}, offlineBatch).StringSlice()
		if err != nil {
			return out, fmt.Errorf("redis: claim due offline: %w", err)
		}
		out = append(out, users...)
		if len(users) < offlineBatch {
			break
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

// renew runs the join script over every owned entry, in one pipeline,
// then sets each channel's due time in the index to the earliest expiry
// the script saw there (or now, when its sweep left departures for Reap). That is what keeps Reap's work in proportion to
// the entries that may have expired rather than to every channel: without
// it a renewed channel would stay due at its old expiry and be swept once
// per TTL for nothing. The value is never later than an entry's expiry: it
// covers every entry there when the script ran, a dead node's included,
// and an entry added since expires a full TTL after it was added, later
// than any expiry the script saw. It also puts back a channel the index
// lost (Redis restarted), so its entries are reaped if this node dies.
func (p *Presence) renew(ctx context.Context) {
	period := p.ttl / 3
	p.mu.Lock()
	owned := make([]string, 0, len(p.owned))
	for ch := range p.owned {
		owned = append(owned, ch)
	}
	p.mu.Unlock()
	// A node with many channels renews them in pipelines of renewChunk
	// channels spread over half the period, each with its own deadline,
	// rather than in one burst: a burst of tens of thousands of scripts
	// stalls every other Redis call of the cluster, and one deadline over
	// all of them would let a slow Redis fail the whole renewal, so that
	// live entries expire.
	chunks := (len(owned) + renewChunk - 1) / renewChunk
	for i := 0; i < chunks; i++ {
		if i > 0 {
			select {
			case <-ctx.Done():
				return
			case <-time.After(period / 2 / time.Duration(chunks)):
			}
		}
		cctx, cancel := context.WithTimeout(ctx, period)
		p.renewChannels(cctx, owned[i*renewChunk:min((i+1)*renewChunk, len(owned))])
		cancel()
	}
}

// renewChunk is how many channels one renewal pipeline carries.
const renewChunk = 512

// renewChannels renews this node's entries in chans, in one pipeline.
func (p *Presence) renewChannels(ctx context.Context, chans []string) {
	var calls []scriptCall
	var callChan []string    // the channel of each call
	var callUsers [][]string // the user of each connection in each call
	p.mu.Lock()
	for _, ch := range chans {
		conns := p.owned[ch]
		if len(conns) == 0 {
			continue // left meanwhile
		}
		keys := p.keys.presence(ch)
		var args []any
		var users []string
		flush := func() {
			calls = append(calls, scriptCall{script: joinScript, keys: keys, args: args})
			callChan = append(callChan, ch)
			callUsers = append(callUsers, users)
			args, users = nil, nil
		}
		for _, m := range conns {
			if args == nil {
				// No cap: a renewal puts back what the node has.
				args = append(make([]any, 0, 3+3*min(len(conns), renewBatch)), p.ttl.Milliseconds(), p.keyTTL.Milliseconds(), 0)
			}
			args = append(args, m.ConnID, m.User, encodeMember(m))
			users = append(users, m.User)
			if len(args) >= 3+3*renewBatch {
				flush()
			}
		}
		if args != nil {
			flush()
		}
	}
	p.mu.Unlock()
	if len(calls) == 0 {
		return
	}
	runScripts(ctx, p.client, calls)
	earliest := make(map[string]int64, len(callChan))
	failed := 0
	var back []realtime.Departure
	for i, c := range calls {
		res, err := c.cmd.Int64Slice()
		if err != nil || len(res) < 2 {
			failed++
			continue // retried at the next tick
		}
		if e, ok := earliest[callChan[i]]; !ok || res[len(res)-1] < e {
			earliest[callChan[i]] = res[len(res)-1]
		}
		for j, user := range callUsers[i] {
			if j < len(res)-2 && res[j] == 1 {
				back = append(back, realtime.Departure{Channel: callChan[i], User: user})
			}
		}
	}
	if len(back) > 0 {
		p.mu.Lock()
		p.rejoined = append(p.rejoined, back...)
		p.mu.Unlock()
	}
	if failed > 0 {
		p.logger.Warn("presence renewal failed; retried at the next tick", "failed", failed, "of", len(calls))
	}
	index := make([]goredis.Z, 0, len(earliest))
	for ch, e := range earliest {
		index = append(index, goredis.Z{Score: float64(e), Member: ch})
	}
	pipe := p.client.Pipeline()
	for i := 0; i < len(index); i += renewBatch {
		pipe.ZAdd(ctx, p.keys.presenceIndex(), index[i:min(i+renewBatch, len(index))]...)
	}
	_, _ = pipe.Exec(ctx) // a failed renewal is retried at the next tick
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
