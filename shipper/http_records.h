/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Access-log records of HTTP exchanges: one per exchange, for the sinks
 * that ship access logs (NDJSON, OAP). HTTP/1.x records come from the
 * kernel in two parts (maps/kaccess.h): the request's first bytes, sent
 * when it starts, and its numbers, sent when it is counted; they are paired
 * here, and Host and the trace headers (sw8, traceparent, b3) are read from
 * the first bytes. HTTP/2 records are made by shipper/http2 from the
 * decoded headers. The policy (config `http_log_policy`) decides which
 * records are shipped; the metrics never depend on it.
 */
#ifndef KACCESS_HTTP_RECORDS_H
#define KACCESS_HTTP_RECORDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kaccess.h"

struct endpoint_names;

/* One exchange as the sinks see it. Strings are NULL when absent. */
struct http_record {
	uint64_t sk;                  /* the connection, as its connection events name it */
	uint64_t conn_start_ns;
	struct kaccess_agg_key agg;   /* local cgroup, peer address and port, role */
	/* the socket's ports (0: not known); agg.peer_port is 0 for a server, a DNAT's backend's */
	uint16_t local_port, remote_port;
	uint32_t seq;                 /* HTTP/1.x: the request's number on its connection; HTTP/2: stream id */
	uint8_t version;              /* enum kaccess_http_version */
	uint8_t outcome;              /* enum kaccess_http_outcome */
	uint16_t status;              /* final status; 0 without a response */
	uint64_t start_ns, end_ns;    /* CLOCK_MONOTONIC (nanoseconds since boot) */
	uint64_t request_header_bytes, request_body_bytes;
	uint64_t response_header_bytes, response_body_bytes;
	struct kaccess_http_calls calls; /* the exchange's read and write calls (maps/kaccess.h) */
	const char *method, *path, *host;
	const char *sw8, *traceparent, *b3;
	bool head_cut;                /* the request head was not all seen: headers may be missing */
};

/* What happened to records; read by /metrics from another thread (atomics). */
struct http_record_counts {
	uint64_t shipped;   /* handed to the sinks */
	uint64_t filtered;  /* left out by the policy */
	uint64_t sampled_out_in_kernel; /* HTTP/1.x left out by `sampled` before any record was
					 * sent (the kernel's tally, copied when losses are read) */
	uint64_t head_cut;  /* shipped without the whole request head (loss http_record_head_cut) */
	uint64_t shed;      /* left out while the shipper was behind (loss http_record_shed) */
};

typedef void (*http_record_ship_fn)(void *ctx, const struct http_record *record);

struct http_records_config {
	struct endpoint_names *names;   /* HTTP/1.x endpoint texts: method and path */
	unsigned int policy;            /* enum http_log_policy (config.h) */
	unsigned int slow_ms;           /* errors_slow: slow from this duration */
	unsigned int sample_rate;       /* sampled: 1 in N per connection */
	bool keep_query;                /* paths keep the query string (config http_keep_query) */
	struct http_record_counts *counts;
	http_record_ship_fn ship;
	void *ship_ctx;
};

struct http_records;

int http_records_new(struct http_records **ret_records, const struct http_records_config *cfg);
void http_records_free(struct http_records *records); /* NULL-safe */

/*
 * While `behind`, records the policy would ship are counted as shed and
 * not made: the shipper reading the ring buffer late sheds its dearest
 * work, so that what the numbers and HTTP/2's HPACK tables need is not
 * lost with it (see loop.c).
 */
void http_records_set_behind(struct http_records *records, bool behind);

/* A KACCESS_EVENT_HTTP_REQUEST_HEAD record of `size` bytes: kept until its exchange. */
void http_records_on_head(struct http_records *records, const void *data, size_t size);

/* A KACCESS_EVENT_HTTP_EXCHANGE record: paired with its head, then submitted. */
void http_records_on_exchange(struct http_records *records, const void *data, size_t size);

/*
 * Apply the policy to `record` and ship it or count it filtered.
 * `sample_index` is the exchange's number on its connection, from 0.
 */
void http_records_submit(struct http_records *records, const struct http_record *record,
			 uint64_t sample_index);

/*
 * Take the head of request `request_seq` of the record's connection: its
 * Host and trace headers go into `record` (head_cut when it is not there
 * or was cut), then the record to http_records_submit(). HTTP/1.x
 * exchanges, and HTTP/2 stream 1 after an upgrade, whose request was the
 * HTTP/1.1 request of that number.
 */
void http_records_submit_with_head(struct http_records *records, struct http_record *record,
				   uint32_t request_seq, uint64_t sample_index);

/* Drop heads received before `before_ns` (CLOCK_MONOTONIC) whose exchange never came. */
void http_records_expire(struct http_records *records, uint64_t before_ns);

/*
 * Method and path of a record from its endpoint's text ("METHOD:path"),
 * split in `text`; left NULL when the text is not known.
 */
void http_record_set_method_path(struct endpoint_names *names, uint64_t endpoint,
				 char text[KACCESS_HTTP_ENDPOINT_MAX + 1], struct http_record *r);

/*
 * Header `name` (lower case) of an HTTP/1.x head: its value, without
 * surrounding blanks, copied into `buf`. 0, -ENOENT, or -ENOSPC when it
 * does not fit. Exposed for the unit test.
 */
int http_head_header(const char *head, size_t len, const char *name, char *buf, size_t buf_len);

#endif
