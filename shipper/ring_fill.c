// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "ring_fill.h"

#include <errno.h>
#include <sys/mman.h>
#include <unistd.h>

int ring_fill_open(struct ring_fill *fill, int map_fd)
{
	long page = sysconf(_SC_PAGESIZE);

	*fill = (struct ring_fill){ .page_bytes = page };
	fill->consumer_page = mmap(NULL, page, PROT_READ, MAP_SHARED, map_fd, 0);
	if (fill->consumer_page == MAP_FAILED) {
		fill->consumer_page = NULL;
		return -errno;
	}
	fill->producer_page = mmap(NULL, page, PROT_READ, MAP_SHARED, map_fd, page);
	if (fill->producer_page == MAP_FAILED) {
		int err = -errno;

		fill->producer_page = NULL;
		ring_fill_close(fill);
		return err;
	}
	return 0;
}

void ring_fill_close(struct ring_fill *fill)
{
	if (fill->consumer_page)
		munmap(fill->consumer_page, fill->page_bytes);
	if (fill->producer_page)
		munmap(fill->producer_page, fill->page_bytes);
	fill->consumer_page = fill->producer_page = NULL;
}

size_t ring_fill_bytes(const struct ring_fill *fill)
{
	unsigned long consumed, produced;

	if (!fill->consumer_page || !fill->producer_page)
		return 0;
	/* each position is the first word of its page, as the kernel lays them out */
	consumed = __atomic_load_n((const unsigned long *)fill->consumer_page, __ATOMIC_ACQUIRE);
	produced = __atomic_load_n((const unsigned long *)fill->producer_page, __ATOMIC_ACQUIRE);
	return produced - consumed;
}
