/* hello.c's twin for the install test: the same public API, but on a free
 * port (hello.c's 8080 may be taken on a shared machine), printed on stdout
 * so tests/check/install.sh can request it. */
#include <stdio.h>
#include <tern.h>

static void hello(tern_ctx *ctx) {
    tern_resp_set_header(ctx, "Content-Type", "text/plain");
    tern_resp_set_body_static(ctx, "Hello from an installed tern", 28);
}

int main(void) {
    tern_server *s = tern_server_new();
    if (!s || tern_server_set_address(s, "127.0.0.1", 0) < 0 || tern_server_set_workers(s, 1) < 0 ||
        tern_route(s, TERN_GET, "/", hello) < 0 || tern_server_bind(s) < 0) {
        fprintf(stderr, "install_smoke: could not set up the server\n");
        return 1;
    }
    printf("port %u\n", (unsigned)tern_server_port(s));
    fflush(stdout);
    int r = tern_server_run(s); /* until SIGTERM */
    tern_server_free(s);
    return r < 0 ? 1 : 0;
}
