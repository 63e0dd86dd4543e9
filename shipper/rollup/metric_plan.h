/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What each OAP metric counts, parsed from its OAL text (oap_metrics.def):
 * an aggregation over the calls of one event kind, seen from one side or
 * both, optionally narrowed to successful calls or one status class, reading
 * one field.
 */
#ifndef KACCESS_ROLLUP_METRIC_PLAN_H
#define KACCESS_ROLLUP_METRIC_PLAN_H

#include <stdbool.h>
#include <stddef.h>

enum rollup_scope {
	ROLLUP_SERVICE,
	ROLLUP_INSTANCE,
	ROLLUP_ENDPOINT,
	ROLLUP_SERVICE_RELATION,
	ROLLUP_INSTANCE_RELATION,
	ROLLUP_SCOPE_MAX,
};

/* One kernel log (syscall) or protocol log (HTTP exchange) is one call. */
enum rollup_event {
	ROLLUP_EV_CONNECT,
	ROLLUP_EV_ACCEPT,
	ROLLUP_EV_CLOSE,
	ROLLUP_EV_READ,
	ROLLUP_EV_WRITE,
	ROLLUP_EV_HTTP,
	ROLLUP_EV_MAX,
};

/*
 * Summed fields. Durations of kernel logs are nanoseconds; HTTP latency is
 * milliseconds, as OAP's HTTP metrics use it. Each field belongs to one event.
 */
enum rollup_field {
	ROLLUP_F_NONE,
	ROLLUP_F_CONNECT_DURATION,
	ROLLUP_F_ACCEPT_DURATION,
	ROLLUP_F_CLOSE_DURATION,
	ROLLUP_F_WRITE_DURATION,
	ROLLUP_F_WRITE_L4_DURATION,
	ROLLUP_F_WRITE_L4_TRANSMIT_PACKETS,
	ROLLUP_F_WRITE_L4_RETRANSMIT_PACKETS,
	ROLLUP_F_WRITE_L4_PACKET_BYTES,
	ROLLUP_F_WRITE_L3_DURATION,
	ROLLUP_F_WRITE_L3_LOCAL_DURATION,
	ROLLUP_F_WRITE_L3_OUTPUT_DURATION,
	ROLLUP_F_WRITE_L3_RESOLVE_MAC_COUNT,
	ROLLUP_F_WRITE_L3_RESOLVE_MAC_DURATION,
	ROLLUP_F_WRITE_L3_NETFILTER_COUNT,
	ROLLUP_F_WRITE_L3_NETFILTER_DURATION,
	ROLLUP_F_WRITE_L2_DURATION,
	ROLLUP_F_WRITE_L2_ENTER_QUEUE_COUNT,
	ROLLUP_F_WRITE_L2_READY_SEND_DURATION,
	ROLLUP_F_WRITE_L2_DEVICE_SEND_DURATION,
	ROLLUP_F_READ_DURATION,
	ROLLUP_F_READ_L4_DURATION,
	ROLLUP_F_READ_L3_DURATION,
	ROLLUP_F_READ_L3_RCV_DURATION,
	ROLLUP_F_READ_L3_LOCAL_DURATION,
	ROLLUP_F_READ_L3_NETFILTER_COUNT,
	ROLLUP_F_READ_L3_NETFILTER_DURATION,
	ROLLUP_F_READ_L2_PACKETS,
	ROLLUP_F_READ_L2_PACKET_BYTES,
	ROLLUP_F_READ_L2_TO_QUEUE_DURATION,
	ROLLUP_F_READ_L2_FROM_QUEUE_DURATION,
	ROLLUP_F_HTTP_LATENCY_MS,
	ROLLUP_F_HTTP_REQUEST_HEADER_BYTES,
	ROLLUP_F_HTTP_REQUEST_BODY_BYTES,
	ROLLUP_F_HTTP_RESPONSE_HEADER_BYTES,
	ROLLUP_F_HTTP_RESPONSE_BODY_BYTES,
	ROLLUP_F_MAX,
};

enum rollup_aggregation {
	ROLLUP_AGG_CPM,         /* matching calls per minute */
	ROLLUP_AGG_LONG_AVG,    /* field sum / matching calls, integer division */
	ROLLUP_AGG_SUM,         /* field sum */
	ROLLUP_AGG_PERCENT,     /* successful / matching calls, in 1/10000 */
	ROLLUP_AGG_APDEX,       /* (satisfied + tolerated / 2) / calls, in 1/10000 */
	ROLLUP_AGG_PERCENTILE,  /* p50, p75, p90, p95, p99 of the field, 10 ms precision */
};

enum rollup_side {
	ROLLUP_SIDE_ANY,
	ROLLUP_SIDE_CLIENT,
	ROLLUP_SIDE_SERVER,
};

struct metric_plan {
	const char *name;
	enum rollup_scope scope;
	enum rollup_aggregation aggregation;
	enum rollup_event event;
	enum rollup_side side;
	enum rollup_field field;     /* ROLLUP_F_NONE for counts */
	bool success_only;           /* connect.success / protocol.success == true */
	unsigned int status_class;   /* 1..5 for statusCode in [100c, 100c + 100); 0: any */
	bool has_event;              /* the filter names the event (else: HTTP, endpoints only) */
};

#define ROLLUP_METRIC_COUNT 296

/*
 * Parse every row of oap_metrics.def. 0, or -EINVAL with the offending
 * metric and term in `err` (a programming error: the table is fixed).
 */
int metric_plans_build(struct metric_plan *ret_plans, size_t count, char *err, size_t err_len);

/* The plans, parsed once; NULL when the table does not parse. */
const struct metric_plan *metric_plans(void);

/* Event and field names as OAL spells them, for messages and tests. */
const char *rollup_field_name(enum rollup_field field);
const char *rollup_scope_name(enum rollup_scope scope);

/* The raw OAL text of metric `index`, for the table check. */
struct oap_metric_text {
	const char *name;
	enum rollup_scope scope;
	const char *aggregation;
	const char *value;
	const char *filter;
};
extern const struct oap_metric_text oap_metric_texts[ROLLUP_METRIC_COUNT];

#endif
