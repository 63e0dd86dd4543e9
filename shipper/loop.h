/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * The shipper's main loop: connection events from the ring buffer, a drain
 * of the idle aggregate generation after every bucket, live snapshots for
 * the table, and a final drain of everything at shutdown.
 */
#ifndef KACCESS_LOOP_H
#define KACCESS_LOOP_H

#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "agent.h"
#include "config.h"
#include "sink.h"

/* Set by SIGINT/SIGTERM. */
extern volatile sig_atomic_t loop_stop_requested;

/* Set by SIGHUP: re-read the config file at the next turn of the loop. */
extern volatile sig_atomic_t loop_reload_requested;

/* CLOCK_MONOTONIC of the loop's last turn, for /healthz. */
extern _Atomic uint64_t loop_heartbeat_ns;

/*
 * Run until a signal or cfg->duration_s, feeding every sink; 0 or -errno.
 * `reload` re-reads the configuration into `cfg` on SIGHUP (may be NULL).
 */
int loop_run(struct agent *agent, struct kaccess_config *cfg, struct sink *const *sinks,
	     size_t sink_count, int (*reload)(struct kaccess_config *cfg));

#endif
