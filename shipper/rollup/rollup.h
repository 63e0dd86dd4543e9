/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * From kernel aggregates to SkyWalking's six entities and 296 metrics.
 *
 * The drain hands over one flow per aggregate row: who is local, who is
 * the peer (already resolved to names), the role, the HTTP endpoint if any,
 * and the row's counts and sums. The rollup files each flow under OAP's
 * entities with OAP's rules (relation direction by role, same-service
 * connections dropped, endpoints on the server side only) and evaluates
 * every metric of oap_metrics.def from exact sums and counts.
 */
#ifndef KACCESS_ROLLUP_ROLLUP_H
#define KACCESS_ROLLUP_ROLLUP_H

#include <stdint.h>

#include "rollup/metric_plan.h"

#define ROLLUP_UNKNOWN_SERVICE "Unknown"
#define ROLLUP_ENDPOINT_MAX_CHARS 150
#define ROLLUP_PERCENTILE_PRECISION_MS 10
#define ROLLUP_PERCENTILE_RANKS 5

/* The ranks of a percentile metric's values: p50, p75, p90, p95, p99. */
extern const unsigned int rollup_percentile_ranks[ROLLUP_PERCENTILE_RANKS];

/* One histogram bucket: calls whose latency / 10 ms was `key`. */
struct rollup_latency_bucket {
	uint32_t key;
	uint64_t count;
};

/* The counts and sums of one row (or of an entity, seen from one side). */
struct rollup_measures {
	uint64_t calls[ROLLUP_EV_MAX];
	uint64_t connect_success;
	uint64_t http_success;           /* status < 500 */
	uint64_t http_status_class[6];   /* [1]..[5]: 1xx..5xx */
	uint64_t http_apdex_satisfied;   /* successful and faster than the threshold */
	uint64_t http_apdex_tolerated;   /* successful, threshold <= latency < 4 x threshold */
	uint64_t sums[ROLLUP_F_MAX];
	uint64_t measured;               /* bit (1 << field): the kernel measures this field */
	const struct rollup_latency_bucket *latency; /* HTTP latency histogram, may be NULL */
	uint32_t latency_count;
};

struct rollup_party {
	const char *service;  /* "<svc>.<ns>"; NULL: not a known pod or service (Unknown) */
	const char *instance; /* pod name; NULL or "": no pod */
};

enum rollup_role {
	ROLLUP_ROLE_CLIENT = 0,
	ROLLUP_ROLE_SERVER = 1,
};

struct rollup_flow {
	struct rollup_party local, remote;
	enum rollup_role role;
	const char *endpoint;  /* "METHOD:path" of HTTP exchanges, NULL for plain TCP rows */
	const struct rollup_measures *measures;
	/* the local pod's namespace is excluded by the policy: counted, not filed */
	bool local_excluded;
};

/* An entity as the emitter shows it; unused names are NULL. */
struct rollup_entity_view {
	enum rollup_scope scope;
	const char *service;          /* service, instance, endpoint */
	const char *instance;         /* instance */
	const char *endpoint;         /* endpoint */
	const char *source_service;   /* relations */
	const char *source_instance;  /* instance relation */
	const char *dest_service;
	const char *dest_instance;
	unsigned int component_id;    /* relations: 49 http, 110 tcp */
	/* relations: bit (1 << enum rollup_role) for each side that saw calls, OAP's detect points */
	unsigned int detect_points;
};

/* Two views of one entity (views share the entity's name pointers). */
bool rollup_entity_view_same(const struct rollup_entity_view *a, const struct rollup_entity_view *b);

struct rollup_stats {
	uint64_t flows;
	uint64_t dropped_same_service;   /* local and remote service equal: OAP drops them */
	uint64_t dropped_unknown_local;  /* the local side is not a known pod */
	uint64_t dropped_excluded_local; /* the local pod's namespace is excluded */
	uint64_t entities[ROLLUP_SCOPE_MAX];
};

struct rollup;

/* `interval_s`: the bucket length; cpm is calls x 60 / interval_s. */
int rollup_new(unsigned int interval_s, struct rollup **ret_rollup);
void rollup_free(struct rollup *rollup);

/* File one flow; 0 or -ENOMEM. */
int rollup_add(struct rollup *rollup, const struct rollup_flow *flow);

/*
 * One metric value of one entity: `values` has one number, or five for a
 * percentile (p50, p75, p90, p95, p99). Only metrics whose filter matched at
 * least one call, and whose field the kernel measures, are emitted.
 */
typedef void (*rollup_emit_fn)(void *ctx, const struct rollup_entity_view *entity,
			       const struct metric_plan *metric, const int64_t *values,
			       unsigned int value_count);

/* Entities in a stable order (scope, then names), metrics in table order. */
int rollup_emit(struct rollup *rollup, rollup_emit_fn emit, void *ctx);

void rollup_stats(const struct rollup *rollup, struct rollup_stats *ret_stats);

/*
 * Called for every flow the rules keep, with the relation's direction
 * resolved (source and destination services; instances NULL or ""), e.g.
 * to turn flows into OAP meters. Names are valid during the call.
 */
struct rollup_relation {
	const char *source_service, *source_instance;
	const char *dest_service, *dest_instance;
};
typedef int (*rollup_flow_fn)(void *ctx, const struct rollup_flow *flow,
			      const struct rollup_relation *relation);
void rollup_observe_flows(struct rollup *rollup, rollup_flow_fn observe, void *ctx);

/* The component id of the service relation source -> dest: 49 http, 110 tcp, 0 none. */
unsigned int rollup_relation_component(struct rollup *rollup, const char *source_service,
				       const char *dest_service);

/* Evaluate one metric over one entity's two sides; the number of values, 0 if none. */
unsigned int rollup_evaluate(const struct metric_plan *metric, const struct rollup_measures *client,
			     const struct rollup_measures *server, unsigned int interval_s,
			     int64_t *ret_values);

#endif
