/* Range parsing: see range.h. A byte-range-set is a comma-separated list
 * of "first-last", "first-" and "-suffix" (RFC 9110 §14.1.2). */
#include "http/range.h"

#include <string.h>
#include <strings.h>

/* Up to 19 digits (no overflow); the number of digits read, 0 if none. */
static int parse_digits(const char **p, uint64_t *v) {
    int n = 0;
    *v = 0;
    while (**p >= '0' && **p <= '9') {
        if (++n > 18) return 0;
        *v = *v * 10 + (uint64_t)(**p - '0');
        (*p)++;
    }
    return n;
}

static void skip_ows(const char **p) {
    while (**p == ' ' || **p == '\t') (*p)++;
}

/* One range spec; 1 with [first, last] inclusive when satisfiable, 0 when
 * unsatisfiable, -1 when malformed. */
static int parse_spec(const char **p, uint64_t size, uint64_t *first, uint64_t *last) {
    uint64_t a, b;
    if (**p == '-') {
        (*p)++;
        if (!parse_digits(p, &b)) return -1;
        if (b == 0 || size == 0) return 0; /* an empty suffix selects nothing */
        *first = b >= size ? 0 : size - b;
        *last = size - 1;
        return 1;
    }
    if (!parse_digits(p, &a) || **p != '-') return -1;
    (*p)++;
    if (**p >= '0' && **p <= '9') {
        if (!parse_digits(p, &b) || b < a) return -1;
    } else {
        b = UINT64_MAX;
    }
    if (a >= size) return 0;
    *first = a;
    *last = b >= size ? size - 1 : b;
    return 1;
}

tern__range_result tern__range_parse(const char *value, uint64_t size, uint64_t *start,
                                     uint64_t *len) {
    if (!value || strncasecmp(value, "bytes=", 6) != 0) return TERN__RANGE_NONE;
    const char *p = value + 6;
    int satisfiable = 0, merged_away = 0, specs = 0;
    uint64_t lo = 0, hi = 0;
    for (;;) {
        skip_ows(&p);
        if (*p == ',') { /* empty list elements are allowed (RFC 9110 §5.6.1) */
            p++;
            continue;
        }
        if (!*p) break;
        uint64_t f, l;
        int r = parse_spec(&p, size, &f, &l);
        if (r < 0) return TERN__RANGE_NONE;
        specs++;
        if (r == 1) {
            if (!satisfiable) {
                lo = f, hi = l;
            } else if (f <= hi + 1 && l + 1 >= lo) {
                lo = f < lo ? f : lo;
                hi = l > hi ? l : hi;
            } else {
                merged_away = 1;
            }
            satisfiable++;
        }
        skip_ows(&p);
        if (*p == ',')
            p++;
        else if (*p)
            return TERN__RANGE_NONE;
        if (specs > 100) return TERN__RANGE_NONE; /* many small ranges: a DoS shape, not a client */
    }
    if (!specs) return TERN__RANGE_NONE;
    if (!satisfiable) return TERN__RANGE_UNSATISFIABLE;
    if (merged_away) return TERN__RANGE_MULTI;
    *start = lo;
    *len = hi - lo + 1;
    return TERN__RANGE_SINGLE;
}
