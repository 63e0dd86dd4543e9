// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The entities sink: every drained bucket, rolled up into SkyWalking's six
 * entities with the Kubernetes names of both sides, as NDJSON "entity"
 * lines (output json). It runs before the output sink, so a bucket's
 * entity lines come before its "bucket" line.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "identity.h"
#include "json_writer.h"
#include "log.h"
#include "rollup/rows.h"
#include "sink.h"

struct entities_state {
	struct k8s_identity_ctx identity_ctx;
	struct identity_source identity;
	const struct kaccess_config *cfg;
	char endpoint[KACCESS_HTTP_ENDPOINT_MAX + 1];
	struct sink *sink;
	struct rollup_stats totals;
};

static const char *endpoint_text(void *ctx, uint64_t hash)
{
	struct entities_state *state = ctx;

	return http_endpoint_text(&state->sink->env, hash, state->endpoint, sizeof(state->endpoint));
}

static void entities_ready(struct sink *sink, const struct agent_info *info)
{
}

static void entities_connection(struct sink *sink, const struct kaccess_conn_event *event)
{
}

static int build_rollup(struct entities_state *state, const struct bucket_report *report,
			struct rollup **ret_rollup)
{
	unsigned int interval_s = (unsigned int)(state->sink->env.bucket_ns / 1000000000ull);
	struct rollup *rollup = NULL;
	int err;

	err = rollup_new(interval_s ? interval_s : 1, &rollup);
	err = err ?: rollup_add_rows(rollup, report->rows, report->count, &state->identity);
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
	for (int s = 0; s < ROLLUP_SCOPE_MAX; s++) {
		char key[48];

		snprintf(key, sizeof(key), "%s_count", rollup_scope_name(s));
		jw_u64_field(w, key, stats->entities[s]);
	}
	jw_object_end(w);
	jw_line_end(w);
}

static void entities_bucket(struct sink *sink, const struct bucket_report *report)
{
	struct entities_state *state = sink->state;
	struct rollup_stats stats;
	struct rollup *rollup;
	struct json_writer w;
	int err;

	if (report->count == 0 && report->http_count == 0)
		return;
	err = build_rollup(state, report, &rollup);
	if (err) {
		log_warn("failed to roll up bucket %llu: %s", (unsigned long long)report->bucket,
			 strerror(-err));
		return;
	}
	rollup_stats(rollup, &stats);
	add_stats(&state->totals, &stats);
	if (state->cfg->output == OUTPUT_JSON) {
		jw_init(&w, sink->env.out);
		err = rollup_write_json(rollup, &w, bucket_start_ms(&sink->env, report->bucket),
					(unsigned int)(sink->env.bucket_ns / 1000000000ull));
		if (err)
			log_warn("failed to write the entities: %s", strerror(-err));
		write_summary(&w, sink, report, &stats);
	}
	rollup_free(rollup);
}

static void entities_close(struct sink *sink)
{
	free(sink->state);
	sink->state = NULL;
}

static const struct sink_ops entities_ops = {
	.ready = entities_ready,
	.connection = entities_connection,
	.bucket = entities_bucket,
	.close = entities_close,
};

int sink_entities_init(struct sink *sink, const struct sink_env *env, const struct kaccess_config *cfg,
		       struct k8s *k8s)
{
	struct entities_state *state = calloc(1, sizeof(*state));

	if (!state)
		return -ENOMEM;
	*sink = (struct sink){ .ops = &entities_ops, .env = *env, .state = state };
	state->sink = sink;
	state->cfg = cfg;
	identity_source_from_k8s(&state->identity_ctx, k8s, &state->identity);
	return 0;
}
