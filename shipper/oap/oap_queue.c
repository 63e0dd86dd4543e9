// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The sender's bounded drop-oldest queue: O(1) per push and pop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "oap_queue.h"

int oap_queue_init(struct oap_queue *queue, size_t max_entries, size_t max_bytes)
{
	memset(queue, 0, sizeof(*queue));
	if (!max_entries || !max_bytes)
		return -EINVAL;
	queue->ring = calloc(max_entries, sizeof(*queue->ring));
	if (!queue->ring)
		return -ENOMEM;
	queue->capacity = max_entries;
	queue->max_bytes = max_bytes;
	return 0;
}

static void drop_oldest(struct oap_queue *queue)
{
	struct oap_entry oldest;

	if (oap_queue_pop(queue, &oldest) == 0)
		free(oldest.data);
}

int oap_queue_push(struct oap_queue *queue, struct oap_entry entry)
{
	int evicted = 0;

	if (entry.len > queue->max_bytes)
		return -E2BIG;
	while (queue->count == queue->capacity || queue->bytes + entry.len > queue->max_bytes) {
		drop_oldest(queue);
		evicted++;
	}
	queue->ring[(queue->head + queue->count) % queue->capacity] = entry;
	queue->count++;
	queue->bytes += entry.len;
	return evicted;
}

int oap_queue_pop(struct oap_queue *queue, struct oap_entry *ret_entry)
{
	if (!queue->count)
		return -ENOENT;
	*ret_entry = queue->ring[queue->head];
	queue->ring[queue->head] = (struct oap_entry){ 0 };
	queue->head = (queue->head + 1) % queue->capacity;
	queue->count--;
	queue->bytes -= ret_entry->len;
	return 0;
}

size_t oap_queue_clear(struct oap_queue *queue)
{
	size_t cleared = queue->count;

	while (queue->count)
		drop_oldest(queue);
	return cleared;
}

void oap_queue_free(struct oap_queue *queue)
{
	if (!queue || !queue->ring)
		return;
	oap_queue_clear(queue);
	free(queue->ring);
	queue->ring = NULL;
}
