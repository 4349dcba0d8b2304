/* Server connections. An idle keep-alive connection is one 32-byte slot in
 * the worker's fd-indexed table: no coroutine, no buffer. When bytes
 * arrive, a coroutine from the pool runs the HTTP/1.1 exchange over the
 * connection's transport (every complete request in the input, pipelined
 * ones in order, their responses batched into one write), and goes back to
 * the pool once the input is used up. */
#ifndef TERN_SERVER_CONN_H
#define TERN_SERVER_CONN_H

#include <assert.h>
#include <stdint.h>

#include "http/h1.h"

struct tern__worker;
struct tern__conn_busy;

typedef struct tern__conn {
    int32_t fd;
    uint32_t flags;              /* TERN__T_* (bits 0..7), TERN__H1_* (8..15), TERN__CONN_* */
    int32_t q_prev, q_next;      /* idle queue links (fds), -1 = none */
    uint32_t q_deadline_ms;      /* idle expiry, worker-relative ms */
    uint32_t requests;           /* served on this connection (saturating) */
    struct tern__conn_busy *busy; /* on the serving coroutine's stack, NULL when idle */
} tern__conn;

/* Two connections per cache line; the idle-memory budget (100 B) depends on it. */
static_assert(sizeof(tern__conn) == 32, "tern__conn must stay 32 bytes");

enum tern__conn_flag {
    TERN__CONN_OPEN = 1u << 16,
    TERN__CONN_IN_QUEUE = 1u << 17, /* on the idle queue */
    TERN__CONN_UPGRADED = 1u << 18, /* a WebSocket in callback mode (worker.upgraded[fd]) */
};

/* A busy connection: its exchange and what the worker's event handler
 * needs to wake or cancel the coroutine serving it. */
typedef struct tern__conn_busy {
    tern__h1 x;
    tern__conn *conn;
    uint32_t wait; /* EPOLLIN/EPOLLOUT the coroutine is parked on, 0 = none */
} tern__conn_busy;

/* Takes ownership of an accepted socket (its slot was reserved in the
 * server-wide count by the caller). */
void tern__conn_accepted(struct tern__worker *w, int fd);
/* The same for a connected socket handed over by a coroutine of this
 * worker (tern_test_request): counted like an accepted one, served once the
 * loop runs again. */
void tern__conn_adopt(struct tern__worker *w, int fd);
/* epoll event for a connection. */
void tern__conn_event(struct tern__worker *w, tern__conn *c, uint32_t events);
/* Closes idle connections whose keep-alive time ran out; returns ns until
 * the next expiry (-1: none). */
int64_t tern__conn_sweep(struct tern__worker *w);
/* Graceful drain: idle connections get a short grace, busy ones close
 * after their current response. */
void tern__conn_drain(struct tern__worker *w);
/* Cancels every connection's running coroutine (end of a drain). */
void tern__conn_cancel_all(struct tern__worker *w);

/* The exchange's hooks into the server (dispatch.c). */
/* The server's hooks (dispatch.c); tern_server_run copies them into the
 * server and adds the access log's `completed` when there is one, so one
 * table is the source of every variant. */
extern const tern__h1_hooks tern__dispatch_hooks;

#endif
