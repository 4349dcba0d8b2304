/* Resource pool (see include/tern/pool.h for the contract).
 *
 * Bookkeeping, all owned by the pool's worker:
 *   size     = idle + in_use + creating, never above max_size. A slot is
 *              reserved (size++) before create runs, so parked creators
 *              cannot overshoot.
 *   idle     a ring of max_size entries used as a deque: acquire pops the
 *            newest (top), expiry pops the oldest (bottom).
 *   waiters  a FIFO of nodes on the waiting coroutines' stacks. The side
 *            that frees something grants it to the head node: either a
 *            resource, or a reserved slot the waiter fills by calling
 *            create itself (so a replacement connect runs in the coroutine
 *            that needs it, with its own cancellation). As in sync.c, a
 *            woken waiter looks at `granted` before park's return value: a
 *            grant that lands in the same loop pass as its timeout or
 *            cancellation is kept, never lost.
 *
 * Stats go to readers on other threads through a seqlock: the worker
 * rewrites the published copy after every operation (about 20 relaxed
 * stores), readers retry if it changed under them. */
#include "tern/pool.h"

#include <errno.h>
#include <sched.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt/sched.h"

/* after a background create failed, wait this long before the next try:
 * a database or upstream that is down is not hammered by the filler */
#define FILL_RETRY_NS (1000ull * 1000000ull)

enum { GRANT_NONE = 0, GRANT_RESOURCE = 1, GRANT_SLOT = 2 };

typedef struct pool_waiter {
    struct pool_waiter *next, *prev;
    tern_coro *coro;
    void *res;
    int granted;
} pool_waiter;

typedef struct idle_entry {
    void *res;
    uint64_t since_ns;
} idle_entry;

struct tern_pool {
    tern_pool_config cfg;
    tern__sched *sched;        /* owning worker, NULL until bound */
    idle_entry *ring;         /* max_size entries */
    size_t ring_head, idle_n; /* bottom (oldest) at ring_head */
    pool_waiter *wq_head, *wq_tail;
    size_t fg_creating; /* acquirers inside create */
    tern__timer expiry;
    tern_task *filler; /* background min_idle task, joinable */
    int filler_running;
    int closing;
    uint64_t fill_retry_ns; /* no background create before this */
    tern_pool_stats st;     /* owner's live figures */
    /* published copy for other threads */
    unsigned seq;
    tern_pool_stats pub;
    /* metrics registration */
    tern_server *metrics_server;
    char metrics_name[64];
};

/* The publisher copies tern_pool_stats as an array of uint64_t. */
_Static_assert(sizeof(tern_pool_stats) % sizeof(uint64_t) == 0, "stats are uint64_t only");
#define STATS_WORDS (sizeof(tern_pool_stats) / sizeof(uint64_t))

static void misuse(const char *what) {
    fprintf(stderr, "tern: %s\n", what);
    abort();
}

static void publish(tern_pool *p) {
    p->st.idle = p->idle_n;
    uint64_t *dst = (uint64_t *)&p->pub;
    const uint64_t *src = (const uint64_t *)&p->st;
    unsigned s = p->seq;
    __atomic_store_n(&p->seq, s + 1, __ATOMIC_RELAXED);
    __atomic_thread_fence(__ATOMIC_RELEASE);
    for (size_t i = 0; i < STATS_WORDS; i++) __atomic_store_n(&dst[i], src[i], __ATOMIC_RELAXED);
    __atomic_store_n(&p->seq, s + 2, __ATOMIC_RELEASE);
}

void tern_pool_stats_read(const tern_pool *p, tern_pool_stats *out) {
    const uint64_t *src = (const uint64_t *)&p->pub;
    uint64_t *dst = (uint64_t *)out;
    for (;;) {
        unsigned s1 = __atomic_load_n(&p->seq, __ATOMIC_ACQUIRE);
        if (s1 & 1) {
            sched_yield(); /* a write is in progress (~20 stores); its thread may be preempted */
            continue;
        }
        for (size_t i = 0; i < STATS_WORDS; i++)
            dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&p->seq, __ATOMIC_RELAXED) == s1) return;
    }
}

void tern_pool_stats_add(tern_pool_stats *sum, const tern_pool_stats *x) {
    uint64_t *d = (uint64_t *)sum;
    const uint64_t *s = (const uint64_t *)x;
    for (size_t i = 0; i < STATS_WORDS; i++) d[i] += s[i];
}

/* ---- idle deque ------------------------------------------------------------ */

static idle_entry *idle_at(tern_pool *p, size_t i) {
    return &p->ring[(p->ring_head + i) % p->cfg.max_size];
}

static void idle_push_top(tern_pool *p, void *res, uint64_t now) {
    idle_entry *e = idle_at(p, p->idle_n);
    e->res = res;
    e->since_ns = now;
    p->idle_n++;
}

static void *idle_pop_top(tern_pool *p) {
    p->idle_n--;
    return idle_at(p, p->idle_n)->res;
}

static void *idle_pop_bottom(tern_pool *p) {
    void *res = p->ring[p->ring_head].res;
    p->ring_head = (p->ring_head + 1) % p->cfg.max_size;
    p->idle_n--;
    return res;
}

/* ---- waiters --------------------------------------------------------------- */

static void wq_push(tern_pool *p, pool_waiter *w) {
    w->next = NULL;
    w->prev = p->wq_tail;
    if (p->wq_tail)
        p->wq_tail->next = w;
    else
        p->wq_head = w;
    p->wq_tail = w;
    p->st.waiters++;
}

static void wq_remove(tern_pool *p, pool_waiter *w) {
    if (w->prev)
        w->prev->next = w->next;
    else
        p->wq_head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        p->wq_tail = w->prev;
    w->next = w->prev = NULL;
    p->st.waiters--;
}

static void grant(tern_pool *p, int kind, void *res) {
    pool_waiter *w = p->wq_head;
    if (tern__sched_self != p->sched) misuse("tern_pool used from two workers");
    wq_remove(p, w);
    w->granted = kind;
    w->res = res;
    tern__sched_wake(w->coro, 0);
}

/* ---- creation, expiry, background fill ------------------------------------ */

static void destroy_one(tern_pool *p, void *res) {
    p->st.size--;
    p->st.destroyed++;
    p->cfg.destroy(p->cfg.arg, res);
}

/* A slot became free (a resource was destroyed or a create failed): the
 * first waiter gets it and creates a replacement itself. */
static void slot_freed(tern_pool *p) {
    if (p->wq_head && p->st.size < p->cfg.max_size && !p->closing) {
        p->st.size++;
        p->st.creating++;
        p->fg_creating++;
        grant(p, GRANT_SLOT, NULL);
    }
}

static void expiry_arm(tern_pool *p) {
    if (!p->cfg.idle_timeout_ms || !p->sched || p->idle_n <= p->cfg.min_idle) return;
    if (tern__timer_armed(&p->expiry)) return; /* never later than the bottom's deadline */
    tern__wheel_add(&p->sched->wheel, &p->expiry,
                   p->ring[p->ring_head].since_ns + p->cfg.idle_timeout_ms * 1000000ull);
}

static void maybe_fill(tern_pool *p);

/* Destroys resources idle for longer than idle_timeout_ms, oldest first,
 * while more than min_idle are idle, then re-arms the timer for the next. */
static void expire_idle(tern_pool *p, uint64_t now) {
    if (!p->cfg.idle_timeout_ms) return;
    uint64_t ttl = p->cfg.idle_timeout_ms * 1000000ull;
    while (p->idle_n > p->cfg.min_idle && p->ring[p->ring_head].since_ns + ttl <= now) {
        void *res = idle_pop_bottom(p);
        p->st.expired++;
        destroy_one(p, res);
    }
    expiry_arm(p);
}

static void expiry_fire(tern__timer *t) {
    tern_pool *p = (tern_pool *)(void *)((char *)t - offsetof(tern_pool, expiry));
    expire_idle(p, tern__sched_self->now_ns);
    publish(p);
}

/* A resource is free: to the first waiter, else on top of the idle set. */
static void put_resource(tern_pool *p, void *res) {
    if (p->wq_head) {
        p->st.in_use++;
        grant(p, GRANT_RESOURCE, res);
        return;
    }
    idle_push_top(p, res, tern_clock_ns());
    expiry_arm(p);
}

static void *filler_main(void *arg) {
    tern_pool *p = arg;
    while (!p->closing && p->idle_n < p->cfg.min_idle && p->st.size < p->cfg.max_size &&
           !p->wq_head) {
        p->st.size++;
        p->st.creating++;
        publish(p);
        void *res = NULL;
        int r = p->cfg.create(p->cfg.arg, &res);
        p->st.creating--;
        if (r < 0 || !res) {
            p->st.size--;
            p->st.create_failures++;
            p->fill_retry_ns = tern_clock_ns() + FILL_RETRY_NS;
            slot_freed(p);
            break;
        }
        p->st.created++;
        if (p->closing) {
            destroy_one(p, res);
            break;
        }
        put_resource(p, res);
        publish(p);
    }
    p->filler_running = 0;
    publish(p);
    return NULL;
}

/* Starts the background task when fewer than min_idle are idle. Needs the
 * owning worker's scheduler (tern_spawn works from the loop too). */
static void maybe_fill(tern_pool *p) {
    if (!p->cfg.min_idle || p->closing || p->filler_running || !p->sched) return;
    if (tern__sched_self != p->sched) return;
    if (p->idle_n >= p->cfg.min_idle || p->st.size >= p->cfg.max_size || p->wq_head) return;
    if (p->sched->now_ns < p->fill_retry_ns) return;
    if (p->filler) {
        tern_join(p->filler, NULL); /* finished: frees the handle, never parks */
        p->filler = NULL;
    }
    p->filler = tern_spawn(filler_main, p);
    if (p->filler) p->filler_running = 1;
}

/* ---- public ---------------------------------------------------------------- */

tern_pool *tern_pool_new(const tern_pool_config *cfg) {
    if (!cfg || !cfg->max_size || cfg->min_idle > cfg->max_size || !cfg->create || !cfg->destroy ||
        (cfg->validate_on_acquire && !cfg->validate) ||
        cfg->max_size > SIZE_MAX / sizeof(idle_entry)) {
        errno = EINVAL;
        return NULL;
    }
    tern_pool *p = calloc(1, sizeof *p);
    if (!p) return NULL;
    p->ring = calloc(cfg->max_size, sizeof *p->ring);
    if (!p->ring) {
        free(p);
        return NULL;
    }
    p->cfg = *cfg;
    p->expiry.fn = expiry_fire;
    p->st.max_size = cfg->max_size;
    p->st.min_idle = cfg->min_idle;
    publish(p);
    return p;
}

/* Binds the pool to the calling coroutine's worker. 0, -EPERM, -EXDEV. */
static int bind_here(tern_pool *p) {
    tern__sched *s = tern__sched_self;
    if (!s || !s->current) return -EPERM;
    if (!p->sched) p->sched = s;
    return p->sched == s ? 0 : -EXDEV;
}

/* Fills a reserved slot (size and creating already counted). */
static int create_into(tern_pool *p, void **out) {
    void *res = NULL;
    publish(p);
    int r = p->cfg.create(p->cfg.arg, &res);
    p->st.creating--;
    p->fg_creating--;
    if (r < 0 || !res) {
        p->st.size--;
        p->st.create_failures++;
        slot_freed(p);
        publish(p);
        return r < 0 ? r : -EIO;
    }
    p->st.created++;
    p->st.in_use++;
    p->st.acquired++;
    *out = res;
    maybe_fill(p);
    publish(p);
    return 0;
}

static uint64_t deadline_after_ms(int64_t timeout_ms) {
    uint64_t now = tern_clock_ns();
    uint64_t ms = (uint64_t)timeout_ms;
    if (ms > (UINT64_MAX - now) / 1000000ull) return UINT64_MAX;
    return now + ms * 1000000ull;
}

int tern_pool_acquire(tern_pool *p, int64_t timeout_ms, void **out) {
    *out = NULL;
    int r = bind_here(p);
    if (r < 0) return r;
    if (p->closing) return -ESHUTDOWN;
    /* no barging: with waiters queued, a newcomer queues behind them */
    while (!p->wq_head) {
        if (p->idle_n) {
            void *res = idle_pop_top(p);
            p->st.in_use++;
            if (p->cfg.validate_on_acquire) {
                publish(p);
                if (p->cfg.validate(p->cfg.arg, res) < 0) {
                    /* stale (e.g. the peer closed an idle socket): next one */
                    p->st.in_use--;
                    p->st.validate_failures++;
                    destroy_one(p, res);
                    slot_freed(p);
                    publish(p);
                    continue;
                }
            }
            p->st.acquired++;
            *out = res;
            maybe_fill(p);
            publish(p);
            return 0;
        }
        if (p->st.size < p->cfg.max_size) {
            p->st.size++;
            p->st.creating++;
            p->fg_creating++;
            return create_into(p, out);
        }
        break;
    }
    if (timeout_ms == 0) {
        p->st.timeouts++;
        publish(p);
        return -ETIMEDOUT;
    }
    pool_waiter w = {.coro = tern__sched_self->current, .granted = GRANT_NONE};
    uint64_t deadline = timeout_ms < 0 ? 0 : deadline_after_ms(timeout_ms);
    uint64_t t0 = tern_clock_ns();
    wq_push(p, &w);
    publish(p);
    for (;;) {
        r = tern__sched_park_until(deadline);
        if (w.granted || r < 0) break;
        /* woken with 0 but not granted: a stray wake, keep waiting */
    }
    p->st.waited++;
    p->st.wait_ns_total += tern_clock_ns() - t0;
    if (w.granted == GRANT_RESOURCE) {
        p->st.acquired++;
        *out = w.res;
        publish(p);
        return 0;
    }
    if (w.granted == GRANT_SLOT) return create_into(p, out);
    wq_remove(p, &w);
    if (r == -ETIMEDOUT)
        p->st.timeouts++;
    else
        p->st.cancelled++;
    publish(p);
    return r;
}

void tern_pool_release(tern_pool *p, void *res) {
    if (p->sched && tern__sched_self != p->sched) misuse("tern_pool used from two workers");
    p->st.in_use--;
    if (p->closing) {
        destroy_one(p, res);
    } else {
        put_resource(p, res);
        expire_idle(p, tern_clock_ns());
    }
    publish(p);
}

void tern_pool_discard(tern_pool *p, void *res) {
    if (p->sched && tern__sched_self != p->sched) misuse("tern_pool used from two workers");
    p->st.in_use--;
    p->st.discards++;
    destroy_one(p, res);
    slot_freed(p);
    maybe_fill(p);
    publish(p);
}

/* Joins the background task, ignoring the caller's own cancellation for
 * the duration (the task uses the pool: it must end before the pool is
 * freed). Cancellation is sticky in the scheduler, so the flag is set aside
 * and put back afterwards, as tern_offload does. */
static void join_filler(tern_pool *p) {
    tern__sched *s = tern__sched_self;
    if (p->filler_running) {
        if (!s || s != p->sched || !s->current) {
            /* the worker's loop has stopped: the task can never run again
             * and nothing will touch the pool; its handle is abandoned */
            p->filler = NULL;
            return;
        }
        tern_cancel(p->filler);
        tern_coro *self = s->current;
        uint32_t cancelled = self->flags & TERN_CORO_CANCELLED;
        self->flags &= ~TERN_CORO_CANCELLED;
        while (tern_join(p->filler, NULL) == -ECANCELED) {
            cancelled |= self->flags & TERN_CORO_CANCELLED;
            self->flags &= ~TERN_CORO_CANCELLED;
        }
        self->flags |= cancelled;
    } else if (p->filler) {
        tern_join(p->filler, NULL);
    }
    p->filler = NULL;
}

int tern_pool_free(tern_pool *p) {
    if (!p) return 0;
    if (p->sched && tern__sched_self && tern__sched_self != p->sched) return -EXDEV;
    if (p->st.in_use || p->wq_head || p->fg_creating) return -EBUSY;
    p->closing = 1;
    if (p->metrics_name[0]) tern_metrics_unregister_source(p->metrics_server, p->metrics_name);
    join_filler(p);
    if (p->sched) tern__wheel_cancel(&p->sched->wheel, &p->expiry);
    while (p->idle_n) destroy_one(p, idle_pop_bottom(p));
    free(p->ring);
    free(p);
    return 0;
}

/* ---- metrics --------------------------------------------------------------- */

void tern_pool_metrics_write(const tern_pool_stats *st, tern_metrics_writer *w) {
    tern_metrics_gauge(w, "size", "Resources existing or being created", (double)st->size);
    tern_metrics_gauge(w, "idle", "Idle resources ready to hand out", (double)st->idle);
    tern_metrics_gauge(w, "in_use", "Resources held by callers", (double)st->in_use);
    tern_metrics_gauge(w, "creating", "Resources being created", (double)st->creating);
    tern_metrics_gauge(w, "waiters", "Coroutines parked waiting for a resource",
                       (double)st->waiters);
    tern_metrics_gauge(w, "max_size", "Configured maximum size", (double)st->max_size);
    tern_metrics_gauge(w, "min_idle", "Configured minimum idle", (double)st->min_idle);
    tern_metrics_counter(w, "created_total", "Resources created", (double)st->created);
    tern_metrics_counter(w, "destroyed_total", "Resources destroyed", (double)st->destroyed);
    tern_metrics_counter(w, "acquired_total", "Successful acquires", (double)st->acquired);
    tern_metrics_counter(w, "waited_total", "Acquires that waited in the queue",
                         (double)st->waited);
    tern_metrics_counter(w, "timeouts_total", "Acquires that timed out", (double)st->timeouts);
    tern_metrics_counter(w, "cancelled_total", "Waiters cancelled while queued",
                         (double)st->cancelled);
    tern_metrics_counter(w, "discards_total", "Resources discarded as broken",
                         (double)st->discards);
    tern_metrics_counter(w, "create_failures_total", "Failed creates", (double)st->create_failures);
    tern_metrics_counter(w, "validate_failures_total", "Idle resources that failed validation",
                         (double)st->validate_failures);
    tern_metrics_counter(w, "expired_total", "Resources destroyed by idle expiry",
                         (double)st->expired);
    tern_metrics_counter(w, "wait_seconds_total", "Time acquirers spent waiting",
                         (double)st->wait_ns_total / 1e9);
}

static void metrics_source(void *arg, tern_metrics_writer *w) {
    tern_pool_stats st;
    tern_pool_stats_read(arg, &st);
    tern_pool_metrics_write(&st, w);
}

int tern_pool_register_metrics(tern_pool *p, tern_server *s, const char *name) {
    if (!name || strlen(name) >= sizeof p->metrics_name || p->metrics_name[0]) return -EINVAL;
    int r = tern_metrics_register_source(s, name, metrics_source, p);
    if (r < 0) return r;
    p->metrics_server = s;
    snprintf(p->metrics_name, sizeof p->metrics_name, "%s", name);
    return 0;
}
