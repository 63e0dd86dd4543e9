/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The TLS client side both of kaccess's own clients need (the Kubernetes API
 * client's HTTP/1.1 and the OAP sender's gRPC), on OpenSSL: one way to build
 * a context from CA and identity PEM, to name the host a certificate must
 * carry, and to say why a handshake failed.
 */
#ifndef KACCESS_TLS_CLIENT_H
#define KACCESS_TLS_CLIENT_H

#include <stdbool.h>
#include <stddef.h>

#include <openssl/ssl.h>

struct tls_client_options {
	const char *ca_pem;   /* the CA certificates, or NULL */
	const char *ca_path;  /* else a CA file, or NULL or "": the system's CAs */
	const char *cert_pem; /* client certificate (with its chain) and key, or NULL */
	const char *key_pem;
	bool insecure;        /* no check of the server at all */
	const char *alpn;     /* one protocol to offer ("h2"), or NULL */
};

/*
 * A client context: TLS 1.2 or later, the server verified unless insecure.
 * 0, or -EINVAL with `err` saying what did not load and why.
 */
int tls_client_context(const struct tls_client_options *opts, SSL_CTX **ret_ctx, char *err,
		       size_t err_len);

/*
 * The name the server's certificate must carry: an IPv4 or IPv6 address is
 * checked against the certificate's IP names, a DNS name against its DNS
 * names and sent as SNI. 0 or -EINVAL.
 */
int tls_client_expect_host(SSL *ssl, const char *host);

/* After SSL_connect failed: the certificate's verify error, or OpenSSL's reason. */
void tls_client_handshake_error(SSL *ssl, char *buf, size_t len);

/* The OpenSSL error queue's latest reason, and the queue emptied. */
const char *tls_client_reason(char *buf, size_t len);

#endif
