// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Lifecycle, names and the resolvers the drain calls. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>


#include "clock.h"
#include "cgroups.h"
#include "k8s_internal.h"
#include "log.h"

const char *k8s_kind_name(enum k8s_kind kind)
{
	switch (kind) {
	case K8S_KIND_POD:
		return "pod";
	case K8S_KIND_SERVICE:
		return "service";
	case K8S_KIND_HOST:
		return "host";
	case K8S_KIND_LOOPBACK:
		return "loopback";
	default:
		return "unknown";
	}
}

/* Copy, cut to fit: names longer than OAP keeps are cut, not refused. */
static void copy_cut(char *out, size_t len, const char *in)
{
	size_t in_len = strlen(in);

	if (in_len >= len)
		in_len = len - 1;
	memcpy(out, in, in_len);
	out[in_len] = '\0';
}

void k8s_set_error(struct k8s *k, const char *fmt, ...)
{
	va_list args;

	va_start(args, fmt);
	vsnprintf(k->stats.last_error, sizeof(k->stats.last_error), fmt, args);
	va_end(args);
}

/* ",a,b," so that a namespace test is one strstr of ",ns,". */
static void list_for_search(const char *list, char *out, size_t len)
{
	if (list[0])
		snprintf(out, len, ",%s,", list);
	else
		out[0] = '\0';
}

static bool list_has(const char *search_list, const char *name)
{
	char needle[80];

	if (!search_list[0])
		return false;
	snprintf(needle, sizeof(needle), ",%s,", name);
	return strstr(search_list, needle) != NULL;
}

static bool namespace_excluded(const struct k8s *k, const char *namespace_)
{
	if (k->include[0] && !list_has(k->include, namespace_))
		return true;
	return list_has(k->exclude, namespace_);
}

static int server_from_environment(struct k8s *k, char *err, size_t err_len)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");
	const char *port = getenv("KUBERNETES_SERVICE_PORT");

	if (!host || !host[0])
		return -ENODEV;
	if (!port || !port[0])
		port = "443";
	/* An IPv6 service host needs brackets in a URL. */
	snprintf(k->server, sizeof(k->server), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
		 host, port);
	return 0;
}

/* Service account files, when present: in-cluster, or an https server given directly. */
static void use_service_account(struct k8s *k)
{
	char path[sizeof(k->token_path)];

	snprintf(path, sizeof(path), "%s/token", k->cfg.service_account_dir);
	if (access(path, R_OK) == 0)
		snprintf(k->token_path, sizeof(k->token_path), "%s", path);
	snprintf(path, sizeof(path), "%s/ca.crt", k->cfg.service_account_dir);
	if (access(path, R_OK) == 0)
		snprintf(k->ca_path, sizeof(k->ca_path), "%s", path);
}

static int resolve_server(struct k8s *k, char *err, size_t err_len)
{
	int ret;

	if (k->cfg.kubeconfig[0]) {
		ret = k8s_kubeconfig_load(k->cfg.kubeconfig, &k->kubeconfig, err, err_len);
		if (ret)
			return ret;
		snprintf(k->server, sizeof(k->server), "%s", k->kubeconfig.server);
	}
	if (k->cfg.api_server[0])
		snprintf(k->server, sizeof(k->server), "%s", k->cfg.api_server);
	if (!k->server[0]) {
		ret = server_from_environment(k, err, err_len);
		if (ret) {
			snprintf(err, err_len, "no Kubernetes API server: set k8s_api_server or "
					       "k8s_kubeconfig, or run in a pod (KUBERNETES_SERVICE_HOST)");
			return k->cfg.enabled == K8S_ENABLED_TRUE ? -EINVAL : -ENODEV;
		}
	}
	ret = k8s_http_server_parse(k->server, &k->http_server, err, err_len);
	if (ret)
		return ret;
	if (!k->cfg.kubeconfig[0] && k->http_server.tls)
		use_service_account(k);
	return 0;
}

/* The lock, the condition that wakes backoff sleeps, and the descriptor that ends requests. */
static int k8s_init_locks(struct k8s *k)
{
	pthread_condattr_t attr;

	k->stop_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (k->stop_fd < 0)
		return -errno;
	pthread_mutex_init(&k->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&k->wake, &attr);
	pthread_condattr_destroy(&attr);
	return 0;
}

int k8s_new(const struct k8s_config *cfg, struct k8s **ret_k8s, char *err, size_t err_len)
{
	struct k8s *k;
	int ret;

	if (cfg->enabled == K8S_ENABLED_FALSE) {
		snprintf(err, err_len, "Kubernetes identity disabled (k8s_enabled = false)");
		return -ENODEV;
	}
	if (cfg->backoff_min_ms > cfg->backoff_max_ms) {
		snprintf(err, err_len, "k8s_backoff_min_ms (%u) is above k8s_backoff_max_ms (%u)",
			 cfg->backoff_min_ms, cfg->backoff_max_ms);
		return -EINVAL;
	}
	k = calloc(1, sizeof(*k));
	if (!k)
		return -ENOMEM;
	k->cfg = *cfg;
	if (!k->cfg.node_name[0] && getenv("NODE_NAME"))
		snprintf(k->cfg.node_name, sizeof(k->cfg.node_name), "%s", getenv("NODE_NAME"));
	list_for_search(cfg->exclude_namespaces, k->exclude, sizeof(k->exclude));
	list_for_search(cfg->include_namespaces, k->include, sizeof(k->include));
	ret = resolve_server(k, err, err_len);
	if (!ret && (ret = k8s_init_locks(k)))
		snprintf(err, err_len, "kubernetes: no eventfd: %s", strerror(-ret));
	if (ret) {
		k8s_kubeconfig_clear(&k->kubeconfig);
		free(k);
		return ret;
	}
	k8s_store_init(&k->store, cfg->max_pods, cfg->max_services, cfg->deleted_grace_s);
	k->unresolved_since_ms = clock_monotonic_ms();
	for (int i = 0; i < K8S_RESOURCE_COUNT; i++) {
		k->watchers[i].k = k;
		k->watchers[i].resource = i;
	}
	*ret_k8s = k;
	return 0;
}

int k8s_start(struct k8s *k)
{
	for (int i = 0; i < K8S_RESOURCE_COUNT; i++) {
		struct k8s_watcher *watcher = &k->watchers[i];
		int ret;

		if (watcher->thread_started)
			continue;
		ret = -pthread_create(&watcher->thread, NULL, k8s_watcher_main, watcher);
		if (ret) {
			k8s_stop(k);
			return ret;
		}
		watcher->thread_started = true;
	}
	log_info("kubernetes: watching pods and services at %s", k->server);
	return 0;
}

void k8s_stop(struct k8s *k)
{
	if (!k)
		return;
	pthread_mutex_lock(&k->lock);
	__atomic_store_n(&k->stopping, true, __ATOMIC_RELAXED);
	pthread_cond_broadcast(&k->wake);
	pthread_mutex_unlock(&k->lock);
	/* a request in progress waits on this too */
	if (eventfd_write(k->stop_fd, 1))
		log_warn("kubernetes: cannot interrupt requests: %s", strerror(errno));
	for (int i = 0; i < K8S_RESOURCE_COUNT; i++)
		if (k->watchers[i].thread_started) {
			pthread_join(k->watchers[i].thread, NULL);
			k->watchers[i].thread_started = false;
		}
}

void k8s_free(struct k8s *k)
{
	if (!k)
		return;
	k8s_stop(k);
	k8s_store_fini(&k->store);
	k8s_kubeconfig_clear(&k->kubeconfig);
	cgroup_names_free(k->cgroup_names);
	free(k->local_cache);
	free(k->peer_cache);
	pthread_mutex_destroy(&k->lock);
	pthread_cond_destroy(&k->wake);
	close(k->stop_fd);
	free(k);
}

/* Caller holds k->lock. */
static bool watchers_synced(const struct k8s *k)
{
	for (int i = 0; i < K8S_RESOURCE_COUNT; i++)
		if (!k->watchers[i].synced)
			return false;
	return true;
}

void k8s_stats_get(struct k8s *k, struct k8s_stats *ret_stats)
{
	pthread_mutex_lock(&k->lock);
	*ret_stats = k->stats;
	ret_stats->synced = watchers_synced(k);
	k8s_store_expire(&k->store, clock_monotonic_ms());
	ret_stats->pods = k->store.pods_by_uid.count;
	ret_stats->pods_deleted = k->store.retired_count;
	ret_stats->services = k->store.services_by_key.count;
	ret_stats->objects_dropped = k->store.dropped;
	pthread_mutex_unlock(&k->lock);
}

/*
 * The counters alone do not tell someone reading the log that rows went
 * unnamed, nor why; one line a minute does, without a line per lookup.
 */
int k8s_log_unresolved(struct k8s *k)
{
	uint64_t now_ms = clock_monotonic_ms(), local, peer, seconds;
	char last_error[K8S_ERROR_LEN];
	bool synced;

	pthread_mutex_lock(&k->lock);
	local = k->stats.unresolved_local - k->unresolved_told_local;
	peer = k->stats.unresolved_peer - k->unresolved_told_peer;
	if ((!local && !peer) ||
	    (k->unresolved_told_ms && now_ms - k->unresolved_told_ms < K8S_UNRESOLVED_LOG_INTERVAL_MS)) {
		pthread_mutex_unlock(&k->lock);
		return 0;
	}
	synced = watchers_synced(k);
	snprintf(last_error, sizeof(last_error), "%s", k->stats.last_error);
	seconds = (now_ms - k->unresolved_since_ms) / 1000;
	k->unresolved_told_local = k->stats.unresolved_local;
	k->unresolved_told_peer = k->stats.unresolved_peer;
	k->unresolved_told_ms = k->unresolved_since_ms = now_ms;
	pthread_mutex_unlock(&k->lock);
	if (synced)
		log_info("kubernetes: %llu local and %llu peer lookups found no name in the last %llu s",
			 (unsigned long long)local, (unsigned long long)peer, (unsigned long long)seconds);
	else
		log_warn("kubernetes: %llu local and %llu peer lookups found no name in the last %llu s: "
			 "the API is not synced (%s)",
			 (unsigned long long)local, (unsigned long long)peer, (unsigned long long)seconds,
			 last_error[0] ? last_error : "no answer yet");
	return 1;
}

int k8s_wait_synced(struct k8s *k, unsigned int timeout_ms)
{
	for (unsigned int waited_ms = 0;; waited_ms += 10) {
		struct k8s_stats stats;

		k8s_stats_get(k, &stats);
		if (stats.synced)
			return 0;
		if (waited_ms >= timeout_ms)
			return -ETIMEDOUT;
		usleep(10000);
	}
}

/* ---- names ---- */

/* OAP's service name, "<cluster>::<service>.<namespace>", cut at 70 characters. */
static void service_name(const struct k8s *k, const char *service, const char *namespace_,
			 char out[K8S_NAME_MAX_CHARS + 1])
{
	char full[512];

	if (k->cfg.cluster_name[0])
		snprintf(full, sizeof(full), "%s::%s.%s", k->cfg.cluster_name, service, namespace_);
	else
		snprintf(full, sizeof(full), "%s.%s", service, namespace_);
	copy_cut(out, K8S_NAME_MAX_CHARS + 1, full);
}

static const char *pod_label(const struct k8s_pod *pod, const char *key)
{
	for (unsigned int i = 0; i < pod->label_count; i++)
		if (strcmp(pod->labels[i].key, key) == 0)
			return pod->labels[i].value;
	return NULL;
}

/* The characters Kubernetes uses for generated name suffixes (no vowels, no 0 1 3). */
static bool is_generated_suffix(const char *text, size_t len)
{
	if (len != 5)
		return false;
	for (size_t i = 0; i < len; i++)
		if (!strchr("bcdfghjklmnpqrstvwxz2456789", text[i]))
			return false;
	return true;
}

/*
 * A pod name without what its controller generated: "-<pod-template-hash>-<x5>"
 * (Deployment), "-<ordinal>" (StatefulSet), "-<x5>" (DaemonSet, Job, bare
 * ReplicaSet). Any other name is kept whole.
 */
static void strip_generated_suffix(const struct k8s_pod *pod, char *out, size_t len)
{
	const char *hash = pod_label(pod, "pod-template-hash");
	char *dash;

	snprintf(out, len, "%s", pod->name);
	if (hash && hash[0]) {
		char needle[96];
		char *found;

		snprintf(needle, sizeof(needle), "-%s-", hash);
		found = strstr(out, needle);
		if (found && is_generated_suffix(found + strlen(needle),
						 strlen(found + strlen(needle)))) {
			*found = '\0';
			return;
		}
	}
	dash = strrchr(out, '-');
	if (!dash || dash == out)
		return;
	if (pod_label(pod, "statefulset.kubernetes.io/pod-name")) {
		if (dash[1] && strspn(dash + 1, "0123456789") == strlen(dash + 1))
			*dash = '\0';
		return;
	}
	if (is_generated_suffix(dash + 1, strlen(dash + 1)))
		*dash = '\0';
}

static void unselected_service(const struct k8s *k, const struct k8s_pod *pod, char *out,
			       size_t len)
{
	const char *label;

	switch (k->cfg.unselected_pod_rule) {
	case K8S_UNSELECTED_POD:
		snprintf(out, len, "%s", pod->name);
		return;
	case K8S_UNSELECTED_UNKNOWN:
		out[0] = '\0';
		return;
	case K8S_UNSELECTED_OWNER:
		label = pod_label(pod, "app.kubernetes.io/name");
		if (!label || !label[0])
			label = pod_label(pod, "app");
		if (label && label[0])
			snprintf(out, len, "%s", label);
		else
			strip_generated_suffix(pod, out, len);
		return;
	}
}

static void pod_identity(struct k8s *k, struct k8s_pod *pod, struct k8s_identity *ret)
{
	const char *selected = k8s_store_pod_service(&k->store, pod);
	char service[K8S_MAX_NAME_BYTES + 1];

	ret->kind = K8S_KIND_POD;
	copy_cut(ret->instance, sizeof(ret->instance), pod->name);
	copy_cut(ret->namespace_, sizeof(ret->namespace_), pod->namespace_);
	copy_cut(ret->node, sizeof(ret->node), pod->node);
	copy_cut(ret->pod_uid, sizeof(ret->pod_uid), pod->uid);
	ret->excluded = namespace_excluded(k, pod->namespace_);
	if (selected[0])
		snprintf(service, sizeof(service), "%s", selected);
	else
		unselected_service(k, pod, service, sizeof(service));
	if (service[0])
		service_name(k, service, pod->namespace_, ret->service);
	else
		copy_cut(ret->service, sizeof(ret->service), K8S_UNKNOWN_NAME);
}

static void identity_init(struct k8s_identity *ret, enum k8s_kind kind)
{
	memset(ret, 0, sizeof(*ret));
	ret->kind = kind;
	copy_cut(ret->service, sizeof(ret->service), K8S_UNKNOWN_NAME);
}

/* ---- local ---- */

/* "0::/path" lines (the text of /proc/<pid>/cgroup) start with a hierarchy id. */
static bool is_proc_cgroup_text(const char *text)
{
	size_t digits = strspn(text, "0123456789");

	return digits > 0 && text[digits] == ':';
}

int k8s_resolve_local_path(struct k8s *k, const char *cgroup_path, struct k8s_identity *ret)
{
	struct k8s_cgroup_ids ids;
	struct k8s_pod *pod;
	int err;

	identity_init(ret, K8S_KIND_HOST);
	err = is_proc_cgroup_text(cgroup_path) ? k8s_parse_proc_cgroup(cgroup_path, &ids)
					       : k8s_parse_cgroup_path(cgroup_path, &ids);
	if (err) {
		/* a process outside any pod: the node itself */
		copy_cut(ret->node, sizeof(ret->node), k->cfg.node_name);
		return 0;
	}
	copy_cut(ret->pod_uid, sizeof(ret->pod_uid), ids.pod_uid);
	copy_cut(ret->container_id, sizeof(ret->container_id), ids.container_id);
	pthread_mutex_lock(&k->lock);
	k8s_store_expire(&k->store, clock_monotonic_ms());
	pod = k8s_store_pod_by_uid(&k->store, ids.pod_uid);
	if (pod) {
		pod_identity(k, pod, ret);
	} else {
		ret->kind = K8S_KIND_UNKNOWN;
		k->stats.unresolved_local++;
	}
	pthread_mutex_unlock(&k->lock);
	return 0;
}

static uint64_t store_generation(struct k8s *k)
{
	uint64_t generation;

	pthread_mutex_lock(&k->lock);
	/* a deleted pod whose grace ended must not go on resolving from the cache */
	if (k->store.retired_head)
		k8s_store_expire(&k->store, clock_monotonic_ms());
	generation = k->store.pods_generation + k->store.services_generation;
	pthread_mutex_unlock(&k->lock);
	return generation;
}

void k8s_set_name_cache(struct k8s *k, bool enabled)
{
	k->name_cache_off = !enabled;
}

/*
 * The slot of `key` in a direct-mapped name cache of `slot_count` slots
 * (allocated at first use), or NULL when the cache is off or has no memory.
 */
static struct k8s_name_cache_slot *name_cache_slot(struct k8s *k, struct k8s_name_cache_slot **cache,
						   size_t slot_count, const void *key, size_t key_len)
{
	if (k->name_cache_off)
		return NULL;
	if (!*cache)
		*cache = calloc(slot_count, sizeof(**cache));
	if (!*cache)
		return NULL; /* no cache: every lookup resolves */
	return &(*cache)[k8s_hash_bytes(key, key_len) % slot_count];
}

/* The slot's identity when it holds `key` as of `generation`. */
static bool name_cache_get(const struct k8s_name_cache_slot *slot, const void *key, size_t key_len,
			   uint64_t generation, struct k8s_identity *ret)
{
	if (!slot || !slot->used || slot->generation != generation ||
	    memcmp(slot->key, key, key_len) != 0)
		return false;
	*ret = slot->identity;
	return true;
}

/*
 * Keep what a lookup resolved, stamped with the generation read before it
 * resolved: a change meanwhile misses next time. UNKNOWN is not kept (each
 * such lookup counts as unresolved, and the object may come).
 */
static void name_cache_put(struct k8s_name_cache_slot *slot, const void *key, size_t key_len,
			   uint64_t generation, const struct k8s_identity *identity)
{
	if (!slot || identity->kind == K8S_KIND_UNKNOWN)
		return;
	memset(slot->key, 0, sizeof(slot->key));
	memcpy(slot->key, key, key_len);
	slot->used = true;
	slot->generation = generation;
	slot->identity = *identity;
}

/*
 * A local identity resolved from its cgroup id: the path walk, the pod and
 * service lookups and the name building, done once per cgroup and store
 * change instead of once per access log. Pods not in the store yet are not
 * kept (each lookup counts in unresolved_local, and the pod may come).
 */
int k8s_resolve_local_id(struct k8s *k, uint64_t cgroup_id, struct k8s_identity *ret)
{
	uint64_t generation = store_generation(k);
	struct k8s_name_cache_slot *slot = name_cache_slot(k, &k->local_cache, K8S_LOCAL_CACHE_SLOTS,
							   &cgroup_id, sizeof(cgroup_id));
	const char *path;
	int err;

	if (name_cache_get(slot, &cgroup_id, sizeof(cgroup_id), generation, ret))
		return 0;
	identity_init(ret, K8S_KIND_HOST);
	if (!k->cgroup_names) {
		err = cgroup_names_new(&k->cgroup_names);
		if (err)
			return err;
	}
	path = cgroup_names_lookup(k->cgroup_names, cgroup_id);
	if (!path)
		return -ENOENT;
	err = k8s_resolve_local_path(k, path, ret);
	if (!err)
		name_cache_put(slot, &cgroup_id, sizeof(cgroup_id), generation, ret);
	return err;
}

int k8s_resolve_local_pid(struct k8s *k, pid_t pid, struct k8s_identity *ret)
{
	char path[64], text[8192];
	ssize_t len;
	int fd, err = 0;

	identity_init(ret, K8S_KIND_HOST);
	snprintf(path, sizeof(path), "/proc/%d/cgroup", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	len = read(fd, text, sizeof(text) - 1);
	if (len < 0)
		err = -errno;
	close(fd);
	if (err)
		return err;
	text[len] = '\0';
	if (!is_proc_cgroup_text(text))
		return -EINVAL;
	return k8s_resolve_local_path(k, text, ret);
}

/* ---- peers ---- */

static bool is_loopback(const uint8_t addr[16])
{
	static const uint8_t v4_mapped[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };
	static const uint8_t v6_loopback[16] = { [15] = 1 };

	if (memcmp(addr, v4_mapped, 12) == 0)
		return addr[12] == 127;
	return memcmp(addr, v6_loopback, 16) == 0;
}

static void service_identity(struct k8s *k, const struct k8s_service *service,
			     struct k8s_identity *ret)
{
	ret->kind = K8S_KIND_SERVICE;
	service_name(k, service->name, service->namespace_, ret->service);
	copy_cut(ret->namespace_, sizeof(ret->namespace_), service->namespace_);
	ret->excluded = namespace_excluded(k, service->namespace_);
}

/* The pod behind a ClusterIP, by conntrack; false when it is not known. */
static bool resolve_backend(struct k8s *k, const struct k8s_tuple *tuple, struct k8s_identity *ret)
{
	uint8_t backend[16];
	uint16_t backend_port;
	struct k8s_pod *pod;
	bool found = false;
	int err;

	/* One netlink socket per lookup, in the caller's network namespace. */
	err = k8s_conntrack_backend(tuple, backend, &backend_port);
	pthread_mutex_lock(&k->lock);
	if (!err) {
		pod = k8s_store_pod_by_ip(&k->store, backend);
		if (pod) {
			pod_identity(k, pod, ret);
			found = true;
		}
	}
	if (found)
		k->stats.conntrack_hits++;
	else
		k->stats.conntrack_misses++;
	pthread_mutex_unlock(&k->lock);
	return found;
}

/* A peer's cache key: its address, then its port. */
static size_t peer_name_key(const uint8_t addr[16], uint16_t port, uint8_t ret_key[K8S_NAME_KEY_MAX])
{
	memcpy(ret_key, addr, 16);
	memcpy(ret_key + 16, &port, sizeof(port));
	return 16 + sizeof(port);
}

static int resolve_peer_uncached(struct k8s *k, const uint8_t addr[16], uint16_t port,
				 const struct k8s_tuple *tuple, struct k8s_identity *ret);

/*
 * A peer resolved by address and port alone (no conntrack tuple) is kept
 * like a local identity (see k8s_resolve_local_id): every access log asks.
 */
int k8s_resolve_peer(struct k8s *k, const uint8_t addr[16], uint16_t port,
		     const struct k8s_tuple *tuple, struct k8s_identity *ret)
{
	struct k8s_name_cache_slot *slot;
	uint8_t key[K8S_NAME_KEY_MAX];
	uint64_t generation;
	size_t key_len;
	int err;

	if (tuple)
		return resolve_peer_uncached(k, addr, port, tuple, ret);
	generation = store_generation(k);
	key_len = peer_name_key(addr, port, key);
	slot = name_cache_slot(k, &k->peer_cache, K8S_PEER_CACHE_SLOTS, key, key_len);
	if (name_cache_get(slot, key, key_len, generation, ret))
		return 0;
	err = resolve_peer_uncached(k, addr, port, NULL, ret);
	if (!err)
		name_cache_put(slot, key, key_len, generation, ret);
	return err;
}

static int resolve_peer_uncached(struct k8s *k, const uint8_t addr[16], uint16_t port,
				 const struct k8s_tuple *tuple, struct k8s_identity *ret)
{
	struct k8s_service *service;
	struct k8s_node_addr *node;
	struct k8s_pod *pod;
	bool ask_conntrack;

	identity_init(ret, K8S_KIND_UNKNOWN);
	if (is_loopback(addr)) {
		ret->kind = K8S_KIND_LOOPBACK;
		return 0;
	}
	pthread_mutex_lock(&k->lock);
	k8s_store_expire(&k->store, clock_monotonic_ms());
	service = k8s_store_service_by_ip(&k->store, addr, port);
	ask_conntrack = service && tuple && k->cfg.conntrack && memcmp(tuple->peer_addr, addr, 16) == 0;
	if (service)
		service_identity(k, service, ret);
	pthread_mutex_unlock(&k->lock);
	/* The service's name stays in *ret when conntrack does not know the backend. */
	if (ask_conntrack && resolve_backend(k, tuple, ret))
		return 0;
	if (service)
		return 0;
	pthread_mutex_lock(&k->lock);
	pod = k8s_store_pod_by_ip(&k->store, addr);
	node = pod ? NULL : k8s_store_node_addr(&k->store, addr);
	if (pod) {
		pod_identity(k, pod, ret);
	} else if (node) {
		ret->kind = K8S_KIND_HOST;
		copy_cut(ret->node, sizeof(ret->node), node->node);
	} else {
		k->stats.unresolved_peer++;
	}
	pthread_mutex_unlock(&k->lock);
	return 0;
}
