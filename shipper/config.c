// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "parse.h"

enum config_type { CONFIG_UINT, CONFIG_POW2, CONFIG_STRING, CONFIG_CHOICE, CONFIG_LISTEN };

struct config_key {
	const char *name;
	enum config_type type;
	size_t offset;
	unsigned int min, max;        /* CONFIG_UINT, CONFIG_POW2 */
	const char *const *choices;   /* CONFIG_CHOICE */
	const char *unit;
	bool reloadable;              /* SIGHUP applies it; otherwise a restart does */
};

static const char *const output_names[] = { "table", "json", "none", NULL };
static const char *const log_level_names[] = { "error", "warn", "info", "debug", NULL };
static const char *const hooks_names[] = { "auto", "fentry", "sock", "fd", "tcp", NULL };
static const char *const off_on_names[] = { "off", "on", NULL };
static const char *const http_log_policy_names[] = { "all", "errors_slow", "sampled", "none", NULL };
static const char *const table_metrics_names[] = { "summary", "all", NULL };

#define FIELD(name) offsetof(struct kaccess_config, name)

static const struct config_key config_keys[] = {
	{ "output", CONFIG_CHOICE, FIELD(output), 0, 0, output_names, NULL, true },
	{ "interval_s", CONFIG_UINT, FIELD(interval_s), 1, 3600, NULL, "seconds", false },
	{ "refresh_ms", CONFIG_UINT, FIELD(refresh_ms), 100, 60000, NULL, "milliseconds", true },
	{ "table_metrics", CONFIG_CHOICE, FIELD(table_metrics), 0, 0, table_metrics_names, NULL, false },
	{ "sweep_interval_s", CONFIG_UINT, FIELD(sweep_interval_s), 0, 86400, NULL, "seconds", true },
	{ "cgroup", CONFIG_STRING, FIELD(cgroup), 0, 0, NULL, NULL, false },
	{ "pin_dir", CONFIG_STRING, FIELD(pin_dir), 0, 0, NULL, NULL, false },
	{ "btf_path", CONFIG_STRING, FIELD(btf_path), 0, 0, NULL, NULL, false },
	{ "http_listen", CONFIG_LISTEN, FIELD(http_listen), 0, 0, NULL, NULL, false },
	{ "conn_table_max_entries", CONFIG_UINT, FIELD(conn_table_max_entries), 1024, 16777216, NULL, "entries", false },
	{ "agg_rows_max_entries", CONFIG_UINT, FIELD(agg_rows_max_entries), 256, 4194304, NULL, "entries", false },
	{ "ringbuf_kib", CONFIG_POW2, FIELD(ringbuf_kib), 16, 65536, NULL, "KiB", false },
	{ "log_level", CONFIG_CHOICE, FIELD(log_level), 0, 0, log_level_names, NULL, true },
	{ "hooks", CONFIG_CHOICE, FIELD(hooks), 0, 0, hooks_names, NULL, false },
	{ "http_parse", CONFIG_CHOICE, FIELD(http_parse), 0, 0, off_on_names, NULL, false },
	{ "l24", CONFIG_CHOICE, FIELD(l24), 0, 0, off_on_names, NULL, false },
	{ "l24_netfilter", CONFIG_CHOICE, FIELD(l24_netfilter), 0, 0, off_on_names, NULL, false },
	{ "http_keep_query", CONFIG_CHOICE, FIELD(http_keep_query), 0, 0, off_on_names, NULL, false },
	{ "http_log_policy", CONFIG_CHOICE, FIELD(http_log_policy), 0, 0, http_log_policy_names, NULL, false },
	{ "http_log_slow_ms", CONFIG_UINT, FIELD(http_log_slow_ms), 1, 3600000, NULL, "milliseconds", false },
	{ "http_log_sample_rate", CONFIG_UINT, FIELD(http_log_sample_rate), 1, 1000000, NULL, "1 in N", false },
	{ "http_rows_max_entries", CONFIG_UINT, FIELD(http_rows_max_entries), 256, 4194304, NULL, "entries", false },
	{ "http_conns_max_entries", CONFIG_UINT, FIELD(http_conns_max_entries), 1024, 16777216, NULL, "entries", false },
};

void config_set_defaults(struct kaccess_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->output = OUTPUT_TABLE;
	cfg->interval_s = 60;
	cfg->refresh_ms = 2000;
	cfg->sweep_interval_s = 300;
	strcpy(cfg->pin_dir, "/sys/fs/bpf/kaccess");
	cfg->conn_table_max_entries = 131072;
	cfg->agg_rows_max_entries = 16384;
	cfg->ringbuf_kib = 8192;
	cfg->log_level = LOG_LEVEL_INFO;
	cfg->hooks = HOOKS_AUTO;
	cfg->http_parse = 1;
	cfg->l24 = 1;
	cfg->l24_netfilter = 1;
	cfg->http_keep_query = 0;
	cfg->http_log_policy = HTTP_LOG_ALL;
	cfg->http_log_slow_ms = 1000;
	cfg->http_log_sample_rate = 100;
	cfg->http_rows_max_entries = 4096;
	cfg->http_conns_max_entries = 16384;
	k8s_config_set_defaults(&cfg->k8s);
	oap_config_set_defaults(&cfg->oap);
}

static const struct config_key *config_key_find(const char *name)
{
	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++)
		if (strcmp(config_keys[i].name, name) == 0)
			return &config_keys[i];
	return NULL;
}

static void choices_text(const char *const *choices, char *buf, size_t len)
{
	buf[0] = '\0';
	for (int i = 0; choices[i]; i++) {
		strncat(buf, i ? ", " : "", len - strlen(buf) - 1);
		strncat(buf, choices[i], len - strlen(buf) - 1);
	}
}

static int set_uint(const struct config_key *key, unsigned int *field, const char *value,
		    char *err, size_t err_len)
{
	unsigned int parsed;
	int ret = parse_uint(value, key->min, key->max, &parsed);

	if (!ret && key->type == CONFIG_POW2 && (parsed & (parsed - 1)))
		ret = -ERANGE;
	if (ret) {
		snprintf(err, err_len, "%s: '%s' is not %s in %u..%u (%s)", key->name, value,
			 key->type == CONFIG_POW2 ? "a power of two" : "an integer",
			 key->min, key->max, key->unit);
		return ret;
	}
	*field = parsed;
	return 0;
}

int config_set(struct kaccess_config *cfg, const char *name, const char *value,
	       char *err, size_t err_len)
{
	const struct config_key *key = config_key_find(name);
	char *field;
	char choices[128];
	int index;

	/* the identity resolver and the OAP sender parse their own keys */
	if (strncmp(name, "k8s_", 4) == 0)
		return k8s_config_set(&cfg->k8s, name, value, err, err_len);
	if (strncmp(name, "oap_", 4) == 0)
		return oap_config_set(&cfg->oap, name, value, err, err_len);
	if (!key) {
		snprintf(err, err_len, "unknown key '%s'", name);
		return -ENOENT;
	}
	field = (char *)cfg + key->offset;
	switch (key->type) {
	case CONFIG_UINT:
	case CONFIG_POW2:
		return set_uint(key, (unsigned int *)field, value, err, err_len);
	case CONFIG_CHOICE:
		index = parse_choice(value, key->choices);
		if (index < 0) {
			choices_text(key->choices, choices, sizeof(choices));
			snprintf(err, err_len, "%s: '%s' is not one of: %s", key->name, value, choices);
			return -EINVAL;
		}
		*(unsigned int *)field = index;
		return 0;
	case CONFIG_LISTEN:
		if (value[0] && (strlen(value) >= sizeof(cfg->http_listen) ||
				 parse_listen_address(value, &(struct sockaddr_storage){ 0 },
						      &(socklen_t){ 0 }))) {
			snprintf(err, err_len, "%s: '%s' is not ADDRESS:PORT (e.g. 127.0.0.1:9810, "
				 "[::1]:9810) or empty", key->name, value);
			return -EINVAL;
		}
		strcpy(field, value);
		return 0;
	case CONFIG_STRING:
		if (strlen(value) >= PATH_MAX) {
			snprintf(err, err_len, "%s: value longer than %d bytes", key->name, PATH_MAX - 1);
			return -ERANGE;
		}
		strcpy(field, value);
		return 0;
	}
	return -EINVAL;
}

static char *trim(char *text)
{
	char *end;

	while (isspace((unsigned char)*text))
		text++;
	end = text + strlen(text);
	while (end > text && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return text;
}

/* `"..."` holds a value with spaces or an explicit empty string. */
static char *unquote(char *value)
{
	size_t len = strlen(value);

	if (len >= 2 && value[0] == '"' && value[len - 1] == '"') {
		value[len - 1] = '\0';
		return value + 1;
	}
	return value;
}

static int config_parse_line(struct kaccess_config *cfg, char *line, char *err, size_t err_len)
{
	char *text = trim(line), *equals;

	if (*text == '\0' || *text == '#')
		return 0;
	equals = strchr(text, '=');
	if (!equals) {
		snprintf(err, err_len, "expected 'key = value', got '%s'", text);
		return -EINVAL;
	}
	*equals = '\0';
	return config_set(cfg, trim(text), unquote(trim(equals + 1)), err, err_len);
}

int config_load_file(struct kaccess_config *cfg, const char *path, char *err, size_t err_len)
{
	char line[PATH_MAX + 128], message[CONFIG_ERROR_LEN];
	unsigned int line_no = 0;
	FILE *file = fopen(path, "re");
	int ret = 0;

	if (!file) {
		ret = -errno;
		snprintf(err, err_len, "%s: %s", path, strerror(errno));
		return ret;
	}
	while (fgets(line, sizeof(line), file)) {
		line_no++;
		if (!strchr(line, '\n') && !feof(file)) {
			snprintf(err, err_len, "%s:%u: line too long", path, line_no);
			ret = -EINVAL;
			break;
		}
		ret = config_parse_line(cfg, line, message, sizeof(message));
		if (ret) {
			snprintf(err, err_len, "%s:%u: %s", path, line_no, message);
			break;
		}
	}
	fclose(file);
	return ret;
}

int config_check(const struct kaccess_config *cfg, char *err, size_t err_len)
{
	return oap_config_check(&cfg->oap, err, err_len);
}

void config_print_keys(FILE *out)
{
	const char *oap_key;
	char choices[128];

	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++) {
		const struct config_key *key = &config_keys[i];

		if (key->type == CONFIG_CHOICE) {
			choices_text(key->choices, choices, sizeof(choices));
			fprintf(out, "  %-24s one of: %s\n", key->name, choices);
		} else if (key->type == CONFIG_STRING) {
			fprintf(out, "  %-24s path\n", key->name);
		} else if (key->type == CONFIG_LISTEN) {
			fprintf(out, "  %-24s ADDRESS:PORT or empty (off)\n", key->name);
		} else {
			fprintf(out, "  %-24s %u..%u %s%s\n", key->name, key->min, key->max, key->unit,
				key->type == CONFIG_POW2 ? ", a power of two" : "");
		}
	}
	for (size_t i = 0; (oap_key = oap_config_key_name(i)); i++)
		fprintf(out, "  %-24s see config/oap/README.md\n", oap_key);
	fprintf(out, "  %-24s see shipper/k8s/README.md\n", "k8s_*");
}

static bool config_field_equal(const struct config_key *key, const struct kaccess_config *a,
			       const struct kaccess_config *b)
{
	const char *x = (const char *)a + key->offset, *y = (const char *)b + key->offset;

	if (key->type == CONFIG_STRING || key->type == CONFIG_LISTEN)
		return strcmp(x, y) == 0;
	return *(const unsigned int *)x == *(const unsigned int *)y;
}

int config_apply_reload(struct kaccess_config *running, const struct kaccess_config *fresh,
			void (*needs_restart)(const char *key))
{
	int applied = 0;

	for (size_t i = 0; i < sizeof(config_keys) / sizeof(config_keys[0]); i++) {
		const struct config_key *key = &config_keys[i];

		if (config_field_equal(key, running, fresh))
			continue;
		if (!key->reloadable) {
			needs_restart(key->name);
			continue;
		}
		memcpy((char *)running + key->offset, (const char *)fresh + key->offset,
		       sizeof(unsigned int)); /* every reloadable key is a number or a choice */
		applied++;
	}
	/* the resolver and the sender are set up once, at start */
	if (memcmp(&running->k8s, &fresh->k8s, sizeof(fresh->k8s)) != 0)
		needs_restart("k8s_*");
	if (memcmp(&running->oap, &fresh->oap, sizeof(fresh->oap)) != 0)
		needs_restart("oap_*");
	return applied;
}
