// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#include "traffic.h"

struct side_args {
	const struct tcp_plan *plan;
	struct side_truth *truth;
	int ready_fd; /* server: written once listening; client: unused */
	int hold_fd;  /* killed client: written when its writes are done */
};

uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

struct tcp_truth *truth_alloc(void)
{
	void *shared = mmap(NULL, sizeof(struct tcp_truth), PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS, -1, 0);

	if (shared == MAP_FAILED)
		return NULL;
	memset(shared, 0, sizeof(struct tcp_truth));
	return shared;
}

void truth_free(struct tcp_truth *truth)
{
	if (truth)
		munmap(truth, sizeof(*truth));
}

static socklen_t make_sockaddr(const struct tcp_plan *plan, struct sockaddr_storage *ss)
{
	memset(ss, 0, sizeof(*ss));
	if (plan->family == AF_INET6) {
		struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

		sin6->sin6_family = AF_INET6;
		sin6->sin6_port = htons(plan->port);
		inet_pton(AF_INET6, plan->server_addr, &sin6->sin6_addr);
		return sizeof(*sin6);
	}
	struct sockaddr_in *sin = (struct sockaddr_in *)ss;

	sin->sin_family = AF_INET;
	sin->sin_port = htons(plan->port);
	inet_pton(AF_INET, plan->server_addr, &sin->sin_addr);
	return sizeof(*sin);
}

/* ---- writes: one syscall each, counted when it moved data -------------- */

/* `extra_messages` counts the messages of a sendmmsg after its first. */
static ssize_t write_variant(int fd, const char *buf, size_t len, int variant,
			     uint64_t *extra_messages)
{
	struct iovec iov[2] = { { (void *)buf, len / 2 }, { (void *)(buf + len / 2), len - len / 2 } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = 2 };
	struct mmsghdr mmsg[2] = { { .msg_hdr = { .msg_iov = &iov[0], .msg_iovlen = 1 } },
				   { .msg_hdr = { .msg_iov = &iov[1], .msg_iovlen = 1 } } };
	ssize_t ret;
	FILE *tmp;

	switch (variant % 7) {
	case 0:
		return write(fd, buf, len);
	case 1:
		return writev(fd, iov, 2);
	case 2:
		return send(fd, buf, len, 0);
	case 3:
		return sendto(fd, buf, len, 0, NULL, 0);
	case 4:
		return sendmsg(fd, &msg, 0);
	case 5:
		ret = sendmmsg(fd, mmsg, 2, 0);
		if (ret < 0)
			return ret;
		*extra_messages += ret > 1;
		return (ssize_t)(mmsg[0].msg_len + (ret > 1 ? mmsg[1].msg_len : 0));
	default:
		tmp = tmpfile();
		if (!tmp || fwrite(buf, 1, len, tmp) != len || fflush(tmp))
			return -1;
		ret = sendfile(fd, fileno(tmp), &(off_t){ 0 }, len);
		fclose(tmp);
		return ret;
	}
}

/* Write `count` x `size` bytes; every call that returned data is one write. */
static int write_all(int fd, int count, int size, enum io_style style, int gap_ms,
		     struct side_truth *truth)
{
	char *buf = malloc(size);

	if (!buf)
		return -1;
	memset(buf, 'k', size);
	for (int i = 0; i < count; i++) {
		size_t done = 0;

		while (done < (size_t)size) {
			uint64_t start = now_ns();
			ssize_t ret = style == IO_VARIANTS ? write_variant(fd, buf + done, size - done, i,
									   &truth->extra_mmsg_writes)
							   : write(fd, buf + done, size - done);

			truth->write_ns += now_ns() - start;
			if (ret <= 0) {
				free(buf);
				return -1;
			}
			truth->writes++;
			truth->write_bytes += ret;
			done += ret;
		}
		if (gap_ms)
			usleep(gap_ms * 1000);
	}
	free(buf);
	return 0;
}

/* ---- reads -------------------------------------------------------------- */

/* `extra_messages` counts the messages of a recvmmsg after its first. */
static ssize_t read_variant(int fd, char *buf, size_t len, int variant, uint64_t *extra_messages)
{
	struct iovec iov[2] = { { buf, len / 2 ? len / 2 : len }, { buf + len / 2, len - len / 2 } };
	struct msghdr msg = { .msg_iov = iov, .msg_iovlen = len > 1 ? 2 : 1 };
	struct mmsghdr mmsg[2] = { { .msg_hdr = { .msg_iov = &iov[0], .msg_iovlen = 1 } },
				   { .msg_hdr = { .msg_iov = &iov[1], .msg_iovlen = 1 } } };
	ssize_t ret;

	switch (variant % 6) {
	case 0:
		return read(fd, buf, len);
	case 1:
		return readv(fd, iov, len > 1 ? 2 : 1);
	case 2:
		return recv(fd, buf, len, 0);
	case 3:
		return recvfrom(fd, buf, len, 0, NULL, NULL);
	case 4:
		return recvmsg(fd, &msg, 0);
	default:
		if (len < 2)
			return read(fd, buf, len);
		/* WAITFORONE: block for the first message only. */
		ret = recvmmsg(fd, mmsg, 2, MSG_WAITFORONE, NULL);
		if (ret <= 0)
			return ret;
		*extra_messages += ret > 1;
		return (ssize_t)(mmsg[0].msg_len + (ret > 1 ? mmsg[1].msg_len : 0));
	}
}

/* Read exactly `total` bytes, then expect EOF (which is not a read). */
static int read_exactly(int fd, uint64_t total, enum io_style style, struct side_truth *truth)
{
	char buf[4096];
	uint64_t got = 0;
	int call = 0;

	while (got < total) {
		size_t want = total - got < sizeof(buf) ? total - got : sizeof(buf);
		uint64_t start;
		ssize_t ret;

		if (style == IO_PEEK) {
			if (recv(fd, buf, want, MSG_PEEK) <= 0)
				return -1;
			truth->peeks++;
		}
		start = now_ns();
		ret = style == IO_VARIANTS ? read_variant(fd, buf, want, call++, &truth->extra_mmsg_reads)
					     : read(fd, buf, want);
		truth->read_ns += now_ns() - start;
		if (ret <= 0)
			return -1;
		truth->reads++;
		truth->read_bytes += ret;
		got += ret;
	}
	return read(fd, buf, sizeof(buf)) == 0 ? 0 : -1;
}

static void timed_close(int fd, struct side_truth *truth)
{
	uint64_t start = now_ns();

	close(fd);
	truth->close_ns += now_ns() - start;
	truth->closes++;
}

/* ---- the two sides ------------------------------------------------------- */

static int listen_on(const struct tcp_plan *plan)
{
	struct sockaddr_storage ss;
	socklen_t len = make_sockaddr(plan, &ss);
	int fd = socket(plan->family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ss, len) || listen(fd, 128)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* Read the request, then abort: SO_LINGER 0 makes close() send a RST. */
static int reset_after_request(int fd, const struct tcp_plan *plan, struct side_truth *truth)
{
	struct linger abort_on_close = { .l_onoff = 1, .l_linger = 0 };
	uint64_t total = (uint64_t)plan->request_writes * plan->request_size, got = 0;
	char buf[4096];

	while (got < total) {
		uint64_t start = now_ns();
		ssize_t ret = read(fd, buf, sizeof(buf));

		truth->read_ns += now_ns() - start;
		if (ret <= 0)
			return -1;
		truth->reads++;
		truth->read_bytes += ret;
		got += ret;
	}
	setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof(abort_on_close));
	timed_close(fd, truth);
	return 0;
}

/* The client side of a reset: its read fails, then it closes its end. */
static int expect_reset(int fd, struct side_truth *truth)
{
	char buf[64];

	if (read(fd, buf, sizeof(buf)) >= 0 || errno != ECONNRESET)
		return -1;
	timed_close(fd, truth);
	return 0;
}

static int serve_one(int listen_fd, const struct tcp_plan *plan, struct side_truth *truth)
{
	uint64_t start = now_ns();
	int fd = accept(listen_fd, NULL, NULL);

	truth->accept_ns += now_ns() - start;
	if (fd < 0)
		return -1;
	truth->accepts++;
	if (plan->server_resets)
		return reset_after_request(fd, plan, truth);
	if (read_exactly(fd, (uint64_t)plan->request_writes * plan->request_size, plan->server_style, truth) ||
	    write_all(fd, plan->response_writes, plan->response_size, IO_PLAIN, 0, truth)) {
		close(fd);
		return -1;
	}
	timed_close(fd, truth);
	return 0;
}

static int server_main(void *arg)
{
	struct side_args *args = arg;
	const struct tcp_plan *plan = args->plan;
	int listen_fd = listen_on(plan), err = 0;

	if (listen_fd < 0) {
		perror("# server: listen");
		return 1;
	}
	if (write(args->ready_fd, "R", 1) != 1)
		return 1;
	for (int i = 0; i < plan->connections && !err; i++)
		err = serve_one(listen_fd, plan, args->truth);
	close(listen_fd);
	return err ? 2 : 0;
}

static int timed_connect(const struct tcp_plan *plan, struct side_truth *truth, int *ret_fd)
{
	struct sockaddr_storage ss;
	socklen_t len = make_sockaddr(plan, &ss);
	int fd = socket(plan->family, SOCK_STREAM | SOCK_CLOEXEC, 0), err;
	uint64_t start;

	if (fd < 0)
		return -1;
	start = now_ns();
	err = connect(fd, (struct sockaddr *)&ss, len);
	truth->connect_ns += now_ns() - start;
	truth->connects++;
	if (err) {
		close(fd);
		return -1;
	}
	truth->connect_successes++;
	*ret_fd = fd;
	return 0;
}

static int client_exchange(const struct tcp_plan *plan, struct side_truth *truth)
{
	int fd;

	if (timed_connect(plan, truth, &fd))
		return -1;
	if (write_all(fd, plan->request_writes, plan->request_size, plan->client_style,
		      plan->write_gap_ms, truth)) {
		close(fd);
		return -1;
	}
	if (plan->server_resets)
		return expect_reset(fd, truth);
	if (shutdown(fd, SHUT_WR) ||
	    read_exactly(fd, (uint64_t)plan->response_writes * plan->response_size, IO_PLAIN, truth)) {
		close(fd);
		return -1;
	}
	timed_close(fd, truth);
	return 0;
}

static int client_main(void *arg)
{
	struct side_args *args = arg;
	const struct tcp_plan *plan = args->plan;
	int fd;

	for (int i = 0; i < plan->connections; i++) {
		if (plan->no_server) {
			if (timed_connect(plan, args->truth, &fd) == 0)
				return 3; /* something listened after all */
			continue;
		}
		if (client_exchange(plan, args->truth))
			return 2;
	}
	return 0;
}

/* Connect, send the request, then wait until the test releases us. */
static int holding_client_main(void *arg)
{
	struct side_args *args = arg;
	const struct tcp_plan *plan = args->plan;
	char byte;
	int fd;

	close(args->ready_fd); /* our copy of the release pipe's write end */
	if (timed_connect(plan, args->truth, &fd) ||
	    write_all(fd, plan->request_writes, plan->request_size, IO_PLAIN, 0, args->truth))
		return 2;
	if (read(args->hold_fd, &byte, 1) != 0) /* EOF: released */
		return 2;
	if (shutdown(fd, SHUT_WR) ||
	    read_exactly(fd, (uint64_t)plan->response_writes * plan->response_size, IO_PLAIN, args->truth))
		return 2;
	timed_close(fd, args->truth);
	return 0;
}

static int killed_client_main(void *arg)
{
	struct side_args *args = arg;
	const struct tcp_plan *plan = args->plan;
	int fd;

	if (timed_connect(plan, args->truth, &fd) ||
	    write_all(fd, plan->request_writes, plan->request_size, IO_PLAIN, 0, args->truth))
		return 2;
	if (write(args->hold_fd, "W", 1) != 1)
		return 2;
	pause(); /* SIGKILL arrives here: the socket is released without close() */
	return 0;
}

static pid_t start_server(const struct pod *server, struct side_args *args)
{
	int ready[2];
	char byte;
	pid_t pid;

	if (pipe2(ready, O_CLOEXEC))
		return -1;
	args->ready_fd = ready[1];
	pid = pod_spawn(server, server_main, args);
	close(ready[1]);
	if (pid > 0 && read(ready[0], &byte, 1) != 1) {
		child_wait(pid);
		pid = -1;
	}
	close(ready[0]);
	return pid;
}

pid_t tcp_server_start(const struct pod *server, const struct tcp_plan *plan,
		       struct side_truth *truth)
{
	struct side_args args = { .plan = plan, .truth = truth };

	return start_server(server, &args); /* the child has its own copy of args */
}

pid_t tcp_client_start(const struct pod *client, const struct tcp_plan *plan,
		       struct side_truth *truth)
{
	struct side_args args = { .plan = plan, .truth = truth };

	return pod_spawn(client, client_main, &args);
}

int tcp_client_run(const struct pod *client, const struct tcp_plan *plan, struct side_truth *truth)
{
	return child_wait(tcp_client_start(client, plan, truth));
}

int tcp_run(const struct pod *client, const struct pod *server, const struct tcp_plan *plan,
	    struct tcp_truth *truth)
{
	pid_t server_pid = 0;
	int client_status, server_status = 0;

	if (!plan->no_server) {
		server_pid = tcp_server_start(server, plan, &truth->server);
		if (server_pid < 0)
			return -1;
	}
	client_status = tcp_client_run(client, plan, &truth->client);
	if (server_pid > 0) {
		if (client_status)
			kill(server_pid, SIGKILL);
		server_status = child_wait(server_pid);
	}
	if (client_status || server_status)
		fprintf(stderr, "# workload failed: client status %d, server status %d\n",
			client_status, server_status);
	return client_status || server_status ? -1 : 0;
}

int tcp_run_killed_client(const struct pod *client, const struct pod *server,
			  const struct tcp_plan *plan, struct tcp_truth *truth)
{
	struct side_args server_args = { .plan = plan, .truth = &truth->server };
	struct side_args client_args = { .plan = plan, .truth = &truth->client };
	pid_t server_pid, client_pid;
	int hold[2], server_status;
	char byte;

	if (pipe2(hold, O_CLOEXEC))
		return -1;
	client_args.hold_fd = hold[1];
	server_pid = start_server(server, &server_args);
	if (server_pid < 0)
		return -1;
	client_pid = pod_spawn(client, killed_client_main, &client_args);
	close(hold[1]);
	if (read(hold[0], &byte, 1) != 1) {
		kill(server_pid, SIGKILL);
		child_wait(client_pid);
		child_wait(server_pid);
		close(hold[0]);
		return -1;
	}
	close(hold[0]);
	kill(client_pid, SIGKILL);
	child_wait(client_pid);
	server_status = child_wait(server_pid);
	return server_status ? -1 : 0;
}

int tcp_hold_open(const struct pod *client, const struct pod *server, const struct tcp_plan *plan,
		  struct tcp_truth *truth, struct held_conn *ret_held)
{
	struct side_args server_args = { .plan = plan, .truth = &truth->server };
	struct side_args client_args = { .plan = plan, .truth = &truth->client };
	int release[2];

	ret_held->release_fd = -1;
	ret_held->server_pid = start_server(server, &server_args);
	if (ret_held->server_pid < 0)
		return -1;
	if (pipe2(release, O_CLOEXEC)) {
		kill(ret_held->server_pid, SIGKILL);
		child_wait(ret_held->server_pid);
		return -1;
	}
	client_args.hold_fd = release[0];
	client_args.ready_fd = release[1];
	ret_held->client_pid = pod_spawn(client, holding_client_main, &client_args);
	close(release[0]);
	ret_held->release_fd = release[1];
	return 0;
}

int tcp_hold_release(struct held_conn *held)
{
	int client_status, server_status;

	if (held->release_fd < 0)
		return 0;
	close(held->release_fd);
	held->release_fd = -1;
	client_status = child_wait(held->client_pid);
	server_status = child_wait(held->server_pid);
	return client_status || server_status ? -1 : 0;
}
