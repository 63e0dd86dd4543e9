/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Kernel feature probes, all in one place. Each required feature missing is
 * reported once, by name, with what needs it.
 */
#ifndef KACCESS_PROBE_H
#define KACCESS_PROBE_H

#include <stdbool.h>

/* The BTF tracepoints of the L2-L4 programs (bpf/l24.bpf.c): program "l24_<name>". */
enum l24_tracepoint {
	L24_TP_NET_DEV_QUEUE,
	L24_TP_QDISC_ENQUEUE,
	L24_TP_NET_DEV_START_XMIT,
	L24_TP_NET_DEV_XMIT,
	L24_TP_TCP_RETRANSMIT_SKB,
	L24_TP_TCP_SENDMSG_LOCKED,
	L24_TP_NEIGH_CREATE,
	L24_TP_NEIGH_EVENT_SEND_DONE,
	L24_TP_NEIGH_UPDATE,
	L24_TP_NEIGH_UPDATE_DONE,
	L24_TP_NETIF_RECEIVE_SKB,
	L24_TP_TCP_PROBE,
	L24_TP_SK_DATA_READY,
	L24_TP_SKB_COPY_DATAGRAM_IOVEC,
	L24_TP_KFREE_SKB,
	L24_TP_MAX,
};

extern const char *const l24_tracepoint_names[L24_TP_MAX];

/* What the kernel offers beyond the required minimum. */
struct kernel_features {
	bool sock_length_tracepoints; /* sock:sock_{send,recv}_length, Linux 6.3 */
	bool fentry;                  /* fentry/fexit programs load and attach */
	unsigned int l24_tracepoints; /* bit (1 << enum l24_tracepoint): present */
	bool netfilter_links;         /* BPF netfilter programs and links, Linux 6.4 */
	bool retransmit_reports_err;  /* tcp_retransmit_skb has its err argument */
};

/* The tracepoint of an L2-L4 program's section ("tp_btf/<name>"), or -ENOENT. */
int l24_tracepoint_of_section(const char *section);

/*
 * Probe the running kernel. Returns 0 when everything kaccess needs is
 * there, or -EOPNOTSUPP after logging the first missing feature.
 * `btf_path` overrides /sys/kernel/btf/vmlinux ("" for the default).
 */
int features_probe(const char *btf_path, struct kernel_features *ret_optional);

/*
 * The capabilities loading needs (CAP_BPF, CAP_PERFMON, or CAP_SYS_ADMIN for
 * both, as the kernel checks them): 0, or -EPERM after naming the missing
 * one. Capabilities that only some features need are warned about.
 */
int features_check_capabilities(void);

/* For tests: names listed in KACCESS_FEATURE_DENY are reported as missing. */
#define FEATURE_DENY_ENV "KACCESS_FEATURE_DENY"

#endif
