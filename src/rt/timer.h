/* Hierarchical timing wheel with millisecond slots: O(1) add and cancel,
 * amortised O(1) expiry. Deadlines are kept in nanoseconds, so a timer fires
 * at its exact deadline (not rounded up to a whole tick): the loop asks
 * tern_wheel_timeout_ns how long it may sleep and expires with the current
 * time. Not thread-safe: one wheel per worker. */
#ifndef TERN_RT_TIMER_H
#define TERN_RT_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct tern_timer tern_timer;
typedef void (*tern_timer_fn)(tern_timer *t);

struct tern_timer {
    tern_timer *next;
    tern_timer **pprev;       /* NULL when not armed */
    uint64_t deadline_ns;
    tern_timer_fn fn;
};

#define TERN_WHEEL_LEVELS 6
#define TERN_WHEEL_SLOTS 64   /* 64^6 ms = 2^36 ms, about 2.18 years */

typedef struct tern_wheel {
    uint64_t now_ms;          /* last processed tick (ms) */
    size_t count;             /* armed timers */
    uint64_t occupied[TERN_WHEEL_LEVELS];  /* bitmap of non-empty slots */
    tern_timer *slots[TERN_WHEEL_LEVELS][TERN_WHEEL_SLOTS];
    tern_timer *overflow;     /* deadlines beyond the top level's current lap */
} tern_wheel;

void tern_wheel_init(tern_wheel *w, uint64_t now_ns);
/* Arms t (re-arms if already armed) to fire at deadline_ns with t->fn. A
 * deadline in the past fires on the next tern_wheel_expire. */
void tern_wheel_add(tern_wheel *w, tern_timer *t, uint64_t deadline_ns);
/* Disarms t; no-op when not armed. O(1). */
void tern_wheel_cancel(tern_wheel *w, tern_timer *t);
static inline int tern_timer_armed(const tern_timer *t) { return t->pprev != NULL; }
/* Calls fn for every timer whose deadline_ns <= now_ns (each disarmed before
 * its call; a callback may add or cancel any timer). Returns how many fired. */
size_t tern_wheel_expire(tern_wheel *w, uint64_t now_ns);
/* How long the loop may sleep: -1 when no timer is armed, else nanoseconds
 * until the earliest deadline (0 when overdue). May be earlier than the true
 * earliest deadline, never later. */
int64_t tern_wheel_timeout_ns(const tern_wheel *w, uint64_t now_ns);

#endif
