// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * loadgen: the benchmark's TCP load for the churn and scale sections. One
 * single-threaded, epoll-driven process per role, each counting exactly
 * what it did, so bench.sh can hold kaccess's numbers against ground truth.
 *
 *   server  listen on every ADDR x PORT; "echo": accept, read the request,
 *           write the response, close; "hold": accept and keep the
 *           connection until the peer closes it, then close it too.
 *   churn   short connections (connect, one request, one response, the
 *           server's end of file, close), CONCURRENCY at a time, for
 *           SECONDS or COUNT connections; port i goes to PORTS[i % n].
 *   hold    open COUNT idle connections, print a ready line, keep them
 *           until SIGTERM, then close them all.
 *
 * Output is NDJSON on stdout, one line per event, flushed at once:
 *   {"type":"server_ready","listeners":N}, then "server_progress" lines
 *   (at most every 100 ms, when a count changed) and "server_done" at SIGTERM;
 *   {"type":"churn_done",...}; {"type":"hold_ready",...}, {"type":"hold_closed",...}.
 *
 * Exit codes: 0 done (failed connections are counted, not fatal), 1 runtime
 * failure, 2 usage error.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQUEST_BYTES 64
#define RESPONSE_BYTES 64
#define MAX_ADDRS 64
#define MAX_EVENTS 256
#define PROGRESS_MS 100
#define LISTEN_BACKLOG 65535
/* After the run's end, in-flight connections get this long to finish. */
#define FINISH_GRACE_NS (10 * NS_PER_S)
#define NS_PER_S 1000000000ULL
#define NS_PER_MS 1000000ULL

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static const char usage_text[] =
	"Usage: loadgen server --listen ADDR[,ADDR...] --ports FIRST[-LAST] --mode echo|hold\n"
	"       loadgen churn  --to ADDR --ports FIRST[-LAST] (--seconds S | --count N)\n"
	"                      [--concurrency C] [--from ADDR[,ADDR...]]\n"
	"       loadgen hold   --to ADDR --ports FIRST[-LAST] --count N [--concurrency C]\n"
	"                      [--from ADDR[,ADDR...]] [--timeout SECONDS]\n"
	"\n"
	"TCP load for selftests/bench/bench.sh, IPv4. Every count it prints is exact:\n"
	"the benchmark compares kaccess's numbers with them.\n"
	"\n"
	"Examples:\n"
	"  loadgen server --listen 10.231.0.2 --ports 9000 --mode echo &\n"
	"  loadgen churn --to 10.231.0.2 --ports 9000 --seconds 5 --concurrency 32\n"
	"  loadgen server --listen 10.231.0.2 --ports 20000-29999 --mode echo &\n"
	"  loadgen churn --to 10.231.0.2 --ports 20000-29999 --count 10000   # one per port\n"
	"  loadgen hold --to 10.231.0.2 --ports 9100-9115 --count 100000 & ...; kill %1\n";

static const char request_text[REQUEST_BYTES + 1] =
	"kaccess bench request: a fixed 64-byte request, nothing else...";
static const char response_text[RESPONSE_BYTES + 1] =
	"kaccess bench response: a fixed 64-byte answer to every request";
_Static_assert(sizeof(request_text) == REQUEST_BYTES + 1, "request size");
_Static_assert(sizeof(response_text) == RESPONSE_BYTES + 1, "response size");

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int signo)
{
	stop_requested = 1;
}

struct options {
	const char *command;
	struct in_addr addrs[MAX_ADDRS]; /* server: --listen; clients: --to (one) */
	unsigned int addr_count;
	struct in_addr from[MAX_ADDRS];  /* clients: source addresses, round robin */
	unsigned int from_count;
	unsigned int first_port, port_count;
	bool hold_mode;                  /* server --mode hold */
	unsigned long long count;        /* clients: connections to make (0: --seconds) */
	unsigned int seconds;
	unsigned int concurrency;
	unsigned int timeout_s;          /* hold: give up opening after this long */
};

static uint64_t monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * NS_PER_S + ts.tv_nsec;
}

/* NDJSON line on stdout, flushed: bench.sh polls the file it goes to. */
static void emit(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void emit(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	putchar('\n');
	fflush(stdout);
}

static void fail(const char *what, int err)
{
	fprintf(stderr, "loadgen: failed to %s: %s\n", what, strerror(err));
}

/* ---- parsing ------------------------------------------------------------- */

static int parse_ull(const char *text, unsigned long long min, unsigned long long max,
		     unsigned long long *ret_value)
{
	unsigned long long value;
	char *end;

	if (!text[0] || text[0] == '-')
		return -EINVAL;
	errno = 0;
	value = strtoull(text, &end, 10);
	if (errno || *end || value < min || value > max)
		return -EINVAL;
	*ret_value = value;
	return 0;
}

static int parse_uint(const char *text, unsigned int min, unsigned int max, unsigned int *ret_value)
{
	unsigned long long value;
	int err = parse_ull(text, min, max, &value);

	if (!err)
		*ret_value = value;
	return err;
}

/* "A[,B...]" into addrs; at most MAX_ADDRS. */
static int parse_addrs(const char *text, struct in_addr *addrs, unsigned int *ret_count)
{
	char copy[MAX_ADDRS * 16 + 1], *token, *save = NULL;
	unsigned int count = 0;

	if (strlen(text) >= sizeof(copy))
		return -EINVAL;
	strcpy(copy, text);
	for (token = strtok_r(copy, ",", &save); token; token = strtok_r(NULL, ",", &save)) {
		if (count == MAX_ADDRS || inet_pton(AF_INET, token, &addrs[count]) != 1)
			return -EINVAL;
		count++;
	}
	if (!count)
		return -EINVAL;
	*ret_count = count;
	return 0;
}

/* "FIRST" or "FIRST-LAST", 1..65535. */
static int parse_ports(const char *text, unsigned int *ret_first, unsigned int *ret_count)
{
	char copy[16], *dash;
	unsigned int first, last;

	if (strlen(text) >= sizeof(copy))
		return -EINVAL;
	strcpy(copy, text);
	dash = strchr(copy, '-');
	if (dash)
		*dash = '\0';
	if (parse_uint(copy, 1, 65535, &first))
		return -EINVAL;
	last = first;
	if (dash && parse_uint(dash + 1, first, 65535, &last))
		return -EINVAL;
	*ret_first = first;
	*ret_count = last - first + 1;
	return 0;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "loadgen: ");
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "; see loadgen --help\n");
	return -EINVAL;
}

static int parse_options(int argc, char **argv, struct options *opt)
{
	static const struct option long_options[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "to", required_argument, NULL, 't' },
		{ "from", required_argument, NULL, 'f' },
		{ "ports", required_argument, NULL, 'p' },
		{ "mode", required_argument, NULL, 'm' },
		{ "count", required_argument, NULL, 'n' },
		{ "seconds", required_argument, NULL, 's' },
		{ "concurrency", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 'T' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool is_server, have_mode = false;
	int option;

	memset(opt, 0, sizeof(*opt));
	opt->concurrency = 32;
	opt->timeout_s = 300;
	if (argc < 2)
		return usage_error("%s", "missing command");
	if (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
		fputs(usage_text, stdout);
		exit(0);
	}
	opt->command = argv[1];
	if (strcmp(opt->command, "server") && strcmp(opt->command, "churn") && strcmp(opt->command, "hold"))
		return usage_error("unknown command '%s'", opt->command);
	is_server = !strcmp(opt->command, "server");
	optind = 2;
	opterr = 0;
	while ((option = getopt_long(argc, argv, "h", long_options, NULL)) != -1) {
		const char *arg = optarg;
		int err = 0;

		switch (option) {
		case 'l':
		case 't':
			if ((option == 'l') != is_server)
				return usage_error("option '%s' does not fit this command", argv[optind - 2]);
			err = parse_addrs(arg, opt->addrs, &opt->addr_count);
			if (!err && option == 't' && opt->addr_count != 1)
				err = -EINVAL;
			break;
		case 'f':
			err = parse_addrs(arg, opt->from, &opt->from_count);
			break;
		case 'p':
			err = parse_ports(arg, &opt->first_port, &opt->port_count);
			break;
		case 'm':
			have_mode = true;
			if (!strcmp(arg, "hold"))
				opt->hold_mode = true;
			else if (strcmp(arg, "echo"))
				err = -EINVAL;
			break;
		case 'n':
			err = parse_ull(arg, 1, 10000000, &opt->count);
			break;
		case 's':
			err = parse_uint(arg, 1, 3600, &opt->seconds);
			break;
		case 'c':
			err = parse_uint(arg, 1, 65536, &opt->concurrency);
			break;
		case 'T':
			err = parse_uint(arg, 1, 3600, &opt->timeout_s);
			break;
		case 'h':
			fputs(usage_text, stdout);
			exit(0);
		default:
			return usage_error("unknown or incomplete option '%s'", argv[optind - 1]);
		}
		if (err)
			return usage_error("bad value '%s'", arg);
	}
	if (optind != argc)
		return usage_error("unexpected argument '%s'", argv[optind]);
	if (!opt->addr_count || !opt->port_count)
		return usage_error("%s needs an address and --ports", opt->command);
	if (is_server && !have_mode)
		return usage_error("%s needs --mode echo or --mode hold", opt->command);
	if (!strcmp(opt->command, "churn") && !opt->count == !opt->seconds)
		return usage_error("%s needs one of --seconds and --count", opt->command);
	if (!strcmp(opt->command, "hold") && !opt->count)
		return usage_error("%s needs --count", opt->command);
	return 0;
}

/* ---- shared -------------------------------------------------------------- */

/* Room for every descriptor the kernel allows (fs.nr_open): 100,000 idle
 * connections need it, and an unused descriptor table costs nothing. */
static int raise_fd_limit(void)
{
	struct rlimit limit;
	unsigned int nr_open = 1048576;
	FILE *file = fopen("/proc/sys/fs/nr_open", "r");

	if (file) {
		if (fscanf(file, "%u", &nr_open) != 1)
			nr_open = 1048576;
		fclose(file);
	}
	limit.rlim_cur = limit.rlim_max = nr_open;
	if (setrlimit(RLIMIT_NOFILE, &limit)) {
		int err = errno;

		/* Not root: keep what we have, up to its hard limit. */
		if (getrlimit(RLIMIT_NOFILE, &limit) || (limit.rlim_cur = limit.rlim_max,
							 setrlimit(RLIMIT_NOFILE, &limit))) {
			fail("raise RLIMIT_NOFILE", err);
			return -err;
		}
	}
	return 0;
}

static int install_signals(void)
{
	struct sigaction stop = { .sa_handler = on_stop_signal }; /* no SA_RESTART: wake epoll */

	if (sigaction(SIGTERM, &stop, NULL) || sigaction(SIGINT, &stop, NULL)) {
		fail("install signal handlers", errno);
		return -errno;
	}
	signal(SIGPIPE, SIG_IGN);
	return 0;
}

static int epoll_set(int epfd, int op, int fd, uint32_t events)
{
	struct epoll_event event = { .events = events, .data.fd = fd };

	return epoll_ctl(epfd, op, fd, &event) ? -errno : 0;
}

/* A per-descriptor byte, indexed by fd, grown on demand. */
struct fd_states {
	unsigned char *state;
	size_t size;
};

static int fd_state_set(struct fd_states *states, int fd, unsigned char value)
{
	if ((size_t)fd >= states->size) {
		size_t size = states->size ? states->size : 1024;
		unsigned char *bigger;

		while (size <= (size_t)fd)
			size *= 2;
		bigger = realloc(states->state, size);
		if (!bigger)
			return -ENOMEM;
		memset(bigger + states->size, 0, size - states->size);
		states->state = bigger;
		states->size = size;
	}
	states->state[fd] = value;
	return 0;
}

static unsigned char fd_state_get(const struct fd_states *states, int fd)
{
	return (size_t)fd < states->size ? states->state[fd] : 0;
}

/* ---- server -------------------------------------------------------------- */

enum server_fd_state {
	SERVER_FD_NONE = 0,
	SERVER_FD_LISTENER,
	SERVER_FD_CONN,
};

struct server_counts {
	unsigned long long accepted, responded, closed, short_requests, errors;
};

static int open_listener(struct in_addr addr, unsigned int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr = addr, .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1, err;

	if (fd < 0)
		return -errno;
	if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) ||
	    bind(fd, (struct sockaddr *)&sin, sizeof(sin)) || listen(fd, LISTEN_BACKLOG)) {
		err = -errno;
		close(fd);
		return err;
	}
	return fd;
}

static void server_close(struct fd_states *states, int fd, struct server_counts *counts)
{
	fd_state_set(states, fd, SERVER_FD_NONE);
	close(fd);
	counts->closed++;
}

static void server_accept(int epfd, int listener, struct fd_states *states, bool hold,
			  struct server_counts *counts)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				counts->errors++;
			return;
		}
		counts->accepted++;
		if (fd_state_set(states, fd, SERVER_FD_CONN) ||
		    epoll_set(epfd, EPOLL_CTL_ADD, fd, EPOLLIN | (hold ? EPOLLRDHUP : 0))) {
			counts->errors++;
			server_close(states, fd, counts);
		}
	}
}

/*
 * echo: the request is REQUEST_BYTES sent in one write by the client and
 * arrives in one segment; a fresh socket's send buffer takes the response
 * whole. Anything else is counted, never waited for.
 */
static void server_serve(struct fd_states *states, int fd, bool hold, struct server_counts *counts)
{
	char buf[4096];
	ssize_t got = read(fd, buf, sizeof(buf));

	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (hold) {
		if (got <= 0) /* the peer closed (or reset): close our end */
			server_close(states, fd, counts);
		return;
	}
	if (got == REQUEST_BYTES) {
		if (write(fd, response_text, RESPONSE_BYTES) == RESPONSE_BYTES)
			counts->responded++;
		else
			counts->errors++;
	} else if (got >= 0) {
		counts->short_requests++;
	} else {
		counts->errors++;
	}
	server_close(states, fd, counts);
}

static void server_report(const char *type, const struct server_counts *c)
{
	emit("{\"type\":\"%s\",\"accepted\":%llu,\"responded\":%llu,\"closed\":%llu,"
	     "\"short_requests\":%llu,\"errors\":%llu}", type, c->accepted, c->responded, c->closed,
	     c->short_requests, c->errors);
}

static int run_server(const struct options *opt)
{
	struct fd_states states = { 0 };
	struct server_counts counts = { 0 }, reported = { 0 };
	struct epoll_event events[MAX_EVENTS];
	unsigned int listeners = 0;
	int epfd = epoll_create1(EPOLL_CLOEXEC), err = 0;

	if (epfd < 0) {
		fail("create epoll", errno);
		return EXIT_RUNTIME;
	}
	for (unsigned int a = 0; a < opt->addr_count; a++) {
		for (unsigned int p = 0; p < opt->port_count; p++) {
			int fd = open_listener(opt->addrs[a], opt->first_port + p);

			if (fd < 0) {
				fprintf(stderr, "loadgen: failed to listen on %s:%u: %s\n",
					inet_ntoa(opt->addrs[a]), opt->first_port + p, strerror(-fd));
				err = fd;
				goto out;
			}
			err = fd_state_set(&states, fd, SERVER_FD_LISTENER);
			if (!err)
				err = epoll_set(epfd, EPOLL_CTL_ADD, fd, EPOLLIN);
			if (err) {
				fail("watch a listener", -err);
				goto out;
			}
			listeners++;
		}
	}
	emit("{\"type\":\"server_ready\",\"listeners\":%u}", listeners);
	while (!stop_requested) {
		int n = epoll_wait(epfd, events, MAX_EVENTS, PROGRESS_MS);

		if (n < 0 && errno != EINTR) {
			err = -errno;
			fail("wait for events", errno);
			goto out;
		}
		for (int i = 0; i < n; i++) {
			int fd = events[i].data.fd;

			if (fd_state_get(&states, fd) == SERVER_FD_LISTENER)
				server_accept(epfd, fd, &states, opt->hold_mode, &counts);
			else if (fd_state_get(&states, fd) == SERVER_FD_CONN)
				server_serve(&states, fd, opt->hold_mode, &counts);
		}
		if (memcmp(&counts, &reported, sizeof(counts))) {
			static uint64_t last_ns;
			uint64_t now = monotonic_ns();

			if (now - last_ns >= PROGRESS_MS * NS_PER_MS) {
				server_report("server_progress", &counts);
				reported = counts;
				last_ns = now;
			}
		}
	}
	server_report("server_done", &counts);
out:
	/* Descriptors (listeners, held connections) close with the process. */
	free(states.state);
	close(epfd);
	return err ? EXIT_RUNTIME : 0;
}

/* ---- clients ------------------------------------------------------------- */

enum client_phase {
	CLIENT_IDLE = 0,
	CLIENT_CONNECTING, /* waiting for EPOLLOUT */
	CLIENT_WAITING,    /* churn: request sent, reading response and end of file */
};

struct client_slot {
	int fd;
	unsigned char phase;
	unsigned int got; /* response bytes read */
};

struct client {
	const struct options *opt;
	int epfd;
	struct client_slot *slots; /* indexed by fd */
	size_t slot_count;
	unsigned long long started, connects, connected, completed, failed, short_responses,
		errors, aborted;
	unsigned long long active; /* connections in flight: connecting or waiting */
	int *held; /* hold: established connections */
	size_t held_count;
};

static struct client_slot *slot_of(struct client *c, int fd)
{
	if ((size_t)fd >= c->slot_count) {
		size_t count = c->slot_count ? c->slot_count : 1024;
		struct client_slot *bigger;

		while (count <= (size_t)fd)
			count *= 2;
		bigger = realloc(c->slots, count * sizeof(*bigger));
		if (!bigger)
			return NULL;
		memset(bigger + c->slot_count, 0, (count - c->slot_count) * sizeof(*bigger));
		c->slots = bigger;
		c->slot_count = count;
	}
	return &c->slots[fd];
}

static void client_drop(struct client *c, struct client_slot *slot)
{
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, slot->fd, NULL);
	close(slot->fd);
	slot->phase = CLIENT_IDLE;
	c->active--;
}

static void client_send_request(struct client *c, struct client_slot *slot)
{
	c->connected++;
	if (!strcmp(c->opt->command, "hold")) {
		/* Idle from now on: nothing to wait for until SIGTERM. */
		epoll_ctl(c->epfd, EPOLL_CTL_DEL, slot->fd, NULL);
		slot->phase = CLIENT_IDLE;
		c->active--;
		c->held[c->held_count++] = slot->fd;
		return;
	}
	if (write(slot->fd, request_text, REQUEST_BYTES) != REQUEST_BYTES ||
	    epoll_set(c->epfd, EPOLL_CTL_MOD, slot->fd, EPOLLIN)) {
		c->errors++;
		client_drop(c, slot);
		return;
	}
	slot->phase = CLIENT_WAITING;
	slot->got = 0;
}

/* Start connection number c->started: port and source round robin. */
static void client_start(struct client *c)
{
	const struct options *opt = c->opt;
	unsigned long long i = c->started++;
	struct sockaddr_in to = {
		.sin_family = AF_INET,
		.sin_addr = opt->addrs[0],
		.sin_port = htons(opt->first_port + i % opt->port_count),
	};
	struct client_slot *slot;
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0) {
		c->failed++;
		return;
	}
	if (opt->from_count) {
		/* The port is chosen at connect(), per destination: without
		 * IP_BIND_ADDRESS_NO_PORT, bind() would take a port for good. */
		struct sockaddr_in from = { .sin_family = AF_INET, .sin_addr = opt->from[i % opt->from_count] };

		if (setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one)) ||
		    bind(fd, (struct sockaddr *)&from, sizeof(from))) {
			c->failed++;
			close(fd);
			return;
		}
	}
	slot = slot_of(c, fd);
	if (!slot) {
		c->failed++;
		close(fd);
		return;
	}
	slot->fd = fd;
	c->connects++;
	if (connect(fd, (struct sockaddr *)&to, sizeof(to)) == 0) {
		if (epoll_set(c->epfd, EPOLL_CTL_ADD, fd, 0)) {
			c->errors++;
			close(fd);
			return;
		}
		slot->phase = CLIENT_CONNECTING;
		c->active++;
		client_send_request(c, slot);
		return;
	}
	if (errno != EINPROGRESS || epoll_set(c->epfd, EPOLL_CTL_ADD, fd, EPOLLOUT)) {
		c->failed++;
		close(fd);
		return;
	}
	slot->phase = CLIENT_CONNECTING;
	c->active++;
}

static void client_event(struct client *c, int fd)
{
	struct client_slot *slot = &c->slots[fd];

	if (slot->phase == CLIENT_CONNECTING) {
		int error = 0;
		socklen_t len = sizeof(error);

		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &len) || error) {
			c->failed++;
			client_drop(c, slot);
			return;
		}
		client_send_request(c, slot);
		return;
	}
	if (slot->phase == CLIENT_WAITING) {
		char buf[512];
		ssize_t got = read(fd, buf, sizeof(buf));

		if (got < 0 && (errno == EAGAIN || errno == EINTR))
			return;
		if (got > 0) {
			slot->got += got;
			return;
		}
		/* End of file (or an error): the exchange is over. */
		if (got == 0 && slot->got == RESPONSE_BYTES)
			c->completed++;
		else if (got == 0)
			c->short_responses++;
		else
			c->errors++;
		client_drop(c, slot);
	}
}

/* Run until no new connection is due and none is in flight, or until hard_end_ns. */
static int client_pump(struct client *c, uint64_t end_ns, uint64_t hard_end_ns)
{
	struct epoll_event events[MAX_EVENTS];

	for (;;) {
		uint64_t now = monotonic_ns();
		bool more = c->opt->count ? c->started < c->opt->count : now < end_ns;
		int n;

		if (stop_requested || now >= hard_end_ns)
			break;
		while (more && c->active < c->opt->concurrency) {
			client_start(c);
			more = c->opt->count ? c->started < c->opt->count : true;
		}
		if (!more && c->active == 0)
			return 0;
		n = epoll_wait(c->epfd, events, MAX_EVENTS, 10);
		if (n < 0 && errno != EINTR) {
			fail("wait for events", errno);
			return -errno;
		}
		for (int i = 0; i < n; i++)
			client_event(c, events[i].data.fd);
	}
	/* Out of time: whatever is still in flight is aborted and counted. */
	for (size_t fd = 0; fd < c->slot_count; fd++) {
		if (c->slots[fd].phase != CLIENT_IDLE) {
			if (c->slots[fd].phase == CLIENT_CONNECTING)
				c->failed++;
			else
				c->aborted++;
			client_drop(c, &c->slots[fd]);
		}
	}
	return 0;
}

static int run_churn(const struct options *opt)
{
	struct client c = { .opt = opt };
	uint64_t started, elapsed, end;
	int err;

	c.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c.epfd < 0) {
		fail("create epoll", errno);
		return EXIT_RUNTIME;
	}
	started = monotonic_ns();
	end = opt->count ? UINT64_MAX - FINISH_GRACE_NS : started + opt->seconds * NS_PER_S;
	err = client_pump(&c, end, opt->count ? started + (uint64_t)opt->timeout_s * NS_PER_S
					      : end + FINISH_GRACE_NS);
	elapsed = monotonic_ns() - started;
	emit("{\"type\":\"churn_done\",\"connects\":%llu,\"connected\":%llu,\"completed\":%llu,"
	     "\"failed\":%llu,\"short_responses\":%llu,\"errors\":%llu,\"aborted\":%llu,"
	     "\"elapsed_ns\":%llu,\"connections_per_s\":%.1f,\"interrupted\":%s}",
	     c.connects, c.connected, c.completed, c.failed, c.short_responses, c.errors, c.aborted,
	     (unsigned long long)elapsed, elapsed ? c.completed * 1e9 / elapsed : 0.0,
	     stop_requested ? "true" : "false");
	free(c.slots);
	close(c.epfd);
	return err ? EXIT_RUNTIME : 0;
}

static int run_hold(const struct options *opt)
{
	struct client c = { .opt = opt };
	uint64_t started, opened_ns, closing;
	unsigned long long closed = 0;
	int err;

	c.epfd = epoll_create1(EPOLL_CLOEXEC);
	c.held = calloc(opt->count, sizeof(*c.held));
	if (c.epfd < 0 || !c.held) {
		fail("set up", c.held ? errno : ENOMEM);
		return EXIT_RUNTIME;
	}
	started = monotonic_ns();
	err = client_pump(&c, UINT64_MAX - FINISH_GRACE_NS, started + (uint64_t)opt->timeout_s * NS_PER_S);
	opened_ns = monotonic_ns() - started;
	emit("{\"type\":\"hold_ready\",\"connections\":%zu,\"connects\":%llu,\"failed\":%llu,"
	     "\"errors\":%llu,\"elapsed_ns\":%llu,\"connections_per_s\":%.1f}",
	     c.held_count, c.connects, c.failed, c.errors, (unsigned long long)opened_ns,
	     opened_ns ? c.held_count * 1e9 / opened_ns : 0.0);
	/* Hold until SIGTERM; give up after --timeout, so nothing outlives a lost bench. */
	closing = monotonic_ns() + (uint64_t)opt->timeout_s * NS_PER_S;
	while (!stop_requested && !err && monotonic_ns() < closing)
		usleep(100 * 1000);
	closing = monotonic_ns();
	for (size_t i = 0; i < c.held_count; i++)
		if (close(c.held[i]) == 0)
			closed++;
	emit("{\"type\":\"hold_closed\",\"closed\":%llu,\"elapsed_ns\":%llu}", closed,
	     (unsigned long long)(monotonic_ns() - closing));
	free(c.held);
	free(c.slots);
	close(c.epfd);
	return err ? EXIT_RUNTIME : 0;
}

int main(int argc, char **argv)
{
	struct options opt;

	if (parse_options(argc, argv, &opt))
		return EXIT_USAGE;
	if (raise_fd_limit() || install_signals())
		return EXIT_RUNTIME;
	if (!strcmp(opt.command, "server"))
		return run_server(&opt);
	if (!strcmp(opt.command, "churn"))
		return run_churn(&opt);
	return run_hold(&opt);
}
