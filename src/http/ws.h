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

#endif
