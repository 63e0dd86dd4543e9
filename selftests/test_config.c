// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* Unit tests of the strict parsers and the config file reader (no root). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "ktest.h"
#include "parse.h"

TEST(parse_u64_takes_only_whole_decimal_numbers_in_range)
{
	uint64_t value = 7;

	EXPECT_EQ(0, parse_u64("0", 0, 10, &value));
	EXPECT_EQ(0, value);
	EXPECT_EQ(0, parse_u64("18446744073709551615", 0, UINT64_MAX, &value));
	EXPECT_EQ(UINT64_MAX, value);
	EXPECT_EQ(-ERANGE, parse_u64("18446744073709551616", 0, UINT64_MAX, &value));
	EXPECT_EQ(-ERANGE, parse_u64("11", 0, 10, &value));
	EXPECT_EQ(-ERANGE, parse_u64("4", 5, 10, &value));
	EXPECT_EQ(-EINVAL, parse_u64("", 0, 10, &value));
	EXPECT_EQ(-EINVAL, parse_u64("-1", 0, 10, &value));
	EXPECT_EQ(-EINVAL, parse_u64(" 1", 0, 10, &value));
	EXPECT_EQ(-EINVAL, parse_u64("1 ", 0, 10, &value));
	EXPECT_EQ(-EINVAL, parse_u64("0x10", 0, 100, &value));
	EXPECT_EQ(-EINVAL, parse_u64("+3", 0, 10, &value));
	EXPECT_EQ(UINT64_MAX, value); /* untouched by every failure */
}

TEST(defaults_are_documented_values)
{
	struct kaccess_config cfg;

	config_set_defaults(&cfg);
	EXPECT_EQ(OUTPUT_TABLE, cfg.output);
	EXPECT_EQ(60, cfg.interval_s);
	EXPECT_EQ(2000, cfg.refresh_ms);
	EXPECT_STREQ("", cfg.cgroup);
	EXPECT_STREQ("/sys/fs/bpf/kaccess", cfg.pin_dir);
	EXPECT_EQ(131072, cfg.conn_table_max_entries);
	EXPECT_EQ(16384, cfg.agg_rows_max_entries);
	EXPECT_EQ(8192, cfg.ringbuf_kib);
	EXPECT_EQ(300, cfg.sweep_interval_s);
	EXPECT_EQ(LOG_LEVEL_INFO, cfg.log_level);
	EXPECT_EQ(HOOKS_AUTO, cfg.hooks);
}

/* The shipped config/kaccess.conf states every default: loading it changes nothing. */
TEST(shipped_config_file_matches_defaults)
{
	struct kaccess_config defaults, loaded;
	char err[CONFIG_ERROR_LEN] = "";

	config_set_defaults(&defaults);
	config_set_defaults(&loaded);
	ASSERT_EQ(0, config_load_file(&loaded, "config/kaccess.conf", err, sizeof(err)))
		TH_LOG("%s", err);
	EXPECT_EQ(0, memcmp(&defaults, &loaded, sizeof(defaults)));
}

TEST(config_file_values_comments_and_quotes)
{
	const char *path = "/tmp/kaccess-selftest-unit.conf";
	struct kaccess_config cfg;
	char err[CONFIG_ERROR_LEN] = "";
	FILE *file = fopen(path, "w");

	ASSERT_NE(NULL, file);
	fputs("# a comment\n\n   output   =   json  \ninterval_s=5\ncgroup = \"/kube pods\"\n"
	      "pin_dir =\nlog_level = debug\nringbuf_kib = 1024\n", file);
	fclose(file);
	config_set_defaults(&cfg);
	ASSERT_EQ(0, config_load_file(&cfg, path, err, sizeof(err))) TH_LOG("%s", err);
	EXPECT_EQ(OUTPUT_JSON, cfg.output);
	EXPECT_EQ(5, cfg.interval_s);
	EXPECT_STREQ("/kube pods", cfg.cgroup);
	EXPECT_STREQ("", cfg.pin_dir);
	EXPECT_EQ(LOG_LEVEL_DEBUG, cfg.log_level);
	EXPECT_EQ(1024, cfg.ringbuf_kib);
	unlink(path);
}

TEST(config_errors_name_key_and_keep_old_value)
{
	struct kaccess_config cfg;
	char err[CONFIG_ERROR_LEN];

	config_set_defaults(&cfg);
	EXPECT_EQ(-ENOENT, config_set(&cfg, "intervals", "5", err, sizeof(err)));
	EXPECT_STREQ("unknown key 'intervals'", err);
	EXPECT_EQ(-ERANGE, config_set(&cfg, "interval_s", "3601", err, sizeof(err)));
	EXPECT_STREQ("interval_s: '3601' is not an integer in 1..3600 (seconds)", err);
	EXPECT_EQ(-EINVAL, config_set(&cfg, "refresh_ms", "fast", err, sizeof(err)));
	EXPECT_EQ(-ERANGE, config_set(&cfg, "ringbuf_kib", "48", err, sizeof(err)));
	EXPECT_STREQ("ringbuf_kib: '48' is not a power of two in 16..65536 (KiB)", err);
	EXPECT_EQ(-EINVAL, config_set(&cfg, "log_level", "loud", err, sizeof(err)));
	EXPECT_STREQ("log_level: 'loud' is not one of: error, warn, info, debug", err);
	EXPECT_EQ(60, cfg.interval_s);
	EXPECT_EQ(2000, cfg.refresh_ms);
	EXPECT_EQ(8192, cfg.ringbuf_kib);
	EXPECT_EQ(300, cfg.sweep_interval_s);
	EXPECT_EQ(LOG_LEVEL_INFO, cfg.log_level);
}

TEST_HARNESS_MAIN
