/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Outputs. A sink receives connection events as they arrive, each drained
 * bucket, and (for live views) periodic snapshots.
 */
#ifndef KACCESS_SINK_H
#define KACCESS_SINK_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "http_records.h"
#include "kaccess.h"
#include "maps_read.h"

struct cgroup_names;
struct endpoint_names;

/* What every sink may need to name and time things. */
struct sink_env {
	struct cgroup_names *cgroups;
	struct endpoint_names *endpoints; /* HTTP endpoint texts by hash */
	uint64_t bucket_ns;
	unsigned int l24_measured;        /* enum kaccess_l24_measure: L2-L4 fields measured here */
	const volatile __u64 *wall_offset_ns; /* realtime = monotonic + offset */
	FILE *out;
};

struct agent_info {
	const char *kernel_release;
	const char *watched_cgroup; /* "" = all processes */
	const char *pin_dir;        /* "" = not pinned */
	const char *hooks;          /* "fentry", "sock", "fd" or "tcp" */
	unsigned int programs_attached;
	unsigned int programs_not_attached;
};

#include "agent.h"

struct bucket_report {
	uint64_t bucket;          /* wall-clock bucket index */
	uint64_t drain_ns;        /* time the drain of its generation took */
	bool partial;             /* drained at shutdown before the bucket ended */
	const struct agg_row *rows;
	size_t count;
	const struct http_row *http_rows; /* HTTP exchanges of the same bucket */
	size_t http_count;
	const struct loss_counters *losses;
};

struct live_report {
	uint64_t bucket;          /* the bucket being written now */
	const struct agg_row *rows;
	size_t count;
	const struct conn_row *conns;
	size_t conn_count;
	const struct http_row *http_rows; /* the bucket's HTTP rows so far */
	size_t http_count;
	const struct loss_counters *losses;
};

struct sink;

struct sink_ops {
	void (*ready)(struct sink *sink, const struct agent_info *info);
	void (*connection)(struct sink *sink, const struct kaccess_conn_event *event);
	void (*bucket)(struct sink *sink, const struct bucket_report *report);
	void (*live)(struct sink *sink, const struct live_report *report); /* may be NULL */
	/* an HTTP exchange's access-log record the policy ships; may be NULL */
	void (*http_exchange)(struct sink *sink, const struct http_record *record);
	/* work left from a bucket, done a little on each pass of the loop; true while some is
	 * left (the loop then comes back within milliseconds); may be NULL */
	bool (*pump)(struct sink *sink);
	void (*close)(struct sink *sink);                                  /* may be NULL */
};

struct sink {
	const struct sink_ops *ops;
	struct sink_env env;
	bool is_tty;
	void *state;              /* the sink's own */
};

struct agent;

void sink_json_init(struct sink *sink, const struct sink_env *env);
void sink_table_init(struct sink *sink, const struct sink_env *env);
void sink_none_init(struct sink *sink, const struct sink_env *env);

struct kaccess_config;
struct k8s;

/* Entities with Kubernetes names, rolled up from each bucket; 0 or -ENOMEM. */
int sink_entities_init(struct sink *sink, const struct sink_env *env,
		       const struct kaccess_config *cfg, struct k8s *k8s);

/* /metrics, /healthz and /readyz on `listen`; 0 or -errno (logged). */
int sink_prometheus_init(struct sink *sink, const struct sink_env *env, struct agent *agent,
			 const char *listen);

/* Shared formatting. */
void format_addr(const __u8 addr[KACCESS_ADDR_LEN], char *buf, size_t len);
const char *role_name(__u8 role);
uint64_t bucket_start_ms(const struct sink_env *env, uint64_t bucket);
uint64_t monotonic_to_realtime_ms(const struct sink_env *env, uint64_t mono_ns);
/* The endpoint text of an HTTP row, or NULL when it is not known (yet). */
const char *http_endpoint_text(const struct sink_env *env, uint64_t hash, char *buf, size_t len);

#endif
