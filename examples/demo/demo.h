/* tern-demo: each file in examples/demo registers one group of endpoints.
 *
 * No globals: what the whole server shares lives in one demo_app (the
 * server's data, tern_server_data), and what one worker owns lives in its
 * demo_worker (the per-worker slot, tern_worker_local), made by
 * demo_worker_start on that worker's thread. */
#ifndef TERN_DEMO_H
#define TERN_DEMO_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include <tern.h>

struct tern_pool;
struct tern_client;
struct tern_pg;

/* One worker's state: only that worker's coroutines touch it, so no lock,
 * except the pointers other threads read for /stats (see demo_app.lock). */
typedef struct demo_worker {
    int id;
    struct tern_pool *db;         /* pool.c: this worker's SQLite connections */
    struct tern_client *upstream; /* pool.c: this worker's upstream connections */
    uint64_t concurrent_served;   /* main.c: /concurrent requests, for X-Request-ID */
    uint64_t rng;                 /* pool.c: xorshift state for random users */
} demo_worker;

/* ---- limits.c: strict parameters and the server-wide budget -------------- */

/* What every request of the demo holds in flight, summed over all workers.
 * Costs, charged for the whole request and given back when it ends:
 *   a task the demo spawns, or a handler parked on purpose: 4 KiB (the
 *   stack page it touches; /memory measures it);
 *   /memory?tasks=N: N tasks + 8 bytes of handle each;
 *   /event-loop: 4 tasks + 16 KiB of lag samples, and mb MiB of CPU work;
 *   /stream: its 64 KiB chunk; /real?parallel=1: 3 tasks;
 *   /concurrent: its parked handler. */
#define DEMO_TASK_KIB 4
#define DEMO_BUDGET_MB_DEFAULT 400    /* 100,000 parked tasks: one /memory?tasks=100000 */
#define DEMO_BUDGET_MB_MIN 16
#define DEMO_BUDGET_MB_MAX 65536
#define DEMO_CPU_BUDGET_MIB 512       /* two /event-loop?mb=256 at once */
typedef struct demo_budget {
    _Atomic long kib_used, cpu_mib_used;
    long kib_limit, cpu_mib_limit;
} demo_budget;

/* What one request took; demo_budget_give returns it (once). */
typedef struct demo_grant {
    demo_budget *budget;
    long kib, cpu_mib;
} demo_grant;

void demo_budget_init(demo_budget *b, long kib, long cpu_mib);
/* 0 with *g filled, or -1 after answering 503 (+ Retry-After: 1 unless the
 * request alone is larger than the whole budget). */
int demo_budget_take(tern_ctx *ctx, demo_grant *g, long kib, long cpu_mib);
void demo_budget_give(demo_grant *g);

/* Strict unsigned decimal in [lo, hi]: digits only, no sign, no spaces,
 * nothing after, no overflow. 0 with *out set, or -1. */
int demo_parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *out);
/* Query parameter `name` through demo_parse_uint; def when absent. 0, or
 * -1 after answering 400 with a JSON error naming the parameter and range. */
int demo_query_uint(tern_ctx *ctx, const char *name, unsigned long def, unsigned long lo,
                    unsigned long hi, unsigned long *out);

/* push.c: the /chat room, shared by every worker. Members are WebSocket
 * connections; sending to one from another worker only queues (never
 * parks), so the lock is never held across a park. */
typedef struct demo_room {
    pthread_mutex_t lock;
    tern_ws **members;
    size_t n, cap;
} demo_room;

typedef struct demo_app {
    /* options, fixed before the server runs */
    const char *upstream_url; /* --upstream URL for /real (NULL: our own /plaintext) */
    const char *upstream_ca;  /* --upstream-ca: CA file for an https upstream */
    const char *db_opt;       /* --db PATH for SQLite (NULL: a file in /tmp) */
    uint16_t port;            /* the bound port */
    int workers;              /* worker threads, once bound */
    demo_budget budget;       /* shared by every request: the point is the sum */
    /* pool.c */
    char db_path[512], file_path[512];
    int remove_db_at_exit;    /* only the default database in /tmp */
    /* pg.c: --pg DSN (NULL: the database endpoints answer 503), --pg-pool N
     * connections in all (0: 4), split over the workers' pools unless
     * --pg-shared-pool; the database once set up */
    const char *pg_dsn;
    unsigned long pg_pool;
    int pg_shared_pool;
    struct tern_pg *pg;
    /* data.c: where /upload keeps files, /session's signing keys (newest
     * first), the count of files kept (names them uniquely) */
    char upload_dir[512];
    unsigned char session_keys[2][32];
    unsigned long uploads;
    /* admission.c: hash rounds per µs, measured at start-up (/adaptive's route data) */
    double rounds_per_us;
    /* The workers' states, for the metrics sources that run on any thread:
     * a worker publishes its slot under `lock` when it starts and takes it
     * back under `lock` before freeing what it points to. */
    pthread_mutex_t lock;
    demo_worker **worker_states; /* [workers] */
    demo_room chat;              /* push.c: /chat */
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
int demo_register_pg(tern_server *s);         /* pg.c: /db, /queries, /updates, /fortunes */
/* After tern_server_run returned: closes pg.c's connections. */
void demo_pg_cleanup(tern_server *s);
int demo_register_api(tern_server *s, unsigned rate); /* api.c: the /api/ group (middleware) */
void demo_api_cleanup(void);
int demo_register_data(tern_server *s);       /* data.c: /form, /upload, /session */
int demo_register_push(tern_server *s);       /* push.c: /ws, /chat, /sse */
int demo_register_dashboard(tern_server *s);  /* dashboard.c: /dashboard, /dashboard/events */

/* pool.c's share of a worker's state: made on the worker's thread before
 * it serves, freed there after its last request (0 or -errno). */
int demo_pool_worker_init(demo_app *app, demo_worker *w);
void demo_pool_worker_fini(demo_app *app, demo_worker *w);
/* After tern_server_run returned (or failed), before tern_server_free:
 * unregisters pool.c's metrics sources and removes its temporary files. */
void demo_pool_cleanup(tern_server *s);
#endif
