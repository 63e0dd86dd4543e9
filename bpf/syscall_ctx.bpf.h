/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Per-thread state of one in-flight syscall, kept in task storage between
 * the sys_enter and sys_exit tracepoints (or, with the "tcp" hooks, between
 * the first TCP event of a call and its socket-layer end).
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

/*
 * The number of the syscall the current task is in. Plain reads and writes
 * have no exit program to retire their entry: a socket call reached some
 * other way (io_uring executing a recv inline) must not match a stale one.
 */
static __always_inline long current_syscall_nr(struct task_struct *current_task)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(current_task);

	return regs->orig_ax; /* x86_64 */
}

/*
 * "tcp" hooks: the first buffer TCP fills for a write, or the first segment
 * copied to a reader, starts the call on any TCP socket: whether it is a
 * tracked one is asked once, at its end, so a call costs one conn_table
 * lookup. Later buffers of the same call find it started; the syscall
 * number tells a call whose end never came (a copy by
 * getsockopt(TCP_ZEROCOPY_RECEIVE)) from a new one. `now_ns`: the clock
 * when the program has read it for other work already, else 0 (read here,
 * only when a call starts).
 */
static __always_inline int tcp_io_begin(struct sock *sk, __u32 sock_op, __u64 now_ns)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct syscall_ctx *sc = bpf_task_storage_get(&syscall_ctx_store, task, 0, 0);
	long syscall_nr = current_syscall_nr(task);
	__u64 key = (__u64)sk;

	if (sc && sc->op == sock_op && sc->sk == key && sc->syscall_nr == syscall_nr)
		return 0;
	sc = sc ? syscall_ctx_claim(sc, sock_op, -1) : syscall_ctx_begin(sock_op, -1);
	if (!sc)
		return 0;
	sc->sk = key;
	sc->syscall_nr = syscall_nr;
	sc->start_ns = now_ns ?: bpf_ktime_get_ns();
	return 0;
}

#endif /* KACCESS_BPF_SYSCALL_CTX_BPF_H */
