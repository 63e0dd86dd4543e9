/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Base64 decoding for kubeconfig data (certificates) and SkyWalking's sw8 header. */
#ifndef KACCESS_BASE64_H
#define KACCESS_BASE64_H

#include <stddef.h>

/*
 * Decodes `len` characters of standard or URL-safe base64 into `out`,
 * NUL-terminated; whitespace is skipped and the first '=' ends the input.
 * Returns the bytes written, -EINVAL on a character outside the alphabet,
 * -ENOSPC when `out_len` cannot hold them and the NUL.
 */
int base64_decode(const char *in, size_t len, char *out, size_t out_len);

#endif
