/* Percent-decoding, path normalisation and query lookup (see url.h).
 *
 * tern__path_normalize decodes first and resolves dot segments second, as
 * nginx does: "%2e%2e" is a ".." and a decoded "%2F" separates segments. The
 * order matters for safety: resolving before decoding would let "/%2e%2e/"
 * through as an ordinary name and a file handler that decodes later would
 * climb out of its root. Both passes only shrink the text, so they run in
 * place in the caller's buffer with no allocation. */
#include "http/url.h"

#include <stdint.h>
#include <string.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

static int hex_value(unsigned char c) {
    if ((unsigned)(c - '0') < 10) return c - '0';
    c |= 0x20; /* ASCII letters: fold case */
    if ((unsigned)(c - 'a') < 6) return c - 'a' + 10;
    return -1;
}

/* The byte encoded by "%XY" at p (p[0] == '%', two bytes readable), or -1. */
static int escape_value(const char *p) {
    int hi = hex_value((unsigned char)p[1]), lo = hex_value((unsigned char)p[2]);
    return (hi | lo) < 0 ? -1 : hi << 4 | lo;
}

ssize_t tern__path_normalize(const char *in, size_t len, char *out) {
    const char *p = in, *end = in + len;
    size_t n = 0, r = 0, o = 0;

    if (len == 0 || in[0] != '/') return -1;

    /* Pass 1: percent-decode into out, copying the runs between escapes. */
    while (p < end) {
        const char *pct = memchr(p, '%', (size_t)(end - p));
        size_t run = (size_t)((pct ? pct : end) - p);
        int c;

        memcpy(out + n, p, run);
        n += run;
        if (!pct) break;
        if (end - pct < 3 || (c = escape_value(pct)) < 0) return -1;
        /* An encoded NUL would cut the path short for any C string API below
         * us (open(2), a log line) while routing saw the whole of it. */
        if (c == 0) return -1;
        out[n++] = (char)c;
        p = pct + 3;
    }

    /* Pass 2: remove_dot_segments (RFC 3986 §5.2.4) in place. out[0..n) is
     * "/seg/seg..."; the output kept in out[0..o) is also a run of "/seg"
     * (o <= r always, so copying forwards is safe). A "." or ".." as the last
     * segment leaves a trailing "/" as the RFC's rules B and C do ("/a/." ->
     * "/a/", "/a/.." -> "/"). Empty segments are kept: slashes not merged. */
    while (r < n) {
        size_t s = r + 1; /* out[r] == '/' */
        const char *slash = memchr(out + s, '/', n - s);
        size_t e = slash ? (size_t)(slash - out) : n;
        size_t seg = e - s;
        int dot = 0;

        if (seg == 1 && out[s] == '.') {
            dot = 1;
        } else if (seg == 2 && out[s] == '.' && out[s + 1] == '.') {
            /* Nothing left to climb out of: refuse rather than clamp, so a
             * request for "/../etc/passwd" is an error, never "/etc/passwd". */
            if (o == 0) return -1;
            while (out[--o] != '/') {
            }
            dot = 1;
        } else {
            if (o != r) memmove(out + o, out + r, e - r);
            o += e - r;
        }
        if (dot && e == n) out[o++] = '/';
        r = e;
    }
    if (o == 0) out[o++] = '/';
    out[o] = '\0';
    return (ssize_t)o;
}

#ifdef __SSE2__
/* Bit i set when byte i of v is '%' or '.'. */
static inline unsigned pct_or_dot(__m128i v) {
    return (unsigned)_mm_movemask_epi8(
        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('%')), _mm_cmpeq_epi8(v, _mm_set1_epi8('.'))));
}

static inline __m128i load32(const char *p) {
    int32_t x;
    memcpy(&x, p, 4);
    return _mm_cvtsi32_si128(x);
}
#else
static inline uint64_t path_ld64(const char *p) {
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

/* Non-zero when a byte of w is '%' or '.' (a borrow can flag a byte next
 * to a real match, never one in a word without any). */
static inline uint64_t pct_or_dot(uint64_t w) {
    const uint64_t ones = 0x0101010101010101u, high = ones << 7;
    uint64_t p = w ^ ones * '%', d = w ^ ones * '.';
    return (((p - ones) & ~p) | ((d - ones) & ~d)) & high;
}
#endif

/* The exact answer, for a path holding a '%' or a '.'. */
static __attribute__((noinline)) int needs_normalize_slow(const char *in, size_t len) {
    const char *end = in + len;

    if (memchr(in, '%', len)) return 1;
    /* A dot segment is "." or ".." between a '/' and the next '/' or the end;
     * dots inside names ("/app.js", "/.well-known", "/...") are fine. */
    for (const char *p = in; (p = memchr(p, '.', (size_t)(end - p))); p++) {
        if (p == in || p[-1] != '/') continue;
        if (p + 1 == end || p[1] == '/') return 1;
        if (p[1] == '.' && (p + 2 == end || p[2] == '/')) return 1;
    }
    return 0;
}

/* Most paths hold neither '%' nor '.', which this finds out with a few
 * wide loads (overlapping so that none reads outside in[0..len)); only a
 * path holding one goes to the exact check. Measured with callgrind on
 * "/plaintext": 62 instructions with two memchr calls before, 15 now. */
int tern__path_needs_normalize(const char *in, size_t len) {
    uint64_t any = 0;
#ifdef __SSE2__
    if (len >= 16) {
        size_t i = 0;
        for (; i + 16 < len; i += 16) any |= pct_or_dot(_mm_loadu_si128((const void *)(in + i)));
        any |= pct_or_dot(_mm_loadu_si128((const void *)(in + len - 16)));
    } else if (len >= 8) {
        any = pct_or_dot(_mm_unpacklo_epi64(_mm_loadl_epi64((const void *)in),
                                            _mm_loadl_epi64((const void *)(in + len - 8))));
    } else if (len >= 4) {
        any = pct_or_dot(_mm_unpacklo_epi32(load32(in), load32(in + len - 4)));
    } else {
        for (size_t i = 0; i < len; i++) any |= in[i] == '%' || in[i] == '.';
    }
#else
    if (len >= 8) {
        size_t i = 0;
        for (; i + 8 < len; i += 8) any |= pct_or_dot(path_ld64(in + i));
        any |= pct_or_dot(path_ld64(in + len - 8));
    } else {
        for (size_t i = 0; i < len; i++) any |= in[i] == '%' || in[i] == '.';
    }
#endif
    return any ? needs_normalize_slow(in, len) : 0;
}

tern__query_status tern__query_decode(const char *in, size_t len, char *out, size_t *out_len,
                                      int plus_is_space) {
    size_t n = 0;

    for (size_t i = 0; i < len; i++) {
        char c = in[i];
        if (c == '%') {
            int v;
            if (len - i < 3 || (v = escape_value(in + i)) < 0) return TERN__QUERY_BAD_ESCAPE;
            /* a decoded NUL would silently end the C string a handler gets:
             * "a=1%00evil" must not read as "1" (the path decoder refuses
             * it for the same reason) */
            if (v == 0) return TERN__QUERY_NUL;
            c = (char)v;
            i += 2;
        } else if (c == '+' && plus_is_space) {
            c = ' ';
        }
        out[n++] = c;
    }
    out[n] = '\0';
    *out_len = n;
    return TERN__QUERY_OK;
}

ssize_t tern__url_decode(const char *in, size_t len, char *out, int plus_is_space) {
    size_t n;
    if (tern__query_decode(in, len, out, &n, plus_is_space) != TERN__QUERY_OK) return -1;
    return (ssize_t)n;
}

/* Next byte of s[*i..len) in form-decoded terms (application/x-www-form-
 * urlencoded: '+' is a space). Lookup must not fail on a malformed query, so
 * a '%' not followed by two hex digits stands for itself. */
static int next_form_byte(const char *s, size_t len, size_t *i) {
    int v;

    if (s[*i] == '+') {
        (*i)++;
        return ' ';
    }
    if (s[*i] == '%' && len - *i >= 3 && (v = escape_value(s + *i)) >= 0) {
        *i += 3;
        return v;
    }
    return (unsigned char)s[(*i)++];
}

/* Compares the decoded forms of a and b without decoding into a buffer. */
static int form_equal(const char *a, size_t alen, const char *b, size_t blen) {
    size_t i = 0, j = 0;

    /* the key from the query is decoded; the name the caller asks for is
     * taken literally, so tern_req_query(ctx, "c++") finds "c%2B%2B=..." */
    while (i < alen && j < blen)
        if (next_form_byte(a, alen, &i) != (unsigned char)b[j++]) return 0;
    return i == alen && j == blen;
}

int tern__query_find(const char *q, size_t qlen, const char *name, const char **val,
                    size_t *val_len) {
    size_t nlen = strlen(name), start = 0;

    while (start < qlen) {
        const char *amp = memchr(q + start, '&', qlen - start);
        size_t end = amp ? (size_t)(amp - q) : qlen;
        const char *eq = memchr(q + start, '=', end - start);
        size_t key_end = eq ? (size_t)(eq - q) : end;

        /* empty parameters ("a=1&&b=2", a trailing '&') name nothing */
        if (end > start && form_equal(q + start, key_end - start, name, nlen)) {
            if (val) *val = eq ? eq + 1 : q + end;
            if (val_len) *val_len = eq ? end - key_end - 1 : 0;
            return 1;
        }
        start = end + 1;
    }
    return 0;
}
