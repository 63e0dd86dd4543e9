// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * HTTP/2 exchanges (h2c, prior knowledge), from real peers: nghttpd serving
 * fixed files in the server pod; nghttp, h2load and curl
 * --http2-prior-knowledge in the client pod; and a raw server and client of
 * the test's own for a response cut short and for garbage after a preface.
 *
 * The ground truth is what the peers report: nghttp -v prints every frame
 * it sent and received (type, length, flags, padding, stream) and the
 * decoded headers, so header block bytes, body bytes, paths and statuses
 * per stream come from the client's own view; h2load counts responses per
 * status class and the header block and DATA bytes it received; curl
 * reports the status and body size; the raw peers know what they sent.
 * kaccess must report exactly those numbers, per endpoint, on the client
 * and the server side.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "agent_proc.h"
#include "ktest.h"
#include "pods.h"

#define NGHTTPD "/usr/sbin/nghttpd"
#define NGHTTP "/usr/bin/nghttp"
#define H2LOAD "/usr/bin/h2load"
#define CURL "/usr/bin/curl"
#define H2_PORT 8443
#define RAW_PORT 9443
#define UPGRADE_PORT 8080
#define UPGRADE_CONNS 8
#define MISSING_BODY "not found\n"
#define SMALL_BYTES 1000
#define BIG_BYTES 300000     /* many DATA frames, many reads */
#define CUT_BODY_BYTES 3000  /* DATA sent before the raw server cuts the stream */
#define MAX_STREAMS 64
#define FRAME_HEADER_BYTES 9

static const char preface[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

FIXTURE(http2) {
	struct pod_pair pods;
	struct agent_proc agent;
	struct agent_output *output;
	char dir[64];
	pid_t nghttpd_pid, raw_server_pid, upgrade_server_pid;
};

FIXTURE_VARIANT(http2) {
	const char *hooks;
};

FIXTURE_VARIANT_ADD(http2, fentry) {
	.hooks = "hooks=fentry",
};

FIXTURE_VARIANT_ADD(http2, sock_tracepoints) {
	.hooks = "hooks=sock",
};

FIXTURE_VARIANT_ADD(http2, descriptor_walk) {
	.hooks = "hooks=fd",
};

FIXTURE_VARIANT_ADD(http2, tcp_tracepoints) {
	.hooks = "hooks=tcp",
};

static bool fentry_loads, tcp_hooks_load;

static void __attribute__((constructor)) probe_fentry(void)
{
	fentry_loads = geteuid() == 0 && kaccess_loads_with("hooks=fentry");
	tcp_hooks_load = geteuid() == 0 && kaccess_loads_with("hooks=tcp");
}

static int write_file(const char *path, size_t bytes)
{
	FILE *file = fopen(path, "w");

	if (!file)
		return -1;
	for (size_t i = 0; i < bytes; i++)
		fputc('a' + i % 26, file);
	return fclose(file);
}

static void frame_header(unsigned char *out, size_t len, int type, int flags, unsigned int stream)
{
	out[0] = len >> 16;
	out[1] = len >> 8;
	out[2] = len;
	out[3] = type;
	out[4] = flags;
	out[5] = stream >> 24;
	out[6] = stream >> 16;
	out[7] = stream >> 8;
	out[8] = stream;
}

/* ---- the raw server: a response cut short, after what it read ------------ */

/* What the raw server received: the request's header block bytes. */
struct raw_server_truth {
	unsigned long request_header_bytes;
	int headers_seen;
};

static struct raw_server_truth *raw_truth;

/*
 * Read the client's preface and frames until a HEADERS block ends; its
 * HPACK bytes (without padding and priority fields) are the ground truth.
 */
static int read_request_block(int fd, struct raw_server_truth *truth)
{
	static unsigned char buf[65536];
	size_t have = 0, at = sizeof(preface) - 1;
	ssize_t n;

	while ((n = read(fd, buf + have, sizeof(buf) - have)) > 0) {
		have += n;
		while (at + FRAME_HEADER_BYTES <= have) {
			size_t len = (buf[at] << 16) | (buf[at + 1] << 8) | buf[at + 2];
			int type = buf[at + 3], flags = buf[at + 4];
			size_t prefix = 0, padding = 0;

			if (at + FRAME_HEADER_BYTES + len > have)
				break;
			if (type == 1 || type == 9) {
				if (type == 1 && (flags & 0x8)) {
					prefix = 1;
					padding = buf[at + FRAME_HEADER_BYTES];
				}
				if (type == 1 && (flags & 0x20))
					prefix += 5;
				truth->request_header_bytes += len - prefix - padding;
				if (flags & 0x4) {
					truth->headers_seen = 1;
					return 0;
				}
			}
			at += FRAME_HEADER_BYTES + len;
		}
	}
	return -1;
}

static int raw_server_main(void *arg)
{
	const char *addr = arg;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(RAW_PORT) };
	int one = 1, listener = socket(AF_INET, SOCK_STREAM, 0);
	unsigned char out[3 * FRAME_HEADER_BYTES + 1 + CUT_BODY_BYTES], drain[4096];

	inet_pton(AF_INET, addr, &sin.sin_addr);
	setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(listener, (struct sockaddr *)&sin, sizeof(sin)) || listen(listener, 16))
		return 1;
	for (;;) {
		int fd = accept(listener, NULL, NULL);

		if (fd < 0)
			return 1;
		if (read_request_block(fd, raw_truth) == 0) {
			/* SETTINGS, HEADERS ":status: 200" (static index 8), part of a body */
			frame_header(out, 0, 4, 0, 0);
			frame_header(out + FRAME_HEADER_BYTES, 1, 1, 0x4, 1);
			out[2 * FRAME_HEADER_BYTES] = 0x88;
			frame_header(out + 2 * FRAME_HEADER_BYTES + 1, CUT_BODY_BYTES, 0, 0, 1);
			memset(out + 3 * FRAME_HEADER_BYTES + 1, 'c', CUT_BODY_BYTES);
			fd_write_all(fd, out, sizeof(out));
			shutdown(fd, SHUT_WR); /* the stream never ends: the connection does */
			while (read(fd, drain, sizeof(drain)) > 0)
				;
		}
		close(fd);
	}
}

/* ---- the upgrade server: HTTP/1.1 Upgrade: h2c, answered in HTTP/2 ----- */

/*
 * nghttpd answers only prior knowledge in its no-TLS mode (an upgrade
 * request gets its SETTINGS frame), and nginx ignores Upgrade: h2c; so
 * this server accepts the upgrade itself, as RFC 7540 3.2 says: 101, its
 * SETTINGS, then the response to the HTTP/1.1 request as stream 1.
 * "/small" is 200 with SMALL_BYTES, anything else 404 with MISSING_BODY.
 * A query containing "together" puts the 101 and the frames in one write;
 * otherwise the frames follow the client's preface. "/cut" gets the 101
 * and the SETTINGS frame, then the connection ends: no response. A plain
 * "GET /plain" (no Upgrade) before the upgrade gets PLAIN_OK on the same
 * connection, so the upgrade is not the connection's first request.
 */
struct upgrade_conn_truth {
	char path[128];
	char host[128], sw8[256], traceparent[128], b3[128]; /* as read; "" when not sent */
	int status;
	unsigned long request_header, response_header, response_body;
	unsigned long request_reads; /* the reads that returned the HTTP/1.1 request */
	unsigned long plain_requests; /* "/plain" requests answered before it */
};

struct upgrade_server_truth {
	int conns;
	struct upgrade_conn_truth conn[UPGRADE_CONNS];
};

static struct upgrade_server_truth *upgrade_truth;

static const char switching[] = "HTTP/1.1 101 Switching Protocols\r\n"
				"Connection: Upgrade\r\nUpgrade: h2c\r\n\r\n";

/* Read the HTTP/1.1 request through its blank line: its bytes, or -1; the reads in *ret_reads. */
static long read_upgrade_request(int fd, char *buf, size_t size, unsigned long *ret_reads)
{
	size_t have = 0;
	char *end;
	ssize_t n;

	while (have < size - 1 && (n = read(fd, buf + have, size - 1 - have)) > 0) {
		have += n;
		(*ret_reads)++;
		buf[have] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end)
			return end + 4 - buf == (long)have ? (long)have : -1; /* no body, nothing after */
	}
	return -1;
}

/* SETTINGS, HEADERS (:status, indexed), DATA with END_STREAM: their length. */
static size_t upgrade_frames(unsigned char *out, bool found, struct upgrade_conn_truth *truth)
{
	size_t body = found ? SMALL_BYTES : strlen(MISSING_BODY), at = 0;

	frame_header(out, 0, 4, 0, 0);
	at += FRAME_HEADER_BYTES;
	frame_header(out + at, 1, 1, 0x4, 1);
	at += FRAME_HEADER_BYTES;
	out[at++] = found ? 0x88 : 0x8d; /* ":status: 200", ":status: 404" */
	frame_header(out + at, body, 0, 0x1, 1);
	at += FRAME_HEADER_BYTES;
	if (found)
		memset(out + at, 'a', body);
	else
		memcpy(out + at, MISSING_BODY, body);
	truth->status = found ? 200 : 404;
	truth->response_header = strlen(switching) + 1;
	truth->response_body = body;
	return at + body;
}

/* Whether the request has header line `line`, in lower case (curl capitalizes names, nghttp does not). */
static bool request_has(const char *request, const char *line)
{
	char lower[4096];
	size_t i;

	for (i = 0; request[i] && i < sizeof(lower) - 1; i++)
		lower[i] = request[i] >= 'A' && request[i] <= 'Z' ? request[i] + 32 : request[i];
	lower[i] = '\0';
	return strstr(lower, line) != NULL;
}

/* The value of header `name` in the request as read, into `out`: "" when it is not there. */
static void request_value(const char *request, const char *name, char *out, size_t size)
{
	size_t name_len = strlen(name);
	const char *line = strstr(request, "\r\n");

	out[0] = '\0';
	for (; line && line[2] != '\r'; line = strstr(line + 2, "\r\n")) {
		const char *value = line + 2, *end = strstr(value, "\r\n");

		if (!end)
			return;
		if (strncasecmp(value, name, name_len) || value[name_len] != ':')
			continue;
		value += name_len + 1;
		while (*value == ' ')
			value++;
		snprintf(out, size, "%.*s", (int)(end - value), value);
		return;
	}
}

/*
 * Another protocol after the 101: a WebSocket text frame "hello" in the
 * same write. The 101 is then the request's final answer.
 */
static const char websocket_switching[] = "HTTP/1.1 101 Switching Protocols\r\n"
					  "Connection: Upgrade\r\nUpgrade: websocket\r\n\r\n";
static const unsigned char websocket_hello[] = { 0x81, 0x05, 'h', 'e', 'l', 'l', 'o' };

static void websocket_serve(int fd, struct upgrade_conn_truth *truth, long request_bytes)
{
	unsigned char out[sizeof(websocket_switching) + sizeof(websocket_hello)], drain[256];
	size_t head = strlen(websocket_switching);

	memcpy(out, websocket_switching, head);
	memcpy(out + head, websocket_hello, sizeof(websocket_hello));
	truth->status = 101;
	truth->request_header = request_bytes;
	truth->response_header = head;
	fd_write_all(fd, out, head + sizeof(websocket_hello));
	while (read(fd, drain, sizeof(drain)) > 0) /* the client's frame */
		;
}

static const char plain_ok[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/* Answer "/plain" requests without an Upgrade; the first other request's bytes, or -1. */
static long serve_plain_requests(int fd, char *request, size_t size, struct upgrade_conn_truth *truth)
{
	static const char plain[] = "GET /plain HTTP/1.1\r\n";
	long bytes;

	while ((bytes = read_upgrade_request(fd, request, size, &truth->request_reads)) > 0 &&
	       strncmp(request, plain, strlen(plain)) == 0 && !request_has(request, "\r\nupgrade:")) {
		truth->plain_requests++;
		truth->request_reads = 0; /* the upgrade request's reads only */
		if (fd_write_all(fd, plain_ok, strlen(plain_ok)))
			return -1;
	}
	return bytes;
}

static void upgrade_serve(int fd, struct upgrade_conn_truth *truth)
{
	static char request[4096];
	static unsigned char out[sizeof(switching) + 4 * FRAME_HEADER_BYTES + SMALL_BYTES],
		drain[4096];
	long request_bytes = serve_plain_requests(fd, request, sizeof(request), truth);
	size_t head = strlen(switching), frames;
	bool found, together;
	char *path;

	if (request_bytes < 0 || sscanf(request, "GET %127s HTTP/1.1", truth->path) != 1)
		return;
	if (request_has(request, "\r\nupgrade: websocket\r\n")) {
		websocket_serve(fd, truth, request_bytes);
		return;
	}
	if (!request_has(request, "\r\nupgrade: h2c\r\n"))
		return;
	request_value(request, "host", truth->host, sizeof(truth->host));
	request_value(request, "sw8", truth->sw8, sizeof(truth->sw8));
	request_value(request, "traceparent", truth->traceparent, sizeof(truth->traceparent));
	request_value(request, "b3", truth->b3, sizeof(truth->b3));
	path = truth->path;
	found = strncmp(path, "/small", 6) == 0 && (path[6] == '\0' || path[6] == '?');
	together = strstr(path, "together") != NULL;
	truth->request_header = request_bytes;
	memcpy(out, switching, head);
	if (strcmp(path, "/cut") == 0) {
		frame_header(out + head, 0, 4, 0, 0);
		fd_write_all(fd, out, head + FRAME_HEADER_BYTES);
		return;
	}
	frames = upgrade_frames(out + head, found, truth);
	if (together) {
		fd_write_all(fd, out, head + frames);
	} else {
		/* the 101 alone; the frames once the client's preface arrived */
		fd_write_all(fd, out, head);
		if (read(fd, drain, sizeof(drain)) <= 0)
			return;
		fd_write_all(fd, out + head, frames);
	}
	while (read(fd, drain, sizeof(drain)) > 0) /* the client's SETTINGS, ACK, GOAWAY */
		;
}

static int upgrade_server_main(void *arg)
{
	const char *addr = arg;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(UPGRADE_PORT) };
	int one = 1, listener = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, addr, &sin.sin_addr);
	setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(listener, (struct sockaddr *)&sin, sizeof(sin)) || listen(listener, 16))
		return 1;
	for (;;) {
		int fd = accept(listener, NULL, NULL);

		if (fd < 0)
			return 1;
		if (upgrade_truth->conns < UPGRADE_CONNS)
			upgrade_serve(fd, &upgrade_truth->conn[upgrade_truth->conns++]);
		close(fd);
	}
}

/* ---- the raw client: a preface, then garbage ------------------------------ */

struct raw_client_job {
	const char *addr;
	const unsigned char *bytes;
	size_t len;
	size_t received;
};

static int raw_client_main(void *arg)
{
	struct raw_client_job *job = arg;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(H2_PORT) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char buf[4096];
	ssize_t n;

	inet_pton(AF_INET, job->addr, &sin.sin_addr);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) || fd_write_all(fd, job->bytes, job->len))
		return 1;
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		job->received += n;
	close(fd);
	return 0;
}

static void *shared_alloc(size_t size)
{
	void *shared = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	return shared == MAP_FAILED ? NULL : shared;
}

FIXTURE_SETUP(http2)
{
	char www[96], path[128];
	char port[16];
	char *argv[] = { NGHTTPD, "--no-tls", "-d", www, port, NULL };

	REQUIRE_ROOT();
	if (strcmp(variant->hooks, "hooks=sock") == 0 &&
	    access("/sys/kernel/tracing/events/sock/sock_send_length", F_OK))
		SKIP(return, "kernel lacks sock:sock_send_length (Linux 6.3)");
	if (strcmp(variant->hooks, "hooks=fentry") == 0 && !fentry_loads)
		SKIP(return, "kernel refuses fentry programs");
	if (strcmp(variant->hooks, "hooks=tcp") == 0 && !tcp_hooks_load)
		SKIP(return, "kernel lacks tcp:tcp_sendmsg_locked or the sock length tracepoints");
	if (access(NGHTTPD, X_OK) || access(NGHTTP, X_OK) || access(H2LOAD, X_OK) ||
	    access(CURL, X_OK))
		SKIP(return, "needs nghttpd, nghttp, h2load and curl (make deps-test)");
	raw_truth = shared_alloc(sizeof(*raw_truth));
	ASSERT_NE(NULL, raw_truth);
	upgrade_truth = shared_alloc(sizeof(*upgrade_truth));
	ASSERT_NE(NULL, upgrade_truth);
	ASSERT_EQ(0, pod_pair_create_for_test(&self->pods, "h2t"));
	snprintf(self->dir, sizeof(self->dir), "/tmp/kaccess-selftest-http2-%d", getpid());
	mkdir(self->dir, 0755);
	snprintf(www, sizeof(www), "%s/www", self->dir);
	mkdir(www, 0755);
	snprintf(path, sizeof(path), "%s/small", www);
	ASSERT_EQ(0, write_file(path, SMALL_BYTES));
	snprintf(path, sizeof(path), "%s/big", www);
	ASSERT_EQ(0, write_file(path, BIG_BYTES));
	snprintf(port, sizeof(port), "%d", H2_PORT);
	snprintf(path, sizeof(path), "%s/nghttpd.log", self->dir);
	self->nghttpd_pid = pod_exec(&self->pods.server, argv, path);
	ASSERT_LT(0, self->nghttpd_pid);
	self->raw_server_pid = pod_spawn(&self->pods.server, raw_server_main, self->pods.server.ipv4);
	ASSERT_LT(0, self->raw_server_pid);
	self->upgrade_server_pid = pod_spawn(&self->pods.server, upgrade_server_main,
					     self->pods.server.ipv4);
	ASSERT_LT(0, self->upgrade_server_pid);
	ASSERT_EQ(0, netns_wait_listening(self->pods.server.netns, H2_PORT, 10000));
	ASSERT_EQ(0, netns_wait_listening(self->pods.server.netns, RAW_PORT, 10000));
	ASSERT_EQ(0, netns_wait_listening(self->pods.server.netns, UPGRADE_PORT, 10000));
}

FIXTURE_TEARDOWN(http2)
{
	agent_proc_stop(&self->agent);
	agent_output_free(self->output);
	pod_pair_destroy(&self->pods); /* cgroup.kill ends nghttpd and the raw server */
	if (self->nghttpd_pid > 0)
		child_wait(self->nghttpd_pid);
	if (self->raw_server_pid > 0)
		child_wait(self->raw_server_pid);
	if (self->upgrade_server_pid > 0)
		child_wait(self->upgrade_server_pid);
	if (self->dir[0])
		run_quiet("rm -rf %s", self->dir);
	if (raw_truth)
		munmap(raw_truth, sizeof(*raw_truth));
	raw_truth = NULL;
	if (upgrade_truth)
		munmap(upgrade_truth, sizeof(*upgrade_truth));
	upgrade_truth = NULL;
}

static void start_agent(struct __test_metadata *_metadata, FIXTURE_DATA(http2) *self,
			const FIXTURE_VARIANT(http2) *variant)
{
	const char *args[] = { "--interval", "60", "--set", variant->hooks, NULL };

	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
}

/*
 * Every connection ended (so cut streams are counted), then the output;
 * `undecoded` exchanges are expected without their headers.
 */
static void stop_agent_expecting(struct __test_metadata *_metadata, FIXTURE_DATA(http2) *self,
				 uint64_t undecoded)
{
	uint64_t ids[] = { self->pods.client.cgroup_id, self->pods.server.cgroup_id };

	EXPECT_EQ(0, wait_conn_table_empty(ids, 2, 10000));
	ASSERT_EQ(0, agent_proc_stop(&self->agent));
	ASSERT_EQ(0, agent_output_load(&self->output, self->agent.out_path));
	EXPECT_EQ(0, agent_output_lost(self->output, "http_table_full"));
	EXPECT_EQ(0, agent_output_lost(self->output, "http_conns_full"));
	EXPECT_EQ(0, agent_output_lost(self->output, "http_endpoint_lost"));
	EXPECT_EQ(0, agent_output_lost(self->output, "h2_headers_lost"));
	EXPECT_EQ(0, agent_output_lost(self->output, "h2_stream_lost"));
	EXPECT_EQ(undecoded, agent_output_lost(self->output, "h2_headers_undecoded"));
}

static void stop_agent(struct __test_metadata *_metadata, FIXTURE_DATA(http2) *self)
{
	stop_agent_expecting(_metadata, self, 0);
}

/* What the client saw of one endpoint. */
struct endpoint_truth {
	char endpoint[160];     /* "GET:/small" */
	unsigned long calls, status[5];
	unsigned long request_header, request_body, response_header, response_body;
	unsigned long truncated;
};

static void expect_endpoint(struct __test_metadata *_metadata, FIXTURE_DATA(http2) *self,
			    const struct endpoint_truth *truth, bool check_header_bytes)
{
	const char *roles[] = { "client", "server" };

	for (int r = 0; r < 2; r++) {
		uint64_t cgroup = r ? self->pods.server.cgroup_id : self->pods.client.cgroup_id;
		struct http_totals seen = agent_output_http(self->output, cgroup, roles[r],
							    truth->endpoint, 0, UINT64_MAX);
		unsigned long complete = truth->calls - truth->truncated;

		TH_LOG("%s %s: %lu calls, header bytes %lu/%lu, body bytes %lu", roles[r],
		       truth->endpoint, (unsigned long)seen.call_count,
		       (unsigned long)seen.request_header_bytes,
		       (unsigned long)seen.response_header_bytes, (unsigned long)seen.response_body_bytes);
		EXPECT_EQ(truth->calls, seen.call_count);
		for (int c = 0; c < 5; c++)
			EXPECT_EQ(truth->status[c], seen.status[c]);
		EXPECT_EQ(complete - (truth->truncated ? 0 : truth->status[4]), seen.success_count);
		EXPECT_EQ(0, seen.no_response_count);
		EXPECT_EQ(truth->truncated, seen.truncated_count);
		if (check_header_bytes) {
			EXPECT_EQ(truth->request_header, seen.request_header_bytes);
			EXPECT_EQ(truth->response_header, seen.response_header_bytes);
		}
		EXPECT_EQ(truth->request_body, seen.request_body_bytes);
		EXPECT_EQ(truth->response_body, seen.response_body_bytes);
		EXPECT_EQ(complete, seen.histogram_count);
		EXPECT_FALSE(seen.endpoint_unnamed);
	}
}

/* ---- nghttp -v: the client's own view of every frame ---------------------- */

struct stream_truth {
	unsigned int id;
	char method[16], path[128];
	int status;
	unsigned long request_header, response_header, response_body;
	unsigned long first_block;  /* the request's first block, to see the dynamic table at work */
};

struct nghttp_truth {
	struct stream_truth streams[MAX_STREAMS];
	int count;
};

static struct stream_truth *stream_of(struct nghttp_truth *truth, unsigned int id)
{
	for (int i = 0; i < truth->count; i++)
		if (truth->streams[i].id == id)
			return &truth->streams[i];
	if (truth->count == MAX_STREAMS)
		return NULL;
	memset(&truth->streams[truth->count], 0, sizeof(truth->streams[0]));
	truth->streams[truth->count].id = id;
	return &truth->streams[truth->count++];
}

/*
 * "[  0.000] send HEADERS frame <length=45, flags=0x25, stream_id=13>" and
 * the lines after it: "(padlen=0, ...)", ":path: /small"; "recv
 * (stream_id=13) :status: 200". HPACK bytes are the length without the pad
 * length byte, the padding and the 5 priority bytes.
 */
static int parse_nghttp(const char *path, struct nghttp_truth *truth)
{
	char line[1024], direction[8], type[32];
	struct stream_truth *last = NULL;
	bool last_sent = false;
	FILE *file = fopen(path, "r");

	if (!file)
		return -1;
	memset(truth, 0, sizeof(*truth));
	while (fgets(line, sizeof(line), file)) {
		unsigned int length, flags, id, padlen;
		const char *at;

		if ((at = strstr(line, "] send ")) || (at = strstr(line, "] recv "))) {
			if (sscanf(at + 2, "%7s %31s frame <length=%u, flags=0x%x, stream_id=%u>", direction,
				   type, &length, &flags, &id) == 5) {
				bool sent = strcmp(direction, "send") == 0;
				unsigned long bytes = length;

				last = NULL;
				if (strcmp(type, "HEADERS") && strcmp(type, "CONTINUATION") &&
				    strcmp(type, "DATA"))
					continue;
				if (flags & 0x8) { /* padded: the next line says by how much */
					if (!fgets(line, sizeof(line), file) ||
					    !(at = strstr(line, "padlen=")) || sscanf(at, "padlen=%u", &padlen) != 1)
						goto fail;
					bytes -= padlen + 1;
				}
				if (strcmp(type, "HEADERS") == 0 && (flags & 0x20))
					bytes -= 5;
				last = stream_of(truth, id);
				if (!last)
					goto fail;
				last_sent = sent;
				if (strcmp(type, "DATA") == 0) {
					if (!sent)
						last->response_body += bytes;
				} else if (sent) {
					if (!last->request_header)
						last->first_block = bytes;
					last->request_header += bytes;
				} else {
					last->response_header += bytes;
				}
				continue;
			}
			if (sscanf(at + 2, "recv (stream_id=%u) :status: %d", &id, &padlen) == 2) {
				struct stream_truth *stream = stream_of(truth, id);

				if (!stream)
					goto fail;
				stream->status = padlen;
			}
			continue;
		}
		if (!last || !last_sent)
			continue;
		if ((at = strstr(line, " :method: ")))
			sscanf(at + 10, "%15s", last->method);
		else if ((at = strstr(line, " :path: ")))
			sscanf(at + 8, "%127s", last->path);
	}
	fclose(file);
	return 0;
fail:
	fclose(file);
	return -1;
}

/* Sum the streams of one endpoint ("GET:/small") into `out`. */
static void endpoint_from_streams(const struct nghttp_truth *truth, const char *endpoint,
				  struct endpoint_truth *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->endpoint, sizeof(out->endpoint), "%s", endpoint);
	for (int i = 0; i < truth->count; i++) {
		const struct stream_truth *s = &truth->streams[i];
		char name[160];

		/* the query string is not part of the endpoint (config http_keep_query) */
		snprintf(name, sizeof(name), "%s:%.*s", s->method, (int)strcspn(s->path, "?"), s->path);
		if (!s->request_header || strcmp(name, endpoint))
			continue;
		out->calls++;
		if (s->status >= 100 && s->status < 600)
			out->status[s->status / 100 - 1]++;
		out->request_header += s->request_header;
		out->response_header += s->response_header;
		out->response_body += s->response_body;
	}
}

static int run_nghttp(FIXTURE_DATA(http2) *self, const char *const *options, const char *const *paths,
		      struct nghttp_truth *truth)
{
	char out[128], urls[MAX_STREAMS][128];
	char *argv[MAX_STREAMS + 16];
	int argc = 0, status;

	snprintf(out, sizeof(out), "%s/nghttp.out", self->dir);
	argv[argc++] = NGHTTP;
	argv[argc++] = "-v";
	argv[argc++] = "-n";
	for (int i = 0; options && options[i]; i++)
		argv[argc++] = (char *)options[i];
	for (int i = 0; paths[i] && i < MAX_STREAMS; i++) {
		snprintf(urls[i], sizeof(urls[i]), "http://%s:%d%s", self->pods.server.ipv4, H2_PORT,
			 paths[i]);
		argv[argc++] = urls[i];
	}
	argv[argc] = NULL;
	status = child_wait(pod_exec(&self->pods.client, argv, out));
	if (status)
		return status;
	return parse_nghttp(out, truth);
}

/*
 * One nghttp connection: 200s and 404s, a 300 KB body over many DATA
 * frames, and a long custom header repeated on every request, so that
 * every request after the first refers to the dynamic table.
 */
KTEST_F(http2, nghttp_statuses_sizes_and_dynamic_table_on_both_sides, 120)
{
	/* nghttp requests each distinct URI once: the queries make them distinct */
	const char *const paths[] = { "/small", "/missing", "/big", "/small?n=2", "/missing?n=2",
				      "/small?n=3", NULL };
	const char *const options[] = {
		"-H", "x-kaccess-filler: aaaaaaaaaabbbbbbbbbbccccccccccddddddddddeeeeeeeeee", NULL,
	};
	struct nghttp_truth truth;
	struct endpoint_truth small, missing, big;
	unsigned long first_block = 0, later_max = 0;

	start_agent(_metadata, self, variant);
	ASSERT_EQ(0, run_nghttp(self, options, paths, &truth));
	stop_agent(_metadata, self);

	endpoint_from_streams(&truth, "GET:/small", &small);
	endpoint_from_streams(&truth, "GET:/missing", &missing);
	endpoint_from_streams(&truth, "GET:/big", &big);
	ASSERT_EQ(3, small.calls);
	ASSERT_EQ(2, missing.calls);
	ASSERT_EQ(1, big.calls);
	ASSERT_EQ(2, missing.status[3]);
	ASSERT_EQ(3 * SMALL_BYTES, small.response_body);
	ASSERT_EQ(BIG_BYTES, big.response_body);
	for (int i = 0; i < truth.count; i++) {
		if (!truth.streams[i].first_block)
			continue; /* nghttp's PRIORITY-only anchor streams */
		if (!first_block)
			first_block = truth.streams[i].first_block;
		else if (truth.streams[i].first_block > later_max)
			later_max = truth.streams[i].first_block;
	}
	TH_LOG("first request block %lu bytes, later ones at most %lu", first_block, later_max);
	ASSERT_GT(first_block, later_max + 40); /* the filler header went by reference */
	expect_endpoint(_metadata, self, &small, true);
	expect_endpoint(_metadata, self, &missing, true);
	expect_endpoint(_metadata, self, &big, true);
	EXPECT_EQ(0, agent_output_lost(self->output, "http_parse_failed"));
}

/* h2load: many concurrent streams on one connection, identical (indexed) headers. */
KTEST_F(http2, h2load_many_streams_on_one_connection, 120)
{
	char out[128], url[128], line[512];
	char *argv[] = { H2LOAD, "-n", "400", "-c", "1", "-m", "50", url, NULL };
	unsigned long done = 0, ok = 0, header_bytes = 0, data_bytes = 0, total = 0;
	struct endpoint_truth small = { .endpoint = "GET:/small" };
	FILE *file;

	snprintf(out, sizeof(out), "%s/h2load.out", self->dir);
	snprintf(url, sizeof(url), "http://%s:%d/small", self->pods.server.ipv4, H2_PORT);
	start_agent(_metadata, self, variant);
	ASSERT_EQ(0, child_wait(pod_exec(&self->pods.client, argv, out)));
	stop_agent(_metadata, self);
	file = fopen(out, "r");
	ASSERT_NE(NULL, file);
	while (fgets(line, sizeof(line), file)) {
		sscanf(line, "requests: %*u total, %*u started, %lu done, %lu succeeded", &done, &ok);
		sscanf(line, "traffic: %*s (%lu) total, %*s (%lu) headers (space savings %*[^)]), %*s (%lu) data",
		       &total, &header_bytes, &data_bytes);
	}
	fclose(file);
	TH_LOG("h2load: %lu done, %lu ok, %lu header bytes, %lu data bytes", done, ok, header_bytes,
	       data_bytes);
	ASSERT_EQ(400, done);
	ASSERT_EQ(400, ok);
	ASSERT_EQ(400UL * SMALL_BYTES, data_bytes);
	small.calls = 400;
	small.status[1] = 400;
	small.response_header = header_bytes;
	small.response_body = data_bytes;
	/* request header bytes: h2load does not report them; the two sides agree */
	expect_endpoint(_metadata, self, &small, false);
	{
		struct http_totals client = agent_output_http(self->output, self->pods.client.cgroup_id,
							      "client", "GET:/small", 0, UINT64_MAX);
		struct http_totals server = agent_output_http(self->output, self->pods.server.cgroup_id,
							      "server", "GET:/small", 0, UINT64_MAX);

		EXPECT_EQ(header_bytes, client.response_header_bytes);
		EXPECT_EQ(client.request_header_bytes, server.request_header_bytes);
		EXPECT_LT(0, client.request_header_bytes);
	}
	EXPECT_EQ(0, agent_output_lost(self->output, "http_parse_failed"));
}

/*
 * The shipper stopped (SIGSTOP) while h2load makes SHED_EXCHANGES exchanges:
 * their records (about 530 bytes of them per exchange, both sides watched)
 * fill the 1 MiB ring buffer past half but not to its end. Running again,
 * the shipper sheds the access-log records of what it reads while more than
 * half waits, and still decodes every header block: every exchange counted
 * and named, no header block lost, every record shipped or shed.
 */
#define SHED_EXCHANGES 1500

KTEST_F(http2, records_shed_while_behind_keep_the_tables, 120)
{
	char out[128], url[128], count[16];
	char *argv[] = { H2LOAD, "-n", count, "-c", "1", "-m", "10", url, NULL };
	const char *args[] = { "--interval", "60", "--set", variant->hooks, "--set", "ringbuf_kib=1024", NULL };
	uint64_t records = 0, shed;
	int h2load_status;

	snprintf(out, sizeof(out), "%s/h2load.out", self->dir);
	snprintf(url, sizeof(url), "http://%s:%d/small", self->pods.server.ipv4, H2_PORT);
	snprintf(count, sizeof(count), "%d", SHED_EXCHANGES);
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	ASSERT_EQ(0, kill(self->agent.pid, SIGSTOP));
	h2load_status = child_wait(pod_exec(&self->pods.client, argv, out));
	ASSERT_EQ(0, kill(self->agent.pid, SIGCONT));
	ASSERT_EQ(0, h2load_status);
	stop_agent(_metadata, self); /* no header block or stream lost, none undecoded */
	for (int r = 0; r < 2; r++) {
		uint64_t cgroup = r ? self->pods.server.cgroup_id : self->pods.client.cgroup_id;
		const char *role = r ? "server" : "client";
		struct http_totals seen = agent_output_http(self->output, cgroup, role, "GET:/small", 0,
							    UINT64_MAX);

		EXPECT_EQ(SHED_EXCHANGES, seen.call_count);
		EXPECT_EQ(SHED_EXCHANGES, seen.status[1]);
		EXPECT_EQ((uint64_t)SHED_EXCHANGES * SMALL_BYTES, seen.response_body_bytes);
		records += agent_output_http_records(self->output, cgroup, role, NULL, 0);
	}
	shed = agent_output_lost(self->output, "http_record_shed");
	TH_LOG("records: %lu shipped, %lu shed", (unsigned long)records, (unsigned long)shed);
	EXPECT_LT(0, shed);
	EXPECT_LT(0, records);
	EXPECT_EQ(2 * SHED_EXCHANGES, records + shed);
}

/* curl --http2-prior-knowledge, one connection per request (curl 7.88 cannot reuse them). */
KTEST_F(http2, curl_prior_knowledge_status_and_body, 120)
{
	static const struct {
		const char *path, *endpoint;
	} cases[] = {
		{ "/small", "GET:/small" }, { "/big", "GET:/big" }, { "/missing", "GET:/missing" },
	};
	struct endpoint_truth truth[3] = { 0 };

	start_agent(_metadata, self, variant);
	for (int i = 0; i < 3; i++) {
		snprintf(truth[i].endpoint, sizeof(truth[i].endpoint), "%s", cases[i].endpoint);
		for (int run = 0; run < 2; run++) {
			char out[128], url[128], *argv[] = { CURL, "-s", "--http2-prior-knowledge", "-o",
							   "/dev/null", "-w",
							   "%{size_download} %{http_code} %{http_version}",
							   url, NULL };
			unsigned long size = 0, code = 0;
			char version[8] = "";
			FILE *file;

			snprintf(out, sizeof(out), "%s/curl.out", self->dir);
			snprintf(url, sizeof(url), "http://%s:%d%s", self->pods.server.ipv4, H2_PORT,
				 cases[i].path);
			ASSERT_EQ(0, child_wait(pod_exec(&self->pods.client, argv, out)));
			file = fopen(out, "r");
			ASSERT_NE(NULL, file);
			ASSERT_EQ(3, fscanf(file, "%lu %lu %7s", &size, &code, version));
			fclose(file);
			ASSERT_STREQ("2", version);
			truth[i].calls++;
			truth[i].status[code / 100 - 1]++;
			truth[i].response_body += size;
		}
	}
	stop_agent(_metadata, self);
	ASSERT_EQ(2 * BIG_BYTES, truth[1].response_body);
	ASSERT_EQ(2, truth[2].status[3]);
	for (int i = 0; i < 3; i++)
		expect_endpoint(_metadata, self, &truth[i], false);
	EXPECT_EQ(0, agent_output_lost(self->output, "http_parse_failed"));
}

#define TRACE_SW8 "1-YWJjZGVmLjEuMg==-c2VnbWVudC4z-0-c2VydmljZUI=-cG9kLWI=-L3NtYWxs-MTAuMC4wLjI6ODQ0Mw=="
#define TRACE_PARENT "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
#define TRACE_B3 "a3ce929d0e0e4736-00f067aa0ba902b7-1"

/*
 * Access-log records: one per stream on each side, with :authority as the
 * host, the status and body size curl reported, and the trace headers curl
 * sent (HPACK-encoded: decoded in userspace).
 */
KTEST_F(http2, records_with_authority_and_trace_headers, 120)
{
	static const char *const paths[] = { "/small", "/missing" };
	unsigned long size[2] = { 0 }, code[2] = { 0 }, curl_port[2] = { 0 };
	struct http_record_seen seen[4];
	char host[64];

	start_agent(_metadata, self, variant);
	for (int i = 0; i < 2; i++) {
		char out[128], url[128], *argv[] = { CURL, "-s", "--http2-prior-knowledge", "-o",
						   "/dev/null", "-w",
						   "%{size_download} %{http_code} %{local_port}",
						   "-H", "sw8: " TRACE_SW8, "-H",
						   "traceparent: " TRACE_PARENT, "-H", "b3: " TRACE_B3,
						   url, NULL };
		FILE *file;

		snprintf(out, sizeof(out), "%s/curl.out", self->dir);
		snprintf(url, sizeof(url), "http://%s:%d%s", self->pods.server.ipv4, H2_PORT, paths[i]);
		ASSERT_EQ(0, child_wait(pod_exec(&self->pods.client, argv, out)));
		file = fopen(out, "r");
		ASSERT_NE(NULL, file);
		ASSERT_EQ(3, fscanf(file, "%lu %lu %lu", &size[i], &code[i], &curl_port[i]));
		ASSERT_LT(0, curl_port[i]);
		fclose(file);
	}
	stop_agent(_metadata, self);
	ASSERT_EQ(200, code[0]);
	ASSERT_EQ(SMALL_BYTES, size[0]);
	ASSERT_EQ(404, code[1]);
	snprintf(host, sizeof(host), "%s:%d", self->pods.server.ipv4, H2_PORT);
	for (int r = 0; r < 2; r++) {
		uint64_t cgroup = r ? self->pods.server.cgroup_id : self->pods.client.cgroup_id;

		ASSERT_EQ(2, agent_output_http_records(self->output, cgroup, r ? "server" : "client",
						       seen, 4));
		for (int i = 0; i < 2; i++) {
			EXPECT_EQ(1, seen[i].seq); /* curl's one stream per connection */
			EXPECT_STREQ("2", seen[i].version);
			EXPECT_STREQ("GET", seen[i].method);
			EXPECT_STREQ(paths[i], seen[i].path);
			EXPECT_STREQ(host, seen[i].host);
			EXPECT_EQ(code[i], seen[i].status);
			EXPECT_STREQ("complete", seen[i].outcome);
			EXPECT_EQ(size[i], seen[i].response_body_bytes);
			EXPECT_EQ(0, seen[i].request_body_bytes);
			EXPECT_LT(0, seen[i].request_header_bytes);
			EXPECT_LT(0, seen[i].response_header_bytes);
			EXPECT_STREQ(TRACE_SW8, seen[i].sw8);
			EXPECT_STREQ(TRACE_PARENT, seen[i].traceparent);
			EXPECT_STREQ(TRACE_B3, seen[i].b3);
			EXPECT_FALSE(seen[i].head_cut);
			EXPECT_LE(seen[i].start_boot_ns, seen[i].end_boot_ns);
			/* the connection's own ports: curl's ephemeral one and the server's */
			EXPECT_EQ(r ? H2_PORT : curl_port[i], seen[i].local_port);
			EXPECT_EQ(r ? curl_port[i] : H2_PORT, seen[i].remote_port);
		}
	}
	/* the same HPACK bytes were read on one side and written on the other */
	{
		struct http_record_seen client[2], server[2];

		agent_output_http_records(self->output, self->pods.client.cgroup_id, "client", client, 2);
		agent_output_http_records(self->output, self->pods.server.cgroup_id, "server", server, 2);
		for (int i = 0; i < 2; i++) {
			EXPECT_EQ(client[i].request_header_bytes, server[i].request_header_bytes);
			EXPECT_EQ(client[i].response_header_bytes, server[i].response_header_bytes);
		}
	}
}

/*
 * The raw server answers curl's request with a status and 3000 body bytes,
 * then ends the connection: one exchange cut short, on both sides, with
 * the request's header block bytes the server read.
 */
KTEST_F(http2, connection_cut_mid_response, 90)
{
	char url[128], *argv[] = { CURL, "-s", "--http2-prior-knowledge", "-o", "/dev/null", url, NULL };
	struct endpoint_truth cut = { .endpoint = "GET:/cut" };

	snprintf(url, sizeof(url), "http://%s:%d/cut", self->pods.server.ipv4, RAW_PORT);
	start_agent(_metadata, self, variant);
	EXPECT_NE(0, child_wait(pod_exec(&self->pods.client, argv, NULL))); /* curl: partial */
	stop_agent(_metadata, self);
	ASSERT_EQ(1, raw_truth->headers_seen);
	cut.calls = 1;
	cut.truncated = 1;
	cut.status[1] = 1;
	cut.request_header = raw_truth->request_header_bytes;
	cut.response_header = 1;
	cut.response_body = CUT_BODY_BYTES;
	expect_endpoint(_metadata, self, &cut, true);
}

/* ---- the handmade client: padding, CONTINUATION, RST_STREAM ------------- */

#define UPLOAD_BYTES 100
#define UPLOAD_PADDING 20

/* What the handmade client sent and received on stream 1. */
struct handmade_truth {
	unsigned long request_header, response_header, response_body;
	int status;
	unsigned long stream3_frames_received;
	unsigned long later_streams_ended; /* END_STREAM frames received on streams after 1 */
};

struct handmade_job {
	const char *addr;
	int later_streams; /* reset_client_main: requests on streams 3, 5, ... after the reset */
	struct handmade_truth truth;
};

/* A literal header field without indexing, with an indexed name, no Huffman. */
static size_t hpack_literal(unsigned char *out, int name_index, const char *value)
{
	size_t len = strlen(value);

	out[0] = name_index; /* 0000xxxx: literal without indexing, name from the static table */
	out[1] = len;        /* shorter than 127: one byte, no Huffman */
	memcpy(out + 2, value, len);
	return 2 + len;
}

/* Frames the client received: stream 1's header block and DATA bytes; stream 3's frames. */
static void handmade_read(int fd, struct handmade_truth *truth)
{
	static unsigned char buf[65536];
	struct timeval quiet = { .tv_sec = 0, .tv_usec = 500000 };
	size_t have = 0, at = 0;
	ssize_t n;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &quiet, sizeof(quiet));
	while (have < sizeof(buf) && (n = read(fd, buf + have, sizeof(buf) - have)) > 0)
		have += n;
	while (at + FRAME_HEADER_BYTES <= have) {
		size_t len = (buf[at] << 16) | (buf[at + 1] << 8) | buf[at + 2];
		int type = buf[at + 3], flags = buf[at + 4];
		unsigned int stream = (buf[at + 7] << 8) | buf[at + 8];

		if (at + FRAME_HEADER_BYTES + len > have || (flags & 0x8))
			break; /* nghttpd does not pad */
		if (stream == 3)
			truth->stream3_frames_received++;
		if (stream > 1 && (flags & 0x1) && (type == 0 || type == 1))
			truth->later_streams_ended++;
		if (stream == 1 && type == 1) {
			truth->response_header += len;
			if (buf[at + FRAME_HEADER_BYTES] == 0x88) /* indexed ":status: 200" */
				truth->status = 200;
		}
		if (stream == 1 && type == 0)
			truth->response_body += len;
		at += FRAME_HEADER_BYTES + len;
	}
}

/*
 * Stream 1: POST /small, its header block split over a padded HEADERS
 * with priority and a CONTINUATION, its body in a padded DATA. Stream 3:
 * GET /missing, reset by the client in the same write (never answered).
 */
static int handmade_client_main(void *arg)
{
	struct handmade_job *job = arg;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(H2_PORT) };
	unsigned char out[1024], block[256], *at = out;
	size_t block_len = 0, split, second_len;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	block[block_len++] = 0x83; /* :method POST */
	block[block_len++] = 0x86; /* :scheme http */
	block_len += hpack_literal(block + block_len, 4, "/small");
	block_len += hpack_literal(block + block_len, 1, job->addr);
	split = block_len / 2;
	memcpy(at, preface, sizeof(preface) - 1);
	at += sizeof(preface) - 1;
	frame_header(at, 0, 4, 0, 0); /* SETTINGS */
	at += FRAME_HEADER_BYTES;
	/* HEADERS: PADDED | PRIORITY, no END_HEADERS: pad length, 5 priority bytes, fragment, padding */
	frame_header(at, 1 + 5 + split + 7, 1, 0x8 | 0x20, 1);
	at += FRAME_HEADER_BYTES;
	*at++ = 7;
	memset(at, 0, 5);
	at[4] = 15; /* weight */
	at += 5;
	memcpy(at, block, split);
	at += split;
	memset(at, 0, 7);
	at += 7;
	second_len = block_len - split;
	frame_header(at, second_len, 9, 0x4, 1); /* CONTINUATION, END_HEADERS */
	at += FRAME_HEADER_BYTES;
	memcpy(at, block + split, second_len);
	at += second_len;
	/* DATA: PADDED | END_STREAM */
	frame_header(at, 1 + UPLOAD_BYTES + UPLOAD_PADDING, 0, 0x8 | 0x1, 1);
	at += FRAME_HEADER_BYTES;
	*at++ = UPLOAD_PADDING;
	memset(at, 'u', UPLOAD_BYTES);
	at += UPLOAD_BYTES;
	memset(at, 0, UPLOAD_PADDING);
	at += UPLOAD_PADDING;
	job->truth.request_header = block_len;
	/* stream 3: GET /missing, then RST_STREAM (CANCEL) */
	block_len = 0;
	block[block_len++] = 0x82; /* :method GET */
	block[block_len++] = 0x86;
	block_len += hpack_literal(block + block_len, 4, "/missing");
	block_len += hpack_literal(block + block_len, 1, job->addr);
	frame_header(at, block_len, 1, 0x4 | 0x1, 3);
	at += FRAME_HEADER_BYTES;
	memcpy(at, block, block_len);
	at += block_len;
	frame_header(at, 4, 3, 0, 3);
	at += FRAME_HEADER_BYTES;
	memset(at, 0, 4);
	at[3] = 0x8; /* CANCEL */
	at += 4;

	inet_pton(AF_INET, job->addr, &sin.sin_addr);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) || fd_write_all(fd, out, at - out))
		return 1;
	handmade_read(fd, &job->truth);
	close(fd);
	return 0;
}

KTEST_F(http2, padding_continuation_and_reset, 90)
{
	struct handmade_job *job = shared_alloc(sizeof(*job));
	struct endpoint_truth upload = { .endpoint = "POST:/small" };
	struct http_record_seen records[2];
	struct http_totals seen;

	ASSERT_NE(NULL, job);
	job->addr = self->pods.server.ipv4;
	start_agent(_metadata, self, variant);
	ASSERT_EQ(0, child_wait(pod_spawn(&self->pods.client, handmade_client_main, job)));
	stop_agent(_metadata, self);
	ASSERT_EQ(200, job->truth.status);
	ASSERT_EQ(SMALL_BYTES, job->truth.response_body);
	ASSERT_EQ(0, job->truth.stream3_frames_received);
	upload.calls = 1;
	upload.status[1] = 1;
	upload.request_header = job->truth.request_header;
	upload.request_body = UPLOAD_BYTES;
	upload.response_header = job->truth.response_header;
	upload.response_body = job->truth.response_body;
	expect_endpoint(_metadata, self, &upload, true);
	for (int r = 0; r < 2; r++) {
		uint64_t cgroup = r ? self->pods.server.cgroup_id : self->pods.client.cgroup_id;

		seen = agent_output_http(self->output, cgroup, r ? "server" : "client", "GET:/missing", 0,
					 UINT64_MAX);
		EXPECT_EQ(1, seen.call_count);
		EXPECT_EQ(1, seen.no_response_count);
		EXPECT_EQ(0, seen.success_count);
		EXPECT_EQ(strlen("/missing") + strlen(job->addr) + 2 + 2 * 2, seen.request_header_bytes);
		EXPECT_EQ(0, seen.response_header_bytes);
	}
	/* the client's one write began with the preface: no stream's */
	ASSERT_EQ(2, agent_output_http_records(self->output, self->pods.client.cgroup_id, "client",
					       records, 2));
	for (int i = 0; i < 2; i++) {
		EXPECT_EQ(0, records[i].request_calls);
		EXPECT_EQ(0, records[i].request_call_ns);
	}
	EXPECT_EQ(0, agent_output_lost(self->output, "http_parse_failed"));
	munmap(job, sizeof(*job));
}

/*
 * GET /small, then, once nghttpd's whole response is on its way (200 ms),
 * RST_STREAM before reading it: the client's exchange ended unanswered at
 * its reset, and the response it reads afterwards belongs to nothing (it is
 * not a lost exchange); nghttpd's exchange was complete when it wrote it.
 */
static int reset_client_main(void *arg)
{
	struct handmade_job *job = arg;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(H2_PORT) };
	unsigned char out[1024], block[128], *at = out;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t block_len = 0;

	memcpy(at, preface, sizeof(preface) - 1);
	at += sizeof(preface) - 1;
	frame_header(at, 0, 4, 0, 0);
	at += FRAME_HEADER_BYTES;
	block[block_len++] = 0x82;
	block[block_len++] = 0x86;
	block_len += hpack_literal(block + block_len, 4, "/small");
	block_len += hpack_literal(block + block_len, 1, job->addr);
	frame_header(at, block_len, 1, 0x5, 1);
	at += FRAME_HEADER_BYTES;
	memcpy(at, block, block_len);
	at += block_len;
	job->truth.request_header = block_len;
	inet_pton(AF_INET, job->addr, &sin.sin_addr);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) || fd_write_all(fd, out, at - out))
		return 1;
	usleep(200000);
	frame_header(out, 4, 3, 0, 1);
	memset(out + FRAME_HEADER_BYTES, 0, 4);
	out[FRAME_HEADER_BYTES + 3] = 0x8; /* CANCEL */
	if (fd_write_all(fd, out, FRAME_HEADER_BYTES + 4))
		return 1;
	at = out;
	for (int i = 0; i < job->later_streams && at + FRAME_HEADER_BYTES + block_len <= out + sizeof(out);
	     i++) {
		frame_header(at, block_len, 1, 0x5, 3 + 2 * i); /* END_HEADERS | END_STREAM */
		at += FRAME_HEADER_BYTES;
		memcpy(at, block, block_len);
		at += block_len;
	}
	if (at > out && fd_write_all(fd, out, at - out))
		return 1;
	handmade_read(fd, &job->truth);
	close(fd);
	return 0;
}

KTEST_F(http2, reset_after_the_response_was_sent, 90)
{
	struct handmade_job *job = shared_alloc(sizeof(*job));
	struct http_totals client, server;
	struct http_record_seen record;

	ASSERT_NE(NULL, job);
	job->addr = self->pods.server.ipv4;
	start_agent(_metadata, self, variant);
	ASSERT_EQ(0, child_wait(pod_spawn(&self->pods.client, reset_client_main, job)));
	stop_agent(_metadata, self); /* h2_stream_lost 0: the late response is not a lost exchange */
	ASSERT_EQ(200, job->truth.status);
	ASSERT_EQ(SMALL_BYTES, job->truth.response_body);
	client = agent_output_http(self->output, self->pods.client.cgroup_id, "client", "GET:/small", 0,
				   UINT64_MAX);
	EXPECT_EQ(1, client.call_count);
	EXPECT_EQ(1, client.no_response_count);
	EXPECT_EQ(job->truth.request_header, client.request_header_bytes);
	EXPECT_EQ(0, client.response_body_bytes);
	server = agent_output_http(self->output, self->pods.server.cgroup_id, "server", "GET:/small", 0,
				   UINT64_MAX);
	EXPECT_EQ(1, server.call_count);
	EXPECT_EQ(1, server.success_count);
	EXPECT_EQ(1, server.status[1]);
	EXPECT_EQ(job->truth.request_header, server.request_header_bytes);
	EXPECT_EQ(job->truth.response_header, server.response_header_bytes);
	EXPECT_EQ(job->truth.response_body, server.response_body_bytes);
	/*
	 * The client's calls of stream 1: not its first write (it began with
	 * the preface), its RST_STREAM's, counted before the reset's record;
	 * the reads after it found the stream ended.
	 */
	ASSERT_EQ(1, agent_output_http_records(self->output, self->pods.client.cgroup_id, "client",
					       &record, 1));
	EXPECT_STREQ("no_response", record.outcome);
	EXPECT_EQ(1, record.request_calls);
	EXPECT_LT(0, record.request_call_ns);
	EXPECT_EQ(0, record.response_calls);
	EXPECT_EQ(0, agent_output_lost(self->output, "http_parse_failed"));
	munmap(job, sizeof(*job));
}

/*
 * As above, and then, before reading, eight more requests (streams 3 to
 * 17): stream 17's slot in the connection's entry is stream 1's, which
 * moves to h2_streams, so that the late response still finds stream 1
 * ended (not a lost exchange, h2_stream_lost 0 in stop_agent).
 */
KTEST_F(http2, reset_stream_found_by_its_late_response_after_its_slot_is_taken, 90)
{
	struct handmade_job *job = shared_alloc(sizeof(*job));
	struct http_totals client, server;

	ASSERT_NE(NULL, job);
	job->addr = self->pods.server.ipv4;
	job->later_streams = 8;
	start_agent(_metadata, self, variant);
	ASSERT_EQ(0, child_wait(pod_spawn(&self->pods.client, reset_client_main, job)));
	stop_agent(_metadata, self);
	ASSERT_EQ(200, job->truth.status);
	ASSERT_EQ(8, job->truth.later_streams_ended);
	client = agent_output_http(self->output, self->pods.client.cgroup_id, "client", "GET:/small", 0,
				   UINT64_MAX);
	EXPECT_EQ(9, client.call_count);
	EXPECT_EQ(1, client.no_response_count);
	EXPECT_EQ(8, client.success_count);
	EXPECT_EQ(8, client.status[1]);
	EXPECT_EQ(9 * job->truth.request_header, client.request_header_bytes);
	EXPECT_EQ(8 * SMALL_BYTES, client.response_body_bytes);
	server = agent_output_http(self->output, self->pods.server.cgroup_id, "server", "GET:/small", 0,
				   UINT64_MAX);
	EXPECT_EQ(9, server.call_count);
	EXPECT_EQ(9, server.success_count);
	EXPECT_EQ(9 * SMALL_BYTES, server.response_body_bytes);
	EXPECT_EQ(0, agent_output_lost(self->output, "http_parse_failed"));
	munmap(job, sizeof(*job));
}

/* ---- calls: a raw client and a raw server, each of their calls known ------ */

#define CALLS_PORT 9444
#define CALL_LOG_BYTES 4096
#define CALL_LOG_CALLS 1024
#define CLIENT_READ_BYTES 7  /* reads that begin and end in headers, payloads and padding */
#define SERVER_READ_BYTES 16
#define CALLS_BODY_A 100     /* stream 1's request body: two DATA frames */
#define CALLS_BODY_B 50

/* One direction of the connection as one peer wrote or read it: its bytes, its calls. */
struct call_log {
	unsigned char bytes[CALL_LOG_BYTES];
	size_t len;
	size_t call_start[CALL_LOG_CALLS]; /* where each call's first byte is */
	uint64_t call_ns[CALL_LOG_CALLS];  /* each call's duration, measured around the syscall */
	int calls;
	int failed;
};

struct calls_job {
	const char *addr;
	struct call_log client_sent, client_read, server_read, server_sent;
};

static uint64_t monotonic_ns(void)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now); /* bpf_ktime_get_ns()'s clock */
	return now.tv_sec * 1000000000ULL + now.tv_nsec;
}

/* One write() of all of `data`, logged as one call; a short write fails the log. */
static int logged_write(int fd, struct call_log *log, const void *data, size_t len)
{
	uint64_t start_ns;
	ssize_t n;

	if (log->calls == CALL_LOG_CALLS || len > CALL_LOG_BYTES - log->len)
		goto fail;
	start_ns = monotonic_ns();
	n = write(fd, data, len);
	log->call_ns[log->calls] = monotonic_ns() - start_ns;
	if (n != (ssize_t)len)
		goto fail;
	log->call_start[log->calls++] = log->len;
	memcpy(log->bytes + log->len, data, len);
	log->len += len;
	return 0;
fail:
	log->failed = 1;
	return -1;
}

/* One read() of at most `max` bytes, logged as one call when it moved any: its result. */
static ssize_t logged_read(int fd, struct call_log *log, size_t max)
{
	uint64_t start_ns;
	ssize_t n;

	if (log->calls == CALL_LOG_CALLS || max > CALL_LOG_BYTES - log->len) {
		log->failed = 1;
		return -1;
	}
	start_ns = monotonic_ns();
	n = read(fd, log->bytes + log->len, max);
	if (n <= 0)
		return n; /* the end (or an error) moved no byte: not a call kaccess parses */
	log->call_ns[log->calls] = monotonic_ns() - start_ns;
	log->call_start[log->calls++] = log->len;
	log->len += n;
	return n;
}

static size_t frame_length(const unsigned char *h)
{
	return (h[0] << 16) | (h[1] << 8) | h[2];
}

static unsigned int frame_stream(const unsigned char *h)
{
	return ((h[5] & 0x7f) << 24) | (h[6] << 16) | (h[7] << 8) | h[8];
}

/*
 * The stream of the frame that holds byte `offset` of a direction whose
 * frames begin at `first_frame` (after the preface); 0 in the preface.
 */
static unsigned int stream_at(const struct call_log *log, size_t first_frame, size_t offset)
{
	size_t at = first_frame;

	if (offset < first_frame)
		return 0;
	while (at + FRAME_HEADER_BYTES <= log->len) {
		size_t end = at + FRAME_HEADER_BYTES + frame_length(log->bytes + at);

		if (offset < end)
			return frame_stream(log->bytes + at);
		at = end;
	}
	return 0;
}

/* What a peer's log says of one stream's calls. */
struct stream_calls {
	unsigned long calls;
	uint64_t call_ns;        /* their durations as the peer measured them */
	uint64_t first_call_ns;  /* ...the first one's */
};

/*
 * The calls whose first byte is in a frame of `stream`: the calls kaccess
 * must give it (the streams here are open from their first frame to their
 * last in both directions, so none is dropped as untracked or ended).
 */
static struct stream_calls calls_of_stream(const struct call_log *log, size_t first_frame,
					   unsigned int stream)
{
	struct stream_calls out = { 0 };

	for (int i = 0; i < log->calls; i++) {
		if (stream_at(log, first_frame, log->call_start[i]) != stream)
			continue;
		if (!out.calls)
			out.first_call_ns = log->call_ns[i];
		out.calls++;
		out.call_ns += log->call_ns[i];
	}
	return out;
}

/* Read, at most `max` bytes a call, until streams 1 and 3 both sent END_STREAM: 0, or -1. */
static int calls_read_until_ended(int fd, struct call_log *log, size_t max, size_t first_frame)
{
	size_t at = first_frame;
	int ended = 0;

	for (;;) {
		while (at + FRAME_HEADER_BYTES <= log->len &&
		       at + FRAME_HEADER_BYTES + frame_length(log->bytes + at) <= log->len) {
			int type = log->bytes[at + 3], flags = log->bytes[at + 4];

			if ((type == 0 || type == 1) && (flags & 0x1))
				ended++;
			at += FRAME_HEADER_BYTES + frame_length(log->bytes + at);
		}
		if (ended == 2)
			return 0;
		if (logged_read(fd, log, max) <= 0)
			return -1;
	}
}

/* :method, :scheme http, :path and :authority, literal where not indexed. */
static size_t calls_request_block(unsigned char *out, int method_index, const char *path,
				  const char *authority)
{
	size_t len = 0;

	out[len++] = method_index;
	out[len++] = 0x86;
	len += hpack_literal(out + len, 4, path);
	len += hpack_literal(out + len, 1, authority);
	return len;
}

static void set_nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)); /* each write, its segment */
}

/*
 * The client's writes, one frame (or piece of one) a call where the
 * comment says so: streams 1 (POST /calls) and 3 (GET /calls3). Its
 * reads of the response take CLIENT_READ_BYTES at a time.
 */
static int calls_client_main(void *arg)
{
	struct calls_job *job = arg;
	struct call_log *sent = &job->client_sent;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(CALLS_PORT) };
	unsigned char out[256], block[128];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t block_len;

	set_nodelay(fd);
	inet_pton(AF_INET, job->addr, &sin.sin_addr);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
		return 1;
	/* the preface and SETTINGS: no stream's */
	memcpy(out, preface, sizeof(preface) - 1);
	frame_header(out + sizeof(preface) - 1, 0, 4, 0, 0);
	logged_write(fd, sent, out, sizeof(preface) - 1 + FRAME_HEADER_BYTES);
	/* stream 1's HEADERS, alone: stream 1's */
	block_len = calls_request_block(block, 0x83, "/calls", job->addr);
	frame_header(out, block_len, 1, 0x4, 1);
	memcpy(out + FRAME_HEADER_BYTES, block, block_len);
	logged_write(fd, sent, out, FRAME_HEADER_BYTES + block_len);
	/* a DATA frame cut 4 bytes into its header: both calls stream 1's */
	frame_header(out, CALLS_BODY_A, 0, 0, 1);
	memset(out + FRAME_HEADER_BYTES, 'a', CALLS_BODY_A);
	logged_write(fd, sent, out, 4);
	logged_write(fd, sent, out + 4, FRAME_HEADER_BYTES - 4 + CALLS_BODY_A);
	/* a PING, alone: no stream's */
	frame_header(out, 8, 6, 0, 0);
	memset(out + FRAME_HEADER_BYTES, 0, 8);
	logged_write(fd, sent, out, FRAME_HEADER_BYTES + 8);
	/* stream 3's HEADERS, then the header of stream 1's last DATA: stream 3's */
	block_len = calls_request_block(block, 0x82, "/calls3", job->addr);
	frame_header(out, block_len, 1, 0x4 | 0x1, 3);
	memcpy(out + FRAME_HEADER_BYTES, block, block_len);
	frame_header(out + FRAME_HEADER_BYTES + block_len, CALLS_BODY_B, 0, 0x1, 1);
	logged_write(fd, sent, out, 2 * FRAME_HEADER_BYTES + block_len);
	/* that DATA's payload: begins inside a frame of stream 1, so stream 1's */
	memset(out, 'b', CALLS_BODY_B);
	logged_write(fd, sent, out, CALLS_BODY_B);
	if (sent->failed || calls_read_until_ended(fd, &job->client_read, CLIENT_READ_BYTES, 0))
		return 1;
	/* SETTINGS ack and GOAWAY, each alone: no stream's */
	frame_header(out, 0, 4, 0x1, 0);
	logged_write(fd, sent, out, FRAME_HEADER_BYTES);
	frame_header(out, 8, 7, 0, 0);
	memset(out + FRAME_HEADER_BYTES, 0, 8);
	logged_write(fd, sent, out, FRAME_HEADER_BYTES + 8);
	close(fd);
	return sent->failed;
}

/* The server's writes of the responses (stream 1: 200, stream 3: 404), after both requests. */
static int calls_respond(int fd, struct call_log *sent)
{
	unsigned char out[256];

	/* SETTINGS ack: no stream's */
	frame_header(out, 0, 4, 0x1, 0);
	logged_write(fd, sent, out, FRAME_HEADER_BYTES);
	/* WINDOW_UPDATE on stream 1, alone: stream 1's */
	frame_header(out, 4, 8, 0, 1);
	memset(out + FRAME_HEADER_BYTES, 0, 4);
	out[FRAME_HEADER_BYTES + 3] = CALLS_BODY_A + CALLS_BODY_B;
	logged_write(fd, sent, out, FRAME_HEADER_BYTES + 4);
	/* stream 1's HEADERS ":status: 200": stream 1's */
	frame_header(out, 1, 1, 0x4, 1);
	out[FRAME_HEADER_BYTES] = 0x88;
	logged_write(fd, sent, out, FRAME_HEADER_BYTES + 1);
	/* stream 3's HEADERS ":status: 404", then 20 DATA bytes of stream 1: stream 3's */
	frame_header(out, 1, 1, 0x4, 3);
	out[FRAME_HEADER_BYTES] = 0x8d;
	frame_header(out + FRAME_HEADER_BYTES + 1, 20, 0, 0, 1);
	memset(out + 2 * FRAME_HEADER_BYTES + 1, 'r', 20);
	logged_write(fd, sent, out, 2 * FRAME_HEADER_BYTES + 1 + 20);
	/* a padded DATA of stream 1 in three calls: header; pad length and content; padding
	 * followed by stream 3's last DATA. All three stream 1's. */
	frame_header(out, 1 + 24 + 5, 0, 0x8, 1);
	logged_write(fd, sent, out, FRAME_HEADER_BYTES);
	out[0] = 5;
	memset(out + 1, 's', 24);
	logged_write(fd, sent, out, 1 + 24);
	memset(out, 0, 5);
	frame_header(out + 5, 10, 0, 0x1, 3);
	memset(out + 5 + FRAME_HEADER_BYTES, 't', 10);
	logged_write(fd, sent, out, 5 + FRAME_HEADER_BYTES + 10);
	/* a PING, alone: no stream's */
	frame_header(out, 8, 6, 0, 0);
	memset(out + FRAME_HEADER_BYTES, 0, 8);
	logged_write(fd, sent, out, FRAME_HEADER_BYTES + 8);
	/* stream 1's END_STREAM in an empty DATA: stream 1's, counted before its record */
	frame_header(out, 0, 0, 0x1, 1);
	logged_write(fd, sent, out, FRAME_HEADER_BYTES);
	return sent->failed ? -1 : 0;
}

/* The raw server of one connection: reads of SERVER_READ_BYTES, then calls_respond. */
static int calls_server_main(void *arg)
{
	struct calls_job *job = arg;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(CALLS_PORT) };
	int one = 1, listener = socket(AF_INET, SOCK_STREAM, 0), fd;
	const size_t preface_len = sizeof(preface) - 1;
	unsigned char settings[FRAME_HEADER_BYTES];

	inet_pton(AF_INET, job->addr, &sin.sin_addr);
	setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(listener, (struct sockaddr *)&sin, sizeof(sin)) || listen(listener, 1))
		return 1;
	fd = accept(listener, NULL, NULL);
	if (fd < 0)
		return 1;
	set_nodelay(fd);
	/* the preface in one read: kaccess knows HTTP/2 by a call's first 24 bytes */
	if (logged_read(fd, &job->server_read, preface_len) != (ssize_t)preface_len)
		return 1;
	frame_header(settings, 0, 4, 0, 0);
	if (logged_write(fd, &job->server_sent, settings, sizeof(settings)) ||
	    calls_read_until_ended(fd, &job->server_read, SERVER_READ_BYTES, preface_len) ||
	    calls_respond(fd, &job->server_sent))
		return 1;
	while (logged_read(fd, &job->server_read, SERVER_READ_BYTES) > 0)
		;
	close(fd);
	close(listener);
	return job->server_read.failed;
}

/*
 * The stream records of one side against what its peer logged: each
 * stream's request and response calls are exactly the calls whose first
 * byte was in one of its frames; their kernel-measured durations are
 * above 0 and within the peer's own measurement around each syscall.
 */
static void expect_stream_calls(struct __test_metadata *_metadata, FIXTURE_DATA(http2) *self,
				bool server, const struct call_log *requests,
				const struct call_log *responses, unsigned long *ret_request_calls)
{
	uint64_t cgroup = server ? self->pods.server.cgroup_id : self->pods.client.cgroup_id;
	const char *role = server ? "server" : "client";
	struct http_record_seen seen[4];

	*ret_request_calls = 0;
	ASSERT_EQ(2, agent_output_http_records(self->output, cgroup, role, seen, 4));
	for (int i = 0; i < 2; i++) {
		const struct http_record_seen *r = &seen[i];
		struct stream_calls request = calls_of_stream(requests, sizeof(preface) - 1, r->seq);
		struct stream_calls response = calls_of_stream(responses, 0, r->seq);

		TH_LOG("%s stream %lu: request calls %lu (%lu ns, peer %lu ns), response calls %lu (%lu ns, peer %lu ns)",
		       role, (unsigned long)r->seq, (unsigned long)r->request_calls,
		       (unsigned long)r->request_call_ns, (unsigned long)request.call_ns,
		       (unsigned long)r->response_calls, (unsigned long)r->response_call_ns,
		       (unsigned long)response.call_ns);
		EXPECT_STREQ("complete", r->outcome);
		EXPECT_EQ(r->seq == 1 ? 200 : 404, r->status);
		EXPECT_EQ(request.calls, r->request_calls);
		EXPECT_EQ(response.calls, r->response_calls);
		EXPECT_LT(0, r->request_call_ns);
		EXPECT_LE(r->request_call_ns, request.call_ns);
		EXPECT_LT(0, r->response_call_ns);
		EXPECT_LE(r->response_call_ns, response.call_ns);
		/*
		 * One thread's calls, the first the client's HEADERS write whose
		 * end starts the record: within the record and that write.
		 */
		if (!server)
			EXPECT_LE(r->request_call_ns + r->response_call_ns,
				  r->end_boot_ns - r->start_boot_ns + request.first_call_ns);
		*ret_request_calls += r->request_calls;
	}
}

/*
 * A raw client and a raw server, each of whose reads and writes is known
 * byte for byte: on each side, a stream's records carry exactly the calls
 * whose first byte was in one of its frames. A call that begins with the
 * preface or a connection's frame (SETTINGS, PING, GOAWAY) is no stream's;
 * one that begins with a piece of a frame header, or inside a payload or
 * its padding, is the frame's stream's; an empty END_STREAM DATA counts
 * before its record is made.
 */
KTEST_F(http2, calls_go_to_the_stream_of_their_first_byte, 90)
{
	struct calls_job *job = shared_alloc(sizeof(*job));
	unsigned long client_request_calls, server_request_calls;
	pid_t server;

	ASSERT_NE(NULL, job);
	job->addr = self->pods.server.ipv4;
	start_agent(_metadata, self, variant);
	server = pod_spawn(&self->pods.server, calls_server_main, job);
	ASSERT_LT(0, server);
	ASSERT_EQ(0, netns_wait_listening(self->pods.server.netns, CALLS_PORT, 10000));
	ASSERT_EQ(0, child_wait(pod_spawn(&self->pods.client, calls_client_main, job)));
	ASSERT_EQ(0, child_wait(server));
	stop_agent(_metadata, self);

	/* the writes as planned: 5 of 9 begin with a stream's frame; 7 of 10 answer */
	ASSERT_EQ(9, job->client_sent.calls);
	ASSERT_EQ(4, calls_of_stream(&job->client_sent, sizeof(preface) - 1, 1).calls);
	ASSERT_EQ(1, calls_of_stream(&job->client_sent, sizeof(preface) - 1, 3).calls);
	ASSERT_EQ(10, job->server_sent.calls);
	ASSERT_EQ(6, calls_of_stream(&job->server_sent, 0, 1).calls);
	ASSERT_EQ(1, calls_of_stream(&job->server_sent, 0, 3).calls);
	/* both peers saw the same bytes */
	ASSERT_EQ(job->client_sent.len, job->server_read.len);
	ASSERT_EQ(0, memcmp(job->client_sent.bytes, job->server_read.bytes, job->client_sent.len));
	ASSERT_EQ(job->server_sent.len, job->client_read.len);

	expect_stream_calls(_metadata, self, false, &job->client_sent, &job->client_read,
			    &client_request_calls);
	expect_stream_calls(_metadata, self, true, &job->server_read, &job->server_sent,
			    &server_request_calls);
	/* the client's writes that began with the preface, a PING, a SETTINGS ack, a GOAWAY: none */
	EXPECT_EQ(5, client_request_calls);
	EXPECT_EQ(0, agent_output_lost(self->output, "http_parse_failed"));
	munmap(job, sizeof(*job));
}

/* ---- HTTP/1.1 Upgrade: h2c ------------------------------------------------- */

/*
 * What curl said of one upgrade (its request carries the three trace
 * headers): request bytes, body bytes, status, HTTP version (2).
 */
struct curl_upgrade {
	unsigned long request_bytes, body_bytes;
	int status, version;
};

static int run_curl_upgrade(FIXTURE_DATA(http2) *self, const char *path, struct curl_upgrade *seen)
{
	char out[128], url[160];
	char *argv[] = { CURL, "-s", "--http2", "-o", "/dev/null", "-w",
			 "%{size_request} %{size_download} %{http_code} %{http_version}\\n",
			 "-H", "sw8: " TRACE_SW8, "-H", "traceparent: " TRACE_PARENT, "-H", "b3: " TRACE_B3,
			 url, NULL };
	int status;
	FILE *file;

	snprintf(out, sizeof(out), "%s/curl-upgrade.out", self->dir);
	snprintf(url, sizeof(url), "http://%s:%d%s", self->pods.server.ipv4, UPGRADE_PORT, path);
	status = child_wait(pod_exec(&self->pods.client, argv, out));
	if (status)
		return status;
	file = fopen(out, "r");
	if (!file)
		return -1;
	status = fscanf(file, "%lu %lu %d %d", &seen->request_bytes, &seen->body_bytes, &seen->status,
			&seen->version) == 4 ? 0 : -1;
	fclose(file);
	return status;
}

/* The upgrade server's connections of one endpoint, summed. */
static void endpoint_from_upgrades(const char *path, struct endpoint_truth *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->endpoint, sizeof(out->endpoint), "GET:%s", path);
	for (int i = 0; i < upgrade_truth->conns; i++) {
		const struct upgrade_conn_truth *conn = &upgrade_truth->conn[i];

		if (strncmp(conn->path, path, strcspn(conn->path, "?")) ||
		    strlen(path) != strcspn(conn->path, "?") || !conn->status)
			continue;
		out->calls++;
		out->status[conn->status / 100 - 1]++;
		out->request_header += conn->request_header;
		out->response_header += conn->response_header;
		out->response_body += conn->response_body;
	}
}

/*
 * The stream-1 record of each upgrade on one side, in connection order:
 * method, path (query cut) and the Host and trace headers of the HTTP/1.1
 * request as the server read it, version 2, stream 1, the sizes the server
 * counted (a connection without a status had no response), the calls of
 * the HTTP/1.1 request and the 101 (the server's exactly); and no record
 * of the request as an HTTP/1.1 exchange of its own.
 */
static void expect_upgrade_records(struct __test_metadata *_metadata, FIXTURE_DATA(http2) *self,
				   bool server)
{
	uint64_t cgroup = server ? self->pods.server.cgroup_id : self->pods.client.cgroup_id;
	struct http_record_seen seen[UPGRADE_CONNS];
	size_t count = agent_output_http_records(self->output, cgroup, server ? "server" : "client",
						 seen, UPGRADE_CONNS);

	ASSERT_EQ(upgrade_truth->conns, count);
	for (int i = 0; i < upgrade_truth->conns; i++) {
		const struct upgrade_conn_truth *truth = &upgrade_truth->conn[i];
		const struct http_record_seen *r = &seen[i];
		char path[128];

		snprintf(path, sizeof(path), "%.*s", (int)strcspn(truth->path, "?"), truth->path);
		TH_LOG("%s record %d: %s %s host %s", server ? "server" : "client", i, r->method,
		       r->path, r->host);
		EXPECT_STREQ("GET", r->method);
		EXPECT_STREQ(path, r->path);
		EXPECT_STREQ(truth->host, r->host);
		EXPECT_STREQ(truth->sw8, r->sw8);
		EXPECT_STREQ(truth->traceparent, r->traceparent);
		EXPECT_STREQ(truth->b3, r->b3);
		EXPECT_FALSE(r->head_cut);
		EXPECT_STREQ("2", r->version);
		EXPECT_EQ(1, r->seq); /* the stream id */
		EXPECT_EQ(truth->status, r->status);
		EXPECT_STREQ(truth->status ? "complete" : "no_response", r->outcome);
		EXPECT_EQ(truth->request_header, r->request_header_bytes);
		EXPECT_EQ(0, r->request_body_bytes);
		EXPECT_EQ(truth->status ? truth->response_header : 0, r->response_header_bytes);
		EXPECT_EQ(truth->response_body, r->response_body_bytes);
		/*
		 * The server's calls: its reads of the HTTP/1.1 request, and the
		 * write that began with the 101 (its next write, if any, begins
		 * with SETTINGS: no stream's; the client's calls after the 101
		 * begin with the preface or stream-0 frames).
		 */
		if (server) {
			EXPECT_EQ(truth->request_reads, r->request_calls);
			EXPECT_EQ(1, r->response_calls);
		} else {
			EXPECT_LE(1, r->request_calls); /* curl's and nghttp's writes: at least one */
		}
	}
}

/*
 * curl --http2 (no prior knowledge) and nghttp -u ask to upgrade; the
 * upgrade server accepts: each request, made in HTTP/1.1, is answered as
 * HTTP/2 stream 1, once with the 101 and the frames in one write and once
 * with the frames after the client's preface. One exchange per request on
 * each side (the 101 is not one of its own), named by the HTTP/1.1
 * request line, with the HTTP/1.1 request's bytes and the 101's bytes
 * plus the HEADERS block as response header bytes. Each side's record of
 * stream 1 has the HTTP/1.1 request's method, path, Host and trace headers
 * (curl sends the three, nghttp none).
 */
KTEST_F(http2, upgrade_from_http1_answered_as_stream_1, 120)
{
	struct curl_upgrade split = { 0 }, together = { 0 };
	struct endpoint_truth small, missing;
	struct nghttp_truth nghttp;
	char out[128], url[160], host[64];
	char *argv[] = { NGHTTP, "-v", "-n", "-u", url, NULL };

	start_agent(_metadata, self, variant);
	ASSERT_EQ(0, run_curl_upgrade(self, "/small", &split));
	ASSERT_EQ(0, run_curl_upgrade(self, "/missing?together", &together));
	/* nghttp -u: the 101 and the frames together */
	snprintf(out, sizeof(out), "%s/nghttp-upgrade.out", self->dir);
	snprintf(url, sizeof(url), "http://%s:%d/small?together", self->pods.server.ipv4, UPGRADE_PORT);
	ASSERT_EQ(0, child_wait(pod_exec(&self->pods.client, argv, out)));
	ASSERT_EQ(0, parse_nghttp(out, &nghttp));
	stop_agent(_metadata, self);

	ASSERT_EQ(3, upgrade_truth->conns);
	/* what the clients saw agrees with what the server sent */
	ASSERT_EQ(2, split.version);
	ASSERT_EQ(200, split.status);
	ASSERT_EQ(SMALL_BYTES, split.body_bytes);
	ASSERT_EQ(upgrade_truth->conn[0].request_header, split.request_bytes);
	ASSERT_EQ(2, together.version);
	ASSERT_EQ(404, together.status);
	ASSERT_EQ(strlen(MISSING_BODY), together.body_bytes);
	ASSERT_EQ(upgrade_truth->conn[1].request_header, together.request_bytes);
	ASSERT_EQ(1, nghttp.count);
	ASSERT_EQ(1, nghttp.streams[0].id);
	ASSERT_EQ(200, nghttp.streams[0].status);
	ASSERT_EQ(SMALL_BYTES, nghttp.streams[0].response_body);
	ASSERT_EQ(1, nghttp.streams[0].response_header); /* the indexed :status */
	/* what the clients sent, as the server read it */
	snprintf(host, sizeof(host), "%s:%d", self->pods.server.ipv4, UPGRADE_PORT);
	for (int i = 0; i < 3; i++)
		ASSERT_STREQ(host, upgrade_truth->conn[i].host);
	ASSERT_STREQ(TRACE_PARENT, upgrade_truth->conn[0].traceparent);
	ASSERT_STREQ(TRACE_B3, upgrade_truth->conn[1].b3);
	ASSERT_STREQ("", upgrade_truth->conn[2].sw8);

	endpoint_from_upgrades("/small", &small);
	endpoint_from_upgrades("/missing", &missing);
	ASSERT_EQ(2, small.calls);
	ASSERT_EQ(1, missing.calls);
	expect_endpoint(_metadata, self, &small, true);
	expect_endpoint(_metadata, self, &missing, true);
	expect_upgrade_records(_metadata, self, false);
	expect_upgrade_records(_metadata, self, true);
	EXPECT_EQ(0, agent_output_lost(self->output, "http_parse_failed"));
	EXPECT_EQ(0, agent_output_lost(self->output, "http_upgrade_unfollowed"));
}

/*
 * The upgrade server answers the 101 and its SETTINGS, then ends the
 * connection: stream 1 never had a response. Its exchange is counted at
 * the connection's end (no response), and its record, made there, has
 * the HTTP/1.1 request's method, path, Host and trace headers.
 */
KTEST_F(http2, upgrade_cut_before_the_response_has_its_record, 90)
{
	struct curl_upgrade seen = { 0 };
	char host[64];

	start_agent(_metadata, self, variant);
	EXPECT_NE(0, run_curl_upgrade(self, "/cut", &seen)); /* curl: no response */
	stop_agent(_metadata, self);
	ASSERT_EQ(1, upgrade_truth->conns);
	ASSERT_EQ(0, upgrade_truth->conn[0].status);
	snprintf(host, sizeof(host), "%s:%d", self->pods.server.ipv4, UPGRADE_PORT);
	ASSERT_STREQ(host, upgrade_truth->conn[0].host);
	ASSERT_STREQ(TRACE_SW8, upgrade_truth->conn[0].sw8);
	expect_upgrade_records(_metadata, self, false);
	expect_upgrade_records(_metadata, self, true);
	EXPECT_EQ(0, agent_output_lost(self->output, "http_parse_failed"));
	EXPECT_EQ(0, agent_output_lost(self->output, "http_upgrade_unfollowed"));
}

/* A client that asks for "/plain" first when `plain_first`, then upgrades "/small?together". */
struct upgrade_client_job {
	const char *addr;
	bool plain_first;
	size_t received;
};

static int upgrade_client_main(void *arg)
{
	struct upgrade_client_job *job = arg;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(UPGRADE_PORT) };
	unsigned char settings[FRAME_HEADER_BYTES];
	size_t answer = strlen(switching) + 3 * FRAME_HEADER_BYTES + 1 + SMALL_BYTES;
	char request[512], buf[4096];
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	ssize_t n;

	inet_pton(AF_INET, job->addr, &sin.sin_addr);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
		return 1;
	if (job->plain_first) {
		snprintf(request, sizeof(request), "GET /plain HTTP/1.1\r\nHost: %s:%d\r\n\r\n",
			 job->addr, UPGRADE_PORT);
		if (fd_write_all(fd, request, strlen(request)))
			return 1;
		while (job->received < strlen(plain_ok) && (n = read(fd, buf, sizeof(buf))) > 0)
			job->received += n;
		answer += strlen(plain_ok);
	}
	snprintf(request, sizeof(request),
		 "GET /small?together HTTP/1.1\r\nHost: %s:%d\r\nConnection: Upgrade, HTTP2-Settings\r\n"
		 "Upgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n", job->addr, UPGRADE_PORT);
	if (fd_write_all(fd, request, strlen(request)))
		return 1;
	while (job->received < answer && (n = read(fd, buf, sizeof(buf))) > 0)
		job->received += n;
	frame_header(settings, 0, 4, 0, 0);
	if (fd_write_all(fd, preface, strlen(preface)) || fd_write_all(fd, settings, sizeof(settings)))
		return 1;
	close(fd);
	return 0;
}

/*
 * http_log_policy = sampled (1 in 2): stream 1 of an upgraded connection
 * is sampled by its HTTP/1.1 request's number on the connection, as that
 * request's head was. An upgrade that is the connection's second request
 * (after "/plain") ships no record; one that is the first ships stream
 * 1's. Both are counted in the endpoint's aggregates. HTTP/2's records
 * all reach the shipper (its header blocks must), so /metrics counts the
 * one per side as filtered there, none as sampled out in the kernel.
 */
KTEST_F(http2, upgrade_is_sampled_by_its_http1_request_number, 120)
{
	static char text[1 << 20];
	struct upgrade_client_job *job = shared_alloc(sizeof(*job));
	const char *shipped[] = { "fate=\"shipped\"", NULL };
	const char *in_kernel[] = { "fate=\"sampled_out_in_kernel\"", NULL };
	const char *filtered[] = { "fate=\"filtered\"", NULL };
	char listen[64], setting[80], url[96];
	const char *args[] = { "--interval", "60", "--set", variant->hooks, "--set", "http_log_policy=sampled",
			       "--set", "http_log_sample_rate=2", "--set", setting, NULL };
	struct http_record_seen seen[UPGRADE_CONNS];
	struct endpoint_truth small;

	ASSERT_NE(NULL, job);
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", 20000 + getpid() % 10000);
	snprintf(setting, sizeof(setting), "http_listen=%s", listen);
	snprintf(url, sizeof(url), "http://%s/metrics", listen);
	job->addr = self->pods.server.ipv4;
	ASSERT_EQ(0, agent_proc_start(&self->agent, args));
	job->plain_first = true;
	ASSERT_EQ(0, child_wait(pod_spawn(&self->pods.client, upgrade_client_main, job)));
	job->plain_first = false;
	job->received = 0;
	ASSERT_EQ(0, child_wait(pod_spawn(&self->pods.client, upgrade_client_main, job)));
	ASSERT_EQ(0, agent_metrics_wait(url, text, sizeof(text), "kaccess_http_records_total", shipped,
					2 * 2, 5000));
	EXPECT_EQ(2 * 1, agent_metric_sum(text, "kaccess_http_records_total", filtered));
	EXPECT_EQ(0, agent_metric_sum(text, "kaccess_http_records_total", in_kernel));
	EXPECT_EQ(2 * 2, agent_metric_sum(text, "kaccess_http_records_total", shipped));
	stop_agent(_metadata, self);

	ASSERT_EQ(2, upgrade_truth->conns);
	ASSERT_EQ(1, upgrade_truth->conn[0].plain_requests);
	ASSERT_EQ(0, upgrade_truth->conn[1].plain_requests);
	for (int i = 0; i < 2; i++)
		ASSERT_EQ(200, upgrade_truth->conn[i].status);
	endpoint_from_upgrades("/small", &small);
	ASSERT_EQ(2, small.calls);
	expect_endpoint(_metadata, self, &small, true);
	for (int r = 0; r < 2; r++) {
		uint64_t cgroup = r ? self->pods.server.cgroup_id : self->pods.client.cgroup_id;

		/* the first connection's "/plain" (request 0), the second's stream 1 */
		ASSERT_EQ(2, agent_output_http_records(self->output, cgroup, r ? "server" : "client",
						       seen, UPGRADE_CONNS));
		EXPECT_STREQ("/plain", seen[0].path);
		EXPECT_STREQ("1.1", seen[0].version);
		EXPECT_EQ(0, seen[0].seq);
		EXPECT_EQ(200, seen[0].status);
		EXPECT_STREQ("/small", seen[1].path);
		EXPECT_STREQ("2", seen[1].version);
		EXPECT_EQ(1, seen[1].seq);
		EXPECT_EQ(200, seen[1].status);
		EXPECT_EQ(upgrade_truth->conn[1].request_header, seen[1].request_header_bytes);
		EXPECT_FALSE(seen[1].head_cut);
	}
	EXPECT_EQ(0, agent_output_lost(self->output, "http_parse_failed"));
	EXPECT_EQ(0, agent_output_lost(self->output, "http_upgrade_unfollowed"));
	munmap(job, sizeof(*job));
}

/* A WebSocket client: the upgrade request, the 101 and a frame read, a masked frame written. */
static int websocket_client_main(void *arg)
{
	struct raw_client_job *job = arg;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(UPGRADE_PORT) };
	static const unsigned char masked_hi[] = { 0x81, 0x82, 1, 2, 3, 4, 'h' ^ 1, 'i' ^ 2 };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char buf[512];
	ssize_t n;

	inet_pton(AF_INET, job->addr, &sin.sin_addr);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) || fd_write_all(fd, job->bytes, job->len))
		return 1;
	while (job->received < strlen(websocket_switching) + sizeof(websocket_hello) &&
	       (n = read(fd, buf, sizeof(buf))) > 0)
		job->received += n;
	if (fd_write_all(fd, masked_hi, sizeof(masked_hi)))
		return 1;
	close(fd);
	return 0;
}

/*
 * A 101 to another protocol (WebSocket): the bytes after it are not
 * HTTP/2's, so the 101 was the request's answer: one 1xx exchange on each
 * side, no parse failure, nothing unfollowed.
 */
KTEST_F(http2, upgrade_to_another_protocol_is_a_1xx_exchange, 90)
{
	struct raw_client_job *job = shared_alloc(sizeof(*job));
	struct endpoint_truth websocket;
	char request[256];

	ASSERT_NE(NULL, job);
	snprintf(request, sizeof(request),
		 "GET /ws HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
		 "Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: a2FjY2Vzcy1zZWxmdGVzdA==\r\n\r\n",
		 self->pods.server.ipv4, UPGRADE_PORT);
	job->addr = self->pods.server.ipv4;
	job->bytes = (const unsigned char *)request;
	job->len = strlen(request);
	start_agent(_metadata, self, variant);
	ASSERT_EQ(0, child_wait(pod_spawn(&self->pods.client, websocket_client_main, job)));
	stop_agent(_metadata, self);
	ASSERT_EQ(1, upgrade_truth->conns);
	ASSERT_EQ(101, upgrade_truth->conn[0].status);
	ASSERT_EQ(strlen(request), upgrade_truth->conn[0].request_header);
	ASSERT_EQ(strlen(websocket_switching) + sizeof(websocket_hello), job->received);
	endpoint_from_upgrades("/ws", &websocket);
	ASSERT_EQ(1, websocket.calls);
	ASSERT_EQ(1, websocket.status[0]);
	expect_endpoint(_metadata, self, &websocket, true);
	EXPECT_EQ(0, agent_output_lost(self->output, "http_parse_failed"));
	EXPECT_EQ(0, agent_output_lost(self->output, "http_upgrade_unfollowed"));
	munmap(job, sizeof(*job));
}

/* ---- a connection open before the agent started -------------------------- */

/* What the client sent and received per stream after the agent started. */
struct adopted_job {
	const char *addr;
	volatile int first_done, go;   /* the test's handshake with the client */
	unsigned long request_header[2], response_header[2], response_body[2];
	int status[2];
};

/* Read frames until streams 3 and 5 ended; sizes of each (nghttpd does not pad). */
static int adopted_read(int fd, struct adopted_job *job, unsigned int first_stream, int streams)
{
	static unsigned char buf[65536];
	size_t have = 0, at = 0;
	int ended = 0;
	ssize_t n;

	while (ended < streams && (n = read(fd, buf + have, sizeof(buf) - have)) > 0) {
		have += n;
		while (at + FRAME_HEADER_BYTES <= have) {
			size_t len = (buf[at] << 16) | (buf[at + 1] << 8) | buf[at + 2];
			int type = buf[at + 3], flags = buf[at + 4], i;
			unsigned int stream = (buf[at + 7] << 8) | buf[at + 8];

			if (at + FRAME_HEADER_BYTES + len > have)
				break;
			i = (stream - first_stream) / 2;
			if (stream >= first_stream && i < streams && (type == 0 || type == 1)) {
				if (type == 1) {
					job->response_header[i] += len;
					if (buf[at + FRAME_HEADER_BYTES] == 0x88)
						job->status[i] = 200;
					if (buf[at + FRAME_HEADER_BYTES] == 0x8d)
						job->status[i] = 404;
				} else {
					job->response_body[i] += len;
				}
				if (flags & 0x1)
					ended++;
			}
			at += FRAME_HEADER_BYTES + len;
		}
	}
	return ended == streams ? 0 : -1;
}

/*
 * Stream 1 (before the agent): :path "/small" with incremental indexing,
 * so it enters the client's HPACK table. After the agent started: stream 3
 * refers to that entry (its path is unknown to a late observer), stream 5
 * spells "/missing" literally.
 */
static int adopted_client_main(void *arg)
{
	struct adopted_job *job = arg;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(H2_PORT) };
	unsigned char out[512], block[128], *at = out;
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	size_t block_len = 0;

	memcpy(at, preface, sizeof(preface) - 1);
	at += sizeof(preface) - 1;
	frame_header(at, 0, 4, 0, 0);
	at += FRAME_HEADER_BYTES;
	block[block_len++] = 0x82;
	block[block_len++] = 0x86;
	block[block_len++] = 0x44; /* literal with incremental indexing, name :path */
	block[block_len++] = 6;
	memcpy(block + block_len, "/small", 6);
	block_len += 6;
	block_len += hpack_literal(block + block_len, 1, job->addr);
	frame_header(at, block_len, 1, 0x5, 1);
	at += FRAME_HEADER_BYTES;
	memcpy(at, block, block_len);
	at += block_len;
	inet_pton(AF_INET, job->addr, &sin.sin_addr);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) || fd_write_all(fd, out, at - out) ||
	    adopted_read(fd, job, 1, 1))
		return 1;
	/* nghttpd closes a connection whose SETTINGS go unacknowledged for 10 s */
	frame_header(out, 0, 4, 0x1, 0);
	if (fd_write_all(fd, out, FRAME_HEADER_BYTES))
		return 1;
	memset(job->response_header, 0, sizeof(job->response_header));
	memset(job->response_body, 0, sizeof(job->response_body));
	memset(job->status, 0, sizeof(job->status));
	job->first_done = 1;
	while (!job->go)
		usleep(10000);
	at = out;
	block_len = 0;
	block[block_len++] = 0x82;
	block[block_len++] = 0x86;
	block[block_len++] = 0xbe; /* dynamic table entry 62: ":path: /small" */
	block_len += hpack_literal(block + block_len, 1, job->addr);
	frame_header(at, block_len, 1, 0x5, 3);
	at += FRAME_HEADER_BYTES;
	memcpy(at, block, block_len);
	at += block_len;
	job->request_header[0] = block_len;
	block_len = 0;
	block[block_len++] = 0x82;
	block[block_len++] = 0x86;
	block_len += hpack_literal(block + block_len, 4, "/missing");
	block_len += hpack_literal(block + block_len, 1, job->addr);
	frame_header(at, block_len, 1, 0x5, 5);
	at += FRAME_HEADER_BYTES;
	memcpy(at, block, block_len);
	at += block_len;
	job->request_header[1] = block_len;
	if (fd_write_all(fd, out, at - out) || adopted_read(fd, job, 3, 2))
		return 1;
	close(fd);
	return 0;
}

/*
 * A connection open before the agent started: its exchanges are counted
 * from the first frame seen. A request whose :path is a reference into the
 * HPACK table built before is counted under "UNKNOWN:unknown" (and as
 * undecoded); one that spells its path is named exactly; statuses are
 * static-table references and decode.
 */
KTEST_F(http2, connection_open_before_start, 90)
{
	struct adopted_job *job = shared_alloc(sizeof(*job));
	pid_t client;
	struct endpoint_truth unknown = { .endpoint = "UNKNOWN:unknown" };
	struct endpoint_truth missing = { .endpoint = "GET:/missing" };

	ASSERT_NE(NULL, job);
	job->addr = self->pods.server.ipv4;
	client = pod_spawn(&self->pods.client, adopted_client_main, job);
	ASSERT_LT(0, client);
	for (int waited = 0; waited < 5000 && !job->first_done; waited += 10)
		usleep(10000);
	ASSERT_EQ(1, job->first_done);
	start_agent(_metadata, self, variant);
	job->go = 1;
	ASSERT_EQ(0, child_wait(client));
	stop_agent_expecting(_metadata, self, 2); /* the unnamed exchange, on each side */
	ASSERT_EQ(200, job->status[0]);
	ASSERT_EQ(404, job->status[1]);
	ASSERT_EQ(SMALL_BYTES, job->response_body[0]);
	unknown.calls = 1;
	unknown.status[1] = 1;
	unknown.request_header = job->request_header[0];
	unknown.response_header = job->response_header[0];
	unknown.response_body = job->response_body[0];
	missing.calls = 1;
	missing.status[3] = 1;
	missing.request_header = job->request_header[1];
	missing.response_header = job->response_header[1];
	missing.response_body = job->response_body[1];
	expect_endpoint(_metadata, self, &unknown, true);
	expect_endpoint(_metadata, self, &missing, true);
	EXPECT_EQ(0, agent_output_lost(self->output, "http_parse_failed"));
	munmap(job, sizeof(*job));
}

/*
 * A client preface, then random bytes where the SETTINGS frame belongs: a
 * parse failure on each side (client's write, nghttpd's read), no exchange.
 */
KTEST_F(http2, random_bytes_after_preface_are_parse_failures, 90)
{
	struct raw_client_job *job = shared_alloc(sizeof(*job));
	unsigned char bytes[sizeof(preface) - 1 + 512];
	struct http_totals seen;

	ASSERT_NE(NULL, job);
	memcpy(bytes, preface, sizeof(preface) - 1);
	srand(7);
	for (size_t i = sizeof(preface) - 1; i < sizeof(bytes); i++)
		bytes[i] = rand() & 0xff;
	bytes[sizeof(preface) - 1 + 3] = 0x01; /* a HEADERS frame first: not a SETTINGS */
	job->addr = self->pods.server.ipv4;
	job->bytes = bytes;
	job->len = sizeof(bytes);
	start_agent(_metadata, self, variant);
	ASSERT_EQ(0, child_wait(pod_spawn(&self->pods.client, raw_client_main, job)));
	stop_agent(_metadata, self);
	EXPECT_EQ(2, agent_output_lost(self->output, "http_parse_failed"));
	seen = agent_output_http(self->output, self->pods.client.cgroup_id, NULL, NULL, 0, UINT64_MAX);
	EXPECT_EQ(0, seen.call_count);
	seen = agent_output_http(self->output, self->pods.server.cgroup_id, NULL, NULL, 0, UINT64_MAX);
	EXPECT_EQ(0, seen.call_count);
	munmap(job, sizeof(*job));
}

/* ---- repeated header blocks: the same bytes, another table -------------- */

/*
 * The table client's requests, one at a time: a path named with incremental
 * indexing (a new dynamic entry 62, the older ones move up) or a reference
 * to entry 63. Streams 5, 9 and 11 send the same bytes; 5 means /small, 9
 * and 11 mean /missing, because stream 7 added an entry in between. A
 * shipper that kept stream 5's bytes as "decoded already" past stream 7's
 * table change would count 9 as /other (the fields it decoded last).
 */
static const struct table_request {
	const char *literal; /* the path, indexed; NULL: a reference to entry 63 */
	const char *path;    /* what the request means */
} table_requests[] = {
	{ "/small", "/small" },     /* 62 /small */
	{ "/missing", "/missing" }, /* 62 /missing, 63 /small */
	{ NULL, "/small" },
	{ "/other", "/other" },     /* 62 /other, 63 /missing, 64 /small */
	{ NULL, "/missing" },
	{ NULL, "/missing" },
};
#define TABLE_STREAMS (sizeof(table_requests) / sizeof(table_requests[0]))

/* One stream of the table client: what it sent and what nghttpd answered. */
struct table_stream_truth {
	unsigned long request_header, response_header, response_body;
	int status;
};

struct table_job {
	const char *addr;
	struct table_stream_truth streams[TABLE_STREAMS];
};

/* A literal header field with incremental indexing (it adds a table entry), indexed name. */
static size_t hpack_literal_indexed(unsigned char *out, int name_index, const char *value)
{
	size_t len = hpack_literal(out, name_index, value);

	out[0] = 0x40 | name_index; /* 01xxxxxx */
	return len;
}

/* A frame nghttpd sent, counted into `truth` when it is the stream's. */
static void table_frame_seen(const unsigned char *frame, unsigned int stream_id,
			     struct table_stream_truth *truth)
{
	size_t len = frame_length(frame);
	int type = frame[3];

	if (frame_stream(frame) != stream_id)
		return;
	if (type == 1 || type == 9) { /* HEADERS, CONTINUATION: nghttpd pads nothing */
		truth->response_header += len;
		if (type == 1 && len) /* :status from the static table, as nghttpd sends it */
			truth->status = frame[FRAME_HEADER_BYTES] == 0x88 ? 200 :
					frame[FRAME_HEADER_BYTES] == 0x8d ? 404 : -1;
	} else if (type == 0) {
		truth->response_body += len;
	}
}

/* Read frames until stream `stream_id`'s response ends: 0, or -1 (timeout, closed). */
static int table_read_response(int fd, unsigned int stream_id, struct table_stream_truth *truth)
{
	static unsigned char buf[65536];
	static size_t have;
	struct timeval wait = { .tv_sec = 5 };
	bool ended = false;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, sizeof(wait));
	while (!ended) {
		size_t frame;
		ssize_t n;

		while (have < FRAME_HEADER_BYTES || have < FRAME_HEADER_BYTES + frame_length(buf)) {
			n = read(fd, buf + have, sizeof(buf) - have);
			if (n <= 0)
				return -1;
			have += n;
		}
		frame = FRAME_HEADER_BYTES + frame_length(buf);
		table_frame_seen(buf, stream_id, truth);
		ended = frame_stream(buf) == stream_id && buf[3] <= 1 && (buf[4] & 0x1);
		memmove(buf, buf + frame, have - frame);
		have -= frame;
	}
	return 0;
}

/* GETs of table_requests on one connection, each answered before the next. */
static int table_client_main(void *arg)
{
	struct table_job *job = arg;
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = htons(H2_PORT) };
	unsigned char out[512], *at = out;
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	inet_pton(AF_INET, job->addr, &sin.sin_addr);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
		return 1;
	memcpy(at, preface, sizeof(preface) - 1);
	at += sizeof(preface) - 1;
	frame_header(at, 0, 4, 0, 0); /* SETTINGS */
	at += FRAME_HEADER_BYTES;
	for (size_t i = 0; i < TABLE_STREAMS; i++) {
		unsigned int stream_id = 2 * i + 1;
		unsigned char block[128];
		size_t block_len = 0;

		block[block_len++] = 0x82; /* :method GET */
		block[block_len++] = 0x86; /* :scheme http */
		if (table_requests[i].literal)
			block_len += hpack_literal_indexed(block + block_len, 4, table_requests[i].literal);
		else
			block[block_len++] = 0x80 | 63;
		block_len += hpack_literal(block + block_len, 1, job->addr);
		frame_header(at, block_len, 1, 0x4 | 0x1, stream_id); /* END_HEADERS, END_STREAM */
		at += FRAME_HEADER_BYTES;
		memcpy(at, block, block_len);
		at += block_len;
		job->streams[i].request_header = block_len;
		if (fd_write_all(fd, out, at - out) ||
		    table_read_response(fd, stream_id, &job->streams[i]))
			return 1;
		at = out;
	}
	close(fd);
	return 0;
}

/* The truth of endpoint "GET:`path`": the table client's streams that meant it. */
static void table_endpoint(const struct table_job *job, const char *path, struct endpoint_truth *out)
{
	memset(out, 0, sizeof(*out));
	snprintf(out->endpoint, sizeof(out->endpoint), "GET:%s", path);
	for (size_t i = 0; i < TABLE_STREAMS; i++) {
		const struct table_stream_truth *stream = &job->streams[i];

		if (strcmp(table_requests[i].path, path))
			continue;
		out->calls++;
		if (stream->status >= 100 && stream->status < 600)
			out->status[stream->status / 100 - 1]++;
		out->request_header += stream->request_header;
		out->response_header += stream->response_header;
		out->response_body += stream->response_body;
	}
}

KTEST_F(http2, repeated_blocks_follow_the_table, 90)
{
	struct table_job *job = shared_alloc(sizeof(*job));
	struct endpoint_truth small, missing, other;

	ASSERT_NE(NULL, job);
	job->addr = self->pods.server.ipv4;
	start_agent(_metadata, self, variant);
	ASSERT_EQ(0, child_wait(pod_spawn(&self->pods.client, table_client_main, job)));
	stop_agent(_metadata, self);
	for (size_t i = 0; i < TABLE_STREAMS; i++) /* nghttpd read each path as meant */
		ASSERT_EQ(strcmp(table_requests[i].path, "/small") ? 404 : 200, job->streams[i].status);
	table_endpoint(job, "/small", &small);
	table_endpoint(job, "/missing", &missing);
	table_endpoint(job, "/other", &other);
	ASSERT_EQ(2, small.status[1]);
	ASSERT_EQ(3, missing.status[3]);
	ASSERT_EQ(1, other.status[3]);
	ASSERT_EQ(2 * SMALL_BYTES, small.response_body);
	expect_endpoint(_metadata, self, &small, true);
	expect_endpoint(_metadata, self, &missing, true);
	expect_endpoint(_metadata, self, &other, true);
	EXPECT_EQ(0, agent_output_lost(self->output, "h2_headers_undecoded"));
	EXPECT_EQ(0, agent_output_lost(self->output, "h2_headers_lost"));
	munmap(job, sizeof(*job));
}

TEST_HARNESS_MAIN
