/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Reading the kernel maps: draining an idle aggregate generation, reading
 * the live one and the connection table, summing the loss counters.
 */
#ifndef KACCESS_MAPS_READ_H
#define KACCESS_MAPS_READ_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kaccess.h"

struct agg_row {
	struct kaccess_agg_key key;
	struct kaccess_agg_value value;
};

struct agg_rows {
	struct agg_row *rows;
	size_t count, capacity;
};

struct conn_row {
	uint64_t sk;
	struct kaccess_conn conn;
};

struct conn_rows {
	struct conn_row *rows;
	size_t count, capacity;
};

/* Append every row of an aggregate map; with `and_delete` the map is drained. */
int agg_rows_collect(int map_fd, bool and_delete, struct agg_rows *rows);

/* Order rows by bucket, cgroup, role, peer and port, for stable output. */
void agg_rows_sort(struct agg_rows *rows);

void agg_rows_clear(struct agg_rows *rows);
void agg_rows_free(struct agg_rows *rows);

struct http_row {
	struct kaccess_http_key key;
	struct kaccess_http_value value;
};

struct http_rows {
	struct http_row *rows;
	size_t count, capacity;
};

/* Append one row; 0 or -ENOMEM. */
int http_rows_append(struct http_rows *rows, const struct http_row *row);

/* Append every row of an HTTP generation map; with `and_delete` it is drained. */
int http_rows_collect(int map_fd, bool and_delete, struct http_rows *rows);

/* Order by bucket, cgroup, role, peer, port and endpoint hash. */
void http_rows_sort(struct http_rows *rows);

/* Add the numbers of `from` into `into` (rows of the same key and bucket). */
void http_value_add(struct kaccess_http_value *into, const struct kaccess_http_value *from);

/*
 * Sum sorted rows with the same bucket and key into one (HTTP/1.x rows from
 * the kernel and HTTP/2 rows from userspace can share a key).
 */
void http_rows_merge_sorted(struct http_rows *rows);

void http_rows_free(struct http_rows *rows);

/* Append every live connection. */
int conn_rows_collect(int map_fd, struct conn_rows *rows);
void conn_rows_free(struct conn_rows *rows);

/* Sum the per-CPU loss counters into `ret_values[KACCESS_CTR_MAX]`. */
int counters_read(int map_fd, uint64_t *ret_values);


#endif
