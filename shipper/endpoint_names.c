// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "endpoint_names.h"

struct endpoint_entry {
	uint64_t hash;
	char *text; /* NULL: empty slot */
};

/* Open addressing, linear probing, at most half full. */
struct endpoint_names {
	pthread_mutex_t lock;
	struct endpoint_entry *slots;
	size_t capacity, count;
};

struct endpoint_names *endpoint_names_new(void)
{
	struct endpoint_names *names = calloc(1, sizeof(*names));

	if (!names)
		return NULL;
	pthread_mutex_init(&names->lock, NULL);
	return names;
}

void endpoint_names_free(struct endpoint_names *names)
{
	if (!names)
		return;
	for (size_t i = 0; i < names->capacity; i++)
		free(names->slots[i].text);
	free(names->slots);
	pthread_mutex_destroy(&names->lock);
	free(names);
}

static struct endpoint_entry *find_slot(struct endpoint_entry *slots, size_t capacity, uint64_t hash)
{
	size_t i = (hash ^ (hash >> 29)) & (capacity - 1);

	while (slots[i].text && slots[i].hash != hash)
		i = (i + 1) & (capacity - 1);
	return &slots[i];
}

static int grow(struct endpoint_names *names)
{
	size_t capacity = names->capacity ? names->capacity * 2 : 1024;
	struct endpoint_entry *slots = calloc(capacity, sizeof(*slots));

	if (!slots)
		return -ENOMEM;
	for (size_t i = 0; i < names->capacity; i++)
		if (names->slots[i].text)
			*find_slot(slots, capacity, names->slots[i].hash) = names->slots[i];
	free(names->slots);
	names->slots = slots;
	names->capacity = capacity;
	return 0;
}

int endpoint_names_add(struct endpoint_names *names, uint64_t hash, const char *text, size_t len)
{
	struct endpoint_entry *slot;
	int err = 0;

	pthread_mutex_lock(&names->lock);
	if ((names->count + 1) * 2 > names->capacity) {
		err = names->count >= ENDPOINT_NAMES_MAX ? -ENOSPC : grow(names);
		if (err)
			goto out;
	}
	slot = find_slot(names->slots, names->capacity, hash);
	if (slot->text)
		goto out; /* sent again after the kernel's LRU forgot it: same text */
	slot->text = strndup(text, len);
	if (!slot->text) {
		err = -ENOMEM;
		goto out;
	}
	slot->hash = hash;
	names->count++;
out:
	pthread_mutex_unlock(&names->lock);
	return err;
}

int endpoint_names_get(struct endpoint_names *names, uint64_t hash, char *buf, size_t len)
{
	struct endpoint_entry *slot;
	int err = -ENOENT;

	if (!names || !len)
		return -ENOENT;
	pthread_mutex_lock(&names->lock);
	if (names->capacity) {
		slot = find_slot(names->slots, names->capacity, hash);
		if (slot->text) {
			strncpy(buf, slot->text, len - 1);
			buf[len - 1] = '\0';
			err = 0;
		}
	}
	pthread_mutex_unlock(&names->lock);
	return err;
}
