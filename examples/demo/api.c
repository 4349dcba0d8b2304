/* The demo's /api/ group: middleware around ordinary handlers. Every
 * request under /api/ gets a request ID (X-Request-ID, kept or minted),
 * CORS (any origin, preflights cached 10 minutes), security headers and a
 * per-client rate limit (--api-rate requests/s per peer address, the
 * bucket as deep as one second of it, shared by all workers: 429 +
 * Retry-After past it). Nothing outside /api/ runs this middleware. */
#include <errno.h>
#include <stdio.h>

#include <tern.h>

#include "demo.h"

static tern_rate_limit *api_limit;

static const tern_cors api_cors = {
    .origins = NULL, /* any origin */
    .methods = "GET, HEAD, POST",
    .headers = NULL, /* echo what the preflight asks for */
    .expose = "X-Request-ID",
    .max_age = 600,
};

static tern_str or_empty(const char *s) {
    return (tern_str){s ? s : "", 0};
}

/* {"method":..,"path":..,"request_id":..,"origin":..,"user_agent":..,"content_type":..} */
static void api_echo(tern_ctx *ctx) {
    tern_str m = tern_req_method_str(ctx);
    char *method = tern_alloc(ctx, m.len + 1);
    if (!method) return;
    for (size_t i = 0; i < m.len; i++) method[i] = m.ptr[i];
    method[m.len] = 0;
    const char *fields[][2] = {
        {"method", method},
        {"path", tern_req_path(ctx)},
        {"request_id", or_empty(tern_req_id(ctx)).ptr},
        {"origin", or_empty(tern_req_header(ctx, "Origin")).ptr},
        {"user_agent", or_empty(tern_req_header(ctx, "User-Agent")).ptr},
        {"content_type", or_empty(tern_req_header(ctx, "Content-Type")).ptr},
    };
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    tern_resp_set_header(ctx, "Cache-Control", "no-store");
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++)
        tern_resp_printf(ctx, "%s\"%s\":%s", i ? "," : "{", fields[i][0],
                         tern_json_quote(ctx, fields[i][1]));
    tern_resp_printf(ctx, ",\"body_bytes\":%zu}\n", tern_req_body(ctx).len);
}

int demo_register_api(tern_server *s, unsigned rate) {
    tern_rate_limit_opts ro = {.rate = rate, .burst = rate};
    api_limit = tern_rate_limit_new(&ro);
    if (!api_limit) return -errno;
    /* outermost first: the request ID is there for every answer, 429s and
     * preflights included; CORS headers reach a 429 so a browser can read it */
    int r = tern_use_group(s, "/api/", tern_mw_request_id, NULL);
    if (r == 0) r = tern_use_group(s, "/api/", tern_mw_security_headers, NULL);
    if (r == 0) r = tern_use_group(s, "/api/", tern_mw_cors, (void *)&api_cors);
    if (r == 0) r = tern_use_group(s, "/api/", tern_mw_rate_limit, api_limit);
    if (r == 0) r = tern_route(s, TERN_GET, "/api/echo", api_echo);
    if (r == 0) r = tern_route(s, TERN_POST, "/api/echo", api_echo);
    return r;
}

void demo_api_cleanup(void) {
    tern_rate_limit_free(api_limit);
    api_limit = NULL;
}
