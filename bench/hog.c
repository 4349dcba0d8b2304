/* Fairness under a pipelining hog (scenario 10 of `make bench`): two modes of
 * one program, run as two separate processes, both pinned to CPU 1 while the
 * server (one worker) is on CPU 0.
 *
 *   hog --port P [--path /plaintext] [--depth 256] [--window W] --seconds S
 *     One keep-alive connection that writes DEPTH pipelined GET requests per
 *     write, non-stop (a new batch as soon as the previous one is in the
 *     socket), while reading the answers, for S seconds. With --window 0 (the
 *     default) it never waits for answers before writing more: only the TCP
 *     buffers bound what is in flight (the hog of
 *     tests/integration/test_fairness.py, at C speed). With --window W it
 *     writes the next batch only while at most W answers would then be owed
 *     (W = DEPTH: one batch in flight, the next written once it is answered).
 *     Prints one line of tab-separated key=value pairs: responses
 *     seen (status lines), 200s, requests written, seconds, responses/s.
 *
 *   probe --port P [--path /plaintext] [--interval-ms 10] --seconds S
 *         [--dump FILE]
 *     An ordinary client on its own keep-alive connection: one GET every
 *     INTERVAL ms (request i due at t0 + i x INTERVAL; sent at once when the
 *     previous answer came after its due time, which is counted as "late"),
 *     latency from the send to the complete response (Content-Length body).
 *     The probe asks for SCHED_FIFO priority 1 (allowed as root) so that the
 *     hog, busy on the same CPU, never delays its wake-up: the latency is the
 *     server's, not the client CPU's run queue; "sched=" in the output says
 *     whether it got it. A late probe (sent after its due time because the
 *     previous answer came late) measures from its send only; probe_due_*
 *     measure from the due time instead (no coordinated omission). Prints one line of key=value
 * pairs (probe_p50_us, probe_p99_us, probe_max_us, ...; nearest-rank percentiles); --dump writes
 * every latency (µs from the send, and from the due time).
 *
 * Build: cc -O2 -o hog bench/hog.c */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sched.h>
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

static struct {
    const char *host, *path, *dump;
    int port, depth;
    long window;
    double seconds, interval_ms;
} opt = {"127.0.0.1", "/plaintext", NULL, 0, 256, 0, 5, 10};

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    perror(what);
    exit(2);
}

static int dial(int nonblock) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) die("socket");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_port = htons((uint16_t)opt.port)};
    if (inet_pton(AF_INET, opt.host, &sa.sin_addr) != 1) {
        fprintf(stderr, "hog: bad IPv4 address %s\n", opt.host);
        exit(2);
    }
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        close(fd);
        return -1;
    }
    if (nonblock) {
        int fl = fcntl(fd, F_GETFL);
        if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) die("fcntl");
    }
    return fd;
}

/* ---- hog ------------------------------------------------------------------ */

#define STATUS "HTTP/1.1 "
#define STATUS_OK "HTTP/1.1 200 "
#define CARRY (sizeof STATUS_OK - 2) /* longest pattern - 1 */

/* matches of pat in buf[0, n) that end after the first `old` bytes (those
 * that end inside the carried-over bytes were counted on the previous read) */
static unsigned long count_new(const char *buf, size_t n, size_t old, const char *pat) {
    size_t l = strlen(pat);
    unsigned long k = 0;
    const char *p = buf, *end = buf + n;
    while ((p = memmem(p, (size_t)(end - p), pat, l)) != NULL) {
        if ((size_t)(p - buf) + l > old) k++;
        p += l;
    }
    return k;
}

static unsigned long long written, responses;

/* --window W: a new batch only while at most W answers would then be owed */
static int can_write(size_t boff) {
    return !opt.window || boff ||
           written - responses + (unsigned long long)opt.depth <= (unsigned long long)opt.window;
}

static int run_hog(void) {
    char req[1024];
    int rl = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", opt.path, opt.host,
                      opt.port);
    if (rl < 0 || (size_t)rl >= sizeof req) return 2;
    size_t blen = (size_t)rl * (size_t)opt.depth;
    char *batch = malloc(blen);
    if (!batch) die("malloc");
    for (int i = 0; i < opt.depth; i++) memcpy(batch + (size_t)i * (size_t)rl, req, (size_t)rl);

    int fd = dial(1);
    if (fd < 0) die("connect");
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) die("epoll_create1");
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.fd = fd};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) die("epoll_ctl");

    enum { RBUF = 1 << 20 };
    char *rbuf = malloc(RBUF + CARRY);
    if (!rbuf) die("malloc");
    size_t carry = 0, boff = 0;
    unsigned long long ok = 0, bytes = 0;
    uint32_t interest = EPOLLIN | EPOLLOUT;
    int closed = 0;
    uint64_t t0 = now_ns(), t_end = t0 + (uint64_t)(opt.seconds * 1e9);
    for (;;) {
        uint64_t now = now_ns();
        if (now >= t_end) break;
        int ms = (int)((t_end - now) / 1000000) + 1;
        struct epoll_event e;
        int n = epoll_wait(ep, &e, 1, ms);
        if (n < 0 && errno != EINTR) die("epoll_wait");
        if (n <= 0) continue;
        if ((e.events & EPOLLOUT) && can_write(boff)) {
            for (;;) {
                ssize_t w = send(fd, batch + boff, blen - boff, MSG_NOSIGNAL);
                if (w < 0) {
                    if (errno == EAGAIN || errno == EINTR) break;
                    closed = 1;
                    break;
                }
                boff += (size_t)w;
                if (boff == blen) {
                    boff = 0;
                    written += (unsigned long long)opt.depth;
                    if (!can_write(boff)) break;
                } else
                    break; /* the socket is full */
            }
        }
        if (e.events & (EPOLLIN | EPOLLERR | EPOLLHUP)) {
            for (;;) {
                ssize_t r = recv(fd, rbuf + carry, RBUF, 0);
                if (r > 0) {
                    size_t tot = carry + (size_t)r;
                    responses += count_new(rbuf, tot, carry, STATUS);
                    ok += count_new(rbuf, tot, carry, STATUS_OK);
                    bytes += (unsigned long long)r;
                    carry = tot < CARRY ? tot : CARRY;
                    memmove(rbuf, rbuf + tot - carry, carry);
                    continue;
                }
                if (r < 0 && errno == EINTR) continue;
                if (r < 0 && errno == EAGAIN) break;
                closed = 1; /* EOF or error */
                break;
            }
        }
        if (closed) break;
        /* without room in the window, wait for answers only (no busy loop) */
        uint32_t want = EPOLLIN | (can_write(boff) ? EPOLLOUT : 0);
        if (want != interest) {
            struct epoll_event m = {.events = want, .data.fd = fd};
            if (epoll_ctl(ep, EPOLL_CTL_MOD, fd, &m) < 0) die("epoll_ctl");
            interest = want;
        }
    }
    double secs = (double)(now_ns() - t0) / 1e9;
    printf("hog_responses=%llu\thog_ok=%llu\thog_written=%llu\thog_bytes=%llu\thog_seconds=%.2f"
           "\thog_rps=%.1f\thog_depth=%d\thog_window=%ld\thog_closed=%d\n",
           responses, ok, written, bytes, secs, (double)responses / secs, opt.depth, opt.window,
           closed);
    close(fd);
    return closed ? 1 : 0;
}

/* ---- probe ---------------------------------------------------------------- */

/* Reads one complete response from a blocking socket within timeout_ms.
 * Returns its status, or -1 on error, close or timeout. Bytes past the
 * response (none are expected: one request in flight) are an error too. */
static int read_response(int fd, int timeout_ms) {
    char buf[16384];
    size_t len = 0;
    uint64_t deadline = now_ns() + (uint64_t)timeout_ms * 1000000ull;
    for (;;) {
        char *end = memmem(buf, len, "\r\n\r\n", 4);
        if (end) {
            size_t head = (size_t)(end - buf) + 4;
            long clen = -1;
            for (char *p = memchr(buf, '\n', head); p && p < end;
                 p = memchr(p, '\n', (size_t)(end - p))) {
                p++;
                if (strncasecmp(p, "content-length:", 15) == 0) clen = strtol(p + 15, NULL, 10);
            }
            if (clen < 0 || head + (size_t)clen > sizeof buf) return -1;
            if (len >= head + (size_t)clen)
                return len == head + (size_t)clen && len > 12 ? atoi(buf + 9) : -1;
        }
        if (len == sizeof buf) return -1;
        uint64_t now = now_ns();
        if (now >= deadline) return -1;
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, (int)((deadline - now) / 1000000) + 1);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) continue;
        ssize_t r = recv(fd, buf + len, sizeof buf - len, 0);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) return -1;
        len += (size_t)r;
    }
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static uint32_t pct(const uint32_t *v, size_t n, double p) {
    if (!n) return 0;
    size_t k = (size_t)(p * (double)n + 0.999999);
    if (k < 1) k = 1;
    if (k > n) k = n;
    return v[k - 1];
}

static int run_probe(void) {
    struct sched_param sp = {.sched_priority = 1};
    int fifo = sched_setscheduler(0, SCHED_FIFO, &sp) == 0;
    char req[1024];
    int rl = snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: %s:%d\r\n\r\n", opt.path, opt.host,
                      opt.port);
    if (rl < 0 || (size_t)rl >= sizeof req) return 2;
    int fd = dial(0);
    if (fd < 0) die("connect");
    /* one unmeasured request: the connection's first exchange */
    if (send(fd, req, (size_t)rl, MSG_NOSIGNAL) != rl || read_response(fd, 5000) < 0) {
        fprintf(stderr, "probe: first request failed\n");
        return 2;
    }
    uint64_t interval = (uint64_t)(opt.interval_ms * 1e6);
    size_t total = (size_t)(opt.seconds * 1e9 / (double)interval);
    uint32_t *lat = calloc(total + 1, sizeof *lat), *dlat = calloc(total + 1, sizeof *dlat);
    if (!lat || !dlat) die("calloc");
    size_t n = 0;
    unsigned long errors = 0, late = 0, non200 = 0, reconnects = 0;
    uint64_t t0 = now_ns() + interval;
    for (size_t i = 0; i < total; i++) {
        uint64_t due = t0 + i * interval;
        if (now_ns() > due)
            late++;
        else {
            struct timespec ts = {.tv_sec = (time_t)(due / 1000000000ull),
                                  .tv_nsec = (long)(due % 1000000000ull)};
            while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR) {
            }
        }
        if (fd < 0) {
            fd = dial(0);
            reconnects++;
            if (fd < 0) {
                errors++;
                continue;
            }
        }
        uint64_t a = now_ns();
        int st = send(fd, req, (size_t)rl, MSG_NOSIGNAL) == rl ? read_response(fd, 5000) : -1;
        uint64_t b = now_ns();
        if (st < 0) {
            errors++;
            close(fd);
            fd = -1;
            continue;
        }
        if (st != 200) non200++;
        uint64_t us = (b - a) / 1000, dus = (b - due) / 1000;
        dlat[n] = dus > UINT32_MAX ? UINT32_MAX : (uint32_t)dus;
        lat[n++] = us > UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    }
    if (fd >= 0) close(fd);
    if (opt.dump) {
        FILE *f = fopen(opt.dump, "w");
        if (!f) die(opt.dump);
        fprintf(f, "# latency_us from_due_us\n");
        for (size_t i = 0; i < n; i++) fprintf(f, "%u %u\n", lat[i], dlat[i]);
        fclose(f);
    }
    qsort(lat, n, sizeof *lat, cmp_u32);
    qsort(dlat, n, sizeof *dlat, cmp_u32);
    printf("probes=%zu\tprobe_errors=%lu\tprobe_non200=%lu\tprobe_late=%lu\tprobe_reconnects=%lu"
           "\tprobe_min_us=%u\tprobe_p50_us=%u\tprobe_p90_us=%u\tprobe_p99_us=%u"
           "\tprobe_p999_us=%u\tprobe_max_us=%u\tprobe_due_p50_us=%u\tprobe_due_p99_us=%u\tprobe_"
           "due_max_us=%u"
           "\tprobe_interval_ms=%g\tsched=%s\n",
           n, errors, non200, late, reconnects, n ? lat[0] : 0, pct(lat, n, 0.5), pct(lat, n, 0.9),
           pct(lat, n, 0.99), pct(lat, n, 0.999), n ? lat[n - 1] : 0, pct(dlat, n, 0.5),
           pct(dlat, n, 0.99), n ? dlat[n - 1] : 0, opt.interval_ms, fifo ? "fifo" : "other");
    return 0;
}

static void usage(void) {
    fprintf(stderr, "usage: hog hog --port P [--host 127.0.0.1] [--path /plaintext] "
                    "[--depth 256] [--window 0] --seconds S\n"
                    "       hog probe --port P [--host 127.0.0.1] [--path /plaintext] "
                    "[--interval-ms 10] --seconds S [--dump FILE]\n");
    exit(2);
}

int main(int argc, char **argv) {
    if (argc < 2) usage();
    const char *mode = argv[1];
    for (int i = 2; i < argc; i += 2) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!v) usage();
        if (!strcmp(a, "--host"))
            opt.host = v;
        else if (!strcmp(a, "--port"))
            opt.port = atoi(v);
        else if (!strcmp(a, "--path"))
            opt.path = v;
        else if (!strcmp(a, "--depth"))
            opt.depth = atoi(v);
        else if (!strcmp(a, "--window"))
            opt.window = atol(v);
        else if (!strcmp(a, "--seconds"))
            opt.seconds = atof(v);
        else if (!strcmp(a, "--interval-ms"))
            opt.interval_ms = atof(v);
        else if (!strcmp(a, "--dump"))
            opt.dump = v;
        else
            usage();
    }
    if (opt.port <= 0 || opt.depth <= 0 || opt.seconds <= 0 || opt.interval_ms <= 0) usage();
    signal(SIGPIPE, SIG_IGN);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (!strcmp(mode, "hog")) return run_hog();
    if (!strcmp(mode, "probe")) return run_probe();
    usage();
}
