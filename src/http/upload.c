/* multipart/form-data for handlers (tern_multipart_read): the framing of
 * multipart.c fed from tern_req_body_read, parts kept in memory or spilled
 * to temporary files, limits checked as bytes arrive. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "http/ctx.h"
#include "http/multipart.h"
#include "tern.h"

#define READ_CHUNK (64u * 1024u)

typedef struct temp_file {
    char *path;
    int kept;
} temp_file;

typedef struct upload {
    tern_ctx *ctx;
    tern_multipart_limits lim;
    tern_part *parts;
    size_t nparts, cap;
    /* the part being read */
    tern_part *cur;
    char *mem; /* malloc'd content while in memory */
    size_t mem_len, mem_cap;
    int fd; /* its temporary file, or -1 */
    temp_file *tf;
} upload;

static void remove_temp(void *arg) {
    temp_file *tf = arg;
    if (!tf->kept) unlink(tf->path);
}

/* A header parameter's value ("name", "filename"), unquoted; NULL when absent. */
static char *param(tern_ctx *ctx, const char *h, size_t hlen, const char *name) {
    size_t nlen = strlen(name);
    const char *p = h, *end = h + hlen;
    while (p < end) {
        const char *semi = memchr(p, ';', (size_t)(end - p));
        if (!semi) return NULL;
        p = semi + 1;
        while (p < end && (*p == ' ' || *p == '\t')) p++;
        if ((size_t)(end - p) <= nlen || strncasecmp(p, name, nlen) != 0 || p[nlen] != '=')
            continue;
        p += nlen + 1;
        char *out = tern_alloc(ctx, (size_t)(end - p) + 1), *o = out;
        if (!out) return NULL;
        if (p < end && *p == '"') {
            /* quoted-string: a backslash escapes the next character */
            for (p++; p < end && *p != '"'; p++) {
                if (*p == '\\' && p + 1 < end) p++;
                *o++ = *p;
            }
        } else {
            while (p < end && *p != ';' && *p != ' ' && *p != '\t') *o++ = *p++;
        }
        *o = 0;
        return out;
    }
    return NULL;
}

/* The client's filename as data: its last path segment, without control
 * characters or leading dots, at most 255 bytes; NULL when nothing is left. */
char *tern__filename_sanitize(char *name) {
    if (!name) return NULL;
    char *base = name;
    for (char *p = name; *p; p++)
        if (*p == '/' || *p == '\\') base = p + 1;
    char *o = name;
    for (char *p = base; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c < 0x20 || c == 0x7f) continue;
        if (o == name && c == '.') continue;
        *o++ = (char)c;
    }
    *o = 0;
    if (o - name > 255) name[255] = 0;
    return *name ? name : NULL;
}

/* One header line's value by name, within the part's header block. */
static int header_value(const char *h, size_t hlen, const char *name, const char **v,
                        size_t *vlen) {
    size_t nlen = strlen(name);
    const char *p = h, *end = h + hlen;
    while (p < end) {
        const char *eol = memmem(p, (size_t)(end - p), "\r\n", 2);
        if (!eol) eol = end;
        if ((size_t)(eol - p) > nlen && strncasecmp(p, name, nlen) == 0 && p[nlen] == ':') {
            p += nlen + 1;
            while (p < eol && (*p == ' ' || *p == '\t')) p++;
            *v = p;
            *vlen = (size_t)(eol - p);
            return 1;
        }
        p = eol + 2;
    }
    return 0;
}

static int part_begin(void *u, const char *h, size_t hlen) {
    upload *up = u;
    if (up->nparts == up->lim.max_parts) return -E2BIG;
    if (up->nparts == up->cap) {
        size_t cap = up->cap ? up->cap * 2 : 8;
        tern_part *p = tern_alloc(up->ctx, cap * sizeof *p);
        if (!p) return -ENOMEM;
        if (up->nparts) memcpy(p, up->parts, up->nparts * sizeof *p);
        up->parts = p;
        up->cap = cap;
    }
    tern_part *part = &up->parts[up->nparts++];
    memset(part, 0, sizeof *part);
    const char *v;
    size_t vlen;
    /* RFC 7578 §4.2: Content-Disposition: form-data; name="..."; filename="..." */
    if (!header_value(h, hlen, "Content-Disposition", &v, &vlen)) return -EBADMSG;
    part->name = param(up->ctx, v, vlen, "name");
    if (!part->name) part->name = "";
    char *fn = param(up->ctx, v, vlen, "filename");
    part->filename = fn ? tern__filename_sanitize(fn) : NULL;
    if (fn && !part->filename) part->filename = "upload"; /* a file part all the same */
    if (header_value(h, hlen, "Content-Type", &v, &vlen)) {
        char *ct = tern_alloc(up->ctx, vlen + 1);
        if (!ct) return -ENOMEM;
        memcpy(ct, v, vlen);
        ct[vlen] = 0;
        part->content_type = ct;
    }
    up->cur = part;
    up->mem_len = 0;
    up->fd = -1;
    up->tf = NULL;
    return 0;
}

static int spill(upload *up) {
    const char *dir = up->lim.tmpdir;
    char *path = tern_sprintf(up->ctx, "%s/tern-upload-XXXXXX", dir);
    temp_file *tf = tern_alloc(up->ctx, sizeof *tf);
    if (!path || !tf) return -ENOMEM;
    int fd = mkostemp(path, O_CLOEXEC);
    if (fd < 0) return -errno;
    *tf = (temp_file){path, 0};
    if (tern__ctx_defer(up->ctx, remove_temp, tf) < 0) {
        close(fd);
        unlink(path);
        return -ENOMEM;
    }
    up->fd = fd;
    up->tf = tf;
    up->cur->path = path;
    return 0;
}

/* Writes to the temporary file. A blocking write on the worker: the page
 * cache takes it at memory speed; a disk that stalls stalls this worker. */
static int write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int keep_in_memory(upload *up, const char *d, size_t n) {
    if (up->mem_len + n > up->mem_cap) {
        size_t cap = up->mem_cap ? up->mem_cap * 2 : 4096;
        while (cap < up->mem_len + n) cap *= 2;
        char *m = realloc(up->mem, cap);
        if (!m) return -ENOMEM;
        up->mem = m;
        up->mem_cap = cap;
    }
    memcpy(up->mem + up->mem_len, d, n);
    up->mem_len += n;
    return 0;
}

static int part_data(void *u, const char *d, size_t n) {
    upload *up = u;
    tern_part *part = up->cur;
    part->size += n;
    if (!part->filename) return part->size > up->lim.max_field ? -E2BIG : keep_in_memory(up, d, n);
    if (up->lim.on_file_data) up->lim.on_file_data(part, d, n, up->lim.arg);
    if (up->fd < 0 && part->size <= up->lim.file_threshold) return keep_in_memory(up, d, n);
    if (up->fd < 0) {
        int r = spill(up);
        if (r < 0 || (r = write_all(up->fd, up->mem, up->mem_len)) < 0) return r;
        up->mem_len = 0;
    }
    return write_all(up->fd, d, n);
}

static int part_end(void *u) {
    upload *up = u;
    tern_part *part = up->cur;
    if (up->fd >= 0) {
        close(up->fd);
        up->fd = -1;
        return 0;
    }
    char *data = tern_alloc(up->ctx, up->mem_len + 1);
    if (!data) return -ENOMEM;
    if (up->mem_len) memcpy(data, up->mem, up->mem_len);
    data[up->mem_len] = 0;
    part->data = data;
    return 0;
}

static void set_defaults(tern_multipart_limits *l) {
    if (!l->max_parts) l->max_parts = 100;
    if (!l->max_field) l->max_field = 1u << 20;
    if (!l->max_total) l->max_total = (1ull << 30) + (1u << 20);
    if (!l->file_threshold) l->file_threshold = 64u * 1024u;
    if (!l->max_part_header) l->max_part_header = 8192;
    if (!l->tmpdir) l->tmpdir = getenv("TMPDIR");
    if (!l->tmpdir || !*l->tmpdir) l->tmpdir = "/tmp";
}

static int pump(upload *up, tern__multipart *m) {
    char *buf = tern_alloc(up->ctx, READ_CHUNK);
    if (!buf) return -ENOMEM;
    uint64_t total = 0;
    for (;;) {
        ssize_t n = tern_req_body_read(up->ctx, buf, READ_CHUNK);
        if (n < 0) return (int)n;
        if (n == 0) return tern__multipart_finish(m);
        total += (uint64_t)n;
        if (total > up->lim.max_total) return -E2BIG;
        int r = tern__multipart_feed(m, buf, (size_t)n);
        if (r < 0) return r;
    }
}

int tern_multipart_read(tern_ctx *ctx, const tern_multipart_limits *lim, tern_part **parts,
                        size_t *nparts) {
    *parts = NULL;
    *nparts = 0;
    upload up = {.ctx = ctx, .fd = -1};
    if (lim) up.lim = *lim;
    set_defaults(&up.lim);
    const char *b;
    size_t blen;
    if (tern__multipart_boundary(tern_req_header(ctx, "Content-Type"), &b, &blen) < 0)
        return -EMEDIUMTYPE;
    const char *cl = tern_req_header(ctx, "Content-Length");
    if (cl && strtoull(cl, NULL, 10) > up.lim.max_total) return -E2BIG; /* 413 before reading */
    tern__multipart m;
    tern__multipart_cb cb = {part_begin, part_data, part_end, &up};
    int r = tern__multipart_init(&m, b, blen, up.lim.max_part_header, &cb);
    if (r < 0) return r == -EINVAL ? -EMEDIUMTYPE : r;
    r = pump(&up, &m);
    tern__multipart_free(&m);
    if (up.fd >= 0) close(up.fd);
    free(up.mem);
    if (r < 0) return r;
    *parts = up.parts;
    *nparts = up.nparts;
    return 0;
}

int tern_part_keep(tern_ctx *ctx, tern_part *part, const char *dest) {
    if (!part->path) return -EINVAL;
    if (rename(part->path, dest) < 0) return -errno;
    /* the deferred removal must now leave it alone */
    for (struct tern__ctx_defer *d = ctx->defers; d; d = d->next)
        if (d->fn == remove_temp && ((temp_file *)d->arg)->path == part->path)
            ((temp_file *)d->arg)->kept = 1;
    part->path = NULL;
    return 0;
}
