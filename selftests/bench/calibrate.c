// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * calibrate: load the benchmark's yardstick programs (calibrate.bpf.c) on
 * kaccess's hooks and keep them attached until SIGINT/SIGTERM.
 *
 * Prints NDJSON on stdout: a "calibrate_ready" line once attached, with the
 * program ids that bench.sh reads bpf_stats for, and a "calibrate_done" line
 * with the run counts per hook kind at exit.
 *
 * Exit codes: 0 stopped by a signal, 1 runtime failure, 2 usage error.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "calibrate.h"
#include "calibrate.skel.h"

#define CALIBRATE_MAX_LINKS 64

static const char usage_text[] =
	"Usage: calibrate [--tcp-io]\n"
	"\n"
	"Attach one-clock-read, one-counter-increment BPF programs to the syscall\n"
	"tracepoints and BTF tracepoints (socket events and the packet path)\n"
	"kaccess uses, print a ready line, and stay attached until SIGINT or\n"
	"SIGTERM. Used by selftests/bench/bench.sh.\n"
	"\n"
	"  --tcp-io  only the four hooks where kaccess's hooks=tcp starts and ends\n"
	"            reads and writes: the least any agent that times them there\n"
	"            runs per call (bench.sh's floor_tcp)\n"
	"\n"
	"Example:\n"
	"  calibrate & sleep 5; kill %1    # with kernel.bpf_stats_enabled=1\n";

/* The programs of --tcp-io: hooks=tcp's starts and ends of reads and writes. */
static const char *const tcp_io_programs[] = {
	"cal_tcp_sendmsg_locked",
	"cal_skb_copy_datagram_iovec",
	"cal_sock_send_length",
	"cal_sock_recv_length",
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int signo)
{
	stop_requested = 1;
}

__attribute__((format(printf, 2, 0)))
static int libbpf_printer(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG)
		return 0;
	fputs("calibrate: libbpf: ", stderr);
	return vfprintf(stderr, fmt, ap);
}

struct calibrate {
	struct calibrate_bpf *skel;
	struct bpf_link *links[CALIBRATE_MAX_LINKS];
	__u32 prog_ids[CALIBRATE_MAX_LINKS];
	unsigned int link_count;
};

static int prog_id_of(const struct bpf_program *prog, __u32 *ret_id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int err;

	err = bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len);
	if (err)
		return -errno;
	*ret_id = info.id;
	return 0;
}

/*
 * A tp_btf program names its tracepoint's BTF type at load, so one the
 * kernel lacks would fail the whole object: leave such programs unloaded.
 */
static int skip_missing_btf_tracepoints(struct calibrate *cal)
{
	struct btf *vmlinux_btf = btf__load_vmlinux_btf();
	struct bpf_program *prog;
	char type_name[128];
	int err;

	if (!vmlinux_btf) {
		err = -errno;
		fprintf(stderr, "calibrate: failed to load the kernel's BTF: %s\n", strerror(-err));
		return err;
	}
	bpf_object__for_each_program(prog, cal->skel->obj) {
		const char *section = bpf_program__section_name(prog);

		if (!bpf_program__autoload(prog) || strncmp(section, "tp_btf/", strlen("tp_btf/")) != 0)
			continue;
		snprintf(type_name, sizeof(type_name), "btf_trace_%s", section + strlen("tp_btf/"));
		if (btf__find_by_name_kind(vmlinux_btf, type_name, BTF_KIND_TYPEDEF) >= 0)
			continue;
		bpf_program__set_autoload(prog, false);
		fprintf(stderr, "calibrate: warning: no %s in this kernel; %s skipped\n", section,
			bpf_program__name(prog));
	}
	btf__free(vmlinux_btf);
	return 0;
}

static bool is_tcp_io_program(const struct bpf_program *prog)
{
	for (size_t i = 0; i < sizeof(tcp_io_programs) / sizeof(tcp_io_programs[0]); i++)
		if (strcmp(bpf_program__name(prog), tcp_io_programs[i]) == 0)
			return true;
	return false;
}

/* --tcp-io: every other program stays unloaded. */
static void keep_only_tcp_io(struct calibrate *cal)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, cal->skel->obj)
		if (!is_tcp_io_program(prog))
			bpf_program__set_autoload(prog, false);
}

/*
 * Attach program by program so that a syscall this kernel lacks costs only
 * its own hook, as in kaccess's agent_attach().
 */
static int calibrate_attach(struct calibrate *cal)
{
	struct bpf_program *prog;
	int err;

	bpf_object__for_each_program(prog, cal->skel->obj) {
		struct bpf_link *link;

		if (!bpf_program__autoload(prog))
			continue;
		if (cal->link_count == CALIBRATE_MAX_LINKS) {
			fprintf(stderr, "calibrate: more than %d programs\n", CALIBRATE_MAX_LINKS);
			return -E2BIG;
		}
		link = bpf_program__attach(prog);
		if (!link) {
			err = -errno;
			fprintf(stderr, "calibrate: warning: failed to attach %s (%s): %s\n",
				bpf_program__name(prog), bpf_program__section_name(prog),
				strerror(-err));
			continue;
		}
		cal->links[cal->link_count] = link;
		err = prog_id_of(prog, &cal->prog_ids[cal->link_count]);
		cal->link_count++;
		if (err) {
			fprintf(stderr, "calibrate: failed to get the id of %s: %s\n",
				bpf_program__name(prog), strerror(-err));
			return err;
		}
	}
	if (!cal->link_count) {
		fprintf(stderr, "calibrate: failed to attach any program\n");
		return -ENOENT;
	}
	return 0;
}

static void print_ready(const struct calibrate *cal)
{
	printf("{\"type\":\"calibrate_ready\",\"programs_attached\":%u,\"prog_ids\":[",
	       cal->link_count);
	for (unsigned int i = 0; i < cal->link_count; i++)
		printf("%s%u", i ? "," : "", cal->prog_ids[i]);
	printf("]}\n");
	fflush(stdout);
}

/* Sum the per-CPU slots of one hook kind; returns 0 or -errno. */
static int read_runs(const struct calibrate *cal, __u32 kind, __u64 *ret_runs)
{
	int ncpus = libbpf_num_possible_cpus();
	struct calibrate_slot *slots;
	__u64 runs = 0;
	int err;

	if (ncpus < 0)
		return ncpus;
	slots = calloc(ncpus, sizeof(*slots));
	if (!slots)
		return -ENOMEM;
	err = bpf_map_lookup_elem(bpf_map__fd(cal->skel->maps.calibrate_runs), &kind, slots);
	if (err) {
		err = -errno;
		goto out;
	}
	for (int cpu = 0; cpu < ncpus; cpu++)
		runs += slots[cpu].runs;
	*ret_runs = runs;
out:
	free(slots);
	return err;
}

static void print_done(const struct calibrate *cal)
{
	__u64 syscall_runs = 0, tp_btf_runs = 0, packet_path_runs = 0;
	int err;

	err = read_runs(cal, CALIBRATE_HOOK_SYSCALL_TRACEPOINT, &syscall_runs);
	err = err ?: read_runs(cal, CALIBRATE_HOOK_TP_BTF, &tp_btf_runs);
	err = err ?: read_runs(cal, CALIBRATE_HOOK_PACKET_PATH, &packet_path_runs);
	if (err) {
		fprintf(stderr, "calibrate: failed to read run counts: %s\n", strerror(-err));
		return;
	}
	printf("{\"type\":\"calibrate_done\",\"syscall_tracepoint_runs\":%llu,"
	       "\"tp_btf_runs\":%llu,\"packet_path_runs\":%llu}\n",
	       (unsigned long long)syscall_runs, (unsigned long long)tp_btf_runs,
	       (unsigned long long)packet_path_runs);
	fflush(stdout);
}

static void calibrate_destroy(struct calibrate *cal)
{
	for (unsigned int i = 0; i < cal->link_count; i++)
		bpf_link__destroy(cal->links[i]);
	cal->link_count = 0;
	calibrate_bpf__destroy(cal->skel);
	cal->skel = NULL;
}

int main(int argc, char **argv)
{
	struct sigaction stop = { .sa_handler = on_stop_signal }; /* no SA_RESTART */
	struct calibrate cal = {};
	sigset_t blocked, waiting;
	bool tcp_io_only = false;
	int err;

	if (argc == 2 && strcmp(argv[1], "--tcp-io") == 0) {
		tcp_io_only = true;
	} else if (argc > 1) {
		bool help = strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0;

		fputs(usage_text, help ? stdout : stderr);
		return help ? 0 : 2;
	}
	libbpf_set_print(libbpf_printer);
	/* Block the stop signals until we wait for them, so none is lost. */
	sigemptyset(&blocked);
	sigaddset(&blocked, SIGINT);
	sigaddset(&blocked, SIGTERM);
	sigprocmask(SIG_BLOCK, &blocked, &waiting);
	sigaction(SIGINT, &stop, NULL);
	sigaction(SIGTERM, &stop, NULL);

	cal.skel = calibrate_bpf__open();
	if (!cal.skel) {
		err = -errno;
		fprintf(stderr, "calibrate: failed to open BPF object: %s\n", strerror(-err));
		goto out;
	}
	if (tcp_io_only)
		keep_only_tcp_io(&cal);
	err = skip_missing_btf_tracepoints(&cal);
	if (err)
		goto out;
	err = calibrate_bpf__load(cal.skel);
	if (err) {
		fprintf(stderr, "calibrate: failed to load BPF programs: %s\n", strerror(-err));
		goto out;
	}
	err = calibrate_attach(&cal);
	if (err)
		goto out;
	print_ready(&cal);
	while (!stop_requested)
		sigsuspend(&waiting);
	print_done(&cal);
out:
	calibrate_destroy(&cal);
	return err ? 1 : 0;
}
