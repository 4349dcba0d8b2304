/* CORS decisions: which origins and methods pass, what Allow-Origin says. */
#include "check.h"
#include "middleware/mw.h"

static void test_origin_list(void) {
    static const char *const origins[] = {"https://a.example", "http://b.example:8080", NULL};
    tern_cors c = {.origins = origins};
    CHECK(!tern__cors_any_origin(&c));
    CHECK(tern__cors_origin_allowed(&c, "https://a.example"));
    CHECK(tern__cors_origin_allowed(&c, "http://b.example:8080"));
    CHECK(!tern__cors_origin_allowed(&c, "http://a.example"));       /* scheme counts */
    CHECK(!tern__cors_origin_allowed(&c, "https://a.example:443"));  /* as serialised */
    CHECK(!tern__cors_origin_allowed(&c, "https://a.example.evil")); /* no prefix match */
    CHECK(!tern__cors_origin_allowed(&c, "null"));
    CHECK(!tern__cors_origin_allowed(&c, ""));
    CHECK(!tern__cors_origin_allowed(&c, NULL));
    CHECK_STR(tern__cors_allow_origin(&c, "https://a.example"), "https://a.example");
}

static void test_any_origin(void) {
    static const char *const star[] = {"*", NULL};
    tern_cors c = {.origins = star};
    CHECK(tern__cors_any_origin(&c));
    CHECK(tern__cors_origin_allowed(&c, "https://whatever.example"));
    CHECK_STR(tern__cors_allow_origin(&c, "https://x.example"), "*");
    tern_cors none = {0};
    CHECK(tern__cors_any_origin(&none));
    /* credentials forbid "*" (Fetch: the browser rejects it): echo the origin */
    c.credentials = 1;
    CHECK_STR(tern__cors_allow_origin(&c, "https://x.example"), "https://x.example");
}

static void test_methods(void) {
    tern_cors c = {.methods = "GET, PUT,DELETE"};
    CHECK(tern__cors_method_allowed(&c, "PUT"));
    CHECK(tern__cors_method_allowed(&c, "DELETE"));
    CHECK(tern__cors_method_allowed(&c, "POST")); /* CORS-safelisted */
    CHECK(!tern__cors_method_allowed(&c, "put")); /* methods are case-sensitive */
    CHECK(!tern__cors_method_allowed(&c, "PATCH"));
    CHECK(!tern__cors_method_allowed(&c, "PU"));
    CHECK(!tern__cors_method_allowed(&c, ""));
    tern_cors d = {0}; /* default: GET, HEAD, POST */
    CHECK(tern__cors_method_allowed(&d, "HEAD"));
    CHECK(!tern__cors_method_allowed(&d, "DELETE"));
}

int main(void) {
    test_origin_list();
    test_any_origin();
    test_methods();
    return check_done();
}
