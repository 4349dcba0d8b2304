/* Middleware chains, the error hook, connection hooks and the request ID
 * (see tern/middleware.h). The chain is a list of groups: group 0 is the
 * global one (empty prefix: every path), the others are tern_use_group's
 * prefixes in registration order. tern_next_call walks it from where its
 * caller stands; past the last middleware it routes and runs the handler
 * (tern__dispatch_route). Each step is a new tern_next on the calling
 * middleware's stack, so "the rest of the chain" is a frame, not shared
 * state, and a middleware that calls it twice gets -EALREADY. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "http/ctx.h"
#include "server/server.h"
#include "server/worker.h"

typedef struct tern__mw {
    tern_middleware fn;
    void *arg;
} tern__mw;

typedef struct tern__mw_group {
    char *prefix;
    size_t prefix_len;
    tern__mw *mw;
    size_t n, cap;
} tern__mw_group;

struct tern__mw_chain {
    tern__mw_group *groups; /* [0]: global */
    size_t n;
};

struct tern_next {
    tern__worker *w;
    tern__h1 *x;
    tern_ctx *ctx;
    size_t group, index; /* the next middleware to consider */
    int called;
};

static tern__mw_group *group_for(tern_server *s, const char *prefix) {
    if (!s->mw) {
        s->mw = calloc(1, sizeof *s->mw);
        if (!s->mw) return NULL;
    }
    struct tern__mw_chain *c = s->mw;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->groups[i].prefix, prefix) == 0) return &c->groups[i];
    if (c->n == 0 && prefix[0]) {
        /* the global group comes first whatever is registered first */
        tern__mw_group *g0 = group_for(s, "");
        if (!g0) return NULL;
    }
    tern__mw_group *g = realloc(c->groups, (c->n + 1) * sizeof *g);
    if (!g) return NULL;
    c->groups = g;
    g = &c->groups[c->n];
    *g = (tern__mw_group){.prefix = strdup(prefix), .prefix_len = strlen(prefix)};
    if (!g->prefix) return NULL;
    c->n++;
    return g;
}

static int use(tern_server *s, const char *prefix, tern_middleware mw, void *arg) {
    if (!s || !mw || !prefix) return -EINVAL;
    if (s->workers) return -EBUSY; /* read without locks once running */
    tern__mw_group *g = group_for(s, prefix);
    if (!g) return -ENOMEM;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 4;
        tern__mw *m = realloc(g->mw, cap * sizeof *m);
        if (!m) return -ENOMEM;
        g->mw = m;
        g->cap = cap;
    }
    g->mw[g->n++] = (tern__mw){mw, arg};
    return 0;
}

int tern_use(tern_server *s, tern_middleware mw, void *arg) {
    return use(s, "", mw, arg);
}

int tern_use_group(tern_server *s, const char *prefix, tern_middleware mw, void *arg) {
    if (!prefix || prefix[0] != '/') return -EINVAL;
    return use(s, prefix, mw, arg);
}

void tern__mw_free(tern_server *s) {
    struct tern__mw_chain *c = s->mw;
    if (!c) return;
    for (size_t i = 0; i < c->n; i++) {
        free(c->groups[i].prefix);
        free(c->groups[i].mw);
    }
    free(c->groups);
    free(c);
    s->mw = NULL;
}

/* "/api/" holds "/api/x" and "/api" itself. */
static int group_matches(const tern__mw_group *g, const char *path, size_t path_len) {
    /* most paths differ from a group's prefix at their second byte */
    if (g->prefix_len > 1 && path_len > 1 && path[1] != g->prefix[1]) return 0;
    if (path_len >= g->prefix_len) return memcmp(path, g->prefix, g->prefix_len) == 0;
    return g->prefix_len > 1 && g->prefix[g->prefix_len - 1] == '/' &&
           path_len == g->prefix_len - 1 && memcmp(path, g->prefix, path_len) == 0;
}

int tern_next_call(tern_next *next) {
    if (next->called) return -EALREADY;
    next->called = 1;
    const struct tern__mw_chain *c = next->w->server->mw;
    tern_ctx *ctx = next->ctx;
    for (size_t g = next->group, i = next->index; g < c->n; g++, i = 0) {
        const tern__mw_group *grp = &c->groups[g];
        if (i >= grp->n || !group_matches(grp, ctx->path, ctx->path_len)) continue;
        tern_next rest = {.w = next->w, .x = next->x, .ctx = ctx, .group = g, .index = i + 1};
        grp->mw[i].fn(ctx, &rest, grp->mw[i].arg);
        return 0;
    }
    tern__dispatch_route(next->w, next->x, ctx);
    return 0;
}

void tern__mw_run(tern__worker *w, tern__h1 *x, tern_ctx *ctx) {
    /* a path outside every group (and no global middleware) goes straight
     * to routing: registering an /api/ group costs /plaintext one compare */
    const struct tern__mw_chain *c = w->server->mw;
    size_t g = 0;
    while (g < c->n && !(c->groups[g].n && group_matches(&c->groups[g], ctx->path, ctx->path_len))) g++;
    if (g == c->n) {
        tern__dispatch_route(w, x, ctx);
        return;
    }
    tern_next first = {.w = w, .x = x, .ctx = ctx, .group = g};
    tern_next_call(&first);
}

/* ---- values --------------------------------------------------------------- */

/* A short list: a request carries a handful of values at most. */
struct tern__ctx_value {
    const void *key;
    void *value;
    struct tern__ctx_value *next;
};

int tern_req_set_value(tern_ctx *ctx, const void *key, void *value) {
    for (struct tern__ctx_value *v = ctx->values; v; v = v->next) {
        if (v->key == key) {
            v->value = value;
            return 0;
        }
    }
    struct tern__ctx_value *v = tern_alloc(ctx, sizeof *v);
    if (!v) return -ENOMEM;
    *v = (struct tern__ctx_value){key, value, ctx->values};
    ctx->values = v;
    return 0;
}

void *tern_req_value(const tern_ctx *ctx, const void *key) {
    for (const struct tern__ctx_value *v = ctx->values; v; v = v->next)
        if (v->key == key) return v->value;
    return NULL;
}

/* ---- failures ------------------------------------------------------------- */

int tern_resp_error(tern_ctx *ctx, int status, const char *detail) {
    if (status < 400 || status > 599) return -EINVAL;
    tern__ctx_error(ctx, status, detail);
    ctx->fail_status = status;
    ctx->fail_detail = detail ? tern_strdup(ctx, detail) : NULL;
    return 0;
}

int tern_req_failed(const tern_ctx *ctx, const char **detail) {
    if (detail) *detail = ctx->fail_detail;
    return ctx->fail_status;
}

int tern_on_error(tern_server *s, tern_error_hook hook, void *arg) {
    if (s->workers) return -EBUSY;
    s->on_error = hook;
    s->on_error_arg = arg;
    return 0;
}

void tern__mw_failed(tern_server *s, tern_ctx *ctx) {
    if (ctx->fail_status && s->on_error && ctx->stream_state == TERN__STREAM_NONE)
        s->on_error(ctx, ctx->fail_status, ctx->fail_detail, s->on_error_arg);
}

int tern_on_conn(tern_server *s, tern_conn_hook open, tern_conn_hook close, void *arg) {
    if (s->workers) return -EBUSY;
    s->conn_open = open;
    s->conn_close = close;
    s->conn_arg = arg;
    return 0;
}

/* ---- request ID ------------------------------------------------------------ */

#define REQUEST_ID_MAX 128

const char *tern_req_id(const tern_ctx *ctx) {
    return ctx->request_id;
}

static int request_id_valid(const char *id, size_t len) {
    if (len == 0 || len > REQUEST_ID_MAX) return 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '-' || c == '_' || c == '.' || c == ':' || c == '+' || c == '/' || c == '=';
        if (!ok) return 0;
    }
    return 1;
}

int tern_req_set_id(tern_ctx *ctx, const char *id) {
    if (!id || !request_id_valid(id, strlen(id))) return -EINVAL;
    char *copy = tern_strdup(ctx, id);
    if (!copy) return -ENOMEM;
    ctx->request_id = copy;
    return 0;
}
