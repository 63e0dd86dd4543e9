/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-bucket aggregation: find (or create) the row of a key in the
 * generation map that the current wall-clock bucket writes to.
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

#define agg_add(field, value) __sync_fetch_and_add(&(field), (value))

#endif /* KACCESS_BPF_AGG_BPF_H */
