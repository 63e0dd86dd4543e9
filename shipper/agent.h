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

struct kaccess_bpf;
struct bpf_link;

#define AGENT_MAX_LINKS 64

struct agent {
	struct kaccess_bpf *skel;
	struct bpf_link *links[AGENT_MAX_LINKS];
	unsigned int link_count;
	unsigned int programs_not_attached; /* optional programs that failed to attach */
	uint64_t bucket_ns;
	const char *hooks;                  /* "fentry", "sock" or "fd": what was chosen */
	int lock_fd;
	char pin_dir[PATH_MAX];             /* "" when not pinned */
};

/* Mount bpffs and tracefs where they are expected, when absent. */
int agent_mount_filesystems(const struct kaccess_config *cfg);

/* Probe, open, size, configure and load. Errors are logged here. */
int agent_load(struct agent *agent, const struct kaccess_config *cfg);

/* Attach every program; a required one failing is fatal, others are counted. */
int agent_attach(struct agent *agent);

/*
 * Track connections established before start (after attaching, so none
 * falls between the two): the startup TCP iterator in every network
 * namespace. Failure only leaves those connections untracked.
 */
int agent_adopt_existing(struct agent *agent);

/* The lock file of a pin directory; it holds the owning agent's pid. */
void agent_lock_path(const char *pin_dir, char *ret_path, size_t len);

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
