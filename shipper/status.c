// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * `kaccess status [--pin-dir DIR] [--json]`: reads only the pins, so it
 * works beside any running agent: its maps and their fill, its loss
 * counters, its pid, and its programs, found as the loaded programs that use
 * one of its pinned maps (every kaccess program uses at least `counters`).
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>

#include "agent.h"
#include "json_writer.h"
#include "log.h"
#include "maps_read.h"
#include "status.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define MAX_PROGRAMS 128

static const char *const status_maps[] = { "conn_table", "agg_gen0", "agg_gen1" };
#define STATUS_MAPS (sizeof(status_maps) / sizeof(status_maps[0]))

struct map_fill {
	const char *name;
	size_t entries;
	unsigned int max_entries;
	unsigned int id;
};

struct program_row {
	unsigned int id;
	char name[BPF_OBJ_NAME_LEN];
	unsigned int type;
	unsigned long long runs, run_time_ns;
};

struct status {
	char pin_dir[PATH_MAX];
	int agent_pid;                         /* 0 when the lock names nobody */
	struct map_fill maps[STATUS_MAPS];
	uint64_t losses[KACCESS_CTR_MAX];
	unsigned int counters_id;
	struct program_row programs[MAX_PROGRAMS];
	size_t program_count;
};

static int open_pinned(const struct status *status, const char *name)
{
	char path[PATH_MAX + 32];

	snprintf(path, sizeof(path), "%s/%s", status->pin_dir, name);
	return bpf_obj_get(path);
}

static int read_map_fill(struct status *status, size_t i)
{
	struct map_fill *fill = &status->maps[i];
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);
	struct agg_rows rows = { 0 };
	struct conn_rows conns = { 0 };
	int fd = open_pinned(status, status_maps[i]), err;

	if (fd < 0)
		return fd;
	err = bpf_obj_get_info_by_fd(fd, &info, &len);
	if (!err && i == 0) {
		err = conn_rows_collect(fd, &conns);
		fill->entries = conns.count;
	} else if (!err) {
		err = agg_rows_collect(fd, false, &rows);
		fill->entries = rows.count;
	}
	fill->name = status_maps[i];
	fill->max_entries = info.max_entries;
	fill->id = info.id;
	conn_rows_free(&conns);
	agg_rows_free(&rows);
	close(fd);
	return err;
}

#define MAX_AGENT_MAPS 64

/* The agent's map ids: the pinned ones, then every map its programs use. */
struct map_set {
	__u32 ids[MAX_AGENT_MAPS];
	size_t count;
};

static bool map_set_has(const struct map_set *set, __u32 id)
{
	for (size_t i = 0; i < set->count; i++)
		if (set->ids[i] == id)
			return true;
	return false;
}

static void map_set_add(struct map_set *set, __u32 id)
{
	if (!map_set_has(set, id) && set->count < MAX_AGENT_MAPS)
		set->ids[set->count++] = id;
}

static bool program_found(const struct status *status, __u32 id)
{
	for (size_t i = 0; i < status->program_count; i++)
		if (status->programs[i].id == id)
			return true;
	return false;
}

/*
 * A program that uses one of the agent's maps is the agent's; its other
 * maps are then the agent's too. True when `prog_fd` was added now.
 */
static bool take_if_agent_program(struct status *status, struct map_set *maps, int prog_fd)
{
	struct program_row *row = &status->programs[status->program_count];
	struct bpf_prog_info info = { 0 };
	__u32 map_ids[64], len = sizeof(info);
	bool ours = false;

	info.nr_map_ids = 64;
	info.map_ids = (__u64)(unsigned long)map_ids;
	if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) || program_found(status, info.id))
		return false;
	for (__u32 i = 0; i < info.nr_map_ids && i < 64 && !ours; i++)
		ours = map_set_has(maps, map_ids[i]);
	if (!ours)
		return false;
	for (__u32 i = 0; i < info.nr_map_ids && i < 64; i++)
		map_set_add(maps, map_ids[i]);
	row->id = info.id;
	snprintf(row->name, sizeof(row->name), "%s", info.name);
	row->type = info.type;
	row->runs = info.run_cnt;
	row->run_time_ns = info.run_time_ns;
	status->program_count++;
	return true;
}

/*
 * Every loaded program that shares a map with the agent's pinned maps, or
 * with a program found so: some (the L2-L4 neighbour and receive hooks)
 * use only unpinned maps that other kaccess programs use too.
 */
static void find_programs(struct status *status)
{
	struct map_set maps = { 0 };
	bool grew = true;

	for (size_t i = 0; i < STATUS_MAPS; i++)
		map_set_add(&maps, status->maps[i].id);
	map_set_add(&maps, status->counters_id);
	while (grew && status->program_count < MAX_PROGRAMS) {
		__u32 id = 0;

		grew = false;
		while (status->program_count < MAX_PROGRAMS && bpf_prog_get_next_id(id, &id) == 0) {
			int fd = bpf_prog_get_fd_by_id(id);

			if (fd < 0)
				continue;
			grew |= take_if_agent_program(status, &maps, fd);
			close(fd);
		}
	}
}

static int read_agent_pid(const char *pin_dir)
{
	char path[PATH_MAX], text[32] = "";
	int fd, pid = 0;
	ssize_t got;

	agent_lock_path(pin_dir, path, sizeof(path));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	got = read(fd, text, sizeof(text) - 1);
	close(fd);
	if (got > 0)
		pid = atoi(text);
	return pid > 0 && kill(pid, 0) == 0 ? pid : 0;
}

static int status_read(struct status *status)
{
	int fd, err;

	for (size_t i = 0; i < STATUS_MAPS; i++) {
		err = read_map_fill(status, i);
		if (err) {
			log_err("no kaccess agent pinned at %s (%s/%s: %s); is it running, with "
				"pin_dir set?", status->pin_dir, status->pin_dir, status_maps[i], strerror(-err));
			return err;
		}
	}
	fd = open_pinned(status, "counters");
	err = fd < 0 ? fd : counters_read(fd, status->losses);
	if (fd >= 0) {
		struct bpf_map_info info = { 0 };
		__u32 len = sizeof(info);

		if (bpf_obj_get_info_by_fd(fd, &info, &len) == 0)
			status->counters_id = info.id;
		close(fd);
	}
	if (err) {
		log_err("failed to read %s/counters: %s", status->pin_dir, strerror(-err));
		return err;
	}
	status->agent_pid = read_agent_pid(status->pin_dir);
	find_programs(status);
	return 0;
}

static void print_text(const struct status *status)
{
	unsigned long long total = 0;

	printf("kaccess agent %s, maps pinned at %s\n\n",
	       status->agent_pid ? "running" : "not running (stale pins?)", status->pin_dir);
	if (status->agent_pid)
		printf("pid %d\n\n", status->agent_pid);
	printf("%-12s %10s %12s %8s\n", "MAP", "ENTRIES", "MAX_ENTRIES", "FILL");
	for (size_t i = 0; i < STATUS_MAPS; i++)
		printf("%-12s %10zu %12u %7.2f%%\n", status->maps[i].name, status->maps[i].entries,
		       status->maps[i].max_entries,
		       100.0 * status->maps[i].entries / status->maps[i].max_entries);
	printf("\nLOST");
	for (int i = 0; i < KACCESS_CTR_LOSSES; i++) {
		total += status->losses[i];
		if (status->losses[i])
			printf(" %s=%llu", loss_names[i], (unsigned long long)status->losses[i]);
	}
	printf(total ? "\n" : " none\n");
	printf("\n%zu PROGRAMS LOADED (all attached but the startup iterator)\n%-8s %-16s %12s %10s\n",
	       status->program_count, "ID", "NAME", "RUNS", "AVG_NS");
	for (size_t i = 0; i < status->program_count; i++) {
		const struct program_row *row = &status->programs[i];

		printf("%-8u %-16s %12llu %10.0f\n", row->id, row->name, row->runs,
		       row->runs ? (double)row->run_time_ns / row->runs : 0.0);
	}
	if (status->program_count && !status->programs[0].runs)
		printf("(run counts need sysctl kernel.bpf_stats_enabled=1)\n");
}

static void print_json(const struct status *status)
{
	struct json_writer w;

	jw_init(&w, stdout);
	jw_object_begin(&w);
	jw_string_field(&w, "pin_dir", status->pin_dir);
	jw_u64_field(&w, "agent_pid", status->agent_pid);
	jw_key(&w, "maps");
	jw_array_begin(&w);
	for (size_t i = 0; i < STATUS_MAPS; i++) {
		jw_object_begin(&w);
		jw_string_field(&w, "name", status->maps[i].name);
		jw_u64_field(&w, "entries", status->maps[i].entries);
		jw_u64_field(&w, "max_entries", status->maps[i].max_entries);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	jw_key(&w, "lost");
	jw_object_begin(&w);
	for (int i = 0; i < KACCESS_CTR_LOSSES; i++)
		jw_u64_field(&w, loss_names[i], status->losses[i]);
	jw_object_end(&w);
	jw_key(&w, "programs");
	jw_array_begin(&w);
	for (size_t i = 0; i < status->program_count; i++) {
		jw_object_begin(&w);
		jw_u64_field(&w, "id", status->programs[i].id);
		jw_string_field(&w, "name", status->programs[i].name);
		jw_u64_field(&w, "runs", status->programs[i].runs);
		jw_u64_field(&w, "run_time_ns", status->programs[i].run_time_ns);
		jw_object_end(&w);
	}
	jw_array_end(&w);
	jw_object_end(&w);
	jw_line_end(&w);
}

static const char status_usage[] =
	"Usage: kaccess status [--pin-dir DIR] [--json]\n"
	"\n"
	"Show what a running agent has pinned and attached: map fill, loss counters,\n"
	"programs and their run statistics (with sysctl kernel.bpf_stats_enabled=1).\n"
	"\n"
	"  -p, --pin-dir DIR  the agent's pin directory (default /sys/fs/bpf/kaccess)\n"
	"  -j, --json         one JSON object instead of tables\n"
	"  -h, --help         print this help\n";

int status_main(int argc, char **argv)
{
	static const struct option options[] = {
		{ "pin-dir", required_argument, NULL, 'p' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct status *status = calloc(1, sizeof(*status));
	bool json = false;
	int option, ret = EXIT_RUNTIME;

	if (!status)
		return EXIT_RUNTIME;
	snprintf(status->pin_dir, sizeof(status->pin_dir), "/sys/fs/bpf/kaccess");
	optind = 1;
	opterr = 0;
	while ((option = getopt_long(argc, argv, "p:jh", options, NULL)) != -1) {
		if (option == 'p') {
			snprintf(status->pin_dir, sizeof(status->pin_dir), "%s", optarg);
		} else if (option == 'j') {
			json = true;
		} else if (option == 'h') {
			fputs(status_usage, stdout);
			ret = 0;
			goto out;
		} else {
			log_err("status: unknown or incomplete option '%s'; see kaccess status --help",
				argv[optind - 1]);
			ret = EXIT_USAGE;
			goto out;
		}
	}
	if (status_read(status))
		goto out;
	if (json)
		print_json(status);
	else
		print_text(status);
	ret = 0;
out:
	free(status);
	return ret;
}
