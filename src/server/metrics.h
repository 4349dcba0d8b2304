/* Per-worker metrics: counters, a per-second throughput ring, log-linear
 * latency histograms (src/metrics/histogram.h) since start and over recent
 * windows (src/metrics/window.h), written only by the owning worker and
 * summed by readers on any thread; the report behind tern_stats_read,
 * /stats and /metrics.
 *
 * Latency, as measured by the caller of tern__metrics_response: from the
 * loop pass that read the complete request (ctx->start_ns) to its response
 * being queued in the write buffer (status line, headers and an in-buffer
 * body serialised; before the send). It is not the handler's own run time
 * alone (queueing and parks are included), nor the time to the last byte on
 * the wire. */
#ifndef TERN_SERVER_METRICS_H
#define TERN_SERVER_METRICS_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "metrics/histogram.h"
#include "metrics/window.h"
#include "metrics/writer.h"
#include "tern.h"
#include "tern/metrics.h"

/* Seconds of per-second response counts kept: 10 for the longest window,
 * the current (partial) second, and slack so a slot is never reused while
 * a reader may still want it. */
#define TERN_METRICS_RING 16

/* The recent latency windows shown, in seconds. */
#define TERN_METRICS_SHORT_WINDOW_S 10
#define TERN_METRICS_LONG_WINDOW_S 60

typedef struct tern__metrics {
    uint64_t start_ns; /* creation time (tern__metrics_now clock); read-only */
    _Atomic uint64_t conns_opened, conns_closed, timeouts, responses, rejected, shed;
    _Atomic uint64_t client_gone, client_gone_ns; /* requests abandoned by the client */
    _Atomic uint64_t status_class[6];             /* [1..5] = 1xx..5xx, [0] = anything else */
    /* (second << 32) | responses in that second, one 64-bit word per slot so
     * a reader never sees a new second with the old second's count */
    _Atomic uint64_t per_second[TERN_METRICS_RING];
    tern__hist latency, queue_delay, loop_lag;
    tern__hist_window latency_recent; /* per-second latency slots, last 60 s */
} tern__metrics;

tern__metrics *tern__metrics_new(void);
tern__metrics *tern__metrics_new_at(uint64_t now_ns); /* tests: explicit creation time */
void tern__metrics_free(tern__metrics *m);

/* The clock of the per-second rings and of uptime: CLOCK_MONOTONIC_COARSE,
 * the CLOCK_MONOTONIC time base at tick resolution (1-4 ms), read from the
 * vDSO without a TSC read: plenty for one-second buckets. */
uint64_t tern__metrics_now(void);

/* ---- hooks, called by the owning worker only ----------------------------- */
void tern__metrics_conn_opened(tern__metrics *m);
void tern__metrics_conn_closed(tern__metrics *m);
void tern__metrics_timeout(tern__metrics *m);
/* A response was queued: status and time since the request was read (see
 * the top of this file). */
void tern__metrics_response(tern__metrics *m, int status, uint64_t latency_ns);
void tern__metrics_response_at(tern__metrics *m, int status, uint64_t latency_ns, uint64_t now_ns);
/* The client closed the connection before the request's response was
 * queued (nginx's 499): counted apart, in neither the responses, the status
 * classes nor the latency histograms; duration_ns is the time from the
 * request being read to the hang-up being noticed. Call it instead of
 * tern__metrics_response, never as well. */
void tern__metrics_client_gone(tern__metrics *m, uint64_t duration_ns);
/* A malformed or refused request answered with an error status. */
void tern__metrics_rejected(tern__metrics *m, int status);
/* A request shed with 503 by admission control. */
void tern__metrics_shed(tern__metrics *m);
/* How late the worker's periodic timer fired. */
void tern__metrics_loop_lag(tern__metrics *m, uint64_t lag_ns);
/* How long a request waited between being read and its handler starting. */
void tern__metrics_queue_delay(tern__metrics *m, uint64_t ns);

/* ---- reading --------------------------------------------------------------- */
typedef struct tern__metrics_snap {
    uint64_t responses, status_class[6], shed, rejected, timeouts;
    uint64_t client_gone, client_gone_ns;
    uint64_t conns_opened, conns_closed, active;
    double rps_1s, rps_10s;
    uint64_t start_ns; /* earliest worker start, 0 if none */
    tern__hist_snap latency, queue_delay, loop_lag;
    /* the last TERN_METRICS_SHORT/LONG_WINDOW_S seconds, see window.h */
    tern__hist_snap latency_short, latency_long;
} tern__metrics_snap;

/* Responses per second of one worker over the last `window_s` complete
 * seconds before now_ns (see tern_stats.throughput_rps). */
double tern__metrics_rate(const tern__metrics *m, uint64_t now_ns, unsigned window_s);
/* Adds m into acc (acc zeroed by the caller first). */
void tern__metrics_snap_add(tern__metrics_snap *acc, const tern__metrics *m, uint64_t now_ns);
/* Derives the summary numbers (counters, percentiles...) from a snapshot;
 * leaves the process, in_flight, uptime and workers fields alone. */
void tern__metrics_snap_stats(const tern__metrics_snap *snap, tern_stats *out);

/* ---- the report ---------------------------------------------------------------- */
typedef struct tern__metrics_report {
    tern_stats stats;
    tern__metrics_snap snap;
    tern_worker_stats *workers;
    int nworkers;
    tern_metrics_writer extras;
} tern__metrics_report;

/* Everything /stats and /metrics show, read at now_ns (tern__metrics_now
 * clock); extra sources registered for s only when with_extras. 0 or
 * -ENOMEM. */
int tern__metrics_report_build(tern_server *s, tern__metrics_report *r, uint64_t now_ns,
                               int with_extras);
void tern__metrics_report_free(tern__metrics_report *r);
void tern__metrics_format_json(const tern__metrics_report *r, tern__mbuf *b);
void tern__metrics_format_prometheus(const tern__metrics_report *r, tern__mbuf *b);

#endif
