/* Worker thread: the loop that ties listener, connections, timers and
 * coroutines together, plus accept with its pauses (EMFILE, limits). */
#include "server/worker.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "http/ws.h"
#include "rt/overflow.h"
#include "server/access_log.h"
#include "server/health.h"
#include "server/listen.h"
#include "server/proxy.h"
#include "server/metrics.h"
#include "server/server.h"
#include "server/tls_config.h"

__thread tern__worker *tern__worker_self;

int tern_worker_id(void) { return tern__worker_self ? tern__worker_self->id : -1; }

void *tern_worker_local(void) { return tern__worker_self ? tern__worker_self->local : NULL; }

/* After EMFILE/ENFILE the backlog waits this long before accept is tried
 * again: no spinning on a listener we cannot serve. */
#define ACCEPT_RETRY_NS (100ull * 1000000ull)

static void accept_retry_fire(tern__timer *t);

/* The loop's lag is how late this 10 ms tick fires: a handler that hogs the
 * CPU without yielding shows up here (and in tern_load_get / metrics). */
#define TICK_NS (10ull * 1000000ull)

static void tick_fire(tern__timer *t) {
    tern__worker *w = tern__worker_self;
    uint64_t now = w->sched.now_ns;
    uint64_t lag = now > t->deadline_ns ? now - t->deadline_ns : 0;
    tern__metrics_loop_lag(w->metrics, lag);
    tern__admission_lag(&w->admission, lag, now);
    tern__health_tick(w, now);
    tern__wheel_add(&w->sched.wheel, t, now + TICK_NS);
}

int tern_load_get(tern_load *out) {
    tern__worker *w = tern__worker_self;
    if (!w) return -EPERM;
    tern__admission *a = &w->admission;
    tern__admission_tick(a, tern_clock_ns());
    unsigned in_flight = atomic_load_explicit(&w->server->in_flight, memory_order_relaxed);
    unsigned max = w->server->cfg.max_in_flight;
    if (!max) in_flight = w->in_flight; /* counted per worker only without a global limit */
    out->level = tern__admission_level(a, in_flight, max);
    out->shedding = a->overloaded || a->last_sheds > 0 || a->sheds_interval > 0;
    out->mode = out->shedding ? "shedding" : out->level >= 50 ? "elevated" : "normal";
    out->concurrency_limit = a->limit;
    out->running = a->running;
    out->queue_delay_us = a->last_min_delay_ns / 1000;
    out->loop_lag_us = a->last_max_lag_ns / 1000;
    out->in_flight = in_flight;
    out->max_in_flight = max;
    out->shed_total = a->shed_total;
    return 0;
}

int tern__worker_init(tern__worker *w, tern_server *s, int id) {
    memset(w, 0, sizeof *w);
    w->server = s;
    w->id = id;
    w->listen_fd = -1;
    w->notify_fd = -1;
    w->idle_head = w->idle_tail = -1;
    int r = tern__sched_init(&w->sched, id, s->cfg.stack_size);
    if (r < 0) return r;
    w->sched.user = w;
    w->epoch_ns = w->sched.now_ns;
    w->accept_retry.fn = accept_retry_fire;
    w->tick.fn = tick_fire;
    tern__admission_init(&w->admission, (uint64_t)s->cfg.adaptive_target_us * 1000ull,
                        (uint64_t)s->cfg.adaptive_interval_ms * 1000000ull, w->sched.now_ns);

    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    size_t slots = rl.rlim_cur == RLIM_INFINITY ? (1u << 20) : (size_t)rl.rlim_cur;
    if (slots > (1u << 22)) slots = 1u << 22;
    /* one slot per possible fd, committed only where connections live */
    w->conns = mmap(NULL, slots * sizeof(tern__conn), PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (w->conns == MAP_FAILED) {
        w->conns = NULL;
        return -ENOMEM;
    }
    w->conn_slots = slots;
    if (tern__server_tls(s)) {
        w->tls = mmap(NULL, slots * sizeof(void *), PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (w->tls == MAP_FAILED) {
            w->tls = NULL;
            return -ENOMEM;
        }
    }
    if (s->alog) {
        w->peers = mmap(NULL, slots * sizeof(tern__peer_text), PROT_READ | PROT_WRITE,
                        MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (w->peers == MAP_FAILED) {
            w->peers = NULL;
            return -ENOMEM;
        }
    }
    if (s->proxy_protocol) {
        w->client = mmap(NULL, slots * sizeof *w->client, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (w->client == MAP_FAILED) {
            w->client = NULL;
            return -ENOMEM;
        }
    }
    if (tern__h1_scratch_init(&w->scratch, s->cfg.max_headers) < 0) return -ENOMEM;
    __atomic_store_n(&w->metrics, tern__metrics_new(), __ATOMIC_RELEASE); /* /stats reads it from other workers */
    w->notify_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (!w->metrics || w->notify_fd < 0) return -ENOMEM;
    return 0;
}

void tern__worker_destroy(tern__worker *w) {
    if (w->conns) {
        for (size_t fd = 0; fd < w->conn_slots; fd++) {
            if (!(w->conns[fd].flags & TERN__CONN_OPEN)) continue;
            if (w->tls && w->tls[fd]) tern__tls_close(w->tls[fd]);
            if (w->upgraded && w->upgraded[fd]) tern__ws_detached_close(w->upgraded[fd]);
            close((int)fd);
        }
        munmap(w->conns, w->conn_slots * sizeof(tern__conn));
    }
    if (w->tls) munmap(w->tls, w->conn_slots * sizeof(void *));
    if (w->peers) munmap(w->peers, w->conn_slots * sizeof(tern__peer_text));
    w->peers = NULL;
    if (w->upgraded) munmap(w->upgraded, w->conn_slots * sizeof(void *));
    w->upgraded = NULL;
    if (w->client) munmap(w->client, w->conn_slots * sizeof *w->client);
    w->client = NULL;
    w->tls = NULL;
    w->conns = NULL;
    tern__h1_scratch_destroy(&w->scratch);
    tern__metrics_free(w->metrics);
    if (w->notify_fd >= 0) close(w->notify_fd);
    if (w->listen_fd >= 0) close(w->listen_fd);
    tern__sched_destroy(&w->sched);
}

void tern__worker_notify(tern__worker *w) {
    uint64_t one = 1;
    ssize_t r = write(w->notify_fd, &one, sizeof one);
    (void)r;
}

static void pause_accept(tern__worker *w) {
    if (w->listen_paused) return;
    w->listen_paused = 1;
    tern__wheel_add(&w->sched.wheel, &w->accept_retry, w->sched.now_ns + ACCEPT_RETRY_NS);
}

enum tern__accept_outcome {
    TERN__ACCEPT_EMPTY, /* the listener's queue is empty: try the next */
    TERN__ACCEPT_STOP,  /* paused or held: accept nothing more now */
};

static enum tern__accept_outcome accept_from(tern__worker *w, int lfd) {
    tern_server *s = w->server;
    unsigned limit = s->cfg.max_connections;
    for (;;) {
        if (w->tls && w->tls_handshakes >= s->cfg.max_handshakes && s->cfg.max_handshakes) {
            /* a handshake flood waits in the kernel's backlog instead of
             * taking this worker's CPU from established connections; the
             * loop accepts again when handshakes finish */
            w->accept_held = 1;
            return TERN__ACCEPT_STOP;
        }
        /* reserve the slot first: two workers checking a shared count and
         * then accepting could both take the last one */
        unsigned n = atomic_fetch_add_explicit(&s->open_conns, 1, memory_order_relaxed);
        if (limit && n >= limit) {
            atomic_fetch_sub_explicit(&s->open_conns, 1, memory_order_relaxed);
            /* at the limit: leave connections in the kernel's backlog (the
             * client waits) rather than accept and drop them */
            pause_accept(w);
            return TERN__ACCEPT_STOP;
        }
        struct sockaddr_storage peer;
        socklen_t peer_len = sizeof peer;
        int fd = accept4(lfd, w->peers ? (struct sockaddr *)&peer : NULL, w->peers ? &peer_len : NULL,
                         SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            int e = errno;
            atomic_fetch_sub_explicit(&s->open_conns, 1, memory_order_relaxed);
            if (e == EINTR || e == ECONNABORTED || e == EPROTO) continue;
            if (e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM) {
                pause_accept(w);
                return TERN__ACCEPT_STOP;
            }
            return TERN__ACCEPT_EMPTY; /* EAGAIN, or an error of this listener */
        }
        if (w->peers && (size_t)fd < w->conn_slots) tern__peer_text_set(&w->peers[fd], &peer);
        tern__conn_accepted(w, fd);
    }
}

/* The worker's own listener, then the shared ones (listen.c). */
static void accept_all(tern__worker *w) {
    if (w->draining) return;
    if (w->listen_fd >= 0 && accept_from(w, w->listen_fd) == TERN__ACCEPT_STOP) return;
    tern_server *s = w->server;
    for (int i = 0; i < s->nshared; i++)
        if (accept_from(w, s->shared[i].fd) == TERN__ACCEPT_STOP) return;
}

static void accept_retry_fire(tern__timer *t) {
    tern__worker *w = tern__worker_self;
    w->listen_paused = 0;
    accept_all(w);
}

void tern__worker_resume_accept(tern__worker *w) {
    if (!w->listen_paused) return;
    tern__wheel_cancel(&w->sched.wheel, &w->accept_retry);
    w->listen_paused = 0;
    accept_all(w);
}

static void on_event(tern__sched *s, uint64_t data, uint32_t events) {
    tern__worker *w = s->user;
    switch (data & TERN__EV_TAG_MASK) {
    case TERN_EV_CONN:
        tern__conn_event(w, (tern__conn *)(uintptr_t)data, events);
        break;
    case TERN_EV_LISTENER:
    case TERN_EV_SHARED_LISTENER:
        if (!w->listen_paused) accept_all(w);
        break;
    case TERN_EV_NOTIFY: {
        uint64_t v;
        ssize_t r = read(w->notify_fd, &v, sizeof v);
        (void)r;
        break;
    }
    }
}

static void start_drain(tern__worker *w) {
    /* connections already in the kernel's accept queue would be reset when
     * the listener closes: take them first, they get Connection: close */
    if (!w->listen_paused) accept_all(w);
    w->draining = 1;
    tern__listen_watch(w, 0); /* the server closes them once every worker is done */
    if (w->listen_fd >= 0) {
        close(w->listen_fd);
        w->listen_fd = -1;
    }
    tern__wheel_cancel(&w->sched.wheel, &w->accept_retry);
    tern__conn_drain(w);
}

static void *worker_main(void *arg) {
    tern__worker *w = arg;
    tern__sched_self = &w->sched;
    tern__worker_self = w;
    tern__admission_use_thread_cpu(&w->admission);
    /* a handler that overflows its stack is reported by route, not a silent
     * SIGSEGV; needs this thread's alternate signal stack */
    (void)tern__overflow_thread_start();
    struct epoll_event ev = {.events = EPOLLIN | EPOLLET,
                             .data.u64 = (uint64_t)(uintptr_t)w | TERN_EV_LISTENER};
    if (w->listen_fd >= 0) epoll_ctl(w->sched.epfd, EPOLL_CTL_ADD, w->listen_fd, &ev);
    tern__listen_watch(w, 1);
    ev = (struct epoll_event){.events = EPOLLIN, .data.u64 = (uint64_t)(uintptr_t)w | TERN_EV_NOTIFY};
    epoll_ctl(w->sched.epfd, EPOLL_CTL_ADD, w->notify_fd, &ev);
    tern__wheel_add(&w->sched.wheel, &w->tick, tern_clock_ns() + TICK_NS);
    if (w->server->alog) (void)tern__access_log_worker_start(w); /* no buffer: no lines */
    tern__health_tick(w, tern_clock_ns());
    if (w->server->worker_start) w->local = w->server->worker_start(w->server, w->id);
    accept_all(w); /* connections that queued before the loop started */

    uint64_t drain_deadline = 0, hard_deadline = 0;
    for (;;) {
        int64_t sweep_ns = tern__conn_sweep(w);
        /* wake at least once a second: idle expiry and drain checks */
        int64_t cap = 1000000000;
        if (sweep_ns >= 0 && sweep_ns < cap) cap = sweep_ns;
        tern__sched_poll(&w->sched, on_event, cap);
        unsigned limit = w->server->cfg.max_connections;
        if (w->listen_paused && limit &&
            atomic_load_explicit(&w->server->open_conns, memory_order_relaxed) < limit)
            tern__worker_resume_accept(w); /* back under the connection limit */
        if (w->accept_held && w->tls_handshakes < w->server->cfg.max_handshakes && !w->listen_paused) {
            w->accept_held = 0;
            accept_all(w);
        }
        if (atomic_load_explicit(&w->stopping, memory_order_acquire) && !w->draining) {
            start_drain(w);
            unsigned ms = w->server->cfg.drain_timeout_ms;
            drain_deadline = w->sched.now_ns + (uint64_t)ms * 1000000ull;
            hard_deadline = drain_deadline + 2000000000ull;
        }
        if (w->draining) {
            tern__wheel_cancel(&w->sched.wheel, &w->tick);
            if (w->open_conns == 0 && w->sched.coros_live == 0) break;
            if (drain_deadline && w->sched.now_ns >= drain_deadline) {
                /* past the deadline: cancel what still runs; parks now
                 * return -ECANCELED and connections close */
                tern__conn_cancel_all(w);
                drain_deadline = 0;
            }
            if (w->sched.now_ns >= hard_deadline) break;
        }
    }
    if (w->server->worker_stop) w->server->worker_stop(w->server, w->id, w->local);
    w->local = NULL;
    tern__access_log_worker_stop(w);
    tern__overflow_thread_stop();
    return NULL;
}

int tern__worker_start(tern__worker *w) {
    int r = pthread_create(&w->thread, NULL, worker_main, w);
    if (r) return -r;
    w->started = 1;
    return 0;
}
