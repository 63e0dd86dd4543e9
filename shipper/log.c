// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <stdarg.h>
#include <stdio.h>
#include <bpf/libbpf.h>

#include "log.h"

enum log_level log_max_level = LOG_LEVEL_INFO;

static const char *const level_prefix[] = {
	[LOG_LEVEL_ERROR] = "error: ",
	[LOG_LEVEL_WARN] = "warning: ",
	[LOG_LEVEL_INFO] = "",
	[LOG_LEVEL_DEBUG] = "debug: ",
};

__attribute__((format(printf, 2, 0)))
static void log_vmessage(enum log_level level, const char *fmt, va_list ap)
{
	if (level > log_max_level)
		return;
	fprintf(stderr, "kaccess: %s", level_prefix[level]);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

void log_message(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmessage(level, fmt, ap);
	va_end(ap);
}

/* libbpf's messages are printf formats of its own */
__attribute__((format(printf, 2, 0)))
static int libbpf_printer(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	if (level == LIBBPF_DEBUG && log_max_level < LOG_LEVEL_DEBUG)
		return 0;
	if (level == LIBBPF_INFO && log_max_level < LOG_LEVEL_DEBUG)
		return 0;
	fputs("kaccess: libbpf: ", stderr);
	return vfprintf(stderr, fmt, ap);
}

void log_install_libbpf_printer(void)
{
	libbpf_set_print(libbpf_printer);
}
