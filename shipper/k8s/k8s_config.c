// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* The k8s_* config keys, and kubeconfig files (YAML, or JSON which YAML reads). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <yaml.h>

#include "k8s.h"
#include "base64.h"
#include "parse.h"

#define KUBECONFIG_MAX_BYTES (4 << 20)
#define YAML_MAX_DEPTH 32

void k8s_config_set_defaults(struct k8s_config *cfg)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->enabled = K8S_ENABLED_AUTO;
	snprintf(cfg->service_account_dir, sizeof(cfg->service_account_dir), "%s",
		 "/var/run/secrets/kubernetes.io/serviceaccount");
	cfg->unselected_pod_rule = K8S_UNSELECTED_OWNER;
	cfg->max_pods = 100000;
	cfg->max_services = 20000;
	cfg->deleted_grace_s = 120;
	cfg->list_page_size = 500;
	cfg->watch_timeout_s = 300;
	cfg->idle_timeout_s = 30;
	cfg->backoff_min_ms = 500;
	cfg->backoff_max_ms = 30000;
	cfg->conntrack = true;
}

enum key_type { KEY_STRING, KEY_UINT, KEY_CHOICE, KEY_NAMESPACES };

struct k8s_key {
	const char *name;
	enum key_type type;
	size_t offset, size;
	unsigned int min, max; /* KEY_UINT */
	const char *unit;
	const char *const *choices; /* KEY_CHOICE, stored as int */
};

static const char *const enabled_choices[] = { "auto", "true", "false", NULL };
static const char *const unselected_choices[] = { "owner", "pod", "unknown", NULL };
static const char *const bool_choices[] = { "false", "true", NULL };

#define STRING_KEY(field) \
	{ "k8s_" #field, KEY_STRING, offsetof(struct k8s_config, field), \
	  sizeof(((struct k8s_config *)0)->field), 0, 0, NULL, NULL }
#define UINT_KEY(field, lo, hi, unit_text) \
	{ "k8s_" #field, KEY_UINT, offsetof(struct k8s_config, field), sizeof(unsigned int), \
	  lo, hi, unit_text, NULL }

static const struct k8s_key k8s_keys[] = {
	{ "k8s_enabled", KEY_CHOICE, offsetof(struct k8s_config, enabled), 0, 0, 0, NULL,
	  enabled_choices },
	STRING_KEY(api_server),
	STRING_KEY(kubeconfig),
	STRING_KEY(service_account_dir),
	STRING_KEY(node_name),
	STRING_KEY(cluster_name),
	{ "k8s_exclude_namespaces", KEY_NAMESPACES, offsetof(struct k8s_config, exclude_namespaces),
	  K8S_CONFIG_LIST_LEN, 0, 0, NULL, NULL },
	{ "k8s_include_namespaces", KEY_NAMESPACES, offsetof(struct k8s_config, include_namespaces),
	  K8S_CONFIG_LIST_LEN, 0, 0, NULL, NULL },
	{ "k8s_unselected_pod_rule", KEY_CHOICE, offsetof(struct k8s_config, unselected_pod_rule),
	  0, 0, 0, NULL, unselected_choices },
	UINT_KEY(max_pods, 1, 10000000, "pods"),
	UINT_KEY(max_services, 1, 1000000, "services"),
	UINT_KEY(deleted_grace_s, 0, 3600, "seconds"),
	UINT_KEY(list_page_size, 1, 100000, "items"),
	UINT_KEY(watch_timeout_s, 1, 3600, "seconds"),
	UINT_KEY(idle_timeout_s, 1, 3600, "seconds"),
	UINT_KEY(backoff_min_ms, 1, 600000, "milliseconds"),
	UINT_KEY(backoff_max_ms, 1, 3600000, "milliseconds"),
	{ "k8s_conntrack", KEY_CHOICE, offsetof(struct k8s_config, conntrack), 0, 0, 0, NULL,
	  bool_choices },
};

/* A DNS label, as namespace names are: [a-z0-9-], 1..63, no dash at the ends. */
static bool is_dns_label(const char *name, size_t len)
{
	if (len == 0 || len > 63 || name[0] == '-' || name[len - 1] == '-')
		return false;
	for (size_t i = 0; i < len; i++)
		if (!((name[i] >= 'a' && name[i] <= 'z') || (name[i] >= '0' && name[i] <= '9') ||
		      name[i] == '-'))
			return false;
	return true;
}

/* "a, b,c" -> "a,b,c"; every item a DNS label. */
static int normalize_namespaces(const char *value, char *ret_list, size_t len)
{
	char list[K8S_CONFIG_LIST_LEN];
	size_t used = 0;

	for (const char *item = value; *item;) {
		size_t item_len;

		while (*item == ' ' || *item == '\t')
			item++;
		item_len = strcspn(item, ", \t");
		if (!is_dns_label(item, item_len))
			return -EINVAL;
		if (used + item_len + 2 > sizeof(list) || used + item_len + 2 > len)
			return -ERANGE;
		if (used)
			list[used++] = ',';
		memcpy(list + used, item, item_len);
		used += item_len;
		item += item_len;
		while (*item == ' ' || *item == '\t')
			item++;
		if (*item == ',')
			item++;
		else if (*item)
			return -EINVAL;
	}
	list[used] = '\0';
	memcpy(ret_list, list, used + 1);
	return 0;
}

static void join_choices(const char *const *choices, char *out, size_t len)
{
	size_t used = 0;

	out[0] = '\0';
	for (int i = 0; choices[i] && used < len; i++)
		used += snprintf(out + used, len - used, "%s%s", i ? ", " : "", choices[i]);
}

static int set_key(struct k8s_config *cfg, const struct k8s_key *key, const char *value, char *err,
		   size_t err_len)
{
	char *field = (char *)cfg + key->offset;
	char choices[128];
	unsigned int number;
	int choice, ret;

	switch (key->type) {
	case KEY_STRING:
		if (strlen(value) >= key->size) {
			snprintf(err, err_len, "%s: value longer than %zu bytes", key->name,
				 key->size - 1);
			return -ERANGE;
		}
		memcpy(field, value, strlen(value) + 1);
		return 0;
	case KEY_UINT:
		ret = parse_uint(value, key->min, key->max, &number);
		if (ret) {
			snprintf(err, err_len, "%s: '%s' is not an integer in %u..%u (%s)", key->name,
				 value, key->min, key->max, key->unit);
			return ret;
		}
		memcpy(field, &number, sizeof(number));
		return 0;
	case KEY_CHOICE:
		choice = parse_choice(value, key->choices);
		if (choice < 0) {
			join_choices(key->choices, choices, sizeof(choices));
			snprintf(err, err_len, "%s: '%s' is not one of: %s", key->name, value, choices);
			return -EINVAL;
		}
		if (key->choices == bool_choices)
			*(bool *)field = choice;
		else
			*(int *)field = choice;
		return 0;
	case KEY_NAMESPACES:
		ret = normalize_namespaces(value, field, key->size);
		if (ret)
			snprintf(err, err_len,
				 "%s: '%s' is not a comma-separated list of namespace names", key->name,
				 value);
		return ret;
	}
	return -EINVAL;
}

int k8s_config_set(struct k8s_config *cfg, const char *key, const char *value, char *err,
		   size_t err_len)
{
	for (size_t i = 0; i < sizeof(k8s_keys) / sizeof(k8s_keys[0]); i++)
		if (strcmp(key, k8s_keys[i].name) == 0)
			return set_key(cfg, &k8s_keys[i], value, err, err_len);
	snprintf(err, err_len, "unknown key '%s'", key);
	return -ENOENT;
}

/* ---- kubeconfig ---- */

static int read_file_text(const char *path, size_t max_bytes, char **ret_text, size_t *ret_len)
{
	FILE *file = fopen(path, "re");
	size_t capacity = 4096, used = 0;
	char *text = NULL;
	int err = 0;

	if (!file)
		return -errno;
	for (;;) {
		char *grown;
		size_t got;

		if (used + 1 >= capacity || !text) {
			if (text)
				capacity *= 2;
			grown = realloc(text, capacity);
			if (!grown) {
				err = -ENOMEM;
				break;
			}
			text = grown;
		}
		got = fread(text + used, 1, capacity - used - 1, file);
		used += got;
		if (used > max_bytes) {
			err = -EFBIG;
			break;
		}
		if (got == 0) {
			if (ferror(file))
				err = -EIO;
			break;
		}
	}
	fclose(file);
	if (err) {
		free(text);
		return err;
	}
	text[used] = '\0';
	*ret_text = text;
	if (ret_len)
		*ret_len = used;
	return 0;
}

static json_object *yaml_node(yaml_parser_t *parser, yaml_event_t *first, int depth);

/* The events after a MAPPING-START or SEQUENCE-START, up to its end. */
static json_object *yaml_collection(yaml_parser_t *parser, bool mapping, int depth)
{
	json_object *result = mapping ? json_object_new_object() : json_object_new_array();
	yaml_event_type_t end = mapping ? YAML_MAPPING_END_EVENT : YAML_SEQUENCE_END_EVENT;

	for (;;) {
		yaml_event_t event;
		json_object *key = NULL, *value;

		if (!yaml_parser_parse(parser, &event))
			goto fail;
		if (event.type == end) {
			yaml_event_delete(&event);
			return result;
		}
		if (mapping) {
			key = yaml_node(parser, &event, depth + 1);
			if (!key || !json_object_is_type(key, json_type_string)) {
				json_object_put(key);
				goto fail;
			}
			if (!yaml_parser_parse(parser, &event)) {
				json_object_put(key);
				goto fail;
			}
		}
		value = yaml_node(parser, &event, depth + 1);
		if (!value) {
			json_object_put(key);
			goto fail;
		}
		if (mapping) {
			json_object_object_add(result, json_object_get_string(key), value);
			json_object_put(key);
		} else {
			json_object_array_add(result, value);
		}
	}
fail:
	json_object_put(result);
	return NULL;
}

/* One node whose first event is `first` (consumed); NULL on error. */
static json_object *yaml_node(yaml_parser_t *parser, yaml_event_t *first, int depth)
{
	json_object *node = NULL;

	if (depth > YAML_MAX_DEPTH) {
		yaml_event_delete(first);
		return NULL;
	}
	switch (first->type) {
	case YAML_SCALAR_EVENT:
		node = json_object_new_string_len((const char *)first->data.scalar.value,
						  (int)first->data.scalar.length);
		break;
	case YAML_MAPPING_START_EVENT:
		node = yaml_collection(parser, true, depth);
		break;
	case YAML_SEQUENCE_START_EVENT:
		node = yaml_collection(parser, false, depth);
		break;
	default: /* aliases are not used by kubeconfigs */
		break;
	}
	yaml_event_delete(first);
	return node;
}

/* The first document of a YAML (or JSON) text as a json-c tree, scalars as strings. */
static int yaml_to_json(const char *text, size_t len, json_object **ret_root)
{
	yaml_parser_t parser;
	yaml_event_t event;
	json_object *root = NULL;

	if (!yaml_parser_initialize(&parser))
		return -ENOMEM;
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	/* STREAM-START, DOCUMENT-START, then the root node. */
	for (int i = 0; i < 3; i++) {
		if (!yaml_parser_parse(&parser, &event))
			break;
		if (i < 2) {
			yaml_event_delete(&event);
			continue;
		}
		root = yaml_node(&parser, &event, 0);
	}
	yaml_parser_delete(&parser);
	if (!root)
		return -EINVAL;
	*ret_root = root;
	return 0;
}

static const char *json_string_at(json_object *obj, const char *key)
{
	json_object *value;

	if (!obj || !json_object_object_get_ex(obj, key, &value) ||
	    !json_object_is_type(value, json_type_string))
		return NULL;
	return json_object_get_string(value);
}

/* The "<what>" member of the item of list `list` whose name is `name`. */
static json_object *named_item(json_object *root, const char *list, const char *name,
			       const char *what)
{
	json_object *items, *value;
	size_t count;

	if (!name || !json_object_object_get_ex(root, list, &items) ||
	    !json_object_is_type(items, json_type_array))
		return NULL;
	count = json_object_array_length(items);
	for (size_t i = 0; i < count; i++) {
		json_object *item = json_object_array_get_idx(items, i);
		const char *item_name = json_string_at(item, "name");

		if (item_name && strcmp(item_name, name) == 0 &&
		    json_object_object_get_ex(item, what, &value) &&
		    json_object_is_type(value, json_type_object))
			return value;
	}
	return NULL;
}

/* Standard or URL-safe base64, whitespace ignored, '=' ends it; NUL-terminated. */
static int base64_decode_alloc(const char *text, char **ret_data)
{
	size_t len = strlen(text), size = len / 4 * 3 + 4;
	char *data = malloc(size);
	int err;

	if (!data)
		return -ENOMEM;
	err = base64_decode(text, len, data, size);
	if (err < 0) {
		free(data);
		return err;
	}
	*ret_data = data;
	return 0;
}

/*
 * `<key>-data` (base64) or `<key>` (a file path, relative to the kubeconfig's
 * directory as kubectl resolves it) into *ret_pem; absent is not an error.
 */
static int load_pem(json_object *obj, const char *key, const char *base_dir, char **ret_pem)
{
	char data_key[64], path[K8S_CONFIG_PATH_LEN * 2];
	const char *text, *file;

	snprintf(data_key, sizeof(data_key), "%s-data", key);
	text = json_string_at(obj, data_key);
	if (text)
		return base64_decode_alloc(text, ret_pem);
	file = json_string_at(obj, key);
	if (!file)
		return 0;
	if (file[0] == '/')
		snprintf(path, sizeof(path), "%s", file);
	else
		snprintf(path, sizeof(path), "%s/%s", base_dir, file);
	return read_file_text(path, KUBECONFIG_MAX_BYTES, ret_pem, NULL);
}

void k8s_kubeconfig_clear(struct k8s_kubeconfig *config)
{
	free(config->ca_pem);
	free(config->client_cert_pem);
	free(config->client_key_pem);
	free(config->token);
	memset(config, 0, sizeof(*config));
}

static void strip_trailing_newlines(char *text)
{
	size_t len = text ? strlen(text) : 0;

	while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
		text[--len] = '\0';
}

static int kubeconfig_user(json_object *user, const char *base_dir, struct k8s_kubeconfig *config,
			   char *err, size_t err_len)
{
	const char *token = json_string_at(user, "token"), *token_file;
	int ret;

	if (token) {
		config->token = strdup(token);
		if (!config->token)
			return -ENOMEM;
	} else if ((token_file = json_string_at(user, "tokenFile"))) {
		ret = read_file_text(token_file, 1 << 20, &config->token, NULL);
		if (ret) {
			snprintf(err, err_len, "kubeconfig: failed to read tokenFile %s: %s",
				 token_file, strerror(-ret));
			return ret;
		}
		strip_trailing_newlines(config->token);
	}
	ret = load_pem(user, "client-certificate", base_dir, &config->client_cert_pem);
	if (!ret)
		ret = load_pem(user, "client-key", base_dir, &config->client_key_pem);
	if (ret)
		snprintf(err, err_len, "kubeconfig: failed to load the client certificate or key: %s",
			 strerror(-ret));
	return ret;
}

static int kubeconfig_from_tree(json_object *root, const char *base_dir,
				struct k8s_kubeconfig *config, char *err, size_t err_len)
{
	const char *context_name = json_string_at(root, "current-context"), *server, *insecure;
	json_object *context, *cluster, *user;
	int ret;

	context = named_item(root, "contexts", context_name, "context");
	if (!context) {
		snprintf(err, err_len, "kubeconfig: no context named current-context '%s'",
			 context_name ? context_name : "");
		return -EINVAL;
	}
	cluster = named_item(root, "clusters", json_string_at(context, "cluster"), "cluster");
	server = json_string_at(cluster, "server");
	if (!server || snprintf(config->server, sizeof(config->server), "%s", server) >=
			       (int)sizeof(config->server)) {
		snprintf(err, err_len, "kubeconfig: context '%s' has no cluster with a server",
			 context_name);
		return -EINVAL;
	}
	insecure = json_string_at(cluster, "insecure-skip-tls-verify");
	config->insecure = insecure && strcmp(insecure, "true") == 0;
	ret = load_pem(cluster, "certificate-authority", base_dir, &config->ca_pem);
	if (ret) {
		snprintf(err, err_len, "kubeconfig: failed to load the certificate authority: %s",
			 strerror(-ret));
		return ret;
	}
	user = named_item(root, "users", json_string_at(context, "user"), "user");
	return user ? kubeconfig_user(user, base_dir, config, err, err_len) : 0;
}

int k8s_kubeconfig_load(const char *path, struct k8s_kubeconfig *ret_config, char *err,
			size_t err_len)
{
	struct k8s_kubeconfig config = { 0 };
	char base_dir[K8S_CONFIG_PATH_LEN], *text = NULL, *slash;
	json_object *root = NULL;
	size_t len;
	int ret;

	snprintf(base_dir, sizeof(base_dir), "%s", path);
	slash = strrchr(base_dir, '/');
	if (slash)
		*slash = '\0';
	else
		snprintf(base_dir, sizeof(base_dir), ".");
	ret = read_file_text(path, KUBECONFIG_MAX_BYTES, &text, &len);
	if (ret) {
		snprintf(err, err_len, "failed to read kubeconfig %s: %s", path, strerror(-ret));
		return ret;
	}
	ret = yaml_to_json(text, len, &root);
	free(text);
	if (ret || !json_object_is_type(root, json_type_object)) {
		snprintf(err, err_len, "kubeconfig %s: not a YAML or JSON mapping", path);
		json_object_put(root);
		return -EINVAL;
	}
	ret = kubeconfig_from_tree(root, base_dir, &config, err, err_len);
	json_object_put(root);
	if (ret) {
		k8s_kubeconfig_clear(&config);
		return ret;
	}
	*ret_config = config;
	return 0;
}

/* Used by the client for service account files too. */
int k8s_read_small_file(const char *path, char **ret_text);

int k8s_read_small_file(const char *path, char **ret_text)
{
	int ret = read_file_text(path, 1 << 20, ret_text, NULL);

	if (!ret)
		strip_trailing_newlines(*ret_text);
	return ret;
}
