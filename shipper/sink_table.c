// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Output for people: a live table of connections and of the current
 * bucket's transfer metrics, redrawn in place on a terminal. When stdout is
 * not a terminal, only each completed bucket is printed.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cgroups.h"
#include "endpoint_names.h"
#include "sink.h"

#define TABLE_MAX_CONNS 15
#define TABLE_MAX_ROWS 30
#define CGROUP_COLUMN 32

static void format_bytes(uint64_t bytes, char *buf, size_t len)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	double value = bytes;
	int unit = 0;

	while (value >= 1024 && unit < 4) {
		value /= 1024;
		unit++;
	}
	snprintf(buf, len, unit ? "%.1f%s" : "%.0f%s", value, units[unit]);
}

/* Mean duration in microseconds, or "-" without samples. */
static void format_avg_us(uint64_t sum_ns, uint64_t count, char *buf, size_t len)
{
	if (!count)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f", (double)sum_ns / count / 1000.0);
}

/* The tail of a long cgroup path is the part that tells pods apart. */
static void format_cgroup(struct sink *sink, uint64_t cgroup_id, char *buf, size_t len)
{
	const char *path = cgroup_names_lookup(sink->env.cgroups, cgroup_id);
	size_t path_len;

	if (!path) {
		snprintf(buf, len, "#%llu", (unsigned long long)cgroup_id);
		return;
	}
	path_len = strlen(path);
	if (path_len < len)
		snprintf(buf, len, "%s", path);
	else
		snprintf(buf, len, "...%s", path + path_len - (len - 4));
}

static void format_time(uint64_t ms, char *buf, size_t len)
{
	time_t seconds = ms / 1000;
	struct tm tm;

	localtime_r(&seconds, &tm);
	strftime(buf, len, "%H:%M:%S", &tm);
}

static void print_losses(FILE *out, const struct loss_counters *losses)
{
	uint64_t total = 0;

	for (int i = 0; i < LOSS_MAX; i++)
		total += losses->values[i];
	if (!total) {
		fprintf(out, "lost: none\n");
		return;
	}
	fprintf(out, "lost:");
	for (int i = 0; i < LOSS_MAX; i++)
		if (losses->values[i])
			fprintf(out, " %s=%llu", loss_names[i], (unsigned long long)losses->values[i]);
	fputc('\n', out);
}

static void print_rows(struct sink *sink, const struct agg_row *rows, size_t count)
{
	FILE *out = sink->env.out;
	char cgroup[CGROUP_COLUMN + 1], peer[64], connect_avg[16], read_avg[16], write_avg[16];
	char read_bytes[16], write_bytes[16];

	fprintf(out, "%-*s %-6s %-26s %9s %9s %6s %6s %8s %9s %9s %8s %9s %9s\n", CGROUP_COLUMN,
		"CGROUP", "ROLE", "PEER", "CONN(OK)", "CONN_US", "ACCEPT", "CLOSE", "READS",
		"READ", "READ_US", "WRITES", "WRITE", "WRITE_US");
	for (size_t i = 0; i < count && i < TABLE_MAX_ROWS; i++) {
		const struct agg_row *row = &rows[i];
		const struct kaccess_agg_value *v = &row->value;
		char peer_addr[48], conn[24];

		format_cgroup(sink, row->key.cgroup_id, cgroup, sizeof(cgroup));
		format_addr(row->key.peer_addr, peer_addr, sizeof(peer_addr));
		if (row->key.peer_port)
			snprintf(peer, sizeof(peer), "%s:%u", peer_addr, row->key.peer_port);
		else
			snprintf(peer, sizeof(peer), "%s", peer_addr);
		snprintf(conn, sizeof(conn), "%llu(%llu)", v->connect_count,
			 v->connect_success_count);
		format_avg_us(v->connect_duration_ns_sum, v->connect_count, connect_avg, sizeof(connect_avg));
		format_avg_us(v->read_duration_ns_sum, v->read_count, read_avg, sizeof(read_avg));
		format_avg_us(v->write_duration_ns_sum, v->write_count, write_avg, sizeof(write_avg));
		format_bytes(v->read_bytes, read_bytes, sizeof(read_bytes));
		format_bytes(v->write_bytes, write_bytes, sizeof(write_bytes));
		fprintf(out, "%-*s %-6s %-26s %9s %9s %6llu %6llu %8llu"
			" %9s %9s %8llu %9s %9s\n",
			CGROUP_COLUMN, cgroup, role_name(row->key.role), peer, conn, connect_avg,
			v->accept_count, v->close_count, v->read_count, read_bytes, read_avg,
			v->write_count, write_bytes, write_avg);
	}
	if (count > TABLE_MAX_ROWS)
		fprintf(out, "... %zu more rows (use --output json for all)\n", count - TABLE_MAX_ROWS);
}

/* Milliseconds, mean of `count` samples, or "-". */
static void format_avg_ms(uint64_t sum_ns, uint64_t count, char *buf, size_t len)
{
	if (!count)
		snprintf(buf, len, "-");
	else
		snprintf(buf, len, "%.1f", (double)sum_ns / count / 1e6);
}

static void print_http_rows(struct sink *sink, const struct http_row *rows, size_t count)
{
	FILE *out = sink->env.out;
	char cgroup[CGROUP_COLUMN + 1], peer[48], endpoint[KACCESS_HTTP_ENDPOINT_MAX + 1];
	char avg[16], req[16], resp[16], name[40];

	if (!count)
		return;
	fprintf(out, "\n%-*s %-6s %-15s %-32s %6s %5s %5s %5s %5s %5s %5s %8s %9s %9s\n",
		CGROUP_COLUMN, "CGROUP", "ROLE", "PEER", "ENDPOINT", "CALLS", "1XX", "2XX", "3XX",
		"4XX", "5XX", "NORESP", "AVG_MS", "REQ", "RESP");
	for (size_t i = 0; i < count && i < TABLE_MAX_ROWS; i++) {
		const struct http_row *row = &rows[i];
		const struct kaccess_http_value *v = &row->value;
		uint64_t timed = v->call_count - v->no_response_count - v->truncated_count;

		format_cgroup(sink, row->key.agg.cgroup_id, cgroup, sizeof(cgroup));
		format_addr(row->key.agg.peer_addr, peer, sizeof(peer));
		if (http_endpoint_text(&sink->env, row->key.endpoint, endpoint, sizeof(endpoint)))
			snprintf(name, sizeof(name), "%.32s", endpoint);
		else
			snprintf(name, sizeof(name), "#%016llx", (unsigned long long)row->key.endpoint);
		format_avg_ms(v->duration_ns_sum, timed, avg, sizeof(avg));
		format_bytes(v->request_header_bytes + v->request_body_bytes, req, sizeof(req));
		format_bytes(v->response_header_bytes + v->response_body_bytes, resp, sizeof(resp));
		fprintf(out, "%-*s %-6s %-15s %-32s %6llu %5llu %5llu %5llu %5llu %5llu %5llu %8s %9s %9s\n",
			CGROUP_COLUMN, cgroup, role_name(row->key.agg.role), peer, name,
			(unsigned long long)v->call_count, (unsigned long long)v->status_count[0],
			(unsigned long long)v->status_count[1], (unsigned long long)v->status_count[2],
			(unsigned long long)v->status_count[3], (unsigned long long)v->status_count[4],
			(unsigned long long)(v->no_response_count + v->truncated_count), avg, req, resp);
	}
	if (count > TABLE_MAX_ROWS)
		fprintf(out, "... %zu more HTTP rows (use --output json for all)\n", count - TABLE_MAX_ROWS);
}

static void print_conns(struct sink *sink, const struct conn_row *conns, size_t count)
{
	FILE *out = sink->env.out;
	char cgroup[CGROUP_COLUMN + 1], local[64], remote[64], addr[48];
	size_t shown = 0;

	fprintf(out, "%-6s %-8s %-15s %-26s %-26s %s\n", "ROLE", "PID", "COMM", "LOCAL", "REMOTE",
		"CGROUP");
	for (size_t i = 0; i < count && shown < TABLE_MAX_CONNS; i++) {
		const struct kaccess_conn *conn = &conns[i].conn;

		if (conn->state != KACCESS_CONN_ESTABLISHED)
			continue;
		format_addr(conn->local_addr, addr, sizeof(addr));
		snprintf(local, sizeof(local), "%s:%u", addr, conn->local_port);
		format_addr(conn->remote_addr, addr, sizeof(addr));
		snprintf(remote, sizeof(remote), "%s:%u", addr, conn->remote_port);
		format_cgroup(sink, conn->agg.cgroup_id, cgroup, sizeof(cgroup));
		fprintf(out, "%-6s %-8u %-15.15s %-26s %-26s %s\n", role_name(conn->agg.role), conn->pid,
			conn->comm, local, remote, cgroup);
		shown++;
	}
	if (count > shown)
		fprintf(out, "... %zu more\n", count - shown);
}

static void table_ready(struct sink *sink, const struct agent_info *info)
{
	if (sink->is_tty)
		return; /* the first live frame follows within one refresh */
	fprintf(sink->env.out, "kaccess %s on %s: %u programs attached, watching %s; "
		"a table follows every %llu s\n", KACCESS_VERSION, info->kernel_release,
		info->programs_attached, info->watched_cgroup[0] ? info->watched_cgroup : "all processes",
		(unsigned long long)(sink->env.bucket_ns / 1000000000ULL));
	fflush(sink->env.out);
}

static void table_live(struct sink *sink, const struct live_report *report)
{
	FILE *out = sink->env.out;
	char started[16];

	format_time(bucket_start_ms(&sink->env, report->bucket), started, sizeof(started));
	fputs("\033[H\033[2J", out);
	fprintf(out, "kaccess %s  bucket %s +%llus (in progress)  connections: %zu  ",
		KACCESS_VERSION, started, (unsigned long long)(sink->env.bucket_ns / 1000000000ULL), report->conn_count);
	print_losses(out, report->losses);
	fputc('\n', out);
	print_conns(sink, report->conns, report->conn_count);
	fputc('\n', out);
	print_rows(sink, report->rows, report->count);
	print_http_rows(sink, report->http_rows, report->http_count);
	fflush(out);
}

static void table_bucket(struct sink *sink, const struct bucket_report *report)
{
	FILE *out = sink->env.out;
	char started[16];

	if (sink->is_tty && !report->partial)
		return; /* the live view already showed it */
	format_time(bucket_start_ms(&sink->env, report->bucket), started, sizeof(started));
	fprintf(out, "\nbucket %s +%llus%s: %zu rows  ", started,
		(unsigned long long)(sink->env.bucket_ns / 1000000000ULL), report->partial ? " (partial)" : "", report->count);
	print_losses(out, report->losses);
	print_rows(sink, report->rows, report->count);
	print_http_rows(sink, report->http_rows, report->http_count);
	fflush(out);
}

static void table_connection(struct sink *sink, const struct kaccess_conn_event *event)
{
	/* The live view reads conn_table itself. */
}

static const struct sink_ops table_ops = {
	.ready = table_ready,
	.connection = table_connection,
	.bucket = table_bucket,
	.live = table_live,
};

/* Off a terminal there is nothing to redraw: no live snapshots at all. */
static const struct sink_ops table_plain_ops = {
	.ready = table_ready,
	.connection = table_connection,
	.bucket = table_bucket,
};

void sink_table_init(struct sink *sink, const struct sink_env *env)
{
	sink->env = *env;
	sink->is_tty = isatty(fileno(env->out));
	sink->ops = sink->is_tty ? &table_ops : &table_plain_ops;
}
