/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * How full a BPF ring buffer is: its consumer and producer positions, read
 * from the map's first two pages (mapped read-only here, next to libbpf's
 * own mapping of them).
 */
#ifndef KACCESS_RING_FILL_H
#define KACCESS_RING_FILL_H

#include <stddef.h>
#include <stdint.h>

struct ring_fill {
	void *consumer_page, *producer_page;
	size_t page_bytes;
};

/* Map the positions of ring buffer map `map_fd`: 0 or -errno. */
int ring_fill_open(struct ring_fill *fill, int map_fd);
void ring_fill_close(struct ring_fill *fill); /* safe on a zeroed or closed one */

/* Bytes written and not yet consumed (0 when not open). */
size_t ring_fill_bytes(const struct ring_fill *fill);

#endif
