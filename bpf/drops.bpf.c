// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Loss locations of writes: a tracked connection's own outgoing sk_buffs
 * that the kernel frees as dropped (skb:kfree_skb, with its drop reason,
 * Linux 5.17+). The reason is the location: NETFILTER_DROP for a rule's
 * drop, QDISC_DROP for a full queue, and so on; userspace names it from
 * the kernel's BTF (enum skb_drop_reason).
 *
 * This file is built for BPF ISA v3: it claims a row's reason slot with a
 * compare-and-exchange, so that two CPUs dropping for different reasons at
 * once never share a slot.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "../maps/maps.bpf.h"
#include "agg.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * An outgoing sk_buff of a tracked socket. A received one can carry its
 * socket too (early demux sets skb->sk before the INPUT hook), but it has
 * come through a device: only sk_buffs never received have skb_iif 0.
 */
static __always_inline struct kaccess_conn *conn_of_outgoing(const struct sk_buff *skb)
{
	__u64 key = (__u64)skb->sk;

	if (!key || skb->skb_iif)
		return NULL;
	return bpf_map_lookup_elem(&conn_table, &key);
}

/* Adds one packet to the slot of `reason`, claiming a free slot for it first. */
static __always_inline void loss_add(struct kaccess_agg_value *row, __u32 reason)
{
	agg_add(row->write_loss_packets, 1);
	for (int i = 0; i < KACCESS_LOSS_REASON_SLOTS; i++) {
		__u32 held = row->write_loss_reason[i];

		if (!held)
			held = __sync_val_compare_and_swap(&row->write_loss_reason[i], 0, reason) ?: reason;
		if (held == reason) {
			agg_add(row->write_loss_reason_packets[i], 1);
			return;
		}
	}
	/* a fifth reason in one row and minute: in write_loss_packets only */
}

SEC("tp_btf/kfree_skb")
int BPF_PROG(l24_kfree_skb, struct sk_buff *skb, void *location, enum skb_drop_reason reason)
{
	struct kaccess_conn *conn = conn_of_outgoing(skb);
	struct kaccess_agg_value *row;

	if (!conn || !reason)
		return 0;
	row = agg_row(&conn->agg, bpf_ktime_get_ns());
	if (row)
		loss_add(row, reason);
	return 0;
}
