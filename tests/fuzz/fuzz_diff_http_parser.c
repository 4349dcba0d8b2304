/* Differential fuzz target: tern's request-head parser against Node's
 * http_parser 2.9 (Debian's libhttp-parser, link with -lhttp_parser).
 *
 * Every input goes through both parsers as one buffer. The outcomes are
 * ACCEPT (a complete head), INCOMPLETE (needs more bytes) or REJECT. When
 * both accept, the method, target, version, header count, Content-Length,
 * chunked framing, keep-alive and head length must agree.
 *
 * tern is deliberately stricter than http_parser in many places (and
 * http_parser in a few). Each such class is documented, with the RFC
 * section that decides it, in tests/fuzz/DIFFERENTIAL.md, and encoded here
 * as a predicate over an independent, deliberately simple lexing of the
 * input (struct feat). A disagreement is explained when a predicate of the
 * right direction (and, for a tern rejection, the right status) holds;
 * anything else aborts with both results printed. DIFF_VERBOSE=1 in the
 * environment prints both results for every input (handy with a single
 * file: ./fuzz_diff_http_parser FILE). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define NO_HTTP_PARSER                                                                             \
    "fuzz_diff_http_parser: http_parser is not available: install libhttp-parser-dev and link "    \
    "with -lhttp_parser\n"

#if !__has_include(<http_parser.h>)
/* Without the header the target still builds (the rest of the build must not break on a
 * machine without the package) but refuses to run: it never passes silently. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    (void)data, (void)size;
    fputs(NO_HTTP_PARSER, stderr);
    abort();
}
#else
#include <http_parser.h>

#include "http/parse.c"

/* Weak, so that the target still links (and then says what is missing) when the build
 * rule does not add -lhttp_parser, instead of breaking the whole build. */
#pragma weak http_parser_init
#pragma weak http_parser_settings_init
#pragma weak http_parser_execute
#pragma weak http_parser_pause
#pragma weak http_should_keep_alive
#pragma weak http_method_str
#pragma weak http_errno_name

/* tern-demo's limits (tern_config_init defaults) */
#define MAX_HEADERS 100
static const tern__http_limits limits = {
    .max_head = 16384, .max_target = 8192, .max_headers = MAX_HEADERS};

enum outcome { ACCEPT, INCOMPLETE, REJECT };
static const char *const outcome_name[] = {"accept", "incomplete", "reject"};

/* ---- tern ---------------------------------------------------------------- */

typedef struct {
    enum outcome out;
    int r; /* head length or negated status */
    tern__http_request req;
    tern__http_header h[MAX_HEADERS];
} tern__result;

static void run_tern(const char *buf, size_t len, tern__result *t) {
    memset(t, 0, sizeof *t);
    t->req.headers = t->h;
    t->r = tern__http_parse_request(buf, len, &t->req, &limits);
    t->out = t->r > 0 ? ACCEPT : t->r == TERN_PARSE_INCOMPLETE ? INCOMPLETE : REJECT;
}

/* ---- http_parser ---------------------------------------------------------- */

#define URL_MAX 16384

typedef struct {
    enum outcome out;
    enum http_errno err;
    size_t consumed;  /* bytes parsed (up to the error, or the whole head) */
    size_t head_len;  /* with ACCEPT */
    unsigned headers; /* header fields seen */
    int in_value;     /* last callback was a value */
    int keep_alive;
    char url[URL_MAX];
    size_t url_len;
    http_parser p;
} hp_result;

static int hp_url(http_parser *p, const char *at, size_t n) {
    hp_result *h = p->data;
    if (h->url_len + n <= URL_MAX) memcpy(h->url + h->url_len, at, n);
    h->url_len += n;
    return 0;
}

static int hp_field(http_parser *p, const char *at, size_t n) {
    hp_result *h = p->data;
    /* a field may arrive in several callbacks: count transitions */
    if (h->in_value || h->headers == 0) h->headers++;
    h->in_value = 0;
    (void)at, (void)n;
    return 0;
}

static int hp_value(http_parser *p, const char *at, size_t n) {
    hp_result *h = p->data;
    h->in_value = 1;
    (void)at, (void)n;
    return 0;
}

static int hp_headers_complete(http_parser *p) {
    hp_result *h = p->data;
    h->keep_alive = http_should_keep_alive(p);
    /* stop right after the head: what follows is body or the next request */
    http_parser_pause(p, 1);
    return 0;
}

static void run_hp(const char *buf, size_t len, hp_result *h) {
    static http_parser_settings settings;
    if (!settings.on_url) {
        http_parser_settings_init(&settings);
        settings.on_url = hp_url;
        settings.on_header_field = hp_field;
        settings.on_header_value = hp_value;
        settings.on_headers_complete = hp_headers_complete;
    }
    memset(h, 0, offsetof(hp_result, url));
    h->url_len = 0;
    http_parser_init(&h->p, HTTP_REQUEST);
    h->p.data = h;
    size_t n = http_parser_execute(&h->p, &settings, buf, len);
    h->err = HTTP_PARSER_ERRNO(&h->p);
    h->consumed = n;
    if (h->err == HPE_PAUSED) {
        /* paused on the head's final LF: resume on that byte alone, which
         * runs http_parser's end-of-head checks (Transfer-Encoding) */
        h->head_len = n + 1;
        h->consumed = n + 1;
        http_parser_pause(&h->p, 0);
        http_parser_execute(&h->p, &settings, buf + n, 1);
        h->err = HTTP_PARSER_ERRNO(&h->p);
        h->out = (h->err == HPE_OK || h->err == HPE_PAUSED) ? ACCEPT : REJECT;
    } else {
        h->out = h->err == HPE_OK ? INCOMPLETE : REJECT;
    }
}

/* ---- an independent, loose lexing of the input ---------------------------
 * Lines are split on LF (a CR before it is dropped); the head ends at the
 * first empty line. Only the part http_parser looked at is considered, so a
 * feature after the point where the head ended cannot explain anything. */

enum {
    F_BARE_LF = 1u << 0,        /* LF without CR before it */
    F_BARE_CR = 1u << 1,        /* CR not followed by LF */
    F_FOLD = 1u << 2,           /* header line starting with SP/HTAB */
    F_RL_WS = 1u << 3,          /* request line not "tok SP target SP version" */
    F_HTTP09 = 1u << 4,         /* request line without a version */
    F_VERSION = 1u << 5,        /* version other than exactly HTTP/1.0 or HTTP/1.1 */
    F_TARGET_BYTES = 1u << 6,   /* target byte outside 0x21..0x7E */
    F_TARGET_FORM = 1u << 7,    /* target form tern refuses (see target_form_ok) */
    F_NAME = 1u << 8,           /* header name empty or not a token */
    F_HOST = 1u << 9,           /* HTTP/1.1 head without Host, two Host, or an invalid Host value */
    F_CL = 1u << 10,            /* Content-Length not one 1*DIGIT <= 2^63-1, or with TE */
    F_TE = 1u << 11,            /* TE in 1.0, empty, chunked twice, or other coding */
    F_LIMIT = 1u << 12,         /* over tern's limits */
    F_HP_METHOD = 1u << 13,     /* method token http_parser does not know */
    F_AUTHORITY = 1u << 14,     /* target with an authority: absolute-form, or CONNECT */
    F_KA10 = 1u << 15,          /* HTTP/1.0 with both "close" and "keep-alive" */
    F_CTL = 1u << 16,           /* NUL, another control (not CR/LF/HTAB) or DEL */
    F_CONN_LIST = 1u << 17,     /* Connection list with an empty element, or one
                                   before the last that starts like close/keep-alive/
                                   upgrade but is not it */
    F_TE_PREFIX = 1u << 18,     /* header name longer than, starting with, Transfer-Encoding */
    F_TE_EMPTY_ELEM = 1u << 19, /* Transfer-Encoding list with an empty element */
    F_HTAB = 1u << 20,          /* HTAB after the start of a Content-Length, Connection or
                                   Transfer-Encoding value (OWS, or inside a list) */
    F_V1X = 1u << 21,           /* HTTP/1.2..HTTP/1.9: tern reads it as HTTP/1.1 */
    F_EXPECT = 1u << 22,        /* Expect other than 100-continue */
};

typedef struct {
    unsigned f;
    int complete; /* the lexer saw the empty line ending the head */
} feat;

static int lower_eq(const char *a, size_t n, const char *b) {
    size_t bn = strlen(b);
    if (n != bn) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = a[i];
        if (c >= 'A' && c <= 'Z') c = (char)(c + 32);
        if (c != b[i]) return 0;
    }
    return 1;
}

static void trim(const char **v, const char **ve) {
    while (*v < *ve && (**v == ' ' || **v == '\t')) (*v)++;
    while (*ve > *v && ((*ve)[-1] == ' ' || (*ve)[-1] == '\t')) (*ve)--;
}

static int hp_knows_method(const char *m, size_t n) {
    for (int i = 0;; i++) {
        const char *s = http_method_str((enum http_method)i);
        if (!strcmp(s, "<unknown>")) return 0;
        if (strlen(s) == n && !memcmp(s, m, n)) return 1;
    }
}

/* tern's target rules (parse.h), restated: '#' never; CONNECT never (tern
 * is no proxy); "*" only alone and only with OPTIONS; otherwise origin-form
 * or an http/https absolute-form with a non-empty host and no userinfo. */
static int target_form_ok(const char *m, size_t ml, const char *t, size_t n) {
    if (memchr(t, '#', n)) return 0;
    if (ml == 7 && !memcmp(m, "CONNECT", 7)) return 0;
    if (n && t[0] == '/') return 1;
    if (n && t[0] == '*') return n == 1 && ml == 7 && !memcmp(m, "OPTIONS", 7);
    size_t s = n >= 7 && lower_eq(t, 7, "http://")    ? 7
               : n >= 8 && lower_eq(t, 8, "https://") ? 8
                                                      : 0;
    if (!s) return 0;
    size_t e = s;
    while (e < n && t[e] != '/' && t[e] != '?') {
        if (t[e] == '@') return 0;
        e++;
    }
    /* host characters per RFC 3986 §3.2.2 (tern's check, tested on its own
     * in test_parse.c) */
    return e > s && valid_host_port(t + s, t + e);
}

static void lex(const char *buf, size_t len, feat *ft) {
    memset(ft, 0, sizeof *ft);
    if (len > limits.max_head) ft->f |= F_LIMIT;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)buf[i];
        if ((c < 0x20 && c != '\r' && c != '\n' && c != '\t') || c == 0x7f) ft->f |= F_CTL;
        if (buf[i] == '\n' && (i == 0 || buf[i - 1] != '\r')) ft->f |= F_BARE_LF;
        if (buf[i] == '\r' && (i + 1 >= len || buf[i + 1] != '\n')) {
            /* a CR at the very end may still be followed by LF */
            if (i + 1 < len) ft->f |= F_BARE_CR;
        }
    }
    size_t p = 0;
    while (p < len && (buf[p] == '\r' || buf[p] == '\n')) p++; /* http_parser skips these */
    /* request line */
    const char *rl = buf + p, *nl = memchr(rl, '\n', len - p);
    const char *rle = nl ? nl : buf + len;
    if (nl && rle > rl && rle[-1] == '\r') rle--;
    const char *sp1 = memchr(rl, ' ', (size_t)(rle - rl));
    const char *m = rl;
    size_t ml = sp1 ? (size_t)(sp1 - rl) : (size_t)(rle - rl);
    for (size_t i = 0; i < ml; i++)
        if (!is_tchar(m[i])) ft->f |= F_RL_WS;
    if (ml > MAX_METHOD) ft->f |= F_LIMIT;
    if (!hp_knows_method(m, ml)) ft->f |= F_HP_METHOD;
    int minor = -1;
    if (sp1) {
        const char *t = sp1 + 1;
        const char *sp2 = memchr(t, ' ', (size_t)(rle - t));
        const char *te = sp2 ? sp2 : rle;
        size_t tl = (size_t)(te - t);
        if (tl == 0) ft->f |= F_RL_WS;
        if (tl > limits.max_target) ft->f |= F_LIMIT;
        for (size_t i = 0; i < tl; i++) {
            unsigned char c = (unsigned char)t[i];
            if (c < 0x21 || c > 0x7e) ft->f |= F_TARGET_BYTES;
        }
        if ((tl && t[0] != '/' && t[0] != '*') || (ml == 7 && !memcmp(m, "CONNECT", 7)))
            ft->f |= F_AUTHORITY;
        if (tl && !target_form_ok(m, ml, t, tl)) ft->f |= F_TARGET_FORM;
        if (!sp2) {
            if (nl) ft->f |= F_HTTP09;
        } else {
            const char *v = sp2 + 1;
            size_t vl = (size_t)(rle - v);
            if (vl == 8 && !memcmp(v, "HTTP/1.", 7) && (v[7] == '0' || v[7] == '1'))
                minor = v[7] - '0';
            else if (vl == 8 && !memcmp(v, "HTTP/1.", 7) && v[7] >= '2' && v[7] <= '9')
                minor = 1, ft->f |= F_V1X;
            else if (nl || vl >= 8 || memcmp(v, "HTTP/1.", vl < 7 ? vl : 7))
                ft->f |= F_VERSION;
            if (vl && v[0] == ' ') ft->f |= F_RL_WS;
        }
    } else if (nl) {
        ft->f |= F_RL_WS;
    }
    if (!nl) return;
    /* header lines */
    p = (size_t)(nl - buf) + 1;
    unsigned nh = 0, hosts = 0, cls = 0, tes = 0, close = 0, ka = 0;
    unsigned te_chunked = 0, te_last_chunked = 0, te_twice = 0, te_other = 0, te_empty = 0;
    while (p < len) {
        const char *l = buf + p, *e = memchr(l, '\n', len - p);
        int whole = e != NULL;
        const char *le = whole ? e : buf + len;
        if (whole && le > l && le[-1] == '\r') le--;
        if (whole && le == l) {
            ft->complete = 1;
            break;
        }
        if (l[0] == ' ' || l[0] == '\t') ft->f |= F_FOLD;
        const char *colon = memchr(l, ':', (size_t)(le - l));
        const char *ne = colon ? colon : le;
        if ((colon || whole) && ne == l) ft->f |= F_NAME;
        for (const char *q = l; q < ne; q++)
            if (!is_tchar(*q)) ft->f |= F_NAME;
        if (++nh > MAX_HEADERS) ft->f |= F_LIMIT;
        if (colon) {
            size_t n = (size_t)(colon - l);
            const char *v = colon + 1, *ve = le;
            trim(&v, &ve);
            if (n > 17 && lower_eq(l, 17, "transfer-encoding")) ft->f |= F_TE_PREFIX;
            if (lower_eq(l, n, "host") && whole) {
                hosts++;
                if (!valid_host_port(v, ve)) ft->f |= F_HOST; /* RFC 9112 §3.2 */
            }
            if (lower_eq(l, n, "content-length")) {
                cls++;
                uint64_t x = 0;
                if (whole && v == ve) ft->f |= F_CL;
                if (memchr(v, '\t', (size_t)(le - v))) ft->f |= F_HTAB;
                for (const char *q = v; q < ve; q++) {
                    if (*q < '0' || *q > '9' || x > (uint64_t)(INT64_MAX - (*q - '0')) / 10) {
                        ft->f |= F_CL;
                        break;
                    }
                    x = x * 10 + (uint64_t)(*q - '0');
                }
            }
            if (lower_eq(l, n, "expect") && whole && !lower_eq(v, (size_t)(ve - v), "100-continue"))
                ft->f |= F_EXPECT;
            if (lower_eq(l, n, "transfer-encoding")) {
                tes++;
                if (memchr(v, '\t', (size_t)(le - v))) ft->f |= F_HTAB;
                if (whole && v == ve) te_empty = 1;
                const char *it = v;
                while (v < ve) {
                    const char *c = memchr(it, ',', (size_t)(ve - it));
                    const char *ce = c ? c : ve, *es = it;
                    trim(&es, &ce);
                    if (ce == es) {
                        ft->f |= F_TE_EMPTY_ELEM;
                    } else if (lower_eq(es, (size_t)(ce - es), "chunked")) {
                        te_twice |= te_chunked;
                        te_chunked = te_last_chunked = 1;
                    } else {
                        te_other = 1;
                        te_last_chunked = 0;
                    }
                    if (!c) break;
                    it = c + 1;
                }
                /* a coding still being typed may yet become "chunked" */
                if (!whole) te_other = 0;
            }
            if (lower_eq(l, n, "connection")) {
                if (memchr(v, '\t', (size_t)(le - v))) ft->f |= F_HTAB;
                const char *it = v;
                while (v < ve) {
                    const char *c = memchr(it, ',', (size_t)(ve - it));
                    const char *ce = c ? c : ve, *es = it;
                    trim(&es, &ce);
                    size_t el = (size_t)(ce - es);
                    if (lower_eq(es, el, "close"))
                        close = 1;
                    else if (lower_eq(es, el, "keep-alive"))
                        ka = 1;
                    else if (!el || (c && es[0] && !lower_eq(es, el, "upgrade") &&
                                     strchr("cCkKuU", es[0])))
                        ft->f |= F_CONN_LIST;
                    if (!c) break;
                    it = c + 1;
                }
            }
        }
        if (!whole) break;
        p = (size_t)(e - buf) + 1;
    }
    if (cls > 1 || (cls && tes)) ft->f |= F_CL;
    if (hosts > 1 || (ft->complete && minor == 1 && hosts == 0)) ft->f |= F_HOST;
    if (tes &&
        (minor == 0 || tes > 1 || te_empty || te_twice || te_other || (ft->complete && !te_last_chunked)))
        ft->f |= F_TE;
    if (minor == 0 && close && ka) ft->f |= F_KA10;
}

/* ---- explanations ---------------------------------------------------------- */

/* tern rejects with `status`, http_parser does not: tern's strictness. */
static int tern__stricter(unsigned f, int status) {
    unsigned ok = 0;
    if (status == 400)
        ok = F_BARE_LF | F_BARE_CR | F_FOLD | F_RL_WS | F_HTTP09 | F_VERSION | F_TARGET_BYTES |
             F_TARGET_FORM | F_NAME | F_HOST | F_CL | F_TE | F_CTL;
    else if (status == 505)
        ok = F_VERSION;
    else if (status == 501)
        ok = F_TE | F_LIMIT;
    else if (status == 414)
        ok = F_LIMIT;
    else if (status == 417)
        ok = F_EXPECT;
    else if (status == 431)
        /* a line after the 100th header is refused by count before its syntax
         * is looked at, whatever is wrong with it */
        ok = F_LIMIT | F_BARE_LF | F_BARE_CR | F_NAME | F_CTL;
    return (f & ok) != 0;
}

/* http_parser rejects, tern accepts or waits: http_parser's strictness, or
 * an error tern reports only once the head is complete (parse.h: semantic
 * errors after syntax) that http_parser reports at the offending byte. */
static int hp_stricter(unsigned f, enum outcome tern__out) {
    if (f & (F_HP_METHOD | F_AUTHORITY | F_TE_PREFIX | F_TE_EMPTY_ELEM | F_HTAB)) return 1;
    return tern__out == INCOMPLETE && (f & (F_CL | F_TE | F_HOST));
}

/* ---- the comparison ------------------------------------------------------- */

static void report(const char *why, const char *buf, size_t len, const tern__result *t,
                   const hp_result *h, const feat *ft) {
    fprintf(stderr, "diff: %s\n  tern: %s r=%d", why, outcome_name[t->out], t->r);
    if (t->out == ACCEPT)
        fprintf(stderr, " method=%.*s target=%.*s 1.%u headers=%u cl=%s%llu chunked=%d ka=%d",
                (int)t->req.method_len, buf + t->req.target_off - 1 - t->req.method_len,
                (int)t->req.target_len, buf + t->req.target_off, t->req.minor, t->req.num_headers,
                (t->req.flags & TERN_REQ_HAS_LENGTH) ? "" : "none/",
                (unsigned long long)t->req.content_length, !!(t->req.flags & TERN_REQ_CHUNKED),
                !!(t->req.flags & TERN_REQ_KEEP_ALIVE));
    fprintf(stderr, "\n  http_parser: %s %s consumed=%zu", outcome_name[h->out],
            http_errno_name(h->err), h->consumed);
    if (h->out == ACCEPT)
        fprintf(stderr, " method=%s target=%.*s %u.%u headers=%u cl=%s%llu chunked=%d ka=%d",
                http_method_str((enum http_method)h->p.method),
                (int)(h->url_len < URL_MAX ? h->url_len : URL_MAX), h->url, h->p.http_major,
                h->p.http_minor, h->headers, (h->p.flags & F_CONTENTLENGTH) ? "" : "none/",
                (unsigned long long)h->p.content_length, !!(h->p.flags & F_CHUNKED), h->keep_alive);
    fprintf(stderr, "\n  features=0x%x complete=%d\n  input (%zu bytes): \"", ft->f, ft->complete,
            len);
    for (size_t i = 0; i < len && i < 600; i++) {
        unsigned char c = (unsigned char)buf[i];
        if (c == '\r')
            fputs("\\r", stderr);
        else if (c == '\n')
            fputs("\\n", stderr);
        else if (c == '"' || c == '\\')
            fprintf(stderr, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            fprintf(stderr, "\\x%02x", c);
        else
            fputc(c, stderr);
    }
    fprintf(stderr, "%s\"\n", len > 600 ? "..." : "");
}

static int verbose = -1;

static void fail(const char *why, const char *buf, size_t len, const tern__result *t,
                 const hp_result *h, const feat *ft) {
    report(why, buf, len, t, h, ft);
    fprintf(stderr, "unexplained difference: a tern bug, or a class to add to DIFFERENTIAL.md\n");
    abort();
}

static tern__result tres;
static hp_result hres;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (verbose < 0) {
        verbose = getenv("DIFF_VERBOSE") != NULL;
        if (!http_parser_execute) {
            fputs(NO_HTTP_PARSER, stderr);
            abort();
        }
    }
    /* an exact-size copy, so ASan sees any over-read by either parser */
    char *buf = malloc(size ? size : 1);
    memcpy(buf, data, size);
    tern__result *t = &tres;
    hp_result *h = &hres;
    run_tern(buf, size, t);
    run_hp(buf, size, h);
    feat ft;
    /* only what http_parser looked at (up to and including the byte it
     * failed on) can explain its answer */
    size_t region = h->out == INCOMPLETE ? size : h->consumed + (h->out == REJECT);
    lex(buf, region < size ? region : size, &ft);
    if (verbose) report("(verbose)", buf, size, t, h, &ft);

    if (t->out != h->out) {
        int ok;
        if (t->out == REJECT)
            ok = tern__stricter(ft.f, -t->r);
        else if (h->out == REJECT)
            ok = hp_stricter(ft.f, t->out);
        else
            ok = 0; /* one complete, the other waiting: never expected */
        if (!ok) fail("outcome", buf, size, t, h, &ft);
    } else if (t->out == ACCEPT) {
        const tern__http_request *q = &t->req;
        const char *m = buf + q->target_off - 1 - q->method_len;
        const char *hm = http_method_str((enum http_method)h->p.method);
        int has_cl = !!(q->flags & TERN_REQ_HAS_LENGTH);
        if ((size_t)t->r != h->head_len) fail("head length", buf, size, t, h, &ft);
        if (strlen(hm) != q->method_len || memcmp(hm, m, q->method_len))
            fail("method", buf, size, t, h, &ft);
        if (h->url_len != q->target_len || memcmp(h->url, buf + q->target_off, q->target_len))
            fail("target", buf, size, t, h, &ft);
        if (h->p.http_major != 1 || (h->p.http_minor != q->minor && !(ft.f & F_V1X)))
            fail("version", buf, size, t, h, &ft);
        if (h->headers != q->num_headers) fail("header count", buf, size, t, h, &ft);
        if (has_cl != !!(h->p.flags & F_CONTENTLENGTH) ||
            (has_cl && q->content_length != h->p.content_length))
            fail("Content-Length", buf, size, t, h, &ft);
        if (!!(q->flags & TERN_REQ_CHUNKED) != !!(h->p.flags & F_CHUNKED) &&
            !(ft.f & (F_TE_EMPTY_ELEM | F_HTAB)))
            fail("chunked", buf, size, t, h, &ft);
        if (!!(q->flags & TERN_REQ_KEEP_ALIVE) != !!h->keep_alive &&
            !(ft.f & (F_KA10 | F_CONN_LIST | F_HTAB)))
            fail("keep-alive", buf, size, t, h, &ft);
    }
    free(buf);
    return 0;
}
#endif
