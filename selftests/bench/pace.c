// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * pace: HTTP/1.1 keep-alive GET requests at a fixed rate, for the oap
 * section of `make bench`, which must measure the shipper at a given
 * request rate (wrk only goes flat out).
 *
 * CONNECTIONS connections to ADDR:PORT each carry one request at a time.
 * Request k is due at k / RATE seconds after the start; every millisecond
 * the due requests go out on idle connections (a request that finds none
 * waits for the next response; backlog_max says how far behind it fell). Responses are read to
 * the end of their Content-Length body. The run stops sending after
 * SECONDS and waits up to 2 s for the answers in flight.
 *
 * Output: one NDJSON line at the end,
 *   {"type":"pace_done","requests":N,"responses":N,"errors":N,
 *    "seconds":S,"requests_per_s":R,"backlog_max":N}
 *
 * Exit codes: 0 done, 1 runtime failure (no connection), 2 usage error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_cli.h"

#define NS_PER_MS 1000000ULL
#define MAX_CONNECTIONS 1024
#define RESPONSE_BUFFER_BYTES 65536
#define DRAIN_GRACE_NS (2 * NS_PER_S)
#define TICK_MS 1

static const char usage_text[] =
	"Usage: pace --addr IPV4 --port PORT --rate REQ_PER_S --connections N --seconds S\n"
	"            [--path PATH]\n"
	"\n"
	"Send HTTP/1.1 keep-alive GET requests at REQ_PER_S over N connections for\n"
	"S seconds, one request at a time per connection; print one NDJSON line.\n"
	"\n"
	"Example:\n"
	"  pace --addr 10.0.0.2 --port 80 --rate 10000 --connections 16 --seconds 20\n";

struct options {
	struct in_addr addr;
	unsigned int port, rate, connections, seconds;
	const char *path;
};

struct connection {
	int fd;
	bool busy;
	size_t received;           /* bytes of the current response so far */
	char buffer[RESPONSE_BUFFER_BYTES];
};

struct pacer {
	struct options opt;
	struct connection *conns;
	unsigned int *idle;        /* stack of idle connection indexes */
	unsigned int idle_count;
	int epfd;
	char request[512];
	size_t request_len;
	uint64_t requests, responses, errors;
	uint64_t backlog_max;      /* the most requests overdue at once */
};

static int usage_error(const char *what)
{
	fprintf(stderr, "pace: %s\n\n%s", what, usage_text);
	return 2;
}

static int parse_options(int argc, char **argv, struct options *opt)
{
	static const struct option longopts[] = {
		{ "addr", required_argument, NULL, 'a' },
		{ "port", required_argument, NULL, 'p' },
		{ "rate", required_argument, NULL, 'r' },
		{ "connections", required_argument, NULL, 'c' },
		{ "seconds", required_argument, NULL, 's' },
		{ "path", required_argument, NULL, 'u' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool have_addr = false;
	int c;

	*opt = (struct options){ .path = "/" };
	while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
		switch (c) {
		case 'a':
			if (inet_pton(AF_INET, optarg, &opt->addr) != 1)
				return usage_error("--addr: not an IPv4 address");
			have_addr = true;
			break;
		case 'p':
			if (bench_parse_uint(optarg, 1, 65535, &opt->port))
				return usage_error("--port: 1..65535");
			break;
		case 'r':
			if (bench_parse_uint(optarg, 1, 1000000, &opt->rate))
				return usage_error("--rate: 1..1000000 requests a second");
			break;
		case 'c':
			if (bench_parse_uint(optarg, 1, MAX_CONNECTIONS, &opt->connections))
				return usage_error("--connections: 1..1024");
			break;
		case 's':
			if (bench_parse_uint(optarg, 1, 600, &opt->seconds))
				return usage_error("--seconds: 1..600");
			break;
		case 'u':
			if (optarg[0] != '/' || strlen(optarg) > 256)
				return usage_error("--path: starts with '/', at most 256 bytes");
			opt->path = optarg;
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			return usage_error("unknown option");
		}
	}
	if (!have_addr || !opt->port || !opt->rate || !opt->connections || !opt->seconds)
		return usage_error("--addr, --port, --rate, --connections and --seconds are required");
	return 0;
}

static int set_nonblocking(int fd)
{
	int flags = fcntl(fd, F_GETFL);

	return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static int connect_one(const struct options *opt)
{
	struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons(opt->port), .sin_addr = opt->addr };
	int one = 1, fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (fd < 0)
		return -1;
	/* connect blocking (loopback or a veth: at once), then non-blocking I/O */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) ||
	    set_nonblocking(fd)) {
		close(fd);
		return -1;
	}
	return fd;
}

static int connection_open(struct pacer *p, unsigned int index)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.u32 = index };
	struct connection *conn = &p->conns[index];

	conn->fd = connect_one(&p->opt);
	if (conn->fd < 0)
		return -1;
	if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, conn->fd, &ev)) {
		close(conn->fd);
		conn->fd = -1;
		return -1;
	}
	conn->busy = false;
	conn->received = 0;
	p->idle[p->idle_count++] = index;
	return 0;
}

static void idle_remove(struct pacer *p, unsigned int index)
{
	for (unsigned int i = 0; i < p->idle_count; i++) {
		if (p->idle[i] == index) {
			p->idle[i] = p->idle[--p->idle_count];
			return;
		}
	}
}

/*
 * A closed or broken connection (the server ends keep-alive connections
 * after so many requests): its request, if one was in flight, failed; a
 * fresh connection replaces it.
 */
static void connection_replace(struct pacer *p, unsigned int index)
{
	struct connection *conn = &p->conns[index];

	if (conn->busy)
		p->errors++;
	else
		idle_remove(p, index);
	epoll_ctl(p->epfd, EPOLL_CTL_DEL, conn->fd, NULL);
	close(conn->fd);
	conn->fd = -1;
	if (connection_open(p, index))
		p->errors++; /* stays closed: one connection fewer */
}

static void send_request(struct pacer *p)
{
	unsigned int index = p->idle[--p->idle_count];
	struct connection *conn = &p->conns[index];
	ssize_t sent = send(conn->fd, p->request, p->request_len, MSG_NOSIGNAL);

	p->requests++;
	conn->busy = true;
	conn->received = 0;
	/* a small request on an idle keep-alive connection goes whole */
	if (sent != (ssize_t)p->request_len)
		connection_replace(p, index);
}

/*
 * Bytes of the response so far in buf[0..len): 1 when it is complete
 * (headers and Content-Length body), 0 when more must come, -1 when it is
 * not a response we can follow.
 */
static int response_complete(const char *buf, size_t len)
{
	const char *end = memmem(buf, len, "\r\n\r\n", 4);
	size_t header_len, body_len = 0;
	const char *line;

	if (!end)
		return len < RESPONSE_BUFFER_BYTES ? 0 : -1;
	if (len < 12 || memcmp(buf, "HTTP/1.1 ", 9))
		return -1;
	header_len = (size_t)(end - buf) + 4;
	for (line = memchr(buf, '\n', header_len); line && line < end; line = memchr(line, '\n', (size_t)(end - line))) {
		line++;
		if (!strncasecmp(line, "Content-Length:", 15))
			body_len = strtoul(line + 15, NULL, 10);
	}
	if (len > header_len + body_len)
		return -1; /* more than one response: nothing was pipelined */
	return len == header_len + body_len;
}

static void connection_readable(struct pacer *p, unsigned int index)
{
	struct connection *conn = &p->conns[index];
	ssize_t got = recv(conn->fd, conn->buffer + conn->received,
			   sizeof(conn->buffer) - conn->received, 0);
	int complete;

	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (got <= 0 || !conn->busy) {
		connection_replace(p, index);
		return;
	}
	conn->received += (size_t)got;
	complete = response_complete(conn->buffer, conn->received);
	if (complete < 0) {
		connection_replace(p, index);
		return;
	}
	if (!complete)
		return;
	p->responses++;
	conn->busy = false;
	conn->received = 0;
	p->idle[p->idle_count++] = index;
}

static void poll_once(struct pacer *p, int timeout_ms)
{
	struct epoll_event events[64];
	int n = epoll_wait(p->epfd, events, 64, timeout_ms);

	for (int i = 0; i < n; i++)
		connection_readable(p, events[i].data.u32);
}

/* Send what is due by now (request k at k / rate s); the rest waits. */
static void send_due(struct pacer *p, uint64_t start_ns, uint64_t now_ns)
{
	uint64_t due = (now_ns - start_ns) * p->opt.rate / NS_PER_S;

	if (due > p->requests && due - p->requests > p->backlog_max)
		p->backlog_max = due - p->requests;
	while (due > p->requests && p->idle_count)
		send_request(p);
}

static int pacer_init(struct pacer *p)
{
	char addr[INET_ADDRSTRLEN];

	p->conns = calloc(p->opt.connections, sizeof(*p->conns));
	p->idle = calloc(p->opt.connections, sizeof(*p->idle));
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (!p->conns || !p->idle || p->epfd < 0)
		return -1;
	inet_ntop(AF_INET, &p->opt.addr, addr, sizeof(addr));
	p->request_len = (size_t)snprintf(p->request, sizeof(p->request),
					  "GET %s HTTP/1.1\r\nHost: %s:%u\r\nUser-Agent: kaccess-pace\r\n\r\n",
					  p->opt.path, addr, p->opt.port);
	for (unsigned int i = 0; i < p->opt.connections; i++) {
		p->conns[i].fd = -1;
		if (connection_open(p, i)) {
			fprintf(stderr, "pace: cannot connect to %s:%u: %s\n", addr, p->opt.port,
				strerror(errno));
			return -1;
		}
	}
	return 0;
}

int main(int argc, char **argv)
{
	struct pacer p = { .epfd = -1 };
	uint64_t start_ns, end_ns, stop_ns, now_ns;
	int err = parse_options(argc, argv, &p.opt);

	if (err)
		return err;
	if (pacer_init(&p))
		return 1;
	start_ns = bench_monotonic_ns();
	end_ns = start_ns + p.opt.seconds * NS_PER_S;
	for (now_ns = start_ns; now_ns < end_ns; now_ns = bench_monotonic_ns()) {
		send_due(&p, start_ns, now_ns);
		poll_once(&p, TICK_MS);
	}
	stop_ns = now_ns;
	while (p.idle_count < p.opt.connections && bench_monotonic_ns() < stop_ns + DRAIN_GRACE_NS)
		poll_once(&p, TICK_MS);
	printf("{\"type\":\"pace_done\",\"requests\":%llu,\"responses\":%llu,\"errors\":%llu,"
	       "\"seconds\":%.3f,\"requests_per_s\":%.1f,\"backlog_max\":%llu}\n",
	       (unsigned long long)p.requests, (unsigned long long)p.responses,
	       (unsigned long long)p.errors, (double)(stop_ns - start_ns) / NS_PER_S,
	       (double)p.responses * NS_PER_S / (double)(stop_ns - start_ns),
	       (unsigned long long)p.backlog_max);
	return 0;
}
