/* application/x-www-form-urlencoded bodies (the HTML form encoding): the
 * query's syntax and decoding (url.c) applied to the request body. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include "http/url.h"
#include "tern.h"

/* The body when Content-Type names the form encoding (parameters such as
 * "; charset=utf-8" allowed), else -EMEDIUMTYPE. */
static int form_body(tern_ctx *ctx, tern_str *body) {
    static const char type[] = "application/x-www-form-urlencoded";
    const char *ct = tern_req_header(ctx, "Content-Type");
    size_t n = sizeof type - 1;
    if (!ct || strncasecmp(ct, type, n) != 0 ||
        (ct[n] && ct[n] != ';' && ct[n] != ' ' && ct[n] != '\t'))
        return -EMEDIUMTYPE;
    *body = tern_req_body(ctx);
    return 0;
}

static int decode(tern_ctx *ctx, const char *raw, size_t len, const char **out) {
    char *o = tern_alloc(ctx, len + 1);
    if (!o) return -ENOMEM;
    size_t n;
    if (tern__query_decode(raw, len, o, &n, 1) != TERN__QUERY_OK) return -EILSEQ;
    *out = o;
    return 0;
}

int tern_form_get(tern_ctx *ctx, const char *name, const char **value) {
    *value = NULL;
    tern_str b;
    int r = form_body(ctx, &b);
    if (r < 0) return r;
    const char *raw;
    size_t raw_len;
    if (!tern__query_find(b.ptr, b.len, name, &raw, &raw_len)) return -ENOENT;
    return decode(ctx, raw, raw_len, value);
}

const char *tern_form(tern_ctx *ctx, const char *name) {
    const char *v;
    return tern_form_get(ctx, name, &v) == 0 ? v : NULL;
}

int tern_form_at(tern_ctx *ctx, size_t i, const char **name, const char **value) {
    *name = *value = NULL;
    tern_str b;
    int r = form_body(ctx, &b);
    if (r < 0) return r;
    const char *p = b.ptr, *end = b.ptr + b.len;
    size_t k = 0;
    while (p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *stop = amp ? amp : end;
        if (stop > p && k++ == i) {
            /* "a=1", "a" (empty value); empty pairs ("a=1&&b=2") are skipped */
            const char *eq = memchr(p, '=', (size_t)(stop - p));
            const char *kend = eq ? eq : stop;
            if ((r = decode(ctx, p, (size_t)(kend - p), name)) < 0) return r;
            return eq ? decode(ctx, eq + 1, (size_t)(stop - eq - 1), value)
                      : decode(ctx, "", 0, value);
        }
        p = stop + 1;
    }
    return -ENOENT;
}
