# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# oap.awk: the oap section's table, NDJSON lines and targets, from one TSV
# line per OAP mode (off: no OAP configured, the reference):
#   MODE CPU_NS WALL_NS CPU_TICKS VMHWM_KIB VMRSS_KIB REQUESTS REQUESTS_PER_S
#   OAP_ENQUEUED OAP_SENT OAP_DROPPED DRAINS MAP_KIB LOST
# CPU_NS is the agent's threads' runtime over the wrk run (schedstat), CPU_TICKS
# the same from /proc/PID/stat, OAP_* sums of kaccess_oap_messages_total and
# kaccess_oap_dropped_total over both streams at the end of the run, DRAINS
# the buckets drained during it, MAP_KIB the BPF maps' pages in its resident
# set at the end (the ring buffer's, mapped once and its data twice, and
# .bss's): kernel memory that VmHWM counts again, LOST the agent's own
# kaccess_lost_events_total over every reason (records shed or lost while
# the shipper fell behind, among others) at the end of the run.
# Variables: ndjson, cpu_target_pct, rss_target_mib, rate_ref, interval_s.
# Needs cpu_share.awk loaded first.

BEGIN {
	FS = "\t"
	printf "  %-11s %8s %7s %8s %12s %14s %8s %9s %11s %11s %8s %8s\n", "mode", "req/s", "drains", "CPU %",
	       sprintf("CPU %% at %dk", rate_ref / 1000), "per 10k (lin.)", "HWM MiB", "maps MiB", "OAP queued",
	       "OAP sent", "dropped", "lost"
}

{
	mode = $1
	wall_s = $3 / 1e9
	pct = wall_s > 0 ? 100 * ($2 / 1e9) / wall_s : 0
	rate = $8
	at_ref = cpu_share_at_ref(pct, rate, rate_ref)
	linear = cpu_share_linear(pct, rate, rate_ref)
	modes[++n] = mode
	share[mode] = at_ref
	hwm[mode] = $5
	maps[mode] = $13
	printf "  %-11s %8.0f %7d %7.3f%% %11.3f%% %13.4f%% %8.1f %9.1f %11d %11d %8d %8d\n", mode, rate, $12, pct,
	       at_ref, linear, $5 / 1024, $13 / 1024, $9, $10, $11, $14
	printf "{\"type\":\"oap_mode\",\"mode\":\"%s\",\"interval_s\":%d,\"cpu_ns\":%.0f,\"cpu_ticks\":%d," \
	       "\"wall_seconds\":%.3f,\"cpu_pct\":%.4f,\"cpu_pct_at_ref_bound\":%.4f,\"cpu_pct_at_ref_linear\":%.4f," \
	       "\"ref_requests_per_s\":%d,\"hwm_kib\":%d,\"rss_kib\":%d,\"requests\":%d,\"requests_per_s\":%.1f," \
	       "\"oap_enqueued\":%d,\"oap_sent\":%d,\"oap_dropped\":%d,\"drains\":%d,\"bpf_map_rss_kib\":%d," \
	       "\"lost_events\":%d}\n", mode, interval_s, $2, $4, wall_s, pct, at_ref, linear, rate_ref, $5, $6, $7, rate,
	       $9, $10, $11, $12, $13, $14 >> ndjson
}

END {
	if (!n)
		exit 1
	printf "  CPU %% at %dk: the measured share where the rate was at least %d req/s (an upper bound), else scaled up;\n",
	       rate_ref / 1000, rate_ref
	printf "  per 10k (lin.): the share if it scaled with the request rate\n"
	printf "\nTargets (shipper per OAP mode, at %d req/s)\n", rate_ref
	for (i = 1; i <= n; i++) {
		mode = modes[i]
		if (mode == "off")
			continue
		verdict = share[mode] < cpu_target_pct ? "PASS" : "MISS"
		printf "  %-6s  %-11s CPU < %s%% of a core: %.3f%%\n", verdict, mode, cpu_target_pct, share[mode]
		printf "{\"type\":\"target\",\"name\":\"oap_shipper_cpu\",\"mode\":\"%s\",\"cpu_pct\":%.4f,\"max_pct\":%s," \
		       "\"verdict\":\"%s\"}\n", mode, share[mode], cpu_target_pct, tolower(verdict) >> ndjson
		verdict = hwm[mode] / 1024 < rss_target_mib ? "PASS" : "MISS"
		printf "  %-6s  %-11s RSS < %d MiB: peak %.1f MiB (VmHWM; %.1f MiB of it BPF map pages)\n", verdict, mode,
		       rss_target_mib, hwm[mode] / 1024, maps[mode] / 1024
		printf "{\"type\":\"target\",\"name\":\"oap_shipper_rss\",\"mode\":\"%s\",\"hwm_kib\":%d,\"max_mib\":%d," \
		       "\"verdict\":\"%s\"}\n", mode, hwm[mode], rss_target_mib, tolower(verdict) >> ndjson
	}
}
