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

/* A row's lost packets whose reason found no slot (more reasons than slots). */
static inline __u64 loss_unslotted_packets(const struct kaccess_agg_value *v)
{
	__u64 slotted = 0;

	for (int i = 0; i < KACCESS_LOSS_REASON_SLOTS; i++)
		slotted += v->write_loss_reason_packets[i];
	return v->write_loss_packets - slotted;
}

#endif
