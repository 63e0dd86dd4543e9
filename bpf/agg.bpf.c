// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The flush of write combining (bpf/agg.bpf.h): the sums each CPU holds
 * for its row keys, into their rows.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

#include "agg.bpf.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * Run by the shipper on every CPU (BPF_PROG_TEST_RUN on that CPU) before
 * a drain and at exit: every slot's sums go to their rows. Returns 1 when
 * it interrupted a program that holds the slots; the shipper runs it again.
 */
SEC("raw_tp")
int agg_flush_cpu(void *ctx)
{
	struct agg_cpu *cpu = agg_this_cpu();

	if (!cpu)
		return 0;
	if (cpu->busy)
		return 1;
	cpu->busy = 1;
	for (int i = 0; i < AGG_COMBINE_SLOTS; i++) {
		struct agg_combine *slot = &cpu->combine[i];

		if (!slot->bucket)
			continue;
		agg_sums_flush(&slot->sums, &slot->agg, slot->bucket);
		slot->bucket = 0;
	}
	cpu->busy = 0;
	return 0;
}
