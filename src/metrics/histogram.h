/* Log-linear latency histogram (HdrHistogram-style), written by one thread
 * and read by any.
 *
 * Buckets (values in ns): 16 linear buckets of 64 ns up to 1024 ns, then
 * every power of two [2^k, 2^(k+1)) split into 16 linear sub-buckets of
 * 2^(k-4) ns (so at most 6.25% wide), up to 2^37 ns (137 s); larger values
 * land in one overflow bucket. Buckets are closed on the right, (lo, hi], so
 * that a Prometheus `le` bound is exact: bucket 0 holds [0, 64], bucket 1
 * (64, 128], ...
 *
 * Writes are relaxed atomic load + store by the single owning thread (no
 * locked read-modify-write); readers sum whole 64-bit values into a
 * tern__hist_snap, plain numbers they then merge and query. */
#ifndef TERN_METRICS_HISTOGRAM_H
#define TERN_METRICS_HISTOGRAM_H

#include <stdatomic.h>
#include <stdint.h>

#define TERN_HIST_SUB_BITS 4
#define TERN_HIST_SUB (1u << TERN_HIST_SUB_BITS)
#define TERN_HIST_LINEAR_BITS 10 /* linear part: [0, 2^10 ns] */
#define TERN_HIST_TOP_BITS 37    /* last regular bucket ends at 2^37 ns */
#define TERN_HIST_REGULAR ((TERN_HIST_TOP_BITS - TERN_HIST_LINEAR_BITS + 1) * TERN_HIST_SUB)
#define TERN_HIST_BUCKETS (TERN_HIST_REGULAR + 1) /* + overflow */
#define TERN_HIST_OVERFLOW TERN_HIST_REGULAR

/* Single-writer counters: only the owning thread writes, so a relaxed load
 * and store is an exact increment without a lock prefix, and readers on
 * other threads still see whole 64-bit values. */
static inline void tern__owned_add(_Atomic uint64_t *p, uint64_t d) {
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + d,
                          memory_order_relaxed);
}

static inline uint64_t tern__owned_get(const _Atomic uint64_t *p) {
    return atomic_load_explicit(p, memory_order_relaxed);
}

typedef struct tern__hist {
    _Atomic uint64_t sum; /* ns */
    _Atomic uint64_t max; /* ns */
    _Atomic uint64_t bucket[TERN_HIST_BUCKETS];
} tern__hist;

/* A histogram read (or several merged): plain numbers. */
typedef struct tern__hist_snap {
    uint64_t count, sum, max;
    uint64_t bucket[TERN_HIST_BUCKETS];
} tern__hist_snap;

/* ---- bucket layout --------------------------------------------------------- */
unsigned tern__hist_index(uint64_t v);
/* tern__hist_record with the bucket already known (one index for several
 * histograms of the same sample) */
void tern__hist_record_at(tern__hist *h, unsigned idx, uint64_t v);
/* Bucket i holds values in (lower, upper]; bucket 0 also holds 0. The
 * overflow bucket's upper bound is UINT64_MAX. */
uint64_t tern__hist_lower(unsigned i);
uint64_t tern__hist_upper(unsigned i);

/* ---- writing (owning thread) ------------------------------------------------ */
void tern__hist_record(tern__hist *h, uint64_t v);

/* ---- reading ---------------------------------------------------------------- */
/* Adds h into acc (count = sum of the buckets as read). */
void tern__hist_snap_add(tern__hist_snap *acc, const tern__hist *h);
/* Merges snapshot b into acc: counts and sums add, max is the larger. */
void tern__hist_snap_merge(tern__hist_snap *acc, const tern__hist_snap *b);
/* Value (ns) at quantile q in [0, 1] by nearest rank: linear interpolation
 * inside the bucket that holds the rank-th smallest sample (the bucket
 * holding the largest sample taken to end at it), so the result lies in the
 * same bucket as the exact answer. 0 for an empty histogram. */
double tern__hist_quantile(const tern__hist_snap *h, double q);
/* Mean (ns), 0 for an empty histogram. */
double tern__hist_mean(const tern__hist_snap *h);

/* Non-empty buckets in increasing order:
 *   for (unsigned i = 0; tern__hist_next(h, &i, &b); i++) ... b.lower, b.upper, b.count
 * Returns 0 once past the last bucket; *i is left at the bucket found. */
typedef struct tern__hist_bucket {
    uint64_t lower, upper, count; /* (lower, upper] */
} tern__hist_bucket;
int tern__hist_next(const tern__hist_snap *h, unsigned *i, tern__hist_bucket *out);

#endif
