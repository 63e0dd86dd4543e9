# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# churn.awk: the churn section's table, NDJSON lines (appended to `ndjson`)
# and targets, from sections.sh's churn.tsv:
#   MODE RUN CLIENT_JSON SERVER_JSON LOST_JSON RECURSION_MISSES AGENT_COUNTS
# CLIENT_JSON and SERVER_JSON are loadgen's churn_done and server_done lines;
# LOST_JSON is the "lost" object of `kaccess status --json` ("-" for the
# baseline); AGENT_COUNTS is agent_churn_counts' comma-separated list.
# Variables: ndjson, bytes (request and response size).
#
# Written for mawk: no asort, no gensub.

BEGIN {
	FS = "\t"
	split("connects connected client_closes client_read client_written accepts server_closes " \
	      "server_read server_written opens closes", count_names, " ")
	count_label["connects"] = "client connects"
	count_label["connected"] = "client connects succeeded"
	count_label["client_closes"] = "client closes"
	count_label["client_read"] = "client bytes read"
	count_label["client_written"] = "client bytes written"
	count_label["accepts"] = "server accepts"
	count_label["server_closes"] = "server closes"
	count_label["server_read"] = "server bytes read"
	count_label["server_written"] = "server bytes written"
	count_label["opens"] = "open events"
	count_label["closes"] = "close events"
}

function num(text, key) {
	if (!match(text, "\"" key "\":-?[0-9.]+"))
		return 0
	return substr(text, RSTART + length(key) + 3, RLENGTH - length(key) - 3) + 0
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

{
	mode = $1; run = $2; client = $3; server = $4
	n = ++runs[mode]
	cps[mode, n] = num(client, "connections_per_s")
	cps_of_run[mode, run] = cps[mode, n]
	generator_errors += num(client, "failed") + num(client, "short_responses") + num(client, "errors")
	generator_errors += num(client, "aborted") + num(server, "short_requests") + num(server, "errors")
	printf "{\"type\":\"churn_run\",\"mode\":\"%s\",\"run\":%d,\"connections_per_s\":%.1f," \
	       "\"connections\":%d,\"connects\":%d,\"failed\":%d,\"server_accepted\":%d", mode, run,
	       cps[mode, n], num(client, "completed"), num(client, "connects"), num(client, "failed"),
	       num(server, "accepted") >> ndjson
	if (mode == "agent") {
		# What the generator did is what the agent must have counted.
		want["connects"] += num(client, "connects")
		want["connected"] += num(client, "connected")
		want["client_closes"] += num(client, "connected")
		want["client_read"] += bytes * num(client, "completed")
		want["client_written"] += bytes * num(client, "connected")
		want["accepts"] += num(server, "accepted")
		want["server_closes"] += num(server, "closed")
		want["server_read"] += bytes * num(server, "responded")
		want["server_written"] += bytes * num(server, "responded")
		want["opens"] += num(client, "connected") + num(server, "accepted")
		want["closes"] += num(client, "connected") + num(server, "closed")
		split($7, got_run, ",")
		for (i = 1; i in count_names; i++)
			got[count_names[i]] += got_run[i]
		# Loss counters, summed over the agent runs (each starts at 0).
		lost = $5
		gsub(/[{}"]/, "", lost)
		k = split(lost, pairs, ",")
		for (i = 1; i <= k; i++) {
			split(pairs[i], kv, ":")
			if (!(kv[1] in lost_sum))
				lost_order[++lost_names] = kv[1]
			lost_sum[kv[1]] += kv[2]
		}
		if ($6 != "none" && $6 != "-")
			misses = misses (misses == "" ? "" : "; ") "run " run ": " $6
		printf ",\"lost\":%s,\"agent_counts\":{", $5 >> ndjson
		for (i = 1; i in count_names; i++)
			printf "%s\"%s\":%d", (i > 1 ? "," : ""), count_names[i], got_run[i] >> ndjson
		printf "}" >> ndjson
	}
	printf "}\n" >> ndjson
}

function print_mode(mode, label,    i, values, lo, hi, m) {
	for (i = 1; i <= runs[mode]; i++)
		values[i] = cps[mode, i]
	m = median(values, runs[mode])
	lo = values[1]; hi = values[runs[mode]]
	cps_median[mode] = m
	printf "  %-22s %5d %12.0f  [%7.0f .. %7.0f] %8s\n", label, runs[mode], m, lo, hi,
	       (cps_median["baseline"] > 0 ? sprintf("%.3f", m / cps_median["baseline"]) : "-")
}

END {
	printf "  %-22s %5s %12s  %-19s %8s\n", "mode", "runs", "conn/s", "[min .. max]", "/ base"
	if (runs["baseline"])
		print_mode("baseline", "baseline (no BPF)")
	if (runs["agent"])
		print_mode("agent", "agent")
	ratio = cps_median["baseline"] > 0 ? cps_median["agent"] / cps_median["baseline"] : 0
	pairs_n = 0
	for (i = 1; (("baseline", i) in cps_of_run) && (("agent", i) in cps_of_run); i++)
		if (cps_of_run["baseline", i] > 0)
			pair[++pairs_n] = cps_of_run["agent", i] / cps_of_run["baseline", i]
	if (pairs_n) {
		pair_median = median(pair, pairs_n)
		printf "  agent / baseline: %.3f (%.1f%% of baseline connections/s); per-pair ratios: median %.3f [%.3f .. %.3f]\n",
		       ratio, 100 * ratio, pair_median, pair[1], pair[pairs_n]
	}

	lost_total = 0
	lost_line = ""
	lost_json = ""
	for (i = 1; i <= lost_names; i++) {
		name = lost_order[i]
		lost_json = lost_json (i > 1 ? "," : "") "\"" name "\":" lost_sum[name]
		lost_total += lost_sum[name]
		if (lost_sum[name])
			lost_line = lost_line (lost_line == "" ? "" : ", ") name "=" lost_sum[name]
	}
	printf "  lost events (the agent's loss counters, summed over its runs): %s\n", lost_line == "" ? "0" : lost_line
	if (misses != "")
		printf "  recursion misses of the agent's programs: %s\n", misses
	printf "  counted by the agent (its NDJSON, client and server cgroups) against loadgen's own counts:\n"
	exact = 1
	for (i = 1; i in count_names; i++) {
		name = count_names[i]
		mark = got[name] == want[name] ? "" : sprintf("   <- %+d", got[name] - want[name])
		if (got[name] != want[name])
			exact = 0
		printf "    %-26s %12d of %12d%s\n", count_label[name], got[name], want[name], mark
	}
	if (generator_errors)
		printf "  note: loadgen counted %d failed, short or aborted exchanges\n", generator_errors

	printf "{\"type\":\"churn\",\"baseline_connections_per_s_median\":%.1f,\"agent_connections_per_s_median\":%.1f," \
	       "\"agent_over_baseline\":%.4f,\"pair_ratio_median\":%.4f,\"pairs\":%d,\"lost\":{%s}", cps_median["baseline"],
	       cps_median["agent"], ratio, pair_median, pairs_n, lost_json >> ndjson
	for (i = 1; i in count_names; i++)
		printf ",\"counted_%s\":%d,\"expected_%s\":%d", count_names[i], got[count_names[i]],
		       count_names[i], want[count_names[i]] >> ndjson
	printf ",\"generator_errors\":%d}\n", generator_errors >> ndjson

	printf "\nTargets (churn)\n"
	verdict = lost_total == 0 ? "PASS" : "MISS"
	printf "  %-6s  no lost events under churn: lost %s\n", verdict, lost_line == "" ? "0" : lost_line
	printf "{\"type\":\"target\",\"name\":\"churn_lost_events\",\"lost_total\":%d,\"verdict\":\"%s\"}\n",
	       lost_total, tolower(verdict) >> ndjson
	verdict = exact && runs["agent"] ? "PASS" : "MISS"
	printf "  %-6s  the agent counted every connection: %d of %d connects, %d of %d accepts%s\n", verdict,
	       got["connects"], want["connects"], got["accepts"], want["accepts"],
	       exact ? " (closes, bytes and events exact too)" : " (see the differences above)"
	printf "{\"type\":\"target\",\"name\":\"churn_counted\",\"counted_connects\":%d,\"expected_connects\":%d," \
	       "\"counted_accepts\":%d,\"expected_accepts\":%d,\"all_exact\":%s,\"verdict\":\"%s\"}\n",
	       got["connects"], want["connects"], got["accepts"], want["accepts"], exact ? "true" : "false",
	       tolower(verdict) >> ndjson
}
