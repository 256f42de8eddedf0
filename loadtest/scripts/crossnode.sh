#!/usr/bin/env bash
# crossnode.sh measures delivery across two nodes on Redis.
#
#   loadtest/scripts/crossnode.sh NAME [loadtest fanout flags...]
#
# It starts a private redis-server (no persistence) and node A on core 1,
# then runs bench.sh, which starts node B on core 0 and the load client on
# core 1. Both nodes use the same Redis. The subscribers connect to node B
# and the publications go through node A's server API (-publish-addr), so
# every delivery crosses Redis pub/sub. Stop everything on exit.
#
# Environment: as bench.sh, plus REDIS_PORT (16380), PUB_ADDR
# (127.0.0.1:8081) and PUB_ADMIN_ADDR (127.0.0.1:9091).
set -euo pipefail

if [[ $# -lt 1 ]]; then
	echo "usage: $0 NAME [loadtest fanout flags...]" >&2
	exit 2
fi
name=$1
shift

OUT=${OUT:-/tmp/pl-bench}
REDIS_PORT=${REDIS_PORT:-16380}
PUB_ADDR=${PUB_ADDR:-127.0.0.1:8081}
PUB_ADMIN_ADDR=${PUB_ADMIN_ADDR:-127.0.0.1:9091}
export OUT
export PARTYLINE_JWT_SECRET=${PARTYLINE_JWT_SECRET:-bench-secret-0123456789abcdef0123456789}
export PARTYLINE_API_KEY=${PARTYLINE_API_KEY:-bench-api-key}
export PARTYLINE_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
mkdir -p "$OUT"

pids=()
cleanup() {
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null || true
	done
	for p in "${pids[@]}"; do
		for _ in $(seq 300); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$p" 2>/dev/null || true
	done
}
trap cleanup EXIT

taskset -c 1 redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save "" --appendonly no \
	>"$OUT/$name.redis.log" 2>&1 &
pids+=($!)
for i in $(seq 50); do
	redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break
	[[ $i -eq 50 ]] && { echo "redis-server did not start" >&2; exit 1; }
	sleep 0.1
done

go build -o "$OUT/partyline-a" ./cmd/partyline
rm -rf "$OUT/data-$name-a"
mkdir -p "$OUT/data-$name-a"
PARTYLINE_DEV=1 taskset -c 1 "$OUT/partyline-a" serve --node-id bench-a \
	--addr "$PUB_ADDR" --admin-addr "$PUB_ADMIN_ADDR" --voice-udp-addr "${PUB_ADDR%:*}:0" \
	--data-dir "$OUT/data-$name-a" \
	>"$OUT/$name.node-a.log" 2>&1 &
pids+=($!)
for i in $(seq 100); do
	curl -fsS "http://$PUB_ADDR/readyz" >/dev/null 2>&1 && break
	[[ $i -eq 100 ]] && { echo "node A did not become ready; see $OUT/$name.node-a.log" >&2; exit 1; }
	sleep 0.1
done

"$(dirname "$0")/bench.sh" "$name" fanout "$@" -publish-addr "$PUB_ADDR"
