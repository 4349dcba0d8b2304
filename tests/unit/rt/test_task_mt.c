/* Tasks on other workers: tern_spawn_on to a given worker or the least
 * loaded one, and join / join_timeout / join_all / detach / cancel across
 * workers, on 2 and 4 schedulers on as many threads (run_group). */
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rt/sched.h"
#include "tern.h"

#define MS 1000000ull

#include "sched_harness.h"

static int nthreads;

static uint64_t ms_since(uint64_t t0) {
    return (tern_clock_ns() - t0) / MS;
}

/* Returns arg + 1000 * (the worker it ran on + 1). */
static void *where(void *arg) {
    tern_yield(); /* parks and resumes on its own worker */
    return (void *)((uintptr_t)arg + 1000u * (uintptr_t)(tern__sched_self->id + 1));
}

static void *sleep_then(void *arg) {
    int r = tern_sleep((uintptr_t)arg);
    return (void *)(intptr_t)(r == 0 ? (intptr_t)arg : r);
}

static void *t_spawn_join(void *unused) {
    for (int w = 0; w < nthreads; w++) {
        void *r = NULL;
        tern_task *t = tern_spawn_on(w, where, (void *)7);
        CHECK(t != NULL);
        CHECK_INT(tern_join(t, &r), 0);
        CHECK_INT((uintptr_t)r, 7 + 1000u * (unsigned)(w + 1));
    }
    /* joined after it finished on the other worker */
    tern_task *t = tern_spawn_on(1, where, (void *)1);
    tern_sleep(5);
    void *r = NULL;
    CHECK_INT(tern_join(t, &r), 0);
    CHECK_INT((uintptr_t)r, 2001);
    /* no such worker */
    errno = 0;
    CHECK(tern_spawn_on(nthreads, where, NULL) == NULL);
    CHECK_INT(errno, EINVAL);
    CHECK(tern_spawn_on(-2, where, NULL) == NULL);
    CHECK(tern_spawn_on(TERN__SCHED_GROUP_MAX, where, NULL) == NULL);
    CHECK(tern_spawn_on(0, NULL, NULL) == NULL);
    return unused;
}

static void *t_join_all(void *unused) {
    enum { N = 12 };
    tern_task *ts[N];
    void *rs[N];
    uint64_t t0 = tern_clock_ns();
    for (int i = 0; i < N; i++)
        ts[i] = tern_spawn_on(i % nthreads, sleep_then, (void *)(uintptr_t)(10 + i));
    CHECK_INT(tern_join_all(ts, N, rs), 0);
    uint64_t took = ms_since(t0);
    CHECK(took >= 20 && took < 500); /* concurrent, not 12 sleeps in a row */
    for (int i = 0; i < N; i++) {
        CHECK(ts[i] == NULL);
        CHECK_INT((uintptr_t)rs[i], 10 + i);
    }
    return unused;
}

static void *t_join_timeout(void *unused) {
    tern_task *t = tern_spawn_on(1, sleep_then, (void *)40);
    void *r = NULL;
    uint64_t t0 = tern_clock_ns();
    CHECK_INT(tern_join_timeout(t, &r, 5), -ETIMEDOUT);
    CHECK(ms_since(t0) >= 4);
    CHECK_INT(tern_join_timeout(t, &r, 0), -ETIMEDOUT);
    CHECK_INT(tern_join(t, &r), 0); /* still joinable */
    CHECK_INT((uintptr_t)r, 40);
    /* many short joins racing the end of the task: the late wake of a
     * join that timed out must not cut a later park short */
    for (int i = 0; i < 50; i++) {
        t = tern_spawn_on(1, sleep_then, (void *)1);
        int jr;
        while ((jr = tern_join_timeout(t, &r, 1)) == -ETIMEDOUT) {
        }
        CHECK_INT(jr, 0);
        CHECK_INT((uintptr_t)r, 1);
        t0 = tern_clock_ns();
        CHECK_INT(tern_sleep(2), 0);
        CHECK(tern_clock_ns() - t0 >= 2 * MS);
    }
    return unused;
}

/* cancel from worker 0 reaches the task's coroutine on worker 1 */
static void *forever(void *arg) {
    int *started = arg;
    if (started) __atomic_store_n(started, 1, __ATOMIC_RELEASE);
    int r = tern_sleep(UINT64_MAX);
    return (void *)(intptr_t)r;
}

static void *t_cancel(void *unused) {
    static int started;
    started = 0;
    tern_task *t = tern_spawn_on(1, forever, &started);
    while (!__atomic_load_n(&started, __ATOMIC_ACQUIRE)) tern_sleep(1);
    tern_sleep(2); /* parked in its sleep */
    uint64_t t0 = tern_clock_ns();
    tern_cancel(t);
    void *r = NULL;
    CHECK_INT(tern_join(t, &r), 0);
    CHECK_INT((intptr_t)r, -ECANCELED);
    CHECK(ms_since(t0) < 1000);
    /* cancelled before its coroutine exists on the target */
    t = tern_spawn_on(1, forever, NULL);
    tern_cancel(t);
    CHECK_INT(tern_join(t, &r), 0);
    CHECK_INT((intptr_t)r, -ECANCELED);
    /* cancelling a finished task is a no-op */
    t = tern_spawn_on(1, where, NULL);
    tern_sleep(5);
    tern_cancel(t);
    CHECK_INT(tern_join(t, &r), 0);
    CHECK_INT((uintptr_t)r, 2000);
    return unused;
}

/* join_all in a cancelled caller cancels its remote children and waits */
typedef struct ja_parent {
    int r;
    int finished;
} ja_parent;

static void *ja_parent_main(void *arg) {
    ja_parent *p = arg;
    tern_task *ts[4];
    for (int i = 0; i < 4; i++) ts[i] = tern_spawn_on((i + 1) % nthreads, forever, NULL);
    p->r = tern_join_all(ts, 4, NULL);
    p->finished = 1;
    for (int i = 0; i < 4; i++) CHECK(ts[i] == NULL);
    return NULL;
}

static void *t_join_all_cancel(void *unused) {
    ja_parent p = {0};
    tern_task *t = tern_spawn_on(1, ja_parent_main, &p);
    tern_sleep(10);
    tern_cancel(t);
    CHECK_INT(tern_join(t, NULL), 0);
    CHECK_INT(p.r, -ECANCELED);
    CHECK(p.finished);
    return unused;
}

/* detached on another worker: frees itself (LeakSanitizer would tell) */
static int detached_ran;

static void *set_flag(void *arg) {
    tern_sleep(2);
    __atomic_fetch_add((int *)arg, 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *t_detach(void *unused) {
    detached_ran = 0;
    for (int i = 0; i < 10; i++) tern_detach(tern_spawn_on(i % nthreads, set_flag, &detached_ran));
    tern_task *t = tern_spawn_on(1, where, NULL);
    tern_sleep(5);
    tern_detach(t); /* already finished: freed now */
    while (__atomic_load_n(&detached_ran, __ATOMIC_ACQUIRE) < 10) tern_sleep(1);
    return unused;
}

/* a task on worker 1 joins a task on worker 0 (neither is the caller) */
static void *join_other(void *arg) {
    void *r = NULL;
    int jr = tern_join(arg, &r);
    return jr == 0 ? r : (void *)(intptr_t)jr;
}

static void *t_join_from_elsewhere(void *unused) {
    tern_task *inner = tern_spawn_on(0, sleep_then, (void *)15);
    tern_task *outer = tern_spawn_on(1, join_other, inner);
    void *r = NULL;
    CHECK_INT(tern_join(outer, &r), 0);
    CHECK_INT((uintptr_t)r, 15);
    return unused;
}

/* TERN_WORKER_ANY spreads work: sleeping tasks count as load */
static void *which(void *arg) {
    tern_sleep(20);
    return (void *)(intptr_t)tern__sched_self->id;
}

static void *t_any(void *unused) {
    enum { N = 16 };
    tern_task *ts[N];
    void *rs[N];
    for (int i = 0; i < N; i++) ts[i] = tern_spawn_on(TERN_WORKER_ANY, which, NULL);
    CHECK_INT(tern_join_all(ts, N, rs), 0);
    int per[HARNESS_MAX_THREADS] = {0};
    for (int i = 0; i < N; i++) per[(intptr_t)rs[i]]++;
    for (int w = 0; w < nthreads; w++) {
        /* main (on 0) is live too: each worker gets about N / nthreads */
        CHECK(per[w] >= N / nthreads - 2 && per[w] <= N / nthreads + 2);
    }
    return unused;
}

/* many small remote tasks from every worker to every worker */
static void *fan_leaf(void *arg) {
    return arg;
}

static void *fan_node(void *arg) {
    tern_task *ts[8];
    void *rs[8];
    uintptr_t sum = 0;
    for (int i = 0; i < 8; i++) ts[i] = tern_spawn_on(i % nthreads, fan_leaf, (void *)(uintptr_t)i);
    CHECK_INT(tern_join_all(ts, 8, rs), 0);
    for (int i = 0; i < 8; i++) sum += (uintptr_t)rs[i];
    return (void *)(sum + (uintptr_t)arg);
}

static void *t_fan(void *unused) {
    enum { N = 64 };
    tern_task *ts[N];
    void *rs[N];
    for (int i = 0; i < N; i++) ts[i] = tern_spawn_on(i % nthreads, fan_node, (void *)(uintptr_t)i);
    CHECK_INT(tern_join_all(ts, N, rs), 0);
    for (int i = 0; i < N; i++) CHECK_INT((uintptr_t)rs[i], 28 + i);
    return unused;
}

/* a plain thread (no worker) starts a task on a worker: detach works,
 * join of an unfinished task says -EPERM (nothing to park), join of a
 * finished one reaps it */
static void *plain_thread(void *arg) {
    int *flag = arg;
    tern_detach(tern_spawn_on(1, set_flag, flag));
    tern_task *t = tern_spawn_on(TERN_WORKER_ANY, sleep_then, (void *)30);
    CHECK(t != NULL);
    void *r = NULL;
    CHECK_INT(tern_join(t, &r), -EPERM);
    struct timespec ts = {0, 200 * 1000000};
    nanosleep(&ts, NULL);
    CHECK_INT(tern_join(t, &r), 0);
    CHECK_INT((uintptr_t)r, 30);
    return NULL;
}

static void *t_from_plain_thread(void *unused) {
    static int flag;
    flag = 0;
    pthread_t th;
    pthread_create(&th, NULL, plain_thread, &flag);
    while (!__atomic_load_n(&flag, __ATOMIC_ACQUIRE)) tern_sleep(1);
    /* wait for the thread without blocking this worker's loop */
    int joined = 0;
    for (int i = 0; i < 500 && !(joined = pthread_tryjoin_np(th, NULL) == 0); i++) tern_sleep(10);
    CHECK(joined);
    return unused;
}

int main(void) {
    CHECK(tern_spawn_on(0, where, NULL) == NULL); /* no scheduler registered */
    for (nthreads = 2; nthreads <= 4; nthreads += 2) {
        run_group(nthreads, t_spawn_join, NULL);
        run_group(nthreads, t_join_all, NULL);
        run_group(nthreads, t_join_timeout, NULL);
        run_group(nthreads, t_cancel, NULL);
        run_group(nthreads, t_join_all_cancel, NULL);
        run_group(nthreads, t_detach, NULL);
        CHECK_INT(detached_ran, 10);
        run_group(nthreads, t_join_from_elsewhere, NULL);
        run_group(nthreads, t_any, NULL);
        run_group(nthreads, t_fan, NULL);
        run_group(nthreads, t_from_plain_thread, NULL);
    }
    return check_done();
}
