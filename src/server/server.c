/* Server lifecycle: configuration, routes, listeners (one SO_REUSEPORT
 * socket per worker, so the kernel spreads connections without a shared
 * accept lock), worker threads, and the wait for SIGINT/SIGTERM. */
#include "server/server.h"

#include <errno.h>
#include <stddef.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "rt/offload.h"
#include "http/ctx.h"
#include "server/access_log.h"
#include "server/health.h"
#include "server/listen.h"
#include "server/tls_config.h"
#include "server/worker.h"

void tern_config_init(tern_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->host = "0.0.0.0";
    cfg->port = 8080;
    cfg->workers = 0;
    cfg->backlog = 4096;
    cfg->max_request_head = 16384;
    cfg->max_target = 8192;
    cfg->max_headers = 100;
    cfg->max_body = 16u << 20;
    cfg->stack_size = 256u << 10;
    cfg->keepalive_timeout_ms = 60000;
    cfg->header_timeout_ms = 10000;
    cfg->body_timeout_ms = 10000;
    cfg->min_body_rate = 1024;
    cfg->write_timeout_ms = 30000;
    cfg->drain_timeout_ms = 10000;
    cfg->adaptive_target_us = 5000;
    cfg->adaptive_interval_ms = 100;
    cfg->server_name = "tern";
    cfg->handshake_timeout_ms = 10000;
    cfg->max_handshakes = 64;
}

tern_server *tern_server_new_config(const tern_config *cfg) {
    tern_server *s = calloc(1, sizeof *s);
    if (!s) return NULL;
    if (cfg)
        s->cfg = *cfg;
    else
        tern_config_init(&s->cfg);
    s->host = strdup(s->cfg.host ? s->cfg.host : "0.0.0.0");
    s->router = tern__router_new();
    s->stop_pipe[0] = s->stop_pipe[1] = -1;
    if (!s->host || !s->router || pipe2(s->stop_pipe, O_CLOEXEC | O_NONBLOCK) < 0) {
        tern_server_free(s);
        return NULL;
    }
    if (!s->cfg.server_name) s->cfg.server_name = "tern";
    if (!s->cfg.max_headers) s->cfg.max_headers = 100;
    if (!s->cfg.stack_size) s->cfg.stack_size = 256u << 10;
    if (!s->cfg.backlog) s->cfg.backlog = 4096;
    if (!s->cfg.adaptive_target_us) s->cfg.adaptive_target_us = 5000;
    if (!s->cfg.adaptive_interval_ms) s->cfg.adaptive_interval_ms = 100;
    return s;
}

tern_server *tern_server_new(void) { return tern_server_new_config(NULL); }

int tern__server_tls(const tern_server *s) { return s->tls && s->tls->ctx; }

static void close_listeners(tern_server *s) {
    if (!s->listen_fds) return;
    for (int i = 0; i < s->nworkers; i++)
        if (s->listen_fds[i] >= 0) close(s->listen_fds[i]);
    free(s->listen_fds);
    s->listen_fds = NULL;
    s->bound = 0;
}

static void restore_signals(tern_server *s);

void tern_server_free(tern_server *s) {
    if (!s) return;
    tern_test_stop(s); /* workers the test client started (testing.c), if any */
    restore_signals(s);
    close_listeners(s);
    tern__router_free(s->router);
    while (s->routes) {
        tern__route_entry *next = s->routes->next;
        free(s->routes->label);
        free(s->routes);
        s->routes = next;
    }
    free(s->host);
    tern__tls_config_free(s);
    tern__mw_free(s);
    tern__access_log_free(s->alog);
    tern__static_free_all(s);
    tern__health_free(s);
    tern__listen_close_shared(s);
    if (s->stop_pipe[0] >= 0) close(s->stop_pipe[0]);
    if (s->stop_pipe[1] >= 0) close(s->stop_pipe[1]);
    free(s);
}

int tern_server_set_address(tern_server *s, const char *host, uint16_t port) {
    if (s->bound) return -EBUSY;
    char *h = strdup(host ? host : "0.0.0.0");
    if (!h) return -ENOMEM;
    free(s->host);
    s->host = h;
    s->cfg.port = port;
    return 0;
}

int tern_server_set_workers(tern_server *s, int workers) {
    if (workers < 0 || workers > 1024 || s->bound) return -EINVAL;
    s->cfg.workers = workers;
    return 0;
}

int tern_server_set_shared_port(tern_server *s, int shared) {
    if (s->bound) return -EBUSY;
    s->cfg.shared_port = shared ? 1 : 0;
    return 0;
}

/* "the handler of GET|HEAD /users/:id": what a stack overflow report names
 * (rt/overflow.h). Built once per route, so a report allocates nothing. */
static char *route_label(unsigned methods, const char *pattern) {
    static const char *const names[] = {"GET",   "HEAD",    "POST",    "PUT",  "DELETE",
                                        "PATCH", "OPTIONS", "CONNECT", "TRACE"};
    char methods_text[64] = "";
    if ((methods & TERN_ANY) == TERN_ANY) {
        strcpy(methods_text, "ANY");
    } else {
        for (unsigned i = 0; i < sizeof names / sizeof names[0]; i++) {
            if (!(methods & (1u << i))) continue;
            if (methods_text[0]) strcat(methods_text, "|");
            strcat(methods_text, names[i]);
        }
    }
    static const char prefix[] = "the handler of ";
    size_t n = sizeof prefix - 1 + strlen(methods_text) + 1 + strlen(pattern) + 1;
    char *label = malloc(n);
    if (label) snprintf(label, n, "%s%s %s", prefix, methods_text, pattern);
    return label;
}

int tern_route_with(tern_server *s, unsigned methods, const char *pattern, tern_handler h,
                    const tern_route_opts *opts) {
    if (!s || !pattern || !h || !(methods & TERN_ANY)) return -EINVAL;
    if (s->bound && s->workers) return -EBUSY; /* the table is read without locks once running */
    tern__route_entry *e = calloc(1, sizeof *e);
    if (!e) return -ENOMEM;
    e->handler = h;
    e->label = route_label(methods, pattern);
    if (!e->label) {
        free(e);
        return -ENOMEM;
    }
    if (opts) {
        e->max_in_flight = opts->max_in_flight;
        e->adaptive = opts->adaptive;
        e->timeout_ms = opts->timeout_ms;
        e->data = opts->data;
        e->queue_max = opts->queue_max;
        e->queue_timeout_ms = opts->queue_timeout_ms;
        if (e->queue_max && !e->max_in_flight) {
            free(e->label);
            free(e);
            return -EINVAL; /* a queue for a slot needs slots */
        }
        tern_sem_init(&e->slots, e->max_in_flight);
        e->stream_body = opts->stream_body;
        if (opts->stream_body) s->any_stream_body = 1;
    }
    int r = tern__router_add(s->router, methods, pattern, e);
    if (r < 0) {
        free(e->label);
        free(e);
        return r;
    }
    e->next = s->routes;
    s->routes = e;
    return 0;
}

int tern_route(tern_server *s, unsigned methods, const char *pattern, tern_handler h) {
    return tern_route_with(s, methods, pattern, h, NULL);
}

void tern_server_set_data(tern_server *s, void *data) { s->data = data; }

void *tern_server_data(const tern_server *s) { return s ? s->data : NULL; }

int tern_server_on_worker(tern_server *s, tern_worker_start_fn start, tern_worker_stop_fn stop) {
    if (s->workers) return -EBUSY;
    s->worker_start = start;
    s->worker_stop = stop;
    return 0;
}

tern_server *tern_ctx_server(const tern_ctx *ctx) { return ctx ? ctx->server : NULL; }

uint16_t tern_server_port(const tern_server *s) { return s->bound ? s->port : 0; }

static int resolve_workers(const tern_server *s);
static int bind_listeners(tern_server *s);
int tern_server_workers(const tern_server *s) { return s->bound ? s->nworkers : resolve_workers(s); }

/* "::" means IPv6 and IPv4 whatever net.ipv6.bindv6only says (IPv4
 * clients appear as ::ffff:a.b.c.d); a specific address is that one only. */
static void set_dual_stack(int fd, const struct addrinfo *ai) {
    if (ai->ai_family != AF_INET6) return;
    const struct sockaddr_in6 *sa = (const struct sockaddr_in6 *)(const void *)ai->ai_addr;
    int v6only = memcmp(&sa->sin6_addr, &in6addr_any, sizeof in6addr_any) != 0;
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &v6only, sizeof v6only);
}

static int open_listener(const struct addrinfo *ai, int backlog) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    /* one listener per worker: the kernel balances connections across them,
     * and a new process can bind the same port for a zero-downtime restart */
    if (setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    /* wake us only when the request has arrived: a connection that sends
     * nothing costs the server nothing (seconds before the kernel gives up) */
    int defer = 10;
    setsockopt(fd, IPPROTO_TCP, TCP_DEFER_ACCEPT, &defer, sizeof defer);
    set_dual_stack(fd, ai);
    if (bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

static int resolve_workers(const tern_server *s) {
    if (s->cfg.workers > 0) return s->cfg.workers;
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

/* SIGINT/SIGTERM are blocked from bind on, so a signal that arrives between
 * bind and run (say, right after the program announced its port) is
 * delivered to run's signalfd instead of killing the process. Workers
 * inherit the mask, so the signals never land on them. SIGPIPE is blocked
 * too: every socket write uses MSG_NOSIGNAL, and a handler's own write to a
 * closed pipe gets EPIPE instead of killing the process. */
static void block_signals(tern_server *s) {
    if (s->signals_blocked) return;
    sigset_t mask;
    sigemptyset(&mask);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGPIPE);
    /* a SIGHUP right after the program announced itself must not kill it */
    if (s->reload_fn || tern__server_tls(s)) sigaddset(&mask, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &mask, &s->old_sigmask);
    s->signals_blocked = 1;
}

static void restore_signals(tern_server *s) {
    if (!s->signals_blocked) return;
    pthread_sigmask(SIG_SETMASK, &s->old_sigmask, NULL);
    s->signals_blocked = 0;
}

/* Without shared_port, refuse a port another socket listens on even if it
 * set SO_REUSEPORT too (another instance of this program): a probe bound
 * without SO_REUSEPORT fails with EADDRINUSE then. */
static int probe_port_free(const struct addrinfo *ai) {
    int fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
    if (fd < 0) return -errno;
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    int r = bind(fd, ai->ai_addr, ai->ai_addrlen) < 0 ? -errno : 0;
    close(fd);
    return r;
}

/* Configurations tern would accept but could not serve are refused before
 * anything is bound, with the field named on stderr: every configuration
 * that starts survives every request it accepts. */
static int config_refuse(const char *field, const char *why) {
    fprintf(stderr, "tern: invalid configuration: %s %s\n", field, why);
    return -EINVAL;
}

static int validate_config(const tern_config *c) {
    if (c->stack_size < (16u << 10) || c->stack_size > (1u << 30))
        return config_refuse("stack_size", "must be 16 KiB .. 1 GiB");
    if (c->max_request_head < 256 || c->max_request_head > (64u << 20))
        return config_refuse("max_request_head", "must be 256 B .. 64 MiB");
    if (c->max_target < 16 || c->max_target > c->max_request_head)
        return config_refuse("max_target", "must be 16 B .. max_request_head");
    if (c->max_headers < 1 || c->max_headers > 65535)
        return config_refuse("max_headers", "must be 1 .. 65535");
    if (c->max_body > ((uint64_t)1 << 40)) return config_refuse("max_body", "must be at most 1 TiB");
    if (c->workers < 0 || c->workers > 1024) return config_refuse("workers", "must be 0 (CPUs) .. 1024");
    if (c->backlog < 1) return config_refuse("backlog", "must be at least 1");
    if (c->adaptive_interval_ms > 60000) return config_refuse("adaptive_interval_ms", "must be at most 60 s");
    return 0;
}

int tern_server_bind(tern_server *s) {
    if (s->bound) return 0;
    int vr = validate_config(&s->cfg);
    if (vr < 0) return vr;
    if (!s->cfg.shared_port && s->cfg.port != 0 && !s->no_tcp) {
        struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                                 .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
        struct addrinfo *res = NULL;
        char port[8];
        snprintf(port, sizeof port, "%u", s->cfg.port);
        if (getaddrinfo(s->host, port, &hints, &res) == 0) {
            int r = probe_port_free(res);
            freeaddrinfo(res);
            if (r < 0) return r;
        }
    }
    int br = bind_listeners(s);
    if (br == 0) block_signals(s);
    return br;
}

/* Only Unix and adopted sockets: the workers share those (listen.c). */
static int bind_shared_only(tern_server *s, int n) {
    if (!s->nshared) return -EDESTADDRREQ;
    s->listen_fds = malloc((size_t)n * sizeof(int));
    if (!s->listen_fds) return -ENOMEM;
    for (int i = 0; i < n; i++) s->listen_fds[i] = -1;
    s->nworkers = n;
    s->port = tern__listen_shared_port(s);
    s->bound = 1;
    return 0;
}

static int bind_listeners(tern_server *s) {
    int n = resolve_workers(s);
    if (s->no_tcp) return bind_shared_only(s, n);
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    char port[8];
    snprintf(port, sizeof port, "%u", s->cfg.port);
    int g = getaddrinfo(s->host, port, &hints, &res);
    if (g != 0) return g == EAI_SYSTEM ? -errno : -EADDRNOTAVAIL;
    s->listen_fds = malloc((size_t)n * sizeof(int));
    if (!s->listen_fds) {
        freeaddrinfo(res);
        return -ENOMEM;
    }
    for (int i = 0; i < n; i++) s->listen_fds[i] = -1;
    s->nworkers = n;
    int err = 0;
    for (int i = 0; i < n && !err; i++) {
        int fd = open_listener(res, s->cfg.backlog);
        if (fd < 0) {
            err = fd;
            break;
        }
        s->listen_fds[i] = fd;
        if (i == 0) {
            /* port 0: every other worker binds the port the first one got */
            struct sockaddr_storage ss;
            socklen_t len = sizeof ss;
            getsockname(fd, (struct sockaddr *)&ss, &len);
            uint16_t p = ss.ss_family == AF_INET6 ? ntohs(((struct sockaddr_in6 *)&ss)->sin6_port)
                                                  : ntohs(((struct sockaddr_in *)&ss)->sin_port);
            s->port = p;
            /* sin_port and sin6_port sit at the same offset */
            uint16_t np = htons(p);
            memcpy((char *)res->ai_addr + offsetof(struct sockaddr_in, sin_port), &np, sizeof np);
        }
    }
    freeaddrinfo(res);
    if (err) {
        s->bound = 1;
        close_listeners(s);
        return err;
    }
    s->bound = 1;
    return 0;
}

/* The systemd watchdog hears from us only while every worker's loop turns
 * (what /healthz checks): a stuck worker gets the service restarted. */
static void watchdog_ping(tern_server *s) {
    uint64_t now = tern_clock_ns(), stall = (uint64_t)TERN_HEALTH_STALL_MS * 1000000ull;
    for (int i = 0; i < s->nworkers; i++) {
        uint64_t t = atomic_load_explicit(&s->workers[i].last_tick_ns, memory_order_relaxed);
        if (t && now > t && now - t > stall) return;
    }
    (void)tern_sd_notify("WATCHDOG=1");
}

/* SIGHUP: the program's hook first (configuration, log file: it may call
 * tern_server_reconfigure), then the certificates; each step logged. */
static void reload(tern_server *s) {
    fprintf(stderr, "tern: SIGHUP: reloading\n");
    tern__sd_notify_reloading();
    if (s->reload_fn) s->reload_fn(s, s->reload_arg);
    if (tern__server_tls(s)) {
        int rr = tern_server_reload_certs(s);
        fprintf(stderr, "tern: SIGHUP: certificates %s\n", rr == 0 ? "reloaded" : "kept (reload failed)");
    }
    if (s->alog && tern_server_reopen_access_log(s) < 0)
        fprintf(stderr, "tern: SIGHUP: cannot reopen the access log; writing to the old file\n");
    (void)tern_sd_notify("READY=1");
}

/* A stop was asked for: /readyz turns 503 now, and the listeners stay open
 * for drain_delay_ms so a load balancer polling /readyz stops sending before
 * they close. Another stop signal (or tern_server_stop) cuts the delay. */
static void begin_drain(tern_server *s, int sfd) {
    atomic_store_explicit(&s->draining, 1, memory_order_release);
    (void)tern_sd_notify("STOPPING=1");
    char buf[16];
    while (read(s->stop_pipe[0], buf, sizeof buf) > 0) {
    }
    if (!s->drain_delay_ms) return;
    fprintf(stderr, "tern: draining: not ready; accepting for %u ms more\n", s->drain_delay_ms);
    uint64_t end = tern_clock_ns() + (uint64_t)s->drain_delay_ms * 1000000ull;
    for (uint64_t now; (now = tern_clock_ns()) < end;) {
        struct pollfd pfd[2] = {{.fd = s->stop_pipe[0], .events = POLLIN}, {.fd = sfd, .events = POLLIN}};
        int n = poll(pfd, sfd >= 0 ? 2 : 1, (int)((end - now + 999999) / 1000000));
        if (n < 0 && errno != EINTR) return;
        if (pfd[0].revents & POLLIN) return;
        struct signalfd_siginfo si;
        if ((pfd[1].revents & POLLIN) && read(sfd, &si, sizeof si) == sizeof si && si.ssi_signo != SIGHUP)
            return;
    }
}

/* The main thread while the workers serve: signals (stop, SIGHUP), the
 * stop pipe and the systemd watchdog. Returns when a stop was asked for. */
static void wait_for_stop(tern_server *s, int sfd) {
    (void)tern_sd_notify("READY=1");
    uint64_t watchdog_ns = tern__sd_watchdog_ns();
    while (!atomic_load(&s->stop)) {
        struct pollfd pfd[2] = {{.fd = sfd, .events = POLLIN}, {.fd = s->stop_pipe[0], .events = POLLIN}};
        if (watchdog_ns) watchdog_ping(s);
        int n = poll(pfd, sfd >= 0 ? 2 : 1, watchdog_ns ? (int)(watchdog_ns / 1000000ull) + 1 : -1);
        if (n < 0 && errno != EINTR) return;
        if (sfd >= 0 && (pfd[0].revents & POLLIN)) {
            struct signalfd_siginfo si;
            if (read(sfd, &si, sizeof si) == sizeof si) {
                if (si.ssi_signo != SIGHUP) return;
                reload(s);
            }
        }
        if (pfd[1].revents & POLLIN) return;
    }
}

void tern_server_stop(tern_server *s) {
    atomic_store(&s->stop, 1);
    char c = 1;
    ssize_t r = write(s->stop_pipe[1], &c, 1);
    (void)r;
}

int tern_server_run(tern_server *s) {
    int r = tern_server_bind(s);
    if (r < 0) return r;
    s->hooks = tern__dispatch_hooks;
    if (s->alog) s->hooks.completed = tern__access_log_completed;
    s->h1 = (tern__h1_config){
        .limits = {.max_head = s->cfg.max_request_head, .max_target = s->cfg.max_target,
                   .max_headers = s->cfg.max_headers},
        .max_body = s->cfg.max_body,
        .header_timeout_ms = s->cfg.header_timeout_ms,
        .body_timeout_ms = s->cfg.body_timeout_ms,
        .min_body_rate = s->cfg.min_body_rate,
        .write_timeout_ms = s->cfg.write_timeout_ms,
        .server_name = s->cfg.server_name,
        .server_name_len = strlen(s->cfg.server_name),
        /* at most 1/16 and 1/32 of the stack: a 16 KiB stack keeps 1 KiB
         * and 512 B, the default 256 KiB the full 8 KiB and 4 KiB */
        .head_on_stack_max = s->cfg.stack_size / 16 < 8192 ? s->cfg.stack_size / 16 : 8192,
        .body_on_stack_max = s->cfg.stack_size / 32 < 4096 ? s->cfg.stack_size / 32 : 4096,
        .compress = s->compress,
        .stream_bodies = s->any_stream_body,
    };

    /* serve as many connections as the hard limit allows (nginx does the
     * same with worker_rlimit_nofile) */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }

    block_signals(s);
    sigset_t stopsigs;
    sigemptyset(&stopsigs);
    sigaddset(&stopsigs, SIGINT);
    sigaddset(&stopsigs, SIGTERM);
    if (tern__server_tls(s) || s->alog || s->reload_fn) {
        /* SIGHUP reloads (the program's hook, then the certificates of a
         * TLS server, then the access log reopened) and keeps its default
         * meaning, termination, for a server with none of them; blocked
         * before the workers start, so they
         * inherit the mask */
        sigset_t hup;
        sigemptyset(&hup);
        sigaddset(&hup, SIGHUP);
        pthread_sigmask(SIG_BLOCK, &hup, NULL);
        sigaddset(&stopsigs, SIGHUP);
    }
    int sfd = signalfd(-1, &stopsigs, SFD_CLOEXEC | SFD_NONBLOCK);

    s->workers = calloc((size_t)s->nworkers, sizeof(tern__worker));
    if (!s->workers) r = -ENOMEM;
    int started = 0;
    for (int i = 0; i < s->nworkers && r == 0; i++) {
        r = tern__worker_init(&s->workers[i], s, i);
        if (r < 0) break;
        s->workers[i].listen_fd = s->listen_fds[i];
        s->listen_fds[i] = -1; /* the worker owns it now */
        /* every scheduler in the runtime's group before any thread starts,
         * so tern_spawn_on(i) works from the first request; -EEXIST (a
         * second server in this process uses the ids) is harmless */
        (void)tern__sched_group_add(&s->workers[i].sched);
    }
    for (int i = 0; i < s->nworkers && r == 0; i++) {
        r = tern__worker_start(&s->workers[i]);
        if (r == 0) started++;
    }

    if (r == 0) wait_for_stop(s, sfd);
    if (r == 0) begin_drain(s, sfd);
    for (int i = 0; i < s->nworkers && s->workers; i++) {
        atomic_store_explicit(&s->workers[i].stopping, 1, memory_order_release);
        if (s->workers[i].notify_fd >= 0) tern__worker_notify(&s->workers[i]);
    }
    for (int i = 0; i < s->nworkers && s->workers; i++)
        if (s->workers[i].started) pthread_join(s->workers[i].thread, NULL);
    /* offload threads may still post results to a worker: stop them before
     * the schedulers go away */
    tern_offload_shutdown();
    for (int i = 0; i < s->nworkers && s->workers; i++) {
        tern__sched_group_remove(&s->workers[i].sched); /* only if registered */
        if (s->workers[i].server) tern__worker_destroy(&s->workers[i]);
    }
    (void)started;
    free(s->workers);
    s->workers = NULL;
    close_listeners(s);
    tern__listen_close_shared(s);
    if (sfd >= 0) {
        /* a second signal during the drain is already answered by this
         * drain: consume it so restoring the mask does not kill us */
        struct signalfd_siginfo si;
        while (read(sfd, &si, sizeof si) == sizeof si) {
        }
        /* (a SIGHUP that came meanwhile is consumed with them) */
        close(sfd);
    }
    restore_signals(s);
    return r;
}
