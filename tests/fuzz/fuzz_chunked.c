/* Fuzz target for the chunked decoder: the first byte picks max_body and
 * the split points, the rest is the body. Decoding in one call (into a
 * separate buffer), in place, and in three pieces must give the same
 * verdict, the same consumed length and the same bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/chunked.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
    if (!ok) __builtin_trap();
}

typedef struct {
    int ret;
    size_t consumed, out_len;
} outcome;

/* Decodes in[0..len) in the pieces ending at cuts[], in place, each piece in
 * an exact-size heap block. Decoded bytes are appended to acc. */
static outcome feed(const char *in, size_t len, const size_t *cuts, int ncuts, uint64_t max_body,
                    char *acc) {
    tern__chunked d;
    tern__chunked_init(&d, max_body);
    outcome o = {0, 0, 0};
    size_t from = 0;
    for (int k = 0; k <= ncuts; k++) {
        size_t to = k < ncuts ? cuts[k] : len;
        size_t n = to - from;
        char *p = malloc(n ? n : 1);
        memcpy(p, in + from, n);
        size_t used, got;
        o.ret = tern__chunked_decode(&d, p, n, &used, p, &got);
        check(got <= used && used <= n);
        check(o.ret != 0 || used == n);
        memcpy(acc + o.out_len, p, got);
        free(p);
        o.out_len += got;
        o.consumed += used;
        check(d.total == o.out_len);
        check(d.total <= max_body);
        if (o.ret != 0) break;
        from = to;
    }
    check(o.ret == 1 || o.ret == 0 || o.ret == -400 || o.ret == -413);
    return o;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    static const uint64_t limits[4] = {UINT64_MAX, 0, 16, 1000};
    uint64_t max_body = limits[data[0] & 3];
    const char *in = (const char *)data + 1;
    size_t len = size - 1;

    char *whole = malloc(len + 1), *out = malloc(len + 1), *pieces = malloc(len + 1);
    tern__chunked d;
    tern__chunked_init(&d, max_body);
    size_t used, got;
    int r = tern__chunked_decode(&d, in, len, &used, out, &got);

    outcome w = feed(in, len, NULL, 0, max_body, whole);
    check(w.ret == r && w.consumed == used && w.out_len == got && !memcmp(whole, out, got));

    size_t cuts[2];
    cuts[0] = len ? (size_t)(data[0] >> 2) * len / 63 : 0;
    cuts[1] = cuts[0] + (len - cuts[0]) / 3;
    outcome s = feed(in, len, cuts, 2, max_body, pieces);
    check(s.ret == w.ret && s.consumed == w.consumed && s.out_len == w.out_len &&
          !memcmp(pieces, whole, w.out_len));
    free(whole);
    free(out);
    free(pieces);
    return 0;
}
