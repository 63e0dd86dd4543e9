// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The OAP sender (see oap.h): per stream one thread and one connection of
 * its own (grpc_conn.h), at most one call at a time, fed by a bounded
 * drop-oldest queue.
 *
 * A call's life, as the stream thread drives it:
 *   open     connect if there is no usable connection; start the call with
 *            the token; the access-log stream writes the node info first;
 *            then a probation (below) for OAP to refuse it
 *   write    the oldest queue chunk (up to batch_max_messages messages,
 *            framed when queued) into the call's buffer in one copy,
 *            then one pump hands them to the socket together; a
 *            call with nothing queued sleeps IDLE_POLL_MS on the clock
 *            (not on the socket) and pumps, so messages queued one at a
 *            time leave together, at most 20 writes a second
 *   rotate   after stream_rotate_s: half-close, then status OK confirms
 *            every message of the call (delivered)
 *   fail     any other status: the call's unconfirmed messages are dropped
 *            (never re-sent: at most once), the next call waits a backoff
 *            that doubles up to backoff_max_ms
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "grpc_conn.h"
#include "log.h"
#include "oap.h"
#include "oap_queue.h"
#include "pb_pack.h"

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
/* Connecting and the TLS handshake together (gRPC's own minimum). */
#define CONNECT_TIMEOUT_MS 20000
/* A keepalive PING's answer: without it the connection is dead. */
#define KEEPALIVE_TIMEOUT_MS 20000
/*
 * Written to the call but not yet taken by the socket: above this the
 * writer waits for OAP, so a slow OAP holds messages in the queue, where
 * its bound and drop-oldest decide, not here.
 */
#define CALL_UNSENT_MAX_BYTES (256u << 10)

struct oap_call {
	bool open;
	bool ended_here;              /* before OAP had it: `code` and `details` say why */
	enum grpc_code code;          /* how it ended, once over */
	char details[GRPC_DETAILS_LEN];
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
	struct grpc_conn *conn;       /* own connection per stream; NULL after a failure */
	struct oap_call call;
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

static bool stop_expired(struct oap_stream_ctx *ctx)
{
	return atomic_load(&ctx->sender->stopping) && clock_monotonic_ms() >= ctx->sender->stop_deadline_ms;
}

/* ---- counters (under the stream lock) ---- */

static void stats_add(struct oap_stream_ctx *ctx, uint64_t *counter, uint64_t delta)
{
	pthread_mutex_lock(&ctx->lock);
	*counter += delta;
	pthread_mutex_unlock(&ctx->lock);
}

static void stats_set_error(struct oap_stream_ctx *ctx, int code, const char *text)
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

/* ---- the connection ---- */

static bool connect_gives_up(void *arg)
{
	return stop_expired(arg);
}

static int conn_open(struct oap_stream_ctx *ctx, char *why, size_t why_len)
{
	struct oap_sender *sender = ctx->sender;
	const struct oap_config *cfg = &sender->cfg;
	struct grpc_conn_options opts = {
		.address = cfg->address,
		.tls = cfg->tls,
		.ca_pem = sender->tls_ca_pem,
		.cert_pem = sender->tls_cert_pem,
		.key_pem = sender->tls_key_pem,
		.server_name = cfg->tls_server_name,
		.keepalive_s = cfg->keepalive_s,
		.keepalive_timeout_ms = KEEPALIVE_TIMEOUT_MS,
		.connect_timeout_ms = CONNECT_TIMEOUT_MS,
		.give_up = connect_gives_up,
		.give_up_arg = ctx,
	};

	return grpc_conn_open(&opts, &ctx->conn, why, why_len);
}

static void conn_drop(struct oap_stream_ctx *ctx)
{
	grpc_conn_free(ctx->conn);
	ctx->conn = NULL;
}

/*
 * The connection kept from the last call, if it still is one: a server that
 * closed it or said GOAWAY while no call was open is seen here, not by a
 * call that would fail on it.
 */
static void conn_check(struct oap_stream_ctx *ctx)
{
	if (ctx->conn && (grpc_conn_pump(ctx->conn, 0) || !grpc_conn_reusable(ctx->conn)))
		conn_drop(ctx);
}

/* ---- one call ---- */

/* The call ended before it reached OAP (no connection, no stream). */
static void call_end_here(struct oap_stream_ctx *ctx, enum grpc_code code, const char *details)
{
	struct oap_call *call = &ctx->call;

	call->ended_here = true;
	call->code = code;
	snprintf(call->details, sizeof(call->details), "%s", details);
}

static bool call_done(struct oap_stream_ctx *ctx)
{
	return ctx->call.ended_here || !ctx->conn || grpc_call_state(ctx->conn)->done;
}

static bool call_has_headers(struct oap_stream_ctx *ctx)
{
	return ctx->conn && grpc_call_state(ctx->conn)->headers;
}

/* Move bytes both ways, waiting up to `ms` for the socket. */
static void call_pump(struct oap_stream_ctx *ctx, uint64_t ms)
{
	if (ctx->conn)
		grpc_conn_pump(ctx->conn, (unsigned int)ms);
}

static int call_open(struct oap_stream_ctx *ctx)
{
	struct oap_call *call = &ctx->call;
	char why[GRPC_DETAILS_LEN];
	int ret;

	memset(call, 0, sizeof(*call));
	call->open = true;
	call->opened_ms = clock_monotonic_ms();
	pthread_mutex_lock(&ctx->lock);
	ctx->stats.calls_started++;
	if (ctx->last_call_failed)
		ctx->stats.reconnects++;
	pthread_mutex_unlock(&ctx->lock);
	conn_check(ctx);
	if (!ctx->conn && conn_open(ctx, why, sizeof(why))) {
		call_end_here(ctx, GRPC_CODE_UNAVAILABLE, why);
		return -ECONNREFUSED;
	}
	ret = grpc_call_start(ctx->conn, ctx->method, ctx->sender->cfg.auth_token);
	if (ret) {
		call_end_here(ctx, GRPC_CODE_INTERNAL, "could not start a call on the connection");
		return ret;
	}
	return 0;
}

/*
 * After a write into the call: while more than CALL_UNSENT_MAX_BYTES of it
 * waits for OAP (its flow control window, the socket), wait with it, and
 * cancel the call when that outlives send_timeout_s or the stop deadline,
 * so the wait always ends. 0, or -EIO when the call is over. The clock is
 * read once per write (a chunk of up to batch_max_messages), not per
 * message: two reads per message were 4% of the shipper's CPU at 10,000
 * messages a second.
 */
static int call_wait_unsent(struct oap_stream_ctx *ctx)
{
	uint64_t now_ms = clock_monotonic_ms();
	uint64_t give_up_ms = now_ms + ctx->sender->cfg.send_timeout_s * 1000ull;

	while (!call_done(ctx) && grpc_call_unsent_bytes(ctx->conn) > CALL_UNSENT_MAX_BYTES) {
		call_pump(ctx, IDLE_POLL_MS);
		now_ms = clock_monotonic_ms();
		if (now_ms > give_up_ms)
			grpc_call_cancel(ctx->conn, "OAP took nothing for oap_send_timeout_s");
		else if (stop_expired(ctx))
			grpc_call_cancel(ctx->conn, "the stop's flush budget ran out");
	}
	if (call_done(ctx))
		return -EIO;
	ctx->call.last_send_ok_ms = now_ms;
	return 0;
}

/* One message, framed here (the node info). 0 or -EIO. */
static int call_send(struct oap_stream_ctx *ctx, const uint8_t *data, size_t len)
{
	if (call_done(ctx) || grpc_call_write(ctx->conn, data, len))
		return -EIO;
	return call_wait_unsent(ctx);
}

/* A queue chunk's messages, framed already, in one write. 0 or -EIO. */
static int call_send_chunk(struct oap_stream_ctx *ctx, const struct oap_chunk *chunk)
{
	if (call_done(ctx) ||
	    grpc_call_write_framed(ctx->conn, chunk->data + chunk->start, chunk->used - chunk->start))
		return -EIO;
	return call_wait_unsent(ctx);
}

static void call_describe_failure(struct oap_stream_ctx *ctx)
{
	struct oap_call *call = &ctx->call;
	const struct oap_config *cfg = &ctx->sender->cfg;
	char text[OAP_ERROR_LEN];
	const char *what = "", *hint = "";
	bool auth = call->code == GRPC_CODE_UNAUTHENTICATED ||
		    call->code == GRPC_CODE_PERMISSION_DENIED;
	int len;

	if (auth) {
		what = "authentication rejected by ";
		hint = "; check oap_auth_token";
	} else if (cfg->tls && call->code == GRPC_CODE_UNAVAILABLE && !call->last_send_ok_ms) {
		hint = "; check oap_tls, oap_tls_ca and OAP's certificate";
	}
	/* The hint goes first when the details are long: it says what to fix. */
	len = snprintf(text, sizeof(text), "%sOAP %s: %s%s: %s", what, cfg->address,
		       grpc_code_name(call->code), hint, call->details);
	if (len >= (int)sizeof(text))
		text[sizeof(text) - 1] = '\0'; /* truncated details: the start says enough */
	stats_set_error(ctx, call->code, text);
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

/* The call's end as OAP (or the connection) said it, into the call. */
static void call_take_outcome(struct oap_stream_ctx *ctx)
{
	struct oap_call *call = &ctx->call;
	const struct grpc_call_state *state;

	if (call->ended_here)
		return;
	if (!ctx->conn) {
		call_end_here(ctx, GRPC_CODE_UNAVAILABLE, "the connection to OAP is gone");
		return;
	}
	if (!call_done(ctx))
		grpc_call_cancel(ctx->conn, "ended by kaccess before OAP answered");
	state = grpc_call_state(ctx->conn);
	call->code = state->code;
	snprintf(call->details, sizeof(call->details), "%s", state->details);
}

/*
 * The call is over: account its messages by its status, set the backoff for
 * the next one. The connection stays for the next call unless it failed or
 * this call had to be cancelled (OAP stuck: a new connection is cheaper
 * than finding out).
 */
static void call_finish(struct oap_stream_ctx *ctx)
{
	struct oap_call *call = &ctx->call;
	const struct oap_config *cfg = &ctx->sender->cfg;
	bool ok;

	call_take_outcome(ctx);
	ok = call->code == GRPC_CODE_OK;
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
		ctx->next_call_ms = clock_monotonic_ms() + ctx->backoff_ms;
		ctx->backoff_ms = ctx->backoff_ms * 2 > cfg->backoff_max_ms ? cfg->backoff_max_ms
									     : ctx->backoff_ms * 2;
	}
	ctx->last_call_failed = !ok;
	pthread_mutex_lock(&ctx->lock);
	ctx->stats.backoff_ms = ok ? 0 : ctx->next_call_ms - clock_monotonic_ms();
	pthread_mutex_unlock(&ctx->lock);
	if (ctx->conn && (call->code == GRPC_CODE_CANCELLED || !grpc_conn_reusable(ctx->conn)))
		conn_drop(ctx);
	memset(call, 0, sizeof(*call));
}

/* Half-close and wait for OAP's status, within `wait_ms`; then finish. */
static void call_close(struct oap_stream_ctx *ctx, uint64_t wait_ms)
{
	uint64_t give_up_ms = clock_monotonic_ms() + wait_ms;

	if (!call_done(ctx)) {
		grpc_call_half_close(ctx->conn);
		for (uint64_t now = clock_monotonic_ms(); !call_done(ctx) && now < give_up_ms; now = clock_monotonic_ms())
			call_pump(ctx, give_up_ms - now < IDLE_POLL_MS ? give_up_ms - now : IDLE_POLL_MS);
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
	ret = call_send(ctx, copy, len);
	free(copy);
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

	for (uint64_t now = clock_monotonic_ms(); !call_done(ctx) && !call_has_headers(ctx) && now < until_ms;
	     now = clock_monotonic_ms())
		call_pump(ctx, until_ms - now);
	/* A refusal may bring its status just behind the headers: take what is ready. */
	if (!call_done(ctx))
		call_pump(ctx, 5);
	return call_done(ctx) ? -ECONNREFUSED : 0;
}

static int stream_open_call(struct oap_stream_ctx *ctx)
{
	int ret;

	/* OAP attributes access logs through the node info: without it, wait. */
	if (node_info_missing(ctx)) {
		stats_set_error(ctx, 0, "no node info set (oap_sender_set_node_info): access logs wait");
		ctx->next_call_ms = clock_monotonic_ms() + 1000;
		return -ENODATA;
	}
	ret = call_open(ctx);
	if (!ret && ctx->kind == OAP_STREAM_ACCESS_LOG)
		ret = send_node_info(ctx);
	if (!ret)
		ret = call_probation(ctx);
	if (ret)
		call_finish(ctx);
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

/* The oldest chunk of queued messages, out of the queue (oap_queue_take). */
static int stream_take(struct oap_stream_ctx *ctx, struct oap_chunk **ret_chunk)
{
	int ret;

	pthread_mutex_lock(&ctx->lock);
	ret = oap_queue_take(&ctx->queue, ret_chunk);
	ctx->stats.queue_depth = ctx->queue.count;
	ctx->stats.queue_bytes = ctx->queue.bytes;
	pthread_mutex_unlock(&ctx->lock);
	return ret;
}

/* The chunk written (`sent`) or not: counted, and back for reuse. */
static void stream_done_with(struct oap_stream_ctx *ctx, struct oap_chunk *chunk, bool sent)
{
	pthread_mutex_lock(&ctx->lock);
	if (sent) {
		ctx->stats.sent += chunk->count;
		ctx->stats.in_flight = ctx->call.in_flight;
		ctx->stats.connected = true;
	} else {
		ctx->stats.dropped[OAP_DROP_SEND_FAILED] += chunk->count;
	}
	oap_queue_recycle(&ctx->queue, chunk);
	pthread_mutex_unlock(&ctx->lock);
}

/*
 * Write the oldest chunk (up to batch_max_messages messages, framed when
 * they were queued) into the call in one copy, then hand it to the socket.
 */
static void stream_write_batch(struct oap_stream_ctx *ctx)
{
	struct oap_chunk *chunk;

	if (stream_take(ctx, &chunk))
		return;
	if (call_send_chunk(ctx, chunk)) {
		stream_done_with(ctx, chunk, false);
		call_finish(ctx);
		return;
	}
	ctx->call.in_flight += chunk->count;
	stream_done_with(ctx, chunk, true);
	stream_report_up(ctx);
	call_pump(ctx, 0);
}

static bool stream_queue_empty(struct oap_stream_ctx *ctx)
{
	bool empty;

	pthread_mutex_lock(&ctx->lock);
	empty = ctx->queue.count == 0;
	pthread_mutex_unlock(&ctx->lock);
	return empty;
}

/* One turn of the loop with a call open. */
static void stream_step_open(struct oap_stream_ctx *ctx)
{
	uint64_t age_ms = clock_monotonic_ms() - ctx->call.opened_ms;

	if (call_done(ctx)) {
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
		/* Sleep on the clock, not on the socket: OAP's window updates
		 * and acknowledgements would wake the thread once per write;
		 * what came meanwhile is read at the next pump. */
		stream_wait(ctx, IDLE_POLL_MS, false);
		call_pump(ctx, 0);
		return;
	}
	stream_write_batch(ctx);
}

static void stream_shutdown(struct oap_stream_ctx *ctx)
{
	uint64_t left_ms, deadline_ms = ctx->sender->stop_deadline_ms;
	size_t cleared;

	if (ctx->call.open) {
		left_ms = deadline_ms > clock_monotonic_ms() ? deadline_ms - clock_monotonic_ms() : 0;
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
	sigset_t pipe_only;
	uint64_t now;

	/* A write to a closed TLS connection (OpenSSL's own send) must be an
	 * error here, not a SIGPIPE that ends a process which did not ignore it. */
	sigemptyset(&pipe_only);
	sigaddset(&pipe_only, SIGPIPE);
	pthread_sigmask(SIG_BLOCK, &pipe_only, NULL);

	while (true) {
		bool stopping = atomic_load(&ctx->sender->stopping);

		if (stopping && (stream_queue_empty(ctx) || stop_expired(ctx)))
			break;
		if (ctx->call.open) {
			stream_step_open(ctx);
			continue;
		}
		now = clock_monotonic_ms();
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
	return oap_queue_init(&ctx->queue, sender->cfg.queue_max_messages,
			      (size_t)sender->cfg.queue_max_kib * 1024, sender->cfg.batch_max_messages);
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

/* Queue a copy of `data` (oap_queue_push): -E2BIG or -ENOMEM when it is not queued. */
static int enqueue_copy(struct oap_stream_ctx *ctx, const uint8_t *data, size_t len)
{
	size_t evicted;
	int ret;

	pthread_mutex_lock(&ctx->lock);
	ret = oap_queue_push(&ctx->queue, data, len, &evicted);
	ctx->stats.dropped[OAP_DROP_QUEUE_FULL] += evicted;
	if (!ret)
		ctx->stats.enqueued++;
	else if (ret == -E2BIG)
		ctx->stats.dropped[OAP_DROP_TOO_LARGE]++;
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
	return ret;
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

	return ctx ? enqueue_copy(ctx, data, len) : err;
}

/* Encoded in one pass (pb_pack.h), then queued (meters: a few messages a minute). */
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
	if (err)
		return err;
	err = enqueue_copy(ctx, data, len);
	free(data);
	return err;
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
	sender->stop_deadline_ms = clock_monotonic_ms() + flush_timeout_ms;
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
	conn_drop(ctx);
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
}
