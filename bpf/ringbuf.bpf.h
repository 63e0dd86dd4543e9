/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef KACCESS_BPF_RINGBUF_BPF_H
#define KACCESS_BPF_RINGBUF_BPF_H

#include "../maps/maps.bpf.h"

/*
 * Waking the reader costs an irq_work (a self-IPI, several microseconds in a
 * VM) per event. No event is urgent: the shipper polls the ring buffer
 * every EVENTS_POLL_MS anyway, so wake it only when the buffer is a quarter
 * full, which at tens of thousands of access-log records a second is what
 * keeps the buffer from overflowing between two polls.
 */
static __always_inline __u64 ringbuf_wakeup_flags(void)
{
	__u64 pending = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 size = bpf_ringbuf_query(&events, BPF_RB_RING_SIZE);

	return pending > size / 4 ? BPF_RB_FORCE_WAKEUP : BPF_RB_NO_WAKEUP;
}

#endif /* KACCESS_BPF_RINGBUF_BPF_H */
