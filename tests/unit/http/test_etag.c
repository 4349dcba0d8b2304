/* Entity-tag comparison (RFC 9110 §8.8.3.2: weak for If-None-Match, strong
 * for If-Range) and IMF-fixdate parsing for If-Modified-Since / If-Range. */
#include "check.h"
#include "http/date.h"
#include "http/etag.c"

int main(void) {
    char tag[TERN__ETAG_MAX];
    size_t n = tern__etag_format(tag, 0x18ec1dc28dfc7a77ll, 0x1c2, 0xa8e115);
    CHECK_STR(tag, "\"18ec1dc28dfc7a77-1c2-a8e115\"");
    CHECK_INT(n, strlen(tag));

    const char *e = "\"abc\"";
    size_t el = strlen(e);
    CHECK(tern__etag_match_weak("\"abc\"", e, el));
    CHECK(tern__etag_match_weak("W/\"abc\"", e, el));          /* weak comparison ignores W/ */
    CHECK(tern__etag_match_weak("\"x\", W/\"abc\"", e, el));
    CHECK(tern__etag_match_weak(" \"x\" ,\"abc\" ", e, el));
    CHECK(tern__etag_match_weak("*", e, el));
    CHECK(!tern__etag_match_weak("\"abcd\"", e, el));
    CHECK(!tern__etag_match_weak("\"ab\"", e, el));
    CHECK(!tern__etag_match_weak("abc", e, el));               /* unquoted: malformed */
    CHECK(!tern__etag_match_weak("\"abc", e, el));
    CHECK(!tern__etag_match_weak("", e, el));
    CHECK(tern__etag_match_strong("\"abc\"", e, el));
    CHECK(!tern__etag_match_strong("W/\"abc\"", e, el));       /* strong comparison: never a weak tag */
    CHECK(!tern__etag_match_strong("\"abc\"", "W/\"abc\"", 7));
    CHECK(!tern__etag_match_strong("*", e, el));

    time_t t;
    CHECK_INT(tern__http_date_parse("Sun, 06 Nov 1994 08:49:37 GMT", &t), 0);
    CHECK_INT(t, 784111777);
    char back[TERN_DATE_LEN + 1];
    tern__date_format(1795000000, back);
    CHECK_INT(tern__http_date_parse(back, &t), 0);
    CHECK_INT(t, 1795000000);
    CHECK(tern__http_date_parse("Sunday, 06-Nov-94 08:49:37 GMT", &t) < 0); /* obsolete forms: ignored */
    CHECK(tern__http_date_parse("Sun Nov  6 08:49:37 1994", &t) < 0);
    CHECK(tern__http_date_parse("Sun, 06 Nov 1994 08:49:37 UTC", &t) < 0);
    CHECK(tern__http_date_parse("Sun, 06 Xyz 1994 08:49:37 GMT", &t) < 0);
    CHECK(tern__http_date_parse("Sun, 06 Nov 1994 25:49:37 GMT", &t) < 0);
    CHECK(tern__http_date_parse("", &t) < 0);
    return check_done();
}
