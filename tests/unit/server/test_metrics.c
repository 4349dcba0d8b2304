/* Server metrics: summing across workers (and through tern_stats_read on a
 * server whose workers are set up by hand), throughput and recent latency
 * windows at injected times, the client-gone counter, and the Prometheus
 * and JSON renderings parsed back and checked line by line. (Histogram,
 * window, registry and writer alone: tests/unit/metrics/.) */
#include "check.h"
#include "server/metrics.c"
#include "server/procstat.c"
#include "http/ctx.c"
#include "http/url.c"

#include <stdlib.h>

#define US 1000ull
#define MS 1000000ull
#define SEC 1000000000ull

/* est must lie in the bucket that holds the exact sample (so within one
 * bucket width of it: 6.25% above 1 µs) */
static int within_bucket(double est, uint64_t exact) {
    unsigned i = tern__hist_index(exact);
    return est > (double)tern__hist_lower(i) - 1e-9 && est <= (double)tern__hist_upper(i) + 1e-9;
}

/* ---- summing across workers --------------------------------------------------- */

static void test_sum_workers(void) {
    const uint64_t t0 = 5000 * SEC;
    tern__metrics *m[3];
    for (int i = 0; i < 3; i++) m[i] = tern__metrics_new_at(t0 + (uint64_t)i * SEC);
    /* worker i: (i+1)*10 responses of 200 at (i+1) ms, i 404s, i+1 sheds */
    for (int i = 0; i < 3; i++) {
        for (int n = 0; n < (i + 1) * 10; n++)
            tern__metrics_response_at(m[i], 200, (uint64_t)(i + 1) * MS, t0 + 100 * SEC);
        for (int n = 0; n < i; n++) {
            tern__metrics_response_at(m[i], 404, 50 * US, t0 + 100 * SEC);
            tern__metrics_rejected(m[i], 404);
        }
        for (int n = 0; n <= i; n++) {
            tern__metrics_response_at(m[i], 503, 10 * US, t0 + 100 * SEC);
            tern__metrics_shed(m[i]);
        }
        for (int n = 0; n < 5; n++) tern__metrics_conn_opened(m[i]);
        for (int n = 0; n < i; n++) tern__metrics_conn_closed(m[i]);
        tern__metrics_timeout(m[i]);
        tern__metrics_loop_lag(m[i], (uint64_t)(i + 1) * 100 * US);
        tern__metrics_queue_delay(m[i], 7 * US);
    }
    tern__metrics_response_at(m[2], 101, 1 * US, t0 + 100 * SEC);
    tern__metrics_response_at(m[2], 302, 1 * US, t0 + 100 * SEC);
    tern__metrics_response_at(m[2], 999, 1 * US, t0 + 100 * SEC);
    tern__metrics_snap *snap = calloc(1, sizeof *snap);
    for (int i = 0; i < 3; i++) tern__metrics_snap_add(snap, m[i], t0 + 100 * SEC);
    CHECK_INT(snap->status_class[2], 60);
    CHECK_INT(snap->status_class[4], 3);
    CHECK_INT(snap->status_class[5], 6);
    CHECK_INT(snap->status_class[1], 1);
    CHECK_INT(snap->status_class[3], 1);
    CHECK_INT(snap->status_class[0], 1);
    CHECK_INT(snap->responses, 60 + 3 + 6 + 3);
    CHECK_INT(snap->shed, 6);
    CHECK_INT(snap->rejected, 3);
    CHECK_INT(snap->timeouts, 3);
    CHECK_INT(snap->conns_opened, 15);
    CHECK_INT(snap->conns_closed, 3);
    CHECK_INT(snap->active, 12);
    CHECK_INT(snap->start_ns, t0);
    CHECK_INT(snap->latency.count, 72);
    CHECK_INT(snap->latency.sum, (10 * 1 + 20 * 2 + 30 * 3) * MS + 3 * 50 * US + 6 * 10 * US + 3 * US);
    CHECK_INT(snap->latency.max, 3 * MS);
    CHECK_INT(snap->loop_lag.count, 3);
    CHECK_INT(snap->loop_lag.max, 300 * US);
    CHECK_INT(snap->queue_delay.count, 3);
    CHECK_INT(snap->queue_delay.sum, 21 * US);

    tern_stats st;
    memset(&st, 0, sizeof st);
    tern__metrics_snap_stats(snap, &st);
    CHECK_INT(st.total_requests, 72);
    CHECK_INT(st.status_2xx, 60);
    CHECK_INT(st.shed_503, 6);
    CHECK_INT(st.active_connections, 12);
    /* sorted, ranks 1-12 are the sub-ms samples, 13-22 at 1 ms, 23-42 at
     * 2 ms, 43-72 at 3 ms: the median (rank 36) is a 2 ms sample */
    CHECK(within_bucket(st.p50_ms * 1e6, 2 * MS));
    CHECK(st.p99_ms == 3.0);
    CHECK(st.max_response_time_ms == 3.0);
    CHECK(st.loop_lag_p99_ms == 0.3);
    double avg = (double)snap->latency.sum / 72 / 1e6;
    CHECK(st.average_response_time_ms == avg);
    free(snap);
    for (int i = 0; i < 3; i++) tern__metrics_free(m[i]);
}

/* A server as tern_server_run leaves it, without threads: the readers only
 * look at s->workers[i].metrics and .in_flight. */
static void test_stats_read_server(void) {
    tern_server *s = calloc(1, sizeof *s);
    s->nworkers = 3;
    s->workers = calloc(3, sizeof(tern__worker));
    uint64_t now = tern__metrics_now();
    for (int i = 0; i < 3; i++) {
        if (i == 1) continue; /* worker 1 "not initialised yet": metrics NULL */
        s->workers[i].id = i;
        s->workers[i].metrics = tern__metrics_new_at(now - 30 * SEC);
        s->workers[i].in_flight = (uint32_t)i + 1;
        for (int n = 0; n < 7 * (i + 1); n++)
            tern__metrics_response(s->workers[i].metrics, 200, 20 * US);
        tern__metrics_conn_opened(s->workers[i].metrics);
    }
    tern_stats st;
    CHECK_INT(tern_stats_read(s, &st), 0);
    CHECK_INT(st.workers, 2);
    CHECK_INT(st.total_requests, 7 + 21);
    CHECK_INT(st.status_2xx, 28);
    CHECK_INT(st.in_flight, 1 + 3);
    CHECK_INT(st.active_connections, 2);
    CHECK(st.uptime_seconds >= 29.9 && st.uptime_seconds < 60);
    CHECK(st.memory_rss_bytes > 0);
    CHECK(st.threads >= 1);
    CHECK(st.open_fds >= 3);
    tern_worker_stats ws[4];
    CHECK_INT(tern_stats_read_workers(s, ws, 4), 2);
    CHECK_INT(ws[0].id, 0);
    CHECK_INT(ws[0].requests, 7);
    CHECK_INT(ws[0].in_flight, 1);
    CHECK_INT(ws[1].id, 2);
    CHECK_INT(ws[1].requests, 21);
    CHECK_INT(ws[1].active_connections, 1);
    CHECK_INT(tern_stats_read_workers(s, ws, 1), 2); /* count even when max is smaller */

    /* not running: no workers, process figures still there */
    tern_server *idle = calloc(1, sizeof *idle);
    CHECK_INT(tern_stats_read(idle, &st), 0);
    CHECK_INT(st.workers, 0);
    CHECK_INT(st.total_requests, 0);
    CHECK(st.memory_rss_bytes > 0);
    free(idle);
    for (int i = 0; i < 3; i++) tern__metrics_free(s->workers[i].metrics);
    free(s->workers);
    free(s);
}

/* ---- throughput windows --------------------------------------------------------- */

static void test_throughput(void) {
    const uint64_t start = 1000 * SEC + 500 * MS; /* mid-second */
    tern__metrics *m = tern__metrics_new_at(start);
    /* 30 responses 40 ms apart from 1000.5 s: 13 in second 1000, 17 in 1001 */
    for (int i = 0; i < 30; i++) tern__metrics_response_at(m, 200, US, start + (uint64_t)i * 40 * MS);
    /* young (second 1001 not complete yet): all responses / time since start */
    CHECK(tern__metrics_rate(m, 1001 * SEC + 700 * MS, 1) == 25.0);
    CHECK(tern__metrics_rate(m, 1001 * SEC + 700 * MS, 10) == 25.0);
    CHECK(tern__metrics_rate(m, start, 1) == 0.0);
    /* 1002.0: second 1001 is the first complete one after the start second */
    CHECK(tern__metrics_rate(m, 1002 * SEC, 1) == 17.0);
    /* seconds 1002..1013 get 100 + s responses each (second 1001 already
     * has the tail of the 30 above) */
    for (uint64_t sec = 1002; sec <= 1013; sec++)
        for (uint64_t n = 0; n < 100 + (sec - 1000); n++)
            tern__metrics_response_at(m, 200, US, sec * SEC + n * 5 * MS);
    /* now 1013.3 s: the last complete second is 1012 (112 responses) */
    uint64_t now = 1013 * SEC + 300 * MS;
    CHECK(tern__metrics_rate(m, now, 1) == 112.0);
    /* 1003..1012: 103 + ... + 112 = 1075 */
    CHECK(tern__metrics_rate(m, now, 10) == 107.5);
    /* the partial current second never counts, whatever it holds */
    for (int n = 0; n < 1000; n++) tern__metrics_response_at(m, 200, US, 1013 * SEC + 400 * MS);
    CHECK(tern__metrics_rate(m, 1013 * SEC + 999 * MS, 1) == 112.0);
    /* 1014.0: second 1013 is complete (113 + 1000) */
    CHECK(tern__metrics_rate(m, 1014 * SEC, 1) == 1113.0);
    CHECK(tern__metrics_rate(m, 1014 * SEC, 10) == (104 + 105 + 106 + 107 + 108 + 109 + 110 + 111 + 112 + 1113) / 10.0);
    /* idle for a while: old slots are not mistaken for recent seconds, even
     * after the ring wrapped (1030 % 16 == 1014 % 16) */
    CHECK(tern__metrics_rate(m, 1020 * SEC, 1) == 0.0);
    CHECK(tern__metrics_rate(m, 1030 * SEC + 1, 1) == 0.0);
    CHECK(tern__metrics_rate(m, 1030 * SEC + 1, 10) == 0.0);
    tern__metrics_response_at(m, 200, US, 1030 * SEC + 2);
    tern__metrics_response_at(m, 200, US, 1030 * SEC + 3);
    CHECK(tern__metrics_rate(m, 1031 * SEC, 1) == 2.0);
    CHECK(tern__metrics_rate(m, 1031 * SEC, 10) == 0.2);
    CHECK(tern__metrics_rate(m, 1031 * SEC, 0) == 0.0);

    /* summed across two workers */
    tern__metrics *m2 = tern__metrics_new_at(start);
    for (int n = 0; n < 8; n++) tern__metrics_response_at(m2, 200, US, 1030 * SEC + 5);
    tern__metrics_snap *snap = calloc(1, sizeof *snap);
    tern__metrics_snap_add(snap, m, 1031 * SEC);
    tern__metrics_snap_add(snap, m2, 1031 * SEC);
    CHECK(snap->rps_1s == 10.0);
    CHECK(snap->rps_10s > 0.999999 && snap->rps_10s < 1.000001);
    free(snap);
    tern__metrics_free(m);
    tern__metrics_free(m2);
}

/* ---- recent latency windows and abandoned requests ------------------------------ */

/* Two workers: 20 s of slow responses (100 ms), then fast ones (1 ms); the
 * 10 s figures forget the slow phase 10 s after it ends, the 60 s ones
 * keep it, the since-start ones keep it for good. */
static void test_recent_latency(void) {
    const uint64_t t0 = 9000 * SEC;
    tern__metrics *m[2] = {tern__metrics_new_at(t0), tern__metrics_new_at(t0)};
    uint64_t t = t0;
    for (; t < t0 + 20 * SEC; t += 5 * MS) tern__metrics_response_at(m[(t / MS) % 2], 200, 100 * MS, t);
    for (; t < t0 + 31 * SEC; t += 5 * MS) tern__metrics_response_at(m[(t / MS) % 2], 200, 1 * MS, t);
    tern__metrics_snap *snap = calloc(1, sizeof *snap);
    for (int i = 0; i < 2; i++) tern__metrics_snap_add(snap, m[i], t);
    tern_stats st;
    memset(&st, 0, sizeof st);
    tern__metrics_snap_stats(snap, &st);
    /* now = 9031.0: the window is seconds 9021..9031, the last one just
     * begun and empty, the others fast, 200 a second */
    CHECK_INT(st.latency_10s.count, 10 * 200);
    CHECK(within_bucket(st.latency_10s.p99_ms * 1e6, 1 * MS));
    CHECK(within_bucket(st.latency_10s.p999_ms * 1e6, 1 * MS));
    CHECK(st.latency_10s.max_ms == 1.0);
    CHECK(st.latency_10s.average_ms == 1.0);
    /* 60 s: everything, 20 s slow of 31 */
    CHECK_INT(st.latency_60s.count, 31 * 200);
    CHECK(within_bucket(st.latency_60s.p50_ms * 1e6, 100 * MS));
    CHECK(st.latency_60s.max_ms == 100.0);
    CHECK(within_bucket(st.p99_ms * 1e6, 100 * MS)); /* since start */
    CHECK_INT(st.total_requests, 31 * 200);
    /* idle for 61 s: both windows empty, reported as no data (NaN) */
    memset(snap, 0, sizeof *snap);
    for (int i = 0; i < 2; i++) tern__metrics_snap_add(snap, m[i], t + 61 * SEC);
    tern__metrics_snap_stats(snap, &st);
    CHECK_INT(st.latency_10s.count, 0);
    CHECK_INT(st.latency_60s.count, 0);
    CHECK(isnan(st.latency_10s.p99_ms) && isnan(st.latency_60s.max_ms));
    CHECK(isnan(st.latency_10s.average_ms));
    CHECK(within_bucket(st.p99_ms * 1e6, 100 * MS));
    free(snap);
    for (int i = 0; i < 2; i++) tern__metrics_free(m[i]);
    /* the memory figure quoted in docs/DESIGN.md: ~125 KiB per worker */
    CHECK(sizeof(tern__metrics) < 128 * 1024);
}

static void test_client_gone(void) {
    tern__metrics *m = tern__metrics_new_at(100 * SEC);
    tern__metrics_response_at(m, 200, 1 * MS, 101 * SEC);
    for (int i = 0; i < 3; i++) tern__metrics_client_gone(m, 5 * MS);
    tern__metrics_snap *snap = calloc(1, sizeof *snap);
    tern__metrics_snap_add(snap, m, 102 * SEC);
    CHECK_INT(snap->client_gone, 3);
    CHECK_INT(snap->client_gone_ns, 15 * MS);
    /* not a response: no status class, no latency sample, no throughput */
    CHECK_INT(snap->responses, 1);
    CHECK_INT(snap->status_class[5] + snap->status_class[4], 0);
    CHECK_INT(snap->latency.count, 1);
    CHECK_INT(snap->latency_short.count, 1);
    CHECK(snap->rps_1s == 1.0);
    tern_stats st;
    memset(&st, 0, sizeof st);
    tern__metrics_snap_stats(snap, &st);
    CHECK_INT(st.client_closed, 3);
    CHECK_INT(st.total_requests, 1);
    CHECK_INT(st.status_5xx, 0);
    free(snap);
    tern__metrics_free(m);
}

/* ---- extra sources ----------------------------------------------------------------- */

static void pool_source(void *arg, tern_metrics_writer *w) {
    const double *v = arg;
    tern_metrics_gauge(w, "active", "Connections in use.", v[0]);
    tern_metrics_gauge(w, "idle", "Idle connections.", v[1]);
    tern_metrics_counter(w, "acquired_total", "Acquisitions.", v[2]);
    tern_metrics_gauge(w, "bad-name", "dropped", 1);
    tern_metrics_gauge(w, "9lives", "dropped", 1);
}

/* Sources for the rendering test: "db" for server a only, "cache" for all. */
static void register_sources(void) {
    static double db[3] = {3, 5, 1234}, cache[3] = {1, 0, 7};
    tern_server *a = (tern_server *)(uintptr_t)0x1000, *b = (tern_server *)(uintptr_t)0x2000;
    CHECK_INT(tern_metrics_register_source(a, "db", pool_source, db), 0);
    CHECK_INT(tern_metrics_register_source(b, "db", pool_source, db), 0);
    CHECK_INT(tern_metrics_register_source(NULL, "cache", pool_source, cache), 0);
    CHECK_INT(tern_metrics_unregister_source(b, "db"), 0);
}

/* ---- Prometheus text, parsed back --------------------------------------------------- */

typedef struct prom_sample {
    char name[128];
    char labels[256];
    double value;
} prom_sample;

typedef struct prom_doc {
    prom_sample s[512];
    int n;
    char families[128][128];
    char types[128][32];
    int nfam;
    int errors;
} prom_doc;

static void prom_err(prom_doc *d, const char *line, const char *why) {
    d->errors++;
    fprintf(stderr, "prometheus: %s: %s\n", why, line);
}

static int valid_metric_name(const char *s) {
    if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || *s == '_' || *s == ':')) return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '_' || *s == ':'))
            return 0;
    return 1;
}

/* Exposition format 0.0.4: HELP then TYPE once per family, the family's
 * samples right after, no duplicate series, values parse as floats. */
static void prom_parse(prom_doc *d, const char *text, size_t len) {
    memset(d, 0, sizeof *d);
    const char *p = text, *end = text + len;
    char help_for[128] = "";
    const char *cur_type = NULL;
    char cur_family[128] = "";
    CHECK(len > 0 && text[len - 1] == '\n');
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) nl = end;
        char line[512];
        size_t ll = (size_t)(nl - p);
        if (ll >= sizeof line) {
            prom_err(d, "", "line too long");
            return;
        }
        memcpy(line, p, ll);
        line[ll] = 0;
        p = nl + 1;
        if (strncmp(line, "# HELP ", 7) == 0) {
            sscanf(line + 7, "%127s", help_for);
            if (!valid_metric_name(help_for)) prom_err(d, line, "bad HELP name");
            continue;
        }
        if (strncmp(line, "# TYPE ", 7) == 0) {
            char name[128], type[32];
            if (sscanf(line + 7, "%127s %31s", name, type) != 2) {
                prom_err(d, line, "bad TYPE");
                continue;
            }
            if (strcmp(name, help_for) != 0) prom_err(d, line, "TYPE without HELP before it");
            for (int i = 0; i < d->nfam; i++)
                if (strcmp(d->families[i], name) == 0) prom_err(d, line, "family declared twice");
            if (strcmp(type, "counter") && strcmp(type, "gauge") && strcmp(type, "histogram") &&
                strcmp(type, "summary"))
                prom_err(d, line, "unknown type");
            snprintf(d->families[d->nfam], sizeof d->families[0], "%s", name);
            snprintf(d->types[d->nfam], sizeof d->types[0], "%s", type);
            cur_type = d->types[d->nfam];
            d->nfam++;
            snprintf(cur_family, sizeof cur_family, "%s", name);
            continue;
        }
        if (line[0] == '#' || line[0] == 0) {
            prom_err(d, line, "unexpected comment or blank line");
            continue;
        }
        prom_sample *s = &d->s[d->n];
        size_t nl_name = strcspn(line, "{ ");
        memcpy(s->name, line, nl_name);
        s->name[nl_name] = 0;
        const char *rest = line + nl_name;
        s->labels[0] = 0;
        if (*rest == '{') {
            const char *close = strchr(rest, '}');
            if (!close) {
                prom_err(d, line, "unterminated labels");
                continue;
            }
            snprintf(s->labels, sizeof s->labels, "%.*s", (int)(close - rest - 1), rest + 1);
            rest = close + 1;
        }
        if (*rest != ' ') {
            prom_err(d, line, "no space before value");
            continue;
        }
        char *vend;
        s->value = strtod(rest + 1, &vend);
        if (vend == rest + 1 || *vend) prom_err(d, line, "bad value");
        if (!valid_metric_name(s->name)) prom_err(d, line, "bad sample name");
        /* the sample belongs to the family declared last */
        int ok = 0;
        size_t fl = strlen(cur_family);
        if (cur_type && strncmp(s->name, cur_family, fl) == 0) {
            const char *suf = s->name + fl;
            if (!*suf) ok = strcmp(cur_type, "histogram") != 0;
            if (!strcmp(cur_type, "histogram") || !strcmp(cur_type, "summary"))
                ok = ok || !strcmp(suf, "_sum") || !strcmp(suf, "_count") ||
                     (!strcmp(cur_type, "histogram") && !strcmp(suf, "_bucket"));
        }
        if (!ok) prom_err(d, line, "sample outside its family");
        for (int i = 0; i < d->n; i++)
            if (!strcmp(d->s[i].name, s->name) && !strcmp(d->s[i].labels, s->labels))
                prom_err(d, line, "duplicate series");
        if (d->n < (int)(sizeof d->s / sizeof d->s[0]) - 1) d->n++;
    }
}

static const prom_sample *prom_find(const prom_doc *d, const char *name, const char *labels) {
    for (int i = 0; i < d->n; i++)
        if (!strcmp(d->s[i].name, name) && !strcmp(d->s[i].labels, labels ? labels : ""))
            return &d->s[i];
    return NULL;
}

static double prom_value(const prom_doc *d, const char *name, const char *labels) {
    const prom_sample *s = prom_find(d, name, labels);
    if (!s) {
        fprintf(stderr, "prometheus: missing %s{%s}\n", name, labels ? labels : "");
        return -12345;
    }
    return s->value;
}

/* Buckets cumulative and in increasing `le` order, ending with +Inf equal to
 * _count; returns the number of buckets. */
static int prom_check_histogram(const prom_doc *d, const char *family) {
    char bname[160], cname[160];
    snprintf(bname, sizeof bname, "%s_bucket", family);
    snprintf(cname, sizeof cname, "%s_count", family);
    double prev_le = -1, prev_count = -1;
    int n = 0, saw_inf = 0;
    for (int i = 0; i < d->n; i++) {
        if (strcmp(d->s[i].name, bname)) continue;
        n++;
        CHECK(!saw_inf);
        const char *le = d->s[i].labels;
        CHECK(strncmp(le, "le=\"", 4) == 0);
        double v = strtod(le + 4, NULL);
        if (strcmp(le, "le=\"+Inf\"") == 0) saw_inf = 1;
        CHECK(v > prev_le);
        CHECK(d->s[i].value >= prev_count);
        prev_le = v;
        prev_count = d->s[i].value;
    }
    CHECK(saw_inf);
    CHECK(prev_count == prom_value(d, cname, NULL));
    return n;
}

/* Cumulative count at `le` must equal the number of recorded samples <= le. */
static double prom_bucket(const prom_doc *d, const char *family, double le) {
    char bname[160];
    snprintf(bname, sizeof bname, "%s_bucket", family);
    for (int i = 0; i < d->n; i++) {
        if (strcmp(d->s[i].name, bname)) continue;
        double v = strtod(d->s[i].labels + 4, NULL);
        if (v >= le * (1 - 1e-12) && v <= le * (1 + 1e-12)) return d->s[i].value;
    }
    return -1;
}

static tern_server *fake_server(uint64_t now, const uint64_t *lat, int nlat) {
    tern_server *s = calloc(1, sizeof *s);
    s->nworkers = 2;
    s->workers = calloc(2, sizeof(tern__worker));
    for (int i = 0; i < 2; i++) {
        s->workers[i].id = i;
        s->workers[i].metrics = tern__metrics_new_at(now - 20 * SEC);
    }
    for (int i = 0; i < nlat; i++)
        tern__metrics_response_at(s->workers[i % 2].metrics, 200, lat[i], now - SEC / 2);
    tern__metrics_response_at(s->workers[0].metrics, 400, 3 * US, now - SEC / 2);
    tern__metrics_rejected(s->workers[0].metrics, 400);
    tern__metrics_response_at(s->workers[1].metrics, 503, 2 * US, now - SEC / 2);
    tern__metrics_shed(s->workers[1].metrics);
    for (int i = 0; i < 4; i++) tern__metrics_conn_opened(s->workers[i % 2].metrics);
    tern__metrics_conn_closed(s->workers[1].metrics);
    tern__metrics_loop_lag(s->workers[0].metrics, 150 * US);
    tern__metrics_loop_lag(s->workers[1].metrics, 2 * MS);
    tern__metrics_client_gone(s->workers[1].metrics, 4 * MS);
    return s;
}

static void free_fake_server(tern_server *s) {
    for (int i = 0; i < s->nworkers; i++) tern__metrics_free(s->workers[i].metrics);
    free(s->workers);
    free(s);
}

static void test_prometheus(void) {
    /* latencies chosen around the exported `le` bounds */
    const uint64_t lat[] = {500,       1024,      1025,       20 * US,    24576,     24577,
                            300 * US,  1 * MS,    1015808,    1015809,    7 * MS,    40 * MS,
                            120 * MS,  900 * MS,  3 * SEC,    200 * SEC};
    const int nlat = (int)(sizeof lat / sizeof lat[0]);
    /* a fixed "now" (5000.3 s) so the throughput window is deterministic */
    const uint64_t now = 5000 * SEC + 300 * MS;
    tern_server *s = fake_server(now, lat, nlat);
    tern_server *a = (tern_server *)(uintptr_t)0x1000;
    tern__metrics_report *r = calloc(1, sizeof *r);
    CHECK_INT(tern__metrics_report_build(s, r, now, 1), 0);
    /* the "a"-only source must not show on this server; the global one does */
    CHECK_INT(r->extras.n, 3);
    tern__metrics_report_free(r);
    /* render one with both sources: the report for server a */
    tern_metrics_writer ex = {0};
    tern__metrics_registry_collect(a, &ex);
    CHECK_INT(tern__metrics_report_build(s, r, now, 0), 0);
    r->extras = ex;
    tern__mbuf b = {0};
    tern__metrics_format_prometheus(r, &b);
    CHECK(!b.oom);
    prom_doc *d = malloc(sizeof *d);
    prom_parse(d, b.data, b.len);
    CHECK_INT(d->errors, 0);
    if (d->errors) fprintf(stderr, "%.*s", (int)b.len, b.data);

    CHECK(prom_value(d, "tern_requests_total", "status_class=\"2xx\"") == nlat);
    CHECK(prom_value(d, "tern_requests_total", "status_class=\"4xx\"") == 1);
    CHECK(prom_value(d, "tern_requests_total", "status_class=\"5xx\"") == 1);
    CHECK(prom_value(d, "tern_requests_total", "status_class=\"1xx\"") == 0);
    CHECK(prom_value(d, "tern_requests_total", "status_class=\"other\"") == 0);
    CHECK_INT(prom_check_histogram(d, "tern_request_duration_seconds"), 26);
    CHECK(prom_value(d, "tern_request_duration_seconds_count", NULL) == nlat + 2);
    uint64_t sum = 5 * US;
    for (int i = 0; i < nlat; i++) sum += lat[i];
    double psum = prom_value(d, "tern_request_duration_seconds_sum", NULL);
    CHECK(psum > (double)sum / 1e9 * (1 - 1e-12) && psum < (double)sum / 1e9 * (1 + 1e-12));
    /* exact cumulative counts at bounds (samples <= le): 500 and 1024 ns */
    CHECK(prom_bucket(d, "tern_request_duration_seconds", 0.000001024) == 2);
    /* le 24.576 µs: + 1025, 20 µs, 24576 and the 2 and 3 µs */
    CHECK(prom_bucket(d, "tern_request_duration_seconds", 0.000024576) == 7);
    /* le 1.015808 ms: + 24577, 300 µs, 1 ms, 1015808 */
    CHECK(prom_bucket(d, "tern_request_duration_seconds", 0.001015808) == 11);
    /* 200 s is beyond the last bound: only in +Inf */
    CHECK(prom_bucket(d, "tern_request_duration_seconds", 98.784247808) == nlat + 1);
    CHECK(prom_value(d, "tern_request_duration_seconds_bucket", "le=\"+Inf\"") == nlat + 2);
    CHECK(prom_value(d, "tern_loop_lag_seconds_count", NULL) == 2);
    CHECK(prom_value(d, "tern_loop_lag_seconds", "quantile=\"0.99\"") == 0.002);
    CHECK(prom_value(d, "tern_request_latency_seconds", "quantile=\"0.999\"") == 200);
    /* every response was 0.5 s ago: both recent windows hold all of them */
    CHECK(prom_value(d, "tern_request_latency_window_seconds", "window=\"10s\",percentile=\"99.9\"") == 200);
    CHECK(prom_value(d, "tern_request_latency_window_seconds", "window=\"60s\",percentile=\"50\"") > 0);
    CHECK(prom_value(d, "tern_responses_in_window", "window=\"10s\"") == nlat + 2);
    CHECK(prom_value(d, "tern_responses_in_window", "window=\"60s\"") == nlat + 2);
    CHECK(prom_value(d, "tern_client_closed_total", NULL) == 1);
    const prom_sample *qd = prom_find(d, "tern_queue_delay_seconds", "quantile=\"0.5\"");
    CHECK(qd && qd->value != qd->value); /* no samples: NaN */
    CHECK(prom_value(d, "tern_connections_active", NULL) == 3);
    CHECK(prom_value(d, "tern_connections_opened_total", NULL) == 4);
    CHECK(prom_value(d, "tern_shed_total", NULL) == 1);
    CHECK(prom_value(d, "tern_rejected_total", NULL) == 1);
    CHECK(prom_value(d, "tern_workers", NULL) == 2);
    CHECK(prom_value(d, "tern_worker_requests_total", "worker=\"0\"") == nlat / 2 + 1);
    CHECK(prom_value(d, "tern_process_resident_memory_bytes", NULL) > 0);
    CHECK(prom_value(d, "tern_uptime_seconds", NULL) >= 19.9);
    /* throughput: every response was at 4999.8 s, in the last complete second */
    CHECK(prom_value(d, "tern_throughput_rps", "window=\"1s\"") == nlat + 2);
    CHECK(prom_value(d, "tern_throughput_rps", "window=\"10s\"") == (nlat + 2) / 10.0);
    /* extras from two sources share families: grouped by name, sorted */
    CHECK(prom_value(d, "tern_pool_active", "pool=\"db\"") == 3);
    CHECK(prom_value(d, "tern_pool_active", "pool=\"cache\"") == 1);
    CHECK(prom_value(d, "tern_pool_acquired_total", "pool=\"db\"") == 1234);
    CHECK(prom_value(d, "tern_pool_idle", "pool=\"cache\"") == 0);
    int fam_counter = 0;
    for (int i = 0; i < d->nfam; i++)
        if (!strcmp(d->families[i], "tern_pool_acquired_total"))
            fam_counter = !strcmp(d->types[i], "counter");
    CHECK(fam_counter);
    free(d);

    /* JSON: field names and values (full parse in the integration test) */
    tern__mbuf j = {0};
    tern__metrics_format_json(r, &j);
    tern__mbuf_printf(&j, "%c", 0);
    CHECK(strncmp(j.data, "{\"total_requests\":18,", 21) == 0);
    static const char *const fields[] = {
        "\"active_connections\":3,", "\"in_flight\":0,", "\"memory_rss_bytes\":",
        "\"cpu_usage_percent\":", "\"average_response_time_ms\":", "\"p50_ms\":", "\"p90_ms\":",
        "\"p99_ms\":", "\"p999_ms\":200000.000000,", "\"throughput_rps\":",
        "\"throughput_rps_10s\":", "\"loop_lag_p99_ms\":2.000000,", "\"status_1xx\":0,",
        "\"status_2xx\":16,", "\"status_3xx\":0,", "\"status_4xx\":1,", "\"status_5xx\":1,",
        "\"shed_503\":1,", "\"rejected\":1,", "\"timeouts\":0,", "\"connections_opened\":4,",
        "\"client_closed\":1,", "\"latency_10s\":{\"count\":18,\"average_ms\":",
        "\"latency_60s\":{\"count\":18,", "\"p999_ms\":200000.000000,\"max_ms\":200000.000000},",
        "\"uptime_seconds\":20.", "\"workers\":[{\"id\":0,\"requests\":9,\"active_connections\":2,",
        "{\"id\":1,\"requests\":9,\"active_connections\":1,",
        ("\"pools\":{\"db\":{\"active\":3,\"idle\":5,\"acquired_total\":1234},"
         "\"cache\":{\"active\":1,\"idle\":0,\"acquired_total\":7}}}\n")};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        int found = strstr(j.data, fields[i]) != NULL;
        CHECK(found);
        if (!found) fprintf(stderr, "missing %s in %s\n", fields[i], j.data);
    }
    tern__mbuf_free(&j);

    /* no sources, no workers: still valid */
    tern__metrics_report_free(r);
    tern__metrics_report *empty = calloc(1, sizeof *empty);
    CHECK_INT(tern__metrics_report_build(NULL, empty, now, 0), 0);
    tern__mbuf e = {0};
    tern__metrics_format_json(empty, &e);
    tern__mbuf_printf(&e, "%c", 0);
    CHECK(strstr(e.data, "\"workers\":[],\"pools\":{}}\n") != NULL);
    CHECK(strstr(e.data, "\"latency_10s\":{\"count\":0,\"average_ms\":null,\"p50_ms\":null,"
                         "\"p90_ms\":null,\"p99_ms\":null,\"p999_ms\":null,\"max_ms\":null},") != NULL);
    tern__mbuf_free(&e);
    tern__metrics_format_prometheus(empty, &e);
    d = malloc(sizeof *d);
    prom_parse(d, e.data, e.len);
    CHECK_INT(d->errors, 0);
    CHECK(prom_value(d, "tern_request_duration_seconds_count", NULL) == 0);
    free(d);
    tern__mbuf_free(&e);
    tern__metrics_report_free(empty);
    free(empty);

    tern__mbuf_free(&b);
    free(r);
    free_fake_server(s);
    tern_metrics_unregister_source(a, "db");
    tern_metrics_unregister_source(NULL, "cache");
}

int main(void) {
    test_sum_workers();
    test_stats_read_server();
    test_throughput();
    test_recent_latency();
    test_client_gone();
    register_sources();
    test_prometheus();
    return check_done();
}
