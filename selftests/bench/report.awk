# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# report.awk: turn bench.sh's samples into the tables people read and the
# NDJSON lines machines read (appended to the file in `ndjson`).
#
# Input, tab-separated, one sample per line:
#   run   MODE RUN REQUESTS_PER_S LATENCY_P50_US LATENCY_P99_US SOCKET_ERRORS NON_2XX REQUESTS BUSY_CPU_US
#   prog  MODE RUN NAME HOOK_KIND RUN_TIME_NS RUN_CNT
# MODE is baseline, agent_metrics, agent_l24, agent (every feature on),
# agent_stats or calibration; HOOK_KIND is syscall_tracepoint, tp_btf,
# packet_path, iter, ...; prog lines hold bpf_stats deltas over one wrk run.
# BUSY_CPU_US is all CPUs' busy time over the wrk run (/proc/stat: kernel
# and user, every process and softirq).
# Variables: ndjson, ratio_targets ("MODE=MIN_RATIO ..."), cpu_targets
# ("MODE=MAX_ADDED_SHARE ..."), max_syscall_multiple, max_packet_multiple,
# noisy_spread, min_runs_judged.
#
# Verdicts are PASS or MISS; a throughput one is UNSURE when the runs are
# noisy and the per-pair ratios fall on both sides of the threshold; a
# program-cost one is NONE when no program of its class ran enough to judge.
#
# Written for mawk (Debian's default awk): no asort, no gensub.

BEGIN {
	FS = "\t"
	mode_count = split("baseline agent_metrics agent_l24 agent_http agent agent_metrics_tcp agent_l24_tcp agent_http_tcp agent_tcp floor_tcp agent_stats calibration", modes, " ")
	mode_label["baseline"] = "baseline (no BPF)"
	mode_label["agent_metrics"] = "agent, metrics only"
	mode_label["agent_l24"] = "agent + L2-L4"
	mode_label["agent_http"] = "agent + HTTP"
	mode_label["agent"] = "agent, all features"
	mode_label["agent_metrics_tcp"] = "tcp hooks, metrics"
	mode_label["agent_l24_tcp"] = "tcp hooks + L2-L4"
	mode_label["agent_http_tcp"] = "tcp hooks + HTTP"
	mode_label["agent_tcp"] = "tcp hooks, all"
	mode_label["floor_tcp"] = "floor, tcp hooks"
	mode_label["agent_stats"] = "all + bpf_stats"
	mode_label["calibration"] = "calibration + stats"
	# What each agent configuration turns on, for people and for NDJSON.
	mode_config["agent_metrics"] = "l24 off, http_parse off"
	mode_config["agent_l24"] = "l24 on, http_parse off"
	mode_config["agent_http"] = "l24 off, http_parse on, no logs"
	mode_config["agent"] = "l24 on, http_parse on, as deployed"
	mode_l24["agent_metrics"] = "false"; mode_http["agent_metrics"] = "false"
	mode_l24["agent_l24"] = "true"; mode_http["agent_l24"] = "false"
	mode_l24["agent_http"] = "false"; mode_http["agent_http"] = "true"
	mode_l24["agent"] = "true"; mode_http["agent"] = "true"
	# hooks=tcp: no syscall tracepoint (accepts and closes untimed)
	mode_config["agent_metrics_tcp"] = "hooks=tcp, l24 off, http_parse off"
	mode_config["agent_l24_tcp"] = "hooks=tcp, l24 on, http_parse off"
	mode_config["agent_http_tcp"] = "hooks=tcp, l24 off, HTTP, no logs"
	mode_config["agent_tcp"] = "hooks=tcp, l24 on, http_parse on"
	mode_l24["agent_metrics_tcp"] = "false"; mode_http["agent_metrics_tcp"] = "false"
	mode_l24["agent_l24_tcp"] = "true"; mode_http["agent_l24_tcp"] = "false"
	mode_l24["agent_http_tcp"] = "false"; mode_http["agent_http_tcp"] = "true"
	mode_l24["agent_tcp"] = "true"; mode_http["agent_tcp"] = "true"
	ratio_mode_count = split(ratio_targets, pairs, " ")
	for (i = 1; i <= ratio_mode_count; i++) {
		split(pairs[i], kv, "=")
		ratio_modes[i] = kv[1]
		min_ratio[kv[1]] = kv[2]
	}
	# A reference without a target: what the hooks alone cost.
	ratio_modes[++ratio_mode_count] = "floor_tcp"
	mode_config["floor_tcp"] = "no agent: calibration on 4 hooks"
	mode_l24["floor_tcp"] = "false"; mode_http["floor_tcp"] = "false"
	cpu_mode_count = split(cpu_targets, pairs, " ")
	for (i = 1; i <= cpu_mode_count; i++) {
		split(pairs[i], kv, "=")
		max_added_cpu[kv[1]] = kv[2]
	}
	max_multiple["per_call"] = max_syscall_multiple
	max_multiple["packet_path"] = max_packet_multiple
}

$1 == "run" {
	mode = $2
	n = ++runs[mode]
	rps[mode, n] = $4
	p50[mode, n] = $5
	p99[mode, n] = $6
	rps_of_run[mode, $3] = $4
	errors[mode] += $7
	non2xx[mode] += $8
	requests[mode] += $9
	if ($10 != "" && $9 > 0)
		cpu_us_per_request[mode, n] = $10 / $9
	printf "{\"type\":\"run\",\"mode\":\"%s\",\"run\":%d,\"requests_per_s\":%.2f," \
	       "\"latency_p50_us\":%.1f,\"latency_p99_us\":%.1f,\"socket_errors\":%d," \
	       "\"non_2xx_responses\":%d,\"requests\":%d,\"busy_cpu_us\":%d}\n", mode, $3, $4, $5, $6,
	       $7, $8, $9, $10 >> ndjson
	next
}

$1 == "prog" {
	mode = $2; name = $4; kind = $5; ns = $6; cnt = $7
	key = mode SUBSEP name
	if (!(key in prog_kind)) {
		prog_kind[key] = kind
		if (mode == "agent_stats")
			agent_names[++agent_name_count] = name
	}
	prog_ns[key] += ns
	prog_cnt[key] += cnt
	stem_cnt[mode, stem_of(name)] += cnt
	if (cnt > 0)
		track_range(key, ns / cnt)
	mode_ns[mode] += ns
	# Per hook kind, for the calibration yardstick.
	kind_ns[mode, kind] += ns
	kind_cnt[mode, kind] += cnt
	kind_run_ns[mode, kind, $3] += ns
	kind_run_cnt[mode, kind, $3] += cnt
	if ($3 > kind_runs[mode, kind])
		kind_runs[mode, kind] = $3
	next
}

function track_range(key, value) {
	if (!(key in range_min) || value < range_min[key])
		range_min[key] = value
	if (!(key in range_max) || value > range_max[key])
		range_max[key] = value
}

function sort_numbers(a, n,    i, j, v) {
	for (i = 2; i <= n; i++) {
		v = a[i]
		for (j = i - 1; j >= 1 && a[j] > v; j--)
			a[j + 1] = a[j]
		a[j + 1] = v
	}
}

function median(a, n) {
	sort_numbers(a, n)
	return n % 2 ? a[(n + 1) / 2] : (a[n / 2] + a[n / 2 + 1]) / 2
}

# Median, minimum and maximum of metric[mode, 1..runs[mode]] into stat_*.
function summarize(metric, mode,    i, n, values) {
	n = runs[mode]
	for (i = 1; i <= n; i++)
		values[i] = metric[mode, i]
	stat_median = median(values, n)
	stat_min = values[1]
	stat_max = values[n]
}

function hook_label(kind) {
	if (kind == "syscall_tracepoint") return "syscall tp"
	if (kind == "packet_path") return "packet tp"
	return kind
}

function pct(x) {
	return sprintf("%.1f%%", 100 * x)
}

function signed(x, fmt) {
	return (x >= 0 ? "+" : "") sprintf(fmt, x)
}

# A syscall's programs share a stem: read_enter, read_ts, read_exit.
function stem_of(name) {
	sub(/_(enter|ts|exit)$/, "", name)
	return name
}

function phase_rank(name) {
	if (name ~ /_enter$/) return 1
	if (name ~ /_ts$/) return 2
	if (name ~ /_exit$/) return 3
	return 0
}

# Agent programs: syscall tracepoints first; the busiest syscalls first,
# each one's programs in the order they run.
function comes_before(a, b,    ka, kb, ca, cb) {
	ka = prog_kind["agent_stats", a]; kb = prog_kind["agent_stats", b]
	if (ka != kb)
		return ka == "syscall_tracepoint" || (kb != "syscall_tracepoint" && ka < kb)
	ca = stem_cnt["agent_stats", stem_of(a)]; cb = stem_cnt["agent_stats", stem_of(b)]
	if (ca != cb)
		return ca > cb
	if (stem_of(a) != stem_of(b))
		return stem_of(a) < stem_of(b)
	return phase_rank(a) < phase_rank(b)
}

function sort_agent_names(    i, j, v) {
	for (i = 2; i <= agent_name_count; i++) {
		v = agent_names[i]
		for (j = i - 1; j >= 1 && comes_before(v, agent_names[j]); j--)
			agent_names[j + 1] = agent_names[j]
		agent_names[j + 1] = v
	}
}

function print_throughput(    m, mode, spread, lo, hi, of_baseline) {
	printf "Throughput (wrk req/s; / base: median over the baseline's; latency: median of each run's percentile)\n"
	printf "  %-20s %5s %10s  %-19s %7s %8s %9s %9s\n", "mode", "runs", "median", "[min .. max]", "spread",
	       "/ base", "p50 us", "p99 us"
	for (m = 1; m <= mode_count; m++) {
		mode = modes[m]
		if (!runs[mode])
			continue
		summarize(rps, mode)
		rps_median[mode] = stat_median
		lo = stat_min
		hi = stat_max
		spread = stat_median > 0 ? (hi - lo) / stat_median : 0
		of_baseline = "-"
		if (rps_median["baseline"] > 0)
			of_baseline = sprintf("%.3f", stat_median / rps_median["baseline"])
		printf "  %-20s %5d %10.0f  [%7.0f .. %7.0f] %7s %8s", mode_label[mode], runs[mode],
		       stat_median, lo, hi, pct(spread), of_baseline
		summarize(p50, mode)
		p50_median[mode] = stat_median
		summarize(p99, mode)
		p99_median[mode] = stat_median
		printf " %9.1f %9.1f\n", p50_median[mode], p99_median[mode]
		printf "{\"type\":\"throughput\",\"mode\":\"%s\",\"runs\":%d," \
		       "\"requests_per_s_median\":%.2f,\"requests_per_s_min\":%.2f," \
		       "\"requests_per_s_max\":%.2f,\"spread_ratio\":%.4f," \
		       "\"latency_p50_us_median\":%.1f,\"latency_p99_us_median\":%.1f," \
		       "\"socket_errors\":%d,\"non_2xx_responses\":%d}\n", mode, runs[mode],
		       rps_median[mode], lo, hi, spread,
		       p50_median[mode], p99_median[mode], errors[mode], non2xx[mode] >> ndjson
		if (errors[mode] || non2xx[mode])
			printf "  note: %s runs had %d socket errors and %d non-2xx responses\n",
			       mode, errors[mode], non2xx[mode]
		if (spread > noisy_spread) {
			noisy = noisy (noisy == "" ? "" : ", ") mode
			noisy_mode[mode] = 1
		}
	}
	if (noisy != "")
		printf "  note: runs of %s spread over more than %s of their median: something else\n" \
		       "        loads this machine; trust the medians and per-pair ratios, or rerun\n",
		       noisy, pct(noisy_spread)
}

# Each agent configuration against the baseline: the ratio of medians (the
# verdict's figure), plus the spread of the per-pair ratios (pair i = the
# i-th round's baseline and configuration runs, a few seconds apart).
function print_ratios(    r, mode, i, n, pair_ratio, lo, hi, pair_median, d50, d99, ratio, met, verdict,
                           target, limit, met_json) {
	if (!runs["baseline"] || rps_median["baseline"] <= 0)
		return
	printf "\nThroughput of each agent configuration over the baseline (ratio of medians; per pair: each round's run over that round's baseline)\n"
	printf "  %-20s %-36s %7s  %-23s %9s %9s  %s\n", "configuration", "settings", "ratio",
	       "per pair: median [range]", "p50 +us", "p99 +us", "target"
	for (r = 1; r <= ratio_mode_count; r++) {
		mode = ratio_modes[r]
		if (!runs[mode])
			continue
		ratio = rps_median[mode] / rps_median["baseline"]
		n = 0
		split("", pair_ratio)
		for (i = 1; ((mode, i) in rps_of_run); i++) {
			if (!(("baseline", i) in rps_of_run) || rps_of_run["baseline", i] <= 0)
				continue
			pair_ratio[++n] = rps_of_run[mode, i] / rps_of_run["baseline", i]
		}
		pair_median = lo = hi = 0
		if (n) {
			pair_median = median(pair_ratio, n)
			lo = pair_ratio[1]; hi = pair_ratio[n]
		}
		d50 = p50_median[mode] - p50_median["baseline"]
		d99 = p99_median[mode] - p99_median["baseline"]
		# A mode without a target (floor_tcp) is shown, not judged.
		target = "-"; limit = "null"; met_json = "null"; verdict = "NONE"
		if (mode in min_ratio) {
			met = ratio >= min_ratio[mode]
			verdict = met ? "PASS" : "MISS"
			# Noisy runs whose per-pair ratios fall on both sides of the
			# threshold make the verdict a coin toss: say so instead.
			if ((noisy_mode["baseline"] || noisy_mode[mode]) && n && lo < min_ratio[mode] && hi >= min_ratio[mode])
				verdict = "UNSURE"
			ratio_of[mode] = ratio
			ratio_verdict[mode] = verdict
			target = sprintf(">= %s %s", pct(min_ratio[mode]), verdict == "UNSURE" ? "unsure (noisy)" : \
					 met ? "met" : sprintf("missed by %.1f points", 100 * (min_ratio[mode] - ratio)))
			limit = min_ratio[mode]
			met_json = met ? "true" : "false"
		}
		printf "  %-20s %-36s %7.3f  %.3f [%.3f .. %.3f] %9s %9s  %s\n", mode_label[mode],
		       mode_config[mode], ratio, pair_median, lo, hi, signed(d50, "%.1f"), signed(d99, "%.1f"), target
		printf "{\"type\":\"throughput_ratio\",\"mode\":\"%s\",\"l24\":%s,\"http_parse\":%s," \
		       "\"agent_over_baseline\":%.4f,\"pair_ratio_median\":%.4f,\"pair_ratio_min\":%.4f," \
		       "\"pair_ratio_max\":%.4f,\"pairs\":%d,\"latency_p50_us_delta\":%.1f," \
		       "\"latency_p99_us_delta\":%.1f,\"min_ratio\":%s,\"target_met\":%s,\"verdict\":\"%s\"}\n",
		       mode, mode_l24[mode], mode_http[mode], ratio, pair_median, lo, hi, n, d50, d99,
		       limit, met_json, tolower(verdict) >> ndjson
	}
}

# CPU per request: all CPUs' busy time over a run over its requests, so
# kernel and user time of wrk, nginx, the agent and the softirqs between
# them. Added CPU is a configuration's median over the baseline's median.
function print_cpu_per_request(    m, mode, base, added, share, target) {
	if (!runs["baseline"] || !(("baseline", 1) in cpu_us_per_request))
		return
	summarize(cpu_us_per_request, "baseline")
	base = stat_median
	printf "\nCPU per request (all CPUs' busy time over each wrk run / its requests: kernel + user of wrk,\n"
	printf "  nginx, the agent and softirq, from /proc/stat; median of the runs)\n"
	printf "  %-20s %12s %11s %14s  %s\n", "mode", "us/request", "added us", "added / base", "target"
	for (m = 1; m <= mode_count; m++) {
		mode = modes[m]
		if (!runs[mode] || !((mode, 1) in cpu_us_per_request))
			continue
		summarize(cpu_us_per_request, mode)
		added = stat_median - base
		share = base > 0 ? added / base : 0
		target = "-"
		if (mode in max_added_cpu) {
			added_cpu_us[mode] = added
			added_cpu_share[mode] = share
			target = sprintf("<= %s %s", pct(max_added_cpu[mode]),
					 share <= max_added_cpu[mode] ? "met" : "missed")
		}
		printf "  %-20s %12.2f %11s %14s  %s\n", mode_label[mode], stat_median,
		       mode == "baseline" ? "-" : signed(added, "%.2f"),
		       mode == "baseline" ? "-" : pct(share), target
		printf "{\"type\":\"cpu_per_request\",\"mode\":\"%s\",\"cpu_us_per_request_median\":%.3f," \
		       "\"added_cpu_us_per_request\":%.3f,\"added_over_baseline\":%.4f}\n", mode, stat_median,
		       added, share >> ndjson
	}
}

function print_calibration(    t, kinds, kind, i, run_avg, lo, hi) {
	split("syscall_tracepoint tp_btf packet_path", kinds, " ")
	printf "\nCalibration program (one bpf_ktime_get_ns() + one per-CPU increment), per hook kind\n"
	printf "  (packet tp: the BTF tracepoints of bpf/l24.bpf.c, per sk_buff; tp_btf: the socket events)\n"
	printf "  %-12s %12s %9s  %s\n", "hook", "runs", "avg ns", "[min .. max] per run"
	for (t = 1; t <= 3; t++) {
		kind = kinds[t]
		if (kind_cnt["calibration", kind] <= 0) {
			printf "  %-12s %12s %9s\n", hook_label(kind), 0, "-"
			continue
		}
		calibration_avg[kind] = kind_ns["calibration", kind] / kind_cnt["calibration", kind]
		lo = hi = ""
		for (i = 1; i <= kind_runs["calibration", kind]; i++) {
			if (kind_run_cnt["calibration", kind, i] <= 0)
				continue
			run_avg = kind_run_ns["calibration", kind, i] / kind_run_cnt["calibration", kind, i]
			if (lo == "" || run_avg < lo) lo = run_avg
			if (hi == "" || run_avg > hi) hi = run_avg
		}
		printf "  %-12s %12d %9.1f  [%6.1f .. %6.1f]\n", hook_label(kind),
		       kind_cnt["calibration", kind], calibration_avg[kind], lo, hi
		printf "{\"type\":\"calibration\",\"hook_kind\":\"%s\",\"runs\":%d,\"avg_ns\":%.1f," \
		       "\"avg_ns_min\":%.1f,\"avg_ns_max\":%.1f}\n", kind,
		       kind_cnt["calibration", kind], calibration_avg[kind], lo, hi >> ndjson
	}
}

# Which cost target a program has: per call (the syscall tracepoints, and
# the tcpio_* programs of hooks=tcp, which run once per read or write even
# where their hook is a packet-path tracepoint) or per packet (l24_*).
# Measured against the calibration program on its own hook kind either way.
function target_class(name, kind) {
	if (kind == "syscall_tracepoint" || name ~ /^tcpio_/)
		return "per_call"
	if (kind == "packet_path" && name ~ /^l24_/)
		return "packet_path"
	return ""
}

function print_programs(    i, name, key, kind, cnt, avg, multiple, shown, verdict, idle, limit, class) {
	sort_agent_names()
	printf "\nkaccess programs (bpf_stats deltas over the agent_stats runs' wrk traffic)\n"
	printf "  %-27s %-10s %10s %9s  %-21s %8s  %s\n", "program", "hook", "runs", "avg ns",
	       "[min .. max] per run", "x calib", "target"
	idle = ""
	for (i = 1; i <= agent_name_count; i++) {
		name = agent_names[i]
		key = "agent_stats" SUBSEP name
		kind = prog_kind[key]
		cnt = prog_cnt[key]
		if (cnt <= 0) {
			idle = idle (idle == "" ? "" : ", ") name
			printf "{\"type\":\"program\",\"name\":\"%s\",\"hook_kind\":\"%s\",\"runs\":0}\n",
			       name, kind >> ndjson
			continue
		}
		avg = prog_ns[key] / cnt
		multiple = -1 # no calibration for this hook kind
		shown = verdict = "-"
		if (kind in calibration_avg) {
			multiple = avg / calibration_avg[kind]
			shown = sprintf("%.2fx", multiple)
		}
		# A handful of runs (other processes' traffic) is too few to judge.
		class = target_class(name, kind)
		limit = (class in max_multiple) ? max_multiple[class] : ""
		if (limit != "" && multiple >= 0 && cnt < min_runs_judged)
			verdict = "few runs"
		if (limit != "" && multiple >= 0 && cnt >= min_runs_judged) {
			judged[class]++
			verdict = "pass"
			if (multiple > limit) {
				verdict = "miss"
				missed[class]++
				missed_list[class] = missed_list[class] (missed_list[class] == "" ? "" : ", ") \
						     sprintf("%s %.2fx", name, multiple)
			}
		}
		printf "  %-27s %-10s %10d %9.1f  [%7.1f .. %7.1f] %8s  %s\n", name, hook_label(kind), cnt,
		       avg, range_min[key], range_max[key], shown,
		       (verdict == "-" || verdict == "few runs") ? verdict : ("<=" limit "x " toupper(verdict))
		printf "{\"type\":\"program\",\"name\":\"%s\",\"hook_kind\":\"%s\",\"runs\":%d," \
		       "\"avg_ns\":%.1f,\"avg_ns_min\":%.1f,\"avg_ns_max\":%.1f", name, kind,
		       cnt, avg, range_min[key], range_max[key] >> ndjson
		if (multiple >= 0)
			printf ",\"calibration_multiple\":%.3f", multiple >> ndjson
		if (verdict == "pass" || verdict == "miss")
			printf ",\"max_multiple\":%s,\"verdict\":\"%s\"", limit, verdict >> ndjson
		printf "}\n" >> ndjson
	}
	if (idle != "")
		printf "  not run by the benchmark's traffic: %s\n", idle
	print_time_per_request()
}

# All run time of a mode's programs (on every process, as deployed) per
# request wrk completed: what the programs' bodies cost the workload. The
# throughput lost beyond it is the hooks' own cost (see the calibration row).
function print_time_per_request(    m, mode, total, line) {
	line = ""
	for (m = 2; m <= mode_count; m++) {
		mode = modes[m]
		total = mode_ns[mode]
		if (requests[mode] <= 0 || total <= 0)
			continue
		line = line (line == "" ? "" : ", ") sprintf("%s %.0f ns", mode, total / requests[mode])
		printf "{\"type\":\"bpf_time_per_request\",\"mode\":\"%s\",\"run_time_ns\":%.0f," \
		       "\"requests\":%d,\"ns_per_request\":%.1f}\n", mode, total, requests[mode],
		       total / requests[mode] >> ndjson
	}
	if (line != "")
		printf "  BPF run time per request (all programs, all processes): %s\n", line
}

# One verdict line; `fields` are the NDJSON line's target-specific fields.
function target_line(verdict, text, name, fields) {
	printf "  %-6s  %s\n", verdict, text
	printf "{\"type\":\"target\",\"name\":\"%s\",%s,\"verdict\":\"%s\"}\n",
	       name, fields, tolower(verdict) >> ndjson
}

# The cost target of class `kind` (target_class): every judged program
# within its limit. None judged (a hook set without such programs): no verdict.
function program_target(kind, what, name,    verdict) {
	if (!judged[kind]) {
		target_line("NONE", sprintf("%s programs <= %sx calibration: none ran %d times or more",
			    what, max_multiple[kind], min_runs_judged), name,
			    sprintf("\"programs_judged\":0,\"max_multiple\":%s", max_multiple[kind]))
		return
	}
	verdict = missed[kind] ? "MISS" : "PASS"
	target_line(verdict, sprintf("%s programs <= %sx calibration: %d of %d (with >= %d runs) above%s",
		    what, max_multiple[kind], missed[kind], judged[kind], min_runs_judged,
		    missed_list[kind] == "" ? "" : " (" missed_list[kind] ")"), name,
		    sprintf("\"programs_judged\":%d,\"programs_above\":%d,\"max_multiple\":%s",
			    judged[kind], missed[kind], max_multiple[kind]))
}

function print_targets(    r, mode, verdict) {
	printf "\nTargets\n"
	for (r = 1; r <= ratio_mode_count; r++) {
		mode = ratio_modes[r]
		if (!runs[mode] || !(mode in min_ratio))
			continue
		if (!(mode in ratio_of)) {
			target_line("MISS", sprintf("throughput, %s: no baseline was measured", mode_label[mode]),
				    "throughput_" mode, sprintf("\"mode\":\"%s\",\"agent_over_baseline\":null,\"min_ratio\":%s",
								mode, min_ratio[mode]))
			continue
		}
		verdict = ratio_verdict[mode]
		target_line(verdict, sprintf("throughput, %s (%s) >= %s of baseline: %s%s",
			    mode_label[mode], mode_config[mode], pct(min_ratio[mode]), pct(ratio_of[mode]),
			    verdict == "UNSURE" ? " (noisy runs, pairs on both sides: rerun on a quiet machine)" : ""),
			    "throughput_" mode,
			    sprintf("\"mode\":\"%s\",\"agent_over_baseline\":%.4f,\"min_ratio\":%s",
				    mode, ratio_of[mode], min_ratio[mode]))
	}
	for (r = 1; r <= mode_count; r++) {
		mode = modes[r]
		if (!(mode in added_cpu_share))
			continue
		target_line(added_cpu_share[mode] <= max_added_cpu[mode] ? "PASS" : "MISS",
			    sprintf("added CPU per request, %s <= %s of the baseline's: %s (%s us)",
				    mode_label[mode], pct(max_added_cpu[mode]), pct(added_cpu_share[mode]),
				    signed(added_cpu_us[mode], "%.2f")),
			    "added_cpu_" mode,
			    sprintf("\"mode\":\"%s\",\"added_cpu_us_per_request\":%.3f,\"added_over_baseline\":%.4f,\"max_added\":%s",
				    mode, added_cpu_us[mode], added_cpu_share[mode], max_added_cpu[mode]))
	}
	program_target("per_call", "per-call (syscall tracepoint, tcpio_*)", "syscall_programs")
	program_target("packet_path", "packet-path (l24_*)", "packet_path_programs")
}

END {
	print_throughput()
	print_ratios()
	print_cpu_per_request()
	print_calibration()
	print_programs()
	print_targets()
}
