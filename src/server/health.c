/* Liveness and readiness (see tern/health.h). */
#include "server/health.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "server/server.h"
#include "server/worker.h"
#include "tern/health.h"

typedef struct tern__health_check {
    char *name;
    tern_health_check_fn fn;
    void *arg;
    struct tern__health_check *next;
} tern__health_check;

static int name_ok(const char *name) {
    if (!name || !*name || strlen(name) > 64) return 0;
    for (const char *p = name; *p; p++)
        if (!(*p == '-' || *p == '_' || *p == '.' || (*p >= '0' && *p <= '9') ||
              ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'z')))
            return 0;
    return 1;
}

int tern_health_add_check(tern_server *s, const char *name, tern_health_check_fn fn, void *arg) {
    if (!s || !fn || !name_ok(name)) return -EINVAL;
    if (s->workers) return -EBUSY; /* the list is read without locks once running */
    tern__health_check **tail = &s->health_checks;
    for (; *tail; tail = &(*tail)->next)
        if (strcmp((*tail)->name, name) == 0) return -EEXIST;
    tern__health_check *c = calloc(1, sizeof *c);
    if (!c || !(c->name = strdup(name))) {
        free(c);
        return -ENOMEM;
    }
    c->fn = fn;
    c->arg = arg;
    *tail = c; /* in registration order, as /readyz lists them */
    return 0;
}

void tern__health_free(tern_server *s) {
    while (s->health_checks) {
        tern__health_check *next = s->health_checks->next;
        free(s->health_checks->name);
        free(s->health_checks);
        s->health_checks = next;
    }
}

int tern_server_set_drain_delay(tern_server *s, unsigned ms) {
    if (s->workers) return -EBUSY;
    s->drain_delay_ms = ms;
    return 0;
}

int tern_server_draining(const tern_server *s) {
    return atomic_load_explicit(&s->draining, memory_order_acquire);
}

void tern__health_tick(tern__worker *w, uint64_t now_ns) {
    atomic_store_explicit(&w->last_tick_ns, now_ns, memory_order_relaxed);
}

void tern_healthz_handler(tern_ctx *ctx) {
    tern_server *s = tern_ctx_server(ctx);
    uint64_t now = tern_clock_ns(), stall = (uint64_t)TERN_HEALTH_STALL_MS * 1000000ull;
    int stuck = 0;
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    tern_resp_set_header(ctx, "Cache-Control", "no-store");
    /* a draining worker stops its tick on purpose: alive, just leaving */
    int draining = tern_server_draining(s);
    for (int i = 0; i < s->nworkers && !draining; i++) {
        uint64_t t = atomic_load_explicit(&s->workers[i].last_tick_ns, memory_order_relaxed);
        if (!t || now <= t || now - t <= stall) continue;
        tern_resp_printf(ctx, "%s%d", stuck++ ? "," : "{\"status\":\"stuck\",\"stuck_workers\":[", i);
    }
    if (stuck) {
        tern_resp_set_status(ctx, 503);
        tern_resp_printf(ctx, "],\"workers\":%d}\n", s->nworkers);
        return;
    }
    tern_resp_printf(ctx, "{\"status\":\"alive\",\"workers\":%d}\n", s->nworkers);
}

/* Runs every check (all of them, so the answer names each failure) and
 * appends their results; returns how many failed. */
static int run_checks(tern_ctx *ctx, tern_server *s) {
    int failed = 0;
    tern_resp_printf(ctx, ",\"checks\":{");
    for (tern__health_check *c = s->health_checks; c; c = c->next) {
        int r = c->fn(c->arg);
        if (r < 0) failed++;
        tern_resp_printf(ctx, "%s\"%s\":%s", c == s->health_checks ? "" : ",", c->name,
                         r < 0 ? tern_json_quote(ctx, strerror(-r)) : "\"ok\"");
    }
    tern_resp_printf(ctx, "}");
    return failed;
}

void tern_readyz_handler(tern_ctx *ctx) {
    tern_server *s = tern_ctx_server(ctx);
    tern_load load = {0};
    (void)tern_load_get(&load);
    int draining = tern_server_draining(s);
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    tern_resp_set_header(ctx, "Cache-Control", "no-store");
    tern_resp_printf(ctx, "{\"draining\":%s,\"shedding\":%s", draining ? "true" : "false",
                     load.shedding ? "true" : "false");
    /* a draining server skips its checks: the answer is no either way */
    int failed = draining ? 0 : run_checks(ctx, s);
    const char *reason = draining ? "draining" : load.shedding ? "shedding" : failed ? "check failed" : NULL;
    if (reason) {
        tern_resp_set_status(ctx, 503);
        tern_resp_printf(ctx, ",\"ready\":false,\"reason\":\"%s\"}\n", reason);
        return;
    }
    tern_resp_printf(ctx, ",\"ready\":true}\n");
}
