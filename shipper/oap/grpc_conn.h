/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * gRPC client-streaming calls of kaccess's own, over one HTTP/2 connection
 * (libnghttp2 for the framing, flow control and HPACK; OpenSSL for TLS with
 * ALPN h2). The OAP sender's transport: one connection per stream, one call
 * at a time on it, driven by the sender's thread alone.
 *
 * Nothing here blocks except grpc_conn_open and grpc_conn_pump, and both
 * end by a deadline or by the caller's give_up. Messages written to a call
 * wait in its buffer until a pump hands them to the socket as HTTP/2 flow
 * control allows: a writer decides when to pump, so many messages leave in
 * one write.
 */
#ifndef KACCESS_OAP_GRPC_CONN_H
#define KACCESS_OAP_GRPC_CONN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* gRPC's status codes (grpc/status.h), the ones this client names. */
enum grpc_code {
	GRPC_CODE_OK = 0,
	GRPC_CODE_CANCELLED = 1,
	GRPC_CODE_UNKNOWN = 2,
	GRPC_CODE_PERMISSION_DENIED = 7,
	GRPC_CODE_RESOURCE_EXHAUSTED = 8,
	GRPC_CODE_UNIMPLEMENTED = 12,
	GRPC_CODE_INTERNAL = 13,
	GRPC_CODE_UNAVAILABLE = 14,
	GRPC_CODE_UNAUTHENTICATED = 16,
};

#define GRPC_DETAILS_LEN 200

/* gRPC's name of any code 0..16 ("UNAVAILABLE"); "UNKNOWN" past them. */
const char *grpc_code_name(enum grpc_code code);

struct grpc_conn_options {
	const char *address;     /* "host:port" or "[v6]:port" */
	bool tls;
	const char *ca_pem;      /* TLS: the CA certificates, or NULL for the system's */
	const char *cert_pem;    /* TLS: client certificate and key, or NULL */
	const char *key_pem;
	const char *server_name; /* TLS: the name OAP's certificate carries, or NULL: the host */
	unsigned int keepalive_s;        /* a PING after this long without a frame from OAP */
	unsigned int keepalive_timeout_ms; /* its answer's deadline: then the connection is dead */
	unsigned int connect_timeout_ms; /* TCP and TLS handshake together */
	bool (*give_up)(void *arg);      /* checked at least every 50 ms while waiting */
	void *give_up_arg;
};

/* What the server said of the current call so far. */
struct grpc_call_state {
	bool headers;            /* its response headers (or a trailers-only answer) arrived */
	bool done;               /* the call is over: `code` and `details` say how */
	enum grpc_code code;
	char details[GRPC_DETAILS_LEN];
};

struct grpc_conn;

/*
 * Connect (every address the host resolves to, in turn), handshake TLS if
 * asked, and send HTTP/2's preface. 0, or -errno with `err` saying what
 * failed: resolve, connect, TLS (the certificate's verify error first), or
 * the server not speaking h2.
 */
int grpc_conn_open(const struct grpc_conn_options *opts, struct grpc_conn **ret_conn,
		   char *err, size_t err_len);

/* Connected, no GOAWAY and no error: a new call may go on it. */
bool grpc_conn_reusable(const struct grpc_conn *conn);

/*
 * Start a call to `path` ("/package.Service/Method") with, if `token` is
 * not empty, an `authentication` header (OAP's). Any earlier call must be
 * done. 0, -EBUSY, -EPIPE (the connection is not reusable) or -ENOMEM.
 */
int grpc_call_start(struct grpc_conn *conn, const char *path, const char *token);

/* Buffer one message behind its 5-byte gRPC prefix. 0, -EPIPE (over or half-closed) or -ENOMEM. */
int grpc_call_write(struct grpc_conn *conn, const uint8_t *msg, size_t len);

/*
 * Buffer `len` bytes of messages already behind their prefixes (a queue
 * chunk, oap_queue.h), in one copy. 0, -EPIPE or -ENOMEM.
 */
int grpc_call_write_framed(struct grpc_conn *conn, const uint8_t *framed, size_t len);

/* Bytes written to the call and not yet handed to the socket. */
size_t grpc_call_unsent_bytes(const struct grpc_conn *conn);

/* No more messages: the request ends once its buffer is sent. */
void grpc_call_half_close(struct grpc_conn *conn);

/* End the call now (RST_STREAM CANCEL): done, CANCELLED, with `why` as its details. */
void grpc_call_cancel(struct grpc_conn *conn, const char *why);

const struct grpc_call_state *grpc_call_state(const struct grpc_conn *conn);

/*
 * Move bytes both ways: write what is buffered as far as flow control and
 * the socket allow, read and handle what arrived, answer and send PINGs.
 * Waits up to wait_ms for the socket (0: not at all). 0, or -EIO once the
 * connection has failed (a call still open is then done, UNAVAILABLE).
 */
int grpc_conn_pump(struct grpc_conn *conn, unsigned int wait_ms);

void grpc_conn_free(struct grpc_conn *conn);

#endif
