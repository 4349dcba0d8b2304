/* Query parameters for handlers: lookup and decoding with a reason when
 * there is no value (see tern_req_query_get in tern.h). Built on the
 * public request calls and url.c, so it needs nothing of the context's
 * insides. */
#include <errno.h>

#include "http/url.h"
#include "tern.h"

int tern_req_query_get(tern_ctx *ctx, const char *name, const char **value) {
    *value = NULL;
    tern_str q = tern_req_query_string(ctx);
    const char *raw;
    size_t raw_len;
    if (!tern__query_find(q.ptr, q.len, name, &raw, &raw_len)) return -ENOENT;
    char *out = tern_alloc(ctx, raw_len + 1);
    if (!out) return -ENOMEM;
    size_t n;
    switch (tern__query_decode(raw, raw_len, out, &n, 1)) {
    case TERN__QUERY_OK:
        *value = out;
        return 0;
    case TERN__QUERY_BAD_ESCAPE:
    case TERN__QUERY_NUL:
    case TERN__QUERY_ABSENT:
        break;
    }
    return -EILSEQ;
}
