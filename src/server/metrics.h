/* Per-worker metrics: counters and a latency histogram written only by the
 * owning worker (relaxed atomic stores, no lock, no shared cache line on
 * the request path) and summed by readers on other threads. */
#ifndef TERN_SERVER_METRICS_H
#define TERN_SERVER_METRICS_H

#include <stdatomic.h>
#include <stdint.h>

typedef struct tern_metrics tern_metrics;

tern_metrics *tern_metrics_new(void);
void tern_metrics_free(tern_metrics *m);

void tern_metrics_conn_opened(tern_metrics *m);
void tern_metrics_conn_closed(tern_metrics *m);
void tern_metrics_timeout(tern_metrics *m);
/* A response was queued: status and time since the request was complete. */
void tern_metrics_response(tern_metrics *m, int status, uint64_t latency_ns);
/* A malformed or refused request answered with an error status. */
void tern_metrics_rejected(tern_metrics *m, int status);
/* A request shed with 503 by admission control. */
void tern_metrics_shed(tern_metrics *m);

#endif
