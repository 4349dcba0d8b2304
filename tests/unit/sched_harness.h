/* A scheduler without a server, for unit tests of the runtime and of what
 * runs on it (sync, offload, pool, client): run_main(fn, arg) runs fn(arg)
 * as a task on a fresh scheduler until it and every task it left behind
 * have finished; 30 s at most, a hang is a failure. Include after check.h. */
#ifndef TERN_TEST_SCHED_HARNESS_H
#define TERN_TEST_SCHED_HARNESS_H

#include <stdio.h>
#include <stdlib.h>
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

#endif
