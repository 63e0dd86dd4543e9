/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Load-time configuration. `const volatile` knobs live in .rodata: the
 * shipper sets them before load and the verifier prunes what they turn off.
 */
#ifndef KACCESS_BPF_CONFIG_BPF_H
#define KACCESS_BPF_CONFIG_BPF_H

/* Length of one aggregation bucket; 60 s matches OAP's minute buckets. */
const volatile __u64 bucket_ns __weak = 60ULL * 1000 * 1000 * 1000;

/* When set, only tasks under the cgroup in `watched_cgroup` start connections. */
const volatile bool filter_cgroup __weak = false;

/*
 * The same cgroup as an id and a depth below the root, for code that has no
 * meaningful current task (softirq, iterators) and must test a socket's own
 * cgroup instead: see sock_is_watched().
 */
const volatile __u64 watched_cgroup_id __weak;
const volatile __u32 watched_cgroup_level __weak;

/*
 * The "tcp" hooks (config `hooks`): no syscall is traced at all, so a
 * connect starts at SYN_SENT in the caller's context and an accept is
 * counted when the kernel establishes the connection for a watched
 * listener, untimed (see bpf/connections.bpf.c).
 */
const volatile bool hooks_without_syscalls __weak = false;

/*
 * kaccess's own process (its tgid), set by the shipper: the connections it
 * makes and accepts are not watched. Its shipping to OAP, its Kubernetes
 * API calls and its /metrics would otherwise count as the node's traffic,
 * and each access log it ships would be traffic that makes more.
 */
const volatile __u32 agent_tgid __weak;

/* HTTP/1.x parsing of tracked connections (config `http`). */
const volatile bool http_enabled __weak = true;

/* L2-L4 timing of tracked connections' packets (config `l24`). */
const volatile bool l24_enabled __weak = true;

/* Netfilter links are attached in the watched network namespaces (`l24_netfilter`). */
const volatile bool l24_netfilter __weak = false;

/* tcp:tcp_retransmit_skb reports every attempt with its error (Linux 6.14+,
 * found from BTF at start); before, only retransmits that went out. */
const volatile bool retransmit_reports_err __weak = false;

/* Keep the query string in endpoint paths (config `http_keep_query`). */
const volatile bool http_keep_query __weak = false;

/* HTTP/1.x access-log records to the ring buffer (config `http_log_policy` not `none`). */
const volatile bool http_records __weak = false;

/*
 * With `http_log_policy = sampled`, N (`http_log_sample_rate`): only the
 * requests numbered 0, N, 2N... of a connection send their records, the
 * rest are skipped here rather than filtered in the shipper. 0: all.
 */
const volatile __u32 http_records_one_in __weak = 0;

/*
 * A quarter of the events ring buffer in bytes, the wakeup step of
 * bpf/ringbuf.bpf.h: set by the shipper where it sizes the ring
 * (size_maps), so no record asks the ring its size.
 */
const volatile __u64 events_quarter_bytes __weak = 0;

/*
 * CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns. bpf_ktime_get_ns() is
 * monotonic; buckets follow the wall clock, so the shipper keeps this offset
 * current (it moves with NTP steps) through the mmap'ed .bss.
 */
volatile __u64 wall_offset_ns __weak;

#endif /* KACCESS_BPF_CONFIG_BPF_H */
