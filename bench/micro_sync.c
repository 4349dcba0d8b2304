/* Micro-benchmark of the sync objects' uncontended paths: ns per
 * tern_sem_acquire + tern_sem_release pair, tern_mutex_lock + unlock pair
 * and tern_sem_try_acquire + release pair, from one coroutine on a bare
 * scheduler (nobody else touches the objects).
 *
 * Build and run (from the repository root, after a Release build in build/):
 *   cc -O2 -D_GNU_SOURCE -Iinclude -Isrc bench/micro_sync.c build/libtern.a \
 *       -o /tmp/micro_sync -lpthread && /tmp/micro_sync
 *
 * Prints machine-readable lines (median of RUNS runs of OPS pairs):
 *   sem_acquire_release_ns <ns per pair>
 *   sem_try_release_ns <ns per pair>
 *   mutex_lock_unlock_ns <ns per pair> */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "rt/sched.h"
#include "tern.h"
#include "tern/sync.h"

#define OPS 10000000L
#define RUNS 7

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static int cmp(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v) {
    qsort(v, RUNS, sizeof *v, cmp);
    return v[RUNS / 2];
}

static tern_sem sem;
static tern_mutex mtx;

static void *bench_main(void *unused) {
    double a[RUNS], t[RUNS], m[RUNS];
    tern_sem_init(&sem, 1);
    tern_mutex_init(&mtx);
    for (int r = 0; r < RUNS; r++) {
        double t0 = now_ns();
        for (long i = 0; i < OPS; i++) {
            tern_sem_acquire(&sem);
            tern_sem_release(&sem);
        }
        a[r] = (now_ns() - t0) / OPS;
        t0 = now_ns();
        for (long i = 0; i < OPS; i++) {
            tern_sem_try_acquire(&sem);
            tern_sem_release(&sem);
        }
        t[r] = (now_ns() - t0) / OPS;
        t0 = now_ns();
        for (long i = 0; i < OPS; i++) {
            tern_mutex_lock(&mtx);
            tern_mutex_unlock(&mtx);
        }
        m[r] = (now_ns() - t0) / OPS;
    }
    printf("sem_acquire_release_ns %.2f\n", median(a));
    printf("sem_try_release_ns %.2f\n", median(t));
    printf("mutex_lock_unlock_ns %.2f\n", median(m));
    return unused;
}

static void on_event(tern__sched *s, uint64_t data, uint32_t events) {
    (void)s, (void)data, (void)events;
}

int main(void) {
    tern__sched s;
    if (tern__sched_init(&s, 0, 64 * 1024) < 0) return 1;
    tern__sched_self = &s;
    tern_task *t = tern_spawn(bench_main, NULL);
    while (s.coros_live) tern__sched_poll(&s, on_event, 0);
    tern_join(t, NULL);
    tern__sched_self = NULL;
    tern__sched_destroy(&s);
    return 0;
}
