// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The agent's view of sockets it did not see being born or dying, through
 * BPF iterators: adoption of the connections established before the start,
 * and the periodic sweep of conn_table entries whose socket is gone (the
 * kernel sometimes skips a BPF program on tcp_destroy_sock: seen under mass
 * closes, with no recursion miss reported).
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent.h"
#include "kaccess.h"
#include "kaccess.skel.h"
#include "log.h"
#include "maps_read.h"

/* The iterator program's pass; see bpf/adopt.bpf.c. */
enum adopt_pass { PASS_LISTENERS, PASS_ADOPT, PASS_LIST_SOCKETS };

/* Socket addresses, sorted for lookups. */
struct sk_set {
	uint64_t *items;
	size_t count, capacity;
};

static int sk_set_add(struct sk_set *set, const uint64_t *items, size_t count)
{
	if (set->count + count > set->capacity) {
		size_t capacity = set->capacity ? set->capacity : 4096;
		uint64_t *bigger;

		while (capacity < set->count + count)
			capacity *= 2;
		bigger = realloc(set->items, capacity * sizeof(*bigger));
		if (!bigger)
			return -ENOMEM;
		set->items = bigger;
		set->capacity = capacity;
	}
	memcpy(set->items + set->count, items, count * sizeof(*items));
	set->count += count;
	return 0;
}

static int compare_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

static bool sk_set_has(const struct sk_set *set, uint64_t sk)
{
	return set->count && bsearch(&sk, set->items, set->count, sizeof(sk), compare_u64);
}

/* Run an iterator once; its 8-byte output records go into `set` (if any). */
static int run_iterator(struct bpf_program *prog, struct sk_set *set)
{
	struct bpf_link *link = bpf_program__attach_iter(prog, NULL);
	uint64_t records[512];
	int fd, err = 0;
	ssize_t got;

	if (!link)
		return -errno;
	fd = bpf_iter_create(bpf_link__fd(link));
	if (fd < 0) {
		err = fd;
		goto out;
	}
	while ((got = read(fd, records, sizeof(records))) > 0 && !err)
		if (set)
			err = sk_set_add(set, records, got / sizeof(records[0]));
	if (got < 0)
		err = -errno;
	close(fd);
out:
	bpf_link__destroy(link);
	return err;
}

#define MAX_NETNS 4096

struct netns_list {
	ino_t inodes[MAX_NETNS];
	char paths[MAX_NETNS][64];
	size_t count;
};

static void netns_add(struct netns_list *list, const char *path)
{
	struct stat st;

	if (list->count == MAX_NETNS || stat(path, &st))
		return;
	for (size_t i = 0; i < list->count; i++)
		if (list->inodes[i] == st.st_ino)
			return;
	list->inodes[list->count] = st.st_ino;
	snprintf(list->paths[list->count], sizeof(list->paths[0]), "%s", path);
	list->count++;
}

/* Every network namespace with a process in it, and the named ones. */
static void netns_collect(struct netns_list *list, const char *dir_path, const char *suffix)
{
	DIR *dir = opendir(dir_path);
	struct dirent *entry;
	char path[64];

	if (!dir)
		return;
	while ((entry = readdir(dir))) {
		if (entry->d_name[0] == '.' || (suffix[0] && !isdigit((unsigned char)entry->d_name[0])))
			continue;
		snprintf(path, sizeof(path), "%s/%.32s%s", dir_path, entry->d_name, suffix);
		netns_add(list, path);
	}
	closedir(dir);
}

typedef int (*netns_visit_fn)(struct agent *agent, void *ctx);

/*
 * A TCP iterator sees the sockets of its creator's network namespace only,
 * so visit each namespace (pods have their own) and come back.
 */
static int for_each_netns(struct agent *agent, netns_visit_fn visit, void *ctx)
{
	struct netns_list *list = calloc(1, sizeof(*list));
	int home = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), err = 0;

	if (!list || home < 0) {
		err = list ? -errno : -ENOMEM;
		goto out;
	}
	netns_add(list, "/proc/self/ns/net");
	netns_collect(list, "/proc", "/ns/net");
	netns_collect(list, "/var/run/netns", "");
	for (size_t i = 0; i < list->count && !err; i++) {
		int fd = open(list->paths[i], O_RDONLY | O_CLOEXEC);

		if (fd < 0)
			continue; /* the process exited meanwhile */
		if (setns(fd, CLONE_NEWNET) == 0)
			err = visit(agent, ctx);
		close(fd);
	}
	if (setns(home, CLONE_NEWNET)) {
		err = -errno;
		log_err("failed to return to the agent's network namespace: %s", strerror(-err));
	}
	log_debug("visited %zu network namespaces", list->count);
out:
	if (home >= 0)
		close(home);
	free(list);
	return err;
}

static int run_tcp_pass(struct agent *agent, enum adopt_pass pass, struct sk_set *set)
{
	agent->skel->bss->adopt_pass = pass;
	return run_iterator(agent->skel->progs.adopt_connections, set);
}

/* Listeners first: they tell servers' connections from clients'. */
static int adopt_in_current_netns(struct agent *agent, void *ctx)
{
	int err = run_tcp_pass(agent, PASS_LISTENERS, NULL);

	return err ?: run_tcp_pass(agent, PASS_ADOPT, NULL);
}

static int list_tcp_sockets(struct agent *agent, void *live)
{
	return run_tcp_pass(agent, PASS_LIST_SOCKETS, live);
}

static size_t count_adopted(struct agent *agent)
{
	struct conn_rows conns = { 0 };
	size_t adopted = 0;

	conn_rows_collect(bpf_map__fd(agent->skel->maps.conn_table), &conns);
	for (size_t i = 0; i < conns.count; i++)
		adopted += !!(conns.rows[i].conn.flags & KACCESS_CONN_ADOPTED);
	conn_rows_free(&conns);
	return adopted;
}

/* A socket's entries gone from conn_table and http_conns; 1 if it was tracked. */
static int forget_socket(struct agent *agent, uint64_t sk)
{
	int gone = bpf_map_delete_elem(bpf_map__fd(agent->skel->maps.conn_table), &sk) == 0;

	bpf_map_delete_elem(bpf_map__fd(agent->skel->maps.http_conns), &sk);
	return gone;
}

/*
 * The adoption took every established connection, kaccess's own too (the
 * Kubernetes API's, opened before the hooks): those are forgotten, as the
 * hooks leave out what kaccess opens later (rodata agent_tgid).
 */
static int forget_own_sockets(struct agent *agent, size_t *ret_forgotten)
{
	struct sk_set own = { 0 };
	int err;

	agent->skel->bss->list_files_tgid = getpid();
	err = run_iterator(agent->skel->progs.list_socket_files, &own);
	agent->skel->bss->list_files_tgid = 0;
	*ret_forgotten = 0;
	for (size_t i = 0; !err && i < own.count; i++)
		*ret_forgotten += forget_socket(agent, own.items[i]);
	free(own.items);
	return err;
}

int agent_adopt_existing(struct agent *agent)
{
	int err = for_each_netns(agent, adopt_in_current_netns, NULL);
	size_t own = 0;

	err = err ?: forget_own_sockets(agent, &own);
	if (err) {
		/* Not fatal: new connections are tracked; old ones stay unseen. */
		log_warn("failed to adopt connections established before start: %s", strerror(-err));
		return 0;
	}
	log_info("adopted %zu connections established before start (%zu of kaccess's own left out)",
		 count_adopted(agent), own);
	return 0;
}

void agent_exclude_own_listener(struct agent *agent, uint16_t port)
{
	struct stat netns;

	if (stat("/proc/self/ns/net", &netns)) {
		log_warn("kaccess's own network namespace is unknown (%s): connections to its "
			 "/metrics are tracked", strerror(errno));
		return;
	}
	agent->skel->bss->agent_listen_netns = (uint32_t)netns.st_ino;
	agent->skel->bss->agent_listen_port = port;
}

/*
 * Remove the entries of sockets that no longer exist: neither in any TCP
 * hash table (of any namespace) nor held open by any process. Entries newer
 * than the sweep's start are left for the next one.
 */
int agent_sweep_stale(struct agent *agent)
{
	int conn_fd = bpf_map__fd(agent->skel->maps.conn_table);
	uint64_t started_ns = monotonic_ns();
	struct sk_set live = { 0 };
	struct conn_rows conns = { 0 };
	size_t removed = 0;
	int err;

	err = for_each_netns(agent, list_tcp_sockets, &live);
	err = err ?: run_iterator(agent->skel->progs.list_socket_files, &live);
	err = err ?: conn_rows_collect(conn_fd, &conns);
	if (err) {
		log_warn("failed to sweep the connection table: %s", strerror(-err));
		goto out;
	}
	qsort(live.items, live.count, sizeof(live.items[0]), compare_u64);
	for (size_t i = 0; i < conns.count; i++) {
		const struct conn_row *row = &conns.rows[i];

		if (row->conn.start_ns >= started_ns || sk_set_has(&live, row->sk))
			continue;
		/* its HTTP state too (exchanges in flight on a vanished socket are lost with it) */
		removed += forget_socket(agent, row->sk);
	}
	__atomic_add_fetch(&agent->destroy_missed, removed, __ATOMIC_RELAXED); /* /metrics reads it */
	if (removed)
		log_debug("swept %zu connections whose end was not seen", removed);
out:
	free(live.items);
	conn_rows_free(&conns);
	return err;
}
