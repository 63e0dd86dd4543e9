// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Adoption of connections that were established before kaccess started.
 *
 * The shipper runs this TCP iterator twice after attaching the hooks: the
 * first pass records every listening port per network namespace, the second
 * adds each established connection of a watched cgroup to conn_table, as a
 * server when its local port is a listening port of its namespace and as a
 * client otherwise. Connections the hooks already track are left alone.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>

#include "../maps/maps.bpf.h"
#include "config.bpf.h"
#include "counters.bpf.h"
#include "sock.bpf.h"

#define KACCESS_TCP_ESTABLISHED 1
#define KACCESS_TCP_CLOSE_WAIT 8
#define KACCESS_TCP_LISTEN 10

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * 0: record listening ports; 1: adopt connections; 2: list every live TCP
 * socket (its address, 8 bytes each, in the iterator's output) for the
 * shipper's sweep of entries whose destroy was never seen. Set by the shipper.
 */
volatile __u32 adopt_pass __weak;

/* list_socket_files: only this process's sockets (kaccess's own, to forget); 0: every process's. */
volatile __u32 list_files_tgid __weak;

static __always_inline struct listen_port_key listen_key_of(const struct sock *sk)
{
	struct listen_port_key key = {
		.netns = (__u64)BPF_CORE_READ(sk, __sk_common.skc_net.net),
		.port = BPF_CORE_READ(sk, __sk_common.skc_num),
	};

	return key;
}

static __always_inline void adopt(struct sock *sk)
{
	struct listen_port_key port_key = listen_key_of(sk);
	struct kaccess_conn conn = {};
	__u64 key = (__u64)sk;
	int err;

	if (!sock_is_watched(sk) || !sock_has_file(sk))
		return;
	conn.agg.cgroup_id = sock_cgroup_id(sk);
	conn.agg.role = bpf_map_lookup_elem(&listen_ports, &port_key) ? KACCESS_ROLE_SERVER
									: KACCESS_ROLE_CLIENT;
	conn_read_addresses(&conn, sk);
	if (conn.agg.role == KACCESS_ROLE_CLIENT)
		conn.agg.peer_port = conn.remote_port;
	conn.state = KACCESS_CONN_ESTABLISHED;
	conn.flags = KACCESS_CONN_ADOPTED;
	conn.start_ns = bpf_ktime_get_ns();
	err = bpf_map_update_elem(&conn_table, &key, &conn, BPF_NOEXIST);
	if (err && err != -17 /* EEXIST: the hooks got it first */)
		count_loss(KACCESS_CTR_CONN_TABLE_FULL);
}

SEC("iter/tcp")
int adopt_connections(struct bpf_iter__tcp *ctx)
{
	struct sock_common *skc = ctx->sk_common;
	struct tcp_sock *tp;
	struct sock *sk;
	__u8 state, one = 1;

	if (!skc)
		return 0;
	tp = bpf_skc_to_tcp_sock(skc);
	if (!tp)
		return 0; /* request and time-wait sockets carry no data */
	sk = (struct sock *)tp;
	if (adopt_pass == 2) {
		__u64 key = (__u64)sk;

		bpf_seq_write(ctx->meta->seq, &key, sizeof(key));
		return 0;
	}
	state = BPF_CORE_READ(sk, __sk_common.skc_state);
	if (adopt_pass == 0) {
		struct listen_port_key port_key = listen_key_of(sk);

		if (state == KACCESS_TCP_LISTEN)
			bpf_map_update_elem(&listen_ports, &port_key, &one, BPF_ANY);
		return 0;
	}
	if (state == KACCESS_TCP_ESTABLISHED || state == KACCESS_TCP_CLOSE_WAIT)
		adopt(sk);
	return 0;
}

/*
 * For the sweep too: every socket a process holds open, in any state. A
 * socket reset by its peer leaves the TCP hash tables (so the TCP iterator
 * misses it) but lives until its owner closes it.
 */
SEC("iter/task_file")
int list_socket_files(struct bpf_iter__task_file *ctx)
{
	struct task_struct *task = ctx->task;
	struct file *file = ctx->file;
	struct socket *socket;
	__u64 key = 0;

	if (!file || (file->f_inode->i_mode & KACCESS_S_IFMT) != KACCESS_S_IFSOCK)
		return 0;
	if (list_files_tgid && (!task || task->tgid != list_files_tgid))
		return 0;
	socket = file->private_data;
	bpf_probe_read_kernel(&key, sizeof(key), &socket->sk);
	if (key)
		bpf_seq_write(ctx->meta->seq, &key, sizeof(key));
	return 0;
}
