/* The smallest tern program: one route, "Hello, World!" on port 8080. */
#include <tern.h>

static void hello(tern_ctx *ctx) {
    tern_resp_set_header(ctx, "Content-Type", "text/plain");
    tern_resp_set_body_static(ctx, "Hello, World!", 13);
}

int main(void) {
    tern_server *s = tern_server_new();
    tern_route(s, TERN_GET, "/", hello);
    int r = tern_server_run(s); /* until SIGINT or SIGTERM */
    tern_server_free(s);
    return r < 0 ? 1 : 0;
}
