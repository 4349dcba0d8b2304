/* Fuzz target for the URL helpers.
 *
 * Every input is checked three ways:
 *  - as a path ('/' prepended unless present): tern__path_normalize must agree
 *    with a slow, literal transcription of RFC 3986 §5.2.4 (string rules A-E,
 *    refusing rule C when the output buffer is empty, i.e. ".." above root)
 *    run on the decoded text; on success the output is no longer than the
 *    input, starts with '/', has no "/./" or "/../" segment nor a trailing
 *    "/." or "/..", and is a fixed point (normalising it again, with '%'
 *    re-encoded as %25, gives it back); a path with no '%' and no dot segment
 *    per tern__path_needs_normalize must come back unchanged;
 *  - as a string to percent-decode, both '+' modes, against a reference;
 *  - as "name\nquery" for tern__query_find, against a reference that decodes
 *    keys into buffers (the name itself is literal).
 * Inputs live in exact-size heap copies so ASan flags any over-read. */
#include "http/url.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define ASSERT(c)                                                                                  \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c);                                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int ref_hex(int c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Strict decode; -1 on a bad escape or (nul_bad) a decoded NUL. */
static long ref_decode(const char *in, size_t len, char *out, int plus, int nul_bad) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (in[i] == '%') {
            if (i + 2 >= len || ref_hex(in[i + 1]) < 0 || ref_hex(in[i + 2]) < 0) return -1;
            out[n] = (char)(ref_hex(in[i + 1]) * 16 + ref_hex(in[i + 2]));
            if (nul_bad && out[n] == 0) return -1;
            n++;
            i += 2;
        } else {
            out[n++] = plus && in[i] == '+' ? ' ' : in[i];
        }
    }
    return (long)n;
}

static int starts(const char *s, size_t n, const char *p) {
    size_t pl = strlen(p);
    return n >= pl && memcmp(s, p, pl) == 0;
}
static int equals(const char *s, size_t n, const char *p) {
    return n == strlen(p) && starts(s, n, p);
}

/* RFC 3986 §5.2.4, rule by rule, on buffers; -1 for ".." above root. */
static long ref_remove_dots(const char *path, size_t len, char *out) {
    char *in = malloc(len + 1);
    size_t n = len, o = 0;
    long ret;

    memcpy(in, path, len);
    while (n) {
        if (starts(in, n, "../") || starts(in, n, "./")) { /* A */
            size_t k = in[0] == '.' && in[1] == '.' ? 3 : 2;
            memmove(in, in + k, n -= k);
        } else if (starts(in, n, "/./") || equals(in, n, "/.")) { /* B */
            size_t k = n == 2 ? 1 : 2;
            memmove(in + 1, in + 1 + k, n - 1 - k);
            n -= k;
            in[0] = '/';
        } else if (starts(in, n, "/../") || equals(in, n, "/..")) { /* C */
            size_t k = n == 3 ? 2 : 3;
            memmove(in + 1, in + 1 + k, n - 1 - k);
            n -= k;
            in[0] = '/';
            if (o == 0) {
                ret = -1; /* nothing to remove: above root */
                goto done;
            }
            while (o > 0 && out[o - 1] != '/') o--;
            if (o > 0) o--;                                     /* and its preceding '/' */
        } else if (equals(in, n, ".") || equals(in, n, "..")) { /* D */
            n = 0;
        } else { /* E: move "/seg" (or "seg") up to the next '/' */
            size_t k = in[0] == '/';
            while (k < n && in[k] != '/') k++;
            memcpy(out + o, in, k);
            o += k;
            memmove(in, in + k, n -= k);
        }
    }
    ret = (long)o;
done:
    free(in);
    return ret;
}

static void check_path(const char *data, size_t size) {
    size_t len = size + (size == 0 || data[0] != '/');
    char *in = malloc(len), *out = malloc(len + 1), *dec = malloc(len + 1);
    char *ref = calloc(1, len + 2), *enc, *out2;
    ssize_t n;
    long d, r = -1;
    size_t elen = 0;

    in[0] = '/';
    memcpy(in + len - size, data, size);
    n = tern__path_normalize(in, len, out);

    d = ref_decode(in, len, dec, 0, 1);
    if (d >= 0) r = ref_remove_dots(dec, (size_t)d, ref);
    ASSERT(n == r);
    if (n < 0) goto out;
    ASSERT(memcmp(out, ref, (size_t)n) == 0);

    ASSERT((size_t)n <= len && out[n] == '\0');
    ASSERT(n >= 1 && out[0] == '/');
    ASSERT(!memmem(out, (size_t)n, "/./", 3) && !memmem(out, (size_t)n, "/../", 4));
    ASSERT(!(n >= 2 && memcmp(out + n - 2, "/.", 2) == 0));
    ASSERT(!(n >= 3 && memcmp(out + n - 3, "/..", 3) == 0));
    if (!tern__path_needs_normalize(in, len)) ASSERT((size_t)n == len && !memcmp(out, in, len));
    if (!memchr(out, '%', (size_t)n)) ASSERT(!tern__path_needs_normalize(out, (size_t)n));

    /* fixed point: re-encode '%' and normalise again */
    for (ssize_t i = 0; i < n; i++) elen += out[i] == '%' ? 3 : 1;
    enc = malloc(elen);
    out2 = malloc(elen + 1);
    elen = 0;
    for (ssize_t i = 0; i < n; i++) {
        if (out[i] == '%') {
            memcpy(enc + elen, "%25", 3);
            elen += 3;
        } else {
            enc[elen++] = out[i];
        }
    }
    ASSERT(tern__path_normalize(enc, elen, out2) == n);
    ASSERT(memcmp(out2, out, (size_t)n) == 0);
    free(enc);
    free(out2);
out:
    free(in);
    free(out);
    free(dec);
    free(ref);
}

static void check_decode(const char *data, size_t size) {
    char *in = malloc(size ? size : 1), *out = malloc(size + 1), *ref = malloc(size + 1);

    memcpy(in, data, size);
    for (int plus = 0; plus < 2; plus++) {
        ssize_t n = tern__url_decode(in, size, out, plus);
        long r = ref_decode(in, size, ref, plus, 1); /* an encoded NUL is refused */
        ASSERT(n == r);
        if (n >= 0) ASSERT(out[n] == '\0' && memcmp(out, ref, (size_t)n) == 0);
        /* the status tells a bad escape from an encoded NUL */
        size_t sn = 0;
        tern__query_status st = tern__query_decode(in, size, out, &sn, plus);
        long r0 = ref_decode(in, size, ref, plus, 0);
        if (r >= 0)
            ASSERT(st == TERN__QUERY_OK && sn == (size_t)r);
        else if (r0 >= 0)
            ASSERT(st == TERN__QUERY_NUL);
        else
            ASSERT(st == TERN__QUERY_NUL || st == TERN__QUERY_BAD_ESCAPE);
    }
    free(in);
    free(out);
    free(ref);
}

/* Lenient form decoding: '+' is space, a bad '%' stays literal. */
static size_t ref_form(const char *s, size_t len, char *out) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '+') {
            out[n++] = ' ';
        } else if (s[i] == '%' && i + 2 < len && ref_hex(s[i + 1]) >= 0 && ref_hex(s[i + 2]) >= 0) {
            out[n++] = (char)(ref_hex(s[i + 1]) * 16 + ref_hex(s[i + 2]));
            i += 2;
        } else {
            out[n++] = s[i];
        }
    }
    return n;
}

static void check_query(const char *data, size_t size) {
    const char *nl = memchr(data, '\n', size);
    char *name, *q, *kbuf, *nbuf;
    size_t qlen, nlen, ndec, val_len = 0;
    const char *val = NULL, *rval = NULL;
    size_t rlen = 0;
    int found, rfound = 0;

    if (nl) {
        nlen = strnlen(data, (size_t)(nl - data));
        name = malloc(nlen + 1);
        memcpy(name, data, nlen);
        qlen = size - (size_t)(nl - data) - 1;
        q = malloc(qlen ? qlen : 1);
        memcpy(q, nl + 1, qlen);
    } else {
        nlen = 1;
        name = strdup("a");
        qlen = size;
        q = malloc(qlen ? qlen : 1);
        memcpy(q, data, qlen);
    }
    name[nlen] = '\0';

    found = tern__query_find(q, qlen, name, &val, &val_len);

    nbuf = malloc(nlen + 1);
    kbuf = malloc(qlen + 1);
    /* the name is matched literally; only query keys are decoded */
    memcpy(nbuf, name, nlen);
    ndec = nlen;
    for (size_t s = 0; s < qlen && !rfound;) {
        size_t e = s, k;
        while (e < qlen && q[e] != '&') e++;
        for (k = s; k < e && q[k] != '='; k++) {
        }
        if (e > s && ref_form(q + s, k - s, kbuf) == ndec && !memcmp(kbuf, nbuf, ndec)) {
            rfound = 1;
            rval = k < e ? q + k + 1 : q + e;
            rlen = k < e ? e - k - 1 : 0;
        }
        s = e + 1;
    }
    ASSERT(found == rfound);
    if (found) ASSERT(val == rval && val_len == rlen);
    free(name);
    free(q);
    free(nbuf);
    free(kbuf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size > 4096) return 0;
    check_path((const char *)data, size);
    check_decode((const char *)data, size);
    check_query((const char *)data, size);
    return 0;
}
