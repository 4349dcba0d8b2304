/* CORS (Fetch standard, "CORS protocol"): preflights answered here, the
 * allowed origin's headers added to other answers (see tern/middleware.h). */
#include <string.h>

#include "middleware/mw.h"

#define DEFAULT_METHODS "GET, HEAD, POST"

int tern__cors_any_origin(const tern_cors *c) {
    return !c->origins || (c->origins[0] && strcmp(c->origins[0], "*") == 0);
}

int tern__cors_origin_allowed(const tern_cors *c, const char *origin) {
    if (!origin || !origin[0]) return 0;
    if (tern__cors_any_origin(c)) return 1;
    /* origins are compared byte for byte (scheme, host and port, as the
     * browser serialises them) */
    for (const char *const *o = c->origins; *o; o++)
        if (strcmp(*o, origin) == 0) return 1;
    return 0;
}

/* `token` is one of the comma-separated tokens of list (method names are
 * case-sensitive: RFC 9110 §9.1). */
static int list_has(const char *list, const char *token) {
    size_t n = strlen(token);
    for (const char *p = list; *p;) {
        while (*p == ' ' || *p == ',') p++;
        const char *e = p;
        while (*e && *e != ',' && *e != ' ') e++;
        if ((size_t)(e - p) == n && n && memcmp(p, token, n) == 0) return 1;
        p = e;
    }
    return 0;
}

int tern__cors_method_allowed(const tern_cors *c, const char *method) {
    if (!method || !method[0]) return 0;
    if (!strcmp(method, "GET") || !strcmp(method, "HEAD") || !strcmp(method, "POST")) return 1;
    return list_has(c->methods ? c->methods : DEFAULT_METHODS, method);
}

const char *tern__cors_allow_origin(const tern_cors *c, const char *origin) {
    return tern__cors_any_origin(c) && !c->credentials ? "*" : origin;
}

static void add_vary(tern_ctx *ctx, const tern_cors *c) {
    /* the answer depends on Origin unless it is the same "*" for everyone */
    if (!tern__cors_any_origin(c) || c->credentials) tern_resp_add_header(ctx, "Vary", "Origin");
}

static void preflight(tern_ctx *ctx, const tern_cors *c, const char *origin, const char *method) {
    if (!tern__cors_origin_allowed(c, origin) || !tern__cors_method_allowed(c, method)) {
        /* no Allow headers: the browser refuses the real request */
        tern_resp_text(ctx, 403, "CORS preflight refused\n");
        add_vary(ctx, c);
        return;
    }
    tern_resp_set_status(ctx, 204);
    tern_resp_set_header(ctx, "Access-Control-Allow-Origin", tern__cors_allow_origin(c, origin));
    tern_resp_set_header(ctx, "Access-Control-Allow-Methods",
                         c->methods ? c->methods : DEFAULT_METHODS);
    const char *req_headers = tern_req_header(ctx, "Access-Control-Request-Headers");
    const char *allow_headers = c->headers ? c->headers : req_headers;
    if (allow_headers && allow_headers[0])
        tern_resp_set_header(ctx, "Access-Control-Allow-Headers", allow_headers);
    if (c->credentials) tern_resp_set_header(ctx, "Access-Control-Allow-Credentials", "true");
    if (c->max_age) {
        char age[16];
        size_t n = 0;
        char tmp[16];
        unsigned v = c->max_age;
        do tmp[n++] = (char)('0' + v % 10);
        while ((v /= 10));
        for (size_t i = 0; i < n; i++) age[i] = tmp[n - 1 - i];
        age[n] = 0;
        tern_resp_set_header(ctx, "Access-Control-Max-Age", age);
    }
    add_vary(ctx, c);
    if (!c->headers) tern_resp_add_header(ctx, "Vary", "Access-Control-Request-Headers");
}

static void actual(tern_ctx *ctx, const tern_cors *c, const char *origin) {
    if (tern__cors_origin_allowed(c, origin)) {
        tern_resp_set_header(ctx, "Access-Control-Allow-Origin",
                             tern__cors_allow_origin(c, origin));
        if (c->credentials) tern_resp_set_header(ctx, "Access-Control-Allow-Credentials", "true");
        if (c->expose) tern_resp_set_header(ctx, "Access-Control-Expose-Headers", c->expose);
    }
    add_vary(ctx, c);
}

void tern_mw_cors(tern_ctx *ctx, tern_next *next, void *arg) {
    static const tern_cors any = {0};
    const tern_cors *c = arg ? arg : &any;
    const char *origin = tern_req_header(ctx, "Origin");
    const char *acrm = tern_req_header(ctx, "Access-Control-Request-Method");
    if (origin && acrm && tern_req_method(ctx) == TERN_OPTIONS) {
        preflight(ctx, c, origin, acrm);
        return; /* answered here: the chain stops */
    }
    /* before the handler, so a streamed answer carries them; again after
     * if an error page dropped them (it starts from clean headers) */
    actual(ctx, c, origin);
    tern_next_call(next);
    if (ctx->stream_state == TERN__STREAM_NONE && !tern__resp_has_header(ctx, "Vary") &&
        !tern__resp_has_header(ctx, "Access-Control-Allow-Origin"))
        actual(ctx, c, origin);
}
