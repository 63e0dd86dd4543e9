// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Real TCP traffic between two pods (network namespaces joined by a veth
 * pair, processes in kubelet-shaped cgroups), with kaccess watching the
 * pods' cgroup subtree. Each side counts its own syscalls; kaccess's
 * aggregates must equal those counts exactly, on both sides.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "agent_proc.h"
#include "kaccess.h"
#include "ktest.h"
#include "pods.h"
#include "traffic.h"

FIXTURE(tcp) {
	struct pod_pair pods;
	struct agent_proc agent;
	struct tcp_truth *truth;
	struct agent_output *output;
	struct tcp_plan plan;
	bool tcp_hooks; /* no syscall seen: accepts counted untimed at the handshake, closes untraced */
};

/*
 * Every test runs with each hook set the kernel offers: the numbers must not
 * differ. Some run again with HTTP analysis off (the benchmark's "metrics
 * only"), where the end of a call skips what only the parsers need.
 */
FIXTURE_VARIANT(tcp) {
	const char *hooks;
	const char *http_parse;
};

FIXTURE_VARIANT_ADD(tcp, fentry) {
	.hooks = "hooks=fentry",
};

FIXTURE_VARIANT_ADD(tcp, sock_tracepoints) {
	.hooks = "hooks=sock",
};

FIXTURE_VARIANT_ADD(tcp, descriptor_walk) {
	.hooks = "hooks=fd",
};

FIXTURE_VARIANT_ADD(tcp, tcp_tracepoints) {
	.hooks = "hooks=tcp",
};

FIXTURE_VARIANT_ADD(tcp, fentry_metrics_only) {
	.hooks = "hooks=fentry",
	.http_parse = "http_parse=off",
};

FIXTURE_VARIANT_ADD(tcp, descriptor_walk_metrics_only) {
	.hooks = "hooks=fd",
	.http_parse = "http_parse=off",
};

FIXTURE_VARIANT_ADD(tcp, tcp_tracepoints_metrics_only) {
	.hooks = "hooks=tcp",
	.http_parse = "http_parse=off",
};

/* Asked once, before the harness forks the tests. */
static bool fentry_loads, tcp_hooks_load;

static void __attribute__((constructor)) probe_fentry(void)
{
	fentry_loads = geteuid() == 0 && kaccess_loads_with("hooks=fentry");
	tcp_hooks_load = geteuid() == 0 && kaccess_loads_with("hooks=tcp");
}

FIXTURE_SETUP(tcp)
{
	REQUIRE_ROOT();
	if (strcmp(variant->hooks, "hooks=sock") == 0 &&
	    access("/sys/kernel/tracing/events/sock/sock_send_length", F_OK))
		SKIP(return, "kernel lacks sock:sock_send_length (Linux 6.3)");
	if (strcmp(variant->hooks, "hooks=fentry") == 0 && !fentry_loads)
		SKIP(return, "kernel refuses fentry programs");
	self->tcp_hooks = strcmp(variant->hooks, "hooks=tcp") == 0;
	if (self->tcp_hooks && !tcp_hooks_load)
		SKIP(return, "kernel lacks tcp:tcp_sendmsg_locked or the sock length tracepoints");
	ASSERT_EQ(0, pod_pair_create_for_test(&self->pods, "tcp"));
	self->truth = truth_alloc();
	ASSERT_NE(NULL, self->truth);
	self->plan = (struct tcp_plan){
		.family = AF_INET,
		.server_addr = self->pods.server.ipv4,
		.port = 8080,
		.connections = 5,
		.request_writes = 10,
		.request_size = 1000,
		.response_writes = 4,
		.response_size = 512,
	};
}

FIXTURE_TEARDOWN(tcp)
{
	agent_proc_stop(&self->agent);
	agent_output_free(self->output);
	truth_free(self->truth);
	pod_pair_destroy(&self->pods);
}

static void start_agent(struct __test_metadata *_metadata, FIXTURE_DATA(tcp) *self,
			const FIXTURE_VARIANT(tcp) *variant, const char *interval_s)
{
	const char *args[] = { "--interval", interval_s, "--set", variant->hooks,
			       "--set", variant->http_parse ?: "http_parse=on", NULL };

	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
}

/* Let every socket of the test reach tcp_destroy_sock, stop, read the output. */
static void stop_agent(struct __test_metadata *_metadata, FIXTURE_DATA(tcp) *self)
{
	uint64_t ids[] = { self->pods.client.cgroup_id, self->pods.server.cgroup_id };

	EXPECT_EQ(0, wait_conn_table_empty(ids, 2, 5000));
	ASSERT_EQ(0, agent_proc_stop(&self->agent));
	ASSERT_EQ(0, agent_output_load(&self->output, self->agent.out_path));
	/* no bucket line: nothing was counted; the log says whether runs were skipped */
	if (agent_output_lost(self->output, "conn_table_full") == UINT64_MAX)
		agent_proc_show_log(&self->agent);
	EXPECT_EQ(0, agent_output_lost(self->output, "conn_table_full"));
	EXPECT_EQ(0, agent_output_lost(self->output, "agg_table_full"));
	EXPECT_EQ(0, agent_output_lost(self->output, "ringbuf_full"));
}

/*
 * Counts and bytes exactly; durations positive and within what userspace
 * timed. With the "tcp" hooks no syscall is seen: every close is untraced,
 * and each message of a sendmmsg/recvmmsg is a call of its own.
 */
static void expect_transfer(struct __test_metadata *_metadata, const struct agg_totals *seen,
			    const struct side_truth *truth, bool tcp_hooks)
{
	uint64_t socket_calls_w = tcp_hooks ? truth->extra_mmsg_writes : 0;
	uint64_t socket_calls_r = tcp_hooks ? truth->extra_mmsg_reads : 0;

	EXPECT_EQ(truth->writes + socket_calls_w, seen->write_count);
	EXPECT_EQ(truth->write_bytes, seen->write_bytes);
	EXPECT_EQ(truth->reads + socket_calls_r, seen->read_count);
	EXPECT_EQ(truth->read_bytes, seen->read_bytes);
	EXPECT_EQ(truth->closes, seen->close_count);
	if (tcp_hooks) {
		EXPECT_EQ(truth->closes, seen->close_untraced_count);
		EXPECT_EQ(0, seen->close_duration_ns_sum);
	} else {
		EXPECT_EQ(0, seen->close_untraced_count);
	}
	if (truth->writes) {
		EXPECT_LT(0, seen->write_duration_ns_sum);
		EXPECT_GE(truth->write_ns, seen->write_duration_ns_sum);
	}
	if (truth->reads) {
		EXPECT_LT(0, seen->read_duration_ns_sum);
		EXPECT_GE(truth->read_ns, seen->read_duration_ns_sum);
	}
	if (truth->closes && !tcp_hooks) {
		EXPECT_LT(0, seen->close_duration_ns_sum);
		EXPECT_GE(truth->close_ns, seen->close_duration_ns_sum);
	}
}

static void expect_client(struct __test_metadata *_metadata, FIXTURE_DATA(tcp) *self,
			  const char *server_addr)
{
	struct agg_totals seen = agent_output_sum(self->output, self->pods.client.cgroup_id,
						  "client", server_addr, self->plan.port);
	const struct side_truth *truth = &self->truth->client;

	EXPECT_EQ(truth->connects, seen.connect_count);
	EXPECT_EQ(truth->connect_successes, seen.connect_success_count);
	EXPECT_LT(0, seen.connect_duration_ns_sum);
	EXPECT_GE(truth->connect_ns, seen.connect_duration_ns_sum);
	EXPECT_EQ(0, seen.accept_count);
	expect_transfer(_metadata, &seen, truth, self->tcp_hooks);
	/* Nothing else was filed for this pod. */
	EXPECT_EQ(seen.rows, agent_output_rows_of(self->output, self->pods.client.cgroup_id));
}

static void expect_server(struct __test_metadata *_metadata, FIXTURE_DATA(tcp) *self,
			  uint64_t cgroup_id, const char *client_addr)
{
	struct agg_totals seen = agent_output_sum(self->output, self->pods.server.cgroup_id,
						  "server", client_addr, 0);
	const struct side_truth *truth = &self->truth->server;

	EXPECT_EQ(truth->accepts, seen.accept_count);
	if (self->tcp_hooks) {
		EXPECT_EQ(0, seen.accept_duration_ns_sum); /* counted at the handshake, untimed */
	} else {
		EXPECT_LT(0, seen.accept_duration_ns_sum);
		EXPECT_GE(truth->accept_ns, seen.accept_duration_ns_sum);
	}
	EXPECT_EQ(0, seen.connect_count);
	expect_transfer(_metadata, &seen, truth, self->tcp_hooks);
	EXPECT_EQ(seen.rows, agent_output_rows_of(self->output, self->pods.server.cgroup_id));
}

KTEST_F(tcp, ipv4_exact_counts_both_sides, 120)
{
	start_agent(_metadata, self, variant, "60");
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	stop_agent(_metadata, self);

	ASSERT_EQ(5, self->truth->client.connects);
	ASSERT_EQ(50, self->truth->client.writes);
	expect_client(_metadata, self, self->pods.server.ipv4);
	expect_server(_metadata, self, self->pods.server.cgroup_id, self->pods.client.ipv4);
	EXPECT_EQ(50000, self->truth->server.read_bytes);

	/* One ring-buffer event per open and per close, on each side. */
	EXPECT_EQ(5, agent_output_events(self->output, self->pods.client.cgroup_id, "open", "client"));
	EXPECT_EQ(5, agent_output_events(self->output, self->pods.client.cgroup_id, "close", "client"));
	EXPECT_EQ(5, agent_output_events(self->output, self->pods.server.cgroup_id, "open", "server"));
	EXPECT_EQ(5, agent_output_events(self->output, self->pods.server.cgroup_id, "close", "server"));
}

KTEST_F(tcp, ipv6_exact_counts_both_sides, 120)
{
	self->plan.family = AF_INET6;
	self->plan.server_addr = self->pods.server.ipv6;
	start_agent(_metadata, self, variant, "60");
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	stop_agent(_metadata, self);

	expect_client(_metadata, self, self->pods.server.ipv6);
	expect_server(_metadata, self, self->pods.server.cgroup_id, self->pods.client.ipv6);
}

/* write, writev, send, sendto, sendmsg, sendmmsg, sendfile; read, readv,
 * recv, recvfrom, recvmsg, recvmmsg: each one syscall, each counted. */
KTEST_F(tcp, every_transfer_syscall, 120)
{
	self->plan.connections = 3;
	self->plan.request_writes = 14;
	self->plan.request_size = 3000;
	self->plan.client_style = IO_VARIANTS;
	self->plan.server_style = IO_VARIANTS;
	start_agent(_metadata, self, variant, "60");
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	stop_agent(_metadata, self);

	EXPECT_EQ(126000, self->truth->client.write_bytes);
	expect_client(_metadata, self, self->pods.server.ipv4);
	expect_server(_metadata, self, self->pods.server.cgroup_id, self->pods.client.ipv4);
}

KTEST_F(tcp, msg_peek_is_not_a_read, 120)
{
	self->plan.server_style = IO_PEEK;
	start_agent(_metadata, self, variant, "60");
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	stop_agent(_metadata, self);

	ASSERT_LT(0, self->truth->server.peeks);
	expect_server(_metadata, self, self->pods.server.cgroup_id, self->pods.client.ipv4);
}

KTEST_F(tcp, refused_connects_fail_and_never_close, 120)
{
	struct agg_totals seen;

	self->plan.no_server = true;
	self->plan.connections = 4;
	start_agent(_metadata, self, variant, "60");
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	stop_agent(_metadata, self);

	seen = agent_output_sum(self->output, self->pods.client.cgroup_id, "client",
				self->pods.server.ipv4, self->plan.port);
	EXPECT_EQ(4, seen.connect_count);
	EXPECT_EQ(0, seen.connect_success_count);
	EXPECT_LT(0, seen.connect_duration_ns_sum);
	EXPECT_GE(self->truth->client.connect_ns, seen.connect_duration_ns_sum);
	EXPECT_EQ(0, seen.close_count);
	EXPECT_EQ(0, seen.write_count);
	EXPECT_EQ(4, agent_output_events(self->output, self->pods.client.cgroup_id,
					 "connect_failed", "client"));
	EXPECT_EQ(0, agent_output_rows_of(self->output, self->pods.server.cgroup_id));
}

/*
 * No route to the address: connect() fails before any SYN is sent (nothing
 * leaves the namespace). The failure is still a connect, filed under the
 * address the caller asked for.
 */
KTEST_F(tcp, connect_without_route_fails_at_once, 120)
{
	char unroutable[16];
	struct agg_totals seen;

	if (self->tcp_hooks)
		SKIP(return, "the tcp hooks see no connect() that fails before its SYN (README: Kernels)");
	/* the neighbouring /24: the client namespace has no route to it */
	snprintf(unroutable, sizeof(unroutable), "10.230.%d.9", getpid() % 250 + 2);
	self->plan.server_addr = unroutable;
	self->plan.no_server = true;
	self->plan.connections = 3;
	start_agent(_metadata, self, variant, "60");
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	stop_agent(_metadata, self);

	ASSERT_EQ(3, self->truth->client.connects);
	seen = agent_output_sum(self->output, self->pods.client.cgroup_id, "client", unroutable,
				self->plan.port);
	EXPECT_EQ(3, seen.connect_count);
	EXPECT_EQ(0, seen.connect_success_count);
	EXPECT_LT(0, seen.connect_duration_ns_sum);
	EXPECT_GE(self->truth->client.connect_ns, seen.connect_duration_ns_sum);
	EXPECT_EQ(seen.rows, agent_output_rows_of(self->output, self->pods.client.cgroup_id));
	EXPECT_EQ(3, agent_output_events(self->output, self->pods.client.cgroup_id,
					 "connect_failed", "client"));
}

/*
 * The server aborts with a RST: the client's socket is closed by the peer
 * while its descriptor is still open; its own close() later is the one
 * (traced) close of the connection.
 */
KTEST_F(tcp, peer_reset_then_close, 120)
{
	struct agg_totals client;

	self->plan.connections = 2;
	self->plan.request_writes = 3;
	self->plan.server_resets = true;
	start_agent(_metadata, self, variant, "60");
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	stop_agent(_metadata, self);

	client = agent_output_sum(self->output, self->pods.client.cgroup_id, "client", NULL, -1);
	EXPECT_EQ(2, client.connect_success_count);
	EXPECT_EQ(6, client.write_count);
	EXPECT_EQ(0, client.read_count); /* ECONNRESET moved no data */
	EXPECT_EQ(2, client.close_count);
	EXPECT_EQ(self->tcp_hooks ? 2 : 0, client.close_untraced_count);
	EXPECT_GE(self->truth->client.close_ns, client.close_duration_ns_sum);
	expect_server(_metadata, self, self->pods.server.cgroup_id, self->pods.client.ipv4);
}

/* SIGKILL: the socket is released by the exiting process, not by close(). */
KTEST_F(tcp, killed_client_still_ends_its_connection, 120)
{
	struct agg_totals client, server;

	self->plan.connections = 1;
	self->plan.request_writes = 3;
	self->plan.response_writes = 0;
	start_agent(_metadata, self, variant, "60");
	ASSERT_EQ(0, tcp_run_killed_client(&self->pods.client, &self->pods.server, &self->plan,
					   self->truth));
	stop_agent(_metadata, self);

	client = agent_output_sum(self->output, self->pods.client.cgroup_id, "client", NULL, -1);
	EXPECT_EQ(1, client.connect_success_count);
	EXPECT_EQ(3, client.write_count);
	EXPECT_EQ(3000, client.write_bytes);
	EXPECT_EQ(1, client.close_count);
	EXPECT_EQ(1, client.close_untraced_count);
	EXPECT_EQ(0, client.close_duration_ns_sum);
	server = agent_output_sum(self->output, self->pods.server.cgroup_id, "server", NULL, -1);
	EXPECT_EQ(1, server.accept_count);
	EXPECT_EQ(3000, server.read_bytes);
	EXPECT_EQ(1, server.close_count);
	EXPECT_EQ(self->tcp_hooks, server.close_untraced_count);
}

/* A client outside the watched subtree: only the server side is counted. */
KTEST_F(tcp, process_outside_watched_cgroups_is_ignored, 120)
{
	struct pod outside;

	ASSERT_EQ(0, pod_clone_in_cgroup(&outside, &self->pods.client, "system.slice", "outside"));
	start_agent(_metadata, self, variant, "60");
	ASSERT_EQ(0, tcp_run(&outside, &self->pods.server, &self->plan, self->truth));
	stop_agent(_metadata, self);

	EXPECT_EQ(0, agent_output_rows_of(self->output, outside.cgroup_id));
	EXPECT_EQ(0, agent_output_events(self->output, outside.cgroup_id, NULL, NULL));
	expect_server(_metadata, self, self->pods.server.cgroup_id, self->pods.client.ipv4);
	pod_remove_cgroup(&outside);
}

/* UDP, a pipe, a unix socket pair and a file in a watched pod. */
static int non_tcp_io(void *arg)
{
	const char *own_ip = arg;
	char buf[256] = "not tcp";
	struct sockaddr_in to = { .sin_family = AF_INET, .sin_port = htons(9999) };
	int receiver = socket(AF_INET, SOCK_DGRAM, 0), udp = socket(AF_INET, SOCK_DGRAM, 0);
	int pipes[2], pair[2], file;

	inet_pton(AF_INET, own_ip, &to.sin_addr);
	if (receiver < 0 || udp < 0 || bind(receiver, (struct sockaddr *)&to, sizeof(to)) ||
	    connect(udp, (struct sockaddr *)&to, sizeof(to)) ||
	    write(udp, buf, sizeof(buf)) != sizeof(buf) ||
	    sendto(udp, buf, sizeof(buf), 0, NULL, 0) != sizeof(buf) ||
	    read(receiver, buf, sizeof(buf)) != sizeof(buf) ||
	    recvfrom(receiver, buf, sizeof(buf), 0, NULL, NULL) != sizeof(buf))
		return 1;
	if (pipe(pipes) || write(pipes[1], buf, 100) != 100 || read(pipes[0], buf, 100) != 100)
		return 2;
	if (socketpair(AF_UNIX, SOCK_STREAM, 0, pair) || write(pair[0], buf, 50) != 50 ||
	    read(pair[1], buf, 50) != 50 || close(pair[0]) || close(pair[1]))
		return 3;
	file = open("/tmp", O_TMPFILE | O_RDWR, 0600);
	if (file < 0 || write(file, buf, 200) != 200 || pread(file, buf, 200, 0) != 200 ||
	    lseek(file, 0, SEEK_SET) || read(file, buf, 200) != 200)
		return 4;
	close(file);
	close(udp);
	close(receiver);
	return 0;
}

KTEST_F(tcp, files_pipes_udp_and_unix_sockets_are_not_counted, 120)
{
	self->plan.connections = 1;
	start_agent(_metadata, self, variant, "60");
	ASSERT_EQ(0, child_wait(pod_spawn(&self->pods.client, non_tcp_io, self->pods.client.ipv4)));
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	stop_agent(_metadata, self);

	/* Only the one TCP connection's syscalls appear for the pod. */
	expect_client(_metadata, self, self->pods.server.ipv4);
}

/* Writes spread over three 1-second buckets sum exactly across the drains. */
KTEST_F(tcp, bucket_boundaries_lose_nothing, 120)
{
	struct agg_totals client;

	self->plan.connections = 1;
	self->plan.request_writes = 30;
	self->plan.write_gap_ms = 100;
	start_agent(_metadata, self, variant, "1");
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	stop_agent(_metadata, self);

	ASSERT_LE(3, agent_output_buckets(self->output, self->pods.client.cgroup_id));
	client = agent_output_sum(self->output, self->pods.client.cgroup_id, "client", NULL, -1);
	EXPECT_EQ(30, client.write_count);
	EXPECT_EQ(30000, client.write_bytes);
	expect_client(_metadata, self, self->pods.server.ipv4);
	expect_server(_metadata, self, self->pods.server.cgroup_id, self->pods.client.ipv4);
	EXPECT_EQ(0, agent_output_lost(self->output, "agg_stale_bucket"));
}

/*
 * A connection opened before kaccess started is adopted at startup: its
 * role comes from the server's listening port, and only what happens after
 * the start is counted.
 */
KTEST_F(tcp, connection_from_before_start_is_adopted, 120)
{
	uint64_t ids[] = { self->pods.client.cgroup_id, self->pods.server.cgroup_id };
	struct agg_totals client, server;
	struct held_conn held;

	self->plan.connections = 1;
	self->plan.request_writes = 2;
	self->plan.response_writes = 3;
	ASSERT_EQ(0, tcp_hold_open(&self->pods.client, &self->pods.server, &self->plan, self->truth,
				   &held));
	/* the server has read the whole request and now waits for EOF */
	for (int waited_ms = 0; self->truth->server.read_bytes < 2000 && waited_ms < 5000; waited_ms += 10)
		usleep(10000);
	ASSERT_EQ(2000, self->truth->server.read_bytes);
	start_agent(_metadata, self, variant, "60");
	ASSERT_EQ(0, wait_conn_table_count(ids, 2, 2, 5000));
	ASSERT_EQ(0, tcp_hold_release(&held));
	stop_agent(_metadata, self);

	client = agent_output_sum(self->output, self->pods.client.cgroup_id, "client",
				  self->pods.server.ipv4, self->plan.port);
	EXPECT_EQ(0, client.connect_count);
	EXPECT_EQ(0, client.write_count);
	EXPECT_EQ(self->truth->client.reads, client.read_count);
	EXPECT_EQ(1536, client.read_bytes);
	EXPECT_EQ(1, client.close_count);
	EXPECT_EQ(self->tcp_hooks, client.close_untraced_count);
	server = agent_output_sum(self->output, self->pods.server.cgroup_id, "server",
				  self->pods.client.ipv4, 0);
	EXPECT_EQ(0, server.accept_count);
	EXPECT_EQ(0, server.read_count); /* only the EOF, which moves no data */
	EXPECT_EQ(3, server.write_count);
	EXPECT_EQ(1536, server.write_bytes);
	EXPECT_EQ(1, server.close_count);
	EXPECT_EQ(1, agent_output_events(self->output, self->pods.client.cgroup_id, "close", "client"));
	EXPECT_EQ(0, agent_output_events(self->output, self->pods.client.cgroup_id, "open", NULL));
}

/*
 * The server waits in accept() and the client's SYN is on its way before
 * kaccess attaches (an nftables rule drops SYNs until the agent is ready):
 * the connection is tracked on both sides from the handshake on, and only
 * its untimed accept and connect are not counted.
 */
KTEST_F(tcp, accept_and_connect_in_flight_at_start, 120)
{
	const char *ns = self->pods.server.netns;
	struct agg_totals client, server;
	pid_t server_pid, client_pid;

	if (run_quiet("command -v nft"))
		SKIP(return, "needs nft (nftables): make deps-test");
	self->plan.connections = 1;
	self->plan.request_writes = 3;
	self->plan.response_writes = 1;
	ASSERT_EQ(0, run_quiet("ip netns exec %s nft add table inet kat", ns));
	ASSERT_EQ(0, run_quiet("ip netns exec %s nft 'add chain inet kat input "
			       "{ type filter hook input priority 0; }'", ns));
	ASSERT_EQ(0, run_quiet("ip netns exec %s nft add rule inet kat input "
			       "tcp dport 8080 tcp flags syn counter drop", ns));
	server_pid = tcp_server_start(&self->pods.server, &self->plan, &self->truth->server);
	ASSERT_LT(0, server_pid);
	client_pid = tcp_client_start(&self->pods.client, &self->plan, &self->truth->client);
	ASSERT_LT(0, client_pid);
	/* the first SYN has been sent (and dropped) before the agent starts */
	for (int waited_ms = 0; waited_ms < 5000 &&
	     run_quiet("ip netns exec %s nft list chain inet kat input | grep -q 'packets [1-9]'", ns);
	     waited_ms += 20)
		usleep(20000);
	ASSERT_EQ(0, run_quiet("ip netns exec %s nft list chain inet kat input | grep -q 'packets [1-9]'", ns));
	start_agent(_metadata, self, variant, "60");
	ASSERT_EQ(0, run_quiet("ip netns exec %s nft delete table inet kat", ns));
	ASSERT_EQ(0, child_wait(client_pid)); /* the retransmitted SYN gets through */
	ASSERT_EQ(0, child_wait(server_pid));
	stop_agent(_metadata, self);

	ASSERT_EQ(1, self->truth->client.connect_successes);
	client = agent_output_sum(self->output, self->pods.client.cgroup_id, "client",
				  self->pods.server.ipv4, self->plan.port);
	EXPECT_EQ(0, client.connect_count);
	EXPECT_EQ(3, client.write_count);
	EXPECT_EQ(3000, client.write_bytes);
	EXPECT_EQ(self->truth->client.reads, client.read_count);
	EXPECT_EQ(512, client.read_bytes);
	EXPECT_EQ(1, client.close_count);
	EXPECT_EQ(self->tcp_hooks, client.close_untraced_count);
	server = agent_output_sum(self->output, self->pods.server.cgroup_id, "server",
				  self->pods.client.ipv4, 0);
	/* the "tcp" hooks count an accept at the handshake, which came after the start */
	EXPECT_EQ(self->tcp_hooks, server.accept_count);
	EXPECT_EQ(self->truth->server.reads, server.read_count);
	EXPECT_EQ(3000, server.read_bytes);
	EXPECT_EQ(1, server.write_count);
	EXPECT_EQ(512, server.write_bytes);
	EXPECT_EQ(1, server.close_count);
}

/*
 * The kernel sometimes skips a program on tcp_destroy_sock: the entry of a
 * socket that no longer exists stays. Plant one (a socket address nothing
 * uses) while a real connection is held open: the sweep removes the first,
 * keeps the second, and counts one destroy_missed.
 */
KTEST_F(tcp, sweep_removes_entries_of_vanished_sockets, 120)
{
	uint64_t ids[] = { self->pods.client.cgroup_id, self->pods.server.cgroup_id };
	const char *args[] = { "--set", variant->hooks, "--set", "sweep_interval_s=1", NULL };
	struct kaccess_conn ghost = { .state = KACCESS_CONN_ESTABLISHED, .start_ns = 1 };
	uint64_t ghost_sk = 0xffff888000000040ULL; /* aligned, in the direct map, never a socket here */
	struct held_conn held;
	int map_fd;

	ghost.agg.cgroup_id = self->pods.client.cgroup_id;
	ghost.agg.role = KACCESS_ROLE_CLIENT;
	self->plan.connections = 1;
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	ASSERT_EQ(0, tcp_hold_open(&self->pods.client, &self->pods.server, &self->plan, self->truth,
				   &held));
	ASSERT_EQ(0, wait_conn_table_count(ids, 2, 2, 5000));
	map_fd = bpf_obj_get(SELFTEST_PIN_DIR "/conn_table");
	ASSERT_LE(0, map_fd);
	ASSERT_EQ(0, bpf_map_update_elem(map_fd, &ghost_sk, &ghost, BPF_NOEXIST));
	ASSERT_EQ(0, wait_conn_table_count(ids, 2, 3, 1000));
	/* two sweeps later, the ghost is gone and the held connection is not */
	EXPECT_EQ(0, wait_conn_table_count(ids, 2, 2, 5000));
	EXPECT_NE(0, bpf_map_lookup_elem(map_fd, &ghost_sk, &ghost));
	close(map_fd);
	ASSERT_EQ(0, tcp_hold_release(&held));
	stop_agent(_metadata, self);
	EXPECT_EQ(1, agent_output_lost(self->output, "destroy_missed"));
	EXPECT_EQ(1, agent_output_sum(self->output, self->pods.client.cgroup_id, "client", NULL, -1).close_count);
}

TEST_HARNESS_MAIN
