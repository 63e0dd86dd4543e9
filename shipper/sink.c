// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <arpa/inet.h>
#include <string.h>

#include "endpoint_names.h"
#include "sink.h"

static const __u8 v4_mapped_prefix[12] = { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff };

void format_addr(const __u8 addr[KACCESS_ADDR_LEN], char *buf, size_t len)
{
	if (memcmp(addr, v4_mapped_prefix, sizeof(v4_mapped_prefix)) == 0)
		inet_ntop(AF_INET, addr + 12, buf, len);
	else
		inet_ntop(AF_INET6, addr, buf, len);
}

const char *role_name(__u8 role)
{
	switch (role) {
	case KACCESS_ROLE_CLIENT:
		return "client";
	case KACCESS_ROLE_SERVER:
		return "server";
	default:
		return "unknown";
	}
}

uint64_t bucket_start_ms(const struct sink_env *env, uint64_t bucket)
{
	return bucket * (env->bucket_ns / 1000000);
}

uint64_t monotonic_to_realtime_ms(const struct sink_env *env, uint64_t mono_ns)
{
	return (mono_ns + *env->wall_offset_ns) / 1000000;
}

const char *http_endpoint_text(const struct sink_env *env, uint64_t hash, char *buf, size_t len)
{
	return endpoint_names_get(env->endpoints, hash, buf, len) ? NULL : buf;
}

static void none_ready(struct sink *sink, const struct agent_info *info)
{
}

static void none_connection(struct sink *sink, const struct kaccess_conn_event *event)
{
}

static void none_bucket(struct sink *sink, const struct bucket_report *report)
{
}

static const struct sink_ops none_ops = {
	.ready = none_ready,
	.connection = none_connection,
	.bucket = none_bucket,
};

/* output = none: numbers only through /metrics (and later OAP). */
void sink_none_init(struct sink *sink, const struct sink_env *env)
{
	sink->ops = &none_ops;
	sink->env = *env;
	sink->is_tty = false;
	sink->state = NULL;
}
