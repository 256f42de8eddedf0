#!/usr/bin/env bash
# all.sh runs every measurement of docs/benchmarks.md once, each against a
# fresh server (see bench.sh), and names the outputs after ROUND.
#
#   COMMIT=68adbda loadtest/scripts/all.sh ROUND
#
# With PROFILE=1 the server's CPU profile over each measured window is
# written next to the reports ($OUT/<name>-<rate>.pprof). Run it from the
# repository root; it takes about 7 minutes on a quiet machine.
set -euo pipefail

if [[ $# -ne 1 ]]; then
	echo "usage: $0 ROUND" >&2
	exit 2
fi
r=$1
OUT=${OUT:-/tmp/pl-bench}
export OUT
here=$(dirname "$0")

profile() {
	if [[ -n ${PROFILE:-} ]]; then
		echo "-server-profile $OUT/$1.pprof"
	fi
}

"$here/bench.sh" "idle-r$r" idle -conns 10000
# shellcheck disable=SC2046 # profile's output is meant to split into flag and value
"$here/bench.sh" "bc10k-r$r" fanout -conns 10000 -rate 1,5 -warmup 10s -duration 30s -publishers 16 $(profile "bc10k-r$r")
# shellcheck disable=SC2046
"$here/bench.sh" "bc5k-r$r" fanout -conns 5000 -rate 50,100,200 -warmup 10s -duration 30s -publishers 16 $(profile "bc5k-r$r")
# shellcheck disable=SC2046
"$here/bench.sh" "users-r$r" fanout -mode users -conns 10000 -rate 2000 -warmup 10s -duration 30s -publishers 16 $(profile "users-r$r")
