/* Dispatch: what the server does with a complete request the exchange hands
 * it: route it (404, 405 with Allow, OPTIONS), admit it (adaptive
 * shedding, per-route and server-wide in-flight limits: every refusal is an
 * immediate 503 + Retry-After) and run its handler under its deadline. */
#include <errno.h>
#include <string.h>
#include <time.h>

#include "http/ctx.h"
#include "rt/sched.h"
#include "server/access_log.h"
#include "server/conn.h"
#include "server/metrics.h"
#include "server/proxy.h"
#include "server/server.h"
#include "server/worker.h"

typedef struct handler_deadline {
    tern__timer timer;
    tern_coro *coro;
    int fired;
} handler_deadline;

static void handler_deadline_fire(tern__timer *t) {
    handler_deadline *hd = (handler_deadline *)t;
    hd->fired = 1;
    tern__sched_cancel(hd->coro);
}

static void shed(tern__worker *w, tern_ctx *ctx, const char *why) {
    tern__ctx_error(ctx, 503, why);
    tern_resp_set_header(ctx, "Retry-After", "1");
    tern__metrics_shed(w->metrics);
}

static uint64_t realtime_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* How long the request waited before its handler could start: from the
 * kernel's receive timestamp when the connection has them. The first
 * adaptive request on a connection turns them on (recvmsg costs more than
 * recv, so only connections that use adaptive routes pay); until then the
 * delay counts from the loop pass that saw the bytes. */
static uint64_t queue_delay(tern__worker *w, tern__h1 *x) {
    if (x->t.arrival_ns) {
        uint64_t now = realtime_ns();
        return now > x->t.arrival_ns ? now - x->t.arrival_ns : 0;
    }
    tern__transport_timestamps(&x->t);
    return tern_clock_ns() - w->sched.now_ns;
}

/* The route's slot when it has a queue: at once if free, else waiting in
 * line (FIFO across workers) if the line is not full, up to the route's
 * queue timeout. 0 with the slot, or -EBUSY (shed; the answer is set). A
 * client that hangs up while waiting leaves the line (its wait is
 * cancelled). */
static int route_slot_wait(tern__worker *w, tern__h1 *x, tern_ctx *ctx, tern__route_entry *e) {
    if (tern_sem_try_acquire(&e->slots) == 0) return 0;
    unsigned ahead = atomic_fetch_add_explicit(&e->queued, 1, memory_order_relaxed);
    if (ahead >= e->queue_max) {
        atomic_fetch_sub_explicit(&e->queued, 1, memory_order_relaxed);
        shed(w, ctx, "route busy and its queue full, retry later");
        return -EBUSY;
    }
    x->in_handler = 1; /* a hangup cancels the wait */
    int r = tern_sem_acquire_timeout(&e->slots, e->queue_timeout_ms);
    x->in_handler = 0;
    tern__sched_clear_cancel(x->coro);
    atomic_fetch_sub_explicit(&e->queued, 1, memory_order_relaxed);
    if (r == 0) return 0;
    shed(w, ctx, r == -ETIMEDOUT ? "route busy, no slot within the queue timeout" : "route busy, retry later");
    return -EBUSY;
}

static void route_slot_release(tern__route_entry *e) {
    if (e->queue_max)
        tern_sem_release(&e->slots);
    else
        atomic_fetch_sub_explicit(&e->in_flight, 1, memory_order_relaxed);
}

/* Admission: 0 to run the handler, or shed (the answer is set). On 0 the
 * caller owns one unit of every limit it passed and gives it back. */
static int admit(tern__worker *w, tern__h1 *x, tern_ctx *ctx, tern__route_entry *e) {
    tern_server *srv = w->server;
    if (e->adaptive) {
        uint64_t delay = queue_delay(w, x);
        tern__metrics_queue_delay(w->metrics, delay);
        unsigned fl = atomic_load_explicit(&srv->in_flight, memory_order_relaxed);
        if (tern__admission_check(&w->admission, delay, w->sched.now_ns, fl, srv->cfg.max_in_flight)) {
            shed(w, ctx, "overloaded, retry later");
            return -EBUSY;
        }
    }
    if (e->max_in_flight && e->queue_max) {
        if (route_slot_wait(w, x, ctx, e) < 0) return -EBUSY;
    } else if (e->max_in_flight) {
        unsigned n = atomic_fetch_add_explicit(&e->in_flight, 1, memory_order_relaxed);
        if (n >= e->max_in_flight) {
            atomic_fetch_sub_explicit(&e->in_flight, 1, memory_order_relaxed);
            shed(w, ctx, "route busy, retry later");
            return -EBUSY;
        }
    }
    unsigned limit = srv->cfg.max_in_flight;
    if (limit) {
        unsigned n = atomic_fetch_add_explicit(&srv->in_flight, 1, memory_order_relaxed);
        if (n >= limit) {
            atomic_fetch_sub_explicit(&srv->in_flight, 1, memory_order_relaxed);
            if (e->max_in_flight) route_slot_release(e);
            shed(w, ctx, "server busy, retry later");
            return -EBUSY;
        }
    }
    return 0;
}

static void run_handler(tern__worker *w, tern__h1 *x, tern_ctx *ctx, tern__route_entry *e) {
    tern_server *srv = w->server;
    if (admit(w, x, ctx, e) < 0) return;
    __atomic_store_n(&w->in_flight, w->in_flight + 1, __ATOMIC_RELAXED); /* read by /stats */
    x->in_handler = 1;
    handler_deadline hd = {.timer = {.fn = handler_deadline_fire}, .coro = x->coro};
    if (e->timeout_ms)
        tern__wheel_add(&w->sched.wheel, &hd.timer, tern_clock_ns() + (uint64_t)e->timeout_ms * 1000000ull);
    if (e->adaptive) {
        tern__admission_start(&w->admission);
        /* the handler's active time (running, or ready while others run),
         * not its wall time: time parked on a sleep, a pool or an upstream
         * costs no CPU and says nothing about this worker's load */
        tern__sched_account_start();
    }
    x->coro->label = e->label; /* names the route if the handler overflows its stack */
    e->handler(ctx);
    x->coro->label = NULL;
    if (e->adaptive) {
        uint64_t run_ns, active_ns = tern__sched_account_stop(&run_ns);
        tern__admission_done(&w->admission, active_ns, run_ns);
    }
    tern__wheel_cancel(&w->sched.wheel, &hd.timer);
    x->in_handler = 0;
    /* a cancellation (client gone, deadline) was aimed at the handler: the
     * connection's own waits (writing the answer) are not cancelled */
    tern__sched_clear_cancel(x->coro);
    if (hd.fired && ctx->stream_state == TERN__STREAM_NONE) {
        tern__ctx_error(ctx, 503, "handler deadline exceeded");
        tern_resp_set_header(ctx, "Retry-After", "1");
        ctx->fail_status = 503;
        ctx->fail_detail = "handler deadline exceeded";
    }
    if (ctx->fail_status) tern__mw_failed(srv, ctx); /* the error hook */
    __atomic_store_n(&w->in_flight, w->in_flight - 1, __ATOMIC_RELAXED);
    if (srv->cfg.max_in_flight) atomic_fetch_sub_explicit(&srv->in_flight, 1, memory_order_relaxed);
    if (e->max_in_flight) route_slot_release(e);
}

void tern__dispatch_route(tern__worker *w, tern__h1 *x, tern_ctx *ctx) {
    tern_server *srv = w->server;
    tern__route_match m;
    switch (tern__router_match(srv->router, ctx->method, ctx->path, ctx->path_len, &m)) {
    case TERN__ROUTE_FOUND: {
        tern__route_entry *e = m.handler;
        for (uint32_t i = 0; i < m.num_params; i++) {
            char *v = tern_alloc(ctx, m.params[i].value_len + 1);
            if (!v) break; /* ctx->oom: the answer becomes a 503 */
            memcpy(v, m.params[i].value, m.params[i].value_len);
            v[m.params[i].value_len] = 0;
            ctx->param_names[i] = m.params[i].name;
            ctx->param_values[i] = v;
            ctx->num_params = i + 1;
        }
        if (ctx->oom) return;
        ctx->route_data = e->data;
        run_handler(w, x, ctx, e);
        return;
    }
    case TERN__ROUTE_METHOD_NOT_ALLOWED:
        if (ctx->method == TERN_OPTIONS) {
            tern_resp_set_status(ctx, 204);
        } else {
            tern__ctx_error(ctx, 405, NULL);
        }
        tern__ctx_set_allow(ctx, m.allowed);
        return;
    case TERN__ROUTE_NOT_FOUND: tern__ctx_error(ctx, 404, NULL); return;
    }
}

static void dispatch(void *drv, tern__h1 *x, tern_ctx *ctx) {
    tern__worker *w = drv;
    ctx->server = w->server;
    if (w->server->mw)
        tern__mw_run(w, x, ctx);
    else
        tern__dispatch_route(w, x, ctx);
}

static void responded(void *drv, int status, uint64_t duration_ns) {
    tern__worker *w = drv;
    tern__metrics_response(w->metrics, status, duration_ns);
}

static void rejected(void *drv, int status) {
    tern__worker *w = drv;
    tern__metrics_rejected(w->metrics, status);
}

static void abandoned(void *drv, uint64_t duration_ns) {
    tern__worker *w = drv;
    tern__metrics_client_gone(w->metrics, duration_ns);
}

/* Asked before the body is read: does the route stream it itself? */
static int streams_body(void *drv, tern_ctx *ctx) {
    tern__worker *w = drv;
    if (!w->server->any_stream_body) return 0;
    tern__route_match m;
    if (tern__router_match(w->server->router, ctx->method, ctx->path, ctx->path_len, &m) != TERN__ROUTE_FOUND)
        return 0;
    return ((tern__route_entry *)m.handler)->stream_body;
}

const tern__h1_hooks tern__dispatch_hooks = {
    .dispatch = dispatch,
    .streams_body = streams_body,
    .responded = responded,
    .rejected = rejected,
    .abandoned = abandoned,
    .peer = tern__proxy_peer,
};

