/* WebSocket frame parser, masking, server headers, close codes, the UTF-8
 * validator (whole, split at every point, byte by byte) and the handshake
 * helpers (RFC 6455 §1.3's sample key). Headers are parsed flush against
 * an unreadable page, so a one-byte over-read crashes. */
#include <errno.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "http/ws.h"
#include "http/ws_deflate.h"
#include "http/ws_frame.c"

static uint8_t *guard_end;

static void guard_init(void) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    uint8_t *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m + pg, pg, PROT_NONE) != 0) exit(2);
    guard_end = m + pg;
}

static tern__ws_parse parse(const uint8_t *b, size_t n, int mask, uint64_t max, tern__ws_frame *f) {
    uint8_t *p = guard_end - n;
    memcpy(p, b, n);
    return tern__ws_frame_parse(p, n, 0, mask, max, f);
}

static void test_parse_lengths(void) {
    tern__ws_frame f;
    /* §5.7: a single-frame masked text message "Hello" */
    const uint8_t hello[] = {0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58};
    CHECK_INT(parse(hello, sizeof hello, 1, 1000, &f), TERN__WS_PARSE_OK);
    CHECK_INT(f.fin, 1);
    CHECK_INT(f.opcode, TERN__WS_OP_TEXT);
    CHECK_INT(f.len, 5);
    CHECK_INT(f.header_len, 6);
    uint8_t payload[5];
    memcpy(payload, hello + 6, 5);
    tern__ws_unmask(payload, 5, f.mask, 0);
    CHECK_MEM(payload, 5, "Hello");
    /* every prefix of the header is incomplete, never an over-read */
    for (size_t n = 0; n < 6; n++)
        CHECK_INT(parse(hello, n, 1, 1000, &f), TERN__WS_PARSE_INCOMPLETE);
    /* 16-bit and 64-bit lengths (§5.2) */
    const uint8_t l16[] = {0x82, 0xFE, 0x01, 0x00, 1, 2, 3, 4};
    CHECK_INT(parse(l16, sizeof l16, 1, 1 << 20, &f), TERN__WS_PARSE_OK);
    CHECK_INT(f.len, 256);
    CHECK_INT(f.header_len, 8);
    const uint8_t l64[] = {0x82, 0xFF, 0, 0, 0, 0, 0, 1, 0, 0, 1, 2, 3, 4};
    CHECK_INT(parse(l64, sizeof l64, 1, 1 << 20, &f), TERN__WS_PARSE_OK);
    CHECK_INT(f.len, 65536);
    CHECK_INT(f.header_len, 14);
    CHECK_INT(parse(l64, sizeof l64, 1, 65535, &f), TERN__WS_PARSE_TOO_BIG);
    const uint8_t top[] = {0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1, 1, 2, 3, 4};
    CHECK_INT(parse(top, sizeof top, 1, UINT64_MAX, &f), TERN__WS_PARSE_PROTOCOL);
}

static void test_parse_refusals(void) {
    tern__ws_frame f;
    const uint8_t unmasked[] = {0x81, 0x00};
    CHECK_INT(parse(unmasked, 2, 1, 100, &f), TERN__WS_PARSE_PROTOCOL); /* §5.1 */
    CHECK_INT(parse(unmasked, 2, 0, 100, &f), TERN__WS_PARSE_OK); /* a client reading a server */
    for (unsigned rsv = 1; rsv < 8; rsv++) {                      /* §5.2 RSV1-3 */
        const uint8_t b[] = {(uint8_t)(0x81 | rsv << 4), 0x80, 0, 0, 0, 0};
        CHECK_INT(parse(b, sizeof b, 1, 100, &f), TERN__WS_PARSE_PROTOCOL);
    }
    const uint8_t rsv1[] = {0xC1, 0x80, 0, 0, 0, 0};
    CHECK_INT(tern__ws_frame_parse(rsv1, sizeof rsv1, TERN__WS_RSV1, 1, 100, &f),
              TERN__WS_PARSE_OK);
    for (unsigned op = 0; op < 16; op++) { /* §5.2 reserved opcodes */
        const uint8_t b[] = {(uint8_t)(0x80 | op), 0x80, 0, 0, 0, 0};
        int reserved = (op >= 3 && op <= 7) || op >= 11;
        CHECK_INT(parse(b, sizeof b, 1, 100, &f),
                  reserved ? TERN__WS_PARSE_PROTOCOL : TERN__WS_PARSE_OK);
    }
    const uint8_t frag_ping[] = {0x09, 0x80, 0,
                                 0,    0,    0}; /* §5.5: control frames are not fragmented */
    CHECK_INT(parse(frag_ping, sizeof frag_ping, 1, 100, &f), TERN__WS_PARSE_PROTOCOL);
    const uint8_t long_ping[] = {0x89, 0xFE, 0, 126, 0, 0, 0, 0}; /* §5.5: <= 125 bytes */
    CHECK_INT(parse(long_ping, sizeof long_ping, 1, 1000, &f), TERN__WS_PARSE_PROTOCOL);
}

static void test_unmask_offsets(void) {
    uint8_t mask[4] = {1, 2, 3, 4}, a[37], b[37];
    for (int i = 0; i < 37; i++) a[i] = b[i] = (uint8_t)(i * 7);
    tern__ws_unmask(a, 37, mask, 0);
    /* in pieces at odd offsets: the same bytes */
    tern__ws_unmask(b, 5, mask, 0);
    tern__ws_unmask(b + 5, 19, mask, 5);
    tern__ws_unmask(b + 24, 13, mask, 24);
    CHECK(memcmp(a, b, 37) == 0);
    for (int i = 0; i < 37; i++) CHECK_INT(a[i], (uint8_t)(i * 7) ^ mask[i & 3]);
}

static void test_server_header(void) {
    uint8_t h[10];
    tern__ws_frame f;
    uint64_t lens[] = {0, 125, 126, 65535, 65536, 1ull << 40};
    for (size_t i = 0; i < sizeof lens / sizeof lens[0]; i++) {
        size_t n = tern__ws_frame_header(h, 1, 0, TERN__WS_OP_BINARY, lens[i]);
        CHECK_INT(tern__ws_frame_parse(h, n, 0, 0, UINT64_MAX >> 1, &f), TERN__WS_PARSE_OK);
        CHECK_INT(f.len, lens[i]);
        CHECK_INT(f.header_len, n);
        CHECK_INT(f.opcode, TERN__WS_OP_BINARY);
    }
}

static void test_close_codes(void) {
    /* §7.4.1-2 */
    unsigned ok[] = {1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999};
    unsigned bad[] = {0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) CHECK(tern__ws_close_code_valid(ok[i]));
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(!tern__ws_close_code_valid(bad[i]));
}

/* The verdict for the whole string, every 2-way split and byte by byte. */
static tern__utf8_result utf8_all_ways(const char *s, size_t n) {
    tern__utf8 u;
    tern__utf8_init(&u);
    tern__utf8_result whole = tern__utf8_feed(&u, (const uint8_t *)s, n);
    for (size_t cut = 0; cut <= n; cut++) {
        tern__utf8_init(&u);
        tern__utf8_result r = tern__utf8_feed(&u, (const uint8_t *)s, cut);
        if (r != TERN__UTF8_INVALID) r = tern__utf8_feed(&u, (const uint8_t *)s + cut, n - cut);
        CHECK_INT(r, whole);
    }
    tern__utf8_init(&u);
    tern__utf8_result r = TERN__UTF8_COMPLETE;
    for (size_t i = 0; i < n && r != TERN__UTF8_INVALID; i++)
        r = tern__utf8_feed(&u, (const uint8_t *)s + i, 1);
    CHECK_INT(r, whole);
    return whole;
}

#define UTF8(lit, verdict) CHECK_INT(utf8_all_ways(lit, sizeof lit - 1), verdict)

static void test_utf8(void) {
    UTF8("", TERN__UTF8_COMPLETE);
    UTF8("Hello-\xc2\xb5@\xc3\x9f\xc3\xb6\xc3\xa4\xc3\xbc\xc3\xa0\xc3\xa1-UTF-8!!",
         TERN__UTF8_COMPLETE);
    UTF8("\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5", TERN__UTF8_COMPLETE); /* Autobahn 6.2 */
    UTF8("\xf0\x9f\x98\x80 and ASCII long enough for the fast path", TERN__UTF8_COMPLETE);
    UTF8("\xf4\x8f\xbf\xbf", TERN__UTF8_COMPLETE); /* U+10FFFF */
    UTF8("\xef\xbf\xbf", TERN__UTF8_COMPLETE);     /* U+FFFF is valid UTF-8 */
    UTF8("\xce\xba\xe1\xbd", TERN__UTF8_PARTIAL);  /* cut inside a character */
    UTF8("\xf4\x90\x80\x80", TERN__UTF8_INVALID);  /* > U+10FFFF */
    UTF8("\xed\xa0\x80", TERN__UTF8_INVALID);      /* surrogate U+D800 */
    UTF8("\xc0\xaf", TERN__UTF8_INVALID);          /* overlong '/' */
    UTF8("\xe0\x80\xaf", TERN__UTF8_INVALID);      /* overlong, 3 bytes */
    UTF8("\xf0\x80\x80\xaf", TERN__UTF8_INVALID);  /* overlong, 4 bytes */
    UTF8("\x80", TERN__UTF8_INVALID);              /* lone continuation */
    UTF8("\xfe", TERN__UTF8_INVALID);
    UTF8("\xff", TERN__UTF8_INVALID);
    UTF8("\xc2"
         "A",
         TERN__UTF8_INVALID); /* lead without continuation */
    UTF8("abcdefgh\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80"
         "edited",
         TERN__UTF8_INVALID);
}

static void test_handshake_helpers(void) {
    char out[29];
    /* §1.3's example */
    tern__ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", 24, out);
    CHECK_STR(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    CHECK(tern__ws_key_valid("dGhlIHNhbXBsZSBub25jZQ==", 24));
    CHECK(!tern__ws_key_valid("dGhlIHNhbXBsZSBub25jZQ=", 23));
    CHECK(!tern__ws_key_valid("dGhlIHNhbXBsZSBub25jZQ!=", 24));
    CHECK(!tern__ws_key_valid("dGhlIHNhbXBsZSBub25jZQo=", 24)); /* 17 bytes */
    const char conn[] = "keep-alive, Upgrade";
    CHECK(tern__ws_list_has(conn, sizeof conn - 1, "upgrade"));
    CHECK(tern__ws_list_has(conn, sizeof conn - 1, "keep-alive"));
    CHECK(!tern__ws_list_has(conn, sizeof conn - 1, "upgrad"));
    const char proto[] = " chat ,  superchat\t";
    CHECK(tern__ws_list_has(proto, sizeof proto - 1, "superchat"));
    CHECK(!tern__ws_list_has(proto, sizeof proto - 1, "super"));
}

static void test_deflate_negotiation(void) {
    tern__ws_deflate_params p;
    char resp[128];
    const char a[] = "permessage-deflate; client_max_window_bits";
    CHECK(tern__ws_deflate_negotiate(a, sizeof a - 1, 0, &p, resp, sizeof resp));
    CHECK_STR(resp, "permessage-deflate");
    CHECK(tern__ws_deflate_negotiate(a, sizeof a - 1, 1, &p, resp, sizeof resp));
    CHECK_STR(resp, "permessage-deflate; server_no_context_takeover");
    const char b[] = "permessage-deflate; server_max_window_bits=8, "
                     "permessage-deflate;client_no_context_takeover;"
                     " server_max_window_bits=\"12\"";
    CHECK(tern__ws_deflate_negotiate(b, sizeof b - 1, 0, &p, resp, sizeof resp));
    CHECK_STR(resp, "permessage-deflate; client_no_context_takeover; server_max_window_bits=12");
    CHECK_INT(p.server_max_window_bits, 12);
    const char *refused[] = {
        "permessage-deflate; server_no_context_takeover; server_no_context_takeover",
        "permessage-deflate; server_no_context_takeover=1",
        "permessage-deflate; x=1",
        "permessage-deflate; client_max_window_bits=16",
        "x-webkit-deflate-frame",
        ""};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        CHECK(
            !tern__ws_deflate_negotiate(refused[i], strlen(refused[i]), 0, &p, resp, sizeof resp));
}

static void test_deflate_roundtrip(void) {
    tern__ws_deflate_params p = {.server_max_window_bits = 15};
    tern__ws_deflate *d = tern__ws_deflate_new(&p);
    CHECK(d != NULL);
    /* RFC 7692 §7.2.3.1: "Hello" */
    const uint8_t hello[] = {0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00};
    const uint8_t *out;
    size_t n;
    CHECK_INT(tern__ws_inflate_message(d, hello, sizeof hello, 100, &out, &n), 0);
    CHECK_MEM(out, n, "Hello");
    /* §7.2.3.2: the same message again, with context takeover, is shorter */
    const uint8_t again[] = {0xf2, 0x00, 0x11, 0x00, 0x00};
    CHECK_INT(tern__ws_inflate_message(d, again, sizeof again, 100, &out, &n), 0);
    CHECK_MEM(out, n, "Hello");
    static char big[200000];
    for (size_t i = 0; i < sizeof big; i++) big[i] = "tern websocket "[i % 15];
    const uint8_t *z;
    size_t zn;
    for (int round = 0; round < 3; round++) {
        CHECK_INT(tern__ws_deflate_message(d, big, sizeof big, &z, &zn), 0);
        CHECK(zn < sizeof big / 20);
        uint8_t *copy = malloc(zn);
        memcpy(copy, z, zn);
        CHECK_INT(tern__ws_inflate_message(d, copy, zn, sizeof big, &out, &n), 0);
        CHECK(n == sizeof big && memcmp(out, big, n) == 0);
        CHECK_INT(tern__ws_inflate_message(d, copy, zn, sizeof big - 1, &out, &n), -EMSGSIZE);
        free(copy);
        tern__ws_deflate_free(d); /* a fresh pair: the failed inflate left its stream mid-message */
        d = tern__ws_deflate_new(&p);
    }
    CHECK_INT(tern__ws_deflate_message(d, "", 0, &z, &zn), 0);
    CHECK(zn >= 1);
    CHECK_INT(tern__ws_inflate_message(d, (const uint8_t *)"\xff\xff\xff", 3, 100, &out, &n),
              -EINVAL);
    tern__ws_deflate_free(d);
}

int main(void) {
    guard_init();
    test_parse_lengths();
    test_parse_refusals();
    test_unmask_offsets();
    test_server_header();
    test_close_codes();
    test_utf8();
    test_handshake_helpers();
    test_deflate_negotiation();
    test_deflate_roundtrip();
    return check_done();
}
