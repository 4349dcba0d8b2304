/* Semaphores, mutexes, wait groups and bounded channels that park the
 * coroutine, plus a cross-thread semaphore (see include/tern/sync.h).
 *
 * Every waiting call shares one protocol (wait_on): the waiter puts a node
 * living on its own stack at the tail of the object's FIFO and parks. The
 * side that frees a resource hands it to the head node directly (grant):
 * it unlinks the node, marks it granted with the result, then wakes the
 * coroutine. After any wake-up the waiter looks at `granted` first, not at
 * park's return value: a waiter whose timeout or cancellation fired in the
 * same loop pass as the grant is still in the queue until it runs, may be
 * granted meanwhile, and must then keep what it was given, or a permit (or
 * a channel item) would vanish. Only an ungranted waiter unlinks itself. */
#include "tern/sync.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt/sched.h"

struct tern_waiter {
    struct tern_waiter *next, *prev;
    tern_coro *coro;
    tern__sched *sched;
    void *item;             /* channel: sender's item / receiver's buffer */
    int result;             /* set by grant */
    int granted;
};
typedef struct tern_waiter tern_waiter;

/* Deadline in scheduler nanoseconds for a positive timeout, saturating so a
 * huge timeout means "practically forever" rather than wrapping to the past. */
static uint64_t deadline_after_ms(int64_t timeout_ms) {
    uint64_t now = tern_clock_ns();
    uint64_t ms = (uint64_t)timeout_ms;
    if (ms > (UINT64_MAX - now) / 1000000ull) return UINT64_MAX;
    return now + ms * 1000000ull;
}

static void waitq_push(tern_waitq *q, tern_waiter *w) {
    w->next = NULL;
    w->prev = q->tail;
    if (q->tail)
        q->tail->next = w;
    else
        q->head = w;
    q->tail = w;
}

static void waitq_remove(tern_waitq *q, tern_waiter *w) {
    if (w->prev)
        w->prev->next = w->next;
    else
        q->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    else
        q->tail = w->prev;
    w->next = w->prev = NULL;
}

static void misuse(const char *what) {
    fprintf(stderr, "tern: %s\n", what);
    abort();
}

/* Hands the resource to waiter w with `result` and makes it ready. */
static void grant(tern_waitq *q, tern_waiter *w, int result) {
    /* the run queue is per worker: a wake from another thread would corrupt it */
    if (w->sched != tern__sched_self) misuse("sync object used from two workers");
    waitq_remove(q, w);
    w->granted = 1;
    w->result = result;
    tern__sched_wake(w->coro, result);
}

static void grant_all(tern_waitq *q, int result) {
    while (q->head) grant(q, q->head, result);
}

/* Parks the current coroutine on q until granted, the deadline passes
 * (timeout_ms > 0) or it is cancelled. timeout_ms must not be 0. */
static int wait_on(tern_waitq *q, tern_waiter *w, int64_t timeout_ms) {
    tern__sched *s = tern__sched_self;
    if (!s || !s->current) return -EPERM;
    if (q->head && q->head->sched != s) return -EXDEV;
    uint64_t deadline = timeout_ms < 0 ? 0 : deadline_after_ms(timeout_ms);
    w->coro = s->current;
    w->sched = s;
    w->granted = 0;
    w->result = 0;
    waitq_push(q, w);
    for (;;) {
        int r = tern__sched_park_until(deadline);
        if (w->granted) return w->result;
        if (r < 0) {
            waitq_remove(q, w);
            return r;
        }
        /* woken with 0 but not granted: a stray wake, keep waiting */
    }
}

static tern_coro *current_coro(void) {
    tern__sched *s = tern__sched_self;
    return s ? s->current : NULL;
}

/* ---- semaphore ----------------------------------------------------------- */

void tern_sem_init(tern_sem *sem, size_t count) {
    sem->count = count;
    sem->waiters.head = sem->waiters.tail = NULL;
}

int tern_sem_try_acquire(tern_sem *sem) {
    /* count > 0 implies no waiters: release hands permits to waiters first */
    if (sem->count == 0) return -EAGAIN;
    sem->count--;
    return 0;
}

int tern_sem_acquire_timeout(tern_sem *sem, int64_t timeout_ms) {
    if (tern_sem_try_acquire(sem) == 0) return 0;
    if (timeout_ms == 0) return -ETIMEDOUT;
    tern_waiter w;
    return wait_on(&sem->waiters, &w, timeout_ms);
}

int tern_sem_acquire(tern_sem *sem) { return tern_sem_acquire_timeout(sem, -1); }

void tern_sem_release(tern_sem *sem) {
    if (sem->waiters.head)
        grant(&sem->waiters, sem->waiters.head, 0);
    else
        sem->count++;
}

size_t tern_sem_available(const tern_sem *sem) { return sem->count; }

/* ---- mutex --------------------------------------------------------------- */

void tern_mutex_init(tern_mutex *m) {
    m->locked = 0;
    m->owner = NULL;
    m->waiters.head = m->waiters.tail = NULL;
}

int tern_mutex_try_lock(tern_mutex *m) {
    if (m->locked) return -EBUSY;
    m->locked = 1;
    m->owner = current_coro();
    return 0;
}

int tern_mutex_lock_timeout(tern_mutex *m, int64_t timeout_ms) {
    if (tern_mutex_try_lock(m) == 0) return 0;
    tern_coro *self = current_coro();
    if (self && m->owner == self) return -EDEADLK; /* would wait for itself forever */
    if (timeout_ms == 0) return -ETIMEDOUT;
    tern_waiter w;
    /* on success unlock has already made us the owner */
    return wait_on(&m->waiters, &w, timeout_ms);
}

int tern_mutex_lock(tern_mutex *m) { return tern_mutex_lock_timeout(m, -1); }

int tern_mutex_unlock(tern_mutex *m) {
    if (!m->locked || m->owner != current_coro()) return -EPERM;
    if (m->waiters.head) {
        tern_waiter *w = m->waiters.head;
        m->owner = w->coro; /* handed over: stays locked, no barging */
        grant(&m->waiters, w, 0);
    } else {
        m->locked = 0;
        m->owner = NULL;
    }
    return 0;
}

/* ---- wait group ---------------------------------------------------------- */

void tern_wg_init(tern_wg *wg) {
    wg->count = 0;
    wg->waiters.head = wg->waiters.tail = NULL;
}

int tern_wg_add(tern_wg *wg, long delta) {
    if (delta < 0 && (delta == LONG_MIN || wg->count < -delta)) return -EINVAL;
    wg->count += delta;
    if (wg->count == 0) grant_all(&wg->waiters, 0);
    return 0;
}

int tern_wg_done(tern_wg *wg) { return tern_wg_add(wg, -1); }

int tern_wg_wait_timeout(tern_wg *wg, int64_t timeout_ms) {
    if (wg->count == 0) return 0;
    if (timeout_ms == 0) return -ETIMEDOUT;
    tern_waiter w;
    return wait_on(&wg->waiters, &w, timeout_ms);
}

int tern_wg_wait(tern_wg *wg) { return tern_wg_wait_timeout(wg, -1); }

/* ---- channel ------------------------------------------------------------- */

struct tern_chan {
    size_t capacity, item_size;
    size_t head, len;           /* ring of `capacity` items starting at head */
    int closed;
    tern_waitq senders;         /* only while the ring is full */
    tern_waitq receivers;       /* only while the ring is empty */
    unsigned char *ring;
};

tern_chan *tern_chan_new(size_t capacity, size_t item_size) {
    if (item_size == 0) item_size = sizeof(void *);
    if (capacity && item_size > SIZE_MAX / capacity) return NULL;
    tern_chan *ch = calloc(1, sizeof *ch);
    if (!ch) return NULL;
    ch->capacity = capacity;
    ch->item_size = item_size;
    if (capacity) {
        ch->ring = malloc(capacity * item_size);
        if (!ch->ring) {
            free(ch);
            return NULL;
        }
    }
    return ch;
}

int tern_chan_close(tern_chan *ch) {
    if (ch->closed) return -EPIPE;
    ch->closed = 1;
    /* granted waiters never touch the channel again, so it may be freed
     * right after this even though they have not run yet */
    grant_all(&ch->receivers, -EPIPE);
    grant_all(&ch->senders, -EPIPE);
    return 0;
}

void tern_chan_free(tern_chan *ch) {
    if (!ch) return;
    tern_chan_close(ch);
    free(ch->ring);
    free(ch);
}

static unsigned char *slot(tern_chan *ch, size_t i) {
    return ch->ring + ((ch->head + i) % ch->capacity) * ch->item_size;
}

int tern_chan_send(tern_chan *ch, const void *item, int64_t timeout_ms) {
    if (ch->closed) return -EPIPE;
    if (ch->receivers.head) {
        /* a receiver waits only on an empty ring: hand the item over */
        tern_waiter *r = ch->receivers.head;
        memcpy(r->item, item, ch->item_size);
        grant(&ch->receivers, r, 0);
        return 0;
    }
    if (ch->len < ch->capacity) {
        memcpy(slot(ch, ch->len), item, ch->item_size);
        ch->len++;
        return 0;
    }
    if (timeout_ms == 0) return -ETIMEDOUT;
    tern_waiter w;
    /* the item stays on our stack until a receiver copies it and grants us */
    w.item = (void *)(uintptr_t)item;
    return wait_on(&ch->senders, &w, timeout_ms);
}

int tern_chan_recv(tern_chan *ch, void *out, int64_t timeout_ms) {
    if (ch->len) {
        memcpy(out, slot(ch, 0), ch->item_size);
        ch->head = (ch->head + 1) % ch->capacity;
        ch->len--;
        if (ch->senders.head) {
            /* a slot just freed: the oldest waiting sender's item joins the
             * tail, so items keep the order in which sends began */
            tern_waiter *s = ch->senders.head;
            memcpy(slot(ch, ch->len), s->item, ch->item_size);
            ch->len++;
            grant(&ch->senders, s, 0);
        }
        return 0;
    }
    if (ch->senders.head) {
        /* capacity 0: take the item straight from a waiting sender */
        tern_waiter *s = ch->senders.head;
        memcpy(out, s->item, ch->item_size);
        grant(&ch->senders, s, 0);
        return 0;
    }
    if (ch->closed) return -EPIPE;
    if (timeout_ms == 0) return -ETIMEDOUT;
    tern_waiter w;
    w.item = out;
    return wait_on(&ch->receivers, &w, timeout_ms);
}

int tern_chan_send_ptr(tern_chan *ch, void *p, int64_t timeout_ms) {
    if (ch->item_size != sizeof p) return -EINVAL;
    return tern_chan_send(ch, &p, timeout_ms);
}

int tern_chan_recv_ptr(tern_chan *ch, void **p, int64_t timeout_ms) {
    if (ch->item_size != sizeof *p) return -EINVAL;
    return tern_chan_recv(ch, p, timeout_ms);
}

size_t tern_chan_len(const tern_chan *ch) { return ch->len; }
size_t tern_chan_capacity(const tern_chan *ch) { return ch->capacity; }

/* ---- cross-worker semaphore ---------------------------------------------- */

void tern_gsem_init(tern_gsem *g, long count) {
    __atomic_store_n(&g->count, count, __ATOMIC_RELEASE);
}

int tern_gsem_try_acquire(tern_gsem *g) {
    long c = __atomic_load_n(&g->count, __ATOMIC_RELAXED);
    /* CAS rather than fetch_sub: a failed acquire must not dip the count
     * below zero even briefly, or a concurrent try on another worker would
     * be refused while a permit is in fact free */
    while (c > 0) {
        if (__atomic_compare_exchange_n(&g->count, &c, c - 1, 1, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return 0;
    }
    return -EAGAIN;
}

void tern_gsem_release(tern_gsem *g) { __atomic_fetch_add(&g->count, 1, __ATOMIC_RELEASE); }

long tern_gsem_available(const tern_gsem *g) { return __atomic_load_n(&g->count, __ATOMIC_RELAXED); }
