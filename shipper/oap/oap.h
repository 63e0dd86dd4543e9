/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The OAP sender: delivers access logs and meter collections to Apache
 * SkyWalking OAP over gRPC (kaccess's own, on HTTP/2: grpc_conn.h), from
 * threads of its own, so that OAP being down, slow or refusing never blocks
 * the caller.
 *
 * Two client-streaming calls, one per stream, each fed by a bounded queue:
 *
 *   OAP_STREAM_ACCESS_LOG  /skywalking.v3.EBPFAccessLogService/collect
 *                          one EBPFAccessLogMessage per queue entry; the node
 *                          info (oap_sender_set_node_info) goes first on
 *                          every new call
 *   OAP_STREAM_METER       /skywalking.v3.MeterReportService/collectBatch
 *                          one MeterDataCollection per queue entry
 *
 * Delivery is at most once. A message counts as `sent` when it is written
 * into its call (the socket takes it at the next pump), and as `delivered` only when its call ends with status OK (the server
 * has read everything before it answers). Messages sent on a call that then
 * fails are counted as dropped for reason OAP_DROP_UNCONFIRMED: OAP may or may
 * not have read them, and nothing is re-sent. Access-log calls are closed and
 * reopened every stream_rotate_s to bound that window and to let OAP
 * rebalance; a meter call is closed as soon as its queue is written (once an
 * interval), so each interval's meters are confirmed on their own. A new call
 * writes nothing from the queue for its first 250 ms unless OAP's headers
 * come first, so a refusal (wrong token, UNAVAILABLE) costs no queued data.
 *
 * Every accepted entry ends in exactly one of: delivered, a drop reason, or
 * still queued / in flight; OAP_DROP_TOO_LARGE counts refused messages, never
 * accepted. So for each stream at any moment
 *   enqueued == delivered + sum(dropped[]) - dropped[OAP_DROP_TOO_LARGE]
 *               + queue_depth + in_flight.
 *
 * Usage:
 *   oap_config_set_defaults(&cfg); oap_config_set(&cfg, "oap_address", ...);
 *   oap_config_check(&cfg, err, len);
 *   oap_sender_create(&cfg, &sender);
 *   oap_sender_set_node_info_from_host(sender, excluded_namespaces);
 *   oap_sender_start(sender);
 *   ... oap_sender_enqueue_access_log(sender, &msg) per message;
 *       per interval oap_meter_batch_new(), oap_meter_batch_add_value() and
 *       _add_histogram() per meter, oap_sender_enqueue_meter_batch(),
 *       oap_meter_batch_free();
 *       oap_sender_stats(sender, stream, &stats) for the exported counters ...
 *   oap_sender_stop(sender, flush_timeout_ms); oap_sender_free(sender);
 *
 * Functions return 0 or -errno.
 */
#ifndef KACCESS_OAP_H
#define KACCESS_OAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "ebpf/accesslog.pb-c.h"
#include "language-agent/Meter.pb-c.h"

enum oap_mode {
	OAP_MODE_METRICS,      /* pre-aggregated meters only */
	OAP_MODE_ACCESS_LOGS,  /* access logs only: connections and HTTP exchanges */
	OAP_MODE_BOTH,         /* both (default) */
	OAP_MODE_COMPATIBLE,   /* access logs with per-syscall kernel logs, so that
				* stock OAP's own analysis yields kaccess's
				* numbers; no meters (they would be redundant) */
};

enum oap_stream {
	OAP_STREAM_ACCESS_LOG,
	OAP_STREAM_METER,
	OAP_STREAM_COUNT,
};

enum oap_drop_reason {
	OAP_DROP_QUEUE_FULL,   /* evicted as the oldest entry of a full queue */
	OAP_DROP_SEND_FAILED,  /* taken from the queue, the write failed */
	OAP_DROP_UNCONFIRMED,  /* written, but the call failed before status OK */
	OAP_DROP_TOO_LARGE,    /* bigger than the whole queue byte bound */
	OAP_DROP_SHUTDOWN,     /* still queued when the sender stopped */
	OAP_DROP_REASON_COUNT,
};

#define OAP_ADDRESS_LEN 256
#define OAP_PATH_LEN 4096
#define OAP_TOKEN_LEN 256
#define OAP_NAME_LEN 256
#define OAP_ERROR_LEN 256
#define OAP_CONFIG_ERROR_LEN 512

struct oap_config {
	char address[OAP_ADDRESS_LEN];       /* "host:port" or "[v6]:port"; "" = OAP off */
	unsigned int mode;                   /* enum oap_mode */
	bool tls;                            /* TLS to OAP; off = plaintext */
	char tls_ca[OAP_PATH_LEN];           /* PEM CA file; "" = gRPC's default roots */
	char tls_cert[OAP_PATH_LEN];         /* PEM client certificate; with tls_key */
	char tls_key[OAP_PATH_LEN];          /* PEM client key; with tls_cert */
	char tls_server_name[OAP_NAME_LEN];  /* name checked in OAP's certificate; "" = host */
	char auth_token[OAP_TOKEN_LEN];      /* `authentication` header; "" = none */
	char cluster_name[OAP_NAME_LEN];     /* node info clusterName, name prefix */
	char node_name[OAP_NAME_LEN];        /* node info name; "" = hostname */
	unsigned int queue_max_messages;     /* per stream */
	unsigned int queue_max_kib;          /* per stream, encoded bytes */
	unsigned int batch_max_messages;     /* written back to back per wakeup */
	unsigned int stream_rotate_s;        /* close and reopen a call after this */
	unsigned int backoff_initial_ms;     /* first wait after a failed call */
	unsigned int backoff_max_ms;         /* cap of the doubling wait */
	unsigned int keepalive_s;            /* HTTP/2 ping period, >= 300 */
	unsigned int send_timeout_s;         /* one write stuck longer fails the call */
};

/* The documented defaults: OAP off (empty address), mode both, no TLS. */
void oap_config_set_defaults(struct oap_config *cfg);

/*
 * Set one `oap_*` key from its text. 0, -ENOENT for a key that is not an
 * OAP key (so a caller can try its other tables), -EINVAL/-ERANGE for a bad
 * value, with a message naming the key and the allowed values in `err`.
 */
int oap_config_set(struct oap_config *cfg, const char *key, const char *value,
		   char *err, size_t err_len);

/*
 * Checks across keys, after all are set (TLS files without oap_tls, a
 * certificate without its key, backoff_initial_ms > backoff_max_ms,
 * unreadable files). 0 or -EINVAL with a message in `err`.
 */
int oap_config_check(const struct oap_config *cfg, char *err, size_t err_len);

/* The index-th key name, NULL past the last: for --help and documentation. */
const char *oap_config_key_name(size_t index);

bool oap_mode_sends_meters(unsigned int mode);
bool oap_mode_sends_access_logs(unsigned int mode);
/* Per-syscall read/write kernel logs with L2-L4 metrics: compatible mode only. */
bool oap_mode_sends_syscall_logs(unsigned int mode);
const char *oap_mode_name(unsigned int mode);
const char *oap_stream_name(enum oap_stream stream);
const char *oap_drop_reason_name(enum oap_drop_reason reason);

/* A point-in-time copy of one stream's counters. */
struct oap_stream_stats {
	uint64_t enqueued;                   /* accepted by an enqueue call */
	uint64_t sent;                       /* written into a call */
	uint64_t delivered;                  /* on a call that ended with status OK */
	uint64_t dropped[OAP_DROP_REASON_COUNT];
	uint64_t calls_started;
	uint64_t calls_ok;                   /* ended with status OK */
	uint64_t calls_failed;
	uint64_t reconnects;                 /* calls started after a failed one */
	uint64_t rotations;                  /* calls closed because they were old */
	uint64_t node_info_sent;             /* access-log stream only */
	uint64_t auth_failures;              /* UNAUTHENTICATED or PERMISSION_DENIED */
	uint64_t queue_depth;                /* entries waiting */
	uint64_t queue_bytes;                /* their encoded size */
	uint64_t queue_depth_max;            /* high-water marks since start */
	uint64_t queue_bytes_max;
	uint64_t in_flight;                  /* sent on the current call, not yet confirmed */
	uint64_t backoff_ms;                 /* current wait before the next call */
	int last_status;                     /* gRPC status code of the last failed call, 0 */
	bool connected;                      /* a call is open and its writes succeed */
	char last_error[OAP_ERROR_LEN];      /* "" until something fails */
};

struct oap_sender;

/*
 * A stopped sender for `cfg` (copied). Nothing connects until
 * oap_sender_start. -EINVAL when cfg->address is empty, -ENOMEM, or -EIO when
 * the TLS files cannot be read.
 */
int oap_sender_create(const struct oap_config *cfg, struct oap_sender **ret_sender);

/* The sender's copy of its configuration. */
const struct oap_config *oap_sender_config(const struct oap_sender *sender);

/*
 * The node info sent first on every access-log call (copied, encoded now).
 * May be called again at any time; new calls use the latest.
 */
int oap_sender_set_node_info(struct oap_sender *sender,
			     const Skywalking__V3__EBPFAccessLogNodeInfo *node);

/* Start the sender threads of the streams the mode enables. */
int oap_sender_start(struct oap_sender *sender);

/*
 * Queue one message: encoded now, never blocks on the network. When the queue
 * is full the oldest entry is dropped (OAP_DROP_QUEUE_FULL) to make room.
 * 0, -EOPNOTSUPP when the mode disables the stream, -E2BIG when the message
 * alone exceeds the byte bound (counted as OAP_DROP_TOO_LARGE), -ENOMEM.
 */
int oap_sender_enqueue_access_log(struct oap_sender *sender,
				  const Skywalking__V3__EBPFAccessLogMessage *msg);
int oap_sender_enqueue_meters(struct oap_sender *sender,
			      const Skywalking__V3__MeterDataCollection *collection);

/* Queue an already encoded message of `stream` (takes a copy). */
int oap_sender_enqueue_encoded(struct oap_sender *sender, enum oap_stream stream,
			       const uint8_t *data, size_t len);

/* Copy one stream's counters. */
int oap_sender_stats(struct oap_sender *sender, enum oap_stream stream,
		     struct oap_stream_stats *ret_stats);

/*
 * Stop: let the threads write what is queued for up to flush_timeout_ms, close
 * the calls and wait for OAP's answer within the same budget, then cancel what
 * remains (queued entries count as OAP_DROP_SHUTDOWN, unconfirmed ones as
 * OAP_DROP_UNCONFIRMED). Counters stay readable until oap_sender_free.
 */
int oap_sender_stop(struct oap_sender *sender, unsigned int flush_timeout_ms);

/* Stops if needed, then frees. NULL-safe. */
void oap_sender_free(struct oap_sender *sender);

/*
 * The node info from this host: name (cfg->node_name or the hostname), every
 * network interface with its index and MTU, the boot time as the wall-clock
 * time of CLOCK_MONOTONIC's zero (the clock of bpf_ktime_get_ns, which the
 * access-log offsets use), cfg->cluster_name, and the namespaces OAP should
 * ignore (NULL-terminated, may be NULL). Then as oap_sender_set_node_info.
 */
int oap_sender_set_node_info_from_host(struct oap_sender *sender,
				       const char *const *exclude_namespaces);

/*
 * One interval's meters, built up and then queued as MeterDataCollections
 * (split to stay under OAP_METER_COLLECTION_MAX_BYTES each). Enforces OAP's
 * rules (reference/oap-meter-rules.md) where they are cheapest to enforce:
 * names and label names [a-zA-Z_][a-zA-Z0-9_]*, no label named `service` or
 * `instance`, no `le` on a histogram, no label name twice, integer
 * histogram lower bounds in increasing order, a service, an instance and an
 * epoch-millisecond timestamp on every collection. A meter that breaks one is
 * refused with -EINVAL and nothing else is lost.
 */
#define OAP_METER_COLLECTION_MAX_BYTES (1024 * 1024)

struct oap_label {
	const char *name;
	const char *value;
};

struct oap_meter_batch;

/* service/instance: MeterData.service/serviceInstance; timestamp_ms > 0. */
int oap_meter_batch_new(const char *service, const char *instance, int64_t timestamp_ms,
			struct oap_meter_batch **ret_batch);
/* A single value (a per-interval delta, not a running total). */
int oap_meter_batch_add_value(struct oap_meter_batch *batch, const char *name,
			      const struct oap_label *labels, size_t n_labels, double value);
/* Buckets by lower bound with their own (not cumulative) counts. */
int oap_meter_batch_add_histogram(struct oap_meter_batch *batch, const char *name,
				  const struct oap_label *labels, size_t n_labels,
				  const int64_t *lower_bounds, const uint64_t *counts,
				  size_t n_buckets);
size_t oap_meter_batch_count(const struct oap_meter_batch *batch);
/* Queue every meter of the batch (the batch stays the caller's to free). */
int oap_sender_enqueue_meter_batch(struct oap_sender *sender, const struct oap_meter_batch *batch);
void oap_meter_batch_free(struct oap_meter_batch *batch);

/*
 * Write `msg` as one JSON object in the protobuf JSON mapping with the .proto
 * field names (int64 as strings, enums by name, default scalars omitted): what
 * the fake OAP records and the Python decoder prints, for comparisons and
 * debugging. 0 or -EIO.
 */
int oap_message_write_json(FILE *out, const ProtobufCMessage *msg);

#endif
