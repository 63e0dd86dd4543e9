// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Real peers: nginx in the server pod, curl in the client pod. curl reports
 * the bytes of every request and response (-w), which must equal what
 * kaccess counted on both sides: curl's reads and writes, and nginx's
 * accept4/recv/writev/sendfile.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agent_proc.h"
#include "ktest.h"
#include "pods.h"

#define NGINX "/usr/sbin/nginx"
#define CURL "/usr/bin/curl"
#define BODY_BYTES 20000
#define CURL_RUNS 3
#define REQUESTS_PER_RUN 4

FIXTURE(nginx) {
	struct pod_pair pods;
	struct agent_proc agent;
	struct agent_output *output;
	char dir[64];
	pid_t nginx_pid;
};

/* nginx in the foreground, logging to the test directory, one worker. */
static int write_nginx_config(const char *dir, const char *listen_addr)
{
	char path[128];
	FILE *conf, *body;

	snprintf(path, sizeof(path), "%s/nginx.conf", dir);
	conf = fopen(path, "w");
	if (!conf)
		return -1;
	fprintf(conf,
		"daemon off;\nworker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log;\n"
		"events { worker_connections 64; }\n"
		"http {\n  access_log off;\n  sendfile on;\n  keepalive_timeout 30s;\n"
		"  client_body_temp_path %s; proxy_temp_path %s; fastcgi_temp_path %s;\n"
		"  uwsgi_temp_path %s; scgi_temp_path %s;\n"
		"  server {\n    listen %s:8080;\n    root %s/www;\n"
		"    location = /small { return 200 \"hello from nginx\\n\"; }\n  }\n}\n",
		dir, dir, dir, dir, dir, dir, dir, listen_addr, dir);
	fclose(conf);
	snprintf(path, sizeof(path), "%s/www", dir);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/www/big", dir);
	body = fopen(path, "w");
	if (!body)
		return -1;
	for (int i = 0; i < BODY_BYTES; i++)
		fputc('a' + i % 26, body);
	fclose(body);
	return 0;
}

FIXTURE_SETUP(nginx)
{
	char conf[128];
	char *argv[] = { NGINX, "-c", conf, "-p", self->dir, NULL };

	REQUIRE_ROOT();
	if (access(NGINX, X_OK) || access(CURL, X_OK))
		SKIP(return, "needs nginx and curl (make deps-test)");
	ASSERT_EQ(0, pod_pair_create_for_test(&self->pods, "ngx"));
	snprintf(self->dir, sizeof(self->dir), "/tmp/kaccess-selftest-nginx-%d", getpid());
	mkdir(self->dir, 0755);
	ASSERT_EQ(0, write_nginx_config(self->dir, self->pods.server.ipv4));
	snprintf(conf, sizeof(conf), "%s/nginx.conf", self->dir);
	self->nginx_pid = pod_exec(&self->pods.server, argv, NULL);
	ASSERT_LT(0, self->nginx_pid);
	ASSERT_EQ(0, netns_wait_listening(self->pods.server.netns, 8080, 10000));
}

FIXTURE_TEARDOWN(nginx)
{
	agent_proc_stop(&self->agent);
	agent_output_free(self->output);
	pod_pair_destroy(&self->pods); /* cgroup.kill ends nginx */
	if (self->nginx_pid > 0)
		child_wait(self->nginx_pid);
	if (self->dir[0])
		run_quiet("rm -rf %s", self->dir);
}

struct curl_truth {
	unsigned long requests, request_bytes, response_bytes;
};

/* One curl per connection; its URLs share the connection (keep-alive). */
static int run_curl(const struct pod *client, const char *server_ip, const char *out_path)
{
	char url_big[128], url_small[128];
	char *argv[] = { CURL, "-s", "-w", "%{size_request} %{size_header} %{size_download}\\n",
			 "-o", "/dev/null", url_big, "-o", "/dev/null", url_small,
			 "-o", "/dev/null", url_big, "-o", "/dev/null", url_small, NULL };

	snprintf(url_big, sizeof(url_big), "http://%s:8080/big", server_ip);
	snprintf(url_small, sizeof(url_small), "http://%s:8080/small", server_ip);
	return child_wait(pod_exec(client, argv, out_path));
}

static int read_curl_truth(const char *path, struct curl_truth *truth)
{
	unsigned long request, header, download;
	FILE *file = fopen(path, "r");

	if (!file)
		return -1;
	while (fscanf(file, "%lu %lu %lu", &request, &header, &download) == 3) {
		truth->requests++;
		truth->request_bytes += request;
		truth->response_bytes += header + download;
	}
	fclose(file);
	return 0;
}

KTEST_F(nginx, curl_and_nginx_bytes_match_on_both_sides, 120)
{
	uint64_t ids[] = { self->pods.client.cgroup_id, self->pods.server.cgroup_id };
	struct curl_truth truth = { 0 };
	struct agg_totals client, server;
	char curl_out[128];

	snprintf(curl_out, sizeof(curl_out), "%s/curl.out", self->dir);
	ASSERT_EQ(0, agent_proc_start(&self->agent, NULL));
	for (int run = 0; run < CURL_RUNS; run++) {
		ASSERT_EQ(0, run_curl(&self->pods.client, self->pods.server.ipv4, curl_out));
		ASSERT_EQ(0, read_curl_truth(curl_out, &truth));
	}
	ASSERT_EQ(CURL_RUNS * REQUESTS_PER_RUN, truth.requests);
	EXPECT_EQ(0, wait_conn_table_empty(ids, 2, 5000));
	ASSERT_EQ(0, agent_proc_stop(&self->agent));
	ASSERT_EQ(0, agent_output_load(&self->output, self->agent.out_path));

	client = agent_output_sum(self->output, self->pods.client.cgroup_id, "client",
				  self->pods.server.ipv4, 8080);
	EXPECT_EQ(CURL_RUNS, client.connect_count);
	EXPECT_EQ(CURL_RUNS, client.connect_success_count);
	EXPECT_EQ(CURL_RUNS, client.close_count);
	EXPECT_EQ(truth.request_bytes, client.write_bytes);
	EXPECT_EQ(truth.response_bytes, client.read_bytes);
	EXPECT_LE(CURL_RUNS * REQUESTS_PER_RUN, client.write_count);

	server = agent_output_sum(self->output, self->pods.server.cgroup_id, "server",
				  self->pods.client.ipv4, 0);
	EXPECT_EQ(CURL_RUNS, server.accept_count);
	EXPECT_EQ(CURL_RUNS, server.close_count);
	EXPECT_EQ(truth.request_bytes, server.read_bytes);
	EXPECT_EQ(truth.response_bytes, server.write_bytes);
	EXPECT_LE(CURL_RUNS * REQUESTS_PER_RUN, server.write_count);
	EXPECT_LE(2 * BODY_BYTES * CURL_RUNS, server.write_bytes);
}

TEST_HARNESS_MAIN
