/* Histogram: bucket layout, percentiles against a sorted reference on fixed
 * and random data, merging snapshots, bucket iteration. */
#include "check.h"
#include "metrics/histogram.c"

#include <stdlib.h>
#include <string.h>

#define US 1000ull
#define MS 1000000ull
#define SEC 1000000000ull

static uint64_t rng_state = 0x2545f4914f6cdd1dull;
static uint64_t rnd(void) { /* xorshift64*: reproducible across runs */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

static tern__hist *hist_new(void) {
    return calloc(1, sizeof(tern__hist));
}

static void snap_of(tern__hist_snap *s, const tern__hist *h) {
    memset(s, 0, sizeof *s);
    tern__hist_snap_add(s, h);
}

/* ---- bucket math ------------------------------------------------------------- */

static void test_bucket_layout(void) {
    CHECK_INT(TERN_HIST_BUCKETS, 449);
    /* contiguous, increasing, and each bucket at most 1/16 of its lower
     * bound wide above the linear part */
    for (unsigned i = 1; i < TERN_HIST_OVERFLOW; i++) {
        CHECK(tern__hist_lower(i) == tern__hist_upper(i - 1));
        uint64_t lo = tern__hist_lower(i), hi = tern__hist_upper(i);
        CHECK(hi > lo);
        if (lo >= 1024)
            CHECK((hi - lo) * 16 <= lo);
        else
            CHECK_INT(hi - lo, 64);
    }
    CHECK_INT(tern__hist_upper(0), 64);
    CHECK_INT(tern__hist_upper(15), 1024);
    CHECK_INT(tern__hist_upper(16), 1088);
    CHECK_INT(tern__hist_upper(TERN_HIST_OVERFLOW - 1), 1ull << 37);
    CHECK(tern__hist_upper(TERN_HIST_OVERFLOW) == UINT64_MAX);
    /* (lo, hi]: the upper bound itself belongs to the bucket */
    CHECK_INT(tern__hist_index(0), 0);
    CHECK_INT(tern__hist_index(1), 0);
    CHECK_INT(tern__hist_index(64), 0);
    CHECK_INT(tern__hist_index(65), 1);
    CHECK_INT(tern__hist_index(1024), 15);
    CHECK_INT(tern__hist_index(1025), 16);
    CHECK_INT(tern__hist_index(1088), 16);
    CHECK_INT(tern__hist_index(1089), 17);
    CHECK_INT(tern__hist_index(1ull << 37), TERN_HIST_OVERFLOW - 1);
    CHECK_INT(tern__hist_index((1ull << 37) + 1), TERN_HIST_OVERFLOW);
    CHECK_INT(tern__hist_index(UINT64_MAX), TERN_HIST_OVERFLOW);
    /* every bound and its neighbours, then random values of every size */
    int bad = 0;
    for (unsigned i = 0; i < TERN_HIST_OVERFLOW; i++) {
        uint64_t hi = tern__hist_upper(i);
        if (tern__hist_index(hi) != i || tern__hist_index(hi + 1) != i + 1) bad++;
        if (i > 0 && tern__hist_index(tern__hist_lower(i) + 1) != i) bad++;
    }
    for (int n = 0; n < 200000; n++) {
        uint64_t v = rnd() >> (rnd() % 64);
        unsigned i = tern__hist_index(v);
        if (i == TERN_HIST_OVERFLOW) {
            if (v <= (1ull << 37)) bad++;
        } else if (!(v <= tern__hist_upper(i) && (v > tern__hist_lower(i) || (i == 0 && v == 0)))) {
            bad++;
        }
    }
    CHECK_INT(bad, 0);
}

/* ---- percentiles ------------------------------------------------------------- */

/* est must lie in the bucket that holds the exact sample (so within one
 * bucket width of it: 6.25% above 1 µs) */
static int within_bucket(double est, uint64_t exact) {
    unsigned i = tern__hist_index(exact);
    return est > (double)tern__hist_lower(i) - 1e-9 && est <= (double)tern__hist_upper(i) + 1e-9;
}

static void test_percentiles_constant(void) {
    tern__hist *h = hist_new();
    for (int i = 0; i < 1000; i++) tern__hist_record(h, 1 * MS);
    tern__hist_snap s;
    snap_of(&s, h);
    CHECK_INT(s.count, 1000);
    CHECK_INT(s.sum, 1000 * MS);
    CHECK_INT(s.max, 1 * MS);
    /* one bucket, which ends at the largest sample: interpolated inside
     * (lo, 1 ms], exact at the top */
    CHECK(within_bucket(tern__hist_quantile(&s, 0.5), MS));
    CHECK(within_bucket(tern__hist_quantile(&s, 0.99), MS));
    CHECK(tern__hist_quantile(&s, 0.5) < tern__hist_quantile(&s, 0.99));
    CHECK(tern__hist_quantile(&s, 1.0) == (double)MS);
    CHECK(tern__hist_quantile(&s, 0.0) > (double)tern__hist_lower(tern__hist_index(MS)));
    free(h);

    tern__hist_snap empty = {0};
    CHECK(tern__hist_quantile(&empty, 0.5) == 0);
}

static void test_percentiles_uniform(void) {
    /* 1, 2, ..., 100000 µs once each: the exact nearest-rank p is p% */
    tern__hist *h = hist_new();
    for (uint64_t v = 1; v <= 100000; v++) tern__hist_record(h, v * US);
    tern__hist_snap s;
    snap_of(&s, h);
    CHECK_INT(s.count, 100000);
    const double qs[] = {0.5, 0.9, 0.99, 0.999};
    const uint64_t exact[] = {50000 * US, 90000 * US, 99000 * US, 99900 * US};
    for (int i = 0; i < 4; i++) {
        double est = tern__hist_quantile(&s, qs[i]);
        CHECK(within_bucket(est, exact[i]));
        /* uniform inside a bucket too, so interpolation is much closer than
         * the 6.25% bound: within 0.1% here */
        double err = est > (double)exact[i] ? est - (double)exact[i] : (double)exact[i] - est;
        CHECK(err <= 0.001 * (double)exact[i]);
    }
    CHECK(tern__hist_quantile(&s, 1.0) == (double)(100000 * US));
    free(h);
}

static void test_percentiles_bimodal(void) {
    /* 990 fast (1 ms) and 10 slow (100 ms): p99 is still fast (rank 990),
     * p99.9 is slow (rank 999) */
    tern__hist *h = hist_new();
    for (int i = 0; i < 990; i++) tern__hist_record(h, 1 * MS);
    for (int i = 0; i < 10; i++) tern__hist_record(h, 100 * MS);
    tern__hist_snap s;
    snap_of(&s, h);
    CHECK(within_bucket(tern__hist_quantile(&s, 0.5), MS));
    CHECK(within_bucket(tern__hist_quantile(&s, 0.99), MS));
    CHECK(within_bucket(tern__hist_quantile(&s, 0.999), 100 * MS));
    CHECK(within_bucket(tern__hist_quantile(&s, 0.991), 100 * MS));
    CHECK(tern__hist_quantile(&s, 1.0) == (double)(100 * MS));
    free(h);
}

static void test_percentiles_random(void) {
    /* log-uniform samples from 100 ns to 10 s against a sorted copy */
    enum { N = 50000 };
    uint64_t *v = malloc(N * sizeof *v);
    tern__hist *h = hist_new();
    for (int i = 0; i < N; i++) {
        unsigned octave = 7 + (unsigned)(rnd() % 27); /* 2^7 .. 2^33 ns */
        v[i] = (1ull << octave) + rnd() % (1ull << octave);
        tern__hist_record(h, v[i]);
    }
    qsort(v, N, sizeof *v, cmp_u64);
    tern__hist_snap s;
    snap_of(&s, h);
    const double qs[] = {0.01, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999};
    for (int i = 0; i < 7; i++) {
        uint64_t rank = (uint64_t)(qs[i] * N + 0.999999);
        uint64_t exact = v[rank - 1];
        double est = tern__hist_quantile(&s, qs[i]);
        CHECK(within_bucket(est, exact));
        CHECK(est <= (double)v[N - 1]);
    }
    CHECK_INT(s.max, v[N - 1]);
    free(v);
    free(h);

    /* overflow: a sample beyond 137 s reports the largest sample */
    h = hist_new();
    tern__hist_record(h, 1 * MS);
    tern__hist_record(h, 200 * SEC);
    snap_of(&s, h);
    CHECK_INT(s.bucket[TERN_HIST_OVERFLOW], 1);
    CHECK(tern__hist_quantile(&s, 1.0) == (double)(200 * SEC));
    free(h);
}

/* ---- merge ------------------------------------------------------------------------- */

/* Two histograms filled from disjoint halves of random data, merged, must
 * equal one histogram that saw everything; percentiles then match the
 * sorted union. */
static void test_merge(void) {
    enum { N = 20000 };
    uint64_t *v = malloc(N * sizeof *v);
    tern__hist *a = hist_new(), *b = hist_new(), *all = hist_new();
    for (int i = 0; i < N; i++) {
        v[i] = (rnd() % 2 ? 50 * US : 5 * MS) + rnd() % (3 * MS);
        tern__hist_record(i < N / 3 ? a : b, v[i]);
        tern__hist_record(all, v[i]);
    }
    tern__hist_snap sa, sb, sall;
    snap_of(&sa, a);
    snap_of(&sb, b);
    snap_of(&sall, all);
    tern__hist_snap_merge(&sa, &sb);
    CHECK_INT(sa.count, N);
    CHECK_INT(sa.count, sall.count);
    CHECK_INT(sa.sum, sall.sum);
    CHECK_INT(sa.max, sall.max);
    CHECK(memcmp(sa.bucket, sall.bucket, sizeof sa.bucket) == 0);
    qsort(v, N, sizeof *v, cmp_u64);
    const double qs[] = {0.5, 0.9, 0.99, 0.999};
    for (int i = 0; i < 4; i++) {
        uint64_t rank = (uint64_t)(qs[i] * N + 0.999999);
        CHECK(within_bucket(tern__hist_quantile(&sa, qs[i]), v[rank - 1]));
    }
    /* merging into an empty snapshot copies; merging an empty one is a no-op */
    tern__hist_snap *e = calloc(1, sizeof *e), empty = {0};
    tern__hist_snap_merge(e, &sall);
    tern__hist_snap_merge(e, &empty);
    CHECK(memcmp(e, &sall, sizeof sall) == 0);
    CHECK(tern__hist_mean(&empty) == 0);
    CHECK(tern__hist_mean(e) == (double)sall.sum / N);
    free(e);
    free(v);
    free(a);
    free(b);
    free(all);
}

/* ---- iteration ------------------------------------------------------------------------ */

static void test_iteration(void) {
    tern__hist *h = hist_new();
    tern__hist_record(h, 0);
    tern__hist_record(h, 64);
    tern__hist_record(h, 65);
    for (int i = 0; i < 3; i++) tern__hist_record(h, 1 * MS);
    tern__hist_record(h, 300 * SEC);
    tern__hist_snap s;
    snap_of(&s, h);
    tern__hist_bucket bk;
    uint64_t seen = 0, prev_upper = 0;
    int n = 0;
    for (unsigned i = 0; tern__hist_next(&s, &i, &bk); i++) {
        CHECK(bk.count > 0);
        CHECK(bk.lower >= prev_upper);
        CHECK(bk.upper > bk.lower);
        prev_upper = bk.upper;
        seen += bk.count;
        if (n == 0) CHECK(bk.lower == 0 && bk.upper == 64 && bk.count == 2);
        if (n == 1) CHECK(bk.lower == 64 && bk.upper == 128 && bk.count == 1);
        if (n == 2) CHECK(bk.lower < MS && bk.upper >= MS && bk.count == 3);
        if (n == 3) CHECK(bk.upper == UINT64_MAX && bk.count == 1);
        n++;
    }
    CHECK_INT(n, 4);
    CHECK_INT(seen, s.count);
    tern__hist_snap empty = {0};
    unsigned i = 0;
    CHECK(!tern__hist_next(&empty, &i, &bk));
    CHECK_INT(i, TERN_HIST_BUCKETS);
    free(h);
}

int main(void) {
    test_bucket_layout();
    test_percentiles_constant();
    test_percentiles_uniform();
    test_percentiles_bimodal();
    test_percentiles_random();
    test_merge();
    test_iteration();
    return check_done();
}
