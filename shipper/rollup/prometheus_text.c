// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The rollup as Prometheus text: one gauge family per OAP metric, named
 * kaccess_<OAL name> (kaccess_kubernetes_service_connect_cpm), with the
 * entity's names as labels, the values of the NDJSON entity lines. The text
 * format wants each family's samples together, while the rollup emits entity
 * by entity: samples are collected, then written family by family.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "rollup/rows.h"

struct prom_sample {
	size_t family;          /* the metric's index in metric_plans(): families in table order */
	size_t emitted;         /* emit order: entities stay in the rollup's stable order */
	char *labels;           /* `name="value",...` of the entity, without braces */
	int64_t values[ROLLUP_PERCENTILE_RANKS];
	unsigned int value_count;
};

struct prom_collect {
	struct prom_sample *samples;
	size_t count, capacity;
	int err;
};

static void entity_label(struct strbuf *labels, const char *name, const char *value)
{
	if (!value)
		return;
	strbuf_printf(labels, "%s%s=", labels->len ? "," : "", name);
	strbuf_label_value(labels, value);
}

static char *entity_labels(const struct rollup_entity_view *e)
{
	struct strbuf labels = { 0 };

	entity_label(&labels, "service", e->service);
	entity_label(&labels, "instance", e->instance);
	entity_label(&labels, "endpoint", e->endpoint);
	entity_label(&labels, "source_service", e->source_service);
	entity_label(&labels, "source_instance", e->source_instance);
	entity_label(&labels, "dest_service", e->dest_service);
	entity_label(&labels, "dest_instance", e->dest_instance);
	if (e->component_id)
		strbuf_printf(&labels, ",component_id=\"%u\"", e->component_id);
	if (labels.failed || !labels.text) {
		strbuf_free(&labels);
		return NULL;
	}
	return labels.text;
}

static void collect_sample(void *ctx, const struct rollup_entity_view *entity,
			   const struct metric_plan *metric, const int64_t *values, unsigned int value_count)
{
	struct prom_collect *c = ctx;
	struct prom_sample *sample;

	if (c->err)
		return;
	if (c->count == c->capacity) {
		size_t capacity = c->capacity ? c->capacity * 2 : 256;
		struct prom_sample *grown = realloc(c->samples, capacity * sizeof(*grown));

		if (!grown) {
			c->err = -ENOMEM;
			return;
		}
		c->samples = grown;
		c->capacity = capacity;
	}
	sample = &c->samples[c->count];
	*sample = (struct prom_sample){ .family = metric - metric_plans(), .emitted = c->count,
					.value_count = value_count };
	memcpy(sample->values, values, value_count * sizeof(values[0]));
	sample->labels = entity_labels(entity);
	if (!sample->labels) {
		c->err = -ENOMEM;
		return;
	}
	c->count++;
}

static int by_family_then_emitted(const void *a, const void *b)
{
	const struct prom_sample *x = a, *y = b;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	return x->emitted < y->emitted ? -1 : x->emitted > y->emitted;
}

/*
 * Prometheus reserves the _count suffix for histograms and summaries
 * (promtool rejects a gauge named so): two OAL names end in it
 * (..._enter_avg_queue_count, ..._avg_enter_queue_count), shown as `_value`
 * after it.
 */
static const char *family_suffix(const struct metric_plan *metric)
{
	size_t len = strlen(metric->name);

	return len > 6 && strcmp(metric->name + len - 6, "_count") == 0 ? "_value" : "";
}

static void write_family_header(struct strbuf *out, const struct metric_plan *metric)
{
	const char *suffix = family_suffix(metric);

	strbuf_printf(out,
		      "# HELP kaccess_%s%s OAP's %s (ebpf.oal, %s), last completed bucket; "
		      "rates and apdex in 1/10000 as OAP stores them.\n# TYPE kaccess_%s%s gauge\n",
		      metric->name, suffix, metric->name, rollup_scope_name(metric->scope),
		      metric->name, suffix);
}

/* Values are never negative: counts, sums, averages and percentiles of them. */
static void write_sample(struct strbuf *out, const struct metric_plan *metric, const struct prom_sample *s)
{
	const char *suffix = family_suffix(metric);

	if (s->value_count == 1) {
		strbuf_printf(out, "kaccess_%s%s{%s} %llu\n", metric->name, suffix, s->labels,
			      (unsigned long long)s->values[0]);
		return;
	}
	for (unsigned int i = 0; i < s->value_count && i < ROLLUP_PERCENTILE_RANKS; i++)
		strbuf_printf(out, "kaccess_%s%s{%s,p=\"%u\"} %llu\n", metric->name, suffix, s->labels,
			      rollup_percentile_ranks[i], (unsigned long long)s->values[i]);
}

int rollup_write_prometheus(struct rollup *rollup, struct strbuf *out, uint64_t bucket_start_ms)
{
	const struct metric_plan *plans = metric_plans();
	struct prom_collect c = { 0 };
	int err;

	if (!plans)
		return -EINVAL;
	err = rollup_emit(rollup, collect_sample, &c);
	err = err ?: c.err;
	if (!err) {
		qsort(c.samples, c.count, sizeof(c.samples[0]), by_family_then_emitted);
		strbuf_printf(out, "# HELP kaccess_entity_bucket_start_timestamp_seconds Start of the bucket "
				   "the kaccess_kubernetes_* series show.\n"
				   "# TYPE kaccess_entity_bucket_start_timestamp_seconds gauge\n"
				   "kaccess_entity_bucket_start_timestamp_seconds %llu\n",
			      (unsigned long long)(bucket_start_ms / 1000));
		for (size_t i = 0; i < c.count; i++) {
			const struct metric_plan *metric = &plans[c.samples[i].family];

			if (i == 0 || c.samples[i - 1].family != c.samples[i].family)
				write_family_header(out, metric);
			write_sample(out, metric, &c.samples[i]);
		}
		err = out->failed ? -ENOMEM : 0;
	}
	for (size_t i = 0; i < c.count; i++)
		free(c.samples[i].labels);
	free(c.samples);
	return err;
}
