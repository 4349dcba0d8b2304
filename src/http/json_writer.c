/* JSON writer: a streaming builder appending to the response body (the
 * arena buffer tern_resp_append_body grows), with the structure checked as
 * it goes. See tern/json.h. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http/ctx.h"
#include "http/json.h"

void tern__jw_init(tern_jw *w, tern_ctx *ctx) {
    memset(w, 0, sizeof *w);
    w->ctx = ctx;
    w->expect = TERN__JW_VALUE;
}

tern_jw *tern_json_writer(tern_ctx *ctx) {
    tern_jw *w = tern_alloc(ctx, sizeof *w);
    if (!w) return NULL;
    tern__jw_init(w, ctx);
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    return w;
}

/* Room for n more bytes at the end of the body; NULL on out of memory. */
static char *reserve(tern_jw *w, size_t n) {
    tern_ctx *c = w->ctx;
    size_t need = c->resp_body_len + n;
    if (c->resp_body_cap < need) {
        size_t cap = c->resp_body_cap ? c->resp_body_cap * 2 : 64;
        while (cap < need) cap *= 2;
        char *p = tern_alloc(c, cap);
        if (!p) return NULL;
        if (c->resp_body_len) memcpy(p, c->resp_body, c->resp_body_len);
        c->resp_body = p;
        c->resp_body_cap = cap;
    }
    return (char *)c->resp_body + c->resp_body_len;
}

static inline void commit(tern_jw *w, size_t n) {
    w->ctx->resp_body_len += n;
}

static int set_error(tern_jw *w, int e) {
    if (!w->error) w->error = e;
    return w->error;
}

/* Checks that a value (or key) may come now and writes the comma (or
 * nothing) that goes before it. */
static int before(tern_jw *w, int is_key) {
    if (w->error) return w->error;
    if (is_key ? w->expect != TERN__JW_KEY
               : (w->expect == TERN__JW_KEY || w->expect == TERN__JW_DONE))
        return set_error(w, -EINVAL);
    if (w->expect == TERN__JW_MEMBER) return 0; /* the key wrote the ':' */
    if (w->depth) {
        uint64_t bit = 1ull << (w->depth - 1);
        if (w->nonempty & bit) {
            char *p = reserve(w, 1);
            if (!p) return set_error(w, -ENOMEM);
            *p = ',';
            commit(w, 1);
        }
        w->nonempty |= bit;
    }
    return 0;
}

/* After a complete value: what comes next. */
static void after(tern_jw *w) {
    if (!w->depth)
        w->expect = TERN__JW_DONE;
    else
        w->expect = (w->objects >> (w->depth - 1)) & 1 ? TERN__JW_KEY : TERN__JW_VALUE;
}

static int raw(tern_jw *w, const char *s, size_t n) {
    char *p = reserve(w, n);
    if (!p) return set_error(w, -ENOMEM);
    memcpy(p, s, n);
    commit(w, n);
    return 0;
}

static int begin(tern_jw *w, int object) {
    int r = before(w, 0);
    if (r < 0) return r;
    if (w->depth == TERN__JW_MAX_DEPTH) return set_error(w, -E2BIG);
    if ((r = raw(w, object ? "{" : "[", 1)) < 0) return r;
    uint64_t bit = 1ull << w->depth;
    w->depth++;
    if (object)
        w->objects |= bit;
    else
        w->objects &= ~bit;
    w->nonempty &= ~bit;
    w->expect = object ? TERN__JW_KEY : TERN__JW_VALUE;
    return 0;
}

static int end(tern_jw *w, int object) {
    if (w->error) return w->error;
    if (!w->depth || (int)((w->objects >> (w->depth - 1)) & 1) != object)
        return set_error(w, -EINVAL);
    if (object && w->expect != TERN__JW_KEY) return set_error(w, -EINVAL); /* a key without value */
    int r = raw(w, object ? "}" : "]", 1);
    if (r < 0) return r;
    w->depth--;
    after(w);
    return 0;
}

int tern_jw_object_begin(tern_jw *w) {
    return begin(w, 1);
}
int tern_jw_array_begin(tern_jw *w) {
    return begin(w, 0);
}
int tern_jw_object_end(tern_jw *w) {
    return end(w, 1);
}
int tern_jw_array_end(tern_jw *w) {
    return end(w, 0);
}

/* The escaped string with its quotes. RFC 8259 §7: '"', '\\' and the
 * controls below 0x20 must be escaped; DEL and '/' need not be. Worst case
 * six output bytes per input byte. */
static int quoted(tern_jw *w, const char *s, size_t n) {
    if (n > (SIZE_MAX - 2) / 6) return set_error(w, -ENOMEM);
    /* most strings need no escape: room for them as they are first, so a
     * small document stays in the request's inline arena (no malloc) */
    size_t plain = 0;
    while (plain < n && tern__json_plain[(unsigned char)s[plain]]) plain++;
    if (plain == n) {
        char *q = reserve(w, n + 2);
        if (!q) return set_error(w, -ENOMEM);
        q[0] = '"';
        memcpy(q + 1, s, n);
        q[n + 1] = '"';
        commit(w, n + 2);
        return 0;
    }
    char *o = reserve(w, n * 6 + 2), *start = o;
    if (!o) return set_error(w, -ENOMEM);
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s, *e = p + n;
    *o++ = '"';
    while (p < e) {
        /* runs of plain ASCII copied in one go */
        const unsigned char *run = p;
        while (p < e && tern__json_plain[*p]) p++;
        if (p > run) {
            memcpy(o, run, (size_t)(p - run));
            o += p - run;
            if (p == e) break;
        }
        unsigned c = *p;
        if (c >= 0x80) {
            size_t len = tern__utf8_seq(p, e);
            if (!len) return set_error(w, -EILSEQ);
            memcpy(o, p, len);
            o += len;
            p += len;
            continue;
        }
        *o++ = '\\';
        switch (c) {
        case '"':
            *o++ = '"';
            break;
        case '\\':
            *o++ = '\\';
            break;
        case '\n':
            *o++ = 'n';
            break;
        case '\r':
            *o++ = 'r';
            break;
        case '\t':
            *o++ = 't';
            break;
        case '\b':
            *o++ = 'b';
            break;
        case '\f':
            *o++ = 'f';
            break;
        default:
            memcpy(o, "u00", 3);
            o[3] = hex[c >> 4];
            o[4] = hex[c & 15];
            o += 5;
        }
        p++;
    }
    *o++ = '"';
    commit(w, (size_t)(o - start));
    return 0;
}

int tern_jw_key_n(tern_jw *w, const char *key, size_t len) {
    int r = before(w, 1);
    if (r < 0) return r;
    if ((r = quoted(w, key, len)) < 0 || (r = raw(w, ":", 1)) < 0) return r;
    w->expect = TERN__JW_MEMBER;
    return 0;
}
int tern_jw_key(tern_jw *w, const char *key) {
    return tern_jw_key_n(w, key, strlen(key));
}

int tern_jw_string_n(tern_jw *w, const char *s, size_t len) {
    int r = before(w, 0);
    if (r < 0 || (r = quoted(w, s, len)) < 0) return r;
    after(w);
    return 0;
}
int tern_jw_string(tern_jw *w, const char *s) {
    return tern_jw_string_n(w, s, strlen(s));
}

int tern_jw_int(tern_jw *w, int64_t v) {
    int r = before(w, 0);
    if (r < 0) return r;
    char tmp[24];
    uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
    int n = 0;
    do {
        tmp[sizeof tmp - 1 - n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) tmp[sizeof tmp - 1 - n++] = '-';
    if ((r = raw(w, tmp + sizeof tmp - n, (size_t)n)) < 0) return r;
    after(w);
    return 0;
}

int tern_jw_double(tern_jw *w, double v) {
    if (w->error) return w->error;
    if (!isfinite(v)) return set_error(w, -EDOM); /* JSON has no NaN or Infinity (RFC 8259 §6) */
    int r = before(w, 0);
    if (r < 0) return r;
    char buf[40];
    int n = 0;
    /* the shortest of %.15g..%.17g that reads back as v: 0.1 stays "0.1",
     * and 17 significant digits always round-trip an IEEE double */
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(buf, sizeof buf, "%.*g", prec, v);
        if (prec == 17 || strtod(buf, NULL) == v) break;
    }
    if ((r = raw(w, buf, (size_t)n)) < 0) return r;
    after(w);
    return 0;
}

int tern_jw_bool(tern_jw *w, int v) {
    int r = before(w, 0);
    if (r < 0 || (r = v ? raw(w, "true", 4) : raw(w, "false", 5)) < 0) return r;
    after(w);
    return 0;
}

int tern_jw_null(tern_jw *w) {
    int r = before(w, 0);
    if (r < 0 || (r = raw(w, "null", 4)) < 0) return r;
    after(w);
    return 0;
}

int tern_jw_status(const tern_jw *w) {
    if (w->error) return w->error;
    return w->expect == TERN__JW_DONE ? 0 : -EINPROGRESS;
}
