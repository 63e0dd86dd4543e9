/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A bounded FIFO of encoded messages, bounded in entries and in bytes; a push
 * into a full queue evicts the oldest entries. Not locked: the sender holds
 * its stream lock around every call.
 */
#ifndef KACCESS_OAP_QUEUE_H
#define KACCESS_OAP_QUEUE_H

#include <stddef.h>
#include <stdint.h>

struct oap_entry {
	uint8_t *data;   /* malloc'd encoded message */
	size_t len;
};

struct oap_queue {
	struct oap_entry *ring;
	size_t capacity;   /* entries */
	size_t head;       /* oldest */
	size_t count;
	size_t bytes, max_bytes;
};

int oap_queue_init(struct oap_queue *queue, size_t max_entries, size_t max_bytes);

/*
 * Append `entry` (ownership moves in), evicting the oldest entries as needed;
 * returns how many were evicted (freed), or -E2BIG when the entry alone is
 * bigger than max_bytes (then the caller keeps it).
 */
int oap_queue_push(struct oap_queue *queue, struct oap_entry entry);

/* Remove the oldest entry into `ret_entry` (ownership moves out). 0 or -ENOENT. */
int oap_queue_pop(struct oap_queue *queue, struct oap_entry *ret_entry);

/* Free every entry; returns how many there were. */
size_t oap_queue_clear(struct oap_queue *queue);

/* oap_queue_clear, then free the ring. NULL-safe. */
void oap_queue_free(struct oap_queue *queue);

#endif
