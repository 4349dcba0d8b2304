/* Outbound HTTP/1.1 client (see include/tern/client.h).
 *
 * One request is: take a connection from this worker's pool (connecting
 * if needed), write the request with one writev on the connection's
 * transport (head + body), read into one growing buffer, parse the
 * response head with http/parse.c's response parser (the request
 * parser's field-line code and framing rules), NUL-terminate names and
 * values in place so they are C strings, then the body: Content-Length
 * exactly, chunked decoded in place with http/chunked.c's decoder (with
 * tighter bounds than the server's), or up to EOF when unframed. The
 * response owns that buffer; the connection goes back to the pool only
 * when the exchange ended exactly at a message boundary and both sides
 * keep it alive.
 *
 * The client never calls recv/send: the transport does, and parks through
 * conn_wait (tern_wait_fd on the fd). Every wait ends at the earlier of
 * io_timeout_ms from now and the call's exchange deadline, and the
 * deadline is also checked between reads, so neither a drip-feeding
 * upstream nor a flooding one holds a request past it.
 *
 * Response framing follows RFC 9112 §6.3: HEAD and 1xx/204/304 have no
 * body; Transfer-Encoding wins, and chunked must be the last coding (else
 * the body runs to close); Transfer-Encoding together with Content-Length,
 * or a repeated Content-Length, are refused as malformed (§6.3 calls them
 * "ought to be handled as an error": they are how response splitting and
 * smuggling look from this side). */
#include "tern/client.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "http/chunked.h"
#include "http/parse.h"
#include "rt/sched.h"
#include "tern/sync.h"
#include "transport/tls.h"
#include "transport/transport.h"

#define MAX_WORKERS 1024 /* per-worker pools, indexed by scheduler id */
#define MAX_ADDRS 8
#define INITIAL_BUF 4096
/* room for chunk framing still undecoded in the buffer, beyond the body */
#define CHUNK_SLACK 65536
/* Chunked framing an upstream may send: a size line (size and extensions)
 * of 1 KiB, and 64 KiB of extensions over the whole body. Extensions are
 * skipped unread; nobody sends more than a few bytes of them, and without
 * a total a peer could stream extensions with one data byte per line. */
#define CHUNK_LINE_MAX 1024
#define CHUNK_EXT_MAX (64 * 1024)
/* Interim (1xx) responses skipped before the final one: a few 103 Early
 * Hints or 102 Processing are normal, an endless stream is an attack. */
#define MAX_INTERIM 16
/* Bytes read without parking after which the reader yields, so an
 * upstream that keeps the socket full cannot hold the worker. 64 KiB is a
 * few reads: on loopback ~10 µs of work between yields. */
#define YIELD_BYTES (64 * 1024)
/* A connect timeout travels through tern_pool_acquire as -ETIME, so that
 * the pool's own -ETIMEDOUT (no free connection) can be told apart; the
 * caller sees -ETIMEDOUT and -EBUSY respectively. */
#define CONNECT_TIMEOUT (-ETIME)

typedef struct client_conn {
    int fd;
    void *ssl;          /* https: the SSL *, else NULL */
    uint32_t tflags;    /* the transport's flags word */
    tern__transport t;  /* socket or TLS over fd */
    uint64_t uses; /* completed exchanges */
    uint64_t connect_ns;
} client_conn;

typedef struct client_worker {
    struct tern_client *client;
    tern_pool *pool;
    /* written by the owning worker, read by stats readers */
    uint64_t requests, responses, errors, reused, retries, connects, tls_resumed;
} client_worker;

struct tern_client {
    tern_client_config cfg;
    char *url;
    char *host;      /* without brackets, for getaddrinfo */
    char *authority; /* Host header: host[:port] as written */
    char *path;      /* default request path */
    char port[8];
    void *tls;       /* https: the SSL_CTX * (holds the cached session) */
    pthread_mutex_t lock; /* guards the resolved addresses */
    int naddrs;
    struct sockaddr_storage addrs[MAX_ADDRS];
    socklen_t addr_lens[MAX_ADDRS];
    client_worker *_Atomic workers[MAX_WORKERS];
    tern_server *metrics_server;
    char metrics_name[64];
};

static void bump(uint64_t *counter) {
    __atomic_store_n(counter, __atomic_load_n(counter, __ATOMIC_RELAXED) + 1, __ATOMIC_RELAXED);
}

void tern_client_config_init(tern_client_config *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->max_connections = 32;
    cfg->min_idle = 0;
    cfg->connect_timeout_ms = 2000;
    cfg->io_timeout_ms = 10000;
    cfg->acquire_timeout_ms = 5000;
    cfg->idle_timeout_ms = 30000;
    cfg->max_response_head = 16 * 1024;
    cfg->max_response_body = 8 * 1024 * 1024;
    cfg->max_response_headers = 100;
    cfg->exchange_timeout_ms = 30000;
}

/* ---- URL ------------------------------------------------------------------ */

static char *dup_range(const char *p, size_t n) {
    char *s = malloc(n + 1);
    if (!s) return NULL;
    memcpy(s, p, n);
    s[n] = 0;
    return s;
}

/* printable ASCII without space: what an origin-form target may hold */
static int is_target_char(unsigned char c) {
    return c > 0x20 && c < 0x7f;
}

static int parse_url(tern_client *c, const char *url, int *https) {
    *https = strncasecmp(url, "https://", 8) == 0;
    if (!*https && strncasecmp(url, "http://", 7) != 0) return strstr(url, "://") ? -EPROTONOSUPPORT : -EINVAL;
    const char *p = url + (*https ? 8 : 7);
    const char *auth_end = p + strcspn(p, "/?#");
    if (*auth_end == '#' || (*auth_end && strchr(auth_end, '#'))) return -EINVAL;
    if (memchr(p, '@', (size_t)(auth_end - p))) return -EINVAL; /* no userinfo */
    const char *host = p, *host_end, *port = NULL;
    if (*p == '[') {
        host = p + 1;
        host_end = memchr(host, ']', (size_t)(auth_end - host));
        if (!host_end) return -EINVAL;
        if (host_end + 1 < auth_end) {
            if (host_end[1] != ':') return -EINVAL;
            port = host_end + 2;
        }
    } else {
        host_end = memchr(p, ':', (size_t)(auth_end - p));
        if (host_end)
            port = host_end + 1;
        else
            host_end = auth_end;
    }
    if (host_end == host) return -EINVAL;
    for (const char *q = host; q < host_end; q++) {
        unsigned char ch = (unsigned char)*q;
        int alnum =
            (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9');
        if (!alnum && (!ch || !strchr("-._:%", ch))) return -EINVAL;
    }
    unsigned long portnum = *https ? 443 : 80;
    if (port) {
        if (port == auth_end || auth_end - port > 5) return -EINVAL;
        portnum = 0;
        for (const char *q = port; q < auth_end; q++) {
            if (*q < '0' || *q > '9') return -EINVAL;
            portnum = portnum * 10 + (unsigned long)(*q - '0');
        }
        if (portnum == 0 || portnum > 65535) return -EINVAL;
    }
    snprintf(c->port, sizeof c->port, "%lu", portnum);
    const char *path = *auth_end ? auth_end : "/";
    if (*path == '?') return -EINVAL; /* "http://h?q": the path must come first */
    for (const char *q = path; *q; q++)
        if (!is_target_char((unsigned char)*q)) return -EINVAL;
    c->host = dup_range(host, (size_t)(host_end - host));
    c->authority = dup_range(p, (size_t)(auth_end - p));
    c->path = strdup(path);
    c->url = strdup(url);
    if (!c->host || !c->authority || !c->path || !c->url) return -ENOMEM;
    return 0;
}

/* ---- connections ------------------------------------------------------------ */

typedef struct resolve_job {
    const char *host, *port;
    int flags;
    int rc; /* getaddrinfo's result */
    int n;
    struct sockaddr_storage addrs[MAX_ADDRS];
    socklen_t lens[MAX_ADDRS];
} resolve_job;

static void *resolve_fn(void *arg) {
    resolve_job *j = arg;
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = j->flags | AI_NUMERICSERV | AI_ADDRCONFIG};
    struct addrinfo *res = NULL;
    j->rc = getaddrinfo(j->host, j->port, &hints, &res);
    j->n = 0;
    for (struct addrinfo *ai = res; ai && j->n < MAX_ADDRS; ai = ai->ai_next) {
        if (ai->ai_addrlen > sizeof j->addrs[0]) continue;
        memcpy(&j->addrs[j->n], ai->ai_addr, ai->ai_addrlen);
        j->lens[j->n++] = ai->ai_addrlen;
    }
    if (res) freeaddrinfo(res);
    return NULL;
}

/* Resolves the host once and caches the addresses (no TTL: a client lives
 * as long as its upstream's address). A numeric host is converted in place
 * (no lookup, cannot block); a name is looked up on the offload pool. */
static int resolve(tern_client *c, resolve_job *out) {
    pthread_mutex_lock(&c->lock);
    int n = c->naddrs;
    if (n) {
        memcpy(out->addrs, c->addrs, sizeof c->addrs);
        memcpy(out->lens, c->addr_lens, sizeof c->addr_lens);
    }
    pthread_mutex_unlock(&c->lock);
    if (n) {
        out->n = n;
        return 0;
    }
    resolve_job *j = out;
    j->host = c->host;
    j->port = c->port;
    j->flags = AI_NUMERICHOST;
    resolve_fn(j);
    if (j->rc == EAI_NONAME) {
        j->flags = 0;
        int r = tern_offload(resolve_fn, j, NULL);
        if (r < 0) return r;
    }
    if (j->rc != 0 || j->n == 0) return -EHOSTUNREACH;
    pthread_mutex_lock(&c->lock);
    if (!c->naddrs) {
        memcpy(c->addrs, j->addrs, sizeof c->addrs);
        memcpy(c->addr_lens, j->lens, sizeof c->addr_lens);
        c->naddrs = j->n;
    }
    pthread_mutex_unlock(&c->lock);
    return 0;
}

static int connect_addr(const struct sockaddr *sa, socklen_t len, int64_t timeout_ms, int *out) {
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_TCP);
    if (fd < 0) return -errno;
    /* requests go out as one write and wait for the answer: Nagle would
     * only delay a second segment of a large request */
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, sa, len) < 0) {
        if (errno != EINPROGRESS) {
            int e = -errno;
            close(fd);
            return e;
        }
        int ev = tern_wait_fd(fd, EPOLLOUT, timeout_ms);
        if (ev <= 0) {
            close(fd);
            return ev == 0 ? CONNECT_TIMEOUT : ev;
        }
        int err = 0;
        socklen_t elen = sizeof err;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0) err = errno;
        if (err) {
            close(fd);
            return -err;
        }
    }
    *out = fd;
    return 0;
}

/* The transport's wait: the client is no event loop of its own, so it
 * parks on the fd with tern_wait_fd until the absolute deadline. */
static int conn_wait(void *waiter, uint32_t events, uint64_t deadline_ns) {
    client_conn *k = waiter;
    int64_t ms = -1;
    if (deadline_ns && deadline_ns != UINT64_MAX) {
        uint64_t now = tern_clock_ns();
        if (now >= deadline_ns) return -ETIMEDOUT;
        ms = (int64_t)((deadline_ns - now + 999999) / 1000000);
    }
    int ev = tern_wait_fd(k->fd, events, ms);
    if (ev == 0) return -ETIMEDOUT;
    return ev < 0 ? ev : 0;
}

static int conn_create(void *arg, void **res) {
    client_worker *w = arg;
    tern_client *c = w->client;
    uint64_t t0 = tern_clock_ns();
    resolve_job addrs;
    int r = resolve(c, &addrs);
    if (r < 0) return r;
    uint64_t deadline = t0 + (uint64_t)c->cfg.connect_timeout_ms * 1000000ull;
    int fd = -1;
    r = -EHOSTUNREACH;
    for (int i = 0; i < addrs.n; i++) {
        uint64_t now = tern_clock_ns();
        if (now >= deadline) {
            r = CONNECT_TIMEOUT;
            break;
        }
        int64_t left = (int64_t)((deadline - now + 999999) / 1000000);
        r = connect_addr((struct sockaddr *)&addrs.addrs[i], addrs.lens[i], left, &fd);
        if (r == 0 || r == -ECANCELED) break;
    }
    if (r < 0) return r;
    client_conn *k = calloc(1, sizeof *k);
    if (!k) {
        close(fd);
        return -ENOMEM;
    }
    k->fd = fd;
    if (c->tls) {
        k->ssl = tern__tls_connect_new(c->tls, fd, c->host);
        if (!k->ssl) {
            free(k);
            close(fd);
            return -ENOMEM;
        }
        tern__transport_tls(&k->t, k->ssl, fd, &k->tflags, conn_wait, k);
        r = tern__tls_handshake(&k->t, deadline, NULL, 0);
        if (r < 0) {
            tern__tls_close(k->ssl);
            free(k);
            close(fd);
            return r == -ETIMEDOUT ? CONNECT_TIMEOUT : r;
        }
        if (tern__tls_resumed(k->ssl)) bump(&w->tls_resumed);
    } else {
        tern__transport_socket(&k->t, fd, &k->tflags, conn_wait, k);
    }
    k->connect_ns = tern_clock_ns() - t0;
    bump(&w->connects);
    *res = k;
    return 0;
}

/* An idle connection is usable if the peer has neither closed it (a read
 * sees EOF) nor sent anything unasked (a late byte would desynchronise
 * the next response). One non-blocking read, no parking. */
static int conn_validate(void *arg, void *res) {
    (void)arg;
    client_conn *k = res;
    /* TLS: records that came meanwhile (TLS 1.3 tickets) are no data */
    if (k->ssl) return tern__tls_idle_check(k->ssl);
    /* a byte read here is consumed, which does not matter: the connection
     * is discarded whenever there was one */
    char b;
    ssize_t n = tern__transport_read(&k->t, &b, 1);
    if (n == 0) return -ECONNRESET;
    if (n > 0) return -EPROTO;
    return n == -EAGAIN ? 0 : (int)n;
}

static void conn_destroy(void *arg, void *res) {
    (void)arg;
    client_conn *k = res;
    if (k->ssl)
        tern__tls_close(k->ssl);
    else
        k->t.ops->release(&k->t);
    close(k->fd);
    free(k);
}

/* This worker's connection pool, created by its first request. */
static client_worker *worker_state(tern_client *c, int *err) {
    tern__sched *s = tern__sched_self;
    if (!s || !s->current) {
        *err = -EPERM;
        return NULL;
    }
    if (s->id < 0 || s->id >= MAX_WORKERS) {
        *err = -ERANGE;
        return NULL;
    }
    client_worker *w = atomic_load_explicit(&c->workers[s->id], memory_order_acquire);
    if (w) return w;
    w = calloc(1, sizeof *w);
    if (!w) {
        *err = -ENOMEM;
        return NULL;
    }
    w->client = c;
    tern_pool_config pc = {.max_size = c->cfg.max_connections,
                           .min_idle = c->cfg.min_idle,
                           .idle_timeout_ms = c->cfg.idle_timeout_ms,
                           .validate_on_acquire = 1,
                           .create = conn_create,
                           .validate = conn_validate,
                           .destroy = conn_destroy,
                           .arg = w};
    w->pool = tern_pool_new(&pc);
    if (!w->pool) {
        free(w);
        *err = -ENOMEM;
        return NULL;
    }
    client_worker *expected = NULL;
    if (!atomic_compare_exchange_strong(&c->workers[s->id], &expected, w)) {
        /* two schedulers share an id (not a server's workers): use theirs */
        tern_pool_free(w->pool);
        free(w);
        return expected;
    }
    return w;
}

/* ---- request ---------------------------------------------------------------- */

static int is_token(const char *s) {
    if (!*s) return 0;
    for (; *s; s++)
        if (!(tern__http_char_class[(unsigned char)*s] & TERN_CHAR_TOKEN)) return 0;
    return 1;
}

/* field-value: no CR, LF, NUL or other controls but HTAB (RFC 9110 §5.5) */
static int is_field_value(const char *s) {
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch < 0x20 && ch != '\t') || ch == 0x7f) return 0;
    }
    return 1;
}

static int idempotent(const char *m) {
    static const char *const ok[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
        if (strcmp(m, ok[i]) == 0) return 1;
    return 0;
}

/* Builds the request head in a malloc'd buffer. 0 or -EINVAL/-ENOMEM. */
static int build_head(tern_client *c, const tern_client_request *req, char **out, size_t *out_len) {
    const char *method = req->method ? req->method : "GET";
    const char *path = req->path ? req->path : c->path;
    if (!is_token(method)) return -EINVAL;
    if (!(path[0] == '/' || (path[0] == '*' && !path[1] && strcmp(method, "OPTIONS") == 0)))
        return -EINVAL;
    for (const char *q = path; *q; q++)
        if (!is_target_char((unsigned char)*q)) return -EINVAL;
    size_t need = strlen(method) + strlen(path) + strlen(c->authority) + 64;
    if (req->headers) {
        for (size_t i = 0; req->headers[i]; i += 2) {
            const char *n = req->headers[i], *v = req->headers[i + 1];
            if (!v || !is_token(n) || !is_field_value(v)) return -EINVAL;
            /* framing and connection management belong to the client */
            if (!strcasecmp(n, "Host") || !strcasecmp(n, "Content-Length") ||
                !strcasecmp(n, "Transfer-Encoding") || !strcasecmp(n, "Connection"))
                return -EINVAL;
            need += strlen(n) + strlen(v) + 4;
        }
    }
    char *h = malloc(need);
    if (!h) return -ENOMEM;
    size_t len =
        (size_t)snprintf(h, need, "%s %s HTTP/1.1\r\nHost: %s\r\n", method, path, c->authority);
    if (req->headers) {
        for (size_t i = 0; req->headers[i]; i += 2)
            len += (size_t)snprintf(h + len, need - len, "%s: %s\r\n", req->headers[i],
                                    req->headers[i + 1]);
    }
    /* a body always gets a length; so do POST/PUT/PATCH without one, which
     * some servers otherwise answer with 411 */
    if (req->body_len || !strcmp(method, "POST") || !strcmp(method, "PUT") ||
        !strcmp(method, "PATCH"))
        len += (size_t)snprintf(h + len, need - len, "Content-Length: %zu\r\n", req->body_len);
    len += (size_t)snprintf(h + len, need - len, "\r\n");
    *out = h;
    *out_len = len;
    return 0;
}

/* ---- the exchange ---------------------------------------------------------- */

/* Everything one request/response on a connection needs. */
typedef struct exchange {
    tern_client *c;
    client_conn *k;
    uint64_t deadline; /* the whole exchange (exchange_timeout_ms), absolute ns */
    uint64_t io_ns;    /* longest wait for the socket */
    size_t since_park; /* bytes read since this coroutine last let others run */
    char *data;        /* the response, as read */
    size_t len, cap, limit;
    int eof;
    size_t received; /* bytes read in total */
} exchange;

/* The deadline of the next wait: the per-wait timeout, but never past the
 * whole exchange's. */
static uint64_t wait_deadline(const exchange *x) {
    uint64_t d = tern_clock_ns() + x->io_ns;
    return d < x->deadline ? d : x->deadline;
}

/* Writes the head and body, parking while the upstream reads slowly. */
static int send_request(exchange *x, const char *head, size_t head_len, const void *body,
                        size_t body_len) {
    struct iovec iov[2] = {{(void *)head, head_len}, {(void *)body, body_len}};
    int niov = body_len ? 2 : 1;
    struct iovec *v = iov;
    while (niov) {
        ssize_t n = tern__transport_writev(&x->k->t, v, niov, 0);
        if (n == -EAGAIN) {
            int r = tern__transport_wait_io(&x->k->t, EPOLLOUT, wait_deadline(x));
            if (r < 0) return r;
            continue;
        }
        if (n < 0) return n == -EPIPE ? -ECONNRESET : (int)n;
        size_t left = (size_t)n;
        while (niov && left >= v->iov_len) {
            left -= v->iov_len;
            v++;
            niov--;
        }
        if (niov) {
            v->iov_base = (char *)v->iov_base + left;
            v->iov_len -= left;
        }
    }
    return 0;
}

/* Reads more of the response, parking while the socket is empty. >0 bytes
 * read, 0 at EOF, or -errno. Keeps one byte spare for a terminating NUL.
 *
 * An upstream that keeps the socket full (a flood of interim responses,
 * an endless body) would otherwise never make this coroutine park, and
 * the worker would serve nothing else: after YIELD_BYTES read without a
 * park it yields, and the exchange deadline is checked on every read, not
 * only when a wait times out. */
static ssize_t fill(exchange *x) {
    if (x->len + 1 >= x->cap) {
        if (x->cap >= x->limit) return -EMSGSIZE;
        size_t cap = x->cap * 2 < x->limit ? x->cap * 2 : x->limit;
        char *d = realloc(x->data, cap);
        if (!d) return -ENOMEM;
        x->data = d;
        x->cap = cap;
    }
    for (;;) {
        if (tern_clock_ns() >= x->deadline) return -ETIMEDOUT;
        ssize_t n = tern__transport_read(&x->k->t, x->data + x->len, x->cap - x->len - 1);
        if (n > 0) {
            x->len += (size_t)n;
            x->received += (size_t)n;
            x->since_park += (size_t)n;
            if (x->since_park >= YIELD_BYTES) {
                x->since_park = 0;
                int y = tern_yield();
                if (y < 0) return y;
            }
            return n;
        }
        if (n == 0) {
            x->eof = 1;
            return 0;
        }
        if (n != -EAGAIN) return n;
        x->since_park = 0;
        int r = tern__transport_wait_io(&x->k->t, EPOLLIN, wait_deadline(x));
        if (r < 0) return r;
    }
}

/* fill() for a message that is not complete yet: EOF is an error. */
static int fill_more(exchange *x) {
    ssize_t n = fill(x);
    if (n == 0) return -ECONNRESET;
    return n < 0 ? (int)n : 0;
}

static int reserve(exchange *x, size_t need) {
    if (need <= x->cap) return 0;
    if (need > x->limit) return -EMSGSIZE;
    char *d = realloc(x->data, need);
    if (!d) return -ENOMEM;
    x->data = d;
    x->cap = need;
    return 0;
}

/* The final response head into *hr (its headers in hdrs), skipping interim
 * 1xx responses (RFC 9110 §15.2), at most MAX_INTERIM of them. Returns the
 * head length or -errno. */
static int read_head(exchange *x, tern__http_response *hr, tern__http_header *hdrs) {
    const tern_client_config *cfg = &x->c->cfg;
    tern__http_limits lim = {.max_head = cfg->max_response_head,
                             .max_headers = (uint32_t)cfg->max_response_headers};
    for (int interim = 0;; interim++) {
        memset(hr, 0, sizeof *hr);
        hr->headers = hdrs;
        int r;
        while ((r = tern__http_parse_response(x->data, x->len, hr, &lim)) == TERN_RESP_INCOMPLETE) {
            int e = fill_more(x);
            if (e < 0) return e;
        }
        if (r == TERN_RESP_MALFORMED) return -EPROTO;
        if (r < 0) return -EMSGSIZE; /* TOO_LARGE, TOO_MANY_HEADERS */
        if (hr->status >= 200) return r;
        /* 101 would switch protocols, which was never asked for; an
         * endless stream of 1xx is a way to hold us forever */
        if (hr->status == 101 || interim == MAX_INTERIM) return -EPROTO;
        memmove(x->data, x->data + r, x->len - (size_t)r);
        x->len -= (size_t)r;
    }
}

/* Decodes a chunked body in place from body_off. 0 with *body_len and
 * *leftover (bytes after the body), or -errno. */
static int read_chunked(exchange *x, size_t body_off, size_t *body_len, size_t *leftover) {
    const tern_client_config *cfg = &x->c->cfg;
    tern__chunked d;
    tern__chunked_init(&d, cfg->max_response_body);
    /* the server's bounds are for clients it does not trust either; an
     * upstream gets tighter ones: extensions are skipped unread, so a few
     * KiB in all is plenty, and a trailer section is bounded like a head */
    tern__chunked_set_limits(&d, CHUNK_LINE_MAX, (uint32_t)cfg->max_response_head, CHUNK_EXT_MAX);
    size_t raw = body_off, len = 0; /* undecoded input starts at raw */
    for (;;) {
        size_t used = 0, out = 0;
        tern__chunked_result dr = tern__chunked_decode(&d, x->data + raw, x->len - raw, &used,
                                                       x->data + body_off + len, &out);
        len += out;
        raw += used;
        if (dr == TERN__CHUNKED_TOO_LARGE) return -EMSGSIZE;
        if (dr == TERN__CHUNKED_BAD) return -EPROTO;
        /* close the gap between the decoded body and the input left */
        size_t rest = x->len - raw;
        memmove(x->data + body_off + len, x->data + raw, rest);
        raw = body_off + len;
        x->len = raw + rest;
        if (dr == TERN__CHUNKED_DONE) {
            *body_len = len;
            *leftover = rest;
            return 0;
        }
        int e = fill_more(x);
        if (e < 0) return e;
    }
}

/* Reads the body that ends at the close. 0 with *body_len, or -errno. */
static int read_until_close(exchange *x, size_t body_off, size_t *body_len) {
    size_t max = x->c->cfg.max_response_body;
    while (!x->eof) {
        if (x->len - body_off > max) return -EMSGSIZE;
        ssize_t n = fill(x);
        if (n < 0) return (int)n;
    }
    *body_len = x->len - body_off;
    return *body_len > max ? -EMSGSIZE : 0;
}

/* The public header array: names and values NUL-terminated in place (over
 * the ':' and the byte after the trimmed value, CR or OWS, which the
 * parser has already judged). */
static tern_client_header *export_headers(char *d, const tern__http_response *hr) {
    tern_client_header *out = calloc(hr->num_headers ? hr->num_headers : 1, sizeof *out);
    if (!out) return NULL;
    for (uint32_t i = 0; i < hr->num_headers; i++) {
        const tern__http_header *h = &hr->headers[i];
        d[h->name_off + h->name_len] = 0;
        d[h->value_off + h->value_len] = 0;
        out[i].name = d + h->name_off;
        out[i].value = d + h->value_off;
    }
    d[hr->reason_off + hr->reason_len] = 0;
    return out;
}

/* One exchange on connection k. On success fills resp and *keep (the
 * connection may be reused). */
static int exchange_run(exchange *x, const char *method, const char *head, size_t head_len,
                        const tern_client_request *req, tern_client_response *resp, int *keep) {
    const tern_client_config *cfg = &x->c->cfg;
    *keep = 0;
    int r = send_request(x, head, head_len, req->body, req->body_len);
    if (r < 0) return r;

    x->cap = INITIAL_BUF;
    x->limit = cfg->max_response_head + cfg->max_response_body + CHUNK_SLACK;
    x->data = malloc(x->cap);
    tern__http_header *hdrs = malloc(cfg->max_response_headers * sizeof *hdrs);
    tern_client_header *pub = NULL;
    if (!x->data || !hdrs) {
        r = -ENOMEM;
        goto out;
    }
    tern__http_response hr;
    r = read_head(x, &hr, hdrs);
    if (r < 0) goto out;
    size_t hl = (size_t)r, body_len = 0, leftover = 0;
    int until_close = 0;
    r = 0;
    if (!strcmp(method, "HEAD") || hr.status == 204 || hr.status == 304) {
        leftover = x->len - hl;
    } else if (hr.flags & TERN_RESP_CHUNKED) {
        r = read_chunked(x, hl, &body_len, &leftover);
    } else if (hr.flags & TERN_RESP_HAS_LENGTH) {
        if (hr.content_length > cfg->max_response_body) {
            r = -EMSGSIZE;
            goto out;
        }
        body_len = (size_t)hr.content_length;
        r = reserve(x, hl + body_len + 1);
        while (r == 0 && x->len < hl + body_len) r = fill_more(x);
        leftover = x->len - hl - body_len;
    } else {
        /* no framing, or a coding other than chunked last (RFC 9112 §6.3):
         * the body is whatever arrives before the close */
        until_close = 1;
        r = read_until_close(x, hl, &body_len);
    }
    if (r < 0) goto out;
    pub = export_headers(x->data, &hr);
    if (!pub) {
        r = -ENOMEM;
        goto out;
    }
    x->data[hl + body_len] = 0; /* fill() and reserve() keep this byte */

    /* bytes past the response were never asked for: the stream is suspect */
    *keep = (hr.flags & TERN_RESP_KEEP_ALIVE) && !until_close && !leftover && !x->eof;
    resp->status = hr.status;
    resp->http_minor = (int)hr.minor;
    resp->reason = x->data + hr.reason_off;
    resp->headers = pub;
    resp->nheaders = hr.num_headers;
    resp->body = x->data + hl;
    resp->body_len = body_len;
    resp->internal_ = x->data;
    x->data = NULL; /* the response owns it */
out:
    free(hdrs);
    free(x->data);
    return r;
}

int tern_client_send(tern_client *c, const tern_client_request *req, tern_client_response *resp) {
    memset(resp, 0, sizeof *resp);
    int err = 0;
    client_worker *w = worker_state(c, &err);
    if (!w) return err;
    bump(&w->requests);
    const char *method = req->method ? req->method : "GET";
    /* the whole call, a retry included (acquire and connect have their
     * own, shorter, timeouts and are not cut short by this one) */
    uint64_t deadline = c->cfg.exchange_timeout_ms
                            ? tern_clock_ns() + (uint64_t)c->cfg.exchange_timeout_ms * 1000000ull
                            : UINT64_MAX;
    char *head;
    size_t head_len;
    int r = build_head(c, req, &head, &head_len);
    if (r < 0) {
        bump(&w->errors);
        return r;
    }
    for (int attempt = 0;; attempt++) {
        void *v;
        r = tern_pool_acquire(w->pool, c->cfg.acquire_timeout_ms, &v);
        if (r < 0) {
            if (r == -ETIMEDOUT) r = -EBUSY; /* no free connection, not a slow upstream */
            if (r == CONNECT_TIMEOUT) r = -ETIMEDOUT;
            break;
        }
        client_conn *k = v;
        int reused = k->uses > 0;
        if (reused) bump(&w->reused);
        int keep;
        exchange x = {.c = c,
                      .k = k,
                      .deadline = deadline,
                      .io_ns = (c->cfg.io_timeout_ms ? c->cfg.io_timeout_ms : (unsigned)-1 / 2) *
                               1000000ull};
        r = exchange_run(&x, method, head, head_len, req, resp, &keep);
        size_t received = x.received;
        if (r == 0) {
            resp->reused = reused;
            resp->connect_ns = reused ? 0 : k->connect_ns;
            k->uses++;
            bump(&w->responses);
            if (keep)
                tern_pool_release(w->pool, k);
            else
                tern_pool_discard(w->pool, k);
            break;
        }
        tern_pool_discard(w->pool, k);
        /* a kept-alive connection the upstream closed just as we sent: the
         * request never reached it, so an idempotent one may go again */
        if (reused && !received && attempt == 0 && idempotent(method) &&
            (r == -ECONNRESET || r == -EPIPE)) {
            bump(&w->retries);
            continue;
        }
        break;
    }
    free(head);
    if (r < 0) bump(&w->errors);
    return r;
}

int tern_client_get(tern_client *c, const char *path, tern_client_response *resp) {
    tern_client_request req = {.method = "GET", .path = path};
    return tern_client_send(c, &req, resp);
}

void tern_client_response_free(tern_client_response *resp) {
    if (!resp) return;
    free(resp->internal_);
    free((void *)resp->headers);
    memset(resp, 0, sizeof *resp);
}

const char *tern_client_header_get(const tern_client_response *resp, const char *name) {
    for (size_t i = 0; i < resp->nheaders; i++)
        if (!strcasecmp(resp->headers[i].name, name)) return resp->headers[i].value;
    return NULL;
}

/* ---- lifecycle, stats ------------------------------------------------------------ */

tern_client *tern_client_new(const char *url, const tern_client_config *cfg) {
    tern_client *c = calloc(1, sizeof *c);
    if (!c) return NULL;
    if (cfg)
        c->cfg = *cfg;
    else
        tern_client_config_init(&c->cfg);
    pthread_mutex_init(&c->lock, NULL);
    int https = 0;
    int r = url ? parse_url(c, url, &https) : -EINVAL;
    if (r == 0 && https) {
        char err[256] = "";
        c->tls = tern__tls_client_ctx_new(c->cfg.tls_ca_file, c->cfg.tls_insecure, err, sizeof err);
        if (!c->tls) {
            fprintf(stderr, "tern: client %s: %s\n", url, err[0] ? err : "out of memory");
            r = -EINVAL;
        } else if (c->cfg.tls_insecure) {
            fprintf(stderr, "tern: WARNING: client %s does not verify the server's certificate "
                            "(tls_insecure)\n", url);
        }
    }
    if (r == 0 && (!c->cfg.max_connections || c->cfg.min_idle > c->cfg.max_connections ||
                   !c->cfg.max_response_head || c->cfg.max_response_headers > UINT32_MAX))
        r = -EINVAL;
    if (!c->cfg.max_response_headers) c->cfg.max_response_headers = 100;
    if (r < 0) {
        tern_client_free(c);
        errno = -r;
        return NULL;
    }
    return c;
}

void tern_client_free(tern_client *c) {
    if (!c) return;
    if (c->metrics_name[0]) tern_metrics_unregister_source(c->metrics_server, c->metrics_name);
    for (int i = 0; i < MAX_WORKERS; i++) {
        client_worker *w = atomic_load(&c->workers[i]);
        if (!w) continue;
        if (tern_pool_free(w->pool) < 0) continue; /* in use or another worker: left alone */
        free(w);
    }
    pthread_mutex_destroy(&c->lock);
    if (c->tls) tern__tls_ctx_free(c->tls);
    free(c->url);
    free(c->host);
    free(c->authority);
    free(c->path);
    free(c);
}

const char *tern_client_url(const tern_client *c) {
    return c->url;
}

void tern_client_stats_read(tern_client *c, tern_client_stats *out) {
    memset(out, 0, sizeof *out);
    for (int i = 0; i < MAX_WORKERS; i++) {
        client_worker *w = atomic_load_explicit(&c->workers[i], memory_order_acquire);
        if (!w) continue;
        tern_pool_stats st;
        tern_pool_stats_read(w->pool, &st);
        tern_pool_stats_add(&out->pool, &st);
        out->requests += __atomic_load_n(&w->requests, __ATOMIC_RELAXED);
        out->responses += __atomic_load_n(&w->responses, __ATOMIC_RELAXED);
        out->errors += __atomic_load_n(&w->errors, __ATOMIC_RELAXED);
        out->reused += __atomic_load_n(&w->reused, __ATOMIC_RELAXED);
        out->retries += __atomic_load_n(&w->retries, __ATOMIC_RELAXED);
        out->connects += __atomic_load_n(&w->connects, __ATOMIC_RELAXED);
        out->tls_resumed += __atomic_load_n(&w->tls_resumed, __ATOMIC_RELAXED);
    }
}

static void metrics_source(void *arg, tern_metrics_writer *mw) {
    tern_client_stats st;
    tern_client_stats_read(arg, &st);
    tern_pool_metrics_write(&st.pool, mw);
    tern_metrics_counter(mw, "requests_total", "Requests sent", (double)st.requests);
    tern_metrics_counter(mw, "responses_total", "Complete responses", (double)st.responses);
    tern_metrics_counter(mw, "errors_total", "Requests that failed", (double)st.errors);
    tern_metrics_counter(mw, "reused_total", "Requests on kept-alive connections",
                         (double)st.reused);
    tern_metrics_counter(mw, "retries_total", "Retries after a stale connection",
                         (double)st.retries);
    tern_metrics_counter(mw, "connects_total", "Connections opened", (double)st.connects);
    tern_metrics_counter(mw, "tls_resumed_total", "TLS connects that resumed a session",
                         (double)st.tls_resumed);
}

int tern_client_register_metrics(tern_client *c, tern_server *s, const char *name) {
    if (!name || strlen(name) >= sizeof c->metrics_name || c->metrics_name[0]) return -EINVAL;
    int r = tern_metrics_register_source(s, name, metrics_source, c);
    if (r < 0) return r;
    c->metrics_server = s;
    snprintf(c->metrics_name, sizeof c->metrics_name, "%s", name);
    return 0;
}
