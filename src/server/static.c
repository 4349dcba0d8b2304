/* Static files (tern_static): a wildcard route whose handler maps the rest
 * of the path to a file under the mount's folder, answers conditionals and
 * ranges, and hands the file to the HTTP exchange, which sends it after the
 * head with the transport's sendfile.
 *
 * Confinement: the folder is opened once (O_PATH) and every file is opened
 * relative to it with openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS), so
 * the kernel refuses any resolution that leaves it, ".." and symlinks
 * included, atomically (no check-then-open race). On kernels without
 * openat2 (before 5.6) the file is opened with openat and its real path,
 * read back from /proc/self/fd, must lie under the folder's. Before either,
 * the request path is refused when it holds an encoded slash or backslash,
 * a backslash or a dot-dot segment. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "http/compress.h"
#include "http/ctx.h"
#include "http/date.h"
#include "http/etag.h"
#include "http/mime.h"
#include "http/range.h"
#include "server/server.h"

typedef struct tern__static_mount {
    struct tern__static_mount *next;
    int root_fd;     /* O_PATH | O_DIRECTORY */
    char *root_real; /* realpath of the folder, for the fallback check */
    tern_static_opts opts;
} tern__static_mount;

void tern_static_opts_init(tern_static_opts *opts) {
    *opts = (tern_static_opts){
        .index = "index.html", .max_age = 3600, .precompressed = 1, .offload_open = 0};
}

void tern__static_free_all(tern_server *s) {
    while (s->statics) {
        tern__static_mount *next = s->statics->next;
        close(s->statics->root_fd);
        free(s->statics->root_real);
        free(s->statics);
        s->statics = next;
    }
    free(s->compress);
    s->compress = NULL;
}

/* ---- opening under the root ---------------------------------------------- */

static int openat2_missing; /* ENOSYS once: the kernel predates openat2 */

static int open_fallback(const tern__static_mount *m, const char *rel) {
    int fd = openat(m->root_fd, rel, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0) return -errno;
    char link[64], real[PATH_MAX];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, real, sizeof real - 1);
    size_t rl = strlen(m->root_real);
    if (n < 0 || (size_t)n < rl || memcmp(real, m->root_real, rl) != 0 ||
        ((size_t)n > rl && real[rl] != '/' && strcmp(m->root_real, "/") != 0)) {
        close(fd);
        return -EXDEV;
    }
    return fd;
}

/* rel opened for reading, never outside the root: fd or -errno. */
static int open_beneath(const tern__static_mount *m, const char *rel) {
    if (!openat2_missing) {
        struct open_how how = {.flags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK,
                               .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS};
        long fd = syscall(SYS_openat2, m->root_fd, rel, &how, sizeof how);
        if (fd >= 0) return (int)fd;
        if (errno != ENOSYS) return -errno;
        openat2_missing = 1;
    }
    return open_fallback(m, rel);
}

/* What one request needs opened: the file and maybe a precompressed
 * sibling; run inline or on the offload pool. */
typedef struct open_job {
    const tern__static_mount *m;
    const char *rel;
    tern__encoding want[2]; /* siblings to try in order (IDENTITY: none) */
    int fd, err;
    struct stat st;
    tern__encoding got; /* the coding of what fd holds */
} open_job;

static int open_regular(const tern__static_mount *m, const char *rel, struct stat *st) {
    int fd = open_beneath(m, rel);
    if (fd < 0) return fd;
    if (fstat(fd, st) < 0 || !S_ISREG(st->st_mode)) {
        int e = S_ISDIR(st->st_mode) ? -EISDIR : -ENOENT;
        close(fd);
        return e;
    }
    return fd;
}

static void *open_job_run(void *arg) {
    open_job *j = arg;
    j->got = TERN__ENC_IDENTITY;
    size_t len = strlen(j->rel);
    for (int i = 0; i < 2 && j->want[i] != TERN__ENC_IDENTITY; i++) {
        char sib[PATH_MAX];
        if (len + 4 > sizeof sib) break;
        memcpy(sib, j->rel, len);
        strcpy(sib + len, j->want[i] == TERN__ENC_BR ? ".br" : ".gz");
        int fd = open_regular(j->m, sib, &j->st);
        if (fd >= 0) {
            j->fd = fd;
            j->got = j->want[i];
            return NULL;
        }
    }
    j->fd = open_regular(j->m, j->rel, &j->st);
    j->err = j->fd < 0 ? j->fd : 0;
    return NULL;
}

/* ---- the request path ------------------------------------------------------ */

typedef enum path_outcome {
    PATH_OK,
    PATH_REFUSED,  /* 404: could name something outside the root */
    PATH_TOO_LONG, /* 414 would do; 404 says as little */
} path_outcome;

/* Encoded '/' (%2F) or '\' (%5C) in the raw target: the decoded path would
 * name a different set of segments than the client's URL shows. */
static int raw_has_encoded_separator(tern_str t) {
    for (size_t i = 0; i + 2 < t.len && t.ptr[i] != '?'; i++) {
        if (t.ptr[i] != '%') continue;
        char a = t.ptr[i + 1], b = (char)(t.ptr[i + 2] | 0x20);
        if ((a == '2' && b == 'f') || (a == '5' && b == 'c') || (a == '0' && b == '0')) return 1;
    }
    return 0;
}

/* The file's path relative to the root in out ("" for the root itself);
 * index appended for a path ending in '/'. */
static path_outcome relative_path(tern_ctx *ctx, const tern__static_mount *m, char *out,
                                  size_t cap) {
    const char *p = tern_req_param(ctx, "path");
    if (!p) p = "";
    if (raw_has_encoded_separator(tern_req_target(ctx)) || strchr(p, '\\')) return PATH_REFUSED;
    while (*p == '/') p++;
    for (const char *s = p; *s;) { /* no ".." segment, whatever the normaliser did */
        const char *e = strchr(s, '/');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n == 2 && s[0] == '.' && s[1] == '.') return PATH_REFUSED;
        s += n + (e != NULL);
    }
    size_t len = strlen(p);
    int dir = len == 0 || p[len - 1] == '/';
    size_t ilen = dir ? strlen(m->opts.index) : 0;
    if (len + ilen + 5 > cap) return PATH_TOO_LONG;
    memcpy(out, p, len);
    memcpy(out + len, m->opts.index, ilen);
    out[len + ilen] = 0;
    return PATH_OK;
}

/* ---- answering ---------------------------------------------------------------- */

typedef struct validators {
    char etag[TERN__ETAG_MAX];
    size_t etag_len;
    char last_modified[TERN_DATE_LEN + 1];
    time_t mtime;
} validators;

static void set_common_headers(tern_ctx *ctx, const tern__static_mount *m, const validators *v,
                               int vary) {
    tern_resp_set_header(ctx, "ETag", v->etag);
    tern_resp_set_header(ctx, "Last-Modified", v->last_modified);
    if (m->opts.max_age >= 0) {
        char cc[32];
        snprintf(cc, sizeof cc, "max-age=%d", m->opts.max_age);
        tern_resp_set_header(ctx, "Cache-Control", cc);
    }
    if (vary) tern_resp_set_header(ctx, "Vary", "Accept-Encoding");
}

/* If-None-Match, else If-Modified-Since (RFC 9110 §13.2.2): 1 for 304. */
static int not_modified(tern_ctx *ctx, const validators *v) {
    const char *inm = tern_req_header(ctx, "If-None-Match");
    if (inm) return tern__etag_match_weak(inm, v->etag, v->etag_len);
    const char *ims = tern_req_header(ctx, "If-Modified-Since");
    time_t t;
    return ims && tern__http_date_parse(ims, &t) == 0 && v->mtime <= t;
}

/* If-Range (§13.1.5): the range applies only while the representation is
 * the one the client has: a strong tag match, or exactly its date. */
static int if_range_holds(tern_ctx *ctx, const validators *v) {
    const char *ir = tern_req_header(ctx, "If-Range");
    if (!ir) return 1;
    if (ir[0] == '"' || (ir[0] == 'W' && ir[1] == '/'))
        return tern__etag_match_strong(ir, v->etag, v->etag_len);
    time_t t;
    return tern__http_date_parse(ir, &t) == 0 && t == v->mtime;
}

/* Status, framing and body for the opened file (fd is handed over). */
static void answer_file(tern_ctx *ctx, const tern__static_mount *m, int fd, const struct stat *st,
                        const char *type, tern__encoding enc, int vary) {
    validators v;
    v.etag_len =
        tern__etag_format(v.etag, (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec,
                          (uint64_t)st->st_size, (uint64_t)st->st_ino);
    v.mtime = st->st_mtim.tv_sec;
    tern__date_format(v.mtime, v.last_modified);
    set_common_headers(ctx, m, &v, vary);
    if (not_modified(ctx, &v)) {
        close(fd);
        tern_resp_set_status(ctx, 304);
        return;
    }
    tern_resp_set_header(ctx, "Content-Type", type);
    if (enc != TERN__ENC_IDENTITY)
        tern_resp_set_header(ctx, "Content-Encoding", tern__encoding_name(enc));
    tern_resp_set_header(ctx, "Accept-Ranges", "bytes");
    uint64_t size = (uint64_t)st->st_size, start = 0, len = size;
    const char *range = tern_req_header(ctx, "Range");
    if (range && tern_req_method(ctx) == TERN_GET && if_range_holds(ctx, &v)) {
        char cr[64];
        switch (tern__range_parse(range, size, &start, &len)) {
        case TERN__RANGE_SINGLE:
            tern_resp_set_status(ctx, 206);
            snprintf(cr, sizeof cr, "bytes %llu-%llu/%llu", (unsigned long long)start,
                     (unsigned long long)(start + len - 1), (unsigned long long)size);
            tern_resp_set_header(ctx, "Content-Range", cr);
            break;
        case TERN__RANGE_UNSATISFIABLE:
            close(fd);
            tern_resp_set_status(ctx, 416);
            snprintf(cr, sizeof cr, "bytes */%llu", (unsigned long long)size);
            tern_resp_set_header(ctx, "Content-Range", cr);
            tern_resp_set_header(ctx, "Content-Type", "text/plain; charset=utf-8");
            tern_resp_set_body_static(ctx, "416 Range Not Satisfiable\n", 26);
            return;
        case TERN__RANGE_MULTI: /* the whole file: simpler for both sides than multipart */
        case TERN__RANGE_NONE:
            start = 0, len = size;
            break;
        }
    }
    tern__resp_set_file(ctx, fd, start, len);
}

static void not_found(tern_ctx *ctx, int status) {
    tern__ctx_error(ctx, status, status == 403 ? "no index in this folder" : "no such file");
}

/* A folder asked for without its trailing slash: send the client to the
 * slash form, so relative links inside its index resolve (as nginx does). */
static void redirect_to_folder(tern_ctx *ctx) {
    tern_str q = tern_req_query_string(ctx);
    char *loc = q.len ? tern_sprintf(ctx, "%s/?%.*s", tern_req_path(ctx), (int)q.len, q.ptr)
                      : tern_sprintf(ctx, "%s/", tern_req_path(ctx));
    tern__ctx_error(ctx, 301, NULL);
    if (loc) tern_resp_set_header(ctx, "Location", loc);
}

static void static_handler(tern_ctx *ctx) {
    const tern__static_mount *m = tern_route_data(ctx);
    char rel[PATH_MAX];
    path_outcome po = relative_path(ctx, m, rel, sizeof rel);
    if (po != PATH_OK) return not_found(ctx, 404);
    const char *name = strrchr(rel, '/');
    name = name ? name + 1 : rel;
    const char *type = tern__mime_type(name, strlen(name));
    int compressible = m->opts.precompressed && tern__compressible_type(type, strlen(type));
    open_job job = {.m = m, .rel = rel, .fd = -1};
    const char *ae = compressible ? tern_req_header(ctx, "Accept-Encoding") : NULL;
    if (ae) {
        job.want[0] =
            tern__accept_encoding(ae, TERN__ENC_BIT(TERN__ENC_BR) | TERN__ENC_BIT(TERN__ENC_GZIP));
        if (job.want[0] == TERN__ENC_BR)
            job.want[1] = tern__accept_encoding(ae, TERN__ENC_BIT(TERN__ENC_GZIP));
    }
    if (m->opts.offload_open) {
        int r = tern_offload(open_job_run, &job, NULL);
        if (r == -ECANCELED && job.fd >= 0) close(job.fd);
        if (r < 0) {
            if (r != -ECANCELED) tern__ctx_error(ctx, 503, "file open queue full");
            return;
        }
    } else {
        open_job_run(&job);
    }
    if (job.fd < 0) {
        const char *rp = tern_req_path(ctx);
        int asked_folder = rp[0] && rp[strlen(rp) - 1] == '/';
        if (job.err == -EISDIR) return redirect_to_folder(ctx);
        /* a folder without an index: 403, never a listing */
        return not_found(ctx, asked_folder && job.err == -ENOENT ? 403 : 404);
    }
    answer_file(ctx, m, job.fd, &job.st, type, job.got, compressible);
}

/* ---- registration ---------------------------------------------------------------- */

int tern_static(tern_server *s, const char *prefix, const char *dir) {
    return tern_static_with(s, prefix, dir, NULL);
}

int tern_static_with(tern_server *s, const char *prefix, const char *dir,
                     const tern_static_opts *opts) {
    if (!s || !prefix || !dir) return -EINVAL;
    size_t plen = strlen(prefix);
    if (plen == 0 || prefix[0] != '/' || prefix[plen - 1] != '/' || plen > 1024) return -EINVAL;
    if (s->workers) return -EBUSY;
    tern__static_mount *m = calloc(1, sizeof *m);
    if (!m) return -ENOMEM;
    if (opts)
        m->opts = *opts;
    else
        tern_static_opts_init(&m->opts);
    if (!m->opts.index || !*m->opts.index || strchr(m->opts.index, '/'))
        m->opts.index = "index.html";
    m->root_fd = open(dir, O_PATH | O_DIRECTORY | O_CLOEXEC);
    if (m->root_fd < 0) {
        int e = -errno;
        free(m);
        return e;
    }
    m->root_real = realpath(dir, NULL);
    char pattern[1100];
    snprintf(pattern, sizeof pattern, "%s*path", prefix);
    tern_route_opts ro = {.data = m};
    int r = m->root_real ? tern_route_with(s, TERN_GET | TERN_HEAD, pattern, static_handler, &ro)
                         : -ENOMEM;
    if (r < 0) {
        close(m->root_fd);
        free(m->root_real);
        free(m);
        return r;
    }
    m->next = s->statics;
    s->statics = m;
    return 0;
}

/* ---- compression switch (the work is in http/compress.c) ---------------------------- */

void tern_compression_opts_init(tern_compression_opts *opts) {
    *opts = (tern_compression_opts){.encodings = TERN_ENCODING_GZIP | TERN_ENCODING_BR,
                                    .gzip_level = 1,
                                    .br_quality = 2,
                                    .min_size = 1024};
}

int tern_server_set_compression(tern_server *s, const tern_compression_opts *opts) {
    if (!s) return -EINVAL;
    if (s->workers) return -EBUSY;
    if (!opts) {
        free(s->compress);
        s->compress = NULL;
        return 0;
    }
    if (!(opts->encodings & (TERN_ENCODING_GZIP | TERN_ENCODING_BR)) || opts->gzip_level < 1 ||
        opts->gzip_level > 9 || opts->br_quality < 0 || opts->br_quality > 11)
        return -EINVAL;
    tern__compress_config *cc = s->compress ? s->compress : calloc(1, sizeof *cc);
    if (!cc) return -ENOMEM;
    cc->offered = ((opts->encodings & TERN_ENCODING_GZIP) ? TERN__ENC_BIT(TERN__ENC_GZIP) : 0) |
                  ((opts->encodings & TERN_ENCODING_BR) ? TERN__ENC_BIT(TERN__ENC_BR) : 0);
    cc->gzip_level = opts->gzip_level;
    cc->br_quality = opts->br_quality;
    cc->min_size = opts->min_size;
    s->compress = cc;
    return 0;
}
