/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * HTTP/2 with prior knowledge (h2c) on tracked connections: each direction
 * is cut into frames on the read/write path, with the same payload cursor
 * as the HTTP/1.x parser (http_scratch).
 *
 * A connection is HTTP/2 when the client's first bytes are the connection
 * preface "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", or (server side, where the
 * server's SETTINGS may be written before the preface is read) when the
 * server's first bytes are a SETTINGS frame header and the client's first
 * bytes then are the preface. The first frame of each direction must be a
 * SETTINGS frame; anything else stops parsing as a parse failure.
 *
 * Or it becomes HTTP/2 by upgrade (RFC 7540 section 3.2): an HTTP/1.1
 * request answered "101 Switching Protocols" leaves the HTTP/1.x parser
 * in KACCESS_HTTP_SWITCHING, and the next bytes decide: the client's
 * preface or the server's SETTINGS (in the same call as the 101 or a later
 * one) make it HTTP/2, with the waiting request as stream 1 (its endpoint,
 * start, request sizes and number from HTTP/1.1, the 101's bytes in its
 * response headers); anything else is another protocol, and the 101
 * answered the request.
 *
 * What the kernel keeps, per stream (a slot in its connection's h2_conns
 * entry, or h2_streams when that slot is held): the time of the call with
 * the request's first HEADERS byte, the header block bytes (HPACK, without
 * padding and priority fields) and DATA bytes (without padding) of each
 * direction. The stream's exchange ends with the response's END_STREAM or
 * an RST_STREAM from either side: its numbers go to userspace in one
 * record. The header blocks themselves (HEADERS, CONTINUATION and
 * PUSH_PROMISE fragments) go to userspace in pieces of at most
 * KACCESS_H2_PIECE_MAX bytes, in order, because HPACK is stateful: only an
 * inflater that saw every block of its direction decodes the next one.
 * Userspace decodes :method, :path and :status and completes the exchange
 * (shipper/http2/). Nothing here needs string compares or the HPACK tables.
 */
#ifndef KACCESS_BPF_HTTP2_BPF_H
#define KACCESS_BPF_HTTP2_BPF_H

#include "http.bpf.h"

#define H2_PREFACE_LEN 24
#define H2_FRAME_HEADER_LEN 9
#define H2_DEFAULT_MAX_FRAME 16384 /* SETTINGS_MAX_FRAME_SIZE's initial value */
/* "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" as three little-endian words */
#define H2_PREFACE_0 0x5448202a20495250ULL
#define H2_PREFACE_1 0x0a0d302e322f5054ULL
#define H2_PREFACE_2 0x0a0d0a0d4d530a0dULL

enum h2_frame_type {
	H2_DATA = 0,
	H2_HEADERS = 1,
	H2_PRIORITY = 2,
	H2_RST_STREAM = 3,
	H2_SETTINGS = 4,
	H2_PUSH_PROMISE = 5,
	H2_PING = 6,
	H2_WINDOW_UPDATE = 8,
	H2_CONTINUATION = 9,
};

enum h2_frame_flag {
	H2_F_END_STREAM = 0x1,
	H2_F_ACK = 0x1,          /* SETTINGS */
	H2_F_END_HEADERS = 0x4,
	H2_F_PADDED = 0x8,
	H2_F_PRIORITY = 0x20,
};

enum h2_phase {
	H2_PH_PREFACE = 0,       /* request direction, before the client's preface */
	H2_PH_FIRST_HEADER,      /* the header of the first frame: must be SETTINGS */
	H2_PH_FRAME_HEADER,
	H2_PH_PAYLOAD,
};

struct h2_walk {
	struct h2_conn *hc;
	struct http_scratch *s;
	__u64 sk;
	__u16 local_port, remote_port; /* the connection's (kaccess_conn): for stream-end records */
};

/*
 * Bytes before a frame's content: pad length, promised stream id, priority.
 * PADDED means something only on the three types that define it (flags a
 * type does not define are ignored, as RFC 9113 asks).
 */
static __always_inline bool h2_padded(__u8 type, __u8 flags)
{
	return (flags & H2_F_PADDED) &&
	       (type == H2_DATA || type == H2_HEADERS || type == H2_PUSH_PROMISE);
}

static __always_inline __u32 h2_prefix_len(__u8 type, __u8 flags)
{
	__u32 len = h2_padded(type, flags) ? 1 : 0;

	if (type == H2_HEADERS && (flags & H2_F_PRIORITY))
		len += 5;
	if (type == H2_PUSH_PROMISE)
		len += 4;
	return len;
}

/*
 * Read `len` bytes at the cursor when its segment holds them: 0, or
 * -ENODATA when fewer are left there (a call's first segment, or the rest
 * of the one holding a 101's end).
 */
static __always_inline int h2_read_at_cursor(struct http_scratch *s, void *dst, __u32 len)
{
	__u32 idx = s->seg_idx;

	if (idx >= s->nseg || idx >= HTTP_SEGMENTS || s->left < len ||
	    s->seg_len[idx] < s->seg_off + len)
		return -61; /* ENODATA */
	return bpf_probe_read_user(dst, len, (void *)(s->seg_base[idx] + s->seg_off));
}

/* Whether the bytes at the cursor are the client's connection preface. */
static __always_inline bool h2_preface_at_start(struct http_scratch *s)
{
	__u64 words[3];

	if (h2_read_at_cursor(s, words, sizeof(words)))
		return false;
	return words[0] == H2_PREFACE_0 && words[1] == H2_PREFACE_1 && words[2] == H2_PREFACE_2;
}

/* Whether the bytes at the cursor are a SETTINGS frame header on stream 0 (a server's first frame). */
static __always_inline bool h2_settings_at_start(struct http_scratch *s)
{
	__u8 h[H2_FRAME_HEADER_LEN];
	__u32 len;

	if (h2_read_at_cursor(s, h, sizeof(h)))
		return false;
	len = ((__u32)h[0] << 16) | ((__u32)h[1] << 8) | h[2];
	return h[3] == H2_SETTINGS && h[4] == 0 && !h[5] && !h[6] && !h[7] && !h[8] && len % 6 == 0;
}

/*
 * Whether the call starts with a frame header that a connection already
 * open before kaccess started may plausibly send at a frame boundary: a
 * known type with a length and stream that fit it, at most the default
 * maximum frame size. Anything else leaves an adopted connection alone.
 */
static __always_inline bool h2_frame_at_start(struct http_scratch *s, __u64 bytes, bool is_request)
{
	__u8 h[H2_FRAME_HEADER_LEN];
	__u32 len, stream_id;

	if (!s->nseg || bytes < H2_FRAME_HEADER_LEN || s->seg_len[0] < H2_FRAME_HEADER_LEN ||
	    bpf_probe_read_user(h, sizeof(h), (void *)s->seg_base[0]))
		return false;
	len = ((__u32)h[0] << 16) | ((__u32)h[1] << 8) | h[2];
	stream_id = ((__u32)h[5] << 24) | ((__u32)h[6] << 16) | ((__u32)h[7] << 8) | h[8];
	if (len > H2_DEFAULT_MAX_FRAME || (stream_id & 0x80000000))
		return false;
	switch (h[3]) {
	case H2_DATA:
		return stream_id && !(h[4] & ~(H2_F_END_STREAM | H2_F_PADDED));
	case H2_HEADERS:
		return stream_id && (!is_request || (stream_id & 1)) &&
		       !(h[4] & ~(H2_F_END_STREAM | H2_F_END_HEADERS | H2_F_PADDED | H2_F_PRIORITY));
	case H2_RST_STREAM:
		return stream_id && len == 4;
	case H2_SETTINGS:
		return !stream_id && len % 6 == 0;
	case H2_PING:
		return !stream_id && len == 8;
	case H2_WINDOW_UPDATE:
		return len == 4;
	}
	return false;
}

/*
 * Consume up to `want` bytes of the call: from the window when it holds
 * them, else up to the end of the current segment. The count consumed.
 */
static __always_inline __u64 h2_consume(struct http_scratch *s, __u64 want)
{
	__u32 idx = s->seg_idx;
	__u64 n = want, avail;

	if (n > s->left)
		n = s->left;
	if (s->win_pos < s->win_len && n <= s->win_len - s->win_pos) {
		http_window_consume(s, n);
		return n;
	}
	if (idx >= s->nseg || idx >= HTTP_SEGMENTS)
		return 0;
	avail = s->seg_len[idx] - s->seg_off;
	if (n > avail)
		n = avail;
	s->seg_off += n;
	s->left -= n;
	if (s->seg_off >= s->seg_len[idx]) {
		s->seg_idx = idx + 1;
		s->seg_off = 0;
	}
	s->win_len = s->win_pos = 0;
	return n;
}

/* The slot stream `stream_id` has, or would have, in its connection's entry. */
static __always_inline struct h2_stream_slot *h2_slot(struct h2_conn *hc, __u32 stream_id)
{
	return &hc->slots[(stream_id >> 1) & (H2_STREAM_SLOTS - 1)];
}

/* Whether `slot` holds stream `stream_id` (0, the connection's own, never has a slot). */
static __always_inline bool h2_slot_holds(struct h2_stream_slot *slot, __u32 stream_id)
{
	return stream_id && slot->stream_id == stream_id;
}

/* Stream `stream_id` in h2_streams, where a stream goes whose slot was held. */
static __always_inline struct kaccess_h2_sizes *h2_table_stream(struct h2_walk *walk,
								 __u32 stream_id)
{
	struct kaccess_h2_stream_key key = {
		.sk = walk->sk,
		.conn_start_ns = walk->hc->conn_start_ns,
		.stream_id = stream_id,
	};

	if (!walk->hc->table_streams)
		return NULL;
	return bpf_map_lookup_elem(&h2_streams, &key);
}

/* An open (or reset, not yet forgotten) stream's numbers: NULL when not tracked. */
static __always_inline struct kaccess_h2_sizes *h2_stream(struct h2_walk *walk, __u32 stream_id)
{
	struct h2_stream_slot *slot = h2_slot(walk->hc, stream_id);

	if (h2_slot_holds(slot, stream_id))
		return &slot->sizes;
	return h2_table_stream(walk, stream_id);
}

/*
 * Whose a read or write call is (struct kaccess_http_calls): the stream of
 * the frame its first byte is in, in the call's direction.
 * - A call that begins inside a frame's payload (prefix, content or
 *   padding) is that frame's stream's, known at once.
 * - A call that begins at or inside a frame header is the stream's that
 *   the header names, known at the header's ninth byte; when that byte
 *   comes in a later call, the calls that ended inside the header wait in
 *   the direction's h2_parser (header_calls) until it does.
 * - A call that begins with the client's preface is no stream's: the first
 *   frame after the preface is the SETTINGS the parser demands there.
 * - Frames on stream 0 (SETTINGS, PING, WINDOW_UPDATE, GOAWAY) and streams
 *   not tracked (never opened, evicted, ended or reset) take it nowhere.
 * The stream is counted at the first lookup the parser makes of it for the
 * frame's bytes (HEADERS and DATA need no lookup of their own), else at the
 * frame's end or the call's: always before an END_STREAM or RST_STREAM in
 * that frame ends the stream and its record copies the counts.
 */
enum h2_call_state {
	H2_CALL_SETTLED = 0,     /* counted, or no stream's: nothing left to do */
	H2_CALL_IN_HEADER,       /* began at or in a frame header whose stream is not known yet */
	H2_CALL_IN_FIRST_FRAME,  /* its first frame's stream is known; not counted yet */
};

/* `calls` calls of `call_ns` in all, in the direction `is_request`, on a stream (NULL: none). */
static __always_inline void h2_calls_add(struct kaccess_h2_sizes *sizes, bool is_request,
					 __u32 calls, __u64 call_ns)
{
	if (!sizes || sizes->reset) /* a reset stream's frames still in flight are no exchange's */
		return;
	if (is_request) {
		sizes->calls.request_calls += calls;
		sizes->calls.request_call_ns += call_ns;
	} else {
		sizes->calls.response_calls += calls;
		sizes->calls.response_call_ns += call_ns;
	}
}

/*
 * The current frame's stream, looked up for its bytes: when the frame is
 * the call's first, the call is the stream's, counted with this lookup.
 */
static __always_inline struct kaccess_h2_sizes *h2_frame_stream(struct h2_walk *walk,
								 __u32 stream_id)
{
	struct kaccess_h2_sizes *sizes = h2_stream(walk, stream_id);
	struct http_scratch *s = walk->s;

	if (s->h2_call == H2_CALL_IN_FIRST_FRAME) {
		s->h2_call = H2_CALL_SETTLED;
		h2_calls_add(sizes, s->is_request, 1, s->call_ns);
	}
	return sizes;
}

/* The call's first frame ends, or the call does inside it, before any lookup of its stream. */
static __noinline int h2_call_settle(struct h2_walk *walk, __u32 stream_id)
{
	if (!walk->hc || !walk->s)
		return 0;
	h2_frame_stream(walk, stream_id);
	return 0;
}

/* The frame header the direction's last calls ended inside is complete: their stream is known. */
static __noinline int h2_header_calls_settle(struct h2_walk *walk, struct h2_parser *p)
{
	if (!walk->hc || !walk->s)
		return 0;
	if (p->stream_id)
		h2_calls_add(h2_stream(walk, p->stream_id), walk->s->is_request, p->header_calls,
			     p->header_call_ns);
	p->header_calls = 0;
	p->header_call_ns = 0;
	return 0;
}

/* A call's walk begins: inside a frame's payload, the call's stream is the frame's. */
static __always_inline void h2_call_begin(struct http_scratch *s, struct h2_parser *p)
{
	if (s->h2_call == H2_CALL_IN_HEADER && p->phase == H2_PH_PAYLOAD)
		s->h2_call = p->stream_id ? H2_CALL_IN_FIRST_FRAME : H2_CALL_SETTLED;
}

/* A call's walk ended with its first frame, or the header naming it, not complete yet. */
static __always_inline void h2_call_end(struct h2_walk *walk, struct h2_parser *p)
{
	struct http_scratch *s = walk->s;

	if (s->h2_call == H2_CALL_IN_FIRST_FRAME) {
		h2_call_settle(walk, p->stream_id);
	} else if (s->h2_call == H2_CALL_IN_HEADER) {
		p->header_calls++;
		p->header_call_ns += s->call_ns;
	}
	s->h2_call = H2_CALL_SETTLED;
}

/* Put `sizes` of `stream_id` in h2_streams; `flags` BPF_NOEXIST or BPF_ANY. */
static __always_inline void h2_table_put(struct h2_walk *walk, __u32 stream_id,
					 struct kaccess_h2_sizes *sizes, __u64 flags)
{
	struct kaccess_h2_stream_key key = {
		.sk = walk->sk,
		.conn_start_ns = walk->hc->conn_start_ns,
		.stream_id = stream_id,
	};

	if (!bpf_map_update_elem(&h2_streams, &key, sizes, flags))
		walk->hc->table_streams++;
}

/*
 * A request's HEADERS opens its stream (trailers find it open): in its
 * slot when that is free, else in h2_streams. A reset stream in the slot
 * moves to h2_streams (its peer's frames in flight still find it there).
 */
static __always_inline void h2_stream_open(struct h2_walk *walk, __u32 stream_id)
{
	struct h2_stream_slot *slot = h2_slot(walk->hc, stream_id);
	struct http_scratch *s = walk->s;

	if (h2_slot_holds(slot, stream_id) || h2_table_stream(walk, stream_id))
		return; /* request trailers: a second block on an open stream */
	s->fresh_stream.start_ns = s->now_ns;
	if (slot->stream_id && !slot->sizes.reset) {
		h2_table_put(walk, stream_id, &s->fresh_stream, BPF_NOEXIST);
		return;
	}
	if (slot->stream_id)
		h2_table_put(walk, slot->stream_id, &slot->sizes, BPF_ANY);
	__builtin_memcpy(&slot->sizes, &s->fresh_stream, sizeof(slot->sizes));
	slot->stream_id = stream_id;
}

/* A stream is forgotten: its slot freed, or its h2_streams entry deleted. */
static __always_inline void h2_stream_forget(struct h2_walk *walk, __u32 stream_id)
{
	struct kaccess_h2_stream_key key = {
		.sk = walk->sk,
		.conn_start_ns = walk->hc->conn_start_ns,
		.stream_id = stream_id,
	};
	struct h2_stream_slot *slot = h2_slot(walk->hc, stream_id);

	if (h2_slot_holds(slot, stream_id)) {
		slot->stream_id = 0;
		return;
	}
	if (!bpf_map_delete_elem(&h2_streams, &key) && walk->hc->table_streams)
		walk->hc->table_streams--;
}

/*
 * Send the call's gathered HTTP/2 records as one ring-buffer record. If the
 * ring buffer refuses it, its pieces and stream ends count as lost as they
 * would have one by one, and the direction's next piece says so (GAP).
 */
static __noinline int h2_batch_flush(struct h2_walk *walk)
{
	struct http_scratch *s = walk->s;
	struct h2_batch_buf *batch;
	struct h2_parser *p;
	__u32 len;

	if (!s || !walk->hc)
		return 0;
	batch = &s->h2_batch;
	len = batch->len;
	if (!len)
		return 0;
	if (len > KACCESS_H2_BATCH_MAX)
		len = KACCESS_H2_BATCH_MAX;
	batch->type = KACCESS_EVENT_H2_BATCH;
	if (bpf_ringbuf_output(&events, batch, sizeof(struct kaccess_h2_batch_event) + len,
			       ringbuf_output_flags(sizeof(struct kaccess_h2_batch_event) + len))) {
		count_losses(KACCESS_CTR_H2_HEADERS_LOST, batch->pieces);
		count_losses(KACCESS_CTR_H2_STREAM_LOST, batch->ends);
		p = s->is_request ? &walk->hc->req : &walk->hc->resp;
		if (batch->pieces)
			p->gap = 1;
	}
	batch->len = 0;
	batch->pieces = 0;
	batch->ends = 0;
	return 0;
}

/* Where the next record of `bytes` goes in the batch, sent first if it would not fit. */
static __always_inline __u32 h2_batch_room(struct h2_walk *walk, __u32 bytes)
{
	__u32 off = walk->s->h2_batch.len;

	if (off + bytes > KACCESS_H2_BATCH_MAX) {
		h2_batch_flush(walk);
		off = 0;
	}
	barrier_var(off); /* keep the mask: the verifier's bound of the offset */
	return off & (KACCESS_H2_BATCH_MAX - 1);
}

/* A record of `bytes` at `off` is complete: the next one starts 8-aligned after it. */
static __always_inline void h2_batch_commit(struct http_scratch *s, __u32 off, __u32 bytes)
{
	s->h2_batch.len = off + ((bytes + 7) & ~7U);
}

/* The exchange of `stream_id` ends: its numbers to userspace, the stream forgotten. */
static __noinline int h2_stream_end(struct h2_walk *walk, __u32 stream_id, __u32 outcome)
{
	struct http_scratch *s = walk->s;
	struct kaccess_h2_stream_event *event;
	struct kaccess_h2_sizes *sizes = h2_stream(walk, stream_id);
	__u32 off;

	if (!sizes) {
		/* a client stream's response without its request: evicted or never tracked */
		if (outcome == KACCESS_H2_COMPLETE && (stream_id & 1))
			count_loss(KACCESS_CTR_H2_STREAM_LOST);
		return 0;
	}
	if (sizes->reset) { /* counted at its reset; the peer's frames in flight end here */
		h2_stream_forget(walk, stream_id);
		return 0;
	}
	off = h2_batch_room(walk, sizeof(*event));
	event = (void *)&s->h2_batch.bytes[off];
	event->type = KACCESS_EVENT_H2_STREAM_END;
	event->outcome = outcome;
	event->sk = walk->sk;
	event->conn_start_ns = walk->hc->conn_start_ns;
	event->stream_id = stream_id;
	event->local_port = walk->local_port;
	event->remote_port = walk->remote_port;
	event->end_ns = s->now_ns;
	event->bucket = (s->now_ns + wall_offset_ns) / bucket_ns;
	__builtin_memcpy(&event->agg, &walk->hc->agg, sizeof(event->agg));
	__builtin_memcpy(&event->sizes, sizes, sizeof(event->sizes));
	h2_batch_commit(s, off, sizeof(*event));
	s->h2_batch.ends++;
	/*
	 * A reset stream stays (in its slot until another stream needs it, or
	 * in the LRU) so that the other side's frames already on their way
	 * find it ended, rather than count as lost.
	 */
	if (outcome == KACCESS_H2_RESET)
		sizes->reset = 1;
	else
		h2_stream_forget(walk, stream_id);
	return 0;
}

/* A header block begins (HEADERS or PUSH_PROMISE). */
static __always_inline void h2_block_begin(struct h2_walk *walk, struct h2_parser *p)
{
	struct kaccess_h2_sizes *sizes;

	p->first_pending = 1;
	p->block_bytes = 0;
	p->end_stream = p->type == H2_HEADERS && (p->flags & H2_F_END_STREAM);
	if (p->type != H2_HEADERS)
		return; /* a promise is the pushing stream's, not an exchange of its own */
	if (walk->s->is_request) {
		h2_stream_open(walk, p->stream_id);
		return;
	}
	sizes = h2_frame_stream(walk, p->stream_id);
	if (sizes && !sizes->reset)
		sizes->response_blocks++;
}

/* Add a piece of the current header block to the call's batch; `flags` beyond FIRST/GAP/RESPONSE given. */
static __always_inline void h2_piece_send(struct h2_walk *walk, struct h2_parser *p, __u64 addr,
					  __u64 len, __u16 flags)
{
	struct http_scratch *s = walk->s;
	struct kaccess_h2_headers_event *piece;
	__u32 off;

	if (len > KACCESS_H2_PIECE_MAX)
		len = KACCESS_H2_PIECE_MAX;
	barrier_var(len);
	if (p->first_pending)
		flags |= KACCESS_H2_PIECE_FIRST;
	if (p->gap)
		flags |= KACCESS_H2_PIECE_GAP;
	if (!s->is_request)
		flags |= KACCESS_H2_PIECE_RESPONSE;
	off = h2_batch_room(walk, sizeof(*piece) + len);
	piece = (void *)&s->h2_batch.bytes[off];
	piece->type = KACCESS_EVENT_H2_HEADERS;
	piece->flags = flags;
	piece->len = len;
	piece->sk = walk->sk;
	piece->conn_start_ns = walk->hc->conn_start_ns;
	piece->stream_id = p->stream_id;
	piece->pad = 0;
	if (len && bpf_probe_read_user(piece->bytes, len, (void *)addr)) {
		p->gap = 1;
		count_loss(KACCESS_CTR_H2_HEADERS_LOST);
		return;
	}
	h2_batch_commit(s, off, sizeof(*piece) + len);
	s->h2_batch.pieces++;
	p->gap = 0;
	p->first_pending = 0;
}

/* Header block bytes of the current frame: up to the segment's end, as one piece. */
static __always_inline __u64 h2_block_bytes(struct h2_walk *walk, struct h2_parser *p,
					    __u64 content_left)
{
	struct http_scratch *s = walk->s;
	struct kaccess_h2_sizes *sizes;
	__u32 idx = s->seg_idx;
	__u64 n = content_left, avail;
	__u16 flags = 0;

	if (n > s->left)
		n = s->left;
	if (n > KACCESS_H2_PIECE_MAX)
		n = KACCESS_H2_PIECE_MAX;
	if (idx >= s->nseg || idx >= HTTP_SEGMENTS)
		return 0;
	avail = s->seg_len[idx] - s->seg_off;
	if (n > avail)
		n = avail;
	if (!n) {
		h2_consume(s, 0); /* an empty iovec entry: the next one */
		return 0;
	}
	if (n == content_left && (p->flags & H2_F_END_HEADERS))
		flags = KACCESS_H2_PIECE_LAST;
	if (p->block_bytes + n <= KACCESS_H2_BLOCK_MAX)
		h2_piece_send(walk, p, s->seg_base[idx] + s->seg_off, n, flags);
	else if (!p->gap) {
		p->gap = 1; /* the rest of the block is counted, not sent */
		count_loss(KACCESS_CTR_H2_HEADERS_LOST);
	}
	p->block_bytes += n;
	p->content_seen = 1;
	sizes = p->type == H2_PUSH_PROMISE ? NULL : h2_frame_stream(walk, p->stream_id);
	if (sizes) {
		if (s->is_request)
			sizes->request_header_bytes += n;
		else
			sizes->response_header_bytes += n;
	}
	return h2_consume(s, n);
}

/* DATA bytes of the current frame: counted and skipped. */
static __always_inline __u64 h2_data_bytes(struct h2_walk *walk, struct h2_parser *p,
					   __u64 content_left)
{
	__u64 n = h2_consume(walk->s, content_left);
	struct kaccess_h2_sizes *sizes;

	if (!n)
		return 0;
	sizes = h2_frame_stream(walk, p->stream_id);
	if (sizes) {
		if (walk->s->is_request)
			sizes->request_body_bytes += n;
		else
			sizes->response_body_bytes += n;
	}
	return n;
}

/* A frame's last payload byte (or its header, when it has no payload) went by. */
static __noinline int h2_frame_end(struct h2_walk *walk, struct h2_parser *p)
{
	if (!walk->hc || !walk->s)
		return 0;
	if (walk->s->h2_call == H2_CALL_IN_FIRST_FRAME) /* before an end copies the stream's counts */
		h2_frame_stream(walk, p->stream_id);
	p->phase = H2_PH_FRAME_HEADER;
	switch (p->type) {
	case H2_HEADERS:
	case H2_PUSH_PROMISE:
	case H2_CONTINUATION:
		if (!(p->flags & H2_F_END_HEADERS))
			return 0;
		if (!p->content_seen) /* the block ends in a frame without block bytes */
			h2_piece_send(walk, p, 0, 0, KACCESS_H2_PIECE_LAST);
		if (p->end_stream && !walk->s->is_request)
			h2_stream_end(walk, p->stream_id, KACCESS_H2_COMPLETE);
		return 0;
	case H2_DATA:
		if ((p->flags & H2_F_END_STREAM) && !walk->s->is_request)
			h2_stream_end(walk, p->stream_id, KACCESS_H2_COMPLETE);
		return 0;
	case H2_RST_STREAM:
		h2_stream_end(walk, p->stream_id, KACCESS_H2_RESET);
		return 0;
	}
	return 0;
}

/* The ninth byte of a frame header: what the frame is. */
static __always_inline int h2_frame_start(struct h2_walk *walk, struct h2_parser *p)
{
	__u8 *h = p->frame_header;
	__u32 len = ((__u32)h[0] << 16) | ((__u32)h[1] << 8) | h[2];
	__u32 stream_id = ((__u32)(h[5] & 0x7f) << 24) | ((__u32)h[6] << 16) | ((__u32)h[7] << 8) | h[8];
	bool first = p->phase == H2_PH_FIRST_HEADER;

	p->type = h[3];
	p->flags = h[4];
	p->stream_id = stream_id;
	p->frame_left = len;
	p->pad_left = 0;
	p->header_have = 0;
	p->content_seen = 0;
	p->prefix_left = h2_prefix_len(p->type, p->flags);
	p->phase = H2_PH_PAYLOAD;
	if (first && (p->type != H2_SETTINGS || stream_id || (p->flags & H2_F_ACK) || len % 6))
		return HTTP_ERR_NOT_HTTP;
	if (walk->s->h2_call == H2_CALL_IN_HEADER)
		walk->s->h2_call = stream_id ? H2_CALL_IN_FIRST_FRAME : H2_CALL_SETTLED;
	switch (p->type) {
	case H2_DATA:
	case H2_CONTINUATION:
		if (!stream_id)
			return HTTP_ERR_GRAMMAR;
		break;
	case H2_HEADERS:
	case H2_PUSH_PROMISE:
		if (!stream_id)
			return HTTP_ERR_GRAMMAR;
		h2_block_begin(walk, p);
		break;
	case H2_RST_STREAM:
		if (!stream_id || len != 4)
			return HTTP_ERR_GRAMMAR;
		break;
	}
	if (p->prefix_left > len)
		return HTTP_ERR_GRAMMAR;
	if (p->header_calls) /* after the switch: a request's HEADERS has opened its stream */
		h2_header_calls_settle(walk, p);
	if (!len)
		h2_frame_end(walk, p);
	return HTTP_OK;
}

/*
 * A whole frame header in one step when the window holds all 9 bytes of
 * it: true when taken, false to take it a byte per step (a header split
 * over calls or segments, or an empty window that could not be filled).
 * A step costs about 30 ns; a small request or response is two or three
 * frames a side.
 */
static __always_inline bool h2_header_whole(struct http_scratch *s, struct h2_parser *p)
{
	__u32 pos;

	if (p->header_have)
		return false;
	if (s->win_pos >= s->win_len && http_window_fill(s))
		return false; /* the byte path sees the same failure or retry */
	pos = s->win_pos;
	if (s->win_len < pos + H2_FRAME_HEADER_LEN || pos > HTTP_WINDOW - H2_FRAME_HEADER_LEN)
		return false;
	for (__u32 i = 0; i < H2_FRAME_HEADER_LEN; i++)
		p->frame_header[i] = s->data[http_window_index(pos + i)];
	http_window_consume(s, H2_FRAME_HEADER_LEN);
	p->header_have = H2_FRAME_HEADER_LEN;
	return true;
}

/* A frame header: whole, or one byte of it. */
static __always_inline int h2_header_byte(struct h2_walk *walk, struct h2_parser *p)
{
	int c;

	if (!h2_header_whole(walk->s, p)) {
		c = http_next_byte(walk->s);
		if (c == -2)
			return HTTP_OK;
		if (c < 0)
			return HTTP_ERR_NO_PAYLOAD;
		p->frame_header[p->header_have & 15] = c;
		if (++p->header_have < H2_FRAME_HEADER_LEN)
			return HTTP_OK;
	}
	return h2_frame_start(walk, p);
}

/* One byte of a frame's prefix; the first of a padded frame is its pad length. */
static __always_inline int h2_prefix_byte(struct h2_walk *walk, struct h2_parser *p)
{
	bool pad_length = h2_padded(p->type, p->flags) &&
			  p->prefix_left == h2_prefix_len(p->type, p->flags);
	int c = http_next_byte(walk->s);

	if (c == -2)
		return HTTP_OK;
	if (c < 0)
		return HTTP_ERR_NO_PAYLOAD;
	p->prefix_left--;
	p->frame_left--;
	if (pad_length)
		p->pad_left = c;
	if (p->pad_left > p->frame_left - p->prefix_left)
		return HTTP_ERR_GRAMMAR; /* more padding than payload */
	if (!p->frame_left)
		h2_frame_end(walk, p);
	return HTTP_OK;
}

/* A step in a frame's payload: its prefix, content or padding. */
static __always_inline int h2_payload_step(struct h2_walk *walk, struct h2_parser *p)
{
	struct http_scratch *s = walk->s;
	__u64 content = p->frame_left - p->pad_left, n;

	if (p->prefix_left)
		return h2_prefix_byte(walk, p);
	if (content) {
		if (p->type == H2_HEADERS || p->type == H2_CONTINUATION || p->type == H2_PUSH_PROMISE)
			n = h2_block_bytes(walk, p, content);
		else if (p->type == H2_DATA)
			n = h2_data_bytes(walk, p, content);
		else
			n = h2_consume(s, content);
	} else {
		n = h2_consume(s, p->pad_left);
		p->pad_left -= n;
	}
	if (!n)
		return s->seg_idx < s->nseg ? HTTP_OK : HTTP_ERR_NO_PAYLOAD;
	p->frame_left -= n;
	if (!p->frame_left)
		h2_frame_end(walk, p);
	return HTTP_OK;
}

/* A walk step: a frame header byte, a prefix byte, or a run of payload. 1 stops the walk. */
static __always_inline long h2_step_in(void *ctx, enum http_payload payload)
{
	struct h2_walk *walk = ctx;
	struct http_scratch *s = walk->s;
	struct h2_parser *p;
	int err;

	if (!walk->hc || !s || s->error || !s->left)
		return 1;
	p = s->is_request ? &walk->hc->req : &walk->hc->resp;
	if (payload == HTTP_PAYLOAD_NONE && p->phase != H2_PH_PREFACE)
		err = HTTP_ERR_NO_PAYLOAD; /* what reading a header or payload byte finds */
	else if (p->phase == H2_PH_PAYLOAD)
		err = h2_payload_step(walk, p);
	else if (p->phase == H2_PH_PREFACE)
		err = HTTP_ERR_GRAMMAR;
	else
		err = h2_header_byte(walk, p);
	if (err)
		s->error = err;
	return err ? 1 : 0;
}

/* bpf_loop bodies: one per payload kind, as the verifier walks each per program. */
static long h2_step(__u32 index, void *ctx)
{
	return h2_step_in(ctx, HTTP_PAYLOAD_READABLE);
}

static long h2_step_unreadable(__u32 index, void *ctx)
{
	return h2_step_in(ctx, HTTP_PAYLOAD_NONE);
}

enum h2_start {
	H2_START_NONE,      /* not HTTP/2 */
	H2_START_NEW,       /* from the connection's first bytes */
	H2_START_ADOPTED,   /* open before kaccess started: from a frame boundary */
};

/*
 * How a connection's first bytes seen start HTTP/2, if they do. A
 * subprogram: the verifier then walks the parser once, not once per way.
 */
static __noinline int h2_detect(struct http_scratch *s, __u64 bytes, bool is_request, bool was_open)
{
	if (!s)
		return H2_START_NONE;
	/* a new connection, or one adopted before its first bytes */
	if (is_request && h2_preface_at_start(s))
		return H2_START_NEW;
	/* open before kaccess started: its first bytes seen are a frame's */
	if (was_open)
		return h2_frame_at_start(s, bytes, is_request) ? H2_START_ADOPTED : H2_START_NONE;
	/* the server's SETTINGS written before the client's preface was read */
	if (!is_request && h2_settings_at_start(s))
		return H2_START_NEW;
	return H2_START_NONE;
}

/*
 * Start parsing a connection: its HTTP/2 state, from the template. A
 * connection `adopted` mid-way starts at a frame boundary in both
 * directions, and its first header pieces say that the HPACK tables before
 * them are unknown.
 */
static __always_inline struct h2_conn *h2_conn_create(__u64 sk, struct kaccess_conn *conn,
						      struct http_scratch *s, bool adopted)
{
	struct h2_conn *fresh = &s->fresh_h2;

	__builtin_memcpy(&fresh->agg, &conn->agg, sizeof(fresh->agg));
	fresh->conn_start_ns = conn->start_ns;
	fresh->req.phase = adopted ? H2_PH_FRAME_HEADER : H2_PH_PREFACE;
	fresh->resp.phase = adopted ? H2_PH_FRAME_HEADER : H2_PH_FIRST_HEADER;
	fresh->req.gap = fresh->resp.gap = adopted;
	/* BPF_ANY: a socket address reused without a destroy seen starts afresh */
	if (bpf_map_update_elem(&h2_conns, &sk, fresh, BPF_ANY)) {
		count_loss(KACCESS_CTR_HTTP_CONNS_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&h2_conns, &sk);
}

/*
 * The connection's entry goes: its open streams move to h2_streams, where
 * the shipper finds them when the connection ends (it knows their ids) and
 * makes their records, cut. Reset ones are counted already.
 */
static __noinline int h2_conn_forget(__u64 sk, struct h2_conn *hc)
{
	struct kaccess_h2_stream_key key = { .sk = sk };

	if (!hc)
		return 0;
	key.conn_start_ns = hc->conn_start_ns;
	for (__u32 i = 0; i < H2_STREAM_SLOTS; i++) {
		struct h2_stream_slot *slot = &hc->slots[i];

		if (!slot->stream_id || slot->sizes.reset)
			continue;
		key.stream_id = slot->stream_id;
		bpf_map_update_elem(&h2_streams, &key, &slot->sizes, BPF_ANY);
	}
	bpf_map_delete_elem(&h2_conns, &sk);
	return 0;
}

/* Parsing stops: the connection is left to TCP. */
static __always_inline void h2_stop(__u64 sk, struct kaccess_conn *conn, struct h2_conn *hc,
				    __u8 state)
{
	conn->http = state;
	h2_conn_forget(sk, hc);
}

/*
 * Whether this read or write of `bytes` (> 0) is the HTTP/2 parser's: the
 * connection is HTTP/2, its first bytes make it so, or a 101 left it
 * switching. The scratch's cursor is then the call; otherwise it is empty
 * and the HTTP/1.x parser decides, which may stop at a 101 with bytes left
 * (h2_transfer_rest takes them).
 */
static __always_inline bool h2_claim(__u64 sk, struct kaccess_conn *conn, bool is_read,
				     __u64 bytes, __u64 ptr, __u32 kind, __u64 count, __u64 now_ns,
				     __u64 call_ns)
{
	struct http_scratch *s;
	__u32 zero = 0;
	__u8 state;
	int start;

	s = bpf_map_lookup_elem(&http_scratch, &zero);
	if (!s)
		return false;
	s->left = 0;
	s->h2_call = H2_CALL_SETTLED; /* bytes after a 101 in this call: the call was HTTP/1.x's */
	if (!http_enabled || !conn)
		return false;
	state = conn->http;
	if (state != KACCESS_HTTP_H2 && state != KACCESS_HTTP_UNDECIDED &&
	    state != KACCESS_HTTP_SWITCHING)
		return false;
	http_segments(s, kind, ptr, count, bytes);
	s->left = bytes;
	s->win_len = s->win_pos = 0;
	s->now_ns = now_ns;
	s->call_ns = call_ns;
	s->is_request = (conn->agg.role == KACCESS_ROLE_CLIENT) != is_read;
	s->h2_call = H2_CALL_IN_HEADER; /* until the parser knows where the call begins */
	if (state != KACCESS_HTTP_UNDECIDED)
		return true;
	start = h2_detect(s, bytes, s->is_request, conn->flags & KACCESS_CONN_ADOPTED);
	if (start == H2_START_NONE) {
		s->left = 0;
		return false;
	}
	if (!h2_conn_create(sk, conn, s, start == H2_START_ADOPTED)) {
		conn->http = KACCESS_HTTP_NO_FINAL;
		s->left = 0;
		return true;
	}
	conn->http = KACCESS_HTTP_H2;
	return true;
}

/*
 * The upgrade request's exchange becomes stream 1: what HTTP/1.1 knew of
 * it (endpoint, first byte, request sizes, request number) and the 101's
 * bytes, which are response header bytes like a 100 Continue's; and its
 * calls so far: the request's and the 101's (the call that carries the 101
 * is the response's even when HTTP/2 frames follow in it). Stream 1 then
 * counts the HTTP/2 calls that begin in its frames.
 */
static __always_inline void h2_upgrade_stream(struct h2_walk *walk, struct http_conn *old)
{
	struct http_request_slot *slot = &old->pending[old->head & (HTTP_PIPELINE_DEPTH - 1)];
	struct kaccess_h2_sizes *sizes;

	if (old->head == old->tail)
		return;
	if (old->tail - old->head > 1) /* HTTP/2 has no place for requests pipelined behind it */
		count_loss(KACCESS_CTR_HTTP_UPGRADE_UNFOLLOWED);
	h2_stream_open(walk, 1);
	sizes = h2_stream(walk, 1);
	if (!sizes) {
		count_loss(KACCESS_CTR_H2_STREAM_LOST);
		return;
	}
	sizes->start_ns = slot->start_ns;
	sizes->request_header_bytes = slot->header_bytes;
	sizes->request_body_bytes = slot->ended ? slot->body_bytes : old->req.body_bytes;
	sizes->response_header_bytes = old->resp.header_bytes + old->interim_header_bytes;
	sizes->endpoint = slot->endpoint;
	sizes->upgrade_seq = slot->seq; /* its record pairs with the request's head by it */
	sizes->calls = slot->calls; /* the request's, once it ended; no response's yet */
	if (!slot->ended)
		http_take_calls(&old->req, &sizes->calls.request_calls, &sizes->calls.request_call_ns);
	http_take_calls(&old->resp, &sizes->calls.response_calls, &sizes->calls.response_call_ns);
}

/*
 * Whether the few bytes at the cursor (fewer than HTTP/2's first bytes
 * need, in their segment) could still begin them: the preface's first
 * bytes, or a SETTINGS frame header's (a length below 64 KiB, type 4, no
 * flags, stream 0). Then the next protocol cannot be told; otherwise it is
 * not HTTP/2 (a short WebSocket frame, say).
 */
static __always_inline bool h2_could_begin(struct http_scratch *s)
{
	static const char preface[H2_PREFACE_LEN] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
	__u32 idx = s->seg_idx, need = s->is_request ? H2_PREFACE_LEN : H2_FRAME_HEADER_LEN;
	__u64 avail;

	if (idx >= s->nseg || idx >= HTTP_SEGMENTS)
		return false;
	avail = s->seg_len[idx] - s->seg_off;
	if (avail > s->left)
		avail = s->left;
	if (!avail || avail >= need)
		return false;
	avail &= 31; /* below need (at most 24): a bound for the verifier */
	if (!avail || bpf_probe_read_user(s->data, avail, (void *)(s->seg_base[idx] + s->seg_off)))
		return false;
	for (__u32 i = 0; i < H2_PREFACE_LEN; i++) {
		__u8 c = s->data[i];

		if (i >= avail)
			break;
		if (s->is_request ? c != (__u8)preface[i] :
		    (i == 0 || i >= 4) ? c != 0 : (i == 3 && c != H2_SETTINGS))
			return false;
	}
	return true;
}

/*
 * After a 101 the bytes at the cursor decide (RFC 7540 3.2: the server's
 * first frame is SETTINGS, the client's first bytes are the preface): 1,
 * the connection is HTTP/2 with the waiting request as stream 1; 0, it is
 * another protocol (WebSocket, ...): the 101 answered the request and the
 * connection is left to TCP.
 */
static __noinline int h2_upgrade(__u64 sk, struct kaccess_conn *conn, struct http_scratch *s)
{
	struct h2_walk walk = { .sk = sk, .s = s };
	struct http_conn *old;
	bool h2;

	if (!conn || !s)
		return 0;
	walk.local_port = conn->local_port;
	walk.remote_port = conn->remote_port;
	old = bpf_map_lookup_elem(&http_conns, &sk);
	h2 = s->is_request ? h2_preface_at_start(s) : h2_settings_at_start(s);
	if (!h2) {
		if (h2_could_begin(s)) /* too few bytes to tell */
			count_loss(KACCESS_CTR_HTTP_UPGRADE_UNFOLLOWED);
		if (old) {
			http_record(old, HTTP_COMPLETE, old->last_resp_ns);
			bpf_map_delete_elem(&http_conns, &sk);
		}
		conn->http = KACCESS_HTTP_NO_FINAL;
		return 0;
	}
	walk.hc = h2_conn_create(sk, conn, s, false);
	if (walk.hc && old)
		h2_upgrade_stream(&walk, old);
	if (old)
		bpf_map_delete_elem(&http_conns, &sk);
	conn->http = walk.hc ? KACCESS_HTTP_H2 : KACCESS_HTTP_NO_FINAL;
	return walk.hc ? 1 : 0;
}

/*
 * Parse what is left of the call at the scratch's cursor as HTTP/2: the
 * whole call (h2_claim), or the bytes after a 101 in it (http_transfer).
 */
static __always_inline void h2_transfer_rest(__u64 sk, struct kaccess_conn *conn,
					     enum http_payload payload)
{
	struct h2_walk walk = { .sk = sk };
	struct http_scratch *s;
	struct h2_parser *p;
	struct h2_conn *hc;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&http_scratch, &zero);
	if (!s || !conn || !s->left)
		return;
	if (conn->http == KACCESS_HTTP_SWITCHING && !h2_upgrade(sk, conn, s))
		return;
	if (conn->http != KACCESS_HTTP_H2)
		return;
	hc = bpf_map_lookup_elem(&h2_conns, &sk);
	if (!hc)
		return;
	__builtin_memcpy(&hc->agg, &conn->agg, sizeof(hc->agg));
	s->error = HTTP_OK; /* HTTP_ERR_UPGRADE when the 101 was in this call */
	if (s->is_request && hc->req.phase == H2_PH_PREFACE) {
		if (!h2_preface_at_start(s)) { /* the server spoke HTTP/2, the client did not */
			h2_stop(sk, conn, hc, KACCESS_HTTP_NO_FINAL);
			return;
		}
		h2_consume(s, H2_PREFACE_LEN);
		hc->req.phase = H2_PH_FIRST_HEADER;
		s->h2_call = H2_CALL_SETTLED; /* a call that begins with the preface is no stream's */
	}
	p = s->is_request ? &hc->req : &hc->resp;
	h2_call_begin(s, p);
	walk.hc = hc;
	walk.s = s;
	walk.local_port = conn->local_port;
	walk.remote_port = conn->remote_port;
	s->h2_batch.len = 0;
	s->h2_batch.pieces = 0;
	s->h2_batch.ends = 0;
	if (payload == HTTP_PAYLOAD_NONE)
		bpf_loop(HTTP_MAX_STEPS, h2_step_unreadable, &walk, 0);
	else
		bpf_loop(HTTP_MAX_STEPS, h2_step, &walk, 0);
	h2_batch_flush(&walk); /* before h2_stop can forget the connection */
	if (!s->error && s->left)
		s->error = HTTP_ERR_BUDGET;
	if (!s->error)
		h2_call_end(&walk, p);
	if (s->error) {
		count_loss(KACCESS_CTR_HTTP_PARSE_FAILED);
		h2_stop(sk, conn, hc, KACCESS_HTTP_FAILED);
	}
}

/* The connection ends; its open streams are the shipper's to finish. */
static __always_inline void h2_conn_end(__u64 sk)
{
	h2_conn_forget(sk, bpf_map_lookup_elem(&h2_conns, &sk));
}

#endif /* KACCESS_BPF_HTTP2_BPF_H */
