/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
#ifndef KACCESS_BPF_RINGBUF_BPF_H
#define KACCESS_BPF_RINGBUF_BPF_H

#include "../maps/maps.bpf.h"
#include "config.bpf.h"

#define RINGBUF_RECORD_HEADER_BYTES 8 /* the kernel's header before each record */

/* What a record of `record_bytes` takes in the buffer: header, then 8-byte aligned. */
static __always_inline __u64 ringbuf_record_space(__u64 record_bytes)
{
	return (record_bytes + RINGBUF_RECORD_HEADER_BYTES + 7) & ~7ULL;
}

/*
 * Waking the reader costs an irq_work (a self-IPI, several microseconds in a
 * VM). No event is urgent: the shipper polls the ring buffer every
 * EVENTS_POLL_MS anyway, so wake it only when the data waiting crosses a
 * quarter, a half or three quarters of the buffer, which at tens of
 * thousands of access-log records a second is what keeps the buffer from
 * overflowing between two polls. Once, at the crossing: a reader that is
 * busy consuming finds the rest without being woken again (its poll is
 * level-triggered), where waking it for every record above a quarter cost
 * an IPI per record while it ran. Two CPUs writing at once can both miss a
 * crossing; the next quarter, or the poll, then wakes it.
 */
static __always_inline __u64 ringbuf_wake_on_crossing(__u64 pending_before, __u64 pending_after)
{
	__u64 quarter = events_quarter_bytes;

	if (!quarter)
		return BPF_RB_NO_WAKEUP;
	return pending_before / quarter < pending_after / quarter ? BPF_RB_FORCE_WAKEUP
								   : BPF_RB_NO_WAKEUP;
}

/* The flags of a bpf_ringbuf_output() of `record_bytes`. */
static __always_inline __u64 ringbuf_output_flags(__u64 record_bytes)
{
	__u64 pending = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);

	return ringbuf_wake_on_crossing(pending, pending + ringbuf_record_space(record_bytes));
}

/* The flags of submitting a reserved record of `record_bytes` (already in the data waiting). */
static __always_inline __u64 ringbuf_submit_flags(__u64 record_bytes)
{
	__u64 pending = bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA);
	__u64 record = ringbuf_record_space(record_bytes);

	return ringbuf_wake_on_crossing(pending > record ? pending - record : 0, pending);
}

#endif /* KACCESS_BPF_RINGBUF_BPF_H */
