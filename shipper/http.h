/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * A minimal HTTP/1.1 server for /metrics and the health endpoints: one
 * thread, one request per connection, GET and HEAD only, bounded request
 * size and time, so a slow or hostile client cannot hold the agent.
 */
#ifndef KACCESS_HTTP_H
#define KACCESS_HTTP_H

#include <stdint.h>

#include "strbuf.h"

struct http_response {
	int status;               /* 200, 404, 503 ... */
	const char *content_type;
	struct strbuf body;
};

/* Fill `response` for `path`. Runs on the server thread. */
typedef void (*http_handler_fn)(void *ctx, const char *path, struct http_response *response);

struct http_server;

/* Bind `listen` ("ADDR:PORT") and serve on a thread. 0 or -errno (logged). */
int http_server_start(struct http_server **ret_server, const char *listen,
		      http_handler_fn handler, void *ctx);

/* The port it listens on (the kernel's pick when `listen` said 0). */
uint16_t http_server_port(const struct http_server *server);

/* Stop serving and join the thread. NULL-safe. */
void http_server_stop(struct http_server *server);

#endif
