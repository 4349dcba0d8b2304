/* A scheduler without a server, for unit tests of the runtime and of what
 * runs on it (sync, offload, pool, client): run_main(fn, arg) runs fn(arg)
 * as a task on a fresh scheduler until it and every task it left behind
 * have finished; 30 s at most, a hang is a failure. Include after check.h.
 *
 * run_group(n, fn, arg) does the same with n schedulers on n threads (ids
 * 0..n-1, registered in the scheduler group as a server registers its
 * workers): fn runs as a task on scheduler 0 (the calling thread) and
 * reaches the others with tern_spawn_on. Every thread polls until fn has
 * returned and no scheduler has a coroutine or a spawn left; 60 s at most. */
#ifndef TERN_TEST_SCHED_HARNESS_H
#define TERN_TEST_SCHED_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rt/sched.h"
#include "tern.h"

/* the scheduler handles its own events; a harness has no others */
static void harness_on_event(tern__sched *s, uint64_t data, uint32_t events) {
    (void)s;
    (void)data;
    (void)events;
}

typedef struct harness_box {
    void *(*fn)(void *);
    void *arg;
    int done;
} harness_box;

static void *harness_wrap(void *a) {
    harness_box *b = a;
    b->fn(b->arg);
    b->done = 1;
    return NULL;
}

/* id: the scheduler's worker index (tests of cross-worker checks use two). */
static void run_main_id(void *(*fn)(void *), void *arg, int id) {
    tern__sched s;
    if (tern__sched_init(&s, id, 128 * 1024) < 0) {
        fprintf(stderr, "tern__sched_init failed\n");
        exit(1);
    }
    tern__sched_self = &s;
    harness_box b = {fn, arg, 0};
    tern_task *t = tern_spawn(harness_wrap, &b);
    CHECK(t != NULL);
    uint64_t limit = tern_clock_ns() + 30000000000ull;
    while (!b.done || s.coros_live) {
        tern__sched_poll(&s, harness_on_event, 50000000);
        if (tern_clock_ns() > limit) {
            fprintf(stderr, "test hung (done=%d, live=%llu)\n", b.done,
                    (unsigned long long)s.coros_live);
            _exit(1); /* not exit: atexit handlers could wait on the stuck work */
        }
    }
    CHECK_INT(tern_join(t, NULL), 0);
    tern__sched_self = NULL;
    tern__sched_destroy(&s);
}

static inline void run_main(void *(*fn)(void *), void *arg) { run_main_id(fn, arg, 0); }

#include <pthread.h>

#define HARNESS_MAX_THREADS 16

typedef struct harness_group {
    int n;
    int stop; /* atomic: fn has returned */
    uint64_t limit_ns;
    tern__sched scheds[HARNESS_MAX_THREADS];
} harness_group;

static inline uint64_t harness_group_load(harness_group *g) {
    uint64_t sum = 0;
    for (int i = 0; i < g->n; i++) sum += tern__sched_load(&g->scheds[i]);
    return sum;
}

/* One thread's loop: until fn is over and no scheduler has work left. */
static inline void harness_group_loop(harness_group *g, tern__sched *s, harness_box *b) {
    for (;;) {
        tern__sched_poll(s, harness_on_event, 5000000);
        if (b && b->done && !s->coros_live) __atomic_store_n(&g->stop, 1, __ATOMIC_RELEASE);
        if (__atomic_load_n(&g->stop, __ATOMIC_ACQUIRE) && harness_group_load(g) == 0) break;
        if (tern_clock_ns() > g->limit_ns) {
            fprintf(stderr, "test hung on scheduler %d (live=%llu, group load %llu)\n", s->id,
                    (unsigned long long)s->coros_live,
                    (unsigned long long)harness_group_load(g));
            _exit(1);
        }
    }
}

typedef struct harness_thread_arg {
    harness_group *g;
    int id;
} harness_thread_arg;

static inline void *harness_group_thread(void *a) {
    harness_thread_arg *ta = a;
    tern__sched_self = &ta->g->scheds[ta->id];
    harness_group_loop(ta->g, tern__sched_self, NULL);
    tern__sched_self = NULL;
    return NULL;
}

static inline void run_group(int n, void *(*fn)(void *), void *arg) {
    static harness_group g; /* big (n schedulers); one group at a time */
    memset(&g, 0, sizeof g);
    g.n = n;
    g.limit_ns = tern_clock_ns() + 60000000000ull;
    for (int i = 0; i < n; i++) {
        if (tern__sched_init(&g.scheds[i], i, 128 * 1024) < 0 ||
            tern__sched_group_add(&g.scheds[i]) < 0) {
            fprintf(stderr, "scheduler %d: init or registration failed\n", i);
            exit(1);
        }
    }
    pthread_t th[HARNESS_MAX_THREADS];
    harness_thread_arg ta[HARNESS_MAX_THREADS];
    for (int i = 1; i < n; i++) {
        ta[i] = (harness_thread_arg){&g, i};
        CHECK_INT(pthread_create(&th[i], NULL, harness_group_thread, &ta[i]), 0);
    }
    tern__sched_self = &g.scheds[0];
    harness_box b = {fn, arg, 0};
    tern_task *t = tern_spawn(harness_wrap, &b);
    CHECK(t != NULL);
    harness_group_loop(&g, &g.scheds[0], &b);
    CHECK_INT(tern_join(t, NULL), 0);
    tern__sched_self = NULL;
    for (int i = 1; i < n; i++) pthread_join(th[i], NULL);
    for (int i = 0; i < n; i++) tern__sched_group_remove(&g.scheds[i]);
    for (int i = 0; i < n; i++) tern__sched_destroy(&g.scheds[i]);
}

#endif
