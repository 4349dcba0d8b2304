/* Fuzz target for the parsers of static files and compression: Range
 * (tern__range_parse), Accept-Encoding (tern__accept_encoding), entity-tag
 * lists (If-None-Match, If-Range), IMF-fixdate and the MIME lookup. Each
 * input is a NUL-terminated exact-size heap copy (ASan flags an over-read);
 * the properties checked are the ones the static handler relies on: a
 * SINGLE range lies inside the file and is not empty, the chosen coding is
 * one that was offered (or identity), and a parsed date formats back to the
 * same text. */
#include "http/compress.c"
#include "http/date.c"
#include "http/etag.c"
#include "http/mime.c"
#include "http/range.c"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define ASSERT(c)                                                                                  \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c);                                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* compress.c's response-side calls are not exercised here */
void *tern_alloc(tern_ctx *ctx, size_t n) {
    (void)ctx, (void)n;
    return NULL;
}
char *tern_sprintf(tern_ctx *ctx, const char *fmt, ...) {
    (void)ctx, (void)fmt;
    return NULL;
}
int tern_resp_add_header(tern_ctx *ctx, const char *n, const char *v) {
    (void)ctx, (void)n, (void)v;
    return 0;
}
int tern_resp_set_header(tern_ctx *ctx, const char *n, const char *v) {
    (void)ctx, (void)n, (void)v;
    return 0;
}
int tern_resp_remove_header(tern_ctx *ctx, const char *n) {
    (void)ctx, (void)n;
    return 0;
}
const char *tern_req_header(const tern_ctx *ctx, const char *n) {
    (void)ctx, (void)n;
    return NULL;
}
int tern__status_has_body(int status) {
    return status != 204 && status != 304;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *s = malloc(size + 1);
    memcpy(s, data, size);
    s[size] = 0;
    uint64_t sizes[] = {0, 1, 100, 1u << 20, UINT64_MAX / 4};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint64_t start = 0, len = 0;
        if (tern__range_parse(s, sizes[i], &start, &len) == TERN__RANGE_SINGLE) {
            ASSERT(len > 0);
            ASSERT(start < sizes[i] && len <= sizes[i] - start);
        }
    }
    for (unsigned offered = 0; offered < 4; offered++) {
        unsigned bits = (offered & 1 ? TERN__ENC_BIT(TERN__ENC_GZIP) : 0) |
                        (offered & 2 ? TERN__ENC_BIT(TERN__ENC_BR) : 0);
        tern__encoding e = tern__accept_encoding(s, bits);
        ASSERT(e == TERN__ENC_IDENTITY || (bits & TERN__ENC_BIT(e)));
    }
    (void)tern__compressible_type(s, strlen(s));
    (void)tern__etag_match_weak(s, "\"abc\"", 5);
    (void)tern__etag_match_strong(s, "\"abc\"", 5);
    (void)tern__mime_type(s, strlen(s));
    time_t t;
    if (tern__http_date_parse(s, &t) == 0 && t >= 0 && t < 253402300800 && two(s + 23) != 60) {
        /* the parser does not check the day name, nor that the day exists
         * in that month (31 Feb rolls over): compare the rest when it does */
        char back[TERN_DATE_LEN + 1];
        tern__date_format(t, back);
        struct tm tm;
        gmtime_r(&t, &tm);
        if (tm.tm_mday == two(s + 5)) ASSERT(memcmp(back + 5, s + 5, 20) == 0);
    }
    free(s);
    return 0;
}
