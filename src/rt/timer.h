/* Hierarchical timing wheel with millisecond slots: O(1) add and cancel,
 * amortised O(1) expiry. Deadlines are kept in nanoseconds, so a timer fires
 * at its exact deadline (not rounded up to a whole tick): the loop asks
 * tern__wheel_timeout_ns how long it may sleep and expires with the current
 * time. Not thread-safe: one wheel per worker. */
#ifndef TERN_RT_TIMER_H
#define TERN_RT_TIMER_H

#include <stddef.h>
#include <stdint.h>

typedef struct tern__timer tern__timer;
typedef void (*tern__timer_fn)(tern__timer *t);

struct tern__timer {
    tern__timer *next;
    tern__timer **pprev;       /* NULL when not armed */
    uint64_t deadline_ns;
    tern__timer_fn fn;
};

#define TERN_WHEEL_LEVELS 6
#define TERN_WHEEL_SLOTS 64   /* 64^6 ms = 2^36 ms, about 2.18 years */

typedef struct tern__wheel {
    uint64_t now_ms;          /* last processed tick (ms) */
    size_t count;             /* armed timers */
    uint64_t occupied[TERN_WHEEL_LEVELS];  /* bitmap of non-empty slots */
    tern__timer *slots[TERN_WHEEL_LEVELS][TERN_WHEEL_SLOTS];
    tern__timer *overflow;     /* deadlines beyond the top level's current lap */
} tern__wheel;

void tern__wheel_init(tern__wheel *w, uint64_t now_ns);
/* Arms t (re-arms if already armed) to fire at deadline_ns with t->fn. A
 * deadline in the past fires on the next tern__wheel_expire. */
void tern__wheel_add(tern__wheel *w, tern__timer *t, uint64_t deadline_ns);
/* Disarms t; no-op when not armed. O(1). */
void tern__wheel_cancel(tern__wheel *w, tern__timer *t);
static inline int tern__timer_armed(const tern__timer *t) { return t->pprev != NULL; }
/* Calls fn for every timer whose deadline_ns <= now_ns (each disarmed before
 * its call; a callback may add or cancel any timer). Returns how many fired. */
size_t tern__wheel_expire(tern__wheel *w, uint64_t now_ns);
/* How long the loop may sleep: -1 when no timer is armed, else nanoseconds
 * until the earliest deadline (0 when overdue). May be earlier than the true
 * earliest deadline, never later. */
int64_t tern__wheel_timeout_ns(const tern__wheel *w, uint64_t now_ns);

#endif
