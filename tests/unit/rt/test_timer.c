/* Timing wheel: exact-deadline semantics, callbacks that re-arm or cancel,
 * long idle gaps, far deadlines, and a randomised comparison against a
 * brute-force model. */
#include "check.h"
#include "rt/timer.c"

#include <stdlib.h>
#include <time.h>

#define MS 1000000ull
#define SEC (1000 * MS)

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint64_t rnd(void) { /* xorshift64*: reproducible across runs */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 0x2545f4914f6cdd1dull;
}

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* ---- simple callbacks ---------------------------------------------------- */

static int fired_count[8];
static tern__timer simple[8];
static void on_simple(tern__timer *t) {
    fired_count[t - simple]++;
}

static void reset_simple(void) {
    memset(fired_count, 0, sizeof fired_count);
    memset(simple, 0, sizeof simple);
    for (int i = 0; i < 8; i++) simple[i].fn = on_simple;
}

static void test_exact_deadline(void) {
    tern__wheel w;
    uint64_t base = 5 * SEC + 123456; /* not on a ms boundary */

    reset_simple();
    tern__wheel_init(&w, base);
    CHECK_INT(tern__wheel_timeout_ns(&w, base), -1);
    tern__wheel_add(&w, &simple[0], base + 250000); /* same ms as now */
    tern__wheel_add(&w, &simple[1], base + 3 * MS + 17);
    CHECK_INT(w.count, 2);
    CHECK(tern__timer_armed(&simple[0]));
    CHECK_INT(tern__wheel_timeout_ns(&w, base), 250000);

    /* one ns early: nothing, and the timer in the current ms stays armed */
    CHECK_INT(tern__wheel_expire(&w, base + 249999), 0);
    CHECK(tern__timer_armed(&simple[0]));
    CHECK_INT(tern__wheel_timeout_ns(&w, base + 249999), 1);
    CHECK_INT(tern__wheel_expire(&w, base + 250000), 1);
    CHECK_INT(fired_count[0], 1);
    CHECK(!tern__timer_armed(&simple[0]));

    CHECK_INT(tern__wheel_timeout_ns(&w, base + 250000), 3 * MS + 17 - 250000);
    CHECK_INT(tern__wheel_expire(&w, base + 3 * MS + 16), 0);
    CHECK_INT(tern__wheel_expire(&w, base + 3 * MS + 17), 1);
    CHECK_INT(fired_count[1], 1);
    CHECK_INT(w.count, 0);
    CHECK_INT(tern__wheel_timeout_ns(&w, base + 4 * MS), -1);

    /* a deadline in the past fires on the next call, even with no time passing */
    tern__wheel_add(&w, &simple[2], base);
    CHECK_INT(tern__wheel_timeout_ns(&w, base + 4 * MS), 0);
    CHECK_INT(tern__wheel_expire(&w, base + 4 * MS), 1);
    CHECK_INT(fired_count[2], 1);

    /* cancel: no-op when not armed, removes when armed, re-add moves */
    tern__wheel_cancel(&w, &simple[3]);
    tern__wheel_add(&w, &simple[3], base + 10 * MS);
    tern__wheel_cancel(&w, &simple[3]);
    tern__wheel_cancel(&w, &simple[3]);
    CHECK_INT(w.count, 0);
    tern__wheel_add(&w, &simple[4], base + 10 * MS);
    tern__wheel_add(&w, &simple[4], base + 20 * MS);
    CHECK_INT(w.count, 1);
    CHECK_INT(tern__wheel_expire(&w, base + 15 * MS), 0);
    CHECK_INT(tern__wheel_expire(&w, base + 20 * MS), 1);
    CHECK_INT(fired_count[3], 0);
    CHECK_INT(fired_count[4], 1);
    for (int l = 0; l < TERN_WHEEL_LEVELS; l++) CHECK_INT(w.occupied[l], 0);
}

/* Timers in a wheel slot above level 0: the bound may be early, never late,
 * and a timer cascaded into level 0 gets an exact answer. */
static void test_timeout_levels(void) {
    tern__wheel w;
    uint64_t now = 1084 * MS;        /* tick 1084 = 16 * 64 + 60 */
    uint64_t dl = now + 10 * MS + 5; /* crosses a 64 ms boundary: level 1 */
    int64_t to;

    reset_simple();
    tern__wheel_init(&w, now);
    tern__wheel_add(&w, &simple[0], dl);
    CHECK(w.occupied[0] == 0 && w.occupied[1] != 0);
    to = tern__wheel_timeout_ns(&w, now);
    CHECK(to >= 0 && (uint64_t)to <= dl - now);
    /* follow the loop: sleep as told, expire, until it fires */
    for (int i = 0; i < 10 && !fired_count[0]; i++) {
        now += (uint64_t)tern__wheel_timeout_ns(&w, now);
        CHECK(now <= dl);
        tern__wheel_expire(&w, now);
    }
    CHECK_INT(fired_count[0], 1);
    CHECK(now == dl);

    /* a far deadline: bound never late, and a loop following it needs few
     * wakeups (one per level at most, plus the exact one) */
    now = 7 * SEC + 3;
    tern__wheel_init(&w, now);
    dl = now + 3 * 24 * 3600 * SEC + 12345;
    tern__wheel_add(&w, &simple[1], dl);
    int wakeups = 0;
    while (!fired_count[1] && wakeups < 100) {
        to = tern__wheel_timeout_ns(&w, now);
        CHECK(to >= 0 && (uint64_t)to <= dl - now);
        now += (uint64_t)to;
        tern__wheel_expire(&w, now);
        wakeups++;
    }
    CHECK_INT(fired_count[1], 1);
    CHECK(now == dl);
    CHECK(wakeups <= TERN_WHEEL_LEVELS + 1);
}

/* ---- callbacks that manipulate the wheel --------------------------------- */

static tern__wheel cb_wheel;
static uint64_t cb_now;
static int rearm_calls;

static void on_rearm_past(tern__timer *t) {
    rearm_calls++;
    tern__wheel_add(&cb_wheel, t, cb_now - 5 * MS); /* already overdue */
}

static void test_rearm_from_callback(void) {
    tern__timer t = {.fn = on_rearm_past};

    cb_now = 10 * SEC;
    rearm_calls = 0;
    tern__wheel_init(&cb_wheel, cb_now);
    tern__wheel_add(&cb_wheel, &t, cb_now + 1);
    CHECK_INT(tern__wheel_expire(&cb_wheel, cb_now), 0);
    cb_now += 1;
    /* re-armed into the past: must not fire again in the same call */
    CHECK_INT(tern__wheel_expire(&cb_wheel, cb_now), 1);
    CHECK_INT(rearm_calls, 1);
    CHECK(tern__timer_armed(&t));
    CHECK_INT(tern__wheel_timeout_ns(&cb_wheel, cb_now), 0);
    CHECK_INT(tern__wheel_expire(&cb_wheel, cb_now), 1);
    CHECK_INT(rearm_calls, 2);
    cb_now += 70 * SEC;
    CHECK_INT(tern__wheel_expire(&cb_wheel, cb_now), 1);
    CHECK_INT(rearm_calls, 3);
    tern__wheel_cancel(&cb_wheel, &t);
    CHECK_INT(cb_wheel.count, 0);
}

static tern__timer victims[3];
static int victim_fired;
static void on_victim(tern__timer *t) {
    victim_fired++;
}
static void on_killer(tern__timer *t) {
    /* the victims are due in this same call: cancel one, move one later */
    tern__wheel_cancel(&cb_wheel, &victims[0]);
    tern__wheel_cancel(&cb_wheel, &victims[1]);
    tern__wheel_add(&cb_wheel, &victims[2], cb_now + 1 * SEC);
}

static void test_cancel_from_other_callback(void) {
    tern__timer killer = {.fn = on_killer};
    int min_fired = 3;

    memset(victims, 0, sizeof victims);
    for (int i = 0; i < 3; i++) victims[i].fn = on_victim;
    victim_fired = 0;
    cb_now = 20 * SEC;
    tern__wheel_init(&cb_wheel, cb_now);
    /* victims are linked into the slot before the killer, killer first in the
     * due list or not: run both orders */
    for (int order = 0; order < 2; order++) {
        victim_fired = 0;
        if (order == 0) tern__wheel_add(&cb_wheel, &killer, cb_now + 2 * MS);
        for (int i = 0; i < 3; i++) tern__wheel_add(&cb_wheel, &victims[i], cb_now + 2 * MS);
        if (order == 1) tern__wheel_add(&cb_wheel, &killer, cb_now + 2 * MS);
        cb_now += 2 * MS;
        size_t n = tern__wheel_expire(&cb_wheel, cb_now);
        /* killer always fires; a victim fires only if it was called before the
         * killer, and then the killer's cancel is a no-op */
        CHECK_INT(n, 1 + (size_t)victim_fired);
        CHECK(!tern__timer_armed(&victims[0]) && !tern__timer_armed(&victims[1]));
        CHECK(tern__timer_armed(&victims[2])); /* moved by the killer either way */
        CHECK_INT(cb_wheel.count, 1);
        if (victim_fired < min_fired) min_fired = victim_fired;
        CHECK_INT(tern__wheel_expire(&cb_wheel, cb_now + 1 * SEC - 1), 0);
        tern__wheel_expire(&cb_wheel, cb_now + 1 * SEC);
        CHECK(!tern__timer_armed(&victims[2]));
        CHECK_INT(cb_wheel.count, 0);
        cb_now += 1 * SEC;
    }
    /* the killer was called before the victims in one of the two orders, so the
     * cancel of a timer already on the due list was exercised */
    CHECK_INT(min_fired, 0);
}

/* ---- long gaps and far deadlines ------------------------------------------ */

static void test_large_jumps(void) {
    tern__wheel w;
    uint64_t now = 123 * SEC;
    uint64_t dls[6] = {now + 10 * 60 * SEC,
                       now + 3 * 24 * 3600 * SEC,
                       now + 400ull * 24 * 3600 * SEC,
                       now + 5ull * 365 * 24 * 3600 * SEC,
                       UINT64_MAX - 1,
                       UINT64_MAX};

    reset_simple();
    tern__wheel_init(&w, now);
    for (int i = 0; i < 6; i++) tern__wheel_add(&w, &simple[i], dls[i]);
    CHECK(w.overflow != NULL); /* 5 years is beyond 2^36 ms */
    for (int i = 0; i < 6; i++) {
        /* just before, then exactly at each deadline, in one jump each */
        CHECK_INT(tern__wheel_expire(&w, dls[i] - 1), 0);
        int64_t to = tern__wheel_timeout_ns(&w, dls[i] - 1);
        CHECK(to >= 0 && to <= 1);
        CHECK_INT(tern__wheel_expire(&w, dls[i]), 1);
        CHECK_INT(fired_count[i], 1);
        CHECK(!tern__timer_armed(&simple[i]));
    }
    CHECK_INT(w.count, 0);

    /* The cost of a call must not depend on the gap: 1000 jumps of ten minutes
     * each with a timer pending would be 6e8 tick steps if the wheel walked
     * every millisecond; allow 1 s even for a sanitizer build. */
    tern__wheel_init(&w, 0);
    uint64_t t0 = mono_ns();
    for (uint64_t i = 1; i <= 1000; i++) {
        tern__wheel_add(&w, &simple[7], i * 600 * SEC - 7);
        CHECK_INT(tern__wheel_expire(&w, i * 600 * SEC), 1);
    }
    uint64_t el = mono_ns() - t0;
    CHECK(el < 1 * SEC);
    fprintf(stderr, "1000 ten-minute jumps: %.0f ns per add + expire\n", (double)el / 1000);

    /* a wheel clock just below a 2^36 ms boundary: a timer a few ms ahead
     * crosses it and must still fire on time */
    reset_simple();
    now = ((1ull << 36) - 2) * MS;
    tern__wheel_init(&w, now);
    tern__wheel_add(&w, &simple[0], now + 5 * MS);
    CHECK(w.overflow == &simple[0]);
    int64_t to = tern__wheel_timeout_ns(&w, now);
    CHECK(to >= 0 && (uint64_t)to <= 5 * MS);
    CHECK_INT(tern__wheel_expire(&w, now + 5 * MS - 1), 0);
    CHECK_INT(tern__wheel_expire(&w, now + 5 * MS), 1);
}

/* ---- randomised comparison against a brute-force model -------------------- */

#define NT 4000

typedef struct {
    int armed;
    uint64_t deadline;
    unsigned long epoch; /* expire call during or after which it was (re-)armed */
    int fires;
} model_t;

static tern__timer rt[NT];
static model_t model[NT];
static tern__wheel rw;
static uint64_t rnow;
static unsigned long cur_epoch; /* number of the expire call running, or last run */
static int in_expire;
static long errors_early, errors_unarmed, errors_same_call;

static uint64_t random_deadline(void) {
    switch (rnd() % 8) {
    case 0:
        return rnow > 5 * MS ? rnow - rnd() % (5 * MS) : 0; /* past */
    case 1:
        return rnow + rnd() % MS; /* within ~1 ms */
    case 2:
        return rnow + rnd() % (64 * MS); /* level 0/1 */
    case 3:
        return rnow + rnd() % (5 * SEC);
    case 4:
        return rnow + rnd() % (600 * SEC);
    case 5:
        return rnow + rnd() % (10ull * 24 * 3600 * SEC); /* days */
    case 6:
        return rnow + (rnd() % 64) * MS; /* exact ms boundaries */
    default:
        return rnow + rnd() % (200 * MS);
    }
}

static void model_arm(int i, uint64_t dl) {
    tern__wheel_add(&rw, &rt[i], dl);
    model[i].armed = 1;
    model[i].deadline = dl;
    /* armed inside a callback of call E: eligible from call E+1 */
    model[i].epoch = in_expire ? cur_epoch : cur_epoch - 1;
}

static void model_cancel(int i) {
    tern__wheel_cancel(&rw, &rt[i]);
    model[i].armed = 0;
}

static void on_random(tern__timer *t) {
    int i = (int)(t - rt);

    if (!model[i].armed) errors_unarmed++;
    if (rnow < model[i].deadline) errors_early++;
    if (model[i].epoch >= cur_epoch) errors_same_call++;
    if (tern__timer_armed(t)) errors_unarmed++;
    model[i].armed = 0;
    model[i].fires++;

    switch (rnd() % 8) {
    case 0:
        model_arm(i, random_deadline());
        break; /* re-arm self, maybe overdue */
    case 1:
        model_arm(i, rnow);
        break; /* re-arm self at now */
    case 2:
        model_cancel((int)(rnd() % NT));
        break; /* cancel anyone, maybe due now */
    case 3: {
        int j = (int)(rnd() % NT); /* separate statements: argument order is unspecified */
        model_arm(j, random_deadline());
        break;
    }
    default:
        break;
    }
}

static void test_random_model(void) {
    long checks_missing = 0, checks_timeout = 0, fired_total = 0;

    memset(rt, 0, sizeof rt);
    memset(model, 0, sizeof model);
    for (int i = 0; i < NT; i++) rt[i].fn = on_random;
    /* start 20 days before a 2^36 ms boundary: the run (~40 days of clock)
     * crosses it, so timers go through the overflow list too */
    rnow = ((1ull << 36) - 20ull * 24 * 3600 * 1000) * MS + 567;
    cur_epoch = 1;
    tern__wheel_init(&rw, rnow);

    for (int round = 0; round < 20000; round++) {
        int ops = (int)(rnd() % 64);
        for (int k = 0; k < ops; k++) {
            int i = (int)(rnd() % NT);
            if (rnd() % 4 == 0)
                model_cancel(i);
            else
                model_arm(i, random_deadline());
        }

        switch (rnd() % 10) { /* advance the clock */
        case 0:
            break;
        case 1:
            rnow += rnd() % 1000;
            break;
        case 2:
            rnow += rnd() % MS;
            break;
        case 3:
            rnow += rnd() % (3 * MS);
            break;
        case 4:
            rnow += rnd() % (100 * MS);
            break;
        case 5:
            rnow += rnd() % (10 * SEC);
            break;
        case 6:
            rnow += rnd() % (3600 * SEC);
            break;
        default: { /* sleep as the wheel says, sometimes a bit less */
            int64_t to = tern__wheel_timeout_ns(&rw, rnow);
            if (to > 0) rnow += (uint64_t)to - (rnd() % 2 ? 0 : rnd() % (uint64_t)to);
        }
        }

        /* timeout: never later than the true earliest deadline, -1 iff empty */
        uint64_t earliest = UINT64_MAX;
        size_t armed = 0;
        for (int i = 0; i < NT; i++)
            if (model[i].armed) {
                armed++;
                if (model[i].deadline < earliest) earliest = model[i].deadline;
            }
        CHECK_INT(rw.count, armed);
        int64_t to = tern__wheel_timeout_ns(&rw, rnow);
        if (!armed) {
            if (to != -1) checks_timeout++;
        } else {
            uint64_t want = earliest <= rnow ? 0 : earliest - rnow;
            if (to < 0 || (uint64_t)to > want) checks_timeout++;
            /* exact when the earliest is in the current level-0 lap */
            if (earliest / MS >> 6 == rw.now_ms >> 6 && rnow / MS == rw.now_ms &&
                (uint64_t)to != want)
                checks_timeout++;
        }

        in_expire = 1;
        fired_total += (long)tern__wheel_expire(&rw, rnow);
        in_expire = 0;
        /* everything armed before this call and due by now has fired */
        for (int i = 0; i < NT; i++)
            if (model[i].armed && model[i].deadline <= rnow && model[i].epoch < cur_epoch)
                checks_missing++;
        cur_epoch++;
    }
    long model_fires = 0;
    for (int i = 0; i < NT; i++) model_fires += model[i].fires;
    CHECK_INT(model_fires, fired_total);
    CHECK_INT(errors_early, 0);
    CHECK_INT(errors_unarmed, 0);
    CHECK_INT(errors_same_call, 0);
    CHECK_INT(checks_missing, 0);
    CHECK_INT(checks_timeout, 0);
    CHECK(fired_total > 100000); /* the run exercised expiry, not just add/cancel */
    CHECK(rnow / MS >> 36 == 1); /* and crossed the boundary */
    fprintf(stderr, "random model: %ld fires over 20000 expire calls\n", fired_total);

    for (int i = 0; i < NT; i++) tern__wheel_cancel(&rw, &rt[i]);
    CHECK_INT(rw.count, 0);
    for (int l = 0; l < TERN_WHEEL_LEVELS; l++) CHECK_INT(rw.occupied[l], 0);
    CHECK(rw.overflow == NULL);
}

/* ---- throughput ------------------------------------------------------------ */

static void test_perf(void) {
    enum { N = 1000000 };
    tern__timer *ts = calloc(N, sizeof *ts);
    uint64_t now = 50 * SEC, *dl = malloc(N * sizeof *dl);
    tern__wheel w;
    long n_fired = 0;

    CHECK(ts && dl);
    if (!ts || !dl) return;
    for (int i = 0; i < N; i++) {
        ts[i].fn = on_simple; /* never called below, only counted */
        dl[i] = now + rnd() % (120 * SEC);
    }
    tern__wheel_init(&w, now);
    uint64_t t0 = mono_ns();
    for (int i = 0; i < N; i++) tern__wheel_add(&w, &ts[i], dl[i]);
    uint64_t t1 = mono_ns();
    for (int i = 0; i < N; i++) tern__wheel_cancel(&w, &ts[i]);
    uint64_t t2 = mono_ns();
    CHECK_INT(w.count, 0);
    fprintf(stderr, "1M timers (0-120 s): add %.1f ns/op, cancel %.1f ns/op\n",
            (double)(t1 - t0) / N, (double)(t2 - t1) / N);

    /* expiry of all of them, stepping 1 ms at a time as a busy loop would */
    reset_simple();
    for (int i = 0; i < N; i++) {
        ts[i].fn = on_victim;
        tern__wheel_add(&w, &ts[i], dl[i]);
    }
    victim_fired = 0;
    t0 = mono_ns();
    for (uint64_t t = now; t <= now + 120 * SEC; t += MS) n_fired += (long)tern__wheel_expire(&w, t);
    t1 = mono_ns();
    CHECK_INT(n_fired, N);
    CHECK_INT(victim_fired, N);
    fprintf(stderr, "1M timers expired over 120000 1-ms steps: %.1f ns per timer (incl. steps)\n",
            (double)(t1 - t0) / N);
    free(ts);
    free(dl);
}

int main(void) {
    test_exact_deadline();
    test_timeout_levels();
    test_rearm_from_callback();
    test_cancel_from_other_callback();
    test_large_jumps();
    test_random_model();
    test_perf();
    return check_done();
}
