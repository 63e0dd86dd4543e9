/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A gRPC client-streaming call on libnghttp2 over plaintext TCP, for
 * grpc_floor: what one access-log message would cost a sender without the
 * gRPC C core. Not a sender: no TLS, no token, no reconnects; it writes
 * what is buffered when told to, as a sender on a timer would.
 */
#ifndef KACCESS_BENCH_H2_STREAM_H
#define KACCESS_BENCH_H2_STREAM_H

#include <stddef.h>
#include <stdint.h>

struct h2_stream;

/* Connect to "host:port" and open a call to `path` ("/pkg.Service/Method"). 0 or -errno. */
int h2_stream_open(const char *address, const char *path, struct h2_stream **ret_stream);

/* Buffer one message with its 5-byte gRPC prefix. 0 or -ENOMEM. */
int h2_stream_write(struct h2_stream *stream, const uint8_t *msg, size_t len);

/* Hand the buffered messages to the socket as flow control allows, and read what came. 0 or -EIO. */
int h2_stream_flush(struct h2_stream *stream);

/* Half-close and wait up to timeout_ms for the server's grpc-status: it, or -1 without one. */
int h2_stream_finish(struct h2_stream *stream, int timeout_ms);

void h2_stream_free(struct h2_stream *stream);

#endif
