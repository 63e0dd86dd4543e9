/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The Kubernetes resolver as the rollup's identity source. */
#ifndef KACCESS_IDENTITY_H
#define KACCESS_IDENTITY_H

#include "k8s/k8s.h"
#include "rollup/rows.h"

struct k8s_identity_ctx {
	struct k8s *k8s;
	struct k8s_identity local, peer; /* the names of the last lookups */
};

/* Names stay valid until the next lookup of the same side. */
void identity_source_from_k8s(struct k8s_identity_ctx *ctx, struct k8s *k8s,
			      struct identity_source *ret_source);

#endif
