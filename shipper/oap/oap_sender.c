// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The OAP sender (see oap.h): per stream one thread, one completion queue,
 * at most one call at a time, fed by a bounded drop-oldest queue.
 *
 * A call's life, as the stream thread drives it:
 *   open     create the call; start SEND_INITIAL_METADATA (with the token),
 *            RECV_STATUS_ON_CLIENT at once (so a refusal or a dead peer is
 *            seen while writing, not at the end) and RECV_INITIAL_METADATA +
 *            RECV_MESSAGE for OAP's single answer; the access-log stream
 *            writes the node info first
 *   write    one queue entry per SEND_MESSAGE; while more are queued, up to
 *            batch_max_messages go back to back with GRPC_WRITE_BUFFER_HINT
 *   rotate   after stream_rotate_s: SEND_CLOSE_FROM_CLIENT, then status OK
 *            confirms every message of the call (delivered)
 *   fail     any other status: the call's unconfirmed messages are dropped
 *            (never re-sent: at most once), the next call waits a backoff
 *            that doubles up to backoff_max_ms
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <grpc/byte_buffer.h>
#include <grpc/grpc.h>
#include <grpc/grpc_security.h>
#include <grpc/slice.h>
#include <grpc/support/alloc.h>
#include <grpc/support/log.h>
#include <grpc/support/time.h>

#include "log.h"
#include "oap.h"
#include "oap_queue.h"
#include "pb_pack.h"

/* Completion-queue tags: one call per stream at a time, so a kind suffices. */
enum call_tag {
	TAG_START = 1,    /* SEND_INITIAL_METADATA */
	TAG_STATUS,       /* RECV_STATUS_ON_CLIENT */
	TAG_HEADERS,      /* RECV_INITIAL_METADATA */
	TAG_RECV,         /* RECV_MESSAGE: OAP's one answer, at the end */
	TAG_SEND,         /* SEND_MESSAGE */
	TAG_CLOSE,        /* SEND_CLOSE_FROM_CLIENT */
};

#define TAG_BIT(tag) (1u << (tag))
/* How often an idle thread looks at its queue, its call and the stop flag. */
#define IDLE_POLL_MS 50
/*
 * A new call writes no queued message until OAP had this long to refuse it
 * (a wrong token, UNAVAILABLE: both come back at once), or until its headers
 * arrive. Java servers such as OAP send headers only with the answer, so the
 * wait is what keeps a refused call from taking queued messages with it.
 */
#define CALL_PROBATION_MS 250
/* A call that has written successfully this long proves OAP is back. */
#define BACKOFF_RESET_AFTER_MS 10000

struct oap_call {
	grpc_call *call;
	unsigned int pending;         /* TAG_BITs of batches not yet completed */
	bool status_received;
	bool headers_received;
	bool send_done, send_ok;
	bool close_sent;
	grpc_status_code status;
	grpc_slice status_details;
	grpc_metadata_array initial_metadata, trailing_metadata;
	grpc_byte_buffer *response;
	uint64_t opened_ms;
	uint64_t last_send_ok_ms;
	uint64_t in_flight;           /* written, not yet confirmed */
};

struct oap_stream_ctx {
	struct oap_sender *sender;
	enum oap_stream kind;
	const char *method;
	bool enabled;
	pthread_t thread;
	bool thread_started;

	pthread_mutex_t lock;         /* queue, stats, waiting_for_data */
	pthread_cond_t wake;
	bool waiting_for_data;        /* the thread sleeps until an enqueue */
	struct oap_queue queue;
	struct oap_stream_stats stats;

	/* Thread only. */
	grpc_channel *channel;        /* own connection per stream; NULL after a failure */
	grpc_completion_queue *cq;
	struct oap_call call;
	bool call_open;
	bool last_call_failed;
	bool reported_down;           /* the failure is logged; log the recovery */
	uint64_t backoff_ms;
	uint64_t next_call_ms;        /* not before: backoff */
};

struct oap_sender {
	struct oap_config cfg;
	char *tls_ca_pem, *tls_cert_pem, *tls_key_pem;

	pthread_mutex_t node_lock;
	uint8_t *node_info;           /* encoded EBPFAccessLogMessage{node} */
	size_t node_info_len;

	atomic_bool stopping;
	uint64_t stop_deadline_ms;
	bool started, stopped;
	struct oap_stream_ctx streams[OAP_STREAM_COUNT];
};

static const char *const stream_methods[OAP_STREAM_COUNT] = {
	[OAP_STREAM_ACCESS_LOG] = "/skywalking.v3.EBPFAccessLogService/collect",
	[OAP_STREAM_METER] = "/skywalking.v3.MeterReportService/collectBatch",
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static gpr_timespec deadline_in_ms(uint64_t ms)
{
	return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
			    gpr_time_from_millis((int64_t)ms, GPR_TIMESPAN));
}

static const char *status_name(grpc_status_code code)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED",
		"NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED",
		"FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED",
		"INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED",
	};

	return (unsigned int)code < sizeof(names) / sizeof(names[0]) ? names[code] : "UNKNOWN";
}

/* ---- counters (under the stream lock) ---- */

static void stats_add(struct oap_stream_ctx *ctx, uint64_t *counter, uint64_t delta)
{
	pthread_mutex_lock(&ctx->lock);
	*counter += delta;
	pthread_mutex_unlock(&ctx->lock);
}

static void stats_drop(struct oap_stream_ctx *ctx, enum oap_drop_reason reason, uint64_t count)
{
	stats_add(ctx, &ctx->stats.dropped[reason], count);
}

static void stats_set_error(struct oap_stream_ctx *ctx, grpc_status_code code, const char *text)
{
	pthread_mutex_lock(&ctx->lock);
	ctx->stats.last_status = code;
	snprintf(ctx->stats.last_error, sizeof(ctx->stats.last_error), "%s", text);
	pthread_mutex_unlock(&ctx->lock);
}

/* ---- files and credentials ---- */

static int read_pem(const char *path, char **ret_text)
{
	FILE *file;
	char *text = NULL;
	long size;
	int ret = 0;

	*ret_text = NULL;
	if (!path[0])
		return 0;
	file = fopen(path, "re");
	if (!file)
		return -errno;
	if (fseek(file, 0, SEEK_END) || (size = ftell(file)) < 0 || fseek(file, 0, SEEK_SET)) {
		ret = -EIO;
		goto out;
	}
	text = calloc(1, size + 1);
	if (!text) {
		ret = -ENOMEM;
		goto out;
	}
	if (fread(text, 1, size, file) != (size_t)size) {
		free(text);
		text = NULL;
		ret = -EIO;
		goto out;
	}
	*ret_text = text;
out:
	fclose(file);
	return ret;
}

static grpc_channel_credentials *channel_credentials(struct oap_sender *sender)
{
	grpc_ssl_pem_key_cert_pair pair = {
		.private_key = sender->tls_key_pem,
		.cert_chain = sender->tls_cert_pem,
	};

	if (!sender->cfg.tls)
		return grpc_insecure_credentials_create();
	return grpc_ssl_credentials_create(sender->tls_ca_pem,
					   sender->tls_cert_pem ? &pair : NULL, NULL, NULL);
}

static grpc_arg int_arg(const char *key, int value)
{
	return (grpc_arg){ .type = GRPC_ARG_INTEGER, .key = (char *)key, .value.integer = value };
}

static grpc_arg string_arg(const char *key, char *value)
{
	return (grpc_arg){ .type = GRPC_ARG_STRING, .key = (char *)key, .value.string = value };
}

/*
 * Each stream has its own channel (its own connection: a slow access-log
 * stream does not hold up the meters), from a local subchannel pool so that
 * dropping it after a failure also drops gRPC's reconnect backoff: the
 * sender's own backoff is the only one, and OAP's return is seen at the next
 * call.
 */
static int channel_create(struct oap_stream_ctx *ctx)
{
	struct oap_sender *sender = ctx->sender;
	const struct oap_config *cfg = &sender->cfg;
	grpc_arg args[8];
	size_t n = 0;
	grpc_channel_args channel_args;
	grpc_channel_credentials *creds;

	/* HTTP/2 pings at most every keepalive_s, and only while a call is open. */
	args[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIME_MS, cfg->keepalive_s * 1000);
	args[n++] = int_arg(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 20000);
	args[n++] = int_arg(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 0);
	args[n++] = int_arg(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
	args[n++] = int_arg(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, cfg->backoff_initial_ms);
	args[n++] = int_arg(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, cfg->backoff_max_ms);
	/* At most once: no transparent re-sends by gRPC. */
	args[n++] = int_arg(GRPC_ARG_ENABLE_RETRIES, 0);
	if (cfg->tls && cfg->tls_server_name[0])
		args[n++] = string_arg(GRPC_SSL_TARGET_NAME_OVERRIDE_ARG,
							   (char *)cfg->tls_server_name);
	channel_args = (grpc_channel_args){ .num_args = n, .args = args };

	creds = channel_credentials(sender);
	if (!creds)
		return -EINVAL;
	ctx->channel = grpc_channel_create(cfg->address, creds, &channel_args);
	grpc_channel_credentials_release(creds);
	return ctx->channel ? 0 : -ENOMEM;
}

static void channel_drop(struct oap_stream_ctx *ctx)
{
	if (ctx->channel)
		grpc_channel_destroy(ctx->channel);
	ctx->channel = NULL;
}

/* ---- one call ---- */

static void call_event(struct oap_stream_ctx *ctx, grpc_event *event)
{
	struct oap_call *call = &ctx->call;
	enum call_tag tag = (enum call_tag)(uintptr_t)event->tag;

	call->pending &= ~TAG_BIT(tag);
	switch (tag) {
	case TAG_STATUS:
		call->status_received = true;
		break;
	case TAG_HEADERS:
		call->headers_received = true;
		break;
	case TAG_SEND:
		call->send_done = true;
		call->send_ok = event->success;
		break;
	default:
		break;
	}
}

/* Wait up to `ms` for one completion; false on timeout. */
static bool call_poll(struct oap_stream_ctx *ctx, uint64_t ms)
{
	grpc_event event = grpc_completion_queue_next(ctx->cq, deadline_in_ms(ms), NULL);

	if (event.type != GRPC_OP_COMPLETE)
		return false;
	call_event(ctx, &event);
	return true;
}

static int call_start_batch(struct oap_stream_ctx *ctx, const grpc_op *ops, size_t count,
			    enum call_tag tag)
{
	grpc_call_error err = grpc_call_start_batch(ctx->call.call, ops, count,
						    (void *)(uintptr_t)tag, NULL);

	if (err != GRPC_CALL_OK)
		return -EIO;
	ctx->call.pending |= TAG_BIT(tag);
	return 0;
}

static int call_start_ops(struct oap_stream_ctx *ctx)
{
	struct oap_call *call = &ctx->call;
	const char *token = ctx->sender->cfg.auth_token;
	grpc_metadata auth = {
		.key = grpc_slice_from_static_string("authentication"),
		.value = grpc_slice_from_static_string(token),
	};
	grpc_op start = { .op = GRPC_OP_SEND_INITIAL_METADATA };
	grpc_op status = { .op = GRPC_OP_RECV_STATUS_ON_CLIENT };
	grpc_op headers = { .op = GRPC_OP_RECV_INITIAL_METADATA };
	grpc_op recv = { .op = GRPC_OP_RECV_MESSAGE };
	int ret;

	start.data.send_initial_metadata.count = token[0] ? 1 : 0;
	start.data.send_initial_metadata.metadata = &auth;
	status.data.recv_status_on_client.trailing_metadata = &call->trailing_metadata;
	status.data.recv_status_on_client.status = &call->status;
	status.data.recv_status_on_client.status_details = &call->status_details;
	headers.data.recv_initial_metadata.recv_initial_metadata = &call->initial_metadata;
	recv.data.recv_message.recv_message = &call->response;

	ret = call_start_batch(ctx, &start, 1, TAG_START);
	if (!ret)
		ret = call_start_batch(ctx, &status, 1, TAG_STATUS);
	if (!ret)
		ret = call_start_batch(ctx, &headers, 1, TAG_HEADERS);
	if (!ret)
		ret = call_start_batch(ctx, &recv, 1, TAG_RECV);
	return ret;
}

static int call_open(struct oap_stream_ctx *ctx)
{
	struct oap_call *call = &ctx->call;
	grpc_slice method = grpc_slice_from_static_string(ctx->method);

	memset(call, 0, sizeof(*call));
	grpc_metadata_array_init(&call->initial_metadata);
	grpc_metadata_array_init(&call->trailing_metadata);
	call->opened_ms = now_ms();
	if (!ctx->channel && channel_create(ctx))
		return -ENOMEM;
	call->call = grpc_channel_create_call(ctx->channel, NULL, GRPC_PROPAGATE_DEFAULTS,
					      ctx->cq, method, NULL,
					      gpr_inf_future(GPR_CLOCK_REALTIME), NULL);
	if (!call->call)
		return -ENOMEM;
	ctx->call_open = true;
	pthread_mutex_lock(&ctx->lock);
	ctx->stats.calls_started++;
	if (ctx->last_call_failed)
		ctx->stats.reconnects++;
	pthread_mutex_unlock(&ctx->lock);
	if (call_start_ops(ctx)) {
		grpc_call_cancel(call->call, NULL);
		return -EIO;
	}
	return 0;
}

/*
 * Write one message and wait for gRPC to take it. `data` is owned by the
 * slice from here on. Cancels the call when the write outlives
 * send_timeout_s or the stop deadline, so the wait always ends.
 */
static int call_send(struct oap_stream_ctx *ctx, uint8_t *data, size_t len, uint32_t flags)
{
	struct oap_call *call = &ctx->call;
	grpc_slice slice = grpc_slice_new(data, len, free);
	grpc_byte_buffer *buffer = grpc_raw_byte_buffer_create(&slice, 1);
	grpc_op op = { .op = GRPC_OP_SEND_MESSAGE, .flags = flags };
	uint64_t give_up_ms = now_ms() + ctx->sender->cfg.send_timeout_s * 1000ull;
	bool cancelled = false;
	int ret;

	grpc_slice_unref(slice);
	op.data.send_message.send_message = buffer;
	call->send_done = false;
	ret = call_start_batch(ctx, &op, 1, TAG_SEND);
	while (!ret && !call->send_done) {
		call_poll(ctx, IDLE_POLL_MS);
		if (!cancelled && !call->send_done &&
		    (now_ms() > give_up_ms ||
		     (atomic_load(&ctx->sender->stopping) && now_ms() > ctx->sender->stop_deadline_ms))) {
			grpc_call_cancel(call->call, NULL);
			cancelled = true;
		}
	}
	grpc_byte_buffer_destroy(buffer);
	if (ret || !call->send_ok)
		return -EIO;
	call->last_send_ok_ms = now_ms();
	return 0;
}

static void call_describe_failure(struct oap_stream_ctx *ctx)
{
	struct oap_call *call = &ctx->call;
	const struct oap_config *cfg = &ctx->sender->cfg;
	char *details = grpc_slice_to_c_string(call->status_details);
	char text[OAP_ERROR_LEN];
	const char *what = "", *hint = "";
	bool auth = call->status == GRPC_STATUS_UNAUTHENTICATED ||
		    call->status == GRPC_STATUS_PERMISSION_DENIED;
	int len;

	if (auth) {
		what = "authentication rejected by ";
		hint = "; check oap_auth_token";
	} else if (cfg->tls && call->status == GRPC_STATUS_UNAVAILABLE && !call->last_send_ok_ms) {
		hint = "; check oap_tls, oap_tls_ca and OAP's certificate";
	}
	/* The hint goes first when the details are long: it says what to fix. */
	len = snprintf(text, sizeof(text), "%sOAP %s: %s%s: %s", what, cfg->address,
		       status_name(call->status), hint, details ? details : "");
	if (len >= (int)sizeof(text))
		text[sizeof(text) - 1] = '\0'; /* truncated details: the start says enough */
	gpr_free(details);
	stats_set_error(ctx, call->status, text);
	if (auth)
		stats_add(ctx, &ctx->stats.auth_failures, 1);
}

/*
 * Log state changes only: the first failure after a working call (then
 * every retry is in the counters and last_error), and the recovery.
 */
static void stream_report_down(struct oap_stream_ctx *ctx)
{
	char error[OAP_ERROR_LEN];

	if (ctx->reported_down || atomic_load(&ctx->sender->stopping))
		return;
	pthread_mutex_lock(&ctx->lock);
	memcpy(error, ctx->stats.last_error, sizeof(error));
	pthread_mutex_unlock(&ctx->lock);
	log_warn("OAP %s stream down, retrying with backoff up to %u ms: %s",
		 oap_stream_name(ctx->kind), ctx->sender->cfg.backoff_max_ms, error);
	ctx->reported_down = true;
}

static void stream_report_up(struct oap_stream_ctx *ctx)
{
	if (!ctx->reported_down)
		return;
	log_info("OAP %s stream up again at %s", oap_stream_name(ctx->kind), ctx->sender->cfg.address);
	ctx->reported_down = false;
}

/* Cancel if needed and collect every outstanding completion, then free. */
static void call_release(struct oap_stream_ctx *ctx)
{
	struct oap_call *call = &ctx->call;

	if (call->pending)
		grpc_call_cancel(call->call, NULL);
	while (call->pending)
		call_poll(ctx, 1000);
	grpc_call_unref(call->call);
	grpc_metadata_array_destroy(&call->initial_metadata);
	grpc_metadata_array_destroy(&call->trailing_metadata);
	grpc_slice_unref(call->status_details);
	if (call->response)
		grpc_byte_buffer_destroy(call->response);
	memset(call, 0, sizeof(*call));
	ctx->call_open = false;
}

/*
 * The call is over: account its messages by its status, set the backoff for
 * the next one, free it.
 */
static void call_finish(struct oap_stream_ctx *ctx)
{
	struct oap_call *call = &ctx->call;
	const struct oap_config *cfg = &ctx->sender->cfg;
	bool ok;

	if (!call->status_received && call->pending)
		grpc_call_cancel(call->call, NULL);
	while (!call->status_received && (call->pending & TAG_BIT(TAG_STATUS)))
		call_poll(ctx, 1000);
	/* No status op started (gRPC refused the batch): a local failure. */
	if (!call->status_received) {
		call->status = GRPC_STATUS_INTERNAL;
		call->status_details = grpc_slice_from_static_string("could not start the call's operations");
	}
	ok = call->status == GRPC_STATUS_OK;
	pthread_mutex_lock(&ctx->lock);
	if (ok) {
		ctx->stats.delivered += call->in_flight;
		ctx->stats.calls_ok++;
	} else {
		ctx->stats.dropped[OAP_DROP_UNCONFIRMED] += call->in_flight;
		ctx->stats.calls_failed++;
	}
	ctx->stats.in_flight = 0;
	ctx->stats.connected = false;
	pthread_mutex_unlock(&ctx->lock);

	if (!ok) {
		call_describe_failure(ctx);
		stream_report_down(ctx);
	}
	if (ok || (call->last_send_ok_ms && call->last_send_ok_ms - call->opened_ms >= BACKOFF_RESET_AFTER_MS))
		ctx->backoff_ms = cfg->backoff_initial_ms;
	if (!ok) {
		ctx->next_call_ms = now_ms() + ctx->backoff_ms;
		ctx->backoff_ms = ctx->backoff_ms * 2 > cfg->backoff_max_ms ? cfg->backoff_max_ms
									     : ctx->backoff_ms * 2;
	}
	ctx->last_call_failed = !ok;
	pthread_mutex_lock(&ctx->lock);
	ctx->stats.backoff_ms = ok ? 0 : ctx->next_call_ms - now_ms();
	pthread_mutex_unlock(&ctx->lock);
	call_release(ctx);
	/* A connection that is not up is not worth gRPC's own reconnect timer. */
	if (!ok && ctx->channel &&
	    grpc_channel_check_connectivity_state(ctx->channel, 0) != GRPC_CHANNEL_READY)
		channel_drop(ctx);
}

/* Half-close and wait for OAP's status, within `wait_ms`; then finish. */
static void call_close(struct oap_stream_ctx *ctx, uint64_t wait_ms)
{
	struct oap_call *call = &ctx->call;
	grpc_op op = { .op = GRPC_OP_SEND_CLOSE_FROM_CLIENT };
	uint64_t give_up_ms = now_ms() + wait_ms;

	if (!call->status_received && !call_start_batch(ctx, &op, 1, TAG_CLOSE)) {
		while (!call->status_received && now_ms() < give_up_ms)
			call_poll(ctx, IDLE_POLL_MS);
	}
	call_finish(ctx);
}

/* ---- the stream thread ---- */

static int send_node_info(struct oap_stream_ctx *ctx)
{
	struct oap_sender *sender = ctx->sender;
	uint8_t *copy = NULL;
	size_t len = 0;
	int ret;

	pthread_mutex_lock(&sender->node_lock);
	if (sender->node_info) {
		copy = malloc(sender->node_info_len);
		if (copy) {
			memcpy(copy, sender->node_info, sender->node_info_len);
			len = sender->node_info_len;
		}
	}
	pthread_mutex_unlock(&sender->node_lock);
	/* OAP needs the node first: without it, no access-log call is useful. */
	if (!copy)
		return -ENODATA;
	ret = call_send(ctx, copy, len, 0);
	if (!ret)
		stats_add(ctx, &ctx->stats.node_info_sent, 1);
	return ret;
}

static bool node_info_missing(struct oap_stream_ctx *ctx)
{
	bool missing;

	if (ctx->kind != OAP_STREAM_ACCESS_LOG)
		return false;
	pthread_mutex_lock(&ctx->sender->node_lock);
	missing = !ctx->sender->node_info;
	pthread_mutex_unlock(&ctx->sender->node_lock);
	return missing;
}

/* 0 once the new call survived its probation, -ECONNREFUSED if refused. */
static int call_probation(struct oap_stream_ctx *ctx)
{
	struct oap_call *call = &ctx->call;
	uint64_t until_ms = call->opened_ms + CALL_PROBATION_MS;

	for (uint64_t now = now_ms(); !call->status_received && !call->headers_received &&
				      now < until_ms; now = now_ms())
		call_poll(ctx, until_ms - now);
	/* A refusal brings headers and status together: take what is ready. */
	while (!call->status_received && call_poll(ctx, 5))
		;
	return call->status_received ? -ECONNREFUSED : 0;
}

static int stream_open_call(struct oap_stream_ctx *ctx)
{
	int ret;

	/* OAP attributes access logs through the node info: without it, wait. */
	if (node_info_missing(ctx)) {
		stats_set_error(ctx, 0, "no node info set (oap_sender_set_node_info): access logs wait");
		ctx->next_call_ms = now_ms() + 1000;
		return -ENODATA;
	}
	ret = call_open(ctx);
	if (!ret && ctx->kind == OAP_STREAM_ACCESS_LOG)
		ret = send_node_info(ctx);
	if (!ret)
		ret = call_probation(ctx);
	if (ret && ctx->call_open) {
		call_finish(ctx);
	} else if (ret) {
		/* No call at all (no channel, no memory): wait like after a failure. */
		stats_set_error(ctx, GRPC_STATUS_INTERNAL, "could not create a gRPC call to OAP");
		ctx->next_call_ms = now_ms() + ctx->backoff_ms;
	}
	return ret;
}

/*
 * Sleep for `ms` or until a stop; with `until_data`, also until something is
 * queued (the idle wait). A backoff must not end early because the queue
 * holds data: that would spin while OAP is down.
 */
static void stream_wait(struct oap_stream_ctx *ctx, uint64_t ms, bool until_data)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&ctx->lock);
	if ((!until_data || !ctx->queue.count) && !atomic_load(&ctx->sender->stopping)) {
		ctx->waiting_for_data = until_data;
		pthread_cond_timedwait(&ctx->wake, &ctx->lock, &until);
		ctx->waiting_for_data = false;
	}
	pthread_mutex_unlock(&ctx->lock);
}

/* Pop the oldest entry; *ret_more says whether another one follows it. */
static int stream_pop(struct oap_stream_ctx *ctx, struct oap_entry *ret_entry, bool *ret_more)
{
	int ret;

	pthread_mutex_lock(&ctx->lock);
	ret = oap_queue_pop(&ctx->queue, ret_entry);
	*ret_more = ctx->queue.count > 0;
	ctx->stats.queue_depth = ctx->queue.count;
	ctx->stats.queue_bytes = ctx->queue.bytes;
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

/*
 * Write up to batch_max_messages queued entries. Every entry but the last of
 * a run carries GRPC_WRITE_BUFFER_HINT; only this thread pops, so an entry
 * seen behind the current one is still there on the next pop.
 */
static void stream_write_batch(struct oap_stream_ctx *ctx)
{
	unsigned int batch_max = ctx->sender->cfg.batch_max_messages;
	struct oap_entry entry;
	bool more;

	for (unsigned int i = 0; i < batch_max; i++) {
		if (stream_pop(ctx, &entry, &more))
			return;
		more = more && i + 1 < batch_max;
		if (call_send(ctx, entry.data, entry.len, more ? GRPC_WRITE_BUFFER_HINT : 0)) {
			stats_drop(ctx, OAP_DROP_SEND_FAILED, 1);
			call_finish(ctx);
			return;
		}
		ctx->call.in_flight++;
		pthread_mutex_lock(&ctx->lock);
		ctx->stats.sent++;
		ctx->stats.in_flight = ctx->call.in_flight;
		ctx->stats.connected = true;
		pthread_mutex_unlock(&ctx->lock);
		stream_report_up(ctx);
		if (!more)
			return;
	}
}

static bool stream_queue_empty(struct oap_stream_ctx *ctx)
{
	bool empty;

	pthread_mutex_lock(&ctx->lock);
	empty = ctx->queue.count == 0;
	pthread_mutex_unlock(&ctx->lock);
	return empty;
}

static bool stop_expired(struct oap_stream_ctx *ctx)
{
	return atomic_load(&ctx->sender->stopping) && now_ms() >= ctx->sender->stop_deadline_ms;
}

/* One turn of the loop with a call open. */
static void stream_step_open(struct oap_stream_ctx *ctx)
{
	uint64_t age_ms = now_ms() - ctx->call.opened_ms;

	if (ctx->call.status_received) {
		call_finish(ctx);  /* OAP ended the call on its own: an error or a restart */
		return;
	}
	if (age_ms >= ctx->sender->cfg.stream_rotate_s * 1000ull) {
		stats_add(ctx, &ctx->stats.rotations, 1);
		call_close(ctx, ctx->sender->cfg.send_timeout_s * 1000ull);
		return;
	}
	if (stream_queue_empty(ctx)) {
		/* Meters come once an interval: close the call when they are
		 * written, so OAP confirms each interval instead of a call
		 * holding stream_rotate_s worth of them unconfirmed. */
		if (ctx->kind == OAP_STREAM_METER && ctx->call.in_flight) {
			call_close(ctx, ctx->sender->cfg.send_timeout_s * 1000ull);
			return;
		}
		call_poll(ctx, IDLE_POLL_MS);
		return;
	}
	stream_write_batch(ctx);
}

static void stream_shutdown(struct oap_stream_ctx *ctx)
{
	uint64_t left_ms, deadline_ms = ctx->sender->stop_deadline_ms;
	size_t cleared;

	if (ctx->call_open) {
		left_ms = deadline_ms > now_ms() ? deadline_ms - now_ms() : 0;
		call_close(ctx, left_ms);
	}
	pthread_mutex_lock(&ctx->lock);
	cleared = oap_queue_clear(&ctx->queue);
	ctx->stats.dropped[OAP_DROP_SHUTDOWN] += cleared;
	ctx->stats.queue_depth = 0;
	ctx->stats.queue_bytes = 0;
	pthread_mutex_unlock(&ctx->lock);
}

static void *stream_thread(void *arg)
{
	struct oap_stream_ctx *ctx = arg;
	uint64_t now;

	while (true) {
		bool stopping = atomic_load(&ctx->sender->stopping);

		if (stopping && (stream_queue_empty(ctx) || stop_expired(ctx)))
			break;
		if (ctx->call_open) {
			stream_step_open(ctx);
			continue;
		}
		now = now_ms();
		if (now < ctx->next_call_ms) {
			if (stopping && ctx->next_call_ms > ctx->sender->stop_deadline_ms)
				break;  /* the backoff outlasts the stop budget */
			stream_wait(ctx, ctx->next_call_ms - now, false);
			continue;
		}
		/* Calls open lazily: nothing queued, nothing to say to OAP. */
		if (stream_queue_empty(ctx)) {
			stream_wait(ctx, 1000, true);
			continue;
		}
		stream_open_call(ctx);
	}
	stream_shutdown(ctx);
	return NULL;
}

/* ---- public API ---- */

static int stream_init(struct oap_sender *sender, enum oap_stream kind)
{
	struct oap_stream_ctx *ctx = &sender->streams[kind];
	pthread_condattr_t attr;
	int ret;

	ctx->sender = sender;
	ctx->kind = kind;
	ctx->method = stream_methods[kind];
	ctx->enabled = kind == OAP_STREAM_METER ? oap_mode_sends_meters(sender->cfg.mode)
						: oap_mode_sends_access_logs(sender->cfg.mode);
	ctx->backoff_ms = sender->cfg.backoff_initial_ms;
	pthread_mutex_init(&ctx->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&ctx->wake, &attr);
	pthread_condattr_destroy(&attr);
	ret = oap_queue_init(&ctx->queue, sender->cfg.queue_max_messages,
			     (size_t)sender->cfg.queue_max_kib * 1024);
	if (ret)
		return ret;
	ctx->cq = grpc_completion_queue_create_for_next(NULL);
	return ctx->cq ? 0 : -ENOMEM;
}

/*
 * gRPC's own messages (a failed TLS handshake, a refused connection) at
 * debug level: the sender decides what a failure means and reports it once,
 * in the stream's last_error.
 */
static void grpc_log_to_debug(gpr_log_func_args *args)
{
	log_debug("grpc: %s (%s:%d)", args->message, args->file, args->line);
}

int oap_sender_create(const struct oap_config *cfg, struct oap_sender **ret_sender)
{
	struct oap_sender *sender;
	int ret;

	if (!cfg->address[0])
		return -EINVAL;
	sender = calloc(1, sizeof(*sender));
	if (!sender)
		return -ENOMEM;
	sender->cfg = *cfg;
	pthread_mutex_init(&sender->node_lock, NULL);
	gpr_set_log_function(grpc_log_to_debug);
	grpc_init();
	ret = read_pem(cfg->tls_ca, &sender->tls_ca_pem);
	if (!ret)
		ret = read_pem(cfg->tls_cert, &sender->tls_cert_pem);
	if (!ret)
		ret = read_pem(cfg->tls_key, &sender->tls_key_pem);
	if (ret) {
		ret = ret == -ENOMEM ? ret : -EIO;
		goto fail;
	}
	for (int kind = 0; kind < OAP_STREAM_COUNT && !ret; kind++)
		ret = stream_init(sender, kind);
	if (ret)
		goto fail;
	*ret_sender = sender;
	return 0;
fail:
	oap_sender_free(sender);
	return ret;
}

const struct oap_config *oap_sender_config(const struct oap_sender *sender)
{
	return &sender->cfg;
}

int oap_sender_set_node_info(struct oap_sender *sender,
			     const Skywalking__V3__EBPFAccessLogNodeInfo *node)
{
	Skywalking__V3__EBPFAccessLogMessage msg = SKYWALKING__V3__EBPFACCESS_LOG_MESSAGE__INIT;
	size_t len;
	uint8_t *data;

	msg.node = (Skywalking__V3__EBPFAccessLogNodeInfo *)node;
	len = protobuf_c_message_get_packed_size(&msg.base);
	data = malloc(len ? len : 1);
	if (!data)
		return -ENOMEM;
	protobuf_c_message_pack(&msg.base, data);
	pthread_mutex_lock(&sender->node_lock);
	free(sender->node_info);
	sender->node_info = data;
	sender->node_info_len = len;
	pthread_mutex_unlock(&sender->node_lock);
	return 0;
}

int oap_sender_start(struct oap_sender *sender)
{
	int ret;

	if (sender->started)
		return -EALREADY;
	for (int kind = 0; kind < OAP_STREAM_COUNT; kind++) {
		struct oap_stream_ctx *ctx = &sender->streams[kind];

		if (!ctx->enabled)
			continue;
		ret = -pthread_create(&ctx->thread, NULL, stream_thread, ctx);
		if (ret) {
			oap_sender_stop(sender, 0);
			return ret;
		}
		ctx->thread_started = true;
	}
	sender->started = true;
	return 0;
}

/* Queue `data` (malloc'd, ownership moves in, freed on every error). */
static int enqueue_owned(struct oap_stream_ctx *ctx, uint8_t *data, size_t len)
{
	struct oap_entry entry = { .data = data, .len = len };
	int evicted;

	pthread_mutex_lock(&ctx->lock);
	evicted = oap_queue_push(&ctx->queue, entry);
	if (evicted >= 0) {
		ctx->stats.enqueued++;
		ctx->stats.dropped[OAP_DROP_QUEUE_FULL] += evicted;
	} else {
		ctx->stats.dropped[OAP_DROP_TOO_LARGE]++;
	}
	ctx->stats.queue_depth = ctx->queue.count;
	ctx->stats.queue_bytes = ctx->queue.bytes;
	if (ctx->queue.count > ctx->stats.queue_depth_max)
		ctx->stats.queue_depth_max = ctx->queue.count;
	if (ctx->queue.bytes > ctx->stats.queue_bytes_max)
		ctx->stats.queue_bytes_max = ctx->queue.bytes;
	/* Wake the thread only if it waits for data: not in a backoff, and
	 * not per message while it writes. */
	if (ctx->waiting_for_data)
		pthread_cond_signal(&ctx->wake);
	pthread_mutex_unlock(&ctx->lock);
	if (evicted < 0) {
		free(data);
		return -E2BIG;
	}
	return 0;
}

static struct oap_stream_ctx *enabled_stream(struct oap_sender *sender, enum oap_stream stream,
					     int *ret_err)
{
	if ((unsigned int)stream >= OAP_STREAM_COUNT) {
		*ret_err = -EINVAL;
		return NULL;
	}
	if (!sender->streams[stream].enabled) {
		*ret_err = -EOPNOTSUPP;
		return NULL;
	}
	return &sender->streams[stream];
}

int oap_sender_enqueue_encoded(struct oap_sender *sender, enum oap_stream stream,
			       const uint8_t *data, size_t len)
{
	int err = 0;
	struct oap_stream_ctx *ctx = enabled_stream(sender, stream, &err);
	uint8_t *copy;

	if (!ctx)
		return err;
	copy = malloc(len ? len : 1);
	if (!copy)
		return -ENOMEM;
	memcpy(copy, data, len);
	return enqueue_owned(ctx, copy, len);
}

/* Encoded in one pass (pb_pack.h) into the buffer the queue keeps. */
static int enqueue_message(struct oap_sender *sender, enum oap_stream stream,
			   const ProtobufCMessage *msg)
{
	int err = 0;
	struct oap_stream_ctx *ctx = enabled_stream(sender, stream, &err);
	size_t len;
	uint8_t *data;

	if (!ctx)
		return err;
	err = pb_pack_alloc(msg, &data, &len);
	return err ?: enqueue_owned(ctx, data, len);
}

int oap_sender_enqueue_access_log(struct oap_sender *sender,
				  const Skywalking__V3__EBPFAccessLogMessage *msg)
{
	return enqueue_message(sender, OAP_STREAM_ACCESS_LOG, &msg->base);
}

int oap_sender_enqueue_meters(struct oap_sender *sender,
			      const Skywalking__V3__MeterDataCollection *collection)
{
	return enqueue_message(sender, OAP_STREAM_METER, &collection->base);
}

int oap_sender_stats(struct oap_sender *sender, enum oap_stream stream,
		     struct oap_stream_stats *ret_stats)
{
	struct oap_stream_ctx *ctx;

	if ((unsigned int)stream >= OAP_STREAM_COUNT)
		return -EINVAL;
	ctx = &sender->streams[stream];
	pthread_mutex_lock(&ctx->lock);
	*ret_stats = ctx->stats;
	pthread_mutex_unlock(&ctx->lock);
	return 0;
}

int oap_sender_stop(struct oap_sender *sender, unsigned int flush_timeout_ms)
{
	if (sender->stopped)
		return 0;
	sender->stop_deadline_ms = now_ms() + flush_timeout_ms;
	atomic_store(&sender->stopping, true);
	for (int kind = 0; kind < OAP_STREAM_COUNT; kind++) {
		struct oap_stream_ctx *ctx = &sender->streams[kind];

		if (!ctx->thread_started)
			continue;
		pthread_mutex_lock(&ctx->lock);
		pthread_cond_broadcast(&ctx->wake);
		pthread_mutex_unlock(&ctx->lock);
		pthread_join(ctx->thread, NULL);
		ctx->thread_started = false;
	}
	sender->stopped = true;
	return 0;
}

static void stream_free(struct oap_stream_ctx *ctx)
{
	channel_drop(ctx);
	if (ctx->cq) {
		grpc_completion_queue_shutdown(ctx->cq);
		while (grpc_completion_queue_next(ctx->cq, gpr_inf_future(GPR_CLOCK_REALTIME),
						  NULL).type != GRPC_QUEUE_SHUTDOWN)
			;
		grpc_completion_queue_destroy(ctx->cq);
	}
	oap_queue_free(&ctx->queue);
	pthread_cond_destroy(&ctx->wake);
	pthread_mutex_destroy(&ctx->lock);
}

void oap_sender_free(struct oap_sender *sender)
{
	if (!sender)
		return;
	if (sender->started)
		oap_sender_stop(sender, 0);
	for (int kind = 0; kind < OAP_STREAM_COUNT; kind++)
		if (sender->streams[kind].sender)
			stream_free(&sender->streams[kind]);
	free(sender->tls_ca_pem);
	free(sender->tls_cert_pem);
	free(sender->tls_key_pem);
	free(sender->node_info);
	pthread_mutex_destroy(&sender->node_lock);
	free(sender);
	grpc_shutdown();
}
