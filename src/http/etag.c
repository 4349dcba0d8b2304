/* Entity tags and HTTP dates: see etag.h. */
#include "http/etag.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

size_t tern__etag_format(char *out, int64_t mtime_ns, uint64_t size, uint64_t ino) {
    int n = snprintf(out, TERN__ETAG_MAX, "\"%llx-%llx-%llx\"", (unsigned long long)mtime_ns,
                     (unsigned long long)size, (unsigned long long)ino);
    return n < 0 ? 0 : (size_t)n;
}

/* Walks a comma-separated list of entity tags; calls back with each one
 * (weak flag, opaque tag with quotes). Non-zero from the callback stops. */
static int each_tag(const char *p, const char *etag, size_t etag_len, int strong) {
    for (;;) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        if (!*p) return 0;
        int weak = 0;
        if (p[0] == 'W' && p[1] == '/') weak = 1, p += 2;
        if (*p != '"') return 0; /* malformed: no match */
        const char *end = strchr(p + 1, '"');
        if (!end) return 0;
        size_t n = (size_t)(end - p + 1);
        if (n == etag_len && memcmp(p, etag, n) == 0 && !(strong && weak)) return 1;
        p = end + 1;
    }
}

int tern__etag_match_weak(const char *list, const char *etag, size_t etag_len) {
    const char *p = list;
    while (*p == ' ' || *p == '\t') p++;
    if (p[0] == '*') return 1;
    if (etag_len > 2 && etag[0] == 'W' && etag[1] == '/') etag += 2, etag_len -= 2;
    return each_tag(list, etag, etag_len, 0);
}

int tern__etag_match_strong(const char *value, const char *etag, size_t etag_len) {
    if (etag_len > 2 && etag[0] == 'W') return 0;
    return each_tag(value, etag, etag_len, 1);
}

static int month_index(const char *m) {
    static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
    for (int i = 0; i < 12; i++)
        if (memcmp(months + 3 * i, m, 3) == 0) return i;
    return -1;
}

static int two(const char *p) {
    if (p[0] < '0' || p[0] > '9' || p[1] < '0' || p[1] > '9') return -1;
    return (p[0] - '0') * 10 + (p[1] - '0');
}

int tern__http_date_parse(const char *s, time_t *out) {
    /* "Sun, 06 Nov 1994 08:49:37 GMT": fixed positions */
    if (strlen(s) != 29 || s[3] != ',' || s[4] != ' ' || s[7] != ' ' || s[11] != ' ' ||
        s[16] != ' ' || s[19] != ':' || s[22] != ':' || memcmp(s + 25, " GMT", 4) != 0)
        return -EINVAL;
    int day = two(s + 5), mon = month_index(s + 8), y1 = two(s + 12), y2 = two(s + 14);
    int h = two(s + 17), mi = two(s + 20), sec = two(s + 23);
    if (day < 1 || day > 31 || mon < 0 || y1 < 0 || y2 < 0 || h < 0 || h > 23 || mi < 0 ||
        mi > 59 || sec < 0 || sec > 60)
        return -EINVAL;
    struct tm tm = {.tm_year = y1 * 100 + y2 - 1900,
                    .tm_mon = mon,
                    .tm_mday = day,
                    .tm_hour = h,
                    .tm_min = mi,
                    .tm_sec = sec};
    *out = timegm(&tm);
    return 0;
}
