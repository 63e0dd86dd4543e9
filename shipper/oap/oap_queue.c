// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The sender's bounded drop-oldest queue of framed messages in chunks (oap_queue.h). */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "oap_queue.h"

/* A first chunk's room: a few of the usual access logs, grown by doubling. */
#define CHUNK_FIRST_BYTES 4096u
/* A spare bigger than this (grown for a large meter batch) is freed instead. */
#define SPARE_MAX_BYTES (4 * OAP_CHUNK_BYTES)

int oap_queue_init(struct oap_queue *queue, size_t max_count, size_t max_bytes,
		   size_t chunk_max_messages)
{
	memset(queue, 0, sizeof(*queue));
	if (!max_count || !max_bytes || !chunk_max_messages)
		return -EINVAL;
	queue->max_count = max_count;
	queue->max_bytes = max_bytes;
	queue->chunk_max_messages = chunk_max_messages;
	return 0;
}

size_t oap_frame_len(const uint8_t *framed)
{
	return (size_t)framed[1] << 24 | (size_t)framed[2] << 16 | (size_t)framed[3] << 8 | framed[4];
}

static void chunk_free(struct oap_chunk *chunk)
{
	if (!chunk)
		return;
	free(chunk->data);
	free(chunk);
}

void oap_queue_recycle(struct oap_queue *queue, struct oap_chunk *chunk)
{
	if (!chunk)
		return;
	if (queue->spare || chunk->capacity > SPARE_MAX_BYTES) {
		chunk_free(chunk);
		return;
	}
	chunk->next = NULL;
	chunk->start = chunk->used = chunk->count = chunk->bytes = 0;
	queue->spare = chunk;
}

static void unlink_head(struct oap_queue *queue)
{
	queue->head = queue->head->next;
	if (!queue->head)
		queue->tail = NULL;
}

/* The oldest message goes; its chunk too when it was the chunk's last. */
static void drop_oldest(struct oap_queue *queue)
{
	struct oap_chunk *chunk = queue->head;
	size_t len = oap_frame_len(chunk->data + chunk->start);

	chunk->start += OAP_FRAME_PREFIX_BYTES + len;
	chunk->count--;
	chunk->bytes -= len;
	queue->count--;
	queue->bytes -= len;
	if (chunk->count)
		return;
	unlink_head(queue);
	oap_queue_recycle(queue, chunk);
}

/* The chunk the next message goes to: the tail while it has room, else a new one. */
static struct oap_chunk *chunk_for_next(struct oap_queue *queue)
{
	struct oap_chunk *tail = queue->tail, *fresh;

	if (tail && tail->count < queue->chunk_max_messages && tail->used < OAP_CHUNK_BYTES)
		return tail;
	fresh = queue->spare ?: calloc(1, sizeof(*fresh));
	if (!fresh)
		return NULL;
	queue->spare = NULL;
	if (tail)
		tail->next = fresh;
	else
		queue->head = fresh;
	queue->tail = fresh;
	return fresh;
}

static int chunk_reserve(struct oap_chunk *chunk, size_t more)
{
	size_t capacity = chunk->capacity ?: CHUNK_FIRST_BYTES;
	uint8_t *bigger;

	if (chunk->used + more <= chunk->capacity)
		return 0;
	while (capacity < chunk->used + more)
		capacity *= 2;
	bigger = realloc(chunk->data, capacity);
	if (!bigger)
		return -ENOMEM;
	chunk->data = bigger;
	chunk->capacity = capacity;
	return 0;
}

/* The tail when it is empty (a new chunk the failed message was for) leaves again. */
static void drop_empty_tail(struct oap_queue *queue, struct oap_chunk *chunk)
{
	struct oap_chunk *before = queue->head;

	if (chunk->count)
		return;
	if (before == chunk) {
		queue->head = queue->tail = NULL;
	} else {
		while (before->next != chunk)
			before = before->next;
		before->next = NULL;
		queue->tail = before;
	}
	oap_queue_recycle(queue, chunk);
}

int oap_queue_push(struct oap_queue *queue, const uint8_t *msg, size_t len, size_t *ret_evicted)
{
	struct oap_chunk *chunk;
	uint8_t *at;

	*ret_evicted = 0;
	if (len > queue->max_bytes || len > UINT32_MAX)
		return -E2BIG;
	while (queue->count == queue->max_count || queue->bytes + len > queue->max_bytes) {
		drop_oldest(queue);
		(*ret_evicted)++;
	}
	chunk = chunk_for_next(queue);
	if (!chunk)
		return -ENOMEM;
	if (chunk_reserve(chunk, OAP_FRAME_PREFIX_BYTES + len)) {
		drop_empty_tail(queue, chunk);
		return -ENOMEM;
	}
	at = chunk->data + chunk->used;
	at[0] = 0; /* not compressed */
	at[1] = (uint8_t)(len >> 24);
	at[2] = (uint8_t)(len >> 16);
	at[3] = (uint8_t)(len >> 8);
	at[4] = (uint8_t)len;
	memcpy(at + OAP_FRAME_PREFIX_BYTES, msg, len);
	chunk->used += OAP_FRAME_PREFIX_BYTES + len;
	chunk->count++;
	chunk->bytes += len;
	queue->count++;
	queue->bytes += len;
	return 0;
}

int oap_queue_take(struct oap_queue *queue, struct oap_chunk **ret_chunk)
{
	struct oap_chunk *chunk = queue->head;

	if (!chunk)
		return -ENOENT;
	unlink_head(queue);
	chunk->next = NULL;
	queue->count -= chunk->count;
	queue->bytes -= chunk->bytes;
	*ret_chunk = chunk;
	return 0;
}

size_t oap_queue_clear(struct oap_queue *queue)
{
	size_t cleared = queue->count;
	struct oap_chunk *chunk;

	while (!oap_queue_take(queue, &chunk))
		oap_queue_recycle(queue, chunk);
	return cleared;
}

void oap_queue_free(struct oap_queue *queue)
{
	if (!queue)
		return;
	oap_queue_clear(queue);
	chunk_free(queue->spare);
	queue->spare = NULL;
}
