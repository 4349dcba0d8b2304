/* tern metrics: what the server measured, as numbers (tern_stats_read), as
 * JSON (tern_stats_handler, for GET /stats) and as Prometheus text
 * (tern_metrics_handler, for GET /metrics), plus a hook through which other
 * modules (resource pools...) add their own gauges and counters.
 *
 * Every figure is measured: counters and histograms are kept per worker by
 * the worker's own thread and summed on read; RSS, CPU and thread count
 * come from the kernel (/proc/self, CLOCK_PROCESS_CPUTIME_ID).
 *
 * Self-contained on purpose (no #include <tern.h>): tern.h includes this
 * header, so the two opaque types are named by their struct tags here
 * (struct tern_server * is the same type as tern.h's tern_server *),
 * which avoids a typedef redefinition in either include order. */
#ifndef TERN_METRICS_H
#define TERN_METRICS_H

#include <tern/api.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tern_server;
struct tern_ctx;

/* A summary of the whole server (all workers summed) and of the process.
 *
 * Requests: total_requests counts responses the server queued, whatever
 * their status: handler responses, 4xx/5xx rejections of malformed
 * requests (also counted in `rejected`) and 503 sheds (also in shed_503).
 * A response is counted when it is queued for writing, so a handler that
 * reads the stats does not see its own request in them.
 *
 * Latency is the time from "request fully read" to "response queued"
 * (handler time, parks included). Percentiles come from log-linear
 * histogram buckets (16 linear sub-buckets per power of two: at most 6.25%
 * wide above 1 µs, 64 ns wide below), interpolated linearly inside the
 * bucket holding the nearest-rank sample and capped at the largest sample
 * seen, so each is within one bucket width of the exact sample.
 *
 * The flat latency fields cover everything since start; latency_10s and
 * latency_60s cover only recent responses (see tern_latency_window). */

/* Response latency (request read to response queued, as above) over a
 * recent window: every response of the current second and of the N whole
 * seconds before it, so at least the last N seconds and at most N + 1.
 * Exact counts from per-second histograms, not a decaying estimate. With no
 * response in the window, count is 0 and the other fields are NaN (null in
 * JSON, NaN in Prometheus): no data rather than a made-up 0. */
typedef struct tern_latency_window {
    uint64_t count;
    double average_ms, p50_ms, p90_ms, p99_ms, p999_ms, max_ms;
} tern_latency_window;

typedef struct tern_stats {
    uint64_t total_requests;
    uint64_t status_1xx, status_2xx, status_3xx, status_4xx, status_5xx;
    uint64_t status_other;          /* status outside 100..599 */
    uint64_t shed_503;              /* refused by admission control (max_in_flight) */
    uint64_t rejected;              /* malformed or refused requests answered with an error */
    uint64_t timeouts;              /* idle or slow connections closed by a deadline */
    uint64_t connections_opened, connections_closed, active_connections;
    uint64_t in_flight;             /* requests inside handlers now (includes the reader's) */
    double average_response_time_ms;
    double p50_ms, p90_ms, p99_ms, p999_ms, max_response_time_ms;
    /* Responses per second over the last complete second and the last 10
     * complete seconds (whole CLOCK_MONOTONIC seconds). While a worker is
     * younger than the window plus one second, its share is its responses
     * since it started divided by the time since it started. */
    double throughput_rps, throughput_rps_10s;
    uint64_t queue_delay_samples;   /* requests whose wait before the handler was measured */
    double queue_delay_avg_ms, queue_delay_p99_ms;
    /* How late each worker's periodic 10 ms timer fired: a handler that
     * computes without yielding shows up here. */
    uint64_t loop_lag_samples;
    double loop_lag_p99_ms, loop_lag_max_ms;
    /* process, from the kernel */
    uint64_t memory_rss_bytes;      /* /proc/self/statm resident pages x page size */
    /* Process CPU time over wall time, in percent of one CPU (200 = two
     * cores busy). The window runs back to the previous read that is at
     * least 1 s old (so it spans 1-2 s under frequent reads, or the time
     * since the previous read when reads are rarer); the first read covers
     * the time since the process started. -1 if the clock failed. */
    double cpu_usage_percent;
    int threads;                    /* /proc/self/stat num_threads, -1 if unknown */
    int open_fds;                   /* entries of /proc/self/fd, -1 if unknown */
    double uptime_seconds;          /* since the workers started */
    int workers;                    /* workers running (0 when the server is not running) */
    /* Requests abandoned because the client closed the connection before
     * their response was queued (what nginx logs as 499): in none of the
     * counters above, nor in the latency figures. */
    uint64_t client_closed;
    tern_latency_window latency_10s, latency_60s;
} tern_stats;

typedef struct tern_worker_stats {
    int id;
    uint64_t requests;              /* responses this worker queued */
    uint64_t active_connections;
    uint64_t in_flight;
    double throughput_rps;          /* as in tern_stats, for this worker */
} tern_worker_stats;

/* Fills *out. Meant to be called from a handler or from any thread while
 * tern_server_run runs; before that (or after it returns) the server
 * figures are 0 and only the process figures are filled. 0 or -ENOMEM. */
TERN_API int tern_stats_read(struct tern_server *s, tern_stats *out);
/* Fills up to max per-worker entries; returns how many workers there are
 * (which may exceed max), or a negative errno. */
TERN_API int tern_stats_read_workers(struct tern_server *s, tern_worker_stats *out, int max);

/* The server a request belongs to. */
TERN_API struct tern_server *tern_ctx_server(const struct tern_ctx *ctx);

/* Ready-made handlers: register them on any path, e.g.
 *   tern_route(s, TERN_GET, "/stats", tern_stats_handler);
 *   tern_route(s, TERN_GET, "/metrics", tern_metrics_handler);
 * JSON (application/json) with the tern_stats field names, a "workers"
 * array and a "pools" object of registered sources; Prometheus text
 * exposition format 0.0.4. */
TERN_API void tern_stats_handler(struct tern_ctx *ctx);
TERN_API void tern_metrics_handler(struct tern_ctx *ctx);

/* ---- extra values from other modules --------------------------------------
 * A source is a callback that writes its current values whenever /stats or
 * /metrics is read. Value names must match [a-zA-Z_][a-zA-Z0-9_]* (others
 * are dropped); counters should end in "_total" (Prometheus convention).
 * They appear in JSON as "pools": {"<source>": {"<name>": value, ...}} and
 * in Prometheus as tern_pool_<name>{pool="<source>"} value.
 *
 * Sources run on whichever thread reads the stats (any worker), one at a
 * time under a global lock: they must be thread-safe with respect to the
 * module they describe, must not block, and must not (un)register sources. */
typedef struct tern_metrics_writer tern_metrics_writer;
typedef void (*tern_metrics_source)(void *arg, tern_metrics_writer *w);

TERN_API void tern_metrics_gauge(tern_metrics_writer *w, const char *name, const char *help, double value);
TERN_API void tern_metrics_counter(tern_metrics_writer *w, const char *name, const char *help, double value);

/* Registers fn(arg) under `name` (1-63 bytes, no control characters) for
 * server s, or for every server when s is NULL. 0, -EINVAL, -EEXIST (same
 * server and name) or -ENOMEM. */
TERN_API int tern_metrics_register_source(struct tern_server *s, const char *name, tern_metrics_source fn,
                                 void *arg);
/* 0 or -ENOENT. After it returns the callback is no longer running. */
TERN_API int tern_metrics_unregister_source(struct tern_server *s, const char *name);

#ifdef __cplusplus
}
#endif
#endif
