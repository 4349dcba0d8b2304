/* Sync objects shared by 2 and 4 schedulers on as many threads (the
 * harness's run_group, registered as a server registers its workers), plus
 * plain and offload threads that release and send. Checked:
 *   - no lost wake-up: every run finishes (the harness fails a run that
 *     hangs for 60 s; each waiter here also has a bound of its own);
 *   - no over-admission: a semaphore of K never has more than K holders
 *     (counted with an atomic inside the critical section);
 *   - FIFO: with waiters queued from every worker, releases made one at a
 *     time grant them in exactly the order they queued;
 *   - timeouts and cancellation under contention leave the count exact;
 *   - channels deliver every item exactly once across workers;
 *   - mutex mutual exclusion (a plain, non-atomic counter stays exact, and
 *     make tsan checks the happens-before the mutex must give). */
#include "check.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "rt/sched.h"
#include "rt/spin.h"
#include "tern.h"
#include "tern/sync.h"

#define MS 1000000ull

#include "sched_harness.h"

static int nthreads; /* schedulers in the current run_group */

/* Queue length of a semaphore, read under its lock (test only). */
static size_t sem_queued(tern_sem *s) {
    uint64_t v = tern__spin_lock(&s->state);
    size_t n = 0;
    for (struct tern_waiter *w = s->waiters.head; w; w = *(struct tern_waiter **)w) n++;
    tern__spin_unlock(&s->state, v);
    return n;
}

/* ---- semaphore: hammer, no over-admission, timeouts, cancels -------------- */

#define SEM_K 3

typedef struct sem_shared {
    tern_sem sem;
    int holders;                        /* atomic */
    int max_holders;                    /* atomic max */
    long acquired, timeouts, cancelled; /* atomic */
} sem_shared;

typedef struct sem_worker {
    sem_shared *sh;
    int iters;
    int64_t timeout_ms;
} sem_worker;

static void note_holder(sem_shared *sh) {
    int n = __atomic_add_fetch(&sh->holders, 1, __ATOMIC_SEQ_CST);
    int m = __atomic_load_n(&sh->max_holders, __ATOMIC_RELAXED);
    while (n > m && !__atomic_compare_exchange_n(&sh->max_holders, &m, n, 1, __ATOMIC_RELAXED,
                                                 __ATOMIC_RELAXED)) {
    }
    if (n > SEM_K) CHECK_INT(n, SEM_K);
}

static void *sem_hammer(void *arg) {
    sem_worker *w = arg;
    sem_shared *sh = w->sh;
    for (int i = 0; i < w->iters; i++) {
        int r = tern_sem_acquire_timeout(&sh->sem, w->timeout_ms);
        if (r == -ETIMEDOUT) {
            __atomic_fetch_add(&sh->timeouts, 1, __ATOMIC_RELAXED);
            continue;
        }
        if (r == -ECANCELED) {
            __atomic_fetch_add(&sh->cancelled, 1, __ATOMIC_RELAXED);
            return NULL; /* cancellation is sticky: this task is over */
        }
        CHECK_INT(r, 0);
        note_holder(sh);
        if (i % 3 == 0) tern_yield(); /* hold across a loop pass now and then */
        __atomic_sub_fetch(&sh->holders, 1, __ATOMIC_SEQ_CST);
        __atomic_fetch_add(&sh->acquired, 1, __ATOMIC_RELAXED);
        tern_sem_release(&sh->sem);
    }
    return NULL;
}

#define SEM_TASKS_PER_WORKER 6
#define SEM_ITERS 400

static void *t_sem_hammer(void *unused) {
    static sem_shared sh;
    memset(&sh, 0, sizeof sh);
    tern_sem_init(&sh.sem, SEM_K);
    int n = nthreads * SEM_TASKS_PER_WORKER;
    tern_task **ts = calloc((size_t)n, sizeof *ts);
    sem_worker *ws = calloc((size_t)n, sizeof *ws);
    for (int i = 0; i < n; i++) {
        /* a third wait forever, a third 1 ms, a third 5 ms */
        ws[i] = (sem_worker){&sh, SEM_ITERS, i % 3 == 0 ? -1 : i % 3 == 1 ? 1 : 5};
        ts[i] = tern_spawn_on(i % nthreads, sem_hammer, &ws[i]);
        CHECK(ts[i] != NULL);
    }
    /* cancel some of the tasks on other workers while they contend */
    tern_sleep(2);
    for (int i = 2; i < n; i += 7) tern_cancel(ts[i]);
    CHECK_INT(tern_join_all(ts, (size_t)n, NULL), 0);
    long attempts = sh.acquired + sh.timeouts + sh.cancelled;
    fprintf(
        stderr,
        "sem x%d: %ld acquired, %ld timed out, %ld cancelled (of <= %d), max %d holders of %d\n",
        nthreads, sh.acquired, sh.timeouts, sh.cancelled, n * SEM_ITERS, sh.max_holders, SEM_K);
    CHECK(sh.max_holders <= SEM_K);
    CHECK(sh.acquired > 0);
    CHECK(attempts <= (long)n * SEM_ITERS);
    CHECK_INT(tern_sem_available(&sh.sem), SEM_K); /* nothing lost, nothing doubled */
    CHECK_INT(sem_queued(&sh.sem), 0);
    free(ts);
    free(ws);
    return unused;
}

/* ---- semaphore: FIFO across workers ---------------------------------------- */

typedef struct fifo_shared {
    tern_sem sem;
    int order[64];
    int got; /* atomic: how many have acquired */
} fifo_shared;

typedef struct fifo_waiter {
    fifo_shared *sh;
    int id;
} fifo_waiter;

static void *fifo_wait(void *arg) {
    fifo_waiter *w = arg;
    int r = tern_sem_acquire_timeout(&w->sh->sem, 10000);
    CHECK_INT(r, 0);
    int k = __atomic_load_n(&w->sh->got, __ATOMIC_ACQUIRE);
    w->sh->order[k] = w->id;
    __atomic_store_n(&w->sh->got, k + 1, __ATOMIC_RELEASE);
    return NULL;
}

static void *t_sem_fifo(void *unused) {
    static fifo_shared sh;
    memset(&sh, 0, sizeof sh);
    tern_sem_init(&sh.sem, 0);
    enum { N = 16 };
    fifo_waiter ws[N];
    tern_task *ts[N];
    /* queue them one by one, alternating workers: the queue order is known */
    for (int i = 0; i < N; i++) {
        ws[i] = (fifo_waiter){&sh, i};
        ts[i] = tern_spawn_on(i % nthreads, fifo_wait, &ws[i]);
        uint64_t t0 = tern_clock_ns();
        while (sem_queued(&sh.sem) < (size_t)i + 1 && tern_clock_ns() - t0 < 5000 * MS)
            tern_sleep_us(100);
        CHECK_INT(sem_queued(&sh.sem), i + 1);
    }
    /* release one at a time and wait for its taker: the grant order */
    for (int i = 0; i < N; i++) {
        tern_sem_release(&sh.sem);
        uint64_t t0 = tern_clock_ns();
        while (__atomic_load_n(&sh.got, __ATOMIC_ACQUIRE) < i + 1 &&
               tern_clock_ns() - t0 < 5000 * MS)
            tern_sleep_us(50);
        CHECK_INT(__atomic_load_n(&sh.got, __ATOMIC_ACQUIRE), i + 1);
        /* no barging: the permit went to a waiter, not back to the count */
        CHECK_INT(tern_sem_available(&sh.sem), 0);
    }
    CHECK_INT(tern_join_all(ts, N, NULL), 0);
    for (int i = 0; i < N; i++) CHECK_INT(sh.order[i], i);
    return unused;
}

/* ---- the timeout / hand-off race, many times over ------------------------- */

/* A waiter with a 1 ms timeout on one worker and a releaser on another that
 * releases at about the same moment: whichever wins, the permit is either
 * taken by the waiter (0) or still in the semaphore (-ETIMEDOUT). */
typedef struct race {
    tern_sem sem;
    int r;
} race;

static void *race_wait(void *arg) {
    race *x = arg;
    x->r = tern_sem_acquire_timeout(&x->sem, 1);
    return NULL;
}

static void *race_release(void *arg) {
    race *x = arg;
    uint64_t t0 = tern_clock_ns();
    while (tern_clock_ns() - t0 < 900000) {
    }
    tern_sem_release(&x->sem);
    return NULL;
}

static void *t_timeout_race(void *unused) {
    int kept = 0, timed_out = 0;
    for (int i = 0; i < 200; i++) {
        race x;
        tern_sem_init(&x.sem, 0);
        x.r = 1;
        tern_task *ts[2] = {tern_spawn_on(0, race_wait, &x),
                            tern_spawn_on(1 % nthreads, race_release, &x)};
        CHECK_INT(tern_join_all(ts, 2, NULL), 0);
        if (x.r == 0) {
            kept++;
            CHECK_INT(tern_sem_available(&x.sem), 0);
        } else {
            timed_out++;
            CHECK_INT(x.r, -ETIMEDOUT);
            CHECK_INT(tern_sem_available(&x.sem), 1);
        }
        CHECK_INT(sem_queued(&x.sem), 0);
    }
    fprintf(stderr, "timeout race x%d: %d granted, %d timed out (permit kept in the sem)\n",
            nthreads, kept, timed_out);
    return unused;
}

/* ---- mutex: mutual exclusion ---------------------------------------------- */

typedef struct crit {
    tern_mutex m;
    long counter; /* plain: only the mutex protects it */
    int inside;   /* atomic */
} crit;

static void *crit_task(void *arg) {
    crit *c = arg;
    for (int i = 0; i < 500; i++) {
        int r = (i & 1) ? tern_mutex_lock(&c->m) : tern_mutex_lock_timeout(&c->m, 10000);
        CHECK_INT(r, 0);
        int in = __atomic_add_fetch(&c->inside, 1, __ATOMIC_SEQ_CST);
        if (in != 1) CHECK_INT(in, 1);
        long v = c->counter;
        if (i % 16 == 0) tern_yield(); /* others queue meanwhile */
        c->counter = v + 1;
        __atomic_sub_fetch(&c->inside, 1, __ATOMIC_SEQ_CST);
        CHECK_INT(tern_mutex_unlock(&c->m), 0);
    }
    return NULL;
}

static void *t_mutex(void *unused) {
    static crit c;
    memset(&c, 0, sizeof c);
    tern_mutex_init(&c.m);
    enum { PER = 4 };
    tern_task *ts[PER * HARNESS_MAX_THREADS];
    int n = PER * nthreads;
    for (int i = 0; i < n; i++) ts[i] = tern_spawn_on(i % nthreads, crit_task, &c);
    CHECK_INT(tern_join_all(ts, (size_t)n, NULL), 0);
    CHECK_INT(c.counter, 500L * n);
    CHECK_INT(tern_mutex_try_lock(&c.m), 0);
    CHECK_INT(tern_mutex_unlock(&c.m), 0);
    return unused;
}

/* ---- channels: every item exactly once ------------------------------------ */

#define PRODUCERS_PER_WORKER 2
#define ITEMS 1000

typedef struct chan_shared {
    tern_chan *ch;
    unsigned char seen[HARNESS_MAX_THREADS * PRODUCERS_PER_WORKER][ITEMS]; /* atomic */
    long received, dups;                                                   /* atomic */
} chan_shared;

typedef struct msg {
    int producer, seq;
} msg;

typedef struct prod_arg {
    chan_shared *sh;
    int id;
} prod_arg;

static void *produce(void *arg) {
    prod_arg *p = arg;
    for (int i = 0; i < ITEMS; i++) {
        msg m = {p->id, i};
        CHECK_INT(tern_chan_send(p->sh->ch, &m, i % 2 ? -1 : 10000), 0);
    }
    return NULL;
}

static void *consume(void *arg) {
    chan_shared *sh = arg;
    int last[HARNESS_MAX_THREADS * PRODUCERS_PER_WORKER];
    memset(last, -1, sizeof last);
    msg m;
    int r;
    while ((r = tern_chan_recv(sh->ch, &m, 10000)) == 0) {
        if (__atomic_exchange_n(&sh->seen[m.producer][m.seq], 1, __ATOMIC_RELAXED))
            __atomic_fetch_add(&sh->dups, 1, __ATOMIC_RELAXED);
        /* one producer's items come out in the order it sent them */
        if (m.seq <= last[m.producer]) CHECK(m.seq > last[m.producer]);
        last[m.producer] = m.seq;
        __atomic_fetch_add(&sh->received, 1, __ATOMIC_RELAXED);
    }
    CHECK_INT(r, -EPIPE);
    return NULL;
}

static void *t_chan(void *unused) {
    static chan_shared sh;
    for (size_t cap = 0; cap <= 8; cap += 8) {
        memset(&sh, 0, sizeof sh);
        sh.ch = tern_chan_new(cap, sizeof(msg));
        int np = nthreads * PRODUCERS_PER_WORKER;
        tern_task *prod[HARNESS_MAX_THREADS * PRODUCERS_PER_WORKER];
        tern_task *cons[HARNESS_MAX_THREADS];
        prod_arg pa[HARNESS_MAX_THREADS * PRODUCERS_PER_WORKER];
        for (int i = 0; i < nthreads; i++) cons[i] = tern_spawn_on(i, consume, &sh);
        for (int i = 0; i < np; i++) {
            pa[i] = (prod_arg){&sh, i};
            prod[i] = tern_spawn_on((i + 1) % nthreads, produce, &pa[i]);
        }
        CHECK_INT(tern_join_all(prod, (size_t)np, NULL), 0);
        CHECK_INT(tern_chan_close(sh.ch), 0);
        CHECK_INT(tern_join_all(cons, (size_t)nthreads, NULL), 0);
        long missing = 0;
        for (int p = 0; p < np; p++)
            for (int i = 0; i < ITEMS; i++) missing += !sh.seen[p][i];
        fprintf(stderr, "chan x%d cap %zu: %ld received, %ld missing, %ld duplicated\n", nthreads,
                cap, sh.received, missing, sh.dups);
        CHECK_INT(sh.received, (long)np * ITEMS);
        CHECK_INT(missing, 0);
        CHECK_INT(sh.dups, 0);
        tern_chan_free(sh.ch);
    }
    return unused;
}

/* ---- wait group done on other workers ------------------------------------- */

typedef struct wg_arg {
    tern_wg *wg;
    int *done; /* atomic */
} wg_arg;

static void *wg_job(void *arg) {
    wg_arg *a = arg;
    tern_sleep(1);
    __atomic_fetch_add(a->done, 1, __ATOMIC_RELAXED);
    CHECK_INT(tern_wg_done(a->wg), 0);
    return NULL;
}

static void *t_wg(void *unused) {
    static tern_wg wg = TERN_WG_INIT;
    static int done;
    done = 0;
    wg_arg a = {&wg, &done};
    int n = 8 * nthreads;
    CHECK_INT(tern_wg_add(&wg, n), 0);
    for (int i = 0; i < n; i++) tern_detach(tern_spawn_on(i % nthreads, wg_job, &a));
    CHECK_INT(tern_wg_wait_timeout(&wg, 10000), 0);
    CHECK_INT(__atomic_load_n(&done, __ATOMIC_RELAXED), n);
    return unused;
}

/* ---- plain and offload threads release and send --------------------------- */

typedef struct outsider {
    tern_sem *sem;
    tern_chan *ch;
    int n;
} outsider;

static void *plain_thread(void *arg) {
    outsider *o = arg;
    for (int i = 0; i < o->n; i++) {
        struct timespec ts = {0, 200000};
        nanosleep(&ts, NULL);
        tern_sem_release(o->sem);
        CHECK_INT(tern_chan_send(o->ch, &i, 0), 0); /* room for all: never waits */
    }
    return NULL;
}

static void *offload_release(void *arg) {
    tern_sem_release(arg); /* on a pool thread */
    return NULL;
}

static void *sem_taker(void *arg) {
    tern_sem *s = arg;
    for (int i = 0; i < 10; i++) CHECK_INT(tern_sem_acquire_timeout(s, 10000), 0);
    return NULL;
}

static void *t_outsiders(void *unused) {
    static tern_sem sem = TERN_SEM_INIT(0);
    enum { N = 20 };
    tern_chan *ch = tern_chan_new(N, sizeof(int));
    outsider o = {&sem, ch, N};
    tern_task *ts[2] = {tern_spawn_on(0, sem_taker, &sem),
                        tern_spawn_on(1 % nthreads, sem_taker, &sem)};
    pthread_t th;
    pthread_create(&th, NULL, plain_thread, &o);
    for (int i = 0; i < N; i++) {
        int v = -1;
        CHECK_INT(tern_chan_recv(ch, &v, 10000), 0);
        CHECK_INT(v, i);
    }
    pthread_join(th, NULL);
    CHECK_INT(tern_join_all(ts, 2, NULL), 0);
    /* an offload thread's release wakes a coroutine on another worker */
    tern_task *t = tern_spawn_on(1 % nthreads, sem_taker, &sem);
    for (int i = 0; i < 10; i++) CHECK_INT(tern_offload(offload_release, &sem, NULL), 0);
    CHECK_INT(tern_join(t, NULL), 0);
    CHECK_INT(tern_sem_available(&sem), 0);
    int v;
    CHECK_INT(tern_chan_recv(ch, &v, 0), -ETIMEDOUT);
    tern_chan_free(ch);
    return unused;
}

int main(void) {
    for (nthreads = 2; nthreads <= 4; nthreads += 2) {
        uint64_t t0 = tern_clock_ns();
        run_group(nthreads, t_sem_hammer, NULL);
        run_group(nthreads, t_sem_fifo, NULL);
        run_group(nthreads, t_timeout_race, NULL);
        run_group(nthreads, t_mutex, NULL);
        run_group(nthreads, t_chan, NULL);
        run_group(nthreads, t_wg, NULL);
        run_group(nthreads, t_outsiders, NULL);
        fprintf(stderr, "%d schedulers: %.0f ms\n", nthreads, (tern_clock_ns() - t0) / 1e6);
    }
    return check_done();
}
