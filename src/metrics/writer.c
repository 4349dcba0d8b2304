/* Metric text: buffer, escaping, numbers, and the generic families (see
 * writer.h). */
#include "metrics/writer.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- output buffer ----------------------------------------------------------- */

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

/* ---- values written by extra sources ---------------------------------------- */

int tern__metric_name_valid(const char *name) {
    if (!name ||
        !((*name >= 'a' && *name <= 'z') || (*name >= 'A' && *name <= 'Z') || *name == '_'))
        return 0;
    size_t n = 0;
    for (const char *p = name; *p; p++, n++) {
        char c = *p;
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    return n < 64;
}

static void write_value(tern_metrics_writer *w, const char *name, const char *help, double value,
                        int counter) {
    if (!w || !w->source || !tern__metric_name_valid(name)) return;
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

void tern_metrics_counter(tern_metrics_writer *w, const char *name, const char *help,
                          double value) {
    write_value(w, name, help, value, 1);
}

void tern__metrics_writer_free(tern_metrics_writer *w) {
    free(w->items);
    w->items = NULL;
    w->n = w->cap = 0;
}

/* ---- JSON --------------------------------------------------------------------- */

void tern__json_str(tern__mbuf *b, const char *s) {
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

void tern__json_double(tern__mbuf *b, double v, int decimals) {
    if (isfinite(v))
        tern__mbuf_printf(b, "%.*f", decimals, v);
    else
        tern__mbuf_printf(b, "null");
}

void tern__json_extras(tern__mbuf *b, const tern_metrics_writer *ex) {
    tern__mbuf_printf(b, "{");
    const tern__metrics_extra *items = ex->items;
    for (size_t i = 0; i < ex->n; i++) {
        int first_of_source = i == 0 || strcmp(items[i].source, items[i - 1].source) != 0;
        if (first_of_source) {
            tern__mbuf_printf(b, "%s\"", i ? "}," : "");
            tern__json_str(b, items[i].source);
            tern__mbuf_printf(b, "\":{");
        } else {
            tern__mbuf_printf(b, ",");
        }
        /* tern__metric_name_valid: nothing to escape */
        tern__mbuf_printf(b, "\"%s\":", items[i].name);
        if (isfinite(items[i].value))
            tern__mbuf_printf(b, "%.15g", items[i].value);
        else
            tern__mbuf_printf(b, "null");
    }
    tern__mbuf_printf(b, "%s}", ex->n ? "}" : "");
}

/* ---- Prometheus text ---------------------------------------------------------- */

void tern__prom_seconds(tern__mbuf *b, uint64_t ns) {
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

void tern__prom_double(tern__mbuf *b, double v) {
    if (isnan(v))
        tern__mbuf_printf(b, "NaN");
    else if (isinf(v))
        tern__mbuf_printf(b, v > 0 ? "+Inf" : "-Inf");
    else
        tern__mbuf_printf(b, "%.9g", v);
}

void tern__prom_head(tern__mbuf *b, const char *name, const char *type, const char *help) {
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

void tern__prom_u64(tern__mbuf *b, const char *name, const char *type, const char *help,
                    uint64_t v) {
    tern__prom_head(b, name, type, help);
    tern__mbuf_printf(b, "%s %llu\n", name, (unsigned long long)v);
}

void tern__prom_label_value(tern__mbuf *b, const char *s) {
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
    1000,        2500,        5000,        10000,       25000,      50000,      100000,
    250000,      500000,      1000000,     2500000,     5000000,    10000000,   25000000,
    50000000,    100000000,   250000000,   500000000,   1000000000, 2500000000, 5000000000,
    10000000000, 25000000000, 50000000000, 100000000000};

static unsigned prom_bucket_for(uint64_t target) {
    unsigned i = tern__hist_index(target);
    if (i == 0) return 0;
    uint64_t above = tern__hist_upper(i) - target, below = target - tern__hist_upper(i - 1);
    return below < above ? i - 1 : i;
}

static void prom_sum_count(tern__mbuf *b, const char *name, const tern__hist_snap *h) {
    tern__mbuf_printf(b, "%s_sum ", name);
    tern__prom_seconds(b, h->sum);
    tern__mbuf_printf(b, "\n%s_count %llu\n", name, (unsigned long long)h->count);
}

void tern__prom_histogram(tern__mbuf *b, const char *name, const char *help,
                          const tern__hist_snap *h) {
    tern__prom_head(b, name, "histogram", help);
    uint64_t cum = 0;
    unsigned next = 0;
    for (size_t t = 0; t < sizeof prom_targets_ns / sizeof prom_targets_ns[0]; t++) {
        unsigned upto = prom_bucket_for(prom_targets_ns[t]);
        for (; next <= upto; next++) cum += h->bucket[next];
        tern__mbuf_printf(b, "%s_bucket{le=\"", name);
        tern__prom_seconds(b, tern__hist_upper(upto));
        tern__mbuf_printf(b, "\"} %llu\n", (unsigned long long)cum);
    }
    tern__mbuf_printf(b, "%s_bucket{le=\"+Inf\"} %llu\n", name, (unsigned long long)h->count);
    prom_sum_count(b, name, h);
}

/* One line per quantile: name{labels,<qlabel>="<qnames[i]>"} seconds. */
static void prom_quantile_lines(tern__mbuf *b, const char *name, const char *labels,
                                const char *qlabel, const char *const qnames[4],
                                const tern__hist_snap *h) {
    static const double qv[] = {0.5, 0.9, 0.99, 0.999};
    for (int i = 0; i < 4; i++) {
        tern__mbuf_printf(b, "%s{%s%s%s=\"%s\"} ", name, labels ? labels : "",
                          labels && *labels ? "," : "", qlabel, qnames[i]);
        /* no observations: NaN, as client libraries report an empty summary */
        if (h->count)
            tern__prom_seconds(b, (uint64_t)(tern__hist_quantile(h, qv[i]) + 0.5));
        else
            tern__mbuf_printf(b, "NaN");
        tern__mbuf_printf(b, "\n");
    }
}

void tern__prom_quantiles(tern__mbuf *b, const char *name, const char *labels,
                          const tern__hist_snap *h) {
    static const char *const qs[] = {"0.5", "0.9", "0.99", "0.999"};
    prom_quantile_lines(b, name, labels, "quantile", qs, h);
}

void tern__prom_percentiles(tern__mbuf *b, const char *name, const char *labels,
                            const tern__hist_snap *h) {
    static const char *const ps[] = {"50", "90", "99", "99.9"};
    prom_quantile_lines(b, name, labels, "percentile", ps, h);
}

void tern__prom_summary(tern__mbuf *b, const char *name, const char *help,
                        const tern__hist_snap *h) {
    tern__prom_head(b, name, "summary", help);
    tern__prom_quantiles(b, name, NULL, h);
    prom_sum_count(b, name, h);
}

static int extra_cmp(const void *a, const void *b) {
    const tern__metrics_extra *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c) return c;
    c = strcmp(x->source, y->source);
    if (c) return c;
    return x < y ? -1 : x > y; /* stable: a source writing a name twice keeps its order */
}

void tern__prom_extras(tern__mbuf *b, const tern_metrics_writer *ex) {
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
            tern__prom_head(b, family, items[i].counter ? "counter" : "gauge",
                            items[i].help[0] ? items[i].help : items[i].name);
        }
        tern__mbuf_printf(b, "tern_pool_%s{pool=\"", items[i].name);
        tern__prom_label_value(b, items[i].source);
        tern__mbuf_printf(b, "\"} ");
        tern__prom_double(b, items[i].value);
        tern__mbuf_printf(b, "\n");
    }
    free(items);
}
