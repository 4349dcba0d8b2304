/* tern synchronisation: semaphores, channels, mutexes, wait groups and the
 * offload pool for blocking calls.
 *
 * Any worker. Every object may be created once (statically, or at
 * start-up) and used from handlers and tasks on any worker: a waiter parks
 * its own coroutine on its own worker (never the worker thread), and the
 * release, unlock, send or done that satisfies it may run on another worker,
 * on an offload thread or on a plain thread; the wake travels to the
 * waiter's worker through that worker's cross-thread queue. Users write the
 * same code for 1 or 64 workers.
 *
 * Waiters are served first come, first served across workers, and a
 * released resource is handed straight to the first waiter (no barging: a
 * newcomer never overtakes a queued waiter, even on another worker). "First"
 * is the order in which waiters entered the queue, which is taken under the
 * object's lock. Timeouts: timeout_ms < 0 waits forever, 0 only tries, > 0
 * waits at most that long. Waiting calls return 0, -ETIMEDOUT, or
 * -ECANCELED when the caller was cancelled (tern_cancel, or a request whose
 * client went away); a cancelled or timed-out waiter leaves the queue
 * without taking anything, so no wake is lost for the others. A waiter that
 * was handed the resource while its timeout or cancellation was firing
 * still gets it and returns 0 (the hand-off is decided under the object's
 * lock: either the waiter left first, or it was granted and keeps it).
 * The non-waiting paths (a free permit, an unlocked mutex, a queued item)
 * succeed even when the caller is cancelled.
 *
 * Outside a coroutine (main thread, offload or other plain threads) every
 * call that does not wait works: release, unlock, try_acquire, try_lock,
 * tern_wg_add/done, a send into a channel with room or a waiting receiver,
 * a receive of a queued item, close. A call that would have to wait returns
 * -EPERM there instead (no thread is ever blocked by these objects).
 *
 * Cost: the uncontended semaphore and mutex paths are one compare-and-swap
 * on one word; waiters, wait groups and channels take a spin lock held for
 * a few dozen instructions (never across a park or a system call).
 *
 * Objects with waiters must not be moved or freed; tern_sem, tern_mutex and
 * tern_wg need no destroy call (they own no memory) and may be initialised
 * statically with TERN_SEM_INIT(n), TERN_MUTEX_INIT and TERN_WG_INIT (all
 * zero bytes is an unlocked mutex, an empty wait group, a semaphore of 0). */
#ifndef TERN_SYNC_H
#define TERN_SYNC_H

#include <tern/api.h>

#include <tern.h>

#ifdef __cplusplus
extern "C" {
#endif

/* FIFO of parked coroutines (internal; the nodes live on their stacks). */
struct tern_waiter;
typedef struct tern_waitq {
    struct tern_waiter *head, *tail;
} tern_waitq;

/* ---- counting semaphore ---------------------------------------------------- */
typedef struct tern_sem {
    uint64_t state;         /* internal, atomic: free permits << 2, a waiters bit, a lock bit */
    tern_waitq waiters;
} tern_sem;
#define TERN_SEM_INIT(n) {(uint64_t)(n) << 2, {0, 0}}

TERN_API void tern_sem_init(tern_sem *sem, size_t count);
/* Takes a permit, waiting as long as needed: 0 or -ECANCELED. */
TERN_API int tern_sem_acquire(tern_sem *sem);
/* 0, or -EAGAIN when no permit is free right now. Never parks. */
TERN_API int tern_sem_try_acquire(tern_sem *sem);
/* 0, -ETIMEDOUT (also for timeout_ms == 0 and no free permit) or -ECANCELED. */
TERN_API int tern_sem_acquire_timeout(tern_sem *sem, int64_t timeout_ms);
/* Returns a permit: to the first waiter if any, else to the count. */
TERN_API void tern_sem_release(tern_sem *sem);
/* Free permits now. */
TERN_API size_t tern_sem_available(const tern_sem *sem);

/* ---- mutex ----------------------------------------------------------------- */
/* Owned by the coroutine that locked it (NULL owner outside a coroutine).
 * Not recursive: locking it again from its owner returns -EDEADLK. */
typedef struct tern_mutex {
    uint64_t state;         /* internal, atomic: a held bit, a waiters bit, a lock bit */
    void *owner;            /* internal, atomic: the holder's coroutine */
    tern_waitq waiters;
} tern_mutex;
#define TERN_MUTEX_INIT {0, 0, {0, 0}}

TERN_API void tern_mutex_init(tern_mutex *m);
TERN_API int tern_mutex_lock(tern_mutex *m);                     /* 0, -ECANCELED, -EDEADLK */
TERN_API int tern_mutex_try_lock(tern_mutex *m);                 /* 0 or -EBUSY */
TERN_API int tern_mutex_lock_timeout(tern_mutex *m, int64_t timeout_ms); /* + -ETIMEDOUT */
/* 0, or -EPERM when not locked or locked by another coroutine. With
 * waiters, ownership passes directly to the first one. */
TERN_API int tern_mutex_unlock(tern_mutex *m);

/* ---- wait group -------------------------------------------------------------- */
/* Counts outstanding work: add before starting it, done when it ends; wait
 * returns once the count is zero (every waiter is woken). */
typedef struct tern_wg {
    uint64_t lock;          /* internal */
    long count;             /* under lock */
    tern_waitq waiters;
} tern_wg;
#define TERN_WG_INIT {0, 0, {0, 0}}

TERN_API void tern_wg_init(tern_wg *wg);
/* 0, or -EINVAL (nothing changed) if the count would go below zero. */
TERN_API int tern_wg_add(tern_wg *wg, long delta);
TERN_API int tern_wg_done(tern_wg *wg);                          /* tern_wg_add(wg, -1) */
TERN_API int tern_wg_wait(tern_wg *wg);                          /* 0 or -ECANCELED */
TERN_API int tern_wg_wait_timeout(tern_wg *wg, int64_t timeout_ms); /* + -ETIMEDOUT */

/* ---- bounded channel ---------------------------------------------------------- */
/* A FIFO of fixed-size items copied in and out (item_size bytes each; 0
 * means a pointer, sizeof(void *)). capacity items are buffered; capacity 0
 * is a rendezvous: send waits until a receiver takes the item. */
typedef struct tern_chan tern_chan;

/* NULL on out of memory or when capacity * item_size overflows. */
TERN_API tern_chan *tern_chan_new(size_t capacity, size_t item_size);
/* Closes the channel (waiters get -EPIPE), then frees it. */
TERN_API void tern_chan_free(tern_chan *ch);
/* Copies item_size bytes from item. 0, -ETIMEDOUT, -ECANCELED, or -EPIPE
 * when the channel is closed (also when it closes while waiting: the item
 * was then not delivered). */
TERN_API int tern_chan_send(tern_chan *ch, const void *item, int64_t timeout_ms);
/* Copies the oldest item to out. 0, -ETIMEDOUT, -ECANCELED, or -EPIPE once
 * the channel is closed and empty (items queued before close are still
 * delivered). */
TERN_API int tern_chan_recv(tern_chan *ch, void *out, int64_t timeout_ms);
/* For pointer channels (item_size sizeof(void *)); -EINVAL otherwise. */
TERN_API int tern_chan_send_ptr(tern_chan *ch, void *p, int64_t timeout_ms);
TERN_API int tern_chan_recv_ptr(tern_chan *ch, void **p, int64_t timeout_ms);
/* Wakes every waiter with -EPIPE. 0, or -EPIPE when already closed. */
TERN_API int tern_chan_close(tern_chan *ch);
TERN_API size_t tern_chan_len(const tern_chan *ch);              /* items buffered */
TERN_API size_t tern_chan_capacity(const tern_chan *ch);

/* ---- offload pool for blocking calls ------------------------------------------ */
/* Runs fn(arg) on a pool thread and parks the caller until it returns; the
 * worker serves other requests meanwhile. Use it for calls that block
 * (files, SQLite, getaddrinfo, CPU-heavy work). fn runs outside any worker:
 * it must not call tern_* runtime functions that park (tern_sleep blocks
 * its pool thread; tern_offload runs inline there).
 *
 * Returns 0 with fn's return value in *result (result may be NULL);
 * -EAGAIN at once when the pool queue is full (backpressure: shed or retry);
 * -ESHUTDOWN while tern_offload_shutdown runs; -ENOMEM/-EAGAIN if no pool
 * thread could be started. If the caller is cancelled while fn runs, fn is
 * not interrupted: tern_offload still waits until fn has returned (fn may
 * be using memory the caller owns), stores *result, then returns
 * -ECANCELED so the caller can release what fn produced.
 * Outside a coroutine (no worker), fn runs inline on the calling thread. */
TERN_API int tern_offload(void *(*fn)(void *arg), void *arg, void **result);
/* Sets the pool size and queue bound; threads <= 0 and queue_max == 0 pick
 * the defaults: max(4, online CPUs) threads (blocking calls mostly wait,
 * so at least 4 even on small machines) and 1024 queued jobs. Only while the
 * pool is stopped (before the first tern_offload, or after shutdown):
 * 0, -EBUSY while running, -EINVAL above 1024 threads or 1M queued jobs. */
TERN_API int tern_offload_configure(int threads, size_t queue_max);
/* Lets queued and running jobs finish, then stops the pool threads. Called
 * at exit (atexit) automatically; call it earlier to stop the pool while the
 * workers that wait on it still exist. A later tern_offload restarts the
 * pool. Blocks as long as the slowest job: fn must not block forever. Must
 * not be called from a pool thread. */
TERN_API void tern_offload_shutdown(void);

#ifdef __cplusplus
}
#endif
#endif
