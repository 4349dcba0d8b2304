/* tern-demo: GET /stats (JSON) and GET /metrics (Prometheus text), both
 * served by the library's ready-made handlers. */
#include <tern.h>
#include <tern/metrics.h>

#include "demo.h"

int demo_register_metrics(tern_server *s) {
    int r = tern_route(s, TERN_GET, "/stats", tern_stats_handler);
    if (r < 0) return r;
    return tern_route(s, TERN_GET, "/metrics", tern_metrics_handler);
}
