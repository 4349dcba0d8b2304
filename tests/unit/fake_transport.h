/* A fake transport for tests of the HTTP/1.1 exchange without sockets: a
 * tern__transport_ops over in-memory buffers.
 *
 * Input is a byte string delivered in segments: the bytes of one segment
 * are "in the socket" together; at a segment's end a read returns -EAGAIN
 * (clearing TERN__T_READABLE, as socket.c does for a drained edge) and the
 * next segment arrives only when the test's driver calls fake_pump, which
 * sets TERN__T_READABLE again (the epoll edge the server would see) and
 * wakes a coroutine parked in fake_wait for EPOLLIN. Within a segment, each
 * read returns at most max_read bytes (1 = one byte per read). An error
 * (-err) or the end of the stream can be scripted at any input position.
 *
 * Output is captured; each writev takes all of its bytes, one byte, a
 * random share, or alternately -EAGAIN and a random share (a coroutine that
 * parks for EPOLLOUT is woken on the driver's next pass); an error can be
 * scripted at any output byte (that many bytes go out, then every write
 * fails).
 *
 * The peer model: once the exchange shut its side down (lingering close)
 * and every input byte has been read, the peer closes too (read returns 0),
 * so a lingering close never waits for its 2 s deadline.
 *
 * fake_wait parks on the scheduler (tern__sched_park_until); define
 * FAKE_TRANSPORT_NO_SCHED to leave it out (the fuzz target simulates parks
 * without coroutines and brings its own wait). */
#ifndef TERN_TEST_FAKE_TRANSPORT_H
#define TERN_TEST_FAKE_TRANSPORT_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "transport/transport.h"
#ifndef FAKE_TRANSPORT_NO_SCHED
#include "rt/sched.h"
#endif

/* How input is delivered. */
typedef enum fake_in_mode {
    FAKE_IN_ALL,           /* one segment, any read size */
    FAKE_IN_ONE_BYTE,      /* one segment, one byte per read */
    FAKE_IN_ONE_BYTE_PARK, /* one byte per segment: -EAGAIN (a park) between bytes */
    FAKE_IN_RANDOM,        /* one segment, random read sizes */
    FAKE_IN_RANDOM_PARK,   /* random segments and read sizes, -EAGAIN between */
    FAKE_IN_CUTS,          /* segments end at cuts[] (split at chosen positions) */
    FAKE_IN__COUNT,
} fake_in_mode;

/* How output is taken. */
typedef enum fake_out_mode {
    FAKE_OUT_FULL,     /* every writev takes everything */
    FAKE_OUT_ONE_BYTE, /* one byte per writev */
    FAKE_OUT_SHORT,    /* a random share (1..all) per writev */
    FAKE_OUT_EAGAIN,   /* -EAGAIN, then a random share, alternately */
    FAKE_OUT__COUNT,
} fake_out_mode;

static const char *const fake_in_names[] = {"all", "one-byte", "one-byte+park", "random", "random+park", "cuts"};
static const char *const fake_out_names[] = {"full", "one-byte", "short", "eagain"};

#define FAKE_NONE ((size_t)-1)
#define FAKE_MAX_CUTS 16

typedef struct fake_transport {
    tern__transport t; /* copied into the exchange; waiter = this */
    uint32_t flags;    /* the driver's flags word (t.flags points here) */
    uint64_t rng;
    /* input */
    const char *in;
    size_t in_len, in_pos;
    size_t seg_end;    /* bytes [in_pos, seg_end) are readable now */
    fake_in_mode in_mode;
    size_t cuts[FAKE_MAX_CUTS];
    int ncuts, next_cut;
    size_t err_at;     /* the read at this position fails with -in_err */
    int in_err;
    size_t eof_at;     /* the read at this position returns 0 */
    int starved;       /* a read hit the segment's end: deliver the next */
    /* output */
    char *out;
    size_t out_len, out_cap;
    fake_out_mode out_mode;
    size_t out_err_at; /* after this many bytes every write fails with -out_err */
    int out_err;
    int out_toggle;
    int shut;          /* the exchange called shutdown */
    /* counters */
    unsigned reads, writes, eagain_reads, eagain_writes, waits;
    /* the coroutine parked in fake_wait, and for what */
    tern_coro *wait_coro;
    uint32_t wait_events;
} fake_transport;

static inline uint64_t fake_rand(fake_transport *f) {
    /* xorshift64*: deterministic per seed, so a failure replays */
    uint64_t x = f->rng ? f->rng : 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    f->rng = x;
    return x * 0x2545f4914f6cdd1dull;
}

/* The end of the segment that starts at in_pos. */
static inline size_t fake_segment_end(fake_transport *f) {
    size_t left = f->in_len - f->in_pos;
    switch (f->in_mode) {
    case FAKE_IN_ONE_BYTE_PARK: return f->in_pos + (left ? 1 : 0);
    case FAKE_IN_RANDOM_PARK: return f->in_pos + (left ? 1 + (size_t)(fake_rand(f) % (left < 64 ? left : 64)) : 0);
    case FAKE_IN_CUTS:
        while (f->next_cut < f->ncuts && f->cuts[f->next_cut] <= f->in_pos) f->next_cut++;
        return f->next_cut < f->ncuts ? f->cuts[f->next_cut++] : f->in_len;
    default: return f->in_len;
    }
}

static inline size_t fake_read_cap(fake_transport *f, size_t avail) {
    switch (f->in_mode) {
    case FAKE_IN_ONE_BYTE: return 1;
    case FAKE_IN_RANDOM:
    case FAKE_IN_RANDOM_PARK: return 1 + (size_t)(fake_rand(f) % avail);
    default: return avail;
    }
}

static ssize_t fake_read(tern__transport *t, void *buf, size_t len) {
    fake_transport *f = t->waiter; /* the exchange holds a copy of t */
    f->reads++;
    *t->flags &= ~(uint32_t)TERN__T_READABLE;
    if (f->in_pos == f->err_at) return -(ssize_t)f->in_err;
    if (f->in_pos == f->eof_at || (f->shut && f->in_pos >= f->in_len)) {
        *t->flags |= TERN__T_PEER_EOF;
        return 0;
    }
    if (f->in_pos >= f->seg_end || len == 0) {
        f->starved = 1;
        f->eagain_reads++;
        return -EAGAIN;
    }
    size_t n = f->seg_end - f->in_pos;
    if (f->err_at != FAKE_NONE && f->err_at > f->in_pos && f->err_at - f->in_pos < n) n = f->err_at - f->in_pos;
    if (f->eof_at != FAKE_NONE && f->eof_at > f->in_pos && f->eof_at - f->in_pos < n) n = f->eof_at - f->in_pos;
    size_t cap = fake_read_cap(f, n);
    if (n > cap) n = cap;
    if (n > len) n = len;
    memcpy(buf, f->in + f->in_pos, n);
    f->in_pos += n;
    /* the edge is not drained while bytes (or a scripted error/EOF) are
     * still there, nor after a read that filled the buffer (socket.c) */
    if (f->in_pos < f->seg_end || n == len || f->in_pos == f->err_at || f->in_pos == f->eof_at)
        *t->flags |= TERN__T_READABLE;
    return (ssize_t)n;
}

static int fake_out_append(fake_transport *f, const void *p, size_t n) {
    if (f->out_cap - f->out_len < n) {
        size_t cap = f->out_cap ? f->out_cap * 2 : 4096;
        while (cap - f->out_len < n) cap *= 2;
        char *q = realloc(f->out, cap);
        if (!q) abort();
        f->out = q;
        f->out_cap = cap;
    }
    memcpy(f->out + f->out_len, p, n);
    f->out_len += n;
    return 0;
}

static ssize_t fake_writev(tern__transport *t, const struct iovec *iov, int iovcnt, int more) {
    fake_transport *f = t->waiter; /* the exchange holds a copy of t */
    (void)more;
    f->writes++;
    size_t total = 0;
    for (int i = 0; i < iovcnt; i++) total += iov[i].iov_len;
    if (f->out_err_at != FAKE_NONE && f->out_len >= f->out_err_at) return -(ssize_t)f->out_err;
    if (total == 0) return 0;
    size_t allow = total;
    switch (f->out_mode) {
    case FAKE_OUT_FULL: break;
    case FAKE_OUT_ONE_BYTE: allow = 1; break;
    case FAKE_OUT_SHORT: allow = 1 + (size_t)(fake_rand(f) % total); break;
    case FAKE_OUT_EAGAIN:
        f->out_toggle ^= 1;
        if (f->out_toggle) {
            f->eagain_writes++;
            return -EAGAIN;
        }
        allow = 1 + (size_t)(fake_rand(f) % total);
        break;
    default: break;
    }
    if (f->out_err_at != FAKE_NONE && f->out_err_at - f->out_len < allow) allow = f->out_err_at - f->out_len;
    size_t done = 0;
    for (int i = 0; i < iovcnt && done < allow; i++) {
        size_t k = iov[i].iov_len < allow - done ? iov[i].iov_len : allow - done;
        fake_out_append(f, iov[i].iov_base, k);
        done += k;
    }
    return (ssize_t)done;
}

static ssize_t fake_sendfile(tern__transport *t, int fd, off_t *offset, size_t len) {
    (void)t;
    (void)fd;
    (void)offset;
    (void)len;
    return -ENOSYS;
}

static int fake_shutdown(tern__transport *t) {
    ((fake_transport *)t->waiter)->shut = 1;
    return 0;
}

static void fake_release(tern__transport *t) { (void)t; }

static const tern__transport_ops fake_ops = {
    .name = "fake",
    .read = fake_read,
    .writev = fake_writev,
    .sendfile = fake_sendfile,
    .shutdown = fake_shutdown,
    .release = fake_release,
};

#ifndef FAKE_TRANSPORT_NO_SCHED
/* The transport's wait: park until the driver's next fake_pump (or the
 * deadline). */
static int fake_wait(void *waiter, uint32_t events, uint64_t deadline_ns) {
    fake_transport *f = waiter;
    f->waits++;
    f->wait_events = events;
    f->wait_coro = tern__sched_self->current;
    int r = tern__sched_park_until(deadline_ns);
    f->wait_coro = NULL;
    f->wait_events = 0;
    return r;
}
#define FAKE_DEFAULT_WAIT fake_wait
#else
#define FAKE_DEFAULT_WAIT NULL
#endif

/* Sets f up over `in` (not copied; it must outlive f). The script starts
 * readable, as a freshly accepted connection does. */
static void fake_init(fake_transport *f, const char *in, size_t in_len, fake_in_mode in_mode, fake_out_mode out_mode,
                      uint64_t seed) {
    memset(f, 0, sizeof *f);
    f->rng = seed * 0x9e3779b97f4a7c15ull + 1;
    f->in = in;
    f->in_len = in_len;
    f->in_mode = in_mode;
    f->out_mode = out_mode;
    f->err_at = f->eof_at = f->out_err_at = FAKE_NONE;
    f->in_err = ECONNRESET;
    f->out_err = EPIPE;
    f->flags = TERN__T_READABLE;
    f->out_cap = 4096;
    f->out = malloc(f->out_cap);
    if (!f->out) abort();
    f->t = (tern__transport){.ops = &fake_ops, .fd = -1, .flags = &f->flags, .wait = FAKE_DEFAULT_WAIT, .waiter = f};
    f->seg_end = fake_segment_end(f);
}

/* Adds a cut (FAKE_IN_CUTS), in increasing order. Call before the first read. */
static void fake_cut(fake_transport *f, size_t at) {
    if (f->ncuts < FAKE_MAX_CUTS) f->cuts[f->ncuts++] = at;
    if (f->in_pos == 0 && f->ncuts == 1) {
        f->next_cut = 0;
        f->seg_end = fake_segment_end(f);
    }
}

static void fake_free(fake_transport *f) {
    free(f->out);
    f->out = NULL;
    f->out_len = f->out_cap = 0;
}

/* Something more can come from the peer: bytes, a scripted error or EOF. */
static int fake_input_pending(const fake_transport *f) {
    return f->in_pos < f->in_len || f->in_pos == f->err_at || f->in_pos == f->eof_at;
}

/* Once the segment is used up: the next segment arrives (an epoll edge).
 * 1 when something arrived. */
static int fake_deliver(fake_transport *f) {
    if (f->in_pos < f->seg_end || !fake_input_pending(f)) return 0;
    if (f->in_pos >= f->in_len && !f->starved) return 0; /* only an error/EOF left: after a read saw the end */
    f->starved = 0;
    f->seg_end = fake_segment_end(f);
    f->flags |= TERN__T_READABLE;
    return 1;
}

#ifndef FAKE_TRANSPORT_NO_SCHED
/* One pass of the test's driver: deliver the next input segment after a
 * -EAGAIN, and wake the coroutine parked in fake_wait when what it waits
 * for is there (output: always, the peer reads on). 1 when it woke it. */
static int fake_pump(fake_transport *f) {
    fake_deliver(f);
    if (!f->wait_coro) return 0;
    int ready = 0;
    if (f->wait_events & EPOLLOUT) ready = 1;
    if ((f->wait_events & EPOLLIN) && (f->flags & TERN__T_READABLE)) ready = 1;
    if (!ready) return 0;
    tern_coro *c = f->wait_coro;
    tern__sched_wake(c, 0);
    return 1;
}
#endif

/* ---- the peer's view of the output: a strict HTTP/1.1 response reader ---- */

typedef struct fake_response {
    int status;
    int has_length, chunked, close, keep_alive;
    size_t content_length;
    unsigned num_date, num_server, num_length, num_te;
    const char *head; /* into the output */
    size_t head_len;
    char *body;       /* decoded (malloc'd) */
    size_t body_len;
    char reason[64];
} fake_response;

typedef enum fake_parse {
    FAKE_PARSE_OK,         /* one whole response */
    FAKE_PARSE_INCOMPLETE, /* the output ends inside a response */
    FAKE_PARSE_BAD,        /* not a well-formed response */
} fake_parse;

static int fake_ieq(const char *a, size_t alen, const char *b) {
    size_t blen = strlen(b);
    if (alen != blen) return 0;
    for (size_t i = 0; i < alen; i++) {
        char x = a[i], y = b[i];
        if (x >= 'A' && x <= 'Z') x = (char)(x + 32);
        if (y >= 'A' && y <= 'Z') y = (char)(y + 32);
        if (x != y) return 0;
    }
    return 1;
}

static int fake_tchar(unsigned char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

static const char *fake_find_crlf(const char *p, const char *end) {
    for (; p + 1 < end; p++)
        if (p[0] == '\r' && p[1] == '\n') return p;
    return NULL;
}

/* Parses one response at buf[0..len). request_head: the request was HEAD
 * (no body whatever the framing says). until_close: a response with neither
 * Content-Length nor chunked takes the rest. On OK, *used is its size and
 * r->body must be freed (fake_response_free). *why names a BAD. */
static inline fake_parse fake_parse_response(const char *buf, size_t len, int request_head, fake_response *r,
                                      size_t *used, const char **why) {
    memset(r, 0, sizeof *r);
    const char *end = buf + len, *p = buf;
    *why = "";
    const char *eol = fake_find_crlf(p, end);
    if (!eol) return len > 8192 ? (*why = "status line too long", FAKE_PARSE_BAD) : FAKE_PARSE_INCOMPLETE;
    /* "HTTP/1.1 ddd reason" */
    if (eol - p < 13 || memcmp(p, "HTTP/1.1 ", 9) != 0 || p[12] != ' ') return *why = "status line", FAKE_PARSE_BAD;
    for (int i = 9; i < 12; i++)
        if (p[i] < '0' || p[i] > '9') return *why = "status digits", FAKE_PARSE_BAD;
    r->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    if (r->status < 100 || r->status > 599) return *why = "status range", FAKE_PARSE_BAD;
    size_t rl = (size_t)(eol - (p + 13));
    if (rl == 0) return *why = "empty reason", FAKE_PARSE_BAD;
    for (const char *q = p + 13; q < eol; q++)
        if ((unsigned char)*q < 0x20 && *q != '\t') return *why = "reason ctl", FAKE_PARSE_BAD;
    memcpy(r->reason, p + 13, rl < sizeof r->reason - 1 ? rl : sizeof r->reason - 1);
    p = eol + 2;
    for (;;) {
        eol = fake_find_crlf(p, end);
        if (!eol) return FAKE_PARSE_INCOMPLETE;
        if (eol == p) {
            p += 2;
            break;
        }
        const char *colon = memchr(p, ':', (size_t)(eol - p));
        if (!colon || colon == p) return *why = "header without name", FAKE_PARSE_BAD;
        for (const char *q = p; q < colon; q++)
            if (!fake_tchar((unsigned char)*q)) return *why = "header name", FAKE_PARSE_BAD;
        const char *v = colon + 1;
        while (v < eol && (*v == ' ' || *v == '\t')) v++;
        const char *ve = eol;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        for (const char *q = v; q < ve; q++)
            if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f) return *why = "header value ctl", FAKE_PARSE_BAD;
        size_t nl = (size_t)(colon - p), vl = (size_t)(ve - v);
        if (fake_ieq(p, nl, "Content-Length")) {
            r->num_length++;
            if (vl == 0 || vl > 18) return *why = "content-length", FAKE_PARSE_BAD;
            size_t n = 0;
            for (size_t i = 0; i < vl; i++) {
                if (v[i] < '0' || v[i] > '9') return *why = "content-length digits", FAKE_PARSE_BAD;
                n = n * 10 + (size_t)(v[i] - '0');
            }
            if (r->has_length && n != r->content_length) return *why = "two lengths", FAKE_PARSE_BAD;
            r->has_length = 1;
            r->content_length = n;
        } else if (fake_ieq(p, nl, "Transfer-Encoding")) {
            r->num_te++;
            if (!fake_ieq(v, vl, "chunked")) return *why = "transfer-encoding", FAKE_PARSE_BAD;
            r->chunked = 1;
        } else if (fake_ieq(p, nl, "Connection")) {
            if (fake_ieq(v, vl, "close")) r->close = 1;
            else if (fake_ieq(v, vl, "keep-alive")) r->keep_alive = 1;
            else return *why = "connection value", FAKE_PARSE_BAD;
        } else if (fake_ieq(p, nl, "Date")) {
            r->num_date++;
        } else if (fake_ieq(p, nl, "Server")) {
            r->num_server++;
        }
        p = eol + 2;
    }
    r->head = buf;
    r->head_len = (size_t)(p - buf);
    if (r->chunked && r->has_length) return *why = "length and chunked", FAKE_PARSE_BAD;
    /* our server always dates final answers (RFC 9110 §6.6.1 lets an
     * interim 1xx go without), and a handler's Date replaces its own */
    if (r->num_date > 1 || (r->num_date == 0 && r->status >= 200)) return *why = "Date count", FAKE_PARSE_BAD;
    int no_body = request_head || r->status < 200 || r->status == 204 || r->status == 304;
    if ((r->status < 200 || r->status == 204) && (r->has_length || r->chunked))
        return *why = "framing on a bodiless status", FAKE_PARSE_BAD;
    if (no_body) {
        *used = (size_t)(p - buf);
        return FAKE_PARSE_OK;
    }
    if (r->has_length) {
        if ((size_t)(end - p) < r->content_length) return FAKE_PARSE_INCOMPLETE;
        r->body = malloc(r->content_length + 1);
        memcpy(r->body, p, r->content_length);
        r->body_len = r->content_length;
        *used = (size_t)(p - buf) + r->content_length;
        return FAKE_PARSE_OK;
    }
    if (r->chunked) {
        size_t cap = 256, blen = 0;
        char *body = malloc(cap);
        for (;;) {
            eol = fake_find_crlf(p, end);
            if (!eol) {
                free(body);
                return FAKE_PARSE_INCOMPLETE;
            }
            size_t n = 0;
            const char *q = p;
            if (q == eol) return free(body), *why = "empty chunk size", FAKE_PARSE_BAD;
            for (; q < eol; q++) {
                int d = *q >= '0' && *q <= '9' ? *q - '0' : *q >= 'a' && *q <= 'f' ? *q - 'a' + 10 : -1;
                if (d < 0 || n > ((size_t)1 << 40)) return free(body), *why = "chunk size", FAKE_PARSE_BAD;
                n = n * 16 + (size_t)d;
            }
            p = eol + 2;
            if (n == 0) {
                /* no trailers from us: the last chunk ends with an empty line */
                if (end - p < 2) return free(body), FAKE_PARSE_INCOMPLETE;
                if (p[0] != '\r' || p[1] != '\n') return free(body), *why = "trailer", FAKE_PARSE_BAD;
                p += 2;
                break;
            }
            if ((size_t)(end - p) < n + 2) return free(body), FAKE_PARSE_INCOMPLETE;
            if (p[n] != '\r' || p[n + 1] != '\n') return free(body), *why = "chunk end", FAKE_PARSE_BAD;
            while (cap < blen + n + 1) cap *= 2;
            body = realloc(body, cap);
            memcpy(body + blen, p, n);
            blen += n;
            p += n + 2;
        }
        r->body = body;
        r->body_len = blen;
        *used = (size_t)(p - buf);
        return FAKE_PARSE_OK;
    }
    /* neither: the body runs until the close */
    r->body = malloc((size_t)(end - p) + 1);
    memcpy(r->body, p, (size_t)(end - p));
    r->body_len = (size_t)(end - p);
    *used = len;
    return FAKE_PARSE_OK;
}

static inline void fake_response_free(fake_response *r) {
    free(r->body);
    r->body = NULL;
}

/* Replaces every Date header's value in buf by a fixed string (the clock
 * may tick between two runs that must give the same bytes). */
static void fake_blank_dates(char *buf, size_t len) {
    static const char key[] = "\r\nDate: ";
    for (size_t i = 0; i + sizeof key - 1 <= len; i++) {
        if (memcmp(buf + i, key, sizeof key - 1) == 0) {
            size_t at = i + sizeof key - 1, n = len - at < 29 ? len - at : 29; /* output may end inside */
            memset(buf + at, 'D', n);
        }
    }
}

#endif
