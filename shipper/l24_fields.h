/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The L2-L4 fields of an aggregate row, once: their names, which
 * measurement (enum kaccess_l24_measure) fills them, and which OAP field
 * reads them. The JSON output and the rollup both walk this table.
 */
#ifndef KACCESS_L24_FIELDS_H
#define KACCESS_L24_FIELDS_H

#include <stddef.h>
#include <stdint.h>

#include "kaccess.h"
#include "rollup/metric_plan.h"

struct l24_field {
	const char *name;          /* as struct kaccess_agg_value and the JSON lines name it */
	size_t offset;             /* in struct kaccess_agg_value */
	unsigned int measure;      /* the enum kaccess_l24_measure bit that fills it */
	enum rollup_field rollup;  /* the OAP field it is; ROLLUP_F_NONE: none */
};

extern const struct l24_field l24_fields[];
extern const size_t l24_field_count;

static inline uint64_t l24_field_value(const struct l24_field *field, const struct kaccess_agg_value *row)
{
	return *(const __u64 *)((const char *)row + field->offset);
}

#endif
