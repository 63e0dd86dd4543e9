// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "agent_proc.h"
#include "kaccess.h"
#include "maps_read.h"
#include "pods.h"

#define READY_TIMEOUT_MS 60000

struct agent_output {
	json_object **lines;
	size_t count;
};

const char *kaccess_binary(void)
{
	const char *bin = getenv("KACCESS_BIN");

	return bin && bin[0] ? bin : ".output/kaccess";
}

static bool file_contains(const char *path, const char *needle)
{
	char line[4096];
	bool found = false;
	FILE *file = fopen(path, "re");

	if (!file)
		return false;
	while (!found && fgets(line, sizeof(line), file))
		found = strstr(line, needle) != NULL;
	fclose(file);
	return found;
}

static void redirect(const char *path, int target_fd)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);

	if (fd >= 0) {
		dup2(fd, target_fd);
		close(fd);
	}
}

static pid_t spawn_kaccess(const char *const args[], const char *out_path, const char *err_path,
			   const char *env_assignment)
{
	const char *argv[64];
	size_t argc = 0;
	pid_t pid;

	argv[argc++] = kaccess_binary();
	for (size_t i = 0; args[i] && argc < 63; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid != 0)
		return pid;
	redirect(out_path, STDOUT_FILENO);
	redirect(err_path, STDERR_FILENO);
	if (env_assignment)
		putenv((char *)env_assignment);
	execv(argv[0], (char *const *)argv);
	_exit(127);
}

/* The agent's stderr as TAP comments, for a failing test's diagnostics. */
static void show_log(const char *path)
{
	char line[1024];
	FILE *file = fopen(path, "re");

	while (file && fgets(line, sizeof(line), file))
		fprintf(stderr, "#   %s", line);
	if (file)
		fclose(file);
}

void agent_proc_show_log(const struct agent_proc *agent)
{
	fprintf(stderr, "# kaccess's log:\n");
	show_log(agent->err_path);
}

int agent_proc_start(struct agent_proc *agent, const char *const args[])
{
	return agent_proc_start_env(agent, args, NULL);
}

int agent_proc_start_env(struct agent_proc *agent, const char *const args[],
			 const char *env_assignment)
{
	char watched[PATH_MAX];
	const char *argv[48] = { "-o", "json", "--pin-dir", SELFTEST_PIN_DIR, "--cgroup", watched };
	size_t argc = 6;
	int waited_ms = 0;

	selftest_watched_cgroup(watched, sizeof(watched));
	for (size_t i = 0; args && args[i] && argc < 47; i++)
		argv[argc++] = args[i];
	argv[argc] = NULL;
	snprintf(agent->out_path, sizeof(agent->out_path), "/tmp/kaccess-selftest-%d.ndjson", getpid());
	snprintf(agent->err_path, sizeof(agent->err_path), "/tmp/kaccess-selftest-%d.log", getpid());
	unlink(agent->out_path);
	unlink(agent->err_path);
	agent->pid = spawn_kaccess(argv, agent->out_path, agent->err_path, env_assignment);
	if (agent->pid < 0)
		return -errno;
	/* JSON prints agent_ready; a table on a non-terminal a banner line. */
	while (!file_contains(agent->out_path, "\"agent_ready\"") &&
	       !file_contains(agent->out_path, "programs attached")) {
		if (waitpid(agent->pid, NULL, WNOHANG) == agent->pid || waited_ms >= READY_TIMEOUT_MS) {
			fprintf(stderr, "# kaccess did not become ready; its log:\n");
			show_log(agent->err_path);
			/* a stuck agent would hold the pin directory's lock for every later test */
			kill(agent->pid, SIGKILL);
			waitpid(agent->pid, NULL, 0);
			agent->pid = 0;
			return -ETIMEDOUT;
		}
		usleep(50000);
		waited_ms += 50;
	}
	return 0;
}

int agent_proc_stop(struct agent_proc *agent)
{
	int status;

	if (!agent || agent->pid <= 0)
		return 0;
	kill(agent->pid, SIGTERM);
	if (waitpid(agent->pid, &status, 0) < 0)
		return -1;
	agent->pid = 0;
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "# kaccess exited with status %d; its log:\n", status);
		show_log(agent->err_path);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

int agent_run_sync(const char *const args[], const char *env_assignment, char *output_text,
		   size_t len)
{
	char err_path[PATH_MAX];
	int status;
	pid_t pid;
	FILE *file;
	size_t got;

	snprintf(err_path, sizeof(err_path), "/tmp/kaccess-selftest-sync-%d.log", getpid());
	unlink(err_path);
	pid = spawn_kaccess(args, err_path, err_path, env_assignment);
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	file = fopen(err_path, "re");
	got = file ? fread(output_text, 1, len - 1, file) : 0;
	output_text[got] = '\0';
	if (file)
		fclose(file);
	unlink(err_path);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool kaccess_loads_with(const char *setting)
{
	const char *args[] = { "--check", "--set", setting, NULL };
	char output[8192];

	return agent_run_sync(args, NULL, output, sizeof(output)) == 0;
}

int agent_output_load(struct agent_output **ret_output, const char *path)
{
	struct agent_output *output = calloc(1, sizeof(*output));
	size_t capacity = 0;
	char *line = NULL;
	size_t line_len = 0;
	FILE *file = fopen(path, "re");

	if (!output || !file) {
		free(output);
		if (file)
			fclose(file);
		return -ENOENT;
	}
	while (getline(&line, &line_len, file) > 0) {
		json_object *object = json_tokener_parse(line);

		if (!object) {
			fprintf(stderr, "# not JSON: %s", line);
			continue;
		}
		if (output->count == capacity) {
			capacity = capacity ? capacity * 2 : 256;
			output->lines = realloc(output->lines, capacity * sizeof(*output->lines));
		}
		output->lines[output->count++] = object;
	}
	free(line);
	fclose(file);
	*ret_output = output;
	return 0;
}

void agent_output_free(struct agent_output *output)
{
	if (!output)
		return;
	for (size_t i = 0; i < output->count; i++)
		json_object_put(output->lines[i]);
	free(output->lines);
	free(output);
}

static const char *field_string(json_object *object, const char *key)
{
	json_object *value;

	if (!json_object_object_get_ex(object, key, &value) || json_object_is_type(value, json_type_null))
		return NULL;
	return json_object_get_string(value);
}

static uint64_t field_u64(json_object *object, const char *key)
{
	json_object *value;

	if (!json_object_object_get_ex(object, key, &value))
		return 0;
	return json_object_get_uint64(value);
}

static bool is_type(json_object *object, const char *type)
{
	const char *value = field_string(object, "type");

	return value && strcmp(value, type) == 0;
}

static bool string_matches(const char *value, const char *wanted)
{
	return !wanted || (value && strcmp(value, wanted) == 0);
}

struct agg_totals agent_output_sum(const struct agent_output *output, uint64_t cgroup_id,
				   const char *role, const char *peer, int peer_port)
{
	struct agg_totals totals = { 0 };

	for (size_t i = 0; i < output->count; i++) {
		json_object *row = output->lines[i];

		if (!is_type(row, "aggregate") || field_u64(row, "cgroup_id") != cgroup_id ||
		    !string_matches(field_string(row, "role"), role) ||
		    !string_matches(field_string(row, "peer"), peer) ||
		    (peer_port >= 0 && field_u64(row, "peer_port") != (uint64_t)peer_port))
			continue;
		totals.rows++;
#define ADD(name) totals.name += field_u64(row, #name)
		ADD(connect_count);
		ADD(connect_success_count);
		ADD(connect_duration_ns_sum);
		ADD(accept_count);
		ADD(accept_duration_ns_sum);
		ADD(close_count);
		ADD(close_untraced_count);
		ADD(close_duration_ns_sum);
		ADD(read_count);
		ADD(read_duration_ns_sum);
		ADD(read_bytes);
		ADD(write_count);
		ADD(write_duration_ns_sum);
		ADD(write_bytes);
#undef ADD
	}
	return totals;
}

/* `path` is a key, or "object.key" for a key of a nested object. */
static bool get_path(json_object *object, const char *path, json_object **ret_value)
{
	const char *dot = strchr(path, '.');
	char outer[128];

	if (!dot)
		return json_object_object_get_ex(object, path, ret_value);
	snprintf(outer, sizeof(outer), "%.*s", (int)(dot - path), path);
	return json_object_object_get_ex(object, outer, &object) &&
	       json_object_object_get_ex(object, dot + 1, ret_value);
}

uint64_t agent_output_field(const struct agent_output *output, uint64_t cgroup_id, const char *role,
			    const char *field, size_t *ret_rows_with_field)
{
	uint64_t sum = 0;
	json_object *value;

	*ret_rows_with_field = 0;
	for (size_t i = 0; i < output->count; i++) {
		json_object *row = output->lines[i];

		if (!is_type(row, "aggregate") || field_u64(row, "cgroup_id") != cgroup_id ||
		    !string_matches(field_string(row, "role"), role) || !get_path(row, field, &value))
			continue;
		(*ret_rows_with_field)++;
		sum += json_object_get_uint64(value);
	}
	return sum;
}

struct http_totals agent_output_http(const struct agent_output *output, uint64_t cgroup_id,
				     const char *role, const char *endpoint,
				     uint64_t hist_low_ms, uint64_t hist_high_ms)
{
	static const char *const classes[5] = {
		"http_status_1xx_count", "http_status_2xx_count", "http_status_3xx_count",
		"http_status_4xx_count", "http_status_5xx_count",
	};
	struct http_totals totals = { 0 };

	for (size_t i = 0; i < output->count; i++) {
		json_object *row = output->lines[i], *hist;

		if (!is_type(row, "http") || field_u64(row, "cgroup_id") != cgroup_id ||
		    !string_matches(field_string(row, "role"), role) ||
		    !string_matches(field_string(row, "endpoint"), endpoint))
			continue;
		totals.rows++;
		if (!field_string(row, "endpoint"))
			totals.endpoint_unnamed = true;
		totals.call_count += field_u64(row, "http_call_count");
		totals.success_count += field_u64(row, "http_success_count");
		for (int c = 0; c < 5; c++)
			totals.status[c] += field_u64(row, classes[c]);
		totals.no_response_count += field_u64(row, "http_no_response_count");
		totals.truncated_count += field_u64(row, "http_truncated_count");
		totals.request_header_bytes += field_u64(row, "http_request_header_bytes");
		totals.request_body_bytes += field_u64(row, "http_request_body_bytes");
		totals.response_header_bytes += field_u64(row, "http_response_header_bytes");
		totals.response_body_bytes += field_u64(row, "http_response_body_bytes");
		totals.duration_ns_sum += field_u64(row, "http_duration_ns_sum");
		if (!json_object_object_get_ex(row, "http_duration_ms_histogram", &hist))
			continue;
		json_object_object_foreach(hist, low, count) {
			uint64_t low_ms = strtoull(low, NULL, 10), n = json_object_get_uint64(count);

			totals.histogram_count += n;
			if (low_ms >= hist_low_ms && low_ms <= hist_high_ms)
				totals.histogram_in += n;
		}
	}
	return totals;
}

static void copy_field(json_object *object, const char *key, char *buf, size_t len)
{
	const char *value = field_string(object, key);

	snprintf(buf, len, "%s", value ? value : "");
}

static bool field_bool(json_object *object, const char *key)
{
	json_object *value;

	return json_object_object_get_ex(object, key, &value) && json_object_get_boolean(value);
}

size_t agent_output_http_records(const struct agent_output *output, uint64_t cgroup_id,
				 const char *role, struct http_record_seen *ret, size_t max)
{
	size_t count = 0;

	for (size_t i = 0; i < output->count; i++) {
		json_object *line = output->lines[i];
		struct http_record_seen *r;

		if (!is_type(line, "http_exchange") || field_u64(line, "cgroup_id") != cgroup_id ||
		    !string_matches(field_string(line, "role"), role))
			continue;
		if (count < max) {
			r = &ret[count];
			memset(r, 0, sizeof(*r));
			copy_field(line, "method", r->method, sizeof(r->method));
			copy_field(line, "path", r->path, sizeof(r->path));
			copy_field(line, "host", r->host, sizeof(r->host));
			copy_field(line, "version", r->version, sizeof(r->version));
			copy_field(line, "outcome", r->outcome, sizeof(r->outcome));
			copy_field(line, "sw8", r->sw8, sizeof(r->sw8));
			copy_field(line, "traceparent", r->traceparent, sizeof(r->traceparent));
			copy_field(line, "b3", r->b3, sizeof(r->b3));
			r->seq = field_u64(line, json_object_object_get_ex(line, "seq", NULL) ? "seq"
											  : "stream_id");
			r->status = field_u64(line, "status");
			r->local_port = field_u64(line, "local_port");
			r->remote_port = field_u64(line, "remote_port");
			r->start_boot_ns = field_u64(line, "start_boot_ns");
			r->end_boot_ns = field_u64(line, "end_boot_ns");
			r->request_header_bytes = field_u64(line, "request_header_bytes");
			r->request_body_bytes = field_u64(line, "request_body_bytes");
			r->response_header_bytes = field_u64(line, "response_header_bytes");
			r->response_body_bytes = field_u64(line, "response_body_bytes");
			r->request_calls = field_u64(line, "request_calls");
			r->request_call_ns = field_u64(line, "request_call_ns");
			r->response_calls = field_u64(line, "response_calls");
			r->response_call_ns = field_u64(line, "response_call_ns");
			r->head_cut = field_bool(line, "head_cut");
		}
		count++;
	}
	return count;
}

uint64_t agent_output_rows_of(const struct agent_output *output, uint64_t cgroup_id)
{
	uint64_t rows = 0;

	for (size_t i = 0; i < output->count; i++)
		if (is_type(output->lines[i], "aggregate") &&
		    field_u64(output->lines[i], "cgroup_id") == cgroup_id)
			rows++;
	return rows;
}

uint64_t agent_output_events(const struct agent_output *output, uint64_t cgroup_id,
			     const char *event, const char *role)
{
	uint64_t events = 0;

	for (size_t i = 0; i < output->count; i++) {
		json_object *line = output->lines[i];

		if (is_type(line, "connection") && field_u64(line, "cgroup_id") == cgroup_id &&
		    string_matches(field_string(line, "event"), event) &&
		    string_matches(field_string(line, "role"), role))
			events++;
	}
	return events;
}

size_t agent_output_buckets(const struct agent_output *output, uint64_t cgroup_id)
{
	uint64_t seen[1024];
	size_t distinct = 0;

	for (size_t i = 0; i < output->count; i++) {
		json_object *row = output->lines[i];
		uint64_t bucket;
		bool known = false;

		if (!is_type(row, "aggregate") || field_u64(row, "cgroup_id") != cgroup_id)
			continue;
		bucket = field_u64(row, "bucket_start_ms");
		for (size_t j = 0; j < distinct; j++)
			known |= seen[j] == bucket;
		if (!known && distinct < 1024)
			seen[distinct++] = bucket;
	}
	return distinct;
}

uint64_t agent_output_ready_u64(const struct agent_output *output, const char *key)
{
	json_object *value;

	for (size_t i = 0; i < output->count; i++)
		if (is_type(output->lines[i], "agent_ready"))
			return json_object_object_get_ex(output->lines[i], key, &value)
				       ? json_object_get_uint64(value) : UINT64_MAX;
	return UINT64_MAX;
}

size_t agent_output_lines_of_type(const struct agent_output *output, const char *type)
{
	size_t lines = 0;

	for (size_t i = 0; i < output->count; i++)
		lines += is_type(output->lines[i], type);
	return lines;
}

uint64_t agent_output_lost(const struct agent_output *output, const char *counter)
{
	for (size_t i = output->count; i-- > 0;) {
		json_object *lost;

		if (is_type(output->lines[i], "bucket") &&
		    json_object_object_get_ex(output->lines[i], "lost", &lost))
			return field_u64(lost, counter);
	}
	return UINT64_MAX;
}

static size_t conn_table_count(int map_fd, const uint64_t *cgroup_ids, size_t count)
{
	struct conn_rows conns = { 0 };
	size_t found = 0;

	conn_rows_collect(map_fd, &conns);
	for (size_t row = 0; row < conns.count; row++) {
		const struct kaccess_conn *conn = &conns.rows[row].conn;

		for (size_t i = 0; i < count; i++)
			found += conn->agg.cgroup_id == cgroup_ids[i] &&
				 conn->state == KACCESS_CONN_ESTABLISHED;
	}
	conn_rows_free(&conns);
	return found;
}

int wait_conn_table_count(const uint64_t *cgroup_ids, size_t count, size_t expected,
			  int timeout_ms)
{
	int map_fd = bpf_obj_get(SELFTEST_PIN_DIR "/conn_table");
	int ret = -ETIMEDOUT;

	if (map_fd < 0)
		return map_fd;
	for (int waited = 0; waited <= timeout_ms; waited += 20) {
		if (conn_table_count(map_fd, cgroup_ids, count) == expected) {
			ret = 0;
			break;
		}
		usleep(20000);
	}
	close(map_fd);
	return ret;
}

int wait_conn_table_empty(const uint64_t *cgroup_ids, size_t count, int timeout_ms)
{
	return wait_conn_table_count(cgroup_ids, count, 0, timeout_ms);
}

int agent_metrics_fetch(const char *url, char *buf, size_t len)
{
	char command[256];
	FILE *pipe;
	size_t got;

	snprintf(command, sizeof(command), "curl -s --max-time 2 %s", url);
	pipe = popen(command, "r");
	if (!pipe)
		return -1;
	got = fread(buf, 1, len - 1, pipe);
	buf[got] = '\0';
	return pclose(pipe) == 0 ? 0 : -1;
}

uint64_t agent_metric_sum(const char *text, const char *metric, const char *const *needles)
{
	size_t metric_len = strlen(metric);
	const char *line = text;
	uint64_t sum = 0;

	while (line && *line) {
		const char *end = strchr(line, '\n'), *space;
		char copy[1024];
		size_t len = end ? (size_t)(end - line) : strlen(line);
		bool match = len < sizeof(copy) && strncmp(line, metric, metric_len) == 0 &&
			     line[metric_len] == '{';

		if (match) {
			memcpy(copy, line, len);
			copy[len] = '\0';
			for (int i = 0; needles[i]; i++)
				match &= strstr(copy, needles[i]) != NULL;
			space = strrchr(copy, ' ');
			if (match && space)
				sum += strtoull(space + 1, NULL, 10);
		}
		line = end ? end + 1 : NULL;
	}
	return sum;
}

int agent_metrics_wait(const char *url, char *buf, size_t len, const char *metric,
		       const char *const *needles, uint64_t at_least, int timeout_ms)
{
	for (int waited_ms = 0;; waited_ms += 100) {
		if (agent_metrics_fetch(url, buf, len))
			return -1;
		if (agent_metric_sum(buf, metric, needles) >= at_least || waited_ms >= timeout_ms)
			return 0;
		usleep(100000);
	}
}
