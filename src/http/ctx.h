/* The request context handed to handlers: the request (a copy of its head
 * on the coroutine's own stack, so it stays valid while the handler parks),
 * the response being built, and a per-request arena. Internal layout; the
 * public API in tern.h only sees an opaque tern_ctx. */
#ifndef TERN_HTTP_CTX_H
#define TERN_HTTP_CTX_H

#include <stddef.h>
#include <stdint.h>

#include "http/parse.h"
#include "http/router.h"
#include "tern.h"

typedef struct tern__arena_chunk {
    struct tern__arena_chunk *next;
    size_t size;
    char data[];
} tern__arena_chunk;

typedef struct tern__arena {
    char *ptr;                  /* free space in the current chunk */
    size_t left;
    tern__arena_chunk *chunks;   /* malloc'd chunks, freed at request end */
} tern__arena;

typedef struct tern__resp_header {
    const char *name, *value;
    uint32_t name_len, value_len;
} tern__resp_header;

#define TERN_CTX_INLINE_HEADERS 8
#define TERN_CTX_INLINE_ARENA 256

struct tern__h1;

/* A streamed response's state (tern_resp_stream_*). */
typedef enum tern__stream_state {
    TERN__STREAM_NONE,   /* not streaming: the response is sent whole */
    TERN__STREAM_OPEN,   /* head sent, body pieces going out */
    TERN__STREAM_ENDED,  /* framing finished */
    TERN__STREAM_BROKEN, /* a write failed: the connection closes */
} tern__stream_state;

struct tern_ctx {
    struct tern__h1 *exchange;        /* the HTTP/1.1 exchange this request came on */
    /* request */
    const char *head;                 /* copy of the head; header values NUL-terminated */
    const tern__http_header *headers;  /* offsets into head */
    uint32_t num_headers;
    unsigned method;
    uint32_t minor;
    uint32_t req_flags;               /* TERN_REQ_* */
    tern_str method_str, target, query;
    tern_str authority;               /* effective authority: target's, else Host */
    const char *path;                 /* decoded, normalised, NUL-terminated */
    size_t path_len;
    const char *body;
    size_t body_len;
    size_t body_read;                 /* tern_req_body_read's position in body */
    struct tern__body_stream *body_stream; /* a stream_body route's body, else NULL */
    struct tern__ctx_defer *defers;   /* run when the request ends (temporary files) */
    uint32_t num_params;
    const char *param_names[TERN_MAX_PARAMS];
    const char *param_values[TERN_MAX_PARAMS];
    uint64_t start_ns;
    void *route_data;                 /* the route's user data */
    const char *request_id;           /* tern_req_id, or NULL */
    const char *fail_detail;          /* tern_resp_error's detail */
    int fail_status;                  /* tern_resp_error's status, 0: not failed */
    struct tern__ctx_value *values;   /* tern_req_set_value: middleware -> handler */
    struct tern_server *server;       /* the driver's, opaque to HTTP */
    /* response */
    int status;
    uint32_t num_resp, cap_resp;
    tern__resp_header *resp;
    const char *resp_body;
    size_t resp_body_len, resp_body_cap;  /* cap > 0: arena buffer we may append to */
    unsigned oom : 1;                 /* an allocation failed: answer 503 */
    unsigned close : 1;               /* close the connection after this response */
    unsigned server_set : 1;          /* handler set its own Server header */
    unsigned date_set : 1;            /* handler set its own Date header */
    unsigned stream_chunked : 1;      /* streamed body uses chunked coding */
    unsigned resp_file : 1;           /* the body is resp_file_fd's bytes (sendfile) */
    unsigned stream_encoded : 1;      /* stream_enc compresses the streamed body */
    unsigned upgraded : 1;            /* the connection goes to `upgrade` (a WebSocket in
                                         callback mode) when the handler returns */
    tern__stream_state stream_state;
    uint64_t stream_left;             /* Content-Length bytes still to stream */
    uint64_t stream_sent;             /* body bytes streamed (the access log's) */
    /* a protocol that took the connection over (WebSocket, ws.c): released
     * with the request, once its handler returned */
    void (*upgrade_release)(void *upgrade);
    void *upgrade;
    unsigned sse_heartbeat_ms;        /* tern_sse_heartbeat */
    uint64_t sse_last_write_ns;       /* last SSE output (heartbeat clock) */
    tern__resp_header resp_inline[TERN_CTX_INLINE_HEADERS];
    /* past the part tern__ctx_init clears: valid only under their flag */
    int resp_file_fd;                 /* resp_file: owned, closed at release */
    uint64_t resp_file_off, resp_file_len;
    struct tern__encoder *stream_enc; /* stream_encoded (compress.c) */
    tern__arena arena;
    char arena_inline[TERN_CTX_INLINE_ARENA];
};

void tern__ctx_init(tern_ctx *ctx);
/* Frees the arena's chunks, after running the deferred calls (last first). */
void tern__ctx_release(tern_ctx *ctx);
struct tern__ctx_defer {
    struct tern__ctx_defer *next;
    void (*fn)(void *arg);
    void *arg;
};
/* fn(arg) when the request ends; 0 or -ENOMEM. */
int tern__ctx_defer(tern_ctx *ctx, void (*fn)(void *arg), void *arg);
/* Sets the response to a plain-text error page (no request bytes echoed). */
void tern__ctx_error(tern_ctx *ctx, int status, const char *detail);

/* Makes the body len bytes of file fd from offset, sent after the head
 * with the transport's sendfile (read + write over TLS). ctx owns fd from
 * here on and closes it when the request ends; a body set before is
 * dropped. */
void tern__resp_set_file(tern_ctx *ctx, int fd, uint64_t offset, uint64_t len);

/* Sets the Allow header to the methods in `allowed` (TERN_* bits). */
void tern__ctx_set_allow(tern_ctx *ctx, unsigned allowed);

/* Reason phrase for a status code ("Unknown" for unlisted codes). */
const char *tern__status_reason(int status, size_t *len);

/* Non-zero when name is a valid token and value has no CR, LF, NUL or other
 * control characters besides HTAB (RFC 9110 §5.1, §5.5). */
int tern__header_name_valid(const char *name, size_t len);
int tern__header_value_valid(const char *value, size_t len);

#endif
