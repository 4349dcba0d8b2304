/* Liveness and readiness internals (public side: tern/health.h). */
#ifndef TERN_SERVER_HEALTH_H
#define TERN_SERVER_HEALTH_H

#include <stdint.h>

struct tern_server;
struct tern__worker;

/* Frees the registered checks (tern_server_free). */
void tern__health_free(struct tern_server *s);
/* The worker's tick fired at now_ns: its loop is turning. */
void tern__health_tick(struct tern__worker *w, uint64_t now_ns);

#endif
