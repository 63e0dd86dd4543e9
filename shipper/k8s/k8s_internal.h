/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Inside shipper/k8s: the object store shared by the watcher and the resolvers. */
#ifndef KACCESS_K8S_INTERNAL_H
#define KACCESS_K8S_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <json-c/json.h>

#include "k8s.h"
#include "k8s_http.h"

/* Per-object caps: beyond them the rest is ignored (bounded memory). */
#define K8S_MAX_LABELS 64
#define K8S_MAX_POD_IPS 2
#define K8S_MAX_SERVICE_IPS 4
#define K8S_MAX_SERVICE_PORTS 8
/* Kubernetes' own limits: names 253, label values 63, label keys 317. */
#define K8S_MAX_NAME_BYTES 253
#define K8S_MAX_LABEL_BYTES 317

/* A chained hash table of byte-string keys; entries point into their objects. */
struct k8s_hentry {
	struct k8s_hentry *next;
	uint64_t hash;
	const void *key;
	uint32_t key_len;
	void *value;
};

struct k8s_hmap {
	struct k8s_hentry **buckets;
	size_t bucket_count; /* a power of two */
	size_t count;
};

uint64_t k8s_hash_bytes(const void *key, size_t len);
void *k8s_hmap_get(const struct k8s_hmap *map, const void *key, size_t len);
int k8s_hmap_put(struct k8s_hmap *map, const void *key, size_t len, void *value);
/* Remove the entry whose key and value are these; returns whether it was there. */
bool k8s_hmap_del(struct k8s_hmap *map, const void *key, size_t len, const void *value);
void k8s_hmap_free(struct k8s_hmap *map);

/* Refcounted interned strings: namespaces, label keys and values repeat. */
struct k8s_intern {
	struct k8s_hmap map;
	uint64_t bytes;
};

const char *k8s_intern_get(struct k8s_intern *intern, const char *text, size_t len);
void k8s_intern_put(struct k8s_intern *intern, const char *text);

struct k8s_label {
	const char *key, *value; /* interned: equal strings are equal pointers */
};

enum k8s_pod_phase { POD_PENDING, POD_RUNNING, POD_SUCCEEDED, POD_FAILED, POD_OTHER };

struct k8s_pod {
	char uid[K8S_POD_UID_LEN];
	const char *name;       /* interned (names of gone pods come back as new pods) */
	const char *namespace_; /* interned */
	const char *node;       /* interned, may be "" */
	uint8_t ips[K8S_MAX_POD_IPS][16];
	uint8_t host_ip[16];
	uint8_t ip_count;
	bool has_host_ip;
	bool host_network;
	uint8_t phase;
	uint16_t label_count;
	uint16_t container_count;
	struct k8s_label *labels;
	uint64_t epoch;         /* the list that last saw it, for relists */
	uint64_t deleted_ms;    /* when it was deleted (monotonic), 0 while it exists */
	/* The selecting service, computed lazily when services changed. */
	const char *service;    /* interned "" when none */
	uint64_t service_generation;
};

struct k8s_service_port {
	uint16_t port;
	uint8_t protocol; /* IPPROTO_* */
};

struct k8s_service {
	char key[K8S_MAX_NAME_BYTES + 66]; /* "<namespace>/<name>" */
	const char *name, *namespace_;      /* interned */
	const char *type;                   /* interned */
	uint8_t ips[K8S_MAX_SERVICE_IPS][16];
	uint8_t ip_count;
	uint8_t port_count;
	uint16_t selector_count;
	struct k8s_service_port ports[K8S_MAX_SERVICE_PORTS];
	struct k8s_label *selector;
	uint64_t epoch;
	struct k8s_service *namespace_next; /* sorted by name within a namespace */
};

/* A node address and how many pods name it (hostIP, hostNetwork podIP). */
struct k8s_node_addr {
	uint8_t addr[16];
	uint32_t refs;
	const char *node; /* interned */
};

struct k8s_store {
	struct k8s_intern intern;
	struct k8s_hmap pods_by_uid, pods_by_ip;
	struct k8s_hmap services_by_key, services_by_ip;
	struct k8s_hmap services_by_namespace; /* namespace -> first k8s_service */
	struct k8s_hmap node_addrs;
	uint64_t services_generation;
	uint64_t pods_generation; /* bumped by every pod indexed or removed */
	uint64_t pod_epoch, service_epoch;
	unsigned int max_pods, max_services;
	uint64_t dropped;
	/* deleted pods in grace, oldest first: expired from the head */
	struct k8s_retired *retired_head, *retired_tail;
	uint64_t retired_count;
	uint64_t deleted_grace_ms;
};

int k8s_store_init(struct k8s_store *store, unsigned int max_pods, unsigned int max_services,
		   unsigned int deleted_grace_s);
/* Free the deleted pods whose grace ended by now_ms (monotonic). */
void k8s_store_expire(struct k8s_store *store, uint64_t now_ms);
void k8s_store_fini(struct k8s_store *store);

/* Apply one object from a list or an ADDED/MODIFIED event; -errno for bad shapes. */
int k8s_store_upsert_pod(struct k8s_store *store, json_object *pod, uint64_t epoch);
int k8s_store_delete_pod(struct k8s_store *store, json_object *pod, uint64_t now_ms);
int k8s_store_upsert_service(struct k8s_store *store, json_object *service, uint64_t epoch);
int k8s_store_delete_service(struct k8s_store *store, json_object *service);
/* After a full list: drop objects the list did not have. */
void k8s_store_sweep_pods(struct k8s_store *store, uint64_t epoch, uint64_t now_ms);
void k8s_store_sweep_services(struct k8s_store *store, uint64_t epoch);

struct k8s_pod *k8s_store_pod_by_uid(struct k8s_store *store, const char *uid);
struct k8s_pod *k8s_store_pod_by_ip(struct k8s_store *store, const uint8_t addr[16]);
struct k8s_service *k8s_store_service_by_ip(struct k8s_store *store, const uint8_t addr[16],
					    uint16_t port);
struct k8s_node_addr *k8s_store_node_addr(struct k8s_store *store, const uint8_t addr[16]);
/* The service selecting the pod: lexicographically first name; "" when none. */
const char *k8s_store_pod_service(struct k8s_store *store, struct k8s_pod *pod);

/* obj[key] when obj is an object that has it; NULL otherwise (any of it NULL). */
json_object *k8s_json_member(json_object *obj, const char *key);
/* obj[key] when it is a string, else NULL. */
const char *k8s_json_string(json_object *obj, const char *key);

/* "10.0.0.1" or "fd00::1" -> 16 bytes, IPv4 v4-mapped. */
int k8s_parse_ip(const char *text, uint8_t ret_addr[16]);

enum k8s_resource { K8S_PODS, K8S_SERVICES, K8S_RESOURCE_COUNT };

struct k8s_watcher {
	struct k8s *k;
	enum k8s_resource resource;
	pthread_t thread;
	bool thread_started;
	bool synced;
	char resource_version[128];
	unsigned int backoff_ms;
	unsigned int failures; /* in a row: the first is a warning, the rest debug */
};

/*
 * A resolved identity by its lookup key (a cgroup id; a peer address and
 * port), valid while the store's pods and services are as they were when
 * it was resolved (generation: the sum of the store's two generations,
 * which only grow).
 */
#define K8S_NAME_KEY_MAX 18

struct k8s_name_cache_slot {
	uint8_t key[K8S_NAME_KEY_MAX];
	bool used;
	uint64_t generation;
	struct k8s_identity identity;
};

#define K8S_LOCAL_CACHE_SLOTS 64 /* direct-mapped by cgroup id */
#define K8S_PEER_CACHE_SLOTS 256 /* direct-mapped by address and port */

struct k8s {
	struct k8s_config cfg;
	pthread_mutex_t lock; /* store, stats, watcher state */
	pthread_cond_t wake;  /* stop requests interrupt backoff sleeps */
	bool stopping;
	struct k8s_store store;
	struct k8s_stats stats;
	struct k8s_watcher watchers[K8S_RESOURCE_COUNT];
	/* connection settings resolved at k8s_new */
	char server[K8S_CONFIG_PATH_LEN];
	struct k8s_http_server http_server; /* `server`, parsed */
	int stop_fd; /* eventfd: k8s_stop interrupts the requests in progress */
	char token_path[K8S_CONFIG_PATH_LEN + 16];
	char ca_path[K8S_CONFIG_PATH_LEN + 16];
	struct k8s_kubeconfig kubeconfig;
	/* namespace policy, parsed */
	char exclude[K8S_CONFIG_LIST_LEN + 2]; /* ",a,b," for substring tests */
	char include[K8S_CONFIG_LIST_LEN + 2];
	/* local id -> path, drain thread only */
	struct cgroup_names *cgroup_names;
	/* local id -> identity, drain thread only (see k8s_resolve_local_id) */
	struct k8s_name_cache_slot *local_cache;
	struct k8s_name_cache_slot *peer_cache;
	bool name_cache_off;   /* k8s_set_name_cache(k, false) */
	/* k8s_log_unresolved: the counts its last line told, and when (monotonic) */
	uint64_t unresolved_told_local, unresolved_told_peer;
	uint64_t unresolved_told_ms;    /* 0: no line yet */
	uint64_t unresolved_since_ms;   /* start of what the next line counts */
};

int k8s_read_small_file(const char *path, char **ret_text);
void *k8s_watcher_main(void *arg);
void k8s_set_error(struct k8s *k, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
