# SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#
# memory.awk: the memory section: each map's memlock at the defaults on this
# machine, the part of it that grows with the number of CPUs, and the total
# projected to `project_cpus`. Two inputs:
#   probes: MAP_ID MEMLOCK_A MEMLOCK_B, memlock of two probe maps of the same
#           shape made with bpftool: for a hash, max_entries and max_entries
#           - 64 (same bucket count); for a per-CPU array, max_entries and
#           twice that. Their difference measures the per-element bytes.
#   maps:   ID TYPE NAME FLAGS KEY VALUE MAX_ENTRIES MEMLOCK (the agent's maps)
# Variables: ndjson, cpus (possible CPUs here), project_cpus, target_mib, and
# kernel struct sizes from BTF: htab_size, bucket_size, array_size,
# storage_map_size, storage_bucket_size.
#
# The per-CPU parts follow the kernel's map_mem_usage functions (6.x):
#   hash, preallocated:  sizeof(bpf_htab) + sizeof(bucket) * n_buckets
#                        + elem * (max_entries + cpus)   one spare element per CPU
#                        + 8 * cpus                       the per-CPU pointer to it
#                        + 4 * 8 * cpus                   8 per-CPU lock counters
#   hash, no prealloc:   the same fixed part and lock counters, + (elem + 8) * entries
#   per-CPU array:       sizeof(bpf_array) + 8 * max_entries + value8 * max_entries * cpus
#   task storage:        sizeof(bpf_local_storage_map) + 16 * max(2, roundup_pow_of_two(cpus))
#   ring buffer, array, cgroup array: no per-CPU part
# n_buckets = roundup_pow_of_two(max_entries); value8 = value rounded up to 8.

BEGIN {
	FS = "\t"
	mib = 1048576
}

function pow2_at_least(n,    p) {
	p = 1
	while (p < n)
		p *= 2
	return p
}

function round8(n) {
	return int((n + 7) / 8) * 8
}

function max(a, b) {
	return a > b ? a : b
}

function size(bytes) {
	if (bytes >= mib)
		return sprintf("%.2f MiB", bytes / mib)
	if (bytes >= 1024)
		return sprintf("%.1f KiB", bytes / 1024)
	return sprintf("%d B", bytes)
}

FILENAME == ARGV[1] {
	probe_a[$1] = $2
	probe_b[$1] = $3
	next
}

{
	id = $1; type = $2; name = $3; flags = $4; key = $5; value = $6; entries = $7; memlock = $8
	per_cpu = 0       # bytes per additional CPU
	extra = 0         # projected growth when it is not linear
	model = -1        # the formula's memlock on this machine, when it has one
	how = ""
	if (type == "hash" && !(flags % 2) && (id in probe_a)) {
		elem = (probe_a[id] - probe_b[id]) / 64
		per_cpu = elem + 8 + 32
		model = htab_size + bucket_size * pow2_at_least(entries) + elem * (entries + cpus) + 40 * cpus
		how = sprintf("elem %d (measured) + 8 + 32", elem)
		formula_hash = 1
	} else if (type == "hash") {
		per_cpu = 32
		how = "lock counters; elements allocated on use"
		formula_hash_noprealloc = 1
	} else if (type == "percpu_array" && (id in probe_a)) {
		# Doubling max_entries adds max_entries * (8 + value8 * cpus).
		per_entry = (probe_b[id] - probe_a[id]) / entries
		per_cpu = (per_entry - 8) / cpus * entries
		model = array_size + 8 * entries + round8(value) * entries * cpus
		how = sprintf("%d x %d-byte values (measured)", entries, (per_entry - 8) / cpus)
		formula_percpu = 1
	} else if (type == "task_storage") {
		extra = storage_bucket_size * (max(2, pow2_at_least(project_cpus)) - max(2, pow2_at_least(cpus)))
		model = storage_map_size + storage_bucket_size * max(2, pow2_at_least(cpus))
		how = "16-byte buckets: one per CPU, rounded up to a power of two"
		formula_storage = 1
	} else {
		how = "none"
	}
	projected = memlock + (extra ? extra : per_cpu * (project_cpus - cpus))
	total += memlock
	total_projected += projected
	check = model < 0 ? "-" : (model == memlock ? "exact" : sprintf("%+d B", memlock - model))
	line[++maps] = sprintf("  %-16s %-13s %11d %12s %12s %13s  %-6s %s", name, type, entries, size(memlock),
			       extra ? size(extra / (project_cpus - cpus)) "*" : size(per_cpu),
			       size(projected), check, how)
	printf "{\"type\":\"map_memory\",\"name\":\"%s\",\"map_type\":\"%s\",\"max_entries\":%d," \
	       "\"memlock_bytes\":%d,\"cpus\":%d,\"per_cpu_bytes\":%.1f,\"projected_cpus\":%d," \
	       "\"projected_bytes\":%d,\"model_bytes\":%s}\n", name, type, entries, memlock, cpus,
	       extra ? extra / (project_cpus - cpus) : per_cpu, project_cpus, projected,
	       model < 0 ? "null" : model >> ndjson
}

END {
	printf "  %-16s %-13s %11s %12s %12s %13s  %-6s %s\n", "map", "type", "max_entries",
	       sprintf("now (%d CPU)", cpus), "per CPU", sprintf("at %d CPUs", project_cpus), "model", "per-CPU part"
	for (i = 1; i <= maps; i++)
		print line[i]
	printf "  %-16s %-13s %11s %12s %12s %13s\n", "total", "", "", size(total), "", size(total_projected)
	printf "  projected = memlock here + (%d - %d) x per CPU; model = the formula below evaluated for this\n" \
	       "  machine (\"exact\": it reproduces the kernel's memlock to the byte)\n", project_cpus, cpus
	printf "  formulas (kernel map_mem_usage; n_buckets = roundup_pow_of_two(max_entries), sizes from BTF):\n"
	if (formula_hash)
		printf "    hash:         %d + %d x n_buckets + elem x (max_entries + cpus) + (8 + 4 x 8) x cpus\n" \
		       "                  (one preallocated spare element per CPU, its per-CPU pointer, 8 lock counters)\n",
		       htab_size, bucket_size
	if (formula_hash_noprealloc)
		printf "    hash (BPF_F_NO_PREALLOC): %d + %d x n_buckets + 4 x 8 x cpus + (elem + 8) x entries in use\n",
		       htab_size, bucket_size
	if (formula_percpu)
		printf "    percpu_array: %d + 8 x max_entries + value (rounded to 8) x max_entries x cpus\n", array_size
	if (formula_storage)
		printf "    task_storage: %d + %d x max(2, roundup_pow_of_two(cpus)) (* growth from %d to %d CPUs)\n",
		       storage_map_size, storage_bucket_size, cpus, project_cpus
	printf "    ringbuf, array, cgroup_array: independent of the number of CPUs\n"
	printf "  not in memlock: task storage values (one per thread that used a tracked socket), the\n" \
	       "  allocator caches of maps without preallocation, the programs' JIT images\n"
	printf "{\"type\":\"memory_projection\",\"cpus\":%d,\"memlock_bytes\":%d,\"projected_cpus\":%d," \
	       "\"projected_bytes\":%d,\"target_bytes\":%d}\n", cpus, total, project_cpus, total_projected,
	       target_mib * mib >> ndjson
	printf "\nTargets (memory)\n"
	verdict = total_projected <= target_mib * mib ? "PASS" : "MISS"
	printf "  %-6s  default maps on a %d-CPU node <= %d MiB: %s\n", verdict, project_cpus, target_mib,
	       size(total_projected)
	printf "{\"type\":\"target\",\"name\":\"memory_%d_cpus\",\"projected_bytes\":%d,\"max_bytes\":%d," \
	       "\"verdict\":\"%s\"}\n", project_cpus, total_projected, target_mib * mib, tolower(verdict) >> ndjson
}
