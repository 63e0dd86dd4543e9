// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <string.h>

#include "l24_fields.h"
#include "rollup/rows.h"

/*
 * One connect, accept, close, read or write syscall is one call, as one
 * kernel log is in OAP. A close without a syscall (a killed process) is a
 * call too, with no duration: the duration sum covers timed closes only.
 * Where no call of a kind was timed (every close untraced; accepts counted
 * by the "tcp" hooks, which see no accept()), there is no duration to
 * average: it is left unmeasured rather than reported as zero.
 */
void rollup_measures_from_agg(const struct kaccess_agg_value *value, unsigned int l24_measured,
			      struct rollup_measures *ret_measures)
{
	struct rollup_measures *m = ret_measures;

	*m = (struct rollup_measures){
		.measured = 1ull << ROLLUP_F_CONNECT_DURATION | 1ull << ROLLUP_F_ACCEPT_DURATION |
			    1ull << ROLLUP_F_CLOSE_DURATION | 1ull << ROLLUP_F_READ_DURATION |
			    1ull << ROLLUP_F_WRITE_DURATION,
	};
	m->calls[ROLLUP_EV_CONNECT] = value->connect_count;
	m->connect_success = value->connect_success_count;
	m->sums[ROLLUP_F_CONNECT_DURATION] = value->connect_duration_ns_sum;
	m->calls[ROLLUP_EV_ACCEPT] = value->accept_count;
	m->sums[ROLLUP_F_ACCEPT_DURATION] = value->accept_duration_ns_sum;
	m->calls[ROLLUP_EV_CLOSE] = value->close_count;
	m->sums[ROLLUP_F_CLOSE_DURATION] = value->close_duration_ns_sum;
	m->calls[ROLLUP_EV_READ] = value->read_count;
	m->sums[ROLLUP_F_READ_DURATION] = value->read_duration_ns_sum;
	m->calls[ROLLUP_EV_WRITE] = value->write_count;
	m->sums[ROLLUP_F_WRITE_DURATION] = value->write_duration_ns_sum;
	if (value->accept_count && !value->accept_duration_ns_sum)
		m->measured &= ~(1ull << ROLLUP_F_ACCEPT_DURATION);
	if (value->close_count && value->close_count == value->close_untraced_count)
		m->measured &= ~(1ull << ROLLUP_F_CLOSE_DURATION);
	rollup_measures_add_l24(value, l24_measured, m);
}

/*
 * The L2-L4 sums this kernel measures (enum kaccess_l24_measure). Per
 * packet sums over the minute; OAP's averages divide them by the read or
 * write calls. The L3 and netfilter windows need netfilter links.
 */
void rollup_measures_add_l24(const struct kaccess_agg_value *v, unsigned int l24_measured,
			     struct rollup_measures *m)
{
	for (size_t i = 0; i < l24_field_count; i++) {
		const struct l24_field *field = &l24_fields[i];

		if (!(l24_measured & field->measure) || field->rollup == ROLLUP_F_NONE)
			continue;
		m->measured |= 1ull << field->rollup;
		m->sums[field->rollup] = l24_field_value(field, v);
	}
}

static int flow_from_key(const struct kaccess_agg_key *key, const struct identity_source *identity,
			 struct rollup_flow *flow, struct rollup_measures *measures)
{
	int err;

	*flow = (struct rollup_flow){ .measures = measures };
	err = identity->local(identity->ctx, key->cgroup_id, &flow->local);
	if (err < 0) {
		flow->local = (struct rollup_party){ 0 };
		flow->local_excluded = err == -EPERM;
	}
	if (identity->peer(identity->ctx, key->peer_addr, key->peer_port, &flow->remote) < 0)
		flow->remote = (struct rollup_party){ 0 };
	switch (key->role) {
	case KACCESS_ROLE_CLIENT:
		flow->role = ROLLUP_ROLE_CLIENT;
		break;
	case KACCESS_ROLE_SERVER:
		flow->role = ROLLUP_ROLE_SERVER;
		break;
	default:
		return -EINVAL;
	}
	return 0;
}

int rollup_add_rows(struct rollup *rollup, const struct agg_row *rows, size_t count,
		    const struct identity_source *identity, unsigned int l24_measured)
{
	struct rollup_measures measures;
	struct rollup_flow flow;
	int err;

	for (size_t i = 0; i < count; i++) {
		if (flow_from_key(&rows[i].key, identity, &flow, &measures) < 0)
			continue; /* a row without a role carries nothing OAP counts */
		rollup_measures_from_agg(&rows[i].value, l24_measured, &measures);
		err = rollup_add(rollup, &flow);
		if (err)
			return err;
	}
	return 0;
}

/*
 * Apdex needs each successful exchange's latency against the threshold T
 * and 4T; the kernel keeps latency per exchange in a histogram without
 * status. Exchanges that failed are taken as the slowest: exact whenever
 * every exchange succeeded, or the failures were slower than 4T.
 */
static uint64_t take(uint64_t *from, uint64_t wanted)
{
	uint64_t taken = wanted < *from ? wanted : *from;

	*from -= taken;
	return taken;
}

static void http_apdex(const struct kaccess_http_value *v, struct rollup_measures *m)
{
	uint64_t below_t = 0, below_4t = 0, slow = 0, failed;

	for (unsigned int i = 0; i < KACCESS_HTTP_LATENCY_BUCKETS; i++) {
		uint64_t low_ms = kaccess_http_bucket_low_ms(i);

		if (low_ms < ROLLUP_APDEX_THRESHOLD_MS)
			below_t += v->duration_hist[i];
		else if (low_ms < 4 * ROLLUP_APDEX_THRESHOLD_MS)
			below_4t += v->duration_hist[i];
		else
			slow += v->duration_hist[i];
	}
	failed = below_t + below_4t + slow;
	failed -= v->success_count < failed ? v->success_count : failed;
	/* failures from the slow end: beyond 4T, then tolerated, then satisfied */
	failed -= take(&slow, failed);
	failed -= take(&below_4t, failed);
	take(&below_t, failed);
	m->http_apdex_satisfied = below_t;
	m->http_apdex_tolerated = below_4t;
}

/*
 * One HTTP row: every exchange is one call (OAP counts a protocol log per
 * exchange). Latency and sizes are sums; OAP's latency is milliseconds.
 */
static void measures_from_http(const struct kaccess_http_value *v, struct rollup_measures *m,
			       struct rollup_latency_bucket *latency)
{
	*m = (struct rollup_measures){
		.measured = 1ull << ROLLUP_F_HTTP_LATENCY_MS | 1ull << ROLLUP_F_HTTP_REQUEST_HEADER_BYTES |
			    1ull << ROLLUP_F_HTTP_REQUEST_BODY_BYTES |
			    1ull << ROLLUP_F_HTTP_RESPONSE_HEADER_BYTES |
			    1ull << ROLLUP_F_HTTP_RESPONSE_BODY_BYTES,
		.latency = latency,
	};
	m->calls[ROLLUP_EV_HTTP] = v->call_count;
	m->http_success = v->success_count;
	for (int c = 0; c < KACCESS_HTTP_CLASSES; c++)
		m->http_status_class[c + 1] = v->status_count[c];
	m->sums[ROLLUP_F_HTTP_LATENCY_MS] = v->duration_ns_sum / 1000000;
	m->sums[ROLLUP_F_HTTP_REQUEST_HEADER_BYTES] = v->request_header_bytes;
	m->sums[ROLLUP_F_HTTP_REQUEST_BODY_BYTES] = v->request_body_bytes;
	m->sums[ROLLUP_F_HTTP_RESPONSE_HEADER_BYTES] = v->response_header_bytes;
	m->sums[ROLLUP_F_HTTP_RESPONSE_BODY_BYTES] = v->response_body_bytes;
	for (unsigned int i = 0; i < KACCESS_HTTP_LATENCY_BUCKETS; i++) {
		if (!v->duration_hist[i])
			continue;
		latency[m->latency_count++] = (struct rollup_latency_bucket){
			.key = (uint32_t)(kaccess_http_bucket_low_ms(i) / ROLLUP_PERCENTILE_PRECISION_MS),
			.count = v->duration_hist[i],
		};
	}
	http_apdex(v, m);
}

int rollup_add_http_rows(struct rollup *rollup, const struct http_row *rows, size_t count,
			 const struct identity_source *identity,
			 const char *(*endpoint_text)(void *ctx, uint64_t hash), void *text_ctx)
{
	struct rollup_latency_bucket latency[KACCESS_HTTP_LATENCY_BUCKETS];
	struct rollup_measures measures;
	struct rollup_flow flow;
	int err;

	for (size_t i = 0; i < count; i++) {
		if (flow_from_key(&rows[i].key.agg, identity, &flow, &measures) < 0)
			continue;
		measures_from_http(&rows[i].value, &measures, latency);
		flow.endpoint = endpoint_text(text_ctx, rows[i].key.endpoint);
		err = rollup_add(rollup, &flow);
		if (err)
			return err;
	}
	return 0;
}

struct json_emit {
	struct json_writer *w;
	uint64_t bucket_start_ms;
	unsigned int interval_s;
	struct rollup_entity_view current;
	bool open;
};

static void entity_line_end(struct json_emit *je)
{
	if (!je->open)
		return;
	jw_object_end(je->w); /* metrics */
	jw_object_end(je->w); /* the entity */
	jw_line_end(je->w);
	je->open = false;
}

static void optional_field(struct json_writer *w, const char *key, const char *value)
{
	if (value)
		jw_string_field(w, key, value);
}

/* A relation's detect points as OAP names them: the sides that saw its calls. */
static void detect_points_field(struct json_writer *w, unsigned int detect_points)
{
	jw_key(w, "detect_points");
	jw_array_begin(w);
	if (detect_points & (1u << ROLLUP_ROLE_CLIENT))
		jw_string(w, "client");
	if (detect_points & (1u << ROLLUP_ROLE_SERVER))
		jw_string(w, "server");
	jw_array_end(w);
}

static void entity_line_begin(struct json_emit *je, const struct rollup_entity_view *e)
{
	struct json_writer *w = je->w;

	jw_object_begin(w);
	jw_string_field(w, "type", "entity");
	jw_u64_field(w, "bucket_start_ms", je->bucket_start_ms);
	jw_u64_field(w, "interval_s", je->interval_s);
	jw_string_field(w, "scope", rollup_scope_name(e->scope));
	optional_field(w, "service", e->service);
	optional_field(w, "instance", e->instance);
	optional_field(w, "endpoint", e->endpoint);
	optional_field(w, "source_service", e->source_service);
	optional_field(w, "source_instance", e->source_instance);
	optional_field(w, "dest_service", e->dest_service);
	optional_field(w, "dest_instance", e->dest_instance);
	if (e->component_id)
		jw_u64_field(w, "component_id", e->component_id);
	if (e->detect_points)
		detect_points_field(w, e->detect_points);
	jw_key(w, "metrics");
	jw_object_begin(w);
	je->current = *e;
	je->open = true;
}

/* Values are never negative: counts, sums, averages and percentiles of them. */
static void emit_json(void *ctx, const struct rollup_entity_view *entity,
		      const struct metric_plan *metric, const int64_t *values, unsigned int count)
{
	struct json_emit *je = ctx;

	if (je->open && !rollup_entity_view_same(&je->current, entity))
		entity_line_end(je);
	if (!je->open)
		entity_line_begin(je, entity);
	jw_key(je->w, metric->name);
	if (count == 1) {
		jw_u64(je->w, (uint64_t)values[0]);
		return;
	}
	jw_array_begin(je->w);
	for (unsigned int i = 0; i < count; i++)
		jw_u64(je->w, (uint64_t)values[i]);
	jw_array_end(je->w);
}

int rollup_write_json(struct rollup *rollup, struct json_writer *w, uint64_t bucket_start_ms,
		      unsigned int interval_s)
{
	struct json_emit je = { .w = w, .bucket_start_ms = bucket_start_ms, .interval_s = interval_s };
	int err;

	err = rollup_emit(rollup, emit_json, &je);
	entity_line_end(&je);
	return err;
}
