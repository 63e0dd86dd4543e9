/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A bounded FIFO of encoded messages, bounded in messages and in bytes; a
 * push into a full queue evicts the oldest messages. Not locked: the sender
 * holds its stream lock around every call.
 *
 * Messages are stored back to back in chunks, each already framed as gRPC
 * sends it (a 5-byte prefix: not compressed, then the length big-endian),
 * so the sender takes a whole chunk and writes it into the call at once: no
 * allocation, lock or copy per message. A chunk holds at most
 * `chunk_max_messages` (the sender's batch) and grows to about
 * OAP_CHUNK_BYTES; one drained chunk is kept for reuse.
 */
#ifndef KACCESS_OAP_QUEUE_H
#define KACCESS_OAP_QUEUE_H

#include <stddef.h>
#include <stdint.h>

#define OAP_FRAME_PREFIX_BYTES 5
/* A chunk takes no new message once it holds this many bytes. */
#define OAP_CHUNK_BYTES (64u << 10)

struct oap_chunk {
	struct oap_chunk *next;
	uint8_t *data;
	size_t start;          /* the oldest message still queued */
	size_t used, capacity; /* bytes */
	size_t count;          /* messages in [start, used) */
	size_t bytes;          /* their encoded lengths, prefixes not counted */
};

struct oap_queue {
	struct oap_chunk *head, *tail; /* oldest first */
	struct oap_chunk *spare;       /* a drained chunk, for the next one */
	size_t count, max_count;       /* messages */
	size_t bytes, max_bytes;       /* encoded lengths, prefixes not counted */
	size_t chunk_max_messages;
};

int oap_queue_init(struct oap_queue *queue, size_t max_count, size_t max_bytes,
		   size_t chunk_max_messages);

/*
 * Append a copy of the `len` bytes at `msg`, framed, evicting the oldest
 * messages as needed (how many: `*ret_evicted`, whatever the result).
 * 0, -E2BIG when the message alone is bigger than max_bytes, -ENOMEM.
 */
int oap_queue_push(struct oap_queue *queue, const uint8_t *msg, size_t len, size_t *ret_evicted);

/*
 * Detach the oldest chunk into `*ret_chunk` (ownership moves out; give it
 * back with oap_queue_recycle). 0 or -ENOENT.
 */
int oap_queue_take(struct oap_queue *queue, struct oap_chunk **ret_chunk);

/* A taken chunk, written or dropped: kept as the spare or freed. NULL-safe. */
void oap_queue_recycle(struct oap_queue *queue, struct oap_chunk *chunk);

/* The length of the framed message at `framed` (its prefix read). */
size_t oap_frame_len(const uint8_t *framed);

/* Free every message; returns how many there were. */
size_t oap_queue_clear(struct oap_queue *queue);

/* oap_queue_clear, then free the spare. NULL-safe. */
void oap_queue_free(struct oap_queue *queue);

#endif
