// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The pods and services kaccess keeps: only the fields it needs, strings
 * interned (a cluster repeats its namespaces, label keys and values), hash
 * indexes by UID, IP and name. The caller holds the k8s lock.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "k8s_internal.h"

#define HMAP_MIN_BUCKETS 64

/*
 * Eight bytes a step, each mixed in with a multiply, then a final mix:
 * the keys are addresses, ids and names, hashed twice per HTTP exchange
 * by the name caches, where FNV-1a's multiply per byte was 2.4% of the
 * shipper's CPU.
 */
uint64_t k8s_hash_bytes(const void *key, size_t len)
{
	const unsigned char *bytes = key;
	uint64_t hash = 0xcbf29ce484222325ULL ^ len, word;

	for (; len >= sizeof(word); bytes += sizeof(word), len -= sizeof(word)) {
		memcpy(&word, bytes, sizeof(word));
		hash = (hash ^ word) * 0x9e3779b97f4a7c15ULL;
		hash ^= hash >> 32;
	}
	word = 0;
	memcpy(&word, bytes, len);
	hash = (hash ^ word) * 0x9e3779b97f4a7c15ULL;
	hash ^= hash >> 33;
	hash *= 0xff51afd7ed558ccdULL;
	hash ^= hash >> 33;
	return hash;
}

static struct k8s_hentry *hmap_find(const struct k8s_hmap *map, const void *key, size_t len,
				    uint64_t hash)
{
	struct k8s_hentry *entry;

	if (!map->bucket_count)
		return NULL;
	for (entry = map->buckets[hash & (map->bucket_count - 1)]; entry; entry = entry->next)
		if (entry->hash == hash && entry->key_len == len && memcmp(entry->key, key, len) == 0)
			return entry;
	return NULL;
}

void *k8s_hmap_get(const struct k8s_hmap *map, const void *key, size_t len)
{
	struct k8s_hentry *entry = hmap_find(map, key, len, k8s_hash_bytes(key, len));

	return entry ? entry->value : NULL;
}

static int hmap_grow(struct k8s_hmap *map)
{
	size_t count = map->bucket_count ? map->bucket_count * 2 : HMAP_MIN_BUCKETS;
	struct k8s_hentry **buckets = calloc(count, sizeof(*buckets));

	if (!buckets)
		return -ENOMEM;
	for (size_t i = 0; i < map->bucket_count; i++) {
		struct k8s_hentry *entry = map->buckets[i], *next;

		/* Reversing chains keeps equal keys newest-first: reinsert in reverse. */
		struct k8s_hentry *reversed = NULL;

		for (; entry; entry = next) {
			next = entry->next;
			entry->next = reversed;
			reversed = entry;
		}
		for (entry = reversed; entry; entry = next) {
			size_t bucket = entry->hash & (count - 1);

			next = entry->next;
			entry->next = buckets[bucket];
			buckets[bucket] = entry;
		}
	}
	free(map->buckets);
	map->buckets = buckets;
	map->bucket_count = count;
	return 0;
}

/* New entries go first in their chain: with equal keys, the newest wins. */
int k8s_hmap_put(struct k8s_hmap *map, const void *key, size_t len, void *value)
{
	struct k8s_hentry *entry;
	size_t bucket;

	if (map->count >= map->bucket_count) {
		int err = hmap_grow(map);

		if (err)
			return err;
	}
	entry = malloc(sizeof(*entry));
	if (!entry)
		return -ENOMEM;
	entry->hash = k8s_hash_bytes(key, len);
	entry->key = key;
	entry->key_len = (uint32_t)len;
	entry->value = value;
	bucket = entry->hash & (map->bucket_count - 1);
	entry->next = map->buckets[bucket];
	map->buckets[bucket] = entry;
	map->count++;
	return 0;
}

bool k8s_hmap_del(struct k8s_hmap *map, const void *key, size_t len, const void *value)
{
	uint64_t hash = k8s_hash_bytes(key, len);
	struct k8s_hentry **link;

	if (!map->bucket_count)
		return false;
	for (link = &map->buckets[hash & (map->bucket_count - 1)]; *link; link = &(*link)->next) {
		struct k8s_hentry *entry = *link;

		if (entry->hash == hash && entry->value == value && entry->key_len == len &&
		    memcmp(entry->key, key, len) == 0) {
			*link = entry->next;
			free(entry);
			map->count--;
			return true;
		}
	}
	return false;
}

void k8s_hmap_free(struct k8s_hmap *map)
{
	for (size_t i = 0; i < map->bucket_count; i++) {
		struct k8s_hentry *entry = map->buckets[i], *next;

		for (; entry; entry = next) {
			next = entry->next;
			free(entry);
		}
	}
	free(map->buckets);
	memset(map, 0, sizeof(*map));
}

/* ---- interned strings ---- */

struct interned {
	uint32_t refs;
	uint32_t len;
	char text[];
};

const char *k8s_intern_get(struct k8s_intern *intern, const char *text, size_t len)
{
	struct interned *found = k8s_hmap_get(&intern->map, text, len);

	if (found) {
		found->refs++;
		return found->text;
	}
	found = malloc(sizeof(*found) + len + 1);
	if (!found)
		return NULL;
	found->refs = 1;
	found->len = (uint32_t)len;
	memcpy(found->text, text, len);
	found->text[len] = '\0';
	if (k8s_hmap_put(&intern->map, found->text, len, found)) {
		free(found);
		return NULL;
	}
	intern->bytes += sizeof(*found) + len + 1;
	return found->text;
}

void k8s_intern_put(struct k8s_intern *intern, const char *text)
{
	struct interned *entry;

	if (!text)
		return;
	entry = (struct interned *)(text - offsetof(struct interned, text));
	if (--entry->refs)
		return;
	k8s_hmap_del(&intern->map, entry->text, entry->len, entry);
	intern->bytes -= sizeof(*entry) + entry->len + 1;
	free(entry);
}

/* ---- JSON helpers ---- */

json_object *k8s_json_member(json_object *obj, const char *key)
{
	json_object *value;

	if (!obj || !json_object_is_type(obj, json_type_object) ||
	    !json_object_object_get_ex(obj, key, &value))
		return NULL;
	return value;
}

const char *k8s_json_string(json_object *obj, const char *key)
{
	json_object *value = k8s_json_member(obj, key);

	return value && json_object_is_type(value, json_type_string) ? json_object_get_string(value)
								   : NULL;
}

/* A string member interned, "" when absent; NULL on a too long value or ENOMEM. */
static const char *intern_member(struct k8s_store *store, json_object *obj, const char *key,
				 size_t max_len)
{
	const char *text = k8s_json_string(obj, key);
	size_t len = text ? strlen(text) : 0;

	if (len > max_len)
		return NULL;
	return k8s_intern_get(&store->intern, text ? text : "", len);
}

int k8s_parse_ip(const char *text, uint8_t ret_addr[16])
{
	struct in_addr v4;
	struct in6_addr v6;

	if (!text)
		return -EINVAL;
	if (inet_pton(AF_INET, text, &v4) == 1) {
		memset(ret_addr, 0, 10);
		ret_addr[10] = ret_addr[11] = 0xff;
		memcpy(ret_addr + 12, &v4, 4);
		return 0;
	}
	if (inet_pton(AF_INET6, text, &v6) == 1) {
		memcpy(ret_addr, &v6, 16);
		return 0;
	}
	return -EINVAL;
}

static void labels_free(struct k8s_store *store, struct k8s_label *labels, unsigned int count)
{
	for (unsigned int i = 0; i < count; i++) {
		k8s_intern_put(&store->intern, labels[i].key);
		k8s_intern_put(&store->intern, labels[i].value);
	}
	free(labels);
}

/* A string map (labels, selector), at most K8S_MAX_LABELS of it, interned. */
static int labels_parse(struct k8s_store *store, json_object *obj, struct k8s_label **ret_labels,
			uint16_t *ret_count)
{
	struct k8s_label *labels;
	unsigned int count = 0;
	int capacity;

	*ret_labels = NULL;
	*ret_count = 0;
	if (!obj || !json_object_is_type(obj, json_type_object))
		return 0;
	capacity = json_object_object_length(obj);
	if (capacity > K8S_MAX_LABELS)
		capacity = K8S_MAX_LABELS;
	if (!capacity)
		return 0;
	labels = calloc(capacity, sizeof(*labels));
	if (!labels)
		return -ENOMEM;
	json_object_object_foreach(obj, key, value)
	{
		const char *text = json_object_get_string(value);
		size_t key_len = strlen(key), value_len = text ? strlen(text) : 0;

		if (count == (unsigned int)capacity)
			break;
		if (!json_object_is_type(value, json_type_string) || key_len > K8S_MAX_LABEL_BYTES ||
		    value_len > K8S_MAX_LABEL_BYTES)
			continue;
		labels[count].key = k8s_intern_get(&store->intern, key, key_len);
		labels[count].value = k8s_intern_get(&store->intern, text, value_len);
		if (!labels[count].key || !labels[count].value) {
			k8s_intern_put(&store->intern, labels[count].key);
			labels_free(store, labels, count);
			return -ENOMEM;
		}
		count++;
	}
	*ret_labels = labels;
	*ret_count = (uint16_t)count;
	return 0;
}

/* ---- node addresses ---- */

static int node_addr_ref(struct k8s_store *store, const uint8_t addr[16], const char *node)
{
	struct k8s_node_addr *found = k8s_hmap_get(&store->node_addrs, addr, 16);

	if (found) {
		found->refs++;
		return 0;
	}
	found = calloc(1, sizeof(*found));
	if (!found)
		return -ENOMEM;
	memcpy(found->addr, addr, 16);
	found->refs = 1;
	found->node = k8s_intern_get(&store->intern, node, strlen(node));
	if (!found->node || k8s_hmap_put(&store->node_addrs, found->addr, 16, found)) {
		k8s_intern_put(&store->intern, found->node);
		free(found);
		return -ENOMEM;
	}
	return 0;
}

static void node_addr_unref(struct k8s_store *store, const uint8_t addr[16])
{
	struct k8s_node_addr *found = k8s_hmap_get(&store->node_addrs, addr, 16);

	if (!found || --found->refs)
		return;
	k8s_hmap_del(&store->node_addrs, found->addr, 16, found);
	k8s_intern_put(&store->intern, found->node);
	free(found);
}

/* ---- pods ---- */

static bool pod_ips_indexed(const struct k8s_pod *pod)
{
	/* A hostNetwork pod's IP is its node's; a finished pod's IP is reused. */
	return !pod->host_network && pod->phase != POD_SUCCEEDED && pod->phase != POD_FAILED;
}

static void pod_free(struct k8s_store *store, struct k8s_pod *pod)
{
	labels_free(store, pod->labels, pod->label_count);
	k8s_intern_put(&store->intern, pod->name);
	k8s_intern_put(&store->intern, pod->namespace_);
	k8s_intern_put(&store->intern, pod->node);
	k8s_intern_put(&store->intern, pod->service);
	free(pod);
}

static void pod_unindex_free(struct k8s_store *store, struct k8s_pod *pod)
{
	store->pods_generation++;
	k8s_hmap_del(&store->pods_by_uid, pod->uid, strlen(pod->uid), pod);
	for (unsigned int i = 0; i < pod->ip_count; i++) {
		if (pod_ips_indexed(pod))
			k8s_hmap_del(&store->pods_by_ip, pod->ips[i], 16, pod);
		else if (pod->host_network)
			node_addr_unref(store, pod->ips[i]);
	}
	if (pod->has_host_ip)
		node_addr_unref(store, pod->host_ip);
	pod_free(store, pod);
}

static int pod_index(struct k8s_store *store, struct k8s_pod *pod)
{
	int err = k8s_hmap_put(&store->pods_by_uid, pod->uid, strlen(pod->uid), pod);

	store->pods_generation++;
	for (unsigned int i = 0; !err && i < pod->ip_count; i++) {
		if (pod_ips_indexed(pod))
			err = k8s_hmap_put(&store->pods_by_ip, pod->ips[i], 16, pod);
		else if (pod->host_network)
			err = node_addr_ref(store, pod->ips[i], pod->node);
	}
	if (!err && pod->has_host_ip)
		err = node_addr_ref(store, pod->host_ip, pod->node);
	return err;
}

static uint8_t pod_phase(const char *phase)
{
	static const char *const names[] = { "Pending", "Running", "Succeeded", "Failed" };

	for (unsigned int i = 0; phase && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(phase, names[i]) == 0)
			return (uint8_t)i;
	return POD_OTHER;
}

static void pod_add_ip(struct k8s_pod *pod, const char *text)
{
	uint8_t addr[16];

	if (pod->ip_count == K8S_MAX_POD_IPS || k8s_parse_ip(text, addr))
		return;
	for (unsigned int i = 0; i < pod->ip_count; i++)
		if (memcmp(pod->ips[i], addr, 16) == 0)
			return;
	memcpy(pod->ips[pod->ip_count++], addr, 16);
}

static void pod_parse_status(struct k8s_pod *pod, json_object *status)
{
	json_object *ips = k8s_json_member(status, "podIPs");
	json_object *containers = k8s_json_member(status, "containerStatuses");

	pod->phase = pod_phase(k8s_json_string(status, "phase"));
	pod_add_ip(pod, k8s_json_string(status, "podIP"));
	if (ips && json_object_is_type(ips, json_type_array))
		for (size_t i = 0; i < json_object_array_length(ips); i++)
			pod_add_ip(pod, k8s_json_string(json_object_array_get_idx(ips, i), "ip"));
	pod->has_host_ip = k8s_parse_ip(k8s_json_string(status, "hostIP"), pod->host_ip) == 0;
	if (containers && json_object_is_type(containers, json_type_array))
		pod->container_count = (uint16_t)json_object_array_length(containers);
}

static int pod_parse(struct k8s_store *store, json_object *obj, struct k8s_pod **ret_pod)
{
	json_object *metadata = k8s_json_member(obj, "metadata"), *spec = k8s_json_member(obj, "spec");
	json_object *host_network = k8s_json_member(spec, "hostNetwork");
	const char *uid = k8s_json_string(metadata, "uid");
	struct k8s_pod *pod;
	int err;

	if (!uid || strlen(uid) >= K8S_POD_UID_LEN || !k8s_json_string(metadata, "name") ||
	    !k8s_json_string(metadata, "namespace"))
		return -EINVAL;
	pod = calloc(1, sizeof(*pod));
	if (!pod)
		return -ENOMEM;
	snprintf(pod->uid, sizeof(pod->uid), "%s", uid);
	pod->name = intern_member(store, metadata, "name", K8S_MAX_NAME_BYTES);
	pod->namespace_ = intern_member(store, metadata, "namespace", 63);
	pod->node = intern_member(store, spec, "nodeName", K8S_MAX_NAME_BYTES);
	pod->host_network = host_network && json_object_get_boolean(host_network);
	pod_parse_status(pod, k8s_json_member(obj, "status"));
	err = labels_parse(store, k8s_json_member(metadata, "labels"), &pod->labels, &pod->label_count);
	if (!err && (!pod->name || !pod->namespace_ || !pod->node))
		err = -EINVAL;
	if (err) {
		pod_free(store, pod);
		return err;
	}
	*ret_pod = pod;
	return 0;
}

int k8s_store_upsert_pod(struct k8s_store *store, json_object *obj, uint64_t epoch)
{
	struct k8s_pod *pod, *old;
	int err = pod_parse(store, obj, &pod);

	if (err)
		return err;
	old = k8s_store_pod_by_uid(store, pod->uid);
	if (old) {
		pod_unindex_free(store, old);
	} else if (store->pods_by_uid.count >= store->max_pods) {
		store->dropped++;
		pod_free(store, pod);
		return -ENOSPC;
	}
	pod->epoch = epoch;
	pod->service_generation = UINT64_MAX;
	err = pod_index(store, pod);
	if (err)
		pod_unindex_free(store, pod);
	return err;
}

/* A deleted pod in grace, by UID: the pod may have been replaced meanwhile. */
struct k8s_retired {
	struct k8s_retired *next;
	uint64_t deleted_ms;
	char uid[K8S_POD_UID_LEN];
};

/* Deleted: keep it resolvable for the grace period (it stays in every index). */
static void pod_retire(struct k8s_store *store, struct k8s_pod *pod, uint64_t now_ms)
{
	struct k8s_retired *retired;

	if (pod->deleted_ms)
		return;
	retired = store->deleted_grace_ms ? calloc(1, sizeof(*retired)) : NULL;
	if (!retired) {
		pod_unindex_free(store, pod);
		return;
	}
	pod->deleted_ms = now_ms ? now_ms : 1;
	retired->deleted_ms = pod->deleted_ms;
	memcpy(retired->uid, pod->uid, sizeof(retired->uid));
	if (store->retired_tail)
		store->retired_tail->next = retired;
	else
		store->retired_head = retired;
	store->retired_tail = retired;
	store->retired_count++;
}

void k8s_store_expire(struct k8s_store *store, uint64_t now_ms)
{
	while (store->retired_head &&
	       store->retired_head->deleted_ms + store->deleted_grace_ms <= now_ms) {
		struct k8s_retired *retired = store->retired_head;
		struct k8s_pod *pod = k8s_store_pod_by_uid(store, retired->uid);

		/* the same deletion, not a pod that came back under its UID */
		if (pod && pod->deleted_ms == retired->deleted_ms)
			pod_unindex_free(store, pod);
		store->retired_head = retired->next;
		if (!store->retired_head)
			store->retired_tail = NULL;
		store->retired_count--;
		free(retired);
	}
}

int k8s_store_delete_pod(struct k8s_store *store, json_object *obj, uint64_t now_ms)
{
	const char *uid = k8s_json_string(k8s_json_member(obj, "metadata"), "uid");
	struct k8s_pod *pod = uid ? k8s_store_pod_by_uid(store, uid) : NULL;

	if (!uid)
		return -EINVAL;
	if (pod)
		pod_retire(store, pod, now_ms);
	return 0;
}

/* Collect then delete: deleting changes the chains being walked. */
static void sweep(struct k8s_hmap *map, uint64_t epoch, size_t epoch_offset,
		  void (*delete_fn)(struct k8s_store *, void *, uint64_t), struct k8s_store *store,
		  uint64_t now_ms)
{
	void **stale = malloc((map->count + 1) * sizeof(*stale));
	size_t count = 0;

	if (!stale)
		return;
	for (size_t i = 0; i < map->bucket_count; i++)
		for (struct k8s_hentry *entry = map->buckets[i]; entry; entry = entry->next) {
			uint64_t object_epoch;

			memcpy(&object_epoch, (char *)entry->value + epoch_offset, sizeof(object_epoch));
			if (object_epoch < epoch)
				stale[count++] = entry->value;
		}
	for (size_t i = 0; i < count; i++)
		delete_fn(store, stale[i], now_ms);
	free(stale);
}

/* A pod a relist no longer has was deleted while we were not watching. */
static void pod_delete_fn(struct k8s_store *store, void *pod, uint64_t now_ms)
{
	if (now_ms == UINT64_MAX)
		pod_unindex_free(store, pod);
	else
		pod_retire(store, pod, now_ms);
}

void k8s_store_sweep_pods(struct k8s_store *store, uint64_t epoch, uint64_t now_ms)
{
	sweep(&store->pods_by_uid, epoch, offsetof(struct k8s_pod, epoch), pod_delete_fn, store,
	      now_ms);
}

struct k8s_pod *k8s_store_pod_by_uid(struct k8s_store *store, const char *uid)
{
	return k8s_hmap_get(&store->pods_by_uid, uid, strlen(uid));
}

struct k8s_pod *k8s_store_pod_by_ip(struct k8s_store *store, const uint8_t addr[16])
{
	return k8s_hmap_get(&store->pods_by_ip, addr, 16);
}

struct k8s_node_addr *k8s_store_node_addr(struct k8s_store *store, const uint8_t addr[16])
{
	return k8s_hmap_get(&store->node_addrs, addr, 16);
}

/* ---- services ---- */

static struct k8s_hentry *namespace_head(struct k8s_store *store, const char *namespace_)
{
	size_t len = strlen(namespace_);
	uint64_t hash = k8s_hash_bytes(namespace_, len);

	return hmap_find(&store->services_by_namespace, namespace_, len, hash);
}

/* Keep each namespace's list sorted by name: the first match is the rule. */
static int namespace_link(struct k8s_store *store, struct k8s_service *service)
{
	struct k8s_hentry *head = namespace_head(store, service->namespace_);
	struct k8s_service **link;

	if (!head)
		return k8s_hmap_put(&store->services_by_namespace, service->namespace_,
				    strlen(service->namespace_), service);
	link = (struct k8s_service **)&head->value;
	while (*link && strcmp((*link)->name, service->name) < 0)
		link = &(*link)->namespace_next;
	service->namespace_next = *link;
	*link = service;
	return 0;
}

static void namespace_unlink(struct k8s_store *store, struct k8s_service *service)
{
	struct k8s_hentry *head = namespace_head(store, service->namespace_);
	struct k8s_service **link;

	if (!head)
		return;
	for (link = (struct k8s_service **)&head->value; *link; link = &(*link)->namespace_next)
		if (*link == service) {
			*link = service->namespace_next;
			break;
		}
	if (!head->value)
		k8s_hmap_del(&store->services_by_namespace, head->key, head->key_len, NULL);
}

static void service_unindex_free(struct k8s_store *store, struct k8s_service *service,
				 bool indexed)
{
	if (indexed) {
		k8s_hmap_del(&store->services_by_key, service->key, strlen(service->key), service);
		for (unsigned int i = 0; i < service->ip_count; i++)
			k8s_hmap_del(&store->services_by_ip, service->ips[i], 16, service);
		namespace_unlink(store, service);
		store->services_generation++;
	}
	labels_free(store, service->selector, service->selector_count);
	k8s_intern_put(&store->intern, service->name);
	k8s_intern_put(&store->intern, service->namespace_);
	k8s_intern_put(&store->intern, service->type);
	free(service);
}

static void service_add_ip(struct k8s_service *service, const char *text)
{
	uint8_t addr[16];

	/* "None" (headless) and "" do not parse. */
	if (service->ip_count == K8S_MAX_SERVICE_IPS || k8s_parse_ip(text, addr))
		return;
	for (unsigned int i = 0; i < service->ip_count; i++)
		if (memcmp(service->ips[i], addr, 16) == 0)
			return;
	memcpy(service->ips[service->ip_count++], addr, 16);
}

static void service_parse_addresses(struct k8s_service *service, json_object *obj)
{
	json_object *spec = k8s_json_member(obj, "spec"), *list;
	json_object *load_balancer = k8s_json_member(k8s_json_member(obj, "status"), "loadBalancer");
	json_object *ingress = k8s_json_member(load_balancer, "ingress");

	service_add_ip(service, k8s_json_string(spec, "clusterIP"));
	list = k8s_json_member(spec, "clusterIPs");
	if (list && json_object_is_type(list, json_type_array))
		for (size_t i = 0; i < json_object_array_length(list); i++)
			service_add_ip(service, json_object_get_string(json_object_array_get_idx(list, i)));
	if (ingress && json_object_is_type(ingress, json_type_array))
		for (size_t i = 0; i < json_object_array_length(ingress); i++)
			service_add_ip(service, k8s_json_string(json_object_array_get_idx(ingress, i), "ip"));
	list = k8s_json_member(spec, "ports");
	if (list && json_object_is_type(list, json_type_array))
		for (size_t i = 0; i < json_object_array_length(list); i++) {
			json_object *port_obj = json_object_array_get_idx(list, i);
			const char *protocol = k8s_json_string(port_obj, "protocol");
			int port = json_object_get_int(k8s_json_member(port_obj, "port"));

			if (service->port_count == K8S_MAX_SERVICE_PORTS || port <= 0 || port > 65535)
				continue;
			service->ports[service->port_count].port = (uint16_t)port;
			service->ports[service->port_count++].protocol =
				protocol && strcmp(protocol, "UDP") == 0    ? IPPROTO_UDP :
				protocol && strcmp(protocol, "SCTP") == 0 ? IPPROTO_SCTP :
									      IPPROTO_TCP;
		}
}

static int service_parse(struct k8s_store *store, json_object *obj, struct k8s_service **ret)
{
	json_object *metadata = k8s_json_member(obj, "metadata"), *spec = k8s_json_member(obj, "spec");
	const char *name = k8s_json_string(metadata, "name");
	const char *namespace_ = k8s_json_string(metadata, "namespace");
	struct k8s_service *service;
	int err;

	if (!name || !namespace_ || strlen(name) > K8S_MAX_NAME_BYTES || strlen(namespace_) > 63)
		return -EINVAL;
	service = calloc(1, sizeof(*service));
	if (!service)
		return -ENOMEM;
	snprintf(service->key, sizeof(service->key), "%s/%s", namespace_, name);
	service->name = k8s_intern_get(&store->intern, name, strlen(name));
	service->namespace_ = k8s_intern_get(&store->intern, namespace_, strlen(namespace_));
	service->type = intern_member(store, spec, "type", 64);
	service_parse_addresses(service, obj);
	err = labels_parse(store, k8s_json_member(spec, "selector"), &service->selector,
			   &service->selector_count);
	if (!err && (!service->name || !service->namespace_ || !service->type))
		err = -ENOMEM;
	if (err) {
		service_unindex_free(store, service, false);
		return err;
	}
	*ret = service;
	return 0;
}

static int service_index(struct k8s_store *store, struct k8s_service *service)
{
	int err = k8s_hmap_put(&store->services_by_key, service->key, strlen(service->key), service);

	for (unsigned int i = 0; !err && i < service->ip_count; i++)
		err = k8s_hmap_put(&store->services_by_ip, service->ips[i], 16, service);
	if (!err)
		err = namespace_link(store, service);
	store->services_generation++;
	return err;
}

int k8s_store_upsert_service(struct k8s_store *store, json_object *obj, uint64_t epoch)
{
	struct k8s_service *service, *old;
	int err = service_parse(store, obj, &service);

	if (err)
		return err;
	old = k8s_hmap_get(&store->services_by_key, service->key, strlen(service->key));
	if (old) {
		service_unindex_free(store, old, true);
	} else if (store->services_by_key.count >= store->max_services) {
		store->dropped++;
		service_unindex_free(store, service, false);
		return -ENOSPC;
	}
	service->epoch = epoch;
	err = service_index(store, service);
	if (err)
		service_unindex_free(store, service, true);
	return err;
}

int k8s_store_delete_service(struct k8s_store *store, json_object *obj)
{
	json_object *metadata = k8s_json_member(obj, "metadata");
	const char *name = k8s_json_string(metadata, "name");
	const char *namespace_ = k8s_json_string(metadata, "namespace");
	char key[sizeof(((struct k8s_service *)0)->key)];
	struct k8s_service *service;

	if (!name || !namespace_)
		return -EINVAL;
	snprintf(key, sizeof(key), "%s/%s", namespace_, name);
	service = k8s_hmap_get(&store->services_by_key, key, strlen(key));
	if (service)
		service_unindex_free(store, service, true);
	return 0;
}

static void service_delete_fn(struct k8s_store *store, void *service, uint64_t now_ms)
{
	service_unindex_free(store, service, true);
}

void k8s_store_sweep_services(struct k8s_store *store, uint64_t epoch)
{
	sweep(&store->services_by_key, epoch, offsetof(struct k8s_service, epoch),
	      service_delete_fn, store, 0);
}

/*
 * LoadBalancer IPs can be shared (MetalLB, by port): the service at the IP
 * that has the port, else the newest at the IP. Port 0: the newest.
 */
struct k8s_service *k8s_store_service_by_ip(struct k8s_store *store, const uint8_t addr[16],
					    uint16_t port)
{
	const struct k8s_hmap *map = &store->services_by_ip;
	uint64_t hash = k8s_hash_bytes(addr, 16);
	struct k8s_service *newest = NULL;

	if (!map->bucket_count)
		return NULL;
	for (struct k8s_hentry *entry = map->buckets[hash & (map->bucket_count - 1)]; entry;
	     entry = entry->next) {
		struct k8s_service *service = entry->value;

		if (entry->hash != hash || entry->key_len != 16 || memcmp(entry->key, addr, 16))
			continue;
		if (!newest)
			newest = service;
		for (unsigned int i = 0; port && i < service->port_count; i++)
			if (service->ports[i].port == port)
				return service;
	}
	return newest;
}

/* Interned strings compare by pointer. */
static bool selector_matches(const struct k8s_service *service, const struct k8s_pod *pod)
{
	if (!service->selector_count)
		return false; /* a service without a selector selects no pod */
	for (unsigned int i = 0; i < service->selector_count; i++) {
		bool found = false;

		for (unsigned int j = 0; j < pod->label_count && !found; j++)
			found = pod->labels[j].key == service->selector[i].key &&
				pod->labels[j].value == service->selector[i].value;
		if (!found)
			return false;
	}
	return true;
}

const char *k8s_store_pod_service(struct k8s_store *store, struct k8s_pod *pod)
{
	struct k8s_hentry *head;
	const char *name = "";

	if (pod->service_generation == store->services_generation)
		return pod->service;
	head = namespace_head(store, pod->namespace_);
	for (struct k8s_service *service = head ? head->value : NULL; service;
	     service = service->namespace_next)
		if (selector_matches(service, pod)) {
			name = service->name;
			break;
		}
	name = k8s_intern_get(&store->intern, name, strlen(name));
	if (!name)
		return "";
	k8s_intern_put(&store->intern, pod->service);
	pod->service = name;
	pod->service_generation = store->services_generation;
	return pod->service;
}

/* ---- the store ---- */

int k8s_store_init(struct k8s_store *store, unsigned int max_pods, unsigned int max_services,
		   unsigned int deleted_grace_s)
{
	memset(store, 0, sizeof(*store));
	store->max_pods = max_pods;
	store->max_services = max_services;
	store->deleted_grace_ms = (uint64_t)deleted_grace_s * 1000;
	return 0;
}

void k8s_store_fini(struct k8s_store *store)
{
	k8s_store_expire(store, UINT64_MAX / 2);
	k8s_store_sweep_pods(store, UINT64_MAX, UINT64_MAX);
	k8s_store_sweep_services(store, UINT64_MAX);
	k8s_hmap_free(&store->pods_by_uid);
	k8s_hmap_free(&store->pods_by_ip);
	k8s_hmap_free(&store->services_by_key);
	k8s_hmap_free(&store->services_by_ip);
	k8s_hmap_free(&store->services_by_namespace);
	k8s_hmap_free(&store->node_addrs);
	k8s_hmap_free(&store->intern.map);
}
