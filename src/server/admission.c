#include "server/admission.h"

/* slow start, as TCP does: a cold worker does not let an unmeasured burst of
 * 64 CPU-heavy handlers interleave (their first completions would take 64
 * times the work); the limit doubles every interval while times stay near
 * the unloaded time, so an IO-bound route reaches 64 in half a second */
#define LIMIT_INITIAL 4
#define LIMIT_MAX 100000
/* leave overload only after this many calm intervals in a row: one quiet
 * interval in the middle of an overload is the shedding working, not the
 * load gone (measured: without it the worker cycles in ~300 ms) */
#define CALM_TO_RECOVER 3
#define MIN_REFRESH_INTERVALS 50

void tern__admission_init(tern__admission *a, uint64_t target_ns, uint64_t interval_ns, uint64_t now_ns) {
    *a = (tern__admission){.target_ns = target_ns,
                          .interval_ns = interval_ns,
                          .interval_end_ns = now_ns + interval_ns,
                          .min_delay_ns = UINT64_MAX,
                          .limit = LIMIT_INITIAL,
                          .min_latency_ns = UINT64_MAX,
                          .next_min_ns = UINT64_MAX};
}

static void limit_update(tern__admission *a) {
    if (!a->lat_count) {
        a->peak_running = a->running;
        a->last_avg_latency_ns = 0;
        return;
    }
    uint64_t avg = a->lat_sum_ns / a->lat_count;
    a->last_avg_latency_ns = avg;
    if (a->min_latency_ns != UINT64_MAX && avg > 2 * a->min_latency_ns) {
        /* gradient: scale the limit by how far the time is over budget, so
         * a burst that let 64 handlers interleave is cut back in one
         * interval, not eleven; at least a quarter off */
        uint64_t l = (uint64_t)a->limit * 2 * a->min_latency_ns / avg;
        uint64_t quarter_off = a->limit - a->limit / 4;
        if (l > quarter_off) l = quarter_off;
        a->limit = l ? (unsigned)l : 1;
    } else if (a->peak_running >= a->limit && a->limit < LIMIT_MAX) {
        /* the limit was used and times are within budget: double while they
         * stay close to the unloaded time, then grow by an eighth */
        unsigned g = a->min_latency_ns != UINT64_MAX && 2 * avg <= 3 * a->min_latency_ns
                         ? a->limit
                         : a->limit / 8;
        a->limit += g ? g : 1;
        if (a->limit > LIMIT_MAX) a->limit = LIMIT_MAX;
    }
    /* the unloaded time is re-learnt now and then, so a slower phase of the
     * application does not look like overload forever */
    if (++a->min_age >= MIN_REFRESH_INTERVALS && a->next_min_ns != UINT64_MAX) {
        a->min_latency_ns = a->next_min_ns;
        a->next_min_ns = UINT64_MAX;
        a->min_age = 0;
    }
    a->lat_sum_ns = a->lat_count = 0;
    a->peak_running = a->running;
}

void tern__admission_start(tern__admission *a) {
    a->running++;
    if (a->running > a->peak_running) a->peak_running = a->running;
}

void tern__admission_done(tern__admission *a, uint64_t latency_ns) {
    a->running--;
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
    limit_update(a);
    a->last_sheds = a->sheds_interval;
    a->sheds_interval = 0;
    a->last_min_delay_ns = min_delay;
    a->last_max_lag_ns = a->max_lag_ns;
    a->min_delay_ns = UINT64_MAX;
    a->max_lag_ns = 0;
    a->samples = 0;
    /* a whole interval with no event at all: the load is gone */
    if (now_ns - a->interval_end_ns >= a->interval_ns) {
        a->overloaded = 0;
        a->calm_intervals = 0;
    }
    a->interval_end_ns = now_ns + a->interval_ns;
}

void tern__admission_lag(tern__admission *a, uint64_t lag_ns, uint64_t now_ns) {
    tern__admission_tick(a, now_ns);
    if (lag_ns > a->max_lag_ns) a->max_lag_ns = lag_ns;
}

int tern__admission_check(tern__admission *a, uint64_t delay_ns, uint64_t now_ns, unsigned in_flight,
                         unsigned max_in_flight) {
    tern__admission_tick(a, now_ns);
    if (delay_ns < a->min_delay_ns) a->min_delay_ns = delay_ns;
    a->samples++;
    uint64_t allowed = a->overloaded ? a->target_ns : a->interval_ns;
    int shed = delay_ns > allowed || a->running >= a->limit;
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
    if (a->overloaded && worst < 100) worst = 100;
    return worst > 100 ? 100 : (unsigned)worst;
}
