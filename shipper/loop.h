/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The shipper's main loop: connection events from the ring buffer, a drain
 * of the idle aggregate generation after every bucket, live snapshots for
 * the table, and a final drain of everything at shutdown.
 */
#ifndef KACCESS_LOOP_H
#define KACCESS_LOOP_H

#include <signal.h>

#include "agent.h"
#include "config.h"
#include "sink.h"

/* Set by SIGINT/SIGTERM. */
extern volatile sig_atomic_t loop_stop_requested;

/* Run until a signal or cfg->duration_s; 0 or -errno. */
int loop_run(struct agent *agent, const struct kaccess_config *cfg, struct sink *sink);

#endif
