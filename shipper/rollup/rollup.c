// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The rollup: flows in, entities and metric values out. Entities live in a
 * chained hash table keyed by scope and names; each keeps its client-side
 * and server-side counts apart, because relation metrics have `client_` and
 * `server_` variants and service HTTP metrics count the server side only.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rollup/rollup.h"

#define ROLLUP_HASH_BUCKETS 4096u
#define ROLLUP_NAMES 4
#define COMPONENT_HTTP 49
#define COMPONENT_TCP 110

struct side_acc {
	struct rollup_measures m;
	struct rollup_latency_bucket *latency; /* sorted by key, owned */
	uint32_t latency_capacity;
};

struct entity {
	struct entity *next;
	enum rollup_scope scope;
	char *names[ROLLUP_NAMES];
	struct side_acc sides[2]; /* by enum rollup_role */
};

struct rollup_entity_view;
static void entity_view(const struct entity *entity, struct rollup_entity_view *ret_view);

struct rollup {
	unsigned int interval_s;
	rollup_flow_fn observe;
	void *observe_ctx;
	struct entity *buckets[ROLLUP_HASH_BUCKETS];
	struct rollup_stats stats;
};

int rollup_new(unsigned int interval_s, struct rollup **ret_rollup)
{
	struct rollup *rollup;

	if (interval_s == 0)
		return -EINVAL;
	rollup = calloc(1, sizeof(*rollup));
	if (!rollup)
		return -ENOMEM;
	rollup->interval_s = interval_s;
	*ret_rollup = rollup;
	return 0;
}

static void entity_free(struct entity *entity)
{
	for (int i = 0; i < ROLLUP_NAMES; i++)
		free(entity->names[i]);
	for (int side = 0; side < 2; side++)
		free(entity->sides[side].latency);
	free(entity);
}

void rollup_free(struct rollup *rollup)
{
	struct entity *entity, *next;

	if (!rollup)
		return;
	for (unsigned int i = 0; i < ROLLUP_HASH_BUCKETS; i++) {
		for (entity = rollup->buckets[i]; entity; entity = next) {
			next = entity->next;
			entity_free(entity);
		}
	}
	free(rollup);
}

static uint32_t names_hash(enum rollup_scope scope, const char *const *names)
{
	uint32_t hash = 2166136261u ^ (uint32_t)scope;

	for (int i = 0; i < ROLLUP_NAMES; i++) {
		for (const char *c = names[i] ? names[i] : ""; *c; c++)
			hash = (hash ^ (uint8_t)*c) * 16777619u;
		hash = (hash ^ 0x1f) * 16777619u; /* separator: ("ab","c") != ("a","bc") */
	}
	return hash;
}

static bool names_equal(char *const *have, const char *const *want)
{
	for (int i = 0; i < ROLLUP_NAMES; i++) {
		const char *a = have[i] ? have[i] : "", *b = want[i] ? want[i] : "";

		if (strcmp(a, b) != 0)
			return false;
	}
	return true;
}

static int entity_get(struct rollup *rollup, enum rollup_scope scope, const char *const *names,
		      struct entity **ret_entity)
{
	uint32_t slot = names_hash(scope, names) % ROLLUP_HASH_BUCKETS;
	struct entity *entity;

	for (entity = rollup->buckets[slot]; entity; entity = entity->next) {
		if (entity->scope == scope && names_equal(entity->names, names)) {
			*ret_entity = entity;
			return 0;
		}
	}
	entity = calloc(1, sizeof(*entity));
	if (!entity)
		return -ENOMEM;
	entity->scope = scope;
	for (int i = 0; i < ROLLUP_NAMES; i++) {
		if (!names[i])
			continue;
		entity->names[i] = strdup(names[i]);
		if (!entity->names[i]) {
			entity_free(entity);
			return -ENOMEM;
		}
	}
	entity->next = rollup->buckets[slot];
	rollup->buckets[slot] = entity;
	rollup->stats.entities[scope]++;
	*ret_entity = entity;
	return 0;
}

/* Add `count` calls to histogram bucket `key`, keeping the array sorted. */
static int latency_add(struct side_acc *acc, uint32_t key, uint64_t count)
{
	uint32_t low = 0, high = acc->m.latency_count;

	while (low < high) {
		uint32_t mid = (low + high) / 2;

		if (acc->latency[mid].key < key)
			low = mid + 1;
		else
			high = mid;
	}
	if (low < acc->m.latency_count && acc->latency[low].key == key) {
		acc->latency[low].count += count;
		return 0;
	}
	if (acc->m.latency_count == acc->latency_capacity) {
		uint32_t capacity = acc->latency_capacity ? acc->latency_capacity * 2 : 16;
		struct rollup_latency_bucket *grown;

		grown = realloc(acc->latency, capacity * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		acc->latency = grown;
		acc->latency_capacity = capacity;
	}
	memmove(&acc->latency[low + 1], &acc->latency[low],
		(acc->m.latency_count - low) * sizeof(*acc->latency));
	acc->latency[low] = (struct rollup_latency_bucket){ .key = key, .count = count };
	acc->m.latency_count++;
	acc->m.latency = acc->latency;
	return 0;
}

static int measures_add(struct side_acc *acc, const struct rollup_measures *from)
{
	struct rollup_measures *to = &acc->m;
	int err;

	for (int ev = 0; ev < ROLLUP_EV_MAX; ev++)
		to->calls[ev] += from->calls[ev];
	to->connect_success += from->connect_success;
	to->http_success += from->http_success;
	for (int c = 0; c < 6; c++)
		to->http_status_class[c] += from->http_status_class[c];
	to->http_apdex_satisfied += from->http_apdex_satisfied;
	to->http_apdex_tolerated += from->http_apdex_tolerated;
	for (int f = 0; f < ROLLUP_F_MAX; f++)
		to->sums[f] += from->sums[f];
	to->measured |= from->measured;
	for (uint32_t i = 0; from->latency && i < from->latency_count; i++) {
		err = latency_add(acc, from->latency[i].key, from->latency[i].count);
		if (err)
			return err;
	}
	return 0;
}

static int file_under(struct rollup *rollup, enum rollup_scope scope, const char *const *names,
		      enum rollup_role role, const struct rollup_measures *measures)
{
	struct entity *entity;
	int err;

	err = entity_get(rollup, scope, names, &entity);
	if (err)
		return err;
	return measures_add(&entity->sides[role], measures);
}

static bool has_pod(const char *instance)
{
	return instance && instance[0];
}

/* OAP cuts endpoint names at 150 characters. */
static void endpoint_name(const char *endpoint, char *ret_name, size_t len)
{
	snprintf(ret_name, len, "%.*s", ROLLUP_ENDPOINT_MAX_CHARS, endpoint);
}

/*
 * The entities of the local side alone: its service, its pod, and (server
 * side) the endpoint. OAP forms none of them when the local service is
 * Unknown (k8s_unselected_pod_rule=unknown names pods that way); the
 * flow's relations still count.
 */
static int file_local_entities(struct rollup *rollup, const struct rollup_flow *flow)
{
	const char *local = flow->local.service;
	char endpoint[ROLLUP_ENDPOINT_MAX_CHARS + 1];
	int err;

	if (strcmp(local, ROLLUP_UNKNOWN_SERVICE) == 0)
		return 0;
	err = file_under(rollup, ROLLUP_SERVICE, (const char *[]){ local, NULL, NULL, NULL },
			 flow->role, flow->measures);
	if (!err && has_pod(flow->local.instance))
		err = file_under(rollup, ROLLUP_INSTANCE,
				 (const char *[]){ local, flow->local.instance, NULL, NULL }, flow->role,
				 flow->measures);
	if (!err && flow->role == ROLLUP_ROLE_SERVER && flow->endpoint) {
		endpoint_name(flow->endpoint, endpoint, sizeof(endpoint));
		err = file_under(rollup, ROLLUP_ENDPOINT, (const char *[]){ local, endpoint, NULL, NULL },
				 flow->role, flow->measures);
	}
	return err;
}

int rollup_add(struct rollup *rollup, const struct rollup_flow *flow)
{
	const char *local = flow->local.service;
	const char *remote = flow->remote.service ? flow->remote.service : ROLLUP_UNKNOWN_SERVICE;
	bool server = flow->role == ROLLUP_ROLE_SERVER;
	/* role server: the peer called us; otherwise we called the peer */
	const struct rollup_party *source = server ? &flow->remote : &flow->local;
	const struct rollup_party *dest = server ? &flow->local : &flow->remote;
	const char *source_service = server ? remote : local;
	const char *dest_service = server ? local : remote;
	int err;

	rollup->stats.flows++;
	if (flow->local_excluded) {
		rollup->stats.dropped_excluded_local++;
		return 0;
	}
	if (!local) {
		rollup->stats.dropped_unknown_local++;
		return 0;
	}
	/* OAP drops a connection within one service entirely, kernel metrics included */
	if (strcmp(local, remote) == 0) {
		rollup->stats.dropped_same_service++;
		return 0;
	}
	err = file_local_entities(rollup, flow);
	if (!err)
		err = file_under(rollup, ROLLUP_SERVICE_RELATION,
				 (const char *[]){ source_service, dest_service, NULL, NULL }, flow->role,
				 flow->measures);
	if (!err && has_pod(source->instance) && has_pod(dest->instance))
		err = file_under(rollup, ROLLUP_INSTANCE_RELATION,
				 (const char *[]){ source_service, source->instance, dest_service,
						   dest->instance },
				 flow->role, flow->measures);
	if (!err && rollup->observe) {
		struct rollup_relation relation = {
			.source_service = source_service,
			.source_instance = source->instance,
			.dest_service = dest_service,
			.dest_instance = dest->instance,
		};

		err = rollup->observe(rollup->observe_ctx, flow, &relation);
	}
	return err;
}

void rollup_observe_flows(struct rollup *rollup, rollup_flow_fn observe, void *ctx)
{
	rollup->observe = observe;
	rollup->observe_ctx = ctx;
}

unsigned int rollup_relation_component(struct rollup *rollup, const char *source_service,
				       const char *dest_service)
{
	const char *names[ROLLUP_NAMES] = { source_service, dest_service, NULL, NULL };
	uint32_t slot = names_hash(ROLLUP_SERVICE_RELATION, names) % ROLLUP_HASH_BUCKETS;
	struct rollup_entity_view view;

	for (struct entity *entity = rollup->buckets[slot]; entity; entity = entity->next) {
		if (entity->scope == ROLLUP_SERVICE_RELATION && names_equal(entity->names, names)) {
			entity_view(entity, &view);
			return view.component_id;
		}
	}
	return 0;
}

/* Calls of the metric's event matching its success and status filter. */
static uint64_t matching_calls(const struct metric_plan *metric, const struct rollup_measures *m)
{
	if (metric->status_class)
		return m->http_status_class[metric->status_class];
	if (metric->success_only)
		return metric->event == ROLLUP_EV_CONNECT ? m->connect_success : m->http_success;
	return m->calls[metric->event];
}

/* Java's Math.round(float) of total * rank / 100, as OAP computes its roofs. */
static uint64_t percentile_roof(uint64_t total, unsigned int rank)
{
	float exact = (float)(total * rank) * 1.0f / 100;

	return (uint64_t)floorf(exact + 0.5f);
}

const unsigned int rollup_percentile_ranks[ROLLUP_PERCENTILE_RANKS] = { 50, 75, 90, 95, 99 };

/*
 * OAP's percentile2: walk the 10 ms buckets in key order; a rank's value is
 * the first bucket where the running count reaches its roof.
 */
static void percentiles(const struct rollup_measures *const *sides, int side_count,
			int64_t *ret_values)
{
	uint32_t next[2] = { 0, 0 };
	uint64_t total = 0, running = 0, roofs[ROLLUP_PERCENTILE_RANKS];
	unsigned int rank = 0;

	for (int s = 0; s < side_count; s++)
		for (uint32_t i = 0; i < sides[s]->latency_count; i++)
			total += sides[s]->latency[i].count;
	for (int r = 0; r < ROLLUP_PERCENTILE_RANKS; r++) {
		roofs[r] = percentile_roof(total, rollup_percentile_ranks[r]);
		ret_values[r] = 0;
	}
	/* merge the sides' sorted buckets */
	while (rank < ROLLUP_PERCENTILE_RANKS) {
		int pick = -1;
		uint32_t key = 0;

		for (int s = 0; s < side_count; s++) {
			if (next[s] >= sides[s]->latency_count)
				continue;
			if (pick < 0 || sides[s]->latency[next[s]].key < key) {
				pick = s;
				key = sides[s]->latency[next[s]].key;
			}
		}
		if (pick < 0)
			break;
		for (int s = 0; s < side_count; s++)
			if (next[s] < sides[s]->latency_count && sides[s]->latency[next[s]].key == key)
				running += sides[s]->latency[next[s]++].count;
		while (rank < ROLLUP_PERCENTILE_RANKS && running >= roofs[rank])
			ret_values[rank++] = (int64_t)key * ROLLUP_PERCENTILE_PRECISION_MS;
	}
}

unsigned int rollup_evaluate(const struct metric_plan *metric, const struct rollup_measures *client,
			     const struct rollup_measures *server, unsigned int interval_s,
			     int64_t *ret_values)
{
	const struct rollup_measures *sides[2];
	uint64_t calls = 0, matching = 0, sum = 0, satisfied = 0, tolerated = 0, success = 0;
	int side_count = 0;

	if (metric->side != ROLLUP_SIDE_SERVER)
		sides[side_count++] = client;
	if (metric->side != ROLLUP_SIDE_CLIENT)
		sides[side_count++] = server;
	for (int s = 0; s < side_count; s++) {
		if (metric->field != ROLLUP_F_NONE && !(sides[s]->measured & (1ull << metric->field)) &&
		    sides[s]->calls[metric->event])
			return 0; /* calls happened but the kernel does not measure this field */
		calls += sides[s]->calls[metric->event];
		matching += matching_calls(metric, sides[s]);
		sum += sides[s]->sums[metric->field];
		satisfied += sides[s]->http_apdex_satisfied;
		tolerated += sides[s]->http_apdex_tolerated;
		success += sides[s]->http_success;
	}
	if (matching == 0)
		return 0;
	switch (metric->aggregation) {
	case ROLLUP_AGG_CPM:
		ret_values[0] = (int64_t)(matching * 60 / interval_s);
		return 1;
	case ROLLUP_AGG_LONG_AVG:
		ret_values[0] = (int64_t)(sum / calls);
		return 1;
	case ROLLUP_AGG_SUM:
		ret_values[0] = (int64_t)sum;
		return 1;
	case ROLLUP_AGG_PERCENT:
		ret_values[0] = (int64_t)(success * 10000 / calls);
		return 1;
	case ROLLUP_AGG_APDEX:
		ret_values[0] = (int64_t)((satisfied * 10000 + tolerated * 10000 / 2) / calls);
		return 1;
	case ROLLUP_AGG_PERCENTILE:
		percentiles(sides, side_count, ret_values);
		return ROLLUP_PERCENTILE_RANKS;
	}
	return 0;
}

/* A relation side is a detect point of OAP's once it saw one call of any kind. */
static bool side_has_calls(const struct rollup_measures *m)
{
	for (unsigned int event = 0; event < ROLLUP_EV_MAX; event++)
		if (m->calls[event])
			return true;
	return false;
}

static void entity_view(const struct entity *entity, struct rollup_entity_view *ret_view)
{
	*ret_view = (struct rollup_entity_view){ .scope = entity->scope };
	switch (entity->scope) {
	case ROLLUP_SERVICE:
		ret_view->service = entity->names[0];
		break;
	case ROLLUP_INSTANCE:
		ret_view->service = entity->names[0];
		ret_view->instance = entity->names[1];
		break;
	case ROLLUP_ENDPOINT:
		ret_view->service = entity->names[0];
		ret_view->endpoint = entity->names[1];
		break;
	case ROLLUP_SERVICE_RELATION:
		ret_view->source_service = entity->names[0];
		ret_view->dest_service = entity->names[1];
		break;
	case ROLLUP_INSTANCE_RELATION:
		ret_view->source_service = entity->names[0];
		ret_view->source_instance = entity->names[1];
		ret_view->dest_service = entity->names[2];
		ret_view->dest_instance = entity->names[3];
		break;
	default:
		break;
	}
	if (entity->scope == ROLLUP_SERVICE_RELATION || entity->scope == ROLLUP_INSTANCE_RELATION) {
		bool http = entity->sides[0].m.calls[ROLLUP_EV_HTTP] ||
			    entity->sides[1].m.calls[ROLLUP_EV_HTTP];

		ret_view->component_id = http ? COMPONENT_HTTP : COMPONENT_TCP;
		for (unsigned int role = ROLLUP_ROLE_CLIENT; role <= ROLLUP_ROLE_SERVER; role++)
			if (side_has_calls(&entity->sides[role].m))
				ret_view->detect_points |= 1u << role;
	}
}

bool rollup_entity_view_same(const struct rollup_entity_view *a, const struct rollup_entity_view *b)
{
	return a->scope == b->scope && a->service == b->service && a->instance == b->instance &&
	       a->endpoint == b->endpoint && a->source_service == b->source_service &&
	       a->source_instance == b->source_instance && a->dest_service == b->dest_service &&
	       a->dest_instance == b->dest_instance;
}

static int compare_entities(const void *a, const void *b)
{
	const struct entity *x = *(const struct entity *const *)a, *y = *(const struct entity *const *)b;

	if (x->scope != y->scope)
		return x->scope < y->scope ? -1 : 1;
	for (int i = 0; i < ROLLUP_NAMES; i++) {
		int order = strcmp(x->names[i] ? x->names[i] : "", y->names[i] ? y->names[i] : "");

		if (order)
			return order;
	}
	return 0;
}

static void emit_entity(const struct rollup *rollup, const struct entity *entity,
			const struct metric_plan *plans, rollup_emit_fn emit, void *ctx)
{
	struct rollup_entity_view view;
	int64_t values[ROLLUP_PERCENTILE_RANKS];
	unsigned int count;

	entity_view(entity, &view);
	for (int i = 0; i < ROLLUP_METRIC_COUNT; i++) {
		if (plans[i].scope != entity->scope)
			continue;
		count = rollup_evaluate(&plans[i], &entity->sides[ROLLUP_ROLE_CLIENT].m,
					&entity->sides[ROLLUP_ROLE_SERVER].m, rollup->interval_s, values);
		if (count)
			emit(ctx, &view, &plans[i], values, count);
	}
}

int rollup_emit(struct rollup *rollup, rollup_emit_fn emit, void *ctx)
{
	const struct metric_plan *plans = metric_plans();
	struct entity **sorted, *entity;
	size_t total = 0, n = 0;

	if (!plans)
		return -EINVAL;
	for (int s = 0; s < ROLLUP_SCOPE_MAX; s++)
		total += rollup->stats.entities[s];
	sorted = calloc(total ? total : 1, sizeof(*sorted));
	if (!sorted)
		return -ENOMEM;
	for (unsigned int i = 0; i < ROLLUP_HASH_BUCKETS; i++)
		for (entity = rollup->buckets[i]; entity; entity = entity->next)
			sorted[n++] = entity;
	qsort(sorted, n, sizeof(*sorted), compare_entities);
	for (size_t i = 0; i < n; i++)
		emit_entity(rollup, sorted[i], plans, emit, ctx);
	free(sorted);
	return 0;
}

void rollup_stats(const struct rollup *rollup, struct rollup_stats *ret_stats)
{
	*ret_stats = rollup->stats;
}
