/* tern resource pool: a bounded set of reusable resources (database
 * connections, upstream sockets...) handed out to coroutines.
 *
 * One pool may serve every worker: create it once (at start-up, or in a
 * handler) and acquire, release and discard from handlers and tasks on any
 * worker. A waiter parks its own coroutine on its own worker; the release
 * that satisfies it may come from another worker (the wake crosses through
 * the waiter's worker queue). The pool's state sits behind a spin lock that
 * is never held across a callback. max_size is then a limit on the whole
 * server. (One pool per worker, indexed by tern_worker_id(), still works
 * and keeps each pool's lock uncontended.)
 *
 * Acquire takes the most recently released idle resource (LIFO: the warm
 * one is reused, and the coldest ones at the bottom can expire), else
 * creates one while fewer than max_size exist, else parks the coroutine
 * (never the thread) in a FIFO queue. A released resource is handed
 * straight to the first waiter (no barging); a discarded one frees a slot
 * that the first waiter then fills by calling create itself. max_size
 * counts every resource that exists or is being created: it is never
 * exceeded.
 *
 * min_idle resources are kept ready: when fewer are idle, one background
 * task of the pool creates them one at a time (after a failed create it
 * waits 1 s before trying again). Idle expiry is driven by a timer on the
 * worker: a resource idle longer than idle_timeout_ms is destroyed, oldest
 * first, down to min_idle idle resources.
 *
 * Callbacks:
 *   create   may park (connect, tern_offload); runs in the acquiring
 *            coroutine, on its worker (or in the pool's background task,
 *            on the worker whose operation started it).
 *   validate optional, may park; with validate_on_acquire it checks an idle
 *            resource before it is handed out (a failing one is destroyed
 *            and the next is tried). Resources handed from a release
 *            straight to a waiter are not validated (they were just used).
 *   destroy  must NOT park: it also runs from the expiry timer on the
 *            loop of the pool's home worker (the first acquirer's). Closing
 *            a socket or a database handle is fine.
 * Callbacks of one pool may run on several workers at once: whatever they
 * share (the `arg`) must be thread-safe.
 *
 * Stats are read under the pool's lock, so tern_pool_stats_read is a
 * consistent snapshot from any thread. */
#ifndef TERN_POOL_H
#define TERN_POOL_H

#include <tern/api.h>

#include <stddef.h>
#include <stdint.h>

#include <tern.h>
#include <tern/metrics.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tern_pool tern_pool;

typedef struct tern_pool_config {
    size_t max_size;            /* resources existing or being created, >= 1 */
    size_t min_idle;            /* kept ready in the background, <= max_size */
    uint64_t idle_timeout_ms;   /* idle longer: destroyed down to min_idle; 0 = never */
    int validate_on_acquire;    /* validate idle resources before handing them out */
    /* 0 with *res set, or a negative errno (returned to the acquirer) */
    int (*create)(void *arg, void **res);
    /* 0 when res is usable, negative when it must be destroyed */
    int (*validate)(void *arg, void *res);
    void (*destroy)(void *arg, void *res);
    void *arg;                  /* passed to every callback */
} tern_pool_config;

/* A snapshot. Every field is a uint64_t (the publisher copies them as an
 * array). size = idle + in_use + creating; waited counts acquires that had
 * to park and wait_ns_total the time they spent parked. */
typedef struct tern_pool_stats {
    /* gauges */
    uint64_t size, idle, in_use, creating, waiters, max_size, min_idle;
    /* counters since the pool was created */
    uint64_t created;           /* create calls that succeeded */
    uint64_t destroyed;         /* destroy calls (discards, expiry, failed validation) */
    uint64_t acquired;          /* successful acquires */
    uint64_t waited;            /* acquires that parked in the queue */
    uint64_t timeouts;          /* acquires that gave up with -ETIMEDOUT */
    uint64_t cancelled;         /* waiters that left with -ECANCELED */
    uint64_t discards;          /* tern_pool_discard calls */
    uint64_t create_failures;
    uint64_t validate_failures;
    uint64_t expired;           /* destroyed by idle expiry */
    uint64_t wait_ns_total;
} tern_pool_stats;

/* Copies cfg. NULL (errno EINVAL) when max_size is 0, min_idle > max_size
 * or create/destroy is missing; NULL (errno ENOMEM) on out of memory.
 * Creates nothing yet: min_idle is filled once the pool is bound. */
TERN_API tern_pool *tern_pool_new(const tern_pool_config *cfg);

/* Destroys the idle resources and frees the pool. 0, or -EBUSY (nothing
 * done) while resources are in use, waiters queued or an acquirer is
 * inside create. Call it from a handler or task on any worker (it waits
 * for the background task, and runs the final part on the pool's home
 * worker, whose timer it owns), or from any thread once every worker's
 * loop has stopped (for a server: after tern_server_run returned). Not
 * from a plain thread while the workers run. */
TERN_API int tern_pool_free(tern_pool *p);

/* Hands out a resource in *res. timeout_ms bounds the wait in the queue
 * (< 0 forever, 0 never parks for a release); it does not bound create,
 * which must bound itself (connect timeout). Returns 0, -ETIMEDOUT,
 * -ECANCELED (the caller was cancelled while queued: it leaves the queue
 * holding nothing), create's error, -EPERM outside a coroutine,
 * -ESHUTDOWN while the pool is being destroyed. */
TERN_API int tern_pool_acquire(tern_pool *p, int64_t timeout_ms, void **res);
/* Returns a healthy resource: to the first waiter, else to the idle set. */
TERN_API void tern_pool_release(tern_pool *p, void *res);
/* Destroys a broken resource (or one that must not be reused, e.g. after
 * Connection: close). Its slot goes to the first waiter, who creates a
 * replacement; without waiters, min_idle is refilled in the background. */
TERN_API void tern_pool_discard(tern_pool *p, void *res);

/* Thread-safe snapshot (consistent: taken between two operations). */
TERN_API void tern_pool_stats_read(const tern_pool *p, tern_pool_stats *out);
/* sum += x, field by field (to report several per-worker pools as one). */
TERN_API void tern_pool_stats_add(tern_pool_stats *sum, const tern_pool_stats *x);
/* Writes st through a metrics source: gauges size, idle, in_use,
 * creating, waiters, max_size, min_idle and counters created_total,
 * destroyed_total, acquired_total, waited_total, timeouts_total,
 * cancelled_total, discards_total, create_failures_total,
 * validate_failures_total, expired_total, wait_seconds_total. */
TERN_API void tern_pool_metrics_write(const tern_pool_stats *st, tern_metrics_writer *w);
/* Registers p with the metrics module under `name` (see
 * tern_metrics_register_source); tern_pool_free unregisters it. */
TERN_API int tern_pool_register_metrics(tern_pool *p, tern_server *s, const char *name);

#ifdef __cplusplus
}
#endif
#endif
