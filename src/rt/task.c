/* Tasks: tern_spawn / join / join_all / detach / cancel on the current
 * worker. A task is a coroutine plus a small handle that outlives it until
 * joined, so join can read the result after the stack went back to the pool. */
#include <errno.h>
#include <stdlib.h>

#include "rt/sched.h"
#include "tern.h"

struct tern_task {
    tern_coro *coro;         /* NULL once finished */
    void *(*fn)(void *);
    void *arg;
    void *result;
    tern_coro *joiner;       /* coroutine parked in join, if any */
    unsigned done : 1;
    unsigned detached : 1;
};

static void task_main(void *arg) {
    tern_task *t = arg;
    t->result = t->fn(t->arg);
    t->done = 1;
    t->coro = NULL;
    if (t->detached) {
        free(t);
        return;
    }
    if (t->joiner) tern__sched_wake(t->joiner, 0);
}

tern_task *tern_spawn(void *(*fn)(void *), void *arg) {
    tern__sched *s = tern__sched_self;
    if (!s || !fn) return NULL;
    tern_task *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->fn = fn;
    t->arg = arg;
    t->coro = tern__sched_coro_new(s, task_main, t);
    if (!t->coro) {
        free(t);
        return NULL;
    }
    t->coro->owner = t;
    tern__sched_enqueue(s, t->coro);
    return t;
}

int tern_join_timeout(tern_task *t, void **result, int64_t timeout_ms) {
    tern__sched *s = tern__sched_self;
    if (!t) return -EINVAL;
    if (!t->done) {
        if (!s || !s->current) return -EPERM;
        if (t->joiner) return -EBUSY;
        /* clamped so INT64_MAX ("forever") cannot wrap to a past deadline */
        if (timeout_ms > INT64_MAX / 1000000) timeout_ms = INT64_MAX / 1000000;
        uint64_t deadline = timeout_ms < 0 ? 0 : tern_clock_ns() + (uint64_t)timeout_ms * 1000000ull;
        t->joiner = s->current;
        while (!t->done) {
            int r = tern__sched_park_until(deadline);
            if (r < 0 && !t->done) {
                t->joiner = NULL;
                return r;
            }
        }
        t->joiner = NULL;
    }
    if (result) *result = t->result;
    free(t);
    return 0;
}

int tern_join(tern_task *t, void **result) { return tern_join_timeout(t, result, -1); }

/* Waits for t to finish even though the caller is cancelled. Cancellation
 * is sticky (every park returns -ECANCELED at once), so the flag is set
 * aside while waiting and put back afterwards, with any cancel that arrived
 * meanwhile. */
static void join_uncancellable(tern_task *t, tern_coro *self) {
    uint32_t cancelled = self->flags & TERN_CORO_CANCELLED;
    self->flags &= ~TERN_CORO_CANCELLED;
    t->joiner = self;
    while (!t->done) {
        tern__sched_park();
        cancelled |= self->flags & TERN_CORO_CANCELLED;
        self->flags &= ~TERN_CORO_CANCELLED;
    }
    t->joiner = NULL;
    self->flags |= cancelled;
}

int tern_join_all(tern_task **tasks, size_t n, void **results) {
    for (size_t i = 0; i < n; i++) {
        if (!tasks[i]) continue;
        int r = tern_join(tasks[i], results ? &results[i] : NULL);
        if (r == 0) {
            tasks[i] = NULL;
            continue;
        }
        if (r != -ECANCELED) return r; /* the rest stay joinable (joined ones are NULL) */
        /* The caller was cancelled. Its tasks typically use memory on its
         * stack (arguments, results, shared counters), so they must not
         * outlive this call: cancel them all, then wait for each to end.
         * (Detaching them instead let them run on after the caller returned
         * and touch its dead stack.) */
        tern_coro *self = tern__sched_self->current;
        for (size_t j = i; j < n; j++)
            if (tasks[j]) tern_cancel(tasks[j]);
        for (size_t j = i; j < n; j++) {
            if (!tasks[j]) continue;
            if (tasks[j]->joiner) continue; /* joined elsewhere: not ours to wait for */
            join_uncancellable(tasks[j], self);
            if (results) results[j] = tasks[j]->result;
            free(tasks[j]);
            tasks[j] = NULL;
        }
        return -ECANCELED;
    }
    return 0;
}

void tern_detach(tern_task *t) {
    if (!t) return;
    if (t->done) {
        free(t);
        return;
    }
    t->detached = 1;
}

void tern_cancel(tern_task *t) {
    if (t && !t->done && t->coro) tern__sched_cancel(t->coro);
}

int tern_cancelled(void) {
    tern__sched *s = tern__sched_self;
    return s && s->current && (s->current->flags & TERN_CORO_CANCELLED);
}
