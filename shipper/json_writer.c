// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)

#include <string.h>

#include "json_writer.h"

/*
 * A line is built in the writer and goes to the stream with one call at its
 * end: at 60,000 access-log records a second, one stdio call per token was
 * most of the shipper's JSON cost. One thread, the event loop, writes each
 * sink's stream, so that call skips the stream lock.
 */

void jw_init(struct json_writer *w, FILE *out)
{
	w->out = out;
	w->depth = 0;
	w->need_comma[0] = false;
	w->used = 0;
}

/* The line so far, to the stream. */
static void jw_flush(struct json_writer *w)
{
	if (w->used)
		fwrite_unlocked(w->line, 1, w->used, w->out);
	w->used = 0;
}

static void jw_put(struct json_writer *w, const void *bytes, size_t len)
{
	if (w->used + len > sizeof(w->line)) {
		jw_flush(w);
		if (len > sizeof(w->line)) {
			fwrite_unlocked(bytes, 1, len, w->out);
			return;
		}
	}
	memcpy(w->line + w->used, bytes, len);
	w->used += len;
}

static void jw_putc(struct json_writer *w, char c)
{
	if (w->used == sizeof(w->line))
		jw_flush(w);
	w->line[w->used++] = c;
}

static void jw_separate(struct json_writer *w)
{
	if (w->need_comma[w->depth])
		jw_putc(w, ',');
	w->need_comma[w->depth] = true;
}

void jw_object_begin(struct json_writer *w)
{
	jw_separate(w);
	jw_putc(w, '{');
	if (w->depth + 1 < JSON_MAX_DEPTH)
		w->depth++;
	w->need_comma[w->depth] = false;
}

void jw_object_end(struct json_writer *w)
{
	jw_putc(w, '}');
	if (w->depth > 0)
		w->depth--;
}

void jw_array_begin(struct json_writer *w)
{
	jw_separate(w);
	jw_putc(w, '[');
	if (w->depth + 1 < JSON_MAX_DEPTH)
		w->depth++;
	w->need_comma[w->depth] = false;
}

void jw_array_end(struct json_writer *w)
{
	jw_putc(w, ']');
	if (w->depth > 0)
		w->depth--;
}

static bool needs_escape(unsigned char c)
{
	return c == '"' || c == '\\' || c < 0x20 || c >= 0x7f; /* comm and paths may hold any byte */
}

static void jw_escaped(struct json_writer *w, unsigned char c)
{
	static const char hex[] = "0123456789abcdef";
	char escape[6] = { '\\', 'u', '0', '0', hex[c >> 4], hex[c & 0xf] };

	if (c == '"' || c == '\\') {
		escape[1] = (char)c;
		jw_put(w, escape, 2);
		return;
	}
	jw_put(w, escape, sizeof(escape));
}

static void jw_quoted(struct json_writer *w, const char *text)
{
	const unsigned char *c = (const unsigned char *)text;

	jw_putc(w, '"');
	while (*c) {
		const unsigned char *run = c;

		while (*c && !needs_escape(*c))
			c++;
		if (c > run) /* the plain run at once */
			jw_put(w, run, (size_t)(c - run));
		if (*c)
			jw_escaped(w, *c++);
	}
	jw_putc(w, '"');
}

/* Keys are the code's own ASCII names: written as they are, without the escape scan. */
void jw_key(struct json_writer *w, const char *key)
{
	jw_separate(w);
	jw_putc(w, '"');
	jw_put(w, key, strlen(key));
	jw_putc(w, '"');
	jw_putc(w, ':');
	w->need_comma[w->depth] = false; /* the value follows without a comma */
}

static void jw_value_done(struct json_writer *w)
{
	w->need_comma[w->depth] = true;
}

void jw_string(struct json_writer *w, const char *value)
{
	jw_separate(w);
	if (value)
		jw_quoted(w, value);
	else
		jw_put(w, "null", 4);
	jw_value_done(w);
}

void jw_u64(struct json_writer *w, uint64_t value)
{
	jw_separate(w);
	char digits[20], *start = digits + sizeof(digits);

	do
		*--start = (char)('0' + value % 10);
	while (value /= 10);
	jw_put(w, start, (size_t)(digits + sizeof(digits) - start));
	jw_value_done(w);
}

void jw_bool(struct json_writer *w, bool value)
{
	jw_separate(w);
	if (value)
		jw_put(w, "true", 4);
	else
		jw_put(w, "false", 5);
	jw_value_done(w);
}

void jw_string_field(struct json_writer *w, const char *key, const char *value)
{
	jw_key(w, key);
	jw_string(w, value);
}

void jw_u64_field(struct json_writer *w, const char *key, uint64_t value)
{
	jw_key(w, key);
	jw_u64(w, value);
}

void jw_bool_field(struct json_writer *w, const char *key, bool value)
{
	jw_key(w, key);
	jw_bool(w, value);
}

void jw_line_end(struct json_writer *w)
{
	jw_putc(w, '\n');
	jw_flush(w); /* the stream is flushed once a pass by the event loop (loop_run) */
	w->depth = 0;
	w->need_comma[0] = false;
}
