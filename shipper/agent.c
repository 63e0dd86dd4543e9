// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <time.h>
#include <unistd.h>
#include <linux/magic.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "agent.h"
#include "cgroups.h"
#include "drop_reasons.h"
#include "endpoint_names.h"
#include "kaccess.h"
#include "probe.h"
#include "kaccess.skel.h"
#include "log.h"
#include "maps_read.h"
#include "metrics_extra.h"
#include "netns_links.h"

#define TRACEFS_DIR "/sys/kernel/tracing"
#define BPFFS_DIR "/sys/fs/bpf"

/* Maps worth reading with bpftool; the others are internal plumbing. */
static const char *const pinned_maps[] = { "conn_table", "agg_gen0", "agg_gen1", "counters",
					   "http_gen0", "http_gen1" };

/*
 * Programs whose loss disables only their own syscall; the others
 * (connection lifecycle) are required.
 */
static const char *const optional_program_prefixes[] = {
	"read", "readv", "recv", "write", "writev", "send",
};

static uint64_t clock_ns(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

uint64_t realtime_ns(void)
{
	return clock_ns(CLOCK_REALTIME);
}

uint64_t monotonic_ns(void)
{
	return clock_ns(CLOCK_MONOTONIC);
}

static bool is_mounted_as(const char *dir, long magic)
{
	struct statfs st;

	return statfs(dir, &st) == 0 && st.f_type == magic;
}

static int mount_if_absent(const char *dir, const char *fstype, long magic)
{
	if (is_mounted_as(dir, magic))
		return 0;
	if (mount(fstype, dir, fstype, 0, NULL)) {
		int err = -errno;

		log_err("failed to mount %s at %s: %s", fstype, dir, strerror(-err));
		return err;
	}
	log_info("mounted %s at %s", fstype, dir);
	return 0;
}

int agent_mount_filesystems(const struct kaccess_config *cfg)
{
	int err = mount_if_absent(TRACEFS_DIR, "tracefs", TRACEFS_MAGIC);

	if (err)
		return err;
	if (cfg->pin_dir[0] && strncmp(cfg->pin_dir, BPFFS_DIR "/", strlen(BPFFS_DIR) + 1) == 0)
		return mount_if_absent(BPFFS_DIR, "bpf", BPF_FS_MAGIC);
	return 0;
}

void agent_update_wall_offset(struct agent *agent)
{
	/* Sample realtime between two monotonic reads to halve the skew. */
	uint64_t before = monotonic_ns(), real = realtime_ns(), after = monotonic_ns();

	agent->skel->bss->wall_offset_ns = real - (before + (after - before) / 2);
}

/*
 * Before load: the watched cgroup's id and depth, for programs that test a
 * socket's cgroup (softirq, iterators) rather than the current task's.
 */
static int set_watched_cgroup_identity(struct agent *agent, const char *cgroup)
{
	char path[PATH_MAX];
	uint64_t id;
	unsigned int level;
	int err = cgroups_resolve_path(cgroup, path, sizeof(path));

	err = err ?: cgroups_identity(path, &id, &level);
	if (err) {
		log_err("cgroup: '%s' is not a cgroup v2 directory: %s", cgroup, strerror(-err));
		return -EINVAL;
	}
	agent->skel->rodata->watched_cgroup_id = id;
	agent->skel->rodata->watched_cgroup_level = level;
	return 0;
}

/* After load: the same cgroup for bpf_current_task_under_cgroup(). */
static int watch_cgroup(struct agent *agent, const char *cgroup)
{
	char path[PATH_MAX];
	int zero = 0, fd, err;

	err = cgroups_resolve_path(cgroup, path, sizeof(path));
	if (err) {
		log_err("cgroup: '%s' is not a cgroup v2 directory: %s", cgroup, strerror(-err));
		return -EINVAL;
	}
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		log_err("failed to open cgroup %s: %s", path, strerror(-err));
		return err;
	}
	err = bpf_map_update_elem(bpf_map__fd(agent->skel->maps.watched_cgroup), &zero, &fd, BPF_ANY);
	if (err)
		log_err("failed to set watched cgroup %s: %s", path, strerror(-err));
	else
		log_info("watching processes under cgroup %s", path);
	close(fd);
	return err;
}

static int size_maps(struct kaccess_bpf *skel, const struct kaccess_config *cfg)
{
	/* with HTTP parsing off nothing writes the HTTP maps: one entry each */
	unsigned int http_rows = cfg->http_parse ? cfg->http_rows_max_entries : 1;
	unsigned int http_conns = cfg->http_parse ? cfg->http_conns_max_entries : 1;
	int err = 0;

	err = err ?: bpf_map__set_max_entries(skel->maps.conn_table, cfg->conn_table_max_entries);
	err = err ?: bpf_map__set_max_entries(skel->maps.agg_gen0, cfg->agg_rows_max_entries);
	err = err ?: bpf_map__set_max_entries(skel->maps.agg_gen1, cfg->agg_rows_max_entries);
	err = err ?: bpf_map__set_max_entries(skel->maps.events, cfg->ringbuf_kib * 1024);
	skel->rodata->events_quarter_bytes = bpf_map__max_entries(skel->maps.events) / 4;
	err = err ?: bpf_map__set_max_entries(skel->maps.http_gen0, http_rows);
	err = err ?: bpf_map__set_max_entries(skel->maps.http_gen1, http_rows);
	err = err ?: bpf_map__set_max_entries(skel->maps.http_conns, http_conns);
	if (!cfg->l24) { /* nothing writes them */
		err = err ?: bpf_map__set_max_entries(skel->maps.xmit_queued, 1);
		err = err ?: bpf_map__set_max_entries(skel->maps.neigh_waits, 1);
		err = err ?: bpf_map__set_max_entries(skel->maps.forwarded_syns, 1);
	}
	err = err ?: bpf_map__set_max_entries(skel->maps.h2_conns, http_conns);
	err = err ?: bpf_map__set_max_entries(skel->maps.h2_streams, http_conns);
	return err;
}

/* Every tracepoint of `needed` (ended by L24_TP_MAX) is present. */
static bool l24_has_all(unsigned int present, const enum l24_tracepoint *needed)
{
	for (; *needed != L24_TP_MAX; needed++)
		if (!(present & (1u << *needed)))
			return false;
	return true;
}

static bool has_suffix(const char *name, const char *suffix)
{
	size_t len = strlen(name), suffix_len = strlen(suffix);

	return len >= suffix_len && strcmp(name + len - suffix_len, suffix) == 0;
}

static bool has_prefix(const char *text, const char *prefix)
{
	return strncmp(text, prefix, strlen(prefix)) == 0;
}

/* A read/write syscall with both an `_enter` walk and a `_ts` timestamp entry. */
static bool has_timestamp_twin(struct kaccess_bpf *skel, const char *name, const char *suffix)
{
	char twin[64];

	snprintf(twin, sizeof(twin), "%.*s_ts", (int)(strlen(name) - strlen(suffix)), name);
	return bpf_object__find_program_by_name(skel->obj, twin) != NULL;
}

/*
 * Whether a program belongs to the chosen hook set (see bpf/transfer.bpf.c):
 * "fentry": fentry/fexit programs; "sock": syscall tracepoints with `_ts`
 * entries, the sock_*_length tracepoints accounting plain reads and writes
 * (so no `_exit` for those); "fd": syscall tracepoints with `_enter` walks
 * and every `_exit`. Connection and iterator programs are always loaded.
 */
static bool program_in_hook_set(struct kaccess_bpf *skel, const struct bpf_program *prog,
				enum hooks_choice hooks)
{
	const char *section = bpf_program__section_name(prog), *name = bpf_program__name(prog);

	if (has_prefix(name, "tcpio_"))
		return hooks == HOOKS_TCP;
	if (has_prefix(section, "fentry/") || has_prefix(section, "fexit/"))
		return hooks == HOOKS_FENTRY;
	if (has_prefix(section, "tp_btf/sock_"))
		return hooks == HOOKS_SOCK;
	if (!has_prefix(section, "tracepoint/syscalls/"))
		return true;
	if (hooks == HOOKS_FENTRY || hooks == HOOKS_TCP)
		return false;
	if (has_suffix(name, "_ts"))
		return hooks == HOOKS_SOCK;
	if (has_suffix(name, "_enter") && has_timestamp_twin(skel, name, "_enter"))
		return hooks == HOOKS_FD;
	if (has_suffix(name, "_exit") && has_timestamp_twin(skel, name, "_exit") &&
	    !strstr(name, "mmsg"))
		return hooks == HOOKS_FD;
	return true;
}

static void select_hook_set(struct kaccess_bpf *skel, enum hooks_choice hooks)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, skel->obj)
		bpf_program__set_autoload(prog, program_in_hook_set(skel, prog, hooks));
}

static const char *const hooks_descriptions[] = {
	[HOOKS_FENTRY] = "fentry/fexit on the syscall and socket functions (no syscall tracepoints)",
	[HOOKS_SOCK] = "syscall tracepoints; reads and writes matched by sock:sock_{send,recv}_length",
	[HOOKS_FD] = "syscall tracepoints; reads and writes matched by a descriptor walk",
	[HOOKS_TCP] = "TCP and socket tracepoints only (no syscall tracepoints; accepts and "
		      "closes untimed)",
};

static const char *const hooks_names[] = {
	[HOOKS_FENTRY] = "fentry", [HOOKS_SOCK] = "sock", [HOOKS_FD] = "fd", [HOOKS_TCP] = "tcp",
};

/* The "tcp" hooks start writes at tcp_sendmsg_locked and reads at the reader's copy. */
static bool has_tcp_hook_tracepoints(const struct kernel_features *features)
{
	unsigned int needed = 1u << L24_TP_TCP_SENDMSG_LOCKED | 1u << L24_TP_SKB_COPY_DATAGRAM_IOVEC;

	return features->sock_length_tracepoints && (features->l24_tracepoints & needed) == needed;
}

/* auto: the cheapest set the kernel offers; a forced set it lacks is an error. */
static int choose_hooks(struct agent *agent, const struct kaccess_config *cfg,
			const struct kernel_features *features)
{
	enum hooks_choice hooks = cfg->hooks;

	if (hooks == HOOKS_AUTO)
		hooks = features->fentry ? HOOKS_FENTRY
					 : features->sock_length_tracepoints ? HOOKS_SOCK : HOOKS_FD;
	if (hooks == HOOKS_FENTRY && !features->fentry) {
		log_err("hooks = fentry needs fentry/fexit programs, which this kernel refuses "
			"(no CONFIG_FUNCTION_TRACER direct calls, or lockdown)");
		return -EOPNOTSUPP;
	}
	if (hooks == HOOKS_SOCK && !features->sock_length_tracepoints) {
		log_err("hooks = sock needs the sock:sock_send_length and sock_recv_length "
			"tracepoints (Linux 6.3), which this kernel lacks");
		return -EOPNOTSUPP;
	}
	if (hooks == HOOKS_TCP && !has_tcp_hook_tracepoints(features)) {
		log_err("hooks = tcp needs the tcp:tcp_sendmsg_locked, skb:skb_copy_datagram_iovec "
			"and sock:sock_{send,recv}_length tracepoints, which this kernel lacks");
		return -EOPNOTSUPP;
	}
	select_hook_set(agent->skel, hooks);
	agent->skel->rodata->hooks_without_syscalls = hooks == HOOKS_TCP;
	agent->hooks = hooks_names[hooks];
	log_info("hooks: %s", hooks_descriptions[hooks]);
	return 0;
}

/* The L2-L4 measurements a set of present tracepoints makes. */
static unsigned int l24_measures_of(unsigned int tracepoints)
{
#define HAS(...) l24_has_all(tracepoints, (const enum l24_tracepoint[]){ __VA_ARGS__, L24_TP_MAX })
	unsigned int measured = KACCESS_L24_WRITE_L4; /* the write's own time where SML is missing */

	if (HAS(L24_TP_NET_DEV_QUEUE, L24_TP_NET_DEV_XMIT))
		measured |= KACCESS_L24_WRITE_PACKETS;
	if (HAS(L24_TP_NET_DEV_QUEUE, L24_TP_NET_DEV_START_XMIT, L24_TP_NET_DEV_XMIT))
		measured |= KACCESS_L24_WRITE_L2;
	if (HAS(L24_TP_NET_DEV_QUEUE, L24_TP_QDISC_ENQUEUE, L24_TP_NET_DEV_START_XMIT,
		L24_TP_NET_DEV_XMIT))
		measured |= KACCESS_L24_ENTER_QUEUE;
	if (HAS(L24_TP_TCP_RETRANSMIT_SKB))
		measured |= KACCESS_L24_RETRANSMITS;
	if (HAS(L24_TP_NET_DEV_QUEUE, L24_TP_NEIGH_CREATE, L24_TP_NEIGH_UPDATE,
		L24_TP_NEIGH_UPDATE_DONE))
		measured |= KACCESS_L24_RESOLVE_MAC;
	if (HAS(L24_TP_TCP_PROBE))
		measured |= KACCESS_L24_READ_PACKETS;
	if (HAS(L24_TP_NETIF_RECEIVE_SKB, L24_TP_TCP_PROBE, L24_TP_SKB_COPY_DATAGRAM_IOVEC))
		measured |= KACCESS_L24_READ_WINDOWS;
	if (HAS(L24_TP_NETIF_RECEIVE_SKB, L24_TP_TCP_PROBE, L24_TP_SK_DATA_READY,
		L24_TP_SKB_COPY_DATAGRAM_IOVEC))
		measured |= KACCESS_L24_READ_L4;
	if (HAS(L24_TP_KFREE_SKB))
		measured |= KACCESS_L24_LOSS;
	return measured;
#undef HAS
}

/* Linux 6.4 uapi, absent from the build's headers (Debian 12 has 6.1's). */
#define KACCESS_BPF_PROG_TYPE_NETFILTER 32
#define KACCESS_BPF_NETFILTER 45

static bool is_netfilter_program(const struct bpf_program *prog)
{
	return strcmp(bpf_program__section_name(prog), "netfilter") == 0;
}

/*
 * The netfilter programs (bpf/netfilter.bpf.c): libbpf 1.1 does not know
 * their section, so their type is set here; they load only with the links.
 */
static bool select_netfilter_programs(struct agent *agent, const struct kaccess_config *cfg,
				      bool kernel_has_links)
{
	bool use = cfg->l24 && cfg->l24_netfilter && kernel_has_links;
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, agent->skel->obj) {
		if (!is_netfilter_program(prog))
			continue;
		bpf_program__set_autoload(prog, use);
		if (use) {
			bpf_program__set_type(prog, KACCESS_BPF_PROG_TYPE_NETFILTER);
			bpf_program__set_expected_attach_type(prog, KACCESS_BPF_NETFILTER);
		}
	}
	agent->skel->rodata->l24_netfilter = use;
	if (cfg->l24 && cfg->l24_netfilter && !kernel_has_links)
		log_info("l24: no BPF netfilter links on this kernel (Linux 6.4+): L3 and netfilter "
			 "windows are not measured");
	return use;
}

/*
 * With the "tcp" hooks and L2-L4, one program on the reader's copy does
 * both jobs (tcpio_read_begin_l24: the read's start and the segment's
 * receive windows) in place of tcpio_read_begin and
 * l24_skb_copy_datagram_iovec; otherwise it is not loaded.
 */
static void select_reader_copy_program(struct kaccess_bpf *skel)
{
	bool merged = bpf_program__autoload(skel->progs.tcpio_read_begin) &&
		      bpf_program__autoload(skel->progs.l24_skb_copy_datagram_iovec);

	bpf_program__set_autoload(skel->progs.tcpio_read_begin_l24, merged);
	if (!merged)
		return;
	bpf_program__set_autoload(skel->progs.tcpio_read_begin, false);
	bpf_program__set_autoload(skel->progs.l24_skb_copy_datagram_iovec, false);
}

/*
 * "L3+L4 egress" stands in for write L3 where the netfilter links do not
 * run. net_dev_queue times it from the write's start, which it finds by
 * the write's socket: the "sock" hooks know that socket only at the
 * write's end, unless tcp_sendmsg_locked names it first.
 */
static bool egress_measured(const struct agent *agent, unsigned int tracepoints)
{
	unsigned int needed = KACCESS_L24_WRITE_PACKETS;

	if ((agent->l24_measured & (needed | KACCESS_L24_NETFILTER)) != needed)
		return false;
	return strcmp(agent->hooks, "sock") != 0 || (tracepoints & 1u << L24_TP_TCP_SENDMSG_LOCKED);
}

/*
 * L2-L4 programs load where their tracepoint exists and `l24` is on; what
 * they measure together is logged and exported (agent_info).
 */
static void select_l24_programs(struct agent *agent, const struct kaccess_config *cfg,
				const struct kernel_features *features)
{
	unsigned int tracepoints = features->l24_tracepoints;
	struct bpf_program *prog;
	char missing[256] = "";

	bpf_object__for_each_program(prog, agent->skel->obj) {
		int tracepoint = l24_tracepoint_of_section(bpf_program__section_name(prog));

		if (tracepoint < 0 || strncmp(bpf_program__name(prog), "l24_", 4) != 0)
			continue;
		bpf_program__set_autoload(prog, cfg->l24 && (tracepoints & (1u << tracepoint)));
	}
	/* with the "tcp" hooks a write starts where its L4 time starts: no second program */
	if (agent->skel->rodata->hooks_without_syscalls)
		bpf_program__set_autoload(agent->skel->progs.l24_tcp_sendmsg_locked, false);
	select_reader_copy_program(agent->skel);
	agent->skel->rodata->l24_enabled = cfg->l24;
	agent->skel->rodata->retransmit_reports_err = features->retransmit_reports_err;
	if (select_netfilter_programs(agent, cfg, features->netfilter_links))
		agent->l24_measured |= KACCESS_L24_NETFILTER;
	if (!cfg->l24) {
		log_info("l24: off");
		return;
	}
	for (int i = 0; i < L24_TP_MAX; i++)
		if (!(tracepoints & (1u << i)))
			snprintf(missing + strlen(missing), sizeof(missing) - strlen(missing), " %s",
				 l24_tracepoint_names[i]);
	agent->l24_measured |= l24_measures_of(tracepoints);
	if (egress_measured(agent, tracepoints))
		agent->l24_measured |= KACCESS_L24_EGRESS;
	log_info("l24: measuring 0x%x; tracepoints missing:%s", agent->l24_measured,
		 missing[0] ? missing : " none");
	if ((agent->l24_measured & KACCESS_L24_LOSS) && drop_reasons_load(cfg->btf_path))
		log_warn("l24: drop reasons have no names in the kernel's BTF: loss locations read REASON_<n>");
}

/*
 * The BPF object built into this binary (1.1 MB) is read once, when libbpf
 * opens it: libbpf copies the programs and BTF it keeps. Give its pages
 * back, or they stay in the resident set for as long as the agent runs.
 * They are the file's: touched again, they would be read in again.
 */
static void release_object_pages(void)
{
	size_t object_bytes, page = sysconf(_SC_PAGESIZE);
	uintptr_t start = (uintptr_t)kaccess_bpf__elf_bytes(&object_bytes);
	uintptr_t first_page = (start + page - 1) & ~(page - 1);
	uintptr_t end_page = (start + object_bytes) & ~(page - 1);

	if (end_page > first_page && madvise((void *)first_page, end_page - first_page, MADV_DONTNEED))
		log_debug("could not release the BPF object's pages: %s", strerror(errno));
}

int agent_load(struct agent *agent, const struct kaccess_config *cfg, bool records_have_a_reader)
{
	LIBBPF_OPTS(bpf_object_open_opts, opts);
	struct kernel_features features;
	int err;

	memset(agent, 0, sizeof(*agent));
	agent->lock_fd = -1;
	err = features_check_capabilities();
	if (err)
		return err;
	err = features_probe(cfg->btf_path, &features);
	if (err)
		return err;
	if (cfg->btf_path[0])
		opts.btf_custom_path = cfg->btf_path;
	agent->skel = kaccess_bpf__open_opts(&opts);
	if (!agent->skel) {
		err = -errno;
		log_err("failed to open BPF object: %s", strerror(-err));
		return err;
	}
	err = choose_hooks(agent, cfg, &features);
	if (err)
		return err;
	select_l24_programs(agent, cfg, &features);
	agent->bucket_ns = (uint64_t)cfg->interval_s * 1000000000ULL;
	agent->skel->rodata->bucket_ns = agent->bucket_ns;
	agent->skel->rodata->filter_cgroup = cfg->cgroup[0] != '\0';
	agent->skel->rodata->agent_tgid = getpid();
	agent->skel->rodata->http_enabled = cfg->http_parse;
	agent->skel->rodata->http_keep_query = cfg->http_keep_query;
	agent->skel->rodata->http_records = cfg->http_log_policy != HTTP_LOG_NONE && records_have_a_reader;
	if (cfg->http_log_policy == HTTP_LOG_SAMPLED) /* HTTP/1.x: skipped in the kernel */
		agent->skel->rodata->http_records_one_in = cfg->http_log_sample_rate;
	if (cfg->http_log_policy != HTTP_LOG_NONE && !records_have_a_reader)
		log_info("HTTP access-log records: off (neither --output json nor OAP access logs would take them)");
	agent->http_keep_query = cfg->http_keep_query;
	agent->endpoints = endpoint_names_new();
	if (!agent->endpoints)
		return -ENOMEM;
	if (cfg->cgroup[0]) {
		err = set_watched_cgroup_identity(agent, cfg->cgroup);
		err = err ?: cgroups_resolve_path(cfg->cgroup, agent->watched_cgroup_dir,
						  sizeof(agent->watched_cgroup_dir));
		if (err)
			return err;
	}
	err = size_maps(agent->skel, cfg);
	if (err) {
		log_err("failed to size maps: %s", strerror(-err));
		return err;
	}
	err = kaccess_bpf__load(agent->skel);
	if (err) {
		log_err("failed to load BPF programs: %s", strerror(-err));
		return err;
	}
	release_object_pages();
	agent_update_wall_offset(agent);
	if (cfg->cgroup[0])
		return watch_cgroup(agent, cfg->cgroup);
	return 0;
}

static bool program_is_optional(const char *name)
{
	for (size_t i = 0; i < sizeof(optional_program_prefixes) / sizeof(optional_program_prefixes[0]); i++)
		if (strncmp(name, optional_program_prefixes[i], strlen(optional_program_prefixes[i])) == 0)
			return true;
	return false;
}

/* The netfilter programs' links, in every watched namespace there is now. */
static int attach_netfilter(struct agent *agent)
{
	int err;

	if (!agent->skel->rodata->l24_netfilter)
		return 0;
	err = netns_links_new(bpf_program__fd(agent->skel->progs.nf_first),
			      bpf_program__fd(agent->skel->progs.nf_last), agent->watched_cgroup_dir,
			      &agent->netns_links);
	if (err) {
		log_err("netfilter links: %s", strerror(-err));
		return err;
	}
	agent_scan_netns(agent);
	if (metrics_extra_register(netns_links_render_metrics, agent->netns_links))
		log_warn("netfilter links: no room for their /metrics series");
	log_info("netfilter links in %zu network namespaces", netns_links_count(agent->netns_links));
	return 0;
}

unsigned int agent_netfilter_programs(const struct agent *agent)
{
	return agent->netns_links ? 2 : 0; /* nf_first, nf_last */
}

void agent_scan_netns(struct agent *agent)
{
	if (agent->netns_links)
		netns_links_scan(agent->netns_links);
}

/* agg_flush_cpu on one CPU, again while it finds a program holding the slots. */
static int flush_cpu_sums(int prog_fd, unsigned int cpu)
{
	LIBBPF_OPTS(bpf_test_run_opts, opts, .flags = BPF_F_TEST_RUN_ON_CPU, .cpu = cpu);
	const struct timespec pause = { .tv_nsec = 10000 };

	for (int attempt = 0; attempt < 1000; attempt++) {
		if (bpf_prog_test_run_opts(prog_fd, &opts))
			return -errno;
		if (opts.retval == 0)
			return 0;
		nanosleep(&pause, NULL); /* a program on that CPU is adding right now */
	}
	return -EBUSY;
}

int agent_flush_combined(struct agent *agent)
{
	int prog_fd, cpus = libbpf_num_possible_cpus(), err = 0;

	if (!agent->skel)
		return 0;
	prog_fd = bpf_program__fd(agent->skel->progs.agg_flush_cpu);
	for (int cpu = 0; cpu < cpus; cpu++) {
		int cpu_err = flush_cpu_sums(prog_fd, (unsigned int)cpu);

		if (cpu_err == -ENXIO)
			continue; /* offline: it runs no programs either */
		err = err ?: cpu_err;
	}
	return err;
}

/*
 * Reads, writes and packets sum per CPU (bpf/agg.bpf.h, struct
 * agg_combine) only once the flush that brings the sums to their rows is
 * known to run here; otherwise each goes to its row directly.
 */
static void start_combining(struct agent *agent)
{
	int err = agent_flush_combined(agent);

	if (err) {
		log_warn("rows: cannot run the per-CPU flush (%s): reads, writes and packets go to their rows one by one",
			 strerror(-err));
		return;
	}
	agent->skel->bss->agg_combining = 1;
	log_info("rows: read, write and packet sums combined per CPU, flushed before each drain");
}

/*
 * The descriptor walk's exits: one program per family, attached to the exit
 * tracepoint its section names and to these (see bpf/transfer.bpf.c).
 */
struct shared_exit {
	const char *program;
	const char *const more[5]; /* further syscalls, NULL-terminated */
};

static const struct shared_exit shared_exits[] = {
	{ "read_exit", { "readv", "recvfrom", "recvmsg", NULL } },
	{ "write_exit", { "writev", "sendto", "sendmsg", NULL } },
};

static const char *const *shared_exit_more(const char *program)
{
	for (size_t i = 0; i < sizeof(shared_exits) / sizeof(shared_exits[0]); i++)
		if (strcmp(program, shared_exits[i].program) == 0)
			return shared_exits[i].more;
	return NULL;
}

/*
 * Keep a link an attach call just returned: 0, or -errno of the attach
 * (call it right after, errno intact) or -E2BIG with the link released.
 */
static int agent_keep_link(struct agent *agent, struct bpf_link *link)
{
	if (!link)
		return -errno;
	if (agent->link_count >= AGENT_MAX_LINKS) {
		bpf_link__destroy(link);
		return -E2BIG;
	}
	agent->links[agent->link_count++] = link;
	return 0;
}

/*
 * A shared exit on the further syscalls of its family. Each is optional, as
 * its own program was: a kernel without the syscall's tracepoint loses that
 * syscall only.
 */
static void attach_shared_exit(struct agent *agent, const struct bpf_program *prog)
{
	const char *const *more = shared_exit_more(bpf_program__name(prog));
	char tracepoint[64];

	for (; more && *more; more++) {
		int err;

		snprintf(tracepoint, sizeof(tracepoint), "sys_exit_%s", *more);
		err = agent_keep_link(agent, bpf_program__attach_tracepoint(prog, "syscalls", tracepoint));
		if (!err)
			continue;
		agent->programs_not_attached++;
		log_warn("failed to attach %s to syscalls/%s: %s; that syscall is not counted",
			 bpf_program__name(prog), tracepoint, strerror(-err));
	}
}

int agent_attach(struct agent *agent)
{
	struct bpf_program *prog;

	bpf_object__for_each_program(prog, agent->skel->obj) {
		const char *name = bpf_program__name(prog);
		int err;

		if (!bpf_program__autoload(prog))
			continue; /* the other variant of its hook */
		if (strncmp(bpf_program__section_name(prog), "iter/", 5) == 0)
			continue; /* run on demand: see sockets.c */
		if (prog == agent->skel->progs.agg_flush_cpu)
			continue; /* run on demand: agent_flush_combined() */
		if (is_netfilter_program(prog))
			continue; /* linked per network namespace: agent_scan_netns() */
		err = agent_keep_link(agent, bpf_program__attach(prog));
		if (!err) {
			agent->programs_attached++;
			attach_shared_exit(agent, prog);
			continue;
		}
		if (!program_is_optional(name)) {
			log_err("failed to attach %s (%s): %s", name, bpf_program__section_name(prog),
				strerror(-err));
			return err;
		}
		agent->programs_not_attached++;
		log_warn("failed to attach %s (%s): %s; that syscall is not counted", name,
			 bpf_program__section_name(prog), strerror(-err));
	}
	log_info("attached %u programs (%u links)", agent->programs_attached, agent->link_count);
	start_combining(agent);
	return attach_netfilter(agent);
}

void agent_detach(struct agent *agent)
{
	if (agent->netns_links)
		metrics_extra_unregister(agent->netns_links);
	netns_links_free(agent->netns_links);
	agent->netns_links = NULL;
	for (unsigned int i = 0; i < agent->link_count; i++)
		bpf_link__destroy(agent->links[i]);
	agent->link_count = 0;
	agent->programs_attached = 0;
}

/* One agent per pin directory: a lock file in /run names the owner. */
void agent_lock_path(const char *pin_dir, char *ret_path, size_t len)
{
	size_t prefix = (size_t)snprintf(ret_path, len, "/run/kaccess");

	for (const char *c = pin_dir; *c && prefix + 6 < len; c++)
		ret_path[prefix++] = *c == '/' ? '-' : *c;
	strcpy(ret_path + prefix, ".lock");
}

static int take_pin_lock(struct agent *agent, const char *pin_dir)
{
	char lock_path[PATH_MAX], pid[32];
	int fd;

	agent_lock_path(pin_dir, lock_path, sizeof(lock_path));
	fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0) {
		int err = -errno;

		log_err("failed to open lock file %s: %s", lock_path, strerror(-err));
		return err;
	}
	if (flock(fd, LOCK_EX | LOCK_NB)) {
		ssize_t len = read(fd, pid, sizeof(pid) - 1);

		pid[len > 0 ? len : 0] = '\0';
		log_err("another kaccess (pid %s) uses pin directory %s", pid[0] ? pid : "?", pin_dir);
		close(fd);
		return -EBUSY;
	}
	if (ftruncate(fd, 0) == 0)
		dprintf(fd, "%d", getpid());
	agent->lock_fd = fd;
	return 0;
}

/* Pins left by an agent that was killed: nobody holds the lock any more. */
static void remove_stale_pins(const char *pin_dir)
{
	DIR *dir = opendir(pin_dir);
	struct dirent *entry;

	if (!dir)
		return;
	while ((entry = readdir(dir))) {
		if (entry->d_name[0] == '.')
			continue;
		if (unlinkat(dirfd(dir), entry->d_name, 0) == 0)
			log_warn("removed stale pin %s/%s", pin_dir, entry->d_name);
	}
	closedir(dir);
}

static void unpin_maps(struct agent *agent)
{
	char path[PATH_MAX + 64];

	if (!agent->pin_dir[0])
		return;
	for (size_t i = 0; i < sizeof(pinned_maps) / sizeof(pinned_maps[0]); i++) {
		snprintf(path, sizeof(path), "%s/%s", agent->pin_dir, pinned_maps[i]);
		unlink(path);
	}
	rmdir(agent->pin_dir);
	agent->pin_dir[0] = '\0';
}

int agent_pin(struct agent *agent, const char *pin_dir)
{
	char path[PATH_MAX + 64];
	int err;

	if (!pin_dir[0])
		return 0;
	err = take_pin_lock(agent, pin_dir);
	if (err)
		return err;
	remove_stale_pins(pin_dir);
	if (mkdir(pin_dir, 0700) && errno != EEXIST) {
		err = -errno;
		log_err("failed to create pin directory %s: %s", pin_dir, strerror(-err));
		return err;
	}
	snprintf(agent->pin_dir, sizeof(agent->pin_dir), "%s", pin_dir);
	for (size_t i = 0; i < sizeof(pinned_maps) / sizeof(pinned_maps[0]); i++) {
		struct bpf_map *map = bpf_object__find_map_by_name(agent->skel->obj, pinned_maps[i]);

		snprintf(path, sizeof(path), "%s/%s", pin_dir, pinned_maps[i]);
		err = map ? bpf_map__pin(map, path) : -ENOENT;
		if (!err && chmod(path, 0600))
			err = -errno;
		if (err) {
			log_err("failed to pin %s at %s: %s", pinned_maps[i], path, strerror(-err));
			return err;
		}
	}
	log_info("maps pinned under %s", pin_dir);
	return 0;
}

int agent_print_programs(struct agent *agent, bool json, FILE *out)
{
	struct bpf_program *prog;
	unsigned int total = 0;

	if (!json)
		fprintf(out, "%-20s %-42s %14s %12s\n", "PROGRAM", "HOOK", "VERIFIED_INSNS", "XLATED_B");
	bpf_object__for_each_program(prog, agent->skel->obj) {
		struct bpf_prog_info info = { 0 };
		__u32 len = sizeof(info);

		if (!bpf_program__autoload(prog))
			continue;
		if (bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len)) {
			int err = -errno;

			log_err("failed to read program info of %s: %s", bpf_program__name(prog),
				strerror(-err));
			return err;
		}
		total += info.verified_insns;
		if (json)
			fprintf(out, "{\"type\":\"program\",\"name\":\"%s\",\"hook\":\"%s\","
				"\"verified_insns\":%u,\"xlated_bytes\":%u}\n", bpf_program__name(prog),
				bpf_program__section_name(prog), info.verified_insns, info.xlated_prog_len);
		else
			fprintf(out, "%-20s %-42s %14u %12u\n", bpf_program__name(prog),
				bpf_program__section_name(prog), info.verified_insns, info.xlated_prog_len);
	}
	if (!json)
		fprintf(out, "%-20s %-42s %14u\n", "total", "", total);
	return 0;
}

const char *const loss_names[LOSS_MAX] = {
	[KACCESS_CTR_CONN_TABLE_FULL] = "conn_table_full",
	[KACCESS_CTR_AGG_TABLE_FULL] = "agg_table_full",
	[KACCESS_CTR_RINGBUF_FULL] = "ringbuf_full",
	[KACCESS_CTR_SYSCALL_CTX_FAILED] = "syscall_ctx_failed",
	[KACCESS_CTR_AGG_STALE_BUCKET] = "agg_stale_bucket",
	[KACCESS_CTR_CONN_REPLACED] = "conn_replaced",
	[KACCESS_CTR_HTTP_PARSE_FAILED] = "http_parse_failed",
	[KACCESS_CTR_HTTP_CONNS_FULL] = "http_conns_full",
	[KACCESS_CTR_HTTP_TABLE_FULL] = "http_table_full",
	[KACCESS_CTR_HTTP_ENDPOINT_LOST] = "http_endpoint_lost",
	[KACCESS_CTR_HTTP_PIPELINE_FULL] = "http_pipeline_full",
	[KACCESS_CTR_L24_WINDOW_LOST] = "l24_window_lost",
	[KACCESS_CTR_H2_HEADERS_LOST] = "h2_headers_lost",
	[KACCESS_CTR_H2_STREAM_LOST] = "h2_stream_lost",
	[KACCESS_CTR_HTTP_UPGRADE_UNFOLLOWED] = "http_upgrade_unfollowed",
	[KACCESS_CTR_HTTP_RECORD_LOST] = "http_record_lost",
	[KACCESS_CTR_L24_HOOKS_UNSEEN] = "l24_hooks_unseen",
	[KACCESS_CTR_L24_RX_UNTIMED] = "l24_rx_untimed",
	[LOSS_PROGRAMS_NOT_ATTACHED] = "programs_not_attached",
	[LOSS_DESTROY_MISSED] = "destroy_missed",
	[LOSS_PROGRAM_RECURSION_MISSES] = "program_recursion_misses",
	[LOSS_H2_UNDECODED] = "h2_headers_undecoded",
	[LOSS_HTTP_RECORD_HEAD_CUT] = "http_record_head_cut",
	[LOSS_HTTP_RECORD_SHED] = "http_record_shed",
};

static uint64_t recursion_misses(struct agent *agent)
{
	struct bpf_program *prog;
	uint64_t misses = 0;

	bpf_object__for_each_program(prog, agent->skel->obj) {
		struct bpf_prog_info info = { 0 };
		__u32 len = sizeof(info);

		if (bpf_program__autoload(prog) &&
		    bpf_obj_get_info_by_fd(bpf_program__fd(prog), &info, &len) == 0)
			misses += info.recursion_misses;
	}
	return misses;
}

int agent_read_losses(struct agent *agent, struct loss_counters *ret_losses)
{
	uint64_t counters[KACCESS_CTR_MAX] = { 0 };
	int err = counters_read(bpf_map__fd(agent->skel->maps.counters), counters);

	memcpy(ret_losses->values, counters, KACCESS_CTR_LOSSES * sizeof(counters[0]));
	__atomic_store_n(&agent->http_records.sampled_out_in_kernel,
			 counters[KACCESS_CTR_HTTP_RECORDS_SAMPLED_OUT], __ATOMIC_RELAXED);
	ret_losses->values[LOSS_PROGRAMS_NOT_ATTACHED] = agent->programs_not_attached;
	ret_losses->values[LOSS_DESTROY_MISSED] = __atomic_load_n(&agent->destroy_missed, __ATOMIC_RELAXED);
	ret_losses->values[LOSS_PROGRAM_RECURSION_MISSES] = recursion_misses(agent);
	ret_losses->values[LOSS_H2_UNDECODED] = __atomic_load_n(&agent->h2_undecoded, __ATOMIC_RELAXED);
	ret_losses->values[LOSS_HTTP_RECORD_HEAD_CUT] =
		__atomic_load_n(&agent->http_records.head_cut, __ATOMIC_RELAXED);
	ret_losses->values[LOSS_HTTP_RECORD_SHED] =
		__atomic_load_n(&agent->http_records.shed, __ATOMIC_RELAXED);
	return err;
}

int agent_map_fd(struct agent *agent, const char *name)
{
	struct bpf_map *map = bpf_object__find_map_by_name(agent->skel->obj, name);

	return map ? bpf_map__fd(map) : -ENOENT;
}

void agent_destroy(struct agent *agent)
{
	agent_detach(agent);
	unpin_maps(agent);
	kaccess_bpf__destroy(agent->skel);
	agent->skel = NULL;
	endpoint_names_free(agent->endpoints);
	agent->endpoints = NULL;
	drop_reasons_free();
	if (agent->lock_fd >= 0)
		close(agent->lock_fd);
	agent->lock_fd = -1;
}
