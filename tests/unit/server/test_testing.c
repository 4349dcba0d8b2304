/* The test client (tern/testing.h) and, through it, the handler-level API
 * of forms, multipart uploads, cookies and JSON bodies: every request runs
 * through a real server's routes on a real worker, without a socket the
 * test has to manage. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tern.h>

#include "check.h"

static void hello(tern_ctx *ctx) {
    tern_resp_text(ctx, 200, "hi");
}

static void streamed(tern_ctx *ctx) {
    tern_resp_set_header(ctx, "Content-Type", "text/plain");
    if (tern_resp_stream_start(ctx, -1) < 0) return; /* chunked */
    static char big[100000];
    memset(big, 'z', sizeof big);
    tern_resp_stream_write(ctx, "one,", 4);
    tern_resp_stream_write(ctx, big, sizeof big);
    tern_resp_stream_write(ctx, ",two", 4);
}

static void json_sum(tern_ctx *ctx) {
    tern_json_error err;
    const tern_json *doc = tern_json_body(ctx, &err);
    if (!doc) {
        tern_resp_text(ctx, 400, err.message);
        return;
    }
    int64_t sum = 0, v;
    const tern_json *xs = tern_json_get(doc, "xs");
    for (size_t i = 0; i < tern_json_len(xs); i++)
        if (tern_json_int(tern_json_at(xs, i), &v) == 0) sum += v;
    tern_jw *w = tern_json_writer(ctx);
    tern_jw_object_begin(w);
    tern_jw_key(w, "sum");
    tern_jw_int(w, sum);
    tern_jw_object_end(w);
}

/* the deepest document the reader allows, parsed on a handler's stack */
static void deep(tern_ctx *ctx) {
    tern_str b = tern_req_body(ctx);
    tern_json_error err;
    const tern_json *v =
        tern_json_parse(ctx, b.ptr, b.len, &(tern_json_limits){.max_depth = 100000}, &err);
    tern_resp_text(ctx, v ? 200 : 400, v ? "ok" : err.message);
}

static void form(tern_ctx *ctx) {
    const char *v;
    int r = tern_form_get(ctx, "name", &v);
    if (r == 0)
        tern_resp_text(ctx, 200, v);
    else
        tern_resp_text(ctx, 400, r == -EMEDIUMTYPE ? "type" : r == -EILSEQ ? "bad" : "absent");
}

static const unsigned char key_old[32] = {1}, key_new[32] = {2};

static void cookies(tern_ctx *ctx) {
    const char *plain = tern_req_cookie(ctx, "plain");
    tern_cookie_key keys[2] = {{key_new, 32}, {key_old, 32}};
    const char *sig = tern_req_signed_cookie(ctx, "sig", keys, 2);
    tern_cookie_opts o = {.path = "/",
                          .domain = "example.com",
                          .max_age = 60,
                          .has_max_age = 1,
                          .expires = 784111777,
                          .secure = 1,
                          .http_only = 1,
                          .same_site = TERN_SAMESITE_STRICT};
    CHECK_INT(tern_resp_set_cookie(ctx, "a", "b", &o), 0);
    CHECK_INT(tern_resp_set_cookie(ctx, "bad name", "b", NULL), -EINVAL);
    CHECK_INT(tern_resp_set_cookie(ctx, "n", "semi;colon", NULL), -EINVAL);
    CHECK_INT(tern_resp_set_cookie(ctx, "n", "sp ace", NULL), -EINVAL);
    CHECK_INT(tern_resp_set_cookie(ctx, "n", "v", &(tern_cookie_opts){.path = "/x;y"}), -EINVAL);
    tern_cookie_key only_old[1] = {{key_old, 32}};
    tern_resp_set_signed_cookie(ctx, "sig", "42", NULL, only_old, 1);
    tern_resp_printf(ctx, "%s|%s", plain ? plain : "-", sig ? sig : "-");
}

static void upload(tern_ctx *ctx) {
    tern_multipart_limits lim = {.file_threshold = 8, .max_field = 16, .max_parts = 3};
    tern_part *parts;
    size_t n;
    int r = tern_multipart_read(ctx, &lim, &parts, &n);
    if (r < 0) {
        tern_resp_set_status(ctx, r == -E2BIG ? 413 : 400);
        return;
    }
    for (size_t i = 0; i < n; i++) {
        tern_part *p = &parts[i];
        tern_resp_printf(ctx, "%s%s:%s:%llu:%s", i ? ";" : "", p->name,
                         p->filename ? p->filename : "-", (unsigned long long)p->size,
                         p->data ? p->data : (p->path ? "FILE" : "?"));
        if (p->path) CHECK(access(p->path, F_OK) == 0);
    }
}

static void test_basics(tern_server *s) {
    tern_test_response resp;
    CHECK_INT(tern_test_do(s, &(tern_test_request){.target = "/hello"}, &resp), 0);
    CHECK_INT(resp.status, 200);
    CHECK_STR(resp.body, "hi");
    CHECK_STR(tern_test_header(&resp, "content-type"), "text/plain; charset=utf-8");
    tern_test_response_free(&resp);
    CHECK_INT(tern_test_do(s, &(tern_test_request){.target = "/nope"}, &resp), 0);
    CHECK_INT(resp.status, 404);
    tern_test_response_free(&resp);
    CHECK_INT(tern_test_do(s, &(tern_test_request){.target = "/streamed"}, &resp), 0);
    CHECK_INT(resp.status, 200);
    CHECK_STR(tern_test_header(&resp, "Transfer-Encoding"), "chunked");
    CHECK_INT(resp.body_len, 100008); /* de-chunked */
    CHECK(resp.body_len == 100008 && memcmp(resp.body, "one,zz", 6) == 0 &&
          memcmp(resp.body + 100003, "z,two", 5) == 0);
    tern_test_response_free(&resp);
    CHECK_INT(tern_test_do(s, &(tern_test_request){.method = "DELETE", .target = "/hello"}, &resp),
              0);
    CHECK_INT(resp.status, 405);
    tern_test_response_free(&resp);
}

static void test_json(tern_server *s) {
    tern_test_response resp;
    const char *body = "{\"xs\":[1,2,39]}";
    tern_test_request req = {
        .method = "POST", .target = "/sum", .body = body, .body_len = strlen(body)};
    CHECK_INT(tern_test_do(s, &req, &resp), 0);
    CHECK_INT(resp.status, 200);
    CHECK_STR(resp.body, "{\"sum\":42}");
    CHECK_STR(tern_test_header(&resp, "Content-Type"), "application/json");
    tern_test_response_free(&resp);
    req.body = "{\"xs\":[1,]}";
    req.body_len = strlen(req.body);
    CHECK_INT(tern_test_do(s, &req, &resp), 0);
    CHECK_INT(resp.status, 400);
    CHECK_STR(resp.body, "offset 9: trailing comma");
    tern_test_response_free(&resp);
}

static void test_deep_json(tern_server *s) {
    static char body[2 * 300 + 8];
    size_t n = 0;
    for (int i = 0; i < 256; i++) body[n++] = '[';
    memcpy(body + n, "-1.5e3", 6); /* a number at the bottom: parse_number's frame too */
    n += 6;
    for (int i = 0; i < 256; i++) body[n++] = ']';
    tern_test_response resp;
    CHECK_INT(tern_test_do(s,
                           &(tern_test_request){
                               .method = "POST", .target = "/deep", .body = body, .body_len = n},
                           &resp),
              0);
    CHECK_INT(resp.status, 200);
    tern_test_response_free(&resp);
    body[0] = '['; /* one more level than the hard cap: refused, not a stack overflow */
    memmove(body + 1, body, n);
    body[n + 1] = ']';
    CHECK_INT(
        tern_test_do(s,
                     &(tern_test_request){
                         .method = "POST", .target = "/deep", .body = body, .body_len = n + 2},
                     &resp),
        0);
    CHECK_INT(resp.status, 400);
    CHECK_STR(resp.body, "offset 256: nesting too deep");
    tern_test_response_free(&resp);
}

static void test_form(tern_server *s) {
    static const char *const hdrs[] = {"Content-Type: application/x-www-form-urlencoded", NULL};
    static const struct {
        const char *body;
        int status;
        const char *answer;
    } cases[] = {
        {"name=J%C3%B6rg+M", 200, "J\xc3\xb6rg M"},
        {"x=1&name=", 200, ""},
        {"name=a%00b", 400, "bad"},
        {"name=%zz", 400, "bad"},
        {"other=1", 400, "absent"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tern_test_response resp;
        tern_test_request req = {.method = "POST",
                                 .target = "/form",
                                 .headers = hdrs,
                                 .body = cases[i].body,
                                 .body_len = strlen(cases[i].body)};
        CHECK_INT(tern_test_do(s, &req, &resp), 0);
        CHECK_INT(resp.status, cases[i].status);
        CHECK_STR(resp.body, cases[i].answer);
        tern_test_response_free(&resp);
    }
    tern_test_response resp;
    tern_test_request req = {.method = "POST", .target = "/form", .body = "name=x", .body_len = 6};
    CHECK_INT(tern_test_do(s, &req, &resp), 0);
    CHECK_STR(resp.body, "type");
    tern_test_response_free(&resp);
}

static void test_cookies(tern_server *s) {
    tern_test_response resp;
    CHECK_INT(tern_test_do(s, &(tern_test_request){.target = "/cookies"}, &resp), 0);
    CHECK_STR(resp.body, "-|-");
    /* the signed cookie the handler set, with the old key: still accepted */
    const char *set = NULL;
    for (size_t i = 0; i < resp.num_headers; i++)
        if (strcmp(resp.header_names[i], "Set-Cookie") == 0) {
            if (!set)
                CHECK_STR(resp.header_values[i],
                          "a=b; Path=/; Domain=example.com; Max-Age=60; "
                          "Expires=Sun, 06 Nov 1994 08:49:37 GMT; Secure; HttpOnly; "
                          "SameSite=Strict");
            set = resp.header_values[i];
        }
    CHECK(set && strncmp(set, "sig=42.", 7) == 0);
    char cookie[256];
    snprintf(cookie, sizeof cookie, "Cookie: x=1;plain=\"quoted\" ; %s", set ? set : "");
    const char *hdrs[] = {cookie, NULL};
    tern_test_response r2;
    CHECK_INT(tern_test_do(s, &(tern_test_request){.target = "/cookies", .headers = hdrs}, &r2), 0);
    CHECK_STR(r2.body, "quoted|42");
    tern_test_response_free(&r2);
    /* forged: one signature byte changed */
    size_t n = strlen(cookie);
    cookie[n - 1] = cookie[n - 1] == 'A' ? 'B' : 'A';
    CHECK_INT(tern_test_do(s, &(tern_test_request){.target = "/cookies", .headers = hdrs}, &r2), 0);
    CHECK_STR(r2.body, "quoted|-");
    tern_test_response_free(&r2);
    /* a signature moved to another name does not verify */
    snprintf(cookie, sizeof cookie, "Cookie: sig2=%s", set ? set + 4 : "");
    CHECK_INT(tern_test_do(s, &(tern_test_request){.target = "/cookies", .headers = hdrs}, &r2), 0);
    CHECK_STR(r2.body, "-|-");
    tern_test_response_free(&r2);
    tern_test_response_free(&resp);
}

static void test_upload(tern_server *s, int chunked) {
    static const char *const hdrs_len[] = {
        "Content-Type: multipart/form-data; boundary=\"b0undary\"", NULL};
    static const char *const hdrs_chunked[] = {
        "Content-Type: multipart/form-data; boundary=\"b0undary\"", "Transfer-Encoding: chunked",
        NULL};
    const char *body =
        "preamble\r\n--b0undary\r\nContent-Disposition: form-data; name=\"f\"\r\n\r\nvalue\r\n"
        "--b0undary  \r\nContent-Disposition: form-data; name=\"up\"; "
        "filename=\"..\\\\..\\\\x.txt\"\r\n"
        "Content-Type: text/plain\r\n\r\n0123456789abc\r\n--b0undary\r\n"
        "Content-Disposition: form-data; name=\"s\"; "
        "filename=\"s\"\r\n\r\nsm\r\n--b0undary--\r\nepilogue";
    char framed[1024];
    const void *b = body;
    size_t blen = strlen(body);
    if (chunked) {
        /* two chunks, split inside a delimiter */
        int n = snprintf(framed, sizeof framed, "%zx\r\n%.*s\r\n%zx\r\n%s\r\n0\r\n\r\n", (size_t)70,
                         70, body, blen - 70, body + 70);
        b = framed;
        blen = (size_t)n;
    }
    tern_test_request req = {.method = "POST",
                             .target = "/upload",
                             .headers = chunked ? hdrs_chunked : hdrs_len,
                             .body = b,
                             .body_len = blen};
    tern_test_response resp;
    CHECK_INT(tern_test_do(s, &req, &resp), 0);
    CHECK_INT(resp.status, 200);
    CHECK_STR(resp.body, "f:-:5:value;up:x.txt:13:FILE;s:s:2:sm");
    tern_test_response_free(&resp);
}

static void test_upload_limits(tern_server *s) {
    static const char *const hdrs[] = {"Content-Type: multipart/form-data; boundary=B", NULL};
    const char *cases[][2] = {
        /* a field over max_field (16) */
        {"--B\r\nContent-Disposition: form-data; name=\"a\"\r\n\r\n0123456789abcdefg\r\n--B--",
         "413"},
        /* four parts over max_parts (3) */
        {"--B\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--B\r\nContent-Disposition: "
         "form-data; "
         "name=a\r\n\r\n1\r\n--B\r\nContent-Disposition: form-data; name=a\r\n\r\n1\r\n--B\r\n"
         "Content-Disposition: form-data; name=a\r\n\r\n1\r\n--B--",
         "413"},
        /* truncated: no close delimiter */
        {"--B\r\nContent-Disposition: form-data; name=a\r\n\r\n1", "400"},
        /* no Content-Disposition */
        {"--B\r\nX: y\r\n\r\n1\r\n--B--", "400"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        tern_test_response resp;
        tern_test_request req = {.method = "POST",
                                 .target = "/upload",
                                 .headers = hdrs,
                                 .body = cases[i][0],
                                 .body_len = strlen(cases[i][0])};
        CHECK_INT(tern_test_do(s, &req, &resp), 0);
        CHECK_INT(resp.status, atoi(cases[i][1]));
        tern_test_response_free(&resp);
    }
}

int main(void) {
    tern_server *s = tern_server_new();
    tern_server_set_workers(s, 1);
    tern_route(s, TERN_GET, "/hello", hello);
    tern_route(s, TERN_POST, "/sum", json_sum);
    tern_route(s, TERN_GET, "/streamed", streamed);
    tern_route(s, TERN_POST, "/form", form);
    tern_route(s, TERN_POST, "/deep", deep);
    tern_route(s, TERN_GET, "/cookies", cookies);
    tern_route_with(s, TERN_POST, "/upload", upload, &(tern_route_opts){.stream_body = 1});
    test_basics(s);
    test_json(s);
    test_deep_json(s);
    test_form(s);
    test_cookies(s);
    test_upload(s, 0);
    test_upload(s, 1);
    test_upload_limits(s);
    CHECK_INT(tern_test_stop(s), 0);
    tern_server_free(s);
    return check_done();
}
