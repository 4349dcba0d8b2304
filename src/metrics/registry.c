/* The extra-source registry (see registry.h). */
#include "metrics/registry.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/writer.h"

typedef struct source_entry {
    const void *key; /* NULL: every key */
    char name[TERN_METRICS_SOURCE_NAME_MAX];
    tern_metrics_source fn;
    void *arg;
} source_entry;

static pthread_mutex_t sources_lock = PTHREAD_MUTEX_INITIALIZER;
static source_entry *sources;
static size_t nsources, sources_cap;

static int source_name_valid(const char *name) {
    size_t len = strlen(name);
    if (len == 0 || len >= TERN_METRICS_SOURCE_NAME_MAX) return 0;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return 0;
    return 1;
}

/* Caller holds the lock. A global source shows under every key, so its
 * name must not collide with any other, or "pools" would hold the same JSON
 * key twice. */
static int name_taken(const void *key, const char *name) {
    for (size_t i = 0; i < nsources; i++) {
        const source_entry *e = &sources[i];
        if ((e->key == key || !e->key || !key) && strcmp(e->name, name) == 0) return 1;
    }
    return 0;
}

static int grow(void) {
    if (nsources < sources_cap) return 0;
    size_t cap = sources_cap ? sources_cap * 2 : 8;
    source_entry *p = realloc(sources, cap * sizeof *p);
    if (!p) return -ENOMEM;
    sources = p;
    sources_cap = cap;
    return 0;
}

int tern__metrics_registry_add(const void *key, const char *name, tern_metrics_source fn,
                               void *arg) {
    if (!name || !fn || !source_name_valid(name)) return -EINVAL;
    pthread_mutex_lock(&sources_lock);
    int rc = name_taken(key, name) ? -EEXIST : grow();
    if (rc == 0) {
        source_entry *e = &sources[nsources++];
        e->key = key;
        memcpy(e->name, name, strlen(name) + 1);
        e->fn = fn;
        e->arg = arg;
    }
    pthread_mutex_unlock(&sources_lock);
    return rc;
}

int tern__metrics_registry_remove(const void *key, const char *name) {
    if (!name) return -ENOENT;
    int rc = -ENOENT;
    pthread_mutex_lock(&sources_lock);
    for (size_t i = 0; i < nsources; i++) {
        if (sources[i].key == key && strcmp(sources[i].name, name) == 0) {
            memmove(&sources[i], &sources[i + 1], (nsources - i - 1) * sizeof *sources);
            nsources--;
            rc = 0;
            break;
        }
    }
    if (nsources == 0) { /* nothing left for a leak checker to report */
        free(sources);
        sources = NULL;
        sources_cap = 0;
    }
    pthread_mutex_unlock(&sources_lock);
    return rc;
}

void tern__metrics_registry_each(const void *key, tern__metrics_registry_visit visit, void *ctx) {
    pthread_mutex_lock(&sources_lock);
    for (size_t i = 0; i < nsources; i++) {
        if (sources[i].key && sources[i].key != key) continue;
        visit(ctx, sources[i].name, sources[i].fn, sources[i].arg);
    }
    pthread_mutex_unlock(&sources_lock);
}

static void run_source(void *ctx, const char *name, tern_metrics_source fn, void *arg) {
    tern_metrics_writer *w = ctx;
    w->source = name;
    fn(arg, w);
}

void tern__metrics_registry_collect(const void *key, tern_metrics_writer *w) {
    tern__metrics_registry_each(key, run_source, w);
    w->source = NULL;
}

size_t tern__metrics_registry_count(void) {
    pthread_mutex_lock(&sources_lock);
    size_t n = nsources;
    pthread_mutex_unlock(&sources_lock);
    return n;
}

/* ---- public API ---------------------------------------------------------- */

int tern_metrics_register_source(struct tern_server *s, const char *name, tern_metrics_source fn,
                                 void *arg) {
    return tern__metrics_registry_add(s, name, fn, arg);
}

int tern_metrics_unregister_source(struct tern_server *s, const char *name) {
    return tern__metrics_registry_remove(s, name);
}
