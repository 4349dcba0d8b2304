/* tern outbound HTTP/1.1 client: requests from a handler or task to one
 * upstream (http://host:port), over kept-alive connections.
 *
 * Every call parks the calling coroutine, never the worker thread: the
 * connect is non-blocking and waited for with tern_wait_fd, and so are
 * writes and reads. Connections live in one tern_pool per worker (created
 * by that worker's first request), so a tern_client may be shared by all
 * workers while each connection stays on one worker's epoll loop; the
 * connection limit is max_connections per worker.
 *
 * A connection is reused when the response was complete and framed
 * (Content-Length, chunked, or no body) and neither side said
 * Connection: close (HTTP/1.0 needs keep-alive); otherwise, and after any
 * error, it is closed. Idle connections are checked before reuse (a peer
 * that closed one is noticed without sending on it); when a reused
 * connection still turns out closed before any response byte arrived, an
 * idempotent request (GET, HEAD, OPTIONS, PUT, DELETE) is retried once on
 * a new connection: the race with an upstream's keep-alive timeout.
 *
 * All bytes go through the transport layer (a plain socket today), so TLS
 * can plug in; the response head is read by the server's own parser rules.
 * A response that keeps the socket full never holds the worker: the read
 * loop yields every 64 KiB read without a park.
 *
 * The host is resolved once, at the first connect (a numeric address
 * directly, a name with getaddrinfo on the offload pool). Requests are not pipelined: one request per connection at a
 * time. */
#ifndef TERN_CLIENT_H
#define TERN_CLIENT_H

#include <tern/api.h>

#include <stddef.h>
#include <stdint.h>

#include <tern.h>
#include <tern/pool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tern_client tern_client;

typedef struct tern_client_config {
    size_t max_connections;         /* per worker, default 32 */
    size_t min_idle;                /* connections kept open per worker, default 0 */
    unsigned connect_timeout_ms;    /* default 2000 */
    unsigned io_timeout_ms;         /* longest wait for the socket while writing the
                                       request or reading the response, default 10000 */
    unsigned acquire_timeout_ms;    /* wait for a free connection, default 5000 */
    unsigned idle_timeout_ms;       /* idle connections closed after, default 30000 */
    size_t max_response_head;       /* status line + headers, default 16 KiB */
    size_t max_response_body;       /* decoded body, default 8 MiB */
    size_t max_response_headers;    /* header fields in a response, default 100 */
    unsigned exchange_timeout_ms;   /* the whole tern_client_send call, however the
                                       upstream paces its bytes (a byte a second
                                       never trips io_timeout_ms), default 30000;
                                       0: none */
    /* https:// only: the peer's certificate is verified against the system
     * CA store (Debian's ca-certificates) or, when set, this PEM file, and
     * must name the URL's host */
    const char *tls_ca_file;
    int tls_insecure;               /* 1: no verification at all (logged as a warning) */
} tern_client_config;

/* Fills cfg with the defaults above. */
TERN_API void tern_client_config_init(tern_client_config *cfg);

/* url: "http://host[:port][/path]" or "https://..." (host may be [v6]);
 * the path, if any, is the default request path. https: TLS 1.2+, SNI and
 * ALPN http/1.1 sent, the session resumed by the next connection of the
 * same client. cfg NULL: defaults. NULL with errno EINVAL (malformed URL or
 * config, unreadable tls_ca_file), EPROTONOSUPPORT (neither) or ENOMEM.
 * Creating does no I/O. */
TERN_API tern_client *tern_client_new(const char *url, const tern_client_config *cfg);
/* Closes every idle connection and frees the client. No request may be in
 * flight; call it from a worker of the server (for its own pool: the
 * others are then closed only when no worker runs), or after
 * tern_server_run returned. See tern_pool_free. */
TERN_API void tern_client_free(tern_client *c);

typedef struct tern_client_header {
    const char *name, *value;       /* NUL-terminated, value without surrounding spaces */
} tern_client_header;

typedef struct tern_client_request {
    const char *method;             /* default "GET" */
    const char *path;               /* origin-form "/p?q"; default: the URL's path or "/" */
    /* extra request headers as name/value pairs, NULL-terminated:
     * {"Accept", "text/plain", NULL}. Host, Content-Length (with a body)
     * and Connection are written by the client. */
    const char *const *headers;
    const void *body;
    size_t body_len;
} tern_client_request;

typedef struct tern_client_response {
    int status;
    int http_minor;                 /* 0 or 1 */
    const char *reason;             /* reason phrase, may be "" */
    const tern_client_header *headers;
    size_t nheaders;
    const char *body;               /* decoded (chunked removed), NUL-terminated */
    size_t body_len;
    int reused;                     /* sent on a kept-alive connection */
    uint64_t connect_ns;            /* time spent connecting (0 when reused) */
    void *internal_;
} tern_client_response;

/* Sends req and reads the whole response into *resp (which the caller
 * frees with tern_client_response_free, also after an error). Returns 0
 * whatever the HTTP status, or:
 *   -EINVAL       bad request fields (CR/LF in a header, not origin-form)
 *   -EPERM        outside a coroutine
 *   -EBUSY        no connection free within acquire_timeout_ms
 *   -ECONNREFUSED, -EHOSTUNREACH, -ENETUNREACH...   connect failed
 *                 (-EHOSTUNREACH too when the name does not resolve)
 *   -ETIMEDOUT    connect, write or read made no progress in time, or the
 *                 whole exchange took longer than exchange_timeout_ms
 *   -EPROTO       (https) the TLS handshake failed: bad certificate, name
 *                 mismatch, no common protocol
 *   -ECONNRESET   the connection closed before the response was complete
 *   -EPROTO       malformed response (RFC 9112 strictness as for requests:
 *                 CRLF only, no obs-fold, no repeated Content-Length...),
 *                 a status outside 100..599, 101, more than 16 interim 1xx
 *                 responses, or chunked framing beyond its bounds (a 1 KiB
 *                 size line, 64 KiB of chunk extensions in all, trailers
 *                 above max_response_head)
 *   -EMSGSIZE     response head, header count or body above the limits
 *   -ECANCELED    the caller was cancelled
 *   -ENOMEM */
TERN_API int tern_client_send(tern_client *c, const tern_client_request *req, tern_client_response *resp);
/* GET path (NULL: the URL's path). */
TERN_API int tern_client_get(tern_client *c, const char *path, tern_client_response *resp);
TERN_API void tern_client_response_free(tern_client_response *resp);
/* First header named `name` (case-insensitive), NULL when absent. */
TERN_API const char *tern_client_header_get(const tern_client_response *resp, const char *name);

/* The URL the client was created with. */
TERN_API const char *tern_client_url(const tern_client *c);

typedef struct tern_client_stats {
    tern_pool_stats pool;           /* connections, summed over workers */
    uint64_t requests;              /* tern_client_send calls */
    uint64_t responses;             /* complete responses received */
    uint64_t errors;                /* calls that returned an error */
    uint64_t reused;                /* requests sent on a kept-alive connection */
    uint64_t retries;               /* retried after a stale kept-alive connection */
    uint64_t connects;              /* connects that succeeded */
    uint64_t tls_resumed;           /* https connects that resumed a TLS session */
} tern_client_stats;

/* Thread-safe snapshot, summed over workers. */
TERN_API void tern_client_stats_read(tern_client *c, tern_client_stats *out);
/* Registers the client's figures with the metrics module under `name`:
 * the pool's (see tern_pool_metrics_write) plus requests_total,
 * responses_total, errors_total, reused_total, retries_total,
 * connects_total and tls_resumed_total. tern_client_free unregisters. */
TERN_API int tern_client_register_metrics(tern_client *c, tern_server *s, const char *name);

#ifdef __cplusplus
}
#endif
#endif
