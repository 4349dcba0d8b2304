/* tern — a high-concurrency HTTP/1.1 server framework for C.
 *
 * Handlers are plain sequential C functions that run on stackful coroutines:
 * tern_sleep(), tern_join() or tern_wait_fd() park the current request only,
 * while the worker's epoll loop keeps serving every other connection.
 *
 * Error convention: functions that can fail return 0 (or a non-negative
 * value) on success and a negative errno on failure; constructors return NULL.
 */
#ifndef TERN_H
#define TERN_H

#include <tern/api.h>

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TERN_VERSION "0.1.0"

/* ---- methods (bit flags, so a route can accept several) ---------------- */
enum tern_req_method {
    TERN_GET = 1u << 0,
    TERN_HEAD = 1u << 1,
    TERN_POST = 1u << 2,
    TERN_PUT = 1u << 3,
    TERN_DELETE = 1u << 4,
    TERN_PATCH = 1u << 5,
    TERN_OPTIONS = 1u << 6,
    TERN_CONNECT = 1u << 7,
    TERN_TRACE = 1u << 8,
    TERN_ANY = (1u << 9) - 1,
};

typedef struct tern_server tern_server;
typedef struct tern_ctx tern_ctx;
typedef void (*tern_handler)(tern_ctx *ctx);

/* A view of bytes that is not NUL-terminated. */
typedef struct tern_str {
    const char *ptr;
    size_t len;
} tern_str;

/* ---- server configuration ------------------------------------------------ */
typedef struct tern_config {
    const char *host;           /* default "0.0.0.0" */
    uint16_t port;              /* default 8080; 0 picks a free port */
    int workers;                /* default: online CPUs */
    int backlog;                /* default 4096 */
    size_t max_request_head;    /* request line + headers, default 16 KiB (431/414) */
    size_t max_target;          /* request-target length, default 8 KiB (414) */
    unsigned max_headers;       /* default 100 (431) */
    size_t max_body;            /* default 16 MiB (413) */
    size_t stack_size;          /* coroutine stack, default 256 KiB (virtual; pages on touch) */
    unsigned max_connections;   /* per server, default 0 = limited by RLIMIT_NOFILE */
    unsigned max_in_flight;     /* handlers running or parked, default 0 = unlimited (503) */
    /* timeouts in milliseconds; 0 disables */
    unsigned keepalive_timeout_ms;   /* idle keep-alive connection, default 60000 */
    unsigned header_timeout_ms;      /* whole request head, default 10000 (408) */
    unsigned body_timeout_ms;        /* between body reads, default 10000 (408) */
    unsigned min_body_rate;          /* bytes/s a body must average once it has
                                        taken body_timeout_ms, default 1024 (408) */
    unsigned write_timeout_ms;       /* no write progress, default 30000 */
    unsigned drain_timeout_ms;       /* graceful shutdown deadline, default 10000 */
    unsigned adaptive_target_us;     /* queue-delay target for shedding, default 5000 */
    unsigned adaptive_interval_ms;   /* CoDel interval, default 100 */
    const char *server_name;    /* Server header, default "tern" */
    int shared_port;            /* 1: share the port with another process that
                                   listens with SO_REUSEPORT (rolling restart);
                                   0 (default): such a port is "in use" */
    /* TLS (<tern/tls.h>), used once a certificate is added */
    unsigned handshake_timeout_ms;   /* whole TLS handshake, default 10000 */
    unsigned max_handshakes;         /* TLS handshakes in progress per worker, default
                                        64; more connections wait in the backlog */
} tern_config;

/* Fills cfg with the defaults documented above. tern_server_bind refuses
 * (-EINVAL, naming the field on stderr) a configuration it could not serve:
 * stack_size outside 16 KiB..1 GiB, max_request_head outside 256 B..64 MiB,
 * max_target above max_request_head, max_headers outside 1..65535,
 * max_body above 1 TiB, workers above 1024. */
TERN_API void tern_config_init(tern_config *cfg);

/* Creates a server with default configuration (or a copy of cfg). */
TERN_API tern_server *tern_server_new(void);
TERN_API tern_server *tern_server_new_config(const tern_config *cfg);
TERN_API void tern_server_free(tern_server *s);

/* Address and workers; return 0 or -EINVAL. */
TERN_API int tern_server_set_address(tern_server *s, const char *host, uint16_t port);
TERN_API int tern_server_set_workers(tern_server *s, int workers);
/* See tern_config.shared_port. */
TERN_API int tern_server_set_shared_port(tern_server *s, int shared);

/* Registers handler h for the methods in `methods` on `pattern`.
 * Patterns: "/static/path", "/users/:id" (one segment), and a last
 * segment "*path" that takes the rest of the path (as in "/files/" + "*path"). Static segments win over
 * :params, which win over *wildcards. Returns 0, -EINVAL (bad pattern),
 * -EEXIST (same method and shape already registered) or -ENOMEM. */
TERN_API int tern_route(tern_server *s, unsigned methods, const char *pattern, tern_handler h);

/* Per-route admission control. */
typedef struct tern_route_opts {
    unsigned max_in_flight; /* requests of this route running or parked at once,
                               across workers; the excess gets 503 + Retry-After
                               at once (no queue). 0 = unlimited */
    int adaptive;           /* shed this route's requests (503) when the worker
                               is overloaded: see tern_load_get */
    unsigned timeout_ms;    /* handler deadline: past it the handler is cancelled
                               (its parks return -ECANCELED) and, unless it
                               already streamed, the answer is a 503. 0 = none */
    void *data;             /* the route's user data: tern_route_data(ctx) */
    /* Queue before shedding (nginx's limit_req burst): with max_in_flight
     * reached, up to queue_max requests wait, first come first served across
     * workers, up to queue_timeout_ms for a slot; the rest, and those that
     * waited too long, get 503 + Retry-After. 0 = no queue (refuse at once).
     * Needs max_in_flight. */
    unsigned queue_max;
    unsigned queue_timeout_ms;
    int stream_body;        /* the handler runs as soon as the head is in and
                               reads the body itself with tern_req_body_read
                               (uploads of any size in bounded memory);
                               max_body does not apply: the reader sets its
                               own limits. A body the handler leaves unread
                               is drained (up to 64 KiB) or the connection
                               closes after the answer. */
} tern_route_opts;
TERN_API int tern_route_with(tern_server *s, unsigned methods, const char *pattern, tern_handler h,
                    const tern_route_opts *opts);

/* The current worker's load, from measured signals only: the minimum queue
 * delay of requests over the last interval (kernel receive timestamp to
 * handler start; measured when some route is adaptive), the event loop's lag
 * (how late a 10 ms tick fired), and in-flight requests vs max_in_flight. */
typedef struct tern_load {
    unsigned level;           /* 0..100: the worst signal as % of its limit */
    const char *mode;         /* "normal" (< 50), "elevated", "shedding" */
    int shedding;             /* overloaded (standing queue) or shedding lately */
    uint64_t queue_delay_us;  /* min over the last interval */
    uint64_t loop_lag_us;     /* max over the last interval */
    unsigned in_flight;       /* server-wide */
    unsigned max_in_flight;   /* server-wide limit, 0 = none */
    uint64_t shed_total;      /* requests this worker shed adaptively */
    unsigned concurrency_limit; /* adaptive requests allowed to run at once here */
    unsigned running;         /* adaptive requests running here now */
} tern_load;
/* 0, or -EPERM outside a worker thread. */
TERN_API int tern_load_get(tern_load *out);

/* ---- application data ----------------------------------------------------
 * Three places for a program's state, so handlers need no globals:
 * - the route's data (tern_route_opts.data), read with tern_route_data;
 * - the server's data, set once before running, read from any handler with
 *   tern_server_data(tern_ctx_server(ctx));
 * - a per-worker slot: `start` runs on each worker thread before it serves
 *   (worker index 0..workers-1) and returns that worker's local state, read
 *   with tern_worker_local() from handlers and tasks on that worker;
 *   `stop` runs on the same thread after its last request. Per-worker state
 *   needs no locking: only that worker's coroutines see it. */
TERN_API void *tern_route_data(const tern_ctx *ctx);
TERN_API void tern_server_set_data(tern_server *s, void *data);
TERN_API void *tern_server_data(const tern_server *s);
typedef void *(*tern_worker_start_fn)(tern_server *s, int worker);
typedef void (*tern_worker_stop_fn)(tern_server *s, int worker, void *local);
/* 0, or -EBUSY once the server runs. */
TERN_API int tern_server_on_worker(tern_server *s, tern_worker_start_fn start, tern_worker_stop_fn stop);
/* The current worker's slot; NULL outside a worker thread or without `start`. */
TERN_API void *tern_worker_local(void);

/* Binds the listeners (one per worker, SO_REUSEPORT) without serving yet.
 * Called by tern_server_run if not called before. Returns 0 or -errno
 * (-EADDRINUSE when the port is taken). From here on SIGINT, SIGTERM and
 * SIGPIPE are blocked in the calling thread, so a stop signal that arrives
 * before tern_server_run is not lost; run (or free) restores the mask. */
TERN_API int tern_server_bind(tern_server *s);
/* The bound port (useful with port 0), or 0 before binding. */
TERN_API uint16_t tern_server_port(const tern_server *s);
/* Worker threads the server runs (the resolved default once bound). */
TERN_API int tern_server_workers(const tern_server *s);

/* Serves until SIGINT/SIGTERM or tern_server_stop(); then stops accepting,
 * lets in-flight requests finish (drain_timeout_ms) and returns 0, or a
 * negative errno if the server could not start. */
TERN_API int tern_server_run(tern_server *s);
/* Asks a running server to stop; async-signal-safe and thread-safe. */
TERN_API void tern_server_stop(tern_server *s);

/* ---- request ------------------------------------------------------------- */
TERN_API unsigned tern_req_method(const tern_ctx *ctx);           /* one TERN_* bit, 0 if other */
TERN_API tern_str tern_req_method_str(const tern_ctx *ctx);
TERN_API tern_str tern_req_target(const tern_ctx *ctx);           /* raw request-target */
TERN_API const char *tern_req_path(const tern_ctx *ctx);          /* decoded, normalised path */
TERN_API tern_str tern_req_query_string(const tern_ctx *ctx);
/* The effective authority (host[:port]): an absolute-form target's
 * ("GET http://a.example/ HTTP/1.1") wins over the Host header (RFC 9112
 * §3.2.2); empty when there is neither (HTTP/1.0 without Host). Not
 * NUL-terminated. */
TERN_API tern_str tern_req_authority(const tern_ctx *ctx);     /* raw, without '?' */
/* Decoded query parameter (first occurrence), NULL when absent. */
TERN_API const char *tern_req_query(tern_ctx *ctx, const char *name);
/* The same, telling why there is no value: 0 with *value set (decoded,
 * NUL-terminated, valid for the request), -ENOENT when absent, -EILSEQ
 * when the value is malformed: a '%' without two hex digits after it, or
 * an encoded NUL ("a=1%00evil" is refused, not cut to "1"); -ENOMEM. */
TERN_API int tern_req_query_get(tern_ctx *ctx, const char *name, const char **value);
/* Header value, case-insensitive name; NULL when absent. */
TERN_API const char *tern_req_header(const tern_ctx *ctx, const char *name);
/* Iterates headers: returns 0 and fills name/value for index i, -1 past end. */
TERN_API int tern_req_header_at(const tern_ctx *ctx, size_t i, tern_str *name, tern_str *value);
/* Route parameter (":id" or "*path"), decoded; NULL when absent. */
TERN_API const char *tern_req_param(const tern_ctx *ctx, const char *name);
TERN_API tern_str tern_req_body(const tern_ctx *ctx);
/* Reads the next body bytes into buf, parking until some arrive (each wait
 * bounded by body_timeout_ms): bytes read (> 0), 0 at the end of the body,
 * or -ETIMEDOUT (also when the body averages under min_body_rate past
 * body_timeout_ms), -EBADMSG (malformed chunked framing), -EPIPE (the client
 * went away), -ECANCELED. On a stream_body route it decodes Content-Length
 * and chunked bodies as they arrive (and sends 100 Continue when the client
 * asked for it); elsewhere it reads the body already in memory, so the
 * same code serves both. */
TERN_API ssize_t tern_req_body_read(tern_ctx *ctx, void *buf, size_t len);
TERN_API int tern_req_http_minor(const tern_ctx *ctx);            /* 0 for HTTP/1.0, 1 for 1.1 */
/* The client's address: the socket's peer, or behind trusted proxies the
 * real client (PROXY protocol, Forwarded, X-Forwarded-For: <tern/proxy.h>;
 * tern_req_socket_peer gives the proxy). Returns 0 or -errno. */
TERN_API int tern_req_peer(const tern_ctx *ctx, struct sockaddr_storage *addr, socklen_t *len);
/* The worker index this request runs on. */
TERN_API int tern_worker_id(void);

/* ---- response ------------------------------------------------------------ */
/* A final status, 200..599; anything else is refused with -EINVAL and the
 * status stays as it was (200 unless set). */
TERN_API int tern_resp_set_status(tern_ctx *ctx, int status);
TERN_API int tern_resp_status(const tern_ctx *ctx);
/* Header names must be tokens and values must not hold CR, LF or NUL:
 * invalid input is refused with -EINVAL (no response splitting). */
TERN_API int tern_resp_set_header(tern_ctx *ctx, const char *name, const char *value);
TERN_API int tern_resp_add_header(tern_ctx *ctx, const char *name, const char *value);
TERN_API int tern_resp_remove_header(tern_ctx *ctx, const char *name);
/* Body copied into the request arena. */
TERN_API int tern_resp_set_body(tern_ctx *ctx, const void *data, size_t len);
TERN_API int tern_resp_append_body(tern_ctx *ctx, const void *data, size_t len);
/* Body not copied: data must stay valid until the response is sent
 * (a string literal or other static data). */
TERN_API void tern_resp_set_body_static(tern_ctx *ctx, const void *data, size_t len);
TERN_API int tern_resp_printf(tern_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
TERN_API int tern_resp_vprintf(tern_ctx *ctx, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
/* Streaming: sends the status and headers set so far, then the body piece
 * by piece as the handler produces it, so a response of any size needs no
 * buffer of that size. Each write parks the handler while the client reads
 * slowly (write_timeout_ms without progress fails it). content_length >= 0
 * announces the exact length; -1 streams with chunked coding (HTTP/1.1) or
 * until close (HTTP/1.0). A stream left open is ended when the handler
 * returns; fewer bytes than announced close the connection. Only the
 * handler itself may stream (-EPERM from a task it spawned). */
TERN_API int tern_resp_stream_start(tern_ctx *ctx, int64_t content_length);
TERN_API int tern_resp_stream_write(tern_ctx *ctx, const void *data, size_t len);
TERN_API int tern_resp_stream_end(tern_ctx *ctx);
/* status + "text/plain; charset=utf-8" + body copy */
TERN_API int tern_resp_text(tern_ctx *ctx, int status, const char *text);
/* status + "application/json" + body copy */
TERN_API int tern_resp_json(tern_ctx *ctx, int status, const char *json);
/* s escaped as a JSON string literal, quotes included, in the arena. */
TERN_API const char *tern_json_quote(tern_ctx *ctx, const char *s);

/* Per-request arena: freed when the request ends. NULL on out of memory
 * (the request then gets a 503). */
TERN_API void *tern_alloc(tern_ctx *ctx, size_t n);
TERN_API char *tern_strdup(tern_ctx *ctx, const char *s);
TERN_API char *tern_sprintf(tern_ctx *ctx, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* ---- runtime (callable from any handler or task) -------------------------
 * Parking calls return -ECANCELED when the task or request was cancelled
 * (for a request: the client went away), so the caller can clean up. */
typedef struct tern_task tern_task;

TERN_API int tern_sleep(uint64_t ms);
TERN_API int tern_sleep_us(uint64_t us);
/* Lets other ready coroutines and pending IO run; returns 0 or -ECANCELED. */
TERN_API int tern_yield(void);
/* Waits until fd is ready for `events` (EPOLLIN/EPOLLOUT bits). Returns the
 * ready events (> 0), 0 on timeout, or -errno. timeout_ms < 0: no timeout. */
TERN_API int tern_wait_fd(int fd, unsigned events, int64_t timeout_ms);

/* Starts fn(arg) as a new task on the current worker. The task must be
 * joined (or detached). NULL on out of memory or outside a worker. */
TERN_API tern_task *tern_spawn(void *(*fn)(void *arg), void *arg);

/* Starts fn(arg) as a new task on another worker: `worker` is a worker
 * index (0 .. workers-1, as tern_worker_id returns) or TERN_WORKER_ANY for
 * the least loaded one (fewest live coroutines plus spawns on their way;
 * the current worker counts too). The task is a coroutine of that worker:
 * it parks, yields, sleeps and uses sync objects there. Join, join_all,
 * detach and cancel work from any worker and the result is handed back to
 * the joiner. Callable from any thread once the server runs (from a plain
 * thread only detach and cancel make sense: joining needs a coroutine).
 * NULL with errno EINVAL for no such worker (or fn NULL), ENOMEM when out
 * of memory. A worker that is shutting down may never run it.
 *
 * tern_spawn_on or tern_offload? tern_offload runs a *blocking* call (a
 * file read, SQLite, getaddrinfo) on a pool thread outside every worker;
 * its function must not park. tern_spawn_on runs *coroutine* code on
 * another worker's core: CPU-heavy work that yields now and then
 * (tern_yield), fan-out of non-blocking IO, anything that should use
 * another core without blocking a thread. */
#define TERN_WORKER_ANY (-1)
TERN_API tern_task *tern_spawn_on(int worker, void *(*fn)(void *arg), void *arg);
/* Waits for t to finish, stores its return value in *result (may be NULL)
 * and frees t. Returns 0, -ECANCELED (t is then still joinable), -EBUSY
 * when another coroutine is joining t, -EPERM outside a coroutine while t
 * still runs, or -ENOMEM (t freed) when a tern_spawn_on task never started
 * because its worker had no stack for it. */
TERN_API int tern_join(tern_task *t, void **result);
/* Like tern_join with a deadline: -ETIMEDOUT leaves t joinable. */
TERN_API int tern_join_timeout(tern_task *t, void **result, int64_t timeout_ms);
/* Joins every task (joined entries are set to NULL); results may be NULL.
 * Returns 0 (or the first -ENOMEM of a task that never started), or
 * -ECANCELED when the caller is cancelled: the tasks not yet joined are
 * then cancelled and waited for, so none outlives the call. */
TERN_API int tern_join_all(tern_task **tasks, size_t n, void **results);
/* The task frees itself when it finishes. */
TERN_API void tern_detach(tern_task *t);
/* Requests cancellation: t's current or next park returns -ECANCELED
 * (on another worker: as soon as that worker's loop reads its queue). */
TERN_API void tern_cancel(tern_task *t);
/* Non-zero when the current task or request has been cancelled. */
TERN_API int tern_cancelled(void);

/* Monotonic clock read once per loop pass (cheap), and a fresh reading. */
TERN_API uint64_t tern_now_ms(void);
TERN_API uint64_t tern_clock_ns(void);

#ifdef __cplusplus
}
#endif

/* The rest of the public API, one header per area. */
#include <tern/sync.h>    /* sem, mutex, wait group, channel, offload */
#include <tern/metrics.h> /* stats, /stats and /metrics handlers */
#include <tern/tls.h>     /* HTTPS: certificates, SNI, mTLS, reload */
#include <tern/middleware.h> /* middleware, hooks, request ID, CORS, rate limit, access log */
#include <tern/static.h>  /* static files, response compression */
#include <tern/json.h>    /* JSON reader (request arena) and writer */
#include <tern/form.h>    /* urlencoded forms, multipart uploads */
#include <tern/cookie.h>  /* Cookie, Set-Cookie, signed cookies */
#include <tern/testing.h> /* run requests through a server without sockets */
#include <tern/ws.h>      /* WebSocket (RFC 6455) */
#include <tern/sse.h>     /* Server-Sent Events */
#include <tern/health.h>  /* /healthz, /readyz, readiness checks, drain delay */
#include <tern/config.h>  /* config files, tern_config by key, SIGHUP reload */
#include <tern/listen.h>  /* Unix and inherited sockets, sd_notify, privileges */
#include <tern/proxy.h>   /* PROXY protocol, Forwarded, X-Forwarded-For */
/* and, included on their own: <tern/pool.h> (bounded async resource pool),
 * <tern/client.h> (outbound HTTP/1.1 client with a keep-alive pool),
 * <tern/pg.h> (PostgreSQL through libpq, asynchronously) */
#endif
