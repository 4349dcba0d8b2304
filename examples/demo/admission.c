/* /backpressure and /adaptive: admission control you can watch. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <tern.h>
#include <tern/sync.h>

#include "demo.h"

/* 100 slots shared by every worker: a limit on the whole server (a
 * tern_sem works from any worker; try_acquire never queues) */
#define BACKPRESSURE_SLOTS 100
static tern_sem backpressure_slots = TERN_SEM_INIT(BACKPRESSURE_SLOTS);

static void backpressure(tern_ctx *ctx) {
    if (tern_sem_try_acquire(&backpressure_slots) < 0) {
        /* full: refuse at once, no queue */
        tern_resp_set_header(ctx, "Retry-After", "1");
        tern_resp_json(ctx, 503, "{\"status\":\"busy\",\"limit\":100,\"retry_after_s\":1}");
        return;
    }
    uint64_t t0 = tern_clock_ns();
    int r = tern_sleep(100); /* 100 ms of (waiting) work while holding a slot */
    long free_now = (long)tern_sem_available(&backpressure_slots);
    tern_sem_release(&backpressure_slots);
    if (r < 0) {
        tern_resp_text(ctx, 503, "cancelled\n");
        return;
    }
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    tern_resp_printf(ctx, "{\"status\":\"ok\",\"limit\":%d,\"free_slots\":%ld,\"work_ms\":%.1f}",
                     BACKPRESSURE_SLOTS, free_now, (double)(tern_clock_ns() - t0) / 1e6);
}

/* Real CPU work: FNV-hash rounds, a fixed number per microsecond measured
 * once at start-up (so the work is a quantity of computation, not of wall
 * time: interleaved requests do not shorten each other's work). Yields to
 * the event loop about every 100 µs: new requests are read (and, under
 * overload, shed) while this one computes, instead of waiting behind it.
 * The calibration (demo_app.rounds_per_us) is /adaptive's route data. */

static uint64_t hash_rounds(uint64_t h, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) h = (h ^ (i & 0xff)) * 1099511628211ull;
    return h;
}

static void calibrate(double *rounds_per_us) {
    uint64_t n = 1u << 20, t0 = tern_clock_ns();
    volatile uint64_t sink = hash_rounds(1469598103934665603ull, n);
    (void)sink;
    uint64_t ns = tern_clock_ns() - t0;
    *rounds_per_us = ns ? (double)n * 1000.0 / (double)ns : 100;
}

static uint64_t burn(const double *rounds_per_us, unsigned us) {
    double rate = *rounds_per_us;
    uint64_t total = (uint64_t)(rate * us), slice = (uint64_t)(rate * 100) + 1;
    uint64_t h = 1469598103934665603ull;
    for (uint64_t done = 0; done < total; done += slice) {
        h = hash_rounds(h, total - done < slice ? total - done : slice);
        if (done + slice < total) tern_yield();
    }
    return h;
}

/* Answers normally or is shed by tern (route option `adaptive`) according
 * to the measured load; reports the level and mode it ran under.
 * ?work_us=N sets the CPU work per request (default 200 µs, 0..100000);
 * ?sleep_ms=N parks the handler first (default 0, 0..1000): a sleep-bound
 * request, which costs no CPU while it waits and is not load.
 * Its CPU is not charged to the demo's budget: bounding this route's load
 * is what adaptive shedding is for. */
static void adaptive(tern_ctx *ctx) {
    unsigned long v, sleep_ms;
    if (demo_query_uint(ctx, "work_us", 200, 0, 100000, &v) < 0) return;
    if (demo_query_uint(ctx, "sleep_ms", 0, 0, 1000, &sleep_ms) < 0) return;
    unsigned work = (unsigned)v;
    tern_load before;
    tern_load_get(&before);
    uint64_t t0 = tern_clock_ns();
    if (sleep_ms && tern_sleep(sleep_ms) < 0) {
        tern_resp_text(ctx, 503, "cancelled\n");
        return;
    }
    uint64_t h = burn(tern_route_data(ctx), work);
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    tern_resp_printf(ctx,
                     "{\"status\":\"ok\",\"mode\":\"%s\",\"load_level\":%u,\"shedding\":%s,"
                     "\"queue_delay_us\":%" PRIu64 ",\"loop_lag_us\":%" PRIu64
                     ",\"in_flight\":%u,\"concurrency_limit\":%u,\"running\":%u,"
                     "\"shed_total\":%" PRIu64 ",\"work_us\":%u,\"took_us\":%" PRIu64
                     ",\"hash\":\"%016" PRIx64 "\"}",
                     before.mode, before.level, before.shedding ? "true" : "false",
                     before.queue_delay_us, before.loop_lag_us, before.in_flight,
                     before.concurrency_limit, before.running, before.shed_total, work,
                     (tern_clock_ns() - t0) / 1000, h);
}

int demo_register_admission(tern_server *s) {
    demo_app *app = tern_server_data(s);
    calibrate(&app->rounds_per_us); /* once, before the workers read it */
    int r = tern_route(s, TERN_GET, "/backpressure", backpressure);
    if (r < 0) return r;
    tern_route_opts opts = {.adaptive = 1, .data = &app->rounds_per_us};
    return tern_route_with(s, TERN_GET, "/adaptive", adaptive, &opts);
}
