/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Kernel feature probes, all in one place. Each required feature missing is
 * reported once, by name, with what needs it.
 */
#ifndef KACCESS_PROBE_H
#define KACCESS_PROBE_H

#include <stdbool.h>

/* What the kernel offers beyond the required minimum. */
struct kernel_features {
	bool sock_length_tracepoints; /* sock:sock_{send,recv}_length, Linux 6.3 */
	bool fentry;                  /* fentry/fexit programs load and attach */
};

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
