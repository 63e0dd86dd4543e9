// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)

#include <string.h>

#include "json_writer.h"

/*
 * One thread, the event loop, writes each sink's stream, so the stdio
 * calls here skip the stream lock (at 20,000 access-log records a second,
 * a locked call per character was most of the shipper's CPU).
 */

void jw_init(struct json_writer *w, FILE *out)
{
	w->out = out;
	w->depth = 0;
	w->need_comma[0] = false;
}

static void jw_separate(struct json_writer *w)
{
	if (w->need_comma[w->depth])
		putc_unlocked(',', w->out);
	w->need_comma[w->depth] = true;
}

void jw_object_begin(struct json_writer *w)
{
	jw_separate(w);
	putc_unlocked('{', w->out);
	if (w->depth + 1 < JSON_MAX_DEPTH)
		w->depth++;
	w->need_comma[w->depth] = false;
}

void jw_object_end(struct json_writer *w)
{
	putc_unlocked('}', w->out);
	if (w->depth > 0)
		w->depth--;
}

void jw_array_begin(struct json_writer *w)
{
	jw_separate(w);
	putc_unlocked('[', w->out);
	if (w->depth + 1 < JSON_MAX_DEPTH)
		w->depth++;
	w->need_comma[w->depth] = false;
}

void jw_array_end(struct json_writer *w)
{
	putc_unlocked(']', w->out);
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
		fwrite_unlocked(escape, 1, 2, w->out);
		return;
	}
	fwrite_unlocked(escape, 1, sizeof(escape), w->out);
}

static void jw_quoted(struct json_writer *w, const char *text)
{
	const unsigned char *c = (const unsigned char *)text;

	putc_unlocked('"', w->out);
	while (*c) {
		const unsigned char *run = c;

		while (*c && !needs_escape(*c))
			c++;
		if (c > run) /* the plain run at once */
			fwrite_unlocked(run, 1, (size_t)(c - run), w->out);
		if (*c)
			jw_escaped(w, *c++);
	}
	putc_unlocked('"', w->out);
}

/* Keys are the code's own ASCII names: written as they are, without the escape scan. */
void jw_key(struct json_writer *w, const char *key)
{
	jw_separate(w);
	putc_unlocked('"', w->out);
	fwrite_unlocked(key, 1, strlen(key), w->out);
	putc_unlocked('"', w->out);
	putc_unlocked(':', w->out);
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
		fwrite_unlocked("null", 1, 4, w->out);
	jw_value_done(w);
}

void jw_u64(struct json_writer *w, uint64_t value)
{
	jw_separate(w);
	char digits[20], *start = digits + sizeof(digits);

	do
		*--start = (char)('0' + value % 10);
	while (value /= 10);
	fwrite_unlocked(start, 1, (size_t)(digits + sizeof(digits) - start), w->out);
	jw_value_done(w);
}

void jw_bool(struct json_writer *w, bool value)
{
	jw_separate(w);
	if (value)
		fwrite_unlocked("true", 1, 4, w->out);
	else
		fwrite_unlocked("false", 1, 5, w->out);
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
	putc_unlocked('\n', w->out); /* the event loop flushes once a pass (loop_run) */
	w->depth = 0;
	w->need_comma[0] = false;
}
