/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * HTTP endpoint texts ("METHOD:path") by the hash the kernel aggregates
 * under. The kernel sends each text once through the ring buffer; the
 * shipper keeps it for the life of the agent.
 */
#ifndef KACCESS_ENDPOINT_NAMES_H
#define KACCESS_ENDPOINT_NAMES_H

#include <stddef.h>
#include <stdint.h>

/* Beyond this many distinct endpoints, new texts are not kept (rows show the hash). */
#define ENDPOINT_NAMES_MAX (1u << 20)

struct endpoint_names;

struct endpoint_names *endpoint_names_new(void);
void endpoint_names_free(struct endpoint_names *names);

/* Remember `text` (`len` bytes) for `hash`: 0, or -ENOMEM/-ENOSPC. Thread-safe. */
int endpoint_names_add(struct endpoint_names *names, uint64_t hash, const char *text, size_t len);

/*
 * Copy the text of `hash` into `buf` (NUL-terminated); 0, or -ENOENT when
 * it is unknown. Thread-safe (the /metrics thread reads it too).
 */
int endpoint_names_get(struct endpoint_names *names, uint64_t hash, char *buf, size_t len);

#endif
