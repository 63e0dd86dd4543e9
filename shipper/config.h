/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The agent's settings: defaults, then the config file, then command-line
 * flags. config/kaccess.conf documents every key.
 */
#ifndef KACCESS_CONFIG_H
#define KACCESS_CONFIG_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "k8s/k8s.h"
#include "log.h"
#include "oap/oap.h"

enum output_format { OUTPUT_TABLE, OUTPUT_JSON, OUTPUT_NONE };

/* Which hooks see the syscalls; see bpf/transfer.bpf.c and the README. */
enum hooks_choice { HOOKS_AUTO, HOOKS_FENTRY, HOOKS_SOCK, HOOKS_FD, HOOKS_TCP };

/* Which HTTP exchanges become access-log records (shipper/http_records.c). */
enum http_log_policy { HTTP_LOG_ALL, HTTP_LOG_ERRORS_SLOW, HTTP_LOG_SAMPLED, HTTP_LOG_NONE };

struct kaccess_config {
	unsigned int output;                 /* enum output_format */
	unsigned int interval_s;             /* aggregation bucket length */
	unsigned int refresh_ms;             /* live table redraw period */
	unsigned int table_metrics;          /* entities off a terminal: 0 summary tables, 1 every metric too */
	unsigned int sweep_interval_s;       /* conn_table sweep period; 0 = never */
	char cgroup[PATH_MAX];               /* watched cgroup v2 subtree; "" = all */
	char pin_dir[PATH_MAX];              /* bpffs directory for pins; "" = none */
	char btf_path[PATH_MAX];             /* kernel BTF override; "" = the kernel's */
	char http_listen[64];                /* "ADDR:PORT" of /metrics, /healthz, /readyz; "" = off */
	unsigned int conn_table_max_entries;
	unsigned int agg_rows_max_entries;   /* per generation */
	unsigned int ringbuf_kib;
	unsigned int log_level;              /* enum log_level */
	unsigned int hooks;                  /* enum hooks_choice */
	unsigned int http_parse;             /* 1: parse HTTP/1.x on tracked connections */
	unsigned int l24;                    /* 1: L2-L4 timing of tracked connections' packets */
	unsigned int l24_netfilter;          /* 1: netfilter links for L3 and netfilter windows */
	unsigned int http_keep_query;        /* 1: endpoints keep the query string */
	unsigned int http_log_policy;        /* enum http_log_policy: records shipped, never metrics */
	unsigned int http_log_slow_ms;       /* errors_slow: an exchange this long or longer is slow */
	unsigned int http_log_sample_rate;   /* sampled: 1 exchange in N per connection */
	unsigned int http_rows_max_entries;  /* HTTP aggregate rows per generation */
	unsigned int http_conns_max_entries; /* HTTP connections parsed at once */
	struct k8s_config k8s;               /* k8s_* keys: shipper/k8s/README.md */
	struct oap_config oap;               /* oap_* keys: config/oap/README.md */
	unsigned int duration_s;             /* command line only: stop after; 0 = never */
	bool check_only;                     /* command line only: load, report, exit */
};

#define CONFIG_ERROR_LEN 512

void config_set_defaults(struct kaccess_config *cfg);

/*
 * Set one key from its text. 0, or -ENOENT for an unknown key and
 * -EINVAL/-ERANGE for a bad value, with a message in `err`.
 */
int config_set(struct kaccess_config *cfg, const char *key, const char *value,
	       char *err, size_t err_len);

/* Read `key = value` lines. On error `err` names the file, line and key. */
int config_load_file(struct kaccess_config *cfg, const char *path, char *err, size_t err_len);

/*
 * Copy into `running` the keys of `fresh` that may change while programs run
 * (output, refresh_ms, sweep_interval_s, log_level); call `needs_restart` for every other key
 * that differs. Returns how many keys were applied.
 */
int config_apply_reload(struct kaccess_config *running, const struct kaccess_config *fresh,
			void (*needs_restart)(const char *key));

/* Checks across keys (e.g. OAP's TLS files); 0 or -EINVAL with `err`. */
int config_check(const struct kaccess_config *cfg, char *err, size_t err_len);

/* Names of the keys, for --help. */
void config_print_keys(FILE *out);

#endif
