/* JSON reader and writer: an RFC 8259 conformance table (accept/reject,
 * with the section each case comes from), errors with offsets, accessors,
 * and the writer's escaping, numbers and structure checks. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "http/ctx.h"
#include "http/json.h"

typedef struct conformance {
    const char *section; /* RFC 8259 */
    const char *text;
    size_t len; /* 0: strlen(text) */
    int accept;
    int code; /* expected error code when rejected (0: any) */
} conformance;

#define A(sec, t)                                                                                  \
    { sec, t, 0, 1, 0 }
#define R(sec, t, c)                                                                               \
    { sec, t, 0, 0, c }

static const conformance table[] = {
    /* §2 JSON grammar: any value at top level, insignificant whitespace */
    A("2", "{}"),
    A("2", "[]"),
    A("2", "1"),
    A("2", "\"s\""),
    A("2", "true"),
    A("2", "false"),
    A("2", "null"),
    A("2", " \t\r\n[ 1 , 2 ]\n"),
    R("2", "", -ENODATA),
    R("2", "   ", -ENODATA),
    R("2", "[1] [2]", -EINVAL),
    R("2", "\f[]", -EINVAL), /* form feed is no JSON whitespace */
    R("2", "[1,]", -EINVAL),
    R("2", "{\"a\":1,}", -EINVAL),
    R("2", "[,1]", -EINVAL),
    R("2", "[1 2]", -EINVAL),
    R("2", "[", -EINVAL),
    R("2", "]", -EINVAL),
    R("2", "nul", -EINVAL),
    R("2", "True", -EINVAL),
    R("2", "NaN", -EINVAL),
    R("2", "Infinity", -EINVAL),
    R("2", "/* c */ 1", -EINVAL),
    /* §4 objects: names are strings, ':' between, duplicates allowed */
    A("4", "{\"a\":1,\"a\":2}"),
    R("4", "{a:1}", -EINVAL),
    R("4", "{\"a\" 1}", -EINVAL),
    R("4", "{'a':1}", -EINVAL),
    R("4", "{\"a\":}", -EINVAL),
    R("4", "{1:1}", -EINVAL),
    /* §5 arrays */
    A("5", "[[[]]]"),
    A("5", "[1,\"a\",null,true,{}]"),
    /* §6 numbers */
    A("6", "-0"),
    A("6", "0.5"),
    A("6", "1e10"),
    A("6", "1E+2"),
    A("6", "1e-2"),
    A("6", "-1.25e-3"),
    A("6", "9223372036854775807"),
    A("6", "-9223372036854775808"),
    A("6", "18446744073709551616"),
    A("6", "1e308"),
    A("6", "4.9e-324"),
    A("6", "1e-400"), /* underflows to 0: within range */
    R("6", "1e400", -ERANGE),
    R("6", "-1e400", -ERANGE),
    R("6", "01", -EINVAL),
    R("6", "-01", -EINVAL),
    R("6", "+1", -EINVAL),
    R("6", ".5", -EINVAL),
    R("6", "1.", -EINVAL),
    R("6", "1e", -EINVAL),
    R("6", "1e+", -EINVAL),
    R("6", "0x10", -EINVAL),
    R("6", "-", -EINVAL),
    R("6", "- 1", -EINVAL),
    /* §7 strings: escapes, \u with surrogate pairs, controls must be escaped */
    A("7", "\"\\\"\\\\\\/\\b\\f\\n\\r\\t\""),
    A("7", "\"\\u00e9\\u20AC\""),
    A("7", "\"\\ud83d\\ude00\""),
    A("7", "\"\\u0000\""),
    R("7", "\"\\ud800\"", -EILSEQ),
    R("7", "\"\\udc00\"", -EILSEQ),
    R("7", "\"\\ud800\\u0041\"", -EILSEQ),
    R("7", "\"\\ud800x\"", -EILSEQ),
    R("7", "\"\\x41\"", -EILSEQ),
    R("7", "\"\\u12\"", -EILSEQ),
    R("7", "\"\\U0041\"", -EILSEQ),
    R("7", "\"a\tb\"", -EINVAL),
    R("7", "\"a\nb\"", -EINVAL),
    R("7", "\"\x01\"", -EINVAL),
    R("7", "\"abc", -EINVAL),
    R("7", "'a'", -EINVAL),
    /* §8.1 UTF-8 only; no byte order mark added, and we do not ignore one */
    A("8.1", "\"h\xc3\xa9llo \xe2\x82\xac \xf0\x9f\x98\x80\""),
    R("8.1", "\xef\xbb\xbf{}", -EINVAL),
    R("8.1", "\"\xc0\xaf\"", -EILSEQ),         /* overlong '/' */
    R("8.1", "\"\xe0\x80\xaf\"", -EILSEQ),     /* overlong, 3 bytes */
    R("8.1", "\"\xed\xa0\x80\"", -EILSEQ),     /* UTF-8-encoded surrogate */
    R("8.1", "\"\xf4\x90\x80\x80\"", -EILSEQ), /* past U+10FFFF */
    R("8.1", "\"\xff\"", -EILSEQ),
    R("8.1", "\"\xc3\"", -EILSEQ),
    R("8.1", "\"\x80\"", -EILSEQ),
    /* §9 parsers may limit depth and size */
    R("9",
      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
      "[[[[[[[["
      "[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["
      "[[[[[[[[",
      -E2BIG),
};

static void test_table(void) {
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        const conformance *c = &table[i];
        tern_ctx ctx;
        tern__ctx_init(&ctx);
        tern_json_error err;
        size_t len = c->len ? c->len : strlen(c->text);
        const tern_json *v = tern_json_parse(&ctx, c->text, len, NULL, &err);
        if ((v != NULL) != c->accept || (!c->accept && c->code && err.code != c->code)) {
            fprintf(stderr, "RFC 8259 §%s: %s: %s (code %d, %s)\n", c->section, c->text,
                    v ? "accepted" : "rejected", err.code, err.message);
            CHECK(0);
        } else {
            CHECK(1);
        }
        tern__ctx_release(&ctx);
    }
}

static void test_nesting_limit(void) {
    tern_ctx ctx;
    tern__ctx_init(&ctx);
    char deep[300];
    memset(deep, '[', 128);
    memset(deep + 128, ']', 128);
    tern_json_error err;
    CHECK(tern_json_parse(&ctx, deep, 256, NULL, &err) != NULL); /* exactly the default 128 */
    tern_json_limits lim = {.max_depth = 4};
    CHECK(tern_json_parse(&ctx, "[[[[1]]]]", 9, &lim, &err) != NULL);
    CHECK(tern_json_parse(&ctx, "[[[[[1]]]]]", 11, &lim, &err) == NULL);
    CHECK_INT(err.code, -E2BIG);
    CHECK_INT(err.offset, 4);
    lim = (tern_json_limits){.max_bytes = 4};
    CHECK(tern_json_parse(&ctx, "[1,2]", 5, &lim, &err) == NULL);
    CHECK_INT(err.code, -E2BIG);
    /* a million '[' never recurse past the hard cap */
    size_t n = 1000000;
    char *big = malloc(n);
    memset(big, '[', n);
    lim = (tern_json_limits){.max_depth = 1000000};
    CHECK(tern_json_parse(&ctx, big, n, &lim, &err) == NULL);
    CHECK_INT(err.code, -E2BIG);
    free(big);
    tern__ctx_release(&ctx);
}

static void test_errors_and_accessors(void) {
    tern_ctx ctx;
    tern__ctx_init(&ctx);
    tern_json_error err;
    CHECK(tern_json_parse(&ctx, "{\"a\": [1, 2,]}", 14, NULL, &err) == NULL);
    CHECK_INT(err.offset, 12);
    CHECK_STR(err.message, "offset 12: trailing comma");
    CHECK(tern_json_parse(&ctx, "[\"ok\", \"\\ud800\"]", 16, NULL, &err) == NULL);
    CHECK_INT(err.offset, 8);

    const char *doc =
        "{\"name\":\"caf\\u00e9\",\"n\":42,\"big\":1e300,\"f\":1.5,\"neg\":-7,\"e\":2e3,"
        "\"t\":true,\"z\":null,\"list\":[10,20,30],\"nul\":\"a\\u0000b\",\"huge\":"
        "123456789012345678901}";
    const tern_json *v = tern_json_parse(&ctx, doc, strlen(doc), NULL, &err);
    CHECK(v != NULL);
    CHECK_INT(tern_json_typeof(v), TERN_JSON_OBJECT);
    CHECK_INT(tern_json_len(v), 11);
    CHECK_STR(tern_json_key_at(v, 0), "name");
    size_t len;
    CHECK_STR(tern_json_string(tern_json_get(v, "name"), &len), "caf\xc3\xa9");
    CHECK_INT(len, 5);
    int64_t i;
    double d;
    int b;
    CHECK_INT(tern_json_int(tern_json_get(v, "n"), &i), 0);
    CHECK_INT(i, 42);
    CHECK_INT(tern_json_int(tern_json_get(v, "neg"), &i), 0);
    CHECK_INT(i, -7);
    CHECK_INT(tern_json_int(tern_json_get(v, "e"), &i), 0);
    CHECK_INT(i, 2000);
    CHECK_INT(tern_json_int(tern_json_get(v, "f"), &i), -ERANGE);
    CHECK_INT(tern_json_int(tern_json_get(v, "big"), &i), -ERANGE);
    CHECK_INT(tern_json_int(tern_json_get(v, "huge"), &i), -ERANGE);
    CHECK_INT(tern_json_double(tern_json_get(v, "f"), &d), 0);
    CHECK(d == 1.5);
    CHECK_INT(tern_json_int(tern_json_get(v, "name"), &i), -EINVAL);
    CHECK_INT(tern_json_bool(tern_json_get(v, "t"), &b), 0);
    CHECK_INT(b, 1);
    CHECK(tern_json_is_null(tern_json_get(v, "z")));
    CHECK(!tern_json_is_null(tern_json_get(v, "missing")));
    const tern_json *list = tern_json_get(v, "list");
    CHECK_INT(tern_json_len(list), 3);
    CHECK_INT(tern_json_int(tern_json_at(list, 2), &i), 0);
    CHECK_INT(i, 30);
    CHECK(tern_json_at(list, 3) == NULL);
    CHECK(tern_json_get(list, "x") == NULL);
    tern_json_string(tern_json_get(v, "nul"), &len);
    CHECK_INT(len, 3);
    v = tern_json_parse(&ctx, "-9223372036854775808", 20, NULL, &err);
    CHECK_INT(tern_json_int(v, &i), 0);
    CHECK(i == INT64_MIN);
    v = tern_json_parse(&ctx, "9223372036854775808", 19, NULL, &err);
    CHECK_INT(tern_json_int(v, &i), -ERANGE);
    tern__ctx_release(&ctx);
}

static const char *body_of(tern_ctx *ctx) {
    tern_resp_append_body(ctx, "", 1);
    return ctx->resp_body;
}

static void test_writer(void) {
    tern_ctx ctx;
    tern__ctx_init(&ctx);
    tern_jw w;
    tern__jw_init(&w, &ctx);
    CHECK_INT(tern_jw_status(&w), -EINPROGRESS);
    tern_jw_object_begin(&w);
    tern_jw_key(&w, "message");
    tern_jw_string(&w, "Hello, World!");
    tern_jw_key(&w, "esc");
    tern_jw_string_n(&w, "q\"b\\\n\x01\x7f/\xc3\xa9", 10);
    tern_jw_key(&w, "nums");
    tern_jw_array_begin(&w);
    tern_jw_int(&w, 0);
    tern_jw_int(&w, INT64_MIN);
    tern_jw_double(&w, 0.1);
    tern_jw_double(&w, 1.0 / 3.0);
    tern_jw_double(&w, 1e300);
    tern_jw_bool(&w, 1);
    tern_jw_null(&w);
    tern_jw_array_end(&w);
    tern_jw_object_end(&w);
    CHECK_INT(tern_jw_status(&w), 0);
    CHECK_STR(body_of(&ctx),
              "{\"message\":\"Hello, World!\",\"esc\":\"q\\\"b\\\\\\n\\u0001\x7f/\xc3\xa9\","
              "\"nums\":[0,-9223372036854775808,0.1,0.3333333333333333,1e+300,true,null]}");
    tern__ctx_release(&ctx);

    /* doubles round-trip */
    double samples[] = {0.1, 1.0 / 3.0, 5e-324, 1.7976931348623157e308, -2.5, 123456789.123456789};
    for (size_t k = 0; k < sizeof samples / sizeof samples[0]; k++) {
        tern__ctx_init(&ctx);
        tern__jw_init(&w, &ctx);
        CHECK_INT(tern_jw_double(&w, samples[k]), 0);
        CHECK(strtod(body_of(&ctx), NULL) == samples[k]);
        tern__ctx_release(&ctx);
    }

    /* structure and content errors stick */
    tern__ctx_init(&ctx);
    tern__jw_init(&w, &ctx);
    tern_jw_object_begin(&w);
    CHECK_INT(tern_jw_int(&w, 1), -EINVAL); /* a value where a key is due */
    CHECK_INT(tern_jw_key(&w, "a"), -EINVAL);
    tern__ctx_release(&ctx);
    tern__ctx_init(&ctx);
    tern__jw_init(&w, &ctx);
    CHECK_INT(tern_jw_string(&w, "\xed\xa0\x80"), -EILSEQ);
    tern__jw_init(&w, &ctx);
    CHECK_INT(tern_jw_double(&w, NAN), -EDOM);
    tern__jw_init(&w, &ctx);
    CHECK_INT(tern_jw_array_end(&w), -EINVAL);
    tern__jw_init(&w, &ctx);
    tern_jw_int(&w, 1);
    CHECK_INT(tern_jw_int(&w, 2), -EINVAL); /* one top-level value */
    tern__jw_init(&w, &ctx);
    int r = 0;
    for (int k = 0; k < 65 && r == 0; k++) r = tern_jw_array_begin(&w);
    CHECK_INT(r, -E2BIG);
    tern__ctx_release(&ctx);
}

/* the demo's /json on a fresh request: no allocation past the context's
 * inline arena (STYLE.md rule 7) */
static void test_writer_small_stays_inline(void) {
    tern_ctx ctx;
    tern__ctx_init(&ctx);
    tern_jw *w = tern_json_writer(&ctx);
    CHECK(w != NULL);
    tern_jw_object_begin(w);
    tern_jw_key(w, "message");
    tern_jw_string(w, "Hello, World!");
    tern_jw_object_end(w);
    CHECK_MEM(ctx.resp_body, ctx.resp_body_len, "{\"message\":\"Hello, World!\"}");
    CHECK(ctx.arena.chunks == NULL);
    tern__ctx_release(&ctx);
}

/* what the writer writes, the reader reads back the same */
static void test_round_trip(void) {
    tern_ctx ctx;
    tern__ctx_init(&ctx);
    const char *doc = "{\"a\":[1,-2.5,\"x\\u0001y\",{\"b\":null,\"c\":false}],\"\xe2\x82\xac\":"
                      "\"\\ud83d\\ude00\"}";
    const tern_json *v = tern_json_parse(&ctx, doc, strlen(doc), NULL, NULL);
    CHECK(v != NULL);
    tern_jw w;
    tern__jw_init(&w, &ctx);
    tern_jw_object_begin(&w);
    tern_jw_key(&w, tern_json_key_at(v, 0));
    const tern_json *a = tern_json_at(v, 0);
    tern_jw_array_begin(&w);
    int64_t i;
    double d;
    size_t n;
    tern_json_int(tern_json_at(a, 0), &i);
    tern_jw_int(&w, i);
    tern_json_double(tern_json_at(a, 1), &d);
    tern_jw_double(&w, d);
    const char *s = tern_json_string(tern_json_at(a, 2), &n);
    tern_jw_string_n(&w, s, n);
    tern_jw_object_begin(&w);
    tern_jw_key(&w, "b");
    tern_jw_null(&w);
    tern_jw_key(&w, "c");
    tern_jw_bool(&w, 0);
    tern_jw_object_end(&w);
    tern_jw_array_end(&w);
    tern_jw_key(&w, tern_json_key_at(v, 1));
    tern_jw_string(&w, tern_json_string(tern_json_at(v, 1), NULL));
    tern_jw_object_end(&w);
    CHECK_INT(tern_jw_status(&w), 0);
    CHECK_STR(body_of(&ctx), "{\"a\":[1,-2.5,\"x\\u0001y\",{\"b\":null,\"c\":false}],"
                             "\"\xe2\x82\xac\":\"\xf0\x9f\x98\x80\"}");
    tern__ctx_release(&ctx);
}

int main(void) {
    test_table();
    test_nesting_limit();
    test_errors_and_accessors();
    test_writer();
    test_round_trip();
    test_writer_small_stays_inline();
    return check_done();
}
