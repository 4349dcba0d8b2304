/* Connection lifecycle: accept, the idle queue (keep-alive expiry in O(1)),
 * epoll events, the coroutine that serves a busy connection, drain and
 * close. The HTTP itself is the exchange's (src/http/h1.c); this file only
 * lends it the worker's scratch and parks it until its socket is ready. */
#include "server/conn.h"

#include <errno.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <unistd.h>

#include "http/ws.h"
#include "rt/sched.h"
#include "server/metrics.h"
#include "server/proxy.h"
#include "server/server.h"
#include "server/tls_config.h"
#include "server/worker.h"
#include "transport/tls.h"

static void conn_main(void *arg);

/* ---- the idle queue -------------------------------------------------------- */

static void queue_append(tern__worker *w, tern__conn *c, uint32_t deadline_ms) {
    c->q_deadline_ms = deadline_ms;
    c->q_next = -1;
    c->q_prev = w->idle_tail;
    if (w->idle_tail >= 0)
        w->conns[w->idle_tail].q_next = c->fd;
    else
        w->idle_head = c->fd;
    w->idle_tail = c->fd;
    c->flags |= TERN__CONN_IN_QUEUE;
}

static void queue_remove(tern__worker *w, tern__conn *c) {
    if (!(c->flags & TERN__CONN_IN_QUEUE)) return;
    if (c->q_prev >= 0)
        w->conns[c->q_prev].q_next = c->q_next;
    else
        w->idle_head = c->q_next;
    if (c->q_next >= 0)
        w->conns[c->q_next].q_prev = c->q_prev;
    else
        w->idle_tail = c->q_prev;
    c->q_prev = c->q_next = -1;
    c->flags &= ~(uint32_t)TERN__CONN_IN_QUEUE;
}

/* ---- lifecycle ------------------------------------------------------------- */

static void conn_close(tern__worker *w, tern__conn *c) {
    queue_remove(w, c);
    if (w->server->conn_close) w->server->conn_close(w->server, c->fd, w->server->conn_arg);
    if (w->tls && w->tls[c->fd]) {
        tern__tls_close(w->tls[c->fd]);
        w->tls[c->fd] = NULL;
    }
    if (c->flags & TERN__CONN_UPGRADED) {
        tern_ws *ws = w->upgraded[c->fd];
        w->upgraded[c->fd] = NULL;
        c->flags &= ~(uint32_t)TERN__CONN_UPGRADED;
        tern__ws_detached_close(ws);
    }
    close(c->fd); /* also removes it from the epoll set */
    c->flags = 0;
    c->busy = NULL;
    __atomic_store_n(&w->open_conns, w->open_conns - 1, __ATOMIC_RELAXED); /* read by /stats */
    atomic_fetch_sub_explicit(&w->server->open_conns, 1, memory_order_relaxed);
    tern__metrics_conn_closed(w->metrics);
}

static void start_serving(tern__worker *w, tern__conn *c) {
    tern_coro *co = tern__sched_coro_new(&w->sched, conn_main, c);
    if (!co) {
        /* no stack for it: dropping one connection beats stalling them all */
        conn_close(w, c);
        return;
    }
    tern__sched_run_now(&w->sched, co);
}

static void conn_register(tern__worker *w, int fd, int now);

void tern__conn_accepted(tern__worker *w, int fd) { conn_register(w, fd, 1); }

void tern__conn_adopt(tern__worker *w, int fd) {
    atomic_fetch_add_explicit(&w->server->open_conns, 1, memory_order_relaxed);
    conn_register(w, fd, 0);
}

static void conn_register(tern__worker *w, int fd, int now) {
    if ((size_t)fd >= w->conn_slots) {
        close(fd);
        atomic_fetch_sub_explicit(&w->server->open_conns, 1, memory_order_relaxed);
        return;
    }
    tern__conn *c = &w->conns[fd];
    *c = (tern__conn){.fd = fd, .flags = TERN__CONN_OPEN | TERN__T_READABLE, .q_prev = -1, .q_next = -1};
    /* registered once, edge-triggered for both directions: no epoll_ctl
     * ever again for this connection, whatever it does */
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                             .data.u64 = (uint64_t)(uintptr_t)c | TERN_EV_CONN};
    if (epoll_ctl(w->sched.epfd, EPOLL_CTL_ADD, fd, &ev) < 0) {
        close(fd);
        c->flags = 0;
        atomic_fetch_sub_explicit(&w->server->open_conns, 1, memory_order_relaxed);
        return;
    }
    if (w->client) w->client[fd].state = TERN__CLIENT_UNREAD;
    __atomic_store_n(&w->open_conns, w->open_conns + 1, __ATOMIC_RELAXED);
    tern__metrics_conn_opened(w->metrics);
    if (w->server->conn_open) w->server->conn_open(w->server, fd, w->server->conn_arg);
    /* TCP_DEFER_ACCEPT: the request is most likely already here, so serve
     * now rather than after another trip through epoll_wait */
    if (now) {
        start_serving(w, c);
    } else {
        /* adopted from a coroutine, which cannot run another one: an idle
         * connection until epoll reports its input (pending bytes are
         * reported at once: the registration is edge-triggered on ADD) */
        unsigned ka = w->server->cfg.keepalive_timeout_ms;
        if (ka) queue_append(w, c, tern__worker_ms(w) + ka);
    }
}

void tern__conn_event(tern__worker *w, tern__conn *c, uint32_t events) {
    if (!(c->flags & TERN__CONN_OPEN)) return;
    const uint32_t in_ev = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
    if (events & in_ev) c->flags |= TERN__T_READABLE;
    tern__conn_busy *b = c->busy;
    if (b) {
        if (b->wait) {
            if (((b->wait & EPOLLIN) && (events & in_ev)) ||
                ((b->wait & EPOLLOUT) && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))))
                tern__sched_wake(b->x.coro, 0);
        } else if (b->x.in_handler && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
            /* the client went away while its request is being handled:
             * cancel it, so its next park returns -ECANCELED */
            b->x.client_gone = 1;
            tern__sched_cancel(b->x.coro);
        }
        return;
    }
    if (events & in_ev) {
        queue_remove(w, c);
        start_serving(w, c);
    }
}

int64_t tern__conn_sweep(tern__worker *w) {
    uint32_t now = tern__worker_ms(w);
    while (w->idle_head >= 0) {
        tern__conn *c = &w->conns[w->idle_head];
        int32_t left = (int32_t)(c->q_deadline_ms - now);
        if (left > 0) return (int64_t)left * 1000000;
        tern__metrics_timeout(w->metrics);
        conn_close(w, c);
    }
    return -1;
}

/* Draining idle keep-alive connections. Closing one at the very moment its
 * client sends the next request would lose that request (HTTP/1.1 clients
 * may not retry it), and a client that was just answered is the one most
 * likely to be sending: so a connection gets a grace of DRAIN_IDLE_GRACE_MS
 * counted from its last response, in which a request is still answered
 * (with Connection: close). One that has been quiet for longer is closed at
 * once, so an idle server exits at once. */
#define DRAIN_IDLE_GRACE_MS 500u

void tern__conn_drain(tern__worker *w) {
    uint32_t now = tern__worker_ms(w);
    unsigned ka = w->server->cfg.keepalive_timeout_ms;
    unsigned grace = w->server->cfg.drain_timeout_ms < DRAIN_IDLE_GRACE_MS ? w->server->cfg.drain_timeout_ms
                                                                           : DRAIN_IDLE_GRACE_MS;
    for (size_t fd = 0; fd < w->conn_slots; fd++) {
        tern__conn *c = &w->conns[fd];
        if (!(c->flags & TERN__CONN_OPEN)) continue;
        c->flags |= TERN__H1_DRAIN;
        if (c->busy) continue;
        /* in the queue, the deadline is the last response + keepalive */
        uint32_t until = now + grace;
        if (ka && (c->flags & TERN__CONN_IN_QUEUE)) until = c->q_deadline_ms - ka + grace;
        queue_remove(w, c);
        if ((int32_t)(until - now) <= 0 && !(c->flags & TERN__T_READABLE)) {
            conn_close(w, c);
            continue;
        }
        queue_append(w, c, until);
    }
}

void tern__conn_cancel_all(tern__worker *w) {
    for (size_t fd = 0; fd < w->conn_slots; fd++) {
        tern__conn *c = &w->conns[fd];
        if ((c->flags & TERN__CONN_OPEN) && c->busy) {
            c->flags |= TERN__H1_KILL;
            tern__sched_cancel(c->busy->x.coro);
        }
    }
}

/* ---- serving --------------------------------------------------------------- */

/* The transport's wait: park until the epoll edge for `events` (which
 * tern__conn_event turns into a wake) or the deadline. */
static int conn_wait(void *waiter, uint32_t events, uint64_t deadline_ns) {
    tern__conn_busy *b = waiter;
    b->wait = events;
    int r = tern__sched_park_until(deadline_ns);
    b->wait = 0;
    return r;
}

/* nginx's answer to plain HTTP on its TLS port; the request is read (as
 * far as it came) so that closing does not reset the answer away. */
static const char plain_http_answer[] =
    "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain\r\nContent-Length: 55\r\n"
    "Connection: close\r\n\r\n400 Bad Request: plain HTTP request sent to HTTPS port\n";

static void answer_plain_http(tern__worker *w, tern__conn_busy *b) {
    tern__transport *t = &b->x.t;
    uint64_t deadline = tern__h1_deadline_after(w->server->cfg.handshake_timeout_ms);
    char buf[4096];
    while (tern__transport_read(t, buf, sizeof buf) == (ssize_t)sizeof buf) {
    }
    struct iovec iov = {(void *)plain_http_answer, sizeof plain_http_answer - 1};
    if (tern__transport_write_all(t, &iov, 1, w->server->cfg.write_timeout_ms) < 0) return;
    tern__transport_shutdown(t);
    /* linger until the client closes (briefly), as h1's close does */
    for (int i = 0; i < 16; i++) {
        ssize_t n = tern__transport_read(t, buf, sizeof buf);
        if (n > 0) continue;
        if (n != -EAGAIN || tern__transport_wait(t, EPOLLIN, deadline) < 0) return;
    }
}

/* A new TLS connection: the first byte says whether it is TLS at all, then
 * the handshake runs here, on the connection's coroutine, under its own
 * deadline (a client that opens and stalls is closed like a slowloris).
 * The SSL * goes into the worker's side table; NULL: close. */
static void *tls_start(tern__worker *w, tern__conn *c, tern__conn_busy *b) {
    tern_server *s = w->server;
    uint64_t deadline = tern__h1_deadline_after(s->cfg.handshake_timeout_ms);
    tern__transport_socket(&b->x.t, c->fd, &c->flags, conn_wait, b);
    int r = tern__tls_sniff(&b->x.t, deadline);
    if (r == 0) answer_plain_http(w, b);
    if (r <= 0) return NULL;
    void *ssl = tern__tls_config_accept(s, c->fd);
    if (!ssl) return NULL;
    tern__transport_tls(&b->x.t, ssl, c->fd, &c->flags, conn_wait, b);
    /* a handshake flight is several writes (and TLS 1.3 tickets follow it):
     * Nagle would hold each behind the client's delayed ACK */
    if (tern__transport_nodelay(&b->x.t) == 0) c->flags |= TERN__H1_NODELAY;
    w->tls_handshakes++;
    r = tern__tls_handshake(&b->x.t, deadline, NULL, 0);
    w->tls_handshakes--;
    if (r < 0) {
        tern__tls_close(ssl);
        return NULL;
    }
    w->tls[c->fd] = ssl;
    return ssl;
}

/* ---- WebSockets in callback mode: idle without a coroutine ----------------- */

/* A message was queued for an idle WebSocket: serve it as if bytes came. */
static void conn_kick(void *drv, int fd, tern_ws *ws) {
    tern__worker *w = drv;
    tern__conn *c = &w->conns[fd];
    if (!(c->flags & TERN__CONN_OPEN) || !(c->flags & TERN__CONN_UPGRADED) || w->upgraded[fd] != ws || c->busy)
        return;
    start_serving(w, c);
}

/* The exchange handed the connection to a WebSocket (first time), or the
 * idle WebSocket has input or queued output: run it until it idles. */
static tern__h1_outcome serve_upgraded(tern__worker *w, tern__conn *c, tern__h1 *x) {
    if (!(c->flags & TERN__CONN_UPGRADED)) {
        tern_ws *ws = x->upgraded;
        if (!w->upgraded) {
            void *m = mmap(NULL, w->conn_slots * sizeof(void *), PROT_READ | PROT_WRITE,
                           MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
            if (m == MAP_FAILED) {
                tern__ws_detached_close(ws);
                return TERN__H1_CLOSED;
            }
            w->upgraded = m;
        }
        w->upgraded[c->fd] = ws;
        c->flags |= TERN__CONN_UPGRADED;
        tern__ws_set_driver(ws, conn_kick, w, c->fd);
    }
    return tern__ws_resume(w->upgraded[c->fd], x) == TERN__WS_IDLE ? TERN__H1_IDLE : TERN__H1_CLOSED;
}

static void conn_main(void *arg) {
    tern__conn *c = arg;
    tern__worker *w = tern__worker_self;
    tern__conn_busy b;
    b.conn = c;
    b.wait = 0;
    if (w->client && w->client[c->fd].state == TERN__CLIENT_UNREAD) {
        /* the PROXY header comes first, before TLS and HTTP */
        b.x.in_handler = 0;
        b.x.coro = w->sched.current;
        c->busy = &b;
        tern__transport_socket(&b.x.t, c->fd, &c->flags, conn_wait, &b);
        if (tern__proxy_read(w, c->fd, &b.x.t) < 0) {
            conn_close(w, c);
            return;
        }
    }
    if (w->tls) {
        void *ssl = w->tls[c->fd];
        if (!ssl) {
            b.x.in_handler = 0; /* read by tern__conn_event while we park */
            b.x.coro = w->sched.current;
            c->busy = &b;
            ssl = tls_start(w, c, &b);
            if (!ssl) {
                conn_close(w, c);
                return;
            }
        }
        tern__transport_tls(&b.x.t, ssl, c->fd, &c->flags, conn_wait, &b);
    } else {
        tern__transport_socket(&b.x.t, c->fd, &c->flags, conn_wait, &b);
    }
    tern__h1_init(&b.x, &w->server->h1, &w->server->hooks, w,
                  &w->scratch, w->sched.current);
    b.x.requests = &c->requests;
    tern__sched_set_park_hook(b.x.coro, tern__h1_park_hook, &b.x);
    c->busy = &b;

    tern__h1_outcome out = (c->flags & TERN__CONN_UPGRADED) ? TERN__H1_UPGRADED : tern__h1_serve(&b.x);
    if (out == TERN__H1_UPGRADED) out = serve_upgraded(w, c, &b.x);

    tern__sched_set_park_hook(b.x.coro, NULL, NULL);
    tern__h1_release(&b.x);
    b.x.t.ops->release(&b.x.t);
    if (out == TERN__H1_CLOSED) {
        conn_close(w, c);
        return;
    }
    c->busy = NULL;
    unsigned ka = w->server->cfg.keepalive_timeout_ms;
    /* an open WebSocket is not idle HTTP: no keep-alive expiry */
    if (ka && !(c->flags & TERN__CONN_UPGRADED)) queue_append(w, c, tern__worker_ms(w) + ka);
}
