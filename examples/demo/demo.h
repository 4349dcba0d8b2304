/* tern-demo: each file in examples/demo registers one group of endpoints. */
#ifndef TERN_DEMO_H
#define TERN_DEMO_H

#include <tern.h>

typedef struct demo_options {
    const char *upstream;   /* --upstream URL for /real (default: our own /plaintext) */
    const char *db_path;    /* --db PATH for SQLite (default: a file in /tmp) */
    uint16_t port;          /* the bound port */
} demo_options;

extern demo_options demo_opts;

/* Each endpoint group registers its routes once before the server starts
 * and returns 0 or -errno. Groups live in their own files. */
int demo_register_runtime(tern_server *s);    /* runtime.c: /memory, /event-loop */
int demo_register_metrics(tern_server *s);    /* metrics.c: /stats, /metrics */
int demo_register_pool(tern_server *s);       /* pool.c: /pool, /real */
int demo_register_admission(tern_server *s);  /* admission.c: /backpressure, /adaptive */
#endif
