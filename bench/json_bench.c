/* JSON parse and serialise throughput: tern's reader/writer against jansson
 * and cJSON (Debian libjansson-dev, libcjson-dev) on the same documents.
 * Build (bench/run.sh, scenario "json"):
 *   cc -O2 -Iinclude -Isrc bench/json_bench.c -o json_bench -ljansson -lcjson -lm
 * The documents are generated (deterministic): an API-like array of objects
 * (strings with escapes and UTF-8, integers, floats, booleans, nesting), an
 * array of floats (coordinates), and long strings. Each figure is MB of
 * document per second, best of 5 runs of >= 0.3 s; serialise writes each
 * library's own tree compactly. tern's arena here is a bump allocator over
 * 64 KiB chunks, as a request's arena is. */
#include "http/json.c"
#include "http/json_writer.c"

#include <cjson/cJSON.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

/* ---- the two context calls the JSON code makes, over a plain arena ---------- */
typedef struct chunk {
    struct chunk *next;
    max_align_t data[];
} chunk;
static chunk *chunks;
static char *bump;
static size_t bump_left;

void *tern_alloc(tern_ctx *ctx, size_t n) {
    (void)ctx;
    n = (n + 15) & ~(size_t)15;
    if (n > bump_left) {
        size_t size = n > 65536 ? n : 65536;
        chunk *c = malloc(sizeof *c + size);
        if (!c) abort();
        c->next = chunks;
        chunks = c;
        bump = (char *)c->data;
        bump_left = size;
    }
    void *p = bump;
    bump += n;
    bump_left -= n;
    return p;
}
static void arena_reset(void) {
    while (chunks) {
        chunk *n = chunks->next;
        free(chunks);
        chunks = n;
    }
    bump_left = 0;
}
tern_str tern_req_body(const tern_ctx *ctx) {
    return (tern_str){ctx->body, ctx->body_len};
}
int tern_resp_set_header(tern_ctx *ctx, const char *name, const char *value) {
    (void)ctx, (void)name, (void)value;
    return 0;
}

/* ---- documents --------------------------------------------------------------- */
typedef struct buf {
    char *p;
    size_t len, cap;
} buf;
static void add(buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(buf *b, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
        va_end(ap);
        if ((size_t)n < b->cap - b->len) {
            b->len += (size_t)n;
            return;
        }
        b->cap = b->cap * 2 + (size_t)n + 1;
        b->p = realloc(b->p, b->cap);
    }
}

static unsigned long rng = 88172645463325252ul;
static unsigned long rnd(void) {
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static char *doc_api(size_t *len) {
    buf b = {0};
    add(&b, "[");
    for (int i = 0; i < 5000; i++) {
        add(&b,
            "%s{\"id\":%lu,\"user\":{\"name\":\"user_%lu\",\"screen_name\":\"Jos\\u00e9 "
            "\xe2\x82\xac %lu\","
            "\"followers\":%lu,\"verified\":%s},\"text\":\"line one\\nline \\\"two\\\" with a "
            "tab\\t and "
            "\xf0\x9f\x98\x80 emoji "
            "#%lu\",\"score\":%.6f,\"tags\":[\"a\",\"bb\",\"ccc\"],\"reply\":null}",
            i ? "," : "", rnd() % 100000000000ul, rnd() % 100000, rnd() % 1000, rnd() % 1000000,
            rnd() & 1 ? "true" : "false", rnd() % 1000, (double)(rnd() % 1000000) / 7.0);
    }
    add(&b, "]");
    *len = b.len;
    return b.p;
}

static char *doc_floats(size_t *len) {
    buf b = {0};
    add(&b, "[");
    for (int i = 0; i < 60000; i++)
        add(&b, "%s[%.15g,%.15g]", i ? "," : "", (double)(rnd() % 360000000) / 1e6 - 180.0,
            (double)(rnd() % 180000000) / 1e6 - 90.0);
    add(&b, "]");
    *len = b.len;
    return b.p;
}

static char *doc_strings(size_t *len) {
    buf b = {0};
    add(&b, "{");
    for (int i = 0; i < 200; i++) {
        add(&b, "%s\"key%d\":\"", i ? "," : "", i);
        for (int k = 0; k < 100; k++)
            add(&b, "Lorem ipsum dolor sit amet, consectetur adipiscing elit. ");
        add(&b, "\"");
    }
    add(&b, "}");
    *len = b.len;
    return b.p;
}

/* ---- timing ------------------------------------------------------------------ */
static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

typedef void (*run_fn)(const char *doc, size_t len);

/* best MB/s of 5 runs of at least 0.3 s each */
static double measure(run_fn fn, const char *doc, size_t len) {
    double best = 0;
    for (int r = 0; r < 5; r++) {
        int iters = 0;
        double t0 = now(), t;
        do {
            fn(doc, len);
            iters++;
            t = now() - t0;
        } while (t < 0.3);
        double mbs = (double)len * iters / t / 1e6;
        if (mbs > best) best = mbs;
    }
    return best;
}

static volatile size_t sink;

static void tern_parse(const char *doc, size_t len) {
    tern_ctx ctx;
    const tern_json *v =
        tern_json_parse(&ctx, doc, len, &(tern_json_limits){.max_bytes = 1u << 30}, NULL);
    if (!v) abort();
    sink += tern_json_len(v);
    arena_reset();
}
static void jansson_parse(const char *doc, size_t len) {
    json_error_t err;
    json_t *v = json_loadb(doc, len, 0, &err);
    if (!v) abort();
    sink += json_array_size(v);
    json_decref(v);
}
static void cjson_parse(const char *doc, size_t len) {
    cJSON *v = cJSON_ParseWithLength(doc, len);
    if (!v) abort();
    sink += (size_t)cJSON_GetArraySize(v);
    cJSON_Delete(v);
}

/* serialise: each library writes its own tree, parsed once beforehand */
static const tern_json *tern_tree;
static json_t *jansson_tree;
static cJSON *cjson_tree;

static void write_value(tern_jw *w, const tern_json *v) {
    switch (v->type) {
    case TERN_JSON_NULL:
        tern_jw_null(w);
        break;
    case TERN_JSON_BOOL:
        tern_jw_bool(w, v->flags & JF_TRUE);
        break;
    case TERN_JSON_NUMBER:
        if (v->flags & JF_INT)
            tern_jw_int(w, v->i);
        else
            tern_jw_double(w, v->d);
        break;
    case TERN_JSON_STRING:
        tern_jw_string_n(w, v->u.s, v->len);
        break;
    case TERN_JSON_ARRAY:
        tern_jw_array_begin(w);
        for (uint32_t i = 0; i < v->len; i++) write_value(w, &v->u.items[i]);
        tern_jw_array_end(w);
        break;
    case TERN_JSON_OBJECT:
        tern_jw_object_begin(w);
        for (uint32_t i = 0; i < v->len; i++) {
            tern_jw_key_n(w, v->u.items[i].key, v->u.items[i].key_len);
            write_value(w, &v->u.items[i]);
        }
        tern_jw_object_end(w);
        break;
    }
}

static chunk *tree_chunks; /* the tree's arena, kept apart from the writer's */

static void tern_write(const char *doc, size_t len) {
    (void)doc, (void)len;
    tern_ctx ctx;
    memset(&ctx, 0, sizeof ctx);
    tern_jw w;
    tern__jw_init(&w, &ctx);
    write_value(&w, tern_tree);
    if (tern_jw_status(&w) != 0) abort();
    sink += ctx.resp_body_len;
    arena_reset();
}
static void jansson_write(const char *doc, size_t len) {
    (void)doc, (void)len;
    char *s = json_dumps(jansson_tree, JSON_COMPACT);
    sink += strlen(s);
    free(s);
}
static void cjson_write(const char *doc, size_t len) {
    (void)doc, (void)len;
    char *s = cJSON_PrintUnformatted(cjson_tree);
    sink += strlen(s);
    free(s);
}

int main(void) {
    struct {
        const char *name;
        char *(*make)(size_t *);
    } docs[] = {{"api", doc_api}, {"floats", doc_floats}, {"strings", doc_strings}};
    printf("%-8s %9s | %-23s | %-23s\n", "document", "bytes", "parse MB/s tern/jansson/cJSON",
           "serialise MB/s tern/jansson/cJSON");
    for (size_t d = 0; d < sizeof docs / sizeof docs[0]; d++) {
        size_t len;
        char *doc = docs[d].make(&len);
        double p[3] = {measure(tern_parse, doc, len), measure(jansson_parse, doc, len),
                       measure(cjson_parse, doc, len)};
        tern_ctx ctx;
        tern_tree =
            tern_json_parse(&ctx, doc, len, &(tern_json_limits){.max_bytes = 1u << 30}, NULL);
        tree_chunks = chunks; /* keep the tree; the writer gets fresh chunks */
        chunks = NULL;
        bump_left = 0;
        json_error_t err;
        jansson_tree = json_loadb(doc, len, 0, &err);
        cjson_tree = cJSON_ParseWithLength(doc, len);
        if (!tern_tree || !jansson_tree || !cjson_tree) abort();
        double s[3] = {measure(tern_write, doc, len), measure(jansson_write, doc, len),
                       measure(cjson_write, doc, len)};
        printf("%-8s %9zu | %7.0f %7.0f %7.0f | %7.0f %7.0f %7.0f\n", docs[d].name, len, p[0], p[1],
               p[2], s[0], s[1], s[2]);
        printf("json_bench doc=%s bytes=%zu parse_tern=%.0f parse_jansson=%.0f parse_cjson=%.0f "
               "write_tern=%.0f write_jansson=%.0f write_cjson=%.0f\n",
               docs[d].name, len, p[0], p[1], p[2], s[0], s[1], s[2]);
        json_decref(jansson_tree);
        cJSON_Delete(cjson_tree);
        chunks = tree_chunks;
        arena_reset();
        free(doc);
    }
    return 0;
}
