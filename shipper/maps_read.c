// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "maps_read.h"

#define BATCH_ROWS 1024


/* Grow a (rows, count, capacity) array to hold `extra` more elements. */
static int reserve(void **rows, size_t *capacity, size_t count, size_t extra, size_t size)
{
	size_t wanted = count + extra, grown = *capacity ? *capacity : 64;
	void *bigger;

	if (wanted <= *capacity)
		return 0;
	while (grown < wanted)
		grown *= 2;
	bigger = realloc(*rows, grown * size);
	if (!bigger)
		return -ENOMEM;
	*rows = bigger;
	*capacity = grown;
	return 0;
}

/*
 * Batch-read a hash map into caller arrays, calling `store` per chunk.
 * Hash-map batches fail with ENOSPC when one bucket holds more entries than
 * the chunk: retry with a bigger chunk.
 */
typedef int (*store_fn)(void *ctx, const void *keys, const void *values, size_t count);

static int map_batch_read(int map_fd, bool and_delete, size_t key_size, size_t value_size,
			  store_fn store, void *ctx)
{
	size_t chunk = BATCH_ROWS;
	void *keys = NULL, *values = NULL;
	uint64_t token_in[8], token_out[8]; /* opaque position; a u32 for hash maps */
	bool first = true;
	int err = 0;

	for (;;) {
		__u32 count = chunk;

		if (!keys) {
			keys = malloc(chunk * key_size);
			values = malloc(chunk * value_size);
			if (!keys || !values) {
				err = -ENOMEM;
				break;
			}
		}
		err = and_delete ? bpf_map_lookup_and_delete_batch(map_fd, first ? NULL : token_in, token_out,
								  keys, values, &count, NULL)
				 : bpf_map_lookup_batch(map_fd, first ? NULL : token_in, token_out,
							keys, values, &count, NULL);
		if (err && err != -ENOENT && err != -ENOSPC)
			break;
		if (err == -ENOSPC && count == 0) {
			free(keys);
			free(values);
			keys = values = NULL;
			chunk *= 2;
			continue;
		}
		if (count) {
			int store_err = store(ctx, keys, values, count);

			if (store_err) {
				err = store_err;
				break;
			}
		}
		if (err == -ENOENT) {
			err = 0;
			break;
		}
		memcpy(token_in, token_out, sizeof(token_in));
		first = false;
	}
	free(keys);
	free(values);
	return err;
}

/*
 * Append `count` key/value pairs as rows: each row is the key followed
 * directly by the value (asserted below for every row type).
 */
static int store_rows(void **rows, size_t *capacity, size_t *row_count, const void *keys,
		      size_t key_size, const void *values, size_t value_size, size_t count)
{
	size_t row_size = key_size + value_size;
	int err = reserve(rows, capacity, *row_count, count, row_size);

	if (err)
		return err;
	for (size_t i = 0; i < count; i++) {
		char *row = (char *)*rows + (*row_count)++ * row_size;

		memcpy(row, (const char *)keys + i * key_size, key_size);
		memcpy(row + key_size, (const char *)values + i * value_size, value_size);
	}
	return 0;
}

_Static_assert(offsetof(struct agg_row, value) == sizeof(struct kaccess_agg_key) &&
	       sizeof(struct agg_row) == sizeof(struct kaccess_agg_key) + sizeof(struct kaccess_agg_value),
	       "agg_row is key then value");
_Static_assert(offsetof(struct http_row, value) == sizeof(struct kaccess_http_key) &&
	       sizeof(struct http_row) == sizeof(struct kaccess_http_key) + sizeof(struct kaccess_http_value),
	       "http_row is key then value");

static int store_agg(void *ctx, const void *keys, const void *values, size_t count)
{
	struct agg_rows *rows = ctx;

	return store_rows((void **)&rows->rows, &rows->capacity, &rows->count, keys,
			  sizeof(struct kaccess_agg_key), values, sizeof(struct kaccess_agg_value), count);
}

int agg_rows_collect(int map_fd, bool and_delete, struct agg_rows *rows)
{
	return map_batch_read(map_fd, and_delete, sizeof(struct kaccess_agg_key),
			      sizeof(struct kaccess_agg_value), store_agg, rows);
}

static int compare_agg_rows(const void *a, const void *b)
{
	const struct agg_row *x = a, *y = b;

	if (x->value.bucket != y->value.bucket)
		return x->value.bucket < y->value.bucket ? -1 : 1;
	if (x->key.cgroup_id != y->key.cgroup_id)
		return x->key.cgroup_id < y->key.cgroup_id ? -1 : 1;
	if (x->key.role != y->key.role)
		return x->key.role - y->key.role;
	return memcmp(x->key.peer_addr, y->key.peer_addr,
		      sizeof(x->key.peer_addr) + sizeof(x->key.peer_port));
}

void agg_rows_sort(struct agg_rows *rows)
{
	if (rows->count)
		qsort(rows->rows, rows->count, sizeof(rows->rows[0]), compare_agg_rows);
}

void agg_rows_clear(struct agg_rows *rows)
{
	rows->count = 0;
}

void agg_rows_free(struct agg_rows *rows)
{
	free(rows->rows);
	memset(rows, 0, sizeof(*rows));
}

static int store_http(void *ctx, const void *keys, const void *values, size_t count)
{
	struct http_rows *rows = ctx;

	return store_rows((void **)&rows->rows, &rows->capacity, &rows->count, keys,
			  sizeof(struct kaccess_http_key), values, sizeof(struct kaccess_http_value), count);
}

int http_rows_append(struct http_rows *rows, const struct http_row *row)
{
	int err = reserve((void **)&rows->rows, &rows->capacity, rows->count, 1, sizeof(*row));

	if (!err)
		rows->rows[rows->count++] = *row;
	return err;
}

int http_rows_collect(int map_fd, bool and_delete, struct http_rows *rows)
{
	return map_batch_read(map_fd, and_delete, sizeof(struct kaccess_http_key),
			      sizeof(struct kaccess_http_value), store_http, rows);
}

static int compare_http_rows(const void *a, const void *b)
{
	const struct http_row *x = a, *y = b;
	struct agg_row xa = { .key = x->key.agg, .value.bucket = x->value.bucket };
	struct agg_row ya = { .key = y->key.agg, .value.bucket = y->value.bucket };
	int order = compare_agg_rows(&xa, &ya);

	if (order)
		return order;
	if (x->key.endpoint != y->key.endpoint)
		return x->key.endpoint < y->key.endpoint ? -1 : 1;
	return 0;
}

void http_rows_sort(struct http_rows *rows)
{
	if (rows->count)
		qsort(rows->rows, rows->count, sizeof(rows->rows[0]), compare_http_rows);
}

void http_value_add(struct kaccess_http_value *into, const struct kaccess_http_value *from)
{
	into->call_count += from->call_count;
	into->success_count += from->success_count;
	for (int i = 0; i < KACCESS_HTTP_CLASSES; i++)
		into->status_count[i] += from->status_count[i];
	into->no_response_count += from->no_response_count;
	into->truncated_count += from->truncated_count;
	into->request_header_bytes += from->request_header_bytes;
	into->request_body_bytes += from->request_body_bytes;
	into->response_header_bytes += from->response_header_bytes;
	into->response_body_bytes += from->response_body_bytes;
	into->duration_ns_sum += from->duration_ns_sum;
	for (int i = 0; i < KACCESS_HTTP_LATENCY_BUCKETS; i++)
		into->duration_hist[i] += from->duration_hist[i];
}

void http_rows_merge_sorted(struct http_rows *rows)
{
	size_t kept = 0;

	for (size_t i = 0; i < rows->count; i++) {
		struct http_row *last = kept ? &rows->rows[kept - 1] : NULL;

		if (last && compare_http_rows(last, &rows->rows[i]) == 0)
			http_value_add(&last->value, &rows->rows[i].value);
		else
			rows->rows[kept++] = rows->rows[i];
	}
	rows->count = kept;
}

void http_rows_free(struct http_rows *rows)
{
	free(rows->rows);
	memset(rows, 0, sizeof(*rows));
}

static int store_conn(void *ctx, const void *keys, const void *values, size_t count)
{
	struct conn_rows *rows = ctx;
	const uint64_t *key = keys;
	const struct kaccess_conn *value = values;
	int err = reserve((void **)&rows->rows, &rows->capacity, rows->count, count, sizeof(*rows->rows));

	if (err)
		return err;
	for (size_t i = 0; i < count; i++) {
		rows->rows[rows->count].sk = key[i];
		rows->rows[rows->count].conn = value[i];
		rows->count++;
	}
	return 0;
}

int conn_rows_collect(int map_fd, struct conn_rows *rows)
{
	return map_batch_read(map_fd, false, sizeof(uint64_t), sizeof(struct kaccess_conn),
			      store_conn, rows);
}

void conn_rows_free(struct conn_rows *rows)
{
	free(rows->rows);
	memset(rows, 0, sizeof(*rows));
}

int counters_read(int map_fd, uint64_t *ret_values)
{
	int cpus = libbpf_num_possible_cpus();
	uint64_t *per_cpu;

	if (cpus < 0)
		return cpus;
	per_cpu = calloc(cpus, sizeof(*per_cpu));
	if (!per_cpu)
		return -ENOMEM;
	for (__u32 key = 0; key < KACCESS_CTR_MAX; key++) {
		int err = bpf_map_lookup_elem(map_fd, &key, per_cpu);

		if (err) {
			free(per_cpu);
			return err;
		}
		ret_values[key] = 0;
		for (int cpu = 0; cpu < cpus; cpu++)
			ret_values[key] += per_cpu[cpu];
	}
	free(per_cpu);
	return 0;
}
