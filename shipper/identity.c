// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>

#include "identity.h"

int identity_local_pod(struct k8s *k8s, uint64_t cgroup_id, struct k8s_identity *ret_local)
{
	if (k8s_resolve_local_id(k8s, cgroup_id, ret_local) < 0)
		return -ENOENT;
	if (ret_local->kind != K8S_KIND_POD)
		return -ENOENT;
	return ret_local->excluded ? -EPERM : 0;
}

const struct k8s_identity *identity_peer(struct k8s *k8s, const struct k8s_identity *local,
					 const uint8_t *addr16, uint16_t port,
					 const struct k8s_tuple *tuple, struct k8s_identity *ret_peer)
{
	if (k8s_resolve_peer(k8s, addr16, port, tuple, ret_peer) < 0)
		return NULL;
	if (ret_peer->kind == K8S_KIND_LOOPBACK)
		return local;
	if (ret_peer->kind != K8S_KIND_POD && ret_peer->kind != K8S_KIND_SERVICE)
		return NULL; /* node addresses and the rest: OAP's Unknown */
	return ret_peer;
}

static int local_party(void *opaque, uint64_t cgroup_id, struct rollup_party *ret_party)
{
	struct k8s_identity_ctx *ctx = opaque;
	int err;

	/* -EPERM (excluded) goes through: the rollup counts those rows apart */
	err = identity_local_pod(ctx->k8s, cgroup_id, &ctx->local);
	if (err < 0)
		return err;
	*ret_party = (struct rollup_party){ ctx->local.service, ctx->local.instance };
	return 0;
}

/* The row's local side was just looked up by local_party, into ctx->local. */
static int peer_party(void *opaque, const uint8_t *addr16, uint16_t port,
		      struct rollup_party *ret_party)
{
	struct k8s_identity_ctx *ctx = opaque;
	const struct k8s_identity *peer;

	peer = identity_peer(ctx->k8s, &ctx->local, addr16, port, NULL, &ctx->peer);
	if (!peer)
		return -ENOENT;
	*ret_party = (struct rollup_party){ peer->service, peer->instance };
	return 0;
}

void identity_source_from_k8s(struct k8s_identity_ctx *ctx, struct k8s *k8s,
			      struct identity_source *ret_source)
{
	ctx->k8s = k8s;
	*ret_source = (struct identity_source){ .local = local_party, .peer = peer_party, .ctx = ctx };
}
