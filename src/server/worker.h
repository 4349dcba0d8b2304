/* A worker: one thread with its own scheduler (epoll loop, timers, stacks),
 * its own SO_REUSEPORT listener, connection table and scratch buffers.
 * Nothing here is shared with other workers on the request path. */
#ifndef TERN_SERVER_WORKER_H
#define TERN_SERVER_WORKER_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>

#include "http/h1.h"
#include "rt/sched.h"
#include "server/conn.h"
#include "server/admission.h"

struct tern_server;
struct tern__metrics;

/* The worker's own epoll tags (tern__sched_poll hands them to on_event). */
enum {
    TERN_EV_CONN = 0,     /* tern__conn * */
    TERN_EV_LISTENER = 1, /* the worker's listener */
    TERN_EV_NOTIFY = 2,   /* the worker's eventfd (stop, drain) */
    TERN_EV_SHARED_LISTENER = 3, /* index into server->shared, shifted by 3 */
};

typedef struct tern__worker {
    tern__sched sched;
    struct tern_server *server;
    int id;
    int listen_fd;
    int notify_fd;              /* eventfd: wake for stop/drain */
    pthread_t thread;
    /* connections */
    tern__conn *conns;           /* indexed by fd; lazily committed mapping */
    size_t conn_slots;
    /* TLS: each connection's SSL * by fd (a side table, like conns, so the
     * 32-byte slot stays as it is); NULL when the server has no TLS */
    void **tls;
    /* PROXY protocol: each connection's client address by fd (proxy.h),
     * NULL unless the server requires PROXY headers */
    struct tern__client_addr *client;
    unsigned tls_handshakes;     /* in progress here (cap: max_handshakes) */
    /* WebSockets in callback mode by fd (TERN__CONN_UPGRADED), a side table
     * like tls, mapped at the first one */
    void **upgraded;
    int accept_held;             /* accept waits for handshakes to finish */
    uint32_t open_conns;
    uint32_t in_flight;         /* requests inside handlers */
    int32_t idle_head, idle_tail;
    uint64_t epoch_ns;          /* origin of the worker-relative ms clock */
    int listen_paused;          /* accept stopped (EMFILE or connection limit) */
    tern__timer accept_retry;
    /* scratch, lent to the exchange that runs; valid only while it runs
     * without parking (its park hook gives it back) */
    tern__h1_scratch scratch;
    /* state */
    atomic_int stopping;
    int started;
    int draining;
    struct tern__metrics *metrics;
    tern__admission admission;
    tern__timer tick;            /* every 10 ms: measures loop lag */
    _Atomic uint64_t last_tick_ns; /* when it last fired: /healthz reads it */
    void *local;                /* tern_worker_local: the start hook's result */
    void *alog;                 /* the access log's buffer (access_log.c), or NULL */
    struct tern__peer_text *peers; /* by fd, with the access log: each connection's peer
                                   address as text, taken from accept (no syscall per line) */
} tern__worker;

extern __thread tern__worker *tern__worker_self;

static inline uint32_t tern__worker_ms(const tern__worker *w) {
    return (uint32_t)((w->sched.now_ns - w->epoch_ns) / 1000000ull);
}

int tern__worker_init(tern__worker *w, struct tern_server *s, int id);
void tern__worker_destroy(tern__worker *w);
int tern__worker_start(tern__worker *w);
/* Wakes the worker so it notices `stopping`. */
void tern__worker_notify(tern__worker *w);
/* Resumes accepting after a pause (EMFILE or connection limit). */
void tern__worker_resume_accept(tern__worker *w);

#endif
