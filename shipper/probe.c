// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <linux/capability.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "probe.h"
#include "log.h"

#define TRACEFS_EVENTS "/sys/kernel/tracing/events"

struct probe_env {
	struct btf *vmlinux_btf; /* NULL when the kernel has no BTF */
};

struct feature {
	const char *name;   /* as accepted by KACCESS_FEATURE_DENY */
	const char *needed; /* what kaccess cannot do without it */
	bool (*present)(const struct probe_env *env);
};

static bool has_btf(const struct probe_env *env)
{
	return env->vmlinux_btf != NULL;
}

static bool has_btf_tracepoint(const struct probe_env *env, const char *tracepoint)
{
	char name[128];

	if (!env->vmlinux_btf)
		return false;
	snprintf(name, sizeof(name), "btf_trace_%s", tracepoint);
	return btf__find_by_name_kind(env->vmlinux_btf, name, BTF_KIND_TYPEDEF) >= 0;
}

/* The arguments a BTF tracepoint passes (its btf_trace_ typedef's, less the context), or -1. */
static int btf_tracepoint_args(const struct probe_env *env, const char *tracepoint)
{
	const struct btf_type *type;
	char name[128];
	__s32 id;

	if (!env->vmlinux_btf)
		return -1;
	snprintf(name, sizeof(name), "btf_trace_%s", tracepoint);
	id = btf__find_by_name_kind(env->vmlinux_btf, name, BTF_KIND_TYPEDEF);
	if (id < 0)
		return -1;
	type = btf__type_by_id(env->vmlinux_btf, btf__resolve_type(env->vmlinux_btf, id));
	if (!type || !btf_is_ptr(type))
		return -1;
	type = btf__type_by_id(env->vmlinux_btf, type->type);
	return type && btf_is_func_proto(type) ? (int)btf_vlen(type) - 1 : -1;
}

static bool has_inet_sock_set_state(const struct probe_env *env)
{
	return has_btf_tracepoint(env, "inet_sock_set_state");
}

static bool has_tcp_destroy_sock(const struct probe_env *env)
{
	return has_btf_tracepoint(env, "tcp_destroy_sock");
}

static bool has_syscall_tracepoints(const struct probe_env *env)
{
	return access(TRACEFS_EVENTS "/syscalls/sys_enter_connect", F_OK) == 0;
}

static bool has_ringbuf(const struct probe_env *env)
{
	return libbpf_probe_bpf_map_type(BPF_MAP_TYPE_RINGBUF, NULL) == 1;
}

static bool has_task_storage(const struct probe_env *env)
{
	return libbpf_probe_bpf_map_type(BPF_MAP_TYPE_TASK_STORAGE, NULL) == 1;
}

static bool has_bpf_loop(const struct probe_env *env)
{
	return libbpf_probe_bpf_helper(BPF_PROG_TYPE_TRACEPOINT, BPF_FUNC_loop, NULL) == 1;
}

static const struct feature required_features[] = {
	{ "btf", "kernel BTF (CONFIG_DEBUG_INFO_BTF), for CO-RE and BTF tracepoints", has_btf },
	{ "syscall_tracepoints", "syscall tracepoints (CONFIG_FTRACE_SYSCALLS) under " TRACEFS_EVENTS, has_syscall_tracepoints },
	{ "inet_sock_set_state", "the sock:inet_sock_set_state BTF tracepoint, for connect outcomes", has_inet_sock_set_state },
	{ "tcp_destroy_sock", "the tcp:tcp_destroy_sock BTF tracepoint, to end connections", has_tcp_destroy_sock },
	{ "ringbuf", "BPF ring buffer maps (Linux 5.8), for connection events", has_ringbuf },
	{ "task_storage", "BPF task storage maps (Linux 5.11), for per-thread syscall state", has_task_storage },
	{ "bpf_loop", "the bpf_loop helper (Linux 5.17), for sendmmsg/recvmmsg byte counts", has_bpf_loop },
};

/* Fault injection for selftests: pretend the listed features are absent. */
static bool feature_denied(const char *name)
{
	const char *deny = getenv(FEATURE_DENY_ENV);
	size_t len = strlen(name);

	for (const char *p = deny; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
		if (strncmp(p, name, len) == 0 && (p[len] == ',' || p[len] == '\0'))
			return true;
	return false;
}

/*
 * Whether fentry programs load and attach here: some kernels (lockdown,
 * no ftrace direct calls) refuse them. A real attempt, on tcp_sendmsg.
 */
static bool has_fentry(const struct probe_env *env)
{
	struct bpf_insn return_zero[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_FENTRY);
	int btf_id, prog_fd, link_fd;

	if (!env->vmlinux_btf)
		return false;
	btf_id = btf__find_by_name_kind(env->vmlinux_btf, "tcp_sendmsg", BTF_KIND_FUNC);
	if (btf_id < 0)
		return false;
	opts.attach_btf_id = btf_id;
	prog_fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "kaccess_probe", "GPL", return_zero, 2, &opts);
	if (prog_fd < 0)
		return false;
	link_fd = bpf_raw_tracepoint_open(NULL, prog_fd);
	if (link_fd >= 0)
		close(link_fd);
	close(prog_fd);
	return link_fd >= 0;
}

static bool has_sock_length_tracepoints(const struct probe_env *env)
{
	return has_btf_tracepoint(env, "sock_send_length") &&
	       has_btf_tracepoint(env, "sock_recv_length");
}

const char *const l24_tracepoint_names[L24_TP_MAX] = {
	[L24_TP_NET_DEV_QUEUE] = "net_dev_queue",
	[L24_TP_QDISC_ENQUEUE] = "qdisc_enqueue",
	[L24_TP_NET_DEV_START_XMIT] = "net_dev_start_xmit",
	[L24_TP_NET_DEV_XMIT] = "net_dev_xmit",
	[L24_TP_TCP_RETRANSMIT_SKB] = "tcp_retransmit_skb",
	[L24_TP_TCP_SENDMSG_LOCKED] = "tcp_sendmsg_locked",
	[L24_TP_NEIGH_CREATE] = "neigh_create",
	[L24_TP_NEIGH_EVENT_SEND_DONE] = "neigh_event_send_done",
	[L24_TP_NEIGH_UPDATE] = "neigh_update",
	[L24_TP_NEIGH_UPDATE_DONE] = "neigh_update_done",
	[L24_TP_NETIF_RECEIVE_SKB] = "netif_receive_skb",
	[L24_TP_TCP_PROBE] = "tcp_probe",
	[L24_TP_SK_DATA_READY] = "sk_data_ready",
	[L24_TP_SKB_COPY_DATAGRAM_IOVEC] = "skb_copy_datagram_iovec",
	[L24_TP_KFREE_SKB] = "kfree_skb",
};

int l24_tracepoint_of_section(const char *section)
{
	const char *prefix = "tp_btf/";

	if (strncmp(section, prefix, strlen(prefix)) != 0)
		return -ENOENT;
	for (int i = 0; i < L24_TP_MAX; i++)
		if (strcmp(section + strlen(prefix), l24_tracepoint_names[i]) == 0)
			return i;
	return -ENOENT;
}

/* Tests emulate an older kernel by denying tracepoints by name. */
static unsigned int present_l24_tracepoints(const struct probe_env *env)
{
	unsigned int present = 0;

	for (int i = 0; i < L24_TP_MAX; i++)
		if (!feature_denied(l24_tracepoint_names[i]) &&
		    has_btf_tracepoint(env, l24_tracepoint_names[i]))
			present |= 1u << i;
	/* kfree_skb names no location before its drop reason (Linux 5.17) */
	if (!env->vmlinux_btf ||
	    btf__find_by_name_kind(env->vmlinux_btf, "skb_drop_reason", BTF_KIND_ENUM) < 0)
		present &= ~(1u << L24_TP_KFREE_SKB);
	return present;
}

int features_probe(const char *btf_path, struct kernel_features *ret_optional)
{
	struct probe_env env = { 0 };
	struct utsname uts = { 0 };
	int ret = 0;

	env.vmlinux_btf = btf_path && btf_path[0] ? btf__parse(btf_path, NULL)
						  : btf__load_vmlinux_btf();
	if (!env.vmlinux_btf)
		env.vmlinux_btf = NULL; /* libbpf 1.x returns NULL and sets errno */
	uname(&uts);
	for (size_t i = 0; i < sizeof(required_features) / sizeof(required_features[0]); i++) {
		const struct feature *feature = &required_features[i];

		if (!feature_denied(feature->name) && feature->present(&env)) {
			log_debug("feature %s: present", feature->name);
			continue;
		}
		log_err("kernel %s lacks %s: %s", uts.release, feature->name, feature->needed);
		ret = -EOPNOTSUPP;
		break;
	}
	if (!ret)
		log_info("kernel %s: all required features present (BTF, syscall and BTF "
			 "tracepoints, ring buffer, task storage, bpf_loop)", uts.release);
	ret_optional->sock_length_tracepoints = !feature_denied("sock_length_tracepoints") &&
						has_sock_length_tracepoints(&env);
	ret_optional->fentry = !feature_denied("fentry") && has_fentry(&env);
	ret_optional->l24_tracepoints = present_l24_tracepoints(&env);
	ret_optional->retransmit_reports_err = btf_tracepoint_args(&env, "tcp_retransmit_skb") >= 3;
	/* the program type's context struct arrived with the program type */
	ret_optional->netfilter_links = !feature_denied("netfilter_links") && env.vmlinux_btf &&
					btf__find_by_name_kind(env.vmlinux_btf, "bpf_nf_ctx",
							       BTF_KIND_STRUCT) >= 0;
	btf__free(env.vmlinux_btf);
	return ret;
}

struct capabilities {
	__u32 effective[2];
};

static int read_capabilities(struct capabilities *caps)
{
	struct __user_cap_header_struct header = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { 0 };

	if (syscall(SYS_capget, &header, data))
		return -errno;
	caps->effective[0] = data[0].effective;
	caps->effective[1] = data[1].effective;
	return 0;
}

static bool has_capability(const struct capabilities *caps, int cap)
{
	return caps->effective[cap / 32] & (1u << (cap % 32));
}

int features_check_capabilities(void)
{
	struct capabilities caps = { 0 };
	bool sys_admin;

	if (read_capabilities(&caps))
		return 0; /* cannot tell: let the kernel decide and report */
	sys_admin = has_capability(&caps, CAP_SYS_ADMIN);
	if (!has_capability(&caps, CAP_BPF) && !sys_admin) {
		log_err("missing capability CAP_BPF: needed to create BPF maps and load programs "
			"(run as root, or grant CAP_BPF, CAP_PERFMON and CAP_SYS_ADMIN)");
		return -EPERM;
	}
	if (!has_capability(&caps, CAP_PERFMON) && !sys_admin) {
		log_err("missing capability CAP_PERFMON: needed to attach tracepoints and read kernel "
			"memory from BPF programs");
		return -EPERM;
	}
	if (!sys_admin)
		log_warn("without CAP_SYS_ADMIN, connections established before start in other "
			 "network namespaces are not adopted");
	if (!has_capability(&caps, CAP_SYS_PTRACE))
		log_warn("without CAP_SYS_PTRACE, other processes' network namespaces cannot be "
			 "opened to adopt their existing connections");
	return 0;
}
