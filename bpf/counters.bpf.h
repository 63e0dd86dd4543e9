/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef KACCESS_BPF_COUNTERS_BPF_H
#define KACCESS_BPF_COUNTERS_BPF_H

#include "../maps/maps.bpf.h"

/* Record that `n` things were lost or mis-filed; the shipper exports it. */
static __always_inline void count_losses(enum kaccess_counter counter, __u64 n)
{
	__u32 key = counter;
	__u64 *value = bpf_map_lookup_elem(&counters, &key);

	if (value)
		*value += n; /* per-CPU slot: no atomics needed */
}

static __always_inline void count_loss(enum kaccess_counter counter)
{
	count_losses(counter, 1);
}

/* One more of a tally (after KACCESS_CTR_LOSSES): something left out on purpose. */
static __always_inline void count_tally(enum kaccess_counter counter)
{
	count_losses(counter, 1);
}

#endif /* KACCESS_BPF_COUNTERS_BPF_H */
