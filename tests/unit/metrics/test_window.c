/* Recent windows of per-second histograms at injected times: a slow phase
 * then a fast phase (the 10 s window forgets the slow one, the 60 s window
 * later too), window bounds exactly at second edges, slots reused after the
 * ring wraps, idle gaps, and a reader on another thread while the writer
 * keeps clearing slots. */
#include "check.h"
#include "metrics/histogram.c"
#include "metrics/window.c"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#define US 1000ull
#define MS 1000000ull
#define SEC 1000000000ull

static tern__hist_snap *window(const tern__hist_window *w, uint64_t now, unsigned seconds) {
    static tern__hist_snap s;
    memset(&s, 0, sizeof s);
    tern__hist_window_add(w, &s, now, 0, seconds);
    return &s;
}

static int in_bucket_of(double est, uint64_t exact) {
    unsigned i = tern__hist_index(exact);
    return est > (double)tern__hist_lower(i) - 1e-9 && est <= (double)tern__hist_upper(i) + 1e-9;
}

/* One sample every 10 ms from *t up to (not including) until. */
static void feed(tern__hist_window *w, uint64_t *t, uint64_t until, uint64_t v) {
    for (; *t < until; *t += 10 * MS) tern__hist_window_record(w, v, *t);
}

/* 100 responses a second: 30 s at 200 ms, then fast ones at 2 ms. */
static void test_slow_then_fast(void) {
    tern__hist_window *w = calloc(1, sizeof *w);
    uint64_t t = 7000 * SEC + 250 * MS;
    feed(w, &t, 7030 * SEC + 250 * MS, 200 * MS);
    /* the slow phase is all the windows hold: seconds 7020..7029 whole, and
     * 7030.00-7030.24 of the current one */
    CHECK_INT(window(w, t, 10)->count, 100 * 10 + 25);
    tern__hist_snap *s = window(w, t, 60);
    CHECK_INT(s->count, 3000);
    CHECK(in_bucket_of(tern__hist_quantile(s, 0.99), 200 * MS));
    /* 7 s into the fast phase: the 10 s window (7027..7037.25) still holds
     * 325 slow samples (p99 slow) and 700 fast ones (median fast) */
    feed(w, &t, 7037 * SEC + 250 * MS, 2 * MS);
    s = window(w, t, 10);
    CHECK(in_bucket_of(tern__hist_quantile(s, 0.99), 200 * MS));
    CHECK(in_bucket_of(tern__hist_quantile(s, 0.5), 2 * MS));
    /* 10 s into the fast phase and past the slow phase's last second: every
     * second of the 10 s window is fast */
    feed(w, &t, 7041 * SEC, 2 * MS);
    s = window(w, t, 10);
    CHECK_INT(s->count, 1000);
    CHECK(in_bucket_of(tern__hist_quantile(s, 0.99), 2 * MS));
    CHECK_INT(s->max, 2 * MS);
    /* ...while the 60 s window still remembers the slow phase */
    s = window(w, t, 60);
    CHECK(in_bucket_of(tern__hist_quantile(s, 0.99), 200 * MS));
    CHECK_INT(s->max, 200 * MS);
    /* 61 s after the last slow second the 60 s window has forgotten it */
    feed(w, &t, 7091 * SEC, 2 * MS);
    s = window(w, t, 60);
    CHECK_INT(s->max, 2 * MS);
    CHECK_INT(s->count, 6000);
    CHECK(in_bucket_of(tern__hist_quantile(s, 0.999), 2 * MS));
    free(w);
}

/* Counts at second edges: window W = the current second + W before it. */
static void test_edges(void) {
    tern__hist_window *w = calloc(1, sizeof *w);
    /* second s (100..130) gets s - 99 samples of (s - 99) µs */
    for (uint64_t sec = 100; sec <= 130; sec++)
        for (uint64_t n = 0; n < sec - 99; n++)
            tern__hist_window_record(w, (sec - 99) * US, sec * SEC + n * MS);
    /* now = 130.5: 10 s window = seconds 120..130 = 21 + ... + 31 */
    tern__hist_snap *s = window(w, 130 * SEC + 500 * MS, 10);
    CHECK_INT(s->count, (21 + 31) * 11 / 2);
    CHECK_INT(s->max, 31 * US);
    uint64_t sum = 0;
    for (uint64_t v = 21; v <= 31; v++) sum += v * v * US;
    CHECK_INT(s->sum, sum);
    /* now = 140.0: seconds 130..140, only 130 has samples */
    s = window(w, 140 * SEC, 10);
    CHECK_INT(s->count, 31);
    /* 141.0: all gone */
    CHECK_INT(window(w, 141 * SEC, 10)->count, 0);
    /* from_s skips the most recent seconds: [sec - 10, sec - 1] at 131.0 */
    tern__hist_snap part = {0};
    tern__hist_window_add(w, &part, 131 * SEC, 1, 10);
    CHECK_INT(part.count, (22 + 31) * 10 / 2);
    /* a window longer than the ring allows is capped at TERN_WINDOW_MAX_S */
    CHECK_INT(window(w, 130 * SEC, 1000)->count, (1 + 31) * 31 / 2);
    /* times near zero: no wrap below second 0 */
    tern__hist_window *z = calloc(1, sizeof *z);
    tern__hist_window_record(z, 5 * US, 0);
    tern__hist_window_record(z, 5 * US, 2 * SEC);
    CHECK_INT(window(z, 3 * SEC, 60)->count, 2);
    CHECK_INT(window(z, 3 * SEC, 2)->count, 1);
    free(z);
    free(w);
}

/* After idle gaps and ring wraps, stale slots never count. */
static void test_wrap_and_idle(void) {
    tern__hist_window *w = calloc(1, sizeof *w);
    tern__hist_window_record(w, 9 * MS, 1000 * SEC);
    /* 1064 maps to the same slot as 1000 (64 slots) */
    CHECK_INT(window(w, 1064 * SEC, 60)->count, 0);
    tern__hist_window_record(w, 1 * MS, 1064 * SEC + 1);
    tern__hist_snap *s = window(w, 1064 * SEC + 2, 60);
    CHECK_INT(s->count, 1);
    CHECK_INT(s->max, 1 * MS); /* the old slot's max was cleared too */
    /* a reader whose clock lags the writer's still sees consistent slots */
    CHECK_INT(window(w, 1063 * SEC, 60)->count, 0);
    free(w);
}

/* A reader on another thread while the writer moves through seconds fast:
 * every read must be a sum of whole slots (here each slot holds exactly
 * 1000 samples once complete, and the partial current one fewer). */
typedef struct race {
    tern__hist_window *w;
    _Atomic uint64_t now;
    _Atomic int done;
} race;

static void *writer(void *arg) {
    race *r = arg;
    for (uint64_t sec = 10; sec < 3000; sec++) {
        for (int n = 0; n < 1000; n++)
            tern__hist_window_record(r->w, 1 * US, sec * SEC + (uint64_t)n);
        atomic_store(&r->now, (sec + 1) * SEC);
    }
    atomic_store(&r->done, 1);
    return NULL;
}

static void test_concurrent_reader(void) {
    race r = {.w = calloc(1, sizeof(tern__hist_window))};
    atomic_store(&r.now, 10 * SEC);
    pthread_t t;
    pthread_create(&t, NULL, writer, &r);
    int bad = 0, reads = 0;
    tern__hist_snap *s = malloc(sizeof *s);
    while (!atomic_load(&r.done)) {
        uint64_t now = atomic_load(&r.now);
        memset(s, 0, sizeof *s);
        /* whole seconds strictly before now's second are complete */
        tern__hist_window_add(r.w, s, now, 1, 10);
        uint64_t complete = now / SEC - 10;
        if (s->count % 1000 != 0 || s->count > 10000) bad++;
        if (s->count != 10000 && complete >= 10 && atomic_load(&r.now) == now) bad++;
        reads++;
    }
    pthread_join(t, NULL);
    CHECK_INT(bad, 0);
    CHECK(reads > 0);
    free(s);
    free(r.w);
}

int main(void) {
    test_slow_then_fast();
    test_edges();
    test_wrap_and_idle();
    test_concurrent_reader();
    return check_done();
}
