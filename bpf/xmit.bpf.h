/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A sent packet's L2 and L3 figures, and the SYN of a connecting client
 * whose figures wait in forwarded_syns until its peer is known. bpf/l24.bpf.c
 * counts packets; bpf/connections.bpf.c counts a waiting SYN when the
 * connect ends before a forwarded copy of it was seen.
 */
#ifndef KACCESS_BPF_XMIT_BPF_H
#define KACCESS_BPF_XMIT_BPF_H

#include "../maps/maps.bpf.h"
#include "agg.bpf.h"
#include "counters.bpf.h"

/*
 * A packet the driver took at `sent_ns`, `skb_len` bytes as the device
 * counts them, added with `add` to `dst`: a row (agg_add, atomic) or a
 * CPU's combined sums (sum_add; struct agg_sums has the row's field names).
 * L3 runs from LOCAL_OUT to the driver, or to the qdisc that took it;
 * without links, egress from the write's L4 start to the device queue.
 */
#define xmit_account_into(add, dst, window, sent_ns, skb_len)                                   \
	do {                                                                                    \
		add((dst)->write_packets, 1);                                                   \
		add((dst)->write_packet_bytes, (skb_len));                                      \
		add((dst)->write_l2_duration_ns_sum, (sent_ns) - (window)->queued_ns);          \
		if ((window)->enqueued)                                                         \
			add((dst)->write_l2_enter_queue_count, 1);                              \
		if ((window)->l3_start_ns) {                                                    \
			add((dst)->write_l3_duration_ns_sum,                                    \
			    ((window)->l3_end_ns ?: (sent_ns)) - (window)->l3_start_ns);        \
			add((dst)->write_l3_local_duration_ns_sum, (window)->l3_local_ns);      \
			add((dst)->write_l3_output_duration_ns_sum, (window)->l3_output_ns);    \
			add((dst)->write_netfilter_count, (window)->netfilter_count);           \
			add((dst)->write_netfilter_duration_ns_sum, (window)->netfilter_ns);    \
		}                                                                               \
		if ((window)->egress_ns) {                                                      \
			add((dst)->write_egress_packets, 1);                                    \
			add((dst)->write_egress_duration_ns_sum, (window)->egress_ns);          \
		}                                                                               \
		if (!(window)->start_xmit_ns) {                                                 \
			count_loss(KACCESS_CTR_L24_WINDOW_LOST);                                \
			break;                                                                  \
		}                                                                               \
		add((dst)->write_l2_ready_send_duration_ns_sum,                                 \
		    (window)->start_xmit_ns - (window)->queued_ns);                             \
		add((dst)->write_l2_device_send_duration_ns_sum, (sent_ns) - (window)->start_xmit_ns); \
	} while (0)

/* Straight into a row: the rare paths (a SYN whose peer became known). */
static __always_inline void xmit_account(struct kaccess_agg_value *row, const struct xmit_window *window,
					 __u64 sent_ns, __u32 skb_len)
{
	xmit_account_into(agg_add, row, window, sent_ns, skb_len);
}

/* Into this CPU's combined sums: every packet (bpf/l24.bpf.c). */
static __always_inline void xmit_account_sums(struct agg_sums *sums, const struct xmit_window *window,
					      __u64 sent_ns, __u32 skb_len)
{
	xmit_account_into(sum_add, sums, window, sent_ns, skb_len);
}

/* A client's SYN carries the socket's own address and port (no SNAT before its device). */
static __always_inline void forwarded_syn_key_of(struct forwarded_syn_key *key,
						 const struct kaccess_conn *conn)
{
	__builtin_memset(key, 0, sizeof(*key));
	__builtin_memcpy(key->addr, conn->local_addr, KACCESS_ADDR_LEN);
	key->port = conn->local_port;
}

static __always_inline void forwarded_syn_delete(const struct forwarded_syn_key *key)
{
	if (bpf_map_delete_elem(&forwarded_syns, key) == 0)
		__sync_fetch_and_add(&forwarded_syns_count, -1);
}

/* A neighbour resolution a packet of the connection waited for. */
static __always_inline void resolve_mac_account(struct kaccess_agg_value *row, __u64 duration_ns)
{
	agg_add(row->write_resolve_mac_count, 1);
	agg_add(row->write_resolve_mac_duration_ns_sum, duration_ns);
}

/*
 * The SYN's peer is as known as it will be: its transmit (if the driver
 * took it) and the resolution it waited for go to the connection's row
 * now, and the entry goes.
 */
static __always_inline void forwarded_syn_settle(const struct kaccess_conn *conn,
						 const struct forwarded_syn_key *key,
						 struct forwarded_syn *syn)
{
	struct kaccess_agg_value *row;

	if (syn->sent_ns || syn->resolve_mac_ns) {
		row = agg_row(&conn->agg, bpf_ktime_get_ns());
		if (row && syn->sent_ns)
			xmit_account(row, &syn->window, syn->sent_ns, syn->sent_bytes);
		if (row && syn->resolve_mac_ns)
			resolve_mac_account(row, syn->resolve_mac_ns);
		syn->sent_ns = 0;
		syn->resolve_mac_ns = 0;
	}
	forwarded_syn_delete(key);
}

/* The connect ends (`conn` has its local address): a SYN still waiting is counted now. */
static __always_inline void forwarded_syn_connect_ends(const struct kaccess_conn *conn, __u64 sk)
{
	struct forwarded_syn_key key;
	struct forwarded_syn *syn;

	if (forwarded_syns_count <= 0)
		return;
	forwarded_syn_key_of(&key, conn);
	syn = bpf_map_lookup_elem(&forwarded_syns, &key);
	if (syn && syn->sk == sk)
		forwarded_syn_settle(conn, &key, syn);
}

#endif /* KACCESS_BPF_XMIT_BPF_H */
