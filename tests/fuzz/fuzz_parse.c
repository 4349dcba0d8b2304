/* Fuzz target for the request-head parser, and for the response-head
 * parser on the same bytes. The first byte picks the limits and a split
 * point; the rest is the input. Besides memory errors (the input sits in an
 * exact-size heap block, so ASan sees any over-read) it asserts the
 * parsers' contracts: offsets inside the head, head length within the
 * input, the same answer when parsing the same bytes again, and the same
 * answer when the bytes arrive in two or three pieces (for responses:
 * appended to one buffer, as the client reads). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http/parse.c"

#define MAXH 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct {
    int r;
    tern__http_request req;
    tern__http_header h[MAXH];
} result;

static void run(const char *buf, size_t len, result *out, const tern__http_limits *lim) {
    char *copy = malloc(len ? len : 1);
    memcpy(copy, buf, len);
    out->r = tern__http_parse_request(copy, len, &out->req, lim);
    free(copy);
}

static void fresh(result *r) {
    memset(r, 0, sizeof *r);
    r->req.headers = r->h;
}

static int same(const result *a, const result *b) {
    if (a->r != b->r) return 0;
    if (a->r <= 0) return 1;
    const tern__http_request *x = &a->req, *y = &b->req;
    return x->method == y->method && x->method_len == y->method_len &&
           x->target_off == y->target_off && x->target_len == y->target_len &&
           x->path_off == y->path_off && x->path_len == y->path_len &&
           x->query_off == y->query_off && x->query_len == y->query_len && x->minor == y->minor &&
           x->authority_off == y->authority_off && x->authority_len == y->authority_len &&
           x->flags == y->flags && x->host_index == y->host_index &&
           x->num_headers == y->num_headers &&
           (!(x->flags & TERN_REQ_HAS_LENGTH) || x->content_length == y->content_length) &&
           memcmp(a->h, b->h, x->num_headers * sizeof a->h[0]) == 0;
}

static void check(int ok) {
    if (!ok) __builtin_trap();
}

static void invariants(const char *buf, size_t len, const result *res,
                       const tern__http_limits *lim) {
    int r = res->r;
    check(r > 0 || r == TERN_PARSE_INCOMPLETE || r == -400 || r == -414 || r == -417 || r == -431 ||
          r == -501 || r == -505);
    if (r == TERN_PARSE_INCOMPLETE) check(len <= lim->max_head);
    if (r <= 0) return;
    const tern__http_request *q = &res->req;
    size_t n = (size_t)r;
    check(n <= len && n <= lim->max_head);
    check(!memcmp(buf + n - 4, "\r\n\r\n", 4));
    check(q->method_len > 0 && q->method_len <= MAX_METHOD);
    check(q->target_len > 0 && q->target_len <= lim->max_target);
    check((size_t)q->target_off + q->target_len <= n);
    check(q->path_off >= q->target_off &&
          (size_t)q->path_off + q->path_len <= (size_t)q->target_off + q->target_len);
    check(q->query_off >= q->target_off &&
          (size_t)q->query_off + q->query_len <= (size_t)q->target_off + q->target_len);
    check(q->path_len > 0);
    check((size_t)q->authority_off + q->authority_len <= (size_t)q->target_off + q->target_len);
    check(q->authority_off >= q->target_off);
    check(!q->authority_len || (q->flags & TERN_REQ_FORM_ABSOLUTE));
    check(q->method != TERN_CONNECT);
    check(q->minor <= 1);
    check(q->num_headers <= lim->max_headers);
    check(q->host_index == UINT32_MAX || q->host_index < q->num_headers);
    check(q->minor == 0 || q->host_index != UINT32_MAX);
    check(!((q->flags & TERN_REQ_CHUNKED) && (q->flags & TERN_REQ_HAS_LENGTH)));
    check(!(q->flags & TERN_REQ_HAS_LENGTH) || q->content_length <= (uint64_t)INT64_MAX);
    for (uint32_t i = 0; i < q->num_headers; i++) {
        const tern__http_header *h = &q->headers[i];
        check(h->name_len > 0 && (size_t)h->name_off + h->name_len <= n);
        check((size_t)h->value_off + h->value_len <= n);
        for (uint32_t j = 0; j < h->name_len; j++) check(is_tchar(buf[h->name_off + j]));
        for (uint32_t j = 0; j < h->value_len; j++) {
            unsigned char c = (unsigned char)buf[h->value_off + j];
            check(c == '\t' || (c >= 0x20 && c != 0x7f));
        }
        if (h->value_len) {
            char first = buf[h->value_off], last = buf[h->value_off + h->value_len - 1];
            check(first != ' ' && first != '\t' && last != ' ' && last != '\t');
        }
        check(tern__http_header_is(buf, h, buf + h->name_off, h->name_len));
    }
}

/* ---- responses ---- */

typedef struct {
    int r;
    tern__http_response resp;
    tern__http_header h[MAXH];
} resp_result;

static void run_resp(const char *buf, size_t len, resp_result *out, const tern__http_limits *lim) {
    char *copy = malloc(len ? len : 1);
    memcpy(copy, buf, len);
    out->resp.headers = out->h;
    out->r = tern__http_parse_response(copy, len, &out->resp, lim);
    free(copy);
}

static int same_resp(const resp_result *a, const resp_result *b) {
    if (a->r != b->r) return 0;
    if (a->r <= 0) return 1;
    const tern__http_response *x = &a->resp, *y = &b->resp;
    return x->status == y->status && x->minor == y->minor && x->flags == y->flags &&
           x->reason_off == y->reason_off && x->reason_len == y->reason_len &&
           x->num_headers == y->num_headers &&
           (!(x->flags & TERN_RESP_HAS_LENGTH) || x->content_length == y->content_length) &&
           memcmp(a->h, b->h, x->num_headers * sizeof a->h[0]) == 0;
}

static void check_responses(const char *buf, size_t len, const tern__http_limits *lim,
                            size_t cut1, size_t cut2) {
    static resp_result a, c;
    memset(&a, 0, sizeof a);
    run_resp(buf, len, &a, lim);
    int r = a.r;
    check(r > 0 || r == TERN_RESP_INCOMPLETE || r == TERN_RESP_MALFORMED ||
          r == TERN_RESP_TOO_LARGE || r == TERN_RESP_TOO_MANY_HEADERS);
    if (r == TERN_RESP_INCOMPLETE) check(len < lim->max_head);
    if (r > 0) {
        const tern__http_response *q = &a.resp;
        size_t n = (size_t)r;
        check(n <= len && n <= lim->max_head && !memcmp(buf + n - 2, "\r\n", 2));
        check(!memcmp(buf, "HTTP/1.", 7) && q->minor <= 1);
        check(q->status >= 100 && q->status <= 599);
        check((size_t)q->reason_off + q->reason_len <= n);
        check(q->num_headers <= lim->max_headers);
        check(!((q->flags & TERN_RESP_CHUNKED) && (q->flags & TERN_RESP_HAS_LENGTH)));
        check(!((q->flags & TERN_RESP_CHUNKED) && (q->flags & TERN_RESP_UNTIL_CLOSE)));
        for (uint32_t i = 0; i < q->num_headers; i++) {
            const tern__http_header *h = &q->headers[i];
            check(h->name_len > 0 && (size_t)h->value_off + h->value_len <= n);
            for (uint32_t j = 0; j < h->name_len; j++) check(is_tchar(buf[h->name_off + j]));
        }
    }
    /* pieces appended to one growing input, the state carried across */
    memset(&c, 0, sizeof c);
    run_resp(buf, cut1, &c, lim);
    if (c.r == TERN_RESP_INCOMPLETE) {
        run_resp(buf, cut2, &c, lim);
        if (c.r == TERN_RESP_INCOMPLETE) run_resp(buf, len, &c, lim);
    }
    check(same_resp(&a, &c));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static result a, b, c;
    if (size < 1) return 0;
    static const tern__http_limits lims[4] = {
        {.max_head = 16384, .max_target = 8192, .max_headers = MAXH},
        {.max_head = 256, .max_target = 64, .max_headers = 8},
        {.max_head = 64, .max_target = 200, .max_headers = 2},
        {.max_head = 1024, .max_target = 32, .max_headers = MAXH},
    };
    const tern__http_limits *lim = &lims[data[0] & 3];
    const char *buf = (const char *)data + 1;
    size_t len = size - 1;

    fresh(&a);
    run(buf, len, &a, lim);
    invariants(buf, len, &a, lim);

    /* the same bytes again: same answer */
    fresh(&b);
    run(buf, len, &b, lim);
    check(same(&a, &b));

    /* two or three pieces with the request state carried across calls */
    size_t cut1 = len ? (size_t)(data[0] >> 2) * len / 63 : 0;
    size_t cut2 = cut1 + (len - cut1) / 2;
    fresh(&c);
    run(buf, cut1, &c, lim);
    if (c.r == TERN_PARSE_INCOMPLETE) {
        run(buf, cut2, &c, lim);
        if (c.r == TERN_PARSE_INCOMPLETE) run(buf, len, &c, lim);
    }
    check(same(&a, &c));

    check_responses(buf, len, lim, cut1, cut2);
    return 0;
}
