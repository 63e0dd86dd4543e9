// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The ring buffer reader: records in order, a record that wraps the end
 * whole, busy and discarded records as the kernel marks them (in memory
 * laid out here), then a real BPF ring buffer map written by a program the
 * kernel runs, with the data pages mapped once.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <linux/bpf.h>

#include <bpf/bpf.h>

#include "ktest.h"
#include "ring_reader.h"

#define DATA_BYTES 256
#define MAX_SEEN 512

struct seen {
	size_t count;
	size_t bytes[MAX_SEEN];
	uint8_t first[MAX_SEEN], last[MAX_SEEN];
	size_t wrong_bytes; /* bytes that differ from the pattern the writer used */
};

/* The writers' pattern: byte i of a record is i / 4 + 1. */
static uint8_t pattern_byte(size_t i)
{
	return (uint8_t)(i / 4 + 1);
}

static void note_record(void *ctx, const void *record, size_t record_bytes)
{
	struct seen *seen = ctx;
	const uint8_t *bytes = record;

	if (seen->count >= MAX_SEEN)
		return;
	seen->bytes[seen->count] = record_bytes;
	seen->first[seen->count] = record_bytes ? bytes[0] : 0;
	seen->last[seen->count] = record_bytes ? bytes[record_bytes - 1] : 0;
	seen->count++;
	for (size_t i = 0; i < record_bytes; i++)
		seen->wrong_bytes += bytes[i] != pattern_byte(i);
}

/* A ring in memory, written as the kernel does. */
struct fake_ring {
	unsigned long consumer_pos, producer_pos;
	uint64_t data[DATA_BYTES / 8];
};

/* Append a record of `record_bytes` with `flags` (BUSY, DISCARD) at the producer. */
static void fake_write(struct fake_ring *ring, size_t record_bytes, uint32_t flags)
{
	uint8_t *data = (uint8_t *)ring->data;
	size_t at = ring->producer_pos & (DATA_BYTES - 1);
	uint32_t header[2] = { (uint32_t)record_bytes | flags, 0 };

	memcpy(data + at, header, sizeof(header));
	for (size_t i = 0; i < record_bytes; i++)
		data[(at + BPF_RINGBUF_HDR_SZ + i) & (DATA_BYTES - 1)] = pattern_byte(i);
	ring->producer_pos += (record_bytes + BPF_RINGBUF_HDR_SZ + 7) & ~7UL;
}

static void read_fake(struct ring_reader *reader, struct fake_ring *ring, struct seen *seen)
{
	ring_reader_use_memory(reader, &ring->consumer_pos, &ring->producer_pos, ring->data,
			       DATA_BYTES, note_record, seen);
}

TEST(records_come_in_order_and_free_their_space)
{
	struct fake_ring ring = {};
	struct ring_reader reader;
	struct seen seen = {};

	fake_write(&ring, 5, 0);
	fake_write(&ring, 16, 0);
	read_fake(&reader, &ring, &seen);
	EXPECT_EQ(16 + 24, ring_reader_fill_bytes(&reader));
	ASSERT_EQ(2, ring_reader_consume(&reader));
	ASSERT_EQ(2, seen.count);
	EXPECT_EQ(5, seen.bytes[0]);
	EXPECT_EQ(16, seen.bytes[1]);
	EXPECT_EQ(0, seen.wrong_bytes);
	EXPECT_EQ(ring.producer_pos, ring.consumer_pos);
	EXPECT_EQ(0, ring_reader_fill_bytes(&reader));
	EXPECT_EQ(0, ring_reader_consume(&reader));
	ring_reader_close(&reader);
}

TEST(record_wrapping_the_end_arrives_whole)
{
	struct fake_ring ring = { .consumer_pos = DATA_BYTES - 16, .producer_pos = DATA_BYTES - 16 };
	struct ring_reader reader;
	struct seen seen = {};

	/* header at 240, 8 bytes of data to the end, 22 from the start */
	fake_write(&ring, 30, 0);
	fake_write(&ring, 3, 0);
	read_fake(&reader, &ring, &seen);
	ASSERT_EQ(2, ring_reader_consume(&reader));
	EXPECT_EQ(30, seen.bytes[0]);
	EXPECT_EQ(pattern_byte(0), seen.first[0]);
	EXPECT_EQ(pattern_byte(29), seen.last[0]);
	EXPECT_EQ(3, seen.bytes[1]);
	EXPECT_EQ(0, seen.wrong_bytes);
	EXPECT_EQ(30, reader.wrap_copy_bytes) TH_LOG("the wrapping record was copied, once");
	EXPECT_EQ(ring.producer_pos, ring.consumer_pos);
	ring_reader_close(&reader);
}

TEST(header_at_the_last_word_leaves_data_at_the_start)
{
	struct fake_ring ring = { .consumer_pos = DATA_BYTES - 8, .producer_pos = DATA_BYTES - 8 };
	struct ring_reader reader;
	struct seen seen = {};

	fake_write(&ring, 12, 0);
	read_fake(&reader, &ring, &seen);
	ASSERT_EQ(1, ring_reader_consume(&reader));
	EXPECT_EQ(12, seen.bytes[0]);
	EXPECT_EQ(0, seen.wrong_bytes);
	EXPECT_EQ(0, reader.wrap_copy_bytes) TH_LOG("in one piece already: nothing to copy");
	ring_reader_close(&reader);
}

TEST(busy_record_stops_the_reader_until_committed)
{
	struct fake_ring ring = {};
	struct ring_reader reader;
	struct seen seen = {};
	unsigned long busy_at;

	fake_write(&ring, 8, 0);
	busy_at = ring.producer_pos;
	fake_write(&ring, 8, BPF_RINGBUF_BUSY_BIT);
	fake_write(&ring, 8, 0);
	read_fake(&reader, &ring, &seen);
	ASSERT_EQ(1, ring_reader_consume(&reader));
	EXPECT_EQ(busy_at, ring.consumer_pos) TH_LOG("stops at the record still being written");
	((uint32_t *)ring.data)[busy_at / 4] &= ~BPF_RINGBUF_BUSY_BIT; /* the producer commits */
	ASSERT_EQ(2, ring_reader_consume(&reader));
	EXPECT_EQ(3, seen.count);
	EXPECT_EQ(ring.producer_pos, ring.consumer_pos);
	ring_reader_close(&reader);
}

TEST(discarded_record_is_skipped)
{
	struct fake_ring ring = {};
	struct ring_reader reader;
	struct seen seen = {};

	fake_write(&ring, 40, BPF_RINGBUF_DISCARD_BIT);
	fake_write(&ring, 7, 0);
	read_fake(&reader, &ring, &seen);
	ASSERT_EQ(1, ring_reader_consume(&reader));
	ASSERT_EQ(1, seen.count);
	EXPECT_EQ(7, seen.bytes[0]);
	EXPECT_EQ(ring.producer_pos, ring.consumer_pos);
	ring_reader_close(&reader);
}

/* ---- a real ring buffer map ---- */

#define KERNEL_RECORD_BYTES 44 /* 56 bytes in the ring: wraps a 4096-byte ring at changing offsets */
#define INSN(c, d, s, o, i) ((struct bpf_insn){ .code = (c), .dst_reg = (d), .src_reg = (s), .off = (o), .imm = (i) })

/*
 * A socket filter that writes one KERNEL_RECORD_BYTES record in the
 * pattern with bpf_ringbuf_output() each time it runs.
 */
static int load_writer(int ring_fd)
{
	struct bpf_insn insns[32];
	int n = 0;

	for (int word = 0; word < KERNEL_RECORD_BYTES / 4; word++) /* *(u32 *)(r10 - 48 + 4w) = (w+1) x 4 */
		insns[n++] = INSN(BPF_ST | BPF_MEM | BPF_W, BPF_REG_10, 0, -48 + 4 * word,
				  0x01010101 * (word + 1));
	insns[n++] = INSN(BPF_LD | BPF_IMM | BPF_DW, BPF_REG_1, BPF_PSEUDO_MAP_FD, 0, ring_fd);
	insns[n++] = INSN(0, 0, 0, 0, 0);
	insns[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_X, BPF_REG_2, BPF_REG_10, 0, 0);
	insns[n++] = INSN(BPF_ALU64 | BPF_ADD | BPF_K, BPF_REG_2, 0, 0, -48);
	insns[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_3, 0, 0, KERNEL_RECORD_BYTES);
	insns[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_4, 0, 0, 0);
	insns[n++] = INSN(BPF_JMP | BPF_CALL, 0, 0, 0, BPF_FUNC_ringbuf_output);
	insns[n++] = INSN(BPF_ALU64 | BPF_MOV | BPF_K, BPF_REG_0, 0, 0, 0);
	insns[n++] = INSN(BPF_JMP | BPF_EXIT, 0, 0, 0, 0);
	return bpf_prog_load(BPF_PROG_TYPE_SOCKET_FILTER, "kat_ring_writer", "GPL", insns, n, NULL);
}

/* Run the writer `times` times: one record each. */
static int write_records(int prog_fd, int times)
{
	char packet[64] = {};
	LIBBPF_OPTS(bpf_test_run_opts, opts, .data_in = packet, .data_size_in = sizeof(packet),
		    .repeat = times);

	return bpf_prog_test_run_opts(prog_fd, &opts);
}

/* The length of the mapping that holds `address`, from /proc/self/maps: 0 if none. */
static size_t mapping_bytes(const void *address)
{
	FILE *maps = fopen("/proc/self/maps", "r");
	unsigned long start, end, found = 0;
	char line[512];

	while (maps && fgets(line, sizeof(line), maps))
		if (sscanf(line, "%lx-%lx", &start, &end) == 2 && (unsigned long)address >= start &&
		    (unsigned long)address < end)
			found = end - start;
	if (maps)
		fclose(maps);
	return found;
}

TEST(kernel_records_wrap_a_real_ring_whole_with_its_data_mapped_once)
{
	size_t page = sysconf(_SC_PAGESIZE);
	int ring_fd = bpf_map_create(BPF_MAP_TYPE_RINGBUF, "kat_ring", 0, 0, page, NULL);
	struct ring_reader reader;
	struct seen seen = {};
	int prog_fd, written = 0;

	ASSERT_LE(0, ring_fd) TH_LOG("ring buffer map: %s", strerror(errno));
	prog_fd = load_writer(ring_fd);
	ASSERT_LE(0, prog_fd) TH_LOG("writer program: %s", strerror(errno));
	ASSERT_EQ(0, ring_reader_open(&reader, ring_fd, note_record, &seen));
	EXPECT_EQ(page + page, mapping_bytes(reader.data)) TH_LOG("producer page and data, once");
	EXPECT_EQ(page, reader.data_bytes);
	/* 8 rounds of 50 records (2,800 bytes) through 4,096: the ring wraps 5 times */
	for (int round = 0; round < 8; round++) {
		ASSERT_EQ(0, write_records(prog_fd, 50));
		written += 50;
		EXPECT_EQ(50 * 56, ring_reader_fill_bytes(&reader));
		/* the map polls ready while it holds data */
		EXPECT_EQ(1, ring_reader_wait(&reader, 0));
		ASSERT_EQ(50, ring_reader_consume(&reader));
		EXPECT_EQ(0, ring_reader_wait(&reader, 0));
	}
	EXPECT_EQ(written, seen.count);
	for (size_t i = 0; i < seen.count; i++)
		EXPECT_EQ(KERNEL_RECORD_BYTES, seen.bytes[i]);
	EXPECT_EQ(0, seen.wrong_bytes);
	EXPECT_EQ(KERNEL_RECORD_BYTES, reader.wrap_copy_bytes) TH_LOG("some record wrapped");
	ring_reader_close(&reader);
	close(prog_fd);
	close(ring_fd);
}

TEST_HARNESS_MAIN
