/* Fuzz target for the multipart/form-data framing (http/multipart.c).
 *
 * The first input byte picks a split point; the rest is a body framed by
 * the boundary "B0". It is fed whole and then in pieces (at the split point
 * and then byte by byte): the outcome, the parts' headers and the
 * concatenated content must be the same however the bytes arrive, which is
 * what a streamed upload relies on. Content handed on is never more than
 * the input. */
#include "http/multipart.c"

#include <stdint.h>
#include <stdio.h>

#define ASSERT(c)                                                                                  \
    do {                                                                                           \
        if (!(c)) {                                                                                \
            fprintf(stderr, "%s:%d: %s\n", __FILE__, __LINE__, #c);                                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

typedef struct trace {
    char *log; /* "B<headers>" "D<data>" "E" as the callbacks fire, data merged */
    size_t len, cap;
    unsigned parts;
} trace;

static void put(trace *t, char tag, const char *p, size_t n) {
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->log = realloc(t->log, t->cap);
        ASSERT(t->log);
    }
    if (tag) t->log[t->len++] = tag;
    memcpy(t->log + t->len, p, n);
    t->len += n;
}

static int on_begin(void *u, const char *h, size_t n) {
    trace *t = u;
    if (++t->parts > 50) return -E2BIG;
    put(t, 'B', h, n);
    put(t, '|', "", 0);
    return 0;
}
/* data is logged untagged, so any split of it logs the same */
static int on_data(void *u, const char *d, size_t n) {
    put(u, 0, d, n);
    return 0;
}
static int on_end(void *u) {
    put(u, 'E', "", 0);
    return 0;
}

static int run(const char *in, size_t len, size_t split, int bytewise, trace *t) {
    tern__multipart m;
    tern__multipart_cb cb = {on_begin, on_data, on_end, t};
    ASSERT(tern__multipart_init(&m, "B0", 2, 256, &cb) == 0);
    int r = 0;
    if (!bytewise) {
        r = tern__multipart_feed(&m, in, len);
    } else {
        r = tern__multipart_feed(&m, in, split);
        for (size_t i = split; i < len && r == 0; i++) r = tern__multipart_feed(&m, in + i, 1);
    }
    if (r == 0) r = tern__multipart_finish(&m);
    tern__multipart_free(&m);
    return r;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 1) return 0;
    size_t len = size - 1;
    char *in = malloc(len ? len : 1);
    memcpy(in, data + 1, len);
    size_t split = len ? data[0] % (len + 1) : 0;
    trace a = {0}, b = {0};
    int ra = run(in, len, 0, 0, &a);
    int rb = run(in, len, split, 1, &b);
    /* a header block over the bound is an error in both, maybe seen at
     * different points; otherwise everything agrees */
    ASSERT(ra == rb);
    if (ra == 0) ASSERT(a.len == b.len && (!a.len || memcmp(a.log, b.log, a.len) == 0));
    free(a.log);
    free(b.log);
    free(in);
    return 0;
}
