package redisbroker

import (
	"context"
	"errors"

	goredis "github.com/redis/go-redis/v9"
)

// The Lua scripts. Redis runs each one atomically: no other command runs
// between its first and its last call, which is what makes offsets gapless
// and first/last-for-user exact. Every key a script touches is passed in
// KEYS and carries one hash tag, so in a cluster it runs on the slot's
// master. Scripts read the clock with TIME, so every node agrees on
// expiries whatever its own clock says (Redis 5 and later replicate the
// effects of a script, not the script, so that is allowed).
//
// They are sent with EVALSHA and fall back to EVAL when Redis does not
// know them yet (a fresh or restarted server), through runScripts or
// goredis.Script.Run.

// luaPrelude defines helpers shared by the scripts.
const luaPrelude = `
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- ensure_epoch returns the channel's epoch and last offset (a string),
-- making the epoch cand at offset 0 when the meta hash is gone: a new
-- channel, or one whose history was lost (expired, evicted, flushed, a
-- restart without persistence). The stream is dropped with it, so stale
-- entries never mix with a new epoch.
local function ensure_epoch(meta, stream, cand)
  local m = redis.call('HMGET', meta, 'e', 'o')
  if m[1] and m[2] then
    return m[1], m[2]
  end
  redis.call('DEL', stream)
  redis.call('HSET', meta, 'e', cand, 'o', '0')
  return cand, '0'
end
`

// publishScript appends publications and publishes them, atomically: a
// batch of them, each to its own channel, in one call.
//
// KEYS: meta and stream of each publication. ARGV: history size, key TTL
// (ms), refresh interval (ms), "1" for SPUBLISH (cluster) else PUBLISH,
// then the candidate epoch, payload and pub/sub channel of each
// publication. Returns a reply per publication: {epoch, offset}, or the
// error that stopped that one (the others still happen).
//
// It is the hot path, and Redis runs it on its one thread, so it makes as
// few calls as it can. A script call costs Redis about as much as four of
// the calls inside it, and TIME as much as the cheapest, so a batch pays
// for both once. For each publication, one HMGET reads the epoch, the last
// offset, the last append time and when the keys' expiry was last pushed
// back, and one HSET writes them. The expiry is pushed back only once per
// refresh interval, to the key TTL plus that interval, so both keys still
// live at least the key TTL after the last publication. A new epoch, and a
// stream lost while its meta hash lives (XADD with NOMKSTREAM finds none),
// set it at once. Reads set the meta hash's expiry to the key TTL, which
// may cut that by up to one refresh interval; the interval is under the
// key TTL's margin over the history TTL, so a channel's history is kept as
// long as it is promised.
//
// In a cluster every key of one call must be in one slot, so there a
// batch holds one publication.
var publishScript = goredis.NewScript(luaPrelude + `
local size, every = ARGV[1], tonumber(ARGV[3])
local ttl = tonumber(ARGV[2]) + every
local notify = 'PUBLISH'
if ARGV[4] == '1' then notify = 'SPUBLISH' end
local clock = now_ms()
local function publish(meta, stream, cand, payload, ch)
  local m = redis.call('HMGET', meta, 'e', 'o', 't', 'x')
  local epoch, off, last, pushed = m[1], tonumber(m[2]), tonumber(m[3] or '0'), tonumber(m[4] or '0')
  if not (epoch and off) then
    redis.call('DEL', stream)
    epoch, off, last, pushed = cand, 0, 0, 0
  end
  off = off + 1
  local offs = string.format('%d', off)
  -- Append times never go back, so the oldest entry is the oldest in time.
  local now = clock
  if now < last then now = last end
  local at = string.format('%d', now)
  -- NOMKSTREAM: a stream lost while its meta hash lives is made again
  -- below, with its expiry.
  -- MAXLEN ~ trims whole radix tree nodes, far cheaper than an exact
  -- trim; the stream then holds at least the history size, and
  -- sinceScript serves no more than that.
  local lost = not redis.call('XADD', stream, 'NOMKSTREAM', 'MAXLEN', '~', size, offs .. '-1', 'd', payload, 't', at)
  if lost then
    redis.call('XADD', stream, 'MAXLEN', '~', size, offs .. '-1', 'd', payload, 't', at)
  end
  if lost or now - pushed >= every then
    redis.call('HSET', meta, 'e', epoch, 'o', offs, 't', at, 'x', at)
    redis.call('PEXPIRE', meta, ttl)
    redis.call('PEXPIRE', stream, ttl)
  else
    redis.call('HSET', meta, 'o', offs, 't', at)
  end
  redis.call(notify, ch, epoch .. ' ' .. offs .. '\n' .. payload)
  return {epoch, offs}
end
local out = {}
for i = 1, #KEYS / 2 do
  local a = 4 + (i - 1) * 3
  local ok, res = pcall(publish, KEYS[2 * i - 1], KEYS[2 * i], ARGV[a + 1], ARGV[a + 2], ARGV[a + 3])
  -- A failed redis.call raises a table {err = ...}, which Redis replies as
  -- an error; a Lua error is a string.
  if not ok and type(res) ~= 'table' then
    res = {err = tostring(res)}
  end
  out[i] = res
end
return out
`)

// sinceScript reads the publications after a position.
//
// KEYS: meta, stream. ARGV: candidate epoch, from epoch, from offset,
// history TTL (ms), key TTL (ms), history size. Returns {1, epoch, offset,
// entries} when every publication after from is retained, among the last
// history size ones and young enough, with entries as XRANGE gives them,
// else {0, epoch, offset}.
var sinceScript = goredis.NewScript(luaPrelude + `
local meta, stream = KEYS[1], KEYS[2]
local epoch, offs = ensure_epoch(meta, stream, ARGV[1])
redis.call('PEXPIRE', meta, ARGV[5])
if ARGV[2] ~= epoch then
  return {0, epoch, offs}
end
local last, from = tonumber(offs), tonumber(ARGV[3])
if from > last then
  return {0, epoch, offs}
end
if from == last then
  return {1, epoch, offs, {}}
end
local want = last - from
if want > tonumber(ARGV[6]) then
  return {0, epoch, offs}
end
local entries = redis.call('XRANGE', stream, string.format('%d', from + 1), '+', 'COUNT', want)
-- Entries are only ever added at the end and trimmed at the front, so a
-- full count means offsets from+1 through last are all there.
if #entries ~= want then
  return {0, epoch, offs}
end
local fields, at = entries[1][2], nil
for i = 1, #fields, 2 do
  if fields[i] == 't' then at = tonumber(fields[i + 1]) end
end
if not at or at <= now_ms() - tonumber(ARGV[4]) then
  return {0, epoch, offs}
end
return {1, epoch, offs, entries}
`)

// currentScript returns a channel's position, creating its epoch.
//
// KEYS: meta, stream. ARGV: candidate epoch, key TTL (ms). Returns
// {epoch, offset}.
var currentScript = goredis.NewScript(luaPrelude + `
local epoch, offs = ensure_epoch(KEYS[1], KEYS[2], ARGV[1])
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {epoch, offs}
`)

// presencePrelude defines the helpers of the presence scripts. A
// connection's value in the member hash is "<len(user)>:<user><node>".
const presencePrelude = luaPrelude + `
local function user_of(v)
  local i = string.find(v, ':', 1, true)
  return string.sub(v, i + 1, i + tonumber(string.sub(v, 1, i - 1)))
end
local function drop(z, c, u, conn)
  local v = redis.call('HGET', c, conn)
  redis.call('ZREM', z, conn)
  if not v then return false end
  redis.call('HDEL', c, conn)
  local user = user_of(v)
  if redis.call('HINCRBY', u, user, -1) <= 0 then
    redis.call('HDEL', u, user)
    return true
  end
  return false
end
-- sweep removes the entries whose expiry has passed, and lists in g each
-- user whose last connection went that way, for Reap to announce.
local function sweep(z, c, u, g, now)
  while true do
    local dead = redis.call('ZRANGEBYSCORE', z, '-inf', now, 'LIMIT', 0, 500)
    for _, conn in ipairs(dead) do
      local v = redis.call('HGET', c, conn)
      if drop(z, c, u, conn) and v then
        redis.call('RPUSH', g, user_of(v))
        redis.call('PEXPIRE', g, 86400000) -- a day, should no node reap it
      end
    end
    if #dead < 500 then return end
  end
end
`

// joinScript adds connections to a channel's presence, or renews the
// expiry of those already there.
//
// KEYS: the presence keys. ARGV: entry TTL (ms), key TTL (ms), the most
// connections a user may have in the channel (0 for no cap), then
// (connection id, user, value) for each connection. Returns one integer
// per connection, 1 when it was its user's first in the channel, -1 when
// it was not added because its user has the most already, else 0; then
// the entries' new expiry, then when Reap should next visit the channel:
// the earliest expiry of any entry, or now when the sweep left departures
// for it (all Unix ms).
var joinScript = goredis.NewScript(presencePrelude + `
local z, c, u, g = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local now = now_ms()
sweep(z, c, u, g, now)
local exp = string.format('%d', now + tonumber(ARGV[1]))
local most = tonumber(ARGV[3])
local res = {}
for i = 4, #ARGV, 3 do
  local conn = ARGV[i]
  if redis.call('ZSCORE', z, conn) then
    redis.call('ZADD', z, 'XX', exp, conn)
    res[#res + 1] = 0
  elseif most > 0 and tonumber(redis.call('HGET', u, ARGV[i + 1]) or '0') >= most then
    res[#res + 1] = -1
  else
    redis.call('ZADD', z, exp, conn)
    redis.call('HSET', c, conn, ARGV[i + 2])
    if redis.call('HINCRBY', u, ARGV[i + 1], 1) == 1 then
      res[#res + 1] = 1
    else
      res[#res + 1] = 0
    end
  end
end
for _, k in ipairs(KEYS) do redis.call('PEXPIRE', k, ARGV[2]) end
res[#res + 1] = tonumber(exp)
-- Departures the sweep left for Reap make the channel due at once.
if redis.call('LLEN', g) > 0 then
  res[#res + 1] = now
else
  res[#res + 1] = tonumber(redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')[2])
end
return res
`)

// leaveScript removes a connection from a channel's presence.
//
// KEYS: the presence keys. ARGV: connection id. Returns 1 when it
// was its user's last connection in the channel.
var leaveScript = goredis.NewScript(presencePrelude + `
local z, c, u, g = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
sweep(z, c, u, g, now_ms())
if not redis.call('ZSCORE', z, ARGV[1]) then
  return 0
end
if drop(z, c, u, ARGV[1]) then
  return 1
end
return 0
`)

// membersScript lists a channel's live connections.
//
// KEYS: the presence keys. Returns {conn, value, conn, value, ...}.
var membersScript = goredis.NewScript(presencePrelude + `
local z, c, u, g = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
sweep(z, c, u, g, now_ms())
local conns = redis.call('ZRANGE', z, 0, -1)
local out = {}
for i = 1, #conns, 500 do
  local part = {unpack(conns, i, math.min(i + 499, #conns))}
  local vals = redis.call('HMGET', c, unpack(part))
  for j = 1, #part do
    if vals[j] then
      out[#out + 1] = part[j]
      out[#out + 1] = vals[j]
    end
  end
end
return out
`)

// reapScript sweeps a channel's expired entries, as the other presence
// scripts do first, and takes the users whose last connection expired,
// whichever script's sweep found them.
//
// KEYS: the presence keys. Returns {min, user, user, ...}: the earliest
// expiry left (Unix ms, -1 when the channel is empty), then each user whose
// last connection in the channel expired.
var reapScript = goredis.NewScript(presencePrelude + `
local z, c, u, g = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
sweep(z, c, u, g, now_ms())
local gone = redis.call('LRANGE', g, 0, -1)
redis.call('DEL', g)
local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
local out = {'-1'}
if #first == 2 then out[1] = first[2] end
for _, user in ipairs(gone) do out[#out + 1] = user end
return out
`)

// claimReapScript takes the channels of the presence index that are due,
// leasing each to the caller: its due time moves to now + lease, so the
// other nodes' Reaps skip it unless the caller fails to put it back (sets
// its next due time, or forgets it) before the lease ends.
//
// KEYS: the presence index. ARGV: how many at most, lease (ms). Returns
// the channels.
var claimReapScript = goredis.NewScript(luaPrelude + `
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now), 'LIMIT', 0, ARGV[1])
local lease = string.format('%d', now + tonumber(ARGV[2]))
for _, ch in ipairs(due) do
  redis.call('ZADD', KEYS[1], 'XX', lease, ch)
end
return due
`)

// scheduleOfflineScript records, or moves, a user's due offline.
//
// KEYS: the offline-due set. ARGV: user, delay (ms).
var scheduleOfflineScript = goredis.NewScript(luaPrelude + `
redis.call('ZADD', KEYS[1], string.format('%d', now_ms() + tonumber(ARGV[2])), ARGV[1])
return 1
`)

// claimOfflineScript takes one user's offline record if it is due.
//
// KEYS: the offline-due set. ARGV: user. Returns 0 when it took the
// record, -1 when there is none, else the milliseconds until it is due.
var claimOfflineScript = goredis.NewScript(luaPrelude + `
local due = redis.call('ZSCORE', KEYS[1], ARGV[1])
if not due then return -1 end
local wait = tonumber(due) - now_ms()
if wait > 0 then return wait end
redis.call('ZREM', KEYS[1], ARGV[1])
return 0
`)

// claimDueOfflineScript takes the offline records that are due.
//
// KEYS: the offline-due set. ARGV: how many at most. Returns the users.
var claimDueOfflineScript = goredis.NewScript(luaPrelude + `
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now_ms()), 'LIMIT', 0, ARGV[1])
if #due > 0 then redis.call('ZREM', KEYS[1], unpack(due)) end
return due
`)

// heartbeatScript registers a node until now + TTL and forgets expired
// nodes.
//
// KEYS: the node registry. ARGV: node id, TTL (ms).
var heartbeatScript = goredis.NewScript(luaPrelude + `
local now = now_ms()
redis.call('ZADD', KEYS[1], string.format('%d', now + tonumber(ARGV[2])), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%d', now))
return 1
`)

// nodesScript lists the live nodes, or tells whether one is live.
//
// KEYS: the node registry. ARGV: a node id, or nothing for all. Returns
// the live node ids (at most the one asked for).
var nodesScript = goredis.NewScript(luaPrelude + `
local now = now_ms()
if ARGV[1] then
  local s = redis.call('ZSCORE', KEYS[1], ARGV[1])
  if s and tonumber(s) > now then return {ARGV[1]} end
  return {}
end
return redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. string.format('%d', now), '+inf')
`)

// scriptCall is one script run for runScripts.
type scriptCall struct {
	script *goredis.Script
	keys   []string
	args   []any
	cmd    *goredis.Cmd
}

// runScripts runs calls in one pipeline (a cluster client splits it by
// node), with EVALSHA, then runs again with EVAL, in a second pipeline,
// those that Redis did not know. Each call's result is in its cmd.
func runScripts(ctx context.Context, c goredis.UniversalClient, calls []scriptCall) {
	pipe := c.Pipeline()
	for i := range calls {
		calls[i].cmd = calls[i].script.EvalSha(ctx, pipe, calls[i].keys, calls[i].args...)
	}
	_, _ = pipe.Exec(ctx) // each cmd holds its own error
	var retry []int
	for i := range calls {
		if isNoScript(calls[i].cmd.Err()) {
			retry = append(retry, i)
		}
	}
	if len(retry) == 0 {
		return
	}
	pipe = c.Pipeline()
	for _, i := range retry {
		calls[i].cmd = calls[i].script.Eval(ctx, pipe, calls[i].keys, calls[i].args...)
	}
	_, _ = pipe.Exec(ctx)
}

func isNoScript(err error) bool {
	return err != nil && (errors.Is(err, goredis.ErrNoScript) || goredis.HasErrorPrefix(err, "NOSCRIPT"))
}
