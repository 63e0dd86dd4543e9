// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <linux/magic.h>

#include "cgroups.h"

#define RESCAN_MIN_INTERVAL_NS 1000000000ULL

struct cgroup_name {
	uint64_t id;
	char *path;
};

struct cgroup_names {
	char mount[PATH_MAX];
	struct cgroup_name *entries;
	size_t count, capacity;
	uint64_t last_scan_ns;
};

int cgroups_v2_mount(char *ret_path, size_t len)
{
	char line[4096], mount_point[PATH_MAX], fstype[64];
	FILE *mountinfo = fopen("/proc/self/mountinfo", "re");
	int ret = -ENOENT;

	if (!mountinfo)
		return -errno;
	while (fgets(line, sizeof(line), mountinfo)) {
		/* "id parent major:minor root mount-point options ... - fstype source ..." */
		const char *separator = strstr(line, " - ");

		if (!separator || sscanf(separator, " - %63s", fstype) != 1 ||
		    strcmp(fstype, "cgroup2") != 0)
			continue;
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mount_point) != 1)
			continue;
		if ((size_t)snprintf(ret_path, len, "%s", mount_point) >= len) {
			ret = -ENAMETOOLONG;
			break;
		}
		ret = 0;
		break;
	}
	fclose(mountinfo);
	return ret;
}

int cgroups_resolve_path(const char *cgroup, char *ret_path, size_t len)
{
	char mount[PATH_MAX];
	struct statfs fs;
	size_t mount_len;
	int err = cgroups_v2_mount(mount, sizeof(mount));

	if (err)
		return err;
	mount_len = strlen(mount);
	if (strncmp(cgroup, mount, mount_len) == 0 &&
	    (cgroup[mount_len] == '/' || cgroup[mount_len] == '\0'))
		err = snprintf(ret_path, len, "%s", cgroup) >= (int)len;
	else
		err = snprintf(ret_path, len, "%s/%s", mount, cgroup[0] == '/' ? cgroup + 1 : cgroup) >= (int)len;
	if (err)
		return -ENAMETOOLONG;
	if (statfs(ret_path, &fs))
		return -errno;
	if (fs.f_type != CGROUP2_SUPER_MAGIC)
		return -ENOTDIR;
	return 0;
}

int cgroups_identity(const char *path, uint64_t *ret_id, unsigned int *ret_level)
{
	char mount[PATH_MAX];
	struct stat st;
	unsigned int level = 0;
	int err = cgroups_v2_mount(mount, sizeof(mount));

	if (err)
		return err;
	if (stat(path, &st))
		return -errno;
	/* Each path component below the mount is one level: "/kubepods" is 1. */
	for (const char *c = path + strlen(mount); *c; c++)
		if (*c == '/' && c[1] && c[1] != '/')
			level++;
	*ret_id = st.st_ino;
	*ret_level = level;
	return 0;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

int cgroup_names_new(struct cgroup_names **ret_names)
{
	struct cgroup_names *names = calloc(1, sizeof(*names));
	int err;

	if (!names)
		return -ENOMEM;
	err = cgroups_v2_mount(names->mount, sizeof(names->mount));
	if (err) {
		free(names);
		return err;
	}
	*ret_names = names;
	return 0;
}

static void cgroup_names_clear(struct cgroup_names *names)
{
	for (size_t i = 0; i < names->count; i++)
		free(names->entries[i].path);
	names->count = 0;
}

void cgroup_names_free(struct cgroup_names *names)
{
	if (!names)
		return;
	cgroup_names_clear(names);
	free(names->entries);
	free(names);
}

/* nftw() has no user pointer: the scan in progress. */
static struct cgroup_names *scanning;

static int add_cgroup(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
	struct cgroup_names *names = scanning;
	const char *relative = path + strlen(names->mount);
	struct cgroup_name *grown;

	if (type != FTW_D)
		return 0;
	if (names->count == names->capacity) {
		size_t capacity = names->capacity ? names->capacity * 2 : 256;

		grown = realloc(names->entries, capacity * sizeof(*grown));
		if (!grown)
			return -ENOMEM;
		names->entries = grown;
		names->capacity = capacity;
	}
	names->entries[names->count].id = st->st_ino;
	names->entries[names->count].path = strdup(relative[0] ? relative : "/");
	if (!names->entries[names->count].path)
		return -ENOMEM;
	names->count++;
	return 0;
}

static int compare_ids(const void *a, const void *b)
{
	const struct cgroup_name *x = a, *y = b;

	return x->id < y->id ? -1 : x->id > y->id;
}

static void cgroup_names_rescan(struct cgroup_names *names)
{
	cgroup_names_clear(names);
	scanning = names;
	nftw(names->mount, add_cgroup, 32, FTW_PHYS | FTW_MOUNT);
	scanning = NULL;
	qsort(names->entries, names->count, sizeof(names->entries[0]), compare_ids);
	names->last_scan_ns = now_ns();
}

static const char *cgroup_names_find(const struct cgroup_names *names, uint64_t cgroup_id)
{
	struct cgroup_name wanted = { .id = cgroup_id }, *found;

	if (!names->count)
		return NULL;
	found = bsearch(&wanted, names->entries, names->count, sizeof(wanted), compare_ids);
	return found ? found->path : NULL;
}

const char *cgroup_names_lookup(struct cgroup_names *names, uint64_t cgroup_id)
{
	const char *path = cgroup_names_find(names, cgroup_id);

	if (path || now_ns() - names->last_scan_ns < RESCAN_MIN_INTERVAL_NS)
		return path;
	cgroup_names_rescan(names);
	return cgroup_names_find(names, cgroup_id);
}
