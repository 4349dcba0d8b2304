/* WebSocket framing and UTF-8 validation; see ws_frame.h. */
#include "http/ws_frame.h"

#include <string.h>

static int opcode_known(uint8_t op) {
    return op <= TERN__WS_OP_BINARY || (op >= TERN__WS_OP_CLOSE && op <= TERN__WS_OP_PONG);
}

tern__ws_parse tern__ws_frame_parse(const uint8_t *p, size_t n, uint8_t rsv_allowed,
                                    int require_mask, uint64_t max_payload, tern__ws_frame *f) {
    if (n < 2) return TERN__WS_PARSE_INCOMPLETE;
    f->fin = (uint8_t)(p[0] >> 7);
    f->rsv = p[0] & 0x70;
    f->opcode = p[0] & 0x0F;
    f->masked = (uint8_t)(p[1] >> 7);
    uint64_t len = p[1] & 0x7F;
    /* everything byte 0 and 1 can tell is checked before waiting for more,
     * so a bad frame is refused at once (Autobahn's "fail fast") */
    if ((f->rsv & ~rsv_allowed) || !opcode_known(f->opcode)) return TERN__WS_PARSE_PROTOCOL;
    if (f->opcode >= TERN__WS_OP_CLOSE && (!f->fin || len > 125)) return TERN__WS_PARSE_PROTOCOL;
    if (!f->masked != !require_mask) return TERN__WS_PARSE_PROTOCOL;
    size_t h = 2;
    if (len == 126) {
        if (n < 4) return TERN__WS_PARSE_INCOMPLETE;
        len = (uint64_t)p[2] << 8 | p[3];
        h = 4;
    } else if (len == 127) {
        if (n < 10) return TERN__WS_PARSE_INCOMPLETE;
        len = 0;
        for (int i = 2; i < 10; i++) len = len << 8 | p[i];
        if (len >> 63)
            return TERN__WS_PARSE_PROTOCOL; /* §5.2: the most significant bit MUST be 0 */
        h = 10;
    }
    if (len > max_payload) return TERN__WS_PARSE_TOO_BIG;
    if (f->masked) {
        if (n < h + 4) return TERN__WS_PARSE_INCOMPLETE;
        memcpy(f->mask, p + h, 4);
        h += 4;
    } else {
        memset(f->mask, 0, 4);
    }
    f->len = len;
    f->header_len = h;
    return TERN__WS_PARSE_OK;
}

void tern__ws_unmask(uint8_t *p, size_t n, const uint8_t mask[4], uint64_t pos) {
    size_t i = 0;
    uint8_t m[8];
    for (int k = 0; k < 8; k++) m[k] = mask[(pos + (uint64_t)k) & 3];
    uint64_t m64;
    memcpy(&m64, m, 8);
    /* eight bytes at a time: the mask repeats every 4, so every 8 too */
    for (; i + 8 <= n; i += 8) {
        uint64_t v;
        memcpy(&v, p + i, 8);
        v ^= m64;
        memcpy(p + i, &v, 8);
    }
    for (; i < n; i++) p[i] ^= m[i & 7];
}

size_t tern__ws_frame_header(uint8_t *out, int fin, uint8_t rsv, tern__ws_opcode op, uint64_t len) {
    out[0] = (uint8_t)((fin ? 0x80 : 0) | rsv | (uint8_t)op);
    if (len < 126) {
        out[1] = (uint8_t)len;
        return 2;
    }
    if (len <= 0xFFFF) {
        out[1] = 126;
        out[2] = (uint8_t)(len >> 8);
        out[3] = (uint8_t)len;
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; i++) out[2 + i] = (uint8_t)(len >> (56 - 8 * i));
    return 10;
}

int tern__ws_close_code_valid(unsigned code) {
    if (code >= 3000 && code <= 4999) return 1; /* libraries and applications (§7.4.2) */
    switch (code) {
    case 1000:
    case 1001:
    case 1002:
    case 1003:
    case 1007:
    case 1008:
    case 1009:
    case 1010:
    case 1011:
    case 1012:
    case 1013:
    case 1014: /* IANA-registered since the RFC */
        return 1;
    default:
        return 0; /* 1004-1006 and 1015 must never be sent; the rest are unassigned */
    }
}

/* The first byte of a sequence: how many continuation bytes follow and
 * the range the first of them must fall in (RFC 3629 §4 table), which is
 * what excludes overlongs (E0, F0), surrogates (ED) and > U+10FFFF (F4). */
static int utf8_lead(tern__utf8 *u, uint8_t b) {
    u->lo = 0x80;
    u->hi = 0xBF;
    if (b >= 0xC2 && b <= 0xDF)
        u->need = 1;
    else if (b == 0xE0)
        u->need = 2, u->lo = 0xA0;
    else if (b == 0xED)
        u->need = 2, u->hi = 0x9F;
    else if (b >= 0xE1 && b <= 0xEF)
        u->need = 2;
    else if (b == 0xF0)
        u->need = 3, u->lo = 0x90;
    else if (b >= 0xF1 && b <= 0xF3)
        u->need = 3;
    else if (b == 0xF4)
        u->need = 3, u->hi = 0x8F;
    else
        return -1; /* 80-C1 and F5-FF never start a character */
    return 0;
}

tern__utf8_result tern__utf8_feed(tern__utf8 *u, const uint8_t *p, size_t n) {
    size_t i = 0;
    while (i < n) {
        if (u->need == 0) {
            /* ASCII runs, eight bytes at a time */
            while (i + 8 <= n) {
                uint64_t v;
                memcpy(&v, p + i, 8);
                if (v & 0x8080808080808080ull) break;
                i += 8;
            }
            if (i == n) break;
            uint8_t b = p[i++];
            if (b < 0x80) continue;
            if (utf8_lead(u, b) < 0) return TERN__UTF8_INVALID;
            continue;
        }
        uint8_t b = p[i++];
        if (b < u->lo || b > u->hi) return TERN__UTF8_INVALID;
        u->need--;
        u->lo = 0x80;
        u->hi = 0xBF;
    }
    return u->need ? TERN__UTF8_PARTIAL : TERN__UTF8_COMPLETE;
}
