// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "trace_context.h"
#include "base64.h"

/* Standard base64 with padding (as sw8 carries it) into `out`, NUL-terminated: 0 or -EINVAL. */
static int sw8_base64_decode(const char *in, size_t len, char *out, size_t out_len)
{
	if (len % 4)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		/* padding only at the end: one or two */
		if (in[i] == '=' && (i + 2 < len || (i + 1 < len && in[i + 1] != '=')))
			return -EINVAL;
	return base64_decode(in, len, out, out_len) < 0 ? -EINVAL : 0;
}

/* Split `value` at '-' into up to `max` fields: how many there were. */
static size_t split_dashes(const char *value, const char **starts, size_t *lens, size_t max)
{
	size_t count = 0;
	const char *at = value;

	for (;;) {
		const char *dash = strchr(at, '-');
		size_t len = dash ? (size_t)(dash - at) : strlen(at);

		if (count < max) {
			starts[count] = at;
			lens[count] = len;
		}
		count++;
		if (!dash)
			return count;
		at = dash + 1;
	}
}

static int copy_field(char *out, size_t out_len, const char *start, size_t len)
{
	if (!len || len + 1 > out_len)
		return -EINVAL;
	memcpy(out, start, len);
	out[len] = '\0';
	return 0;
}

/* sw8: sample-traceId-segmentId-spanId-service-instance-endpoint-address (8 fields). */
static int parse_sw8(const char *value, struct trace_context *c)
{
	const char *starts[8];
	size_t lens[8];

	if (split_dashes(value, starts, lens, 8) != 8)
		return -EINVAL;
	c->provider = TRACE_PROVIDER_SKYWALKING;
	if (sw8_base64_decode(starts[1], lens[1], c->trace_id, sizeof(c->trace_id)) ||
	    sw8_base64_decode(starts[2], lens[2], c->segment_id, sizeof(c->segment_id)) ||
	    copy_field(c->span_id, sizeof(c->span_id), starts[3], lens[3]) || !c->trace_id[0])
		return -EINVAL;
	return 0;
}

/* b3 single header: traceId-spanId[-sampled[-parentSpanId]]. */
static int parse_b3(const char *value, struct trace_context *c)
{
	const char *starts[4];
	size_t lens[4];
	size_t fields = split_dashes(value, starts, lens, 4);

	if (fields < 2 || fields > 4)
		return -EINVAL;
	c->provider = TRACE_PROVIDER_ZIPKIN;
	c->segment_id[0] = '\0';
	if (copy_field(c->trace_id, sizeof(c->trace_id), starts[0], lens[0]) ||
	    copy_field(c->span_id, sizeof(c->span_id), starts[1], lens[1]))
		return -EINVAL;
	return 0;
}

/* traceparent: version-traceId(32 hex)-parentId(16 hex)-flags. */
static int parse_traceparent(const char *value, struct trace_context *c)
{
	const char *starts[4];
	size_t lens[4];

	if (split_dashes(value, starts, lens, 4) != 4 || lens[1] != 32 || lens[2] != 16)
		return -EINVAL;
	c->provider = TRACE_PROVIDER_ZIPKIN;
	c->segment_id[0] = '\0';
	if (copy_field(c->trace_id, sizeof(c->trace_id), starts[1], lens[1]) ||
	    copy_field(c->span_id, sizeof(c->span_id), starts[2], lens[2]))
		return -EINVAL;
	return 0;
}

int trace_context_parse(const char *sw8, const char *b3, const char *traceparent,
			struct trace_context *ret_context)
{
	struct trace_context c;

	memset(&c, 0, sizeof(c));
	if ((sw8 && parse_sw8(sw8, &c) == 0) || (b3 && parse_b3(b3, &c) == 0) ||
	    (traceparent && parse_traceparent(traceparent, &c) == 0)) {
		*ret_context = c;
		return 0;
	}
	return -ENOENT;
}
