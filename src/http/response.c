/* Response serialisation: status line, the server's headers, the handler's
 * headers and framing, written straight into the worker's batch. Small
 * bodies are copied behind the head (pipelined responses leave in one
 * write); large ones are written from where they are. */
#include <errno.h>
#include <string.h>

#include "http/compress.h"
#include "http/ctx.h"
#include "http/h1.h"

/* Responses with a body up to this size are copied into the batch;
 * larger bodies are sent from where they are. */
#define INLINE_BODY_MAX 16384

#define PUT(p, s) (memcpy((p), (s), sizeof(s) - 1), (p) += sizeof(s) - 1)

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

int tern__status_has_body(int status) { return !(status < 200 || status == 204 || status == 304); }

/* "HTTP/1.1 200 OK\r\nServer: ...\r\nDate: ...\r\n" for the current second. */
static const char *ok_prefix(tern__h1 *x, const char *date, size_t *len) {
    tern__h1_scratch *s = x->scratch;
    if (s->ok_prefix_second != s->date.second) {
        char *q = s->ok_prefix;
        PUT(q, "HTTP/1.1 200 OK\r\nServer: ");
        memcpy(q, x->cfg->server_name, x->cfg->server_name_len);
        q += x->cfg->server_name_len;
        PUT(q, "\r\nDate: ");
        memcpy(q, date, TERN_DATE_LEN);
        q += TERN_DATE_LEN;
        PUT(q, "\r\n");
        s->ok_prefix_len = (size_t)(q - s->ok_prefix);
        s->ok_prefix_second = s->date.second;
    }
    *len = s->ok_prefix_len;
    return s->ok_prefix;
}

static char *put_status_line(tern__h1 *x, char *p, const tern_ctx *ctx, const char *date) {
    const tern__h1_config *cfg = x->cfg;
    if (ctx->status == 200 && !ctx->server_set && !ctx->date_set && cfg->server_name_len < 64) {
        size_t n;
        const char *pre = ok_prefix(x, date, &n);
        memcpy(p, pre, n);
        return p + n;
    }
    size_t reason_len;
    const char *reason = tern__status_reason(ctx->status, &reason_len);
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
        memcpy(p, cfg->server_name, cfg->server_name_len);
        p += cfg->server_name_len;
        PUT(p, "\r\n");
    }
    if (!ctx->date_set) {
        PUT(p, "Date: ");
        memcpy(p, date, TERN_DATE_LEN);
        p += TERN_DATE_LEN;
        PUT(p, "\r\n");
    }
    return p;
}

static size_t head_size(const tern__h1 *x, const tern_ctx *ctx) {
    size_t reason_len;
    tern__status_reason(ctx->status, &reason_len);
    size_t need = 9 + 3 + 1 + reason_len + 2 + 6 + TERN_DATE_LEN + 2 + 28 + 20 + 2 + 24 + 2;
    if (!ctx->server_set) need += 8 + x->cfg->server_name_len + 2;
    for (uint32_t i = 0; i < ctx->num_resp; i++) need += ctx->resp[i].name_len + 2 + ctx->resp[i].value_len + 2;
    return need;
}

int tern__h1_send_head(tern__h1 *x, tern_ctx *ctx, tern__h1_framing framing, uint64_t length) {
    /* a final response is 2xx..5xx: an interim status as the only answer
     * would make the client take the next response for this one */
    if (ctx->status < 200 || ctx->status > 599) tern__ctx_error(ctx, 500, "invalid response status");
    const char *date = tern__date_now(&x->scratch->date);
    int has_body = tern__status_has_body(ctx->status);
    int send_body = has_body && ctx->method != TERN_HEAD && framing == TERN__FRAME_WHOLE;
    uint64_t body_len = !has_body || framing == TERN__FRAME_UNTIL_CLOSE ? 0
                        : framing == TERN__FRAME_WHOLE                  ? ctx->resp_body_len
                                                                        : length;
    if (ctx->resp_file && has_body && framing == TERN__FRAME_WHOLE) body_len = ctx->resp_file_len;
    size_t need = head_size(x, ctx);
    int inline_body = send_body && !ctx->resp_file && body_len <= INLINE_BODY_MAX;
    if (inline_body) need += (size_t)body_len;

    tern__wbuf *wb = &x->scratch->wbuf;
    if (wb->len > wb->off && wb->cap - wb->len < need) {
        /* the batch is full: send it rather than grow the worker's buffer
         * (it stays at its initial 64 KiB under any mix of responses) */
        int fr = tern__h1_flush(x);
        if (fr < 0) return fr;
    }
    char *start = tern__h1_reserve(x, need);
    if (!start) return -ENOMEM;
    char *p = put_status_line(x, start, ctx, date);
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
    if (has_body && framing == TERN__FRAME_CHUNKED) {
        PUT(p, "Transfer-Encoding: chunked\r\n");
    } else if (has_body && framing != TERN__FRAME_UNTIL_CLOSE) {
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
        memcpy(p, ctx->resp_body, (size_t)body_len);
        p += body_len;
    }
    tern__h1_commit(x, (size_t)(p - start));
    uint64_t took = tern_clock_ns() - ctx->start_ns;
    if (x->client_gone && x->hooks->abandoned)
        x->hooks->abandoned(x->drv, took);
    else if (x->hooks->responded)
        x->hooks->responded(x->drv, ctx->status, took);
    if (send_body && ctx->resp_file) return tern__h1_sendfile(x, ctx->resp_file_fd, ctx->resp_file_off, body_len);
    if (send_body && !inline_body) return tern__h1_write(x, ctx->resp_body, (size_t)body_len);
    return 0;
}

static __attribute__((noinline)) int send_compressed(tern__h1 *x, tern_ctx *ctx) {
    tern__compress_body(x->cfg->compress, ctx);
    return tern__h1_send_head(x, ctx, TERN__FRAME_WHOLE, 0);
}

int tern__h1_send_response(tern__h1 *x, tern_ctx *ctx) {
    /* one branch when compression is off, two for a small body, and the
     * compressing call out of line: the plaintext path stays a tail call */
    const tern__compress_config *cc = x->cfg->compress;
    if (__builtin_expect(cc && ctx->resp_body_len >= cc->min_size, 0)) return send_compressed(x, ctx);
    return tern__h1_send_head(x, ctx, TERN__FRAME_WHOLE, 0);
}

static const char *error_detail(int status) {
    switch (status) {
    case 400: return "malformed request";
    case 408: return "request not received in time";
    case 413: return "request body too large";
    case 414: return "request target too long";
    case 417: return "expectation not supported";
    case 431: return "request header fields too large";
    case 501: return "not implemented";
    case 505: return "HTTP version not supported";
    default: return NULL;
    }
}

/* After a bad request the stream can no longer be trusted: the error page
 * asks for the connection to be closed. */
int tern__h1_send_error(tern__h1 *x, int status, const char *detail, unsigned method) {
    tern_ctx ctx;
    tern__ctx_init(&ctx);
    ctx.exchange = x;
    ctx.minor = 1;
    ctx.method = method;
    ctx.close = 1;
    ctx.start_ns = tern_clock_ns();
    tern__ctx_error(&ctx, status, detail ? detail : error_detail(status));
    int r = tern__h1_send_response(x, &ctx);
    if (x->hooks->completed) x->hooks->completed(x->drv, x, &ctx, r < 0); /* the log's line: "- -" */
    tern__ctx_release(&ctx);
    if (x->hooks->rejected) x->hooks->rejected(x->drv, status);
    return r;
}
