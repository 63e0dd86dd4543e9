/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A growable text buffer for responses and reports. */
#ifndef KACCESS_STRBUF_H
#define KACCESS_STRBUF_H

#include <stdbool.h>
#include <stddef.h>

struct strbuf {
	char *text;
	size_t len, capacity;
	bool failed; /* an allocation failed: the text is incomplete */
};

void strbuf_printf(struct strbuf *buf, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A Prometheus label value: quoted, with \\, \" and \n escaped. */
void strbuf_label_value(struct strbuf *buf, const char *value);
void strbuf_reset(struct strbuf *buf);
void strbuf_free(struct strbuf *buf);

#endif
