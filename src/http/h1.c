/* The HTTP/1.1 exchange: the loop over one connection's requests, each
 * request's head, context and answer, and the lingering close. See h1.h. */
#include "http/h1.h"

#include <alloca.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "http/ctx.h"
#include "http/url.h"
#include "rt/sched.h"

#define RBUF_SIZE 65536
#define WBUF_INITIAL 65536
/* Flush the batch once this much is pending, so a pipelining client that
 * does not read cannot grow it without bound. */
#define WBUF_FLUSH_AT 65536
/* The request head (and its header index) is copied onto the coroutine's
 * stack up to this size by default, to the heap beyond: a head of
 * max_request_head (configurable up to megabytes) can never overflow a
 * small stack. The driver lowers it for small stacks (h1.h). */
#define HEAD_ON_STACK_MAX 8192
/* Request bodies up to this size that arrived in the scratch buffer are
 * copied onto the coroutine stack; larger ones go to the heap. */
#define BODY_ON_STACK_MAX 4096
/* Fairness: one connection serves at most this many pipelined requests (or
 * input bytes) before it lets the loop poll and run everyone else once. A
 * client that keeps 256 requests in flight per write would otherwise hold
 * its worker for as long as it likes. */
#define BATCH_REQUESTS 64
#define BATCH_BYTES (256u * 1024u)
/* Lingering close: how long and how much to read after our last response
 * before closing, so the client reads our response instead of an RST. */
#define LINGER_NS (2ull * 1000000000ull)
#define LINGER_MAX_BYTES (1u << 20)

/* What serving one request leaves for the loop. */
typedef enum h1_step {
    STEP_NEXT,  /* answered; the connection stays open */
    STEP_CLOSE, /* answered; close after flushing (lingering) */
    STEP_ABORT, /* the connection broke: close at once */
    STEP_UPGRADE, /* handed over (x->upgraded): leave the connection as it is */
} h1_step;

int tern__h1_scratch_init(tern__h1_scratch *s, unsigned max_headers) {
    memset(s, 0, sizeof *s);
    s->rbuf_size = RBUF_SIZE;
    s->rbuf = malloc(RBUF_SIZE);
    s->wbuf.data = malloc(WBUF_INITIAL);
    s->wbuf.cap = WBUF_INITIAL;
    s->hdrs = calloc(max_headers ? max_headers : 1, sizeof(tern__http_header));
    if (!s->rbuf || !s->wbuf.data || !s->hdrs) {
        tern__h1_scratch_destroy(s);
        return -ENOMEM;
    }
    return 0;
}

void tern__h1_scratch_destroy(tern__h1_scratch *s) {
    free(s->rbuf);
    free(s->wbuf.data);
    free(s->hdrs);
    memset(s, 0, sizeof *s);
}

void tern__h1_init(tern__h1 *x, const tern__h1_config *cfg, const tern__h1_hooks *hooks, void *drv,
                   tern__h1_scratch *scratch, tern_coro *coro) {
    /* x->t was set up by the driver; every other field is set here (no
     * memset of the whole struct: this runs once per busy period) */
    x->flags = x->t.flags;
    x->cfg = cfg;
    x->hooks = hooks;
    x->drv = drv;
    x->scratch = scratch;
    x->coro = coro;
    x->requests = NULL;
    x->upgraded = NULL;
    x->in_handler = x->lost = x->in_owned = x->writing = x->client_gone = 0;
    x->in = NULL;
    x->in_start = x->in_len = x->in_cap = 0;
    x->out = NULL;
    x->out_off = x->out_len = x->out_cap = 0;
    x->batch_requests = 0;
    x->batch_bytes = 0;
}

void tern__h1_release(tern__h1 *x) {
    /* nothing of this exchange may stay in the scratch buffers */
    x->scratch->wbuf.off = x->scratch->wbuf.len = 0;
    if (x->in_owned) free(x->in);
    x->in = NULL;
    x->in_owned = 0;
    x->in_start = x->in_len = 0;
    if (x->out) free(x->out);
    x->out = NULL;
    x->out_off = x->out_len = x->out_cap = 0;
}

/* ---- one request ----------------------------------------------------------- */

static tern__h1_read read_head(tern__h1 *x, tern__http_request *req, size_t *head_len, int *status) {
    uint64_t deadline = 0;
    for (;;) {
        /* the parser keeps the headers validated so far in the scratch,
         * which other connections use while this one waits for bytes:
         * start the head over after every wait */
        memset(req, 0, sizeof *req);
        req->headers = x->scratch->hdrs;
        int hr = tern__http_parse_request(x->in + x->in_start, tern__h1_in_avail(x), req, &x->cfg->limits);
        if (hr >= 0) {
            *head_len = (size_t)hr;
            return TERN__H1_READ_OK;
        }
        if (hr != TERN_PARSE_INCOMPLETE) {
            *status = -hr;
            return TERN__H1_READ_REJECT;
        }
        if (!deadline) deadline = tern__h1_deadline_after(x->cfg->header_timeout_ms);
        int r = tern__h1_read_more(x, 0, deadline);
        if (r == -ETIMEDOUT) {
            *status = 408;
            return TERN__H1_READ_REJECT;
        }
        if (r < 0) return TERN__H1_READ_BROKEN;
    }
}

static h1_step answer_error(tern__h1 *x, int status, const char *detail, unsigned method) {
    return tern__h1_send_error(x, status, detail, method) < 0 ? STEP_ABORT : STEP_CLOSE;
}

/* The decoded, normalised path, NUL-terminated: 0, or the status to answer
 * (400 for a path that climbs above the root or hides a NUL, 503). */
static int set_path(tern_ctx *ctx, const tern__http_request *req, char *head) {
    char *raw = head + req->path_off;
    size_t plen = req->path_len;
    char *path;
    if (plen == 0) {
        path = (char *)"/"; /* an absolute-form target without a path (RFC 9112 §3.2.2) */
        plen = 1;
    } else if (tern__path_needs_normalize(raw, plen)) {
        path = tern_alloc(ctx, plen + 1);
        if (!path) return 503;
        ssize_t n = tern__path_normalize(raw, plen, path);
        if (n < 0) return 400;
        plen = (size_t)n;
    } else if (raw[plen] == ' ') {
        path = raw;
        path[plen] = 0; /* the SP after the target: the target view ends before it */
    } else {
        path = tern_alloc(ctx, plen + 1);
        if (!path) return 503;
        memcpy(path, raw, plen);
        path[plen] = 0;
    }
    ctx->path = path;
    ctx->path_len = plen;
    return 0;
}

static void fill_ctx(tern__h1 *x, tern_ctx *ctx, const tern__http_request *req, const char *head,
                     const tern__http_header *hdrs, const tern__h1_body *body) {
    tern__ctx_init(ctx);
    ctx->exchange = x;
    ctx->head = head;
    ctx->headers = hdrs;
    ctx->num_headers = req->num_headers;
    ctx->method = req->method;
    ctx->minor = req->minor;
    ctx->req_flags = req->flags;
    ctx->method_str = (tern_str){head, req->method_len};
    ctx->target = (tern_str){head + req->target_off, req->target_len};
    ctx->query = (tern_str){head + req->query_off, req->query_len};
    /* the effective authority: an absolute-form target's wins over Host
     * (RFC 9112 §3.2.2) */
    if (req->authority_len)
        ctx->authority = (tern_str){head + req->authority_off, req->authority_len};
    else if (req->host_index != UINT32_MAX)
        ctx->authority = (tern_str){head + hdrs[req->host_index].value_off, hdrs[req->host_index].value_len};
    ctx->body = body->data ? body->data : "";
    ctx->body_len = body->len;
    ctx->close = !(req->flags & TERN_REQ_KEEP_ALIVE) || (*x->flags & TERN__H1_DRAIN);
    ctx->start_ns = tern__sched_self ? tern__sched_self->now_ns : tern_clock_ns();
    ctx->path = "/";
    ctx->path_len = 1;
}

/* Sends what the handler (or the routing) made of ctx. */
static h1_step finish(tern__h1 *x, tern_ctx *ctx, int status) {
    if (status) {
        ctx->close = 1;
        tern__ctx_error(ctx, status, status == 400 ? "invalid path" : "out of memory");
    } else if (ctx->oom) {
        tern__ctx_error(ctx, 503, "out of memory");
    }
    if (*x->flags & TERN__H1_DRAIN) ctx->close = 1;
    if (!ctx->close && !(*x->flags & TERN__H1_NODELAY)) {
        /* Nagle would hold a later small response while this one is
         * unacknowledged; a connection that closes after its first answer
         * never has that problem, so it is spared the syscall */
        tern__transport_nodelay(&x->t);
        *x->flags |= TERN__H1_NODELAY;
    }
    int r = 0;
    if (ctx->stream_state != TERN__STREAM_NONE) {
        /* the handler streamed its response: finish the framing */
        if (ctx->stream_state == TERN__STREAM_BROKEN) r = -EPIPE;
        else if (ctx->stream_state == TERN__STREAM_OPEN) tern_resp_stream_end(ctx);
    } else {
        r = tern__h1_send_response(x, ctx);
    }
    if (r < 0) return STEP_ABORT;
    return ctx->close ? STEP_CLOSE : STEP_NEXT;
}

/* A stream_body route: its handler runs with the head alone and reads the
 * body itself (h1_body_stream.c). 0 with *step set, or -1 when the route
 * does not stream (the body is then read whole, as usual). */
static int serve_streamed(tern__h1 *x, const tern__http_request *req, size_t head_len, char *head,
                          const tern__http_header *hdrs, h1_step *step) {
    tern_ctx ctx;
    tern__h1_body none = {.data = NULL, .len = 0, .consumed = head_len, .heap = NULL};
    fill_ctx(x, &ctx, req, head, hdrs, &none);
    if ((req->flags & TERN_REQ_FORM_ASTERISK) || set_path(&ctx, req, head) != 0 ||
        !x->hooks->streams_body || !x->hooks->streams_body(x->drv, &ctx)) {
        tern__ctx_release(&ctx);
        return -1;
    }
    x->in_start += head_len;
    x->batch_bytes += head_len;
    tern__body_stream bs;
    tern__body_stream_init(&bs, x, req);
    ctx.body_stream = &bs;
    if (x->requests && *x->requests != UINT32_MAX) (*x->requests)++;
    x->hooks->dispatch(x->drv, x, &ctx);
    /* what the handler left unread must go before the next request */
    if (tern__body_stream_finish(&bs) < 0) ctx.close = 1;
    *step = finish(x, &ctx, 0);
    /* uploads get their access-log line like every other request */
    if (x->hooks->completed) x->hooks->completed(x->drv, x, &ctx, *step == STEP_ABORT);
    tern__ctx_release(&ctx);
    return 0;
}

static h1_step serve_request(tern__h1 *x, tern__http_request *req, size_t head_len, char *head,
                             const tern__http_header *hdrs) {
    int status = 0;
    tern__h1_body body = {.data = NULL, .len = 0, .consumed = head_len, .heap = NULL};
    h1_step streamed;
    if ((req->flags & (TERN_REQ_CHUNKED | TERN_REQ_HAS_LENGTH)) && x->cfg->stream_bodies &&
        serve_streamed(x, req, head_len, head, hdrs, &streamed) == 0)
        return streamed;
    if (req->flags & (TERN_REQ_CHUNKED | TERN_REQ_HAS_LENGTH)) {
        switch (tern__h1_read_body(x, req, head_len, &body, &status)) {
        case TERN__H1_READ_OK: break;
        case TERN__H1_READ_REJECT: return answer_error(x, status, NULL, req->method);
        case TERN__H1_READ_BROKEN: return STEP_ABORT;
        }
    }
    if (!x->in_owned && body.len) {
        /* the body in the scratch buffer is not ours once the handler parks */
        size_t on_stack = x->cfg->body_on_stack_max ? x->cfg->body_on_stack_max : BODY_ON_STACK_MAX;
        char *copy = body.len <= on_stack ? alloca(body.len) : (body.heap = malloc(body.len));
        if (!copy) return answer_error(x, 503, "out of memory", req->method);
        memcpy(copy, body.data, body.len);
        body.data = copy;
    }
    x->in_start += body.consumed;
    x->batch_bytes += body.consumed;

    tern_ctx ctx;
    fill_ctx(x, &ctx, req, head, hdrs, &body);
    if (x->requests && *x->requests != UINT32_MAX) (*x->requests)++;
    if (req->flags & TERN_REQ_FORM_ASTERISK) {
        /* "OPTIONS *": the server's own capabilities (RFC 9110 §9.3.7) */
        tern_resp_set_status(&ctx, 204);
        tern__ctx_set_allow(&ctx, TERN_ANY & ~(TERN_CONNECT | TERN_TRACE));
        ctx.path = "*";
        ctx.path_len = 1;
    } else {
        status = set_path(&ctx, req, head);
        if (!status) x->hooks->dispatch(x->drv, x, &ctx);
    }
    h1_step step = finish(x, &ctx, status);
    if (ctx.upgraded && step != STEP_ABORT) {
        /* the connection stays open for the protocol the handler switched to */
        x->upgraded = ctx.upgrade;
        ctx.upgrade_release = NULL;
        step = STEP_UPGRADE;
    }
    if (x->hooks->completed) x->hooks->completed(x->drv, x, &ctx, step == STEP_ABORT);
    tern__ctx_release(&ctx);
    if (body.heap) free(body.heap);
    return step;
}

static h1_step serve_one(tern__h1 *x) {
    if (x->in_owned && x->in_start) {
        size_t avail = tern__h1_in_avail(x);
        memmove(x->in, x->in + x->in_start, avail);
        x->in_start = 0;
        x->in_len = avail;
    }
    tern__http_request req;
    size_t head_len = 0;
    int status = 0;
    switch (read_head(x, &req, &head_len, &status)) {
    case TERN__H1_READ_OK: break;
    case TERN__H1_READ_REJECT: return answer_error(x, status, NULL, 0);
    case TERN__H1_READ_BROKEN: return STEP_ABORT;
    }
    /* the head onto this coroutine's stack (or the heap when large): it
     * stays valid while the handler parks and the scratch serves others */
    size_t nh = req.num_headers ? req.num_headers : 1;
    size_t size = nh * sizeof(tern__http_header) + head_len + 1;
    char *heap = NULL;
    size_t on_stack = x->cfg->head_on_stack_max ? x->cfg->head_on_stack_max : HEAD_ON_STACK_MAX;
    char *mem = size <= on_stack ? alloca(size) : (heap = malloc(size));
    if (!mem) return answer_error(x, 503, "out of memory", 0);
    tern__http_header *hdrs = (tern__http_header *)(void *)mem;
    char *head = mem + nh * sizeof(tern__http_header);
    memcpy(head, x->in + x->in_start, head_len);
    head[head_len] = 0;
    memcpy(hdrs, x->scratch->hdrs, req.num_headers * sizeof *hdrs);
    for (uint32_t i = 0; i < req.num_headers; i++) head[hdrs[i].value_off + hdrs[i].value_len] = 0;

    h1_step step;
    if (req.method == 0)
        step = answer_error(x, 501, "unknown method", 0);
    else
        step = serve_request(x, &req, head_len, head, hdrs);
    if (heap) free(heap);
    return step;
}

/* ---- the connection -------------------------------------------------------- */

/* Closes after the last response. If the client may still be sending
 * (unread input), shut down our side first and read until it closes, so
 * that its unread bytes do not make the kernel answer with an RST that
 * could destroy the response before the client reads it. */
static tern__h1_outcome linger_close(tern__h1 *x, int graceful) {
    if (graceful && tern__h1_flush(x) == 0 && !(*x->flags & TERN__T_PEER_EOF) &&
        (tern__h1_in_avail(x) || (*x->flags & TERN__T_READABLE))) {
        if (!x->in_owned) x->in = NULL;
        x->in_start = x->in_len = 0;
        tern__transport_shutdown(&x->t);
        uint64_t deadline = tern_clock_ns() + LINGER_NS;
        size_t discarded = 0;
        while (discarded < LINGER_MAX_BYTES) {
            ssize_t n = tern__transport_read(&x->t, x->scratch->rbuf, x->scratch->rbuf_size);
            if (n > 0) {
                discarded += (size_t)n;
                continue;
            }
            if (n != -EAGAIN || tern__h1_wait(x, EPOLLIN, deadline) < 0) break;
        }
    }
    return TERN__H1_CLOSED;
}

/* Lets the loop poll and run the others once this connection has had its
 * share, when it still has work (pipelined input). */
static int take_turns(tern__h1 *x) {
    x->batch_requests++;
    if (x->batch_requests < BATCH_REQUESTS && x->batch_bytes < BATCH_BYTES) return 0;
    x->batch_requests = 0;
    x->batch_bytes = 0;
    if (!tern__h1_in_avail(x) && !(*x->flags & TERN__T_READABLE)) return 0;
    int r = tern__h1_flush(x);
    if (r < 0) return r;
    r = tern_yield();
    return x->lost ? -ENOMEM : r;
}

tern__h1_outcome tern__h1_serve(tern__h1 *x) {
    x->batch_requests = 0;
    x->batch_bytes = 0;
    for (;;) {
        if (x->lost) return linger_close(x, 0);
        if (tern__h1_in_avail(x) == 0) {
            if (x->in_owned) free(x->in);
            x->in = NULL;
            x->in_owned = 0;
            x->in_start = x->in_len = 0;
            ssize_t n = -EAGAIN;
            if ((*x->flags & TERN__T_READABLE) && !(*x->flags & TERN__T_PEER_EOF)) n = tern__h1_read_some(x);
            if (n > 0) continue;
            if (n != -EAGAIN) return linger_close(x, n == 0); /* end of stream or error */
            /* input used up: send the batch of responses; an edge that
             * arrives while a slow flush parks is served before leaving */
            if (tern__h1_flush(x) < 0) return linger_close(x, 0);
            if (*x->flags & (TERN__T_PEER_EOF | TERN__H1_DRAIN)) return linger_close(x, 1);
            if (!(*x->flags & TERN__T_READABLE)) return TERN__H1_IDLE;
            continue;
        }
        h1_step step = serve_one(x);
        if (step == STEP_UPGRADE) return TERN__H1_UPGRADED;
        /* the peer half-closed inside a request: it still reads, and the
         * answers to its complete requests before it are owed */
        if (step == STEP_ABORT && (*x->flags & TERN__T_PEER_EOF)) return linger_close(x, 1);
        if (step != STEP_NEXT) return linger_close(x, step == STEP_CLOSE);
        if (tern__h1_pending(x) >= WBUF_FLUSH_AT && tern__h1_flush(x) < 0) return linger_close(x, 0);
        if (take_turns(x) < 0) return linger_close(x, 0);
    }
}
