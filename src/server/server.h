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

struct tern__worker;
struct tern__tls_config;
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
    void *data;                    /* tern_route_opts.data */
    char *label;                   /* "the handler of GET /users/:id", for overflow reports */
    atomic_uint in_flight;
    struct tern__route_entry *next; /* all entries, for freeing */
} tern__route_entry;

struct tern_server {
    tern_config cfg;
    char *host;
    tern__router *router;
    tern__h1_config h1;         /* what the HTTP/1.1 exchange needs of cfg */
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
    void *data;                 /* tern_server_set_data */
    tern_worker_start_fn worker_start;
    tern_worker_stop_fn worker_stop;
    int signals_blocked;
    sigset_t old_sigmask;
    struct tern__tls_config *tls;  /* tern_server_add_cert (tls_config.c), or NULL */
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

/* The listeners speak TLS. */
int tern__server_tls(const struct tern_server *s);

#endif
