// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The benchmark's yardstick: the cheapest program that still does what
 * every timed kaccess program must do, one clock read and one per-CPU
 * counter increment, attached to the same hooks as the agent.
 *
 * Absolute nanoseconds from kernel.bpf_stats_enabled drift between
 * machines (clock source, CPU, mitigations); the ratio of an agent program
 * to this one on the same hook kind does not, so `make bench` reports each
 * agent program as a multiple of it.
 *
 * Keep the hook lists below in sync with bpf/connections.bpf.c,
 * bpf/transfer.bpf.c and bpf/l24.bpf.c; bench.sh names every agent hook
 * that has no calibration program here.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

#include "calibrate.h"

char LICENSE[] SEC("license") = "Dual BSD/GPL";

/*
 * calibrate_runs: key = enum calibrate_hook_kind, value = struct
 * calibrate_slot per CPU. Written by every program here, read by the loader
 * at exit to cross-check bpf_stats run counts. Size: 3 x 16 bytes per CPU.
 * Not pinned.
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, CALIBRATE_HOOK_KIND_MAX);
	__type(key, __u32);
	__type(value, struct calibrate_slot);
} calibrate_runs SEC(".maps");

/* The whole measured body: one clock read, one per-CPU increment. */
static __always_inline int calibrate_once(__u32 kind)
{
	struct calibrate_slot *slot = bpf_map_lookup_elem(&calibrate_runs, &kind);
	__u64 now_ns = bpf_ktime_get_ns();

	if (slot) {
		slot->runs += 1; /* per-CPU slot: no atomics, like kaccess's counters */
		slot->last_ns = now_ns; /* keep the clock read a real, used value */
	}
	return 0;
}

#define CALIBRATE_SYSCALL(name)                                              \
	SEC("tracepoint/syscalls/sys_enter_" #name)                          \
	int cal_enter_##name(void *ctx)                                      \
	{                                                                    \
		return calibrate_once(CALIBRATE_HOOK_SYSCALL_TRACEPOINT);    \
	}                                                                    \
	SEC("tracepoint/syscalls/sys_exit_" #name)                           \
	int cal_exit_##name(void *ctx)                                       \
	{                                                                    \
		return calibrate_once(CALIBRATE_HOOK_SYSCALL_TRACEPOINT);    \
	}

/* bpf/connections.bpf.c */
CALIBRATE_SYSCALL(connect)
CALIBRATE_SYSCALL(accept)
CALIBRATE_SYSCALL(accept4)
CALIBRATE_SYSCALL(close)
/* bpf/transfer.bpf.c */
CALIBRATE_SYSCALL(read)
CALIBRATE_SYSCALL(readv)
CALIBRATE_SYSCALL(recvfrom)
CALIBRATE_SYSCALL(recvmsg)
CALIBRATE_SYSCALL(recvmmsg)
CALIBRATE_SYSCALL(write)
CALIBRATE_SYSCALL(writev)
CALIBRATE_SYSCALL(sendto)
CALIBRATE_SYSCALL(sendmsg)
CALIBRATE_SYSCALL(sendmmsg)
CALIBRATE_SYSCALL(sendfile64)

SEC("tp_btf/inet_sock_set_state")
int BPF_PROG(cal_inet_sock_set_state)
{
	return calibrate_once(CALIBRATE_HOOK_TP_BTF);
}

SEC("tp_btf/tcp_destroy_sock")
int BPF_PROG(cal_tcp_destroy_sock)
{
	return calibrate_once(CALIBRATE_HOOK_TP_BTF);
}

/* Not in every kernel: the loader skips a tp_btf hook its BTF lacks. */
SEC("tp_btf/sock_send_length")
int BPF_PROG(cal_sock_send_length)
{
	return calibrate_once(CALIBRATE_HOOK_TP_BTF);
}

SEC("tp_btf/sock_recv_length")
int BPF_PROG(cal_sock_recv_length)
{
	return calibrate_once(CALIBRATE_HOOK_TP_BTF);
}

/*
 * The packet path (bpf/l24.bpf.c): these fire per sk_buff, in softirq as
 * often as in a task, so they get a yardstick of their own rather than the
 * socket events' above.
 */
#define CALIBRATE_PACKET_PATH(tracepoint)                                    \
	SEC("tp_btf/" #tracepoint)                                           \
	int BPF_PROG(cal_##tracepoint)                                       \
	{                                                                    \
		return calibrate_once(CALIBRATE_HOOK_PACKET_PATH);           \
	}

CALIBRATE_PACKET_PATH(net_dev_queue)
CALIBRATE_PACKET_PATH(qdisc_enqueue)
CALIBRATE_PACKET_PATH(net_dev_start_xmit)
CALIBRATE_PACKET_PATH(net_dev_xmit)
CALIBRATE_PACKET_PATH(tcp_retransmit_skb)
CALIBRATE_PACKET_PATH(tcp_sendmsg_locked)
CALIBRATE_PACKET_PATH(neigh_create)
CALIBRATE_PACKET_PATH(neigh_event_send_done)
CALIBRATE_PACKET_PATH(neigh_update)
CALIBRATE_PACKET_PATH(neigh_update_done)
CALIBRATE_PACKET_PATH(netif_receive_skb)
CALIBRATE_PACKET_PATH(tcp_probe)
/* Linux 6.6+; the loader skips it where the kernel lacks it */
CALIBRATE_PACKET_PATH(sk_data_ready)
CALIBRATE_PACKET_PATH(skb_copy_datagram_iovec)
