/* IMF-fixdate formatting (RFC 9110 §5.6.7) and the once-a-second cache. */
#include <string.h>
#include <time.h>

#include "check.h"
#include "http/date.h"

int main(void) {
    char out[TERN_DATE_LEN + 1];
    tern__date_format(784111777, out); /* the RFC's own example */
    CHECK_STR(out, "Sun, 06 Nov 1994 08:49:37 GMT");
    tern__date_format(0, out);
    CHECK_STR(out, "Thu, 01 Jan 1970 00:00:00 GMT");
    tern__date_format(951782400, out); /* leap day 2000 */
    CHECK_STR(out, "Tue, 29 Feb 2000 00:00:00 GMT");
    tern__date_format(4102444799, out);
    CHECK_STR(out, "Thu, 31 Dec 2099 23:59:59 GMT");
    CHECK_INT(strlen(out), TERN_DATE_LEN);

    /* the cache agrees with the wall clock and rebuilds when it moves */
    tern__date_cache c;
    memset(&c, 0, sizeof c);
    const char *now = tern__date_now(&c);
    char expect[TERN_DATE_LEN + 1];
    tern__date_format(time(NULL), expect);
    char alt[TERN_DATE_LEN + 1];
    tern__date_format(time(NULL) - 1, alt); /* a second boundary in between */
    CHECK(strcmp(now, expect) == 0 || strcmp(now, alt) == 0);
    /* an hour-old cache is rebuilt on the next call */
    c.second -= 3600;
    strcpy(c.text, "stale");
    const char *again = tern__date_now(&c);
    CHECK(strcmp(again, "stale") != 0);
    CHECK(c.second >= time(NULL) - 1);
    return check_done();
}
