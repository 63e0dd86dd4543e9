/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * TCP workloads whose processes count their own syscalls: the ground truth
 * the selftests compare kaccess's numbers with.
 */
#ifndef KACCESS_SELFTEST_TRAFFIC_H
#define KACCESS_SELFTEST_TRAFFIC_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "pods.h"

enum io_style {
	IO_PLAIN,    /* write() and read() */
	IO_VARIANTS, /* rotate through every syscall of the write or read family */
	IO_PEEK,     /* recv(MSG_PEEK) before every read: peeks must not count */
};

/* What one side did, counted by itself; durations are measured around each call. */
struct side_truth {
	uint64_t connects, connect_successes, accepts, closes;
	uint64_t reads, read_bytes, writes, write_bytes, peeks;
	uint64_t connect_ns, accept_ns, close_ns, read_ns, write_ns;
	/* messages of a sendmmsg/recvmmsg after its first: socket-layer calls of their own */
	uint64_t extra_mmsg_writes, extra_mmsg_reads;
};

struct tcp_truth {
	struct side_truth client, server;
};

struct tcp_plan {
	int family;             /* AF_INET or AF_INET6 */
	const char *server_addr;
	uint16_t port;
	int connections;
	int request_writes;     /* per connection, client to server */
	int request_size;
	int response_writes;    /* per connection, server to client */
	int response_size;
	enum io_style client_style, server_style;
	int write_gap_ms;       /* client pause between writes */
	bool no_server;         /* nothing listens: every connect is refused */
	bool server_resets;     /* server aborts (RST) instead of responding */
};

/* Shared memory for truths written by child processes. */
struct tcp_truth *truth_alloc(void);
void truth_free(struct tcp_truth *truth);

/* Start the server in its pod; returns once it listens (its pid, or -1). */
pid_t tcp_server_start(const struct pod *server, const struct tcp_plan *plan,
		       struct side_truth *truth);

/* Start the client in its pod; child_wait() its pid for the exit status. */
pid_t tcp_client_start(const struct pod *client, const struct tcp_plan *plan,
		       struct side_truth *truth);

/* Run the client in its pod to the end; its exit status (0 = clean). */
int tcp_client_run(const struct pod *client, const struct tcp_plan *plan, struct side_truth *truth);

/* Server in `server`, client in `client`; 0 when both sides finished cleanly. */
int tcp_run(const struct pod *client, const struct pod *server, const struct tcp_plan *plan,
	    struct tcp_truth *truth);

/*
 * A client that connects, writes `writes` x `size` bytes and is then killed
 * with SIGKILL, so it never calls close(). The server reads to EOF and closes.
 */
int tcp_run_killed_client(const struct pod *client, const struct pod *server,
			  const struct tcp_plan *plan, struct tcp_truth *truth);

/* A connection held open until released, for tests that inspect live state. */
struct held_conn {
	pid_t client_pid, server_pid;
	int release_fd; /* closing it makes the client close its socket */
};

/* Connect (plan->request_writes x request_size bytes are sent), then hold. */
int tcp_hold_open(const struct pod *client, const struct pod *server, const struct tcp_plan *plan,
		  struct tcp_truth *truth, struct held_conn *ret_held);

/* Close the held connection; 0 when both sides finished cleanly. */
int tcp_hold_release(struct held_conn *held);

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t now_ns(void);

#endif
