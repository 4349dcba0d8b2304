/* Router lookup micro-benchmark: a 50-route table shaped like a small REST
 * API, then
 *   route_ns_static: mean ns per lookup, cycling through all 40 static paths
 *   route_ns_param:  mean ns per lookup of "/users/:id" with varying ids
 * Each figure is the best of 7 runs of 2M lookups (the minimum filters out
 * scheduler noise; the work itself is deterministic).
 * Build: cc -O2 -D_GNU_SOURCE -Iinclude -Isrc bench/micro_router.c -o micro_router */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "http/router.c"

static const char *const resources[] = {"users",    "orders",   "products", "invoices",
                                        "payments", "sessions", "reports",  "customers",
                                        "teams",    "projects", "tickets",  "webhooks"};
#define NRES (sizeof(resources) / sizeof(resources[0]))

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void *volatile sink;

typedef struct bench_path {
    const char *p;
    size_t len;
} bench_path;

/* Mean ns per lookup over `iters` lookups cycling through paths; best of 7. */
static double bench(const tern_router *r, const bench_path *paths, size_t npaths, long iters) {
    double best = 1e30;
    for (int run = 0; run < 7; run++) {
        tern_route_match m;
        uint64_t t0 = now_ns();
        size_t k = 0;
        for (long i = 0; i < iters; i++) {
            if (tern_router_match(r, TERN_GET, paths[k].p, paths[k].len, &m) != 0) {
                fprintf(stderr, "no match for %s\n", paths[k].p);
                exit(1);
            }
            sink = m.handler;
            if (++k == npaths) k = 0;
        }
        double ns = (double)(now_ns() - t0) / (double)iters;
        if (ns < best) best = ns;
    }
    return best;
}

int main(void) {
    static char handler;
    static char statics[64][48];
    static char params[16][48];
    bench_path sp[64], pp[16];
    size_t ns = 0, np = 0, nroutes = 0;
    tern_router *r = tern_router_new();
    if (!r) return 1;

    /* 40 static routes: "/", "/health", 12 x "/api/v1/<res>", 12 x
     * "/api/v1/<res>/stats", 12 x "/<res>", 2 more */
    const char *extra[] = {"/", "/health", "/metrics", "/api/v1/status"};
    for (size_t i = 0; i < 4; i++) snprintf(statics[ns++], 48, "%s", extra[i]);
    for (size_t i = 0; i < NRES; i++) {
        snprintf(statics[ns++], 48, "/api/v1/%s", resources[i]);
        snprintf(statics[ns++], 48, "/api/v1/%s/stats", resources[i]);
        snprintf(statics[ns++], 48, "/%s", resources[i]);
    }
    for (size_t i = 0; i < ns; i++) {
        if (tern_router_add(r, TERN_GET, statics[i], &handler) != 0) return 1;
        sp[i] = (bench_path){statics[i], strlen(statics[i])};
        nroutes++;
    }
    /* 10 param routes: "/<res>/:id" for 9 resources and one deeper one */
    for (size_t i = 0; i < 9; i++) {
        char pat[64];
        snprintf(pat, sizeof(pat), "/%s/:id", resources[i]);
        if (tern_router_add(r, TERN_GET | TERN_DELETE, pat, &handler) != 0) return 1;
        nroutes++;
    }
    if (tern_router_add(r, TERN_GET, "/api/v1/users/:id/orders/:order", &handler) != 0) return 1;
    nroutes++;
    for (int i = 0; i < 16; i++) {
        snprintf(params[np], 48, "/users/%d", 1000 + i * 7919);
        pp[np] = (bench_path){params[np], strlen(params[np])};
        np++;
    }
    if (nroutes != 50) {
        fprintf(stderr, "expected 50 routes, have %zu\n", nroutes);
        return 1;
    }

    const long iters = 2000000;
    printf("route_ns_static %.1f\n", bench(r, sp, ns, iters));
    printf("route_ns_param %.1f\n", bench(r, pp, np, iters));
    tern_router_free(r);
    return 0;
}
