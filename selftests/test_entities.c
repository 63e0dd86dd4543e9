// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * End to end: two pods (network namespaces in kubelet-shaped cgroups), a
 * fake Kubernetes API server that knows them by their cgroup's pod UID and
 * their addresses, real TCP between them, and the agent's "entity" lines:
 * every entity named as OAP would, every count equal to what the test's
 * own processes counted.
 */
#include <json-c/json.h>
#include <libgen.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <stdio.h>
#include <time.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent_proc.h"
#include "k8s/fake_api.h"
#include "ktest.h"
#include "pods.h"
#include "traffic.h"

#define ENTITIES_PIN_DIR "/sys/fs/bpf/kaccess-selftest-entities"
#define NAMESPACE "shop"

FIXTURE(entities) {
	struct pod_pair pods;
	struct agent_proc agent;
	struct tcp_truth *truth;
	struct tcp_plan plan;
	pid_t api_pid;
	int api_port;
	char client_pod[64], server_pod[64];
	struct json_object *lines[512];
	int line_count;
	/* over every bucket */
	uint64_t flows, dropped_same_service, dropped_unknown_local, dropped_excluded_local;
	/* a fake OAP, for the tests that send to one */
	pid_t oap_pid;
	char oap_out[128], oap_port_path[128], api_setting[64], oap_setting[64];
};

/* kubepods/<qos>/pod<uid>/<container id>: the uid, as the API server knows the pod */
static int pod_uid_of(const struct pod *pod, char *ret_uid, size_t len)
{
	const char *start = strstr(pod->cgroup_dir, "/pod"), *end;

	if (!start)
		return -1;
	start += 4;
	end = strchr(start, '/');
	if (!end || (size_t)(end - start) >= len)
		return -1;
	snprintf(ret_uid, len, "%.*s", (int)(end - start), start);
	return 0;
}

static long add_pod_in(int port, const char *namespace_, const struct pod *pod, const char *name,
		       const char *app)
{
	char uid[64], labels[128];

	if (pod_uid_of(pod, uid, sizeof(uid)))
		return -1;
	snprintf(labels, sizeof(labels), "\"app\": \"%s\"", app);
	return fake_control(port, "add_pod", fake_pod_json(namespace_, name, uid, pod->ipv4, labels));
}

static long add_pod(int port, const struct pod *pod, const char *name, const char *app)
{
	return add_pod_in(port, NAMESPACE, pod, name, app);
}

static long add_service_in(int port, const char *namespace_, const char *name, const char *app,
			   const char *cluster_ip)
{
	char selector[128];

	snprintf(selector, sizeof(selector), "\"app\": \"%s\"", app);
	return fake_control(port, "add_service", fake_service_json(namespace_, name, selector, cluster_ip));
}

static long add_service(int port, const char *name, const char *app, const char *cluster_ip)
{
	return add_service_in(port, NAMESPACE, name, app, cluster_ip);
}

FIXTURE_SETUP(entities)
{
	REQUIRE_ROOT();
	if (access("/usr/bin/python3", X_OK))
		SKIP(return, "no /usr/bin/python3 for the fake API server");
	ASSERT_EQ(0, pod_pair_create_for_test(&self->pods, "ent"));
	self->truth = truth_alloc();
	ASSERT_NE(NULL, self->truth);
	self->api_port = fake_free_port();
	ASSERT_LT(0, self->api_port);
	self->api_pid = fake_start(self->api_port, false);
	ASSERT_LT(0, self->api_pid);
	snprintf(self->client_pod, sizeof(self->client_pod), "frontend-%d-x7k2q", getpid());
	snprintf(self->server_pod, sizeof(self->server_pod), "backend-%d-9fzpl", getpid());
	ASSERT_EQ(200, add_service(self->api_port, "frontend", "frontend", "10.96.10.1"));
	ASSERT_EQ(200, add_service(self->api_port, "backend", "backend", "10.96.10.2"));
	self->plan = (struct tcp_plan){
		.family = AF_INET,
		.server_addr = self->pods.server.ipv4,
		.port = 8080,
		.connections = 4,
		.request_writes = 6,
		.request_size = 700,
		.response_writes = 3,
		.response_size = 300,
	};
}

/* Stop the fake OAP: what it recorded is then complete. Idempotent. */
static void stop_fake_oap(FIXTURE_DATA(entities) *self)
{
	if (self->oap_pid <= 0)
		return;
	kill(self->oap_pid, SIGTERM);
	waitpid(self->oap_pid, NULL, 0);
	self->oap_pid = 0;
}

FIXTURE_TEARDOWN(entities)
{
	agent_proc_stop(&self->agent);
	stop_fake_oap(self);
	if (self->oap_out[0]) {
		unlink(self->oap_out);
		unlink(self->oap_port_path);
	}
	for (int i = 0; i < self->line_count; i++)
		json_object_put(self->lines[i]);
	fake_stop(self->api_pid);
	truth_free(self->truth);
	pod_pair_destroy(&self->pods);
}

/* The agent against the fake API, with one more "key=value" setting (NULL: none). */
static int start_agent_with(FIXTURE_DATA(entities) *self, const char *setting)
{
	char server[64];
	const char *args[] = { "--pin-dir", ENTITIES_PIN_DIR, "-i", "60", "--set", server,
			       setting ? "--set" : NULL, setting, NULL };

	snprintf(server, sizeof(server), "k8s_api_server=http://127.0.0.1:%d", self->api_port);
	return agent_proc_start(&self->agent, args);
}

static int start_agent(FIXTURE_DATA(entities) *self)
{
	return start_agent_with(self, NULL);
}

static uint64_t u64_field(struct json_object *obj, const char *key)
{
	struct json_object *v;

	return json_object_object_get_ex(obj, key, &v) ? (uint64_t)json_object_get_int64(v) : 0;
}

static void add_summary(FIXTURE_DATA(entities) *self, struct json_object *summary)
{
	self->flows += u64_field(summary, "flows");
	self->dropped_same_service += u64_field(summary, "dropped_same_service");
	self->dropped_unknown_local += u64_field(summary, "dropped_unknown_local");
	self->dropped_excluded_local += u64_field(summary, "dropped_excluded_local");
	json_object_put(summary);
}

/* Stop the agent (it drains everything) and keep its entity lines. */
static int stop_and_read(FIXTURE_DATA(entities) *self)
{
	char line[65536];
	FILE *out;

	usleep(300 * 1000); /* let the last closes reach the maps */
	if (agent_proc_stop(&self->agent))
		return -1;
	out = fopen(self->agent.out_path, "r");
	if (!out)
		return -1;
	while (fgets(line, sizeof(line), out) && self->line_count < 512) {
		struct json_object *obj = json_tokener_parse(line), *type;

		if (obj && json_object_object_get_ex(obj, "type", &type) &&
		    strcmp(json_object_get_string(type), "entity") == 0)
			self->lines[self->line_count++] = obj;
		else if (obj && json_object_object_get_ex(obj, "type", &type) &&
			 strcmp(json_object_get_string(type), "entities") == 0)
			add_summary(self, obj);
		else
			json_object_put(obj);
	}
	fclose(out);
	return 0;
}

static bool field_is(struct json_object *line, const char *key, const char *want)
{
	struct json_object *v;

	if (!want)
		return !json_object_object_get_ex(line, key, &v);
	return json_object_object_get_ex(line, key, &v) && strcmp(json_object_get_string(v), want) == 0;
}

/*
 * Sum of a metric over the entity's lines (one per bucket); -1 when no
 * line has it. Relations are named source -> dest.
 */
static int64_t metric_sum(FIXTURE_DATA(entities) *self, const char *scope, const char *a,
			  const char *b, const char *c, const char *d, const char *metric)
{
	int64_t sum = -1;

	for (int i = 0; i < self->line_count; i++) {
		struct json_object *line = self->lines[i], *metrics, *v;
		bool match = field_is(line, "scope", scope);

		if (strcmp(scope, "service") == 0)
			match = match && field_is(line, "service", a);
		else if (strcmp(scope, "instance") == 0)
			match = match && field_is(line, "service", a) && field_is(line, "instance", b);
		else if (strcmp(scope, "service_relation") == 0)
			match = match && field_is(line, "source_service", a) && field_is(line, "dest_service", b);
		else
			match = match && field_is(line, "source_service", a) &&
				field_is(line, "source_instance", b) && field_is(line, "dest_service", c) &&
				field_is(line, "dest_instance", d);
		if (!match || !json_object_object_get_ex(line, "metrics", &metrics) ||
		    !json_object_object_get_ex(metrics, metric, &v))
			continue;
		sum = (sum < 0 ? 0 : sum) + json_object_get_int64(v);
	}
	return sum;
}

/* The detect points of a relation over its lines: "client", "server", "client,server" or "". */
static const char *detect_points_of(FIXTURE_DATA(entities) *self, const char *scope,
				    const char *source_service, const char *dest_service)
{
	bool client = false, server = false;

	for (int i = 0; i < self->line_count; i++) {
		struct json_object *line = self->lines[i], *points;

		if (!field_is(line, "scope", scope) || !field_is(line, "source_service", source_service) ||
		    !field_is(line, "dest_service", dest_service) ||
		    !json_object_object_get_ex(line, "detect_points", &points))
			continue;
		for (size_t j = 0; j < json_object_array_length(points); j++) {
			const char *point = json_object_get_string(json_object_array_get_idx(points, j));

			client = client || strcmp(point, "client") == 0;
			server = server || strcmp(point, "server") == 0;
		}
	}
	return client && server ? "client,server" : client ? "client" : server ? "server" : "";
}

static int entities_in_scope(FIXTURE_DATA(entities) *self, const char *scope)
{
	int n = 0;

	for (int i = 0; i < self->line_count; i++)
		n += field_is(self->lines[i], "scope", scope);
	return n;
}

#define SVC(name) name "." NAMESPACE

KTEST_F(entities, two_services_are_named_and_counted_exactly, 120)
{
	const struct side_truth *c = &self->truth->client, *s = &self->truth->server;

	ASSERT_EQ(200, add_pod(self->api_port, &self->pods.client, self->client_pod, "frontend"));
	ASSERT_EQ(200, add_pod(self->api_port, &self->pods.server, self->server_pod, "backend"));
	ASSERT_EQ(0, start_agent(self));
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	ASSERT_EQ(0, stop_and_read(self));
	ASSERT_LT(0, self->line_count) TH_LOG("no entity lines in %s", self->agent.out_path);

	/* services: every syscall of the service, whatever the role */
	EXPECT_EQ(c->connects, metric_sum(self, "service", SVC("frontend"), 0, 0, 0, "kubernetes_service_connect_cpm"));
	EXPECT_EQ(c->connect_successes, metric_sum(self, "service", SVC("frontend"), 0, 0, 0,
						   "kubernetes_service_connect_success_cpm"));
	EXPECT_EQ(c->writes, metric_sum(self, "service", SVC("frontend"), 0, 0, 0, "kubernetes_service_write_cpm"));
	EXPECT_EQ(c->reads, metric_sum(self, "service", SVC("frontend"), 0, 0, 0, "kubernetes_service_read_cpm"));
	EXPECT_EQ(c->closes, metric_sum(self, "service", SVC("frontend"), 0, 0, 0, "kubernetes_service_close_cpm"));
	EXPECT_EQ(s->accepts, metric_sum(self, "service", SVC("backend"), 0, 0, 0, "kubernetes_service_accept_cpm"));
	EXPECT_EQ(s->reads, metric_sum(self, "service", SVC("backend"), 0, 0, 0, "kubernetes_service_read_cpm"));
	EXPECT_EQ(s->writes, metric_sum(self, "service", SVC("backend"), 0, 0, 0, "kubernetes_service_write_cpm"));
	EXPECT_EQ(-1, metric_sum(self, "service", SVC("backend"), 0, 0, 0, "kubernetes_service_connect_cpm"));
	/* instances are the pods */
	EXPECT_EQ(s->reads, metric_sum(self, "instance", SVC("backend"), self->server_pod, 0, 0,
				       "kubernetes_service_instance_read_cpm"));
	EXPECT_EQ(c->writes, metric_sum(self, "instance", SVC("frontend"), self->client_pod, 0, 0,
					"kubernetes_service_instance_write_cpm"));
	EXPECT_EQ(2, entities_in_scope(self, "service"));
	EXPECT_EQ(2, entities_in_scope(self, "instance"));
	EXPECT_EQ(0, self->dropped_same_service);
	EXPECT_EQ(0, self->dropped_unknown_local);

	/* one relation, frontend -> backend, seen from both ends */
	EXPECT_EQ(1, entities_in_scope(self, "service_relation"));
	EXPECT_EQ(c->connects, metric_sum(self, "service_relation", SVC("frontend"), SVC("backend"), 0, 0,
					  "kubernetes_service_relation_connect_cpm"));
	EXPECT_EQ(s->accepts, metric_sum(self, "service_relation", SVC("frontend"), SVC("backend"), 0, 0,
					 "kubernetes_service_relation_accept_cpm"));
	EXPECT_EQ(c->closes + s->closes, metric_sum(self, "service_relation", SVC("frontend"), SVC("backend"),
						    0, 0, "kubernetes_service_relation_close_cpm"));
	EXPECT_EQ(c->writes, metric_sum(self, "service_relation", SVC("frontend"), SVC("backend"), 0, 0,
					"kubernetes_service_relation_client_write_cpm"));
	EXPECT_EQ(s->reads, metric_sum(self, "service_relation", SVC("frontend"), SVC("backend"), 0, 0,
				       "kubernetes_service_relation_server_read_cpm"));
	EXPECT_EQ(1, entities_in_scope(self, "instance_relation"));
	EXPECT_EQ(s->writes, metric_sum(self, "instance_relation", SVC("frontend"), self->client_pod,
					SVC("backend"), self->server_pod,
					"kubernetes_service_instance_relation_server_write_cpm"));
	/* both pods are watched: OAP's client and server detect points */
	EXPECT_STREQ("client,server",
		     detect_points_of(self, "service_relation", SVC("frontend"), SVC("backend")));
	EXPECT_STREQ("client,server",
		     detect_points_of(self, "instance_relation", SVC("frontend"), SVC("backend")));
}

/* A server address the API does not know is OAP's single "Unknown" entity. */
KTEST_F(entities, unknown_peer_is_named_unknown, 120)
{
	const struct side_truth *c = &self->truth->client;

	ASSERT_EQ(200, add_pod(self->api_port, &self->pods.client, self->client_pod, "frontend"));
	ASSERT_EQ(0, start_agent(self));
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	ASSERT_EQ(0, stop_and_read(self));

	EXPECT_EQ(c->connects, metric_sum(self, "service_relation", SVC("frontend"), "Unknown", 0, 0,
					  "kubernetes_service_relation_connect_cpm"));
	EXPECT_EQ(c->writes, metric_sum(self, "service_relation", SVC("frontend"), "Unknown", 0, 0,
					"kubernetes_service_relation_client_write_cpm"));
	/* only the client side saw it */
	EXPECT_STREQ("client", detect_points_of(self, "service_relation", SVC("frontend"), "Unknown"));
	/* the server is no known pod: no service, no instance relation */
	EXPECT_EQ(1, entities_in_scope(self, "service"));
	EXPECT_EQ(0, entities_in_scope(self, "instance_relation"));
	/* the server's own rows: its pod is not known */
	EXPECT_LE(1, self->dropped_unknown_local);
}

/* Two pods of one service: OAP drops the connection entirely. */
KTEST_F(entities, same_service_connections_are_dropped, 120)
{
	ASSERT_EQ(200, add_pod(self->api_port, &self->pods.client, self->client_pod, "backend"));
	ASSERT_EQ(200, add_pod(self->api_port, &self->pods.server, self->server_pod, "backend"));
	ASSERT_EQ(0, start_agent(self));
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	ASSERT_EQ(0, stop_and_read(self));
	EXPECT_EQ(0, self->line_count);
	/* both pods were resolved, and every flow went for being within one service */
	EXPECT_LE(2, self->flows);
	EXPECT_EQ(self->flows, self->dropped_same_service);
	EXPECT_EQ(0, self->dropped_unknown_local);
}

#define OTHER_NAMESPACE "payments"

/*
 * The client pod in NAMESPACE, the server pod in OTHER_NAMESPACE, and a
 * namespace policy (`setting`) that keeps NAMESPACE only: every row of the
 * server pod is dropped and counted as excluded; the client's rows are
 * kept whole, its peer named in the excluded namespace.
 */
static void check_only_client_namespace_kept(struct __test_metadata *_metadata,
					     FIXTURE_DATA(entities) *self, const char *setting)
{
	const struct side_truth *c = &self->truth->client;
	const char *backend = "backend." OTHER_NAMESPACE;
	struct agent_output *output = NULL;
	uint64_t server_rows;

	ASSERT_EQ(200, add_service_in(self->api_port, OTHER_NAMESPACE, "backend", "backend", "10.96.10.3"));
	ASSERT_EQ(200, add_pod(self->api_port, &self->pods.client, self->client_pod, "frontend"));
	ASSERT_EQ(200, add_pod_in(self->api_port, OTHER_NAMESPACE, &self->pods.server, self->server_pod,
				  "backend"));
	ASSERT_EQ(0, start_agent_with(self, setting));
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	ASSERT_EQ(0, stop_and_read(self));
	ASSERT_EQ(0, agent_output_load(&output, self->agent.out_path));
	server_rows = agent_output_rows_of(output, self->pods.server.cgroup_id);
	agent_output_free(output);

	/* the server pod's rows: every one dropped by the policy, none otherwise */
	EXPECT_LE(1, server_rows);
	EXPECT_EQ(server_rows, self->dropped_excluded_local);
	EXPECT_EQ(0, self->dropped_unknown_local);
	EXPECT_EQ(0, self->dropped_same_service);
	/* nothing has the excluded pod as its local side */
	EXPECT_EQ(1, entities_in_scope(self, "service"));
	EXPECT_EQ(1, entities_in_scope(self, "instance"));
	EXPECT_EQ(-1, metric_sum(self, "service", backend, 0, 0, 0, "kubernetes_service_read_cpm"));
	EXPECT_EQ(-1, metric_sum(self, "service_relation", SVC("frontend"), backend, 0, 0,
				 "kubernetes_service_relation_accept_cpm"));
	EXPECT_EQ(-1, metric_sum(self, "service_relation", SVC("frontend"), backend, 0, 0,
				 "kubernetes_service_relation_server_read_cpm"));
	/* the client's side, exactly, with its peer named in the excluded namespace */
	EXPECT_EQ(c->connects, metric_sum(self, "service", SVC("frontend"), 0, 0, 0, "kubernetes_service_connect_cpm"));
	EXPECT_EQ(c->writes, metric_sum(self, "instance", SVC("frontend"), self->client_pod, 0, 0,
					"kubernetes_service_instance_write_cpm"));
	EXPECT_EQ(1, entities_in_scope(self, "service_relation"));
	EXPECT_EQ(c->connects, metric_sum(self, "service_relation", SVC("frontend"), backend, 0, 0,
					  "kubernetes_service_relation_connect_cpm"));
	EXPECT_EQ(c->writes, metric_sum(self, "service_relation", SVC("frontend"), backend, 0, 0,
					"kubernetes_service_relation_client_write_cpm"));
	EXPECT_EQ(1, entities_in_scope(self, "instance_relation"));
	EXPECT_EQ(c->reads, metric_sum(self, "instance_relation", SVC("frontend"), self->client_pod, backend,
				       self->server_pod, "kubernetes_service_instance_relation_client_read_cpm"));
}

KTEST_F(entities, excluded_namespace_drops_its_local_rows_and_counts_them, 120)
{
	check_only_client_namespace_kept(_metadata, self, "k8s_exclude_namespaces=" OTHER_NAMESPACE);
}

KTEST_F(entities, include_list_drops_the_other_namespaces_local_rows, 120)
{
	check_only_client_namespace_kept(_metadata, self, "k8s_include_namespaces=" NAMESPACE);
}

/* The C fake OAP next to the agent binary, recording what arrives as NDJSON. */
static pid_t fake_oap_start(const char *out_path, const char *port_path)
{
	char bin_dir[PATH_MAX], fake[PATH_MAX + 32];
	pid_t pid;

	snprintf(bin_dir, sizeof(bin_dir), "%s", kaccess_binary());
	snprintf(fake, sizeof(fake), "%s/selftests/oap/fake_oap", dirname(bin_dir));
	if (access(fake, X_OK))
		return -1;
	unlink(port_path);
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		execl(fake, fake, "--listen", "127.0.0.1:0", "--port-file", port_path, "--out", out_path,
		      (char *)NULL);
		_exit(127);
	}
	return pid;
}

static int read_port(const char *port_path, int timeout_ms)
{
	for (int waited = 0; waited < timeout_ms; waited += 50) {
		FILE *file = fopen(port_path, "r");
		int port = 0;

		if (file) {
			if (fscanf(file, "%d", &port) != 1)
				port = 0;
			fclose(file);
			if (port > 0)
				return port;
		}
		usleep(50 * 1000);
	}
	return -1;
}

/*
 * A fake OAP, the two pods named frontend and backend, and the agent's
 * settings for both (self->api_setting, self->oap_setting). -ENOENT when
 * there is no fake_oap binary, -1 on failure.
 */
/* The fake OAP, and the client pod (and the server pod unless `client_only`) in the fake API. */
static int start_fake_oap_with_pods(FIXTURE_DATA(entities) *self, bool client_only)
{
	int port;

	snprintf(self->oap_out, sizeof(self->oap_out), "/tmp/kaccess-selftest-oap-%d.ndjson", getpid());
	snprintf(self->oap_port_path, sizeof(self->oap_port_path), "/tmp/kaccess-selftest-oap-%d.port",
		 getpid());
	self->oap_pid = fake_oap_start(self->oap_out, self->oap_port_path);
	if (self->oap_pid < 0)
		return -ENOENT;
	port = read_port(self->oap_port_path, 5000);
	if (port <= 0)
		return -1;
	snprintf(self->api_setting, sizeof(self->api_setting), "k8s_api_server=http://127.0.0.1:%d",
		 self->api_port);
	snprintf(self->oap_setting, sizeof(self->oap_setting), "oap_address=127.0.0.1:%d", port);
	if (add_pod(self->api_port, &self->pods.client, self->client_pod, "frontend") != 200 ||
	    (!client_only &&
	     add_pod(self->api_port, &self->pods.server, self->server_pod, "backend") != 200))
		return -1;
	return 0;
}

#define START_FAKE_OAP_OR_SKIP(self)                                                   \
	START_FAKE_OAP_WITH_PODS_OR_SKIP(self, false)

#define START_FAKE_OAP_WITH_PODS_OR_SKIP(self, client_only)                            \
	do {                                                                           \
		int started = start_fake_oap_with_pods(self, client_only);             \
		if (started == -ENOENT)                                                \
			SKIP(return, "no fake_oap next to %s", kaccess_binary());      \
		ASSERT_EQ(0, started);                                                 \
	} while (0)

static const char *label_of(struct json_object *labels, const char *name)
{
	for (size_t i = 0; labels && i < json_object_array_length(labels); i++) {
		struct json_object *label = json_object_array_get_idx(labels, i), *n, *v;

		if (json_object_object_get_ex(label, "name", &n) && json_object_object_get_ex(label, "value", &v) &&
		    strcmp(json_object_get_string(n), name) == 0)
			return json_object_get_string(v);
	}
	return NULL;
}

struct meter_query {
	const char *name, *svc, *side, *src_svc, *dst_svc;
	uint64_t sum;
	unsigned int samples, without_identity;
};

/* Add up a single-value meter over every MeterData that arrived, by its labels. */
static void meter_add(struct meter_query *q, struct json_object *data)
{
	struct json_object *single, *name, *labels = NULL, *value, *v;
	const char *side, *svc, *src, *dst;

	if (!json_object_object_get_ex(data, "singleValue", &single) ||
	    !json_object_object_get_ex(single, "name", &name) ||
	    strcmp(json_object_get_string(name), q->name) != 0)
		return;
	json_object_object_get_ex(single, "labels", &labels);
	svc = label_of(labels, "svc");
	side = label_of(labels, "side");
	src = label_of(labels, "src_svc");
	dst = label_of(labels, "dst_svc");
	if ((q->svc && (!svc || strcmp(svc, q->svc))) || (q->side && (!side || strcmp(side, q->side))) ||
	    (q->src_svc && (!src || strcmp(src, q->src_svc))) || (q->dst_svc && (!dst || strcmp(dst, q->dst_svc))))
		return;
	if (!json_object_object_get_ex(data, "service", &v) || !json_object_object_get_ex(data, "serviceInstance", &v) ||
	    !json_object_object_get_ex(data, "timestamp", &v))
		q->without_identity++;
	q->samples++;
	if (json_object_object_get_ex(single, "value", &value))
		q->sum += (uint64_t)json_object_get_double(value);
}

static int meter_sum(const char *fake_out, struct meter_query *q)
{
	char line[1 << 16];
	FILE *file = fopen(fake_out, "r");

	if (!file)
		return -1;
	while (fgets(line, sizeof(line), file)) {
		struct json_object *obj = json_tokener_parse(line), *method, *msg, *list;

		if (obj && json_object_object_get_ex(obj, "method", &method) &&
		    strstr(json_object_get_string(method), "MeterReportService") &&
		    json_object_object_get_ex(obj, "msg", &msg) &&
		    json_object_object_get_ex(msg, "meterData", &list))
			for (size_t i = 0; i < json_object_array_length(list); i++)
				meter_add(q, json_object_array_get_idx(list, i));
		json_object_put(obj);
	}
	fclose(file);
	return 0;
}

/* Pre-aggregated meters reach (a fake) OAP with the numbers of the entity lines. */
KTEST_F(entities, meters_reach_oap_with_exact_counts, 120)
{
	const struct side_truth *c = &self->truth->client, *s = &self->truth->server;
	char listen[64], metrics_path[128];
	const char *args[] = { "--pin-dir", ENTITIES_PIN_DIR, "-i", "60", "--set", self->api_setting,
			       "--set", self->oap_setting, "--set", "oap_mode=metrics", "--set", listen, NULL };
	struct meter_query connects = { .name = "kaccess_connect_count", .svc = SVC("frontend"),
					.src_svc = SVC("frontend"), .dst_svc = SVC("backend") };
	struct meter_query server_reads = { .name = "kaccess_read_count", .svc = SVC("backend"),
					    .side = "server", .src_svc = SVC("frontend") };
	struct meter_query client_writes = { .name = "kaccess_write_count", .side = "client",
					     .dst_svc = SVC("backend") };
	struct meter_query accepts = { .name = "kaccess_accept_count", .svc = SVC("backend") };

	START_FAKE_OAP_OR_SKIP(self);
	snprintf(listen, sizeof(listen), "http_listen=127.0.0.1:%d", fake_free_port());
	snprintf(metrics_path, sizeof(metrics_path), "/tmp/kaccess-selftest-metrics-%d.txt", getpid());
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	/* the resolver's and the sender's state in /metrics, valid for promtool */
	ASSERT_EQ(0, run_quiet("curl -sf http://%s/metrics -o %s", listen + strlen("http_listen="),
			       metrics_path));
	EXPECT_EQ(0, run_quiet("grep -qx 'kaccess_k8s_synced 1' %s", metrics_path));
	EXPECT_EQ(0, run_quiet("grep -qx 'kaccess_k8s_objects{kind=\"pod\"} 2' %s", metrics_path));
	EXPECT_EQ(0, run_quiet("grep -qx 'kaccess_k8s_objects{kind=\"service\"} 2' %s", metrics_path));
	EXPECT_EQ(0, run_quiet("grep -q '^kaccess_oap_messages_total{stream=\"[a-z_]*\",result=\"delivered\"} ' %s",
			       metrics_path));
	EXPECT_EQ(0, run_quiet("grep -q '^kaccess_oap_dropped_total{stream=' %s", metrics_path));
	if (access("/usr/bin/promtool", X_OK) == 0)
		EXPECT_EQ(0, run_quiet("promtool check metrics < %s", metrics_path));
	unlink(metrics_path);
	ASSERT_EQ(0, stop_and_read(self)); /* the agent flushes its queue before it exits */
	stop_fake_oap(self);

	ASSERT_EQ(0, meter_sum(self->oap_out, &connects));
	ASSERT_EQ(0, meter_sum(self->oap_out, &server_reads));
	ASSERT_EQ(0, meter_sum(self->oap_out, &client_writes));
	ASSERT_EQ(0, meter_sum(self->oap_out, &accepts));
	EXPECT_EQ(c->connects, connects.sum);
	EXPECT_EQ(s->reads, server_reads.sum);
	EXPECT_EQ(c->writes, client_writes.sum);
	EXPECT_EQ(s->accepts, accepts.sum);
	/* and the same as the entity lines of the same run */
	EXPECT_EQ(metric_sum(self, "service_relation", SVC("frontend"), SVC("backend"), 0, 0,
			     "kubernetes_service_relation_server_read_cpm"), (int64_t)server_reads.sum);
	/* OAP drops a collection without service, instance or timestamp */
	EXPECT_EQ(0, connects.without_identity + server_reads.without_identity);
	EXPECT_LT(0, connects.samples);
}

/*
 * hooks = tcp sees no accept() and no close(): their counts reach OAP, their
 * times do not (no zero that would read as instant), while connects, which
 * it times from SYN_SENT, keep theirs.
 */
KTEST_F(entities, untimed_accepts_and_closes_reach_oap_without_a_time, 120)
{
	const struct side_truth *c = &self->truth->client, *s = &self->truth->server;
	const char *args[] = { "--pin-dir", ENTITIES_PIN_DIR, "-i", "60", "--set", self->api_setting,
			       "--set", self->oap_setting, "--set", "oap_mode=metrics",
			       "--set", "hooks=tcp", NULL };
	struct meter_query accepts = { .name = "kaccess_accept_count", .svc = SVC("backend") };
	struct meter_query accept_ns = { .name = "kaccess_accept_duration_ns", .svc = SVC("backend") };
	struct meter_query closes = { .name = "kaccess_close_count" };
	struct meter_query close_ns = { .name = "kaccess_close_duration_ns" };
	struct meter_query connects = { .name = "kaccess_connect_count", .svc = SVC("frontend") };
	struct meter_query connect_ns = { .name = "kaccess_connect_duration_ns", .svc = SVC("frontend") };

	if (!kaccess_loads_with("hooks=tcp"))
		SKIP(return, "kernel lacks tcp:tcp_sendmsg_locked or the sock length tracepoints");
	START_FAKE_OAP_OR_SKIP(self);
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	ASSERT_EQ(0, stop_and_read(self));
	stop_fake_oap(self);

	ASSERT_EQ(0, meter_sum(self->oap_out, &accepts));
	ASSERT_EQ(0, meter_sum(self->oap_out, &accept_ns));
	ASSERT_EQ(0, meter_sum(self->oap_out, &closes));
	ASSERT_EQ(0, meter_sum(self->oap_out, &close_ns));
	ASSERT_EQ(0, meter_sum(self->oap_out, &connects));
	ASSERT_EQ(0, meter_sum(self->oap_out, &connect_ns));
	EXPECT_EQ(s->accepts, accepts.sum);
	EXPECT_EQ(0, accept_ns.samples);
	EXPECT_EQ(c->closes + s->closes, closes.sum);
	EXPECT_EQ(0, close_ns.samples);
	EXPECT_EQ(c->connects, connects.sum);
	EXPECT_EQ(connects.samples, connect_ns.samples);
	EXPECT_LT(0, connect_ns.sum);
	EXPECT_GE(c->connect_ns, connect_ns.sum);
}

/* ---- the entities on /metrics ---- */

#define PROM_INTERVAL_S 5
#define PROM_CPM_PER_CALL (60 / PROM_INTERVAL_S)
/* seconds a run kept inside one minute's bucket needs (tcp_run takes about 2) */
#define ONE_BUCKET_RUN_ROOM_S 20

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* An agent with PROM_INTERVAL_S buckets that serves /metrics, and where to keep a scrape. */
struct prom_agent_settings {
	char interval[16], listen[64], metrics_path[128];
};

static void prom_agent_settings_init(FIXTURE_DATA(entities) *self, struct prom_agent_settings *ret,
				     const char *scrape_tag)
{
	snprintf(self->api_setting, sizeof(self->api_setting), "k8s_api_server=http://127.0.0.1:%d",
		 self->api_port);
	snprintf(ret->interval, sizeof(ret->interval), "%d", PROM_INTERVAL_S);
	snprintf(ret->listen, sizeof(ret->listen), "http_listen=127.0.0.1:%d", fake_free_port());
	snprintf(ret->metrics_path, sizeof(ret->metrics_path), "/tmp/kaccess-selftest-%s-%d.prom",
		 scrape_tag, getpid());
}

/* Sleep until 200 ms into the next bucket of interval_s; returns its start in seconds. */
static uint64_t enter_next_bucket_of(uint64_t interval_s)
{
	uint64_t now = wall_ms(), next = (now / (interval_s * 1000) + 1) * interval_s * 1000;

	usleep((next + 200 - now) * 1000);
	return next / 1000;
}

static uint64_t enter_next_bucket(void)
{
	return enter_next_bucket_of(PROM_INTERVAL_S);
}

/* Make sure at least needed_s remain of the current bucket of interval_s, waiting for the next if not. */
static void leave_room_in_bucket(uint64_t interval_s, uint64_t needed_s)
{
	uint64_t interval_ms = interval_s * 1000;

	if (interval_ms - wall_ms() % interval_ms < needed_s * 1000)
		enter_next_bucket_of(interval_s);
}

/* Scrape /metrics into path until it shows the entities of the bucket at start_s (15 s at most). */
static int scrape_bucket(const char *address, const char *path, uint64_t start_s)
{
	for (int i = 0; i < 150; i++) {
		if (run_quiet("curl -sf http://%s/metrics -o %s", address, path) == 0 &&
		    run_quiet("grep -qx 'kaccess_entity_bucket_start_timestamp_seconds %llu' %s",
			      (unsigned long long)start_s, path) == 0)
			return 0;
		usleep(100 * 1000);
	}
	return -1;
}

/* Whether the scrape at path has exactly this sample line. */
static bool has_sample(const char *path, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static bool has_sample(const char *path, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	return run_quiet("grep -qxF '%s' %s", line, path) == 0;
}

/* The value of one sample line ("name{labels}") of a scrape; -1 when it is not there. */
static long long sample_value(const char *path, const char *sample)
{
	char line[1024];
	long long value = -1;
	size_t len = strlen(sample);
	FILE *file = fopen(path, "re");

	while (file && fgets(line, sizeof(line), file))
		if (strncmp(line, sample, len) == 0 && line[len] == ' ')
			value = strtoll(line + len + 1, NULL, 10);
	if (file)
		fclose(file);
	return value;
}

/* How many lines of the file hold `text`. */
static int lines_with(const char *path, const char *text)
{
	char line[4096];
	int count = 0;
	FILE *file = fopen(path, "re");

	while (file && fgets(line, sizeof(line), file))
		count += strstr(line, text) != NULL;
	if (file)
		fclose(file);
	return count;
}

/*
 * The API is down from the start: every row's peer is a lookup that finds
 * no name, /metrics counts each one, and the log says so once (the
 * second line is a minute away).
 */
KTEST_F(entities, api_down_at_start_counts_and_logs_unresolved_lookups, 120)
{
	struct prom_agent_settings prom;
	const char *args[] = { "--pin-dir", ENTITIES_PIN_DIR, "-i", prom.interval, "--set", self->api_setting,
			       "--set", prom.listen, NULL };
	const char *address = prom.listen + strlen("http_listen="), *metrics_path = prom.metrics_path;
	long long unresolved_peer, rows_dropped = -1;

	fake_stop(self->api_pid); /* nothing answers at api_port */
	self->api_pid = 0;
	prom_agent_settings_init(self, &prom, "down");
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	enter_next_bucket();
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	/* the traffic's bucket drained (its totals are added after its lookups) */
	for (int i = 0; i < 150 && rows_dropped <= 0; i++) {
		usleep(100 * 1000);
		if (run_quiet("curl -sf http://%s/metrics -o %s", address, metrics_path) == 0)
			rows_dropped = sample_value(metrics_path,
						    "kaccess_entity_flows_total{result=\"unknown_local\"}");
	}
	ASSERT_LT(0, rows_dropped);
	/* and the next one, should the traffic have reached it */
	usleep((PROM_INTERVAL_S * 1000 + 500) * 1000);
	ASSERT_EQ(0, run_quiet("curl -sf http://%s/metrics -o %s", address, metrics_path));
	unresolved_peer = sample_value(metrics_path, "kaccess_k8s_unresolved_total{side=\"peer\"}");
	EXPECT_EQ(0, sample_value(metrics_path, "kaccess_k8s_synced"));
	EXPECT_LT(0, sample_value(metrics_path, "kaccess_k8s_errors_total{request=\"list\"}"));
	/* every local lookup failed too: rows first look up their local pod */
	EXPECT_LE(unresolved_peer, sample_value(metrics_path, "kaccess_k8s_unresolved_total{side=\"local\"}"));
	EXPECT_EQ(unresolved_peer,
		  sample_value(metrics_path, "kaccess_entity_flows_total{result=\"unknown_local\"}"));
	unlink(metrics_path);
	ASSERT_EQ(0, stop_and_read(self));
	/* one row, one peer lookup: every row of both pods, none named */
	EXPECT_LT(0, unresolved_peer);
	EXPECT_EQ(unresolved_peer, self->flows);
	EXPECT_EQ(self->flows, self->dropped_unknown_local);
	EXPECT_EQ(0, self->line_count);
	EXPECT_EQ(1, lines_with(self->agent.err_path, "lookups found no name in the last"));
	EXPECT_EQ(1, lines_with(self->agent.err_path, "the API is not synced (list "))
		TH_LOG("see %s", self->agent.err_path);
}

/*
 * /metrics shows the last completed bucket's entities as kaccess_<OAL name>
 * gauges: all the traffic in one 5-second bucket, so each cpm is the
 * traffic's own count x 12.
 */
KTEST_F(entities, prometheus_shows_the_last_bucket_entities_exactly, 120)
{
	const struct side_truth *c = &self->truth->client, *s = &self->truth->server;
	struct prom_agent_settings prom;
	const char *args[] = { "--pin-dir", ENTITIES_PIN_DIR, "-i", prom.interval, "--set", self->api_setting,
			       "--set", prom.listen, NULL };
	const char *address = prom.listen + strlen("http_listen="), *metrics_path = prom.metrics_path;
	uint64_t bucket_s, started_ms;
	int families;

	ASSERT_EQ(200, add_pod(self->api_port, &self->pods.client, self->client_pod, "frontend"));
	ASSERT_EQ(200, add_pod(self->api_port, &self->pods.server, self->server_pod, "backend"));
	prom_agent_settings_init(self, &prom, "entities");
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	bucket_s = enter_next_bucket();
	started_ms = wall_ms();
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	/* the traffic's reads and writes all fell in one bucket */
	ASSERT_GT(bucket_s * 1000 + PROM_INTERVAL_S * 1000, wall_ms()) TH_LOG("traffic took %llu ms",
		(unsigned long long)(wall_ms() - started_ms));
	ASSERT_EQ(0, scrape_bucket(address, metrics_path, bucket_s));

	EXPECT_TRUE(has_sample(metrics_path, "kaccess_kubernetes_service_connect_cpm{service=\"%s\"} %llu",
			       SVC("frontend"), (unsigned long long)c->connects * PROM_CPM_PER_CALL));
	EXPECT_TRUE(has_sample(metrics_path, "kaccess_kubernetes_service_read_cpm{service=\"%s\"} %llu",
			       SVC("backend"), (unsigned long long)s->reads * PROM_CPM_PER_CALL));
	EXPECT_TRUE(has_sample(metrics_path,
			       "kaccess_kubernetes_service_instance_write_cpm{service=\"%s\",instance=\"%s\"} %llu",
			       SVC("frontend"), self->client_pod, (unsigned long long)c->writes * PROM_CPM_PER_CALL));
	EXPECT_TRUE(has_sample(metrics_path,
			       "kaccess_kubernetes_service_relation_server_read_cpm{source_service=\"%s\","
			       "dest_service=\"%s\",component_id=\"110\"} %llu",
			       SVC("frontend"), SVC("backend"), (unsigned long long)s->reads * PROM_CPM_PER_CALL));
	EXPECT_TRUE(has_sample(metrics_path,
			       "kaccess_kubernetes_service_instance_relation_server_write_cpm{source_service=\"%s\","
			       "source_instance=\"%s\",dest_service=\"%s\",dest_instance=\"%s\",component_id=\"110\"} %llu",
			       SVC("frontend"), self->client_pod, SVC("backend"), self->server_pod,
			       (unsigned long long)s->writes * PROM_CPM_PER_CALL));
	/* a family per metric, its samples together (promtool checks that too) */
	families = run_quiet("test $(grep -c '^# TYPE kaccess_kubernetes_service_read_cpm gauge$' %s) -eq 1",
			     metrics_path);
	EXPECT_EQ(0, families);
	if (access("/usr/bin/promtool", X_OK) == 0)
		EXPECT_EQ(0, run_quiet("promtool check metrics < %s", metrics_path));
	unlink(metrics_path);
}

#define NGINX "/usr/sbin/nginx"
#define CURL "/usr/bin/curl"
#define NGINX_PORT 8081

/* nginx in the server pod: 200, 404 and 500 locations, one worker. */
static pid_t start_nginx(const struct pod *server, const char *dir)
{
	char conf_path[160];
	char *argv[] = { NGINX, "-c", conf_path, "-p", (char *)dir, NULL };
	FILE *conf;

	mkdir(dir, 0755);
	snprintf(conf_path, sizeof(conf_path), "%s/nginx.conf", dir);
	conf = fopen(conf_path, "w");
	if (!conf)
		return -1;
	fprintf(conf,
		"daemon off;\nworker_processes 1;\npid %s/nginx.pid;\nerror_log %s/error.log;\n"
		"events { worker_connections 64; }\n"
		"http {\n  access_log off;\n  client_body_temp_path %s; proxy_temp_path %s;\n"
		"  fastcgi_temp_path %s; uwsgi_temp_path %s; scgi_temp_path %s;\n"
		"  server {\n    listen %s:%d;\n"
		"    location = /ok { return 200 \"fine\\n\"; }\n"
		"    location = /missing { return 404; }\n"
		"    location = /broken { return 500; }\n  }\n}\n",
		dir, dir, dir, dir, dir, dir, dir, server->ipv4, NGINX_PORT);
	fclose(conf);
	return pod_exec(server, argv, NULL);
}

static int wait_port(const struct pod *pod, int port)
{
	for (int i = 0; i < 100; i++) {
		if (run_quiet("ip netns exec %s ss -Hltn 'sport = :%d' | grep -q %d", pod->netns, port, port) == 0)
			return 0;
		usleep(50 * 1000);
	}
	return -1;
}

struct curl_counts {
	unsigned long requests, request_header, status[6];
};

/* One curl, one keep-alive connection, the paths in order; curl's own sizes. */
static int run_curl(const struct pod *client, const struct pod *server, const char *dir,
		    const char *const *paths, struct curl_counts *counts)
{
	char out[160], urls[16][96], *argv[64];
	unsigned long request, code;
	int argc = 0, status;
	FILE *file;

	snprintf(out, sizeof(out), "%s/curl.out", dir);
	argv[argc++] = CURL;
	argv[argc++] = "-s";
	argv[argc++] = "-w";
	argv[argc++] = "%{size_request} %{http_code}\\n";
	for (int i = 0; paths[i] && i < 16; i++) {
		snprintf(urls[i], sizeof(urls[i]), "http://%s:%d%s", server->ipv4, NGINX_PORT, paths[i]);
		argv[argc++] = "-o";
		argv[argc++] = "/dev/null";
		argv[argc++] = urls[i];
	}
	argv[argc] = NULL;
	status = child_wait(pod_exec(client, argv, out));
	if (status)
		return status;
	file = fopen(out, "r");
	if (!file)
		return -1;
	while (fscanf(file, "%lu %lu", &request, &code) == 2) {
		counts->requests++;
		counts->request_header += request;
		if (code >= 100 && code < 600)
			counts->status[code / 100]++;
	}
	fclose(file);
	return 0;
}

static int64_t endpoint_metric(FIXTURE_DATA(entities) *self, const char *service, const char *endpoint,
			       const char *metric)
{
	int64_t sum = -1;

	for (int i = 0; i < self->line_count; i++) {
		struct json_object *line = self->lines[i], *metrics, *v;

		if (!field_is(line, "scope", "endpoint") || !field_is(line, "service", service) ||
		    !field_is(line, "endpoint", endpoint) ||
		    !json_object_object_get_ex(line, "metrics", &metrics) ||
		    !json_object_object_get_ex(metrics, metric, &v))
			continue;
		sum = (sum < 0 ? 0 : sum) + json_object_get_int64(v);
	}
	return sum;
}

/* HTTP through the entities: server-side service metrics, endpoints, both relation sides. */
KTEST_F(entities, http_exchanges_become_service_endpoint_and_relation_metrics, 120)
{
	const char *paths[] = { "/ok", "/ok", "/missing", "/ok", "/broken", "/missing", "/ok", NULL };
	struct curl_counts curl = { 0 };
	char dir[96];
	pid_t nginx;

	if (access(NGINX, X_OK) || access(CURL, X_OK))
		SKIP(return, "needs nginx and curl (make deps-test)");
	snprintf(dir, sizeof(dir), "/tmp/kaccess-selftest-entities-%d", getpid());
	ASSERT_EQ(200, add_pod(self->api_port, &self->pods.client, self->client_pod, "frontend"));
	ASSERT_EQ(200, add_pod(self->api_port, &self->pods.server, self->server_pod, "backend"));
	ASSERT_EQ(0, start_agent(self));
	nginx = start_nginx(&self->pods.server, dir);
	ASSERT_LT(0, nginx);
	ASSERT_EQ(0, wait_port(&self->pods.server, NGINX_PORT));
	ASSERT_EQ(0, run_curl(&self->pods.client, &self->pods.server, dir, paths, &curl));
	ASSERT_EQ(7, curl.requests);
	ASSERT_EQ(0, stop_and_read(self));
	kill(nginx, SIGTERM);
	child_wait(nginx);
	run_quiet("rm -rf %s", dir);

	/* service HTTP metrics: the server side only, each exchange once */
	EXPECT_EQ(7, metric_sum(self, "service", SVC("backend"), 0, 0, 0, "kubernetes_service_http_call_cpm"));
	EXPECT_EQ(4, metric_sum(self, "service", SVC("backend"), 0, 0, 0, "kubernetes_service_http_status_2xx_cpm"));
	EXPECT_EQ(2, metric_sum(self, "service", SVC("backend"), 0, 0, 0, "kubernetes_service_http_status_4xx_cpm"));
	EXPECT_EQ(1, metric_sum(self, "service", SVC("backend"), 0, 0, 0, "kubernetes_service_http_status_5xx_cpm"));
	EXPECT_EQ(6 * 10000 / 7, metric_sum(self, "service", SVC("backend"), 0, 0, 0,
					     "kubernetes_service_http_call_successful_rate"));
	EXPECT_EQ((int64_t)(curl.request_header / curl.requests),
		  metric_sum(self, "service", SVC("backend"), 0, 0, 0, "kubernetes_service_http_avg_req_header_size"));
	EXPECT_EQ(-1, metric_sum(self, "service", SVC("frontend"), 0, 0, 0, "kubernetes_service_http_call_cpm"));
	/* endpoints: "METHOD:path", the server's */
	EXPECT_EQ(4, endpoint_metric(self, SVC("backend"), "GET:/ok", "kubernetes_service_endpoint_call_cpm"));
	EXPECT_EQ(10000, endpoint_metric(self, SVC("backend"), "GET:/ok",
					 "kubernetes_service_endpoint_call_successful_rate"));
	EXPECT_EQ(2, endpoint_metric(self, SVC("backend"), "GET:/missing",
				     "kubernetes_service_endpoint_http_status_4xx_cpm"));
	EXPECT_EQ(0, endpoint_metric(self, SVC("backend"), "GET:/broken",
				     "kubernetes_service_endpoint_call_successful_rate"));
	EXPECT_EQ(3, entities_in_scope(self, "endpoint"));
	/* the relation sees the exchanges from both ends */
	EXPECT_EQ(7, metric_sum(self, "service_relation", SVC("frontend"), SVC("backend"), 0, 0,
				"kubernetes_service_relation_server_http_call_cpm"));
	EXPECT_EQ(7, metric_sum(self, "service_relation", SVC("frontend"), SVC("backend"), 0, 0,
				"kubernetes_service_relation_client_http_call_cpm"));
	EXPECT_EQ(1, metric_sum(self, "service_relation", SVC("frontend"), SVC("backend"), 0, 0,
				"kubernetes_service_relation_client_http_status_5xx_cpm"));
	for (int i = 0; i < self->line_count; i++)
		if (field_is(self->lines[i], "scope", "service_relation")) {
			struct json_object *component;

			ASSERT_TRUE(json_object_object_get_ex(self->lines[i], "component_id", &component));
			EXPECT_EQ(49, json_object_get_int(component));
		}
}

/*
 * A ClusterIP with a DNAT rule in front of the server pod: the client's
 * socket only knows the ClusterIP, but its first packet leaves for the
 * server pod, so the client's rows name the backend: the service and the
 * instance relation from both sides.
 */
KTEST_F(entities, cluster_ip_behind_dnat_names_the_service, 120)
{
	const struct side_truth *c = &self->truth->client, *s = &self->truth->server;
	pid_t server;

	ASSERT_EQ(200, add_pod(self->api_port, &self->pods.client, self->client_pod, "frontend"));
	ASSERT_EQ(200, add_pod(self->api_port, &self->pods.server, self->server_pod, "backend"));
	ASSERT_EQ(0, run_quiet("ip netns exec %s nft add table ip kaccess_dnat", self->pods.client.netns));
	ASSERT_EQ(0, run_quiet("ip netns exec %s nft add chain ip kaccess_dnat out "
			       "'{ type nat hook output priority -100; }'", self->pods.client.netns));
	ASSERT_EQ(0, run_quiet("ip netns exec %s nft add rule ip kaccess_dnat out "
			       "ip daddr 10.96.10.2 tcp dport 80 dnat to %s:8080",
			       self->pods.client.netns, self->pods.server.ipv4));
	ASSERT_EQ(0, run_quiet("ip -n %s route add 10.96.0.0/16 dev eth0", self->pods.client.netns));
	ASSERT_EQ(0, start_agent(self));
	/* the server listens on its own 8080; the client dials the ClusterIP's port 80 */
	server = tcp_server_start(&self->pods.server, &self->plan, &self->truth->server);
	ASSERT_LT(0, server);
	self->plan.server_addr = "10.96.10.2";
	self->plan.port = 80;
	ASSERT_EQ(0, tcp_client_run(&self->pods.client, &self->plan, &self->truth->client));
	ASSERT_EQ(0, child_wait(server));
	ASSERT_EQ(0, stop_and_read(self));

	EXPECT_EQ(c->connects, metric_sum(self, "service_relation", SVC("frontend"), SVC("backend"), 0, 0,
					  "kubernetes_service_relation_connect_cpm"));
	EXPECT_EQ(s->accepts, metric_sum(self, "service_relation", SVC("frontend"), SVC("backend"), 0, 0,
					 "kubernetes_service_relation_accept_cpm"));
	EXPECT_EQ(c->writes, metric_sum(self, "service_relation", SVC("frontend"), SVC("backend"), 0, 0,
					"kubernetes_service_relation_client_write_cpm"));
	EXPECT_EQ(s->reads, metric_sum(self, "instance_relation", SVC("frontend"), self->client_pod,
				       SVC("backend"), self->server_pod,
				       "kubernetes_service_instance_relation_server_read_cpm"));
	EXPECT_EQ(c->writes, metric_sum(self, "instance_relation", SVC("frontend"), self->client_pod,
					SVC("backend"), self->server_pod,
					"kubernetes_service_instance_relation_client_write_cpm"));
	EXPECT_EQ(c->connects, metric_sum(self, "instance_relation", SVC("frontend"), self->client_pod,
					  SVC("backend"), self->server_pod,
					  "kubernetes_service_instance_relation_connect_cpm"));
}

static struct json_object *path_get(struct json_object *obj, const char *const *keys)
{
	for (int i = 0; obj && keys[i]; i++)
		if (!json_object_object_get_ex(obj, keys[i], &obj))
			return NULL;
	return obj;
}

static const char *path_string(struct json_object *obj, const char *const *keys)
{
	struct json_object *v = path_get(obj, keys);

	return v ? json_object_get_string(v) : NULL;
}

struct access_log_counts {
	unsigned int connects, connect_successes, accepts, client_closes, server_closes;
	unsigned int node_first, calls, remote_is_pod, bad_times;
};

static void count_access_log(struct access_log_counts *n, struct json_object *msg, const char *client_pod,
			     const char *server_pod)
{
	const char *local_pod = path_string(msg, (const char *[]){ "connection", "local", "kubernetes", "podName", NULL });
	const char *remote_pod = path_string(msg, (const char *[]){ "connection", "remote", "kubernetes", "podName", NULL });
	struct json_object *logs = path_get(msg, (const char *[]){ "kernelLogs", NULL });
	bool client = local_pod && strcmp(local_pod, client_pod) == 0;
	bool server = local_pod && strcmp(local_pod, server_pod) == 0;

	for (size_t i = 0; logs && i < json_object_array_length(logs); i++) {
		struct json_object *log = json_object_array_get_idx(logs, i), *op = NULL;
		const char *start, *end;

		if (client && json_object_object_get_ex(log, "connect", &op)) {
			struct json_object *success;

			n->connects++;
			n->connect_successes += json_object_object_get_ex(op, "success", &success) &&
						json_object_get_boolean(success);
			n->remote_is_pod += remote_pod && strcmp(remote_pod, server_pod) == 0;
		} else if (server && json_object_object_get_ex(log, "accept", &op)) {
			n->accepts++;
			n->remote_is_pod += remote_pod && strcmp(remote_pod, client_pod) == 0;
		} else if (json_object_object_get_ex(log, "close", &op)) {
			n->client_closes += client;
			n->server_closes += server;
		}
		start = path_string(op, (const char *[]){ "startTime", "offset", "offset", NULL });
		end = path_string(op, (const char *[]){ "endTime", "offset", "offset", NULL });
		if (op && (!start || !end || strtoull(start, NULL, 10) > strtoull(end, NULL, 10) ||
			   strtoull(end, NULL, 10) == 0))
			n->bad_times++;
	}
}

static int read_access_logs(const char *fake_out, const char *client_pod, const char *server_pod,
			    struct access_log_counts *n)
{
	char line[1 << 16];
	FILE *file = fopen(fake_out, "r");

	if (!file)
		return -1;
	while (fgets(line, sizeof(line), file)) {
		struct json_object *obj = json_tokener_parse(line), *method, *msg, *seq;

		if (obj && json_object_object_get_ex(obj, "method", &method) &&
		    strstr(json_object_get_string(method), "EBPFAccessLogService") &&
		    json_object_object_get_ex(obj, "msg", &msg)) {
			if (json_object_object_get_ex(obj, "seq", &seq) && json_object_get_int(seq) == 0) {
				n->calls++;
				n->node_first += path_get(msg, (const char *[]){ "node", "name", NULL }) != NULL;
			}
			count_access_log(n, msg, client_pod, server_pod);
		}
		json_object_put(obj);
	}
	fclose(file);
	return 0;
}

/* Every connect, accept and close of the pods reaches OAP as a kernel log, after node info. */
KTEST_F(entities, access_logs_reach_oap_for_every_connection_event, 120)
{
	const struct side_truth *c = &self->truth->client, *s = &self->truth->server;
	const char *args[] = { "--pin-dir", ENTITIES_PIN_DIR, "-i", "60", "--set", self->api_setting,
			       "--set", self->oap_setting, "--set", "oap_mode=access_logs", NULL };
	struct access_log_counts n = { 0 };

	START_FAKE_OAP_OR_SKIP(self);
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	ASSERT_EQ(0, stop_and_read(self));
	stop_fake_oap(self);
	ASSERT_EQ(0, read_access_logs(self->oap_out, self->client_pod, self->server_pod, &n));

	EXPECT_EQ(c->connects, n.connects);
	EXPECT_EQ(c->connect_successes, n.connect_successes);
	EXPECT_EQ(s->accepts, n.accepts);
	EXPECT_EQ(c->closes, n.client_closes);
	EXPECT_EQ(s->closes, n.server_closes);
	/* each side names the other pod */
	EXPECT_EQ(c->connects + s->accepts, n.remote_is_pod);
	EXPECT_EQ(0, n.bad_times);
	EXPECT_LT(0, n.calls);
	EXPECT_EQ(n.calls, n.node_first);
}

/* A pod the API does not know sends no access logs, and says how many it did not send. */
KTEST_F(entities, access_logs_of_an_unknown_pod_are_skipped_and_counted, 120)
{
	const struct side_truth *c = &self->truth->client, *s = &self->truth->server;
	struct prom_agent_settings prom;
	const char *args[] = { "--pin-dir", ENTITIES_PIN_DIR, "-i", "60", "--set", self->api_setting,
			       "--set", self->oap_setting, "--set", "oap_mode=access_logs",
			       "--set", prom.listen, NULL };
	struct access_log_counts n = { 0 };

	START_FAKE_OAP_WITH_PODS_OR_SKIP(self, true); /* the server pod stays unknown */
	prom_agent_settings_init(self, &prom, "skipped");
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	usleep(1000 * 1000); /* the loop reads the last closes within 200 ms */
	ASSERT_EQ(0, run_quiet("curl -sf http://%s/metrics -o %s", prom.listen + strlen("http_listen="),
			       prom.metrics_path));
	/* the server side's opens (accepts) and closes */
	EXPECT_EQ(s->accepts + s->closes,
		  sample_value(prom.metrics_path,
			       "kaccess_oap_access_logs_skipped_total{reason=\"unknown_local\"}"));
	EXPECT_EQ(0, sample_value(prom.metrics_path,
				  "kaccess_oap_access_logs_skipped_total{reason=\"excluded_local\"}"));
	unlink(prom.metrics_path);
	ASSERT_EQ(0, stop_and_read(self));
	stop_fake_oap(self);
	ASSERT_EQ(0, read_access_logs(self->oap_out, self->client_pod, self->server_pod, &n));
	EXPECT_EQ(c->connects, n.connects);
	EXPECT_EQ(c->closes, n.client_closes);
	EXPECT_EQ(0, n.accepts);
	EXPECT_EQ(0, n.server_closes);
}

/* ---- HTTP protocol logs ---------------------------------------------------- */

/* What curl reported for one URL, and the trace headers it sent. */
struct traced_exchange {
	const char *path;           /* what curl asks for */
	const char *log_path;       /* what the log says: the query cut */
	const char *headers[7];     /* curl arguments: "-H", "name: value", ..., NULL */
	unsigned long request_header, response_header, response_body, code;
	unsigned long client_port;  /* the port curl's connection had (its ephemeral port) */
	/* the AccessLogTraceInfo kaccess must derive from the headers */
	const char *provider, *trace_id, *segment_id, *span_id;
};

static int run_curl_traced(const struct pod *client, const struct pod *server, const char *dir,
			   struct traced_exchange *x)
{
	char out[160], url[128], *argv[24];
	int argc = 0, status, scanned;
	FILE *file;

	snprintf(out, sizeof(out), "%s/curl.out", dir);
	snprintf(url, sizeof(url), "http://%s:%d%s", server->ipv4, NGINX_PORT, x->path);
	argv[argc++] = CURL;
	argv[argc++] = "-s";
	argv[argc++] = "-o";
	argv[argc++] = "/dev/null";
	argv[argc++] = "-w";
	argv[argc++] = "%{size_request} %{size_header} %{size_download} %{http_code} %{local_port}";
	for (int i = 0; x->headers[i]; i++)
		argv[argc++] = (char *)x->headers[i];
	argv[argc++] = url;
	argv[argc] = NULL;
	status = child_wait(pod_exec(client, argv, out));
	if (status)
		return status;
	file = fopen(out, "r");
	if (!file)
		return -1;
	scanned = fscanf(file, "%lu %lu %lu %lu %lu", &x->request_header, &x->response_header,
			 &x->response_body, &x->code, &x->client_port);
	fclose(file);
	return scanned == 5 ? 0 : -1;
}

static uint64_t path_u64(struct json_object *obj, const char *const *keys)
{
	const char *v = path_string(obj, keys);

	return v ? strtoull(v, NULL, 10) : 0; /* proto3 JSON: a default value is left out */
}

static const char *path_or(struct json_object *obj, const char *const *keys, const char *fallback)
{
	const char *v = path_string(obj, keys);

	return v ? v : fallback;
}

/* The port of the connection's `side` ("local", "remote"): a pod's or an address's. */
static uint64_t connection_port(struct json_object *msg, const char *side)
{
	uint64_t pod_port = path_u64(msg, (const char *[]){ "connection", side, "kubernetes", "port", NULL });

	return pod_port ? pod_port : path_u64(msg, (const char *[]){ "connection", side, "ip", "port", NULL });
}

/* One HTTP protocol log of `pod` against the exchange it must describe; 1 when it is that one. */
/* The agent's own records of one side, which the protocol logs must equal. */
struct side_records {
	struct http_record_seen seen[16];
	size_t count;
};

/* A kernel log's duration, and its end (offsets from boot). */
static uint64_t kernel_log_times(struct json_object *op, uint64_t *ret_end_ns)
{
	uint64_t start = path_u64(op, (const char *[]){ "startTime", "offset", "offset", NULL });

	*ret_end_ns = path_u64(op, (const char *[]){ "endTime", "offset", "offset", NULL });
	return *ret_end_ns - start;
}

/*
 * The protocol log's kernel logs are its exchange's calls as the agent's
 * record has them: the server reads the request and writes the response,
 * the client the other way round; counts and duration sums exact, the
 * first call ending at the exchange's start, none after its end.
 */
static void expect_exchange_calls(struct __test_metadata *_metadata, struct json_object *msg,
				  struct json_object *http, const char *role,
				  const struct side_records *records)
{
	struct json_object *logs = path_get(msg, (const char *[]){ "kernelLogs", NULL });
	uint64_t start = path_u64(http, (const char *[]){ "startTime", "offset", "offset", NULL });
	uint64_t end = path_u64(http, (const char *[]){ "endTime", "offset", "offset", NULL });
	uint64_t calls[2] = { 0, 0 }, call_ns[2] = { 0, 0 }; /* reads, writes */
	const struct http_record_seen *record = NULL;
	bool server = strcmp(role, "server") == 0;
	size_t n = logs ? json_object_array_length(logs) : 0;

	for (size_t i = 0; i < records->count; i++)
		if (records->seen[i].start_boot_ns == start)
			record = &records->seen[i];
	ASSERT_NE(NULL, record) TH_LOG("%s: no record starts at %lu", role, (unsigned long)start);
	for (size_t i = 0; i < n; i++) {
		struct json_object *log = json_object_array_get_idx(logs, i), *op;
		bool write = json_object_object_get_ex(log, "write", &op);
		uint64_t log_end;

		if (!write && !json_object_object_get_ex(log, "read", &op))
			continue;
		calls[write]++;
		call_ns[write] += kernel_log_times(op, &log_end);
		if (i == 0)
			EXPECT_EQ(start, log_end);
		EXPECT_GE(end, log_end);
	}
	EXPECT_LE(1, record->request_calls) TH_LOG("%s %s", role, record->path);
	EXPECT_EQ(record->request_calls, calls[!server]);
	EXPECT_EQ(record->request_call_ns, call_ns[!server]);
	EXPECT_EQ(record->response_calls, calls[server]);
	EXPECT_EQ(record->response_call_ns, call_ns[server]);
	EXPECT_EQ(record->request_calls + record->response_calls, n);
}

static int match_protocol_log(struct __test_metadata *_metadata, struct json_object *msg,
			      const char *pod, const char *role, const char *host,
			      const struct traced_exchange *x, const struct side_records *records)
{
	struct json_object *http = path_get(msg, (const char *[]){ "protocolLog", "http", NULL });
	const char *local_pod = path_string(msg, (const char *[]){ "connection", "local", "kubernetes", "podName", NULL });

	if (!http || !local_pod || strcmp(local_pod, pod) != 0 ||
	    strcmp(path_or(http, (const char *[]){ "request", "path", NULL }, ""), x->log_path) != 0 ||
	    strcmp(path_or(http, (const char *[]){ "request", "trace", "traceId", NULL }, ""), x->trace_id) != 0)
		return 0;
	EXPECT_STREQ("HTTP_1", path_or(msg, (const char *[]){ "connection", "protocol", NULL }, "TCP"));
	EXPECT_STREQ(role, path_or(msg, (const char *[]){ "connection", "role", NULL }, "client"));
	/* the socket's ports, as its connect and accept logs name them */
	if (strcmp(role, "client") == 0) {
		EXPECT_EQ(x->client_port, connection_port(msg, "local"));
		EXPECT_EQ(NGINX_PORT, connection_port(msg, "remote"));
	} else {
		EXPECT_EQ(NGINX_PORT, connection_port(msg, "local"));
		EXPECT_EQ(x->client_port, connection_port(msg, "remote"));
	}
	expect_exchange_calls(_metadata, msg, http, role, records);
	EXPECT_STREQ("HTTP1", path_or(http, (const char *[]){ "version", NULL }, "HTTP1"));
	EXPECT_STREQ("Get", path_or(http, (const char *[]){ "request", "method", NULL }, "Get"));
	EXPECT_STREQ(host, path_or(http, (const char *[]){ "request", "host", NULL }, ""));
	EXPECT_EQ(x->request_header, path_u64(http, (const char *[]){ "request", "sizeOfHeadersBytes", NULL }));
	EXPECT_EQ(0, path_u64(http, (const char *[]){ "request", "sizeOfBodyBytes", NULL }));
	EXPECT_EQ(x->code, path_u64(http, (const char *[]){ "response", "statusCode", NULL }));
	EXPECT_EQ(x->response_header, path_u64(http, (const char *[]){ "response", "sizeOfHeadersBytes", NULL }));
	EXPECT_EQ(x->response_body, path_u64(http, (const char *[]){ "response", "sizeOfBodyBytes", NULL }));
	EXPECT_STREQ(x->provider, path_or(http, (const char *[]){ "request", "trace", "provider", NULL }, "Zipkin"));
	EXPECT_STREQ(x->trace_id, path_or(http, (const char *[]){ "request", "trace", "traceId", NULL }, ""));
	EXPECT_STREQ(x->segment_id, path_or(http, (const char *[]){ "request", "trace", "traceSegmentId", NULL }, ""));
	EXPECT_STREQ(x->span_id, path_or(http, (const char *[]){ "request", "trace", "spanId", NULL }, ""));
	EXPECT_LT(0, path_u64(http, (const char *[]){ "startTime", "offset", "offset", NULL }));
	EXPECT_LE(path_u64(http, (const char *[]){ "startTime", "offset", "offset", NULL }),
		  path_u64(http, (const char *[]){ "endTime", "offset", "offset", NULL }));
	return 1;
}

/* How many protocol logs of `pod` matched `x` (each was checked field by field). */
static int count_protocol_logs(struct __test_metadata *_metadata, const char *fake_out, const char *pod,
			       const char *role, const char *host, const struct traced_exchange *x,
			       const struct side_records *records, int *ret_total)
{
	char line[1 << 16];
	FILE *file = fopen(fake_out, "r");
	int matched = 0;

	if (!file)
		return -1;
	while (fgets(line, sizeof(line), file)) {
		struct json_object *obj = json_tokener_parse(line), *msg;

		if (obj && json_object_object_get_ex(obj, "msg", &msg) &&
		    path_get(msg, (const char *[]){ "protocolLog", "http", NULL })) {
			const char *local = path_string(msg, (const char *[]){ "connection", "local", "kubernetes",
									      "podName", NULL });

			*ret_total += local && strcmp(local, pod) == 0;
			matched += match_protocol_log(_metadata, msg, pod, role, host, x, records);
		}
		json_object_put(obj);
	}
	fclose(file);
	return matched;
}

#define SW8 "1-YWJjMTIzLjQ1Ng==-c2VnLjc4OQ==-2-ZnJvbnRlbmQ=-cG9kLWE=-L29r-MTAuMC4wLjI6ODA4MA=="

/*
 * Every exchange reaches OAP as an HTTP protocol log from each side: its
 * connection (HTTP_1, with the ports of the socket: nginx's and curl's own
 * on either side), request and response equal to what curl reported,
 * the trace context of the headers curl sent: sw8 (SkyWalking: ids
 * base64-decoded), b3 and traceparent (Zipkin), and its read and write
 * calls as kernel logs, equal to the agent's own record of the exchange.
 */
KTEST_F(entities, http_protocol_logs_carry_the_exchanges_and_trace_context, 120)
{
	const char *args[] = { "--pin-dir", ENTITIES_PIN_DIR, "-i", "60", "--set", self->api_setting,
			       "--set", self->oap_setting, "--set", "oap_mode=access_logs", NULL };
	struct traced_exchange x[] = {
		{ .path = "/ok", .log_path = "/ok", .headers = { "-H", "sw8: " SW8, "-H", "b3: 80f198ee56343ba8-e457b5a2e4d86bd1-1",
					      NULL },
		  .provider = "SkyWalking", .trace_id = "abc123.456", .segment_id = "seg.789", .span_id = "2" },
		{ .path = "/missing", .log_path = "/missing", .headers = { "-H", "b3: 80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1", NULL },
		  .provider = "Zipkin", .trace_id = "80f198ee56343ba864fe8b2a57d3eff7", .segment_id = "",
		  .span_id = "e457b5a2e4d86bd1" },
		{ .path = "/broken", .log_path = "/broken", .headers = { "-H", "traceparent: 00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
						  NULL },
		  .provider = "Zipkin", .trace_id = "4bf92f3577b34da6a3ce929d0e0e4736", .segment_id = "",
		  .span_id = "00f067aa0ba902b7" },
		{ .path = "/ok?plain=1", .log_path = "/ok", .headers = { NULL }, .provider = "Zipkin", .trace_id = "", .segment_id = "",
		  .span_id = "" },
	};
	int count = sizeof(x) / sizeof(x[0]);
	struct side_records records[2]; /* client, server */
	struct agent_output *output = NULL;
	char dir[96], host[64];
	pid_t nginx;

	if (access(NGINX, X_OK) || access(CURL, X_OK))
		SKIP(return, "needs nginx and curl (make deps-test)");
	START_FAKE_OAP_OR_SKIP(self);
	snprintf(dir, sizeof(dir), "/tmp/kaccess-selftest-entities-%d", getpid());
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	nginx = start_nginx(&self->pods.server, dir);
	ASSERT_LT(0, nginx);
	ASSERT_EQ(0, wait_port(&self->pods.server, NGINX_PORT));
	for (int i = 0; i < count; i++)
		ASSERT_EQ(0, run_curl_traced(&self->pods.client, &self->pods.server, dir, &x[i]));
	ASSERT_EQ(0, stop_and_read(self));
	stop_fake_oap(self);
	kill(nginx, SIGTERM);
	child_wait(nginx);
	run_quiet("rm -rf %s", dir);
	ASSERT_EQ(200, x[0].code);
	ASSERT_EQ(404, x[1].code);
	ASSERT_EQ(500, x[2].code);
	ASSERT_EQ(200, x[3].code);
	for (int i = 0; i < count; i++)
		ASSERT_NE(0, x[i].client_port); /* a port the logs could not have by chance */
	ASSERT_EQ(0, agent_output_load(&output, self->agent.out_path));
	records[0].count = agent_output_http_records(output, self->pods.client.cgroup_id, "client",
						     records[0].seen, 16);
	records[1].count = agent_output_http_records(output, self->pods.server.cgroup_id, "server",
						     records[1].seen, 16);
	agent_output_free(output);
	ASSERT_EQ(count, records[0].count);
	ASSERT_EQ(count, records[1].count);
	snprintf(host, sizeof(host), "%s:%d", self->pods.server.ipv4, NGINX_PORT);
	for (int r = 0; r < 2; r++) {
		const char *pod = r ? self->server_pod : self->client_pod;
		const char *role = r ? "server" : "client";
		/* /ok twice: with sw8 and without a trace, told apart by their trace id */
		for (int i = 0; i < count; i++) {
			int total = 0;

			EXPECT_EQ(1, count_protocol_logs(_metadata, self->oap_out, pod, role, host, &x[i],
							 &records[r], &total)) TH_LOG("%s %s", role, x[i].path);
			EXPECT_EQ(count, total);
		}
	}
}

/* The L2-L4 sums OAP reads from read and write logs, next to kaccess's row fields. */
struct l24_path {
	const char *op;            /* "write" or "read" */
	const char *metrics, *key; /* e.g. "l4Metrics", "totalDuration" */
	const char *row_field;     /* the aggregate row's field with the same sum */
};

static const struct l24_path l24_paths[] = {
	{ "write", "l4Metrics", "totalDuration", "write_l4_duration_ns_sum" },
	{ "write", "l4Metrics", "totalTransmitPackageCount", "write_packets" },
	{ "write", "l4Metrics", "totalPackageSize", "write_packet_bytes" },
	{ "write", "l4Metrics", "totalRetransmitPackageCount", "write_retransmit_packets" },
	{ "write", "l3Metrics", "totalResolveMACCount", "write_resolve_mac_count" },
	{ "write", "l2Metrics", "totalDuration", "write_l2_duration_ns_sum" },
	{ "write", "l2Metrics", "totalReadySendDuration", "write_l2_ready_send_duration_ns_sum" },
	{ "write", "l2Metrics", "totalNetDeviceSendDuration", "write_l2_device_send_duration_ns_sum" },
	{ "read", "l2Metrics", "totalPackageCount", "read_packets" },
	{ "read", "l2Metrics", "totalPackageSize", "read_packet_bytes" },
	{ "read", "l2Metrics", "totalPackageToQueueDuration", "read_l2_to_queue_duration_ns_sum" },
	{ "read", "l2Metrics", "totalRcvPackageFromQueueDuration", "read_l2_from_queue_duration_ns_sum" },
	{ "read", "l3Metrics", "totalDuration", "read_l3_duration_ns_sum" },
	{ "write", "l3Metrics", "totalDuration", "write_l3_duration_ns_sum" },
	{ "write", "l3Metrics", "totalLocalDuration", "write_l3_local_duration_ns_sum" },
	{ "write", "l3Metrics", "totalOutputDuration", "write_l3_output_duration_ns_sum" },
	{ "write", "l3Metrics", "totalNetFilterCount", "write_netfilter_count" },
	{ "read", "l3Metrics", "totalRecvDuration", "read_l3_rcv_duration_ns_sum" },
	{ "read", "l3Metrics", "totalLocalDuration", "read_l3_local_duration_ns_sum" },
	{ "read", "l3Metrics", "totalNetFilterCount", "read_netfilter_count" },
};

#define L24_PATHS (sizeof(l24_paths) / sizeof(l24_paths[0]))

/* What OAP computes from the kernel logs of one pod and one operation. */
struct oap_recount {
	uint64_t calls, duration_ns_sum;
	uint64_t l24[L24_PATHS]; /* sums of l24_paths[i] over the logs of its op */
};

static void recount_l24(struct json_object *operation, const char *op, struct oap_recount *r)
{
	for (size_t i = 0; i < L24_PATHS; i++) {
		const char *value;

		if (strcmp(l24_paths[i].op, op) != 0)
			continue;
		value = path_string(operation, (const char *[]){ l24_paths[i].metrics, l24_paths[i].key, NULL });
		r->l24[i] += strtoull(value ? value : "0", NULL, 10);
	}
}

static void recount_logs(struct json_object *msg, const char *pod, const char *op, struct oap_recount *r)
{
	const char *local_pod = path_string(msg, (const char *[]){ "connection", "local", "kubernetes", "podName", NULL });
	struct json_object *logs = path_get(msg, (const char *[]){ "kernelLogs", NULL });

	if (!local_pod || strcmp(local_pod, pod) != 0)
		return;
	for (size_t i = 0; logs && i < json_object_array_length(logs); i++) {
		struct json_object *entry = json_object_array_get_idx(logs, i), *operation;
		const char *start, *end;

		if (!json_object_object_get_ex(entry, op, &operation))
			continue;
		start = path_string(operation, (const char *[]){ "startTime", "offset", "offset", NULL });
		end = path_string(operation, (const char *[]){ "endTime", "offset", "offset", NULL });
		r->calls++;
		r->duration_ns_sum += strtoull(end ? end : "0", NULL, 10) - strtoull(start ? start : "0", NULL, 10);
		recount_l24(operation, op, r);
	}
}

/* A message of 128 kernel logs is tens of KiB of JSON: lines of any length. */
static int recount(const char *fake_out, const char *pod, const char *op, struct oap_recount *r)
{
	char *line = NULL;
	size_t size = 0;
	FILE *file = fopen(fake_out, "r");

	if (!file)
		return -1;
	while (getline(&line, &size, file) > 0) {
		struct json_object *obj = json_tokener_parse(line), *msg;

		if (obj && json_object_object_get_ex(obj, "msg", &msg))
			recount_logs(msg, pod, op, r);
		json_object_put(obj);
	}
	free(line);
	fclose(file);
	return 0;
}

/*
 * Stock-OAP-compatible mode: OAP's own rules (one call per kernel log, the
 * mean of their durations) over what arrives give kaccess's numbers.
 */
KTEST_F(entities, compatible_mode_lets_oap_compute_the_same_numbers, 120)
{
	const struct side_truth *c = &self->truth->client, *s = &self->truth->server;
	const char *args[] = { "--pin-dir", ENTITIES_PIN_DIR, "-i", "60", "--set", self->api_setting,
			       "--set", self->oap_setting, "--set", "oap_mode=compatible", NULL };
	struct oap_recount client_writes = { 0 }, client_reads = { 0 }, server_reads = { 0 },
			   server_writes = { 0 }, connects = { 0 }, accepts = { 0 };
	struct agg_totals client_rows, server_rows;
	struct agent_output *output = NULL;

	START_FAKE_OAP_OR_SKIP(self);
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	/* the whole run in one minute's bucket, so that every comparison below applies */
	leave_room_in_bucket(60, ONE_BUCKET_RUN_ROOM_S);
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	ASSERT_EQ(0, stop_and_read(self));
	stop_fake_oap(self);
	ASSERT_EQ(0, agent_output_load(&output, self->agent.out_path));
	client_rows = agent_output_sum(output, self->pods.client.cgroup_id, "client", NULL, -1);
	server_rows = agent_output_sum(output, self->pods.server.cgroup_id, "server", NULL, -1);
	ASSERT_EQ(1, client_rows.rows);
	ASSERT_EQ(1, server_rows.rows);
	ASSERT_EQ(0, recount(self->oap_out, self->client_pod, "write", &client_writes));
	ASSERT_EQ(0, recount(self->oap_out, self->client_pod, "read", &client_reads));
	ASSERT_EQ(0, recount(self->oap_out, self->client_pod, "connect", &connects));
	ASSERT_EQ(0, recount(self->oap_out, self->server_pod, "read", &server_reads));
	ASSERT_EQ(0, recount(self->oap_out, self->server_pod, "write", &server_writes));
	ASSERT_EQ(0, recount(self->oap_out, self->server_pod, "accept", &accepts));
	/*
	 * Every L2-L4 sum OAP reads adds up to the kernel's row sum, the run
	 * being in one bucket (a bucket whose row has packets but no read or
	 * write call, such as the FIN's alone, would have no log to carry them).
	 */
	for (size_t i = 0; i < L24_PATHS; i++) {
		bool write = strcmp(l24_paths[i].op, "write") == 0;
		size_t rows;
		uint64_t client_sum = agent_output_field(output, self->pods.client.cgroup_id, "client",
							 l24_paths[i].row_field, &rows);
		uint64_t server_sum = agent_output_field(output, self->pods.server.cgroup_id, "server",
							 l24_paths[i].row_field, &rows);

		EXPECT_EQ(client_sum, (write ? &client_writes : &client_reads)->l24[i]);
		EXPECT_EQ(server_sum, (write ? &server_writes : &server_reads)->l24[i]);
	}
	EXPECT_LT(0, client_writes.l24[1]); /* packets were sent, so the comparison had content */
	agent_output_free(output);

	/* OAP's cpm: one call per log */
	EXPECT_EQ(c->writes, client_writes.calls);
	EXPECT_EQ(c->reads, client_reads.calls);
	EXPECT_EQ(s->reads, server_reads.calls);
	EXPECT_EQ(s->writes, server_writes.calls);
	EXPECT_EQ(c->connects, connects.calls);
	EXPECT_EQ(s->accepts, accepts.calls);
	/* OAP's durations add up to the kernel's sums exactly */
	EXPECT_EQ(client_rows.write_duration_ns_sum, client_writes.duration_ns_sum);
	EXPECT_EQ(client_rows.read_duration_ns_sum, client_reads.duration_ns_sum);
	EXPECT_EQ(server_rows.read_duration_ns_sum, server_reads.duration_ns_sum);
	EXPECT_EQ(server_rows.write_duration_ns_sum, server_writes.duration_ns_sum);
	/* so OAP's longAvg is kaccess's */
	ASSERT_EQ(2, entities_in_scope(self, "service"));
	EXPECT_EQ((int64_t)c->writes,
		  metric_sum(self, "service", SVC("frontend"), 0, 0, 0, "kubernetes_service_write_cpm"));
	EXPECT_EQ((int64_t)(client_writes.duration_ns_sum / client_writes.calls),
		  metric_sum(self, "service", SVC("frontend"), 0, 0, 0, "kubernetes_service_write_time"));
	EXPECT_EQ((int64_t)(server_reads.duration_ns_sum / server_reads.calls),
		  metric_sum(self, "service", SVC("backend"), 0, 0, 0, "kubernetes_service_read_time"));
}

/*
 * A connection of 20,000 small writes: its rows are hundreds of messages
 * of kernel logs in compatible mode, far more than a 64 KiB queue holds.
 */
static void plan_many_writes(FIXTURE_DATA(entities) *self)
{
	self->plan.connections = 1;
	self->plan.request_writes = 20000;
	self->plan.request_size = 64;
	self->plan.response_writes = 1;
	self->plan.response_size = 64;
}

/* The kernel logs of the four sides' calls that have reached the fake OAP so far. */
struct call_logs {
	struct oap_recount client_writes, client_reads, server_reads, server_writes;
};

static int recount_calls(FIXTURE_DATA(entities) *self, struct call_logs *ret)
{
	memset(ret, 0, sizeof(*ret));
	return recount(self->oap_out, self->client_pod, "write", &ret->client_writes) ||
	       recount(self->oap_out, self->client_pod, "read", &ret->client_reads) ||
	       recount(self->oap_out, self->server_pod, "read", &ret->server_reads) ||
	       recount(self->oap_out, self->server_pod, "write", &ret->server_writes);
}

static bool every_call_logged(FIXTURE_DATA(entities) *self, const struct call_logs *n)
{
	const struct side_truth *c = &self->truth->client, *s = &self->truth->server;

	return n->client_writes.calls == c->writes && n->client_reads.calls == c->reads &&
	       n->server_reads.calls == s->reads && n->server_writes.calls == s->writes;
}

#define EXPECT_EVERY_CALL_LOGGED(self, n)                                              \
	do {                                                                           \
		EXPECT_EQ((self)->truth->client.writes, (n)->client_writes.calls);     \
		EXPECT_EQ((self)->truth->client.reads, (n)->client_reads.calls);       \
		EXPECT_EQ((self)->truth->server.reads, (n)->server_reads.calls);       \
		EXPECT_EQ((self)->truth->server.writes, (n)->server_writes.calls);     \
	} while (0)

/*
 * Compatible mode queues a bucket's kernel logs as the queue empties: with
 * the smallest queue (64 KiB) a bucket of 20,000 writes, drained while the
 * agent runs, reaches OAP whole, none of it queued at once or dropped.
 */
KTEST_F(entities, compatible_mode_queues_a_large_bucket_as_oap_takes_it, 120)
{
	struct prom_agent_settings prom;
	const char *args[] = { "--pin-dir", ENTITIES_PIN_DIR, "-i", "2", "--set", self->api_setting,
			       "--set", self->oap_setting, "--set", "oap_mode=compatible",
			       "--set", "oap_queue_max_kib=64", "--set", prom.listen, NULL };
	const char *address = prom.listen + strlen("http_listen=");
	struct call_logs logged;
	int waited_ms = 0;

	START_FAKE_OAP_OR_SKIP(self);
	prom_agent_settings_init(self, &prom, "backlog");
	plan_many_writes(self);
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	ASSERT_EQ(20000, self->truth->client.writes);
	/* every bucket of the run is drained within 2 s and queued by the running loop */
	do {
		usleep(200 * 1000);
		waited_ms += 200;
		ASSERT_EQ(0, recount_calls(self, &logged));
	} while (!every_call_logged(self, &logged) && waited_ms < 30000);
	EXPECT_EVERY_CALL_LOGGED(self, &logged);
	ASSERT_EQ(0, run_quiet("curl -sf http://%s/metrics -o %s", address, prom.metrics_path));
	EXPECT_LE(2, sample_value(prom.metrics_path, "kaccess_oap_syscall_log_rows_total{queued=\"paced\"}"));
	EXPECT_EQ(0, sample_value(prom.metrics_path, "kaccess_oap_syscall_log_rows_total{queued=\"at_once\"}"));
	EXPECT_EQ(0, sample_value(prom.metrics_path,
				  "kaccess_oap_dropped_total{stream=\"access_log\",reason=\"queue_full\"}"));
	unlink(prom.metrics_path);
	ASSERT_EQ(0, stop_and_read(self));
	stop_fake_oap(self);
	ASSERT_EQ(0, recount_calls(self, &logged));
	EXPECT_EVERY_CALL_LOGGED(self, &logged);
}

/* The same bucket drained at exit: queued as the queue empties before the sender stops. */
KTEST_F(entities, compatible_mode_queues_the_last_bucket_before_it_exits, 120)
{
	const char *args[] = { "--pin-dir", ENTITIES_PIN_DIR, "-i", "60", "--set", self->api_setting,
			       "--set", self->oap_setting, "--set", "oap_mode=compatible",
			       "--set", "oap_queue_max_kib=64", NULL };
	struct agg_totals client_rows, server_rows;
	struct agent_output *output = NULL;
	struct call_logs logged;

	START_FAKE_OAP_OR_SKIP(self);
	plan_many_writes(self);
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	leave_room_in_bucket(60, ONE_BUCKET_RUN_ROOM_S);
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	ASSERT_EQ(0, recount_calls(self, &logged));
	EXPECT_EQ(0, logged.client_writes.calls); /* nothing drained yet */
	ASSERT_EQ(0, stop_and_read(self));
	stop_fake_oap(self);
	ASSERT_EQ(0, recount_calls(self, &logged));
	EXPECT_EVERY_CALL_LOGGED(self, &logged);
	/* messages resumed where the last one stopped: the durations add up to the rows' */
	ASSERT_EQ(0, agent_output_load(&output, self->agent.out_path));
	client_rows = agent_output_sum(output, self->pods.client.cgroup_id, "client", NULL, -1);
	server_rows = agent_output_sum(output, self->pods.server.cgroup_id, "server", NULL, -1);
	agent_output_free(output);
	EXPECT_EQ(client_rows.write_duration_ns_sum, logged.client_writes.duration_ns_sum);
	EXPECT_EQ(server_rows.read_duration_ns_sum, logged.server_reads.duration_ns_sum);
}

/* The ports of kaccess's own peers and listener in one test. */
struct own_ports {
	pid_t agent_pid;
	int oap, api, metrics;
};

/* What the agent's output says of kaccess's own connections, and of their other ends. */
struct own_lines {
	int own;                /* lines of kaccess's own connections: none expected */
	int oap_server_side;    /* fake_oap's accepted end of kaccess's connection */
	int metrics_client_side; /* curl's end of a /metrics scrape */
};

static int64_t json_int(struct json_object *obj, const char *key)
{
	struct json_object *value;

	return json_object_object_get_ex(obj, key, &value) ? json_object_get_int64(value) : -1;
}

static const char *json_text(struct json_object *obj, const char *key)
{
	struct json_object *value;

	return json_object_object_get_ex(obj, key, &value) ? json_object_get_string(value) : "";
}

static void count_own_line(struct json_object *line, const struct own_ports *ports,
			   struct own_lines *ret)
{
	const char *type = json_text(line, "type");
	bool client = strcmp(json_text(line, "role"), "client") == 0;

	if (strcmp(type, "connection") == 0) {
		int64_t remote_port = json_int(line, "remote_port"), local_port = json_int(line, "local_port");

		ret->own += json_int(line, "pid") == ports->agent_pid || (!client && local_port == ports->metrics) ||
			    (client && (remote_port == ports->oap || remote_port == ports->api));
		ret->oap_server_side += !client && local_port == ports->oap;
		ret->metrics_client_side += client && remote_port == ports->metrics;
	} else if (strcmp(type, "aggregate") == 0 && client) {
		int64_t peer_port = json_int(line, "peer_port");

		ret->own += peer_port == ports->oap || peer_port == ports->api;
	}
}

static int read_own_lines(const char *path, const struct own_ports *ports, struct own_lines *ret)
{
	FILE *out = fopen(path, "r");
	char line[65536];

	memset(ret, 0, sizeof(*ret));
	if (!out)
		return -1;
	while (fgets(line, sizeof(line), out)) {
		struct json_object *obj = json_tokener_parse(line);

		int own_before = ret->own;

		if (obj)
			count_own_line(obj, ports, ret);
		if (ret->own != own_before)
			fprintf(stderr, "# kaccess's own: %s", line);
		json_object_put(obj);
	}
	fclose(out);
	return 0;
}

/*
 * kaccess watching every process leaves its own connections out: the one
 * to OAP and its /metrics (made after its hooks), and the Kubernetes API's
 * (opened before them: adopted, then forgotten). Their other ends, fake_oap's
 * accept and curl's connect, are other processes' and stay.
 */
KTEST_F(entities, kaccess_leaves_its_own_connections_out, 90)
{
	struct prom_agent_settings prom;
	const char *args[] = { "--cgroup", "", "-i", "2", "--set", self->api_setting, "--set", self->oap_setting,
			       "--set", "oap_mode=both", "--set", prom.listen, NULL };
	const char *address = prom.listen + strlen("http_listen=");
	struct agent_output *output = NULL;
	struct own_ports ports;
	struct own_lines lines;
	long long meters_sent = 0;

	START_FAKE_OAP_OR_SKIP(self);
	prom_agent_settings_init(self, &prom, "own");
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	ports = (struct own_ports){ .agent_pid = self->agent.pid, .api = self->api_port,
				    .oap = atoi(strrchr(self->oap_setting, ':') + 1),
				    .metrics = atoi(strrchr(address, ':') + 1) };
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	/* the meters of a 2 s interval went to OAP on kaccess's connection */
	for (int i = 0; i < 100 && meters_sent < 1; i++) {
		usleep(100 * 1000);
		if (run_quiet("curl -sf http://%s/metrics -o %s", address, prom.metrics_path) == 0)
			meters_sent = sample_value(prom.metrics_path,
						   "kaccess_oap_messages_total{stream=\"meter\",result=\"sent\"}");
	}
	unlink(prom.metrics_path);
	ASSERT_LE(1, meters_sent);
	ASSERT_EQ(0, stop_and_read(self));
	ASSERT_EQ(0, read_own_lines(self->agent.out_path, &ports, &lines));
	EXPECT_EQ(0, lines.own);
	EXPECT_LE(1, lines.oap_server_side);
	EXPECT_LE(1, lines.metrics_client_side);
	/* the pods' traffic is there as ever */
	ASSERT_EQ(0, agent_output_load(&output, self->agent.out_path));
	EXPECT_EQ(self->truth->client.connects,
		  agent_output_sum(output, self->pods.client.cgroup_id, "client", NULL, -1).connect_count);
	agent_output_free(output);
}

/*
 * The first numbers after `name` on its row of the table that follows the
 * `title` line ("-" reads as -1); the count read, or -1 without that row.
 */
static int table_row(const char *path, const char *title, const char *name, long long *ret_values,
		     int max_values)
{
	char line[1024];
	bool in_table = false;
	int count = -1;
	FILE *file = fopen(path, "r");

	while (file && count < 0 && fgets(line, sizeof(line), file)) {
		char *rest = line + strspn(line, " ");

		if (strncmp(rest, title, strlen(title)) == 0 && rest[strlen(title)] == ' ') {
			in_table = true;
			continue;
		}
		if (!in_table || strncmp(rest, name, strlen(name)) != 0 || rest[strlen(name)] != ' ')
			continue;
		rest += strlen(name);
		for (count = 0; count < max_values; count++) {
			char *end;

			rest += strspn(rest, " ");
			if (*rest == '-') {
				ret_values[count] = -1;
				rest++;
				continue;
			}
			ret_values[count] = strtoll(rest, &end, 10);
			if (end == rest)
				break;
			rest = end + strspn(end, ".0123456789");
		}
	}
	if (file)
		fclose(file);
	return count;
}

/*
 * The first value of `metric` under the entity line "  <scope> <name>" of
 * the table output's metric list (table_metrics = all); -1 without it.
 */
static long long listed_metric(const char *path, const char *entity, const char *metric)
{
	char line[1024], header[512];
	bool in_entity = false;
	long long value = -1;
	FILE *file = fopen(path, "r");

	snprintf(header, sizeof(header), "  %s\n", entity);
	while (file && value < 0 && fgets(line, sizeof(line), file)) {
		char *name = line + 4;

		if (strncmp(line, "  ", 2) == 0 && line[2] != ' ') {
			in_entity = strcmp(line, header) == 0;
			continue;
		}
		if (in_entity && strncmp(line, "    ", 4) == 0 && strncmp(name, metric, strlen(metric)) == 0 &&
		    name[strlen(metric)] == ' ')
			value = strtoll(name + strlen(metric), NULL, 10);
	}
	if (file)
		fclose(file);
	return value;
}

/* `-o table` off a terminal: each bucket's entities as tables, by name, with their numbers. */
KTEST_F(entities, table_output_names_entities_with_their_numbers, 120)
{
	const struct side_truth *c = &self->truth->client, *s = &self->truth->server;
	char server[64], instance_relation[256];
	const char *args[] = { "--pin-dir", ENTITIES_PIN_DIR, "-i", "60", "--set", server,
			       "-o", "table", "--set", "table_metrics=all", NULL };
	long long values[6];

	ASSERT_EQ(200, add_pod(self->api_port, &self->pods.client, self->client_pod, "frontend"));
	ASSERT_EQ(200, add_pod(self->api_port, &self->pods.server, self->server_pod, "backend"));
	snprintf(server, sizeof(server), "k8s_api_server=http://127.0.0.1:%d", self->api_port);
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	/* one bucket, so that the table's row is the whole run */
	leave_room_in_bucket(60, ONE_BUCKET_RUN_ROOM_S);
	ASSERT_EQ(0, tcp_run(&self->pods.client, &self->pods.server, &self->plan, self->truth));
	ASSERT_EQ(0, stop_and_read(self));
	/* SERVICE: CONN/min ACPT/min READ/min WRITE/min ... */
	ASSERT_EQ(7, table_row(self->agent.out_path, "SERVICE", SVC("frontend"), values, 7));
	EXPECT_EQ(c->connects, values[0]);
	EXPECT_EQ(c->writes, values[3]);
	ASSERT_EQ(7, table_row(self->agent.out_path, "SERVICE", SVC("backend"), values, 7));
	EXPECT_EQ(s->accepts, values[1]);
	EXPECT_EQ(s->reads, values[2]);
	/* relations: CONN/min ACPT/min C-WRITE/min S-READ/min HTTP/min HTTP ms */
	ASSERT_EQ(6, table_row(self->agent.out_path, "SERVICE RELATION",
			       SVC("frontend") " -> " SVC("backend"), values, 6));
	EXPECT_EQ(c->connects, values[0]);
	EXPECT_EQ(s->accepts, values[1]);
	EXPECT_EQ(c->writes, values[2]);
	EXPECT_EQ(s->reads, values[3]);
	EXPECT_EQ(-1, values[4]); /* no HTTP */
	snprintf(instance_relation, sizeof(instance_relation), "%s/%s -> %s/%s", SVC("frontend"),
		 self->client_pod, SVC("backend"), self->server_pod);
	ASSERT_EQ(6, table_row(self->agent.out_path, "INSTANCE RELATION", instance_relation, values, 6));
	EXPECT_EQ(c->writes, values[2]);
	/* table_metrics = all: every metric of every entity, one per line */
	EXPECT_EQ(c->writes, listed_metric(self->agent.out_path,
					   "SERVICE RELATION " SVC("frontend") " -> " SVC("backend"),
					   "kubernetes_service_relation_client_write_cpm"));
	EXPECT_EQ(s->reads, listed_metric(self->agent.out_path, "SERVICE " SVC("backend"),
					  "kubernetes_service_read_cpm"));
	EXPECT_EQ(c->closes + s->closes,
		  listed_metric(self->agent.out_path,
				"SERVICE RELATION " SVC("frontend") " -> " SVC("backend"),
				"kubernetes_service_relation_close_cpm"));
}

TEST_HARNESS_MAIN
