#!/usr/bin/env bash
# bench.sh runs one loadtest measurement against a fresh partyline server.
#
#   loadtest/scripts/bench.sh NAME idle|fanout [loadtest flags...]
#
# It builds both binaries, starts the server on core 0 (taskset -c 0) with an
# empty data dir, waits until it is ready, runs `loadtest` on core 1
# (taskset -c 1) with the given flags plus the addresses, the secret and the
# server's pid, then stops the server. Output goes to $OUT/NAME.txt (the
# report) and $OUT/NAME.log (progress), the server's log to
# $OUT/NAME.server.log. Run it from the repository root.
#
# Environment: OUT (default /tmp/pl-bench), ADDR (127.0.0.1:8080),
# ADMIN_ADDR (127.0.0.1:9090), SERVER_CPU (0), CLIENT_CPU (1), COMMIT (build
# the server from this commit, exported with git archive, instead of the
# working tree, so runs compare like with like while the tree changes),
# QUIET_WAIT and BUSY_MAX (below).
set -euo pipefail

if [[ $# -lt 2 ]]; then
	echo "usage: $0 NAME idle|fanout [loadtest flags...]" >&2
	exit 2
fi
name=$1
shift

OUT=${OUT:-/tmp/pl-bench}
ADDR=${ADDR:-127.0.0.1:8080}
ADMIN_ADDR=${ADMIN_ADDR:-127.0.0.1:9090}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
export PARTYLINE_JWT_SECRET=${PARTYLINE_JWT_SECRET:-bench-secret-0123456789abcdef0123456789}
export PARTYLINE_API_KEY=${PARTYLINE_API_KEY:-bench-api-key}

# 10,000 sockets plus files: take the hard limit (20,000 here).
ulimit -n "$(ulimit -Hn)"

mkdir -p "$OUT"
if [[ -n ${COMMIT:-} ]]; then
	commit=$(git rev-parse --short "$COMMIT")
	src=$OUT/src-$commit
	if [[ ! -d $src ]]; then
		mkdir -p "$src.tmp"
		git archive "$commit" | tar -x -C "$src.tmp"
		mv "$src.tmp" "$src"
	fi
	(cd "$src" && go build -o "$OUT/partyline" ./cmd/partyline)
	built="commit $commit"
else
	go build -o "$OUT/partyline" ./cmd/partyline
	built="working tree at $(git rev-parse --short HEAD)"
	git diff --quiet HEAD -- . ':!loadtest' ':!cmd/loadtest' ':!docs' || built="$built with uncommitted changes"
fi
go build -o "$OUT/loadtest" ./cmd/loadtest

for a in "$ADDR" "$ADMIN_ADDR"; do
	if ss -Htln "sport = :${a##*:}" | grep -q .; then
		echo "$a is already in use; is another server still running?" >&2
		exit 1
	fi
done

# Other processes on these two cores would distort every figure: wait (up to
# QUIET_WAIT seconds) until the machine is below BUSY_MAX percent busy over
# 3 s, and say so when it never gets there.
busy_pct() {
	local a b
	read -r -a a < <(head -1 /proc/stat)
	sleep 3
	read -r -a b < <(head -1 /proc/stat)
	local busy=$(((b[1] + b[2] + b[3] + b[6] + b[7] + b[8]) - (a[1] + a[2] + a[3] + a[6] + a[7] + a[8])))
	local idle=$(((b[4] + b[5]) - (a[4] + a[5])))
	echo $((100 * busy / (busy + idle + 1)))
}
QUIET_WAIT=${QUIET_WAIT:-180}
BUSY_MAX=${BUSY_MAX:-10}
waited=0
while busy=$(busy_pct) && [[ $busy -gt $BUSY_MAX ]]; do
	if [[ $waited -ge $QUIET_WAIT ]]; then
		echo "warning: the machine is still ${busy}% busy; measuring anyway" >&2
		break
	fi
	echo "machine ${busy}% busy; waiting for it to calm down" >&2
	sleep 7
	waited=$((waited + 10))
done

data=$OUT/data-$name
rm -rf "$data"
mkdir -p "$data"

PARTYLINE_DEV=1 \
	PARTYLINE_MAX_CONNS_PER_USER=100000 \
	PARTYLINE_PUBLISH_RATE=1000 \
	taskset -c "$SERVER_CPU" "$OUT/partyline" serve \
	--addr "$ADDR" --admin-addr "$ADMIN_ADDR" --data-dir "$data" \
	>"$OUT/$name.server.log" 2>&1 &
server=$!
stop_server() {
	if kill -0 "$server" 2>/dev/null; then
		kill "$server"
		# The drain window is 10 s; the server exits on its own well within 30.
		for _ in $(seq 300); do
			kill -0 "$server" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$server" 2>/dev/null && kill -9 "$server"
	fi
	wait "$server" 2>/dev/null || true
}
trap stop_server EXIT

for i in $(seq 100); do
	if ! kill -0 "$server" 2>/dev/null; then
		echo "server exited; see $OUT/$name.server.log" >&2
		exit 1
	fi
	curl -fsS "http://$ADDR/readyz" >/dev/null 2>&1 && break
	if [[ $i -eq 100 ]]; then
		echo "server did not become ready; see $OUT/$name.server.log" >&2
		exit 1
	fi
	sleep 0.1
done

{
	echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
	echo "# machine ${busy}% busy before the run; load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# server built from $built"
	echo "# server: taskset -c $SERVER_CPU partyline serve (pid $server); client: taskset -c $CLIENT_CPU loadtest $*"
} | tee "$OUT/$name.txt"

taskset -c "$CLIENT_CPU" "$OUT/loadtest" "$@" \
	-addr "$ADDR" -admin-addr "$ADMIN_ADDR" -server-pid "$server" \
	2> >(tee "$OUT/$name.log" >&2) | tee -a "$OUT/$name.txt"
