/* Fuzz target for the whole HTTP/1.1 exchange (src/http/h1*.c: parser,
 * Content-Length and chunked bodies, 100-continue, pipelining, the output
 * batch, streaming, park and resume) over the fake transport.
 *
 * Input: an 8-byte schedule, then the bytes the client sends.
 *   [0] input delivery (fake_in_mode)   [1] output behaviour (fake_out_mode)
 *   [2..3] seed of the random sizes     [4] what goes wrong (none, read
 *   error, end of stream, write error, a wait that times out)
 *   [5..6] where (input or output byte position)   [7] limits (small
 *   max_body / max_head / max_headers)
 *
 * No coroutines: the exchange's waits, tern_yield and tern_sleep run its
 * park hook (as the scheduler does before switching away), then scribble
 * over the worker's scratch buffers (as other connections would use them
 * meanwhile) and resume at once with the next input segment. The library
 * is built into this file (the fuzz wiring links no libtern).
 *
 * Invariants: no crash or sanitizer report, no leak; the exchange returns;
 * the output is a sequence of well-formed HTTP/1.1 responses (status line,
 * exactly one Date, framing consistent with Content-Length or chunked,
 * nothing after the last), whole unless an output failure was scripted,
 * and then every response serialised was delivered; at most one final
 * response per request and at most one 100 Continue per request. */
#define FAKE_TRANSPORT_NO_SCHED 1

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* one translation unit: statics of the same name are renamed apart */
#define is_tchar parse_is_tchar
#define finish parse_finish
#include "http/parse.c"
#undef is_tchar
#undef finish
#include "http/chunked.c"
#include "http/ctx.c"
#include "http/date.c"
#include "http/h1.c"
#include "http/h1_body.c"

#include "http/h1_input.c"
#include "http/h1_output.c"
#include "http/compress.c"
#include "http/response.c"
#include "http/query.c"
#include "http/stream.c"
#include "http/url.c"

/* Streamed request bodies (h1_body_stream.c) need a route that asks for
 * them; this driver has none (no streams_body hook), so the exchange never
 * calls these. h1_body_stream.c's statics clash with h1_body.c's in this
 * one translation unit, hence stubs rather than the file. */
void tern__body_stream_init(tern__body_stream *bs, tern__h1 *x, const tern__http_request *req) {
    (void)bs;
    (void)x;
    (void)req;
    __builtin_trap();
}
int tern__body_stream_finish(tern__body_stream *bs) {
    (void)bs;
    __builtin_trap();
}

#include "../unit/fake_transport.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(int ok) {
    if (!ok) __builtin_trap();
}

/* ---- the runtime the exchange calls, without coroutines ------------------ */

__thread tern__sched *tern__sched_self;
static tern__sched fz_sched;
static tern_coro fz_coro;

uint64_t tern_clock_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}
uint64_t tern_now_ms(void) { return tern_clock_ns() / 1000000ull; }

static void fz_park(void) {
    if (fz_coro.park_hook) fz_coro.park_hook(fz_coro.park_arg);
}
int tern_yield(void) {
    fz_park();
    return 0;
}
int tern_sleep_us(uint64_t us) {
    (void)us;
    fz_park();
    return 0;
}
int tern_sleep(uint64_t ms) { return tern_sleep_us(ms * 1000); }
int tern__transport_nodelay(tern__transport *t) {
    (void)t;
    return 0;
}
void tern__sched_set_park_hook(tern_coro *c, tern__park_hook fn, void *arg) {
    c->park_hook = fn;
    c->park_arg = arg;
}

/* ---- one run ---------------------------------------------------------------- */

typedef enum fz_fault {
    FZ_NONE,
    FZ_READ_ERROR,
    FZ_EOF,
    FZ_WRITE_ERROR,
    FZ_WAIT_TIMEOUT, /* the n-th wait times out (header/body/write deadline) */
    FZ__COUNT,
} fz_fault;

typedef struct fz_run {
    fake_transport f;
    tern__h1 x;
    tern__h1_scratch *scratch;
    unsigned max_headers;
    uint32_t requests;
    unsigned dispatched, rejected, responded, waits;
    unsigned timeout_wait; /* FZ_WAIT_TIMEOUT: which wait fails */
    int wait_failed;
    int short_stream; /* a response ended before its announced length */
    int cur_head;     /* the request being answered is a HEAD */
    unsigned char heads[8192]; /* per final response, in order: to a HEAD? */
} fz_run;

static fz_run *fz_current;

static void scribble(fz_run *r) {
    memset(r->scratch->rbuf, 0xA5, r->scratch->rbuf_size);
    memset(r->scratch->wbuf.data, 'Z', r->scratch->wbuf.cap);
    memset(r->scratch->hdrs, 0xA5, r->max_headers * sizeof *r->scratch->hdrs);
}

static void fz_park_hook(void *arg) {
    fz_run *r = arg;
    tern__h1_park_hook(&r->x);
    scribble(r);
}

static int fz_wait(void *waiter, uint32_t events, uint64_t deadline_ns) {
    fake_transport *f = waiter;
    fz_run *r = fz_current;
    r->waits++;
    fz_park();
    if (r->timeout_wait && r->waits == r->timeout_wait) {
        r->wait_failed = 1;
        return deadline_ns ? -ETIMEDOUT : -ECANCELED;
    }
    if (r->waits > 100000) {
        r->wait_failed = 1;
        return -ECANCELED;
    }
    if (events & EPOLLOUT) return 0;
    if (fake_deliver(f) || (f->flags & TERN__T_READABLE)) return 0;
    /* nothing more will come: a deadline passes, or the connection is
     * cancelled (drain) when there is none */
    r->wait_failed = 1;
    return deadline_ns ? -ETIMEDOUT : -ECANCELED;
}

static void dispatch(void *drv, tern__h1 *x, tern_ctx *ctx) {
    fz_run *r = drv;
    (void)x;
    r->dispatched++;
    r->cur_head = tern_req_method(ctx) == TERN_HEAD;
    const char *path = tern_req_path(ctx);
    if (strcmp(path, "/echo") == 0) {
        tern_str body = tern_req_body(ctx);
        tern_resp_set_body(ctx, body.ptr, body.len);
    } else if (strcmp(path, "/stream") == 0) {
        tern_resp_stream_write(ctx, "one", 3);
        tern_sleep(1);
        tern_resp_stream_write(ctx, "two", 3);
    } else if (strcmp(path, "/length") == 0) {
        /* announced length; ?short sends fewer bytes (the close tells) */
        tern_resp_stream_start(ctx, 6);
        tern_resp_stream_write(ctx, "abc", 3);
        if (tern_req_query(ctx, "short"))
            r->short_stream = 1;
        else
            tern_resp_stream_write(ctx, "def", 3);
    } else if (strcmp(path, "/park") == 0) {
        tern_sleep(1);
        tern_resp_set_body(ctx, "parked", 6);
    } else if (strcmp(path, "/status") == 0) {
        const char *code = tern_req_query(ctx, "code");
        tern_resp_set_status(ctx, code ? atoi(code) : 200);
        tern_resp_set_body(ctx, "s", 1);
    } else if (strcmp(path, "/big") == 0) {
        /* over the inline limit: written from where it is */
        static char big[40000];
        if (!big[0]) memset(big, 'b', sizeof big);
        tern_resp_set_body_static(ctx, big, sizeof big);
    } else if (strcmp(path, "/header") == 0) {
        const char *v = tern_req_header(ctx, "x");
        tern_resp_set_header(ctx, "Date", "Mon, 01 Jan 2024 00:00:00 GMT");
        tern_resp_set_body(ctx, v ? v : "-", v ? strlen(v) : 1);
    } else {
        tern_resp_set_body(ctx, "hello", 5);
    }
}

static void responded(void *drv, int status, uint64_t ns) {
    (void)status;
    (void)ns;
    fz_run *r = drv;
    if (r->responded < sizeof r->heads) r->heads[r->responded] = (unsigned char)r->cur_head;
    r->cur_head = 0;
    r->responded++;
}

static void rejected(void *drv, int status) {
    (void)status;
    ((fz_run *)drv)->rejected++;
}

static const tern__h1_hooks fz_hooks = {.dispatch = dispatch, .responded = responded, .rejected = rejected};

/* Reads the output back: well-formed responses, nothing else. */
static void check_output(fz_run *r, int may_truncate) {
    const char *p = r->f.out;
    size_t left = r->f.out_len;
    unsigned finals = 0, interim = 0;
    while (left) {
        fake_response resp;
        size_t used = 0;
        const char *why;
        int head = finals < r->responded && finals < sizeof r->heads && r->heads[finals];
        fake_parse pr = fake_parse_response(p, left, head, &resp, &used, &why);
        if (pr != FAKE_PARSE_OK) {
            /* a HEAD answer carries Content-Length without a body; a
             * refusal (the last answer) does not say if it was one */
            fake_response h;
            size_t hused = 0;
            const char *hwhy;
            if (fake_parse_response(p, left, 1, &h, &hused, &hwhy) == FAKE_PARSE_OK && hused == left) {
                fake_response_free(&h);
                finals++;
                break;
            }
            if (pr == FAKE_PARSE_BAD) fprintf(stderr, "bad response (%s) at %zu\n", why, r->f.out_len - left);
            check(pr == FAKE_PARSE_INCOMPLETE && may_truncate);
            break;
        }
        if (resp.status < 200) {
            check(resp.status == 100);
            interim++;
        } else {
            finals++;
        }
        fake_response_free(&resp);
        p += used;
        left -= used;
    }
    /* nothing went wrong on the way out: every answer serialised arrived */
    if (!may_truncate) check(finals == r->responded);
    unsigned requests = r->requests + r->rejected;
    check(finals <= requests);
    /* + 1: a 100 Continue may go out for a request whose body then
     * breaks off (it is never counted as a request) */
    check(interim <= requests + 1);
    check(finals <= r->responded);
}

static tern__h1_scratch fz_scratch;
static unsigned fz_scratch_headers;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    if (size < 8) return 0;
    const uint8_t *sched = data;
    const char *in = (const char *)data + 8;
    size_t len = size - 8;

    tern__h1_config cfg = {
        .limits = {.max_head = 16384, .max_target = 8192, .max_headers = 100},
        .max_body = 1 << 20,
        .header_timeout_ms = 10000,
        .body_timeout_ms = 10000,
        .write_timeout_ms = 10000,
        .server_name = "tern",
        .server_name_len = 4,
    };
    if (sched[7] & 1) cfg.max_body = 16;
    if (sched[7] & 2) cfg.limits.max_head = 64;
    if (sched[7] & 4) cfg.limits.max_headers = 2;
    if (sched[7] & 8) cfg.header_timeout_ms = cfg.body_timeout_ms = cfg.write_timeout_ms = 0;
    if (!fz_scratch.rbuf) {
        fz_scratch_headers = 100;
        if (tern__h1_scratch_init(&fz_scratch, fz_scratch_headers) < 0) abort();
        tern__sched_self = &fz_sched;
        fz_sched.current = &fz_coro;
    }

    fz_run *r = calloc(1, sizeof *r);
    fz_current = r;
    r->scratch = &fz_scratch;
    r->max_headers = fz_scratch_headers;
    fake_init(&r->f, in, len, (fake_in_mode)(sched[0] % FAKE_IN_CUTS), (fake_out_mode)(sched[1] % FAKE_OUT__COUNT),
              (uint64_t)sched[2] << 8 | sched[3]);
    r->f.t.wait = fz_wait;
    fz_fault fault = (fz_fault)(sched[4] % FZ__COUNT);
    size_t pos = (size_t)sched[5] << 8 | sched[6];
    switch (fault) {
    case FZ_READ_ERROR: r->f.err_at = len ? pos % (len + 1) : 0; break;
    case FZ_EOF: r->f.eof_at = len ? pos % (len + 1) : 0; break;
    case FZ_WRITE_ERROR: r->f.out_err_at = pos; break;
    case FZ_WAIT_TIMEOUT: r->timeout_wait = 1 + pos % 64; break;
    default: break;
    }

    tern__h1_outcome out = TERN__H1_IDLE;
    for (unsigned serves = 0;; serves++) {
        check(serves < 100000);
        r->x.t = r->f.t;
        tern__h1_init(&r->x, &cfg, &fz_hooks, r, &fz_scratch, &fz_coro);
        r->x.requests = &r->requests;
        tern__sched_set_park_hook(&fz_coro, fz_park_hook, r);
        out = tern__h1_serve(&r->x);
        tern__sched_set_park_hook(&fz_coro, NULL, NULL);
        tern__h1_release(&r->x);
        check(r->x.in == NULL && r->x.out == NULL);
        scribble(r);
        if (out == TERN__H1_CLOSED) break;
        /* idle: the next edge, if anything more comes */
        if (!(r->f.flags & TERN__T_READABLE) && !fake_deliver(&r->f)) break;
    }
    /* a reset drops what was not written yet, possibly mid-response */
    int may_truncate = fault == FZ_WRITE_ERROR || fault == FZ_READ_ERROR || r->wait_failed || r->short_stream;
    /* the end of the stream inside a request flushes the answers already
     * owed (fixed in h1.c; this input class found it): no truncation */
    check_output(r, may_truncate);
    fake_free(&r->f);
    free(r);
    fz_current = NULL;
    return 0;
}
