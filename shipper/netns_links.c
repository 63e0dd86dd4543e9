// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <linux/bpf.h>

#include "log.h"
#include "netns_links.h"
#include "strbuf.h"

/* Linux 6.4 uapi, absent from the build's headers (Debian 12 has 6.1's). */
#define KACCESS_BPF_NETFILTER 45
#define KACCESS_NFPROTO_IPV4 2
#define KACCESS_NFPROTO_IPV6 10
#define KACCESS_NF_INET_PRE_ROUTING 0
#define KACCESS_NF_INET_LOCAL_IN 1
#define KACCESS_NF_INET_LOCAL_OUT 3
#define KACCESS_NF_INET_POST_ROUTING 4
#define PRIORITY_FIRST (INT_MIN + 1) /* INT_MIN itself is reserved */
#define PRIORITY_LAST (INT_MAX - 1)
#define MAX_CGROUP_DEPTH 16 /* kubepods/<qos>/pod<uid>/<container> is 4 */

/* 2 families x 4 hook points x first and last */
#define LINKS_PER_NETNS 16

/* bpf_attr.link_create with its netfilter member (uapi 6.4). */
struct nf_link_create {
	__u32 prog_fd;
	__u32 target_fd;
	__u32 attach_type;
	__u32 flags;
	__u32 pf;
	__u32 hooknum;
	__s32 priority;
	__u32 nf_flags;
};

struct netns_entry {
	uint64_t inode;
	int link_fds[LINKS_PER_NETNS];
	bool seen; /* by the current scan */
};

struct netns_links {
	int first_fd, last_fd;
	int own_netns_fd;                /* to return to after attaching elsewhere */
	char cgroup_dir[PATH_MAX];       /* the watched cgroup v2 directory; "" = all */
	struct netns_entry *entries;
	size_t count, capacity;
	uint64_t failures;
	uint64_t released;               /* namespaces whose links were closed */
	/* copies for the /metrics thread, stored after each scan */
	uint64_t published_count, published_failures, published_released;
};

static int link_create(int prog_fd, int pf, int hook, int priority)
{
	struct nf_link_create args = {
		.prog_fd = prog_fd, .attach_type = KACCESS_BPF_NETFILTER,
		.pf = pf, .hooknum = hook, .priority = priority,
	};
	union bpf_attr attr;

	_Static_assert(sizeof(args) <= sizeof(attr), "link_create fits bpf_attr");
	memset(&attr, 0, sizeof(attr));
	memcpy(&attr, &args, sizeof(args));
	return syscall(__NR_bpf, BPF_LINK_CREATE, &attr, sizeof(attr));
}

static void entry_close(struct netns_entry *entry)
{
	for (int i = 0; i < LINKS_PER_NETNS; i++)
		if (entry->link_fds[i] >= 0)
			close(entry->link_fds[i]);
}

/* Every link, in the namespace the calling thread is in now. */
static int attach_here(const struct netns_links *links, struct netns_entry *entry)
{
	static const int families[] = { KACCESS_NFPROTO_IPV4, KACCESS_NFPROTO_IPV6 };
	static const int hooks[] = { KACCESS_NF_INET_PRE_ROUTING, KACCESS_NF_INET_LOCAL_IN,
				     KACCESS_NF_INET_LOCAL_OUT, KACCESS_NF_INET_POST_ROUTING };
	int n = 0;

	for (size_t f = 0; f < 2; f++) {
		for (size_t h = 0; h < 4; h++) {
			entry->link_fds[n++] = link_create(links->first_fd, families[f], hooks[h], PRIORITY_FIRST);
			entry->link_fds[n++] = link_create(links->last_fd, families[f], hooks[h], PRIORITY_LAST);
			if (entry->link_fds[n - 1] < 0 || entry->link_fds[n - 2] < 0)
				return -errno;
		}
	}
	return 0;
}

/* Enter the namespace of `pid`, link there, come back. */
static int attach_in_netns_of(struct netns_links *links, int pid, struct netns_entry *entry)
{
	char path[64];
	int fd, err;

	for (int i = 0; i < LINKS_PER_NETNS; i++)
		entry->link_fds[i] = -1;
	snprintf(path, sizeof(path), "/proc/%d/ns/net", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	err = setns(fd, CLONE_NEWNET) ? -errno : attach_here(links, entry);
	close(fd);
	if (setns(links->own_netns_fd, CLONE_NEWNET)) {
		/* stuck in a pod's namespace would misplace every later link */
		log_err("netfilter links: cannot return to the agent's network namespace: %s",
			strerror(errno));
		abort();
	}
	if (err)
		entry_close(entry);
	return err;
}

static struct netns_entry *find_entry(struct netns_links *links, uint64_t inode)
{
	for (size_t i = 0; i < links->count; i++)
		if (links->entries[i].inode == inode)
			return &links->entries[i];
	return NULL;
}

static int add_entry(struct netns_links *links, const struct netns_entry *entry)
{
	if (links->count == links->capacity) {
		size_t capacity = links->capacity ? links->capacity * 2 : 16;
		struct netns_entry *grown = realloc(links->entries, capacity * sizeof(*grown));

		if (!grown)
			return -ENOMEM;
		links->entries = grown;
		links->capacity = capacity;
	}
	links->entries[links->count++] = *entry;
	return 0;
}

/* A watched process's namespace: mark it seen, attach when new. */
static void visit_process(struct netns_links *links, const char *pid)
{
	struct netns_entry fresh = { .seen = true }, *known;
	char path[64];
	struct stat st;
	int err;

	snprintf(path, sizeof(path), "/proc/%s/ns/net", pid);
	if (stat(path, &st))
		return; /* gone meanwhile */
	known = find_entry(links, st.st_ino);
	if (known) {
		known->seen = true;
		return;
	}
	fresh.inode = st.st_ino;
	err = attach_in_netns_of(links, atoi(pid), &fresh);
	if (err) {
		links->failures++;
		log_warn("netfilter links: cannot attach in network namespace %llu (pid %s): %s",
			 (unsigned long long)st.st_ino, pid, strerror(-err));
		return;
	}
	if (add_entry(links, &fresh)) {
		entry_close(&fresh);
		return;
	}
	log_debug("netfilter links: attached in network namespace %llu", (unsigned long long)st.st_ino);
}

/* Close the links of namespaces no watched process is in any more. */
static void release_unseen(struct netns_links *links)
{
	size_t kept = 0;

	for (size_t i = 0; i < links->count; i++) {
		if (!links->entries[i].seen) {
			log_debug("netfilter links: released network namespace %llu",
				  (unsigned long long)links->entries[i].inode);
			entry_close(&links->entries[i]);
			links->released++;
			continue;
		}
		links->entries[i].seen = false;
		links->entries[kept++] = links->entries[i];
	}
	links->count = kept;
}

/* Every process of the node. */
static void visit_all_processes(struct netns_links *links)
{
	DIR *proc = opendir("/proc");
	struct dirent *entry;

	if (!proc)
		return;
	while ((entry = readdir(proc)))
		if (isdigit((unsigned char)entry->d_name[0]))
			visit_process(links, entry->d_name);
	closedir(proc);
}

/*
 * The processes of a cgroup v2 directory and all below it, from their
 * cgroup.procs: only the watched processes are looked at, not the node's.
 */
static void visit_cgroup_tree(struct netns_links *links, const char *dir, unsigned int depth)
{
	char path[PATH_MAX], pid[32];
	struct dirent *entry;
	FILE *procs;
	DIR *d;

	snprintf(path, sizeof(path), "%s/cgroup.procs", dir);
	procs = fopen(path, "re");
	while (procs && fgets(pid, sizeof(pid), procs)) {
		pid[strcspn(pid, "\n")] = '\0';
		visit_process(links, pid);
	}
	if (procs)
		fclose(procs);
	d = depth < MAX_CGROUP_DEPTH ? opendir(dir) : NULL;
	while (d && (entry = readdir(d))) {
		if (entry->d_type != DT_DIR || entry->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, entry->d_name);
		visit_cgroup_tree(links, path, depth + 1);
	}
	if (d)
		closedir(d);
}

void netns_links_scan(struct netns_links *links)
{
	if (links->cgroup_dir[0])
		visit_cgroup_tree(links, links->cgroup_dir, 0);
	else
		visit_all_processes(links);
	release_unseen(links);
	__atomic_store_n(&links->published_count, links->count, __ATOMIC_RELAXED);
	__atomic_store_n(&links->published_failures, links->failures, __ATOMIC_RELAXED);
	__atomic_store_n(&links->published_released, links->released, __ATOMIC_RELAXED);
}

void netns_links_render_metrics(void *ctx, struct strbuf *out)
{
	struct netns_links *links = ctx;

	strbuf_printf(out, "# HELP kaccess_netfilter_namespaces Network namespaces with kaccess's "
			   "netfilter links now.\n# TYPE kaccess_netfilter_namespaces gauge\n"
			   "kaccess_netfilter_namespaces %llu\n",
		      (unsigned long long)__atomic_load_n(&links->published_count, __ATOMIC_RELAXED));
	strbuf_printf(out, "# HELP kaccess_netfilter_namespaces_released_total Namespaces whose links "
			   "were closed when their last watched process was gone.\n"
			   "# TYPE kaccess_netfilter_namespaces_released_total counter\n"
			   "kaccess_netfilter_namespaces_released_total %llu\n",
		      (unsigned long long)__atomic_load_n(&links->published_released, __ATOMIC_RELAXED));
	strbuf_printf(out, "# HELP kaccess_netfilter_link_failures_total Namespaces kaccess could not "
			   "link in (their L3 and netfilter fields stay unmeasured).\n"
			   "# TYPE kaccess_netfilter_link_failures_total counter\n"
			   "kaccess_netfilter_link_failures_total %llu\n",
		      (unsigned long long)__atomic_load_n(&links->published_failures, __ATOMIC_RELAXED));
}

int netns_links_new(int first_fd, int last_fd, const char *cgroup_dir, struct netns_links **ret)
{
	struct netns_links *links = calloc(1, sizeof(*links));

	if (!links)
		return -ENOMEM;
	links->first_fd = first_fd;
	links->last_fd = last_fd;
	links->own_netns_fd = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC);
	if (links->own_netns_fd < 0) {
		free(links);
		return -errno;
	}
	snprintf(links->cgroup_dir, sizeof(links->cgroup_dir), "%s", cgroup_dir);
	*ret = links;
	return 0;
}

size_t netns_links_count(const struct netns_links *links)
{
	return links ? links->count : 0;
}

uint64_t netns_links_failures(const struct netns_links *links)
{
	return links ? links->failures : 0;
}

void netns_links_free(struct netns_links *links)
{
	if (!links)
		return;
	for (size_t i = 0; i < links->count; i++)
		entry_close(&links->entries[i]);
	close(links->own_netns_fd);
	free(links->entries);
	free(links);
}
