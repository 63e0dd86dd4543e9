// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

#include "strbuf.h"

static bool strbuf_reserve(struct strbuf *buf, size_t extra)
{
	size_t wanted = buf->len + extra + 1, capacity = buf->capacity ? buf->capacity : 4096;
	char *bigger;

	if (wanted <= buf->capacity)
		return true;
	while (capacity < wanted)
		capacity *= 2;
	bigger = realloc(buf->text, capacity);
	if (!bigger) {
		buf->failed = true;
		return false;
	}
	buf->text = bigger;
	buf->capacity = capacity;
	return true;
}

void strbuf_printf(struct strbuf *buf, const char *fmt, ...)
{
	va_list ap;
	int needed;

	va_start(ap, fmt);
	needed = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (needed < 0 || !strbuf_reserve(buf, needed))
		return;
	va_start(ap, fmt);
	vsnprintf(buf->text + buf->len, needed + 1, fmt, ap);
	va_end(ap);
	buf->len += needed;
}

void strbuf_reset(struct strbuf *buf)
{
	buf->len = 0;
	buf->failed = false;
	if (buf->text)
		buf->text[0] = '\0';
}

void strbuf_free(struct strbuf *buf)
{
	free(buf->text);
	buf->text = NULL;
	buf->len = buf->capacity = 0;
}

void strbuf_label_value(struct strbuf *out, const char *value)
{
	strbuf_printf(out, "\"");
	for (const char *c = value; *c; c++) {
		if (*c == '\\' || *c == '"')
			strbuf_printf(out, "\\%c", *c);
		else if (*c == '\n')
			strbuf_printf(out, "\\n");
		else
			strbuf_printf(out, "%c", *c);
	}
	strbuf_printf(out, "\"");
}
