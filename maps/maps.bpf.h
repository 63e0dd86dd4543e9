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
 * Size: 16384 rows each (`agg_rows_max_entries`), 472 B each: 7.4 MiB each. Pinned.
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

/* agg_fresh: one zeroed row per CPU, the initial value of new rows (agg.bpf.h). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct kaccess_agg_value);
} agg_fresh SEC(".maps") __weak;

/*
 * counters: key = enum kaccess_counter, value = per-CPU event count.
 * Written by every program that drops or mis-files something (and by the
 * few that leave something out on purpose: the tallies after
 * KACCESS_CTR_LOSSES); summed and exported by the shipper with every
 * bucket. Size: KACCESS_CTR_MAX x 8 bytes per CPU. Pinned.
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
	__u32 buf_kind;       /* enum http_buf_kind: what user_ptr points to, for the HTTP parser */
	__u32 buf_count;      /* HTTP_BUF_IOVEC: the iovec count */
	__u32 pad;
	__u64 l4_start_ns;    /* write: the first tcp_sendmsg_locked inside it (0: not seen) */
	__u64 l4_sk;          /* ...and its socket (the "sock" hooks learn `sk` only at the end) */
	struct kaccess_conn conn; /* read/write: only .agg is filled; close: all */
};

/* What a read or write's user pointer is: the HTTP parser reads the payload there. */
enum http_buf_kind {
	HTTP_BUF_NONE = 0,   /* no payload visible (sendfile, mmsg): bytes are counted, not read */
	HTTP_BUF_PLAIN,      /* read/write/recvfrom/sendto: the buffer */
	HTTP_BUF_IOVEC,      /* readv/writev: an iovec array of buf_count entries */
	HTTP_BUF_MSGHDR,     /* recvmsg/sendmsg: a user_msghdr */
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

/* ---- HTTP/1.x ------------------------------------------------------------ */

/*
 * http_gen0 / http_gen1: per-bucket HTTP exchanges, two generations like
 * agg_gen*. key = struct kaccess_http_key, value = struct kaccess_http_value.
 * Written when an exchange ends (last response byte, or the connection's
 * end); drained by the shipper with the TCP rows.
 * Size: 4096 rows each (`http_rows_max_entries`), 704 B each: 2.75 MiB each. Pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct kaccess_http_key);
	__type(value, struct kaccess_http_value);
} http_gen0 SEC(".maps") __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, struct kaccess_http_key);
	__type(value, struct kaccess_http_value);
} http_gen1 SEC(".maps") __weak;

#define HTTP_PIPELINE_DEPTH 4 /* requests awaiting their response, per connection */
#define HTTP_ENDPOINT_BUF 152 /* KACCESS_HTTP_ENDPOINT_MAX, rounded up */

/*
 * A request whose exchange has not been counted yet: waiting for its
 * response, or answered while its own body is still arriving (an early
 * response: the exchange is counted when the request ends).
 */
struct http_request_slot {
	__u64 endpoint;      /* hash of "METHOD:path" */
	__u64 start_ns;      /* its first byte */
	__u64 body_bytes;    /* set when the request ends */
	__u32 header_bytes;
	__u32 seq;           /* the request's sequence number */
	__u8 head;           /* HEAD: the response has no body */
	__u8 ended;          /* request message complete */
	__u8 answered;       /* response known (below), request still arriving */
	__u8 outcome;        /* enum http_outcome, once answered */
	__u16 status;
	__u8 version;        /* enum kaccess_http_version of its request line */
	__u8 pad;
	/* the response, once answered */
	__u32 resp_header_bytes;
	__u32 pad2;
	__u64 resp_body_bytes;
	__u64 end_ns;
	struct kaccess_http_calls calls; /* request's: at its end; response's: at its end */
};

/* One direction's parser: where in which message it is. */
struct http_parser {
	__u64 roll_lo, roll_hi;  /* the current token's last 16 bytes (lower case in names) */
	__u64 remaining;         /* body or chunk bytes still to skip */
	__u64 content_length;
	__u64 body_bytes;        /* of the current message */
	__u64 hash;              /* request: the endpoint hash being built */
	__u64 start_ns;          /* request: the message's first byte */
	__u32 header_bytes;      /* of the current message, so far */
	__u32 token_len;         /* bytes of the current token or line */
	__u32 seq;               /* request: its slot's sequence number */
	__u16 status;
	__u8 phase;              /* enum http_phase (bpf/http.bpf.h) */
	__u8 header;             /* which header the current line is */
	__u8 flags;              /* HTTP_F_* */
	__u8 pad[3];
	__u32 calls;             /* calls whose first byte is the current (or next) message's */
	__u64 call_ns;           /* ...and their durations */
};

/* Per-connection HTTP state. */
struct http_conn {
	struct kaccess_agg_key agg;   /* the connection's row (kept current by every transfer) */
	struct http_parser req, resp;
	struct http_request_slot pending[HTTP_PIPELINE_DEPTH];
	__u32 head, tail;             /* sequence numbers: pending[seq % HTTP_PIPELINE_DEPTH] */
	__u64 last_resp_ns;           /* last response bytes: ends a body read to the close */
	__u32 interim_header_bytes;   /* 1xx responses before the final one */
	__u32 requests;               /* request messages started */
	__u32 endpoint_len;
	__u16 local_port, remote_port;/* the connection's (kaccess_conn), for access-log records */
	__u64 sk;                     /* the key, and the connection's start: access-log records */
	__u64 conn_start_ns;
	__u64 announced_endpoint;     /* the last endpoint whose text this connection knows sent */
	char endpoint[HTTP_ENDPOINT_BUF]; /* "METHOD:path" of the request being parsed */
};

/*
 * http_conns: key = socket address (as conn_table), value = struct http_conn.
 * Created by the first request bytes of a connection, deleted at
 * tcp_destroy_sock (after its unanswered requests are counted) or when the
 * connection stops being parseable. Preallocated: tracing programs on 6.1
 * may not allocate. Size: 16384 connections (`http_conns_max_entries`),
 * 768 B each: 13.1 MiB as the kernel accounts it. Not pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct http_conn);
} http_conns SEC(".maps") __weak;

/*
 * http_endpoints_sent: key = endpoint hash, value = unused byte. The
 * endpoints whose text went to the ring buffer: each is sent once (again
 * only if evicted). Size: 16384 entries, LRU, ~1.3 MiB. Not pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, __u8);
} http_endpoints_sent SEC(".maps") __weak;

/* ---- HTTP/2 ------------------------------------------------------------- */

/* One direction of an HTTP/2 connection: where in which frame it is. */
struct h2_parser {
	__u32 frame_left;    /* payload bytes of the current frame not consumed yet */
	__u32 pad_left;      /* ...of which trailing padding */
	__u32 stream_id;     /* of the current frame */
	__u32 block_bytes;   /* bytes of the current header block, sent or not */
	__u8 phase;          /* enum h2_phase (bpf/http2.bpf.h) */
	__u8 header_have;    /* frame header bytes collected */
	__u8 type, flags;    /* of the current frame */
	__u8 prefix_left;    /* pad length, promised stream or priority bytes still to skip */
	__u8 gap;            /* header bytes were lost: the next piece says so */
	__u8 first_pending;  /* the current block's first piece is not sent yet */
	__u8 end_stream;     /* the current block's HEADERS carried END_STREAM */
	__u8 content_seen;   /* the current frame had header block bytes */
	__u8 header_calls;   /* calls that began and ended inside the current frame header
			      * (at most 8): its stream's, once its last byte names it */
	__u8 frame_header[16]; /* 9 used */
	__u8 pad[6];
	__u64 header_call_ns; /* ...their durations, summed */
};

/*
 * Open streams kept inside their connection's entry, so that a stream's
 * start, lookups and end touch no map of their own: the connection's entry
 * is looked up by every call already. Stream n's slot is (n >> 1) mod
 * H2_STREAM_SLOTS: a client numbers its streams 1, 3, 5, ..., so the last
 * H2_STREAM_SLOTS it opened have a slot each. A stream whose slot is held
 * by another open stream goes to h2_streams. A connection's two directions
 * may run on two CPUs at once, and a slot's updates are no more atomic than
 * the sums in any map value: a new stream taking the slot of a reset one at
 * the instant the reset one's late response ends it could lose its slot
 * (its exchange then counts h2_stream_lost).
 */
#define H2_STREAM_SLOTS 8 /* a power of 2 */

struct h2_stream_slot {
	__u32 stream_id;             /* 0: free */
	__u32 pad;
	struct kaccess_h2_sizes sizes;
};

/* Per-connection HTTP/2 state. */
struct h2_conn {
	struct kaccess_agg_key agg;  /* the connection's row (kept current by every transfer) */
	__u64 conn_start_ns;         /* kaccess_conn.start_ns: part of every stream's key */
	struct h2_parser req, resp;
	__u32 table_streams;         /* its streams put in h2_streams and not deleted since: none,
				      * no lookup there (an LRU eviction leaves it high: harmless) */
	__u32 pad;
	struct h2_stream_slot slots[H2_STREAM_SLOTS];
};

/*
 * h2_conns: key = socket address (as conn_table), value = struct h2_conn.
 * Created by the client's connection preface (or the server's first
 * SETTINGS, for the server side), deleted at tcp_destroy_sock or when the
 * frames stop making sense; its open streams then go to h2_streams for the
 * shipper. Preallocated. Size: `http_conns_max_entries` (16384)
 * connections, 928 B each (984 with key and the kernel's header): 15.6 MiB.
 * Not pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);
	__type(value, struct h2_conn);
} h2_conns SEC(".maps") __weak;

/*
 * h2_streams: key = struct kaccess_h2_stream_key, value = struct
 * kaccess_h2_sizes. The numbers of a stream that found its slot in
 * h2_conns held, from its request's first HEADERS to its end (END_STREAM
 * of the response, RST_STREAM), then deleted; and the streams still open
 * when their connection ends (the slots' ones put here then), read and
 * deleted by the shipper.
 * LRU: streams of connections whose end was never seen cannot fill it; an
 * open stream evicted is counted (h2_stream_lost) when its response comes.
 * Size: 16384 streams (`http_conns_max_entries`), 112 B each: 2.75 MiB. Not pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, struct kaccess_h2_stream_key);
	__type(value, struct kaccess_h2_sizes);
} h2_streams SEC(".maps") __weak;

/*
 * A struct kaccess_h2_batch_event being filled: `bytes` has room past
 * KACCESS_H2_BATCH_MAX for the largest record, so that a record written at
 * any offset below it stays inside the buffer as the verifier sees it.
 */
#define H2_BATCH_RECORD_MAX (sizeof(struct kaccess_h2_headers_event) + KACCESS_H2_PIECE_MAX)
_Static_assert(sizeof(struct kaccess_h2_stream_event) <= H2_BATCH_RECORD_MAX, "H2_BATCH_RECORD_MAX");
_Static_assert((KACCESS_H2_BATCH_MAX & (KACCESS_H2_BATCH_MAX - 1)) == 0, "KACCESS_H2_BATCH_MAX: a power of 2");

struct h2_batch_buf {
	__u32 type;         /* KACCESS_EVENT_H2_BATCH */
	__u32 len;
	__u8 bytes[KACCESS_H2_BATCH_MAX + H2_BATCH_RECORD_MAX];
	__u32 pieces;       /* header pieces in it: lost with it if the ring buffer refuses it */
	__u32 ends;         /* stream ends in it: likewise */
};
_Static_assert(__builtin_offsetof(struct h2_batch_buf, bytes) == sizeof(struct kaccess_h2_batch_event),
	       "h2_batch_buf is a kaccess_h2_batch_event");

/* A struct kaccess_http_head_event with room for its bytes, sent exact-size. */
struct http_head_buf {
	__u32 type;
	__u32 len;
	__u64 sk;
	__u64 conn_start_ns;
	__u32 seq;
	__u32 pad;
	__u8 bytes[KACCESS_HTTP_HEAD_MAX];
};
_Static_assert(__builtin_offsetof(struct http_head_buf, bytes) == sizeof(struct kaccess_http_head_event),
	       "http_head_buf is a kaccess_http_head_event");

#define HTTP_WINDOW 512   /* bytes of payload copied from user memory at a time */
#define HTTP_SEGMENTS 8   /* iovec entries followed; bytes beyond are counted, not read */

/* The parser's working memory for one read or write. */
struct http_scratch {
	__u8 data[HTTP_WINDOW];
	__u64 seg_base[HTTP_SEGMENTS];
	__u64 seg_len[HTTP_SEGMENTS];
	__u64 seg_off;             /* position in the current segment */
	__u64 left;                /* bytes of the call not parsed yet */
	__u64 now_ns;
	__u64 call_ns;             /* HTTP/2: the call's duration, for the stream of its first byte */
	__u32 nseg, seg_idx;
	__u32 win_len, win_pos;    /* data[win_pos..win_len) are the next bytes */
	__u32 error;               /* enum http_error */
	__u32 is_request;
	__u32 h2_call;             /* enum h2_call_state (bpf/http2.bpf.h): whose the call is */
	__u32 h2_call_unused;      /* explicit padding */
	/* access-log records: where the current request's first bytes are */
	__u64 head_addr;
	__u64 head_avail;
	struct http_head_buf head;
	/* a struct kaccess_http_endpoint_event with its text, sent exact-size */
	__u32 event_type;
	__u32 event_len;
	__u64 event_endpoint;
	char event_text[HTTP_ENDPOINT_BUF];
	/* zeroed templates to insert from (too big for the stack); only the
	 * fields named are ever written: fresh.bucket, and fresh_conn's agg,
	 * ports, sk and conn_start_ns (all set for every insert) */
	struct kaccess_http_value fresh;
	struct http_conn fresh_conn;
	/* HTTP/2: the call's header pieces and stream ends, templates */
	struct h2_batch_buf h2_batch;
	struct h2_conn fresh_h2;
	struct kaccess_h2_sizes fresh_stream;
};

/*
 * http_scratch: one struct http_scratch per CPU (BPF's stack is 512 bytes).
 * Size: 5.0 KiB per CPU. Not pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct http_scratch);
} http_scratch SEC(".maps") __weak;

/* ---- L2-L4 (bpf/l24.bpf.c) --------------------------------------------- */

/*
 * A transmit between net_dev_queue and net_dev_xmit. Without a qdisc queue
 * the three run in one call on one CPU with bottom halves off, so a per-CPU
 * slot holds the window; a packet a qdisc queues moves to xmit_queued.
 */
struct xmit_window {
	__u64 skb;             /* the sk_buff's address: identity only, never read */
	__u64 queued_ns;       /* net_dev_queue */
	__u64 start_xmit_ns;   /* net_dev_start_xmit; 0 before it */
	__u32 enqueued;        /* a qdisc queued it on the way */
	__u32 netfilter_count; /* netfilter: hooks with rules it traversed */
	struct kaccess_agg_key agg;
	__u64 syn_sk;          /* a connecting client's SYN: its socket (forwarded_syns); else 0 */
	/* netfilter links: from the packet's IP output (struct nf_egress) */
	__u64 l3_start_ns;     /* LOCAL_OUT's first hook; 0 without links */
	__u64 l3_end_ns;       /* qdisc_enqueue: L3 ends where the qdisc takes over */
	__u64 l3_local_ns, l3_output_ns, netfilter_ns;
	/* without links: the write's L4 start to net_dev_queue; 0: not sent by a write of its socket */
	__u64 egress_ns;
};

/* A sent packet between LOCAL_OUT's first hook and net_dev_queue (one call, one CPU). */
struct nf_egress {
	__u64 skb;
	__u64 l3_start_ns;
	__u64 hook_start_ns;   /* the current hook's first program */
	__u64 local_ns, output_ns, netfilter_ns;
	__u32 netfilter_count;
	__u32 pad;
};

/* What a received packet's hooks add to its row: PRE_ROUTING's and LOCAL_IN's windows. */
struct nf_ingress_hooks {
	__u64 rcv_ns, local_ns, netfilter_ns;
	__u32 netfilter_count;
	__u32 pad;
};

/* A received packet from PRE_ROUTING's first hook to tcp_probe (one softirq, one CPU). */
struct nf_ingress {
	__u64 skb;
	__u64 l3_start_ns;
	__u64 local_in_ns;     /* LOCAL_IN's first hook */
	__u64 hook_start_ns;
	struct nf_ingress_hooks hooks;
};

#define XMIT_WINDOW_SLOTS 4 /* transmits nested on one CPU (tunnels) */

/* Per-CPU transmit state; also the neighbour update in progress on this CPU. */
struct l24_cpu {
	struct xmit_window xmit[XMIT_WINDOW_SLOTS];
	__u32 xmit_next;       /* slot the next net_dev_queue takes */
	__u32 resolved_conn;   /* a tracked packet left during neigh_update: agg below */
	__u64 updating_neigh;  /* neigh_update .. neigh_update_done */
	struct kaccess_agg_key resolved_agg;
	__u64 resolved_syn_sk; /* ...and it was a connecting client's SYN: its socket; else 0 */
	__u64 received_skb;    /* the last netif_receive_skb on this CPU */
	__u64 received_ns;
	__u64 probed_sk;       /* the last tcp_probe of a tracked data segment */
	__u32 probed_seq;      /* its first sequence number */
	__u32 probed_slot;     /* its stamp in the socket's l24_sock.rx */
	struct nf_egress egress;
	struct nf_ingress ingress;
};

/* l24_cpu: one struct l24_cpu per CPU (656 bytes each). Not pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct l24_cpu);
} l24_cpu SEC(".maps") __weak;

/*
 * A received packet's hook windows, kept past its softirq for TCP's
 * backlog: a segment that arrives while its reader holds the socket lock
 * reaches TCP (tcp_probe) only at release_sock, when the per-CPU ingress
 * slot holds another packet. nf_last files every packet's windows at
 * LOCAL_IN in the slot its address picks; tcp_probe takes them from there
 * when its CPU's ingress is another packet's. `skb` is cleared before and
 * written after the rest, and checked again after a copy (x86-64 keeps
 * stores in order). A packet whose slot was taken by another one in the
 * meantime counts as l24_hooks_unseen.
 */
struct nf_ingress_done {
	__u64 skb;
	struct nf_ingress_hooks hooks;
};

#define NF_INGRESS_DONE_SLOTS 1024

/* nf_ingress_done: NF_INGRESS_DONE_SLOTS slots, by packet address (40 KiB). Not pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, NF_INGRESS_DONE_SLOTS);
	__type(key, __u32);
	__type(value, struct nf_ingress_done);
} nf_ingress_done SEC(".maps") __weak;

/* sk_buffs are 256-byte slab objects: the address's low bits say nothing. */
static __always_inline __u32 nf_ingress_done_slot(__u64 skb)
{
	return (__u32)((skb >> 8) ^ (skb >> 18)) & (NF_INGRESS_DONE_SLOTS - 1);
}

/*
 * The fields of struct kaccess_agg_value (same names) that every read,
 * write and packet adds to, summed per CPU before they reach a row: see
 * struct agg_combine.
 */
struct agg_sums {
	__u64 read_count, read_duration_ns_sum, read_bytes;
	__u64 write_count, write_duration_ns_sum, write_bytes, write_l4_duration_ns_sum;
	__u64 write_packets, write_packet_bytes;
	__u64 write_l2_duration_ns_sum, write_l2_enter_queue_count;
	__u64 write_l2_ready_send_duration_ns_sum, write_l2_device_send_duration_ns_sum;
	__u64 write_l3_duration_ns_sum, write_l3_local_duration_ns_sum, write_l3_output_duration_ns_sum;
	__u64 write_netfilter_count, write_netfilter_duration_ns_sum;
	__u64 read_packets, read_packet_bytes;
	__u64 read_l4_duration_ns_sum, read_l3_duration_ns_sum;
	__u64 read_l2_to_queue_duration_ns_sum, read_l2_from_queue_duration_ns_sum;
	__u64 read_l3_rcv_duration_ns_sum, read_l3_local_duration_ns_sum;
	__u64 read_netfilter_count, read_netfilter_duration_ns_sum;
	__u64 write_egress_packets, write_egress_duration_ns_sum;
};

/*
 * Write combining: one row key's sums of one bucket on this CPU. A read,
 * write or packet adds here with plain adds instead of finding its row in
 * the hash and adding atomically; the sums move to the row when the slot
 * is needed for another key or bucket, and when the shipper runs
 * agg_flush_cpu on every CPU before each drain.
 */
struct agg_combine {
	struct kaccess_agg_key agg;
	__u64 bucket;          /* 0: slot free */
	__u64 bucket_end_ns;   /* monotonic: the bucket's end, as agg_row computes it */
	struct agg_sums sums;
};

#define AGG_COMBINE_SLOTS 4 /* row keys combined at once per CPU */

/*
 * Per-CPU combining state. busy: a program (or the flush) is changing the
 * slots; one that interrupted it (a softirq over a reader's copy) adds to
 * `nested` instead and moves that to its row at once.
 */
struct agg_cpu {
	__u32 busy;
	__u32 nested_depth;    /* nested sums in use */
	__u32 next;            /* the slot a new key takes when none is free */
	__u32 pad;
	struct agg_combine combine[AGG_COMBINE_SLOTS];
	struct agg_sums nested[2]; /* process context, then a softirq over it */
};

/* agg_cpu: one struct agg_cpu per CPU (1.5 KiB each). Not pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct agg_cpu);
} agg_cpu SEC(".maps") __weak;

/*
 * xmit_queued: key = sk_buff address, value = struct xmit_window: tracked
 * packets a qdisc holds between qdisc_enqueue and net_dev_start_xmit.
 * LRU, so a packet the qdisc drops is forgotten. Size: 8192 (1.50 MiB);
 * one entry when `l24 = off`. Not pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct xmit_window);
} xmit_queued SEC(".maps") __weak;

/* forwarded_syns key: a connecting client's own address and port. */
struct forwarded_syn_key {
	__u8 addr[KACCESS_ADDR_LEN]; /* v4-mapped for IPv4 */
	__u16 port;                  /* host byte order */
	__u8 pad[6];
};

/*
 * A connecting client's SYN, until a copy of it forwarded through the
 * node's namespace (or the handshake's end) tells where it really went.
 * What the SYN itself cost waits here, so that it is filed under that peer.
 */
struct forwarded_syn {
	__u64 sk;                  /* the client's socket: its conn_table key */
	__u32 seq_be;              /* the SYN's sequence number: a forwarded copy carries it too */
	__u32 sent_bytes;          /* net_dev_xmit's skb_len, once the driver took the SYN */
	__u64 sent_ns;             /* net_dev_xmit of the SYN; 0: not sent, or already counted */
	__u64 resolve_mac_ns;      /* the neighbour resolution the SYN waited for; 0: none */
	struct xmit_window window; /* the SYN's transmit, counted when its peer is known */
};

/*
 * forwarded_syns: key = struct forwarded_syn_key, value = struct
 * forwarded_syn. Written by net_dev_queue when a tracked client's SYN
 * leaves its socket, by net_dev_xmit (the SYN's transmit) and by
 * neigh_update_done (a resolution the SYN waited for). Read and
 * deleted by net_dev_queue when the SYN leaves a device again without a
 * socket (forwarded: a DNAT in the node's PREROUTING shows there), or by
 * the connect's end (bpf/connections.bpf.c). Live entries are counted in
 * forwarded_syns_count, so forwarded packets are looked at only while a
 * connect is pending. LRU: an entry evicted leaves the count one high
 * (forwarded SYNs are then parsed needlessly), never low. Size: 4096
 * pending connects, 152 B values: 0.94 MiB; one entry when `l24 = off`.
 * Not pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct forwarded_syn_key);
	__type(value, struct forwarded_syn);
} forwarded_syns SEC(".maps") __weak;

/* Entries forwarded_syns holds (inserted minus deleted): 0 makes forwarded packets free. */
__s64 forwarded_syns_count __weak = 0;

/*
 * A received data segment of a tracked connection, until a reader copies it.
 * The segment is known by its first sequence number (TCP_SKB_CB(skb)->seq,
 * the same at tcp_probe and at the copy, and unchanged when later segments
 * are merged into it), not by its sk_buff's address, which a segment merged
 * away frees for the next one. Times before and after TCP's are kept as
 * deltas from it; 0 means not seen.
 */
struct rx_stamp {
	__u32 seq;
	__u32 received_before_ns; /* tcp_ns - netif_receive_skb; 0: processed from the backlog */
	__u64 tcp_ns;          /* tcp_probe: TCP starts on it; 0: a free slot */
	__u32 queued_after_ns;    /* sk_data_ready - tcp_ns; 0 before it */
	__u32 l3_before_ns;       /* netfilter links: tcp_ns - PRE_ROUTING's first hook */
	__u32 local_in_before_ns; /* netfilter links: tcp_ns - LOCAL_IN's first hook */
	__u32 pad;
};

#define RX_STAMP_SLOTS 8 /* unread data segments timed per socket; older ones are forgotten */
#define L24_CACHE_LINE 64

/*
 * Per-socket L2-L4 state of a tracked connection, kept with the socket
 * itself so the packet path finds it without a hash lookup: the row key
 * (every program reads it, nothing writes it once set) and the ring of
 * stamps (written by the receive softirq, read by the reader). The
 * softirq and the reader usually run on different CPUs, so the stamps'
 * lines move between them on every segment; nothing else should. The
 * kernel puts local-storage data 8 (or, behind an allocator header, 16)
 * bytes into a line, so the key's line ends with the first stamp's bytes.
 *
 * What only one side writes, the softirq's cursor and the reader's, has
 * a storage of its own (struct l24_rx_cursor, struct l24_rx_reader): even
 * a line apart in here, whichever side touched the stamps next to it had
 * the other's line pulled into its caches, and the owner paid a coherence
 * miss to get it back on most segments (measured under wrk: tcp_probe 191
 * -> 173 ns, the reader's copy 340 -> 309 ns, sk_data_ready 95 -> 117 ns,
 * which now waits for the stamp's line instead).
 */
struct l24_sock {
	/* read-mostly */
	struct kaccess_agg_key agg; /* conn->agg once final (established, accepted) */
	__u32 agg_ready;            /* agg is set: the socket is tracked */
	__u8 pad_agg[L24_CACHE_LINE - sizeof(struct kaccess_agg_key) - sizeof(__u32)];
	/* written by the receive softirq, read by the reader */
	struct rx_stamp rx[RX_STAMP_SLOTS];
};
_Static_assert(sizeof(struct l24_sock) == L24_CACHE_LINE + RX_STAMP_SLOTS * sizeof(struct rx_stamp),
	       "l24_sock: a line for the key, then the stamps");

/*
 * l24_socks: socket-local storage (BPF_MAP_TYPE_SK_STORAGE), value = struct
 * l24_sock. Created by tcp_probe at a tracked connection's first received
 * segment; read by net_dev_queue, sk_data_ready and the reader's copy;
 * freed by the kernel with the socket. Not preallocated: 320 B (512 with
 * the kernel's storage header) per tracked socket that received data.
 * Not pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct l24_sock);
} l24_socks SEC(".maps") __weak;

/* The receive softirq's cursor: the ring slot the socket's next stamp takes. */
struct l24_rx_cursor {
	__u32 rx_next;
};

/*
 * l24_rx_cursors: socket-local storage, value = struct l24_rx_cursor.
 * Created by tcp_probe with the socket's first stamp; freed with the
 * socket. Not preallocated: 4 B (192 with the kernel's storage header)
 * per tracked socket that received data. Not pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct l24_rx_cursor);
} l24_rx_cursors SEC(".maps") __weak;

/* The reader's cursor in the ring, and the segment it copied last. */
struct l24_rx_reader {
	__u32 rx_read;    /* slot after the last stamp a copy took: the next one, usually */
	__u32 copied_seq; /* the last segment copied: its rest is not timed again */
	__u32 copied_any; /* copied_seq is set */
};

/*
 * l24_rx_readers: socket-local storage, value = struct l24_rx_reader.
 * Created by the reader's first copy from a tracked socket with stamps;
 * freed with the socket. Not preallocated: 12 B (192 with the kernel's
 * storage header) per tracked socket that was read. Not pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct l24_rx_reader);
} l24_rx_readers SEC(".maps") __weak;

/*
 * agent_socks: socket-local storage, value = a byte: the sockets kaccess's
 * own process connects, marked when the connect starts, so that their
 * handshake's end (in softirq, where no task says whose they are) does not
 * adopt them. Freed with the socket. Not preallocated: one per connection
 * kaccess makes (to OAP, to the API server). Not pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_SK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u8);
} agent_socks SEC(".maps") __weak;

/*
 * neigh_waits: key = struct neighbour address, value = when it started to
 * resolve (neigh_create, or neigh_event_send_done leaving it INCOMPLETE).
 * Consumed by neigh_update_done. Size: 1024 (LRU). Not pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 1024);
	__type(key, __u64);
	__type(value, __u64);
} neigh_waits SEC(".maps") __weak;

#endif /* KACCESS_MAPS_MAPS_BPF_H */
