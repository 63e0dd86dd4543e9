// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The watchers' HTTP/1.1 GET (k8s_http.h). It replaced libcurl, whose
 * Debian build loads GnuTLS, Kerberos, LDAP, RTMP and ssh2 with it (about
 * 2.8 MiB of the agent's resident set) for one kind of request.
 *
 * It asks for gzip: the API server compresses a list response of 128 KiB
 * or more when asked, a tenth of the bytes for pod lists, which matters
 * when every node's agent lists every pod at once (a rollout). zlib is
 * loaded anyway (libbpf's libelf).
 *
 * The socket is non-blocking and every wait is a poll() on it and on the
 * stop descriptor, bounded by the nearest deadline: connecting (TCP and
 * TLS), the silence allowance (renewed by each byte received) and the
 * request's total time.
 */
#include <ctype.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <zlib.h>

#include "clock.h"
#include "k8s_http.h"
#include "parse.h"
#include "resolve.h"
#include "tls_client.h"

#define RESPONSE_HEAD_MAX_BYTES (64u << 10)
#define READ_BUFFER_BYTES (16u << 10)
#define INFLATE_BUFFER_BYTES (64u << 10)
#define GZIP_WINDOW_BITS (16 + MAX_WBITS) /* zlib: a gzip header, not zlib's */
#define CHUNK_SIZE_DIGITS_MAX 15 /* below 2^60: no overflow */
#define KEEPALIVE_IDLE_S 30
#define KEEPALIVE_INTERVAL_S 10

/* ---- URLs ---- */

static int split_host_port(const char *authority, size_t len, struct k8s_http_server *ret)
{
	const char *port = NULL, *host = authority;
	size_t host_len = len;

	if (len && authority[0] == '[') {
		const char *close = memchr(authority, ']', len);

		if (!close)
			return -EINVAL;
		host = authority + 1;
		host_len = (size_t)(close - host);
		if (close + 1 < authority + len) {
			if (close[1] != ':')
				return -EINVAL;
			port = close + 2;
		}
	} else {
		const char *colon = memchr(authority, ':', len);

		if (colon) {
			host_len = (size_t)(colon - authority);
			port = colon + 1;
		}
	}
	if (!host_len || host_len >= sizeof(ret->host))
		return -EINVAL;
	memcpy(ret->host, host, host_len);
	ret->host[host_len] = '\0';
	if (port) {
		size_t port_len = (size_t)(authority + len - port);
		long number;
		char *end;

		if (!port_len || port_len >= sizeof(ret->port))
			return -EINVAL;
		memcpy(ret->port, port, port_len);
		ret->port[port_len] = '\0';
		number = strtol(ret->port, &end, 10);
		if (*end || number < 1 || number > 65535)
			return -EINVAL;
	} else {
		snprintf(ret->port, sizeof(ret->port), "%s", ret->tls ? "443" : "80");
	}
	snprintf(ret->host_header, sizeof(ret->host_header), "%.*s", (int)len, authority);
	return 0;
}

int k8s_http_server_parse(const char *url, struct k8s_http_server *ret, char *err, size_t err_len)
{
	const char *authority, *path;
	size_t authority_len;

	memset(ret, 0, sizeof(*ret));
	if (strncmp(url, "https://", 8) == 0) {
		ret->tls = true;
		authority = url + 8;
	} else if (strncmp(url, "http://", 7) == 0) {
		authority = url + 7;
	} else {
		snprintf(err, err_len, "API server '%s' is not an http:// or https:// URL", url);
		return -EINVAL;
	}
	path = strchr(authority, '/');
	authority_len = path ? (size_t)(path - authority) : strlen(authority);
	if (memchr(authority, '@', authority_len) || memchr(authority, '?', authority_len) ||
	    split_host_port(authority, authority_len, ret)) {
		snprintf(err, err_len, "API server '%s': expected scheme://host[:port][/path]", url);
		return -EINVAL;
	}
	if (path && snprintf(ret->base_path, sizeof(ret->base_path), "%s", path) >=
			    (int)sizeof(ret->base_path)) {
		snprintf(err, err_len, "API server '%s': path too long", url);
		return -EINVAL;
	}
	while (ret->base_path[0] && ret->base_path[strlen(ret->base_path) - 1] == '/')
		ret->base_path[strlen(ret->base_path) - 1] = '\0';
	return 0;
}

int k8s_http_escape(const char *text, char *out, size_t out_len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t used = 0;

	for (const unsigned char *c = (const unsigned char *)text; *c; c++) {
		bool plain = isalnum(*c) || *c == '-' || *c == '.' || *c == '_' || *c == '~';

		if (used + (plain ? 1 : 3) >= out_len)
			return -ENOSPC;
		if (plain) {
			out[used++] = (char)*c;
		} else {
			out[used++] = '%';
			out[used++] = hex[*c >> 4];
			out[used++] = hex[*c & 15];
		}
	}
	if (!out_len)
		return -ENOSPC;
	out[used] = '\0';
	return 0;
}

/* ---- the chunked coding ---- */

/* The size line's end: the data, or the trailer after the last chunk. */
static int chunk_size_done(struct k8s_chunked *chunked)
{
	if (!chunked->size_digits)
		return -EPROTO;
	chunked->state = chunked->remaining ? K8S_CHUNK_DATA : K8S_CHUNK_TRAILER_LINE;
	return 0;
}

/* One byte of everything but chunk data. */
static int chunked_step(struct k8s_chunked *chunked, char c)
{
	switch (chunked->state) {
	case K8S_CHUNK_SIZE:
		if (parse_hex_digit(c) >= 0) {
			if (++chunked->size_digits > CHUNK_SIZE_DIGITS_MAX)
				return -EPROTO;
			chunked->remaining = chunked->remaining * 16 + (uint64_t)parse_hex_digit(c);
			return 0;
		}
		if (c == ';' || c == ' ' || c == '\t') {
			chunked->state = K8S_CHUNK_EXTENSION;
			return 0;
		}
		if (c == '\r') {
			chunked->state = K8S_CHUNK_SIZE_LF;
			return 0;
		}
		return c == '\n' ? chunk_size_done(chunked) : -EPROTO;
	case K8S_CHUNK_EXTENSION:
		return c == '\n' ? chunk_size_done(chunked) : 0;
	case K8S_CHUNK_SIZE_LF:
		return c == '\n' ? chunk_size_done(chunked) : -EPROTO;
	case K8S_CHUNK_DATA_CR:
		if (c == '\r') {
			chunked->state = K8S_CHUNK_DATA_LF;
			return 0;
		}
		__attribute__((fallthrough)); /* a bare LF ends the data too */
	case K8S_CHUNK_DATA_LF:
		if (c != '\n')
			return -EPROTO;
		chunked->state = K8S_CHUNK_SIZE;
		chunked->remaining = 0;
		chunked->size_digits = 0;
		return 0;
	case K8S_CHUNK_TRAILER_LINE:
		chunked->state = c == '\r' ? K8S_CHUNK_TRAILER_LF
			       : c == '\n' ? K8S_CHUNK_DONE
					   : K8S_CHUNK_TRAILER_SKIP;
		return 0;
	case K8S_CHUNK_TRAILER_SKIP:
		if (c == '\n')
			chunked->state = K8S_CHUNK_TRAILER_LINE;
		return 0;
	case K8S_CHUNK_TRAILER_LF:
		if (c != '\n')
			return -EPROTO;
		chunked->state = K8S_CHUNK_DONE;
		return 0;
	default:
		return -EPROTO;
	}
}

long k8s_chunked_feed(struct k8s_chunked *chunked, const char *data, size_t len,
		      int (*emit)(void *user, const char *data, size_t len), void *user)
{
	size_t used = 0;

	while (used < len && chunked->state != K8S_CHUNK_DONE) {
		int err;

		if (chunked->state == K8S_CHUNK_DATA) {
			size_t piece = len - used < chunked->remaining ? len - used
								       : (size_t)chunked->remaining;

			err = emit(user, data + used, piece);
			if (err)
				return err;
			used += piece;
			chunked->remaining -= piece;
			if (!chunked->remaining)
				chunked->state = K8S_CHUNK_DATA_CR;
			continue;
		}
		err = chunked_step(chunked, data[used++]);
		if (err)
			return err;
	}
	return (long)used;
}

/* ---- deadlines and waiting ---- */

struct exchange {
	const struct k8s_http_get *get;
	int fd;
	SSL_CTX *ctx;
	SSL *ssl;
	uint64_t connect_deadline_ms; /* 0 once connected */
	uint64_t silence_deadline_ms;
	uint64_t total_deadline_ms; /* 0: none */
	char *err;
	size_t err_len;
};

static uint64_t nearest_deadline_ms(const struct exchange *ex)
{
	uint64_t deadline_ms = ex->connect_deadline_ms ? ex->connect_deadline_ms
						       : ex->silence_deadline_ms;

	if (ex->total_deadline_ms && ex->total_deadline_ms < deadline_ms)
		deadline_ms = ex->total_deadline_ms;
	return deadline_ms;
}

static int timed_out(struct exchange *ex)
{
	if (ex->connect_deadline_ms)
		snprintf(ex->err, ex->err_len, "connecting to %s took over %u s",
			 ex->get->server->host_header, ex->get->connect_timeout_s);
	else if (ex->total_deadline_ms && clock_monotonic_ms() >= ex->total_deadline_ms)
		snprintf(ex->err, ex->err_len, "the response took over %u s",
			 ex->get->total_limit_s);
	else
		snprintf(ex->err, ex->err_len, "no data for %u s", ex->get->silence_limit_s);
	return -ETIMEDOUT;
}

/* Until the socket is ready for `events`: 0, -ETIMEDOUT or -ECANCELED. */
static int wait_for(struct exchange *ex, short events)
{
	for (;;) {
		struct pollfd fds[2] = {
			{ .fd = ex->fd, .events = events },
			{ .fd = ex->get->stop_fd, .events = POLLIN },
		};
		uint64_t now_ms = clock_monotonic_ms(), deadline_ms = nearest_deadline_ms(ex);
		int ready;

		if (now_ms >= deadline_ms)
			return timed_out(ex);
		ready = poll(fds, ex->get->stop_fd >= 0 ? 2 : 1, (int)(deadline_ms - now_ms));
		if (ready < 0 && errno != EINTR)
			return -errno;
		if (ready > 0 && fds[1].revents) {
			snprintf(ex->err, ex->err_len, "stopped");
			return -ECANCELED;
		}
		if (ready > 0 && fds[0].revents)
			return 0;
	}
}

/* ---- TCP ---- */

static void tune_socket(int fd)
{
	int one = 1, idle_s = KEEPALIVE_IDLE_S, interval_s = KEEPALIVE_INTERVAL_S;

	setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle_s, sizeof(idle_s));
	setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval_s, sizeof(interval_s));
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

/* One address: 0 connected, else -errno (the last try's error kept in ex->err). */
static int connect_address(struct exchange *ex, const struct addrinfo *ai)
{
	int err = 0;
	socklen_t err_size = sizeof(err);

	ex->fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
	if (ex->fd < 0)
		return -errno;
	tune_socket(ex->fd);
	if (connect(ex->fd, ai->ai_addr, ai->ai_addrlen) == 0)
		return 0;
	if (errno != EINPROGRESS)
		err = errno;
	else if ((err = -wait_for(ex, POLLOUT)) == 0 &&
		 getsockopt(ex->fd, SOL_SOCKET, SO_ERROR, &err, &err_size))
		err = errno;
	if (!err)
		return 0;
	if (err != ETIMEDOUT && err != ECANCELED)
		snprintf(ex->err, ex->err_len, "connect to %s: %s", ex->get->server->host_header,
			 strerror(err));
	close(ex->fd);
	ex->fd = -1;
	return -err;
}

static int connect_server(struct exchange *ex)
{
	const struct k8s_http_server *server = ex->get->server;
	struct resolve_wait wait = {
		.deadline_ms = nearest_deadline_ms(ex),
		.stop_fd = ex->get->stop_fd,
	};
	struct addrinfo *list, *ai;
	int err = resolve_tcp(server->host, server->port, &wait, &list, ex->err, ex->err_len);

	if (err)
		return err == -EHOSTUNREACH ? -ECONNREFUSED : err;
	err = -ECONNREFUSED;
	for (ai = list; ai && err && err != -ETIMEDOUT && err != -ECANCELED; ai = ai->ai_next)
		err = connect_address(ex, ai);
	freeaddrinfo(list);
	return err == -ETIMEDOUT || err == -ECANCELED ? err : err ? -ECONNREFUSED : 0;
}

/* ---- TLS ---- */

static int tls_failed(struct exchange *ex, const char *what)
{
	char reason[160];

	snprintf(ex->err, ex->err_len, "TLS with %s: %s: %s", ex->get->server->host_header, what,
		 tls_client_reason(reason, sizeof(reason)));
	return -ECONNREFUSED;
}

static int tls_context(struct exchange *ex)
{
	const struct k8s_http_tls *tls = ex->get->tls;
	struct tls_client_options opts = {
		.ca_pem = tls->ca_pem,
		.ca_path = tls->ca_path,
		.cert_pem = tls->cert_pem,
		.key_pem = tls->key_pem,
		.insecure = tls->insecure,
	};
	char why[200];

	if (!tls_client_context(&opts, &ex->ctx, why, sizeof(why)))
		return 0;
	snprintf(ex->err, ex->err_len, "TLS with %s: %s", ex->get->server->host_header, why);
	return -ECONNREFUSED;
}

static int handshake_failed(struct exchange *ex)
{
	char why[200];

	tls_client_handshake_error(ex->ssl, why, sizeof(why));
	snprintf(ex->err, ex->err_len, "TLS with %s: %s", ex->get->server->host_header, why);
	return -ECONNREFUSED;
}

/* -EAGAIN after waiting for what OpenSSL wants; otherwise what ended the call. */
static int tls_wait(struct exchange *ex, int ret)
{
	int code = SSL_get_error(ex->ssl, ret), err;

	if (code != SSL_ERROR_WANT_READ && code != SSL_ERROR_WANT_WRITE)
		return code == SSL_ERROR_ZERO_RETURN ? 0 : -EIO;
	err = wait_for(ex, code == SSL_ERROR_WANT_READ ? POLLIN : POLLOUT);
	return err ? err : -EAGAIN;
}

static int tls_start(struct exchange *ex)
{
	int err = tls_context(ex);

	if (err)
		return err;
	ex->ssl = SSL_new(ex->ctx);
	if (!ex->ssl || SSL_set_fd(ex->ssl, ex->fd) != 1 ||
	    (!ex->get->tls->insecure && tls_client_expect_host(ex->ssl, ex->get->server->host)))
		return tls_failed(ex, "no session");
	for (;;) {
		int ret = SSL_connect(ex->ssl);

		if (ret == 1)
			return 0;
		err = tls_wait(ex, ret);
		if (err == -ETIMEDOUT || err == -ECANCELED)
			return err;
		if (err != -EAGAIN)
			return handshake_failed(ex);
	}
}

/* ---- bytes in and out ---- */

/*
 * One read or write, waiting as the socket or TLS needs: the bytes moved,
 * 0 at the end (a read), or -errno.
 */
static ssize_t transfer(struct exchange *ex, bool sending, void *buf, size_t len)
{
	for (;;) {
		ssize_t moved;
		int err;

		if (ex->ssl) {
			int ret = sending ? SSL_write(ex->ssl, buf, (int)len)
					  : SSL_read(ex->ssl, buf, (int)len);

			if (ret > 0)
				return ret;
			err = tls_wait(ex, ret);
			if (err != -EAGAIN)
				return err; /* 0: the end */
			continue;
		}
		moved = sending ? send(ex->fd, buf, len, MSG_NOSIGNAL) : recv(ex->fd, buf, len, 0);
		if (moved >= 0)
			return moved;
		if (errno != EAGAIN && errno != EINTR)
			return -errno;
		err = wait_for(ex, sending ? POLLOUT : POLLIN);
		if (err)
			return err;
	}
}

static int send_all(struct exchange *ex, const char *data, size_t len)
{
	while (len) {
		ssize_t sent = transfer(ex, true, (void *)data, len);

		if (sent <= 0)
			return sent ? (int)sent : -EPIPE;
		data += sent;
		len -= (size_t)sent;
	}
	return 0;
}

/* Bytes read (renewing the silence deadline), 0 at the end, or -errno. */
static ssize_t receive_some(struct exchange *ex, char *buf, size_t len)
{
	ssize_t got = transfer(ex, false, buf, len);

	if (got > 0)
		ex->silence_deadline_ms = clock_monotonic_ms() + (uint64_t)ex->get->silence_limit_s * 1000;
	return got;
}

/* ---- the response ---- */

struct response {
	int status;
	bool chunked;
	bool length_known;
	bool gzip;
	uint64_t length_left;
	struct k8s_chunked chunks;
};

static const char *header_value(const char *line, const char *name)
{
	size_t name_len = strlen(name);

	if (strncasecmp(line, name, name_len) != 0 || line[name_len] != ':')
		return NULL;
	line += name_len + 1;
	while (*line == ' ' || *line == '\t')
		line++;
	return line;
}

/* The head, NUL-terminated at its blank line: status and framing. */
static int parse_head(char *head, struct response *resp)
{
	char *line, *saveptr = NULL;
	int minor;

	if (sscanf(head, "HTTP/1.%d %3d", &minor, &resp->status) != 2 ||
	    resp->status < 100 || resp->status > 999)
		return -EPROTO;
	strtok_r(head, "\r\n", &saveptr); /* the status line */
	while ((line = strtok_r(NULL, "\r\n", &saveptr))) {
		const char *value;

		if ((value = header_value(line, "Transfer-Encoding")))
			resp->chunked = strcasestr(value, "chunked") != NULL;
		else if ((value = header_value(line, "Content-Encoding")))
			resp->gzip = strncasecmp(value, "gzip", 4) == 0;
		else if ((value = header_value(line, "Content-Length"))) {
			char *end;

			resp->length_left = strtoull(value, &end, 10);
			if (end == value)
				return -EPROTO;
			resp->length_known = true;
		}
	}
	if (resp->chunked)
		resp->length_known = false;
	return 0;
}

struct body_sink {
	const struct k8s_http_get *get;
	int status;
	int refused; /* what on_body returned, not the coding's error */
	bool gzip;
	bool gzip_ended;
	z_stream inflater; /* when gzip */
	unsigned char *inflated;
};

static int deliver(struct body_sink *sink, const char *data, size_t len)
{
	if (len)
		sink->refused = sink->get->on_body(sink->get->user, sink->status, data, len);
	return sink->refused;
}

/* Compressed body bytes, inflated to on_body; -EILSEQ for what is not gzip. */
static int inflate_body(struct body_sink *sink, const char *data, size_t len)
{
	z_stream *z = &sink->inflater;

	if (sink->gzip_ended)
		return 0; /* what follows the gzip stream is not the body */
	z->next_in = (unsigned char *)data;
	z->avail_in = (unsigned int)len;
	do {
		int ret, err;

		z->next_out = sink->inflated;
		z->avail_out = INFLATE_BUFFER_BYTES;
		ret = inflate(z, Z_NO_FLUSH);
		if (ret != Z_OK && ret != Z_STREAM_END && ret != Z_BUF_ERROR)
			return -EILSEQ;
		err = deliver(sink, (const char *)sink->inflated, INFLATE_BUFFER_BYTES - z->avail_out);
		if (err)
			return err;
		if (ret == Z_STREAM_END) {
			sink->gzip_ended = true;
			break;
		}
		if (ret == Z_BUF_ERROR)
			break; /* no progress without more input */
		/* a full buffer may leave output inside zlib: take it before returning */
	} while (z->avail_in || z->avail_out == 0);
	return 0;
}

static int emit_body(void *user, const char *data, size_t len)
{
	struct body_sink *sink = user;

	return sink->gzip ? inflate_body(sink, data, len) : deliver(sink, data, len);
}

static int sink_start(struct body_sink *sink, const struct response *resp)
{
	sink->status = resp->status;
	sink->gzip = resp->gzip;
	if (!sink->gzip)
		return 0;
	sink->inflated = malloc(INFLATE_BUFFER_BYTES);
	if (!sink->inflated || inflateInit2(&sink->inflater, GZIP_WINDOW_BITS) != Z_OK) {
		free(sink->inflated);
		sink->inflated = NULL;
		sink->gzip = false;
		return -ENOMEM;
	}
	return 0;
}

static void sink_end(struct body_sink *sink)
{
	if (!sink->inflated)
		return;
	inflateEnd(&sink->inflater);
	free(sink->inflated);
}

/* Body bytes as they came: true once the response is whole. */
static int take_body(struct response *resp, struct body_sink *sink, const char *data, size_t len,
		     bool *ret_done)
{
	if (resp->chunked) {
		long used = k8s_chunked_feed(&resp->chunks, data, len, emit_body, sink);

		if (used < 0)
			return sink->refused || used == -EILSEQ ? (int)used : -EBADMSG;
		*ret_done = resp->chunks.state == K8S_CHUNK_DONE;
		return 0;
	}
	if (resp->length_known) {
		if (len > resp->length_left)
			len = (size_t)resp->length_left;
		resp->length_left -= len;
		*ret_done = resp->length_left == 0;
	}
	return emit_body(sink, data, len);
}

static int protocol_error(struct exchange *ex, const char *what)
{
	snprintf(ex->err, ex->err_len, "%s: %s", ex->get->server->host_header, what);
	return -ECONNREFUSED;
}

/* Reads the head into `buf`; leaves the body bytes already read at its start. */
static int read_head(struct exchange *ex, char *buf, size_t cap, struct response *resp,
		     size_t *ret_body_len)
{
	size_t len = 0;

	for (;;) {
		char *end;
		ssize_t got = receive_some(ex, buf + len, cap - 1 - len);

		if (got < 0)
			return got == -ETIMEDOUT || got == -ECANCELED ? (int)got
								      : protocol_error(ex, "read failed");
		if (got == 0)
			return protocol_error(ex, "closed before a response");
		len += (size_t)got;
		buf[len] = '\0';
		end = strstr(buf, "\r\n\r\n");
		if (end) {
			size_t head_len = (size_t)(end - buf) + 4;

			end[2] = '\0';
			if (parse_head(buf, resp))
				return protocol_error(ex, "not an HTTP/1.x response");
			memmove(buf, buf + head_len, len - head_len);
			*ret_body_len = len - head_len;
			return 0;
		}
		if (len >= cap - 1)
			return protocol_error(ex, "response head too long");
	}
}

static int read_response(struct exchange *ex, int *ret_status)
{
	struct response resp = { 0 };
	struct body_sink sink = { .get = ex->get };
	size_t cap = RESPONSE_HEAD_MAX_BYTES, len;
	char *buf = malloc(cap);
	bool done = false;
	int err;

	if (!buf)
		return -ENOMEM;
	err = read_head(ex, buf, cap, &resp, &len);
	*ret_status = resp.status;
	if (!err)
		err = sink_start(&sink, &resp);
	done = !resp.chunked && resp.length_known && resp.length_left == 0;
	if (!err && len)
		err = take_body(&resp, &sink, buf, len, &done);
	while (!err && !done) {
		ssize_t got = receive_some(ex, buf, READ_BUFFER_BYTES);

		if (got == 0 && (resp.chunked || resp.length_known))
			err = protocol_error(ex, "closed mid-response");
		else if (got == 0)
			done = true; /* delimited by the close */
		else if (got < 0)
			err = got == -ETIMEDOUT || got == -ECANCELED ? (int)got
								     : protocol_error(ex, "read failed");
		else
			err = take_body(&resp, &sink, buf, (size_t)got, &done);
	}
	if (err == -EBADMSG)
		err = protocol_error(ex, "bad chunked coding");
	else if (err == -EILSEQ || (!err && sink.gzip && !sink.gzip_ended))
		err = protocol_error(ex, "bad gzip data");
	sink_end(&sink);
	free(buf);
	return err;
}

static int send_request(struct exchange *ex)
{
	const struct k8s_http_get *get = ex->get;
	char *request;
	int len, err;

	len = asprintf(&request,
		       "GET %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: kaccess/" KACCESS_VERSION "\r\n"
		       "Accept: application/json\r\nAccept-Encoding: gzip\r\n%s%s%s"
		       "Connection: close\r\n\r\n",
		       get->server->base_path, get->path_query, get->server->host_header,
		       get->bearer_token ? "Authorization: Bearer " : "",
		       get->bearer_token ? get->bearer_token : "", get->bearer_token ? "\r\n" : "");
	if (len < 0)
		return -ENOMEM;
	err = send_all(ex, request, (size_t)len);
	free(request);
	if (err && err != -ETIMEDOUT && err != -ECANCELED) {
		snprintf(ex->err, ex->err_len, "%s: sending the request failed",
			 get->server->host_header);
		err = -ECONNREFUSED;
	}
	return err;
}

static void exchange_close(struct exchange *ex)
{
	if (ex->ssl)
		SSL_free(ex->ssl);
	if (ex->ctx)
		SSL_CTX_free(ex->ctx);
	if (ex->fd >= 0)
		close(ex->fd);
	ERR_clear_error();
}

int k8s_http_get(const struct k8s_http_get *get, int *ret_status, char *err, size_t err_len)
{
	uint64_t start_ms = clock_monotonic_ms();
	struct exchange ex = {
		.get = get,
		.fd = -1,
		.connect_deadline_ms = start_ms + (uint64_t)get->connect_timeout_s * 1000,
		.total_deadline_ms = get->total_limit_s ? start_ms + (uint64_t)get->total_limit_s * 1000 : 0,
		.err = err,
		.err_len = err_len,
	};
	int ret;

	*ret_status = 0;
	err[0] = '\0';
	ret = connect_server(&ex);
	if (!ret && get->server->tls)
		ret = tls_start(&ex);
	ex.connect_deadline_ms = 0;
	ex.silence_deadline_ms = clock_monotonic_ms() + (uint64_t)get->silence_limit_s * 1000;
	if (!ret)
		ret = send_request(&ex);
	if (!ret)
		ret = read_response(&ex, ret_status);
	exchange_close(&ex);
	return ret;
}
