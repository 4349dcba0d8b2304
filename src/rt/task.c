/* Tasks: tern_spawn / tern_spawn_on / join / join_all / detach / cancel, on
 * the current worker or any other. A task is a coroutine plus a small
 * handle that outlives it until joined, so join can read the result after
 * the stack went back to the pool.
 *
 * The handle is shared by two threads when the task runs on another
 * worker: the joiner's (or detacher's, or canceller's) and the task's.
 * A spin lock in the handle orders the three events that race: the task
 * finishing, a joiner registering (its scheduler, coroutine and wait token)
 * or leaving on timeout, and a detach. The task copies the joiner's wake
 * address under the lock and wakes it after unlocking; a joiner that timed
 * out meanwhile has ended its wait, so that late wake is dropped.
 *
 * A remote spawn allocates the handle on the caller's thread and posts a
 * "start" call to the target scheduler's remote queue; the coroutine is
 * created there (stacks belong to their scheduler). Cancellation may come
 * before the coroutine exists (it is then created cancelled) or after
 * (tern__sched_cancel_from_any, checked against the coroutine's serial so a
 * cancel that arrives after the end cannot hit a reused stack). */
#include <errno.h>
#include <stdlib.h>

#include "rt/sched.h"
#include "rt/spin.h"
#include "tern.h"

enum task_state {
    TASK_RUNNING,  /* started or about to be; nobody waits */
    TASK_JOINING,  /* a joiner is parked: j_* say where */
    TASK_DETACHED, /* frees itself when done */
    TASK_DONE,     /* result (or err) is set; the coroutine is gone or going */
};

struct tern_task {
    uint64_t lock; /* rt/spin.h; guards the fields below it */
    enum task_state state;
    int cancel_req;       /* tern_cancel before the coroutine existed */
    tern_coro *coro;      /* set when the coroutine is created */
    uint64_t serial;      /* coro->serial */
    tern__sched *j_sched; /* the parked joiner, while TASK_JOINING */
    tern_coro *j_coro;
    uint64_t j_token;
    /* immutable after spawn */
    tern__sched *sched; /* where the task runs */
    void *(*fn)(void *);
    void *arg;
    /* written by the task before TASK_DONE, read after it */
    void *result;
    int err; /* -ENOMEM: never started (no stack on its worker) */
};

/* The task is over (fn returned, or it could not start): publishes that,
 * then wakes the joiner or frees a detached handle. */
static void task_finish(tern_task *t) {
    uint64_t v = tern__spin_lock(&t->lock);
    enum task_state was = t->state;
    tern__sched *js = t->j_sched;
    tern_coro *jc = t->j_coro;
    uint64_t jt = t->j_token;
    t->state = TASK_DONE;
    tern__spin_unlock(&t->lock, v);
    if (was == TASK_DETACHED)
        free(t);
    else if (was == TASK_JOINING)
        tern__sched_wake_from_any(js, jc, jt, 0);
}

static void task_main(void *arg) {
    tern_task *t = arg;
    t->result = t->fn(t->arg);
    task_finish(t);
}

/* On the target's thread: creates the coroutine and queues it. */
static int task_start_here(tern_task *t) {
    tern__sched *s = t->sched;
    tern_coro *c = tern__sched_coro_new(s, task_main, t);
    if (!c) return -ENOMEM;
    c->owner = t;
    uint64_t v = tern__spin_lock(&t->lock);
    t->coro = c;
    t->serial = c->serial;
    if (t->cancel_req) c->flags |= TERN_CORO_CANCELLED;
    tern__spin_unlock(&t->lock, v);
    tern__sched_enqueue(s, c);
    return 0;
}

static tern_task *task_new(tern__sched *s, void *(*fn)(void *), void *arg) {
    tern_task *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->sched = s;
    t->fn = fn;
    t->arg = arg;
    t->state = TASK_RUNNING;
    return t;
}

tern_task *tern_spawn(void *(*fn)(void *), void *arg) {
    tern__sched *s = tern__sched_self;
    if (!s || !fn) return NULL;
    tern_task *t = task_new(s, fn, arg);
    if (!t) return NULL;
    if (task_start_here(t) < 0) {
        free(t);
        return NULL;
    }
    return t;
}

/* Remote call target: runs on t->sched's thread, from its loop. */
static void task_start_remote(void *arg) {
    tern_task *t = arg;
    __atomic_fetch_sub(&t->sched->incoming, 1, __ATOMIC_RELAXED);
    if (task_start_here(t) < 0) {
        t->err = -ENOMEM;
        task_finish(t);
    }
}

tern_task *tern_spawn_on(int worker, void *(*fn)(void *), void *arg) {
    tern__sched *s = worker == TERN_WORKER_ANY ? tern__sched_group_least_loaded()
                                               : tern__sched_group_get(worker);
    if (!s || !fn) {
        errno = EINVAL;
        return NULL;
    }
    if (s == tern__sched_self) return tern_spawn(fn, arg);
    tern_task *t = task_new(s, fn, arg);
    if (!t) return NULL;
    /* counted before the post so that a burst of TERN_WORKER_ANY spawns
     * spreads instead of piling onto the worker that looked idle */
    __atomic_fetch_add(&s->incoming, 1, __ATOMIC_RELAXED);
    if (tern__sched_remote_call(s, task_start_remote, t) < 0) {
        __atomic_fetch_sub(&s->incoming, 1, __ATOMIC_RELAXED);
        free(t);
        errno = ENOMEM;
        return NULL;
    }
    return t;
}

/* Hands t's outcome to the joiner and frees t. */
static int task_reap(tern_task *t, void **result) {
    int err = t->err;
    if (result) *result = t->result;
    free(t);
    return err;
}

/* Parks the calling coroutine until t is done or the deadline passes (0 =
 * none). With ignore_cancel the caller's own cancellation does not end the
 * wait: cancellation is sticky (every park returns -ECANCELED at once), so
 * the flag is set aside while waiting and put back afterwards, together
 * with any cancel that arrived meanwhile. 0 when done, else the park's
 * error (t stays joinable), -EBUSY when someone else joins t. */
static int join_wait(tern_task *t, uint64_t deadline, int ignore_cancel) {
    tern__sched *s = tern__sched_self;
    tern_coro *self = s->current;
    uint32_t cancelled = 0;
    uint64_t v = tern__spin_lock(&t->lock);
    if (t->state == TASK_DONE) {
        tern__spin_unlock(&t->lock, v);
        return 0;
    }
    if (t->state != TASK_RUNNING) {
        tern__spin_unlock(&t->lock, v);
        return -EBUSY;
    }
    t->j_sched = s;
    t->j_coro = self;
    t->j_token = tern__sched_wait_begin();
    t->state = TASK_JOINING;
    tern__spin_unlock(&t->lock, v);
    int r = 0;
    for (;;) {
        if (ignore_cancel) {
            cancelled |= self->flags & TERN_CORO_CANCELLED;
            self->flags &= ~TERN_CORO_CANCELLED;
        }
        int p = tern__sched_park_until(deadline);
        v = tern__spin_lock(&t->lock);
        if (t->state == TASK_DONE) break; /* done wins over a timeout in the same pass */
        if (p < 0 && !(ignore_cancel && p == -ECANCELED)) {
            t->state = TASK_RUNNING;
            r = p;
            break;
        }
        tern__spin_unlock(&t->lock, v);
    }
    tern__spin_unlock(&t->lock, v);
    tern__sched_wait_end();
    self->flags |= cancelled;
    return r;
}

int tern_join_timeout(tern_task *t, void **result, int64_t timeout_ms) {
    tern__sched *s = tern__sched_self;
    if (!t) return -EINVAL;
    if (!s || !s->current) {
        /* no coroutine to park: only a task already done can be joined */
        uint64_t v = tern__spin_lock(&t->lock);
        int done = t->state == TASK_DONE;
        tern__spin_unlock(&t->lock, v);
        return done ? task_reap(t, result) : -EPERM;
    }
    /* clamped so INT64_MAX ("forever") cannot wrap to a past deadline */
    if (timeout_ms > INT64_MAX / 1000000) timeout_ms = INT64_MAX / 1000000;
    uint64_t deadline = timeout_ms < 0 ? 0 : tern_clock_ns() + (uint64_t)timeout_ms * 1000000ull;
    int r = join_wait(t, deadline, 0);
    return r < 0 ? r : task_reap(t, result);
}

int tern_join(tern_task *t, void **result) {
    return tern_join_timeout(t, result, -1);
}

int tern_join_all(tern_task **tasks, size_t n, void **results) {
    int err = 0;
    for (size_t i = 0; i < n; i++) {
        if (!tasks[i]) continue;
        int r = tern_join(tasks[i], results ? &results[i] : NULL);
        if (r == -EPERM || r == -EBUSY) return r; /* the rest stay joinable */
        if (r != -ECANCELED) {
            /* joined: 0, or -ENOMEM for a task that could not start */
            tasks[i] = NULL;
            if (r < 0 && !err) err = r;
            continue;
        }
        /* The caller was cancelled. Its tasks typically use memory on its
         * stack (arguments, results, shared counters), so they must not
         * outlive this call: cancel them all, then wait for each to end.
         * (Detaching them instead let them run on after the caller returned
         * and touch its dead stack.) */
        for (size_t j = i; j < n; j++)
            if (tasks[j]) tern_cancel(tasks[j]);
        for (size_t j = i; j < n; j++) {
            if (!tasks[j]) continue;
            if (join_wait(tasks[j], 0, 1) < 0) continue; /* joined elsewhere: not ours */
            void *res = NULL;
            task_reap(tasks[j], &res);
            if (results) results[j] = res;
            tasks[j] = NULL;
        }
        return -ECANCELED;
    }
    return err;
}

void tern_detach(tern_task *t) {
    if (!t) return;
    uint64_t v = tern__spin_lock(&t->lock);
    int done = t->state == TASK_DONE;
    if (!done) t->state = TASK_DETACHED;
    tern__spin_unlock(&t->lock, v);
    if (done) free(t);
}

void tern_cancel(tern_task *t) {
    if (!t) return;
    uint64_t v = tern__spin_lock(&t->lock);
    tern_coro *c = t->state == TASK_DONE ? NULL : t->coro;
    uint64_t serial = t->serial;
    if (t->state != TASK_DONE) t->cancel_req = 1;
    tern__spin_unlock(&t->lock, v);
    if (c) tern__sched_cancel_from_any(t->sched, c, serial);
}

int tern_cancelled(void) {
    tern__sched *s = tern__sched_self;
    return s && s->current && (s->current->flags & TERN_CORO_CANCELLED);
}
