/* permessage-deflate (RFC 7692) for WebSocket messages, through zlib:
 * negotiation of the extension's parameters from the client's offers, and
 * whole-message compression and decompression with or without context
 * takeover. zlib streams are made on first use, so a connection that never
 * sends (or receives) a compressed message pays nothing for them. */
#ifndef TERN_HTTP_WS_DEFLATE_H
#define TERN_HTTP_WS_DEFLATE_H

#include <stddef.h>
#include <stdint.h>

/* What was agreed (§7.1). */
typedef struct tern__ws_deflate_params {
    int server_no_context_takeover; /* we reset our compressor after each message */
    int client_no_context_takeover; /* the client resets its own */
    int server_max_window_bits;     /* 9..15 (zlib cannot do 8 raw: §7.1.2.1 note) */
} tern__ws_deflate_params;

/* Picks the first acceptable permessage-deflate offer in a
 * Sec-WebSocket-Extensions value (several headers: call per header until
 * 1). `want_no_takeover`: ask for server_no_context_takeover even if the
 * client did not. 1 with *p and the response value written to resp (NUL-
 * terminated, resp_size >= 128), 0 when no offer is acceptable. */
int tern__ws_deflate_negotiate(const char *offers, size_t len, int want_no_takeover,
                               tern__ws_deflate_params *p, char *resp, size_t resp_size);

typedef struct tern__ws_deflate tern__ws_deflate;

tern__ws_deflate *tern__ws_deflate_new(const tern__ws_deflate_params *p);
void tern__ws_deflate_free(tern__ws_deflate *d);

/* Compresses one message. 0 with *out and *out_len (valid until the next
 * call), -ENOMEM. */
int tern__ws_deflate_message(tern__ws_deflate *d, const void *in, size_t len, const uint8_t **out,
                             size_t *out_len);
/* Decompresses one message into a buffer of the stream's own (valid until
 * the next call): 0, -EMSGSIZE (more than max bytes), -EINVAL (corrupt
 * data), -ENOMEM. */
int tern__ws_inflate_message(tern__ws_deflate *d, const void *in, size_t len, size_t max,
                             const uint8_t **out, size_t *out_len);

#endif
