/* Configurations: the impossible ones are refused at bind with -EINVAL,
 * and the extreme ones tern accepts survive every request they accept: the
 * smallest stack with the largest head limit serves a 400 KB header (it
 * crashed the server when heads were copied onto the stack unbounded). */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "check.h"
#include "tern.h"

static int bind_with(void (*tweak)(tern_config *)) {
    tern_config cfg;
    tern_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.workers = 1;
    tweak(&cfg);
    tern_server *s = tern_server_new_config(&cfg);
    if (!s) return -ENOMEM;
    int r = tern_server_bind(s);
    tern_server_free(s);
    return r;
}

static void tiny_stack(tern_config *c) { c->stack_size = 4096; }
static void huge_stack(tern_config *c) { c->stack_size = (size_t)4 << 30; }
static void tiny_head(tern_config *c) { c->max_request_head = 64; }
static void target_over_head(tern_config *c) { c->max_target = c->max_request_head + 1; }
static void too_many_headers(tern_config *c) { c->max_headers = 1u << 20; }
static void too_many_workers(tern_config *c) { c->workers = 5000; }
static void fine(tern_config *c) { (void)c; }

static void test_refused_at_bind(void) {
    CHECK_INT(bind_with(tiny_stack), -EINVAL);
    CHECK_INT(bind_with(huge_stack), -EINVAL);
    CHECK_INT(bind_with(tiny_head), -EINVAL);
    CHECK_INT(bind_with(target_over_head), -EINVAL);
    CHECK_INT(bind_with(too_many_headers), -EINVAL);
    CHECK_INT(bind_with(too_many_workers), -EINVAL);
    CHECK_INT(bind_with(fine), 0);
}

static void hello(tern_ctx *ctx) {
    const char *c = tern_req_header(ctx, "Cookie");
    tern_str a = tern_req_authority(ctx);
    tern_resp_printf(ctx, "cookie %zu authority %.*s path %s", c ? strlen(c) : (size_t)0, (int)a.len,
                     a.ptr, tern_req_path(ctx));
}

static void request(uint16_t port, const char *req, char *buf, size_t cap) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_INT(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    CHECK(send(fd, req, strlen(req), MSG_NOSIGNAL) == (ssize_t)strlen(req));
    size_t got = 0;
    ssize_t r;
    while (got < cap - 1 && (r = recv(fd, buf + got, cap - 1 - got, 0)) > 0) got += (size_t)r;
    buf[got] = 0;
    close(fd);
}

static void *run(void *arg) {
    tern_server_run(arg);
    return NULL;
}

/* 16 KiB stacks (the smallest accepted) and a 1 MiB head limit: a 400 KB
 * Cookie is served. */
static void test_small_stack_big_head(void) {
    tern_config cfg;
    tern_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.workers = 1;
    cfg.stack_size = 16u << 10;
    cfg.max_request_head = 1u << 20;
    tern_server *s = tern_server_new_config(&cfg);
    CHECK(s != NULL);
    CHECK_INT(tern_route(s, TERN_GET, "/", hello), 0);
    CHECK_INT(tern_server_bind(s), 0);
    pthread_t t;
    pthread_create(&t, NULL, run, s);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(tern_server_port(s)),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_INT(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    size_t n = 400000;
    char *req = malloc(n + 256);
    int off = snprintf(req, 256, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nCookie: ");
    memset(req + off, 'c', n);
    memcpy(req + off + n, "\r\n\r\n", 4);
    size_t len = (size_t)off + n + 4, sent = 0;
    while (sent < len) {
        ssize_t w = send(fd, req + sent, len - sent, MSG_NOSIGNAL);
        if (w <= 0) break;
        sent += (size_t)w;
    }
    CHECK_INT(sent, len);
    char buf[4096];
    size_t got = 0;
    ssize_t r;
    while (got < sizeof buf - 1 && (r = recv(fd, buf + got, sizeof buf - 1 - got, 0)) > 0) got += (size_t)r;
    buf[got] = 0;
    CHECK(strncmp(buf, "HTTP/1.1 200 ", 13) == 0);
    CHECK(strstr(buf, "cookie 400000 authority x path /") != NULL);
    close(fd);
    free(req);
    /* absolute-form: the target's authority wins over Host (RFC 9112 §3.2.2),
     * and an empty path is "/" */
    request(tern_server_port(s), "GET http://a.example HTTP/1.1\r\nHost: b.example\r\nConnection: close\r\n\r\n",
            buf, sizeof buf);
    CHECK(strncmp(buf, "HTTP/1.1 200 ", 13) == 0);
    CHECK(strstr(buf, "authority a.example path /") != NULL);
    tern_server_stop(s);
    pthread_join(t, NULL);
    tern_server_free(s);
}

int main(void) {
    test_refused_at_bind();
    test_small_stack_big_head();
    return check_done();
}
