/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The real kaccess binary as a child process, and its NDJSON output.
 */
#ifndef KACCESS_SELFTEST_AGENT_PROC_H
#define KACCESS_SELFTEST_AGENT_PROC_H

#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#define SELFTEST_PIN_DIR "/sys/fs/bpf/kaccess-selftest"

struct agent_proc {
	pid_t pid;
	char out_path[PATH_MAX];
	char err_path[PATH_MAX];
};

/* Path of the kaccess binary: $KACCESS_BIN or .output/kaccess. */
const char *kaccess_binary(void);

/*
 * Start `kaccess -o json --pin-dir SELFTEST_PIN_DIR --cgroup <watched> ARGS...`
 * and wait until it reports agent_ready. `args` ends with NULL.
 */
int agent_proc_start(struct agent_proc *agent, const char *const args[]);

/* The same with one "NAME=value" environment entry (e.g. KACCESS_FEATURE_DENY=...). */
int agent_proc_start_env(struct agent_proc *agent, const char *const args[],
			 const char *env_assignment);

/* SIGTERM, wait; the agent's exit status (0 expected). NULL-safe, idempotent. */
int agent_proc_stop(struct agent_proc *agent);
/* The agent's stderr (it logs what it lost over the run at exit). */
void agent_proc_show_log(const struct agent_proc *agent);

/*
 * Run kaccess with `args` to completion, with an optional "NAME=value"
 * environment entry; its exit status, stdout and stderr together in `output_text`.
 */
int agent_run_sync(const char *const args[], const char *env_assignment, char *output_text,
		   size_t len);

/* Whether this kernel loads kaccess with `setting` ("hooks=fentry"): kaccess --check. */
bool kaccess_loads_with(const char *setting);

/* Sums of the aggregate rows that match a filter. */
struct agg_totals {
	uint64_t rows;
	uint64_t connect_count, connect_success_count, connect_duration_ns_sum;
	uint64_t accept_count, accept_duration_ns_sum;
	uint64_t close_count, close_untraced_count, close_duration_ns_sum;
	uint64_t read_count, read_duration_ns_sum, read_bytes;
	uint64_t write_count, write_duration_ns_sum, write_bytes;
};

struct agent_output;

int agent_output_load(struct agent_output **ret_output, const char *path);
void agent_output_free(struct agent_output *output);

/*
 * Sum aggregate rows of `cgroup_id` with `role` ("client"/"server"), peer
 * address `peer` (NULL = any) and `peer_port` (-1 = any).
 */
struct agg_totals agent_output_sum(const struct agent_output *output, uint64_t cgroup_id,
				   const char *role, const char *peer, int peer_port);

/*
 * The sum of one numeric field over the aggregate rows of `cgroup_id` and
 * `role` that carry it; how many did is returned in `ret_rows_with_field`.
 * `field` may name a key of a nested object: "write_loss_locations.OTHER".
 */
uint64_t agent_output_field(const struct agent_output *output, uint64_t cgroup_id, const char *role,
			    const char *field, size_t *ret_rows_with_field);

/* Sums of the HTTP rows ("type": "http") that match a filter. */
struct http_totals {
	uint64_t rows;
	uint64_t call_count, success_count, status[5], no_response_count, truncated_count;
	uint64_t request_header_bytes, request_body_bytes;
	uint64_t response_header_bytes, response_body_bytes;
	uint64_t duration_ns_sum;
	uint64_t histogram_count;  /* sum of every latency bucket */
	uint64_t histogram_in;     /* ...of the buckets whose lower bound is in the asked range */
	bool endpoint_unnamed;     /* a matching row had no endpoint text */
};

/*
 * Sum HTTP rows of `cgroup_id` with `role`, `endpoint` ("GET:/path", NULL =
 * any). histogram_in counts the buckets with lower bound in
 * [hist_low_ms, hist_high_ms].
 */
struct http_totals agent_output_http(const struct agent_output *output, uint64_t cgroup_id,
				     const char *role, const char *endpoint,
				     uint64_t hist_low_ms, uint64_t hist_high_ms);

/* One access-log record ("type": "http_exchange"); strings "" when null. */
struct http_record_seen {
	char method[16], path[256], host[256], version[8], outcome[16];
	char sw8[512], traceparent[256], b3[256];
	uint64_t seq, status, start_boot_ns, end_boot_ns;
	uint64_t local_port, remote_port;
	uint64_t request_header_bytes, request_body_bytes;
	uint64_t response_header_bytes, response_body_bytes;
	uint64_t request_calls, request_call_ns, response_calls, response_call_ns;
	bool head_cut;
};

/*
 * The records of `cgroup_id` with `role` (NULL = any), in output order,
 * into `ret` (up to `max`); how many there were in all.
 */
size_t agent_output_http_records(const struct agent_output *output, uint64_t cgroup_id,
				 const char *role, struct http_record_seen *ret, size_t max);

/* Rows of any kind for `cgroup_id`. */
uint64_t agent_output_rows_of(const struct agent_output *output, uint64_t cgroup_id);

/* Connection events of `cgroup_id` with event name and role. */
uint64_t agent_output_events(const struct agent_output *output, uint64_t cgroup_id,
			     const char *event, const char *role);

/* Distinct bucket_start_ms values among rows of `cgroup_id`. */
size_t agent_output_buckets(const struct agent_output *output, uint64_t cgroup_id);

/* A number from the agent_ready line (UINT64_MAX when absent). */
uint64_t agent_output_ready_u64(const struct agent_output *output, const char *key);

/* Count of lines with "type": type. */
size_t agent_output_lines_of_type(const struct agent_output *output, const char *type);

/* A loss counter summed from the last "bucket" line. */
uint64_t agent_output_lost(const struct agent_output *output, const char *counter);

/* The page at `url` (the agent's /metrics) into buf, through curl: 0 or -1. */
int agent_metrics_fetch(const char *url, char *buf, size_t len);

/* Sum of the values of `metric` lines whose labels contain every one of `needles` (NULL-ended). */
uint64_t agent_metric_sum(const char *text, const char *metric, const char *const *needles);

/*
 * Fetch `url` every 100 ms until `metric` (labels with `needles`) sums to
 * at least `at_least`, or for up to timeout_ms: buf holds the last page.
 * 0 (reached or not: the caller checks the numbers), -1 if a fetch failed.
 */
int agent_metrics_wait(const char *url, char *buf, size_t len, const char *metric,
		       const char *const *needles, uint64_t at_least, int timeout_ms);

/* Wait until the pinned conn_table holds `expected` established connections of these cgroups. */
int wait_conn_table_count(const uint64_t *cgroup_ids, size_t count, size_t expected,
			  int timeout_ms);

/* Wait until conn_table (pinned) holds no connection of these cgroups. */
int wait_conn_table_empty(const uint64_t *cgroup_ids, size_t count, int timeout_ms);

#endif
