#include "server/metrics.h"

#include <stdlib.h>

struct tern_metrics {
    _Atomic uint64_t conns_opened, conns_closed, timeouts, responses, rejected, shed;
    _Atomic uint64_t status_class[6];
    _Atomic uint64_t latency_ns_sum;
};

#define BUMP(field) atomic_store_explicit(&(field), atomic_load_explicit(&(field), memory_order_relaxed) + 1, memory_order_relaxed)

tern_metrics *tern_metrics_new(void) { return calloc(1, sizeof(tern_metrics)); }
void tern_metrics_free(tern_metrics *m) { free(m); }
void tern_metrics_conn_opened(tern_metrics *m) { BUMP(m->conns_opened); }
void tern_metrics_conn_closed(tern_metrics *m) { BUMP(m->conns_closed); }
void tern_metrics_timeout(tern_metrics *m) { BUMP(m->timeouts); }
void tern_metrics_response(tern_metrics *m, int status, uint64_t latency_ns) {
    BUMP(m->responses);
    int cls = status / 100;
    if (cls < 1 || cls > 5) cls = 0;
    BUMP(m->status_class[cls]);
    atomic_store_explicit(&m->latency_ns_sum,
                          atomic_load_explicit(&m->latency_ns_sum, memory_order_relaxed) + latency_ns,
                          memory_order_relaxed);
}
void tern_metrics_rejected(tern_metrics *m, int status) { BUMP(m->rejected); }
void tern_metrics_shed(tern_metrics *m) { BUMP(m->shed); }
