/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Every BPF map of kaccess, declared once. Each program family includes this
 * header; the definitions are __weak so the static linker (bpftool gen
 * object) merges them into one map per name.
 *
 * Memory figures are the kernel's own accounting (memlock in `bpftool map
 * show`) at the defaults on x86_64. Sizes are set by the shipper before load
 * from the config file.
 */
#ifndef KACCESS_MAPS_MAPS_BPF_H
#define KACCESS_MAPS_MAPS_BPF_H

#include "kaccess.h"

/*
 * conn_table: key = kernel address of the struct sock (the connection's
 * identity while it lives), value = struct kaccess_conn.
 * Written by: connect state changes, accept exit, close, tcp_destroy_sock.
 * Read by: every read/write-family syscall entry; the shipper's live table.
 * Size: 131072 entries (`conn_table_max_entries`), 176 B each: 22.0 MiB. Pinned.
 * Entries are deleted when the socket is destroyed, so a reused socket
 * address can never inherit a dead connection's identity.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 131072);
	__type(key, __u64);
	__type(value, struct kaccess_conn);
} conn_table SEC(".maps") __weak;

/*
 * agg_gen0 / agg_gen1: the two generations of per-bucket aggregates.
 * key = struct kaccess_agg_key, value = struct kaccess_agg_value.
 * Writers pick generation (bucket & 1); the shipper drains the idle one with
 * BPF_MAP_LOOKUP_AND_DELETE_BATCH after a grace period.
 * Size: 16384 rows each (`agg_rows_max_entries`), 216 B each: 3.4 MiB each. Pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct kaccess_agg_key);
	__type(value, struct kaccess_agg_value);
} agg_gen0 SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, struct kaccess_agg_key);
	__type(value, struct kaccess_agg_value);
} agg_gen1 SEC(".maps") __weak;

/*
 * counters: key = enum kaccess_counter, value = per-CPU event count.
 * Written by every program that drops or mis-files something; summed and
 * exported by the shipper with every bucket. Size: 6 x 8 bytes per CPU. Pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, KACCESS_CTR_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps") __weak;

/*
 * events: ring buffer of struct kaccess_conn_event, one record per connection
 * open, failed connect or close (never per syscall). Read by the shipper's
 * event loop every 200 ms. Size: 1 MiB (`ringbuf_kib`), about 7700 records:
 * 100,000 connections closing at once overflowed 256 KiB. Not pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1024 * 1024);
} events SEC(".maps") __weak;

/*
 * watched_cgroup: one slot holding the cgroup v2 directory whose subtree is
 * watched when `cgroup` is configured. Written by the shipper before attach;
 * read by bpf_current_task_under_cgroup() when a connection starts. Not pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_CGROUP_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} watched_cgroup SEC(".maps") __weak;

/* listen_ports key: a listening port in one network namespace. */
struct listen_port_key {
	__u64 netns;   /* struct net address: ports are per namespace */
	__u16 port;    /* host byte order */
	__u16 pad[3];
};

/*
 * listen_ports: key = struct listen_port_key, value = unused byte.
 * Written by the startup TCP iterator's first pass from listening sockets;
 * read by its second pass to tell servers' connections from clients'.
 * Size: 65536 entries, allocated on use (~5 MiB if full). Not pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 65536);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, struct listen_port_key);
	__type(value, __u8);
} listen_ports SEC(".maps") __weak;

enum syscall_op {
	SYSCALL_OP_NONE = 0,
	SYSCALL_OP_CONNECT,
	SYSCALL_OP_ACCEPT,
	SYSCALL_OP_CLOSE,
	SYSCALL_OP_READ,
	SYSCALL_OP_WRITE,
	SYSCALL_OP_READ_MMSG,  /* recvmmsg: bytes are in the user's mmsghdr array */
	SYSCALL_OP_WRITE_MMSG, /* sendmmsg */
	SYSCALL_OP_SOCK_READ,  /* fentry hooks: one sock_recvmsg() call, begun and ended there */
	SYSCALL_OP_SOCK_WRITE, /* fentry hooks: one sock_sendmsg() call */
};

/*
 * The in-flight syscall of one thread, from sys_enter to sys_exit.
 * Only syscalls on tracked sockets (and connect/accept) create it.
 */
struct syscall_ctx {
	__u64 start_ns;       /* CLOCK_MONOTONIC at entry */
	__u64 sk;             /* socket of a read/write/close; set by connect at SYN_SENT */
	__u64 user_ptr;       /* connect: the caller's sockaddr; mmsg: its mmsghdr array */
	__u32 op;             /* enum syscall_op; NONE when idle */
	__s32 fd;
	__u32 addr_len;       /* connect: the sockaddr's length */
	__s32 syscall_nr;     /* "sock" transfer hooks: the syscall that took start_ns */
	__u16 peer_family;    /* connect failures: the sockaddr the caller asked for */
	__u16 peer_port;      /* host byte order */
	__u8 peer_addr[KACCESS_ADDR_LEN];
	__u32 pad;
	struct kaccess_conn conn; /* read/write: only .agg is filled; close: all */
};

/*
 * syscall_ctx_store: key = task, value = struct syscall_ctx.
 * Task storage costs ~150 ns less per syscall than a hash keyed by pid_tgid
 * (reference/environment.md) and is freed with the task. Not pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct syscall_ctx);
} syscall_ctx_store SEC(".maps") __weak;

#endif /* KACCESS_MAPS_MAPS_BPF_H */
