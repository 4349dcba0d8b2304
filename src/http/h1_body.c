/* Request bodies: Content-Length and chunked (RFC 9112 §6, §7.1), with
 * 100-continue, the body timeout and the minimum body rate. */
#include <errno.h>
#include <string.h>

#include "http/chunked.h"
#include "http/h1.h"

/* Chunked framing may cost at most this much plus CHUNK_OVERHEAD_FACTOR
 * times the decoded bytes: a body of 1-byte chunks (5 bytes of framing per
 * byte) passes; 65,536 chunks of one byte with 4 KB extensions each (250
 * MiB of framing for 64 KiB of body) are refused with 400 long before
 * their framing is all read. Memory never holds more than one read of
 * framing either way: consumed framing is dropped as the body decodes. */
#define CHUNK_OVERHEAD_BASE (64u * 1024u)
#define CHUNK_OVERHEAD_FACTOR 8u

static const char CONTINUE[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* The interim 100 (RFC 9110 §10.1.1) goes out before we wait for a body
 * the client holds back until it sees it. */
static int send_continue(tern__h1 *x) {
    char *p = tern__h1_reserve(x, sizeof CONTINUE - 1);
    if (!p) return -ENOMEM;
    memcpy(p, CONTINUE, sizeof CONTINUE - 1);
    tern__h1_commit(x, sizeof CONTINUE - 1);
    return tern__h1_flush(x);
}

/* A body that trickles in (each read within body_timeout_ms, so the idle
 * timeout never fires) is still cut off once, past a grace period of
 * body_timeout_ms, its average rate stays under min_body_rate. */
static int too_slow(const tern__h1_config *cfg, uint64_t t0, size_t got) {
    if (!cfg->min_body_rate || !cfg->body_timeout_ms) return 0;
    uint64_t elapsed = tern_clock_ns() - t0;
    if (elapsed < (uint64_t)cfg->body_timeout_ms * 1000000ull) return 0;
    return (uint64_t)got * 1000000000ull / elapsed < cfg->min_body_rate;
}

static tern__h1_read reject(int *status, int code) {
    *status = code;
    return TERN__H1_READ_REJECT;
}

static tern__h1_read read_length(tern__h1 *x, const tern__http_request *req, size_t head_len, int expect,
                                 tern__h1_body *body, int *status) {
    const tern__h1_config *cfg = x->cfg;
    if (req->content_length > cfg->max_body) return reject(status, 413);
    size_t need = head_len + (size_t)req->content_length;
    if (tern__h1_in_avail(x) < need) {
        if (expect && send_continue(x) < 0) return TERN__H1_READ_BROKEN;
        uint64_t t0 = tern_clock_ns();
        size_t have0 = tern__h1_in_avail(x);
        while (tern__h1_in_avail(x) < need) {
            int r = tern__h1_read_more(x, x->in_start + need, tern__h1_deadline_after(cfg->body_timeout_ms));
            if (r == -ETIMEDOUT) return reject(status, 408);
            if (r < 0) return TERN__H1_READ_BROKEN;
            if (too_slow(cfg, t0, tern__h1_in_avail(x) - have0)) return reject(status, 408);
        }
    }
    body->data = x->in + x->in_start + head_len;
    body->len = (size_t)req->content_length;
    body->consumed = need;
    return TERN__H1_READ_OK;
}

/* Decodes in place right after the head: decoded bytes at `out`, framing
 * not yet decoded after them, moved down after every pass. */
static tern__h1_read read_chunked(tern__h1 *x, size_t head_len, int expect, tern__h1_body *body,
                                  int *status) {
    const tern__h1_config *cfg = x->cfg;
    if (!x->in_owned && tern__h1_in_make_owned(x, head_len + 4096) < 0) return reject(status, 503);
    tern__chunked dec;
    tern__chunked_init(&dec, cfg->max_body);
    size_t out = x->in_start + head_len; /* decoded bytes go here */
    size_t raw = out;                    /* next undecoded input byte */
    size_t decoded = 0;
    uint64_t framing = 0;
    int sent_continue = 0;
    uint64_t t0 = tern_clock_ns();
    for (;;) {
        size_t used = 0, produced = 0;
        tern__chunked_result r = tern__chunked_decode(&dec, x->in + raw, x->in_len - raw, &used,
                                                      x->in + out + decoded, &produced);
        raw += used;
        decoded += produced;
        framing += used - produced;
        if (r == TERN__CHUNKED_DONE) break;
        if (r == TERN__CHUNKED_TOO_LARGE) return reject(status, 413);
        if (r == TERN__CHUNKED_BAD) return reject(status, 400);
        if (framing > CHUNK_OVERHEAD_BASE + (uint64_t)CHUNK_OVERHEAD_FACTOR * decoded)
            return reject(status, 400);
        /* drop the framing just decoded: the buffer holds the body so far
         * and at most one read of undecoded input */
        size_t rest = x->in_len - raw;
        memmove(x->in + out + decoded, x->in + raw, rest);
        raw = out + decoded;
        x->in_len = raw + rest;
        if (expect && !sent_continue) {
            if (send_continue(x) < 0) return TERN__H1_READ_BROKEN;
            sent_continue = 1;
        }
        /* read_more may move the buffer: offsets stay valid */
        int rr = tern__h1_read_more(x, 0, tern__h1_deadline_after(cfg->body_timeout_ms));
        if (rr == -ETIMEDOUT) return reject(status, 408);
        if (rr < 0) return TERN__H1_READ_BROKEN;
        if (too_slow(cfg, t0, decoded + (x->in_len - raw))) return reject(status, 408);
    }
    body->data = x->in + out; /* owned buffer: stable until the next request */
    body->len = decoded;
    body->consumed = raw - x->in_start;
    return TERN__H1_READ_OK;
}

tern__h1_read tern__h1_read_body(tern__h1 *x, const tern__http_request *req, size_t head_len,
                                 tern__h1_body *body, int *status) {
    *body = (tern__h1_body){.data = NULL, .len = 0, .consumed = head_len, .heap = NULL};
    int expect = (req->flags & TERN_REQ_EXPECT_CONTINUE) && req->minor == 1;
    if (req->flags & TERN_REQ_CHUNKED) return read_chunked(x, head_len, expect, body, status);
    if ((req->flags & TERN_REQ_HAS_LENGTH) && req->content_length > 0)
        return read_length(x, req, head_len, expect, body, status);
    return TERN__H1_READ_OK;
}
