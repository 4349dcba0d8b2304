/* WebSocket connections: see ws.h and <tern/ws.h>.
 *
 * After the 101 the connection belongs to the handler's coroutine (the
 * owner): it reads frames through the exchange's input buffers (the worker's
 * scratch while a read is being handled, a buffer of its own only when a
 * frame is split across reads), writes through the exchange's output, and
 * parks in tern_ws_recv on the transport's wait like any HTTP read. Other
 * coroutines never touch the socket: their sends go to a mutex-guarded
 * queue and wake the owner with a token-checked wake (a late wake after the
 * owner left its wait is dropped), on its own worker or across workers. */
#include "http/ws.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>

#include "http/ctx.h"
#include "http/h1.h"
#include "http/ws_deflate.h"
#include "http/ws_frame.h"
#include "rt/sched.h"
#include "tern/ws.h"

#define WS_GUID "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
#define DEFAULT_MAX_MESSAGE (1u << 20)
#define DEFAULT_MAX_QUEUED (4u << 20)
/* how long tern_ws_close waits for the client's close frame */
#define CLOSE_WAIT_NS (2ull * 1000000000ull)
/* the owner's wait ended because the outbound queue has work */
#define WAKE_OUTBOX 1

typedef enum tern__ws_state {
    TERN__WS_OPEN,
    TERN__WS_CLOSE_SENT, /* our close is out, waiting for the peer's */
    TERN__WS_CLOSED,     /* handshake done, or the connection broke */
} tern__ws_state;

/* A message queued by a non-owner: the owner frames (and compresses) it
 * when it writes it, since compression state is the owner's. */
typedef struct ws_out {
    struct ws_out *next;
    size_t len;
    tern__ws_opcode op;
    uint8_t data[];
} ws_out;

/* Messages below this size go out uncompressed: deflate's block overhead
 * eats what it saves. */
#define DEFAULT_DEFLATE_MIN 64

struct tern_ws {
    tern_ctx *ctx;
    tern__h1 *x;
    tern__sched *sched; /* the owner's worker */
    tern_coro *owner;
    tern_ws_opts opts;
    const char *protocol;
    tern__ws_state state;
    unsigned peer_code;
    /* the message being reassembled */
    uint8_t *msg;
    size_t msg_len, msg_cap;
    uint8_t msg_op;         /* TEXT or BINARY while a message is open, else 0 */
    int msg_compressed;     /* its first frame had RSV1 (permessage-deflate) */
    const uint8_t *deliver; /* the complete message handed out */
    size_t deliver_len;
    tern__ws_deflate *deflate; /* negotiated permessage-deflate, or NULL */
    int delivered;             /* msg was handed out: reset on the next recv */
    tern__utf8 utf8;
    /* keep-alive and closing deadlines */
    uint64_t last_rx_ns, ping_sent_ns, close_deadline_ns;
    int ping_outstanding;
    /* the outbound queue */
    pthread_mutex_t lock;
    ws_out *out_head, *out_tail;
    size_t out_bytes;
    uint64_t wait_token; /* the owner's current recv wait, 0 when not waiting */
    int senders_closed;
    /* callback mode (tern_ws_on_message): no coroutine while idle */
    int detached;       /* the handler handed the connection over */
    int idle;           /* (under lock) back in the idle table: a send kicks */
    int kick_posted;    /* (under lock) a kick is on its way to the worker */
    int refs;           /* (under lock) the driver's 1 + kicks in flight */
    int gone;           /* (under lock) the driver let go: free at refs 0 */
    int close_notified; /* on_close has run */
    tern_ws_message_fn on_message;
    tern_ws_close_fn on_close;
    void *user;
    void (*kick)(void *drv, int fd, tern_ws *ws);
    void *kick_drv;
    int kick_fd;
    char *saved_in; /* a partial frame kept while idle */
    size_t saved_len;
};

/* ---- handshake -------------------------------------------------------------- */

void tern__ws_accept_key(const char *key, size_t key_len, char out[29]) {
    unsigned char in[64 + sizeof WS_GUID], digest[EVP_MAX_MD_SIZE];
    unsigned int dlen = 0;
    if (key_len > 64) key_len = 64; /* a valid key is 24 bytes */
    memcpy(in, key, key_len);
    memcpy(in + key_len, WS_GUID, sizeof WS_GUID - 1);
    EVP_Digest(in, key_len + sizeof WS_GUID - 1, digest, &dlen, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)out, digest, 20); /* 28 characters + NUL */
}

int tern__ws_key_valid(const char *key, size_t len) {
    if (len != 24 || key[22] != '=' || key[23] != '=') return 0;
    unsigned char buf[24];
    /* EVP_DecodeBlock counts the padding as zero bytes: 18 for 16 real */
    return EVP_DecodeBlock(buf, (const unsigned char *)key, 24) == 18;
}

int tern__ws_list_has(const char *list, size_t len, const char *token) {
    size_t tl = strlen(token), i = 0;
    while (i < len) {
        while (i < len && (list[i] == ' ' || list[i] == '\t' || list[i] == ',')) i++;
        size_t s = i;
        while (i < len && list[i] != ',') i++;
        size_t e = i;
        while (e > s && (list[e - 1] == ' ' || list[e - 1] == '\t')) e--;
        if (e - s == tl && strncasecmp(list + s, token, tl) == 0) return 1;
    }
    return 0;
}

/* Some header `name` (they may repeat) lists token. */
static int header_lists(const tern_ctx *ctx, const char *name, const char *token) {
    tern_str n, v;
    size_t nl = strlen(name);
    for (size_t i = 0; tern_req_header_at(ctx, i, &n, &v) == 0; i++)
        if (n.len == nl && strncasecmp(n.ptr, name, nl) == 0 &&
            tern__ws_list_has(v.ptr, v.len, token))
            return 1;
    return 0;
}

/* 0 when ctx is a valid opening handshake (§4.2.1), else the status. */
static int check_upgrade(const tern_ctx *ctx, const char **key) {
    if (tern_req_method(ctx) != TERN_GET || tern_req_http_minor(ctx) < 1) return 400;
    if (!header_lists(ctx, "Upgrade", "websocket") || !header_lists(ctx, "Connection", "upgrade"))
        return 400;
    const char *version = tern_req_header(ctx, "Sec-WebSocket-Version");
    if (!version || strcmp(version, "13") != 0) return 426; /* §4.4: with the versions we speak */
    *key = tern_req_header(ctx, "Sec-WebSocket-Key");
    if (!*key || !tern__ws_key_valid(*key, strlen(*key))) return 400;
    return 0;
}

static const char *choose_protocol(const tern_ctx *ctx, const char *const *ours) {
    for (; ours && *ours; ours++)
        if (header_lists(ctx, "Sec-WebSocket-Protocol", *ours)) return *ours;
    return NULL;
}

static void ws_release(void *arg);

/* permessage-deflate when the options allow it and the client offers an
 * acceptable variant: the response header's value into ext, else "". */
static void negotiate_deflate(tern_ws *ws, const tern_ctx *ctx, char *ext, size_t size) {
    ext[0] = 0;
    if (!ws->opts.permessage_deflate) return;
    tern_str n, v;
    for (size_t i = 0; tern_req_header_at(ctx, i, &n, &v) == 0; i++) {
        if (n.len != 24 || strncasecmp(n.ptr, "Sec-WebSocket-Extensions", 24) != 0) continue;
        tern__ws_deflate_params p;
        if (!tern__ws_deflate_negotiate(v.ptr, v.len, ws->opts.deflate_no_context_takeover, &p, ext,
                                        size))
            continue;
        ws->deflate = tern__ws_deflate_new(&p);
        if (!ws->deflate) ext[0] = 0; /* no memory for it: plain frames */
        return;
    }
}

static int send_101(tern__h1 *x, const char *accept, const char *protocol, const char *ext) {
    static const char head[] = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                               "Connection: Upgrade\r\nSec-WebSocket-Accept: ";
    size_t plen = protocol ? strlen(protocol) : 0, elen = strlen(ext);
    char *p = tern__h1_reserve(x, sizeof head + 28 + 32 + plen + 32 + elen + 8);
    if (!p) return -ENOMEM;
    char *start = p;
    memcpy(p, head, sizeof head - 1);
    p += sizeof head - 1;
    memcpy(p, accept, 28);
    p += 28;
    if (protocol) {
        memcpy(p, "\r\nSec-WebSocket-Protocol: ", 26);
        p += 26;
        memcpy(p, protocol, plen);
        p += plen;
    }
    if (elen) {
        memcpy(p, "\r\nSec-WebSocket-Extensions: ", 28);
        p += 28;
        memcpy(p, ext, elen);
        p += elen;
    }
    memcpy(p, "\r\n\r\n", 4);
    p += 4;
    tern__h1_commit(x, (size_t)(p - start));
    return tern__h1_flush(x);
}

tern_ws *tern_ws_accept(tern_ctx *ctx, const tern_ws_opts *opts) {
    tern__h1 *x = ctx->exchange;
    if (!x || !tern__sched_self || tern__sched_self->current != x->coro || ctx->upgrade ||
        ctx->stream_state != TERN__STREAM_NONE)
        return NULL;
    const char *key = NULL;
    int status = check_upgrade(ctx, &key);
    if (status) {
        tern__ctx_error(ctx, status,
                        status == 426 ? "WebSocket version 13 only" : "not a WebSocket upgrade");
        if (status == 426) tern_resp_set_header(ctx, "Sec-WebSocket-Version", "13");
        return NULL;
    }
    tern_ws *ws = calloc(1, sizeof *ws);
    if (!ws) {
        tern__ctx_error(ctx, 503, "out of memory");
        return NULL;
    }
    if (opts) ws->opts = *opts;
    if (!ws->opts.max_message) ws->opts.max_message = DEFAULT_MAX_MESSAGE;
    if (!ws->opts.max_queued) ws->opts.max_queued = DEFAULT_MAX_QUEUED;
    if (!ws->opts.pong_timeout_ms) ws->opts.pong_timeout_ms = ws->opts.ping_interval_ms;
    if (!ws->opts.deflate_min) ws->opts.deflate_min = DEFAULT_DEFLATE_MIN;
    ws->ctx = ctx;
    ws->x = x;
    ws->sched = tern__sched_self;
    ws->owner = x->coro;
    ws->state = TERN__WS_OPEN;
    ws->refs = 1;
    ws->last_rx_ns = tern_clock_ns();
    pthread_mutex_init(&ws->lock, NULL);
    ws->protocol = choose_protocol(ctx, ws->opts.protocols);
    /* the connection is the WebSocket's now: no response after the
     * handler, and closed (lingering) when it returns */
    ctx->status = 101;
    ctx->stream_state = TERN__STREAM_ENDED;
    ctx->close = 1;
    ctx->upgrade = ws;
    ctx->upgrade_release = ws_release;
    if (!(*x->flags & TERN__H1_NODELAY)) {
        /* messages are small writes that must leave at once (Nagle would
         * hold an echo's last segment behind the client's delayed ACK) */
        tern__transport_nodelay(&x->t);
        *x->flags |= TERN__H1_NODELAY;
    }
    char accept[29], ext[160];
    tern__ws_accept_key(key, strlen(key), accept);
    negotiate_deflate(ws, ctx, ext, sizeof ext);
    if (send_101(x, accept, ws->protocol, ext) < 0) {
        ws->state = TERN__WS_CLOSED;
        ws->peer_code = TERN__WS_CLOSE_ABNORMAL;
        ws->senders_closed = 1;
    }
    return ws;
}

const char *tern_ws_protocol(const tern_ws *ws) {
    return ws->protocol;
}
unsigned tern_ws_close_code(const tern_ws *ws) {
    return ws->peer_code;
}

static void free_out(ws_out *o) {
    while (o) {
        ws_out *next = o->next;
        free(o);
        o = next;
    }
}

static void ws_free(tern_ws *ws) {
    free_out(ws->out_head);
    pthread_mutex_destroy(&ws->lock);
    tern__ws_deflate_free(ws->deflate);
    free(ws->saved_in);
    free(ws->msg);
    free(ws);
}

static void notify_close(tern_ws *ws) {
    if (ws->close_notified || !ws->on_close) return;
    ws->close_notified = 1;
    ws->on_close(ws, ws->user);
}

/* The request ends (ctx released): in sequential mode the WebSocket ends
 * with it; a handed-over one that never got going is closed here too. */
static void ws_release(void *arg) {
    tern_ws *ws = arg;
    pthread_mutex_lock(&ws->lock);
    ws->senders_closed = 1;
    pthread_mutex_unlock(&ws->lock);
    ws->ctx = NULL;
    if (ws->detached) notify_close(ws);
    tern__ws_detached_close(ws);
}

void tern__ws_detached_close(tern_ws *ws) {
    ws->state = TERN__WS_CLOSED;
    if (!ws->peer_code) ws->peer_code = TERN__WS_CLOSE_ABNORMAL;
    notify_close(ws);
    pthread_mutex_lock(&ws->lock);
    ws->senders_closed = 1;
    ws->gone = 1;
    int last = --ws->refs == 0;
    pthread_mutex_unlock(&ws->lock);
    if (last) ws_free(ws);
}

/* ---- input ------------------------------------------------------------------ */

static int is_owner(const tern_ws *ws) {
    return tern__sched_self == ws->sched && ws->sched->current == ws->owner;
}

/* Parks the owner until its socket is readable, the queue has work
 * (WAKE_OUTBOX) or the deadline: 0, WAKE_OUTBOX or a negative errno. */
static int ws_park(tern_ws *ws, uint64_t deadline_ns) {
    uint64_t token = tern__sched_wait_begin();
    pthread_mutex_lock(&ws->lock);
    int queued = ws->out_head != NULL;
    ws->wait_token = queued ? 0 : token;
    pthread_mutex_unlock(&ws->lock);
    int r = WAKE_OUTBOX;
    if (!queued) {
        r = tern__h1_wait(ws->x, EPOLLIN, deadline_ns);
        pthread_mutex_lock(&ws->lock);
        ws->wait_token = 0;
        pthread_mutex_unlock(&ws->lock);
    }
    tern__sched_wait_end();
    return r;
}

/* Makes room for `need` bytes of input from in_start in an owned buffer. */
static int ws_in_room(tern__h1 *x, size_t need) {
    if (!x->in_owned) return tern__h1_in_make_owned(x, need + 4096);
    size_t avail = tern__h1_in_avail(x);
    if (x->in_start) {
        memmove(x->in, x->in + x->in_start, avail);
        x->in_start = 0;
        x->in_len = avail;
    }
    size_t want = (need > avail ? need : avail) + 4096;
    if (x->in_cap < want) {
        char *p = realloc(x->in, want);
        if (!p) return -ENOMEM;
        x->in = p;
        x->in_cap = want;
    }
    return 0;
}

/* Reads more input (up to `need` bytes from in_start are wanted): 0,
 * WAKE_OUTBOX, -EPIPE at end of stream, -ETIMEDOUT or -errno. With no
 * input left it reads into the worker's scratch, as the HTTP exchange
 * does, so an idle WebSocket keeps no input buffer of its own. */
static int ws_fill(tern_ws *ws, size_t need, uint64_t deadline_ns) {
    tern__h1 *x = ws->x;
    for (;;) {
        ssize_t n;
        if (tern__h1_in_avail(x) == 0) {
            if (x->in_owned) free(x->in);
            x->in = NULL;
            x->in_owned = 0;
            x->in_start = x->in_len = 0;
            n = tern__h1_read_some(x);
        } else {
            int r = ws_in_room(x, need);
            if (r < 0) return r;
            n = tern__transport_read(&x->t, x->in + x->in_len, x->in_cap - x->in_len);
            if (n > 0) x->in_len += (size_t)n;
        }
        if (n > 0) return 0;
        if (n == 0) return -EPIPE;
        if (n != -EAGAIN) return (int)n;
        if (ws->detached) return -EAGAIN; /* callback mode: the connection goes idle */
        int r = ws_park(ws, deadline_ns);
        if (r != 0) return r;
    }
}

/* ---- output ----------------------------------------------------------------- */

/* The connection is over without (more of) a close handshake. */
static int ws_broken(tern_ws *ws, int r) {
    ws->state = TERN__WS_CLOSED;
    if (!ws->peer_code) ws->peer_code = TERN__WS_CLOSE_ABNORMAL;
    pthread_mutex_lock(&ws->lock);
    ws->senders_closed = 1;
    pthread_mutex_unlock(&ws->lock);
    if (ws->ctx) ws->ctx->stream_state = TERN__STREAM_BROKEN;
    return r == -ECANCELED || r == -ETIMEDOUT ? r : -EPIPE;
}

/* Owner: writes one frame at once. */
static int ws_write_rsv(tern_ws *ws, tern__ws_opcode op, uint8_t rsv, const void *data,
                        size_t len) {
    tern__h1 *x = ws->x;
    uint8_t *p = (uint8_t *)tern__h1_reserve(x, 10);
    if (!p) return -ENOMEM;
    tern__h1_commit(x, tern__ws_frame_header(p, 1, rsv, op, len));
    int r = tern__h1_write(x, data, len);
    return r < 0 ? ws_broken(ws, r) : 0;
}

static int ws_write_frame(tern_ws *ws, tern__ws_opcode op, const void *data, size_t len) {
    return ws_write_rsv(ws, op, 0, data, len);
}

/* Owner: a data message, compressed when permessage-deflate is on and it
 * is worth it. */
static int ws_write_message(tern_ws *ws, tern__ws_opcode op, const void *data, size_t len) {
    if (!ws->deflate || op >= TERN__WS_OP_CLOSE || len < ws->opts.deflate_min)
        return ws_write_frame(ws, op, data, len);
    const uint8_t *z;
    size_t zlen;
    if (tern__ws_deflate_message(ws->deflate, data, len, &z, &zlen) < 0)
        return ws_write_frame(ws, op, data, len);
    return ws_write_rsv(ws, op, TERN__WS_RSV1, z, zlen);
}

/* Owner: writes what other coroutines queued, in their order. */
static int ws_flush_outbox(tern_ws *ws) {
    pthread_mutex_lock(&ws->lock);
    ws_out *o = ws->out_head;
    ws->out_head = ws->out_tail = NULL;
    ws->out_bytes = 0;
    pthread_mutex_unlock(&ws->lock);
    int r = 0;
    for (ws_out *q = o; q && r == 0; q = q->next) {
        if (ws->state != TERN__WS_OPEN) break;
        r = ws_write_message(ws, q->op, q->data, q->len);
        if (r == 0 && q->op == TERN__WS_OP_CLOSE) {
            ws->state = TERN__WS_CLOSE_SENT;
            ws->close_deadline_ns = tern_clock_ns() + CLOSE_WAIT_NS;
        }
    }
    free_out(o);
    return r;
}

static void ws_free(tern_ws *ws);

/* On the owner's worker: a message was queued while the connection idled. */
static void ws_kick(void *arg) {
    tern_ws *ws = arg;
    pthread_mutex_lock(&ws->lock);
    ws->kick_posted = 0;
    int last = --ws->refs == 0, gone = ws->gone;
    pthread_mutex_unlock(&ws->lock);
    if (gone) {
        if (last) ws_free(ws);
        return;
    }
    ws->kick(ws->kick_drv, ws->kick_fd, ws);
}

/* Non-owner: queues a whole frame and wakes the owner if it waits. */
static int ws_enqueue(tern_ws *ws, tern__ws_opcode op, const void *data, size_t len, int is_close) {
    ws_out *o = malloc(sizeof *o + len);
    if (!o) return -ENOMEM;
    if (len) memcpy(o->data, data, len);
    o->len = len;
    o->op = op;
    o->next = NULL;
    pthread_mutex_lock(&ws->lock);
    int r = 0;
    if (ws->senders_closed || ws->gone)
        r = -EPIPE;
    else if (ws->out_bytes + o->len > ws->opts.max_queued && !is_close)
        r = -ENOBUFS;
    if (r < 0) {
        pthread_mutex_unlock(&ws->lock);
        free(o);
        return r;
    }
    if (ws->out_tail)
        ws->out_tail->next = o;
    else
        ws->out_head = o;
    ws->out_tail = o;
    ws->out_bytes += o->len;
    if (is_close) ws->senders_closed = 1;
    if (ws->idle && !ws->kick_posted && ws->kick) {
        /* no coroutine serves the connection: have its worker start one */
        ws->kick_posted = 1;
        ws->refs++;
        if (tern__sched_remote_call(ws->sched, ws_kick, ws) < 0) {
            ws->kick_posted = 0;
            ws->refs--;
        }
    }
    if (ws->wait_token) {
        tern__sched_wake_from_any(ws->sched, ws->owner, ws->wait_token, WAKE_OUTBOX);
        ws->wait_token = 0;
    }
    pthread_mutex_unlock(&ws->lock);
    return 0;
}

static int ws_send_frame(tern_ws *ws, tern__ws_opcode op, const void *data, size_t len) {
    if (!is_owner(ws)) return ws_enqueue(ws, op, data, len, 0);
    if (ws->state != TERN__WS_OPEN) return -EPIPE;
    int r = ws_flush_outbox(ws);
    if (r < 0) return r;
    if (ws->state != TERN__WS_OPEN) return -EPIPE;
    return ws_write_message(ws, op, data, len);
}

int tern_ws_send(tern_ws *ws, tern_ws_type type, const void *data, size_t len) {
    if (type != TERN_WS_TEXT && type != TERN_WS_BINARY) return -EINVAL;
    if (type == TERN_WS_TEXT) {
        tern__utf8 u;
        tern__utf8_init(&u);
        if (tern__utf8_feed(&u, data, len) != TERN__UTF8_COMPLETE) return -EINVAL;
    }
    return ws_send_frame(ws, type == TERN_WS_TEXT ? TERN__WS_OP_TEXT : TERN__WS_OP_BINARY, data,
                         len);
}

int tern_ws_send_text(tern_ws *ws, const char *text) {
    return tern_ws_send(ws, TERN_WS_TEXT, text, strlen(text));
}
int tern_ws_send_binary(tern_ws *ws, const void *data, size_t len) {
    return tern_ws_send(ws, TERN_WS_BINARY, data, len);
}

int tern_ws_ping(tern_ws *ws, const void *data, size_t len) {
    if (len > 125) return -EINVAL;
    return ws_send_frame(ws, TERN__WS_OP_PING, data, len);
}

/* Fails the connection (§7.1.7): our close with `code`, then no more. */
static int ws_fail(tern_ws *ws, unsigned code) {
    if (ws->state == TERN__WS_OPEN) {
        uint8_t body[2] = {(uint8_t)(code >> 8), (uint8_t)code};
        ws_write_frame(ws, TERN__WS_OP_CLOSE, body, 2);
    }
    ws->state = TERN__WS_CLOSED;
    if (!ws->peer_code) ws->peer_code = TERN__WS_CLOSE_ABNORMAL;
    pthread_mutex_lock(&ws->lock);
    ws->senders_closed = 1;
    pthread_mutex_unlock(&ws->lock);
    return -EPROTO;
}

/* ---- frames in -------------------------------------------------------------- */

/* The peer's close (§5.5.1): validates its code and reason, answers it
 * while we have not sent ours, and ends the connection: -EPIPE or -EPROTO. */
static int on_close(tern_ws *ws, const uint8_t *p, size_t len) {
    unsigned code = TERN__WS_CLOSE_NO_STATUS;
    if (len == 1) return ws_fail(ws, TERN__WS_CLOSE_PROTOCOL);
    if (len >= 2) {
        code = (unsigned)p[0] << 8 | p[1];
        if (!tern__ws_close_code_valid(code)) return ws_fail(ws, TERN__WS_CLOSE_PROTOCOL);
        tern__utf8 u;
        tern__utf8_init(&u);
        if (tern__utf8_feed(&u, p + 2, len - 2) != TERN__UTF8_COMPLETE)
            return ws_fail(ws, TERN__WS_CLOSE_INVALID_DATA);
    }
    ws->peer_code = code;
    if (ws->state == TERN__WS_OPEN)
        ws_write_frame(ws, TERN__WS_OP_CLOSE, p, len < 2 ? 0 : 2); /* echo the code */
    ws->state = TERN__WS_CLOSED;
    pthread_mutex_lock(&ws->lock);
    ws->senders_closed = 1;
    pthread_mutex_unlock(&ws->lock);
    return -EPIPE;
}

/* A control frame (payload already unmasked and consumed): 0 to go on, or
 * what recv returns. Control frames may come between a message's
 * fragments (§5.4). */
static int on_control(tern_ws *ws, uint8_t op, const uint8_t *p, size_t len) {
    switch (op) {
    case TERN__WS_OP_PING:
        /* §5.5.2: a pong with the same payload, unless we are closing */
        if (ws->state == TERN__WS_OPEN) return ws_write_frame(ws, TERN__WS_OP_PONG, p, len);
        return 0;
    case TERN__WS_OP_PONG:
        ws->ping_outstanding = 0;
        return 0;
    default:
        return on_close(ws, p, len);
    }
}

/* A whole compressed message: inflated (RFC 7692 §7.2.2) and, as text,
 * checked as UTF-8. 1, or < 0 after failing the connection. */
static int on_compressed(tern_ws *ws) {
    int r = tern__ws_inflate_message(ws->deflate, ws->msg, ws->msg_len, ws->opts.max_message,
                                     &ws->deliver, &ws->deliver_len);
    if (r == -EMSGSIZE) return ws_fail(ws, TERN__WS_CLOSE_TOO_BIG);
    if (r == -ENOMEM) return ws_fail(ws, TERN__WS_CLOSE_INTERNAL);
    if (r < 0) return ws_fail(ws, TERN__WS_CLOSE_INVALID_DATA);
    if (ws->msg_op == TERN__WS_OP_TEXT) {
        tern__utf8 u;
        tern__utf8_init(&u);
        if (tern__utf8_feed(&u, ws->deliver, ws->deliver_len) != TERN__UTF8_COMPLETE)
            return ws_fail(ws, TERN__WS_CLOSE_INVALID_DATA);
    }
    return 1;
}

/* A data frame's payload (unmasked, in the input buffer): appended to the
 * message; 1 when the message is complete, 0 for more, or < 0. */
static int on_data(tern_ws *ws, const tern__ws_frame *f, const uint8_t *p) {
    if (f->opcode == TERN__WS_OP_CONT) {
        if (!ws->msg_op)
            return ws_fail(ws, TERN__WS_CLOSE_PROTOCOL); /* nothing to continue (§5.4) */
        if (f->rsv)
            return ws_fail(
                ws, TERN__WS_CLOSE_PROTOCOL); /* RSV1 on the first frame only (RFC 7692 §6.1) */
    } else {
        if (ws->msg_op) return ws_fail(ws, TERN__WS_CLOSE_PROTOCOL); /* a new message inside one */
        ws->msg_op = f->opcode;
        ws->msg_compressed = f->rsv != 0;
        ws->msg_len = 0;
        tern__utf8_init(&ws->utf8);
    }
    size_t len = (size_t)f->len;
    if (len > ws->opts.max_message - ws->msg_len) return ws_fail(ws, TERN__WS_CLOSE_TOO_BIG);
    if (ws->msg_op == TERN__WS_OP_TEXT && !ws->msg_compressed) {
        /* checked per frame, so invalid text fails fast (§8.1) */
        tern__utf8_result u = tern__utf8_feed(&ws->utf8, p, len);
        if (u == TERN__UTF8_INVALID || (f->fin && u == TERN__UTF8_PARTIAL))
            return ws_fail(ws, TERN__WS_CLOSE_INVALID_DATA);
    }
    if (ws->msg_cap - ws->msg_len < len) {
        size_t cap = ws->msg_cap ? ws->msg_cap : 256;
        while (cap - ws->msg_len < len) cap *= 2;
        uint8_t *m = realloc(ws->msg, cap);
        if (!m) return ws_fail(ws, TERN__WS_CLOSE_INTERNAL);
        ws->msg = m;
        ws->msg_cap = cap;
    }
    if (len) memcpy(ws->msg + ws->msg_len, p, len);
    ws->msg_len += len;
    if (!f->fin) return 0;
    ws->deliver = ws->msg;
    ws->deliver_len = ws->msg_len;
    return ws->msg_compressed ? on_compressed(ws) : 1;
}

/* The frame at in_start, complete in the buffer: consumed and handled. */
static int on_frame(tern_ws *ws, const tern__ws_frame *f, tern_ws_msg *msg) {
    tern__h1 *x = ws->x;
    uint8_t *p = (uint8_t *)x->in + x->in_start + f->header_len;
    size_t len = (size_t)f->len;
    tern__ws_unmask(p, len, f->mask, 0);
    ws->last_rx_ns = tern_clock_ns();
    ws->ping_outstanding = 0; /* any traffic shows the peer is alive */
    if (f->opcode >= TERN__WS_OP_CLOSE) {
        if (f->rsv)
            return ws_fail(ws,
                           TERN__WS_CLOSE_PROTOCOL); /* never on control frames (RFC 7692 §6.1) */
        /* copied out before anything may park: the input may move then */
        uint8_t body[125];
        memcpy(body, p, len);
        x->in_start += f->header_len + len;
        return on_control(ws, f->opcode, body, len);
    }
    int r = on_data(ws, f, p);
    x->in_start += f->header_len + len;
    if (r <= 0) return r;
    uint8_t op = ws->msg_op;
    ws->msg_op = 0;
    if (ws->state != TERN__WS_OPEN) return 0; /* closing: data is dropped */
    msg->type = op == TERN__WS_OP_TEXT ? TERN_WS_TEXT : TERN_WS_BINARY;
    ws->delivered = 1;
    return 1;
}

static uint64_t ws_deadline(const tern_ws *ws) {
    if (ws->state == TERN__WS_CLOSE_SENT) return ws->close_deadline_ns;
    if (!ws->opts.ping_interval_ms) return 0;
    if (ws->ping_outstanding)
        return ws->ping_sent_ns + (uint64_t)ws->opts.pong_timeout_ms * 1000000ull;
    return ws->last_rx_ns + (uint64_t)ws->opts.ping_interval_ms * 1000000ull;
}

/* A deadline passed: ping an idle peer, or give up on a silent one. */
static int ws_timeout(tern_ws *ws) {
    if (ws->state == TERN__WS_CLOSE_SENT || ws->ping_outstanding) return ws_broken(ws, -ETIMEDOUT);
    ws->ping_outstanding = 1;
    ws->ping_sent_ns = tern_clock_ns();
    return ws_write_frame(ws, TERN__WS_OP_PING, "tern", 4);
}

/* One step of recv: 1 with a message, 0 to go on, < 0 over. */
static int ws_step(tern_ws *ws, tern_ws_msg *msg) {
    tern__h1 *x = ws->x;
    int r = ws_flush_outbox(ws);
    if (r < 0) return r;
    if (ws->state == TERN__WS_CLOSED) return -EPIPE;
    tern__ws_frame f;
    size_t avail = tern__h1_in_avail(x);
    const uint8_t *in = avail ? (const uint8_t *)x->in + x->in_start : (const uint8_t *)"";
    tern__ws_parse p = tern__ws_frame_parse(in, avail, ws->deflate ? TERN__WS_RSV1 : 0, 1,
                                            ws->opts.max_message, &f);
    if (p == TERN__WS_PARSE_PROTOCOL) return ws_fail(ws, TERN__WS_CLOSE_PROTOCOL);
    if (p == TERN__WS_PARSE_TOO_BIG) return ws_fail(ws, TERN__WS_CLOSE_TOO_BIG);
    if (p == TERN__WS_PARSE_OK && avail >= f.header_len + f.len) {
        r = on_frame(ws, &f, msg);
        if (r == 1) {
            msg->data = ws->deliver;
            msg->len = ws->deliver_len;
        }
        return r;
    }
    size_t need = p == TERN__WS_PARSE_OK ? f.header_len + (size_t)f.len : avail + 14;
    r = ws_fill(ws, need, ws->detached ? 0 : ws_deadline(ws));
    if (r == -EAGAIN) return r;
    if (r == -ETIMEDOUT) return ws_timeout(ws);
    if (r == 0 || r == WAKE_OUTBOX) return 0;
    return ws_broken(ws, r);
}

int tern_ws_recv(tern_ws *ws, tern_ws_msg *msg) {
    if (!is_owner(ws) || ws->detached) return -EPERM;
    if (ws->delivered) {
        ws->delivered = 0;
        ws->msg_len = 0;
    }
    for (;;) {
        if (ws->state == TERN__WS_CLOSED) return -EPIPE;
        int r = ws_step(ws, msg);
        if (r == 1) return 0;
        if (r < 0) return r;
    }
}

int tern_ws_close(tern_ws *ws, unsigned code, const char *reason) {
    size_t rl = reason ? strlen(reason) : 0;
    if (rl > 123 || code < 1000 || code > 4999 || !tern__ws_close_code_valid(code)) return -EINVAL;
    uint8_t body[125];
    body[0] = (uint8_t)(code >> 8);
    body[1] = (uint8_t)code;
    if (rl) memcpy(body + 2, reason, rl);
    if (!is_owner(ws)) return ws_enqueue(ws, TERN__WS_OP_CLOSE, body, rl + 2, 1);
    if (ws->state != TERN__WS_OPEN) return ws->state == TERN__WS_CLOSED ? 0 : -EALREADY;
    int r = ws_flush_outbox(ws);
    if (r == 0 && ws->state == TERN__WS_OPEN)
        r = ws_write_frame(ws, TERN__WS_OP_CLOSE, body, rl + 2);
    if (r < 0) return r;
    ws->state = TERN__WS_CLOSE_SENT;
    ws->close_deadline_ns = tern_clock_ns() + CLOSE_WAIT_NS;
    if (ws->detached) return 0; /* callback mode: the client's close arrives like a message */
    tern_ws_msg m;
    while (tern_ws_recv(ws, &m) == 0) {
    }
    return 0;
}

/* ---- callback mode: no coroutine while idle ----------------------------------- */

int tern_ws_on_message(tern_ws *ws, tern_ws_message_fn on_message, tern_ws_close_fn on_close_fn,
                       void *user) {
    if (!on_message) return -EINVAL;
    if (!is_owner(ws) || !ws->ctx) return -EPERM;
    if (ws->detached) return -EALREADY;
    ws->on_message = on_message;
    ws->on_close = on_close_fn;
    ws->user = user;
    ws->detached = 1;
    ws->ctx->upgraded = 1; /* the exchange hands the connection to its driver */
    return 0;
}

void tern__ws_set_driver(tern_ws *ws, void (*kick)(void *drv, int fd, tern_ws *ws), void *drv,
                         int fd) {
    ws->ctx = NULL; /* the request is over */
    ws->kick = kick;
    ws->kick_drv = drv;
    ws->kick_fd = fd;
}

/* Keeps a partial frame while the connection idles, and gives back the
 * input buffer (an idle connection holds none). */
static void save_input(tern_ws *ws, tern__h1 *x) {
    size_t avail = tern__h1_in_avail(x);
    if (avail) {
        ws->saved_in = malloc(avail);
        if (ws->saved_in) memcpy(ws->saved_in, x->in + x->in_start, avail);
        ws->saved_len = ws->saved_in ? avail : 0;
    }
    if (x->in_owned) free(x->in);
    x->in = NULL;
    x->in_owned = 0;
    x->in_start = x->in_len = 0;
    if (ws->msg_op == 0 && ws->msg) {
        /* no message open: no reassembly buffer is kept while idle */
        free(ws->msg);
        ws->msg = NULL;
        ws->msg_cap = ws->msg_len = 0;
    }
}

static int restore_input(tern_ws *ws, tern__h1 *x) {
    if (!ws->saved_in) return 0;
    x->in = ws->saved_in;
    x->in_start = 0;
    x->in_len = x->in_cap = ws->saved_len;
    x->in_owned = 1;
    ws->saved_in = NULL;
    ws->saved_len = 0;
    return 0;
}

/* 1 when nothing is queued and the connection may go idle. */
static int ws_go_idle(tern_ws *ws) {
    if (ws_flush_outbox(ws) < 0) return -1;
    pthread_mutex_lock(&ws->lock);
    int empty = ws->out_head == NULL;
    if (empty) ws->idle = 1;
    pthread_mutex_unlock(&ws->lock);
    return empty;
}

tern__ws_resume_result tern__ws_resume(tern_ws *ws, tern__h1 *x) {
    ws->x = x;
    ws->owner = x->coro;
    ws->sched = tern__sched_self;
    pthread_mutex_lock(&ws->lock);
    ws->idle = 0;
    pthread_mutex_unlock(&ws->lock);
    restore_input(ws, x);
    for (;;) {
        if (ws->delivered) {
            ws->delivered = 0;
            ws->msg_len = 0;
        }
        tern_ws_msg m;
        int r = ws->state == TERN__WS_CLOSED ? -EPIPE : ws_step(ws, &m);
        if (r == 1) {
            ws->on_message(ws, &m, ws->user);
            continue;
        }
        if (r == 0) continue;
        if (r == -EAGAIN) {
            int idle = ws_go_idle(ws);
            if (idle == 1) {
                save_input(ws, x);
                /* the pooled coroutine will serve others: it is not the
                 * owner any more (is_owner would send through a dead x) */
                ws->owner = NULL;
                ws->x = NULL;
                return TERN__WS_IDLE;
            }
            if (idle == 0) continue;
        }
        notify_close(ws);
        ws->owner = NULL;
        ws->x = NULL;
        return TERN__WS_DONE;
    }
}
