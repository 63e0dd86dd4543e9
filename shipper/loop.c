// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <string.h>
#include <bpf/libbpf.h>

#include "endpoint_names.h"
#include "http2/http2.h"
#include "http_records.h"
#include "kaccess.skel.h"
#include "log.h"
#include "loop.h"
#include "ring_reader.h"

#define NS_PER_MS 1000000ULL
/* The kernel wakes us only when the ring buffer is a quarter full: poll. */
#define EVENTS_POLL_MS 200
/* While a sink has work left (a backlog queued as OAP takes it), come back sooner. */
#define PUMP_POLL_MS 2
#define MAX_GRACE_NS (2000ULL * NS_PER_MS)
/* A request head whose exchange has not come by then never gets one (not HTTP after all). */
#define HEAD_WAIT_MAX_NS (600ULL * 1000 * NS_PER_MS)

volatile sig_atomic_t loop_stop_requested;
volatile sig_atomic_t loop_reload_requested;
_Atomic uint64_t loop_heartbeat_ns;

struct loop {
	struct agent *agent;
	struct sink *const *sinks;
	size_t sink_count;
	struct ring_reader events;      /* the kernel's records, read in order */
	struct h2_exchanges *h2;       /* HTTP/2 exchanges completed here, drained with the rows */
	struct http_records *records;  /* access-log records of HTTP exchanges, to the sinks */
	struct agg_rows rows;
	struct http_rows http_rows;
	struct conn_rows conns;
	struct loss_counters losses;
	int agg_fd[2];
	int http_fd[2];
	int conn_fd;
	int counters_fd;
	uint64_t grace_ns;
	size_t behind_bytes;            /* above this, access-log records are shed */
};

/* An endpoint's text, learned once: kept for naming HTTP rows. */
static void on_endpoint_event(struct loop *loop, const void *data, size_t size)
{
	const struct kaccess_http_endpoint_event *event = data;
	int err;

	if (size < sizeof(*event) || event->len > size - sizeof(*event))
		return;
	err = endpoint_names_add(loop->agent->endpoints, event->endpoint, event->text, event->len);
	if (err)
		log_warn("failed to keep an HTTP endpoint name: %s", strerror(-err));
}

/* The wall-clock bucket of a CLOCK_MONOTONIC time, as the kernel computes it. */
static uint64_t bucket_of(const struct loop *loop, uint64_t mono_ns)
{
	return (mono_ns + loop->agent->skel->bss->wall_offset_ns) / loop->agent->bucket_ns;
}

/*
 * Behind: more than half the ring buffer waits. Records the shipper would
 * make from what it reads now are shed until it catches up, because making
 * them (several µs each with NDJSON) is what keeps it behind, and a full
 * ring buffer loses what cannot be rebuilt: an HTTP/2 header block lost
 * leaves its connection's later exchanges undecoded.
 */
static void note_backlog(struct loop *loop)
{
	http_records_set_behind(loop->records, ring_reader_fill_bytes(&loop->events) > loop->behind_bytes);
}

static void on_event(void *ctx, const void *data, size_t size)
{
	struct loop *loop = ctx;
	const struct kaccess_conn_event *event = data;
	__u32 type = size >= sizeof(__u32) ? *(const __u32 *)data : 0;

	if (type == KACCESS_EVENT_H2_BATCH || type == KACCESS_EVENT_H2_STREAM_END ||
	    type == KACCESS_EVENT_HTTP_EXCHANGE)
		note_backlog(loop);
	switch (type) {
	case KACCESS_EVENT_HTTP_ENDPOINT:
		on_endpoint_event(loop, data, size);
		return;
	case KACCESS_EVENT_H2_HEADERS:
		h2_exchanges_on_headers(loop->h2, data, size);
		return;
	case KACCESS_EVENT_H2_STREAM_END:
		h2_exchanges_on_stream_end(loop->h2, data, size);
		return;
	case KACCESS_EVENT_H2_BATCH:
		h2_exchanges_on_batch(loop->h2, data, size);
		return;
	case KACCESS_EVENT_HTTP_REQUEST_HEAD:
		http_records_on_head(loop->records, data, size);
		return;
	case KACCESS_EVENT_HTTP_EXCHANGE:
		http_records_on_exchange(loop->records, data, size);
		return;
	}
	if (size < sizeof(struct kaccess_conn_event))
		return;
	/* every HTTP/2 record of the connection came before its close */
	if (type == KACCESS_EVENT_CONN_CLOSE)
		h2_exchanges_on_conn_close(loop->h2, event, bucket_of(loop, event->ts_ns));
	for (size_t i = 0; i < loop->sink_count; i++)
		loop->sinks[i]->ops->connection(loop->sinks[i], data);
}

static void report_bucket(struct loop *loop, const struct bucket_report *report)
{
	for (size_t i = 0; i < loop->sink_count; i++)
		loop->sinks[i]->ops->bucket(loop->sinks[i], report);
}

static void read_losses(struct loop *loop)
{
	int err = agent_read_losses(loop->agent, &loop->losses);

	if (err)
		log_warn("failed to read loss counters: %s", strerror(-err));
}

/*
 * Report TCP and HTTP rows (each sorted by bucket) as one report per bucket
 * that either has rows in.
 */
static void report_buckets(struct loop *loop, uint64_t current_bucket, bool at_shutdown,
			   uint64_t drain_ns)
{
	const struct agg_rows *rows = &loop->rows;
	const struct http_rows *http = &loop->http_rows;
	size_t first = 0, http_first = 0;

	agg_rows_sort(&loop->rows);
	http_rows_sort(&loop->http_rows);
	http_rows_merge_sorted(&loop->http_rows);
	read_losses(loop);
	while (first < rows->count || http_first < http->count) {
		uint64_t bucket = UINT64_MAX;
		size_t end = first, http_end = http_first;
		struct bucket_report report;

		if (first < rows->count)
			bucket = rows->rows[first].value.bucket;
		if (http_first < http->count && http->rows[http_first].value.bucket < bucket)
			bucket = http->rows[http_first].value.bucket;
		while (end < rows->count && rows->rows[end].value.bucket == bucket)
			end++;
		while (http_end < http->count && http->rows[http_end].value.bucket == bucket)
			http_end++;
		report = (struct bucket_report){
			.bucket = bucket,
			.drain_ns = drain_ns,
			.partial = at_shutdown && bucket >= current_bucket,
			.rows = &rows->rows[first],
			.count = end - first,
			.http_rows = &http->rows[http_first],
			.http_count = http_end - http_first,
			.losses = &loop->losses,
		};
		report_bucket(loop, &report);
		first = end;
		http_first = http_end;
	}
}

/* The sums the CPUs still hold, into their rows (see agent_flush_combined). */
static void flush_cpu_sums(struct loop *loop)
{
	int err = agent_flush_combined(loop->agent);

	if (err)
		log_warn("failed to flush the per-CPU sums: %s", strerror(-err));
}

/* Drain generation `gen`, with the HTTP/2 exchanges of buckets up to `last_bucket`. */
static void collect_generation(struct loop *loop, int gen, uint64_t last_bucket)
{
	int err = agg_rows_collect(loop->agg_fd[gen], true, &loop->rows);

	if (err)
		log_warn("failed to drain generation %d: %s", gen, strerror(-err));
	err = http_rows_collect(loop->http_fd[gen], true, &loop->http_rows);
	if (err)
		log_warn("failed to drain HTTP generation %d: %s", gen, strerror(-err));
	err = h2_exchanges_take_rows(loop->h2, last_bucket, &loop->http_rows);
	if (err)
		log_warn("failed to collect HTTP/2 exchanges: %s", strerror(-err));
}

/*
 * Drain the generation that is not being written: the one of the bucket
 * before the current. Rows carry their own bucket, so a drain that ran late
 * still files every row under the right bucket.
 */
static void drain_idle_generation(struct loop *loop, uint64_t now_bucket)
{
	struct bucket_report empty = { .bucket = now_bucket - 1, .losses = &loop->losses };
	uint64_t started = monotonic_ns();

	agg_rows_clear(&loop->rows);
	loop->http_rows.count = 0;
	flush_cpu_sums(loop);
	collect_generation(loop, (now_bucket - 1) & 1, now_bucket - 1);
	if (loop->rows.count || loop->http_rows.count) {
		report_buckets(loop, now_bucket, false, monotonic_ns() - started);
		return;
	}
	read_losses(loop); /* an empty bucket is still reported, with its counters */
	empty.drain_ns = monotonic_ns() - started;
	report_bucket(loop, &empty);
}

/* At shutdown, after detaching: both generations, partial bucket included. */
static void drain_everything(struct loop *loop, uint64_t now_bucket)
{
	agg_rows_clear(&loop->rows);
	loop->http_rows.count = 0;
	flush_cpu_sums(loop);
	for (int gen = 0; gen < 2; gen++)
		collect_generation(loop, gen, UINT64_MAX);
	report_buckets(loop, now_bucket, true, 0);
}

static void show_live(struct loop *loop, uint64_t now_bucket)
{
	struct agg_rows current = { 0 };
	struct http_rows http = { 0 };
	struct live_report report;
	size_t kept = 0;

	loop->conns.count = 0;
	conn_rows_collect(loop->conn_fd, &loop->conns);
	flush_cpu_sums(loop);
	agg_rows_collect(loop->agg_fd[now_bucket & 1], false, &current);
	for (size_t i = 0; i < current.count; i++)
		if (current.rows[i].value.bucket == now_bucket)
			current.rows[kept++] = current.rows[i];
	current.count = kept;
	agg_rows_sort(&current);
	http_rows_collect(loop->http_fd[now_bucket & 1], false, &http);
	kept = 0;
	for (size_t i = 0; i < http.count; i++)
		if (http.rows[i].value.bucket == now_bucket)
			http.rows[kept++] = http.rows[i];
	http.count = kept;
	if (h2_exchanges_copy_rows(loop->h2, now_bucket, &http))
		log_warn("failed to show HTTP/2 exchanges: %s", strerror(ENOMEM));
	http_rows_sort(&http);
	http_rows_merge_sorted(&http);
	read_losses(loop);
	report = (struct live_report){
		.bucket = now_bucket,
		.rows = current.rows,
		.count = current.count,
		.conns = loop->conns.rows,
		.conn_count = loop->conns.count,
		.http_rows = http.rows,
		.http_count = http.count,
		.losses = &loop->losses,
	};
	for (size_t i = 0; i < loop->sink_count; i++)
		if (loop->sinks[i]->ops->live)
			loop->sinks[i]->ops->live(loop->sinks[i], &report);
	agg_rows_free(&current);
	http_rows_free(&http);
}

/* Each sink's work left over; true while any has some. */
static bool pump_sinks(struct loop *loop)
{
	bool more = false;

	for (size_t i = 0; i < loop->sink_count; i++)
		if (loop->sinks[i]->ops->pump && loop->sinks[i]->ops->pump(loop->sinks[i]))
			more = true;
	return more;
}

/* A record the policy ships: to every sink that takes records. */
static void ship_record(void *ctx, const struct http_record *record)
{
	struct loop *loop = ctx;

	for (size_t i = 0; i < loop->sink_count; i++)
		if (loop->sinks[i]->ops->http_exchange)
			loop->sinks[i]->ops->http_exchange(loop->sinks[i], record);
}

static int loop_init(struct loop *loop, struct agent *agent, const struct kaccess_config *cfg,
		     struct sink *const *sinks, size_t sink_count)
{
	uint64_t tenth = agent->bucket_ns / 10;
	struct h2_exchanges_config h2_cfg;
	struct http_records_config records_cfg = {
		.names = agent->endpoints,
		.policy = cfg->http_log_policy,
		.slow_ms = cfg->http_log_slow_ms,
		.sample_rate = cfg->http_log_sample_rate,
		.keep_query = cfg->http_keep_query,
		.counts = &agent->http_records,
		.ship = ship_record,
		.ship_ctx = loop,
	};
	int err;

	memset(loop, 0, sizeof(*loop));
	loop->agent = agent;
	loop->sinks = sinks;
	loop->sink_count = sink_count;
	loop->agg_fd[0] = bpf_map__fd(agent->skel->maps.agg_gen0);
	loop->agg_fd[1] = bpf_map__fd(agent->skel->maps.agg_gen1);
	loop->http_fd[0] = bpf_map__fd(agent->skel->maps.http_gen0);
	loop->http_fd[1] = bpf_map__fd(agent->skel->maps.http_gen1);
	loop->conn_fd = bpf_map__fd(agent->skel->maps.conn_table);
	loop->counters_fd = bpf_map__fd(agent->skel->maps.counters);
	/* Writers that read the clock just before a boundary finish within
	 * microseconds; the grace only has to outlast them. */
	loop->grace_ns = tenth < MAX_GRACE_NS ? tenth : MAX_GRACE_NS;
	h2_cfg = (struct h2_exchanges_config){
		.names = agent->endpoints,
		.streams_map_fd = bpf_map__fd(agent->skel->maps.h2_streams),
		.keep_query = agent->http_keep_query,
		.undecoded = &agent->h2_undecoded,
	};
	err = http_records_new(&loop->records, &records_cfg);
	if (err) {
		log_err("failed to set up HTTP access-log records: %s", strerror(-err));
		return err;
	}
	h2_cfg.records = cfg->http_log_policy != HTTP_LOG_NONE ? loop->records : NULL;
	err = h2_exchanges_new(&loop->h2, &h2_cfg);
	if (err) {
		log_err("failed to set up HTTP/2 decoding: %s", strerror(-err));
		return err;
	}
	err = ring_reader_open(&loop->events, bpf_map__fd(agent->skel->maps.events), on_event, loop);
	if (err) {
		log_err("failed to map the ring buffer: %s", strerror(-err));
		return err;
	}
	loop->behind_bytes = bpf_map__max_entries(agent->skel->maps.events) / 2;
	return 0;
}

static void loop_free(struct loop *loop)
{
	ring_reader_close(&loop->events);
	h2_exchanges_free(loop->h2);
	http_records_free(loop->records);
	agg_rows_free(&loop->rows);
	http_rows_free(&loop->http_rows);
	conn_rows_free(&loop->conns);
}

static int timeout_ms(uint64_t now_ns, uint64_t deadline_ns)
{
	if (deadline_ns <= now_ns)
		return 0;
	return (int)((deadline_ns - now_ns + NS_PER_MS - 1) / NS_PER_MS);
}

static int min_int(int a, int b)
{
	return a < b ? a : b;
}

static uint64_t min_u64(uint64_t a, uint64_t b)
{
	return a < b ? a : b;
}

static bool any_live_sink(struct sink *const *sinks, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (sinks[i]->ops->live)
			return true;
	return false;
}

/*
 * A run with nothing to report prints no bucket line, and with it no loss
 * counters: say in the log what was lost over the whole run, so a reader
 * of an empty output can tell "nothing happened" from "the kernel skipped
 * our programs" (program_recursion_misses) or a full map. The final
 * drain has just read them.
 */
static void log_losses_at_exit(const struct loop *loop)
{
	char text[1024];
	size_t used = 0;

	for (int i = 0; i < LOSS_MAX && used < sizeof(text); i++)
		if (loop->losses.values[i])
			used += snprintf(text + used, sizeof(text) - used, " %s=%llu", loss_names[i],
					 (unsigned long long)loop->losses.values[i]);
	if (used)
		log_warn("lost over the whole run:%s", text);
}

/* New pods' network namespaces get their netfilter links within this. */
#define NETNS_SCAN_INTERVAL_NS (2 * 1000000000ULL)

int loop_run(struct agent *agent, struct kaccess_config *cfg, struct sink *const *sinks,
	     size_t sink_count, int (*reload)(struct kaccess_config *cfg))
{
	uint64_t bucket_ns = agent->bucket_ns;
	uint64_t now = realtime_ns(), next_drain, next_refresh = now, stop_at = UINT64_MAX;
	uint64_t next_sweep = now + cfg->sweep_interval_s * 1000000000ULL;
	uint64_t next_netns_scan = now + NETNS_SCAN_INTERVAL_NS;
	bool pumping = false;
	struct loop loop;
	int err;

	err = loop_init(&loop, agent, cfg, sinks, sink_count);
	if (err)
		goto out;
	atomic_store(&loop_heartbeat_ns, monotonic_ns());
	next_drain = (now / bucket_ns + 1) * bucket_ns + loop.grace_ns;
	if (cfg->duration_s)
		stop_at = now + cfg->duration_s * 1000000000ULL;
	if (!any_live_sink(sinks, sink_count))
		next_refresh = UINT64_MAX;

	while (!loop_stop_requested && now < stop_at) {
		uint64_t deadline = min_u64(min_u64(next_drain, next_refresh), stop_at);

		fflush(NULL); /* the lines of the last pass (and agent_ready), to their readers at once */
		err = ring_reader_wait(&loop.events, min_int(timeout_ms(now, deadline),
							     pumping ? PUMP_POLL_MS : EVENTS_POLL_MS));
		if (err >= 0) /* most records come without a wakeup */
			err = ring_reader_consume(&loop.events);
		if (err < 0 && err != -EINTR) {
			log_err("failed to read connection events: %s", strerror(-err));
			goto out;
		}
		now = realtime_ns();
		atomic_store(&loop_heartbeat_ns, monotonic_ns());
		if (loop_reload_requested) {
			loop_reload_requested = 0;
			if (reload)
				reload(cfg);
		}
		if (now >= next_drain) {
			agent_update_wall_offset(agent);
			drain_idle_generation(&loop, now / bucket_ns);
			if (monotonic_ns() > HEAD_WAIT_MAX_NS) /* not within the first minutes of boot */
				http_records_expire(loop.records, monotonic_ns() - HEAD_WAIT_MAX_NS);
			next_drain = (now / bucket_ns + 1) * bucket_ns + loop.grace_ns;
		}
		if (cfg->sweep_interval_s && now >= next_sweep) {
			agent_sweep_stale(agent);
			next_sweep = now + cfg->sweep_interval_s * 1000000000ULL;
		}
		if (now >= next_netns_scan) {
			agent_scan_netns(agent);
			next_netns_scan = now + NETNS_SCAN_INTERVAL_NS;
		}
		if (now >= next_refresh) {
			show_live(&loop, now / bucket_ns);
			next_refresh = now + cfg->refresh_ms * NS_PER_MS;
		}
		pumping = pump_sinks(&loop);
	}
	err = 0;
	/* Stop the writers first, so the last numbers are final. */
	agent_detach(agent);
	ring_reader_consume(&loop.events);
	drain_everything(&loop, realtime_ns() / bucket_ns);
	fflush(NULL);
	log_losses_at_exit(&loop);
out:
	loop_free(&loop);
	return err;
}
