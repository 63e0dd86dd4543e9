// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Prometheus text exposition (format 0.0.4) on /metrics, and /healthz and
 * /readyz, served by http.c's thread.
 *
 * The last completed bucket's rows are published by the main loop (with the
 * cgroup names already resolved, so this thread never touches loop-owned
 * state) and shown as gauges whose values equal the NDJSON rows of the same
 * bucket. Loss counters, map fills and per-program bpf_stats are read from
 * the kernel at scrape time.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent.h"
#include "cgroups.h"
#include "endpoint_names.h"
#include "http.h"
#include "kaccess.skel.h"
#include "log.h"
#include "loop.h"
#include "metrics_extra.h"
#include "sink.h"

/* The loop is healthy while it has gone round within this long. */
#define HEARTBEAT_MAX_AGE_NS (10ULL * 1000000000ULL)

struct published_bucket {
	uint64_t bucket;
	size_t count;
	struct agg_row *rows;
	char **cgroups;         /* resolved path per row, "" when gone */
	size_t http_count;
	struct http_row *http_rows;
	char **http_cgroups;
	char **http_endpoints;  /* "METHOD:path", or "#<hash>" when its text never came */
};

struct prometheus {
	struct agent *agent;
	struct sink_env env;
	struct http_server *server;
	atomic_bool ready;
	pthread_mutex_t lock;   /* guards everything below */
	struct published_bucket last;
	bool have_bucket;
	uint64_t drains_total, last_drain_ns;
	char version_labels[256];
};

/* ---- label values -------------------------------------------------------- */

static void metric_header(struct strbuf *out, const char *name, const char *type, const char *help)
{
	strbuf_printf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* ---- what the kernel says now ---------------------------------------------- */

static void render_losses(struct prometheus *p, struct strbuf *out)
{
	struct loss_counters losses = { 0 };

	agent_read_losses(p->agent, &losses);
	metric_header(out, "kaccess_lost_events_total", "counter",
		      "Events lost or mis-filed, by reason (see README).");
	for (int i = 0; i < LOSS_MAX; i++)
		strbuf_printf(out, "kaccess_lost_events_total{reason=\"%s\"} %llu\n", loss_names[i],
			      (unsigned long long)losses.values[i]);
}

/*
 * Access-log records of HTTP exchanges: what the policy shipped and left
 * out. After render_losses: reading the losses copies the kernel's
 * sampled-out tally into the counts.
 */
static void render_http_records(struct prometheus *p, struct strbuf *out)
{
	const struct http_record_counts *c = &p->agent->http_records;

	metric_header(out, "kaccess_http_records_total", "counter",
		      "HTTP access-log records by fate: shipped to the sinks, filtered by http_log_policy in "
		      "the shipper, or never sent by the kernel (HTTP/1.x with http_log_policy=sampled).");
	strbuf_printf(out, "kaccess_http_records_total{fate=\"shipped\"} %llu\n",
		      (unsigned long long)__atomic_load_n(&c->shipped, __ATOMIC_RELAXED));
	strbuf_printf(out, "kaccess_http_records_total{fate=\"filtered\"} %llu\n",
		      (unsigned long long)__atomic_load_n(&c->filtered, __ATOMIC_RELAXED));
	strbuf_printf(out, "kaccess_http_records_total{fate=\"sampled_out_in_kernel\"} %llu\n",
		      (unsigned long long)__atomic_load_n(&c->sampled_out_in_kernel, __ATOMIC_RELAXED));
}

static size_t map_entries(int fd, bool is_conn_table)
{
	struct agg_rows rows = { 0 };
	struct conn_rows conns = { 0 };
	size_t count;

	if (is_conn_table) {
		conn_rows_collect(fd, &conns);
		count = conns.count;
		conn_rows_free(&conns);
		return count;
	}
	agg_rows_collect(fd, false, &rows);
	count = rows.count;
	agg_rows_free(&rows);
	return count;
}

static void render_map_fill(struct prometheus *p, struct strbuf *out)
{
	struct bpf_map *maps[] = { p->agent->skel->maps.conn_table, p->agent->skel->maps.agg_gen0,
				   p->agent->skel->maps.agg_gen1 };
	size_t entries[3];

	for (int i = 0; i < 3; i++)
		entries[i] = map_entries(bpf_map__fd(maps[i]), i == 0);
	metric_header(out, "kaccess_map_entries", "gauge", "Entries in a BPF map now.");
	for (int i = 0; i < 3; i++)
		strbuf_printf(out, "kaccess_map_entries{map=\"%s\"} %zu\n", bpf_map__name(maps[i]), entries[i]);
	metric_header(out, "kaccess_map_max_entries", "gauge", "Capacity of a BPF map (config).");
	for (int i = 0; i < 3; i++)
		strbuf_printf(out, "kaccess_map_max_entries{map=\"%s\"} %u\n", bpf_map__name(maps[i]),
			      bpf_map__max_entries(maps[i]));
	metric_header(out, "kaccess_map_fill_ratio", "gauge", "Entries over capacity of a BPF map.");
	for (int i = 0; i < 3; i++)
		strbuf_printf(out, "kaccess_map_fill_ratio{map=\"%s\"} %.6f\n", bpf_map__name(maps[i]),
			      (double)entries[i] / bpf_map__max_entries(maps[i]));
}

static bool bpf_stats_enabled(void)
{
	FILE *file = fopen("/proc/sys/kernel/bpf_stats_enabled", "re");
	int enabled = 0;

	if (file) {
		if (fscanf(file, "%d", &enabled) != 1)
			enabled = 0;
		fclose(file);
	}
	return enabled;
}

static void render_programs(struct prometheus *p, struct strbuf *out)
{
	struct bpf_program *prog;
	struct strbuf runs = { 0 }, times = { 0 };

	metric_header(out, "kaccess_bpf_stats_enabled", "gauge",
		      "1 when kernel.bpf_stats_enabled is on: program run counts and times are kept.");
	strbuf_printf(out, "kaccess_bpf_stats_enabled %d\n", bpf_stats_enabled());
	bpf_object__for_each_program(prog, p->agent->skel->obj) {
		struct bpf_prog_info info = { 0 };
		__u32 len = sizeof(info);

		if (!bpf_program__autoload(prog) ||
		    bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len))
			continue;
		strbuf_printf(&runs, "kaccess_program_runs_total{program=\"%s\",hook=\"%s\"} %llu\n",
			      bpf_program__name(prog), bpf_program__section_name(prog),
			      (unsigned long long)info.run_cnt);
		strbuf_printf(&times, "kaccess_program_run_time_seconds_total{program=\"%s\",hook=\"%s\"} %.9f\n",
			      bpf_program__name(prog), bpf_program__section_name(prog), info.run_time_ns / 1e9);
	}
	metric_header(out, "kaccess_program_runs_total", "counter",
		      "Runs of each BPF program (bpf_stats; 0 while it is off).");
	strbuf_printf(out, "%s", runs.text ? runs.text : "");
	metric_header(out, "kaccess_program_run_time_seconds_total", "counter",
		      "Time spent in each BPF program (bpf_stats; 0 while it is off).");
	strbuf_printf(out, "%s", times.text ? times.text : "");
	strbuf_free(&runs);
	strbuf_free(&times);
}

/* The process's own CPU and memory, as Prometheus client libraries name them. */
static void render_process(struct strbuf *out)
{
	unsigned long utime = 0, stime = 0;
	long rss_pages = 0, ticks = sysconf(_SC_CLK_TCK), page = sysconf(_SC_PAGESIZE);
	FILE *stat = fopen("/proc/self/stat", "re");

	if (stat) {
		/* fields 14, 15: utime, stime; 24: rss (after the "(comm)" field) */
		if (fscanf(stat, "%*d %*s %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu "
			   "%*d %*d %*d %*d %*d %*d %*u %*u %ld", &utime, &stime, &rss_pages) != 3)
			utime = stime = rss_pages = 0;
		fclose(stat);
	}
	metric_header(out, "process_cpu_seconds_total", "counter", "CPU time of the shipper process.");
	strbuf_printf(out, "process_cpu_seconds_total %.2f\n", (double)(utime + stime) / ticks);
	metric_header(out, "process_resident_memory_bytes", "gauge", "Resident memory of the shipper process.");
	strbuf_printf(out, "process_resident_memory_bytes %ld\n", rss_pages * page);
}

/* ---- what the loop published ------------------------------------------------- */

struct row_metric {
	const char *name;
	const char *help;
	size_t offset;      /* in struct kaccess_agg_value */
	bool nanoseconds;   /* shown in seconds */
	unsigned int l24;   /* enum kaccess_l24_measure it needs; 0: always measured */
};

#define ROW(field) offsetof(struct kaccess_agg_value, field)

static const struct row_metric row_metrics[] = {
	{ "kaccess_bucket_connects", "connect() attempts that ended", ROW(connect_count), false, 0 },
	{ "kaccess_bucket_connects_succeeded", "connects that established", ROW(connect_success_count), false, 0 },
	{ "kaccess_bucket_connect_time_seconds", "sum of connect durations", ROW(connect_duration_ns_sum), true, 0 },
	{ "kaccess_bucket_accepts", "accept() calls that returned a connection", ROW(accept_count), false, 0 },
	{ "kaccess_bucket_accept_time_seconds", "sum of accept durations", ROW(accept_duration_ns_sum), true, 0 },
	{ "kaccess_bucket_closes", "established connections that ended", ROW(close_count), false, 0 },
	{ "kaccess_bucket_closes_untraced", "closes without a close() syscall", ROW(close_untraced_count), false, 0 },
	{ "kaccess_bucket_close_time_seconds", "sum of traced close durations", ROW(close_duration_ns_sum), true, 0 },
	{ "kaccess_bucket_reads", "read-family syscalls that returned data", ROW(read_count), false, 0 },
	{ "kaccess_bucket_read_time_seconds", "sum of read durations", ROW(read_duration_ns_sum), true, 0 },
	{ "kaccess_bucket_read_bytes", "bytes read", ROW(read_bytes), false, 0 },
	{ "kaccess_bucket_writes", "write-family syscalls that sent data", ROW(write_count), false, 0 },
	{ "kaccess_bucket_write_time_seconds", "sum of write durations", ROW(write_duration_ns_sum), true, 0 },
	{ "kaccess_bucket_write_bytes", "bytes written", ROW(write_bytes), false, 0 },
	{ "kaccess_bucket_write_l4_time_seconds", "sum of write times from TCP's first look to the end",
	  ROW(write_l4_duration_ns_sum), true, KACCESS_L24_WRITE_L4 },
	{ "kaccess_bucket_write_packets", "packets the driver took", ROW(write_packets), false,
	  KACCESS_L24_WRITE_PACKETS },
	{ "kaccess_bucket_write_packet_bytes", "bytes of those packets, link-layer header included",
	  ROW(write_packet_bytes), false, KACCESS_L24_WRITE_PACKETS },
	{ "kaccess_bucket_write_retransmits", "TCP segments retransmitted",
	  ROW(write_retransmit_packets), false, KACCESS_L24_RETRANSMITS },
	{ "kaccess_bucket_write_resolve_macs", "neighbour resolutions a packet waited for",
	  ROW(write_resolve_mac_count), false, KACCESS_L24_RESOLVE_MAC },
	{ "kaccess_bucket_write_resolve_mac_time_seconds", "sum of those resolutions' durations",
	  ROW(write_resolve_mac_duration_ns_sum), true, KACCESS_L24_RESOLVE_MAC },
	{ "kaccess_bucket_write_l2_time_seconds", "sum of device-queue-to-driver times per packet",
	  ROW(write_l2_duration_ns_sum), true, KACCESS_L24_WRITE_L2 },
	{ "kaccess_bucket_write_l2_ready_send_time_seconds", "sum of device-queue-to-transmit-start times",
	  ROW(write_l2_ready_send_duration_ns_sum), true, KACCESS_L24_WRITE_L2 },
	{ "kaccess_bucket_write_l2_device_send_time_seconds", "sum of driver transmit times",
	  ROW(write_l2_device_send_duration_ns_sum), true, KACCESS_L24_WRITE_L2 },
	{ "kaccess_bucket_write_l2_enter_queues", "packets a qdisc queued",
	  ROW(write_l2_enter_queue_count), false, KACCESS_L24_ENTER_QUEUE },
	{ "kaccess_bucket_read_packets", "segments TCP received", ROW(read_packets), false,
	  KACCESS_L24_READ_PACKETS },
	{ "kaccess_bucket_read_packet_bytes", "bytes of those segments, link-layer header included",
	  ROW(read_packet_bytes), false, KACCESS_L24_READ_PACKETS },
	{ "kaccess_bucket_read_l4_time_seconds", "sum of TCP-to-socket-queue times per data segment",
	  ROW(read_l4_duration_ns_sum), true, KACCESS_L24_READ_L4 },
	{ "kaccess_bucket_read_l3_time_seconds", "sum of device-receive-to-socket-queue times",
	  ROW(read_l3_duration_ns_sum), true, KACCESS_L24_READ_WINDOWS },
	{ "kaccess_bucket_read_from_queue_time_seconds", "sum of socket-queue-to-reader times",
	  ROW(read_l2_from_queue_duration_ns_sum), true, KACCESS_L24_READ_WINDOWS },
	{ "kaccess_bucket_write_l3_time_seconds", "sum of IP-output-to-driver times per packet",
	  ROW(write_l3_duration_ns_sum), true, KACCESS_L24_NETFILTER },
	{ "kaccess_bucket_write_netfilter_hooks", "netfilter hooks with rules sent packets traversed",
	  ROW(write_netfilter_count), false, KACCESS_L24_NETFILTER },
	{ "kaccess_bucket_write_netfilter_time_seconds", "sum of those hooks' times",
	  ROW(write_netfilter_duration_ns_sum), true, KACCESS_L24_NETFILTER },
	{ "kaccess_bucket_read_netfilter_hooks", "netfilter hooks with rules received packets traversed",
	  ROW(read_netfilter_count), false, KACCESS_L24_NETFILTER },
	{ "kaccess_bucket_read_netfilter_time_seconds", "sum of those hooks' times",
	  ROW(read_netfilter_duration_ns_sum), true, KACCESS_L24_NETFILTER },
	{ "kaccess_bucket_write_egress_packets", "packets a write of their socket queued to a device (no netfilter links)",
	  ROW(write_egress_packets), false, KACCESS_L24_EGRESS },
	{ "kaccess_bucket_write_egress_time_seconds", "sum of write-start-to-device-queue times of those packets",
	  ROW(write_egress_duration_ns_sum), true, KACCESS_L24_EGRESS },
	{ "kaccess_bucket_write_lost_packets", "sent packets the kernel dropped (any reason)",
	  ROW(write_loss_packets), false, KACCESS_L24_LOSS },
};

static void row_labels(struct strbuf *out, const struct published_bucket *last, size_t i)
{
	const struct agg_row *row = &last->rows[i];
	char peer[64];

	format_addr(row->key.peer_addr, peer, sizeof(peer));
	strbuf_printf(out, "{cgroup=");
	strbuf_label_value(out, last->cgroups[i]);
	strbuf_printf(out, ",cgroup_id=\"%llu\",role=\"%s\",peer=\"%s\",peer_port=\"%u\"}",
		      (unsigned long long)row->key.cgroup_id, role_name(row->key.role), peer,
		      row->key.peer_port);
}

static void render_last_bucket(struct prometheus *p, struct strbuf *out)
{
	const struct published_bucket *last = &p->last;
	char help[160];

	metric_header(out, "kaccess_drains_total", "counter", "Buckets drained from the kernel.");
	strbuf_printf(out, "kaccess_drains_total %llu\n", (unsigned long long)p->drains_total);
	metric_header(out, "kaccess_drain_duration_seconds", "gauge", "How long the last drain took.");
	strbuf_printf(out, "kaccess_drain_duration_seconds %.6f\n", p->last_drain_ns / 1e9);
	if (!p->have_bucket)
		return;
	metric_header(out, "kaccess_bucket_start_timestamp_seconds", "gauge",
		      "Start of the last completed bucket, whose rows the kaccess_bucket_* series show.");
	strbuf_printf(out, "kaccess_bucket_start_timestamp_seconds %llu\n",
		      (unsigned long long)(bucket_start_ms(&p->env, last->bucket) / 1000));
	metric_header(out, "kaccess_bucket_rows", "gauge", "Rows (cgroup, peer, role) of the last completed bucket.");
	strbuf_printf(out, "kaccess_bucket_rows %zu\n", last->count);
	for (size_t m = 0; m < sizeof(row_metrics) / sizeof(row_metrics[0]); m++) {
		const struct row_metric *metric = &row_metrics[m];

		if (metric->l24 && !(p->env.l24_measured & metric->l24))
			continue; /* not measured on this kernel: no series rather than zeros */
		snprintf(help, sizeof(help), "In the last completed bucket: %s.", metric->help);
		metric_header(out, metric->name, "gauge", help);
		for (size_t i = 0; i < last->count; i++) {
			__u64 value = *(const __u64 *)((const char *)&last->rows[i].value + metric->offset);

			strbuf_printf(out, "%s", metric->name);
			row_labels(out, last, i);
			if (metric->nanoseconds)
				strbuf_printf(out, " %llu.%09llu\n", value / 1000000000ULL, value % 1000000000ULL);
			else
				strbuf_printf(out, " %llu\n", (unsigned long long)value);
		}
	}
}

/* ---- HTTP rows ---------------------------------------------------------------- */

#define HTTP_ROW(field) offsetof(struct kaccess_http_value, field)

static const struct row_metric http_metrics[] = {
	{ "kaccess_bucket_http_calls", "HTTP exchanges", HTTP_ROW(call_count), false, 0 },
	{ "kaccess_bucket_http_successes", "complete exchanges with status < 500", HTTP_ROW(success_count), false, 0 },
	{ "kaccess_bucket_http_no_responses", "requests the connection's end left unanswered", HTTP_ROW(no_response_count), false, 0 },
	{ "kaccess_bucket_http_truncated", "responses cut by the connection's end", HTTP_ROW(truncated_count), false, 0 },
	{ "kaccess_bucket_http_request_header_bytes", "request line and header bytes", HTTP_ROW(request_header_bytes), false, 0 },
	{ "kaccess_bucket_http_request_body_bytes", "request body bytes", HTTP_ROW(request_body_bytes), false, 0 },
	{ "kaccess_bucket_http_response_header_bytes", "status line and header bytes", HTTP_ROW(response_header_bytes), false, 0 },
	{ "kaccess_bucket_http_response_body_bytes", "response body bytes", HTTP_ROW(response_body_bytes), false, 0 },
};

static void http_row_labels(struct strbuf *out, const struct published_bucket *last, size_t i)
{
	const struct http_row *row = &last->http_rows[i];
	char peer[64];

	format_addr(row->key.agg.peer_addr, peer, sizeof(peer));
	strbuf_printf(out, "cgroup=");
	strbuf_label_value(out, last->http_cgroups[i]);
	strbuf_printf(out, ",cgroup_id=\"%llu\",role=\"%s\",peer=\"%s\",peer_port=\"%u\",endpoint=",
		      (unsigned long long)row->key.agg.cgroup_id, role_name(row->key.agg.role), peer,
		      row->key.agg.peer_port);
	strbuf_label_value(out, last->http_endpoints[i]);
}

static void render_http_rows(const struct published_bucket *last, struct strbuf *out)
{
	static const char *const classes[KACCESS_HTTP_CLASSES] = { "1xx", "2xx", "3xx", "4xx", "5xx" };
	char help[160];

	if (!last->http_count)
		return;
	for (size_t m = 0; m < sizeof(http_metrics) / sizeof(http_metrics[0]); m++) {
		snprintf(help, sizeof(help), "In the last completed bucket: %s.", http_metrics[m].help);
		metric_header(out, http_metrics[m].name, "gauge", help);
		for (size_t i = 0; i < last->http_count; i++) {
			strbuf_printf(out, "%s{", http_metrics[m].name);
			http_row_labels(out, last, i);
			strbuf_printf(out, "} %llu\n", (unsigned long long)*(const __u64 *)
				      ((const char *)&last->http_rows[i].value + http_metrics[m].offset));
		}
	}
	metric_header(out, "kaccess_bucket_http_responses", "gauge",
		      "In the last completed bucket: final responses by status class.");
	for (size_t i = 0; i < last->http_count; i++)
		for (int c = 0; c < KACCESS_HTTP_CLASSES; c++) {
			strbuf_printf(out, "kaccess_bucket_http_responses{");
			http_row_labels(out, last, i);
			strbuf_printf(out, ",class=\"%s\"} %llu\n", classes[c],
				      (unsigned long long)last->http_rows[i].value.status_count[c]);
		}
	/*
	 * A coarse subset of the kernel's 120 boundaries (NDJSON has them all):
	 * 120 series per row would make /metrics huge.
	 */
	static const unsigned int le_ms[] = { 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 30000 };

	metric_header(out, "kaccess_bucket_http_duration_seconds", "histogram",
		      "In the last completed bucket: first request byte to last response byte, "
		      "complete exchanges.");
	for (size_t i = 0; i < last->http_count; i++) {
		const struct kaccess_http_value *v = &last->http_rows[i].value;
		uint64_t cumulative = 0;
		unsigned int b = 0;

		for (size_t l = 0; l < sizeof(le_ms) / sizeof(le_ms[0]); l++) {
			/* every bucket that ends at or below the bound */
			while (b + 1 < KACCESS_HTTP_LATENCY_BUCKETS && kaccess_http_bucket_low_ms(b + 1) <= le_ms[l])
				cumulative += v->duration_hist[b++];
			strbuf_printf(out, "kaccess_bucket_http_duration_seconds_bucket{");
			http_row_labels(out, last, i);
			strbuf_printf(out, ",le=\"%g\"} %llu\n", le_ms[l] / 1000.0, (unsigned long long)cumulative);
		}
		while (b < KACCESS_HTTP_LATENCY_BUCKETS)
			cumulative += v->duration_hist[b++];
		strbuf_printf(out, "kaccess_bucket_http_duration_seconds_bucket{");
		http_row_labels(out, last, i);
		strbuf_printf(out, ",le=\"+Inf\"} %llu\n", (unsigned long long)cumulative);
		strbuf_printf(out, "kaccess_bucket_http_duration_seconds_sum{");
		http_row_labels(out, last, i);
		strbuf_printf(out, "} %llu.%09llu\n", (unsigned long long)(v->duration_ns_sum / 1000000000ULL),
			      (unsigned long long)(v->duration_ns_sum % 1000000000ULL));
		strbuf_printf(out, "kaccess_bucket_http_duration_seconds_count{");
		http_row_labels(out, last, i);
		strbuf_printf(out, "} %llu\n", (unsigned long long)cumulative);
	}
}

static void render_metrics(struct prometheus *p, struct strbuf *out)
{
	metric_header(out, "kaccess_build_info", "gauge",
		      "Version, kernel and the hooks chosen for each metric family.");
	strbuf_printf(out, "kaccess_build_info{%s} 1\n", p->version_labels);
	render_losses(p, out);
	render_http_records(p, out);
	render_map_fill(p, out);
	render_programs(p, out);
	render_process(out);
	metrics_extra_render(out);
	pthread_mutex_lock(&p->lock);
	render_last_bucket(p, out);
	if (p->have_bucket)
		render_http_rows(&p->last, out);
	pthread_mutex_unlock(&p->lock);
}

static bool loop_is_alive(void)
{
	uint64_t beat = atomic_load(&loop_heartbeat_ns);

	return beat && monotonic_ns() - beat < HEARTBEAT_MAX_AGE_NS;
}

/* Runs on the HTTP thread. */
static void handle_request(void *ctx, const char *path, struct http_response *response)
{
	struct prometheus *p = ctx;

	if (strcmp(path, "/metrics") == 0) {
		response->content_type = "text/plain; version=0.0.4; charset=utf-8";
		render_metrics(p, &response->body);
	} else if (strcmp(path, "/healthz") == 0) {
		response->status = loop_is_alive() ? 200 : 503;
		strbuf_printf(&response->body, response->status == 200 ? "ok\n" : "main loop stalled\n");
	} else if (strcmp(path, "/readyz") == 0) {
		response->status = atomic_load(&p->ready) ? 200 : 503;
		strbuf_printf(&response->body, response->status == 200 ? "ready\n" : "not attached\n");
	} else {
		response->status = 404;
		strbuf_printf(&response->body, "try /metrics, /healthz or /readyz\n");
	}
}

/* ---- the sink side, on the main loop ------------------------------------------ */

static void published_free(struct published_bucket *bucket)
{
	for (size_t i = 0; i < bucket->count; i++)
		free(bucket->cgroups[i]);
	for (size_t i = 0; i < bucket->http_count; i++) {
		if (bucket->http_cgroups)
			free(bucket->http_cgroups[i]);
		if (bucket->http_endpoints)
			free(bucket->http_endpoints[i]);
	}
	free(bucket->cgroups);
	free(bucket->rows);
	free(bucket->http_cgroups);
	free(bucket->http_endpoints);
	free(bucket->http_rows);
	memset(bucket, 0, sizeof(*bucket));
}

/* Copy a report with its cgroup names: the HTTP thread reads only this. */
static int published_copy(struct published_bucket *copy, const struct bucket_report *report,
			  const struct sink_env *env)
{
	struct cgroup_names *cgroups = env->cgroups;

	copy->bucket = report->bucket;
	copy->count = report->count;
	copy->rows = calloc(report->count ? report->count : 1, sizeof(*copy->rows));
	copy->cgroups = calloc(report->count ? report->count : 1, sizeof(*copy->cgroups));
	if (!copy->rows || !copy->cgroups)
		return -ENOMEM;
	for (size_t i = 0; i < report->count; i++) {
		const char *path = cgroup_names_lookup(cgroups, report->rows[i].key.cgroup_id);

		copy->rows[i] = report->rows[i];
		copy->cgroups[i] = strdup(path ? path : "");
		if (!copy->cgroups[i])
			return -ENOMEM;
	}
	copy->http_count = report->http_count;
	copy->http_rows = calloc(report->http_count ? report->http_count : 1, sizeof(*copy->http_rows));
	copy->http_cgroups = calloc(report->http_count ? report->http_count : 1, sizeof(char *));
	copy->http_endpoints = calloc(report->http_count ? report->http_count : 1, sizeof(char *));
	if (!copy->http_rows || !copy->http_cgroups || !copy->http_endpoints)
		return -ENOMEM;
	for (size_t i = 0; i < report->http_count; i++) {
		const struct http_row *row = &report->http_rows[i];
		const char *path = cgroup_names_lookup(cgroups, row->key.agg.cgroup_id);
		char endpoint[KACCESS_HTTP_ENDPOINT_MAX + 1];

		copy->http_rows[i] = *row;
		if (endpoint_names_get(env->endpoints, row->key.endpoint, endpoint, sizeof(endpoint)))
			snprintf(endpoint, sizeof(endpoint), "#%016llx", (unsigned long long)row->key.endpoint);
		copy->http_cgroups[i] = strdup(path ? path : "");
		copy->http_endpoints[i] = strdup(endpoint);
		if (!copy->http_cgroups[i] || !copy->http_endpoints[i])
			return -ENOMEM;
	}
	return 0;
}

static void prometheus_bucket(struct sink *sink, const struct bucket_report *report)
{
	struct prometheus *p = sink->state;
	struct published_bucket fresh = { 0 }, stale;

	if (report->partial)
		return; /* the last, unfinished bucket at shutdown is nobody's minute */
	if (published_copy(&fresh, report, &sink->env)) {
		log_warn("failed to publish bucket for /metrics: out of memory");
		published_free(&fresh);
		return;
	}
	pthread_mutex_lock(&p->lock);
	stale = p->last;
	p->last = fresh;
	p->have_bucket = true;
	p->drains_total++;
	p->last_drain_ns = report->drain_ns;
	pthread_mutex_unlock(&p->lock);
	published_free(&stale);
}

static void prometheus_ready(struct sink *sink, const struct agent_info *info)
{
	struct prometheus *p = sink->state;

	snprintf(p->version_labels, sizeof(p->version_labels),
		 "version=\"%s\",kernel=\"%s\",hooks=\"%s\"", KACCESS_VERSION,
		 info->kernel_release, info->hooks);
	atomic_store(&p->ready, true);
}

static void prometheus_connection(struct sink *sink, const struct kaccess_conn_event *event)
{
}

static void prometheus_close(struct sink *sink)
{
	struct prometheus *p = sink->state;

	if (!p)
		return;
	atomic_store(&p->ready, false);
	http_server_stop(p->server);
	published_free(&p->last);
	pthread_mutex_destroy(&p->lock);
	free(p);
	sink->state = NULL;
}

static const struct sink_ops prometheus_ops = {
	.ready = prometheus_ready,
	.connection = prometheus_connection,
	.bucket = prometheus_bucket,
	.close = prometheus_close,
};

int sink_prometheus_init(struct sink *sink, const struct sink_env *env, struct agent *agent,
			 const char *listen)
{
	struct prometheus *p = calloc(1, sizeof(*p));
	int err;

	if (!p)
		return -ENOMEM;
	p->agent = agent;
	p->env = *env;
	pthread_mutex_init(&p->lock, NULL);
	snprintf(p->version_labels, sizeof(p->version_labels), "version=\"%s\"", KACCESS_VERSION);
	sink->ops = &prometheus_ops;
	sink->env = *env;
	sink->is_tty = false;
	sink->state = p;
	err = http_server_start(&p->server, listen, handle_request, p);
	if (!err)
		agent_exclude_own_listener(agent, http_server_port(p->server));
	if (err) {
		sink->state = NULL;
		pthread_mutex_destroy(&p->lock);
		free(p);
	}
	return err;
}
