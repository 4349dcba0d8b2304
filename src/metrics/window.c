/* Per-second histogram ring: lazy clearing by the writer, a sequence check
 * by readers (see window.h). */
#include "metrics/window.h"

#include <assert.h>

#define NS_PER_S 1000000000ull

static_assert((TERN_WINDOW_SLOTS & (TERN_WINDOW_SLOTS - 1)) == 0, "slots: a power of two");
static_assert(TERN_WINDOW_SLOTS >= TERN_WINDOW_MAX_S + 2, "slots: window + current + slack");
/* the figure quoted in window.h and docs/DESIGN.md */
static_assert(sizeof(tern__hist_window) <= 120 * 1024, "window ring grew: update the docs");

static inline uint32_t get32(const _Atomic uint32_t *p) {
    return atomic_load_explicit(p, memory_order_relaxed);
}

/* The slot is being reused for a new second. Readers check `second` before
 * and after reading the counters (a sequence lock whose sequence is the
 * second itself), so one that overlaps the clearing discards the slot. */
static void slot_reset(tern__hist_slot *s, uint64_t tag) {
    atomic_store_explicit(&s->second, 0, memory_order_relaxed);
    atomic_thread_fence(memory_order_release);
    for (unsigned i = 0; i < TERN_HIST_BUCKETS; i++)
        atomic_store_explicit(&s->bucket[i], 0, memory_order_relaxed);
    atomic_store_explicit(&s->sum, 0, memory_order_relaxed);
    atomic_store_explicit(&s->max, 0, memory_order_relaxed);
    atomic_store_explicit(&s->second, tag, memory_order_release);
}

void tern__hist_window_record(tern__hist_window *w, uint64_t v, uint64_t now_ns) {
    tern__hist_window_record_at(w, tern__hist_index(v), v, now_ns / NS_PER_S);
}

void tern__hist_window_record_at(tern__hist_window *w, unsigned idx, uint64_t v, uint64_t sec) {
    tern__hist_slot *s = &w->slot[sec & (TERN_WINDOW_SLOTS - 1)];
    if (tern__owned_get(&s->second) != sec + 1) slot_reset(s, sec + 1);
    _Atomic uint32_t *b = &s->bucket[idx];
    atomic_store_explicit(b, get32(b) + 1, memory_order_relaxed);
    tern__owned_add(&s->sum, v);
    if (v > tern__owned_get(&s->max)) atomic_store_explicit(&s->max, v, memory_order_relaxed);
}

/* Adds one slot if it holds second `sec` and was not cleared meanwhile. */
static void slot_add(const tern__hist_slot *s, uint64_t sec, tern__hist_snap *acc) {
    uint64_t tag = atomic_load_explicit(&s->second, memory_order_acquire);
    if (tag != sec + 1) return;
    uint32_t n[TERN_HIST_BUCKETS];
    for (unsigned i = 0; i < TERN_HIST_BUCKETS; i++) n[i] = get32(&s->bucket[i]);
    uint64_t sum = tern__owned_get(&s->sum), max = tern__owned_get(&s->max);
    atomic_thread_fence(memory_order_acquire);
    if (atomic_load_explicit(&s->second, memory_order_relaxed) != tag) return;
    for (unsigned i = 0; i < TERN_HIST_BUCKETS; i++) {
        acc->bucket[i] += n[i];
        acc->count += n[i];
    }
    acc->sum += sum;
    if (max > acc->max) acc->max = max;
}

void tern__hist_window_add(const tern__hist_window *w, tern__hist_snap *acc, uint64_t now_ns,
                           unsigned from_s, unsigned to_s) {
    if (to_s > TERN_WINDOW_MAX_S) to_s = TERN_WINDOW_MAX_S;
    uint64_t sec = now_ns / NS_PER_S;
    for (unsigned back = from_s; back <= to_s && back <= sec; back++) {
        uint64_t s = sec - back;
        slot_add(&w->slot[s & (TERN_WINDOW_SLOTS - 1)], s, acc);
    }
}
