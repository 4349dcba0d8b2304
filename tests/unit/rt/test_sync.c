/* Semaphores, mutexes, wait groups, channels: the single-worker semantics
 * on a bare scheduler (no server) on the main thread, two schedulers on one
 * thread, and plain threads. The multi-threaded hammering is in
 * test_sync_mt.c.
 *
 * Standalone build (from /work/main):
 *   clang -std=gnu11 -g -O1 -D_GNU_SOURCE -fsanitize=address,undefined \
 *     -fno-sanitize-recover=undefined -Iinclude -Isrc -Itests/unit \
 *     tests/unit/rt/test_sync.c src/rt/{coro,timer,sched,task,sync,offload}.c \
 *     src/rt/coro_x86_64.S -o /tmp/test_sync -lpthread */
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "rt/sched.h"
#include "tern.h"
#include "tern/sync.h"

#define MS 1000000ull

#include "sched_harness.h"

static uint64_t ms_since(uint64_t t0) { return (tern_clock_ns() - t0) / MS; }

/* A waiter task that records when it got through, into a shared log. */
typedef struct log {
    char order[64];
    size_t n;
} log_t;

typedef struct sem_waiter {
    tern_sem *sem;
    log_t *log;
    char name;
    int64_t timeout;
    int r;
    int ran;
} sem_waiter;

static void *sem_wait_task(void *arg) {
    sem_waiter *w = arg;
    w->r = tern_sem_acquire_timeout(w->sem, w->timeout);
    if (w->r == 0) w->log->order[w->log->n++] = w->name;
    w->ran = 1;
    return NULL;
}

/* ---- semaphore ---------------------------------------------------------- */

static void *t_sem_basic(void *unused) {
    tern_sem s;
    tern_sem_init(&s, 2);
    CHECK_INT(tern_sem_acquire(&s), 0);
    CHECK_INT(tern_sem_try_acquire(&s), 0);
    CHECK_INT(tern_sem_try_acquire(&s), -EAGAIN);
    CHECK_INT(tern_sem_acquire_timeout(&s, 0), -ETIMEDOUT);
    uint64_t t0 = tern_clock_ns();
    CHECK_INT(tern_sem_acquire_timeout(&s, 20), -ETIMEDOUT);
    uint64_t took = ms_since(t0);
    CHECK(took >= 19 && took < 100);
    CHECK(s.waiters.head == NULL); /* the timed-out waiter left the queue */
    tern_sem_release(&s);
    CHECK_INT(tern_sem_available(&s), 1);
    CHECK_INT(tern_sem_acquire(&s), 0);
    tern_sem_release(&s);
    tern_sem_release(&s);
    CHECK_INT(tern_sem_available(&s), 2);
    return unused;
}

static void *t_sem_fifo_cancel(void *unused) {
    tern_sem s;
    tern_sem_init(&s, 0);
    log_t lg = {{0}, 0};
    sem_waiter w[4] = {{&s, &lg, 'a', -1, 1, 0}, {&s, &lg, 'b', -1, 1, 0},
                       {&s, &lg, 'c', -1, 1, 0}, {&s, &lg, 'd', 1000, 1, 0}};
    tern_task *t[4];
    for (int i = 0; i < 4; i++) t[i] = tern_spawn(sem_wait_task, &w[i]);
    tern_sleep(2); /* all four parked, in spawn order */
    CHECK(!w[0].ran && !w[3].ran);

    /* b is cancelled: it leaves the queue without taking a permit */
    tern_cancel(t[1]);
    tern_sleep(1);
    CHECK(w[1].ran);
    CHECK_INT(w[1].r, -ECANCELED);
    /* releases go to a, then c, then d: none is lost on b */
    tern_sem_release(&s);
    tern_sem_release(&s);
    tern_sem_release(&s);
    CHECK_INT(tern_sem_available(&s), 0);
    CHECK_INT(tern_join_all(t, 4, NULL), 0);
    lg.order[lg.n] = 0;
    CHECK_STR(lg.order, "acd");
    CHECK_INT(w[0].r, 0);
    CHECK_INT(w[2].r, 0);
    CHECK_INT(w[3].r, 0);
    tern_sem_release(&s);
    CHECK_INT(tern_sem_available(&s), 1);
    return unused;
}

/* Cancelled in the same loop pass as being granted, in both orders: the
 * waiter keeps the permit (returns 0) so it is neither lost nor doubled. */
static void *t_sem_grant_cancel_race(void *unused) {
    for (int order = 0; order < 2; order++) {
        tern_sem s;
        tern_sem_init(&s, 0);
        log_t lg = {{0}, 0};
        sem_waiter a = {&s, &lg, 'a', -1, 1, 0}, b = {&s, &lg, 'b', -1, 1, 0};
        tern_task *ta = tern_spawn(sem_wait_task, &a);
        tern_task *tb = tern_spawn(sem_wait_task, &b);
        tern_sleep(1);
        if (order == 0) {
            tern_cancel(ta);        /* a is runnable with -ECANCELED, still queued */
            tern_sem_release(&s);   /* ...and is granted before it runs */
        } else {
            tern_sem_release(&s);   /* a granted and runnable */
            tern_cancel(ta);        /* the cancel finds it not parked */
        }
        CHECK_INT(tern_join(ta, NULL), 0);
        CHECK_INT(a.r, 0);
        CHECK(!b.ran);              /* b still waits: exactly one permit was used */
        tern_sem_release(&s);
        CHECK_INT(tern_join(tb, NULL), 0);
        CHECK_INT(b.r, 0);
        CHECK_INT(tern_sem_available(&s), 0);
    }
    return unused;
}

/* Timed out in the same pass as a release: the waiter parks with a 10 ms
 * timeout, the releaser spins 15 ms without yielding, then yields; the next
 * loop pass fires the waiter's timer (waiter queued behind the releaser,
 * still on the wait list) and runs the releaser first, whose release grants
 * the waiter. The waiter must keep that permit, or it would be lost. */
static void *busy_then_release(void *arg) {
    tern_sem *s = arg;
    uint64_t t0 = tern_clock_ns();
    while (tern_clock_ns() - t0 < 15 * MS) {
    }
    tern_yield();
    tern_sem_release(s);
    return NULL;
}

static void *t_sem_timeout_race(void *unused) {
    tern_sem s;
    tern_sem_init(&s, 0);
    log_t lg = {{0}, 0};
    sem_waiter a = {&s, &lg, 'a', 10, 1, 0};
    tern_task *ts[2] = {tern_spawn(sem_wait_task, &a), tern_spawn(busy_then_release, &s)};
    CHECK_INT(tern_join_all(ts, 2, NULL), 0);
    CHECK_INT(a.r, 0);
    CHECK_INT(tern_sem_available(&s), 0);
    CHECK(s.waiters.head == NULL);
    return unused;
}

/* ---- mutex -------------------------------------------------------------- */

typedef struct crit {
    tern_mutex m;
    int inside, max_inside, total;
    log_t lg;
} crit;

static void *crit_task(void *arg) {
    crit *c = arg;
    for (int i = 0; i < 5; i++) {
        CHECK_INT(tern_mutex_lock(&c->m), 0);
        c->inside++;
        if (c->inside > c->max_inside) c->max_inside = c->inside;
        tern_yield(); /* others run meanwhile and must queue */
        tern_sleep_us(100);
        c->total++;
        c->inside--;
        CHECK_INT(tern_mutex_unlock(&c->m), 0);
    }
    return NULL;
}

typedef struct lock_try {
    tern_mutex *m;
    int64_t timeout;
    int r, unlock_r;
} lock_try;

static void *lock_task(void *arg) {
    lock_try *l = arg;
    l->r = tern_mutex_lock_timeout(l->m, l->timeout);
    if (l->r == 0) l->unlock_r = tern_mutex_unlock(l->m);
    return NULL;
}

static void *unlock_other(void *arg) { return (void *)(intptr_t)tern_mutex_unlock(arg); }

static void *t_mutex(void *unused) {
    crit c = {0};
    tern_mutex_init(&c.m);
    tern_task *ts[4];
    for (int i = 0; i < 4; i++) ts[i] = tern_spawn(crit_task, &c);
    CHECK_INT(tern_join_all(ts, 4, NULL), 0);
    CHECK_INT(c.max_inside, 1);
    CHECK_INT(c.total, 20);
    CHECK_INT(tern_mutex_try_lock(&c.m), 0); /* left unlocked */
    CHECK_INT(tern_mutex_unlock(&c.m), 0);

    tern_mutex m;
    tern_mutex_init(&m);
    CHECK_INT(tern_mutex_unlock(&m), -EPERM);
    CHECK_INT(tern_mutex_lock(&m), 0);
    CHECK_INT(tern_mutex_lock(&m), -EDEADLK);
    CHECK_INT(tern_mutex_try_lock(&m), -EBUSY);
    CHECK_INT(tern_mutex_lock_timeout(&m, 0), -EDEADLK);
    /* another coroutine may not unlock it */
    void *r;
    tern_task *o = tern_spawn(unlock_other, &m);
    CHECK_INT(tern_join(o, &r), 0);
    CHECK_INT((intptr_t)r, -EPERM);
    /* a waiter with a timeout gives up */
    lock_try lt = {&m, 15, 1, 1};
    uint64_t t0 = tern_clock_ns();
    tern_task *l = tern_spawn(lock_task, &lt);
    CHECK_INT(tern_join(l, NULL), 0);
    CHECK_INT(lt.r, -ETIMEDOUT);
    CHECK(ms_since(t0) >= 14);
    CHECK(m.waiters.head == NULL);

    /* handoff: the waiter owns the mutex after unlock, no barging */
    lock_try lw = {&m, 1000, 1, 1};
    l = tern_spawn(lock_task, &lw);
    tern_sleep(1);
    CHECK_INT(tern_mutex_unlock(&m), 0);
    CHECK_INT(tern_mutex_try_lock(&m), -EBUSY); /* already the waiter's */
    CHECK_INT(tern_join(l, NULL), 0);
    CHECK_INT(lw.r, 0);
    CHECK_INT(lw.unlock_r, 0);
    CHECK_INT(tern_mutex_try_lock(&m), 0);
    CHECK_INT(tern_mutex_unlock(&m), 0);
    return unused;
}

/* ---- wait group ----------------------------------------------------------- */

typedef struct wg_work {
    tern_wg *wg;
    int ms;
    int done;
} wg_work;

static void *wg_worker(void *arg) {
    wg_work *w = arg;
    tern_sleep((uint64_t)w->ms);
    w->done = 1;
    tern_wg_done(w->wg);
    return NULL;
}

typedef struct wg_wait_arg {
    tern_wg *wg;
    int r;
} wg_wait_arg;

static void *wg_waiter(void *arg) {
    wg_wait_arg *a = arg;
    a->r = tern_wg_wait(a->wg);
    return NULL;
}

static void *t_wg(void *unused) {
    tern_wg wg;
    tern_wg_init(&wg);
    CHECK_INT(tern_wg_wait(&wg), 0); /* zero: returns at once */
    CHECK_INT(tern_wg_done(&wg), -EINVAL);
    CHECK_INT(wg.count, 0);
    wg_work w[3] = {{&wg, 10, 0}, {&wg, 20, 0}, {&wg, 30, 0}};
    CHECK_INT(tern_wg_add(&wg, 3), 0);
    for (int i = 0; i < 3; i++) tern_detach(tern_spawn(wg_worker, &w[i]));
    wg_wait_arg other = {&wg, 1};
    tern_task *ow = tern_spawn(wg_waiter, &other);
    uint64_t t0 = tern_clock_ns();
    CHECK_INT(tern_wg_wait_timeout(&wg, 5), -ETIMEDOUT);
    CHECK_INT(tern_wg_wait(&wg), 0);
    CHECK(ms_since(t0) >= 29);
    CHECK(w[0].done && w[1].done && w[2].done);
    CHECK_INT(tern_join(ow, NULL), 0);
    CHECK_INT(other.r, 0); /* every waiter is woken */
    CHECK_INT(tern_wg_wait_timeout(&wg, 0), 0);
    CHECK_INT(tern_wg_add(&wg, 1), 0);
    CHECK_INT(tern_wg_wait_timeout(&wg, 0), -ETIMEDOUT);
    CHECK_INT(tern_wg_add(&wg, -2), -EINVAL);
    CHECK_INT(tern_wg_done(&wg), 0);
    return unused;
}

/* ---- channel -------------------------------------------------------------- */

typedef struct item {
    uint64_t seq;
    char tag[16];
} item;

typedef struct chan_arg {
    tern_chan *ch;
    int n;
    int64_t timeout;
    int r;
    uint64_t sum;
    int got;
} chan_arg;

static void *producer(void *arg) {
    chan_arg *a = arg;
    for (int i = 1; i <= a->n; i++) {
        item it = {.seq = (uint64_t)i};
        snprintf(it.tag, sizeof it.tag, "item-%d", i);
        a->r = tern_chan_send(a->ch, &it, -1);
        if (a->r < 0) break;
    }
    return NULL;
}

static void *consumer(void *arg) {
    chan_arg *a = arg;
    uint64_t expect = 1;
    for (;;) {
        item it;
        a->r = tern_chan_recv(a->ch, &it, a->timeout);
        if (a->r < 0) break;
        char tag[16];
        snprintf(tag, sizeof tag, "item-%llu", (unsigned long long)it.seq);
        CHECK_STR(it.tag, tag);
        if (it.seq != expect) CHECK_INT(it.seq, expect); /* FIFO, one producer */
        expect++;
        a->sum += it.seq;
        a->got++;
    }
    return NULL;
}

static void *send_one(void *arg) {
    chan_arg *a = arg;
    item it = {.seq = (uint64_t)a->n};
    a->r = tern_chan_send(a->ch, &it, a->timeout);
    return NULL;
}

static void *recv_one(void *arg) {
    chan_arg *a = arg;
    item it = {0};
    a->r = tern_chan_recv(a->ch, &it, a->timeout);
    a->sum = it.seq;
    return NULL;
}

static void *t_chan(void *unused) {
    /* fixed-size items through a small buffer, producer faster than consumer */
    for (size_t cap = 0; cap <= 4; cap += 4) {
        tern_chan *ch = tern_chan_new(cap, sizeof(item));
        CHECK(ch != NULL);
        chan_arg p = {ch, 1000, -1, 0, 0, 0}, c = {ch, 0, -1, 0, 0, 0};
        tern_task *tp = tern_spawn(producer, &p);
        tern_task *tc = tern_spawn(consumer, &c);
        CHECK_INT(tern_join(tp, NULL), 0);
        CHECK_INT(p.r, 0);
        CHECK_INT(tern_chan_close(ch), 0);
        CHECK_INT(tern_chan_close(ch), -EPIPE);
        CHECK_INT(tern_join(tc, NULL), 0);
        CHECK_INT(c.r, -EPIPE);     /* closed and drained */
        CHECK_INT(c.got, 1000);
        CHECK_INT(c.sum, 500500);
        tern_chan_free(ch);
    }

    /* buffer semantics, order with a waiting sender */
    tern_chan *ch = tern_chan_new(2, sizeof(item));
    CHECK_INT(tern_chan_capacity(ch), 2);
    item it = {.seq = 1};
    CHECK_INT(tern_chan_send(ch, &it, 0), 0);
    it.seq = 2;
    CHECK_INT(tern_chan_send(ch, &it, 0), 0);
    it.seq = 99;
    CHECK_INT(tern_chan_send(ch, &it, 0), -ETIMEDOUT);
    uint64_t t0 = tern_clock_ns();
    CHECK_INT(tern_chan_send(ch, &it, 15), -ETIMEDOUT);
    CHECK(ms_since(t0) >= 14);
    CHECK_INT(tern_chan_len(ch), 2);
    chan_arg s3 = {ch, 3, -1, 1, 0, 0};
    tern_task *t3 = tern_spawn(send_one, &s3);
    tern_sleep(1); /* parked: ring full */
    CHECK_INT(s3.r, 1);
    item out;
    CHECK_INT(tern_chan_recv(ch, &out, 0), 0);
    CHECK_INT(out.seq, 1);
    CHECK_INT(tern_chan_len(ch), 2); /* 3 moved in from the waiting sender */
    CHECK_INT(tern_join(t3, NULL), 0);
    CHECK_INT(s3.r, 0);
    CHECK_INT(tern_chan_recv(ch, &out, 0), 0);
    CHECK_INT(out.seq, 2);
    CHECK_INT(tern_chan_recv(ch, &out, 0), 0);
    CHECK_INT(out.seq, 3);
    CHECK_INT(tern_chan_recv(ch, &out, 0), -ETIMEDOUT);
    t0 = tern_clock_ns();
    CHECK_INT(tern_chan_recv(ch, &out, 15), -ETIMEDOUT);
    CHECK(ms_since(t0) >= 14);

    /* a cancelled receiver leaves; the next item is not lost on it */
    chan_arg r1 = {ch, 0, -1, 1, 0, 0}, r2 = {ch, 0, -1, 1, 0, 0};
    tern_task *tr1 = tern_spawn(recv_one, &r1);
    tern_task *tr2 = tern_spawn(recv_one, &r2);
    tern_sleep(1);
    tern_cancel(tr1);
    tern_sleep(1);
    CHECK_INT(r1.r, -ECANCELED);
    it.seq = 7;
    CHECK_INT(tern_chan_send(ch, &it, 0), 0); /* straight to r2 */
    CHECK_INT(tern_chan_len(ch), 0);
    CHECK_INT(tern_join(tr2, NULL), 0);
    CHECK_INT(r2.r, 0);
    CHECK_INT(r2.sum, 7);
    CHECK_INT(tern_join(tr1, NULL), 0);

    /* close: queued items still come out, then -EPIPE; senders fail */
    it.seq = 8;
    CHECK_INT(tern_chan_send(ch, &it, 0), 0);
    CHECK_INT(tern_chan_close(ch), 0);
    CHECK_INT(tern_chan_send(ch, &it, 0), -EPIPE);
    CHECK_INT(tern_chan_recv(ch, &out, -1), 0);
    CHECK_INT(out.seq, 8);
    CHECK_INT(tern_chan_recv(ch, &out, -1), -EPIPE);
    tern_chan_free(ch);

    /* close wakes parked receivers and senders with -EPIPE */
    ch = tern_chan_new(1, sizeof(item));
    chan_arg rw = {ch, 0, -1, 1, 0, 0};
    tern_task *trw = tern_spawn(recv_one, &rw);
    tern_sleep(1);
    CHECK_INT(tern_chan_close(ch), 0);
    CHECK_INT(tern_join(trw, NULL), 0);
    CHECK_INT(rw.r, -EPIPE);
    tern_chan_free(ch);
    ch = tern_chan_new(1, sizeof(item));
    CHECK_INT(tern_chan_send(ch, &it, 0), 0);
    chan_arg sw = {ch, 5, -1, 1, 0, 0};
    tern_task *tsw = tern_spawn(send_one, &sw);
    tern_sleep(1);
    /* freeing a channel with waiters closes it first: they never touch it again */
    tern_chan_free(ch);
    CHECK_INT(tern_join(tsw, NULL), 0);
    CHECK_INT(sw.r, -EPIPE);

    /* rendezvous (capacity 0): a send waits for a receiver */
    ch = tern_chan_new(0, sizeof(item));
    CHECK_INT(tern_chan_send(ch, &it, 0), -ETIMEDOUT);
    chan_arg sr = {ch, 11, -1, 1, 0, 0};
    tern_task *tsr = tern_spawn(send_one, &sr);
    tern_sleep(1);
    CHECK_INT(sr.r, 1);
    CHECK_INT(tern_chan_recv(ch, &out, 0), 0);
    CHECK_INT(out.seq, 11);
    CHECK_INT(tern_join(tsr, NULL), 0);
    CHECK_INT(sr.r, 0);
    tern_chan_free(ch);

    /* pointer channels */
    ch = tern_chan_new(4, 0);
    int x = 5;
    void *p = NULL;
    CHECK_INT(tern_chan_send_ptr(ch, &x, 0), 0);
    CHECK_INT(tern_chan_send_ptr(ch, NULL, 0), 0);
    CHECK_INT(tern_chan_recv_ptr(ch, &p, 0), 0);
    CHECK(p == &x);
    CHECK_INT(tern_chan_recv_ptr(ch, &p, 0), 0);
    CHECK(p == NULL);
    tern_chan_free(ch);
    ch = tern_chan_new(4, sizeof(item));
    CHECK_INT(tern_chan_send_ptr(ch, &x, 0), -EINVAL);
    tern_chan_free(ch);
    CHECK(tern_chan_new(SIZE_MAX / 2, 16) == NULL);
    return unused;
}

/* ---- misuse across workers ---------------------------------------------- */

static void *t_outside(void *unused) { return unused; }

static void outside_coroutine(void) {
    /* no worker: calls that would wait return -EPERM, others work */
    tern_sem s;
    tern_sem_init(&s, 1);
    CHECK_INT(tern_sem_acquire(&s), 0);
    CHECK_INT(tern_sem_acquire(&s), -EPERM);
    tern_sem_release(&s);
    tern_mutex m;
    tern_mutex_init(&m);
    CHECK_INT(tern_mutex_lock(&m), 0);
    CHECK_INT(tern_mutex_unlock(&m), 0);
    tern_chan *ch = tern_chan_new(1, 4);
    int v = 3, o = 0;
    CHECK_INT(tern_chan_send(ch, &v, -1), 0);
    CHECK_INT(tern_chan_send(ch, &v, -1), -EPERM);
    CHECK_INT(tern_chan_recv(ch, &o, -1), 0);
    CHECK_INT(o, 3);
    tern_chan_free(ch);
}

/* Two schedulers on one thread (switched by hand): waiters from both queue
 * on one semaphore in arrival order; a release made on scheduler B hands the
 * permit to A's waiter through A's remote queue, and B's waiter times out. */
typedef struct xworker {
    tern_sem sem;
    int ra, rb;
} xworker;

static void *xworker_wait(void *arg) {
    xworker *x = arg;
    int r = tern_sem_acquire_timeout(&x->sem, 50);
    if (tern__sched_self->id == 0)
        x->ra = r;
    else
        x->rb = r;
    return NULL;
}

static void cross_worker(void) {
    tern__sched a, b;
    CHECK_INT(tern__sched_init(&a, 0, 64 * 1024), 0);
    CHECK_INT(tern__sched_init(&b, 1, 64 * 1024), 0);
    xworker x = {.ra = 1, .rb = 1};
    tern_sem_init(&x.sem, 0);
    tern__sched_self = &a;
    tern_task *ta = tern_spawn(xworker_wait, &x);
    tern__sched_poll(&a, harness_on_event, 0); /* parks on the semaphore */
    tern__sched_self = &b;
    tern_task *tb = tern_spawn(xworker_wait, &x);
    tern__sched_poll(&b, harness_on_event, 0); /* queued behind A's waiter */
    CHECK(x.ra == 1 && x.rb == 1);
    tern_sem_release(&x.sem); /* from B: to A's waiter, the first */
    CHECK_INT(tern_sem_available(&x.sem), 0);
    tern__sched_self = &a;
    while (x.ra == 1) tern__sched_poll(&a, harness_on_event, 10 * MS);
    CHECK_INT(x.ra, 0);
    CHECK_INT(tern_join(ta, NULL), 0);
    tern__sched_self = &b;
    while (x.rb == 1) tern__sched_poll(&b, harness_on_event, 10 * MS);
    CHECK_INT(x.rb, -ETIMEDOUT);
    CHECK_INT(tern_join(tb, NULL), 0);
    CHECK(x.sem.waiters.head == NULL);
    tern__sched_self = NULL;
    tern__sched_destroy(&a);
    tern__sched_destroy(&b);
}

/* ---- a semaphore from plain threads (no worker, never waiting) ------------ */

typedef struct sem_run {
    tern_sem *sem;
    long *in_use;
    long max_seen;
    long acquired, refused;
} sem_run;

static void *sem_thread(void *arg) {
    sem_run *r = arg;
    for (int i = 0; i < 20000; i++) {
        if (tern_sem_try_acquire(r->sem) == 0) {
            long n = __atomic_add_fetch(r->in_use, 1, __ATOMIC_SEQ_CST);
            if (n > r->max_seen) r->max_seen = n;
            sched_yield(); /* hold it a while, so the limit is contended */
            __atomic_sub_fetch(r->in_use, 1, __ATOMIC_SEQ_CST);
            tern_sem_release(r->sem);
            r->acquired++;
        } else {
            r->refused++;
        }
    }
    return NULL;
}

static void sem_plain_threads(void) {
    static tern_sem sem = TERN_SEM_INIT(3);
    long in_use = 0;
    sem_run runs[6];
    pthread_t th[6];
    for (int i = 0; i < 6; i++) {
        runs[i] = (sem_run){&sem, &in_use, 0, 0, 0};
        pthread_create(&th[i], NULL, sem_thread, &runs[i]);
    }
    long acquired = 0, refused = 0, max_seen = 0;
    for (int i = 0; i < 6; i++) {
        pthread_join(th[i], NULL);
        acquired += runs[i].acquired;
        refused += runs[i].refused;
        if (runs[i].max_seen > max_seen) max_seen = runs[i].max_seen;
    }
    fprintf(stderr, "sem: %ld acquired, %ld refused by 6 threads, at most %ld held (limit 3)\n",
            acquired, refused, max_seen);
    CHECK(max_seen <= 3);
    CHECK(acquired > 0);
    CHECK_INT(tern_sem_available(&sem), 3);
    CHECK_INT(tern_sem_acquire(&sem), 0); /* a free permit: fine off a worker */
    CHECK_INT(tern_sem_acquire_timeout(&sem, 0), 0);
    CHECK_INT(tern_sem_acquire_timeout(&sem, 0), 0);
    CHECK_INT(tern_sem_acquire(&sem), -EPERM); /* would wait: no coroutine */
    for (int i = 0; i < 3; i++) tern_sem_release(&sem);
    CHECK_INT(tern_sem_available(&sem), 3);
}

int main(void) {
    outside_coroutine();
    run_main(t_outside, NULL);
    run_main(t_sem_basic, NULL);
    run_main(t_sem_fifo_cancel, NULL);
    run_main(t_sem_grant_cancel_race, NULL);
    run_main(t_sem_timeout_race, NULL);
    run_main(t_mutex, NULL);
    run_main(t_wg, NULL);
    run_main(t_chan, NULL);
    cross_worker();
    sem_plain_threads();
    return check_done();
}
