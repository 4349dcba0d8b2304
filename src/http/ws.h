/* WebSocket connections (RFC 6455) on an HTTP/1.1 exchange: the upgrade
 * handshake, then frames read from and written to the exchange's transport
 * by the handler's coroutine (the owner), with an outbound queue that other
 * coroutines and threads feed. Public API: <tern/ws.h>. Framing and UTF-8
 * validation: ws_frame.h. */
#ifndef TERN_HTTP_WS_H
#define TERN_HTTP_WS_H

#include <stddef.h>
#include <stdint.h>

#include "tern.h"

/* The Sec-WebSocket-Accept value for a client key (§4.2.2 step 5.4):
 * base64(SHA-1(key + GUID)), NUL-terminated into out (>= 29 bytes). */
void tern__ws_accept_key(const char *key, size_t key_len, char out[29]);

/* 1 when the key is base64 of exactly 16 bytes (§4.2.1 item 5). */
int tern__ws_key_valid(const char *key, size_t len);

/* 1 when a comma-separated header value lists `token` (case-insensitive). */
int tern__ws_list_has(const char *list, size_t len, const char *token);

/* ---- callback mode (tern_ws_on_message): the driver's side -------------------
 * After a handler hands its WebSocket over, the exchange ends with
 * TERN__H1_UPGRADED and x->upgraded; the driver keeps the tern_ws beside
 * the idle connection and calls tern__ws_resume on a coroutine whenever
 * the socket is readable or `kick` asks for it (a message was queued while
 * idle). */
struct tern__h1;

typedef enum tern__ws_resume_result {
    TERN__WS_IDLE, /* input used up: back to the idle table */
    TERN__WS_DONE, /* closed (on_close has run): tern__ws_detached_close */
} tern__ws_resume_result;

/* Once, when the driver takes the connection: kick(drv, fd, ws) runs on
 * the owner's worker (from its loop) after a send to an idle connection. */
void tern__ws_set_driver(tern_ws *ws, void (*kick)(void *drv, int fd, tern_ws *ws), void *drv,
                         int fd);
/* Reads and handles what the socket has, running the callbacks. */
tern__ws_resume_result tern__ws_resume(tern_ws *ws, struct tern__h1 *x);
/* The driver lets go (closed or done): runs on_close if it has not run
 * (which must not park then: there may be no coroutine), frees the tern_ws
 * once no kick is in flight. */
void tern__ws_detached_close(tern_ws *ws);

#endif
