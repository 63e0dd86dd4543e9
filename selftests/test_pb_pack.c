// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The one-pass encoder (shipper/oap/pb_pack.c) against protobuf-c's own:
 * every message of the two OAP protocols, filled at random from its
 * descriptor (each field present or not, values at the edges of their
 * varint sizes, negative numbers, empty and absent strings, every oneof
 * case, repeated fields of 0 to 3), must encode to the same bytes. And
 * the exchange message written directly from an HTTP record
 * (oap_access_log.c) must be what protobuf-c packs from the structs the
 * shipper built for it before. No root.
 */
#include <errno.h>
#include <float.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ktest.h"
#include "oap/oap.h"
#include "oap/pb_pack.h"
#include "oap_access_log.h"

#define ROUNDS 3000
#define MAX_DEPTH 7
#define ARENA_BYTES (1 << 20)

/* Everything one random message points to, freed at once. */
struct arena {
	char *base;
	size_t used;
};

static void *arena_alloc(struct arena *a, size_t size)
{
	size_t aligned = (a->used + 15) & ~(size_t)15;

	if (aligned + size > ARENA_BYTES)
		return NULL;
	a->used = aligned + size;
	return memset(a->base + aligned, 0, size);
}

/* A small deterministic generator, so that a failure repeats. */
static uint64_t next_random(uint64_t *state)
{
	*state ^= *state << 13;
	*state ^= *state >> 7;
	*state ^= *state << 17;
	return *state;
}

/* Values where varints change size, both signs, and anything. */
static uint64_t edge_value(uint64_t *rng)
{
	static const uint64_t edges[] = {
		0, 1, 127, 128, 16383, 16384, 0xffffffffull, 0x100000000ull, INT64_MAX, UINT64_MAX,
		(uint64_t)-1ll, (uint64_t)(int64_t)INT32_MIN, INT32_MAX,
	};
	uint64_t pick = next_random(rng) % (sizeof(edges) / sizeof(edges[0]) + 3);

	return pick < sizeof(edges) / sizeof(edges[0]) ? edges[pick] : next_random(rng) >> (pick % 60);
}

static char *random_string(struct arena *a, uint64_t *rng)
{
	size_t len = next_random(rng) % 4 == 0 ? 0 : next_random(rng) % 200;
	char *s = arena_alloc(a, len + 1);

	for (size_t i = 0; s && i < len; i++)
		s[i] = (char)(' ' + next_random(rng) % 95);
	return s;
}

static void fill_message(ProtobufCMessage *msg, const ProtobufCMessageDescriptor *desc, int depth,
			 struct arena *a, uint64_t *rng);

/* One value of field `f` at `member`. */
static void fill_value(const ProtobufCFieldDescriptor *f, void *member, int depth, struct arena *a,
		       uint64_t *rng)
{
	uint64_t v = edge_value(rng);

	switch (f->type) {
	case PROTOBUF_C_TYPE_INT32:
	case PROTOBUF_C_TYPE_SINT32:
	case PROTOBUF_C_TYPE_UINT32:
	case PROTOBUF_C_TYPE_ENUM:
	case PROTOBUF_C_TYPE_FIXED32:
	case PROTOBUF_C_TYPE_SFIXED32:
		*(uint32_t *)member = (uint32_t)v;
		break;
	case PROTOBUF_C_TYPE_INT64:
	case PROTOBUF_C_TYPE_SINT64:
	case PROTOBUF_C_TYPE_UINT64:
	case PROTOBUF_C_TYPE_FIXED64:
	case PROTOBUF_C_TYPE_SFIXED64:
		*(uint64_t *)member = v;
		break;
	case PROTOBUF_C_TYPE_BOOL:
		*(protobuf_c_boolean *)member = v & 1;
		break;
	case PROTOBUF_C_TYPE_FLOAT:
		*(float *)member = (float)(int64_t)v / 3.0f;
		break;
	case PROTOBUF_C_TYPE_DOUBLE: {
		static const double doubles[] = { 0.0, -0.0, 1.5, -2.25, DBL_MAX, DBL_MIN, 1e-300 };

		*(double *)member = v % 2 ? doubles[v % 7] : (double)(int64_t)v / 7.0;
		break;
	}
	case PROTOBUF_C_TYPE_STRING:
		*(char **)member = v % 5 == 0 ? NULL : random_string(a, rng);
		break;
	case PROTOBUF_C_TYPE_BYTES: {
		ProtobufCBinaryData *bytes = member;

		bytes->len = v % 40;
		bytes->data = arena_alloc(a, bytes->len + 1);
		if (!bytes->data)
			bytes->len = 0;
		break;
	}
	case PROTOBUF_C_TYPE_MESSAGE: {
		const ProtobufCMessageDescriptor *sub = f->descriptor;
		ProtobufCMessage *child = depth < MAX_DEPTH ? arena_alloc(a, sub->sizeof_message) : NULL;

		if (child)
			fill_message(child, sub, depth + 1, a, rng);
		*(ProtobufCMessage **)member = child;
		break;
	}
	}
}

static void fill_repeated(const ProtobufCFieldDescriptor *f, void *member, size_t *count, int depth,
			  struct arena *a, uint64_t *rng)
{
	size_t n = depth < MAX_DEPTH ? next_random(rng) % 4 : 0;
	char *array = n ? arena_alloc(a, n * pb_value_size(f)) : NULL;

	if (!array)
		n = 0;
	for (size_t i = 0; i < n; i++) {
		fill_value(f, array + i * pb_value_size(f), depth, a, rng);
		/* protobuf-c reads no NULL element: a string is "", a message ends the array */
		if (f->type == PROTOBUF_C_TYPE_STRING && !*(char **)(array + i * pb_value_size(f)))
			*(const char **)(array + i * pb_value_size(f)) = "";
		if (f->type == PROTOBUF_C_TYPE_MESSAGE && !*(void **)(array + i * pb_value_size(f))) {
			n = i;
			break;
		}
	}
	*count = n;
	*(char **)member = array;
}

/* Each field present with probability 3/4; a oneof ends up with the case of its last field filled. */
static void fill_message(ProtobufCMessage *msg, const ProtobufCMessageDescriptor *desc, int depth,
			 struct arena *a, uint64_t *rng)
{
	protobuf_c_message_init(desc, msg);
	for (unsigned int i = 0; i < desc->n_fields; i++) {
		const ProtobufCFieldDescriptor *f = &desc->fields[i];
		void *member = (char *)msg + f->offset;
		void *quantifier = (char *)msg + f->quantifier_offset;

		if (next_random(rng) % 4 == 0)
			continue;
		if (f->label == PROTOBUF_C_LABEL_REPEATED) {
			fill_repeated(f, member, quantifier, depth, a, rng);
			continue;
		}
		fill_value(f, member, depth, a, rng);
		if (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF)
			*(uint32_t *)quantifier = f->id;
		else if (f->label == PROTOBUF_C_LABEL_OPTIONAL && f->type != PROTOBUF_C_TYPE_MESSAGE &&
			 f->type != PROTOBUF_C_TYPE_STRING)
			*(protobuf_c_boolean *)quantifier = 1;
	}
}

/* ROUNDS random messages of `desc`: both encoders agree byte for byte; how many bytes in all. */
static size_t compare_encoders(struct __test_metadata *_metadata, const ProtobufCMessageDescriptor *desc,
			       uint64_t seed)
{
	struct arena arena = { .base = malloc(ARENA_BYTES) };
	struct pb_writer writer = { 0 };
	uint64_t rng = seed;
	size_t total = 0;

	for (int round = 0; round < ROUNDS && arena.base; round++) {
		ProtobufCMessage *msg;
		size_t want_len;
		uint8_t *want, *got = NULL;
		size_t got_len = 0;
		long len;

		arena.used = 0;
		msg = arena_alloc(&arena, desc->sizeof_message);
		ASSERT_NE(NULL, msg);
		fill_message(msg, desc, 0, &arena, &rng);
		want_len = protobuf_c_message_get_packed_size(msg);
		want = malloc(want_len + 1);
		ASSERT_NE(NULL, want);
		ASSERT_EQ(want_len, protobuf_c_message_pack(msg, want));
		pb_writer_reset(&writer);
		len = pb_write_message(&writer, msg);
		ASSERT_EQ((long)want_len, len) TH_LOG("%s, round %d", desc->name, round);
		ASSERT_EQ(0, memcmp(want, pb_writer_data(&writer), want_len)) TH_LOG("%s, round %d", desc->name, round);
		ASSERT_EQ(0, pb_pack_alloc(msg, &got, &got_len));
		ASSERT_EQ(want_len, got_len);
		ASSERT_EQ(0, memcmp(want, got, want_len));
		total += want_len;
		free(got);
		free(want);
	}
	pb_writer_free(&writer);
	free(arena.base);
	return total;
}

TEST(access_log_messages_encode_as_protobuf_c_does)
{
	/* the messages are big enough to grow the writer past its first 4 KiB many times */
	EXPECT_LT(ROUNDS * 100, compare_encoders(_metadata, &skywalking__v3__ebpfaccess_log_message__descriptor, 1));
}

TEST(meter_collections_encode_as_protobuf_c_does)
{
	EXPECT_LT(ROUNDS * 10, compare_encoders(_metadata, &skywalking__v3__meter_data_collection__descriptor, 2));
	EXPECT_LT(ROUNDS * 10, compare_encoders(_metadata, &skywalking__v3__meter_data__descriptor, 3));
}

/* ---- an exchange's message, directly and through the structs ---- */

#define RECORD_ROUNDS 5000

static const char *const methods[] = { "GET", "POST", "DELETE", "CONNECT", "BREW", "", NULL };
static const char *const sw8s[] = {
	"1-dHJhY2UtaWQ=-c2VnbWVudC1pZA==-3-c2VydmljZQ==-aW5zdGFuY2U=-L2FwaQ==-aG9zdDo4MA==",
	"1-broken", NULL,
};
static const char *const b3s[] = { "80f198ee56343ba864fe8b2a57d3eff7-e457b5a2e4d86bd1-1", "x", NULL };
static const char *const traceparents[] = {
	"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "00-zz", NULL,
};

/* One of `count` choices, NULL among them. */
#define PICK(array, rng) ((array)[next_random(rng) % (sizeof(array) / sizeof((array)[0]))])

static uint64_t pick_calls(uint64_t *rng)
{
	static const uint64_t calls[] = { 0, 1, 2, 63, 64, 100, 127, 128 };

	return PICK(calls, rng);
}

static void random_identity(struct k8s_identity *id, struct arena *a, uint64_t *rng)
{
	char *service = random_string(a, rng), *instance = random_string(a, rng);

	memset(id, 0, sizeof(*id));
	id->kind = K8S_KIND_POD;
	snprintf(id->service, sizeof(id->service), "%s", service ? service : "");
	snprintf(id->instance, sizeof(id->instance), "%s", instance ? instance : "");
}

static void random_record(struct http_record *r, struct arena *a, uint64_t *rng)
{
	static const uint8_t v4_mapped[16] = { [10] = 0xff, [11] = 0xff, 10, 1, 2, 3 };
	static const uint8_t v6[16] = { 0xfd, 0, [15] = 7 };

	memset(r, 0, sizeof(*r));
	r->agg.role = next_random(rng) % 2 ? KACCESS_ROLE_SERVER : KACCESS_ROLE_CLIENT;
	memcpy(r->agg.peer_addr, next_random(rng) % 2 ? v4_mapped : v6, 16);
	r->agg.peer_port = (uint16_t)edge_value(rng);
	r->local_port = (uint16_t)edge_value(rng);
	r->remote_port = (uint16_t)edge_value(rng);
	r->version = next_random(rng) % 2 ? KACCESS_HTTP_VERSION_2 : KACCESS_HTTP_VERSION_1_1;
	r->status = (uint16_t)(next_random(rng) % 4 ? 100 + next_random(rng) % 500 : edge_value(rng));
	r->end_ns = edge_value(rng);
	r->start_ns = next_random(rng) % 4 ? r->end_ns - next_random(rng) % 1000000000 : edge_value(rng);
	r->request_header_bytes = edge_value(rng);
	r->request_body_bytes = edge_value(rng);
	r->response_header_bytes = edge_value(rng);
	r->response_body_bytes = edge_value(rng);
	r->calls.request_calls = (uint32_t)pick_calls(rng);
	r->calls.response_calls = (uint32_t)pick_calls(rng);
	r->calls.request_call_ns = next_random(rng) % 3 ? next_random(rng) % 10000000 : edge_value(rng);
	r->calls.response_call_ns = next_random(rng) % 3 ? next_random(rng) % 10000000 : edge_value(rng);
	r->method = PICK(methods, rng);
	r->path = next_random(rng) % 5 ? random_string(a, rng) : NULL;
	r->host = next_random(rng) % 5 ? random_string(a, rng) : NULL;
	r->sw8 = PICK(sw8s, rng);
	r->b3 = PICK(b3s, rng);
	r->traceparent = PICK(traceparents, rng);
}

/*
 * RECORD_ROUNDS random exchanges, each with and without its calls: the
 * direct writer's bytes are protobuf-c's from the structs, or the direct
 * writer declines (more calls than one message holds). How many it wrote.
 */
TEST(exchange_messages_written_directly_as_protobuf_c_packs_them)
{
	struct arena arena = { .base = malloc(ARENA_BYTES) };
	static uint8_t want[1 << 16], got[1 << 16];
	struct k8s_identity local, peer;
	unsigned int direct = 0, declined = 0;
	uint64_t rng = 4;

	ASSERT_NE(NULL, arena.base);
	for (int round = 0; round < RECORD_ROUNDS; round++) {
		struct http_record r;
		bool with_peer = next_random(&rng) % 2;

		arena.used = 0;
		random_record(&r, &arena, &rng);
		random_identity(&local, &arena, &rng);
		random_identity(&peer, &arena, &rng);
		for (int with_calls = 0; with_calls < 2; with_calls++) {
			const struct k8s_identity *p = with_peer ? &peer : NULL;
			long want_len = access_log_encode_http(&r, &local, p, with_calls,
							       ACCESS_LOG_ENCODE_STRUCTS, want, sizeof(want));
			long got_len = access_log_encode_http(&r, &local, p, with_calls,
							      ACCESS_LOG_ENCODE_DIRECT, got, sizeof(got));

			ASSERT_LT(0, want_len) TH_LOG("round %d", round);
			if (got_len == -EOPNOTSUPP) {
				ASSERT_TRUE(with_calls);
				ASSERT_LT(128, (uint64_t)r.calls.request_calls + r.calls.response_calls);
				declined++;
				continue;
			}
			ASSERT_EQ(want_len, got_len) TH_LOG("round %d, calls %d", round, with_calls);
			ASSERT_EQ(0, memcmp(want, got, (size_t)want_len)) TH_LOG("round %d, calls %d", round, with_calls);
			direct++;
		}
	}
	TH_LOG("%u messages written directly, %u left to the structs", direct, declined);
	EXPECT_LT(RECORD_ROUNDS, direct);
	EXPECT_LT(100, declined);
	free(arena.base);
}

/* What it writes nothing for, protobuf-c writes nothing for: an empty message. */
TEST(empty_and_default_fields_write_nothing)
{
	Skywalking__V3__EBPFAccessLogMessage msg = SKYWALKING__V3__EBPFACCESS_LOG_MESSAGE__INIT;
	Skywalking__V3__AccessLogConnection connection = SKYWALKING__V3__ACCESS_LOG_CONNECTION__INIT;
	struct pb_writer writer = { 0 };

	EXPECT_EQ(0, pb_write_message(&writer, &msg.base));
	msg.connection = &connection; /* present but empty: a tag and a zero length */
	EXPECT_EQ(2, pb_write_message(&writer, &msg.base));
	EXPECT_EQ(0x12, pb_writer_data(&writer)[0]);
	EXPECT_EQ(0x00, pb_writer_data(&writer)[1]);
	pb_writer_free(&writer);
}

/* Unknown fields are refused, for pb_pack_alloc to hand the message to protobuf-c. */
TEST(unknown_fields_fall_back_to_protobuf_c)
{
	Skywalking__V3__EBPFAccessLogMessage msg = SKYWALKING__V3__EBPFACCESS_LOG_MESSAGE__INIT;
	uint8_t payload[] = { 0x2a };
	ProtobufCMessageUnknownField unknown = { .tag = 99, .wire_type = PROTOBUF_C_WIRE_TYPE_VARINT,
						 .len = 1, .data = payload };
	struct pb_writer writer = { 0 };
	uint8_t want[16], *got = NULL;
	size_t got_len = 0;

	msg.base.n_unknown_fields = 1;
	msg.base.unknown_fields = &unknown;
	EXPECT_EQ(-EOPNOTSUPP, pb_write_message(&writer, &msg.base));
	ASSERT_EQ(0, pb_pack_alloc(&msg.base, &got, &got_len));
	ASSERT_EQ(protobuf_c_message_pack(&msg.base, want), got_len);
	EXPECT_EQ(0, memcmp(want, got, got_len));
	free(got);
	pb_writer_free(&writer);
}

TEST_HARNESS_MAIN
