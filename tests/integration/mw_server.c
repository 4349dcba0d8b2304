/* tern-test-mw-server: middleware shapes the demo has no use for, for
 * tests/integration/test_middleware.py. Prints the demo's "listening on"
 * line so the harness can drive it; takes --host, --port, --workers.
 *
 *   global:        trace "g1", trace "g2", gate (X-Block: answers 401 here)
 *   group /grp/:   trace "p1"        group /grp/deep/: trace "p2"
 *   group /after/: after (200 -> 201, body + "+after", header X-After)
 *   /grp/slow      sleeps 10 s under a 300 ms route deadline (error hook)
 *   /grp/fail      tern_resp_error 502 (error hook)
 *   /conns         connections opened and closed so far (connection hooks)
 *   /grp/stream    a streamed answer inside the group
 *   group /me/:    auth (X-Token -> a value the handler reads)
 *   group /cors/:  tern_mw_cors with two origins, credentials, PUT allowed
 *   group /rl/:    tern_mw_rate_limit keyed by X-Client, one per 20 s, burst 2
 * Every trace middleware adds X-Trace: NAME-before and NAME-after, so the
 * order of the X-Trace headers is the order the code ran in. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tern.h>

static atomic_uint opened, closed_;

static void trace(tern_ctx *ctx, tern_next *next, void *arg) {
    char v[64];
    snprintf(v, sizeof v, "%s-before", (const char *)arg);
    tern_resp_add_header(ctx, "X-Trace", v);
    tern_next_call(next);
    snprintf(v, sizeof v, "%s-after", (const char *)arg);
    tern_resp_add_header(ctx, "X-Trace", v);
    if (tern_next_call(next) != -EALREADY) tern_resp_add_header(ctx, "X-Trace", "next-twice");
}

static void gate(tern_ctx *ctx, tern_next *next, void *arg) {
    (void)arg;
    if (tern_req_header(ctx, "X-Block")) {
        tern_resp_text(ctx, 401, "blocked by middleware\n");
        return;
    }
    tern_next_call(next);
}

/* the key is this variable's address */
static const char user_key;

static void auth(tern_ctx *ctx, tern_next *next, void *arg) {
    (void)arg;
    const char *token = tern_req_header(ctx, "X-Token");
    if (token) tern_req_set_value(ctx, &user_key, tern_sprintf(ctx, "user-%s", token));
    tern_next_call(next);
}

static void whoami(tern_ctx *ctx) {
    const char *user = tern_req_value(ctx, &user_key);
    tern_resp_text(ctx, 200, user ? user : "anonymous");
}

static void after(tern_ctx *ctx, tern_next *next, void *arg) {
    (void)arg;
    tern_next_call(next);
    if (tern_resp_status(ctx) == 200) tern_resp_set_status(ctx, 201);
    tern_resp_append_body(ctx, "+after", 6);
    tern_resp_set_header(ctx, "X-After", "1");
}

static void on_error(tern_ctx *ctx, int status, const char *detail, void *arg) {
    (void)arg;
    tern_resp_set_header(ctx, "X-Error-Hook", "1");
    tern_resp_set_status(ctx, status);
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    tern_resp_set_body(ctx, "", 0);
    tern_resp_printf(ctx, "{\"error\":%d,\"detail\":%s}", status,
                     tern_json_quote(ctx, detail ? detail : ""));
}

static void conn_open(tern_server *s, int fd, void *arg) {
    (void)s, (void)fd, (void)arg;
    atomic_fetch_add(&opened, 1);
}

static void conn_close(tern_server *s, int fd, void *arg) {
    (void)s, (void)fd, (void)arg;
    atomic_fetch_add(&closed_, 1);
}

static void hello(tern_ctx *ctx) {
    tern_resp_add_header(ctx, "X-Trace", "handler");
    tern_resp_text(ctx, 200, "hello");
}

static void slow(tern_ctx *ctx) {
    tern_sleep(10000);
    tern_resp_text(ctx, 200, "too late");
}

static void fail(tern_ctx *ctx) {
    tern_resp_error(ctx, 502, "upstream broke");
}

static void stream(tern_ctx *ctx) {
    tern_resp_set_header(ctx, "Content-Type", "text/plain");
    for (int i = 0; i < 3; i++) tern_resp_stream_write(ctx, "part\n", 5);
}

static const tern_cors cors_list = {
    .origins = (const char *const[]){"https://a.example", "https://b.example:8443", NULL},
    .methods = "GET, PUT",
    .headers = "Content-Type, X-Token",
    .credentials = 1,
    .max_age = 120,
};

static void conns(tern_ctx *ctx) {
    tern_resp_printf(ctx, "{\"opened\":%u,\"closed\":%u}", atomic_load(&opened),
                     atomic_load(&closed_));
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1";
    unsigned port = 0;
    int workers = 2;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (!strcmp(argv[i], "--host")) host = argv[i + 1];
        if (!strcmp(argv[i], "--port")) port = (unsigned)atoi(argv[i + 1]);
        if (!strcmp(argv[i], "--workers")) workers = atoi(argv[i + 1]);
    }
    tern_server *s = tern_server_new();
    tern_server_set_address(s, host, (uint16_t)port);
    tern_server_set_workers(s, workers);
    tern_use_group(s, "/grp/", trace,
                   "p1"); /* a group registered first still runs after the globals */
    tern_use(s, trace, "g1");
    tern_use(s, trace, "g2");
    tern_use(s, gate, NULL);
    tern_use_group(s, "/grp/deep/", trace, "p2");
    tern_use_group(s, "/after/", after, NULL);
    tern_use_group(s, "/me/", auth, NULL); /* "/me/" holds "/me" too */
    tern_use_group(s, "/cors/", tern_mw_cors, (void *)&cors_list);
    tern_rate_limit *rl = tern_rate_limit_new(
        &(tern_rate_limit_opts){.rate = 0.05, .burst = 2, .key_header = "X-Client"});
    tern_use_group(s, "/rl/", tern_mw_rate_limit, rl);
    tern_on_error(s, on_error, NULL);
    tern_on_conn(s, conn_open, conn_close, NULL);
    tern_route(s, TERN_GET, "/plain", hello);
    tern_route(s, TERN_GET, "/grp/x", hello);
    tern_route(s, TERN_GET, "/grp/deep/x", hello);
    tern_route(s, TERN_GET, "/after/x", hello);
    tern_route_with(s, TERN_GET, "/grp/slow", slow, &(tern_route_opts){.timeout_ms = 300});
    tern_route(s, TERN_GET, "/grp/fail", fail);
    tern_route(s, TERN_GET, "/conns", conns);
    tern_route(s, TERN_GET, "/grp/stream", stream);
    tern_route(s, TERN_GET, "/me", whoami);
    tern_route(s, TERN_GET | TERN_PUT, "/cors/x", hello);
    tern_route(s, TERN_GET, "/rl/x", hello);
    if (tern_server_bind(s) < 0) return 1;
    printf("tern-demo listening on http://%s:%u (%d workers)\n", host, tern_server_port(s),
           tern_server_workers(s));
    fflush(stdout);
    int r = tern_server_run(s);
    tern_server_free(s);
    tern_rate_limit_free(rl);
    return r < 0 ? 1 : 0;
}
