/* Semaphores, mutexes, wait groups and bounded channels shared by every
 * worker (see include/tern/sync.h).
 *
 * Each object has one atomic word whose bit 0 is a spin lock (rt/spin.h).
 * The semaphore and the mutex keep their whole state in that word too (the
 * permit count or the held bit, plus WAITERS while the queue is not empty),
 * so their uncontended paths are a single compare-and-swap that expects the
 * lock and WAITERS bits clear; anything else goes through the lock.
 * Invariant: WAITERS set implies no free permit (no unheld mutex), because a
 * release with waiters hands the permit to the first of them instead of
 * counting it. That is what makes the fast path unable to barge.
 *
 * Every waiting call shares one protocol (wait_on): under the lock the
 * waiter puts a node living on its own stack at the tail of the FIFO,
 * records (its scheduler, its coroutine, a wait token) in it and parks.
 * The side that frees a resource hands it to the head node (grant): under
 * the lock it unlinks the node, copies out the wake address, stores the
 * result and sets `granted`; after unlocking it wakes the coroutine, on the
 * same thread directly or through the waiter's scheduler's remote queue.
 * After any wake-up the waiter looks at `granted` first, not at park's
 * return value. A waiter whose timeout or cancellation fired takes the lock
 * and looks again: granted meanwhile, it keeps what it was given (or a
 * permit, an item would vanish); otherwise it unlinks itself, still under
 * the lock, so no grant can pick it afterwards. A wake that arrives after
 * the waiter left carries a stale token and is dropped by the scheduler. */
#include "tern/sync.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "rt/sched.h"
#include "rt/spin.h"

/* state word bits besides TERN__SPIN_LOCKED */
#define WAITERS UINT64_C(2)
#define SEM_ONE UINT64_C(4) /* one permit: the count lives above the two flag bits */
#define MUTEX_HELD UINT64_C(4)

/* Whether a node was handed the resource (atomic: the waiter's first look
 * after a wake reads it without the lock). */
enum waiter_state { WAITER_QUEUED = 0, WAITER_GRANTED = 1 };

struct tern_waiter {
    struct tern_waiter *next, *prev;
    tern_coro *coro;
    tern__sched *sched;
    uint64_t token;
    void *item;  /* channel: sender's item / receiver's buffer */
    int result;  /* set by grant */
    int granted; /* enum waiter_state */
};
typedef struct tern_waiter tern_waiter;

/* Who to wake, copied out of a granted node under the lock: once granted,
 * the node's owner may return (its timeout fired) and the node vanish. */
typedef struct wake_addr {
    tern__sched *sched;
    tern_coro *coro;
    uint64_t token;
} wake_addr;

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

/* Under the object's lock: hands the resource to w with `result`. The
 * caller wakes the returned address after unlocking. */
static wake_addr grant(tern_waitq *q, tern_waiter *w, int result) {
    waitq_remove(q, w);
    wake_addr a = {w->sched, w->coro, w->token};
    w->result = result;
    __atomic_store_n(&w->granted, WAITER_GRANTED, __ATOMIC_RELEASE);
    return a;
}

static void wake(wake_addr a) {
    tern__sched_wake_from_any(a.sched, a.coro, a.token, 0);
}

/* Under the lock: grants every waiter. Wakes happen under the lock here
 * (their addresses would need a list otherwise); a remote wake is a short
 * append plus at most one eventfd write. Used by wait groups and close. */
static void grant_all(tern_waitq *q, int result) {
    while (q->head) wake(grant(q, q->head, result));
}

static int in_coroutine(void) {
    tern__sched *s = tern__sched_self;
    return s && s->current;
}

/* Called with *word locked (value `locked`), from a coroutine: queues w on q,
 * publishes `wait_bit` (WAITERS for objects with a fast path, else 0) with
 * the unlock, and parks until granted, the deadline passes (timeout_ms > 0)
 * or the caller is cancelled. timeout_ms must not be 0. */
static int wait_on(uint64_t *word, uint64_t locked, uint64_t wait_bit, tern_waitq *q,
                   tern_waiter *w, int64_t timeout_ms) {
    tern__sched *s = tern__sched_self;
    if (s->current->flags & TERN_CORO_CANCELLED) {
        tern__spin_unlock(word, locked);
        return -ECANCELED;
    }
    uint64_t deadline = timeout_ms < 0 ? 0 : deadline_after_ms(timeout_ms);
    w->coro = s->current;
    w->sched = s;
    w->token = tern__sched_wait_begin();
    w->granted = WAITER_QUEUED;
    w->result = 0;
    waitq_push(q, w);
    tern__spin_unlock(word, locked | wait_bit);
    for (;;) {
        int r = tern__sched_park_until(deadline);
        if (__atomic_load_n(&w->granted, __ATOMIC_ACQUIRE)) break;
        if (r < 0) {
            uint64_t v = tern__spin_lock(word);
            if (w->granted) {
                /* granted while the timeout or cancel was firing: keep it */
                tern__spin_unlock(word, v);
                break;
            }
            waitq_remove(q, w);
            if (!q->head) v &= ~wait_bit;
            tern__spin_unlock(word, v);
            tern__sched_wait_end();
            return r;
        }
        /* woken with 0 but not granted: a stray wake, keep waiting */
    }
    tern__sched_wait_end();
    return w->result;
}

/* ---- semaphore ----------------------------------------------------------- */

void tern_sem_init(tern_sem *sem, size_t count) {
    sem->waiters.head = sem->waiters.tail = NULL;
    __atomic_store_n(&sem->state, (uint64_t)count * SEM_ONE, __ATOMIC_RELEASE);
}

int tern_sem_try_acquire(tern_sem *sem) {
    unsigned spins = 0;
    uint64_t v = __atomic_load_n(&sem->state, __ATOMIC_RELAXED);
    for (;;) {
        if (v & TERN__SPIN_LOCKED) {
            /* someone is queueing or releasing: their outcome decides */
            tern__spin_pause(&spins);
            v = __atomic_load_n(&sem->state, __ATOMIC_RELAXED);
            continue;
        }
        /* WAITERS implies no free permit (see the top of the file) */
        if (v < SEM_ONE || (v & WAITERS)) return -EAGAIN;
        if (__atomic_compare_exchange_n(&sem->state, &v, v - SEM_ONE, 1, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return 0;
    }
}

int tern_sem_acquire_timeout(tern_sem *sem, int64_t timeout_ms) {
    if (tern_sem_try_acquire(sem) == 0) return 0;
    if (timeout_ms == 0) return -ETIMEDOUT;
    if (!in_coroutine()) return -EPERM;
    uint64_t v = tern__spin_lock(&sem->state);
    if (v >= SEM_ONE) {
        /* released since the try (no waiters then, or it would be 0) */
        tern__spin_unlock(&sem->state, v - SEM_ONE);
        return 0;
    }
    tern_waiter w;
    return wait_on(&sem->state, v, WAITERS, &sem->waiters, &w, timeout_ms);
}

int tern_sem_acquire(tern_sem *sem) {
    return tern_sem_acquire_timeout(sem, -1);
}

void tern_sem_release(tern_sem *sem) {
    uint64_t v = __atomic_load_n(&sem->state, __ATOMIC_RELAXED);
    while (!(v & (TERN__SPIN_LOCKED | WAITERS))) {
        if (__atomic_compare_exchange_n(&sem->state, &v, v + SEM_ONE, 1, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED))
            return;
    }
    v = tern__spin_lock(&sem->state);
    if (!sem->waiters.head) {
        tern__spin_unlock(&sem->state, v + SEM_ONE);
        return;
    }
    wake_addr a = grant(&sem->waiters, sem->waiters.head, 0);
    if (!sem->waiters.head) v &= ~WAITERS;
    tern__spin_unlock(&sem->state, v);
    wake(a);
}

size_t tern_sem_available(const tern_sem *sem) {
    return (size_t)(__atomic_load_n(&sem->state, __ATOMIC_RELAXED) / SEM_ONE);
}

/* ---- mutex --------------------------------------------------------------- */

static tern_coro *current_coro(void) {
    tern__sched *s = tern__sched_self;
    return s ? s->current : NULL;
}

void tern_mutex_init(tern_mutex *m) {
    m->waiters.head = m->waiters.tail = NULL;
    __atomic_store_n(&m->owner, NULL, __ATOMIC_RELAXED);
    __atomic_store_n(&m->state, 0, __ATOMIC_RELEASE);
}

int tern_mutex_try_lock(tern_mutex *m) {
    unsigned spins = 0;
    uint64_t v = __atomic_load_n(&m->state, __ATOMIC_RELAXED);
    for (;;) {
        if (v & TERN__SPIN_LOCKED) {
            tern__spin_pause(&spins);
            v = __atomic_load_n(&m->state, __ATOMIC_RELAXED);
            continue;
        }
        if (v & MUTEX_HELD) return -EBUSY; /* not held implies no waiters */
        if (__atomic_compare_exchange_n(&m->state, &v, v | MUTEX_HELD, 1, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED)) {
            __atomic_store_n(&m->owner, current_coro(), __ATOMIC_RELAXED);
            return 0;
        }
    }
}

int tern_mutex_lock_timeout(tern_mutex *m, int64_t timeout_ms) {
    if (tern_mutex_try_lock(m) == 0) return 0;
    tern_coro *self = current_coro();
    /* only the holder itself can see its own pointer here */
    if (self && __atomic_load_n(&m->owner, __ATOMIC_RELAXED) == self) return -EDEADLK;
    if (timeout_ms == 0) return -ETIMEDOUT;
    if (!self) return -EPERM;
    uint64_t v = tern__spin_lock(&m->state);
    if (!(v & MUTEX_HELD)) {
        __atomic_store_n(&m->owner, self, __ATOMIC_RELAXED);
        tern__spin_unlock(&m->state, v | MUTEX_HELD);
        return 0;
    }
    tern_waiter w;
    /* on success unlock has already made us the owner */
    return wait_on(&m->state, v, WAITERS, &m->waiters, &w, timeout_ms);
}

int tern_mutex_lock(tern_mutex *m) {
    return tern_mutex_lock_timeout(m, -1);
}

int tern_mutex_unlock(tern_mutex *m) {
    uint64_t v = __atomic_load_n(&m->state, __ATOMIC_RELAXED);
    tern_coro *self = current_coro();
    if (!(v & MUTEX_HELD) || __atomic_load_n(&m->owner, __ATOMIC_RELAXED) != self) return -EPERM;
    __atomic_store_n(&m->owner, NULL, __ATOMIC_RELAXED);
    while (!(v & (TERN__SPIN_LOCKED | WAITERS))) {
        if (__atomic_compare_exchange_n(&m->state, &v, v & ~MUTEX_HELD, 1, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED))
            return 0;
    }
    v = tern__spin_lock(&m->state);
    if (!m->waiters.head) {
        tern__spin_unlock(&m->state, v & ~MUTEX_HELD);
        return 0;
    }
    /* handed over: stays held, no barging */
    tern_waiter *w = m->waiters.head;
    __atomic_store_n(&m->owner, w->coro, __ATOMIC_RELAXED);
    wake_addr a = grant(&m->waiters, w, 0);
    if (!m->waiters.head) v &= ~WAITERS;
    tern__spin_unlock(&m->state, v);
    wake(a);
    return 0;
}

/* ---- wait group ---------------------------------------------------------- */

void tern_wg_init(tern_wg *wg) {
    wg->count = 0;
    wg->waiters.head = wg->waiters.tail = NULL;
    __atomic_store_n(&wg->lock, 0, __ATOMIC_RELEASE);
}

int tern_wg_add(tern_wg *wg, long delta) {
    uint64_t v = tern__spin_lock(&wg->lock);
    if (delta < 0 && (delta == LONG_MIN || wg->count < -delta)) {
        tern__spin_unlock(&wg->lock, v);
        return -EINVAL;
    }
    wg->count += delta;
    if (wg->count == 0) grant_all(&wg->waiters, 0);
    tern__spin_unlock(&wg->lock, v);
    return 0;
}

int tern_wg_done(tern_wg *wg) {
    return tern_wg_add(wg, -1);
}

int tern_wg_wait_timeout(tern_wg *wg, int64_t timeout_ms) {
    uint64_t v = tern__spin_lock(&wg->lock);
    if (wg->count == 0 || timeout_ms == 0 || !in_coroutine()) {
        long count = wg->count;
        tern__spin_unlock(&wg->lock, v);
        return count == 0 ? 0 : timeout_ms == 0 ? -ETIMEDOUT : -EPERM;
    }
    tern_waiter w;
    return wait_on(&wg->lock, v, 0, &wg->waiters, &w, timeout_ms);
}

int tern_wg_wait(tern_wg *wg) {
    return tern_wg_wait_timeout(wg, -1);
}

/* ---- channel ------------------------------------------------------------- */

struct tern_chan {
    uint64_t lock; /* guards everything below */
    size_t capacity, item_size;
    size_t head, len; /* ring of `capacity` items starting at head */
    int closed;
    tern_waitq senders;   /* only while the ring is full */
    tern_waitq receivers; /* only while the ring is empty */
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
    uint64_t v = tern__spin_lock(&ch->lock);
    int was = ch->closed;
    ch->closed = 1;
    /* granted waiters never touch the channel again, so it may be freed
     * right after this even though they have not run yet */
    grant_all(&ch->receivers, -EPIPE);
    grant_all(&ch->senders, -EPIPE);
    tern__spin_unlock(&ch->lock, v);
    return was ? -EPIPE : 0;
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
    uint64_t v = tern__spin_lock(&ch->lock);
    int r = 0;
    if (ch->closed) {
        r = -EPIPE;
    } else if (ch->receivers.head) {
        /* a receiver waits only on an empty ring: hand the item over */
        tern_waiter *rw = ch->receivers.head;
        memcpy(rw->item, item, ch->item_size);
        wake_addr a = grant(&ch->receivers, rw, 0);
        tern__spin_unlock(&ch->lock, v);
        wake(a);
        return 0;
    } else if (ch->len < ch->capacity) {
        memcpy(slot(ch, ch->len), item, ch->item_size);
        ch->len++;
    } else if (timeout_ms == 0) {
        r = -ETIMEDOUT;
    } else if (!in_coroutine()) {
        r = -EPERM;
    } else {
        tern_waiter w;
        /* the item stays on our stack until a receiver copies it and grants us */
        w.item = (void *)(uintptr_t)item;
        return wait_on(&ch->lock, v, 0, &ch->senders, &w, timeout_ms);
    }
    tern__spin_unlock(&ch->lock, v);
    return r;
}

/* Under the lock, with an item waiting (buffered or held by a sender):
 * takes the oldest into out; returns the sender to wake, if any. */
static wake_addr take_item(tern_chan *ch, void *out) {
    wake_addr none = {0};
    if (!ch->len) {
        /* capacity 0: take the item straight from a waiting sender */
        tern_waiter *s = ch->senders.head;
        memcpy(out, s->item, ch->item_size);
        return grant(&ch->senders, s, 0);
    }
    memcpy(out, slot(ch, 0), ch->item_size);
    ch->head = (ch->head + 1) % ch->capacity;
    ch->len--;
    if (!ch->senders.head) return none;
    /* a slot just freed: the oldest waiting sender's item joins the tail,
     * so items keep the order in which sends began */
    tern_waiter *s = ch->senders.head;
    memcpy(slot(ch, ch->len), s->item, ch->item_size);
    ch->len++;
    return grant(&ch->senders, s, 0);
}

int tern_chan_recv(tern_chan *ch, void *out, int64_t timeout_ms) {
    uint64_t v = tern__spin_lock(&ch->lock);
    int r;
    if (ch->len || ch->senders.head) {
        wake_addr a = take_item(ch, out);
        tern__spin_unlock(&ch->lock, v);
        if (a.coro) wake(a);
        return 0;
    }
    if (ch->closed) {
        r = -EPIPE;
    } else if (timeout_ms == 0) {
        r = -ETIMEDOUT;
    } else if (!in_coroutine()) {
        r = -EPERM;
    } else {
        tern_waiter w;
        w.item = out;
        return wait_on(&ch->lock, v, 0, &ch->receivers, &w, timeout_ms);
    }
    tern__spin_unlock(&ch->lock, v);
    return r;
}

int tern_chan_send_ptr(tern_chan *ch, void *p, int64_t timeout_ms) {
    if (ch->item_size != sizeof p) return -EINVAL;
    return tern_chan_send(ch, &p, timeout_ms);
}

int tern_chan_recv_ptr(tern_chan *ch, void **p, int64_t timeout_ms) {
    if (ch->item_size != sizeof *p) return -EINVAL;
    return tern_chan_recv(ch, p, timeout_ms);
}

size_t tern_chan_len(const tern_chan *ch) {
    tern_chan *c = (tern_chan *)(uintptr_t)ch; /* the lock word changes, not the channel */
    uint64_t v = tern__spin_lock(&c->lock);
    size_t n = c->len;
    tern__spin_unlock(&c->lock, v);
    return n;
}
size_t tern_chan_capacity(const tern_chan *ch) {
    return ch->capacity;
}
