# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# sections.sh: the churn, scale and memory sections of `make bench`, sourced
# by bench.sh (whose settings, topology, cleanup and helpers they use).
#
#   churn        short connections from loadgen, flat out, without and with
#                the agent: connections/s, lost events, and the agent's counts
#                against the generator's own
#   scale-conns  BENCH_SCALE_CONNECTIONS idle connections opened while the
#                agent runs: conn_table entries, losses, `kaccess status`
#                time, the agent's RSS and maps; then all closed: back to 0?
#   scale-rows   BENCH_SCALE_ROWS distinct rows in one 5-second bucket: the
#                drain's duration from /metrics
#   memory       the default maps' memlock on this machine, the kernel's
#                formula for each map type, and the total projected for 64 CPUs
#   k8s          the Kubernetes resolver holding BENCH_K8S_PODS pods and
#                BENCH_K8S_SERVICES services from the fake API server: its
#                memory and the cost of a peer lookup (k8s_scale.c)
#
# Every figure is printed as a table and appended to $RESULTS_TMP as NDJSON.

readonly CHURN_PORT=9000
readonly HOLD_FIRST_PORT=9100 HOLD_PORTS=64 # a multiple of every worker count
readonly ROWS_FIRST_PORT=20000
readonly ROWS_INTERVAL_S=5
readonly ROWS_METRICS_ADDR=127.0.0.1
readonly ROWS_DRAIN_TARGET_MS=20
readonly SCALE_CONN_TABLE_MAX=262144 # both ends of 100,000 connections fit
readonly ROWS_AGG_MAX=32768
readonly MEMORY_TARGET_MIB=256 MEMORY_PROJECT_CPUS=64
readonly SHIPPER_CPU_TARGET_PCT=1 SHIPPER_RSS_TARGET_MIB=32 SHIPPER_RATE_REF=10000
readonly PROBE_PIN_DIR=/sys/fs/bpf/kaccess-bench-probe
readonly STATUS_REPEATS=3
readonly BYTES_PER_EXCHANGE=64 # loadgen's request and response
# test_k8s's bounds: the store under 32 MiB, a lookup at most 4x the one in a
# hundredfold smaller store and under 5 us.
readonly K8S_RSS_TARGET_MIB=32 K8S_MAX_LOOKUP_MULTIPLE=4 K8S_MAX_LOOKUP_NS=5000

LOADGEN_SERVER_PID=""
LOADGEN_CLIENT_PID=""

# ---- settings ------------------------------------------------------------------

# BENCH_SECTIONS into SECTIONS, in the order they run.
read_sections() {
	local wanted=${BENCH_SECTIONS:-all} name section known

	wanted=${wanted//,/ }
	SECTIONS=""
	for name in $wanted; do
		case $name in
		all) name=$ALL_SECTIONS ;;
		scale) name="scale-conns scale-rows" ;;
		esac
		for section in $name; do
			known=0
			[[ " $ALL_SECTIONS " == *" $section "* ]] && known=1
			((known)) || usage_error "BENCH_SECTIONS: unknown section '$section' (expected all, ${ALL_SECTIONS// /, } or scale)"
		done
		SECTIONS+=" $name"
	done
	# Each at most once, in the canonical order.
	SECTIONS=$(for section in $ALL_SECTIONS; do
		if [[ " $SECTIONS " == *" $section "* ]]; then echo "$section"; fi
	done | xargs)
	[[ -n $SECTIONS ]] || usage_error "BENCH_SECTIONS='${BENCH_SECTIONS:-}': no section selected"
}

section_enabled() {
	[[ " $SECTIONS " == *" $1 "* ]]
}

read_section_settings() {
	local quick=${BENCH_QUICK:-0}

	CHURN_PAIRS=${BENCH_CHURN_PAIRS:-$( ((quick)) && echo 1 || echo 3)}
	CHURN_SECONDS=${BENCH_CHURN_SECONDS:-$( ((quick)) && echo 3 || echo 5)}
	CHURN_CONCURRENCY=${BENCH_CHURN_CONCURRENCY:-128}
	SCALE_CONNECTIONS=${BENCH_SCALE_CONNECTIONS:-$( ((quick)) && echo 20000 || echo 100000)}
	SCALE_ROWS=${BENCH_SCALE_ROWS:-10000}
	ROWS_ROUNDS=${BENCH_ROWS_ROUNDS:-$( ((quick)) && echo 1 || echo 3)}
	K8S_PODS=${BENCH_K8S_PODS:-10000}
	K8S_SERVICES=${BENCH_K8S_SERVICES:-2000}
	require_count BENCH_CHURN_PAIRS "$CHURN_PAIRS" 100
	require_count BENCH_CHURN_SECONDS "$CHURN_SECONDS" 600
	require_count BENCH_CHURN_CONCURRENCY "$CHURN_CONCURRENCY" 4096
	require_count BENCH_SCALE_CONNECTIONS "$SCALE_CONNECTIONS" 120000 # both ends fit SCALE_CONN_TABLE_MAX
	require_count BENCH_SCALE_ROWS "$SCALE_ROWS" 30000                # ports 20000.., rows < ROWS_AGG_MAX
	require_count BENCH_ROWS_ROUNDS "$ROWS_ROUNDS" 20
	require_count BENCH_K8S_PODS "$K8S_PODS" 60000 # pod IPs 10.100.0.0/16 and up, as the fake gives them
	require_count BENCH_K8S_SERVICES "$K8S_SERVICES" 60000
}

# ---- helpers ------------------------------------------------------------------

# The number after "key": in a flat JSON text (file $1), or "" when absent.
json_number() {
	awk -v key="$2" 'match($0, "\"" key "\":-?[0-9.]+") {
		print substr($0, RSTART + length(key) + 3, RLENGTH - length(key) - 3); exit }' "$1"
}

# The last line of file $1 that contains "type":"$2".
last_line_of_type() {
	grep "\"type\":\"$2\"" "$1" | tail -1 || true
}

# "lost":{...} of a kaccess status --json file: the object, and a short text.
lost_object() {
	grep -o '"lost":{[^}]*}' "$1" | head -1 | sed 's/^"lost"://' || true
}

lost_text() {
	printf '%s' "$1" | tr -d '{}"' | tr ',' '\n' | awk -F: '$2 != 0 { printf "%s%s=%s", sep, $1, $2; sep = ", " }
		END { if (!sep) printf "none" }'
}

milliseconds_now() {
	date +%s%3N
}

# POD: the command prefix that runs a command in cgroup $1 and network
# namespace $2. The cgroup comes first: `ip netns exec` remounts /sys,
# hiding the cgroup filesystem. Every step execs, so "${POD[@]}" cmd &
# gives the command's own pid in $!.
pod() {
	# shellcheck disable=SC2016 # expanded by the inner shell
	POD=(bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' join-cgroup "$1"
		ip netns exec "$2")
}

# Wait up to $3 s for a line matching $2 in file $1 from process $4 ($5 names it).
wait_for_line() {
	local file=$1 pattern=$2 seconds=$3 pid=$4 name=$5 i

	for ((i = 0; i < seconds * 10; i++)); do
		if grep -q "$pattern" "$file" 2>/dev/null; then
			return 0
		fi
		is_running "$pid" || die "$name exited: $(tail -3 "$file" "$file.err" 2>/dev/null)"
		sleep 0.1
	done
	die "$name: no '$pattern' after ${seconds}s"
}

# loadgen's server in the server pod: $1 output file, then its options.
start_loadgen_server() {
	local out=$1

	shift
	pod "$LOADGEN_SERVER_CGROUP" "$NS_SERVER"
	"${POD[@]}" "${SERVER_CPU[@]}" "$LOADGEN" server \
		--listen "$SERVER_ADDR" "$@" >"$out" 2>"$out.err" &
	LOADGEN_SERVER_PID=$!
	wait_for_line "$out" '"type":"server_ready"' 60 "$LOADGEN_SERVER_PID" "loadgen server"
}

# SIGTERM; its "server_done" line has the final counts.
stop_loadgen_server() {
	local out=$1

	stop_and_check "$LOADGEN_SERVER_PID" "$out.err" "loadgen server"
	LOADGEN_SERVER_PID=""
	grep -q '"type":"server_done"' "$out" || die "loadgen server printed no totals"
}

# The agent for these sections, with "$@"; stdout in $WORK_DIR/$1.out.
# Ready when `kaccess status` reads its pins: it pins after attaching.
launch_agent() {
	local name=$1 i

	shift
	"$KACCESS" --pin-dir "$PIN_DIR" "$@" >"$WORK_DIR/$name.out" 2>"$WORK_DIR/$name.err" &
	AGENT_PID=$!
	AGENT_LOG=$WORK_DIR/$name.err
	for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
		if "$KACCESS" status --pin-dir "$PIN_DIR" --json >"$WORK_DIR/status.json" 2>/dev/null &&
			[[ $(json_number "$WORK_DIR/status.json" agent_pid) == "$AGENT_PID" ]]; then
			return 0
		fi
		is_running "$AGENT_PID" || die "the agent exited before it was ready: $(tail -5 "$AGENT_LOG")"
		sleep 0.1
	done
	die "the agent was not ready after ${READY_TIMEOUT_S}s: $(tail -5 "$AGENT_LOG")"
}

halt_agent() {
	stop_and_check "$AGENT_PID" "$AGENT_LOG" agent
	AGENT_PID=""
}

# `kaccess status --json` into file $1; prints its wall time in ms.
timed_status() {
	local started ended

	started=$(date +%s%N)
	"$KACCESS" status --pin-dir "$PIN_DIR" --json >"$1" || die "kaccess status failed"
	ended=$(date +%s%N)
	awk -v ns=$((ended - started)) 'BEGIN { printf "%.1f", ns / 1e6 }'
}

# Median wall time (ms) of STATUS_REPEATS `kaccess status` runs; the last
# output stays in file $1.
status_median_ms() {
	local i times=()

	for ((i = 0; i < STATUS_REPEATS; i++)); do
		times+=("$(timed_status "$1")")
	done
	printf '%s\n' "${times[@]}" | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'
}

conn_table_entries() {
	"$KACCESS" status --pin-dir "$PIN_DIR" --json >"$WORK_DIR/entries.json" || die "kaccess status failed"
	json_number "$WORK_DIR/entries.json" entries # maps[0] is conn_table
}

# VmRSS or VmHWM of a process, in KiB.
proc_kib() {
	awk -v key="$2:" '$1 == key { print $2 }' "/proc/$1/status"
}

# KiB of a process's resident set that are BPF maps' pages it maps (the
# ring buffer, its data mapped once, and .bss): the kernel's
# memory, counted again in the process's VmRSS.
bpf_map_rss_kib() {
	awk '/^[0-9a-f]+-[0-9a-f]+ / { map = $6 == "anon_inode:bpf-map" }
		map && $1 == "Rss:" { kib += $2 } END { print kib + 0 }' "/proc/$1/smaps"
}

# One line per map the agent's programs use: id, type, name, flags, key and
# value bytes, max_entries, memlock bytes (TSV, sorted by id).
agent_maps_table() {
	local ids id

	ids=$(prog_table | awk 'BEGIN { FS = "\t" } NR == FNR { want[$1] = 1; next }
		($1 in want) && $6 != "-" { n = split($6, m, ","); for (i = 1; i <= n; i++) print m[i] }' \
		"$WORK_DIR/ids" - | sort -un)
	for id in $ids; do
		"$BPFTOOL" -j map show id "$id" | awk '
			function field(key,    s) {
				if (!match($0, "\"" key "\":(\"[^\"]*\"|[0-9]+)")) return "-"
				s = substr($0, RSTART + length(key) + 3, RLENGTH - length(key) - 3)
				gsub(/"/, "", s); return s
			}
			{ printf "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", field("id"), field("type"), field("name"),
			  field("flags"), field("bytes_key"), field("bytes_value"), field("max_entries"),
			  field("bytes_memlock") }'
	done
}

# Recursion misses of the agent's programs ("name=N, ..." or "none"): runs
# the kernel skipped because the program was already running on that CPU.
agent_recursion_misses() {
	"$BPFTOOL" -j prog show | sed 's/},{"id":/}\n{"id":/g' | awk 'BEGIN { FS = "\t" }
		NR == FNR { want[$1] = 1; next }
		match($0, /"id":[0-9]+/) {
			id = substr($0, RSTART + 5, RLENGTH - 5)
			if (!(id in want) || !match($0, /"recursion_misses":[0-9]+/)) next
			misses = substr($0, RSTART + 19, RLENGTH - 19)
			match($0, /"name":"[^"]*"/); name = substr($0, RSTART + 8, RLENGTH - 9)
			printf "%s%s=%s", sep, name, misses; sep = ", "
		}
		END { if (!sep) printf "none" }' "$WORK_DIR/ids" -
}

# The agent's program ids into $WORK_DIR/ids (bench.sh's helper).
record_agent_programs() {
	find_agent_prog_ids >"$WORK_DIR/ids"
	[[ -s $WORK_DIR/ids ]] || die "found none of the agent's programs in 'bpftool prog show'"
}

verdict() {
	if (($1)); then echo PASS; else echo MISS; fi
}

# One target line, as report.awk prints them: $1 verdict, $2 text, $3 name,
# $4 the NDJSON line's target-specific fields.
target() {
	printf '  %-6s  %s\n' "$1" "$2"
	printf '{"type":"target","name":"%s",%s,"verdict":"%s"}\n' "$3" "$4" \
		"$(printf '%s' "$1" | tr '[:upper:]' '[:lower:]')" >>"$RESULTS_TMP"
}

# ---- churn --------------------------------------------------------------------

churn_section() {
	local round mode

	log "churn: $CHURN_PAIRS rounds of baseline and agent runs of ${CHURN_SECONDS}s (about $((CHURN_PAIRS * 2 * (CHURN_SECONDS + 4)))s)"
	: >"$WORK_DIR/churn.tsv"
	for ((round = 1; round <= CHURN_PAIRS; round++)); do
		if ((round % 2)); then
			set -- baseline agent
		else
			set -- agent baseline
		fi
		for mode in "$@"; do
			churn_once "$mode" "$round"
		done
	done
	churn_report
}

# What the agent counted for the client and the server cgroup, from its
# NDJSON (aggregate rows of every bucket, connection events), comma-separated:
# connects, connects succeeded, client closes, client bytes read, written,
# accepts, server closes, server bytes read, written, open events, close events.
agent_churn_counts() {
	awk -v client="$LOADGEN_CLIENT_CGROUP_ID" -v server="$LOADGEN_SERVER_CGROUP_ID" '
		function num(key) {
			if (!match($0, "\"" key "\":[0-9]+")) return 0
			return substr($0, RSTART + length(key) + 3, RLENGTH - length(key) - 3) + 0
		}
		/"type":"aggregate"/ {
			id = num("cgroup_id")
			if (id == client) {
				connects += num("connect_count"); connected += num("connect_success_count")
				client_closes += num("close_count"); client_read += num("read_bytes")
				client_written += num("write_bytes")
			} else if (id == server) {
				accepts += num("accept_count"); server_closes += num("close_count")
				server_read += num("read_bytes"); server_written += num("write_bytes")
			}
		}
		/"type":"connection"/ {
			id = num("cgroup_id")
			if (id != client && id != server) next
			if ($0 ~ /"event":"open"/) opens++
			else if ($0 ~ /"event":"close"/) closes++
		}
		END {
			printf "%d,%d,%d,%d,%d,%d,%d,%d,%d,%d,%d\n", connects, connected, client_closes,
			       client_read, client_written, accepts, server_closes, server_read, server_written,
			       opens, closes
		}' "$1"
}

churn_once() {
	local mode=$1 run=$2 out=$WORK_DIR/churn-$1-$2 client server counts="-" lost="-" misses="-"

	if [[ $mode == agent ]]; then
		launch_agent "churn-agent-$run" -o json -i 60
		record_agent_programs
	fi
	start_loadgen_server "$out.server" --ports "$CHURN_PORT" --mode echo
	sleep "$SETTLE_S"
	pod "$LOADGEN_CLIENT_CGROUP" "$NS_CLIENT"
	"${POD[@]}" "${CLIENT_CPU[@]}" "$LOADGEN" churn \
		--to "$SERVER_ADDR" --ports "$CHURN_PORT" --seconds "$CHURN_SECONDS" \
		--concurrency "$CHURN_CONCURRENCY" >"$out.client" 2>"$out.client.err" ||
		die "loadgen churn failed: $(tail -3 "$out.client.err")"
	stop_loadgen_server "$out.server"
	client=$(last_line_of_type "$out.client" churn_done)
	server=$(last_line_of_type "$out.server" server_done)
	[[ -n $client ]] || die "loadgen churn printed no result"
	if [[ $mode == agent ]]; then
		sleep 1 # events still in the ring buffer: the reader polls every 200 ms
		"$KACCESS" status --pin-dir "$PIN_DIR" --json >"$out.status" || die "kaccess status failed"
		lost=$(lost_object "$out.status")
		misses=$(agent_recursion_misses)
		halt_agent
		counts=$(agent_churn_counts "$WORK_DIR/churn-agent-$run.out")
	fi
	printf '%s\t%d\t%s\t%s\t%s\t%s\t%s\n' "$mode" "$run" "$client" "$server" "$lost" "$misses" "$counts" \
		>>"$WORK_DIR/churn.tsv"
	log "$(printf 'churn %-8s %d/%d: %8.0f connections/s' "$mode" "$run" "$CHURN_PAIRS" \
		"$(json_number <(echo "$client") connections_per_s)")"
}

churn_report() {
	printf '\nConnection churn: loadgen in %s (cgroup %s) -> loadgen in %s (cgroup %s), port %d\n' \
		"$NS_CLIENT" "${LOADGEN_CLIENT_CGROUP#"$CGROUP_V2"}" "$NS_SERVER" \
		"${LOADGEN_SERVER_CGROUP#"$CGROUP_V2"}" "$CHURN_PORT"
	printf '  each connection: connect, %d-byte request, %d-byte response, server closes, client reads EOF and closes\n' \
		"$BYTES_PER_EXCHANGE" "$BYTES_PER_EXCHANGE"
	printf '  %d in flight, %ss per run, %d runs per mode, interleaved; agent: -o json -i 60, watching every process\n' \
		"$CHURN_CONCURRENCY" "$CHURN_SECONDS" "$CHURN_PAIRS"
	awk -f "$BENCH_DIR/churn.awk" -v ndjson="$RESULTS_TMP" -v bytes="$BYTES_PER_EXCHANGE" \
		"$WORK_DIR/churn.tsv" || die "the churn report failed"
}

# ---- scale: idle connections ---------------------------------------------------

# Worker processes for COUNT descriptors with this RLIMIT_NOFILE (the hard
# limit; raising it needs CAP_SYS_RESOURCE): a power of two up to 64.
workers_for() {
	local count=$1 budget workers=1

	budget=$(($(ulimit -Hn) - 512))
	((budget > 0)) || die "RLIMIT_NOFILE hard limit $(ulimit -Hn) is too low"
	while ((workers * budget < count)); do
		workers=$((workers * 2))
	done
	((workers <= 64)) || die "$count descriptors need more than 64 processes at RLIMIT_NOFILE $(ulimit -Hn)"
	echo "$workers"
}

# Leftover conn_table entries, grouped: "N x role/state/flags" (evidence for
# entries that outlive their sockets).
conn_table_leftovers() {
	"$BPFTOOL" -j map dump pinned "$PIN_DIR/conn_table" 2>/dev/null | sed 's/"formatted"/\n&/g' | awk '
		/"formatted"/ {
			role = match($0, /"role":[0-9]+/) ? substr($0, RSTART + 7, RLENGTH - 7) : "?"
			state = match($0, /"state":[0-9]+/) ? substr($0, RSTART + 8, RLENGTH - 8) : "?"
			flags = match($0, /"flags":[0-9]+/) ? substr($0, RSTART + 8, RLENGTH - 8) : "?"
			n[(role == 1 ? "client" : role == 2 ? "server" : "role " role) " state=" state " flags=" flags]++
		}
		END { for (k in n) { printf "%s%d x %s", sep, n[k], k; sep = "; " } }'
}

# Sockets of our namespaces other than TIME-WAIT and listeners.
live_sockets() {
	local n=0 ns

	for ns in "$NS_CLIENT" "$NS_SERVER"; do
		n=$((n + $(ip netns exec "$ns" ss -tanH | awk '$1 != "TIME-WAIT" && $1 != "LISTEN"' | wc -l)))
	done
	echo "$n"
}

scale_conns_section() {
	local out=$WORK_DIR/scale workers entries_idle status_idle_ms rss_idle entries_full status_full_ms
	local rss_full hwm_full lost misses ready accepted expected i entries_now stable=0 prev=-1
	local closing_started closed_ms="" leftover="" leftovers="" live maps_total opened_cps held
	local t0 lost_closed

	workers=$(workers_for "$SCALE_CONNECTIONS")
	expected=$((2 * SCALE_CONNECTIONS))
	log "scale: $SCALE_CONNECTIONS idle connections ($workers worker processes per side, $HOLD_PORTS server ports)"
	launch_agent scale-agent -o none -i 60 --set "conn_table_max_entries=$SCALE_CONN_TABLE_MAX"
	record_agent_programs
	sleep "$SETTLE_S"
	status_idle_ms=$(status_median_ms "$out.idle.status")
	entries_idle=$(json_number "$out.idle.status" entries)
	rss_idle=$(proc_kib "$AGENT_PID" VmRSS)

	start_loadgen_server "$out.server" --ports "$HOLD_FIRST_PORT-$((HOLD_FIRST_PORT + HOLD_PORTS - 1))" \
		--mode hold --processes "$workers"
	pod "$LOADGEN_CLIENT_CGROUP" "$NS_CLIENT"
	"${POD[@]}" "${CLIENT_CPU[@]}" "$LOADGEN" hold \
		--to "$SERVER_ADDR" --ports "$HOLD_FIRST_PORT-$((HOLD_FIRST_PORT + HOLD_PORTS - 1))" \
		--count "$SCALE_CONNECTIONS" --concurrency 256 --processes "$workers" --timeout 300 \
		>"$out.client" 2>"$out.client.err" &
	LOADGEN_CLIENT_PID=$!
	wait_for_line "$out.client" '"type":"hold_ready"' 330 "$LOADGEN_CLIENT_PID" "loadgen hold"
	ready=$(last_line_of_type "$out.client" hold_ready)
	held=$(json_number <(echo "$ready") connections)
	opened_cps=$(json_number <(echo "$ready") connections_per_s)
	expected=$((2 * held)) # the largest count reached, when not all could open
	# The server accepts what the client opened; then the table settles.
	for ((i = 0; i < 300; i++)); do
		accepted=$(json_number <(last_line_of_type "$out.server" server_progress) accepted)
		[[ ${accepted:-0} -ge $held ]] && break
		sleep 0.1
	done
	for ((i = 0; i < 100 && stable < 3; i++)); do
		entries_now=$(conn_table_entries)
		if [[ $entries_now == "$prev" ]]; then stable=$((stable + 1)); else stable=0; fi
		prev=$entries_now
		sleep 0.1
	done
	status_full_ms=$(status_median_ms "$out.full.status")
	entries_full=$(json_number "$out.full.status" entries)
	lost=$(lost_object "$out.full.status")
	rss_full=$(proc_kib "$AGENT_PID" VmRSS)
	hwm_full=$(proc_kib "$AGENT_PID" VmHWM)
	agent_maps_table >"$out.maps"
	maps_total=$(awk -F'\t' '{ s += $8 } END { print s + 0 }' "$out.maps")

	# Close them all: the table must return to where it was.
	closing_started=$(milliseconds_now)
	stop_and_check "$LOADGEN_CLIENT_PID" "$out.client.err" "loadgen hold"
	LOADGEN_CLIENT_PID=""
	while (($(milliseconds_now) - closing_started < 30000)); do
		entries_now=$(conn_table_entries)
		if ((entries_now <= entries_idle)); then
			closed_ms=$(($(milliseconds_now) - closing_started))
			break
		fi
		sleep 0.1
	done
	live=$(live_sockets)
	if [[ -z $closed_ms ]]; then
		leftover=$((entries_now - entries_idle))
		leftovers=$(conn_table_leftovers)
	fi
	misses=$(agent_recursion_misses)
	"$KACCESS" status --pin-dir "$PIN_DIR" --json >"$out.closed.status" || die "kaccess status failed"
	lost_closed=$(lost_object "$out.closed.status")
	stop_loadgen_server "$out.server"
	halt_agent

	t0=$(json_number <(echo "$ready") elapsed_ns)
	printf '\nScale: %d idle connections, %s -> %s (%d ports), opened while the agent runs (-o none, conn_table_max_entries=%d)\n' \
		"$SCALE_CONNECTIONS" "$NS_CLIENT" "$NS_SERVER" "$HOLD_PORTS" "$SCALE_CONN_TABLE_MAX"
	printf '  opened %d of %d in %.1f s (%.0f/s) by %d client processes (RLIMIT_NOFILE %d each), accepted by %d server processes\n' \
		"$held" "$SCALE_CONNECTIONS" "$(awk -v ns="$t0" 'BEGIN { print ns / 1e9 }')" "$opened_cps" \
		"$workers" "$(ulimit -Hn)" "$workers"
	if ((held < SCALE_CONNECTIONS)); then
		printf '  note: only %d could open: loadgen counted %s failed connects and %s errors (%s)\n' "$held" \
			"$(json_number <(echo "$ready") failed)" "$(json_number <(echo "$ready") errors)" \
			"$(tail -1 "$out.client.err" 2>/dev/null || true)"
	fi
	printf '  %-34s %14s %14s %12s\n' "" "idle (before)" "connections" "delta"
	printf '  %-34s %14d %14d %12d  (expected +%d: both ends)\n' "conn_table entries" "$entries_idle" \
		"$entries_full" $((entries_full - entries_idle)) "$expected"
	printf '  %-34s %14s %14s %12s\n' "kaccess status --json (median ms)" "$status_idle_ms" "$status_full_ms" \
		"$(awk -v a="$status_idle_ms" -v b="$status_full_ms" 'BEGIN { printf "x%.1f", (a > 0 ? b / a : 0) }')"
	printf '  %-34s %14.1f %14.1f %12s  (VmHWM %.1f MiB)\n' "agent RSS (MiB)" "$(awk -v k="$rss_idle" 'BEGIN { print k / 1024 }')" \
		"$(awk -v k="$rss_full" 'BEGIN { print k / 1024 }')" \
		"$(awk -v a="$rss_idle" -v b="$rss_full" 'BEGIN { printf "%+.1f", (b - a) / 1024 }')" \
		"$(awk -v k="$hwm_full" 'BEGIN { print k / 1024 }')"
	printf '  lost: %s with all open; %s after closing them all\n' "$(lost_text "$lost")" "$(lost_text "$lost_closed")"
	printf '  the agent'"'"'s maps (bpftool map show, memlock): %.1f MiB in total\n' \
		"$(awk -v b="$maps_total" 'BEGIN { print b / 1048576 }')"
	awk -F'\t' '{ printf "    %-16s %-14s max_entries %8d  memlock %10.2f MiB\n", $3, $2, $7, $8 / 1048576 }' "$out.maps"
	if [[ -n $closed_ms ]]; then
		printf '  all closed: conn_table back to %d entries %.1f s after the close began\n' "$entries_idle" \
			"$(awk -v ms="$closed_ms" 'BEGIN { print ms / 1000 }')"
	else
		printf '  all closed: conn_table still holds %d entries more than before after 30 s, while %d sockets\n' "$leftover" "$live"
		printf '    other than TIME-WAIT and listeners remain in %s and %s; leftover entries: %s\n' \
			"$NS_CLIENT" "$NS_SERVER" "$leftovers"
	fi
	printf '  recursion misses of the agent'"'"'s programs: %s\n' "$misses"

	{
		printf '{"type":"scale_connections","connections_requested":%d,"connections_opened":%d,"open_seconds":%.3f,' \
			"$SCALE_CONNECTIONS" "$held" "$(awk -v ns="$t0" 'BEGIN { print ns / 1e9 }')"
		printf '"worker_processes":%d,"conn_table_max_entries":%d,"conn_table_entries_idle":%d,"conn_table_entries":%d,' \
			"$workers" "$SCALE_CONN_TABLE_MAX" "$entries_idle" "$entries_full"
		printf '"conn_table_entries_expected":%d,"lost":%s,"status_ms_idle":%s,"status_ms":%s,' \
			"$((entries_idle + expected))" "${lost:-null}" "$status_idle_ms" "$status_full_ms"
		printf '"agent_rss_kib_idle":%d,"agent_rss_kib":%d,"agent_hwm_kib":%d,"maps_memlock_bytes":%d,' \
			"$rss_idle" "$rss_full" "$hwm_full" "$maps_total"
		printf '"closed_back_to_idle_ms":%s,"leftover_entries":%s,"live_sockets_after_close":%d,"recursion_misses":%s,' \
			"${closed_ms:-null}" "${leftover:-0}" "$live" "$(json_string "$misses")"
		printf '"lost_after_close":%s}\n' "${lost_closed:-null}"
		awk -F'\t' '{ printf "{\"type\":\"scale_map\",\"name\":\"%s\",\"map_type\":\"%s\",\"max_entries\":%d,\"memlock_bytes\":%d}\n",
			$3, $2, $7, $8 }' "$out.maps"
	} >>"$RESULTS_TMP"

	printf '\nTargets (scale: connections)\n'
	target "$(verdict $((entries_full - entries_idle == expected)))" \
		"conn_table tracks both ends of every connection: $((entries_full - entries_idle)) of $expected" \
		scale_conn_table "\"entries\":$((entries_full - entries_idle)),\"expected\":$expected"
	target "$(verdict $(($(json_number <(echo "$lost") conn_table_full) == 0)))" \
		"conn_table_full losses: $(json_number <(echo "$lost") conn_table_full)" \
		scale_conn_table_full "\"conn_table_full\":$(json_number <(echo "$lost") conn_table_full)"
	target "$(verdict $((${closed_ms:-999999} <= 5000)))" \
		"conn_table back to its idle count within 5 s of closing: $([[ -n $closed_ms ]] && echo "${closed_ms} ms" || echo "no, $leftover entries left after 30 s")" \
		scale_conn_table_drains "\"closed_back_to_idle_ms\":${closed_ms:-null},\"leftover_entries\":${leftover:-0}"
}

# ---- scale: rows of one bucket ---------------------------------------------------

# A free loopback port for the agent's /metrics.
free_metrics_port() {
	local port

	for port in 19810 19811 19812 19813 19814 19815 19816 19817; do
		if ! ss -ltnH "sport = :$port" | grep -q .; then
			echo "$port"
			return 0
		fi
	done
	die "no free port in 19810..19817 for the agent's /metrics"
}

# Scrape /metrics into file $1; prints "seconds bytes".
scrape_metrics() {
	curl -sS --max-time 10 -o "$1" -w '%{time_total} %{size_download}' "$METRICS_URL" ||
		die "could not read $METRICS_URL"
}

# A metric's value without labels, from a scrape file.
metric_value() {
	awk -v name="$2" '$1 == name { print $2; exit }' "$1"
}

# Poll /metrics (bounded) until its last completed bucket starts at $1 (s).
wait_for_bucket() {
	local start_s=$1 file=$2 i

	for ((i = 0; i < 100; i++)); do
		SCRAPE=$(scrape_metrics "$file")
		if [[ $(metric_value "$file" kaccess_bucket_start_timestamp_seconds) == "$start_s" ]]; then
			return 0
		fi
		sleep 0.2
	done
	die "the bucket starting at $start_s was not published on /metrics within 20 s"
}

scale_rows_section() {
	local out=$WORK_DIR/rows port workers round now_ms start_ms last_port client elapsed_ns
	local drain rows ours ours_connects lost misses baseline_drain baseline_rows scrape_s scrape_bytes
	local lost_metric

	port=$(free_metrics_port)
	METRICS_URL="http://$ROWS_METRICS_ADDR:$port/metrics"
	workers=$(workers_for "$((SCALE_ROWS + 1024))")
	last_port=$((ROWS_FIRST_PORT + SCALE_ROWS - 1))
	log "scale: $SCALE_ROWS rows in one ${ROWS_INTERVAL_S}s bucket, $ROWS_ROUNDS rounds (about $((ROWS_ROUNDS * 10 + 15))s)"
	launch_agent rows-agent -o none -i "$ROWS_INTERVAL_S" --set "agg_rows_max_entries=$ROWS_AGG_MAX" \
		--set "http_listen=$ROWS_METRICS_ADDR:$port"
	record_agent_programs
	start_loadgen_server "$out.server" --ports "$ROWS_FIRST_PORT-$last_port" --mode echo --processes "$workers"
	# Baseline: the drain of a bucket with (almost) no rows, this run.
	now_ms=$(milliseconds_now)
	start_ms=$(((now_ms / 1000 / ROWS_INTERVAL_S) * ROWS_INTERVAL_S * 1000))
	wait_for_bucket $((start_ms / 1000)) "$out.baseline.prom"
	baseline_drain=$(metric_value "$out.baseline.prom" kaccess_drain_duration_seconds)
	baseline_rows=$(metric_value "$out.baseline.prom" kaccess_bucket_rows)
	: >"$out.tsv"
	for ((round = 1; round <= ROWS_ROUNDS; round++)); do
		# Start 100 ms into a bucket: all connections must fall in it.
		now_ms=$(milliseconds_now)
		start_ms=$(((now_ms / 1000 / ROWS_INTERVAL_S + 1) * ROWS_INTERVAL_S * 1000))
		sleep "$(awk -v ms=$((start_ms + 100 - now_ms)) 'BEGIN { printf "%.3f", ms / 1000 }')"
		pod "$LOADGEN_CLIENT_CGROUP" "$NS_CLIENT"
	"${POD[@]}" "${CLIENT_CPU[@]}" "$LOADGEN" churn \
			--to "$SERVER_ADDR" --ports "$ROWS_FIRST_PORT-$last_port" --count "$SCALE_ROWS" \
			--concurrency 64 --timeout $((ROWS_INTERVAL_S - 1)) >"$out.client.$round" 2>"$out.client.$round.err" ||
			die "loadgen churn failed: $(tail -3 "$out.client.$round.err")"
		client=$(last_line_of_type "$out.client.$round" churn_done)
		elapsed_ns=$(json_number <(echo "$client") elapsed_ns)
		wait_for_bucket $((start_ms / 1000)) "$out.$round.prom"
		read -r scrape_s scrape_bytes <<<"$SCRAPE"
		drain=$(metric_value "$out.$round.prom" kaccess_drain_duration_seconds)
		rows=$(metric_value "$out.$round.prom" kaccess_bucket_rows)
		ours=$(grep -c "^kaccess_bucket_connects{.*cgroup_id=\"$LOADGEN_CLIENT_CGROUP_ID\"" "$out.$round.prom" || true)
		ours_connects=$(awk -v id="cgroup_id=\"$LOADGEN_CLIENT_CGROUP_ID\"" \
			'index($0, "kaccess_bucket_connects{") == 1 && index($0, id) { s += $NF } END { print s + 0 }' "$out.$round.prom")
		printf '%d\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$round" "$(json_number <(echo "$client") completed)" \
			"$elapsed_ns" "$rows" "$ours" "$ours_connects" "$drain" "$scrape_s" "$scrape_bytes" >>"$out.tsv"
		log "$(printf 'rows round %d/%d: %s rows drained in %.2f ms' "$round" "$ROWS_ROUNDS" "$rows" \
			"$(awk -v s="$drain" 'BEGIN { print s * 1000 }')")"
	done
	scrape_metrics "$out.final.prom" >/dev/null
	lost_metric=$(awk -F'[{}" =]+' '$1 == "kaccess_lost_events_total" && $NF != 0 { printf "%s%s=%s", sep, $3, $NF; sep = ", " }
		END { if (!sep) printf "none" }' "$out.final.prom")
	"$KACCESS" status --pin-dir "$PIN_DIR" --json >"$out.status" || die "kaccess status failed"
	lost=$(lost_object "$out.status")
	misses=$(agent_recursion_misses)
	stop_loadgen_server "$out.server"
	halt_agent

	printf '\nScale: %d distinct rows in one %d-second bucket (client cgroup -> %d server ports, one connection each)\n' \
		"$SCALE_ROWS" "$ROWS_INTERVAL_S" "$SCALE_ROWS"
	printf '  agent: -o none -i %d, agg_rows_max_entries=%d; drain time = kaccess_drain_duration_seconds on /metrics\n' \
		"$ROWS_INTERVAL_S" "$ROWS_AGG_MAX"
	awk -f "$BENCH_DIR/rows.awk" -v ndjson="$RESULTS_TMP" -v expected="$SCALE_ROWS" \
		-v baseline_drain="$baseline_drain" -v baseline_rows="$baseline_rows" \
		-v target_ms="$ROWS_DRAIN_TARGET_MS" -v interval_s="$ROWS_INTERVAL_S" \
		-v lost="$(lost_text "$lost")" -v lost_json="$lost" -v misses="$misses" "$out.tsv" ||
		die "the rows report failed"
	[[ $lost_metric == "$(lost_text "$lost")" ]] ||
		log "warning: /metrics reports lost events '$lost_metric', kaccess status '$(lost_text "$lost")'"
}

# ---- memory ---------------------------------------------------------------------

# Size of a kernel struct from the kernel's BTF.
btf_struct_size() {
	"$BPFTOOL" btf dump file /sys/kernel/btf/vmlinux format raw 2>/dev/null |
		awk -v name="'$1'" '$2 == "STRUCT" && $3 == name { sub(/size=/, "", $4); print $4; exit }'
}

possible_cpus() {
	awk -F, '{ for (i = 1; i <= NF; i++) { n = split($i, r, "-"); c += (n == 2 ? r[2] - r[1] + 1 : 1) } }
		END { print c }' /sys/devices/system/cpu/possible
}

# memlock of a probe map made with bpftool: type, key, value, entries, flags.
probe_memlock() {
	local path=$PROBE_PIN_DIR/probe

	rm -f "$path"
	"$BPFTOOL" map create "$path" type "$1" key "$2" value "$3" entries "$4" name kab_probe flags "$5" ||
		die "bpftool map create $* failed"
	json_number <("$BPFTOOL" -j map show pinned "$path") bytes_memlock
	rm -f "$path"
}

memory_section() {
	local out=$WORK_DIR/memory cpus probe_full probe_less id type flags key value max_entries

	log "memory: the agent at its defaults, and probe maps of the same shapes"
	launch_agent memory-agent -o none
	record_agent_programs
	agent_maps_table >"$out.maps"
	halt_agent
	cpus=$(possible_cpus)
	mkdir -p "$PROBE_PIN_DIR"
	# Per element, measured: two probe maps of the same shape whose sizes
	# differ by 64 entries and share the bucket count (a power of two).
	: >"$out.probes"
	while IFS=$'\t' read -r id type _ flags key value max_entries _; do
		case $type in
		hash)
			if ((flags & 1)); then # BPF_F_NO_PREALLOC: allocated on use
				continue
			fi
			probe_full=$(probe_memlock hash "$key" "$value" "$max_entries" "$flags")
			probe_less=$(probe_memlock hash "$key" "$value" "$((max_entries - 64))" "$flags")
			;;
		percpu_array)
			probe_full=$(probe_memlock percpu_array "$key" "$value" "$max_entries" "$flags")
			probe_less=$(probe_memlock percpu_array "$key" "$value" "$((max_entries * 2))" "$flags")
			;;
		*)
			continue
			;;
		esac
		printf '%s\t%s\t%s\n' "$id" "$probe_full" "$probe_less" >>"$out.probes"
	done <"$out.maps"
	rmdir "$PROBE_PIN_DIR" 2>/dev/null || true

	printf '\nMemory of the default maps (memlock in bpftool map show, the kernel'"'"'s own accounting), projected to %d CPUs\n' \
		"$MEMORY_PROJECT_CPUS"
	printf '  this machine: %d possible CPUs (/sys/devices/system/cpu/possible); kernel %s\n' "$cpus" "$(uname -r)"
	awk -f "$BENCH_DIR/memory.awk" -v ndjson="$RESULTS_TMP" -v cpus="$cpus" \
		-v project_cpus="$MEMORY_PROJECT_CPUS" -v target_mib="$MEMORY_TARGET_MIB" \
		-v htab_size="$(btf_struct_size bpf_htab)" -v bucket_size="$(btf_struct_size bucket)" \
		-v array_size="$(btf_struct_size bpf_array)" \
		-v storage_map_size="$(btf_struct_size bpf_local_storage_map)" \
		-v storage_bucket_size="$(btf_struct_size bpf_local_storage_map_bucket)" \
		"$out.probes" "$out.maps" || die "the memory report failed"
}

# ---- k8s: the resolver at scale --------------------------------------------------

# k8s_scale runs the fake API server by its path relative to the repository.
k8s_section() {
	local out=$WORK_DIR/k8s repo

	repo=$(cd "$BENCH_DIR/../.." && pwd)
	log "k8s: the resolver with $K8S_PODS pods and $K8S_SERVICES services from the fake API server (seconds)"
	(cd "$repo" && "$K8S_SCALE" --pods "$K8S_PODS" --services "$K8S_SERVICES") >"$out.ndjson" 2>"$out.err" ||
		die "k8s_scale failed: $(tail -3 "$out.err")"
	printf '
Kubernetes resolver: pods and services listed and watched from the fake API server (selftests/k8s/fake_apiserver.py)
'
	printf '  in one process, as test_k8s does (selftests/k8s/scale.h); memory = its VmRSS growth over the sync and the lookups;
'
	printf '  lookup = k8s_resolve_peer of pod IPs of the set, out of order, average wall time
'
	awk -f "$BENCH_DIR/k8s.awk" -v ndjson="$RESULTS_TMP" -v rss_target_mib="$K8S_RSS_TARGET_MIB" \
		-v max_lookup_multiple="$K8S_MAX_LOOKUP_MULTIPLE" -v max_lookup_ns="$K8S_MAX_LOOKUP_NS" \
		"$out.ndjson" || die "the k8s report failed"
}

# ---- shipper CPU and RSS during the throughput agent runs ------------------------

# utime + stime of process $1, in clock ticks (/proc/PID/stat fields 14, 15;
# the command name in field 2 has no spaces: kaccess).
cpu_ticks() {
	awk '{ print $14 + $15 }' "/proc/$1/stat"
}

# CPU time of process $1 in ns: the scheduler's runtime of each of its
# threads (/proc/PID/task/TID/schedstat, field 1), exact where ticks are 10 ms.
cpu_ns() {
	cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f\n", s }'
}

shipper_report() {
	[[ -s $WORK_DIR/shipper.tsv ]] || return 0
	printf '\nShipper (the kaccess process) CPU and memory over the agent runs'"'"' wrk traffic\n'
	awk -f "$BENCH_DIR/cpu_share.awk" -f "$BENCH_DIR/shipper.awk" -v ndjson="$RESULTS_TMP" -v clk_tck="$CLOCK_TICKS_PER_S" \
		-v cpu_target_pct="$SHIPPER_CPU_TARGET_PCT" -v rss_target_mib="$SHIPPER_RSS_TARGET_MIB" \
		-v rate_ref="$SHIPPER_RATE_REF" "$WORK_DIR/shipper.tsv" || die "the shipper report failed"
}
