// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <nghttp2/nghttp2.h>

#include "endpoint_names.h"
#include "http2.h"
#include "http_records.h"
#include "log.h"

#define CONN_SLOTS 1024          /* hash chains of connections */
#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL
/* Dynamic table sizes a peer may announce; larger ones make its blocks undecodable. */
#define HPACK_TABLE_MAX_BYTES 65536
#define METHOD_MAX 16
#define RECORD_VALUE_MAX 512     /* :authority and trace header values kept for records */

/* The request fields an access-log record shows (only with records on); NULL when absent. */
enum h2_record_field { H2_AUTHORITY, H2_SW8, H2_TRACEPARENT, H2_B3, H2_RECORD_FIELDS };

static const char *const h2_record_field_names[H2_RECORD_FIELDS] = {
	":authority", "sw8", "traceparent", "b3",
};

/* What the header blocks of one stream said. */
struct h2_stream_names {
	uint32_t stream_id;
	bool named;              /* :method and :path decoded */
	uint16_t status;         /* last :status decoded (the final one after 1xx) */
	uint64_t endpoint;       /* hash of "METHOD:path" */
	char *record_fields[H2_RECORD_FIELDS]; /* malloc'ed copies, for the record */
};

/* The decoded fields of one header block that matter. */
struct h2_decoded {
	char method[METHOD_MAX + 1];
	char path[KACCESS_HTTP_ENDPOINT_MAX + 1];
	size_t path_len;
	uint16_t status;
	bool has_method, has_path;
	bool want_record_fields;
	char record_fields[H2_RECORD_FIELDS][RECORD_VALUE_MAX + 1];
	bool has_record_field[H2_RECORD_FIELDS];
};

/*
 * A block this long or shorter that leaves the dynamic table as it was
 * (block_leaves_table) can be the same as the direction's last one:
 * h2load's and nghttp's repeated requests, a server's repeated responses
 * (5-20 bytes).
 */
#define REUSE_BLOCK_MAX 128

/* One direction's HPACK decoding: its inflater and the block being gathered. */
struct h2_direction {
	nghttp2_hd_inflater *inflater; /* NULL once the table is unknown */
	bool table_unknown;
	bool in_block;                 /* pieces of a block are arriving */
	uint32_t block_stream;
	size_t block_len;
	uint8_t block[KACCESS_H2_BLOCK_MAX];
	/*
	 * The last block the inflater decoded, when it decoded whole and left
	 * the table as it was: the same bytes next decode to the same fields,
	 * kept here, without the inflater.
	 */
	bool reusable;
	size_t reuse_len;
	uint8_t reuse_block[REUSE_BLOCK_MAX];
	struct h2_decoded decoded;     /* the last block's fields */
	bool endpoint_named;           /* it had :method and :path: */
	uint64_t endpoint;             /* the hash of its "METHOD:path" */
};

struct h2_connection {
	struct h2_connection *next;
	uint64_t sk, conn_start_ns;
	struct h2_direction dir[2];    /* [0] requests, [1] responses */
	struct h2_stream_names *streams;
	size_t stream_count, stream_capacity;
};

struct h2_exchanges {
	struct h2_exchanges_config cfg;
	uint64_t unknown_endpoint;
	struct h2_connection *conns[CONN_SLOTS];
	struct http_rows rows;         /* finished exchanges, not drained yet */
	bool names_full_logged;        /* the endpoint text table refused a name: said once */
};

static uint64_t fnv1a(const char *text, size_t len)
{
	uint64_t hash = FNV_OFFSET;

	for (size_t i = 0; i < len; i++)
		hash = (hash ^ (uint8_t)text[i]) * FNV_PRIME;
	return hash;
}


int h2_exchanges_new(struct h2_exchanges **ret_h2, const struct h2_exchanges_config *cfg)
{
	struct h2_exchanges *h2 = calloc(1, sizeof(*h2));
	int err;

	if (!h2)
		return -ENOMEM;
	h2->cfg = *cfg;
	h2->unknown_endpoint = fnv1a(H2_UNKNOWN_ENDPOINT, strlen(H2_UNKNOWN_ENDPOINT));
	err = endpoint_names_add(cfg->names, h2->unknown_endpoint, H2_UNKNOWN_ENDPOINT,
				 strlen(H2_UNKNOWN_ENDPOINT));
	if (err) {
		free(h2);
		return err;
	}
	*ret_h2 = h2;
	return 0;
}

static void stream_fields_free(struct h2_stream_names *stream)
{
	for (int i = 0; i < H2_RECORD_FIELDS; i++) {
		free(stream->record_fields[i]);
		stream->record_fields[i] = NULL;
	}
}

static void connection_free(struct h2_connection *conn)
{
	for (int d = 0; d < 2; d++)
		if (conn->dir[d].inflater)
			nghttp2_hd_inflate_del(conn->dir[d].inflater);
	for (size_t i = 0; i < conn->stream_count; i++)
		stream_fields_free(&conn->streams[i]);
	free(conn->streams);
	free(conn);
}

void h2_exchanges_free(struct h2_exchanges *h2)
{
	if (!h2)
		return;
	for (size_t i = 0; i < CONN_SLOTS; i++) {
		while (h2->conns[i]) {
			struct h2_connection *next = h2->conns[i]->next;

			connection_free(h2->conns[i]);
			h2->conns[i] = next;
		}
	}
	http_rows_free(&h2->rows);
	free(h2);
}

static struct h2_connection **connection_slot(struct h2_exchanges *h2, uint64_t sk,
					      uint64_t conn_start_ns)
{
	struct h2_connection **at = &h2->conns[((sk >> 6) ^ conn_start_ns) % CONN_SLOTS];

	while (*at && ((*at)->sk != sk || (*at)->conn_start_ns != conn_start_ns))
		at = &(*at)->next;
	return at;
}

static int inflater_new(nghttp2_hd_inflater **ret_inflater)
{
	nghttp2_hd_inflater *inflater;
	int err = nghttp2_hd_inflate_new(&inflater);

	if (err)
		return -ENOMEM;
	/* the peer's SETTINGS_HEADER_TABLE_SIZE is not known here: accept what it may say */
	nghttp2_hd_inflate_change_table_size(inflater, HPACK_TABLE_MAX_BYTES);
	*ret_inflater = inflater;
	return 0;
}

/* The connection's state, created at its first header block. NULL: no memory. */
static struct h2_connection *connection_get(struct h2_exchanges *h2, uint64_t sk,
					    uint64_t conn_start_ns, bool create)
{
	struct h2_connection **slot = connection_slot(h2, sk, conn_start_ns), *conn;

	if (*slot || !create)
		return *slot;
	conn = calloc(1, sizeof(*conn));
	if (!conn)
		return NULL;
	conn->sk = sk;
	conn->conn_start_ns = conn_start_ns;
	for (int d = 0; d < 2; d++)
		if (inflater_new(&conn->dir[d].inflater))
			conn->dir[d].table_unknown = true;
	*slot = conn;
	return conn;
}

static struct h2_stream_names *stream_find(struct h2_connection *conn, uint32_t stream_id)
{
	for (size_t i = 0; i < conn->stream_count; i++)
		if (conn->streams[i].stream_id == stream_id)
			return &conn->streams[i];
	return NULL;
}

static struct h2_stream_names *stream_get(struct h2_connection *conn, uint32_t stream_id)
{
	struct h2_stream_names *stream = stream_find(conn, stream_id), *bigger;

	if (stream)
		return stream;
	if (conn->stream_count == conn->stream_capacity) {
		size_t capacity = conn->stream_capacity ? conn->stream_capacity * 2 : 8;

		bigger = realloc(conn->streams, capacity * sizeof(*bigger));
		if (!bigger)
			return NULL;
		conn->streams = bigger;
		conn->stream_capacity = capacity;
	}
	stream = &conn->streams[conn->stream_count++];
	memset(stream, 0, sizeof(*stream));
	stream->stream_id = stream_id;
	return stream;
}

static void stream_forget(struct h2_connection *conn, struct h2_stream_names *stream)
{
	stream_fields_free(stream);
	*stream = conn->streams[--conn->stream_count];
}

static bool name_is(const nghttp2_nv *nv, const char *name)
{
	return nv->namelen == strlen(name) && memcmp(nv->name, name, nv->namelen) == 0;
}

static void decoded_take(struct h2_decoded *out, const nghttp2_nv *nv, bool keep_query)
{
	size_t len = nv->valuelen;

	if (name_is(nv, ":method") && len && len <= METHOD_MAX) {
		memcpy(out->method, nv->value, len);
		out->method[len] = '\0';
		out->has_method = true;
	} else if (name_is(nv, ":path") && len) {
		const void *query = keep_query ? NULL : memchr(nv->value, '?', len);

		if (query)
			len = (const uint8_t *)query - nv->value;
		if (len > KACCESS_HTTP_ENDPOINT_MAX)
			len = KACCESS_HTTP_ENDPOINT_MAX;
		memcpy(out->path, nv->value, len);
		out->path_len = len;
		out->has_path = true;
	} else if (name_is(nv, ":status") && len == 3) {
		out->status = (nv->value[0] - '0') * 100 + (nv->value[1] - '0') * 10 + (nv->value[2] - '0');
	} else if (out->want_record_fields) {
		for (int i = 0; i < H2_RECORD_FIELDS; i++) {
			if (!name_is(nv, h2_record_field_names[i]) || len > RECORD_VALUE_MAX)
				continue;
			memcpy(out->record_fields[i], nv->value, len);
			out->record_fields[i][len] = '\0';
			out->has_record_field[i] = true;
		}
	}
}

/* Decode a whole block: 0, or a negative nghttp2 error (the inflater is then unusable). */
static int inflate_block(nghttp2_hd_inflater *inflater, const uint8_t *in, size_t len,
			 bool keep_query, struct h2_decoded *out)
{
	for (;;) {
		nghttp2_nv nv;
		int flags = 0;
		ssize_t used = nghttp2_hd_inflate_hd2(inflater, &nv, &flags, in, len, 1);

		if (used < 0)
			return (int)used;
		in += used;
		len -= used;
		if (flags & NGHTTP2_HD_INFLATE_EMIT)
			decoded_take(out, &nv, keep_query);
		if (flags & NGHTTP2_HD_INFLATE_FINAL) {
			nghttp2_hd_inflate_end_headers(inflater);
			return 0;
		}
		if (!used && !(flags & NGHTTP2_HD_INFLATE_EMIT))
			return NGHTTP2_ERR_HEADER_COMP;
	}
}

/*
 * Decode the gathered block of `dir`: with its inflater while the table is
 * known, else alone. Either way the fields decoded before a failure (a
 * reference to a dynamic-table entry not known) are exact and stay in
 * `out`: pseudo-headers come first, so :method, :path and :status often
 * survive. 0 when the whole block decoded.
 */
static int direction_decode(struct h2_exchanges *h2, struct h2_direction *dir,
			    struct h2_decoded *out)
{
	nghttp2_hd_inflater *alone;
	int err;

	if (!dir->table_unknown) {
		err = inflate_block(dir->inflater, dir->block, dir->block_len, h2->cfg.keep_query, out);
		if (!err)
			return 0;
		/* the inflater's table no longer follows the peer's */
		nghttp2_hd_inflate_del(dir->inflater);
		dir->inflater = NULL;
		dir->table_unknown = true;
		return -EBADMSG;
	}
	if (inflater_new(&alone))
		return -ENOMEM;
	err = inflate_block(alone, dir->block, dir->block_len, h2->cfg.keep_query, out);
	nghttp2_hd_inflate_del(alone);
	return err ? -EBADMSG : 0;
}

/*
 * Only the flags and lengths: each buffer is written before a flag says it
 * holds something, so the 2.3 KiB of buffers are not zeroed for every
 * header block (four per HTTP/2 request with both ends watched).
 */
static void decoded_init(struct h2_decoded *out, bool want_record_fields)
{
	out->path_len = 0;
	out->status = 0;
	out->has_method = false;
	out->has_path = false;
	out->want_record_fields = want_record_fields;
	memset(out->has_record_field, 0, sizeof(out->has_record_field));
}

/*
 * An HPACK integer with an `prefix_bits`-bit prefix at block[*at] (RFC 7541
 * 5.1), its bytes skipped: false when the block ends inside it.
 */
static bool hpack_integer(const uint8_t *block, size_t len, size_t *at, unsigned prefix_bits,
			  uint64_t *value)
{
	uint8_t mask = (uint8_t)((1u << prefix_bits) - 1);
	unsigned shift = 0;

	if (*at >= len)
		return false;
	*value = block[(*at)++] & mask;
	if (*value < mask)
		return true;
	while (*at < len && shift < 56) {
		uint8_t b = block[(*at)++];

		*value += (uint64_t)(b & 0x7f) << shift;
		shift += 7;
		if (!(b & 0x80))
			return true;
	}
	return false;
}

/* An HPACK string literal at block[*at], skipped: false when the block ends inside it. */
static bool hpack_string_skip(const uint8_t *block, size_t len, size_t *at)
{
	uint64_t string_len;

	if (!hpack_integer(block, len, at, 7, &string_len) || string_len > len - *at)
		return false;
	*at += string_len;
	return true;
}

/*
 * Whether decoding the block leaves the dynamic table as it was: only
 * indexed fields and literals without indexing or never indexed (RFC 7541
 * 6.1, 6.2.2, 6.2.3), no literal with incremental indexing (6.2.1) and no
 * table size update (6.3). nghttp2's deflater sends :path and
 * content-length without indexing, so repeated requests and responses
 * are such blocks.
 */
static bool block_leaves_table(const uint8_t *block, size_t len)
{
	size_t at = 0;
	uint64_t index;

	while (at < len) {
		uint8_t first = block[at];

		if (first & 0x80) { /* indexed field */
			if (!hpack_integer(block, len, &at, 7, &index))
				return false;
			continue;
		}
		if (first & 0x60) /* 01: incremental indexing, 001: size update */
			return false;
		if (!hpack_integer(block, len, &at, 4, &index)) /* 0000, 0001: name index */
			return false;
		if (!index && !hpack_string_skip(block, len, &at)) /* a literal name */
			return false;
		if (!hpack_string_skip(block, len, &at)) /* the value */
			return false;
	}
	return true;
}

/* Whether the gathered block is the last decoded one again, with the table unchanged since. */
static bool block_repeats(const struct h2_direction *dir)
{
	return dir->reusable && !dir->table_unknown && dir->block_len == dir->reuse_len &&
	       memcmp(dir->block, dir->reuse_block, dir->block_len) == 0;
}

/* The endpoint of the direction's last decoded block, learned from its :method and :path. */
static void direction_name(struct h2_exchanges *h2, struct h2_direction *dir)
{
	const struct h2_decoded *decoded = &dir->decoded;
	char text[METHOD_MAX + 1 + KACCESS_HTTP_ENDPOINT_MAX + 1];
	size_t len;

	dir->endpoint_named = decoded->has_method && decoded->has_path;
	if (!dir->endpoint_named)
		return; /* request trailers: no pseudo-headers */
	len = snprintf(text, sizeof(text), "%s:%.*s", decoded->method, (int)decoded->path_len,
		       decoded->path);
	if (len > KACCESS_HTTP_ENDPOINT_MAX)
		len = KACCESS_HTTP_ENDPOINT_MAX; /* cut like the kernel cuts HTTP/1.x endpoints */
	dir->endpoint = fnv1a(text, len);
	if (endpoint_names_add(h2->cfg.names, dir->endpoint, text, len) && !h2->names_full_logged) {
		log_warn("failed to keep an HTTP/2 endpoint name: later ones may show as hashes");
		h2->names_full_logged = true;
	}
}

/*
 * Decode the direction's gathered block into dir->decoded, unless it
 * repeats the last one, whose fields are there already.
 */
static void direction_decode_block(struct h2_exchanges *h2, struct h2_direction *dir, bool response)
{
	int err;

	if (block_repeats(dir))
		return;
	decoded_init(&dir->decoded, h2->cfg.records && !response);
	err = direction_decode(h2, dir, &dir->decoded); /* what decoded is exact, even after a failure */
	dir->reusable = !err && !dir->table_unknown && dir->block_len <= REUSE_BLOCK_MAX &&
			block_leaves_table(dir->block, dir->block_len);
	if (dir->reusable) {
		dir->reuse_len = dir->block_len;
		memcpy(dir->reuse_block, dir->block, dir->block_len);
	}
	if (!response)
		direction_name(h2, dir);
}

/* A whole block of `stream_id` arrived: what it says goes to the stream. */
static void block_done(struct h2_exchanges *h2, struct h2_connection *conn, bool response,
		       uint32_t stream_id)
{
	struct h2_direction *dir = &conn->dir[response];
	struct h2_stream_names *stream = stream_get(conn, stream_id);
	const struct h2_decoded *decoded = &dir->decoded;

	if (!stream)
		return;
	direction_decode_block(h2, dir, response);
	for (int i = 0; i < H2_RECORD_FIELDS; i++) {
		if (!decoded->has_record_field[i])
			continue;
		free(stream->record_fields[i]);
		stream->record_fields[i] = strdup(decoded->record_fields[i]);
	}
	if (response) {
		if (decoded->status)
			stream->status = decoded->status;
		return;
	}
	if (!dir->endpoint_named)
		return;
	stream->endpoint = dir->endpoint;
	stream->named = true;
}

void h2_exchanges_on_headers(struct h2_exchanges *h2, const void *data, size_t size)
{
	const struct kaccess_h2_headers_event *piece = data;
	struct h2_connection *conn;
	struct h2_direction *dir;
	bool response;

	if (size < sizeof(*piece) || piece->len > size - sizeof(*piece))
		return;
	conn = connection_get(h2, piece->sk, piece->conn_start_ns, true);
	if (!conn) {
		log_warn("failed to track an HTTP/2 connection: %s", strerror(ENOMEM));
		return;
	}
	response = piece->flags & KACCESS_H2_PIECE_RESPONSE;
	dir = &conn->dir[response];
	if (piece->flags & KACCESS_H2_PIECE_GAP) {
		/* bytes of this direction were lost: the table no longer follows the peer's */
		if (dir->inflater)
			nghttp2_hd_inflate_del(dir->inflater);
		dir->inflater = NULL;
		dir->table_unknown = true;
		dir->in_block = false;
		dir->reusable = false;
	}
	if (piece->flags & KACCESS_H2_PIECE_FIRST) {
		dir->in_block = true;
		dir->block_stream = piece->stream_id;
		dir->block_len = 0;
	}
	if (!dir->in_block || dir->block_stream != piece->stream_id)
		return; /* the start of this block was lost */
	if (piece->len > sizeof(dir->block) - dir->block_len) {
		dir->in_block = false;
		return;
	}
	memcpy(dir->block + dir->block_len, piece->bytes, piece->len);
	dir->block_len += piece->len;
	if (piece->flags & KACCESS_H2_PIECE_LAST) {
		dir->in_block = false;
		block_done(h2, conn, response, piece->stream_id);
	}
}

/* The pending row of `key` in `bucket`, created empty. NULL: no memory. */
static struct kaccess_http_value *pending_row(struct h2_exchanges *h2,
					      const struct kaccess_http_key *key, uint64_t bucket)
{
	struct http_rows *rows = &h2->rows;
	struct http_row *row;

	for (size_t i = 0; i < rows->count; i++)
		if (rows->rows[i].value.bucket == bucket &&
		    memcmp(&rows->rows[i].key, key, sizeof(*key)) == 0)
			return &rows->rows[i].value;
	if (rows->count == rows->capacity) {
		size_t capacity = rows->capacity ? rows->capacity * 2 : 16;
		struct http_row *bigger = realloc(rows->rows, capacity * sizeof(*bigger));

		if (!bigger)
			return NULL;
		rows->rows = bigger;
		rows->capacity = capacity;
	}
	row = &rows->rows[rows->count++];
	memset(row, 0, sizeof(*row));
	row->key = *key;
	row->value.bucket = bucket;
	return &row->value;
}

/* One exchange, as HTTP/1.x's are counted in the kernel (bpf/http.bpf.h). */
static void count_exchange(struct h2_exchanges *h2, const struct kaccess_agg_key *agg,
			   const struct h2_stream_names *names, const struct kaccess_h2_sizes *sizes,
			   uint32_t outcome, uint64_t end_ns, uint64_t bucket)
{
	struct kaccess_http_key key = { .agg = *agg, .endpoint = h2->unknown_endpoint };
	struct kaccess_http_value *row;
	uint16_t status = names ? names->status : 0;
	bool named = (names && names->named) || sizes->endpoint;
	uint64_t duration_ns;

	if (names && names->named)
		key.endpoint = names->endpoint;
	else if (sizes->endpoint) /* stream 1 after an upgrade: named by its HTTP/1.1 request */
		key.endpoint = sizes->endpoint;
	if (!named || (sizes->response_blocks && (status < 100 || status > 599)))
		__atomic_add_fetch(h2->cfg.undecoded, 1, __ATOMIC_RELAXED);
	row = pending_row(h2, &key, bucket);
	if (!row) {
		log_warn("failed to keep an HTTP/2 exchange: %s", strerror(ENOMEM));
		return;
	}
	row->call_count++;
	row->request_header_bytes += sizes->request_header_bytes;
	row->request_body_bytes += sizes->request_body_bytes;
	if (!sizes->response_blocks) {
		row->no_response_count++;
		return;
	}
	row->response_header_bytes += sizes->response_header_bytes;
	row->response_body_bytes += sizes->response_body_bytes;
	if (status >= 100 && status <= 599)
		row->status_count[status / 100 - 1]++;
	if (outcome != KACCESS_H2_COMPLETE) {
		row->truncated_count++;
		return;
	}
	if (status >= 100 && status < 500)
		row->success_count++;
	duration_ns = end_ns - sizes->start_ns;
	row->duration_ns_sum += duration_ns;
	row->duration_hist[kaccess_http_latency_bucket(duration_ns)]++;
}

/* Where an exchange's record comes from: its connection and stream. */
struct h2_record_source {
	uint64_t sk, conn_start_ns;
	uint32_t stream_id;
	const struct kaccess_agg_key *agg;
	uint16_t local_port, remote_port; /* the connection's */
};

/* The exchange's access-log record, to the policy and the sinks. */
static void submit_record(struct h2_exchanges *h2, const struct h2_record_source *src,
			  const struct h2_stream_names *names, const struct kaccess_h2_sizes *sizes,
			  uint32_t outcome, uint64_t end_ns)
{
	char endpoint[KACCESS_HTTP_ENDPOINT_MAX + 1];
	struct http_record r;

	if (!h2->cfg.records)
		return; /* before building the record: it is large, and this is per exchange */
	r = (struct http_record){
		.sk = src->sk,
		.conn_start_ns = src->conn_start_ns,
		.agg = *src->agg,
		.seq = src->stream_id,
		.local_port = src->local_port,
		.remote_port = src->remote_port,
		.version = KACCESS_HTTP_VERSION_2,
		.start_ns = sizes->start_ns,
		.end_ns = end_ns > sizes->start_ns ? end_ns : sizes->start_ns,
		.request_header_bytes = sizes->request_header_bytes,
		.request_body_bytes = sizes->request_body_bytes,
		.calls = sizes->calls,
	};
	if (!sizes->response_blocks) {
		r.outcome = KACCESS_HTTP_OUTCOME_NO_RESPONSE;
	} else {
		r.outcome = outcome == KACCESS_H2_COMPLETE ? KACCESS_HTTP_OUTCOME_COMPLETE
							   : KACCESS_HTTP_OUTCOME_CUT;
		r.status = names ? names->status : 0;
		r.response_header_bytes = sizes->response_header_bytes;
		r.response_body_bytes = sizes->response_body_bytes;
	}
	/* client streams are odd: 1, 3, 5... are the connection's exchanges 0, 1, 2... */
	if (sizes->endpoint) {
		/*
		 * Stream 1 after an upgrade: its request is the HTTP/1.1 one, read
		 * as HTTP/1.x's and sampled by its number, as the kernel sent (or,
		 * with `sampled`, skipped) its head.
		 */
		http_record_set_method_path(h2->cfg.names, sizes->endpoint, endpoint, &r);
		http_records_submit_with_head(h2->cfg.records, &r, sizes->upgrade_seq, sizes->upgrade_seq);
		return;
	}
	if (names && names->named)
		http_record_set_method_path(h2->cfg.names, names->endpoint, endpoint, &r);
	if (names) {
		r.host = names->record_fields[H2_AUTHORITY];
		r.sw8 = names->record_fields[H2_SW8];
		r.traceparent = names->record_fields[H2_TRACEPARENT];
		r.b3 = names->record_fields[H2_B3];
	}
	r.head_cut = !names || !names->named;
	http_records_submit(h2->cfg.records, &r, src->stream_id / 2);
}

void h2_exchanges_on_stream_end(struct h2_exchanges *h2, const void *data, size_t size)
{
	const struct kaccess_h2_stream_event *event = data;
	struct h2_connection *conn;
	struct h2_stream_names *names = NULL;

	if (size < sizeof(*event))
		return;
	conn = connection_get(h2, event->sk, event->conn_start_ns, false);
	if (conn)
		names = stream_find(conn, event->stream_id);
	count_exchange(h2, &event->agg, names, &event->sizes, event->outcome, event->end_ns,
		       event->bucket);
	submit_record(h2, &(struct h2_record_source){ event->sk, event->conn_start_ns, event->stream_id,
						      &event->agg, event->local_port, event->remote_port },
		      names, &event->sizes, event->outcome, event->end_ns);
	if (names)
		stream_forget(conn, names);
}

/*
 * Stream 1 of an upgraded connection has no block of ours until its
 * response's: cut before it, it is found here by its id, and its record
 * (no response) is made here.
 */
static void upgraded_stream_close(struct h2_exchanges *h2, const struct kaccess_conn_event *event,
				  uint64_t bucket)
{
	struct kaccess_h2_stream_key key = {
		.sk = event->sk,
		.conn_start_ns = event->conn.start_ns,
		.stream_id = 1,
	};
	struct kaccess_h2_sizes sizes;

	if (bpf_map_lookup_and_delete_elem(h2->cfg.streams_map_fd, &key, &sizes) || sizes.reset ||
	    !sizes.endpoint)
		return;
	count_exchange(h2, &event->conn.agg, NULL, &sizes, KACCESS_H2_CUT, 0, bucket);
	submit_record(h2, &(struct h2_record_source){ event->sk, event->conn.start_ns, 1,
						      &event->conn.agg, event->conn.local_port,
						      event->conn.remote_port },
		      NULL, &sizes, KACCESS_H2_CUT, event->ts_ns);
}

void h2_exchanges_on_conn_close(struct h2_exchanges *h2, const struct kaccess_conn_event *event,
				uint64_t bucket)
{
	struct h2_connection **slot = connection_slot(h2, event->sk, event->conn.start_ns);
	struct h2_connection *conn = *slot;

	if (event->conn.http == KACCESS_HTTP_H2 && (!conn || !stream_find(conn, 1)))
		upgraded_stream_close(h2, event, bucket);
	if (!conn)
		return;
	for (size_t i = 0; i < conn->stream_count; i++) {
		struct kaccess_h2_stream_key key = {
			.sk = event->sk,
			.conn_start_ns = event->conn.start_ns,
			.stream_id = conn->streams[i].stream_id,
		};
		struct kaccess_h2_sizes sizes;

		/* absent: the kernel counted its end as lost, or never tracked it */
		if (bpf_map_lookup_and_delete_elem(h2->cfg.streams_map_fd, &key, &sizes) || sizes.reset)
			continue;
		count_exchange(h2, &event->conn.agg, &conn->streams[i], &sizes, KACCESS_H2_CUT, 0,
			       bucket);
		submit_record(h2, &(struct h2_record_source){ event->sk, event->conn.start_ns,
							      key.stream_id, &event->conn.agg,
							      event->conn.local_port,
							      event->conn.remote_port },
			      &conn->streams[i], &sizes, KACCESS_H2_CUT, event->ts_ns);
	}
	*slot = conn->next;
	connection_free(conn);
}

int h2_exchanges_copy_rows(const struct h2_exchanges *h2, uint64_t bucket, struct http_rows *rows)
{
	for (size_t i = 0; i < h2->rows.count; i++) {
		const struct http_row *row = &h2->rows.rows[i];

		if (row->value.bucket != bucket)
			continue;
		if (http_rows_append(rows, row))
			return -ENOMEM;
	}
	return 0;
}

int h2_exchanges_take_rows(struct h2_exchanges *h2, uint64_t last_bucket, struct http_rows *rows)
{
	size_t kept = 0;

	for (size_t i = 0; i < h2->rows.count; i++) {
		struct http_row *row = &h2->rows.rows[i];

		if (row->value.bucket > last_bucket) {
			h2->rows.rows[kept++] = *row;
			continue;
		}
		if (http_rows_append(rows, row))
			return -ENOMEM;
	}
	h2->rows.count = kept;
	return 0;
}

/*
 * The size of the batched record at `data`, of at most `left` bytes: 0 when
 * it is not a whole header piece or stream end (the rest of the batch is
 * then not trusted).
 */
static size_t batched_record_size(const void *data, size_t left)
{
	const struct kaccess_h2_headers_event *piece = data;
	__u32 type;

	if (left < sizeof(type))
		return 0;
	memcpy(&type, data, sizeof(type));
	if (type == KACCESS_EVENT_H2_HEADERS && left >= sizeof(*piece) &&
	    piece->len <= left - sizeof(*piece))
		return sizeof(*piece) + piece->len;
	if (type == KACCESS_EVENT_H2_STREAM_END && left >= sizeof(struct kaccess_h2_stream_event))
		return sizeof(struct kaccess_h2_stream_event);
	return 0;
}

void h2_exchanges_on_batch(struct h2_exchanges *h2, const void *data, size_t size)
{
	const struct kaccess_h2_batch_event *batch = data;
	size_t offset = 0, record_size;

	if (size < sizeof(*batch) || batch->len > size - sizeof(*batch))
		return;
	while (offset < batch->len) {
		const void *record = batch->records + offset;

		record_size = batched_record_size(record, batch->len - offset);
		if (!record_size) {
			log_warn("HTTP/2 batch: a malformed record at byte %zu of %u: the rest dropped",
				 offset, batch->len);
			return;
		}
		if (*(const __u32 *)record == KACCESS_EVENT_H2_HEADERS)
			h2_exchanges_on_headers(h2, record, record_size);
		else
			h2_exchanges_on_stream_end(h2, record, record_size);
		offset += (record_size + 7) & ~(size_t)7; /* each record starts 8-aligned */
	}
}
