/* IMF-fixdate for the Date header (RFC 9110 §5.6.7), rebuilt at most once a
 * second per worker rather than formatted for every response. */
#ifndef TERN_HTTP_DATE_H
#define TERN_HTTP_DATE_H

#include <stddef.h>
#include <time.h>

#define TERN_DATE_LEN 29 /* "Sun, 06 Nov 1994 08:49:37 GMT" */

typedef struct tern__date_cache {
    time_t second;
    char text[TERN_DATE_LEN + 1];
} tern__date_cache;

/* Formats t into out (TERN_DATE_LEN bytes + NUL). */
void tern__date_format(time_t t, char *out);
/* Returns the cached text for the current wall-clock second. */
const char *tern__date_now(tern__date_cache *c);

#endif
