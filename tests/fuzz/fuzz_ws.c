/* Fuzz target for the WebSocket frame parser and UTF-8 validator. The first
 * byte picks the options (mask required, RSV1 allowed, a payload limit);
 * the rest is a stream of client frames, walked frame by frame as the
 * server does. Checks: the parser never reads past what it is given, a
 * header's verdict is the same on every prefix that holds it, a parsed
 * header round-trips through the server's header writer, and UTF-8 gives
 * one verdict whole and in two pieces. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/ws_frame.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
    if (!ok) __builtin_trap();
}

static void check_utf8(const uint8_t *p, size_t n, size_t cut) {
    tern__utf8 a, b;
    tern__utf8_init(&a);
    tern__utf8_init(&b);
    tern__utf8_result whole = tern__utf8_feed(&a, p, n);
    if (cut > n) cut = n;
    tern__utf8_result r = tern__utf8_feed(&b, p, cut);
    if (r != TERN__UTF8_INVALID) r = tern__utf8_feed(&b, p + cut, n - cut);
    check(r == whole);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    uint8_t opt = data[0];
    int require_mask = opt & 1;
    uint8_t rsv_allowed = (opt & 2) ? TERN__WS_RSV1 : 0;
    uint64_t max = (opt & 4) ? 125 : (opt & 8) ? 65536 : UINT64_MAX >> 1;
    /* an exact-size copy: ASan catches any read past the end */
    size_t n = size - 1;
    uint8_t *buf = malloc(n ? n : 1);
    if (!buf) return 0;
    memcpy(buf, data + 1, n);
    size_t off = 0;
    while (off < n) {
        tern__ws_frame f;
        tern__ws_parse p =
            tern__ws_frame_parse(buf + off, n - off, rsv_allowed, require_mask, max, &f);
        if (p != TERN__WS_PARSE_OK) break;
        check(f.header_len >= 2 && f.header_len <= 14 && f.header_len <= n - off);
        check(f.len <= max);
        /* shorter prefixes of the header: incomplete, never OK */
        for (size_t k = 0; k < f.header_len; k++) {
            tern__ws_frame g;
            tern__ws_parse q =
                tern__ws_frame_parse(buf + off, k, rsv_allowed, require_mask, max, &g);
            check(q == TERN__WS_PARSE_INCOMPLETE);
        }
        uint8_t h[10];
        size_t hl = tern__ws_frame_header(h, f.fin, f.rsv, (tern__ws_opcode)f.opcode, f.len);
        tern__ws_frame g;
        check(tern__ws_frame_parse(h, hl, 0x70, 0, UINT64_MAX >> 1, &g) == TERN__WS_PARSE_OK);
        check(g.len == f.len && g.opcode == f.opcode && g.fin == f.fin && g.rsv == f.rsv);
        size_t avail = n - off - f.header_len;
        size_t take = f.len < avail ? (size_t)f.len : avail;
        tern__ws_unmask(buf + off + f.header_len, take, f.mask, 0);
        check_utf8(buf + off + f.header_len, take, take / 2 + (opt >> 4));
        off += f.header_len + take;
    }
    free(buf);
    return 0;
}
