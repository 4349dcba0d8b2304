/* WebSocket framing (RFC 6455 §5): a stateless frame-header parser over
 * the caller's buffer, masking, server frame headers, and an incremental
 * UTF-8 validator for text messages (§8.1). Allocates nothing and knows no
 * connection, so unit tests and the fuzzer include ws_frame.c alone. */
#ifndef TERN_HTTP_WS_FRAME_H
#define TERN_HTTP_WS_FRAME_H

#include <stddef.h>
#include <stdint.h>

/* §5.2 opcodes; 3-7 and 11-15 are reserved. */
typedef enum tern__ws_opcode {
    TERN__WS_OP_CONT = 0x0,
    TERN__WS_OP_TEXT = 0x1,
    TERN__WS_OP_BINARY = 0x2,
    TERN__WS_OP_CLOSE = 0x8,
    TERN__WS_OP_PING = 0x9,
    TERN__WS_OP_PONG = 0xA,
} tern__ws_opcode;

/* RSV bits in the first byte (RSV1 is permessage-deflate's, RFC 7692). */
enum { TERN__WS_RSV1 = 0x40, TERN__WS_RSV2 = 0x20, TERN__WS_RSV3 = 0x10 };

/* §7.4.1 close codes the server sends. */
enum tern__ws_close_code {
    TERN__WS_CLOSE_NORMAL = 1000,
    TERN__WS_CLOSE_GOING_AWAY = 1001,
    TERN__WS_CLOSE_PROTOCOL = 1002,
    TERN__WS_CLOSE_UNSUPPORTED = 1003,
    TERN__WS_CLOSE_NO_STATUS = 1005, /* never on the wire */
    TERN__WS_CLOSE_ABNORMAL = 1006,  /* never on the wire */
    TERN__WS_CLOSE_INVALID_DATA = 1007,
    TERN__WS_CLOSE_POLICY = 1008,
    TERN__WS_CLOSE_TOO_BIG = 1009,
    TERN__WS_CLOSE_INTERNAL = 1011,
};

typedef struct tern__ws_frame {
    uint8_t fin;
    uint8_t rsv; /* the RSV bits as they are in byte 0 */
    uint8_t opcode;
    uint8_t masked;
    uint8_t mask[4];
    uint64_t len;      /* payload length */
    size_t header_len; /* 2..14 bytes */
} tern__ws_frame;

/* The parser's verdict on a frame header. */
typedef enum tern__ws_parse {
    TERN__WS_PARSE_OK,         /* *f filled; the payload follows header_len */
    TERN__WS_PARSE_INCOMPLETE, /* the header needs more bytes */
    TERN__WS_PARSE_PROTOCOL,   /* close with 1002 */
    TERN__WS_PARSE_TOO_BIG,    /* payload above max_payload: close with 1009 */
} tern__ws_parse;

/* Parses the frame header at p[0..n). rsv_allowed: RSV bits an extension
 * negotiated (others are a protocol error, §5.2); require_mask: frames from
 * a client must be masked (§5.1), from a server must not. Refuses reserved
 * opcodes, fragmented or long (> 125) control frames (§5.5) and a 64-bit
 * length with its top bit set (§5.2). Only the header is looked at. */
tern__ws_parse tern__ws_frame_parse(const uint8_t *p, size_t n, uint8_t rsv_allowed,
                                    int require_mask, uint64_t max_payload, tern__ws_frame *f);

/* XORs p[0..n) with the mask, as payload bytes starting at offset `pos`
 * of the frame (§5.3). */
void tern__ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t pos);

/* Writes an unmasked frame header (server to client) into out (>= 10
 * bytes); returns its length. */
size_t tern__ws_frame_header(uint8_t *out, int fin, uint8_t rsv, tern__ws_opcode op, uint64_t len);

/* 1 when a close code received from the peer is valid (§7.4.1, §7.4.2). */
int tern__ws_close_code_valid(unsigned code);

/* Incremental UTF-8 validation (RFC 3629: no overlongs, no surrogates,
 * nothing above U+10FFFF), across frame boundaries. */
typedef struct tern__utf8 {
    uint8_t need;   /* continuation bytes still expected */
    uint8_t lo, hi; /* allowed range of the next continuation byte */
} tern__utf8;

typedef enum tern__utf8_result {
    TERN__UTF8_COMPLETE, /* valid, and ends on a character boundary */
    TERN__UTF8_PARTIAL,  /* valid so far, but stops inside a character */
    TERN__UTF8_INVALID,  /* can never become valid */
} tern__utf8_result;

static inline void tern__utf8_init(tern__utf8 *u) {
    u->need = 0, u->lo = 0x80, u->hi = 0xBF;
}
tern__utf8_result tern__utf8_feed(tern__utf8 *u, const uint8_t *p, size_t n);

#endif
