// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The encoder of pb_pack.h. Fields are written last to first and each
 * value before its tag, so the bytes read first to last are in the order
 * protobuf-c writes them; presence follows protobuf-c's rules exactly
 * (test_oap compares the two byte for byte).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "pb_pack.h"

#define WRITER_MIN_BYTES 4096
/* A scratch writer grown past this by one big message (a meter collection
 * reaches 1 MiB) is given back rather than kept resident. */
#define SCRATCH_KEEP_BYTES (64 * 1024)

enum wire_type {
	WIRE_VARINT = 0,
	WIRE_64BIT = 1,
	WIRE_LENGTH_PREFIXED = 2,
	WIRE_32BIT = 5,
};

static __attribute__((noinline)) int grow(struct pb_writer *w, size_t need)
{
	size_t capacity = w->capacity ? w->capacity : WRITER_MIN_BYTES;
	uint8_t *buf;

	while (capacity - w->used < need) {
		if (capacity > SIZE_MAX / 2)
			return -ENOMEM;
		capacity *= 2;
	}
	buf = malloc(capacity);
	if (!buf)
		return -ENOMEM;
	if (w->used)
		memcpy(buf + capacity - w->used, pb_writer_data(w), w->used);
	free(w->buf);
	w->buf = buf;
	w->capacity = capacity;
	return 0;
}

/* Room for `len` bytes in front of what `w` holds; NULL when out of memory. */
static inline uint8_t *prepend(struct pb_writer *w, size_t len)
{
	if (__builtin_expect(w->capacity - w->used < len, 0) && grow(w, len))
		return NULL;
	w->used += len;
	return w->buf + w->capacity - w->used;
}

size_t pb_varint_bytes(uint64_t value)
{
	size_t size = 1;

	while (value >= 0x80) {
		value >>= 7;
		size++;
	}
	return size;
}

uint8_t *pb_varint_at(uint8_t *p, uint64_t value)
{
	while (value >= 0x80) {
		*p++ = (uint8_t)(value | 0x80);
		value >>= 7;
	}
	*p++ = (uint8_t)value;
	return p;
}

static inline int put_varint(struct pb_writer *w, uint64_t value)
{
	uint8_t *p;

	if (value < 0x80) { /* most tags, lengths and counts */
		p = prepend(w, 1);
		if (!p)
			return -ENOMEM;
		*p = (uint8_t)value;
		return 0;
	}
	p = prepend(w, pb_varint_bytes(value));
	if (!p)
		return -ENOMEM;
	pb_varint_at(p, value);
	return 0;
}

static int put_little_endian(struct pb_writer *w, uint64_t value, size_t bytes)
{
	uint8_t *p = prepend(w, bytes);

	if (!p)
		return -ENOMEM;
	for (size_t i = 0; i < bytes; i++)
		p[i] = (uint8_t)(value >> (8 * i));
	return 0;
}

/* `len` bytes, then their length in front of them. */
static int put_length_prefixed(struct pb_writer *w, const void *data, size_t len)
{
	uint8_t *p = prepend(w, len);

	if (!p)
		return -ENOMEM;
	if (len)
		memcpy(p, data, len);
	return put_varint(w, len);
}

static uint64_t zigzag32(int32_t v)
{
	return (uint32_t)(((uint32_t)v << 1) ^ (uint32_t)(v >> 31));
}

static uint64_t zigzag64(int64_t v)
{
	return ((uint64_t)v << 1) ^ (uint64_t)(v >> 63);
}

static uint64_t bits_of_float(float f)
{
	uint32_t bits;

	memcpy(&bits, &f, sizeof(bits));
	return bits;
}

static uint64_t bits_of_double(double d)
{
	uint64_t bits;

	memcpy(&bits, &d, sizeof(bits));
	return bits;
}

/* A nested message: the message, then its length (protobuf-c writes NULL as empty). */
static int put_message(struct pb_writer *w, const ProtobufCMessage *msg)
{
	long len = msg ? pb_write_message(w, msg) : 0;

	return len < 0 ? (int)len : put_varint(w, (uint64_t)len);
}

/* One value of field `f` at `member`, then its tag: protobuf-c's "required" packing. */
static int put_value(struct pb_writer *w, const ProtobufCFieldDescriptor *f, const void *member)
{
	enum wire_type wire = WIRE_VARINT;
	int err;

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_ENUM: /* negative values take ten bytes, as in every encoder */
		err = put_varint(w, (uint64_t)(int64_t)*(const int32_t *)member);
		break;
	case PROTOBUF_C_TYPE_SINT32:
		err = put_varint(w, zigzag32(*(const int32_t *)member));
		break;
	case PROTOBUF_C_TYPE_UINT32:
		err = put_varint(w, *(const uint32_t *)member);
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_UINT64:
		err = put_varint(w, *(const uint64_t *)member);
		break;
	case PROTOBUF_C_TYPE_SINT64:
		err = put_varint(w, zigzag64(*(const int64_t *)member));
		break;
	case PROTOBUF_C_TYPE_BOOL:
		err = put_varint(w, *(const protobuf_c_boolean *)member ? 1 : 0);
		break;
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_SFIXED32:
		wire = WIRE_32BIT;
		err = put_little_endian(w, *(const uint32_t *)member, 4);
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		wire = WIRE_32BIT;
		err = put_little_endian(w, bits_of_float(*(const float *)member), 4);
		break;
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_SFIXED64:
		wire = WIRE_64BIT;
		err = put_little_endian(w, *(const uint64_t *)member, 8);
		break;
	case PROTOBUF_C_TYPE_DOUBLE:
		wire = WIRE_64BIT;
		err = put_little_endian(w, bits_of_double(*(const double *)member), 8);
		break;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(const char *const *)member;

		wire = WIRE_LENGTH_PREFIXED;
		err = put_length_prefixed(w, s, s ? strlen(s) : 0);
		break;
	}
	case PROTOBUF_C_TYPE_BYTES: {
		const ProtobufCBinaryData *bytes = member;

		wire = WIRE_LENGTH_PREFIXED;
		err = put_length_prefixed(w, bytes->data, bytes->len);
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE:
		wire = WIRE_LENGTH_PREFIXED;
		err = put_message(w, *(const ProtobufCMessage *const *)member);
		break;
	default:
		return -EOPNOTSUPP;
	}
	return err ?: put_varint(w, ((uint64_t)f->id << 3) | wire);
}

/* proto3's implicit presence: what protobuf-c leaves out as the default. */
static bool is_zeroish(const ProtobufCFieldDescriptor *f, const void *member)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_BOOL:
		return *(const protobuf_c_boolean *)member == 0;
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_ENUM:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_SFIXED32:
		return *(const uint32_t *)member == 0;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_SFIXED64:
		return *(const uint64_t *)member == 0;
	case PROTOBUF_C_TYPE_FLOAT:
		return *(const float *)member == 0;
	case PROTOBUF_C_TYPE_DOUBLE:
		return *(const double *)member == 0;
	case PROTOBUF_C_TYPE_STRING: {
		const char *s = *(const char *const *)member;

		return !s || !*s;
	}
	case PROTOBUF_C_TYPE_BYTES:
		return ((const ProtobufCBinaryData *)member)->len == 0;
	case PROTOBUF_C_TYPE_MESSAGE:
		return *(const void *const *)member == NULL;
	}
	return false;
}

static bool is_pointer_type(const ProtobufCFieldDescriptor *f)
{
	return f->type == PROTOBUF_C_TYPE_MESSAGE || f->type == PROTOBUF_C_TYPE_STRING;
}

/* A message or string that is unset (NULL) or the shared default. */
static bool pointer_unset(const ProtobufCFieldDescriptor *f, const void *member)
{
	const void *ptr = *(const void *const *)member;

	return !ptr || ptr == f->default_value;
}

size_t pb_value_size(const ProtobufCFieldDescriptor *f)
{
	switch (f->type) {
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_SFIXED64:
	case PROTOBUF_C_TYPE_DOUBLE:
		return 8;
	case PROTOBUF_C_TYPE_BOOL:
		return sizeof(protobuf_c_boolean);
	case PROTOBUF_C_TYPE_STRING:
	case PROTOBUF_C_TYPE_MESSAGE:
		return sizeof(void *);
	case PROTOBUF_C_TYPE_BYTES:
		return sizeof(ProtobufCBinaryData);
	default:
		return 4;
	}
}

static int put_repeated(struct pb_writer *w, const ProtobufCFieldDescriptor *f, size_t count,
			const void *member)
{
	const char *array = *(const char *const *)member;
	size_t element_size = pb_value_size(f);
	int err = 0;

	if (count && (f->flags & PROTOBUF_C_FIELD_FLAG_PACKED))
		return -EOPNOTSUPP;
	for (size_t i = count; i-- > 0 && !err;)
		err = put_value(w, f, array + i * element_size);
	return err;
}

static int put_field(struct pb_writer *w, const ProtobufCFieldDescriptor *f, const ProtobufCMessage *msg)
{
	const void *member = (const char *)msg + f->offset;
	const void *quantifier = (const char *)msg + f->quantifier_offset;

	switch (f->label) {
	case PROTOBUF_C_LABEL_REQUIRED:
		return put_value(w, f, member);
	case PROTOBUF_C_LABEL_REPEATED:
		return put_repeated(w, f, *(const size_t *)quantifier, member);
	case PROTOBUF_C_LABEL_OPTIONAL:
	case PROTOBUF_C_LABEL_NONE:
		break;
	}
	if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) {
		if (*(const uint32_t *)quantifier != f->id)
			return 0;
		if (is_pointer_type(f) && pointer_unset(f, member))
			return 0;
	} else if (f->label == PROTOBUF_C_LABEL_OPTIONAL) {
		if (is_pointer_type(f) ? pointer_unset(f, member) : !*(const protobuf_c_boolean *)quantifier)
			return 0;
	} else if (is_zeroish(f, member)) {
		return 0;
	}
	return put_value(w, f, member);
}

long pb_write_message(struct pb_writer *w, const ProtobufCMessage *msg)
{
	const ProtobufCMessageDescriptor *desc = msg->descriptor;
	size_t before = w->used;

	if (msg->n_unknown_fields)
		return -EOPNOTSUPP;
	for (unsigned int i = desc->n_fields; i-- > 0;) {
		int err = put_field(w, &desc->fields[i], msg);

		if (err)
			return err;
	}
	return (long)(w->used - before);
}

/* ---- by hand ---- */

static void put_tag(struct pb_writer *w, uint32_t id, enum wire_type wire)
{
	if (put_varint(w, ((uint64_t)id << 3) | wire))
		w->failed = true;
}

void pb_put_uint64(struct pb_writer *w, uint32_t id, uint64_t value)
{
	if (!value)
		return;
	if (put_varint(w, value))
		w->failed = true;
	put_tag(w, id, WIRE_VARINT);
}

void pb_put_int32(struct pb_writer *w, uint32_t id, int32_t value)
{
	pb_put_uint64(w, id, (uint64_t)(int64_t)value);
}

void pb_put_string(struct pb_writer *w, uint32_t id, const char *text)
{
	if (!text || !*text)
		return;
	if (put_length_prefixed(w, text, strlen(text)))
		w->failed = true;
	put_tag(w, id, WIRE_LENGTH_PREFIXED);
}

void pb_close_message(struct pb_writer *w, uint32_t id, size_t mark)
{
	if (put_varint(w, w->used - mark))
		w->failed = true;
	put_tag(w, id, WIRE_LENGTH_PREFIXED);
}

uint8_t *pb_reserve_front(struct pb_writer *w, size_t len)
{
	uint8_t *p = prepend(w, len);

	if (!p)
		w->failed = true;
	return p;
}

void pb_writer_free(struct pb_writer *w)
{
	free(w->buf);
	*w = (struct pb_writer){ 0 };
}

static int pack_with_protobuf_c(const ProtobufCMessage *msg, uint8_t **ret_data, size_t *ret_len)
{
	size_t len = protobuf_c_message_get_packed_size(msg);
	uint8_t *data = malloc(len ? len : 1);

	if (!data)
		return -ENOMEM;
	protobuf_c_message_pack(msg, data);
	*ret_data = data;
	*ret_len = len;
	return 0;
}

int pb_pack_alloc(const ProtobufCMessage *msg, uint8_t **ret_data, size_t *ret_len)
{
	static _Thread_local struct pb_writer scratch;
	uint8_t *data = NULL;
	long len;

	pb_writer_reset(&scratch);
	len = pb_write_message(&scratch, msg);
	if (len >= 0) {
		data = malloc(len ? (size_t)len : 1);
		if (data)
			memcpy(data, pb_writer_data(&scratch), (size_t)len);
	}
	if (scratch.capacity > SCRATCH_KEEP_BYTES)
		pb_writer_free(&scratch);
	if (len == -EOPNOTSUPP)
		return pack_with_protobuf_c(msg, ret_data, ret_len);
	if (!data)
		return -ENOMEM;
	*ret_data = data;
	*ret_len = (size_t)len;
	return 0;
}
