/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Kubernetes identity: turns the kernel's keys (local cgroup, peer address)
 * into the names OAP uses (service "<service>.<namespace>", instance = pod).
 *
 * A watcher thread lists then watches pods (cluster-wide: peers can be on any
 * node) and services, keeping only the fields kaccess needs in hash tables
 * under one mutex; the resolve functions are hash lookups under that mutex
 * and copy the names out, so callers never hold pointers into the store.
 *
 * Rules (see also shipper/k8s/README.md):
 * - pod -> service: among the services of the pod's namespace whose
 *   non-empty selector is a subset of the pod's labels, the lexicographically
 *   first service name. No service selects the pod: k8s_unselected_pod_rule.
 * - names: "<cluster>::<service>.<namespace>" (prefix only with
 *   k8s_cluster_name), cut at OAP's 70 characters; instance = pod name, cut
 *   at 70. A peer nothing resolves is the single entity "Unknown".
 * - peer address: a service ClusterIP/LoadBalancer IP first (kind SERVICE, no
 *   instance, as OAP does) unless conntrack names the DNAT backend; then a pod
 *   IP of a non-hostNetwork pod (kind POD); then a node address, i.e. a
 *   hostIP of any pod or an IP of a hostNetwork pod (kind HOST, named
 *   "Unknown" because no single pod owns it); 127/8 and ::1 are LOOPBACK
 *   (the local pod itself: use the local identity); else UNKNOWN.
 */
#ifndef KACCESS_K8S_H
#define KACCESS_K8S_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* OAP cuts service and instance names at 70 characters. */
#define K8S_NAME_MAX_CHARS 70
#define K8S_UNKNOWN_NAME "Unknown"
#define K8S_CONFIG_PATH_LEN 512
#define K8S_CONFIG_LIST_LEN 1024
#define K8S_ERROR_LEN 256
/* A container id is 64 hex characters. */
#define K8S_CONTAINER_ID_LEN 65
/* 36 characters, or 32 for a static pod's config hash. */
#define K8S_POD_UID_LEN 40

enum k8s_enabled {
	K8S_ENABLED_AUTO, /* on when a server, a kubeconfig or the in-cluster env is set */
	K8S_ENABLED_TRUE,
	K8S_ENABLED_FALSE,
};

/* How a pod that no service selects is named. */
enum k8s_unselected_rule {
	/* app.kubernetes.io/name label, else app, else pod name minus generated suffix */
	K8S_UNSELECTED_OWNER,
	K8S_UNSELECTED_POD,     /* the pod name */
	K8S_UNSELECTED_UNKNOWN, /* service "Unknown", instance still the pod */
};

struct k8s_config {
	enum k8s_enabled enabled;
	/* "https://host:port" or "http://host:port" (tests); empty: kubeconfig or in-cluster */
	char api_server[K8S_CONFIG_PATH_LEN];
	char kubeconfig[K8S_CONFIG_PATH_LEN];
	/* service account directory (token, ca.crt) for in-cluster use */
	char service_account_dir[K8S_CONFIG_PATH_LEN];
	char node_name[256];    /* this node; empty: $NODE_NAME, else unused */
	char cluster_name[64];  /* "<cluster>::" prefix of service names; empty: none */
	char exclude_namespaces[K8S_CONFIG_LIST_LEN]; /* comma-separated */
	char include_namespaces[K8S_CONFIG_LIST_LEN]; /* comma-separated; empty: all */
	enum k8s_unselected_rule unselected_pod_rule;
	unsigned int max_pods;          /* objects kept; more are counted as dropped */
	unsigned int max_services;
	/*
	 * A deleted pod still resolves this long: the drain names the minute
	 * that just ended, when a short-lived pod may already be gone.
	 */
	unsigned int deleted_grace_s;
	unsigned int list_page_size;    /* items per list page (limit=) */
	unsigned int watch_timeout_s;   /* server-side timeoutSeconds of a watch */
	unsigned int idle_timeout_s;    /* no byte for this long: the connection is dead */
	unsigned int backoff_min_ms;    /* first retry delay; doubles per failure */
	unsigned int backoff_max_ms;
	bool conntrack;                 /* ask conntrack for the DNAT backend of ClusterIPs */
};

/* Defaults: see k8s_config.c (each documented in shipper/k8s/README.md). */
void k8s_config_set_defaults(struct k8s_config *cfg);

/*
 * Set one "k8s_*" key from the config file. 0; -ENOENT for a key that is not
 * ours (err names it); -EINVAL/-ERANGE for a bad value (err names key, value
 * and what is allowed). The old value is kept on error.
 */
int k8s_config_set(struct k8s_config *cfg, const char *key, const char *value, char *err,
		   size_t err_len);

enum k8s_kind {
	K8S_KIND_UNKNOWN,  /* nothing known: service "Unknown" */
	K8S_KIND_POD,      /* a pod, its service by selector (or the unselected rule) */
	K8S_KIND_SERVICE,  /* a ClusterIP/LoadBalancer IP whose backend is not known */
	K8S_KIND_HOST,     /* a node address, or a local process outside any pod */
	K8S_KIND_LOOPBACK, /* 127.0.0.0/8 or ::1: the local pod itself */
};

const char *k8s_kind_name(enum k8s_kind kind);

struct k8s_identity {
	enum k8s_kind kind;
	bool excluded;               /* its namespace is excluded by the namespace policy */
	char service[K8S_NAME_MAX_CHARS + 1];   /* OAP service name, "Unknown" when none */
	char instance[K8S_NAME_MAX_CHARS + 1];  /* pod name; empty when no pod */
	char namespace_[64];
	char node[256];              /* the pod's node, or the node of a host address */
	char pod_uid[K8S_POD_UID_LEN];
	char container_id[K8S_CONTAINER_ID_LEN];
};

/* What a cgroup path says about its pod, without the API. */
enum k8s_runtime {
	K8S_RUNTIME_NONE, /* a pod-level cgroup: no container */
	K8S_RUNTIME_PLAIN, /* cgroupfs driver: the bare 64-hex id */
	K8S_RUNTIME_CONTAINERD,
	K8S_RUNTIME_CRIO,
	K8S_RUNTIME_DOCKER,
};

struct k8s_cgroup_ids {
	char pod_uid[K8S_POD_UID_LEN]; /* with dashes, as metadata.uid */
	char container_id[K8S_CONTAINER_ID_LEN]; /* empty for a pod-level cgroup */
	enum k8s_runtime runtime;
};

/*
 * Pod UID and container id from a cgroup path (v2 relative to the mount, or
 * any prefix: nested hierarchies, cgroup namespaces). -ENOENT when the path
 * is no kubelet pod cgroup.
 */
int k8s_parse_cgroup_path(const char *path, struct k8s_cgroup_ids *ret_ids);

/* The same from the text of /proc/<pid>/cgroup (v2 "0::" line first, then v1). */
int k8s_parse_proc_cgroup(const char *text, struct k8s_cgroup_ids *ret_ids);

/* What a kubeconfig file says about the current context. */
struct k8s_kubeconfig {
	char server[K8S_CONFIG_PATH_LEN];
	bool insecure;
	char *ca_pem;          /* certificate-authority(-data), PEM text; malloc'd */
	char *client_cert_pem; /* client-certificate(-data) */
	char *client_key_pem;  /* client-key(-data) */
	char *token;           /* token, or the contents of tokenFile */
};

/* Parse a kubeconfig (YAML or JSON): its current-context's cluster and user. */
int k8s_kubeconfig_load(const char *path, struct k8s_kubeconfig *ret_config, char *err,
			size_t err_len);
void k8s_kubeconfig_clear(struct k8s_kubeconfig *config);

struct k8s;

/* Validate the config; nothing starts yet. -EINVAL with err for bad combinations. */
int k8s_new(const struct k8s_config *cfg, struct k8s **ret_k8s, char *err, size_t err_len);
/* Start the watcher thread. It never gives up: failures are retried with backoff. */
int k8s_start(struct k8s *k);
/* Stop and join the thread (in-flight requests are aborted). NULL-safe, idempotent. */
void k8s_stop(struct k8s *k);
void k8s_free(struct k8s *k);

/*
 * Identity of a local cgroup. The path form takes a cgroup v2 path (relative
 * to the mount) or a full /proc/<pid>/cgroup text; the id form looks the id
 * up with shipper/cgroups.h (call it from one thread only: the drain).
 * Always fills *ret (kind HOST when the cgroup is no pod, UNKNOWN when the pod
 * is not (yet) known, which counts an unresolved lookup); 0 or -errno.
 */
int k8s_resolve_local_path(struct k8s *k, const char *cgroup_path, struct k8s_identity *ret);
int k8s_resolve_local_id(struct k8s *k, uint64_t cgroup_id, struct k8s_identity *ret);
int k8s_resolve_local_pid(struct k8s *k, pid_t pid, struct k8s_identity *ret);

/* A connection as the local socket saw it, for the conntrack lookup. */
struct k8s_tuple {
	uint8_t local_addr[16]; /* v4-mapped IPv6 for IPv4 */
	uint16_t local_port;    /* host byte order */
	uint8_t peer_addr[16];
	uint16_t peer_port;
};

/*
 * Identity of a peer address (16 bytes, v4-mapped for IPv4) and port (host
 * order). When the address is a ClusterIP and `tuple` is given (a client
 * connection: local -> ClusterIP:port), conntrack's reply direction names the
 * backend pod. Always fills *ret; 0 or -errno. Like the id form of the
 * local lookup, call it from one thread only: both keep names between
 * lookups while the store is unchanged (see k8s_set_name_cache).
 */
int k8s_resolve_peer(struct k8s *k, const uint8_t addr[16], uint16_t port,
		     const struct k8s_tuple *tuple, struct k8s_identity *ret);

/*
 * Keep resolved names between lookups (the default) or resolve every
 * lookup from the store: off is for measuring the store itself.
 */
void k8s_set_name_cache(struct k8s *k, bool enabled);

/*
 * The DNAT backend of a TCP connection from conntrack (current network
 * namespace): original direction local -> peer, reply source = backend.
 * 0, -ENOENT when conntrack has no such entry, or -errno.
 */
int k8s_conntrack_backend(const struct k8s_tuple *tuple, uint8_t ret_addr[16],
			  uint16_t *ret_port);

struct k8s_stats {
	bool synced;                /* both lists done and their watches running */
	uint64_t list_errors;       /* failed list requests (connect, HTTP, JSON) */
	uint64_t watch_errors;      /* watches that ended in error (not a clean timeout) */
	uint64_t relists;           /* lists after the first (410 Gone or error) */
	uint64_t gone_410;          /* HTTP 410 or watch ERROR 410 received */
	uint64_t watch_events;
	uint64_t pods;              /* objects held now (pods incl. deleted ones in grace) */
	uint64_t pods_deleted;      /* deleted pods kept for k8s_deleted_grace_s */
	uint64_t services;
	uint64_t objects_dropped;   /* objects not kept: over k8s_max_pods/services */
	uint64_t unresolved_local;  /* local lookups of a pod cgroup whose pod is unknown */
	uint64_t unresolved_peer;   /* peer lookups that ended as kind UNKNOWN */
	uint64_t conntrack_hits;
	uint64_t conntrack_misses;
	uint64_t backoff_ms;        /* the current retry delay, 0 when healthy */
	char last_error[K8S_ERROR_LEN];
};

void k8s_stats_get(struct k8s *k, struct k8s_stats *ret_stats);

/* k8s_log_unresolved writes at most one line per this long. */
#define K8S_UNRESOLVED_LOG_INTERVAL_MS 60000

/*
 * Log how many local and peer lookups found no name since the last such
 * line (a warning while the API is not synced, with its last error), at
 * most once per K8S_UNRESOLVED_LOG_INTERVAL_MS and only when there were
 * some. The drain calls it after each bucket. 1 when it logged, else 0.
 */
int k8s_log_unresolved(struct k8s *k);

/* For tests: wait up to timeout_ms until synced. 0 or -ETIMEDOUT. */
int k8s_wait_synced(struct k8s *k, unsigned int timeout_ms);

#endif
