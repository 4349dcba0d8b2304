/* Request context: response headers are validated (no response splitting),
 * framing headers are refused, the arena reports out-of-memory instead of
 * aborting, body helpers and JSON quoting (through a real server: the test
 * client of tern/testing.h). */
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "check.h"
#include "http/ctx.h"

/* Under ASan an impossible malloc aborts unless told to return NULL like
 * the real allocator does; that NULL is what this test is about. */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "allocator_may_return_null=1"; }

static tern_ctx *fresh(tern_ctx *ctx) {
    tern__ctx_init(ctx);
    return ctx;
}

static void test_header_validation(void) {
    tern_ctx c, *ctx = fresh(&c);
    CHECK_INT(tern_resp_set_header(ctx, "X-Ok", "value with spaces\tand tab"), 0);
    CHECK_INT(tern_resp_set_header(ctx, "X-Bad", "a\r\nSet-Cookie: evil=1"), -EINVAL);
    CHECK_INT(tern_resp_set_header(ctx, "X-Bad", "line\nfeed"), -EINVAL);
    CHECK_INT(tern_resp_set_header(ctx, "X-Bad", "del\x7f"), -EINVAL);
    CHECK_INT(tern_resp_set_header(ctx, "Bad Name", "v"), -EINVAL);
    CHECK_INT(tern_resp_set_header(ctx, "Bad:Name", "v"), -EINVAL);
    CHECK_INT(tern_resp_set_header(ctx, "", "v"), -EINVAL);
    CHECK_INT(tern_resp_set_header(ctx, "X-\r\nInjected", "v"), -EINVAL);
    CHECK_INT(tern_resp_set_header(ctx, "X-Obs", "caf\xc3\xa9"), 0); /* obs-text is allowed */
    CHECK_INT(tern_resp_set_header(ctx, "Content-Length", "5"), -EPERM);
    CHECK_INT(tern_resp_set_header(ctx, "transfer-encoding", "chunked"), -EPERM);
    CHECK_INT(ctx->num_resp, 2);
    /* set replaces, add appends, remove removes all */
    CHECK_INT(tern_resp_set_header(ctx, "x-ok", "second"), 0);
    CHECK_INT(ctx->num_resp, 2);
    CHECK_INT(tern_resp_add_header(ctx, "X-Ok", "third"), 0);
    CHECK_INT(ctx->num_resp, 3);
    CHECK_INT(tern_resp_remove_header(ctx, "X-OK"), 0);
    CHECK_INT(ctx->num_resp, 1);
    CHECK_INT(tern_resp_remove_header(ctx, "X-OK"), -ENOENT);
    /* Connection: close is a request to close, not a stored header */
    CHECK_INT(tern_resp_set_header(ctx, "Connection", "close"), 0);
    CHECK(ctx->close);
    CHECK_INT(ctx->num_resp, 1);
    /* many headers outgrow the inline array */
    char name[16];
    for (int i = 0; i < 40; i++) {
        snprintf(name, sizeof name, "X-N%d", i);
        CHECK_INT(tern_resp_add_header(ctx, name, "v"), 0);
    }
    CHECK_INT(ctx->num_resp, 41);
    tern__ctx_release(ctx);
}

static void test_arena_oom(void) {
    tern_ctx c, *ctx = fresh(&c);
    void *small = tern_alloc(ctx, 16);
    CHECK(small != NULL);
    CHECK(((uintptr_t)small & 15) == 0);
    CHECK(!ctx->oom);
    /* an impossible allocation fails cleanly and marks the request: the
     * connection code then answers 503 instead of aborting */
    CHECK(tern_alloc(ctx, SIZE_MAX / 2) == NULL);
    CHECK(ctx->oom);
    CHECK(tern_alloc(ctx, SIZE_MAX) == NULL);
    /* big allocations beyond the inline chunk come from the heap and are
     * freed with the request (ASan would report a leak otherwise) */
    for (int i = 0; i < 50; i++) CHECK(tern_alloc(ctx, 10000) != NULL);
    tern__ctx_release(ctx);
}

/* The body helpers, run in a real handler through the test client
 * (tern/testing.h): what they build is checked on the wire, as a client
 * gets it, rather than in the context's fields. */
static void bodies_handler(tern_ctx *ctx) {
    CHECK_INT(tern_resp_set_body(ctx, "abc", 3), 0);
    CHECK_INT(tern_resp_append_body(ctx, "def", 3), 0);
    CHECK_INT(tern_resp_printf(ctx, "%d-%s", 42, "x"), 0); /* appends: "abcdef42-x" */
    const char *step = tern_req_query(ctx, "step");
    if (step && strcmp(step, "printf") == 0) return;
    tern_resp_set_body_static(ctx, "static", 6);
    if (step && strcmp(step, "static") == 0) return;
    CHECK_INT(tern_resp_text(ctx, 201, "made\n"), 0);
    if (step && strcmp(step, "text") == 0) return;
    /* a body bigger than the inline arena */
    char big[5000];
    memset(big, 'q', sizeof big);
    CHECK_INT(tern_resp_set_body(ctx, big, sizeof big), 0);
    CHECK_INT(tern_resp_set_header(ctx, "X-Quote", tern_json_quote(ctx, "a\"b\\c")), 0);
    CHECK_INT(tern_resp_set_header(ctx, "X-Id", tern_sprintf(ctx, "%s/%03d", "id", 7)), 0);
    CHECK_INT(tern_resp_set_header(ctx, "X-Bad", "a\r\nSet-Cookie: evil=1"), -EINVAL);
}

static void test_bodies(void) {
    tern_server *s = tern_server_new();
    tern_server_set_workers(s, 1);
    tern_route(s, TERN_GET, "/bodies", bodies_handler);
    static const struct {
        const char *target;
        int status;
        const char *body;
    } steps[] = {
        {"/bodies?step=printf", 200, "abcdef42-x"},
        {"/bodies?step=static", 200, "static"},
        {"/bodies?step=text", 201, "made\n"},
    };
    tern_test_response r;
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++) {
        CHECK_INT(tern_test_do(s, &(tern_test_request){.target = steps[i].target}, &r), 0);
        CHECK_INT(r.status, steps[i].status);
        CHECK_MEM(r.body, r.body_len, steps[i].body);
        tern_test_response_free(&r);
    }
    CHECK_INT(tern_test_do(s, &(tern_test_request){.target = "/bodies"}, &r), 0);
    CHECK_INT(r.status, 201);
    CHECK_INT(r.body_len, 5000);
    CHECK(r.body_len == 5000 && r.body[0] == 'q' && r.body[4999] == 'q');
    CHECK_STR(tern_test_header(&r, "Content-Length"), "5000");
    CHECK_STR(tern_test_header(&r, "X-Quote"), "\"a\\\"b\\\\c\"");
    CHECK_STR(tern_test_header(&r, "X-Id"), "id/007");
    CHECK(tern_test_header(&r, "X-Bad") == NULL && tern_test_header(&r, "Set-Cookie") == NULL);
    tern_test_response_free(&r);
    CHECK_INT(tern_test_stop(s), 0);
    tern_server_free(s);
}

static void test_error_page_echoes_nothing(void) {
    tern_ctx c, *ctx = fresh(&c);
    tern_resp_set_header(ctx, "X-From-Handler", "secret");
    tern__ctx_error(ctx, 400, "malformed request");
    CHECK_INT(tern_resp_status(ctx), 400);
    CHECK_MEM(ctx->resp_body, ctx->resp_body_len, "400 Bad Request: malformed request\n");
    CHECK_INT(ctx->num_resp, 1); /* only Content-Type: handler headers are dropped */
    tern__ctx_release(ctx);
}

int main(void) {
    test_header_validation();
    test_arena_oom();
    test_bodies();
    test_error_page_echoes_nothing();
    return check_done();
}
