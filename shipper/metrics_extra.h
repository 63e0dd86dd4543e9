/* SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause) */
/*
 * More /metrics series from parts that /metrics does not own (the OAP
 * sender, the Kubernetes resolver, the rollup): each registers a renderer,
 * which runs on the HTTP thread and must only read thread-safe state.
 */
#ifndef KACCESS_METRICS_EXTRA_H
#define KACCESS_METRICS_EXTRA_H

#include "strbuf.h"

typedef void (*metrics_render_fn)(void *ctx, struct strbuf *out);

/* Up to METRICS_EXTRA_MAX renderers; -ENOSPC beyond. */
#define METRICS_EXTRA_MAX 4
int metrics_extra_register(metrics_render_fn render, void *ctx);
void metrics_extra_unregister(void *ctx);

/* Called by /metrics. */
void metrics_extra_render(struct strbuf *out);

#endif
