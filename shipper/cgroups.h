/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * cgroup v2 paths: where the hierarchy is mounted, and the path of a cgroup
 * id as the kernel reports it (bpf_get_current_cgroup_id() is the inode
 * number of the cgroup's directory).
 */
#ifndef KACCESS_CGROUPS_H
#define KACCESS_CGROUPS_H

#include <stddef.h>
#include <stdint.h>

/* The cgroup2 mount point, e.g. /sys/fs/cgroup or /sys/fs/cgroup/unified. */
int cgroups_v2_mount(char *ret_path, size_t len);

/*
 * Turn a configured cgroup ("/kubepods", or a full path under the mount)
 * into a directory path on the cgroup2 filesystem.
 */
int cgroups_resolve_path(const char *cgroup, char *ret_path, size_t len);

/* The id (inode) of a cgroup directory and its depth below the root (0). */
int cgroups_identity(const char *path, uint64_t *ret_id, unsigned int *ret_level);

struct cgroup_names;

int cgroup_names_new(struct cgroup_names **ret_names);
void cgroup_names_free(struct cgroup_names *names);

/*
 * Path of a cgroup id relative to the mount ("/" for the root), or NULL
 * when no such cgroup exists (any more). A miss rescans the hierarchy at
 * most once per second.
 */
const char *cgroup_names_lookup(struct cgroup_names *names, uint64_t cgroup_id);

#endif
