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

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
pl_build
pl_wait_quiet
pl_start "$name"

{
	echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
	echo "# machine ${busy}% busy before the run; load average $(cut -d' ' -f1-3 /proc/loadavg)"
	echo "# server built from $built"
	echo "# server: taskset -c $SERVER_CPU partyline serve (pid $server); client: taskset -c $CLIENT_CPU loadtest $*"
} | tee "$OUT/$name.txt"

taskset -c "$CLIENT_CPU" "$OUT/loadtest" "$@" \
	-addr "$ADDR" -admin-addr "$ADMIN_ADDR" -server-pid "$server" \
	2> >(tee "$OUT/$name.log" >&2) | tee -a "$OUT/$name.txt"
