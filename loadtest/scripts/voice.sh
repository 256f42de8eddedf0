#!/usr/bin/env bash
# voice.sh measures voice forwarding on one server core: rooms of 5
# participants, 1 of them sending 50 packets a second (the voice
# scenario's defaults), every packet forwarded to the other 4.
#
#   loadtest/scripts/voice.sh ROOMS [ROOMS...]
#
# For each room count it starts a fresh server on core 0 (taskset -c 0) and
# runs `loadtest run --scenario voice` with ROOMS*5 participants
# (real Pion PeerConnections, ICE on loopback) on core 1. After WARMUP
# seconds (20) it reads the server's CPU time (/proc/PID/stat) and its
# partyline_voice_* metrics, again after WINDOW seconds (30), and reports
# forwarded packets per second, the server's CPU as a share of one core,
# and their ratio: forwarded packets per second per core. Output goes to
# $OUT/voice.txt, the participants' summaries to $OUT/voice-ROOMS.loadtest.txt.
# Run it from the repository root. Environment as for bench.sh, plus
# WARMUP and WINDOW; with PROFILE set, the server is CPU-profiled over each
# window into $OUT/voice-ROOMS.pprof.
set -euo pipefail

if [[ $# -lt 1 ]]; then
	echo "usage: $0 ROOMS [ROOMS...]" >&2
	exit 2
fi

OUT=${OUT:-/tmp/pl-bench}
ADDR=${ADDR:-127.0.0.1:8080}
ADMIN_ADDR=${ADMIN_ADDR:-127.0.0.1:9090}
SERVER_CPU=${SERVER_CPU:-0}
CLIENT_CPU=${CLIENT_CPU:-1}
WARMUP=${WARMUP:-20}
WINDOW=${WINDOW:-30}
ROOM_SIZE=5 # the voice scenario's room_size and speakers
SPEAKERS=1
export PARTYLINE_JWT_SECRET=${PARTYLINE_JWT_SECRET:-bench-secret-0123456789abcdef0123456789}
ulimit -n "$(ulimit -Hn)"

# shellcheck source=lib.sh
source "$(dirname "$0")/lib.sh"
pl_build

# metric NAME prints the server's value of an unlabelled metric.
metric() {
	curl -fsS "http://$ADMIN_ADDR/metrics" | awk -v m="$1" '$1 == m { print $2; found = 1 } END { if (!found) print 0 }'
}
# ticks prints the server's user+system CPU time in clock ticks.
ticks() {
	awk '{ print $14 + $15 }' "/proc/$server/stat"
}
hz=$(getconf CLK_TCK)

report=$OUT/voice.txt
{
	echo "# $(date -u +%Y-%m-%dT%H:%M:%SZ) $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
	echo "# server built from $built; server on core $SERVER_CPU, participants on core $CLIENT_CPU"
	echo "# rooms of $ROOM_SIZE with $SPEAKERS speaker(s); warm-up ${WARMUP}s, window ${WINDOW}s"
	printf '%-6s %-13s %-13s %-10s %-14s %-9s %-12s %s\n' rooms participants forwarded/s server_CPU forwarded/s/core dropped/s client_CPU busy_before
} | tee "$report"

for rooms in "$@"; do
	name=voice-$rooms
	vus=$((rooms * ROOM_SIZE))
	pl_wait_quiet
	pl_start "$name"
	taskset -c "$CLIENT_CPU" "$OUT/loadtest" run --url "http://$ADDR" --scenario voice \
		--vus "$vus" --duration "$((WARMUP + WINDOW + 5))s" \
		>"$OUT/$name.loadtest.txt" 2>&1 &
	client=$!
	sleep "$WARMUP"
	c0=$(awk '{ print $14 + $15 }' "/proc/$client/stat")
	t0=$(ticks) f0=$(metric partyline_voice_forwarded_packets_total) d0=$(metric partyline_voice_dropped_packets_total)
	joined=$(metric partyline_voice_participants)
	if [[ -n ${PROFILE:-} ]]; then
		curl -fsS -o "$OUT/$name.pprof" "http://$ADMIN_ADDR/debug/pprof/profile?seconds=$WINDOW" &
	fi
	sleep "$WINDOW"
	t1=$(ticks) f1=$(metric partyline_voice_forwarded_packets_total) d1=$(metric partyline_voice_dropped_packets_total)
	c1=$(awk '{ print $14 + $15 }' "/proc/$client/stat")
	wait "$client" || echo "loadtest exited with $?; see $OUT/$name.loadtest.txt" >&2
	pl_stop
	awk -v r="$rooms" -v j="$joined" -v v="$vus" -v f0="$f0" -v f1="$f1" -v d0="$d0" -v d1="$d1" \
		-v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v hz="$hz" -v w="$WINDOW" -v b="$busy" 'BEGIN {
		pps = (f1 - f0) / w; cpu = (t1 - t0) / hz / w; ccpu = (c1 - c0) / hz / w
		printf "%-6d %-13s %-13.0f %-10s %-14.0f %-9.1f %-12s %s%%\n", r, j "/" v, pps, sprintf("%.1f%%", 100 * cpu), (cpu > 0 ? pps / cpu : 0), (d1 - d0) / w, sprintf("%.1f%%", 100 * ccpu), b
	}' | tee -a "$report"
done
