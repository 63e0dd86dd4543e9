/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-thread state of one in-flight syscall, kept in task storage between
 * the sys_enter and sys_exit tracepoints.
 */
#ifndef KACCESS_BPF_SYSCALL_CTX_BPF_H
#define KACCESS_BPF_SYSCALL_CTX_BPF_H

#include "../maps/maps.bpf.h"
#include "counters.bpf.h"

/* Make the thread's context `sc` the one of a new timed call. */
static __always_inline struct syscall_ctx *syscall_ctx_claim(struct syscall_ctx *sc, __u32 op,
							     int fd)
{
	sc->op = op;
	sc->fd = fd;
	sc->sk = 0;
	sc->l4_start_ns = 0;
	return sc;
}

/* Claim the thread's context for a syscall that will be timed. */
static __always_inline struct syscall_ctx *syscall_ctx_begin(__u32 op, int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct syscall_ctx *sc;

	sc = bpf_task_storage_get(&syscall_ctx_store, task, 0,
				  BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!sc) {
		count_loss(KACCESS_CTR_SYSCALL_CTX_FAILED);
		return NULL;
	}
	return syscall_ctx_claim(sc, op, fd);
}

/* The thread's context if it is in syscall `op`, without creating one. */
static __always_inline struct syscall_ctx *syscall_ctx_current(__u32 op)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct syscall_ctx *sc;

	sc = bpf_task_storage_get(&syscall_ctx_store, task, 0, 0);
	if (!sc || sc->op != op)
		return NULL;
	return sc;
}

/* Take the context at sys_exit: it is released for the next syscall. */
static __always_inline struct syscall_ctx *syscall_ctx_end(__u32 op)
{
	struct syscall_ctx *sc = syscall_ctx_current(op);

	if (sc)
		sc->op = SYSCALL_OP_NONE;
	return sc;
}

#endif /* KACCESS_BPF_SYSCALL_CTX_BPF_H */
