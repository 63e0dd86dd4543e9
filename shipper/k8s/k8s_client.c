// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * The watcher threads, one per resource (pods, services): list in pages,
 * then watch from the list's resourceVersion with bookmarks; a watch that
 * ends is resumed from the last resourceVersion seen; 410 Gone (HTTP status
 * or a watch ERROR event) lists again; every other failure is retried after
 * an exponential backoff. Nothing here gives up: the agent keeps running and
 * the counters say what failed.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "k8s_internal.h"
#include "log.h"

/* A list page over this is refused: lists are paged by k8s_list_page_size. */
#define LIST_PAGE_MAX_BYTES (64u << 20)
/* One watch event (one object) over this ends the watch. */
#define WATCH_LINE_MAX_BYTES (4u << 20)
#define ERROR_BODY_MAX_BYTES 4096
/* A watch that ends sooner, without an event, counts as a failed attempt. */
#define WATCH_MIN_HEALTHY_MS 1000

static const char *const resource_paths[K8S_RESOURCE_COUNT] = {
	[K8S_PODS] = "/api/v1/pods",
	[K8S_SERVICES] = "/api/v1/services",
};

static const char *const resource_names[K8S_RESOURCE_COUNT] = {
	[K8S_PODS] = "pods",
	[K8S_SERVICES] = "services",
};

struct request {
	struct k8s_watcher *watcher;
	bool watch;
	int status;
	char *body; /* list page, or the first bytes of an error response */
	size_t body_len, body_cap;
	char *line; /* watch: the event being received */
	size_t line_len, line_cap;
	bool gone;  /* 410: list again */
	char error[K8S_ERROR_LEN];
	uint64_t events;
};

/* Checked between requests and sleeps: no lock, just the flag. */
static bool stopping(struct k8s *k)
{
	return __atomic_load_n(&k->stopping, __ATOMIC_RELAXED);
}

/* Sleep unless asked to stop; false when stopping. */
static bool sleep_ms(struct k8s *k, unsigned int ms)
{
	struct timespec deadline;
	bool stop;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += ms / 1000;
	deadline.tv_nsec += (long)(ms % 1000) * 1000000;
	if (deadline.tv_nsec >= 1000000000) {
		deadline.tv_sec++;
		deadline.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&k->lock);
	while (!k->stopping && pthread_cond_timedwait(&k->wake, &k->lock, &deadline) == 0)
		;
	stop = k->stopping;
	pthread_mutex_unlock(&k->lock);
	return !stop;
}

static int buffer_append(char **buf, size_t *len, size_t *cap, const char *data, size_t size,
			 size_t max)
{
	if (*len + size + 1 > max)
		return -EFBIG;
	if (*len + size + 1 > *cap) {
		size_t grown_cap = *cap ? *cap : 4096;
		char *grown;

		while (grown_cap < *len + size + 1)
			grown_cap *= 2;
		grown = realloc(*buf, grown_cap);
		if (!grown)
			return -ENOMEM;
		*buf = grown;
		*cap = grown_cap;
	}
	memcpy(*buf + *len, data, size);
	*len += size;
	(*buf)[*len] = '\0';
	return 0;
}

/* Apply one object under the lock; objects of a bad shape are skipped, not fatal. */
static void apply_object(struct k8s_watcher *watcher, json_object *obj, bool deleted,
			 uint64_t epoch)
{
	struct k8s_store *store = &watcher->k->store;
	int err;

	if (watcher->resource == K8S_PODS)
		err = deleted ? k8s_store_delete_pod(store, obj, clock_monotonic_ms())
			      : k8s_store_upsert_pod(store, obj, epoch);
	else
		err = deleted ? k8s_store_delete_service(store, obj)
			      : k8s_store_upsert_service(store, obj, epoch);
	if (err && err != -ENOSPC)
		log_debug("kubernetes: skipped a %s object: %s", resource_names[watcher->resource],
			  strerror(-err));
}

static uint64_t current_epoch(struct k8s_watcher *watcher)
{
	struct k8s_store *store = &watcher->k->store;

	return watcher->resource == K8S_PODS ? store->pod_epoch : store->service_epoch;
}

static void set_resource_version(struct k8s_watcher *watcher, const char *version)
{
	if (version && version[0])
		snprintf(watcher->resource_version, sizeof(watcher->resource_version), "%s", version);
}

/* A request succeeded: the failure streak ends. Caller holds the lock. */
static void backoff_reset_locked(struct k8s_watcher *watcher)
{
	struct k8s *k = watcher->k;

	if (watcher->failures)
		log_info("kubernetes: %s: back after %u failed requests",
			 resource_names[watcher->resource], watcher->failures);
	watcher->failures = 0;
	watcher->backoff_ms = 0;
	k->stats.backoff_ms = 0;
	for (int i = 0; i < K8S_RESOURCE_COUNT; i++)
		if (k->watchers[i].backoff_ms)
			k->stats.backoff_ms = k->watchers[i].backoff_ms;
}

static void backoff_reset(struct k8s_watcher *watcher)
{
	pthread_mutex_lock(&watcher->k->lock);
	backoff_reset_locked(watcher);
	pthread_mutex_unlock(&watcher->k->lock);
}

/* One watch event line: 0, -ESTALE (410: list again) or -EPROTO. */
static int handle_event(struct request *req, json_object *event)
{
	struct k8s_watcher *watcher = req->watcher;
	struct k8s *k = watcher->k;
	const char *type = k8s_json_string(event, "type");
	json_object *obj = k8s_json_member(event, "object");

	if (!type || !obj) {
		snprintf(req->error, sizeof(req->error), "watch %s: event without type or object",
			 resource_names[watcher->resource]);
		return -EPROTO;
	}
	if (strcmp(type, "ERROR") == 0) {
		int code = json_object_get_int(k8s_json_member(obj, "code"));
		const char *message = k8s_json_string(obj, "message");

		snprintf(req->error, sizeof(req->error), "watch %s: ERROR %d: %s",
			 resource_names[watcher->resource], code, message ? message : "");
		if (code == 410) {
			req->gone = true;
			return -ESTALE;
		}
		return -EPROTO;
	}
	pthread_mutex_lock(&k->lock);
	k8s_store_expire(&k->store, clock_monotonic_ms());
	if (strcmp(type, "ADDED") == 0 || strcmp(type, "MODIFIED") == 0)
		apply_object(watcher, obj, false, current_epoch(watcher));
	else if (strcmp(type, "DELETED") == 0)
		apply_object(watcher, obj, true, 0);
	set_resource_version(watcher,
			     k8s_json_string(k8s_json_member(obj, "metadata"), "resourceVersion"));
	k->stats.watch_events++;
	watcher->synced = true;
	backoff_reset_locked(watcher);
	pthread_mutex_unlock(&k->lock);
	req->events++;
	return 0;
}

static int handle_line(struct request *req)
{
	json_object *event;
	int err;

	if (req->line_len == 0)
		return 0;
	event = json_tokener_parse(req->line);
	if (!event) {
		snprintf(req->error, sizeof(req->error), "watch %s: not JSON: %.60s",
			 resource_names[req->watcher->resource], req->line);
		return -EPROTO;
	}
	err = handle_event(req, event);
	json_object_put(event);
	return err;
}

static int watch_data(struct request *req, const char *data, size_t size)
{
	for (size_t i = 0; i < size;) {
		const char *newline = memchr(data + i, '\n', size - i);
		size_t chunk = newline ? (size_t)(newline - (data + i)) : size - i;
		int err = buffer_append(&req->line, &req->line_len, &req->line_cap, data + i, chunk,
					WATCH_LINE_MAX_BYTES);

		if (err) {
			snprintf(req->error, sizeof(req->error), "watch %s: event over %u bytes",
				 resource_names[req->watcher->resource], WATCH_LINE_MAX_BYTES);
			return err;
		}
		i += chunk;
		if (!newline)
			break;
		i++;
		err = handle_line(req);
		req->line_len = 0;
		if (err)
			return err;
	}
	return 0;
}

/* Every body byte of a response: a list page, watch events, or the start of an error. */
static int on_body(void *user, int status, const char *data, size_t len)
{
	struct request *req = user;
	int err;

	req->status = status;
	if (status != 200) {
		/* Keep the start of an error body for the message. */
		buffer_append(&req->body, &req->body_len, &req->body_cap, data, len,
			      ERROR_BODY_MAX_BYTES);
		return 0;
	}
	if (req->watch)
		return watch_data(req, data, len);
	err = buffer_append(&req->body, &req->body_len, &req->body_cap, data, len,
			    LIST_PAGE_MAX_BYTES);
	if (err)
		snprintf(req->error, sizeof(req->error), "list %s: page over %u bytes",
			 resource_names[req->watcher->resource], LIST_PAGE_MAX_BYTES);
	return err;
}

/* The bearer token: from the kubeconfig, or the service account file, re-read
 * each time because the kubelet rotates it (*ret_file_token: free it). */
static const char *bearer_token(struct k8s *k, char **ret_file_token)
{
	*ret_file_token = NULL;
	if (k->kubeconfig.token)
		return k->kubeconfig.token;
	if (k->token_path[0] && k8s_read_small_file(k->token_path, ret_file_token) == 0)
		return *ret_file_token;
	return NULL;
}

/*
 * One GET. 0 when the response was whole with status 200 and on_body took
 * all of it; otherwise -errno with req->error set.
 */
static int perform(struct request *req, const char *path_query)
{
	struct k8s *k = req->watcher->k;
	const struct k8s_config *cfg = &k->cfg;
	char *file_token, http_error[K8S_ERROR_LEN - 32]; /* after "watch services: " */
	const struct k8s_http_tls tls = {
		.ca_pem = k->kubeconfig.ca_pem,
		.ca_path = k->ca_path,
		.cert_pem = k->kubeconfig.client_cert_pem,
		.key_pem = k->kubeconfig.client_key_pem,
		.insecure = k->kubeconfig.insecure,
	};
	/*
	 * A dead connection is noticed by silence: lists must keep sending, a
	 * watch must end by the server's timeoutSeconds plus the idle allowance.
	 */
	const struct k8s_http_get get = {
		.server = &k->http_server,
		.tls = &tls,
		.path_query = path_query,
		.bearer_token = bearer_token(k, &file_token),
		.connect_timeout_s = cfg->idle_timeout_s,
		.silence_limit_s = req->watch ? cfg->watch_timeout_s + cfg->idle_timeout_s
					      : cfg->idle_timeout_s,
		.total_limit_s = req->watch ? cfg->watch_timeout_s + cfg->idle_timeout_s : 0,
		.stop_fd = k->stop_fd,
		.on_body = on_body,
		.user = req,
	};
	int status, err = k8s_http_get(&get, &status, http_error, sizeof(http_error));

	free(file_token);
	req->status = status;
	if (err == -ECANCELED) {
		snprintf(req->error, sizeof(req->error), "stopped");
	} else if (err && !req->error[0]) {
		/* a failure of the exchange, not of what on_body was given */
		snprintf(req->error, sizeof(req->error), "%s %s: %s", req->watch ? "watch" : "list",
			 resource_names[req->watcher->resource], http_error);
	} else if (!err && status != 200) {
		err = status == 410 ? -ESTALE : -EPROTO;
		req->gone = status == 410;
		snprintf(req->error, sizeof(req->error), "%s %s: HTTP %d: %.120s",
			 req->watch ? "watch" : "list", resource_names[req->watcher->resource],
			 status, req->body ? req->body : "");
	}
	return err;
}

static void request_reset(struct request *req)
{
	free(req->body);
	free(req->line);
	memset(req, 0, sizeof(*req));
}

/* Upsert one page's items; its continue token and resourceVersion. */
static int apply_page(struct k8s_watcher *watcher, struct request *req, uint64_t epoch,
		      char *ret_continue, size_t continue_len)
{
	struct k8s *k = watcher->k;
	json_object *page = json_tokener_parse(req->body ? req->body : "");
	json_object *items = k8s_json_member(page, "items"), *metadata = k8s_json_member(page, "metadata");
	const char *next;

	if (!items || !json_object_is_type(items, json_type_array)) {
		snprintf(req->error, sizeof(req->error), "list %s: not a list: %.60s",
			 resource_names[watcher->resource], req->body ? req->body : "");
		json_object_put(page);
		return -EPROTO;
	}
	pthread_mutex_lock(&k->lock);
	for (size_t i = 0; i < json_object_array_length(items); i++)
		apply_object(watcher, json_object_array_get_idx(items, i), false, epoch);
	pthread_mutex_unlock(&k->lock);
	next = k8s_json_string(metadata, "continue");
	snprintf(ret_continue, continue_len, "%s", next ? next : "");
	if (!ret_continue[0])
		set_resource_version(watcher, k8s_json_string(metadata, "resourceVersion"));
	json_object_put(page);
	return 0;
}

static void record_failure(struct k8s_watcher *watcher, struct request *req, uint64_t *counter)
{
	struct k8s *k = watcher->k;

	pthread_mutex_lock(&k->lock);
	if (counter)
		(*counter)++;
	if (req->gone)
		k->stats.gone_410++;
	watcher->synced = false;
	k8s_set_error(k, "%s", req->error);
	/* Log a failure streak once; the counters and last_error keep the rest. */
	if (watcher->failures++ == 0)
		log_warn("kubernetes: %s (retrying with backoff)", req->error);
	else
		log_debug("kubernetes: %s", req->error);
	pthread_mutex_unlock(&k->lock);
}

/* Every page of a list, then drop what the list no longer has. */
static int list_all(struct k8s_watcher *watcher)
{
	struct k8s *k = watcher->k;
	char continue_token[2048] = "", escaped[3 * sizeof(continue_token)], path_query[sizeof(escaped) + 128];
	struct request req = { .watcher = watcher };
	uint64_t epoch;
	int err = 0;

	pthread_mutex_lock(&k->lock);
	epoch = watcher->resource == K8S_PODS ? ++k->store.pod_epoch : ++k->store.service_epoch;
	pthread_mutex_unlock(&k->lock);
	do {
		k8s_http_escape(continue_token, escaped, sizeof(escaped)); /* fits: 3 per byte */
		snprintf(path_query, sizeof(path_query), "%s?limit=%u%s%s",
			 resource_paths[watcher->resource], k->cfg.list_page_size,
			 continue_token[0] ? "&continue=" : "", escaped);
		request_reset(&req);
		req.watcher = watcher;
		err = perform(&req, path_query);
		if (!err)
			err = apply_page(watcher, &req, epoch, continue_token, sizeof(continue_token));
	} while (!err && continue_token[0]);
	if (err) {
		if (err != -ECANCELED)
			record_failure(watcher, &req, &k->stats.list_errors);
		request_reset(&req);
		return err;
	}
	request_reset(&req);
	pthread_mutex_lock(&k->lock);
	if (watcher->resource == K8S_PODS)
		k8s_store_sweep_pods(&k->store, epoch, clock_monotonic_ms());
	else
		k8s_store_sweep_services(&k->store, epoch);
	watcher->synced = true;
	pthread_mutex_unlock(&k->lock);
	return 0;
}

/* One watch from the last resourceVersion: 0 when the server ended it cleanly. */
static int watch_once(struct k8s_watcher *watcher, uint64_t *ret_events)
{
	struct k8s *k = watcher->k;
	struct request req = { .watcher = watcher, .watch = true };
	char path_query[sizeof(watcher->resource_version) * 3 + 128],
		version[sizeof(watcher->resource_version) * 3];
	int err;

	pthread_mutex_lock(&k->lock);
	k8s_http_escape(watcher->resource_version, version, sizeof(version)); /* fits: 3 per byte */
	pthread_mutex_unlock(&k->lock);
	snprintf(path_query, sizeof(path_query),
		 "%s?watch=1&allowWatchBookmarks=true&timeoutSeconds=%u&resourceVersion=%s",
		 resource_paths[watcher->resource], k->cfg.watch_timeout_s, version);
	err = perform(&req, path_query);
	*ret_events = req.events;
	if (err && err != -ECANCELED)
		record_failure(watcher, &req, req.gone ? NULL : &k->stats.watch_errors);
	request_reset(&req);
	return err;
}

static unsigned int next_backoff(const struct k8s_config *cfg, unsigned int backoff_ms)
{
	if (!backoff_ms)
		return cfg->backoff_min_ms;
	return backoff_ms >= cfg->backoff_max_ms / 2 ? cfg->backoff_max_ms : backoff_ms * 2;
}

/* Wait out the backoff, doubled for next time; false when stopping. */
static bool back_off(struct k8s_watcher *watcher)
{
	struct k8s *k = watcher->k;
	unsigned int delay_ms;

	pthread_mutex_lock(&k->lock);
	watcher->backoff_ms = next_backoff(&k->cfg, watcher->backoff_ms);
	delay_ms = watcher->backoff_ms;
	k->stats.backoff_ms = delay_ms;
	pthread_mutex_unlock(&k->lock);
	return sleep_ms(k, delay_ms);
}

void *k8s_watcher_main(void *arg)
{
	struct k8s_watcher *watcher = arg;
	struct k8s *k = watcher->k;
	bool need_list = true, listed_once = false;

	while (!stopping(k)) {
		uint64_t started_ms, events;
		int err;

		if (need_list) {
			if (listed_once) {
				pthread_mutex_lock(&k->lock);
				k->stats.relists++;
				pthread_mutex_unlock(&k->lock);
			}
			if (list_all(watcher)) {
				back_off(watcher);
				continue;
			}
			listed_once = true;
			need_list = false;
			backoff_reset(watcher);
		}
		started_ms = clock_monotonic_ms();
		err = watch_once(watcher, &events);
		if (err == -ECANCELED)
			break;
		if (err == -ESTALE) {
			need_list = true;
			back_off(watcher); /* a server that answers 410 forever is not hammered */
		} else if (err || (!events && clock_monotonic_ms() - started_ms < WATCH_MIN_HEALTHY_MS)) {
			back_off(watcher);
		} else {
			backoff_reset(watcher);
		}
	}
	return NULL;
}
