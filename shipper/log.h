/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/* Logging to stderr. Log once, at the layer that decides what a failure means. */
#ifndef KACCESS_LOG_H
#define KACCESS_LOG_H

enum log_level { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG };

extern enum log_level log_max_level;

void log_message(enum log_level level, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) log_message(LOG_LEVEL_ERROR, __VA_ARGS__)
#define log_warn(...) log_message(LOG_LEVEL_WARN, __VA_ARGS__)
#define log_info(...) log_message(LOG_LEVEL_INFO, __VA_ARGS__)
#define log_debug(...) log_message(LOG_LEVEL_DEBUG, __VA_ARGS__)

/* Route libbpf's own messages through log_message (warnings and above). */
void log_install_libbpf_printer(void);

#endif
