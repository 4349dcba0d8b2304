/* Open-loop HTTP/1.1 load generator for the overload scenario of `make bench`.
 *
 * wrk is closed-loop: each connection sends its next request only after the
 * previous answer, so a slow server slows the client down and the offered
 * load falls with it. This one sends GET requests at a fixed rate whatever
 * the server does: request i is due at t0 + i / rate. It sends each due
 * request on an idle keep-alive connection (one request in flight per
 * connection, no pipelining, so a fast 503 never waits behind a slow 200 on
 * the same connection); if all connections are busy the request waits in a
 * client FIFO and is sent as soon as one frees up. Latency is measured from
 * the due time, not the send time, so neither a late client wake-up nor the
 * FIFO hides server delay (no coordinated omission); how late the client
 * sent is reported separately (send_lag) so a slow client is visible, and each
 * class's latency is also given from the actual send ("wire_").
 *
 * Build: cc -O2 -o loadgen bench/loadgen.c
 * Usage: loadgen --port P [--host 127.0.0.1] [--path /] --rate R --conns K
 *                --seconds S [--grace-ms 2000] [--dump FILE]
 *
 * Output: one line per second (by due time: requests due, 200s, 503s,
 * others, p99 of the 200s and of the 503s in µs), then one summary line of tab-separated
 * key=value pairs (first key "offered_rps"). Latencies in µs, nearest-rank
 * percentiles. For 200 answers carrying a JSON "work_us":N field (the demo's
 * /adaptive), the distinct N values are counted: the handler does less work
 * under load, and the count shows how much of it ran degraded. --dump writes
 * every answer (due time, status, latencies, work_us, load_level) to FILE. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define RBUF 16384
#define MAX_WORK_VALUES 8

typedef struct conn {
    int fd;
    int busy;          /* a request is in flight */
    int connecting;    /* non-blocking connect not finished yet */
    uint64_t due_ns;   /* due time of the request in flight */
    uint64_t sent_ns;  /* when it was actually sent */
    size_t len;        /* bytes in buf */
    char buf[RBUF];
} conn;

typedef struct sample {
    uint64_t due_ns;   /* relative to start */
    uint32_t lat_us;   /* due time to complete response */
    uint32_t wire_us;  /* actual send to complete response (client lateness excluded) */
    uint16_t status;
    int32_t work_us;   /* "work_us" of a 200's body, -1 if absent */
    int16_t level;     /* "load_level" of a 200's body, -1 if absent */
} sample;

static struct {
    const char *host, *path;
    int port, conns;
    double rate, seconds;
    long grace_ms;
    const char *dump;
} opt = {"127.0.0.1", "/", 0, 64, 0, 10, 2000, NULL};

static char request[1024];
static size_t request_len;
static int epfd;
static conn *cs;
static sample *samples;
static size_t nsamples, capsamples;
static uint64_t *fifo;              /* due times of requests waiting for a connection */
static size_t fifo_head, fifo_tail, fifo_cap;
static uint64_t t_start;
static uint64_t *send_lag;          /* ns between due time and actual send, per request */
static size_t nsent;
static unsigned long reconnects, conn_errors, parse_errors, fifo_waits;

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static void *xrealloc(void *p, size_t n) {
    p = realloc(p, n);
    if (!p) die("realloc");
    return p;
}

static int open_conn(conn *c) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    /* small requests must leave at once, not wait for the previous ACK */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1) {
        fprintf(stderr, "loadgen: bad IPv4 address %s\n", opt.host);
        exit(2);
    }
    c->connecting = 0;
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        if (errno != EINPROGRESS) {
            close(fd);
            return -1;
        }
        c->connecting = 1;
    }
    c->fd = fd;
    c->busy = 0;
    c->len = 0;
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");
    return 0;
}

static uint32_t us_between(uint64_t from, uint64_t to) {
    uint64_t d = to > from ? (to - from) / 1000 : 0;
    return d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
}

static void record(uint64_t due_ns, uint64_t sent_ns, uint64_t done_ns, int status,
                   int work_us, int level) {
    if (nsamples == capsamples) {
        capsamples = capsamples ? capsamples * 2 : 65536;
        samples = xrealloc(samples, capsamples * sizeof *samples);
    }
    samples[nsamples++] = (sample){.due_ns = due_ns - t_start,
                                   .lat_us = us_between(due_ns, done_ns),
                                   .wire_us = us_between(sent_ns, done_ns),
                                   .status = (uint16_t)status,
                                   .work_us = work_us,
                                   .level = (int16_t)level};
}

/* A failed connection: its request (if any) counts as status 0 (error),
 * and a new connection replaces it so the pool keeps K connections. */
static void conn_failed(conn *c, uint64_t now) {
    if (c->busy) record(c->due_ns, c->sent_ns, now, 0, -1, -1);
    epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    conn_errors++;
    reconnects++;
    if (open_conn(c) < 0) c->fd = -1;
}

static int send_on(conn *c, uint64_t due_ns) {
    ssize_t n = send(c->fd, request, request_len, MSG_NOSIGNAL);
    if (n != (ssize_t)request_len) return -1; /* a fresh socket takes 100 bytes whole */
    c->busy = 1;
    c->due_ns = due_ns;
    if (nsent % 65536 == 0) send_lag = xrealloc(send_lag, (nsent + 65536) * sizeof *send_lag);
    uint64_t now = now_ns();
    c->sent_ns = now;
    send_lag[nsent++] = now > due_ns ? now - due_ns : 0;
    return 0;
}

static void fifo_push(uint64_t due) {
    if (fifo_tail - fifo_head == fifo_cap) {
        size_t ncap = fifo_cap ? fifo_cap * 2 : 4096;
        uint64_t *n = xrealloc(NULL, ncap * sizeof *n);
        for (size_t i = fifo_head; i < fifo_tail; i++) n[i - fifo_head] = fifo[i % fifo_cap];
        free(fifo);
        fifo = n;
        fifo_tail -= fifo_head;
        fifo_head = 0;
        fifo_cap = ncap;
    }
    fifo[fifo_tail++ % fifo_cap] = due;
}

/* A connection became idle: give it the oldest waiting request, if any. */
static void conn_idle(conn *c) {
    if (fifo_head == fifo_tail || c->connecting) return;
    uint64_t due = fifo[fifo_head % fifo_cap];
    if (send_on(c, due) == 0) fifo_head++;
    else conn_failed(c, now_ns());
}

static void dispatch(uint64_t due) {
    /* round robin from the last connection used spreads the load evenly */
    static int next;
    for (int k = 0; k < opt.conns; k++) {
        conn *c = &cs[(next + k) % opt.conns];
        if (c->fd >= 0 && !c->busy && !c->connecting) {
            next = (int)(c - cs) + 1;
            if (send_on(c, due) == 0) return;
            conn_failed(c, now_ns());
        }
    }
    fifo_waits++;
    fifo_push(due);
}

/* Parses complete responses in c->buf. Returns 1 if the server closes the
 * connection after this one, 0 to keep it, -1 on a malformed answer. */
static int parse_response(conn *c, uint64_t now) {
    for (;;) {
        if (!c->busy) return c->len ? -1 : 0; /* bytes nobody asked for */
        char *end = memmem(c->buf, c->len, "\r\n\r\n", 4);
        if (!end) return c->len == RBUF ? -1 : 0;
        size_t head = (size_t)(end - c->buf) + 4;
        if (c->len < 12 || memcmp(c->buf, "HTTP/1.", 7) != 0) return -1;
        int status = atoi(c->buf + 9);
        long clen = -1;
        int close_after = 0;
        for (char *p = memchr(c->buf, '\n', head); p && p < end;
             p = memchr(p, '\n', (size_t)(end - p))) {
            p++;
            if (strncasecmp(p, "content-length:", 15) == 0) clen = strtol(p + 15, NULL, 10);
            else if (strncasecmp(p, "connection:", 11) == 0) {
                const char *v = p + 11;
                while (*v == ' ') v++;
                if (strncasecmp(v, "close", 5) == 0) close_after = 1;
            }
        }
        if (clen < 0) return -1; /* the demo always sends Content-Length */
        if (head + (size_t)clen > RBUF) return -1;
        if (c->len < head + (size_t)clen) return 0;
        int work = -1, level = -1;
        if (status == 200) {
            char *w = memmem(c->buf + head, (size_t)clen, "\"work_us\":", 10);
            if (w) work = atoi(w + 10);
            w = memmem(c->buf + head, (size_t)clen, "\"load_level\":", 13);
            if (w) level = atoi(w + 13);
        }
        record(c->due_ns, c->sent_ns, now, status, work, level);
        c->busy = 0;
        memmove(c->buf, c->buf + head + clen, c->len - head - (size_t)clen);
        c->len -= head + (size_t)clen;
        if (close_after) return 1;
        conn_idle(c);
    }
}

static void on_event(conn *c, uint32_t events) {
    uint64_t now = now_ns();
    if (c->connecting) {
        if (events & (EPOLLERR | EPOLLHUP)) {
            conn_failed(c, now);
            return;
        }
        if (events & EPOLLOUT) {
            c->connecting = 0;
            conn_idle(c);
        }
    }
    if (!(events & (EPOLLIN | EPOLLERR | EPOLLHUP))) return;
    for (;;) {
        ssize_t n = recv(c->fd, c->buf + c->len, RBUF - c->len, 0);
        if (n > 0) {
            c->len += (size_t)n;
            int r = parse_response(c, now);
            if (r < 0) {
                parse_errors++;
                conn_failed(c, now);
                return;
            }
            if (r > 0) { /* server asked to close: reconnect, no error */
                epoll_ctl(epfd, EPOLL_CTL_DEL, c->fd, NULL);
                close(c->fd);
                reconnects++;
                if (open_conn(c) < 0) c->fd = -1;
                return;
            }
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && errno == EAGAIN) return;
        conn_failed(c, now); /* EOF or error */
        return;
    }
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static int cmp_u64(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return (x > y) - (x < y);
}

/* nearest rank: the smallest value with at least p of the samples at or below it */
static uint32_t pct(const uint32_t *v, size_t n, double p) {
    if (!n) return 0;
    size_t k = (size_t)(p * (double)n + 0.999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}

/* sorted latencies (wire: from the actual send) of the samples with this
 * status (status -1: every status other than 200 and 503), within [from,
 * to) due time */
static uint32_t *select_lat(int status, uint64_t from, uint64_t to, int wire, size_t *n) {
    uint32_t *v = xrealloc(NULL, (nsamples + 1) * sizeof *v);
    size_t k = 0;
    for (size_t i = 0; i < nsamples; i++) {
        const sample *s = &samples[i];
        if (s->due_ns < from || s->due_ns >= to) continue;
        int match = status < 0 ? (s->status != 200 && s->status != 503) : s->status == status;
        if (match) v[k++] = wire ? s->wire_us : s->lat_us;
    }
    qsort(v, k, sizeof *v, cmp_u32);
    *n = k;
    return v;
}

static void print_class(const char *name, int status) {
    size_t n;
    uint32_t *v = select_lat(status, 0, UINT64_MAX, 0, &n);
    printf("\t%s_n=%zu", name, n);
    if (n)
        printf("\t%s_min_us=%u\t%s_p50_us=%u\t%s_p90_us=%u\t%s_p99_us=%u\t%s_p999_us=%u"
               "\t%s_max_us=%u",
               name, v[0], name, pct(v, n, 0.5), name, pct(v, n, 0.9), name, pct(v, n, 0.99),
               name, pct(v, n, 0.999), name, v[n - 1]);
    free(v);
    v = select_lat(status, 0, UINT64_MAX, 1, &n);
    if (n) printf("\t%s_wire_p50_us=%u\t%s_wire_p99_us=%u", name, pct(v, n, 0.5), name,
                  pct(v, n, 0.99));
    free(v);
}

static void usage(void) {
    fprintf(stderr, "usage: loadgen --port P [--host 127.0.0.1] [--path /] --rate R "
                    "[--conns 64] [--seconds 10] [--grace-ms 2000] [--dump FILE]\n");
    exit(2);
}

int main(int argc, char **argv) {
    for (int i = 1; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (!strcmp(a, "--host")) opt.host = v;
        else if (!strcmp(a, "--port")) opt.port = atoi(v);
        else if (!strcmp(a, "--path")) opt.path = v;
        else if (!strcmp(a, "--rate")) opt.rate = atof(v);
        else if (!strcmp(a, "--conns")) opt.conns = atoi(v);
        else if (!strcmp(a, "--seconds")) opt.seconds = atof(v);
        else if (!strcmp(a, "--grace-ms")) opt.grace_ms = atol(v);
        else if (!strcmp(a, "--dump")) opt.dump = v;
        else usage();
    }
    if (opt.port <= 0 || opt.rate <= 0 || opt.conns <= 0 || opt.seconds <= 0) usage();
    int rl = snprintf(request, sizeof request, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", opt.path,
                      opt.host, opt.port);
    if (rl < 0 || (size_t)rl >= sizeof request) usage();
    request_len = (size_t)rl;
    signal(SIGPIPE, SIG_IGN);

    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0) die("epoll_create1");
    cs = calloc((size_t)opt.conns, sizeof *cs);
    if (!cs) die("calloc");
    for (int k = 0; k < opt.conns; k++)
        if (open_conn(&cs[k]) < 0) die("connect");

    /* wait until every connection is up, so connecting is not measured */
    struct epoll_event evs[256];
    uint64_t deadline = now_ns() + 5000000000ull;
    for (;;) {
        int pending = 0;
        for (int k = 0; k < opt.conns; k++) pending += cs[k].connecting;
        if (!pending) break;
        if (now_ns() > deadline) {
            fprintf(stderr, "loadgen: %d connections not up after 5 s\n", pending);
            return 2;
        }
        int n = epoll_wait(epfd, evs, 256, 100);
        for (int i = 0; i < n; i++) on_event(evs[i].data.ptr, evs[i].events);
    }

    uint64_t total = (uint64_t)(opt.rate * opt.seconds + 0.5);
    double interval = 1e9 / opt.rate;
    t_start = now_ns();
    uint64_t t_end = t_start + (uint64_t)(opt.seconds * 1e9);
    uint64_t issued = 0;
    uint64_t grace_end = 0;
    for (;;) {
        uint64_t now = now_ns();
        while (issued < total) {
            uint64_t due = t_start + (uint64_t)((double)issued * interval);
            if (due > now) break;
            dispatch(due);
            issued++;
        }
        size_t outstanding = fifo_tail - fifo_head;
        for (int k = 0; k < opt.conns; k++) outstanding += cs[k].busy;
        if (issued == total) {
            if (!outstanding) break;
            if (!grace_end)
                grace_end = (now > t_end ? now : t_end) + (uint64_t)opt.grace_ms * 1000000ull;
            if (now >= grace_end) break;
        }
        /* sleep until the next due time (ns resolution: at 3,000 req/s
         * requests are 333 µs apart, finer than epoll_wait's 1 ms) */
        uint64_t wake = issued < total ? t_start + (uint64_t)((double)issued * interval)
                                       : grace_end;
        uint64_t wait = wake > now ? wake - now : 0;
        struct timespec ts = {.tv_sec = (time_t)(wait / 1000000000ull),
                              .tv_nsec = (long)(wait % 1000000000ull)};
        int n = epoll_pwait2(epfd, evs, 256, &ts, NULL);
        if (n < 0 && errno != EINTR) die("epoll_pwait2");
        for (int i = 0; i < n; i++) on_event(evs[i].data.ptr, evs[i].events);
    }
    uint64_t t_stop = now_ns();

    /* requests never answered within the grace period */
    unsigned long unanswered = (unsigned long)(fifo_tail - fifo_head);
    for (int k = 0; k < opt.conns; k++) unanswered += (unsigned long)cs[k].busy;

    if (opt.dump) {
        FILE *f = fopen(opt.dump, "w");
        if (!f) die(opt.dump);
        fprintf(f, "# due_us status latency_us wire_us work_us load_level\n");
        for (size_t i = 0; i < nsamples; i++)
            fprintf(f, "%llu %u %u %u %d %d\n", (unsigned long long)(samples[i].due_ns / 1000),
                    samples[i].status, samples[i].lat_us, samples[i].wire_us, samples[i].work_us,
                    samples[i].level);
        fclose(f);
    }

    /* per-second timeline by due time */
    unsigned secs = (unsigned)(opt.seconds + 0.999);
    printf("# second due ok shed other ok_p99_us shed_p99_us\n");
    for (unsigned s = 0; s < secs; s++) {
        uint64_t from = (uint64_t)s * 1000000000ull, to = from + 1000000000ull;
        size_t nok, nshed, nother;
        uint32_t *ok = select_lat(200, from, to, 0, &nok);
        uint32_t *sh = select_lat(503, from, to, 0, &nshed);
        uint32_t *ot = select_lat(-1, from, to, 0, &nother);
        uint64_t due_lo = (uint64_t)((double)from / interval + 0.999999);
        uint64_t due_hi = (uint64_t)((double)to / interval + 0.999999);
        if (due_hi > total) due_hi = total;
        printf("t=%u\tdue=%llu\tok=%zu\tshed=%zu\tother=%zu\tok_p99_us=%u\tshed_p99_us=%u\n", s,
               (unsigned long long)(due_hi > due_lo ? due_hi - due_lo : 0), nok, nshed, nother,
               pct(ok, nok, 0.99), pct(sh, nshed, 0.99));
        free(ok);
        free(sh);
        free(ot);
    }

    size_t n200 = 0, n503 = 0, nother = 0;
    for (size_t i = 0; i < nsamples; i++) {
        if (samples[i].status == 200) n200++;
        else if (samples[i].status == 503) n503++;
        else nother++;
    }
    /* distinct work_us values of the 200s */
    int wv[MAX_WORK_VALUES];
    size_t wc[MAX_WORK_VALUES], nw = 0;
    for (size_t i = 0; i < nsamples; i++) {
        if (samples[i].status != 200 || samples[i].work_us < 0) continue;
        size_t j = 0;
        while (j < nw && wv[j] != samples[i].work_us) j++;
        if (j == nw) {
            if (nw == MAX_WORK_VALUES) continue;
            wv[nw] = samples[i].work_us;
            wc[nw++] = 0;
        }
        wc[j]++;
    }
    qsort(send_lag, nsent, sizeof *send_lag, cmp_u64);
    double span = (double)(t_end - t_start) / 1e9;
    printf("offered_rps=%.1f\trate=%.1f\tconns=%d\tseconds=%.1f\tdue=%llu\tsent=%zu"
           "\tanswered=%zu\tok=%zu\tshed=%zu\tother=%zu\tunanswered=%lu\tok_rps=%.1f"
           "\tanswered_rps=%.1f",
           (double)total / span, opt.rate, opt.conns, span, (unsigned long long)total, nsent,
           nsamples, n200, n503, nother, unanswered, (double)n200 / span,
           (double)nsamples / span);
    print_class("ok", 200);
    print_class("shed", 503);
    print_class("other", -1);
    printf("\tconn_errors=%lu\treconnects=%lu\tparse_errors=%lu\tclient_fifo_waits=%lu",
           conn_errors, reconnects, parse_errors, fifo_waits);
    if (nsent)
        printf("\tsend_lag_p99_us=%llu\tsend_lag_max_us=%llu",
               (unsigned long long)(send_lag[(nsent * 99 + 99) / 100 - 1] / 1000),
               (unsigned long long)(send_lag[nsent - 1] / 1000));
    printf("\tok_work_us=");
    for (size_t j = 0; j < nw; j++) printf("%s%d:%zu", j ? "," : "", wv[j], wc[j]);
    if (!nw) printf("-");
    printf("\twall_seconds=%.2f\n", (double)(t_stop - t_start) / 1e9);
    return 0;
}
