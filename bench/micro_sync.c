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
 *   mutex_lock_unlock_ns <ns per pair>
 *   atomic_floor_ns <ns per two bare compare-and-swaps: the least any
 *                    acquire + release pair shared by threads can cost>
 *   cross_worker_roundtrip_us <two workers on two threads ping-ponging
 *                    through two semaphores: two parks, two remote wakes
 *                    (queue + eventfd + epoll_wait) per round trip> */
#include <pthread.h>
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
static uint64_t word;

static double atomic_floor(void) {
    double t0 = now_ns();
    for (long i = 0; i < OPS; i++) {
        uint64_t v = __atomic_load_n(&word, __ATOMIC_RELAXED);
        __atomic_compare_exchange_n(&word, &v, v + 4, 0, __ATOMIC_ACQUIRE, __ATOMIC_RELAXED);
        v = __atomic_load_n(&word, __ATOMIC_RELAXED);
        __atomic_compare_exchange_n(&word, &v, v - 4, 0, __ATOMIC_RELEASE, __ATOMIC_RELAXED);
    }
    return (now_ns() - t0) / OPS;
}

static void *bench_main(void *unused) {
    double a[RUNS], t[RUNS], m[RUNS], f[RUNS];
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
        f[r] = atomic_floor();
    }
    printf("sem_acquire_release_ns %.2f\n", median(a));
    printf("sem_try_release_ns %.2f\n", median(t));
    printf("mutex_lock_unlock_ns %.2f\n", median(m));
    printf("atomic_floor_ns %.2f\n", median(f));
    return unused;
}

static void on_event(tern__sched *s, uint64_t data, uint32_t events) {
    (void)s, (void)data, (void)events;
}

/* ---- cross-worker ping-pong ------------------------------------------------ */

#define ROUNDS 20000
static tern_sem ping = TERN_SEM_INIT(0), pong = TERN_SEM_INIT(0);
static int stop_b;

static void *ponger(void *unused) {
    for (int i = 0; i < ROUNDS; i++) {
        tern_sem_acquire(&ping);
        tern_sem_release(&pong);
    }
    return unused;
}

static void *pinger(void *unused) {
    tern_task *t = tern_spawn_on(1, ponger, NULL);
    double t0 = now_ns();
    for (int i = 0; i < ROUNDS; i++) {
        tern_sem_release(&ping);
        tern_sem_acquire(&pong);
    }
    double us = (now_ns() - t0) / ROUNDS / 1000.0;
    tern_join(t, NULL);
    printf("cross_worker_roundtrip_us %.2f\n", us);
    return unused;
}

static void *worker_b(void *arg) {
    tern__sched *b = arg;
    tern__sched_self = b;
    while (!__atomic_load_n(&stop_b, __ATOMIC_ACQUIRE) || b->coros_live)
        tern__sched_poll(b, on_event, 10000000);
    return NULL;
}

static void cross_worker(void) {
    static tern__sched a, b;
    if (tern__sched_init(&a, 0, 64 * 1024) < 0 || tern__sched_init(&b, 1, 64 * 1024) < 0) exit(1);
    tern__sched_group_add(&a);
    tern__sched_group_add(&b);
    pthread_t th;
    pthread_create(&th, NULL, worker_b, &b);
    tern__sched_self = &a;
    tern_task *t = tern_spawn(pinger, NULL);
    while (a.coros_live) tern__sched_poll(&a, on_event, -1);
    tern_join(t, NULL);
    __atomic_store_n(&stop_b, 1, __ATOMIC_RELEASE);
    pthread_join(th, NULL);
    tern__sched_group_remove(&a);
    tern__sched_group_remove(&b);
    tern__sched_self = NULL;
    tern__sched_destroy(&a);
    tern__sched_destroy(&b);
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
    cross_worker();
    return 0;
}
