/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Names of the kernel's sk_buff drop reasons, the loss locations of
 * writes: read once from the running kernel's BTF (enum skb_drop_reason),
 * since their numbers differ between kernel versions.
 */
#ifndef KACCESS_DROP_REASONS_H
#define KACCESS_DROP_REASONS_H

#include <stddef.h>

#include "kaccess.h"

/* Reads the names from `btf_path` (empty: the running kernel's BTF). */
int drop_reasons_load(const char *btf_path);

/* "NETFILTER_DROP" for SKB_DROP_REASON_NETFILTER_DROP; "REASON_<n>" when unknown. */
const char *drop_reason_name(unsigned int reason, char *buf, size_t size);

void drop_reasons_free(void);

/*
 * A row's loss locations: `fn` once per reason slot in use, with the
 * reason's name, then once as "OTHER" for the packets of reasons past the
 * slots, if any.
 */
typedef void (*loss_location_fn)(void *ctx, const char *location, __u64 packets);
void loss_locations_foreach(const struct kaccess_agg_value *v, loss_location_fn fn, void *ctx);

#endif
