// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
#include <errno.h>
#include <pthread.h>

#include "metrics_extra.h"

static struct {
	metrics_render_fn render;
	void *ctx;
} renderers[METRICS_EXTRA_MAX];
static pthread_mutex_t renderers_lock = PTHREAD_MUTEX_INITIALIZER;

int metrics_extra_register(metrics_render_fn render, void *ctx)
{
	int err = -ENOSPC;

	pthread_mutex_lock(&renderers_lock);
	for (int i = 0; i < METRICS_EXTRA_MAX; i++) {
		if (!renderers[i].render) {
			renderers[i].render = render;
			renderers[i].ctx = ctx;
			err = 0;
			break;
		}
	}
	pthread_mutex_unlock(&renderers_lock);
	return err;
}

void metrics_extra_unregister(void *ctx)
{
	pthread_mutex_lock(&renderers_lock);
	for (int i = 0; i < METRICS_EXTRA_MAX; i++)
		if (renderers[i].ctx == ctx)
			renderers[i].render = NULL;
	pthread_mutex_unlock(&renderers_lock);
}

/* Under the lock: a renderer's owner unregisters before it frees what it reads. */
void metrics_extra_render(struct strbuf *out)
{
	pthread_mutex_lock(&renderers_lock);
	for (int i = 0; i < METRICS_EXTRA_MAX; i++)
		if (renderers[i].render)
			renderers[i].render(renderers[i].ctx, out);
	pthread_mutex_unlock(&renderers_lock);
}
