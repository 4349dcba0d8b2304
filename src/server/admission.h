/* Admission control: per-route and server-wide in-flight limits, and
 * adaptive shedding driven by measured load (CoDel-style).
 *
 * Signals, all measured:
 *  - queue delay: from the kernel's receive timestamp of a request's last
 *    packet (SO_TIMESTAMPNS on the socket) to the moment its handler would
 *    start; it includes time in the socket buffer and in the event loop;
 *  - loop lag: how late the worker's 10 ms tick fires;
 *  - in-flight requests against max_in_flight.
 *
 * Shedding follows CoDel's idea applied to a request queue (as in
 * "Fail at Scale", Maurer 2015): the worker is overloaded when the *minimum*
 * queue delay over an interval (100 ms) stayed above the target (5 ms) —
 * a standing queue, not a burst — or when the loop lag stays above the
 * interval. While overloaded, a request that already waited longer than the
 * target is answered 503 at once; otherwise only requests that waited longer
 * than a whole interval are. One worker's state, owned by its thread. */
#ifndef TERN_SERVER_ADMISSION_H
#define TERN_SERVER_ADMISSION_H

#include <stdint.h>

/* Second mechanism, for handlers that yield (many interleave, so nobody
 * waits in a queue but everybody gets slower): an adaptive limit on the
 * adaptive requests running at once on the worker, in the spirit of TCP
 * Vegas. Each interval compares the requests' active time (running, or
 * ready while others run: never the time parked) with the smallest seen
 * recently (the unloaded time). Above twice that while the handlers kept
 * the worker busy for most of the interval (BUSY_PERCENT of it running
 * them: a burst the worker finishes in a fraction of the interval is not
 * overload however much its requests interleave), the worker is congested
 * and the limit is scaled down in proportion (at least by a quarter). Otherwise the limit follows the concurrency that kept
 * times in budget (the peak of the interval), and grows when it was reached
 * (doubling while times stay within 1.5x, then by an eighth).
 *
 * The limit is enforced only while the worker is congested or overloaded:
 * a burst that the worker absorbs without its handlers getting slower is
 * never shed, whatever its size, and a parked request (a handler waiting on
 * a sleep, a pool or an upstream) costs no CPU, so it never makes times
 * grow and never counts as load. Congestion ends after CALM_TO_RECOVER
 * intervals in which times were in budget and demand stayed under the
 * limit. */
typedef struct tern__admission {
    uint64_t target_ns, interval_ns;
    uint64_t interval_end_ns;
    uint64_t min_delay_ns;       /* this interval, UINT64_MAX without samples */
    uint64_t max_lag_ns;         /* this interval */
    uint64_t last_min_delay_ns;  /* previous complete interval (0 without samples) */
    uint64_t last_max_lag_ns;
    uint64_t samples;            /* this interval */
    int overloaded;              /* decided at the end of the previous interval */
    int congested;               /* handler times over budget: the limit applies */
    unsigned congested_calm;     /* consecutive calm intervals while congested */
    unsigned level;              /* 0..100 */
    uint64_t shed_total;
    unsigned calm_intervals;     /* consecutive intervals without a standing queue */
    uint64_t sheds_interval, last_sheds; /* sheds in this / the previous interval */
    /* concurrency limit */
    unsigned limit, running, peak_running;
    uint64_t min_latency_ns;     /* smallest handler time seen, refreshed every 50 intervals */
    uint64_t next_min_ns;        /* smallest of the current refresh window */
    unsigned min_age;
    uint64_t lat_sum_ns, lat_count;
    uint64_t run_sum_ns;         /* finished handlers' running time this interval */
    /* the worker thread's CPU clock (NULL in unit tests): busy is the CPU the
     * thread used over the interval, running handlers that have not finished
     * too (500 interleaved requests finish few per interval) */
    uint64_t (*cpu_clock)(void);
    uint64_t cpu_mark_ns;
    /* the short horizon (the 10 ms loop tick): a worker saturated for two
     * ticks in a row is congested now, before an interval's evidence, so a
     * cold overload admits ~20 ms of backlog, not 100 ms or more */
    uint64_t tick_cpu_ns, tick_wall_ns;
    unsigned hot_ticks;
} tern__admission;

void tern__admission_init(tern__admission *a, uint64_t target_ns, uint64_t interval_ns, uint64_t now_ns);
/* From the worker thread that owns a: busy is measured on its CPU clock. */
void tern__admission_use_thread_cpu(tern__admission *a);
/* Closes intervals that ended by now_ns (call at least once per loop pass). */
void tern__admission_tick(tern__admission *a, uint64_t now_ns);
void tern__admission_lag(tern__admission *a, uint64_t lag_ns, uint64_t now_ns);
/* A request is about to run after waiting delay_ns; returns 1 to shed it. */
int tern__admission_check(tern__admission *a, uint64_t delay_ns, uint64_t now_ns, unsigned in_flight,
                         unsigned max_in_flight);
/* An admitted adaptive request starts / finished after latency_ns. */
void tern__admission_start(tern__admission *a);
void tern__admission_done(tern__admission *a, uint64_t active_ns, uint64_t run_ns);

/* Load level 0..100 from the last interval's signals and the in-flight
 * ratio; 100 while shedding (a standing queue, or sheds in this or the last
 * interval), at least 75 while congested. */
unsigned tern__admission_level(const tern__admission *a, unsigned in_flight, unsigned max_in_flight);

#endif
