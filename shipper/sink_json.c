// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * NDJSON output: one object per line, stable field names with units.
 * Every line has "type": agent_ready, connection, aggregate or bucket.
 */
#include <inttypes.h>
#include <stdio.h>

#include "cgroups.h"
#include "drop_reasons.h"
#include "json_writer.h"
#include "l24_fields.h"
#include "sink.h"

static void json_cgroup_fields(struct sink *sink, struct json_writer *w, uint64_t cgroup_id)
{
	jw_u64_field(w, "cgroup_id", cgroup_id);
	jw_string_field(w, "cgroup", cgroup_names_lookup(sink->env.cgroups, cgroup_id));
}

static void json_ready(struct sink *sink, const struct agent_info *info)
{
	struct json_writer w;

	jw_init(&w, sink->env.out);
	jw_object_begin(&w);
	jw_string_field(&w, "type", "agent_ready");
	jw_string_field(&w, "version", KACCESS_VERSION);
	jw_string_field(&w, "kernel", info->kernel_release);
	jw_u64_field(&w, "interval_s", sink->env.bucket_ns / 1000000000ULL);
	jw_string_field(&w, "watched_cgroup", info->watched_cgroup[0] ? info->watched_cgroup : NULL);
	jw_string_field(&w, "pin_dir", info->pin_dir[0] ? info->pin_dir : NULL);
	jw_string_field(&w, "hooks", info->hooks);
	jw_u64_field(&w, "l24_measured", sink->env.l24_measured);
	jw_u64_field(&w, "programs_attached", info->programs_attached);
	jw_u64_field(&w, "programs_not_attached", info->programs_not_attached);
	jw_object_end(&w);
	jw_line_end(&w);
}

static const char *event_name(__u32 type)
{
	switch (type) {
	case KACCESS_EVENT_CONN_OPEN:
		return "open";
	case KACCESS_EVENT_CONNECT_FAILED:
		return "connect_failed";
	case KACCESS_EVENT_CONN_CLOSE:
		return "close";
	default:
		return "unknown";
	}
}

static void json_connection(struct sink *sink, const struct kaccess_conn_event *event)
{
	const struct kaccess_conn *conn = &event->conn;
	char local[64], remote[64], sk[32];
	struct json_writer w;

	format_addr(conn->local_addr, local, sizeof(local));
	format_addr(conn->remote_addr, remote, sizeof(remote));
	snprintf(sk, sizeof(sk), "0x%" PRIx64, (uint64_t)event->sk);
	jw_init(&w, sink->env.out);
	jw_object_begin(&w);
	jw_string_field(&w, "type", "connection");
	jw_string_field(&w, "event", event_name(event->type));
	jw_u64_field(&w, "time_ms", monotonic_to_realtime_ms(&sink->env, event->ts_ns));
	jw_string_field(&w, "sk", sk);
	jw_string_field(&w, "role", role_name(conn->agg.role));
	jw_u64_field(&w, "pid", conn->pid);
	jw_string_field(&w, "comm", conn->comm);
	json_cgroup_fields(sink, &w, conn->agg.cgroup_id);
	jw_string_field(&w, "local", local);
	jw_u64_field(&w, "local_port", conn->local_port);
	jw_string_field(&w, "remote", remote);
	jw_u64_field(&w, "remote_port", conn->remote_port);
	jw_u64_field(&w, "duration_ns", event->duration_ns);
	jw_bool_field(&w, "adopted", conn->flags & KACCESS_CONN_ADOPTED);
	if (event->type == KACCESS_EVENT_CONN_CLOSE)
		jw_bool_field(&w, "close_traced", event->traced);
	jw_object_end(&w);
	jw_line_end(&w);
}

/* The L2-L4 fields this kernel measures; the others would be zeros, not facts. */
static void json_l24_fields(struct json_writer *w, unsigned int measured,
			    const struct kaccess_agg_value *v)
{
	for (size_t i = 0; i < l24_field_count; i++)
		if (measured & l24_fields[i].measure)
			jw_u64_field(w, l24_fields[i].name, l24_field_value(&l24_fields[i], v));
}

static void json_loss_location(void *ctx, const char *location, __u64 packets)
{
	jw_u64_field(ctx, location, packets);
}

/* Where the connection's sent packets were dropped: {"NETFILTER_DROP": 3, ...}. */
static void json_loss_locations(struct json_writer *w, unsigned int measured,
				const struct kaccess_agg_value *v)
{
	if (!(measured & KACCESS_L24_LOSS) || !v->write_loss_packets)
		return;
	jw_key(w, "write_loss_locations");
	jw_object_begin(w);
	loss_locations_foreach(v, json_loss_location, w);
	jw_object_end(w);
}

static void json_row(struct sink *sink, const struct bucket_report *report, const struct agg_row *row)
{
	const struct kaccess_agg_value *v = &row->value;
	struct json_writer w;
	char peer[64];

	format_addr(row->key.peer_addr, peer, sizeof(peer));
	jw_init(&w, sink->env.out);
	jw_object_begin(&w);
	jw_string_field(&w, "type", "aggregate");
	jw_u64_field(&w, "bucket_start_ms", bucket_start_ms(&sink->env, v->bucket));
	jw_u64_field(&w, "interval_s", sink->env.bucket_ns / 1000000000ULL);
	jw_bool_field(&w, "partial", report->partial);
	json_cgroup_fields(sink, &w, row->key.cgroup_id);
	jw_string_field(&w, "role", role_name(row->key.role));
	jw_string_field(&w, "peer", peer);
	jw_u64_field(&w, "peer_port", row->key.peer_port);
	jw_u64_field(&w, "connect_count", v->connect_count);
	jw_u64_field(&w, "connect_success_count", v->connect_success_count);
	jw_u64_field(&w, "connect_duration_ns_sum", v->connect_duration_ns_sum);
	jw_u64_field(&w, "accept_count", v->accept_count);
	jw_u64_field(&w, "accept_duration_ns_sum", v->accept_duration_ns_sum);
	jw_u64_field(&w, "close_count", v->close_count);
	jw_u64_field(&w, "close_untraced_count", v->close_untraced_count);
	jw_u64_field(&w, "close_duration_ns_sum", v->close_duration_ns_sum);
	jw_u64_field(&w, "read_count", v->read_count);
	jw_u64_field(&w, "read_duration_ns_sum", v->read_duration_ns_sum);
	jw_u64_field(&w, "read_bytes", v->read_bytes);
	jw_u64_field(&w, "write_count", v->write_count);
	jw_u64_field(&w, "write_duration_ns_sum", v->write_duration_ns_sum);
	jw_u64_field(&w, "write_bytes", v->write_bytes);
	json_l24_fields(&w, sink->env.l24_measured, v);
	json_loss_locations(&w, sink->env.l24_measured, v);
	jw_object_end(&w);
	jw_line_end(&w);
}

static const char *const http_class_fields[KACCESS_HTTP_CLASSES] = {
	"http_status_1xx_count", "http_status_2xx_count", "http_status_3xx_count",
	"http_status_4xx_count", "http_status_5xx_count",
};

static void json_http_row(struct sink *sink, const struct bucket_report *report,
			  const struct http_row *row)
{
	const struct kaccess_http_value *v = &row->value;
	char peer[64], hash[24], endpoint[KACCESS_HTTP_ENDPOINT_MAX + 1], low_ms[24];
	struct json_writer w;

	format_addr(row->key.agg.peer_addr, peer, sizeof(peer));
	snprintf(hash, sizeof(hash), "%016" PRIx64, (uint64_t)row->key.endpoint);
	jw_init(&w, sink->env.out);
	jw_object_begin(&w);
	jw_string_field(&w, "type", "http");
	jw_u64_field(&w, "bucket_start_ms", bucket_start_ms(&sink->env, v->bucket));
	jw_u64_field(&w, "interval_s", sink->env.bucket_ns / 1000000000ULL);
	jw_bool_field(&w, "partial", report->partial);
	json_cgroup_fields(sink, &w, row->key.agg.cgroup_id);
	jw_string_field(&w, "role", role_name(row->key.agg.role));
	jw_string_field(&w, "peer", peer);
	jw_u64_field(&w, "peer_port", row->key.agg.peer_port);
	jw_string_field(&w, "endpoint",
			http_endpoint_text(&sink->env, row->key.endpoint, endpoint, sizeof(endpoint)));
	jw_string_field(&w, "endpoint_hash", hash);
	jw_u64_field(&w, "http_call_count", v->call_count);
	jw_u64_field(&w, "http_success_count", v->success_count);
	for (int i = 0; i < KACCESS_HTTP_CLASSES; i++)
		jw_u64_field(&w, http_class_fields[i], v->status_count[i]);
	jw_u64_field(&w, "http_no_response_count", v->no_response_count);
	jw_u64_field(&w, "http_truncated_count", v->truncated_count);
	jw_u64_field(&w, "http_request_header_bytes", v->request_header_bytes);
	jw_u64_field(&w, "http_request_body_bytes", v->request_body_bytes);
	jw_u64_field(&w, "http_response_header_bytes", v->response_header_bytes);
	jw_u64_field(&w, "http_response_body_bytes", v->response_body_bytes);
	jw_u64_field(&w, "http_duration_ns_sum", v->duration_ns_sum);
	/* non-empty latency buckets, keyed by their lower bound in ms */
	jw_key(&w, "http_duration_ms_histogram");
	jw_object_begin(&w);
	for (unsigned int i = 0; i < KACCESS_HTTP_LATENCY_BUCKETS; i++) {
		if (!v->duration_hist[i])
			continue;
		snprintf(low_ms, sizeof(low_ms), "%" PRIu64, (uint64_t)kaccess_http_bucket_low_ms(i));
		jw_u64_field(&w, low_ms, v->duration_hist[i]);
	}
	jw_object_end(&w);
	jw_object_end(&w);
	jw_line_end(&w);
}

static void json_losses(struct json_writer *w, const struct loss_counters *losses)
{
	jw_key(w, "lost");
	jw_object_begin(w);
	for (int i = 0; i < LOSS_MAX; i++)
		jw_u64_field(w, loss_names[i], losses->values[i]);
	jw_object_end(w);
}

static void json_bucket(struct sink *sink, const struct bucket_report *report)
{
	struct json_writer w;

	for (size_t i = 0; i < report->count; i++)
		json_row(sink, report, &report->rows[i]);
	for (size_t i = 0; i < report->http_count; i++)
		json_http_row(sink, report, &report->http_rows[i]);
	jw_init(&w, sink->env.out);
	jw_object_begin(&w);
	jw_string_field(&w, "type", "bucket");
	jw_u64_field(&w, "bucket_start_ms", bucket_start_ms(&sink->env, report->bucket));
	jw_u64_field(&w, "interval_s", sink->env.bucket_ns / 1000000000ULL);
	jw_bool_field(&w, "partial", report->partial);
	jw_u64_field(&w, "rows", report->count);
	jw_u64_field(&w, "http_rows", report->http_count);
	json_losses(&w, report->losses);
	jw_object_end(&w);
	jw_line_end(&w);
}

static const char *http_version_name(uint8_t version)
{
	switch (version) {
	case KACCESS_HTTP_VERSION_1_0:
		return "1.0";
	case KACCESS_HTTP_VERSION_1_1:
		return "1.1";
	case KACCESS_HTTP_VERSION_2:
		return "2";
	default:
		return NULL;
	}
}

static const char *http_outcome_name(uint8_t outcome)
{
	switch (outcome) {
	case KACCESS_HTTP_OUTCOME_COMPLETE:
		return "complete";
	case KACCESS_HTTP_OUTCOME_CUT:
		return "cut";
	default:
		return "no_response";
	}
}

/* One access-log record: an exchange as it happened, with its trace headers. */
static void json_http_exchange(struct sink *sink, const struct http_record *r)
{
	char peer[64], sk[32];
	struct json_writer w;

	format_addr(r->agg.peer_addr, peer, sizeof(peer));
	snprintf(sk, sizeof(sk), "0x%" PRIx64, r->sk);
	jw_init(&w, sink->env.out);
	jw_object_begin(&w);
	jw_string_field(&w, "type", "http_exchange");
	jw_u64_field(&w, "time_ms", monotonic_to_realtime_ms(&sink->env, r->end_ns));
	jw_u64_field(&w, "start_boot_ns", r->start_ns);
	jw_u64_field(&w, "end_boot_ns", r->end_ns);
	jw_u64_field(&w, "duration_ns", r->end_ns - r->start_ns);
	jw_string_field(&w, "sk", sk);
	jw_u64_field(&w, "conn_start_boot_ns", r->conn_start_ns);
	jw_u64_field(&w, r->version == KACCESS_HTTP_VERSION_2 ? "stream_id" : "seq", r->seq);
	json_cgroup_fields(sink, &w, r->agg.cgroup_id);
	jw_string_field(&w, "role", role_name(r->agg.role));
	jw_string_field(&w, "peer", peer);
	jw_u64_field(&w, "peer_port", r->agg.peer_port);
	jw_u64_field(&w, "local_port", r->local_port);
	jw_u64_field(&w, "remote_port", r->remote_port);
	jw_string_field(&w, "version", http_version_name(r->version));
	jw_string_field(&w, "method", r->method);
	jw_string_field(&w, "path", r->path);
	jw_string_field(&w, "host", r->host);
	jw_u64_field(&w, "status", r->status);
	jw_string_field(&w, "outcome", http_outcome_name(r->outcome));
	jw_u64_field(&w, "request_header_bytes", r->request_header_bytes);
	jw_u64_field(&w, "request_body_bytes", r->request_body_bytes);
	jw_u64_field(&w, "response_header_bytes", r->response_header_bytes);
	jw_u64_field(&w, "response_body_bytes", r->response_body_bytes);
	jw_u64_field(&w, "request_calls", r->calls.request_calls);
	jw_u64_field(&w, "request_call_ns", r->calls.request_call_ns);
	jw_u64_field(&w, "response_calls", r->calls.response_calls);
	jw_u64_field(&w, "response_call_ns", r->calls.response_call_ns);
	jw_string_field(&w, "sw8", r->sw8);
	jw_string_field(&w, "traceparent", r->traceparent);
	jw_string_field(&w, "b3", r->b3);
	jw_bool_field(&w, "head_cut", r->head_cut);
	jw_object_end(&w);
	jw_line_end(&w);
}

static const struct sink_ops json_ops = {
	.ready = json_ready,
	.connection = json_connection,
	.bucket = json_bucket,
	.http_exchange = json_http_exchange,
};

void sink_json_init(struct sink *sink, const struct sink_env *env)
{
	sink->ops = &json_ops;
	sink->env = *env;
	sink->is_tty = false;
}
