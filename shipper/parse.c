// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "parse.h"

int parse_u64(const char *text, uint64_t min, uint64_t max, uint64_t *ret_value)
{
	unsigned long long value;
	char *end;

	/* strtoull accepts leading space and '-' (wrapping around): refuse both. */
	if (!text || !isdigit((unsigned char)text[0]))
		return -EINVAL;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (*end != '\0')
		return -EINVAL;
	if (errno == ERANGE || value < min || value > max)
		return -ERANGE;
	*ret_value = value;
	return 0;
}

int parse_uint(const char *text, unsigned int min, unsigned int max, unsigned int *ret_value)
{
	uint64_t value;
	int err = parse_u64(text, min, max, &value);

	if (err)
		return err;
	*ret_value = (unsigned int)value;
	return 0;
}

int parse_choice(const char *text, const char *const *names)
{
	for (int i = 0; names[i]; i++)
		if (strcmp(text, names[i]) == 0)
			return i;
	return -EINVAL;
}

int parse_listen_address(const char *text, struct sockaddr_storage *ret_addr, socklen_t *ret_len)
{
	char host[64];
	const char *colon = strrchr(text, ':');
	unsigned int port;
	size_t host_len;

	if (!colon || parse_uint(colon + 1, 1, 65535, &port))
		return -EINVAL;
	host_len = colon - text;
	if (host_len < 2 || host_len >= sizeof(host))
		return -EINVAL;
	memcpy(host, text, host_len);
	host[host_len] = '\0';
	memset(ret_addr, 0, sizeof(*ret_addr));
	if (host[0] == '[' && host[host_len - 1] == ']') {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ret_addr;

		host[host_len - 1] = '\0';
		if (inet_pton(AF_INET6, host + 1, &sin6->sin6_addr) != 1)
			return -EINVAL;
		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(port);
		*ret_len = sizeof(*sin6);
		return 0;
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)ret_addr;

	if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
		return -EINVAL;
	sin->sin_family = AF_INET;
	sin->sin_port = htons(port);
	*ret_len = sizeof(*sin);
	return 0;
}

int parse_hex_digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}
