/* Fuzz target for the JSON reader and writer.
 *
 * Every input is parsed (with a small depth limit, so deep nesting is
 * exercised too); an accepted document is written back with the writer,
 * which must succeed, and that text must parse and write back to itself
 * byte for byte (the writer's output is a fixed point). Errors must carry
 * an offset inside the input. The input lives in an exact-size heap copy so
 * ASan flags any over-read. */
#include "http/json.c"
#include "http/json_writer.c"

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

/* The few request-context calls the JSON code makes, over a plain list of
 * allocations freed after each input. */
typedef struct block {
    struct block *next;
    max_align_t data[];
} block;
static block *blocks;

void *tern_alloc(tern_ctx *ctx, size_t n) {
    (void)ctx;
    block *b = malloc(sizeof *b + n);
    if (!b) abort();
    b->next = blocks;
    blocks = b;
    return b->data;
}
tern_str tern_req_body(const tern_ctx *ctx) {
    return (tern_str){ctx->body, ctx->body_len};
}
int tern_resp_set_header(tern_ctx *ctx, const char *name, const char *value) {
    (void)ctx, (void)name, (void)value;
    return 0;
}

static void write_value(tern_jw *w, const tern_json *v) {
    switch (tern_json_typeof(v)) {
    case TERN_JSON_NULL:
        tern_jw_null(w);
        break;
    case TERN_JSON_BOOL: {
        int b = 0;
        tern_json_bool(v, &b);
        tern_jw_bool(w, b);
        break;
    }
    case TERN_JSON_NUMBER: {
        int64_t i;
        double d;
        if (v->flags & JF_INT && tern_json_int(v, &i) == 0) {
            tern_jw_int(w, i);
        } else {
            tern_json_double(v, &d);
            tern_jw_double(w, d);
        }
        break;
    }
    case TERN_JSON_STRING: {
        size_t n;
        const char *s = tern_json_string(v, &n);
        tern_jw_string_n(w, s, n);
        break;
    }
    case TERN_JSON_ARRAY:
        tern_jw_array_begin(w);
        for (size_t i = 0; i < tern_json_len(v); i++) write_value(w, tern_json_at(v, i));
        tern_jw_array_end(w);
        break;
    case TERN_JSON_OBJECT:
        tern_jw_object_begin(w);
        for (size_t i = 0; i < tern_json_len(v); i++) {
            const tern_json *m = tern_json_at(v, i);
            tern_jw_key_n(w, m->key, m->key_len);
            write_value(w, m);
        }
        tern_jw_object_end(w);
        break;
    }
}

static char *serialise(const tern_json *v, size_t *len) {
    tern_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    tern_jw w;
    tern__jw_init(&w, &ctx);
    write_value(&w, v);
    ASSERT(tern_jw_status(&w) == 0);
    *len = ctx.resp_body_len;
    return (char *)ctx.resp_body;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char *in = malloc(size ? size : 1);
    memcpy(in, data, size);
    tern_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    tern_json_error err;
    tern_json_limits lim = {.max_depth = 32};
    const tern_json *v = tern_json_parse(&ctx, in, size, &lim, &err);
    if (!v) {
        ASSERT(err.code < 0 && err.offset <= size);
    } else {
        size_t n1, n2;
        char *t1 = serialise(v, &n1);
        const tern_json *v2 = tern_json_parse(&ctx, t1, n1, &lim, &err);
        ASSERT(v2 != NULL);
        char *t2 = serialise(v2, &n2);
        ASSERT(n1 == n2 && memcmp(t1, t2, n1) == 0);
    }
    while (blocks) {
        block *next = blocks->next;
        free(blocks);
        blocks = next;
    }
    free(in);
    return 0;
}
