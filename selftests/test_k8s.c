// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Kubernetes identity (shipper/k8s): cgroup path parsing, config and
 * kubeconfig parsing, and the list+watch client against a fake API server
 * (selftests/k8s/fake_apiserver.py, run from the repository root): names,
 * selectors, ClusterIPs, namespace policy, the server failing in every way
 * we know, 10,000 pods, and conntrack behind an nftables DNAT rule in the
 * test's own network namespaces (kak-*).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>

#include "cgroups.h"
#include "k8s/fake_api.h"
#include "k8s/k8s.h"
#include "k8s/k8s_http.h"
#include "k8s/scale.h"
#include "ktest.h"
#include "pods.h"

#define UID_FRONTEND "0b0b0b0b-0000-4000-8000-00000000000b"
#define UID_ORDERS "0c0c0c0c-0000-4000-8000-00000000000c"
#define UID_EXPORTER "0e0e0e0e-0000-4000-8000-00000000000e"
#define CID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define CID_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"

/* ---- cgroup paths ---- */

struct cgroup_case {
	const char *path;
	int err;
	const char *pod_uid;
	const char *container_id;
	enum k8s_runtime runtime;
};

static const struct cgroup_case cgroup_cases[] = {
	/* cgroupfs driver: guaranteed, burstable, besteffort */
	{ "/kubepods/pod" UID_FRONTEND "/" CID_B, 0, UID_FRONTEND, CID_B, K8S_RUNTIME_PLAIN },
	{ "/kubepods/burstable/pod" UID_FRONTEND "/" CID_B, 0, UID_FRONTEND, CID_B,
	  K8S_RUNTIME_PLAIN },
	{ "/kubepods/besteffort/pod" UID_ORDERS "/" CID_C, 0, UID_ORDERS, CID_C, K8S_RUNTIME_PLAIN },
	/* cgroupfs with CRI-O's prefix */
	{ "/kubepods/besteffort/pod" UID_ORDERS "/crio-" CID_C, 0, UID_ORDERS, CID_C,
	  K8S_RUNTIME_CRIO },
	/* systemd driver: containerd, CRI-O, Docker (cri-dockerd) */
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b0b0b0b_0000_4000_8000_00000000000b.slice/cri-containerd-" CID_B ".scope",
	  0, UID_FRONTEND, CID_B, K8S_RUNTIME_CONTAINERD },
	{ "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0c0c0c0c_0000_4000_8000_00000000000c.slice/crio-" CID_C ".scope",
	  0, UID_ORDERS, CID_C, K8S_RUNTIME_CRIO },
	{ "/kubepods.slice/kubepods-pod0e0e0e0e_0000_4000_8000_00000000000e.slice/docker-" CID_B ".scope",
	  0, UID_EXPORTER, CID_B, K8S_RUNTIME_DOCKER },
	/* a pod-level cgroup has no container */
	{ "/kubepods/burstable/pod" UID_FRONTEND, 0, UID_FRONTEND, "", K8S_RUNTIME_NONE },
	{ "/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b0b0b0b_0000_4000_8000_00000000000b.slice",
	  0, UID_FRONTEND, "", K8S_RUNTIME_NONE },
	/* conmon's scope is not a container */
	{ "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod0c0c0c0c_0000_4000_8000_00000000000c.slice/crio-conmon-" CID_C ".scope",
	  0, UID_ORDERS, "", K8S_RUNTIME_NONE },
	/* nested hierarchies and cgroup namespaces fake_keep the tail */
	{ "/kaccess-selftest/kubepods/burstable/pod" UID_FRONTEND "/" CID_B, 0, UID_FRONTEND, CID_B,
	  K8S_RUNTIME_PLAIN },
	{ "/../../kubepods.slice/kubepods-pod0e0e0e0e_0000_4000_8000_00000000000e.slice/cri-containerd-" CID_B ".scope",
	  0, UID_EXPORTER, CID_B, K8S_RUNTIME_CONTAINERD },
	{ "/kubelet.slice/kubelet-kubepods.slice/kubelet-kubepods-besteffort.slice/kubelet-kubepods-besteffort-pod0c0c0c0c_0000_4000_8000_00000000000c.slice/cri-containerd-" CID_C ".scope",
	  -ENOENT, NULL, NULL, 0 },
	/* a static pod's cgroup is named after its 32-hex config hash */
	{ "/kubepods/burstable/pod0123456789abcdef0123456789abcdef/" CID_B, 0,
	  "0123456789abcdef0123456789abcdef", CID_B, K8S_RUNTIME_PLAIN },
	/* not pods */
	{ "/", -ENOENT, NULL, NULL, 0 },
	{ "/system.slice/docker-" CID_B ".scope", -ENOENT, NULL, NULL, 0 },
	{ "/user.slice/user-0.slice/session-1.scope", -ENOENT, NULL, NULL, 0 },
	{ "/kubepods/burstable", -ENOENT, NULL, NULL, 0 },
	{ "/kubepods/burstable/podnot-a-uid/" CID_B, -ENOENT, NULL, NULL, 0 },
	{ "/kubepods/burstable/pod0b0b0b0b-0000-4000-8000-00000000000/" CID_B, -ENOENT, NULL, NULL,
	  0 },
};

TEST(cgroup_paths_of_every_driver_and_runtime)
{
	for (size_t i = 0; i < sizeof(cgroup_cases) / sizeof(cgroup_cases[0]); i++) {
		const struct cgroup_case *c = &cgroup_cases[i];
		struct k8s_cgroup_ids ids = { .runtime = 99 };
		int err = k8s_parse_cgroup_path(c->path, &ids);

		EXPECT_EQ(c->err, err) TH_LOG("case %zu: %s", i, c->path);
		if (err || c->err)
			continue;
		EXPECT_STREQ(c->pod_uid, ids.pod_uid) TH_LOG("case %zu", i);
		EXPECT_STREQ(c->container_id, ids.container_id) TH_LOG("case %zu", i);
		EXPECT_EQ(c->runtime, ids.runtime) TH_LOG("case %zu", i);
	}
}

TEST(proc_cgroup_text_prefers_v2_then_v1)
{
	struct k8s_cgroup_ids ids;

	ASSERT_EQ(0, k8s_parse_proc_cgroup("0::/kubepods/burstable/pod" UID_FRONTEND "/" CID_B "\n",
					   &ids));
	EXPECT_STREQ(UID_FRONTEND, ids.pod_uid);
	EXPECT_STREQ(CID_B, ids.container_id);
	/* v1 only: any controller's path */
	ASSERT_EQ(0, k8s_parse_proc_cgroup("12:pids:/kubepods/besteffort/pod" UID_ORDERS "/" CID_C "\n"
					   "11:memory:/kubepods/besteffort/pod" UID_ORDERS "/" CID_C "\n"
					   "1:name=systemd:/kubepods/besteffort/pod" UID_ORDERS "/" CID_C "\n",
					   &ids));
	EXPECT_STREQ(UID_ORDERS, ids.pod_uid);
	EXPECT_STREQ(CID_C, ids.container_id);
	/* hybrid: the v2 line wins over v1 lines */
	ASSERT_EQ(0, k8s_parse_proc_cgroup("3:memory:/kubepods/besteffort/pod" UID_ORDERS "/" CID_C "\n"
					   "0::/kubepods/pod" UID_FRONTEND "/" CID_B "\n",
					   &ids));
	EXPECT_STREQ(UID_FRONTEND, ids.pod_uid);
	EXPECT_EQ(-ENOENT, k8s_parse_proc_cgroup("0::/user.slice/user-0.slice/session-2.scope\n", &ids));
	EXPECT_EQ(-ENOENT, k8s_parse_proc_cgroup("", &ids));
}

/* ---- config keys ---- */

TEST(config_defaults_and_keys)
{
	struct k8s_config cfg;
	char err[K8S_ERROR_LEN] = "";

	k8s_config_set_defaults(&cfg);
	EXPECT_EQ(K8S_ENABLED_AUTO, cfg.enabled);
	EXPECT_STREQ("/var/run/secrets/kubernetes.io/serviceaccount", cfg.service_account_dir);
	EXPECT_EQ(K8S_UNSELECTED_OWNER, cfg.unselected_pod_rule);
	EXPECT_EQ(100000, cfg.max_pods);
	EXPECT_EQ(20000, cfg.max_services);
	EXPECT_EQ(500, cfg.list_page_size);
	EXPECT_EQ(300, cfg.watch_timeout_s);
	EXPECT_EQ(30, cfg.idle_timeout_s);
	EXPECT_EQ(500, cfg.backoff_min_ms);
	EXPECT_EQ(30000, cfg.backoff_max_ms);
	EXPECT_EQ(120, cfg.deleted_grace_s);
	EXPECT_TRUE(cfg.conntrack);

	EXPECT_EQ(0, k8s_config_set(&cfg, "k8s_api_server", "http://127.0.0.1:1", err, sizeof(err)));
	EXPECT_STREQ("http://127.0.0.1:1", cfg.api_server);
	EXPECT_EQ(0, k8s_config_set(&cfg, "k8s_cluster_name", "prod", err, sizeof(err)));
	EXPECT_EQ(0, k8s_config_set(&cfg, "k8s_exclude_namespaces", " kube-system , monitoring",
				    err, sizeof(err)));
	EXPECT_STREQ("kube-system,monitoring", cfg.exclude_namespaces);
	EXPECT_EQ(0, k8s_config_set(&cfg, "k8s_unselected_pod_rule", "pod", err, sizeof(err)));
	EXPECT_EQ(K8S_UNSELECTED_POD, cfg.unselected_pod_rule);
	EXPECT_EQ(0, k8s_config_set(&cfg, "k8s_max_pods", "20000", err, sizeof(err)));
	EXPECT_EQ(20000, cfg.max_pods);
	EXPECT_EQ(0, k8s_config_set(&cfg, "k8s_conntrack", "false", err, sizeof(err)));
	EXPECT_FALSE(cfg.conntrack);
	EXPECT_EQ(0, k8s_config_set(&cfg, "k8s_enabled", "true", err, sizeof(err)));
	EXPECT_EQ(K8S_ENABLED_TRUE, cfg.enabled);

	EXPECT_EQ(-ENOENT, k8s_config_set(&cfg, "k8s_nope", "1", err, sizeof(err)));
	EXPECT_STREQ("unknown key 'k8s_nope'", err);
	EXPECT_EQ(-ERANGE, k8s_config_set(&cfg, "k8s_max_pods", "0", err, sizeof(err)));
	EXPECT_STREQ("k8s_max_pods: '0' is not an integer in 1..10000000 (pods)", err);
	EXPECT_EQ(-EINVAL, k8s_config_set(&cfg, "k8s_unselected_pod_rule", "guess", err,
					  sizeof(err)));
	EXPECT_STREQ("k8s_unselected_pod_rule: 'guess' is not one of: owner, pod, unknown", err);
	EXPECT_EQ(-EINVAL, k8s_config_set(&cfg, "k8s_include_namespaces", "Shop", err, sizeof(err)));
	EXPECT_EQ(-EINVAL, k8s_config_set(&cfg, "k8s_include_namespaces", "a,,b", err, sizeof(err)));
	EXPECT_EQ(20000, cfg.max_pods);
	EXPECT_EQ(K8S_UNSELECTED_POD, cfg.unselected_pod_rule);
	EXPECT_STREQ("", cfg.include_namespaces);
}

/* ---- kubeconfig ---- */

static void write_file(const char *path, const char *text)
{
	FILE *file = fopen(path, "w");

	if (file) {
		fputs(text, file);
		fclose(file);
	}
}

TEST(kubeconfig_yaml_current_context_data_and_files)
{
	struct k8s_kubeconfig config;
	char err[K8S_ERROR_LEN] = "", path[256], dir[64], text[1400];

	snprintf(dir, sizeof(dir), "/tmp/kak-k8s-kubeconfig-%d", (int)getpid());
	mkdir(dir, 0700);
	snprintf(path, sizeof(path), "%s/ca.pem", dir);
	write_file(path, "-----BEGIN CERTIFICATE-----\nCA\n");
	snprintf(path, sizeof(path), "%s/token", dir);
	write_file(path, "file-token\n");
	/* base64("CERT") = Q0VSVA==, base64("KEY") = S0VZ */
	snprintf(text, sizeof(text),
		   "apiVersion: v1\n"
		   "kind: Config\n"
		   "current-context: prod\n"
		   "clusters:\n"
		   "- name: dev-cluster\n"
		   "  cluster:\n"
		   "    server: https://dev.example:6443\n"
		   "    insecure-skip-tls-verify: true\n"
		   "- name: prod-cluster\n"
		   "  cluster:\n"
		   "    certificate-authority: ca.pem\n"
		   "    server: \"https://10.0.0.1:6443\"\n"
		   "contexts:\n"
		   "- context: {cluster: dev-cluster, user: dev}\n"
		   "  name: dev\n"
		   "- name: prod\n"
		   "  context:\n"
		   "    cluster: prod-cluster\n"
		   "    user: admin\n"
		   "users:\n"
		   "- name: dev\n"
		   "  user:\n"
		   "    token: dev-token\n"
		   "- name: admin\n"
		   "  user:\n"
		   "    client-certificate-data: Q0VSVA==\n"
		   "    client-key-data: S0VZ\n"
		   "    tokenFile: %s/token\n", dir);
	snprintf(path, sizeof(path), "%s/config", dir);
	write_file(path, text);
	ASSERT_EQ(0, k8s_kubeconfig_load(path, &config, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_STREQ("https://10.0.0.1:6443", config.server);
	EXPECT_FALSE(config.insecure);
	EXPECT_STREQ("-----BEGIN CERTIFICATE-----\nCA\n", config.ca_pem);
	EXPECT_STREQ("CERT", config.client_cert_pem);
	EXPECT_STREQ("KEY", config.client_key_pem);
	EXPECT_STREQ("file-token", config.token);
	k8s_kubeconfig_clear(&config);

	/* JSON is YAML too; the dev context is insecure with an inline token */
	write_file(path, "{\"current-context\": \"dev\", \"clusters\": [{\"name\": \"dev-cluster\", "
			 "\"cluster\": {\"server\": \"https://dev.example:6443\", "
			 "\"insecure-skip-tls-verify\": true}}], \"contexts\": [{\"name\": \"dev\", "
			 "\"context\": {\"cluster\": \"dev-cluster\", \"user\": \"dev\"}}], "
			 "\"users\": [{\"name\": \"dev\", \"user\": {\"token\": \"dev-token\"}}]}");
	ASSERT_EQ(0, k8s_kubeconfig_load(path, &config, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_STREQ("https://dev.example:6443", config.server);
	EXPECT_TRUE(config.insecure);
	EXPECT_STREQ("dev-token", config.token);
	EXPECT_EQ(NULL, config.ca_pem);
	k8s_kubeconfig_clear(&config);

	write_file(path, "current-context: missing\nclusters: []\ncontexts: []\n");
	EXPECT_EQ(-EINVAL, k8s_kubeconfig_load(path, &config, err, sizeof(err)));
	EXPECT_STREQ("kubeconfig: no context named current-context 'missing'", err);
	write_file(path, "- just\n- a list\n");
	EXPECT_EQ(-EINVAL, k8s_kubeconfig_load(path, &config, err, sizeof(err)));
	EXPECT_EQ(-ENOENT, k8s_kubeconfig_load("/nonexistent/kubeconfig", &config, err, sizeof(err)));
	run_quiet("rm -rf %s", dir);
}

/* ---- the fake API server ---- */

static void test_config(struct k8s_config *cfg, int port)
{
	k8s_config_set_defaults(cfg);
	snprintf(cfg->api_server, sizeof(cfg->api_server), "http://127.0.0.1:%d", port);
	cfg->list_page_size = 2; /* the fixtures' 3 pods and 4 services take two pages */
	cfg->watch_timeout_s = 5;
	cfg->idle_timeout_s = 2;
	cfg->backoff_min_ms = 50;
	cfg->backoff_max_ms = 400;
	cfg->deleted_grace_s = 0; /* deletes take effect at once, but in the grace test */
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void addr_of(const char *text, uint8_t addr[16])
{
	struct in_addr v4;

	memset(addr, 0, 16);
	if (inet_pton(AF_INET, text, &v4) == 1) {
		addr[10] = addr[11] = 0xff;
		memcpy(addr + 12, &v4, 4);
	} else {
		inet_pton(AF_INET6, text, addr);
	}
}

static struct k8s_identity peer_port(struct k8s *k, const char *ip, uint16_t port)
{
	struct k8s_identity id;
	uint8_t addr[16];

	addr_of(ip, addr);
	k8s_resolve_peer(k, addr, port, NULL, &id);
	return id;
}

static struct k8s_identity peer(struct k8s *k, const char *ip)
{
	return peer_port(k, ip, 80);
}

static struct k8s_identity local_uid(struct k8s *k, const char *uid)
{
	char path[256];
	struct k8s_identity id;

	snprintf(path, sizeof(path), "/kubepods/burstable/pod%s/" CID_B, uid);
	k8s_resolve_local_path(k, path, &id);
	return id;
}

static struct k8s_identity local_id(struct k8s *k, uint64_t cgroup_id)
{
	struct k8s_identity id;

	if (k8s_resolve_local_id(k, cgroup_id, &id))
		id.kind = K8S_KIND_HOST; /* not a pod: what no assertion here expects */
	return id;
}

/* Poll `condition` every 20 ms for up to `timeout_ms`; whether it came true. */
#define WAIT_UNTIL(condition, timeout_ms)                                  \
	({                                                                   \
		uint64_t _deadline = now_ms() + (timeout_ms);                \
		bool _ok;                                                    \
		while (!(_ok = (condition)) && now_ms() < _deadline)         \
			usleep(20000);                                       \
		_ok;                                                         \
	})

static void remove_certificates(void);

FIXTURE(api)
{
	int port;
	pid_t server;
	struct k8s *k;
	struct k8s_config cfg;
};

FIXTURE_SETUP(api)
{
	self->k = NULL;
	self->server = -1;
	self->port = fake_free_port();
	ASSERT_LT(0, self->port);
	test_config(&self->cfg, self->port);
}

FIXTURE_TEARDOWN(api)
{
	k8s_free(self->k);
	fake_stop(self->server);
	remove_certificates();
}

/* Start the server (with the fixtures) and kaccess' watcher, wait for sync. */
static int start_both(FIXTURE_DATA(api) *self)
{
	char err[K8S_ERROR_LEN];
	int ret;

	self->server = fake_start(self->port, true);
	if (self->server < 0)
		return -ECONNREFUSED;
	ret = k8s_new(&self->cfg, &self->k, err, sizeof(err));
	if (ret)
		fprintf(stderr, "# k8s_new: %s\n", err);
	if (!ret)
		ret = k8s_start(self->k);
	if (!ret)
		ret = k8s_wait_synced(self->k, 10000);
	/* both watches connected: what the server does next reaches both */
	if (!ret && !WAIT_UNTIL(fake_stat(self->port, "open_watches") >= 2, 5000))
		ret = -ETIMEDOUT;
	return ret;
}

KTEST_F(api, list_resolves_pods_services_and_peers, 60)
{
	struct k8s_identity id;
	struct k8s_stats stats;

	ASSERT_EQ(0, start_both(self));
	k8s_stats_get(self->k, &stats);
	EXPECT_EQ(3, stats.pods);
	EXPECT_EQ(4, stats.services);
	EXPECT_EQ(0, stats.list_errors);

	/* local: cgroup path of the frontend pod (containerd, systemd) */
	ASSERT_EQ(0, k8s_resolve_local_path(self->k,
		"/kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0b0b0b0b_0000_4000_8000_00000000000b.slice/cri-containerd-" CID_B ".scope",
		&id));
	EXPECT_EQ(K8S_KIND_POD, id.kind);
	EXPECT_STREQ("frontend.shop", id.service);
	EXPECT_STREQ("frontend-6d9f7c7b9d-x2x4k", id.instance);
	EXPECT_STREQ("shop", id.namespace_);
	EXPECT_STREQ("node-1", id.node);
	EXPECT_STREQ(CID_B, id.container_id);
	EXPECT_FALSE(id.excluded);
	/* orders-0 is selected by orders and orders-headless: the first name wins */
	id = local_uid(self->k, UID_ORDERS);
	EXPECT_STREQ("orders.shop", id.service);
	EXPECT_STREQ("orders-0", id.instance);
	/* no service selects node-exporter: its app label */
	id = local_uid(self->k, UID_EXPORTER);
	EXPECT_EQ(K8S_KIND_POD, id.kind);
	EXPECT_STREQ("node-exporter.monitoring", id.service);
	/* a process outside any pod */
	ASSERT_EQ(0, k8s_resolve_local_path(self->k, "/system.slice/ssh.service", &id));
	EXPECT_EQ(K8S_KIND_HOST, id.kind);
	ASSERT_EQ(0, k8s_resolve_local_path(self->k,
		"0::/kubepods/besteffort/pod" UID_ORDERS "/" CID_C "\n", &id));
	EXPECT_STREQ("orders-0", id.instance);

	/* peers: pod IPs (v4 and v6), ClusterIP, LoadBalancer IP, no-selector service */
	id = peer(self->k, "10.244.1.12");
	EXPECT_EQ(K8S_KIND_POD, id.kind);
	EXPECT_STREQ("frontend.shop", id.service);
	EXPECT_STREQ("frontend-6d9f7c7b9d-x2x4k", id.instance);
	id = peer(self->k, "fd00:10:244:2::7");
	EXPECT_STREQ("orders.shop", id.service);
	EXPECT_STREQ("orders-0", id.instance);
	id = peer(self->k, "10.96.0.20");
	EXPECT_EQ(K8S_KIND_SERVICE, id.kind);
	EXPECT_STREQ("frontend.shop", id.service);
	EXPECT_STREQ("", id.instance);
	id = peer(self->k, "203.0.113.30");
	EXPECT_EQ(K8S_KIND_SERVICE, id.kind);
	EXPECT_STREQ("orders.shop", id.service);
	id = peer(self->k, "10.96.0.40");
	EXPECT_STREQ("external-db.shop", id.service);
	/* node addresses: hostIP, and the hostNetwork pod's IP (the same) */
	id = peer(self->k, "192.0.2.11");
	EXPECT_EQ(K8S_KIND_HOST, id.kind);
	EXPECT_STREQ("Unknown", id.service);
	EXPECT_STREQ("node-2", id.node);
	id = peer(self->k, "192.0.2.10");
	EXPECT_EQ(K8S_KIND_HOST, id.kind);
	EXPECT_STREQ("node-1", id.node);
	id = peer(self->k, "127.0.0.1");
	EXPECT_EQ(K8S_KIND_LOOPBACK, id.kind);
	/* nothing knows this one */
	id = peer(self->k, "10.1.2.3");
	EXPECT_EQ(K8S_KIND_UNKNOWN, id.kind);
	EXPECT_STREQ("Unknown", id.service);
	EXPECT_STREQ("", id.instance);
	id = local_uid(self->k, "0a0a0a0a-0000-4000-8000-00000000000a");
	EXPECT_EQ(K8S_KIND_UNKNOWN, id.kind);
	k8s_stats_get(self->k, &stats);
	EXPECT_EQ(1, stats.unresolved_peer);
	EXPECT_EQ(1, stats.unresolved_local);
}

/* The recorded stream: a pod Pending then Running, a bookmark, a delete, 410. */
KTEST_F(api, recorded_watch_stream_then_410, 60)
{
	struct k8s_stats stats;
	struct k8s_identity id;

	ASSERT_EQ(0, start_both(self));
	ASSERT_EQ(200, fake_control(self->port, "replay", "{\"file\": \"" FIXTURES "/pod-watch.ndjson\"}"));
	ASSERT_TRUE(WAIT_UNTIL((k8s_stats_get(self->k, &stats), stats.relists >= 2 && stats.synced), 5000));
	id = local_uid(self->k, "0f0f0f0f-0000-4000-8000-00000000000f");
	EXPECT_EQ(K8S_KIND_POD, id.kind);
	EXPECT_STREQ("frontend.shop", id.service);
	EXPECT_STREQ("frontend-6d9f7c7b9d-q7r8s", id.instance);
	EXPECT_STREQ("frontend-6d9f7c7b9d-q7r8s", peer(self->k, "10.244.1.13").instance);
	EXPECT_EQ(K8S_KIND_UNKNOWN, local_uid(self->k, UID_FRONTEND).kind);
	EXPECT_EQ(K8S_KIND_UNKNOWN, peer(self->k, "10.244.1.12").kind);
	EXPECT_EQ(3, stats.pods);
	EXPECT_LE(2, stats.gone_410);
}

KTEST_F(api, cluster_prefix_and_name_cut_at_70, 60)
{
	struct k8s_identity id;
	char long_ns[64], long_name[128], json_uid[40] = "0d0d0d0d-0000-4000-8000-00000000000d";

	snprintf(self->cfg.cluster_name, sizeof(self->cfg.cluster_name), "prod");
	ASSERT_EQ(0, start_both(self));
	id = peer(self->k, "10.244.1.12");
	EXPECT_STREQ("prod::frontend.shop", id.service);
	memset(long_ns, 'n', 50);
	long_ns[50] = '\0';
	memset(long_name, 'p', 80);
	long_name[80] = '\0';
	ASSERT_EQ(200, fake_control(self->port, "add_pod",
			       fake_pod_json(long_ns, long_name, json_uid, "10.244.9.9", "\"app\": \"application-name\"")));
	ASSERT_TRUE(WAIT_UNTIL(peer(self->k, "10.244.9.9").kind == K8S_KIND_POD, 5000));
	id = peer(self->k, "10.244.9.9");
	EXPECT_EQ(70, strlen(id.service));
	EXPECT_EQ(0, strncmp(id.service, "prod::application-name.nnnn", 27));
	EXPECT_EQ(70, strlen(id.instance));
}

KTEST_F(api, watch_adds_and_forgets_pods_within_seconds, 60)
{
	const char *uid = "0f0f0f0f-0000-4000-8000-00000000000f";
	uint64_t started_ms;
	struct k8s_identity id;

	ASSERT_EQ(0, start_both(self));
	started_ms = now_ms();
	ASSERT_EQ(200, fake_control(self->port, "add_pod",
			       fake_pod_json("shop", "frontend-6d9f7c7b9d-q7r8s", uid, "10.244.1.13",
					"\"app\": \"frontend\"")));
	ASSERT_TRUE(WAIT_UNTIL(local_uid(self->k, uid).kind == K8S_KIND_POD, 3000));
	TH_LOG("pod resolvable %llu ms after it was added",
	       (unsigned long long)(now_ms() - started_ms));
	id = peer(self->k, "10.244.1.13");
	EXPECT_STREQ("frontend.shop", id.service);
	EXPECT_STREQ("frontend-6d9f7c7b9d-q7r8s", id.instance);
	ASSERT_EQ(200, fake_control(self->port, "delete_pod", "{\"uid\": \"0f0f0f0f-0000-4000-8000-00000000000f\"}"));
	ASSERT_TRUE(WAIT_UNTIL(local_uid(self->k, uid).kind == K8S_KIND_UNKNOWN, 3000));
	EXPECT_EQ(K8S_KIND_UNKNOWN, peer(self->k, "10.244.1.13").kind);
	/* the fixture's DELETED of x2x4k is the same path */
	ASSERT_EQ(200, fake_control(self->port, "delete_pod", "{\"uid\": \"" UID_FRONTEND "\"}"));
	ASSERT_TRUE(WAIT_UNTIL(peer(self->k, "10.244.1.12").kind == K8S_KIND_UNKNOWN, 3000));
}

/* The drain names the minute that ended: a pod deleted meanwhile still resolves. */
KTEST_F(api, deleted_pods_resolve_for_the_grace_period, 60)
{
	struct k8s_stats stats;
	uint64_t deleted_ms;

	self->cfg.deleted_grace_s = 2;
	ASSERT_EQ(0, start_both(self));
	ASSERT_EQ(200, fake_control(self->port, "delete_pod", "{\"uid\": \"" UID_FRONTEND "\"}"));
	ASSERT_TRUE(WAIT_UNTIL((k8s_stats_get(self->k, &stats), stats.pods_deleted == 1), 3000));
	deleted_ms = now_ms();
	EXPECT_EQ(K8S_KIND_POD, local_uid(self->k, UID_FRONTEND).kind);
	EXPECT_STREQ("frontend-6d9f7c7b9d-x2x4k", peer(self->k, "10.244.1.12").instance);
	EXPECT_EQ(3, stats.pods);
	/* a new pod that takes over the IP wins at once */
	ASSERT_EQ(200, fake_control(self->port, "add_pod",
			       fake_pod_json("shop", "frontend-6d9f7c7b9d-n3w9z", "40000000-0000-4000-8000-000000000001",
					"10.244.1.12", "\"app\": \"frontend\"")));
	ASSERT_TRUE(WAIT_UNTIL(strcmp(peer(self->k, "10.244.1.12").instance, "frontend-6d9f7c7b9d-n3w9z") == 0,
			       3000));
	ASSERT_TRUE(WAIT_UNTIL(local_uid(self->k, UID_FRONTEND).kind == K8S_KIND_UNKNOWN, 4000));
	EXPECT_LE(1500, now_ms() - deleted_ms);
	k8s_stats_get(self->k, &stats);
	EXPECT_EQ(0, stats.pods_deleted);
	EXPECT_EQ(3, stats.pods);
	EXPECT_STREQ("frontend-6d9f7c7b9d-n3w9z", peer(self->k, "10.244.1.12").instance);
}

KTEST_F(api, selector_multi_match_takes_first_name_and_follows_changes, 60)
{
	ASSERT_EQ(0, start_both(self));
	EXPECT_STREQ("frontend.shop", local_uid(self->k, UID_FRONTEND).service);
	/* "a-frontend" sorts before "frontend": it wins while it exists */
	ASSERT_EQ(200, fake_control(self->port, "add_service",
			       fake_service_json("shop", "a-frontend", "\"app\": \"frontend\"", "10.96.0.99")));
	ASSERT_TRUE(WAIT_UNTIL(strcmp(local_uid(self->k, UID_FRONTEND).service, "a-frontend.shop") == 0,
			       3000));
	EXPECT_STREQ("a-frontend.shop", peer(self->k, "10.96.0.99").service);
	/* a selector with a label the pod lacks selects nothing; another namespace neither */
	ASSERT_EQ(200, fake_control(self->port, "add_service",
			       fake_service_json("shop", "0-partial", "\"app\": \"frontend\", \"tier\": \"x\"",
					    "10.96.0.98")));
	ASSERT_EQ(200, fake_control(self->port, "add_service",
			       fake_service_json("other", "0-other", "\"app\": \"frontend\"", "10.96.0.97")));
	ASSERT_TRUE(WAIT_UNTIL(peer(self->k, "10.96.0.97").kind == K8S_KIND_SERVICE, 3000));
	EXPECT_STREQ("a-frontend.shop", local_uid(self->k, UID_FRONTEND).service);
	ASSERT_EQ(200, fake_control(self->port, "delete_service",
			       "{\"namespace\": \"shop\", \"name\": \"a-frontend\"}"));
	ASSERT_TRUE(WAIT_UNTIL(strcmp(local_uid(self->k, UID_FRONTEND).service, "frontend.shop") == 0,
			       3000));
	EXPECT_EQ(K8S_KIND_UNKNOWN, peer(self->k, "10.96.0.99").kind);
}

/* Two LoadBalancer services share one IP (MetalLB), told apart by port. */
KTEST_F(api, shared_load_balancer_ip_by_port, 60)
{
	ASSERT_EQ(0, start_both(self));
	ASSERT_EQ(200, fake_control(self->port, "add_service",
			       "{\"metadata\": {\"name\": \"web\", \"namespace\": \"shop\"}, \"spec\": "
			       "{\"type\": \"LoadBalancer\", \"clusterIP\": \"10.96.0.61\", \"ports\": "
			       "[{\"port\": 80}]}, \"status\": {\"loadBalancer\": {\"ingress\": "
			       "[{\"ip\": \"203.0.113.50\"}]}}}"));
	ASSERT_EQ(200, fake_control(self->port, "add_service",
			       "{\"metadata\": {\"name\": \"web-tls\", \"namespace\": \"shop\"}, \"spec\": "
			       "{\"type\": \"LoadBalancer\", \"clusterIP\": \"10.96.0.62\", \"ports\": "
			       "[{\"port\": 443}]}, \"status\": {\"loadBalancer\": {\"ingress\": "
			       "[{\"ip\": \"203.0.113.50\"}]}}}"));
	ASSERT_TRUE(WAIT_UNTIL(peer(self->k, "10.96.0.62").kind == K8S_KIND_SERVICE, 3000));
	EXPECT_STREQ("web.shop", peer_port(self->k, "203.0.113.50", 80).service);
	EXPECT_STREQ("web-tls.shop", peer_port(self->k, "203.0.113.50", 443).service);
	/* no port matches: the newest */
	EXPECT_STREQ("web-tls.shop", peer_port(self->k, "203.0.113.50", 8080).service);
}

/* Pods no service selects, under each k8s_unselected_pod_rule. */
static void add_unselected_pods(int port)
{
	fake_control(port, "add_pod", fake_pod_json("jobs", "worker-5f7d8c9b6-x7k2p", "10000000-0000-4000-8000-000000000001",
					  "10.244.7.1", "\"pod-template-hash\": \"5f7d8c9b6\""));
	fake_control(port, "add_pod", fake_pod_json("jobs", "db-12", "10000000-0000-4000-8000-000000000002",
					  "10.244.7.2", "\"statefulset.kubernetes.io/pod-name\": \"db-12\""));
	fake_control(port, "add_pod", fake_pod_json("jobs", "agent-x7k2p", "10000000-0000-4000-8000-000000000003",
					  "10.244.7.3", "\"controller-revision-hash\": \"abc\""));
	fake_control(port, "add_pod", fake_pod_json("jobs", "standalone", "10000000-0000-4000-8000-000000000004",
					  "10.244.7.4", "\"a\": \"b\""));
	fake_control(port, "add_pod", fake_pod_json("jobs", "named-abcde", "10000000-0000-4000-8000-000000000005",
					  "10.244.7.5", "\"app.kubernetes.io/name\": \"cache\", \"app\": \"x\""));
}

KTEST_F(api, unselected_pods_owner_rule, 60)
{
	ASSERT_EQ(0, start_both(self));
	add_unselected_pods(self->port);
	ASSERT_TRUE(WAIT_UNTIL(peer(self->k, "10.244.7.5").kind == K8S_KIND_POD, 3000));
	EXPECT_STREQ("worker.jobs", peer(self->k, "10.244.7.1").service);
	EXPECT_STREQ("db.jobs", peer(self->k, "10.244.7.2").service);
	EXPECT_STREQ("agent.jobs", peer(self->k, "10.244.7.3").service);
	EXPECT_STREQ("standalone.jobs", peer(self->k, "10.244.7.4").service);
	/* "abcde" has vowels: no generated suffix; the label wins anyway */
	EXPECT_STREQ("cache.jobs", peer(self->k, "10.244.7.5").service);
}

KTEST_F(api, unselected_pods_pod_and_unknown_rules, 60)
{
	struct k8s_identity id;
	char err[K8S_ERROR_LEN];
	struct k8s *other;

	self->cfg.unselected_pod_rule = K8S_UNSELECTED_POD;
	ASSERT_EQ(0, start_both(self));
	add_unselected_pods(self->port);
	ASSERT_TRUE(WAIT_UNTIL(peer(self->k, "10.244.7.5").kind == K8S_KIND_POD, 3000));
	EXPECT_STREQ("worker-5f7d8c9b6-x7k2p.jobs", peer(self->k, "10.244.7.1").service);
	EXPECT_STREQ("frontend.shop", peer(self->k, "10.244.1.12").service);

	self->cfg.unselected_pod_rule = K8S_UNSELECTED_UNKNOWN;
	ASSERT_EQ(0, k8s_new(&self->cfg, &other, err, sizeof(err)));
	ASSERT_EQ(0, k8s_start(other));
	ASSERT_EQ(0, k8s_wait_synced(other, 10000));
	id = peer(other, "10.244.7.1");
	EXPECT_EQ(K8S_KIND_POD, id.kind);
	EXPECT_STREQ("Unknown", id.service);
	EXPECT_STREQ("worker-5f7d8c9b6-x7k2p", id.instance);
	EXPECT_STREQ("frontend.shop", peer(other, "10.244.1.12").service);
	k8s_free(other);
}

KTEST_F(api, namespace_exclude_and_include_lists, 60)
{
	char err[K8S_ERROR_LEN];
	struct k8s *include_shop;

	snprintf(self->cfg.exclude_namespaces, sizeof(self->cfg.exclude_namespaces), "kube-system,monitoring");
	ASSERT_EQ(0, start_both(self));
	EXPECT_TRUE(local_uid(self->k, UID_EXPORTER).excluded);
	EXPECT_FALSE(local_uid(self->k, UID_FRONTEND).excluded);
	EXPECT_FALSE(peer(self->k, "10.96.0.20").excluded);

	self->cfg.exclude_namespaces[0] = '\0';
	snprintf(self->cfg.include_namespaces, sizeof(self->cfg.include_namespaces), "monitoring");
	ASSERT_EQ(0, k8s_new(&self->cfg, &include_shop, err, sizeof(err)));
	ASSERT_EQ(0, k8s_start(include_shop));
	ASSERT_EQ(0, k8s_wait_synced(include_shop, 10000));
	EXPECT_FALSE(local_uid(include_shop, UID_EXPORTER).excluded);
	EXPECT_TRUE(local_uid(include_shop, UID_FRONTEND).excluded);
	EXPECT_TRUE(peer(include_shop, "10.96.0.20").excluded);
	k8s_free(include_shop);
}

/* k8s_log_unresolved, with what it wrote to stderr (where the log goes) in ret_text. */
static int log_unresolved_captured(struct k8s *k, char *ret_text, size_t len)
{
	char path[] = "/tmp/kaccess-selftest-log-XXXXXX";
	int fd = mkstemp(path), saved_stderr = dup(STDERR_FILENO), logged;
	ssize_t text_len;

	ret_text[0] = '\0';
	if (fd < 0 || saved_stderr < 0)
		return -errno;
	unlink(path);
	fflush(stderr);
	dup2(fd, STDERR_FILENO);
	logged = k8s_log_unresolved(k);
	fflush(stderr);
	dup2(saved_stderr, STDERR_FILENO);
	close(saved_stderr);
	text_len = pread(fd, ret_text, len - 1, 0);
	ret_text[text_len > 0 ? text_len : 0] = '\0';
	close(fd);
	return logged;
}

KTEST_F(api, server_down_at_start_backs_off_then_resolves, 60)
{
	struct k8s_stats stats;
	char err[K8S_ERROR_LEN], log_text[1024];
	uint64_t errors_before;

	ASSERT_EQ(0, k8s_new(&self->cfg, &self->k, err, sizeof(err)));
	ASSERT_EQ(0, k8s_start(self->k));
	usleep(1500 * 1000);
	k8s_stats_get(self->k, &stats);
	EXPECT_FALSE(stats.synced);
	/* backoff 50, 100, 200, 400, 400 ms...: a handful of tries per resource, not hundreds */
	EXPECT_LE(4, stats.list_errors);
	EXPECT_GE(20, stats.list_errors);
	EXPECT_EQ(400, stats.backoff_ms);
	EXPECT_NE(NULL, strstr(stats.last_error, "list ")) TH_LOG("%s", stats.last_error);
	TH_LOG("while down: %s", stats.last_error);
	EXPECT_EQ(K8S_KIND_UNKNOWN, local_uid(self->k, UID_FRONTEND).kind);
	EXPECT_EQ(K8S_KIND_UNKNOWN, peer(self->k, "10.244.1.12").kind);
	EXPECT_EQ(K8S_KIND_UNKNOWN, peer(self->k, "10.244.1.12").kind);
	k8s_stats_get(self->k, &stats);
	EXPECT_EQ(1, stats.unresolved_local);
	EXPECT_EQ(2, stats.unresolved_peer); /* UNKNOWN is not kept: each lookup counts */
	/* one line says so, then nothing for a minute however many more there are */
	EXPECT_EQ(1, log_unresolved_captured(self->k, log_text, sizeof(log_text)));
	EXPECT_NE(NULL, strstr(log_text, "1 local and 2 peer lookups found no name")) TH_LOG("%s", log_text);
	EXPECT_NE(NULL, strstr(log_text, "the API is not synced (list ")) TH_LOG("%s", log_text);
	EXPECT_EQ(K8S_KIND_UNKNOWN, local_uid(self->k, UID_FRONTEND).kind);
	EXPECT_EQ(0, log_unresolved_captured(self->k, log_text, sizeof(log_text)));
	EXPECT_STREQ("", log_text);
	/* still down: the retries go on, each one a counted error */
	errors_before = stats.list_errors;
	EXPECT_TRUE(WAIT_UNTIL((k8s_stats_get(self->k, &stats), stats.list_errors > errors_before), 2000))
		TH_LOG("list errors stayed at %llu", (unsigned long long)errors_before);

	self->server = fake_start(self->port, true);
	ASSERT_LT(0, self->server);
	ASSERT_EQ(0, k8s_wait_synced(self->k, 5000));
	EXPECT_STREQ("frontend.shop", local_uid(self->k, UID_FRONTEND).service);
	EXPECT_STREQ("frontend.shop", peer(self->k, "10.244.1.12").service);
	k8s_stats_get(self->k, &stats);
	EXPECT_EQ(0, stats.backoff_ms);
	EXPECT_EQ(2, stats.unresolved_local);
	EXPECT_EQ(2, stats.unresolved_peer);
	EXPECT_EQ(3, stats.pods);
	/* synced: no more errors */
	errors_before = stats.list_errors;
	usleep(500 * 1000);
	k8s_stats_get(self->k, &stats);
	EXPECT_EQ(errors_before, stats.list_errors);
}

KTEST_F(api, closed_watches_resume_without_relist, 60)
{
	struct k8s_stats stats;
	long watches_before;

	ASSERT_EQ(0, start_both(self));
	watches_before = fake_stat(self->port, "watch");
	for (int i = 0; i < 3; i++) {
		ASSERT_EQ(200, fake_control(self->port, "close_watches", NULL));
		usleep(200 * 1000);
	}
	ASSERT_EQ(200, fake_control(self->port, "add_pod",
			       fake_pod_json("shop", "late", "20000000-0000-4000-8000-000000000001", "10.244.3.3",
					"\"app\": \"orders\"")));
	ASSERT_TRUE(WAIT_UNTIL(peer(self->k, "10.244.3.3").kind == K8S_KIND_POD, 3000));
	EXPECT_STREQ("orders.shop", peer(self->k, "10.244.3.3").service);
	k8s_stats_get(self->k, &stats);
	EXPECT_EQ(0, stats.relists);
	EXPECT_EQ(0, stats.watch_errors);
	EXPECT_EQ(0, stats.list_errors);
	EXPECT_TRUE(stats.synced);
	/* each closed watch (3 x pods and services) is opened again, the last maybe just now */
	EXPECT_TRUE(WAIT_UNTIL(fake_stat(self->port, "watch") >= watches_before + 6, 3000))
		TH_LOG("watches %ld, before %ld", fake_stat(self->port, "watch"), watches_before);
	EXPECT_EQ(2, fake_stat(self->port, "list") - 2); /* two pages of pods, two of services */
}

/*
 * A BOOKMARK is the only news a watch gets of versions that changed other
 * resources; after the history up to it is compacted, a watch resumed
 * from anything older gets 410 and lists again. Resuming from the
 * bookmark's version needs no list.
 */
KTEST_F(api, bookmark_version_survives_compaction_without_relist, 60)
{
	struct k8s_stats stats;
	long lists_before, watches_before, bookmark_rv;

	ASSERT_EQ(0, start_both(self));
	lists_before = fake_stat(self->port, "list");
	/* a service event: the pods watch sees only bookmarks carrying its version */
	ASSERT_EQ(200, fake_control(self->port, "add_service",
			       fake_service_json("shop", "late", "\"app\": \"late\"", "10.96.0.99")));
	bookmark_rv = fake_stat(self->port, "rv");
	ASSERT_TRUE(WAIT_UNTIL(fake_stat(self->port, "bookmark_rv_pods") >= bookmark_rv, 5000));
	ASSERT_EQ(bookmark_rv, fake_stat(self->port, "rv"));
	watches_before = fake_stat(self->port, "watch");
	ASSERT_EQ(200, fake_control(self->port, "compact", NULL));
	ASSERT_EQ(200, fake_control(self->port, "close_watches", NULL));
	ASSERT_TRUE(WAIT_UNTIL(fake_stat(self->port, "watch") >= watches_before + 2, 5000));
	usleep(300 * 1000); /* a 410 would come at once and relist */
	EXPECT_EQ(bookmark_rv, fake_stat(self->port, "watch_rv_pods"));
	EXPECT_EQ(bookmark_rv, fake_stat(self->port, "watch_rv_services"));
	EXPECT_EQ(lists_before, fake_stat(self->port, "list"));
	k8s_stats_get(self->k, &stats);
	EXPECT_EQ(0, stats.relists);
	EXPECT_EQ(0, stats.gone_410);
	EXPECT_TRUE(stats.synced);
}

KTEST_F(api, watch_error_410_relists, 60)
{
	struct k8s_stats stats;

	ASSERT_EQ(0, start_both(self));
	ASSERT_EQ(200, fake_control(self->port, "watch_error_410", NULL));
	ASSERT_TRUE(WAIT_UNTIL((k8s_stats_get(self->k, &stats), stats.relists >= 2 && stats.synced), 5000));
	EXPECT_LE(2, stats.gone_410); /* both watches */
	EXPECT_EQ(0, stats.watch_errors);
	EXPECT_NE(NULL, strstr(stats.last_error, "ERROR 410")) TH_LOG("%s", stats.last_error);
	ASSERT_EQ(200, fake_control(self->port, "add_pod",
			       fake_pod_json("shop", "after-410", "20000000-0000-4000-8000-000000000002",
					"10.244.3.4", "\"app\": \"frontend\"")));
	ASSERT_TRUE(WAIT_UNTIL(peer(self->k, "10.244.3.4").kind == K8S_KIND_POD, 3000));
	k8s_stats_get(self->k, &stats);
	EXPECT_EQ(4, stats.pods);
}

KTEST_F(api, http_410_relists_and_deletes_missed_objects, 60)
{
	struct k8s_stats stats;

	ASSERT_EQ(0, start_both(self));
	/* Both watches end and come back to HTTP 410; meanwhile a pod went away unseen. */
	ASSERT_EQ(200, fake_control(self->port, "http_410", "{\"count\": 2}"));
	ASSERT_EQ(200, fake_control(self->port, "close_watches", NULL));
	ASSERT_TRUE(WAIT_UNTIL((k8s_stats_get(self->k, &stats), stats.relists >= 2 && stats.synced), 5000));
	EXPECT_EQ(2, stats.gone_410);
	EXPECT_NE(NULL, strstr(stats.last_error, "HTTP 410")) TH_LOG("%s", stats.last_error);
	EXPECT_EQ(2, fake_stat(self->port, "http_410"));
	EXPECT_EQ(K8S_KIND_POD, peer(self->k, "10.244.1.12").kind);
}

KTEST_F(api, garbage_is_an_error_and_retried, 60)
{
	struct k8s_stats stats;
	char err[K8S_ERROR_LEN];

	self->server = fake_start(self->port, true);
	ASSERT_LT(0, self->server);
	/* the first two requests (the first list page of each resource) are garbage */
	ASSERT_EQ(200, fake_control(self->port, "garbage", "{\"count\": 2}"));
	ASSERT_EQ(0, k8s_new(&self->cfg, &self->k, err, sizeof(err)));
	ASSERT_EQ(0, k8s_start(self->k));
	ASSERT_EQ(0, k8s_wait_synced(self->k, 5000));
	k8s_stats_get(self->k, &stats);
	EXPECT_EQ(2, stats.list_errors);
	EXPECT_EQ(3, stats.pods);
	/* now a watch gets garbage */
	ASSERT_EQ(200, fake_control(self->port, "garbage", "{\"count\": 1}"));
	ASSERT_EQ(200, fake_control(self->port, "close_watches", NULL));
	ASSERT_TRUE(WAIT_UNTIL((k8s_stats_get(self->k, &stats), stats.watch_errors == 1), 3000));
	EXPECT_NE(NULL, strstr(stats.last_error, "not JSON")) TH_LOG("%s", stats.last_error);
	ASSERT_EQ(200, fake_control(self->port, "add_pod",
			       fake_pod_json("shop", "after-garbage", "20000000-0000-4000-8000-000000000003",
					"10.244.3.5", "\"app\": \"frontend\"")));
	ASSERT_TRUE(WAIT_UNTIL(peer(self->k, "10.244.3.5").kind == K8S_KIND_POD, 3000));
	EXPECT_EQ(2, fake_stat(self->port, "garbage") - 1);
}

KTEST_F(api, silent_watch_is_abandoned_after_the_timeout, 60)
{
	struct k8s_stats stats;
	uint64_t started_ms;

	self->cfg.watch_timeout_s = 2;
	self->cfg.idle_timeout_s = 1;
	ASSERT_EQ(0, start_both(self));
	ASSERT_EQ(200, fake_control(self->port, "hang", "{\"count\": 1}"));
	ASSERT_EQ(200, fake_control(self->port, "close_watches", NULL));
	started_ms = now_ms();
	ASSERT_EQ(200, fake_control(self->port, "add_pod",
			       fake_pod_json("shop", "after-hang", "20000000-0000-4000-8000-000000000004",
					"10.244.3.6", "\"app\": \"frontend\"")));
	/* one watch hangs: its resource learns nothing until kaccess gives up on it */
	ASSERT_TRUE(WAIT_UNTIL((k8s_stats_get(self->k, &stats), stats.watch_errors >= 1), 6000));
	TH_LOG("dead watch abandoned after %llu ms: %s", (unsigned long long)(now_ms() - started_ms),
	       stats.last_error);
	EXPECT_GE(4500, now_ms() - started_ms);
	EXPECT_EQ(1, fake_stat(self->port, "hang"));
	ASSERT_TRUE(WAIT_UNTIL(peer(self->k, "10.244.3.6").kind == K8S_KIND_POD, 3000));
}

/* ---- the HTTP client's parts ---- */

struct url_case {
	const char *url;
	int err;
	bool tls;
	const char *host, *port, *host_header, *base_path;
};

static const struct url_case url_cases[] = {
	{ "https://10.96.0.1:443", 0, true, "10.96.0.1", "443", "10.96.0.1:443", "" },
	{ "https://kubernetes.default.svc", 0, true, "kubernetes.default.svc", "443",
	  "kubernetes.default.svc", "" },
	{ "http://127.0.0.1:8001/", 0, false, "127.0.0.1", "8001", "127.0.0.1:8001", "" },
	{ "http://api.example", 0, false, "api.example", "80", "api.example", "" },
	{ "https://[fd00::1]:6443", 0, true, "fd00::1", "6443", "[fd00::1]:6443", "" },
	{ "https://[fd00::1]", 0, true, "fd00::1", "443", "[fd00::1]", "" },
	{ "https://rancher.example/k8s/clusters/c-abc/", 0, true, "rancher.example", "443",
	  "rancher.example", "/k8s/clusters/c-abc" },
	{ .url = "ftp://10.0.0.1", .err = -EINVAL },
	{ .url = "https://", .err = -EINVAL },
	{ .url = "https://:443", .err = -EINVAL },
	{ .url = "https://10.0.0.1:0", .err = -EINVAL },
	{ .url = "https://10.0.0.1:65536", .err = -EINVAL },
	{ .url = "https://10.0.0.1:6443x", .err = -EINVAL },
	{ .url = "https://[fd00::1", .err = -EINVAL },
	{ .url = "https://[fd00::1]6443", .err = -EINVAL },
	{ .url = "https://user:secret@10.0.0.1", .err = -EINVAL },
};

TEST(http_server_url_parts)
{
	for (size_t i = 0; i < sizeof(url_cases) / sizeof(url_cases[0]); i++) {
		const struct url_case *c = &url_cases[i];
		struct k8s_http_server server;
		char err[128] = "";

		ASSERT_EQ(c->err, k8s_http_server_parse(c->url, &server, err, sizeof(err)))
			TH_LOG("%s: %s", c->url, err);
		if (c->err) {
			EXPECT_NE(NULL, strstr(err, c->url)) TH_LOG("%s", err);
			continue;
		}
		EXPECT_EQ(c->tls, server.tls);
		EXPECT_STREQ(c->host, server.host);
		EXPECT_STREQ(c->port, server.port);
		EXPECT_STREQ(c->host_header, server.host_header);
		EXPECT_STREQ(c->base_path, server.base_path);
	}
}

TEST(http_escape_keeps_only_unreserved_characters)
{
	char out[64];

	ASSERT_EQ(0, k8s_http_escape("eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIzfQ==", out, sizeof(out)));
	EXPECT_STREQ("eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6MTIzfQ%3D%3D", out);
	ASSERT_EQ(0, k8s_http_escape("a-b.c_d~e f/g+h&i", out, sizeof(out)));
	EXPECT_STREQ("a-b.c_d~e%20f%2Fg%2Bh%26i", out);
	ASSERT_EQ(0, k8s_http_escape("", out, sizeof(out)));
	EXPECT_STREQ("", out);
	EXPECT_EQ(-ENOSPC, k8s_http_escape("==", out, 6)); /* needs 7 with the NUL */
	ASSERT_EQ(0, k8s_http_escape("==", out, 7));
	EXPECT_STREQ("%3D%3D", out);
}

struct collected {
	char data[256];
	size_t len;
};

static int collect(void *user, const char *data, size_t len)
{
	struct collected *c = user;

	if (c->len + len > sizeof(c->data))
		return -EFBIG;
	memcpy(c->data + c->len, data, len);
	c->len += len;
	return 0;
}

/* Feeds `coded` in pieces of `piece` bytes; the bytes used, or the error. */
static long chunked_decode(const char *coded, size_t piece, struct collected *out,
			   struct k8s_chunked *chunked)
{
	size_t len = strlen(coded), used = 0;

	memset(chunked, 0, sizeof(*chunked));
	memset(out, 0, sizeof(*out));
	while (used < len && chunked->state != K8S_CHUNK_DONE) {
		size_t n = len - used < piece ? len - used : piece;
		long ret = k8s_chunked_feed(chunked, coded + used, n, collect, out);

		if (ret < 0)
			return ret;
		used += (size_t)ret;
		if ((size_t)ret < n)
			break;
	}
	return (long)used;
}

/*
 * Watch events as the API server frames them: sizes in either case, an
 * extension, CRLF or bare LF, a trailer field, and what follows the coding
 * left unread. Decoded whole, and from pieces of every size down to one byte.
 */
TEST(chunked_coding_decodes_from_pieces_split_anywhere)
{
	static const char coded[] = "17\r\n{\"type\":\"ADDED\",\"n\":1}\n\r\n"
				    "C;name=value\r\n{\"n\":22222}\n\r\n"
				    "b\n{\"n\":33333}\n"
				    "0\r\nX-Trailer: yes\r\n\r\n"
				    "HTTP/1.1 200 OK";
	static const char expected[] = "{\"type\":\"ADDED\",\"n\":1}\n{\"n\":22222}\n{\"n\":33333}";
	struct k8s_chunked chunked;
	struct collected out;

	for (size_t piece = 1; piece <= sizeof(coded); piece++) {
		long used = chunked_decode(coded, piece, &out, &chunked);

		ASSERT_EQ((long)(sizeof(coded) - 1 - strlen("HTTP/1.1 200 OK")), used)
			TH_LOG("pieces of %zu", piece);
		ASSERT_EQ(K8S_CHUNK_DONE, chunked.state);
		ASSERT_EQ(strlen(expected), out.len);
		ASSERT_EQ(0, memcmp(expected, out.data, out.len)) TH_LOG("pieces of %zu", piece);
	}
}

TEST(chunked_coding_refuses_what_is_malformed)
{
	static const char *const malformed[] = {
		"\r\n",                  /* no size */
		"zz\r\nab\r\n0\r\n\r\n",  /* not hex */
		"2\r\nabX\r\n0\r\n\r\n",  /* data longer than its size */
		"1000000000000000\r\n",  /* 16 digits: over what fits */
		"2\rX",                  /* CR without LF */
		"0\r\n\rX",              /* trailer's end without LF */
	};
	struct k8s_chunked chunked;
	struct collected out;
	char big[8 + 300] = "12c\r\n"; /* 300 bytes: over what `collect` holds */

	for (size_t i = 0; i < sizeof(malformed) / sizeof(malformed[0]); i++) {
		for (size_t piece = 1; piece <= strlen(malformed[i]); piece++) {
			EXPECT_EQ(-EPROTO, chunked_decode(malformed[i], piece, &out, &chunked))
				TH_LOG("%zu in pieces of %zu", i, piece);
		}
	}
	/* what the receiver refuses ends the decoding with its error */
	memset(big + 5, 'a', 300);
	EXPECT_EQ(-EFBIG, chunked_decode(big, sizeof(big), &out, &chunked));
	EXPECT_EQ(0, out.len);
}

/* ---- TLS: kubeconfig and in-cluster ---- */

/* Per test process, so parallel runs and other suites' cleanups do not collide. */
struct tls_files {
	char dir[64];
	char server_crt[96], server_key[96], client_crt[96];
	char config[96], config_no_ca[96];
};

static struct tls_files tls;

/* A self-signed server certificate for 127.0.0.1 and a client certificate. */
static int make_certificates(void)
{
	snprintf(tls.dir, sizeof(tls.dir), "/tmp/kak-k8s-tls-%d", (int)getpid());
	snprintf(tls.server_crt, sizeof(tls.server_crt), "%s/server.crt", tls.dir);
	snprintf(tls.server_key, sizeof(tls.server_key), "%s/server.key", tls.dir);
	snprintf(tls.client_crt, sizeof(tls.client_crt), "%s/client.crt", tls.dir);
	snprintf(tls.config, sizeof(tls.config), "%s/config", tls.dir);
	snprintf(tls.config_no_ca, sizeof(tls.config_no_ca), "%s/config-no-ca", tls.dir);
	return run_quiet("rm -rf %s && mkdir -p %s && cd %s && "
			 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
			 "-keyout server.key -out server.crt -subj /CN=kak-apiserver "
			 "-addext subjectAltName=IP:127.0.0.1 -days 1 && "
			 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
			 "-keyout client.key -out client.crt -subj /CN=kaccess-client -days 1",
			 tls.dir, tls.dir, tls.dir);
}

static void remove_certificates(void)
{
	if (tls.dir[0])
		run_quiet("rm -rf %s", tls.dir);
	tls.dir[0] = '\0';
}

/* The fake server's next start serves https with the server certificate (args 0-3). */
static void serve_https(void)
{
	fake_scheme = "https";
	fake_extra_args[0] = "--tls-cert";
	fake_extra_args[1] = tls.server_crt;
	fake_extra_args[2] = "--tls-key";
	fake_extra_args[3] = tls.server_key;
}

/* How write_kubeconfig trusts the server. */
enum kubeconfig_trust { TRUST_NOTHING, TRUST_CA, TRUST_ANYTHING };

static int write_kubeconfig(const char *path, const char *host, int port,
			    enum kubeconfig_trust trust)
{
	const char *trust_line = trust == TRUST_CA ? "echo \"    certificate-authority-data: $(base64 -w0 server.crt)\";"
			       : trust == TRUST_ANYTHING ? "echo '    insecure-skip-tls-verify: true';"
							 : "";

	/* run_quiet appends >/dev/null: the file redirect is inside the outer braces */
	return run_quiet("{ cd %s && { echo 'apiVersion: v1'; echo 'kind: Config'; "
			 "echo 'current-context: test'; echo 'clusters:'; echo '- name: c'; "
			 "echo '  cluster:'; echo '    server: https://%s:%d'; "
			 "%s "
			 "echo 'contexts:'; echo '- name: test'; echo '  context: {cluster: c, user: u}'; "
			 "echo 'users:'; echo '- name: u'; echo '  user:'; "
			 "echo \"    client-certificate-data: $(base64 -w0 client.crt)\"; "
			 "echo \"    client-key-data: $(base64 -w0 client.key)\"; "
			 "echo '    token: kube-token'; } > %s; }",
			 tls.dir, host, port, trust_line, path);
}

KTEST_F(api, https_kubeconfig_ca_client_certificate_and_token, 60)
{
	struct k8s_stats stats;
	struct k8s *unverified = NULL;
	char err[K8S_ERROR_LEN], text[128];

	if (run_quiet("command -v openssl") != 0)
		SKIP(return, "openssl is not installed");
	ASSERT_EQ(0, make_certificates());
	ASSERT_EQ(0, write_kubeconfig(tls.config, "127.0.0.1", self->port, TRUST_CA));
	ASSERT_EQ(0, write_kubeconfig(tls.config_no_ca, "127.0.0.1", self->port, TRUST_NOTHING));
	serve_https();
	fake_extra_args[4] = "--client-ca";
	fake_extra_args[5] = tls.client_crt;
	fake_extra_args[6] = "--require-token";
	fake_extra_args[7] = "kube-token";
	self->cfg.api_server[0] = '\0';
	snprintf(self->cfg.kubeconfig, sizeof(self->cfg.kubeconfig), "%s", tls.config);
	ASSERT_EQ(0, start_both(self));
	EXPECT_STREQ("frontend.shop", local_uid(self->k, UID_FRONTEND).service);
	fake_stat_text(self->port, "last_auth", text, sizeof(text));
	EXPECT_STREQ("Bearer kube-token", text);
	fake_stat_text(self->port, "client_cn", text, sizeof(text));
	EXPECT_STREQ("kaccess-client", text);
	EXPECT_EQ(0, fake_stat(self->port, "unauthorized"));

	/* without the CA the self-signed server is refused, and the counters say so */
	snprintf(self->cfg.kubeconfig, sizeof(self->cfg.kubeconfig), "%s", tls.config_no_ca);
	self->cfg.idle_timeout_s = 10; /* a slow handshake (valgrind) is not the failure we want */
	ASSERT_EQ(0, k8s_new(&self->cfg, &unverified, err, sizeof(err)));
	ASSERT_EQ(0, k8s_start(unverified));
	ASSERT_TRUE(WAIT_UNTIL((k8s_stats_get(unverified, &stats), stats.list_errors >= 2), 20000));
	EXPECT_FALSE(stats.synced);
	EXPECT_NE(NULL, strstr(stats.last_error, "certificate")) TH_LOG("%s", stats.last_error);
	k8s_free(unverified);
	remove_certificates();
}

/*
 * The server's certificate names 127.0.0.1 only. A kubeconfig that calls
 * the same server "localhost" is refused, though the CA it trusts signed
 * it; with insecure-skip-tls-verify (and no CA) nothing is checked and it
 * syncs. "localhost" is ::1 first: that refused connection is passed over.
 */
KTEST_F(api, https_refuses_a_name_the_certificate_lacks_unless_insecure, 60)
{
	struct k8s_stats stats;
	struct k8s *misnamed = NULL;
	char err[K8S_ERROR_LEN];

	if (run_quiet("command -v openssl") != 0)
		SKIP(return, "openssl is not installed");
	ASSERT_EQ(0, make_certificates());
	ASSERT_EQ(0, write_kubeconfig(tls.config, "localhost", self->port, TRUST_CA));
	ASSERT_EQ(0, write_kubeconfig(tls.config_no_ca, "localhost", self->port, TRUST_ANYTHING));
	serve_https();
	self->cfg.api_server[0] = '\0';
	snprintf(self->cfg.kubeconfig, sizeof(self->cfg.kubeconfig), "%s", tls.config_no_ca);
	ASSERT_EQ(0, start_both(self));
	EXPECT_STREQ("frontend.shop", local_uid(self->k, UID_FRONTEND).service);

	snprintf(self->cfg.kubeconfig, sizeof(self->cfg.kubeconfig), "%s", tls.config);
	self->cfg.idle_timeout_s = 10; /* a slow handshake (valgrind) is not the failure we want */
	ASSERT_EQ(0, k8s_new(&self->cfg, &misnamed, err, sizeof(err)));
	ASSERT_EQ(0, k8s_start(misnamed));
	ASSERT_TRUE(WAIT_UNTIL((k8s_stats_get(misnamed, &stats), stats.list_errors >= 2), 20000));
	EXPECT_FALSE(stats.synced);
	EXPECT_NE(NULL, strstr(stats.last_error, "certificate verify failed: hostname mismatch"))
		TH_LOG("%s", stats.last_error);
	k8s_free(misnamed);
	remove_certificates();
}

/*
 * k8s_stop ends the requests in progress at once: here two watches the
 * server keeps silent, which would otherwise hold it for watch_timeout_s
 * plus idle_timeout_s (40 s).
 */
KTEST_F(api, stop_interrupts_silent_watches_at_once, 60)
{
	uint64_t started_ms;

	self->cfg.watch_timeout_s = 30;
	self->cfg.idle_timeout_s = 10;
	ASSERT_EQ(0, start_both(self));
	ASSERT_EQ(200, fake_control(self->port, "hang", "{\"count\": 2}"));
	ASSERT_EQ(200, fake_control(self->port, "close_watches", NULL));
	ASSERT_TRUE(WAIT_UNTIL(fake_stat(self->port, "hang") == 2, 5000));
	started_ms = now_ms();
	k8s_stop(self->k);
	TH_LOG("stopped in %llu ms", (unsigned long long)(now_ms() - started_ms));
	EXPECT_GE(2000, now_ms() - started_ms);
}

KTEST_F(api, in_cluster_token_is_reread_when_rotated, 60)
{
	char text[128], port_text[16];

	if (run_quiet("command -v openssl") != 0)
		SKIP(return, "openssl is not installed");
	ASSERT_EQ(0, make_certificates());
	ASSERT_EQ(0, run_quiet("{ cp %s/server.crt %s/ca.crt && printf 'token-1\\n' > %s/token; }",
			       tls.dir, tls.dir, tls.dir));
	serve_https();
	snprintf(port_text, sizeof(port_text), "%d", self->port);
	setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1", 1);
	setenv("KUBERNETES_SERVICE_PORT", port_text, 1);
	self->cfg.api_server[0] = '\0';
	snprintf(self->cfg.service_account_dir, sizeof(self->cfg.service_account_dir), "%s", tls.dir);
	ASSERT_EQ(0, start_both(self));
	EXPECT_STREQ("orders.shop", local_uid(self->k, UID_ORDERS).service);
	fake_stat_text(self->port, "last_auth", text, sizeof(text));
	EXPECT_STREQ("Bearer token-1", text);
	ASSERT_EQ(0, run_quiet("{ printf 'token-2\\n' > %s/token.new && mv %s/token.new %s/token; }",
			       tls.dir, tls.dir, tls.dir));
	ASSERT_EQ(200, fake_control(self->port, "close_watches", NULL));
	ASSERT_TRUE(WAIT_UNTIL((fake_stat_text(self->port, "last_auth", text, sizeof(text)),
				strcmp(text, "Bearer token-2") == 0), 3000));
	remove_certificates();
}

/*
 * 10,000 pods and 2,000 services (in 100 namespaces): all kept, the agent's
 * RSS grows by less than 32 MiB (measured 12.7 MiB: see the log line), and a lookup
 * costs the same as with 100 pods. `make bench` (section k8s) reports the
 * same measurement (k8s/scale.h).
 */
#define SCALE_RSS_BOUND_KIB (32 * 1024)
#define SCALE_LOOKUPS 100000

KTEST_F(api, ten_thousand_pods_bounded_memory_constant_lookups, 180)
{
	struct scale_result small = { 0 }, large = { 0 };
	struct k8s_identity id;

	self->cfg.list_page_size = 500;
	self->server = fake_start(self->port, false);
	ASSERT_LT(0, self->server);
	ASSERT_EQ(0, scale_sync_and_measure(self->port, &self->cfg,
					    (struct scale_bulk){ .pods = 100, .services = 20, .namespaces = 10 },
					    SCALE_LOOKUPS, 10000, &self->k, &small));
	EXPECT_EQ(SCALE_LOOKUPS, small.lookups_resolved);
	EXPECT_EQ(0, fake_stat(self->port, "gzip_lists")); /* 100 pods: one page under 128 KiB */
	k8s_free(self->k);
	self->k = NULL;
	fake_stop(self->server);

	self->server = fake_start(self->port, false);
	ASSERT_LT(0, self->server);
	ASSERT_EQ(0, scale_sync_and_measure(self->port, &self->cfg,
					    (struct scale_bulk){ .pods = 10000, .services = 2000, .namespaces = 100 },
					    SCALE_LOOKUPS, 120000, &self->k, &large));
	ASSERT_EQ(10000, large.pods_held);
	ASSERT_EQ(2000, large.services_held);
	/* the 20 pages of 500 pods are over 128 KiB each: they came gzipped, as from the real server */
	EXPECT_LE(20, fake_stat(self->port, "gzip_lists"));
	TH_LOG("10000 pods + 2000 services: synced in %llu ms, RSS %ld -> %ld KiB (+%ld KiB, bound %d), "
	       "lookup %.0f ns with 10000 pods vs %.0f ns with 100",
	       (unsigned long long)large.sync_ms, large.rss_kib_before, large.rss_kib_after,
	       large.rss_kib_after - large.rss_kib_before, SCALE_RSS_BOUND_KIB, large.lookup_ns,
	       small.lookup_ns);
	EXPECT_EQ(SCALE_LOOKUPS, large.lookups_resolved);
	EXPECT_GT(SCALE_RSS_BOUND_KIB, large.rss_kib_after - large.rss_kib_before);
	/* O(1): a hundredfold store costs at most 4x per lookup (caches), and under 5 us */
	EXPECT_GT(small.lookup_ns * 4 + 200, large.lookup_ns);
	EXPECT_GT(5000, large.lookup_ns);
	/* pod 4321 is app=svc-321 in bulk-21, selected by svc-321 (also in bulk-21) */
	id = peer(self->k, "10.100.16.225");
	EXPECT_STREQ("svc-321.bulk-21", id.service);
	EXPECT_STREQ("svc-321-7d4b9c8f6d-04321", id.instance);
}

KTEST_F(api, object_cap_drops_and_counts, 60)
{
	struct k8s_stats stats;

	self->cfg.max_pods = 2;
	ASSERT_EQ(0, start_both(self));
	k8s_stats_get(self->k, &stats);
	EXPECT_EQ(2, stats.pods);
	EXPECT_EQ(1, stats.objects_dropped);
}

/* ---- a real process in a kubelet-shaped cgroup ---- */

FIXTURE(proc)
{
	char root[300];           /* <cgroup2 mount>/kak-k8s-<pid>: not under kaccess-selftest */
	char container[512];      /* ...kubepods/burstable/pod<uid>/<cid> */
	pid_t child;
	int port;
	pid_t server;
	struct k8s *k;
};

FIXTURE_SETUP(proc)
{
	char mount[256];

	self->child = -1;
	self->server = -1;
	self->k = NULL;
	self->root[0] = '\0';
	if (geteuid() != 0)
		SKIP(return, "needs root (cgroups)");
	if (cgroups_v2_mount(mount, sizeof(mount)))
		SKIP(return, "no cgroup2 mount");
	snprintf(self->root, sizeof(self->root), "%s/kak-k8s-%d", mount, (int)getpid());
	snprintf(self->container, sizeof(self->container),
		 "%s/kubepods/burstable/pod" UID_FRONTEND "/" CID_B, self->root);
	ASSERT_EQ(0, run_quiet("mkdir -p %s", self->container));
}

FIXTURE_TEARDOWN(proc)
{
	if (self->child > 0) {
		kill(self->child, SIGKILL);
		waitpid(self->child, NULL, 0);
	}
	k8s_free(self->k);
	fake_stop(self->server);
	/* deepest first; bounded: the tree is five levels */
	if (self->root[0])
		run_quiet("find %s -depth -type d -exec rmdir {} \\;", self->root);
}

KTEST_F(proc, pid_and_cgroup_id_resolve_to_the_pod, 60)
{
	char procs[PATH_MAX + 16], err[K8S_ERROR_LEN];
	struct k8s_identity id;
	struct k8s_config cfg;
	unsigned int level;
	uint64_t cgroup_id;
	FILE *file;

	self->port = fake_free_port();
	self->server = fake_start(self->port, true);
	ASSERT_LT(0, self->server);
	test_config(&cfg, self->port);
	ASSERT_EQ(0, k8s_new(&cfg, &self->k, err, sizeof(err)));
	ASSERT_EQ(0, k8s_start(self->k));
	ASSERT_EQ(0, k8s_wait_synced(self->k, 10000));

	self->child = fork();
	ASSERT_LE(0, self->child);
	if (self->child == 0) {
		pause();
		_exit(0);
	}
	snprintf(procs, sizeof(procs), "%s/cgroup.procs", self->container);
	file = fopen(procs, "w");
	ASSERT_NE(NULL, file);
	fprintf(file, "%d\n", (int)self->child);
	ASSERT_EQ(0, fclose(file));

	ASSERT_EQ(0, k8s_resolve_local_pid(self->k, self->child, &id));
	EXPECT_EQ(K8S_KIND_POD, id.kind);
	EXPECT_STREQ("frontend.shop", id.service);
	EXPECT_STREQ("frontend-6d9f7c7b9d-x2x4k", id.instance);
	EXPECT_STREQ(CID_B, id.container_id);

	/* the id BPF reports: the inode of the container's cgroup directory */
	ASSERT_EQ(0, cgroups_identity(self->container, &cgroup_id, &level));
	ASSERT_EQ(0, k8s_resolve_local_id(self->k, cgroup_id, &id));
	EXPECT_EQ(K8S_KIND_POD, id.kind);
	EXPECT_STREQ("frontend.shop", id.service);
	EXPECT_STREQ(UID_FRONTEND, id.pod_uid);
	/* this test process is in no pod */
	ASSERT_EQ(0, k8s_resolve_local_pid(self->k, getpid(), &id));
	EXPECT_EQ(K8S_KIND_HOST, id.kind);
}

/*
 * Identities by cgroup id are kept between lookups (one per access log):
 * they must follow every change of the pod's services and of the pod.
 */
KTEST_F(proc, cgroup_id_identity_follows_service_and_pod_changes, 60)
{
	char err[K8S_ERROR_LEN];
	struct k8s_config cfg;
	unsigned int level;
	uint64_t cgroup_id, deleted_ms;

	self->port = fake_free_port();
	self->server = fake_start(self->port, true);
	ASSERT_LT(0, self->server);
	test_config(&cfg, self->port);
	cfg.deleted_grace_s = 1;
	ASSERT_EQ(0, k8s_new(&cfg, &self->k, err, sizeof(err)));
	ASSERT_EQ(0, k8s_start(self->k));
	ASSERT_EQ(0, k8s_wait_synced(self->k, 10000));
	ASSERT_EQ(0, cgroups_identity(self->container, &cgroup_id, &level));
	EXPECT_STREQ("frontend.shop", local_id(self->k, cgroup_id).service);
	EXPECT_STREQ("frontend.shop", local_id(self->k, cgroup_id).service);
	/* "a-frontend" sorts before "frontend": it names the pod while it exists */
	ASSERT_EQ(200, fake_control(self->port, "add_service",
			       fake_service_json("shop", "a-frontend", "\"app\": \"frontend\"", "10.96.0.99")));
	ASSERT_TRUE(WAIT_UNTIL(strcmp(local_id(self->k, cgroup_id).service, "a-frontend.shop") == 0,
			       3000));
	ASSERT_EQ(200, fake_control(self->port, "delete_service",
			       "{\"namespace\": \"shop\", \"name\": \"a-frontend\"}"));
	ASSERT_TRUE(WAIT_UNTIL(strcmp(local_id(self->k, cgroup_id).service, "frontend.shop") == 0,
			       3000));
	/* the pod itself: a new name under its UID, then deleted (resolvable for 1 s) */
	ASSERT_EQ(200, fake_control(self->port, "add_pod",
			       fake_pod_json("shop", "frontend-renamed", UID_FRONTEND, "10.244.1.12",
					"\"app\": \"frontend\"")));
	ASSERT_TRUE(WAIT_UNTIL(strcmp(local_id(self->k, cgroup_id).instance, "frontend-renamed") == 0,
			       3000));
	ASSERT_EQ(200, fake_control(self->port, "delete_pod", "{\"uid\": \"" UID_FRONTEND "\"}"));
	deleted_ms = now_ms();
	ASSERT_TRUE(WAIT_UNTIL(local_id(self->k, cgroup_id).kind == K8S_KIND_UNKNOWN, 4000));
	EXPECT_LE(500, now_ms() - deleted_ms);
}

/* ---- conntrack behind a DNAT rule ---- */

#define NS_CLIENT_FMT "kak-%d-c"
#define NS_SERVER_FMT "kak-%d-s"
#define CLIENT_IP "10.213.0.1"
#define BACKEND_IP "10.213.0.2"
#define BACKEND_PORT 8080
#define CLUSTER_IP "10.96.213.10"
#define CLUSTER_PORT 80

FIXTURE(dnat)
{
	char client_ns[32], server_ns[32];
	int home_ns_fd;
	int listen_fd, conn_fd;
	int port;
	pid_t server;
	struct k8s *k;
};

static int enter_netns(const char *name)
{
	char path[128];
	int fd, err = 0;

	snprintf(path, sizeof(path), "/var/run/netns/%s", name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET))
		err = -errno;
	close(fd);
	return err;
}

FIXTURE_SETUP(dnat)
{
	int pid = getpid();

	self->listen_fd = self->conn_fd = -1;
	self->server = -1;
	self->k = NULL;
	self->home_ns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	snprintf(self->client_ns, sizeof(self->client_ns), NS_CLIENT_FMT, pid);
	snprintf(self->server_ns, sizeof(self->server_ns), NS_SERVER_FMT, pid);
	if (geteuid() != 0)
		SKIP(return, "needs root (network namespaces, nftables)");
	if (run_quiet("command -v nft") != 0)
		SKIP(return, "nft (nftables) is not installed");
	ASSERT_EQ(0, run_quiet("ip netns add %s", self->client_ns));
	ASSERT_EQ(0, run_quiet("ip netns add %s", self->server_ns));
	ASSERT_EQ(0, run_quiet("ip -n %s link add kak-c type veth peer name kak-s netns %s",
			       self->client_ns, self->server_ns));
	ASSERT_EQ(0, run_quiet("ip -n %s addr add " CLIENT_IP "/24 dev kak-c", self->client_ns));
	ASSERT_EQ(0, run_quiet("ip -n %s addr add " BACKEND_IP "/24 dev kak-s", self->server_ns));
	ASSERT_EQ(0, run_quiet("ip -n %s link set kak-c up && ip -n %s link set lo up",
			       self->client_ns, self->client_ns));
	ASSERT_EQ(0, run_quiet("ip -n %s link set kak-s up && ip -n %s link set lo up",
			       self->server_ns, self->server_ns));
	/* The ClusterIP needs a route before output DNAT rewrites it. */
	ASSERT_EQ(0, run_quiet("ip -n %s route add 10.96.0.0/16 dev kak-c", self->client_ns));
	ASSERT_EQ(0, run_quiet("ip netns exec %s nft 'add table ip kak_nat; "
			       "add chain ip kak_nat out { type nat hook output priority -100; }; "
			       "add rule ip kak_nat out ip daddr " CLUSTER_IP " tcp dport %d "
			       "dnat to " BACKEND_IP ":%d'",
			       self->client_ns, CLUSTER_PORT, BACKEND_PORT));
}

FIXTURE_TEARDOWN(dnat)
{
	if (self->home_ns_fd >= 0) {
		setns(self->home_ns_fd, CLONE_NEWNET);
		close(self->home_ns_fd);
	}
	if (self->conn_fd >= 0)
		close(self->conn_fd);
	if (self->listen_fd >= 0)
		close(self->listen_fd);
	k8s_free(self->k);
	fake_stop(self->server);
	run_quiet("ip netns del %s", self->client_ns);
	run_quiet("ip netns del %s", self->server_ns);
}

KTEST_F(dnat, conntrack_names_the_backend_of_a_cluster_ip, 60)
{
	struct sockaddr_in backend = { .sin_family = AF_INET, .sin_port = htons(BACKEND_PORT) };
	struct sockaddr_in cluster = { .sin_family = AF_INET, .sin_port = htons(CLUSTER_PORT) };
	struct sockaddr_in local;
	socklen_t len = sizeof(local);
	struct k8s_tuple tuple = { .peer_port = CLUSTER_PORT };
	struct k8s_config cfg;
	struct k8s_identity id;
	char err[K8S_ERROR_LEN];
	uint8_t got_addr[16], want_addr[16];
	uint16_t got_port = 0;
	struct k8s_stats stats;

	/* the identity of the addresses, from the fake API (in the test's own netns) */
	self->port = fake_free_port();
	self->server = fake_start(self->port, true);
	ASSERT_LT(0, self->server);
	ASSERT_EQ(200, fake_control(self->port, "add_pod",
			       fake_pod_json("shop", "backend-0", "30000000-0000-4000-8000-000000000001",
					BACKEND_IP, "\"app\": \"backend\"")));
	ASSERT_EQ(200, fake_control(self->port, "add_service",
			       fake_service_json("shop", "backend", "\"app\": \"backend\"", CLUSTER_IP)));
	test_config(&cfg, self->port);
	ASSERT_EQ(0, k8s_new(&cfg, &self->k, err, sizeof(err)));
	ASSERT_EQ(0, k8s_start(self->k));
	ASSERT_EQ(0, k8s_wait_synced(self->k, 10000));
	ASSERT_TRUE(WAIT_UNTIL(peer(self->k, CLUSTER_IP).kind == K8S_KIND_SERVICE, 3000));

	/* setns moves this thread only: the watcher threads stay where they are */
	ASSERT_EQ(0, enter_netns(self->server_ns));
	self->listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	inet_pton(AF_INET, BACKEND_IP, &backend.sin_addr);
	ASSERT_EQ(0, bind(self->listen_fd, (struct sockaddr *)&backend, sizeof(backend)));
	ASSERT_EQ(0, listen(self->listen_fd, 4));
	ASSERT_EQ(0, enter_netns(self->client_ns));
	self->conn_fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	inet_pton(AF_INET, CLUSTER_IP, &cluster.sin_addr);
	ASSERT_EQ(0, connect(self->conn_fd, (struct sockaddr *)&cluster, sizeof(cluster)))
		TH_LOG("connect: %s", strerror(errno));
	ASSERT_EQ(0, getsockname(self->conn_fd, (struct sockaddr *)&local, &len));

	addr_of(CLIENT_IP, tuple.local_addr);
	tuple.local_port = ntohs(local.sin_port);
	addr_of(CLUSTER_IP, tuple.peer_addr);
	ASSERT_EQ(0, k8s_conntrack_backend(&tuple, got_addr, &got_port));
	addr_of(BACKEND_IP, want_addr);
	EXPECT_EQ(0, memcmp(got_addr, want_addr, 16));
	EXPECT_EQ(BACKEND_PORT, got_port);

	/* the peer as the drain sees it: ClusterIP + the connection -> the backend pod */
	ASSERT_EQ(0, k8s_resolve_peer(self->k, tuple.peer_addr, CLUSTER_PORT, &tuple, &id));
	EXPECT_EQ(K8S_KIND_POD, id.kind);
	EXPECT_STREQ("backend.shop", id.service);
	EXPECT_STREQ("backend-0", id.instance);
	/* without the connection (or another port): only the service */
	ASSERT_EQ(0, k8s_resolve_peer(self->k, tuple.peer_addr, CLUSTER_PORT, NULL, &id));
	EXPECT_EQ(K8S_KIND_SERVICE, id.kind);
	EXPECT_STREQ("backend.shop", id.service);
	tuple.local_port++;
	EXPECT_EQ(-ENOENT, k8s_conntrack_backend(&tuple, got_addr, &got_port));
	ASSERT_EQ(0, k8s_resolve_peer(self->k, tuple.peer_addr, CLUSTER_PORT, &tuple, &id));
	EXPECT_EQ(K8S_KIND_SERVICE, id.kind);
	k8s_stats_get(self->k, &stats);
	EXPECT_EQ(1, stats.conntrack_hits);
	EXPECT_EQ(1, stats.conntrack_misses);
}

TEST_HARNESS_MAIN
