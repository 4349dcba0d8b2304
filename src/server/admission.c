#include "server/admission.h"

void tern_admission_init(tern_admission *a, uint64_t target_ns, uint64_t interval_ns, uint64_t now_ns) {
    *a = (tern_admission){.target_ns = target_ns,
                          .interval_ns = interval_ns,
                          .interval_end_ns = now_ns + interval_ns,
                          .min_delay_ns = UINT64_MAX};
}

void tern_admission_tick(tern_admission *a, uint64_t now_ns) {
    if (now_ns < a->interval_end_ns) return;
    /* a standing queue: even the luckiest request of the interval waited
     * longer than the target; or the loop itself fell a whole interval behind */
    uint64_t min_delay = a->samples ? a->min_delay_ns : 0;
    a->overloaded = min_delay > a->target_ns || a->max_lag_ns > a->interval_ns;
    a->last_min_delay_ns = min_delay;
    a->last_max_lag_ns = a->max_lag_ns;
    a->min_delay_ns = UINT64_MAX;
    a->max_lag_ns = 0;
    a->samples = 0;
    /* intervals with no event at all count as calm */
    if (now_ns - a->interval_end_ns >= a->interval_ns) a->overloaded = 0;
    a->interval_end_ns = now_ns + a->interval_ns;
}

void tern_admission_lag(tern_admission *a, uint64_t lag_ns, uint64_t now_ns) {
    tern_admission_tick(a, now_ns);
    if (lag_ns > a->max_lag_ns) a->max_lag_ns = lag_ns;
}

int tern_admission_check(tern_admission *a, uint64_t delay_ns, uint64_t now_ns, unsigned in_flight,
                         unsigned max_in_flight) {
    tern_admission_tick(a, now_ns);
    if (delay_ns < a->min_delay_ns) a->min_delay_ns = delay_ns;
    a->samples++;
    uint64_t allowed = a->overloaded ? a->target_ns : a->interval_ns;
    int shed = delay_ns > allowed;
    /* near the in-flight ceiling while overloaded: keep headroom */
    if (!shed && a->overloaded && max_in_flight && in_flight * 10 >= max_in_flight * 9) shed = 1;
    if (shed) a->shed_total++;
    return shed;
}

unsigned tern_admission_level(const tern_admission *a, unsigned in_flight, unsigned max_in_flight) {
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
    if (a->overloaded && worst < 100) worst = 100;
    return worst > 100 ? 100 : (unsigned)worst;
}
