/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * One bucket's flows as OAP meters, in the names and labels the rule files
 * of config/oap read (config/oap/meters.tsv): per flow, counts and sums
 * labelled svc, pod (the local side), src_svc, src_pod, dst_svc, dst_pod
 * (OAP's direction), side and component; per endpoint, svc and endpoint.
 */
#ifndef KACCESS_OAP_METERS_H
#define KACCESS_OAP_METERS_H

#include "oap/oap.h"
#include "rollup/rollup.h"

struct flow_meters;

int flow_meters_new(struct flow_meters **ret_meters);
void flow_meters_free(struct flow_meters *meters);

/* A rollup_flow_fn: keeps a copy of each flow the rules keep. */
int flow_meters_observe(void *ctx, const struct rollup_flow *flow,
			const struct rollup_relation *relation);

/* Every kept flow's meters into `batch`; components from `rollup`. 0 or -errno. */
int flow_meters_build(struct flow_meters *meters, struct rollup *rollup,
		      struct oap_meter_batch *batch);

#endif
