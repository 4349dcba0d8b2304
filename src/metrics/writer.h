/* Metric text: a growing output buffer, JSON and Prometheus (exposition
 * format 0.0.4) escaping and number formatting, histogram and summary
 * families, and tern_metrics_writer, the sink extra sources write their
 * values into (tern_metrics_gauge / tern_metrics_counter). Knows nothing of
 * servers or workers: the layouts of /stats and /metrics live with the
 * server (src/server/metrics.c) and are built from these pieces. */
#ifndef TERN_METRICS_WRITER_H
#define TERN_METRICS_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "metrics/histogram.h"
#include "tern/metrics.h"

/* ---- output buffer ----------------------------------------------------------- */
/* Zeroed is empty. On allocation failure `oom` is set and later writes are
 * dropped, so a caller checks once at the end. */
typedef struct tern__mbuf {
    char *data;
    size_t len, cap;
    int oom;
} tern__mbuf;

void tern__mbuf_printf(tern__mbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tern__mbuf_free(tern__mbuf *b);

/* ---- values written by extra sources ---------------------------------------- */
typedef struct tern__metrics_extra {
    char source[64];
    char name[64];
    char help[160];
    int counter;
    double value;
} tern__metrics_extra;

/* Zeroed is empty; `source` names the source running (set by the registry).
 * Values with an invalid name ([a-zA-Z_][a-zA-Z0-9_]*, < 64 bytes) or
 * written while no source runs are dropped; on allocation failure `oom`. */
struct tern_metrics_writer {
    const char *source;
    tern__metrics_extra *items;
    size_t n, cap;
    int oom;
};

void tern__metrics_writer_free(tern_metrics_writer *w);
/* [a-zA-Z_][a-zA-Z0-9_]*, 1-63 bytes: valid in JSON keys and Prometheus
 * names without escaping. */
int tern__metric_name_valid(const char *name);

/* ---- JSON --------------------------------------------------------------------- */
/* String body (no quotes): control characters, quote and backslash escaped
 * (RFC 8259 §7). */
void tern__json_str(tern__mbuf *b, const char *s);
/* Fixed decimals; null for NaN and infinities (JSON has no such numbers). */
void tern__json_double(tern__mbuf *b, double v, int decimals);
/* "pools":{"<source>":{"<name>":value,...},...} without the key: the object
 * only. Items must come grouped by source (the registry runs sources one
 * after another). */
void tern__json_extras(tern__mbuf *b, const tern_metrics_writer *ex);

/* ---- Prometheus text ---------------------------------------------------------- */
/* # HELP (backslash and newline escaped) and # TYPE lines of a family. */
void tern__prom_head(tern__mbuf *b, const char *name, const char *type, const char *help);
/* A family with one unlabelled sample. */
void tern__prom_u64(tern__mbuf *b, const char *name, const char *type, const char *help,
                    uint64_t v);
/* A float sample value: NaN, +Inf, -Inf or %.9g. */
void tern__prom_double(tern__mbuf *b, double v);
/* ns as decimal seconds, exact (no float rounding): 1024 -> 0.000001024. */
void tern__prom_seconds(tern__mbuf *b, uint64_t ns);
/* Label value body (no quotes): backslash, quote and newline escaped. */
void tern__prom_label_value(tern__mbuf *b, const char *s);
/* Histogram family in seconds: cumulative `le` buckets on the histogram's
 * own bounds nearest to a 1-2.5-5 series from 1 µs to 100 s (so every
 * count is exact), +Inf, _sum and _count. */
void tern__prom_histogram(tern__mbuf *b, const char *name, const char *help,
                          const tern__hist_snap *h);
/* Summary family in seconds: quantiles 0.5, 0.9, 0.99, 0.999 (NaN when
 * empty), _sum and _count. */
void tern__prom_summary(tern__mbuf *b, const char *name, const char *help,
                        const tern__hist_snap *h);
/* The summary's quantile samples only (no HELP/TYPE, no _sum/_count),
 * quantile="0.5" ... "0.999", after optional extra labels (labels =
 * "window=\"10s\"" or NULL). NaN when empty. */
void tern__prom_quantiles(tern__mbuf *b, const char *name, const char *labels,
                          const tern__hist_snap *h);
/* The same values labelled percentile="50", "90", "99", "99.9": for gauge
 * families (promtool rejects a `quantile` label outside summaries, and a
 * windowed figure is no summary: its count is not a counter). */
void tern__prom_percentiles(tern__mbuf *b, const char *name, const char *labels,
                            const tern__hist_snap *h);
/* Extra sources as tern_pool_<name>{pool="<source>"} families, grouped by
 * name (several sources may write the same name). */
void tern__prom_extras(tern__mbuf *b, const tern_metrics_writer *ex);

#endif
