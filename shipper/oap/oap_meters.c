// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * Meter batches: one interval's meters checked against OAP's rules as they
 * are added, then queued as MeterDataCollections of bounded size. Every
 * collection repeats service, instance and timestamp on each MeterData: OAP
 * drops a collection without them.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "oap.h"

/* One MeterData and everything it points to, in one allocation. */
struct meter_entry {
	Skywalking__V3__MeterData data;
	Skywalking__V3__MeterSingleValue single;
	Skywalking__V3__MeterHistogram histogram;
	Skywalking__V3__Label **label_ptrs;
	Skywalking__V3__Label *labels;
	Skywalking__V3__MeterBucketValue **bucket_ptrs;
	Skywalking__V3__MeterBucketValue *buckets;
	char *strings;                 /* name, label names and values, NUL-separated */
};

struct oap_meter_batch {
	char *service, *instance;
	int64_t timestamp_ms;
	struct meter_entry **entries;
	size_t count, capacity;
};

static bool valid_name(const char *name)
{
	if (!name || !((name[0] >= 'a' && name[0] <= 'z') || (name[0] >= 'A' && name[0] <= 'Z') ||
		       name[0] == '_'))
		return false;
	for (const char *c = name + 1; *c; c++)
		if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') ||
		      (*c >= '0' && *c <= '9') || *c == '_'))
			return false;
	return true;
}

/* OAP drops the whole collection for any of these: refuse the one meter. */
static int check_labels(const struct oap_label *labels, size_t n_labels, bool histogram)
{
	for (size_t i = 0; i < n_labels; i++) {
		if (!valid_name(labels[i].name) || !labels[i].value ||
		    !strcmp(labels[i].name, "service") || !strcmp(labels[i].name, "instance") ||
		    (histogram && !strcmp(labels[i].name, "le")))
			return -EINVAL;
		for (size_t j = 0; j < i; j++)
			if (!strcmp(labels[i].name, labels[j].name))
				return -EINVAL;
	}
	return 0;
}

int oap_meter_batch_new(const char *service, const char *instance, int64_t timestamp_ms,
			struct oap_meter_batch **ret_batch)
{
	struct oap_meter_batch *batch;

	if (!service || !service[0] || !instance || !instance[0] || timestamp_ms <= 0)
		return -EINVAL;
	batch = calloc(1, sizeof(*batch));
	if (!batch)
		return -ENOMEM;
	batch->service = strdup(service);
	batch->instance = strdup(instance);
	batch->timestamp_ms = timestamp_ms;
	if (!batch->service || !batch->instance) {
		oap_meter_batch_free(batch);
		return -ENOMEM;
	}
	*ret_batch = batch;
	return 0;
}

static size_t strings_size(const char *name, const struct oap_label *labels, size_t n_labels)
{
	size_t size = strlen(name) + 1;

	for (size_t i = 0; i < n_labels; i++)
		size += strlen(labels[i].name) + strlen(labels[i].value) + 2;
	return size;
}

static char *copy_string(char **cursor, const char *text)
{
	char *start = *cursor;
	size_t len = strlen(text) + 1;

	memcpy(start, text, len);
	*cursor += len;
	return start;
}

/* A MeterData for `batch` with its name and labels, or NULL. */
static struct meter_entry *entry_new(const struct oap_meter_batch *batch, const char *name,
				     const struct oap_label *labels, size_t n_labels,
				     size_t n_buckets)
{
	size_t size = sizeof(struct meter_entry) +
		      n_labels * (sizeof(Skywalking__V3__Label *) + sizeof(Skywalking__V3__Label)) +
		      n_buckets * (sizeof(Skywalking__V3__MeterBucketValue *) +
				   sizeof(Skywalking__V3__MeterBucketValue)) +
		      strings_size(name, labels, n_labels);
	struct meter_entry *entry = calloc(1, size);
	char *cursor;

	if (!entry)
		return NULL;
	entry->label_ptrs = (Skywalking__V3__Label **)(entry + 1);
	entry->labels = (Skywalking__V3__Label *)(entry->label_ptrs + n_labels);
	entry->bucket_ptrs = (Skywalking__V3__MeterBucketValue **)(entry->labels + n_labels);
	entry->buckets = (Skywalking__V3__MeterBucketValue *)(entry->bucket_ptrs + n_buckets);
	entry->strings = cursor = (char *)(entry->buckets + n_buckets);

	skywalking__v3__meter_data__init(&entry->data);
	entry->data.service = batch->service;
	entry->data.serviceinstance = batch->instance;
	entry->data.timestamp = batch->timestamp_ms;
	skywalking__v3__meter_single_value__init(&entry->single);
	skywalking__v3__meter_histogram__init(&entry->histogram);
	entry->single.name = entry->histogram.name = copy_string(&cursor, name);
	for (size_t i = 0; i < n_labels; i++) {
		skywalking__v3__label__init(&entry->labels[i]);
		entry->labels[i].name = copy_string(&cursor, labels[i].name);
		entry->labels[i].value = copy_string(&cursor, labels[i].value);
		entry->label_ptrs[i] = &entry->labels[i];
	}
	entry->single.n_labels = entry->histogram.n_labels = n_labels;
	entry->single.labels = entry->histogram.labels = entry->label_ptrs;
	return entry;
}

static int batch_append(struct oap_meter_batch *batch, struct meter_entry *entry)
{
	if (batch->count == batch->capacity) {
		size_t capacity = batch->capacity ? batch->capacity * 2 : 64;
		struct meter_entry **grown = realloc(batch->entries, capacity * sizeof(*grown));

		if (!grown) {
			free(entry);
			return -ENOMEM;
		}
		batch->entries = grown;
		batch->capacity = capacity;
	}
	batch->entries[batch->count++] = entry;
	return 0;
}

int oap_meter_batch_add_value(struct oap_meter_batch *batch, const char *name,
			      const struct oap_label *labels, size_t n_labels, double value)
{
	struct meter_entry *entry;

	if (!valid_name(name) || check_labels(labels, n_labels, false))
		return -EINVAL;
	entry = entry_new(batch, name, labels, n_labels, 0);
	if (!entry)
		return -ENOMEM;
	entry->single.value = value;
	entry->data.metric_case = SKYWALKING__V3__METER_DATA__METRIC_SINGLE_VALUE;
	entry->data.singlevalue = &entry->single;
	return batch_append(batch, entry);
}

int oap_meter_batch_add_histogram(struct oap_meter_batch *batch, const char *name,
				  const struct oap_label *labels, size_t n_labels,
				  const int64_t *lower_bounds, const uint64_t *counts,
				  size_t n_buckets)
{
	struct meter_entry *entry;

	if (!valid_name(name) || check_labels(labels, n_labels, true) || !n_buckets)
		return -EINVAL;
	/* OAP truncates bounds to integers and sorts by them: keep them exact. */
	for (size_t i = 1; i < n_buckets; i++)
		if (lower_bounds[i] <= lower_bounds[i - 1])
			return -EINVAL;
	entry = entry_new(batch, name, labels, n_labels, n_buckets);
	if (!entry)
		return -ENOMEM;
	for (size_t i = 0; i < n_buckets; i++) {
		skywalking__v3__meter_bucket_value__init(&entry->buckets[i]);
		entry->buckets[i].bucket = (double)lower_bounds[i];
		entry->buckets[i].count = (int64_t)counts[i];
		entry->bucket_ptrs[i] = &entry->buckets[i];
	}
	entry->histogram.n_values = n_buckets;
	entry->histogram.values = entry->bucket_ptrs;
	entry->data.metric_case = SKYWALKING__V3__METER_DATA__METRIC_HISTOGRAM;
	entry->data.histogram = &entry->histogram;
	return batch_append(batch, entry);
}

size_t oap_meter_batch_count(const struct oap_meter_batch *batch)
{
	return batch->count;
}

/* Bytes one MeterData adds to a collection: field 1 tag, length, message. */
static size_t entry_wire_size(const struct meter_entry *entry)
{
	size_t len = protobuf_c_message_get_packed_size(&entry->data.base), varint = 1;

	for (size_t v = len; v >= 0x80; v >>= 7)
		varint++;
	return 1 + varint + len;
}

int oap_sender_enqueue_meter_batch(struct oap_sender *sender, const struct oap_meter_batch *batch)
{
	Skywalking__V3__MeterDataCollection collection = SKYWALKING__V3__METER_DATA_COLLECTION__INIT;
	Skywalking__V3__MeterData **data = malloc((batch->count ? batch->count : 1) * sizeof(*data));
	size_t first = 0, bytes = 0;
	int ret = 0;

	if (!data)
		return -ENOMEM;
	for (size_t i = 0; i <= batch->count && !ret; i++) {
		size_t size = i < batch->count ? entry_wire_size(batch->entries[i]) : 0;

		if (i > first && (i == batch->count || bytes + size > OAP_METER_COLLECTION_MAX_BYTES)) {
			collection.n_meterdata = i - first;
			collection.meterdata = data + first;
			ret = oap_sender_enqueue_meters(sender, &collection);
			first = i;
			bytes = 0;
		}
		if (i < batch->count) {
			data[i] = &batch->entries[i]->data;
			bytes += size;
		}
	}
	free(data);
	return ret;
}

void oap_meter_batch_free(struct oap_meter_batch *batch)
{
	if (!batch)
		return;
	for (size_t i = 0; i < batch->count; i++)
		free(batch->entries[i]);
	free(batch->entries);
	free(batch->service);
	free(batch->instance);
	free(batch);
}
