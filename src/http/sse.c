/* Server-Sent Events (WHATWG HTML §9.2, text/event-stream) on a streamed
 * response: each event is formatted whole and written as one chunk. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/ctx.h"
#include "tern/sse.h"

/* Events up to this size are built on the stack; larger ones on the heap. */
#define EVENT_ON_STACK 1024

int tern_sse_start(tern_ctx *ctx) {
    if (ctx->stream_state != TERN__STREAM_NONE) return -EALREADY;
    tern_resp_set_status(ctx, 200);
    tern_resp_set_header(ctx, "Content-Type", "text/event-stream");
    /* an event stream must reach the client as it is written: no cache,
     * and no buffering in nginx-like proxies */
    tern_resp_set_header(ctx, "Cache-Control", "no-cache");
    tern_resp_set_header(ctx, "X-Accel-Buffering", "no");
    int r = tern_resp_stream_start(ctx, -1);
    if (r == 0) ctx->sse_last_write_ns = tern_clock_ns();
    return r;
}

static int sse_write(tern_ctx *ctx, const char *p, size_t n) {
    if (ctx->stream_state == TERN__STREAM_NONE) {
        int r = tern_sse_start(ctx);
        if (r < 0) return r;
    }
    int r = tern_resp_stream_write(ctx, p, n);
    if (r == 0) ctx->sse_last_write_ns = tern_clock_ns();
    return r;
}

static int has_newline(const char *s) {
    return s && strpbrk(s, "\r\n") != NULL;
}

/* Appends "name: value\n" lines, one per line of value (LF, CRLF, CR). */
static size_t put_lines(char *out, const char *name, const char *v) {
    size_t n = 0, nl = strlen(name);
    for (;;) {
        size_t len = strcspn(v, "\r\n");
        if (out) {
            memcpy(out + n, name, nl);
            memcpy(out + n + nl, v, len);
            out[n + nl + len] = '\n';
        }
        n += nl + len + 1;
        v += len;
        if (!*v) return n;
        v += (v[0] == '\r' && v[1] == '\n') ? 2 : 1;
    }
}

int tern_sse_event(tern_ctx *ctx, const char *event, const char *id, const char *data) {
    if (has_newline(event) || has_newline(id)) return -EINVAL;
    if (!data) data = "";
    size_t n = (event ? put_lines(NULL, "event: ", event) : 0) +
               (id ? put_lines(NULL, "id: ", id) : 0) + put_lines(NULL, "data: ", data) + 1;
    char stack[EVENT_ON_STACK];
    char *buf = n <= sizeof stack ? stack : malloc(n);
    if (!buf) return -ENOMEM;
    size_t k = 0;
    if (event) k += put_lines(buf + k, "event: ", event);
    if (id) k += put_lines(buf + k, "id: ", id);
    k += put_lines(buf + k, "data: ", data);
    buf[k++] = '\n';
    int r = sse_write(ctx, buf, k);
    if (buf != stack) free(buf);
    return r;
}

int tern_sse_retry(tern_ctx *ctx, unsigned ms) {
    char line[32];
    int n = snprintf(line, sizeof line, "retry: %u\n\n", ms);
    return sse_write(ctx, line, (size_t)n);
}

int tern_sse_comment(tern_ctx *ctx, const char *text) {
    if (has_newline(text)) return -EINVAL;
    size_t len = strlen(text);
    char stack[EVENT_ON_STACK];
    char *buf = len + 4 <= sizeof stack ? stack : malloc(len + 4);
    if (!buf) return -ENOMEM;
    buf[0] = ':';
    buf[1] = ' ';
    memcpy(buf + 2, text, len);
    buf[len + 2] = '\n';
    buf[len + 3] = '\n';
    int r = sse_write(ctx, buf, len + 4);
    if (buf != stack) free(buf);
    return r;
}

void tern_sse_heartbeat(tern_ctx *ctx, unsigned ms) {
    ctx->sse_heartbeat_ms = ms;
}

int tern_sse_wait(tern_ctx *ctx, uint64_t ms) {
    uint64_t end = tern_clock_ns() + ms * 1000000ull;
    for (;;) {
        uint64_t now = tern_clock_ns();
        if (now >= end) return 0;
        uint64_t until = end;
        if (ctx->sse_heartbeat_ms) {
            uint64_t beat = ctx->sse_last_write_ns + (uint64_t)ctx->sse_heartbeat_ms * 1000000ull;
            if (beat <= now) {
                int r = tern_sse_comment(ctx, "ping");
                if (r < 0) return r;
                continue;
            }
            if (beat < until) until = beat;
        }
        /* the client going away cancels the handler: the sleep says so */
        int r = tern_sleep_us((until - now + 999) / 1000);
        if (r < 0) return r;
        if (tern_cancelled()) return -ECANCELED;
    }
}

const char *tern_sse_last_event_id(const tern_ctx *ctx) {
    return tern_req_header(ctx, "Last-Event-ID");
}
