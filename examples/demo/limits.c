/* tern-demo: what a request may ask for.
 *
 * Numeric parameters are parsed strictly: decimal digits only (no sign, no
 * space, no "0x", nothing after the number), no overflow, inside a
 * documented range. strtoul accepted "-1" (as ULONG_MAX), "abc" (as 0) and
 * "+0"; each of those is a 400 here, naming the parameter and its range.
 *
 * The server-wide budget bounds what all requests together make the demo
 * hold: tasks it spawns, handlers it parks on purpose, buffers it
 * allocates per request (KiB), and CPU work it promises (MiB to hash). A
 * per-request limit alone does not bound memory: four concurrent
 * /memory?tasks=100000 took 1.6 GB. A request that would take the budget
 * past its limit is answered 503 with Retry-After at once (no queue). */
#include <limits.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <tern.h>

#include "demo.h"

int demo_parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *out) {
    if (!s || !*s) return -1;
    unsigned long v = 0;
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') return -1;
        unsigned long d = (unsigned long)(*p - '0');
        if (v > (ULONG_MAX - d) / 10) return -1; /* would overflow */
        v = v * 10 + d;
    }
    if (v < lo || v > hi) return -1;
    *out = v;
    return 0;
}

/* A number is plain digits: require the raw value of the first `name=`
 * pair in the query string to be exactly `decoded` (no escape anywhere in
 * it, not even "%31" for "1"). */
static int raw_is(const tern_ctx *ctx, const char *name, const char *decoded) {
    tern_str qs = tern_req_query_string(ctx);
    size_t nlen = strlen(name), dlen = strlen(decoded);
    const char *p = qs.ptr, *end = qs.ptr + qs.len;
    while (p && p < end) {
        const char *amp = memchr(p, '&', (size_t)(end - p));
        const char *pair_end = amp ? amp : end;
        if ((size_t)(pair_end - p) > nlen && memcmp(p, name, nlen) == 0 && p[nlen] == '=') {
            const char *v = p + nlen + 1;
            return (size_t)(pair_end - v) == dlen && memcmp(v, decoded, dlen) == 0;
        }
        p = amp ? amp + 1 : NULL;
    }
    return 0; /* the name itself was escaped */
}

int demo_query_uint(tern_ctx *ctx, const char *name, unsigned long def, unsigned long lo,
                    unsigned long hi, unsigned long *out) {
    const char *q = NULL;
    int r = tern_req_query_get(ctx, name, &q);
    if (r == -ENOENT) {
        *out = def;
        return 0;
    }
    if (r < 0) q = ""; /* malformed escape or an encoded NUL: not a number */
    if (demo_parse_uint(q, lo, hi, out) == 0 && raw_is(ctx, name, q)) return 0;
    /* echo at most 32 bytes of what was sent */
    char got[33];
    snprintf(got, sizeof got, "%s", q);
    const char *msg = tern_sprintf(
        ctx, "%s must be an integer from %lu to %lu (decimal digits only)", name, lo, hi);
    const char *m = msg ? tern_json_quote(ctx, msg) : NULL;
    const char *n = tern_json_quote(ctx, name);
    const char *g = tern_json_quote(ctx, got);
    if (!m || !n || !g) return -1; /* out of arena: the request gets a 503 */
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    tern_resp_set_status(ctx, 400);
    tern_resp_printf(ctx, "{\"error\":%s,\"parameter\":%s,\"min\":%lu,\"max\":%lu,\"got\":%s}", m,
                     n, lo, hi, g);
    return -1;
}

/* ---- the budget ------------------------------------------------------------------ */

void demo_budget_init(demo_budget *b, long kib, long cpu_mib) {
    atomic_init(&b->kib_used, 0);
    atomic_init(&b->cpu_mib_used, 0);
    b->kib_limit = kib;
    b->cpu_mib_limit = cpu_mib;
}

/* Adds `n` to *used unless that passes `limit`: one compare-and-swap loop,
 * so concurrent requests on several workers can never overshoot together. */
static int take(_Atomic long *used, long limit, long n) {
    long cur = atomic_load_explicit(used, memory_order_relaxed);
    do {
        if (n > limit - cur) return -1;
    } while (!atomic_compare_exchange_weak_explicit(used, &cur, cur + n, memory_order_relaxed,
                                                    memory_order_relaxed));
    return 0;
}

int demo_budget_take(tern_ctx *ctx, demo_grant *g, long kib, long cpu_mib) {
    demo_budget *b = &demo_app_of(ctx)->budget;
    g->budget = b;
    g->kib = g->cpu_mib = 0;
    const char *what = NULL;
    long limit = 0, used = 0, asked = 0;
    if (take(&b->kib_used, b->kib_limit, kib) < 0) {
        what = "memory_kib", limit = b->kib_limit, asked = kib;
        used = atomic_load_explicit(&b->kib_used, memory_order_relaxed);
    } else if (take(&b->cpu_mib_used, b->cpu_mib_limit, cpu_mib) < 0) {
        atomic_fetch_sub_explicit(&b->kib_used, kib, memory_order_relaxed);
        what = "cpu_mib", limit = b->cpu_mib_limit, asked = cpu_mib;
        used = atomic_load_explicit(&b->cpu_mib_used, memory_order_relaxed);
    }
    if (!what) {
        g->kib = kib;
        g->cpu_mib = cpu_mib;
        return 0;
    }
    /* larger than the whole budget: retrying cannot help, so no Retry-After */
    int never = asked > limit;
    if (!never) tern_resp_set_header(ctx, "Retry-After", "1");
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    tern_resp_set_status(ctx, 503);
    tern_resp_printf(ctx,
                     "{\"error\":\"%s\",\"budget\":\"%s\",\"limit\":%ld,\"in_use\":%ld,"
                     "\"asked\":%ld%s}",
                     never ? "this request is larger than the server's whole budget"
                           : "server busy: the demo's budget for work in flight is in use",
                     what, limit, used, asked, never ? "" : ",\"retry_after_s\":1");
    return -1;
}

void demo_budget_give(demo_grant *g) {
    if (!g->budget) return;
    if (g->kib) atomic_fetch_sub_explicit(&g->budget->kib_used, g->kib, memory_order_relaxed);
    if (g->cpu_mib)
        atomic_fetch_sub_explicit(&g->budget->cpu_mib_used, g->cpu_mib, memory_order_relaxed);
    g->budget = NULL;
}
