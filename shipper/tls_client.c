// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* TLS client contexts and checks shared by kaccess's own clients (tls_client.h). */
#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "tls_client.h"

const char *tls_client_reason(char *buf, size_t len)
{
	unsigned long code = ERR_peek_last_error();

	if (!code)
		snprintf(buf, len, "unknown error");
	else
		ERR_error_string_n(code, buf, len);
	ERR_clear_error();
	return buf;
}

static int add_ca_certificates(SSL_CTX *ctx, const char *pem)
{
	BIO *bio = BIO_new_mem_buf(pem, -1);
	X509_STORE *store = SSL_CTX_get_cert_store(ctx);
	STACK_OF(X509_INFO) *infos = bio ? PEM_X509_INFO_read_bio(bio, NULL, NULL, NULL) : NULL;
	int added = 0;

	for (int i = 0; infos && i < sk_X509_INFO_num(infos); i++) {
		X509_INFO *info = sk_X509_INFO_value(infos, i);

		if (info->x509 && X509_STORE_add_cert(store, info->x509))
			added++;
	}
	sk_X509_INFO_pop_free(infos, X509_INFO_free);
	BIO_free(bio);
	return added ? 0 : -EINVAL;
}

static int use_client_identity(SSL_CTX *ctx, const char *cert_pem, const char *key_pem)
{
	BIO *cert_bio = BIO_new_mem_buf(cert_pem, -1), *key_bio = BIO_new_mem_buf(key_pem, -1);
	X509 *cert = cert_bio ? PEM_read_bio_X509(cert_bio, NULL, NULL, NULL) : NULL;
	EVP_PKEY *key = key_bio ? PEM_read_bio_PrivateKey(key_bio, NULL, NULL, NULL) : NULL;
	int err = cert && key && SSL_CTX_use_certificate(ctx, cert) == 1 &&
				  SSL_CTX_use_PrivateKey(ctx, key) == 1 ? 0 : -EINVAL;

	/* the rest of the certificate file: its chain */
	for (X509 *extra; !err && cert_bio && (extra = PEM_read_bio_X509(cert_bio, NULL, NULL, NULL));)
		if (SSL_CTX_add0_chain_cert(ctx, extra) != 1)
			X509_free(extra);
	X509_free(cert);
	EVP_PKEY_free(key);
	BIO_free(cert_bio);
	BIO_free(key_bio);
	ERR_clear_error(); /* the chain's end reads as "no start line" */
	return err;
}

/* ALPN's wire format: each protocol behind its one-byte length. */
static int offer_protocol(SSL_CTX *ctx, const char *protocol)
{
	unsigned char wire[32];
	size_t len = strlen(protocol);

	if (!len || len >= sizeof(wire))
		return -EINVAL;
	wire[0] = (unsigned char)len;
	memcpy(wire + 1, protocol, len);
	/* OpenSSL's one inverted return: 0 is success */
	return SSL_CTX_set_alpn_protos(ctx, wire, (unsigned int)len + 1) ? -EINVAL : 0;
}

static int context_failed(SSL_CTX *ctx, const char *what, char *err, size_t err_len)
{
	char reason[160];

	snprintf(err, err_len, "%s: %s", what, tls_client_reason(reason, sizeof(reason)));
	SSL_CTX_free(ctx);
	return -EINVAL;
}

int tls_client_context(const struct tls_client_options *opts, SSL_CTX **ret_ctx, char *err,
		       size_t err_len)
{
	SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
	bool ca_file = !opts->ca_pem && opts->ca_path && opts->ca_path[0];

	*ret_ctx = NULL;
	if (!ctx)
		return context_failed(NULL, "no context", err, err_len);
	SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
	/* a server that closes without close_notify: the protocol above says if that was whole */
	SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF);
	/* non-blocking writes resumed from wherever the caller's buffer now is */
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_verify(ctx, opts->insecure ? SSL_VERIFY_NONE : SSL_VERIFY_PEER, NULL);
	if (opts->ca_pem && add_ca_certificates(ctx, opts->ca_pem))
		return context_failed(ctx, "the CA certificates do not parse", err, err_len);
	if (ca_file && SSL_CTX_load_verify_locations(ctx, opts->ca_path, NULL) != 1)
		return context_failed(ctx, opts->ca_path, err, err_len);
	if (!opts->ca_pem && !ca_file)
		SSL_CTX_set_default_verify_paths(ctx);
	if (opts->cert_pem && opts->key_pem && use_client_identity(ctx, opts->cert_pem, opts->key_pem))
		return context_failed(ctx, "the client certificate or key does not parse or match",
				      err, err_len);
	if (opts->alpn && offer_protocol(ctx, opts->alpn))
		return context_failed(ctx, "ALPN", err, err_len);
	*ret_ctx = ctx;
	return 0;
}

int tls_client_expect_host(SSL *ssl, const char *host)
{
	unsigned char address[16];
	bool literal = inet_pton(AF_INET, host, address) == 1 || inet_pton(AF_INET6, host, address) == 1;

	if (literal)
		return X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host) == 1 ? 0 : -EINVAL;
	SSL_set_tlsext_host_name(ssl, host);
	return SSL_set1_host(ssl, host) == 1 ? 0 : -EINVAL;
}

void tls_client_handshake_error(SSL *ssl, char *buf, size_t len)
{
	long verify = SSL_get_verify_result(ssl);
	char reason[160];

	if (verify != X509_V_OK) {
		ERR_clear_error();
		snprintf(buf, len, "certificate verify failed: %s", X509_verify_cert_error_string(verify));
		return;
	}
	snprintf(buf, len, "handshake failed: %s", tls_client_reason(reason, sizeof(reason)));
}
