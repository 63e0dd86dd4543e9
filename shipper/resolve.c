// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include "resolve.h"

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"

#define RESOLVE_SLICE_MS 50 /* how soon a stop is noticed */

/* One lookup; given up ones stay allocated until glibc's thread finishes with them. */
struct lookup {
	struct gaicb request;
	struct addrinfo hints;
	struct lookup *next;
	char names[];        /* host, NUL, port, NUL */
};

static const struct addrinfo tcp_hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };

static pthread_mutex_t abandoned_lock = PTHREAD_MUTEX_INITIALIZER;
static struct lookup *abandoned;

static void lookup_free(struct lookup *lookup)
{
	if (lookup->request.ar_result)
		freeaddrinfo(lookup->request.ar_result);
	free(lookup);
}

/* Free the given-up lookups that have finished since. */
static void abandoned_reap(void)
{
	struct lookup **at, *done;

	pthread_mutex_lock(&abandoned_lock);
	for (at = &abandoned; *at;) {
		if (gai_error(&(*at)->request) == EAI_INPROGRESS) {
			at = &(*at)->next;
			continue;
		}
		done = *at;
		*at = done->next;
		lookup_free(done);
	}
	pthread_mutex_unlock(&abandoned_lock);
}

/* Stop waiting for `lookup`: freed now if glibc is done with it, else later. */
static void lookup_abandon(struct lookup *lookup)
{
	if (gai_cancel(&lookup->request) != EAI_NOTCANCELED) {
		lookup_free(lookup);
		return;
	}
	pthread_mutex_lock(&abandoned_lock);
	lookup->next = abandoned;
	abandoned = lookup;
	pthread_mutex_unlock(&abandoned_lock);
}

static bool told_to_give_up(const struct resolve_wait *wait)
{
	struct pollfd pfd = { .fd = wait->stop_fd, .events = POLLIN };

	if (wait->give_up && wait->give_up(wait->give_up_arg))
		return true;
	return wait->stop_fd >= 0 && poll(&pfd, 1, 0) > 0;
}

/* A literal IPv4 or IPv6 address: 0 with the list, EAI_NONAME for a name, else the error. */
static int resolve_literal(const char *host, const char *port, struct addrinfo **ret_list)
{
	struct addrinfo hints = tcp_hints;

	hints.ai_flags = AI_NUMERICHOST;
	return getaddrinfo(host, port, &hints, ret_list);
}

static struct lookup *lookup_start(const char *host, const char *port)
{
	size_t host_len = strlen(host) + 1, port_len = strlen(port) + 1;
	struct lookup *lookup = calloc(1, sizeof(*lookup) + host_len + port_len);
	struct gaicb *requests[1];

	if (!lookup)
		return NULL;
	memcpy(lookup->names, host, host_len);
	memcpy(lookup->names + host_len, port, port_len);
	lookup->hints = tcp_hints;
	lookup->request.ar_name = lookup->names;
	lookup->request.ar_service = lookup->names + host_len;
	lookup->request.ar_request = &lookup->hints;
	requests[0] = &lookup->request;
	if (getaddrinfo_a(GAI_NOWAIT, requests, 1, NULL)) {
		free(lookup);
		return NULL;
	}
	return lookup;
}

/* Wait for the lookup in slices: 0 when it finished, -ECANCELED or -ETIMEDOUT first. */
static int lookup_wait(struct lookup *lookup, const struct resolve_wait *wait)
{
	const struct gaicb *requests[1] = { &lookup->request };

	for (;;) {
		uint64_t now_ms = clock_monotonic_ms(), slice_ms = RESOLVE_SLICE_MS;
		struct timespec slice;

		if (gai_error(&lookup->request) != EAI_INPROGRESS)
			return 0;
		if (told_to_give_up(wait))
			return -ECANCELED;
		if (now_ms >= wait->deadline_ms)
			return -ETIMEDOUT;
		if (wait->deadline_ms - now_ms < slice_ms)
			slice_ms = wait->deadline_ms - now_ms;
		slice.tv_sec = slice_ms / 1000;
		slice.tv_nsec = (long)(slice_ms % 1000) * 1000000;
		gai_suspend(requests, 1, &slice);
	}
}

int resolve_tcp(const char *host, const char *port, const struct resolve_wait *wait,
		struct addrinfo **ret_list, char *err, size_t err_len)
{
	uint64_t started_ms = clock_monotonic_ms();
	struct lookup *lookup;
	int status, waited;

	*ret_list = NULL;
	abandoned_reap();
	status = resolve_literal(host, port, ret_list);
	if (status != EAI_NONAME)
		goto done;
	lookup = lookup_start(host, port);
	if (!lookup) {
		status = EAI_MEMORY;
		goto done;
	}
	waited = lookup_wait(lookup, wait);
	if (waited) {
		lookup_abandon(lookup);
		if (waited == -ETIMEDOUT)
			snprintf(err, err_len, "resolve %s: no answer in %lu ms", host,
				 (unsigned long)(clock_monotonic_ms() - started_ms));
		else
			snprintf(err, err_len, "resolve %s: stopped", host);
		return waited;
	}
	status = gai_error(&lookup->request);
	*ret_list = lookup->request.ar_result;
	lookup->request.ar_result = NULL;
	lookup_free(lookup);
done:
	if (!status)
		return 0;
	snprintf(err, err_len, "resolve %s: %s", host, gai_strerror(status));
	return -EHOSTUNREACH;
}
