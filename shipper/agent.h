/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The loaded BPF side: skeleton, links, pins and the single-instance lock.
 */
#ifndef KACCESS_AGENT_H
#define KACCESS_AGENT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "config.h"

#include "http_records.h"
#include "kaccess.h"

struct kaccess_bpf;
struct bpf_link;
struct endpoint_names;

/* Every loss counter: the kernel side's (enum kaccess_counter), then the shipper's. */
enum loss_counter {
	LOSS_PROGRAMS_NOT_ATTACHED = KACCESS_CTR_LOSSES, /* optional programs that failed to attach */
	LOSS_DESTROY_MISSED,          /* connections whose end was never seen, found by the sweep */
	LOSS_PROGRAM_RECURSION_MISSES,/* program runs the kernel skipped to avoid recursion */
	LOSS_H2_UNDECODED,            /* HTTP/2 exchanges whose headers could not be decoded (unnamed) */
	LOSS_HTTP_RECORD_HEAD_CUT,    /* access-log records whose request head was not all copied
				       * (split over calls, above KACCESS_HTTP_HEAD_MAX, or its
				       * head record lost): Host and trace headers may be missing */
	LOSS_HTTP_RECORD_SHED,        /* access-log records not made: the shipper was behind */
	LOSS_MAX,
};

struct loss_counters {
	uint64_t values[LOSS_MAX];
};

/* Export names, in enum order. */
extern const char *const loss_names[LOSS_MAX];

#define AGENT_MAX_LINKS 64

struct netns_links;

struct agent {
	struct kaccess_bpf *skel;
	struct bpf_link *links[AGENT_MAX_LINKS];
	unsigned int link_count;            /* a shared exit has several (see agent_attach) */
	unsigned int programs_attached;     /* programs with at least one link */
	unsigned int programs_not_attached; /* optional attachments that failed */
	uint64_t destroy_missed;            /* entries the sweep removed: their end was not seen */
	uint64_t bucket_ns;
	const char *hooks;                  /* "fentry", "sock", "fd" or "tcp": what was chosen */
	unsigned int l24_measured;          /* enum kaccess_l24_measure bits this kernel measures */
	struct netns_links *netns_links;    /* netfilter links per namespace; NULL without */
	char watched_cgroup_dir[PATH_MAX];  /* absolute; "" = every process */
	struct endpoint_names *endpoints;   /* HTTP endpoint texts, filled by the event loop */
	uint64_t h2_undecoded;              /* HTTP/2 exchanges counted without their headers */
	bool http_keep_query;               /* HTTP/2 endpoints keep the query string too */
	struct http_record_counts http_records; /* access-log records shipped, filtered, cut */
	int lock_fd;
	char pin_dir[PATH_MAX];             /* "" when not pinned */
};

/*
 * Move the read, write and packet sums each CPU holds (bpf/agg.bpf.h,
 * write combining) to their rows: before every drain and every look at
 * the current rows.
 */
int agent_flush_combined(struct agent *agent);

/* Netfilter links: attach in namespaces that appeared, release gone ones. */
void agent_scan_netns(struct agent *agent);

/* The netfilter programs in use (linked per namespace, not in `links`). */
unsigned int agent_netfilter_programs(const struct agent *agent);

/* Mount bpffs and tracefs where they are expected, when absent. */
int agent_mount_filesystems(const struct kaccess_config *cfg);

/*
 * Probe, open, size, configure and load. Errors are logged here. Without a
 * reader for the HTTP access-log records the kernel is told not to send them.
 */
int agent_load(struct agent *agent, const struct kaccess_config *cfg, bool records_have_a_reader);

/* Attach every program; a required one failing is fatal, others are counted. */
int agent_attach(struct agent *agent);

/*
 * Track connections established before start (after attaching, so none
 * falls between the two): the startup TCP iterator in every network
 * namespace. Failure only leaves those connections untracked.
 */
int agent_adopt_existing(struct agent *agent);

/*
 * kaccess's own listener (/metrics) on `port` of its network namespace:
 * connections to it are not tracked (those kaccess makes are not either:
 * rodata agent_tgid).
 */
void agent_exclude_own_listener(struct agent *agent, uint16_t port);

/* The lock file of a pin directory; it holds the owning agent's pid. */
void agent_lock_path(const char *pin_dir, char *ret_path, size_t len);

/*
 * Remove conn_table entries whose socket no longer exists (its destroy was
 * never seen), counted in destroy_missed. Visits every network namespace.
 */
int agent_sweep_stale(struct agent *agent);

/* Every loss counter, read now (thread-safe: reads only). */
int agent_read_losses(struct agent *agent, struct loss_counters *ret_losses);

/* Pin the inspectable maps under cfg->pin_dir (taking its lock). */
int agent_pin(struct agent *agent, const char *pin_dir);

/* Stop every program; maps stay readable for the final drain. */
void agent_detach(struct agent *agent);

/* Remove pins and free everything. Safe on a partly set up agent. */
void agent_destroy(struct agent *agent);

/* Keep the kernel's idea of wall-clock buckets in step with CLOCK_REALTIME. */
void agent_update_wall_offset(struct agent *agent);

int agent_map_fd(struct agent *agent, const char *name);

/* Each loaded program's name, hook and verifier figures: kaccess --check. */
int agent_print_programs(struct agent *agent, bool json, FILE *out);

/* Current CLOCK_REALTIME and CLOCK_MONOTONIC in ns. */
uint64_t realtime_ns(void);
uint64_t monotonic_ns(void);

#endif
