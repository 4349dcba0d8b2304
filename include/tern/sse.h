/* Server-Sent Events (text/event-stream, WHATWG HTML §9.2) on top of a
 * streamed response:
 *
 *     void clock(tern_ctx *ctx) {
 *         tern_sse_start(ctx);
 *         tern_sse_heartbeat(ctx, 15000);
 *         while (tern_sse_event(ctx, "tick", NULL, "now") == 0 &&
 *                tern_sse_wait(ctx, 1000) == 0) {
 *         }
 *     }
 *
 * The stream ends when the client goes away: the handler's parks (and so
 * tern_sse_wait) return -ECANCELED, and writes fail with -EPIPE. */
#ifndef TERN_SSE_H
#define TERN_SSE_H

#include <tern/api.h>

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tern_ctx tern_ctx;

/* 200, Content-Type: text/event-stream, Cache-Control: no-cache, then the
 * streamed (chunked) body begins. 0 or a negative errno. */
TERN_API int tern_sse_start(tern_ctx *ctx);

/* One event: "event:" (when event is not NULL), "id:" (when id is not
 * NULL), one "data:" line per line of data (LF, CRLF or CR separated),
 * then the blank line that dispatches it. event and id must not hold CR,
 * LF (or NUL in id): -EINVAL. Starts the stream if needed. */
TERN_API int tern_sse_event(tern_ctx *ctx, const char *event, const char *id, const char *data);
/* "retry: ms": how long the browser waits before reconnecting. */
TERN_API int tern_sse_retry(tern_ctx *ctx, unsigned ms);
/* A comment line (": text"), which clients ignore: keeps proxies from
 * closing an idle stream. text must not hold CR or LF. */
TERN_API int tern_sse_comment(tern_ctx *ctx, const char *text);

/* Every `ms` without other output, tern_sse_wait sends ": ping". 0 = off. */
TERN_API void tern_sse_heartbeat(tern_ctx *ctx, unsigned ms);
/* Parks for ms, sending heartbeats when due: 0, -ECANCELED (the client
 * went away or the request was cancelled) or -EPIPE (a write failed). */
TERN_API int tern_sse_wait(tern_ctx *ctx, uint64_t ms);

/* The Last-Event-ID the client sent on reconnecting, or NULL. */
TERN_API const char *tern_sse_last_event_id(const tern_ctx *ctx);

#ifdef __cplusplus
}
#endif
#endif
