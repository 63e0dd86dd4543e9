// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Who a row's two sides are, for OAP: the local side must be a pod in a
 * namespace the policy keeps; the peer is a pod, a service (ClusterIP
 * without a known backend), or Unknown. A loopback peer is the local pod.
 */
#include <errno.h>

#include "identity.h"

static int resolve_local(struct k8s_identity_ctx *ctx, uint64_t cgroup_id, struct k8s_identity *id)
{
	if (k8s_resolve_local_id(ctx->k8s, cgroup_id, id) < 0)
		return -ENOENT;
	if (id->kind != K8S_KIND_POD || id->excluded)
		return -ENOENT;
	return 0;
}

static int local_party(void *opaque, uint64_t cgroup_id, struct rollup_party *ret_party)
{
	struct k8s_identity_ctx *ctx = opaque;

	if (resolve_local(ctx, cgroup_id, &ctx->local) < 0)
		return -ENOENT;
	*ret_party = (struct rollup_party){ ctx->local.service, ctx->local.instance };
	return 0;
}

static int peer_party(void *opaque, uint64_t cgroup_id, const uint8_t *addr16, uint16_t port,
		      struct rollup_party *ret_party)
{
	struct k8s_identity_ctx *ctx = opaque;
	struct k8s_identity *id = &ctx->peer;

	if (k8s_resolve_peer(ctx->k8s, addr16, port, NULL, id) < 0)
		return -ENOENT;
	if (id->kind == K8S_KIND_LOOPBACK && resolve_local(ctx, cgroup_id, id) < 0)
		return -ENOENT;
	if (id->kind != K8S_KIND_POD && id->kind != K8S_KIND_SERVICE)
		return -ENOENT; /* node addresses and the rest: OAP's Unknown */
	*ret_party = (struct rollup_party){ id->service, id->instance };
	return 0;
}

void identity_source_from_k8s(struct k8s_identity_ctx *ctx, struct k8s *k8s,
			      struct identity_source *ret_source)
{
	ctx->k8s = k8s;
	*ret_source = (struct identity_source){ .local = local_party, .peer = peer_party, .ctx = ctx };
}
