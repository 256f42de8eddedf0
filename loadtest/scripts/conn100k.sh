#!/usr/bin/env bash
# conn100k.sh holds 100,000 WebSocket connections on this machine: a local
# cluster of NODES partyline nodes on one Redis, driven by as many
# `loadtest run --agent` processes and one coordinator, under a light
# broadcast. A process may open at most 20,000 files here, so neither one
# node nor one agent can hold 100,000 sockets; 6 of each hold about 16,700.
#
#   loadtest/scripts/conn100k.sh            # from the repository root
#
# Environment: OUT (default /tmp/pl-100k), CONNS (100000), NODES (6),
# RATE (connections opened per second over the whole cluster, 300),
# HOLD (how long each connection is held; the default, the time it takes to
# open them all plus 60 s, keeps every one open at the end of the ramp),
# BROADCAST_EVERY (10s), REDIS_PORT (16379), REDIS_OPTS (the nodes' Redis URL
# query: a larger go-redis pool and a longer pool wait than the defaults of 10
# per core and 4 s, for the bursts of presence calls at this scale).
# It starts its own redis-server and stops everything it started, by PID.
# The report is $OUT/summary.txt, with the per-process memory in
# $OUT/memory.txt.
set -euo pipefail

OUT=${OUT:-/tmp/pl-100k}
CONNS=${CONNS:-100000}
NODES=${NODES:-6}
RATE=${RATE:-300}
# The ramp lasts CONNS/RATE seconds rounded up, so at least CONNS are opened.
RAMP=$(((CONNS + RATE - 1) / RATE))
HOLD=${HOLD:-$((RAMP + 60))s}
BROADCAST_EVERY=${BROADCAST_EVERY:-10s}
REDIS_PORT=${REDIS_PORT:-16379}
REDIS_OPTS=${REDIS_OPTS:-pool_size=64&pool_timeout=30s}
export PARTYLINE_JWT_SECRET=${PARTYLINE_JWT_SECRET:-conn100k-secret-0123456789abcdef0123}
export PARTYLINE_API_KEY=${PARTYLINE_API_KEY:-conn100k-api-key}

ulimit -n "$(ulimit -Hn)"
rm -rf "$OUT" && mkdir -p "$OUT"
go build -o "$OUT/partyline" ./cmd/partyline
go build -o "$OUT/loadtest" ./cmd/loadtest

pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
}
trap cleanup EXIT

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no \
	--maxclients 10000 --dir "$OUT" >"$OUT/redis.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done

agents=()
for i in $(seq 1 "$NODES"); do
	mkdir -p "$OUT/node$i"
	PARTYLINE_ADDR=127.0.0.1:$((18080 + i)) PARTYLINE_ADMIN_ADDR=127.0.0.1:$((19090 + i)) \
		PARTYLINE_DATA_DIR=$OUT/node$i PARTYLINE_REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0?$REDIS_OPTS" \
		PARTYLINE_NODE_ID=node$i PARTYLINE_DRAIN_WINDOW=1s PARTYLINE_VOICE_UDP_ADDR=127.0.0.1:$((7882 + i)) \
		"$OUT/partyline" serve >"$OUT/node$i.log" 2>&1 &
	pids+=($!)
	echo $! >"$OUT/node$i.pid"
	# Each agent drives its own node, from source addresses of its own.
	"$OUT/loadtest" run --agent --verbose --listen 127.0.0.1:$((6564 + i)) --url http://127.0.0.1:$((18080 + i)) \
		--local-ips "127.0.$i.1-127.0.$i.40" >"$OUT/agent$i.log" 2>&1 &
	pids+=($!)
	echo $! >"$OUT/agent$i.pid"
	agents+=("127.0.0.1:$((6564 + i))")
done
for i in $(seq 1 "$NODES"); do
	for _ in $(seq 100); do curl -sf "127.0.0.1:$((18080 + i))/readyz" >/dev/null && break; sleep 0.1; done
	if ! curl -sf "127.0.0.1:$((18080 + i))/readyz" >/dev/null; then
		echo "node$i is not ready:" >&2
		tail -3 "$OUT/node$i.log" >&2
		exit 1
	fi
done

per_second=$RATE
duration=${RAMP}s
cat >"$OUT/test.yaml" <<YAML
target: http://127.0.0.1:18081
scenarios:
  idle:
    exec: connect-idle
    executor: constant-arrival-rate
    rate: $per_second
    timeUnit: 1s
    duration: $duration
    preAllocatedVUs: $((NODES * 100))
    maxVUs: $((NODES * 1000))
    options: {hold: $HOLD, timeout: 60s, broadcast: "broadcast:conn100k", broadcast_every: $BROADCAST_EVERY}
thresholds:
  ws_connect_errors: ["count==0"]
  ws_sessions: ["count>=$CONNS"]
YAML

# Sample every process's resident memory while the connections are held.
(
	while sleep 5; do
		for i in $(seq 1 "$NODES"); do
			for kind in node agent; do
				p=$(cat "$OUT/$kind$i.pid")
				rss=$(awk '/VmRSS/{print $2}' "/proc/$p/status" 2>/dev/null || echo 0)
				echo "$(date +%s) $kind$i $rss"
			done
		done
	done
) >"$OUT/rss.log" &
sampler=$!

agent_list=$(IFS=,; echo "${agents[*]}")
"$OUT/loadtest" run --coordinator --agents "$agent_list" --summary-export "$OUT/summary.json" \
	"$OUT/test.yaml" >"$OUT/summary.txt" 2>"$OUT/coordinator.log" || echo "loadtest exit code $?" >>"$OUT/summary.txt"
kill "$sampler"

{
	echo "peak resident memory (VmHWM) per process:"
	for i in $(seq 1 "$NODES"); do
		for kind in node agent; do
			p=$(cat "$OUT/$kind$i.pid")
			echo "$kind$i $(awk '/VmHWM/{print $2, $3}' "/proc/$p/status")"
		done
	done
	echo "highest sampled RSS sums (KiB): nodes, agents"
	awk '{t=$1; if ($2 ~ /^node/) n[t]+=$3; else a[t]+=$3} END {for (t in n) print n[t], a[t]}' "$OUT/rss.log" | sort -n | tail -1
} >"$OUT/memory.txt"
cat "$OUT/summary.txt" "$OUT/memory.txt"
