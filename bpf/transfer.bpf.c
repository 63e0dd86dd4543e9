// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Transfer syscalls: count, duration and bytes of every read- and
 * write-family syscall on a tracked TCP connection.
 *
 * Two ways to know that a syscall is on a tracked connection, chosen at
 * load by the shipper (config `hooks`):
 *
 * - "sock" (Linux 6.3+): the entry only timestamps the syscall; the
 *   sock:sock_send_length / sock_recv_length tracepoints fire when the
 *   socket layer returns, with the struct sock and the byte count: they look
 *   the socket up in conn_table and account the call right there, so plain
 *   reads and writes need no exit program and no descriptor walk at all.
 *   (sendmmsg/recvmmsg count once per syscall: they are only marked there
 *   and accounted at exit.)
 * - "fd": the entry resolves the descriptor to its socket and looks it up;
 *   files, pipes, UDP and unix sockets are never there, so they cost one
 *   descriptor walk and no clock read.
 *
 * - "fentry" (kernels that allow fentry; not the reference host): TCP I/O is
 *   seen where it happens, at the entry and exit of tcp_sendmsg() and
 *   tcp_recvmsg(), which only TCP reaches: file reads and writes cost
 *   nothing, and no syscall tracepoint is enabled at all. (Not sock_sendmsg:
 *   the compiler inlines it into its callers in net/socket.c, where fentry
 *   never sees it. tcp_*msg are reached from af_inet.c, another unit.)
 *
 * - "tcp" (a kernel with tcp:tcp_sendmsg_locked and the sock length
 *   tracepoints; no fentry needed): no syscall is traced at all. A write
 *   starts at its first tcp_sendmsg_locked, a read at its first copy to the
 *   reader (skb:skb_copy_datagram_iovec); both end at sock_send_length /
 *   sock_recv_length. Reads that wait for data are timed from the data's
 *   copy, and sendmmsg/recvmmsg/sendfile count once per socket-layer call.
 *
 * With the syscall hooks, sendfile always uses the descriptor walk: before 6.5 it reaches TCP
 * without sock_sendmsg, so without sock_send_length. The exit adds a marked
 * syscall to its connection's aggregate row; nothing travels to userspace.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "../maps/maps.bpf.h"
#include "agg.bpf.h"
#include "http2.bpf.h"
#include "sock.bpf.h"
#include "syscall_ctx.bpf.h"

#define KACCESS_MSG_PEEK 2
#define KACCESS_UIO_MAXIOV 1024 /* the kernel's own cap on sendmmsg/recvmmsg vlen */
#define NO_FLAGS_ARG -1

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * The connection of a socket if it is tracked. A connection adopted at
 * startup, or accepted by a call kaccess did not see, gets its owner from
 * the first process that uses it; when that is kaccess itself (a connect
 * begun before its hooks), the connection is forgotten.
 */
static __always_inline struct kaccess_conn *tracked_conn(__u64 sk)
{
	struct kaccess_conn *conn = bpf_map_lookup_elem(&conn_table, &sk);

	if (conn && !conn->pid) {
		conn->pid = bpf_get_current_pid_tgid() >> 32;
		if (agent_tgid && conn->pid == agent_tgid) {
			bpf_map_delete_elem(&conn_table, &sk);
			return NULL;
		}
		bpf_get_current_comm(conn->comm, sizeof(conn->comm));
		conn->flags &= ~KACCESS_CONN_ACCEPT_PENDING;
	}
	/* data flows: the handshake's end was missed (a program run the kernel skipped) */
	if (conn && conn->state == KACCESS_CONN_CONNECTING)
		conn->state = KACCESS_CONN_ESTABLISHED;
	return conn;
}

/*
 * A tracked socket's connection at the end of a call that took its row key
 * at the start (fentry and "fd" hooks), for HTTP parsing only: NULL with
 * HTTP analysis off. The lookup is a helper call, which the compiler cannot
 * drop when nothing reads its result.
 */
static __always_inline struct kaccess_conn *conn_for_payload(__u64 sk)
{
	if (!http_enabled)
		return NULL;
	return bpf_map_lookup_elem(&conn_table, &sk);
}

static __always_inline int transfer_begin(__u32 op, int fd, __u64 user_ptr, __u32 buf_kind,
					  __u32 buf_count)
{
	struct sock *sk = sock_of_fd(fd);
	struct kaccess_conn *conn;
	struct syscall_ctx *sc;
	__u64 key = (__u64)sk;

	if (!sk)
		return 0;
	conn = tracked_conn(key);
	if (!conn)
		return 0;
	sc = syscall_ctx_begin(op, fd);
	if (!sc)
		return 0;
	sc->sk = key;
	sc->user_ptr = user_ptr;
	sc->buf_kind = buf_kind;
	sc->buf_count = buf_count;
	__builtin_memcpy(&sc->conn.agg, &conn->agg, sizeof(conn->agg));
	sc->start_ns = bpf_ktime_get_ns();
	return 0;
}

/*
 * How a call's end may add to its row. Combined per CPU (bpf/agg.bpf.h)
 * only from the BTF tracepoints of the socket layer, which run with
 * preemption disabled: combining relies on a program that interrupts
 * another one ending first, true of a softirq, not of another task.
 * fentry/fexit programs run with only migration disabled, so a preemptible
 * kernel may switch tasks inside them; they, and the syscall exits, add to
 * the row itself with atomics.
 */
enum row_access {
	ROW_DIRECT,
	ROW_COMBINED,
};

/*
 * Add one read or write call to its connection's row: to this CPU's
 * combined sums of that row, or (ROW_DIRECT, or three programs deep) to
 * the row itself. A write's L4 time runs from TCP's first look at it
 * (tcp_sendmsg_locked, `l4_start_ns`) to its end; where that tracepoint is
 * missing, or with the fentry hooks (whose start is tcp_sendmsg() itself),
 * from the start of the call.
 */
#define transfer_add(sums, add, is_read, duration_ns, l4_duration_ns, bytes)       \
	do {                                                                           \
		if (is_read) {                                                         \
			add((sums)->read_count, 1);                                    \
			add((sums)->read_duration_ns_sum, duration_ns);                \
			add((sums)->read_bytes, bytes);                                \
		} else {                                                               \
			add((sums)->write_count, 1);                                   \
			add((sums)->write_duration_ns_sum, duration_ns);               \
			add((sums)->write_bytes, bytes);                               \
			if (l24_enabled)                                               \
				add((sums)->write_l4_duration_ns_sum, l4_duration_ns); \
		}                                                                      \
	} while (0)

static __always_inline void transfer_account(const struct kaccess_agg_key *key, bool is_read,
					     __u64 start_ns, __u64 l4_start_ns, __u64 bytes,
					     __u64 now_ns, enum row_access access)
{
	__u64 duration_ns = now_ns - start_ns, l4_duration_ns = now_ns - (l4_start_ns ?: start_ns);
	struct agg_cpu *cpu = access == ROW_COMBINED ? agg_this_cpu() : NULL;
	struct kaccess_agg_value *row;
	struct agg_sums *sums;
	bool nested;

	sums = cpu ? agg_sums_begin(cpu, key, now_ns, &nested) : NULL;
	if (sums) {
		transfer_add(sums, sum_add, is_read, duration_ns, l4_duration_ns, bytes);
		agg_sums_end(cpu, sums, nested, key, now_ns);
		return;
	}
	row = agg_row(key, now_ns);
	if (row)
		transfer_add(row, agg_add, is_read, duration_ns, l4_duration_ns, bytes);
}

/*
 * Where a call's payload is, read at each use: a copy kept in a register
 * across h2_claim() cost the "tcp" hooks' exits 15,000 more verified
 * instructions each.
 */
static __always_inline __u32 buf_kind_of(const struct syscall_ctx *sc, enum http_payload payload)
{
	return payload == HTTP_PAYLOAD_NONE ? HTTP_BUF_NONE : sc->buf_kind;
}

/*
 * A read or write that moved `bytes` on tracked socket `sk` ends: its row,
 * then its payload (described by the syscall context, unless the program
 * says its calls have none) to the HTTP/2 parser or, when it is not
 * HTTP/2, the HTTP/1.x parser (and after an upgrade's 101 in it, the rest
 * to the HTTP/2 parser).
 */
static __always_inline void transfer_done(__u64 sk, struct kaccess_conn *conn,
					  const struct kaccess_agg_key *key, bool is_read,
					  __u64 start_ns, __u64 bytes, const struct syscall_ctx *sc,
					  enum row_access access, enum http_payload payload)
{
	__u64 now_ns = bpf_ktime_get_ns();

	transfer_account(key, is_read, start_ns, sc->l4_start_ns, bytes, now_ns, access);
	if (!h2_claim(sk, conn, is_read, bytes, sc->user_ptr, buf_kind_of(sc, payload),
		      sc->buf_count, now_ns, now_ns - start_ns))
		http_transfer(sk, conn, is_read, bytes, sc->user_ptr, buf_kind_of(sc, payload),
			      sc->buf_count, now_ns, now_ns - start_ns, payload);
	/* HTTP/2's calls, and what follows a 101 in an HTTP/1.1 one */
	h2_transfer_rest(sk, conn, payload);
}

/* "sock" entry: every read/write-family syscall is timed until proven untracked. */
static __always_inline int transfer_begin_timed(__u32 op, long syscall_nr, int fd, __u64 user_ptr,
						__u32 buf_kind, __u32 buf_count)
{
	struct syscall_ctx *sc = syscall_ctx_begin(op, fd);

	if (!sc)
		return 0;
	sc->user_ptr = user_ptr;
	sc->buf_kind = buf_kind;
	sc->buf_count = buf_count;
	sc->syscall_nr = syscall_nr;
	sc->start_ns = bpf_ktime_get_ns();
	return 0;
}

/* The socket layer returns `ret` bytes on `sk`, inside a timed syscall. */
static __always_inline int transfer_on_socket(struct sock *sk, long ret, __u32 op, __u32 mmsg_op)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct kaccess_conn *conn;
	struct syscall_ctx *sc;
	__u64 key = (__u64)sk;

	sc = bpf_task_storage_get(&syscall_ctx_store, task, 0, 0);
	if (!sc || (sc->op != op && sc->op != mmsg_op) || sc->sk)
		return 0; /* not in a timed syscall, or one already matched (sendfile, sendmmsg) */
	if (sc->op == op) {
		if (sc->syscall_nr != current_syscall_nr(task))
			return 0;
		sc->op = SYSCALL_OP_NONE; /* accounted now or never */
		if (ret <= 0)
			return 0; /* errors, EAGAIN and EOF moved no data */
	}
	conn = tracked_conn(key);
	if (!conn)
		return 0;
	if (sc->op == mmsg_op) { /* one call for all its messages: at exit */
		sc->sk = key;
		__builtin_memcpy(&sc->conn.agg, &conn->agg, sizeof(conn->agg));
		return 0;
	}
	transfer_done(key, conn, &conn->agg, op == SYSCALL_OP_READ, sc->start_ns, ret, sc,
		      ROW_COMBINED, HTTP_PAYLOAD_READABLE);
	return 0;
}

/* x86_64 syscall numbers of the read and write family, as pt_regs->orig_ax holds them. */
#define NR_READ 0
#define NR_WRITE 1
#define NR_READV 19
#define NR_WRITEV 20
#define NR_SENDTO 44
#define NR_RECVFROM 45
#define NR_SENDMSG 46
#define NR_RECVMSG 47

/*
 * fentry hooks: where the syscall around tcp_*msg() keeps its payload, from
 * the task's syscall registers (rsi is the buffer, iovec or msghdr; rdx the
 * iovec count). Anything else (io_uring, splice) is counted, not parsed.
 */
static __always_inline void sock_io_payload(struct syscall_ctx *sc)
{
	struct pt_regs *regs = (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());

	sc->user_ptr = regs->si;
	sc->buf_count = regs->dx;
	switch (regs->orig_ax) {
	case NR_READ:
	case NR_WRITE:
	case NR_SENDTO:
	case NR_RECVFROM:
		sc->buf_kind = HTTP_BUF_PLAIN;
		break;
	case NR_READV:
	case NR_WRITEV:
		sc->buf_kind = HTTP_BUF_IOVEC;
		break;
	case NR_SENDMSG:
	case NR_RECVMSG:
		sc->buf_kind = HTTP_BUF_MSGHDR;
		break;
	default:
		sc->buf_kind = HTTP_BUF_NONE;
	}
}

/*
 * fentry hooks: a tcp_sendmsg()/tcp_recvmsg() call starts its own timing,
 * unless a syscall that accounts for itself is in flight around it:
 * sendmmsg/recvmmsg (marked here, counted once at their exit) or sendfile
 * (matched by its descriptor walk; on 6.5+ its splice reaches tcp_sendmsg).
 */
static __always_inline int sock_io_begin(struct sock *sk, __u32 sock_op, __u32 mmsg_op,
					 __u32 syscall_op)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct syscall_ctx *sc = bpf_task_storage_get(&syscall_ctx_store, task, 0, 0);
	__u64 key = (__u64)sk;
	struct kaccess_conn *conn;

	if (sc && (sc->op == syscall_op || (sc->op == mmsg_op && sc->sk)))
		return 0;
	conn = tracked_conn(key);
	if (!conn)
		return 0;
	if (sc && sc->op == mmsg_op) {
		sc->sk = key;
		__builtin_memcpy(&sc->conn.agg, &conn->agg, sizeof(conn->agg));
		return 0;
	}
	sc = syscall_ctx_begin(sock_op, -1);
	if (!sc)
		return 0;
	sc->sk = key;
	__builtin_memcpy(&sc->conn.agg, &conn->agg, sizeof(conn->agg));
	if (http_enabled)
		sock_io_payload(sc);
	sc->start_ns = bpf_ktime_get_ns();
	return 0;
}

/*
 * The context of the socket-layer call on `sk` that ends now (fentry and
 * "tcp" hooks), released for the next one; NULL when none was started.
 */
static __always_inline struct syscall_ctx *sock_io_finish(struct sock *sk, __u32 sock_op)
{
	struct syscall_ctx *sc = syscall_ctx_current(sock_op);

	if (!sc || sc->sk != (__u64)sk)
		return NULL;
	sc->op = SYSCALL_OP_NONE;
	return sc;
}

static __always_inline int sock_io_end(struct sock *sk, __u32 sock_op, long ret)
{
	struct syscall_ctx *sc = sock_io_finish(sk, sock_op);
	__u64 key = (__u64)sk;

	if (sc && ret > 0) /* errors, EAGAIN and EOF moved no data */
		transfer_done(key, conn_for_payload(key), &sc->conn.agg,
			      sock_op == SYSCALL_OP_SOCK_READ, sc->start_ns, ret, sc, ROW_DIRECT,
			      HTTP_PAYLOAD_READABLE);
	return 0;
}

/* The traced function's return value: tcp_recvmsg lost an argument in 6.10. */
static __always_inline long traced_return(void *ctx)
{
	__u64 ret = 0;

	bpf_get_func_ret(ctx, &ret);
	return (long)(int)ret;
}

SEC("fentry/tcp_sendmsg")
int BPF_PROG(tcp_sendmsg_fentry, struct sock *sk)
{
	return sock_io_begin(sk, SYSCALL_OP_SOCK_WRITE, SYSCALL_OP_WRITE_MMSG, SYSCALL_OP_WRITE);
}

SEC("fexit/tcp_sendmsg")
int BPF_PROG(tcp_sendmsg_fexit, struct sock *sk)
{
	return sock_io_end(sk, SYSCALL_OP_SOCK_WRITE, traced_return(ctx));
}

/* tcp_recvmsg(sk, msg, len, flags[, addr_len before 6.10]): flags is the fourth. */
SEC("fentry/tcp_recvmsg")
int BPF_PROG(tcp_recvmsg_fentry, struct sock *sk, struct msghdr *msg, size_t len, int flags)
{
	if (flags & KACCESS_MSG_PEEK)
		return 0;
	return sock_io_begin(sk, SYSCALL_OP_SOCK_READ, SYSCALL_OP_READ_MMSG, SYSCALL_OP_READ);
}

SEC("fexit/tcp_recvmsg")
int BPF_PROG(tcp_recvmsg_fexit, struct sock *sk)
{
	return sock_io_end(sk, SYSCALL_OP_SOCK_READ, traced_return(ctx));
}

/* "tcp" hooks: the call ends with `ret` bytes moved; it counts if its socket is tracked. */
static __always_inline int tcp_io_end(struct sock *sk, __u32 sock_op, long ret)
{
	struct syscall_ctx *sc = sock_io_finish(sk, sock_op);
	struct kaccess_conn *conn;
	__u64 key = (__u64)sk;

	if (!sc || ret <= 0) /* errors, EAGAIN and EOF moved no data */
		return 0;
	conn = tracked_conn(key);
	if (!conn)
		return 0;
	if (http_enabled)
		sock_io_payload(sc); /* still inside the syscall: its registers hold the buffer */
	transfer_done(key, conn, &conn->agg, sock_op == SYSCALL_OP_SOCK_READ, sc->start_ns, ret, sc,
		      ROW_COMBINED, HTTP_PAYLOAD_READABLE);
	return 0;
}

SEC("tp_btf/tcp_sendmsg_locked")
int BPF_PROG(tcpio_write_begin, struct sock *sk)
{
	return tcp_io_begin(sk, SYSCALL_OP_SOCK_WRITE, 0);
}

SEC("tp_btf/skb_copy_datagram_iovec")
int BPF_PROG(tcpio_read_begin, const struct sk_buff *skb)
{
	struct sock *sk = skb->sk;

	if (!sk || sk->sk_protocol != KACCESS_IPPROTO_TCP)
		return 0; /* UDP, unix and netlink copies too */
	return tcp_io_begin(sk, SYSCALL_OP_SOCK_READ, 0);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(tcpio_write_end, struct sock *sk, int ret)
{
	return tcp_io_end(sk, SYSCALL_OP_SOCK_WRITE, ret);
}

/* A MSG_PEEK copied, but left the data queued: not a read. */
SEC("tp_btf/sock_recv_length")
int BPF_PROG(tcpio_read_end, struct sock *sk, int ret, int flags)
{
	return tcp_io_end(sk, SYSCALL_OP_SOCK_READ, flags & KACCESS_MSG_PEEK ? 0 : ret);
}

SEC("tp_btf/sock_send_length")
int BPF_PROG(sock_send, struct sock *sk, int ret, int flags)
{
	return transfer_on_socket(sk, ret, SYSCALL_OP_WRITE, SYSCALL_OP_WRITE_MMSG);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(sock_recv, struct sock *sk, int ret, int flags)
{
	return transfer_on_socket(sk, ret, SYSCALL_OP_READ, SYSCALL_OP_READ_MMSG);
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
	__u64 bytes = 0;

	if (messages > KACCESS_UIO_MAXIOV)
		messages = KACCESS_UIO_MAXIOV;
	bpf_loop(messages, mmsg_add_one, &sum, 0);
	/*
	 * Through a helper, the total reaches the rest of the program as an
	 * unknown number: were its range followed, the verifier (6.8+ walks
	 * bpf_loop callbacks until their state repeats) would walk the HTTP
	 * parsers once per range the sum can take, past its 1M-step limit.
	 */
	bpf_probe_read_kernel(&bytes, sizeof(bytes), &sum.bytes);
	return bytes;
}

static __always_inline int transfer_end(__u32 op, long ret, enum http_payload payload)
{
	struct syscall_ctx *sc = syscall_ctx_end(op);
	__u64 bytes = ret, key;

	if (!sc || !sc->sk || ret <= 0)
		return 0; /* untracked socket or no socket; errors, EAGAIN and EOF moved no data */
	if (op == SYSCALL_OP_READ_MMSG || op == SYSCALL_OP_WRITE_MMSG)
		bytes = mmsg_bytes(sc->user_ptr, ret);
	key = sc->sk;
	transfer_done(key, conn_for_payload(key), &sc->conn.agg,
		      op == SYSCALL_OP_READ || op == SYSCALL_OP_READ_MMSG, sc->start_ns, bytes, sc,
		      ROW_DIRECT, payload);
	return 0;
}

#define PEEKING(flags_arg) (flags_arg != NO_FLAGS_ARG && (ctx->args[flags_arg] & KACCESS_MSG_PEEK))

/*
 * Per syscall: `name`_enter (descriptor walk) and `name`_ts (timestamp only,
 * for the "sock" hooks). `flags_arg` is the index of the recv family's
 * flags: MSG_PEEK leaves data queued and is not a read.
 */
#define TRANSFER_SYSCALL_ENTRY(name, op, ptr_arg, flags_arg, buf_kind)                \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                   \
	int name##_enter(struct trace_event_raw_sys_enter *ctx)                       \
	{                                                                             \
		if (PEEKING(flags_arg))                                               \
			return 0;                                                     \
		return transfer_begin(op, ctx->args[0], ctx->args[ptr_arg], buf_kind, \
				      ctx->args[2]);                                  \
	}                                                                             \
	SEC("tracepoint/syscalls/sys_enter_" #name)                                   \
	int name##_ts(struct trace_event_raw_sys_enter *ctx)                          \
	{                                                                             \
		if (PEEKING(flags_arg))                                               \
			return 0;                                                     \
		return transfer_begin_timed(op, ctx->id, ctx->args[0],                \
					    ctx->args[ptr_arg], buf_kind, ctx->args[2]); \
	}

/* x86_64 has no send/recv syscalls: libc implements them with sendto/recvfrom. */
TRANSFER_SYSCALL_ENTRY(read, SYSCALL_OP_READ, 1, NO_FLAGS_ARG, HTTP_BUF_PLAIN)
TRANSFER_SYSCALL_ENTRY(readv, SYSCALL_OP_READ, 1, NO_FLAGS_ARG, HTTP_BUF_IOVEC)
TRANSFER_SYSCALL_ENTRY(recvfrom, SYSCALL_OP_READ, 1, 3, HTTP_BUF_PLAIN)
TRANSFER_SYSCALL_ENTRY(recvmsg, SYSCALL_OP_READ, 1, 2, HTTP_BUF_MSGHDR)
TRANSFER_SYSCALL_ENTRY(recvmmsg, SYSCALL_OP_READ_MMSG, 1, 3, HTTP_BUF_NONE)
TRANSFER_SYSCALL_ENTRY(write, SYSCALL_OP_WRITE, 1, NO_FLAGS_ARG, HTTP_BUF_PLAIN)
TRANSFER_SYSCALL_ENTRY(writev, SYSCALL_OP_WRITE, 1, NO_FLAGS_ARG, HTTP_BUF_IOVEC)
TRANSFER_SYSCALL_ENTRY(sendto, SYSCALL_OP_WRITE, 1, NO_FLAGS_ARG, HTTP_BUF_PLAIN)
TRANSFER_SYSCALL_ENTRY(sendmsg, SYSCALL_OP_WRITE, 1, NO_FLAGS_ARG, HTTP_BUF_MSGHDR)
TRANSFER_SYSCALL_ENTRY(sendmmsg, SYSCALL_OP_WRITE_MMSG, 1, NO_FLAGS_ARG, HTTP_BUF_NONE)

/*
 * The exits of the descriptor walk ("fd" hooks): one program for the read
 * family and one for the write family, each attached by the shipper to
 * every exit tracepoint of its family (struct shared_exit in
 * shipper/agent.c), not one program per syscall: the exits are the same
 * code (every sys_exit tracepoint has the same record), and the verifier
 * walks the HTTP parsers once per program. With a program per syscall, the
 * "fd" hooks verified 1.63 million instructions in 2.9 s on 6.18; with the
 * two, 0.78 million in 1.2 s (kaccess --check --set hooks=fd).
 */
SEC("tracepoint/syscalls/sys_exit_read")
int read_exit(struct trace_event_raw_sys_exit *ctx)
{
	return transfer_end(SYSCALL_OP_READ, ctx->ret, HTTP_PAYLOAD_READABLE);
}

SEC("tracepoint/syscalls/sys_exit_write")
int write_exit(struct trace_event_raw_sys_exit *ctx)
{
	return transfer_end(SYSCALL_OP_WRITE, ctx->ret, HTTP_PAYLOAD_READABLE);
}

/* sendmmsg/recvmmsg return a message count: their own exits sum the lengths. */
SEC("tracepoint/syscalls/sys_exit_recvmmsg")
int recvmmsg_exit(struct trace_event_raw_sys_exit *ctx)
{
	return transfer_end(SYSCALL_OP_READ_MMSG, ctx->ret, HTTP_PAYLOAD_NONE);
}

SEC("tracepoint/syscalls/sys_exit_sendmmsg")
int sendmmsg_exit(struct trace_event_raw_sys_exit *ctx)
{
	return transfer_end(SYSCALL_OP_WRITE_MMSG, ctx->ret, HTTP_PAYLOAD_NONE);
}

/* sendfile: always the descriptor walk (see the top of this file). */
SEC("tracepoint/syscalls/sys_enter_sendfile64")
int sendfile64_enter(struct trace_event_raw_sys_enter *ctx)
{
	return transfer_begin(SYSCALL_OP_WRITE, ctx->args[0], 0, HTTP_BUF_NONE, 0);
}

SEC("tracepoint/syscalls/sys_exit_sendfile64")
int sendfile64_exit(struct trace_event_raw_sys_exit *ctx)
{
	return transfer_end(SYSCALL_OP_WRITE, ctx->ret, HTTP_PAYLOAD_NONE);
}

/* fentry hooks: the syscalls that count for themselves (see sock_io_begin). */
SEC("fentry/__x64_sys_sendfile64")
int BPF_PROG(sendfile64_fentry, const struct pt_regs *regs)
{
	return transfer_begin(SYSCALL_OP_WRITE, regs->di, 0, HTTP_BUF_NONE, 0);
}

SEC("fexit/__x64_sys_sendfile64")
int BPF_PROG(sendfile64_fexit, const struct pt_regs *regs, long ret)
{
	return transfer_end(SYSCALL_OP_WRITE, ret, HTTP_PAYLOAD_NONE);
}

SEC("fentry/__x64_sys_sendmmsg")
int BPF_PROG(sendmmsg_fentry, const struct pt_regs *regs)
{
	return transfer_begin_timed(SYSCALL_OP_WRITE_MMSG, -1, regs->di, regs->si, HTTP_BUF_NONE, 0);
}

SEC("fexit/__x64_sys_sendmmsg")
int BPF_PROG(sendmmsg_fexit, const struct pt_regs *regs, long ret)
{
	return transfer_end(SYSCALL_OP_WRITE_MMSG, ret, HTTP_PAYLOAD_NONE);
}

SEC("fentry/__x64_sys_recvmmsg")
int BPF_PROG(recvmmsg_fentry, const struct pt_regs *regs)
{
	if (regs->r10 & KACCESS_MSG_PEEK) /* the fourth argument: flags */
		return 0;
	return transfer_begin_timed(SYSCALL_OP_READ_MMSG, -1, regs->di, regs->si, HTTP_BUF_NONE, 0);
}

SEC("fexit/__x64_sys_recvmmsg")
int BPF_PROG(recvmmsg_fexit, const struct pt_regs *regs, long ret)
{
	return transfer_end(SYSCALL_OP_READ_MMSG, ret, HTTP_PAYLOAD_NONE);
}
