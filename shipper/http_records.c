// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "config.h"
#include "endpoint_names.h"
#include "http_records.h"

/*
 * Heads wait for their exchange in a chained hash table, as the four
 * header values a record takes from them, not their bytes: a request in
 * flight costs its Host and trace headers. Most wait one round trip; one
 * whose exchange never comes (the request line turned out not to be HTTP)
 * is dropped by http_records_expire(). Beyond HEADS_MAX waiting, new
 * heads are not kept and their records count as head_cut.
 */
#define HEAD_BUCKETS 4096
#define HEADS_MAX 16384
#define HEADER_VALUE_MAX 512

enum head_value { HEAD_HOST, HEAD_SW8, HEAD_TRACEPARENT, HEAD_B3, HEAD_VALUES };

#define HEADER_NAME(text) { text, sizeof(text) - 1 }

static const struct {
	const char *name;
	size_t len;
} head_value_names[HEAD_VALUES] = {
	HEADER_NAME("host"), HEADER_NAME("sw8"), HEADER_NAME("traceparent"), HEADER_NAME("b3"),
};

struct pending_head {
	struct pending_head *next;
	uint64_t sk, conn_start_ns;
	uint32_t seq;
	bool cut;                          /* the header block did not end in the copy */
	int16_t value_at[HEAD_VALUES];     /* offset in `values`, -1: absent */
	uint64_t received_ns;
	char values[];                     /* the present values, NUL-terminated */
};

struct http_records {
	struct http_records_config cfg;
	struct pending_head *buckets[HEAD_BUCKETS];
	size_t head_count;
	bool behind;
};

/* A head's arrival, for an expiry counted in minutes: the coarse clock, which reads no counter. */
static uint64_t now_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

int http_records_new(struct http_records **ret_records, const struct http_records_config *cfg)
{
	struct http_records *records = calloc(1, sizeof(*records));

	if (!records)
		return -ENOMEM;
	records->cfg = *cfg;
	if (!records->cfg.sample_rate)
		records->cfg.sample_rate = 1;
	*ret_records = records;
	return 0;
}

void http_records_free(struct http_records *records)
{
	if (!records)
		return;
	http_records_expire(records, UINT64_MAX);
	free(records);
}

static size_t head_bucket(uint64_t sk, uint64_t conn_start_ns, uint32_t seq)
{
	uint64_t h = (sk ^ (conn_start_ns * 0x9e3779b97f4a7c15ULL) ^ seq) * 0xff51afd7ed558ccdULL;

	return (h >> 32) % HEAD_BUCKETS;
}

/* Unlink and return the head of (sk, conn_start_ns, seq), or NULL. */
static struct pending_head *head_take(struct http_records *records, uint64_t sk,
				      uint64_t conn_start_ns, uint32_t seq)
{
	struct pending_head **at = &records->buckets[head_bucket(sk, conn_start_ns, seq)];

	for (; *at; at = &(*at)->next) {
		struct pending_head *head = *at;

		if (head->sk == sk && head->conn_start_ns == conn_start_ns && head->seq == seq) {
			*at = head->next;
			records->head_count--;
			return head;
		}
	}
	return NULL;
}

/* A head's header lines, one at a time (the request line is no header). */
struct header_lines {
	const char *next, *end;
};

static void header_lines_init(struct header_lines *lines, const char *head, size_t len)
{
	const char *request_line_end = memchr(head, '\n', len);

	lines->next = request_line_end ? request_line_end + 1 : NULL;
	lines->end = head + len;
}

/*
 * The next header line, [*ret_line, *ret_eol): false at the blank line, at
 * the end, or at a line cut by the copy's end, which is not trusted.
 */
static bool header_lines_next(struct header_lines *lines, const char **ret_line, const char **ret_eol)
{
	const char *eol;

	if (!lines->next || lines->next >= lines->end)
		return false;
	eol = memchr(lines->next, '\n', lines->end - lines->next);
	if (!eol || eol - lines->next <= 1)
		return false;
	*ret_line = lines->next;
	*ret_eol = eol;
	lines->next = eol + 1;
	return true;
}

/* The value of `line` when it is header `name` (any case), without its blanks: 0 or -ENOENT. */
static int header_value(const char *line, const char *eol, const char *name, size_t name_len,
			const char **ret_value, size_t *ret_len)
{
	const char *value, *value_end = eol;

	if ((size_t)(eol - line) <= name_len || line[name_len] != ':' || strncasecmp(line, name, name_len))
		return -ENOENT;
	value = line + name_len + 1;
	while (value < value_end && (*value == ' ' || *value == '\t'))
		value++;
	while (value_end > value && (value_end[-1] == '\r' || value_end[-1] == ' ' || value_end[-1] == '\t'))
		value_end--;
	*ret_value = value;
	*ret_len = (size_t)(value_end - value);
	return 0;
}

/* Which of the record's header values `line` holds, by the first letter of its name: its index, or -1. */
static int head_value_of(const char *line, const char *eol, const char **ret_value, size_t *ret_len)
{
	int i;

	switch (line[0] | 0x20) { /* lower case; header_value compares the whole name */
	case 'h':
		i = HEAD_HOST;
		break;
	case 's':
		i = HEAD_SW8;
		break;
	case 't':
		i = HEAD_TRACEPARENT;
		break;
	case 'b':
		i = HEAD_B3;
		break;
	default:
		return -1;
	}
	if (header_value(line, eol, head_value_names[i].name, head_value_names[i].len, ret_value, ret_len))
		return -1;
	return i;
}

/*
 * The record's header values of a request head, packed: NULL on no memory.
 * One pass over the lines with memchr, which also finds the blank line that
 * ends the block (a byte-by-byte scan for it was most of the shipper's
 * time per head). Each value is its name's first line, as
 * http_head_header finds it (a value too long for HEADER_VALUE_MAX is
 * absent); a line of one byte that is not "\r" ends the values, as in
 * header_lines_next, but not the search for the block's end.
 */
static struct pending_head *head_pack(const char *bytes, size_t len)
{
	const char *value[HEAD_VALUES] = { NULL }, *end = bytes + len, *line, *eol;
	size_t total = 0, value_len[HEAD_VALUES];
	unsigned int decided = 0, all = (1u << HEAD_VALUES) - 1;
	bool block_ended = false, taking = true;
	struct pending_head *head;

	line = memchr(bytes, '\n', len); /* the request line is no header */
	for (line = line ? line + 1 : end; line < end && (eol = memchr(line, '\n', end - line)); line = eol + 1) {
		const char *v;
		size_t n;
		int i;

		if (eol - line <= 1) {
			if (eol == line || line[0] == '\r') {
				block_ended = true;
				break;
			}
			taking = false;
			continue;
		}
		if (!taking || decided == all || (i = head_value_of(line, eol, &v, &n)) < 0 ||
		    (decided & (1u << i)))
			continue;
		decided |= 1u << i;
		if (n + 1 <= HEADER_VALUE_MAX) {
			value[i] = v;
			value_len[i] = n;
			total += n + 1;
		}
	}
	head = malloc(sizeof(*head) + total);
	if (!head)
		return NULL;
	head->cut = !block_ended;
	total = 0;
	for (int i = 0; i < HEAD_VALUES; i++) {
		head->value_at[i] = value[i] ? (int16_t)total : -1;
		if (!value[i])
			continue;
		memcpy(head->values + total, value[i], value_len[i]);
		head->values[total + value_len[i]] = '\0';
		total += value_len[i] + 1;
	}
	return head;
}

void http_records_on_head(struct http_records *records, const void *data, size_t size)
{
	const struct kaccess_http_head_event *event = data;
	struct pending_head *head;
	size_t bucket;

	if (size < sizeof(*event) || event->len > size - sizeof(*event))
		return;
	/* a head never paired (its request line failed) is replaced by the next one */
	free(head_take(records, event->sk, event->conn_start_ns, event->seq));
	if (records->head_count >= HEADS_MAX)
		return;
	head = head_pack((const char *)event->bytes, event->len);
	if (!head)
		return;
	head->sk = event->sk;
	head->conn_start_ns = event->conn_start_ns;
	head->seq = event->seq;
	head->received_ns = now_monotonic_ns();
	bucket = head_bucket(head->sk, head->conn_start_ns, head->seq);
	head->next = records->buckets[bucket];
	records->buckets[bucket] = head;
	records->head_count++;
}

void http_records_expire(struct http_records *records, uint64_t before_ns)
{
	for (size_t i = 0; i < HEAD_BUCKETS; i++) {
		struct pending_head **at = &records->buckets[i];

		while (*at) {
			struct pending_head *head = *at;

			if (head->received_ns < before_ns) {
				*at = head->next;
				records->head_count--;
				free(head);
			} else {
				at = &head->next;
			}
		}
	}
}

int http_head_header(const char *head, size_t len, const char *name, char *buf, size_t buf_len)
{
	size_t name_len = strlen(name), value_len;
	const char *line, *eol, *value;
	struct header_lines lines;

	header_lines_init(&lines, head, len);
	while (header_lines_next(&lines, &line, &eol)) {
		if (header_value(line, eol, name, name_len, &value, &value_len))
			continue;
		if (value_len + 1 > buf_len)
			return -ENOSPC;
		memcpy(buf, value, value_len);
		buf[value_len] = '\0';
		return 0;
	}
	return -ENOENT;
}

static bool is_error_or_slow(const struct http_records_config *cfg, const struct http_record *r)
{
	if (r->outcome != KACCESS_HTTP_OUTCOME_COMPLETE || r->status >= 500)
		return true;
	return r->end_ns - r->start_ns >= (uint64_t)cfg->slow_ms * 1000000ULL;
}

void http_records_set_behind(struct http_records *records, bool behind)
{
	records->behind = behind;
}

void http_records_submit(struct http_records *records, const struct http_record *record,
			 uint64_t sample_index)
{
	const struct http_records_config *cfg = &records->cfg;
	bool ship;

	switch (cfg->policy) {
	case HTTP_LOG_ALL:
		ship = true;
		break;
	case HTTP_LOG_ERRORS_SLOW:
		ship = is_error_or_slow(cfg, record);
		break;
	case HTTP_LOG_SAMPLED:
		ship = sample_index % cfg->sample_rate == 0;
		break;
	default:
		return; /* none: nothing is made, nothing to count */
	}
	if (!ship) {
		__atomic_add_fetch(&cfg->counts->filtered, 1, __ATOMIC_RELAXED);
		return;
	}
	if (records->behind) {
		__atomic_add_fetch(&cfg->counts->shed, 1, __ATOMIC_RELAXED);
		return;
	}
	__atomic_add_fetch(&cfg->counts->shipped, 1, __ATOMIC_RELAXED);
	if (record->head_cut)
		__atomic_add_fetch(&cfg->counts->head_cut, 1, __ATOMIC_RELAXED);
	cfg->ship(cfg->ship_ctx, record);
}

static const char *head_value(const struct pending_head *head, enum head_value which)
{
	return head->value_at[which] >= 0 ? head->values + head->value_at[which] : NULL;
}

void http_record_set_method_path(struct endpoint_names *names, uint64_t endpoint,
				 char text[KACCESS_HTTP_ENDPOINT_MAX + 1], struct http_record *r)
{
	char *colon;

	if (endpoint_names_get(names, endpoint, text, KACCESS_HTTP_ENDPOINT_MAX + 1))
		return;
	colon = strchr(text, ':');
	if (!colon)
		return;
	*colon = '\0';
	r->method = text;
	r->path = colon + 1;
}

void http_records_submit_with_head(struct http_records *records, struct http_record *record,
				   uint32_t request_seq, uint64_t sample_index)
{
	struct pending_head *head = head_take(records, record->sk, record->conn_start_ns, request_seq);

	if (head) {
		record->head_cut = head->cut;
		record->host = head_value(head, HEAD_HOST);
		record->sw8 = head_value(head, HEAD_SW8);
		record->traceparent = head_value(head, HEAD_TRACEPARENT);
		record->b3 = head_value(head, HEAD_B3);
	} else {
		record->head_cut = true;
	}
	http_records_submit(records, record, sample_index);
	free(head); /* after the sinks: the record's header values point into it */
}

void http_records_on_exchange(struct http_records *records, const void *data, size_t size)
{
	const struct kaccess_http_exchange_event *e = data;
	char endpoint[KACCESS_HTTP_ENDPOINT_MAX + 1];
	struct http_record r;

	if (size < sizeof(*e))
		return;
	memset(&r, 0, sizeof(r));
	r.sk = e->sk;
	r.conn_start_ns = e->conn_start_ns;
	r.agg = e->agg;
	r.local_port = e->local_port;
	r.remote_port = e->remote_port;
	r.seq = e->seq;
	r.version = e->version;
	r.outcome = e->outcome;
	r.status = e->status;
	r.start_ns = e->start_ns;
	r.end_ns = e->end_ns;
	r.request_header_bytes = e->request_header_bytes;
	r.request_body_bytes = e->request_body_bytes;
	r.response_header_bytes = e->response_header_bytes;
	r.response_body_bytes = e->response_body_bytes;
	r.calls = e->calls;
	http_record_set_method_path(records->cfg.names, e->endpoint, endpoint, &r);
	http_records_submit_with_head(records, &r, e->seq, e->seq);
}
