#include "http/date.h"

#include <string.h>

static const char days[7][4] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static void put2(char *p, int v) {
    p[0] = (char)('0' + v / 10);
    p[1] = (char)('0' + v % 10);
}

void tern__date_format(time_t t, char *out) {
    struct tm tm;
    gmtime_r(&t, &tm);
    memcpy(out, days[tm.tm_wday], 3);
    out[3] = ',';
    out[4] = ' ';
    put2(out + 5, tm.tm_mday);
    out[7] = ' ';
    memcpy(out + 8, months[tm.tm_mon], 3);
    out[11] = ' ';
    int y = tm.tm_year + 1900;
    put2(out + 12, y / 100);
    put2(out + 14, y % 100);
    out[16] = ' ';
    put2(out + 17, tm.tm_hour);
    out[19] = ':';
    put2(out + 20, tm.tm_min);
    out[22] = ':';
    put2(out + 23, tm.tm_sec);
    memcpy(out + 25, " GMT", 5);
}

const char *tern__date_now(tern__date_cache *c) {
    /* CLOCK_REALTIME_COARSE: a vDSO read with no syscall; one-second
     * resolution is all the Date header has */
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME_COARSE, &ts);
    if (ts.tv_sec != c->second) {
        c->second = ts.tv_sec;
        tern__date_format(ts.tv_sec, c->text);
    }
    return c->text;
}
