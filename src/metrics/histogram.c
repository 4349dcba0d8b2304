/* Log-linear histogram: bucket layout, recording, merging, percentiles. */
#include "metrics/histogram.h"

/* Index of a value v in the half-open layout [lo, hi): linear below 2^10,
 * then (octave, 4-bit mantissa). */
static unsigned raw_index(uint64_t v) {
    if (v < (1ull << TERN_HIST_LINEAR_BITS))
        return (unsigned)(v >> (TERN_HIST_LINEAR_BITS - TERN_HIST_SUB_BITS));
    unsigned k = 63u - (unsigned)__builtin_clzll(v);
    return (k - TERN_HIST_LINEAR_BITS + 1) * TERN_HIST_SUB +
           (unsigned)((v >> (k - TERN_HIST_SUB_BITS)) & (TERN_HIST_SUB - 1));
}

unsigned tern__hist_index(uint64_t v) {
    /* shift by one so buckets are (lo, hi]: `le` bounds then hold exactly */
    if (v == 0) return 0;
    if (v - 1 >= (1ull << TERN_HIST_TOP_BITS)) return TERN_HIST_OVERFLOW;
    return raw_index(v - 1);
}

uint64_t tern__hist_upper(unsigned i) {
    if (i >= TERN_HIST_OVERFLOW) return UINT64_MAX;
    if (i < TERN_HIST_SUB) return (uint64_t)(i + 1) << (TERN_HIST_LINEAR_BITS - TERN_HIST_SUB_BITS);
    unsigned k = i / TERN_HIST_SUB + TERN_HIST_LINEAR_BITS - 1;
    uint64_t sub = i % TERN_HIST_SUB;
    return (TERN_HIST_SUB + sub + 1) << (k - TERN_HIST_SUB_BITS);
}

uint64_t tern__hist_lower(unsigned i) {
    return i == 0 ? 0 : tern__hist_upper(i - 1);
}

void tern__hist_record(tern__hist *h, uint64_t v) { tern__hist_record_at(h, tern__hist_index(v), v); }

void tern__hist_record_at(tern__hist *h, unsigned idx, uint64_t v) {
    tern__owned_add(&h->bucket[idx], 1);
    tern__owned_add(&h->sum, v);
    if (v > tern__owned_get(&h->max)) atomic_store_explicit(&h->max, v, memory_order_relaxed);
}

void tern__hist_snap_add(tern__hist_snap *acc, const tern__hist *h) {
    for (unsigned i = 0; i < TERN_HIST_BUCKETS; i++) {
        uint64_t n = tern__owned_get(&h->bucket[i]);
        acc->bucket[i] += n;
        acc->count += n;
    }
    acc->sum += tern__owned_get(&h->sum);
    uint64_t mx = tern__owned_get(&h->max);
    if (mx > acc->max) acc->max = mx;
}

void tern__hist_snap_merge(tern__hist_snap *acc, const tern__hist_snap *b) {
    for (unsigned i = 0; i < TERN_HIST_BUCKETS; i++) acc->bucket[i] += b->bucket[i];
    acc->count += b->count;
    acc->sum += b->sum;
    if (b->max > acc->max) acc->max = b->max;
}

double tern__hist_mean(const tern__hist_snap *h) {
    return h->count ? (double)h->sum / (double)h->count : 0;
}

double tern__hist_quantile(const tern__hist_snap *h, double q) {
    if (h->count == 0) return 0;
    if (q < 0) q = 0;
    if (q > 1) q = 1;
    /* nearest rank: the ceil(q * n)-th smallest sample (at least the 1st) */
    /* (ceil by hand: the library does not link libm) */
    double x = q * (double)h->count;
    uint64_t rank = (uint64_t)x;
    if ((double)rank < x) rank++;
    if (rank < 1) rank = 1;
    if (rank > h->count) rank = h->count;
    uint64_t before = 0;
    for (unsigned i = 0; i < TERN_HIST_BUCKETS; i++) {
        uint64_t n = h->bucket[i];
        if (before + n < rank) {
            before += n;
            continue;
        }
        if (i == TERN_HIST_OVERFLOW) return (double)h->max;
        /* the bucket holding the largest sample ends at that sample: no
         * sample lies above it, so spreading ranks up to the bucket's bound
         * would overstate the tail */
        double lo = (double)tern__hist_lower(i), hi = (double)tern__hist_upper(i);
        if (hi > (double)h->max) hi = (double)h->max;
        if (hi < lo) return hi;
        return lo + (hi - lo) * (double)(rank - before) / (double)n;
    }
    return (double)h->max; /* buckets changed under us: count > sum of buckets */
}

int tern__hist_next(const tern__hist_snap *h, unsigned *i, tern__hist_bucket *out) {
    for (; *i < TERN_HIST_BUCKETS; (*i)++) {
        if (!h->bucket[*i]) continue;
        out->lower = tern__hist_lower(*i);
        out->upper = tern__hist_upper(*i);
        out->count = h->bucket[*i];
        return 1;
    }
    return 0;
}
