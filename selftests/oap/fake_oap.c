// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * fake_oap: a test-only SkyWalking OAP on the gRPC C core server API. It
 * serves EBPFAccessLogService/collect and MeterReportService/collect{,Batch},
 * decodes every message with kaccess's protobuf-c code and writes one NDJSON
 * line per message:
 *
 *   {"call":1,"method":"/skywalking.v3.EBPFAccessLogService/collect",
 *    "auth":"token","seq":0,"msg":{...protobuf JSON, .proto field names...}}
 *
 * and one line per call event ("start", "rejected", "end", "cancelled") with
 * an "event" key instead of "msg". A call's messages are confirmed to the
 * client only by its "end" (status OK after the client's half-close); a
 * killed fake (--exit-after) writes neither.
 *
 * Single-threaded on purpose: --slow-ms stalls every call, which is what
 * backpressure looks like to the sender.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <grpc/byte_buffer.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/time.h>

#include "oap/oap.h"

static const char usage[] =
	"usage: fake_oap [options]\n"
	"  --listen ADDR:PORT     listen address (default 127.0.0.1:0: any free port)\n"
	"  --port-file PATH       write the bound port there once listening\n"
	"  --out PATH             NDJSON output (default stdout)\n"
	"  --token TOKEN          require this `authentication` header value\n"
	"  --permission-denied    reject a wrong token as OAP does (PERMISSION_DENIED)\n"
	"                         instead of UNAUTHENTICATED\n"
	"  --unavailable          answer every call with UNAVAILABLE\n"
	"  --slow-ms N            sleep N ms after each message (backpressure)\n"
	"  --exit-after N         exit abruptly (no status) after N messages\n"
	"  --goaway-after N       shut down gracefully after N messages: GOAWAY, no\n"
	"                         new connection or call, the open calls finished,\n"
	"                         then exit\n"
	"  --tls-cert PATH --tls-key PATH   serve TLS with this certificate\n"
	"  --tls-client-ca PATH   also require a client certificate signed by this CA\n"
	"\n"
	"example: fake_oap --port-file /tmp/port --out /tmp/oap.ndjson --token secret\n";

struct options {
	const char *listen, *port_file, *out, *token;
	const char *tls_cert, *tls_key, *tls_client_ca;
	bool permission_denied, unavailable;
	unsigned long slow_ms, exit_after, goaway_after;
};

enum tag_kind { TAG_NEW, TAG_RECV, TAG_CLOSE, TAG_FINAL, TAG_KIND_COUNT };

struct fake_call;

struct fake_tag {
	struct fake_call *call;
	enum tag_kind kind;
};

/* The server's shutdown is done: every call it had is over. */
static struct fake_tag shutdown_done;
static bool shutting_down;

struct fake_call {
	grpc_call *call;
	grpc_call_details details;
	grpc_metadata_array request_metadata;
	grpc_byte_buffer *recv;
	int cancelled;
	unsigned int id;
	char method[128];
	char auth[OAP_TOKEN_LEN];
	bool has_auth;
	const ProtobufCMessageDescriptor *descriptor;
	unsigned long messages;
	unsigned int pending;      /* batches not yet completed */
	bool finished;             /* status sent */
	grpc_slice status_details;
	struct fake_tag tags[TAG_KIND_COUNT];
};

static struct options opts = { .listen = "127.0.0.1:0" };
static FILE *out;
static grpc_server *server;
static grpc_completion_queue *cq;
static unsigned int next_call_id = 1;
static unsigned long total_messages;
static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	stop_requested = 1;
}

static void write_string(const char *text)
{
	fputc('"', out);
	for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
		if (*c == '"' || *c == '\\')
			fprintf(out, "\\%c", *c);
		else if (*c < 0x20)
			fprintf(out, "\\u%04x", *c);
		else
			fputc(*c, out);
	}
	fputc('"', out);
}

static void write_call_head(struct fake_call *fc)
{
	fprintf(out, "{\"call\":%u,\"method\":", fc->id);
	write_string(fc->method);
	fputs(",\"auth\":", out);
	if (fc->has_auth)
		write_string(fc->auth);
	else
		fputs("null", out);
}

static void write_event(struct fake_call *fc, const char *event, int status)
{
	write_call_head(fc);
	fputs(",\"event\":", out);
	write_string(event);
	fprintf(out, ",\"status\":%d,\"messages\":%lu}\n", status, fc->messages);
	fflush(out);
}

static struct fake_call *call_new(void)
{
	struct fake_call *fc = calloc(1, sizeof(*fc));

	if (!fc) {
		perror("calloc");
		exit(1);
	}
	for (int i = 0; i < TAG_KIND_COUNT; i++)
		fc->tags[i] = (struct fake_tag){ fc, i };
	grpc_call_details_init(&fc->details);
	grpc_metadata_array_init(&fc->request_metadata);
	return fc;
}

static void call_free(struct fake_call *fc)
{
	if (fc->call)
		grpc_call_unref(fc->call);
	grpc_call_details_destroy(&fc->details);
	grpc_metadata_array_destroy(&fc->request_metadata);
	grpc_slice_unref(fc->status_details);
	if (fc->recv)
		grpc_byte_buffer_destroy(fc->recv);
	free(fc);
}

static void start_batch(struct fake_call *fc, const grpc_op *ops, size_t count, enum tag_kind kind)
{
	if (grpc_call_start_batch(fc->call, ops, count, &fc->tags[kind], NULL) != GRPC_CALL_OK) {
		fprintf(stderr, "fake_oap: start_batch failed (call %u, kind %d)\n", fc->id, kind);
		exit(1);
	}
	fc->pending++;
}

static void request_next_call(void)
{
	struct fake_call *fc = call_new();

	if (grpc_server_request_call(server, &fc->call, &fc->details, &fc->request_metadata,
				     cq, cq, &fc->tags[TAG_NEW]) != GRPC_CALL_OK) {
		fprintf(stderr, "fake_oap: request_call failed\n");
		exit(1);
	}
}

/* Answer with `status` and, for OK, the RPC's (empty) response message. */
static void finish_call(struct fake_call *fc, grpc_status_code status, const char *details)
{
	grpc_op ops[3] = { 0 };
	grpc_byte_buffer *response = NULL;
	grpc_slice empty = grpc_empty_slice();
	size_t n = 0;

	fc->status_details = grpc_slice_from_copied_string(details);
	if (status == GRPC_STATUS_OK) {
		/* EBPFAccessLogDownstream and Commands, both empty: zero bytes. */
		response = grpc_raw_byte_buffer_create(&empty, 1);
		ops[n].op = GRPC_OP_SEND_MESSAGE;
		ops[n++].data.send_message.send_message = response;
	}
	ops[n].op = GRPC_OP_SEND_STATUS_FROM_SERVER;
	ops[n].data.send_status_from_server.status = status;
	ops[n++].data.send_status_from_server.status_details = &fc->status_details;
	start_batch(fc, ops, n, TAG_FINAL);
	if (response)
		grpc_byte_buffer_destroy(response);
	fc->finished = true;
}

static void reject_call(struct fake_call *fc, grpc_status_code status, const char *details,
			const char *event)
{
	grpc_op op = { .op = GRPC_OP_SEND_INITIAL_METADATA };

	start_batch(fc, &op, 1, TAG_NEW);
	write_event(fc, event, status);
	finish_call(fc, status, details);
}

static void recv_next(struct fake_call *fc)
{
	grpc_op op = { .op = GRPC_OP_RECV_MESSAGE };

	op.data.recv_message.recv_message = &fc->recv;
	start_batch(fc, &op, 1, TAG_RECV);
}

static void read_metadata(struct fake_call *fc)
{
	char *method = grpc_slice_to_c_string(fc->details.method);

	snprintf(fc->method, sizeof(fc->method), "%s", method);
	gpr_free(method);
	for (size_t i = 0; i < fc->request_metadata.count; i++) {
		grpc_metadata *md = &fc->request_metadata.metadata[i];
		char *key = grpc_slice_to_c_string(md->key);

		if (strcmp(key, "authentication") == 0) {
			char *value = grpc_slice_to_c_string(md->value);

			snprintf(fc->auth, sizeof(fc->auth), "%s", value);
			fc->has_auth = true;
			gpr_free(value);
		}
		gpr_free(key);
	}
}

static const ProtobufCMessageDescriptor *method_descriptor(const char *method)
{
	if (strcmp(method, "/skywalking.v3.EBPFAccessLogService/collect") == 0)
		return &skywalking__v3__ebpfaccess_log_message__descriptor;
	if (strcmp(method, "/skywalking.v3.MeterReportService/collectBatch") == 0)
		return &skywalking__v3__meter_data_collection__descriptor;
	if (strcmp(method, "/skywalking.v3.MeterReportService/collect") == 0)
		return &skywalking__v3__meter_data__descriptor;
	return NULL;
}

static void on_new_call(struct fake_call *fc)
{
	grpc_op ops[1] = { { .op = GRPC_OP_SEND_INITIAL_METADATA } };
	grpc_op close_op = { .op = GRPC_OP_RECV_CLOSE_ON_SERVER };

	fc->id = next_call_id++;
	read_metadata(fc);
	fc->descriptor = method_descriptor(fc->method);
	request_next_call();

	if (!fc->descriptor)
		return reject_call(fc, GRPC_STATUS_UNIMPLEMENTED, "not served by fake_oap", "rejected");
	if (opts.token && (!fc->has_auth || strcmp(fc->auth, opts.token) != 0))
		return reject_call(fc, opts.permission_denied ? GRPC_STATUS_PERMISSION_DENIED
							      : GRPC_STATUS_UNAUTHENTICATED,
				   "wrong or missing authentication token", "rejected");
	if (opts.unavailable)
		return reject_call(fc, GRPC_STATUS_UNAVAILABLE, "fake_oap is unavailable", "rejected");

	write_event(fc, "start", 0);
	start_batch(fc, ops, 1, TAG_NEW);
	close_op.data.recv_close_on_server.cancelled = &fc->cancelled;
	start_batch(fc, &close_op, 1, TAG_CLOSE);
	recv_next(fc);
}

static int decode_and_write(struct fake_call *fc)
{
	grpc_byte_buffer_reader reader;
	grpc_slice slice;
	ProtobufCMessage *msg;
	int ret;

	if (!grpc_byte_buffer_reader_init(&reader, fc->recv))
		return -EIO;
	slice = grpc_byte_buffer_reader_readall(&reader);
	grpc_byte_buffer_reader_destroy(&reader);
	msg = protobuf_c_message_unpack(fc->descriptor, NULL, GRPC_SLICE_LENGTH(slice),
					GRPC_SLICE_START_PTR(slice));
	grpc_slice_unref(slice);
	if (!msg)
		return -EBADMSG;
	write_call_head(fc);
	fprintf(out, ",\"seq\":%lu,\"msg\":", fc->messages);
	ret = oap_message_write_json(out, msg);
	fputs("}\n", out);
	fflush(out);
	protobuf_c_message_free_unpacked(msg, NULL);
	return ret;
}

static void on_message(struct fake_call *fc)
{
	if (!fc->recv) {
		/* The client half-closed (or went away): confirm the whole call.
		 * RECV_CLOSE_ON_SERVER tells which, and writes the "end" line. */
		if (!fc->finished)
			finish_call(fc, GRPC_STATUS_OK, "");
		return;
	}
	if (decode_and_write(fc)) {
		write_event(fc, "decode_error", GRPC_STATUS_INVALID_ARGUMENT);
		finish_call(fc, GRPC_STATUS_INVALID_ARGUMENT, "message does not decode");
		return;
	}
	grpc_byte_buffer_destroy(fc->recv);
	fc->recv = NULL;
	fc->messages++;
	total_messages++;
	if (opts.exit_after && total_messages >= opts.exit_after)
		_exit(0); /* like a kill: no status, connections reset */
	if (opts.goaway_after && total_messages >= opts.goaway_after && !shutting_down) {
		/* like OAP stopping in a rolling restart: GOAWAY, the listener
		 * closed, this call served to its end */
		shutting_down = true;
		grpc_server_shutdown_and_notify(server, cq, &shutdown_done);
	}
	if (opts.slow_ms)
		usleep(opts.slow_ms * 1000);
	recv_next(fc);
}

/*
 * The call is over for gRPC: "end" when the client received our status OK
 * after its half-close (everything confirmed), "cancelled" otherwise.
 */
static void on_close(struct fake_call *fc)
{
	if (fc->cancelled)
		write_event(fc, "cancelled", GRPC_STATUS_CANCELLED);
	else
		write_event(fc, "end", GRPC_STATUS_OK);
	fc->finished = true;
}

static void on_event(grpc_event *event)
{
	struct fake_tag *tag = event->tag;
	struct fake_call *fc = tag->call;

	if (tag == &shutdown_done) {
		stop_requested = 1;
		return;
	}
	if (tag->kind == TAG_NEW && !fc->id) {
		if (!event->success) {
			call_free(fc); /* server shutting down */
			return;
		}
		on_new_call(fc);
		return;
	}
	fc->pending--;
	if (tag->kind == TAG_RECV)
		on_message(fc);
	else if (tag->kind == TAG_CLOSE)
		on_close(fc);
	if (!fc->pending && fc->finished)
		call_free(fc);
}

static char *read_file(const char *path)
{
	FILE *file = fopen(path, "re");
	char *text;
	long size;

	if (!file || fseek(file, 0, SEEK_END) || (size = ftell(file)) < 0 || fseek(file, 0, SEEK_SET)) {
		fprintf(stderr, "fake_oap: cannot read %s: %s\n", path, strerror(errno));
		exit(2);
	}
	text = calloc(1, size + 1);
	if (!text || fread(text, 1, size, file) != (size_t)size) {
		fprintf(stderr, "fake_oap: cannot read %s\n", path);
		exit(2);
	}
	fclose(file);
	return text;
}

static grpc_server_credentials *server_credentials(void)
{
	grpc_ssl_pem_key_cert_pair pair;

	if (!opts.tls_cert)
		return grpc_insecure_server_credentials_create();
	pair.cert_chain = read_file(opts.tls_cert);
	pair.private_key = read_file(opts.tls_key);
	return grpc_ssl_server_credentials_create_ex(
		opts.tls_client_ca ? read_file(opts.tls_client_ca) : NULL, &pair, 1,
		opts.tls_client_ca ? GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY
				   : GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE, NULL);
}

static void write_port_file(int port)
{
	char tmp[4096];
	FILE *file;

	snprintf(tmp, sizeof(tmp), "%s.tmp", opts.port_file);
	file = fopen(tmp, "w");
	if (!file || fprintf(file, "%d\n", port) < 0 || fclose(file) || rename(tmp, opts.port_file)) {
		fprintf(stderr, "fake_oap: cannot write %s\n", opts.port_file);
		exit(1);
	}
}

static void parse_options(int argc, char **argv)
{
	static const struct option long_options[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "out", required_argument, NULL, 'o' },
		{ "token", required_argument, NULL, 't' },
		{ "permission-denied", no_argument, NULL, 'P' },
		{ "unavailable", no_argument, NULL, 'u' },
		{ "slow-ms", required_argument, NULL, 's' },
		{ "exit-after", required_argument, NULL, 'x' },
		{ "goaway-after", required_argument, NULL, 'g' },
		{ "tls-cert", required_argument, NULL, 'c' },
		{ "tls-key", required_argument, NULL, 'k' },
		{ "tls-client-ca", required_argument, NULL, 'a' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	int opt;

	while ((opt = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		switch (opt) {
		case 'l': opts.listen = optarg; break;
		case 'p': opts.port_file = optarg; break;
		case 'o': opts.out = optarg; break;
		case 't': opts.token = optarg; break;
		case 'P': opts.permission_denied = true; break;
		case 'u': opts.unavailable = true; break;
		case 's': opts.slow_ms = strtoul(optarg, NULL, 10); break;
		case 'x': opts.exit_after = strtoul(optarg, NULL, 10); break;
		case 'g': opts.goaway_after = strtoul(optarg, NULL, 10); break;
		case 'c': opts.tls_cert = optarg; break;
		case 'k': opts.tls_key = optarg; break;
		case 'a': opts.tls_client_ca = optarg; break;
		case 'h': fputs(usage, stdout); exit(0);
		default: fputs(usage, stderr); exit(2);
		}
	}
	if (optind != argc || !opts.tls_cert != !opts.tls_key) {
		fputs(usage, stderr);
		exit(2);
	}
}

int main(int argc, char **argv)
{
	/* No BDP probing: the flow-control window stays small, so --slow-ms
	 * pushes back on the sender quickly. */
	grpc_arg args[] = {
		{ .type = GRPC_ARG_INTEGER, .key = (char *)GRPC_ARG_HTTP2_BDP_PROBE, .value.integer = 0 },
	};
	grpc_channel_args server_args = { .num_args = 1, .args = args };
	grpc_server_credentials *creds;
	grpc_event event;
	int port;

	parse_options(argc, argv);
	out = opts.out ? fopen(opts.out, "a") : stdout;
	if (!out) {
		fprintf(stderr, "fake_oap: cannot open %s: %s\n", opts.out, strerror(errno));
		return 2;
	}
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	grpc_init();
	cq = grpc_completion_queue_create_for_next(NULL);
	server = grpc_server_create(&server_args, NULL);
	grpc_server_register_completion_queue(server, cq, NULL);
	creds = server_credentials();
	port = grpc_server_add_http2_port(server, opts.listen, creds);
	grpc_server_credentials_release(creds);
	if (port <= 0) {
		fprintf(stderr, "fake_oap: cannot listen on %s\n", opts.listen);
		return 1;
	}
	grpc_server_start(server);
	request_next_call();
	if (opts.port_file)
		write_port_file(port);
	fprintf(stderr, "fake_oap: listening on port %d\n", port);

	while (!stop_requested) {
		event = grpc_completion_queue_next(cq, gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
						   gpr_time_from_millis(200, GPR_TIMESPAN)), NULL);
		if (event.type == GRPC_OP_COMPLETE)
			on_event(&event);
	}
	fflush(out);
	/* Exit without the orderly gRPC teardown: a stopped fake is a dead OAP. */
	_exit(0);
}
