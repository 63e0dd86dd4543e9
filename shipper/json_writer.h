/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* A streaming JSON writer for NDJSON output: one object per line. */
#ifndef KACCESS_JSON_WRITER_H
#define KACCESS_JSON_WRITER_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 8
#define JSON_LINE_BYTES 4096 /* a line is built here and written at its end (longer: in pieces) */

struct json_writer {
	FILE *out;
	int depth;
	bool need_comma[JSON_MAX_DEPTH];
	size_t used;
	char line[JSON_LINE_BYTES];
};

void jw_init(struct json_writer *w, FILE *out);
void jw_object_begin(struct json_writer *w);
void jw_object_end(struct json_writer *w);
void jw_array_begin(struct json_writer *w);
void jw_array_end(struct json_writer *w);
void jw_key(struct json_writer *w, const char *key);
void jw_string(struct json_writer *w, const char *value); /* NULL writes null */
void jw_u64(struct json_writer *w, uint64_t value);
void jw_bool(struct json_writer *w, bool value);

void jw_string_field(struct json_writer *w, const char *key, const char *value);
void jw_u64_field(struct json_writer *w, const char *key, uint64_t value);
void jw_bool_field(struct json_writer *w, const char *key, bool value);

/*
 * End the current top-level object's line and hand it to the stream: a
 * line is only written here (or in pieces, when longer than
 * JSON_LINE_BYTES), so every line written must end with this call. The
 * stream is flushed by its owner: the event loop once a pass (every 200 ms
 * at most), other commands at exit.
 */
void jw_line_end(struct json_writer *w);

#endif
