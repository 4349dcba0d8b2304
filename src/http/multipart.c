/* multipart/form-data framing: see multipart.h. */
#include "http/multipart.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define WINDOW (64u * 1024u)

int tern__multipart_init(tern__multipart *m, const char *boundary, size_t blen, size_t max_header,
                         const tern__multipart_cb *cb) {
    memset(m, 0, sizeof *m);
    if (blen == 0 || blen > 70) return -EINVAL;
    memcpy(m->delim, "\r\n--", 4);
    memcpy(m->delim + 4, boundary, blen);
    m->dlen = blen + 4;
    m->max_header = max_header;
    m->cap = WINDOW + m->dlen + max_header;
    m->buf = malloc(m->cap);
    if (!m->buf) return -ENOMEM;
    /* the body's first delimiter has no CRLF before it: supply one, so
     * every delimiter looks alike */
    memcpy(m->buf, "\r\n", 2);
    m->len = 2;
    m->cb = *cb;
    m->state = TERN__MP_PREAMBLE;
    return 0;
}

void tern__multipart_free(tern__multipart *m) {
    free(m->buf);
    m->buf = NULL;
}

static void drop(tern__multipart *m, size_t n) {
    memmove(m->buf, m->buf + n, m->len - n);
    m->len -= n;
}

static const char *find(const tern__multipart *m) {
    return memmem(m->buf, m->len, m->delim, m->dlen);
}

/* After a delimiter: "--" closes; else transport padding (LWSP) and CRLF.
 * 1 when more input is needed. */
static int after_delim(tern__multipart *m) {
    if (m->len < 2) return 1;
    if (m->buf[0] == '-' && m->buf[1] == '-') {
        m->state = TERN__MP_DONE;
        m->len = 0;
        return 0;
    }
    size_t i = 0;
    while (i < m->len && (m->buf[i] == ' ' || m->buf[i] == '\t')) i++;
    if (i > 256) return -EBADMSG;
    if (m->len - i < 2) return 1;
    if (m->buf[i] != '\r' || m->buf[i + 1] != '\n') return -EBADMSG;
    drop(m, i + 2);
    m->state = TERN__MP_HEADERS;
    return 0;
}

static int headers(tern__multipart *m) {
    size_t hlen;
    if (m->len >= 2 && m->buf[0] == '\r' && m->buf[1] == '\n') {
        hlen = 0; /* no header fields at all */
    } else {
        const char *e = memmem(m->buf, m->len, "\r\n\r\n", 4);
        /* the block with its empty line is at most max_header + 2 bytes */
        if (!e) return m->len > m->max_header + 2 ? -E2BIG : 1;
        hlen = (size_t)(e - m->buf) + 2;
        if (hlen > m->max_header) return -E2BIG;
    }
    int r = m->cb.part_begin(m->cb.u, m->buf, hlen);
    if (r < 0) return r;
    drop(m, hlen + 2);
    m->state = TERN__MP_DATA;
    return 0;
}

static int data(tern__multipart *m) {
    const char *d = find(m);
    int r;
    if (d) {
        size_t n = (size_t)(d - m->buf);
        if (n && (r = m->cb.part_data(m->cb.u, m->buf, n)) < 0) return r;
        if ((r = m->cb.part_end(m->cb.u)) < 0) return r;
        drop(m, n + m->dlen);
        m->state = TERN__MP_AFTER_DELIM;
        return 0;
    }
    /* everything but a tail that could begin a delimiter is content */
    if (m->len < m->dlen) return 1;
    size_t n = m->len - (m->dlen - 1);
    if ((r = m->cb.part_data(m->cb.u, m->buf, n)) < 0) return r;
    drop(m, n);
    return 1;
}

static int process(tern__multipart *m) {
    for (;;) {
        int r;
        switch (m->state) {
        case TERN__MP_PREAMBLE: {
            const char *d = find(m);
            if (!d) {
                if (m->len >= m->dlen) drop(m, m->len - (m->dlen - 1));
                return 0;
            }
            drop(m, (size_t)(d - m->buf) + m->dlen);
            m->state = TERN__MP_AFTER_DELIM;
            continue;
        }
        case TERN__MP_AFTER_DELIM:
            r = after_delim(m);
            break;
        case TERN__MP_HEADERS:
            r = headers(m);
            break;
        case TERN__MP_DATA:
            r = data(m);
            break;
        case TERN__MP_DONE:
            m->len = 0;
            return 0;
        }
        if (r != 0) return r < 0 ? r : 0;
    }
}

int tern__multipart_feed(tern__multipart *m, const char *in, size_t len) {
    while (len) {
        if (m->state == TERN__MP_DONE) return 0;
        size_t room = m->cap - m->len;
        if (!room) return -E2BIG; /* a header block that never ends */
        size_t n = len < room ? len : room;
        memcpy(m->buf + m->len, in, n);
        m->len += n;
        in += n;
        len -= n;
        int r = process(m);
        if (r < 0) return r;
    }
    return 0;
}

int tern__multipart_finish(const tern__multipart *m) {
    return m->state == TERN__MP_DONE ? 0 : -EBADMSG;
}

int tern__multipart_boundary(const char *ct, const char **b, size_t *blen) {
    static const char type[] = "multipart/form-data";
    if (!ct || strncasecmp(ct, type, sizeof type - 1) != 0) return -EMEDIUMTYPE;
    const char *p = ct + sizeof type - 1;
    while (*p) {
        while (*p == ';' || *p == ' ' || *p == '\t') p++;
        const char *name = p;
        while (*p && *p != '=' && *p != ';') p++;
        if (*p != '=') continue;
        size_t nlen = (size_t)(p - name);
        while (nlen && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t')) nlen--;
        p++;
        const char *v = p;
        size_t vlen;
        if (*p == '"') {
            v = ++p;
            while (*p && *p != '"') p++;
            vlen = (size_t)(p - v);
            if (*p) p++;
        } else {
            while (*p && *p != ';' && *p != ' ' && *p != '\t') p++;
            vlen = (size_t)(p - v);
        }
        if (nlen == 8 && strncasecmp(name, "boundary", 8) == 0) {
            if (!vlen || vlen > 70) return -EMEDIUMTYPE;
            *b = v;
            *blen = vlen;
            return 0;
        }
    }
    return -EMEDIUMTYPE;
}
