package redisbroker

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/partyline/partyline"
	"github.com/partyline/partyline/realtime"
)

var _ realtime.Leases = (*Leases)(nil)

// LeasesOptions configures Leases.
type LeasesOptions struct {
	// Client is a single Redis or a Redis Cluster client. Required. The
	// leases never close it.
	Client goredis.UniversalClient
	// Prefix starts every key, so several deployments or tests can share
	// one Redis. It must not contain '{' or '}'. Zero means "pl:".
	Prefix string
	// Name tells one set of leases from another, such as "voice". It must
	// not contain '{' or '}'. Required.
	Name string
	// TTL is how long a lease lives unless refreshed. Zero means 20
	// seconds.
	TTL time.Duration
}

// Leases are realtime.Leases in Redis: one string key per lease,
// "<prefix><name>:{<key>}:node", holding the holder's node id with a TTL.
// Every command touches one key, and the hash tag keeps a key in one
// slot, so they work on a Redis Cluster.
type Leases struct {
	c      goredis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewLeases checks opts and returns Leases. It makes no network calls.
func NewLeases(opts LeasesOptions) (*Leases, error) {
	if opts.Client == nil {
		return nil, fmt.Errorf("redis: LeasesOptions.Client is required: %w", partyline.ErrInvalid)
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultPrefix
	}
	if opts.Name == "" {
		return nil, fmt.Errorf("redis: LeasesOptions.Name is required: %w", partyline.ErrInvalid)
	}
	if strings.ContainsAny(opts.Prefix+opts.Name, "{}") {
		return nil, fmt.Errorf("redis: lease prefix %q or name %q contains a brace: %w", opts.Prefix, opts.Name, partyline.ErrInvalid)
	}
	if opts.TTL <= 0 {
		opts.TTL = realtime.DefaultLeaseTTL
	}
	return &Leases{c: opts.Client, prefix: opts.Prefix + opts.Name + ":{", ttl: opts.TTL}, nil
}

// TTL returns how long a lease lives unrefreshed.
func (p *Leases) TTL() time.Duration { return p.ttl }

func (p *Leases) key(key string) string {
	return p.prefix + key + "}:node"
}

// claimScript sets the key to ARGV[1] when it is absent, already ARGV[1],
// or held by the dead holder ARGV[2], and returns the holder.
var claimScript = goredis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] or (ARGV[2] ~= '' and cur == ARGV[2]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
  return ARGV[1]
end
return cur
`)

// refreshScript extends the key's TTL when ARGV[1] holds it; 1 if so.
var refreshScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

// releaseScript deletes the key when ARGV[1] holds it.
var releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)

// Claim implements realtime.Leases.
func (p *Leases) Claim(ctx context.Context, key, holder, dead string) (string, error) {
	host, err := claimScript.Run(ctx, p.c, []string{p.key(key)}, holder, dead, p.ttl.Milliseconds()).Text()
	if err != nil {
		return "", fmt.Errorf("redis: claim lease %s: %w", key, err)
	}
	return host, nil
}

// Lookup implements realtime.Leases.
func (p *Leases) Lookup(ctx context.Context, key string) (string, error) {
	host, err := p.c.Get(ctx, p.key(key)).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("redis: look up lease %s: %w", key, err)
	}
	return host, nil
}

// Refresh implements realtime.Leases. The keys' keys may live on different
// cluster slots, so it sends one script call per key in a pipeline.
func (p *Leases) Refresh(ctx context.Context, holder string, keys []string) ([]string, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	// Load the script once so the pipelined EVALSHAs find it.
	if err := refreshScript.Load(ctx, p.c).Err(); err != nil {
		return nil, fmt.Errorf("redis: refresh leases: %w", err)
	}
	pipe := p.c.Pipeline()
	cmds := make([]*goredis.Cmd, len(keys))
	for i, key := range keys {
		cmds[i] = refreshScript.EvalSha(ctx, pipe, []string{p.key(key)}, holder, p.ttl.Milliseconds())
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("redis: refresh leases: %w", err)
	}
	var lost []string
	for i, cmd := range cmds {
		n, err := cmd.Int()
		if err != nil {
			return nil, fmt.Errorf("redis: refresh lease %s: %w", keys[i], err)
		}
		if n == 0 {
			lost = append(lost, keys[i])
		}
	}
	return lost, nil
}

// Release implements realtime.Leases.
func (p *Leases) Release(ctx context.Context, key, holder string) error {
	if err := releaseScript.Run(ctx, p.c, []string{p.key(key)}, holder).Err(); err != nil {
		return fmt.Errorf("redis: release lease %s: %w", key, err)
	}
	return nil
}
