/* Request context: accessors, response building and the per-request arena. */
#include "http/ctx.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/compress.h"
#include "http/h1.h"
#include "http/url.h"

void tern__ctx_init(tern_ctx *ctx) {
    memset(ctx, 0, offsetof(tern_ctx, resp_inline));
    ctx->status = 200;
    ctx->resp = ctx->resp_inline;
    ctx->cap_resp = TERN_CTX_INLINE_HEADERS;
    ctx->arena.ptr = ctx->arena_inline;
    ctx->arena.left = sizeof ctx->arena_inline;
    ctx->arena.chunks = NULL;
}

/* What a response may own besides the arena: kept out of line, so a plain
 * response pays two bit tests for it. */
static __attribute__((noinline)) void release_owned(tern_ctx *ctx) {
    if (ctx->resp_file) close(ctx->resp_file_fd);
    if (ctx->stream_encoded) tern__encoder_free(ctx->stream_enc);
    ctx->resp_file = ctx->stream_encoded = 0;
}

int tern__ctx_defer(tern_ctx *ctx, void (*fn)(void *arg), void *arg) {
    struct tern__ctx_defer *d = tern_alloc(ctx, sizeof *d);
    if (!d) return -ENOMEM;
    *d = (struct tern__ctx_defer){ctx->defers, fn, arg};
    ctx->defers = d;
    return 0;
}

void tern__ctx_release(tern_ctx *ctx) {
    if (ctx->upgrade_release) ctx->upgrade_release(ctx->upgrade);
    ctx->upgrade_release = NULL;
    for (struct tern__ctx_defer *d = ctx->defers; d; d = d->next) d->fn(d->arg);
    ctx->defers = NULL;
    if (__builtin_expect(ctx->resp_file, 0) || __builtin_expect(ctx->stream_encoded, 0)) release_owned(ctx);
    tern__arena_chunk *c = ctx->arena.chunks;
    while (c) {
        tern__arena_chunk *next = c->next;
        free(c);
        c = next;
    }
    ctx->arena.chunks = NULL;
}

/* ---- arena --------------------------------------------------------------- */

void *tern_alloc(tern_ctx *ctx, size_t n) {
    tern__arena *a = &ctx->arena;
    size_t pad = (size_t)(-(uintptr_t)a->ptr & 15);
    if (n + pad <= a->left) {
        void *p = a->ptr + pad;
        a->ptr += pad + n;
        a->left -= pad + n;
        return p;
    }
    /* new chunk: at least 4 KiB so small allocations amortise the malloc,
     * exactly sized beyond that so big bodies do not waste a doubling */
    size_t size = n > 4096 - sizeof(tern__arena_chunk) ? n : 4096 - sizeof(tern__arena_chunk);
    if (size > SIZE_MAX - sizeof(tern__arena_chunk) - 16) {
        ctx->oom = 1;
        return NULL;
    }
    tern__arena_chunk *c = malloc(sizeof *c + size + 16);
    if (!c) {
        ctx->oom = 1;
        return NULL;
    }
    c->next = a->chunks;
    c->size = size;
    a->chunks = c;
    char *base = c->data + (-(uintptr_t)c->data & 15);
    a->ptr = base + n;
    a->left = size - n;
    return base;
}

char *tern_strdup(tern_ctx *ctx, const char *s) {
    size_t n = strlen(s);
    char *p = tern_alloc(ctx, n + 1);
    if (p) memcpy(p, s, n + 1);
    return p;
}

__attribute__((format(printf, 3, 0))) static char *arena_vsprintf(tern_ctx *ctx, size_t *len_out,
                                                                 const char *fmt, va_list ap) {
    va_list ap2;
    va_copy(ap2, ap);
    /* format straight into the arena's free space when it fits */
    size_t room = ctx->arena.left;
    int n = vsnprintf(ctx->arena.ptr, room, fmt, ap);
    if (n < 0) {
        va_end(ap2);
        return NULL;
    }
    char *p;
    if ((size_t)n < room) {
        /* claim what was written; text needs no alignment */
        p = ctx->arena.ptr;
        ctx->arena.ptr += (size_t)n + 1;
        ctx->arena.left -= (size_t)n + 1;
    } else {
        p = tern_alloc(ctx, (size_t)n + 1);
        if (p) vsnprintf(p, (size_t)n + 1, fmt, ap2);
    }
    va_end(ap2);
    if (len_out) *len_out = (size_t)n;
    return p;
}

char *tern_sprintf(tern_ctx *ctx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    char *p = arena_vsprintf(ctx, NULL, fmt, ap);
    va_end(ap);
    return p;
}

/* ---- request ------------------------------------------------------------- */

unsigned tern_req_method(const tern_ctx *ctx) { return ctx->method; }
tern_str tern_req_method_str(const tern_ctx *ctx) { return ctx->method_str; }
tern_str tern_req_target(const tern_ctx *ctx) { return ctx->target; }
const char *tern_req_path(const tern_ctx *ctx) { return ctx->path; }
tern_str tern_req_query_string(const tern_ctx *ctx) { return ctx->query; }
tern_str tern_req_authority(const tern_ctx *ctx) { return ctx->authority; }
tern_str tern_req_body(const tern_ctx *ctx) { return (tern_str){ctx->body, ctx->body_len}; }
int tern_req_http_minor(const tern_ctx *ctx) { return (int)ctx->minor; }

const char *tern_req_query(tern_ctx *ctx, const char *name) {
    const char *v;
    return tern_req_query_get(ctx, name, &v) == 0 ? v : NULL;
}

const char *tern_req_header(const tern_ctx *ctx, const char *name) {
    size_t n = strlen(name);
    for (uint32_t i = 0; i < ctx->num_headers; i++) {
        const tern__http_header *h = &ctx->headers[i];
        if (h->name_len == n && strncasecmp(ctx->head + h->name_off, name, n) == 0)
            return ctx->head + h->value_off;
    }
    return NULL;
}

int tern_req_header_at(const tern_ctx *ctx, size_t i, tern_str *name, tern_str *value) {
    if (i >= ctx->num_headers) return -1;
    const tern__http_header *h = &ctx->headers[i];
    if (name) *name = (tern_str){ctx->head + h->name_off, h->name_len};
    if (value) *value = (tern_str){ctx->head + h->value_off, h->value_len};
    return 0;
}

const char *tern_req_param(const tern_ctx *ctx, const char *name) {
    for (uint32_t i = 0; i < ctx->num_params; i++)
        if (strcmp(ctx->param_names[i], name) == 0) return ctx->param_values[i];
    return NULL;
}

int tern_req_socket_peer(const tern_ctx *ctx, struct sockaddr_storage *addr, socklen_t *len) {
    *len = sizeof *addr;
    if (!ctx->exchange) return -ENOTCONN;
    return getpeername(ctx->exchange->t.fd, (struct sockaddr *)addr, len) < 0 ? -errno : 0;
}

int tern_req_peer(const tern_ctx *ctx, struct sockaddr_storage *addr, socklen_t *len) {
    if (!ctx->exchange) return -ENOTCONN;
    const tern__h1 *x = ctx->exchange;
    if (x->hooks->peer) return x->hooks->peer(x->drv, ctx, x->t.fd, addr, len);
    return tern_req_socket_peer(ctx, addr, len);
}

const char *tern_req_tls_peer_subject(tern_ctx *ctx) {
    if (!ctx->exchange) return NULL;
    char buf[1024];
    const char *subject = tern__transport_peer_subject(&ctx->exchange->t, buf, sizeof buf);
    return subject ? tern_strdup(ctx, subject) : NULL;
}

/* ---- response ------------------------------------------------------------ */

int tern_resp_set_status(tern_ctx *ctx, int status) {
    /* a handler's answer is final: 1xx would leave the client waiting for
     * the real one (and take the next response for it), and three digits
     * 600..999 are no status at all (RFC 9110 §15) */
    if (status < 200 || status > 599) return -EINVAL;
    ctx->status = status;
    return 0;
}
int tern_resp_status(const tern_ctx *ctx) { return ctx->status; }


int tern__header_name_valid(const char *name, size_t len) {
    if (len == 0) return 0;
    unsigned ok = 1;
    /* one table lookup per byte, no branch */
    for (size_t i = 0; i < len; i++) ok &= tern__http_char_class[(unsigned char)name[i]] & TERN_CHAR_TOKEN;
    return (int)ok;
}

int tern__header_value_valid(const char *value, size_t len) {
    /* field-value: HTAB, SP, VCHAR, obs-text; CR, LF and NUL never.
     * (ch - 0x20) wraps below SP, so one compare finds every control byte
     * except DEL; HTAB is let through after. */
    unsigned bad = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)value[i];
        bad |= ((unsigned char)(ch - 0x20) >= 0x5f && ch < 0x80 && ch != '\t');
    }
    return !bad;
}

static int name_is(const char *a, size_t alen, const char *b) {
    size_t blen = strlen(b);
    return alen == blen && strncasecmp(a, b, alen) == 0;
}

static int add_header(tern_ctx *ctx, const char *name, const char *value, int replace) {
    if (!name || !value) return -EINVAL;
    size_t nlen = strlen(name), vlen = strlen(value);
    if (!tern__header_name_valid(name, nlen) || !tern__header_value_valid(value, vlen))
        return -EINVAL;
    if (nlen > UINT32_MAX || vlen > UINT32_MAX) return -EINVAL;
    /* names tern manages are told apart by length first: most headers a
     * handler sets (Content-Type: 12) skip every compare */
    switch (nlen) {
    case 14:
    case 17:
        /* framing headers belong to tern: a handler-set Content-Length or
         * Transfer-Encoding could desynchronise the client */
        if (name_is(name, nlen, "Content-Length") || name_is(name, nlen, "Transfer-Encoding"))
            return -EPERM;
        break;
    case 10:
        if (name_is(name, nlen, "Connection")) {
            if (strcasecmp(value, "close") == 0) ctx->close = 1;
            return 0;
        }
        break;
    case 6:
        if (name_is(name, nlen, "Server")) ctx->server_set = 1;
        break;
    case 4:
        /* the handler's own Date replaces the server's: never two */
        if (name_is(name, nlen, "Date")) ctx->date_set = 1;
        break;
    }
    if (replace && ctx->num_resp) tern_resp_remove_header(ctx, name);
    if (ctx->num_resp == ctx->cap_resp) {
        uint32_t cap = ctx->cap_resp * 2;
        tern__resp_header *h = tern_alloc(ctx, cap * sizeof *h);
        if (!h) return -ENOMEM;
        memcpy(h, ctx->resp, ctx->num_resp * sizeof *h);
        ctx->resp = h;
        ctx->cap_resp = cap;
    }
    char *copy = tern_alloc(ctx, nlen + vlen + 2);
    if (!copy) return -ENOMEM;
    memcpy(copy, name, nlen + 1);
    memcpy(copy + nlen + 1, value, vlen + 1);
    ctx->resp[ctx->num_resp++] = (tern__resp_header){copy, copy + nlen + 1, (uint32_t)nlen, (uint32_t)vlen};
    return 0;
}

int tern_resp_set_header(tern_ctx *ctx, const char *name, const char *value) {
    return add_header(ctx, name, value, 1);
}
int tern_resp_add_header(tern_ctx *ctx, const char *name, const char *value) {
    return add_header(ctx, name, value, 0);
}

int tern_resp_remove_header(tern_ctx *ctx, const char *name) {
    size_t nlen = strlen(name);
    uint32_t j = 0, removed = 0;
    for (uint32_t i = 0; i < ctx->num_resp; i++) {
        if (ctx->resp[i].name_len == nlen && strncasecmp(ctx->resp[i].name, name, nlen) == 0) {
            removed++;
            continue;
        }
        ctx->resp[j++] = ctx->resp[i];
    }
    ctx->num_resp = j;
    if (removed && name_is(name, nlen, "Server")) ctx->server_set = 0;
    if (removed && name_is(name, nlen, "Date")) ctx->date_set = 0;
    return removed ? 0 : -ENOENT;
}

void tern__resp_set_file(tern_ctx *ctx, int fd, uint64_t offset, uint64_t len) {
    if (ctx->resp_file) close(ctx->resp_file_fd);
    ctx->resp_file = 1;
    ctx->resp_file_fd = fd;
    ctx->resp_file_off = offset;
    ctx->resp_file_len = len;
    ctx->resp_body = NULL;
    ctx->resp_body_len = ctx->resp_body_cap = 0;
}

void tern_resp_set_body_static(tern_ctx *ctx, const void *data, size_t len) {
    ctx->resp_body = data;
    ctx->resp_body_len = len;
    ctx->resp_body_cap = 0;
}

int tern_resp_set_body(tern_ctx *ctx, const void *data, size_t len) {
    ctx->resp_body = NULL;
    ctx->resp_body_len = 0;
    ctx->resp_body_cap = 0;
    return tern_resp_append_body(ctx, data, len);
}

int tern_resp_append_body(tern_ctx *ctx, const void *data, size_t len) {
    if (len == 0) {
        if (!ctx->resp_body) ctx->resp_body = "";
        return 0;
    }
    size_t need = ctx->resp_body_len + len;
    if (need < len) return -ENOMEM;
    if (ctx->resp_body_cap < need) {
        size_t cap = ctx->resp_body_cap ? ctx->resp_body_cap * 2 : 64;
        while (cap < need) cap *= 2;
        char *p = tern_alloc(ctx, cap);
        if (!p) return -ENOMEM;
        if (ctx->resp_body_len) memcpy(p, ctx->resp_body, ctx->resp_body_len);
        ctx->resp_body = p;
        ctx->resp_body_cap = cap;
    }
    memcpy((char *)ctx->resp_body + ctx->resp_body_len, data, len);
    ctx->resp_body_len = need;
    return 0;
}

int tern_resp_vprintf(tern_ctx *ctx, const char *fmt, va_list ap) {
    size_t n;
    char *p = arena_vsprintf(ctx, &n, fmt, ap);
    if (!p) return -ENOMEM;
    if (ctx->resp_body_len == 0) {
        /* common case: the formatted text is the body, no second copy */
        ctx->resp_body = p;
        ctx->resp_body_len = n;
        ctx->resp_body_cap = 0;
        return 0;
    }
    return tern_resp_append_body(ctx, p, n);
}

int tern_resp_printf(tern_ctx *ctx, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int r = tern_resp_vprintf(ctx, fmt, ap);
    va_end(ap);
    return r;
}

int tern_resp_text(tern_ctx *ctx, int status, const char *text) {
    int r = tern_resp_set_status(ctx, status);
    if (r < 0) return r;
    r = tern_resp_set_header(ctx, "Content-Type", "text/plain; charset=utf-8");
    return r < 0 ? r : tern_resp_set_body(ctx, text, strlen(text));
}

int tern_resp_json(tern_ctx *ctx, int status, const char *json) {
    int r = tern_resp_set_status(ctx, status);
    if (r < 0) return r;
    r = tern_resp_set_header(ctx, "Content-Type", "application/json");
    return r < 0 ? r : tern_resp_set_body(ctx, json, strlen(json));
}

const char *tern_json_quote(tern_ctx *ctx, const char *s) {
    size_t n = strlen(s);
    /* worst case: every byte becomes \u00XX */
    char *out = tern_alloc(ctx, n * 6 + 3);
    if (!out) return NULL;
    char *o = out;
    *o++ = '"';
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        switch (*p) {
        case '"': *o++ = '\\'; *o++ = '"'; break;
        case '\\': *o++ = '\\'; *o++ = '\\'; break;
        case '\n': *o++ = '\\'; *o++ = 'n'; break;
        case '\r': *o++ = '\\'; *o++ = 'r'; break;
        case '\t': *o++ = '\\'; *o++ = 't'; break;
        case '\b': *o++ = '\\'; *o++ = 'b'; break;
        case '\f': *o++ = '\\'; *o++ = 'f'; break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                static const char hex[] = "0123456789abcdef";
                memcpy(o, "\\u00", 4);
                o[4] = hex[*p >> 4];
                o[5] = hex[*p & 15];
                o += 6;
            } else {
                *o++ = (char)*p;
            }
        }
    }
    *o++ = '"';
    *o = 0;
    return out;
}

/* ---- status codes -------------------------------------------------------- */

const char *tern__status_reason(int status, size_t *len) {
    const char *r;
    switch (status) {
    case 100: r = "Continue"; break;
    case 101: r = "Switching Protocols"; break;
    case 200: r = "OK"; break;
    case 201: r = "Created"; break;
    case 202: r = "Accepted"; break;
    case 204: r = "No Content"; break;
    case 206: r = "Partial Content"; break;
    case 301: r = "Moved Permanently"; break;
    case 302: r = "Found"; break;
    case 303: r = "See Other"; break;
    case 304: r = "Not Modified"; break;
    case 307: r = "Temporary Redirect"; break;
    case 308: r = "Permanent Redirect"; break;
    case 400: r = "Bad Request"; break;
    case 401: r = "Unauthorized"; break;
    case 403: r = "Forbidden"; break;
    case 404: r = "Not Found"; break;
    case 405: r = "Method Not Allowed"; break;
    case 406: r = "Not Acceptable"; break;
    case 408: r = "Request Timeout"; break;
    case 409: r = "Conflict"; break;
    case 410: r = "Gone"; break;
    case 411: r = "Length Required"; break;
    case 413: r = "Content Too Large"; break;
    case 414: r = "URI Too Long"; break;
    case 415: r = "Unsupported Media Type"; break;
    case 416: r = "Range Not Satisfiable"; break;
    case 417: r = "Expectation Failed"; break;
    case 422: r = "Unprocessable Content"; break;
    case 429: r = "Too Many Requests"; break;
    case 431: r = "Request Header Fields Too Large"; break;
    case 500: r = "Internal Server Error"; break;
    case 501: r = "Not Implemented"; break;
    case 502: r = "Bad Gateway"; break;
    case 503: r = "Service Unavailable"; break;
    case 504: r = "Gateway Timeout"; break;
    case 505: r = "HTTP Version Not Supported"; break;
    default: r = "Unknown"; break;
    }
    if (len) *len = strlen(r);
    return r;
}

void tern__ctx_error(tern_ctx *ctx, int status, const char *detail) {
    /* start from a clean response: whatever the handler set is dropped */
    ctx->num_resp = 0;
    ctx->server_set = 0;
    ctx->date_set = 0;
    ctx->status = status;
    ctx->oom = 0;
    if (ctx->resp_file) {
        close(ctx->resp_file_fd);
        ctx->resp_file = 0;
    }
    const char *reason = tern__status_reason(status, NULL);
    char *body = detail ? tern_sprintf(ctx, "%d %s: %s\n", status, reason, detail)
                        : tern_sprintf(ctx, "%d %s\n", status, reason);
    if (!body) body = (char *)"error\n";
    add_header(ctx, "Content-Type", "text/plain; charset=utf-8", 0);
    tern_resp_set_body_static(ctx, body, strlen(body));
}

void *tern_route_data(const tern_ctx *ctx) { return ctx->route_data; }

void tern__ctx_set_allow(tern_ctx *ctx, unsigned allowed) {
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        {TERN_GET, "GET"},         {TERN_HEAD, "HEAD"},       {TERN_POST, "POST"},
        {TERN_PUT, "PUT"},         {TERN_DELETE, "DELETE"},   {TERN_PATCH, "PATCH"},
        {TERN_OPTIONS, "OPTIONS"}, {TERN_CONNECT, "CONNECT"}, {TERN_TRACE, "TRACE"},
    };
    char buf[96];
    size_t n = 0;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (!(allowed & names[i].bit)) continue;
        size_t l = strlen(names[i].name);
        if (n) {
            buf[n++] = ',';
            buf[n++] = ' ';
        }
        memcpy(buf + n, names[i].name, l);
        n += l;
    }
    buf[n] = 0;
    tern_resp_set_header(ctx, "Allow", buf);
}
