# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# rows.awk: the scale-rows section's table, NDJSON lines and targets, from
# one TSV line per round:
#   ROUND CONNECTIONS ELAPSED_NS BUCKET_ROWS OUR_ROWS OUR_CONNECTS DRAIN_S SCRAPE_S SCRAPE_BYTES
# BUCKET_ROWS is kaccess_bucket_rows, OUR_ROWS the kaccess_bucket_connects
# series of the client cgroup (OUR_CONNECTS their sum), DRAIN_S
# kaccess_drain_duration_seconds, SCRAPE_* curl's time and size of that /metrics.
# Variables: ndjson, expected, baseline_drain, baseline_rows, target_ms,
# interval_s, lost (text), lost_json, misses.

BEGIN {
	FS = "\t"
	all_in_bucket = 1
	printf "  %5s %11s %9s %11s %10s %9s  %s\n", "round", "connections", "made in", "bucket rows",
	       "our rows", "drain ms", "/metrics with them"
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
	drain_ms[n] = $7 * 1000
	rows_sum += $4
	# Every connection of the round in the bucket, every row published.
	if ($2 != expected || $3 / 1e9 >= interval_s - 0.1 || $5 != expected || $6 != expected)
		all_in_bucket = 0
	printf "  %5d %11d %8.2fs %11d %10d %9.2f  %.2f s, %.1f MiB\n", $1, $2, $3 / 1e9, $4, $5,
	       drain_ms[n], $8, $9 / 1048576
	printf "{\"type\":\"scale_rows_round\",\"round\":%d,\"connections\":%d,\"elapsed_ns\":%d," \
	       "\"bucket_rows\":%d,\"client_rows\":%d,\"client_connects\":%d,\"drain_ms\":%.3f," \
	       "\"metrics_scrape_s\":%.3f,\"metrics_bytes\":%d}\n", $1, $2, $3, $4, $5, $6,
	       drain_ms[n], $8, $9 >> ndjson
}

END {
	if (!n) {
		print "  no round completed"
		exit 1
	}
	sort_numbers(drain_ms, n)
	median = n % 2 ? drain_ms[(n + 1) / 2] : (drain_ms[n / 2] + drain_ms[n / 2 + 1]) / 2
	base_ms = baseline_drain * 1000
	printf "  baseline: a bucket of %d rows drained in %.2f ms (same agent, this run)\n", baseline_rows, base_ms
	printf "  drain of %.0f rows: median %.2f ms [%.2f .. %.2f]; %+.2f ms over the baseline, %.2f ms per 1000 rows\n",
	       rows_sum / n, median, drain_ms[1], drain_ms[n], median - base_ms,
	       (rows_sum > 0 ? 1000 * (median - base_ms) / (rows_sum / n) : 0)
	printf "  lost: %s\n", lost
	if (misses != "none")
		printf "  recursion misses of the agent's programs: %s\n", misses
	printf "{\"type\":\"scale_rows\",\"rows_expected\":%d,\"rounds\":%d,\"drain_ms_median\":%.3f," \
	       "\"drain_ms_min\":%.3f,\"drain_ms_max\":%.3f,\"baseline_drain_ms\":%.3f,\"baseline_rows\":%d," \
	       "\"all_rows_in_one_bucket\":%s,\"lost\":%s}\n", expected, n, median, drain_ms[1], drain_ms[n],
	       base_ms, baseline_rows, all_in_bucket ? "true" : "false", lost_json == "" ? "null" : lost_json >> ndjson

	printf "\nTargets (scale: rows)\n"
	verdict = all_in_bucket ? "PASS" : "MISS"
	printf "  %-6s  %d rows made in one bucket and published on /metrics, every round\n", verdict, expected
	printf "{\"type\":\"target\",\"name\":\"scale_rows_published\",\"rows\":%d,\"verdict\":\"%s\"}\n",
	       expected, tolower(verdict) >> ndjson
	verdict = drain_ms[n] < target_ms ? "PASS" : "MISS"
	printf "  %-6s  drain of %d rows under %d ms: median %.2f ms, max %.2f ms\n", verdict, expected,
	       target_ms, median, drain_ms[n]
	printf "{\"type\":\"target\",\"name\":\"scale_rows_drain\",\"drain_ms_max\":%.3f,\"max_ms\":%d," \
	       "\"verdict\":\"%s\"}\n", drain_ms[n], target_ms, tolower(verdict) >> ndjson
}
