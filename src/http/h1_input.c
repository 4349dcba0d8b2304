/* Input of an HTTP/1.1 exchange. A keep-alive request is read into the
 * worker's scratch buffer and, when it is complete there, served from it
 * without a copy; input that must outlive a park (a partial request, a
 * body still arriving, pipelined requests behind a parked handler) moves
 * to a buffer of the exchange's own. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>

#include "http/h1.h"

int tern__h1_in_make_owned(tern__h1 *x, size_t min_cap) {
    size_t avail = tern__h1_in_avail(x);
    size_t cap = avail + 4096;
    if (cap < min_cap) cap = min_cap;
    char *p = malloc(cap);
    if (!p) return -ENOMEM;
    if (avail) memcpy(p, x->in + x->in_start, avail);
    x->in = p;
    x->in_start = 0;
    x->in_len = avail;
    x->in_cap = cap;
    x->in_owned = 1;
    return 0;
}

ssize_t tern__h1_read_some(tern__h1 *x) {
    tern__h1_scratch *s = x->scratch;
    ssize_t n = tern__transport_read(&x->t, s->rbuf, s->rbuf_size);
    if (n > 0) {
        x->in = s->rbuf;
        x->in_start = 0;
        x->in_len = (size_t)n;
        x->in_owned = 0;
    }
    return n;
}

int tern__h1_read_more(tern__h1 *x, size_t need_total, uint64_t deadline_ns) {
    if (!x->in_owned && tern__h1_in_make_owned(x, need_total) < 0) return -ENOMEM;
    size_t want = need_total > x->in_len + 1024 ? need_total : x->in_len + 1024;
    if (x->in_cap < want) {
        size_t cap = x->in_cap * 2 > want ? x->in_cap * 2 : want;
        char *p = realloc(x->in, cap);
        if (!p) return -ENOMEM;
        x->in = p;
        x->in_cap = cap;
    }
    for (;;) {
        ssize_t n = tern__transport_read(&x->t, x->in + x->in_len, x->in_cap - x->in_len);
        if (n > 0) {
            x->in_len += (size_t)n;
            return 0;
        }
        if (n == 0) return -EPIPE;
        if (n != -EAGAIN) return (int)n;
        int r = tern__h1_wait(x, EPOLLIN, deadline_ns);
        if (r < 0) return r;
    }
}
