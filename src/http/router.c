/* Route table: a segment tree. Every edge consumes "/segment" of the path;
 * a node has sorted static children, at most one ":param" child and at most
 * one "*wildcard" child (a leaf). Lookup is an iterative depth-first search
 * that tries static, then :param, then *wildcard and backtracks through
 * parent pointers, so it needs neither recursion nor a stack: the node a
 * search is in, plus the path position, say where to resume.
 *
 * Each node is visited at most once per lookup (a node at depth d can only
 * consume segment d of the path), so a miss costs O(nodes) at worst and a hit
 * on a static path is one hash probe per segment (usually the first slot).
 *
 * Static children are found through a small open-addressing table per node,
 * keyed by the segment's length and two words that together cover it: for
 * the usual segment of up to 16 bytes the key is the segment itself, so a
 * probe compares three integers and calls nothing. Measured with callgrind
 * on "/plaintext" against the demo's 15 routes: 179 instructions per lookup
 * with a binary search over memcmp, see bench/micro_router.c for ns. */
#include "http/router.h"

#include <assert.h>
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "tern.h"

/* Allocation hooks so the unit test can inject failures (it #includes this
 * file after defining them). Only tern_router_add allocates. */
#ifndef ROUTER_MALLOC
#define ROUTER_MALLOC malloc
#endif
#ifndef ROUTER_REALLOC
#define ROUTER_REALLOC realloc
#endif

/* One slot per method bit (TERN_GET .. TERN_TRACE) plus a slot that is
 * always NULL, used for methods that are not a single known bit, so the
 * lookup indexes without a branch. */
#define METHOD_SLOTS 9
#define METHOD_SLOT_NONE METHOD_SLOTS
_Static_assert(TERN_ANY == (1u << METHOD_SLOTS) - 1, "one handler slot per method bit");

enum node_kind { NODE_ROOT, NODE_STATIC, NODE_PARAM, NODE_WILD };

typedef struct router_node router_node;

typedef struct router_edge {
    uint64_t head, tail; /* seg_key() of the segment */
    const char *seg;     /* the child's segment bytes (stored in the child) */
    uint32_t len;
    router_node *child;
} router_edge;

struct router_node {
    router_node *parent;
    router_edge *statics; /* capstatic edges, then the index: see index_of */
    uint32_t nstatic, capstatic;
    uint32_t index_shift; /* 64 - log2(index slots) */
    router_node *param;
    router_node *wild;
    char *name;      /* NODE_PARAM / NODE_WILD: the parameter name */
    uint32_t seglen; /* NODE_STATIC: length of seg */
    uint8_t kind;
    unsigned registered; /* methods added explicitly */
    unsigned allowed;    /* registered + HEAD (if GET) + OPTIONS; 0: not a route end */
    void *handlers[METHOD_SLOTS + 1];
    char seg[]; /* NODE_STATIC: segment bytes, NUL-terminated */
};

struct tern_router {
    router_node *root;
};

static inline uint64_t ld64(const char *p) {
    uint64_t x;
    memcpy(&x, p, 8);
    return x;
}

static inline uint32_t ld32(const char *p) {
    uint32_t x;
    memcpy(&x, p, 4);
    return x;
}

/* Two words that, with the length, identify a segment: its first and last 8
 * bytes (4 when shorter than 8; three single bytes under 4), which overlap
 * to cover all of it up to 16 bytes. Longer segments also compare the
 * middle. Reads only s[0..len). */
static inline void seg_key(const char *s, size_t len, uint64_t *head, uint64_t *tail) {
    if (len >= 8) {
        *head = ld64(s);
        *tail = ld64(s + len - 8);
    } else if (len >= 4) {
        *head = ld32(s);
        *tail = ld32(s + len - 4);
    } else {
        *head = len ? (uint64_t)(unsigned char)s[0] | (uint64_t)(unsigned char)s[len / 2] << 8 |
                          (uint64_t)(unsigned char)s[len - 1] << 16
                    : 0;
        *tail = 0;
    }
}

static inline uint32_t seg_hash(uint64_t head, uint64_t tail, size_t len, uint32_t shift) {
    uint64_t x = ((head + len) * 0x9e3779b97f4a7c15u ^ tail) * 0xc2b2ae3d27d4eb4fu;
    return (uint32_t)(x >> shift);
}

/* The index: slot count is a power of two at least twice capstatic, each
 * slot 0 (empty) or 1 + an edge number; linear probing. */
static inline uint32_t *index_of(const router_node *n) {
    return (uint32_t *)(void *)(n->statics + n->capstatic);
}

static size_t index_slots(uint32_t cap) {
    return (size_t)cap * 2;
}

static void index_rebuild(router_node *n) {
    uint32_t *slots = index_of(n);
    size_t nslots = index_slots(n->capstatic);
    uint32_t mask = (uint32_t)nslots - 1;
    memset(slots, 0, nslots * sizeof(*slots));
    for (uint32_t i = 0; i < n->nstatic; i++) {
        const router_edge *e = &n->statics[i];
        uint32_t h = seg_hash(e->head, e->tail, e->len, n->index_shift);
        while (slots[h]) h = (h + 1) & mask;
        slots[h] = i + 1;
    }
}

static inline router_node *find_static(const router_node *n, const char *seg, size_t len) {
    if (!n->nstatic) return NULL;
    uint64_t head, tail;
    seg_key(seg, len, &head, &tail);
    const uint32_t *slots = index_of(n);
    uint32_t mask = (uint32_t)index_slots(n->capstatic) - 1;
    for (uint32_t h = seg_hash(head, tail, len, n->index_shift);; h = (h + 1) & mask) {
        uint32_t k = slots[h];
        if (!k) return NULL;
        const router_edge *e = &n->statics[k - 1];
        if (e->len == len && e->head == head && e->tail == tail &&
            (len <= 16 || memcmp(e->seg + 8, seg + 8, len - 16) == 0))
            return e->child;
    }
}

static router_node *node_new(router_node *parent, uint8_t kind, const char *seg, size_t seglen) {
    router_node *n = ROUTER_MALLOC(sizeof(*n) + seglen + 1);
    if (!n) return NULL;
    memset(n, 0, sizeof(*n));
    n->parent = parent;
    n->kind = kind;
    n->seglen = (uint32_t)seglen;
    if (seglen) memcpy(n->seg, seg, seglen);
    n->seg[seglen] = '\0';
    return n;
}

/* Frees n and everything below it, iteratively (patterns may be thousands of
 * segments deep). n must already be detached from its parent. */
static void subtree_free(router_node *n) {
    router_node *top = n;
    while (n) {
        router_node *c = NULL;
        if (n->nstatic) {
            c = n->statics[--n->nstatic].child;
        } else if (n->param) {
            c = n->param;
            n->param = NULL;
        } else if (n->wild) {
            c = n->wild;
            n->wild = NULL;
        }
        if (c) {
            n = c;
            continue;
        }
        router_node *up = n == top ? NULL : n->parent;
        free(n->statics);
        free(n->name);
        free(n);
        n = up;
    }
}

tern_router *tern_router_new(void) {
    tern_router *r = ROUTER_MALLOC(sizeof(*r));
    if (!r) return NULL;
    r->root = node_new(NULL, NODE_ROOT, NULL, 0);
    if (!r->root) {
        free(r);
        return NULL;
    }
    return r;
}

void tern_router_free(tern_router *r) {
    if (!r) return;
    subtree_free(r->root);
    free(r);
}

/* ---- adding routes ------------------------------------------------------- */

typedef struct pattern_seg {
    const char *ptr; /* static: segment; param/wild: name (after ':' / '*') */
    uint32_t len;
    uint8_t kind;
} pattern_seg;

/* Parameter names may not hold ':' or '*' (they would read as a typo for a
 * second parameter) and may not repeat inside one pattern, since
 * tern_param() looks parameters up by name. */
static bool name_ok(const char *name, size_t len) {
    return len > 0 && !memchr(name, ':', len) && !memchr(name, '*', len);
}

/* Splits and validates a pattern. Returns the number of segments or -EINVAL.
 * segs may be NULL to count only. */
static long pattern_parse(const char *pattern, pattern_seg *segs) {
    if (!pattern || pattern[0] != '/') return -EINVAL;
    size_t total = strlen(pattern);
    if (total > UINT32_MAX) return -EINVAL;
    long nseg = 0;
    unsigned nparams = 0;
    const char *names[TERN_MAX_PARAMS];
    uint32_t name_lens[TERN_MAX_PARAMS];
    const char *p = pattern, *end = pattern + total;
    while (p < end) {
        const char *s = p + 1; /* p points at '/' */
        const char *e = memchr(s, '/', (size_t)(end - s));
        if (!e) e = end;
        size_t len = (size_t)(e - s);
        uint8_t kind = NODE_STATIC;
        if (len && (s[0] == ':' || s[0] == '*')) {
            kind = s[0] == ':' ? NODE_PARAM : NODE_WILD;
            s++;
            len--;
            if (!name_ok(s, len)) return -EINVAL;
            if (kind == NODE_WILD && e != end) return -EINVAL; /* '*' must be last */
            if (nparams == TERN_MAX_PARAMS) return -EINVAL;
            for (unsigned i = 0; i < nparams; i++)
                if (name_lens[i] == len && memcmp(names[i], s, len) == 0) return -EINVAL;
            names[nparams] = s;
            name_lens[nparams] = (uint32_t)len;
            nparams++;
        } else if (memchr(s, '*', len)) {
            /* A '*' inside a static segment is almost certainly a misplaced
             * wildcard; refuse it rather than match it literally. A ':' in the
             * middle ("/v1:batch") is a literal, as in Google-style APIs. */
            return -EINVAL;
        }
        if (segs) segs[nseg] = (pattern_seg){s, (uint32_t)len, kind};
        nseg++;
        p = e;
    }
    return nseg;
}

/* The child of n a pattern segment leads to, or NULL if there is none yet.
 * Sets *conflict when n has a parameter of that kind under another name. */
static router_node *child_for(const router_node *n, const pattern_seg *s, bool *conflict) {
    const router_node *c;
    switch (s->kind) {
    case NODE_STATIC:
        return find_static(n, s->ptr, s->len);
    case NODE_PARAM:
        c = n->param;
        break;
    default:
        c = n->wild;
        break;
    }
    if (c && (strlen(c->name) != s->len || memcmp(c->name, s->ptr, s->len) != 0)) {
        *conflict = true;
        return NULL;
    }
    return (router_node *)c;
}

/* Creates the child of n for s and links it in; NULL on out of memory
 * (n is then unchanged). */
static router_node *child_create(router_node *n, const pattern_seg *s) {
    if (s->kind != NODE_STATIC) {
        router_node *c = node_new(n, s->kind, NULL, 0);
        char *name = ROUTER_MALLOC(s->len + 1);
        if (!c || !name) {
            free(c);
            free(name);
            return NULL;
        }
        memcpy(name, s->ptr, s->len);
        name[s->len] = '\0';
        c->name = name;
        if (s->kind == NODE_PARAM)
            n->param = c;
        else
            n->wild = c;
        return c;
    }
    if (n->nstatic == n->capstatic) {
        if (n->capstatic > UINT32_MAX / 4) return NULL; /* the index would overflow */
        uint32_t cap = n->capstatic ? n->capstatic * 2 : 2;
        size_t bytes = cap * sizeof(router_edge) + index_slots(cap) * sizeof(uint32_t);
        router_edge *grown = ROUTER_REALLOC(n->statics, bytes);
        if (!grown) return NULL;
        n->statics = grown;
        n->capstatic = cap;
        n->index_shift = 64 - (uint32_t)__builtin_ctzll(index_slots(cap));
        index_rebuild(n); /* the slots moved: keep n whole if node_new fails */
    }
    router_node *c = node_new(n, NODE_STATIC, s->ptr, s->len);
    if (!c) return NULL;
    router_edge *e = &n->statics[n->nstatic++];
    *e = (router_edge){0, 0, c->seg, s->len, c};
    seg_key(c->seg, s->len, &e->head, &e->tail);
    index_rebuild(n);
    return c;
}

/* Unlinks c from its parent. */
static void child_detach(router_node *c) {
    router_node *n = c->parent;
    if (c->kind == NODE_PARAM) {
        n->param = NULL;
    } else if (c->kind == NODE_WILD) {
        n->wild = NULL;
    } else {
        uint32_t at = 0;
        while (n->statics[at].child != c) at++;
        assert(at < n->nstatic);
        memmove(&n->statics[at], &n->statics[at + 1], (n->nstatic - at - 1) * sizeof(router_edge));
        n->nstatic--;
        index_rebuild(n);
    }
    c->parent = NULL;
}

static unsigned method_slot(unsigned method) {
    if (method == 0 || (method & (method - 1)) || (method & ~(unsigned)TERN_ANY))
        return METHOD_SLOT_NONE;
    return (unsigned)__builtin_ctz(method);
}

static void node_set_handlers(router_node *n, unsigned methods, void *handler) {
    n->registered |= methods;
    for (unsigned i = 0; i < METHOD_SLOTS; i++)
        if (methods & (1u << i)) n->handlers[i] = handler;
    /* RFC 9110 9.3.2: HEAD is GET without the body, so a GET route answers
     * HEAD unless HEAD has its own handler. */
    if (!(n->registered & TERN_HEAD) && (n->registered & TERN_GET))
        n->handlers[method_slot(TERN_HEAD)] = n->handlers[method_slot(TERN_GET)];
    /* OPTIONS is always allowed: without a handler of its own the server
     * answers it from this mask (RFC 9110 9.3.7). */
    n->allowed = n->registered | TERN_OPTIONS | (n->registered & TERN_GET ? TERN_HEAD : 0);
}

int tern_router_add(tern_router *r, unsigned methods, const char *pattern, void *handler) {
    if (!r || !handler || methods == 0 || (methods & ~(unsigned)TERN_ANY)) return -EINVAL;
    long nseg = pattern_parse(pattern, NULL);
    if (nseg < 0) return (int)nseg;
    pattern_seg stack_segs[32];
    pattern_seg *segs = stack_segs;
    if (nseg > 32) {
        segs = ROUTER_MALLOC((size_t)nseg * sizeof(*segs));
        if (!segs) return -ENOMEM;
    }
    pattern_parse(pattern, segs);

    /* Check the whole pattern against the tree before changing anything, so
     * a refused route leaves no trace (an orphan :param node would make later
     * routes conflict with a route that does not exist). */
    int rc = 0;
    router_node *n = r->root;
    long i = 0;
    for (; i < nseg; i++) {
        bool conflict = false;
        router_node *c = child_for(n, &segs[i], &conflict);
        if (conflict) {
            rc = -EINVAL;
            goto out;
        }
        if (!c) break;
        n = c;
    }
    if (i == nseg && (n->registered & methods)) {
        rc = -EEXIST;
        goto out;
    }
    /* Create what is missing; only out of memory can fail from here on, and
     * then the new chain (hanging from its first node) is removed again. */
    router_node *first_new = NULL;
    for (; i < nseg; i++) {
        router_node *c = child_create(n, &segs[i]);
        if (!c) {
            if (first_new) {
                child_detach(first_new);
                subtree_free(first_new);
            }
            rc = -ENOMEM;
            goto out;
        }
        if (!first_new) first_new = c;
        n = c;
    }
    node_set_handlers(n, methods, handler);
out:
    if (segs != stack_segs) free(segs);
    return rc;
}

/* ---- matching ------------------------------------------------------------ */

/* Non-zero when one of w's bytes is '/'; the lowest set bit is at the
 * first one (the borrow that can flag a byte above it never reaches below). */
static inline uint64_t slash_bits(uint64_t w) {
    const uint64_t ones = 0x0101010101010101u, slashes = ones * '/';
    uint64_t x = w ^ slashes;
    return (x - ones) & ~x & ones << 7;
}

/* Length of the segment at s (up to the next '/' or end) in a path that
 * starts at path. Path segments are a few bytes long: 8 are tested at once,
 * and the last few as the 8 bytes that end at `end` (inside the path) with
 * those before s shifted out. A byte loop is left only for paths under 8
 * bytes and big-endian targets. */
static inline size_t segment_len(const char *path, const char *s, const char *end) {
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    if (end - path >= 8) {
        const char *p = s;
        for (; end - p >= 8; p += 8) {
            uint64_t m = slash_bits(ld64(p));
            if (m) return (size_t)(p - s) + (size_t)__builtin_ctzll(m) / 8;
        }
        if (p == end) return (size_t)(end - s);
        uint64_t m = slash_bits(ld64(end - 8) >> (8 * (8 - (end - p))));
        return m ? (size_t)(p - s) + (size_t)__builtin_ctzll(m) / 8 : (size_t)(end - s);
    }
#endif
    (void)path;
    const char *p = s;
    while (p < end && *p != '/') p++;
    return (size_t)(p - s);
}

/* The depth-first search, from node n reached with path[0..pos) consumed
 * and only static edges taken so far. `next` is the alternative to try at
 * n: 0 static, 1 :param, 2 *wildcard, 3 go up. */
static __attribute__((noinline)) int match_from(const router_node *n, size_t pos, int next,
                                                unsigned slot, const char *path, size_t len,
                                                tern_route_match *m) {
    unsigned allowed405 = 0;
    for (;;) {
        if (pos == len) {
            /* The path is used up: n is a candidate if a route ends here.
             * No child can match (each needs a '/'), so then go up. */
            if (next == 0 && n->allowed) {
                void *h = n->handlers[slot];
                if (h) {
                    m->handler = h;
                    m->allowed = n->allowed;
                    return 0;
                }
                allowed405 |= n->allowed;
            }
            goto up;
        }
        /* Here path[pos] == '/': every edge consumes "/segment". */
        const char *seg = path + pos + 1;
        size_t rest = len - pos - 1;
        const router_node *c;
        switch (next) {
        case 0: {
            size_t seglen = segment_len(path, seg, path + len);
            next = 1;
            if ((c = find_static(n, seg, seglen))) {
                n = c;
                pos += 1 + seglen;
                next = 0;
            }
            continue;
        }
        case 1:
            next = 2;
            if (n->param) {
                size_t seglen = segment_len(path, seg, path + len);
                if (seglen == 0) continue; /* a :param is never empty */
                assert(m->num_params < TERN_MAX_PARAMS);
                m->params[m->num_params++] =
                    (tern_route_param){n->param->name, seg, (uint32_t)seglen};
                n = n->param;
                pos += 1 + seglen;
                next = 0;
            }
            continue;
        case 2:
            next = 3;
            if ((c = n->wild)) {
                /* A wildcard takes everything after the '/', possibly nothing. */
                void *h = c->handlers[slot];
                if (h) {
                    assert(m->num_params < TERN_MAX_PARAMS);
                    m->params[m->num_params++] = (tern_route_param){c->name, seg, (uint32_t)rest};
                    m->handler = h;
                    m->allowed = c->allowed;
                    return 0;
                }
                allowed405 |= c->allowed;
            }
            continue;
        default:
            break;
        }
    up:
        /* Go up one level and resume at the alternative after the edge we
         * came down by. */
        if (n->kind == NODE_STATIC) {
            pos -= 1 + n->seglen;
            next = 1;
        } else if (n->kind == NODE_PARAM) {
            const tern_route_param *p = &m->params[--m->num_params];
            pos = (size_t)(p->value - path) - 1;
            next = 2;
        } else {
            break; /* back at the root: every alternative failed */
        }
        n = n->parent;
    }
    assert(m->num_params == 0);
    if (allowed405) {
        m->allowed = allowed405;
        return -405;
    }
    return -404;
}

int tern_router_match(const tern_router *r, unsigned method, const char *path, size_t len,
                      tern_route_match *m) {
    const unsigned slot = method_slot(method);
    m->handler = NULL;
    m->allowed = 0;
    m->num_params = 0;
    /* value_len is 32 bits; the server caps targets far below that anyway */
    if (len == 0 || len > UINT32_MAX || path[0] != '/') return -404;

    /* The search tries static edges first at every node, so its first
     * candidate is the all-static descent: walk that without the search's
     * bookkeeping, and hand over (in the state the search would be in) at
     * the first segment with no static edge or an end without a handler. */
    const router_node *n = r->root, *c;
    size_t pos = 0;
    while (pos < len) {
        const char *seg = path + pos + 1;
        size_t seglen = segment_len(path, seg, path + len);
        if (!(c = find_static(n, seg, seglen))) return match_from(n, pos, 1, slot, path, len, m);
        n = c;
        pos += 1 + seglen;
    }
    void *h = n->handlers[slot];
    if (!h) return match_from(n, pos, 0, slot, path, len, m);
    m->handler = h;
    m->allowed = n->allowed;
    return 0;
}
