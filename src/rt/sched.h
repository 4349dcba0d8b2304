/* Per-worker scheduler: one epoll loop, one timer wheel, one stack pool and
 * a FIFO run queue of ready coroutines, all owned by one thread.
 *
 * A coroutine parks with tern__sched_park() and is made ready again by
 * tern__sched_wake() (from a timer, an fd event, or another coroutine); the
 * value passed to wake is what park returns. Cancellation is sticky: once a
 * coroutine is cancelled, its current park returns -ECANCELED at once and
 * so does every later one, so a loop of parks always ends. */
#ifndef TERN_RT_SCHED_H
#define TERN_RT_SCHED_H

#include <pthread.h>
#include <stdint.h>
#include <sys/epoll.h>

#include "rt/coro.h"
#include "rt/timer.h"

/* epoll_event.data.u64 carries a pointer with a tag in its low 3 bits.
 * The scheduler handles its own two tags; tags 0..TERN__EV_USER_MAX belong
 * to whoever drives the loop and reach it through tern__sched_poll's
 * on_event (the way Redis's ae knows its users only as (fd, proc, data)). */
enum {
    TERN__EV_USER_MAX = 5,
    TERN__EV_FDWAIT = 6,    /* tern__fdwait * (tern_wait_fd) */
    TERN__EV_REMOTE = 7,    /* the scheduler's own eventfd: cross-thread wakes */
    TERN__EV_TAG_MASK = 7,
};

/* How late a timer may fire so that neighbours share a wake-up (see
 * tern__sched_poll): 200 µs, well inside the 1 ms promised for tern_sleep. */
#define TERN_TIMER_SLACK_NS 200000

/* coroutine flags (tern_coro.flags) */
enum {
    TERN_CORO_PARKED = 1u << 0,
    TERN_CORO_QUEUED = 1u << 1,
    TERN_CORO_DONE = 1u << 2,
    TERN_CORO_CANCELLED = 1u << 3,
    TERN_CORO_ACCOUNT = 1u << 4,    /* time running and ready (tern__sched_account_*) */
};

typedef struct tern__sched tern__sched;
/* Called on a coroutine just before it parks or yields, with the argument
 * given to tern__sched_set_park_hook: a driver uses it to give back shared
 * per-thread buffers (the HTTP exchange moves its input and output out of
 * the worker's scratch) before other coroutines run. */
typedef void (*tern__park_hook)(void *arg);

struct tern__sched {
    int epfd;
    int id;                       /* worker index */
    uint64_t now_ns;              /* monotonic, read once per loop pass */
    tern_coro *current;           /* running coroutine, NULL on the loop */
    void *loop_sp;                /* loop context while a coroutine runs */
    tern_coro *runq_head, *runq_tail;
    void *user;                   /* the driver (a server worker), for on_event */
    /* coroutines not yet finished: written by the owner only, with relaxed
     * atomic stores, so other threads may read it (tern__sched_load) */
    uint64_t coros_live;
    uint64_t next_serial;         /* coroutine serials and wait tokens; 0 = none */
    uint64_t incoming;            /* remote spawns posted, not yet started (atomic) */
    tern__wheel wheel;
    tern__stack_pool stacks;
    /* wakes posted from other threads (offload results, cross-worker sync) */
    int remote_fd;                /* eventfd, registered with tag TERN__EV_REMOTE */
    pthread_mutex_t remote_lock;
    struct tern__remote_msg *remote, *remote_spare;
    size_t remote_len, remote_cap, remote_spare_cap;
#if TERN_TSAN
    void *tsan_loop_fiber; /* the loop's TSan fiber, to switch back to */
#endif
};

extern __thread tern__sched *tern__sched_self;

int tern__sched_init(tern__sched *s, int id, size_t stack_size);
void tern__sched_destroy(tern__sched *s);

/* Creates a coroutine running fn(arg); it runs when queued or run_now'd.
 * NULL on out of memory. */
tern_coro *tern__sched_coro_new(tern__sched *s, void (*fn)(void *), void *arg);
/* Runs c right now from the loop context until it parks or finishes. */
void tern__sched_run_now(tern__sched *s, tern_coro *c);
/* Appends a ready coroutine to the run queue (no-op if already queued). */
void tern__sched_enqueue(tern__sched *s, tern_coro *c);
/* Runs the coroutines that are ready now (not those made ready meanwhile,
 * so a yielding task lets the loop poll IO before it runs again). */
void tern__sched_run_ready(tern__sched *s);

/* From a coroutine: parks until woken; returns the wake value. */
int tern__sched_park(void);
/* Parks with a deadline (absolute ns); returns -ETIMEDOUT when it passes
 * first. deadline 0 = none. */
int tern__sched_park_until(uint64_t deadline_ns);
/* Makes a parked coroutine ready with `result` as park's return value;
 * ignored when c is not parked (already woken). */
void tern__sched_wake(tern_coro *c, int result);
/* Marks c cancelled and wakes it with -ECANCELED if parked. */
void tern__sched_cancel(tern_coro *c);
/* Ends a cancellation aimed at one phase of c's work (a request's handler)
 * so that c's later waits (writing the answer) are not cancelled too. */
void tern__sched_clear_cancel(tern_coro *c);
/* CPU accounting for the running coroutine: from account_start on, the
 * CPU time it runs (the thread's CPU clock: time the kernel gave to other
 * processes is not counted) and the time it waits in the run queue (ready,
 * while others run) are summed; parked time is not. account_stop returns the sum in ns
 * (and the running part in *run_ns) and ends it. Costs two clock reads per resume while on, nothing when off:
 * admission control uses it to tell interleaved CPU work (whose time grows
 * with contention) from parked waits (which cost no CPU). */
void tern__sched_account_start(void);
uint64_t tern__sched_account_stop(uint64_t *run_ns);
/* Installs (fn != NULL) or removes c's park hook; see tern__park_hook. */
void tern__sched_set_park_hook(tern_coro *c, tern__park_hook fn, void *arg);

/* One loop pass: waits for IO up to the next timer (or max_wait_ns if
 * smaller, -1 = no cap), handles the scheduler's own events and hands the
 * others (tags 0..TERN__EV_USER_MAX) to `on_event`, fires timers and runs
 * ready coroutines. */
typedef void (*tern__event_fn)(tern__sched *s, uint64_t data, uint32_t events);
void tern__sched_poll(tern__sched *s, tern__event_fn on_event, int64_t max_wait_ns);

/* ---- waits that other threads may end --------------------------------------
 * A coroutine that waits on something another thread will signal (a sync
 * object, a task on another worker) takes a wait token first, publishes
 * (its scheduler, itself, the token) where the signaller finds them, and
 * parks. The signaller wakes it with tern__sched_wake_from_any: on the same
 * thread that is tern__sched_wake; from another thread the wake travels
 * through the scheduler's remote queue and is applied there only if the
 * coroutine still waits with that token. So a wake that arrives late (the
 * waiter already left by timeout, or finished and its stack was reused)
 * is dropped instead of cutting an unrelated park short. Tokens come from
 * a per-scheduler counter and never repeat. */

/* From a coroutine: starts a wait and returns its token (never 0). */
uint64_t tern__sched_wait_begin(void);
/* Ends the current coroutine's wait: later wakes carrying its token are dropped. */
void tern__sched_wait_end(void);
/* Same thread as c: wakes c with `result` if it still waits with `token`. */
void tern__sched_wake_token(tern_coro *c, uint64_t token, int result);
/* Any thread: wakes coroutine c of scheduler s if it still waits with
 * `token`. Never fails: if the remote queue cannot grow (out of memory) it
 * retries every millisecond, since a dropped wake would strand c. */
void tern__sched_wake_from_any(tern__sched *s, tern_coro *c, uint64_t token, int result);
/* Any thread: cancels coroutine c of s (tern__sched_cancel) if c->serial
 * is still `serial` (c has not finished). Retries like wake_from_any. */
void tern__sched_cancel_from_any(tern__sched *s, tern_coro *c, uint64_t serial);

/* ---- the remote queue: messages from other threads ----------------------- */
/* Thread-safe: wakes coroutine c (parked on scheduler s) with `result`
 * from any thread, unconditionally (no token: the caller guarantees c is
 * still waiting for it, as tern_offload does). 0 or -ENOMEM. */
int tern__sched_remote_wake(tern__sched *s, tern_coro *c, int result);
/* Thread-safe: the token-checked wake of tern__sched_wake_from_any. 0 or -ENOMEM. */
int tern__sched_remote_wake_token(tern__sched *s, tern_coro *c, uint64_t token, int result);
/* Thread-safe: runs fn(arg) on s's thread, from its loop (a remote spawn
 * creates its coroutine there: stacks belong to the scheduler). 0 or -ENOMEM. */
int tern__sched_remote_call(tern__sched *s, void (*fn)(void *), void *arg);
/* On s's own thread: applies the posted messages (tern__sched_poll calls it). */
void tern__sched_drain_remote(tern__sched *s);

/* ---- the scheduler group: every worker, for cross-worker calls ------------
 * The runtime knows nothing of servers: whoever starts schedulers on
 * threads (the server, a test harness) registers each one under its id
 * before the threads start and removes it after they stopped, before
 * tern__sched_destroy. tern_spawn_on(worker, ...) looks the target up here.
 * Ids are 0 .. TERN__SCHED_GROUP_MAX-1; one process-wide group. */
#define TERN__SCHED_GROUP_MAX 1024
/* 0, -EINVAL (id out of range) or -EEXIST (another scheduler holds the id). */
int tern__sched_group_add(tern__sched *s);
/* Removes s if it is registered (no-op otherwise). */
void tern__sched_group_remove(tern__sched *s);
/* The scheduler registered as id, or NULL. */
tern__sched *tern__sched_group_get(int id);
/* The registered scheduler with the lowest load, or the caller's own
 * scheduler when none is registered (NULL off a worker then). */
tern__sched *tern__sched_group_least_loaded(void);
/* A cheap load signal readable from any thread: coroutines alive plus
 * remote spawns not yet started (relaxed reads; a hint, not a promise). */
uint64_t tern__sched_load(const tern__sched *s);

/* Wait object for tern_wait_fd, referenced from epoll data (tag FDWAIT). */
typedef struct tern__fdwait {
    tern_coro *coro;
    uint32_t revents;
} tern__fdwait;

#endif
