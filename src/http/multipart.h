/* multipart/form-data framing (RFC 7578, RFC 2046 §5.1.1), incremental: a
 * window of the input is scanned for the delimiter "\r\n--boundary" and
 * everything that cannot be the start of one is handed on at once, so any
 * part size goes through a fixed buffer. Allocates only its window. */
#ifndef TERN_HTTP_MULTIPART_H
#define TERN_HTTP_MULTIPART_H

#include <stddef.h>

typedef enum tern__mp_state {
    TERN__MP_PREAMBLE,    /* before the first delimiter (ignored) */
    TERN__MP_AFTER_DELIM, /* "--" ends the body, else padding then CRLF */
    TERN__MP_HEADERS,     /* a part's header block up to the empty line */
    TERN__MP_DATA,        /* its content, up to the next delimiter */
    TERN__MP_DONE,        /* past the close delimiter: the epilogue is ignored */
} tern__mp_state;

typedef struct tern__multipart_cb {
    /* headers: the part's header block ("Name: value\r\n" lines) */
    int (*part_begin)(void *u, const char *headers, size_t len);
    int (*part_data)(void *u, const char *data, size_t len);
    int (*part_end)(void *u);
    void *u;
} tern__multipart_cb;

typedef struct tern__multipart {
    char delim[76]; /* CRLF "--" boundary (1..70 characters, §5.1.1) */
    size_t dlen;
    tern__mp_state state;
    char *buf;
    size_t len, cap, max_header;
    tern__multipart_cb cb;
} tern__multipart;

/* 0, -EINVAL (boundary empty or over 70 bytes), -ENOMEM. */
int tern__multipart_init(tern__multipart *m, const char *boundary, size_t blen, size_t max_header,
                         const tern__multipart_cb *cb);
/* 0, -EBADMSG (malformed), -E2BIG (a header block over max_header), or a
 * callback's negative return. */
int tern__multipart_feed(tern__multipart *m, const char *data, size_t len);
/* 0 when the close delimiter was seen, else -EBADMSG (truncated body). */
int tern__multipart_finish(const tern__multipart *m);
void tern__multipart_free(tern__multipart *m);

/* The client's filename reduced in place to a safe basename (upload.c): the
 * last segment after / or \\, no control characters or leading dots, at most
 * 255 bytes; NULL when nothing is left. */
char *tern__filename_sanitize(char *name);

/* The boundary parameter of a multipart/form-data Content-Type (quotes
 * removed): 0 with *b and *blen set, or -EMEDIUMTYPE. */
int tern__multipart_boundary(const char *content_type, const char **b, size_t *blen);

#endif
