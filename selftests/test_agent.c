// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent as a user meets it: command line, config errors, a kernel that
 * lacks a feature, pinned maps read with bpftool, one instance per pin
 * directory, signals, and the table output.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent_proc.h"
#include "ktest.h"
#include "pods.h"
#include "traffic.h"

#define OUTPUT_LEN 16384

static char output[OUTPUT_LEN];

/* A config file with the given body; its path in `path`. */
static void write_config(char *path, size_t len, const char *body)
{
	FILE *file;

	snprintf(path, len, "/tmp/kaccess-selftest-config-%d.conf", getpid());
	file = fopen(path, "w");
	if (file) {
		fputs(body, file);
		fclose(file);
	}
}

TEST(help_shows_usage_and_examples)
{
	const char *args[] = { "--help", NULL };

	ASSERT_EQ(0, agent_run_sync(args, NULL, output, sizeof(output)));
	EXPECT_NE(NULL, strstr(output, "Usage: kaccess [OPTIONS]"));
	EXPECT_NE(NULL, strstr(output, "Examples:"));
	EXPECT_NE(NULL, strstr(output, "interval_s"));
}

TEST(version_prints_version)
{
	const char *args[] = { "--version", NULL };

	ASSERT_EQ(0, agent_run_sync(args, NULL, output, sizeof(output)));
	EXPECT_EQ(0, strncmp(output, "kaccess " KACCESS_VERSION " (", strlen("kaccess " KACCESS_VERSION " (")));
}

TEST(unknown_config_key_exits_2_naming_line_and_key)
{
	char path[256], expected[512];
	const char *args[] = { "--config", path, NULL };

	write_config(path, sizeof(path), "# comment\noutput = json\nbogus_key = 1\n");
	ASSERT_EQ(2, agent_run_sync(args, NULL, output, sizeof(output)));
	snprintf(expected, sizeof(expected), "%s:3: unknown key 'bogus_key'", path);
	EXPECT_NE(NULL, strstr(output, expected)) TH_LOG("output: %s", output);
	unlink(path);
}

TEST(bad_config_value_exits_2_naming_range)
{
	char path[256], expected[512];
	const char *args[] = { "--config", path, NULL };

	write_config(path, sizeof(path), "interval_s = 0\n");
	ASSERT_EQ(2, agent_run_sync(args, NULL, output, sizeof(output)));
	snprintf(expected, sizeof(expected),
		 "%s:1: interval_s: '0' is not an integer in 1..3600 (seconds)", path);
	EXPECT_NE(NULL, strstr(output, expected)) TH_LOG("output: %s", output);

	write_config(path, sizeof(path), "\n\nringbuf_kib = 100\n");
	ASSERT_EQ(2, agent_run_sync(args, NULL, output, sizeof(output)));
	snprintf(expected, sizeof(expected),
		 "%s:3: ringbuf_kib: '100' is not a power of two in 16..65536 (KiB)", path);
	EXPECT_NE(NULL, strstr(output, expected)) TH_LOG("output: %s", output);

	write_config(path, sizeof(path), "output = xml\n");
	ASSERT_EQ(2, agent_run_sync(args, NULL, output, sizeof(output)));
	EXPECT_NE(NULL, strstr(output, ":1: output: 'xml' is not one of: table, json"));

	write_config(path, sizeof(path), "just words\n");
	ASSERT_EQ(2, agent_run_sync(args, NULL, output, sizeof(output)));
	EXPECT_NE(NULL, strstr(output, ":1: expected 'key = value', got 'just words'"));
	unlink(path);
}

TEST(cgroup_that_does_not_exist_exits_2)
{
	const char *args[] = { "--cgroup", "/no-such-cgroup", "--pin-dir", "", NULL };

	REQUIRE_ROOT();
	ASSERT_EQ(2, agent_run_sync(args, NULL, output, sizeof(output)));
	EXPECT_NE(NULL, strstr(output, "cgroup: '/no-such-cgroup' is not a cgroup v2 directory"))
		TH_LOG("output: %s", output);
}

TEST(missing_config_file_exits_2)
{
	const char *args[] = { "--config", "/nonexistent/kaccess.conf", NULL };

	ASSERT_EQ(2, agent_run_sync(args, NULL, output, sizeof(output)));
	EXPECT_NE(NULL, strstr(output, "/nonexistent/kaccess.conf: No such file or directory"));
}

TEST(bad_flags_exit_2)
{
	const char *bad_interval[] = { "--interval", "9x", NULL };
	const char *unknown[] = { "--frobnicate", NULL };
	const char *stray[] = { "stray", NULL };
	const char *bad_set[] = { "--set", "conn_table_max_entries=1", NULL };

	ASSERT_EQ(2, agent_run_sync(bad_interval, NULL, output, sizeof(output)));
	EXPECT_NE(NULL, strstr(output, "--interval: interval_s: '9x' is not an integer in 1..3600"));
	ASSERT_EQ(2, agent_run_sync(unknown, NULL, output, sizeof(output)));
	EXPECT_NE(NULL, strstr(output, "unknown or incomplete option '--frobnicate'"));
	ASSERT_EQ(2, agent_run_sync(stray, NULL, output, sizeof(output)));
	EXPECT_NE(NULL, strstr(output, "unexpected argument 'stray'"));
	ASSERT_EQ(2, agent_run_sync(bad_set, NULL, output, sizeof(output)));
	EXPECT_NE(NULL, strstr(output, "conn_table_max_entries: '1' is not an integer in 1024..16777216"));
}

/* The probe is real; KACCESS_FEATURE_DENY makes it report a feature as absent. */
TEST(missing_kernel_feature_exits_1_naming_it)
{
	const char *args[] = { "--pin-dir", "", "--duration", "1", NULL };
	const char *bad_btf[] = { "--set", "btf_path=/nonexistent/vmlinux", "--pin-dir", "",
				  "--duration", "1", NULL };

	REQUIRE_ROOT();
	ASSERT_EQ(1, agent_run_sync(args, "KACCESS_FEATURE_DENY=task_storage", output, sizeof(output)));
	EXPECT_NE(NULL, strstr(output, "lacks task_storage: BPF task storage maps (Linux 5.11)"))
		TH_LOG("output: %s", output);
	ASSERT_EQ(1, agent_run_sync(args, "KACCESS_FEATURE_DENY=ringbuf,bpf_loop", output, sizeof(output)));
	EXPECT_NE(NULL, strstr(output, "lacks ringbuf"));
	ASSERT_EQ(1, agent_run_sync(bad_btf, NULL, output, sizeof(output)));
	EXPECT_NE(NULL, strstr(output, "lacks btf: kernel BTF"));
}

/*
 * Tests that load every program several times: under QEMU's emulation the
 * verifier is ~10x slower, so they get more than the harness's 30 s.
 */
FIXTURE(loads) {
	int unused;
};

FIXTURE_SETUP(loads)
{
	REQUIRE_ROOT();
}

FIXTURE_TEARDOWN(loads)
{
}

/* "auto": fentry where it loads, else the sock tracepoints where they exist, else fd. */
KTEST_F(loads, auto_hooks_follow_the_kernel, 300)
{
	bool has_tracepoints = access("/sys/kernel/tracing/events/sock/sock_send_length", F_OK) == 0;
	const char *args[] = { "-o", "json", "--pin-dir", "", "--duration", "1", NULL };
	bool has_fentry;

	REQUIRE_ROOT();
	has_fentry = kaccess_loads_with("hooks=fentry");
	ASSERT_EQ(0, agent_run_sync(args, NULL, output, sizeof(output)));
	EXPECT_NE(NULL, strstr(output, has_fentry ? "\"hooks\":\"fentry\""
				       : has_tracepoints ? "\"hooks\":\"sock\"" : "\"hooks\":\"fd\""))
		TH_LOG("fentry %d, tracepoints %d, output: %s", has_fentry, has_tracepoints, output);
	/* without fentry, auto falls back (the probe is told to find none) */
	ASSERT_EQ(0, agent_run_sync(args, "KACCESS_FEATURE_DENY=fentry", output, sizeof(output)));
	EXPECT_NE(NULL, strstr(output, has_tracepoints ? "\"hooks\":\"sock\"" : "\"hooks\":\"fd\""))
		TH_LOG("output: %s", output);
}

/* The exits of calls whose bytes cannot be read: built without the parsers' byte paths. */
static bool payloadless_exit(const char *program)
{
	static const char *const names[] = {
		"sendfile64_exit", "sendmmsg_exit", "recvmmsg_exit",
		"sendfile64_fexit", "sendmmsg_fexit", "recvmmsg_fexit",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (!strcmp(program, names[i]))
			return true;
	return false;
}

/*
 * Every program of a variant passes the verifier on this kernel. The
 * verifier's instruction counts go into the TAP output, so that a jump on
 * one kernel shows in CI. The payload-less exits stay a small part of the
 * largest program (about a tenth on 6.18): the parsers' byte paths are
 * most of the verifier's time under QEMU.
 */
static void check_variant(struct __test_metadata *_metadata, const char *hooks,
			  int expected_programs)
{
	const char *args[] = { "--check", "-o", "json", "--set", hooks, NULL };
	unsigned int largest = 0, largest_payloadless = 0;
	int programs = 0;
	char *line;

	ASSERT_EQ(0, agent_run_sync(args, NULL, output, sizeof(output))) TH_LOG("%s", output);
	for (line = strstr(output, "{\"type\":\"program\""); line;
	     line = strstr(line + 1, "{\"type\":\"program\"")) {
		char name[64] = "";
		unsigned int insns = 0;

		ASSERT_EQ(2, sscanf(line, "{\"type\":\"program\",\"name\":\"%63[^\"]\",%*[^:]:%*[^,],"
					"\"verified_insns\":%u", name, &insns)) TH_LOG("%.200s", line);
		EXPECT_LT(0, insns);
		TH_LOG("%s %s: %u verified instructions", hooks, name, insns);
		programs++;
		if (insns > largest)
			largest = insns;
		if (payloadless_exit(name) && insns > largest_payloadless)
			largest_payloadless = insns;
	}
	EXPECT_EQ(expected_programs, programs);
	if (strcmp(hooks, "hooks=tcp")) /* the "tcp" hooks see sendfile and mmsg at the socket */
		EXPECT_LT(0, largest_payloadless);
	EXPECT_LT(4 * largest_payloadless, largest)
		TH_LOG("%s: a payload-less exit verified %u instructions, the largest program %u",
		       hooks, largest_payloadless, largest);
}

/*
 * The L2-L4 programs this kernel loads: one per tracepoint it has (tracefs
 * lists them), and the two netfilter programs where links exist (6.4+).
 */
static int l24_programs_here(void)
{
	static const char *const events[] = {
		"net/net_dev_queue", "qdisc/qdisc_enqueue", "net/net_dev_start_xmit",
		"net/net_dev_xmit", "tcp/tcp_retransmit_skb", "tcp/tcp_sendmsg_locked",
		"neigh/neigh_create", "neigh/neigh_event_send_done", "neigh/neigh_update",
		"neigh/neigh_update_done", "net/netif_receive_skb", "tcp/tcp_probe",
		"sock/sk_data_ready", "skb/skb_copy_datagram_iovec",
		"skb/kfree_skb", /* with its drop reason on every kernel kaccess supports */
	};
	struct utsname uts;
	int programs = 0, major = 0, minor = 0;
	char path[128];

	for (size_t i = 0; i < sizeof(events) / sizeof(events[0]); i++) {
		snprintf(path, sizeof(path), "/sys/kernel/tracing/events/%s", events[i]);
		programs += access(path, F_OK) == 0;
	}
	uname(&uts);
	sscanf(uts.release, "%d.%d", &major, &minor);
	if (major > 6 || (major == 6 && minor >= 4))
		programs += 2; /* nf_first, nf_last */
	return programs;
}

/* What the "tcp" hooks need (tracefs lists the kernel's tracepoints). */
static bool has_tcp_hook_tracepoints(void)
{
	return access("/sys/kernel/tracing/events/tcp/tcp_sendmsg_locked", F_OK) == 0 &&
	       access("/sys/kernel/tracing/events/skb/skb_copy_datagram_iovec", F_OK) == 0 &&
	       access("/sys/kernel/tracing/events/sock/sock_send_length", F_OK) == 0;
}

/* Each count includes agg_flush_cpu, which every hook set loads (run on demand). */
KTEST_F(loads, every_variant_verifies, 300)
{
	/* fd: one exit program per family (read_exit, write_exit) for eight syscalls */
	check_variant(_metadata, "hooks=fd", 29 + l24_programs_here());
	if (access("/sys/kernel/tracing/events/sock/sock_send_length", F_OK) == 0)
		check_variant(_metadata, "hooks=sock", 29 + l24_programs_here());
	if (kaccess_loads_with("hooks=fentry"))
		check_variant(_metadata, "hooks=fentry", 23 + l24_programs_here());
	/*
	 * No l24_tcp_sendmsg_locked there (the write's own start is where its
	 * L4 time starts), and one program on the reader's copy in place of
	 * tcpio_read_begin and l24_skb_copy_datagram_iovec.
	 */
	if (has_tcp_hook_tracepoints())
		check_variant(_metadata, "hooks=tcp", 9 + l24_programs_here() - 2);
}

/* Forcing a hook set the kernel lacks is a clear error. */
TEST(forced_hook_sets_the_kernel_lacks_exit_1)
{
	const char *forced[] = { "--pin-dir", "", "--duration", "1", "--set", "hooks=sock", NULL };

	REQUIRE_ROOT();
	ASSERT_EQ(1, agent_run_sync(forced, "KACCESS_FEATURE_DENY=sock_length_tracepoints", output,
				    sizeof(output)));
	EXPECT_NE(NULL, strstr(output, "hooks = sock needs the sock:sock_send_length and "
				       "sock_recv_length tracepoints (Linux 6.3)"))
		TH_LOG("output: %s", output);
	forced[5] = "hooks=fentry";
	ASSERT_EQ(1, agent_run_sync(forced, "KACCESS_FEATURE_DENY=fentry", output, sizeof(output)));
	EXPECT_NE(NULL, strstr(output, "hooks = fentry needs fentry/fexit programs"))
		TH_LOG("output: %s", output);
	forced[5] = "hooks=tcp";
	ASSERT_EQ(1, agent_run_sync(forced, "KACCESS_FEATURE_DENY=sock_length_tracepoints", output,
				    sizeof(output)));
	EXPECT_NE(NULL, strstr(output, "hooks = tcp needs the tcp:tcp_sendmsg_locked, "
				       "skb:skb_copy_datagram_iovec and sock:sock_{send,recv}_length"))
		TH_LOG("output: %s", output);
}

FIXTURE(live) {
	struct pod_pair pods;
	struct agent_proc agent;
	struct tcp_truth *truth;
	struct held_conn held;
	struct tcp_plan plan;
};

FIXTURE_SETUP(live)
{
	REQUIRE_ROOT();
	self->held.release_fd = -1;
	ASSERT_EQ(0, pod_pair_create_for_test(&self->pods, "agt"));
	self->truth = truth_alloc();
	ASSERT_NE(NULL, self->truth);
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

FIXTURE_TEARDOWN(live)
{
	tcp_hold_release(&self->held);
	agent_proc_stop(&self->agent);
	truth_free(self->truth);
	pod_pair_destroy(&self->pods);
}

static int count_programs_named(const char *name)
{
	char command[256];
	int count = -1;
	FILE *pipe;

	snprintf(command, sizeof(command), "bpftool prog show name %s 2>/dev/null | grep -c '^[0-9]*: '", name);
	pipe = popen(command, "r");
	if (!pipe)
		return -1;
	if (fscanf(pipe, "%d", &count) != 1)
		count = -1;
	pclose(pipe);
	return count;
}

/* bpftool shows pinned maps with field names; pins and programs go at exit. */
KTEST_F(live, pinned_maps_read_with_bpftool_and_removed_at_exit, 120)
{
	uint64_t ids[] = { self->pods.client.cgroup_id, self->pods.server.cgroup_id };
	char command[512], expected[64];
	int programs_before = count_programs_named("tcp_destroy");
	struct stat st;
	FILE *dump;
	size_t got;

	ASSERT_EQ(0, agent_proc_start(&self->agent, NULL));
	EXPECT_EQ(programs_before + 1, count_programs_named("tcp_destroy"));
	ASSERT_EQ(0, stat(SELFTEST_PIN_DIR "/conn_table", &st));
	EXPECT_EQ(0600, st.st_mode & 0777);
	ASSERT_EQ(0, tcp_hold_open(&self->pods.client, &self->pods.server, &self->plan, self->truth,
				   &self->held));
	ASSERT_EQ(0, wait_conn_table_count(ids, 2, 2, 5000));

	/* The README's command, as written. */
	snprintf(command, sizeof(command), "bpftool -j map dump pinned %s/conn_table", SELFTEST_PIN_DIR);
	dump = popen(command, "r");
	ASSERT_NE(NULL, dump);
	got = fread(output, 1, sizeof(output) - 1, dump);
	output[got] = '\0';
	pclose(dump);
	snprintf(expected, sizeof(expected), "\"cgroup_id\":%llu", (unsigned long long)self->pods.client.cgroup_id);
	EXPECT_NE(NULL, strstr(output, expected)) TH_LOG("dump: %.2000s", output);
	EXPECT_NE(NULL, strstr(output, "\"local_port\":8080"));
	EXPECT_NE(NULL, strstr(output, "\"remote_port\":8080"));

	ASSERT_EQ(0, tcp_hold_release(&self->held));
	ASSERT_EQ(0, agent_proc_stop(&self->agent));
	EXPECT_NE(0, stat(SELFTEST_PIN_DIR, &st));
	EXPECT_EQ(programs_before, count_programs_named("tcp_destroy"));
}

KTEST_F(live, second_agent_on_same_pin_dir_is_refused, 120)
{
	char watched[512];
	const char *args[] = { "--pin-dir", SELFTEST_PIN_DIR, "--duration", "1", NULL };

	ASSERT_EQ(0, selftest_watched_cgroup(watched, sizeof(watched)));
	ASSERT_EQ(0, agent_proc_start(&self->agent, NULL));
	ASSERT_EQ(1, agent_run_sync(args, NULL, output, sizeof(output)));
	EXPECT_NE(NULL, strstr(output, "another kaccess (pid"));
	EXPECT_NE(NULL, strstr(output, "uses pin directory " SELFTEST_PIN_DIR));
	/* The first one is unharmed: its pins are still there. */
	EXPECT_EQ(0, access(SELFTEST_PIN_DIR "/conn_table", F_OK));
}

/* SIGINT ends the agent like SIGTERM: final drain, exit 0, no pins left. */
KTEST_F(live, sigint_drains_and_exits_0, 120)
{
	struct agent_output *out = NULL;
	struct agg_totals client;
	int status;

	ASSERT_EQ(0, agent_proc_start(&self->agent, NULL));
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	ASSERT_EQ(0, wait_conn_table_empty(&self->pods.client.cgroup_id, 1, 5000));
	kill(self->agent.pid, SIGINT);
	ASSERT_EQ(self->agent.pid, waitpid(self->agent.pid, &status, 0));
	self->agent.pid = 0;
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_NE(0, access(SELFTEST_PIN_DIR, F_OK));
	ASSERT_EQ(0, agent_output_load(&out, self->agent.out_path));
	client = agent_output_sum(out, self->pods.client.cgroup_id, "client", NULL, -1);
	EXPECT_EQ(self->truth->client.write_bytes, client.write_bytes);
	EXPECT_EQ(1, client.close_count);
	agent_output_free(out);
}

/* Off a terminal, the table prints each bucket (the last one is partial). */
KTEST_F(live, table_output_shows_rows_by_cgroup_and_peer, 120)
{
	const char *args[] = { "-o", "table", NULL };
	char peer[64], *text;
	FILE *file;
	size_t got;

	self->plan.connections = 2;
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	ASSERT_EQ(0, wait_conn_table_empty(&self->pods.client.cgroup_id, 1, 5000));
	ASSERT_EQ(0, agent_proc_stop(&self->agent));
	file = fopen(self->agent.out_path, "r");
	ASSERT_NE(NULL, file);
	got = fread(output, 1, sizeof(output) - 1, file);
	output[got] = '\0';
	fclose(file);
	EXPECT_NE(NULL, strstr(output, "bucket "));
	EXPECT_NE(NULL, strstr(output, "CGROUP"));
	snprintf(peer, sizeof(peer), "%s:8080", self->pods.server.ipv4);
	text = strstr(output, peer);
	ASSERT_NE(NULL, text) TH_LOG("table: %s", output);
	/* the client row: 2 connects, both successful */
	EXPECT_NE(NULL, strstr(text, " 2(2) "));
}

TEST_HARNESS_MAIN
