/* Output of an HTTP/1.1 exchange: responses are serialised into the
 * worker's scratch batch, so pipelined responses leave in one write; when
 * the serving coroutine parks, what is still unsent moves to a stash of the
 * exchange's own (the park hook), and the next write sends stash, batch
 * and any large body in one writev, in that order. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "http/h1.h"
#include "rt/sched.h"

size_t tern__h1_pending(const tern__h1 *x) {
    return (x->out_len - x->out_off) + (x->scratch->wbuf.len - x->scratch->wbuf.off);
}

static int stash_reserve(tern__h1 *x, size_t n) {
    if (x->out_cap - x->out_len >= n) return 0;
    if (x->out_off) {
        memmove(x->out, x->out + x->out_off, x->out_len - x->out_off);
        x->out_len -= x->out_off;
        x->out_off = 0;
        if (x->out_cap - x->out_len >= n) return 0;
    }
    size_t cap = x->out_cap ? x->out_cap * 2 : 4096;
    while (cap - x->out_len < n) cap *= 2;
    char *p = realloc(x->out, cap);
    if (!p) return -ENOMEM;
    x->out = p;
    x->out_cap = cap;
    return 0;
}

/* Input that still lives in the scratch read buffer becomes the exchange's
 * own; responses still in the scratch batch go out now if the socket takes
 * them (earlier pipelined answers should not wait for a parked handler),
 * and whatever is left moves to the stash. */
void tern__h1_park_hook(void *arg) {
    tern__h1 *x = arg;
    tern__wbuf *wb = &x->scratch->wbuf;
    if (!x->in_owned) {
        if (x->in && tern__h1_in_avail(x)) {
            if (tern__h1_in_make_owned(x, 0) < 0) x->lost = 1;
        } else {
            x->in = NULL;
            x->in_start = x->in_len = 0;
        }
    }
    size_t pending = wb->len - wb->off;
    if (pending && x->out_len == x->out_off && !x->writing) {
        struct iovec iov = {wb->data + wb->off, pending};
        ssize_t n = tern__transport_writev(&x->t, &iov, 1, 0);
        if (n > 0) {
            wb->off += (size_t)n;
            pending -= (size_t)n;
        }
    }
    if (pending) {
        if (stash_reserve(x, pending) == 0) {
            memcpy(x->out + x->out_len, wb->data + wb->off, pending);
            x->out_len += pending;
        } else {
            x->lost = 1;
        }
    }
    wb->off = wb->len = 0;
}

char *tern__h1_reserve(tern__h1 *x, size_t n) {
    tern__wbuf *wb = &x->scratch->wbuf;
    if (wb->cap - wb->len < n) {
        size_t cap = wb->cap ? wb->cap * 2 : 4096;
        while (cap - wb->len < n) cap *= 2;
        char *p = realloc(wb->data, cap);
        if (!p) return NULL;
        wb->data = p;
        wb->cap = cap;
    }
    return wb->data + wb->len;
}

/* Marks `done` bytes as sent, in order: stash, batch, extra. */
static void consume(tern__h1 *x, size_t done, const char **extra, size_t *extra_len) {
    tern__wbuf *wb = &x->scratch->wbuf;
    size_t k = x->out_len - x->out_off;
    if (k) {
        size_t m = done < k ? done : k;
        x->out_off += m;
        done -= m;
        if (x->out_off == x->out_len) x->out_off = x->out_len = 0;
    }
    k = wb->len - wb->off;
    if (k) {
        size_t m = done < k ? done : k;
        wb->off += m;
        done -= m;
        if (wb->off == wb->len) wb->off = wb->len = 0;
    }
    if (*extra_len) {
        *extra += done;
        *extra_len -= done;
    }
}

int tern__h1_write(tern__h1 *x, const char *extra, size_t extra_len) {
    tern__wbuf *wb = &x->scratch->wbuf;
    for (;;) {
        struct iovec iov[3];
        int n = 0;
        size_t total = 0;
        if (x->out_len > x->out_off) iov[n++] = (struct iovec){x->out + x->out_off, x->out_len - x->out_off};
        if (wb->len > wb->off) iov[n++] = (struct iovec){wb->data + wb->off, wb->len - wb->off};
        if (extra_len) iov[n++] = (struct iovec){(void *)extra, extra_len};
        if (n == 0) return 0;
        for (int i = 0; i < n; i++) total += iov[i].iov_len;
        ssize_t r = tern__transport_writev(&x->t, iov, n, 0);
        if (r == -EAGAIN) r = 0;
        if (r < 0) return (int)r;
        consume(x, (size_t)r, &extra, &extra_len);
        if ((size_t)r == total) return 0;
        /* a slow reader is waited for, never cut off, until the write
         * timeout passes with no progress at all */
        x->writing = 1; /* the park hook need not try the full socket again */
        int wr = tern__h1_wait(x, EPOLLOUT, tern__h1_deadline_after(x->cfg->write_timeout_ms));
        x->writing = 0;
        if (wr < 0) return wr;
    }
}

int tern__h1_wait(tern__h1 *x, uint32_t events, uint64_t deadline_ns) {
    if (*x->flags & TERN__H1_KILL) return -ECANCELED;
    int r = tern__transport_wait_io(&x->t, events, deadline_ns);
    if (x->lost) return -ENOMEM;
    return r;
}

uint64_t tern__h1_deadline_after(unsigned ms) {
    return ms ? tern_clock_ns() + (uint64_t)ms * 1000000ull : 0;
}

/* The head (and whatever else is pending) goes out with MSG_MORE, so the
 * kernel puts it in one segment with the file's first bytes. */
static int flush_before_file(tern__h1 *x) {
    tern__wbuf *wb = &x->scratch->wbuf;
    if (x->out_len == x->out_off && wb->len > wb->off) {
        struct iovec iov = {wb->data + wb->off, wb->len - wb->off};
        ssize_t n = tern__transport_writev(&x->t, &iov, 1, 1);
        if (n < 0 && n != -EAGAIN) return (int)n;
        if (n > 0) {
            const char *none = NULL;
            size_t zero = 0;
            consume(x, (size_t)n, &none, &zero);
        }
    }
    return tern__h1_flush(x);
}

int tern__h1_sendfile(tern__h1 *x, int fd, uint64_t offset, uint64_t len) {
    int r = flush_before_file(x);
    if (r < 0) return r;
    off_t off = (off_t)offset;
    while (len) {
        size_t want = len > (1u << 30) ? (1u << 30) : (size_t)len;
        ssize_t n = x->t.ops->sendfile(&x->t, fd, &off, want);
        if (n == 0) return -EPIPE; /* the file shrank under us */
        if (n > 0) {
            len -= (uint64_t)n;
            continue;
        }
        if (n != -EAGAIN) return (int)n;
        x->writing = 1;
        int wr = tern__h1_wait(x, EPOLLOUT, tern__h1_deadline_after(x->cfg->write_timeout_ms));
        x->writing = 0;
        if (wr < 0) return wr;
    }
    return 0;
}
