/* What the ready-made middleware share: their testable pieces. */
#ifndef TERN_MIDDLEWARE_MW_H
#define TERN_MIDDLEWARE_MW_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <strings.h>

#include "http/ctx.h"
#include "tern/middleware.h"

/* Non-zero when the answer already has the header. */
static inline int tern__resp_has_header(const tern_ctx *ctx, const char *name) {
    size_t n = strlen(name);
    for (uint32_t i = 0; i < ctx->num_resp; i++)
        if (ctx->resp[i].name_len == n && strncasecmp(ctx->resp[i].name, name, n) == 0) return 1;
    return 0;
}

/* CORS decisions (cors.c). */
int tern__cors_any_origin(const tern_cors *c);
int tern__cors_origin_allowed(const tern_cors *c, const char *origin);
/* The requested method is in c->methods (or CORS-safelisted). */
int tern__cors_method_allowed(const tern_cors *c, const char *method);
/* Access-Control-Allow-Origin's value for an allowed origin: "*" only for
 * any origin without credentials, else the origin itself. */
const char *tern__cors_allow_origin(const tern_cors *c, const char *origin);

/* Token bucket (rate_limit.c): takes one token from a bucket holding
 * *tokens at *stamp_ns, refilled at rate/s up to burst. 0 when taken, else
 * the seconds until a token is back (>= 1). */
unsigned tern__bucket_take(double *tokens, uint64_t *stamp_ns, uint64_t now_ns, double rate,
                           double burst);

/* The rate limiter's table: 0 when the client with this key may go on,
 * else Retry-After in seconds. */
unsigned tern__rate_limit_take(tern_rate_limit *rl, uint64_t key, uint64_t now_ns);

#endif
