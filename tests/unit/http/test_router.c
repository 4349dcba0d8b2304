/* Router tests: tables of routes and lookups (static, params, wildcards,
 * priority and backtracking, 404/405 with Allow masks, HEAD fallback,
 * trailing slash, root), pattern validation and conflicts, allocation
 * failure rollback, 1000 random routes, and a differential check of random
 * route sets against a naive reference matcher. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>

#include "check.h"

/* Allocation failure injection: router.c allocates through these. */
static long alloc_budget = -1; /* allocations left before failing; -1: unlimited */
static void *test_malloc(size_t n) {
    if (alloc_budget == 0) return NULL;
    if (alloc_budget > 0) alloc_budget--;
    return malloc(n);
}
static void *test_realloc(void *p, size_t n) {
    if (alloc_budget == 0) return NULL;
    if (alloc_budget > 0) alloc_budget--;
    return realloc(p, n);
}
#define ROUTER_MALLOC test_malloc
#define ROUTER_REALLOC test_realloc
#include "http/router.c"

/* Distinct handler pointers: H(i) is route i's handler. */
static char handler_ids[64];
#define H(i) ((void *)&handler_ids[i])
#define NO_H (-1)

/* Shorthands for allowed masks: every route end allows OPTIONS, and HEAD
 * whenever GET is there. */
#define GET TERN_GET
#define HEAD TERN_HEAD
#define POST TERN_POST
#define PUT TERN_PUT
#define DEL TERN_DELETE
#define OPT TERN_OPTIONS
#define GH_O (GET | HEAD | OPT)

typedef struct route_case {
    unsigned methods;
    const char *pattern;
    int rc; /* expected from tern__router_add */
} route_case;

/* The handler of a route is H(its index in this table). */
static const route_case routes[] = {
    /* 0 */ {GET, "/", 0},
    /* 1 */ {GET | POST, "/users", 0},
    /* 2 */ {GET, "/users/", 0},
    /* 3 */ {GET, "/users/me", 0},
    /* 4 */ {GET | DEL, "/users/:id", 0},
    /* 5 */ {GET, "/users/:id/posts/:post", 0},
    /* 6 */ {GET, "/files/*path", 0},
    /* 7 */ {GET, "/a/b/c", 0},
    /* 8 */ {GET, "/a/:x/d", 0},
    /* 9 */ {POST, "/b/c", 0},
    /* 10 */ {GET, "/b/:x", 0},
    /* 11 */ {HEAD, "/h", 0},
    /* 12 */ {GET, "/h", 0},
    /* 13 */ {OPT, "/opt", 0},
    /* 14 */ {GET, "/opt", 0},
    /* 15 */ {GET, "/v1/doc:batch", 0},
    /* 16 */ {PUT, "/s/*rest", 0},
    /* 17 */ {GET, "/s/x/:y", 0},
    /* 18 */ {GET, "/w/:a/*rest", 0},
    /* 19 */ {GET, "/p/a/b/c/d", 0},
    /* 20 */ {GET, "/p/:x/b/c/e", 0},
    /* 21 */ {POST, "/p/*r", 0},
    /* 22 */ {GET, "/k/:a/:b/:c/:d/:e/:f/:g/:h", 0},
    /* 23 */ {TERN_ANY, "/any", 0},
    /* 24 */ {GET, "/users/:id/posts", 0}, /* same :id node as 5: fine */
    /* 25 */ {POST, "/users/:id", 0},      /* same shape, new method */
    /* 26 */ {GET, "/e//x", 0},            /* empty segment: literal */
    /* ---- refused: each must leave the router unchanged ---- */
    /* 27 */ {GET, "/users/:name/x", -EINVAL}, /* :id already at this position */
    /* 28 */ {GET, "/files/*other", -EINVAL},  /* *path already here */
    /* 29 */ {GET, "/users/:id", -EEXIST},
    /* 30 */ {GET | PUT, "/users", -EEXIST}, /* GET is taken; PUT is not added */
    /* 31 */ {GET, "users", -EINVAL},
    /* 32 */ {GET, "", -EINVAL},
    /* 33 */ {GET, "/x/:", -EINVAL},
    /* 34 */ {GET, "/x/*", -EINVAL},
    /* 35 */ {GET, "/x/*p/y", -EINVAL},
    /* 36 */ {GET, "/x/a*b", -EINVAL},
    /* 37 */ {GET, "/x/:a:b", -EINVAL},
    /* 38 */ {GET, "/x/:a*", -EINVAL},
    /* 39 */ {GET, "/x/:a/:a", -EINVAL},
    /* 40 */ {GET, "/x/:a/*a", -EINVAL},
    /* 41 */ {GET, "/x/:a/:b/:c/:d/:e/:f/:g/:h/:i", -EINVAL}, /* 9 params */
    /* 42 */ {GET, "/x/:a/:b/:c/:d/:e/:f/:g/:h/*i", -EINVAL}, /* wildcard counts */
    /* 43 */ {0, "/x", -EINVAL},
    /* 44 */ {1u << 9, "/x", -EINVAL},
    /* 45 */ {GET, "/x/*p/", -EINVAL},
    /* 46 */ {GET, "/s/*rest", 0},   /* same wildcard name, new method */
    /* 47 */ {HEAD, "/users/me", 0}, /* explicit HEAD after GET */
};

typedef struct match_case {
    unsigned method;
    const char *path;
    int rc;
    int handler; /* index into routes, NO_H when rc != 0 */
    unsigned allowed;
    const char *params; /* "name=value;name=value", "" for none */
} match_case;

static const match_case matches[] = {
    /* root and static */
    {GET, "/", 0, 0, GH_O, ""},
    {GET, "/users", 0, 1, GET | HEAD | POST | OPT, ""},
    {POST, "/users", 0, 1, GET | HEAD | POST | OPT, ""},
    {GET, "/users/me", 0, 3, GH_O, ""},
    {HEAD, "/users/me", 0, 47, GH_O, ""},
    {GET, "/e//x", 0, 26, GH_O, ""},
    {GET, "/e/x", (int)TERN__ROUTE_NOT_FOUND, NO_H, 0, ""},
    {GET, "", (int)TERN__ROUTE_NOT_FOUND, NO_H, 0, ""},
    {GET, "users", (int)TERN__ROUTE_NOT_FOUND, NO_H, 0, ""},
    {GET, "/nope", (int)TERN__ROUTE_NOT_FOUND, NO_H, 0, ""},
    {GET, "//", (int)TERN__ROUTE_NOT_FOUND, NO_H, 0, ""},
    /* trailing slash is significant */
    {GET, "/users/", 0, 2, GH_O, ""},
    {GET, "/users/me/", (int)TERN__ROUTE_NOT_FOUND, NO_H, 0, ""},
    {GET, "/a/b/c/", (int)TERN__ROUTE_NOT_FOUND, NO_H, 0, ""},
    /* params */
    {GET, "/users/42", 0, 4, GET | HEAD | DEL | POST | OPT, "id=42"},
    {DEL, "/users/42", 0, 4, GET | HEAD | DEL | POST | OPT, "id=42"},
    {POST, "/users/42", 0, 25, GET | HEAD | DEL | POST | OPT, "id=42"},
    {DEL, "/users/me", 0, 4, GET | HEAD | DEL | POST | OPT, "id=me"}, /* backtracks to :id */
    {GET, "/users/42/posts/7", 0, 5, GH_O, "id=42;post=7"},
    {GET, "/users/42/posts", 0, 24, GH_O, "id=42"},
    {GET, "/users/me/posts", 0, 24, GH_O, "id=me"},
    {GET, "/users/42/posts/", (int)TERN__ROUTE_NOT_FOUND, NO_H, 0, ""}, /* :post is never empty */
    {GET, "/users//posts/7", (int)TERN__ROUTE_NOT_FOUND, NO_H, 0, ""},  /* nor is :id */
    {GET, "/k/1/2/3/4/5/6/7/8", 0, 22, GH_O, "a=1;b=2;c=3;d=4;e=5;f=6;g=7;h=8"},
    {GET, "/k/1/2/3/4/5/6/7", (int)TERN__ROUTE_NOT_FOUND, NO_H, 0, ""},
    {GET, "/k/1/2/3/4/5/6/7/8/9", (int)TERN__ROUTE_NOT_FOUND, NO_H, 0, ""},
    {GET, "/v1/doc:batch", 0, 15, GH_O, ""},
    {GET, "/v1/doc", (int)TERN__ROUTE_NOT_FOUND, NO_H, 0, ""},
    /* wildcards */
    {GET, "/files/", 0, 6, GH_O, "path="},
    {GET, "/files/a", 0, 6, GH_O, "path=a"},
    {GET, "/files/a/b/", 0, 6, GH_O, "path=a/b/"},
    {GET, "/files//x", 0, 6, GH_O, "path=/x"},
    {GET, "/files", (int)TERN__ROUTE_NOT_FOUND, NO_H, 0, ""},
    {GET, "/filesx/a", (int)TERN__ROUTE_NOT_FOUND, NO_H, 0, ""},
    {GET, "/w/1/", 0, 18, GH_O, "a=1;rest="},
    {GET, "/w/1/2/3", 0, 18, GH_O, "a=1;rest=2/3"},
    {GET, "/w/1", (int)TERN__ROUTE_NOT_FOUND, NO_H, 0, ""},
    /* priority and backtracking */
    {GET, "/a/b/c", 0, 7, GH_O, ""},
    {GET, "/a/b/d", 0, 8, GH_O, "x=b"},
    {GET, "/a/z/d", 0, 8, GH_O, "x=z"},
    {GET, "/a/b/e", (int)TERN__ROUTE_NOT_FOUND, NO_H, 0, ""},
    {GET, "/b/c", 0, 10, GH_O, "x=c"}, /* POST-only static loses to GET :x */
    {POST, "/b/c", 0, 9, POST | OPT, ""},
    {PUT, "/b/c", (int)TERN__ROUTE_METHOD_NOT_ALLOWED, NO_H, GET | HEAD | POST | OPT, ""}, /* union of both routes */
    {PUT, "/b/d", (int)TERN__ROUTE_METHOD_NOT_ALLOWED, NO_H, GH_O, ""},
    {GET, "/s/x/1", 0, 17, GH_O, "y=1"},
    {PUT, "/s/x/1", 0, 16, GH_O | PUT, "rest=x/1"},
    {DEL, "/s/x/1", (int)TERN__ROUTE_METHOD_NOT_ALLOWED, NO_H, GH_O | PUT, ""},
    {GET, "/s/", 0, 46, GH_O | PUT, "rest="},
    {GET, "/p/a/b/c/d", 0, 19, GH_O, ""},
    {GET, "/p/a/b/c/e", 0, 20, GH_O, "x=a"},
    {GET, "/p/a/b/c/f", (int)TERN__ROUTE_METHOD_NOT_ALLOWED, NO_H, POST | OPT, ""},
    {POST, "/p/a/b/c/d", 0, 21, POST | OPT, "r=a/b/c/d"},
    {PUT, "/p/a/b/c/e", (int)TERN__ROUTE_METHOD_NOT_ALLOWED, NO_H, GH_O | POST, ""},
    /* 405 and allowed */
    {PUT, "/users", (int)TERN__ROUTE_METHOD_NOT_ALLOWED, NO_H, GET | HEAD | POST | OPT, ""},
    {DEL, "/", (int)TERN__ROUTE_METHOD_NOT_ALLOWED, NO_H, GH_O, ""},
    {POST, "/files/x", (int)TERN__ROUTE_METHOD_NOT_ALLOWED, NO_H, GH_O, ""},
    {0, "/users", (int)TERN__ROUTE_METHOD_NOT_ALLOWED, NO_H, GET | HEAD | POST | OPT, ""},          /* unknown method */
    {GET | POST, "/users", (int)TERN__ROUTE_METHOD_NOT_ALLOWED, NO_H, GET | HEAD | POST | OPT, ""}, /* not one method */
    {0, "/nope", (int)TERN__ROUTE_NOT_FOUND, NO_H, 0, ""},
    /* HEAD falls back to GET unless HEAD has its own handler */
    {HEAD, "/", 0, 0, GH_O, ""},
    {HEAD, "/users/42", 0, 4, GET | HEAD | DEL | POST | OPT, "id=42"},
    {HEAD, "/files/z", 0, 6, GH_O, "path=z"},
    {HEAD, "/h", 0, 11, GH_O, ""},
    {GET, "/h", 0, 12, GH_O, ""},
    {HEAD, "/b/c", 0, 10, GH_O, "x=c"},
    /* OPTIONS: registered handler wins, otherwise 405 with OPTIONS allowed */
    {OPT, "/opt", 0, 13, GH_O, ""},
    {OPT, "/users", (int)TERN__ROUTE_METHOD_NOT_ALLOWED, NO_H, GET | HEAD | POST | OPT, ""},
    {TERN_TRACE, "/any", 0, 23, TERN_ANY, ""},
    {TERN_CONNECT, "/any", 0, 23, TERN_ANY, ""},
};

/* Checks m->params against "a=1;b=2" and that every value lies in the path. */
static void check_params(const tern__route_match *m, const char *path, size_t len, const char *want,
                         const char *what) {
    uint32_t i = 0;
    const char *p = want;
    while (*p) {
        const char *eq = strchr(p, '=');
        const char *end = strchr(p, ';');
        if (!end) end = p + strlen(p);
        char name[32], value[64];
        snprintf(name, sizeof(name), "%.*s", (int)(eq - p), p);
        snprintf(value, sizeof(value), "%.*s", (int)(end - eq - 1), eq + 1);
        if (i >= m->num_params) {
            fprintf(stderr, "%s: param %s missing\n", what, name);
            CHECK(0);
            return;
        }
        const tern__route_param *prm = &m->params[i++];
        CHECK_STR(prm->name, name);
        CHECK_MEM(prm->value, prm->value_len, value);
        CHECK(prm->value >= path && prm->value + prm->value_len <= path + len);
        p = *end ? end + 1 : end;
    }
    if (m->num_params != i) fprintf(stderr, "%s: %u params, want %u\n", what, m->num_params, i);
    CHECK_INT(m->num_params, i);
}

static tern__router *build_table_router(void) {
    tern__router *r = tern__router_new();
    CHECK(r != NULL);
    for (size_t i = 0; i < sizeof(routes) / sizeof(routes[0]); i++) {
        int rc = tern__router_add(r, routes[i].methods, routes[i].pattern, H(i));
        if (rc != routes[i].rc) fprintf(stderr, "add #%zu %s: %d\n", i, routes[i].pattern, rc);
        CHECK_INT(rc, routes[i].rc);
    }
    return r;
}

static void test_table(void) {
    tern__router *r = build_table_router();
    for (size_t i = 0; i < sizeof(matches) / sizeof(matches[0]); i++) {
        const match_case *c = &matches[i];
        /* Copy the path into an exact-size heap block so ASan catches any
         * read past its end (paths are not NUL-terminated in the server). */
        size_t len = strlen(c->path);
        char *path = malloc(len ? len : 1);
        memcpy(path, c->path, len);
        tern__route_match m;
        memset(&m, 0xa5, sizeof(m));
        int rc = tern__router_match(r, c->method, path, len, &m);
        char what[128];
        snprintf(what, sizeof(what), "match #%zu %#x %s", i, c->method, c->path);
        if (rc != c->rc || m.allowed != c->allowed)
            fprintf(stderr, "%s: rc %d allowed %#x\n", what, rc, m.allowed);
        CHECK_INT(rc, c->rc);
        CHECK_INT(m.allowed, c->allowed);
        CHECK(m.handler == (c->handler == NO_H ? NULL : H(c->handler)));
        check_params(&m, path, len, c->params, what);
        free(path);
    }
    tern__router_free(r);
}

/* A refused add must change nothing: the conflicting :name must not leave a
 * node behind that later blocks or answers anything. */
static void test_refused_adds_leave_no_trace(void) {
    tern__router *r = tern__router_new();
    tern__route_match m;
    CHECK_INT(tern__router_add(r, GET, "/u/:id", H(0)), 0);
    CHECK_INT(tern__router_add(r, GET, "/u/:name/x/y", H(1)), -EINVAL);
    CHECK_INT(tern__router_add(r, GET, "/q/r/:a/*b/c", H(1)), -EINVAL);
    CHECK_INT(tern__router_add(r, GET, "/u/:id/x/y", NULL), -EINVAL);
    CHECK_INT(tern__router_match(r, GET, "/u/1/x/y", 8, &m), (int)TERN__ROUTE_NOT_FOUND);
    CHECK_INT(tern__router_match(r, GET, "/q/r/1/2/c", 10, &m), (int)TERN__ROUTE_NOT_FOUND);
    CHECK_INT(tern__router_add(r, GET, "/q/r/:z", H(2)), 0); /* no orphan ":a" under /q/r */
    CHECK_INT(tern__router_add(r, GET | POST, "/u/:id", H(3)), -EEXIST);
    CHECK_INT(tern__router_match(r, POST, "/u/1", 4, &m), (int)TERN__ROUTE_METHOD_NOT_ALLOWED); /* POST was not added */
    CHECK_INT(m.allowed, GH_O);
    CHECK_INT(tern__router_add(r, POST, "/u/:id", H(3)), 0);
    CHECK_INT(tern__router_match(r, POST, "/u/1", 4, &m), 0);
    CHECK(m.handler == H(3));
    tern__router_free(r);
}

/* Every allocation in add may fail: the add must then return -ENOMEM and
 * leave the router exactly as before (ASan reports any leak). The patterns
 * make the first new node a static, a :param and a *wildcard in turn. */
static void test_out_of_memory(void) {
    static const struct {
        const char *pattern, *path, *retry;
    } cases[] = {
        {"/x/c/:id/y/z/*rest", "/x/c/1/y/z/q", "/x/c/:other/y/z/*tail"},
        {"/x/:id/y", "/x/1/y", "/x/:other/y"},
        {"/x/*rest", "/x/1/y", "/x/*tail"},
    };
    for (size_t c = 0; c < sizeof(cases) / sizeof(cases[0]); c++) {
        int saw_enomem = 0;
        size_t plen = strlen(cases[c].path);
        for (long budget = 0;; budget++) {
            alloc_budget = -1;
            tern__router *r = tern__router_new();
            CHECK_INT(tern__router_add(r, GET, "/x/a", H(0)), 0);
            CHECK_INT(tern__router_add(r, GET, "/x/b", H(0)), 0); /* statics array now full */
            alloc_budget = budget;
            int rc = tern__router_add(r, GET, cases[c].pattern, H(1));
            alloc_budget = -1;
            tern__route_match m;
            if (rc == -ENOMEM) {
                saw_enomem++;
                CHECK_INT(tern__router_match(r, GET, cases[c].path, plen, &m), (int)TERN__ROUTE_NOT_FOUND);
                /* a leftover node would make this a conflict */
                CHECK_INT(tern__router_add(r, GET, cases[c].retry, H(2)), 0);
                CHECK_INT(tern__router_match(r, GET, cases[c].path, plen, &m), 0);
                CHECK(m.handler == H(2));
            } else {
                CHECK_INT(rc, 0);
                CHECK_INT(tern__router_match(r, GET, cases[c].path, plen, &m), 0);
                CHECK(m.handler == H(1));
            }
            CHECK_INT(tern__router_match(r, GET, "/x/b", 4, &m), 0);
            tern__router_free(r);
            if (rc == 0) break;
        }
        /* at least one failure per allocation the add makes */
        CHECK(saw_enomem >= (c == 0 ? 7 : 2));
    }
    alloc_budget = 0;
    CHECK(tern__router_new() == NULL);
    alloc_budget = 1;
    CHECK(tern__router_new() == NULL);
    alloc_budget = -1;
}

/* A pattern deeper than the add's on-stack segment array, and a path far
 * deeper than any route. */
static void test_deep(void) {
    tern__router *r = tern__router_new();
    char pat[2 * 300 + 16], path[2 * 300 + 16];
    size_t n = 0;
    for (int i = 0; i < 300; i++) n += (size_t)sprintf(pat + n, "/%c", 'a' + i % 26);
    memcpy(path, pat, n + 1);
    strcpy(pat + n, "/:last");
    CHECK_INT(tern__router_add(r, GET, pat, H(0)), 0);
    strcpy(path + n, "/end");
    tern__route_match m;
    CHECK_INT(tern__router_match(r, GET, path, strlen(path), &m), 0);
    CHECK_INT(m.num_params, 1);
    CHECK_MEM(m.params[0].value, m.params[0].value_len, "end");
    CHECK_INT(tern__router_match(r, GET, path, n, &m), (int)TERN__ROUTE_NOT_FOUND);
    tern__router_free(r);
    tern__router_free(NULL);
}

static uint64_t rng_state = 0x9e3779b97f4a7c15ull;
static uint32_t rng(void) {
    /* xorshift64*: deterministic, so a failure reproduces */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (uint32_t)((rng_state * 0x2545f4914f6cdd1dull) >> 32);
}

/* 1000 random distinct static routes plus a parameterised twin of each: every
 * one is found with its own handler. */
static void test_many_routes(void) {
    enum { N = 1000 };
    static char paths[N][64];
    static char handlers[N];
    tern__router *r = tern__router_new();
    for (int i = 0; i < N; i++) {
        int nseg = 1 + (int)(rng() % 5);
        size_t n = 0;
        for (int s = 0; s < nseg; s++) {
            paths[i][n++] = '/';
            int l = 1 + (int)(rng() % 8);
            for (int k = 0; k < l; k++) paths[i][n++] = (char)('a' + rng() % 4);
        }
        n += (size_t)sprintf(paths[i] + n, "/%d", i); /* distinct */
        int rc = tern__router_add(r, GET, paths[i], &handlers[i]);
        CHECK_INT(rc, 0);
        char pat[80];
        snprintf(pat, sizeof(pat), "%s/:id", paths[i]);
        CHECK_INT(tern__router_add(r, POST, pat, &handlers[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        tern__route_match m;
        size_t len = strlen(paths[i]);
        int rc = tern__router_match(r, GET, paths[i], len, &m);
        CHECK_INT(rc, 0);
        CHECK(m.handler == &handlers[i]);
        char p[80];
        int plen = snprintf(p, sizeof(p), "%s/v%d", paths[i], i);
        rc = tern__router_match(r, POST, p, (size_t)plen, &m);
        CHECK_INT(rc, 0);
        CHECK(m.handler == &handlers[i]);
        CHECK_INT(m.num_params, 1);
        CHECK(m.num_params == 1 && m.params[0].value == p + len + 1);
        CHECK_INT(tern__router_match(r, GET, p, (size_t)plen, &m), (int)TERN__ROUTE_METHOD_NOT_ALLOWED);
    }
    tern__router_free(r);
}

/* ---- reference matcher ----------------------------------------------------
 * Deliberately naive and independent of the tree: each route is tried on its
 * own, and of the routes that match and have a handler for the method, the
 * one whose segment kinds (static < :param < *wildcard) are smallest left to
 * right wins; that is the order the tree's search must follow. */
typedef struct ref_route {
    char pattern[64];
    unsigned methods;
    void *handler;
} ref_route;

static int seg_kind(const char *s, size_t len) {
    return len && s[0] == ':' ? 1 : len && s[0] == '*' ? 2 : 0;
}

/* Matches one pattern; fills m's params on success. */
static bool ref_match_one(const char *pat, const char *path, size_t len, tern__route_match *m) {
    size_t pp = 0, plen = strlen(pat), p = 0;
    m->num_params = 0;
    while (pp < plen) {
        const char *s = pat + pp + 1;
        const char *se = memchr(s, '/', plen - pp - 1);
        size_t sl = se ? (size_t)(se - s) : plen - pp - 1;
        if (p >= len || path[p] != '/') return false;
        const char *q = path + p + 1;
        int kind = seg_kind(s, sl);
        if (kind == 2) {
            m->params[m->num_params++] = (tern__route_param){s + 1, q, (uint32_t)(len - p - 1)};
            return true;
        }
        const char *qe = memchr(q, '/', len - p - 1);
        size_t ql = qe ? (size_t)(qe - q) : len - p - 1;
        if (kind == 1) {
            if (ql == 0) return false;
            m->params[m->num_params++] = (tern__route_param){s + 1, q, (uint32_t)ql};
        } else if (ql != sl || memcmp(q, s, sl) != 0) {
            return false;
        }
        p += 1 + ql;
        pp += 1 + sl;
    }
    return p == len;
}

/* <0 when a ranks before b */
static int ref_rank(const char *a, const char *b) {
    for (;;) {
        const char *as = strchr(a, '/'), *bs = strchr(b, '/');
        if (!as || !bs) return !as - !bs;
        int ka = seg_kind(as + 1, strcspn(as + 1, "/"));
        int kb = seg_kind(bs + 1, strcspn(bs + 1, "/"));
        if (ka != kb) return ka - kb;
        a = as + 1;
        b = bs + 1;
    }
}

/* What the router holds for the shape `pat`: its methods and its handler
 * for `method` (HEAD falling back to GET). */
static unsigned ref_shape(const ref_route *rs, size_t n, const char *pat, unsigned method,
                          void **handler) {
    unsigned methods = 0;
    void *get = NULL;
    *handler = NULL;
    for (size_t i = 0; i < n; i++) {
        if (strcmp(rs[i].pattern, pat) != 0) continue;
        methods |= rs[i].methods;
        if (rs[i].methods & method) *handler = rs[i].handler;
        if (rs[i].methods & TERN_GET) get = rs[i].handler;
    }
    if (method == TERN_HEAD && !(methods & TERN_HEAD)) *handler = get;
    return methods | TERN_OPTIONS | (methods & TERN_GET ? TERN_HEAD : 0);
}

/* Returns the expected rc and fills want like tern__router_match would. */
static int ref_lookup(const ref_route *rs, size_t n, unsigned method, const char *path, size_t len,
                      tern__route_match *want) {
    const char *best = NULL;
    unsigned union_allowed = 0;
    tern__route_match tmp;
    memset(want, 0, sizeof(*want));
    for (size_t i = 0; i < n; i++) {
        if (!ref_match_one(rs[i].pattern, path, len, &tmp)) continue;
        void *h;
        unsigned allowed = ref_shape(rs, n, rs[i].pattern, method, &h);
        union_allowed |= allowed;
        if (h && (!best || ref_rank(rs[i].pattern, best) < 0)) {
            best = rs[i].pattern;
            *want = tmp;
            want->handler = h;
            want->allowed = allowed;
        }
    }
    if (best) return 0;
    want->allowed = union_allowed;
    return union_allowed ? (int)TERN__ROUTE_METHOD_NOT_ALLOWED : (int)TERN__ROUTE_NOT_FOUND;
}

/* Compares the router with the reference on one lookup; returns 0 if equal. */
static int compare_with_ref(const tern__router *r, const ref_route *rs, size_t n, unsigned method,
                            const char *path, size_t len) {
    tern__route_match got, want;
    int rc = tern__router_match(r, method, path, len, &got);
    int wrc = ref_lookup(rs, n, method, path, len, &want);
    int bad = rc != wrc || got.handler != want.handler || got.allowed != want.allowed ||
              got.num_params != want.num_params;
    for (uint32_t i = 0; !bad && i < got.num_params; i++)
        bad = strncmp(got.params[i].name, want.params[i].name, strlen(got.params[i].name)) != 0 ||
              got.params[i].value != want.params[i].value ||
              got.params[i].value_len != want.params[i].value_len;
    if (bad)
        fprintf(stderr, "ref mismatch %#x %.*s: rc %d/%d allowed %#x/%#x params %u/%u\n", method,
                (int)len, path, rc, wrc, got.allowed, want.allowed, got.num_params,
                want.num_params);
    return bad;
}

static void random_pattern(char *out, size_t cap, bool as_path) {
    static const char *const pieces[] = {"a", "b", "c", "", ":p", ":q", "*w", "ab", "x:y"};
    static const char *const path_pieces[] = {"a", "b", "c", "", "d", "ab", "x:y", "a/b"};
    int nseg = 1 + (int)(rng() % 4);
    size_t n = 0;
    for (int s = 0; s < nseg && n + 8 < cap; s++) {
        const char *piece = as_path ? path_pieces[rng() % 8] : pieces[rng() % 9];
        /* number param names by position so most patterns are not conflicts */
        if (!as_path && piece[0] == ':')
            n += (size_t)snprintf(out + n, cap - n, "/%s%d", piece, s);
        else
            n += (size_t)snprintf(out + n, cap - n, "/%s", piece);
    }
    out[n] = '\0';
}

static void test_against_reference(void) {
    static const unsigned methods[] = {
        TERN_GET, TERN_HEAD, TERN_POST, TERN_OPTIONS, TERN_GET | TERN_POST, TERN_PUT | TERN_HEAD};
    enum { ROUNDS = 300, ROUTES = 40, LOOKUPS = 300 };
    static char hs[ROUTES];
    int mismatches = 0, hits = 0, n405 = 0;
    for (int round = 0; round < ROUNDS; round++) {
        ref_route rs[ROUTES];
        size_t n = 0;
        tern__router *r = tern__router_new();
        for (int i = 0; i < ROUTES; i++) {
            random_pattern(rs[n].pattern, sizeof(rs[n].pattern), false);
            rs[n].methods = methods[rng() % 6];
            rs[n].handler = &hs[i];
            int rc = tern__router_add(r, rs[n].methods, rs[n].pattern, rs[n].handler);
            CHECK(rc == 0 || rc == -EINVAL || rc == -EEXIST);
            if (rc == 0) n++;
        }
        for (int i = 0; i < LOOKUPS; i++) {
            char path[64];
            random_pattern(path, sizeof(path), true);
            unsigned method = 1u << (rng() % 9);
            tern__route_match m;
            int rc = tern__router_match(r, method, path, strlen(path), &m);
            hits += rc == 0;
            n405 += rc == (int)TERN__ROUTE_METHOD_NOT_ALLOWED;
            mismatches += compare_with_ref(r, rs, n, method, path, strlen(path));
        }
        tern__router_free(r);
    }
    CHECK_INT(mismatches, 0);
    /* the random sets must exercise all three outcomes, or the test is empty */
    CHECK(hits > ROUNDS * LOOKUPS / 20);
    CHECK(n405 > ROUNDS * LOOKUPS / 100);
    fprintf(stderr, "reference: %d lookups, %d hits, %d 405\n", ROUNDS * LOOKUPS, hits, n405);
}

int main(void) {
    test_table();
    test_refused_adds_leave_no_trace();
    test_out_of_memory();
    test_deep();
    test_many_routes();
    test_against_reference();
    return check_done();
}
