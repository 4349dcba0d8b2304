/* WebSocket (RFC 6455) from a handler: tern_ws_accept upgrades the
 * request's connection, then the handler talks in sequential code, each
 * recv parking its coroutine until a message arrives:
 *
 *     void echo(tern_ctx *ctx) {
 *         tern_ws *ws = tern_ws_accept(ctx, NULL);
 *         if (!ws) return;                 // not a valid upgrade: 400/426 set
 *         tern_ws_msg m;
 *         while (tern_ws_recv(ws, &m) == 0)
 *             tern_ws_send(ws, m.type, m.data, m.len);
 *     }
 *
 * The library answers pings, checks masking, UTF-8 of text (1007), sizes
 * (1009) and the protocol (1002), and runs the close handshake. The
 * connection ends when the handler returns. The tern_ws lives until then.
 *
 * Sending from another coroutine or another worker is safe: the message is
 * queued and the owner (the handler's coroutine) writes it as soon as it
 * parks in tern_ws_recv or next sends. A parked recv costs the handler's
 * coroutine stack (its touched pages) for as long as the socket is idle. */
#ifndef TERN_WS_H
#define TERN_WS_H

#include <tern/api.h>

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tern_ctx tern_ctx;
typedef struct tern_ws tern_ws;

typedef enum tern_ws_type {
    TERN_WS_TEXT = 1, /* valid UTF-8 */
    TERN_WS_BINARY = 2,
} tern_ws_type;

typedef struct tern_ws_opts {
    /* subprotocols the server speaks, in preference order, NULL-terminated;
     * the first the client offers is chosen (tern_ws_protocol). NULL: none */
    const char *const *protocols;
    size_t max_message;        /* reassembled message limit, default 1 MiB (1009) */
    unsigned ping_interval_ms; /* idle this long: send a ping; 0 = never (default) */
    unsigned pong_timeout_ms;  /* no pong this long after a ping: drop the
                                  connection; default ping_interval_ms */
    size_t max_queued;         /* bytes queued by other coroutines before
                                  their sends fail with -ENOBUFS, default 4 MiB */
    /* permessage-deflate (RFC 7692, zlib) when the client offers it: */
    int permessage_deflate;          /* 1: accept it */
    int deflate_no_context_takeover; /* 1: compress every message on its own
                                        (the compressor's ~256 KiB is freed
                                        between messages; worse ratio) */
    size_t deflate_min;              /* smaller messages go uncompressed, default 64 */
} tern_ws_opts;

typedef struct tern_ws_msg {
    tern_ws_type type;
    const void *data; /* valid until the next tern_ws_recv */
    size_t len;
} tern_ws_msg;

/* Answers the upgrade (101, Sec-WebSocket-Accept) after checking Upgrade,
 * Connection, Sec-WebSocket-Key and Sec-WebSocket-Version: 13. NULL when
 * the request is no valid upgrade (the response is then set: 400, or 426
 * with Sec-WebSocket-Version: 13), or on out of memory (503). opts may be
 * NULL. Only the handler's own coroutine may accept. */
TERN_API tern_ws *tern_ws_accept(tern_ctx *ctx, const tern_ws_opts *opts);

/* The negotiated subprotocol, or NULL. */
TERN_API const char *tern_ws_protocol(const tern_ws *ws);

/* Parks until the next whole message (fragments reassembled): 0 and *msg,
 * or a negative errno once the connection is over: -EPIPE (closed:
 * tern_ws_close_code tells why), -EPROTO (the peer broke the protocol; we
 * sent the close), -ETIMEDOUT (no pong), -ECANCELED. Owner only (-EPERM). */
TERN_API int tern_ws_recv(tern_ws *ws, tern_ws_msg *msg);

/* Sends one message. From the owner it is written at once (parking while
 * the client reads slowly); from any other coroutine or thread it is
 * queued for the owner: 0, -EPIPE (closed), -ENOBUFS (queue full),
 * -ENOMEM, -EINVAL (text that is not UTF-8). */
TERN_API int tern_ws_send(tern_ws *ws, tern_ws_type type, const void *data, size_t len);
TERN_API int tern_ws_send_text(tern_ws *ws, const char *text);
TERN_API int tern_ws_send_binary(tern_ws *ws, const void *data, size_t len);
/* A ping with up to 125 bytes of payload. */
TERN_API int tern_ws_ping(tern_ws *ws, const void *data, size_t len);

/* Starts the close handshake with code (1000, 1001, 3000-4999...) and a
 * reason (<= 123 bytes of UTF-8, or NULL). From the owner it waits (up to
 * 2 s) for the client's close, discarding data; from elsewhere it is
 * queued and the owner's recv returns -EPIPE once the handshake is done. */
TERN_API int tern_ws_close(tern_ws *ws, unsigned code, const char *reason);

/* Callback mode: an idle WebSocket holding no coroutine stack. Called by
 * the handler right after tern_ws_accept; the handler then returns, and
 * the connection stays open in the worker's idle table like a keep-alive
 * HTTP connection (a slot and the tern_ws: some hundred bytes). When a
 * frame arrives (or another coroutine sends), a pooled coroutine runs
 * on_message for each complete message: it may send, close and park like
 * a handler; msg is valid until it returns. on_close(ws, user) runs once
 * when the connection ends (from the worker's loop when it is closed while
 * idle, e.g. at shutdown: it must not park); the tern_ws is freed after it
 * returns, so whoever else sends to ws must stop before (a room leaves
 * there). The idle ping is not done in this mode. 0, -EPERM (not the
 * handler's coroutine), -EALREADY, -EINVAL (no on_message). */
typedef void (*tern_ws_message_fn)(tern_ws *ws, const tern_ws_msg *msg, void *user);
typedef void (*tern_ws_close_fn)(tern_ws *ws, void *user);
TERN_API int tern_ws_on_message(tern_ws *ws, tern_ws_message_fn on_message,
                                tern_ws_close_fn on_close, void *user);

/* The peer's close code: 1005 when it sent none, 1006 when the connection
 * broke without a close frame, 0 while open. */
TERN_API unsigned tern_ws_close_code(const tern_ws *ws);

#ifdef __cplusplus
}
#endif
#endif
