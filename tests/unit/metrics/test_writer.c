/* Metric text: JSON string escaping and numbers, Prometheus HELP and label
 * escaping, exact seconds, float values, quantile lines, extras in both
 * formats, and the output buffer growing and failing cleanly. */
#include "check.h"
#include "metrics/histogram.c"
#include "metrics/writer.c"

#include <stdlib.h>
#include <string.h>

/* Runs fn on a fresh buffer and compares the text with want. */
#define EXPECT_TEXT(want, ...)                                                                     \
    do {                                                                                           \
        tern__mbuf b_ = {0};                                                                       \
        tern__mbuf *b = &b_;                                                                       \
        __VA_ARGS__;                                                                               \
        tern__mbuf_printf(b, "%c", 0);                                                             \
        CHECK(!b_.oom);                                                                            \
        CHECK_STR(b_.data, want);                                                                  \
        tern__mbuf_free(&b_);                                                                      \
    } while (0)

static void test_json(void) {
    EXPECT_TEXT("plain", tern__json_str(b, "plain"));
    EXPECT_TEXT("a\\\"b\\\\c", tern__json_str(b, "a\"b\\c"));
    EXPECT_TEXT("\\u000a\\u0009\\u0001\\u007f", tern__json_str(b, "\n\t\x01\x7f"));
    /* UTF-8 passes through unchanged */
    EXPECT_TEXT("\xc2\xb5s", tern__json_str(b, "\xc2\xb5s"));
    EXPECT_TEXT("1.500", tern__json_double(b, 1.5, 3));
    EXPECT_TEXT("null", tern__json_double(b, 0.0 / 0.0, 3));
    EXPECT_TEXT("null", tern__json_double(b, 1.0 / 0.0, 3));
    EXPECT_TEXT("0.000001", tern__json_double(b, 1e-6, 6));
}

static void test_prometheus_escaping(void) {
    EXPECT_TEXT("# HELP m a \\\\ b \\n c \"q\"\n# TYPE m gauge\n",
                tern__prom_head(b, "m", "gauge", "a \\ b \n c \"q\""));
    EXPECT_TEXT("a\\\"b\\\\c\\nd\te", tern__prom_label_value(b, "a\"b\\c\nd\te"));
    EXPECT_TEXT("# HELP c_total h\n# TYPE c_total counter\nc_total 42\n",
                tern__prom_u64(b, "c_total", "counter", "h", 42));
}

static void test_prometheus_numbers(void) {
    EXPECT_TEXT("0", tern__prom_seconds(b, 0));
    EXPECT_TEXT("0.000001024", tern__prom_seconds(b, 1024));
    EXPECT_TEXT("1.5", tern__prom_seconds(b, 1500000000));
    EXPECT_TEXT("137.438953472", tern__prom_seconds(b, 1ull << 37));
    EXPECT_TEXT("18446744073.709551615", tern__prom_seconds(b, UINT64_MAX));
    EXPECT_TEXT("NaN", tern__prom_double(b, 0.0 / 0.0));
    EXPECT_TEXT("+Inf", tern__prom_double(b, 1.0 / 0.0));
    EXPECT_TEXT("-Inf", tern__prom_double(b, -1.0 / 0.0));
    EXPECT_TEXT("0.25", tern__prom_double(b, 0.25));
    EXPECT_TEXT("123456789", tern__prom_double(b, 123456789.0));
}

static void test_quantile_lines(void) {
    tern__hist_snap *h = calloc(1, sizeof *h);
    EXPECT_TEXT("q{w=\"10s\",quantile=\"0.5\"} NaN\nq{w=\"10s\",quantile=\"0.9\"} NaN\n"
                "q{w=\"10s\",quantile=\"0.99\"} NaN\nq{w=\"10s\",quantile=\"0.999\"} NaN\n",
                tern__prom_quantiles(b, "q", "w=\"10s\"", h));
    /* one sample of exactly 1 ms: every quantile is that sample */
    h->bucket[tern__hist_index(1000000)] = 1;
    h->count = 1;
    h->sum = h->max = 1000000;
    EXPECT_TEXT("q{quantile=\"0.5\"} 0.001\nq{quantile=\"0.9\"} 0.001\n"
                "q{quantile=\"0.99\"} 0.001\nq{quantile=\"0.999\"} 0.001\n",
                tern__prom_quantiles(b, "q", NULL, h));
    EXPECT_TEXT(
        "p{window=\"10s\",percentile=\"50\"} 0.001\np{window=\"10s\",percentile=\"90\"} 0.001\n"
        "p{window=\"10s\",percentile=\"99\"} 0.001\np{window=\"10s\",percentile=\"99.9\"} 0.001\n",
        tern__prom_percentiles(b, "p", "window=\"10s\"", h));
    free(h);
}

static void test_extras(void) {
    tern_metrics_writer w = {0};
    w.source = "db\"1";
    tern_metrics_gauge(&w, "idle", "Idle.", 2);
    tern_metrics_counter(&w, "used_total", "Used.", 10);
    tern_metrics_gauge(&w, "bad name", "dropped", 1);
    w.source = "cache";
    tern_metrics_gauge(&w, "idle", "Idle.", 0.0 / 0.0);
    w.source = NULL;
    CHECK_INT(w.n, 3);
    EXPECT_TEXT("{\"db\\\"1\":{\"idle\":2,\"used_total\":10},\"cache\":{\"idle\":null}}",
                tern__json_extras(b, &w));
    /* sorted by name then source, one HELP/TYPE per family, labels escaped */
    EXPECT_TEXT("# HELP tern_pool_idle Idle.\n# TYPE tern_pool_idle gauge\n"
                "tern_pool_idle{pool=\"cache\"} NaN\n"
                "tern_pool_idle{pool=\"db\\\"1\"} 2\n"
                "# HELP tern_pool_used_total Used.\n# TYPE tern_pool_used_total counter\n"
                "tern_pool_used_total{pool=\"db\\\"1\"} 10\n",
                tern__prom_extras(b, &w));
    tern__metrics_writer_free(&w);
    tern_metrics_writer empty = {0};
    EXPECT_TEXT("{}", tern__json_extras(b, &empty));
    EXPECT_TEXT("", tern__prom_extras(b, &empty));
    CHECK(tern__metric_name_valid("_a9"));
    CHECK(!tern__metric_name_valid("9a"));
    CHECK(!tern__metric_name_valid(""));
    CHECK(!tern__metric_name_valid("a:b"));
}

static void test_mbuf(void) {
    tern__mbuf b = {0};
    for (int i = 0; i < 10000; i++) tern__mbuf_printf(&b, "%05d,", i);
    CHECK(!b.oom);
    CHECK_INT(b.len, 60000);
    CHECK(memcmp(b.data + 6 * 9999, "09999,", 6) == 0);
    tern__mbuf_free(&b);
    /* after a failure later writes are dropped, so callers check once */
    b.oom = 1;
    tern__mbuf_printf(&b, "lost");
    CHECK_INT(b.len, 0);
    CHECK(b.data == NULL);
}

int main(void) {
    test_json();
    test_prometheus_escaping();
    test_prometheus_numbers();
    test_quantile_lines();
    test_extras();
    test_mbuf();
    return check_done();
}
