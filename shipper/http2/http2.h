/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * HTTP/2 exchanges, completed in userspace. The kernel (bpf/http2.bpf.h)
 * cuts h2c connections into frames, keeps per-stream sizes and times and
 * sends two kinds of ring buffer records: pieces of header blocks, in
 * order, and one record per stream whose exchange ended. Here the blocks
 * are decoded with libnghttp2's HPACK inflater, one per connection
 * direction (the dynamic table is per direction), and each ended stream
 * becomes one exchange in a kaccess_http_key/value row, named
 * "METHOD:path" with the same hash the kernel uses for HTTP/1.x. The rows
 * join the kernel's HTTP rows at the drain, so the rollup and the sinks see
 * one kind of row.
 *
 * When a direction's HPACK state is unknown (header bytes were lost, the
 * connection was open before kaccess started, or a block did not decode),
 * each later block is decoded alone: the fields before its first reference
 * to a dynamic-table entry are exact (pseudo-headers come first), and an
 * exchange whose :method/:path or :status are not among them is counted
 * under H2_UNKNOWN_ENDPOINT or without a status class, and in the
 * h2_headers_undecoded loss counter.
 */
#ifndef KACCESS_HTTP2_H
#define KACCESS_HTTP2_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kaccess.h"
#include "maps_read.h"

/* The endpoint of exchanges whose request headers could not be decoded. */
#define H2_UNKNOWN_ENDPOINT "UNKNOWN:unknown"

struct endpoint_names;
struct h2_exchanges;
struct http_records;

struct h2_exchanges_config {
	struct endpoint_names *names; /* endpoint texts are added here */
	int streams_map_fd;           /* h2_streams: streams still open when a connection ends */
	bool keep_query;              /* "METHOD:path?query" (config http_keep_query) */
	uint64_t *undecoded;          /* incremented per exchange counted without its headers */
	struct http_records *records; /* access-log records: one per exchange */
};

int h2_exchanges_new(struct h2_exchanges **ret_h2, const struct h2_exchanges_config *cfg);
void h2_exchanges_free(struct h2_exchanges *h2); /* NULL-safe */

/* A KACCESS_EVENT_H2_HEADERS record of `size` bytes. */
void h2_exchanges_on_headers(struct h2_exchanges *h2, const void *data, size_t size);

/* A KACCESS_EVENT_H2_STREAM_END record: one exchange. */
void h2_exchanges_on_stream_end(struct h2_exchanges *h2, const void *data, size_t size);

/*
 * A KACCESS_EVENT_H2_BATCH record of `size` bytes: one read's or write's
 * header pieces and stream ends, handled in order as if sent one by one.
 */
void h2_exchanges_on_batch(struct h2_exchanges *h2, const void *data, size_t size);

/*
 * A connection ended (KACCESS_EVENT_CONN_CLOSE), in wall-clock bucket
 * `bucket`: its streams still open are exchanges cut short, counted there.
 */
void h2_exchanges_on_conn_close(struct h2_exchanges *h2, const struct kaccess_conn_event *event,
				uint64_t bucket);

/* Move the rows of buckets up to `last_bucket` to the end of `rows`: 0 or -ENOMEM. */
int h2_exchanges_take_rows(struct h2_exchanges *h2, uint64_t last_bucket, struct http_rows *rows);

/* Append a copy of the rows of `bucket` (the live view): 0 or -ENOMEM. */
int h2_exchanges_copy_rows(const struct h2_exchanges *h2, uint64_t bucket, struct http_rows *rows);

#endif
