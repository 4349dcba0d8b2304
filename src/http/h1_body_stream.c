/* Request bodies a handler reads itself (tern_route_opts.stream_body):
 * Content-Length and chunked bodies handed over as they arrive, so an
 * upload of any size goes through a buffer of the handler's choosing. */
#include <errno.h>
#include <string.h>
#include <sys/epoll.h>

#include "http/ctx.h"
#include "http/h1.h"

/* What the exchange reads after the handler to keep the connection: a
 * small unread rest is drained, a large one costs less as a close. */
#define DRAIN_MAX (64u * 1024u)
/* Input buffer for chunked bodies (decoded from it into the caller's). */
#define CHUNKED_BUF (64u * 1024u)

static const char CONTINUE[] = "HTTP/1.1 100 Continue\r\n\r\n";

void tern__body_stream_init(tern__body_stream *bs, tern__h1 *x, const tern__http_request *req) {
    memset(bs, 0, sizeof *bs);
    bs->x = x;
    bs->expect = (req->flags & TERN_REQ_EXPECT_CONTINUE) && req->minor == 1;
    if (req->flags & TERN_REQ_CHUNKED) {
        bs->state = TERN__BODY_STREAM_CHUNKED;
        tern__chunked_init(&bs->dec, UINT64_MAX);
    } else {
        bs->left = req->content_length;
        bs->state = bs->left ? TERN__BODY_STREAM_LENGTH : TERN__BODY_STREAM_DONE;
    }
}

static int send_continue(tern__body_stream *bs) {
    if (!bs->expect) return 0;
    bs->expect = 0;
    char *p = tern__h1_reserve(bs->x, sizeof CONTINUE - 1);
    if (!p) return -ENOMEM;
    memcpy(p, CONTINUE, sizeof CONTINUE - 1);
    tern__h1_commit(bs->x, sizeof CONTINUE - 1);
    return tern__h1_flush(bs->x);
}

static ssize_t broken(tern__body_stream *bs, int err) {
    bs->state = TERN__BODY_STREAM_BROKEN;
    return err;
}

/* min_body_rate as for whole bodies (h1_body.c): past a grace period of
 * body_timeout_ms the average rate must stay above it, so an upload that
 * trickles a byte per body_timeout cannot hold the connection for ever. */
static ssize_t account(tern__body_stream *bs, ssize_t n) {
    const tern__h1_config *cfg = bs->x->cfg;
    if (n <= 0 || !cfg->min_body_rate || !cfg->body_timeout_ms) return n;
    uint64_t now = tern_clock_ns();
    if (!bs->t0) bs->t0 = now;
    bs->got += (uint64_t)n;
    uint64_t elapsed = now - bs->t0;
    if (elapsed >= (uint64_t)cfg->body_timeout_ms * 1000000ull &&
        bs->got * 1000000000ull / elapsed < cfg->min_body_rate)
        return broken(bs, -ETIMEDOUT);
    return n;
}

/* Content-Length: bytes already buffered first, then straight from the
 * transport into the caller's buffer (no copy through ours). */
static ssize_t read_length(tern__body_stream *bs, char *buf, size_t len) {
    tern__h1 *x = bs->x;
    if (len > bs->left) len = (size_t)bs->left;
    size_t avail = tern__h1_in_avail(x);
    if (avail) {
        size_t n = avail < len ? avail : len;
        memcpy(buf, x->in + x->in_start, n);
        x->in_start += n;
        bs->left -= n;
        if (!bs->left) bs->state = TERN__BODY_STREAM_DONE;
        return (ssize_t)n;
    }
    if (send_continue(bs) < 0) return broken(bs, -EPIPE);
    uint64_t deadline = tern__h1_deadline_after(x->cfg->body_timeout_ms);
    for (;;) {
        ssize_t n = tern__transport_read(&x->t, buf, len);
        if (n > 0) {
            bs->left -= (size_t)n;
            if (!bs->left) bs->state = TERN__BODY_STREAM_DONE;
            return n;
        }
        if (n == 0) return broken(bs, -EPIPE);
        if (n != -EAGAIN) return broken(bs, (int)n);
        int r = tern__h1_wait(x, EPOLLIN, deadline);
        if (r == -ECANCELED) return r; /* the handler's cancellation: the body stays readable */
        if (r < 0) return broken(bs, r);
    }
}

/* Chunked: decoded from the exchange's input into the caller's buffer. */
static ssize_t read_chunked(tern__body_stream *bs, char *buf, size_t len) {
    tern__h1 *x = bs->x;
    for (;;) {
        size_t avail = tern__h1_in_avail(x);
        if (avail) {
            /* feed no more than len: the output never outgrows the input */
            size_t used = 0, produced = 0;
            int r = tern__chunked_decode(&bs->dec, x->in + x->in_start, avail < len ? avail : len,
                                         &used, buf, &produced);
            x->in_start += used;
            if (r < 0) return broken(bs, -EBADMSG);
            if (r == 1) bs->state = TERN__BODY_STREAM_DONE;
            if (produced || r == 1) return (ssize_t)produced;
            if (used) continue; /* framing only */
        }
        if (send_continue(bs) < 0) return broken(bs, -EPIPE);
        if (x->in_owned) {
            /* reuse the buffer from its start, keeping a partial size line */
            memmove(x->in, x->in + x->in_start, avail);
            x->in_start = 0;
            x->in_len = avail;
        } else if (tern__h1_in_make_owned(x, CHUNKED_BUF) < 0) {
            return broken(bs, -ENOMEM);
        }
        int r =
            tern__h1_read_more(x, CHUNKED_BUF, tern__h1_deadline_after(x->cfg->body_timeout_ms));
        if (r == -ECANCELED) return r;
        if (r < 0) return broken(bs, r == -EPIPE ? -EPIPE : r);
    }
}

ssize_t tern_req_body_read(tern_ctx *ctx, void *buf, size_t len) {
    tern__body_stream *bs = ctx->body_stream;
    if (!bs) {
        /* the body read whole before the handler: the same interface */
        size_t left = ctx->body_len - ctx->body_read;
        size_t n = left < len ? left : len;
        memcpy(buf, ctx->body + ctx->body_read, n);
        ctx->body_read += n;
        return (ssize_t)n;
    }
    if (!len) return 0;
    switch (bs->state) {
    case TERN__BODY_STREAM_LENGTH:
        return account(bs, read_length(bs, buf, len));
    case TERN__BODY_STREAM_CHUNKED:
        return account(bs, read_chunked(bs, buf, len));
    case TERN__BODY_STREAM_DONE:
        return 0;
    case TERN__BODY_STREAM_BROKEN:
        break;
    }
    return -EPIPE;
}

int tern__body_stream_finish(tern__body_stream *bs) {
    if (bs->state == TERN__BODY_STREAM_DONE) return 0;
    if (bs->state == TERN__BODY_STREAM_BROKEN || bs->expect) return -1; /* never asked for: close */
    if (bs->state == TERN__BODY_STREAM_LENGTH && bs->left > DRAIN_MAX) return -1;
    char sink[4096];
    size_t drained = 0;
    while (bs->state != TERN__BODY_STREAM_DONE) {
        ssize_t n = bs->state == TERN__BODY_STREAM_LENGTH ? read_length(bs, sink, sizeof sink)
                                                          : read_chunked(bs, sink, sizeof sink);
        if (n < 0) return -1;
        drained += (size_t)n;
        if (drained > DRAIN_MAX) return -1;
    }
    return 0;
}
