/* PROXY protocol and forwarded-address internals (public side: tern/proxy.h). */
#ifndef TERN_SERVER_PROXY_H
#define TERN_SERVER_PROXY_H

#include <stddef.h>
#include <sys/socket.h>

#include "http/h1.h"

struct tern_server;
struct tern__worker;

/* A v2 header with its TLVs fits (HAProxy sends well under 256 bytes). */
#define TERN__PROXY_MAX 1024

enum tern__client_state {
    TERN__CLIENT_UNREAD = 0, /* no PROXY header read on this fd yet */
    TERN__CLIENT_KNOWN = 1,  /* read: addr (len 0: LOCAL/UNKNOWN, the socket's peer) */
};

/* The worker's side table, by fd (like w->tls): the 32-byte connection
 * slot stays as it is, and the table exists only with PROXY enabled. */
typedef struct tern__client_addr {
    struct sockaddr_storage addr;
    socklen_t len;
    enum tern__client_state state;
} tern__client_addr;

/* Parses a PROXY v1 or v2 header at the start of data: bytes used (> 0),
 * 0 when more bytes are needed, -EPROTO when it is not a valid header.
 * *len 0: LOCAL/UNKNOWN (keep the socket's peer). */
int tern__proxy_parse(const void *data, size_t n, struct sockaddr_storage *addr, socklen_t *len);
/* On the connection's coroutine, before TLS and HTTP: 0, or -errno (close). */
int tern__proxy_read(struct tern__worker *w, int fd, tern__transport *t);
/* Whether sa is a trusted proxy. */
int tern__proxy_trusted(const struct tern_server *s, const struct sockaddr *sa);
/* The exchange's peer hook: PROXY's client, then Forwarded/XFF. */
int tern__proxy_peer(void *drv, const tern_ctx *ctx, int fd, struct sockaddr_storage *addr, socklen_t *len);

#endif
