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
    uint64_t coros_live;          /* coroutines not yet finished */
    tern__wheel wheel;
    tern__stack_pool stacks;
    /* wakes posted from other threads (offload results, cross-worker sync) */
    int remote_fd;                /* eventfd, registered with tag TERN__EV_REMOTE */
    pthread_mutex_t remote_lock;
    struct tern__remote_wake *remote, *remote_spare;
    size_t remote_len, remote_cap, remote_spare_cap;
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
 * time it runs and the time it waits in the run queue (ready, while others
 * run) are summed; parked time is not. account_stop returns the sum in ns
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

/* Thread-safe: wakes coroutine c (parked on scheduler s) with `result`
 * from any thread; s's loop picks it up through its eventfd. 0 or -ENOMEM. */
int tern__sched_remote_wake(tern__sched *s, tern_coro *c, int result);
/* On s's own thread: applies the posted wakes (tern__sched_poll calls it). */
void tern__sched_drain_remote(tern__sched *s);

/* Wait object for tern_wait_fd, referenced from epoll data (tag FDWAIT). */
typedef struct tern__fdwait {
    tern_coro *coro;
    uint32_t revents;
} tern__fdwait;

#endif
