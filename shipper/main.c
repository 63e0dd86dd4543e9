// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/*
 * kaccess: watch every TCP connection of this node's processes in the
 * kernel and report per-bucket connection and transfer metrics.
 *
 * Exit codes: 0 stopped normally, 1 runtime failure, 2 usage or config error.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>

#include "agent.h"
#include "cgroups.h"
#include "config.h"
#include "kaccess.skel.h"
#include "log.h"
#include "loop.h"
#include "oap/oap.h"
#include "parse.h"
#include "sink.h"
#include "status.h"

#define EXIT_RUNTIME 1
#define EXIT_USAGE 2
#define JSON_OUTPUT_BUFFER_BYTES (256 * 1024)

static const char usage_text[] =
	"Usage: kaccess [OPTIONS]\n"
	"       kaccess status [--pin-dir DIR] [--json]\n"
	"\n"
	"Track every TCP connection of this node's processes with eBPF and report,\n"
	"per time bucket, connect/accept/close and read/write counts, durations and\n"
	"bytes, aggregated in the kernel per (cgroup, peer, role).\n"
	"\n"
	"Options:\n"
	"  -c, --config FILE      read settings from FILE (see config/kaccess.conf)\n"
	"  -o, --output FORMAT    table (live view, default), json (NDJSON on stdout)\n"
	"                         or none (numbers only on /metrics)\n"
	"  -i, --interval SECONDS bucket length, 1..3600 (default 60, OAP's minute)\n"
	"      --cgroup PATH      watch only processes under this cgroup v2 directory\n"
	"      --pin-dir DIR      pin inspectable maps here ('' = none;\n"
	"                         default /sys/fs/bpf/kaccess)\n"
	"      --duration SECONDS stop after SECONDS (default: run until SIGINT/SIGTERM)\n"
	"      --check            load every program without attaching, print each one's\n"
	"                         verified instruction count, and exit\n"
	"  -s, --set KEY=VALUE    set any config key (repeatable)\n"
	"  -v, --verbose          debug logging (same as --set log_level=debug)\n"
	"  -V, --version          print the version and exit\n"
	"  -h, --help             print this help and exit\n"
	"\n"
	"Examples:\n"
	"  kaccess                                  live table of all connections\n"
	"  kaccess -o json -i 10                    NDJSON, one bucket every 10 s\n"
	"  kaccess --cgroup /kubepods               only Kubernetes pods\n"
	"  kaccess --check                          does everything load on this kernel?\n"
	"  kaccess -o json --duration 60 > out.json record one minute\n"
	"  kaccess status                           maps, losses, programs of the agent\n"
	"  bpftool map dump pinned /sys/fs/bpf/kaccess/conn_table\n"
	"\n"
	"Config keys (file lines 'key = value'; flags override the file):\n";

static void print_usage(FILE *out)
{
	fputs(usage_text, out);
	config_print_keys(out);
	fputs("\nExit status: 0 stopped by a signal or --duration, 1 runtime failure,\n"
	      "2 usage or configuration error.\n", out);
}

enum long_only_option { OPT_CGROUP = 256, OPT_PIN_DIR, OPT_DURATION, OPT_CHECK };

static const struct option long_options[] = {
	{ "config", required_argument, NULL, 'c' },
	{ "output", required_argument, NULL, 'o' },
	{ "interval", required_argument, NULL, 'i' },
	{ "cgroup", required_argument, NULL, OPT_CGROUP },
	{ "pin-dir", required_argument, NULL, OPT_PIN_DIR },
	{ "duration", required_argument, NULL, OPT_DURATION },
	{ "check", no_argument, NULL, OPT_CHECK },
	{ "set", required_argument, NULL, 's' },
	{ "verbose", no_argument, NULL, 'v' },
	{ "version", no_argument, NULL, 'V' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};
static const char short_options[] = "c:o:i:s:vVh";

static int set_from_flag(struct kaccess_config *cfg, const char *flag, const char *key,
			 const char *value)
{
	char err[CONFIG_ERROR_LEN];

	if (config_set(cfg, key, value, err, sizeof(err))) {
		log_err("%s: %s", flag, err);
		return -EINVAL;
	}
	return 0;
}

static int set_key_value(struct kaccess_config *cfg, char *assignment)
{
	char *equals = strchr(assignment, '=');

	if (!equals) {
		log_err("--set: expected KEY=VALUE, got '%s'", assignment);
		return -EINVAL;
	}
	*equals = '\0';
	return set_from_flag(cfg, "--set", assignment, equals + 1);
}

static int apply_option(struct kaccess_config *cfg, int option, char *arg)
{
	switch (option) {
	case 'c':
		return 0; /* read before the other flags */
	case 'o':
		return set_from_flag(cfg, "--output", "output", arg);
	case 'i':
		return set_from_flag(cfg, "--interval", "interval_s", arg);
	case OPT_CGROUP:
		return set_from_flag(cfg, "--cgroup", "cgroup", arg);
	case OPT_PIN_DIR:
		return set_from_flag(cfg, "--pin-dir", "pin_dir", arg);
	case OPT_DURATION:
		if (parse_uint(arg, 1, 31 * 24 * 3600, &cfg->duration_s)) {
			log_err("--duration: '%s' is not an integer in 1..2678400 (seconds)", arg);
			return -EINVAL;
		}
		return 0;
	case OPT_CHECK:
		cfg->check_only = true;
		return 0;
	case 's':
		return set_key_value(cfg, arg);
	case 'v':
		cfg->log_level = LOG_LEVEL_DEBUG;
		return 0;
	default:
		return -EINVAL;
	}
}

/*
 * Defaults, then the file named by --config, then every other flag in order.
 * Returns 0 to run, 1 when --help/--version were handled, or -EINVAL.
 */
static int parse_command_line(int argc, char **argv, struct kaccess_config *cfg)
{
	char err[CONFIG_ERROR_LEN];
	const char *config_path = NULL;
	int option;

	config_set_defaults(cfg);
	opterr = 0;
	while ((option = getopt_long(argc, argv, short_options, long_options, NULL)) != -1) {
		if (option == 'h') {
			print_usage(stdout);
			return 1;
		}
		if (option == 'V') {
			printf("kaccess %s (%s)\n", KACCESS_VERSION, KACCESS_GIT_REV);
			return 1;
		}
		if (option == 'c')
			config_path = optarg;
		if (option == '?') {
			log_err("unknown or incomplete option '%s'; see kaccess --help", argv[optind - 1]);
			return -EINVAL;
		}
	}
	if (optind < argc) {
		log_err("unexpected argument '%s'; see kaccess --help", argv[optind]);
		return -EINVAL;
	}
	if (config_path && config_load_file(cfg, config_path, err, sizeof(err))) {
		log_err("config %s", err);
		return -EINVAL;
	}
	optind = 1;
	while ((option = getopt_long(argc, argv, short_options, long_options, NULL)) != -1)
		if (apply_option(cfg, option, optarg))
			return -EINVAL;
	if (config_check(cfg, err, sizeof(err))) {
		log_err("config: %s", err);
		return -EINVAL;
	}
	return 0;
}

static void on_stop_signal(int signo)
{
	loop_stop_requested = 1;
}

static void on_reload_signal(int signo)
{
	loop_reload_requested = 1;
}

static void install_signal_handlers(void)
{
	struct sigaction stop = { .sa_handler = on_stop_signal }; /* no SA_RESTART: wake poll */
	struct sigaction reload = { .sa_handler = on_reload_signal };

	sigaction(SIGINT, &stop, NULL);
	sigaction(SIGTERM, &stop, NULL);
	sigaction(SIGHUP, &reload, NULL);
	signal(SIGPIPE, SIG_IGN);
}

/* --check: the verifier's view of every program this kernel would run. */
static int check_programs(const struct kaccess_config *cfg)
{
	struct agent agent = { .lock_fd = -1 };
	int err = agent_mount_filesystems(cfg);

	err = err ?: agent_load(&agent, cfg, true); /* every program as it can run */
	if (!err) {
		if (cfg->output != OUTPUT_JSON)
			printf("hooks: %s\n", agent.hooks);
		err = agent_print_programs(&agent, cfg->output == OUTPUT_JSON, stdout);
	}
	agent_destroy(&agent);
	return err;
}

/* What a SIGHUP needs: the command line to re-read, the sinks to switch. */
static struct {
	int argc;
	char **argv;
	struct sink *output;
	struct sink_env env;
	bool records_off; /* the kernel sends no access-log records: no reader at start */
} running;

/*
 * The kernel sends per-exchange records only when something ships them:
 * NDJSON lines, or OAP's access logs (which need the Kubernetes names).
 * Counting them costs the shipper ~3 µs an exchange even when dropped.
 */
static bool records_have_a_reader(const struct kaccess_config *cfg)
{
	return cfg->output == OUTPUT_JSON ||
	       (cfg->oap.address[0] && oap_mode_sends_access_logs(cfg->oap.mode));
}

static void init_output_sink(struct sink *sink, const struct kaccess_config *cfg,
			     const struct sink_env *env)
{
	if (cfg->output == OUTPUT_JSON)
		sink_json_init(sink, env);
	else if (cfg->output == OUTPUT_NONE)
		sink_none_init(sink, env);
	else
		sink_table_init(sink, env);
}

static void report_needs_restart(const char *key)
{
	log_warn("config reload: '%s' changed but only takes effect after a restart", key);
}

/* SIGHUP: the config file and flags again; an invalid config changes nothing. */
static int reload_config(struct kaccess_config *cfg)
{
	struct kaccess_config fresh;
	unsigned int old_output = cfg->output;
	int applied;

	optind = 0; /* glibc: restart getopt from scratch */
	if (parse_command_line(running.argc, running.argv, &fresh)) {
		log_err("config reload rejected; keeping the running settings");
		return -EINVAL;
	}
	applied = config_apply_reload(cfg, &fresh, report_needs_restart);
	log_max_level = cfg->log_level;
	if (cfg->output != old_output)
		init_output_sink(running.output, cfg, &running.env);
	if (running.records_off && records_have_a_reader(cfg))
		log_warn("config reload: HTTP access-log records were off at start (no reader); "
			 "they start with a restart");
	log_info("config reloaded: %d setting%s changed", applied, applied == 1 ? "" : "s");
	return 0;
}

/*
 * The Kubernetes resolver, when configured (k8s_* keys, a kubeconfig or
 * the in-cluster environment): 0 with *ret_k8s NULL when it is not.
 */
static int start_k8s(const struct kaccess_config *cfg, struct k8s **ret_k8s)
{
	char err_text[K8S_ERROR_LEN];
	struct k8s *k8s = NULL;
	int err;

	*ret_k8s = NULL;
	err = k8s_new(&cfg->k8s, &k8s, err_text, sizeof(err_text));
	if (err == -ENODEV) {
		log_info("no Kubernetes API configured: entities are not named");
		return 0;
	}
	if (err) {
		log_err("failed to set up the Kubernetes client: %s", err_text);
		return err;
	}
	err = k8s_start(k8s);
	if (err) {
		log_err("failed to start the Kubernetes watch: %s", strerror(-err));
		k8s_free(k8s);
		return err;
	}
	*ret_k8s = k8s;
	return 0;
}

/*
 * NDJSON leaves in large writes. With stdio's default buffer (st_blksize,
 * 4 KiB) 60,000 access-log records a second were 10,000 write() calls, and
 * once a pass's flush had left the file offset unaligned, each of them
 * began and ended inside a file block: on 6.18's ext4 a small unaligned
 * write zeroes its new blocks first (memset was 15% of the machine's CPU
 * in make bench's HTTP/2 run). The event loop still flushes every pass,
 * so a reader waits no longer for a line. glibc ignores the size unless
 * the buffer is given.
 */
static void buffer_json_output(void)
{
	static char buffer[JSON_OUTPUT_BUFFER_BYTES];

	setvbuf(stdout, buffer, _IOFBF, sizeof(buffer));
}

static int run_agent(struct kaccess_config *cfg)
{
	struct agent agent = { .lock_fd = -1 };
	struct cgroup_names *cgroups = NULL;
	struct sink output, prometheus = { 0 }, entities = { 0 };
	struct sink *sinks[3];
	size_t sink_count = 0;
	struct k8s *k8s = NULL;
	struct agent_info info;
	struct utsname uts;
	int err;

	if (cfg->output == OUTPUT_JSON)
		buffer_json_output();
	err = agent_mount_filesystems(cfg);
	err = err ?: cgroup_names_new(&cgroups);
	if (err) {
		if (!cgroups)
			log_err("failed to find the cgroup v2 hierarchy: %s", strerror(-err));
		goto out;
	}
	running.records_off = !records_have_a_reader(cfg);
	err = agent_load(&agent, cfg, !running.records_off);
	err = err ?: agent_attach(&agent);
	err = err ?: agent_adopt_existing(&agent);
	err = err ?: agent_pin(&agent, cfg->pin_dir);
	if (err)
		goto out;
	running.env = (struct sink_env){
		.cgroups = cgroups,
		.endpoints = agent.endpoints,
		.bucket_ns = agent.bucket_ns,
		.l24_measured = agent.l24_measured,
		.wall_offset_ns = &agent.skel->bss->wall_offset_ns,
		.out = stdout,
	};
	running.output = &output;
	err = start_k8s(cfg, &k8s);
	if (err)
		goto out;
	if (!k8s && cfg->oap.address[0])
		log_warn("oap_address is set but no Kubernetes API is: nothing is named, no meters are sent");
	/* entities first: a bucket's entity lines come before its "bucket" line */
	if (k8s) {
		err = sink_entities_init(&entities, &running.env, cfg, k8s);
		if (err)
			goto out;
		sinks[sink_count++] = &entities;
	}
	init_output_sink(&output, cfg, &running.env);
	sinks[sink_count++] = &output;
	if (cfg->http_listen[0]) {
		err = sink_prometheus_init(&prometheus, &running.env, &agent, cfg->http_listen);
		if (err)
			goto out;
		sinks[sink_count++] = &prometheus;
	}
	uname(&uts);
	info = (struct agent_info){
		.kernel_release = uts.release,
		.watched_cgroup = cfg->cgroup,
		.pin_dir = cfg->pin_dir,
		.hooks = agent.hooks,
		.programs_attached = agent.programs_attached + agent_netfilter_programs(&agent),
		.programs_not_attached = agent.programs_not_attached,
	};
	for (size_t i = 0; i < sink_count; i++)
		sinks[i]->ops->ready(sinks[i], &info);
	err = loop_run(&agent, cfg, sinks, sink_count, reload_config);
out:
	/* the output sink is not closed: a reload may have switched it */
	for (size_t i = 0; i < sink_count; i++)
		if (sinks[i] != &output && sinks[i]->ops->close)
			sinks[i]->ops->close(sinks[i]);
	k8s_free(k8s);
	agent_destroy(&agent);
	cgroup_names_free(cgroups);
	return err;
}

int main(int argc, char **argv)
{
	struct kaccess_config cfg;
	int ret;

	if (argc > 1 && strcmp(argv[1], "status") == 0)
		return status_main(argc - 1, argv + 1);
	ret = parse_command_line(argc, argv, &cfg);
	if (ret)
		return ret > 0 ? EXIT_SUCCESS : EXIT_USAGE;
	running.argc = argc;
	running.argv = argv;
	log_max_level = cfg.log_level;
	log_install_libbpf_printer();
	install_signal_handlers();
	ret = cfg.check_only ? check_programs(&cfg) : run_agent(&cfg);
	return ret == -EINVAL ? EXIT_USAGE : ret ? EXIT_RUNTIME : EXIT_SUCCESS;
}
