// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * gRPC over one HTTP/2 connection (grpc_conn.h). nghttp2 runs on memory
 * buffers: its output is gathered into `out` and written with one send()
 * or SSL_write() per pump, and what the socket gives is fed to it as read.
 * The call's request body is a buffer of gRPC-framed messages; nghttp2's
 * data source takes from it as flow control allows and defers while it is
 * empty, and every write resumes it.
 *
 * How a call ends, as gRPC's HTTP/2 mapping says: the trailers' (or a
 * trailers-only answer's) grpc-status; without one, a non-200 :status
 * mapped to a code; without that, the RST_STREAM's error; a connection
 * that fails ends its call UNAVAILABLE with the reason.
 */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <nghttp2/nghttp2.h>
#include <openssl/err.h>

#include "clock.h"
#include "grpc_conn.h"
#include "parse.h"
#include "resolve.h"
#include "tls_client.h"

#define GRPC_PREFIX_BYTES 5
/* Gather nghttp2's frames up to this much before writing: one write per pump. */
#define OUT_GATHER_BYTES (256u << 10)
#define READ_CHUNK_BYTES (16u << 10)
/* Read at most this many chunks per pump: a flood must not starve the writer. */
#define READ_CHUNKS_MAX 64
#define WAIT_SLICE_MS 50
/* A call's buffer grown past this (a meter collection reaches 1 MiB) is
 * given back when the next call starts, not kept resident. */
#define BODY_KEEP_BYTES (256u << 10)

struct call_body {
	uint8_t *buf;            /* framed messages: [taken, used) not yet given to nghttp2 */
	size_t taken, used, capacity;
};

struct grpc_conn {
	struct grpc_conn_options opts;
	char host[256];          /* without an IPv6 literal's brackets */
	char port[8];
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	nghttp2_session *session;

	uint8_t *out;            /* nghttp2's frames not yet written: [out_sent, out_len) */
	size_t out_sent, out_len, out_capacity;

	bool failed;
	bool goaway;
	char fail_reason[GRPC_DETAILS_LEN];
	uint64_t last_frame_ms;  /* the last bytes from the server */
	uint64_t ping_sent_ms;   /* an unanswered keepalive PING, or 0 */

	/* The call: at most one. */
	int32_t stream_id;       /* 0: none open */
	bool half_closed;
	int http_status;
	bool grpc_status_seen;
	struct call_body body;
	struct grpc_call_state state;
};

/* ---- the call's end ---- */

const char *grpc_code_name(enum grpc_code code)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
		"INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};

	return (unsigned int)code < sizeof(names) / sizeof(names[0]) ? names[code] : "UNKNOWN";
}

static void call_end(struct grpc_conn *conn, enum grpc_code code, const char *details)
{
	if (conn->state.done)
		return;
	conn->state.done = true;
	conn->state.code = code;
	if (details)
		snprintf(conn->state.details, sizeof(conn->state.details), "%s", details);
	conn->stream_id = 0;
}

/* gRPC's mapping of an HTTP status that came without a grpc-status. */
static enum grpc_code code_of_http_status(int status)
{
	switch (status) {
	case 400:
		return GRPC_CODE_INTERNAL;
	case 401:
		return GRPC_CODE_UNAUTHENTICATED;
	case 403:
		return GRPC_CODE_PERMISSION_DENIED;
	case 404:
		return GRPC_CODE_UNIMPLEMENTED;
	case 429:
	case 502:
	case 503:
	case 504:
		return GRPC_CODE_UNAVAILABLE;
	default:
		return GRPC_CODE_UNKNOWN;
	}
}

static enum grpc_code code_of_reset(uint32_t error_code)
{
	switch (error_code) {
	case NGHTTP2_REFUSED_STREAM:
		return GRPC_CODE_UNAVAILABLE; /* not processed at all: safe to try again */
	case NGHTTP2_CANCEL:
		return GRPC_CODE_CANCELLED;
	case NGHTTP2_ENHANCE_YOUR_CALM:
		return GRPC_CODE_RESOURCE_EXHAUSTED;
	default:
		return GRPC_CODE_INTERNAL;
	}
}

static void call_closed_by_server(struct grpc_conn *conn, uint32_t error_code)
{
	char text[GRPC_DETAILS_LEN];

	if (conn->grpc_status_seen) {
		call_end(conn, conn->state.code, NULL);
	} else if (conn->http_status && conn->http_status != 200) {
		snprintf(text, sizeof(text), "HTTP status %d without a grpc-status", conn->http_status);
		call_end(conn, code_of_http_status(conn->http_status), text);
	} else if (error_code != NGHTTP2_NO_ERROR) {
		snprintf(text, sizeof(text), "stream reset by the server: %s",
			 nghttp2_http2_strerror(error_code));
		call_end(conn, code_of_reset(error_code), text);
	} else {
		call_end(conn, GRPC_CODE_UNKNOWN, "the call ended without a grpc-status");
	}
}

/* The connection is unusable from here on; an open call ends UNAVAILABLE. */
static void conn_fail(struct grpc_conn *conn, const char *reason)
{
	if (!conn->failed)
		snprintf(conn->fail_reason, sizeof(conn->fail_reason), "%s", reason);
	conn->failed = true;
	if (conn->stream_id)
		call_end(conn, GRPC_CODE_UNAVAILABLE, conn->fail_reason);
}

/* ---- nghttp2's callbacks ---- */

static bool header_is(const uint8_t *name, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(name, want, len) == 0;
}

/* grpc-message is percent-encoded (gRPC's HTTP/2 spec). */
static void percent_decode(const uint8_t *value, size_t len, char *out, size_t out_len)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 1 < out_len; i++) {
		int high = i + 2 < len ? parse_hex_digit((char)value[i + 1]) : -1;
		int low = i + 2 < len ? parse_hex_digit((char)value[i + 2]) : -1;

		if (value[i] == '%' && high >= 0 && low >= 0) {
			out[n++] = (char)(high << 4 | low);
			i += 2;
		} else {
			out[n++] = (char)value[i];
		}
	}
	out[n] = '\0';
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
		     size_t name_len, const uint8_t *value, size_t value_len, uint8_t flags,
		     void *user_data)
{
	struct grpc_conn *conn = user_data;
	unsigned int number;

	if (frame->hd.stream_id != conn->stream_id || !conn->stream_id)
		return 0;
	/* nghttp2 ends every name and value with a NUL */
	if (header_is(name, name_len, ":status")) {
		conn->http_status = parse_uint((const char *)value, 100, 999, &number) ? 0 : (int)number;
	} else if (header_is(name, name_len, "grpc-status")) {
		conn->grpc_status_seen = true;
		conn->state.code = parse_uint((const char *)value, 0, 16, &number) ? GRPC_CODE_UNKNOWN
										  : (enum grpc_code)number;
	} else if (header_is(name, name_len, "grpc-message")) {
		percent_decode(value, value_len, conn->state.details, sizeof(conn->state.details));
	}
	return 0;
}

static int on_frame_recv(nghttp2_session *session, const nghttp2_frame *frame, void *user_data)
{
	struct grpc_conn *conn = user_data;

	switch (frame->hd.type) {
	case NGHTTP2_HEADERS:
		if (conn->stream_id && frame->hd.stream_id == conn->stream_id)
			conn->state.headers = true;
		break;
	case NGHTTP2_PING:
		if (frame->hd.flags & NGHTTP2_FLAG_ACK)
			conn->ping_sent_ms = 0;
		break;
	case NGHTTP2_GOAWAY:
		/* no new call here; the open one ends as the server says */
		conn->goaway = true;
		break;
	default:
		break;
	}
	return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t stream_id, uint32_t error_code,
			   void *user_data)
{
	struct grpc_conn *conn = user_data;

	if (conn->stream_id && stream_id == conn->stream_id)
		call_closed_by_server(conn, error_code);
	return 0;
}

/* OAP's one answer (Commands) is read and dropped; nghttp2 opens the window again. */
static int on_data_chunk(nghttp2_session *session, uint8_t flags, int32_t stream_id,
			 const uint8_t *data, size_t len, void *user_data)
{
	return 0;
}

static ssize_t read_body(nghttp2_session *session, int32_t stream_id, uint8_t *buf, size_t len,
			 uint32_t *data_flags, nghttp2_data_source *source, void *user_data)
{
	struct grpc_conn *conn = user_data;
	struct call_body *body = &conn->body;
	size_t available = body->used - body->taken;

	if (stream_id != conn->stream_id)
		return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE; /* a cancelled call's leftover */
	if (!available) {
		if (!conn->half_closed)
			return NGHTTP2_ERR_DEFERRED;
		*data_flags |= NGHTTP2_DATA_FLAG_EOF;
		return 0;
	}
	if (len > available)
		len = available;
	memcpy(buf, body->buf + body->taken, len);
	body->taken += len;
	if (body->taken == body->used)
		body->taken = body->used = 0;
	return (ssize_t)len;
}

static int new_session(struct grpc_conn *conn)
{
	nghttp2_session_callbacks *callbacks;
	nghttp2_settings_entry settings[] = {
		{ NGHTTP2_SETTINGS_ENABLE_PUSH, 0 },
	};
	int err;

	if (nghttp2_session_callbacks_new(&callbacks))
		return -ENOMEM;
	nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
	nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, on_frame_recv);
	nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
	nghttp2_session_callbacks_set_on_data_chunk_recv_callback(callbacks, on_data_chunk);
	err = nghttp2_session_client_new(&conn->session, callbacks, conn);
	nghttp2_session_callbacks_del(callbacks);
	if (err)
		return -ENOMEM;
	return nghttp2_submit_settings(conn->session, NGHTTP2_FLAG_NONE, settings,
				       sizeof(settings) / sizeof(settings[0])) ? -ENOMEM : 0;
}

/* ---- bytes out ---- */

static int out_append(struct grpc_conn *conn, const uint8_t *data, size_t len)
{
	if (conn->out_sent == conn->out_len)
		conn->out_sent = conn->out_len = 0;
	/* what the socket took is gone: the rest to the front before growing,
	 * or a socket that always leaves a little behind would grow it forever */
	if (conn->out_sent && conn->out_len + len > conn->out_capacity) {
		memmove(conn->out, conn->out + conn->out_sent, conn->out_len - conn->out_sent);
		conn->out_len -= conn->out_sent;
		conn->out_sent = 0;
	}
	if (conn->out_len + len > conn->out_capacity) {
		size_t capacity = (conn->out_len + len) * 2;
		uint8_t *bigger = realloc(conn->out, capacity);

		if (!bigger)
			return -ENOMEM;
		conn->out = bigger;
		conn->out_capacity = capacity;
	}
	memcpy(conn->out + conn->out_len, data, len);
	conn->out_len += len;
	return 0;
}

/* nghttp2's pending frames into `out`, up to OUT_GATHER_BYTES unwritten. */
static void out_gather(struct grpc_conn *conn)
{
	while (!conn->failed && conn->out_len - conn->out_sent < OUT_GATHER_BYTES) {
		const uint8_t *data;
		ssize_t len = nghttp2_session_mem_send(conn->session, &data);

		if (len < 0) {
			conn_fail(conn, nghttp2_strerror((int)len));
			return;
		}
		if (len == 0)
			return;
		if (out_append(conn, data, (size_t)len))
			conn_fail(conn, "out of memory for HTTP/2 frames");
	}
}

/*
 * After an SSL_read or SSL_write that moved nothing: 0 when TLS waits for
 * the socket, else -1 with the connection failed.
 */
static ssize_t tls_stalled(struct grpc_conn *conn, int ret, const char *failed)
{
	int code = SSL_get_error(conn->ssl, ret);

	if (code == SSL_ERROR_WANT_READ || code == SSL_ERROR_WANT_WRITE)
		return 0;
	ERR_clear_error();
	conn_fail(conn, code == SSL_ERROR_ZERO_RETURN ? "OAP closed the connection" : failed);
	return -1;
}

/* After a send or recv that failed: 0 when the socket would block, else -1 with the connection failed. */
static ssize_t socket_stalled(struct grpc_conn *conn, const char *what)
{
	char reason[GRPC_DETAILS_LEN];

	if (errno == EAGAIN || errno == EINTR)
		return 0;
	snprintf(reason, sizeof(reason), "%s OAP: %s", what, strerror(errno));
	conn_fail(conn, reason);
	return -1;
}

/* Bytes moved (> 0), 0 if the socket would block, -1 with conn failed. */
static ssize_t socket_write(struct grpc_conn *conn, const uint8_t *data, size_t len)
{
	ssize_t n;

	if (conn->ssl) {
		int ret = SSL_write(conn->ssl, data, (int)(len > INT32_MAX ? INT32_MAX : len));

		return ret > 0 ? ret : tls_stalled(conn, ret, "TLS write failed: the connection to OAP broke");
	}
	n = send(conn->fd, data, len, MSG_NOSIGNAL);
	return n >= 0 ? n : socket_stalled(conn, "write to");
}

static void out_write(struct grpc_conn *conn)
{
	while (!conn->failed && conn->out_sent < conn->out_len) {
		ssize_t n = socket_write(conn, conn->out + conn->out_sent, conn->out_len - conn->out_sent);

		if (n <= 0)
			return;
		conn->out_sent += (size_t)n;
	}
}

static void flush_out(struct grpc_conn *conn)
{
	/* Two rounds: a full gather leaves frames behind that fit once written. */
	for (int round = 0; round < 2 && !conn->failed; round++) {
		out_gather(conn);
		out_write(conn);
		if (conn->out_sent < conn->out_len)
			return;
	}
}

/* ---- bytes in ---- */

/* Bytes read (> 0), 0 if none are ready, -1 with conn failed (the end included). */
static ssize_t socket_read(struct grpc_conn *conn, uint8_t *buf, size_t len)
{
	ssize_t n;

	if (conn->ssl) {
		int ret = SSL_read(conn->ssl, buf, (int)len);

		return ret > 0 ? ret : tls_stalled(conn, ret, "TLS read failed: the connection to OAP broke");
	}
	n = recv(conn->fd, buf, len, 0);
	if (n > 0)
		return n;
	if (n == 0) {
		conn_fail(conn, "OAP closed the connection");
		return -1;
	}
	return socket_stalled(conn, "read from");
}

static void read_in(struct grpc_conn *conn)
{
	uint8_t buf[READ_CHUNK_BYTES];

	for (int i = 0; i < READ_CHUNKS_MAX && !conn->failed; i++) {
		ssize_t n = socket_read(conn, buf, sizeof(buf)), used;

		if (n <= 0)
			return;
		conn->last_frame_ms = clock_monotonic_ms();
		used = nghttp2_session_mem_recv(conn->session, buf, (size_t)n);
		if (used < 0) {
			char reason[GRPC_DETAILS_LEN];

			snprintf(reason, sizeof(reason), "HTTP/2 from OAP: %s", nghttp2_strerror((int)used));
			conn_fail(conn, reason);
		}
	}
}

/* ---- waiting ---- */

/* The socket ready for `events` within deadline_ms: 0, -ETIMEDOUT, -ECANCELED. */
static int wait_socket(struct grpc_conn *conn, short events, uint64_t deadline_ms)
{
	for (;;) {
		struct pollfd pfd = { .fd = conn->fd, .events = events };
		uint64_t now = clock_monotonic_ms();
		int ready;

		if (conn->opts.give_up && conn->opts.give_up(conn->opts.give_up_arg))
			return -ECANCELED;
		if (now >= deadline_ms)
			return -ETIMEDOUT;
		ready = poll(&pfd, 1, (int)(deadline_ms - now < WAIT_SLICE_MS ? deadline_ms - now
									       : WAIT_SLICE_MS));
		if (ready > 0)
			return 0;
		if (ready < 0 && errno != EINTR)
			return -errno;
	}
}

/* ---- connecting ---- */

static int split_address(struct grpc_conn *conn, const char *address)
{
	const char *colon;
	size_t host_len;

	if (address[0] == '[') {
		const char *close = strchr(address, ']');

		if (!close || close[1] != ':')
			return -EINVAL;
		host_len = (size_t)(close - address - 1);
		colon = close + 1;
		address++;
	} else {
		colon = strrchr(address, ':');
		if (!colon)
			return -EINVAL;
		host_len = (size_t)(colon - address);
	}
	if (!host_len || host_len >= sizeof(conn->host) || strlen(colon + 1) >= sizeof(conn->port))
		return -EINVAL;
	memcpy(conn->host, address, host_len);
	conn->host[host_len] = '\0';
	snprintf(conn->port, sizeof(conn->port), "%s", colon + 1);
	return 0;
}

static void tune_socket(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	/* the kernel's keepalive too: a peer gone without a word between calls */
	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
}

static int connect_one(struct grpc_conn *conn, const struct addrinfo *ai, uint64_t deadline_ms)
{
	socklen_t err_size = sizeof(int);
	int err = 0;

	conn->fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (conn->fd < 0)
		return -errno;
	tune_socket(conn->fd);
	if (connect(conn->fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		err = errno;
	else if ((err = -wait_socket(conn, POLLOUT, deadline_ms)) == 0 &&
		 getsockopt(conn->fd, SOL_SOCKET, SO_ERROR, &err, &err_size))
		err = errno;
	if (!err)
		return 0;
	close(conn->fd);
	conn->fd = -1;
	return -err;
}

static int connect_server(struct grpc_conn *conn, uint64_t deadline_ms, char *err, size_t err_len)
{
	struct resolve_wait wait = {
		.deadline_ms = deadline_ms,
		.give_up = conn->opts.give_up,
		.give_up_arg = conn->opts.give_up_arg,
		.stop_fd = -1,
	};
	struct addrinfo *list, *ai;
	int ret = resolve_tcp(conn->host, conn->port, &wait, &list, err, err_len);

	if (ret)
		return ret;
	ret = -ECONNREFUSED;
	for (ai = list; ai && ret && ret != -ETIMEDOUT && ret != -ECANCELED; ai = ai->ai_next)
		ret = connect_one(conn, ai, deadline_ms);
	freeaddrinfo(list);
	if (ret == -ETIMEDOUT)
		snprintf(err, err_len, "connect to %s: no answer in %u ms", conn->opts.address,
			 conn->opts.connect_timeout_ms);
	else if (ret)
		snprintf(err, err_len, "connect to %s: %s", conn->opts.address, strerror(-ret));
	return ret;
}

static int tls_failed(struct grpc_conn *conn, const char *why, char *err, size_t err_len)
{
	snprintf(err, err_len, "TLS with %s: %s", conn->opts.address, why);
	return -ECONNREFUSED;
}

/* The handshake, then ALPN must have chosen h2: gRPC has no other transport. */
static int tls_handshake(struct grpc_conn *conn, uint64_t deadline_ms, char *err, size_t err_len)
{
	const char *name = conn->opts.server_name && conn->opts.server_name[0] ? conn->opts.server_name
									       : conn->host;
	struct tls_client_options tls = {
		.ca_pem = conn->opts.ca_pem,
		.cert_pem = conn->opts.cert_pem,
		.key_pem = conn->opts.key_pem,
		.alpn = "h2",
	};
	const unsigned char *chosen = NULL;
	unsigned int chosen_len = 0;
	char why[GRPC_DETAILS_LEN];

	if (tls_client_context(&tls, &conn->ctx, why, sizeof(why)))
		return tls_failed(conn, why, err, err_len);
	conn->ssl = SSL_new(conn->ctx);
	if (!conn->ssl || SSL_set_fd(conn->ssl, conn->fd) != 1 || tls_client_expect_host(conn->ssl, name))
		return tls_failed(conn, "no session", err, err_len);
	for (;;) {
		int ret = SSL_connect(conn->ssl), code, waited;

		if (ret == 1)
			break;
		code = SSL_get_error(conn->ssl, ret);
		if (code != SSL_ERROR_WANT_READ && code != SSL_ERROR_WANT_WRITE) {
			tls_client_handshake_error(conn->ssl, why, sizeof(why));
			return tls_failed(conn, why, err, err_len);
		}
		waited = wait_socket(conn, code == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT, deadline_ms);
		if (waited)
			return tls_failed(conn, waited == -ETIMEDOUT ? "the handshake took too long"
								      : "stopped", err, err_len);
	}
	SSL_get0_alpn_selected(conn->ssl, &chosen, &chosen_len);
	if (chosen_len != 2 || memcmp(chosen, "h2", 2) != 0)
		return tls_failed(conn, "the server did not agree to HTTP/2 (ALPN h2)", err, err_len);
	return 0;
}

int grpc_conn_open(const struct grpc_conn_options *opts, struct grpc_conn **ret_conn,
		   char *err, size_t err_len)
{
	struct grpc_conn *conn = calloc(1, sizeof(*conn));
	uint64_t deadline_ms = clock_monotonic_ms() + opts->connect_timeout_ms;
	int ret;

	*ret_conn = NULL;
	if (!conn) {
		snprintf(err, err_len, "out of memory");
		return -ENOMEM;
	}
	conn->opts = *opts;
	conn->fd = -1;
	ret = split_address(conn, opts->address);
	if (ret)
		snprintf(err, err_len, "not host:port: %s", opts->address);
	if (!ret)
		ret = connect_server(conn, deadline_ms, err, err_len);
	if (!ret && opts->tls)
		ret = tls_handshake(conn, deadline_ms, err, err_len);
	if (!ret && (ret = new_session(conn)))
		snprintf(err, err_len, "out of memory for an HTTP/2 session");
	if (ret) {
		grpc_conn_free(conn);
		return ret;
	}
	conn->last_frame_ms = clock_monotonic_ms();
	flush_out(conn); /* the preface and SETTINGS */
	*ret_conn = conn;
	return 0;
}

bool grpc_conn_reusable(const struct grpc_conn *conn)
{
	return !conn->failed && !conn->goaway;
}

/* ---- the call ---- */

#define HEADER(name, value)                                                            \
	{ (uint8_t *)(name), (uint8_t *)(value), strlen(name), strlen(value),          \
	  NGHTTP2_NV_FLAG_NO_COPY_NAME }

int grpc_call_start(struct grpc_conn *conn, const char *path, const char *token)
{
	const char *authority = conn->opts.tls && conn->opts.server_name && conn->opts.server_name[0]
					? conn->opts.server_name : conn->opts.address;
	nghttp2_nv headers[] = {
		HEADER(":method", "POST"),
		HEADER(":scheme", conn->opts.tls ? "https" : "http"),
		HEADER(":path", path),
		HEADER(":authority", authority),
		HEADER("content-type", "application/grpc"),
		HEADER("te", "trailers"),
		HEADER("user-agent", "kaccess/" KACCESS_VERSION),
		HEADER("authentication", token ? token : ""),
	};
	size_t count = sizeof(headers) / sizeof(headers[0]) - (token && token[0] ? 0 : 1);
	nghttp2_data_provider body = { .read_callback = read_body };
	int32_t id;

	if (!grpc_conn_reusable(conn))
		return -EPIPE;
	if (conn->stream_id)
		return -EBUSY;
	memset(&conn->state, 0, sizeof(conn->state));
	conn->body.taken = conn->body.used = 0;
	if (conn->body.capacity > BODY_KEEP_BYTES) {
		free(conn->body.buf);
		conn->body = (struct call_body){ 0 };
	}
	conn->half_closed = false;
	conn->http_status = 0;
	conn->grpc_status_seen = false;
	id = nghttp2_submit_request(conn->session, NULL, headers, count, &body, NULL);
	if (id == NGHTTP2_ERR_STREAM_ID_NOT_AVAILABLE) {
		conn->goaway = true; /* every stream id used: the next call needs a new connection */
		return -EPIPE;
	}
	if (id < 0)
		return -ENOMEM;
	conn->stream_id = id;
	return 0;
}

static int body_reserve(struct call_body *body, size_t more)
{
	size_t capacity;
	uint8_t *bigger;

	/* what nghttp2 took is gone: move the rest to the front before growing */
	if (body->taken && body->used + more > body->capacity) {
		memmove(body->buf, body->buf + body->taken, body->used - body->taken);
		body->used -= body->taken;
		body->taken = 0;
	}
	if (body->used + more <= body->capacity)
		return 0;
	capacity = (body->used + more) * 2;
	bigger = realloc(body->buf, capacity);
	if (!bigger)
		return -ENOMEM;
	body->buf = bigger;
	body->capacity = capacity;
	return 0;
}

static bool call_writable(const struct grpc_conn *conn)
{
	return conn->stream_id && !conn->half_closed;
}

int grpc_call_write(struct grpc_conn *conn, const uint8_t *msg, size_t len)
{
	struct call_body *body = &conn->body;
	uint8_t *at;

	if (!call_writable(conn) || len > UINT32_MAX)
		return -EPIPE;
	if (body_reserve(body, GRPC_PREFIX_BYTES + len))
		return -ENOMEM;
	at = body->buf + body->used;
	at[0] = 0; /* not compressed */
	at[1] = (uint8_t)(len >> 24);
	at[2] = (uint8_t)(len >> 16);
	at[3] = (uint8_t)(len >> 8);
	at[4] = (uint8_t)len;
	memcpy(at + GRPC_PREFIX_BYTES, msg, len);
	body->used += GRPC_PREFIX_BYTES + len;
	nghttp2_session_resume_data(conn->session, conn->stream_id);
	return 0;
}

int grpc_call_write_framed(struct grpc_conn *conn, const uint8_t *framed, size_t len)
{
	struct call_body *body = &conn->body;

	if (!call_writable(conn))
		return -EPIPE;
	if (body_reserve(body, len))
		return -ENOMEM;
	memcpy(body->buf + body->used, framed, len);
	body->used += len;
	nghttp2_session_resume_data(conn->session, conn->stream_id);
	return 0;
}

size_t grpc_call_unsent_bytes(const struct grpc_conn *conn)
{
	return conn->body.used - conn->body.taken + conn->out_len - conn->out_sent;
}

void grpc_call_half_close(struct grpc_conn *conn)
{
	if (!conn->stream_id || conn->half_closed)
		return;
	conn->half_closed = true;
	nghttp2_session_resume_data(conn->session, conn->stream_id);
}

void grpc_call_cancel(struct grpc_conn *conn, const char *why)
{
	if (!conn->stream_id)
		return;
	nghttp2_submit_rst_stream(conn->session, NGHTTP2_FLAG_NONE, conn->stream_id, NGHTTP2_CANCEL);
	call_end(conn, GRPC_CODE_CANCELLED, why);
	flush_out(conn);
}

const struct grpc_call_state *grpc_call_state(const struct grpc_conn *conn)
{
	return &conn->state;
}

/* ---- moving bytes ---- */

/* A PING after keepalive_s of silence while a call is open; its answer's deadline. */
static void keepalive(struct grpc_conn *conn, uint64_t now)
{
	char reason[GRPC_DETAILS_LEN];

	if (!conn->opts.keepalive_s || !conn->stream_id)
		return;
	if (conn->ping_sent_ms && now - conn->ping_sent_ms > conn->opts.keepalive_timeout_ms) {
		snprintf(reason, sizeof(reason), "no answer to a keepalive PING in %u ms",
			 conn->opts.keepalive_timeout_ms);
		conn_fail(conn, reason);
		return;
	}
	if (!conn->ping_sent_ms && now - conn->last_frame_ms >= conn->opts.keepalive_s * 1000ull &&
	    !nghttp2_submit_ping(conn->session, NGHTTP2_FLAG_NONE, NULL))
		conn->ping_sent_ms = now;
}

static void session_check(struct grpc_conn *conn)
{
	if (!conn->failed && !nghttp2_session_want_read(conn->session) &&
	    !nghttp2_session_want_write(conn->session))
		conn_fail(conn, "the HTTP/2 session with OAP ended");
}

int grpc_conn_pump(struct grpc_conn *conn, unsigned int wait_ms)
{
	struct pollfd pfd = { .fd = conn->fd, .events = POLLIN };
	int ready;

	if (conn->failed)
		return -EIO;
	keepalive(conn, clock_monotonic_ms());
	flush_out(conn);
	if (conn->out_sent < conn->out_len)
		pfd.events |= POLLOUT;
	/* TLS may hold a record's bytes already read from the socket */
	if (conn->ssl && SSL_pending(conn->ssl) > 0)
		wait_ms = 0;
	ready = conn->failed ? 0 : poll(&pfd, 1, (int)wait_ms);
	if (ready < 0 && errno != EINTR)
		conn_fail(conn, "poll failed");
	if ((ready > 0 && (pfd.revents & (POLLIN | POLLHUP | POLLERR))) ||
	    (conn->ssl && SSL_pending(conn->ssl) > 0))
		read_in(conn);
	/* acknowledgements, window updates and the body nghttp2 may now send */
	flush_out(conn);
	if (!conn->failed)
		session_check(conn);
	return conn->failed ? -EIO : 0;
}

void grpc_conn_free(struct grpc_conn *conn)
{
	if (!conn)
		return;
	if (conn->session)
		nghttp2_session_del(conn->session);
	if (conn->ssl)
		SSL_free(conn->ssl);
	if (conn->ctx)
		SSL_CTX_free(conn->ctx);
	if (conn->fd >= 0)
		close(conn->fd);
	ERR_clear_error();
	free(conn->body.buf);
	free(conn->out);
	free(conn);
}
