/* The server's TLS settings: certificate files, the context new
 * connections are made from (swapped on reload), the ticket keys shared by
 * all workers. The connections themselves are conn.c's. */
#ifndef TERN_SERVER_TLS_CONFIG_H
#define TERN_SERVER_TLS_CONFIG_H

#include <pthread.h>

#include "transport/tls.h"

typedef struct tern__tls_config {
    int ncerts;
    char **certs, **keys;       /* PEM file names, [ncerts] */
    char *client_ca;            /* NULL: no client certificates asked */
    tern__tls_keys *tickets;
    pthread_mutex_t lock;       /* guards ctx against a reload's swap */
    void *ctx;                  /* SSL_CTX * for new connections */
} tern__tls_config;

struct tern_server;

/* A server-side SSL * for an accepted fd, from the current context; NULL
 * when the server has no TLS or out of memory. */
void *tern__tls_config_accept(struct tern_server *s, int fd);
/* Frees the settings (connections hold their own context references). */
void tern__tls_config_free(struct tern_server *s);

#endif
