/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Keys, values and events shared by the BPF programs and the shipper.
 *
 * This header compiles on both sides: only __u8..__u64, explicit padding and
 * a _Static_assert on every size, so that a field added on one side cannot
 * silently shift the other. Maps themselves are declared in maps.bpf.h.
 */
#ifndef KACCESS_MAPS_KACCESS_H
#define KACCESS_MAPS_KACCESS_H

#ifndef __bpf__
#include <linux/types.h>
#endif

#define KACCESS_COMM_LEN 16
#define KACCESS_ADDR_LEN 16 /* IPv6; IPv4 is stored v4-mapped (::ffff:a.b.c.d) */

enum kaccess_role {
	KACCESS_ROLE_UNKNOWN = 0,
	KACCESS_ROLE_CLIENT = 1, /* this side called connect() */
	KACCESS_ROLE_SERVER = 2, /* this side got the socket from accept() */
};

enum kaccess_conn_state {
	KACCESS_CONN_CONNECTING = 1, /* client between connect() and the handshake's end */
	KACCESS_CONN_ESTABLISHED = 2,
};

enum kaccess_conn_flags {
	/* A close() that dropped the last file reference was seen; the
	 * socket's later destruction must not count a second close. */
	KACCESS_CONN_CLOSE_TRACED = 1 << 0,
	/* Established before kaccess started: found by the TCP iterator, role
	 * from the listening ports, owner pid from its first read or write. */
	KACCESS_CONN_ADOPTED = 1 << 1,
	/* Server side, established but not yet returned by accept(): accept()
	 * takes it over with its owner and timing; if nothing ever accepts or
	 * uses it, it ends without counting. */
	KACCESS_CONN_ACCEPT_PENDING = 1 << 2,
};

/*
 * Aggregation key: one row per (local cgroup, peer, role) per time bucket.
 * The peer port is kept for the client role only; for the server role the
 * peer's port is ephemeral and would only multiply rows.
 */
struct kaccess_agg_key {
	__u64 cgroup_id;                    /* cgroup v2 inode of the local process */
	__u8 peer_addr[KACCESS_ADDR_LEN];   /* v4-mapped for IPv4 */
	__u16 peer_port;                    /* host byte order; 0 for the server role */
	__u8 role;                          /* enum kaccess_role */
	__u8 pad[5];
};
_Static_assert(sizeof(struct kaccess_agg_key) == 32, "kaccess_agg_key layout");

/*
 * Aggregation value. Durations are nanosecond sums so that userspace can
 * form exact averages (sum / count). Every field is added with atomics by
 * concurrent writers; only `bucket` is written once, at insert.
 */
struct kaccess_agg_value {
	__u64 bucket;                  /* wall-clock bucket index: realtime_ns / bucket_ns */
	__u64 connect_count;           /* connect attempts that ended (success or failure) */
	__u64 connect_success_count;
	__u64 connect_duration_ns_sum; /* connect() entry to the end of the handshake */
	__u64 accept_count;
	__u64 accept_duration_ns_sum;  /* accept()/accept4() entry to exit */
	__u64 close_count;             /* established connections that ended */
	__u64 close_untraced_count;    /* ...of which without a close() syscall (exit, kill) */
	__u64 close_duration_ns_sum;   /* close() entry to exit, traced closes only */
	__u64 read_count;              /* read-family syscalls that returned data */
	__u64 read_duration_ns_sum;
	__u64 read_bytes;
	__u64 write_count;             /* write-family syscalls that sent data */
	__u64 write_duration_ns_sum;
	__u64 write_bytes;
};
_Static_assert(sizeof(struct kaccess_agg_value) == 15 * 8, "kaccess_agg_value layout");

/* conn_table value: everything known about one tracked TCP connection. */
struct kaccess_conn {
	struct kaccess_agg_key agg;          /* the row this connection's syscalls add to */
	__u8 local_addr[KACCESS_ADDR_LEN];
	__u8 remote_addr[KACCESS_ADDR_LEN];  /* same as agg.peer_addr */
	__u16 local_port;                    /* host byte order */
	__u16 remote_port;                   /* host byte order, also for the server role */
	__u16 family;                        /* AF_INET or AF_INET6 as the socket was created */
	__u8 state;                          /* enum kaccess_conn_state */
	__u8 flags;                          /* enum kaccess_conn_flags */
	__u32 pid;                           /* tgid that connected or accepted */
	__u32 pad;
	__u64 start_ns;                      /* CLOCK_MONOTONIC: connect() entry or accept() exit */
	char comm[KACCESS_COMM_LEN];
};
_Static_assert(sizeof(struct kaccess_conn) == 104, "kaccess_conn layout");

enum kaccess_event_type {
	KACCESS_EVENT_CONN_OPEN = 1,      /* handshake done (client) or accepted (server) */
	KACCESS_EVENT_CONNECT_FAILED = 2, /* connect() that did not establish */
	KACCESS_EVENT_CONN_CLOSE = 3,     /* connection released by close() or destroyed */
};

/* Ring buffer record: one per connection event, never per syscall. */
struct kaccess_conn_event {
	__u32 type;         /* enum kaccess_event_type */
	__u32 traced;       /* CONN_CLOSE: 1 when a close() syscall was timed */
	__u64 sk;           /* kernel socket address: the connection's identity */
	__u64 ts_ns;        /* CLOCK_MONOTONIC time of the event */
	__u64 duration_ns;  /* connect, accept or close duration; 0 when untraced */
	struct kaccess_conn conn;
};
_Static_assert(sizeof(struct kaccess_conn_event) == 32 + 104, "kaccess_conn_event layout");

/*
 * Every place the kernel side can lose or mis-file data has a counter,
 * indexed in the per-CPU `counters` map. Names for export are in
 * shipper/counters.c; keep the two in the same order.
 */
enum kaccess_counter {
	KACCESS_CTR_CONN_TABLE_FULL,   /* new connection not tracked: conn_table full */
	KACCESS_CTR_AGG_TABLE_FULL,    /* aggregate row not created: generation map full */
	KACCESS_CTR_RINGBUF_FULL,      /* connection event dropped: ring buffer full */
	KACCESS_CTR_SYSCALL_CTX_FAILED,/* syscall not timed: task storage unavailable */
	KACCESS_CTR_AGG_STALE_BUCKET,  /* added to a row of an older bucket the drain missed */
	KACCESS_CTR_CONN_REPLACED,     /* a tracked socket address was reused before its destroy was seen */
	KACCESS_CTR_MAX,
};

#endif /* KACCESS_MAPS_KACCESS_H */
