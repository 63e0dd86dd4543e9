// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * L2-L4 of tracked connections, on tracepoints only (no kprobes, no fentry:
 * the reference host has neither). Every figure lands in the connection's
 * aggregate row as a sum or a count; nothing goes to userspace per packet.
 *
 * Transmit (per sk_buff whose skb->sk is a tracked socket, so ACKs and
 * retransmits sent from softirq or timers belong to their connection):
 *
 *   net_dev_queue --(qdisc_enqueue .. qdisc)--> net_dev_start_xmit --> net_dev_xmit
 *   |<------------------ ready to send ------->|<-- device send --->|
 *   |<---------------------------- L2 ----------------------------->|
 *
 * Receive (per data segment of a tracked connection):
 *
 *   netif_receive_skb --> tcp_probe --> sk_data_ready --> copy to the reader
 *   |<------ L3 (+ TCP until queued), to queue ---->|<-- from queue -->|
 *                         |<-- L4 ---->|
 *
 * Packets and bytes: sent = what the driver took (net_dev_xmit, rc 0),
 * received = segments TCP processed (tcp_probe), both with the link-layer
 * header and one per sk_buff, as the device counts them. Retransmitted
 * segments from tcp_retransmit_skb, as the TcpRetransSegs counter counts
 * them. A neighbour resolution a tracked packet waited for: from the
 * neighbour's creation (or its going INCOMPLETE) to the update that made
 * it valid and sent the packet.
 *
 * Each program is loaded only when the kernel has its tracepoint; the
 * shipper derives from that which metrics are measured on this kernel.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "../maps/maps.bpf.h"
#include "agg.bpf.h"
#include "sock.bpf.h"
#include "xmit.bpf.h"

#define NETDEV_TX_OK 0
#define ETH_P_IP 0x0800
#define ETH_P_IPV6 0x86DD
#define NUD_INCOMPLETE 0x01
#define NUD_VALID 0xde /* PERMANENT | NOARP | REACHABLE | PROBE | STALE | DELAY */
#define MAC_HEADER_UNSET 0xffff
#define NEIGH_RESOLUTION_QUEUED 1 /* __neigh_event_send: the packet waits */
#define TRANSPORT_HEADER_UNSET 0xffff
#define IP_FRAGMENT_OFFSET_MASK 0x1fff
#define TCP_FLAG_SYN 0x02
#define TCP_FLAG_ACK 0x10

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/* Tracked packets a qdisc holds now: net_dev_start_xmit looks them up only then. */
__s64 xmit_queued_count = 0;

static __always_inline struct l24_cpu *l24_this_cpu(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&l24_cpu, &zero);
}

static __always_inline struct kaccess_conn *conn_of_sock(const struct sock *sk)
{
	__u64 key = (__u64)sk;

	if (!key)
		return NULL;
	return bpf_map_lookup_elem(&conn_table, &key);
}

static __always_inline struct xmit_window *xmit_window_of(struct l24_cpu *cpu, __u64 skb)
{
	for (int i = 0; i < XMIT_WINDOW_SLOTS; i++)
		if (cpu->xmit[i].skb == skb)
			return &cpu->xmit[i];
	return NULL;
}

static __always_inline struct xmit_window *xmit_window_next(struct l24_cpu *cpu)
{
	return &cpu->xmit[cpu->xmit_next++ & (XMIT_WINDOW_SLOTS - 1)];
}

/* ---- transmit ---------------------------------------------------------- */

/* The packet's IP output windows (bpf/netfilter.bpf.c), when links saw it. */
static __always_inline void xmit_window_take_l3(struct xmit_window *window, struct nf_egress *egress)
{
	if (!l24_netfilter || egress->skb != window->skb) {
		window->l3_start_ns = 0;
		window->netfilter_count = 0;
		return;
	}
	window->l3_start_ns = egress->l3_start_ns;
	window->l3_end_ns = 0;
	window->l3_local_ns = egress->local_ns;
	window->l3_output_ns = egress->output_ns;
	window->netfilter_ns = egress->netfilter_ns;
	window->netfilter_count = egress->netfilter_count;
	egress->skb = 0;
}

static __always_inline bool addr_equal(const __u8 a[KACCESS_ADDR_LEN], const __u8 b[KACCESS_ADDR_LEN])
{
	const __u64 *a64 = (const __u64 *)a, *b64 = (const __u64 *)b;

	return a64[0] == b64[0] && a64[1] == b64[1];
}

/* The addresses, ports and flags of a TCP packet at a device. */
struct tcp_packet {
	__u8 saddr[KACCESS_ADDR_LEN] __attribute__((aligned(8))); /* v4-mapped for IPv4 */
	__u8 daddr[KACCESS_ADDR_LEN] __attribute__((aligned(8)));
	__u16 sport, dport;  /* host byte order */
	__u32 seq_be;
	__u8 flags;          /* TCP_FLAG_* */
};

/* The TCP header's first 14 bytes: ports, sequence, acknowledgment, offset, flags. */
struct tcp_header_start {
	__u16 source, dest;
	__u32 seq, ack_seq;
	__u8 offset, flags;
};

static __always_inline int tcp_packet_read_ipv4(const struct sk_buff *skb, struct tcp_packet *pkt)
{
	struct iphdr ip;

	if (bpf_probe_read_kernel(&ip, sizeof(ip), skb->head + skb->network_header))
		return -1;
	/* a later fragment's "TCP header" is payload */
	if (ip.protocol != KACCESS_IPPROTO_TCP || (bpf_ntohs(ip.frag_off) & IP_FRAGMENT_OFFSET_MASK))
		return -1;
	addr_v4_mapped(pkt->saddr, ip.saddr);
	addr_v4_mapped(pkt->daddr, ip.daddr);
	return 0;
}

/* TCP right after the fixed header only: where a forwarded packet's transport header points. */
static __always_inline int tcp_packet_read_ipv6(const struct sk_buff *skb, struct tcp_packet *pkt)
{
	struct ipv6hdr ip;

	if (bpf_probe_read_kernel(&ip, sizeof(ip), skb->head + skb->network_header))
		return -1;
	if (ip.nexthdr != KACCESS_IPPROTO_TCP)
		return -1;
	__builtin_memcpy(pkt->saddr, &ip.saddr, KACCESS_ADDR_LEN);
	__builtin_memcpy(pkt->daddr, &ip.daddr, KACCESS_ADDR_LEN);
	return 0;
}

/* The packet's IP and TCP headers, as they leave: after every NAT on the way. */
static __always_inline int tcp_packet_read(const struct sk_buff *skb, struct tcp_packet *pkt)
{
	struct tcp_header_start tcp;
	int err;

	if (skb->transport_header == TRANSPORT_HEADER_UNSET)
		return -1;
	if (skb->protocol == bpf_htons(ETH_P_IP))
		err = tcp_packet_read_ipv4(skb, pkt);
	else if (skb->protocol == bpf_htons(ETH_P_IPV6))
		err = tcp_packet_read_ipv6(skb, pkt);
	else
		err = -1;
	if (err || bpf_probe_read_kernel(&tcp, sizeof(tcp), skb->head + skb->transport_header))
		return -1;
	pkt->sport = bpf_ntohs(tcp.source);
	pkt->dport = bpf_ntohs(tcp.dest);
	pkt->seq_be = tcp.seq;
	pkt->flags = tcp.flags;
	return 0;
}

/*
 * A connecting client's packet carries the address it really goes to: after
 * a DNAT (kube-proxy's for a ClusterIP) that is the backend, not what the
 * socket dialed. The connection's rows then name the backend, so the client
 * side has the instance relation too. Only before the handshake ends, so
 * that no row was written under the dialed address yet. The one place a
 * connection's peer is rewritten; true when it was.
 */
static __always_inline bool conn_take_translated_peer(struct kaccess_conn *conn,
						      const struct tcp_packet *pkt)
{
	if (addr_equal(pkt->daddr, conn->agg.peer_addr) && pkt->dport == conn->agg.peer_port)
		return false;
	__builtin_memcpy(conn->agg.peer_addr, pkt->daddr, KACCESS_ADDR_LEN);
	conn->agg.peer_port = pkt->dport;
	conn->flags |= KACCESS_CONN_PEER_TRANSLATED;
	return true;
}

/*
 * Remember the SYN until a forwarded copy of it shows where it went: a pod's
 * packets to a ClusterIP are translated in the node's namespace, after they
 * left the pod's socket. A retransmitted SYN renews its entry.
 */
static __always_inline void forwarded_syn_remember(const struct kaccess_conn *conn, __u64 sk,
						   const struct tcp_packet *pkt)
{
	struct forwarded_syn fresh = { .sk = sk, .seq_be = pkt->seq_be };
	struct forwarded_syn_key key;
	struct forwarded_syn *syn;

	forwarded_syn_key_of(&key, conn);
	syn = bpf_map_lookup_elem(&forwarded_syns, &key);
	if (syn && syn->sk == sk) {
		syn->seq_be = pkt->seq_be;
		return;
	}
	if (bpf_map_update_elem(&forwarded_syns, &key, &fresh, BPF_NOEXIST) == 0)
		__sync_fetch_and_add(&forwarded_syns_count, 1);
	else /* another socket's, gone without its connect's end seen */
		bpf_map_update_elem(&forwarded_syns, &key, &fresh, BPF_EXIST);
}

/* A tracked client's SYN leaves its socket's namespace (or a retransmit of it). */
static __always_inline void client_syn_leaves(struct kaccess_conn *conn, const struct sock *sk,
					      const struct sk_buff *skb)
{
	struct tcp_packet pkt;

	if (tcp_packet_read(skb, &pkt))
		return;
	conn_read_addresses(conn, sk); /* the local port is bound by now */
	conn_take_translated_peer(conn, &pkt);
	forwarded_syn_remember(conn, (__u64)sk, &pkt);
}

/*
 * Most forwarded packets are not SYNs: the TCP flags' byte alone says so in
 * one read. What it is in a packet that is not TCP does not matter: a
 * "SYN" there is then parsed and found out by tcp_packet_read().
 */
static __always_inline bool forwarded_packet_may_be_syn(const struct sk_buff *skb)
{
	__u8 flags = 0;

	if (skb->transport_header == TRANSPORT_HEADER_UNSET)
		return false;
	if (bpf_probe_read_kernel(&flags, sizeof(flags), skb->head + skb->transport_header +
				  offsetof(struct tcp_header_start, flags)))
		return false;
	return (flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) == TCP_FLAG_SYN;
}

/*
 * A packet leaves a device without a socket: forwarded (ip_rcv orphans
 * what it receives). If it is the SYN of a client connecting from a pod
 * here, its destination is what the node's DNAT made of the dialed one.
 */
static __always_inline void forwarded_syn_learn_peer(const struct sk_buff *skb)
{
	struct forwarded_syn_key key = {};
	struct forwarded_syn *syn;
	struct kaccess_conn *conn;
	struct tcp_packet pkt;

	if (!forwarded_packet_may_be_syn(skb))
		return;
	if (tcp_packet_read(skb, &pkt) || (pkt.flags & (TCP_FLAG_SYN | TCP_FLAG_ACK)) != TCP_FLAG_SYN)
		return;
	__builtin_memcpy(key.addr, pkt.saddr, KACCESS_ADDR_LEN);
	key.port = pkt.sport;
	syn = bpf_map_lookup_elem(&forwarded_syns, &key);
	if (!syn || syn->seq_be != pkt.seq_be) /* not ours: a client elsewhere with that address */
		return;
	conn = bpf_map_lookup_elem(&conn_table, &syn->sk);
	if (!conn || conn->state != KACCESS_CONN_CONNECTING) {
		forwarded_syn_delete(&key); /* its connect's end was not seen */
		return;
	}
	/* not translated at this hop: a later one on this node may be (nested namespaces) */
	if (!conn_take_translated_peer(conn, &pkt))
		return;
	forwarded_syn_settle(conn, &key, syn);
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(l24_net_dev_queue, struct sk_buff *skb)
{
	struct sock *sk = skb->sk;
	struct kaccess_conn *conn;
	struct l24_cpu *cpu;
	struct xmit_window *window;

	if (!sk) {
		if (forwarded_syns_count > 0)
			forwarded_syn_learn_peer(skb);
		return 0;
	}
	conn = conn_of_sock(sk);
	if (!conn)
		return 0;
	if (conn->state == KACCESS_CONN_CONNECTING)
		client_syn_leaves(conn, sk, skb);
	cpu = l24_this_cpu();
	if (!cpu)
		return 0;
	if (cpu->updating_neigh && !cpu->resolved_conn) {
		/* a packet that waited for this neighbour leaves now */
		cpu->resolved_agg = conn->agg;
		cpu->resolved_conn = 1;
		cpu->resolved_syn_sk = conn->state == KACCESS_CONN_CONNECTING ? (__u64)sk : 0;
	}
	window = xmit_window_next(cpu);
	window->skb = (__u64)skb;
	window->queued_ns = bpf_ktime_get_ns();
	window->start_xmit_ns = 0;
	window->enqueued = 0;
	window->agg = conn->agg;
	window->syn_sk = conn->state == KACCESS_CONN_CONNECTING ? (__u64)sk : 0;
	xmit_window_take_l3(window, &cpu->egress);
	return 0;
}

/* A qdisc keeps the packet: its window may end on another CPU, later. */
SEC("tp_btf/qdisc_enqueue")
int BPF_PROG(l24_qdisc_enqueue, struct Qdisc *qdisc, const struct netdev_queue *txq,
	     struct sk_buff *skb)
{
	struct l24_cpu *cpu = l24_this_cpu();
	struct xmit_window *window;
	__u64 key = (__u64)skb;

	if (!cpu)
		return 0;
	window = xmit_window_of(cpu, key);
	if (!window)
		return 0;
	window->enqueued = 1;
	if (window->l3_start_ns)
		window->l3_end_ns = bpf_ktime_get_ns();
	if (bpf_map_update_elem(&xmit_queued, &key, window, BPF_ANY) == 0)
		__sync_fetch_and_add(&xmit_queued_count, 1);
	window->skb = 0;
	return 0;
}

/* The window of a packet a qdisc held, back in this CPU's slots. */
static __always_inline struct xmit_window *xmit_window_dequeued(struct l24_cpu *cpu, __u64 skb)
{
	struct xmit_window *queued, *window;

	if (xmit_queued_count <= 0)
		return NULL;
	queued = bpf_map_lookup_elem(&xmit_queued, &skb);
	if (!queued)
		return NULL;
	window = xmit_window_next(cpu);
	*window = *queued;
	bpf_map_delete_elem(&xmit_queued, &skb);
	__sync_fetch_and_add(&xmit_queued_count, -1);
	return window;
}

SEC("tp_btf/net_dev_start_xmit")
int BPF_PROG(l24_net_dev_start_xmit, const struct sk_buff *skb)
{
	struct l24_cpu *cpu = l24_this_cpu();
	struct xmit_window *window;

	if (!cpu)
		return 0;
	window = xmit_window_of(cpu, (__u64)skb) ?: xmit_window_dequeued(cpu, (__u64)skb);
	if (window)
		window->start_xmit_ns = bpf_ktime_get_ns();
	return 0;
}

/*
 * The driver took a connecting client's SYN: it waits with the SYN's entry
 * for its peer to be known, and true is returned. False: count it now,
 * under the peer as known now (a forwarded copy may have come first).
 */
static __always_inline bool syn_sent_waits(struct xmit_window *window, __u64 sent_ns, __u32 skb_len)
{
	struct forwarded_syn_key key;
	struct kaccess_agg_value *row;
	struct forwarded_syn *syn;
	struct kaccess_conn *conn;

	conn = bpf_map_lookup_elem(&conn_table, &window->syn_sk);
	if (!conn)
		return false;
	window->agg = conn->agg;
	forwarded_syn_key_of(&key, conn);
	syn = bpf_map_lookup_elem(&forwarded_syns, &key);
	if (conn->state != KACCESS_CONN_CONNECTING || !syn || syn->sk != window->syn_sk)
		return false;
	if (syn->sent_ns) {
		/* an earlier SYN was not seen forwarded: it stays under the dialed peer */
		row = agg_row(&conn->agg, sent_ns);
		if (row)
			xmit_account(row, &syn->window, syn->sent_ns, syn->sent_bytes);
	}
	syn->window = *window;
	syn->sent_ns = sent_ns;
	syn->sent_bytes = skb_len;
	return true;
}

/* The driver took the packet (or refused it): the window ends. */
SEC("tp_btf/net_dev_xmit")
int BPF_PROG(l24_net_dev_xmit, struct sk_buff *skb, int rc, struct net_device *dev,
	     unsigned int skb_len)
{
	struct l24_cpu *cpu = l24_this_cpu();
	struct kaccess_agg_value *row;
	struct xmit_window *window;
	__u64 now_ns;

	if (!cpu)
		return 0;
	window = xmit_window_of(cpu, (__u64)skb); /* the skb may be freed: address only */
	if (!window)
		return 0;
	window->skb = 0;
	if (rc != NETDEV_TX_OK)
		return 0;
	now_ns = bpf_ktime_get_ns();
	if (window->syn_sk && syn_sent_waits(window, now_ns, skb_len))
		return 0;
	row = agg_row(&window->agg, now_ns);
	if (row)
		xmit_account(row, window, now_ns, skb_len);
	return 0;
}

/* Segments, as TCP counts them in TcpRetransSegs (tcp_skb_pcount). */
SEC("tp_btf/tcp_retransmit_skb")
int BPF_PROG(l24_tcp_retransmit_skb, const struct sock *sk, const struct sk_buff *skb)
{
	struct kaccess_conn *conn = conn_of_sock(sk);
	struct tcp_skb_cb *cb = (struct tcp_skb_cb *)skb->cb;
	struct kaccess_agg_value *row;
	__u16 segments = 0;

	if (!conn)
		return 0;
	/* an attempt that failed (a clone still queued, no memory) sent nothing */
	if (retransmit_reports_err && (int)ctx[2])
		return 0;
	bpf_core_read(&segments, sizeof(segments), &cb->tcp_gso_segs);
	row = agg_row(&conn->agg, bpf_ktime_get_ns());
	if (row)
		agg_add(row->write_retransmit_packets, segments ?: 1);
	return 0;
}

/*
 * Write L4 starts where TCP first takes the write's data. Only the first
 * call of a write counts: tcp_sendmsg_locked runs once per buffer it fills.
 */
SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(l24_tcp_sendmsg_locked, const struct sock *sk)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct syscall_ctx *sc = bpf_task_storage_get(&syscall_ctx_store, task, 0, 0);

	if (!sc || sc->l4_start_ns)
		return 0;
	if (sc->op != SYSCALL_OP_WRITE && sc->op != SYSCALL_OP_WRITE_MMSG)
		return 0;
	sc->l4_start_ns = bpf_ktime_get_ns();
	return 0;
}

/* ---- neighbour resolution ------------------------------------------------ */

static __always_inline void neigh_wait_starts(const struct neighbour *neigh, __u64 flags)
{
	__u64 key = (__u64)neigh, now_ns = bpf_ktime_get_ns();

	bpf_map_update_elem(&neigh_waits, &key, &now_ns, flags);
}

SEC("tp_btf/neigh_create")
int BPF_PROG(l24_neigh_create, struct neigh_table *table, struct net_device *dev, const void *pkey,
	     const struct neighbour *neigh)
{
	neigh_wait_starts(neigh, BPF_ANY);
	return 0;
}

/*
 * An existing entry (failed, or never resolved) starts to resolve again.
 * Over a veth the whole exchange can finish in the softirqs this call runs
 * before its tracepoint: the entry is valid by now, and there is no wait.
 */
SEC("tp_btf/neigh_event_send_done")
int BPF_PROG(l24_neigh_event_send_done, struct neighbour *neigh, int rc)
{
	if (rc == NEIGH_RESOLUTION_QUEUED && neigh->nud_state == NUD_INCOMPLETE)
		neigh_wait_starts(neigh, BPF_NOEXIST);
	return 0;
}

/* An update runs; packets that waited for the neighbour are sent inside it. */
SEC("tp_btf/neigh_update")
int BPF_PROG(l24_neigh_update, struct neighbour *neigh)
{
	struct l24_cpu *cpu = l24_this_cpu();

	if (cpu) {
		cpu->updating_neigh = (__u64)neigh;
		cpu->resolved_conn = 0;
	}
	return 0;
}

/*
 * A connecting client's SYN waited for the neighbour: the resolution waits
 * with the SYN's entry for its peer to be known, and true is returned.
 * False: count it now, under `agg`, set to the peer as known now.
 */
static __always_inline bool syn_resolution_waits(__u64 sk, struct kaccess_agg_key *agg,
						 __u64 duration_ns)
{
	struct forwarded_syn_key key;
	struct forwarded_syn *syn;
	struct kaccess_conn *conn;

	conn = bpf_map_lookup_elem(&conn_table, &sk);
	if (!conn)
		return false;
	*agg = conn->agg;
	forwarded_syn_key_of(&key, conn);
	syn = bpf_map_lookup_elem(&forwarded_syns, &key);
	if (conn->state != KACCESS_CONN_CONNECTING || !syn || syn->sk != sk)
		return false;
	syn->resolve_mac_ns = duration_ns;
	return true;
}

SEC("tp_btf/neigh_update_done")
int BPF_PROG(l24_neigh_update_done, struct neighbour *neigh, int err)
{
	struct l24_cpu *cpu = l24_this_cpu();
	__u64 key = (__u64)neigh, now_ns, *start_ns;
	struct kaccess_agg_value *row;
	__u8 state = neigh->nud_state;

	if (!cpu || cpu->updating_neigh != key)
		return 0;
	cpu->updating_neigh = 0;
	start_ns = bpf_map_lookup_elem(&neigh_waits, &key);
	if (!start_ns)
		return 0;
	if (cpu->resolved_conn && (state & NUD_VALID)) {
		now_ns = bpf_ktime_get_ns();
		if (!cpu->resolved_syn_sk ||
		    !syn_resolution_waits(cpu->resolved_syn_sk, &cpu->resolved_agg, now_ns - *start_ns)) {
			row = agg_row(&cpu->resolved_agg, now_ns);
			if (row)
				resolve_mac_account(row, now_ns - *start_ns);
		}
	}
	if (state != NUD_INCOMPLETE)
		bpf_map_delete_elem(&neigh_waits, &key);
	cpu->resolved_conn = 0;
	return 0;
}

/* ---- receive ------------------------------------------------------------- */

SEC("tp_btf/netif_receive_skb")
int BPF_PROG(l24_netif_receive_skb, struct sk_buff *skb)
{
	struct l24_cpu *cpu = l24_this_cpu();

	if (cpu) {
		cpu->received_skb = (__u64)skb;
		cpu->received_ns = bpf_ktime_get_ns();
	}
	return 0;
}

/* From the link-layer header to the end, as the device counted the packet. */
static __always_inline __u32 wire_length(const struct sk_buff *skb)
{
	__u16 start = skb->mac_header != MAC_HEADER_UNSET ? skb->mac_header : skb->network_header;

	return skb->len + (__u32)(skb->data - skb->head) - start;
}

/* TCP payload bytes of a segment whose data starts at its TCP header. */
static __always_inline __u32 tcp_payload_length(const struct sk_buff *skb)
{
	__u8 offset_byte = 0;
	__u32 header_len;

	bpf_probe_read_kernel(&offset_byte, 1, skb->data + 12); /* doff: high nibble */
	header_len = (offset_byte >> 4) * 4;
	return skb->len > header_len ? skb->len - header_len : 0;
}

/* A received segment's netfilter hook windows (bpf/netfilter.bpf.c), every segment. */
static __always_inline void receive_account_hooks(struct kaccess_agg_value *row,
						  const struct nf_ingress *ingress)
{
	agg_add(row->read_l3_rcv_duration_ns_sum, ingress->rcv_ns);
	agg_add(row->read_l3_local_duration_ns_sum, ingress->local_ns);
	agg_add(row->read_netfilter_count, ingress->netfilter_count);
	agg_add(row->read_netfilter_duration_ns_sum, ingress->netfilter_ns);
}

/* TCP takes a segment of an established connection (ACK-only ones too). */
SEC("tp_btf/tcp_probe")
int BPF_PROG(l24_tcp_probe, struct sock *sk, struct sk_buff *skb)
{
	struct kaccess_conn *conn = conn_of_sock(sk);
	__u64 now_ns, key = (__u64)skb;
	struct kaccess_agg_value *row;
	struct rx_stamp stamp = {};
	struct l24_cpu *cpu;

	if (!conn)
		return 0;
	now_ns = bpf_ktime_get_ns();
	row = agg_row(&conn->agg, now_ns);
	cpu = l24_this_cpu();
	if (row) {
		agg_add(row->read_packets, 1);
		agg_add(row->read_packet_bytes, wire_length(skb));
		if (cpu && l24_netfilter && cpu->ingress.skb == key)
			receive_account_hooks(row, &cpu->ingress);
	}
	if (!cpu || !tcp_payload_length(skb))
		return 0; /* nothing a reader will copy */
	if (l24_netfilter && cpu->ingress.skb == key) {
		stamp.l3_start_ns = cpu->ingress.l3_start_ns;
		stamp.local_in_ns = cpu->ingress.local_in_ns;
	}
	/* Processed from the socket backlog (the owner held the lock): the
	 * receive time is another CPU's or gone, so L3 starts here. */
	stamp.received_ns = cpu->received_skb == key ? cpu->received_ns : now_ns;
	stamp.tcp_ns = now_ns;
	stamp.sk = (__u64)sk;
	stamp.agg = conn->agg;
	bpf_map_update_elem(&rx_stamps, &key, &stamp, BPF_ANY);
	cpu->probed_sk = (__u64)sk;
	cpu->probed_skb = key;
	return 0;
}

/* The segment TCP just took is in the receive queue (6.6+). */
SEC("tp_btf/sk_data_ready")
int BPF_PROG(l24_sk_data_ready, const struct sock *sk)
{
	struct l24_cpu *cpu = l24_this_cpu();
	struct rx_stamp *stamp;
	__u64 skb;

	if (!cpu || cpu->probed_sk != (__u64)sk)
		return 0;
	cpu->probed_sk = 0;
	skb = cpu->probed_skb;
	stamp = bpf_map_lookup_elem(&rx_stamps, &skb);
	if (stamp && !stamp->queued_ns)
		stamp->queued_ns = bpf_ktime_get_ns();
	return 0;
}

/* A reader copies the segment: its receive windows end. */
SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(l24_skb_copy_datagram_iovec, const struct sk_buff *skb, int len)
{
	__u64 key = (__u64)skb, now_ns, queued_ns;
	struct kaccess_agg_value *row;
	struct rx_stamp *stamp;

	stamp = bpf_map_lookup_elem(&rx_stamps, &key);
	if (!stamp)
		return 0;
	if (stamp->sk != (__u64)skb->sk) { /* a reused sk_buff address */
		bpf_map_delete_elem(&rx_stamps, &key);
		return 0;
	}
	now_ns = bpf_ktime_get_ns();
	queued_ns = stamp->queued_ns ?: stamp->tcp_ns; /* no sk_data_ready: TCP's start */
	row = agg_row(&stamp->agg, now_ns);
	if (row) {
		if (stamp->queued_ns)
			agg_add(row->read_l4_duration_ns_sum, stamp->queued_ns - stamp->tcp_ns);
		/* with netfilter links L3 starts at PRE_ROUTING and L2 ends at LOCAL_IN */
		agg_add(row->read_l3_duration_ns_sum,
			queued_ns - (stamp->l3_start_ns ?: stamp->received_ns));
		agg_add(row->read_l2_to_queue_duration_ns_sum,
			(stamp->local_in_ns ?: queued_ns) - stamp->received_ns);
		agg_add(row->read_l2_from_queue_duration_ns_sum, now_ns - queued_ns);
	}
	bpf_map_delete_elem(&rx_stamps, &key);
	return 0;
}
