/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * HTTP/1.x on tracked connections: a streaming parser fed with the payload
 * of every read and write, and the per-bucket exchange aggregates.
 *
 * Requests are what the client writes (what the server reads). The first
 * request bytes of a connection decide whether it is HTTP: a known method,
 * a path and "HTTP/1.x". Then each direction's parser walks its messages
 * with a bounded number of steps per call: start line and header bytes one
 * at a time (header names and values through a 16-byte rolling register,
 * no string compares), bodies by arithmetic (Content-Length, chunk sizes,
 * or to the close), so a 1 MiB body costs one step per call. A response
 * ends its exchange with the oldest pending request (pipelining, up to
 * HTTP_PIPELINE_DEPTH in flight); the exchange is added to the HTTP
 * generation map of the bucket it ends in. Requests still pending when the
 * connection ends are counted then, as unanswered or cut.
 *
 * Every state lives in the connection's http_conns entry; http_scratch only
 * holds the bytes of the current call. Anything that breaks the grammar
 * stops the connection's parsing and counts KACCESS_CTR_HTTP_PARSE_FAILED:
 * no connection can reach another's state or numbers.
 */
#ifndef KACCESS_BPF_HTTP_BPF_H
#define KACCESS_BPF_HTTP_BPF_H

#include "../maps/maps.bpf.h"
#include "config.bpf.h"
#include "counters.bpf.h"
#include "ringbuf.bpf.h"

#define HTTP_MAX_STEPS 8192          /* per read or write: bytes of start lines and headers */
#define HTTP_MAX_HEADER_BYTES 65536  /* a longer header block is not HTTP we parse */
#define HTTP_MAX_CONTENT_LENGTH (1ULL << 40)
#define HTTP_FNV_OFFSET 0xcbf29ce484222325ULL
#define HTTP_FNV_PRIME 0x100000001b3ULL

enum http_phase {
	PH_IDLE = 0,       /* between messages */
	PH_METHOD,
	PH_PATH,
	PH_QUERY,          /* after '?': skipped unless http_keep_query */
	PH_REQ_VERSION,
	PH_RESP_VERSION,
	PH_STATUS,
	PH_REASON,
	PH_HEADERS,
	PH_BODY,           /* Content-Length bytes: skipped */
	PH_CHUNK_SIZE,
	PH_CHUNK_EXT,      /* chunk extension, to the end of the size line */
	PH_CHUNK_DATA,     /* skipped */
	PH_CHUNK_END,      /* the CRLF after a chunk's data */
	PH_TRAILERS,
	PH_UNTIL_CLOSE,    /* response without length: everything to the close */
	PH_SWITCHED,       /* after 101 Switching Protocols: what follows is not HTTP/1.x */
};

enum http_flag {
	HTTP_F_LENGTH = 1 << 0,   /* Content-Length seen */
	HTTP_F_CHUNKED = 1 << 1,  /* Transfer-Encoding ends in chunked */
	HTTP_F_VALUE = 1 << 2,    /* in a header's value (after ':') */
	HTTP_F_SKIP = 1 << 3,     /* a header line of no interest: only its end matters */
};

enum http_header_id {
	HDR_OTHER = 0,
	HDR_CONTENT_LENGTH,
	HDR_TRANSFER_ENCODING,
};

enum http_error {
	HTTP_OK = 0,
	HTTP_ERR_NOT_HTTP,   /* a message does not start like HTTP/1.x */
	HTTP_ERR_GRAMMAR,    /* bad start line, header, length or chunk; response without request */
	HTTP_ERR_NO_PAYLOAD, /* bytes to parse that could not be read (sendfile, mmsg, iovec > 8) */
	HTTP_ERR_BUDGET,     /* more header bytes in one call than HTTP_MAX_STEPS */
	HTTP_ERR_PIPELINE,   /* more requests in flight than HTTP_PIPELINE_DEPTH */
	HTTP_ERR_UPGRADE,    /* 101 Switching Protocols: no longer HTTP/1.x (not a failure);
			      * the bytes after it are HTTP/2's or another protocol's */
};

/*
 * Whether a program's calls have bytes the parsers can read. Not those of
 * sendfile (file pages) or sendmmsg/recvmmsg (their messages are not
 * walked): a program that only sees such calls says HTTP_PAYLOAD_NONE as
 * a constant and gets the parsers without their byte paths, with the
 * outcome a walk that finds no segment to read has (HTTP/1.x bodies
 * skipped by their length, anything else HTTP_ERR_NO_PAYLOAD), at a
 * fraction of the verifier's work.
 */
enum http_payload {
	HTTP_PAYLOAD_READABLE,
	HTTP_PAYLOAD_NONE,
};

enum http_outcome {
	HTTP_COMPLETE,
	HTTP_TRUNCATED,
	HTTP_NO_RESPONSE,
};

/* Tokens as the rolling register holds them: big-endian, last byte lowest. */
#define P2(a, b) (((__u64)(a) << 8) | (__u64)(b))
#define P3(a, b, c) ((P2(a, b) << 8) | (__u64)(c))
#define P4(a, b, c, d) ((P3(a, b, c) << 8) | (__u64)(d))
#define P5(a, b, c, d, e) ((P4(a, b, c, d) << 8) | (__u64)(e))
#define P6(a, b, c, d, e, f) ((P5(a, b, c, d, e) << 8) | (__u64)(f))
#define P7(a, b, c, d, e, f, g) ((P6(a, b, c, d, e, f) << 8) | (__u64)(g))
#define P8(a, b, c, d, e, f, g, h) ((P7(a, b, c, d, e, f, g) << 8) | (__u64)(h))

#define TOKEN_HTTP_1_1 P8('H', 'T', 'T', 'P', '/', '1', '.', '1')
#define TOKEN_HTTP_1_0 P8('H', 'T', 'T', 'P', '/', '1', '.', '0')

struct http_walk {
	struct http_conn *hc;
	struct http_scratch *s;
};

/* The parser of the direction this call's bytes go. */
static __always_inline struct http_parser *http_parser_of(struct http_conn *hc,
							  const struct http_scratch *s)
{
	return s->is_request ? &hc->req : &hc->resp;
}

static __always_inline bool http_is_method(__u64 token)
{
	switch (token) {
	case P3('G', 'E', 'T'):
	case P3('P', 'U', 'T'):
	case P4('P', 'O', 'S', 'T'):
	case P4('H', 'E', 'A', 'D'):
	case P5('P', 'A', 'T', 'C', 'H'):
	case P5('T', 'R', 'A', 'C', 'E'):
	case P6('D', 'E', 'L', 'E', 'T', 'E'):
	case P7('O', 'P', 'T', 'I', 'O', 'N', 'S'):
	case P7('C', 'O', 'N', 'N', 'E', 'C', 'T'):
		return true;
	}
	return false;
}

static __always_inline __u8 http_lower(__u8 c)
{
	return c >= 'A' && c <= 'Z' ? c + ('a' - 'A') : c;
}

static __always_inline void http_roll(struct http_parser *p, __u8 c)
{
	p->roll_hi = (p->roll_hi << 8) | (p->roll_lo >> 56);
	p->roll_lo = (p->roll_lo << 8) | c;
}

/* A header name just ended (at ':'); the register holds its last 16 bytes. */
static __always_inline __u8 http_header_id(const struct http_parser *p, __u32 name_len)
{
	if (name_len == 14 && p->roll_lo == P8('t', '-', 'l', 'e', 'n', 'g', 't', 'h') &&
	    (p->roll_hi & 0xffffffffffffULL) == P6('c', 'o', 'n', 't', 'e', 'n'))
		return HDR_CONTENT_LENGTH;
	if (name_len == 17 && p->roll_lo == P8('e', 'n', 'c', 'o', 'd', 'i', 'n', 'g') &&
	    p->roll_hi == P8('r', 'a', 'n', 's', 'f', 'e', 'r', '-'))
		return HDR_TRANSFER_ENCODING;
	return HDR_OTHER;
}

/* Whether sequence number `seq` is still waiting for its response. */
static __always_inline bool http_pending(const struct http_conn *hc, __u32 seq)
{
	return seq - hc->head < hc->tail - hc->head;
}

/* The row of an HTTP key in the generation of the bucket containing `now_ns`. */
static __always_inline struct kaccess_http_value *http_row(const struct kaccess_http_key *key,
							   __u64 now_ns)
{
	__u64 bucket = (now_ns + wall_offset_ns) / bucket_ns;
	void *generation = (bucket & 1) ? (void *)&http_gen1 : (void *)&http_gen0;
	struct kaccess_http_value *row;
	struct http_scratch *s;
	__u32 zero = 0;
	int err;

	row = bpf_map_lookup_elem(generation, key);
	if (row) {
		if (row->bucket != bucket)
			count_loss(KACCESS_CTR_AGG_STALE_BUCKET);
		return row;
	}
	/* the value is too big for the stack: a zeroed per-CPU template */
	s = bpf_map_lookup_elem(&http_scratch, &zero);
	if (!s)
		return NULL;
	s->fresh.bucket = bucket;
	err = bpf_map_update_elem(generation, key, &s->fresh, BPF_NOEXIST);
	if (err && err != -17 /* EEXIST: another CPU was first */) {
		count_loss(KACCESS_CTR_HTTP_TABLE_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(generation, key);
}

_Static_assert(HTTP_COMPLETE == KACCESS_HTTP_OUTCOME_COMPLETE &&
	       HTTP_TRUNCATED == KACCESS_HTTP_OUTCOME_CUT &&
	       HTTP_NO_RESPONSE == KACCESS_HTTP_OUTCOME_NO_RESPONSE, "outcomes as records carry them");

/* A message's calls are final: move them from its direction's parser to where they are kept. */
static __always_inline void http_take_calls(struct http_parser *p, __u32 *calls, __u64 *call_ns)
{
	*calls = p->calls;
	*call_ns = p->call_ns;
	p->calls = 0;
	p->call_ns = 0;
}

static __always_inline void http_take_request_calls(struct http_conn *hc,
						    struct http_request_slot *slot)
{
	http_take_calls(&hc->req, &slot->calls.request_calls, &slot->calls.request_call_ns);
}

/*
 * Whether request `seq` of a connection sends its access-log records (the
 * head and the exchange): all do, but with `http_log_policy = sampled`
 * only numbers 0, N, 2N..., as the shipper would ship them; the others
 * cost no ring-buffer record at all.
 */
static __always_inline bool http_records_of(__u32 seq)
{
	return http_records_one_in <= 1 || seq % http_records_one_in == 0;
}

/* The exchange's access-log record (config http_log_policy): its numbers, fixed size. */
static __always_inline void http_send_exchange(struct http_conn *hc, struct http_request_slot *slot)
{
	struct kaccess_http_exchange_event *e;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		count_loss(KACCESS_CTR_HTTP_RECORD_LOST);
		return;
	}
	e->type = KACCESS_EVENT_HTTP_EXCHANGE;
	e->seq = slot->seq;
	e->sk = hc->sk;
	e->conn_start_ns = hc->conn_start_ns;
	e->endpoint = slot->endpoint;
	e->start_ns = slot->start_ns;
	e->end_ns = slot->end_ns;
	e->request_body_bytes = slot->body_bytes;
	e->request_header_bytes = slot->header_bytes;
	if (slot->outcome == HTTP_NO_RESPONSE) {
		e->response_body_bytes = 0;
		e->response_header_bytes = 0;
		e->status = 0;
	} else {
		e->response_body_bytes = slot->resp_body_bytes;
		e->response_header_bytes = slot->resp_header_bytes;
		e->status = slot->status;
	}
	e->outcome = slot->outcome;
	e->version = slot->version;
	e->local_port = hc->local_port;
	e->remote_port = hc->remote_port;
	__builtin_memcpy(&e->agg, &hc->agg, sizeof(e->agg));
	__builtin_memcpy(&e->calls, &slot->calls, sizeof(e->calls));
	bpf_ringbuf_submit(e, ringbuf_submit_flags(sizeof(*e)));
}

/* Add one exchange, described by its slot, to its row. */
static __noinline int http_count_exchange(struct http_conn *hc, struct http_request_slot *slot)
{
	struct kaccess_http_key key = { .endpoint = slot->endpoint };
	struct kaccess_http_value *row;
	__u16 status = slot->status;
	__u64 bucket; /* 64-bit: a 32-bit copy would lose the bounds check below */
	__u64 duration_ns;
	__u32 class;

	slot->answered = 0;
	if (http_records) {
		if (http_records_of(slot->seq))
			http_send_exchange(hc, slot);
		else
			count_tally(KACCESS_CTR_HTTP_RECORDS_SAMPLED_OUT);
	}
	__builtin_memcpy(&key.agg, &hc->agg, sizeof(key.agg));
	row = http_row(&key, slot->end_ns);
	if (!row)
		return 0;
	agg_add(row->call_count, 1);
	agg_add(row->request_header_bytes, slot->header_bytes);
	agg_add(row->request_body_bytes, slot->body_bytes);
	if (slot->outcome == HTTP_NO_RESPONSE || status < 100 || status > 599) {
		agg_add(row->no_response_count, 1);
		return 0;
	}
	agg_add(row->response_header_bytes, slot->resp_header_bytes);
	agg_add(row->response_body_bytes, slot->resp_body_bytes);
	/* comparisons, not status / 100: the verifier bounds these */
	class = status >= 500 ? KACCESS_HTTP_5XX : status >= 400 ? KACCESS_HTTP_4XX :
		status >= 300 ? KACCESS_HTTP_3XX : status >= 200 ? KACCESS_HTTP_2XX : KACCESS_HTTP_1XX;
	agg_add(row->status_count[class], 1);
	if (slot->outcome == HTTP_TRUNCATED) {
		agg_add(row->truncated_count, 1);
		return 0;
	}
	if (status < 500)
		agg_add(row->success_count, 1);
	duration_ns = slot->end_ns - slot->start_ns;
	agg_add(row->duration_ns_sum, duration_ns);
	bucket = kaccess_http_latency_bucket(duration_ns);
	barrier_var(bucket); /* keep the check: the verifier does not follow divisions */
	if (bucket >= KACCESS_HTTP_LATENCY_BUCKETS)
		bucket = KACCESS_HTTP_LATENCY_BUCKETS - 1;
	__sync_fetch_and_add(&row->duration_hist[bucket], 1);
	return 0;
}

/*
 * The oldest pending request's exchange ends (its response ended, was cut,
 * or never came): retire it, and count it unless its own body is still
 * arriving (then the request's end counts it). A subprogram, not inlined:
 * every parser step and the connection's end share one copy.
 */
static __noinline int http_record(struct http_conn *hc, __u32 outcome, __u64 end_ns)
{
	struct http_request_slot *slot = &hc->pending[hc->head & (HTTP_PIPELINE_DEPTH - 1)];

	if (hc->head == hc->tail)
		return 0;
	hc->head++;
	slot->outcome = outcome;
	slot->status = outcome == HTTP_NO_RESPONSE ? 0 : hc->resp.status;
	slot->resp_header_bytes = hc->resp.header_bytes + hc->interim_header_bytes;
	slot->resp_body_bytes = hc->resp.body_bytes;
	slot->end_ns = end_ns;
	hc->interim_header_bytes = 0;
	/* the response's calls, interim 1xx ones included (none when it never began) */
	http_take_calls(&hc->resp, &slot->calls.response_calls, &slot->calls.response_call_ns);
	if (!slot->ended && slot->seq == hc->req.seq && hc->req.phase != PH_IDLE &&
	    outcome != HTTP_NO_RESPONSE) {
		slot->answered = 1; /* answered early: counted when the request ends */
		return 0;
	}
	if (!slot->ended && slot->seq == hc->req.seq) {
		slot->body_bytes = hc->req.body_bytes; /* what arrived of it */
		http_take_request_calls(hc, slot);
	}
	return http_count_exchange(hc, slot);
}

/*
 * Send an endpoint's text once; a full ring buffer retries with the next
 * request. A keep-alive connection mostly asks for the same endpoint
 * again: the last one it saw sent needs no lookup (the shipper keeps every
 * text it received, so a sent one never has to go again).
 */
static __always_inline void http_announce_endpoint(struct http_conn *hc, struct http_scratch *s,
						   __u64 endpoint)
{
	__u32 len = hc->endpoint_len;
	__u64 size, flags;
	__u8 one = 1;

	if (endpoint && endpoint == hc->announced_endpoint)
		return;
	if (bpf_map_lookup_elem(&http_endpoints_sent, &endpoint)) {
		hc->announced_endpoint = endpoint;
		return;
	}
	if (len > KACCESS_HTTP_ENDPOINT_MAX)
		len = KACCESS_HTTP_ENDPOINT_MAX;
	s->event_type = KACCESS_EVENT_HTTP_ENDPOINT;
	s->event_len = len;
	s->event_endpoint = endpoint;
	__builtin_memcpy(s->event_text, hc->endpoint, HTTP_ENDPOINT_BUF);
	size = sizeof(struct kaccess_http_endpoint_event) + len;
	flags = ringbuf_output_flags(size);
	/*
	 * The same value (at most 166), bounded again next to the call: where
	 * the compiler spills `len` before its check, 6.1's verifier loses it.
	 */
	barrier_var(size);
	size &= 511;
	if (bpf_ringbuf_output(&events, &s->event_type, size, flags)) {
		count_loss(KACCESS_CTR_HTTP_ENDPOINT_LOST);
		return;
	}
	bpf_map_update_elem(&http_endpoints_sent, &endpoint, &one, BPF_ANY);
	hc->announced_endpoint = endpoint;
}

static __always_inline void http_message_done(struct http_conn *hc, struct http_parser *p,
					      struct http_scratch *s)
{
	p->phase = PH_IDLE;
	if (s->is_request) {
		struct http_request_slot *slot = &hc->pending[p->seq & (HTTP_PIPELINE_DEPTH - 1)];

		if (http_pending(hc, p->seq)) {
			slot->body_bytes = p->body_bytes;
			slot->ended = 1;
			http_take_request_calls(hc, slot);
		} else if (slot->answered && slot->seq == p->seq) {
			slot->body_bytes = p->body_bytes;
			http_take_request_calls(hc, slot);
			http_count_exchange(hc, slot);
		}
		p->calls = 0; /* a request no slot kept: its calls go with it */
		p->call_ns = 0;
		return;
	}
	http_record(hc, HTTP_COMPLETE, s->now_ns);
}

/* The blank line after the headers: what the body is. */
static __always_inline void http_headers_done(struct http_conn *hc, struct http_parser *p,
					      struct http_scratch *s)
{
	struct http_request_slot *slot;

	p->remaining = 0;
	p->token_len = 0;
	if (s->is_request) {
		slot = &hc->pending[p->seq & (HTTP_PIPELINE_DEPTH - 1)];
		if (http_pending(hc, p->seq))
			slot->header_bytes = p->header_bytes;
		if (p->flags & HTTP_F_CHUNKED)
			p->phase = PH_CHUNK_SIZE;
		else if (p->content_length) {
			p->phase = PH_BODY;
			p->remaining = p->content_length;
		} else
			http_message_done(hc, p, s);
		return;
	}
	slot = &hc->pending[hc->head & (HTTP_PIPELINE_DEPTH - 1)];
	if (p->status < 200) {
		if (p->status == 101) {
			/*
			 * The connection leaves HTTP/1.x. Not counted yet: with
			 * h2c the request's answer is HTTP/2 stream 1
			 * (h2_upgrade), with another protocol it is this 101.
			 */
			p->phase = PH_SWITCHED;
			s->error = HTTP_ERR_UPGRADE;
			return;
		}
		hc->interim_header_bytes += p->header_bytes; /* 100 Continue: the final one follows */
		p->phase = PH_IDLE;
		return;
	}
	if (slot->head || p->status == 204 || p->status == 304)
		http_message_done(hc, p, s);
	else if (p->flags & HTTP_F_CHUNKED)
		p->phase = PH_CHUNK_SIZE;
	else if (p->flags & HTTP_F_LENGTH) {
		if (p->content_length) {
			p->phase = PH_BODY;
			p->remaining = p->content_length;
		} else
			http_message_done(hc, p, s);
	} else
		p->phase = PH_UNTIL_CLOSE;
}

/* A message begins: its sizes start at zero, its flags and status as given. */
static __always_inline void http_message_reset(struct http_parser *p, __u8 flags, __u16 status)
{
	p->header_bytes = 0;
	p->body_bytes = 0;
	p->content_length = 0;
	p->flags = flags;
	p->status = status;
	p->roll_hi = 0;
}

/* The first byte of a message. */
static __always_inline int http_message_start(struct http_conn *hc, struct http_parser *p,
					      struct http_scratch *s, __u8 c)
{
	http_message_reset(p, 0, 0);
	p->token_len = 1;
	p->roll_lo = c;
	if (s->is_request) {
		if (c < 'A' || c > 'Z')
			return HTTP_ERR_NOT_HTTP;
		hc->requests++;
		p->phase = PH_METHOD;
		p->start_ns = s->now_ns;
		p->hash = (HTTP_FNV_OFFSET ^ c) * HTTP_FNV_PRIME;
		hc->endpoint[0] = c;
		hc->endpoint_len = 1;
		return HTTP_OK;
	}
	if (c != 'H')
		return HTTP_ERR_NOT_HTTP;
	if (hc->head == hc->tail)
		return HTTP_ERR_GRAMMAR; /* a response to nothing */
	p->phase = PH_RESP_VERSION;
	return HTTP_OK;
}

static __always_inline void http_endpoint_append(struct http_conn *hc, struct http_parser *p,
						 __u8 c)
{
	__u32 len = hc->endpoint_len;

	if (len >= KACCESS_HTTP_ENDPOINT_MAX)
		return; /* cut like OAP cuts endpoint names */
	hc->endpoint[len] = c;
	hc->endpoint_len = len + 1;
	p->hash = (p->hash ^ c) * HTTP_FNV_PRIME;
}

/* The request line ended: it becomes a pending request. */
static __always_inline int http_request_line_done(struct http_conn *hc, struct http_parser *p,
						  struct http_scratch *s)
{
	struct http_request_slot *slot;

	if (p->token_len != 8 || (p->roll_lo != TOKEN_HTTP_1_1 && p->roll_lo != TOKEN_HTTP_1_0))
		return HTTP_ERR_NOT_HTTP;
	if (hc->tail - hc->head >= HTTP_PIPELINE_DEPTH)
		return HTTP_ERR_PIPELINE;
	slot = &hc->pending[hc->tail & (HTTP_PIPELINE_DEPTH - 1)];
	slot->endpoint = p->hash;
	slot->seq = hc->tail;
	slot->answered = 0;
	slot->start_ns = p->start_ns;
	slot->header_bytes = 0;
	slot->body_bytes = 0;
	slot->ended = 0;
	__builtin_memset(&slot->calls, 0, sizeof(slot->calls));
	slot->head = p->flags & HTTP_F_VALUE; /* set at the method: HEAD */
	slot->version = p->roll_lo == TOKEN_HTTP_1_0 ? KACCESS_HTTP_VERSION_1_0 : KACCESS_HTTP_VERSION_1_1;
	p->flags = 0;
	p->seq = hc->tail++;
	http_announce_endpoint(hc, s, p->hash);
	p->phase = PH_HEADERS;
	p->token_len = 0;
	return HTTP_OK;
}

/* A header line's '\n' (its meaning taken): the next line starts clean. */
static __always_inline void http_header_line_end(struct http_parser *p)
{
	p->token_len = 0;
	p->header = HDR_OTHER;
	p->flags &= ~(HTTP_F_VALUE | HTTP_F_SKIP);
	p->roll_lo = p->roll_hi = 0;
}

/* One byte of a header line (or a trailer line). */
static __always_inline int http_header_byte(struct http_conn *hc, struct http_parser *p,
					    struct http_scratch *s, __u8 c)
{
	if (c == '\r')
		return HTTP_OK;
	if (c == '\n') {
		if (!p->token_len) { /* blank line */
			if (p->phase == PH_TRAILERS)
				http_message_done(hc, p, s);
			else
				http_headers_done(hc, p, s);
			return HTTP_OK;
		}
		if (p->header == HDR_TRANSFER_ENCODING &&
		    (p->roll_lo & 0xffffffffffffffULL) == P7('c', 'h', 'u', 'n', 'k', 'e', 'd'))
			p->flags |= HTTP_F_CHUNKED;
		http_header_line_end(p);
		return HTTP_OK;
	}
	p->token_len++;
	if (p->phase == PH_TRAILERS || (p->flags & HTTP_F_SKIP))
		return HTTP_OK;
	if (!(p->flags & HTTP_F_VALUE)) {
		/* only Content-Length and Transfer-Encoding matter */
		if (p->token_len == 1 && (c | 0x20) != 'c' && (c | 0x20) != 't') {
			p->flags |= HTTP_F_SKIP;
			return HTTP_OK;
		}
		if (c != ':') {
			http_roll(p, http_lower(c));
			return HTTP_OK;
		}
		p->header = http_header_id(p, p->token_len - 1);
		p->flags |= p->header == HDR_OTHER ? HTTP_F_VALUE | HTTP_F_SKIP : HTTP_F_VALUE;
		p->roll_lo = p->roll_hi = 0;
		if (p->header == HDR_CONTENT_LENGTH) {
			p->flags |= HTTP_F_LENGTH;
			p->content_length = 0;
		}
		return HTTP_OK;
	}
	if (c == ' ' || c == '\t')
		return HTTP_OK;
	if (p->header == HDR_CONTENT_LENGTH) {
		if (c < '0' || c > '9')
			return HTTP_ERR_GRAMMAR;
		p->content_length = p->content_length * 10 + (c - '0');
		if (p->content_length > HTTP_MAX_CONTENT_LENGTH)
			return HTTP_ERR_GRAMMAR;
	} else if (p->header == HDR_TRANSFER_ENCODING)
		http_roll(p, http_lower(c));
	return HTTP_OK;
}

static __always_inline int http_hex(__u8 c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = http_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* The end of a chunk-size line. */
static __always_inline int http_chunk_size_done(struct http_parser *p)
{
	if (!p->token_len)
		return HTTP_ERR_GRAMMAR;
	p->token_len = 0;
	p->phase = p->remaining ? PH_CHUNK_DATA : PH_TRAILERS;
	return HTTP_OK;
}

/* The space after the request target: the version follows. */
static __always_inline void http_target_done(struct http_parser *p)
{
	p->phase = PH_REQ_VERSION;
	p->token_len = 0;
	p->roll_lo = 0;
}

/* One byte in a byte-wise phase. */
static __always_inline int http_byte(struct http_conn *hc, struct http_parser *p,
				     struct http_scratch *s, __u8 c)
{
	int digit;

	if (p->phase == PH_HEADERS) { /* the common case first: a switch is a compare chain */
		if (++p->header_bytes > HTTP_MAX_HEADER_BYTES)
			return HTTP_ERR_GRAMMAR;
		return http_header_byte(hc, p, s, c);
	}
	if (p->phase < PH_HEADERS) {
		if (p->phase != PH_IDLE && ++p->header_bytes > HTTP_MAX_HEADER_BYTES)
			return HTTP_ERR_GRAMMAR;
	} else
		p->body_bytes++;

	switch (p->phase) {
	case PH_IDLE: {
		int err = http_message_start(hc, p, s, c);

		p->header_bytes = 1;
		return err;
	}
	case PH_METHOD:
		if (c == ' ') {
			if (!http_is_method(p->roll_lo))
				return HTTP_ERR_NOT_HTTP;
			if (p->roll_lo == P4('H', 'E', 'A', 'D'))
				p->flags |= HTTP_F_VALUE; /* carried to the slot */
			http_endpoint_append(hc, p, ':');
			p->phase = PH_PATH;
			p->token_len = 0;
			return HTTP_OK;
		}
		if (c < 'A' || c > 'Z' || ++p->token_len > 7)
			return HTTP_ERR_NOT_HTTP;
		http_roll(p, c);
		http_endpoint_append(hc, p, c);
		return HTTP_OK;
	case PH_PATH:
	case PH_QUERY:
		if (c == ' ') {
			if (!p->token_len)
				return HTTP_ERR_NOT_HTTP;
			http_target_done(p);
			return HTTP_OK;
		}
		if (c < 0x21 || c == 0x7f)
			return HTTP_ERR_NOT_HTTP;
		p->token_len++;
		if (c == '?' && !http_keep_query)
			p->phase = PH_QUERY;
		if (p->phase == PH_PATH)
			http_endpoint_append(hc, p, c);
		return HTTP_OK;
	case PH_REQ_VERSION:
		if (c == '\r')
			return HTTP_OK;
		if (c == '\n')
			return http_request_line_done(hc, p, s);
		if (++p->token_len > 8)
			return HTTP_ERR_NOT_HTTP;
		http_roll(p, c);
		return HTTP_OK;
	case PH_RESP_VERSION:
		if (c == ' ') {
			if (p->token_len != 8 ||
			    (p->roll_lo != TOKEN_HTTP_1_1 && p->roll_lo != TOKEN_HTTP_1_0))
				return HTTP_ERR_GRAMMAR;
			p->phase = PH_STATUS;
			p->token_len = 0;
			return HTTP_OK;
		}
		if (++p->token_len > 8)
			return HTTP_ERR_GRAMMAR;
		http_roll(p, c);
		return HTTP_OK;
	case PH_STATUS:
		if (c >= '0' && c <= '9' && p->token_len < 3) {
			p->status = p->status * 10 + (c - '0');
			p->token_len++;
			return HTTP_OK;
		}
		if (p->token_len != 3 || p->status < 100 || p->status > 599)
			return HTTP_ERR_GRAMMAR;
		if (c == ' ' || c == '\r') {
			p->phase = PH_REASON;
			return HTTP_OK;
		}
		if (c != '\n')
			return HTTP_ERR_GRAMMAR;
		p->phase = PH_HEADERS;
		p->token_len = 0;
		return HTTP_OK;
	case PH_REASON:
		if (c == '\n') {
			p->phase = PH_HEADERS;
			p->token_len = 0;
			p->roll_lo = p->roll_hi = 0;
			p->flags = 0;
		}
		return HTTP_OK;
	case PH_HEADERS:
	case PH_TRAILERS:
		return http_header_byte(hc, p, s, c);
	case PH_CHUNK_SIZE:
		digit = http_hex(c);
		if (digit >= 0) {
			if (++p->token_len > 15)
				return HTTP_ERR_GRAMMAR;
			p->remaining = p->remaining * 16 + digit;
			return HTTP_OK;
		}
		if (c == ';' || c == ' ' || c == '\t') {
			p->phase = PH_CHUNK_EXT;
			return HTTP_OK;
		}
		if (c == '\r')
			return HTTP_OK;
		if (c == '\n')
			return http_chunk_size_done(p);
		return HTTP_ERR_GRAMMAR;
	case PH_CHUNK_EXT:
		if (c == '\n')
			return http_chunk_size_done(p);
		return HTTP_OK;
	case PH_CHUNK_END:
		if (c == '\r')
			return HTTP_OK;
		if (c != '\n')
			return HTTP_ERR_GRAMMAR;
		p->phase = PH_CHUNK_SIZE;
		p->remaining = 0;
		p->token_len = 0;
		return HTTP_OK;
	}
	return HTTP_ERR_GRAMMAR;
}

/* Bytes of a body: counted and skipped, up to the end of the current segment. */
static __always_inline void http_skip(struct http_conn *hc, struct http_parser *p,
				      struct http_scratch *s)
{
	__u32 idx = s->seg_idx;
	__u64 n = s->left, avail;

	if (p->phase != PH_UNTIL_CLOSE && n > p->remaining)
		n = p->remaining;
	if (idx < s->nseg && idx < HTTP_SEGMENTS) {
		avail = s->seg_len[idx] - s->seg_off;
		if (n > avail)
			n = avail;
		s->seg_off += n;
		if (s->seg_off >= s->seg_len[idx]) {
			s->seg_idx = idx + 1;
			s->seg_off = 0;
		}
	}
	s->left -= n;
	s->win_len = s->win_pos = 0;
	p->body_bytes += n;
	if (p->phase == PH_UNTIL_CLOSE)
		return;
	p->remaining -= n;
	if (p->remaining)
		return;
	if (p->phase == PH_CHUNK_DATA) {
		p->phase = PH_CHUNK_END;
		return;
	}
	http_message_done(hc, p, s);
}

/*
 * A window index the verifier can bound by itself: the callers have checked
 * it already, but the compiler drops a plain mask it can prove useless and
 * 6.1's verifier loses the checked bound of a copy spilled to the stack
 * before the check. barrier_var() keeps the mask in the code.
 */
static __always_inline __u32 http_window_index(__u32 pos)
{
	barrier_var(pos);
	return pos & (HTTP_WINDOW - 1);
}

/*
 * Copy the next bytes of the current segment into the window: 0, or -1
 * when they cannot be read, -2 to retry (an empty iovec entry was passed).
 */
static __always_inline int http_window_fill(struct http_scratch *s)
{
	__u32 idx = s->seg_idx;
	__u64 avail, base;

	if (idx >= s->nseg || idx >= HTTP_SEGMENTS)
		return -1;
	base = s->seg_base[idx];
	avail = s->seg_len[idx] - s->seg_off;
	if (!avail) {
		s->seg_idx = idx + 1;
		s->seg_off = 0;
		return -2;
	}
	if (avail > s->left)
		avail = s->left;
	if (avail > HTTP_WINDOW)
		avail = HTTP_WINDOW;
	if (!base || bpf_probe_read_user(s->data, avail, (void *)(base + s->seg_off)))
		return -1;
	s->win_len = avail;
	s->win_pos = 0;
	return 0;
}

/* Consume `n` bytes of the window (which never crosses a segment's end). */
static __always_inline void http_window_consume(struct http_scratch *s, __u32 n)
{
	__u32 idx = s->seg_idx;

	s->win_pos += n;
	s->left -= n;
	s->seg_off += n;
	if (s->seg_off >= s->seg_len[idx & (HTTP_SEGMENTS - 1)]) {
		s->seg_idx = idx + 1;
		s->seg_off = 0;
		s->win_len = s->win_pos = 0;
	}
}

/* The next payload byte (0..255); -1 when it cannot be read, -2 to retry. */
static __always_inline int http_next_byte(struct http_scratch *s)
{
	int err;
	__u8 c;

	if (s->win_pos >= s->win_len) {
		err = http_window_fill(s);
		if (err)
			return err;
	}
	c = s->data[s->win_pos & (HTTP_WINDOW - 1)];
	http_window_consume(s, 1);
	return c;
}

/*
 * The word-wise paths below take whole tokens and lines of the window in
 * one bpf_loop step where the byte path (http_byte) takes one byte per
 * step: a step costs about 30 ns, and a typical response head is 150 to
 * 300 bytes. They cover the common shapes only; anything else (a token
 * split over calls, a byte the grammar forbids, a header that matters in
 * trailers) is left where it is for the byte path, which judges it. Both
 * leave the parser in the same state for the same bytes.
 */
#define HTTP_WORD_LOW 0x0101010101010101ULL
#define HTTP_WORD_HIGH 0x8080808080808080ULL
#define HTTP_WORD_LF 0x0a0a0a0a0a0a0a0aULL
#define HTTP_SCAN_WORDS 8   /* words of a line looked at per step */
#define HTTP_RUN_BYTES 32   /* bytes of a request target or a length per step */

/* Little-endian loads of the tokens the word paths compare. */
#define HTTP_LE_HTTP_1_1 0x312e312f50545448ULL /* "HTTP/1.1" */
#define HTTP_LE_HTTP_1_0 0x302e312f50545448ULL /* "HTTP/1.0" */
#define HTTP_LE_TTP_1_1_SP 0x20312e312f505454ULL /* "TTP/1.1 " */
#define HTTP_LE_TTP_1_0_SP 0x20302e312f505454ULL /* "TTP/1.0 " */
#define HTTP_LE_CONTENT_ 0x2d746e65746e6f63ULL /* "content-" */
#define HTTP_LE_LENGTH_COLON 0x3a6874676e656cULL /* "length:" (7 bytes) */
#define HTTP_LE_TRANSFER 0x726566736e617274ULL /* "transfer" */
#define HTTP_LE_ENCODIN 0x6e69646f636e652dULL /* "-encodin" */
#define HTTP_LE_LOWER 0x2020202020202020ULL /* OR-ed in: letters to lower case */

static __always_inline __u64 http_window_word(const struct http_scratch *s, __u32 pos)
{
	return *(__u64 *)&s->data[http_window_index(pos)];
}

/* Bytes below the lowest byte flagged (0x80) in `flags`, which is not 0. */
static __always_inline __u32 http_bytes_below(__u64 flags)
{
	/* the lowest flag's bits below it, one per byte, summed by the multiply */
	return ((((flags & -flags) - 1) >> 7) & HTTP_WORD_LOW) * HTTP_WORD_LOW >> 56;
}

/*
 * Bytes of the window from its position before the next '\n', looking at
 * up to HTTP_SCAN_WORDS words (the classic has-zero-byte test on each word
 * XOR "\n\n\n\n\n\n\n\n", whose lowest flagged byte is exact) and the
 * window's last bytes one by one. *found: the '\n' follows them.
 */
static __always_inline __u32 http_scan_line(const struct http_scratch *s, bool *found)
{
	__u32 pos = s->win_pos, end = s->win_len, len = 0;
	__u64 word, flags = 0;

	*found = false;
	if (pos >= end || end > HTTP_WINDOW)
		return 0;
	pos = http_window_index(pos);
#pragma unroll
	for (int i = 0; i < HTTP_SCAN_WORDS; i++) {
		if (pos > HTTP_WINDOW - 8 || pos + 8 > end)
			break;
		word = *(__u64 *)&s->data[pos] ^ HTTP_WORD_LF;
		flags = (word - HTTP_WORD_LOW) & ~word & HTTP_WORD_HIGH;
		if (flags) {
			*found = true;
			return len + http_bytes_below(flags);
		}
		pos += 8;
		len += 8;
	}
#pragma unroll
	for (int i = 0; i < 7; i++) {
		if (pos >= end || pos > HTTP_WINDOW - 1)
			break;
		if (s->data[pos] == '\n') {
			*found = true;
			break;
		}
		pos++;
		len++;
	}
	return len;
}

/* Take `n` head bytes (start line or header block); false past the head's limit (s->error set). */
static __always_inline bool http_take_head_bytes(struct http_parser *p, struct http_scratch *s,
						 __u32 n)
{
	http_window_consume(s, n);
	p->header_bytes += n;
	if (p->header_bytes <= HTTP_MAX_HEADER_BYTES)
		return true;
	s->error = HTTP_ERR_GRAMMAR;
	return false;
}

/*
 * The rest of a line whose bytes do not matter (a header of no interest,
 * or a status line's reason), through its '\n' when the window holds it:
 * true when it did.
 */
static __always_inline bool http_rest_of_line(struct http_parser *p, struct http_scratch *s)
{
	bool found;
	__u32 n = http_scan_line(s, &found);

	p->token_len += n; /* > 0: the blank line never takes this path */
	if (!http_take_head_bytes(p, s, n + found) || !found)
		return false;
	if (p->phase == PH_REASON) {
		p->phase = PH_HEADERS;
		p->flags = 0;
	}
	http_header_line_end(p);
	return true;
}

/*
 * A response's "HTTP/1.x ddd" and the space or CR after it. The 16 bytes
 * it looks at are a minimal status line and one header byte.
 */
static __always_inline void http_status_line(struct http_conn *hc, struct http_parser *p,
					     struct http_scratch *s)
{
	__u32 pos = s->win_pos, status;
	__u64 version, rest, d0, d1, d2, after;

	if (hc->head == hc->tail || pos > HTTP_WINDOW - 16 || pos + 16 > s->win_len)
		return; /* a response to nothing is the byte path's error */
	version = http_window_word(s, pos);
	rest = http_window_word(s, pos + 8);
	if (version != HTTP_LE_HTTP_1_1 && version != HTTP_LE_HTTP_1_0)
		return;
	d0 = ((rest >> 8) & 0xff) - '0';
	d1 = ((rest >> 16) & 0xff) - '0';
	d2 = ((rest >> 24) & 0xff) - '0';
	after = (rest >> 32) & 0xff;
	if ((rest & 0xff) != ' ' || d0 > 9 || d1 > 9 || d2 > 9 || (after != ' ' && after != '\r'))
		return;
	status = d0 * 100 + d1 * 10 + d2;
	if (status < 100 || status > 599)
		return;
	http_message_reset(p, 0, status);
	p->token_len = 3;
	p->roll_lo = 0;
	p->phase = PH_REASON;
	http_take_head_bytes(p, s, 13);
}

/* A request's method and the space after it. */
static __always_inline void http_method_word(struct http_conn *hc, struct http_parser *p,
					     struct http_scratch *s)
{
	__u32 pos = s->win_pos, len = 0;
	__u64 word, token, hash = HTTP_FNV_OFFSET;

	if (pos > HTTP_WINDOW - 8 || pos + 8 > s->win_len)
		return;
	word = http_window_word(s, pos);
#pragma unroll
	for (int i = 3; i < 8; i++) {
		if (((word >> (8 * i)) & 0xff) == ' ') {
			len = i;
			break;
		}
	}
	if (!len)
		return;
	token = __builtin_bswap64(word) >> (64 - 8 * len); /* as the rolling register holds it */
	if (!http_is_method(token))
		return;
	hc->requests++;
	p->start_ns = s->now_ns;
	/* HEAD: carried to the request's slot */
	http_message_reset(p, token == P4('H', 'E', 'A', 'D') ? HTTP_F_VALUE : 0, 0);
	p->roll_lo = token;
	/* "METHOD:": the space's place takes the colon */
	__builtin_memcpy(hc->endpoint, &word, sizeof(word));
	hc->endpoint[len & 7] = ':';
#pragma unroll
	for (int i = 0; i < 8; i++) {
		if (i > len)
			break;
		hash = (hash ^ (__u8)hc->endpoint[i]) * HTTP_FNV_PRIME;
	}
	hc->endpoint_len = len + 1;
	p->hash = hash;
	p->phase = PH_PATH;
	p->token_len = 0;
	http_take_head_bytes(p, s, len + 1);
}

/*
 * A run of the request target's bytes from the window's position, up to
 * HTTP_RUN_BYTES: how many there are before the byte that ends it (a
 * control byte, a space or DEL; for a path, also the '?' that starts a query
 * to cut), which goes into *stop (0: the run ended without one). A path's
 * bytes also go into the endpoint after its first `base` bytes, and into
 * its hash; the caller checked the endpoint's room for the whole run, so
 * every byte's place is known without a branch.
 */
static __always_inline __u32 http_target_run(struct http_conn *hc, struct http_parser *p,
					     struct http_scratch *s, bool is_path, __u32 base,
					     __u8 *stop)
{
	__u32 pos = http_window_index(s->win_pos), end = s->win_len;
	__u64 hash = p->hash;
	__u32 n = 0;
	__u8 c;

	*stop = 0;
#pragma unroll
	for (int i = 0; i < HTTP_RUN_BYTES; i++) {
		if (pos >= end || pos > HTTP_WINDOW - 1)
			break;
		c = s->data[pos];
		if (c < 0x21 || c == 0x7f || (is_path && c == '?' && !http_keep_query)) {
			*stop = c;
			break;
		}
		if (is_path) {
			hc->endpoint[base + i] = c;
			hash = (hash ^ c) * HTTP_FNV_PRIME;
		}
		pos++;
		n++;
	}
	if (is_path) {
		hc->endpoint_len = base + n;
		p->hash = hash;
	}
	p->token_len += n;
	return n;
}

/*
 * The request target's path, up to HTTP_RUN_BYTES bytes, to the space that
 * ends the target or the '?' that starts a query skipped (http_keep_query
 * off). A path reaching the endpoint's limit goes byte by byte.
 */
static __always_inline void http_path_run(struct http_conn *hc, struct http_parser *p,
					  struct http_scratch *s)
{
	__u32 base = hc->endpoint_len, n;
	__u8 stop;

	if (s->win_pos >= s->win_len || s->win_len > HTTP_WINDOW ||
	    base > KACCESS_HTTP_ENDPOINT_MAX - HTTP_RUN_BYTES)
		return;
	n = http_target_run(hc, p, s, true, base, &stop);
	if (!(stop == ' ' || stop == '?') || (stop == ' ' && !p->token_len)) {
		http_take_head_bytes(p, s, n); /* the byte path judges what follows */
		return;
	}
	if (!http_take_head_bytes(p, s, n + 1))
		return;
	if (stop == '?') {
		p->token_len++;
		p->phase = PH_QUERY;
		return;
	}
	http_target_done(p);
}

/* A query skipped (http_keep_query off), up to HTTP_RUN_BYTES bytes, to the space after it. */
static __always_inline void http_query_run(struct http_conn *hc, struct http_parser *p,
					   struct http_scratch *s)
{
	__u32 n;
	__u8 stop;

	if (s->win_pos >= s->win_len || s->win_len > HTTP_WINDOW)
		return;
	n = http_target_run(hc, p, s, false, 0, &stop);
	if (stop != ' ') {
		http_take_head_bytes(p, s, n);
		return;
	}
	if (!http_take_head_bytes(p, s, n + 1))
		return;
	http_target_done(p);
}

/* A request's "HTTP/1.x", and its line's end when "\r\n" follows in the window. */
static __always_inline void http_request_version(struct http_conn *hc, struct http_parser *p,
						 struct http_scratch *s)
{
	__u32 pos = s->win_pos, err;
	__u64 word;

	if (p->token_len || pos > HTTP_WINDOW - 10 || pos + 8 > s->win_len)
		return;
	word = http_window_word(s, pos);
	if (word != HTTP_LE_HTTP_1_1 && word != HTTP_LE_HTTP_1_0)
		return;
	p->token_len = 8;
	p->roll_lo = word == HTTP_LE_HTTP_1_1 ? TOKEN_HTTP_1_1 : TOKEN_HTTP_1_0;
	if (pos + 10 > s->win_len || s->data[http_window_index(pos + 8)] != '\r' ||
	    s->data[http_window_index(pos + 9)] != '\n') {
		http_take_head_bytes(p, s, 8);
		return;
	}
	if (!http_take_head_bytes(p, s, 10))
		return;
	err = http_request_line_done(hc, p, s);
	if (err)
		s->error = err;
}

/* A response's "TTP/1.x " after its 'H' (a status line the byte path began). */
static __always_inline void http_response_version(struct http_parser *p, struct http_scratch *s)
{
	__u32 pos = s->win_pos;
	__u64 word;

	if (p->token_len != 1 || pos > HTTP_WINDOW - 8 || pos + 8 > s->win_len)
		return;
	word = http_window_word(s, pos);
	if (word != HTTP_LE_TTP_1_1_SP && word != HTTP_LE_TTP_1_0_SP)
		return;
	p->phase = PH_STATUS;
	p->token_len = 0;
	http_take_head_bytes(p, s, 8);
}

/*
 * Content-Length's value, up to HTTP_RUN_BYTES bytes, through the line's
 * '\n' (true when it got there): digits, with blanks and CR passed over as
 * the byte path does. A digit that could overflow the limit, or any other
 * byte, is left to the byte path.
 */
static __always_inline bool http_length_value(struct http_parser *p, struct http_scratch *s)
{
	__u32 pos = s->win_pos, end = s->win_len, n = 0;
	__u64 length = p->content_length;
	bool found = false;
	__u8 c;

	if (pos >= end || end > HTTP_WINDOW)
		return false;
	pos = http_window_index(pos);
#pragma unroll
	for (int i = 0; i < HTTP_RUN_BYTES; i++) {
		if (pos >= end || pos > HTTP_WINDOW - 1)
			break;
		c = s->data[pos];
		if (c == '\n') {
			found = true;
			break;
		}
		if (c >= '0' && c <= '9') {
			if (length > HTTP_MAX_CONTENT_LENGTH / 10)
				break;
			length = length * 10 + (c - '0');
		} else if (c != ' ' && c != '\t' && c != '\r') {
			break;
		}
		pos++;
		n++;
	}
	p->content_length = length;
	p->token_len += n;
	if (!http_take_head_bytes(p, s, n + found) || !found)
		return false;
	http_header_line_end(p);
	return true;
}

/* Whether the parser is at the start of a header line, with nothing decided about it. */
static __always_inline bool http_at_line_start(const struct http_parser *p)
{
	return !p->token_len && !(p->flags & (HTTP_F_SKIP | HTTP_F_VALUE));
}

/*
 * At the start of a header line: one not starting "content-length:" or
 * "transfer-encodin" (any case), nor blank, is of no interest from its
 * first byte (HTTP_F_SKIP).
 */
static __always_inline void http_line_start(struct http_parser *p, const struct http_scratch *s)
{
	__u32 pos = s->win_pos;
	__u64 first, second;
	__u8 c;

	if (pos >= s->win_len)
		return;
	c = s->data[http_window_index(pos)];
	if (c == '\r' || c == '\n')
		return;
	if ((c | 0x20) != 'c' && (c | 0x20) != 't') {
		p->flags |= HTTP_F_SKIP;
		return;
	}
	if (pos > HTTP_WINDOW - 16 || pos + 16 > s->win_len)
		return;
	first = http_window_word(s, pos) | HTTP_LE_LOWER;
	second = http_window_word(s, pos + 8) | HTTP_LE_LOWER;
	if (first == HTTP_LE_CONTENT_ && (second & 0xffffffffffffffULL) == HTTP_LE_LENGTH_COLON)
		return;
	if (first != HTTP_LE_TRANSFER || second != HTTP_LE_ENCODIN)
		p->flags |= HTTP_F_SKIP;
}

/* At the start of a header line: "content-length:" (any case), taken whole. */
static __always_inline void http_length_name(struct http_parser *p, struct http_scratch *s)
{
	__u32 pos = s->win_pos;

	if (pos > HTTP_WINDOW - 16 || pos + 16 > s->win_len ||
	    (http_window_word(s, pos) | HTTP_LE_LOWER) != HTTP_LE_CONTENT_ ||
	    ((http_window_word(s, pos + 8) | HTTP_LE_LOWER) & 0xffffffffffffffULL) !=
		    HTTP_LE_LENGTH_COLON)
		return;
	p->token_len = 15;
	p->header = HDR_CONTENT_LENGTH;
	p->flags |= HTTP_F_VALUE | HTTP_F_LENGTH;
	p->content_length = 0;
	http_take_head_bytes(p, s, 15);
}

/* At the start of a header line: the blank line, which ends the head. */
static __always_inline void http_blank_line(struct http_conn *hc, struct http_parser *p,
					    struct http_scratch *s)
{
	__u32 pos = s->win_pos;

	if (pos + 2 > s->win_len || s->data[http_window_index(pos)] != '\r' ||
	    s->data[http_window_index(pos + 1)] != '\n')
		return;
	if (http_take_head_bytes(p, s, 2))
		http_headers_done(hc, p, s);
}

#define HTTP_LINES_PER_STEP 8

/*
 * One header line of no interest, taken whole (its start judged, then the
 * rest skipped by words); 0 when the line is not one to skip or not all
 * here. A global function, like http_take_words() (see there): the unrolled
 * loop below calls it HTTP_LINES_PER_STEP times for about the verifier's
 * work of one.
 */
__weak __noinline int http_take_skipped_line(struct http_conn *hc, struct http_scratch *s)
{
	struct http_parser *p;

	if (!hc || !s)
		return 0;
	p = http_parser_of(hc, s);
	if (http_at_line_start(p))
		http_line_start(p, s);
	return (p->flags & HTTP_F_SKIP) && http_rest_of_line(p, s);
}

/*
 * A header block's lines as far as the word paths take them: up to
 * HTTP_LINES_PER_STEP lines of no interest, then a Content-Length line,
 * then the blank line; the next step takes what follows.
 */
static __always_inline void http_header_words(struct http_conn *hc, struct http_parser *p,
					      struct http_scratch *s)
{
#pragma unroll
	for (int i = 0; i < HTTP_LINES_PER_STEP; i++) {
		if (!http_take_skipped_line(hc, s))
			break;
	}
	if (s->error)
		return;
	if (http_at_line_start(p))
		http_length_name(p, s);
	if (p->header == HDR_CONTENT_LENGTH && (p->flags & HTTP_F_VALUE) && !s->error &&
	    !http_length_value(p, s))
		return;
	if (http_at_line_start(p) && !s->error)
		http_blank_line(hc, p, s);
}

/*
 * Between requests: where the next request's first bytes are, in case a
 * request starts there (config http_log_policy). Only its own segment of
 * this call is copied: a head split over calls or iovec entries is cut.
 */
static __always_inline void http_note_head(struct http_scratch *s)
{
	__u32 idx = s->seg_idx;
	__u64 avail;

	s->head_avail = 0;
	if (idx >= s->nseg || idx >= HTTP_SEGMENTS)
		return;
	avail = s->seg_len[idx] - s->seg_off;
	if (avail > s->left)
		avail = s->left;
	s->head_addr = s->seg_base[idx] + s->seg_off;
	s->head_avail = avail;
}

/* A request started where http_note_head() looked: send its first bytes. */
static __noinline int http_send_head(struct http_conn *hc, struct http_scratch *s)
{
	__u64 len = s->head_avail;

	if (!hc || !s)
		return 0;
	s->head_avail = 0;
	if (!http_records_of(hc->tail))
		return 0; /* its exchange sends no record either */
	if (len > KACCESS_HTTP_HEAD_MAX)
		len = KACCESS_HTTP_HEAD_MAX;
	barrier_var(len);
	if (len > KACCESS_HTTP_HEAD_MAX)
		return 0;
	s->head.type = KACCESS_EVENT_HTTP_REQUEST_HEAD;
	s->head.len = len;
	s->head.sk = hc->sk;
	s->head.conn_start_ns = hc->conn_start_ns;
	s->head.seq = hc->tail;
	s->head.pad = 0;
	if (bpf_probe_read_user(s->head.bytes, len, (void *)s->head_addr) ||
	    bpf_ringbuf_output(&events, &s->head, sizeof(struct kaccess_http_head_event) + len,
			       ringbuf_output_flags(sizeof(struct kaccess_http_head_event) + len)))
		count_loss(KACCESS_CTR_HTTP_RECORD_LOST);
	return 0;
}

/*
 * Whatever the word paths take from the parser's phase on: a plain
 * request's whole head, or a response's status line and first header
 * lines, in one step. The caller sees s->left move.
 */
static __always_inline void http_words(struct http_conn *hc, struct http_parser *p,
				       struct http_scratch *s)
{
	if (p->phase == PH_IDLE && !s->is_request)
		http_status_line(hc, p, s);
	if (p->phase == PH_IDLE && s->is_request) {
		http_method_word(hc, p, s);
		if (http_records && s->head_avail && p->phase == PH_PATH)
			http_send_head(hc, s); /* before the request line ends: its seq is hc->tail */
	}
	if (p->phase == PH_PATH)
		http_path_run(hc, p, s);
	if (p->phase == PH_QUERY && !s->error)
		http_query_run(hc, p, s);
	if (p->phase == PH_REQ_VERSION && !s->error)
		http_request_version(hc, p, s);
	if (p->phase == PH_RESP_VERSION)
		http_response_version(p, s);
	if (p->phase == PH_REASON && !s->error)
		http_rest_of_line(p, s);
	if (p->phase == PH_HEADERS && !s->error)
		http_header_words(hc, p, s);
}

/*
 * The word paths as a global function (not static): the verifier checks a
 * global function once per program, on its own, with only its arguments'
 * types known, and its callers see an unknown return. Inlined into
 * http_step() the word paths' many exits multiplied the states the rest of
 * the step was checked in: 1.50 million instructions verified in all
 * (`kaccess --check`, 6.18) against 0.54 without them, which under QEMU's
 * emulated CPUs cost the CI's guests most of their time; this way, 0.72.
 * __weak: each object that includes this header has a copy, the static
 * linker keeps one.
 */
__weak __noinline int http_take_words(struct http_conn *hc, struct http_scratch *s)
{
	if (!hc || !s)
		return 0;
	http_words(hc, http_parser_of(hc, s), s);
	return 0;
}

/*
 * A walk step: what the word paths take at once (a token, a line, a
 * length), else one byte, or a run of body bytes. 1 stops the walk.
 */
static __always_inline long http_step_in(void *ctx, enum http_payload payload)
{
	struct http_walk *walk = ctx;
	struct http_conn *hc = walk->hc;
	struct http_scratch *s = walk->s;
	struct http_parser *p;
	__u64 left;
	int c;

	if (!hc || !s || s->error || !s->left)
		return 1;
	p = http_parser_of(hc, s);
	if (p->phase == PH_BODY || p->phase == PH_CHUNK_DATA || p->phase == PH_UNTIL_CLOSE) {
		http_skip(hc, p, s);
		return 0;
	}
	if (payload == HTTP_PAYLOAD_NONE) { /* what the window fill below would find */
		s->error = HTTP_ERR_NO_PAYLOAD;
		return 1;
	}
	if (s->win_pos >= s->win_len) {
		c = http_window_fill(s);
		if (c == -2)
			return 0;
		if (c < 0) {
			s->error = HTTP_ERR_NO_PAYLOAD;
			return 1;
		}
	}
	if (http_records && s->is_request && p->phase == PH_IDLE)
		http_note_head(s);
	left = s->left;
	http_take_words(hc, s);
	if (s->left != left) {
		/* the body after a head taken in this step: skipped in it too */
		if (!s->error && (p->phase == PH_BODY || p->phase == PH_CHUNK_DATA ||
				  p->phase == PH_UNTIL_CLOSE))
			http_skip(hc, p, s);
	} else if (!s->error) {
		c = http_next_byte(s);
		if (c == -2)
			return 0;
		if (c < 0) {
			s->error = HTTP_ERR_NO_PAYLOAD;
			return 1;
		}
		s->error = http_byte(hc, p, s, c);
		if (http_records && s->head_avail && !s->error && p->phase == PH_METHOD)
			http_send_head(hc, s);
	}
	if (http_records)
		s->head_avail = 0; /* a head noted is for the bytes that start a request only */
	return s->error ? 1 : 0;
}

/* bpf_loop bodies: one per payload kind, as the verifier walks each per program. */
static long http_step(__u32 index, void *ctx)
{
	return http_step_in(ctx, HTTP_PAYLOAD_READABLE);
}

static long http_step_unreadable(__u32 index, void *ctx)
{
	return http_step_in(ctx, HTTP_PAYLOAD_NONE);
}

/* Where this call's payload is: up to HTTP_SEGMENTS user segments. */
static __always_inline void http_segments(struct http_scratch *s, __u32 kind, __u64 ptr,
					  __u64 count, __u64 bytes)
{
	struct user_msghdr msg;
	__u32 n;

	s->nseg = 0;
	s->seg_idx = 0;
	s->seg_off = 0;
	if (kind == HTTP_BUF_PLAIN) {
		s->seg_base[0] = ptr;
		s->seg_len[0] = bytes;
		s->nseg = 1;
		return;
	}
	if (kind == HTTP_BUF_MSGHDR) {
		if (bpf_probe_read_user(&msg, sizeof(msg), (void *)ptr))
			return;
		ptr = (__u64)msg.msg_iov;
		count = msg.msg_iovlen;
		kind = HTTP_BUF_IOVEC;
	}
	if (kind != HTTP_BUF_IOVEC || !count)
		return;
	n = count > HTTP_SEGMENTS ? HTTP_SEGMENTS : count;
	/* the window doubles as room for the iovec array */
	if (bpf_probe_read_user(s->data, n * sizeof(struct iovec), (void *)ptr))
		return;
#pragma unroll
	for (int i = 0; i < HTTP_SEGMENTS; i++) {
		if (i >= n)
			break;
		s->seg_base[i] = *(__u64 *)&s->data[i * 16];
		s->seg_len[i] = *(__u64 *)&s->data[i * 16 + 8];
	}
	s->nseg = n;
}

/* Whether a call's payload starts with "HTTP/1." (an HTTP answer to non-HTTP). */
static __always_inline bool http_payload_is_response(struct http_scratch *s, __u64 bytes)
{
	__u64 prefix = 0;

	if (!s->nseg || bytes < 7 || s->seg_len[0] < 7 ||
	    bpf_probe_read_user(&prefix, 7, (void *)s->seg_base[0]))
		return false;
	/* little-endian load of "HTTP/1." */
	return prefix == 0x2e312f50545448ULL;
}

/*
 * A call belongs to the message of its first byte: the one the parser is
 * in, or (parser idle) the one that begins with it. A message that ends
 * inside the call keeps it; one that begins after it in the call does not.
 */
static __always_inline void http_count_call(struct http_parser *p, __u64 call_ns)
{
	p->calls++;
	p->call_ns += call_ns;
}

/*
 * Feed one read or write of `bytes` (> 0) on a tracked connection to its
 * parser. `conn` is the conn_table entry of socket `sk`.
 */
static __always_inline void http_transfer(__u64 sk, struct kaccess_conn *conn, bool is_read,
					  __u64 bytes, __u64 ptr, __u32 kind, __u64 count,
					  __u64 now_ns, __u64 call_ns, enum http_payload payload)
{
	struct http_walk walk = {};
	struct http_conn *hc;
	struct http_scratch *s;
	bool is_request;
	__u32 zero = 0;
	__u8 state;

	if (!http_enabled || !conn)
		return;
	state = conn->http;
	if (state >= KACCESS_HTTP_NO_FINAL)
		return;
	is_request = (conn->agg.role == KACCESS_ROLE_CLIENT) != is_read;
	s = bpf_map_lookup_elem(&http_scratch, &zero);
	if (!s)
		return;
	if (state == KACCESS_HTTP_NO) {
		if (is_request)
			return;
		http_segments(s, kind, ptr, count, bytes);
		if (http_payload_is_response(s, bytes))
			count_loss(KACCESS_CTR_HTTP_PARSE_FAILED); /* an HTTP server refused it */
		conn->http = KACCESS_HTTP_NO_FINAL;
		return;
	}
	if (state == KACCESS_HTTP_UNDECIDED) {
		if (!is_request) { /* the server spoke first: not HTTP */
			conn->http = KACCESS_HTTP_NO_FINAL;
			return;
		}
		/* BPF_ANY: a socket address reused without a destroy seen starts afresh */
		s->fresh_conn.agg = conn->agg;
		s->fresh_conn.sk = sk;
		s->fresh_conn.conn_start_ns = conn->start_ns;
		/* fixed once the first request bytes move: records need no conn_table lookup */
		s->fresh_conn.local_port = conn->local_port;
		s->fresh_conn.remote_port = conn->remote_port;
		if (bpf_map_update_elem(&http_conns, &sk, &s->fresh_conn, BPF_ANY)) {
			count_loss(KACCESS_CTR_HTTP_CONNS_FULL);
			conn->http = KACCESS_HTTP_NO_FINAL;
			return;
		}
		conn->http = KACCESS_HTTP_YES;
	}
	hc = bpf_map_lookup_elem(&http_conns, &sk);
	if (!hc)
		return;
	__builtin_memcpy(&hc->agg, &conn->agg, sizeof(hc->agg));
	http_segments(s, kind, ptr, count, bytes);
	s->left = bytes;
	s->win_len = s->win_pos = 0;
	s->now_ns = now_ns;
	s->error = HTTP_OK;
	s->is_request = is_request;
	s->head_avail = 0;
	http_count_call(is_request ? &hc->req : &hc->resp, call_ns);
	walk.hc = hc;
	walk.s = s;
	if (payload == HTTP_PAYLOAD_NONE)
		bpf_loop(HTTP_MAX_STEPS, http_step_unreadable, &walk, 0);
	else
		bpf_loop(HTTP_MAX_STEPS, http_step, &walk, 0);
	if (!s->error && s->left)
		s->error = HTTP_ERR_BUDGET;
	if (!is_request)
		hc->last_resp_ns = now_ns;
	switch (s->error) {
	case HTTP_OK:
		return;
	case HTTP_ERR_NOT_HTTP:
		if (is_request && hc->requests <= 1 && hc->tail == 0) {
			conn->http = KACCESS_HTTP_NO; /* the first bytes decided: not HTTP */
			bpf_map_delete_elem(&http_conns, &sk);
			return;
		}
		count_loss(KACCESS_CTR_HTTP_PARSE_FAILED);
		break;
	case HTTP_ERR_UPGRADE: /* the request waits for the next bytes (h2_upgrade) */
		conn->http = KACCESS_HTTP_SWITCHING;
		return;
	case HTTP_ERR_PIPELINE:
		count_loss(KACCESS_CTR_HTTP_PIPELINE_FULL);
		break;
	default:
		count_loss(KACCESS_CTR_HTTP_PARSE_FAILED);
		break;
	}
	conn->http = KACCESS_HTTP_FAILED;
	bpf_map_delete_elem(&http_conns, &sk);
}

/* The connection ends: a body read to the close ends now; the rest are unanswered. */
static __always_inline void http_conn_end(__u64 sk, __u64 now_ns)
{
	struct http_conn *hc = bpf_map_lookup_elem(&http_conns, &sk);
	struct http_request_slot *slot;

	if (!hc)
		return;
	/* answered early, and the request's body never finished */
	slot = &hc->pending[hc->req.seq & (HTTP_PIPELINE_DEPTH - 1)];
	if (slot->answered && slot->seq == hc->req.seq) {
		slot->body_bytes = hc->req.body_bytes;
		http_take_request_calls(hc, slot);
		http_count_exchange(hc, slot);
	}
	if (hc->head != hc->tail) {
		/* a body to the close, or a 101 with nothing after it */
		if (hc->resp.phase == PH_UNTIL_CLOSE || hc->resp.phase == PH_SWITCHED)
			http_record(hc, HTTP_COMPLETE, hc->last_resp_ns);
		else if (hc->resp.phase != PH_IDLE)
			http_record(hc, HTTP_TRUNCATED, now_ns);
	}
	hc->resp.status = 0;
#pragma unroll
	for (int i = 0; i < HTTP_PIPELINE_DEPTH; i++)
		http_record(hc, HTTP_NO_RESPONSE, now_ns);
	bpf_map_delete_elem(&http_conns, &sk);
}

#endif /* KACCESS_BPF_HTTP_BPF_H */
