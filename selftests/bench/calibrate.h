/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Shared by calibrate.bpf.c and its loader calibrate.c. */
#ifndef KACCESS_BENCH_CALIBRATE_H
#define KACCESS_BENCH_CALIBRATE_H

#ifndef __bpf__
#include <linux/types.h>
#endif

/*
 * bpftool reports the first as type "tracepoint", the others as "tracing";
 * bench.sh tells packet-path BTF tracepoints from the rest by their hook.
 */
enum calibrate_hook_kind {
	CALIBRATE_HOOK_SYSCALL_TRACEPOINT = 0, /* tracepoint/syscalls/sys_{enter,exit}_* */
	CALIBRATE_HOOK_TP_BTF = 1,             /* tp_btf/<socket event> */
	CALIBRATE_HOOK_PACKET_PATH = 2,        /* tp_btf/<per-packet event>, bpf/l24.bpf.c's hooks */
	CALIBRATE_HOOK_KIND_MAX,
};

struct calibrate_slot {
	__u64 runs;
	__u64 last_ns; /* the latest bpf_ktime_get_ns() of this CPU */
};
_Static_assert(sizeof(struct calibrate_slot) == 16, "calibrate_slot layout");

#endif /* KACCESS_BENCH_CALIBRATE_H */
