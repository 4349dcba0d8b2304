/* Route table: a segment tree per path shape with static, ":param" and
 * "*wildcard" segments and a handler per method. Static segments are tried
 * before :params, :params before *wildcards, with backtracking, so
 * "/users/me" beats "/users/:id". Lookup allocates nothing; params point
 * into the matched path. Built once before the server starts, then read by
 * every worker without locks. */
#ifndef TERN_HTTP_ROUTER_H
#define TERN_HTTP_ROUTER_H

#include <stddef.h>
#include <stdint.h>

#define TERN_MAX_PARAMS 8

typedef struct tern__router tern__router;

typedef struct tern__route_param {
    const char *name;        /* NUL-terminated, owned by the router */
    const char *value;       /* points into the path passed to match */
    uint32_t value_len;
} tern__route_param;

typedef struct tern__route_match {
    void *handler;
    unsigned allowed;        /* methods registered for the matched path (for 405/Allow/OPTIONS) */
    uint32_t num_params;
    tern__route_param params[TERN_MAX_PARAMS];
} tern__route_match;

tern__router *tern__router_new(void);
void tern__router_free(tern__router *r);

/* methods: TERN_* bits. Pattern must start with '/'; ":name" matches one
 * non-empty segment; "*name" (last segment only) matches the rest of the path,
 * possibly empty. Returns 0, -EINVAL (bad pattern: empty name, '*' not last,
 * more than TERN_MAX_PARAMS params, two different param names at the same
 * position), -EEXIST (a method already has a handler for this shape) or
 * -ENOMEM. */
/* Details:
 * - A wildcard "*p" after "/files" matches "/files/" (p = "") and
 *   "/files/a/b" (p = "a/b") but not "/files": the '/' before it is literal.
 * - The trailing slash is significant: "/users" and "/users/" are two routes.
 * - A ':' inside a static segment is literal ("/v1/doc:batch"); a '*' in a
 *   static segment is -EINVAL. Parameter names may not hold ':' or '*' and
 *   may not repeat within a pattern (-EINVAL). A wildcard counts as a param.
 * - Also -EINVAL: handler NULL, methods 0 or outside TERN_ANY.
 * - A refused route (any error) leaves the router unchanged. */
int tern__router_add(tern__router *r, unsigned methods, const char *pattern, void *handler);

/* Matches an already decoded and normalised path (starts with '/').
 * Returns 0 with m->handler set; -404 when no route has this path; -405 when
 * routes have this path but not for `method` (m->allowed lists them). HEAD
 * falls back to a GET handler. m->allowed is set in both 0 and -405 cases.
 * Details:
 * - method is one TERN_* bit; anything else (0, several bits) finds no
 *   handler, so it gives METHOD_NOT_ALLOWED on an existing path and NOT_FOUND otherwise.
 * - allowed always holds TERN_OPTIONS, and TERN_HEAD when GET is there. An
 *   OPTIONS request without an OPTIONS handler gets METHOD_NOT_ALLOWED with TERN_OPTIONS in
 *   allowed: the server answers it itself (204 + Allow).
 * - On 0, allowed is the matched route's methods; on METHOD_NOT_ALLOWED it is the union
 *   over every route matching the path (all of which would be answered).
 * - Only a route with a handler for `method` wins: "/a/b" (POST only) and
 *   "/a/:x" (GET) give GET /a/b -> "/a/:x".
 * - m->handler is non-NULL iff FOUND is returned; m->num_params is 0 unless 0.
 * - Lock-free for any number of concurrent readers once adds are done. */
typedef enum tern__route_result {
    TERN__ROUTE_FOUND = 0,
    TERN__ROUTE_NOT_FOUND,          /* no route for the path: 404 */
    TERN__ROUTE_METHOD_NOT_ALLOWED, /* routes for the path, none for the method: 405 */
} tern__route_result;

tern__route_result tern__router_match(const tern__router *r, unsigned method, const char *path, size_t len,
                                      tern__route_match *m);

#endif
