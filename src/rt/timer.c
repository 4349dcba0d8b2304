/* Hierarchical timing wheel (see timer.h).
 *
 * Placement. A timer due at millisecond tick T is filed relative to the
 * wheel's clock N (w->now_ms) by the highest base-64 digit in which T and N
 * differ: level L = that digit's index, slot = digit L of T. So level L holds
 * only timers that share every digit above L with N and whose digit L is
 * greater than N's; level 0 additionally keeps, in N's own slot, the timers
 * due at tick N or earlier (a deadline added in the past, or one later in the
 * current millisecond). Timers whose T differs from N above the top level
 * (2^36 ms, about 2.18 years, or less when N is close to a 2^36 boundary) wait
 * on the overflow list until the top level wraps.
 *
 * Advancing from tick O to N. A level-L slot must be emptied once N reaches
 * the start of the range it covers: every slot when N has left O's level-L
 * lap (a digit above L changed), otherwise the slots up to N's digit L. Its
 * timers are then either due or re-filed relative to N, which always puts them
 * on a lower level, so each timer moves at most TERN_WHEEL_LEVELS times in its
 * life. Computing those slots is a mask per level and the occupied bitmaps
 * skip empty ones with ctz, so the cost of a call does not depend on how much
 * time passed: a ten-minute idle gap is one call, not 600000 ticks.
 *
 * Exact deadlines. Ticks only decide where a timer is filed; whether it fires
 * is always deadline_ns <= now_ns, so timers later in the current millisecond
 * stay armed in N's level-0 slot, which is rescanned on every call.
 *
 * Callbacks. Due timers are first moved to a private list and only then
 * called, so a timer armed by a callback (even for a deadline already past)
 * is filed in the wheel and fires on the next call, never in the same one:
 * a callback that keeps re-arming itself cannot loop. Timers waiting on the
 * private list are still armed, so a callback can cancel or re-arm them with
 * the usual O(1) unlink. */
#include "rt/timer.h"

#include <assert.h>

#define NS_PER_MS 1000000ull
#define SLOT_BITS 6u
#define SLOT_MASK ((uint64_t)TERN_WHEEL_SLOTS - 1)
#define WHEEL_BITS (SLOT_BITS * TERN_WHEEL_LEVELS) /* the ticks one lap of the top level spans */

_Static_assert(TERN_WHEEL_SLOTS == 1u << SLOT_BITS, "one uint64_t occupied bitmap per level");
_Static_assert(WHEEL_BITS < 64, "tick digits must fit in a uint64_t");

static inline uint64_t ns_to_tick(uint64_t ns) {
    return ns / NS_PER_MS;
}

static void link_head(tern__timer **head, tern__timer *t) {
    t->next = *head;
    if (t->next) t->next->pprev = &t->next;
    *head = t;
    t->pprev = head;
}

static void unlink_timer(tern__timer *t) {
    *t->pprev = t->next;
    if (t->next) t->next->pprev = t->pprev;
    t->next = NULL;
    t->pprev = NULL;
}

/* Files an armed-but-unlinked timer relative to w->now_ms (see top). */
static void place(tern__wheel *w, tern__timer *t) {
    uint64_t tick = ns_to_tick(t->deadline_ns), now = w->now_ms;
    unsigned level = 0;
    uint64_t slot = now & SLOT_MASK;

    if (tick > now) {
        unsigned top = 63u - (unsigned)__builtin_clzll(tick ^ now);
        if (top >= WHEEL_BITS) {
            link_head(&w->overflow, t);
            return;
        }
        level = top / SLOT_BITS;
        slot = (tick >> (level * SLOT_BITS)) & SLOT_MASK;
    }
    link_head(&w->slots[level][slot], t);
    w->occupied[level] |= 1ull << slot;
}

/* Slots of `level` whose range starts at or before tick n, given that the
 * wheel was last filed relative to tick o (o <= n). */
static uint64_t reached_slots(uint64_t o, uint64_t n, unsigned level) {
    unsigned shift = level * SLOT_BITS;
    uint64_t digit = (n >> shift) & SLOT_MASK;

    if ((n >> (shift + SLOT_BITS)) != (o >> (shift + SLOT_BITS))) return ~0ull;
    return digit == SLOT_MASK ? ~0ull : (2ull << digit) - 1;
}

void tern__wheel_init(tern__wheel *w, uint64_t now_ns) {
    *w = (tern__wheel){.now_ms = ns_to_tick(now_ns)};
}

void tern__wheel_add(tern__wheel *w, tern__timer *t, uint64_t deadline_ns) {
    tern__wheel_cancel(w, t);
    t->deadline_ns = deadline_ns;
    w->count++;
    place(w, t);
}

void tern__wheel_cancel(tern__wheel *w, tern__timer *t) {
    tern__timer **head = t->pprev;
    uintptr_t off;

    if (!head) return;
    unlink_timer(t);
    w->count--;
    if (*head) return;
    /* The list ended at t: if t was also first in a wheel slot, that slot is now
     * empty. pprev then points into w->slots (else at another timer's next, the
     * overflow head or an expire call's private list), found by address. */
    off = (uintptr_t)head - (uintptr_t)&w->slots[0][0];
    if (off < sizeof w->slots) {
        size_t i = off / sizeof w->slots[0][0];
        w->occupied[i / TERN_WHEEL_SLOTS] &= ~(1ull << (i % TERN_WHEEL_SLOTS));
    }
}

/* Takes a detached list: due timers are appended at due_tail (returns the new
 * tail), the rest are filed relative to w->now_ms. */
static tern__timer **refile(tern__wheel *w, tern__timer *list, uint64_t now_ns,
                           tern__timer **due_tail) {
    tern__timer *t, *next;

    for (t = list; t; t = next) {
        next = t->next;
        if (t->deadline_ns <= now_ns) {
            t->next = NULL;
            t->pprev = due_tail;
            *due_tail = t;
            due_tail = &t->next;
        } else {
            place(w, t);
        }
    }
    return due_tail;
}

size_t tern__wheel_expire(tern__wheel *w, uint64_t now_ns) {
    uint64_t o = w->now_ms, n = ns_to_tick(now_ns);
    tern__timer *due = NULL, **due_tail = &due, *t;
    uint64_t pending;
    size_t fired = 0;

    if (n < o) n = o; /* a clock step backwards only rescans the current slot */
    w->now_ms = n;

    /* Level 0 is filed by exact tick, so its timers are either due or (tick n
     * only) stay where they are: scan in place. */
    pending = w->occupied[0] & reached_slots(o, n, 0);
    while (pending) {
        unsigned s = (unsigned)__builtin_ctzll(pending);
        tern__timer **pp = &w->slots[0][s];

        pending &= pending - 1;
        while ((t = *pp)) {
            if (t->deadline_ns <= now_ns) {
                unlink_timer(t);
                t->pprev = due_tail;
                *due_tail = t;
                due_tail = &t->next;
            } else {
                assert(s == (n & SLOT_MASK) && ns_to_tick(t->deadline_ns) == n);
                pp = &t->next;
            }
        }
        if (!w->slots[0][s]) w->occupied[0] &= ~(1ull << s);
    }

    /* Higher levels: a reached slot is emptied and its timers are due or go
     * down to a lower level (already scanned, and filed correctly for n), so
     * each list is refiled as it is taken. Once the digits from L up are
     * unchanged, no higher slot can be reached. */
    for (unsigned level = 1; level <= TERN_WHEEL_LEVELS; level++) {
        unsigned shift = level * SLOT_BITS;

        if ((n >> shift) == (o >> shift)) break;
        if (level == TERN_WHEEL_LEVELS) { /* the top level wrapped: retry the overflow */
            t = w->overflow;
            w->overflow = NULL;
            due_tail = refile(w, t, now_ns, due_tail);
            break;
        }
        pending = w->occupied[level] & reached_slots(o, n, level);
        w->occupied[level] &= ~pending;
        while (pending) {
            unsigned s = (unsigned)__builtin_ctzll(pending);

            pending &= pending - 1;
            t = w->slots[level][s];
            w->slots[level][s] = NULL;
            due_tail = refile(w, t, now_ns, due_tail);
        }
    }

    /* Call back last. Each timer is unlinked (disarmed) before its call, and the
     * list head is re-read every time because a callback may cancel or re-arm
     * any timer still waiting here. */
    while ((t = due)) {
        unlink_timer(t);
        w->count--;
        fired++;
        t->fn(t);
    }
    return fired;
}

int64_t tern__wheel_timeout_ns(const tern__wheel *w, uint64_t now_ns) {
    uint64_t earliest = 0;

    if (!w->count) return -1;
    if (w->occupied[0]) {
        /* Filed by exact tick and none below the current slot: the first
         * occupied slot holds the earliest deadline; a short scan makes it exact. */
        unsigned s = (unsigned)__builtin_ctzll(w->occupied[0]);
        earliest = UINT64_MAX;
        for (const tern__timer *t = w->slots[0][s]; t; t = t->next)
            if (t->deadline_ns < earliest) earliest = t->deadline_ns;
    } else {
        /* Lower levels end before higher levels begin, so the first occupied
         * slot of the lowest occupied level starts no later than any deadline;
         * its start is a lower bound (the expire call there files its timers
         * on a lower level and the next answer is tighter). */
        unsigned level;
        for (level = 1; level < TERN_WHEEL_LEVELS && !w->occupied[level]; level++) {
        }
        if (level < TERN_WHEEL_LEVELS) {
            unsigned shift = level * SLOT_BITS;
            uint64_t s = (uint64_t)__builtin_ctzll(w->occupied[level]);
            uint64_t lap = w->now_ms >> (shift + SLOT_BITS) << (shift + SLOT_BITS);
            earliest = (lap | s << shift) * NS_PER_MS;
        } else if (w->overflow) {
            earliest = ((w->now_ms >> WHEEL_BITS) + 1) << WHEEL_BITS;
            earliest *= NS_PER_MS; /* <= some deadline_ns / NS_PER_MS * NS_PER_MS: no overflow */
        }
        /* else every armed timer sits on an expire call's private list (we are
         * inside a callback): they are due now, 0 is right. */
    }
    if (earliest <= now_ns) return 0;
    return earliest - now_ns > (uint64_t)INT64_MAX ? INT64_MAX : (int64_t)(earliest - now_ns);
}
