/* Per-worker metrics: counters, a per-second ring and log-linear histograms
 * written only by the owning worker (relaxed atomic load + store: no locked
 * read-modify-write and no shared cache line on the request path) and
 * summed by readers on any thread.
 *
 * Histogram buckets (values in ns), HdrHistogram-style: 16 linear buckets of
 * 64 ns up to 1024 ns, then every power of two [2^k, 2^(k+1)) split into 16
 * linear sub-buckets of 2^(k-4) ns (so at most 6.25% wide), up to 2^37 ns
 * (137 s); larger values land in one overflow bucket. Buckets are closed on
 * the right, (lo, hi], so that a Prometheus `le` bound is exact: bucket 0
 * holds [0, 64], bucket 1 (64, 128], ... */
#ifndef TERN_SERVER_METRICS_H
#define TERN_SERVER_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "tern.h"
#include "tern/metrics.h"

#define TERN_HIST_SUB_BITS 4
#define TERN_HIST_SUB (1u << TERN_HIST_SUB_BITS)
#define TERN_HIST_LINEAR_BITS 10    /* linear part: [0, 2^10 ns] */
#define TERN_HIST_TOP_BITS 37       /* last regular bucket ends at 2^37 ns */
#define TERN_HIST_REGULAR ((TERN_HIST_TOP_BITS - TERN_HIST_LINEAR_BITS + 1) * TERN_HIST_SUB)
#define TERN_HIST_BUCKETS (TERN_HIST_REGULAR + 1) /* + overflow */
#define TERN_HIST_OVERFLOW TERN_HIST_REGULAR

/* Seconds of per-second response counts kept: 10 for the longest window,
 * the current (partial) second, and slack so a slot is never reused while
 * a reader may still want it. */
#define TERN_METRICS_RING 16

typedef struct tern__hist {
    _Atomic uint64_t sum;       /* ns */
    _Atomic uint64_t max;       /* ns */
    _Atomic uint64_t bucket[TERN_HIST_BUCKETS];
} tern__hist;

/* A histogram read (or several summed): plain numbers. */
typedef struct tern__hist_snap {
    uint64_t count, sum, max;
    uint64_t bucket[TERN_HIST_BUCKETS];
} tern__hist_snap;

typedef struct tern__metrics {
    uint64_t start_ns;          /* creation time (tern__metrics_now clock); read-only */
    _Atomic uint64_t conns_opened, conns_closed, timeouts, responses, rejected, shed;
    _Atomic uint64_t status_class[6]; /* [1..5] = 1xx..5xx, [0] = anything else */
    /* (second << 32) | responses in that second, one 64-bit word per slot so
     * a reader never sees a new second with the old second's count */
    _Atomic uint64_t per_second[TERN_METRICS_RING];
    tern__hist latency, queue_delay, loop_lag;
} tern__metrics;

tern__metrics *tern__metrics_new(void);
tern__metrics *tern__metrics_new_at(uint64_t now_ns); /* tests: explicit creation time */
void tern__metrics_free(tern__metrics *m);

/* The clock of the per-second ring and of uptime: CLOCK_MONOTONIC_COARSE,
 * the CLOCK_MONOTONIC time base at tick resolution (1-4 ms), read from the
 * vDSO without a TSC read: plenty for one-second buckets. */
uint64_t tern__metrics_now(void);

/* ---- hooks, called by the owning worker only ----------------------------- */
void tern__metrics_conn_opened(tern__metrics *m);
void tern__metrics_conn_closed(tern__metrics *m);
void tern__metrics_timeout(tern__metrics *m);
/* A response was queued: status and time since the request was complete. */
void tern__metrics_response(tern__metrics *m, int status, uint64_t latency_ns);
void tern__metrics_response_at(tern__metrics *m, int status, uint64_t latency_ns, uint64_t now_ns);
/* A malformed or refused request answered with an error status. */
void tern__metrics_rejected(tern__metrics *m, int status);
/* A request shed with 503 by admission control. */
void tern__metrics_shed(tern__metrics *m);
/* How late the worker's periodic timer fired. */
void tern__metrics_loop_lag(tern__metrics *m, uint64_t lag_ns);
/* How long a request waited between being read and its handler starting. */
void tern__metrics_queue_delay(tern__metrics *m, uint64_t ns);

/* ---- histogram math ------------------------------------------------------- */
unsigned tern__hist_index(uint64_t v);
/* Bucket i holds values in (lower, upper]; bucket 0 also holds 0. The
 * overflow bucket's upper bound is UINT64_MAX. */
uint64_t tern__hist_lower(unsigned i);
uint64_t tern__hist_upper(unsigned i);
void tern__hist_record(tern__hist *h, uint64_t v);
/* Adds h into acc (count = sum of the buckets as read). */
void tern__hist_snap_add(tern__hist_snap *acc, const tern__hist *h);
/* Value (ns) at quantile q in [0, 1] by nearest rank: linear interpolation
 * inside the bucket that holds the rank-th smallest sample (the bucket
 * holding the largest sample taken to end at it), so the result lies in the
 * same bucket as the exact answer. 0 for an empty histogram. */
double tern__hist_quantile(const tern__hist_snap *h, double q);

/* ---- reading --------------------------------------------------------------- */
typedef struct tern__metrics_snap {
    uint64_t responses, status_class[6], shed, rejected, timeouts;
    uint64_t conns_opened, conns_closed, active;
    double rps_1s, rps_10s;
    uint64_t start_ns;          /* earliest worker start, 0 if none */
    tern__hist_snap latency, queue_delay, loop_lag;
} tern__metrics_snap;

/* Responses per second of one worker over the last `window_s` complete
 * seconds before now_ns (see tern_stats.throughput_rps). */
double tern__metrics_rate(const tern__metrics *m, uint64_t now_ns, unsigned window_s);
/* Adds m into acc (acc zeroed by the caller first). */
void tern__metrics_snap_add(tern__metrics_snap *acc, const tern__metrics *m, uint64_t now_ns);
/* Derives the summary numbers (counters, percentiles...) from a snapshot;
 * leaves the process, in_flight, uptime and workers fields alone. */
void tern__metrics_snap_stats(const tern__metrics_snap *snap, tern_stats *out);

/* ---- extra sources --------------------------------------------------------- */
typedef struct tern__metrics_extra {
    char source[64];
    char name[64];
    char help[160];
    int counter;
    double value;
} tern__metrics_extra;

struct tern_metrics_writer {
    const char *source;
    tern__metrics_extra *items;
    size_t n, cap;
    int oom;
};

/* Runs every source registered for s (or for all servers) into w. */
void tern__metrics_collect_extras(tern_server *s, tern_metrics_writer *w);

/* ---- formatting ------------------------------------------------------------ */
typedef struct tern__mbuf {
    char *data;
    size_t len, cap;
    int oom;
} tern__mbuf;

void tern__mbuf_printf(tern__mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tern__mbuf_free(tern__mbuf *b);

typedef struct tern__metrics_report {
    tern_stats stats;
    tern__metrics_snap snap;
    tern_worker_stats *workers;
    int nworkers;
    tern_metrics_writer extras;
} tern__metrics_report;

/* Everything /stats and /metrics show, read at now_ns (tern__metrics_now
 * clock); extras only when with_extras. 0 or -ENOMEM. */
int tern__metrics_report_build(tern_server *s, tern__metrics_report *r, uint64_t now_ns,
                              int with_extras);
void tern__metrics_report_free(tern__metrics_report *r);
void tern__metrics_format_json(const tern__metrics_report *r, tern__mbuf *b);
void tern__metrics_format_prometheus(const tern__metrics_report *r, tern__mbuf *b);

#endif
