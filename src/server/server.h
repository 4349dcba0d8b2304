/* Server: configuration, routes, workers, and the main thread's wait for a
 * stop signal. */
#ifndef TERN_SERVER_SERVER_H
#define TERN_SERVER_SERVER_H

#include <stdatomic.h>
#include <signal.h>
#include <stdint.h>
#include <sys/socket.h>

#include "http/parse.h"
#include "http/router.h"
#include "tern.h"

struct tern_worker;

/* What the router maps a route to: the handler and its admission limits. */
typedef struct tern_route_entry {
    tern_handler handler;
    unsigned max_in_flight;
    int adaptive;
    unsigned timeout_ms;
    atomic_uint in_flight;
    struct tern_route_entry *next; /* all entries, for freeing */
} tern_route_entry;

struct tern_server {
    tern_config cfg;
    char *host;
    tern_router *router;
    tern_http_limits limits;
    int nworkers;
    struct tern_worker *workers;
    int *listen_fds;            /* one per worker, bound by tern_server_bind */
    uint16_t port;
    int bound;
    atomic_int stop;
    int stop_pipe[2];           /* self-pipe: tern_server_stop wakes the main thread */
    atomic_uint open_conns;     /* across workers, for max_connections */
    atomic_uint in_flight;      /* across workers, for max_in_flight */
    size_t server_name_len;
    tern_route_entry *routes;
    int signals_blocked;
    sigset_t old_sigmask;
};

#endif
