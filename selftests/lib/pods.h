/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Test "pods": a network namespace plus a cgroup v2 directory shaped like
 * kubelet's (kubepods/burstable/pod<uid>/<container-id>). Two pods are
 * joined by a veth pair with IPv4 and IPv6 addresses.
 */
#ifndef KACCESS_SELFTEST_PODS_H
#define KACCESS_SELFTEST_PODS_H

#include <limits.h>
#include <stdint.h>
#include <sys/types.h>

/* Everything a test creates lives under these names, for cleanup. */
#define SELFTEST_CGROUP_ROOT "kaccess-selftest"
#define SELFTEST_NETNS_PREFIX "kat-"
#define SELFTEST_WATCHED_SUBTREE SELFTEST_CGROUP_ROOT "/kubepods"

struct pod {
	char netns[32];
	char cgroup_dir[PATH_MAX]; /* absolute path on the cgroup2 mount */
	uint64_t cgroup_id;        /* inode of cgroup_dir, as BPF sees it */
	char ipv4[16];
	char ipv6[48];
};

struct pod_pair {
	struct pod client; /* namespace kat-<tag>-c */
	struct pod server; /* namespace kat-<tag>-s */
	char node_netns[32]; /* kat-<tag>-n once pod_pair_route_via_node() made it; else "" */
};

/* Create both namespaces, the veth pair and both cgroups. */
int pod_pair_create(struct pod_pair *pair, const char *tag, int subnet);

/* The same, named and numbered after the calling test process. */
int pod_pair_create_for_test(struct pod_pair *pair, const char *prefix);

/*
 * Join the pods through a third namespace, the "node" (kat-<tag>-n), as
 * Kubernetes joins the pods of one node: each pod's eth0 becomes a veth to
 * the node, which routes and forwards between them (its veths to-client
 * and to-server). The pods keep their addresses, as /32 and /128 behind a
 * gateway: the node's <subnet>.254 and ::fe towards the client, .253 and
 * ::fd towards the server. pod_pair_destroy() removes the node too.
 */
int pod_pair_route_via_node(struct pod_pair *pair);

/* Kill what runs in the cgroups, remove cgroups and namespaces. NULL-safe. */
void pod_pair_destroy(struct pod_pair *pair);

/*
 * Another cgroup for processes in an existing pod's network namespace:
 * `parent` is relative to the selftest root, e.g. "kubepods/besteffort"
 * (watched) or "system.slice" (not watched).
 */
int pod_clone_in_cgroup(struct pod *clone, const struct pod *netns_of, const char *parent,
			const char *tag);
void pod_remove_cgroup(struct pod *pod);

/* Absolute path of the watched subtree, for kaccess --cgroup. */
int selftest_watched_cgroup(char *ret_path, size_t len);

/* Run fn(arg) in a child that joined the pod's cgroup and namespace. */
pid_t pod_spawn(const struct pod *pod, int (*fn)(void *arg), void *arg);

/* exec argv in the pod; stdout/stderr go to `output_path` (or /dev/null). */
pid_t pod_exec(const struct pod *pod, char *const argv[], const char *output_path);

/* Wait for a child; its exit status, or -1 when it died by a signal. */
int child_wait(pid_t pid);

/* Run a shell command, quiet; its exit status. */
int run_quiet(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* 0 once a TCP socket listens on `port` in `netns`, -1 after timeout_ms. */
int netns_wait_listening(const char *netns, int port, int timeout_ms);

/*
 * Wait until no TCP connection on `port` in `netns` can still send (only
 * TIME_WAIT or nothing is left, so no FIN can be retransmitted later);
 * 0, or -1 after timeout_ms.
 */
int netns_wait_tcp_closed(const char *netns, int port, int timeout_ms);

/* Write all of data (blocking), or -1. */
int fd_write_all(int fd, const void *data, size_t len);

/* Remove everything a selftest may have left behind (also used by run.sh). */
void selftest_cleanup_leftovers(void);

#endif
