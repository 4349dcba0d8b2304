/* Recent-window histograms: a ring of one-second histogram slots, indexed by
 * second, written by one thread and summed by readers over the last W
 * seconds. Exact (no decay, no sampling): a window holds every sample of the
 * seconds it spans, in the same buckets as tern__hist, so windows of several
 * threads merge like any histogram.
 *
 * Cost on the writer: one compare of the slot's second, then a bucket
 * increment, a sum add and a max compare; once a second the slot being
 * entered is cleared (1.8 KB memset). Readers pay the summing: W + 1 slots
 * of TERN_HIST_BUCKETS 32-bit counters.
 *
 * Memory: TERN_WINDOW_SLOTS slots of 24 + 4 x TERN_HIST_BUCKETS bytes:
 * 64 x 1824 = 116,736 bytes (114 KiB) per ring (static_assert in window.c).
 *
 * Times are passed in (now_ns, any monotonic clock counted in ns), so tests
 * drive the ring with fake times. */
#ifndef TERN_METRICS_WINDOW_H
#define TERN_METRICS_WINDOW_H

#include <stdatomic.h>
#include <stdint.h>

#include "metrics/histogram.h"

/* Longest window a reader may ask for, in whole seconds before the current
 * one; the ring holds those, the current second and slack so the writer
 * never clears a slot a reader at a slightly older "now" still sums. */
#define TERN_WINDOW_MAX_S 60
#define TERN_WINDOW_SLOTS 64 /* power of two >= TERN_WINDOW_MAX_S + 1 */

typedef struct tern__hist_slot {
    /* second + 1 of the samples held; 0 while empty or being cleared */
    _Atomic uint64_t second;
    _Atomic uint64_t sum, max; /* ns */
    /* 32 bits: one worker will not answer 4 billion requests in a second */
    _Atomic uint32_t bucket[TERN_HIST_BUCKETS];
} tern__hist_slot;

typedef struct tern__hist_window {
    tern__hist_slot slot[TERN_WINDOW_SLOTS];
} tern__hist_window;

/* A zeroed tern__hist_window is empty and ready. */

/* Records v (ns) in the slot of now_ns's second. Owning thread only; now_ns
 * must not go backwards between calls. */
void tern__hist_window_record(tern__hist_window *w, uint64_t v, uint64_t now_ns);
/* The same with the bucket index and the second (now_ns / 1e9) known. */
void tern__hist_window_record_at(tern__hist_window *w, unsigned idx, uint64_t v, uint64_t sec);

/* Adds into acc the samples of the seconds [sec - to_s, sec - from_s], sec
 * being now_ns's (partial) second: from_s = 0, to_s = W gives the window
 * "last W seconds" (the current second and the W whole seconds before it:
 * every sample of the last W s, plus up to one more second of older ones).
 * to_s is capped at TERN_WINDOW_MAX_S. Any thread. */
void tern__hist_window_add(const tern__hist_window *w, tern__hist_snap *acc, uint64_t now_ns,
                           unsigned from_s, unsigned to_s);

#endif
