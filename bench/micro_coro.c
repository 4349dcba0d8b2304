/* Micro-benchmark of the coroutine layer: switch cost and parked memory.
 *
 * Build and run (from the repository root):
 *   cc -O2 -Iinclude -Isrc bench/micro_coro.c src/rt/coro.c src/rt/coro_x86_64.S \
 *       -o /tmp/micro_coro && /tmp/micro_coro
 * (aarch64: src/rt/coro_aarch64.S instead.)
 *
 * Prints machine-readable lines:
 *   switch_ns <median ns per context switch, 10M switches per run>
 *   switch_rr1024_ns <same, scheduler resuming 1024 coroutines round robin>
 *   parked_rss_bytes <VmRSS growth per parked coroutine at 100,000 parked>
 *   parked_pte_bytes <VmPTE (page table) growth per parked coroutine>
 * A context switch is one tern__coro_switch call; a round trip main ->
 * coroutine -> main is two. */
#define _GNU_SOURCE
#include "rt/coro.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define SWITCHES 10000000L
#define RUNS 7
#define PARKED 100000
#define STACK_SIZE (256 * 1024) /* what the server uses */

static void *main_sp;
static tern_coro *bench_coro;

static void pingpong(void *arg) {
    (void)arg;
    for (;;) tern__coro_switch(&bench_coro->sp, main_sp);
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double switch_ns(tern__stack_pool *pool) {
    bench_coro = tern__coro_create(pool, pingpong, NULL);
    if (!bench_coro) {
        perror("tern__coro_create");
        exit(1);
    }
    for (long i = 0; i < 100000; i++) /* warm up caches and branch predictors */
        tern__coro_switch(&main_sp, bench_coro->sp);
    double runs[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_ns();
        for (long i = 0; i < SWITCHES / 2; i++) tern__coro_switch(&main_sp, bench_coro->sp);
        runs[r] = (now_ns() - t0) / (double)SWITCHES;
    }
    tern__coro_release(bench_coro);
    qsort(runs, RUNS, sizeof runs[0], cmp_double);
    fprintf(stderr, "switch runs (ns): min %.2f median %.2f max %.2f\n", runs[0], runs[RUNS / 2],
            runs[RUNS - 1]);
    return runs[RUNS / 2];
}

/* Round robin over many coroutines from one scheduler call site, the shape
 * of a real worker loop: every resume lands on the same park site, but each
 * touches a different stack (more cache traffic than the ping-pong). */
#define RR_COROS 1024
#define RR_ROUNDS 2000
static tern_coro *rr[RR_COROS];
static int rr_cur;

static void rr_fn(void *arg) {
    (void)arg;
    for (;;) tern__coro_switch(&rr[rr_cur]->sp, main_sp);
}

static double round_robin_ns(tern__stack_pool *pool) {
    for (int i = 0; i < RR_COROS; i++)
        if (!(rr[i] = tern__coro_create(pool, rr_fn, NULL))) exit(1);
    double runs[RUNS];
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_ns();
        for (int k = 0; k < RR_ROUNDS; k++)
            for (rr_cur = 0; rr_cur < RR_COROS; rr_cur++)
                tern__coro_switch(&main_sp, rr[rr_cur]->sp);
        runs[r] = (now_ns() - t0) / (2.0 * RR_ROUNDS * RR_COROS);
    }
    for (int i = 0; i < RR_COROS; i++) tern__coro_release(rr[i]);
    qsort(runs, RUNS, sizeof runs[0], cmp_double);
    return runs[RUNS / 2];
}

static long status_kib(const char *key) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    size_t klen = strlen(key);
    while (f && fgets(line, sizeof line, f))
        if (strncmp(line, key, klen) == 0 && line[klen] == ':') {
            kib = strtol(line + klen + 1, NULL, 10);
            break;
        }
    if (f) fclose(f);
    return kib;
}

struct parked {
    tern_coro *c;
    long id;
};

static void parked_fn(void *arg) {
    struct parked *x = arg;
    volatile char frame[256]; /* a small handler-sized frame */
    for (size_t i = 0; i < sizeof frame; i += 64) frame[i] = (char)x->id;
    for (;;) tern__coro_switch(&x->c->sp, main_sp);
}

int main(void) {
    tern__stack_pool pool;
    if (tern__stack_pool_init(&pool, STACK_SIZE, 64) != 0) return 1;
    double ns = switch_ns(&pool);
    double rr_ns = round_robin_ns(&pool);

    struct parked *xs = calloc(PARKED, sizeof *xs);
    if (!xs) return 1;
    /* fault the array in first so only stacks show up in the difference */
    memset(xs, 0, PARKED * sizeof *xs);
    long rss0 = status_kib("VmRSS"), pte0 = status_kib("VmPTE");
    for (long i = 0; i < PARKED; i++) {
        xs[i].id = i;
        xs[i].c = tern__coro_create(&pool, parked_fn, &xs[i]);
        if (!xs[i].c) {
            fprintf(stderr, "create failed at %ld\n", i);
            return 1;
        }
        tern__coro_switch(&main_sp, xs[i].c->sp);
    }
    long rss1 = status_kib("VmRSS"), pte1 = status_kib("VmPTE");
    for (long i = 0; i < PARKED; i++) tern__coro_release(xs[i].c);
    tern__stack_pool_destroy(&pool);
    free(xs);

    printf("switch_ns %.2f\n", ns);
    printf("switch_rr1024_ns %.2f\n", rr_ns);
    printf("parked_rss_bytes %ld\n", (rss1 - rss0) * 1024 / PARKED);
    printf("parked_pte_bytes %ld\n", (pte1 - pte0) * 1024 / PARKED);
    printf("parked_count %d\n", PARKED);
    printf("stack_size_bytes %d\n", STACK_SIZE);
    return 0;
}
