# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
# shellcheck shell=bash
#
# oap.sh: the oap section of `make bench`, sourced by bench.sh (whose
# settings, topology, nginx, wrk, cleanup and helpers it uses).
#
#   oap   the shipper's CPU and peak RSS under HTTP/1.1 load at a fixed rate
#         (pace.c, BENCH_OAP_RATE, 10,000 req/s by default: the rate the
#         shipper's target is set at) -> nginx with OAP configured, once per
#         oap_mode (BENCH_OAP_MODES), and once with OAP
#         off for reference. OAP is the test fake (selftests/oap/fake_oap,
#         gRPC C core, its NDJSON thrown away); the Kubernetes API is the fake
#         API server (selftests/k8s/fake_apiserver.py) serving nginx's pod
#         (the bench's pod cgroup, the server address) and wrk's (the client
#         address), because kaccess sends to OAP only what it can name.
#
# A run that could not keep the rate (pace's rate below it) is reported at
# the rate it reached, and the share at SHIPPER_RATE_REF req/s is derived as
# in the throughput section (cpu_share.awk).

readonly -a OAP_API_PORTS=(19820 19821 19822 19823) OAP_METRICS_PORTS=(19824 19825 19826 19827)
readonly OAP_NAMESPACE=kaccess-bench
readonly OAP_CLIENT_POD_UID=6b616363-6573-4000-8000-62656e636863 # not a cgroup: wrk is no local pod

FAKE_API_PID=""
FAKE_OAP_PID=""

read_oap_settings() {
	local mode

	OAP_MODES=${BENCH_OAP_MODES:-off metrics access_logs both compatible}
	OAP_MODES=${OAP_MODES//,/ }
	for mode in $OAP_MODES; do
		case $mode in
		off | metrics | access_logs | both | compatible) ;;
		*) usage_error "BENCH_OAP_MODES: unknown mode '$mode' (expected off, metrics, access_logs, both, compatible)" ;;
		esac
	done
	# Each run starts just after a drain and lasts 2.5 intervals: two drains
	# (meters, compatible-mode logs) fall inside it. The agent's default
	# interval is 60 s, so 10 s shows six times the drains per second.
	OAP_INTERVAL_S=${BENCH_OAP_INTERVAL_S:-10}
	OAP_RATE=${BENCH_OAP_RATE:-$SHIPPER_RATE_REF}
	require_count BENCH_OAP_RATE "$OAP_RATE" 1000000
	OAP_SECONDS=${BENCH_OAP_SECONDS:-$((OAP_INTERVAL_S * 5 / 2))}
	require_count BENCH_OAP_SECONDS "$OAP_SECONDS" 600
	require_count BENCH_OAP_INTERVAL_S "$OAP_INTERVAL_S" 3600
}

# The first of the given loopback ports nobody listens on.
free_loopback_port() {
	local port

	for port in "$@"; do
		if ! ss -ltnH "sport = :$port" | grep -q .; then
			echo "$port"
			return 0
		fi
	done
	die "no free loopback port among $*"
}

# A running pod as the API server lists it: $1 name, $2 uid, $3 IP, $4 app label.
pod_object() {
	printf '{"metadata": {"name": "%s", "namespace": "%s", "uid": "%s", "labels": {"app": "%s"}}, ' \
		"$1" "$OAP_NAMESPACE" "$2" "$4"
	printf '"spec": {"nodeName": "%s"}, "status": {"phase": "Running", "podIP": "%s", ' "$(hostname)" "$3"
	printf '"podIPs": [{"ip": "%s"}], "hostIP": "127.0.0.1"}}' "$3"
}

start_fake_api() {
	local repo i

	repo=$(cd "$BENCH_DIR/../.." && pwd)
	OAP_API_PORT=$(free_loopback_port "${OAP_API_PORTS[@]}")
	/usr/bin/python3 "$repo/selftests/k8s/fake_apiserver.py" --port "$OAP_API_PORT" --bookmark-s 5 \
		>/dev/null 2>"$WORK_DIR/fake_api.err" &
	FAKE_API_PID=$!
	for ((i = 0; i < 100; i++)); do
		curl -sf --max-time 1 "http://127.0.0.1:$OAP_API_PORT/_control/stats" >/dev/null 2>&1 && break
		is_running "$FAKE_API_PID" || die "the fake API server exited: $(tail -3 "$WORK_DIR/fake_api.err")"
		sleep 0.1
	done
	add_fake_pod "$(pod_object bench-server "${POD_CGROUP##*/pod}" "$SERVER_ADDR" bench-server)"
	add_fake_pod "$(pod_object bench-client "$OAP_CLIENT_POD_UID" "$CLIENT_ADDR" bench-client)"
}

add_fake_pod() {
	curl -sf --max-time 5 -o /dev/null -d "$1" "http://127.0.0.1:$OAP_API_PORT/_control/add_pod" ||
		die "the fake API server refused a pod: $1"
}

start_fake_oap() {
	local i

	"$FAKE_OAP" --listen 127.0.0.1:0 --port-file "$WORK_DIR/fake_oap.port" --out /dev/null \
		2>"$WORK_DIR/fake_oap.err" &
	FAKE_OAP_PID=$!
	for ((i = 0; i < 50; i++)); do
		[[ -s $WORK_DIR/fake_oap.port ]] && break
		is_running "$FAKE_OAP_PID" || die "fake_oap exited: $(tail -3 "$WORK_DIR/fake_oap.err")"
		sleep 0.1
	done
	OAP_PORT=$(cat "$WORK_DIR/fake_oap.port")
	[[ -n $OAP_PORT ]] || die "fake_oap wrote no port"
}

# Poll the agent's /metrics (10 s at most) until the resolver has synced:
# before that, nothing is named and nothing goes to OAP.
wait_for_k8s_sync() {
	local i

	for ((i = 0; i < 100; i++)); do
		if curl -sf --max-time 1 "$OAP_METRICS_URL" | grep -q '^kaccess_k8s_synced 1'; then
			return 0
		fi
		sleep 0.1
	done
	die "the agent's Kubernetes resolver did not sync within 10 s: $(tail -3 "$AGENT_LOG")"
}

# kaccess_drains_total now, from the agent's /metrics.
drains_now() {
	curl -sf --max-time 2 "$OAP_METRICS_URL" | awk '$1 == "kaccess_drains_total" { print $2; found = 1 }
		END { if (!found) print -1 }'
}

# Wait (an interval and 10 s at most) until the agent drains its next
# bucket: a run that starts there holds the same number of drains, whatever
# the clock.
wait_for_next_drain() {
	local before i

	before=$(drains_now)
	for ((i = 0; i < (OAP_INTERVAL_S + 10) * 10; i++)); do
		(($(drains_now) > before)) && return 0
		sleep 0.1
	done
	die "the agent drained no bucket within $((OAP_INTERVAL_S + 10)) s"
}

# Sum of a /metrics family's samples whose labels contain $3 (any when
# empty), from file $1.
metric_sum() {
	awk -v name="$2" -v match_text="$3" 'index($0, name "{") == 1 && (match_text == "" || index($0, match_text)) { s += $NF }
		END { printf "%.0f\n", s }' "$1"
}

# Keep-alive GETs at $OAP_RATE req/s from the client pod for $2 s; pace's
# NDJSON line to $1.
run_pace() {
	local out=$1 seconds=$2

	ip netns exec "$NS_CLIENT" "${CLIENT_CPU[@]}" "$PACE" --addr "$SERVER_ADDR" --port "$SERVER_PORT" \
		--rate "$OAP_RATE" --connections "$CONNECTIONS" --seconds "$seconds" >"$out" 2>&1 ||
		die "pace failed: $(tail -3 "$out")"
}

# From pace's line, as parse_wrk's fields: req/s, p50 and p99 (0: not
# measured), errors, non-2xx (0), requests answered.
parse_pace() {
	awk '/"type":"pace_done"/ {
			n = split($0, kv, /[{},:"]+/)
			for (i = 1; i < n; i++) v[kv[i]] = kv[i + 1]
			printf "%s\t0\t0\t%d\t0\t%d\n", v["requests_per_s"], v["errors"], v["responses"]
			found = 1
		}
		END { exit !found }' "$1"
}

oap_run() {
	local mode=$1 out=$WORK_DIR/oap-$1 args extra cpu_ns_before ticks_before started_ns result line drains_before
	local map_kib

	args=(-o none -i "$OAP_INTERVAL_S" --set "k8s_api_server=http://127.0.0.1:$OAP_API_PORT"
		--set "http_listen=127.0.0.1:$OAP_METRICS_PORT")
	if [[ $mode != off ]]; then
		args+=(--set "oap_address=127.0.0.1:$OAP_PORT" --set "oap_mode=$mode")
	fi
	if [[ -n ${BENCH_AGENT_EXTRA:-} ]]; then
		read -ra extra <<<"$BENCH_AGENT_EXTRA"
		args+=("${extra[@]}")
	fi
	launch_agent "oap-agent-$mode" "${args[@]}"
	wait_for_k8s_sync
	wait_for_next_drain
	drains_before=$(drains_now)
	ticks_before=$(cpu_ticks "$AGENT_PID")
	cpu_ns_before=$(cpu_ns "$AGENT_PID")
	started_ns=$(date +%s%N)
	run_pace "$out.pace" "$OAP_SECONDS"
	line="$mode\t$(($(cpu_ns "$AGENT_PID") - cpu_ns_before))\t$(($(date +%s%N) - started_ns))"
	line+="\t$(($(cpu_ticks "$AGENT_PID") - ticks_before))\t$(proc_kib "$AGENT_PID" VmHWM)\t$(proc_kib "$AGENT_PID" VmRSS)"
	map_kib=$(bpf_map_rss_kib "$AGENT_PID")
	curl -sf --max-time 10 -o "$out.prom" "$OAP_METRICS_URL" || die "could not read $OAP_METRICS_URL"
	halt_agent
	result=$(parse_pace "$out.pace") || die "could not read pace's output: $(tail -3 "$out.pace")"
	line+="\t$(cut -f6 <<<"$result")\t$(cut -f1 <<<"$result")"
	line+="\t$(metric_sum "$out.prom" kaccess_oap_messages_total 'result="enqueued"')"
	line+="\t$(metric_sum "$out.prom" kaccess_oap_messages_total 'result="sent"')"
	line+="\t$(metric_sum "$out.prom" kaccess_oap_dropped_total '')"
	line+="\t$(($(awk '$1 == "kaccess_drains_total" { print $2 }' "$out.prom") - drains_before))"
	line+="\t$map_kib"
	line+="\t$(metric_sum "$out.prom" kaccess_lost_events_total '')"
	printf '%b\n' "$line" >>"$WORK_DIR/oap.tsv"
	log "$(printf 'oap %-11s %8.0f req/s' "$mode" "${result%%$'\t'*}")"
}

oap_section() {
	local mode

	log "oap: the shipper with OAP in modes: $OAP_MODES; ${OAP_SECONDS}s at $OAP_RATE req/s each (about $(($(wc -w <<<"$OAP_MODES") * (OAP_SECONDS + OAP_INTERVAL_S / 2 + 8)))s)"
	OAP_METRICS_PORT=$(free_loopback_port "${OAP_METRICS_PORTS[@]}")
	OAP_METRICS_URL="http://127.0.0.1:$OAP_METRICS_PORT/metrics"
	start_fake_api
	start_fake_oap
	start_nginx
	run_wrk "$WORK_DIR/oap-warmup.txt" "$WARMUP_S"
	: >"$WORK_DIR/oap.tsv"
	for mode in $OAP_MODES; do
		oap_run "$mode"
	done
	grpc_floor_run
	stop_process "$NGINX_PID"
	NGINX_PID=""
	stop_process "$FAKE_OAP_PID"
	FAKE_OAP_PID=""
	stop_process "$FAKE_API_PID"
	FAKE_API_PID=""
	printf '\nShipper per OAP mode: pace --rate %d --connections %d --seconds %d (HTTP/1.1 keep-alive) -> nginx in the bench pod,\n  agent -o none -i %d with the fake API server\n' \
		"$OAP_RATE" "$CONNECTIONS" "$OAP_SECONDS" "$OAP_INTERVAL_S"
	cat <<EOF
  (nginx's and wrk's pods) and, but in mode off, fake_oap on loopback; each run starts just after a drain.
  CPU = the agent's threads' runtime over the paced run (schedstat); HWM = its VmHWM at the end,
  of which "maps": BPF maps' pages it maps (the ring buffer, its data once), the kernel's memory;
  drains = kaccess_drains_total during the run; OAP messages = kaccess_oap_* on /metrics, both streams;
  lost = the agent's kaccess_lost_events_total, every reason (records shed when the shipper fell behind...)
EOF
	awk -f "$BENCH_DIR/cpu_share.awk" -f "$BENCH_DIR/oap.awk" -v ndjson="$RESULTS_TMP" \
		-v cpu_target_pct="$SHIPPER_CPU_TARGET_PCT" -v rss_target_mib="$SHIPPER_RSS_TARGET_MIB" \
		-v rate_ref="$SHIPPER_RATE_REF" -v interval_s="$OAP_INTERVAL_S" "$WORK_DIR/oap.tsv" ||
		die "the oap report failed"
	grpc_floor_report
}

# The OAP path alone, without the agent (grpc_floor.c): the same fake_oap,
# one message per exchange at the section's rate, transport only and with
# each message built and packed as the shipper does.
grpc_floor_run() {
	log "oap: grpc_floor at $OAP_RATE messages/s"
	"$GRPC_FLOOR" --to "127.0.0.1:$OAP_PORT" --rate "$OAP_RATE" --messages $((OAP_RATE * 5)) \
		>"$WORK_DIR/grpc_floor.json" 2>"$WORK_DIR/grpc_floor.err" ||
		die "grpc_floor failed: $(tail -3 "$WORK_DIR/grpc_floor.err")"
}

grpc_floor_report() {
	local line

	line=$(cat "$WORK_DIR/grpc_floor.json")
	printf '
The OAP path alone (grpc_floor: no agent, %d messages at %d/s to the same fake_oap, the process'"'"'s CPU but its pacing'"'"'s sleeps):
' \
		"$(json_number <(echo "$line") messages)" "$(json_number <(echo "$line") rate)"
	printf '  transport (an encoded %d-byte protocol log queued and written by the sender'"'"'s gRPC over HTTP/2, grpc_conn.c): %s us per message = %s%% of a core\n' \
		"$(json_number <(echo "$line") message_bytes)" "$(json_number <(echo "$line") transport_us_per_message)" \
		"$(json_number <(echo "$line") transport_core_pct_at_rate)"
	printf '  built as the shipper builds it (connection, protocol log, two calls), packed, queued, written: %s us = %s%%\n' \
		"$(json_number <(echo "$line") build_us_per_message)" "$(json_number <(echo "$line") build_core_pct_at_rate)"
	printf '  one message per HTTP exchange (OAP'"'"'s protocol), so at %d exchanges/s the transport alone is the floor\n' "$OAP_RATE"
	printf '  encoding that protocol log (in one thread, off the network): protobuf-c %s ns, kaccess'"'"'s one-pass encoder %s ns\n' \
		"$(json_number <(echo "$line") encode_protobuf_c_ns)" "$(json_number <(echo "$line") encode_pb_pack_ns)"
	printf '  the exchange'"'"'s message with its two calls, from the record: through protobuf-c'"'"'s structs %s ns, written directly (what the shipper sends) %s ns\n' \
		"$(json_number <(echo "$line") exchange_structs_ns)" "$(json_number <(echo "$line") exchange_direct_ns)"
	echo "$line" >>"$RESULTS_TMP"
}
