/* Strict HTTP/1.1 request-head parser (RFC 9112, RFC 9110). See parse.h.
 *
 * One left-to-right pass over the head, line by line. Every decision is
 * taken from bytes already seen and the parser answers INCOMPLETE whenever
 * it needs a byte it does not have yet, so the result never depends on how
 * the bytes were split across reads: a prefix either gets the final answer
 * or INCOMPLETE. Limits follow the same rule: only the first max_head bytes
 * are ever looked at, an error found inside them wins, otherwise a buffer
 * longer than max_head is 414 (still in the request line, as nginx answers
 * a request line that does not fit) or 431.
 *
 * Incremental calls: req->scanned is the start of the first line not yet
 * complete and req->num_headers the number of header lines before it. A
 * new call validates from there; when the blank line arrives, the whole
 * head is parsed once more from the start to collect the results (cheap,
 * and the caller's header array is then never trusted across calls). A
 * partial line is re-scanned by every call, which is bounded by max_head.
 *
 * Semantic errors (Content-Length, Host, Transfer-Encoding) are only
 * reported once the head is complete and syntactically valid, so a request
 * with both a bad Content-Length and too many headers is 431 however it
 * arrives. Their order: the first bad Content-Length/duplicate Host line,
 * then missing Host, Transfer-Encoding with Content-Length, in HTTP/1.0, in
 * two fields, chunked twice or not last (400), then a coding other than
 * chunked before it (501), then an Expect we cannot meet (417).
 *
 * Cost: a head already complete in the buffer and of the usual shape (one
 * of the common methods, origin-form target, HTTP/1.x, values without
 * HTAB) goes through parse_fast, one pass with the same byte rules and no
 * incremental state; everything else, every syntax error included, is left
 * to the general parser (parse_general). Both share the semantic checks
 * (header_semantics, finish), and sanitizer builds check that the two
 * agree on every head parse_fast takes (check_fast). Bytes are classified 16 at a
 * time with SSE2 (scan). Measured with callgrind (gcc -O3), instructions
 * per parse: wrk's "GET /plaintext" head 468 (two memchr calls included)
 * before, 261 now; a browser head with 11 fields 2568 before, 1791 now. */
#include "http/parse.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

#ifdef __SSE2__
#include <emmintrin.h>
#endif

/* Longer method tokens are answered 501 (RFC 9110 §9.1: "An origin server
 * that receives a request method that is unrecognized ... SHOULD respond
 * with 501"); the bound keeps the re-scan of a partial request line cheap. */
#define MAX_METHOD 32

/* Character classes, shared with the response side (header names a handler
 * sets) and the client through parse.h:
 *   TERN_CHAR_TOKEN: tchar (RFC 9110 §5.6.2): "!#$%&'*+-.^_`|~" DIGIT ALPHA;
 *   TERN_CHAR_HOST:  what a reg-name or IP literal may hold (RFC 3986 §3.2.2):
 *                    unreserved, pct-encoded's '%', sub-delims. */
#define T TERN_CHAR_TOKEN
#define H TERN_CHAR_HOST
// clang-format off
const unsigned char tern__http_char_class[256] = {
    ['!'] = T | H, ['#'] = T, ['$'] = T | H, ['%'] = T | H, ['&'] = T | H, ['\''] = T | H,
    ['*'] = T | H, ['+'] = T | H, ['-'] = T | H, ['.'] = T | H, ['^'] = T, ['_'] = T | H,
    ['`'] = T, ['|'] = T, ['~'] = T | H, ['0'] = T | H, ['1'] = T | H, ['2'] = T | H,
    ['3'] = T | H, ['4'] = T | H, ['5'] = T | H, ['6'] = T | H, ['7'] = T | H, ['8'] = T | H,
    ['9'] = T | H, ['A'] = T | H, ['B'] = T | H, ['C'] = T | H, ['D'] = T | H, ['E'] = T | H,
    ['F'] = T | H, ['G'] = T | H, ['H'] = T | H, ['I'] = T | H, ['J'] = T | H, ['K'] = T | H,
    ['L'] = T | H, ['M'] = T | H, ['N'] = T | H, ['O'] = T | H, ['P'] = T | H, ['Q'] = T | H,
    ['R'] = T | H, ['S'] = T | H, ['T'] = T | H, ['U'] = T | H, ['V'] = T | H, ['W'] = T | H,
    ['X'] = T | H, ['Y'] = T | H, ['Z'] = T | H, ['a'] = T | H, ['b'] = T | H, ['c'] = T | H,
    ['d'] = T | H, ['e'] = T | H, ['f'] = T | H, ['g'] = T | H, ['h'] = T | H, ['i'] = T | H,
    ['j'] = T | H, ['k'] = T | H, ['l'] = T | H, ['m'] = T | H, ['n'] = T | H, ['o'] = T | H,
    ['p'] = T | H, ['q'] = T | H, ['r'] = T | H, ['s'] = T | H, ['t'] = T | H, ['u'] = T | H,
    ['v'] = T | H, ['w'] = T | H, ['x'] = T | H, ['y'] = T | H, ['z'] = T | H, ['('] = H,
    [')'] = H, [','] = H, [';'] = H, ['='] = H,
};
// clang-format on
#undef T
#undef H

static inline int is_tchar(char c) {
    return tern__http_char_class[(unsigned char)c] & TERN_CHAR_TOKEN;
}

/* ---- scanning -------------------------------------------------------------
 * Each scanner finds the first byte of a class in [p, end). With SSE2 it
 * looks at 16 bytes per step, and a last partial block is read as the 16
 * bytes that end at `end` (when [lo, end) holds that many: lo is the start
 * of the caller's buffer) with the bits for bytes before p shifted out. A
 * header line or a request-target is usually shorter than 16 bytes past
 * its start but not past the buffer's, so it costs one block instead of a
 * byte loop, and nothing outside [lo, end) is read (the tests place the
 * input flush against an unreadable page). Other targets (aarch64 here)
 * use the byte loop. */
enum scan_class {
    SCAN_TARGET,       /* outside 0x21..0x7E: the end of the request-target */
    SCAN_TARGET_PATH,  /* the same, '?' or '#' */
    SCAN_TARGET_QUERY, /* the same or '#' */
    SCAN_CTL,          /* 0x00..0x1F or DEL: field values (RFC 9110 §5.5) */
    SCAN_NAME,         /* not a letter or '-' (see name_end) */
};

static inline int byte_in_class(unsigned char c, enum scan_class k) {
    int outside = (unsigned char)(c - 0x21) > 0x7e - 0x21;
    switch (k) {
    case SCAN_TARGET:
        return outside;
    case SCAN_TARGET_PATH:
        return outside || c == '?' || c == '#';
    case SCAN_TARGET_QUERY:
        return outside || c == '#';
    case SCAN_CTL:
        return c < 0x20 || c == 0x7f;
    case SCAN_NAME:
        return (unsigned char)((c | 0x20) - 'a') > 'z' - 'a' && c != '-';
    }
    return 1;
}

#ifdef __SSE2__
/* Per byte: 0xFF where unsigned a <= b. */
static inline __m128i le_u8(__m128i a, __m128i b) {
    return _mm_cmpeq_epi8(_mm_min_epu8(a, b), a);
}

/* Per byte: 0xFF where lo <= v <= hi (unsigned). */
static inline __m128i in_range(__m128i v, char lo, char hi) {
    return le_u8(_mm_sub_epi8(v, _mm_set1_epi8(lo)), _mm_set1_epi8((char)(hi - lo)));
}

static inline unsigned eq_mask(__m128i v, char c) {
    return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c)));
}

/* Bit i set when byte i of v is in class k. */
static inline unsigned block_mask(__m128i v, enum scan_class k) {
    unsigned outside = (unsigned)_mm_movemask_epi8(in_range(v, 0x21, 0x7e)) ^ 0xffffu;
    switch (k) {
    case SCAN_TARGET:
        return outside;
    case SCAN_TARGET_PATH:
        return outside | eq_mask(v, '?') | eq_mask(v, '#');
    case SCAN_TARGET_QUERY:
        return outside | eq_mask(v, '#');
    case SCAN_CTL:
        return (unsigned)_mm_movemask_epi8(
            _mm_or_si128(le_u8(v, _mm_set1_epi8(0x1f)), _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f))));
    case SCAN_NAME: {
        /* x | 0x20 is a lower-case letter exactly for the letters */
        __m128i letter = in_range(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 'z');
        __m128i dash = _mm_cmpeq_epi8(v, _mm_set1_epi8('-'));
        return (unsigned)_mm_movemask_epi8(_mm_or_si128(letter, dash)) ^ 0xffffu;
    }
    }
    return 0xffffu;
}
#endif

static inline __attribute__((always_inline)) const char *scan(const char *p, const char *end,
                                                              const char *lo, enum scan_class k) {
#ifdef __SSE2__
    while (end - p >= 16) {
        unsigned m = block_mask(_mm_loadu_si128((const void *)p), k);
        if (m) return p + __builtin_ctz(m);
        p += 16;
    }
    if (p < end && end - lo >= 16) {
        unsigned m = block_mask(_mm_loadu_si128((const void *)(end - 16)), k) >> (16 - (end - p));
        return m ? p + __builtin_ctz(m) : end;
    }
#endif
    (void)lo;
    for (; p < end; p++)
        if (byte_in_class((unsigned char)*p, k)) return p;
    return p;
}

/* The first byte at or after p that is not a tchar, or end. Field names
 * are letters and '-' nearly always: those go 16 at a time, and the scan
 * goes on byte by byte only from another tchar (a digit, '_', ...). */
static inline const char *name_end(const char *p, const char *end, const char *lo) {
    p = scan(p, end, lo, SCAN_NAME);
    if (p < end && *p != ':')
        while (p < end && is_tchar(*p)) p++;
    return p;
}

/* Header-name recognition compares whole words with the ASCII case bit set.
 * For tchar bytes this is exact: x | 0x20 equals a lower-case letter only
 * for that letter in either case, and '-' (0x2d) only for '-' or CR. */
static inline uint16_t ld16(const char *p) {
    uint16_t x;
    memcpy(&x, p, 2);
    return x;
}

static inline uint32_t ld32(const char *p) {
    uint32_t x;
    memcpy(&x, p, 4);
    return x;
}

static inline uint64_t ld64(const char *p) {
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

#define LOW32 0x20202020u
#define LOW64 0x2020202020202020ull

enum hdr_kind { H_OTHER, H_HOST, H_EXPECT, H_UPGRADE, H_CONNECTION, H_CL, H_TE };

static inline enum hdr_kind header_kind(const char *n, size_t len) {
    switch (len) {
    case 4:
        return (ld32(n) | LOW32) == ld32("host") ? H_HOST : H_OTHER;
    case 6:
        return (ld32(n) | LOW32) == ld32("expe") && (ld32(n + 2) | LOW32) == ld32("pect") ? H_EXPECT
                                                                                          : H_OTHER;
    case 7:
        return (ld32(n) | LOW32) == ld32("upgr") && (ld32(n + 3) | LOW32) == ld32("rade")
                   ? H_UPGRADE
                   : H_OTHER;
    case 10:
        return (ld64(n) | LOW64) == ld64("connecti") && (ld64(n + 2) | LOW64) == ld64("nnection")
                   ? H_CONNECTION
                   : H_OTHER;
    case 14:
        return (ld64(n) | LOW64) == ld64("content-") && (ld64(n + 6) | LOW64) == ld64("t-length")
                   ? H_CL
                   : H_OTHER;
    case 17:
        return (ld64(n) | LOW64) == ld64("transfer") && (ld64(n + 8) | LOW64) == ld64("-encodin") &&
                       (ld64(n + 9) | LOW64) == ld64("encoding")
                   ? H_TE
                   : H_OTHER;
    default:
        return H_OTHER;
    }
}

/* ASCII case-insensitive equality of a[0..n) with lower-case b. */
static int ieq(const char *a, size_t n, const char *b, size_t bn) {
    if (n != bn) return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a[i];
        if (c >= 'A' && c <= 'Z') c = (unsigned char)(c + 32);
        if (c != (unsigned char)b[i]) return 0;
    }
    return 1;
}

int tern__http_header_is(const char *buf, const tern__http_header *h, const char *name,
                         size_t name_len) {
    if (h->name_len != name_len) return 0;
    const char *a = buf + h->name_off;
    for (size_t i = 0; i < name_len; i++) {
        unsigned char x = (unsigned char)a[i], y = (unsigned char)name[i];
        if (x >= 'A' && x <= 'Z') x = (unsigned char)(x + 32);
        if (y >= 'A' && y <= 'Z') y = (unsigned char)(y + 32);
        if (x != y) return 0;
    }
    return 1;
}

static unsigned method_bit(const char *m, size_t n) {
    /* Methods are case-sensitive (RFC 9110 §9.1). */
    switch (n) {
    case 3:
        if (!memcmp(m, "GET", 3)) return TERN_GET;
        if (!memcmp(m, "PUT", 3)) return TERN_PUT;
        break;
    case 4:
        if (!memcmp(m, "POST", 4)) return TERN_POST;
        if (!memcmp(m, "HEAD", 4)) return TERN_HEAD;
        break;
    case 5:
        if (!memcmp(m, "PATCH", 5)) return TERN_PATCH;
        if (!memcmp(m, "TRACE", 5)) return TERN_TRACE;
        break;
    case 6:
        if (!memcmp(m, "DELETE", 6)) return TERN_DELETE;
        break;
    case 7:
        if (!memcmp(m, "OPTIONS", 7)) return TERN_OPTIONS;
        if (!memcmp(m, "CONNECT", 7)) return TERN_CONNECT;
        break;
    }
    return 0;
}

static inline int is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* host [":" port] as in an authority or a Host field value (RFC 3986
 * §3.2.2/§3.2.3, RFC 9110 §7.2): an IP-literal in brackets, or a reg-name /
 * IPv4 address of unreserved, pct-encoded and sub-delims characters; the
 * port is digits. Anything else ('"', '@', '/', SP...) makes the field
 * invalid, which RFC 9112 §3.2 says MUST be answered with 400. An empty value
 * is valid (a Host for a target without authority). */
static int valid_host_port(const char *h, const char *e) {
    const char *p = h;
    if (p < e && *p == '[') {
        /* IP-literal: IPv6address / IPvFuture; their characters are a
         * subset of reg-name's plus ':' */
        for (p++; p < e && *p != ']'; p++)
            if (!(tern__http_char_class[(unsigned char)*p] & TERN_CHAR_HOST) && *p != ':') return 0;
        if (p == e || p == h + 1) return 0;
        p++;
    } else {
        while (p < e && (tern__http_char_class[(unsigned char)*p] & TERN_CHAR_HOST)) p++;
    }
    if (p == e) return 1;
    if (*p != ':') return 0;
    for (p++; p < e; p++)
        if (!is_digit(*p)) return 0;
    return 1;
}

/* Fills the target fields; returns 0 or -400. q is the first '?' in the
 * target or NULL, has_hash whether it holds a '#' (both found by the scan
 * that found its end). */
static int classify_target(const char *buf, const char *t, size_t n, const char *q, int has_hash,
                           tern__http_request *req) {
    uint32_t off = (uint32_t)(t - buf);
    /* A fragment is never sent in a request (RFC 9112 §3.2): refuse it
     * rather than guess which part a router should see. */
    if (has_hash) return -400;
    req->query_off = off + (uint32_t)n;
    req->query_len = 0;
    req->authority_off = off;
    req->authority_len = 0;
    /* CONNECT asks for a tunnel, which only a proxy gives; tern is an
     * origin server. nginx answers it 400 too, and refusing it at the
     * request line keeps authority-form out of everything above. */
    if (req->method == TERN_CONNECT) return -400;
    const char *p; /* path start */
    if (t[0] == '/') {
        p = t;
    } else if (n == 1 && t[0] == '*') {
        if (req->method != TERN_OPTIONS) return -400;
        req->flags |= TERN_REQ_FORM_ASTERISK;
        req->path_off = off;
        req->path_len = 1;
        return 0;
    } else {
        /* absolute-form (RFC 9112 §3.2.2): http or https only. */
        size_t s;
        if (n >= 7 && ieq(t, 7, "http://", 7))
            s = 7;
        else if (n >= 8 && ieq(t, 8, "https://", 8))
            s = 8;
        else
            return -400;
        const char *a = t + s, *end = t + n, *ae = a;
        while (ae < end && *ae != '/' && *ae != '?') {
            /* userinfo is deprecated and a recipient SHOULD treat it as an
             * error (RFC 9110 §4.2.4) */
            if (*ae == '@') return -400;
            ae++;
        }
        /* an http(s) URI with an empty host MUST be rejected (§4.2.1) */
        if (ae == a || !valid_host_port(a, ae)) return -400;
        req->flags |= TERN_REQ_FORM_ABSOLUTE;
        req->authority_off = (uint32_t)(a - buf);
        req->authority_len = (uint32_t)(ae - a);
        if (ae == end || *ae == '?') {
            /* RFC 9112 §3.2.2: an empty path is "/". The last '/' of
             * "http://" is one, in the buffer like every other result. */
            req->path_off = (uint32_t)(a - 1 - buf);
            req->path_len = 1;
            if (ae < end) {
                req->query_off = (uint32_t)(ae + 1 - buf);
                req->query_len = (uint32_t)(end - ae - 1);
            }
            return 0;
        }
        p = ae;
    }
    /* an absolute-form authority stops at the first '?', so q >= p */
    const char *end = t + n;
    const char *pe = q ? q : end;
    req->path_off = (uint32_t)(p - buf);
    req->path_len = (uint32_t)(pe - p);
    if (q) {
        req->query_off = (uint32_t)(q + 1 - buf);
        req->query_len = (uint32_t)(end - q - 1);
    }
    return 0;
}

/* Request line at p. Returns the position after its CRLF via *pp, 0 on
 * success, TERN_PARSE_INCOMPLETE or a negated status. */
static int parse_request_line(const char *buf, const char **pp, const char *end,
                              tern__http_request *req, size_t max_target) {
    const char *p = *pp, *m = p;
    unsigned method;
    if (end - p >= 4 && ld32(p) == ld32("GET ")) {
        method = TERN_GET;
        p += 3;
    } else {
        while (p < end && is_tchar(*p)) {
            p++;
            if (p - m > MAX_METHOD) return -501;
        }
        if (p == end) return TERN_PARSE_INCOMPLETE;
        if (p == m) {
            /* a lone CR at the end may still become a skippable empty line */
            if (*p == '\r' && p + 1 == end) return TERN_PARSE_INCOMPLETE;
            return -400;
        }
        method = method_bit(m, (size_t)(p - m));
    }
    if (*p != ' ') return -400;
    p++;

    /* The target ends at the first byte outside 0x21..0x7E; the same pass
     * notes the first '?' and any '#' for classify_target. Only the first
     * max_target + 1 bytes are looked at. */
    const char *t = p, *q = NULL;
    int has_hash = 0;
    size_t avail = (size_t)(end - t);
    const char *limit = t + (avail < max_target + 1 ? avail : max_target + 1);
    const char *te = scan(t, limit, buf, SCAN_TARGET_PATH);
    if (te < limit && *te == '?') {
        q = te;
        te = scan(te + 1, limit, buf, SCAN_TARGET_QUERY);
    }
    if (te < limit && *te == '#') {
        has_hash = 1;
        te = scan(te + 1, limit, buf, SCAN_TARGET);
    }
    size_t tlen = (size_t)(te - t);
    if (tlen > max_target) return -414;
    if (te == end) return TERN_PARSE_INCOMPLETE;
    if (*te != ' ' || tlen == 0) return -400;

    req->method = method;
    req->method_len = (uint32_t)(t - 1 - m);
    req->target_off = (uint32_t)(t - buf);
    req->target_len = (uint32_t)tlen;
    req->flags = 0;
    int r = classify_target(buf, t, tlen, q, has_hash, req);
    if (r) return r;

    /* HTTP-version is case-sensitive, one digit each side (RFC 9112 §2.3).
     * The two versions we serve are compared as words; anything else is
     * checked byte by byte so "HTTP/1.1\n" is refused without waiting. */
    p = te + 1;
    if (end - p >= 10 && (ld64(p) == ld64("HTTP/1.1") || ld64(p) == ld64("HTTP/1.0")) &&
        ld16(p + 8) == ld16("\r\n")) {
        req->minor = (uint32_t)(p[7] - '0');
        *pp = p + 10;
        return 0;
    }
    static const char pattern[] = "HTTP/9.9\r\n";
    size_t have = (size_t)(end - p) < 10 ? (size_t)(end - p) : 10;
    for (size_t i = 0; i < have; i++) {
        if (pattern[i] == '9' ? !is_digit(p[i]) : p[i] != pattern[i]) return -400;
    }
    if (have < 10) return TERN_PARSE_INCOMPLETE;
    /* RFC 9110 §2.5: a recipient of a higher minor version of the major
     * version it implements treats the message as its own highest minor:
     * HTTP/1.2..1.9 are served as HTTP/1.1. Other majors: 505. */
    if (p[5] != '1') return -505;
    req->minor = p[7] == '0' ? 0 : 1;
    *pp = p + 10;
    return 0;
}

/* Runs body for each non-empty element of a comma-separated list (RFC 9110
 * §5.6.1), OWS trimmed. Empty elements are ignored as the RFC requires. */
#define FOR_EACH_ELEMENT(v, ve, es, el, body)                                                      \
    do {                                                                                           \
        const char *it_ = (v);                                                                     \
        while (it_ < (ve)) {                                                                       \
            const char *e_ = memchr(it_, ',', (size_t)((ve)-it_));                                 \
            if (!e_) e_ = (ve);                                                                    \
            const char *es = it_, *ee_ = e_;                                                       \
            while (es < ee_ && (*es == ' ' || *es == '\t')) es++;                                  \
            while (ee_ > es && (ee_[-1] == ' ' || ee_[-1] == '\t')) ee_--;                         \
            size_t el = (size_t)(ee_ - es);                                                        \
            if (el) {                                                                              \
                body                                                                               \
            }                                                                                      \
            it_ = e_ + 1;                                                                          \
        }                                                                                          \
    } while (0)

/* What the header lines said, as bits of one word that stays in a register
 * (the only per-line semantic error, a bad Content-Length or a second Host,
 * is a 400: S_BAD). */
enum {
    S_BAD = 1u << 0,
    S_HOST = 1u << 1,
    S_CLOSE = 1u << 2,
    S_KEEP_ALIVE = 1u << 3,
    S_TE = 1u << 4,
    S_TE_CHUNKED = 1u << 5,
    S_TE_OTHER = 1u << 6,
    S_TE_LAST_CHUNKED = 1u << 7,
    S_TE_TWICE = 1u << 8,
    S_TE_EMPTY = 1u << 9,
    S_TE_FIELDS = 1u << 10, /* a second Transfer-Encoding field */
    S_EXPECT_OTHER = 1u << 11,
};
_Static_assert(S_HOST >> 1 == S_BAD, "note_host shifts S_HOST onto S_BAD");

/* RFC 9112 §3.2: more than one Host is a 400. */
static inline unsigned note_host(unsigned s) {
    return s | (s & S_HOST) >> 1 | S_HOST;
}

/* Header kinds other than Host (which the callers handle inline). Returns
 * the new S_* bits. */
static unsigned header_semantics(enum hdr_kind kind, const char *v, const char *ve, uint32_t *flags,
                                 uint64_t *content_length, unsigned s) {
    switch (kind) {
    case H_CL: {
        /* RFC 9110 §8.6: 1*DIGIT. A list, even of equal values, is refused:
         * two lengths are a smuggling shape whoever is right. */
        if (*flags & TERN_REQ_HAS_LENGTH || v == ve) {
            s |= S_BAD;
            break;
        }
        uint64_t cl = 0;
        for (const char *q = v; q < ve; q++) {
            if (!is_digit(*q) || cl > (uint64_t)(INT64_MAX - (*q - '0')) / 10) {
                return s | S_BAD;
            }
            cl = cl * 10 + (uint64_t)(*q - '0');
        }
        *content_length = cl;
        *flags |= TERN_REQ_HAS_LENGTH;
        break;
    }
    case H_TE:
        if (s & S_TE) s |= S_TE_FIELDS;
        s |= S_TE;
        if (v == ve) s |= S_TE_EMPTY;
        FOR_EACH_ELEMENT(v, ve, es, el, {
            if (ieq(es, el, "chunked", 7)) {
                if (s & S_TE_CHUNKED) s |= S_TE_TWICE;
                s |= S_TE_CHUNKED | S_TE_LAST_CHUNKED;
            } else {
                s = (s | S_TE_OTHER) & ~(unsigned)S_TE_LAST_CHUNKED;
            }
        });
        break;
    case H_CONNECTION:
        /* one option, the usual case, by words (exact: see LOW64) */
        if (ve - v == 10 && (ld64(v) | LOW64) == ld64("keep-ali") &&
            (ld16(v + 8) | 0x2020) == ld16("ve")) {
            s |= S_KEEP_ALIVE;
            break;
        }
        if (ve - v == 5 && (ld32(v) | LOW32) == ld32("clos") && (v[4] | 0x20) == 'e') {
            s |= S_CLOSE;
            break;
        }
        FOR_EACH_ELEMENT(v, ve, es, el, {
            if (ieq(es, el, "close", 5))
                s |= S_CLOSE;
            else if (ieq(es, el, "keep-alive", 10))
                s |= S_KEEP_ALIVE;
            else if (ieq(es, el, "upgrade", 7))
                *flags |= TERN_REQ_CONNECTION_UPGRADE;
        });
        break;
    case H_EXPECT:
        if (ieq(v, (size_t)(ve - v), "100-continue", 12))
            *flags |= TERN_REQ_EXPECT_CONTINUE;
        else
            s |= S_EXPECT_OTHER;
        break;
    case H_UPGRADE:
        *flags |= TERN_REQ_UPGRADE;
        break;
    case H_HOST:
    case H_OTHER:
        break;
    }
    return s;
}

/* The checks finish needs only when a header said something unusual. */
static int finish_rare(tern__http_request *req, unsigned b) {
    if (b & S_BAD) return -400;
    if (req->minor == 1 && !(b & S_HOST)) return -400; /* RFC 9112 §3.2 */
    if (b & S_TE) {
        /* RFC 9112 §6.1/§6.3: TE with CL, or TE in HTTP/1.0, is a smuggling
         * shape; chunked MUST NOT be applied twice; chunked not the final
         * coding leaves the body length unknown: "the server MUST respond
         * with the 400 (Bad Request) status code and then close the
         * connection" (§6.3). Two TE fields are refused the same way: a
         * list split over fields is how proxies are made to disagree. */
        if (req->flags & TERN_REQ_HAS_LENGTH || req->minor == 0 ||
            b & (S_TE_TWICE | S_TE_EMPTY | S_TE_FIELDS) || !(b & S_TE_LAST_CHUNKED))
            return -400;
        /* §6.1: chunked last after a coding we do not know: 501 */
        if (b & S_TE_OTHER) return -501;
        req->flags |= TERN_REQ_CHUNKED;
    }
    /* RFC 9110 §10.1.1: an expectation other than 100-continue cannot be
     * met: 417 */
    if (b & S_EXPECT_OTHER) return -417;
    return 0;
}

static inline int finish(tern__http_request *req, unsigned b) {
    /* one test for the usual head: no error, no TE, no odd Expect, and a
     * Host when HTTP/1.1 needs one */
    if (__builtin_expect(
            (b & (S_BAD | S_TE | S_EXPECT_OTHER)) || (req->minor == 1 && !(b & S_HOST)), 0)) {
        int r = finish_rare(req, b);
        if (r) return r;
    }
    if (req->minor == 1 ? !(b & S_CLOSE) : (b & (S_KEEP_ALIVE | S_CLOSE)) == S_KEEP_ALIVE)
        req->flags |= TERN_REQ_KEEP_ALIVE;
    return 0;
}

/* ---- field lines: shared by requests and responses ------------------------- */

enum field_line {
    FIELD_OK,         /* one field line, *pp past its CRLF */
    FIELD_INCOMPLETE, /* the line does not end within [*pp, end) */
    FIELD_BAD,        /* not a valid field line */
};

/* One field line at *pp (not the blank line, which callers test first):
 * field-name ":" OWS field-value OWS CRLF (RFC 9112 §5, RFC 9110 §5.5).
 * Refuses obs-fold and whitespace before the name (§5.2, §2.2), whitespace
 * before the colon (§5.1), NUL/CTL/DEL and bare CR or LF in the value.
 * Fills *h (the value OWS-trimmed) and, with classify, *kind (Host is
 * recognised by one word compare whatever classify says: it is in every
 * HTTP/1.1 request). Inlined into both parsers, so the request side keeps
 * its speed. */
static inline __attribute__((always_inline)) enum field_line
parse_field_line(const char *buf, const char **pp, const char *end, int classify,
                 tern__http_header *h, enum hdr_kind *kind) {
    const char *p = *pp, *n = p;
    if (*p == ' ' || *p == '\t') return FIELD_BAD;
    size_t nl;
    if (end - p >= 5 && (ld32(p) | LOW32) == ld32("host") && p[4] == ':') {
        /* the word compare is exact for letters (see LOW32), so it also
         * validated the name */
        nl = 4;
        *kind = H_HOST;
        p += 4;
    } else {
        p = name_end(p, end, buf);
        if (p == end) return FIELD_INCOMPLETE;
        if (*p != ':' || p == n) return FIELD_BAD;
        nl = (size_t)(p - n);
        *kind = classify ? header_kind(n, nl) : H_OTHER;
    }
    p++;
    while (p < end && (*p == ' ' || *p == '\t')) p++;
    const char *v = p, *q;
    for (;;) {
        q = scan(p, end, buf, SCAN_CTL);
        if (q == end) return FIELD_INCOMPLETE;
        if (*q != '\t') break;
        p = q + 1;
    }
    if (*q != '\r') return FIELD_BAD; /* NUL, CTL, DEL or bare LF */
    if (q + 1 == end) return FIELD_INCOMPLETE;
    if (q[1] != '\n') return FIELD_BAD; /* bare CR */
    const char *ve = q;
    while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
    h->name_off = (uint32_t)(n - buf);
    h->name_len = (uint32_t)nl;
    h->value_off = (uint32_t)(v - buf);
    h->value_len = (uint32_t)(ve - v);
    *pp = q + 2;
    return FIELD_OK;
}

/* Parses lines from pos (== start for the request line) within [buf, end).
 * With semantics on, pos must be start and the results are filled in. */
static inline int parse_lines(const char *buf, const char *end, const char *start, const char *pos,
                              uint32_t nh, tern__http_request *req, uint32_t max_headers,
                              size_t max_target, int semantics) {
    unsigned s = 0;
    const char *p = pos;
    int r;
    if (p == start) {
        r = parse_request_line(buf, &p, end, req, max_target);
        if (r) {
            if (r == TERN_PARSE_INCOMPLETE) {
                req->scanned = (size_t)(start - buf);
                req->num_headers = 0;
            }
            return r;
        }
        req->host_index = UINT32_MAX;
        req->content_length = 0;
    }
    for (;;) {
        const char *line = p;
        if (p == end) goto incomplete;
        if (*p == '\r') {
            if (p + 1 == end) goto incomplete;
            if (p[1] != '\n') return -400; /* bare CR */
            req->num_headers = nh;
            req->scanned = (size_t)(p + 2 - buf);
            int head_len = (int)(p + 2 - buf);
            if (!semantics) return head_len;
            r = finish(req, s);
            return r ? r : head_len;
        }
        if (nh >= max_headers) {
            /* obs-fold is a syntax error, whatever the count */
            return *p == ' ' || *p == '\t' ? -400 : -431;
        }
        tern__http_header *h = &req->headers[nh];
        enum hdr_kind kind;
        enum field_line fl = parse_field_line(buf, &p, end, semantics, h, &kind);
        if (fl == FIELD_INCOMPLETE) goto incomplete_line;
        if (fl == FIELD_BAD) return -400;
        if (semantics && kind != H_OTHER) {
            const char *v = buf + h->value_off, *ve = v + h->value_len;
            if (kind == H_HOST) {
                s = note_host(s);
                if (!valid_host_port(v, ve)) s |= S_BAD;
                req->host_index = nh;
            } else {
                s = header_semantics(kind, v, ve, &req->flags, &req->content_length, s);
            }
        }
        nh++;
        continue;
    incomplete_line:
        p = line;
    incomplete:
        req->scanned = (size_t)(p - buf);
        req->num_headers = nh;
        return TERN_PARSE_INCOMPLETE;
    }
}

/* The common case in one pass: a head that is complete in [buf, end) and
 * of the usual shape (no leading empty line, one of the methods below, an
 * origin-form target, HTTP/1.1 or HTTP/1.0, field values without HTAB).
 * Every byte is held to the same rules as in parse_lines, so whatever this
 * accepts the general parser accepts with the same results (sanitizer
 * builds check that on every call: check_fast). Returns the head
 * length or a semantic error, or 0 to leave the request to parse_lines:
 * anything else, including every syntax error and an incomplete head. */
static int parse_fast(const char *buf, const char *end, tern__http_request *req,
                      uint32_t max_headers, size_t max_target) {
    /* the shortest head, "GET / HTTP/1.0\r\n\r\n", is 18 bytes */
    if (end - buf < 18) return 0;
    const char *p = buf;
    uint32_t w = ld32(p);
    unsigned method;
    size_t ml;
    if (w == ld32("GET ")) {
        method = TERN_GET, ml = 3;
    } else if (w == ld32("POST") && p[4] == ' ') {
        method = TERN_POST, ml = 4;
    } else if (w == ld32("HEAD") && p[4] == ' ') {
        method = TERN_HEAD, ml = 4;
    } else if (w == ld32("PUT ")) {
        method = TERN_PUT, ml = 3;
    } else if (w == ld32("DELE") && ld32(p + 3) == ld32("ETE ")) {
        method = TERN_DELETE, ml = 6;
    } else if (w == ld32("PATC") && ld16(p + 4) == ld16("H ")) {
        method = TERN_PATCH, ml = 5;
    } else {
        return 0;
    }
    const char *t = p + ml + 1;
    if (*t != '/') return 0;
    size_t avail = (size_t)(end - t);
    const char *limit = t + (avail < max_target + 1 ? avail : max_target + 1);
    const char *te = scan(t, limit, buf, SCAN_TARGET_PATH), *q = NULL;
    if (te < limit && *te == '?') {
        q = te;
        te = scan(te + 1, limit, buf, SCAN_TARGET_QUERY);
    }
    /* also refuses '#', a target over max_target and an incomplete line */
    if (te == limit || *te != ' ') return 0;
    p = te + 1;
    if (end - p < 12 || (ld64(p) != ld64("HTTP/1.1") && ld64(p) != ld64("HTTP/1.0")) ||
        ld16(p + 8) != ld16("\r\n"))
        return 0;
    req->method = method;
    req->method_len = (uint32_t)ml;
    req->target_off = req->path_off = (uint32_t)(t - buf);
    req->target_len = (uint32_t)(te - t);
    req->path_len = (uint32_t)((q ? q : te) - t);
    req->query_off = (uint32_t)((q ? q + 1 : te) - buf);
    req->query_len = q ? (uint32_t)(te - q - 1) : 0;
    req->minor = (uint32_t)(p[7] - '0');
    req->authority_off = req->target_off;
    req->authority_len = 0;
    req->flags = 0;
    req->host_index = UINT32_MAX;
    req->content_length = 0;
    p += 10;

    unsigned s = 0;
    uint32_t nh = 0;
    for (;;) {
        if (end - p < 2) return 0;
        if (ld16(p) == ld16("\r\n")) break;
        if (nh >= max_headers) return 0;
        const char *n = p;
        enum hdr_kind kind;
        if (end - p >= 5 && (ld32(p) | LOW32) == ld32("host") && p[4] == ':') {
            kind = H_HOST;
            p += 4;
        } else {
            p = name_end(p, end, buf);
            if (p == end || *p != ':' || p == n) return 0;
            kind = header_kind(n, (size_t)(p - n));
        }
        const char *ne = p++;
        if (p < end && *p == ' ') p++; /* the usual single SP */
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        const char *v = p, *ve = scan(p, end, buf, SCAN_CTL);
        if (end - ve < 2 || ld16(ve) != ld16("\r\n")) return 0;
        p = ve + 2;
        while (ve > v && ve[-1] == ' ') ve--; /* no HTAB got this far */
        tern__http_header *h = &req->headers[nh];
        h->name_off = (uint32_t)(n - buf);
        h->name_len = (uint32_t)(ne - n);
        h->value_off = (uint32_t)(v - buf);
        h->value_len = (uint32_t)(ve - v);
        if (kind == H_HOST) {
            s = note_host(s);
            if (!valid_host_port(v, ve)) s |= S_BAD;
            req->host_index = nh;
        } else if (kind != H_OTHER) {
            s = header_semantics(kind, v, ve, &req->flags, &req->content_length, s);
        }
        nh++;
    }
    p += 2;
    req->num_headers = nh;
    req->scanned = (size_t)(p - buf);
    int r = finish(req, s);
    return r ? r : (int)(p - buf);
}

/* Everything parse_fast leaves: leading empty lines, a head split across
 * reads, the rarer forms and every error. */
static __attribute__((noinline)) int
parse_general(const char *buf, size_t len, tern__http_request *req, const tern__http_limits *lim) {
    /* offsets are 32-bit and the length is returned as an int */
    size_t max_head = lim->max_head < (size_t)INT_MAX ? lim->max_head : (size_t)INT_MAX;
    size_t bound = len < max_head ? len : max_head;
    size_t max_target = lim->max_target < max_head ? lim->max_target : max_head;
    const char *end = buf + bound;

    /* RFC 9112 §2.2: ignore empty lines before the request line */
    size_t s = 0;
    while (s + 1 < bound && buf[s] == '\r' && buf[s + 1] == '\n') s += 2;
    const char *start = buf + s;

    int r;
    if (req->scanned > s && req->scanned <= bound) {
        /* resume: validate the lines that completed since the last call,
         * then parse the whole head once more for the results */
        r = parse_lines(buf, end, start, buf + req->scanned, req->num_headers, req,
                        lim->max_headers, max_target, 0);
        if (r <= 0) goto out;
        end = buf + r;
    }
    r = parse_lines(buf, end, start, start, 0, req, lim->max_headers, max_target, 1);
out:
    if (r == TERN_PARSE_INCOMPLETE && len > max_head) return req->scanned == s ? -414 : -431;
    return r;
}

/* Builds with AddressSanitizer (the unit tests, the fuzz targets, make
 * test) parse every head that parse_fast answered once more with the
 * general parser, from the state the call started in, and abort unless
 * both agree on everything. Benchmarks and release builds do not: -D
 * TERN_PARSE_CHECK_FAST=0/1 overrides. */
#include "rt/sanitizers.h"
#ifndef TERN_PARSE_CHECK_FAST
#define TERN_PARSE_CHECK_FAST TERN_ASAN
#endif

#if TERN_PARSE_CHECK_FAST
static void check_fast(const char *buf, size_t len, const tern__http_limits *lim, int r,
                       const tern__http_request *f, size_t scanned, uint32_t num_headers) {
    tern__http_request g;
    memset(&g, 0, sizeof g);
    g.scanned = scanned;
    g.num_headers = num_headers;
    g.headers = malloc((lim->max_headers ? lim->max_headers : 1) * sizeof(*g.headers));
    if (!g.headers) return;
    int gr = parse_general(buf, len, &g, lim);
    int same = gr == r;
    if (same && r > 0)
        same = g.method == f->method && g.method_len == f->method_len &&
               g.target_off == f->target_off && g.target_len == f->target_len &&
               g.path_off == f->path_off && g.path_len == f->path_len &&
               g.query_off == f->query_off && g.query_len == f->query_len && g.minor == f->minor &&
               g.authority_off == f->authority_off && g.authority_len == f->authority_len &&
               g.flags == f->flags && g.host_index == f->host_index &&
               g.content_length == f->content_length && g.scanned == f->scanned &&
               g.num_headers == f->num_headers &&
               !memcmp(g.headers, f->headers, f->num_headers * sizeof(*g.headers));
    free(g.headers);
    if (!same) {
        fprintf(stderr, "tern: parse_fast (%d) and parse_general (%d) disagree on \"%.*s\"\n", r,
                gr, (int)(len < 256 ? len : 256), buf);
        abort();
    }
}
#endif

int tern__http_parse_request(const char *buf, size_t len, tern__http_request *req,
                             const tern__http_limits *lim) {
    /* the same bounds as parse_general */
    size_t max_head = lim->max_head < (size_t)INT_MAX ? lim->max_head : (size_t)INT_MAX;
    size_t bound = len < max_head ? len : max_head;
    size_t max_target = lim->max_target < max_head ? lim->max_target : max_head;
#if TERN_PARSE_CHECK_FAST
    size_t scanned = req->scanned;
    uint32_t num_headers = req->num_headers;
#endif
    int r = parse_fast(buf, buf + bound, req, lim->max_headers, max_target);
    if (!r) return parse_general(buf, len, req, lim);
#if TERN_PARSE_CHECK_FAST
    check_fast(buf, len, lim, r, req, scanned, num_headers);
#endif
    return r;
}

/* ---- responses -------------------------------------------------------------- */

/* Response status-line (RFC 9112 §4). 0 with *pp past its CRLF, or a
 * tern__http_resp_result. */
static int parse_status_line(const char *buf, const char **pp, const char *end,
                             tern__http_response *resp) {
    const char *p = *pp;
    static const char pattern[] = "HTTP/9.9 999";
    size_t have = (size_t)(end - p) < 12 ? (size_t)(end - p) : 12;
    for (size_t i = 0; i < have; i++)
        if (pattern[i] == '9' ? !is_digit(p[i]) : p[i] != pattern[i]) return TERN_RESP_MALFORMED;
    if (have < 12) return TERN_RESP_INCOMPLETE;
    /* RFC 9110 §2.5, as for requests; another major is not HTTP/1 framing */
    if (p[5] != '1') return TERN_RESP_MALFORMED;
    resp->minor = p[7] == '0' ? 0 : 1;
    int status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    /* RFC 9110 §15: the first digit is the class, 1..5; a client treats
     * an unknown code of a known class as x00 of it, but a class beyond 5
     * (999) means nothing: refuse it */
    if (status < 100 || status > 599) return TERN_RESP_MALFORMED;
    resp->status = status;
    p += 12;
    if (p == end) return TERN_RESP_INCOMPLETE;
    if (*p == ' ')
        p++;
    else if (*p != '\r')
        return TERN_RESP_MALFORMED;
    /* reason-phrase: HTAB / SP / VCHAR / obs-text */
    const char *r = p, *q;
    for (;;) {
        q = scan(p, end, buf, SCAN_CTL);
        if (q == end) return TERN_RESP_INCOMPLETE;
        if (*q != '\t') break;
        p = q + 1;
    }
    if (*q != '\r') return TERN_RESP_MALFORMED;
    if (q + 1 == end) return TERN_RESP_INCOMPLETE;
    if (q[1] != '\n') return TERN_RESP_MALFORMED;
    resp->reason_off = (uint32_t)(r - buf);
    resp->reason_len = (uint32_t)(q - r);
    *pp = q + 2;
    return 0;
}

/* The framing once the head is complete (RFC 9112 §6.3). 0 or MALFORMED. */
static int finish_response(tern__http_response *resp, unsigned b) {
    if (b & S_BAD) return TERN_RESP_MALFORMED;
    if (b & S_TE) {
        /* the request side's smuggling shapes, seen from the client: a
         * response the upstream framed two ways is not read either way */
        if (resp->flags & TERN_RESP_HAS_LENGTH || resp->minor == 0 ||
            b & (S_TE_TWICE | S_TE_EMPTY | S_TE_FIELDS))
            return TERN_RESP_MALFORMED;
        resp->flags |= b & S_TE_LAST_CHUNKED ? TERN_RESP_CHUNKED : TERN_RESP_UNTIL_CLOSE;
    }
    if (resp->minor == 1 ? !(b & S_CLOSE) : (b & (S_KEEP_ALIVE | S_CLOSE)) == S_KEEP_ALIVE)
        resp->flags |= TERN_RESP_KEEP_ALIVE;
    return 0;
}

/* Field lines from *pp to the blank line. Head length, or a result. */
static int parse_response_fields(const char *buf, const char *p, const char *end,
                                 tern__http_response *resp, uint32_t max_headers) {
    unsigned s = resp->state;
    for (;;) {
        if (p == end) return TERN_RESP_INCOMPLETE;
        if (*p == '\r') {
            if (p + 1 == end) return TERN_RESP_INCOMPLETE;
            if (p[1] != '\n') return TERN_RESP_MALFORMED;
            p += 2;
            resp->scanned = (size_t)(p - buf);
            int r = finish_response(resp, s);
            return r ? r : (int)(p - buf);
        }
        if (resp->num_headers >= max_headers) return TERN_RESP_TOO_MANY_HEADERS;
        tern__http_header *h = &resp->headers[resp->num_headers];
        enum hdr_kind kind;
        enum field_line fl = parse_field_line(buf, &p, end, 1, h, &kind);
        if (fl == FIELD_BAD) return TERN_RESP_MALFORMED;
        if (fl == FIELD_INCOMPLETE) return TERN_RESP_INCOMPLETE;
        /* Host and Expect mean nothing in a response */
        if (kind != H_OTHER && kind != H_HOST && kind != H_EXPECT) {
            const char *v = buf + h->value_off;
            s = header_semantics(kind, v, v + h->value_len, &resp->flags, &resp->content_length, s);
        }
        resp->num_headers++;
        resp->scanned = (size_t)(p - buf);
        resp->state = s;
    }
}

int tern__http_parse_response(const char *buf, size_t len, tern__http_response *resp,
                              const tern__http_limits *lim) {
    size_t max_head = lim->max_head < (size_t)INT_MAX ? lim->max_head : (size_t)INT_MAX;
    const char *end = buf + (len < max_head ? len : max_head);
    const char *p = buf + resp->scanned;
    int r = 0;
    if (resp->scanned == 0) {
        resp->flags = 0;
        resp->content_length = 0;
        resp->num_headers = 0;
        resp->state = 0;
        r = parse_status_line(buf, &p, end, resp);
        if (r == 0) resp->scanned = (size_t)(p - buf);
    }
    if (r == 0) r = parse_response_fields(buf, p, end, resp, lim->max_headers);
    if (r == TERN_RESP_INCOMPLETE && len >= max_head) return TERN_RESP_TOO_LARGE;
    return r;
}
