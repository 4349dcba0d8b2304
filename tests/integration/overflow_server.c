/* A server with a handler that overflows its stack, for
 * test_stack_overflow.py: the demo must not carry such a route. Prints
 * "overflow-server listening on PORT" and serves until it dies.
 *   GET /ok                     200 "ok"
 *   GET /users/:id/overflow     a 300 KiB local array on a 256 KiB stack
 *                               (the report): the process dies of
 *                               SIGSEGV, saying which route overflowed */
#include <stdio.h>
#include <string.h>
#include <tern.h>

static volatile char sink;

static void ok(tern_ctx *ctx) { tern_resp_set_body_static(ctx, "ok", 2); }

static void overflow(tern_ctx *ctx) {
    volatile char big[300 * 1024];
    /* every page written through the volatile lvalue (a memset on a cast
     * pointer lets the optimiser drop the array) */
    for (size_t i = 0; i < sizeof big; i += 256) big[i] = 'x';
    sink = big[sizeof big / 2];
    tern_resp_set_body_static(ctx, "survived", 8);
}

int main(void) {
    tern_server *s = tern_server_new();
    if (!s) return 1;
    tern_server_set_address(s, "127.0.0.1", 0);
    tern_server_set_workers(s, 1);
    tern_route(s, TERN_GET, "/ok", ok);
    tern_route(s, TERN_GET, "/users/:id/overflow", overflow);
    if (tern_server_bind(s) < 0) return 1;
    printf("overflow-server listening on %u\n", tern_server_port(s));
    fflush(stdout);
    int r = tern_server_run(s);
    tern_server_free(s);
    return r < 0 ? 1 : 0;
}
