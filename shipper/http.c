// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include "http.h"
#include "log.h"
#include "parse.h"

#define MAX_REQUEST_BYTES 8192
#define CLIENT_TIMEOUT_S 2

struct http_server {
	int listen_fd;
	uint16_t port;    /* bound: the configured one, or the kernel's pick for 0 */
	int stop_pipe[2];
	pthread_t thread;
	http_handler_fn handler;
	void *ctx;
};

static const char *status_text(int status)
{
	switch (status) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 503: return "Service Unavailable";
	default: return "Internal Server Error";
	}
}

/* Read until the end of the request head; GET/HEAD bodies are empty. */
static ssize_t read_request_head(int fd, char *buf, size_t size)
{
	size_t got = 0;

	while (got < size - 1) {
		ssize_t n = read(fd, buf + got, size - 1 - got);

		if (n <= 0)
			return -1;
		got += n;
		buf[got] = '\0';
		if (strstr(buf, "\r\n\r\n") || strstr(buf, "\n\n"))
			return got;
	}
	return -1;
}

static void write_all(int fd, const char *data, size_t len)
{
	while (len) {
		ssize_t n = write(fd, data, len);

		if (n <= 0)
			return;
		data += n;
		len -= n;
	}
}

static void serve_client(struct http_server *server, int fd)
{
	struct timeval timeout = { .tv_sec = CLIENT_TIMEOUT_S };
	struct http_response response = { .status = 200, .content_type = "text/plain; charset=utf-8" };
	char request[MAX_REQUEST_BYTES], method[8], path[256], head[256];
	bool is_head = false;
	int head_len;

	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
	if (read_request_head(fd, request, sizeof(request)) < 0 ||
	    sscanf(request, "%7s %255s HTTP/1.%*c", method, path) != 2) {
		response.status = 400;
		strbuf_printf(&response.body, "bad request\n");
	} else if (strcmp(method, "GET") && strcmp(method, "HEAD")) {
		response.status = 405;
		strbuf_printf(&response.body, "only GET and HEAD\n");
	} else {
		is_head = strcmp(method, "HEAD") == 0;
		server->handler(server->ctx, path, &response);
	}
	head_len = snprintf(head, sizeof(head),
			    "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
			    "Connection: close\r\n\r\n",
			    response.status, status_text(response.status), response.content_type,
			    response.body.len);
	write_all(fd, head, head_len);
	if (!is_head && response.body.len)
		write_all(fd, response.body.text, response.body.len);
	strbuf_free(&response.body);
}

static void *serve(void *arg)
{
	struct http_server *server = arg;
	struct pollfd fds[2] = {
		{ .fd = server->listen_fd, .events = POLLIN },
		{ .fd = server->stop_pipe[0], .events = POLLIN },
	};

	for (;;) {
		int client;

		if (poll(fds, 2, -1) < 0 && errno != EINTR)
			break;
		if (fds[1].revents)
			break;
		if (!(fds[0].revents & POLLIN))
			continue;
		client = accept4(server->listen_fd, NULL, NULL, SOCK_CLOEXEC);
		if (client < 0)
			continue;
		serve_client(server, client);
		close(client);
	}
	return NULL;
}

static int listen_on(const char *listen_address)
{
	struct sockaddr_storage addr;
	socklen_t len;
	int fd, one = 1, err;

	if (parse_listen_address(listen_address, &addr, &len))
		return -EINVAL;
	fd = socket(addr.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&addr, len) || listen(fd, 16)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static uint16_t bound_port(int fd)
{
	struct sockaddr_storage addr;
	socklen_t len = sizeof(addr);

	if (getsockname(fd, (struct sockaddr *)&addr, &len))
		return 0;
	if (addr.ss_family == AF_INET6)
		return ntohs(((struct sockaddr_in6 *)&addr)->sin6_port);
	return ntohs(((struct sockaddr_in *)&addr)->sin_port);
}

uint16_t http_server_port(const struct http_server *server)
{
	return server->port;
}

int http_server_start(struct http_server **ret_server, const char *listen_address,
		      http_handler_fn handler, void *ctx)
{
	struct http_server *server = calloc(1, sizeof(*server));
	int err;

	if (!server)
		return -ENOMEM;
	server->handler = handler;
	server->ctx = ctx;
	server->stop_pipe[0] = server->stop_pipe[1] = -1;
	server->listen_fd = listen_on(listen_address);
	if (server->listen_fd < 0) {
		err = server->listen_fd;
		log_err("failed to listen on %s: %s", listen_address, strerror(-err));
		free(server);
		return err;
	}
	server->port = bound_port(server->listen_fd);
	if (pipe2(server->stop_pipe, O_CLOEXEC) ||
	    (errno = pthread_create(&server->thread, NULL, serve, server))) {
		err = -errno;
		log_err("failed to start the HTTP server: %s", strerror(-err));
		close(server->listen_fd);
		free(server);
		return err;
	}
	log_info("serving /metrics, /healthz and /readyz on http://%s", listen_address);
	*ret_server = server;
	return 0;
}

void http_server_stop(struct http_server *server)
{
	if (!server)
		return;
	if (write(server->stop_pipe[1], "x", 1) == 1)
		pthread_join(server->thread, NULL);
	close(server->stop_pipe[0]);
	close(server->stop_pipe[1]);
	close(server->listen_fd);
	free(server);
}
