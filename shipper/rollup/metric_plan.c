// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Parsing OAL's aggregation, value and filter text of the 296 metrics into
 * plans. The grammar is the small part of OAL that ebpf.oal uses; anything
 * else is rejected, so a metric never silently means something else.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "rollup/metric_plan.h"

const struct oap_metric_text oap_metric_texts[ROLLUP_METRIC_COUNT] = {
#define OAP_METRIC(name, scope, aggregation, value, filter) { #name, scope, aggregation, value, filter },
#include "rollup/oap_metrics.def"
#undef OAP_METRIC
};

struct field_text {
	const char *text;
	enum rollup_field field;
	enum rollup_event event;
};

/*
 * Source fields, without the "protocol." prefix that the service, instance
 * and relation scopes put before "http.". An endpoint's bare "duration" is
 * its call latency: endpoints only have HTTP calls.
 */
static const struct field_text field_texts[] = {
	{ "connect.duration", ROLLUP_F_CONNECT_DURATION, ROLLUP_EV_CONNECT },
	{ "accept.duration", ROLLUP_F_ACCEPT_DURATION, ROLLUP_EV_ACCEPT },
	{ "close.duration", ROLLUP_F_CLOSE_DURATION, ROLLUP_EV_CLOSE },
	{ "write.duration", ROLLUP_F_WRITE_DURATION, ROLLUP_EV_WRITE },
	{ "write.l4.duration", ROLLUP_F_WRITE_L4_DURATION, ROLLUP_EV_WRITE },
	{ "write.l4.transmitPackageCount", ROLLUP_F_WRITE_L4_TRANSMIT_PACKETS, ROLLUP_EV_WRITE },
	{ "write.l4.retransmitPackageCount", ROLLUP_F_WRITE_L4_RETRANSMIT_PACKETS, ROLLUP_EV_WRITE },
	{ "write.l4.totalPackageSize", ROLLUP_F_WRITE_L4_PACKET_BYTES, ROLLUP_EV_WRITE },
	{ "write.l3.duration", ROLLUP_F_WRITE_L3_DURATION, ROLLUP_EV_WRITE },
	{ "write.l3.localDuration", ROLLUP_F_WRITE_L3_LOCAL_DURATION, ROLLUP_EV_WRITE },
	{ "write.l3.outputDuration", ROLLUP_F_WRITE_L3_OUTPUT_DURATION, ROLLUP_EV_WRITE },
	{ "write.l3.resolveMACCount", ROLLUP_F_WRITE_L3_RESOLVE_MAC_COUNT, ROLLUP_EV_WRITE },
	{ "write.l3.resolveMACDuration", ROLLUP_F_WRITE_L3_RESOLVE_MAC_DURATION, ROLLUP_EV_WRITE },
	{ "write.l3.netFilterCount", ROLLUP_F_WRITE_L3_NETFILTER_COUNT, ROLLUP_EV_WRITE },
	{ "write.l3.netFilterDuration", ROLLUP_F_WRITE_L3_NETFILTER_DURATION, ROLLUP_EV_WRITE },
	{ "write.l2.duration", ROLLUP_F_WRITE_L2_DURATION, ROLLUP_EV_WRITE },
	{ "write.l2.enterQueueBufferCount", ROLLUP_F_WRITE_L2_ENTER_QUEUE_COUNT, ROLLUP_EV_WRITE },
	{ "write.l2.readySendDuration", ROLLUP_F_WRITE_L2_READY_SEND_DURATION, ROLLUP_EV_WRITE },
	{ "write.l2.networkDeviceSendDuration", ROLLUP_F_WRITE_L2_DEVICE_SEND_DURATION, ROLLUP_EV_WRITE },
	{ "read.duration", ROLLUP_F_READ_DURATION, ROLLUP_EV_READ },
	{ "read.l4.duration", ROLLUP_F_READ_L4_DURATION, ROLLUP_EV_READ },
	{ "read.l3.duration", ROLLUP_F_READ_L3_DURATION, ROLLUP_EV_READ },
	{ "read.l3.rcvDuration", ROLLUP_F_READ_L3_RCV_DURATION, ROLLUP_EV_READ },
	{ "read.l3.localDuration", ROLLUP_F_READ_L3_LOCAL_DURATION, ROLLUP_EV_READ },
	{ "read.l3.netFilterCount", ROLLUP_F_READ_L3_NETFILTER_COUNT, ROLLUP_EV_READ },
	{ "read.l3.netFilterDuration", ROLLUP_F_READ_L3_NETFILTER_DURATION, ROLLUP_EV_READ },
	{ "read.l2.packageCount", ROLLUP_F_READ_L2_PACKETS, ROLLUP_EV_READ },
	{ "read.l2.totalPackageSize", ROLLUP_F_READ_L2_PACKET_BYTES, ROLLUP_EV_READ },
	{ "read.l2.packageToQueueDuration", ROLLUP_F_READ_L2_TO_QUEUE_DURATION, ROLLUP_EV_READ },
	{ "read.l2.rcvPackageFromQueueDuration", ROLLUP_F_READ_L2_FROM_QUEUE_DURATION, ROLLUP_EV_READ },
	{ "http.latency", ROLLUP_F_HTTP_LATENCY_MS, ROLLUP_EV_HTTP },
	{ "duration", ROLLUP_F_HTTP_LATENCY_MS, ROLLUP_EV_HTTP },
	{ "http.sizeOfRequestHeader", ROLLUP_F_HTTP_REQUEST_HEADER_BYTES, ROLLUP_EV_HTTP },
	{ "http.sizeOfRequestBody", ROLLUP_F_HTTP_REQUEST_BODY_BYTES, ROLLUP_EV_HTTP },
	{ "http.sizeOfResponseHeader", ROLLUP_F_HTTP_RESPONSE_HEADER_BYTES, ROLLUP_EV_HTTP },
	{ "http.sizeOfResponseBody", ROLLUP_F_HTTP_RESPONSE_BODY_BYTES, ROLLUP_EV_HTTP },
};

static const char *const event_texts[ROLLUP_EV_MAX] = {
	[ROLLUP_EV_CONNECT] = "connect", [ROLLUP_EV_ACCEPT] = "accept", [ROLLUP_EV_CLOSE] = "close",
	[ROLLUP_EV_READ] = "read",       [ROLLUP_EV_WRITE] = "write",   [ROLLUP_EV_HTTP] = "http",
};

static const char *const scope_names[ROLLUP_SCOPE_MAX] = {
	[ROLLUP_SERVICE] = "service",
	[ROLLUP_INSTANCE] = "instance",
	[ROLLUP_ENDPOINT] = "endpoint",
	[ROLLUP_SERVICE_RELATION] = "service_relation",
	[ROLLUP_INSTANCE_RELATION] = "instance_relation",
};

const char *rollup_scope_name(enum rollup_scope scope)
{
	return scope < ROLLUP_SCOPE_MAX ? scope_names[scope] : "?";
}

static const char *without_protocol_prefix(const char *text)
{
	return strncmp(text, "protocol.", 9) == 0 ? text + 9 : text;
}

const char *rollup_field_name(enum rollup_field field)
{
	for (size_t i = 0; i < sizeof(field_texts) / sizeof(field_texts[0]); i++)
		if (field_texts[i].field == field)
			return field_texts[i].text;
	return "*";
}

static const struct field_text *field_lookup(const char *text)
{
	text = without_protocol_prefix(text);
	for (size_t i = 0; i < sizeof(field_texts) / sizeof(field_texts[0]); i++)
		if (strcmp(field_texts[i].text, text) == 0)
			return &field_texts[i];
	return NULL;
}

static int parse_aggregation(const char *text, struct metric_plan *plan)
{
	if (strcmp(text, "cpm") == 0)
		plan->aggregation = ROLLUP_AGG_CPM;
	else if (strcmp(text, "longAvg") == 0)
		plan->aggregation = ROLLUP_AGG_LONG_AVG;
	else if (strcmp(text, "sum") == 0)
		plan->aggregation = ROLLUP_AGG_SUM;
	else if (strcmp(text, "percentile2(10)") == 0)
		plan->aggregation = ROLLUP_AGG_PERCENTILE;
	else if (strcmp(text, "percent(protocol.success == true)") == 0 ||
		 strcmp(text, "percent(success == true)") == 0)
		plan->aggregation = ROLLUP_AGG_PERCENT;
	/* apdex(<threshold owner>, protocol.success): the owner only picks the threshold */
	else if (strncmp(text, "apdex(", 6) == 0 && strstr(text, ", protocol.success)"))
		plan->aggregation = ROLLUP_AGG_APDEX;
	else
		return -EINVAL;
	return 0;
}

/* statusCode>=N or statusCode<N, N a multiple of 100 in 100..600 */
static int parse_status_bound(const char *term, struct metric_plan *plan)
{
	unsigned int bound;
	char tail;

	term = without_protocol_prefix(term);
	if (sscanf(term, "http.statusCode>=%u%c", &bound, &tail) == 1 && bound % 100 == 0 &&
	    bound >= 100 && bound <= 500) {
		if (plan->status_class && plan->status_class != bound / 100)
			return -EINVAL;
		plan->status_class = bound / 100;
		return 0;
	}
	if (sscanf(term, "http.statusCode<%u%c", &bound, &tail) == 1 && bound % 100 == 0 &&
	    bound >= 200 && bound <= 600) {
		if (plan->status_class && plan->status_class != bound / 100 - 1)
			return -EINVAL;
		plan->status_class = bound / 100 - 1;
		return 0;
	}
	return -EINVAL;
}

static int parse_event(const char *name, struct metric_plan *plan)
{
	/* "event=protocol & proto=http" is an HTTP exchange, as "event=http" is */
	if (strcmp(name, "protocol") == 0) {
		plan->event = ROLLUP_EV_HTTP;
		return 0;
	}
	for (int ev = 0; ev < ROLLUP_EV_MAX; ev++) {
		if (strcmp(event_texts[ev], name) == 0) {
			plan->event = ev;
			return 0;
		}
	}
	return -EINVAL;
}

static int parse_term(const char *term, struct metric_plan *plan)
{
	if (strncmp(term, "event=", 6) == 0)
		return parse_event(term + 6, plan);
	if (strcmp(term, "side=SERVER") == 0)
		plan->side = ROLLUP_SIDE_SERVER;
	else if (strcmp(term, "side=CLIENT") == 0)
		plan->side = ROLLUP_SIDE_CLIENT;
	else if (strcmp(term, "proto=http") == 0)
		plan->event = ROLLUP_EV_HTTP;
	else if (strcmp(term, "connect.success==true") == 0 ||
		 strcmp(term, "protocol.success==true") == 0)
		plan->success_only = true;
	else
		return parse_status_bound(term, plan);
	return 0;
}

static int parse_filter(const char *filter, struct metric_plan *plan, char *bad, size_t bad_len)
{
	char copy[512], *saveptr = NULL, *term;

	if (snprintf(copy, sizeof(copy), "%s", filter) >= (int)sizeof(copy))
		return -EINVAL;
	for (term = strtok_r(copy, "&", &saveptr); term; term = strtok_r(NULL, "&", &saveptr)) {
		while (*term == ' ')
			term++;
		for (char *end = term + strlen(term); end > term && end[-1] == ' '; end--)
			end[-1] = '\0';
		if (parse_term(term, plan) < 0) {
			snprintf(bad, bad_len, "%s", term);
			return -EINVAL;
		}
	}
	return 0;
}

static int parse_value(const char *value, struct metric_plan *plan)
{
	const struct field_text *field;

	if (strcmp(value, "*") == 0) {
		plan->field = ROLLUP_F_NONE;
		return 0;
	}
	field = field_lookup(value);
	if (!field)
		return -EINVAL;
	/* a field read under another event's filter would be a different metric */
	if (plan->has_event && plan->event != field->event)
		return -EINVAL;
	plan->field = field->field;
	plan->event = field->event;
	return 0;
}

static int plan_one(const struct oap_metric_text *text, struct metric_plan *plan, char *err,
		    size_t err_len)
{
	char bad[128] = "";

	*plan = (struct metric_plan){ .name = text->name, .scope = text->scope };
	/* An endpoint's metrics without a filter are over its calls: HTTP exchanges. */
	plan->event = ROLLUP_EV_HTTP;
	if (parse_aggregation(text->aggregation, plan) < 0) {
		snprintf(err, err_len, "%s: aggregation '%s' not understood", text->name,
			 text->aggregation);
		return -EINVAL;
	}
	if (text->filter[0] == '\0' && text->scope != ROLLUP_ENDPOINT) {
		snprintf(err, err_len, "%s: no filter outside the endpoint scope", text->name);
		return -EINVAL;
	}
	if (parse_filter(text->filter, plan, bad, sizeof(bad)) < 0) {
		snprintf(err, err_len, "%s: filter term '%s' not understood", text->name, bad);
		return -EINVAL;
	}
	plan->has_event = text->filter[0] != '\0';
	if (parse_value(text->value, plan) < 0) {
		snprintf(err, err_len, "%s: value '%s' not understood", text->name, text->value);
		return -EINVAL;
	}
	if ((plan->success_only || plan->status_class) && plan->aggregation != ROLLUP_AGG_CPM) {
		snprintf(err, err_len, "%s: a success or status filter only on counts", text->name);
		return -EINVAL;
	}
	return 0;
}

/*
 * Where OAL reads the wrong field, kaccess reads the right one (README,
 * "Where kaccess differs from OAP"): the service and instance
 * read_rcv_package_from_queue_time read packageToQueueDuration in OAL; the
 * relation variants read rcvPackageFromQueueDuration, as the name says.
 */
static const struct {
	const char *name;
	enum rollup_field field;
} oal_corrections[] = {
	{ "kubernetes_service_read_rcv_package_from_queue_time", ROLLUP_F_READ_L2_FROM_QUEUE_DURATION },
	{ "kubernetes_service_instance_read_rcv_package_from_queue_time",
	  ROLLUP_F_READ_L2_FROM_QUEUE_DURATION },
};

static void correct_oal_defects(struct metric_plan *plan)
{
	for (size_t i = 0; i < sizeof(oal_corrections) / sizeof(oal_corrections[0]); i++)
		if (strcmp(plan->name, oal_corrections[i].name) == 0)
			plan->field = oal_corrections[i].field;
}

int metric_plans_build(struct metric_plan *ret_plans, size_t count, char *err, size_t err_len)
{
	int err_code;

	if (count < ROLLUP_METRIC_COUNT)
		return -EINVAL;
	for (size_t i = 0; i < ROLLUP_METRIC_COUNT; i++) {
		err_code = plan_one(&oap_metric_texts[i], &ret_plans[i], err, err_len);
		if (err_code < 0)
			return err_code;
		correct_oal_defects(&ret_plans[i]);
	}
	return 0;
}

const struct metric_plan *metric_plans(void)
{
	static struct metric_plan plans[ROLLUP_METRIC_COUNT];
	static int state; /* 0 not built, 1 built, -1 failed */
	char err[256];

	if (state == 0)
		state = metric_plans_build(plans, ROLLUP_METRIC_COUNT, err, sizeof(err)) == 0 ? 1 : -1;
	return state == 1 ? plans : NULL;
}
