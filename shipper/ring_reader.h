/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A reader of one BPF ring buffer map that maps the data pages once.
 *
 * libbpf's reader maps them twice in a row, so that a record wrapping the
 * end reads in one piece; the kernel inserts every page at mmap(), so the
 * second copy is as many more pages of resident set (8 MiB with the
 * default ring) for the rare record that wraps. Here such a record is
 * copied into one piece instead.
 */
#ifndef KACCESS_RING_READER_H
#define KACCESS_RING_READER_H

#include <stddef.h>
#include <stdint.h>

/* One record: its bytes, valid only during the call. */
typedef void ring_record_fn(void *ctx, const void *record, size_t record_bytes);

struct ring_reader {
	unsigned long *consumer_pos;       /* the first word of the consumer page: ours to advance */
	const unsigned long *producer_pos; /* the first word of the producer page */
	const uint8_t *data;               /* the data pages, mapped once */
	size_t data_bytes;                 /* a power of two */
	uint8_t *wrap_copy;                /* a record that wraps the end, in one piece */
	size_t wrap_copy_bytes;
	ring_record_fn *on_record;
	void *ctx;
	void *consumer_map, *producer_map; /* the mappings, NULL for memory given by a test */
	size_t page_bytes;
	int epoll_fd;
};

/* Map ring buffer map `map_fd` and watch it for wakeups: 0 or -errno. */
int ring_reader_open(struct ring_reader *reader, int map_fd, ring_record_fn *on_record, void *ctx);

/* Read the ring laid out in memory the caller owns (the unit tests). */
void ring_reader_use_memory(struct ring_reader *reader, unsigned long *consumer_pos,
			    const unsigned long *producer_pos, const void *data, size_t data_bytes,
			    ring_record_fn *on_record, void *ctx);

void ring_reader_close(struct ring_reader *reader); /* safe on a zeroed or closed one */

/* Wait up to `timeout_ms` for the kernel's wakeup: the events seen, or -errno. */
int ring_reader_wait(struct ring_reader *reader, int timeout_ms);

/* Hand every committed record to on_record: how many, or -ENOMEM. */
int ring_reader_consume(struct ring_reader *reader);

/* Bytes written and not yet consumed. */
size_t ring_reader_fill_bytes(const struct ring_reader *reader);

#endif
