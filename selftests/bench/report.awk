# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# report.awk: turn bench.sh's samples into the tables people read and the
# NDJSON lines machines read (appended to the file in `ndjson`).
#
# Input, tab-separated, one sample per line:
#   run   MODE RUN REQUESTS_PER_S LATENCY_P50_US LATENCY_P99_US SOCKET_ERRORS NON_2XX REQUESTS
#   prog  MODE RUN NAME HOOK_KIND RUN_TIME_NS RUN_CNT
# MODE is baseline, agent, agent_stats or calibration; HOOK_KIND is syscall_tracepoint,
# tp_btf, iter, ...; prog lines hold bpf_stats deltas over one wrk run.
# Variables: ndjson, min_throughput_ratio, max_syscall_multiple, noisy_spread,
# min_runs_judged.
#
# Verdicts are PASS or MISS; the throughput one is UNSURE when the runs are
# noisy and the per-pair ratios fall on both sides of the threshold.
#
# Written for mawk (Debian's default awk): no asort, no gensub.

BEGIN {
	FS = "\t"
	mode_count = split("baseline agent agent_stats calibration", modes, " ")
	mode_label["baseline"] = "baseline (no BPF)"
	mode_label["agent"] = "agent"
	mode_label["agent_stats"] = "agent + bpf_stats"
	mode_label["calibration"] = "calibration + stats"
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
	printf "{\"type\":\"run\",\"mode\":\"%s\",\"run\":%d,\"requests_per_s\":%.2f," \
	       "\"latency_p50_us\":%.1f,\"latency_p99_us\":%.1f,\"socket_errors\":%d," \
	       "\"non_2xx_responses\":%d,\"requests\":%d}\n", mode, $3, $4, $5, $6, $7, $8, $9 >> ndjson
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
	return kind == "syscall_tracepoint" ? "syscall tp" : kind
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
			if (mode == "baseline" || mode == "agent")
				ab_noisy = 1
		}
	}
	if (noisy != "")
		printf "  note: runs of %s spread over more than %s of their median: something else\n" \
		       "        loads this machine; trust the medians and per-pair ratios, or rerun\n",
		       noisy, pct(noisy_spread)
}

# Ratio of medians, plus the spread of the per-pair ratios (pair i = the
# i-th baseline and i-th agent run, measured back to back).
function print_ratio(    i, n, pair_ratio, lo, hi, pair_median, d50, d99) {
	if (!runs["baseline"] || !runs["agent"] || rps_median["baseline"] <= 0)
		return
	throughput_ratio = rps_median["agent"] / rps_median["baseline"]
	n = 0
	for (i = 1; (("baseline", i) in rps_of_run) && (("agent", i) in rps_of_run); i++) {
		if (rps_of_run["baseline", i] <= 0)
			continue
		pair_ratio[++n] = rps_of_run["agent", i] / rps_of_run["baseline", i]
	}
	if (n) {
		pair_median = median(pair_ratio, n)
		lo = pair_ratio[1]; hi = pair_ratio[n]
		pair_straddles = lo < min_throughput_ratio && hi >= min_throughput_ratio
	}
	d50 = p50_median["agent"] - p50_median["baseline"]
	d99 = p99_median["agent"] - p99_median["baseline"]
	printf "  agent / baseline: %.3f (%s of baseline req/s); per-pair ratios: median %.3f [%.3f .. %.3f]\n",
	       throughput_ratio, pct(throughput_ratio), pair_median, lo, hi
	printf "  latency with the agent: p50 %s us (%s), p99 %s us (%s)\n",
	       signed(d50, "%.1f"), signed(p50_median["baseline"] ? 100 * d50 / p50_median["baseline"] : 0, "%.1f") "%",
	       signed(d99, "%.1f"), signed(p99_median["baseline"] ? 100 * d99 / p99_median["baseline"] : 0, "%.1f") "%"
	printf "{\"type\":\"throughput_ratio\",\"agent_over_baseline\":%.4f," \
	       "\"pair_ratio_median\":%.4f,\"pair_ratio_min\":%.4f,\"pair_ratio_max\":%.4f,\"pairs\":%d," \
	       "\"latency_p50_us_delta\":%.1f,\"latency_p99_us_delta\":%.1f}\n",
	       throughput_ratio, pair_median, lo, hi, n, d50, d99 >> ndjson
}

function print_calibration(    t, kinds, kind, i, run_avg, lo, hi) {
	split("syscall_tracepoint tp_btf", kinds, " ")
	printf "\nCalibration program (one bpf_ktime_get_ns() + one per-CPU increment), per hook kind\n"
	printf "  %-12s %12s %9s  %s\n", "hook", "runs", "avg ns", "[min .. max] per run"
	for (t = 1; t <= 2; t++) {
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

function print_programs(    i, name, key, kind, cnt, avg, multiple, shown, verdict, idle) {
	sort_agent_names()
	printf "\nkaccess programs (bpf_stats deltas over the agent_stats runs' wrk traffic)\n"
	printf "  %-18s %-10s %10s %9s  %-21s %8s  %s\n", "program", "hook", "runs", "avg ns",
	       "[min .. max] per run", "x calib", "target"
	syscall_judged = syscall_missed = 0
	missed_list = idle = ""
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
		if (kind == "syscall_tracepoint" && multiple >= 0 && cnt < min_runs_judged)
			verdict = "few runs"
		if (kind == "syscall_tracepoint" && multiple >= 0 && cnt >= min_runs_judged) {
			syscall_judged++
			verdict = "pass"
			if (multiple > max_syscall_multiple) {
				verdict = "miss"
				syscall_missed++
				missed_list = missed_list (missed_list == "" ? "" : ", ") sprintf("%s %.2fx", name, multiple)
			}
		}
		printf "  %-18s %-10s %10d %9.1f  [%7.1f .. %7.1f] %8s  %s\n", name, hook_label(kind), cnt,
		       avg, range_min[key], range_max[key], shown,
		       (verdict == "-" || verdict == "few runs") ? verdict : ("<=" max_syscall_multiple "x " toupper(verdict))
		printf "{\"type\":\"program\",\"name\":\"%s\",\"hook_kind\":\"%s\",\"runs\":%d," \
		       "\"avg_ns\":%.1f,\"avg_ns_min\":%.1f,\"avg_ns_max\":%.1f", name, kind,
		       cnt, avg, range_min[key], range_max[key] >> ndjson
		if (multiple >= 0)
			printf ",\"calibration_multiple\":%.3f", multiple >> ndjson
		if (verdict == "pass" || verdict == "miss")
			printf ",\"max_multiple\":%s,\"verdict\":\"%s\"", max_syscall_multiple, verdict >> ndjson
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

function print_targets(    verdict) {
	printf "\nTargets\n"
	if (throughput_ratio != "") {
		verdict = throughput_ratio >= min_throughput_ratio ? "PASS" : "MISS"
		# Noisy runs whose per-pair ratios fall on both sides of the
		# threshold make the verdict a coin toss: say so instead.
		if (ab_noisy && pair_straddles)
			verdict = "UNSURE"
		target_line(verdict, sprintf("throughput with the agent >= %s of baseline: %s%s",
			    pct(min_throughput_ratio), pct(throughput_ratio),
			    verdict == "UNSURE" ? " (noisy runs, pairs on both sides: rerun on a quiet machine)" : ""),
			    "throughput",
			    sprintf("\"agent_over_baseline\":%.4f,\"min_ratio\":%s",
				    throughput_ratio, min_throughput_ratio))
	} else {
		target_line("MISS", "throughput: no baseline/agent pair was measured", "throughput",
			    sprintf("\"agent_over_baseline\":null,\"min_ratio\":%s", min_throughput_ratio))
	}
	verdict = syscall_judged && !syscall_missed ? "PASS" : "MISS"
	target_line(verdict, sprintf("syscall programs <= %sx calibration: %d of %d (with >= %d runs) above%s",
		    max_syscall_multiple, syscall_missed, syscall_judged, min_runs_judged,
		    missed_list == "" ? "" : " (" missed_list ")"), "syscall_programs",
		    sprintf("\"programs_judged\":%d,\"programs_above\":%d,\"max_multiple\":%s",
			    syscall_judged, syscall_missed, max_syscall_multiple))
}

END {
	throughput_ratio = ""
	print_throughput()
	print_ratio()
	print_calibration()
	print_programs()
	print_targets()
}
