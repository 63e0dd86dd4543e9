// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * L3 and netfilter windows from BPF netfilter programs (Linux 6.4+). The
 * shipper links `nf_first` at priority INT_MIN+1 and `nf_last` at INT_MAX-1
 * to PRE_ROUTING, LOCAL_IN, LOCAL_OUT and POST_ROUTING, for IPv4 and IPv6,
 * in every watched network namespace: the gap between them at a hook is the
 * time every other hook function there took (iptables, nftables, conntrack).
 *
 * A hook counts as netfilter work only when something besides these two
 * programs is registered there; without rules the count stays zero.
 *
 * Sent packets run from LOCAL_OUT to net_dev_queue in one call on one CPU,
 * received ones from PRE_ROUTING to tcp_probe in one softirq: a per-CPU slot
 * carries the windows to bpf/l24.bpf.c, which files them with the packet.
 * Both programs always accept the packet.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "../maps/maps.bpf.h"

#define NF_ACCEPT 1
#define KACCESS_NFPROTO_IPV6 10
#define OUR_HOOKS_PER_POINT 2 /* nf_first and nf_last */

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline struct l24_cpu *nf_this_cpu(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&l24_cpu, &zero);
}

/*
 * A hook point's entries. The context's pointers are the kernel's own
 * (BTF-typed), so these are direct loads, faulting safely: a probe-read
 * helper per pointer cost about a third of nf_last. Constant indices for
 * the verifier; the array is RCU-managed and nf_last runs inside the
 * hook's RCU read side.
 */
static __always_inline struct nf_hook_entries *hook_entries(const struct nf_hook_state *state)
{
	struct netns_nf *nf = &state->net->nf;
	bool v6 = state->pf == KACCESS_NFPROTO_IPV6;

	switch (state->hook) {
	case NF_INET_PRE_ROUTING:
		return v6 ? nf->hooks_ipv6[NF_INET_PRE_ROUTING] : nf->hooks_ipv4[NF_INET_PRE_ROUTING];
	case NF_INET_LOCAL_IN:
		return v6 ? nf->hooks_ipv6[NF_INET_LOCAL_IN] : nf->hooks_ipv4[NF_INET_LOCAL_IN];
	case NF_INET_LOCAL_OUT:
		return v6 ? nf->hooks_ipv6[NF_INET_LOCAL_OUT] : nf->hooks_ipv4[NF_INET_LOCAL_OUT];
	case NF_INET_POST_ROUTING:
		return v6 ? nf->hooks_ipv6[NF_INET_POST_ROUTING] : nf->hooks_ipv4[NF_INET_POST_ROUTING];
	}
	return NULL;
}

/* Rules (or any other hook function) at this point besides ours. */
static __always_inline bool hook_has_rules(const struct nf_hook_state *state)
{
	struct nf_hook_entries *entries = hook_entries(state);

	return entries && entries->num_hook_entries > OUR_HOOKS_PER_POINT;
}

static __always_inline bool tracked(const struct sock *sk)
{
	__u64 key = (__u64)sk;

	return key && bpf_map_lookup_elem(&conn_table, &key);
}

SEC("netfilter")
int nf_first(struct bpf_nf_ctx *ctx)
{
	struct sk_buff *skb = ctx->skb;
	struct l24_cpu *cpu = nf_this_cpu();
	__u64 now_ns, key = (__u64)skb;

	if (!cpu)
		return NF_ACCEPT;
	/* the clock only for packets that keep a window: it is most of the cost */
	switch (ctx->state->hook) {
	case NF_INET_LOCAL_OUT:
		if (!tracked(skb->sk))
			return NF_ACCEPT;
		now_ns = bpf_ktime_get_ns();
		cpu->egress = (struct nf_egress){ .skb = key, .l3_start_ns = now_ns, .hook_start_ns = now_ns };
		break;
	case NF_INET_POST_ROUTING:
		if (cpu->egress.skb == key)
			cpu->egress.hook_start_ns = bpf_ktime_get_ns();
		break;
	case NF_INET_PRE_ROUTING: /* no socket yet: every packet, as netif_receive_skb */
		now_ns = bpf_ktime_get_ns();
		cpu->ingress = (struct nf_ingress){ .skb = key, .l3_start_ns = now_ns, .hook_start_ns = now_ns };
		break;
	case NF_INET_LOCAL_IN:
		if (cpu->ingress.skb == key)
			cpu->ingress.hook_start_ns = cpu->ingress.local_in_ns = bpf_ktime_get_ns();
		break;
	}
	return NF_ACCEPT;
}

/* Add one hook's window to a packet's L3 and netfilter sums. */
static __always_inline void hook_window(const struct nf_hook_state *state, __u64 *layer_ns,
					__u64 *netfilter_ns, __u32 *netfilter_count, __u64 start_ns)
{
	__u64 window_ns = bpf_ktime_get_ns() - start_ns;

	*layer_ns += window_ns;
	if (hook_has_rules(state)) {
		*netfilter_ns += window_ns;
		*netfilter_count += 1;
	}
}

/*
 * A received packet's windows are complete at LOCAL_IN: kept by address
 * for a segment TCP will take from the socket's backlog, after this
 * softirq (struct nf_ingress_done).
 */
static __always_inline void ingress_file_done(const struct nf_ingress *in)
{
	__u32 slot = nf_ingress_done_slot(in->skb);
	struct nf_ingress_done *done = bpf_map_lookup_elem(&nf_ingress_done, &slot);

	if (!done)
		return;
	*(volatile __u64 *)&done->skb = 0;
	barrier();
	done->hooks = in->hooks;
	barrier();
	*(volatile __u64 *)&done->skb = in->skb;
}

SEC("netfilter")
int nf_last(struct bpf_nf_ctx *ctx)
{
	const struct nf_hook_state *state = ctx->state;
	struct l24_cpu *cpu = nf_this_cpu();
	__u64 key = (__u64)ctx->skb;
	struct nf_egress *out;
	struct nf_ingress *in;

	if (!cpu)
		return NF_ACCEPT;
	out = &cpu->egress;
	in = &cpu->ingress;
	switch (state->hook) {
	case NF_INET_LOCAL_OUT:
		if (out->skb == key)
			hook_window(state, &out->local_ns, &out->netfilter_ns, &out->netfilter_count,
				    out->hook_start_ns);
		break;
	case NF_INET_POST_ROUTING:
		if (out->skb == key)
			hook_window(state, &out->output_ns, &out->netfilter_ns, &out->netfilter_count,
				    out->hook_start_ns);
		break;
	case NF_INET_PRE_ROUTING:
		if (in->skb == key)
			hook_window(state, &in->hooks.rcv_ns, &in->hooks.netfilter_ns, &in->hooks.netfilter_count,
				    in->hook_start_ns);
		break;
	case NF_INET_LOCAL_IN:
		if (in->skb == key) {
			hook_window(state, &in->hooks.local_ns, &in->hooks.netfilter_ns,
				    &in->hooks.netfilter_count,
				    in->hook_start_ns);
			ingress_file_done(in);
		}
		break;
	}
	return NF_ACCEPT;
}
