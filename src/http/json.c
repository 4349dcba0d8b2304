/* JSON reader (RFC 8259, strict) into the request arena. See tern/json.h.
 *
 * Recursive descent, bounded by max_depth (itself capped so a coroutine's
 * stack always holds the recursion). Children of an open array or object
 * collect on one scratch stack shared by every level and are copied into
 * the arena as one block when their container closes: the tree costs one
 * arena allocation per container and per string, nothing per scalar. */
#include "http/json.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/ctx.h"

#define DEFAULT_DEPTH 128
/* each level costs one frame of parse_value + parse_container (~200 bytes
 * with the sanitizers off): 256 levels stay far inside a 64 KiB stack */
#define HARD_DEPTH 256
#define DEFAULT_BYTES (16u << 20)
/* a number's text is copied for strtod; longer is refused (-ERANGE): no
 * double needs more digits than this to be told apart */
#define NUMBER_MAX 1024

enum json_flag {
    JF_TRUE = 1u << 0,
    JF_INT = 1u << 1, /* i holds the exact integer */
};

typedef struct json_parser {
    const unsigned char *p, *start, *end;
    tern_ctx *ctx;
    unsigned depth, max_depth;
    tern_json *stack; /* children of the open containers */
    size_t top, cap;
    tern_json_error *err;
} json_parser;

static int fail(json_parser *ps, const unsigned char *at, int code, const char *what) {
    if (ps->err && !ps->err->code) {
        ps->err->code = code;
        ps->err->offset = (size_t)(at - ps->start);
        snprintf(ps->err->message, sizeof ps->err->message, "offset %zu: %s", ps->err->offset,
                 what);
    }
    return code;
}

#define P16 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1
const unsigned char tern__json_plain[256] = {
    [0x20] = 1, 1, 0 /* " */, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,         1, 1, 1, P16, P16,
    [0x50] = 1, 1, 1,         1, 1, 1, 1, 1, 1, 1, 1, 1, 0 /* \ */, 1, 1, 1, P16, P16,
};
#undef P16

static void skip_ws(json_parser *ps) {
    /* RFC 8259 §2: ws = *( %x20 / %x09 / %x0A / %x0D ) */
    const unsigned char *p = ps->p;
    while (p < ps->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t')) p++;
    ps->p = p;
}

static int push(json_parser *ps, tern_json **out) {
    if (ps->top == ps->cap) {
        size_t cap = ps->cap ? ps->cap * 2 : 64;
        tern_json *s = realloc(ps->stack, cap * sizeof *s);
        if (!s) return -ENOMEM;
        ps->stack = s;
        ps->cap = cap;
    }
    *out = &ps->stack[ps->top++];
    memset(*out, 0, sizeof **out);
    return 0;
}

/* ---- UTF-8 (Unicode 15, table 3-7: no overlongs, no surrogates, <= U+10FFFF) */

/* Length of the valid sequence at p (1..4), or 0. */
size_t tern__utf8_seq(const unsigned char *p, const unsigned char *end) {
    unsigned c = p[0];
    if (c < 0x80) return 1;
    size_t n = (size_t)(end - p);
    if (c >= 0xc2 && c <= 0xdf) return n >= 2 && (p[1] & 0xc0) == 0x80 ? 2 : 0;
    if (c >= 0xe0 && c <= 0xef) {
        if (n < 3 || (p[2] & 0xc0) != 0x80) return 0;
        unsigned lo = c == 0xe0 ? 0xa0 : 0x80, hi = c == 0xed ? 0x9f : 0xbf;
        return p[1] >= lo && p[1] <= hi ? 3 : 0;
    }
    if (c >= 0xf0 && c <= 0xf4) {
        if (n < 4 || (p[2] & 0xc0) != 0x80 || (p[3] & 0xc0) != 0x80) return 0;
        unsigned lo = c == 0xf0 ? 0x90 : 0x80, hi = c == 0xf4 ? 0x8f : 0xbf;
        return p[1] >= lo && p[1] <= hi ? 4 : 0;
    }
    return 0;
}

static size_t put_utf8(unsigned char *o, unsigned cp) {
    if (cp < 0x80) {
        o[0] = (unsigned char)cp;
        return 1;
    }
    if (cp < 0x800) {
        o[0] = (unsigned char)(0xc0 | cp >> 6);
        o[1] = (unsigned char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        o[0] = (unsigned char)(0xe0 | cp >> 12);
        o[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        o[2] = (unsigned char)(0x80 | (cp & 0x3f));
        return 3;
    }
    o[0] = (unsigned char)(0xf0 | cp >> 18);
    o[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
    o[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
    o[3] = (unsigned char)(0x80 | (cp & 0x3f));
    return 4;
}

/* ---- strings (RFC 8259 §7) ------------------------------------------------- */

static int hex4(const unsigned char *p, const unsigned char *end, unsigned *out) {
    if (end - p < 4) return -1;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned c = p[i], d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if ((c | 0x20) >= 'a' && (c | 0x20) <= 'f')
            d = (c | 0x20) - 'a' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    *out = v;
    return 0;
}

/* \uXXXX at p (after the backslash and 'u'), with a low surrogate after a
 * high one: the code point, advancing *pp; -1 when malformed. */
static long unicode_escape(json_parser *ps, const unsigned char **pp) {
    const unsigned char *p = *pp;
    unsigned hi, lo;
    if (hex4(p, ps->end, &hi) < 0) return fail(ps, p, -EILSEQ, "\\u needs four hex digits"), -1;
    p += 4;
    if (hi >= 0xdc00 && hi <= 0xdfff) return fail(ps, p - 6, -EILSEQ, "lone low surrogate"), -1;
    if (hi >= 0xd800 && hi <= 0xdbff) {
        if (ps->end - p < 6 || p[0] != '\\' || p[1] != 'u' || hex4(p + 2, ps->end, &lo) < 0 ||
            lo < 0xdc00 || lo > 0xdfff)
            return fail(ps, p - 6, -EILSEQ, "lone high surrogate"), -1;
        p += 6;
        hi = 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00);
    }
    *pp = p;
    return (long)hi;
}

/* Decodes the string whose opening quote ps->p is past into the arena. */
static int parse_string(json_parser *ps, const char **out, uint32_t *out_len) {
    const unsigned char *p = ps->p, *s = p;
    /* fast scan: plain ASCII without escapes is copied as is */
    while (p < ps->end && tern__json_plain[*p]) p++;
    size_t plain = (size_t)(p - s);
    if (p < ps->end && *p == '"' && plain <= UINT32_MAX) {
        char *o = tern_alloc(ps->ctx, plain + 1);
        if (!o) return fail(ps, s, -ENOMEM, "out of memory");
        memcpy(o, s, plain);
        o[plain] = 0;
        *out = o;
        *out_len = (uint32_t)plain;
        ps->p = p + 1;
        return 0;
    }
    /* general case: find the end first (decoded bytes never outnumber raw) */
    const unsigned char *q = p;
    while (q < ps->end && *q != '"') q += *q == '\\' && q + 1 < ps->end ? 2 : 1;
    if (q >= ps->end) return fail(ps, s - 1, -EINVAL, "unterminated string");
    if ((size_t)(q - s) > UINT32_MAX) return fail(ps, s, -E2BIG, "string too long");
    unsigned char *o = tern_alloc(ps->ctx, (size_t)(q - s) + 1), *w = o;
    if (!o) return fail(ps, s, -ENOMEM, "out of memory");
    memcpy(w, s, plain);
    w += plain;
    while (p < q) {
        unsigned c = *p;
        if (c < 0x20) return fail(ps, p, -EINVAL, "control character in string");
        if (c >= 0x80) {
            size_t n = tern__utf8_seq(p, q);
            if (!n) return fail(ps, p, -EILSEQ, "invalid UTF-8");
            memcpy(w, p, n);
            w += n;
            p += n;
            continue;
        }
        if (c != '\\') {
            *w++ = (unsigned char)c;
            p++;
            continue;
        }
        const unsigned char *esc = p;
        p += 2;
        switch (esc[1]) {
        case '"':
            *w++ = '"';
            break;
        case '\\':
            *w++ = '\\';
            break;
        case '/':
            *w++ = '/';
            break;
        case 'b':
            *w++ = '\b';
            break;
        case 'f':
            *w++ = '\f';
            break;
        case 'n':
            *w++ = '\n';
            break;
        case 'r':
            *w++ = '\r';
            break;
        case 't':
            *w++ = '\t';
            break;
        case 'u': {
            long cp = unicode_escape(ps, &p);
            if (cp < 0) return ps->err ? ps->err->code : -EILSEQ;
            w += put_utf8(w, (unsigned)cp);
            break;
        }
        default:
            return fail(ps, esc, -EILSEQ, "invalid escape");
        }
    }
    *w = 0;
    *out = (const char *)o;
    *out_len = (uint32_t)(w - o);
    ps->p = q + 1;
    return 0;
}

/* ---- numbers (RFC 8259 §6) ------------------------------------------------- */

static const unsigned char *digits(const unsigned char *p, const unsigned char *end) {
    while (p < end && *p >= '0' && *p <= '9') p++;
    return p;
}

/* noinline: its 1 KiB buffer must not join every frame of the recursion */
__attribute__((noinline)) static int parse_number(json_parser *ps, tern_json *v) {
    const unsigned char *s = ps->p, *p = s, *end = ps->end;
    int neg = p < end && *p == '-';
    p += neg;
    if (p >= end || *p < '0' || *p > '9') return fail(ps, s, -EINVAL, "invalid number");
    const unsigned char *int_start = p;
    if (*p == '0')
        p++;
    else
        p = digits(p, end);
    if (p < end && *p >= '0' && *p <= '9') return fail(ps, p, -EINVAL, "leading zero in number");
    int is_int = 1;
    if (p < end && *p == '.') {
        const unsigned char *f = ++p;
        p = digits(p, end);
        if (p == f) return fail(ps, p, -EINVAL, "digit expected after '.'");
        is_int = 0;
    }
    if (p < end && (*p | 0x20) == 'e') {
        p++;
        if (p < end && (*p == '+' || *p == '-')) p++;
        const unsigned char *e = p;
        p = digits(p, end);
        if (p == e) return fail(ps, p, -EINVAL, "digit expected in exponent");
        is_int = 0;
    }
    v->type = TERN_JSON_NUMBER;
    ps->p = p;
    /* "-0" is the double -0.0, which no int64 holds */
    if (is_int && p - int_start <= 19 && !(neg && *int_start == '0')) {
        /* exact integer, the common case, without strtod */
        uint64_t u = 0;
        int ovf = 0;
        for (const unsigned char *d = int_start; d < p; d++) {
            ovf |= (int)__builtin_mul_overflow(u, 10u, &u);
            ovf |= (int)__builtin_add_overflow(u, (uint64_t)(*d - '0'), &u);
        }
        if (!ovf && u <= (uint64_t)INT64_MAX + (uint64_t)neg) {
            v->i = neg ? (int64_t)(0 - u) : (int64_t)u;
            v->d = (double)v->i;
            v->flags |= JF_INT;
            return 0;
        }
    }
    size_t n = (size_t)(p - s);
    if (n >= NUMBER_MAX) return fail(ps, s, -ERANGE, "number too long");
    char buf[NUMBER_MAX];
    memcpy(buf, s, n);
    buf[n] = 0;
    v->d = strtod(buf, NULL); /* the C locale: tern never calls setlocale */
    if (!isfinite(v->d)) return fail(ps, s, -ERANGE, "number out of range");
    return 0;
}

/* ---- values ---------------------------------------------------------------- */

static int parse_value(json_parser *ps, tern_json *v);

static int literal(json_parser *ps, const char *word, size_t n) {
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, ps->p, -EINVAL, "unexpected character");
    ps->p += n;
    return 0;
}

/* Moves the children [base, top) of the scratch stack into the arena. */
static int close_container(json_parser *ps, tern_json *v, size_t base) {
    size_t n = ps->top - base;
    if (n > UINT32_MAX) return fail(ps, ps->p, -E2BIG, "too many elements");
    v->len = (uint32_t)n;
    if (n) {
        tern_json *kids = tern_alloc(ps->ctx, n * sizeof *kids);
        if (!kids) return fail(ps, ps->p, -ENOMEM, "out of memory");
        memcpy(kids, ps->stack + base, n * sizeof *kids);
        v->u.items = kids;
    }
    ps->top = base;
    return 0;
}

static int parse_container(json_parser *ps, tern_json *v, int object) {
    if (++ps->depth > ps->max_depth) return fail(ps, ps->p, -E2BIG, "nesting too deep");
    unsigned char close = object ? '}' : ']';
    v->type = object ? TERN_JSON_OBJECT : TERN_JSON_ARRAY;
    ps->p++;
    size_t base = ps->top;
    skip_ws(ps);
    if (ps->p < ps->end && *ps->p == close) {
        ps->p++;
        ps->depth--;
        return close_container(ps, v, base);
    }
    for (;;) {
        tern_json *kid;
        if (push(ps, &kid) < 0) return fail(ps, ps->p, -ENOMEM, "out of memory");
        size_t kid_index = ps->top - 1; /* the stack may move while the value parses */
        if (object) {
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != '"')
                return fail(ps, ps->p, -EINVAL,
                            ps->p < ps->end && *ps->p == '}' ? "trailing comma" : "name expected");
            ps->p++;
            const char *key;
            uint32_t klen;
            int r = parse_string(ps, &key, &klen);
            if (r < 0) return r;
            ps->stack[kid_index].key = key;
            ps->stack[kid_index].key_len = klen;
            skip_ws(ps);
            if (ps->p >= ps->end || *ps->p != ':') return fail(ps, ps->p, -EINVAL, "':' expected");
            ps->p++;
        }
        tern_json tmp = ps->stack[kid_index];
        int r = parse_value(ps, &tmp);
        if (r < 0) return r;
        ps->stack[kid_index] = tmp;
        skip_ws(ps);
        if (ps->p >= ps->end)
            return fail(ps, ps->p, -EINVAL, object ? "'}' expected" : "']' expected");
        if (*ps->p == ',') {
            ps->p++;
            skip_ws(ps);
            if (!object && ps->p < ps->end && *ps->p == ']')
                return fail(ps, ps->p, -EINVAL, "trailing comma");
            continue;
        }
        if (*ps->p != close)
            return fail(ps, ps->p, -EINVAL, object ? "',' or '}' expected" : "',' or ']' expected");
        ps->p++;
        ps->depth--;
        return close_container(ps, v, base);
    }
}

static int parse_value(json_parser *ps, tern_json *v) {
    skip_ws(ps);
    if (ps->p >= ps->end) return fail(ps, ps->p, -EINVAL, "value expected");
    switch (*ps->p) {
    case '{':
        return parse_container(ps, v, 1);
    case '[':
        return parse_container(ps, v, 0);
    case '"': {
        ps->p++;
        v->type = TERN_JSON_STRING;
        return parse_string(ps, &v->u.s, &v->len);
    }
    case 't':
        v->type = TERN_JSON_BOOL;
        v->flags |= JF_TRUE;
        return literal(ps, "true", 4);
    case 'f':
        v->type = TERN_JSON_BOOL;
        return literal(ps, "false", 5);
    case 'n':
        v->type = TERN_JSON_NULL;
        return literal(ps, "null", 4);
    case '-':
    case '0':
    case '1':
    case '2':
    case '3':
    case '4':
    case '5':
    case '6':
    case '7':
    case '8':
    case '9':
        return parse_number(ps, v);
    case 0xef:
        if (ps->p == ps->start)
            return fail(ps, ps->p, -EINVAL, "byte order mark (RFC 8259 section 8.1)");
        /* fall through */
    default:
        return fail(ps, ps->p, -EINVAL, "unexpected character");
    }
}

const tern_json *tern_json_parse(tern_ctx *ctx, const char *buf, size_t len,
                                 const tern_json_limits *lim, tern_json_error *err) {
    tern_json_error local;
    if (!err) err = &local;
    memset(err, 0, sizeof *err);
    json_parser ps = {.p = (const unsigned char *)buf,
                      .start = (const unsigned char *)buf,
                      .end = (const unsigned char *)buf + len,
                      .ctx = ctx,
                      .err = err};
    ps.max_depth = lim && lim->max_depth ? lim->max_depth : DEFAULT_DEPTH;
    if (ps.max_depth > HARD_DEPTH) ps.max_depth = HARD_DEPTH;
    size_t max_bytes = lim && lim->max_bytes ? lim->max_bytes : DEFAULT_BYTES;
    if (len > max_bytes) {
        fail(&ps, ps.start, -E2BIG, "document too large");
        return NULL;
    }
    skip_ws(&ps);
    if (ps.p == ps.end) {
        fail(&ps, ps.p, -ENODATA, "empty document");
        return NULL;
    }
    tern_json *root = tern_alloc(ctx, sizeof *root);
    if (!root) {
        fail(&ps, ps.p, -ENOMEM, "out of memory");
        return NULL;
    }
    memset(root, 0, sizeof *root);
    int r = parse_value(&ps, root);
    if (r == 0) {
        skip_ws(&ps);
        if (ps.p != ps.end) r = fail(&ps, ps.p, -EINVAL, "trailing characters after the value");
    }
    free(ps.stack);
    return r < 0 ? NULL : root;
}

const tern_json *tern_json_body(tern_ctx *ctx, tern_json_error *err) {
    tern_str b = tern_req_body(ctx);
    return tern_json_parse(ctx, b.ptr, b.len, NULL, err);
}

/* ---- accessors ------------------------------------------------------------- */

tern_json_type tern_json_typeof(const tern_json *v) {
    return v ? (tern_json_type)v->type : TERN_JSON_NULL;
}
int tern_json_is_null(const tern_json *v) {
    return v && v->type == TERN_JSON_NULL;
}

size_t tern_json_len(const tern_json *v) {
    return v && (v->type == TERN_JSON_ARRAY || v->type == TERN_JSON_OBJECT) ? v->len : 0;
}

const tern_json *tern_json_at(const tern_json *v, size_t i) {
    return i < tern_json_len(v) ? &v->u.items[i] : NULL;
}

const char *tern_json_key_at(const tern_json *v, size_t i) {
    return v && v->type == TERN_JSON_OBJECT && i < v->len ? v->u.items[i].key : NULL;
}

const tern_json *tern_json_get(const tern_json *v, const char *name) {
    if (!v || v->type != TERN_JSON_OBJECT) return NULL;
    size_t n = strlen(name);
    for (uint32_t i = 0; i < v->len; i++) {
        const tern_json *m = &v->u.items[i];
        if (m->key_len == n && memcmp(m->key, name, n) == 0) return m;
    }
    return NULL;
}

const char *tern_json_string(const tern_json *v, size_t *len) {
    if (!v || v->type != TERN_JSON_STRING) return NULL;
    if (len) *len = v->len;
    return v->u.s;
}

int tern_json_double(const tern_json *v, double *out) {
    if (!v || v->type != TERN_JSON_NUMBER) return -EINVAL;
    *out = v->d;
    return 0;
}

int tern_json_int(const tern_json *v, int64_t *out) {
    if (!v || v->type != TERN_JSON_NUMBER) return -EINVAL;
    if (v->flags & JF_INT) {
        *out = v->i;
        return 0;
    }
    /* 1e3 is the integer 1000; 1.5 and 1e19 are no int64 */
    /* no floor(): libtern does not link libm */
    if (!(v->d >= -9223372036854775808.0 && v->d < 9223372036854775808.0)) return -ERANGE;
    int64_t i = (int64_t)v->d;
    if ((double)i != v->d) return -ERANGE;
    *out = i;
    return 0;
}

int tern_json_bool(const tern_json *v, int *out) {
    if (!v || v->type != TERN_JSON_BOOL) return -EINVAL;
    *out = (v->flags & JF_TRUE) != 0;
    return 0;
}
