/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-bucket aggregation: find (or create) the row of a key in the
 * generation map that the current wall-clock bucket writes to, or add to
 * this CPU's combined sums of that row (write combining), which reach it
 * before the shipper drains it.
 */
#ifndef KACCESS_BPF_AGG_BPF_H
#define KACCESS_BPF_AGG_BPF_H

#include "../maps/maps.bpf.h"
#include "config.bpf.h"
#include "counters.bpf.h"

#define KACCESS_EEXIST 17

/*
 * A new row's initial value: zeros and its bucket. It lives in a per-CPU
 * map, not on the stack: the row is 360 bytes, and with the callers'
 * frames it would pass 6.1's 512-byte limit for a call chain.
 */
static __always_inline struct kaccess_agg_value *agg_fresh_row(__u64 bucket)
{
	__u32 zero = 0;
	struct kaccess_agg_value *fresh = bpf_map_lookup_elem(&agg_fresh, &zero);

	if (fresh)
		fresh->bucket = bucket; /* nothing else is ever written: the rest stays 0 */
	return fresh;
}

static __always_inline struct kaccess_agg_value *
agg_row_in(void *generation, const struct kaccess_agg_key *key, __u64 bucket)
{
	struct kaccess_agg_value *row, *fresh;
	int err;

	row = bpf_map_lookup_elem(generation, key);
	if (row) {
		/* A row left from two buckets ago means the drain fell behind:
		 * the numbers still land, under the older bucket. */
		if (row->bucket != bucket)
			count_loss(KACCESS_CTR_AGG_STALE_BUCKET);
		return row;
	}
	fresh = agg_fresh_row(bucket);
	if (!fresh)
		return NULL;
	err = bpf_map_update_elem(generation, key, fresh, BPF_NOEXIST);
	if (err && err != -KACCESS_EEXIST) { /* EEXIST: another CPU inserted it first */
		count_loss(KACCESS_CTR_AGG_TABLE_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(generation, key);
}

/* The wall-clock bucket that contains monotonic time `now_ns`. */
static __always_inline __u64 agg_bucket_of(__u64 now_ns)
{
	return (now_ns + wall_offset_ns) / bucket_ns;
}

/* The row of `key` for `bucket`, in the generation that bucket writes to. */
static __always_inline struct kaccess_agg_value *
agg_row_of_bucket(const struct kaccess_agg_key *key, __u64 bucket)
{
	if (bucket & 1)
		return agg_row_in(&agg_gen1, key, bucket);
	return agg_row_in(&agg_gen0, key, bucket);
}

/* The row of `key` for the bucket that contains monotonic time `now_ns`. */
static __always_inline struct kaccess_agg_value *
agg_row(const struct kaccess_agg_key *key, __u64 now_ns)
{
	return agg_row_of_bucket(key, agg_bucket_of(now_ns));
}

/* Into a row, which other CPUs add to as well. */
#define agg_add(field, value) __sync_fetch_and_add(&(field), (value))
/* Into this CPU's combined sums (struct agg_sums), which only it writes. */
#define sum_add(field, value) ((field) += (value))

/* ---- write combining (struct agg_combine) -------------------------------- */

/* Set by the shipper once agg_flush_cpu runs on every CPU: the slots may hold sums. */
volatile __u32 agg_combining __weak;

static __always_inline struct agg_cpu *agg_this_cpu(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&agg_cpu, &zero);
}

static __always_inline bool agg_key_equal(const struct kaccess_agg_key *a,
					  const struct kaccess_agg_key *b)
{
	const __u64 *x = (const __u64 *)a, *y = (const __u64 *)b;

	return x[0] == y[0] && x[1] == y[1] && x[2] == y[2] && x[3] == y[3];
}

#define sums_move(row, sums, field)                                                    \
	do {                                                                           \
		if ((sums)->field) {                                                   \
			agg_add((row)->field, (sums)->field);                          \
			(sums)->field = 0;                                             \
		}                                                                      \
	} while (0)

/* Add `sums` to the row of (agg, bucket) and zero them. */
static __always_inline void agg_sums_flush(struct agg_sums *sums, const struct kaccess_agg_key *agg,
					   __u64 bucket)
{
	struct kaccess_agg_value *row = agg_row_of_bucket(agg, bucket);

	if (!row) { /* counted by agg_row_in */
		__builtin_memset(sums, 0, sizeof(*sums));
		return;
	}
	sums_move(row, sums, read_count);
	sums_move(row, sums, read_duration_ns_sum);
	sums_move(row, sums, read_bytes);
	sums_move(row, sums, write_count);
	sums_move(row, sums, write_duration_ns_sum);
	sums_move(row, sums, write_bytes);
	sums_move(row, sums, write_l4_duration_ns_sum);
	sums_move(row, sums, write_packets);
	sums_move(row, sums, write_packet_bytes);
	sums_move(row, sums, write_l2_duration_ns_sum);
	sums_move(row, sums, write_l2_enter_queue_count);
	sums_move(row, sums, write_l2_ready_send_duration_ns_sum);
	sums_move(row, sums, write_l2_device_send_duration_ns_sum);
	sums_move(row, sums, write_l3_duration_ns_sum);
	sums_move(row, sums, write_l3_local_duration_ns_sum);
	sums_move(row, sums, write_l3_output_duration_ns_sum);
	sums_move(row, sums, write_netfilter_count);
	sums_move(row, sums, write_netfilter_duration_ns_sum);
	sums_move(row, sums, read_packets);
	sums_move(row, sums, read_packet_bytes);
	sums_move(row, sums, read_l4_duration_ns_sum);
	sums_move(row, sums, read_l3_duration_ns_sum);
	sums_move(row, sums, read_l2_to_queue_duration_ns_sum);
	sums_move(row, sums, read_l2_from_queue_duration_ns_sum);
	sums_move(row, sums, read_l3_rcv_duration_ns_sum);
	sums_move(row, sums, read_l3_local_duration_ns_sum);
	sums_move(row, sums, read_netfilter_count);
	sums_move(row, sums, read_netfilter_duration_ns_sum);
	sums_move(row, sums, write_egress_packets);
	sums_move(row, sums, write_egress_duration_ns_sum);
}

/* The slot of `agg` in this bucket: its own, a free one, or one given up (flushed). */
static __always_inline struct agg_combine *agg_combine_slot(struct agg_cpu *cpu,
							    const struct kaccess_agg_key *agg,
							    __u64 now_ns)
{
	struct agg_combine *slot, *taken = NULL;

	for (int i = 0; i < AGG_COMBINE_SLOTS; i++) {
		slot = &cpu->combine[i];
		if (!slot->bucket) {
			taken = taken ?: slot;
		} else if (agg_key_equal(&slot->agg, agg)) {
			if (now_ns < slot->bucket_end_ns)
				return slot;
			taken = slot; /* its bucket ended */
			break;
		}
	}
	if (!taken)
		taken = &cpu->combine[cpu->next++ & (AGG_COMBINE_SLOTS - 1)];
	if (taken->bucket)
		agg_sums_flush(&taken->sums, &taken->agg, taken->bucket);
	taken->agg = *agg;
	taken->bucket = agg_bucket_of(now_ns);
	taken->bucket_end_ns = (taken->bucket + 1) * bucket_ns - wall_offset_ns;
	return taken;
}

/*
 * The sums a read, write or packet adds to, with plain adds: its key's
 * slot on this CPU. A program that interrupted another one (or the flush)
 * while it held the slots, or any program while combining is off, gets
 * nested sums instead (*nested set), which agg_sums_end moves to the row
 * at once. An interrupting program always ends before the one it
 * interrupted goes on, so the flags need no atomics. NULL only three
 * levels deep.
 */
static __always_inline struct agg_sums *agg_sums_begin(struct agg_cpu *cpu,
						       const struct kaccess_agg_key *agg,
						       __u64 now_ns, bool *nested)
{
	__u32 depth;

	*nested = !agg_combining || cpu->busy;
	if (!*nested) {
		cpu->busy = 1;
		return &agg_combine_slot(cpu, agg, now_ns)->sums;
	}
	depth = cpu->nested_depth;
	if (depth >= 2)
		return NULL;
	cpu->nested_depth = depth + 1;
	return &cpu->nested[depth & 1];
}

static __always_inline void agg_sums_end(struct agg_cpu *cpu, struct agg_sums *sums, bool nested,
					 const struct kaccess_agg_key *agg, __u64 now_ns)
{
	if (!nested) {
		cpu->busy = 0;
		return;
	}
	agg_sums_flush(sums, agg, agg_bucket_of(now_ns));
	cpu->nested_depth--;
}

#endif /* KACCESS_BPF_AGG_BPF_H */
