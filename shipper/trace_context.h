/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The trace context of an HTTP request, from its propagation headers, as
 * SkyWalking's AccessLogTraceInfo carries it: sw8 (SkyWalking: trace and
 * segment ids base64-decoded, span id as is), else b3 single-header
 * (Zipkin: trace id, span id), else W3C traceparent (trace id and parent
 * span id, under the Zipkin provider: the protocol has no W3C provider).
 */
#ifndef KACCESS_TRACE_CONTEXT_H
#define KACCESS_TRACE_CONTEXT_H

#include <stddef.h>

enum trace_provider { TRACE_PROVIDER_ZIPKIN = 0, TRACE_PROVIDER_SKYWALKING = 1 };

#define TRACE_ID_MAX 256

struct trace_context {
	int provider; /* enum trace_provider: AccessLogTraceInfoProvider's values */
	char trace_id[TRACE_ID_MAX];
	char segment_id[TRACE_ID_MAX]; /* "" unless SkyWalking */
	char span_id[TRACE_ID_MAX];
};

/*
 * The context of the first of sw8, b3, traceparent (NULL: absent) that is
 * well formed: 0, or -ENOENT when none is.
 */
int trace_context_parse(const char *sw8, const char *b3, const char *traceparent,
			struct trace_context *ret_context);

#endif
