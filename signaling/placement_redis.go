package signaling

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/partyline/partyline"
)

var _ Placement = (*RedisPlacement)(nil)

// DefaultRedisPrefix starts the placement keys when
// RedisPlacementOptions.Prefix is empty.
const DefaultRedisPrefix = "pl:"

// RedisPlacementOptions configures a RedisPlacement.
type RedisPlacementOptions struct {
	// Client is a single Redis or a Redis Cluster client. Required. The
	// placement never closes it.
	Client goredis.UniversalClient
	// Prefix starts every key, so several deployments or tests can share
	// one Redis. It must not contain '{' or '}'. Zero means "pl:".
	Prefix string
	// TTL is how long a record lives unless refreshed. Zero means 20
	// seconds.
	TTL time.Duration
}

// RedisPlacement is a Placement in Redis: one string key per room,
// "<prefix>voice:{<room>}:node", holding the host's node id with a TTL.
// Every command touches one key, and the hash tag keeps a room's key in
// one slot, so it works on a Redis Cluster.
type RedisPlacement struct {
	c      goredis.UniversalClient
	prefix string
	ttl    time.Duration
}

// NewRedisPlacement checks opts and returns a RedisPlacement. It makes no
// network calls.
func NewRedisPlacement(opts RedisPlacementOptions) (*RedisPlacement, error) {
	if opts.Client == nil {
		return nil, fmt.Errorf("signaling: RedisPlacementOptions.Client is required: %w", partyline.ErrInvalid)
	}
	if opts.Prefix == "" {
		opts.Prefix = DefaultRedisPrefix
	}
	if strings.ContainsAny(opts.Prefix, "{}") {
		return nil, fmt.Errorf("signaling: placement prefix %q contains a brace: %w", opts.Prefix, partyline.ErrInvalid)
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultPlacementTTL
	}
	return &RedisPlacement{c: opts.Client, prefix: opts.Prefix, ttl: opts.TTL}, nil
}

// TTL returns how long a record lives unrefreshed.
func (p *RedisPlacement) TTL() time.Duration { return p.ttl }

func (p *RedisPlacement) key(room string) string {
	return p.prefix + "voice:{" + room + "}:node"
}

// claimScript sets the key to ARGV[1] when it is absent, already ARGV[1],
// or held by the dead node ARGV[2], and returns the holder.
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

// Claim implements Placement.
func (p *RedisPlacement) Claim(ctx context.Context, room, node, dead string) (string, error) {
	host, err := claimScript.Run(ctx, p.c, []string{p.key(room)}, node, dead, p.ttl.Milliseconds()).Text()
	if err != nil {
		return "", fmt.Errorf("signaling: claim voice room %s: %w", room, err)
	}
	return host, nil
}

// Lookup implements Placement.
func (p *RedisPlacement) Lookup(ctx context.Context, room string) (string, error) {
	host, err := p.c.Get(ctx, p.key(room)).Result()
	if errors.Is(err, goredis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("signaling: look up voice room %s: %w", room, err)
	}
	return host, nil
}

// Refresh implements Placement. The rooms' keys may live on different
// cluster slots, so it sends one script call per room in a pipeline.
func (p *RedisPlacement) Refresh(ctx context.Context, node string, rooms []string) ([]string, error) {
	if len(rooms) == 0 {
		return nil, nil
	}
	// Load the script once so the pipelined EVALSHAs find it.
	if err := refreshScript.Load(ctx, p.c).Err(); err != nil {
		return nil, fmt.Errorf("signaling: refresh voice rooms: %w", err)
	}
	pipe := p.c.Pipeline()
	cmds := make([]*goredis.Cmd, len(rooms))
	for i, room := range rooms {
		cmds[i] = refreshScript.EvalSha(ctx, pipe, []string{p.key(room)}, node, p.ttl.Milliseconds())
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, fmt.Errorf("signaling: refresh voice rooms: %w", err)
	}
	var lost []string
	for i, cmd := range cmds {
		n, err := cmd.Int()
		if err != nil {
			return nil, fmt.Errorf("signaling: refresh voice room %s: %w", rooms[i], err)
		}
		if n == 0 {
			lost = append(lost, rooms[i])
		}
	}
	return lost, nil
}

// Release implements Placement.
func (p *RedisPlacement) Release(ctx context.Context, room, node string) error {
	if err := releaseScript.Run(ctx, p.c, []string{p.key(room)}, node).Err(); err != nil {
		return fmt.Errorf("signaling: release voice room %s: %w", room, err)
	}
	return nil
}
