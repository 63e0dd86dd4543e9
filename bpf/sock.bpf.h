/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * From a file descriptor of the current task to its TCP socket, and from a
 * socket to its addresses. CO-RE reads only, so one object runs on every
 * supported kernel.
 */
#ifndef KACCESS_BPF_SOCK_BPF_H
#define KACCESS_BPF_SOCK_BPF_H

#include <bpf/bpf_endian.h>

#include "../maps/kaccess.h"

#define KACCESS_AF_INET 2
#define KACCESS_AF_INET6 10
#define KACCESS_IPPROTO_TCP 6
#define KACCESS_SOCK_STREAM 1
#define KACCESS_S_IFMT 00170000
#define KACCESS_S_IFSOCK 0140000

/* Before 6.13 a file's reference count was `f_count`, one reference = 1. */
struct file___f_count {
	atomic_long_t f_count;
} __attribute__((preserve_access_index));

/* The current task's open file at `fd`, or NULL. */
static __always_inline struct file *file_of_fd(int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	/* BTF pointer walks: inlined loads, no helper calls */
	struct fdtable *fdt = task->files->fdt;
	struct file **fds;
	struct file *file = NULL;

	if (fd < 0 || (unsigned int)fd >= fdt->max_fds)
		return NULL;
	fds = fdt->fd;
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	return file;
}

/* The struct sock behind a socket file, or NULL when `file` is no socket. */
static __always_inline struct sock *sock_of_file(struct file *file)
{
	struct socket *socket;

	if (!file)
		return NULL;
	if ((BPF_CORE_READ(file, f_inode, i_mode) & KACCESS_S_IFMT) != KACCESS_S_IFSOCK)
		return NULL;
	socket = BPF_CORE_READ(file, private_data);
	return BPF_CORE_READ(socket, sk);
}

static __always_inline struct sock *sock_of_fd(int fd)
{
	return sock_of_file(file_of_fd(fd));
}

static __always_inline bool is_tcp_sock(const struct sock *sk)
{
	__u16 family;

	if (!sk)
		return false;
	family = BPF_CORE_READ(sk, __sk_common.skc_family);
	return (family == KACCESS_AF_INET || family == KACCESS_AF_INET6) &&
	       BPF_CORE_READ(sk, sk_protocol) == KACCESS_IPPROTO_TCP &&
	       BPF_CORE_READ(sk, sk_type) == KACCESS_SOCK_STREAM;
}

/*
 * True when the descriptor table holds the only reference to `file`, so
 * that closing it releases the socket (a dup()ed or inherited descriptor
 * does not end the connection).
 */
static __always_inline bool is_last_file_reference(struct file *file)
{
	if (bpf_core_field_exists(file->f_ref))
		return BPF_CORE_READ(file, f_ref.refcnt.counter) == 0; /* FILE_REF_ONEREF */
	return BPF_CORE_READ((struct file___f_count *)file, f_count.counter) == 1;
}

/* The cgroup v2 a socket was created in (its creator's; accepted: the listener's). */
static __always_inline struct cgroup *sock_cgroup(const struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_cgrp_data.cgroup);
}

static __always_inline __u64 sock_cgroup_id(const struct sock *sk)
{
	return BPF_CORE_READ(sock_cgroup(sk), kn, id);
}

/*
 * Whether the socket's cgroup is the watched one or below it: its ancestor
 * at the watched level must be the watched cgroup.
 */
static __always_inline bool sock_is_watched(const struct sock *sk)
{
	struct cgroup *cgroup = sock_cgroup(sk), *ancestor = NULL;
	__u32 offset = bpf_core_field_offset(struct cgroup, ancestors);

	if (!filter_cgroup)
		return true;
	if (!cgroup || BPF_CORE_READ(cgroup, level) < (int)watched_cgroup_level)
		return false;
	bpf_probe_read_kernel(&ancestor, sizeof(ancestor),
			      (void *)cgroup + offset + watched_cgroup_level * sizeof(ancestor));
	return ancestor && BPF_CORE_READ(ancestor, kn, id) == watched_cgroup_id;
}

/* A socket a process can read and write (kernel-internal sockets have no file). */
static __always_inline bool sock_has_file(const struct sock *sk)
{
	return BPF_CORE_READ(sk, sk_socket, file) != NULL;
}

static __always_inline void addr_v4_mapped(__u8 out[KACCESS_ADDR_LEN], __u32 v4_be)
{
	__builtin_memset(out, 0, 10);
	out[10] = 0xff;
	out[11] = 0xff;
	__builtin_memcpy(out + 12, &v4_be, 4);
}

/* Fill local/remote addresses and ports of `conn` from the socket. */
static __always_inline void conn_read_addresses(struct kaccess_conn *conn,
						const struct sock *sk)
{
	__u16 family = BPF_CORE_READ(sk, __sk_common.skc_family);

	conn->family = family;
	if (family == KACCESS_AF_INET) {
		addr_v4_mapped(conn->local_addr, BPF_CORE_READ(sk, __sk_common.skc_rcv_saddr));
		addr_v4_mapped(conn->remote_addr, BPF_CORE_READ(sk, __sk_common.skc_daddr));
	} else {
		BPF_CORE_READ_INTO(&conn->local_addr, sk, __sk_common.skc_v6_rcv_saddr);
		BPF_CORE_READ_INTO(&conn->remote_addr, sk, __sk_common.skc_v6_daddr);
	}
	conn->local_port = BPF_CORE_READ(sk, __sk_common.skc_num);
	conn->remote_port = bpf_ntohs(BPF_CORE_READ(sk, __sk_common.skc_dport));
	/* a peer learned from the first packet (a DNAT's backend) stays the row's */
	if (!(conn->flags & KACCESS_CONN_PEER_TRANSLATED))
		__builtin_memcpy(conn->agg.peer_addr, conn->remote_addr, KACCESS_ADDR_LEN);
}

#endif /* KACCESS_BPF_SOCK_BPF_H */
