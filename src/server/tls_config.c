/* The server's TLS settings and reload (see tls_config.h, tern/tls.h). */
#include "server/tls_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"

/* Ticket keys rotate hourly; a ticket opens for two hours. */
#define TICKET_ROTATE_S 3600

static tern__tls_config *config_get(tern_server *s) {
    if (s->tls) return s->tls;
    tern__tls_config *t = calloc(1, sizeof *t);
    if (!t) return NULL;
    t->tickets = tern__tls_keys_new(TICKET_ROTATE_S);
    if (!t->tickets) {
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->lock, NULL);
    s->tls = t;
    return t;
}

/* Builds a context from the files as they are now and makes it the one new
 * connections use. Without certificates yet there is nothing to build. */
static int rebuild(tern__tls_config *t) {
    if (!t->ncerts) return 0;
    char err[512] = "";
    void *ctx = tern__tls_server_ctx_new((const char *const *)t->certs, (const char *const *)t->keys, t->ncerts,
                                         t->client_ca, t->tickets, err, sizeof err);
    if (!ctx) {
        fprintf(stderr, "tern: TLS: %s\n", err[0] ? err : "out of memory");
        return -EINVAL;
    }
    pthread_mutex_lock(&t->lock);
    void *old = t->ctx;
    t->ctx = ctx;
    pthread_mutex_unlock(&t->lock);
    /* connections made from the old context hold references of their own */
    if (old) tern__tls_ctx_free(old);
    return 0;
}

int tern_server_add_cert(tern_server *s, const char *cert_file, const char *key_file) {
    if (!s || !cert_file || !key_file) return -EINVAL;
    if (s->workers) return -EBUSY;
    tern__tls_config *t = config_get(s);
    if (!t) return -ENOMEM;
    char **certs = realloc(t->certs, (size_t)(t->ncerts + 1) * sizeof *certs);
    if (!certs) return -ENOMEM;
    t->certs = certs;
    char **keys = realloc(t->keys, (size_t)(t->ncerts + 1) * sizeof *keys);
    if (!keys) return -ENOMEM;
    t->keys = keys;
    t->certs[t->ncerts] = strdup(cert_file);
    t->keys[t->ncerts] = strdup(key_file);
    if (!t->certs[t->ncerts] || !t->keys[t->ncerts]) {
        free(t->certs[t->ncerts]);
        free(t->keys[t->ncerts]);
        return -ENOMEM;
    }
    t->ncerts++;
    int r = rebuild(t);
    if (r < 0) {
        t->ncerts--;
        free(t->certs[t->ncerts]);
        free(t->keys[t->ncerts]);
    }
    return r;
}

int tern_server_set_client_ca(tern_server *s, const char *ca_file) {
    if (!s || !ca_file) return -EINVAL;
    if (s->workers) return -EBUSY;
    tern__tls_config *t = config_get(s);
    if (!t) return -ENOMEM;
    char *old = t->client_ca;
    t->client_ca = strdup(ca_file);
    if (!t->client_ca) {
        t->client_ca = old;
        return -ENOMEM;
    }
    int r = rebuild(t);
    if (r < 0) {
        free(t->client_ca);
        t->client_ca = old;
        return r;
    }
    free(old);
    return 0;
}

int tern_server_reload_certs(tern_server *s) {
    if (!s || !s->tls || !s->tls->ncerts) return -EINVAL;
    return rebuild(s->tls);
}

void *tern__tls_config_accept(tern_server *s, int fd) {
    tern__tls_config *t = s->tls;
    if (!t) return NULL;
    /* SSL_new takes its own reference on the context under the lock, so a
     * reload's free of the old one cannot pull it away in between */
    pthread_mutex_lock(&t->lock);
    void *ssl = t->ctx ? tern__tls_accept_new(t->ctx, fd) : NULL;
    pthread_mutex_unlock(&t->lock);
    return ssl;
}

void tern__tls_config_free(tern_server *s) {
    tern__tls_config *t = s->tls;
    if (!t) return;
    for (int i = 0; i < t->ncerts; i++) {
        free(t->certs[i]);
        free(t->keys[i]);
    }
    free(t->certs);
    free(t->keys);
    free(t->client_ca);
    if (t->ctx) tern__tls_ctx_free(t->ctx);
    tern__tls_keys_free(t->tickets);
    pthread_mutex_destroy(&t->lock);
    free(t);
    s->tls = NULL;
}
