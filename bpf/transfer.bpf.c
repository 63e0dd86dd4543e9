// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Transfer syscalls: count, duration and bytes of every read- and
 * write-family syscall on a tracked TCP connection.
 *
 * The entry resolves the descriptor to its socket and looks it up in
 * conn_table; files, pipes, UDP and unix sockets are never there, so they
 * cost one descriptor walk and no clock read. The exit adds to the
 * connection's aggregate row; nothing travels to userspace.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "../maps/maps.bpf.h"
#include "agg.bpf.h"
#include "sock.bpf.h"
#include "syscall_ctx.bpf.h"

#define KACCESS_MSG_PEEK 2
#define KACCESS_UIO_MAXIOV 1024 /* the kernel's own cap on sendmmsg/recvmmsg vlen */
#define NO_FLAGS_ARG -1

char LICENSE[] SEC("license") = "Dual BSD/GPL";

static __always_inline int transfer_begin(__u32 op, int fd, __u64 user_ptr)
{
	struct sock *sk = sock_of_fd(fd);
	struct kaccess_conn *conn;
	struct syscall_ctx *sc;
	__u64 key = (__u64)sk;

	if (!sk)
		return 0;
	conn = bpf_map_lookup_elem(&conn_table, &key);
	if (!conn)
		return 0;
	if (!conn->pid) { /* adopted at startup: the first user names the owner */
		conn->pid = bpf_get_current_pid_tgid() >> 32;
		bpf_get_current_comm(conn->comm, sizeof(conn->comm));
	}
	sc = syscall_ctx_begin(op, fd);
	if (!sc)
		return 0;
	sc->sk = key;
	sc->user_ptr = user_ptr;
	__builtin_memcpy(&sc->conn.agg, &conn->agg, sizeof(conn->agg));
	sc->start_ns = bpf_ktime_get_ns();
	return 0;
}

struct mmsg_sum {
	const struct mmsghdr *vec;
	__u64 bytes;
};

static long mmsg_add_one(__u32 index, void *data)
{
	struct mmsg_sum *sum = data;
	unsigned int len = 0;

	bpf_probe_read_user(&len, sizeof(len), &sum->vec[index].msg_len);
	sum->bytes += len;
	return 0;
}

/* sendmmsg/recvmmsg return a message count; the kernel wrote each length. */
static __always_inline __u64 mmsg_bytes(__u64 vec, long messages)
{
	struct mmsg_sum sum = { .vec = (const struct mmsghdr *)vec };

	if (messages > KACCESS_UIO_MAXIOV)
		messages = KACCESS_UIO_MAXIOV;
	bpf_loop(messages, mmsg_add_one, &sum, 0);
	return sum.bytes;
}

static __always_inline int transfer_end(__u32 op, long ret)
{
	struct syscall_ctx *sc = syscall_ctx_end(op);
	struct kaccess_agg_value *row;
	__u64 now_ns, duration_ns, bytes = ret;

	if (!sc || ret <= 0)
		return 0; /* errors, EAGAIN and EOF moved no data */
	now_ns = bpf_ktime_get_ns();
	duration_ns = now_ns - sc->start_ns;
	if (op == SYSCALL_OP_READ_MMSG || op == SYSCALL_OP_WRITE_MMSG)
		bytes = mmsg_bytes(sc->user_ptr, ret);
	row = agg_row(&sc->conn.agg, now_ns);
	if (!row)
		return 0;
	if (op == SYSCALL_OP_READ || op == SYSCALL_OP_READ_MMSG) {
		agg_add(row->read_count, 1);
		agg_add(row->read_duration_ns_sum, duration_ns);
		agg_add(row->read_bytes, bytes);
	} else {
		agg_add(row->write_count, 1);
		agg_add(row->write_duration_ns_sum, duration_ns);
		agg_add(row->write_bytes, bytes);
	}
	return 0;
}

/*
 * One enter/exit pair per syscall. `flags_arg` is the index of the flags
 * argument of the recv family: MSG_PEEK leaves data queued and is not a read.
 */
#define TRANSFER_SYSCALL(name, op, ptr_arg, flags_arg)                                \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                   \
	int name##_enter(struct trace_event_raw_sys_enter *ctx)                       \
	{                                                                             \
		if (flags_arg != NO_FLAGS_ARG && (ctx->args[flags_arg] & KACCESS_MSG_PEEK)) \
			return 0;                                                     \
		return transfer_begin(op, ctx->args[0], ctx->args[ptr_arg]);          \
	}                                                                             \
	SEC("tracepoint/syscalls/sys_exit_" #name)                                    \
	int name##_exit(struct trace_event_raw_sys_exit *ctx)                         \
	{                                                                             \
		return transfer_end(op, ctx->ret);                                    \
	}

/* x86_64 has no send/recv syscalls: libc implements them with sendto/recvfrom. */
TRANSFER_SYSCALL(read, SYSCALL_OP_READ, 1, NO_FLAGS_ARG)
TRANSFER_SYSCALL(readv, SYSCALL_OP_READ, 1, NO_FLAGS_ARG)
TRANSFER_SYSCALL(recvfrom, SYSCALL_OP_READ, 1, 3)
TRANSFER_SYSCALL(recvmsg, SYSCALL_OP_READ, 1, 2)
TRANSFER_SYSCALL(recvmmsg, SYSCALL_OP_READ_MMSG, 1, 3)
TRANSFER_SYSCALL(write, SYSCALL_OP_WRITE, 1, NO_FLAGS_ARG)
TRANSFER_SYSCALL(writev, SYSCALL_OP_WRITE, 1, NO_FLAGS_ARG)
TRANSFER_SYSCALL(sendto, SYSCALL_OP_WRITE, 1, NO_FLAGS_ARG)
TRANSFER_SYSCALL(sendmsg, SYSCALL_OP_WRITE, 1, NO_FLAGS_ARG)
TRANSFER_SYSCALL(sendmmsg, SYSCALL_OP_WRITE_MMSG, 1, NO_FLAGS_ARG)
TRANSFER_SYSCALL(sendfile64, SYSCALL_OP_WRITE, 1, NO_FLAGS_ARG)
