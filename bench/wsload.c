/* wsload: WebSocket echo load. Opens C connections (the RFC 6455 handshake,
 * blocking), then keeps one binary message of S bytes in flight on each:
 * send it masked, wait for the whole echo, send again; for D seconds, from
 * one epoll loop. Prints messages/s and the echo round trips' bytes.
 *
 *   wsload -p PORT [-h 127.0.0.1] [-u /ws] [-c 1000] [-s 64] [-d 10]
 *
 * Every echo's length and opcode are checked; any error ends the run with
 * exit status 1. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

typedef struct conn {
    int fd;
    size_t out_off; /* bytes of the request frame written */
    size_t in_got;  /* bytes of the echo read */
} conn;

static uint8_t *frame; /* the masked request frame */
static size_t frame_len, echo_len;

static double now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void die(const char *what) {
    perror(what);
    exit(1);
}

static int open_ws(const char *host, int port, const char *path) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) die("socket");
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    inet_pton(AF_INET, host, &a.sin_addr);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) die("connect");
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    char req[512];
    int n =
        snprintf(req, sizeof req,
                 "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                 "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                 path, host);
    if (write(fd, req, (size_t)n) != n) die("write handshake");
    char buf[2048];
    size_t got = 0;
    while (got < sizeof buf - 1) {
        ssize_t r = read(fd, buf + got, sizeof buf - 1 - got);
        if (r <= 0) die("read handshake");
        got += (size_t)r;
        buf[got] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        if (!end) continue;
        if (strncmp(buf, "HTTP/1.1 101", 12) != 0) {
            fprintf(stderr, "wsload: no upgrade: %.80s\n", buf);
            exit(1);
        }
        if ((size_t)(end + 4 - buf) != got) {
            fprintf(stderr, "wsload: bytes after the 101\n");
            exit(1);
        }
        break;
    }
    fcntl(fd, F_SETFL, O_NONBLOCK);
    return fd;
}

static void build_frame(size_t size) {
    frame = malloc(size + 14);
    size_t h = 0;
    frame[h++] = 0x82; /* FIN, binary */
    if (size < 126) {
        frame[h++] = (uint8_t)(0x80 | size);
    } else if (size < 65536) {
        frame[h++] = 0x80 | 126;
        frame[h++] = (uint8_t)(size >> 8);
        frame[h++] = (uint8_t)size;
    } else {
        frame[h++] = 0x80 | 127;
        for (int i = 7; i >= 0; i--) frame[h++] = (uint8_t)(size >> (8 * i));
    }
    static const uint8_t mask[4] = {0x12, 0x34, 0x56, 0x78};
    memcpy(frame + h, mask, 4);
    h += 4;
    for (size_t i = 0; i < size; i++) frame[h + i] = (uint8_t)('a' + i % 26) ^ mask[i & 3];
    frame_len = h + size;
    echo_len = (size < 126 ? 2 : size < 65536 ? 4 : 10) + size;
}

/* Writes what is left of the request; 1 when all is out. */
static int pump_out(conn *c) {
    while (c->out_off < frame_len) {
        ssize_t r = write(c->fd, frame + c->out_off, frame_len - c->out_off);
        if (r < 0) {
            if (errno == EAGAIN) return 0;
            die("write");
        }
        c->out_off += (size_t)r;
    }
    return 1;
}

/* Reads echo bytes; returns the number of echoes completed (0 or 1). */
static int pump_in(conn *c, uint8_t *buf, size_t cap) {
    for (;;) {
        size_t want = echo_len - c->in_got;
        ssize_t r = read(c->fd, buf, want < cap ? want : cap);
        if (r == 0) {
            fprintf(stderr, "wsload: server closed a connection\n");
            exit(1);
        }
        if (r < 0) {
            if (errno == EAGAIN) return 0;
            die("read");
        }
        if (c->in_got == 0 && buf[0] != 0x82) {
            fprintf(stderr, "wsload: unexpected frame 0x%02x\n", buf[0]);
            exit(1);
        }
        c->in_got += (size_t)r;
        if (c->in_got == echo_len) {
            c->in_got = 0;
            c->out_off = 0;
            return 1;
        }
    }
}

int main(int argc, char **argv) {
    const char *host = "127.0.0.1", *path = "/ws";
    int port = 0, conns = 1000;
    size_t size = 64;
    double secs = 10;
    int opt;
    while ((opt = getopt(argc, argv, "h:p:u:c:s:d:")) != -1) {
        switch (opt) {
        case 'h':
            host = optarg;
            break;
        case 'p':
            port = atoi(optarg);
            break;
        case 'u':
            path = optarg;
            break;
        case 'c':
            conns = atoi(optarg);
            break;
        case 's':
            size = (size_t)strtoul(optarg, NULL, 10);
            break;
        case 'd':
            secs = atof(optarg);
            break;
        default:
            fprintf(stderr,
                    "usage: wsload -p PORT [-h HOST] [-u PATH] [-c N] [-s BYTES] [-d SECONDS]\n");
            return 2;
        }
    }
    if (!port || conns < 1) return 2;
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    build_frame(size);
    int ep = epoll_create1(0);
    conn *cs = calloc((size_t)conns, sizeof *cs);
    for (int i = 0; i < conns; i++) {
        cs[i].fd = open_ws(host, port, path);
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLET, .data.ptr = &cs[i]};
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    uint8_t *buf = malloc(1 << 16);
    uint64_t done = 0;
    double start = now_s(), end = start + secs;
    for (int i = 0; i < conns; i++) pump_out(&cs[i]);
    struct epoll_event evs[256];
    while (now_s() < end) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            conn *c = evs[i].data.ptr;
            if (c->out_off < frame_len) {
                if (!pump_out(c)) continue;
            }
            while (pump_in(c, buf, 1 << 16)) {
                done++;
                if (!pump_out(c)) break;
            }
        }
    }
    double took = now_s() - start;
    printf("connections=%d size=%zu seconds=%.1f messages=%llu msgs_per_s=%.0f MB_per_s=%.1f\n",
           conns, size, took, (unsigned long long)done, (double)done / took,
           (double)done * (double)size * 2 / took / 1e6);
    return 0;
}
