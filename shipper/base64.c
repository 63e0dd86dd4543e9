// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdbool.h>

#include "base64.h"

static int sextet(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+' || c == '-')
		return 62;
	if (c == '/' || c == '_')
		return 63;
	return -1;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

int base64_decode(const char *in, size_t len, char *out, size_t out_len)
{
	unsigned int bits = 0, nbits = 0;
	size_t written = 0;

	if (!out_len)
		return -ENOSPC;
	for (size_t i = 0; i < len && in[i] != '='; i++) {
		int value;

		if (is_space(in[i]))
			continue;
		value = sextet(in[i]);
		if (value < 0)
			return -EINVAL;
		bits = (bits << 6) | (unsigned int)value;
		nbits += 6;
		if (nbits >= 8) {
			nbits -= 8;
			if (written + 1 >= out_len)
				return -ENOSPC;
			out[written++] = (char)((bits >> nbits) & 0xff);
		}
	}
	out[written] = '\0';
	return (int)written;
}
