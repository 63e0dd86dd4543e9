/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The Kubernetes resolver at scale, measured the same way by test_k8s (which
 * asserts bounds) and by the benchmark's k8s section (which reports): the
 * fake API server (already started, see fake_api.h) serves a bulk set of
 * synthetic pods and services; kaccess's list+watch client syncs them in
 * this process; its RSS growth is the store's memory, and resolving pod IPs
 * of the set is the per-lookup cost. Header-only, like fake_api.h: include
 * "k8s/scale.h" after "k8s/fake_api.h" and "k8s/k8s.h".
 */
#ifndef KACCESS_SELFTEST_K8S_SCALE_H
#define KACCESS_SELFTEST_K8S_SCALE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <time.h>

/* The synthetic set of fake_apiserver.py's "bulk" control. */
struct scale_bulk {
	unsigned int pods, services, namespaces;
};

struct scale_result {
	uint64_t sync_ms;             /* k8s_new until both lists are held */
	long rss_kib_before;          /* this process's VmRSS before k8s_new */
	long rss_kib_after;           /* ... after the sync and the lookups */
	uint64_t pods_held, services_held;
	unsigned int lookups;         /* peer lookups timed */
	unsigned int lookups_resolved; /* of them, resolved to a pod */
	double lookup_ns;             /* average wall time per lookup */
};

static inline long scale_rss_kib(void)
{
	FILE *status = fopen("/proc/self/status", "re");
	char line[256];
	long kib = -1;

	while (status && fgets(line, sizeof(line), status))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	if (status)
		fclose(status);
	return kib;
}

static inline uint64_t scale_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + ts.tv_nsec;
}

/*
 * Average ns per peer lookup of `count` pod IPs of the bulk set. The fake
 * gives pod i the address 10.(100 + i / 65536).(i / 256 % 256).(i % 256);
 * a stride prime to the set visits them out of order, as traffic would.
 */
static inline double scale_lookup_ns(struct k8s *k, unsigned int pods, unsigned int count,
				     unsigned int *ret_resolved)
{
	unsigned int resolved = 0;
	uint64_t started_ns = scale_now_ns();

	for (unsigned int n = 0; n < count; n++) {
		unsigned int i = (n * 7919u) % pods;
		uint8_t addr[16] = { [10] = 0xff, [11] = 0xff, [12] = 10, [13] = 100 + i / 65536,
				     [14] = (i / 256) % 256, [15] = i % 256 };
		struct k8s_identity id;

		k8s_resolve_peer(k, addr, 80, NULL, &id);
		resolved += id.kind == K8S_KIND_POD;
	}
	*ret_resolved = resolved;
	return (double)(scale_now_ns() - started_ns) / count;
}

/*
 * Load `bulk` into the fake on `port`, sync a resolver configured by `cfg`
 * (its api_server pointing at that fake) within sync_timeout_ms, then time
 * `lookups` peer lookups. The resolver is returned in *ret_k (also on error,
 * when created: the caller frees it). 0 or -errno.
 */
static inline int scale_sync_and_measure(int port, const struct k8s_config *cfg, struct scale_bulk bulk,
					 unsigned int lookups, unsigned int sync_timeout_ms,
					 struct k8s **ret_k, struct scale_result *ret)
{
	char control[128], err[K8S_ERROR_LEN];
	struct k8s_stats stats;
	uint64_t started_ns;
	int status;

	*ret_k = NULL;
	snprintf(control, sizeof(control), "{\"pods\": %u, \"services\": %u, \"namespaces\": %u}",
		 bulk.pods, bulk.services, bulk.namespaces);
	if (fake_control(port, "bulk", control) != 200)
		return -ECONNREFUSED;
	ret->rss_kib_before = scale_rss_kib();
	started_ns = scale_now_ns();
	status = k8s_new(cfg, ret_k, err, sizeof(err));
	if (status) {
		fprintf(stderr, "# k8s_new: %s\n", err);
		return status;
	}
	status = k8s_start(*ret_k);
	if (!status)
		status = k8s_wait_synced(*ret_k, sync_timeout_ms);
	if (status)
		return status;
	ret->sync_ms = (scale_now_ns() - started_ns) / 1000000;
	k8s_stats_get(*ret_k, &stats);
	ret->pods_held = stats.pods;
	ret->services_held = stats.services;
	ret->lookups = lookups;
	/* the store's own cost: the name cache would make small sets all hits */
	k8s_set_name_cache(*ret_k, false);
	ret->lookup_ns = scale_lookup_ns(*ret_k, bulk.pods, lookups, &ret->lookups_resolved);
	k8s_set_name_cache(*ret_k, true);
	ret->rss_kib_after = scale_rss_kib();
	return 0;
}

#endif
