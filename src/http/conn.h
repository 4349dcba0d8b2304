/* HTTP/1.1 connections. An idle keep-alive connection is one 32-byte slot
 * in the worker's fd-indexed table: no coroutine, no buffer. When bytes
 * arrive, a coroutine from the pool serves every complete request in them
 * (pipelined requests in order, their responses batched into one write),
 * and goes back to the pool once the input is used up. */
#ifndef TERN_HTTP_CONN_H
#define TERN_HTTP_CONN_H

#include <assert.h>
#include <stdint.h>

struct tern__worker;
struct conn_busy;

typedef struct tern__conn {
    int32_t fd;
    uint32_t flags;              /* TERN_CONN_* */
    int32_t q_prev, q_next;      /* idle queue links (fds), -1 = none */
    uint32_t q_deadline_ms;      /* idle expiry, worker-relative ms */
    uint32_t requests;           /* served on this connection (saturating) */
    struct conn_busy *busy;      /* on the serving coroutine's stack, NULL when idle */
} tern__conn;

/* Two connections per cache line; the idle-memory budget (100 B) depends on it. */
static_assert(sizeof(tern__conn) == 32, "tern__conn must stay 32 bytes");

enum {
    TERN_CONN_OPEN = 1u << 0,
    TERN_CONN_READABLE = 1u << 1,   /* an EPOLLIN edge not yet drained by a read */
    TERN_CONN_IN_QUEUE = 1u << 2,   /* on the idle queue */
    TERN_CONN_PEER_EOF = 1u << 3,   /* read returned 0 */
    TERN_CONN_DRAIN = 1u << 5,      /* server draining: close after the current response */
    TERN_CONN_TSTAMP = 1u << 6,     /* SO_TIMESTAMPNS on: reads carry the arrival time */
    TERN_CONN_KILL = 1u << 7,       /* drain deadline passed: every wait fails */
    TERN_CONN_NODELAY = 1u << 8,    /* TCP_NODELAY set (first keep-alive response) */
};

static inline int tern__conn_fd(const tern__conn *c) { return c->fd; }

/* Takes ownership of an accepted socket. */
void tern__conn_accepted(struct tern__worker *w, int fd);
/* epoll event for a connection. */
void tern__conn_event(struct tern__worker *w, tern__conn *c, uint32_t events);
/* Closes idle connections whose keep-alive time ran out; returns ns until
 * the next expiry (-1: none). */
int64_t tern__conn_sweep(struct tern__worker *w);
/* Graceful drain: close idle connections now, mark busy ones to close after
 * their current response. */
void tern__conn_drain(struct tern__worker *w);

/* Cancels every connection's running coroutine (end of a drain). */
void tern__conn_cancel_all(struct tern__worker *w);

#endif
