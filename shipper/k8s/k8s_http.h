/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The HTTP/1.1 GET the watchers need, over TCP or over TLS (OpenSSL, through
 * tls_client.h): one request per connection, a body delivered as
 * it arrives (Content-Length, chunked, or up to the close), deadlines for
 * connecting and for silence, and a descriptor that interrupts everything.
 * No proxies or redirects: the API server needs neither.
 */
#ifndef KACCESS_K8S_HTTP_H
#define KACCESS_K8S_HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define K8S_HTTP_HOST_LEN 256

/* Where an http:// or https:// URL points. */
struct k8s_http_server {
	bool tls;
	char host[K8S_HTTP_HOST_LEN]; /* without the brackets of an IPv6 literal */
	char port[8];
	char host_header[K8S_HTTP_HOST_LEN + 10]; /* host[:port] as the URL spells it */
	char base_path[256];                      /* before the API paths, without a trailing '/' */
};

/* 0, or -EINVAL with `err` set. */
int k8s_http_server_parse(const char *url, struct k8s_http_server *ret, char *err, size_t err_len);

/* How the server's certificate is checked and who the client is. */
struct k8s_http_tls {
	const char *ca_pem;   /* the CA certificates, or NULL */
	const char *ca_path;  /* else a CA file, or NULL: the system's CAs */
	const char *cert_pem; /* client certificate and key, or NULL */
	const char *key_pem;
	bool insecure; /* no check of the server at all */
};

struct k8s_http_get {
	const struct k8s_http_server *server;
	const struct k8s_http_tls *tls;
	const char *path_query; /* after the base path, already escaped */
	const char *bearer_token; /* or NULL */
	unsigned int connect_timeout_s; /* TCP and TLS handshake */
	unsigned int silence_limit_s;   /* no byte received for this long: -ETIMEDOUT */
	unsigned int total_limit_s;     /* 0: none */
	int stop_fd; /* readable: -ECANCELED */
	/* Every body byte, with the status; a -errno return ends the request with it. */
	int (*on_body)(void *user, int status, const char *data, size_t len);
	void *user;
};

/*
 * One GET to the end of its response. 0 with *ret_status set, else -errno:
 * -ECANCELED (stop_fd), -ETIMEDOUT, what on_body returned, or -ECONNREFUSED
 * for any failure to connect, handshake or read a well-formed response,
 * with `err` saying which.
 */
int k8s_http_get(const struct k8s_http_get *get, int *ret_status, char *err, size_t err_len);

/* Percent-encode everything but RFC 3986's unreserved characters; -ENOSPC if it does not fit. */
int k8s_http_escape(const char *text, char *out, size_t out_len);

/* The chunked transfer coding, decoded from pieces split anywhere. */
enum k8s_chunked_state {
	K8S_CHUNK_SIZE,
	K8S_CHUNK_EXTENSION,
	K8S_CHUNK_SIZE_LF,
	K8S_CHUNK_DATA,
	K8S_CHUNK_DATA_CR,
	K8S_CHUNK_DATA_LF,
	K8S_CHUNK_TRAILER_LINE,
	K8S_CHUNK_TRAILER_SKIP,
	K8S_CHUNK_TRAILER_LF,
	K8S_CHUNK_DONE,
};

struct k8s_chunked {
	enum k8s_chunked_state state;
	uint64_t remaining; /* of the chunk's size, or its data */
	int size_digits;
};

/*
 * Feed `len` bytes: the data goes to `emit` (a -errno from it is returned).
 * Returns the bytes used, fewer than `len` only once the last chunk and
 * trailer ended (state K8S_CHUNK_DONE), or -EPROTO for a malformed coding.
 */
long k8s_chunked_feed(struct k8s_chunked *chunked, const char *data, size_t len,
		      int (*emit)(void *user, const char *data, size_t len), void *user);

#endif
