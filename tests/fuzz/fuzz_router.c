/* Router fuzz target. The first byte picks the mode and the method:
 *   even: the rest is a path, matched against a fixed route table;
 *   odd:  the rest is lines "<m><pattern>": <m> '1'..'9' is one method bit
 *         (1 = GET ... 9 = TRACE), any other byte is its own value & TERN_ANY;
 *         each is added to a fresh router, then every pattern, a concrete path
 *         made from it, and the raw line are looked up.
 * Every add and every lookup is checked against a naive reference (each
 * route tried on its own, ranked static < :param < *wildcard left to right),
 * plus the invariants: handler non-NULL iff 0, params inside the path,
 * Allow masks consistent with the result. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>

#include "http/router.c"

#define MAX_LINES 64

typedef struct ref_route {
    char *pattern;
    unsigned methods;
    void *handler;
} ref_route;

static char handler_ids[MAX_LINES + 64];

static void fail(const char *what, const char *s, size_t len) {
    fprintf(stderr, "fuzz_router: %s: \"%.*s\"\n", what, (int)len, s);
    abort();
}

/* ---- reference ----------------------------------------------------------- */

static int seg_kind(const char *s, size_t len) {
    return len && s[0] == ':' ? 1 : len && s[0] == '*' ? 2 : 0;
}

/* The pattern's segment i: sets *s and *len; false past the end. */
static bool pattern_seg_at(const char *pat, int i, const char **s, size_t *len) {
    const char *p = pat;
    for (; i > 0; i--) {
        p = strchr(p + 1, '/');
        if (!p) return false;
    }
    if (*p != '/') return false;
    *s = p + 1;
    *len = strcspn(p + 1, "/");
    return true;
}

/* The rules tern__router_add documents, written out directly. */
static int ref_add(const ref_route *rs, size_t n, unsigned methods, const char *pat) {
    if (methods == 0 || (methods & ~(unsigned)TERN_ANY) || pat[0] != '/') return -EINVAL;
    const char *names[TERN_MAX_PARAMS];
    size_t name_lens[TERN_MAX_PARAMS];
    int nparams = 0;
    const char *s;
    size_t len;
    for (int i = 0; pattern_seg_at(pat, i, &s, &len); i++) {
        int kind = seg_kind(s, len);
        if (kind == 0) {
            if (memchr(s, '*', len)) return -EINVAL;
            continue;
        }
        if (len == 1 || memchr(s + 1, ':', len - 1) || memchr(s + 1, '*', len - 1)) return -EINVAL;
        if (kind == 2 && s[len] != '\0') return -EINVAL;
        if (nparams == TERN_MAX_PARAMS) return -EINVAL;
        for (int k = 0; k < nparams; k++)
            if (name_lens[k] == len - 1 && memcmp(names[k], s + 1, len - 1) == 0) return -EINVAL;
        names[nparams] = s + 1;
        name_lens[nparams++] = len - 1;
    }
    /* Conflict: same segments up to i, then two parameters (or two
     * wildcards) with different names at i. */
    for (size_t r = 0; r < n; r++) {
        const char *a, *b;
        size_t al, bl;
        for (int i = 0; pattern_seg_at(pat, i, &a, &al); i++) {
            if (!pattern_seg_at(rs[r].pattern, i, &b, &bl)) break;
            if (al == bl && memcmp(a, b, al) == 0) continue;
            int ka = seg_kind(a, al);
            if (ka != 0 && ka == seg_kind(b, bl)) return -EINVAL;
            break;
        }
    }
    for (size_t r = 0; r < n; r++)
        if (strcmp(rs[r].pattern, pat) == 0 && (rs[r].methods & methods)) return -EEXIST;
    return 0;
}

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
        if (m->num_params == TERN_MAX_PARAMS && kind) fail("reference: too many params", pat, plen);
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
    /* `method` is one bit here; several bits match no handler */
    if (method & (method - 1)) *handler = NULL;
    if (method == TERN_HEAD && !(methods & TERN_HEAD)) *handler = get;
    return methods | TERN_OPTIONS | (methods & TERN_GET ? TERN_HEAD : 0);
}

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

/* ---- one checked lookup -------------------------------------------------- */

static void check_lookup(const tern__router *r, const ref_route *rs, size_t n, unsigned method,
                         const char *path, size_t len) {
    tern__route_match m;
    int rc = tern__router_match(r, method, path, len, &m);
    if (rc != 0 && rc != (int)TERN__ROUTE_NOT_FOUND && rc != (int)TERN__ROUTE_METHOD_NOT_ALLOWED) fail("bad rc", path, len);
    if ((rc == 0) != (m.handler != NULL)) fail("handler non-NULL iff 0 broken", path, len);
    if (m.num_params > TERN_MAX_PARAMS) fail("num_params", path, len);
    if (rc != 0 && m.num_params) fail("params on failure", path, len);
    for (uint32_t i = 0; i < m.num_params; i++) {
        const tern__route_param *p = &m.params[i];
        if (!p->name || !p->name[0]) fail("param name", path, len);
        if (p->value < path || p->value_len > len || p->value > path + len - p->value_len)
            fail("param value outside the path", path, len);
    }
    if (rc == (int)TERN__ROUTE_NOT_FOUND && m.allowed) fail("allowed on 404", path, len);
    if (rc != (int)TERN__ROUTE_NOT_FOUND && !(m.allowed & TERN_OPTIONS)) fail("OPTIONS missing", path, len);
    if (rc == 0 && !(m.allowed & method)) fail("method not in allowed", path, len);
    if (rc == (int)TERN__ROUTE_METHOD_NOT_ALLOWED && (method & (method - 1)) == 0 && (m.allowed & method) &&
        method != TERN_OPTIONS)
        fail("405 but method allowed", path, len);

    tern__route_match want;
    int wrc = ref_lookup(rs, n, method, path, len, &want);
    bool bad = rc != wrc || m.handler != want.handler || m.allowed != want.allowed ||
               m.num_params != want.num_params;
    for (uint32_t i = 0; !bad && i < m.num_params; i++) {
        size_t nl = strlen(m.params[i].name);
        bad = strncmp(m.params[i].name, want.params[i].name, nl) != 0 ||
              (want.params[i].name[nl] != '\0' && want.params[i].name[nl] != '/') ||
              m.params[i].value != want.params[i].value ||
              m.params[i].value_len != want.params[i].value_len;
    }
    if (bad) {
        fprintf(stderr, "method %#x: rc %d/%d allowed %#x/%#x params %u/%u\n", method, rc, wrc,
                m.allowed, want.allowed, m.num_params, want.num_params);
        fail("differs from the reference", path, len);
    }
}

/* ---- mode 0: fixed table ------------------------------------------------- */

static const struct {
    unsigned methods;
    const char *pattern;
} fixed[] = {
    {TERN_GET, "/"},
    {TERN_GET | TERN_POST, "/users"},
    {TERN_GET, "/users/"},
    {TERN_GET, "/users/me"},
    {TERN_GET | TERN_DELETE, "/users/:id"},
    {TERN_GET, "/users/:id/posts/:post"},
    {TERN_GET, "/users/:id/posts"},
    {TERN_GET, "/files/*path"},
    {TERN_GET, "/a/b/c"},
    {TERN_GET, "/a/:x/d"},
    {TERN_POST, "/b/c"},
    {TERN_GET, "/b/:x"},
    {TERN_HEAD, "/h"},
    {TERN_GET, "/h"},
    {TERN_OPTIONS | TERN_GET, "/opt"},
    {TERN_GET, "/v1/doc:batch"},
    {TERN_PUT, "/s/*rest"},
    {TERN_GET, "/s/x/:y"},
    {TERN_GET, "/w/:a/*rest"},
    {TERN_GET, "/p/a/b/c/d"},
    {TERN_GET, "/p/:x/b/c/e"},
    {TERN_POST, "/p/*r"},
    {TERN_GET, "/k/:a/:b/:c/:d/:e/:f/:g/:h"},
    {TERN_ANY, "/any"},
    {TERN_GET, "/e//x"},
    {TERN_PATCH, "/*all"},
};
#define NFIXED (sizeof(fixed) / sizeof(fixed[0]))

static tern__router *fixed_router;
static ref_route fixed_ref[NFIXED];

static void fixed_init(void) {
    fixed_router = tern__router_new();
    if (!fixed_router) abort();
    for (size_t i = 0; i < NFIXED; i++) {
        fixed_ref[i] = (ref_route){(char *)fixed[i].pattern, fixed[i].methods, &handler_ids[i]};
        if (tern__router_add(fixed_router, fixed[i].methods, fixed[i].pattern, &handler_ids[i]))
            fail("fixed route refused", fixed[i].pattern, strlen(fixed[i].pattern));
    }
}

/* 0..8: one method bit; 9: no method; 10: two bits */
static unsigned method_from(unsigned v) {
    v %= 11;
    return v < 9 ? 1u << v : v == 9 ? 0 : TERN_GET | TERN_POST;
}

/* ---- mode 1: routes from the input --------------------------------------- */

/* A path the pattern should match: ":name" -> a segment, "*name" -> a tail. */
static size_t concretise(const char *pat, char *out, unsigned salt) {
    size_t n = 0;
    const char *s;
    size_t len;
    for (int i = 0; pattern_seg_at(pat, i, &s, &len); i++) {
        out[n++] = '/';
        int kind = seg_kind(s, len);
        if (kind == 1) {
            out[n++] = salt & 1 ? 'a' : 'v'; /* sometimes hits a static sibling */
        } else if (kind == 2) {
            if (salt & 2) n += (size_t)sprintf(out + n, "t/u");
            break;
        } else {
            memcpy(out + n, s, len);
            n += len;
        }
    }
    return n;
}

static void run_patterns(const uint8_t *data, size_t size, unsigned method) {
    ref_route rs[MAX_LINES];
    char *lines[MAX_LINES];
    size_t line_lens[MAX_LINES];
    size_t n = 0, nlines = 0;
    tern__router *r = tern__router_new();
    if (!r) abort();
    const uint8_t *p = data, *end = data + size;
    while (p < end && nlines < MAX_LINES) {
        const uint8_t *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
        char *line = malloc(len + 1);
        memcpy(line, p, len);
        line[len] = '\0';
        lines[nlines] = line;
        line_lens[nlines++] = len;
        p += len + 1;
        if (len == 0) continue;
        unsigned methods =
            line[0] >= '1' && line[0] <= '9' ? 1u << (line[0] - '1') : (uint8_t)line[0] & TERN_ANY;
        const char *pat = line + 1;
        int want = ref_add(rs, n, methods, pat);
        int rc = tern__router_add(r, methods, pat, &handler_ids[nlines]);
        if (rc != want) {
            fprintf(stderr, "add rc %d, reference %d\n", rc, want);
            fail("add differs from the reference", pat, strlen(pat));
        }
        if (rc == 0) rs[n++] = (ref_route){(char *)pat, methods, &handler_ids[nlines]};
    }
    char *buf = malloc(2 * size + 16);
    for (size_t i = 0; i < nlines; i++) {
        if (line_lens[i] == 0) continue;
        const char *pat = lines[i] + 1;
        unsigned ms[] = {method, TERN_GET, TERN_HEAD, TERN_OPTIONS};
        for (size_t k = 0; k < 4; k++) {
            check_lookup(r, rs, n, ms[k], pat, strlen(pat));
            size_t len = concretise(pat, buf, (unsigned)(i + k));
            check_lookup(r, rs, n, ms[k], buf, len);
        }
        check_lookup(r, rs, n, method, lines[i], line_lens[i]); /* raw bytes, NULs too */
    }
    free(buf);
    for (size_t i = 0; i < nlines; i++) free(lines[i]);
    tern__router_free(r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size == 0) return 0;
    unsigned method = method_from(data[0] >> 1);
    if ((data[0] & 1) == 0) {
        if (!fixed_router) fixed_init();
        /* data + 1 .. data + size is the path, flush against the end of the
         * fuzzer's buffer so an over-read trips ASan */
        check_lookup(fixed_router, fixed_ref, NFIXED, method, (const char *)data + 1, size - 1);
        return 0;
    }
    run_patterns(data + 1, size - 1, method);
    return 0;
}
