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
#include "syscall_ctx.bpf.h"
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
#define TCP_FLAG_FIN 0x01
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

/*
 * A tracked socket's L2-L4 state, without a hash lookup: set once its
 * connection is final. NULL for every other socket (and for NULL).
 */
static __always_inline struct l24_sock *l24_sock_of(struct sock *sk)
{
	struct l24_sock *s = bpf_sk_storage_get(&l24_socks, sk, 0, 0);

	return s && s->agg_ready ? s : NULL;
}

/* The connection's rows will keep this key: accept() no longer takes it over. */
static __always_inline bool conn_is_final(const struct kaccess_conn *conn)
{
	return conn->state == KACCESS_CONN_ESTABLISHED &&
	       !(conn->flags & KACCESS_CONN_ACCEPT_PENDING);
}

/*
 * The socket's state for a tracked connection found in conn_table, created
 * the first time. Its key is copied only once final, so that it never
 * differs from the connection's; until then readers ask conn_table.
 */
static __always_inline struct l24_sock *l24_sock_attach(struct sock *sk,
							 const struct kaccess_conn *conn)
{
	struct l24_sock *s = bpf_sk_storage_get(&l24_socks, sk, 0, BPF_SK_STORAGE_GET_F_CREATE);

	if (!s || s->agg_ready || !conn_is_final(conn))
		return s;
	s->agg = conn->agg;
	asm volatile("" ::: "memory"); /* the key before the flag that publishes it */
	s->agg_ready = 1;
	return s;
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

/* The thread is in a write-family syscall (the "sock" and "fd" hooks' calls). */
static __always_inline bool in_write_syscall(const struct syscall_ctx *sc)
{
	return sc->op == SYSCALL_OP_WRITE || sc->op == SYSCALL_OP_WRITE_MMSG;
}

/*
 * Without netfilter links, "L3+L4 egress": a packet a write of its own
 * socket queues to a device, from where that write's L4 time starts (its
 * first tcp_sendmsg_locked, else the write's own start) to now. 0 for a
 * packet that leaves outside such a write (softirq, timers, a read's
 * ACK), and with the "sock" hooks on a kernel without tcp_sendmsg_locked,
 * which learn the write's socket only at its end.
 */
static __always_inline __u64 write_egress_ns(const struct sock *sk, __u64 queued_ns)
{
	struct syscall_ctx *sc = bpf_task_storage_get(&syscall_ctx_store, bpf_get_current_task_btf(), 0, 0);
	__u64 key = (__u64)sk, start_ns;

	if (!sc || !(in_write_syscall(sc) || sc->op == SYSCALL_OP_SOCK_WRITE))
		return 0;
	if (sc->l4_start_ns && sc->l4_sk == key)
		start_ns = sc->l4_start_ns;
	else if (sc->sk == key)
		start_ns = sc->start_ns;
	else
		return 0;
	return queued_ns > start_ns ? queued_ns - start_ns : 1;
}

SEC("tp_btf/net_dev_queue")
int BPF_PROG(l24_net_dev_queue, struct sk_buff *skb)
{
	struct sock *sk = skb->sk;
	const struct kaccess_agg_key *agg;
	struct kaccess_conn *conn;
	struct l24_cpu *cpu;
	struct xmit_window *window;
	struct l24_sock *s;
	__u64 syn_sk = 0;

	if (!sk) {
		if (forwarded_syns_count > 0)
			forwarded_syn_learn_peer(skb);
		return 0;
	}
	s = l24_sock_of(sk);
	if (s) { /* established and final: the common case, without a hash lookup */
		agg = &s->agg;
	} else {
		conn = conn_of_sock(sk);
		if (!conn)
			return 0;
		if (conn->state == KACCESS_CONN_CONNECTING) {
			client_syn_leaves(conn, sk, skb);
			syn_sk = (__u64)sk;
		}
		agg = &conn->agg;
	}
	cpu = l24_this_cpu();
	if (!cpu)
		return 0;
	if (cpu->updating_neigh && !cpu->resolved_conn) {
		/* a packet that waited for this neighbour leaves now */
		cpu->resolved_agg = *agg;
		cpu->resolved_conn = 1;
		cpu->resolved_syn_sk = syn_sk;
	}
	window = xmit_window_next(cpu);
	window->skb = (__u64)skb;
	window->queued_ns = bpf_ktime_get_ns();
	window->start_xmit_ns = 0;
	window->enqueued = 0;
	window->agg = *agg;
	window->syn_sk = syn_sk;
	xmit_window_take_l3(window, &cpu->egress);
	window->egress_ns = l24_netfilter ? 0 : write_egress_ns(sk, window->queued_ns);
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
	struct xmit_window *window;
	struct agg_cpu *sums_cpu;
	struct agg_sums *sums;
	bool nested;
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
	sums_cpu = agg_this_cpu();
	if (!sums_cpu)
		return 0;
	sums = agg_sums_begin(sums_cpu, &window->agg, now_ns, &nested);
	if (!sums) {
		count_loss(KACCESS_CTR_L24_WINDOW_LOST);
		return 0;
	}
	xmit_account_sums(sums, window, now_ns, skb_len);
	agg_sums_end(sums_cpu, sums, nested, &window->agg, now_ns);
	return 0;
}

/*
 * Whether a retransmit attempt's error (where the tracepoint reports it)
 * means TCP gave up before counting it in TcpRetransSegs: a clone still
 * queued (-EBUSY), no memory (-ENOMEM), no route (-EHOSTUNREACH), no
 * window (-EAGAIN). TCP counts before it hands the segment to IP, so a
 * segment the qdisc or device then refused (NET_XMIT_DROP, positive) or
 * that could not be cloned (-ENOBUFS) is in TcpRetransSegs, and counted.
 */
static __always_inline bool retransmit_failed_uncounted(int err)
{
	return err < 0 && err != -105; /* ENOBUFS */
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
	if (retransmit_reports_err && retransmit_failed_uncounted((int)ctx[2]))
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
	if (!in_write_syscall(sc))
		return 0;
	sc->l4_start_ns = bpf_ktime_get_ns();
	sc->l4_sk = (__u64)sk;
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

/*
 * TCP's control block of a received segment (filled before
 * tcp_rcv_established, backlog included, and kept while the segment waits
 * in the receive queue): plain loads from the sk_buff, no header read.
 */
static __always_inline const struct tcp_skb_cb *tcp_cb(const struct sk_buff *skb)
{
	return (const struct tcp_skb_cb *)skb->cb;
}

/* end_seq - seq counts the payload and a FIN. */
static __always_inline bool tcp_segment_has_payload(const struct tcp_skb_cb *cb)
{
	__u32 sequence_span = cb->end_seq - cb->seq;

	return sequence_span > (cb->tcp_flags & TCP_FLAG_FIN ? 1 : 0);
}

/* A received segment's netfilter hook windows (bpf/netfilter.bpf.c), every segment. */
static __always_inline void receive_account_hooks(struct agg_sums *sums,
						  const struct nf_ingress_hooks *hooks)
{
	sums->read_l3_rcv_duration_ns_sum += hooks->rcv_ns;
	sums->read_l3_local_duration_ns_sum += hooks->local_ns;
	sums->read_netfilter_count += hooks->netfilter_count;
	sums->read_netfilter_duration_ns_sum += hooks->netfilter_ns;
}

/* Whether hook functions (kaccess's or others) ran at LOCAL_IN for the segment's namespace. */
static __always_inline bool local_in_hooked(const struct sock *sk, const struct sk_buff *skb)
{
	struct net *net = sk->__sk_common.skc_net.net;
	struct nf_hook_entries *entries;

	if (!net)
		return false;
	if (skb->protocol == bpf_htons(ETH_P_IPV6))
		entries = net->nf.hooks_ipv6[NF_INET_LOCAL_IN];
	else
		entries = net->nf.hooks_ipv4[NF_INET_LOCAL_IN];
	return entries && entries->num_hook_entries;
}

/*
 * A segment TCP took from the socket's backlog: its windows from the slot
 * nf_last filed them in, if no other packet took it since; otherwise, when
 * hooks ran for it, counted as unseen. Not inlined: the common path never
 * comes here.
 */
static __noinline int receive_account_backlogged(struct agg_sums *sums, const struct sock *sk,
						 const struct sk_buff *skb)
{
	struct nf_ingress_hooks hooks;
	struct nf_ingress_done *done;
	__u64 key = (__u64)skb, address;
	__u32 slot;

	if (!sums || !sk || !skb)
		return 0;
	/* the verifier allows no shifts of a pointer: the address as a number */
	if (bpf_probe_read_kernel(&address, sizeof(address), &key))
		return 0;
	slot = nf_ingress_done_slot(address);
	done = bpf_map_lookup_elem(&nf_ingress_done, &slot);
	if (done && *(volatile __u64 *)&done->skb == key) {
		barrier();
		hooks = done->hooks;
		barrier();
		if (*(volatile __u64 *)&done->skb == key) { /* no other packet's meanwhile */
			done->skb = 0; /* taken: one tcp_probe per segment */
			receive_account_hooks(sums, &hooks);
			return 0;
		}
	}
	if (local_in_hooked(sk, skb))
		count_loss(KACCESS_CTR_L24_HOOKS_UNSEEN);
	return 0;
}

/* A time before or after TCP's, as a stamp keeps it: 0 when unknown or out of range. */
static __always_inline __u32 stamp_delta_ns(__u64 later_ns, __u64 earlier_ns)
{
	__u64 delta_ns = later_ns - earlier_ns;

	if (!earlier_ns || later_ns < earlier_ns || delta_ns > 0xffffffffULL)
		return 0;
	return delta_ns ?: 1;
}

/* The ring slot of the socket's next stamp; -1 without memory for its cursor. */
static __always_inline int rx_stamp_slot_next(struct sock *sk)
{
	struct l24_rx_cursor *cursor = bpf_sk_storage_get(&l24_rx_cursors, sk, 0,
							  BPF_SK_STORAGE_GET_F_CREATE);

	if (!cursor)
		return -1;
	return cursor->rx_next++ & (RX_STAMP_SLOTS - 1);
}

/* A data segment's stamp, in the socket's ring (the oldest unread one gives way). */
static __always_inline void rx_stamp_store(struct l24_sock *s, const struct l24_cpu *cpu, __u32 slot,
					   __u64 skb, __u32 seq, __u64 now_ns)
{
	struct rx_stamp *stamp = &s->rx[slot & (RX_STAMP_SLOTS - 1)];

	stamp->seq = seq;
	stamp->tcp_ns = now_ns;
	stamp->queued_after_ns = 0;
	/* Processed from the socket backlog (the owner held the lock): the
	 * receive time is another CPU's or gone, so L3 starts here (0). */
	stamp->received_before_ns = cpu->received_skb == skb ? stamp_delta_ns(now_ns, cpu->received_ns) : 0;
	stamp->l3_before_ns = 0;
	stamp->local_in_before_ns = 0;
	if (l24_netfilter && cpu->ingress.skb == skb) {
		stamp->l3_before_ns = stamp_delta_ns(now_ns, cpu->ingress.l3_start_ns);
		stamp->local_in_before_ns = stamp_delta_ns(now_ns, cpu->ingress.local_in_ns);
	}
}

/* The socket and row key of a received segment; NULL when not tracked. */
static __always_inline struct l24_sock *receive_conn(struct sock *sk,
						     const struct kaccess_agg_key **agg)
{
	struct l24_sock *s = l24_sock_of(sk);
	struct kaccess_conn *conn;

	if (s) {
		*agg = &s->agg;
		return s;
	}
	conn = conn_of_sock(sk);
	if (!conn)
		return NULL;
	*agg = &conn->agg;
	s = l24_sock_attach(sk, conn);
	if (!s) /* no memory for the storage: counted, not timed */
		count_loss(KACCESS_CTR_L24_WINDOW_LOST);
	return s;
}

/* TCP takes a segment of an established connection (ACK-only ones too). */
SEC("tp_btf/tcp_probe")
int BPF_PROG(l24_tcp_probe, struct sock *sk, struct sk_buff *skb)
{
	const struct kaccess_agg_key *agg = NULL;
	__u64 now_ns, key = (__u64)skb;
	const struct tcp_skb_cb *cb;
	struct agg_cpu *sums_cpu;
	struct agg_sums *sums;
	struct l24_cpu *cpu;
	struct l24_sock *s;
	bool nested;
	int slot;

	s = receive_conn(sk, &agg);
	if (!agg)
		return 0;
	cpu = l24_this_cpu();
	sums_cpu = agg_this_cpu();
	if (!cpu || !sums_cpu)
		return 0;
	now_ns = bpf_ktime_get_ns();
	sums = agg_sums_begin(sums_cpu, agg, now_ns, &nested);
	if (sums) {
		sums->read_packets++;
		sums->read_packet_bytes += wire_length(skb);
		if (l24_netfilter && cpu->ingress.skb == key)
			receive_account_hooks(sums, &cpu->ingress.hooks);
		else if (l24_netfilter) /* from the socket's backlog, after its softirq */
			receive_account_backlogged(sums, sk, skb);
		agg_sums_end(sums_cpu, sums, nested, agg, now_ns);
	} else {
		count_loss(KACCESS_CTR_L24_WINDOW_LOST);
	}
	cb = tcp_cb(skb);
	if (!s || !tcp_segment_has_payload(cb))
		return 0; /* nothing a reader will copy, or nowhere to time it */
	slot = rx_stamp_slot_next(sk);
	if (slot < 0) {
		count_loss(KACCESS_CTR_L24_WINDOW_LOST);
		return 0;
	}
	rx_stamp_store(s, cpu, slot, key, cb->seq, now_ns);
	cpu->probed_slot = slot;
	cpu->probed_sk = (__u64)sk;
	cpu->probed_seq = cb->seq;
	return 0;
}

/* The segment TCP just took is in the receive queue (6.6+). */
SEC("tp_btf/sk_data_ready")
int BPF_PROG(l24_sk_data_ready, const struct sock *sk)
{
	struct l24_cpu *cpu = l24_this_cpu();
	struct rx_stamp *stamp;
	struct l24_sock *s;

	if (!cpu || cpu->probed_sk != (__u64)sk)
		return 0;
	cpu->probed_sk = 0;
	s = bpf_sk_storage_get(&l24_socks, (struct sock *)sk, 0, 0);
	if (!s)
		return 0;
	stamp = &s->rx[cpu->probed_slot & (RX_STAMP_SLOTS - 1)];
	if (stamp->seq == cpu->probed_seq && !stamp->queued_after_ns)
		stamp->queued_after_ns = stamp_delta_ns(bpf_ktime_get_ns(), stamp->tcp_ns);
	return 0;
}

/*
 * The stamp of the segment starting at `seq`, looked for from the reader's
 * cursor: segments are mostly copied in the order TCP took them, so the
 * first slot looked at is usually the one. Only the reader writes the
 * cursor, and nothing here writes the ring.
 */
static __always_inline struct rx_stamp *rx_stamp_find(struct l24_sock *s,
						      struct l24_rx_reader *reader, __u32 seq)
{
	__u32 read = reader->rx_read;

	for (__u32 i = 0; i < RX_STAMP_SLOTS; i++) {
		struct rx_stamp *stamp = &s->rx[(read + i) & (RX_STAMP_SLOTS - 1)];

		if (stamp->seq == seq && stamp->tcp_ns) {
			reader->rx_read = read + i + 1;
			return stamp;
		}
	}
	return NULL;
}

/* The receive windows of a copied segment, from its stamp. */
static __always_inline void receive_account_windows(struct agg_sums *sums,
						    const struct rx_stamp *stamp, __u64 now_ns)
{
	__u64 queued_ns = stamp->tcp_ns + stamp->queued_after_ns; /* no sk_data_ready: TCP's start */
	__u64 received_ns = stamp->tcp_ns - stamp->received_before_ns;
	__u64 l3_start_ns = stamp->l3_before_ns ? stamp->tcp_ns - stamp->l3_before_ns : received_ns;
	__u64 local_in_ns = stamp->local_in_before_ns ? stamp->tcp_ns - stamp->local_in_before_ns
						      : queued_ns;

	sums->read_l4_duration_ns_sum += stamp->queued_after_ns;
	/* with netfilter links L3 starts at PRE_ROUTING and L2 ends at LOCAL_IN */
	sums->read_l3_duration_ns_sum += queued_ns - l3_start_ns;
	sums->read_l2_to_queue_duration_ns_sum += local_in_ns - received_ns;
	sums->read_l2_from_queue_duration_ns_sum += now_ns - queued_ns;
}

/*
 * The segment a copy reads from, the first time a reader copies from it
 * (a partial read's rest is not timed again); NULL when it has no stamp.
 * A first copy without one is counted: its stamp gave way to later
 * segments, or it came before kaccess watched the socket (and a later
 * one created the socket's storage, without which nothing here runs). A
 * segment TCP merged into the one before it is never copied from its own
 * start, so its stamp is never looked for and nothing is counted for it.
 */
static __always_inline struct rx_stamp *rx_stamp_first_copy(struct l24_sock *s, struct sock *sk,
							    const struct sk_buff *skb)
{
	struct l24_rx_reader *reader = bpf_sk_storage_get(&l24_rx_readers, sk, 0,
							  BPF_SK_STORAGE_GET_F_CREATE);
	__u32 seq = tcp_cb(skb)->seq;
	struct rx_stamp *stamp;

	if (!reader) { /* no memory for the reader's cursor: counted, not timed */
		count_loss(KACCESS_CTR_L24_WINDOW_LOST);
		return NULL;
	}
	if (reader->copied_any && reader->copied_seq == seq)
		return NULL;
	reader->copied_seq = seq;
	reader->copied_any = 1;
	stamp = rx_stamp_find(s, reader, seq);
	if (!stamp)
		count_loss(KACCESS_CTR_L24_RX_UNTIMED);
	return stamp;
}

/*
 * A reader copies the segment: its receive windows end, at `now_ns` when
 * the program has read the clock already (else 0: read here if needed).
 */
static __always_inline void reader_copy_ends_windows(const struct sk_buff *skb, __u64 now_ns)
{
	struct sock *sk = skb->sk;
	struct l24_sock *s = bpf_sk_storage_get(&l24_socks, sk, 0, 0);
	const struct kaccess_agg_key *agg;
	struct kaccess_conn *conn;
	struct rx_stamp *stamp;
	struct agg_cpu *sums_cpu;
	struct agg_sums *sums;
	bool nested;

	if (!s)
		return;
	stamp = rx_stamp_first_copy(s, sk, skb);
	if (!stamp)
		return;
	if (s->agg_ready) {
		agg = &s->agg;
	} else {
		conn = conn_of_sock(sk); /* received before accept() took the connection over */
		if (!conn)
			return;
		agg = &conn->agg;
	}
	sums_cpu = agg_this_cpu();
	if (!sums_cpu)
		return;
	now_ns = now_ns ?: bpf_ktime_get_ns();
	sums = agg_sums_begin(sums_cpu, agg, now_ns, &nested);
	if (!sums) {
		count_loss(KACCESS_CTR_L24_WINDOW_LOST);
		return;
	}
	receive_account_windows(sums, stamp, now_ns);
	agg_sums_end(sums_cpu, sums, nested, agg, now_ns);
}

SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(l24_skb_copy_datagram_iovec, const struct sk_buff *skb, int len)
{
	reader_copy_ends_windows(skb, 0);
	return 0;
}

/*
 * hooks = tcp with l24: one program on the reader's copy both starts the
 * read (tcpio_read_begin's work, bpf/syscall_ctx.bpf.h) and ends the
 * segment's receive windows, with one clock read, instead of two programs
 * per copied segment. The shipper loads it in their place.
 */
SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(tcpio_read_begin_l24, const struct sk_buff *skb, int len)
{
	struct sock *sk = skb->sk;
	__u64 now_ns;

	if (!sk || sk->sk_protocol != KACCESS_IPPROTO_TCP)
		return 0; /* UDP, unix and netlink copies too */
	now_ns = bpf_ktime_get_ns();
	tcp_io_begin(sk, SYSCALL_OP_SOCK_READ, now_ns);
	reader_copy_ends_windows(skb, now_ns);
	return 0;
}
