// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Connection tracking: which TCP sockets belong to watched processes, their
 * role, addresses and owner, and the connect/accept/close metrics.
 *
 * A connection is keyed by its struct sock and lives from connect()'s
 * SYN_SENT (client) or accept()'s return (server) until tcp_destroy_sock,
 * so a connection whose process never calls close() still ends.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>

#include "../maps/maps.bpf.h"
#include "agg.bpf.h"
#include "config.bpf.h"
#include "counters.bpf.h"
#include "ringbuf.bpf.h"
#include "http2.bpf.h"
#include "sock.bpf.h"
#include "syscall_ctx.bpf.h"
#include "xmit.bpf.h"

#define KACCESS_EINPROGRESS 115
#define KACCESS_EALREADY 114
#define KACCESS_EISCONN 106
#define KACCESS_TCP_ESTABLISHED 1
#define KACCESS_TCP_SYN_SENT 2
#define KACCESS_TCP_SYN_RECV 3

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * kaccess's own listener (/metrics): its local port and its network
 * namespace's inode, set by the shipper once it listens; 0: none. The
 * connections to it are made in softirq, where no task tells they are
 * kaccess's.
 */
volatile __u32 agent_listen_port __weak;
volatile __u32 agent_listen_netns __weak;

static __always_inline bool current_is_agent(void)
{
	return agent_tgid && bpf_get_current_pid_tgid() >> 32 == agent_tgid;
}

static __always_inline bool sock_is_agent_listeners(const struct sock *sk)
{
	return agent_listen_port && BPF_CORE_READ(sk, __sk_common.skc_num) == agent_listen_port &&
	       BPF_CORE_READ(sk, __sk_common.skc_net.net, ns.inum) == agent_listen_netns;
}

static __always_inline void mark_agent_sock(const struct sock *sk)
{
	bpf_sk_storage_get(&agent_socks, (struct sock *)sk, 0, BPF_SK_STORAGE_GET_F_CREATE);
}

static __always_inline bool sock_is_agents(const struct sock *sk)
{
	return agent_tgid && bpf_sk_storage_get(&agent_socks, (struct sock *)sk, 0, 0);
}

/* Whether the current task starts connections kaccess tracks (not kaccess's own). */
static __always_inline bool current_is_watched(void)
{
	if (current_is_agent())
		return false;
	if (!filter_cgroup)
		return true;
	return bpf_current_task_under_cgroup(&watched_cgroup, 0) == 1;
}

static __always_inline void conn_set_owner(struct kaccess_conn *conn, __u8 role)
{
	conn->agg.cgroup_id = bpf_get_current_cgroup_id();
	conn->agg.role = role;
	conn->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(conn->comm, sizeof(conn->comm));
}

static __always_inline void conn_table_insert(__u64 sk, const struct kaccess_conn *conn)
{
	int err = bpf_map_update_elem(&conn_table, &sk, conn, BPF_NOEXIST);

	if (err == -KACCESS_EEXIST) {
		/* The socket's address was freed and reused without a destroy
		 * we saw (agent started mid-way): the new connection wins. */
		count_loss(KACCESS_CTR_CONN_REPLACED);
		err = bpf_map_update_elem(&conn_table, &sk, conn, BPF_ANY);
	}
	if (err)
		count_loss(KACCESS_CTR_CONN_TABLE_FULL);
}

static __always_inline void emit_conn_event(__u32 type, __u64 sk,
					    const struct kaccess_conn *conn,
					    __u64 now_ns, __u64 duration_ns, __u32 traced)
{
	struct kaccess_conn_event *event;

	event = bpf_ringbuf_reserve(&events, sizeof(*event), 0);
	if (!event) {
		count_loss(KACCESS_CTR_RINGBUF_FULL);
		return;
	}
	event->type = type;
	event->traced = traced;
	event->sk = sk;
	event->ts_ns = now_ns;
	event->duration_ns = duration_ns;
	__builtin_memcpy(&event->conn, conn, sizeof(*conn));
	bpf_ringbuf_submit(event, ringbuf_submit_flags(sizeof(*event)));
}

static __always_inline void count_connect(const struct kaccess_agg_key *key, __u64 now_ns,
					  __u64 duration_ns, bool success)
{
	struct kaccess_agg_value *row = agg_row(key, now_ns);

	if (!row)
		return;
	agg_add(row->connect_count, 1);
	agg_add(row->connect_duration_ns_sum, duration_ns);
	if (success)
		agg_add(row->connect_success_count, 1);
}

/* ---- connect ------------------------------------------------------------ */

/*
 * Where the caller was connecting to, for a failure before SYN_SENT. Read at
 * exit from the caller's own (unchanged) sockaddr: only failures pay for it.
 */
static __always_inline void read_connect_sockaddr(struct syscall_ctx *sc)
{
	struct sockaddr_in6 sa = {};
	__u32 len = sc->addr_len < sizeof(sa) ? sc->addr_len : sizeof(sa);

	if (bpf_probe_read_user(&sa, len & 0x1f, (const void *)sc->user_ptr))
		return;
	sc->peer_family = sa.sin6_family;
	sc->peer_port = bpf_ntohs(sa.sin6_port); /* same offset as sin_port */
	if (sa.sin6_family == KACCESS_AF_INET)
		addr_v4_mapped(sc->peer_addr, ((struct sockaddr_in *)&sa)->sin_addr.s_addr);
	else
		__builtin_memcpy(sc->peer_addr, &sa.sin6_addr, KACCESS_ADDR_LEN);
}

static __always_inline int connect_begin(int fd, __u64 uaddr, __u64 addr_len)
{
	struct syscall_ctx *sc = syscall_ctx_begin(SYSCALL_OP_CONNECT, fd);

	if (!sc)
		return 0;
	sc->user_ptr = uaddr;
	sc->addr_len = addr_len;
	sc->start_ns = bpf_ktime_get_ns();
	return 0;
}

/*
 * When the connect that moves `sk` to SYN_SENT started, or 0 when it is no
 * process's. With syscall hooks, the connect() kaccess timed from its
 * entry; with the "tcp" hooks, now: the handshake's start (inside connect()
 * or a TCP Fast Open sendmsg(), in the caller's context; kernel-internal
 * sockets have no file).
 */
static __always_inline __u64 connect_start_ns(const struct sock *sk)
{
	struct syscall_ctx *sc;

	if (hooks_without_syscalls)
		return sock_has_file(sk) ? bpf_ktime_get_ns() : 0;
	sc = syscall_ctx_current(SYSCALL_OP_CONNECT);
	if (!sc)
		return 0; /* a kernel-internal connect, not a process's */
	sc->sk = (__u64)sk;
	return sc->start_ns;
}

/* CLOSE -> SYN_SENT runs inside connect(), in the caller's context. */
static __always_inline int conn_connect_started(const struct sock *sk)
{
	struct kaccess_conn conn = {};
	__u64 start_ns;

	if (current_is_agent()) {
		mark_agent_sock(sk);
		return 0;
	}
	start_ns = connect_start_ns(sk);
	if (!start_ns || !current_is_watched())
		return 0;
	conn_set_owner(&conn, KACCESS_ROLE_CLIENT);
	conn_read_addresses(&conn, sk); /* the local port is bound later */
	conn.agg.peer_port = conn.remote_port;
	conn.state = KACCESS_CONN_CONNECTING;
	conn.start_ns = start_ns;
	conn_table_insert((__u64)sk, &conn);
	return 0;
}

/*
 * A connect() whose SYN left before kaccess attached establishes now: track
 * it from here (its connect is not counted: its start was not seen). This
 * runs in softirq, so the socket's own cgroup decides, not the current task.
 */
static __always_inline void adopt_late_client(const struct sock *sk)
{
	struct kaccess_conn conn = {};

	if (!sock_has_file(sk) || !sock_is_watched(sk) || sock_is_agents(sk))
		return; /* kernel-internal, not ours to watch, or kaccess's own */
	conn.agg.cgroup_id = sock_cgroup_id(sk);
	conn.agg.role = KACCESS_ROLE_CLIENT;
	conn_read_addresses(&conn, sk);
	conn.agg.peer_port = conn.remote_port;
	conn.state = KACCESS_CONN_ESTABLISHED;
	conn.flags = KACCESS_CONN_ADOPTED;
	conn.start_ns = bpf_ktime_get_ns();
	conn_table_insert((__u64)sk, &conn);
}

/* SYN_SENT -> ESTABLISHED or CLOSE, often in softirq: use the stored owner. */
static __always_inline int conn_connect_finished(const struct sock *sk, bool established)
{
	__u64 key = (__u64)sk, now_ns, duration_ns;
	struct kaccess_conn *conn;

	conn = bpf_map_lookup_elem(&conn_table, &key);
	if (!conn) {
		if (established)
			adopt_late_client(sk);
		return 0;
	}
	if (conn->state != KACCESS_CONN_CONNECTING)
		return 0;
	now_ns = bpf_ktime_get_ns();
	duration_ns = now_ns - conn->start_ns;
	conn_read_addresses(conn, sk); /* the local one is bound now */
	/* what of the SYN still waits for a forwarded copy of it (bpf/l24.bpf.c) */
	forwarded_syn_connect_ends(conn, key);
	count_connect(&conn->agg, now_ns, duration_ns, established);
	if (established) {
		conn->state = KACCESS_CONN_ESTABLISHED;
		emit_conn_event(KACCESS_EVENT_CONN_OPEN, key, conn, now_ns, duration_ns, 1);
	} else {
		emit_conn_event(KACCESS_EVENT_CONNECT_FAILED, key, conn, now_ns, duration_ns, 1);
		bpf_map_delete_elem(&conn_table, &key);
	}
	return 0;
}

/*
 * "tcp" hooks: no accept() is seen, so the connection the kernel just
 * established for a watched listener is the accept, counted without a
 * duration (the accept queue's wait and the syscall are not measured). Its
 * owning process is learned from its first read or write.
 */
static __always_inline void count_untimed_accept(__u64 key, struct kaccess_conn *conn)
{
	struct kaccess_agg_value *row = agg_row(&conn->agg, conn->start_ns);

	conn_table_insert(key, conn);
	if (row)
		agg_add(row->accept_count, 1);
	emit_conn_event(KACCESS_EVENT_CONN_OPEN, key, conn, conn->start_ns, 0, 0);
}

/*
 * A server-side connection is established (in softirq): track it now, by
 * the socket's own cgroup, so that it is seen even when the accept() that
 * returns it began before kaccess attached (an fexit never fires for a call
 * already running). accept() takes the entry over with owner and timing.
 */
static __always_inline int conn_server_established(const struct sock *sk)
{
	struct kaccess_conn conn = {};
	__u64 key = (__u64)sk;

	if (!sock_is_watched(sk) || sock_is_agent_listeners(sk) || bpf_map_lookup_elem(&conn_table, &key))
		return 0;
	conn.agg.cgroup_id = sock_cgroup_id(sk);
	conn.agg.role = KACCESS_ROLE_SERVER;
	conn_read_addresses(&conn, sk);
	conn.state = KACCESS_CONN_ESTABLISHED;
	conn.start_ns = bpf_ktime_get_ns();
	if (hooks_without_syscalls) {
		count_untimed_accept(key, &conn);
		return 0;
	}
	conn.flags = KACCESS_CONN_ADOPTED | KACCESS_CONN_ACCEPT_PENDING;
	conn_table_insert(key, &conn);
	return 0;
}

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(tcp_state_change, const struct sock *sk, const int oldstate, const int newstate)
{
	if (sk->sk_protocol != KACCESS_IPPROTO_TCP)
		return 0;
	if (newstate == KACCESS_TCP_SYN_SENT)
		return conn_connect_started(sk);
	if (oldstate == KACCESS_TCP_SYN_SENT)
		return conn_connect_finished(sk, newstate == KACCESS_TCP_ESTABLISHED);
	if (oldstate == KACCESS_TCP_SYN_RECV && newstate == KACCESS_TCP_ESTABLISHED)
		return conn_server_established(sk);
	return 0;
}

/* A connect() that failed before the handshake began (no route, bad address). */
static __always_inline void count_early_connect_failure(struct syscall_ctx *sc)
{
	struct sock *sk = sock_of_fd(sc->fd);
	struct kaccess_conn conn = {};
	__u64 now_ns;

	if (!is_tcp_sock(sk) || !current_is_watched())
		return;
	sc->peer_family = 0;
	read_connect_sockaddr(sc);
	if (sc->peer_family != KACCESS_AF_INET && sc->peer_family != KACCESS_AF_INET6)
		return;
	now_ns = bpf_ktime_get_ns();
	conn_set_owner(&conn, KACCESS_ROLE_CLIENT);
	conn_read_addresses(&conn, sk);
	__builtin_memcpy(conn.remote_addr, sc->peer_addr, KACCESS_ADDR_LEN);
	__builtin_memcpy(conn.agg.peer_addr, sc->peer_addr, KACCESS_ADDR_LEN);
	conn.remote_port = sc->peer_port;
	conn.agg.peer_port = sc->peer_port;
	conn.start_ns = sc->start_ns;
	count_connect(&conn.agg, now_ns, now_ns - sc->start_ns, false);
	emit_conn_event(KACCESS_EVENT_CONNECT_FAILED, (__u64)sk, &conn, now_ns,
			now_ns - sc->start_ns, 1);
}

static __always_inline int connect_end(long ret)
{
	struct syscall_ctx *sc = syscall_ctx_end(SYSCALL_OP_CONNECT);

	if (!sc || sc->sk || ret >= 0)
		return 0; /* the state changes own every connect that reached SYN_SENT */
	if (ret == -KACCESS_EINPROGRESS || ret == -KACCESS_EALREADY || ret == -KACCESS_EISCONN)
		return 0; /* not a failed attempt: one is pending or already done */
	count_early_connect_failure(sc);
	return 0;
}

/* ---- accept ------------------------------------------------------------- */

static __always_inline int accept_begin(int fd)
{
	struct syscall_ctx *sc = syscall_ctx_begin(SYSCALL_OP_ACCEPT, fd);

	if (sc)
		sc->start_ns = bpf_ktime_get_ns();
	return 0;
}

/*
 * accept() returned a connection: it takes over the entry made when the
 * connection was established (or makes one). An accept whose entry kaccess
 * did not see (the server was already waiting when kaccess attached) leaves
 * that entry as it is: the untimed accept is not counted.
 */
static __always_inline int accept_end(long ret)
{
	struct syscall_ctx *sc = syscall_ctx_end(SYSCALL_OP_ACCEPT);
	struct kaccess_conn conn = {}, *pending;
	struct kaccess_agg_value *row;
	__u64 now_ns, duration_ns, key;
	struct sock *sk;

	if (ret < 0)
		return 0;
	sk = sock_of_fd(ret);
	if (!is_tcp_sock(sk) || !current_is_watched())
		return 0;
	key = (__u64)sk;
	pending = bpf_map_lookup_elem(&conn_table, &key);
	now_ns = bpf_ktime_get_ns();
	conn_set_owner(&conn, KACCESS_ROLE_SERVER);
	conn_read_addresses(&conn, sk);
	conn.state = KACCESS_CONN_ESTABLISHED;
	conn.start_ns = now_ns;
	if (!sc) {
		if (!pending) {
			conn.flags = KACCESS_CONN_ADOPTED;
			conn_table_insert(key, &conn);
		}
		return 0;
	}
	duration_ns = now_ns - sc->start_ns;
	if (pending && (pending->flags & KACCESS_CONN_ACCEPT_PENDING))
		bpf_map_update_elem(&conn_table, &key, &conn, BPF_EXIST);
	else
		conn_table_insert(key, &conn);
	row = agg_row(&conn.agg, now_ns);
	if (row) {
		agg_add(row->accept_count, 1);
		agg_add(row->accept_duration_ns_sum, duration_ns);
	}
	emit_conn_event(KACCESS_EVENT_CONN_OPEN, (__u64)sk, &conn, now_ns, duration_ns, 1);
	return 0;
}


/* ---- close -------------------------------------------------------------- */

static __always_inline int close_begin(int fd)
{
	struct file *file = file_of_fd(fd);
	struct sock *sk = sock_of_file(file);
	struct kaccess_conn *conn;
	struct syscall_ctx *sc;
	__u64 key = (__u64)sk;

	if (!sk)
		return 0;
	conn = bpf_map_lookup_elem(&conn_table, &key);
	if (!conn || conn->state != KACCESS_CONN_ESTABLISHED)
		return 0;
	if (!is_last_file_reference(file))
		return 0; /* another descriptor keeps the connection open */
	sc = syscall_ctx_begin(SYSCALL_OP_CLOSE, fd);
	if (!sc)
		return 0;
	conn->flags |= KACCESS_CONN_CLOSE_TRACED;
	sc->sk = key;
	__builtin_memcpy(&sc->conn, conn, sizeof(*conn));
	sc->start_ns = bpf_ktime_get_ns();
	return 0;
}

static __always_inline int close_end(void)
{
	struct syscall_ctx *sc = syscall_ctx_end(SYSCALL_OP_CLOSE);
	struct kaccess_agg_value *row;
	__u64 now_ns, duration_ns;

	if (!sc)
		return 0;
	now_ns = bpf_ktime_get_ns();
	duration_ns = now_ns - sc->start_ns;
	row = agg_row(&sc->conn.agg, now_ns);
	if (row) {
		agg_add(row->close_count, 1);
		agg_add(row->close_duration_ns_sum, duration_ns);
	}
	emit_conn_event(KACCESS_EVENT_CONN_CLOSE, sc->sk, &sc->conn, now_ns, duration_ns, 1);
	return 0;
}

/*
 * The syscall hooks, twice: syscall tracepoints (any kernel), or fentry/fexit
 * on the syscall functions where the kernel allows them. Tracepoints make
 * every syscall of every task take the kernel's syscall-tracing path; fentry
 * costs only the hooked functions. The shipper loads one set (`hooks`).
 */
SEC("tracepoint/syscalls/sys_enter_connect")
int connect_enter(struct trace_event_raw_sys_enter *ctx)
{
	return connect_begin(ctx->args[0], ctx->args[1], ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_connect")
int connect_exit(struct trace_event_raw_sys_exit *ctx)
{
	return connect_end(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_accept")
int accept_enter(struct trace_event_raw_sys_enter *ctx)
{
	return accept_begin(ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_exit_accept")
int accept_exit(struct trace_event_raw_sys_exit *ctx)
{
	return accept_end(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_accept4")
int accept4_enter(struct trace_event_raw_sys_enter *ctx)
{
	return accept_begin(ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_exit_accept4")
int accept4_exit(struct trace_event_raw_sys_exit *ctx)
{
	return accept_end(ctx->ret);
}

SEC("tracepoint/syscalls/sys_enter_close")
int close_enter(struct trace_event_raw_sys_enter *ctx)
{
	return close_begin(ctx->args[0]);
}

SEC("tracepoint/syscalls/sys_exit_close")
int close_exit(struct trace_event_raw_sys_exit *ctx)
{
	return close_end();
}

/* x86_64 syscall functions take the caller's registers: di, si, dx are the first arguments. */
SEC("fentry/__x64_sys_connect")
int BPF_PROG(connect_fentry, const struct pt_regs *regs)
{
	return connect_begin(regs->di, regs->si, regs->dx);
}

SEC("fexit/__x64_sys_connect")
int BPF_PROG(connect_fexit, const struct pt_regs *regs, long ret)
{
	return connect_end(ret);
}

SEC("fentry/__x64_sys_accept")
int BPF_PROG(accept_fentry, const struct pt_regs *regs)
{
	return accept_begin(regs->di);
}

SEC("fexit/__x64_sys_accept")
int BPF_PROG(accept_fexit, const struct pt_regs *regs, long ret)
{
	return accept_end(ret);
}

SEC("fentry/__x64_sys_accept4")
int BPF_PROG(accept4_fentry, const struct pt_regs *regs)
{
	return accept_begin(regs->di);
}

SEC("fexit/__x64_sys_accept4")
int BPF_PROG(accept4_fexit, const struct pt_regs *regs, long ret)
{
	return accept_end(ret);
}

SEC("fentry/__x64_sys_close")
int BPF_PROG(close_fentry, const struct pt_regs *regs)
{
	return close_begin(regs->di);
}

SEC("fexit/__x64_sys_close")
int BPF_PROG(close_fexit, const struct pt_regs *regs, long ret)
{
	return close_end();
}

/* The socket is freed: the connection ends whether or not close() was seen. */
SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(tcp_destroy, struct sock *sk)
{
	__u64 key = (__u64)sk, now_ns;
	struct kaccess_agg_value *row;
	struct kaccess_conn *conn;

	conn = bpf_map_lookup_elem(&conn_table, &key);
	if (!conn)
		return 0;
	/* never accepted nor used (e.g. the listener closed): not a connection of anyone's */
	if (conn->state == KACCESS_CONN_ESTABLISHED &&
	    !(conn->flags & (KACCESS_CONN_CLOSE_TRACED | KACCESS_CONN_ACCEPT_PENDING))) {
		now_ns = bpf_ktime_get_ns();
		row = agg_row(&conn->agg, now_ns);
		if (row) {
			agg_add(row->close_count, 1);
			agg_add(row->close_untraced_count, 1);
		}
		emit_conn_event(KACCESS_EVENT_CONN_CLOSE, key, conn, now_ns, 0, 0);
	}
	if (conn->http == KACCESS_HTTP_YES || conn->http == KACCESS_HTTP_SWITCHING)
		http_conn_end(key, bpf_ktime_get_ns());
	else if (conn->http == KACCESS_HTTP_H2)
		h2_conn_end(key);
	bpf_map_delete_elem(&conn_table, &key);
	return 0;
}
