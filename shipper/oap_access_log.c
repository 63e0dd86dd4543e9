// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oap_access_log.h"
#include "drop_reasons.h"
#include "oap/pb_pack.h"
#include "trace_context.h"

/* Every sub-message of one access log, on the caller's stack. */
struct access_log {
	Skywalking__V3__EBPFAccessLogMessage msg;
	Skywalking__V3__AccessLogConnection connection;
	Skywalking__V3__ConnectionAddress local, remote;
	Skywalking__V3__KubernetesProcessAddress local_pod, remote_pod;
	Skywalking__V3__IPAddress remote_ip;
	Skywalking__V3__AccessLogKernelLog kernel_log, *kernel_logs[1];
	Skywalking__V3__AccessLogKernelConnectOperation connect;
	Skywalking__V3__AccessLogKernelAcceptOperation accept;
	Skywalking__V3__AccessLogKernelCloseOperation close;
	Skywalking__V3__EBPFTimestamp start, end;
	Skywalking__V3__EBPFOffsetTimestamp start_offset, end_offset;
	char comm[KACCESS_COMM_LEN + 1];
	char remote_host[INET6_ADDRSTRLEN];
};

static const uint8_t v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

static void address_text(const uint8_t *addr, char *ret, size_t len)
{
	if (memcmp(addr, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0)
		inet_ntop(AF_INET, addr + 12, ret, len);
	else
		inet_ntop(AF_INET6, addr, ret, len);
}

/* A span's start from its end and length (CLOCK_MONOTONIC), never before boot. */
static uint64_t start_of(uint64_t end_ns, uint64_t duration_ns)
{
	return end_ns - (duration_ns < end_ns ? duration_ns : 0);
}

/* The AccessLogConnection role of a kaccess role. */
static int detect_point(uint8_t role)
{
	return role == KACCESS_ROLE_SERVER ? SKYWALKING__V3__DETECT_POINT__server
					   : SKYWALKING__V3__DETECT_POINT__client;
}

/* ts_ns is CLOCK_MONOTONIC: nanoseconds since boot, OAP's offset. */
static void set_times(struct access_log *log, uint64_t end_ns, uint64_t duration_ns)
{
	skywalking__v3__ebpftimestamp__init(&log->start);
	skywalking__v3__ebpftimestamp__init(&log->end);
	skywalking__v3__ebpfoffset_timestamp__init(&log->start_offset);
	skywalking__v3__ebpfoffset_timestamp__init(&log->end_offset);
	log->start_offset.offset = start_of(end_ns, duration_ns);
	log->end_offset.offset = end_ns;
	log->start.timestamp_case = SKYWALKING__V3__EBPFTIMESTAMP__TIMESTAMP_OFFSET;
	log->start.offset = &log->start_offset;
	log->end.timestamp_case = SKYWALKING__V3__EBPFTIMESTAMP__TIMESTAMP_OFFSET;
	log->end.offset = &log->end_offset;
}

static int set_kernel_log(struct access_log *log, const struct kaccess_conn_event *event)
{
	Skywalking__V3__AccessLogKernelLog *k = &log->kernel_log;
	bool server = event->conn.agg.role == KACCESS_ROLE_SERVER;

	skywalking__v3__access_log_kernel_log__init(k);
	set_times(log, event->ts_ns, event->duration_ns);
	switch (event->type) {
	case KACCESS_EVENT_CONN_OPEN:
	case KACCESS_EVENT_CONNECT_FAILED:
		if (server) {
			skywalking__v3__access_log_kernel_accept_operation__init(&log->accept);
			log->accept.starttime = &log->start;
			log->accept.endtime = &log->end;
			k->operation_case = SKYWALKING__V3__ACCESS_LOG_KERNEL_LOG__OPERATION_ACCEPT;
			k->accept = &log->accept;
			break;
		}
		skywalking__v3__access_log_kernel_connect_operation__init(&log->connect);
		log->connect.starttime = &log->start;
		log->connect.endtime = &log->end;
		log->connect.success = event->type == KACCESS_EVENT_CONN_OPEN;
		k->operation_case = SKYWALKING__V3__ACCESS_LOG_KERNEL_LOG__OPERATION_CONNECT;
		k->connect = &log->connect;
		break;
	case KACCESS_EVENT_CONN_CLOSE:
		skywalking__v3__access_log_kernel_close_operation__init(&log->close);
		log->close.starttime = &log->start;
		log->close.endtime = &log->end;
		log->close.success = true;
		k->operation_case = SKYWALKING__V3__ACCESS_LOG_KERNEL_LOG__OPERATION_CLOSE;
		k->close = &log->close;
		break;
	default:
		return -EINVAL;
	}
	log->kernel_logs[0] = k;
	return 0;
}

static void set_pod_address(Skywalking__V3__ConnectionAddress *address,
			    Skywalking__V3__KubernetesProcessAddress *pod, const struct k8s_identity *id,
			    const char *process, uint16_t port)
{
	skywalking__v3__connection_address__init(address);
	skywalking__v3__kubernetes_process_address__init(pod);
	pod->servicename = (char *)id->service;
	pod->podname = (char *)id->instance;
	pod->processname = (char *)process;
	pod->port = port;
	address->address_case = SKYWALKING__V3__CONNECTION_ADDRESS__ADDRESS_KUBERNETES;
	address->kubernetes = pod;
}

/* Who talks to whom, as OAP reads it; `comm` may be "" and `local_port` 0 (rows). */
struct connection_facts {
	uint8_t role;                 /* enum kaccess_role */
	int protocol;                 /* AccessLogProtocolType: TCP (0), HTTP_1, HTTP_2 */
	const char *comm;
	uint16_t local_port, remote_port;
	const uint8_t *remote_addr;   /* v4-mapped for IPv4 */
};

static void set_connection(struct access_log *log, const struct connection_facts *facts,
			   const struct k8s_identity *local, const struct k8s_identity *peer)
{
	skywalking__v3__access_log_connection__init(&log->connection);
	snprintf(log->comm, sizeof(log->comm), "%s", facts->comm);
	set_pod_address(&log->local, &log->local_pod, local, log->comm, facts->local_port);
	if (peer) {
		set_pod_address(&log->remote, &log->remote_pod, peer, "", facts->remote_port);
	} else {
		skywalking__v3__connection_address__init(&log->remote);
		skywalking__v3__ipaddress__init(&log->remote_ip);
		address_text(facts->remote_addr, log->remote_host, sizeof(log->remote_host));
		log->remote_ip.host = log->remote_host;
		log->remote_ip.port = facts->remote_port;
		log->remote.address_case = SKYWALKING__V3__CONNECTION_ADDRESS__ADDRESS_IP;
		log->remote.ip = &log->remote_ip;
	}
	log->connection.local = &log->local;
	log->connection.remote = &log->remote;
	log->connection.role = detect_point(facts->role);
	log->connection.tlsmode = SKYWALKING__V3__ACCESS_LOG_CONNECTION_TLSMODE__Plain;
	log->connection.protocol = facts->protocol;
}

int access_log_send_event(struct oap_sender *sender, const struct kaccess_conn_event *event,
			  const struct k8s_identity *local, const struct k8s_identity *peer)
{
	struct access_log log;
	int err;

	memset(&log, 0, sizeof(log));
	char comm[KACCESS_COMM_LEN + 1];
	struct connection_facts facts = {
		.role = event->conn.agg.role,
		.protocol = SKYWALKING__V3__ACCESS_LOG_PROTOCOL_TYPE__TCP,
		.comm = comm,
		.local_port = event->conn.local_port,
		.remote_port = event->conn.remote_port,
		.remote_addr = event->conn.remote_addr,
	};

	memcpy(comm, event->conn.comm, KACCESS_COMM_LEN);
	comm[KACCESS_COMM_LEN] = '\0';
	err = set_kernel_log(&log, event);
	if (err)
		return err;
	set_connection(&log, &facts, local, peer);
	skywalking__v3__ebpfaccess_log_message__init(&log.msg);
	log.msg.connection = &log.connection;
	log.msg.n_kernellogs = 1;
	log.msg.kernellogs = log.kernel_logs;
	return oap_sender_enqueue_access_log(sender, &log.msg);
}

/*
 * Stock-OAP-compatible mode: OAP counts one call per kernel log and averages
 * their durations, so a row of n reads taking s ns in all becomes n read logs
 * whose durations are s / n, the first s % n of them 1 ns longer: OAP's count,
 * sum and average are then exactly the kernel's. Their times are spread over
 * the bucket so that OAP files them under the same minute.
 */
#define SYSCALL_LOGS_PER_MESSAGE 128

struct syscall_batch {
	Skywalking__V3__AccessLogKernelLog logs[SYSCALL_LOGS_PER_MESSAGE];
	Skywalking__V3__AccessLogKernelLog *log_ptrs[SYSCALL_LOGS_PER_MESSAGE];
	Skywalking__V3__AccessLogKernelReadOperation reads[SYSCALL_LOGS_PER_MESSAGE];
	Skywalking__V3__AccessLogKernelWriteOperation writes[SYSCALL_LOGS_PER_MESSAGE];
	Skywalking__V3__EBPFTimestamp starts[SYSCALL_LOGS_PER_MESSAGE], ends[SYSCALL_LOGS_PER_MESSAGE];
	Skywalking__V3__EBPFOffsetTimestamp start_offsets[SYSCALL_LOGS_PER_MESSAGE];
	Skywalking__V3__EBPFOffsetTimestamp end_offsets[SYSCALL_LOGS_PER_MESSAGE];
	Skywalking__V3__AccessLogKernelWriteL4Metrics write_l4[SYSCALL_LOGS_PER_MESSAGE];
	Skywalking__V3__AccessLogKernelWriteL3Metrics write_l3[SYSCALL_LOGS_PER_MESSAGE];
	Skywalking__V3__AccessLogKernelWriteL2Metrics write_l2[SYSCALL_LOGS_PER_MESSAGE];
	Skywalking__V3__AccessLogKernelReadL2Metrics read_l2[SYSCALL_LOGS_PER_MESSAGE];
	Skywalking__V3__AccessLogKernelReadL3Metrics read_l3[SYSCALL_LOGS_PER_MESSAGE];
	Skywalking__V3__AccessLogKernelReadL4Metrics read_l4[SYSCALL_LOGS_PER_MESSAGE];
	/* the row's loss locations, all on its first write log; one more for OTHER */
	Skywalking__V3__AccessLogLossPackageMetrics losses[KACCESS_LOSS_REASON_SLOTS + 1];
	Skywalking__V3__AccessLogLossPackageMetrics *loss_ptrs[KACCESS_LOSS_REASON_SLOTS + 1];
	char loss_names[KACCESS_LOSS_REASON_SLOTS + 1][64];
};

/* n calls of one kind whose durations add up to a sum: log `index` ends at first_end + index * step. */
struct syscall_run {
	bool write;
	uint64_t count, duration_ns_sum;
	uint64_t first_end_ns, step_ns;       /* CLOCK_MONOTONIC */
	const struct kaccess_agg_value *row; /* its L2-L4 sums, spread like the durations (or NULL) */
	unsigned int l24_measured;            /* enum kaccess_l24_measure; 0 without a row */
};

/*
 * Kernel logs are built here one run at a time, by the event loop (the
 * only thread that sends access logs): one batch, allocated once, serves
 * every exchange and every row. Each log it holds is initialised anew.
 */
static struct syscall_batch *syscall_batch_get(void)
{
	static struct syscall_batch *batch;

	if (!batch)
		batch = calloc(1, sizeof(*batch));
	return batch;
}

/* Log `index` of `count`'s share of `sum`: the shares add up to `sum` exactly. */
static uint64_t share(uint64_t sum, uint64_t count, uint64_t index)
{
	return sum / count + (index < sum % count ? 1 : 0);
}

struct loss_target {
	struct syscall_batch *b;
	Skywalking__V3__AccessLogKernelWriteL4Metrics *l4;
};

static void add_loss_location(void *ctx, const char *location, __u64 packets)
{
	struct loss_target *t = ctx;
	struct syscall_batch *b = t->b;
	size_t n = t->l4->n_losspackagemetrics;

	snprintf(b->loss_names[n], sizeof(b->loss_names[n]), "%s", location);
	skywalking__v3__access_log_loss_package_metrics__init(&b->losses[n]);
	b->losses[n].location = b->loss_names[n];
	b->losses[n].count = (int32_t)(packets > INT32_MAX ? INT32_MAX : packets);
	b->loss_ptrs[n] = &b->losses[n];
	t->l4->n_losspackagemetrics = n + 1;
	t->l4->losspackagemetrics = b->loss_ptrs;
}

/*
 * A write log's L2-L4 metrics: its share of each sum the kernel measures.
 * Without netfilter links (6.1, or `l24_netfilter = off`) the L3 windows
 * other than the neighbour resolutions are 0 here, and OAP shows them so.
 */
static void set_write_metrics(struct syscall_batch *b, size_t slot, const struct syscall_run *run,
			      uint64_t index)
{
	const struct kaccess_agg_value *v = run->row;
	Skywalking__V3__AccessLogKernelWriteOperation *op = &b->writes[slot];
	unsigned int m = run->l24_measured;

	if (!m)
		return;
#define SHARE(field) share(v->field, run->count, index)
	skywalking__v3__access_log_kernel_write_l4_metrics__init(&b->write_l4[slot]);
	b->write_l4[slot].totalduration = SHARE(write_l4_duration_ns_sum);
	b->write_l4[slot].totaltransmitpackagecount = SHARE(write_packets);
	b->write_l4[slot].totalpackagesize = SHARE(write_packet_bytes);
	b->write_l4[slot].totalretransmitpackagecount = SHARE(write_retransmit_packets);
	if (index == 0 && (m & KACCESS_L24_LOSS)) /* whole, on one log: a count does not split */
		loss_locations_foreach(v, add_loss_location,
				       &(struct loss_target){ b, &b->write_l4[slot] });
	op->l4metrics = &b->write_l4[slot];
	skywalking__v3__access_log_kernel_write_l3_metrics__init(&b->write_l3[slot]);
	b->write_l3[slot].totalresolvemaccount = SHARE(write_resolve_mac_count);
	b->write_l3[slot].totalresolvemacduration = SHARE(write_resolve_mac_duration_ns_sum);
	b->write_l3[slot].totalduration = SHARE(write_l3_duration_ns_sum);
	b->write_l3[slot].totallocalduration = SHARE(write_l3_local_duration_ns_sum);
	b->write_l3[slot].totaloutputduration = SHARE(write_l3_output_duration_ns_sum);
	b->write_l3[slot].totalnetfiltercount = SHARE(write_netfilter_count);
	b->write_l3[slot].totalnetfilterduration = SHARE(write_netfilter_duration_ns_sum);
	op->l3metrics = &b->write_l3[slot];
	skywalking__v3__access_log_kernel_write_l2_metrics__init(&b->write_l2[slot]);
	b->write_l2[slot].totalduration = SHARE(write_l2_duration_ns_sum);
	b->write_l2[slot].totalenterqueuebuffercount = SHARE(write_l2_enter_queue_count);
	b->write_l2[slot].totalreadysendduration = SHARE(write_l2_ready_send_duration_ns_sum);
	b->write_l2[slot].totalnetdevicesendduration = SHARE(write_l2_device_send_duration_ns_sum);
	op->l2metrics = &b->write_l2[slot];
}

static void set_read_metrics(struct syscall_batch *b, size_t slot, const struct syscall_run *run,
			     uint64_t index)
{
	const struct kaccess_agg_value *v = run->row;
	Skywalking__V3__AccessLogKernelReadOperation *op = &b->reads[slot];

	if (!run->l24_measured)
		return;
	skywalking__v3__access_log_kernel_read_l2_metrics__init(&b->read_l2[slot]);
	b->read_l2[slot].totalpackagecount = (uint32_t)SHARE(read_packets);
	b->read_l2[slot].totalpackagesize = SHARE(read_packet_bytes);
	b->read_l2[slot].totalpackagetoqueueduration = SHARE(read_l2_to_queue_duration_ns_sum);
	b->read_l2[slot].totalrcvpackagefromqueueduration = SHARE(read_l2_from_queue_duration_ns_sum);
	op->l2metrics = &b->read_l2[slot];
	skywalking__v3__access_log_kernel_read_l3_metrics__init(&b->read_l3[slot]);
	b->read_l3[slot].totalduration = SHARE(read_l3_duration_ns_sum);
	b->read_l3[slot].totalrecvduration = SHARE(read_l3_rcv_duration_ns_sum);
	b->read_l3[slot].totallocalduration = SHARE(read_l3_local_duration_ns_sum);
	b->read_l3[slot].totalnetfiltercount = SHARE(read_netfilter_count);
	b->read_l3[slot].totalnetfilterduration = SHARE(read_netfilter_duration_ns_sum);
	op->l3metrics = &b->read_l3[slot];
	skywalking__v3__access_log_kernel_read_l4_metrics__init(&b->read_l4[slot]);
	b->read_l4[slot].totalduration = SHARE(read_l4_duration_ns_sum);
	op->l4metrics = &b->read_l4[slot];
#undef SHARE
}

/* Log `index` of a run: it ends at first_end + index * step, lasting its share of the sum. */
static void syscall_log_times(const struct syscall_run *run, uint64_t index, uint64_t *ret_start_ns,
			      uint64_t *ret_end_ns)
{
	uint64_t duration = share(run->duration_ns_sum, run->count, index);
	uint64_t end = run->first_end_ns + index * run->step_ns;

	if (end < duration)
		end = duration;
	*ret_start_ns = end - duration;
	*ret_end_ns = end;
}

static void set_syscall_log(struct syscall_batch *b, size_t slot, const struct syscall_run *run,
			    uint64_t index)
{
	Skywalking__V3__AccessLogKernelLog *k = &b->logs[slot];

	skywalking__v3__ebpfoffset_timestamp__init(&b->start_offsets[slot]);
	skywalking__v3__ebpfoffset_timestamp__init(&b->end_offsets[slot]);
	syscall_log_times(run, index, &b->start_offsets[slot].offset, &b->end_offsets[slot].offset);
	skywalking__v3__ebpftimestamp__init(&b->starts[slot]);
	skywalking__v3__ebpftimestamp__init(&b->ends[slot]);
	b->starts[slot].timestamp_case = SKYWALKING__V3__EBPFTIMESTAMP__TIMESTAMP_OFFSET;
	b->starts[slot].offset = &b->start_offsets[slot];
	b->ends[slot].timestamp_case = SKYWALKING__V3__EBPFTIMESTAMP__TIMESTAMP_OFFSET;
	b->ends[slot].offset = &b->end_offsets[slot];
	skywalking__v3__access_log_kernel_log__init(k);
	if (run->write) {
		skywalking__v3__access_log_kernel_write_operation__init(&b->writes[slot]);
		b->writes[slot].starttime = &b->starts[slot];
		b->writes[slot].endtime = &b->ends[slot];
		set_write_metrics(b, slot, run, index);
		k->operation_case = SKYWALKING__V3__ACCESS_LOG_KERNEL_LOG__OPERATION_WRITE;
		k->write = &b->writes[slot];
	} else {
		skywalking__v3__access_log_kernel_read_operation__init(&b->reads[slot]);
		b->reads[slot].starttime = &b->starts[slot];
		b->reads[slot].endtime = &b->ends[slot];
		set_read_metrics(b, slot, run, index);
		k->operation_case = SKYWALKING__V3__ACCESS_LOG_KERNEL_LOG__OPERATION_READ;
		k->read = &b->reads[slot];
	}
	b->log_ptrs[slot] = k;
}

static int send_batch(struct oap_sender *sender, Skywalking__V3__EBPFAccessLogMessage *msg,
		      struct syscall_batch *b, size_t slots)
{
	int err;

	msg->n_kernellogs = slots;
	msg->kernellogs = slots ? b->log_ptrs : NULL;
	err = oap_sender_enqueue_access_log(sender, msg);
	msg->protocollog = NULL; /* on the first message of the run only */
	return err;
}

/* Past the runs' exhausted ends: false while `*at` names a log still to send. */
static bool runs_done(const struct syscall_run *runs, size_t n_runs, struct syscall_log_position *at)
{
	while (at->run < n_runs && at->index >= runs[at->run].count) {
		at->run++;
		at->index = 0;
	}
	return at->run >= n_runs;
}

/* The next message's kernel logs from `*at` on: up to SYSCALL_LOGS_PER_MESSAGE; how many. */
static size_t fill_batch(struct syscall_batch *b, const struct syscall_run *runs, size_t n_runs,
			 struct syscall_log_position *at)
{
	size_t slots = 0;

	while (slots < SYSCALL_LOGS_PER_MESSAGE && !runs_done(runs, n_runs, at))
		set_syscall_log(b, slots++, &runs[at->run], at->index++);
	return slots;
}

/*
 * The runs' kernel logs in order from `*at`, SYSCALL_LOGS_PER_MESSAGE per
 * message of `msg` (its connection on every one: the runs stay contiguous
 * even if a reader joins messages). A protocol log set on `msg` goes with
 * the first. Before each message `pace` (NULL: none) is asked for room,
 * before any log is built; without it `*at` keeps where the next message
 * starts and -EAGAIN is returned. 0 once every log is queued.
 */
static int send_syscall_runs(struct oap_sender *sender, Skywalking__V3__EBPFAccessLogMessage *msg,
			     struct syscall_batch *b, const struct syscall_run *runs, size_t n_runs,
			     struct syscall_log_position *at, const struct syscall_log_pace *pace)
{
	while (msg->protocollog || !runs_done(runs, n_runs, at)) {
		int err;

		if (pace && !pace->has_room(pace->ctx))
			return -EAGAIN;
		err = send_batch(sender, msg, b, fill_batch(b, runs, n_runs, at));
		if (err)
			return err;
	}
	return 0;
}

/* Every sub-message of one HTTP protocol log, on the caller's stack. */
struct http_log {
	struct access_log base;
	Skywalking__V3__AccessLogProtocolLogs protocol;
	Skywalking__V3__AccessLogHTTPProtocol http;
	Skywalking__V3__AccessLogHTTPProtocolRequest request;
	Skywalking__V3__AccessLogHTTPProtocolResponse response;
	Skywalking__V3__AccessLogTraceInfo trace;
	struct trace_context context;
};

/* AccessLogHTTPProtocolRequestMethod of a method's text; GET for others, as Rover does. */
static int http_method_value(const char *method)
{
	static const char *const names[] = {
		"GET", "POST", "PUT", "DELETE", "HEAD", "PATCH", "OPTIONS", "TRACE", "CONNECT",
	};

	for (size_t i = 0; method && i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(method, names[i]) == 0)
			return (int)i; /* the enum's values follow this order */
	return SKYWALKING__V3__ACCESS_LOG_HTTPPROTOCOL_REQUEST_METHOD__Get;
}

static void set_http_trace(struct http_log *log, const struct http_record *r)
{
	if (trace_context_parse(r->sw8, r->b3, r->traceparent, &log->context))
		return;
	skywalking__v3__access_log_trace_info__init(&log->trace);
	log->trace.provider = log->context.provider;
	log->trace.traceid = log->context.trace_id;
	log->trace.tracesegmentid = log->context.segment_id;
	log->trace.spanid = log->context.span_id;
	log->request.trace = &log->trace;
}

/*
 * The peer's port to name with the peer's address, which is the row's
 * (agg.peer_addr): for a client the row's port, the backend's after a DNAT;
 * for a server the connection's, the row having none.
 */
static uint16_t http_peer_port(const struct http_record *r)
{
	return r->agg.role == KACCESS_ROLE_SERVER ? r->remote_port : r->agg.peer_port;
}

/*
 * The exchange's calls as kernel logs: the request's, then the response's,
 * their ends spread evenly from the exchange's start (the first request
 * call's end) to its end (the last response call's); each duration is its
 * share of its direction's sum, so OAP's count, sum and mean are the
 * kernel's. A server reads the request and writes the response; a client
 * the other way round.
 */
static void http_call_runs(const struct http_record *r, struct syscall_run runs[2])
{
	const struct kaccess_http_calls *c = &r->calls;
	uint64_t calls = (uint64_t)c->request_calls + c->response_calls;
	uint64_t step_ns = calls > 1 ? (r->end_ns - r->start_ns) / (calls - 1) : 0;
	bool server = r->agg.role == KACCESS_ROLE_SERVER;

	runs[0] = (struct syscall_run){ !server, c->request_calls, c->request_call_ns,
					r->start_ns, step_ns, NULL, 0 };
	runs[1] = (struct syscall_run){ server, c->response_calls, c->response_call_ns,
					r->start_ns + c->request_calls * step_ns, step_ns, NULL, 0 };
}

/* The connection's AccessLogProtocolType of a record: HTTP_1 or HTTP_2. */
static int http_protocol_type(const struct http_record *r)
{
	return r->version == KACCESS_HTTP_VERSION_2 ? SKYWALKING__V3__ACCESS_LOG_PROTOCOL_TYPE__HTTP_2
						    : SKYWALKING__V3__ACCESS_LOG_PROTOCOL_TYPE__HTTP_1;
}

/* AccessLogHTTPProtocolVersion of a record. */
static int http_version_value(const struct http_record *r)
{
	return r->version == KACCESS_HTTP_VERSION_2 ? SKYWALKING__V3__ACCESS_LOG_HTTPPROTOCOL_VERSION__HTTP2
						    : SKYWALKING__V3__ACCESS_LOG_HTTPPROTOCOL_VERSION__HTTP1;
}

/* The protocol log of a record, without its calls: calloc'ed, the caller frees it. */
static struct http_log *http_log_new(const struct http_record *r, const struct k8s_identity *local,
				     const struct k8s_identity *peer)
{
	struct connection_facts facts = {
		.role = r->agg.role,
		.protocol = http_protocol_type(r),
		.comm = "",
		.local_port = r->local_port,
		.remote_port = http_peer_port(r),
		.remote_addr = r->agg.peer_addr,
	};
	struct http_log *log = calloc(1, sizeof(*log));

	if (!log)
		return NULL;
	set_connection(&log->base, &facts, local, peer);
	set_times(&log->base, r->end_ns, r->end_ns - r->start_ns);
	skywalking__v3__access_log_httpprotocol_request__init(&log->request);
	log->request.method = http_method_value(r->method);
	log->request.path = (char *)(r->path ? r->path : "");
	log->request.host = (char *)(r->host ? r->host : "");
	log->request.sizeofheadersbytes = r->request_header_bytes;
	log->request.sizeofbodybytes = r->request_body_bytes;
	set_http_trace(log, r);
	skywalking__v3__access_log_httpprotocol_response__init(&log->response);
	log->response.statuscode = r->status;
	log->response.sizeofheadersbytes = r->response_header_bytes;
	log->response.sizeofbodybytes = r->response_body_bytes;
	skywalking__v3__access_log_httpprotocol__init(&log->http);
	log->http.starttime = &log->base.start;
	log->http.endtime = &log->base.end;
	log->http.version = http_version_value(r);
	log->http.request = &log->request;
	log->http.response = &log->response;
	skywalking__v3__access_log_protocol_logs__init(&log->protocol);
	log->protocol.protocol_case = SKYWALKING__V3__ACCESS_LOG_PROTOCOL_LOGS__PROTOCOL_HTTP;
	log->protocol.http = &log->http;
	skywalking__v3__ebpfaccess_log_message__init(&log->base.msg);
	log->base.msg.connection = &log->base.connection;
	log->base.msg.protocollog = &log->protocol;
	return log;
}

/*
 * ---- the same message written directly ----
 *
 * An exchange's message, from the record straight to bytes, field for field
 * what the structs above encode to (test_pb_pack compares the two on
 * thousands of random records): it is the one message per exchange, and
 * building and walking protobuf-c's structs for it was the larger part of
 * the shipper's CPU per exchange. Written backwards (pb_pack.h): the last
 * field first, the kernel logs last to first. Field numbers are
 * proto/ebpf/accesslog.proto's.
 */

/*
 * EBPFTimestamp{ offset: EBPFOffsetTimestamp{ offset } } as field `id` (1
 * or 2), written at once: both lengths follow from the offset's varint, so
 * the six timestamps of a message take no nested closes (written field by
 * field they were a third of the message's encoding under perf). Bytes:
 * tag(id), outer length, tag 1, inner length, then tag 1 and the offset
 * unless it is 0 (proto3 leaves a 0 out).
 */
static void wire_timestamp(struct pb_writer *w, uint32_t id, uint64_t offset_ns)
{
	size_t inner_len = offset_ns ? 1 + pb_varint_bytes(offset_ns) : 0; /* at most 11 */
	size_t outer_len = 2 + inner_len;
	uint8_t *p = pb_reserve_front(w, 2 + outer_len);

	if (!p)
		return;
	*p++ = (uint8_t)(id << 3 | 2);
	*p++ = (uint8_t)outer_len;
	*p++ = 1 << 3 | 2;
	*p++ = (uint8_t)inner_len;
	if (offset_ns) {
		*p++ = 1 << 3 | 0;
		pb_varint_at(p, offset_ns);
	}
}

/* One AccessLogKernelLog (field 3 of the message): a read (4) or write (5) with its times. */
static void wire_syscall_log(struct pb_writer *w, const struct syscall_run *run, uint64_t index)
{
	size_t log = w->used, operation = w->used;
	uint64_t start_ns, end_ns;

	syscall_log_times(run, index, &start_ns, &end_ns);
	wire_timestamp(w, 2, end_ns);
	wire_timestamp(w, 1, start_ns);
	pb_close_message(w, run->write ? 5 : 4, operation);
	pb_close_message(w, 3, log);
}

static void wire_trace(struct pb_writer *w, const struct trace_context *context)
{
	size_t trace = w->used;

	pb_put_string(w, 4, context->span_id);
	pb_put_string(w, 3, context->segment_id);
	pb_put_string(w, 2, context->trace_id);
	pb_put_int32(w, 1, context->provider);
	pb_close_message(w, 5, trace);
}

/* protocolLog (field 4): AccessLogProtocolLogs{ http: AccessLogHTTPProtocol }. */
static void wire_http(struct pb_writer *w, const struct http_record *r)
{
	size_t protocol = w->used, http = w->used, part;
	struct trace_context context;

	part = w->used;
	pb_put_uint64(w, 4, r->response_body_bytes);
	pb_put_uint64(w, 3, r->response_header_bytes);
	pb_put_int32(w, 1, r->status);
	pb_close_message(w, 5, part);
	part = w->used;
	pb_put_string(w, 6, r->host);
	if (!trace_context_parse(r->sw8, r->b3, r->traceparent, &context))
		wire_trace(w, &context);
	pb_put_uint64(w, 4, r->request_body_bytes);
	pb_put_uint64(w, 3, r->request_header_bytes);
	pb_put_string(w, 2, r->path);
	pb_put_int32(w, 1, http_method_value(r->method));
	pb_close_message(w, 4, part);
	pb_put_int32(w, 3, http_version_value(r));
	wire_timestamp(w, 2, r->end_ns);
	wire_timestamp(w, 1, start_of(r->end_ns, r->end_ns - r->start_ns));
	pb_close_message(w, 1, http);
	pb_close_message(w, 4, protocol);
}

/* A ConnectionAddress as field `id`: the pod (kubernetes, 1) or the address (ip, 2). */
static void wire_address(struct pb_writer *w, uint32_t id, const struct k8s_identity *pod,
			 const uint8_t *addr, uint16_t port)
{
	size_t address = w->used, inner = w->used;
	char host[INET6_ADDRSTRLEN];

	pb_put_int32(w, pod ? 5 : 2, port);
	if (pod) {
		pb_put_string(w, 2, pod->instance);
		pb_put_string(w, 1, pod->service);
	} else {
		address_text(addr, host, sizeof(host));
		pb_put_string(w, 1, host);
	}
	pb_close_message(w, pod ? 1 : 2, inner);
	pb_close_message(w, id, address);
}

/* connection (field 2): as set_connection() fills it for an exchange (no process name). */
static void wire_connection(struct pb_writer *w, const struct http_record *r,
			    const struct k8s_identity *local, const struct k8s_identity *peer)
{
	size_t connection = w->used;

	pb_put_int32(w, 5, http_protocol_type(r));
	pb_put_int32(w, 3, detect_point(r->agg.role));
	wire_address(w, 2, peer, r->agg.peer_addr, http_peer_port(r));
	wire_address(w, 1, local, NULL, r->local_port);
	pb_close_message(w, 2, connection);
}

/* The exchange's calls fit one message: the direct writer's case. */
static bool http_fits_one_message(const struct http_record *r, bool with_calls)
{
	return !with_calls ||
	       (uint64_t)r->calls.request_calls + r->calls.response_calls <= SYSCALL_LOGS_PER_MESSAGE;
}

static void wire_http_message(struct pb_writer *w, const struct http_record *r,
			      const struct k8s_identity *local, const struct k8s_identity *peer,
			      bool with_calls)
{
	struct syscall_run runs[2];

	wire_http(w, r);
	if (with_calls) {
		http_call_runs(r, runs);
		for (int run = 1; run >= 0; run--)
			for (uint64_t index = runs[run].count; index-- > 0;)
				wire_syscall_log(w, &runs[run], index);
	}
	wire_connection(w, r, local, peer);
}

/* One thread (the event loop) sends exchanges; a tool may encode from another. */
static _Thread_local struct pb_writer wire_writer;

/* The exchange's message, written directly: 0, or -ENOMEM. */
static int wire_http_record(const struct http_record *r, const struct k8s_identity *local,
			    const struct k8s_identity *peer, bool with_calls)
{
	pb_writer_reset(&wire_writer);
	wire_http_message(&wire_writer, r, local, peer, with_calls);
	return wire_writer.failed ? -ENOMEM : 0;
}

/* ---- sending an exchange ---- */

static int send_http_structs(struct oap_sender *sender, const struct http_record *r,
			     const struct k8s_identity *local, const struct k8s_identity *peer,
			     bool with_calls)
{
	struct syscall_batch *batch = NULL;
	struct syscall_run runs[2];
	struct http_log *log;
	int err;

	if (with_calls && (r->calls.request_calls || r->calls.response_calls)) {
		batch = syscall_batch_get();
		if (!batch)
			return -ENOMEM;
	}
	log = http_log_new(r, local, peer);
	if (!log)
		return -ENOMEM;
	if (batch) {
		http_call_runs(r, runs);
		err = send_syscall_runs(sender, &log->base.msg, batch, runs, 2,
					&(struct syscall_log_position){ 0 }, NULL);
	} else {
		err = oap_sender_enqueue_access_log(sender, &log->base.msg);
	}
	free(log);
	return err;
}

int access_log_send_http(struct oap_sender *sender, const struct http_record *r,
			 const struct k8s_identity *local, const struct k8s_identity *peer,
			 bool with_calls)
{
	int err;

	if (!http_fits_one_message(r, with_calls))
		return send_http_structs(sender, r, local, peer, with_calls);
	err = wire_http_record(r, local, peer, with_calls);
	return err ?: oap_sender_enqueue_encoded(sender, OAP_STREAM_ACCESS_LOG,
						 pb_writer_data(&wire_writer), wire_writer.used);
}

/* The first message of send_http_structs(), packed by protobuf-c. */
static long encode_http_structs(const struct http_record *r, const struct k8s_identity *local,
				const struct k8s_identity *peer, bool with_calls, uint8_t *buf,
				size_t size)
{
	struct http_log *log = http_log_new(r, local, peer);
	struct syscall_batch *batch = with_calls ? syscall_batch_get() : NULL;
	struct syscall_run runs[2];
	size_t len;

	if (!log || (with_calls && !batch)) {
		free(log);
		return -ENOMEM;
	}
	if (batch) {
		http_call_runs(r, runs);
		log->base.msg.n_kernellogs = fill_batch(batch, runs, 2, &(struct syscall_log_position){ 0 });
		log->base.msg.kernellogs = log->base.msg.n_kernellogs ? batch->log_ptrs : NULL;
	}
	len = skywalking__v3__ebpfaccess_log_message__get_packed_size(&log->base.msg);
	if (len <= size)
		skywalking__v3__ebpfaccess_log_message__pack(&log->base.msg, buf);
	free(log);
	return len <= size ? (long)len : -ENOBUFS;
}

long access_log_encode_http(const struct http_record *r, const struct k8s_identity *local,
			    const struct k8s_identity *peer, bool with_calls,
			    enum access_log_encoder encoder, uint8_t *buf, size_t size)
{
	int err;

	if (encoder == ACCESS_LOG_ENCODE_STRUCTS)
		return encode_http_structs(r, local, peer, with_calls, buf, size);
	if (!http_fits_one_message(r, with_calls))
		return -EOPNOTSUPP;
	err = wire_http_record(r, local, peer, with_calls);
	if (err)
		return err;
	if (wire_writer.used > size)
		return -ENOBUFS;
	memcpy(buf, pb_writer_data(&wire_writer), wire_writer.used);
	return (long)wire_writer.used;
}

int access_log_send_row_syscalls(struct oap_sender *sender, const struct agg_row *row,
				 const struct k8s_identity *local, const struct k8s_identity *peer,
				 uint64_t bucket_start_ns, uint64_t bucket_ns, unsigned int l24_measured,
				 struct syscall_log_position *at, const struct syscall_log_pace *pace)
{
	struct connection_facts facts = {
		.role = row->key.role,
		.protocol = SKYWALKING__V3__ACCESS_LOG_PROTOCOL_TYPE__TCP,
		.comm = "",
		.remote_port = row->key.peer_port,
		.remote_addr = row->key.peer_addr,
	};
	/* spread over the bucket, so that OAP files them under the same minute */
	uint64_t read_step_ns = bucket_ns / (row->value.read_count + 1);
	uint64_t write_step_ns = bucket_ns / (row->value.write_count + 1);
	struct syscall_run runs[] = {
		{ false, row->value.read_count, row->value.read_duration_ns_sum,
		  bucket_start_ns + read_step_ns, read_step_ns, &row->value, l24_measured },
		{ true, row->value.write_count, row->value.write_duration_ns_sum,
		  bucket_start_ns + write_step_ns, write_step_ns, &row->value, l24_measured },
	};
	struct syscall_batch *batch;
	struct access_log log;

	if (!runs[0].count && !runs[1].count)
		return 0;
	batch = syscall_batch_get();
	if (!batch)
		return -ENOMEM;
	memset(&log, 0, sizeof(log));
	set_connection(&log, &facts, local, peer);
	skywalking__v3__ebpfaccess_log_message__init(&log.msg);
	log.msg.connection = &log.connection;
	return send_syscall_runs(sender, &log.msg, batch, runs, 2, at, pace);
}
