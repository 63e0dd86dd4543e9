/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Strict parsers: the whole string must be the value, within a range. */
#ifndef KACCESS_PARSE_H
#define KACCESS_PARSE_H

#include <stdint.h>
#include <sys/socket.h>

/* Decimal integer in [min, max]. 0, -EINVAL (not a number) or -ERANGE. */
int parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *ret_value);

/* Like parse_u64 for unsigned int results. */
int parse_uint(const char *text, unsigned int min, unsigned int max, unsigned int *ret_value);

/*
 * A listen address "IPV4:PORT" or "[IPV6]:PORT", port 1..65535, into a
 * sockaddr. 0 or -EINVAL.
 */
int parse_listen_address(const char *text, struct sockaddr_storage *ret_addr, socklen_t *ret_len);

/* A hexadecimal digit's value (either case), or -1. */
int parse_hex_digit(char c);

/* Index of `text` in a NULL-terminated list of names, or -EINVAL. */
int parse_choice(const char *text, const char *const *names);

#endif
