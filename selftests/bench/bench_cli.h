/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * What the benchmark's C tools (loadgen, pace, k8s_scale) share: reading a
 * bounded number from an option, and the clock they time with.
 */
#ifndef KACCESS_BENCH_CLI_H
#define KACCESS_BENCH_CLI_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <time.h>

#define NS_PER_S 1000000000ull

/* A decimal number in min..max (no sign, nothing after it), or -EINVAL. */
static inline int bench_parse_ull(const char *text, unsigned long long min, unsigned long long max,
				  unsigned long long *ret_value)
{
	unsigned long long value;
	char *end;

	/* strtoull would take "-1" as ULLONG_MAX and "" as 0 */
	if (text[0] < '0' || text[0] > '9')
		return -EINVAL;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno || *end || value < min || value > max)
		return -EINVAL;
	*ret_value = value;
	return 0;
}

static inline int bench_parse_uint(const char *text, unsigned int min, unsigned int max,
				   unsigned int *ret_value)
{
	unsigned long long value;
	int err = bench_parse_ull(text, min, max, &value);

	if (!err)
		*ret_value = (unsigned int)value;
	return err;
}

static inline uint64_t bench_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + (uint64_t)ts.tv_nsec;
}

#endif /* KACCESS_BENCH_CLI_H */
