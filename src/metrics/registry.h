/* Extra metric sources: named callbacks (tern_metrics_source) registered
 * under an opaque key, run into a tern_metrics_writer whenever the stats
 * are read. The key is whatever owns the stats page, in practice a
 * tern_server *, but the registry never looks inside it: modules below or
 * beside the server (resource pools, the client) register sources without
 * knowing the server, and the server's /stats and /metrics handlers ask for
 * the sources of their own key. A NULL key registers a source for every key.
 *
 * Implements the public tern_metrics_register_source and
 * tern_metrics_unregister_source (include/tern/metrics.h). One global list
 * under one mutex: sources are few and read once per /stats. */
#ifndef TERN_METRICS_REGISTRY_H
#define TERN_METRICS_REGISTRY_H

#include <stddef.h>

#include "tern/metrics.h"

#define TERN_METRICS_SOURCE_NAME_MAX 64 /* bytes, with the NUL */

/* 0, -EINVAL (no fn, empty, too long or control characters in name),
 * -EEXIST (same name for the same key, or either key NULL) or -ENOMEM. */
int tern__metrics_registry_add(const void *key, const char *name, tern_metrics_source fn,
                               void *arg);
/* 0 or -ENOENT. The key must be the one it was added with (NULL for a
 * global source). After it returns the callback is no longer running. */
int tern__metrics_registry_remove(const void *key, const char *name);

/* Calls visit once per source that applies to key (registered for key or
 * for every key), in registration order, under the registry lock: visit
 * must not add or remove sources. A NULL key visits global sources only. */
typedef void (*tern__metrics_registry_visit)(void *ctx, const char *name, tern_metrics_source fn,
                                             void *arg);
void tern__metrics_registry_each(const void *key, tern__metrics_registry_visit visit, void *ctx);

/* Runs every source that applies to key into w, one after another (so w's
 * items come grouped by source). */
void tern__metrics_registry_collect(const void *key, tern_metrics_writer *w);

/* Sources registered, whatever their key (tests, leak checks). */
size_t tern__metrics_registry_count(void);

#endif
