# lib.sh: what bench.sh and voice.sh share. Source it from the repository
# root after setting OUT, ADDR, ADMIN_ADDR, SERVER_CPU and CLIENT_CPU.
#
#   pl_build        builds $OUT/partyline (from COMMIT, when set) and
#                   $OUT/loadtest, and sets `built`
#   pl_wait_quiet   waits up to QUIET_WAIT s for the machine to be below
#                   BUSY_MAX % busy, and sets `busy`
#   pl_start NAME   starts a fresh server on core SERVER_CPU with an empty
#                   data dir and waits until it is ready; sets `server`
#   pl_stop         stops it (it drains, then exits)

pl_build() {
	mkdir -p "$OUT"
	if [[ -n ${COMMIT:-} ]]; then
		local commit src
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
}

# Other processes on these two cores would distort every figure: wait (up to
# QUIET_WAIT seconds) until the machine is below BUSY_MAX percent busy over
# 3 s, and say so when it never gets there.
pl_busy_pct() {
	local a b
	read -r -a a < <(head -1 /proc/stat)
	sleep 3
	read -r -a b < <(head -1 /proc/stat)
	local busy=$(((b[1] + b[2] + b[3] + b[6] + b[7] + b[8]) - (a[1] + a[2] + a[3] + a[6] + a[7] + a[8])))
	local idle=$(((b[4] + b[5]) - (a[4] + a[5])))
	echo $((100 * busy / (busy + idle + 1)))
}

pl_wait_quiet() {
	local waited=0
	while busy=$(pl_busy_pct) && [[ $busy -gt ${BUSY_MAX:-10} ]]; do
		if [[ $waited -ge ${QUIET_WAIT:-180} ]]; then
			echo "warning: the machine is still ${busy}% busy; measuring anyway" >&2
			break
		fi
		echo "machine ${busy}% busy; waiting for it to calm down" >&2
		sleep 7
		waited=$((waited + 10))
	done
}

pl_start() {
	local name=$1 data=$OUT/data-$1
	rm -rf "$data"
	mkdir -p "$data"
	PARTYLINE_DEV=1 \
		PARTYLINE_MAX_CONNS_PER_USER=100000 \
		PARTYLINE_PUBLISH_RATE=1000 \
		taskset -c "$SERVER_CPU" "$OUT/partyline" serve \
		--addr "$ADDR" --admin-addr "$ADMIN_ADDR" --data-dir "$data" \
		>"$OUT/$name.server.log" 2>&1 &
	server=$!
	trap pl_stop EXIT
	local i
	for i in $(seq 100); do
		if ! kill -0 "$server" 2>/dev/null; then
			echo "server exited; see $OUT/$name.server.log" >&2
			exit 1
		fi
		curl -fsS "http://$ADDR/readyz" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	echo "server did not become ready; see $OUT/$name.server.log" >&2
	exit 1
}

pl_stop() {
	if [[ -n ${server:-} ]] && kill -0 "$server" 2>/dev/null; then
		kill "$server"
		# The drain window is 10 s; the server exits on its own well within 30.
		local i
		for i in $(seq 300); do
			kill -0 "$server" 2>/dev/null || break
			sleep 0.1
		done
		kill -0 "$server" 2>/dev/null && kill -9 "$server"
	fi
	[[ -n ${server:-} ]] && wait "$server" 2>/dev/null
	server=
	return 0
}
