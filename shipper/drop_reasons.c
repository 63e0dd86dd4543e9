// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "drop_reasons.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/btf.h>

#define DROP_REASON_PREFIX "SKB_DROP_REASON_"

static char **reason_names;      /* indexed by enum skb_drop_reason value */
static unsigned int reason_count;

static int store_names(const struct btf *btf, const struct btf_type *type)
{
	const struct btf_enum *values = btf_enum(type);
	unsigned int max_value = 0;

	for (unsigned int i = 0; i < btf_vlen(type); i++)
		if (values[i].val >= 0 && (unsigned int)values[i].val > max_value)
			max_value = values[i].val;
	reason_names = calloc(max_value + 1, sizeof(*reason_names));
	if (!reason_names)
		return -ENOMEM;
	reason_count = max_value + 1;
	for (unsigned int i = 0; i < btf_vlen(type); i++) {
		const char *name = btf__name_by_offset(btf, values[i].name_off);

		if (values[i].val < 0 || !name)
			continue;
		if (strncmp(name, DROP_REASON_PREFIX, strlen(DROP_REASON_PREFIX)) == 0)
			name += strlen(DROP_REASON_PREFIX);
		reason_names[values[i].val] = strdup(name);
		if (!reason_names[values[i].val])
			return -ENOMEM;
	}
	return 0;
}

int drop_reasons_load(const char *btf_path)
{
	struct btf *btf;
	__s32 id;
	int err;

	drop_reasons_free();
	btf = btf_path && btf_path[0] ? btf__parse(btf_path, NULL) : btf__load_vmlinux_btf();
	if (!btf)
		return -errno ?: -ENOENT;
	id = btf__find_by_name_kind(btf, "skb_drop_reason", BTF_KIND_ENUM);
	err = id < 0 ? -ENOENT : store_names(btf, btf__type_by_id(btf, id));
	btf__free(btf);
	if (err)
		drop_reasons_free();
	return err;
}

const char *drop_reason_name(unsigned int reason, char *buf, size_t size)
{
	if (reason < reason_count && reason_names[reason])
		return reason_names[reason];
	snprintf(buf, size, "REASON_%u", reason);
	return buf;
}

void drop_reasons_free(void)
{
	for (unsigned int i = 0; i < reason_count; i++)
		free(reason_names[i]);
	free(reason_names);
	reason_names = NULL;
	reason_count = 0;
}

void loss_locations_foreach(const struct kaccess_agg_value *v, loss_location_fn fn, void *ctx)
{
	__u64 slotted = 0;
	char unknown[32];

	for (int i = 0; i < KACCESS_LOSS_REASON_SLOTS; i++) {
		if (!v->write_loss_reason[i])
			continue;
		fn(ctx, drop_reason_name(v->write_loss_reason[i], unknown, sizeof(unknown)),
		   v->write_loss_reason_packets[i]);
		slotted += v->write_loss_reason_packets[i];
	}
	if (v->write_loss_packets > slotted)
		fn(ctx, "OTHER", v->write_loss_packets - slotted);
}
