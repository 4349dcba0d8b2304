/* Offload pool: blocking calls on pool threads, results back on the
 * caller's worker, bounded queue, cancellation, no stale wakes, shutdown.
 *
 * Standalone build (from /work/main):
 *   clang -std=gnu11 -g -O1 -D_GNU_SOURCE -fsanitize=address,undefined \
 *     -fno-sanitize-recover=undefined -Iinclude -Isrc -Itests/unit \
 *     tests/unit/rt/test_offload.c src/rt/{coro,timer,sched,task,sync,offload}.c \
 *     src/rt/coro_x86_64.S -o /tmp/test_offload -lpthread */
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "rt/offload.h"
#include "rt/sched.h"
#include "tern.h"
#include "tern/sync.h"

#define MS 1000000ull

#include "sched_harness.h"


static uint64_t ms_since(uint64_t t0) { return (tern_clock_ns() - t0) / MS; }

static void block_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0) {
    }
}

/* ---- jobs ---------------------------------------------------------------- */

typedef struct job {
    long ms;                /* blocking time */
    pthread_t ran_on;
    atomic_int finished;
    long value;
} job;

static void *blocking_job(void *arg) {
    job *j = arg;
    j->ran_on = pthread_self();
    block_ms(j->ms);
    atomic_store(&j->finished, 1);
    return (void *)(j->value * 2);
}

static void *trivial_job(void *arg) { return (void *)((uintptr_t)arg + 1); }

/* A job that blocks until released (for queue-full tests). */
static pthread_mutex_t gate_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t gate_cv = PTHREAD_COND_INITIALIZER;
static int gate_open;
static atomic_int gate_entered;

static void *gated_job(void *arg) {
    atomic_fetch_add(&gate_entered, 1);
    pthread_mutex_lock(&gate_lock);
    while (!gate_open) pthread_cond_wait(&gate_cv, &gate_lock);
    pthread_mutex_unlock(&gate_lock);
    return arg;
}

static void open_gate(int open) {
    pthread_mutex_lock(&gate_lock);
    gate_open = open;
    pthread_cond_broadcast(&gate_cv);
    pthread_mutex_unlock(&gate_lock);
}

/* ---- tests ---------------------------------------------------------------- */

static void inline_outside(void) {
    void *r = NULL;
    job j = {.ms = 1, .value = 21};
    CHECK_INT(tern_offload(blocking_job, &j, &r), 0);
    CHECK_INT((intptr_t)r, 42);
    CHECK(pthread_equal(j.ran_on, pthread_self())); /* no worker: inline */
    CHECK_INT(tern_offload(NULL, NULL, NULL), -EINVAL);
    tern__offload_stats st;
    tern__offload_get_stats(&st);
    CHECK_INT(st.threads, 0); /* inline calls do not start the pool */
}

typedef struct ticker {
    int stop;
    int ticks;
} ticker;

static void *tick_task(void *arg) {
    ticker *t = arg;
    while (!t->stop && tern_sleep(1) == 0) t->ticks++;
    return NULL;
}

static void *t_basic(void *unused) {
    ticker tk = {0, 0};
    tern_task *tt = tern_spawn(tick_task, &tk);
    job j = {.ms = 50, .value = 5};
    void *r = NULL;
    pthread_t me = pthread_self();
    tern__sched *home = tern__sched_self;
    uint64_t t0 = tern_clock_ns();
    CHECK_INT(tern_offload(blocking_job, &j, &r), 0);
    uint64_t took = ms_since(t0);
    CHECK_INT((intptr_t)r, 10);
    CHECK(!pthread_equal(j.ran_on, me)); /* ran on a pool thread */
    CHECK(pthread_equal(pthread_self(), me)); /* resumed on our worker */
    CHECK(tern__sched_self == home);
    CHECK(took >= 49 && took < 500);
    /* the worker kept running other tasks meanwhile */
    fprintf(stderr, "offload: 50 ms job took %llu ms; %d ticks of a 1 ms timer meanwhile\n",
            (unsigned long long)took, tk.ticks);
    CHECK(tk.ticks >= 10); /* a blocked worker would tick once at most */
    tk.stop = 1;
    CHECK_INT(tern_join(tt, NULL), 0);
    CHECK_INT(tern_offload(trivial_job, (void *)1, NULL), 0); /* result may be NULL */

    tern__offload_stats st;
    tern__offload_get_stats(&st);
    CHECK(st.threads >= 4);
    CHECK_INT(tern_offload_configure(2, 8), -EBUSY);
    return unused;
}

typedef struct par {
    job j;
    int r;
} par;

static void *par_task(void *arg) {
    par *p = arg;
    p->r = tern_offload(blocking_job, &p->j, NULL);
    return NULL;
}

static void *t_parallel(void *unused) {
    par ps[4];
    tern_task *ts[4];
    uint64_t t0 = tern_clock_ns();
    for (int i = 0; i < 4; i++) {
        ps[i] = (par){.j = {.ms = 60}, .r = 1};
        ts[i] = tern_spawn(par_task, &ps[i]);
    }
    CHECK_INT(tern_join_all(ts, 4, NULL), 0);
    uint64_t took = ms_since(t0);
    fprintf(stderr, "offload: 4 x 60 ms jobs on 4 threads took %llu ms\n",
            (unsigned long long)took);
    CHECK(took >= 59 && took < 200); /* in parallel, not 240 ms */
    for (int i = 0; i < 4; i++) CHECK_INT(ps[i].r, 0);
    return unused;
}

typedef struct gated {
    int r;
    void *res;
    uintptr_t v;
} gated;

static void *gated_task(void *arg) {
    gated *g = arg;
    g->r = tern_offload(gated_job, (void *)g->v, &g->res);
    return NULL;
}

/* 1 thread, queue of 2: one job runs, two wait, the fourth is refused at
 * once with -EAGAIN. */
static void *t_queue_full(void *unused) {
    open_gate(0);
    atomic_store(&gate_entered, 0);
    gated g[3];
    tern_task *ts[3];
    for (int i = 0; i < 3; i++) {
        g[i] = (gated){1, NULL, (uintptr_t)i + 100};
        ts[i] = tern_spawn(gated_task, &g[i]);
        /* the first job must have left the queue before the others come */
        while (i == 0 && atomic_load(&gate_entered) < 1) tern_sleep(1);
    }
    tern_sleep(1);
    tern__offload_stats st;
    tern__offload_get_stats(&st);
    CHECK_INT(st.threads, 1);
    CHECK_INT(st.running, 1);
    CHECK_INT(st.queued, 2);
    uint64_t t0 = tern_clock_ns();
    CHECK_INT(tern_offload(trivial_job, NULL, NULL), -EAGAIN);
    CHECK(tern_clock_ns() - t0 < 5 * MS); /* refused at once, not queued */
    tern__offload_get_stats(&st);
    CHECK_INT(st.rejected, 1);
    open_gate(1);
    CHECK_INT(tern_join_all(ts, 3, NULL), 0);
    for (int i = 0; i < 3; i++) {
        CHECK_INT(g[i].r, 0);
        CHECK_INT((uintptr_t)g[i].res, i + 100);
    }
    return unused;
}

/* A caller cancelled while its job runs returns only after the job ended
 * (it may be using the caller's memory), with -ECANCELED and the result;
 * it stays cancelled afterwards. */
typedef struct cancelled_call {
    job j;
    int r, finished_at_return, later_sleep;
    void *res;
} cancelled_call;

static void *cancel_victim(void *arg) {
    cancelled_call *c = arg;
    c->r = tern_offload(blocking_job, &c->j, &c->res);
    c->finished_at_return = atomic_load(&c->j.finished);
    c->later_sleep = tern_sleep(1);
    return NULL;
}

static void *t_cancel(void *unused) {
    cancelled_call c = {.j = {.ms = 60, .value = 4}};
    tern_task *t = tern_spawn(cancel_victim, &c);
    tern_sleep(10);
    uint64_t t0 = tern_clock_ns();
    tern_cancel(t);
    tern_sleep(5);
    tern_cancel(t); /* twice, while it waits */
    CHECK_INT(tern_join(t, NULL), 0);
    CHECK(ms_since(t0) >= 45);
    CHECK_INT(c.r, -ECANCELED);
    CHECK(c.finished_at_return);
    CHECK_INT((intptr_t)c.res, 8);
    CHECK_INT(c.later_sleep, -ECANCELED);

    /* cancelled before the call: the job still runs to the end */
    cancelled_call d = {.j = {.ms = 5, .value = 1}};
    t = tern_spawn(cancel_victim, &d);
    tern_cancel(t);
    CHECK_INT(tern_join(t, NULL), 0);
    CHECK_INT(d.r, -ECANCELED);
    CHECK(d.finished_at_return);
    return unused;
}

/* After each offload, an unrelated park must not be cut short by a
 * leftover completion wake (it would return TERN_OFFLOAD_WAKE early). */
typedef struct stale {
    int bad_sleep, bad_offload, cancels, rounds;
} stale;

static void *stale_task(void *arg) {
    stale *s = arg;
    for (int i = 0; i < s->rounds; i++) {
        int r = tern_offload(trivial_job, (void *)(uintptr_t)i, NULL);
        if (r == -ECANCELED) {
            s->cancels++;
            return NULL;
        }
        if (r != 0) s->bad_offload++;
        uint64_t t0 = tern_clock_ns();
        r = tern_sleep_us(200);
        if (r == -ECANCELED) {
            s->cancels++;
            return NULL;
        }
        if (r != 0 || tern_clock_ns() - t0 < 200000) s->bad_sleep++;
    }
    return NULL;
}

static void *t_stress(void *unused) {
    enum { N = 16 };
    stale st[N];
    tern_task *ts[N];
    for (int i = 0; i < N; i++) {
        st[i] = (stale){0, 0, 0, 300};
        ts[i] = tern_spawn(stale_task, &st[i]);
    }
    /* cancel half of them at staggered times while jobs fly */
    for (int i = 0; i < N; i += 2) {
        tern_sleep_us(700);
        tern_cancel(ts[i]);
    }
    int bad = 0, cancels = 0;
    for (int i = 0; i < N; i++) {
        CHECK_INT(tern_join(ts[i], NULL), 0);
        bad += st[i].bad_sleep + st[i].bad_offload;
        cancels += st[i].cancels;
    }
    fprintf(stderr, "offload: stress with %d callers, %d cancelled, %d bad wakes\n", N, cancels,
            bad);
    CHECK_INT(bad, 0);
    CHECK_INT(cancels, N / 2);
    return unused;
}

/* Two workers on two threads share the pool; each gets its own results. */
typedef struct two {
    int id, ok, rounds;
} two;

static void *two_main(void *arg) {
    two *t = arg;
    tern__sched *home = tern__sched_self;
    pthread_t me = pthread_self();
    for (int i = 0; i < t->rounds; i++) {
        void *r = NULL;
        uintptr_t v = (uintptr_t)(t->id * 100000 + i);
        if (tern_offload(trivial_job, (void *)v, &r) == 0 && (uintptr_t)r == v + 1 &&
            tern__sched_self == home && pthread_equal(pthread_self(), me))
            t->ok++;
    }
    return NULL;
}

static void *worker_thread(void *arg) {
    two *t = arg;
    run_main_id(two_main, t, t->id);
    return NULL;
}

static void two_workers(void) {
    two a = {1, 0, 2000}, b = {2, 0, 2000};
    pthread_t ta, tb;
    pthread_create(&ta, NULL, worker_thread, &a);
    pthread_create(&tb, NULL, worker_thread, &b);
    pthread_join(ta, NULL);
    pthread_join(tb, NULL);
    CHECK_INT(a.ok, 2000);
    CHECK_INT(b.ok, 2000);
}

int main(void) {
    inline_outside();
    CHECK_INT(tern_offload_configure(2000, 0), -EINVAL);
    CHECK_INT(tern_offload_configure(0, 0), 0); /* defaults */
    run_main(t_basic, NULL);
    run_main(t_parallel, NULL);
    run_main(t_cancel, NULL);
    run_main(t_stress, NULL);
    two_workers();

    /* shutdown, reconfigure, restart lazily */
    tern_offload_shutdown();
    tern__offload_stats st;
    tern__offload_get_stats(&st);
    CHECK_INT(st.threads, 0);
    CHECK_INT(tern_offload_configure(1, 2), 0);
    run_main(t_queue_full, NULL);
    tern_offload_shutdown();
    tern_offload_shutdown(); /* idempotent */
    CHECK_INT(tern_offload_configure(0, 0), 0);
    run_main(t_basic, NULL);
    return check_done();
}
