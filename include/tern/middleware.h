/* Middleware, hooks and the access log.
 *
 * Middleware wraps the handler like an onion (Koa, tower): each one runs on
 * the request's coroutine (so it may park: an auth lookup in the pool), does
 * its "before" work, calls tern_next_call() to run the rest of the chain
 * (later middleware, then routing and the handler) and, when that returns,
 * its "after" work on the finished response (status, headers, body). Not
 * calling tern_next_call() answers the request from the middleware and stops
 * the chain (CORS preflight, 429, 401). A streamed answer's head leaves
 * with its first piece: what "before" code set is in it, and "after" code
 * can no longer change it.
 *
 * Order: global middleware (tern_use) in registration order, then the
 * middleware of every group whose prefix starts the request's path
 * (tern_use_group), groups in registration order. Routing (404, 405,
 * OPTIONS) and admission (503) happen inside the chain, so middleware sees
 * those answers too. Requests refused before routing (malformed, too large,
 * timed out while reading: 400, 408, 413, 431...) run no middleware.
 *
 * A server without middleware pays one branch per request. */
#ifndef TERN_MIDDLEWARE_H
#define TERN_MIDDLEWARE_H

#include <tern/api.h>

#include <tern.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The rest of the chain, handed to a middleware. */
typedef struct tern_next tern_next;
typedef void (*tern_middleware)(tern_ctx *ctx, tern_next *next, void *arg);

/* Runs the rest of the chain: 0, or -EALREADY when this next was called
 * before (each middleware runs the rest at most once). */
TERN_API int tern_next_call(tern_next *next);

/* Global middleware, outermost first. 0, -EINVAL, -EBUSY (running), -ENOMEM. */
TERN_API int tern_use(tern_server *s, tern_middleware mw, void *arg);
/* Middleware for the group of paths starting with prefix ("/api/": also
 * the path "/api"; a prefix is compared as bytes, so "/api" would also
 * hold "/apiary": end a group's prefix with '/'). Same errors. */
TERN_API int tern_use_group(tern_server *s, const char *prefix, tern_middleware mw, void *arg);

/* ---- values a middleware hands on -----------------------------------------
 * Per-request values keyed by an address (of a static variable the
 * middleware owns, so keys never clash): an auth middleware stores the user,
 * the handler reads it. Stored in the request's arena; gone with the
 * request. set: 0 or -ENOMEM (a second set of a key replaces its value). */
TERN_API int tern_req_set_value(tern_ctx *ctx, const void *key, void *value);
/* NULL when the key was never set. */
TERN_API void *tern_req_value(const tern_ctx *ctx, const void *key);

/* ---- failures --------------------------------------------------------------
 * A handler (or middleware) signals failure with tern_resp_error: the answer
 * becomes `status` (400..599) with a plain-text page, and the server's error
 * hook runs after the handler returns. A handler cancelled by its route's
 * deadline (tern_route_opts.timeout_ms) fails with 503 the same way. The
 * hook may rewrite the answer (a JSON error body, say); it runs on the
 * request's coroutine, before the "after" half of the middleware. */
TERN_API int tern_resp_error(tern_ctx *ctx, int status, const char *detail);
/* The failure's status (0 when the request has not failed) and detail. */
TERN_API int tern_req_failed(const tern_ctx *ctx, const char **detail);
typedef void (*tern_error_hook)(tern_ctx *ctx, int status, const char *detail, void *arg);
/* One hook per server (a later call replaces it; NULL removes it). 0 or -EBUSY. */
TERN_API int tern_on_error(tern_server *s, tern_error_hook hook, void *arg);

/* ---- connections -----------------------------------------------------------
 * `open` runs on the worker that accepted the connection, before its first
 * byte is read (before the TLS handshake); `close` runs when it is closed.
 * Both run on the worker's loop, not on a coroutine: they must not park.
 * Either may be NULL. 0 or -EBUSY. */
typedef void (*tern_conn_hook)(tern_server *s, int fd, void *arg);
TERN_API int tern_on_conn(tern_server *s, tern_conn_hook open, tern_conn_hook close, void *arg);

/* ---- request ID ------------------------------------------------------------ */
/* The request's ID (set by tern_mw_request_id or tern_req_set_id); NULL
 * when none. */
TERN_API const char *tern_req_id(const tern_ctx *ctx);
/* Sets it (copied into the arena). 0, -EINVAL (empty or over 128 bytes,
 * or not all of A-Z a-z 0-9 - _ . : + / =), -ENOMEM. */
TERN_API int tern_req_set_id(tern_ctx *ctx, const char *id);

/* Request ID middleware (arg NULL): keeps a valid incoming X-Request-ID,
 * otherwise mints one unique across workers and restarts (a random
 * per-process prefix, the worker, a per-worker counter), and echoes it in
 * the response's X-Request-ID. */
TERN_API void tern_mw_request_id(tern_ctx *ctx, tern_next *next, void *arg);

/* ---- CORS ----------------------------------------------------------------- */
typedef struct tern_cors {
    const char *const *origins; /* allowed origins ("https://a.example"), NULL-ended;
                                   NULL or {"*", NULL}: any origin */
    const char *methods;        /* preflight Allow-Methods, default "GET, HEAD, POST" */
    const char *headers;        /* preflight Allow-Headers; NULL: echo the request's */
    const char *expose;         /* Access-Control-Expose-Headers, or NULL */
    int credentials;            /* Allow-Credentials: true (the origin is echoed, never "*") */
    unsigned max_age;           /* preflight cache, seconds; 0: no header */
} tern_cors;
/* CORS middleware, arg a tern_cors that outlives the server. A preflight
 * (OPTIONS with Origin and Access-Control-Request-Method) is answered here:
 * 204 with the Allow headers for an allowed origin and method, 403 without
 * them otherwise. Other requests run on; an allowed origin's answer gets
 * Access-Control-Allow-Origin (and Credentials, Expose). Vary: Origin is set
 * whenever the answer depends on the Origin. */
TERN_API void tern_mw_cors(tern_ctx *ctx, tern_next *next, void *arg);

/* ---- security headers ------------------------------------------------------- */
typedef struct tern_security_headers {
    const char *frame_options;   /* X-Frame-Options, default "DENY"; "" omits */
    const char *referrer_policy; /* default "no-referrer"; "" omits */
    unsigned hsts_max_age;       /* Strict-Transport-Security max-age over TLS
                                    only; 0 = default 31536000 */
    int hsts_off;                /* never send HSTS */
} tern_security_headers;
/* Adds X-Content-Type-Options: nosniff, X-Frame-Options, Referrer-Policy
 * and (over TLS) Strict-Transport-Security to every answer that has not set
 * them. arg: a tern_security_headers, or NULL for the defaults. */
TERN_API void tern_mw_security_headers(tern_ctx *ctx, tern_next *next, void *arg);

/* ---- rate limiting ------------------------------------------------------------
 * A token bucket per client, shared by all workers (a hash table of
 * striped locks), of bounded size: when full, the least recently seen
 * client of a stripe is forgotten (a forgotten client starts with a full
 * bucket, the same as one that stayed away). Over its rate a client gets
 * 429 + Retry-After (seconds until a token is back). */
typedef struct tern_rate_limit tern_rate_limit;
typedef struct tern_rate_limit_opts {
    double rate;            /* tokens per second, > 0 */
    double burst;           /* bucket size, >= 1 (default: rate) */
    const char *key_header; /* key by this header's value (a proxy's
                               X-Forwarded-For); NULL: the peer address */
    unsigned max_clients;   /* table size, default 65536 */
} tern_rate_limit_opts;
/* NULL on bad options (errno EINVAL) or out of memory. */
TERN_API tern_rate_limit *tern_rate_limit_new(const tern_rate_limit_opts *opts);
TERN_API void tern_rate_limit_free(tern_rate_limit *rl);
/* The middleware; arg is the tern_rate_limit. */
TERN_API void tern_mw_rate_limit(tern_ctx *ctx, tern_next *next, void *arg);

/* ---- access log ------------------------------------------------------------
 * One line per answered request (requests refused before routing too,
 * with "-" for their method and target), formatted on the worker into a per-worker
 * buffer and written in big chunks (when 32 KiB are pending, and every
 * 100 ms), never one write per request. Reopened on SIGHUP (logrotate:
 * `mv` the file, then SIGHUP). Fields: peer, time, request line, status,
 * body bytes, referer, user agent, request ID, duration in µs from the
 * first byte to the queued answer, and upstream time ("-": not measured).
 *   combined: 127.0.0.1 - - [10/Oct/2026:13:55:36 +0000] "GET / HTTP/1.1"
 *             200 13 "-" "curl/8.0" rid=ab12 us=57 up=-
 *   json:     {"time":"2026-10-10T13:55:36Z","remote":"127.0.0.1",...} */
typedef enum tern_access_log_format {
    TERN_ACCESS_LOG_COMBINED,
    TERN_ACCESS_LOG_JSON,
} tern_access_log_format;
/* path: a file (appended to, created 0644) or "-" for stdout. Before the
 * server runs. 0, -EBUSY, -EINVAL, or the open's -errno. */
TERN_API int tern_server_access_log(tern_server *s, const char *path,
                                    tern_access_log_format format);
/* Reopens the file (what SIGHUP does): 0 or -errno (the old file is kept). */
TERN_API int tern_server_reopen_access_log(tern_server *s);

#ifdef __cplusplus
}
#endif

#endif
