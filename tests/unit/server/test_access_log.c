/* Access log lines: the combined and JSON formats, escaping, field limits. */
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "server/access_log.h"

static tern_str S(const char *s) {
    return (tern_str){s, s ? strlen(s) : 0};
}

static tern__access_entry sample(void) {
    return (tern__access_entry){
        .peer = S("127.0.0.1"),
        .method = S("GET"),
        .target = S("/a?b=1"),
        .referer = S(NULL),
        .user_agent = S("curl/8.0"),
        .request_id = S("rid-1"),
        .minor = 1,
        .status = 200,
        .bytes = 13,
        .duration_us = 57,
        .when = 1791640536, /* 2026-10-10T13:55:36Z */
    };
}

static char line[TERN__ACCESS_LINE_MAX + 1];

static const char *fmt(tern_access_log_format f, const tern__access_entry *e) {
    size_t n = tern__access_format(line, f, e);
    CHECK(n < sizeof line);
    line[n] = 0;
    return line;
}

static void test_combined(void) {
    tern__access_entry e = sample();
    CHECK_STR(fmt(TERN_ACCESS_LOG_COMBINED, &e), "127.0.0.1 - - [10/Oct/2026:13:55:36 +0000] \"GET "
                                                 "/a?b=1 HTTP/1.1\" 200 13 \"-\" \"curl/8.0\" "
                                                 "rid=rid-1 us=57 up=-\n");
    e.bytes = 0;
    e.minor = 0;
    e.request_id = S(NULL);
    e.user_agent = S("a \"q\" \\ \x01\xff");
    CHECK_STR(fmt(TERN_ACCESS_LOG_COMBINED, &e),
              "127.0.0.1 - - [10/Oct/2026:13:55:36 +0000] \"GET /a?b=1 HTTP/1.0\" 200 - \"-\" "
              "\"a \\x22q\\x22 \\x5c \\x01\\xff\" rid=- us=57 up=-\n");
}

static void test_json(void) {
    tern__access_entry e = sample();
    e.user_agent = S("caf\xe9 \"x\"\n");
    CHECK_STR(
        fmt(TERN_ACCESS_LOG_JSON, &e),
        "{\"time\":\"2026-10-10T13:55:36Z\",\"remote\":\"127.0.0.1\",\"method\":\"GET\","
        "\"target\":\"/a?b=1\",\"proto\":\"HTTP/1.1\",\"status\":200,\"bytes\":13,\"referer\":null,"
        "\"user_agent\":\"caf\\u00e9 "
        "\\\"x\\\"\\u000a\",\"request_id\":\"rid-1\",\"duration_us\":57,"
        "\"upstream_us\":null}\n");
}

/* the worst case fits the bound the buffer reserves: every field at its
 * limit, every byte escaped */
static void test_worst_case_bound(void) {
    char *big = malloc(4 * TERN__ACCESS_FIELD_MAX);
    memset(big, 1, 4 * TERN__ACCESS_FIELD_MAX);
    tern_str b = {big, 4 * TERN__ACCESS_FIELD_MAX};
    tern__access_entry e = sample();
    e.method = e.target = e.referer = e.user_agent = e.request_id = b;
    size_t n = tern__access_format(line, TERN_ACCESS_LOG_JSON, &e);
    CHECK(n <= TERN__ACCESS_LINE_MAX);
    n = tern__access_format(line, TERN_ACCESS_LOG_COMBINED, &e);
    CHECK(n <= TERN__ACCESS_LINE_MAX);
    CHECK(line[n - 1] == '\n');
    CHECK(memchr(line, '\n', n - 1) == NULL); /* one line whatever the input */
    free(big);
}

int main(void) {
    test_combined();
    test_json();
    test_worst_case_bound();
    return check_done();
}
