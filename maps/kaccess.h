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
	/* Client side: its first packet left for another address than the
	 * socket's (a DNAT such as kube-proxy's for a ClusterIP): the row key's
	 * peer is that translated address, the backend; remote_addr stays
	 * what the socket dialed. */
	KACCESS_CONN_PEER_TRANSLATED = 1 << 3,
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
#define KACCESS_LOSS_REASON_SLOTS 4

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
	/*
	 * L2-L4 of the connection's packets (bpf/l24.bpf.c; config `l24`).
	 * Packet counts and bytes are per skb as the device counts them (a
	 * GSO super-packet is one), with the link-layer header. Durations are
	 * summed per packet; OAP averages them over the read or write calls.
	 */
	__u64 write_l4_duration_ns_sum;        /* first tcp_sendmsg_locked of a write to its end */
	__u64 write_packets;                   /* skbs the driver took (net_dev_xmit rc 0) */
	__u64 write_packet_bytes;
	__u64 write_retransmit_packets;        /* TCP segments retransmitted, as TcpRetransSegs */
	__u64 write_resolve_mac_count;         /* neighbour resolutions a packet waited for */
	__u64 write_resolve_mac_duration_ns_sum;
	__u64 write_l2_duration_ns_sum;        /* net_dev_queue to net_dev_xmit */
	__u64 write_l2_enter_queue_count;      /* packets a qdisc queued (qdisc_enqueue) */
	__u64 write_l2_ready_send_duration_ns_sum;  /* net_dev_queue to net_dev_start_xmit */
	__u64 write_l2_device_send_duration_ns_sum; /* net_dev_start_xmit to net_dev_xmit */
	__u64 read_packets;                    /* segments TCP received (tcp_probe) */
	__u64 read_packet_bytes;
	__u64 read_l4_duration_ns_sum;         /* tcp_probe to sk_data_ready */
	__u64 read_l3_duration_ns_sum;         /* netif_receive_skb to the socket queue */
	__u64 read_l2_to_queue_duration_ns_sum;   /* netif_receive_skb to the socket queue */
	__u64 read_l2_from_queue_duration_ns_sum; /* the socket queue to the copy to the reader */
	/* With netfilter links (Linux 6.4+, `l24_netfilter`): per packet. */
	__u64 write_l3_duration_ns_sum;        /* LOCAL_OUT's first hook to the driver (or qdisc) */
	__u64 write_l3_local_duration_ns_sum;  /* LOCAL_OUT: first to last hook */
	__u64 write_l3_output_duration_ns_sum; /* POST_ROUTING: first to last hook */
	__u64 write_netfilter_count;           /* hooks with rules a sent packet traversed */
	__u64 write_netfilter_duration_ns_sum;
	__u64 read_l3_rcv_duration_ns_sum;     /* PRE_ROUTING: first to last hook */
	__u64 read_l3_local_duration_ns_sum;   /* LOCAL_IN: first to last hook */
	__u64 read_netfilter_count;            /* hooks with rules a received packet traversed */
	__u64 read_netfilter_duration_ns_sum;
	/*
	 * Without netfilter links (before Linux 6.4, or `l24_netfilter = off`),
	 * in their place: "L3+L4 egress", per packet a write of the socket
	 * queued to a device, from the write's L4 start (as
	 * write_l4_duration_ns_sum's) to net_dev_queue. Packets sent outside
	 * such a write (ACKs, retransmits, TCP's own pushes) are not in it.
	 */
	__u64 write_egress_packets;
	__u64 write_egress_duration_ns_sum;
	/*
	 * Loss locations: the connection's own outgoing sk_buffs that the
	 * kernel freed as dropped (skb:kfree_skb), by enum skb_drop_reason.
	 * The first KACCESS_LOSS_REASON_SLOTS reasons of a row get a slot;
	 * later ones count in write_loss_packets only.
	 */
	__u64 write_loss_packets;
	__u32 write_loss_reason[KACCESS_LOSS_REASON_SLOTS];         /* 0: slot free */
	__u32 write_loss_reason_packets[KACCESS_LOSS_REASON_SLOTS];
};
_Static_assert(sizeof(struct kaccess_agg_value) == 47 * 8, "kaccess_agg_value layout");

/*
 * Which L2-L4 fields of kaccess_agg_value this kernel measures: each needs
 * its tracepoints (bpf/l24.bpf.c). Fields outside the set stay zero and are
 * not reported as measurements.
 */
enum kaccess_l24_measure {
	KACCESS_L24_WRITE_L4 = 1 << 0,      /* write_l4_duration_ns_sum */
	KACCESS_L24_WRITE_PACKETS = 1 << 1, /* write_packets, write_packet_bytes */
	KACCESS_L24_WRITE_L2 = 1 << 2,      /* write_l2_{,ready_send_,device_send_}duration_ns_sum */
	KACCESS_L24_ENTER_QUEUE = 1 << 3,   /* write_l2_enter_queue_count */
	KACCESS_L24_RETRANSMITS = 1 << 4,   /* write_retransmit_packets */
	KACCESS_L24_RESOLVE_MAC = 1 << 5,   /* write_resolve_mac_{count,duration_ns_sum} */
	KACCESS_L24_READ_PACKETS = 1 << 6,  /* read_packets, read_packet_bytes */
	KACCESS_L24_READ_WINDOWS = 1 << 7,  /* read_l3_, read_l2_to_queue_, read_l2_from_queue_ */
	KACCESS_L24_READ_L4 = 1 << 8,       /* read_l4_duration_ns_sum */
	KACCESS_L24_NETFILTER = 1 << 9,     /* write_l3_*, read_l3_{rcv,local}_*, *_netfilter_*: links */
	KACCESS_L24_LOSS = 1 << 10,         /* write_loss_packets, write_loss_reason* */
	KACCESS_L24_EGRESS = 1 << 11,       /* write_egress_*: without links, where a write's start is known */
};

/* conn_table value: everything known about one tracked TCP connection. */
struct kaccess_conn {
	struct kaccess_agg_key agg;          /* the row this connection's syscalls add to */
	__u8 local_addr[KACCESS_ADDR_LEN];
	__u8 remote_addr[KACCESS_ADDR_LEN];  /* agg.peer_addr, unless KACCESS_CONN_PEER_TRANSLATED */
	__u16 local_port;                    /* host byte order */
	__u16 remote_port;                   /* host byte order, also for the server role */
	__u16 family;                        /* AF_INET or AF_INET6 as the socket was created */
	__u8 state;                          /* enum kaccess_conn_state */
	__u8 flags;                          /* enum kaccess_conn_flags */
	__u32 pid;                           /* tgid that connected or accepted */
	__u8 http;                           /* enum kaccess_conn_http */
	__u8 pad[3];
	__u64 start_ns;                      /* CLOCK_MONOTONIC: connect() entry or accept() exit */
	char comm[KACCESS_COMM_LEN];
};
_Static_assert(sizeof(struct kaccess_conn) == 104, "kaccess_conn layout");

/* What the HTTP/1.x parser decided about a connection (kaccess_conn.http). */
enum kaccess_conn_http {
	KACCESS_HTTP_UNDECIDED = 0,  /* no data yet */
	KACCESS_HTTP_YES = 1,        /* requests start with a method: parsed (http_conns) */
	KACCESS_HTTP_NO = 2,         /* not HTTP; the response direction's first bytes not seen yet */
	KACCESS_HTTP_NO_FINAL = 3,   /* not HTTP, nothing more to look at */
	KACCESS_HTTP_FAILED = 4,     /* was HTTP, then broke the grammar: parsing stopped */
	KACCESS_HTTP_H2 = 5,         /* HTTP/2 (prior knowledge or upgraded): frames parsed (h2_conns) */
	KACCESS_HTTP_SWITCHING = 6,  /* after "101 Switching Protocols": HTTP/2 if the next bytes are its
				      * preface or SETTINGS (the request waits in http_conns as stream 1) */
};

enum kaccess_event_type {
	KACCESS_EVENT_CONN_OPEN = 1,      /* handshake done (client) or accepted (server) */
	KACCESS_EVENT_CONNECT_FAILED = 2, /* connect() that did not establish */
	KACCESS_EVENT_CONN_CLOSE = 3,     /* connection released by close() or destroyed */
	KACCESS_EVENT_HTTP_ENDPOINT = 4,  /* the text of an endpoint hash, once */
	KACCESS_EVENT_H2_HEADERS = 5,     /* a piece of an HTTP/2 header block (HPACK bytes) */
	KACCESS_EVENT_H2_STREAM_END = 6,  /* an HTTP/2 stream's exchange ended: its sizes and times */
	KACCESS_EVENT_HTTP_REQUEST_HEAD = 7, /* the first bytes of an HTTP/1.x request (access-log records) */
	KACCESS_EVENT_HTTP_EXCHANGE = 8,  /* an HTTP/1.x exchange ended (access-log records) */
	KACCESS_EVENT_H2_BATCH = 9,       /* one read's or write's HTTP/2 records (H2_HEADERS, H2_STREAM_END) */
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

/* OAP cuts endpoint names at 150 characters: "METHOD:path" is kept to that. */
#define KACCESS_HTTP_ENDPOINT_MAX 150
/*
 * Latency histogram buckets (lower bounds): 10 ms wide below 1 s (OAP's
 * percentile precision), 100 ms wide to 2 s (apdex's 4x500 ms), 1 s wide to
 * 10 s, then [10 s, 30 s) and [30 s, inf). See kaccess_http_bucket_low_ms().
 */
#define KACCESS_HTTP_LATENCY_BUCKETS 120

/* Ring buffer record: the text of an endpoint, exactly 16 + len bytes. */
struct kaccess_http_endpoint_event {
	__u32 type;         /* KACCESS_EVENT_HTTP_ENDPOINT */
	__u32 len;          /* bytes of text that follow, no NUL; at most KACCESS_HTTP_ENDPOINT_MAX */
	__u64 endpoint;     /* FNV-1a 64 of the text */
	char text[];        /* "METHOD:path" */
};
_Static_assert(sizeof(struct kaccess_http_endpoint_event) == 16, "kaccess_http_endpoint_event layout");

/* HTTP aggregation key: the connection's row key plus the endpoint. */
struct kaccess_http_key {
	struct kaccess_agg_key agg;
	__u64 endpoint;     /* FNV-1a 64 of "METHOD:path" (text via KACCESS_EVENT_HTTP_ENDPOINT) */
};
_Static_assert(sizeof(struct kaccess_http_key) == 40, "kaccess_http_key layout");

enum kaccess_http_class { /* index of status_count */
	KACCESS_HTTP_1XX, KACCESS_HTTP_2XX, KACCESS_HTTP_3XX, KACCESS_HTTP_4XX, KACCESS_HTTP_5XX,
	KACCESS_HTTP_CLASSES,
};

/*
 * HTTP aggregation value, per (row key, endpoint) per bucket. An exchange is
 * one request: answered (complete response), cut (the connection ended
 * inside the response) or unanswered (ended before any response).
 * Durations and the histogram cover complete exchanges only:
 * call_count - no_response_count - truncated_count of them.
 */
struct kaccess_http_value {
	__u64 bucket;                  /* wall-clock bucket index */
	__u64 call_count;              /* every exchange */
	__u64 success_count;           /* complete, final status < 500 */
	__u64 status_count[KACCESS_HTTP_CLASSES]; /* final status 1xx..5xx (complete or cut) */
	__u64 no_response_count;       /* the connection ended before a status line */
	__u64 truncated_count;         /* the connection ended inside the response */
	__u64 request_header_bytes;    /* request line + headers + blank line */
	__u64 request_body_bytes;      /* on the wire: chunk framing included */
	__u64 response_header_bytes;   /* status line + headers + blank line, interim 1xx included */
	__u64 response_body_bytes;
	__u64 duration_ns_sum;         /* first request byte to last response byte */
	__u32 duration_hist[KACCESS_HTTP_LATENCY_BUCKETS];
};
_Static_assert(sizeof(struct kaccess_http_value) == 15 * 8 + 4 * KACCESS_HTTP_LATENCY_BUCKETS,
	       "kaccess_http_value layout");

/* Lower bound in ms of histogram bucket `i`. */
/* The bucket of a duration: the inverse of kaccess_http_bucket_low_ms(). */
static inline __u64 kaccess_http_latency_bucket(__u64 duration_ns)
{
	__u64 ms = duration_ns / 1000000;

	if (ms < 1000)
		return ms / 10;
	if (ms < 2000)
		return 100 + (ms - 1000) / 100;
	if (ms < 10000)
		return 110 + (ms - 2000) / 1000;
	return ms < 30000 ? 118 : 119;
}

static inline __u64 kaccess_http_bucket_low_ms(unsigned int i)
{
	if (i < 100)
		return i * 10;
	if (i < 110)
		return 1000 + (i - 100) * 100;
	if (i < 118)
		return 2000 + (i - 110) * 1000;
	return i == 118 ? 10000 : 30000;
}

/* ---- HTTP/1.x access-log records --------------------------------------------
 *
 * With config `http_log_policy` other than `none`, every HTTP/1.x exchange
 * also reaches userspace as two records: the first bytes of its request
 * (copied once, when the request starts, from the user buffer of that
 * read or write) and, when the exchange is counted, its numbers. Userspace
 * pairs them by (sk, conn_start_ns, seq) and takes Host and the trace
 * headers from the copied bytes. The metrics never depend on them.
 */

/* Bytes of a request copied for its record: Host and trace headers beyond are missed. */
#define KACCESS_HTTP_HEAD_MAX 2048

/* Ring buffer record: a request's first bytes, exactly 32 + len bytes. */
struct kaccess_http_head_event {
	__u32 type;         /* KACCESS_EVENT_HTTP_REQUEST_HEAD */
	__u32 len;          /* bytes that follow; at most KACCESS_HTTP_HEAD_MAX */
	__u64 sk;           /* the connection: socket address... */
	__u64 conn_start_ns;/* ...and its start (kaccess_conn.start_ns), against address reuse */
	__u32 seq;          /* the request's sequence number on its connection, from 0 */
	__u32 pad;
	__u8 bytes[];       /* as the read or write carried them, from the request's first byte */
};
_Static_assert(sizeof(struct kaccess_http_head_event) == 32, "kaccess_http_head_event layout");

enum kaccess_http_version {
	KACCESS_HTTP_VERSION_UNKNOWN = 0,
	KACCESS_HTTP_VERSION_1_0 = 1,
	KACCESS_HTTP_VERSION_1_1 = 2,
	KACCESS_HTTP_VERSION_2 = 3,
};

/* How an exchange ended (the kernel's enum http_outcome has the same values). */
enum kaccess_http_outcome {
	KACCESS_HTTP_OUTCOME_COMPLETE = 0,    /* the response ended */
	KACCESS_HTTP_OUTCOME_CUT = 1,         /* the connection ended inside the response (or RST_STREAM) */
	KACCESS_HTTP_OUTCOME_NO_RESPONSE = 2, /* the connection ended before a status line */
};

/*
 * The read and write calls of one exchange. A call belongs to the message
 * (HTTP/1.x) or stream (HTTP/2) of its first byte: a call that finishes one
 * message and begins the next is the first one's; HTTP/2 calls that begin
 * with a connection-level frame (SETTINGS, PING, WINDOW_UPDATE on stream 0)
 * belong to no exchange. Durations are each call's, entry to exit.
 */
struct kaccess_http_calls {
	__u32 request_calls;      /* calls whose first byte was the request's */
	__u32 response_calls;     /* ...the response's (interim 1xx included) */
	__u64 request_call_ns;    /* the sum of their durations */
	__u64 response_call_ns;
};
_Static_assert(sizeof(struct kaccess_http_calls) == 24, "kaccess_http_calls layout");

/* Ring buffer record: one HTTP/1.x exchange was counted, exactly this size. */
struct kaccess_http_exchange_event {
	__u32 type;         /* KACCESS_EVENT_HTTP_EXCHANGE */
	__u32 seq;          /* as its kaccess_http_head_event */
	__u64 sk;
	__u64 conn_start_ns;
	__u64 endpoint;     /* hash of "METHOD:path" (text via KACCESS_EVENT_HTTP_ENDPOINT) */
	__u64 start_ns;     /* CLOCK_MONOTONIC: the request's first byte */
	__u64 end_ns;       /* the response's last byte, or when the connection ended */
	__u64 request_body_bytes;
	__u64 response_body_bytes;
	__u32 request_header_bytes;
	__u32 response_header_bytes; /* interim 1xx included */
	__u16 status;       /* final status; 0 without a response */
	__u8 outcome;       /* enum kaccess_http_outcome */
	__u8 version;       /* enum kaccess_http_version of the request line */
	__u16 local_port;   /* the connection's ports (kaccess_conn), host byte order: */
	__u16 remote_port;  /* agg has no local port, nor the peer's for the server role */
	struct kaccess_agg_key agg; /* the connection's row key: cgroup, peer, role */
	struct kaccess_http_calls calls;
};
_Static_assert(sizeof(struct kaccess_http_exchange_event) == 80 + 32 + 24, "kaccess_http_exchange_event layout");

/* ---- HTTP/2 ----------------------------------------------------------------
 *
 * The kernel cuts each direction of an h2c connection into frames and keeps
 * per-stream sizes and times; the header blocks (HPACK) go to userspace in
 * pieces, in order, and userspace decodes them with one inflater per
 * connection direction. When a stream's exchange ends the kernel sends its
 * numbers; userspace joins them with the decoded :method, :path and :status
 * and adds the exchange to a kaccess_http_key/value row like HTTP/1.x's.
 */

/* Bytes of one header block sent to userspace; above it the rest is counted, not sent. */
#define KACCESS_H2_BLOCK_MAX 16384
/* Bytes of a block in one record (the parser's copy window). */
#define KACCESS_H2_PIECE_MAX 512

enum kaccess_h2_piece_flags {
	KACCESS_H2_PIECE_FIRST = 1 << 0,     /* the first bytes of a block (a HEADERS frame's) */
	KACCESS_H2_PIECE_LAST = 1 << 1,      /* the block ends here (END_HEADERS) */
	KACCESS_H2_PIECE_RESPONSE = 1 << 2,  /* the response direction (server to client) */
	KACCESS_H2_PIECE_GAP = 1 << 3,       /* bytes of this direction were lost before this piece */
};

/* Ring buffer record: a piece of a header block, exactly 32 + len bytes. */
struct kaccess_h2_headers_event {
	__u32 type;         /* KACCESS_EVENT_H2_HEADERS */
	__u16 flags;        /* enum kaccess_h2_piece_flags */
	__u16 len;          /* bytes that follow; at most KACCESS_H2_PIECE_MAX */
	__u64 sk;           /* the connection: socket address... */
	__u64 conn_start_ns;/* ...and its start (kaccess_conn.start_ns), against address reuse */
	__u32 stream_id;
	__u32 pad;
	__u8 bytes[];       /* HPACK, as on the wire (padding and priority fields removed) */
};
_Static_assert(sizeof(struct kaccess_h2_headers_event) == 32, "kaccess_h2_headers_event layout");

enum kaccess_h2_outcome {
	KACCESS_H2_COMPLETE = 1,  /* the response ended with END_STREAM */
	KACCESS_H2_RESET = 2,     /* RST_STREAM from either side */
	KACCESS_H2_CUT = 3,       /* the connection ended first (set by userspace) */
};

/* Per-stream sizes, as the kernel counts them (h2_streams value). */
struct kaccess_h2_sizes {
	__u64 start_ns;               /* CLOCK_MONOTONIC: the call with the request's first HEADERS byte */
	__u64 request_header_bytes;   /* HPACK bytes of HEADERS + CONTINUATION */
	__u64 request_body_bytes;     /* DATA bytes, padding excluded */
	__u64 response_header_bytes;
	__u64 response_body_bytes;
	__u32 response_blocks;        /* response header blocks begun (0: no response) */
	__u32 reset;                  /* ended by RST_STREAM: counted; frames still in flight are ignored */
	__u64 endpoint;               /* stream 1 of an upgraded connection: the HTTP/1.1 request's
				       * "METHOD:path" hash (0: named by its HEADERS) */
	__u32 upgrade_seq;            /* with `endpoint`: the HTTP/1.1 request's number, the seq of its
				       * kaccess_http_head_event (its Host and trace headers) */
	__u32 upgrade_unused;         /* explicit padding */
	struct kaccess_http_calls calls; /* the stream's calls: those whose first frame is its */
};
_Static_assert(sizeof(struct kaccess_h2_sizes) == 88, "kaccess_h2_sizes layout");

/* Ring buffer record: one HTTP/2 exchange ended, exactly this size. */
struct kaccess_h2_stream_event {
	__u32 type;         /* KACCESS_EVENT_H2_STREAM_END */
	__u32 outcome;      /* enum kaccess_h2_outcome */
	__u64 sk;
	__u64 conn_start_ns;
	__u32 stream_id;
	__u16 local_port;   /* the connection's, host byte order, as kaccess_http_exchange_event's */
	__u16 remote_port;
	__u64 end_ns;       /* CLOCK_MONOTONIC: the call with END_STREAM or RST_STREAM */
	__u64 bucket;       /* wall-clock bucket of end_ns, as the kernel's rows */
	struct kaccess_agg_key agg;
	struct kaccess_h2_sizes sizes;
};
_Static_assert(sizeof(struct kaccess_h2_stream_event) == 48 + 32 + 88, "kaccess_h2_stream_event layout");

/*
 * Ring buffer record: the HTTP/2 records of one read or write, gathered so
 * that a call carrying many streams costs one ring-buffer record, not one
 * per header block and per stream end. `len` bytes of records follow, each
 * a whole kaccess_h2_headers_event or kaccess_h2_stream_event starting at a
 * multiple of 8 bytes, in the order the parser made them.
 */
#define KACCESS_H2_BATCH_MAX 4096 /* bytes of records in one batch */

struct kaccess_h2_batch_event {
	__u32 type;         /* KACCESS_EVENT_H2_BATCH */
	__u32 len;          /* bytes of records that follow; at most KACCESS_H2_BATCH_MAX */
	__u8 records[];
};
_Static_assert(sizeof(struct kaccess_h2_batch_event) == 8, "kaccess_h2_batch_event layout");

/* h2_streams key: one stream of one connection. */
struct kaccess_h2_stream_key {
	__u64 sk;
	__u64 conn_start_ns;
	__u32 stream_id;
	__u32 pad;
};
_Static_assert(sizeof(struct kaccess_h2_stream_key) == 24, "kaccess_h2_stream_key layout");

/*
 * Every place the kernel side can lose or mis-file data has a counter,
 * indexed in the per-CPU `counters` map, and so do a few tallies of
 * things left out on purpose, after KACCESS_CTR_LOSSES. Names of the
 * losses for export are in shipper/agent.c (loss_names); keep the two in
 * the same order.
 */
enum kaccess_counter {
	KACCESS_CTR_CONN_TABLE_FULL,   /* new connection not tracked: conn_table full */
	KACCESS_CTR_AGG_TABLE_FULL,    /* aggregate row not created: generation map full */
	KACCESS_CTR_RINGBUF_FULL,      /* connection event dropped: ring buffer full */
	KACCESS_CTR_SYSCALL_CTX_FAILED,/* syscall not timed: task storage unavailable */
	KACCESS_CTR_AGG_STALE_BUCKET,  /* added to a row of an older bucket the drain missed */
	KACCESS_CTR_CONN_REPLACED,     /* a tracked socket address was reused before its destroy was seen */
	KACCESS_CTR_HTTP_PARSE_FAILED, /* an HTTP connection broke the grammar (or answered non-HTTP):
				        * its exchanges in flight are not counted, parsing stops */
	KACCESS_CTR_HTTP_CONNS_FULL,   /* an HTTP connection was not parsed: http_conns full */
	KACCESS_CTR_HTTP_TABLE_FULL,   /* HTTP exchange not added: HTTP generation map full */
	KACCESS_CTR_HTTP_ENDPOINT_LOST,/* endpoint text not sent (ring buffer full); retried next time */
	KACCESS_CTR_HTTP_PIPELINE_FULL,/* more pipelined requests than tracked: parsing stopped */
	KACCESS_CTR_L24_WINDOW_LOST,   /* a tracked packet's L2 window lost its start (nested or
				        * re-segmented transmit), or a received one found no
				        * memory for its socket's storage: counted, not timed */
	KACCESS_CTR_H2_HEADERS_LOST,   /* HTTP/2 header block bytes not delivered (ring buffer full or
				        * block above KACCESS_H2_BLOCK_MAX): that direction's HPACK table
				        * is unknown from then on, its later exchanges unnamed */
	KACCESS_CTR_H2_STREAM_LOST,    /* HTTP/2 exchange not counted: its end record was not delivered,
				        * or its stream was not tracked (h2_streams full or evicted) */
	KACCESS_CTR_HTTP_UPGRADE_UNFOLLOWED, /* an HTTP/1.1 upgrade not followed into HTTP/2: too few
				        * bytes after the 101 to tell, requests pipelined behind the
				        * upgrade one, or h2_conns full */
	KACCESS_CTR_HTTP_RECORD_LOST,  /* an HTTP/1.x access-log record (request head or exchange) not
				        * delivered: ring buffer full or its bytes unreadable */
	KACCESS_CTR_L24_HOOKS_UNSEEN,  /* a tracked received segment that crossed hook functions at
				        * LOCAL_IN without kaccess's windows for it: its namespace was
				        * not linked yet, or TCP took it from the socket's backlog
				        * after its nf_ingress_done slot went to another packet. In
				        * read_packets, not in the netfilter and L3 hook sums */
	KACCESS_CTR_L24_RX_UNTIMED,    /* a tracked data segment a reader copied without its stamp:
				        * it gave way to later ones (more than RX_STAMP_SLOTS unread),
				        * or the segment came before kaccess watched the socket (counted
				        * when a later one gave the socket its storage first). In
				        * read_packets, not in the read L2-L4 duration sums */
	KACCESS_CTR_LOSSES,            /* the loss counters end here; what follows is no loss */
	KACCESS_CTR_HTTP_RECORDS_SAMPLED_OUT = KACCESS_CTR_LOSSES, /* HTTP/1.x exchanges whose
				        * request head and exchange records `http_log_policy =
				        * sampled` left unsent: the shipper would have filtered them */
	KACCESS_CTR_MAX,
};

#endif /* KACCESS_MAPS_KACCESS_H */
