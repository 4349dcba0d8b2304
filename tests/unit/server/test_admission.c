/* Admission control logic with explicit time: the CoDel-style overload
 * decision (standing queue, hysteresis), the shedding rule, the adaptive
 * concurrency limit and the load level. */
#include <stdint.h>

#include "check.h"
#include "server/admission.h"

#define MS 1000000ull
#define US 1000ull

/* one interval of requests, each having waited `delay` */
static int interval_of(tern__admission *a, uint64_t *now, uint64_t delay, int n) {
    int shed = 0;
    for (int i = 0; i < n; i++) {
        *now += 100 * MS / (uint64_t)n;
        shed += tern__admission_check(a, delay, *now, 0, 0);
    }
    return shed;
}

static void test_standing_queue(void) {
    tern__admission a;
    uint64_t now = 1000 * MS;
    tern__admission_init(&a, 5 * MS, 100 * MS, now);
    /* bursts: some requests wait 20 ms, but the minimum stays low: calm */
    for (int k = 0; k < 3; k++) {
        for (int i = 0; i < 10; i++) {
            now += 10 * MS;
            CHECK_INT(tern__admission_check(&a, i == 0 ? 1 * MS : 20 * MS, now, 0, 0), 0);
        }
    }
    CHECK(!a.overloaded);
    /* a standing queue: even the luckiest waits 8 ms -> overloaded next interval */
    interval_of(&a, &now, 8 * MS, 10);
    now += 1;
    tern__admission_tick(&a, now);
    CHECK(a.overloaded);
    /* overloaded: what waited more than the 5 ms target is shed at once */
    CHECK_INT(tern__admission_check(&a, 6 * MS, now, 0, 0), 1);
    CHECK_INT(tern__admission_check(&a, 1 * MS, now, 0, 0), 0);
    /* not overloaded: only a whole interval of waiting is shed */
    tern__admission b;
    tern__admission_init(&b, 5 * MS, 100 * MS, now);
    CHECK_INT(tern__admission_check(&b, 50 * MS, now, 0, 0), 0);
    CHECK_INT(tern__admission_check(&b, 150 * MS, now, 0, 0), 1);
}

static void test_hysteresis(void) {
    tern__admission a;
    uint64_t now = 0;
    tern__admission_init(&a, 5 * MS, 100 * MS, now);
    interval_of(&a, &now, 10 * MS, 10);
    interval_of(&a, &now, 1 * MS, 10); /* closes the standing interval */
    CHECK(a.overloaded);
    /* one calm interval is the shedding working, not the load gone */
    interval_of(&a, &now, 1 * MS, 10);
    CHECK(a.overloaded);
    interval_of(&a, &now, 1 * MS, 10);
    interval_of(&a, &now, 1 * MS, 10);
    CHECK(!a.overloaded);
    /* an idle gap of a whole interval ends it at once */
    interval_of(&a, &now, 10 * MS, 10);
    interval_of(&a, &now, 10 * MS, 10);
    CHECK(a.overloaded);
    now += 500 * MS;
    tern__admission_tick(&a, now);
    CHECK(!a.overloaded);
}

static void test_concurrency_limit(void) {
    tern__admission a;
    uint64_t now = 0;
    tern__admission_init(&a, 5 * MS, 100 * MS, now);
    CHECK_INT(a.limit, 4); /* slow start */
    /* unloaded: 1 ms handlers one at a time */
    for (int i = 0; i < 20; i++) {
        tern__admission_start(&a);
        tern__admission_done(&a, 1 * MS, 1 * MS);
    }
    CHECK_INT(a.min_latency_ns, 1 * MS);
    /* the limit used and times unchanged: it doubles each interval */
    for (int k = 0; k < 4; k++) {
        unsigned before = a.limit;
        for (unsigned i = 0; i < before; i++) tern__admission_start(&a);
        for (unsigned i = 0; i < before; i++) tern__admission_done(&a, 1 * MS, 1 * MS);
        now += 101 * MS;
        tern__admission_tick(&a, now);
        CHECK_INT(a.limit, 2 * before);
    }
    unsigned start = a.limit;
    CHECK_INT(start, 64);
    /* 32 interleaved handlers take 32 ms each: the limit is cut in
     * proportion (2 x 1 ms / 32 ms of 64 -> 4), not by a quarter per interval */
    for (int i = 0; i < 32; i++) tern__admission_start(&a);
    for (int i = 0; i < 32; i++) tern__admission_done(&a, 32 * MS, 3 * MS); /* 96 ms of CPU in the interval */
    now += 101 * MS;
    tern__admission_tick(&a, now);
    CHECK(a.limit < start / 4);
    CHECK(a.limit >= 1);
    unsigned cut = a.limit;
    /* at the limit, a new request is shed at once */
    for (unsigned i = 0; i < cut; i++) tern__admission_start(&a);
    CHECK_INT(tern__admission_check(&a, 0, now, 0, 0), 1);
    for (unsigned i = 0; i < cut; i++) tern__admission_done(&a, 1 * MS, 1 * MS);
    CHECK_INT(tern__admission_check(&a, 0, now, 0, 0), 0);
    /* times back near the unloaded time and the limit used: it grows */
    for (int k = 0; k < 5; k++) {
        for (unsigned i = 0; i < a.limit; i++) tern__admission_start(&a);
        for (unsigned i = 0, n = a.running; i < n; i++) tern__admission_done(&a, 1 * MS + 100 * US, 1 * MS);
        now += 101 * MS;
        tern__admission_tick(&a, now);
    }
    CHECK(a.limit > cut);
}

/* A burst on a fresh worker is admitted whole, however many run at once:
 * nothing says the worker is slower yet. */
static void test_short_interleaved_burst_not_congestion(void) {
    tern__admission a;
    uint64_t now = 0;
    tern__admission_init(&a, 5 * MS, 100 * MS, now);
    for (int i = 0; i < 5; i++) tern__admission_done(&a, 200 * US, 200 * US);
    now += 101 * MS;
    tern__admission_tick(&a, now);
    /* 50 requests of 200 us interleave: each takes ~10 ms, 50x the unloaded
     * time, but the worker was busy for 10 ms of 100 */
    for (int i = 0; i < 50; i++) tern__admission_start(&a);
    for (int i = 0; i < 50; i++) tern__admission_done(&a, 10 * MS, 200 * US);
    now += 101 * MS;
    tern__admission_tick(&a, now);
    CHECK(!a.congested);
    for (int i = 0; i < 100; i++) {
        CHECK_INT(tern__admission_check(&a, 100 * US, now, 0, 0), 0);
        tern__admission_start(&a);
    }
}

static void test_fresh_burst_admitted(void) {
    tern__admission a;
    uint64_t now = 0;
    tern__admission_init(&a, 5 * MS, 100 * MS, now);
    for (int i = 0; i < 200; i++) {
        CHECK_INT(tern__admission_check(&a, 100 * US, now, 0, 0), 0);
        tern__admission_start(&a);
    }
    CHECK_INT(a.shed_total, 0);
    CHECK_INT(tern__admission_level(&a, 0, 0), 0);
}

/* Parked requests (a 100 ms sleep) take the same time however many wait
 * at once: their number never becomes load. Then a phase where interleaved
 * CPU work makes times grow: congestion, the limit applies; then the load
 * falls under the limit with times in budget: congestion ends. */
static void test_parked_are_not_load(void) {
    tern__admission a;
    uint64_t now = 0;
    tern__admission_init(&a, 5 * MS, 100 * MS, now);
    for (int k = 0; k < 6; k++) {
        unsigned n = 10u << k; /* 10 .. 320 parked at once */
        for (unsigned i = 0; i < n; i++) {
            CHECK_INT(tern__admission_check(&a, 50 * US, now, 0, 0), 0);
            tern__admission_start(&a);
        }
        for (unsigned i = 0; i < n; i++) tern__admission_done(&a, 100 * MS + i * US, 10 * US);
        now += 101 * MS;
        tern__admission_tick(&a, now);
        CHECK(!a.congested);
    }
    CHECK_INT(a.shed_total, 0);
    CHECK(a.limit >= 320);
    /* CPU work interleaving: times quadruple */
    for (unsigned i = 0; i < 64; i++) tern__admission_start(&a);
    for (unsigned i = 0; i < 64; i++) tern__admission_done(&a, 400 * MS, 1500 * US); /* 96 ms of CPU */
    now += 101 * MS;
    tern__admission_tick(&a, now);
    CHECK(a.congested);
    CHECK(tern__admission_level(&a, 0, 0) >= 75);
    unsigned limit = a.limit;
    CHECK(limit < 64);
    for (unsigned i = 0; i < limit; i++) tern__admission_start(&a);
    CHECK_INT(tern__admission_check(&a, 50 * US, now, 0, 0), 1); /* over the limit */
    for (unsigned i = 0; i < limit; i++) tern__admission_done(&a, 100 * MS, 10 * US);
    /* demand falls under the limit, times in budget: calm after 3 intervals */
    for (int k = 0; k < 3; k++) {
        CHECK(a.congested);
        tern__admission_start(&a);
        tern__admission_done(&a, 100 * MS, 10 * US);
        now += 101 * MS;
        tern__admission_tick(&a, now);
    }
    CHECK(!a.congested);
}

static void test_level(void) {
    tern__admission a;
    uint64_t now = 0;
    tern__admission_init(&a, 5 * MS, 100 * MS, now);
    CHECK_INT(tern__admission_level(&a, 0, 0), 0);
    CHECK_INT(tern__admission_level(&a, 50, 100), 50);
    CHECK_INT(tern__admission_level(&a, 200, 100), 100);
    interval_of(&a, &now, 4 * MS, 10); /* min 4 ms of a 5 ms target */
    now += 1;
    tern__admission_tick(&a, now);
    CHECK_INT(tern__admission_level(&a, 0, 0), 80);
    tern__admission_lag(&a, 150 * MS, now); /* loop 1.5 intervals late */
    now += 101 * MS;
    tern__admission_tick(&a, now);
    CHECK_INT(tern__admission_level(&a, 0, 0), 100);
    CHECK(a.overloaded);
}

int main(void) {
    test_standing_queue();
    test_hysteresis();
    test_concurrency_limit();
    test_fresh_burst_admitted();
    test_short_interleaved_burst_not_congestion();
    test_parked_are_not_load();
    test_level();
    return check_done();
}
