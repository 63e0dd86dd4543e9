/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Netfilter links in every watched network namespace: the L3 and netfilter
 * windows of bpf/netfilter.bpf.c. A namespace is watched while a process of
 * the watched cgroup (or any process, without one) lives in it; its links
 * are created when it is first seen and closed when its last such process
 * is gone.
 */
#ifndef KACCESS_NETNS_LINKS_H
#define KACCESS_NETNS_LINKS_H

#include <stddef.h>
#include <stdint.h>

struct netns_links;

/*
 * `first_fd`/`last_fd`: the loaded nf_first and nf_last programs. `cgroup_dir`
 * is the watched cgroup v2 directory (absolute), "" for every process.
 */
int netns_links_new(int first_fd, int last_fd, const char *cgroup_dir, struct netns_links **ret);

/* Attach in namespaces that appeared, release those that are gone. */
void netns_links_scan(struct netns_links *links);

/* Namespaces with links now, and link creations that failed so far. */
size_t netns_links_count(const struct netns_links *links);
uint64_t netns_links_failures(const struct netns_links *links);

/* /metrics series (metrics_render_fn): namespaces linked, released, failed. */
struct strbuf;
void netns_links_render_metrics(void *ctx, struct strbuf *out);

void netns_links_free(struct netns_links *links);

#endif
