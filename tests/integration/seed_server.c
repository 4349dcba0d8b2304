/* The seed application's patterns written as a new user would, against
 * tern's public API only: one static semaphore of 10 and one static pool
 * of 4 shared by every request on every worker, a task started on another
 * worker, and a route that queues for its slot. Driven by test_seed.py
 * with 2 and 4 workers.
 *
 *   GET /work     acquire the semaphore (wait up to 200 ms, else 503), hold
 *                 a pooled resource 20 ms; answers the highest number of
 *                 semaphore holders and pool users ever seen at once
 *   GET /remote   starts a task on another worker, joins it, answers which
 *                 worker ran it and its result
 *   GET /queued   max_in_flight 5 with a queue of 50 for up to 2 s
 *
 * usage: tern-test-seed-server WORKERS */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <tern.h>
#include <tern/pool.h>

#define SEM_SLOTS 10
#define POOL_SIZE 4

static tern_sem slots = TERN_SEM_INIT(SEM_SLOTS);
static tern_pool *pool;
static atomic_int holders, holders_max, users, users_max, resources;

static void bump_max(atomic_int *cur, atomic_int *max, int delta) {
    int now = atomic_fetch_add(cur, delta) + delta;
    int m = atomic_load(max);
    while (now > m && !atomic_compare_exchange_weak(max, &m, now)) {
    }
}

static int res_create(void *arg, void **res) {
    (void)arg;
    int *r = malloc(sizeof *r);
    if (!r) return -12;
    *r = atomic_fetch_add(&resources, 1);
    *res = r;
    return 0;
}

static void res_destroy(void *arg, void *res) {
    (void)arg;
    free(res);
}

static void work(tern_ctx *ctx) {
    if (tern_sem_acquire_timeout(&slots, 200) < 0) {
        tern_resp_set_header(ctx, "Retry-After", "1");
        tern_resp_text(ctx, 503, "busy: no permit within 200 ms\n");
        return;
    }
    bump_max(&holders, &holders_max, 1);
    void *res = NULL;
    int r = tern_pool_acquire(pool, 1000, &res);
    if (r == 0) {
        bump_max(&users, &users_max, 1);
        tern_sleep(20);
        bump_max(&users, &users_max, -1);
        tern_pool_release(pool, res);
    }
    bump_max(&holders, &holders_max, -1);
    tern_sem_release(&slots);
    if (r < 0) {
        tern_resp_text(ctx, 503, "pool: no resource\n");
        return;
    }
    tern_resp_printf(ctx, "{\"holders_max\":%d,\"users_max\":%d,\"worker\":%d}",
                     atomic_load(&holders_max), atomic_load(&users_max), tern_worker_id());
}

static void *remote_task(void *arg) {
    long n = (long)(intptr_t)arg;
    tern_sleep(1); /* coroutine code: it may park on its own worker */
    long sum = 0;
    for (long i = 1; i <= n; i++) sum += i;
    return (void *)(intptr_t)(sum * 1000 + tern_worker_id());
}

static void remote(tern_ctx *ctx) {
    int self = tern_worker_id();
    int nworkers = tern_server_workers(tern_ctx_server(ctx));
    int target = nworkers > 1 ? (self + 1) % nworkers : self;
    tern_task *t = tern_spawn_on(target, remote_task, (void *)(intptr_t)100);
    void *out = NULL;
    if (!t || tern_join(t, &out) < 0) {
        tern_resp_text(ctx, 500, "spawn_on failed\n");
        return;
    }
    long v = (long)(intptr_t)out;
    tern_resp_printf(ctx, "{\"caller\":%d,\"ran_on\":%ld,\"sum\":%ld}", self, v % 1000, v / 1000);
}

static void queued(tern_ctx *ctx) {
    tern_sleep(50);
    tern_resp_text(ctx, 200, "done\n");
}

int main(int argc, char **argv) {
    int workers = argc > 1 ? atoi(argv[1]) : 2;
    tern_pool_config pc = {.max_size = POOL_SIZE, .create = res_create, .destroy = res_destroy};
    pool = tern_pool_new(&pc);
    tern_server *s = tern_server_new();
    if (!s || !pool) return 1;
    tern_server_set_address(s, "127.0.0.1", 0);
    tern_server_set_workers(s, workers);
    tern_route(s, TERN_GET, "/work", work);
    tern_route(s, TERN_GET, "/remote", remote);
    tern_route_opts q = {.max_in_flight = 5, .queue_max = 50, .queue_timeout_ms = 2000};
    tern_route_with(s, TERN_GET, "/queued", queued, &q);
    if (tern_server_bind(s) < 0) return 1;
    printf("seed-server listening on %u (%d workers)\n", tern_server_port(s), tern_server_workers(s));
    fflush(stdout);
    int r = tern_server_run(s);
    tern_server_free(s);
    tern_pool_free(pool);
    return r < 0 ? 1 : 0;
}
