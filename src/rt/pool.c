/* Resource pool shared by every worker (see include/tern/pool.h for the
 * contract).
 *
 * Bookkeeping, all under the pool's spin lock (rt/spin.h; never held across
 * a callback, a park or a system call):
 *   size     = idle + in_use + creating, never above max_size. A slot is
 *              reserved (size++) before create runs, so parked creators
 *              cannot overshoot.
 *   idle     a ring of max_size entries used as a deque: acquire pops the
 *            newest (top), expiry pops the oldest (bottom).
 *   waiters  a FIFO of nodes on the waiting coroutines' stacks, from any
 *            worker. The side that frees something grants it to the head
 *            node under the lock: either a resource, or a reserved slot the
 *            waiter fills by calling create itself (so a replacement
 *            connect runs in the coroutine that needs it, on its worker,
 *            with its own cancellation), then wakes it after unlocking
 *            (tern__sched_wake_from_any). As in sync.c, a woken waiter
 *            looks at `granted` first; a waiter whose timeout fired takes
 *            the lock and either finds itself granted (and keeps it) or
 *            leaves the queue, so a grant is never lost.
 *   stats    the live figures; tern_pool_stats_read copies them under the
 *            lock, so a snapshot is always consistent.
 *
 * Idle expiry runs on one scheduler, `home` (the first acquirer's): the
 * timer lives in its wheel, which only its thread may touch. A release on
 * another worker that leaves more than min_idle idle asks home to arm the
 * timer through its remote queue (arm_pending counts such calls, so free
 * can wait them out); releases also expire due resources themselves. */
#include "tern/pool.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt/sched.h"
#include "rt/spin.h"

/* after a background create failed, wait this long before the next try:
 * a database or upstream that is down is not hammered by the filler */
#define FILL_RETRY_NS (1000ull * 1000000ull)

enum grant_kind { GRANT_NONE = 0, GRANT_RESOURCE = 1, GRANT_SLOT = 2 };

typedef struct pool_waiter {
    struct pool_waiter *next, *prev;
    tern__sched *sched;
    tern_coro *coro;
    uint64_t token;
    void *res;
    int granted; /* enum grant_kind; atomic */
} pool_waiter;

/* Who to wake, copied out of a granted node under the lock. */
typedef struct wake_addr {
    tern__sched *sched;
    tern_coro *coro;
    uint64_t token;
} wake_addr;

typedef struct idle_entry {
    void *res;
    uint64_t since_ns;
} idle_entry;

struct tern_pool {
    uint64_t lock;            /* guards every field below but cfg */
    tern_pool_config cfg;     /* immutable */
    tern__sched *home;        /* the expiry timer's scheduler; NULL until bound */
    idle_entry *ring;         /* max_size entries */
    size_t ring_head, idle_n; /* bottom (oldest) at ring_head */
    pool_waiter *wq_head, *wq_tail;
    size_t fg_creating; /* acquirers inside create */
    tern__timer expiry; /* in home's wheel; only home's thread touches it */
    int arm_posted;     /* an arm call is queued for home */
    unsigned arm_pending;
    tern_task *filler; /* background min_idle task, joinable */
    int filler_running;
    int closing;
    uint64_t fill_retry_ns; /* no background create before this */
    tern_pool_stats st;
    /* metrics registration */
    tern_server *metrics_server;
    char metrics_name[64];
};

static uint64_t lock_pool(tern_pool *p) {
    return tern__spin_lock(&p->lock);
}
static void unlock_pool(tern_pool *p, uint64_t v) {
    tern__spin_unlock(&p->lock, v);
}

static void wake(wake_addr a) {
    if (a.coro) tern__sched_wake_from_any(a.sched, a.coro, a.token, 0);
}

void tern_pool_stats_read(const tern_pool *cp, tern_pool_stats *out) {
    tern_pool *p = (tern_pool *)(uintptr_t)cp; /* the lock word changes, not the pool */
    uint64_t v = lock_pool(p);
    *out = p->st;
    out->idle = p->idle_n;
    unlock_pool(p, v);
}

void tern_pool_stats_add(tern_pool_stats *sum, const tern_pool_stats *x) {
    _Static_assert(sizeof(tern_pool_stats) % sizeof(uint64_t) == 0, "stats are uint64_t only");
    uint64_t *d = (uint64_t *)sum;
    const uint64_t *s = (const uint64_t *)x;
    for (size_t i = 0; i < sizeof(tern_pool_stats) / sizeof(uint64_t); i++) d[i] += s[i];
}

/* ---- idle deque (under the lock) -------------------------------------------- */

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

/* ---- waiters (under the lock) ----------------------------------------------- */

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

static wake_addr grant(tern_pool *p, enum grant_kind kind, void *res) {
    pool_waiter *w = p->wq_head;
    wq_remove(p, w);
    wake_addr a = {w->sched, w->coro, w->token};
    w->res = res;
    __atomic_store_n(&w->granted, kind, __ATOMIC_RELEASE);
    return a;
}

/* A slot became free (a resource was destroyed or a create failed): the
 * first waiter gets it and creates a replacement itself. */
static wake_addr slot_freed(tern_pool *p) {
    wake_addr none = {0};
    if (!p->wq_head || p->st.size >= p->cfg.max_size || p->closing) return none;
    p->st.size++;
    p->st.creating++;
    p->fg_creating++;
    return grant(p, GRANT_SLOT, NULL);
}

/* A resource is free: to the first waiter, else on top of the idle set
 * (*arm: the expiry timer may be needed). */
static wake_addr put_resource(tern_pool *p, void *res, int *arm) {
    if (p->wq_head) {
        p->st.in_use++;
        return grant(p, GRANT_RESOURCE, res);
    }
    idle_push_top(p, res, tern_clock_ns());
    *arm = p->cfg.idle_timeout_ms && p->idle_n > p->cfg.min_idle;
    wake_addr none = {0};
    return none;
}

/* ---- idle expiry ------------------------------------------------------------- */

/* Destroys resources idle for longer than idle_timeout_ms, oldest first,
 * while more than min_idle are idle (any thread; one at a time, so destroy
 * runs without the lock). */
static void expire_due(tern_pool *p, uint64_t now) {
    if (!p->cfg.idle_timeout_ms) return;
    uint64_t ttl = p->cfg.idle_timeout_ms * 1000000ull;
    for (;;) {
        uint64_t v = lock_pool(p);
        if (p->idle_n <= p->cfg.min_idle || p->ring[p->ring_head].since_ns + ttl > now) {
            unlock_pool(p, v);
            return;
        }
        void *res = idle_pop_bottom(p);
        p->st.expired++;
        p->st.size--;
        p->st.destroyed++;
        unlock_pool(p, v);
        p->cfg.destroy(p->cfg.arg, res);
    }
}

/* On home's thread: arms the timer for the oldest idle resource, if any is
 * beyond min_idle; never later than that resource's deadline. */
static void expiry_arm_here(tern_pool *p) {
    if (tern__timer_armed(&p->expiry)) return;
    uint64_t v = lock_pool(p);
    uint64_t deadline = 0;
    if (!p->closing && p->idle_n > p->cfg.min_idle)
        deadline = p->ring[p->ring_head].since_ns + p->cfg.idle_timeout_ms * 1000000ull;
    unlock_pool(p, v);
    if (deadline) tern__wheel_add(&p->home->wheel, &p->expiry, deadline);
}

static void expiry_fire(tern__timer *t) {
    tern_pool *p = (tern_pool *)(void *)((char *)t - offsetof(tern_pool, expiry));
    expire_due(p, tern__sched_self->now_ns);
    expiry_arm_here(p);
}

/* Remote call target, on home's thread. */
static void expiry_arm_call(void *arg) {
    tern_pool *p = arg;
    uint64_t v = lock_pool(p);
    p->arm_posted = 0;
    p->arm_pending--;
    unlock_pool(p, v);
    expiry_arm_here(p);
}

/* Any thread, without the lock: makes sure home's timer is armed. */
static void expiry_request(tern_pool *p) {
    if (!p->cfg.idle_timeout_ms) return;
    tern__sched *self = tern__sched_self;
    uint64_t v = lock_pool(p);
    tern__sched *home = p->home;
    int post = home && self != home && !p->arm_posted && !p->closing;
    if (post) {
        p->arm_posted = 1;
        p->arm_pending++;
    }
    unlock_pool(p, v);
    if (home && self == home) {
        expiry_arm_here(p);
    } else if (post && tern__sched_remote_call(home, expiry_arm_call, p) < 0) {
        /* out of memory: releases still expire due resources themselves */
        v = lock_pool(p);
        p->arm_posted = 0;
        p->arm_pending--;
        unlock_pool(p, v);
    }
}

/* ---- background fill ---------------------------------------------------------- */

static void maybe_fill(tern_pool *p);

/* One background create: 1 created (go on), 0 stop. */
static int fill_one(tern_pool *p) {
    uint64_t v = lock_pool(p);
    if (p->closing || p->idle_n >= p->cfg.min_idle || p->st.size >= p->cfg.max_size || p->wq_head) {
        p->filler_running = 0;
        unlock_pool(p, v);
        return 0;
    }
    p->st.size++;
    p->st.creating++;
    unlock_pool(p, v);
    void *res = NULL;
    int r = p->cfg.create(p->cfg.arg, &res);
    v = lock_pool(p);
    p->st.creating--;
    if (r < 0 || !res) {
        p->st.size--;
        p->st.create_failures++;
        p->fill_retry_ns = tern_clock_ns() + FILL_RETRY_NS;
        p->filler_running = 0;
        wake_addr a = slot_freed(p);
        unlock_pool(p, v);
        wake(a);
        return 0;
    }
    p->st.created++;
    if (p->closing) {
        p->st.size--;
        p->st.destroyed++;
        p->filler_running = 0;
        unlock_pool(p, v);
        p->cfg.destroy(p->cfg.arg, res);
        return 0;
    }
    int arm = 0;
    wake_addr a = put_resource(p, res, &arm);
    unlock_pool(p, v);
    wake(a);
    if (arm) expiry_request(p);
    return 1;
}

static void *filler_main(void *arg) {
    while (fill_one(arg)) {
    }
    return NULL;
}

/* Starts the background task (on the calling worker) when fewer than
 * min_idle are idle. Without the lock held. */
static void maybe_fill(tern_pool *p) {
    tern__sched *s = tern__sched_self;
    if (!p->cfg.min_idle || !s) return;
    uint64_t v = lock_pool(p);
    if (p->closing || p->filler_running || p->idle_n >= p->cfg.min_idle ||
        p->st.size >= p->cfg.max_size || p->wq_head || s->now_ns < p->fill_retry_ns) {
        unlock_pool(p, v);
        return;
    }
    p->filler_running = 1;
    tern_task *old = p->filler;
    p->filler = NULL;
    unlock_pool(p, v);
    /* the previous filler cleared filler_running as its last touch of the
     * pool, but may still be returning (on another worker): let it free
     * its own handle rather than wait for it here */
    tern_detach(old);
    /* the new task cannot finish before it is recorded: it runs on this
     * thread, which does not switch before the assignment below */
    tern_task *t = tern_spawn(filler_main, p);
    v = lock_pool(p);
    p->filler = t;
    if (!t) p->filler_running = 0;
    unlock_pool(p, v);
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
    return p;
}

/* Fills a reserved slot (size, creating and fg_creating already counted). */
static int create_into(tern_pool *p, void **out) {
    void *res = NULL;
    int r = p->cfg.create(p->cfg.arg, &res);
    uint64_t v = lock_pool(p);
    p->st.creating--;
    p->fg_creating--;
    if (r < 0 || !res) {
        p->st.size--;
        p->st.create_failures++;
        wake_addr a = slot_freed(p);
        unlock_pool(p, v);
        wake(a);
        return r < 0 ? r : -EIO;
    }
    p->st.created++;
    p->st.in_use++;
    p->st.acquired++;
    unlock_pool(p, v);
    *out = res;
    maybe_fill(p);
    return 0;
}

static uint64_t deadline_after_ms(int64_t timeout_ms) {
    uint64_t now = tern_clock_ns();
    uint64_t ms = (uint64_t)timeout_ms;
    if (ms > (UINT64_MAX - now) / 1000000ull) return UINT64_MAX;
    return now + ms * 1000000ull;
}

/* Called with the lock held (value v) and no waiter queued: takes an idle
 * resource (validated if configured) or reserves a slot and creates one.
 * Returns 1 with the lock still held when the caller must queue, else the
 * outcome (lock released). */
static int acquire_now(tern_pool *p, uint64_t v, void **out) {
    while (!p->wq_head) {
        if (p->idle_n) {
            void *res = idle_pop_top(p);
            p->st.in_use++;
            if (p->cfg.validate_on_acquire) {
                unlock_pool(p, v);
                int ok = p->cfg.validate(p->cfg.arg, res) >= 0;
                v = lock_pool(p);
                if (!ok) {
                    /* stale (e.g. the peer closed an idle socket): next one */
                    p->st.in_use--;
                    p->st.validate_failures++;
                    p->st.size--;
                    p->st.destroyed++;
                    unlock_pool(p, v);
                    p->cfg.destroy(p->cfg.arg, res);
                    v = lock_pool(p);
                    wake_addr a = slot_freed(p);
                    if (a.coro) {
                        unlock_pool(p, v);
                        wake(a);
                        v = lock_pool(p);
                    }
                    continue;
                }
            }
            p->st.acquired++;
            unlock_pool(p, v);
            *out = res;
            maybe_fill(p);
            return 0;
        }
        if (p->st.size < p->cfg.max_size) {
            p->st.size++;
            p->st.creating++;
            p->fg_creating++;
            unlock_pool(p, v);
            return create_into(p, out);
        }
        break;
    }
    return 1;
}

/* Called with the lock held (value v): queues and parks until granted, the
 * deadline or a cancel. */
static int acquire_wait(tern_pool *p, uint64_t v, int64_t timeout_ms, void **out) {
    tern__sched *s = tern__sched_self;
    pool_waiter w = {.sched = s, .coro = s->current, .granted = GRANT_NONE};
    w.token = tern__sched_wait_begin();
    uint64_t deadline = timeout_ms < 0 ? 0 : deadline_after_ms(timeout_ms);
    uint64_t t0 = tern_clock_ns();
    wq_push(p, &w);
    unlock_pool(p, v);
    int r = 0;
    for (;;) {
        r = tern__sched_park_until(deadline);
        if (__atomic_load_n(&w.granted, __ATOMIC_ACQUIRE) || r < 0) break;
        /* woken with 0 but not granted: a stray wake, keep waiting */
    }
    v = lock_pool(p);
    tern__sched_wait_end();
    p->st.waited++;
    p->st.wait_ns_total += tern_clock_ns() - t0;
    if (w.granted == GRANT_RESOURCE) {
        p->st.acquired++;
        unlock_pool(p, v);
        *out = w.res;
        return 0;
    }
    if (w.granted == GRANT_SLOT) {
        unlock_pool(p, v);
        return create_into(p, out);
    }
    /* not granted, and no grant can pick us any more once we leave */
    wq_remove(p, &w);
    if (r == -ETIMEDOUT)
        p->st.timeouts++;
    else
        p->st.cancelled++;
    unlock_pool(p, v);
    return r;
}

int tern_pool_acquire(tern_pool *p, int64_t timeout_ms, void **out) {
    *out = NULL;
    tern__sched *s = tern__sched_self;
    if (!s || !s->current) return -EPERM;
    uint64_t v = lock_pool(p);
    if (!p->home) p->home = s;
    if (p->closing) {
        unlock_pool(p, v);
        return -ESHUTDOWN;
    }
    /* no barging: with waiters queued, a newcomer queues behind them */
    if (!p->wq_head) {
        int r = acquire_now(p, v, out);
        if (r <= 0) return r;
    }
    if (timeout_ms == 0) {
        p->st.timeouts++;
        unlock_pool(p, v);
        return -ETIMEDOUT;
    }
    return acquire_wait(p, v, timeout_ms, out);
}

void tern_pool_release(tern_pool *p, void *res) {
    uint64_t v = lock_pool(p);
    p->st.in_use--;
    if (p->closing) {
        p->st.size--;
        p->st.destroyed++;
        unlock_pool(p, v);
        p->cfg.destroy(p->cfg.arg, res);
        return;
    }
    int arm = 0;
    wake_addr a = put_resource(p, res, &arm);
    unlock_pool(p, v);
    wake(a);
    expire_due(p, tern_clock_ns());
    if (arm) expiry_request(p);
}

void tern_pool_discard(tern_pool *p, void *res) {
    uint64_t v = lock_pool(p);
    p->st.in_use--;
    p->st.discards++;
    p->st.size--;
    p->st.destroyed++;
    unlock_pool(p, v);
    p->cfg.destroy(p->cfg.arg, res);
    v = lock_pool(p);
    wake_addr a = slot_freed(p);
    unlock_pool(p, v);
    wake(a);
    maybe_fill(p);
}

/* Joins t (if any), ignoring the caller's own cancellation for the
 * duration: t uses the pool, it must end before the pool is freed.
 * Cancellation is sticky in the scheduler, so the flag is set aside and
 * put back afterwards, as tern_offload does. Off a coroutine (the loops
 * have stopped) an unfinished task can never run again: it is detached. */
static void join_quietly(tern_task *t, void **result) {
    if (!t) return;
    tern__sched *s = tern__sched_self;
    if (!s || !s->current) {
        tern_detach(t); /* frees it now if finished, else when (if ever) it ends */
        return;
    }
    tern_coro *self = s->current;
    uint32_t cancelled = self->flags & TERN_CORO_CANCELLED;
    self->flags &= ~TERN_CORO_CANCELLED;
    while (tern_join(t, result) == -ECANCELED) {
        cancelled |= self->flags & TERN_CORO_CANCELLED;
        self->flags &= ~TERN_CORO_CANCELLED;
    }
    self->flags |= cancelled;
}

static void *free_on_home(void *arg) {
    return (void *)(intptr_t)tern_pool_free(arg);
}

int tern_pool_free(tern_pool *p) {
    if (!p) return 0;
    tern__sched *s = tern__sched_self;
    uint64_t v = lock_pool(p);
    if (p->st.in_use || p->wq_head || p->fg_creating) {
        unlock_pool(p, v);
        return -EBUSY;
    }
    tern__sched *home = p->home;
    if (home && s && s->current && s != home) {
        /* the expiry timer is in home's wheel: free there, wait here */
        unlock_pool(p, v);
        if (tern__sched_group_get(home->id) != home) return -EBUSY;
        tern_task *t = tern_spawn_on(home->id, free_on_home, p);
        if (!t) return -ENOMEM;
        void *r = NULL;
        join_quietly(t, &r);
        return (int)(intptr_t)r;
    }
    p->closing = 1;
    tern_task *filler = p->filler;
    p->filler = NULL;
    unlock_pool(p, v);
    if (p->metrics_name[0]) tern_metrics_unregister_source(p->metrics_server, p->metrics_name);
    if (filler) tern_cancel(filler);
    join_quietly(filler, NULL);
    if (home && s == home) {
        /* arm calls from other workers still queued for us: apply them now
         * (they see `closing`), so none runs after the pool is gone */
        for (;;) {
            v = lock_pool(p);
            unsigned pending = p->arm_pending;
            unlock_pool(p, v);
            if (!pending) break;
            tern__sched_drain_remote(home);
        }
    }
    /* only home's thread may touch its wheel; off every worker the loops
     * have stopped (the contract), so the timer can never fire again, and
     * home's scheduler may already be gone: leave its wheel alone */
    if (home && s == home) tern__wheel_cancel(&home->wheel, &p->expiry);
    while (p->idle_n) {
        p->st.size--;
        p->cfg.destroy(p->cfg.arg, idle_pop_bottom(p));
    }
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
