// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The entities sink: every drained bucket, rolled up into SkyWalking's six
 * entities with the Kubernetes names of both sides, as NDJSON "entity"
 * lines (output json) and, with http_listen, as kaccess_kubernetes_* gauges
 * of the last completed bucket on /metrics. It runs before the output sink,
 * so a bucket's entity lines come before its "bucket" line.
 */
#include <errno.h>
#include <stdatomic.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "identity.h"
#include "json_writer.h"
#include "log.h"
#include "metrics_extra.h"
#include "oap_access_log.h"
#include "oap_meters.h"
#include "rollup/rows.h"
#include "sink.h"

/*
 * Compatible mode's kernel logs of the last bucket still to queue. A row
 * of n calls is n / 128 messages, so a busy minute is thousands of them:
 * queued at once they overran the sender's queue, which dropped the
 * oldest, and held the queue's whole bound in memory. They are queued
 * instead as the queue empties, on every pass of the loop (entities_pump).
 */
struct syscall_backlog {
	struct agg_row *rows;       /* the bucket's rows with calls, copied */
	size_t count, next;         /* rows; the one being queued */
	struct syscall_log_position at;
	uint64_t start_ns;          /* the bucket's start, CLOCK_MONOTONIC */
	bool named;                 /* local and peer are row `next`'s */
	struct k8s_identity local, peer;
	const struct k8s_identity *peer_pod; /* &peer, or NULL: the address, for OAP */
};

struct entities_state {
	struct k8s_identity_ctx identity_ctx;
	struct identity_source identity;
	const struct kaccess_config *cfg;
	char endpoint[KACCESS_HTTP_ENDPOINT_MAX + 1];
	struct sink *sink;
	struct rollup_stats totals;
	struct oap_sender *oap;       /* NULL: not sending to OAP */
	/* connection events and HTTP exchanges not sent as access logs: their local side is
	 * no known pod / in an excluded namespace (written by the loop, read by /metrics) */
	_Atomic uint64_t access_logs_unknown_local, access_logs_excluded_local;
	char meter_instance[256];     /* MeterData.serviceInstance: this node */
	struct syscall_backlog backlog;
	size_t backlog_room_bytes;    /* a backlog message is queued while the queue holds less */
	/* rows whose kernel logs were all queued as the queue emptied, or (some) at once (read by /metrics) */
	_Atomic uint64_t backlog_rows_paced, backlog_rows_at_once;
	/* The last bucket's entities as Prometheus text, written by the loop, read by /metrics. */
	pthread_mutex_t published_lock;
	char *published_text;         /* NULL: none (no /metrics, or an empty bucket) */
};

#define METER_SERVICE "kaccess"
#define OAP_FLUSH_TIMEOUT_MS 5000

static const char *endpoint_text(void *ctx, uint64_t hash)
{
	struct entities_state *state = ctx;

	return http_endpoint_text(&state->sink->env, hash, state->endpoint, sizeof(state->endpoint));
}

static void entities_ready(struct sink *sink, const struct agent_info *info)
{
}

static bool sends_access_logs(const struct entities_state *state)
{
	return state->oap && oap_mode_sends_access_logs(state->cfg->oap.mode);
}

/*
 * The peer of a connection event as an access log names it: a pod (through
 * conntrack when the client dialled a ClusterIP), or NULL to send its
 * address for OAP to resolve.
 */
static const struct k8s_identity *event_peer(struct entities_state *state,
					     const struct kaccess_conn_event *event,
					     const struct k8s_identity *local, struct k8s_identity *ret_peer)
{
	const struct kaccess_conn *conn = &event->conn;
	const struct k8s_identity *peer;
	struct k8s_tuple tuple;

	memcpy(tuple.local_addr, conn->local_addr, sizeof(tuple.local_addr));
	memcpy(tuple.peer_addr, conn->remote_addr, sizeof(tuple.peer_addr));
	tuple.local_port = conn->local_port;
	tuple.peer_port = conn->remote_port;
	peer = identity_peer(state->identity_ctx.k8s, local, conn->remote_addr, conn->remote_port,
			     conn->agg.role == KACCESS_ROLE_CLIENT ? &tuple : NULL, ret_peer);
	return peer && peer->kind == K8S_KIND_POD ? peer : NULL;
}

/*
 * The local pod an access log names, or false (counted) when there is none
 * to name: OAP could not place the log, or the namespace policy keeps it out.
 */
static bool access_log_local(struct entities_state *state, uint64_t cgroup_id,
			     struct k8s_identity *ret_local)
{
	int err = identity_local_pod(state->identity_ctx.k8s, cgroup_id, ret_local);

	if (err == -EPERM)
		atomic_fetch_add(&state->access_logs_excluded_local, 1);
	else if (err < 0)
		atomic_fetch_add(&state->access_logs_unknown_local, 1);
	return err == 0;
}

/* Connection events of known pods as access logs; others OAP could not place. */
static void entities_connection(struct sink *sink, const struct kaccess_conn_event *event)
{
	struct entities_state *state = sink->state;
	struct k8s_identity local, peer;
	int err;

	if (!sends_access_logs(state))
		return;
	if (!access_log_local(state, event->conn.agg.cgroup_id, &local))
		return;
	err = access_log_send_event(state->oap, event, &local, event_peer(state, event, &local, &peer));
	if (err && err != -EINVAL)
		log_debug("failed to queue an access log: %s", strerror(-err));
}

/* HTTP access-log records of known pods as HTTP protocol logs. */
static void entities_http_exchange(struct sink *sink, const struct http_record *record)
{
	struct entities_state *state = sink->state;
	const struct k8s_identity *peer_pod;
	struct k8s_identity local, peer;
	int err;

	if (!sends_access_logs(state))
		return;
	if (!access_log_local(state, record->agg.cgroup_id, &local))
		return;
	peer_pod = identity_peer(state->identity_ctx.k8s, &local, record->agg.peer_addr,
				 record->agg.peer_port, NULL, &peer);
	if (peer_pod && peer_pod->kind != K8S_KIND_POD)
		peer_pod = NULL; /* a service: its address, for OAP to resolve */
	err = access_log_send_http(state->oap, record, &local, peer_pod,
				   state->cfg->oap.mode != OAP_MODE_COMPATIBLE);
	if (err)
		log_debug("failed to queue an HTTP protocol log: %s", strerror(-err));
}

static int build_rollup(struct entities_state *state, const struct bucket_report *report,
			struct flow_meters *meters, struct rollup **ret_rollup)
{
	unsigned int interval_s = (unsigned int)(state->sink->env.bucket_ns / 1000000000ull);
	struct rollup *rollup = NULL;
	int err;

	err = rollup_new(interval_s ? interval_s : 1, &rollup);
	if (!err && meters)
		rollup_observe_flows(rollup, flow_meters_observe, meters);
	err = err ?: rollup_add_rows(rollup, report->rows, report->count, &state->identity,
					     state->sink->env.l24_measured);
	err = err ?: rollup_add_http_rows(rollup, report->http_rows, report->http_count,
					  &state->identity, endpoint_text, state);
	if (err) {
		rollup_free(rollup);
		return err;
	}
	*ret_rollup = rollup;
	return 0;
}

static void add_stats(struct rollup_stats *totals, const struct rollup_stats *bucket)
{
	totals->flows += bucket->flows;
	totals->dropped_same_service += bucket->dropped_same_service;
	totals->dropped_unknown_local += bucket->dropped_unknown_local;
	totals->dropped_excluded_local += bucket->dropped_excluded_local;
	for (int s = 0; s < ROLLUP_SCOPE_MAX; s++)
		totals->entities[s] += bucket->entities[s];
}

/* What the bucket's rows became: entities, and flows OAP's rules drop. */
static void write_summary(struct json_writer *w, struct sink *sink,
			  const struct bucket_report *report, const struct rollup_stats *stats)
{
	jw_object_begin(w);
	jw_string_field(w, "type", "entities");
	jw_u64_field(w, "bucket_start_ms", bucket_start_ms(&sink->env, report->bucket));
	jw_u64_field(w, "flows", stats->flows);
	jw_u64_field(w, "dropped_same_service", stats->dropped_same_service);
	jw_u64_field(w, "dropped_unknown_local", stats->dropped_unknown_local);
	jw_u64_field(w, "dropped_excluded_local", stats->dropped_excluded_local);
	for (int s = 0; s < ROLLUP_SCOPE_MAX; s++) {
		char key[48];

		snprintf(key, sizeof(key), "%s_count", rollup_scope_name(s));
		jw_u64_field(w, key, stats->entities[s]);
	}
	jw_object_end(w);
	jw_line_end(w);
}

/* One MeterDataCollection set per bucket, stamped with the bucket's minute. */
static void send_meters(struct entities_state *state, const struct bucket_report *report,
			struct flow_meters *meters, struct rollup *rollup)
{
	struct oap_meter_batch *batch = NULL;
	int err;

	err = oap_meter_batch_new(METER_SERVICE, state->meter_instance,
				  (int64_t)bucket_start_ms(&state->sink->env, report->bucket), &batch);
	err = err ?: flow_meters_build(meters, rollup, batch);
	if (!err && oap_meter_batch_count(batch))
		err = oap_sender_enqueue_meter_batch(state->oap, batch);
	if (err)
		log_warn("failed to queue the meters of bucket %llu: %s",
			 (unsigned long long)report->bucket, strerror(-err));
	oap_meter_batch_free(batch);
}

static bool sends_meters(const struct entities_state *state)
{
	return state->oap && oap_mode_sends_meters(state->cfg->oap.mode);
}

/* The pods of the backlog's next row; false when its local side names no pod (the rollup counts it). */
static bool name_backlog_row(struct entities_state *state)
{
	struct syscall_backlog *b = &state->backlog;
	const struct agg_row *row = &b->rows[b->next];

	if (identity_local_pod(state->identity_ctx.k8s, row->key.cgroup_id, &b->local) < 0)
		return false;
	b->peer_pod = identity_peer(state->identity_ctx.k8s, &b->local, row->key.peer_addr,
				    row->key.peer_port, NULL, &b->peer);
	if (b->peer_pod && b->peer_pod->kind != K8S_KIND_POD)
		b->peer_pod = NULL; /* a service: its address, for OAP to resolve */
	b->named = true;
	return true;
}

static void next_backlog_row(struct syscall_backlog *b)
{
	b->next++;
	b->named = false;
	b->at = (struct syscall_log_position){ 0 };
}

static void clear_backlog(struct syscall_backlog *b)
{
	free(b->rows);
	*b = (struct syscall_backlog){ 0 };
}

/*
 * Queue the backlog's kernel logs while `pace` has room (NULL: all of
 * them); true while some are left.
 */
static bool send_backlog(struct entities_state *state, const struct syscall_log_pace *pace)
{
	struct syscall_backlog *b = &state->backlog;
	const struct sink_env *env = &state->sink->env;
	int err = 0;

	while (b->next < b->count) {
		if (!b->named && !name_backlog_row(state)) {
			next_backlog_row(b);
			continue;
		}
		err = access_log_send_row_syscalls(state->oap, &b->rows[b->next], &b->local, b->peer_pod,
						   b->start_ns, env->bucket_ns, env->l24_measured, &b->at,
						   pace);
		if (err == -EAGAIN)
			return true;
		if (err)
			break;
		atomic_fetch_add(pace ? &state->backlog_rows_paced : &state->backlog_rows_at_once, 1);
		next_backlog_row(b);
	}
	if (err)
		log_warn("failed to queue the syscall logs of a bucket: %s", strerror(-err));
	clear_backlog(b);
	return false;
}

/*
 * A quarter of the queue's bound, at most 1 MiB: room for the exchanges'
 * protocol logs that arrive meanwhile and for the message that crosses the
 * mark (128 kernel logs, tens of KiB), and enough queued that the sender
 * never waits for the loop's next pass.
 */
#define BACKLOG_ROOM_MAX_BYTES (1024 * 1024)

static size_t backlog_room_bytes(const struct oap_config *cfg)
{
	size_t quarter = (size_t)cfg->queue_max_kib * 1024 / 4;

	return quarter < BACKLOG_ROOM_MAX_BYTES ? quarter : BACKLOG_ROOM_MAX_BYTES;
}

static bool access_log_queue_has_room(void *ctx)
{
	struct entities_state *state = ctx;
	struct oap_stream_stats stats;

	oap_sender_stats(state->oap, OAP_STREAM_ACCESS_LOG, &stats);
	return stats.queue_bytes < state->backlog_room_bytes;
}

static bool pump_backlog(struct entities_state *state)
{
	struct syscall_log_pace pace = { access_log_queue_has_room, state };

	return state->backlog.count && send_backlog(state, &pace);
}

static bool row_has_calls(const struct agg_row *row)
{
	return row->value.read_count || row->value.write_count;
}

/*
 * Compatible mode: every row's reads and writes as kernel logs, timed
 * inside the bucket. What is left of the bucket before is queued at once
 * first (the queue's bound decides what is kept: OAP could not keep up).
 */
static void send_syscall_logs(struct entities_state *state, const struct bucket_report *report)
{
	const struct sink_env *env = &state->sink->env;
	struct syscall_backlog *b = &state->backlog;
	size_t with_calls = 0;

	send_backlog(state, NULL);
	for (size_t i = 0; i < report->count; i++)
		with_calls += row_has_calls(&report->rows[i]);
	if (!with_calls)
		return;
	b->rows = malloc(with_calls * sizeof(*b->rows));
	if (!b->rows) {
		log_warn("failed to queue the syscall logs of bucket %llu: %s",
			 (unsigned long long)report->bucket, strerror(ENOMEM));
		return;
	}
	for (size_t i = 0; i < report->count; i++)
		if (row_has_calls(&report->rows[i]))
			b->rows[b->count++] = report->rows[i];
	b->start_ns = bucket_start_ms(env, report->bucket) * 1000000ull - *env->wall_offset_ns;
	pump_backlog(state);
}

static bool entities_pump(struct sink *sink)
{
	return pump_backlog(sink->state);
}

/* At exit: the backlog as the queue empties, for as long as the sender would flush, then at once. */
#define BACKLOG_EXIT_WAIT_NS (OAP_FLUSH_TIMEOUT_MS * 1000000ull)

static void finish_backlog(struct entities_state *state)
{
	uint64_t deadline_ns = monotonic_ns() + BACKLOG_EXIT_WAIT_NS;

	while (pump_backlog(state) && monotonic_ns() < deadline_ns)
		nanosleep(&(struct timespec){ .tv_nsec = 2000000 }, NULL);
	send_backlog(state, NULL);
}

/* Replace what /metrics shows of the entities; takes ownership of text (may be NULL). */
static void publish_text(struct entities_state *state, char *text)
{
	char *old;

	pthread_mutex_lock(&state->published_lock);
	old = state->published_text;
	state->published_text = text;
	pthread_mutex_unlock(&state->published_lock);
	free(old);
}

/* The rollup's Prometheus text is built here, on the loop, so a scrape only copies it. */
static void publish_rollup(struct entities_state *state, struct rollup *rollup, uint64_t bucket_start_ms)
{
	struct strbuf text = { 0 };
	int err;

	err = rollup_write_prometheus(rollup, &text, bucket_start_ms);
	if (err) {
		log_warn("failed to render the entities for /metrics: %s", strerror(-err));
		strbuf_free(&text);
	}
	publish_text(state, err ? NULL : text.text);
}

static void entities_bucket(struct sink *sink, const struct bucket_report *report)
{
	struct entities_state *state = sink->state;
	struct flow_meters *meters = NULL;
	struct rollup_stats stats;
	struct rollup *rollup;
	struct json_writer w;
	int err;

	if (report->count == 0 && report->http_count == 0) {
		publish_text(state, NULL); /* /metrics shows the last bucket, even an empty one */
		return;
	}
	err = sends_meters(state) ? flow_meters_new(&meters) : 0;
	err = err ?: build_rollup(state, report, meters, &rollup);
	if (err) {
		log_warn("failed to roll up bucket %llu: %s", (unsigned long long)report->bucket,
			 strerror(-err));
		flow_meters_free(meters);
		return;
	}
	if (meters)
		send_meters(state, report, meters, rollup);
	if (state->oap && oap_mode_sends_syscall_logs(state->cfg->oap.mode))
		send_syscall_logs(state, report);
	flow_meters_free(meters);
	if (state->cfg->http_listen[0])
		publish_rollup(state, rollup, bucket_start_ms(&sink->env, report->bucket));
	rollup_stats(rollup, &stats);
	add_stats(&state->totals, &stats);
	k8s_log_unresolved(state->identity_ctx.k8s);
	if (state->cfg->output == OUTPUT_JSON) {
		jw_init(&w, sink->env.out);
		err = rollup_write_json(rollup, &w, bucket_start_ms(&sink->env, report->bucket),
					(unsigned int)(sink->env.bucket_ns / 1000000000ull));
		if (err)
			log_warn("failed to write the entities: %s", strerror(-err));
		write_summary(&w, sink, report, &stats);
	} else if (state->cfg->output == OUTPUT_TABLE && !isatty(fileno(sink->env.out))) {
		/* a terminal shows the live view, which redraws over anything printed */
		char bucket_text[32];

		snprintf(bucket_text, sizeof(bucket_text), "bucket %llu",
			 (unsigned long long)report->bucket);
		rollup_write_table(rollup, sink->env.out, bucket_text);
		if (state->cfg->table_metrics)
			rollup_write_metric_list(rollup, sink->env.out, bucket_text);
	}
	rollup_free(rollup);
}

static void render_oap(struct oap_sender *oap, struct strbuf *out)
{
	struct oap_stream_stats st[OAP_STREAM_COUNT];

	for (int s = 0; s < OAP_STREAM_COUNT; s++)
		oap_sender_stats(oap, s, &st[s]);
	strbuf_printf(out, "# HELP kaccess_oap_messages_total Messages to OAP per stream: queued, written, "
			   "confirmed by a call that ended OK.\n# TYPE kaccess_oap_messages_total counter\n");
	for (int s = 0; s < OAP_STREAM_COUNT; s++)
		strbuf_printf(out,
			      "kaccess_oap_messages_total{stream=\"%s\",result=\"enqueued\"} %llu\n"
			      "kaccess_oap_messages_total{stream=\"%s\",result=\"sent\"} %llu\n"
			      "kaccess_oap_messages_total{stream=\"%s\",result=\"delivered\"} %llu\n",
			      oap_stream_name(s), (unsigned long long)st[s].enqueued, oap_stream_name(s),
			      (unsigned long long)st[s].sent, oap_stream_name(s),
			      (unsigned long long)st[s].delivered);
	strbuf_printf(out, "# HELP kaccess_oap_dropped_total Messages to OAP not delivered, by reason.\n"
			   "# TYPE kaccess_oap_dropped_total counter\n");
	for (int s = 0; s < OAP_STREAM_COUNT; s++)
		for (int r = 0; r < OAP_DROP_REASON_COUNT; r++)
			strbuf_printf(out, "kaccess_oap_dropped_total{stream=\"%s\",reason=\"%s\"} %llu\n",
				      oap_stream_name(s), oap_drop_reason_name(r),
				      (unsigned long long)st[s].dropped[r]);
	strbuf_printf(out, "# HELP kaccess_oap_queue_depth Messages waiting to be written to OAP.\n"
			   "# TYPE kaccess_oap_queue_depth gauge\n");
	for (int s = 0; s < OAP_STREAM_COUNT; s++)
		strbuf_printf(out, "kaccess_oap_queue_depth{stream=\"%s\"} %llu\n", oap_stream_name(s),
			      (unsigned long long)st[s].queue_depth);
	strbuf_printf(out, "# HELP kaccess_oap_connected 1 while a call to OAP is open and its writes succeed.\n"
			   "# TYPE kaccess_oap_connected gauge\n");
	for (int s = 0; s < OAP_STREAM_COUNT; s++)
		strbuf_printf(out, "kaccess_oap_connected{stream=\"%s\"} %d\n", oap_stream_name(s),
			      st[s].connected ? 1 : 0);
	strbuf_printf(out, "# HELP kaccess_oap_calls_total Calls to OAP that ended, by result.\n"
			   "# TYPE kaccess_oap_calls_total counter\n");
	for (int s = 0; s < OAP_STREAM_COUNT; s++)
		strbuf_printf(out,
			      "kaccess_oap_calls_total{stream=\"%s\",result=\"ok\"} %llu\n"
			      "kaccess_oap_calls_total{stream=\"%s\",result=\"failed\"} %llu\n"
			      "kaccess_oap_calls_total{stream=\"%s\",result=\"auth_failed\"} %llu\n",
			      oap_stream_name(s), (unsigned long long)st[s].calls_ok, oap_stream_name(s),
			      (unsigned long long)st[s].calls_failed, oap_stream_name(s),
			      (unsigned long long)st[s].auth_failures);
}

static void render_k8s(struct k8s *k8s, struct strbuf *out)
{
	struct k8s_stats st;

	k8s_stats_get(k8s, &st);
	strbuf_printf(out,
		      "# HELP kaccess_k8s_synced 1 once pods and services are listed and watched.\n"
		      "# TYPE kaccess_k8s_synced gauge\nkaccess_k8s_synced %d\n"
		      "# HELP kaccess_k8s_objects Pods and services held by the resolver.\n"
		      "# TYPE kaccess_k8s_objects gauge\n"
		      "kaccess_k8s_objects{kind=\"pod\"} %llu\nkaccess_k8s_objects{kind=\"service\"} %llu\n"
		      "# HELP kaccess_k8s_errors_total Failed list requests and watches that ended in error.\n"
		      "# TYPE kaccess_k8s_errors_total counter\n"
		      "kaccess_k8s_errors_total{request=\"list\"} %llu\nkaccess_k8s_errors_total{request=\"watch\"} %llu\n"
		      "# HELP kaccess_k8s_relists_total Lists after the first (410 Gone or an error).\n"
		      "# TYPE kaccess_k8s_relists_total counter\nkaccess_k8s_relists_total %llu\n"
		      "# HELP kaccess_k8s_objects_dropped_total Objects not kept: over k8s_max_pods or k8s_max_services.\n"
		      "# TYPE kaccess_k8s_objects_dropped_total counter\nkaccess_k8s_objects_dropped_total %llu\n"
		      "# HELP kaccess_k8s_unresolved_total Lookups that found no pod (local) or nothing (peer).\n"
		      "# TYPE kaccess_k8s_unresolved_total counter\n"
		      "kaccess_k8s_unresolved_total{side=\"local\"} %llu\nkaccess_k8s_unresolved_total{side=\"peer\"} %llu\n"
		      "# HELP kaccess_k8s_backoff_seconds The resolver's current retry delay; 0 when healthy.\n"
		      "# TYPE kaccess_k8s_backoff_seconds gauge\nkaccess_k8s_backoff_seconds %llu.%03llu\n",
		      st.synced ? 1 : 0, (unsigned long long)st.pods, (unsigned long long)st.services,
		      (unsigned long long)st.list_errors, (unsigned long long)st.watch_errors,
		      (unsigned long long)st.relists, (unsigned long long)st.objects_dropped,
		      (unsigned long long)st.unresolved_local, (unsigned long long)st.unresolved_peer,
		      (unsigned long long)(st.backoff_ms / 1000), (unsigned long long)(st.backoff_ms % 1000));
}

/* On the HTTP thread: the sender and the resolver copy their counters under their locks. */
static void render_entities(void *ctx, struct strbuf *out)
{
	struct entities_state *state = ctx;

	render_k8s(state->identity_ctx.k8s, out);
	if (state->oap)
		render_oap(state->oap, out);
	if (sends_access_logs(state))
		strbuf_printf(out,
			      "# HELP kaccess_oap_access_logs_skipped_total Connection events and HTTP exchanges "
			      "not sent as access logs: their local side is no known pod, or its namespace is "
			      "excluded.\n"
			      "# TYPE kaccess_oap_access_logs_skipped_total counter\n"
			      "kaccess_oap_access_logs_skipped_total{reason=\"unknown_local\"} %llu\n"
			      "kaccess_oap_access_logs_skipped_total{reason=\"excluded_local\"} %llu\n",
			      (unsigned long long)atomic_load(&state->access_logs_unknown_local),
			      (unsigned long long)atomic_load(&state->access_logs_excluded_local));
	if (state->oap && oap_mode_sends_syscall_logs(state->cfg->oap.mode))
		strbuf_printf(out,
			      "# HELP kaccess_oap_syscall_log_rows_total Rows whose reads and writes were queued "
			      "as kernel logs (compatible mode): as the queue emptied, or some at once because the "
			      "next bucket came first (OAP too slow) or the exit's wait ended.\n"
			      "# TYPE kaccess_oap_syscall_log_rows_total counter\n"
			      "kaccess_oap_syscall_log_rows_total{queued=\"paced\"} %llu\n"
			      "kaccess_oap_syscall_log_rows_total{queued=\"at_once\"} %llu\n",
			      (unsigned long long)atomic_load(&state->backlog_rows_paced),
			      (unsigned long long)atomic_load(&state->backlog_rows_at_once));
	strbuf_printf(out,
		      "# HELP kaccess_entity_flows_total Rows named and rolled up, and those dropped: OAP's rules, "
		      "local side no known pod or in an excluded namespace.\n"
		      "# TYPE kaccess_entity_flows_total counter\n"
		      "kaccess_entity_flows_total{result=\"kept\"} %llu\n"
		      "kaccess_entity_flows_total{result=\"same_service\"} %llu\n"
		      "kaccess_entity_flows_total{result=\"unknown_local\"} %llu\n"
		      "kaccess_entity_flows_total{result=\"excluded_local\"} %llu\n",
		      (unsigned long long)(state->totals.flows - state->totals.dropped_same_service -
					   state->totals.dropped_unknown_local -
					   state->totals.dropped_excluded_local),
		      (unsigned long long)state->totals.dropped_same_service,
		      (unsigned long long)state->totals.dropped_unknown_local,
		      (unsigned long long)state->totals.dropped_excluded_local);
	pthread_mutex_lock(&state->published_lock);
	if (state->published_text)
		strbuf_printf(out, "%s", state->published_text);
	pthread_mutex_unlock(&state->published_lock);
}

static void entities_close(struct sink *sink)
{
	struct entities_state *state = sink->state;

	metrics_extra_unregister(state);

	if (state && state->oap) {
		finish_backlog(state);
		oap_sender_stop(state->oap, OAP_FLUSH_TIMEOUT_MS);
		oap_sender_free(state->oap);
	}
	if (state) {
		free(state->published_text);
		pthread_mutex_destroy(&state->published_lock);
	}
	free(sink->state);
	sink->state = NULL;
}

static const struct sink_ops entities_ops = {
	.ready = entities_ready,
	.connection = entities_connection,
	.http_exchange = entities_http_exchange,
	.bucket = entities_bucket,
	.pump = entities_pump,
	.close = entities_close,
};

/* The node's name for MeterData: the OAP node name, the Kubernetes node, the host. */
static void meter_instance_name(const struct kaccess_config *cfg, char *ret, size_t len)
{
	const char *env_node = getenv("NODE_NAME");

	if (cfg->oap.node_name[0])
		snprintf(ret, len, "%s", cfg->oap.node_name);
	else if (cfg->k8s.node_name[0])
		snprintf(ret, len, "%s", cfg->k8s.node_name);
	else if (env_node && env_node[0])
		snprintf(ret, len, "%s", env_node);
	else if (gethostname(ret, len) != 0)
		snprintf(ret, len, "unknown-node");
}

/* The namespaces OAP is told to ignore: k8s_exclude_namespaces, split. */
static int excluded_namespaces(const struct kaccess_config *cfg, char *buf, size_t len,
			       const char **ret_list, size_t max)
{
	char *saveptr = NULL, *name;
	size_t n = 0;

	snprintf(buf, len, "%s", cfg->k8s.exclude_namespaces);
	for (name = strtok_r(buf, ",", &saveptr); name && n + 1 < max; name = strtok_r(NULL, ",", &saveptr))
		ret_list[n++] = name;
	ret_list[n] = NULL;
	return 0;
}

static int start_sender(struct entities_state *state, const struct kaccess_config *cfg)
{
	char names[K8S_CONFIG_LIST_LEN];
	const char *excluded[64];
	int err;

	err = oap_sender_create(&cfg->oap, &state->oap);
	if (err) {
		log_err("failed to set up the OAP sender: %s", strerror(-err));
		return err;
	}
	excluded_namespaces(cfg, names, sizeof(names), excluded, 64);
	err = oap_sender_set_node_info_from_host(state->oap, excluded);
	err = err ?: oap_sender_start(state->oap);
	if (err) {
		log_err("failed to start the OAP sender: %s", strerror(-err));
		return err;
	}
	log_info("sending %s to OAP at %s", oap_mode_name(cfg->oap.mode), cfg->oap.address);
	return 0;
}

int sink_entities_init(struct sink *sink, const struct sink_env *env, const struct kaccess_config *cfg,
		       struct k8s *k8s)
{
	struct entities_state *state = calloc(1, sizeof(*state));
	int err;

	if (!state)
		return -ENOMEM;
	*sink = (struct sink){ .ops = &entities_ops, .env = *env, .state = state };
	state->sink = sink;
	state->cfg = cfg;
	pthread_mutex_init(&state->published_lock, NULL);
	identity_source_from_k8s(&state->identity_ctx, k8s, &state->identity);
	meter_instance_name(cfg, state->meter_instance, sizeof(state->meter_instance));
	metrics_extra_register(render_entities, state);
	state->backlog_room_bytes = backlog_room_bytes(&cfg->oap);
	if (cfg->oap.address[0]) {
		err = start_sender(state, cfg);
		if (err) {
			entities_close(sink);
			return err;
		}
	}
	return 0;
}
