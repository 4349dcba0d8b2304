/* tern health: liveness (/healthz) and readiness (/readyz) for load
 * balancers and orchestrators.
 *
 * Liveness: every worker's event loop turned lately. Each worker's 10 ms
 * tick stamps the time it fired; a worker whose stamp is older than
 * TERN_HEALTH_STALL_MS is stuck (a handler that never yields, a blocking
 * call) and tern_healthz_handler answers 503 naming it.
 *
 * Readiness: the server is not draining, the worker answering is not
 * shedding load, and every registered check passes. A drain begins the
 * moment SIGTERM/SIGINT (or tern_server_stop) arrives: /readyz answers 503
 * from then on, while the listeners stay open for the drain delay
 * (tern_server_set_drain_delay), so a load balancer that polls /readyz
 * takes the instance out before it stops accepting.
 *
 * Register the handlers like any route, with a timeout for /readyz so a
 * hung check cannot hang the probe:
 *
 *     tern_route(s, TERN_GET, "/healthz", tern_healthz_handler);
 *     tern_route_opts o = {.timeout_ms = 2000};
 *     tern_route_with(s, TERN_GET, "/readyz", tern_readyz_handler, &o);
 *
 * Both answer JSON, and HEAD as well as GET if registered for it. */
#ifndef TERN_HEALTH_H
#define TERN_HEALTH_H

#include <tern/api.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tern_server;
struct tern_ctx;

/* A worker whose loop has not ticked for this long is reported stuck. */
#define TERN_HEALTH_STALL_MS 1000

/* A dependency check: 0 when the dependency is usable, else a negative
 * errno (its strerror is shown). Runs in the /readyz request's coroutine,
 * on whichever worker serves it, so it may park: lend and return a pool
 * connection, ask an upstream with the HTTP client. Must be thread-safe
 * with respect to `arg` (workers run it concurrently). */
typedef int (*tern_health_check_fn)(void *arg);

/* Adds a readiness check named `name` (copied; a JSON-safe word such as
 * "db"). Call before the server runs. 0, -EINVAL, -EEXIST (same name),
 * -EBUSY (running) or -ENOMEM. */
TERN_API int tern_health_add_check(struct tern_server *s, const char *name, tern_health_check_fn fn,
                                   void *arg);

/* After a stop signal, keep accepting (and serving) for `ms` more
 * milliseconds with /readyz at 503, then drain as usual. A second stop
 * signal ends the delay at once. Default 0. 0, or -EBUSY once running. */
TERN_API int tern_server_set_drain_delay(struct tern_server *s, unsigned ms);

/* 1 once a drain has begun (stop signal or tern_server_stop), else 0. */
TERN_API int tern_server_draining(const struct tern_server *s);

/* GET /healthz: 200 {"status":"alive","workers":N} or 503
 * {"status":"stuck","stuck_workers":[ids]}. */
TERN_API void tern_healthz_handler(struct tern_ctx *ctx);
/* GET /readyz: 200 {"ready":true,...} or 503 {"ready":false,"reason":...}
 * with "draining", "shedding" and each check's result. */
TERN_API void tern_readyz_handler(struct tern_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
