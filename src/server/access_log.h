/* The access log (tern_server_access_log): one line per answered request,
 * formatted on its worker into that worker's buffer and written in big
 * chunks by a flush timer or when the buffer fills; reopened on SIGHUP. */
#ifndef TERN_SERVER_ACCESS_LOG_H
#define TERN_SERVER_ACCESS_LOG_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http/h1.h"
#include "tern/middleware.h"

struct tern__worker;
struct sockaddr_storage;

/* A connection's peer address as the log writes it ("192.0.2.1", "::1"). */
typedef struct tern__peer_text {
    uint8_t len;
    char text[47]; /* INET6_ADDRSTRLEN + 1 */
} tern__peer_text;
void tern__peer_text_set(tern__peer_text *p, const struct sockaddr_storage *ss);

typedef struct tern__access_log {
    int fd;      /* reopen dup3()s the new file onto it */
    int owns_fd; /* not stdout */
    char *path;
    tern_access_log_format format;
    pthread_mutex_t write_lock; /* whole buffers from workers never interleave */
    uint64_t dropped;           /* lines lost to write errors (atomic) */
} tern__access_log;

/* What one line says; strings are not NUL-terminated. */
typedef struct tern__access_entry {
    tern_str peer, method, target, referer, user_agent, request_id;
    unsigned minor;
    int status;
    uint64_t bytes;
    uint64_t duration_us;
    time_t when; /* UTC seconds */
} tern__access_entry;

/* The worst case of one line: every field is cut to this many input bytes
 * (an escape is at most 6 output bytes per input byte). */
#define TERN__ACCESS_FIELD_MAX 1024
#define TERN__ACCESS_LINE_MAX (5 * 6 * TERN__ACCESS_FIELD_MAX + 512)

/* Formats one line (with its '\n') into out, which has room for
 * TERN__ACCESS_LINE_MAX bytes; returns its length. */
size_t tern__access_format(char *out, tern_access_log_format format, const tern__access_entry *e);

/* The worker's buffer and flush timer, from its thread. */
int tern__access_log_worker_start(struct tern__worker *w);
void tern__access_log_worker_stop(struct tern__worker *w);
/* tern__h1_hooks.completed */
void tern__access_log_completed(void *drv, tern__h1 *x, tern_ctx *ctx, int broken);
void tern__access_log_free(tern__access_log *log);

#endif
