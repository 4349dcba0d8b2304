/* Range requests (RFC 9110 §14): the "bytes" unit only. */
#ifndef TERN_HTTP_RANGE_H
#define TERN_HTTP_RANGE_H

#include <stdint.h>

typedef enum tern__range_result {
    TERN__RANGE_NONE,   /* no Range, another unit, or a malformed one: send it all (§14.2) */
    TERN__RANGE_SINGLE, /* one satisfiable range: 206 */
    TERN__RANGE_MULTI,  /* several satisfiable ranges: we send the whole, 200 */
    TERN__RANGE_UNSATISFIABLE, /* none satisfiable: 416 with "bytes * /size" */
} tern__range_result;

/* Parses a Range value against a representation of `size` bytes; for
 * SINGLE sets *start and *len (clipped to the size). Ranges that overlap
 * or touch after clipping count as one (so "0-99,100-199" is SINGLE). */
tern__range_result tern__range_parse(const char *value, uint64_t size, uint64_t *start,
                                     uint64_t *len);

#endif
