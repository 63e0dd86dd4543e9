/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A protobuf encoder for protobuf-c's generated structs, byte for byte what
 * protobuf_c_message_pack() writes, in one pass. protobuf-c sizes a nested
 * message before it writes its length, and sizes every message below again
 * for that, so an access-log message (five levels deep) is walked five
 * times over; that was a fifth of the shipper's CPU at 10,000 exchanges a
 * second. This one writes from the end backwards: a nested message is
 * written first and its length is then known.
 *
 * Every field kind our protocols use is covered (scalars, strings, bytes,
 * messages, repeated, oneof, proto3's implicit presence). Packed repeated
 * scalars and unknown fields, which they never carry, are refused with
 * -EOPNOTSUPP, for the caller to use protobuf-c instead.
 */
#ifndef KACCESS_PB_PACK_H
#define KACCESS_PB_PACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>

/* The bytes written so far are the last `used` bytes of buf[0, capacity). */
struct pb_writer {
	uint8_t *buf;
	size_t capacity, used;
	bool failed;              /* a pb_put_* ran out of memory: the bytes are garbage */
};

/*
 * Prepend `msg` to what `w` holds (an empty writer: just `msg`); the bytes
 * written, or -ENOMEM / -EOPNOTSUPP (then `w` holds garbage past what it
 * held before: reset it).
 */
long pb_write_message(struct pb_writer *w, const ProtobufCMessage *msg);

/* What `w` holds, in order: `used` bytes. */
static inline const uint8_t *pb_writer_data(const struct pb_writer *w)
{
	return w->buf + w->capacity - w->used;
}

static inline void pb_writer_reset(struct pb_writer *w)
{
	w->used = 0;
	w->failed = false;
}

/*
 * Writing a message by hand, for a hot message whose shape is known:
 * backwards like pb_write_message, its last field first, so each call
 * prepends one field. Scalars and strings follow proto3's implicit
 * presence (nothing for 0, NULL or ""), as protobuf-c writes them. A
 * nested message or a oneof member: remember `mark = w->used`, write its
 * fields, then pb_close_message(w, id, mark) puts its length and tag in
 * front. Out of memory sets w->failed; check it once at the end.
 */
void pb_put_uint64(struct pb_writer *w, uint32_t id, uint64_t value);
/* int32 and enum fields: a negative value takes ten bytes, as everywhere. */
void pb_put_int32(struct pb_writer *w, uint32_t id, int32_t value);
void pb_put_string(struct pb_writer *w, uint32_t id, const char *text);
void pb_close_message(struct pb_writer *w, uint32_t id, size_t mark);
/*
 * Room for `len` bytes in front of what `w` holds, for a caller that writes
 * a small field of known size at once (forwards); NULL, with w->failed
 * set, when out of memory.
 */
uint8_t *pb_reserve_front(struct pb_writer *w, size_t len);
/* Writes `value` as a varint at `p`; returns the byte after it. */
uint8_t *pb_varint_at(uint8_t *p, uint64_t value);
/* The bytes pb_varint_at writes for `value`. */
size_t pb_varint_bytes(uint64_t value);

void pb_writer_free(struct pb_writer *w);

/* The size of one value of field `f` in protobuf-c's structs: a member, or an element of a repeated field's array. */
size_t pb_value_size(const ProtobufCFieldDescriptor *f);

/*
 * `msg` encoded into a malloc'd buffer of its exact size (*ret_len bytes),
 * through a scratch writer kept per thread; falls back to protobuf-c for
 * what pb_write_message refuses. 0 or -ENOMEM.
 */
int pb_pack_alloc(const ProtobufCMessage *msg, uint8_t **ret_data, size_t *ret_len);

#endif
