/* The server's lifecycle through the public API only: configure, route,
 * bind, run on a thread, real requests over loopback (plain blocking
 * sockets from the test thread), stop, free; the application-data API
 * (route data, server data, per-worker start/stop hooks and
 * tern_worker_local); bind and route errors; handler-set statuses and Date. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/time.h>

#include "check.h"
#include "tern.h"

/* ---- a blocking HTTP client ------------------------------------------------ */

/* Sends `req` to 127.0.0.1:port and reads until the server closes; the
 * response (NUL-terminated, malloc'd) or NULL. */
static char *roundtrip(uint16_t port, const char *req) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return NULL;
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
        close(fd);
        return NULL;
    }
    size_t len = strlen(req), off = 0;
    while (off < len) {
        ssize_t n = send(fd, req + off, len - off, MSG_NOSIGNAL);
        if (n <= 0) {
            close(fd);
            return NULL;
        }
        off += (size_t)n;
    }
    size_t cap = 4096, got = 0;
    char *buf = malloc(cap);
    for (;;) {
        if (cap - got < 1024) buf = realloc(buf, cap *= 2);
        ssize_t n = recv(fd, buf + got, cap - got - 1, 0);
        if (n <= 0) break;
        got += (size_t)n;
    }
    buf[got] = 0;
    close(fd);
    return buf;
}

static char *get(uint16_t port, const char *path) {
    char req[512];
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n", path);
    return roundtrip(port, req);
}

static const char *body_of(const char *resp) {
    const char *p = resp ? strstr(resp, "\r\n\r\n") : NULL;
    return p ? p + 4 : "";
}

static int count(const char *hay, const char *needle) {
    int n = 0;
    for (const char *p = hay; p && (p = strstr(p, needle)); p += strlen(needle)) n++;
    return n;
}

/* ---- the application ------------------------------------------------------- */

typedef struct worker_state {
    int worker;
    pthread_t thread;
    char name[32];
} worker_state;

static atomic_int starts, stops, stop_mismatch, handler_checks_bad;
static atomic_int status_100, status_600, status_after;
static char server_data[] = "the server's data";
static char route_data[] = "the route's data";

static void *on_start(tern_server *s, int worker) {
    (void)s;
    worker_state *w = calloc(1, sizeof *w);
    w->worker = worker;
    w->thread = pthread_self();
    snprintf(w->name, sizeof w->name, "worker-%d", worker);
    atomic_fetch_add(&starts, 1);
    return w;
}

static void on_stop(tern_server *s, int worker, void *local) {
    (void)s;
    worker_state *w = local;
    /* the same worker's state, on the same thread as its start */
    if (!w || w->worker != worker || !pthread_equal(w->thread, pthread_self())) atomic_fetch_add(&stop_mismatch, 1);
    atomic_fetch_add(&stops, 1);
    free(w);
}

static void h_hello(tern_ctx *ctx) { tern_resp_text(ctx, 200, "hello"); }

static void h_route_data(tern_ctx *ctx) {
    const char *d = tern_route_data(ctx);
    tern_resp_text(ctx, 200, d ? d : "(null)");
}

static void h_server_data(tern_ctx *ctx) {
    const char *d = tern_server_data(tern_ctx_server(ctx));
    tern_resp_text(ctx, 200, d ? d : "(null)");
}

static void h_local(tern_ctx *ctx) {
    worker_state *w = tern_worker_local();
    if (!w || w->worker != tern_worker_id() || !pthread_equal(w->thread, pthread_self()))
        atomic_fetch_add(&handler_checks_bad, 1);
    tern_resp_text(ctx, 200, w ? w->name : "(null)");
}

static void h_status(tern_ctx *ctx) {
    atomic_store(&status_100, tern_resp_set_status(ctx, 100));
    atomic_store(&status_600, tern_resp_set_status(ctx, 600));
    atomic_store(&status_after, tern_resp_status(ctx));
    tern_resp_set_body(ctx, "still 200", 9);
}

#define HANDLER_DATE "Mon, 01 Jan 2024 00:00:00 GMT"
static void h_date(tern_ctx *ctx) {
    tern_resp_set_header(ctx, "Date", HANDLER_DATE);
    tern_resp_text(ctx, 200, "dated");
}

static void *run_thread(void *arg) {
    tern_server *s = arg;
    intptr_t r = tern_server_run(s);
    return (void *)r;
}

static uint64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void test_lifecycle(int workers) {
    atomic_store(&starts, 0);
    atomic_store(&stops, 0);
    tern_config cfg;
    tern_config_init(&cfg);
    cfg.host = "127.0.0.1";
    cfg.port = 0;
    cfg.workers = workers;
    cfg.drain_timeout_ms = 2000;
    tern_server *s = tern_server_new_config(&cfg);
    CHECK(s != NULL);
    if (!s) return;

    CHECK_INT(tern_route(s, TERN_GET, "/hello", h_hello), 0);
    tern_route_opts opts = {.data = route_data};
    CHECK_INT(tern_route_with(s, TERN_GET, "/route-data", h_route_data, &opts), 0);
    CHECK_INT(tern_route(s, TERN_GET, "/server-data", h_server_data), 0);
    CHECK_INT(tern_route(s, TERN_GET, "/local", h_local), 0);
    CHECK_INT(tern_route(s, TERN_GET, "/status", h_status), 0);
    CHECK_INT(tern_route(s, TERN_GET, "/date", h_date), 0);
    /* invalid patterns */
    CHECK_INT(tern_route(s, TERN_GET, "", h_hello), -EINVAL);
    CHECK_INT(tern_route(s, TERN_GET, "no-slash", h_hello), -EINVAL);
    CHECK_INT(tern_route(s, TERN_GET, "/a/:", h_hello), -EINVAL);
    CHECK_INT(tern_route(s, TERN_GET, "/files/*rest/more", h_hello), -EINVAL);
    CHECK_INT(tern_route(s, TERN_GET, "/hello", h_hello), -EEXIST);

    tern_server_set_data(s, server_data);
    CHECK(tern_server_data(s) == server_data);
    CHECK_INT(tern_server_on_worker(s, on_start, on_stop), 0);

    CHECK_INT(tern_server_bind(s), 0);
    uint16_t port = tern_server_port(s);
    CHECK(port != 0);
    CHECK_INT(tern_server_workers(s), workers);

    /* the same port again, not shared: in use */
    tern_config cfg2 = cfg;
    cfg2.port = port;
    cfg2.workers = 1;
    tern_server *s2 = tern_server_new_config(&cfg2);
    CHECK(s2 != NULL);
    if (s2) {
        CHECK_INT(tern_server_bind(s2), -EADDRINUSE);
        tern_server_free(s2);
    }

    pthread_t th;
    CHECK_INT(pthread_create(&th, NULL, run_thread, s), 0);

    /* the listeners are bound: requests queue until the workers run */
    char *r = get(port, "/hello");
    CHECK(r && strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK_STR(body_of(r), "hello");
    free(r);
    CHECK_INT(tern_server_on_worker(s, on_start, on_stop), -EBUSY);

    r = get(port, "/route-data");
    CHECK_STR(body_of(r), route_data);
    free(r);
    r = get(port, "/server-data");
    CHECK_STR(body_of(r), server_data);
    free(r);

    /* per-worker state: each answer names a worker whose start hook ran */
    for (int i = 0; i < 8; i++) {
        r = get(port, "/local");
        const char *b = body_of(r);
        CHECK(strncmp(b, "worker-", 7) == 0 && atoi(b + 7) >= 0 && atoi(b + 7) < workers);
        free(r);
    }
    CHECK_INT(atomic_load(&handler_checks_bad), 0);

    r = get(port, "/status");
    CHECK(r && strncmp(r, "HTTP/1.1 200 OK\r\n", 17) == 0);
    CHECK_STR(body_of(r), "still 200");
    CHECK_INT(atomic_load(&status_100), -EINVAL);
    CHECK_INT(atomic_load(&status_600), -EINVAL);
    CHECK_INT(atomic_load(&status_after), 200);
    free(r);

    /* the handler's Date replaces the server's: exactly one */
    r = get(port, "/date");
    CHECK_INT(count(r, "\r\nDate: "), 1);
    CHECK(r && strstr(r, "\r\nDate: " HANDLER_DATE "\r\n") != NULL);
    CHECK_STR(body_of(r), "dated");
    free(r);
    /* and the server's own Date otherwise, once */
    r = get(port, "/hello");
    CHECK_INT(count(r, "\r\nDate: "), 1);
    free(r);

    r = get(port, "/nope");
    CHECK(r && strncmp(r, "HTTP/1.1 404 ", 13) == 0);
    free(r);

    /* stop: run returns 0 within the drain bound */
    uint64_t t0 = now_ms();
    tern_server_stop(s);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    void *ret = (void *)(intptr_t)-1;
    int jr = pthread_timedjoin_np(th, &ret, &deadline);
    CHECK_INT(jr, 0);
    if (jr != 0) {
        fprintf(stderr, "tern_server_run did not return after stop\n");
        _exit(1);
    }
    CHECK_INT((intptr_t)ret, 0);
    CHECK(now_ms() - t0 < 5000);

    CHECK_INT(atomic_load(&starts), workers);
    CHECK_INT(atomic_load(&stops), workers);
    CHECK_INT(atomic_load(&stop_mismatch), 0);
    tern_server_free(s);
}

int main(void) {
    test_lifecycle(1);
    test_lifecycle(2);
    /* outside a worker: no local state */
    CHECK(tern_worker_local() == NULL);
    return check_done();
}
