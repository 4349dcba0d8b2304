/* Server: configuration, routes, workers, and the main thread's wait for a
 * stop signal. */
#ifndef TERN_SERVER_SERVER_H
#define TERN_SERVER_SERVER_H

#include <stdatomic.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http/h1.h"
#include "http/router.h"
#include "tern.h"
#include "tern/sync.h"
#include "tern/middleware.h"

struct tern__worker;
struct tern__tls_config;
struct tern__mw_chain;
struct tern__access_log;
struct tern__health_check;

/* A trusted proxy's address block. */
typedef struct tern__cidr {
    int family; /* AF_INET or AF_INET6 */
    unsigned bits;
    unsigned char addr[16];
} tern__cidr;

/* What the router maps a route to: the handler and its admission limits. */
typedef struct tern__route_entry {
    tern_handler handler;
    unsigned max_in_flight;
    int adaptive;
    unsigned timeout_ms;
    int stream_body;               /* tern_route_opts.stream_body */
    void *data;                    /* tern_route_opts.data */
    char *label;                   /* "the handler of GET /users/:id", for overflow reports */
    atomic_uint in_flight;         /* without a queue: a counter is enough */
    unsigned queue_max, queue_timeout_ms;
    tern_sem slots;                /* with a queue: max_in_flight permits, FIFO waiters */
    atomic_uint queued;            /* requests waiting for a slot */
    struct tern__route_entry *next; /* all entries, for freeing */
} tern__route_entry;

struct tern_server {
    tern_config cfg;
    char *host;
    tern__router *router;
    tern__h1_config h1;         /* what the HTTP/1.1 exchange needs of cfg */
    tern__h1_hooks hooks;       /* tern__dispatch_hooks, + the access log's */
    int nworkers;
    struct tern__worker *workers;
    int *listen_fds;            /* one per worker, bound by tern_server_bind */
    uint16_t port;
    int bound;
    atomic_int stop;
    int stop_pipe[2];           /* self-pipe: tern_server_stop wakes the main thread */
    atomic_uint open_conns;     /* across workers, for max_connections */
    atomic_uint in_flight;      /* across workers, for max_in_flight */
    tern__route_entry *routes;
    int any_stream_body;        /* some route streams its request body */
    void *data;                 /* tern_server_set_data */
    tern_worker_start_fn worker_start;
    tern_worker_stop_fn worker_stop;
    int signals_blocked;
    sigset_t old_sigmask;
    struct tern__tls_config *tls;  /* tern_server_add_cert (tls_config.c), or NULL */
    /* middleware and hooks (middleware.c, access_log.c); NULL: none, and
     * the request path pays one branch for each */
    struct tern__mw_chain *mw;
    tern_error_hook on_error;
    void *on_error_arg;
    tern_conn_hook conn_open, conn_close;
    void *conn_arg;
    struct tern__access_log *alog;
    struct tern__compress_config *compress; /* tern_server_set_compression, or NULL */
    struct tern__static_mount *statics;     /* tern_static (static.c), freed with s */
    /* health.c */
    struct tern__health_check *health_checks; /* /readyz, in registration order */
    atomic_int draining;        /* a stop signal came: /readyz says 503 */
    unsigned drain_delay_ms;    /* keep accepting this long after it */
    /* listen.c: Unix and inherited sockets, one each, watched by every worker */
#define TERN__MAX_SHARED 16
    struct {
        int fd;
        char *unix_path; /* removed at free; NULL for an adopted socket */
    } shared[TERN__MAX_SHARED];
    int nshared;
    int no_tcp;                 /* tern_server_set_tcp(s, 0) */
    /* proxy.c: trusted proxies and the PROXY protocol */
#define TERN__MAX_TRUSTED 64
    tern__cidr trusted[TERN__MAX_TRUSTED];
    int ntrusted;
    int trust_unix;             /* "unix": Unix socket peers are proxies */
    int proxy_protocol;         /* every connection starts with a PROXY header */
    /* config.c: SIGHUP */
    void (*reload_fn)(struct tern_server *s, void *arg);
    void *reload_arg;
};

/* Frees what tern_static and tern_server_set_compression attached to s. */
void tern__static_free_all(struct tern_server *s);

/* The listeners speak TLS. */
int tern__server_tls(const struct tern_server *s);

/* Routing, admission and the handler: the innermost step of the
 * middleware chain (dispatch.c). */
void tern__dispatch_route(struct tern__worker *w, tern__h1 *x, tern_ctx *ctx);
/* Runs the chain around tern__dispatch_route (middleware.c). */
void tern__mw_run(struct tern__worker *w, tern__h1 *x, tern_ctx *ctx);
void tern__mw_free(struct tern_server *s);
/* Calls the error hook if the request failed (middleware.c). */
void tern__mw_failed(struct tern_server *s, tern_ctx *ctx);

#endif
