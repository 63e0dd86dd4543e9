// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * k8s_scale: the benchmark's k8s section. Starts the fake API server
 * (selftests/k8s/fake_apiserver.py, so run it from the repository root),
 * syncs kaccess's Kubernetes resolver against a small set and then a large
 * one in this process, exactly as test_k8s does (selftests/k8s/scale.h), and
 * prints one NDJSON line per set:
 *
 *   {"type":"k8s_scale","pods":10000,"services":2000,"namespaces":100,
 *    "pods_held":10000,"services_held":2000,"sync_ms":...,"rss_kib_before":...,
 *    "rss_kib_after":...,"lookups":100000,"lookups_resolved":100000,"lookup_ns":...}
 *
 * The small set is the yardstick of "a lookup stays O(1)".
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_cli.h"
#include "k8s/fake_api.h"
#include "k8s/k8s.h"
#include "k8s/scale.h"

static const char usage[] =
	"usage: k8s_scale [--pods N] [--services N] [--namespaces N] [--lookups N]\n"
	"  the large set (default 10000 pods, 2000 services, 100 namespaces) and the\n"
	"  peer lookups timed on each set (default 100000); the small set is 1% of it\n"
	"  (at least 1 of each). Run from the repository root.\n"
	"\n"
	"example: .output/bench/k8s_scale --pods 10000 --services 2000\n";

#define SYNC_TIMEOUT_MS 120000
#define LIST_PAGE_SIZE 500 /* as test_k8s: 20 pages for 10,000 pods */

/* A count in 1..max from text, or 0 when it is not one. */
static unsigned int parse_count(const char *text, unsigned int max)
{
	unsigned int value;

	return bench_parse_uint(text, 1, max, &value) ? 0 : value;
}

static int parse_options(int argc, char **argv, struct scale_bulk *ret_large, unsigned int *ret_lookups)
{
	static const struct option options[] = {
		{ "pods", required_argument, NULL, 'p' },
		{ "services", required_argument, NULL, 's' },
		{ "namespaces", required_argument, NULL, 'n' },
		{ "lookups", required_argument, NULL, 'l' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "h", options, NULL)) != -1) {
		switch (opt) {
		case 'p': ret_large->pods = parse_count(optarg, 60000); break; /* 10.100.0.0 .. 10.100.234.95 */
		case 's': ret_large->services = parse_count(optarg, 60000); break;
		case 'n': ret_large->namespaces = parse_count(optarg, 10000); break;
		case 'l': *ret_lookups = parse_count(optarg, 100000000); break;
		case 'h': fputs(usage, stdout); exit(0);
		default: return -EINVAL;
		}
	}
	if (optind != argc || !ret_large->pods || !ret_large->services || !ret_large->namespaces ||
	    !*ret_lookups)
		return -EINVAL;
	return 0;
}

static void print_result(struct scale_bulk bulk, const struct scale_result *r)
{
	printf("{\"type\":\"k8s_scale\",\"pods\":%u,\"services\":%u,\"namespaces\":%u,"
	       "\"pods_held\":%llu,\"services_held\":%llu,\"sync_ms\":%llu,\"rss_kib_before\":%ld,"
	       "\"rss_kib_after\":%ld,\"lookups\":%u,\"lookups_resolved\":%u,\"lookup_ns\":%.1f}\n",
	       bulk.pods, bulk.services, bulk.namespaces, (unsigned long long)r->pods_held,
	       (unsigned long long)r->services_held, (unsigned long long)r->sync_ms, r->rss_kib_before,
	       r->rss_kib_after, r->lookups, r->lookups_resolved, r->lookup_ns);
	fflush(stdout);
}

/* One set against a fresh fake server: a fresh store, nothing cached. */
static int measure_set(struct scale_bulk bulk, unsigned int lookups)
{
	struct k8s_config cfg;
	struct scale_result result = { 0 };
	struct k8s *k = NULL;
	int port = fake_free_port(), status;
	pid_t server;

	if (port < 0)
		return -EADDRNOTAVAIL;
	server = fake_start(port, false);
	if (server < 0) {
		fprintf(stderr, "k8s_scale: failed to start %s (run from the repository root)\n", FAKE_API);
		return -ECHILD;
	}
	k8s_config_set_defaults(&cfg);
	snprintf(cfg.api_server, sizeof(cfg.api_server), "http://127.0.0.1:%d", port);
	cfg.list_page_size = LIST_PAGE_SIZE;
	status = scale_sync_and_measure(port, &cfg, bulk, lookups, SYNC_TIMEOUT_MS, &k, &result);
	if (status)
		fprintf(stderr, "k8s_scale: failed to sync %u pods and %u services: %s\n", bulk.pods,
			bulk.services, strerror(-status));
	else
		print_result(bulk, &result);
	k8s_free(k);
	fake_stop(server);
	return status;
}

int main(int argc, char **argv)
{
	struct scale_bulk large = { .pods = 10000, .services = 2000, .namespaces = 100 }, small;
	unsigned int lookups = 100000;

	if (parse_options(argc, argv, &large, &lookups)) {
		fputs(usage, stderr);
		return 2;
	}
	small = (struct scale_bulk){ .pods = large.pods / 100 ? large.pods / 100 : 1,
				     .services = large.services / 100 ? large.services / 100 : 1,
				     .namespaces = large.namespaces / 10 ? large.namespaces / 10 : 1 };
	if (measure_set(small, lookups) || measure_set(large, lookups))
		return 1;
	return 0;
}
