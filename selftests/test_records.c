// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Unit tests of the access-log records (no root): pairing a request head
 * with its exchange (or with stream 1 after an upgrade), the header reader, every policy, the trace context
 * from sw8, b3 and traceparent, and the strict config keys.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "config.h"
#include "endpoint_names.h"
#include "http_records.h"
#include "ktest.h"
#include "trace_context.h"

#define MAX_SHIPPED 16

struct capture {
	size_t count;
	struct http_record records[MAX_SHIPPED];
	char host[MAX_SHIPPED][64], sw8[MAX_SHIPPED][128], path[MAX_SHIPPED][64];
	char traceparent[MAX_SHIPPED][600], b3[MAX_SHIPPED][600];
};

static void capture_ship(void *ctx, const struct http_record *record)
{
	struct capture *c = ctx;

	if (c->count >= MAX_SHIPPED)
		return;
	c->records[c->count] = *record;
	snprintf(c->host[c->count], sizeof(c->host[0]), "%s", record->host ? record->host : "(null)");
	snprintf(c->sw8[c->count], sizeof(c->sw8[0]), "%s", record->sw8 ? record->sw8 : "(null)");
	snprintf(c->path[c->count], sizeof(c->path[0]), "%s", record->path ? record->path : "(null)");
	snprintf(c->traceparent[c->count], sizeof(c->traceparent[0]), "%s",
		 record->traceparent ? record->traceparent : "(null)");
	snprintf(c->b3[c->count], sizeof(c->b3[0]), "%s", record->b3 ? record->b3 : "(null)");
	c->count++;
}

static struct http_records *records_with(unsigned int policy, unsigned int slow_ms,
					 unsigned int sample_rate, struct endpoint_names *names,
					 struct http_record_counts *counts, struct capture *capture)
{
	struct http_records_config cfg = {
		.names = names,
		.policy = policy,
		.slow_ms = slow_ms,
		.sample_rate = sample_rate,
		.counts = counts,
		.ship = capture_ship,
		.ship_ctx = capture,
	};
	struct http_records *records = NULL;

	return http_records_new(&records, &cfg) ? NULL : records;
}

/* A head record of `text` for (sk, seq), as the kernel sends it. */
static void feed_head(struct http_records *records, uint64_t sk, uint32_t seq, const char *text)
{
	static __u8 buf[sizeof(struct kaccess_http_head_event) + KACCESS_HTTP_HEAD_MAX];
	struct kaccess_http_head_event *event = (void *)buf;
	size_t len = strlen(text);

	memset(buf, 0, sizeof(buf));
	event->type = KACCESS_EVENT_HTTP_REQUEST_HEAD;
	event->len = len;
	event->sk = sk;
	event->conn_start_ns = 1000;
	event->seq = seq;
	memcpy(event->bytes, text, len);
	http_records_on_head(records, buf, sizeof(*event) + len);
}

static void feed_exchange(struct http_records *records, uint64_t sk, uint32_t seq, uint64_t endpoint,
			  uint16_t status, uint64_t duration_ns, uint8_t outcome)
{
	struct kaccess_http_exchange_event e = {
		.type = KACCESS_EVENT_HTTP_EXCHANGE,
		.seq = seq,
		.sk = sk,
		.conn_start_ns = 1000,
		.endpoint = endpoint,
		.start_ns = 5000,
		.end_ns = 5000 + duration_ns,
		.request_header_bytes = 40,
		.response_header_bytes = 100,
		.response_body_bytes = 7,
		.status = status,
		.outcome = outcome,
		.version = KACCESS_HTTP_VERSION_1_1,
		.local_port = (uint16_t)(40000 + sk), /* a port per connection */
		.remote_port = 8080,
	};

	http_records_on_exchange(records, &e, sizeof(e));
}

TEST(head_and_exchange_pair_by_socket_and_sequence)
{
	struct endpoint_names *names = endpoint_names_new();
	struct http_record_counts counts = { 0 };
	static struct capture capture;
	struct http_records *records;

	memset(&capture, 0, sizeof(capture));
	ASSERT_NE(NULL, names);
	ASSERT_EQ(0, endpoint_names_add(names, 77, "GET:/a", 6));
	records = records_with(HTTP_LOG_ALL, 1000, 1, names, &counts, &capture);
	ASSERT_NE(NULL, records);
	feed_head(records, 0xa, 0, "GET /a HTTP/1.1\r\nHost: one\r\nSW8: 1-x\r\n\r\n");
	feed_head(records, 0xa, 1, "GET /a HTTP/1.1\r\nhost:   two  \r\n\r\n");
	feed_head(records, 0xb, 0, "GET /a HTTP/1.1\r\nHost: cut-before-the-end");
	feed_exchange(records, 0xa, 1, 77, 200, 10, KACCESS_HTTP_OUTCOME_COMPLETE);
	feed_exchange(records, 0xa, 0, 77, 404, 10, KACCESS_HTTP_OUTCOME_COMPLETE);
	feed_exchange(records, 0xb, 0, 77, 200, 10, KACCESS_HTTP_OUTCOME_COMPLETE);
	feed_exchange(records, 0xc, 0, 99, 0, 10, KACCESS_HTTP_OUTCOME_NO_RESPONSE); /* no head, no name */
	ASSERT_EQ(4, capture.count);
	EXPECT_STREQ("two", capture.host[0]);
	EXPECT_STREQ("(null)", capture.sw8[0]);
	EXPECT_FALSE(capture.records[0].head_cut);
	EXPECT_STREQ("one", capture.host[1]);
	EXPECT_STREQ("1-x", capture.sw8[1]);
	EXPECT_EQ(404, capture.records[1].status);
	EXPECT_STREQ("/a", capture.path[1]);
	/* the line cut by the copy's end is not trusted */
	EXPECT_STREQ("(null)", capture.host[2]);
	EXPECT_TRUE(capture.records[2].head_cut);
	/* the connection's ports, which the row key lacks, pass through */
	EXPECT_EQ(40000 + 0xb, capture.records[2].local_port);
	EXPECT_EQ(8080, capture.records[2].remote_port);
	EXPECT_STREQ("(null)", capture.path[3]);
	EXPECT_TRUE(capture.records[3].head_cut);
	EXPECT_EQ(4, counts.shipped);
	EXPECT_EQ(2, counts.head_cut);
	EXPECT_EQ(0, counts.filtered);
	http_records_free(records);
	endpoint_names_free(names);
}

/*
 * Stream 1 after an upgrade: an HTTP/2 record (stream id 1) that takes
 * the head of the HTTP/1.1 request it was, by that request's number, and
 * takes it away from the heads waiting; the connection's other heads stay.
 */
TEST(upgraded_stream_takes_its_http1_request_head)
{
	struct endpoint_names *names = endpoint_names_new();
	struct http_record_counts counts = { 0 };
	static struct capture capture;
	struct http_records *records;
	struct http_record stream_1 = {
		.sk = 0xa,
		.conn_start_ns = 1000,
		.seq = 1,
		.version = KACCESS_HTTP_VERSION_2,
		.status = 200,
		.start_ns = 5000,
		.end_ns = 5010,
	};

	memset(&capture, 0, sizeof(capture));
	ASSERT_NE(NULL, names);
	records = records_with(HTTP_LOG_ALL, 1000, 1, names, &counts, &capture);
	ASSERT_NE(NULL, records);
	feed_head(records, 0xa, 0, "GET /a HTTP/1.1\r\nHost: first\r\n\r\n");
	feed_head(records, 0xa, 2, "GET /b HTTP/1.1\r\nHost: upgraded\r\nsw8: 1-u\r\n"
				   "Upgrade: h2c\r\n\r\n");
	http_records_submit_with_head(records, &stream_1, 2, 0);
	ASSERT_EQ(1, capture.count);
	EXPECT_STREQ("upgraded", capture.host[0]);
	EXPECT_STREQ("1-u", capture.sw8[0]);
	EXPECT_FALSE(capture.records[0].head_cut);
	EXPECT_EQ(1, capture.records[0].seq);
	EXPECT_EQ(KACCESS_HTTP_VERSION_2, capture.records[0].version);
	feed_exchange(records, 0xa, 2, 77, 200, 10, KACCESS_HTTP_OUTCOME_COMPLETE);
	feed_exchange(records, 0xa, 0, 77, 200, 10, KACCESS_HTTP_OUTCOME_COMPLETE);
	ASSERT_EQ(3, capture.count);
	EXPECT_STREQ("(null)", capture.host[1]); /* taken by stream 1 */
	EXPECT_TRUE(capture.records[1].head_cut);
	EXPECT_STREQ("first", capture.host[2]);
	EXPECT_EQ(1, counts.head_cut);
	http_records_free(records);
	endpoint_names_free(names);
}

TEST(errors_slow_ships_5xx_cut_unanswered_and_slow_only)
{
	struct http_record_counts counts = { 0 };
	static struct capture capture;
	struct endpoint_names *names = endpoint_names_new();
	struct http_records *records;

	memset(&capture, 0, sizeof(capture));
	records = records_with(HTTP_LOG_ERRORS_SLOW, 200, 1, names, &counts, &capture);
	ASSERT_NE(NULL, records);
	feed_exchange(records, 1, 0, 1, 200, 199999999, KACCESS_HTTP_OUTCOME_COMPLETE); /* fast */
	feed_exchange(records, 1, 1, 1, 200, 200000000, KACCESS_HTTP_OUTCOME_COMPLETE); /* slow */
	feed_exchange(records, 1, 2, 1, 499, 10, KACCESS_HTTP_OUTCOME_COMPLETE);        /* fast 4xx */
	feed_exchange(records, 1, 3, 1, 500, 10, KACCESS_HTTP_OUTCOME_COMPLETE);
	feed_exchange(records, 1, 4, 1, 200, 10, KACCESS_HTTP_OUTCOME_CUT);
	feed_exchange(records, 1, 5, 1, 0, 10, KACCESS_HTTP_OUTCOME_NO_RESPONSE);
	ASSERT_EQ(4, capture.count);
	EXPECT_EQ(1, capture.records[0].seq);
	EXPECT_EQ(3, capture.records[1].seq);
	EXPECT_EQ(4, capture.records[2].seq);
	EXPECT_EQ(5, capture.records[3].seq);
	EXPECT_EQ(4, counts.shipped);
	EXPECT_EQ(2, counts.filtered);
	http_records_free(records);
	endpoint_names_free(names);
}

TEST(sampled_ships_one_in_n_per_connection_and_none_ships_nothing)
{
	struct http_record_counts counts = { 0 };
	static struct capture capture;
	struct endpoint_names *names = endpoint_names_new();
	struct http_records *records;

	memset(&capture, 0, sizeof(capture));
	records = records_with(HTTP_LOG_SAMPLED, 1000, 4, names, &counts, &capture);
	ASSERT_NE(NULL, records);
	for (uint32_t seq = 0; seq < 9; seq++)
		feed_exchange(records, 1, seq, 1, 200, 10, KACCESS_HTTP_OUTCOME_COMPLETE);
	feed_exchange(records, 2, 0, 1, 200, 10, KACCESS_HTTP_OUTCOME_COMPLETE);
	ASSERT_EQ(4, capture.count); /* 0, 4, 8 and the other connection's 0 */
	EXPECT_EQ(4, capture.records[1].seq);
	EXPECT_EQ(8, capture.records[2].seq);
	EXPECT_EQ(6, counts.filtered);
	http_records_free(records);

	memset(&capture, 0, sizeof(capture));
	memset(&counts, 0, sizeof(counts));
	records = records_with(HTTP_LOG_NONE, 1000, 1, names, &counts, &capture);
	ASSERT_NE(NULL, records);
	feed_exchange(records, 1, 0, 1, 500, 10, KACCESS_HTTP_OUTCOME_COMPLETE);
	EXPECT_EQ(0, capture.count);
	EXPECT_EQ(0, counts.shipped + counts.filtered);
	http_records_free(records);
	endpoint_names_free(names);
}

TEST(header_values_are_exact_or_absent)
{
	static const char head[] = "GET / HTTP/1.1\r\nX-Host: no\r\nHost:\tweb:8080 \r\nB3: a-b\r\n\r\nb3: body";
	char buf[16];

	EXPECT_EQ(0, http_head_header(head, strlen(head), "host", buf, sizeof(buf)));
	EXPECT_STREQ("web:8080", buf);
	EXPECT_EQ(0, http_head_header(head, strlen(head), "b3", buf, sizeof(buf)));
	EXPECT_STREQ("a-b", buf);
	EXPECT_EQ(-ENOENT, http_head_header(head, strlen(head), "sw8", buf, sizeof(buf)));
	EXPECT_EQ(-ENOSPC, http_head_header(head, strlen(head), "host", buf, 4));
}

/* What http_head_header finds for `name` in `head`, as a record would show it. */
static void expected_value(const char *head, const char *name, char *buf, size_t len)
{
	char value[512];

	if (http_head_header(head, strlen(head), name, value, sizeof(value)))
		snprintf(buf, len, "(null)");
	else
		snprintf(buf, len, "%s", value);
}

/*
 * A record's header values, taken from its head in one pass, are the
 * values http_head_header finds one name at a time: the first of a name
 * twice, any case, blanks trimmed, a value too long absent, a prefix of
 * another name no match, nothing after the blank line or in a cut line.
 */
TEST(packed_head_values_are_what_http_head_header_finds)
{
	static char long_value[700];
	static char heads[][1024] = {
		"GET / HTTP/1.1\r\nHost: a\r\nHOST: b\r\nsw8: 1-2\r\nb3: x\r\ntraceparent: 00-t\r\n\r\n",
		"GET / HTTP/1.1\r\nHostname: no\r\nb30: no\r\nB3:\t  spaced \t\r\nhost:\r\n\r\nhost: body\r\n",
		"GET / HTTP/1.1\nTraceParent: lf-only\nSW8:z\n\n",
		"GET / HTTP/1.1\r\n:host: odd\r\nx-b3: no\r\nhost: cut-here",
		"GET / HTTP/1.1\r\ntraceparent: %s\r\ntraceparent: second\r\nhost: after-long\r\n\r\n",
		"GET / HTTP/1.1\r\n",
		/* every value taken before the end: the end is still looked for */
		"GET / HTTP/1.1\r\nhost: h\r\nsw8: s\r\ntraceparent: t\r\nb3: b\r\nx-after: all-taken",
		"GET / HTTP/1.1\r\nhost: h\r\nsw8: s\r\ntraceparent: t\r\nb3: b\r\nx-after: all-taken\r\n\r\n",
		/* a line of one byte ends the values, not the block */
		"GET / HTTP/1.1\r\nhost: before\nx\nsw8: after-a-one-byte-line\r\n\r\n",
	};
	static const char *const names[] = { "host", "sw8", "traceparent", "b3" };
	struct endpoint_names *endpoint_names = endpoint_names_new();
	struct http_record_counts counts = { 0 };
	static struct capture capture;
	struct http_records *records;
	size_t n_heads = sizeof(heads) / sizeof(heads[0]);
	char fmt[1024];

	memset(long_value, 'v', sizeof(long_value) - 1); /* past HEADER_VALUE_MAX: absent */
	snprintf(fmt, sizeof(fmt), "%s", heads[4]);
	snprintf(heads[4], sizeof(heads[4]), fmt, long_value);
	memset(&capture, 0, sizeof(capture));
	ASSERT_NE(NULL, endpoint_names);
	records = records_with(HTTP_LOG_ALL, 1000, 1, endpoint_names, &counts, &capture);
	ASSERT_NE(NULL, records);
	for (size_t i = 0; i < n_heads; i++) {
		feed_head(records, 0x100 + i, 0, heads[i]);
		feed_exchange(records, 0x100 + i, 0, 1, 200, 10, KACCESS_HTTP_OUTCOME_COMPLETE);
	}
	ASSERT_EQ(n_heads, capture.count);
	for (size_t i = 0; i < n_heads; i++) {
		const char *seen[] = { capture.host[i], capture.sw8[i], capture.traceparent[i], capture.b3[i] };

		for (size_t k = 0; k < 4; k++) {
			char want[600];

			expected_value(heads[i], names[k], want, sizeof(want));
			EXPECT_STREQ(want, seen[k]) TH_LOG("head %zu, %s", i, names[k]);
		}
		/* cut: no blank line ends the block within the copy */
		EXPECT_EQ(!strstr(heads[i], "\n\n") && !strstr(heads[i], "\n\r\n"),
			  capture.records[i].head_cut) TH_LOG("head %zu", i);
	}
	/* the cases themselves: first of two, trimmed, prefixes refused, empty value, too long */
	EXPECT_STREQ("a", capture.host[0]);
	EXPECT_STREQ("spaced", capture.b3[1]);
	EXPECT_STREQ("", capture.host[1]);
	EXPECT_STREQ("lf-only", capture.traceparent[2]);
	EXPECT_STREQ("(null)", capture.host[3]);
	EXPECT_STREQ("(null)", capture.traceparent[4]);
	EXPECT_STREQ("after-long", capture.host[4]);
	EXPECT_TRUE(capture.records[6].head_cut);
	EXPECT_STREQ("b", capture.b3[6]);
	EXPECT_FALSE(capture.records[7].head_cut);
	EXPECT_STREQ("before", capture.host[8]);
	EXPECT_STREQ("(null)", capture.sw8[8]);
	EXPECT_FALSE(capture.records[8].head_cut);
	http_records_free(records);
	endpoint_names_free(endpoint_names);
}

TEST(trace_context_from_sw8_then_b3_then_traceparent)
{
	struct trace_context c;

	/* sw8: trace id "abc123.456", segment "seg.789", span 2 */
	ASSERT_EQ(0, trace_context_parse("1-YWJjMTIzLjQ1Ng==-c2VnLjc4OQ==-2-ZnJvbnRlbmQ=-cG9kLWE=-L29r-MTAuMC4wLjI6ODA4MA==",
					 "t-s", NULL, &c));
	EXPECT_EQ(TRACE_PROVIDER_SKYWALKING, c.provider);
	EXPECT_STREQ("abc123.456", c.trace_id);
	EXPECT_STREQ("seg.789", c.segment_id);
	EXPECT_STREQ("2", c.span_id);
	/* a malformed sw8 (7 fields, bad base64) gives way to b3 */
	ASSERT_EQ(0, trace_context_parse("1-YWJj-c2Vn-2-a-b-c", "80f198ee-e457b5a2-1", NULL, &c));
	EXPECT_EQ(TRACE_PROVIDER_ZIPKIN, c.provider);
	EXPECT_STREQ("80f198ee", c.trace_id);
	EXPECT_STREQ("", c.segment_id);
	EXPECT_STREQ("e457b5a2", c.span_id);
	ASSERT_EQ(0, trace_context_parse("1-!!!!-c2Vn-2-a-b-c-d", NULL,
					 "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", &c));
	EXPECT_EQ(TRACE_PROVIDER_ZIPKIN, c.provider);
	EXPECT_STREQ("4bf92f3577b34da6a3ce929d0e0e4736", c.trace_id);
	EXPECT_STREQ("00f067aa0ba902b7", c.span_id);
	EXPECT_EQ(-ENOENT, trace_context_parse(NULL, "onlyone", "00-short-00f067aa0ba902b7-01", &c));
	EXPECT_EQ(-ENOENT, trace_context_parse(NULL, NULL, NULL, &c));
}

TEST(policy_keys_are_strict)
{
	struct kaccess_config cfg;
	char err[CONFIG_ERROR_LEN];

	config_set_defaults(&cfg);
	EXPECT_EQ(HTTP_LOG_ALL, cfg.http_log_policy);
	EXPECT_EQ(0, config_set(&cfg, "http_log_policy", "errors_slow", err, sizeof(err)));
	EXPECT_EQ(HTTP_LOG_ERRORS_SLOW, cfg.http_log_policy);
	EXPECT_EQ(0, config_set(&cfg, "http_log_policy", "none", err, sizeof(err)));
	EXPECT_EQ(HTTP_LOG_NONE, cfg.http_log_policy);
	EXPECT_NE(0, config_set(&cfg, "http_log_policy", "some", err, sizeof(err)));
	EXPECT_NE(NULL, strstr(err, "http_log_policy"));
	EXPECT_EQ(HTTP_LOG_NONE, cfg.http_log_policy);
	EXPECT_EQ(-ERANGE, config_set(&cfg, "http_log_sample_rate", "0", err, sizeof(err)));
	EXPECT_EQ(-EINVAL, config_set(&cfg, "http_log_slow_ms", "10ms", err, sizeof(err)));
	EXPECT_EQ(0, config_set(&cfg, "http_log_sample_rate", "1000000", err, sizeof(err)));
	EXPECT_EQ(1000000, cfg.http_log_sample_rate);
}

TEST_HARNESS_MAIN
