// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <inttypes.h>

#include "json_writer.h"

void jw_init(struct json_writer *w, FILE *out)
{
	w->out = out;
	w->depth = 0;
	w->need_comma[0] = false;
}

static void jw_separate(struct json_writer *w)
{
	if (w->need_comma[w->depth])
		fputc(',', w->out);
	w->need_comma[w->depth] = true;
}

void jw_object_begin(struct json_writer *w)
{
	jw_separate(w);
	fputc('{', w->out);
	if (w->depth + 1 < JSON_MAX_DEPTH)
		w->depth++;
	w->need_comma[w->depth] = false;
}

void jw_object_end(struct json_writer *w)
{
	fputc('}', w->out);
	if (w->depth > 0)
		w->depth--;
}

void jw_array_begin(struct json_writer *w)
{
	jw_separate(w);
	fputc('[', w->out);
	if (w->depth + 1 < JSON_MAX_DEPTH)
		w->depth++;
	w->need_comma[w->depth] = false;
}

void jw_array_end(struct json_writer *w)
{
	fputc(']', w->out);
	if (w->depth > 0)
		w->depth--;
}

static void jw_quoted(struct json_writer *w, const char *text)
{
	fputc('"', w->out);
	for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(w->out, "\\%c", *c);
		else if (*c < 0x20 || *c >= 0x7f) /* comm and paths may hold any byte */
			fprintf(w->out, "\\u%04x", *c);
		else
			fputc(*c, w->out);
	}
	fputc('"', w->out);
}

void jw_key(struct json_writer *w, const char *key)
{
	jw_separate(w);
	jw_quoted(w, key);
	fputc(':', w->out);
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
		fputs("null", w->out);
	jw_value_done(w);
}

void jw_u64(struct json_writer *w, uint64_t value)
{
	jw_separate(w);
	fprintf(w->out, "%" PRIu64, value);
	jw_value_done(w);
}

void jw_bool(struct json_writer *w, bool value)
{
	jw_separate(w);
	fputs(value ? "true" : "false", w->out);
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
	fputc('\n', w->out);
	fflush(w->out);
	w->depth = 0;
	w->need_comma[0] = false;
}
