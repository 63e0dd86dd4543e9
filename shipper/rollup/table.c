// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The entities as tables for people: one per scope, a few columns each.
 * A column names the OAP metric it shows without its scope prefix.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "rollup/rows.h"

struct column {
	const char *title;
	const char *metric_suffix; /* after "kubernetes_service_" + the scope's part */
};

static const struct column service_columns[] = {
	{ "CONN/min", "connect_cpm" }, { "ACPT/min", "accept_cpm" }, { "READ/min", "read_cpm" },
	{ "WRITE/min", "write_cpm" },  { "HTTP/min", "http_call_cpm" }, { "HTTP ms", "http_call_time" },
	{ "OK%", "http_call_successful_rate" },
};

static const struct column endpoint_columns[] = {
	{ "CALLS/min", "call_cpm" }, { "ms", "call_time" }, { "OK%", "call_successful_rate" },
	{ "4xx/min", "http_status_4xx_cpm" }, { "5xx/min", "http_status_5xx_cpm" },
};

static const struct column relation_columns[] = {
	{ "CONN/min", "connect_cpm" }, { "ACPT/min", "accept_cpm" },
	{ "C-WRITE/min", "client_write_cpm" }, { "S-READ/min", "server_read_cpm" },
	{ "HTTP/min", "server_http_call_cpm" }, { "HTTP ms", "server_http_call_time" },
};

struct scope_table {
	enum rollup_scope scope;
	const char *prefix; /* OAP's metric name prefix for the scope */
	const char *title;
	const struct column *columns;
	size_t column_count;
};

static const struct scope_table tables[] = {
	{ ROLLUP_SERVICE, "kubernetes_service_", "SERVICE", service_columns, 7 },
	{ ROLLUP_INSTANCE, "kubernetes_service_instance_", "INSTANCE", service_columns, 7 },
	{ ROLLUP_ENDPOINT, "kubernetes_service_endpoint_", "ENDPOINT", endpoint_columns, 5 },
	{ ROLLUP_SERVICE_RELATION, "kubernetes_service_relation_", "SERVICE RELATION", relation_columns, 6 },
	{ ROLLUP_INSTANCE_RELATION, "kubernetes_service_instance_relation_", "INSTANCE RELATION",
	  relation_columns, 6 },
};

#define MAX_COLUMNS 8

struct table_emit {
	FILE *out;
	const struct scope_table *table;
	struct rollup_entity_view current;
	bool open;
	int64_t values[MAX_COLUMNS]; /* -1: not emitted */
	unsigned int rows;
};

static void entity_name(const struct rollup_entity_view *e, char *ret, size_t len)
{
	switch (e->scope) {
	case ROLLUP_SERVICE:
		snprintf(ret, len, "%s", e->service);
		break;
	case ROLLUP_INSTANCE:
		snprintf(ret, len, "%s/%s", e->service, e->instance);
		break;
	case ROLLUP_ENDPOINT:
		snprintf(ret, len, "%s %s", e->service, e->endpoint);
		break;
	case ROLLUP_SERVICE_RELATION:
		snprintf(ret, len, "%s -> %s", e->source_service, e->dest_service);
		break;
	default:
		snprintf(ret, len, "%s/%s -> %s/%s", e->source_service, e->source_instance,
			 e->dest_service, e->dest_instance);
	}
}

static int column_width(const struct column *column)
{
	int title = (int)strlen(column->title);

	return title > 9 ? title : 9;
}

/* Rates are in OAP's 1/10000: shown as percent. */
static void print_value(FILE *out, const struct column *column, int64_t value)
{
	if (value < 0)
		fprintf(out, " %*s", column_width(column), "-");
	else if (strstr(column->metric_suffix, "successful_rate"))
		fprintf(out, " %*.2f", column_width(column), (double)value / 100);
	else
		fprintf(out, " %*lld", column_width(column), (long long)value);
}

static void row_end(struct table_emit *te)
{
	char name[512];

	if (!te->open)
		return;
	entity_name(&te->current, name, sizeof(name));
	fprintf(te->out, "  %-60s", name);
	for (size_t c = 0; c < te->table->column_count; c++)
		print_value(te->out, &te->table->columns[c], te->values[c]);
	fputc('\n', te->out);
	te->open = false;
	te->rows++;
}

static void header(FILE *out, const struct scope_table *table)
{
	fprintf(out, "  %-60s", table->title);
	for (size_t c = 0; c < table->column_count; c++)
		fprintf(out, " %*s", column_width(&table->columns[c]), table->columns[c].title);
	fputc('\n', out);
}

static void emit_table(void *ctx, const struct rollup_entity_view *entity,
		       const struct metric_plan *metric, const int64_t *values, unsigned int count)
{
	struct table_emit *te = ctx;
	const char *suffix;

	if (entity->scope != te->table->scope || count != 1)
		return;
	if (te->open && !rollup_entity_view_same(&te->current, entity))
		row_end(te);
	if (!te->open) {
		if (te->rows == 0)
			header(te->out, te->table);
		te->current = *entity;
		te->open = true;
		for (int c = 0; c < MAX_COLUMNS; c++)
			te->values[c] = -1;
	}
	if (strncmp(metric->name, te->table->prefix, strlen(te->table->prefix)) != 0)
		return;
	suffix = metric->name + strlen(te->table->prefix);
	for (size_t c = 0; c < te->table->column_count; c++)
		if (strcmp(te->table->columns[c].metric_suffix, suffix) == 0)
			te->values[c] = values[0];
}

int rollup_write_table(struct rollup *rollup, FILE *out, const char *bucket_text)
{
	int err;

	fprintf(out, "\nentities %s (per minute; times in ns, HTTP in ms; all metrics: -o json)\n",
		bucket_text);
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++) {
		struct table_emit te = { .out = out, .table = &tables[t] };

		err = rollup_emit(rollup, emit_table, &te);
		if (err)
			return err;
		row_end(&te);
	}
	fflush(out);
	return 0;
}

/* The table title of an entity's scope. */
static const char *scope_title(enum rollup_scope scope)
{
	for (size_t t = 0; t < sizeof(tables) / sizeof(tables[0]); t++)
		if (tables[t].scope == scope)
			return tables[t].title;
	return "?";
}

struct list_emit {
	FILE *out;
	struct rollup_entity_view current;
	bool open;
};

static void emit_list(void *ctx, const struct rollup_entity_view *entity,
		      const struct metric_plan *metric, const int64_t *values, unsigned int count)
{
	struct list_emit *le = ctx;
	char name[512];

	if (!le->open || !rollup_entity_view_same(&le->current, entity)) {
		entity_name(entity, name, sizeof(name));
		fprintf(le->out, "  %s %s\n", scope_title(entity->scope), name);
		le->current = *entity;
		le->open = true;
	}
	fprintf(le->out, "    %-64s", metric->name);
	for (unsigned int i = 0; i < count; i++)
		fprintf(le->out, " %lld", (long long)values[i]);
	fputc('\n', le->out);
}

int rollup_write_metric_list(struct rollup *rollup, FILE *out, const char *bucket_text)
{
	struct list_emit le = { .out = out };
	int err;

	fprintf(out, "\nentities %s, every metric (OAP's units: ns, HTTP in ms, rates and apdex in "
		     "1/10000; percentiles p50 p75 p90 p95 p99)\n", bucket_text);
	err = rollup_emit(rollup, emit_list, &le);
	fflush(out);
	return err;
}
