/* The server side of an HTTP/1.1 exchange over a transport: reads requests
 * (head, Content-Length and chunked bodies), builds the request context,
 * hands it to the driver, serialises the response, batches pipelined
 * responses into one write, streams, and closes lingering.
 *
 * This layer knows no server. It reaches its driver only through
 * tern__h1_hooks and a `void *drv` (the way h2o's http1.c reaches its core
 * through the connection callbacks), and it parks only through the
 * transport's wait function. The driver lends it per-thread scratch buffers
 * (tern__h1_scratch) that stay valid while the exchange runs without
 * parking; tern__h1_park_hook, which the driver installs on the serving
 * coroutine, moves what the exchange still needs out of them.
 *
 * Error convention: functions returning int give 0 or a negative errno
 * (system failures: the connection is broken); protocol outcomes are the
 * named enums below, with the HTTP status to answer in an out-parameter. */
#ifndef TERN_HTTP_H1_H
#define TERN_HTTP_H1_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "http/chunked.h"
#include "http/date.h"
#include "http/parse.h"
#include "rt/coro.h"
#include "transport/transport.h"
#include "tern.h"

/* Bits of the driver's flags word that belong to the exchange (the
 * transport has bits 0..7, the driver bits 16 and up). */
enum tern__h1_flag {
    TERN__H1_DRAIN = 1u << 8,   /* close after the current response */
    TERN__H1_KILL = 1u << 9,    /* every wait fails at once (drain deadline) */
    TERN__H1_NODELAY = 1u << 10, /* TCP_NODELAY already set */
};

/* The worker's write batch: bytes [off, len) not yet written. */
typedef struct tern__wbuf {
    char *data;
    size_t off, len, cap;
} tern__wbuf;

/* Per-thread scratch, lent to whichever exchange runs. */
typedef struct tern__h1_scratch {
    char *rbuf;
    size_t rbuf_size;
    tern__wbuf wbuf;
    tern__http_header *hdrs;    /* parser output, max_headers entries */
    tern__date_cache date;
    /* "HTTP/1.1 200 OK\r\nServer: ...\r\nDate: ...\r\n", rebuilt with the
     * date: the start of most responses as one memcpy */
    time_t ok_prefix_second;
    size_t ok_prefix_len;
    char ok_prefix[160];
} tern__h1_scratch;

int tern__h1_scratch_init(tern__h1_scratch *s, unsigned max_headers);
void tern__h1_scratch_destroy(tern__h1_scratch *s);

typedef struct tern__h1_config {
    tern__http_limits limits;
    uint64_t max_body;
    unsigned header_timeout_ms, body_timeout_ms, min_body_rate, write_timeout_ms;
    const char *server_name;
    size_t server_name_len;
    /* the request head (and a small body) are copied onto the serving
     * coroutine's stack up to these sizes, to the heap beyond; the driver
     * sets them from its stack size so no limit it accepts can overflow a
     * stack (0: the defaults, 8 KiB and 4 KiB) */
    size_t head_on_stack_max, body_on_stack_max;
    const struct tern__compress_config *compress; /* NULL: responses go out as they are */
    int stream_bodies; /* some route streams its body: ask hooks->streams_body */
} tern__h1_config;

typedef struct tern__h1 tern__h1;

/* How the exchange reaches its driver. */
typedef struct tern__h1_hooks {
    /* A request is complete (head parsed, body read, path normalised):
     * route it and run its handler, which fills ctx's response. */
    void (*dispatch)(void *drv, tern__h1 *x, tern_ctx *ctx);
    /* A response was serialised (duration from receipt to queued). */
    void (*responded)(void *drv, int status, uint64_t duration_ns);
    /* A request was refused before dispatch (status 4xx/5xx). */
    void (*rejected)(void *drv, int status);
    /* The client went away while its request was handled (nginx's 499):
     * counted instead of `responded`, never as the handler's 5xx. */
    void (*abandoned)(void *drv, uint64_t duration_ns);
    /* Optional: the request's answer went out (or broke; `broken`), ctx
     * still intact: the access log's line. Also for requests refused
     * before dispatch (their ctx has no method or target). */
    void (*completed)(void *drv, tern__h1 *x, tern_ctx *ctx, int broken);
    /* Optional: non-zero when ctx's route reads the body itself
     * (tern_req_body_read); asked with the head parsed and the path set,
     * before any body byte is read. */
    int (*streams_body)(void *drv, tern_ctx *ctx);
    /* The client's address for tern_req_peer (behind a proxy, the real
     * one); NULL: the socket's peer. 0 or -errno. */
    int (*peer)(void *drv, const tern_ctx *ctx, int fd, struct sockaddr_storage *addr, socklen_t *len);
} tern__h1_hooks;

/* What tern__h1_serve left behind. */
typedef enum tern__h1_outcome {
    TERN__H1_IDLE,   /* input used up, everything answered: keep alive */
    TERN__H1_CLOSED, /* done with the connection (lingering close included) */
    TERN__H1_UPGRADED, /* a handler handed the connection to another protocol
                          (x->upgraded: a WebSocket in callback mode, ws.h);
                          input after the handshake is still in x */
} tern__h1_outcome;

/* One connection's exchange, on its serving coroutine's stack. */
struct tern__h1 {
    tern__transport t;
    uint32_t *flags;               /* = t.flags: the driver's word */
    const tern__h1_config *cfg;
    const tern__h1_hooks *hooks;
    void *drv;
    tern__h1_scratch *scratch;
    tern_coro *coro;
    uint32_t *requests;            /* the driver's per-connection count, or NULL */
    void *upgraded;                /* TERN__H1_UPGRADED: what took the connection */
    unsigned in_handler : 1;       /* a handler runs: a hangup cancels it (driver) */
    unsigned lost : 1;             /* out of memory while parking: close */
    unsigned in_owned : 1;         /* `in` is our malloc'd buffer, not the scratch */
    unsigned writing : 1;          /* parked until the socket takes more output */
    unsigned client_gone : 1;      /* hangup seen while a handler ran (driver) */
    /* input: [in_start, in_len) not yet consumed */
    char *in;
    size_t in_start, in_len, in_cap;
    /* output stash (owned): responses moved out of the scratch while parked */
    char *out;
    size_t out_off, out_len, out_cap;
    /* fairness: work done since the coroutine last gave the loop a turn */
    uint32_t batch_requests;
    size_t batch_bytes;
};

void tern__h1_init(tern__h1 *x, const tern__h1_config *cfg, const tern__h1_hooks *hooks, void *drv,
                   tern__h1_scratch *scratch, tern_coro *coro);
/* Serves requests while input lasts; see tern__h1_outcome. The caller
 * closes the transport's fd after TERN__H1_CLOSED. */
tern__h1_outcome tern__h1_serve(tern__h1 *x);
/* Frees what the exchange owns; nothing of it stays in the scratch. */
void tern__h1_release(tern__h1 *x);
/* Park hook (tern__sched_set_park_hook) for the serving coroutine. */
void tern__h1_park_hook(void *x);

/* ---- inside the layer (h1*.c, response.c, stream.c) ---------------------- */

static inline size_t tern__h1_in_avail(const tern__h1 *x) { return x->in_len - x->in_start; }

/* Parks on the transport; -ENOMEM when the park hook lost data. */
int tern__h1_wait(tern__h1 *x, uint32_t events, uint64_t deadline_ns);
uint64_t tern__h1_deadline_after(unsigned ms);

/* input (h1_input.c) */
int tern__h1_in_make_owned(tern__h1 *x, size_t min_cap);
/* Reads what is there into the scratch without waiting: bytes, 0 at end of
 * stream, -EAGAIN or -errno. */
ssize_t tern__h1_read_some(tern__h1 *x);
/* Appends input to the owned buffer (room for need_total bytes from
 * in_start), waiting up to deadline: 0, -EPIPE at end of stream,
 * -ETIMEDOUT, -ECANCELED or -errno. */
int tern__h1_read_more(tern__h1 *x, size_t need_total, uint64_t deadline_ns);

/* request bodies (h1_body.c) */
typedef enum tern__h1_read {
    TERN__H1_READ_OK,
    TERN__H1_READ_REJECT, /* answer *status and close */
    TERN__H1_READ_BROKEN, /* the connection broke: close at once */
} tern__h1_read;
typedef struct tern__h1_body {
    const char *data;
    size_t len;
    size_t consumed; /* input bytes of head + body */
    char *heap;      /* to free after the request, or NULL */
} tern__h1_body;
tern__h1_read tern__h1_read_body(tern__h1 *x, const tern__http_request *req, size_t head_len,
                                 tern__h1_body *body, int *status);

/* streamed request bodies (h1_body_stream.c): the handler reads them */
typedef enum tern__body_stream_state {
    TERN__BODY_STREAM_LENGTH,  /* Content-Length: `left` bytes to come */
    TERN__BODY_STREAM_CHUNKED, /* chunked, decoding */
    TERN__BODY_STREAM_DONE,    /* the whole body was read */
    TERN__BODY_STREAM_BROKEN,  /* malformed or the connection failed */
} tern__body_stream_state;
typedef struct tern__body_stream {
    tern__h1 *x;
    tern__body_stream_state state;
    int expect;              /* 100 Continue not sent yet */
    uint64_t left;
    uint64_t t0, got; /* for min_body_rate: when reading started, bytes since */
    tern__chunked dec;
} tern__body_stream;
void tern__body_stream_init(tern__body_stream *bs, tern__h1 *x, const tern__http_request *req);
/* After the handler: reads what it left unread (up to a bound); 0 when the
 * next request may follow, -1 when the connection must close. */
int tern__body_stream_finish(tern__body_stream *bs);

/* output (h1_output.c) */
char *tern__h1_reserve(tern__h1 *x, size_t n);
static inline void tern__h1_commit(tern__h1 *x, size_t n) { x->scratch->wbuf.len += n; }
/* Writes the stash, the batch and then `extra`, parking while the peer
 * reads slowly (write_timeout_ms without progress fails): 0 or -errno. */
int tern__h1_write(tern__h1 *x, const char *extra, size_t extra_len);
static inline int tern__h1_flush(tern__h1 *x) { return tern__h1_write(x, NULL, 0); }
size_t tern__h1_pending(const tern__h1 *x);
/* Writes what is pending, then len bytes of file fd from offset with the
 * transport's sendfile, parking while the socket is full (write_timeout_ms
 * without progress fails). 0, -EPIPE when the file is shorter than len
 * (it shrank: the framing is broken), or -errno. */
int tern__h1_sendfile(tern__h1 *x, int fd, uint64_t offset, uint64_t len);

/* responses (response.c) */
typedef enum tern__h1_framing {
    TERN__FRAME_WHOLE,       /* the body is in ctx: Content-Length */
    TERN__FRAME_LENGTH,      /* streamed with an announced Content-Length */
    TERN__FRAME_CHUNKED,     /* streamed, chunked */
    TERN__FRAME_UNTIL_CLOSE, /* streamed to an HTTP/1.0 client: close ends it */
} tern__h1_framing;
/* Serialises ctx's status line and headers (and a whole body) into the
 * batch; a large body is written from where it is. 0 or -errno. */
int tern__h1_send_head(tern__h1 *x, tern_ctx *ctx, tern__h1_framing framing, uint64_t length);
int tern__h1_send_response(tern__h1 *x, tern_ctx *ctx);
/* 1xx, 204 and 304 responses carry no body (RFC 9110 §6.4.1). */
int tern__status_has_body(int status);
/* Answers status with an error page, closing after it. 0 or -errno. */
int tern__h1_send_error(tern__h1 *x, int status, const char *detail, unsigned method);

#endif
