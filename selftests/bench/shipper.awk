# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# shipper.awk: the shipper's (kaccess process's) CPU and memory during the
# throughput section's agent runs, from one TSV line per run:
#   MODE RUN CPU_TICKS WALL_NS VMRSS_KIB VMHWM_KIB CPU_NS REQUESTS REQUESTS_PER_S
# CPU_TICKS is the utime+stime delta over the wrk run (/proc/PID/stat), in
# clock ticks; CPU_NS the same from the scheduler's runtime of every thread
# (/proc/PID/task/*/schedstat), exact where a tick is 10 ms: the shares are
# computed from it, the ticks shown next to it as a cross-check.
# Variables: ndjson, clk_tck, cpu_target_pct, rss_target_mib, rate_ref.
#
# How the share at rate_ref is derived: cpu_share.awk (load it first).

BEGIN {
	FS = "\t"
	printf "  %4s %10s %10s %11s %10s %16s\n", "run", "req/s", "CPU ticks", "CPU ms", "CPU %", "RSS / HWM MiB"
}

function sort_numbers(a, n,    i, j, v) {
	for (i = 2; i <= n; i++) {
		v = a[i]
		for (j = i - 1; j >= 1 && a[j] > v; j--)
			a[j + 1] = a[j]
		a[j + 1] = v
	}
}

{
	n++
	cpu_s = $7 / 1e9
	wall_s = $4 / 1e9
	pct = wall_s > 0 ? 100 * cpu_s / wall_s : 0
	total_ticks += $3
	total_cpu_s += cpu_s
	total_wall_s += wall_s
	total_requests += $8
	if ($5 > max_rss) max_rss = $5
	if ($6 > max_hwm) max_hwm = $6
	printf "  %4d %10.0f %10d %11.1f %9.3f%% %7.1f / %6.1f\n", $2, $9, $3, $7 / 1e6, pct, $5 / 1024, $6 / 1024
	printf "{\"type\":\"shipper_run\",\"mode\":\"%s\",\"run\":%d,\"cpu_ticks\":%d,\"cpu_ns\":%.0f," \
	       "\"wall_seconds\":%.3f,\"cpu_pct\":%.4f,\"rss_kib\":%d,\"hwm_kib\":%d,\"requests\":%d," \
	       "\"requests_per_s\":%.1f}\n", $1, $2, $3, $7, wall_s, pct, $5, $6, $8, $9 >> ndjson
}

END {
	if (!n)
		exit 0
	pct = total_wall_s > 0 ? 100 * total_cpu_s / total_wall_s : 0
	mean_rate = total_wall_s > 0 ? total_requests / total_wall_s : 0
	linear = cpu_share_linear(pct, mean_rate, rate_ref)
	bound = cpu_share_at_ref(pct, mean_rate, rate_ref)
	if (mean_rate >= rate_ref) {
		method = sprintf("<= %.3f%%: measured at %.1fx that rate (the shipper's work does not fall as the rate rises);" \
				 " %.4f%% if it scaled with the request rate", pct, mean_rate / rate_ref, linear)
	} else {
		method = sprintf("%.3f%%: the measured share scaled up linearly from %.0f req/s", linear, mean_rate)
	}
	printf "  all %d agent runs: %.1f CPU ms (%d ticks of 1/%d s) over %.1f s = %.3f%% of one core at %.0f req/s\n",
	       n, 1000 * total_cpu_s, total_ticks, clk_tck, total_wall_s, pct, mean_rate
	printf "  at %d req/s: %s\n", rate_ref, method
	printf "  RSS: max VmRSS %.1f MiB, max VmHWM %.1f MiB\n", max_rss / 1024, max_hwm / 1024
	printf "{\"type\":\"shipper\",\"runs\":%d,\"cpu_seconds\":%.4f,\"wall_seconds\":%.3f,\"cpu_pct\":%.4f," \
	       "\"requests_per_s\":%.1f,\"cpu_pct_at_ref_bound\":%.3f,\"cpu_pct_at_ref_linear\":%.4f,\"ref_requests_per_s\":%d," \
	       "\"rss_kib_max\":%d,\"hwm_kib_max\":%d}\n", n, total_cpu_s, total_wall_s, pct, mean_rate, bound,
	       linear, rate_ref, max_rss, max_hwm >> ndjson
	printf "\nTargets (shipper)\n"
	verdict = bound < cpu_target_pct ? "PASS" : "MISS"
	printf "  %-6s  shipper CPU at %d req/s < %s%% of a core: %.3f%%\n", verdict, rate_ref, cpu_target_pct, bound
	printf "{\"type\":\"target\",\"name\":\"shipper_cpu\",\"cpu_pct\":%.3f,\"max_pct\":%s,\"verdict\":\"%s\"}\n",
	       bound, cpu_target_pct, tolower(verdict) >> ndjson
	verdict = max_hwm / 1024 < rss_target_mib ? "PASS" : "MISS"
	printf "  %-6s  shipper RSS < %d MiB: peak %.1f MiB (VmHWM)\n", verdict, rss_target_mib, max_hwm / 1024
	printf "{\"type\":\"target\",\"name\":\"shipper_rss\",\"hwm_kib\":%d,\"max_mib\":%d,\"verdict\":\"%s\"}\n",
	       max_hwm, rss_target_mib, tolower(verdict) >> ndjson
}
