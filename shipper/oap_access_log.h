/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * Connection events as SkyWalking access logs: one EBPFAccessLogMessage per
 * connect, accept or close, carrying its connection (so every run of
 * messages of one connection starts with it) and one kernel log, timed in
 * nanoseconds since boot as OAP expects.
 */
#ifndef KACCESS_OAP_ACCESS_LOG_H
#define KACCESS_OAP_ACCESS_LOG_H

#include "http_records.h"
#include "k8s/k8s.h"
#include "kaccess.h"
#include "maps_read.h"
#include "oap/oap.h"

/*
 * Queue the access log of `event`. `local` is the pod of the event's
 * cgroup; `peer` its peer, or NULL when the peer is no pod (then its
 * address is sent and OAP resolves it as it does). 0, -EINVAL for an event
 * that is not a connection event, or the sender's error.
 */
int access_log_send_event(struct oap_sender *sender, const struct kaccess_conn_event *event,
			  const struct k8s_identity *local, const struct k8s_identity *peer);

/*
 * Queue the HTTP protocol log of one access-log record: a message that
 * carries its connection (protocol HTTP_1 or HTTP_2, so it is a run of its
 * own) and protocolLog.http with the exchange's times (offsets from boot),
 * request (method, path, host, sizes, trace context from sw8, b3 or
 * traceparent) and response. `with_calls`: the exchange's read and write
 * calls go with it as kernel logs (in further messages of the run past
 * 128), without L2-L4 metrics, which the kernel keeps per row, not per
 * exchange. Off in the compatible mode, whose rebuilt per-row logs carry
 * every call already (OAP counts each kernel log as a call).
 * 0, -ENOMEM or the sender's error.
 */
int access_log_send_http(struct oap_sender *sender, const struct http_record *record,
			 const struct k8s_identity *local, const struct k8s_identity *peer,
			 bool with_calls);

/*
 * access_log_send_http() writes an exchange's message directly from the
 * record (when its calls fit one message, as nearly all do) rather than
 * through protobuf-c's structs; the two give the same bytes.
 */
enum access_log_encoder {
	ACCESS_LOG_ENCODE_DIRECT,   /* what access_log_send_http() sends */
	ACCESS_LOG_ENCODE_STRUCTS,  /* protobuf-c's structs, packed by protobuf-c */
};

/*
 * The exchange's (first) message, as access_log_send_http() would queue it,
 * into `buf`: for tests that compare the encoders and tools that measure
 * them. Its length, -ENOBUFS when `size` is too small, -EOPNOTSUPP for
 * the direct encoder when the calls take more than one message, or -ENOMEM.
 */
long access_log_encode_http(const struct http_record *record, const struct k8s_identity *local,
			    const struct k8s_identity *peer, bool with_calls,
			    enum access_log_encoder encoder, uint8_t *buf, size_t size);

/* Where a row's kernel logs stand: its run (0 reads, 1 writes, 2 done) and the log in it. */
struct syscall_log_position {
	unsigned int run;
	uint64_t index;
};

/* Asked before each message: false stops the row there, to go on later. */
struct syscall_log_pace {
	bool (*has_room)(void *ctx);
	void *ctx;
};

/*
 * Compatible mode: the row's reads and writes as one kernel log each, with
 * durations that add up to the row's sums exactly (OAP then computes the
 * same numbers), timed within the bucket [bucket_start_ns, + bucket_ns) of
 * CLOCK_MONOTONIC. The L2-L4 sums of `l24_measured` are spread over the
 * logs the same way. A row of thousands of calls is hundreds of messages:
 * they are queued from `*at` (zeroed for a new row) while `pace` (NULL:
 * always) has room; -EAGAIN when it had none, `*at` then saying where to
 * go on. 0 once the row is queued, or the sender's error.
 */
int access_log_send_row_syscalls(struct oap_sender *sender, const struct agg_row *row,
				 const struct k8s_identity *local, const struct k8s_identity *peer,
				 uint64_t bucket_start_ns, uint64_t bucket_ns, unsigned int l24_measured,
				 struct syscall_log_position *at, const struct syscall_log_pace *pace);

#endif
