/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef KACCESS_BPF_COUNTERS_BPF_H
#define KACCESS_BPF_COUNTERS_BPF_H

#include "../maps/maps.bpf.h"

/* Record that something was lost or mis-filed; the shipper exports it. */
static __always_inline void count_loss(enum kaccess_counter counter)
{
	__u32 key = counter;
	__u64 *value = bpf_map_lookup_elem(&counters, &key);

	if (value)
		*value += 1; /* per-CPU slot: no atomics needed */
}

#endif /* KACCESS_BPF_COUNTERS_BPF_H */
