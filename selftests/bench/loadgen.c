// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * loadgen: the benchmark's TCP load for the churn and scale sections,
 * epoll-driven, each role counting exactly what it did, so bench.sh can
 * hold kaccess's numbers against ground truth.
 *
 *   server  listen on every ADDR x PORT; "echo": accept, read the request,
 *           write the response, close; "hold": accept and keep the
 *           connection until the peer closes it, then close it too.
 *   churn   short connections (connect, one request, one response, the
 *           server's end of file, close), CONCURRENCY at a time, for
 *           SECONDS or COUNT connections; connection i goes to port i % n.
 *   hold    open COUNT idle connections, print a ready line, keep them
 *           until SIGTERM, then close them all.
 *
 * A process holds at most RLIMIT_NOFILE descriptors, and raising the hard
 * limit takes CAP_SYS_RESOURCE: server and hold split their work over
 * --processes workers, which count into shared memory; the parent prints.
 *
 * Output is NDJSON on stdout, one line per event, flushed at once:
 *   server: "server_ready", "server_progress" (at most every 100 ms, when a
 *   count changed), "server_done" with the totals at SIGTERM;
 *   churn: "churn_done"; hold: "hold_ready", then "hold_closed" at SIGTERM.
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
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_cli.h"

#define REQUEST_BYTES 64
#define RESPONSE_BYTES 64
#define MAX_ADDRS 64
#define MAX_PROCESSES 64
#define MAX_EVENTS 256
#define PROGRESS_MS 100
#define LISTEN_BACKLOG 65535
/* After the run's end, in-flight connections get this long to finish. */
#define FINISH_GRACE_NS (10 * NS_PER_S)
#define NS_PER_MS 1000000ULL

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2

static const char usage_text[] =
	"Usage: loadgen server --listen ADDR[,ADDR...] --ports FIRST[-LAST] --mode echo|hold\n"
	"                      [--processes P]\n"
	"       loadgen churn  --to ADDR --ports FIRST[-LAST] (--seconds S | --count N)\n"
	"                      [--concurrency C] [--from ADDR[,ADDR...]] [--timeout SECONDS]\n"
	"       loadgen hold   --to ADDR --ports FIRST[-LAST] --count N [--concurrency C]\n"
	"                      [--from ADDR[,ADDR...]] [--timeout SECONDS] [--processes P]\n"
	"\n"
	"  --concurrency C  connections in flight per process (default 32)\n"
	"  --from ADDR,...  source addresses, round robin (default: the route's)\n"
	"  --timeout S      churn --count, hold: give up after S seconds (default 300);\n"
	"                   hold also closes everything S seconds after it is ready\n"
	"  --processes P    worker processes, 1..64; worker k takes ports k, k + P, ...\n"
	"                   (server) or connections k, k + P, ... (hold)\n"
	"\n"
	"TCP load for selftests/bench/bench.sh, IPv4. Every count it prints is exact:\n"
	"the benchmark compares kaccess's numbers with them.\n"
	"\n"
	"Examples:\n"
	"  loadgen server --listen 10.231.0.2 --ports 9000 --mode echo &\n"
	"  loadgen churn --to 10.231.0.2 --ports 9000 --seconds 5 --concurrency 32\n"
	"  loadgen server --listen 10.231.0.2 --ports 20000-29999 --mode echo &\n"
	"  loadgen churn --to 10.231.0.2 --ports 20000-29999 --count 10000   # one per port\n"
	"  loadgen server --listen 10.231.0.2 --ports 9100-9163 --mode hold --processes 8 &\n"
	"  loadgen hold --to 10.231.0.2 --ports 9100-9163 --count 100000 --processes 8 & ...; kill %1\n";

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
	unsigned int processes;          /* server, hold: worker processes */
};

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
	if (bench_parse_uint(copy, 1, 65535, &first))
		return -EINVAL;
	last = first;
	if (dash && bench_parse_uint(dash + 1, first, 65535, &last))
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
		{ "processes", required_argument, NULL, 'P' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	bool is_server, have_mode = false;
	int option;

	memset(opt, 0, sizeof(*opt));
	opt->concurrency = 32;
	opt->timeout_s = 300;
	opt->processes = 1;
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
			err = bench_parse_ull(arg, 1, 10000000, &opt->count);
			break;
		case 's':
			err = bench_parse_uint(arg, 1, 3600, &opt->seconds);
			break;
		case 'c':
			err = bench_parse_uint(arg, 1, 65536, &opt->concurrency);
			break;
		case 'T':
			err = bench_parse_uint(arg, 1, 3600, &opt->timeout_s);
			break;
		case 'P':
			err = bench_parse_uint(arg, 1, MAX_PROCESSES, &opt->processes);
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
	if (!strcmp(opt->command, "churn") && opt->processes != 1)
		return usage_error("%s runs in one process", opt->command);
	return 0;
}

/* ---- shared -------------------------------------------------------------- */

/* As many descriptors as allowed: fs.nr_open with CAP_SYS_RESOURCE, else the
 * hard limit (--processes spreads the rest); an unused table costs nothing. */
static int raise_fd_limit(void)
{
	struct rlimit limit = { .rlim_cur = 1048576 };
	FILE *file = fopen("/proc/sys/fs/nr_open", "r");

	if (file) {
		unsigned long nr_open;

		if (fscanf(file, "%lu", &nr_open) == 1)
			limit.rlim_cur = nr_open;
		fclose(file);
	}
	limit.rlim_max = limit.rlim_cur;
	if (setrlimit(RLIMIT_NOFILE, &limit) == 0)
		return 0;
	/* No CAP_SYS_RESOURCE: up to the hard limit. */
	if (getrlimit(RLIMIT_NOFILE, &limit))
		return -errno;
	limit.rlim_cur = limit.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &limit)) {
		fail("raise RLIMIT_NOFILE", errno);
		return -errno;
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

/* ---- worker processes ----------------------------------------------------- */

/*
 * A process may hold only RLIMIT_NOFILE descriptors, and raising the hard
 * limit needs CAP_SYS_RESOURCE (which the benchmark may not have): the server
 * and the hold client split their work over --processes workers. Each worker
 * counts into its own slot of a shared mapping; the parent sums the slots and
 * does all the printing.
 */
struct worker_slot {
	uint64_t ready;          /* server: listening; hold: done opening */
	uint64_t finished;       /* the worker has stopped and its counts are final */
	/* server */
	uint64_t listeners, accepted, responded, closed, short_requests, errors, fd_limit;
	/* hold */
	uint64_t connects, connected, failed, held, released;
};

/* Single writer per slot: a relaxed store is enough for the parent's loads. */
#define SLOT_ADD(field, n) __atomic_store_n(&(field), (field) + (n), __ATOMIC_RELAXED)
#define SLOT_GET(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

struct workers {
	struct worker_slot *slots;
	pid_t pids[MAX_PROCESSES];
	unsigned int count;
};

static void worker_sum(const struct workers *w, struct worker_slot *ret_sum)
{
	memset(ret_sum, 0, sizeof(*ret_sum));
	for (unsigned int i = 0; i < w->count; i++) {
		const uint64_t *from = (const uint64_t *)&w->slots[i];
		uint64_t *to = (uint64_t *)ret_sum;

		for (size_t f = 0; f < sizeof(*ret_sum) / sizeof(uint64_t); f++)
			to[f] += __atomic_load_n(&from[f], __ATOMIC_RELAXED);
	}
}

/* How many workers have `field` set (ready, finished). */
static unsigned int workers_with(const struct workers *w, size_t offset)
{
	unsigned int n = 0;

	for (unsigned int i = 0; i < w->count; i++)
		n += __atomic_load_n((const uint64_t *)((const char *)&w->slots[i] + offset),
				     __ATOMIC_RELAXED) != 0;
	return n;
}

/* Fork `count` workers running work(opt, index, slot); 0 or -errno. */
static int workers_start(struct workers *w, unsigned int count, const struct options *opt,
			 int (*work)(const struct options *opt, unsigned int index, struct worker_slot *slot))
{
	pid_t parent = getpid();

	w->slots = mmap(NULL, count * sizeof(*w->slots), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (w->slots == MAP_FAILED) {
		w->slots = NULL;
		fail("map the workers' counters", errno);
		return -errno;
	}
	fflush(stdout);
	for (w->count = 0; w->count < count; w->count++) {
		pid_t pid = fork();

		if (pid < 0) {
			fail("start a worker", errno);
			return -errno;
		}
		if (pid == 0) {
			int status;

			/* A worker never outlives the parent, whatever kills it. */
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(EXIT_RUNTIME);
			status = work(opt, w->count, &w->slots[w->count]);
			__atomic_store_n(&w->slots[w->count].finished, 1, __ATOMIC_RELEASE);
			_exit(status);
		}
		w->pids[w->count] = pid;
	}
	return 0;
}

/* SIGTERM every worker and reap them: 10 s, then SIGKILL. 0 when all exited 0. */
static int workers_stop(struct workers *w)
{
	uint64_t give_up = bench_monotonic_ns() + 10 * NS_PER_S;
	int failed = 0;

	for (unsigned int i = 0; i < w->count; i++)
		if (w->pids[i] > 0)
			kill(w->pids[i], SIGTERM);
	for (unsigned int i = 0; i < w->count; i++) {
		int status;

		if (w->pids[i] <= 0)
			continue;
		while (waitpid(w->pids[i], &status, WNOHANG) == 0) {
			if (bench_monotonic_ns() > give_up)
				kill(w->pids[i], SIGKILL);
			usleep(10 * 1000);
		}
		if (!WIFEXITED(status) || WEXITSTATUS(status))
			failed = 1;
		w->pids[i] = 0;
	}
	return failed ? -ECHILD : 0;
}

/* A worker that exited on its own (it should wait for SIGTERM): -ECHILD. */
static int workers_check(struct workers *w)
{
	for (unsigned int i = 0; i < w->count; i++) {
		int status;

		if (w->pids[i] > 0 && waitpid(w->pids[i], &status, WNOHANG) == w->pids[i]) {
			w->pids[i] = 0;
			fprintf(stderr, "loadgen: worker %u exited early (status %d)\n", i,
				WIFEXITED(status) ? WEXITSTATUS(status) : -1);
			return -ECHILD;
		}
	}
	return 0;
}

static void workers_free(struct workers *w)
{
	if (w->slots)
		munmap(w->slots, w->count * sizeof(*w->slots));
}

/* ---- server -------------------------------------------------------------- */

enum server_fd_state {
	SERVER_FD_NONE = 0,
	SERVER_FD_LISTENER,
	SERVER_FD_CONN,
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

static void server_close(struct fd_states *states, int fd, struct worker_slot *slot)
{
	fd_state_set(states, fd, SERVER_FD_NONE);
	close(fd);
	SLOT_ADD(slot->closed, 1);
}

static void server_accept(int epfd, int listener, struct fd_states *states, bool hold,
			  struct worker_slot *slot)
{
	for (int i = 0; i < 64; i++) {
		int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE) {
				/* Out of descriptors: stop accepting here rather
				 * than spin on a listener that stays readable. */
				SLOT_ADD(slot->fd_limit, 1);
				epoll_ctl(epfd, EPOLL_CTL_DEL, listener, NULL);
			} else if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED) {
				SLOT_ADD(slot->errors, 1);
			}
			return;
		}
		SLOT_ADD(slot->accepted, 1);
		if (fd_state_set(states, fd, SERVER_FD_CONN) ||
		    epoll_set(epfd, EPOLL_CTL_ADD, fd, EPOLLIN | (hold ? EPOLLRDHUP : 0))) {
			SLOT_ADD(slot->errors, 1);
			server_close(states, fd, slot);
		}
	}
}

/*
 * echo: the request is REQUEST_BYTES sent in one write by the client and
 * arrives in one segment; a fresh socket's send buffer takes the response
 * whole. Anything else is counted, never waited for.
 */
static void server_serve(struct fd_states *states, int fd, bool hold, struct worker_slot *slot)
{
	char buf[4096];
	ssize_t got = read(fd, buf, sizeof(buf));

	if (got < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (hold) {
		if (got <= 0) /* the peer closed (or reset): close our end */
			server_close(states, fd, slot);
		return;
	}
	if (got == REQUEST_BYTES) {
		if (write(fd, response_text, RESPONSE_BYTES) == RESPONSE_BYTES)
			SLOT_ADD(slot->responded, 1);
		else
			SLOT_ADD(slot->errors, 1);
	} else if (got >= 0) {
		SLOT_ADD(slot->short_requests, 1);
	} else {
		SLOT_ADD(slot->errors, 1);
	}
	server_close(states, fd, slot);
}

/* Worker `index` of P listens on the ports whose offset is index modulo P. */
static int server_work(const struct options *opt, unsigned int index, struct worker_slot *slot)
{
	struct fd_states states = { 0 };
	struct epoll_event events[MAX_EVENTS];
	int epfd = epoll_create1(EPOLL_CLOEXEC), err = 0;

	if (epfd < 0) {
		fail("create epoll", errno);
		return EXIT_RUNTIME;
	}
	for (unsigned int a = 0; a < opt->addr_count; a++) {
		for (unsigned int p = index; p < opt->port_count; p += opt->processes) {
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
			SLOT_ADD(slot->listeners, 1);
		}
	}
	__atomic_store_n(&slot->ready, 1, __ATOMIC_RELEASE);
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
				server_accept(epfd, fd, &states, opt->hold_mode, slot);
			else if (fd_state_get(&states, fd) == SERVER_FD_CONN)
				server_serve(&states, fd, opt->hold_mode, slot);
		}
	}
out:
	/* Descriptors (listeners, held connections) close with the process. */
	free(states.state);
	close(epfd);
	return err ? EXIT_RUNTIME : 0;
}

static void server_report(const char *type, const struct worker_slot *c)
{
	emit("{\"type\":\"%s\",\"accepted\":%llu,\"responded\":%llu,\"closed\":%llu,"
	     "\"short_requests\":%llu,\"errors\":%llu,\"fd_limit\":%llu}", type,
	     (unsigned long long)c->accepted, (unsigned long long)c->responded,
	     (unsigned long long)c->closed, (unsigned long long)c->short_requests,
	     (unsigned long long)c->errors, (unsigned long long)c->fd_limit);
}

static int run_server(const struct options *opt)
{
	struct workers w = { 0 };
	struct worker_slot sum, reported = { 0 };
	bool announced = false;
	int err = workers_start(&w, opt->processes, opt, server_work);

	while (!err && !stop_requested) {
		usleep(PROGRESS_MS * 1000);
		err = workers_check(&w);
		worker_sum(&w, &sum);
		if (!announced && workers_with(&w, offsetof(struct worker_slot, ready)) == w.count) {
			emit("{\"type\":\"server_ready\",\"listeners\":%llu,\"processes\":%u}",
			     (unsigned long long)sum.listeners, w.count);
			announced = true;
		}
		if (announced && (sum.accepted != reported.accepted || sum.closed != reported.closed ||
				  sum.errors != reported.errors || sum.fd_limit != reported.fd_limit)) {
			server_report("server_progress", &sum);
			reported = sum;
		}
	}
	if (workers_stop(&w) && !err)
		err = -ECHILD;
	worker_sum(&w, &sum);
	server_report("server_done", &sum);
	workers_free(&w);
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
	unsigned long long target; /* connections to start; 0: until end_ns */
	unsigned int index_first, index_step; /* connection j is number first + j * step */
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

/*
 * Start this process's next connection. Connection number i goes to port
 * i % ports and from source i % sources: one process's connections to every
 * port; hold worker k of P takes numbers k, k + P, ... so with ports a
 * multiple of P it talks to server worker k alone.
 */
static void client_start(struct client *c)
{
	const struct options *opt = c->opt;
	unsigned long long i = c->index_first + c->started++ * c->index_step;
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
		uint64_t now = bench_monotonic_ns();
		bool more = c->target ? c->started < c->target : now < end_ns;
		int n;

		if (stop_requested || now >= hard_end_ns)
			break;
		while (more && c->active < c->opt->concurrency) {
			client_start(c);
			more = c->target ? c->started < c->target : true;
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
	struct client c = { .opt = opt, .target = opt->count, .index_step = 1 };
	uint64_t started, elapsed, end;
	int err;

	c.epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c.epfd < 0) {
		fail("create epoll", errno);
		return EXIT_RUNTIME;
	}
	started = bench_monotonic_ns();
	end = opt->count ? UINT64_MAX - FINISH_GRACE_NS : started + opt->seconds * NS_PER_S;
	err = client_pump(&c, end, opt->count ? started + (uint64_t)opt->timeout_s * NS_PER_S
					      : end + FINISH_GRACE_NS);
	elapsed = bench_monotonic_ns() - started;
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

/* Hold worker `index`: its share of --count, then idle until SIGTERM. */
static int hold_work(const struct options *opt, unsigned int index, struct worker_slot *slot)
{
	struct client c = {
		.opt = opt,
		.target = opt->count / opt->processes + (index < opt->count % opt->processes),
		.index_first = index,
		.index_step = opt->processes,
	};
	uint64_t hard_end = bench_monotonic_ns() + (uint64_t)opt->timeout_s * NS_PER_S;
	int err;

	c.epfd = epoll_create1(EPOLL_CLOEXEC);
	c.held = calloc(c.target, sizeof(*c.held));
	if (c.epfd < 0 || !c.held) {
		fail("set up", c.held ? errno : ENOMEM);
		return EXIT_RUNTIME;
	}
	err = client_pump(&c, UINT64_MAX - FINISH_GRACE_NS, hard_end);
	SLOT_ADD(slot->connects, c.connects);
	SLOT_ADD(slot->connected, c.connected);
	SLOT_ADD(slot->failed, c.failed);
	SLOT_ADD(slot->errors, c.errors);
	SLOT_ADD(slot->held, c.held_count);
	__atomic_store_n(&slot->ready, 1, __ATOMIC_RELEASE);
	/* Idle until SIGTERM; the parent's --timeout bounds the wait. */
	while (!stop_requested)
		usleep(10 * 1000);
	for (size_t i = 0; i < c.held_count; i++)
		if (close(c.held[i]) == 0)
			SLOT_ADD(slot->released, 1);
	free(c.held);
	free(c.slots);
	close(c.epfd);
	return err ? EXIT_RUNTIME : 0;
}

static int run_hold(const struct options *opt)
{
	struct workers w = { 0 };
	struct worker_slot sum;
	uint64_t started = bench_monotonic_ns(), opened_ns = 0, closing;
	uint64_t give_up = started + (uint64_t)opt->timeout_s * NS_PER_S;
	int err;

	if (opt->count < opt->processes) {
		fprintf(stderr, "loadgen: --count must be at least --processes\n");
		return EXIT_USAGE;
	}
	err = workers_start(&w, opt->processes, opt, hold_work);
	/* Opening: until every worker is done (each gives up at --timeout). */
	while (!err && !stop_requested &&
	       workers_with(&w, offsetof(struct worker_slot, ready)) < w.count) {
		usleep(10 * 1000);
		err = workers_check(&w);
		if (bench_monotonic_ns() > give_up + FINISH_GRACE_NS)
			err = -ETIMEDOUT;
	}
	opened_ns = bench_monotonic_ns() - started;
	worker_sum(&w, &sum);
	emit("{\"type\":\"hold_ready\",\"connections\":%llu,\"connects\":%llu,\"failed\":%llu,"
	     "\"errors\":%llu,\"processes\":%u,\"elapsed_ns\":%llu,\"connections_per_s\":%.1f}",
	     (unsigned long long)sum.held, (unsigned long long)sum.connects,
	     (unsigned long long)sum.failed, (unsigned long long)sum.errors, w.count,
	     (unsigned long long)opened_ns, opened_ns ? sum.held * 1e9 / opened_ns : 0.0);
	/* Holding: until SIGTERM, or --timeout more, so nothing outlives a lost bench. */
	give_up = bench_monotonic_ns() + (uint64_t)opt->timeout_s * NS_PER_S;
	while (!err && !stop_requested && bench_monotonic_ns() < give_up) {
		usleep(PROGRESS_MS * 1000);
		err = workers_check(&w);
	}
	closing = bench_monotonic_ns();
	if (workers_stop(&w) && !err)
		err = -ECHILD;
	worker_sum(&w, &sum);
	emit("{\"type\":\"hold_closed\",\"closed\":%llu,\"elapsed_ns\":%llu}",
	     (unsigned long long)sum.released, (unsigned long long)(bench_monotonic_ns() - closing));
	workers_free(&w);
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
