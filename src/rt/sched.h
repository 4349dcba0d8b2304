/* Per-worker scheduler: one epoll loop, one timer wheel, one stack pool and
 * a FIFO run queue of ready coroutines, all owned by one thread.
 *
 * A coroutine parks with tern_sched_park() and is made ready again by
 * tern_sched_wake() (from a timer, an fd event, or another coroutine); the
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

/* epoll_event.data.u64 carries a pointer with a tag in its low 3 bits. */
enum {
    TERN_EV_CONN = 0,       /* tern_conn * */
    TERN_EV_LISTENER = 1,   /* worker listener */
    TERN_EV_FDWAIT = 2,     /* tern_fdwait * (tern_wait_fd) */
    TERN_EV_NOTIFY = 3,     /* worker eventfd */
    TERN_EV_TAG_MASK = 7,
};

/* How late a timer may fire so that neighbours share a wake-up (see
 * tern_sched_poll): 200 µs, well inside the 1 ms promised for tern_sleep. */
#define TERN_TIMER_SLACK_NS 200000

/* coroutine flags (tern_coro.flags) */
enum {
    TERN_CORO_PARKED = 1u << 0,
    TERN_CORO_QUEUED = 1u << 1,
    TERN_CORO_DONE = 1u << 2,
    TERN_CORO_CANCELLED = 1u << 3,
    TERN_CORO_PARK_HOOK = 1u << 4,  /* call sched->park_hook before parking */
};

typedef struct tern_sched tern_sched;
typedef void (*tern_park_hook)(tern_coro *c);

struct tern_sched {
    int epfd;
    int id;                       /* worker index */
    uint64_t now_ns;              /* monotonic, read once per loop pass */
    tern_coro *current;           /* running coroutine, NULL on the loop */
    void *loop_sp;                /* loop context while a coroutine runs */
    tern_coro *runq_head, *runq_tail;
    tern_park_hook park_hook;     /* see TERN_CORO_PARK_HOOK */
    void *user;                   /* the worker that owns this scheduler */
    uint64_t coros_live;          /* coroutines not yet finished */
    tern_wheel wheel;
    tern_stack_pool stacks;
    /* wakes posted from other threads (offload results, cross-worker sync) */
    int remote_fd;                /* eventfd, registered with tag TERN_EV_NOTIFY */
    pthread_mutex_t remote_lock;
    struct tern_remote_wake *remote, *remote_spare;
    size_t remote_len, remote_cap, remote_spare_cap;
};

extern __thread tern_sched *tern_sched_self;

int tern_sched_init(tern_sched *s, int id, size_t stack_size);
void tern_sched_destroy(tern_sched *s);

/* Creates a coroutine running fn(arg); it runs when queued or run_now'd.
 * NULL on out of memory. */
tern_coro *tern_sched_coro_new(tern_sched *s, void (*fn)(void *), void *arg);
/* Runs c right now from the loop context until it parks or finishes. */
void tern_sched_run_now(tern_sched *s, tern_coro *c);
/* Appends a ready coroutine to the run queue (no-op if already queued). */
void tern_sched_enqueue(tern_sched *s, tern_coro *c);
/* Runs the coroutines that are ready now (not those made ready meanwhile,
 * so a yielding task lets the loop poll IO before it runs again). */
void tern_sched_run_ready(tern_sched *s);

/* From a coroutine: parks until woken; returns the wake value. */
int tern_sched_park(void);
/* Parks with a deadline (absolute ns); returns -ETIMEDOUT when it passes
 * first. deadline 0 = none. */
int tern_sched_park_until(uint64_t deadline_ns);
/* Makes a parked coroutine ready with `result` as park's return value;
 * ignored when c is not parked (already woken). */
void tern_sched_wake(tern_coro *c, int result);
/* Marks c cancelled and wakes it with -ECANCELED if parked. */
void tern_sched_cancel(tern_coro *c);

/* One loop pass: waits for IO up to the next timer (or max_wait_ns if
 * smaller, -1 = no cap), dispatches events through `on_event`, fires timers
 * and runs ready coroutines. */
typedef void (*tern_event_fn)(tern_sched *s, uint64_t data, uint32_t events);
void tern_sched_poll(tern_sched *s, tern_event_fn on_event, int64_t max_wait_ns);

/* Thread-safe: wakes coroutine c (parked on scheduler s) with `result`
 * from any thread; s's loop picks it up through its eventfd. 0 or -ENOMEM. */
int tern_sched_remote_wake(tern_sched *s, tern_coro *c, int result);
/* On s's own thread (TERN_EV_NOTIFY): applies the posted wakes. */
void tern_sched_drain_remote(tern_sched *s);

/* Wait object for tern_wait_fd, referenced from epoll data (tag FDWAIT). */
typedef struct tern_fdwait {
    tern_coro *coro;
    uint32_t revents;
} tern_fdwait;
/* The loop's handler for TERN_EV_FDWAIT events. */
void tern_sched_fdwait_event(uint64_t data, uint32_t events);

#endif
