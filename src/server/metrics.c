/* Metrics: per-worker recording (hooks), reading and summing across
 * workers into a report, and the /stats (JSON) and /metrics (Prometheus)
 * layouts served by tern_stats_handler and tern_metrics_handler. Histogram
 * maths, the extra-source registry and the text formatting live in
 * src/metrics/. */
#include "server/metrics.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/ctx.h"
#include "metrics/registry.h"
#include "server/procstat.h"
#include "server/server.h"
#include "server/worker.h"

/* ---- recording ------------------------------------------------------------ */

uint64_t tern__metrics_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

tern__metrics *tern__metrics_new_at(uint64_t now_ns) {
    /* own cache lines: a neighbour's writes never invalidate ours */
    size_t size = (sizeof(tern__metrics) + 63) & ~(size_t)63;
    tern__metrics *m = aligned_alloc(64, size);
    if (!m) return NULL;
    memset(m, 0, size);
    m->start_ns = now_ns;
    return m;
}

tern__metrics *tern__metrics_new(void) {
    return tern__metrics_new_at(tern__metrics_now());
}
void tern__metrics_free(tern__metrics *m) {
    free(m);
}

void tern__metrics_conn_opened(tern__metrics *m) {
    tern__owned_add(&m->conns_opened, 1);
}

void tern__metrics_conn_closed(tern__metrics *m) {
    /* release: a reader that sees this close also sees its open, so
     * opened - closed read in that order is never negative */
    atomic_store_explicit(&m->conns_closed, tern__owned_get(&m->conns_closed) + 1,
                          memory_order_release);
}

void tern__metrics_timeout(tern__metrics *m) {
    tern__owned_add(&m->timeouts, 1);
}
void tern__metrics_rejected(tern__metrics *m, int status) {
    tern__owned_add(&m->rejected, 1);
}
void tern__metrics_shed(tern__metrics *m) {
    tern__owned_add(&m->shed, 1);
}
void tern__metrics_loop_lag(tern__metrics *m, uint64_t lag_ns) {
    tern__hist_record(&m->loop_lag, lag_ns);
}
void tern__metrics_queue_delay(tern__metrics *m, uint64_t ns) {
    tern__hist_record(&m->queue_delay, ns);
}

void tern__metrics_response_at(tern__metrics *m, int status, uint64_t latency_ns, uint64_t now_ns) {
    tern__owned_add(&m->responses, 1);
    int cls = status / 100;
    if (cls < 1 || cls > 5) cls = 0;
    tern__owned_add(&m->status_class[cls], 1);
    /* one bucket index and one division for the three records */
    unsigned idx = tern__hist_index(latency_ns);
    uint64_t sec = now_ns / 1000000000ull;
    tern__hist_record_at(&m->latency, idx, latency_ns);
    tern__hist_window_record_at(&m->latency_recent, idx, latency_ns, sec);
    _Atomic uint64_t *slot = &m->per_second[sec % TERN_METRICS_RING];
    uint64_t word = tern__owned_get(slot);
    if (word >> 32 == (sec & 0xffffffffu))
        atomic_store_explicit(slot, word + 1, memory_order_relaxed);
    else
        atomic_store_explicit(slot, (sec << 32) | 1, memory_order_relaxed);
}

void tern__metrics_response(tern__metrics *m, int status, uint64_t latency_ns) {
    tern__metrics_response_at(m, status, latency_ns, tern__metrics_now());
}

void tern__metrics_client_gone(tern__metrics *m, uint64_t duration_ns) {
    tern__owned_add(&m->client_gone, 1);
    tern__owned_add(&m->client_gone_ns, duration_ns);
}

/* ---- reading --------------------------------------------------------------- */

double tern__metrics_rate(const tern__metrics *m, uint64_t now_ns, unsigned window_s) {
    if (window_s == 0 || window_s > TERN_METRICS_RING - 2) return 0;
    uint64_t sec = now_ns / 1000000000ull, start_sec = m->start_ns / 1000000000ull;
    if (sec < start_sec + window_s + 1) {
        /* the window would reach back into (or before) the worker's first,
         * partial second: use everything since it started instead */
        if (now_ns <= m->start_ns) return 0;
        return (double)tern__owned_get(&m->responses) * 1e9 / (double)(now_ns - m->start_ns);
    }
    uint64_t total = 0;
    for (uint64_t s = sec - window_s; s < sec; s++) {
        uint64_t word = tern__owned_get(&m->per_second[s % TERN_METRICS_RING]);
        if (word >> 32 == (s & 0xffffffffu)) total += word & 0xffffffffu;
    }
    return (double)total / (double)window_s;
}

void tern__metrics_snap_add(tern__metrics_snap *acc, const tern__metrics *m, uint64_t now_ns) {
    /* closed before opened (see tern__metrics_conn_closed) */
    uint64_t closed = atomic_load_explicit(&m->conns_closed, memory_order_acquire);
    uint64_t opened = tern__owned_get(&m->conns_opened);
    acc->conns_opened += opened;
    acc->conns_closed += closed;
    acc->active += opened > closed ? opened - closed : 0;
    acc->responses += tern__owned_get(&m->responses);
    for (int i = 0; i < 6; i++) acc->status_class[i] += tern__owned_get(&m->status_class[i]);
    acc->shed += tern__owned_get(&m->shed);
    acc->rejected += tern__owned_get(&m->rejected);
    acc->timeouts += tern__owned_get(&m->timeouts);
    acc->client_gone += tern__owned_get(&m->client_gone);
    acc->client_gone_ns += tern__owned_get(&m->client_gone_ns);
    acc->rps_1s += tern__metrics_rate(m, now_ns, 1);
    acc->rps_10s += tern__metrics_rate(m, now_ns, 10);
    if (!acc->start_ns || m->start_ns < acc->start_ns) acc->start_ns = m->start_ns;
    tern__hist_snap_add(&acc->latency, &m->latency);
    tern__hist_snap_add(&acc->queue_delay, &m->queue_delay);
    tern__hist_snap_add(&acc->loop_lag, &m->loop_lag);
    tern__hist_window_add(&m->latency_recent, &acc->latency_short, now_ns, 0,
                          TERN_METRICS_SHORT_WINDOW_S);
    tern__hist_window_add(&m->latency_recent, &acc->latency_long, now_ns, 0,
                          TERN_METRICS_LONG_WINDOW_S);
}

static double ns_to_ms(double ns) {
    return ns / 1e6;
}

static void window_stats(const tern__hist_snap *h, tern_latency_window *out) {
    out->count = h->count;
    if (!h->count) { /* no data: say so rather than report 0 ms */
        out->average_ms = out->p50_ms = out->p90_ms = out->p99_ms = out->p999_ms = out->max_ms =
            NAN;
        return;
    }
    out->average_ms = ns_to_ms(tern__hist_mean(h));
    out->p50_ms = ns_to_ms(tern__hist_quantile(h, 0.5));
    out->p90_ms = ns_to_ms(tern__hist_quantile(h, 0.9));
    out->p99_ms = ns_to_ms(tern__hist_quantile(h, 0.99));
    out->p999_ms = ns_to_ms(tern__hist_quantile(h, 0.999));
    out->max_ms = ns_to_ms((double)h->max);
}

void tern__metrics_snap_stats(const tern__metrics_snap *snap, tern_stats *out) {
    out->total_requests = snap->responses;
    out->status_other = snap->status_class[0];
    out->status_1xx = snap->status_class[1];
    out->status_2xx = snap->status_class[2];
    out->status_3xx = snap->status_class[3];
    out->status_4xx = snap->status_class[4];
    out->status_5xx = snap->status_class[5];
    out->shed_503 = snap->shed;
    out->rejected = snap->rejected;
    out->timeouts = snap->timeouts;
    out->connections_opened = snap->conns_opened;
    out->connections_closed = snap->conns_closed;
    out->active_connections = snap->active;
    const tern__hist_snap *l = &snap->latency;
    out->average_response_time_ms = l->count ? ns_to_ms((double)l->sum / (double)l->count) : 0;
    out->p50_ms = ns_to_ms(tern__hist_quantile(l, 0.5));
    out->p90_ms = ns_to_ms(tern__hist_quantile(l, 0.9));
    out->p99_ms = ns_to_ms(tern__hist_quantile(l, 0.99));
    out->p999_ms = ns_to_ms(tern__hist_quantile(l, 0.999));
    out->max_response_time_ms = ns_to_ms((double)l->max);
    out->throughput_rps = snap->rps_1s;
    out->throughput_rps_10s = snap->rps_10s;
    const tern__hist_snap *qd = &snap->queue_delay;
    out->queue_delay_samples = qd->count;
    out->queue_delay_avg_ms = qd->count ? ns_to_ms((double)qd->sum / (double)qd->count) : 0;
    out->queue_delay_p99_ms = ns_to_ms(tern__hist_quantile(qd, 0.99));
    out->loop_lag_samples = snap->loop_lag.count;
    out->loop_lag_p99_ms = ns_to_ms(tern__hist_quantile(&snap->loop_lag, 0.99));
    out->loop_lag_max_ms = ns_to_ms((double)snap->loop_lag.max);
    out->client_closed = snap->client_gone;
    window_stats(&snap->latency_short, &out->latency_10s);
    window_stats(&snap->latency_long, &out->latency_60s);
}

/* Workers are created by tern_server_run one after another while earlier
 * ones already serve, so a reader may meet a worker not yet initialised:
 * its metrics pointer is then still NULL (calloc). */
static tern__metrics *worker_metrics(tern__worker *w) {
    return __atomic_load_n(&w->metrics, __ATOMIC_ACQUIRE);
}

static void process_stats(tern_stats *out) {
    uint64_t rss = 0;
    out->memory_rss_bytes = tern__procstat_rss(&rss) == 0 ? rss : 0;
    out->cpu_usage_percent = tern__procstat_cpu_percent();
    out->threads = tern__procstat_threads();
    out->open_fds = tern__procstat_open_fds();
    if (out->threads < 0) out->threads = -1;
    if (out->open_fds < 0) out->open_fds = -1;
}

int tern__metrics_report_build(tern_server *s, tern__metrics_report *r, uint64_t now_ns,
                               int with_extras) {
    memset(r, 0, sizeof *r);
    tern__worker *ws = s ? __atomic_load_n(&s->workers, __ATOMIC_ACQUIRE) : NULL;
    int n = ws ? s->nworkers : 0;
    if (n > 0) {
        r->workers = calloc((size_t)n, sizeof *r->workers);
        if (!r->workers) return -ENOMEM;
    }
    uint64_t in_flight = 0;
    int live = 0;
    for (int i = 0; i < n; i++) {
        tern__metrics *m = worker_metrics(&ws[i]);
        if (!m) continue;
        tern_worker_stats *wst = &r->workers[live++];
        uint64_t responses_before = r->snap.responses, active_before = r->snap.active;
        double rps_before = r->snap.rps_1s;
        tern__metrics_snap_add(&r->snap, m, now_ns);
        wst->id = i;
        wst->requests = r->snap.responses - responses_before;
        wst->active_connections = r->snap.active - active_before;
        wst->throughput_rps = r->snap.rps_1s - rps_before;
        /* written by its worker as a plain counter; an aligned 32-bit load
         * is atomic on every target we build for */
        wst->in_flight = __atomic_load_n(&ws[i].in_flight, __ATOMIC_RELAXED);
        in_flight += wst->in_flight;
    }
    r->nworkers = live;
    tern__metrics_snap_stats(&r->snap, &r->stats);
    r->stats.in_flight = in_flight;
    r->stats.workers = live;
    r->stats.uptime_seconds =
        live && now_ns > r->snap.start_ns ? (double)(now_ns - r->snap.start_ns) / 1e9 : 0;
    process_stats(&r->stats);
    if (with_extras) tern__metrics_registry_collect(s, &r->extras);
    return 0;
}

void tern__metrics_report_free(tern__metrics_report *r) {
    free(r->workers);
    tern__metrics_writer_free(&r->extras);
    r->workers = NULL;
}

int tern_stats_read(tern_server *s, tern_stats *out) {
    tern__metrics_report *r = malloc(sizeof *r);
    if (!r) return -ENOMEM;
    int rc = tern__metrics_report_build(s, r, tern__metrics_now(), 0);
    if (rc == 0) *out = r->stats;
    tern__metrics_report_free(r);
    free(r);
    return rc;
}

int tern_stats_read_workers(tern_server *s, tern_worker_stats *out, int max) {
    tern__metrics_report *r = malloc(sizeof *r);
    if (!r) return -ENOMEM;
    int rc = tern__metrics_report_build(s, r, tern__metrics_now(), 0);
    if (rc == 0) {
        for (int i = 0; i < r->nworkers && i < max; i++) out[i] = r->workers[i];
        rc = r->nworkers;
    }
    tern__metrics_report_free(r);
    free(r);
    return rc;
}
/* ---- /stats: JSON ------------------------------------------------------------- */

static void json_u64(tern__mbuf *b, const char *name, uint64_t v) {
    tern__mbuf_printf(b, "\"%s\":%llu,", name, (unsigned long long)v);
}

static void json_dbl(tern__mbuf *b, const char *name, double v, int decimals) {
    tern__mbuf_printf(b, "\"%s\":", name);
    tern__json_double(b, v, decimals);
    tern__mbuf_printf(b, ",");
}

/* The flat fields, named as in tern_stats (kept stable for dashboards). */
static void json_fields(tern__mbuf *b, const tern_stats *st) {
    json_u64(b, "total_requests", st->total_requests);
    json_u64(b, "active_connections", st->active_connections);
    json_u64(b, "in_flight", st->in_flight);
    json_u64(b, "memory_rss_bytes", st->memory_rss_bytes);
    json_dbl(b, "cpu_usage_percent", st->cpu_usage_percent, 2);
    json_dbl(b, "average_response_time_ms", st->average_response_time_ms, 6);
    json_dbl(b, "p50_ms", st->p50_ms, 6);
    json_dbl(b, "p90_ms", st->p90_ms, 6);
    json_dbl(b, "p99_ms", st->p99_ms, 6);
    json_dbl(b, "p999_ms", st->p999_ms, 6);
    json_dbl(b, "max_response_time_ms", st->max_response_time_ms, 6);
    json_dbl(b, "throughput_rps", st->throughput_rps, 3);
    json_dbl(b, "throughput_rps_10s", st->throughput_rps_10s, 3);
    json_u64(b, "queue_delay_samples", st->queue_delay_samples);
    json_dbl(b, "queue_delay_avg_ms", st->queue_delay_avg_ms, 6);
    json_dbl(b, "queue_delay_p99_ms", st->queue_delay_p99_ms, 6);
    json_u64(b, "loop_lag_samples", st->loop_lag_samples);
    json_dbl(b, "loop_lag_p99_ms", st->loop_lag_p99_ms, 6);
    json_dbl(b, "loop_lag_max_ms", st->loop_lag_max_ms, 6);
    json_u64(b, "status_1xx", st->status_1xx);
    json_u64(b, "status_2xx", st->status_2xx);
    json_u64(b, "status_3xx", st->status_3xx);
    json_u64(b, "status_4xx", st->status_4xx);
    json_u64(b, "status_5xx", st->status_5xx);
    json_u64(b, "status_other", st->status_other);
    json_u64(b, "shed_503", st->shed_503);
    json_u64(b, "rejected", st->rejected);
    json_u64(b, "timeouts", st->timeouts);
    json_u64(b, "client_closed", st->client_closed);
    json_u64(b, "connections_opened", st->connections_opened);
    json_u64(b, "connections_closed", st->connections_closed);
    tern__mbuf_printf(b, "\"threads\":%d,\"open_fds\":%d,", st->threads, st->open_fds);
    json_dbl(b, "uptime_seconds", st->uptime_seconds, 3);
}

static void json_window(tern__mbuf *b, const char *name, const tern_latency_window *w) {
    tern__mbuf_printf(b, "\"%s\":{\"count\":%llu,", name, (unsigned long long)w->count);
    json_dbl(b, "average_ms", w->average_ms, 6);
    json_dbl(b, "p50_ms", w->p50_ms, 6);
    json_dbl(b, "p90_ms", w->p90_ms, 6);
    json_dbl(b, "p99_ms", w->p99_ms, 6);
    json_dbl(b, "p999_ms", w->p999_ms, 6);
    tern__mbuf_printf(b, "\"max_ms\":");
    tern__json_double(b, w->max_ms, 6);
    tern__mbuf_printf(b, "},");
}

static void json_workers(tern__mbuf *b, const tern__metrics_report *r) {
    tern__mbuf_printf(b, "\"workers\":[");
    for (int i = 0; i < r->nworkers; i++) {
        const tern_worker_stats *w = &r->workers[i];
        tern__mbuf_printf(b,
                          "%s{\"id\":%d,\"requests\":%llu,\"active_connections\":%llu,"
                          "\"in_flight\":%llu,\"throughput_rps\":",
                          i ? "," : "", w->id, (unsigned long long)w->requests,
                          (unsigned long long)w->active_connections,
                          (unsigned long long)w->in_flight);
        tern__json_double(b, w->throughput_rps, 3);
        tern__mbuf_printf(b, "}");
    }
    tern__mbuf_printf(b, "],");
}

void tern__metrics_format_json(const tern__metrics_report *r, tern__mbuf *b) {
    tern__mbuf_printf(b, "{");
    json_fields(b, &r->stats);
    json_window(b, "latency_10s", &r->stats.latency_10s);
    json_window(b, "latency_60s", &r->stats.latency_60s);
    json_workers(b, r);
    tern__mbuf_printf(b, "\"pools\":");
    tern__json_extras(b, &r->extras);
    tern__mbuf_printf(b, "}\n");
}

/* ---- /metrics: Prometheus -------------------------------------------------------- */

static void prom_gauge(tern__mbuf *b, const char *name, const char *help, double v) {
    tern__prom_head(b, name, "gauge", help);
    tern__mbuf_printf(b, "%s ", name);
    tern__prom_double(b, v);
    tern__mbuf_printf(b, "\n");
}

/* Recent windows as gauges: a windowed figure is no summary (its count
 * goes down as seconds leave the window), and promtool rejects a
 * `quantile` label outside summaries, hence `percentile`. */
static void prom_windows(tern__mbuf *b, const tern__metrics_snap *sn) {
    tern__prom_head(b, "tern_request_latency_window_seconds", "gauge",
                    "Request duration percentiles over the last 10 s or 60 s (current second "
                    "included), from exact per-second histograms; NaN when no response.");
    tern__prom_percentiles(b, "tern_request_latency_window_seconds", "window=\"10s\"",
                           &sn->latency_short);
    tern__prom_percentiles(b, "tern_request_latency_window_seconds", "window=\"60s\"",
                           &sn->latency_long);
    tern__prom_head(b, "tern_responses_in_window", "gauge",
                    "Responses behind tern_request_latency_window_seconds.");
    tern__mbuf_printf(b, "tern_responses_in_window{window=\"10s\"} %llu\n",
                      (unsigned long long)sn->latency_short.count);
    tern__mbuf_printf(b, "tern_responses_in_window{window=\"60s\"} %llu\n",
                      (unsigned long long)sn->latency_long.count);
}

static void prom_requests(tern__mbuf *b, const tern__metrics_report *r) {
    const tern__metrics_snap *sn = &r->snap;
    static const char *const classes[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    tern__prom_head(b, "tern_requests_total", "counter",
                    "Responses queued, by status class (rejections and sheds included).");
    for (int i = 1; i <= 6; i++)
        tern__mbuf_printf(b, "tern_requests_total{status_class=\"%s\"} %llu\n", classes[i % 6],
                          (unsigned long long)sn->status_class[i % 6]);
    tern__prom_histogram(b, "tern_request_duration_seconds",
                         "Time from the loop pass that read the request to its response being "
                         "queued for writing.",
                         &sn->latency);
    tern__prom_summary(b, "tern_request_latency_seconds",
                       "Request duration quantiles since start, from the log-linear histogram "
                       "(within 6.25%).",
                       &sn->latency);
    tern__prom_summary(b, "tern_queue_delay_seconds",
                       "Time a request waited before its handler started.", &sn->queue_delay);
    tern__prom_summary(b, "tern_loop_lag_seconds",
                       "How late each worker's periodic 10 ms timer fired.", &sn->loop_lag);
    tern__prom_head(b, "tern_throughput_rps", "gauge",
                    "Responses per second over the last complete second(s).");
    tern__mbuf_printf(b, "tern_throughput_rps{window=\"1s\"} ");
    tern__prom_double(b, r->stats.throughput_rps);
    tern__mbuf_printf(b, "\ntern_throughput_rps{window=\"10s\"} ");
    tern__prom_double(b, r->stats.throughput_rps_10s);
    tern__mbuf_printf(b, "\n");
}

static void prom_counters(tern__mbuf *b, const tern_stats *st) {
    tern__prom_u64(b, "tern_connections_opened_total", "counter", "Connections accepted.",
                   st->connections_opened);
    tern__prom_u64(b, "tern_connections_closed_total", "counter", "Connections closed.",
                   st->connections_closed);
    tern__prom_u64(b, "tern_connections_active", "gauge", "Connections open now.",
                   st->active_connections);
    tern__prom_u64(b, "tern_in_flight", "gauge", "Requests inside handlers now.", st->in_flight);
    tern__prom_u64(b, "tern_shed_total", "counter",
                   "Requests refused with 503 by admission control.", st->shed_503);
    tern__prom_u64(b, "tern_rejected_total", "counter",
                   "Malformed or refused requests answered with an error status.", st->rejected);
    tern__prom_u64(b, "tern_timeouts_total", "counter", "Connections closed by a timeout.",
                   st->timeouts);
    tern__prom_u64(b, "tern_client_closed_total", "counter",
                   "Requests abandoned: the client closed the connection before the response "
                   "was queued (nginx's 499); not in tern_requests_total.",
                   st->client_closed);
}

static void prom_process(tern__mbuf *b, const tern_stats *st) {
    tern__prom_u64(b, "tern_process_resident_memory_bytes", "gauge",
                   "Resident set size from /proc/self/statm.", st->memory_rss_bytes);
    prom_gauge(b, "tern_process_cpu_percent",
               "Process CPU time over wall time, percent of one CPU, over the last 1-2 s.",
               st->cpu_usage_percent);
    if (st->threads >= 0)
        tern__prom_u64(b, "tern_process_threads", "gauge", "Threads in the process.",
                       (uint64_t)st->threads);
    if (st->open_fds >= 0)
        tern__prom_u64(b, "tern_process_open_fds", "gauge", "Open file descriptors.",
                       (uint64_t)st->open_fds);
    prom_gauge(b, "tern_uptime_seconds", "Time since the workers started.", st->uptime_seconds);
}

static void prom_workers(tern__mbuf *b, const tern__metrics_report *r) {
    tern__prom_u64(b, "tern_workers", "gauge", "Worker threads serving.",
                   (uint64_t)r->stats.workers);
    tern__prom_head(b, "tern_worker_requests_total", "counter", "Responses queued, per worker.");
    for (int i = 0; i < r->nworkers; i++)
        tern__mbuf_printf(b, "tern_worker_requests_total{worker=\"%d\"} %llu\n", r->workers[i].id,
                          (unsigned long long)r->workers[i].requests);
    tern__prom_head(b, "tern_worker_connections_active", "gauge",
                    "Connections open now, per worker.");
    for (int i = 0; i < r->nworkers; i++)
        tern__mbuf_printf(b, "tern_worker_connections_active{worker=\"%d\"} %llu\n",
                          r->workers[i].id, (unsigned long long)r->workers[i].active_connections);
}

void tern__metrics_format_prometheus(const tern__metrics_report *r, tern__mbuf *b) {
    prom_requests(b, r);
    prom_windows(b, &r->snap);
    prom_counters(b, &r->stats);
    prom_process(b, &r->stats);
    prom_workers(b, r);
    tern__prom_extras(b, &r->extras);
}

/* ---- handlers --------------------------------------------------------------- */

static void serve(tern_ctx *ctx, int prometheus) {
    tern__metrics_report *r = malloc(sizeof *r);
    tern__mbuf b = {0};
    int ok = r && tern__metrics_report_build(tern_ctx_server(ctx), r, tern__metrics_now(), 1) == 0;
    if (ok) {
        if (prometheus)
            tern__metrics_format_prometheus(r, &b);
        else
            tern__metrics_format_json(r, &b);
        ok = !b.oom && !r->extras.oom;
    }
    if (ok) {
        tern_resp_set_header(ctx, "Content-Type",
                             prometheus ? "text/plain; version=0.0.4; charset=utf-8"
                                        : "application/json");
        tern_resp_set_header(ctx, "Cache-Control", "no-store");
        ok = tern_resp_set_body(ctx, b.data, b.len) == 0;
    }
    if (!ok) tern_resp_text(ctx, 503, "503 Service Unavailable: out of memory\n");
    tern__mbuf_free(&b);
    if (r) tern__metrics_report_free(r);
    free(r);
}

void tern_stats_handler(tern_ctx *ctx) {
    serve(ctx, 0);
}
void tern_metrics_handler(tern_ctx *ctx) {
    serve(ctx, 1);
}
