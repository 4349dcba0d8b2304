/* Outbound HTTP/1.1 client (see include/tern/client.h).
 *
 * One request is: take a connection from this worker's pool (connecting
 * if needed), write the request with one sendmsg (head + body), read into
 * one growing buffer, parse the response head in place (NULs written over
 * the line ends and colons, so header names and values are C strings),
 * then the body: Content-Length exactly, chunked decoded in place with
 * http/chunked.c's decoder, or up to EOF when unframed. The response owns
 * that buffer; the connection goes back to the pool only when the exchange
 * ended exactly at a message boundary and both sides keep it alive.
 *
 * Response framing follows RFC 9112 §6.3: HEAD and 1xx/204/304 have no
 * body; Transfer-Encoding wins, and chunked must be the last coding (else
 * the body runs to close); Transfer-Encoding together with Content-Length,
 * or Content-Length values that differ, are refused as malformed (§6.3
 * calls both "ought to be handled as an error": they are how response
 * splitting and smuggling look from this side). */
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

/* The transport's wait: tern_wait_fd on the connection's socket. */
static int client_wait(void *waiter, uint32_t events, uint64_t deadline_ns) {
    client_conn *k = waiter;
    int64_t ms = -1;
    if (deadline_ns) {
        uint64_t now = tern_clock_ns();
        ms = deadline_ns > now ? (int64_t)((deadline_ns - now + 999999) / 1000000) : 0;
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
        tern__transport_tls(&k->t, k->ssl, fd, &k->tflags, client_wait, k);
        r = tern__tls_handshake(&k->t, deadline, NULL, 0);
        if (r < 0) {
            tern__tls_close(k->ssl);
            free(k);
            close(fd);
            return r == -ETIMEDOUT ? CONNECT_TIMEOUT : r;
        }
        if (tern__tls_resumed(k->ssl)) bump(&w->tls_resumed);
    } else {
        tern__transport_socket(&k->t, fd, &k->tflags, client_wait, k);
    }
    k->connect_ns = tern_clock_ns() - t0;
    bump(&w->connects);
    *res = k;
    return 0;
}

/* An idle connection is usable if the peer has neither closed it (recv
 * sees EOF) nor sent anything unasked (a late byte would desynchronise
 * the next response). One non-blocking peek, no parking. */
static int conn_validate(void *arg, void *res) {
    client_conn *k = res;
    /* TLS: records that came meanwhile (TLS 1.3 tickets) are no data */
    if (k->ssl) return tern__tls_idle_check(k->ssl);
    char b;
    ssize_t n = recv(k->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n == 0) return -ECONNRESET;
    if (n > 0) return -EPROTO;
    return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
}

static void conn_destroy(void *arg, void *res) {
    client_conn *k = res;
    tern__tls_close(k->ssl);
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

static int send_all(client_conn *k, const char *head, size_t head_len, const void *body, size_t body_len,
                    unsigned io_ms) {
    struct iovec iov[2] = {{(void *)head, head_len}, {(void *)body, body_len}};
    int niov = body_len ? 2 : 1;
    struct iovec *v = iov;
    while (niov) {
        ssize_t n = tern__transport_writev(&k->t, v, niov, 0);
        if (n < 0) {
            if (n != -EAGAIN) return n == -EPIPE ? -ECONNRESET : (int)n;
            int w = tern__transport_wait_io(&k->t, EPOLLOUT, tern_clock_ns() + (uint64_t)io_ms * 1000000ull);
            if (w < 0) return w;
            continue;
        }
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

/* ---- response ------------------------------------------------------------------ */

typedef struct rbuf {
    char *data;
    size_t len, cap, limit;
    int eof;
    size_t received; /* bytes read from the socket in total */
} rbuf;

/* Reads more into b, parking while the socket is empty. >0 bytes read,
 * 0 at EOF, or -errno. Keeps one byte spare for a terminating NUL. */
static ssize_t fill(client_conn *k, rbuf *b, unsigned io_ms) {
    if (b->len + 1 >= b->cap) {
        if (b->cap >= b->limit) return -EMSGSIZE;
        size_t cap = b->cap * 2 < b->limit ? b->cap * 2 : b->limit;
        char *d = realloc(b->data, cap);
        if (!d) return -ENOMEM;
        b->data = d;
        b->cap = cap;
    }
    for (;;) {
        ssize_t n = tern__transport_read(&k->t, b->data + b->len, b->cap - b->len - 1);
        if (n > 0) {
            b->len += (size_t)n;
            b->received += (size_t)n;
            return n;
        }
        if (n == 0) {
            b->eof = 1;
            return 0;
        }
        if (n != -EAGAIN) return n;
        int w = tern__transport_wait_io(&k->t, EPOLLIN, tern_clock_ns() + (uint64_t)io_ms * 1000000ull);
        if (w < 0) return w;
    }
}

static int reserve(rbuf *b, size_t need) {
    if (need <= b->cap) return 0;
    if (need > b->limit) return -EMSGSIZE;
    char *d = realloc(b->data, need);
    if (!d) return -ENOMEM;
    b->data = d;
    b->cap = need;
    return 0;
}

/* Offset just past the blank line ending the head, or 0 if not there yet.
 * Lines end in CRLF; a bare LF is accepted too (RFC 9112 §2.2 lets a
 * recipient do so), a bare CR is refused by the parser. */
static size_t find_head_end(const char *d, size_t len) {
    for (size_t i = 0; i < len; i++) {
        if (d[i] != '\n') continue;
        if (i + 1 < len && d[i + 1] == '\n') return i + 2;
        if (i + 2 < len && d[i + 1] == '\r' && d[i + 2] == '\n') return i + 3;
    }
    return 0;
}

typedef struct head_info {
    int status, minor;
    char *reason;
    tern_client_header *hdrs;
    size_t nhdrs;
    int chunked, te_other, has_cl, conn_close, conn_keepalive;
    uint64_t cl;
} head_info;

static int has_token(const char *list, const char *tok) {
    size_t tl = strlen(tok);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == '\t' || *p == ',') p++;
        const char *s = p;
        while (*p && *p != ',') p++;
        const char *e = p;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t')) e--;
        if ((size_t)(e - s) == tl && strncasecmp(s, tok, tl) == 0) return 1;
    }
    return 0;
}

/* The last comma-separated element of a list (for Transfer-Encoding). */
static int last_token_is(const char *list, const char *tok) {
    const char *s = strrchr(list, ',');
    s = s ? s + 1 : list;
    while (*s == ' ' || *s == '\t') s++;
    size_t n = strlen(s);
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t')) n--;
    return n == strlen(tok) && strncasecmp(s, tok, n) == 0;
}

/* Content-Length: 1*DIGIT, possibly as a list of equal values ("5, 5",
 * which RFC 9110 §8.6 lets a recipient accept). 0 or -EPROTO. */
static int parse_cl(const char *v, head_info *h) {
    const char *p = v;
    for (;;) {
        while (*p == ' ' || *p == '\t') p++;
        if (*p < '0' || *p > '9') return -EPROTO;
        uint64_t x = 0;
        while (*p >= '0' && *p <= '9') {
            if (x > (UINT64_MAX - 9) / 10) return -EPROTO;
            x = x * 10 + (uint64_t)(*p++ - '0');
        }
        while (*p == ' ' || *p == '\t') p++;
        if (h->has_cl && h->cl != x) return -EPROTO;
        h->has_cl = 1;
        h->cl = x;
        if (!*p) return 0;
        if (*p++ != ',') return -EPROTO;
    }
}

/* Parses the head d[0..len) in place: status-line, then field lines.
 * 0, -EPROTO or -ENOMEM (h->hdrs is then freed). */
static int parse_head(char *d, size_t len, head_info *h) {
    memset(h, 0, sizeof *h);
    /* status-line = HTTP-version SP 3DIGIT SP [reason] (RFC 9112 §4) */
    if (len < 13 || memcmp(d, "HTTP/1.", 7) != 0 || (d[7] != '0' && d[7] != '1') || d[8] != ' ')
        return -EPROTO;
    h->minor = d[7] - '0';
    for (int i = 9; i < 12; i++)
        if (d[i] < '0' || d[i] > '9') return -EPROTO;
    h->status = (d[9] - '0') * 100 + (d[10] - '0') * 10 + (d[11] - '0');
    if (h->status < 100 || (d[12] != ' ' && d[12] != '\r' && d[12] != '\n')) return -EPROTO;
    size_t nlines = 0;
    for (size_t i = 0; i < len; i++) nlines += d[i] == '\n';
    h->hdrs = calloc(nlines ? nlines : 1, sizeof *h->hdrs);
    if (!h->hdrs) return -ENOMEM;
    char *p = d + 12, *end = d + len;
    /* reason-phrase: HTAB / SP / VCHAR / obs-text up to the line end; a
     * missing SP before an empty reason is tolerated */
    if (*p == ' ') p++;
    h->reason = p;
    int first = 1;
    while (p < end) {
        char *line = p;
        char *nl = memchr(p, '\n', (size_t)(end - p));
        if (!nl) goto bad;
        char *le = nl;
        if (le > line && le[-1] == '\r') le--;
        for (char *q = line; q < le; q++) {
            unsigned char ch = (unsigned char)*q;
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f) goto bad; /* bare CR, NUL, CTLs */
        }
        *le = 0;
        p = nl + 1;
        if (first) {
            first = 0;
            continue; /* the reason phrase, now terminated */
        }
        if (le == line) break; /* the blank line */
        /* field-line = field-name ":" OWS field-value OWS; no obs-fold */
        if (*line == ' ' || *line == '\t') goto bad;
        char *colon = strchr(line, ':');
        if (!colon || colon == line) goto bad;
        *colon = 0;
        if (!is_token(line)) goto bad; /* also refuses space before the colon */
        char *v = colon + 1;
        while (*v == ' ' || *v == '\t') v++;
        char *ve = le;
        while (ve > v && (ve[-1] == ' ' || ve[-1] == '\t')) ve--;
        *ve = 0;
        h->hdrs[h->nhdrs].name = line;
        h->hdrs[h->nhdrs].value = v;
        h->nhdrs++;
        if (!strcasecmp(line, "Content-Length")) {
            if (parse_cl(v, h) < 0) goto bad;
        } else if (!strcasecmp(line, "Transfer-Encoding")) {
            /* several TE fields form one list: only the last element counts */
            h->chunked = last_token_is(v, "chunked");
            h->te_other = !h->chunked;
        } else if (!strcasecmp(line, "Connection")) {
            h->conn_close |= has_token(v, "close");
            h->conn_keepalive |= has_token(v, "keep-alive");
        }
    }
    if ((h->chunked || h->te_other) && h->has_cl) goto bad;
    return 0;
bad:
    free(h->hdrs);
    h->hdrs = NULL;
    return -EPROTO;
}

/* One exchange on connection k. On success fills resp and *keep (the
 * connection may be reused). */
static int exchange(tern_client *c, client_conn *k, const char *method, const char *head,
                    size_t head_len, const tern_client_request *req, tern_client_response *resp,
                    int *keep, size_t *received) {
    unsigned io_ms = c->cfg.io_timeout_ms ? c->cfg.io_timeout_ms : (unsigned)-1 / 2;
    *keep = 0;
    *received = 0;
    int r = send_all(k, head, head_len, req->body, req->body_len, io_ms);
    if (r < 0) return r;

    rbuf b = {.cap = INITIAL_BUF,
              .limit = c->cfg.max_response_head + c->cfg.max_response_body + CHUNK_SLACK};
    b.data = malloc(b.cap);
    if (!b.data) return -ENOMEM;
    head_info h = {0};
    size_t hl;
    for (;;) {
        /* the head, skipping interim 1xx responses (RFC 9110 §15.2) */
        while (!(hl = find_head_end(b.data, b.len))) {
            if (b.len > c->cfg.max_response_head) {
                r = -EMSGSIZE;
                goto fail;
            }
            ssize_t n = fill(k, &b, io_ms);
            if (n == 0) r = -ECONNRESET; /* closed before a whole head */
            if (n <= 0) {
                if (n < 0) r = (int)n;
                goto fail;
            }
        }
        if (hl > c->cfg.max_response_head) {
            r = -EMSGSIZE;
            goto fail;
        }
        r = parse_head(b.data, hl, &h);
        if (r < 0) goto fail;
        if (h.status >= 200) break;
        free(h.hdrs);
        h.hdrs = NULL;
        /* 101 would switch protocols, which was never asked for */
        if (h.status == 101) {
            r = -EPROTO;
            goto fail;
        }
        memmove(b.data, b.data + hl, b.len - hl);
        b.len -= hl;
    }

    size_t body_off = hl, body_len = 0, leftover = 0;
    int until_close = 0;
    if (!strcmp(method, "HEAD") || h.status == 204 || h.status == 304) {
        leftover = b.len - hl;
    } else if (h.chunked) {
        tern__chunked d;
        tern__chunked_init(&d, c->cfg.max_response_body);
        size_t raw = hl; /* undecoded input starts here */
        for (;;) {
            size_t used = 0, out = 0;
            int dr = tern__chunked_decode(&d, b.data + raw, b.len - raw, &used,
                                         b.data + body_off + body_len, &out);
            body_len += out;
            raw += used;
            if (dr == -413) {
                r = -EMSGSIZE;
                goto fail;
            }
            if (dr < 0) {
                r = -EPROTO;
                goto fail;
            }
            /* close the gap between the decoded body and the input left */
            size_t rest = b.len - raw;
            memmove(b.data + body_off + body_len, b.data + raw, rest);
            raw = body_off + body_len;
            b.len = raw + rest;
            if (dr == 1) {
                leftover = rest;
                break;
            }
            ssize_t n = fill(k, &b, io_ms);
            if (n == 0) r = -ECONNRESET;
            if (n <= 0) {
                if (n < 0) r = (int)n;
                goto fail;
            }
        }
    } else if (h.has_cl) {
        if (h.cl > c->cfg.max_response_body) {
            r = -EMSGSIZE;
            goto fail;
        }
        body_len = (size_t)h.cl;
        r = reserve(&b, hl + body_len + 1);
        if (r < 0) goto fail;
        while (b.len < hl + body_len) {
            ssize_t n = fill(k, &b, io_ms);
            if (n == 0) r = -ECONNRESET;
            if (n <= 0) {
                if (n < 0) r = (int)n;
                goto fail;
            }
        }
        leftover = b.len - hl - body_len;
    } else {
        /* no framing: the body is whatever arrives before the close */
        until_close = 1;
        while (!b.eof) {
            if (b.len - hl > c->cfg.max_response_body) {
                r = -EMSGSIZE;
                goto fail;
            }
            ssize_t n = fill(k, &b, io_ms);
            if (n < 0) {
                r = (int)n;
                goto fail;
            }
        }
        body_len = b.len - hl;
        if (body_len > c->cfg.max_response_body) {
            r = -EMSGSIZE;
            goto fail;
        }
    }
    b.data[body_off + body_len] = 0; /* fill() and reserve() keep this byte */

    int alive = h.minor == 1 ? !h.conn_close : (h.conn_keepalive && !h.conn_close);
    /* bytes past the response were never asked for: the stream is suspect */
    *keep = alive && !until_close && !leftover && !b.eof;
    resp->status = h.status;
    resp->http_minor = h.minor;
    resp->reason = h.reason;
    resp->headers = h.hdrs;
    resp->nheaders = h.nhdrs;
    resp->body = b.data + body_off;
    resp->body_len = body_len;
    resp->internal_ = b.data;
    *received = b.received;
    return 0;
fail:
    *received = b.received;
    free(h.hdrs);
    free(b.data);
    return r;
}

int tern_client_send(tern_client *c, const tern_client_request *req, tern_client_response *resp) {
    memset(resp, 0, sizeof *resp);
    int err = 0;
    client_worker *w = worker_state(c, &err);
    if (!w) return err;
    bump(&w->requests);
    const char *method = req->method ? req->method : "GET";
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
        size_t received;
        r = exchange(c, k, method, head, head_len, req, resp, &keep, &received);
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
                   !c->cfg.max_response_head))
        r = -EINVAL;
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
