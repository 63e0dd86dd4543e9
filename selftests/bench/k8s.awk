# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# k8s.awk: the k8s section's table, NDJSON lines and targets, from
# k8s_scale's two NDJSON lines (the small set first, then the large one).
# Memory is the growth of k8s_scale's VmRSS across the large set's sync and
# lookups: the resolver's store with everything it holds.
# Variables: ndjson, rss_target_mib, max_lookup_multiple, max_lookup_ns.

function num(key) {
	if (!match($0, "\"" key "\":-?[0-9.]+"))
		return ""
	return substr($0, RSTART + length(key) + 3, RLENGTH - length(key) - 3) + 0
}

BEGIN {
	printf "  %-6s %7s %9s %10s %8s %15s %10s %17s\n", "set", "pods", "services", "namespaces", "sync ms",
	       "RSS growth MiB", "lookup ns", "resolved/lookups"
}

/"type":"k8s_scale"/ {
	n++
	set = n == 1 ? "small" : "large"
	pods[set] = num("pods"); services[set] = num("services")
	growth_kib[set] = num("rss_kib_after") - num("rss_kib_before")
	lookup_ns[set] = num("lookup_ns")
	lookups[set] = num("lookups"); resolved[set] = num("lookups_resolved")
	held_all[set] = num("pods_held") == pods[set] && num("services_held") == services[set]
	printf "  %-6s %7d %9d %10d %8d %15.1f %10.0f %10d/%d\n", set, pods[set], services[set],
	       num("namespaces"), num("sync_ms"), growth_kib[set] / 1024, lookup_ns[set], resolved[set], lookups[set]
	line = $0
	sub(/^\{"type":"k8s_scale",/, "{\"type\":\"k8s_scale\",\"set\":\"" set "\",\"rss_growth_kib\":" growth_kib[set] ",", line)
	print line >> ndjson
}

function target(pass, text, name, fields) {
	verdict = pass ? "PASS" : "MISS"
	printf "  %-6s  %s\n", verdict, text
	printf "{\"type\":\"target\",\"name\":\"%s\",%s,\"verdict\":\"%s\"}\n", name, fields, tolower(verdict) >> ndjson
}

END {
	if (n != 2) {
		print "k8s.awk: expected two k8s_scale lines (small, large), got " n > "/dev/stderr"
		exit 1
	}
	multiple = lookup_ns["small"] > 0 ? lookup_ns["large"] / lookup_ns["small"] : 0
	printf "\nTargets (k8s)\n"
	target(held_all["large"] && held_all["small"],
	       sprintf("every object held: %d pods and %d services", pods["large"], services["large"]),
	       "k8s_objects_held", sprintf("\"pods\":%d,\"services\":%d", pods["large"], services["large"]))
	target(growth_kib["large"] / 1024 < rss_target_mib,
	       sprintf("resolver memory with %d pods and %d services < %d MiB: %.1f MiB", pods["large"],
		       services["large"], rss_target_mib, growth_kib["large"] / 1024),
	       "k8s_memory", sprintf("\"rss_growth_kib\":%d,\"max_mib\":%d", growth_kib["large"], rss_target_mib))
	target(multiple <= max_lookup_multiple && lookup_ns["large"] < max_lookup_ns,
	       sprintf("lookup O(1): %.0f ns with %d pods = %.2fx the %d-pod lookup (at most %dx, under %d ns)",
		       lookup_ns["large"], pods["large"], multiple, pods["small"], max_lookup_multiple, max_lookup_ns),
	       "k8s_lookup", sprintf("\"lookup_ns\":%.1f,\"multiple\":%.3f,\"max_multiple\":%d,\"max_ns\":%d",
				     lookup_ns["large"], multiple, max_lookup_multiple, max_lookup_ns))
	target(resolved["large"] == lookups["large"] && resolved["small"] == lookups["small"],
	       sprintf("every lookup of a pod IP resolved to its pod: %d of %d", resolved["large"], lookups["large"]),
	       "k8s_lookups_resolved", sprintf("\"resolved\":%d,\"lookups\":%d", resolved["large"], lookups["large"]))
}
