/* A worker: one thread with its own scheduler (epoll loop, timers, stacks),
 * its own SO_REUSEPORT listener, connection table and scratch buffers.
 * Nothing here is shared with other workers on the request path. */
#ifndef TERN_SERVER_WORKER_H
#define TERN_SERVER_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "http/conn.h"
#include "http/date.h"
#include "http/parse.h"
#include "rt/sched.h"
#include "server/admission.h"

struct tern_server;
struct tern_metrics;

typedef struct tern_wbuf {
    char *data;
    size_t off, len, cap;       /* bytes [off, len) not yet written */
} tern_wbuf;

typedef struct tern_worker {
    tern_sched sched;
    struct tern_server *server;
    int id;
    int listen_fd;
    int notify_fd;              /* eventfd: wake for stop/drain */
    pthread_t thread;
    /* connections */
    tern_conn *conns;           /* indexed by fd; lazily committed mapping */
    size_t conn_slots;
    uint32_t open_conns;
    uint32_t in_flight;         /* requests inside handlers */
    int32_t idle_head, idle_tail;
    uint64_t epoch_ns;          /* origin of the worker-relative ms clock */
    int listen_paused;          /* accept stopped (EMFILE or connection limit) */
    tern_timer accept_retry;
    /* scratch, valid only while one coroutine runs without parking */
    char *rbuf;
    size_t rbuf_size;
    tern_wbuf wbuf;
    tern_http_header *hdrs;     /* parser output, max_headers entries */
    tern_date_cache date;
    /* "HTTP/1.1 200 OK\r\nServer: ...\r\nDate: ...\r\n", rebuilt with the date:
     * the start of most responses as one memcpy */
    time_t ok_prefix_second;
    size_t ok_prefix_len;
    char ok_prefix[160];
    /* state */
    atomic_int stopping;
    int started;
    int draining;
    struct tern_metrics *metrics;
    tern_admission admission;
    tern_timer tick;            /* every 10 ms: measures loop lag */
} tern_worker;

extern __thread tern_worker *tern_worker_self;

static inline uint32_t tern_worker_ms(const tern_worker *w) {
    return (uint32_t)((w->sched.now_ns - w->epoch_ns) / 1000000ull);
}

int tern_worker_init(tern_worker *w, struct tern_server *s, int id);
void tern_worker_destroy(tern_worker *w);
int tern_worker_start(tern_worker *w);
/* Wakes the worker so it notices `stopping`. */
void tern_worker_notify(tern_worker *w);
/* Resumes accepting after a pause (EMFILE or connection limit). */
void tern_worker_resume_accept(tern_worker *w);

#endif
