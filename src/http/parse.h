/* Strict, zero-copy HTTP/1.1 request-head parser (RFC 9112).
 *
 * Stateless like picohttpparser: call it on the bytes received so far; it
 * never reads past buf[len-1], allocates nothing and reports positions as
 * offsets into buf. It only parses once the blank line that ends the head
 * has arrived, so calling it again after every read costs a scan for
 * "\r\n\r\n" from where the previous call stopped (req->scanned). */
#ifndef TERN_HTTP_PARSE_H
#define TERN_HTTP_PARSE_H

#include <stddef.h>
#include <stdint.h>

/* Results other than a complete head (which returns head length > 0). */
#define TERN_PARSE_INCOMPLETE (-1)
/* Errors are returned as the negated HTTP status to answer with:
 * -400 malformed / smuggling shape, -414 target too long, -417 Expect other
 * than 100-continue, -431 head too large or too many headers, -501 unknown
 * transfer coding, -505 version. */

typedef struct tern__http_header {
    uint32_t name_off, name_len;
    uint32_t value_off, value_len; /* value without surrounding OWS */
} tern__http_header;

enum {
    TERN_REQ_KEEP_ALIVE = 1u << 0,      /* persistent after this request */
    TERN_REQ_CHUNKED = 1u << 1,         /* Transfer-Encoding: chunked */
    TERN_REQ_EXPECT_CONTINUE = 1u << 2, /* Expect: 100-continue */
    TERN_REQ_HAS_LENGTH = 1u << 3,      /* Content-Length present */
    TERN_REQ_UPGRADE = 1u << 4,         /* Upgrade header present */
    TERN_REQ_FORM_ABSOLUTE = 1u << 5,   /* absolute-form target */
    TERN_REQ_FORM_ASTERISK = 1u << 6,   /* "*" (OPTIONS only) */
    /* 1 << 7, 1 << 8: were CONNECT's authority-form and Expect-other, both
     * now refused by the parser (400, 417) */
    TERN_REQ_CONNECTION_UPGRADE = 1u << 9, /* "upgrade" option in Connection */
};

typedef struct tern__http_limits {
    size_t max_head; /* request line + headers + final CRLF */
    size_t max_target;
    uint32_t max_headers;
} tern__http_limits;

typedef struct tern__http_request {
    /* results */
    unsigned method; /* TERN_GET... bit from tern.h, 0 = other token */
    uint32_t method_len;
    uint32_t target_off, target_len;
    uint32_t path_off, path_len;   /* path part of the target (origin-form, or the
                                      path of an absolute-form target; "*" as is);
                                      never empty: an absolute-form target with an
                                      empty path ("http://h", "http://h?q") gets "/"
                                      (RFC 9112 §3.2.2), a '/' of its "http://" */
    uint32_t query_off, query_len; /* after '?', without the '#'-fragment (none in requests) */
    uint32_t authority_off, authority_len; /* host[:port] of an absolute-form target
                                      (RFC 9112 §3.2.2: it, not Host, is the
                                      effective authority); len 0 otherwise */
    uint32_t minor;                        /* HTTP/1.<minor>, 0 or 1 (1.2..1.9 read as 1) */
    uint32_t flags;                        /* TERN_REQ_* */
    uint64_t content_length;               /* valid with TERN_REQ_HAS_LENGTH */
    uint32_t host_index;                   /* index of Host in headers, UINT32_MAX if none */
    uint32_t num_headers;                  /* on INCOMPLETE: header lines validated so far
                                              (parser state, do not change between calls) */
    tern__http_header *headers;            /* caller-provided, capacity max_headers */
    /* incremental state: zero before the first call for a request (and
     * after moving the buffer); only scanned and num_headers carry over */
    size_t scanned;
} tern__http_request;

/* Parses the request head at the start of buf. Returns the head length
 * (> 0) when complete, TERN_PARSE_INCOMPLETE when more bytes are needed (a
 * partial head already over a limit is reported at once), or a negated
 * status. Leading empty lines before the request line are skipped as RFC
 * 9112 §2.2 allows (they count in the returned length and in max_head).
 *
 * The answer never depends on how the bytes were split across calls.
 * Decisions, in stream order (the first one reached wins):
 * - method: a tchar token, case-sensitive; longer than 32 bytes -> 501.
 * - target: visible ASCII only; longer than max_target -> 414 (as soon as
 *   that many bytes have arrived); '#' (a fragment) -> 400; "*" only with
 *   OPTIONS, absolute-form only for http/https with a non-empty host and no
 *   userinfo; CONNECT (a tunnel: tern is no proxy) and anything else -> 400.
 * - version: "HTTP/1.1" or "HTTP/1.0"; "HTTP/1.2".."HTTP/1.9" are read as
 *   HTTP/1.1 (RFC 9110 §2.5); another well-formed "HTTP/d.d" -> 505;
 *   anything else (lower case, extra SP, bare LF) -> 400.
 * - header lines: name token directly followed by ':', value OWS-trimmed,
 *   HTAB/SP/VCHAR/obs-text only; obs-fold, bare CR, bare LF, NUL/CTL/DEL
 *   -> 400; more than max_headers -> 431.
 * - no blank line within max_head bytes -> 414 while still inside the
 *   request line (nginx does the same), 431 otherwise.
 * - once complete: Content-Length not 1*DIGIT, over 2^63-1, or repeated
 *   (even equal) -> 400; two Host -> 400; HTTP/1.1 without Host -> 400;
 *   Transfer-Encoding with Content-Length, in HTTP/1.0, empty, in two
 *   fields, with chunked twice or with chunked not the last coding -> 400
 *   (RFC 9112 §6.3); chunked last after another coding -> 501; Expect with
 *   anything but 100-continue -> 417. */
int tern__http_parse_request(const char *buf, size_t len, tern__http_request *req,
                             const tern__http_limits *lim);

/* ---- responses (for the client) ---------------------------------------- */

/* Outcomes of tern__http_parse_response other than a complete head (which
 * returns the head length > 0). */
enum tern__http_resp_result {
    TERN_RESP_INCOMPLETE = TERN_PARSE_INCOMPLETE, /* more bytes needed */
    TERN_RESP_MALFORMED = -2,                     /* not a valid response head */
    TERN_RESP_TOO_LARGE = -3,                     /* no complete head within max_head bytes */
    TERN_RESP_TOO_MANY_HEADERS = -4,
};

enum {
    TERN_RESP_KEEP_ALIVE = TERN_REQ_KEEP_ALIVE, /* persistent as far as the head says */
    TERN_RESP_CHUNKED = TERN_REQ_CHUNKED,       /* chunked is the final coding */
    TERN_RESP_HAS_LENGTH = TERN_REQ_HAS_LENGTH, /* content_length is valid */
    TERN_RESP_UNTIL_CLOSE = 1u << 10,           /* a coding other than chunked last: the
                                                   body runs to the close (RFC 9112 §6.3) */
};

typedef struct tern__http_response {
    /* results */
    int status;     /* 100..599 */
    uint32_t minor; /* HTTP/1.<minor>, 0 or 1 (1.2..1.9 read as 1) */
    uint32_t reason_off, reason_len;
    uint32_t flags;          /* TERN_RESP_* */
    uint64_t content_length; /* valid with TERN_RESP_HAS_LENGTH */
    uint32_t num_headers;
    tern__http_header *headers; /* caller-provided, capacity max_headers */
    /* incremental state: zero before the first call for a response; the
     * bytes before `scanned` and the headers array must not change between
     * calls (the client only appends) */
    size_t scanned;
    uint32_t state; /* private */
} tern__http_response;

/* Parses a response head (RFC 9112 §4: status-line, field lines, CRLF) at
 * the start of buf with the request parser's line rules (shared code: CRLF
 * only, no obs-fold, no CTLs, token names, no space before ':'), and the
 * same Content-Length/Transfer-Encoding strictness: a list or repeated
 * Content-Length, Transfer-Encoding with Content-Length, in HTTP/1.0, empty,
 * in two fields or with chunked twice -> MALFORMED. The status line is
 * "HTTP/1.d SP 3DIGIT SP reason" (a missing SP before an empty reason is
 * tolerated); a status outside 100..599 or another major version ->
 * MALFORMED. Incremental: each call validates only the lines completed
 * since the last. max_target is unused. */
int tern__http_parse_response(const char *buf, size_t len, tern__http_response *resp,
                              const tern__http_limits *lim);

/* Character classes (bits): tokens (RFC 9110 §5.6.2) and host characters
 * (RFC 3986 §3.2.2). */
enum { TERN_CHAR_TOKEN = 1, TERN_CHAR_HOST = 2 };
extern const unsigned char tern__http_char_class[256];

/* Case-insensitive compare of a header name at buf+h->name_off. */
int tern__http_header_is(const char *buf, const tern__http_header *h, const char *name,
                         size_t name_len);

#endif
