/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* The shipper's one clock for deadlines and ages. */
#ifndef KACCESS_CLOCK_H
#define KACCESS_CLOCK_H

#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in milliseconds. */
static inline uint64_t clock_monotonic_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

#endif /* KACCESS_CLOCK_H */
