/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Who a row's or a connection's two sides are, for OAP: the local side
 * must be a pod in a namespace the policy keeps; the peer is a pod, a
 * service (ClusterIP without a known backend), or Unknown. A loopback peer
 * is the local pod. A peer in an excluded namespace is still named: the
 * kept pod's traffic with it is real.
 */
#ifndef KACCESS_IDENTITY_H
#define KACCESS_IDENTITY_H

#include "k8s/k8s.h"
#include "rollup/rows.h"

/*
 * The pod of a local cgroup that the namespace policy keeps: 0; -ENOENT
 * when the cgroup is no known pod, -EPERM when the policy excludes the
 * pod's namespace (its rows are dropped and counted apart).
 */
int identity_local_pod(struct k8s *k8s, uint64_t cgroup_id, struct k8s_identity *ret_local);

/*
 * The peer at `addr16`:`port` of the local pod `local`: `ret_peer` when it
 * is a pod or a service, `local` over loopback, NULL for anything else
 * (OAP's Unknown). `tuple` (may be NULL) lets conntrack name a DNAT backend.
 */
const struct k8s_identity *identity_peer(struct k8s *k8s, const struct k8s_identity *local,
					 const uint8_t *addr16, uint16_t port,
					 const struct k8s_tuple *tuple, struct k8s_identity *ret_peer);

struct k8s_identity_ctx {
	struct k8s *k8s;
	struct k8s_identity local, peer; /* the names of the last lookups */
};

/* The rollup's identity source; names stay valid until the next lookup of the same side. */
void identity_source_from_k8s(struct k8s_identity_ctx *ctx, struct k8s *k8s,
			      struct identity_source *ret_source);

#endif
