/* tern-demo: each file in examples/demo registers one group of endpoints.
 *
 * No globals: what the whole server shares lives in one demo_app (the
 * server's data, tern_server_data), and what one worker owns lives in its
 * demo_worker (the per-worker slot, tern_worker_local), made by
 * demo_worker_start on that worker's thread. */
#ifndef TERN_DEMO_H
#define TERN_DEMO_H

#include <pthread.h>
#include <stdint.h>

#include <tern.h>

struct tern_pool;
struct tern_client;

/* One worker's state: only that worker's coroutines touch it, so no lock,
 * except the pointers other threads read for /stats (see demo_app.lock). */
typedef struct demo_worker {
    int id;
    struct tern_pool *db;         /* pool.c: this worker's SQLite connections */
    struct tern_client *upstream; /* pool.c: this worker's upstream connections */
    uint64_t concurrent_served;   /* main.c: /concurrent requests, for X-Request-ID */
    uint64_t rng;                 /* pool.c: xorshift state for random users */
} demo_worker;

typedef struct demo_app {
    /* options, fixed before the server runs */
    const char *upstream_url; /* --upstream URL for /real (NULL: our own /plaintext) */
    const char *db_opt;       /* --db PATH for SQLite (NULL: a file in /tmp) */
    uint16_t port;            /* the bound port */
    int workers;              /* worker threads, once bound */
    /* pool.c */
    char db_path[512], file_path[512];
    int remove_db_at_exit;    /* only the default database in /tmp */
    /* admission.c: hash rounds per µs, measured at start-up (/adaptive's route data) */
    double rounds_per_us;
    /* The workers' states, for the metrics sources that run on any thread:
     * a worker publishes its slot under `lock` when it starts and takes it
     * back under `lock` before freeing what it points to. */
    pthread_mutex_t lock;
    demo_worker **worker_states; /* [workers] */
} demo_app;

/* The app of the server a request belongs to. */
static inline demo_app *demo_app_of(const tern_ctx *ctx) {
    return tern_server_data(tern_ctx_server(ctx));
}

/* Each endpoint group registers its routes once before the server starts
 * and returns 0 or -errno. Groups live in their own files. */
int demo_register_runtime(tern_server *s);    /* runtime.c: /memory, /event-loop */
int demo_register_metrics(tern_server *s);    /* metrics.c: /stats, /metrics */
int demo_register_pool(tern_server *s);       /* pool.c: /pool, /real */
int demo_register_admission(tern_server *s);  /* admission.c: /backpressure, /adaptive */

/* pool.c's share of a worker's state: made on the worker's thread before
 * it serves, freed there after its last request (0 or -errno). */
int demo_pool_worker_init(demo_app *app, demo_worker *w);
void demo_pool_worker_fini(demo_app *app, demo_worker *w);
/* After tern_server_run returned (or failed), before tern_server_free:
 * unregisters pool.c's metrics sources and removes its temporary files. */
void demo_pool_cleanup(tern_server *s);
#endif
