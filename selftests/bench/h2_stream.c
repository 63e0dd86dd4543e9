// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The call of h2_stream.h: one nghttp2 client session on a non-blocking
 * socket, one request whose body is a buffer of gRPC-framed messages. The
 * data source defers while the buffer is empty and is resumed by each
 * write; the trailers' grpc-status ends the call.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <nghttp2/nghttp2.h>
#include <poll.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "h2_stream.h"

#define GRPC_PREFIX_BYTES 5

struct h2_stream {
	int fd;
	nghttp2_session *session;
	int32_t id;
	uint8_t *buf;            /* framed messages not yet taken by nghttp2: [taken, used) */
	size_t taken, used, capacity;
	bool half_closed;        /* the end of the body is due once the buffer is empty */
	bool closed;             /* the server closed the stream */
	int grpc_status;         /* -1 until the trailers bring it */
};

static ssize_t on_send(nghttp2_session *session, const uint8_t *data, size_t len, int flags,
		       void *user_data)
{
	struct h2_stream *s = user_data;
	ssize_t n = send(s->fd, data, len, MSG_NOSIGNAL);

	if (n < 0)
		return errno == EAGAIN ? NGHTTP2_ERR_WOULDBLOCK : NGHTTP2_ERR_CALLBACK_FAILURE;
	return n;
}

static ssize_t on_recv(nghttp2_session *session, uint8_t *buf, size_t len, int flags, void *user_data)
{
	struct h2_stream *s = user_data;
	ssize_t n = recv(s->fd, buf, len, 0);

	if (n == 0)
		return NGHTTP2_ERR_EOF;
	if (n < 0)
		return errno == EAGAIN ? NGHTTP2_ERR_WOULDBLOCK : NGHTTP2_ERR_CALLBACK_FAILURE;
	return n;
}

static ssize_t read_body(nghttp2_session *session, int32_t id, uint8_t *buf, size_t len,
			 uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
	struct h2_stream *s = user_data;
	size_t available = s->used - s->taken;

	if (!available) {
		if (!s->half_closed)
			return NGHTTP2_ERR_DEFERRED;
		*flags |= NGHTTP2_DATA_FLAG_EOF;
		return 0;
	}
	if (len > available)
		len = available;
	memcpy(buf, s->buf + s->taken, len);
	s->taken += len;
	if (s->taken == s->used)
		s->taken = s->used = 0;
	return (ssize_t)len;
}

static int on_header(nghttp2_session *session, const nghttp2_frame *frame, const uint8_t *name,
		     size_t name_len, const uint8_t *value, size_t value_len, uint8_t flags, void *user_data)
{
	struct h2_stream *s = user_data;

	if (name_len == strlen("grpc-status") && memcmp(name, "grpc-status", name_len) == 0)
		s->grpc_status = atoi((const char *)value);
	return 0;
}

static int on_stream_close(nghttp2_session *session, int32_t id, uint32_t error_code, void *user_data)
{
	((struct h2_stream *)user_data)->closed = true;
	return 0;
}

static int connect_to(const char *address)
{
	char host[256];
	const char *colon = strrchr(address, ':');
	struct addrinfo hints = { .ai_socktype = SOCK_STREAM }, *found = NULL;
	int fd = -1, one = 1;

	if (!colon || (size_t)(colon - address) >= sizeof(host))
		return -EINVAL;
	snprintf(host, sizeof(host), "%.*s", (int)(colon - address), address);
	if (getaddrinfo(host, colon + 1, &hints, &found) || !found)
		return -EHOSTUNREACH;
	fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd >= 0 && connect(fd, found->ai_addr, found->ai_addrlen)) {
		close(fd);
		fd = -ECONNREFUSED;
	}
	freeaddrinfo(found);
	if (fd < 0)
		return fd;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	fcntl(fd, F_SETFL, O_NONBLOCK);
	return fd;
}

static int new_session(struct h2_stream *s)
{
	nghttp2_session_callbacks *callbacks;
	nghttp2_settings_entry no_push = { NGHTTP2_SETTINGS_ENABLE_PUSH, 0 };
	int err;

	if (nghttp2_session_callbacks_new(&callbacks))
		return -ENOMEM;
	nghttp2_session_callbacks_set_send_callback(callbacks, on_send);
	nghttp2_session_callbacks_set_recv_callback(callbacks, on_recv);
	nghttp2_session_callbacks_set_on_header_callback(callbacks, on_header);
	nghttp2_session_callbacks_set_on_stream_close_callback(callbacks, on_stream_close);
	err = nghttp2_session_client_new(&s->session, callbacks, s);
	nghttp2_session_callbacks_del(callbacks);
	if (err)
		return -ENOMEM;
	return nghttp2_submit_settings(s->session, NGHTTP2_FLAG_NONE, &no_push, 1) ? -EIO : 0;
}

#define HEADER(name, value)                                                                \
	{ (uint8_t *)(name), (uint8_t *)(value), strlen(name), strlen(value), NGHTTP2_NV_FLAG_NONE }

int h2_stream_open(const char *address, const char *path, struct h2_stream **ret_stream)
{
	struct h2_stream *s = calloc(1, sizeof(*s));
	nghttp2_data_provider body = { .read_callback = read_body };
	int err;

	if (!s)
		return -ENOMEM;
	s->grpc_status = -1;
	s->fd = connect_to(address);
	err = s->fd < 0 ? s->fd : new_session(s);
	if (!err) {
		nghttp2_nv headers[] = {
			HEADER(":method", "POST"), HEADER(":scheme", "http"), HEADER(":path", path),
			HEADER(":authority", address), HEADER("content-type", "application/grpc"),
			HEADER("te", "trailers"),
		};

		s->id = nghttp2_submit_request(s->session, NULL, headers, sizeof(headers) / sizeof(headers[0]),
					       &body, NULL);
		err = s->id < 0 ? -EIO : h2_stream_flush(s);
	}
	if (err) {
		h2_stream_free(s);
		return err;
	}
	*ret_stream = s;
	return 0;
}

int h2_stream_write(struct h2_stream *s, const uint8_t *msg, size_t len)
{
	size_t need = s->used + GRPC_PREFIX_BYTES + len;
	uint8_t *at;

	if (need > s->capacity) {
		uint8_t *bigger = realloc(s->buf, need * 2);

		if (!bigger)
			return -ENOMEM;
		s->buf = bigger;
		s->capacity = need * 2;
	}
	at = s->buf + s->used;
	at[0] = 0; /* not compressed */
	at[1] = (uint8_t)(len >> 24);
	at[2] = (uint8_t)(len >> 16);
	at[3] = (uint8_t)(len >> 8);
	at[4] = (uint8_t)len;
	memcpy(at + GRPC_PREFIX_BYTES, msg, len);
	s->used = need;
	return 0;
}

int h2_stream_flush(struct h2_stream *s)
{
	struct pollfd readable = { .fd = s->fd, .events = POLLIN };

	if (s->id > 0 && !s->closed)
		nghttp2_session_resume_data(s->session, s->id);
	while (poll(&readable, 1, 0) > 0 && (readable.revents & (POLLIN | POLLHUP | POLLERR)))
		if (nghttp2_session_recv(s->session))
			return -EIO;
	return nghttp2_session_send(s->session) ? -EIO : 0;
}

static uint64_t monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

int h2_stream_finish(struct h2_stream *s, int timeout_ms)
{
	uint64_t deadline_ms = monotonic_ms() + (uint64_t)timeout_ms;

	s->half_closed = true;
	while (!s->closed && monotonic_ms() < deadline_ms) {
		struct pollfd readable = { .fd = s->fd, .events = POLLIN };

		if (h2_stream_flush(s))
			break;
		poll(&readable, 1, 10);
	}
	return s->closed ? s->grpc_status : -1;
}

void h2_stream_free(struct h2_stream *s)
{
	if (!s)
		return;
	if (s->session)
		nghttp2_session_del(s->session);
	if (s->fd >= 0)
		close(s->fd);
	free(s->buf);
	free(s);
}
