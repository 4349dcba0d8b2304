/* /backpressure and /adaptive: admission control you can watch. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tern.h>
#include <tern/sync.h>

#include "demo.h"

/* 100 slots shared by every worker: a limit on the whole server */
static tern_gsem backpressure_slots;
#define BACKPRESSURE_SLOTS 100

static void backpressure(tern_ctx *ctx) {
    if (tern_gsem_try_acquire(&backpressure_slots) < 0) {
        /* full: refuse at once, no queue */
        tern_set_header(ctx, "Retry-After", "1");
        tern_json(ctx, 503, "{\"status\":\"busy\",\"limit\":100,\"retry_after_s\":1}");
        return;
    }
    uint64_t t0 = tern_clock_ns();
    int r = tern_sleep(100); /* 100 ms of (waiting) work while holding a slot */
    long free_now = tern_gsem_available(&backpressure_slots);
    tern_gsem_release(&backpressure_slots);
    if (r < 0) {
        tern_text(ctx, 503, "cancelled\n");
        return;
    }
    tern_set_header(ctx, "Content-Type", "application/json");
    tern_printf_body(ctx, "{\"status\":\"ok\",\"limit\":%d,\"free_slots\":%ld,\"work_ms\":%.1f}",
                     BACKPRESSURE_SLOTS, free_now, (double)(tern_clock_ns() - t0) / 1e6);
}

/* Real CPU work (a hash over a buffer), about `us` microseconds worth. */
static uint64_t burn(unsigned us) {
    uint64_t h = 1469598103934665603ull, end = tern_clock_ns() + (uint64_t)us * 1000;
    unsigned i = 0;
    while (tern_clock_ns() < end) {
        for (int k = 0; k < 256; k++) h = (h ^ (i++ & 0xff)) * 1099511628211ull;
    }
    return h;
}

/* Answers normally or is shed by tern (route option `adaptive`) according
 * to the measured load; reports the level and mode it ran under.
 * ?work_us=N adds N µs of CPU work per request (default 200), so a load
 * generator can push the worker into overload. */
static void adaptive(tern_ctx *ctx) {
    unsigned work = 200;
    const char *q = tern_query(ctx, "work_us");
    if (q) {
        unsigned long v = strtoul(q, NULL, 10);
        work = v > 100000 ? 100000 : (unsigned)v;
    }
    tern_load before;
    tern_load_get(&before);
    /* under elevated load, do a cheaper version of the work */
    unsigned done = before.level >= 50 ? work / 4 : work;
    uint64_t h = burn(done);
    tern_set_header(ctx, "Content-Type", "application/json");
    tern_printf_body(ctx,
                     "{\"status\":\"ok\",\"mode\":\"%s\",\"load_level\":%u,\"shedding\":%s,"
                     "\"queue_delay_us\":%" PRIu64 ",\"loop_lag_us\":%" PRIu64
                     ",\"in_flight\":%u,\"shed_total\":%" PRIu64 ",\"work_us\":%u,\"hash\":\"%016" PRIx64
                     "\"}",
                     before.mode, before.level, before.shedding ? "true" : "false",
                     before.queue_delay_us, before.loop_lag_us, before.in_flight, before.shed_total,
                     done, h);
}

int demo_register_admission(tern_server *s) {
    tern_gsem_init(&backpressure_slots, BACKPRESSURE_SLOTS);
    int r = tern_route(s, TERN_GET, "/backpressure", backpressure);
    if (r < 0) return r;
    tern_route_opts opts = {.adaptive = 1};
    return tern_route_with(s, TERN_GET, "/adaptive", adaptive, &opts);
}
