# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# http2.sh: the http2 section of `make bench`, sourced by bench.sh (whose
# settings, topology, cgroups, agent start/stop, cleanup and helpers it uses).
#
#   http2   h2load in kab-cli -> nghttpd (h2c, prior knowledge) in kab-srv's
#           pod cgroup over the same veth pair as the throughput section,
#           BENCH_PAIRS rounds of baseline and agent (every feature on, HTTP
#           analysis included; BENCH_H2_AGENT=http: HTTP analysis without
#           L2-L4 or access-log records), interleaved. Reports the medians of req/s,
#           p50 and p99 latency (from h2load's per-request log: h2load prints
#           no percentiles), CPU per request (all CPUs' busy time over
#           requests done) and the shipper's share of it, the throughput
#           ratio against issue 4's target (HTTP/2 at least 95% of the
#           baseline) and the latency and CPU deltas.

readonly H2_PORT=8443
readonly H2_MIN_RATIO=0.95
readonly H2_STREAMS=10 # concurrent streams per connection (h2load -m)
readonly NGHTTPD=/usr/sbin/nghttpd H2LOAD=/usr/bin/h2load
H2_AGENT_MODE="" # the agent configuration (agent_settings), from BENCH_H2_AGENT

read_h2_agent_mode() {
	case ${BENCH_H2_AGENT:-all} in
	all) H2_AGENT_MODE=agent ;;
	http) H2_AGENT_MODE=agent_http ;;
	*) usage_error "BENCH_H2_AGENT: '$BENCH_H2_AGENT': expected all or http" ;;
	esac
}

NGHTTPD_PID=""

# nghttpd serving $BODY as /body: the same response as the wrk runs' nginx.
start_nghttpd() {
	mkdir -p "$WORK_DIR/h2www"
	printf '%s' "$BODY" >"$WORK_DIR/h2www/body"
	bash -c 'echo $$ >"$1/cgroup.procs" && shift && exec "$@"' join-cgroup "$CONTAINER_CGROUP" \
		ip netns exec "$NS_SERVER" "${SERVER_CPU[@]}" "$NGHTTPD" --no-tls -d "$WORK_DIR/h2www" \
		"$H2_PORT" >"$WORK_DIR/nghttpd.log" 2>&1 &
	NGHTTPD_PID=$!
	wait_for_nghttpd
}

# Until a prior-knowledge request gets the body; 5 s at most.
wait_for_nghttpd() {
	local i reply

	for ((i = 0; i < 50; i++)); do
		is_running "$NGHTTPD_PID" || die "nghttpd exited: $(tail -3 "$WORK_DIR/nghttpd.log")"
		reply=$(ip netns exec "$NS_CLIENT" curl -sS --max-time 1 --http2-prior-knowledge \
			"http://$SERVER_ADDR:$H2_PORT/body" 2>/dev/null) || reply=""
		[[ $reply == "$BODY" ]] && return 0
		sleep 0.1
	done
	die "nghttpd did not answer on $SERVER_ADDR:$H2_PORT"
}

# $1 output, $2 per-request log, $3 seconds.
run_h2load() {
	ip netns exec "$NS_CLIENT" "${CLIENT_CPU[@]}" "$H2LOAD" -t1 -c"$CONNECTIONS" -m"$H2_STREAMS" \
		-D"$3" --log-file="$2" "http://$SERVER_ADDR:$H2_PORT/body" >"$1" 2>&1 ||
		die "h2load failed: $(tail -3 "$1")"
}

# From h2load's summary and log: req/s, p50 and p99 in us, requests done,
# requests that failed or were not 2xx.
parse_h2load() {
	local rps done_count failed not2xx percentiles

	rps=$(sed -n 's/^finished in [^,]*, \([0-9.]*\) req\/s.*/\1/p' "$1")
	done_count=$(sed -n 's/^requests: .* \([0-9]*\) done, .*/\1/p' "$1")
	failed=$(sed -n 's/^requests: .* \([0-9]*\) failed, \([0-9]*\) errored.*/\1 \2/p' "$1")
	not2xx=$(awk '/^status codes:/ { gsub(/,/, ""); print $5 + $7 + $9 }' "$1")
	[[ -n $rps && -n $done_count && -n $failed && -n $not2xx ]] || return 1
	# the log's third column: microseconds from request to response end
	percentiles=$(cut -f3 "$2" | sort -n | awk '
		{ v[NR] = $1 }
		END {
			if (NR == 0) exit 1
			i50 = int(NR * 0.50 + 0.999999); i99 = int(NR * 0.99 + 0.999999)
			printf "%d\t%d\n", v[i50], v[i99]
		}') || return 1
	printf '%s\t%s\t%d\t%d\n' "$rps" "$percentiles" "$done_count" \
		"$(($(cut -d' ' -f1 <<<"$failed") + $(cut -d' ' -f2 <<<"$failed") + not2xx))"
}

# $1 mode (baseline or agent), $2 round.
h2_run_once() {
	local mode=$1 run=$2 out="$WORK_DIR/h2load-$1-$2.txt" log="$WORK_DIR/h2load-$1-$2.log" result
	local rps p50 p99 requests failed busy_before busy_us shipper_ns_before=0 shipper_ns=0

	[[ $mode == agent ]] && start_agent "$H2_AGENT_MODE"
	sleep "$SETTLE_S"
	[[ $mode == agent ]] && shipper_ns_before=$(cpu_ns "$AGENT_PID")
	busy_before=$(busy_cpu_ticks)
	run_h2load "$out" "$log" "$RUN_SECONDS"
	busy_us=$((($(busy_cpu_ticks) - busy_before) * 1000000 / CLOCK_TICKS_PER_S))
	[[ $mode == agent ]] && shipper_ns=$(($(cpu_ns "$AGENT_PID") - shipper_ns_before))
	[[ $mode == agent ]] && stop_agent
	result=$(parse_h2load "$out" "$log") || die "could not read h2load's output: $(tail -3 "$out")"
	printf '%s\t%d\t%s\t%d\t%d\n' "$mode" "$run" "$result" "$busy_us" "$shipper_ns" >>"$WORK_DIR/h2.tsv"
	IFS=$'\t' read -r rps p50 p99 requests failed <<<"$result"
	printf '{"type":"http2_run","mode":"%s","run":%d,"requests_per_s":%s,"p50_us":%s,"p99_us":%s,"requests":%s,"failed":%s,"busy_cpu_us":%d,"shipper_cpu_ns":%d}\n' \
		"$mode" "$run" "$rps" "$p50" "$p99" "$requests" "$failed" "$busy_us" "$shipper_ns" >>"$RESULTS_TMP"
	log "$(printf 'http2 %-8s %d/%d: %8.0f req/s' "$mode" "$run" "$PAIRS" "${result%%$'\t'*}")"
}

# Medians per mode, the ratio and deltas, the target.
h2_report() {
	local summary ratio met p50_delta p99_delta added_cpu_us mode

	printf '\nHTTP/2: h2load -t1 -c%d -m%d -D%ds (%s, %s) -> nghttpd --no-tls (%s, %s:%d, pod cgroup) over veth\n' \
		"$CONNECTIONS" "$H2_STREAMS" "$RUN_SECONDS" "$NS_CLIENT" "$CLIENT_ADDR" "$NS_SERVER" \
		"$SERVER_ADDR" "$H2_PORT"
	printf '  a %d-byte body; %d runs per mode, interleaved; agent: %s, -o json -i 60\n' \
		"${#BODY}" "$PAIRS" "$(agent_settings "$H2_AGENT_MODE" | sed 's/-s //g; s/ /, /g')"
	summary=$(awk -F'\t' '
		function median(list, n,    sorted, i, j, t) {
			for (i = 1; i <= n; i++) sorted[i] = list[i]
			for (i = 2; i <= n; i++)
				for (j = i; j > 1 && sorted[j - 1] > sorted[j]; j--) {
					t = sorted[j]; sorted[j] = sorted[j - 1]; sorted[j - 1] = t
				}
			return n % 2 ? sorted[(n + 1) / 2] : (sorted[n / 2] + sorted[n / 2 + 1]) / 2
		}
		# CPU per request: all CPUs busy time (h2load, nghttpd, the shipper,
		# softirq and BPF) and the shipper alone, over requests done
		{
			n[$1]++
			rps[$1, n[$1]] = $3; p50[$1, n[$1]] = $4; p99[$1, n[$1]] = $5; failed[$1] += $7
			cpu[$1, n[$1]] = $6 ? $8 / $6 : 0; shipper[$1, n[$1]] = $6 ? $9 / 1000 / $6 : 0
		}
		END {
			for (m in n) {
				for (i = 1; i <= n[m]; i++) {
					a[i] = rps[m, i]; b[i] = p50[m, i]; c[i] = p99[m, i]
					d[i] = cpu[m, i]; e[i] = shipper[m, i]
				}
				printf "%s\t%.1f\t%.0f\t%.0f\t%d\t%.3f\t%.3f\n", m, median(a, n[m]), median(b, n[m]),
					median(c, n[m]), failed[m], median(d, n[m]), median(e, n[m])
			}
		}' "$WORK_DIR/h2.tsv")
	printf '  %-10s %12s %10s %10s %8s %12s %14s\n' mode "req/s" "p50 us" "p99 us" failed "CPU us/req" "shipper us/req"
	for mode in baseline agent; do
		awk -F'\t' -v m="$mode" '$1 == m' <<<"$summary" | while IFS=$'\t' read -r m r a b f c s; do
			printf '  %-10s %12.1f %10d %10d %8d %12.2f %14.2f\n' "$m" "$r" "$a" "$b" "$f" "$c" "$s"
		done
	done
	read -r ratio p50_delta p99_delta added_cpu_us <<<"$(awk -F'\t' '
		{ r[$1] = $2; p50[$1] = $3; p99[$1] = $4; cpu[$1] = $6 }
		END {
			printf "%.4f %d %d %.3f\n", r["agent"] / r["baseline"], p50["agent"] - p50["baseline"],
				p99["agent"] - p99["baseline"], cpu["agent"] - cpu["baseline"]
		}' <<<"$summary")"
	printf '  agent/baseline: throughput %.1f%%, p50 %+d us, p99 %+d us, CPU per request %+.2f us\n' \
		"$(awk -v r="$ratio" 'BEGIN { print r * 100 }')" "$p50_delta" "$p99_delta" "$added_cpu_us"
	printf '{"type":"http2","ratio":%s,"p50_delta_us":%d,"p99_delta_us":%d,"added_cpu_us_per_request":%s,"runs_per_mode":%d}\n' \
		"$ratio" "$p50_delta" "$p99_delta" "$added_cpu_us" "$PAIRS" >>"$RESULTS_TMP"
	met=$(awk -v r="$ratio" -v t="$H2_MIN_RATIO" 'BEGIN { print (r >= t) ? 1 : 0 }')
	echo "Targets (issue 4):"
	target "$(verdict "$met")" "$(printf 'HTTP/2 throughput with HTTP analysis on: %.1f%% of baseline (target >= %.0f%%)' \
		"$(awk -v r="$ratio" 'BEGIN { print r * 100 }')" "$(awk -v t="$H2_MIN_RATIO" 'BEGIN { print t * 100 }')")" \
		http2_throughput "\"ratio\":$ratio,\"min_ratio\":$H2_MIN_RATIO"
	losses_report
}

http2_section() {
	local round mode

	read_h2_agent_mode
	start_nghttpd
	log "http2: $PAIRS rounds of baseline and agent runs of ${RUN_SECONDS}s (about $((PAIRS * 2 * (RUN_SECONDS + SETTLE_S + 2) + WARMUP_S))s)"
	: >"$WORK_DIR/h2.tsv"
	run_h2load "$WORK_DIR/h2-warmup.txt" "$WORK_DIR/h2-warmup.log" "$WARMUP_S"
	for ((round = 1; round <= PAIRS; round++)); do
		if ((round % 2)); then
			set -- baseline agent
		else
			set -- agent baseline
		fi
		for mode in "$@"; do
			h2_run_once "$mode" "$round"
		done
	done
	stop_process "$NGHTTPD_PID"
	NGHTTPD_PID=""
	h2_report
}
