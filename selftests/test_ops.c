// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Operating the agent: /metrics, /healthz and /readyz, `kaccess status`,
 * the README's bpftool commands, SIGHUP reloads and missing capabilities.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <elf.h>
#include <limits.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <json-c/json.h>

#include "agent_proc.h"
#include "ktest.h"
#include "pods.h"
#include "traffic.h"

#define TEXT_LEN (1 << 20)

static char text[TEXT_LEN];

/* Run a shell command; its stdout in `text`, its exit status returned. */
static int capture(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int capture(const char *fmt, ...)
{
	char command[2048];
	va_list ap;
	FILE *pipe;
	size_t got;
	int status;

	va_start(ap, fmt);
	vsnprintf(command, sizeof(command), fmt, ap);
	va_end(ap);
	pipe = popen(command, "r");
	if (!pipe)
		return -1;
	got = fread(text, 1, sizeof(text) - 1, pipe);
	text[got] = '\0';
	status = pclose(pipe);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

static uint64_t realtime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

FIXTURE(ops) {
	struct pod_pair pods;
	struct agent_proc agent;
	struct tcp_truth *truth;
	struct tcp_plan plan;
	struct held_conn held;
	struct agent_output *output;
	char listen[32];
	char config[128];
};

FIXTURE_SETUP(ops)
{
	REQUIRE_ROOT();
	self->held.release_fd = -1;
	ASSERT_EQ(0, pod_pair_create_for_test(&self->pods, "ops"));
	self->truth = truth_alloc();
	ASSERT_NE(NULL, self->truth);
	/* a port of our own: tests of other runs may listen at the same time */
	snprintf(self->listen, sizeof(self->listen), "127.0.0.1:%d", 20000 + getpid() % 20000);
	snprintf(self->config, sizeof(self->config), "/tmp/kaccess-selftest-ops-%d.conf", getpid());
	self->plan = (struct tcp_plan){
		.family = AF_INET,
		.server_addr = self->pods.server.ipv4,
		.port = 8080,
		.connections = 1,
		.request_writes = 2,
		.request_size = 100,
		.response_writes = 1,
		.response_size = 100,
	};
}

FIXTURE_TEARDOWN(ops)
{
	tcp_hold_release(&self->held);
	agent_proc_stop(&self->agent);
	agent_output_free(self->output);
	truth_free(self->truth);
	pod_pair_destroy(&self->pods);
	unlink(self->config);
}

static int http_get(const char *listen, const char *path)
{
	return capture("curl -s -w '\\n%%{http_code}' http://%s%s", listen, path);
}

/* The value of a metric line `name{labels...} value` whose labels hold `match`. */
static bool metric_value(const char *name, const char *match, char *ret_value, size_t len)
{
	char prefix[128];
	const char *line = text;

	snprintf(prefix, sizeof(prefix), "%s{", name);
	while ((line = strstr(line, prefix))) {
		const char *end = strchr(line, '\n'), *space = end ? memrchr(line, ' ', end - line) : NULL;

		if ((line == text || line[-1] == '\n') && space && (!match ||
		    (memmem(line, end - line, match, strlen(match)) != NULL))) {
			snprintf(ret_value, len, "%.*s", (int)(end - space - 1), space + 1);
			return true;
		}
		line += strlen(prefix);
	}
	return false;
}

/* The value of an unlabelled metric line `name value`, or false. */
static bool metric_scalar(const char *name, uint64_t *ret_value)
{
	char prefix[128];
	const char *line;

	snprintf(prefix, sizeof(prefix), "\n%s ", name);
	line = strstr(text, prefix);
	if (!line)
		return false;
	*ret_value = strtoull(line + strlen(prefix), NULL, 10);
	return true;
}

/* "12.000345678" seconds as nanoseconds, exactly. */
static uint64_t seconds_to_ns(const char *value)
{
	unsigned long long whole = 0, fraction = 0;

	sscanf(value, "%llu.%9llu", &whole, &fraction);
	return whole * 1000000000ULL + fraction;
}

static json_object *ndjson_row(const char *path, uint64_t cgroup_id, const char *role,
			       uint64_t bucket_start_ms)
{
	char line[4096];
	FILE *file = fopen(path, "r");
	json_object *found = NULL;

	while (file && !found && fgets(line, sizeof(line), file)) {
		json_object *row = json_tokener_parse(line), *value;

		if (row && json_object_object_get_ex(row, "type", &value) &&
		    strcmp(json_object_get_string(value), "aggregate") == 0 &&
		    json_object_object_get_ex(row, "cgroup_id", &value) &&
		    json_object_get_uint64(value) == cgroup_id &&
		    json_object_object_get_ex(row, "role", &value) &&
		    strcmp(json_object_get_string(value), role) == 0 &&
		    json_object_object_get_ex(row, "bucket_start_ms", &value) &&
		    json_object_get_uint64(value) == bucket_start_ms) {
			found = row;
			break;
		}
		json_object_put(row);
	}
	if (file)
		fclose(file);
	return found;
}

static uint64_t json_u64(json_object *row, const char *key)
{
	json_object *value;

	return json_object_object_get_ex(row, key, &value) ? json_object_get_uint64(value) : UINT64_MAX;
}

/*
 * /metrics shows the last completed bucket; each kaccess_bucket_* series of
 * the client pod equals the NDJSON row of that bucket, field by field.
 */
KTEST_F(ops, metrics_equal_ndjson_for_the_same_bucket, 120)
{
	static const struct { const char *metric, *field; bool seconds; } pairs[] = {
		{ "kaccess_bucket_connects", "connect_count", false },
		{ "kaccess_bucket_connects_succeeded", "connect_success_count", false },
		{ "kaccess_bucket_connect_time_seconds", "connect_duration_ns_sum", true },
		{ "kaccess_bucket_closes", "close_count", false },
		{ "kaccess_bucket_close_time_seconds", "close_duration_ns_sum", true },
		{ "kaccess_bucket_writes", "write_count", false },
		{ "kaccess_bucket_write_time_seconds", "write_duration_ns_sum", true },
		{ "kaccess_bucket_write_bytes", "write_bytes", false },
		{ "kaccess_bucket_reads", "read_count", false },
		{ "kaccess_bucket_read_bytes", "read_bytes", false },
	};
	const char *args[] = { "--interval", "2", "--set", NULL, NULL };
	char setting[64], match[64], value[64], *metrics;
	uint64_t wanted_bucket_ms = 0, first_bucket_ms;
	pid_t server, client;
	json_object *row;
	bool published = false;

	snprintf(setting, sizeof(setting), "http_listen=%s", self->listen);
	args[3] = setting;
	self->plan.request_writes = 60;
	self->plan.write_gap_ms = 100;
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	first_bucket_ms = realtime_ms() / 2000 * 2000;
	server = tcp_server_start(&self->pods.server, &self->plan, &self->truth->server);
	ASSERT_LT(0, server);
	client = tcp_client_start(&self->pods.client, &self->plan, &self->truth->client);
	ASSERT_LT(0, client);
	/*
	 * The client writes every 100 ms for 6 s: the first bucket published
	 * after the one it started in lies inside the traffic. Take /metrics
	 * as soon as that bucket is the last completed one.
	 */
	for (int waited_ms = 0; waited_ms < 20000 && !published; waited_ms += 50) {
		uint64_t start_s;

		ASSERT_EQ(0, http_get(self->listen, "/metrics"));
		published = metric_scalar("kaccess_bucket_start_timestamp_seconds", &start_s) &&
			    start_s * 1000 > first_bucket_ms;
		wanted_bucket_ms = published ? start_s * 1000 : 0;
		if (!published)
			usleep(50000);
	}
	ASSERT_TRUE(published) TH_LOG("no bucket after %llu was published", (unsigned long long)first_bucket_ms);
	metrics = strdup(text);
	ASSERT_NE(NULL, metrics);
	if (capture("command -v promtool") == 0) {
		FILE *save = fopen("/tmp/kaccess-selftest-metrics.txt", "w");

		ASSERT_NE(NULL, save);
		fputs(metrics, save);
		fclose(save);
		EXPECT_EQ(0, capture("head -n -1 /tmp/kaccess-selftest-metrics.txt | promtool check metrics 2>&1"))
			TH_LOG("promtool: %s", text);
	}
	ASSERT_EQ(0, child_wait(client));
	ASSERT_EQ(0, child_wait(server));
	snprintf(text, sizeof(text), "%s", metrics);
	free(metrics);
	ASSERT_EQ(0, agent_proc_stop(&self->agent));

	row = ndjson_row(self->agent.out_path, self->pods.client.cgroup_id, "client", wanted_bucket_ms);
	ASSERT_NE(NULL, row);
	EXPECT_LT(0, json_u64(row, "write_count"));
	snprintf(match, sizeof(match), "cgroup_id=\"%llu\",role=\"client\"",
		 (unsigned long long)self->pods.client.cgroup_id);
	for (size_t i = 0; i < sizeof(pairs) / sizeof(pairs[0]); i++) {
		ASSERT_TRUE(metric_value(pairs[i].metric, match, value, sizeof(value)))
			TH_LOG("%s missing", pairs[i].metric);
		EXPECT_EQ(json_u64(row, pairs[i].field),
			  pairs[i].seconds ? seconds_to_ns(value) : strtoull(value, NULL, 10))
			TH_LOG("%s = %s", pairs[i].metric, value);
	}
	json_object_put(row);
}

KTEST_F(ops, health_endpoints_answer_and_others_do_not, 120)
{
	const char *args[] = { "--set", NULL, NULL };
	char setting[64];

	snprintf(setting, sizeof(setting), "http_listen=%s", self->listen);
	args[1] = setting;
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	ASSERT_EQ(0, http_get(self->listen, "/healthz"));
	EXPECT_STREQ("ok\n\n200", text);
	ASSERT_EQ(0, http_get(self->listen, "/readyz"));
	EXPECT_STREQ("ready\n\n200", text);
	ASSERT_EQ(0, http_get(self->listen, "/secret"));
	EXPECT_NE(NULL, strstr(text, "404"));
	ASSERT_EQ(0, capture("curl -s -o /dev/null -w '%%{http_code}' -X POST http://%s/metrics", self->listen));
	EXPECT_STREQ("405", text);
	ASSERT_EQ(0, agent_proc_stop(&self->agent));
	/* gone with the agent */
	EXPECT_NE(0, http_get(self->listen, "/healthz"));
}

/* After known traffic: the fill of each map, the agent's pid and programs. */
KTEST_F(ops, status_shows_fill_after_known_traffic, 120)
{
	uint64_t ids[] = { self->pods.client.cgroup_id, self->pods.server.cgroup_id };
	json_object *status, *maps, *programs, *value;
	uint64_t hour_before, rows = 0;

	hour_before = realtime_ms() / 3600000;
	ASSERT_EQ(0, agent_proc_start(&self->agent, (const char *[]){ "--interval", "3600", NULL }));
	ASSERT_EQ(0, tcp_hold_open(&self->pods.client, &self->pods.server, &self->plan, self->truth,
				   &self->held));
	ASSERT_EQ(0, wait_conn_table_count(ids, 2, 2, 5000));
	for (int waited_ms = 0; self->truth->server.read_bytes < 200 && waited_ms < 5000; waited_ms += 10)
		usleep(10000);

	ASSERT_EQ(0, capture("%s status --pin-dir %s --json", kaccess_binary(), SELFTEST_PIN_DIR));
	status = json_tokener_parse(text);
	ASSERT_NE(NULL, status) TH_LOG("%s", text);
	ASSERT_TRUE(json_object_object_get_ex(status, "agent_pid", &value));
	EXPECT_EQ(self->agent.pid, json_object_get_int(value));
	ASSERT_TRUE(json_object_object_get_ex(status, "maps", &maps));
	EXPECT_EQ(2, json_u64(json_object_array_get_idx(maps, 0), "entries")); /* conn_table */
	EXPECT_EQ(131072, json_u64(json_object_array_get_idx(maps, 0), "max_entries"));
	for (int i = 1; i <= 2; i++)
		rows += json_u64(json_object_array_get_idx(maps, i), "entries");
	/* a client row and a server row, in the one hour-long bucket */
	if (realtime_ms() / 3600000 == hour_before)
		EXPECT_EQ(2, rows);
	ASSERT_TRUE(json_object_object_get_ex(status, "programs", &programs));
	ASSERT_EQ(0, agent_output_load(&self->output, self->agent.out_path));
	/* every attached program, the two iterators (startup adoption, sweep)
	 * and agg_flush_cpu, which the shipper runs before each drain */
	EXPECT_EQ(agent_output_ready_u64(self->output, "programs_attached") + 3,
		  json_object_array_length(programs));
	json_object_put(status);

	/* the text form names the maps and the agent */
	ASSERT_EQ(0, capture("%s status --pin-dir %s", kaccess_binary(), SELFTEST_PIN_DIR));
	EXPECT_NE(NULL, strstr(text, "kaccess agent running"));
	EXPECT_NE(NULL, strstr(text, "conn_table"));
	EXPECT_NE(NULL, strstr(text, "LOST none"));
}

/* Each `bpftool ... /sys/fs/bpf/kaccess/...` line of the README, as written. */
KTEST_F(ops, readme_bpftool_commands_work, 120)
{
	uint64_t ids[] = { self->pods.client.cgroup_id, self->pods.server.cgroup_id };
	char line[512], *command, expected[64];
	FILE *readme = fopen("README.md", "r");
	bool conn_table_shown = false, row_shown = false;
	int commands = 0;

	ASSERT_NE(NULL, readme);
	ASSERT_EQ(0, agent_proc_start(&self->agent, NULL));
	ASSERT_EQ(0, tcp_hold_open(&self->pods.client, &self->pods.server, &self->plan, self->truth,
				   &self->held));
	ASSERT_EQ(0, wait_conn_table_count(ids, 2, 2, 5000));
	snprintf(expected, sizeof(expected), "%llu", (unsigned long long)self->pods.client.cgroup_id);
	while (fgets(line, sizeof(line), readme)) {
		char *pin = strstr(line, "/sys/fs/bpf/kaccess/");

		if (strncmp(line, "bpftool ", 8) || !pin)
			continue;
		line[strcspn(line, "#\n")] = '\0';
		/* our pin directory instead of the default */
		*pin = '\0';
		if (asprintf(&command, "%s%s/%s 2>&1", line, SELFTEST_PIN_DIR,
			     pin + strlen("/sys/fs/bpf/kaccess/")) < 0)
			break;
		EXPECT_EQ(0, capture("%s", command)) TH_LOG("%s: %s", command, text);
		/* field names, not hex bytes: the maps carry BTF */
		if (strstr(command, "conn_table"))
			conn_table_shown |= strstr(text, expected) && strstr(text, "\"remote_port\"");
		if (strstr(command, "agg_gen"))
			row_shown |= strstr(text, expected) && strstr(text, "\"write_bytes\"");
		if (strstr(command, "counters"))
			EXPECT_NE(NULL, strstr(text, "\"values\"")) TH_LOG("%s: %.300s", command, text);
		free(command);
		commands++;
	}
	fclose(readme);
	EXPECT_LE(5, commands);
	EXPECT_TRUE(conn_table_shown);
	EXPECT_TRUE(row_shown); /* the current bucket's rows are in one of the two generations */
}

static void write_file(const char *path, const char *body)
{
	FILE *file = fopen(path, "w");

	if (file) {
		fputs(body, file);
		fclose(file);
	}
}

static bool log_contains(const char *path, const char *needle, int timeout_ms)
{
	for (int waited = 0; waited <= timeout_ms; waited += 50) {
		if (capture("cat %s", path) == 0 && strstr(text, needle))
			return true;
		usleep(50000);
	}
	return false;
}

/* A valid reload applies what it can; an invalid one changes nothing. */
KTEST_F(ops, sighup_reloads_valid_config_and_rejects_invalid, 120)
{
	const char *args[] = { "--config", self->config, NULL };

	write_file(self->config, "log_level = info\ninterval_s = 60\n");
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));

	write_file(self->config, "log_level = debug\ninterval_s = 30\nrefresh_ms = 500\n");
	ASSERT_EQ(0, kill(self->agent.pid, SIGHUP));
	EXPECT_TRUE(log_contains(self->agent.err_path, "config reloaded: 2 settings changed", 5000));
	EXPECT_TRUE(log_contains(self->agent.err_path,
				 "'interval_s' changed but only takes effect after a restart", 0));

	write_file(self->config, "log_level = debug\nbogus_key = 1\n");
	ASSERT_EQ(0, kill(self->agent.pid, SIGHUP));
	EXPECT_TRUE(log_contains(self->agent.err_path, ":2: unknown key 'bogus_key'", 5000));
	EXPECT_TRUE(log_contains(self->agent.err_path, "config reload rejected; keeping the running settings", 0));
	EXPECT_EQ(0, kill(self->agent.pid, 0)); /* still running */
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	EXPECT_EQ(0, wait_conn_table_empty(&self->pods.client.cgroup_id, 1, 5000));
	ASSERT_EQ(0, agent_proc_stop(&self->agent));
	ASSERT_EQ(0, agent_output_load(&self->output, self->agent.out_path));
	EXPECT_EQ(200, agent_output_sum(self->output, self->pods.client.cgroup_id, "client", NULL, -1).write_bytes);
}

/*
 * kaccess started with `dropped` capabilities removed from the bounding set:
 * root's exec then grants everything but those. Its exit status; its output
 * in `text`.
 */
static int run_without_capabilities(const int *dropped, size_t count)
{
	char log_path[64];
	int status;
	pid_t pid;
	FILE *log;
	size_t got;

	snprintf(log_path, sizeof(log_path), "/tmp/kaccess-selftest-caps-%d.log", getpid());
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0600);

		dup2(fd, STDOUT_FILENO);
		dup2(fd, STDERR_FILENO);
		for (size_t i = 0; i < count; i++)
			prctl(PR_CAPBSET_DROP, dropped[i], 0, 0, 0);
		execl(kaccess_binary(), kaccess_binary(), "--pin-dir", "", "--duration", "1", NULL);
		_exit(127);
	}
	if (pid < 0 || waitpid(pid, &status, 0) < 0)
		return -1;
	log = fopen(log_path, "r");
	got = log ? fread(text, 1, sizeof(text) - 1, log) : 0;
	text[got] = '\0';
	if (log)
		fclose(log);
	unlink(log_path);
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Without CAP_BPF (nor CAP_SYS_ADMIN, which would stand in for it). */
/* ---- the shipper's resident set: the ring's data mapped once, the object given back ---- */

#define RING_KIB 1024
#define RING_KIB_SETTING "ringbuf_kib=1024"

/* Sizes of the agent's mappings of BPF maps: how many are `bytes` long. */
static int bpf_map_mappings_of(pid_t pid, size_t bytes)
{
	char path[64], line[512];
	unsigned long start, end;
	int found = 0;
	FILE *maps;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	maps = fopen(path, "r");
	while (maps && fgets(line, sizeof(line), maps))
		if (strstr(line, "anon_inode:bpf-map") && sscanf(line, "%lx-%lx", &start, &end) == 2 &&
		    end - start == bytes)
			found++;
	if (maps)
		fclose(maps);
	return found;
}

/* Where the BPF object (ELF64, EM_BPF) sits in the binary's file: 0 or -1. */
static int find_bpf_object(const char *binary, off_t *ret_offset, size_t *ret_bytes)
{
	int fd = open(binary, O_RDONLY);
	static unsigned char file[16 << 20];
	ssize_t len = fd < 0 ? -1 : read(fd, file, sizeof(file));

	if (fd >= 0)
		close(fd);
	for (ssize_t at = 0; at + (ssize_t)sizeof(Elf64_Ehdr) <= len; at++) {
		Elf64_Ehdr header;

		if (memcmp(file + at, ELFMAG, SELFMAG))
			continue;
		memcpy(&header, file + at, sizeof(header));
		if (header.e_ident[EI_CLASS] != ELFCLASS64 || header.e_machine != EM_BPF)
			continue;
		*ret_offset = at;
		*ret_bytes = header.e_shoff + (size_t)header.e_shnum * header.e_shentsize;
		return 0;
	}
	return -1;
}

/* The address at which `pid` maps offset `offset` of file `binary`: 0 if it does not. */
static unsigned long mapped_address_of(pid_t pid, const char *binary, off_t offset)
{
	char path[64], line[PATH_MAX + 128], mapped[PATH_MAX], real[PATH_MAX];
	unsigned long start, end, file_offset, found = 0;
	FILE *maps;

	if (!realpath(binary, real))
		return 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	maps = fopen(path, "r");
	while (maps && fgets(line, sizeof(line), maps))
		if (sscanf(line, "%lx-%lx %*s %lx %*s %*s %s", &start, &end, &file_offset, mapped) == 4 &&
		    !strcmp(mapped, real) && (unsigned long)offset >= file_offset &&
		    (unsigned long)offset < file_offset + (end - start))
			found = start + (offset - file_offset);
	if (maps)
		fclose(maps);
	return found;
}

/* How many of the pages [first, first + count) of `pid` are resident (pagemap bit 63). */
static int resident_pages(pid_t pid, unsigned long first, unsigned long count, size_t page)
{
	char path[64];
	int fd, resident = 0;

	snprintf(path, sizeof(path), "/proc/%d/pagemap", pid);
	fd = open(path, O_RDONLY);
	if (fd < 0)
		return -1;
	for (unsigned long i = 0; i < count; i++) {
		uint64_t entry = 0;

		if (pread(fd, &entry, sizeof(entry), (off_t)((first / page + i) * sizeof(entry))) == sizeof(entry))
			resident += (int)(entry >> 63);
	}
	close(fd);
	return resident;
}

KTEST_F(ops, shipper_maps_ring_data_once_and_gives_back_the_object, 60)
{
	const char *args[] = { "--interval", "3600", "--set", RING_KIB_SETTING, NULL };
	size_t page = sysconf(_SC_PAGESIZE), object_bytes = 0;
	unsigned long address, first_page, whole_pages;
	off_t object_offset = 0;

	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	/* the producer page and the data, once; libbpf's reader mapped the data twice */
	EXPECT_EQ(1, bpf_map_mappings_of(self->agent.pid, page + RING_KIB * 1024));
	EXPECT_EQ(0, bpf_map_mappings_of(self->agent.pid, page + 2 * RING_KIB * 1024));

	ASSERT_EQ(0, find_bpf_object(kaccess_binary(), &object_offset, &object_bytes));
	address = mapped_address_of(self->agent.pid, kaccess_binary(), object_offset);
	ASSERT_NE(0, address) TH_LOG("the agent does not map its binary's BPF object");
	first_page = (address + page - 1) & ~(page - 1);
	whole_pages = ((address + object_bytes) & ~(page - 1)) > first_page ?
			      (((address + object_bytes) & ~(page - 1)) - first_page) / page : 0;
	ASSERT_LT(100, whole_pages) TH_LOG("object of %zu bytes", object_bytes);
	EXPECT_EQ(0, resident_pages(self->agent.pid, first_page, whole_pages, page))
		TH_LOG("of the object's %lu whole pages", whole_pages);
}

TEST(missing_cap_bpf_is_named)
{
	const int no_bpf[] = { CAP_BPF, CAP_SYS_ADMIN }, no_perfmon[] = { CAP_PERFMON, CAP_SYS_ADMIN };

	REQUIRE_ROOT();
	EXPECT_EQ(1, run_without_capabilities(no_bpf, 2));
	EXPECT_NE(NULL, strstr(text, "missing capability CAP_BPF")) TH_LOG("%s", text);
	EXPECT_EQ(1, run_without_capabilities(no_perfmon, 2));
	EXPECT_NE(NULL, strstr(text, "missing capability CAP_PERFMON")) TH_LOG("%s", text);
}

TEST_HARNESS_MAIN
