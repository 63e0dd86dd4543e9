// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oap_meters.h"

/* more than the kernel histogram's buckets */
#define HISTOGRAM_BUCKETS_MAX 128

struct kept_flow {
	char *svc, *pod, *src_svc, *src_pod, *dst_svc, *dst_pod, *endpoint;
	enum rollup_role role;
	struct rollup_measures measures;
	struct rollup_latency_bucket *latency;
};

struct flow_meters {
	struct kept_flow *flows;
	size_t count, capacity;
};

int flow_meters_new(struct flow_meters **ret_meters)
{
	*ret_meters = calloc(1, sizeof(**ret_meters));
	return *ret_meters ? 0 : -ENOMEM;
}

static void kept_flow_clear(struct kept_flow *f)
{
	free(f->svc);
	free(f->pod);
	free(f->src_svc);
	free(f->src_pod);
	free(f->dst_svc);
	free(f->dst_pod);
	free(f->endpoint);
	free(f->latency);
}

void flow_meters_free(struct flow_meters *meters)
{
	if (!meters)
		return;
	for (size_t i = 0; i < meters->count; i++)
		kept_flow_clear(&meters->flows[i]);
	free(meters->flows);
	free(meters);
}

static char *copy(const char *text)
{
	return strdup(text ? text : "");
}

static int keep(struct kept_flow *f, const struct rollup_flow *flow,
		const struct rollup_relation *relation)
{
	const struct rollup_measures *m = flow->measures;

	f->svc = copy(flow->local.service);
	f->pod = copy(flow->local.instance);
	f->src_svc = copy(relation->source_service);
	f->src_pod = copy(relation->source_instance);
	f->dst_svc = copy(relation->dest_service);
	f->dst_pod = copy(relation->dest_instance);
	f->endpoint = flow->endpoint ? strdup(flow->endpoint) : NULL;
	f->role = flow->role;
	f->measures = *m;
	if (m->latency_count) {
		f->latency = calloc(m->latency_count, sizeof(*f->latency));
		if (f->latency)
			memcpy(f->latency, m->latency, m->latency_count * sizeof(*f->latency));
	}
	f->measures.latency = f->latency;
	if (!f->svc || !f->pod || !f->src_svc || !f->src_pod || !f->dst_svc || !f->dst_pod ||
	    (flow->endpoint && !f->endpoint) || (m->latency_count && !f->latency))
		return -ENOMEM;
	return 0;
}

int flow_meters_observe(void *ctx, const struct rollup_flow *flow,
			const struct rollup_relation *relation)
{
	struct flow_meters *meters = ctx;
	int err;

	if (meters->count == meters->capacity) {
		size_t capacity = meters->capacity ? meters->capacity * 2 : 64;
		struct kept_flow *grown = realloc(meters->flows, capacity * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		meters->flows = grown;
		meters->capacity = capacity;
	}
	memset(&meters->flows[meters->count], 0, sizeof(meters->flows[0]));
	err = keep(&meters->flows[meters->count], flow, relation);
	meters->count++; /* cleared on free even when a copy failed */
	return err;
}

/* A meter of one kept flow, with its connection labels. */
struct flow_labels {
	struct oap_label labels[8];
	char component[16];
};

static void flow_labels_set(struct flow_labels *l, const struct kept_flow *f, unsigned int component)
{
	snprintf(l->component, sizeof(l->component), "%u", component);
	l->labels[0] = (struct oap_label){ "svc", f->svc };
	l->labels[1] = (struct oap_label){ "pod", f->pod };
	l->labels[2] = (struct oap_label){ "src_svc", f->src_svc };
	l->labels[3] = (struct oap_label){ "src_pod", f->src_pod };
	l->labels[4] = (struct oap_label){ "dst_svc", f->dst_svc };
	l->labels[5] = (struct oap_label){ "dst_pod", f->dst_pod };
	l->labels[6] = (struct oap_label){ "side", f->role == ROLLUP_ROLE_SERVER ? "server" : "client" };
	l->labels[7] = (struct oap_label){ "component", l->component };
}

struct meter_value {
	const char *name;
	uint64_t value;
};

static int add_values(struct oap_meter_batch *batch, const struct oap_label *labels, size_t n_labels,
		      const struct meter_value *values, size_t count)
{
	int err;

	for (size_t i = 0; i < count; i++) {
		err = oap_meter_batch_add_value(batch, values[i].name, labels, n_labels,
						(double)values[i].value);
		if (err)
			return err;
	}
	return 0;
}

/*
 * Per event with calls: its count and every sum the kernel measures. The
 * duration comes last, and is left out where it was not measured (see
 * rollup_measures_from_agg).
 */
static int add_tcp_meters(struct oap_meter_batch *batch, const struct flow_labels *l,
			  const struct rollup_measures *m)
{
	const struct {
		enum rollup_event event;
		enum rollup_field duration;
		struct meter_value values[3];
		size_t count;
	} families[] = {
		{ ROLLUP_EV_CONNECT, ROLLUP_F_CONNECT_DURATION,
		  { { "kaccess_connect_count", m->calls[ROLLUP_EV_CONNECT] },
		    { "kaccess_connect_success_count", m->connect_success },
		    { "kaccess_connect_duration_ns", m->sums[ROLLUP_F_CONNECT_DURATION] } }, 3 },
		{ ROLLUP_EV_ACCEPT, ROLLUP_F_ACCEPT_DURATION,
		  { { "kaccess_accept_count", m->calls[ROLLUP_EV_ACCEPT] },
		    { "kaccess_accept_duration_ns", m->sums[ROLLUP_F_ACCEPT_DURATION] } }, 2 },
		{ ROLLUP_EV_CLOSE, ROLLUP_F_CLOSE_DURATION,
		  { { "kaccess_close_count", m->calls[ROLLUP_EV_CLOSE] },
		    { "kaccess_close_duration_ns", m->sums[ROLLUP_F_CLOSE_DURATION] } }, 2 },
		{ ROLLUP_EV_READ, ROLLUP_F_READ_DURATION,
		  { { "kaccess_read_count", m->calls[ROLLUP_EV_READ] },
		    { "kaccess_read_duration_ns", m->sums[ROLLUP_F_READ_DURATION] } }, 2 },
		{ ROLLUP_EV_WRITE, ROLLUP_F_WRITE_DURATION,
		  { { "kaccess_write_count", m->calls[ROLLUP_EV_WRITE] },
		    { "kaccess_write_duration_ns", m->sums[ROLLUP_F_WRITE_DURATION] } }, 2 },
	};
	int err;

	for (size_t i = 0; i < sizeof(families) / sizeof(families[0]); i++) {
		size_t count = families[i].count;

		if (!m->calls[families[i].event])
			continue;
		if (!(m->measured & 1ull << families[i].duration))
			count--;
		err = add_values(batch, l->labels, 8, families[i].values, count);
		if (err)
			return err;
	}
	return 0;
}

static int add_latency_histogram(struct oap_meter_batch *batch, const char *name,
				 const struct oap_label *labels, size_t n_labels,
				 const struct rollup_measures *m)
{
	int64_t bounds[HISTOGRAM_BUCKETS_MAX];
	uint64_t counts[HISTOGRAM_BUCKETS_MAX];
	size_t n = 0;

	for (uint32_t i = 0; i < m->latency_count && n < HISTOGRAM_BUCKETS_MAX; i++) {
		bounds[n] = (int64_t)m->latency[i].key * ROLLUP_PERCENTILE_PRECISION_MS;
		counts[n++] = m->latency[i].count;
	}
	if (n == 0)
		return 0;
	return oap_meter_batch_add_histogram(batch, name, labels, n_labels, bounds, counts, n);
}

static int add_http_meters(struct oap_meter_batch *batch, const struct flow_labels *l,
			   const struct kept_flow *f)
{
	const struct rollup_measures *m = &f->measures;
	const struct meter_value flow_values[] = {
		{ "kaccess_http_count", m->calls[ROLLUP_EV_HTTP] },
		{ "kaccess_http_success_count", m->http_success },
		{ "kaccess_http_status_1xx_count", m->http_status_class[1] },
		{ "kaccess_http_status_2xx_count", m->http_status_class[2] },
		{ "kaccess_http_status_3xx_count", m->http_status_class[3] },
		{ "kaccess_http_status_4xx_count", m->http_status_class[4] },
		{ "kaccess_http_status_5xx_count", m->http_status_class[5] },
		{ "kaccess_http_latency_ms", m->sums[ROLLUP_F_HTTP_LATENCY_MS] },
		{ "kaccess_http_request_header_bytes", m->sums[ROLLUP_F_HTTP_REQUEST_HEADER_BYTES] },
		{ "kaccess_http_request_body_bytes", m->sums[ROLLUP_F_HTTP_REQUEST_BODY_BYTES] },
		{ "kaccess_http_response_header_bytes", m->sums[ROLLUP_F_HTTP_RESPONSE_HEADER_BYTES] },
		{ "kaccess_http_response_body_bytes", m->sums[ROLLUP_F_HTTP_RESPONSE_BODY_BYTES] },
		{ "kaccess_http_apdex_satisfied_count", m->http_apdex_satisfied },
		{ "kaccess_http_apdex_tolerating_count", m->http_apdex_tolerated },
	};
	const struct meter_value endpoint_values[] = {
		{ "kaccess_endpoint_http_count", m->calls[ROLLUP_EV_HTTP] },
		{ "kaccess_endpoint_http_success_count", m->http_success },
		{ "kaccess_endpoint_http_status_1xx_count", m->http_status_class[1] },
		{ "kaccess_endpoint_http_status_2xx_count", m->http_status_class[2] },
		{ "kaccess_endpoint_http_status_3xx_count", m->http_status_class[3] },
		{ "kaccess_endpoint_http_status_4xx_count", m->http_status_class[4] },
		{ "kaccess_endpoint_http_status_5xx_count", m->http_status_class[5] },
		{ "kaccess_endpoint_http_latency_ms", m->sums[ROLLUP_F_HTTP_LATENCY_MS] },
		{ "kaccess_endpoint_http_request_header_bytes", m->sums[ROLLUP_F_HTTP_REQUEST_HEADER_BYTES] },
		{ "kaccess_endpoint_http_request_body_bytes", m->sums[ROLLUP_F_HTTP_REQUEST_BODY_BYTES] },
		{ "kaccess_endpoint_http_response_header_bytes", m->sums[ROLLUP_F_HTTP_RESPONSE_HEADER_BYTES] },
		{ "kaccess_endpoint_http_response_body_bytes", m->sums[ROLLUP_F_HTTP_RESPONSE_BODY_BYTES] },
	};
	struct oap_label endpoint_labels[2] = { { "svc", f->svc }, { "endpoint", f->endpoint } };
	int err;

	if (!m->calls[ROLLUP_EV_HTTP])
		return 0;
	err = add_values(batch, l->labels, 8, flow_values, sizeof(flow_values) / sizeof(flow_values[0]));
	err = err ?: add_latency_histogram(batch, "kaccess_http_latency_ms_histogram", l->labels, 8, m);
	/* endpoints are the server's, as in OAP */
	if (err || f->role != ROLLUP_ROLE_SERVER || !f->endpoint)
		return err;
	return add_values(batch, endpoint_labels, 2, endpoint_values,
			  sizeof(endpoint_values) / sizeof(endpoint_values[0]));
}

int flow_meters_build(struct flow_meters *meters, struct rollup *rollup,
		      struct oap_meter_batch *batch)
{
	struct flow_labels labels;
	int err;

	for (size_t i = 0; i < meters->count; i++) {
		const struct kept_flow *f = &meters->flows[i];

		flow_labels_set(&labels, f, rollup_relation_component(rollup, f->src_svc, f->dst_svc));
		err = add_tcp_meters(batch, &labels, &f->measures);
		err = err ?: add_http_meters(batch, &labels, f);
		if (err)
			return err;
	}
	return 0;
}
