// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Any protobuf-c message as JSON, from its descriptor: the protobuf JSON
 * mapping with .proto field names, as Python's
 * json_format.MessageToDict(preserving_proto_field_name=True) writes it, so
 * the fake OAP and the Python decoder can be compared line by line.
 */
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "oap.h"
#include "pb_pack.h"

static void write_json_string(FILE *out, const char *text)
{
	fputc('"', out);
	for (const unsigned char *c = (const unsigned char *)text; c && *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(out, "\\%c", *c);
		else if (*c < 0x20)
			fprintf(out, "\\u%04x", *c);
		else
			fputc(*c, out);
	}
	fputc('"', out);
}

static void write_double(FILE *out, double value)
{
	if (isnan(value))
		fputs("\"NaN\"", out);
	else if (isinf(value))
		fputs(value > 0 ? "\"Infinity\"" : "\"-Infinity\"", out);
	else
		fprintf(out, "%.17g", value);
}

static void write_enum(FILE *out, const ProtobufCEnumDescriptor *desc, int value)
{
	const ProtobufCEnumValue *named = protobuf_c_enum_descriptor_get_value(desc, value);

	if (named)
		write_json_string(out, named->name);
	else
		fprintf(out, "%d", value);
}

static int write_message(FILE *out, const ProtobufCMessage *msg);

/* One value of a field; `member` points at it (a repeated field's element). */
static int write_value(FILE *out, const ProtobufCFieldDescriptor *field, const void *member)
{
	switch (field->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_SFIXED32:
		fprintf(out, "%" PRId32, *(const int32_t *)member);
		return 0;
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_FIXED32:
		fprintf(out, "%" PRIu32, *(const uint32_t *)member);
		return 0;
	/* 64-bit integers are strings in the JSON mapping (doubles lose digits). */
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_SFIXED64:
		fprintf(out, "\"%" PRId64 "\"", *(const int64_t *)member);
		return 0;
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
		fprintf(out, "\"%" PRIu64 "\"", *(const uint64_t *)member);
		return 0;
	case PROTOBUF_C_TYPE_FLOAT:
		write_double(out, *(const float *)member);
		return 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		write_double(out, *(const double *)member);
		return 0;
	case PROTOBUF_C_TYPE_BOOL:
		fputs(*(const protobuf_c_boolean *)member ? "true" : "false", out);
		return 0;
	case PROTOBUF_C_TYPE_ENUM:
		write_enum(out, field->descriptor, *(const int *)member);
		return 0;
	case PROTOBUF_C_TYPE_STRING:
		write_json_string(out, *(char *const *)member);
		return 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return write_message(out, *(ProtobufCMessage *const *)member);
	case PROTOBUF_C_TYPE_BYTES:
		break; /* no bytes field in the SkyWalking messages kaccess uses */
	}
	return -EINVAL;
}

/* proto3 leaves a field at its default off the JSON, unless a oneof chose it. */
static bool field_present(const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field)
{
	const char *base = (const char *)msg;
	const void *member = base + field->offset;
	static const char zero[16];

	if (field->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
		return *(const uint32_t *)(base + field->quantifier_offset) == field->id;
	if (field->label == PROTOBUF_C_LABEL_REPEATED)
		return *(const size_t *)(base + field->quantifier_offset) > 0;
	if (field->type == PROTOBUF_C_TYPE_STRING) {
		const char *text = *(char *const *)member;

		return text && text[0];
	}
	if (field->type == PROTOBUF_C_TYPE_MESSAGE)
		return *(void *const *)member != NULL;
	return memcmp(member, zero, pb_value_size(field)) != 0;
}

static int write_field(FILE *out, const ProtobufCMessage *msg, const ProtobufCFieldDescriptor *field)
{
	const char *member = (const char *)msg + field->offset;
	size_t count, size;
	int ret = 0;

	write_json_string(out, field->name);
	fputc(':', out);
	if (field->label != PROTOBUF_C_LABEL_REPEATED)
		return write_value(out, field, member);
	count = *(const size_t *)((const char *)msg + field->quantifier_offset);
	size = pb_value_size(field);
	fputc('[', out);
	for (size_t i = 0; i < count && !ret; i++) {
		if (i)
			fputc(',', out);
		ret = write_value(out, field, *(char *const *)member + i * size);
	}
	fputc(']', out);
	return ret;
}

static int write_message(FILE *out, const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *desc = msg->descriptor;
	bool first = true;
	int ret = 0;

	fputc('{', out);
	/* In field-number order, as Python prints them. */
	for (unsigned int i = 0; i < desc->n_fields && !ret; i++) {
		const ProtobufCFieldDescriptor *field = &desc->fields[i];

		if (!field_present(msg, field))
			continue;
		if (!first)
			fputc(',', out);
		first = false;
		ret = write_field(out, msg, field);
	}
	fputc('}', out);
	return ret;
}

int oap_message_write_json(FILE *out, const ProtobufCMessage *msg)
{
	int ret = write_message(out, msg);

	if (ret)
		return ret;
	return ferror(out) ? -EIO : 0;
}
