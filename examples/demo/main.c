/* tern-demo: every feature of tern behind one command (`make run`).
 * Endpoints are listed in README.md and by --help. */
#include <errno.h>
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tern.h>

#include "demo.h"
#include "options.h"
#include "service.h"

/* groups not built into this binary are skipped (weak references) */
#pragma weak demo_register_runtime
#pragma weak demo_register_metrics
#pragma weak demo_register_pool
#pragma weak demo_register_admission
#pragma weak demo_register_dashboard
#pragma weak demo_pool_worker_init
#pragma weak demo_pool_worker_fini
#pragma weak demo_pool_cleanup
#pragma weak demo_register_data
#pragma weak demo_register_pg
#pragma weak demo_pg_cleanup

static void plaintext(tern_ctx *ctx) {
    tern_resp_set_header(ctx, "Content-Type", "text/plain");
    tern_resp_set_body_static(ctx, "Hello, World!", 13);
}

static void json(tern_ctx *ctx) {
    tern_jw *w = tern_json_writer(ctx); /* sets Content-Type: application/json */
    if (!w) return;
    tern_jw_object_begin(w);
    tern_jw_key(w, "message");
    tern_jw_string(w, "Hello, World!");
    tern_jw_object_end(w);
}

/* A request that waits on three things in turn (a database query, an API
 * call, a file read), simulated by timer sleeps: the worker serves other
 * requests meanwhile. */
static void fmt_u64(char *out, uint64_t v) {
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (int i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    out[n] = 0;
}

static void concurrent(tern_ctx *ctx) {
    uint64_t t0 = tern_clock_ns();
    demo_worker *w = tern_worker_local();
    if (!w) {
        tern_resp_text(ctx, 503, "worker state unavailable\n");
        return;
    }
    /* unique across workers without a shared counter: worker w numbers
     * its requests w+1, w+1+N, w+1+2N... (N workers), so the IDs on one
     * connection (always one worker) increase */
    uint64_t n = w->concurrent_served++ * (uint64_t)demo_app_of(ctx)->workers + (uint64_t)w->id + 1;
    demo_grant g; /* this handler parks 18 ms on purpose */
    if (demo_budget_take(ctx, &g, DEMO_TASK_KIB, 0) < 0) return;
    int r = tern_sleep(10);
    if (r == 0) r = tern_sleep(5);
    if (r == 0) r = tern_sleep(3);
    demo_budget_give(&g);
    if (r < 0) {
        tern_resp_text(ctx, 503, "cancelled\n");
        return;
    }
    /* formatted by hand: at 60k requests/s, printf's machinery is a few
     * percent of the server's CPU */
    char id[24], took[24], body[160];
    fmt_u64(id, n);
    fmt_u64(took, (tern_clock_ns() - t0) / 1000);
    size_t len = 0;
    static const char *const parts[] = {"Request ", ": DB=db_data_", ", API=api_response_",
                                        ", File=file_content_"};
    size_t idlen = strlen(id);
    for (int i = 0; i < 4; i++) {
        size_t pl = strlen(parts[i]);
        memcpy(body + len, parts[i], pl);
        len += pl;
        memcpy(body + len, id, idlen);
        len += idlen;
    }
    tern_resp_set_header(ctx, "Content-Type", "text/plain");
    tern_resp_set_header(ctx, "X-Request-ID", id);
    tern_resp_set_header(ctx, "X-Process-Time", took);
    tern_resp_set_body(ctx, body, len);
}

static void echo(tern_ctx *ctx) {
    const char *type = tern_req_header(ctx, "Content-Type");
    tern_str body = tern_req_body(ctx);
    tern_resp_set_header(ctx, "Content-Type", type ? type : "application/octet-stream");
    /* the request body lives until the response is sent: no copy needed */
    tern_resp_set_body_static(ctx, body.ptr, body.len);
}

static void user(tern_ctx *ctx) {
    const char *id = tern_json_quote(ctx, tern_req_param(ctx, "id"));
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    tern_resp_printf(ctx, "{\"id\":%s}", id ? id : "null");
}

/* GET /stream?mb=N: N MiB (default 1, 0..1024) of a deterministic byte
 * pattern (byte i is i mod 251), produced 64 KiB at a time and streamed:
 * the server holds one chunk, never the whole body, however slowly the
 * client reads. */
static void stream(tern_ctx *ctx) {
    unsigned long mb;
    if (demo_query_uint(ctx, "mb", 1, 0, 1024, &mb) < 0) return;
    enum { CHUNK = 65536 };
    demo_grant g;
    if (demo_budget_take(ctx, &g, CHUNK / 1024, 0) < 0) return;
    unsigned char *buf = tern_alloc(ctx, CHUNK);
    if (!buf) {
        demo_budget_give(&g);
        return; /* the arena reports it: 503 */
    }
    uint64_t total = (uint64_t)mb << 20;
    /* text=1 labels the same bytes text/plain, which response compression
     * takes (gzip or br per write, chunked) when the client accepts it */
    const char *text = tern_req_query(ctx, "text");
    tern_resp_set_header(ctx, "Content-Type",
                         text && strcmp(text, "1") == 0 ? "text/plain" : "application/octet-stream");
    if (tern_resp_stream_start(ctx, (int64_t)total) == 0) {
        for (uint64_t off = 0; off < total; off += CHUNK) {
            size_t n = total - off < CHUNK ? (size_t)(total - off) : CHUNK;
            for (size_t i = 0; i < n; i++) buf[i] = (unsigned char)((off + i) % 251);
            if (tern_resp_stream_write(ctx, buf, n) < 0) break; /* client gone or stalled */
        }
    }
    demo_budget_give(&g);
}

/* The client certificate's subject, for mutual TLS. */
static void tls_peer(tern_ctx *ctx) {
    const char *subject = tern_req_tls_peer_subject(ctx);
    tern_resp_text(ctx, 200, subject ? subject : "none");
}

/* GET /whoami: the client as handlers see it (behind trusted proxies, the
 * real one) and the socket's own peer. */
static const char *addr_text(tern_ctx *ctx, const struct sockaddr_storage *ss) {
    char host[INET6_ADDRSTRLEN] = "?";
    unsigned port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)ss;
        inet_ntop(AF_INET, &in->sin_addr, host, sizeof host);
        port = ntohs(in->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof host);
        port = ntohs(in6->sin6_port);
    } else if (ss->ss_family == AF_UNIX) {
        return "unix";
    }
    return tern_sprintf(ctx, ss->ss_family == AF_INET6 ? "[%s]:%u" : "%s:%u", host, port);
}

static void whoami(tern_ctx *ctx) {
    struct sockaddr_storage client, sock;
    socklen_t cl, sl;
    if (tern_req_peer(ctx, &client, &cl) < 0 || tern_req_socket_peer(ctx, &sock, &sl) < 0) {
        tern_resp_text(ctx, 500, "no peer\n");
        return;
    }
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    tern_resp_printf(ctx, "{\"client\":\"%s\",\"socket_peer\":\"%s\"}\n", addr_text(ctx, &client),
                     addr_text(ctx, &sock));
}

static void usage(FILE *f) {
    fprintf(f,
            "usage: tern-demo [--host ADDR] [--port PORT] [--workers N] [options]\n"
            "  --host ADDR    address to listen on (default 0.0.0.0)\n"
            "  --port PORT    port, 0-65535 (default 8080; 0 picks a free one)\n"
            "  --workers N    worker threads, 1-1024 (default: online CPUs)\n"
            "  --reuse-port   share the port with a running instance (rolling restart)\n"
            "  --upstream URL upstream for /real (default: this server's /plaintext)\n"
            "  --db PATH      SQLite database for /pool and /real (default: in /tmp)\n"
            "  --header-timeout MS, --body-timeout MS, --keepalive-timeout MS,\n"
            "  --write-timeout MS, --drain-timeout MS (0-86400000, 0 disables; defaults\n"
            "                 10s, 10s, 60s, 30s, 10s)\n"
            "  --max-connections N, --max-in-flight N (0-86400000, 0 = unlimited, the default)\n"
            "  --tls-cert FILE --tls-key FILE  serve HTTPS with this PEM certificate chain and\n"
            "                 key; repeat the pair for more names (SNI; the first is the default)\n"
            "  --tls-client-ca FILE  require client certificates signed by these CAs (mTLS)\n"
            "  --handshake-timeout MS  whole TLS handshake (default 10000); SIGHUP reloads\n"
            "                 the certificate files\n"
            "  --upstream-ca FILE  CA file to verify an https:// --upstream (default: system)\n"
            "  --budget-mb N  memory the demo's work in flight may hold, summed over all\n"
            "                 requests, %d-%d MiB (default %d; see below)\n"
            "  --config FILE  read options from FILE first ('key = value' lines, keys are\n"
            "                 these flags without '--'; flags given here win)\n"
            "  --log-file FILE  append stderr to FILE; SIGHUP reopens it\n"
            "  --drain-delay MS  after SIGTERM, keep serving this long with /readyz at 503\n"
            "                 before closing the listeners (default 0)\n"
            "  --backlog N, --max-request-head BYTES, --max-target BYTES, --max-headers N,\n"
            "  --max-body BYTES, --stack-size BYTES, --min-body-rate BYTES/S,\n"
            "  --adaptive-target US, --adaptive-interval MS, --max-handshakes N: see README\n"
            "  --unix PATH    also listen on a Unix socket; --unix-mode 0660, --unix-owner\n"
            "                 USER[:GROUP]; --tcp false: no TCP port (systemd sockets are used\n"
            "                 when LISTEN_FDS is set)\n"
            "  --user USER    drop to USER after binding; as root the demo refuses to serve\n"
            "                 without --user or --allow-root (TERN_ALLOW_ROOT=1)\n"
            "  --trusted-proxies LIST  proxies whose Forwarded / X-Forwarded-For (and PROXY\n"
            "                 header) are believed: addresses, CIDR blocks, \"unix\"\n"
            "  --proxy-protocol  every connection starts with a PROXY v1/v2 header from a\n"
            "                 trusted proxy, else it is closed\n"
            "  --pg DSN       PostgreSQL (libpq connection string) for /db, /queries, /updates,\n"
            "                 /fortunes; an empty database gets the TechEmpower tables\n"
            "  --pg-pool N    PostgreSQL connections in all, 1-1024 (default 4): each worker\n"
            "                 has a pool of N / workers (rounded up)\n"
            "  --pg-shared-pool  one pool of N shared by every worker instead\n"
            "  --access-log FILE  one line per request to FILE (- for stdout); SIGHUP reopens it\n"
            "  --access-log-format combined|json  (default combined)\n"
            "  --api-rate N   requests/s per client under /api/, 1-1000000 (default 100)\n"
            "  --no-api       no /api/ group: no middleware at all (the bare request path)\n"
            "  --static DIR   serve the files under DIR at /static/ (GET /static/*)\n"
            "  --static-offload  open and stat static files on the offload pool (slow or\n"
            "                 network file systems; a cached open costs ~1 us inline)\n"
            "  --no-compression  send responses uncompressed (default: gzip or br as the\n"
            "                 client accepts, for text and JSON of 1 KiB and more)\n"
            "SIGHUP re-reads --config and the flags, applies the limits and timeouts that\n"
            "can change at run time, reopens --log-file and reloads the certificates.\n"
            "\n"
            "endpoints (numeric parameters: decimal digits only, else 400):\n"
            "  GET /, /plaintext, /json    hello world\n"
            "  GET /concurrent             three sleeps (10, 5, 3 ms) in one request\n"
            "  POST /echo                  the request body back\n"
            "  GET /users/:id              {\"id\":\"<id>\"}\n"
            "  GET /stream?mb=N            N MiB streamed, N 0-1024 (default 1)\n"
            "  GET /memory?tasks=N         N parked tasks and their RSS, N 1-100000 (default 1000)\n"
            "  GET /event-loop?mb=N        CPU, IO and mixed tasks and the loop lag; N MiB hashed,\n"
            "                              1-256 (default 20)\n"
            "  GET /backpressure           100 slots for the whole server, else 503\n"
            "  GET /adaptive?work_us=N     N us of CPU with adaptive shedding, 0-100000 (default 200)\n"
            "  GET /adaptive?sleep_ms=N    parks N ms first, 0-1000 (default 0): parked requests\n"
            "                              are not load and are never shed\n"
            "  GET /pool?id=N              a SQLite row through the pool, N 1-2147483647 (default:\n"
            "                              random 1-1000)\n"
            "  GET /real?parallel=N        SQLite + HTTP + file; N 0-1: 0 one after another\n"
            "                              (default), 1 at once\n"
            "  GET /stats, /metrics        JSON and Prometheus figures\n"
            "  GET /tls/peer               the verified client certificate's subject (mTLS)\n"
            "  GET /db                     one random world row as JSON (PostgreSQL, --pg; without\n"
            "                              it these answer 503)\n"
            "  GET /queries?queries=N      N random rows in one pipeline, N clamped to 1-500 (a\n"
            "                              missing or non-numeric N is 1, as TechEmpower says)\n"
            "  GET /updates?queries=N      the same rows given new random numbers, written back\n"
            "  GET /fortunes               the fortune table plus one, sorted, as an HTML table\n"
            "  GET /pg/sleep?ms=N&timeout_ms=T  pg_sleep(N ms), N 0-60000 (default 100), under a\n"
            "                              T ms query timeout (0-60000, 0 = 10 s): past it the\n"
            "                              query is cancelled on the server, 504\n"
            "  GET /api/echo               method, request ID and headers as JSON; the /api/\n"
            "                              group runs request ID, CORS and rate-limit middleware\n"
            "  POST /api/echo              the same, with the body's size\n"
            "  GET /static/*               files under --static DIR (Range, ETag, 304, .br/.gz)\n"
            "  POST /form                  urlencoded form fields echoed as JSON\n"
            "  POST /upload                multipart/form-data streamed: files' names, sizes, SHA-256\n"
            "  GET /session                a visit counter in a signed cookie\n"
            "  GET /ws?ping_ms=N           WebSocket echo (subprotocol \"echo\" offered); pings\n"
            "                              after N ms idle, 10-3600000 (default 30000)\n"
            "  GET /ws/callback            the same echo in callback mode (tern_ws_on_message): no\n"
            "                              coroutine stack while the connection is idle\n"
            "  GET /chat?stackless=N       WebSocket chat room shared by all workers; N 0-1: 1 runs\n"
            "                              members in callback mode (default 0: sequential)\n"
            "  GET /sse?count=N            Server-Sent Events: a clock and live /stats figures; N\n"
            "                              events then the end, 0-1000000 (default 0: until the\n"
            "                              client leaves); /sse?interval_ms=N: one every N ms,\n"
            "                              10-60000 (default 1000); /sse?heartbeat_ms=N: \": ping\"\n"
            "                              after N ms quiet, 10-600000 (default 15000);\n"
            "                              Last-Event-ID resumes the count\n"
            "  GET /dashboard              live charts of the /stats figures (one page, no CDN)\n"
            "  GET /dashboard/events       the same figures as Server-Sent Events, once a second\n"
            "  GET /whoami                 the client address handlers see, and the socket's peer\n"
            "  GET /healthz                alive: every worker's loop turned within 1 s, else 503\n"
            "  GET /readyz                 ready: not draining, not shedding, checks pass, else 503\n"
            "\n"
            "budget: what all requests together hold in flight; a request that would pass it\n"
            "gets 503 + Retry-After: 1. Memory (--budget-mb): 4 KiB per task or parked handler\n"
            "(/memory: tasks; /event-loop: 4 + 16 KiB; /real?parallel=1: 3; /concurrent: 1)\n"
            "and 64 KiB per /stream; the default fits one /memory?tasks=100000. CPU: %d MiB\n"
            "of /event-loop hashing at once (two mb=256 runs).\n",
            DEMO_BUDGET_MB_MIN, DEMO_BUDGET_MB_MAX, DEMO_BUDGET_MB_DEFAULT, DEMO_CPU_BUDGET_MIB);
}

/* ---- per-worker state -------------------------------------------------------- */

/* On worker `id`'s thread, before it serves. NULL (out of memory, no
 * database connection pool...) leaves the worker without state: the
 * endpoints that need it answer 503. */
static void *worker_start(tern_server *s, int id) {
    demo_app *app = tern_server_data(s);
    demo_worker *w = calloc(1, sizeof *w);
    if (!w) return NULL;
    w->id = id;
    if (demo_pool_worker_init && demo_pool_worker_init(app, w) < 0) {
        free(w);
        return NULL;
    }
    pthread_mutex_lock(&app->lock);
    app->worker_states[id] = w;
    pthread_mutex_unlock(&app->lock);
    return w;
}

/* On the same thread, after the worker's last request. */
static void worker_stop(tern_server *s, int id, void *local) {
    demo_app *app = tern_server_data(s);
    demo_worker *w = local;
    if (!w) return;
    pthread_mutex_lock(&app->lock); /* no metrics source reads it from here on */
    app->worker_states[id] = NULL;
    pthread_mutex_unlock(&app->lock);
    if (demo_pool_worker_fini) demo_pool_worker_fini(app, w);
    free(w);
}

/* --log-file: stderr (tern's own messages and the demo's) goes to FILE,
 * opened for appending; SIGHUP reopens it, so logrotate can move it away. */
static int open_log(const char *path) {
    if (!path) return 0;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    int r = dup2(fd, STDERR_FILENO) < 0 ? -errno : 0;
    close(fd);
    return r;
}

typedef struct demo_reload {
    int argc;
    char **argv;
    demo_opts *running; /* what the server started with */
} demo_reload;

/* SIGHUP: the configuration file and flags read again; the limits and
 * timeouts that can change are applied, the rest reported as needing a
 * restart; the log file reopened. */
static void reload(tern_server *s, void *arg) {
    demo_reload *rl = arg;
    demo_opts fresh;
    if (demo_opts_load(&fresh, rl->argc, rl->argv, NULL) != 0) {
        fprintf(stderr, "tern-demo: reload: configuration kept (errors above)\n");
        demo_opts_free(&fresh);
        return;
    }
    const char *log = fresh.log_file ? fresh.log_file : rl->running->log_file;
    int r = open_log(log);
    if (log) fprintf(stderr, "tern-demo: reload: log file %s %s\n", log, r < 0 ? "kept (cannot open)" : "reopened");
    int n = tern_server_reconfigure(s, &fresh.cfg);
    fprintf(stderr, "tern-demo: reload: %d setting%s changed\n", n, n == 1 ? "" : "s");
    demo_opts_free(&fresh);
}

int main(int argc, char **argv) {
    static demo_opts o; /* static: what it holds stays reachable until exit */
    int lr = demo_opts_load(&o, argc, argv, usage);
    if (lr) {
        demo_opts_free(&o);
        return lr == 1 ? 0 : 2;
    }
    if (open_log(o.log_file) < 0) {
        fprintf(stderr, "tern-demo: cannot open --log-file %s: %s\n", o.log_file, strerror(errno));
        demo_opts_free(&o);
        return 2;
    }
    demo_app app = {.lock = PTHREAD_MUTEX_INITIALIZER, .chat = {.lock = PTHREAD_MUTEX_INITIALIZER},
                    .upstream_url = o.upstream_url, .upstream_ca = o.upstream_ca, .db_opt = o.db,
                    .pg_dsn = o.pg_dsn, .pg_pool = o.pg_pool, .pg_shared_pool = o.pg_shared_pool};
    tern_config cfg = o.cfg;
    const char *host = o.host, *tls_client_ca = o.tls_client_ca;
    const char *const *tls_certs = o.tls_certs, *const *tls_keys = o.tls_keys;
    int ncerts = o.ncerts;
    unsigned long port = cfg.port, budget_mb = o.budget_mb;
    demo_reload rl = {.argc = argc, .argv = argv, .running = &o};
    demo_budget_init(&app.budget, (long)budget_mb * 1024, DEMO_CPU_BUDGET_MIB);
    tern_server *s = tern_server_new_config(&cfg);
    if (!s) {
        fprintf(stderr, "tern-demo: out of memory\n");
        return 1;
    }
    tern_server_set_address(s, host, (uint16_t)port);
    int inherited = demo_listen_setup(s, &o);
    if (inherited < 0) {
        tern_server_free(s);
        return 1;
    }
    tern_server_set_drain_delay(s, o.drain_delay_ms);
    tern_server_on_reload(s, reload, &rl);
    tern_server_set_data(s, &app);
    tern_server_on_worker(s, worker_start, worker_stop);
    tern_route(s, TERN_GET, "/", plaintext);
    tern_route(s, TERN_GET, "/plaintext", plaintext);
    tern_route(s, TERN_GET, "/json", json);
    tern_route(s, TERN_GET, "/concurrent", concurrent);
    tern_route(s, TERN_POST, "/echo", echo);
    tern_route(s, TERN_GET, "/users/:id", user);
    tern_route(s, TERN_GET, "/stream", stream);
    tern_route(s, TERN_GET, "/tls/peer", tls_peer);
    tern_route(s, TERN_GET, "/whoami", whoami);
    tern_route(s, TERN_GET, "/healthz", tern_healthz_handler);
    tern_route_with(s, TERN_GET, "/readyz", tern_readyz_handler,
                    &(tern_route_opts){.timeout_ms = 3000});
    int r;
    if (o.static_dir) {
        tern_static_opts so;
        tern_static_opts_init(&so);
        so.offload_open = o.static_offload;
        int sr = tern_static_with(s, "/static/", o.static_dir, &so);
        if (sr < 0) {
            fprintf(stderr, "tern-demo: cannot serve --static %s: %s\n", o.static_dir, strerror(-sr));
            tern_server_free(s);
            return 1;
        }
    }
    if (!o.no_compression) {
        tern_compression_opts co;
        tern_compression_opts_init(&co);
        tern_server_set_compression(s, &co);
    }
    for (int i = 0; i < ncerts; i++) {
        if (tern_server_add_cert(s, tls_certs[i], tls_keys[i]) < 0) {
            fprintf(stderr, "tern-demo: cannot use --tls-cert %s --tls-key %s\n", tls_certs[i], tls_keys[i]);
            tern_server_free(s);
            return 1;
        }
    }
    if (tls_client_ca && tern_server_set_client_ca(s, tls_client_ca) < 0) {
        fprintf(stderr, "tern-demo: cannot use --tls-client-ca %s\n", tls_client_ca);
        tern_server_free(s);
        return 1;
    }
    if (o.access_log && (r = tern_server_access_log(s, o.access_log, o.access_format)) < 0) {
        fprintf(stderr, "tern-demo: cannot open --access-log %s: %s\n", o.access_log, strerror(-r));
        tern_server_free(s);
        return 1;
    }
    if (!o.no_api && (r = demo_register_api(s, (unsigned)o.api_rate)) < 0) {
        fprintf(stderr, "tern-demo: cannot set up /api/: %s\n", strerror(-r));
        tern_server_free(s);
        demo_api_cleanup();
        return 1;
    }
    int (*groups[])(tern_server *) = {demo_register_runtime, demo_register_metrics,
                                      demo_register_pool, demo_register_admission, demo_register_pg,
                                      demo_register_data, demo_register_push, demo_register_dashboard};
    for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
        if (!groups[i]) continue;
        int g = groups[i](s);
        if (g < 0) {
            fprintf(stderr, "tern-demo: cannot set up endpoints: %s\n", strerror(-g));
            if (demo_pool_cleanup) demo_pool_cleanup(s);
            if (demo_pg_cleanup) demo_pg_cleanup(s);
            tern_server_free(s);
            demo_api_cleanup();
            return 1;
        }
    }

    r = tern_server_bind(s);
    if (r < 0) {
        fprintf(stderr, "tern-demo: cannot listen on %s:%lu: %s\n", host, port, strerror(-r));
        if (demo_pool_cleanup) demo_pool_cleanup(s);
        if (demo_pg_cleanup) demo_pg_cleanup(s);
        tern_server_free(s);
        demo_api_cleanup();
        return 1;
    }
    if (demo_drop_privileges(&o) < 0) {
        if (demo_pool_cleanup) demo_pool_cleanup(s);
        if (demo_pg_cleanup) demo_pg_cleanup(s);
        tern_server_free(s);
        demo_api_cleanup();
        return 2;
    }
    app.port = tern_server_port(s);
    app.workers = tern_server_workers(s);
    app.worker_states = calloc((size_t)app.workers, sizeof *app.worker_states);
    if (!app.worker_states) {
        fprintf(stderr, "tern-demo: out of memory\n");
        tern_server_free(s);
        return 1;
    }
    demo_print_listening(s, &o, ncerts > 0, inherited);
    r = tern_server_run(s);
    if (demo_pool_cleanup) demo_pool_cleanup(s);
    if (demo_pg_cleanup) demo_pg_cleanup(s);
    tern_server_free(s);
    demo_api_cleanup();
    free(app.worker_states);
    demo_opts_free(&o);
    if (r < 0) {
        fprintf(stderr, "tern-demo: %s\n", strerror(-r));
        return 1;
    }
    return 0;
}
