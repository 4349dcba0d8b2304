/* HTTP/1.1 connection handling: read, parse, dispatch, respond, close.
 *
 * Everything for one connection runs on one coroutine while the connection
 * has work; see conn.h. Reads go into the worker's scratch buffer and
 * responses into its scratch write buffer, so the common keep-alive request
 * costs one recv, one send and no allocation. When the coroutine parks
 * (handler sleeps, socket full, request incomplete), the park hook moves
 * whatever it still needs out of the shared scratch into buffers of its
 * own, so the next coroutine finds the scratch free. */
#include "http/conn.h"

#include <alloca.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "http/chunked.h"
#include "http/ctx.h"
#include "http/url.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/worker.h"

/* Responses with a body up to this size are copied into the write buffer
 * (batched with others); larger bodies are sent from where they are. */
#define INLINE_BODY_MAX 16384
/* Flush the write buffer once this much is pending, so a pipelining client
 * that does not read cannot grow it without bound. */
#define WBUF_FLUSH_AT 65536
/* Request bodies up to this size that arrived in the scratch buffer are
 * copied onto the coroutine stack; larger ones go to the heap. */
#define STACK_BODY_MAX 4096
/* Lingering close: how long and how much to read after our last response
 * before closing, so the client reads our response instead of an RST. */
#define LINGER_NS (2ull * 1000000000ull)
#define LINGER_MAX_BYTES (1u << 20)

typedef struct conn_busy {
    tern__conn *conn;
    tern_coro *coro;
    uint32_t wait;            /* EPOLLIN/EPOLLOUT the coroutine is parked on */
    int in_handler;           /* a handler runs: client hangup cancels it */
    int lost;                 /* out of memory while parking: close */
    char *in;                 /* input: worker scratch or owned */
    size_t in_start, in_len, in_cap;
    int in_owned;
    uint64_t arrival_ns;      /* kernel receive time of the last read (CLOCK_REALTIME), 0 = unknown */
    char *out;                /* output stash (owned), [out_off, out_len) */
    size_t out_off, out_len, out_cap;
} conn_busy;

static void conn_main(void *arg);

/* ---- small helpers ------------------------------------------------------- */

static inline size_t in_avail(const conn_busy *b) { return b->in_len - b->in_start; }

static void queue_append(tern__worker *w, tern__conn *c, uint32_t deadline_ms) {
    c->q_deadline_ms = deadline_ms;
    c->q_next = -1;
    c->q_prev = w->idle_tail;
    if (w->idle_tail >= 0)
        w->conns[w->idle_tail].q_next = c->fd;
    else
        w->idle_head = c->fd;
    w->idle_tail = c->fd;
    c->flags |= TERN_CONN_IN_QUEUE;
}

static void queue_remove(tern__worker *w, tern__conn *c) {
    if (!(c->flags & TERN_CONN_IN_QUEUE)) return;
    if (c->q_prev >= 0)
        w->conns[c->q_prev].q_next = c->q_next;
    else
        w->idle_head = c->q_next;
    if (c->q_next >= 0)
        w->conns[c->q_next].q_prev = c->q_prev;
    else
        w->idle_tail = c->q_prev;
    c->q_prev = c->q_next = -1;
    c->flags &= ~TERN_CONN_IN_QUEUE;
}

static void conn_close(tern__worker *w, tern__conn *c) {
    queue_remove(w, c);
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

/* ---- accept / events / sweep --------------------------------------------- */

void tern__conn_accepted(tern__worker *w, int fd) {
    /* the server-wide count was raised by the caller before accept (the
     * slot reservation that makes max_connections exact across workers) */
    if ((size_t)fd >= w->conn_slots) {
        close(fd);
        atomic_fetch_sub_explicit(&w->server->open_conns, 1, memory_order_relaxed);
        return;
    }
    tern__conn *c = &w->conns[fd];
    *c = (tern__conn){.fd = fd, .flags = TERN_CONN_OPEN | TERN_CONN_READABLE, .q_prev = -1, .q_next = -1};
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
    __atomic_store_n(&w->open_conns, w->open_conns + 1, __ATOMIC_RELAXED);
    tern__metrics_conn_opened(w->metrics);
    /* TCP_DEFER_ACCEPT: the request is most likely already here, so serve
     * now rather than after another trip through epoll_wait */
    start_serving(w, c);
}

void tern__conn_event(tern__worker *w, tern__conn *c, uint32_t events) {
    if (!(c->flags & TERN_CONN_OPEN)) return;
    const uint32_t in_ev = EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR;
    if (events & in_ev) c->flags |= TERN_CONN_READABLE;
    conn_busy *b = c->busy;
    if (b) {
        if (b->wait) {
            if (((b->wait & EPOLLIN) && (events & in_ev)) ||
                ((b->wait & EPOLLOUT) && (events & (EPOLLOUT | EPOLLHUP | EPOLLERR))))
                tern__sched_wake(b->coro, 0);
        } else if (b->in_handler && (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))) {
            /* the client went away while its request is being handled:
             * cancel it, so its next park returns -ECANCELED */
            tern__sched_cancel(b->coro);
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

/* An idle keep-alive connection is not closed at once when the drain
 * starts: a client may have sent its next request at that very moment, and
 * closing would lose it (HTTP/1.1 clients may not retry). It gets a short
 * grace instead; a request that arrives meanwhile is answered with
 * Connection: close. */
#define DRAIN_IDLE_GRACE_MS 500u

void tern__conn_drain(tern__worker *w) {
    uint32_t now = tern__worker_ms(w);
    unsigned grace = w->server->cfg.drain_timeout_ms < DRAIN_IDLE_GRACE_MS
                         ? w->server->cfg.drain_timeout_ms
                         : DRAIN_IDLE_GRACE_MS;
    for (size_t fd = 0; fd < w->conn_slots; fd++) {
        tern__conn *c = &w->conns[fd];
        if (!(c->flags & TERN_CONN_OPEN)) continue;
        c->flags |= TERN_CONN_DRAIN;
        if (!c->busy) {
            queue_remove(w, c);
            queue_append(w, c, now + grace);
        }
    }
}

void tern__conn_cancel_all(tern__worker *w) {
    for (size_t fd = 0; fd < w->conn_slots; fd++) {
        tern__conn *c = &w->conns[fd];
        if ((c->flags & TERN_CONN_OPEN) && c->busy) {
            c->flags |= TERN_CONN_KILL;
            tern__sched_cancel(c->busy->coro);
        }
    }
}

/* ---- parking with the scratch buffers ------------------------------------ */

static int out_reserve(conn_busy *b, size_t n) {
    if (b->out_cap - b->out_len >= n) return 0;
    if (b->out_off) {
        memmove(b->out, b->out + b->out_off, b->out_len - b->out_off);
        b->out_len -= b->out_off;
        b->out_off = 0;
        if (b->out_cap - b->out_len >= n) return 0;
    }
    size_t cap = b->out_cap ? b->out_cap * 2 : 4096;
    while (cap - b->out_len < n) cap *= 2;
    char *p = realloc(b->out, cap);
    if (!p) return -ENOMEM;
    b->out = p;
    b->out_cap = cap;
    return 0;
}

static int in_make_owned(conn_busy *b, size_t min_cap) {
    size_t avail = in_avail(b);
    size_t cap = avail + 4096;
    if (cap < min_cap) cap = min_cap;
    char *p = malloc(cap);
    if (!p) return -ENOMEM;
    if (avail) memcpy(p, b->in + b->in_start, avail);
    b->in = p;
    b->in_start = 0;
    b->in_len = avail;
    b->in_cap = cap;
    b->in_owned = 1;
    return 0;
}

/* Called by the scheduler just before a connection coroutine parks: what it
 * still needs from the worker's scratch buffers moves to its own. */
static void conn_park_hook(void *arg) {
    conn_busy *b = arg;
    tern__worker *w = tern__worker_self;
    if (!b->in_owned) {
        if (b->in && in_avail(b)) {
            if (in_make_owned(b, 0) < 0) b->lost = 1;
        } else {
            b->in = NULL;
            b->in_start = b->in_len = 0;
        }
    }
    size_t pending = w->wbuf.len - w->wbuf.off;
    if (pending && b->out_len == b->out_off && !(b->wait & EPOLLOUT)) {
        /* responses already made for earlier pipelined requests go out now,
         * not when the parking handler finishes */
        ssize_t n = send(b->conn->fd, w->wbuf.data + w->wbuf.off, pending, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n > 0) {
            w->wbuf.off += (size_t)n;
            pending -= (size_t)n;
        }
    }
    if (pending) {
        if (out_reserve(b, pending) == 0) {
            memcpy(b->out + b->out_len, w->wbuf.data + w->wbuf.off, pending);
            b->out_len += pending;
        } else {
            b->lost = 1;
        }
    }
    w->wbuf.off = w->wbuf.len = 0;
}

static int conn_wait(conn_busy *b, uint32_t events, uint64_t deadline_ns) {
    if (b->conn->flags & TERN_CONN_KILL) return -ECANCELED;
    b->wait = events;
    int r = tern__sched_park_until(deadline_ns);
    b->wait = 0;
    if (b->lost) return -ENOMEM;
    return r;
}

/* ---- output -------------------------------------------------------------- */

static char *wbuf_reserve(tern__worker *w, size_t n) {
    tern__wbuf *wb = &w->wbuf;
    if (wb->cap - wb->len < n) {
        size_t cap = wb->cap * 2;
        while (cap - wb->len < n) cap *= 2;
        char *p = realloc(wb->data, cap);
        if (!p) return NULL;
        wb->data = p;
        wb->cap = cap;
    }
    return wb->data + wb->len;
}

/* Writes the output stash, the write buffer and then `extra`, parking while
 * the socket is full (a slow reader is waited for, never cut off, until the
 * write timeout passes with no progress at all). 0 or -errno. */
static int conn_write(tern__worker *w, tern__conn *c, conn_busy *b, const char *extra, size_t extra_len) {
    const tern_config *cfg = &w->server->cfg;
    for (;;) {
        struct iovec iov[3];
        int n = 0;
        size_t total = 0;
        if (b->out_len > b->out_off)
            iov[n++] = (struct iovec){b->out + b->out_off, b->out_len - b->out_off};
        if (w->wbuf.len > w->wbuf.off)
            iov[n++] = (struct iovec){w->wbuf.data + w->wbuf.off, w->wbuf.len - w->wbuf.off};
        if (extra_len) iov[n++] = (struct iovec){(void *)extra, extra_len};
        if (n == 0) return 0;
        for (int i = 0; i < n; i++) total += iov[i].iov_len;
        ssize_t r;
        if (n == 1) {
            r = send(c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
        } else {
            struct msghdr msg = {.msg_iov = iov, .msg_iovlen = (size_t)n};
            r = sendmsg(c->fd, &msg, MSG_NOSIGNAL);
        }
        if (r < 0) {
            if (errno == EINTR) continue;
            if (errno != EAGAIN) return -errno;
            r = 0;
        }
        size_t done = (size_t)r;
        /* consume in order: stash, write buffer, extra */
        size_t k = b->out_len - b->out_off;
        if (k) {
            size_t m = done < k ? done : k;
            b->out_off += m;
            done -= m;
            if (b->out_off == b->out_len) b->out_off = b->out_len = 0;
        }
        k = w->wbuf.len - w->wbuf.off;
        if (k) {
            size_t m = done < k ? done : k;
            w->wbuf.off += m;
            done -= m;
            if (w->wbuf.off == w->wbuf.len) w->wbuf.off = w->wbuf.len = 0;
        }
        if (extra_len) {
            extra += done;
            extra_len -= done;
        }
        if ((size_t)r == total) return 0;
        uint64_t deadline = cfg->write_timeout_ms
                                ? tern_clock_ns() + (uint64_t)cfg->write_timeout_ms * 1000000ull
                                : 0;
        int wr = conn_wait(b, EPOLLOUT, deadline);
        if (wr < 0) return wr;
    }
}

static int conn_flush(tern__worker *w, tern__conn *c, conn_busy *b) {
    return conn_write(w, c, b, NULL, 0);
}

static size_t put_u64(char *p, uint64_t v) {
    char tmp[20];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) p[i] = tmp[n - 1 - i];
    return n;
}

#define PUT(p, s) (memcpy((p), (s), sizeof(s) - 1), (p) += sizeof(s) - 1)

static int status_has_body(int status) {
    return !(status < 200 || status == 204 || status == 304);
}

/* Serialises ctx's response into the write buffer (and sends a large body
 * straight from where it is). 0, or -errno when the connection broke. */
/* stream: STREAM_NONE for a whole response; else the head of a streamed
 * one, with Content-Length `stream` (>= 0) or chunked (STREAM_CHUNKED). */
#define STREAM_NONE (-2)
#define STREAM_CHUNKED (-1)
#define STREAM_UNTIL_CLOSE (-3) /* HTTP/1.0 client, length unknown: no length, close ends it */
static int send_head_body(tern__worker *w, tern__conn *c, conn_busy *b, tern_ctx *ctx, int64_t stream) {
    const tern_server *srv = w->server;
    size_t reason_len;
    const char *reason = tern__status_reason(ctx->status, &reason_len);
    const char *date = tern__date_now(&w->date);
    int has_body = status_has_body(ctx->status);
    int send_body = has_body && ctx->method != TERN_HEAD && stream == STREAM_NONE;
    size_t body_len = !has_body || stream == STREAM_UNTIL_CLOSE ? 0
                      : stream >= 0                             ? (size_t)stream
                                                                : ctx->resp_body_len;
    size_t server_len = ctx->server_set ? 0 : srv->server_name_len;

    size_t need = 9 + 3 + 1 + reason_len + 2 + 6 + TERN_DATE_LEN + 2 + 16 + 20 + 2 + 24 + 2;
    if (!ctx->server_set) need += 8 + server_len + 2;
    for (uint32_t i = 0; i < ctx->num_resp; i++)
        need += ctx->resp[i].name_len + 2 + ctx->resp[i].value_len + 2;
    int inline_body = send_body && body_len <= INLINE_BODY_MAX;
    if (inline_body) need += body_len;

    if (w->wbuf.len > w->wbuf.off && w->wbuf.cap - w->wbuf.len < need) {
        /* the batch is full: send it rather than grow the worker's buffer
         * (it stays at its initial 64 KiB under any mix of responses) */
        int fr = conn_flush(w, c, b);
        if (fr < 0) return fr;
    }
    char *start = wbuf_reserve(w, need);
    if (!start) return -ENOMEM;
    char *p = start;
    if (ctx->status == 200 && !ctx->server_set && server_len < 64) {
        if (w->ok_prefix_second != w->date.second) {
            char *q = w->ok_prefix;
            PUT(q, "HTTP/1.1 200 OK\r\nServer: ");
            memcpy(q, srv->cfg.server_name, server_len);
            q += server_len;
            PUT(q, "\r\nDate: ");
            memcpy(q, date, TERN_DATE_LEN);
            q += TERN_DATE_LEN;
            PUT(q, "\r\n");
            w->ok_prefix_len = (size_t)(q - w->ok_prefix);
            w->ok_prefix_second = w->date.second;
        }
        memcpy(p, w->ok_prefix, w->ok_prefix_len);
        p += w->ok_prefix_len;
    } else {
        PUT(p, "HTTP/1.1 ");
        p[0] = (char)('0' + ctx->status / 100);
        p[1] = (char)('0' + ctx->status / 10 % 10);
        p[2] = (char)('0' + ctx->status % 10);
        p[3] = ' ';
        p += 4;
        memcpy(p, reason, reason_len);
        p += reason_len;
        PUT(p, "\r\n");
        if (!ctx->server_set) {
            PUT(p, "Server: ");
            memcpy(p, srv->cfg.server_name, server_len);
            p += server_len;
            PUT(p, "\r\n");
        }
        PUT(p, "Date: ");
        memcpy(p, date, TERN_DATE_LEN);
        p += TERN_DATE_LEN;
        PUT(p, "\r\n");
    }
    for (uint32_t i = 0; i < ctx->num_resp; i++) {
        const tern__resp_header *h = &ctx->resp[i];
        memcpy(p, h->name, h->name_len);
        p += h->name_len;
        *p++ = ':';
        *p++ = ' ';
        memcpy(p, h->value, h->value_len);
        p += h->value_len;
        PUT(p, "\r\n");
    }
    if (has_body && stream == STREAM_CHUNKED) {
        PUT(p, "Transfer-Encoding: chunked\r\n");
    } else if (has_body && stream != STREAM_UNTIL_CLOSE) {
        PUT(p, "Content-Length: ");
        p += put_u64(p, body_len);
        PUT(p, "\r\n");
    }
    if (ctx->close)
        PUT(p, "Connection: close\r\n");
    else if (ctx->minor == 0)
        PUT(p, "Connection: keep-alive\r\n");
    PUT(p, "\r\n");
    if (inline_body && body_len) {
        memcpy(p, ctx->resp_body, body_len);
        p += body_len;
    }
    w->wbuf.len += (size_t)(p - start);
    tern__metrics_response(w->metrics, ctx->status, tern_clock_ns() - ctx->start_ns);
    if (send_body && !inline_body) return conn_write(w, c, b, ctx->resp_body, body_len);
    return 0;
}

static int send_response(tern__worker *w, tern__conn *c, conn_busy *b, tern_ctx *ctx) {
    return send_head_body(w, c, b, ctx, STREAM_NONE);
}

/* ---- streamed responses -------------------------------------------------- */

int tern_resp_stream_start(tern_ctx *ctx, int64_t content_length) {
    if (ctx->stream_state) return -EALREADY;
    tern__conn *c = ctx->conn;
    conn_busy *b = c->busy;
    /* the worker's write buffer belongs to the connection's coroutine: a
     * task spawned by the handler must hand data back, not write itself */
    if (!b || tern__sched_self->current != b->coro) return -EPERM;
    tern__worker *w = ctx->worker;
    if (content_length < 0) {
        /* chunked needs HTTP/1.1; a 1.0 client reads until we close */
        if (ctx->minor == 0) {
            ctx->close = 1;
            content_length = STREAM_UNTIL_CLOSE;
        } else {
            content_length = STREAM_CHUNKED;
        }
    }
    ctx->stream_state = 1;
    ctx->stream_chunked = content_length == STREAM_CHUNKED;
    ctx->stream_left = content_length >= 0 ? (uint64_t)content_length : UINT64_MAX;
    ctx->resp_body_len = 0;
    int r = send_head_body(w, c, b, ctx, content_length);
    if (r == 0) r = conn_flush(w, c, b);
    if (r < 0) {
        ctx->stream_state = 3; /* broken */
        ctx->close = 1;
    }
    return r;
}

int tern_resp_stream_write(tern_ctx *ctx, const void *data, size_t len) {
    if (ctx->stream_state == 0) {
        int r = tern_resp_stream_start(ctx, -1);
        if (r < 0) return r;
    }
    if (ctx->stream_state != 1) return -EPIPE;
    if (!ctx->conn->busy || tern__sched_self->current != ctx->conn->busy->coro) return -EPERM;
    if (len == 0) return 0;
    if (ctx->method == TERN_HEAD || !status_has_body(ctx->status)) return 0;
    tern__conn *c = ctx->conn;
    conn_busy *b = c->busy;
    tern__worker *w = ctx->worker;
    if (!ctx->stream_chunked) {
        if (len > ctx->stream_left) return -EMSGSIZE;
        ctx->stream_left -= len;
    } else {
        char *p = wbuf_reserve(w, 20);
        if (!p) return -ENOMEM;
        static const char hex[] = "0123456789abcdef";
        char tmp[16];
        int n = 0;
        for (size_t v = len; v; v >>= 4) tmp[n++] = hex[v & 15];
        for (int i = 0; i < n; i++) p[i] = tmp[n - 1 - i];
        p[n] = '\r';
        p[n + 1] = '\n';
        w->wbuf.len += (size_t)n + 2;
    }
    int r = conn_write(w, c, b, data, len);
    if (r == 0 && ctx->stream_chunked) {
        char *p = wbuf_reserve(w, 2);
        if (!p) r = -ENOMEM;
        else {
            memcpy(p, "\r\n", 2);
            w->wbuf.len += 2;
        }
    }
    if (r < 0) {
        ctx->stream_state = 3;
        ctx->close = 1;
    }
    return r;
}

int tern_resp_stream_end(tern_ctx *ctx) {
    if (ctx->stream_state != 1) return ctx->stream_state == 2 ? 0 : -EPIPE;
    ctx->stream_state = 2;
    if (ctx->stream_chunked && ctx->method != TERN_HEAD && status_has_body(ctx->status)) {
        char *p = wbuf_reserve(ctx->worker, 5);
        if (!p) return -ENOMEM;
        memcpy(p, "0\r\n\r\n", 5);
        ctx->worker->wbuf.len += 5;
    } else if (!ctx->stream_chunked && ctx->stream_left && ctx->stream_left != UINT64_MAX &&
               ctx->method != TERN_HEAD) {
        /* fewer bytes than announced: the client can only learn it from a close */
        ctx->close = 1;
        return -EPIPE;
    }
    return 0;
}

/* ---- input --------------------------------------------------------------- */

/* recv, or recvmsg with the kernel's receive timestamp when a route sheds
 * adaptively (its queue delay then starts when the bytes reached the host,
 * not when we got around to reading them). */
static ssize_t conn_recv(tern__worker *w, tern__conn *c, conn_busy *b, char *buf, size_t len) {
    if (!(c->flags & TERN_CONN_TSTAMP)) return recv(c->fd, buf, len, 0);
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {buf, len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    ssize_t n = recvmsg(c->fd, &msg, 0);
    if (n > 0) {
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec ts;
                memcpy(&ts, CMSG_DATA(cm), sizeof ts);
                b->arrival_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
            }
        }
    }
    return n;
}

static uint64_t realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* Reads what is there into the scratch buffer without waiting. Returns
 * bytes read, 0 at end of stream, -EAGAIN, or -errno. */
static ssize_t read_some(tern__worker *w, tern__conn *c, conn_busy *b) {
    for (;;) {
        c->flags &= ~TERN_CONN_READABLE;
        ssize_t n = conn_recv(w, c, b, w->rbuf, w->rbuf_size);
        if (n > 0) {
            b->in = w->rbuf;
            b->in_start = 0;
            b->in_len = (size_t)n;
            b->in_owned = 0;
            /* a full buffer may have left bytes behind; a short read
             * drained the socket, and the next edge will say when more come */
            if ((size_t)n == w->rbuf_size) c->flags |= TERN_CONN_READABLE;
            return n;
        }
        if (n == 0) {
            c->flags |= TERN_CONN_PEER_EOF;
            return 0;
        }
        if (errno == EINTR) continue;
        return -errno;
    }
}

/* Appends more input to the connection's own buffer (holding at least
 * need_total bytes of room from in_start), waiting for it up to deadline.
 * 0, -EPIPE at end of stream, -ETIMEDOUT, -ECANCELED or -errno. */
static int read_more(tern__worker *w, tern__conn *c, conn_busy *b, size_t need_total, uint64_t deadline) {
    if (!b->in_owned) {
        if (in_make_owned(b, need_total) < 0) return -ENOMEM;
    }
    size_t want = need_total > b->in_len + 1024 ? need_total : b->in_len + 1024;
    if (b->in_cap < want) {
        size_t cap = b->in_cap * 2 > want ? b->in_cap * 2 : want;
        char *p = realloc(b->in, cap);
        if (!p) return -ENOMEM;
        b->in = p;
        b->in_cap = cap;
    }
    for (;;) {
        size_t room = b->in_cap - b->in_len;
        c->flags &= ~TERN_CONN_READABLE;
        ssize_t n = conn_recv(w, c, b, b->in + b->in_len, room);
        if (n > 0) {
            b->in_len += (size_t)n;
            if ((size_t)n == room) c->flags |= TERN_CONN_READABLE;
            return 0;
        }
        if (n == 0) {
            c->flags |= TERN_CONN_PEER_EOF;
            return -EPIPE;
        }
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return -errno;
        int r = conn_wait(b, EPOLLIN, deadline);
        if (r < 0) return r;
    }
}

static uint64_t deadline_after(unsigned ms) {
    return ms ? tern_clock_ns() + (uint64_t)ms * 1000000ull : 0;
}

/* ---- requests ------------------------------------------------------------ */

static const char *error_detail(int status) {
    switch (status) {
    case 400: return "malformed request";
    case 408: return "request not received in time";
    case 413: return "request body too large";
    case 414: return "request target too long";
    case 431: return "request header fields too large";
    case 501: return "not implemented";
    case 505: return "HTTP version not supported";
    default: return NULL;
    }
}

/* Answers with an error page and asks for the connection to be closed:
 * after a bad request the stream can no longer be trusted. */
static int error_response(tern__worker *w, tern__conn *c, conn_busy *b, int status, const char *detail,
                          unsigned method) {
    tern_ctx ctx;
    tern__ctx_init(&ctx);
    ctx.worker = w;
    ctx.conn = c;
    ctx.minor = 1;
    ctx.method = method;
    ctx.close = 1;
    ctx.start_ns = tern_clock_ns();
    tern__ctx_error(&ctx, status, detail ? detail : error_detail(status));
    int r = send_response(w, c, b, &ctx);
    tern__ctx_release(&ctx);
    tern__metrics_rejected(w->metrics, status);
    return r < 0 ? -1 : 0;
}

static void set_allow(tern_ctx *ctx, unsigned allowed) {
    static const struct { unsigned bit; const char *name; } names[] = {
        {TERN_GET, "GET"},       {TERN_HEAD, "HEAD"},       {TERN_POST, "POST"},
        {TERN_PUT, "PUT"},       {TERN_DELETE, "DELETE"},   {TERN_PATCH, "PATCH"},
        {TERN_OPTIONS, "OPTIONS"}, {TERN_CONNECT, "CONNECT"}, {TERN_TRACE, "TRACE"},
    };
    char buf[96];
    size_t n = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(allowed & names[i].bit)) continue;
        size_t l = strlen(names[i].name);
        if (n) {
            buf[n++] = ',';
            buf[n++] = ' ';
        }
        memcpy(buf + n, names[i].name, l);
        n += l;
    }
    buf[n] = 0;
    tern_resp_set_header(ctx, "Allow", buf);
}

typedef struct handler_deadline {
    tern__timer timer;
    tern_coro *coro;
    int fired;
} handler_deadline;

static void handler_deadline_fire(tern__timer *t) {
    handler_deadline *hd = (handler_deadline *)t;
    hd->fired = 1;
    tern__sched_cancel(hd->coro);
}

static void shed(tern__worker *w, tern_ctx *ctx, const char *why) {
    tern__ctx_error(ctx, 503, why);
    tern_resp_set_header(ctx, "Retry-After", "1");
    tern__metrics_shed(w->metrics);
}

/* Admission, then the handler. Every refusal is immediate: there is no
 * queue to wait in, so an overloaded server answers 503 in microseconds. */
static void run_handler(tern__worker *w, conn_busy *b, tern_ctx *ctx, tern__route_entry *e) {
    tern_server *srv = w->server;
    if (e->adaptive) {
        uint64_t delay;
        if (b->arrival_ns) {
            uint64_t now = realtime_ns();
            delay = now > b->arrival_ns ? now - b->arrival_ns : 0;
        } else {
            /* first adaptive request on this connection: from now on read
             * with kernel receive timestamps (recvmsg costs more than recv,
             * so only connections that use adaptive routes pay for it);
             * until then, count from when this loop pass saw the bytes */
            tern__conn *c = b->conn;
            int one = 1;
            if (setsockopt(c->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) == 0)
                c->flags |= TERN_CONN_TSTAMP;
            delay = tern_clock_ns() - w->sched.now_ns;
        }
        tern__metrics_queue_delay(w->metrics, delay);
        unsigned fl = atomic_load_explicit(&srv->in_flight, memory_order_relaxed);
        if (tern__admission_check(&w->admission, delay, w->sched.now_ns, fl, srv->cfg.max_in_flight)) {
            shed(w, ctx, "overloaded, retry later");
            return;
        }
    }
    if (e->max_in_flight) {
        unsigned n = atomic_fetch_add_explicit(&e->in_flight, 1, memory_order_relaxed);
        if (n >= e->max_in_flight) {
            atomic_fetch_sub_explicit(&e->in_flight, 1, memory_order_relaxed);
            shed(w, ctx, "route busy, retry later");
            return;
        }
    }
    unsigned limit = srv->cfg.max_in_flight;
    if (limit) {
        unsigned n = atomic_fetch_add_explicit(&srv->in_flight, 1, memory_order_relaxed);
        if (n >= limit) {
            atomic_fetch_sub_explicit(&srv->in_flight, 1, memory_order_relaxed);
            if (e->max_in_flight) atomic_fetch_sub_explicit(&e->in_flight, 1, memory_order_relaxed);
            shed(w, ctx, "server busy, retry later");
            return;
        }
    }
    __atomic_store_n(&w->in_flight, w->in_flight + 1, __ATOMIC_RELAXED); /* read by /stats */
    b->in_handler = 1;
    handler_deadline hd = {.timer = {.fn = handler_deadline_fire}, .coro = b->coro};
    if (e->timeout_ms)
        tern__wheel_add(&w->sched.wheel, &hd.timer, tern_clock_ns() + (uint64_t)e->timeout_ms * 1000000ull);
    uint64_t t_start = 0;
    if (e->adaptive) {
        tern__admission_start(&w->admission);
        t_start = tern_clock_ns();
    }
    e->handler(ctx);
    if (e->adaptive) tern__admission_done(&w->admission, tern_clock_ns() - t_start);
    tern__wheel_cancel(&w->sched.wheel, &hd.timer);
    b->in_handler = 0;
    /* a cancellation (client gone, deadline) was aimed at the handler: the
     * connection's own waits (writing the answer) are not cancelled */
    tern__sched_clear_cancel(b->coro);
    if (hd.fired && !ctx->stream_state) {
        tern__ctx_error(ctx, 503, "handler deadline exceeded");
        tern_resp_set_header(ctx, "Retry-After", "1");
    }
    __atomic_store_n(&w->in_flight, w->in_flight - 1, __ATOMIC_RELAXED);
    if (limit) atomic_fetch_sub_explicit(&srv->in_flight, 1, memory_order_relaxed);
    if (e->max_in_flight) atomic_fetch_sub_explicit(&e->in_flight, 1, memory_order_relaxed);
}

/* A body that trickles in (each read within body_timeout_ms, so the idle
 * timeout never fires) is still cut off once, past a grace period of
 * body_timeout_ms, its average rate stays under min_body_rate. */
static int body_too_slow(const tern_config *cfg, uint64_t t0, size_t got) {
    if (!cfg->min_body_rate || !cfg->body_timeout_ms) return 0;
    uint64_t elapsed = tern_clock_ns() - t0;
    if (elapsed < (uint64_t)cfg->body_timeout_ms * 1000000ull) return 0;
    return (uint64_t)got * 1000000000ull / elapsed < cfg->min_body_rate;
}

/* Reads a chunked body into the connection's own buffer, decoding in place
 * right after the head. Sets the decoded body and the input consumed. */
static int read_chunked(tern__worker *w, tern__conn *c, conn_busy *b, size_t head_len, int expect,
                        size_t *body_off, size_t *body_len, size_t *consumed) {
    const tern_config *cfg = &w->server->cfg;
    if (!b->in_owned && in_make_owned(b, head_len + 4096) < 0) return -503;
    tern__chunked dec;
    tern__chunked_init(&dec, cfg->max_body);
    size_t out = b->in_start + head_len; /* decoded bytes go here */
    size_t raw = out;                    /* next undecoded input byte */
    size_t decoded = 0;
    int sent_continue = 0;
    uint64_t t0 = tern_clock_ns();
    for (;;) {
        size_t used = 0, produced = 0;
        int r = tern__chunked_decode(&dec, b->in + raw, b->in_len - raw, &used, b->in + out + decoded,
                                    &produced);
        raw += used;
        decoded += produced;
        if (r == 1) break;
        if (r < 0) return r;
        if (expect && !sent_continue) {
            char *p = wbuf_reserve(w, 25);
            if (!p) return -503;
            memcpy(p, "HTTP/1.1 100 Continue\r\n\r\n", 25);
            w->wbuf.len += 25;
            if (conn_flush(w, c, b) < 0) return -1;
            sent_continue = 1;
        }
        /* read_more may move the buffer: offsets stay valid */
        int rr = read_more(w, c, b, 0, deadline_after(cfg->body_timeout_ms));
        if (rr == -ETIMEDOUT) return -408;
        if (rr < 0) return -1;
        if (body_too_slow(cfg, t0, b->in_len - out)) return -408;
    }
    *body_off = out;
    *body_len = decoded;
    *consumed = raw - b->in_start;
    return 0;
}

/* Serves one request from the input. Returns 1 to go on, 0 to close after
 * flushing what was answered, -1 to close at once. */
static int serve_one(tern__worker *w, tern__conn *c, conn_busy *b) {
    tern_server *srv = w->server;
    const tern_config *cfg = &srv->cfg;
    if (b->in_owned && b->in_start) {
        size_t avail = in_avail(b);
        memmove(b->in, b->in + b->in_start, avail);
        b->in_start = 0;
        b->in_len = avail;
    }

    /* 1. the head */
    tern__http_request req;
    memset(&req, 0, sizeof req);
    req.headers = w->hdrs;
    uint64_t head_deadline = 0;
    int hr;
    for (;;) {
        hr = tern__http_parse_request(b->in + b->in_start, in_avail(b), &req, &srv->limits);
        if (hr != TERN_PARSE_INCOMPLETE) break;
        /* the parser keeps the headers validated so far in w->hdrs, which
         * other connections use while this one waits for bytes: start the
         * head over after every wait (at most max_request_head per read) */
        memset(&req, 0, sizeof req);
        req.headers = w->hdrs;
        if (!head_deadline) head_deadline = deadline_after(cfg->header_timeout_ms);
        int r = read_more(w, c, b, 0, head_deadline);
        if (r == -ETIMEDOUT) return error_response(w, c, b, 408, NULL, 0);
        if (r < 0) return -1;
    }
    if (hr < 0) return error_response(w, c, b, -hr, NULL, 0);
    size_t head_len = (size_t)hr;

    /* 2. the head onto this coroutine's stack: it stays valid while the
     * handler parks and the scratch buffer serves other connections */
    char *head = alloca(head_len + 1);
    memcpy(head, b->in + b->in_start, head_len);
    head[head_len] = 0;
    tern__http_header *hdrs = alloca((req.num_headers ? req.num_headers : 1) * sizeof *hdrs);
    memcpy(hdrs, w->hdrs, req.num_headers * sizeof *hdrs);
    for (uint32_t i = 0; i < req.num_headers; i++) head[hdrs[i].value_off + hdrs[i].value_len] = 0;

    if (req.method == 0) return error_response(w, c, b, 501, "unknown method", 0);

    /* 3. the body */
    int expect = (req.flags & TERN_REQ_EXPECT_CONTINUE) && req.minor == 1;
    const char *body = NULL;
    size_t body_len = 0, consumed = head_len;
    char *body_heap = NULL;
    if (req.flags & TERN_REQ_CHUNKED) {
        size_t off;
        int r = read_chunked(w, c, b, head_len, expect, &off, &body_len, &consumed);
        if (r == -1) return -1;
        if (r < 0) return error_response(w, c, b, -r, NULL, req.method);
        body = b->in + off; /* owned buffer: stable until the next request */
    } else if ((req.flags & TERN_REQ_HAS_LENGTH) && req.content_length > 0) {
        if (req.content_length > cfg->max_body) return error_response(w, c, b, 413, NULL, req.method);
        size_t need = head_len + (size_t)req.content_length;
        if (in_avail(b) < need) {
            if (expect) {
                char *p = wbuf_reserve(w, 25);
                if (!p) return -1;
                memcpy(p, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                w->wbuf.len += 25;
                if (conn_flush(w, c, b) < 0) return -1;
            }
            uint64_t body_t0 = tern_clock_ns();
            size_t body_have0 = in_avail(b);
            while (in_avail(b) < need) {
                int r = read_more(w, c, b, b->in_start + need, deadline_after(cfg->body_timeout_ms));
                if (r == -ETIMEDOUT) return error_response(w, c, b, 408, NULL, req.method);
                if (r < 0) return -1;
                if (body_too_slow(cfg, body_t0, in_avail(b) - body_have0))
                    return error_response(w, c, b, 408, "request body too slow", req.method);
            }
        }
        body_len = (size_t)req.content_length;
        consumed = need;
        body = b->in + b->in_start + head_len;
        if (!b->in_owned) {
            /* the scratch buffer is not ours once the handler parks */
            char *copy = body_len <= STACK_BODY_MAX ? alloca(body_len) : (body_heap = malloc(body_len));
            if (!copy) return error_response(w, c, b, 503, "out of memory", req.method);
            memcpy(copy, body, body_len);
            body = copy;
        }
    }
    b->in_start += consumed;

    /* 4. the context */
    tern_ctx ctx;
    tern__ctx_init(&ctx);
    ctx.worker = w;
    ctx.conn = c;
    ctx.server = w->server;
    ctx.head = head;
    ctx.headers = hdrs;
    ctx.num_headers = req.num_headers;
    ctx.method = req.method;
    ctx.minor = req.minor;
    ctx.req_flags = req.flags;
    ctx.method_str = (tern_str){head, req.method_len};
    ctx.target = (tern_str){head + req.target_off, req.target_len};
    ctx.query = (tern_str){head + req.query_off, req.query_len};
    ctx.body = body ? body : "";
    ctx.body_len = body_len;
    ctx.close = !(req.flags & TERN_REQ_KEEP_ALIVE) || (c->flags & TERN_CONN_DRAIN);
    ctx.start_ns = w->sched.now_ns;
    if (c->requests != UINT32_MAX) c->requests++;

    int status = 0; /* an error to answer with, closing */
    if (req.flags & TERN_REQ_FORM_ASTERISK) {
        /* "OPTIONS *": the server's own capabilities (RFC 9110 §9.3.7) */
        tern_resp_set_status(&ctx, 204);
        set_allow(&ctx, TERN_ANY & ~(TERN_CONNECT | TERN_TRACE));
        ctx.path = "*";
    } else {
        const char *raw = head + req.path_off;
        size_t plen = req.path_len;
        char *path;
        if (plen == 0) {
            path = (char *)"/";
        } else if (tern__path_needs_normalize(raw, plen)) {
            path = tern_alloc(&ctx, plen + 1);
            ssize_t n = path ? tern__path_normalize(raw, plen, path) : -1;
            if (!path) status = 503;
            else if (n < 0) status = 400;
            else plen = (size_t)n;
        } else if (raw[plen] == ' ') {
            path = (char *)raw;
            path[plen] = 0; /* the SP after the target: the target view ends before it */
        } else {
            path = tern_alloc(&ctx, plen + 1);
            if (path) {
                memcpy(path, raw, plen);
                path[plen] = 0;
            } else {
                status = 503;
            }
        }
        ctx.path = status ? "/" : path;
        if (!status) {
            tern__route_match m;
            int r = tern__router_match(srv->router, req.method, path, plen, &m);
            if (r == 0) {
                for (uint32_t i = 0; i < m.num_params; i++) {
                    char *v = tern_alloc(&ctx, m.params[i].value_len + 1);
                    if (!v) break;
                    memcpy(v, m.params[i].value, m.params[i].value_len);
                    v[m.params[i].value_len] = 0;
                    ctx.param_names[i] = m.params[i].name;
                    ctx.param_values[i] = v;
                    ctx.num_params = i + 1;
                }
                ctx.route_data = ((tern__route_entry *)m.handler)->data;
                run_handler(w, b, &ctx, m.handler);
            } else if (r == -405 && req.method == TERN_OPTIONS) {
                tern_resp_set_status(&ctx, 204);
                set_allow(&ctx, m.allowed);
            } else if (r == -405) {
                tern__ctx_error(&ctx, 405, NULL);
                set_allow(&ctx, m.allowed);
            } else {
                tern__ctx_error(&ctx, 404, NULL);
            }
        }
    }
    if (status) {
        ctx.close = 1;
        tern__ctx_error(&ctx, status, status == 400 ? "invalid path" : "out of memory");
    } else if (ctx.oom) {
        tern__ctx_error(&ctx, 503, "out of memory");
    }
    if (c->flags & TERN_CONN_DRAIN) ctx.close = 1;
    if (!ctx.close && !(c->flags & TERN_CONN_NODELAY)) {
        /* Nagle would hold a later small response while this one is
         * unacknowledged; a connection that closes after its first answer
         * never has that problem, so it is spared the syscall */
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        c->flags |= TERN_CONN_NODELAY;
    }
    int r;
    if (ctx.stream_state) {
        /* the handler streamed its response: finish the framing */
        r = ctx.stream_state == 3 ? -1 : 0;
        if (ctx.stream_state == 1) tern_resp_stream_end(&ctx);
    } else {
        r = send_response(w, c, b, &ctx);
    }
    tern__ctx_release(&ctx);
    free(body_heap);
    if (r < 0) return -1;
    return ctx.close ? 0 : 1;
}

/* Closes after the last response. If the client may still be sending
 * (unread input), shut down our side first and read until it closes, so
 * that its unread bytes do not make the kernel answer with an RST that
 * could destroy the response before the client reads it. */
static void finish_close(tern__worker *w, tern__conn *c, conn_busy *b, int graceful) {
    if (graceful && conn_flush(w, c, b) == 0 && !(c->flags & TERN_CONN_PEER_EOF) &&
        (in_avail(b) || (c->flags & TERN_CONN_READABLE))) {
        shutdown(c->fd, SHUT_WR);
        uint64_t deadline = tern_clock_ns() + LINGER_NS;
        size_t discarded = 0;
        while (discarded < LINGER_MAX_BYTES) {
            c->flags &= ~TERN_CONN_READABLE;
            ssize_t n = recv(c->fd, w->rbuf, w->rbuf_size, 0);
            if (n > 0) {
                discarded += (size_t)n;
                continue;
            }
            if (n == 0 || (errno != EAGAIN && errno != EINTR)) break;
            if (errno == EAGAIN && conn_wait(b, EPOLLIN, deadline) < 0) break;
        }
    }
    conn_close(w, c);
}

static void conn_main(void *arg) {
    tern__conn *c = arg;
    tern__worker *w = tern__worker_self;
    conn_busy b;
    memset(&b, 0, sizeof b);
    b.conn = c;
    b.coro = w->sched.current;
    tern__sched_set_park_hook(b.coro, conn_park_hook, &b);
    c->busy = &b;

    int open = 1;
    while (open) {
        if (b.lost) {
            finish_close(w, c, &b, 0);
            open = 0;
            break;
        }
        if (in_avail(&b) == 0) {
            if (b.in_owned) {
                free(b.in);
                b.in_owned = 0;
            }
            b.in = NULL;
            b.in_start = b.in_len = 0;
            ssize_t n = -EAGAIN;
            if ((c->flags & TERN_CONN_READABLE) && !(c->flags & TERN_CONN_PEER_EOF))
                n = read_some(w, c, &b);
            if (n > 0) continue;
            if (n == -EAGAIN) {
                /* input used up: send the batch of responses; an edge that
                 * arrives while a slow flush parks is served before leaving */
                if (conn_flush(w, c, &b) < 0) {
                    finish_close(w, c, &b, 0);
                    open = 0;
                } else if (c->flags & TERN_CONN_PEER_EOF) {
                    finish_close(w, c, &b, 1);
                    open = 0;
                } else if (c->flags & TERN_CONN_DRAIN) {
                    finish_close(w, c, &b, 1);
                    open = 0;
                } else if (!(c->flags & TERN_CONN_READABLE)) {
                    break;
                }
                continue;
            }
            /* end of stream or error: send what is answered, then close */
            finish_close(w, c, &b, n == 0);
            open = 0;
            break;
        }
        int r = serve_one(w, c, &b);
        if (r <= 0) {
            finish_close(w, c, &b, r == 0);
            open = 0;
            break;
        }
        if (w->wbuf.len - w->wbuf.off >= WBUF_FLUSH_AT && conn_flush(w, c, &b) < 0) {
            finish_close(w, c, &b, 0);
            open = 0;
            break;
        }
    }
    /* nothing of this coroutine may stay in the scratch buffers */
    w->wbuf.off = w->wbuf.len = 0;
    if (b.in_owned) free(b.in);
    free(b.out);
    tern__sched_set_park_hook(b.coro, NULL, NULL);
    if (open) {
        c->busy = NULL;
        unsigned ka = w->server->cfg.keepalive_timeout_ms;
        if (ka) queue_append(w, c, tern__worker_ms(w) + ka);
    }
}


