// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "ring_reader.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <linux/bpf.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include <bpf/bpf.h>

/* Bytes a record of `header_len` takes in the ring: header and data, 8-aligned. */
static size_t record_space(uint32_t header_len)
{
	size_t data_bytes = header_len & ~(BPF_RINGBUF_BUSY_BIT | BPF_RINGBUF_DISCARD_BIT);

	return (data_bytes + BPF_RINGBUF_HDR_SZ + 7) & ~(size_t)7;
}

static int ring_data_bytes(int map_fd, size_t *data_bytes)
{
	struct bpf_map_info info = {};
	__u32 info_bytes = sizeof(info);

	if (bpf_obj_get_info_by_fd(map_fd, &info, &info_bytes))
		return -errno;
	if (info.type != BPF_MAP_TYPE_RINGBUF)
		return -EINVAL;
	*data_bytes = info.max_entries;
	return 0;
}

static int map_pages(struct ring_reader *reader, int map_fd)
{
	size_t page = reader->page_bytes;

	/* the kernel lets us write the consumer page only, and only it */
	reader->consumer_map = mmap(NULL, page, PROT_READ | PROT_WRITE, MAP_SHARED, map_fd, 0);
	if (reader->consumer_map == MAP_FAILED) {
		reader->consumer_map = NULL;
		return -errno;
	}
	reader->producer_map = mmap(NULL, page + reader->data_bytes, PROT_READ, MAP_SHARED, map_fd, page);
	if (reader->producer_map == MAP_FAILED) {
		reader->producer_map = NULL;
		return -errno;
	}
	reader->consumer_pos = reader->consumer_map;
	reader->producer_pos = reader->producer_map;
	reader->data = (const uint8_t *)reader->producer_map + page;
	return 0;
}

static int watch_wakeups(struct ring_reader *reader, int map_fd)
{
	struct epoll_event event = { .events = EPOLLIN };

	reader->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (reader->epoll_fd < 0)
		return -errno;
	if (epoll_ctl(reader->epoll_fd, EPOLL_CTL_ADD, map_fd, &event))
		return -errno;
	return 0;
}

int ring_reader_open(struct ring_reader *reader, int map_fd, ring_record_fn *on_record, void *ctx)
{
	int err;

	*reader = (struct ring_reader){
		.on_record = on_record,
		.ctx = ctx,
		.page_bytes = sysconf(_SC_PAGESIZE),
		.epoll_fd = -1,
	};
	err = ring_data_bytes(map_fd, &reader->data_bytes);
	err = err ?: map_pages(reader, map_fd);
	err = err ?: watch_wakeups(reader, map_fd);
	if (err)
		ring_reader_close(reader);
	return err;
}

void ring_reader_use_memory(struct ring_reader *reader, unsigned long *consumer_pos,
			    const unsigned long *producer_pos, const void *data, size_t data_bytes,
			    ring_record_fn *on_record, void *ctx)
{
	*reader = (struct ring_reader){
		.consumer_pos = consumer_pos,
		.producer_pos = producer_pos,
		.data = data,
		.data_bytes = data_bytes,
		.on_record = on_record,
		.ctx = ctx,
		.epoll_fd = -1,
	};
}

void ring_reader_close(struct ring_reader *reader)
{
	if (reader->consumer_map)
		munmap(reader->consumer_map, reader->page_bytes);
	if (reader->producer_map)
		munmap(reader->producer_map, reader->page_bytes + reader->data_bytes);
	if (reader->consumer_map && reader->epoll_fd >= 0) /* a zeroed reader's 0 is not ours */
		close(reader->epoll_fd);
	free(reader->wrap_copy);
	*reader = (struct ring_reader){ .epoll_fd = -1 };
}

int ring_reader_wait(struct ring_reader *reader, int timeout_ms)
{
	struct epoll_event event;
	int n = epoll_wait(reader->epoll_fd, &event, 1, timeout_ms);

	return n < 0 ? -errno : n;
}

/* The record's bytes at data offset `offset`, in one piece: NULL if out of memory. */
static const void *record_bytes_at(struct ring_reader *reader, size_t offset, size_t record_bytes)
{
	size_t to_end = reader->data_bytes - offset;

	if (record_bytes <= to_end)
		return reader->data + offset;
	if (reader->wrap_copy_bytes < record_bytes) {
		uint8_t *bigger = realloc(reader->wrap_copy, record_bytes);

		if (!bigger)
			return NULL;
		reader->wrap_copy = bigger;
		reader->wrap_copy_bytes = record_bytes;
	}
	memcpy(reader->wrap_copy, reader->data + offset, to_end);
	memcpy(reader->wrap_copy + to_end, reader->data, record_bytes - to_end);
	return reader->wrap_copy;
}

/*
 * The kernel's protocol (kernel/bpf/ringbuf.c): each record starts with a
 * 32-bit length, 8-aligned, so the header never wraps; BUSY while the
 * producer still writes it, DISCARD once it gave it up. Our position moves
 * past each record as it is handled, so the producer reuses its space.
 */
int ring_reader_consume(struct ring_reader *reader)
{
	size_t mask = reader->data_bytes - 1;
	unsigned long consumed = __atomic_load_n(reader->consumer_pos, __ATOMIC_ACQUIRE);
	unsigned long produced;
	int handled = 0;

	while (consumed < (produced = __atomic_load_n(reader->producer_pos, __ATOMIC_ACQUIRE))) {
		while (consumed < produced) {
			const uint32_t *header = (const uint32_t *)(reader->data + (consumed & mask));
			uint32_t len = __atomic_load_n(header, __ATOMIC_ACQUIRE);

			if (len & BPF_RINGBUF_BUSY_BIT)
				return handled;
			if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
				size_t offset = (consumed + BPF_RINGBUF_HDR_SZ) & mask;
				const void *record = record_bytes_at(reader, offset, len);

				if (!record)
					return -ENOMEM;
				reader->on_record(reader->ctx, record, len);
				handled++;
			}
			consumed += record_space(len);
			__atomic_store_n(reader->consumer_pos, consumed, __ATOMIC_RELEASE);
		}
	}
	return handled;
}

size_t ring_reader_fill_bytes(const struct ring_reader *reader)
{
	unsigned long consumed = __atomic_load_n(reader->consumer_pos, __ATOMIC_ACQUIRE);
	unsigned long produced = __atomic_load_n(reader->producer_pos, __ATOMIC_ACQUIRE);

	return produced - consumed;
}
