/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Name resolution that a stop or a deadline can interrupt, for kaccess's
 * own clients (the OAP sender, the Kubernetes API client). getaddrinfo()
 * blocks for the resolver's own timeouts (5 s per try and server by
 * default, times the search domains), during which a stopping agent would
 * wait past its flush budget. A name is looked up with getaddrinfo_a()
 * instead, and waited for in slices; a literal address needs no lookup.
 */
#ifndef KACCESS_RESOLVE_H
#define KACCESS_RESOLVE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct addrinfo;

struct resolve_wait {
	uint64_t deadline_ms;          /* CLOCK_MONOTONIC milliseconds */
	bool (*give_up)(void *arg);    /* asked every slice; NULL: never */
	void *give_up_arg;
	int stop_fd;                   /* readable: give up; -1: none */
};

/*
 * The TCP addresses of host:port (freeaddrinfo() them). 0; -ETIMEDOUT when
 * the deadline came first; -ECANCELED when told to give up; -EHOSTUNREACH
 * when the name does not resolve. `err` says which, with the name.
 */
int resolve_tcp(const char *host, const char *port, const struct resolve_wait *wait,
		struct addrinfo **ret_list, char *err, size_t err_len);

#endif /* KACCESS_RESOLVE_H */
