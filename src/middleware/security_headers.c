/* Security headers (see tern/middleware.h): set after the handler, each
 * only when the handler did not set its own. */
#include <stdio.h>

#include "middleware/mw.h"
#include "server/server.h"

static void set_default(tern_ctx *ctx, const char *name, const char *value) {
    if (value[0] && !tern__resp_has_header(ctx, name)) tern_resp_set_header(ctx, name, value);
}

static void apply(tern_ctx *ctx, const tern_security_headers *o) {
    set_default(ctx, "X-Content-Type-Options", "nosniff");
    set_default(ctx, "X-Frame-Options", o && o->frame_options ? o->frame_options : "DENY");
    set_default(ctx, "Referrer-Policy",
                o && o->referrer_policy ? o->referrer_policy : "no-referrer");
    /* HSTS over plain HTTP is ignored by browsers (RFC 6797 §7.2) and would
     * only mislead: sent when this server speaks TLS */
    if ((!o || !o->hsts_off) && tern__server_tls(tern_ctx_server(ctx)) &&
        !tern__resp_has_header(ctx, "Strict-Transport-Security")) {
        char v[48];
        snprintf(v, sizeof v, "max-age=%u", o && o->hsts_max_age ? o->hsts_max_age : 31536000u);
        tern_resp_set_header(ctx, "Strict-Transport-Security", v);
    }
}

void tern_mw_security_headers(tern_ctx *ctx, tern_next *next, void *arg) {
    const tern_security_headers *o = arg;
    apply(ctx, o); /* before: a streamed answer's head leaves with them */
    tern_next_call(next);
    if (ctx->stream_state == TERN__STREAM_NONE)
        apply(ctx, o); /* after: an error page dropped them */
}
