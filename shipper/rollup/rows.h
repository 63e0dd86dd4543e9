/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * From drained kernel rows to rollup flows, and from the rollup to NDJSON.
 * Who a cgroup and a peer address are is asked of an identity source (the
 * Kubernetes resolver, or a fixed table in tests), so this file knows
 * nothing of how names are found.
 */
#ifndef KACCESS_ROLLUP_ROWS_H
#define KACCESS_ROLLUP_ROWS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "json_writer.h"
#include "maps_read.h"
#include "rollup/rollup.h"
#include "strbuf.h"

struct identity_source {
	/*
	 * The pod behind a local cgroup; 0, -ENOENT when it is not a known
	 * pod, -EPERM when it is a pod the namespace policy excludes.
	 */
	int (*local)(void *ctx, uint64_t cgroup_id, struct rollup_party *ret_party);
	/*
	 * The pod or service behind the peer address (v4-mapped for IPv4) of
	 * the row whose local side `local` just resolved; -ENOENT: Unknown.
	 */
	int (*peer)(void *ctx, const uint8_t *addr16, uint16_t port, struct rollup_party *ret_party);
	void *ctx;
};

/*
 * The kernel row's counts as OAP calls: what the TCP aggregates measure,
 * with the L2-L4 fields of `l24_measured` (enum kaccess_l24_measure).
 */
void rollup_measures_from_agg(const struct kaccess_agg_value *value, unsigned int l24_measured,
			      struct rollup_measures *ret_measures);

/* Add (and mark measured) the L2-L4 sums of `l24_measured`. */
void rollup_measures_add_l24(const struct kaccess_agg_value *value, unsigned int l24_measured,
			     struct rollup_measures *measures);

/*
 * File every row; 0 or -ENOMEM. Rows whose local side is unknown or
 * excluded are counted, not filed.
 */
int rollup_add_rows(struct rollup *rollup, const struct agg_row *rows, size_t count,
		    const struct identity_source *identity, unsigned int l24_measured);

/*
 * HTTP rows: exchanges of one endpoint (its text from `endpoint_text`, NULL
 * when not known yet) with one peer.
 */
int rollup_add_http_rows(struct rollup *rollup, const struct http_row *rows, size_t count,
			 const struct identity_source *identity,
			 const char *(*endpoint_text)(void *ctx, uint64_t hash), void *text_ctx);

/*
 * For people: per scope a table of the entities with the metrics most read
 * (calls per minute, mean times, HTTP success); JSON has all of them.
 */
int rollup_write_table(struct rollup *rollup, FILE *out, const char *bucket_text);

/*
 * For people who want all of it (`table_metrics = all`): every entity by
 * scope and name, then each of its metrics on a line with its values, in
 * OAP's units (as the JSON lines have them).
 */
int rollup_write_metric_list(struct rollup *rollup, FILE *out, const char *bucket_text);

/* OAP's default apdex threshold, milliseconds. */
#define ROLLUP_APDEX_THRESHOLD_MS 500

/* One NDJSON line per entity: {"type":"entity","scope":...,names...,"metrics":{...}}. */
int rollup_write_json(struct rollup *rollup, struct json_writer *w, uint64_t bucket_start_ms,
		      unsigned int interval_s);

/*
 * The same values as Prometheus text, a gauge family per OAP metric:
 * kaccess_<OAL name>{service=...,instance=...,endpoint=...,source_service=...,
 * source_instance=...,dest_service=...,dest_instance=...,component_id=...}
 * (the entity's names only; percentiles get p="50".."99"), after
 * kaccess_entity_bucket_start_timestamp_seconds. 0, -ENOMEM or -EINVAL.
 */
int rollup_write_prometheus(struct rollup *rollup, struct strbuf *out, uint64_t bucket_start_ms);

#endif
