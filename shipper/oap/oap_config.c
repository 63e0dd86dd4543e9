// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The `oap_*` config keys: defaults, strict parsing, cross-key checks. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "oap.h"
#include "parse.h"

enum oap_key_type { OAP_KEY_UINT, OAP_KEY_BOOL, OAP_KEY_CHOICE, OAP_KEY_STRING, OAP_KEY_PATH,
		    OAP_KEY_ADDRESS, OAP_KEY_TOKEN };

struct oap_key {
	const char *name;
	enum oap_key_type type;
	size_t offset;
	size_t size;                  /* of a string field, with its NUL */
	unsigned int min, max;        /* OAP_KEY_UINT */
	const char *unit;
};

static const char *const oap_mode_names[] = { "metrics", "access_logs", "both", "compatible", NULL };
static const char *const oap_bool_names[] = { "off", "on", NULL };

#define FIELD(name) offsetof(struct oap_config, name), sizeof(((struct oap_config *)0)->name)

static const struct oap_key oap_keys[] = {
	{ "oap_address", OAP_KEY_ADDRESS, FIELD(address), 0, 0, NULL },
	{ "oap_mode", OAP_KEY_CHOICE, FIELD(mode), 0, 0, NULL },
	{ "oap_tls", OAP_KEY_BOOL, FIELD(tls), 0, 0, NULL },
	{ "oap_tls_ca", OAP_KEY_PATH, FIELD(tls_ca), 0, 0, NULL },
	{ "oap_tls_cert", OAP_KEY_PATH, FIELD(tls_cert), 0, 0, NULL },
	{ "oap_tls_key", OAP_KEY_PATH, FIELD(tls_key), 0, 0, NULL },
	{ "oap_tls_server_name", OAP_KEY_STRING, FIELD(tls_server_name), 0, 0, NULL },
	{ "oap_auth_token", OAP_KEY_TOKEN, FIELD(auth_token), 0, 0, NULL },
	{ "oap_cluster_name", OAP_KEY_STRING, FIELD(cluster_name), 0, 0, NULL },
	{ "oap_node_name", OAP_KEY_STRING, FIELD(node_name), 0, 0, NULL },
	{ "oap_queue_max_messages", OAP_KEY_UINT, FIELD(queue_max_messages), 1, 1000000, "messages" },
	{ "oap_queue_max_kib", OAP_KEY_UINT, FIELD(queue_max_kib), 64, 1048576, "KiB" },
	{ "oap_batch_max_messages", OAP_KEY_UINT, FIELD(batch_max_messages), 1, 10000, "messages" },
	{ "oap_stream_rotate_s", OAP_KEY_UINT, FIELD(stream_rotate_s), 1, 86400, "seconds" },
	{ "oap_backoff_initial_ms", OAP_KEY_UINT, FIELD(backoff_initial_ms), 10, 60000, "milliseconds" },
	{ "oap_backoff_max_ms", OAP_KEY_UINT, FIELD(backoff_max_ms), 100, 600000, "milliseconds" },
	/* gRPC servers answer pings more often than every 5 min with GOAWAY. */
	{ "oap_keepalive_s", OAP_KEY_UINT, FIELD(keepalive_s), 300, 86400, "seconds" },
	{ "oap_send_timeout_s", OAP_KEY_UINT, FIELD(send_timeout_s), 1, 3600, "seconds" },
};

#define OAP_KEY_COUNT (sizeof(oap_keys) / sizeof(oap_keys[0]))

const char *oap_config_key_name(size_t index)
{
	return index < OAP_KEY_COUNT ? oap_keys[index].name : NULL;
}

void oap_config_set_defaults(struct oap_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->mode = OAP_MODE_BOTH;
	cfg->queue_max_messages = 10000;
	cfg->queue_max_kib = 16384;
	cfg->batch_max_messages = 256;
	cfg->stream_rotate_s = 300;
	cfg->backoff_initial_ms = 500;
	cfg->backoff_max_ms = 30000;
	cfg->keepalive_s = 300;
	cfg->send_timeout_s = 30;
}

bool oap_mode_sends_meters(unsigned int mode)
{
	return mode == OAP_MODE_METRICS || mode == OAP_MODE_BOTH;
}

bool oap_mode_sends_access_logs(unsigned int mode)
{
	return mode == OAP_MODE_ACCESS_LOGS || mode == OAP_MODE_BOTH || mode == OAP_MODE_COMPATIBLE;
}

bool oap_mode_sends_syscall_logs(unsigned int mode)
{
	return mode == OAP_MODE_COMPATIBLE;
}

const char *oap_mode_name(unsigned int mode)
{
	return mode < sizeof(oap_mode_names) / sizeof(oap_mode_names[0]) - 1 ? oap_mode_names[mode]
									   : "unknown";
}

const char *oap_stream_name(enum oap_stream stream)
{
	switch (stream) {
	case OAP_STREAM_ACCESS_LOG: return "access_log";
	case OAP_STREAM_METER: return "meter";
	default: return "unknown";
	}
}

const char *oap_drop_reason_name(enum oap_drop_reason reason)
{
	static const char *const names[OAP_DROP_REASON_COUNT] = {
		[OAP_DROP_QUEUE_FULL] = "queue_full",
		[OAP_DROP_SEND_FAILED] = "send_failed",
		[OAP_DROP_UNCONFIRMED] = "unconfirmed",
		[OAP_DROP_TOO_LARGE] = "too_large",
		[OAP_DROP_SHUTDOWN] = "shutdown",
	};

	return (unsigned int)reason < OAP_DROP_REASON_COUNT ? names[reason] : "unknown";
}

static const struct oap_key *oap_key_find(const char *name)
{
	for (size_t i = 0; i < OAP_KEY_COUNT; i++)
		if (strcmp(oap_keys[i].name, name) == 0)
			return &oap_keys[i];
	return NULL;
}

/*
 * "host:port" or "[v6]:port" with port 1..65535. The host is left to gRPC's
 * resolver (a DNS name is normal in a cluster: oap.skywalking:11800).
 */
static int check_address(const char *value)
{
	const char *colon, *host_end;
	unsigned int port;

	if (value[0] == '[') {
		host_end = strchr(value, ']');
		if (!host_end || host_end == value + 1 || host_end[1] != ':')
			return -EINVAL;
		colon = host_end + 1;
	} else {
		colon = strrchr(value, ':');
		if (!colon || colon == value || memchr(value, ':', colon - value))
			return -EINVAL;
		for (const char *c = value; c < colon; c++)
			if (!(c[0] == '.' || c[0] == '-' || c[0] == '_' ||
			      (c[0] >= '0' && c[0] <= '9') || (c[0] >= 'a' && c[0] <= 'z') ||
			      (c[0] >= 'A' && c[0] <= 'Z')))
				return -EINVAL;
	}
	return parse_uint(colon + 1, 1, 65535, &port);
}

/* HTTP/2 header values: visible ASCII and inner spaces only. */
static int check_token(const char *value)
{
	size_t len = strlen(value);

	for (size_t i = 0; i < len; i++)
		if (value[i] < 0x20 || value[i] > 0x7e)
			return -EINVAL;
	if (len && (value[0] == ' ' || value[len - 1] == ' '))
		return -EINVAL;
	return 0;
}

static int set_string(const struct oap_key *key, char *field, const char *value,
		      char *err, size_t err_len)
{
	if (strlen(value) >= key->size) {
		snprintf(err, err_len, "%s: value longer than %zu bytes", key->name, key->size - 1);
		return -ERANGE;
	}
	strcpy(field, value);
	return 0;
}

static int set_choice(const struct oap_key *key, unsigned int *field, const char *const *names,
		      const char *value, char *err, size_t err_len)
{
	int index = parse_choice(value, names);

	if (index < 0) {
		snprintf(err, err_len, "%s: '%s' is not one of: %s", key->name, value,
			 names == oap_mode_names ? "metrics, access_logs, both, compatible"
						 : "off, on");
		return -EINVAL;
	}
	*field = index;
	return 0;
}

int oap_config_set(struct oap_config *cfg, const char *name, const char *value,
		   char *err, size_t err_len)
{
	const struct oap_key *key = oap_key_find(name);
	char *field;
	unsigned int parsed;
	int ret;

	if (!key) {
		snprintf(err, err_len, "unknown key '%s'", name);
		return -ENOENT;
	}
	field = (char *)cfg + key->offset;
	switch (key->type) {
	case OAP_KEY_UINT:
		ret = parse_uint(value, key->min, key->max, &parsed);
		if (ret) {
			snprintf(err, err_len, "%s: '%s' is not an integer in %u..%u (%s)",
				 key->name, value, key->min, key->max, key->unit);
			return ret;
		}
		*(unsigned int *)field = parsed;
		return 0;
	case OAP_KEY_BOOL:
		ret = set_choice(key, &parsed, oap_bool_names, value, err, err_len);
		if (!ret)
			*(bool *)field = parsed;
		return ret;
	case OAP_KEY_CHOICE:
		return set_choice(key, (unsigned int *)field, oap_mode_names, value, err, err_len);
	case OAP_KEY_ADDRESS:
		if (value[0] && check_address(value)) {
			snprintf(err, err_len, "%s: '%s' is not HOST:PORT with port 1..65535 "
				 "(e.g. oap.skywalking:11800, 127.0.0.1:11800, [::1]:11800) or empty",
				 key->name, value);
			return -EINVAL;
		}
		return set_string(key, field, value, err, err_len);
	case OAP_KEY_TOKEN:
		if (check_token(value)) {
			snprintf(err, err_len, "%s: only printable ASCII without leading or "
				 "trailing spaces is allowed in a header value", key->name);
			return -EINVAL;
		}
		return set_string(key, field, value, err, err_len);
	case OAP_KEY_STRING:
	case OAP_KEY_PATH:
		return set_string(key, field, value, err, err_len);
	}
	return -EINVAL;
}

static int check_readable(const char *key, const char *path, char *err, size_t err_len)
{
	if (path[0] && access(path, R_OK)) {
		snprintf(err, err_len, "%s: cannot read '%s': %s", key, path, strerror(errno));
		return -EINVAL;
	}
	return 0;
}

int oap_config_check(const struct oap_config *cfg, char *err, size_t err_len)
{
	if (!cfg->tls && (cfg->tls_ca[0] || cfg->tls_cert[0] || cfg->tls_key[0])) {
		snprintf(err, err_len, "oap_tls_ca, oap_tls_cert and oap_tls_key need oap_tls = on");
		return -EINVAL;
	}
	if (!cfg->tls_cert[0] != !cfg->tls_key[0]) {
		snprintf(err, err_len, "oap_tls_cert and oap_tls_key go together: set both or neither");
		return -EINVAL;
	}
	if (cfg->backoff_initial_ms > cfg->backoff_max_ms) {
		snprintf(err, err_len, "oap_backoff_initial_ms (%u) is above oap_backoff_max_ms (%u)",
			 cfg->backoff_initial_ms, cfg->backoff_max_ms);
		return -EINVAL;
	}
	if (check_readable("oap_tls_ca", cfg->tls_ca, err, err_len) ||
	    check_readable("oap_tls_cert", cfg->tls_cert, err, err_len) ||
	    check_readable("oap_tls_key", cfg->tls_key, err, err_len))
		return -EINVAL;
	return 0;
}
