/* Streamed responses (tern_resp_stream_*): the head goes out first, then
 * the body piece by piece, each write parking while the client reads
 * slowly. Only the handler's own coroutine may stream: the worker's batch
 * and the connection's output belong to it. */
#include <errno.h>
#include <string.h>

#include "http/compress.h"
#include "http/ctx.h"
#include "http/h1.h"
#include "rt/sched.h"

static int on_own_coroutine(const tern_ctx *ctx) {
    return ctx->exchange && tern__sched_self && tern__sched_self->current == ctx->exchange->coro;
}

static int broken(tern_ctx *ctx, int r) {
    ctx->stream_state = TERN__STREAM_BROKEN;
    ctx->close = 1;
    return r;
}

int tern_resp_stream_start(tern_ctx *ctx, int64_t content_length) {
    if (ctx->stream_state != TERN__STREAM_NONE) return -EALREADY;
    if (!on_own_coroutine(ctx)) return -EPERM;
    tern__h1 *x = ctx->exchange;
    tern__h1_framing framing = TERN__FRAME_LENGTH;
    if (content_length < 0) {
        /* chunked needs HTTP/1.1; a 1.0 client reads until we close */
        if (ctx->minor == 0) {
            ctx->close = 1;
            framing = TERN__FRAME_UNTIL_CLOSE;
        } else {
            framing = TERN__FRAME_CHUNKED;
        }
    }
    int64_t announced = content_length;
    if (x->cfg->compress && ctx->minor == 1 &&
        tern__compress_stream_begin(x->cfg->compress, ctx, content_length)) {
        /* the compressed length is not known up front */
        framing = TERN__FRAME_CHUNKED;
        content_length = -1;
    }
    ctx->stream_state = TERN__STREAM_OPEN;
    ctx->stream_chunked = framing == TERN__FRAME_CHUNKED;
    ctx->stream_left = framing == TERN__FRAME_LENGTH ? (uint64_t)content_length : UINT64_MAX;
    /* compressed: the announced length still bounds what the handler writes */
    if (ctx->stream_encoded && announced >= 0) ctx->stream_left = (uint64_t)announced;
    /* HEAD, 1xx, 204 and 304 carry no body: nothing is owed, whatever was announced */
    if (ctx->method == TERN_HEAD || !tern__status_has_body(ctx->status)) ctx->stream_left = 0;
    ctx->resp_body_len = 0;
    int r = tern__h1_send_head(x, ctx, framing, framing == TERN__FRAME_LENGTH ? (uint64_t)content_length : 0);
    if (r == 0) r = tern__h1_flush(x);
    return r < 0 ? broken(ctx, r) : 0;
}

static int put_chunk_size(tern__h1 *x, size_t len) {
    char *p = tern__h1_reserve(x, 20);
    if (!p) return -ENOMEM;
    static const char hex[] = "0123456789abcdef";
    char tmp[16];
    int n = 0;
    for (size_t v = len; v; v >>= 4) tmp[n++] = hex[v & 15];
    for (int i = 0; i < n; i++) p[i] = tmp[n - 1 - i];
    p[n] = '\r';
    p[n + 1] = '\n';
    tern__h1_commit(x, (size_t)n + 2);
    return 0;
}

/* Puts len body bytes on the wire in the stream's framing. */
static int stream_put(tern_ctx *ctx, const void *data, size_t len) {
    tern__h1 *x = ctx->exchange;
    if (!ctx->stream_chunked) {
        if (len > ctx->stream_left) return -EMSGSIZE;
        ctx->stream_left -= len;
    } else {
        int r = put_chunk_size(x, len);
        if (r < 0) return broken(ctx, r);
    }
    int r = tern__h1_write(x, data, len);
    if (r == 0) ctx->stream_sent += len;
    if (r == 0 && ctx->stream_chunked) {
        char *p = tern__h1_reserve(x, 2);
        if (!p) return broken(ctx, -ENOMEM);
        memcpy(p, "\r\n", 2);
        tern__h1_commit(x, 2);
    }
    return r < 0 ? broken(ctx, r) : 0;
}

int tern_resp_stream_write(tern_ctx *ctx, const void *data, size_t len) {
    if (ctx->stream_state == TERN__STREAM_NONE) {
        int r = tern_resp_stream_start(ctx, -1);
        if (r < 0) return r;
    }
    if (ctx->stream_state != TERN__STREAM_OPEN) return -EPIPE;
    if (!on_own_coroutine(ctx)) return -EPERM;
    if (len == 0) return 0;
    if (ctx->method == TERN_HEAD || !tern__status_has_body(ctx->status)) return 0;
    if (ctx->stream_encoded) {
        if (ctx->stream_left != UINT64_MAX) {
            if (len > ctx->stream_left) return -EMSGSIZE;
            ctx->stream_left -= len;
        }
        int r = tern__encoder_write(ctx->stream_enc, ctx, data, len, 0, stream_put);
        return r < 0 ? broken(ctx, r) : 0;
    }
    return stream_put(ctx, data, len);
}

int tern_resp_stream_end(tern_ctx *ctx) {
    if (ctx->stream_state != TERN__STREAM_OPEN) return ctx->stream_state == TERN__STREAM_ENDED ? 0 : -EPIPE;
    if (ctx->stream_encoded) {
        /* the coding's trailer: the last bytes of the body */
        int r = tern__encoder_write(ctx->stream_enc, ctx, NULL, 0, 1, stream_put);
        if (r < 0) return broken(ctx, r);
    }
    ctx->stream_state = TERN__STREAM_ENDED;
    if (ctx->stream_chunked && ctx->method != TERN_HEAD && tern__status_has_body(ctx->status)) {
        char *p = tern__h1_reserve(ctx->exchange, 5);
        if (!p) return -ENOMEM;
        memcpy(p, "0\r\n\r\n", 5);
        tern__h1_commit(ctx->exchange, 5);
    } else if (!ctx->stream_chunked && ctx->stream_left && ctx->stream_left != UINT64_MAX) {
        /* fewer bytes than announced: the client can only learn it from a close */
        ctx->close = 1;
        return -EPIPE;
    }
    return 0;
}
