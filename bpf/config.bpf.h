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
 * CLOCK_REALTIME minus CLOCK_MONOTONIC, in ns. bpf_ktime_get_ns() is
 * monotonic; buckets follow the wall clock, so the shipper keeps this offset
 * current (it moves with NTP steps) through the mmap'ed .bss.
 */
volatile __u64 wall_offset_ns __weak;

#endif /* KACCESS_BPF_CONFIG_BPF_H */
