/* tern_pool: bounded size under 1000 concurrent acquirers, FIFO waiters,
 * timeouts, cancellation, discard and replacement, idle expiry, min_idle
 * refill, validation, and stats read from another thread, on a bare
 * scheduler (no server) on the main thread; then one pool shared by 2 and
 * 4 schedulers on as many threads (run_group): bounded size, FIFO across
 * workers, create on the acquiring worker, expiry armed from a worker that
 * is not the pool's home, free from another worker.
 *
 * Standalone build (from /work/main; the pool reports to the metrics module,
 * so it takes the whole library):
 *   clang -std=gnu11 -g -O1 -D_GNU_SOURCE -fsanitize=address,undefined \
 *     -fno-sanitize-recover=undefined -Iinclude -Isrc -Itests/unit \
 *     tests/unit/rt/test_pool.c $(find src -name '*.c') \
 *     src/rt/coro_x86_64.S -o /tmp/test_pool -lpthread */
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "rt/sched.h"
#include "tern.h"
#include "tern/pool.h"

#define MS 1000000ull

#include "sched_harness.h"

/* ---- a resource that knows whether it is held ----------------------------- */

typedef struct factory {
    int next_id;
    int live; /* created and not destroyed */
    int destroyed;
    int fail_next;      /* create fails this many times with -ECONNREFUSED */
    unsigned create_ms; /* create parks this long (a connect) */
    int created_in_a_row;
} factory;

typedef struct res {
    int id;
    int held;
    int broken;
} res;

static int f_create(void *arg, void **out) {
    factory *f = arg;
    if (f->create_ms) {
        int r = tern_sleep(f->create_ms);
        if (r < 0) return r;
    }
    if (f->fail_next > 0) {
        f->fail_next--;
        return -ECONNREFUSED;
    }
    res *r = calloc(1, sizeof *r);
    if (!r) return -ENOMEM;
    r->id = ++f->next_id;
    f->live++;
    *out = r;
    return 0;
}

static int f_validate(void *arg, void *p) {
    res *r = p;
    return r->broken ? -ECONNRESET : 0;
}

static void f_destroy(void *arg, void *p) {
    factory *f = arg;
    res *r = p;
    CHECK(!r->held); /* never destroyed while a caller holds it */
    f->live--;
    f->destroyed++;
    free(r);
}

static tern_pool *make_pool(factory *f, size_t max, size_t min_idle, uint64_t idle_ms) {
    tern_pool_config cfg = {.max_size = max,
                            .min_idle = min_idle,
                            .idle_timeout_ms = idle_ms,
                            .create = f_create,
                            .validate = f_validate,
                            .destroy = f_destroy,
                            .arg = f};
    tern_pool *p = tern_pool_new(&cfg);
    CHECK(p != NULL);
    return p;
}

static tern_pool_stats stats(tern_pool *p) {
    tern_pool_stats st;
    tern_pool_stats_read(p, &st);
    return st;
}

static int take(tern_pool *p, int64_t timeout, res **out) {
    void *v;
    int r = tern_pool_acquire(p, timeout, &v);
    *out = v;
    if (r == 0) {
        CHECK(!(*out)->held); /* exclusive: nobody else holds it */
        (*out)->held = 1;
    } else {
        CHECK(v == NULL);
    }
    return r;
}

static void give(tern_pool *p, res *r) {
    r->held = 0;
    tern_pool_release(p, r);
}

static void toss(tern_pool *p, res *r) {
    r->held = 0;
    tern_pool_discard(p, r);
}

/* ---- argument checks -------------------------------------------------------- */

static void t_create_args(void) {
    factory f = {0};
    tern_pool_config cfg = {.max_size = 0, .create = f_create, .destroy = f_destroy, .arg = &f};
    errno = 0;
    CHECK(tern_pool_new(&cfg) == NULL && errno == EINVAL);
    cfg.max_size = 2;
    cfg.min_idle = 3;
    CHECK(tern_pool_new(&cfg) == NULL && errno == EINVAL);
    cfg.min_idle = 0;
    cfg.destroy = NULL;
    CHECK(tern_pool_new(&cfg) == NULL && errno == EINVAL);
    cfg.destroy = f_destroy;
    cfg.validate_on_acquire = 1; /* without a validate callback */
    CHECK(tern_pool_new(&cfg) == NULL && errno == EINVAL);
    cfg.validate_on_acquire = 0;
    tern_pool *p = tern_pool_new(&cfg);
    CHECK(p != NULL);
    void *v = (void *)1;
    CHECK_INT(tern_pool_acquire(p, -1, &v), -EPERM); /* outside a coroutine */
    CHECK(v == NULL);
    CHECK_INT(tern_pool_free(p), 0);
}

/* ---- 1000 concurrent acquirers never see more than max_size --------------- */

typedef struct churn {
    tern_pool *p;
    int holders, max_holders, ok, errors;
    unsigned seed;
    atomic_int stop_reader;
    atomic_int reader_bad, reader_reads;
} churn;

static void *churn_task(void *arg) {
    churn *c = arg;
    res *r;
    if (take(c->p, -1, &r) != 0) {
        c->errors++;
        return NULL;
    }
    c->holders++;
    if (c->holders > c->max_holders) c->max_holders = c->holders;
    tern_pool_stats st = stats(c->p);
    CHECK(st.size <= 8 && st.in_use <= 8);
    c->seed = c->seed * 1103515245u + 12345u;
    tern_sleep_us((c->seed >> 16) % 1500); /* hold it 0-1.5 ms */
    c->holders--;
    c->ok++;
    give(c->p, r);
    return NULL;
}

/* Another thread reads the stats while the worker churns: every snapshot
 * is consistent (taken under the pool's lock) and within bounds. */
static void *stats_reader(void *arg) {
    churn *c = arg;
    while (!atomic_load(&c->stop_reader)) {
        tern_pool_stats st;
        tern_pool_stats_read(c->p, &st);
        if (st.size != st.idle + st.in_use + st.creating || st.size > 8 || st.in_use > 8)
            atomic_fetch_add(&c->reader_bad, 1);
        atomic_fetch_add(&c->reader_reads, 1);
    }
    return NULL;
}

static void *t_max_under_load(void *unused) {
    factory f = {.create_ms = 1};
    churn c = {.p = make_pool(&f, 8, 0, 0), .seed = 42};
    pthread_t reader;
    pthread_create(&reader, NULL, stats_reader, &c);
    enum { N = 1000 };
    tern_task **t = malloc(N * sizeof *t);
    for (int i = 0; i < N; i++) t[i] = tern_spawn(churn_task, &c);
    tern_sleep(5);
    tern_pool_stats mid = stats(c.p);
    CHECK(mid.waiters > 900); /* they really queued */
    CHECK_INT(tern_join_all(t, N, NULL), 0);
    free(t);
    atomic_store(&c.stop_reader, 1);
    pthread_join(reader, NULL);
    CHECK_INT(c.ok, N);
    CHECK_INT(c.errors, 0);
    CHECK_INT(c.max_holders, 8);
    CHECK_INT(atomic_load(&c.reader_bad), 0);
    CHECK(atomic_load(&c.reader_reads) > 0);
    tern_pool_stats st = stats(c.p);
    CHECK_INT(st.created, 8); /* reused, never more than max created */
    CHECK_INT(st.size, 8);
    CHECK_INT(st.idle, 8);
    CHECK_INT(st.in_use, 0);
    CHECK_INT(st.waiters, 0);
    CHECK_INT(st.acquired, N);
    CHECK(st.waited >= N - 8 - 8); /* all but the first few parked */
    CHECK(st.wait_ns_total > 0);
    CHECK_INT(f.live, 8);
    CHECK_INT(tern_pool_free(c.p), 0);
    CHECK_INT(f.live, 0);
    CHECK_INT(f.destroyed, 8);
    return unused;
}

/* ---- FIFO waiters, timeouts and cancellation ------------------------------ */

typedef struct order_log {
    char s[32];
    int n;
} order_log;

typedef struct waiter_arg {
    tern_pool *p;
    order_log *log;
    char name;
    int64_t timeout;
    unsigned hold_ms;
    int r;
    int ran;
} waiter_arg;

static void *waiter_task(void *arg) {
    waiter_arg *w = arg;
    res *r;
    w->r = take(w->p, w->timeout, &r);
    w->ran = 1;
    if (w->r != 0) return NULL;
    w->log->s[w->log->n++] = w->name;
    if (w->hold_ms) tern_sleep(w->hold_ms);
    give(w->p, r);
    return NULL;
}

static void *t_fifo(void *unused) {
    factory f = {0};
    tern_pool *p = make_pool(&f, 1, 0, 0);
    res *held;
    CHECK_INT(take(p, -1, &held), 0);
    order_log lg = {{0}, 0};
    waiter_arg w[5];
    tern_task *t[5];
    for (int i = 0; i < 5; i++) {
        w[i] = (waiter_arg){p, &lg, (char)('a' + i), -1, 1, 0, 0};
        t[i] = tern_spawn(waiter_task, &w[i]);
        tern_yield(); /* each one parks before the next arrives */
    }
    CHECK_INT(stats(p).waiters, 5);
    give(p, held);
    /* a newcomer with a zero timeout does not barge ahead of the queue */
    res *r;
    CHECK_INT(take(p, 0, &r), -ETIMEDOUT);
    CHECK_INT(tern_join_all(t, 5, NULL), 0);
    lg.s[lg.n] = 0;
    CHECK_STR(lg.s, "abcde");
    tern_pool_stats st = stats(p);
    CHECK_INT(st.created, 1);
    CHECK_INT(st.acquired, 6);
    CHECK_INT(st.waited, 5);
    CHECK_INT(st.timeouts, 1);
    CHECK_INT(st.idle, 1);
    CHECK_INT(tern_pool_free(p), 0);
    return unused;
}

static void *t_timeout(void *unused) {
    factory f = {0};
    tern_pool *p = make_pool(&f, 1, 0, 0);
    res *held, *r;
    CHECK_INT(take(p, -1, &held), 0);
    uint64_t t0 = tern_clock_ns();
    CHECK_INT(take(p, 30, &r), -ETIMEDOUT);
    uint64_t took = (tern_clock_ns() - t0) / MS;
    CHECK(took >= 29 && took < 200);
    tern_pool_stats st = stats(p);
    CHECK_INT(st.waiters, 0); /* left the queue */
    CHECK_INT(st.timeouts, 1);
    CHECK_INT(st.in_use, 1);
    CHECK(st.wait_ns_total >= 29 * MS);
    /* the release finds no stale waiter: the resource goes idle */
    give(p, held);
    st = stats(p);
    CHECK_INT(st.idle, 1);
    CHECK_INT(st.in_use, 0);
    CHECK_INT(take(p, 0, &r), 0);
    CHECK(r == held);
    give(p, r);
    CHECK_INT(tern_pool_free(p), 0);
    return unused;
}

static void *t_cancel(void *unused) {
    factory f = {0};
    tern_pool *p = make_pool(&f, 1, 0, 0);
    res *held;
    CHECK_INT(take(p, -1, &held), 0);
    order_log lg = {{0}, 0};
    waiter_arg w[3];
    tern_task *t[3];
    for (int i = 0; i < 3; i++) {
        w[i] = (waiter_arg){p, &lg, (char)('a' + i), -1, 1, 0, 0};
        t[i] = tern_spawn(waiter_task, &w[i]);
        tern_yield();
    }
    /* b is cancelled while queued: it leaves holding nothing */
    tern_cancel(t[1]);
    tern_yield();
    tern_yield();
    CHECK(w[1].ran);
    CHECK_INT(w[1].r, -ECANCELED);
    tern_pool_stats st = stats(p);
    CHECK_INT(st.waiters, 2);
    CHECK_INT(st.in_use, 1);
    CHECK_INT(st.cancelled, 1);
    /* the queue is still a -> c */
    give(p, held);
    CHECK_INT(tern_join_all(t, 3, NULL), 0);
    lg.s[lg.n] = 0;
    CHECK_STR(lg.s, "ac");
    st = stats(p);
    CHECK_INT(st.size, 1);
    CHECK_INT(st.idle, 1);
    CHECK_INT(st.in_use, 0);
    CHECK_INT(st.waiters, 0);
    CHECK_INT(f.live, 1);

    /* granted and cancelled in the same loop pass, both orders: the waiter
     * keeps the resource and releases it; none is lost or doubled */
    for (int order = 0; order < 2; order++) {
        CHECK_INT(take(p, -1, &held), 0);
        order_log lg2 = {{0}, 0};
        waiter_arg a = {p, &lg2, 'a', -1, 0, 0, 0}, b = {p, &lg2, 'b', -1, 0, 0, 0};
        tern_task *ta = tern_spawn(waiter_task, &a);
        tern_yield();
        tern_task *tb = tern_spawn(waiter_task, &b);
        tern_yield();
        if (order == 0) {
            tern_cancel(ta);
            give(p, held);
        } else {
            give(p, held);
            tern_cancel(ta);
        }
        CHECK_INT(tern_join(ta, NULL), 0);
        CHECK_INT(tern_join(tb, NULL), 0);
        CHECK_INT(a.r, 0);
        CHECK_INT(b.r, 0);
        lg2.s[lg2.n] = 0;
        CHECK_STR(lg2.s, "ab");
        st = stats(p);
        CHECK_INT(st.size, 1);
        CHECK_INT(st.idle, 1);
        CHECK_INT(st.waiters, 0);
    }
    CHECK_INT(f.next_id, 1); /* one resource the whole time */
    CHECK_INT(tern_pool_free(p), 0);
    return unused;
}

/* ---- discard and replacement ------------------------------------------------ */

static void *t_discard(void *unused) {
    factory f = {.create_ms = 2};
    tern_pool *p = make_pool(&f, 1, 0, 0);
    res *held;
    CHECK_INT(take(p, -1, &held), 0);
    int first = held->id;
    order_log lg = {{0}, 0};
    waiter_arg w = {p, &lg, 'w', -1, 0, 0, 0};
    tern_task *t = tern_spawn(waiter_task, &w);
    tern_yield();
    CHECK_INT(stats(p).waiters, 1);
    /* broken: destroyed at once, and the waiter creates its replacement */
    toss(p, held);
    CHECK_INT(f.destroyed, 1);
    tern_pool_stats st = stats(p);
    CHECK_INT(st.discards, 1);
    CHECK_INT(st.creating, 1);
    CHECK_INT(st.size, 1);
    CHECK_INT(tern_join(t, NULL), 0);
    CHECK_INT(w.r, 0);
    st = stats(p);
    CHECK_INT(st.created, 2);
    CHECK_INT(st.size, 1);
    CHECK_INT(st.idle, 1);
    res *r;
    CHECK_INT(take(p, 0, &r), 0);
    CHECK(r->id != first);

    /* the replacement's create fails: that waiter gets the error and the
     * slot moves on to the next waiter, whose create succeeds */
    order_log lg2 = {{0}, 0};
    waiter_arg a = {p, &lg2, 'a', -1, 0, 0, 0}, b = {p, &lg2, 'b', -1, 0, 0, 0};
    tern_task *ts[2];
    ts[0] = tern_spawn(waiter_task, &a);
    tern_yield();
    ts[1] = tern_spawn(waiter_task, &b);
    tern_yield();
    f.fail_next = 1;
    toss(p, r);
    CHECK_INT(tern_join_all(ts, 2, NULL), 0);
    CHECK_INT(a.r, -ECONNREFUSED);
    CHECK_INT(b.r, 0);
    st = stats(p);
    CHECK_INT(st.create_failures, 1);
    CHECK_INT(st.size, 1);
    CHECK_INT(st.idle, 1);
    CHECK_INT(f.live, 1);

    /* an acquirer whose own create fails gets the error; nothing leaks */
    CHECK_INT(take(p, 0, &r), 0);
    toss(p, r);
    f.fail_next = 1;
    CHECK_INT(take(p, 0, &r), -ECONNREFUSED);
    st = stats(p);
    CHECK_INT(st.size, 0);
    CHECK_INT(st.creating, 0);
    CHECK_INT(f.live, 0);
    CHECK_INT(tern_pool_free(p), 0);

    /* without waiters, min_idle is refilled in the background */
    factory g = {.create_ms = 1};
    p = make_pool(&g, 3, 1, 0);
    CHECK_INT(take(p, -1, &r), 0);
    tern_sleep(10); /* the filler made one idle resource beside ours */
    st = stats(p);
    CHECK_INT(st.idle, 1);
    CHECK_INT(st.size, 2);
    res *r2;
    CHECK_INT(take(p, 0, &r2), 0);
    toss(p, r2);
    toss(p, r);
    tern_sleep(10);
    st = stats(p);
    CHECK_INT(st.idle, 1); /* back to min_idle, not more */
    CHECK_INT(st.size, 1);
    CHECK_INT(g.live, 1);
    CHECK_INT(tern_pool_free(p), 0);
    CHECK_INT(g.live, 0);
    return unused;
}

/* ---- idle expiry ------------------------------------------------------------- */

static void *t_idle_expiry(void *unused) {
    factory f = {0};
    tern_pool *p = make_pool(&f, 4, 1, 40);
    res *r[4];
    for (int i = 0; i < 4; i++) CHECK_INT(take(p, 0, &r[i]), 0);
    for (int i = 0; i < 4; i++) give(p, r[i]); /* r[3] is the newest idle */
    tern_sleep(20);
    CHECK_INT(stats(p).idle, 4); /* not yet */
    tern_sleep(60);
    tern_pool_stats st = stats(p);
    CHECK_INT(st.idle, 1); /* down to min_idle, by the timer alone */
    CHECK_INT(st.expired, 3);
    CHECK_INT(st.destroyed, 3);
    CHECK_INT(f.live, 1);
    res *x;
    CHECK_INT(take(p, 0, &x), 0);
    CHECK_INT(x->id, 4); /* the most recently used one survived */
    give(p, x);
    tern_sleep(60);
    CHECK_INT(stats(p).idle, 1); /* min_idle is kept however long it idles */
    CHECK_INT(tern_pool_free(p), 0);

    /* min_idle 0: everything goes; a resource in use is never expired */
    factory g = {0};
    p = make_pool(&g, 4, 0, 20);
    CHECK_INT(take(p, 0, &r[0]), 0);
    CHECK_INT(take(p, 0, &r[1]), 0);
    give(p, r[1]);
    tern_sleep(50);
    st = stats(p);
    CHECK_INT(st.idle, 0);
    CHECK_INT(st.in_use, 1);
    CHECK_INT(st.expired, 1);
    CHECK_INT(g.live, 1);
    give(p, r[0]);
    CHECK_INT(tern_pool_free(p), 0);
    CHECK_INT(g.live, 0);
    return unused;
}

/* ---- validation and destroy --------------------------------------------------- */

static void *t_validate(void *unused) {
    factory f = {0};
    tern_pool_config cfg = {.max_size = 2,
                            .validate_on_acquire = 1,
                            .create = f_create,
                            .validate = f_validate,
                            .destroy = f_destroy,
                            .arg = &f};
    tern_pool *p = tern_pool_new(&cfg);
    res *a, *b;
    CHECK_INT(take(p, 0, &a), 0);
    CHECK_INT(take(p, 0, &b), 0);
    b->broken = 1; /* e.g. the peer closed it while idle */
    give(p, a);
    give(p, b);
    res *x;
    CHECK_INT(take(p, 0, &x), 0); /* b (newest) fails validation: a is handed out */
    CHECK(x == a);
    tern_pool_stats st = stats(p);
    CHECK_INT(st.validate_failures, 1);
    CHECK_INT(st.size, 1);
    CHECK_INT(f.live, 1);

    /* destroy refuses while something is in use */
    CHECK_INT(tern_pool_free(p), -EBUSY);
    give(p, x);
    CHECK_INT(tern_pool_free(p), 0);
    CHECK_INT(f.live, 0);
    return unused;
}

/* ---- one pool, several workers ------------------------------------------------ */

static int nthreads;

typedef struct mt_factory {
    int live, created, destroyed; /* atomic */
    int max_holders, holders;     /* atomic */
    int wrong_worker;             /* atomic: create ran off the acquirer's worker */
} mt_factory;

typedef struct mt_res {
    int created_on; /* scheduler id whose coroutine ran create */
    int uses;       /* only its holder touches it */
} mt_res;

static int mt_create(void *arg, void **out) {
    mt_factory *f = arg;
    tern__sched *s = tern__sched_self;
    CHECK(s && s->current); /* a coroutine: create may park */
    tern_sleep_us(200);     /* a connect */
    mt_res *r = calloc(1, sizeof *r);
    r->created_on = tern__sched_self->id;
    __atomic_fetch_add(&f->live, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&f->created, 1, __ATOMIC_RELAXED);
    *out = r;
    return 0;
}

static void mt_destroy(void *arg, void *p) {
    mt_factory *f = arg;
    __atomic_fetch_sub(&f->live, 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&f->destroyed, 1, __ATOMIC_RELAXED);
    free(p);
}

static tern_pool *mt_pool(mt_factory *f, size_t max, uint64_t idle_ms) {
    tern_pool_config cfg = {.max_size = max, .idle_timeout_ms = idle_ms, .create = mt_create,
                            .destroy = mt_destroy, .arg = f};
    return tern_pool_new(&cfg);
}

typedef struct mt_churn {
    tern_pool *p;
    mt_factory *f;
    int ok, timeouts; /* atomic */
    int stop_reader, reader_bad;
} mt_churn;

static void *mt_churn_task(void *arg) {
    mt_churn *c = arg;
    for (int i = 0; i < 40; i++) {
        void *v;
        int r = tern_pool_acquire(c->p, i % 4 == 0 ? 2 : 10000, &v);
        if (r == -ETIMEDOUT) {
            __atomic_fetch_add(&c->timeouts, 1, __ATOMIC_RELAXED);
            continue;
        }
        CHECK_INT(r, 0);
        mt_res *res = v;
        /* a fresh resource was created by this acquire, on this worker */
        if (res->uses++ == 0 && res->created_on != tern__sched_self->id)
            __atomic_fetch_add(&c->f->wrong_worker, 1, __ATOMIC_RELAXED);
        int n = __atomic_add_fetch(&c->f->holders, 1, __ATOMIC_SEQ_CST);
        if (n > 4) CHECK_INT(n, 4);
        if (i % 3 == 0) tern_sleep_us(100);
        else tern_yield();
        __atomic_sub_fetch(&c->f->holders, 1, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&c->ok, 1, __ATOMIC_RELAXED);
        if (i % 10 == 9)
            tern_pool_discard(c->p, res);
        else
            tern_pool_release(c->p, res);
    }
    return NULL;
}

static void *mt_stats_reader(void *arg) {
    mt_churn *c = arg;
    while (!__atomic_load_n(&c->stop_reader, __ATOMIC_ACQUIRE)) {
        tern_pool_stats st;
        tern_pool_stats_read(c->p, &st);
        if (st.size != st.idle + st.in_use + st.creating || st.size > 4)
            __atomic_fetch_add(&c->reader_bad, 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void *t_mt_churn(void *unused) {
    static mt_factory f;
    static mt_churn c;
    memset(&f, 0, sizeof f);
    memset(&c, 0, sizeof c);
    c.f = &f;
    c.p = mt_pool(&f, 4, 0);
    pthread_t reader;
    pthread_create(&reader, NULL, mt_stats_reader, &c);
    enum { PER = 8 };
    tern_task *ts[PER * HARNESS_MAX_THREADS];
    int n = PER * nthreads;
    for (int i = 0; i < n; i++) ts[i] = tern_spawn_on(i % nthreads, mt_churn_task, &c);
    CHECK_INT(tern_join_all(ts, (size_t)n, NULL), 0);
    __atomic_store_n(&c.stop_reader, 1, __ATOMIC_RELEASE);
    pthread_join(reader, NULL);
    tern_pool_stats st = stats(c.p);
    fprintf(stderr, "pool x%d: %d acquired, %d timed out, %llu created, %llu waited\n", nthreads,
            c.ok, c.timeouts, (unsigned long long)st.created, (unsigned long long)st.waited);
    CHECK_INT(c.reader_bad, 0);
    CHECK_INT(f.wrong_worker, 0);
    CHECK_INT(c.ok + c.timeouts, 40 * n);
    CHECK_INT(st.acquired, c.ok);
    CHECK_INT(st.in_use, 0);
    CHECK_INT(st.waiters, 0);
    CHECK_INT(st.creating, 0);
    CHECK_INT(st.size, st.idle);
    CHECK_INT(f.live, (int)st.size);
    CHECK(st.size <= 4);
    CHECK_INT(tern_pool_free(c.p), 0);
    CHECK_INT(f.live, 0);
    return unused;
}

/* FIFO across workers: a pool of 1, waiters queued one by one from
 * alternating workers, the resource passed on one release at a time. */
typedef struct mt_fifo {
    tern_pool *p;
    int order[32];
    int got; /* atomic */
} mt_fifo;

typedef struct mt_fifo_arg {
    mt_fifo *x;
    int id;
} mt_fifo_arg;

static void *mt_fifo_wait(void *arg) {
    mt_fifo_arg *a = arg;
    void *v;
    CHECK_INT(tern_pool_acquire(a->x->p, 10000, &v), 0);
    int k = __atomic_load_n(&a->x->got, __ATOMIC_ACQUIRE);
    a->x->order[k] = a->id;
    __atomic_store_n(&a->x->got, k + 1, __ATOMIC_RELEASE);
    /* hold until main passes the next turn: main releases for us */
    return v;
}

static void *t_mt_fifo(void *unused) {
    static mt_factory f;
    static mt_fifo x;
    memset(&f, 0, sizeof f);
    memset(&x, 0, sizeof x);
    x.p = mt_pool(&f, 1, 0);
    void *held;
    CHECK_INT(tern_pool_acquire(x.p, -1, &held), 0);
    enum { N = 12 };
    mt_fifo_arg args[N];
    tern_task *ts[N];
    for (int i = 0; i < N; i++) {
        args[i] = (mt_fifo_arg){&x, i};
        ts[i] = tern_spawn_on(i % nthreads, mt_fifo_wait, &args[i]);
        uint64_t t0 = tern_clock_ns();
        while (stats(x.p).waiters < (uint64_t)i + 1 && tern_clock_ns() - t0 < 5000 * MS)
            tern_sleep_us(100);
        CHECK_INT(stats(x.p).waiters, i + 1);
    }
    for (int i = 0; i < N; i++) {
        tern_pool_release(x.p, held); /* to the first waiter */
        void *r = NULL;
        CHECK_INT(tern_join(ts[i], &r), 0); /* in order, or this hangs */
        held = r;
        CHECK_INT(x.got, i + 1);
    }
    tern_pool_release(x.p, held);
    for (int i = 0; i < N; i++) CHECK_INT(x.order[i], i);
    CHECK_INT(tern_pool_free(x.p), 0);
    CHECK_INT(f.live, 0);
    return unused;
}

/* Expiry: the pool's home is worker 0 (first acquire there); a resource
 * released on worker 1 (the last operation) still expires, by home's
 * timer armed through home's remote queue. Then the pool is freed from
 * worker 1, not its home. */
static void *use_once(void *arg) {
    void *v;
    CHECK_INT(tern_pool_acquire(arg, -1, &v), 0);
    tern_pool_release(arg, v);
    return NULL;
}

static void *free_here(void *arg) { return (void *)(intptr_t)tern_pool_free(arg); }

static void *t_mt_expiry_free(void *unused) {
    static mt_factory f;
    memset(&f, 0, sizeof f);
    tern_pool *p = mt_pool(&f, 2, 20);
    use_once(p); /* home = worker 0 */
    tern_sleep(60);
    CHECK_INT(stats(p).expired, 1);
    tern_task *t = tern_spawn_on(1, use_once, p);
    CHECK_INT(tern_join(t, NULL), 0);
    CHECK_INT(stats(p).idle, 1);
    uint64_t t0 = tern_clock_ns();
    while (stats(p).idle && tern_clock_ns() - t0 < 2000 * MS) tern_sleep(5);
    CHECK_INT(stats(p).idle, 0);
    CHECK_INT(stats(p).expired, 2);
    CHECK(tern_clock_ns() - t0 < 500 * MS);
    /* free from worker 1 (not home) while worker 0's timer might be armed */
    use_once(p);
    t = tern_spawn_on(1, free_here, p);
    void *r = (void *)1;
    CHECK_INT(tern_join(t, &r), 0);
    CHECK_INT((intptr_t)r, 0);
    CHECK_INT(f.live, 0);
    return unused;
}

int main(void) {
    t_create_args();
    run_main(t_max_under_load, NULL);
    run_main(t_fifo, NULL);
    run_main(t_timeout, NULL);
    run_main(t_cancel, NULL);
    run_main(t_discard, NULL);
    run_main(t_idle_expiry, NULL);
    run_main(t_validate, NULL);
    for (nthreads = 2; nthreads <= 4; nthreads += 2) {
        run_group(nthreads, t_mt_churn, NULL);
        run_group(nthreads, t_mt_fifo, NULL);
        run_group(nthreads, t_mt_expiry_free, NULL);
    }
    return check_done();
}
