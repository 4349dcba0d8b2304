/* Metrics: per-worker recording (hooks), reading and summing across
 * workers, the extra-source registry, and the JSON and Prometheus
 * renderings served by tern_stats_handler and tern_metrics_handler. */
#include "server/metrics.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "http/ctx.h"
#include "server/procstat.h"
#include "server/server.h"
#include "server/worker.h"

/* ---- recording ------------------------------------------------------------ */

/* Only the owning worker writes, so a relaxed load and store is an exact
 * increment: no lock prefix, and readers on other threads still see whole
 * 64-bit values. */
static inline void add(_Atomic uint64_t *p, uint64_t d) {
    atomic_store_explicit(p, atomic_load_explicit(p, memory_order_relaxed) + d,
                          memory_order_relaxed);
}

static inline uint64_t get(const _Atomic uint64_t *p) {
    return atomic_load_explicit(p, memory_order_relaxed);
}

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

tern__metrics *tern__metrics_new(void) { return tern__metrics_new_at(tern__metrics_now()); }
void tern__metrics_free(tern__metrics *m) { free(m); }

void tern__metrics_conn_opened(tern__metrics *m) { add(&m->conns_opened, 1); }

void tern__metrics_conn_closed(tern__metrics *m) {
    /* release: a reader that sees this close also sees its open, so
     * opened - closed read in that order is never negative */
    atomic_store_explicit(&m->conns_closed, get(&m->conns_closed) + 1, memory_order_release);
}

void tern__metrics_timeout(tern__metrics *m) { add(&m->timeouts, 1); }
void tern__metrics_rejected(tern__metrics *m, int status) { add(&m->rejected, 1); }
void tern__metrics_shed(tern__metrics *m) { add(&m->shed, 1); }
void tern__metrics_loop_lag(tern__metrics *m, uint64_t lag_ns) { tern__hist_record(&m->loop_lag, lag_ns); }
void tern__metrics_queue_delay(tern__metrics *m, uint64_t ns) { tern__hist_record(&m->queue_delay, ns); }

void tern__metrics_response_at(tern__metrics *m, int status, uint64_t latency_ns, uint64_t now_ns) {
    add(&m->responses, 1);
    int cls = status / 100;
    if (cls < 1 || cls > 5) cls = 0;
    add(&m->status_class[cls], 1);
    tern__hist_record(&m->latency, latency_ns);
    uint64_t sec = now_ns / 1000000000ull;
    _Atomic uint64_t *slot = &m->per_second[sec % TERN_METRICS_RING];
    uint64_t word = get(slot);
    if (word >> 32 == (sec & 0xffffffffu))
        atomic_store_explicit(slot, word + 1, memory_order_relaxed);
    else
        atomic_store_explicit(slot, (sec << 32) | 1, memory_order_relaxed);
}

void tern__metrics_response(tern__metrics *m, int status, uint64_t latency_ns) {
    tern__metrics_response_at(m, status, latency_ns, tern__metrics_now());
}

/* ---- histogram math ------------------------------------------------------- */

/* Index of a value v in the half-open layout [lo, hi): linear below 2^10,
 * then (octave, 4-bit mantissa). */
static unsigned raw_index(uint64_t v) {
    if (v < (1ull << TERN_HIST_LINEAR_BITS)) return (unsigned)(v >> (TERN_HIST_LINEAR_BITS - TERN_HIST_SUB_BITS));
    unsigned k = 63u - (unsigned)__builtin_clzll(v);
    return (k - TERN_HIST_LINEAR_BITS + 1) * TERN_HIST_SUB +
           (unsigned)((v >> (k - TERN_HIST_SUB_BITS)) & (TERN_HIST_SUB - 1));
}

unsigned tern__hist_index(uint64_t v) {
    /* shift by one so buckets are (lo, hi]: `le` bounds then hold exactly */
    if (v == 0) return 0;
    if (v - 1 >= (1ull << TERN_HIST_TOP_BITS)) return TERN_HIST_OVERFLOW;
    return raw_index(v - 1);
}

uint64_t tern__hist_upper(unsigned i) {
    if (i >= TERN_HIST_OVERFLOW) return UINT64_MAX;
    if (i < TERN_HIST_SUB) return (uint64_t)(i + 1) << (TERN_HIST_LINEAR_BITS - TERN_HIST_SUB_BITS);
    unsigned k = i / TERN_HIST_SUB + TERN_HIST_LINEAR_BITS - 1;
    uint64_t sub = i % TERN_HIST_SUB;
    return (TERN_HIST_SUB + sub + 1) << (k - TERN_HIST_SUB_BITS);
}

uint64_t tern__hist_lower(unsigned i) { return i == 0 ? 0 : tern__hist_upper(i - 1); }

void tern__hist_record(tern__hist *h, uint64_t v) {
    add(&h->bucket[tern__hist_index(v)], 1);
    add(&h->sum, v);
    if (v > get(&h->max)) atomic_store_explicit(&h->max, v, memory_order_relaxed);
}

void tern__hist_snap_add(tern__hist_snap *acc, const tern__hist *h) {
    for (unsigned i = 0; i < TERN_HIST_BUCKETS; i++) {
        uint64_t n = get(&h->bucket[i]);
        acc->bucket[i] += n;
        acc->count += n;
    }
    acc->sum += get(&h->sum);
    uint64_t mx = get(&h->max);
    if (mx > acc->max) acc->max = mx;
}

double tern__hist_quantile(const tern__hist_snap *h, double q) {
    if (h->count == 0) return 0;
    if (q < 0) q = 0;
    if (q > 1) q = 1;
    /* nearest rank: the ceil(q * n)-th smallest sample (at least the 1st) */
    /* (ceil by hand: the library does not link libm) */
    double x = q * (double)h->count;
    uint64_t rank = (uint64_t)x;
    if ((double)rank < x) rank++;
    if (rank < 1) rank = 1;
    if (rank > h->count) rank = h->count;
    uint64_t before = 0;
    for (unsigned i = 0; i < TERN_HIST_BUCKETS; i++) {
        uint64_t n = h->bucket[i];
        if (before + n < rank) {
            before += n;
            continue;
        }
        if (i == TERN_HIST_OVERFLOW) return (double)h->max;
        /* the bucket holding the largest sample ends at that sample: no
         * sample lies above it, so spreading ranks up to the bucket's bound
         * would overstate the tail */
        double lo = (double)tern__hist_lower(i), hi = (double)tern__hist_upper(i);
        if (hi > (double)h->max) hi = (double)h->max;
        if (hi < lo) return hi;
        return lo + (hi - lo) * (double)(rank - before) / (double)n;
    }
    return (double)h->max; /* buckets changed under us: count > sum of buckets */
}

/* ---- reading --------------------------------------------------------------- */

double tern__metrics_rate(const tern__metrics *m, uint64_t now_ns, unsigned window_s) {
    if (window_s == 0 || window_s > TERN_METRICS_RING - 2) return 0;
    uint64_t sec = now_ns / 1000000000ull, start_sec = m->start_ns / 1000000000ull;
    if (sec < start_sec + window_s + 1) {
        /* the window would reach back into (or before) the worker's first,
         * partial second: use everything since it started instead */
        if (now_ns <= m->start_ns) return 0;
        return (double)get(&m->responses) * 1e9 / (double)(now_ns - m->start_ns);
    }
    uint64_t total = 0;
    for (uint64_t s = sec - window_s; s < sec; s++) {
        uint64_t word = get(&m->per_second[s % TERN_METRICS_RING]);
        if (word >> 32 == (s & 0xffffffffu)) total += word & 0xffffffffu;
    }
    return (double)total / (double)window_s;
}

void tern__metrics_snap_add(tern__metrics_snap *acc, const tern__metrics *m, uint64_t now_ns) {
    /* closed before opened (see tern__metrics_conn_closed) */
    uint64_t closed = atomic_load_explicit(&m->conns_closed, memory_order_acquire);
    uint64_t opened = get(&m->conns_opened);
    acc->conns_opened += opened;
    acc->conns_closed += closed;
    acc->active += opened > closed ? opened - closed : 0;
    acc->responses += get(&m->responses);
    for (int i = 0; i < 6; i++) acc->status_class[i] += get(&m->status_class[i]);
    acc->shed += get(&m->shed);
    acc->rejected += get(&m->rejected);
    acc->timeouts += get(&m->timeouts);
    acc->rps_1s += tern__metrics_rate(m, now_ns, 1);
    acc->rps_10s += tern__metrics_rate(m, now_ns, 10);
    if (!acc->start_ns || m->start_ns < acc->start_ns) acc->start_ns = m->start_ns;
    tern__hist_snap_add(&acc->latency, &m->latency);
    tern__hist_snap_add(&acc->queue_delay, &m->queue_delay);
    tern__hist_snap_add(&acc->loop_lag, &m->loop_lag);
}

static double ns_to_ms(double ns) { return ns / 1e6; }

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
    if (with_extras) tern__metrics_collect_extras(s, &r->extras);
    return 0;
}

void tern__metrics_report_free(tern__metrics_report *r) {
    free(r->workers);
    free(r->extras.items);
    r->workers = NULL;
    r->extras.items = NULL;
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


/* ---- extra sources --------------------------------------------------------- */

typedef struct source_entry {
    tern_server *server;        /* NULL: every server */
    char name[64];
    tern_metrics_source fn;
    void *arg;
} source_entry;

static pthread_mutex_t sources_lock = PTHREAD_MUTEX_INITIALIZER;
static source_entry *sources;
static size_t nsources, sources_cap;

static int name_valid(const char *name) {
    if (!name || !((*name >= 'a' && *name <= 'z') || (*name >= 'A' && *name <= 'Z') || *name == '_'))
        return 0;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_'))
            return 0;
    }
    return n < 64;
}

int tern_metrics_register_source(tern_server *s, const char *name, tern_metrics_source fn,
                                 void *arg) {
    if (!name || !fn) return -EINVAL;
    size_t len = strlen(name);
    if (len == 0 || len >= sizeof sources->name) return -EINVAL;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f) return -EINVAL;
    pthread_mutex_lock(&sources_lock);
    int rc = 0;
    for (size_t i = 0; i < nsources && rc == 0; i++) {
        /* a global source shows on every server: its name must not collide
         * with any other, or "pools" would hold the same key twice */
        source_entry *e = &sources[i];
        if ((e->server == s || !e->server || !s) && strcmp(e->name, name) == 0) rc = -EEXIST;
    }
    if (rc == 0 && nsources == sources_cap) {
        size_t cap = sources_cap ? sources_cap * 2 : 8;
        source_entry *p = realloc(sources, cap * sizeof *p);
        if (!p)
            rc = -ENOMEM;
        else {
            sources = p;
            sources_cap = cap;
        }
    }
    if (rc == 0) {
        source_entry *e = &sources[nsources++];
        e->server = s;
        memcpy(e->name, name, len + 1);
        e->fn = fn;
        e->arg = arg;
    }
    pthread_mutex_unlock(&sources_lock);
    return rc;
}

int tern_metrics_unregister_source(tern_server *s, const char *name) {
    if (!name) return -ENOENT;
    int rc = -ENOENT;
    pthread_mutex_lock(&sources_lock);
    for (size_t i = 0; i < nsources; i++) {
        if (sources[i].server == s && strcmp(sources[i].name, name) == 0) {
            memmove(&sources[i], &sources[i + 1], (nsources - i - 1) * sizeof *sources);
            nsources--;
            rc = 0;
            break;
        }
    }
    if (nsources == 0) {
        free(sources);
        sources = NULL;
        sources_cap = 0;
    }
    pthread_mutex_unlock(&sources_lock);
    return rc;
}

static void write_value(tern_metrics_writer *w, const char *name, const char *help, double value,
                        int counter) {
    if (!w || !w->source || !name_valid(name)) return;
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 16;
        tern__metrics_extra *p = realloc(w->items, cap * sizeof *p);
        if (!p) {
            w->oom = 1;
            return;
        }
        w->items = p;
        w->cap = cap;
    }
    tern__metrics_extra *e = &w->items[w->n++];
    snprintf(e->source, sizeof e->source, "%s", w->source);
    snprintf(e->name, sizeof e->name, "%s", name);
    snprintf(e->help, sizeof e->help, "%s", help ? help : "");
    e->counter = counter;
    e->value = value;
}

void tern_metrics_gauge(tern_metrics_writer *w, const char *name, const char *help, double value) {
    write_value(w, name, help, value, 0);
}

void tern_metrics_counter(tern_metrics_writer *w, const char *name, const char *help, double value) {
    write_value(w, name, help, value, 1);
}

void tern__metrics_collect_extras(tern_server *s, tern_metrics_writer *w) {
    pthread_mutex_lock(&sources_lock);
    for (size_t i = 0; i < nsources; i++) {
        if (sources[i].server && sources[i].server != s) continue;
        w->source = sources[i].name;
        sources[i].fn(sources[i].arg, w);
    }
    w->source = NULL;
    pthread_mutex_unlock(&sources_lock);
}

/* ---- formatting ------------------------------------------------------------ */

void tern__mbuf_printf(tern__mbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        size_t room = b->cap - b->len;
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(b->data ? b->data + b->len : NULL, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            b->oom = 1;
            return;
        }
        if ((size_t)n < room) {
            b->len += (size_t)n;
            return;
        }
        size_t cap = b->cap ? b->cap : 4096;
        while (cap - b->len <= (size_t)n) cap *= 2;
        char *p = realloc(b->data, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->data = p;
        b->cap = cap;
    }
}

void tern__mbuf_free(tern__mbuf *b) {
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

/* JSON string body (no quotes): the control characters, quote and
 * backslash escaped (RFC 8259 §7). */
static void json_str(tern__mbuf *b, const char *s) {
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            tern__mbuf_printf(b, "\\%c", c);
        else if (c < 0x20 || c == 0x7f)
            tern__mbuf_printf(b, "\\u%04x", c);
        else
            tern__mbuf_printf(b, "%c", c);
    }
}

static void json_double(tern__mbuf *b, double v, int decimals) {
    if (isfinite(v))
        tern__mbuf_printf(b, "%.*f", decimals, v);
    else
        tern__mbuf_printf(b, "null");
}

void tern__metrics_format_json(const tern__metrics_report *r, tern__mbuf *b) {
    const tern_stats *st = &r->stats;
#define U64(name) tern__mbuf_printf(b, "\"" #name "\":%llu,", (unsigned long long)st->name)
#define DBL(name, dec)                                                                          \
    do {                                                                                        \
        tern__mbuf_printf(b, "\"" #name "\":");                                                  \
        json_double(b, st->name, dec);                                                          \
        tern__mbuf_printf(b, ",");                                                               \
    } while (0)
    tern__mbuf_printf(b, "{");
    U64(total_requests);
    U64(active_connections);
    U64(in_flight);
    U64(memory_rss_bytes);
    DBL(cpu_usage_percent, 2);
    DBL(average_response_time_ms, 6);
    DBL(p50_ms, 6);
    DBL(p90_ms, 6);
    DBL(p99_ms, 6);
    DBL(p999_ms, 6);
    DBL(max_response_time_ms, 6);
    DBL(throughput_rps, 3);
    DBL(throughput_rps_10s, 3);
    U64(queue_delay_samples);
    DBL(queue_delay_avg_ms, 6);
    DBL(queue_delay_p99_ms, 6);
    U64(loop_lag_samples);
    DBL(loop_lag_p99_ms, 6);
    DBL(loop_lag_max_ms, 6);
    U64(status_1xx);
    U64(status_2xx);
    U64(status_3xx);
    U64(status_4xx);
    U64(status_5xx);
    U64(status_other);
    U64(shed_503);
    U64(rejected);
    U64(timeouts);
    U64(connections_opened);
    U64(connections_closed);
    tern__mbuf_printf(b, "\"threads\":%d,\"open_fds\":%d,", st->threads, st->open_fds);
    DBL(uptime_seconds, 3);
#undef U64
#undef DBL
    tern__mbuf_printf(b, "\"workers\":[");
    for (int i = 0; i < r->nworkers; i++) {
        const tern_worker_stats *w = &r->workers[i];
        tern__mbuf_printf(b, "%s{\"id\":%d,\"requests\":%llu,\"active_connections\":%llu,"
                            "\"in_flight\":%llu,\"throughput_rps\":",
                         i ? "," : "", w->id, (unsigned long long)w->requests,
                         (unsigned long long)w->active_connections,
                         (unsigned long long)w->in_flight);
        json_double(b, w->throughput_rps, 3);
        tern__mbuf_printf(b, "}");
    }
    tern__mbuf_printf(b, "],\"pools\":{");
    /* items arrive grouped by source (sources run one after another) */
    const tern__metrics_extra *items = r->extras.items;
    for (size_t i = 0; i < r->extras.n; i++) {
        int first_of_source = i == 0 || strcmp(items[i].source, items[i - 1].source) != 0;
        if (first_of_source) {
            tern__mbuf_printf(b, "%s\"", i ? "}," : "");
            json_str(b, items[i].source);
            tern__mbuf_printf(b, "\":{");
        } else {
            tern__mbuf_printf(b, ",");
        }
        tern__mbuf_printf(b, "\"%s\":", items[i].name); /* name_valid: nothing to escape */
        if (isfinite(items[i].value))
            tern__mbuf_printf(b, "%.15g", items[i].value);
        else
            tern__mbuf_printf(b, "null");
    }
    tern__mbuf_printf(b, "%s}}\n", r->extras.n ? "}" : "");
}

/* ns as decimal seconds, exact (no float rounding): 1024 -> 0.000001024 */
static void prom_seconds(tern__mbuf *b, uint64_t ns) {
    uint64_t s = ns / 1000000000ull, frac = ns % 1000000000ull;
    if (!frac) {
        tern__mbuf_printf(b, "%llu", (unsigned long long)s);
        return;
    }
    char digits[10];
    snprintf(digits, sizeof digits, "%09llu", (unsigned long long)frac);
    int len = 9;
    while (len > 1 && digits[len - 1] == '0') len--;
    tern__mbuf_printf(b, "%llu.%.*s", (unsigned long long)s, len, digits);
}

static void prom_double(tern__mbuf *b, double v) {
    if (isnan(v))
        tern__mbuf_printf(b, "NaN");
    else if (isinf(v))
        tern__mbuf_printf(b, v > 0 ? "+Inf" : "-Inf");
    else
        tern__mbuf_printf(b, "%.9g", v);
}

static void prom_head(tern__mbuf *b, const char *name, const char *type, const char *help) {
    tern__mbuf_printf(b, "# HELP %s ", name);
    /* HELP escapes backslash and newline (exposition format 0.0.4) */
    for (const char *p = help; *p; p++) {
        if (*p == '\\')
            tern__mbuf_printf(b, "\\\\");
        else if (*p == '\n')
            tern__mbuf_printf(b, "\\n");
        else
            tern__mbuf_printf(b, "%c", *p);
    }
    tern__mbuf_printf(b, "\n# TYPE %s %s\n", name, type);
}

static void prom_u64(tern__mbuf *b, const char *name, const char *type, const char *help,
                     uint64_t v) {
    prom_head(b, name, type, help);
    tern__mbuf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

static void prom_label_value(tern__mbuf *b, const char *s) {
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            tern__mbuf_printf(b, "\\%c", *s);
        else if (*s == '\n')
            tern__mbuf_printf(b, "\\n");
        else
            tern__mbuf_printf(b, "%c", *s);
    }
}

/* The `le` bounds shown: the histogram's own bucket bounds nearest to a
 * 1-2.5-5 series from 1 µs to 100 s, so every cumulative count is exact
 * rather than split from a bucket by guesswork. */
static const uint64_t prom_targets_ns[] = {
    1000,        2500,        5000,        10000,       25000,        50000,        100000,
    250000,      500000,      1000000,     2500000,     5000000,      10000000,     25000000,
    50000000,    100000000,   250000000,   500000000,   1000000000,   2500000000,   5000000000,
    10000000000, 25000000000, 50000000000, 100000000000};

static unsigned prom_bucket_for(uint64_t target) {
    unsigned i = tern__hist_index(target);
    if (i == 0) return 0;
    uint64_t above = tern__hist_upper(i) - target, below = target - tern__hist_upper(i - 1);
    return below < above ? i - 1 : i;
}

static void prom_histogram(tern__mbuf *b, const char *name, const char *help,
                           const tern__hist_snap *h) {
    prom_head(b, name, "histogram", help);
    uint64_t cum = 0;
    unsigned next = 0;
    for (size_t t = 0; t < sizeof prom_targets_ns / sizeof prom_targets_ns[0]; t++) {
        unsigned upto = prom_bucket_for(prom_targets_ns[t]);
        for (; next <= upto; next++) cum += h->bucket[next];
        tern__mbuf_printf(b, "%s_bucket{le=\"", name);
        prom_seconds(b, tern__hist_upper(upto));
        tern__mbuf_printf(b, "\"} %llu\n", (unsigned long long)cum);
    }
    tern__mbuf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    tern__mbuf_printf(b, "%s_sum ", name);
    prom_seconds(b, h->sum);
    tern__mbuf_printf(b, "\n%s_count %llu\n", name, (unsigned long long)h->count);
}

static void prom_summary(tern__mbuf *b, const char *name, const char *help,
                         const tern__hist_snap *h) {
    static const char *const qs[] = {"0.5", "0.9", "0.99", "0.999"};
    static const double qv[] = {0.5, 0.9, 0.99, 0.999};
    prom_head(b, name, "summary", help);
    for (int i = 0; i < 4; i++) {
        tern__mbuf_printf(b, "%s{quantile=\"%s\"} ", name, qs[i]);
        /* no observations: NaN, as client libraries report an empty summary */
        if (h->count)
            prom_seconds(b, (uint64_t)(tern__hist_quantile(h, qv[i]) + 0.5));
        else
            tern__mbuf_printf(b, "NaN");
        tern__mbuf_printf(b, "\n");
    }
    tern__mbuf_printf(b, "%s_sum ", name);
    prom_seconds(b, h->sum);
    tern__mbuf_printf(b, "\n%s_count %llu\n", name, (unsigned long long)h->count);
}

static int extra_cmp(const void *a, const void *b) {
    const tern__metrics_extra *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    c = strcmp(x->source, y->source);
    if (c) return c;
    return x < y ? -1 : x > y; /* stable: a source writing a name twice keeps its order */
}

static void prom_extras(tern__mbuf *b, const tern_metrics_writer *ex) {
    if (!ex->n) return;
    /* a family's samples must be contiguous under one HELP/TYPE, and
     * several sources may write the same name: sort by name */
    tern__metrics_extra *items = malloc(ex->n * sizeof *items);
    if (!items) {
        b->oom = 1;
        return;
    }
    memcpy(items, ex->items, ex->n * sizeof *items);
    qsort(items, ex->n, sizeof *items, extra_cmp);
    for (size_t i = 0; i < ex->n; i++) {
        if (i > 0 && strcmp(items[i].name, items[i - 1].name) == 0) {
            /* same family, same source twice: the first value wins (a
             * duplicate series would make the exposition invalid) */
            if (strcmp(items[i].source, items[i - 1].source) == 0) continue;
        } else {
            char family[96];
            snprintf(family, sizeof family, "tern_pool_%s", items[i].name);
            prom_head(b, family, items[i].counter ? "counter" : "gauge",
                      items[i].help[0] ? items[i].help : items[i].name);
        }
        tern__mbuf_printf(b, "tern_pool_%s{pool=\"", items[i].name);
        prom_label_value(b, items[i].source);
        tern__mbuf_printf(b, "\"} ");
        prom_double(b, items[i].value);
        tern__mbuf_printf(b, "\n");
    }
    free(items);
}

void tern__metrics_format_prometheus(const tern__metrics_report *r, tern__mbuf *b) {
    const tern_stats *st = &r->stats;
    const tern__metrics_snap *sn = &r->snap;
    static const char *const classes[6] = {"other", "1xx", "2xx", "3xx", "4xx", "5xx"};
    prom_head(b, "tern_requests_total", "counter",
              "Responses queued, by status class (rejections and sheds included).");
    for (int i = 1; i <= 6; i++)
        tern__mbuf_printf(b, "tern_requests_total{status_class=\"%s\"} %llu\n", classes[i % 6],
                         (unsigned long long)sn->status_class[i % 6]);
    prom_histogram(b, "tern_request_duration_seconds",
                   "Time from request read to response queued.", &sn->latency);
    prom_summary(b, "tern_request_latency_seconds",
                 "Request duration quantiles from the log-linear histogram (within 6.25%).",
                 &sn->latency);
    prom_summary(b, "tern_queue_delay_seconds",
                 "Time a request waited before its handler started.", &sn->queue_delay);
    prom_summary(b, "tern_loop_lag_seconds",
                 "How late each worker's periodic 10 ms timer fired.", &sn->loop_lag);
    prom_head(b, "tern_throughput_rps", "gauge",
              "Responses per second over the last complete second(s).");
    tern__mbuf_printf(b, "tern_throughput_rps{window=\"1s\"} ");
    prom_double(b, st->throughput_rps);
    tern__mbuf_printf(b, "\ntern_throughput_rps{window=\"10s\"} ");
    prom_double(b, st->throughput_rps_10s);
    tern__mbuf_printf(b, "\n");
    prom_u64(b, "tern_connections_opened_total", "counter", "Connections accepted.",
             st->connections_opened);
    prom_u64(b, "tern_connections_closed_total", "counter", "Connections closed.",
             st->connections_closed);
    prom_u64(b, "tern_connections_active", "gauge", "Connections open now.",
             st->active_connections);
    prom_u64(b, "tern_in_flight", "gauge", "Requests inside handlers now.", st->in_flight);
    prom_u64(b, "tern_shed_total", "counter", "Requests refused with 503 by admission control.",
             st->shed_503);
    prom_u64(b, "tern_rejected_total", "counter",
             "Malformed or refused requests answered with an error status.", st->rejected);
    prom_u64(b, "tern_timeouts_total", "counter", "Connections closed by a timeout.",
             st->timeouts);
    prom_u64(b, "tern_process_resident_memory_bytes", "gauge",
             "Resident set size from /proc/self/statm.", st->memory_rss_bytes);
    prom_head(b, "tern_process_cpu_percent", "gauge",
              "Process CPU time over wall time, percent of one CPU, over the last 1-2 s.");
    tern__mbuf_printf(b, "tern_process_cpu_percent ");
    prom_double(b, st->cpu_usage_percent);
    tern__mbuf_printf(b, "\n");
    if (st->threads >= 0)
        prom_u64(b, "tern_process_threads", "gauge", "Threads in the process.",
                 (uint64_t)st->threads);
    if (st->open_fds >= 0)
        prom_u64(b, "tern_process_open_fds", "gauge", "Open file descriptors.",
                 (uint64_t)st->open_fds);
    prom_head(b, "tern_uptime_seconds", "gauge", "Time since the workers started.");
    tern__mbuf_printf(b, "tern_uptime_seconds ");
    prom_double(b, st->uptime_seconds);
    tern__mbuf_printf(b, "\n");
    prom_u64(b, "tern_workers", "gauge", "Worker threads serving.", (uint64_t)st->workers);
    prom_head(b, "tern_worker_requests_total", "counter", "Responses queued, per worker.");
    for (int i = 0; i < r->nworkers; i++)
        tern__mbuf_printf(b, "tern_worker_requests_total{worker=\"%d\"} %llu\n", r->workers[i].id,
                         (unsigned long long)r->workers[i].requests);
    prom_head(b, "tern_worker_connections_active", "gauge", "Connections open now, per worker.");
    for (int i = 0; i < r->nworkers; i++)
        tern__mbuf_printf(b, "tern_worker_connections_active{worker=\"%d\"} %llu\n",
                         r->workers[i].id, (unsigned long long)r->workers[i].active_connections);
    prom_extras(b, &r->extras);
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
        tern_resp_set_header(ctx, "Content-Type", prometheus ? "text/plain; version=0.0.4; charset=utf-8"
                                                       : "application/json");
        tern_resp_set_header(ctx, "Cache-Control", "no-store");
        ok = tern_resp_set_body(ctx, b.data, b.len) == 0;
    }
    if (!ok) tern_resp_text(ctx, 503, "503 Service Unavailable: out of memory\n");
    tern__mbuf_free(&b);
    if (r) tern__metrics_report_free(r);
    free(r);
}

void tern_stats_handler(tern_ctx *ctx) { serve(ctx, 0); }
void tern_metrics_handler(tern_ctx *ctx) { serve(ctx, 1); }
