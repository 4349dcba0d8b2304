/* The test client (tern/testing.h): the server runs its workers on a
 * background thread; each request travels through a socketpair(AF_UNIX)
 * whose server end a worker adopts as a connection. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "server/conn.h"
#include "server/worker.h"
#include "tern.h"

#define ANSWER_TIMEOUT_S 30

typedef struct test_run {
    struct test_run *next;
    tern_server *server;
    pthread_t thread;
    int result;
} test_run;

static pthread_mutex_t runs_lock = PTHREAD_MUTEX_INITIALIZER;
static test_run *runs;

static void *serve(void *arg) {
    test_run *r = arg;
    r->result = tern_server_run(r->server);
    return NULL;
}

static int ensure_running(tern_server *s) {
    pthread_mutex_lock(&runs_lock);
    test_run *r = runs;
    while (r && r->server != s) r = r->next;
    int rc = 0;
    if (!r) {
        r = calloc(1, sizeof *r);
        if (!r) rc = -ENOMEM;
        /* loopback and a free port: the listeners exist (the server needs
         * them) but nothing outside the process reaches them */
        if (!rc && tern_server_port(s) == 0) rc = tern_server_set_address(s, "127.0.0.1", 0);
        if (!rc) {
            r->server = s;
            rc = -pthread_create(&r->thread, NULL, serve, r);
        }
        if (!rc) {
            r->next = runs;
            runs = r;
        } else {
            free(r);
        }
    }
    pthread_mutex_unlock(&runs_lock);
    return rc;
}

int tern_test_stop(tern_server *s) {
    pthread_mutex_lock(&runs_lock);
    test_run **pp = &runs, *r;
    while ((r = *pp) && r->server != s) pp = &r->next;
    if (r) *pp = r->next;
    pthread_mutex_unlock(&runs_lock);
    if (!r) return 0;
    tern_server_stop(s);
    pthread_join(r->thread, NULL);
    int rc = r->result;
    free(r);
    return rc;
}

static void *adopt(void *arg) {
    int fd = (int)(intptr_t)arg;
    if (tern__worker_self)
        tern__conn_adopt(tern__worker_self, fd);
    else
        close(fd);
    return NULL;
}

/* Hands fd to worker 0 once the server's workers exist. */
static int hand_over(int fd) {
    for (int i = 0; i < 5000; i++) {
        tern_task *t = tern_spawn_on(0, adopt, (void *)(intptr_t)fd);
        if (t) {
            tern_detach(t);
            return 0;
        }
        if (errno != EINVAL) return -errno;
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL); /* the workers are starting */
    }
    return -ETIMEDOUT;
}

static int fcntl_nonblock(int fd) {
    int fl = fcntl(fd, F_GETFL);
    return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static int send_all(int fd, const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = send(fd, c, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        c += w;
        n -= (size_t)w;
    }
    return 0;
}

static int send_request(int fd, const tern_test_request *req) {
    char head[8192];
    int n = snprintf(head, sizeof head, "%s %s HTTP/1.1\r\nHost: test\r\nConnection: close\r\n",
                     req->method ? req->method : "GET", req->target ? req->target : "/");
    int framed = 0; /* the caller framed the body itself (chunked, tests of framing) */
    for (const char *const *h = req->headers; h && *h && n >= 0 && (size_t)n < sizeof head; h++) {
        n += snprintf(head + n, sizeof head - (size_t)n, "%s\r\n", *h);
        framed |= strncasecmp(*h, "Transfer-Encoding:", 18) == 0 ||
                  strncasecmp(*h, "Content-Length:", 15) == 0;
    }
    if (n >= 0 && (size_t)n < sizeof head && req->body_len && !framed)
        n += snprintf(head + n, sizeof head - (size_t)n, "Content-Length: %zu\r\n", req->body_len);
    if (n < 0 || (size_t)n + 2 >= sizeof head) return -E2BIG;
    memcpy(head + n, "\r\n", 2);
    int r = send_all(fd, head, (size_t)n + 2);
    /* a server that answered early (413) and closed: read its answer */
    if (r == 0 && req->body_len) (void)send_all(fd, req->body, req->body_len);
    shutdown(fd, SHUT_WR);
    return r;
}

static int read_all(int fd, char **out, size_t *len) {
    size_t cap = 16384, n = 0;
    char *buf = malloc(cap);
    if (!buf) return -ENOMEM;
    for (;;) {
        if (cap - n < 4096) {
            char *b = realloc(buf, cap * 2);
            if (!b) {
                free(buf);
                return -ENOMEM;
            }
            buf = b;
            cap *= 2;
        }
        ssize_t r = recv(fd, buf + n, cap - n - 1, 0);
        if (r > 0) {
            n += (size_t)r;
            continue;
        }
        if (r == 0) break;
        if (errno == EINTR) continue;
        int e = errno == EAGAIN ? ETIMEDOUT : errno;
        free(buf);
        return -e;
    }
    buf[n] = 0;
    *out = buf;
    *len = n;
    return 0;
}

/* Chunked body (RFC 9112 §7.1) decoded in place; -EPROTO when malformed. */
static int dechunk(char *p, size_t len, size_t *out_len) {
    size_t i = 0, o = 0;
    for (;;) {
        char *end;
        if (i >= len) return -EPROTO;
        unsigned long size = strtoul(p + i, &end, 16);
        char *eol = memmem(p + i, len - i, "\r\n", 2);
        if (!eol || end == p + i) return -EPROTO;
        i = (size_t)(eol - p) + 2;
        if (size == 0) break;
        if (size > len - i) return -EPROTO;
        memmove(p + o, p + i, size);
        o += size;
        i += size + 2;
    }
    p[o] = 0;
    *out_len = o;
    return 0;
}

static int parse_response(char *buf, size_t len, tern_test_response *resp) {
    char *body = memmem(buf, len, "\r\n\r\n", 4);
    if (!body || strncmp(buf, "HTTP/1.", 7) != 0 || len < 12) return -EPROTO;
    *body = 0;
    body += 4;
    resp->status = atoi(buf + 9);
    size_t lines = 0;
    for (char *p = buf; (p = strstr(p, "\r\n")); p += 2) lines++;
    resp->header_names = calloc(lines + 1, sizeof(char *));
    resp->header_values = calloc(lines + 1, sizeof(char *));
    if (!resp->header_names || !resp->header_values) return -ENOMEM;
    int chunked = 0;
    char *line = strstr(buf, "\r\n");
    while (line) {
        line += 2;
        char *next = strstr(line, "\r\n");
        if (next) *next = 0;
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = 0;
            char *v = colon + 1;
            while (*v == ' ') v++;
            resp->header_names[resp->num_headers] = strdup(line);
            resp->header_values[resp->num_headers] = strdup(v);
            resp->num_headers++;
            if (strcasecmp(line, "Transfer-Encoding") == 0 && strcasecmp(v, "chunked") == 0)
                chunked = 1;
        }
        line = next;
    }
    size_t blen = len - (size_t)(body - buf);
    if (chunked && dechunk(body, blen, &blen) < 0) return -EPROTO;
    resp->body = malloc(blen + 1);
    if (!resp->body) return -ENOMEM;
    memcpy(resp->body, body, blen);
    resp->body[blen] = 0;
    resp->body_len = blen;
    return 0;
}

int tern_test_do(tern_server *s, const tern_test_request *req, tern_test_response *resp) {
    memset(resp, 0, sizeof *resp);
    int r = ensure_running(s);
    if (r < 0) return r;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) return -errno;
    struct timeval tv = {ANSWER_TIMEOUT_S, 0};
    setsockopt(sv[0], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(sv[0], SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    /* the worker's end must not block its loop */
    if (fcntl_nonblock(sv[1]) < 0 || (r = hand_over(sv[1])) < 0) {
        close(sv[0]);
        close(sv[1]);
        return r < 0 ? r : -errno;
    }
    char *buf = NULL;
    size_t len = 0;
    r = send_request(sv[0], req);
    if (r == 0) r = read_all(sv[0], &buf, &len);
    close(sv[0]);
    if (r == 0) r = parse_response(buf, len, resp);
    free(buf);
    if (r < 0) tern_test_response_free(resp);
    return r;
}

const char *tern_test_header(const tern_test_response *resp, const char *name) {
    for (size_t i = 0; i < resp->num_headers; i++)
        if (strcasecmp(resp->header_names[i], name) == 0) return resp->header_values[i];
    return NULL;
}

void tern_test_response_free(tern_test_response *resp) {
    for (size_t i = 0; i < resp->num_headers; i++) {
        free(resp->header_names[i]);
        free(resp->header_values[i]);
    }
    free(resp->header_names);
    free(resp->header_values);
    free(resp->body);
    memset(resp, 0, sizeof *resp);
}
