// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The OAP sender against fake OAPs on loopback: the C fake
 * ($(OUTPUT)/selftests/oap/fake_oap, gRPC C core server, protobuf-c decoding)
 * and the independent Python decoder (selftests/oap/fake_oap.py, grpcio with
 * stubs generated from proto/). Both record every message as NDJSON; the tests
 * compare it field for field with what they enqueued and check the sender's
 * counters against what arrived. 127.0.0.1 with ports chosen at run time, a
 * temp dir, and every fake killed in the teardown; one test takes a mount
 * namespace of its own for a resolv.conf naming a DNS server on loopback.
 */
#include <errno.h>
#include <json-c/json.h>
#include <limits.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "ktest.h"
#include "log.h"
#include "oap/grpc_conn.h"
#include "oap/oap.h"
#include "oap/oap_queue.h"
#include "oap_access_log.h"

#define MAX_FAKES 6
#define MAX_CALLS 4096

static const char *const method_names[OAP_STREAM_COUNT] = {
	[OAP_STREAM_ACCESS_LOG] = "/skywalking.v3.EBPFAccessLogService/collect",
	[OAP_STREAM_METER] = "/skywalking.v3.MeterReportService/collectBatch",
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double process_cpu_s(void)
{
	struct rusage usage;

	getrusage(RUSAGE_SELF, &usage);
	return usage.ru_utime.tv_sec + usage.ru_stime.tv_sec +
	       (usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

/* ---- test messages: every field set to a value that depends on i ---- */

struct access_log_storage {
	Skywalking__V3__EBPFAccessLogMessage msg;
	Skywalking__V3__AccessLogConnection conn;
	Skywalking__V3__ConnectionAddress local, remote;
	Skywalking__V3__KubernetesProcessAddress k8s;
	Skywalking__V3__IPAddress ip;
	Skywalking__V3__ConnectionAttachment attachment;
	Skywalking__V3__ZTunnelAttachmentEnvironment ztunnel;
	Skywalking__V3__KeyStringValuePair addition, *additions[1];
	Skywalking__V3__AccessLogKernelLog logs[4], *log_ptrs[4];
	Skywalking__V3__AccessLogKernelConnectOperation connect;
	Skywalking__V3__AccessLogKernelWriteOperation write;
	Skywalking__V3__AccessLogKernelReadOperation read;
	Skywalking__V3__AccessLogKernelCloseOperation close;
	Skywalking__V3__AccessLogKernelWriteL4Metrics wl4;
	Skywalking__V3__AccessLogLossPackageMetrics loss, *losses[1];
	Skywalking__V3__AccessLogKernelWriteL3Metrics wl3;
	Skywalking__V3__AccessLogKernelWriteL2Metrics wl2;
	Skywalking__V3__AccessLogKernelReadL2Metrics rl2;
	Skywalking__V3__AccessLogKernelReadL3Metrics rl3;
	Skywalking__V3__AccessLogKernelReadL4Metrics rl4;
	Skywalking__V3__AccessLogProtocolLogs protocol;
	Skywalking__V3__AccessLogHTTPProtocol http;
	Skywalking__V3__AccessLogHTTPProtocolRequest request;
	Skywalking__V3__AccessLogHTTPProtocolResponse response;
	Skywalking__V3__AccessLogTraceInfo trace;
	Skywalking__V3__EBPFTimestamp ts[10];
	Skywalking__V3__EBPFOffsetTimestamp offsets[10];
	char pod[32], host[32], path[64], trace_id[48];
};

static Skywalking__V3__EBPFTimestamp *stamp(struct access_log_storage *s, int k, uint64_t ns)
{
	skywalking__v3__ebpfoffset_timestamp__init(&s->offsets[k]);
	skywalking__v3__ebpftimestamp__init(&s->ts[k]);
	s->offsets[k].offset = ns;
	s->ts[k].timestamp_case = SKYWALKING__V3__EBPFTIMESTAMP__TIMESTAMP_OFFSET;
	s->ts[k].offset = &s->offsets[k];
	return &s->ts[k];
}

static void build_connection(struct access_log_storage *s, unsigned int i)
{
	skywalking__v3__access_log_connection__init(&s->conn);
	skywalking__v3__connection_address__init(&s->local);
	skywalking__v3__connection_address__init(&s->remote);
	skywalking__v3__kubernetes_process_address__init(&s->k8s);
	skywalking__v3__ipaddress__init(&s->ip);
	skywalking__v3__connection_attachment__init(&s->attachment);
	skywalking__v3__ztunnel_attachment_environment__init(&s->ztunnel);
	skywalking__v3__key_string_value_pair__init(&s->addition);
	snprintf(s->pod, sizeof(s->pod), "web-%u", i);
	snprintf(s->host, sizeof(s->host), "10.1.%u.%u", i / 250, i % 250 + 1);
	s->k8s.servicename = "web.shop";
	s->k8s.podname = s->pod;
	s->k8s.containername = "nginx";
	s->k8s.processname = "nginx: worker \"1\"\\";
	s->k8s.port = 8080;
	s->ip.host = s->host;
	s->ip.port = 1000 + i;   /* the message's id in the NDJSON */
	s->local.address_case = SKYWALKING__V3__CONNECTION_ADDRESS__ADDRESS_KUBERNETES;
	s->local.kubernetes = &s->k8s;
	s->remote.address_case = SKYWALKING__V3__CONNECTION_ADDRESS__ADDRESS_IP;
	s->remote.ip = &s->ip;
	s->addition.key = "k";
	s->addition.value = "v\tw";
	s->additions[0] = &s->addition;
	s->ztunnel.real_destination_ip = "10.9.9.9";
	s->ztunnel.by = SKYWALKING__V3__ZTUNNEL_ATTACHMENT_ENVIRONMENT_DETECT_BY__ZTUNNEL_INBOUND_FUNC;
	s->ztunnel.security_policy = SKYWALKING__V3__ZTUNNEL_ATTACHMENT_SECURITY_POLICY__NONE;
	s->ztunnel.n_addition = 1;
	s->ztunnel.addition = s->additions;
	s->attachment.environment_case = SKYWALKING__V3__CONNECTION_ATTACHMENT__ENVIRONMENT_Z_TUNNEL;
	s->attachment.ztunnel = &s->ztunnel;
	s->conn.local = &s->local;
	s->conn.remote = &s->remote;
	s->conn.role = SKYWALKING__V3__DETECT_POINT__server;
	s->conn.tlsmode = SKYWALKING__V3__ACCESS_LOG_CONNECTION_TLSMODE__TLS;
	s->conn.protocol = SKYWALKING__V3__ACCESS_LOG_PROTOCOL_TYPE__HTTP_2;
	s->conn.attachment = &s->attachment;
}

static void build_kernel_logs(struct access_log_storage *s, unsigned int i)
{
	uint64_t base = 1000000000ull * (i + 1);

	skywalking__v3__access_log_kernel_connect_operation__init(&s->connect);
	s->connect.starttime = stamp(s, 0, base);
	s->connect.endtime = stamp(s, 1, base + 10);
	s->connect.success = i % 2;
	skywalking__v3__access_log_kernel_write_operation__init(&s->write);
	skywalking__v3__access_log_kernel_write_l4_metrics__init(&s->wl4);
	skywalking__v3__access_log_loss_package_metrics__init(&s->loss);
	skywalking__v3__access_log_kernel_write_l3_metrics__init(&s->wl3);
	skywalking__v3__access_log_kernel_write_l2_metrics__init(&s->wl2);
	s->loss.location = "tcp_retransmit_skb";
	s->loss.count = 2 + i;
	s->losses[0] = &s->loss;
	s->wl4 = (Skywalking__V3__AccessLogKernelWriteL4Metrics){
		.base = s->wl4.base, .totalduration = 18446744073709551615ull - i,
		.totaltransmitpackagecount = -1 - (int64_t)i, .totalretransmitpackagecount = 3,
		.n_losspackagemetrics = 1, .losspackagemetrics = s->losses,
		.totalpackagesize = 9007199254740993ll };
	s->wl3 = (Skywalking__V3__AccessLogKernelWriteL3Metrics){
		.base = s->wl3.base, .totalduration = 11, .totallocalduration = 12,
		.totaloutputduration = 13, .totalresolvemaccount = 15, .totalresolvemacduration = 16,
		.totalnetfiltercount = 17, .totalnetfilterduration = 18 + i };
	s->wl2 = (Skywalking__V3__AccessLogKernelWriteL2Metrics){
		.base = s->wl2.base, .totalduration = 21, .ifindex = 4294967295u,
		.totalenterqueuebuffercount = 23, .totalreadysendduration = 24,
		.totalnetdevicesendduration = 25 + i };
	s->write.starttime = stamp(s, 2, base + 20);
	s->write.endtime = stamp(s, 3, base + 30);
	s->write.syscall = SKYWALKING__V3__ACCESS_LOG_KERNEL_WRITE_SYSCALL__SendMsg;
	s->write.l4metrics = &s->wl4;
	s->write.l3metrics = &s->wl3;
	s->write.l2metrics = &s->wl2;

	skywalking__v3__access_log_kernel_read_operation__init(&s->read);
	skywalking__v3__access_log_kernel_read_l2_metrics__init(&s->rl2);
	skywalking__v3__access_log_kernel_read_l3_metrics__init(&s->rl3);
	skywalking__v3__access_log_kernel_read_l4_metrics__init(&s->rl4);
	s->rl2.ifindex = 2;
	s->rl2.totalpackagecount = 3 + i;
	s->rl2.totalpackagesize = 4;
	s->rl2.totalpackagetoqueueduration = 5;
	s->rl2.totalrcvpackagefromqueueduration = 6;
	s->rl3.totalduration = 7;
	s->rl3.totalrecvduration = 8;
	s->rl3.totallocalduration = 9;
	s->rl3.totalnetfiltercount = 10;
	s->rl3.totalnetfilterduration = 11 + i;
	s->rl4.totalduration = 12 + i;
	s->read.starttime = stamp(s, 4, base + 40);
	s->read.endtime = stamp(s, 5, base + 50);
	s->read.syscall = SKYWALKING__V3__ACCESS_LOG_KERNEL_READ_SYSCALL__RecvMmsg;
	s->read.l2metrics = &s->rl2;
	s->read.l3metrics = &s->rl3;
	s->read.l4metrics = &s->rl4;

	skywalking__v3__access_log_kernel_close_operation__init(&s->close);
	s->close.starttime = stamp(s, 6, base + 60);
	s->close.endtime = stamp(s, 7, base + 70);
	s->close.success = true;

	for (int k = 0; k < 4; k++) {
		skywalking__v3__access_log_kernel_log__init(&s->logs[k]);
		s->log_ptrs[k] = &s->logs[k];
	}
	s->logs[0].operation_case = SKYWALKING__V3__ACCESS_LOG_KERNEL_LOG__OPERATION_CONNECT;
	s->logs[0].connect = &s->connect;
	s->logs[1].operation_case = SKYWALKING__V3__ACCESS_LOG_KERNEL_LOG__OPERATION_WRITE;
	s->logs[1].write = &s->write;
	s->logs[2].operation_case = SKYWALKING__V3__ACCESS_LOG_KERNEL_LOG__OPERATION_READ;
	s->logs[2].read = &s->read;
	s->logs[3].operation_case = SKYWALKING__V3__ACCESS_LOG_KERNEL_LOG__OPERATION_CLOSE;
	s->logs[3].close = &s->close;
}

static void build_http(struct access_log_storage *s, unsigned int i)
{
	uint64_t base = 1000000000ull * (i + 1);

	skywalking__v3__access_log_protocol_logs__init(&s->protocol);
	skywalking__v3__access_log_httpprotocol__init(&s->http);
	skywalking__v3__access_log_httpprotocol_request__init(&s->request);
	skywalking__v3__access_log_httpprotocol_response__init(&s->response);
	skywalking__v3__access_log_trace_info__init(&s->trace);
	snprintf(s->path, sizeof(s->path), "/api/items/%u?q=ü", i);
	snprintf(s->trace_id, sizeof(s->trace_id), "trace-%u", i);
	s->trace.provider = SKYWALKING__V3__ACCESS_LOG_TRACE_INFO_PROVIDER__SkyWalking;
	s->trace.traceid = s->trace_id;
	s->trace.tracesegmentid = "segment";
	s->trace.spanid = "1";
	s->request.method = i % 9; /* every method over a run */
	s->request.path = s->path;
	s->request.sizeofheadersbytes = 100 + i;
	s->request.sizeofbodybytes = 200 + i;
	s->request.trace = &s->trace;
	s->request.host = "web.shop:8080";
	s->response.statuscode = 200 + i % 400;
	s->response.sizeofheadersbytes = 300;
	s->response.sizeofbodybytes = 400 + i;
	s->http.starttime = stamp(s, 8, base + 80);
	s->http.endtime = stamp(s, 9, base + 90);
	s->http.version = SKYWALKING__V3__ACCESS_LOG_HTTPPROTOCOL_VERSION__HTTP2;
	s->http.request = &s->request;
	s->http.response = &s->response;
	s->protocol.protocol_case = SKYWALKING__V3__ACCESS_LOG_PROTOCOL_LOGS__PROTOCOL_HTTP;
	s->protocol.http = &s->http;
}

static Skywalking__V3__EBPFAccessLogMessage *build_access_log(struct access_log_storage *s,
							      unsigned int i)
{
	memset(s, 0, sizeof(*s));
	skywalking__v3__ebpfaccess_log_message__init(&s->msg);
	build_connection(s, i);
	build_kernel_logs(s, i);
	build_http(s, i);
	s->msg.connection = &s->conn;
	s->msg.n_kernellogs = 4;
	s->msg.kernellogs = s->log_ptrs;
	s->msg.protocollog = &s->protocol;
	return &s->msg;
}

struct meter_storage {
	Skywalking__V3__MeterDataCollection collection;
	Skywalking__V3__MeterData data[2], *data_ptrs[2];
	Skywalking__V3__MeterSingleValue single;
	Skywalking__V3__MeterHistogram histogram;
	Skywalking__V3__Label labels[3], *label_ptrs[3];
	Skywalking__V3__MeterBucketValue buckets[3], *bucket_ptrs[3];
	char pod[32];
};

static Skywalking__V3__MeterDataCollection *build_meters(struct meter_storage *s, unsigned int i)
{
	static const char *const names[3] = { "svc", "pod", "side" };

	memset(s, 0, sizeof(*s));
	skywalking__v3__meter_data_collection__init(&s->collection);
	snprintf(s->pod, sizeof(s->pod), "web-%u", i);
	for (int k = 0; k < 3; k++) {
		skywalking__v3__label__init(&s->labels[k]);
		s->labels[k].name = (char *)names[k];
		s->label_ptrs[k] = &s->labels[k];
		skywalking__v3__meter_bucket_value__init(&s->buckets[k]);
		s->bucket_ptrs[k] = &s->buckets[k];
	}
	s->labels[0].value = "web.shop";
	s->labels[1].value = s->pod;
	s->labels[2].value = "server";
	s->buckets[0].isnegativeinfinity = true;
	s->buckets[0].count = i;
	s->buckets[1].bucket = 10;
	s->buckets[1].count = 2 * i + 1;
	s->buckets[2].bucket = 250;
	s->buckets[2].count = 3;
	skywalking__v3__meter_single_value__init(&s->single);
	s->single.name = "kaccess_test_connect_count";
	s->single.n_labels = 3;
	s->single.labels = s->label_ptrs;
	s->single.value = i + 0.25;
	skywalking__v3__meter_histogram__init(&s->histogram);
	s->histogram.name = "kaccess_test_latency_ms";
	s->histogram.n_labels = 2;
	s->histogram.labels = s->label_ptrs;
	s->histogram.n_values = 3;
	s->histogram.values = s->bucket_ptrs;
	for (int k = 0; k < 2; k++) {
		skywalking__v3__meter_data__init(&s->data[k]);
		s->data[k].service = "web.shop";
		s->data[k].serviceinstance = s->pod;
		s->data[k].timestamp = 1700000000000ll + 60000ll * i; /* the id in the NDJSON */
		s->data_ptrs[k] = &s->data[k];
	}
	s->data[0].metric_case = SKYWALKING__V3__METER_DATA__METRIC_SINGLE_VALUE;
	s->data[0].singlevalue = &s->single;
	s->data[1].metric_case = SKYWALKING__V3__METER_DATA__METRIC_HISTOGRAM;
	s->data[1].histogram = &s->histogram;
	s->collection.n_meterdata = 2;
	s->collection.meterdata = s->data_ptrs;
	return &s->collection;
}

static void set_test_node_info(struct oap_sender *sender)
{
	Skywalking__V3__EBPFAccessLogNodeInfo node = SKYWALKING__V3__EBPFACCESS_LOG_NODE_INFO__INIT;
	Skywalking__V3__EBPFAccessLogNodeNetInterface lo = SKYWALKING__V3__EBPFACCESS_LOG_NODE_NET_INTERFACE__INIT,
						     eth = SKYWALKING__V3__EBPFACCESS_LOG_NODE_NET_INTERFACE__INIT;
	Skywalking__V3__EBPFAccessLogNodeNetInterface *ifaces[2] = { &lo, &eth };
	Skywalking__V3__Instant boot = SKYWALKING__V3__INSTANT__INIT;
	Skywalking__V3__EBPFAccessLogPolicy policy = SKYWALKING__V3__EBPFACCESS_LOG_POLICY__INIT;
	char *excluded[2] = { "kube-system", "skywalking" };

	lo = (Skywalking__V3__EBPFAccessLogNodeNetInterface){ .base = lo.base, .index = 1, .mtu = 65536, .name = "lo" };
	eth = (Skywalking__V3__EBPFAccessLogNodeNetInterface){ .base = eth.base, .index = 2, .mtu = 1500, .name = "eth0" };
	boot.seconds = 1700000000;
	boot.nanos = 123456789;
	policy.n_excludenamespaces = 2;
	policy.excludenamespaces = excluded;
	node.name = "node-1";
	node.n_netinterfaces = 2;
	node.netinterfaces = ifaces;
	node.boottime = &boot;
	node.clustername = "test-cluster";
	node.policy = &policy;
	oap_sender_set_node_info(sender, &node);
}

/* ---- JSON ---- */

static json_object *message_json(const ProtobufCMessage *msg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *mem = open_memstream(&text, &len);
	json_object *obj = NULL;

	if (mem && oap_message_write_json(mem, msg) == 0 && fclose(mem) == 0)
		obj = json_tokener_parse(text);
	else if (mem)
		fclose(mem);
	free(text);
	return obj;
}

/* Equal as JSON values; numbers by value (Python writes 1.0 where C writes 1). */
static bool json_same(json_object *a, json_object *b)
{
	enum json_type ta = json_object_get_type(a), tb = json_object_get_type(b);
	bool num_a = ta == json_type_int || ta == json_type_double;
	bool num_b = tb == json_type_int || tb == json_type_double;

	if (num_a && num_b)
		return json_object_get_double(a) == json_object_get_double(b);
	if (ta != tb)
		return false;
	switch (ta) {
	case json_type_null: return true;
	case json_type_boolean: return json_object_get_boolean(a) == json_object_get_boolean(b);
	case json_type_string: return strcmp(json_object_get_string(a), json_object_get_string(b)) == 0;
	case json_type_array:
		if (json_object_array_length(a) != json_object_array_length(b))
			return false;
		for (size_t i = 0; i < json_object_array_length(a); i++)
			if (!json_same(json_object_array_get_idx(a, i), json_object_array_get_idx(b, i)))
				return false;
		return true;
	case json_type_object: {
		json_object *other;

		if (json_object_object_length(a) != json_object_object_length(b))
			return false;
		json_object_object_foreach(a, key, value) {
			if (!json_object_object_get_ex(b, key, &other) || !json_same(value, other))
				return false;
		}
		return true;
	}
	default: return false;
	}
}

static const char *jstr(json_object *obj, const char *key)
{
	json_object *value;

	return json_object_object_get_ex(obj, key, &value) ? json_object_get_string(value) : NULL;
}

static json_object *jget(json_object *obj, const char *key)
{
	json_object *value;

	return obj && json_object_object_get_ex(obj, key, &value) ? value : NULL;
}

/* ---- what the fakes recorded ---- */

struct recorded {
	json_object *msgs[OAP_STREAM_COUNT];   /* arrays of "msg" objects, node infos excluded */
	unsigned int received[OAP_STREAM_COUNT];
	unsigned int confirmed[OAP_STREAM_COUNT];  /* on calls with an "end" line */
	unsigned int calls[OAP_STREAM_COUNT];      /* calls with a "start" line */
	unsigned int rejected, cancelled;
	unsigned int node_infos;
	unsigned int node_not_first;               /* node info missing or late on a call */
	json_object *node;                         /* the last node info */
	char auth[OAP_TOKEN_LEN];                  /* the last authentication value */
};

static int stream_of(const char *method)
{
	for (int s = 0; s < OAP_STREAM_COUNT; s++)
		if (method && strcmp(method, method_names[s]) == 0)
			return s;
	return -1;
}

static void record_line(struct recorded *rec, json_object *line, unsigned int *per_call)
{
	int stream = stream_of(jstr(line, "method"));
	int call = json_object_get_int(jget(line, "call")) % MAX_CALLS;
	const char *event = jstr(line, "event");
	json_object *msg = jget(line, "msg");

	if (jstr(line, "auth"))
		snprintf(rec->auth, sizeof(rec->auth), "%s", jstr(line, "auth"));
	if (stream < 0)
		return;
	if (event) {
		if (!strcmp(event, "start"))
			rec->calls[stream]++;
		else if (!strcmp(event, "end"))
			rec->confirmed[stream] += per_call[call];
		else if (!strcmp(event, "rejected"))
			rec->rejected++;
		else if (!strcmp(event, "cancelled"))
			rec->cancelled++;
		return;
	}
	if (stream == OAP_STREAM_ACCESS_LOG) {
		bool is_node = jget(msg, "node") != NULL;
		bool first = json_object_get_int(jget(line, "seq")) == 0;

		if (is_node != first)
			rec->node_not_first++;
		if (is_node) {
			rec->node_infos++;
			json_object_put(rec->node);
			rec->node = json_object_get(jget(msg, "node"));
			return;
		}
	}
	json_object_array_add(rec->msgs[stream], json_object_get(msg));
	rec->received[stream]++;
	per_call[call]++;
}

/* Add one fake's NDJSON file to `rec`. */
static int record_file(struct recorded *rec, const char *path)
{
	static unsigned int per_call[MAX_CALLS];
	char *line = NULL;
	size_t cap = 0;
	FILE *file = fopen(path, "r");

	if (!file)
		return -errno;
	memset(per_call, 0, sizeof(per_call));
	while (getline(&line, &cap, file) > 0) {
		json_object *obj = json_tokener_parse(line);

		if (obj)
			record_line(rec, obj, per_call);
		json_object_put(obj);
	}
	free(line);
	fclose(file);
	return 0;
}

static void recorded_init(struct recorded *rec)
{
	memset(rec, 0, sizeof(*rec));
	for (int s = 0; s < OAP_STREAM_COUNT; s++)
		rec->msgs[s] = json_object_new_array();
}

static void recorded_free(struct recorded *rec)
{
	for (int s = 0; s < OAP_STREAM_COUNT; s++)
		json_object_put(rec->msgs[s]);
	json_object_put(rec->node);
}

/* The id the test gave message i: remote port 1000 + i, meter timestamp. */
static long message_id(int stream, json_object *msg)
{
	if (stream == OAP_STREAM_ACCESS_LOG)
		return json_object_get_int(jget(jget(jget(jget(msg, "connection"), "remote"), "ip"), "port")) - 1000;
	return (atoll(jstr(json_object_array_get_idx(jget(msg, "meterData"), 0), "timestamp")) -
		1700000000000ll) / 60000;
}

/* ---- fake processes ---- */

struct fake_proc {
	pid_t pid;
	int port;
	char out[128];
};

FIXTURE(oap) {
	char dir[64];
	char fake_bin[PATH_MAX];
	struct fake_proc fakes[MAX_FAKES];
	int n_fakes;
	struct oap_sender *sender, *sender2;
	struct oap_config cfg;
};

FIXTURE_SETUP(oap)
{
	char exe[PATH_MAX - 64];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	ASSERT_LT(0, len);
	exe[len] = '\0';
	*strrchr(exe, '/') = '\0';
	snprintf(self->fake_bin, sizeof(self->fake_bin), "%s/oap/fake_oap", exe);
	if (access(self->fake_bin, X_OK))
		SKIP(return, "oap/fake_oap missing next to the test: run make selftests");
	/* OAP_TEST_DEBUG=1 shows gRPC's own messages (with GRPC_TRACE=...). */
	if (getenv("OAP_TEST_DEBUG"))
		log_max_level = LOG_LEVEL_DEBUG;
	strcpy(self->dir, "/tmp/kaccess-selftest-oap-XXXXXX");
	ASSERT_NE(NULL, mkdtemp(self->dir));
	oap_config_set_defaults(&self->cfg);
	self->cfg.backoff_initial_ms = 100;
	self->cfg.backoff_max_ms = 1000;
	self->cfg.send_timeout_s = 5;
}

static void fake_kill(struct fake_proc *fake)
{
	if (fake->pid > 0) {
		kill(fake->pid, SIGKILL);
		waitpid(fake->pid, NULL, 0);
		fake->pid = 0;
	}
}

FIXTURE_TEARDOWN(oap)
{
	char cmd[PATH_MAX + 16];

	oap_sender_free(self->sender);
	oap_sender_free(self->sender2);
	for (int i = 0; i < self->n_fakes; i++)
		fake_kill(&self->fakes[i]);
	if (self->dir[0]) {
		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", self->dir);
		if (system(cmd))
			TH_LOG("could not remove %s", self->dir);
	}
}

/* A free loopback port: bound, read, released (the fake binds it next). */
static int free_port(void)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(addr);
	int fd = socket(AF_INET, SOCK_STREAM, 0), port = -1;

	if (fd >= 0 && !bind(fd, (struct sockaddr *)&addr, sizeof(addr)) &&
	    !getsockname(fd, (struct sockaddr *)&addr, &len))
		port = ntohs(addr.sin_port);
	if (fd >= 0)
		close(fd);
	return port;
}

/* Up to `tries` x 50 ms for ready(proc, arg) while `proc` runs: 0, or -1 (it ended, or never got ready). */
static int wait_ready(struct fake_proc *proc, bool (*ready)(struct fake_proc *proc, const void *arg),
		      const void *arg, int tries)
{
	for (int i = 0; i < tries; i++) {
		if (ready(proc, arg))
			return 0;
		if (waitpid(proc->pid, NULL, WNOHANG) == proc->pid) {
			proc->pid = 0;
			return -1;
		}
		usleep(50000);
	}
	return -1;
}

/* The fake wrote the port it listens on into `arg` (a file name). */
static bool port_file_read(struct fake_proc *fake, const void *arg)
{
	FILE *file = fopen(arg, "r");
	bool ok;

	if (!file)
		return false;
	ok = fscanf(file, "%d", &fake->port) == 1;
	fclose(file);
	return ok;
}

/*
 * Start `program` (the C fake, or python3 with the Python decoder) on
 * 127.0.0.1:port (0 = any) with `extra` options; wait until it listens.
 * Returns the fake's index, or -1.
 */
static int fake_start(FIXTURE_DATA(oap) *self, const char *program, int port,
		      const char *const *extra)
{
	struct fake_proc *fake = &self->fakes[self->n_fakes];
	char dir[sizeof(self->dir)];
	char listen[64], port_file[128], log[128];
	const char *argv[32];
	int argc = 0, index = self->n_fakes;

	if (self->n_fakes == MAX_FAKES)
		return -1;
	memcpy(dir, self->dir, sizeof(dir));
	snprintf(listen, sizeof(listen), "127.0.0.1:%d", port);
	snprintf(fake->out, sizeof(fake->out), "%s/fake-%d.ndjson", dir, index);
	snprintf(port_file, sizeof(port_file), "%s/fake-%d.port", dir, index);
	snprintf(log, sizeof(log), "%s/fake-%d.log", dir, index);
	if (strstr(program, ".py"))
		argv[argc++] = "/usr/bin/python3";
	argv[argc++] = program;
	argv[argc++] = "--listen";
	argv[argc++] = listen;
	argv[argc++] = "--port-file";
	argv[argc++] = port_file;
	argv[argc++] = "--out";
	argv[argc++] = fake->out;
	for (int i = 0; extra && extra[i] && argc < 30; i++)
		argv[argc++] = extra[i];
	argv[argc] = NULL;

	fake->pid = fork();
	if (fake->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL); /* a killed test takes its fakes along */
		if (!freopen(log, "w", stderr))
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (fake->pid < 0)
		return -1;
	self->n_fakes++;
	/* the Python decoder generates its stubs first */
	return wait_ready(fake, port_file_read, port_file, 300) ? -1 : index;
}

static int start_c_fake(FIXTURE_DATA(oap) *self, int port, const char *const *extra)
{
	return fake_start(self, self->fake_bin, port, extra);
}

static int sender_for(FIXTURE_DATA(oap) *self, int port, struct oap_sender **ret_sender)
{
	int ret;

	snprintf(self->cfg.address, sizeof(self->cfg.address), "127.0.0.1:%d", port);
	ret = oap_sender_create(&self->cfg, ret_sender);
	if (ret)
		return ret;
	set_test_node_info(*ret_sender);
	return oap_sender_start(*ret_sender);
}

static int enqueue_access_logs(struct oap_sender *sender, unsigned int first, unsigned int count)
{
	struct access_log_storage *s = malloc(sizeof(*s));
	int ret = 0;

	for (unsigned int i = first; s && i < first + count && !ret; i++)
		ret = oap_sender_enqueue_access_log(sender, build_access_log(s, i));
	free(s);
	return s ? ret : -ENOMEM;
}

static int enqueue_meters(struct oap_sender *sender, unsigned int first, unsigned int count)
{
	struct meter_storage s;
	int ret = 0;

	for (unsigned int i = first; i < first + count && !ret; i++)
		ret = oap_sender_enqueue_meters(sender, build_meters(&s, i));
	return ret;
}

static struct oap_stream_stats stats_of(struct oap_sender *sender, enum oap_stream stream)
{
	struct oap_stream_stats stats;

	oap_sender_stats(sender, stream, &stats);
	return stats;
}

static uint64_t dropped_total(const struct oap_stream_stats *stats)
{
	uint64_t total = 0;

	for (int r = 0; r < OAP_DROP_REASON_COUNT; r++)
		total += stats->dropped[r];
	return total;
}

#define LOG_STATS(st)                                                                          \
	TH_LOG("enq %lu sent %lu delivered %lu drops qf %lu sf %lu unc %lu big %lu shut %lu "   \
	       "calls %lu ok %lu failed %lu reconn %lu rot %lu node %lu auth %lu depth %lu/%lu "  \
	       "connected %d status %d error '%s'",                                             \
	       (st).enqueued, (st).sent, (st).delivered, (st).dropped[0], (st).dropped[1],      \
	       (st).dropped[2], (st).dropped[3], (st).dropped[4], (st).calls_started,           \
	       (st).calls_ok, (st).calls_failed, (st).reconnects, (st).rotations,               \
	       (st).node_info_sent, (st).auth_failures, (st).queue_depth, (st).queue_depth_max, \
	       (st).connected, (st).last_status, (st).last_error)

/* Poll `cond` every 20 ms for up to `timeout_ms`. */
#define WAIT_UNTIL(cond, timeout_ms)                                              \
	({                                                                        \
		uint64_t _until = now_ms() + (timeout_ms);                        \
		bool _ok;                                                         \
		while (!(_ok = (cond)) && now_ms() < _until)                      \
			usleep(20000);                                            \
		_ok;                                                              \
	})

/* Every message i in [0, count) arrived once, in order, equal field for field. */
static bool received_exactly(struct __test_metadata *_metadata, struct recorded *rec,
			     int stream, unsigned int count)
{
	json_object *msgs = rec->msgs[stream];
	struct access_log_storage *als = malloc(sizeof(*als));
	struct meter_storage ms;
	bool ok = json_object_array_length(msgs) == count;

	if (!ok)
		TH_LOG("%s: %zu messages recorded, %u expected", oap_stream_name(stream),
		       json_object_array_length(msgs), count);
	for (unsigned int i = 0; ok && als && i < count; i++) {
		const ProtobufCMessage *sent = stream == OAP_STREAM_ACCESS_LOG
			? &build_access_log(als, i)->base : &build_meters(&ms, i)->base;
		json_object *want = message_json(sent), *got = json_object_array_get_idx(msgs, i);

		if (!json_same(want, got)) {
			TH_LOG("%s message %u differs:\n sent %s\n got  %s", oap_stream_name(stream), i,
			       json_object_to_json_string(want), json_object_to_json_string(got));
			ok = false;
		}
		json_object_put(want);
	}
	free(als);
	return ok && als;
}

static bool node_info_as_set(struct recorded *rec)
{
	static const char *const want_text =
		"{\"name\":\"node-1\",\"netInterfaces\":[{\"index\":1,\"mtu\":65536,\"name\":\"lo\"},"
		"{\"index\":2,\"mtu\":1500,\"name\":\"eth0\"}],\"bootTime\":{\"seconds\":\"1700000000\","
		"\"nanos\":123456789},\"clusterName\":\"test-cluster\",\"policy\":{\"excludeNamespaces\":"
		"[\"kube-system\",\"skywalking\"]}}";
	json_object *want = json_tokener_parse(want_text);
	bool same = rec->node && json_same(want, rec->node);

	json_object_put(want);
	return same;
}

/* ---- unit tests ---- */

TEST(config_defaults_and_strict_parsing)
{
	struct oap_config cfg;
	char err[OAP_CONFIG_ERROR_LEN] = "";

	oap_config_set_defaults(&cfg);
	EXPECT_STREQ("", cfg.address);
	EXPECT_EQ(OAP_MODE_BOTH, cfg.mode);
	EXPECT_EQ(10000, cfg.queue_max_messages);
	EXPECT_EQ(16384, cfg.queue_max_kib);
	EXPECT_EQ(256, cfg.batch_max_messages);
	EXPECT_EQ(300, cfg.stream_rotate_s);
	EXPECT_EQ(300, cfg.keepalive_s);
	EXPECT_EQ(500, cfg.backoff_initial_ms);
	EXPECT_EQ(30000, cfg.backoff_max_ms);
	EXPECT_EQ(false, cfg.tls);

	EXPECT_EQ(0, oap_config_set(&cfg, "oap_address", "oap.skywalking:11800", err, sizeof(err)));
	EXPECT_STREQ("oap.skywalking:11800", cfg.address);
	EXPECT_EQ(0, oap_config_set(&cfg, "oap_address", "[::1]:11800", err, sizeof(err)));
	EXPECT_EQ(0, oap_config_set(&cfg, "oap_address", "", err, sizeof(err)));
	EXPECT_EQ(-EINVAL, oap_config_set(&cfg, "oap_address", "oap:0", err, sizeof(err)));
	EXPECT_STREQ("oap_address: 'oap:0' is not HOST:PORT with port 1..65535 (e.g. "
		     "oap.skywalking:11800, 127.0.0.1:11800, [::1]:11800) or empty", err);
	EXPECT_EQ(-EINVAL, oap_config_set(&cfg, "oap_address", "oap", err, sizeof(err)));
	EXPECT_EQ(-EINVAL, oap_config_set(&cfg, "oap_address", "::1:80", err, sizeof(err)));
	EXPECT_EQ(-EINVAL, oap_config_set(&cfg, "oap_address", "a b:80", err, sizeof(err)));

	EXPECT_EQ(0, oap_config_set(&cfg, "oap_mode", "compatible", err, sizeof(err)));
	EXPECT_EQ(OAP_MODE_COMPATIBLE, cfg.mode);
	EXPECT_EQ(-EINVAL, oap_config_set(&cfg, "oap_mode", "all", err, sizeof(err)));
	EXPECT_STREQ("oap_mode: 'all' is not one of: metrics, access_logs, both, compatible", err);
	EXPECT_EQ(-ERANGE, oap_config_set(&cfg, "oap_keepalive_s", "299", err, sizeof(err)));
	EXPECT_STREQ("oap_keepalive_s: '299' is not an integer in 300..86400 (seconds)", err);
	EXPECT_EQ(-EINVAL, oap_config_set(&cfg, "oap_queue_max_messages", "10k", err, sizeof(err)));
	EXPECT_STREQ("oap_queue_max_messages: '10k' is not an integer in 1..1000000 (messages)", err);
	EXPECT_EQ(-EINVAL, oap_config_set(&cfg, "oap_tls", "yes", err, sizeof(err)));
	EXPECT_STREQ("oap_tls: 'yes' is not one of: off, on", err);
	EXPECT_EQ(-EINVAL, oap_config_set(&cfg, "oap_auth_token", "a\nb", err, sizeof(err)));
	EXPECT_EQ(-ENOENT, oap_config_set(&cfg, "oap_nope", "1", err, sizeof(err)));
	EXPECT_STREQ("unknown key 'oap_nope'", err);
	for (size_t i = 0; oap_config_key_name(i); i++) {
		EXPECT_EQ(0, strncmp(oap_config_key_name(i), "oap_", 4));
		EXPECT_NE(-ENOENT, oap_config_set(&cfg, oap_config_key_name(i), "?", err, sizeof(err)))
			TH_LOG("%s", oap_config_key_name(i));
	}
	EXPECT_STREQ("oap_send_timeout_s", oap_config_key_name(17));
	EXPECT_EQ(NULL, oap_config_key_name(18));

	oap_config_set_defaults(&cfg);
	EXPECT_EQ(0, oap_config_check(&cfg, err, sizeof(err)));
	EXPECT_EQ(0, oap_config_set(&cfg, "oap_tls_ca", "/etc/hostname", err, sizeof(err)));
	EXPECT_EQ(-EINVAL, oap_config_check(&cfg, err, sizeof(err)));
	EXPECT_STREQ("oap_tls_ca, oap_tls_cert and oap_tls_key need oap_tls = on", err);
	EXPECT_EQ(0, oap_config_set(&cfg, "oap_tls", "on", err, sizeof(err)));
	EXPECT_EQ(0, oap_config_set(&cfg, "oap_tls_cert", "/etc/hostname", err, sizeof(err)));
	EXPECT_EQ(-EINVAL, oap_config_check(&cfg, err, sizeof(err)));
	EXPECT_STREQ("oap_tls_cert and oap_tls_key go together: set both or neither", err);
	EXPECT_EQ(0, oap_config_set(&cfg, "oap_tls_key", "/nonexistent/key.pem", err, sizeof(err)));
	EXPECT_EQ(-EINVAL, oap_config_check(&cfg, err, sizeof(err)));
	EXPECT_STREQ("oap_tls_key: cannot read '/nonexistent/key.pem': No such file or directory", err);
}

TEST(modes_choose_streams)
{
	EXPECT_TRUE(oap_mode_sends_meters(OAP_MODE_BOTH) && oap_mode_sends_access_logs(OAP_MODE_BOTH));
	EXPECT_TRUE(oap_mode_sends_meters(OAP_MODE_METRICS) && !oap_mode_sends_access_logs(OAP_MODE_METRICS));
	EXPECT_TRUE(!oap_mode_sends_meters(OAP_MODE_ACCESS_LOGS) && oap_mode_sends_access_logs(OAP_MODE_ACCESS_LOGS));
	EXPECT_TRUE(!oap_mode_sends_meters(OAP_MODE_COMPATIBLE) && oap_mode_sends_syscall_logs(OAP_MODE_COMPATIBLE));
	EXPECT_FALSE(oap_mode_sends_syscall_logs(OAP_MODE_BOTH));
}

/* Push `count` messages of `len` bytes, each filled with its number from `first`. */
static size_t push_numbered(struct oap_queue *queue, int first, int count, size_t len)
{
	size_t evicted_total = 0, evicted;
	uint8_t msg[256];

	for (int i = first; i < first + count; i++) {
		memset(msg, i, len);
		if (oap_queue_push(queue, msg, len, &evicted))
			return SIZE_MAX;
		evicted_total += evicted;
	}
	return evicted_total;
}

/* The numbers of a taken chunk's messages, in order, each checked whole. */
static int chunk_numbers(const struct oap_chunk *chunk, int *numbers, int max)
{
	size_t at = chunk->start;
	int n = 0;

	while (at < chunk->used && n < max) {
		const uint8_t *framed = chunk->data + at;
		size_t len = oap_frame_len(framed);

		if (framed[0] != 0 || at + OAP_FRAME_PREFIX_BYTES + len > chunk->used)
			return -1;
		for (size_t i = 1; i < len; i++)
			if (framed[OAP_FRAME_PREFIX_BYTES + i] != framed[OAP_FRAME_PREFIX_BYTES])
				return -1;
		numbers[n++] = len ? framed[OAP_FRAME_PREFIX_BYTES] : -2;
		at += OAP_FRAME_PREFIX_BYTES + len;
	}
	return n;
}

TEST(queue_drops_oldest_within_both_bounds)
{
	struct oap_queue queue;
	struct oap_chunk *chunk;
	int numbers[16];
	size_t evicted;

	/* 4 messages, 100 bytes, 3 messages a chunk */
	ASSERT_EQ(0, oap_queue_init(&queue, 4, 100, 3));
	EXPECT_EQ(6, push_numbered(&queue, 0, 10, 10));
	EXPECT_EQ(4, queue.count);
	EXPECT_EQ(40, queue.bytes);
	/* the newest four survive: 6, 7 and 8 in one chunk, 9 in the next */
	ASSERT_EQ(0, oap_queue_take(&queue, &chunk));
	ASSERT_EQ(3, chunk_numbers(chunk, numbers, 16));
	EXPECT_EQ(6, numbers[0]);
	EXPECT_EQ(7, numbers[1]);
	EXPECT_EQ(8, numbers[2]);
	EXPECT_EQ(3, chunk->count);
	EXPECT_EQ(30, chunk->bytes);
	EXPECT_EQ(1, queue.count);
	EXPECT_EQ(10, queue.bytes);
	oap_queue_recycle(&queue, chunk);
	/* 1 x 10 bytes queued; 95 more exceed 100 bytes: the oldest goes */
	EXPECT_EQ(1, push_numbered(&queue, 20, 1, 95));
	EXPECT_EQ(1, queue.count);
	EXPECT_EQ(95, queue.bytes);
	EXPECT_EQ(-E2BIG, oap_queue_push(&queue, (const uint8_t *)"", 101, &evicted));
	EXPECT_EQ(0, evicted);
	/* an empty message is framed too (5 bytes, length 0) and fits */
	EXPECT_EQ(0, push_numbered(&queue, 30, 1, 0));
	/* 95 + 0 + 6 bytes do not: the 95 goes from the front of the chunk all three share */
	EXPECT_EQ(1, push_numbered(&queue, 31, 1, 6));
	EXPECT_EQ(2, queue.count);
	EXPECT_EQ(6, queue.bytes);
	ASSERT_EQ(0, oap_queue_take(&queue, &chunk));
	ASSERT_EQ(2, chunk_numbers(chunk, numbers, 16));
	EXPECT_EQ(-2, numbers[0]);
	EXPECT_EQ(31, numbers[1]);
	EXPECT_EQ(2 * OAP_FRAME_PREFIX_BYTES + 6, chunk->used - chunk->start);
	oap_queue_recycle(&queue, chunk);
	EXPECT_EQ(-ENOENT, oap_queue_take(&queue, &chunk));
	/* the recycled chunk is reused; clear counts what was queued */
	EXPECT_EQ(0, push_numbered(&queue, 40, 3, 10));
	EXPECT_EQ(0, push_numbered(&queue, 43, 1, 10)); /* a second chunk */
	EXPECT_EQ(4, oap_queue_clear(&queue));
	EXPECT_EQ(0, queue.count);
	EXPECT_EQ(0, queue.bytes);
	EXPECT_EQ(-ENOENT, oap_queue_take(&queue, &chunk));
	oap_queue_free(&queue);
}

/* Many messages through chunks of the default batch: order and bounds hold. */
TEST(queue_chunks_keep_order_across_takes)
{
	size_t next_expected = 0, pushed = 0, taken = 0, evicted_total = 0, evicted;
	struct oap_queue queue;
	struct oap_chunk *chunk;
	uint8_t msg[300];

	ASSERT_EQ(0, oap_queue_init(&queue, 1000, 64 << 10, 256));
	for (int round = 0; round < 50; round++) {
		for (int i = 0; i < 400; i++, pushed++) {
			size_t len = 8 + (pushed * 7) % 290;

			memcpy(msg, &pushed, sizeof(pushed));
			memset(msg + sizeof(pushed), 0xab, len - sizeof(pushed));
			ASSERT_EQ(0, oap_queue_push(&queue, msg, len, &evicted));
			evicted_total += evicted;
			ASSERT_GE(1000, queue.count);
			ASSERT_GE(64 << 10, queue.bytes);
		}
		while (round % 3 == 0 && !oap_queue_take(&queue, &chunk)) {
			size_t at = chunk->start, n = 0, number;

			ASSERT_GE(256, chunk->count);
			while (at < chunk->used) {
				size_t len = oap_frame_len(chunk->data + at);

				memcpy(&number, chunk->data + at + OAP_FRAME_PREFIX_BYTES, sizeof(number));
				ASSERT_LE(next_expected, number); /* in order; what was evicted is skipped */
				ASSERT_EQ(8 + (number * 7) % 290, len);
				next_expected = number + 1;
				at += OAP_FRAME_PREFIX_BYTES + len;
				n++;
			}
			ASSERT_EQ(chunk->count, n);
			taken += n;
			oap_queue_recycle(&queue, chunk);
		}
	}
	EXPECT_EQ(pushed, taken + evicted_total + queue.count);
	oap_queue_free(&queue);
}

/* Without any OAP: what the mode enables, the byte bound, shutdown drops. */
TEST(sender_modes_and_limits_without_oap)
{
	struct oap_config cfg;
	struct oap_sender *sender = NULL;
	struct oap_stream_stats al, me;
	static uint8_t big[70 * 1024];
	char err[OAP_CONFIG_ERROR_LEN];

	oap_config_set_defaults(&cfg);
	EXPECT_EQ(-EINVAL, oap_sender_create(&cfg, &sender)); /* no address: OAP off */
	ASSERT_EQ(0, oap_config_set(&cfg, "oap_address", "127.0.0.1:9", err, sizeof(err)));
	ASSERT_EQ(0, oap_config_set(&cfg, "oap_mode", "metrics", err, sizeof(err)));
	ASSERT_EQ(0, oap_config_set(&cfg, "oap_queue_max_kib", "64", err, sizeof(err)));
	ASSERT_EQ(0, oap_sender_create(&cfg, &sender));
	ASSERT_EQ(0, oap_sender_start(sender));
	EXPECT_EQ(-EOPNOTSUPP, enqueue_access_logs(sender, 0, 1));
	EXPECT_EQ(0, enqueue_meters(sender, 0, 2));
	EXPECT_EQ(-E2BIG, oap_sender_enqueue_encoded(sender, OAP_STREAM_METER, big, sizeof(big)));
	EXPECT_EQ(-EINVAL, oap_sender_enqueue_encoded(sender, OAP_STREAM_COUNT, big, 1));
	EXPECT_EQ(0, oap_sender_stop(sender, 0));
	al = stats_of(sender, OAP_STREAM_ACCESS_LOG);
	me = stats_of(sender, OAP_STREAM_METER);
	EXPECT_EQ(0, al.enqueued);
	EXPECT_EQ(2, me.enqueued);
	EXPECT_EQ(1, me.dropped[OAP_DROP_TOO_LARGE]);
	EXPECT_EQ(2, me.dropped[OAP_DROP_SHUTDOWN]);
	EXPECT_EQ(0, me.queue_depth);
	oap_sender_free(sender);

	/* Access logs wait for the node info: no call without it. */
	ASSERT_EQ(0, oap_config_set(&cfg, "oap_mode", "access_logs", err, sizeof(err)));
	ASSERT_EQ(0, oap_sender_create(&cfg, &sender));
	ASSERT_EQ(0, oap_sender_start(sender));
	EXPECT_EQ(0, enqueue_access_logs(sender, 0, 1));
	EXPECT_EQ(-EOPNOTSUPP, enqueue_meters(sender, 0, 1));
	usleep(300000);
	al = stats_of(sender, OAP_STREAM_ACCESS_LOG);
	EXPECT_EQ(0, al.calls_started);
	EXPECT_STREQ("no node info set (oap_sender_set_node_info): access logs wait", al.last_error);
	oap_sender_free(sender); /* stops */
}

TEST(meter_batch_refuses_what_oap_would_drop)
{
	struct oap_meter_batch *batch = NULL;
	const struct oap_label ok[] = { { "svc", "web.shop" }, { "le", "x" } };
	const struct oap_label reserved_service[] = { { "service", "a" } };
	const struct oap_label reserved_instance[] = { { "pod", "a" }, { "instance", "b" } };
	const struct oap_label twice[] = { { "svc", "a" }, { "svc", "b" } };
	const struct oap_label bad_name[] = { { "peer-svc", "a" } };
	const int64_t bounds[] = { 0, 10, 25 }, unordered[] = { 0, 25, 10 };
	const uint64_t counts[] = { 1, 2, 3 };

	EXPECT_EQ(-EINVAL, oap_meter_batch_new("", "node-1", 1, &batch));
	EXPECT_EQ(-EINVAL, oap_meter_batch_new("svc", "", 1, &batch));
	EXPECT_EQ(-EINVAL, oap_meter_batch_new("svc", "node-1", 0, &batch));
	ASSERT_EQ(0, oap_meter_batch_new("kaccess", "node-1", 1700000000000ll, &batch));
	EXPECT_EQ(0, oap_meter_batch_add_value(batch, "kaccess_connect_count", ok, 2, 1));
	EXPECT_EQ(-EINVAL, oap_meter_batch_add_value(batch, "kaccess_x", reserved_service, 1, 1));
	EXPECT_EQ(-EINVAL, oap_meter_batch_add_value(batch, "kaccess_x", reserved_instance, 2, 1));
	EXPECT_EQ(-EINVAL, oap_meter_batch_add_value(batch, "kaccess_x", twice, 2, 1));
	EXPECT_EQ(-EINVAL, oap_meter_batch_add_value(batch, "kaccess_x", bad_name, 1, 1));
	EXPECT_EQ(-EINVAL, oap_meter_batch_add_value(batch, "9kaccess", NULL, 0, 1));
	EXPECT_EQ(-EINVAL, oap_meter_batch_add_value(batch, "kaccess.x", NULL, 0, 1));
	/* `le` is OAP's own label on a histogram */
	EXPECT_EQ(-EINVAL, oap_meter_batch_add_histogram(batch, "kaccess_h", ok, 2, bounds, counts, 3));
	EXPECT_EQ(-EINVAL, oap_meter_batch_add_histogram(batch, "kaccess_h", ok, 1, unordered, counts, 3));
	EXPECT_EQ(-EINVAL, oap_meter_batch_add_histogram(batch, "kaccess_h", ok, 1, bounds, counts, 0));
	EXPECT_EQ(0, oap_meter_batch_add_histogram(batch, "kaccess_h", ok, 1, bounds, counts, 3));
	EXPECT_EQ(2, oap_meter_batch_count(batch));
	oap_meter_batch_free(batch);
	oap_meter_batch_free(NULL);
}

/* ---- against the fakes ---- */

KTEST_F(oap, access_logs_and_meters_arrive_field_for_field, 60)
{
	const char *const token[] = { "--token", "s3cret", NULL };
	struct oap_stream_stats al, me;
	struct recorded rec;
	int fake = start_c_fake(self, 0, token);

	ASSERT_LE(0, fake);
	strcpy(self->cfg.auth_token, "s3cret");
	ASSERT_EQ(0, sender_for(self, self->fakes[fake].port, &self->sender));
	ASSERT_EQ(0, enqueue_access_logs(self->sender, 0, 300));
	ASSERT_EQ(0, enqueue_meters(self->sender, 0, 20));
	/* Meters are confirmed once written, without waiting for a rotation. */
	EXPECT_TRUE(WAIT_UNTIL(stats_of(self->sender, OAP_STREAM_METER).delivered == 20, 5000));
	EXPECT_EQ(0, stats_of(self->sender, OAP_STREAM_ACCESS_LOG).delivered);
	ASSERT_EQ(0, oap_sender_stop(self->sender, 10000));
	al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG);
	me = stats_of(self->sender, OAP_STREAM_METER);
	LOG_STATS(al);
	EXPECT_EQ(300, al.enqueued);
	EXPECT_EQ(300, al.sent);
	EXPECT_EQ(300, al.delivered);
	EXPECT_EQ(0, dropped_total(&al));
	EXPECT_EQ(1, al.calls_ok);
	EXPECT_EQ(1, al.node_info_sent);
	EXPECT_EQ(20, me.delivered);
	EXPECT_EQ(0, dropped_total(&me));
	EXPECT_EQ(0, me.node_info_sent);

	recorded_init(&rec);
	ASSERT_EQ(0, record_file(&rec, self->fakes[fake].out));
	EXPECT_TRUE(received_exactly(_metadata, &rec, OAP_STREAM_ACCESS_LOG, 300));
	EXPECT_TRUE(received_exactly(_metadata, &rec, OAP_STREAM_METER, 20));
	EXPECT_EQ(300, rec.confirmed[OAP_STREAM_ACCESS_LOG]);
	EXPECT_EQ(20, rec.confirmed[OAP_STREAM_METER]);
	EXPECT_EQ(1, rec.node_infos);
	EXPECT_EQ(0, rec.node_not_first);
	EXPECT_TRUE(node_info_as_set(&rec));
	EXPECT_STREQ("s3cret", rec.auth);
	recorded_free(&rec);
}

/* A uint64 of protobuf JSON (a string) or 0. */
static uint64_t json_path_u64(json_object *obj, const char *const *keys)
{
	for (; obj && *keys; keys++)
		if (!json_object_object_get_ex(obj, *keys, &obj))
			return 0;
	return obj ? json_object_get_uint64(obj) : 0;
}

/* What the kernel logs of some messages add up to, per operation. */
struct call_logs {
	uint64_t reads, read_ns, writes, write_ns;
	uint64_t first_end_ns, last_end_ns;
	bool ends_in_order;
};

static void add_call_logs(json_object *msg, struct call_logs *sum)
{
	json_object *logs = NULL;

	if (!json_object_object_get_ex(msg, "kernelLogs", &logs))
		return;
	for (size_t i = 0; i < json_object_array_length(logs); i++) {
		json_object *log = json_object_array_get_idx(logs, i), *op;
		bool write = json_object_object_get_ex(log, "write", &op);
		uint64_t start, end;

		if (!write && !json_object_object_get_ex(log, "read", &op))
			continue;
		start = json_path_u64(op, (const char *[]){ "startTime", "offset", "offset", NULL });
		end = json_path_u64(op, (const char *[]){ "endTime", "offset", "offset", NULL });
		if (!sum->first_end_ns)
			sum->first_end_ns = end;
		if (end < sum->last_end_ns)
			sum->ends_in_order = false;
		sum->last_end_ns = end;
		*(write ? &sum->writes : &sum->reads) += 1;
		*(write ? &sum->write_ns : &sum->read_ns) += end - start;
	}
}

/*
 * An exchange of 200 request calls and 3 response calls, seen by a server:
 * 203 kernel logs after its protocol log, 128 in the first message and 75
 * in a second that repeats the connection and has no protocol log; reads
 * and writes with the record's duration sums exactly, their ends from the
 * exchange's start to at most its end, in order. Without calls (the
 * compatible mode) one message and no kernel logs.
 */
KTEST_F(oap, http_protocol_log_carries_its_calls_over_several_messages, 60)
{
	struct http_record r = {
		.agg = { .role = KACCESS_ROLE_SERVER },
		.local_port = 8080, .remote_port = 40000, .version = KACCESS_HTTP_VERSION_1_1,
		.status = 200, .start_ns = 5000000000ULL, .end_ns = 5000203000ULL,
		.calls = { .request_calls = 200, .response_calls = 3,
			   .request_call_ns = 200 * 1000 + 7, .response_call_ns = 3 * 5000 + 2 },
		.method = "GET", .path = "/many", .host = "web",
	};
	struct k8s_identity local = { .kind = K8S_KIND_POD, .service = "web.shop", .instance = "web-1" };
	struct call_logs sum = { .ends_in_order = true };
	json_object *msgs, *first, *second;
	struct recorded rec;
	int fake = start_c_fake(self, 0, NULL);

	ASSERT_LE(0, fake);
	r.agg.peer_addr[10] = r.agg.peer_addr[11] = 0xff; /* ::ffff:10.0.0.9 */
	r.agg.peer_addr[12] = 10;
	r.agg.peer_addr[15] = 9;
	ASSERT_EQ(0, oap_config_set(&self->cfg, "oap_mode", "access_logs", NULL, 0));
	ASSERT_EQ(0, sender_for(self, self->fakes[fake].port, &self->sender));
	ASSERT_EQ(0, access_log_send_http(self->sender, &r, &local, NULL, true));
	ASSERT_EQ(0, access_log_send_http(self->sender, &r, &local, NULL, false));
	ASSERT_EQ(0, oap_sender_stop(self->sender, 10000));
	recorded_init(&rec);
	ASSERT_EQ(0, record_file(&rec, self->fakes[fake].out));
	msgs = rec.msgs[OAP_STREAM_ACCESS_LOG];
	ASSERT_EQ(3, json_object_array_length(msgs));
	first = json_object_array_get_idx(msgs, 0);
	second = json_object_array_get_idx(msgs, 1);
	EXPECT_TRUE(json_object_object_get_ex(first, "protocolLog", NULL));
	EXPECT_FALSE(json_object_object_get_ex(second, "protocolLog", NULL));
	EXPECT_TRUE(json_object_object_get_ex(second, "connection", NULL));
	add_call_logs(first, &sum);
	EXPECT_EQ(128, sum.reads);
	add_call_logs(second, &sum);
	EXPECT_EQ(200, sum.reads);
	EXPECT_EQ(r.calls.request_call_ns, sum.read_ns);
	EXPECT_EQ(3, sum.writes);
	EXPECT_EQ(r.calls.response_call_ns, sum.write_ns);
	EXPECT_EQ(r.start_ns, sum.first_end_ns);
	EXPECT_GE(r.end_ns, sum.last_end_ns);
	EXPECT_LE(r.end_ns - 203, sum.last_end_ns); /* spread to the end, less rounding */
	EXPECT_TRUE(sum.ends_in_order);
	/* without calls: the protocol log alone */
	EXPECT_TRUE(json_object_object_get_ex(json_object_array_get_idx(msgs, 2), "protocolLog", NULL));
	EXPECT_FALSE(json_object_object_get_ex(json_object_array_get_idx(msgs, 2), "kernelLogs", NULL));
	recorded_free(&rec);
}

KTEST_F(oap, python_decoder_reads_the_same_stream, 90)
{
	const char *script = "selftests/oap/fake_oap.py";
	struct oap_stream_stats al, me;
	struct recorded rec;
	int fake;

	if (access(script, R_OK) || access("/usr/bin/python3", X_OK) ||
	    system("/usr/bin/python3 -c 'import grpc, grpc_tools' 2>/dev/null"))
		SKIP(return, "needs %s and Debian's python3-grpcio, python3-grpc-tools", script);
	fake = fake_start(self, script, 0, (const char *const[]){ "--token", "py", NULL });
	ASSERT_LE(0, fake);
	strcpy(self->cfg.auth_token, "py");
	ASSERT_EQ(0, sender_for(self, self->fakes[fake].port, &self->sender));
	ASSERT_EQ(0, enqueue_access_logs(self->sender, 0, 100));
	ASSERT_EQ(0, enqueue_meters(self->sender, 0, 10));
	ASSERT_EQ(0, oap_sender_stop(self->sender, 20000));
	al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG);
	me = stats_of(self->sender, OAP_STREAM_METER);
	LOG_STATS(al);
	EXPECT_EQ(100, al.delivered);
	EXPECT_EQ(10, me.delivered);

	recorded_init(&rec);
	ASSERT_EQ(0, record_file(&rec, self->fakes[fake].out));
	EXPECT_TRUE(received_exactly(_metadata, &rec, OAP_STREAM_ACCESS_LOG, 100));
	EXPECT_TRUE(received_exactly(_metadata, &rec, OAP_STREAM_METER, 10));
	EXPECT_EQ(100, rec.confirmed[OAP_STREAM_ACCESS_LOG]);
	EXPECT_EQ(10, rec.confirmed[OAP_STREAM_METER]);
	EXPECT_EQ(0, rec.node_not_first);
	EXPECT_TRUE(node_info_as_set(&rec));
	EXPECT_STREQ("py", rec.auth);
	recorded_free(&rec);
}

KTEST_F(oap, node_info_first_on_every_rotated_stream, 60)
{
	struct oap_stream_stats al, me;
	struct recorded rec;
	int fake = start_c_fake(self, 0, NULL);

	ASSERT_LE(0, fake);
	self->cfg.stream_rotate_s = 1;
	ASSERT_EQ(0, sender_for(self, self->fakes[fake].port, &self->sender));
	for (unsigned int i = 0; i < 35; i++) {
		ASSERT_EQ(0, enqueue_access_logs(self->sender, i, 1));
		ASSERT_EQ(0, enqueue_meters(self->sender, i, 1));
		usleep(100000);
	}
	ASSERT_EQ(0, oap_sender_stop(self->sender, 5000));
	al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG);
	me = stats_of(self->sender, OAP_STREAM_METER);
	LOG_STATS(al);
	EXPECT_EQ(35, al.delivered);
	EXPECT_EQ(35, me.delivered);
	EXPECT_LE(3, al.calls_ok);
	EXPECT_LE(2, al.rotations);
	EXPECT_EQ(0, al.calls_failed);
	EXPECT_EQ(al.calls_started, al.node_info_sent);

	recorded_init(&rec);
	ASSERT_EQ(0, record_file(&rec, self->fakes[fake].out));
	EXPECT_TRUE(received_exactly(_metadata, &rec, OAP_STREAM_ACCESS_LOG, 35));
	EXPECT_TRUE(received_exactly(_metadata, &rec, OAP_STREAM_METER, 35));
	EXPECT_EQ(al.calls_started, rec.calls[OAP_STREAM_ACCESS_LOG]);
	EXPECT_EQ(rec.calls[OAP_STREAM_ACCESS_LOG], rec.node_infos);
	EXPECT_EQ(0, rec.node_not_first);
	recorded_free(&rec);
}

KTEST_F(oap, absent_at_start_then_delivered_within_seconds, 60)
{
	int port = free_port(), fake;
	struct oap_stream_stats al;
	struct recorded rec;
	uint64_t started_ms, took_ms;
	double cpu_before_s;

	ASSERT_LT(0, port);
	self->cfg.stream_rotate_s = 1;
	ASSERT_EQ(0, sender_for(self, port, &self->sender));
	started_ms = now_ms();
	ASSERT_EQ(0, enqueue_access_logs(self->sender, 0, 1000));
	took_ms = now_ms() - started_ms;
	EXPECT_GT(500, took_ms) TH_LOG("1000 enqueues with OAP down took %lu ms", took_ms);
	cpu_before_s = process_cpu_s();
	sleep(2);
	/* Backing off with a full queue is sleeping, not spinning. */
	EXPECT_GT(0.2, process_cpu_s() - cpu_before_s);
	al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG);
	LOG_STATS(al);
	EXPECT_EQ(0, al.delivered);
	EXPECT_EQ(0, al.sent);
	EXPECT_LE(1, al.calls_failed);
	EXPECT_FALSE(al.connected);
	EXPECT_EQ(14, al.last_status); /* UNAVAILABLE */
	EXPECT_NE(NULL, strstr(al.last_error, "UNAVAILABLE")) TH_LOG("%s", al.last_error);

	fake = start_c_fake(self, port, NULL);
	ASSERT_LE(0, fake);
	started_ms = now_ms();
	/* The next call after at most backoff_max_ms (1 s) finds it; the call
	 * after the next rotation (1 s) confirms everything. */
	ASSERT_TRUE(WAIT_UNTIL((al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG)).sent > 0, 3000));
	TH_LOG("writing %lu ms after OAP started", now_ms() - started_ms);
	ASSERT_TRUE(WAIT_UNTIL((al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG)).delivered == 1000, 3000));
	TH_LOG("all delivered %lu ms after OAP started", now_ms() - started_ms);
	ASSERT_EQ(0, oap_sender_stop(self->sender, 5000));
	al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG);
	EXPECT_EQ(1000, al.delivered);
	/* Calls that failed before OAP came up carried no message: nothing lost. */
	EXPECT_EQ(0, dropped_total(&al));
	recorded_init(&rec);
	ASSERT_EQ(0, record_file(&rec, self->fakes[fake].out));
	EXPECT_TRUE(received_exactly(_metadata, &rec, OAP_STREAM_ACCESS_LOG, 1000));
	EXPECT_EQ(0, rec.node_not_first);
	recorded_free(&rec);
}

/* Queue `count` access logs from id `first`, 10 every 20 ms: a stream in use, not one burst. */
static int enqueue_paced(struct oap_sender *sender, unsigned int first, unsigned int count)
{
	int ret = 0;

	for (unsigned int i = first; i < first + count && !ret; i += 10) {
		ret = enqueue_access_logs(sender, i, 10);
		usleep(20000);
	}
	return ret;
}

/* Wait for fake `index` to end on its own, then start a plain one on its port: its index, or -1. */
static int fake_successor(FIXTURE_DATA(oap) *self, int index)
{
	struct fake_proc *fake = &self->fakes[index];

	if (waitpid(fake->pid, NULL, 0) != fake->pid)
		return -1;
	fake->pid = 0;
	return start_c_fake(self, fake->port, NULL);
}

/*
 * The fake dies after 40 messages without a status, then a new one starts on
 * the same port. Delivery is at most once: what was written on the dead call
 * is dropped as unconfirmed (OAP may have read some of it), never re-sent.
 */
KTEST_F(oap, killed_mid_stream_recovers_and_drops_add_up, 90)
{
	const char *const exit_after[] = { "--exit-after", "40", NULL };
	struct oap_stream_stats al;
	struct recorded rec;
	unsigned int on_dead_call;
	int first = start_c_fake(self, 0, exit_after), second;

	ASSERT_LE(0, first);
	self->cfg.stream_rotate_s = 1;
	ASSERT_EQ(0, sender_for(self, self->fakes[first].port, &self->sender));
	ASSERT_EQ(0, enqueue_paced(self->sender, 0, 200));
	second = fake_successor(self, first);
	ASSERT_LE(0, second);
	ASSERT_TRUE(WAIT_UNTIL((al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG)).queue_depth == 0 &&
			       al.in_flight == 0 && al.delivered + dropped_total(&al) == 200, 15000));
	ASSERT_EQ(0, oap_sender_stop(self->sender, 5000));
	al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG);
	LOG_STATS(al);

	recorded_init(&rec);
	ASSERT_EQ(0, record_file(&rec, self->fakes[first].out));
	ASSERT_EQ(0, record_file(&rec, self->fakes[second].out));
	EXPECT_EQ(200, al.enqueued);
	/* Every message is delivered or dropped, and the drops are what OAP did not confirm. */
	EXPECT_EQ(200 - al.delivered, dropped_total(&al));
	EXPECT_EQ(al.delivered, rec.confirmed[OAP_STREAM_ACCESS_LOG]);
	EXPECT_EQ(0, al.dropped[OAP_DROP_QUEUE_FULL]);
	EXPECT_EQ(0, al.dropped[OAP_DROP_SHUTDOWN]);
	EXPECT_LE(1, al.reconnects);
	EXPECT_LT(100, al.delivered); /* recovered: the second fake got the rest */
	/* What the dead fake read but never confirmed is within the unconfirmed drops. */
	on_dead_call = rec.received[OAP_STREAM_ACCESS_LOG] - rec.confirmed[OAP_STREAM_ACCESS_LOG];
	EXPECT_GE(al.dropped[OAP_DROP_UNCONFIRMED], on_dead_call);
	EXPECT_EQ(al.sent, al.delivered + al.dropped[OAP_DROP_UNCONFIRMED]);
	/* Never sent twice, always in order. */
	for (size_t i = 1; i < json_object_array_length(rec.msgs[OAP_STREAM_ACCESS_LOG]); i++)
		EXPECT_LT(message_id(OAP_STREAM_ACCESS_LOG, json_object_array_get_idx(rec.msgs[0], i - 1)),
			  message_id(OAP_STREAM_ACCESS_LOG, json_object_array_get_idx(rec.msgs[0], i)));
	EXPECT_EQ(0, rec.node_not_first);
	recorded_free(&rec);
}

/*
 * OAP stopping gracefully (a rolling restart): after 40 messages the fake
 * sends GOAWAY, closes its listener and serves the open call to its end.
 * That call goes on to its status OK at the next rotation with all 100 of
 * the first half; the next call, once a second fake listens on the same
 * port, goes to a new connection at once (the old one is never tried);
 * nothing is dropped, and every message arrives once, in order.
 */
KTEST_F(oap, goaway_finishes_the_open_call_and_the_next_reconnects, 90)
{
	const char *const goaway[] = { "--goaway-after", "40", NULL };
	struct oap_stream_stats al;
	struct recorded rec;
	int first = start_c_fake(self, 0, goaway), second;

	ASSERT_LE(0, first);
	self->cfg.stream_rotate_s = 1;
	ASSERT_EQ(0, sender_for(self, self->fakes[first].port, &self->sender));
	ASSERT_EQ(0, enqueue_paced(self->sender, 0, 100));
	/* the fake exits once its last call is over: the sender's rotation ended it */
	second = fake_successor(self, first);
	ASSERT_LE(0, second);
	ASSERT_EQ(0, enqueue_access_logs(self->sender, 100, 100));
	ASSERT_TRUE(WAIT_UNTIL((al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG)).delivered == 200, 15000));
	ASSERT_EQ(0, oap_sender_stop(self->sender, 5000));
	al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG);
	LOG_STATS(al);
	EXPECT_EQ(200, al.delivered);
	EXPECT_EQ(0, dropped_total(&al));
	EXPECT_EQ(0, al.calls_failed);
	EXPECT_LE(2, al.calls_ok);

	recorded_init(&rec);
	ASSERT_EQ(0, record_file(&rec, self->fakes[first].out));
	/* everything of the first half, 60 of it after the GOAWAY, confirmed */
	EXPECT_EQ(100, rec.received[OAP_STREAM_ACCESS_LOG]);
	EXPECT_EQ(100, rec.confirmed[OAP_STREAM_ACCESS_LOG]);
	ASSERT_EQ(0, record_file(&rec, self->fakes[second].out));
	EXPECT_TRUE(received_exactly(_metadata, &rec, OAP_STREAM_ACCESS_LOG, 200));
	EXPECT_EQ(200, rec.confirmed[OAP_STREAM_ACCESS_LOG]);
	EXPECT_EQ(0, rec.node_not_first);
	recorded_free(&rec);
}

KTEST_F(oap, unavailable_is_retried_with_capped_backoff, 60)
{
	struct oap_stream_stats al;
	struct recorded rec;
	int first = start_c_fake(self, 0, (const char *const[]){ "--unavailable", NULL }), second;

	ASSERT_LE(0, first);
	self->cfg.backoff_initial_ms = 100;
	self->cfg.backoff_max_ms = 400;
	self->cfg.stream_rotate_s = 1;
	ASSERT_EQ(0, sender_for(self, self->fakes[first].port, &self->sender));
	ASSERT_EQ(0, enqueue_access_logs(self->sender, 0, 5));
	sleep(3);
	al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG);
	LOG_STATS(al);
	/* 100 + 200 + 400 + 400 ... ms between calls: 4 to 10 calls in 3 s. */
	EXPECT_LE(4, al.calls_failed);
	EXPECT_GE(10, al.calls_started);
	EXPECT_EQ(al.calls_started - 1, al.reconnects);
	EXPECT_EQ(0, al.calls_ok);
	EXPECT_EQ(14, al.last_status);
	EXPECT_NE(NULL, strstr(al.last_error, "UNAVAILABLE: fake_oap is unavailable")) TH_LOG("%s", al.last_error);
	/* Refused at once, within the probation: no message went with a call. */
	EXPECT_EQ(0, al.delivered);
	EXPECT_EQ(0, al.sent);
	EXPECT_EQ(0, dropped_total(&al));
	EXPECT_EQ(5, al.queue_depth);
	recorded_init(&rec);
	ASSERT_EQ(0, record_file(&rec, self->fakes[first].out));
	EXPECT_EQ(al.calls_started, rec.rejected);
	recorded_free(&rec);

	fake_kill(&self->fakes[first]);
	second = start_c_fake(self, self->fakes[first].port, NULL);
	ASSERT_LE(0, second);
	ASSERT_EQ(0, enqueue_access_logs(self->sender, 5, 10));
	EXPECT_TRUE(WAIT_UNTIL((al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG)).delivered == 15, 10000));
	ASSERT_EQ(0, oap_sender_stop(self->sender, 5000));
	al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG);
	LOG_STATS(al);
	EXPECT_EQ(15, al.delivered);
	EXPECT_EQ(0, dropped_total(&al));
	recorded_init(&rec);
	ASSERT_EQ(0, record_file(&rec, self->fakes[second].out));
	EXPECT_TRUE(received_exactly(_metadata, &rec, OAP_STREAM_ACCESS_LOG, 15));
	EXPECT_EQ(15, rec.confirmed[OAP_STREAM_ACCESS_LOG]);
	recorded_free(&rec);
}

KTEST_F(oap, slow_oap_keeps_the_queue_bounded_and_drops_oldest_exactly, 90)
{
	const char *const slow[] = { "--slow-ms", "5", NULL };
	struct oap_stream_stats al;
	struct recorded rec;
	uint64_t started_ms, took_ms;
	int fake = start_c_fake(self, 0, slow);
	long last_id;

	ASSERT_LE(0, fake);
	self->cfg.queue_max_messages = 50;
	self->cfg.queue_max_kib = 64;
	ASSERT_EQ(0, sender_for(self, self->fakes[fake].port, &self->sender));
	started_ms = now_ms();
	ASSERT_EQ(0, enqueue_access_logs(self->sender, 0, 3000));
	took_ms = now_ms() - started_ms;
	EXPECT_GT(1000, took_ms) TH_LOG("3000 enqueues into a slow OAP took %lu ms", took_ms);
	ASSERT_TRUE(WAIT_UNTIL((al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG)).queue_depth == 0, 30000));
	ASSERT_EQ(0, oap_sender_stop(self->sender, 30000));
	al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG);
	LOG_STATS(al);
	EXPECT_GE(50, al.queue_depth_max);
	EXPECT_GE(64 * 1024, al.queue_bytes_max);
	EXPECT_LT(1000, al.dropped[OAP_DROP_QUEUE_FULL]);
	EXPECT_EQ(3000, al.enqueued);
	EXPECT_EQ(3000 - al.dropped[OAP_DROP_QUEUE_FULL], al.delivered);
	EXPECT_EQ(al.dropped[OAP_DROP_QUEUE_FULL], dropped_total(&al));

	recorded_init(&rec);
	ASSERT_EQ(0, record_file(&rec, self->fakes[fake].out));
	/* The fake counted exactly what the drop counter did not. */
	EXPECT_EQ(3000 - al.dropped[OAP_DROP_QUEUE_FULL], rec.received[OAP_STREAM_ACCESS_LOG]);
	EXPECT_EQ(al.delivered, rec.confirmed[OAP_STREAM_ACCESS_LOG]);
	/* Drop-oldest: the newest message survives. */
	last_id = message_id(OAP_STREAM_ACCESS_LOG, json_object_array_get_idx(rec.msgs[0],
				json_object_array_length(rec.msgs[0]) - 1));
	EXPECT_EQ(2999, last_id);
	for (size_t i = 1; i < json_object_array_length(rec.msgs[0]); i++)
		EXPECT_LT(message_id(0, json_object_array_get_idx(rec.msgs[0], i - 1)),
			  message_id(0, json_object_array_get_idx(rec.msgs[0], i)));
	recorded_free(&rec);
}

static int make_certs(const char *dir)
{
	char cmd[PATH_MAX + 64];

	if (access("selftests/oap/mkcerts.sh", X_OK) || system("command -v openssl >/dev/null"))
		return -ENOENT;
	snprintf(cmd, sizeof(cmd), "selftests/oap/mkcerts.sh '%s/pki'", dir);
	return system(cmd) ? -EIO : 0;
}

KTEST_F(oap, mutual_tls_with_the_test_ca_and_a_wrong_ca_fails_clearly, 60)
{
	char cert[128], key[128], ca[128];
	struct oap_stream_stats al;
	struct recorded rec;
	int fake, ret = make_certs(self->dir);

	if (ret == -ENOENT)
		SKIP(return, "needs openssl and selftests/oap/mkcerts.sh");
	ASSERT_EQ(0, ret);
	snprintf(cert, sizeof(cert), "%s/pki/server.pem", self->dir);
	snprintf(key, sizeof(key), "%s/pki/server.key", self->dir);
	snprintf(ca, sizeof(ca), "%s/pki/ca.pem", self->dir);
	fake = start_c_fake(self, 0, (const char *const[]){ "--tls-cert", cert, "--tls-key", key,
							    "--tls-client-ca", ca, NULL });
	ASSERT_LE(0, fake);

	self->cfg.tls = true;
	strcpy(self->cfg.tls_ca, ca);
	snprintf(self->cfg.tls_cert, sizeof(self->cfg.tls_cert), "%s/pki/client.pem", self->dir);
	snprintf(self->cfg.tls_key, sizeof(self->cfg.tls_key), "%s/pki/client.key", self->dir);
	ASSERT_EQ(0, sender_for(self, self->fakes[fake].port, &self->sender));
	ASSERT_EQ(0, enqueue_access_logs(self->sender, 0, 50));
	ASSERT_EQ(0, enqueue_meters(self->sender, 0, 5));
	ASSERT_EQ(0, oap_sender_stop(self->sender, 10000));
	al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG);
	LOG_STATS(al);
	EXPECT_EQ(50, al.delivered);
	EXPECT_EQ(5, stats_of(self->sender, OAP_STREAM_METER).delivered);
	recorded_init(&rec);
	ASSERT_EQ(0, record_file(&rec, self->fakes[fake].out));
	EXPECT_TRUE(received_exactly(_metadata, &rec, OAP_STREAM_ACCESS_LOG, 50));
	EXPECT_TRUE(received_exactly(_metadata, &rec, OAP_STREAM_METER, 5));
	recorded_free(&rec);

	/* The same server checked against an unrelated CA: nothing goes through. */
	snprintf(self->cfg.tls_ca, sizeof(self->cfg.tls_ca), "%s/pki/wrong-ca.pem", self->dir);
	ASSERT_EQ(0, sender_for(self, self->fakes[fake].port, &self->sender2));
	ASSERT_EQ(0, enqueue_access_logs(self->sender2, 0, 5));
	EXPECT_TRUE(WAIT_UNTIL(stats_of(self->sender2, OAP_STREAM_ACCESS_LOG).calls_failed >= 2, 10000));
	al = stats_of(self->sender2, OAP_STREAM_ACCESS_LOG);
	LOG_STATS(al);
	EXPECT_EQ(0, al.delivered);
	EXPECT_EQ(0, al.sent);
	EXPECT_EQ(14, al.last_status);
	EXPECT_NE(NULL, strstr(al.last_error, "check oap_tls, oap_tls_ca and OAP's certificate"))
		TH_LOG("%s", al.last_error);
}

KTEST_F(oap, wrong_token_is_rejected_and_reported, 60)
{
	struct oap_stream_stats al, me;
	struct recorded rec;
	int fake = start_c_fake(self, 0, (const char *const[]){ "--token", "right", NULL });

	ASSERT_LE(0, fake);
	strcpy(self->cfg.auth_token, "wrong");
	ASSERT_EQ(0, sender_for(self, self->fakes[fake].port, &self->sender));
	ASSERT_EQ(0, enqueue_access_logs(self->sender, 0, 3));
	ASSERT_EQ(0, enqueue_meters(self->sender, 0, 3));
	ASSERT_TRUE(WAIT_UNTIL(stats_of(self->sender, OAP_STREAM_ACCESS_LOG).auth_failures >= 1 &&
			       stats_of(self->sender, OAP_STREAM_METER).auth_failures >= 1, 10000));
	al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG);
	me = stats_of(self->sender, OAP_STREAM_METER);
	LOG_STATS(al);
	EXPECT_EQ(16, al.last_status); /* UNAUTHENTICATED */
	EXPECT_EQ(16, me.last_status);
	EXPECT_EQ(0, al.delivered);
	EXPECT_EQ(0, al.sent);         /* refused within the probation: still queued */
	EXPECT_EQ(3, al.queue_depth);
	EXPECT_EQ(3, me.queue_depth);
	EXPECT_NE(NULL, strstr(al.last_error, "authentication rejected by OAP 127.0.0.1:"))
		TH_LOG("%s", al.last_error);
	EXPECT_NE(NULL, strstr(al.last_error, "UNAUTHENTICATED; check oap_auth_token"))
		TH_LOG("%s", al.last_error);
	ASSERT_EQ(0, oap_sender_stop(self->sender, 0));
	al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG);
	EXPECT_EQ(3, al.dropped[OAP_DROP_SHUTDOWN]);
	recorded_init(&rec);
	ASSERT_EQ(0, record_file(&rec, self->fakes[fake].out));
	EXPECT_LE(2, rec.rejected);
	EXPECT_EQ(0, rec.received[OAP_STREAM_ACCESS_LOG] + rec.received[OAP_STREAM_METER]);
	EXPECT_STREQ("wrong", rec.auth);
	recorded_free(&rec);

	/* OAP itself answers a wrong token with PERMISSION_DENIED: same report. */
	fake = start_c_fake(self, 0, (const char *const[]){ "--token", "right", "--permission-denied", NULL });
	ASSERT_LE(0, fake);
	ASSERT_EQ(0, sender_for(self, self->fakes[fake].port, &self->sender2));
	ASSERT_EQ(0, enqueue_access_logs(self->sender2, 0, 1));
	ASSERT_TRUE(WAIT_UNTIL(stats_of(self->sender2, OAP_STREAM_ACCESS_LOG).auth_failures >= 1, 10000));
	al = stats_of(self->sender2, OAP_STREAM_ACCESS_LOG);
	EXPECT_EQ(7, al.last_status); /* PERMISSION_DENIED */
	EXPECT_NE(NULL, strstr(al.last_error, "PERMISSION_DENIED; check oap_auth_token")) TH_LOG("%s", al.last_error);
	EXPECT_EQ(1, al.queue_depth);
}


/* The access-log stream's counters once a call failed, within 10 s: false if none did. */
static bool first_failed_call(struct oap_sender *sender, struct oap_stream_stats *ret_stats)
{
	return WAIT_UNTIL((*ret_stats = stats_of(sender, OAP_STREAM_ACCESS_LOG)).calls_failed >= 1, 10000);
}

/* A loopback TCP connect to the server's port succeeds. */
static bool port_accepts(struct fake_proc *server, const void *unused)
{
	struct sockaddr_in addr = {
		.sin_family = AF_INET, .sin_port = htons(server->port),
		.sin_addr.s_addr = htonl(INADDR_LOOPBACK),
	};
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&addr, sizeof(addr)) == 0;

	if (fd >= 0)
		close(fd);
	return ok;
}

/*
 * Run a server that is not a gRPC one (argv, its stderr and stdout into the
 * test's directory) and wait until it listens on `port`. Its index in the
 * fakes (killed at teardown), or -1.
 */
static int other_server_start(FIXTURE_DATA(oap) *self, const char *const *argv, int port)
{
	struct fake_proc *server = &self->fakes[self->n_fakes];
	char log[128];
	int index = self->n_fakes;

	if (self->n_fakes == MAX_FAKES)
		return -1;
	snprintf(log, sizeof(log), "%s/server-%d.log", self->dir, index);
	server->pid = fork();
	if (server->pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (!freopen(log, "w", stderr) || !freopen("/dev/null", "w", stdout) ||
		    !freopen("/dev/null", "r", stdin))
			_exit(127);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	if (server->pid < 0)
		return -1;
	self->n_fakes++;
	server->port = port;
	return wait_ready(server, port_accepts, NULL, 100) ? -1 : index;
}

/*
 * OAP's address pointing at a server that is not gRPC: the error says what
 * answered. nghttpd (HTTP/2 without TLS) has no such path: its 404 is gRPC's
 * UNIMPLEMENTED. openssl s_server (TLS without ALPN h2) cannot carry gRPC.
 */
KTEST_F(oap, a_server_that_is_not_grpc_is_named_in_the_error, 60)
{
	char port_text[16], cert[128], key[128], accept[32];
	int port = free_port(), ret = make_certs(self->dir), server;
	struct oap_stream_stats al;

	if (ret == -ENOENT || system("command -v nghttpd >/dev/null"))
		SKIP(return, "needs nghttpd, openssl and selftests/oap/mkcerts.sh");
	ASSERT_EQ(0, ret);
	ASSERT_LT(0, port);
	snprintf(port_text, sizeof(port_text), "%d", port);
	server = other_server_start(self, (const char *const[]){ "nghttpd", "--no-tls",
		"--address=127.0.0.1", "-d", self->dir, port_text, NULL }, port);
	ASSERT_LE(0, server);
	self->cfg.stream_rotate_s = 1;
	ASSERT_EQ(0, sender_for(self, port, &self->sender));
	ASSERT_EQ(0, enqueue_access_logs(self->sender, 0, 5));
	ASSERT_TRUE(first_failed_call(self->sender, &al));
	LOG_STATS(al);
	EXPECT_EQ(12, al.last_status); /* UNIMPLEMENTED */
	EXPECT_NE(NULL, strstr(al.last_error, "UNIMPLEMENTED: HTTP status 404 without a grpc-status"))
		TH_LOG("%s", al.last_error);
	EXPECT_EQ(0, al.delivered);
	EXPECT_EQ(5, al.queue_depth + al.sent);
	EXPECT_EQ(al.sent, al.dropped[OAP_DROP_UNCONFIRMED] + al.dropped[OAP_DROP_SEND_FAILED] + al.in_flight);

	/* TLS that does not offer HTTP/2. */
	port = free_port();
	ASSERT_LT(0, port);
	snprintf(cert, sizeof(cert), "%s/pki/server.pem", self->dir);
	snprintf(key, sizeof(key), "%s/pki/server.key", self->dir);
	snprintf(accept, sizeof(accept), "127.0.0.1:%d", port);
	server = other_server_start(self, (const char *const[]){ "openssl", "s_server", "-accept",
		accept, "-cert", cert, "-key", key, "-www", "-quiet", NULL }, port);
	ASSERT_LE(0, server);
	self->cfg.tls = true;
	snprintf(self->cfg.tls_ca, sizeof(self->cfg.tls_ca), "%s/pki/ca.pem", self->dir);
	ASSERT_EQ(0, sender_for(self, port, &self->sender2));
	ASSERT_EQ(0, enqueue_access_logs(self->sender2, 0, 5));
	ASSERT_TRUE(first_failed_call(self->sender2, &al));
	LOG_STATS(al);
	EXPECT_EQ(14, al.last_status); /* UNAVAILABLE */
	EXPECT_NE(NULL, strstr(al.last_error, "the server did not agree to HTTP/2 (ALPN h2)"))
		TH_LOG("%s", al.last_error);
	EXPECT_EQ(0, al.sent);
	EXPECT_EQ(5, al.queue_depth);
}

/* oap_tls_server_name, not the address's host, is what OAP's certificate must name. */
KTEST_F(oap, tls_server_name_is_the_name_the_certificate_must_carry, 60)
{
	char cert[128], key[128];
	struct oap_stream_stats al;
	int fake, ret = make_certs(self->dir);

	if (ret == -ENOENT)
		SKIP(return, "needs openssl and selftests/oap/mkcerts.sh");
	ASSERT_EQ(0, ret);
	snprintf(cert, sizeof(cert), "%s/pki/server.pem", self->dir);
	snprintf(key, sizeof(key), "%s/pki/server.key", self->dir);
	fake = start_c_fake(self, 0, (const char *const[]){ "--tls-cert", cert, "--tls-key", key, NULL });
	ASSERT_LE(0, fake);
	self->cfg.tls = true;
	snprintf(self->cfg.tls_ca, sizeof(self->cfg.tls_ca), "%s/pki/ca.pem", self->dir);

	/* the certificate names localhost (and 127.0.0.1): the override is checked, and passes */
	strcpy(self->cfg.tls_server_name, "localhost");
	ASSERT_EQ(0, sender_for(self, self->fakes[fake].port, &self->sender));
	ASSERT_EQ(0, enqueue_access_logs(self->sender, 0, 20));
	ASSERT_EQ(0, oap_sender_stop(self->sender, 10000));
	al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG);
	LOG_STATS(al);
	EXPECT_EQ(20, al.delivered);

	/* a name it does not carry fails, although 127.0.0.1 would have passed */
	strcpy(self->cfg.tls_server_name, "oap.skywalking");
	ASSERT_EQ(0, sender_for(self, self->fakes[fake].port, &self->sender2));
	ASSERT_EQ(0, enqueue_access_logs(self->sender2, 0, 5));
	ASSERT_TRUE(first_failed_call(self->sender2, &al));
	LOG_STATS(al);
	EXPECT_EQ(14, al.last_status);
	EXPECT_NE(NULL, strstr(al.last_error, "certificate verify failed: hostname mismatch"))
		TH_LOG("%s", al.last_error);
	EXPECT_EQ(0, al.sent);
}

/* Pump `conn` until its call is done or `ms` passed; the time it took. */
static uint64_t pump_until_done(struct grpc_conn *conn, uint64_t ms)
{
	uint64_t start_ms = now_ms();

	while (!grpc_call_state(conn)->done && now_ms() - start_ms < ms)
		grpc_conn_pump(conn, 50);
	return now_ms() - start_ms;
}

/*
 * The transport's keepalive, below the sender (whose oap_keepalive_s is at
 * least 300 s, what gRPC servers allow): a PING after 1 s of silence, and
 * a connection whose peer never answers it is dead 500 ms later; a real
 * gRPC server answers, and the call lives on.
 */
KTEST_F(oap, keepalive_ping_ends_a_silent_connection_and_not_a_live_one, 60)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t addr_len = sizeof(addr);
	struct grpc_conn_options opts = {
		.keepalive_s = 1, .keepalive_timeout_ms = 500, .connect_timeout_ms = 2000,
	};
	const struct grpc_call_state *state;
	struct grpc_conn *conn = NULL;
	char address[32], err[GRPC_DETAILS_LEN] = "";
	int silent = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), fake;
	uint64_t took_ms;

	/* a listener that never accepts: the kernel completes the handshake, nothing answers */
	ASSERT_LE(0, silent);
	ASSERT_EQ(0, bind(silent, (struct sockaddr *)&addr, sizeof(addr)));
	ASSERT_EQ(0, listen(silent, 4));
	ASSERT_EQ(0, getsockname(silent, (struct sockaddr *)&addr, &addr_len));
	snprintf(address, sizeof(address), "127.0.0.1:%d", ntohs(addr.sin_port));
	opts.address = address;
	ASSERT_EQ(0, grpc_conn_open(&opts, &conn, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, grpc_call_start(conn, "/skywalking.v3.MeterReportService/collectBatch", ""));
	took_ms = pump_until_done(conn, 5000);
	state = grpc_call_state(conn);
	EXPECT_TRUE(state->done);
	EXPECT_EQ(GRPC_CODE_UNAVAILABLE, state->code);
	EXPECT_STREQ("no answer to a keepalive PING in 500 ms", state->details);
	EXPECT_LE(1500, took_ms);
	EXPECT_GT(3000, took_ms);
	EXPECT_FALSE(grpc_conn_reusable(conn));
	grpc_conn_free(conn);
	close(silent);

	/* fake_oap (the gRPC C core) answers: 1.8 s with a PING due at 1 s, a deadline at 1.5 s */
	fake = start_c_fake(self, 0, NULL);
	ASSERT_LE(0, fake);
	snprintf(address, sizeof(address), "127.0.0.1:%d", self->fakes[fake].port);
	ASSERT_EQ(0, grpc_conn_open(&opts, &conn, err, sizeof(err))) TH_LOG("%s", err);
	ASSERT_EQ(0, grpc_call_start(conn, "/skywalking.v3.MeterReportService/collectBatch", ""));
	pump_until_done(conn, 1800);
	state = grpc_call_state(conn);
	EXPECT_FALSE(state->done) TH_LOG("%d %s", state->code, state->details);
	EXPECT_TRUE(grpc_conn_reusable(conn));
	/* and the call still ends as OAP says */
	grpc_call_half_close(conn);
	pump_until_done(conn, 5000);
	EXPECT_TRUE(state->done);
	EXPECT_EQ(GRPC_CODE_OK, state->code) TH_LOG("%s", state->details);
	grpc_conn_free(conn);
}

/*
 * A DNS server that never answers: a UDP socket on 127.0.0.77:53, named
 * by a resolv.conf (30 s resolver timeout) bind-mounted over
 * /etc/resolv.conf in this test's own mount namespace. Its socket, or -1.
 */
static int silent_dns_server(const char *dir)
{
	struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons(53) };
	int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	char path[PATH_MAX];
	FILE *conf;

	inet_pton(AF_INET, "127.0.0.77", &addr.sin_addr);
	if (fd < 0 || bind(fd, (struct sockaddr *)&addr, sizeof(addr)))
		return -1;
	snprintf(path, sizeof(path), "%s/resolv.conf", dir);
	conf = fopen(path, "w");
	if (!conf)
		return -1;
	fputs("nameserver 127.0.0.77\noptions timeout:30 attempts:1\n", conf);
	fclose(conf);
	if (unshare(CLONE_NEWNS) || mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
	    mount(path, "/etc/resolv.conf", NULL, MS_BIND, NULL))
		return -1;
	return fd;
}

/* DNS queries the silent server was sent since the last call. */
static unsigned int queries_received(int fd)
{
	unsigned int queries = 0;
	char packet[512];

	while (recv(fd, packet, sizeof(packet), 0) > 0)
		queries++;
	return queries;
}

/*
 * OAP by a name the resolver never answers for: the connect deadline ends
 * the lookup (the resolver's own 30 s do not), and a stopping sender does
 * not wait for the resolver past its flush budget.
 */
KTEST_F(oap, a_name_without_an_answer_ends_at_the_deadline_and_at_stop, 60)
{
	struct grpc_conn_options opts = { .address = "oap.kaccess.test:11800",
					  .connect_timeout_ms = 500 };
	char err[GRPC_DETAILS_LEN] = "";
	const char *timed_out = "resolve oap.kaccess.test: no answer in ";
	struct grpc_conn *conn = NULL;
	struct oap_stream_stats al;
	uint64_t started_ms, took_ms;
	int dns = silent_dns_server(self->dir);

	ASSERT_LE(0, dns) TH_LOG("silent DNS server: %s", strerror(errno));
	started_ms = now_ms();
	EXPECT_EQ(-ETIMEDOUT, grpc_conn_open(&opts, &conn, err, sizeof(err)));
	took_ms = now_ms() - started_ms;
	EXPECT_LE(500, took_ms);
	EXPECT_GT(1500, took_ms);
	EXPECT_EQ(0, strncmp(err, timed_out, strlen(timed_out))) TH_LOG("%s", err);
	EXPECT_LE(1, queries_received(dns)); /* the resolver did ask */

	/* the sender's connect waits 20 s; a stop with 300 ms of flush budget ends it */
	snprintf(self->cfg.address, sizeof(self->cfg.address), "oap.kaccess.test:11800");
	ASSERT_EQ(0, oap_sender_create(&self->cfg, &self->sender));
	set_test_node_info(self->sender);
	ASSERT_EQ(0, oap_sender_start(self->sender));
	ASSERT_EQ(0, enqueue_access_logs(self->sender, 0, 10));
	usleep(1000 * 1000);
	EXPECT_LE(1, queries_received(dns));
	started_ms = now_ms();
	ASSERT_EQ(0, oap_sender_stop(self->sender, 300));
	took_ms = now_ms() - started_ms;
	EXPECT_GT(1000, took_ms) TH_LOG("stop took %lu ms", took_ms);
	al = stats_of(self->sender, OAP_STREAM_ACCESS_LOG);
	LOG_STATS(al);
	EXPECT_EQ(0, al.sent);
	EXPECT_EQ(0, al.delivered);
	EXPECT_NE(NULL, strstr(al.last_error, "resolve oap.kaccess.test: stopped"))
		TH_LOG("%s", al.last_error);
	close(dns);
}

KTEST_F(oap, meter_batches_split_and_host_node_info_arrive, 60)
{
	const char *const excluded[] = { "kube-system", NULL };
	const struct oap_label labels[] = { { "svc", "web.shop" }, { "pod", NULL }, { "side", "server" } };
	const int64_t bounds[] = { 0, 10, 25, 50 };
	const uint64_t counts[] = { 3, 5, 0, 1 };
	struct oap_meter_batch *batch = NULL;
	struct oap_stream_stats me;
	struct recorded rec;
	struct timespec mono;
	char hostname[256] = "", pods[1000][16];
	struct oap_label row[3];
	size_t meter_data = 0, collections;
	json_object *msgs, *first, *hist, *want;
	int fake = start_c_fake(self, 0, NULL);

	ASSERT_LE(0, fake);
	strcpy(self->cfg.cluster_name, "c1");
	snprintf(self->cfg.address, sizeof(self->cfg.address), "127.0.0.1:%d", self->fakes[fake].port);
	ASSERT_EQ(0, oap_sender_create(&self->cfg, &self->sender));
	ASSERT_EQ(0, oap_sender_set_node_info_from_host(self->sender, excluded));
	ASSERT_EQ(0, oap_sender_start(self->sender));
	ASSERT_EQ(0, enqueue_access_logs(self->sender, 0, 1));

	/* 20000 values of ~100 bytes: more than one 1 MiB collection. */
	ASSERT_EQ(0, oap_meter_batch_new("kaccess", "node-1", 1700000000000ll, &batch));
	memcpy(row, labels, sizeof(row));
	for (int i = 0; i < 20000; i++) {
		snprintf(pods[i % 1000], sizeof(pods[0]), "web-%d", i % 1000);
		row[1].value = pods[i % 1000];
		ASSERT_EQ(0, oap_meter_batch_add_value(batch, "kaccess_write_l4_duration_ns", row, 3, i + 0.5));
	}
	row[1].value = "web-0";
	ASSERT_EQ(0, oap_meter_batch_add_histogram(batch, "kaccess_http_latency_ms_histogram", row, 3,
						   bounds, counts, 4));
	ASSERT_EQ(0, oap_sender_enqueue_meter_batch(self->sender, batch));
	ASSERT_EQ(0, oap_sender_stop(self->sender, 10000));
	me = stats_of(self->sender, OAP_STREAM_METER);
	LOG_STATS(me);
	collections = me.enqueued;
	EXPECT_LE(2, collections);
	EXPECT_EQ(collections, me.delivered);

	recorded_init(&rec);
	ASSERT_EQ(0, record_file(&rec, self->fakes[fake].out));
	msgs = rec.msgs[OAP_STREAM_METER];
	ASSERT_EQ(collections, json_object_array_length(msgs));
	for (size_t c = 0; c < collections; c++) {
		json_object *data = jget(json_object_array_get_idx(msgs, c), "meterData");

		for (size_t i = 0; i < json_object_array_length(data); i++) {
			json_object *one = json_object_array_get_idx(data, i);

			/* OAP drops a collection without these: every entry has them. */
			EXPECT_STREQ("kaccess", jstr(one, "service"));
			EXPECT_STREQ("node-1", jstr(one, "serviceInstance"));
			EXPECT_STREQ("1700000000000", jstr(one, "timestamp"));
		}
		meter_data += json_object_array_length(data);
	}
	EXPECT_EQ(20001, meter_data);
	first = json_object_array_get_idx(jget(json_object_array_get_idx(msgs, 0), "meterData"), 7);
	want = json_tokener_parse("{\"singleValue\":{\"name\":\"kaccess_write_l4_duration_ns\",\"labels\":"
		"[{\"name\":\"svc\",\"value\":\"web.shop\"},{\"name\":\"pod\",\"value\":\"web-7\"},"
		"{\"name\":\"side\",\"value\":\"server\"}],\"value\":7.5},\"service\":\"kaccess\","
		"\"serviceInstance\":\"node-1\",\"timestamp\":\"1700000000000\"}");
	EXPECT_TRUE(json_same(want, first)) TH_LOG("%s", json_object_to_json_string(first));
	json_object_put(want);
	hist = jget(json_object_array_get_idx(jget(json_object_array_get_idx(msgs, collections - 1),
						   "meterData"), 
		    json_object_array_length(jget(json_object_array_get_idx(msgs, collections - 1), "meterData")) - 1),
		    "histogram");
	want = json_tokener_parse("{\"name\":\"kaccess_http_latency_ms_histogram\",\"labels\":"
		"[{\"name\":\"svc\",\"value\":\"web.shop\"},{\"name\":\"pod\",\"value\":\"web-0\"},"
		"{\"name\":\"side\",\"value\":\"server\"}],\"values\":[{\"count\":\"3\"},"
		"{\"bucket\":10,\"count\":\"5\"},{\"bucket\":25},{\"bucket\":50,\"count\":\"1\"}]}");
	EXPECT_TRUE(json_same(want, hist)) TH_LOG("%s", json_object_to_json_string(hist));
	json_object_put(want);

	/* The node info from this host. */
	ASSERT_NE(NULL, rec.node);
	gethostname(hostname, sizeof(hostname) - 1);
	EXPECT_STREQ(hostname, jstr(rec.node, "name"));
	EXPECT_STREQ("c1", jstr(rec.node, "clusterName"));
	EXPECT_STREQ("kube-system", json_object_get_string(json_object_array_get_idx(
		jget(jget(rec.node, "policy"), "excludeNamespaces"), 0)));
	clock_gettime(CLOCK_MONOTONIC, &mono);
	EXPECT_GE(2, labs(atol(jstr(jget(rec.node, "bootTime"), "seconds")) - (time(NULL) - mono.tv_sec)));
	want = json_tokener_parse("{\"index\":1,\"mtu\":65536,\"name\":\"lo\"}");
	EXPECT_TRUE(json_same(want, json_object_array_get_idx(jget(rec.node, "netInterfaces"), 0)))
		TH_LOG("%s", json_object_to_json_string(jget(rec.node, "netInterfaces")));
	json_object_put(want);
	recorded_free(&rec);
	oap_meter_batch_free(batch);
}

TEST_HARNESS_MAIN
