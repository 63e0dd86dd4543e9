// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * grpc_floor: what one access-log message costs the shipper's OAP path
 * alone, with nothing of the kernel side: the oap section's lower bound.
 *
 *   grpc_floor --to 127.0.0.1:PORT [--rate N] [--messages N]
 *
 * Against a running fake_oap, at a fixed rate (10,000 messages a second by
 * default) it sends the same number of messages twice, on a fresh sender
 * each time, and measures the process's CPU (user + system, every thread,
 * the sender's included) from the first message until the sender has written
 * the last, less what this program's own pacing costs: its thread's CPU
 * outside the queueing calls (its sleeps and wakeups, which a context
 * switch makes dear on a virtual machine, would add about 1 µs a message
 * at 10,000 a second):
 *   transport  one HTTP protocol log (no kernel logs) encoded once by
 *              access_log_encode_http(), queued as bytes: the queue and
 *              the sender's gRPC over HTTP/2 (shipper/oap/grpc_conn.c)
 *              per message;
 *   build      access_log_send_http() per exchange (its connection, the
 *              protocol log and two calls as kernel logs, as a server pod
 *              answering one request per read and write): building and
 *              packing too.
 *   encode     the same protocol log, decoded into protobuf-c's structs and
 *              encoded again and again, in this thread and off the
 *              network: by protobuf-c (sized, then packed) and by the
 *              shipper's one-pass encoder (shipper/oap/pb_pack.c); and
 *              the exchange's whole message (its two calls too) from the
 *              record: through protobuf-c's structs as the shipper built
 *              them until 2026-12-03, and written directly as it does now
 *              (access_log_encode_http()).
 * One NDJSON line on stdout: CPU per message in microseconds, and the share
 * of a core at the rate. Every HTTP exchange of a watched pod is one such
 * message (OAP's protocol has one protocol log per message), so at 10,000
 * requests a second the transport line is the least the shipper can cost.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "bench_cli.h"
#include "log.h"
#include "oap/oap.h"
#include "oap/pb_pack.h"
#include "oap_access_log.h"

/*
 * Queue 10 ms of messages at a time, sleeping to an absolute deadline in
 * between: 100 wakeups a second cost the measurement next to nothing.
 */
#define TICK_NS 10000000ull
#define ENCODE_ROUNDS 200000
#define TICKS_PER_S (NS_PER_S / TICK_NS)

struct floor_options {
	const char *address;
	unsigned int rate;
	unsigned int messages;
};

static uint64_t thread_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

static uint64_t process_cpu_ns(void)
{
	struct rusage usage;

	getrusage(RUSAGE_SELF, &usage);
	return (uint64_t)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * NS_PER_S +
	       (uint64_t)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) * 1000ull;
}

static void sleep_until(uint64_t monotonic_ns)
{
	struct timespec ts = { .tv_sec = monotonic_ns / NS_PER_S, .tv_nsec = monotonic_ns % NS_PER_S };

	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

/* A server pod's exchange: GET /api/items/42, 200, one read and one write. */
static void example_exchange(struct http_record *r, uint64_t now_ns)
{
	memset(r, 0, sizeof(*r));
	r->agg.role = KACCESS_ROLE_SERVER;
	r->agg.peer_addr[10] = r->agg.peer_addr[11] = 0xff; /* ::ffff:10.244.1.7 */
	r->agg.peer_addr[12] = 10;
	r->agg.peer_addr[13] = 244;
	r->agg.peer_addr[14] = 1;
	r->agg.peer_addr[15] = 7;
	r->local_port = 8080;
	r->remote_port = 41234;
	r->version = KACCESS_HTTP_VERSION_1_1;
	r->status = 200;
	r->start_ns = now_ns - 250000;
	r->end_ns = now_ns;
	r->request_header_bytes = 120;
	r->response_header_bytes = 160;
	r->response_body_bytes = 100;
	r->calls = (struct kaccess_http_calls){ 1, 1, 9000, 21000 };
	r->method = "GET";
	r->path = "/api/items/42";
	r->host = "web.shop:8080";
}

static const struct k8s_identity local_pod = {
	.kind = K8S_KIND_POD, .service = "web.shop", .instance = "web-5d9c7b8f6d-x2x7q",
};
static const struct k8s_identity peer_pod = {
	.kind = K8S_KIND_POD, .service = "client.shop", .instance = "client-7f6b9c5d4-abcde",
};

/* The example's protocol log without its calls, encoded once by the shipper's own code. */
struct encoded {
	uint8_t bytes[1024];
	size_t len;
};

static int sender_for(const struct floor_options *opt, struct oap_sender **ret_sender)
{
	struct oap_config cfg;
	char err[OAP_CONFIG_ERROR_LEN];
	int ret;

	oap_config_set_defaults(&cfg);
	ret = oap_config_set(&cfg, "oap_address", opt->address, err, sizeof(err));
	ret = ret ?: oap_config_set(&cfg, "oap_mode", "access_logs", err, sizeof(err));
	ret = ret ?: oap_sender_create(&cfg, ret_sender);
	ret = ret ?: oap_sender_set_node_info_from_host(*ret_sender, NULL);
	ret = ret ?: oap_sender_start(*ret_sender);
	if (ret)
		fprintf(stderr, "grpc_floor: sender: %s %s\n", strerror(-ret), err);
	return ret;
}

static uint64_t messages_sent(struct oap_sender *sender)
{
	struct oap_stream_stats stats;

	oap_sender_stats(sender, OAP_STREAM_ACCESS_LOG, &stats);
	return stats.sent;
}

/* Queue one message: the encoded bytes, or the exchange built anew. */
static int queue_one(struct oap_sender *sender, const struct encoded *encoded)
{
	struct http_record r;

	if (encoded)
		return oap_sender_enqueue_encoded(sender, OAP_STREAM_ACCESS_LOG, encoded->bytes,
						  encoded->len);
	example_exchange(&r, bench_monotonic_ns());
	return access_log_send_http(sender, &r, &local_pod, &peer_pod, true);
}

/*
 * CPU nanoseconds per message for `opt->messages` messages at `opt->rate`,
 * or 0: every thread's, but of this one only its queueing calls.
 */
static double run(const struct floor_options *opt, const struct encoded *encoded)
{
	struct oap_sender *sender = NULL;
	uint64_t start_ns, cpu_ns, pacer_ns, queueing_ns = 0, next_ns, queued = 0, per_tick;
	double per_message = 0;

	if (sender_for(opt, &sender))
		return 0;
	per_tick = opt->rate / TICKS_PER_S ? opt->rate / TICKS_PER_S : 1;
	usleep(200000); /* let the call open first: its setup is not a message's */
	cpu_ns = process_cpu_ns();
	pacer_ns = thread_cpu_ns();
	start_ns = next_ns = bench_monotonic_ns();
	while (queued < opt->messages) {
		uint64_t tick_start_ns = thread_cpu_ns();

		for (uint64_t i = 0; i < per_tick && queued < opt->messages; i++, queued++)
			if (queue_one(sender, encoded))
				goto out;
		queueing_ns += thread_cpu_ns() - tick_start_ns;
		next_ns += TICK_NS * per_tick * TICKS_PER_S / opt->rate;
		sleep_until(next_ns);
	}
	while (messages_sent(sender) < opt->messages && bench_monotonic_ns() - start_ns < 60 * NS_PER_S)
		usleep(1000);
	pacer_ns = thread_cpu_ns() - pacer_ns - queueing_ns;
	if (messages_sent(sender) == opt->messages)
		per_message = (double)(process_cpu_ns() - cpu_ns - pacer_ns) / opt->messages;
out:
	oap_sender_free(sender);
	return per_message;
}

static int encode_with_protobuf_c(const ProtobufCMessage *msg, uint8_t **ret_data, size_t *ret_len)
{
	*ret_len = protobuf_c_message_get_packed_size(msg);
	*ret_data = malloc(*ret_len);
	if (!*ret_data)
		return -ENOMEM;
	protobuf_c_message_pack(msg, *ret_data);
	return 0;
}

/* CPU nanoseconds per encoding of `msg` into a buffer of its own, as the queue keeps it; 0 on failure. */
static double encode_ns(const ProtobufCMessage *msg,
			int (*encode)(const ProtobufCMessage *msg, uint8_t **ret_data, size_t *ret_len))
{
	uint64_t start_ns = thread_cpu_ns();

	for (int i = 0; i < ENCODE_ROUNDS; i++) {
		uint8_t *data;
		size_t len;

		if (encode(msg, &data, &len))
			return 0;
		free(data);
	}
	return (double)(thread_cpu_ns() - start_ns) / ENCODE_ROUNDS;
}

/* CPU nanoseconds per exchange message (with its two calls) by `encoder`; 0 on failure. */
static double exchange_encode_ns(enum access_log_encoder encoder)
{
	static uint8_t buf[4096];
	struct http_record r;
	uint64_t start_ns;

	example_exchange(&r, bench_monotonic_ns());
	start_ns = thread_cpu_ns();
	for (int i = 0; i < ENCODE_ROUNDS; i++)
		if (access_log_encode_http(&r, &local_pod, &peer_pod, true, encoder, buf, sizeof(buf)) <= 0)
			return 0;
	return (double)(thread_cpu_ns() - start_ns) / ENCODE_ROUNDS;
}

/* The two encoders on the encoded example, decoded: both produce its bytes. */
static int measure_encoders(const struct encoded *encoded, double *ret_protobuf_c_ns, double *ret_pb_pack_ns)
{
	ProtobufCMessage *msg = protobuf_c_message_unpack(&skywalking__v3__ebpfaccess_log_message__descriptor,
							   NULL, encoded->len, encoded->bytes);
	uint8_t *again = NULL;
	size_t len = 0;
	int ret = -EINVAL;

	if (msg && pb_pack_alloc(msg, &again, &len) == 0 && len == encoded->len &&
	    memcmp(again, encoded->bytes, len) == 0) {
		*ret_protobuf_c_ns = encode_ns(msg, encode_with_protobuf_c);
		*ret_pb_pack_ns = encode_ns(msg, pb_pack_alloc);
		ret = *ret_protobuf_c_ns && *ret_pb_pack_ns ? 0 : -ENOMEM;
	}
	free(again);
	if (msg)
		protobuf_c_message_free_unpacked(msg, NULL);
	return ret;
}

static int parse_options(int argc, char **argv, struct floor_options *opt)
{
	static const struct option options[] = {
		{ "to", required_argument, NULL, 't' },
		{ "rate", required_argument, NULL, 'r' },
		{ "messages", required_argument, NULL, 'n' },
		{},
	};
	int c;

	*opt = (struct floor_options){ .rate = 10000, .messages = 100000 };
	while ((c = getopt_long(argc, argv, "", options, NULL)) != -1) {
		switch (c) {
		case 't':
			opt->address = optarg;
			break;
		case 'r':
			if (bench_parse_uint(optarg, 1000, 1000000, &opt->rate))
				return -EINVAL;
			break;
		case 'n':
			if (bench_parse_uint(optarg, 1000, 10000000, &opt->messages))
				return -EINVAL;
			break;
		default:
			return -EINVAL;
		}
	}
	return opt->address ? 0 : -EINVAL;
}

int main(int argc, char **argv)
{
	struct floor_options opt;
	struct encoded encoded = { .len = 0 };
	struct http_record r;
	double transport_ns, build_ns, protobuf_c_ns = 0, pb_pack_ns = 0, structs_ns, direct_ns;
	long len;

	if (parse_options(argc, argv, &opt)) {
		fprintf(stderr, "usage: grpc_floor --to ADDR:PORT [--rate 1000..1000000] "
				"[--messages 1000..10000000]\n");
		return 2;
	}
	log_max_level = LOG_LEVEL_WARN;
	example_exchange(&r, bench_monotonic_ns());
	len = access_log_encode_http(&r, &local_pod, &peer_pod, false, ACCESS_LOG_ENCODE_DIRECT,
				     encoded.bytes, sizeof(encoded.bytes));
	if (len <= 0) {
		fprintf(stderr, "grpc_floor: could not encode the example exchange\n");
		return 1;
	}
	encoded.len = (size_t)len;
	if (measure_encoders(&encoded, &protobuf_c_ns, &pb_pack_ns)) {
		fprintf(stderr, "grpc_floor: the two encoders do not agree on the example\n");
		return 1;
	}
	structs_ns = exchange_encode_ns(ACCESS_LOG_ENCODE_STRUCTS);
	direct_ns = exchange_encode_ns(ACCESS_LOG_ENCODE_DIRECT);
	transport_ns = run(&opt, &encoded);
	build_ns = run(&opt, NULL);
	if (!transport_ns || !build_ns || !structs_ns || !direct_ns) {
		fprintf(stderr, "grpc_floor: not every message was written to %s\n", opt.address);
		return 1;
	}
	printf("{\"type\":\"grpc_floor\",\"rate\":%u,\"messages\":%u,\"message_bytes\":%zu,"
	       "\"transport_us_per_message\":%.3f,\"build_us_per_message\":%.3f,"
	       "\"transport_core_pct_at_rate\":%.3f,\"build_core_pct_at_rate\":%.3f,"
	       "\"encode_protobuf_c_ns\":%.1f,\"encode_pb_pack_ns\":%.1f,"
	       "\"exchange_structs_ns\":%.1f,\"exchange_direct_ns\":%.1f}\n",
	       opt.rate, opt.messages, encoded.len, transport_ns / 1000, build_ns / 1000,
	       transport_ns * opt.rate / NS_PER_S * 100, build_ns * opt.rate / NS_PER_S * 100,
	       protobuf_c_ns, pb_pack_ns, structs_ns, direct_ns);
	return 0;
}
