#include "server/admission.h"

#include <time.h>

static uint64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* where the limit starts; it only matters once the worker is congested,
 * and by then it has followed the concurrency that ran in budget */
#define LIMIT_INITIAL 4
#define LIMIT_MAX 100000
/* leave overload only after this many calm intervals in a row: one quiet
 * interval in the middle of an overload is the shedding working, not the
 * load gone (measured: without it the worker cycles in ~300 ms) */
#define CALM_TO_RECOVER 3
#define MIN_REFRESH_INTERVALS 50
/* congestion needs the handlers to have kept the worker this busy */
#define BUSY_PERCENT 75

void tern__admission_use_thread_cpu(tern__admission *a) {
    a->cpu_clock = thread_cpu_ns;
    a->cpu_mark_ns = thread_cpu_ns();
}

void tern__admission_init(tern__admission *a, uint64_t target_ns, uint64_t interval_ns, uint64_t now_ns) {
    *a = (tern__admission){.target_ns = target_ns,
                          .interval_ns = interval_ns,
                          .interval_end_ns = now_ns + interval_ns,
                          .min_delay_ns = UINT64_MAX,
                          .limit = LIMIT_INITIAL,
                          .min_latency_ns = UINT64_MAX,
                          .next_min_ns = UINT64_MAX};
}

static void limit_cut(tern__admission *a, uint64_t avg) {
    /* gradient: scale the concurrency by how far the time is over budget,
     * so a burst that let 64 handlers interleave is cut back in one
     * interval, not eleven; at least a quarter off; from the concurrency
     * that actually ran when it was under the limit. */
    unsigned base = a->peak_running && a->peak_running < a->limit ? a->peak_running : a->limit;
    uint64_t l = (uint64_t)base * 2 * a->min_latency_ns / avg;
    uint64_t quarter_off = base - base / 4;
    if (l > quarter_off) l = quarter_off;
    a->limit = l ? (unsigned)l : 1;
}

static void limit_grow(tern__admission *a, uint64_t avg) {
    /* this much concurrency kept times in budget */
    if (a->peak_running > a->limit) a->limit = a->peak_running;
    if (a->peak_running >= a->limit && a->limit < LIMIT_MAX) {
        /* the limit was used: double while times stay close to the
         * unloaded time, then grow by an eighth */
        unsigned g = a->min_latency_ns != UINT64_MAX && 2 * avg <= 3 * a->min_latency_ns ? a->limit
                                                                                          : a->limit / 8;
        a->limit += g ? g : 1;
    }
    if (a->limit > LIMIT_MAX) a->limit = LIMIT_MAX;
}

static void limit_update(tern__admission *a, uint64_t elapsed_ns) {
    int calm = 1;
    if (a->lat_count) {
        uint64_t avg = a->lat_sum_ns / a->lat_count;
        uint64_t used = a->run_sum_ns;
        if (a->cpu_clock) {
            uint64_t now = a->cpu_clock();
            if (now - a->cpu_mark_ns > used) used = now - a->cpu_mark_ns;
        }
        int busy = used * 100 >= elapsed_ns * BUSY_PERCENT;
        if (busy && a->min_latency_ns != UINT64_MAX && avg > 2 * a->min_latency_ns) {
            limit_cut(a, avg);
            a->congested = 1;
            calm = 0;
        } else {
            limit_grow(a, avg);
        }
    }
    if (a->overloaded) {
        a->congested = 1;
        calm = 0;
    }
    /* congestion ends once times stay in budget while demand is under the
     * limit: a limit that is still reached is the limit working */
    if (!calm || a->peak_running >= a->limit)
        a->congested_calm = 0;
    else if (a->congested && ++a->congested_calm >= CALM_TO_RECOVER)
        a->congested = 0;
    /* the unloaded time is re-learnt now and then, so a slower phase of the
     * application does not look like overload forever */
    if (++a->min_age >= MIN_REFRESH_INTERVALS && a->next_min_ns != UINT64_MAX) {
        a->min_latency_ns = a->next_min_ns;
        a->next_min_ns = UINT64_MAX;
        a->min_age = 0;
    }
    a->lat_sum_ns = a->lat_count = 0;
    a->run_sum_ns = 0;
    if (a->cpu_clock) a->cpu_mark_ns = a->cpu_clock();
    a->peak_running = a->running;
}

void tern__admission_start(tern__admission *a) {
    a->running++;
    if (a->running > a->peak_running) a->peak_running = a->running;
}

void tern__admission_done(tern__admission *a, uint64_t latency_ns, uint64_t run_ns) {
    a->running--;
    a->run_sum_ns += run_ns;
    a->lat_sum_ns += latency_ns;
    a->lat_count++;
    if (latency_ns < a->min_latency_ns) a->min_latency_ns = latency_ns;
    if (latency_ns < a->next_min_ns) a->next_min_ns = latency_ns;
}

void tern__admission_tick(tern__admission *a, uint64_t now_ns) {
    if (now_ns < a->interval_end_ns) return;
    /* a standing queue: even the luckiest request of the interval waited
     * longer than the target; or the loop itself fell a whole interval behind */
    uint64_t min_delay = a->samples ? a->min_delay_ns : 0;
    int standing = min_delay > a->target_ns || a->max_lag_ns > a->interval_ns;
    if (standing) {
        a->overloaded = 1;
        a->calm_intervals = 0;
    } else if (a->overloaded && ++a->calm_intervals >= CALM_TO_RECOVER) {
        a->overloaded = 0;
    }
    limit_update(a, now_ns - (a->interval_end_ns - a->interval_ns));
    a->last_sheds = a->sheds_interval;
    a->sheds_interval = 0;
    a->last_min_delay_ns = min_delay;
    a->last_max_lag_ns = a->max_lag_ns;
    a->min_delay_ns = UINT64_MAX;
    a->max_lag_ns = 0;
    a->samples = 0;
    /* a whole interval with no event at all: the load is gone */
    if (now_ns - a->interval_end_ns >= a->interval_ns && !a->running) {
        a->overloaded = 0;
        a->calm_intervals = 0;
        a->congested = 0;
        a->congested_calm = 0;
    }
    a->interval_end_ns = now_ns + a->interval_ns;
}

void tern__admission_lag(tern__admission *a, uint64_t lag_ns, uint64_t now_ns) {
    tern__admission_tick(a, now_ns);
    if (lag_ns > a->max_lag_ns) a->max_lag_ns = lag_ns;
    if (!a->cpu_clock) return;
    uint64_t cpu = a->cpu_clock();
    if (a->tick_wall_ns && now_ns > a->tick_wall_ns) {
        int hot = (cpu - a->tick_cpu_ns) * 100 >= (now_ns - a->tick_wall_ns) * BUSY_PERCENT;
        a->hot_ticks = hot ? a->hot_ticks + 1 : 0;
    }
    a->tick_cpu_ns = cpu;
    a->tick_wall_ns = now_ns;
}

int tern__admission_check(tern__admission *a, uint64_t delay_ns, uint64_t now_ns, unsigned in_flight,
                         unsigned max_in_flight) {
    tern__admission_tick(a, now_ns);
    if (delay_ns < a->min_delay_ns) a->min_delay_ns = delay_ns;
    a->samples++;
    uint64_t allowed = a->overloaded ? a->target_ns : a->interval_ns;
    /* congested by an interval's evidence: the measured limit; only hot for
     * two ticks (a cold overload, no evidence yet): slow start's limit */
    unsigned limit = a->limit;
    int congested = a->congested || a->overloaded;
    if (!congested && a->hot_ticks >= 2) {
        congested = 1;
        if (limit > LIMIT_INITIAL) limit = LIMIT_INITIAL;
    }
    int shed = delay_ns > allowed || (congested && a->running >= limit);
    /* near the in-flight ceiling while overloaded: keep headroom */
    if (!shed && a->overloaded && max_in_flight && in_flight * 10 >= max_in_flight * 9) shed = 1;
    if (shed) {
        a->shed_total++;
        a->sheds_interval++;
    }
    return shed;
}

unsigned tern__admission_level(const tern__admission *a, unsigned in_flight, unsigned max_in_flight) {
    /* each signal as a percentage of its limit; level = the worst, capped.
     * 100 means at or past a limit. */
    uint64_t worst = 0;
    if (a->target_ns) {
        uint64_t q = a->last_min_delay_ns * 100 / a->target_ns;
        if (q > worst) worst = q;
    }
    if (a->interval_ns) {
        uint64_t l = a->last_max_lag_ns * 100 / a->interval_ns;
        if (l > worst) worst = l;
    }
    if (max_in_flight) {
        uint64_t f = (uint64_t)in_flight * 100 / max_in_flight;
        if (f > worst) worst = f;
    }
    /* (handler time against the unloaded time is not part of the level:
     * with yielding handlers it also rises with harmless sharing; it only
     * steers the concurrency limit, whose sheds show in the mode) */
    if ((a->overloaded || a->last_sheds || a->sheds_interval) && worst < 100) worst = 100;
    if (a->congested && worst < 75) worst = 75;
    return worst > 100 ? 100 : (unsigned)worst;
}
