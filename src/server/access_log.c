/* The access log: formatting (combined, JSON lines), the per-worker buffer
 * and its flushes, reopening for logrotate. See access_log.h. */
#include "server/access_log.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include "http/ctx.h"
#include "rt/sched.h"
#include "server/server.h"
#include "server/worker.h"

/* A worker's buffer: flushed once FLUSH_AT bytes are pending (one write(2)
 * per ~100-200 lines under load) and by a timer every FLUSH_NS otherwise,
 * so a quiet server's lines show up within a tenth of a second. */
#define BUF_SIZE (96u * 1024u)
#define FLUSH_AT (32u * 1024u)
#define FLUSH_NS (100ull * 1000000ull)

typedef struct access_buf {
    tern__timer timer; /* first: the timer callback casts back */
    tern__access_log *log;
    size_t len;
    char data[BUF_SIZE];
} access_buf;

_Static_assert(BUF_SIZE - FLUSH_AT >= TERN__ACCESS_LINE_MAX, "a line always fits after a flush");

/* ---- formatting -------------------------------------------------------------- */

static const char hex[] = "0123456789abcdef";
static const char months[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                   "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};

static char *put(char *p, const char *s, size_t n) {
    memcpy(p, s, n);
    return p + n;
}
#define PUTS(p, lit) put((p), (lit), sizeof(lit) - 1)

static char *put_u64(char *p, uint64_t v) {
    int n = 1;
    for (uint64_t x = v; x >= 10; x /= 10) n++;
    char *e = p + n;
    do {
        *--e = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    return p + n;
}

static char *put_2(char *p, int v) {
    *p++ = (char)('0' + v / 10);
    *p++ = (char)('0' + v % 10);
    return p;
}

/* Bytes a field must escape: for combined (nginx's escaping) '"', '\\' and
 * everything outside printable ASCII become \xHH, so a field never ends
 * early or forges a line; for JSON the same set, as \" \\ or \u00XX (bytes
 * above 0x7f read as Latin-1), so every line is valid JSON whatever the
 * client sent. Runs between them are copied whole. */
/* 1 for the bytes above (a table: one load per byte on the common path) */
static const unsigned char escape_table[256] = {
    [0 ... 0x1f] = 1,
    ['"'] = 1,
    ['\\'] = 1,
    [0x7f ... 0xff] = 1,
};
static int needs_escape(unsigned char c) {
    return escape_table[c];
}

static char *put_escaped(char *p, tern_str s, int json) {
    size_t n = s.len < TERN__ACCESS_FIELD_MAX ? s.len : TERN__ACCESS_FIELD_MAX;
    const unsigned char *in = (const unsigned char *)s.ptr;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = in[i];
        if (!needs_escape(c)) {
            *p++ = (char)c; /* fields are short: a byte loop beats a memcpy call per run */
        } else if (json && (c == '"' || c == '\\')) {
            *p++ = '\\';
            *p++ = (char)c;
        } else {
            p = json ? PUTS(p, "\\u00") : PUTS(p, "\\x");
            *p++ = hex[c >> 4];
            *p++ = hex[c & 15];
        }
    }
    return p;
}

static char *put_clf(char *p, tern_str s) {
    if (!s.ptr || s.len == 0) return PUTS(p, "-");
    return put_escaped(p, s, 0);
}

static char *put_json(char *p, tern_str s) {
    *p++ = '"';
    if (s.ptr) p = put_escaped(p, s, 1);
    *p++ = '"';
    return p;
}

static char *put_json_or_null(char *p, tern_str s) {
    return s.ptr && s.len ? put_json(p, s) : PUTS(p, "null");
}

/* The time in both formats, rebuilt once a second per thread: gmtime_r
 * takes glibc's time zone lock and costs more than the rest of a line. */
typedef struct time_text {
    time_t sec;
    char clf[32]; /* "10/Oct/2026:13:55:36 +0000" */
    char iso[24]; /* "2026-10-10T13:55:36Z" */
    size_t clf_len, iso_len;
} time_text;
static __thread time_text cached_time = {.sec = -1};

static const time_text *time_for(time_t when) {
    time_text *c = &cached_time;
    if (c->sec == when) return c;
    struct tm tm;
    gmtime_r(&when, &tm);
    char *p = put_2(c->clf, tm.tm_mday);
    *p++ = '/';
    p = put(p, months[tm.tm_mon], 3);
    *p++ = '/';
    p = put_u64(p, (uint64_t)(tm.tm_year + 1900));
    *p++ = ':';
    p = put_2(p, tm.tm_hour);
    *p++ = ':';
    p = put_2(p, tm.tm_min);
    *p++ = ':';
    p = put_2(p, tm.tm_sec);
    p = PUTS(p, " +0000");
    c->clf_len = (size_t)(p - c->clf);
    p = put_u64(c->iso, (uint64_t)(tm.tm_year + 1900));
    *p++ = '-';
    p = put_2(p, tm.tm_mon + 1);
    *p++ = '-';
    p = put_2(p, tm.tm_mday);
    *p++ = 'T';
    p = put_2(p, tm.tm_hour);
    *p++ = ':';
    p = put_2(p, tm.tm_min);
    *p++ = ':';
    p = put_2(p, tm.tm_sec);
    *p++ = 'Z';
    c->iso_len = (size_t)(p - c->iso);
    c->sec = when;
    return c;
}

static size_t format_combined(char *out, const tern__access_entry *e, const time_text *tt) {
    char *p = put_clf(out, e->peer);
    p = PUTS(p, " - - [");
    p = put(p, tt->clf, tt->clf_len);
    p = PUTS(p, "] \"");
    p = put_clf(p, e->method);
    *p++ = ' ';
    p = put_clf(p, e->target);
    p = PUTS(p, " HTTP/1.");
    *p++ = (char)('0' + (e->minor ? 1 : 0));
    p = PUTS(p, "\" ");
    p = put_u64(p, (uint64_t)e->status);
    *p++ = ' ';
    p = e->bytes ? put_u64(p, e->bytes) : PUTS(p, "-");
    p = PUTS(p, " \"");
    p = put_clf(p, e->referer);
    p = PUTS(p, "\" \"");
    p = put_clf(p, e->user_agent);
    p = PUTS(p, "\" rid=");
    p = put_clf(p, e->request_id);
    p = PUTS(p, " us=");
    p = put_u64(p, e->duration_us);
    p = PUTS(p, " up=-\n");
    return (size_t)(p - out);
}

static size_t format_json(char *out, const tern__access_entry *e, const time_text *tt) {
    char *p = PUTS(out, "{\"time\":\"");
    p = put(p, tt->iso, tt->iso_len);
    p = PUTS(p, "\",\"remote\":");
    p = put_json(p, e->peer);
    p = PUTS(p, ",\"method\":");
    p = put_json(p, e->method);
    p = PUTS(p, ",\"target\":");
    p = put_json(p, e->target);
    p = PUTS(p, ",\"proto\":\"HTTP/1.");
    *p++ = (char)('0' + (e->minor ? 1 : 0));
    p = PUTS(p, "\",\"status\":");
    p = put_u64(p, (uint64_t)e->status);
    p = PUTS(p, ",\"bytes\":");
    p = put_u64(p, e->bytes);
    p = PUTS(p, ",\"referer\":");
    p = put_json_or_null(p, e->referer);
    p = PUTS(p, ",\"user_agent\":");
    p = put_json_or_null(p, e->user_agent);
    p = PUTS(p, ",\"request_id\":");
    p = put_json_or_null(p, e->request_id);
    p = PUTS(p, ",\"duration_us\":");
    p = put_u64(p, e->duration_us);
    p = PUTS(p, ",\"upstream_us\":null}\n");
    return (size_t)(p - out);
}

size_t tern__access_format(char *out, tern_access_log_format format, const tern__access_entry *e) {
    const time_text *tt = time_for(e->when);
    return format == TERN_ACCESS_LOG_JSON ? format_json(out, e, tt) : format_combined(out, e, tt);
}

/* ---- the file ------------------------------------------------------------------ */

static int open_log(const char *path) {
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    return fd < 0 ? -errno : fd;
}

int tern_server_access_log(tern_server *s, const char *path, tern_access_log_format format) {
    if (!s || !path || !path[0] ||
        (format != TERN_ACCESS_LOG_COMBINED && format != TERN_ACCESS_LOG_JSON))
        return -EINVAL;
    if (s->workers || s->alog) return -EBUSY;
    tern__access_log *log = calloc(1, sizeof *log);
    if (!log) return -ENOMEM;
    log->format = format;
    pthread_mutex_init(&log->write_lock, NULL);
    if (strcmp(path, "-") == 0) {
        log->fd = STDOUT_FILENO;
    } else {
        log->path = strdup(path);
        int fd = log->path ? open_log(path) : -ENOMEM;
        if (fd < 0) {
            free(log->path);
            free(log);
            return fd;
        }
        log->fd = fd;
        log->owns_fd = 1;
    }
    s->alog = log;
    return 0;
}

/* The new file takes the old one's descriptor (dup3), so a worker that is
 * writing right now finishes into the old file and every later write goes
 * to the new one: no descriptor is ever closed under a worker. */
int tern_server_reopen_access_log(tern_server *s) {
    tern__access_log *log = s ? s->alog : NULL;
    if (!log) return -EINVAL;
    if (!log->owns_fd) return 0;
    int fd = open_log(log->path);
    if (fd < 0) return fd;
    int r = dup3(fd, log->fd, O_CLOEXEC) < 0 ? -errno : 0;
    close(fd);
    return r;
}

void tern__access_log_free(tern__access_log *log) {
    if (!log) return;
    if (log->owns_fd) close(log->fd);
    pthread_mutex_destroy(&log->write_lock);
    free(log->path);
    free(log);
}

/* A regular file's write may block on the disk for a moment; lines are
 * written in big chunks (one write per FLUSH_AT bytes), so that moment is
 * rare. The lock keeps two workers' chunks apart on a pipe. */
static void flush(access_buf *b) {
    if (!b->len) return;
    tern__access_log *log = b->log;
    size_t off = 0;
    pthread_mutex_lock(&log->write_lock);
    while (off < b->len) {
        ssize_t n = write(log->fd, b->data + off, b->len - off);
        if (n > 0) {
            off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else {
            __atomic_fetch_add(&log->dropped, 1, __ATOMIC_RELAXED);
            break;
        }
    }
    pthread_mutex_unlock(&log->write_lock);
    b->len = 0;
}

static void flush_fire(tern__timer *t) {
    access_buf *b = (access_buf *)t;
    flush(b);
    tern__wheel_add(&tern__worker_self->sched.wheel, t, tern__worker_self->sched.now_ns + FLUSH_NS);
}

int tern__access_log_worker_start(tern__worker *w) {
    access_buf *b = malloc(sizeof *b);
    if (!b) return -ENOMEM;
    b->timer = (tern__timer){.fn = flush_fire};
    b->log = w->server->alog;
    b->len = 0;
    w->alog = b;
    tern__wheel_add(&w->sched.wheel, &b->timer, tern_clock_ns() + FLUSH_NS);
    return 0;
}

void tern__access_log_worker_stop(tern__worker *w) {
    access_buf *b = w->alog;
    if (!b) return;
    tern__wheel_cancel(&w->sched.wheel, &b->timer);
    flush(b);
    free(b);
    w->alog = NULL;
}

/* ---- one request ------------------------------------------------------------------ */

static tern_str header(const tern_ctx *ctx, const char *name) {
    const char *v = tern_req_header(ctx, name);
    return v ? (tern_str){v, strlen(v)} : (tern_str){NULL, 0};
}

/* Dotted quads by hand: inet_ntop formats IPv4 through sprintf. */
void tern__peer_text_set(tern__peer_text *p, const struct sockaddr_storage *ss) {
    p->len = 0;
    if (ss->ss_family == AF_INET) {
        const unsigned char *a = (const unsigned char *)&((const struct sockaddr_in *)ss)->sin_addr;
        char *o = p->text;
        for (int i = 0; i < 4; i++) {
            if (i) *o++ = '.';
            o = put_u64(o, a[i]);
        }
        p->len = (uint8_t)(o - p->text);
    } else if (ss->ss_family == AF_INET6) {
        if (inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)ss)->sin6_addr, p->text,
                      sizeof p->text))
            p->len = (uint8_t)strlen(p->text);
    } else {
        memcpy(p->text, "unix", 4);
        p->len = 4;
    }
}

static tern_str peer_text(tern__worker *w, tern__h1 *x) {
    int fd = x->t.fd;
    if (!w->peers || fd < 0 || (size_t)fd >= w->conn_slots) return (tern_str){NULL, 0};
    const tern__peer_text *p = &w->peers[fd];
    return (tern_str){p->text, p->len};
}

void tern__access_log_completed(void *drv, tern__h1 *x, tern_ctx *ctx, int broken) {
    tern__worker *w = drv;
    access_buf *b = w->alog;
    if (!b) return;
    tern__access_entry e = {
        .peer = peer_text(w, x),
        .method = ctx->method_str,
        .target = ctx->target,
        .referer = header(ctx, "Referer"),
        .user_agent = header(ctx, "User-Agent"),
        .request_id = ctx->request_id ? (tern_str){ctx->request_id, strlen(ctx->request_id)}
                                      : (tern_str){NULL, 0},
        .minor = ctx->minor,
        .status = x->client_gone || (broken && ctx->stream_state == TERN__STREAM_NONE)
                      ? 499
                      : ctx->status,
        .when = time(NULL),
    };
    if (ctx->stream_state != TERN__STREAM_NONE)
        e.bytes = ctx->stream_sent;
    else if (ctx->method != TERN_HEAD && tern__status_has_body(ctx->status))
        e.bytes = ctx->resp_body_len;
    uint64_t now = tern_clock_ns();
    e.duration_us = now > ctx->start_ns ? (now - ctx->start_ns) / 1000 : 0;
    if (BUF_SIZE - b->len < TERN__ACCESS_LINE_MAX) flush(b);
    b->len += tern__access_format(b->data + b->len, b->log->format, &e);
    if (b->len >= FLUSH_AT) flush(b);
}
