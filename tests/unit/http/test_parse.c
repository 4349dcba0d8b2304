/* Request-head parser: every accepted form, every refusal with its status,
 * every split point, and every input flush against an unreadable page. */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "http/parse.c"

#define MAXH 64

static tern__http_limits lim = {.max_head = 16384, .max_target = 8192, .max_headers = 32};

/* ---- guard page: input ends exactly where an unreadable page starts ---- */
#define GUARD_SPACE (1u << 20)
static char *guard_area; /* GUARD_SPACE readable bytes, then PROT_NONE */

static void guard_init(void) {
    size_t pg = (size_t)sysconf(_SC_PAGESIZE);
    char *m =
        mmap(NULL, GUARD_SPACE + pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED || mprotect(m + GUARD_SPACE, pg, PROT_NONE) != 0) {
        perror("guard");
        exit(2);
    }
    guard_area = m;
}

static const char *guarded(const char *s, size_t n) {
    char *p = guard_area + GUARD_SPACE - n;
    memmove(p, s, n);
    return p;
}

typedef struct {
    int r;
    tern__http_request req;
    tern__http_header h[MAXH];
} result;

static int parse_once(const char *s, size_t n, result *out, const tern__http_limits *l) {
    memset(out, 0, sizeof *out);
    out->req.headers = out->h;
    out->r = tern__http_parse_request(guarded(s, n), n, &out->req, l);
    return out->r;
}

/* Same results; headers compared by contents since offsets are relative. */
static int same(const result *a, const result *b) {
    if (a->r != b->r) return 0;
    if (a->r <= 0) return 1;
    const tern__http_request *x = &a->req, *y = &b->req;
    if (x->method != y->method || x->method_len != y->method_len ||
        x->target_off != y->target_off || x->target_len != y->target_len ||
        x->path_off != y->path_off || x->path_len != y->path_len || x->query_off != y->query_off ||
        x->query_len != y->query_len || x->minor != y->minor || x->flags != y->flags ||
        x->authority_off != y->authority_off || x->authority_len != y->authority_len ||
        x->host_index != y->host_index || x->num_headers != y->num_headers)
        return 0;
    if ((x->flags & TERN_REQ_HAS_LENGTH) && x->content_length != y->content_length) return 0;
    return memcmp(a->h, b->h, x->num_headers * sizeof a->h[0]) == 0;
}

/* Parses s whole, then every prefix both fresh and incrementally (one req
 * carried across calls as a connection does), each flush against the guard
 * page. Every prefix must answer INCOMPLETE or the final answer, and once
 * complete the same results. Returns the whole-input result. */
static int parse_split(const char *s, size_t n, result *whole, const tern__http_limits *l) {
    static result inc, fresh;
    parse_once(s, n, whole, l);
    memset(&inc, 0, sizeof inc);
    inc.req.headers = inc.h;
    int decided = 0;
    for (size_t k = 0; k <= n; k++) {
        if (!decided) {
            inc.r = tern__http_parse_request(guarded(s, k), k, &inc.req, l);
            if (inc.r != TERN_PARSE_INCOMPLETE) {
                decided = 1;
                if (!same(&inc, whole)) {
                    fprintf(stderr, "incremental prefix %zu of \"%.*s\": %d vs whole %d\n", k,
                            (int)(n > 60 ? 60 : n), s, inc.r, whole->r);
                    CHECK(0);
                    break;
                }
            }
        }
        parse_once(s, k, &fresh, l);
        if (fresh.r != TERN_PARSE_INCOMPLETE && !same(&fresh, whole)) {
            fprintf(stderr, "prefix %zu of \"%.*s\": %d vs whole %d\n", k, (int)(n > 60 ? 60 : n),
                    s, fresh.r, whole->r);
            CHECK(0);
            break;
        }
        /* a successful head is INCOMPLETE exactly until its last byte */
        if (whole->r > 0) CHECK((fresh.r == TERN_PARSE_INCOMPLETE) == (k < (size_t)whole->r));
    }
    if (whole->r != TERN_PARSE_INCOMPLETE) CHECK(decided);
    return whole->r;
}

#define S(lit) lit, sizeof(lit) - 1

static result R;

static int P(const char *s, size_t n) {
    return parse_split(s, n, &R, &lim);
}

static int hdr_is(const char *s, uint32_t i, const char *name, const char *value) {
    const tern__http_header *h = &R.h[i];
    return tern__http_header_is(s, h, name, strlen(name)) && h->value_len == strlen(value) &&
           !memcmp(s + h->value_off, value, h->value_len);
}

#define TARGET(s) (s) + R.req.target_off, R.req.target_len
#define PATH(s) (s) + R.req.path_off, R.req.path_len
#define AUTHORITY(s) (s) + R.req.authority_off, R.req.authority_len
#define QUERY(s) (s) + R.req.query_off, R.req.query_len
#define CHECK_SPAN(...) CHECK_MEM(__VA_ARGS__)

static void test_basic(void) {
    static const char a[] = "GET / HTTP/1.1\r\nHost: localhost:8080\r\n\r\n";
    CHECK_INT(P(S(a)), sizeof a - 1);
    CHECK_INT(R.req.method, TERN_GET);
    CHECK_INT(R.req.method_len, 3);
    CHECK_SPAN(TARGET(a), "/");
    CHECK_SPAN(PATH(a), "/");
    CHECK_INT(R.req.query_len, 0);
    CHECK_INT(R.req.minor, 1);
    CHECK_INT(R.req.flags, TERN_REQ_KEEP_ALIVE);
    CHECK_INT(R.req.num_headers, 1);
    CHECK_INT(R.req.host_index, 0);
    CHECK(hdr_is(a, 0, "host", "localhost:8080"));
    CHECK(hdr_is(a, 0, "HOST", "localhost:8080"));
    CHECK(!hdr_is(a, 0, "hosts", "localhost:8080"));

    /* bytes after the head belong to the body / next request */
    static const char b[] = "POST /a/b?x=1&y=%20 HTTP/1.1\r\nhOsT:\texample.com \t\r\n"
                            "Content-Length: 5\r\nX-Empty:\r\nX-Obs: caf\xc3\xa9\r\n\r\nhello";
    CHECK_INT(P(S(b)), sizeof b - 1 - 5);
    CHECK_INT(R.req.method, TERN_POST);
    CHECK_SPAN(TARGET(b), "/a/b?x=1&y=%20");
    CHECK_SPAN(PATH(b), "/a/b");
    CHECK_SPAN(QUERY(b), "x=1&y=%20");
    CHECK_INT(R.req.flags, TERN_REQ_KEEP_ALIVE | TERN_REQ_HAS_LENGTH);
    CHECK_INT(R.req.content_length, 5);
    CHECK_INT(R.req.num_headers, 4);
    CHECK(hdr_is(b, 0, "Host", "example.com"));
    CHECK(hdr_is(b, 2, "x-empty", ""));
    CHECK(hdr_is(b, 3, "x-obs", "caf\xc3\xa9"));

    /* empty query, value with inner spaces and tabs */
    static const char c[] = "GET /p? HTTP/1.1\r\nHost: h\r\nUser-Agent: a b\tc  \r\n\r\n";
    CHECK_INT(P(S(c)), sizeof c - 1);
    CHECK_SPAN(PATH(c), "/p");
    CHECK_INT(R.req.query_len, 0);
    CHECK_INT(R.req.query_off, 7);
    CHECK(hdr_is(c, 1, "user-agent", "a b\tc"));

    /* HTTP/1.0 needs no Host and is not persistent by default */
    static const char d[] = "GET /x HTTP/1.0\r\n\r\n";
    CHECK_INT(P(S(d)), sizeof d - 1);
    CHECK_INT(R.req.minor, 0);
    CHECK_INT(R.req.flags, 0);
    CHECK_INT(R.req.host_index, UINT32_MAX);
    CHECK_INT(R.req.num_headers, 0);

    /* leading empty lines are skipped and counted */
    static const char e[] = "\r\n\r\nGET / HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_INT(P(S(e)), sizeof e - 1);
    CHECK_INT(R.req.target_off, 8);
    CHECK_INT(R.req.method, TERN_GET);
}

static void test_methods(void) {
    static const struct {
        const char *s;
        unsigned bit;
    } m[] = {
        {"GET / HTTP/1.1\r\nHost: h\r\n\r\n", TERN_GET},
        {"HEAD / HTTP/1.1\r\nHost: h\r\n\r\n", TERN_HEAD},
        {"POST / HTTP/1.1\r\nHost: h\r\n\r\n", TERN_POST},
        {"PUT / HTTP/1.1\r\nHost: h\r\n\r\n", TERN_PUT},
        {"DELETE / HTTP/1.1\r\nHost: h\r\n\r\n", TERN_DELETE},
        {"PATCH / HTTP/1.1\r\nHost: h\r\n\r\n", TERN_PATCH},
        {"OPTIONS / HTTP/1.1\r\nHost: h\r\n\r\n", TERN_OPTIONS},
        {"TRACE / HTTP/1.1\r\nHost: h\r\n\r\n", TERN_TRACE},
        {"PROPFIND / HTTP/1.1\r\nHost: h\r\n\r\n", 0},
        {"get / HTTP/1.1\r\nHost: h\r\n\r\n", 0}, /* case-sensitive */
        {"GETX / HTTP/1.1\r\nHost: h\r\n\r\n", 0},
        {"M-SEARCH * HTTP/1.1\r\nHost: h\r\n\r\n", 0}, /* '*' is not OPTIONS */
    };
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++) {
        size_t n = strlen(m[i].s);
        int r = P(m[i].s, n);
        if (i == sizeof m / sizeof m[0] - 1) {
            CHECK_INT(r, -400);
            continue;
        }
        CHECK_INT(r, n);
        CHECK_INT(R.req.method, m[i].bit);
        CHECK_INT(R.req.method_len, strchr(m[i].s, ' ') - m[i].s);
    }
    /* a 32-byte method is a token like any other, 33 is 501 */
    char big[128];
    snprintf(big, sizeof big, "%.*s / HTTP/1.1\r\nHost: h\r\n\r\n", 32,
             "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJ");
    CHECK_INT(P(big, strlen(big)), strlen(big));
    CHECK_INT(R.req.method_len, 32);
    snprintf(big, sizeof big, "%.*s / HTTP/1.1\r\nHost: h\r\n\r\n", 33,
             "ABCDEFGHIJKLMNOPQRSTUVWXYZABCDEFGHIJ");
    CHECK_INT(P(big, strlen(big)), -501);
}

static void test_target_forms(void) {
    static const char a[] = "OPTIONS * HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_INT(P(S(a)), sizeof a - 1);
    CHECK_INT(R.req.flags, TERN_REQ_KEEP_ALIVE | TERN_REQ_FORM_ASTERISK);
    CHECK_SPAN(PATH(a), "*");

    static const char b[] = "GET http://example.com:8080/a/b?c=d HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_INT(P(S(b)), sizeof b - 1);
    CHECK_INT(R.req.flags, TERN_REQ_KEEP_ALIVE | TERN_REQ_FORM_ABSOLUTE);
    CHECK_SPAN(TARGET(b), "http://example.com:8080/a/b?c=d");
    CHECK_SPAN(PATH(b), "/a/b");
    CHECK_SPAN(QUERY(b), "c=d");

    CHECK_SPAN(AUTHORITY(b), "example.com:8080");

    /* empty path: "/" (RFC 9112 §3.2.2) */
    static const char c[] = "GET HTTPS://example.com HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_INT(P(S(c)), sizeof c - 1);
    CHECK_INT(R.req.flags, TERN_REQ_KEEP_ALIVE | TERN_REQ_FORM_ABSOLUTE);
    CHECK_SPAN(PATH(c), "/");
    CHECK_INT(R.req.query_len, 0);
    CHECK_SPAN(AUTHORITY(c), "example.com");
    static const char d[] = "GET http://e.com?q=1 HTTP/1.1\r\nHost: x\r\n\r\n";
    CHECK_INT(P(S(d)), sizeof d - 1);
    CHECK_SPAN(PATH(d), "/");
    CHECK_SPAN(QUERY(d), "q=1");
    CHECK_SPAN(AUTHORITY(d), "e.com");
    static const char d2[] = "GET http://x HTTP/1.1\r\nHost: y\r\n\r\n";
    CHECK_INT(P(S(d2)), sizeof d2 - 1);
    CHECK_SPAN(PATH(d2), "/");
    CHECK_SPAN(AUTHORITY(d2), "x");
    static const char d3[] = "GET http://[::1]:81? HTTP/1.1\r\nHost: y\r\n\r\n";
    CHECK_INT(P(S(d3)), sizeof d3 - 1);
    CHECK_SPAN(PATH(d3), "/");
    CHECK_INT(R.req.query_len, 0);
    CHECK_SPAN(AUTHORITY(d3), "[::1]:81");
    /* only absolute-form has an authority */
    static const char d4[] = "GET /a HTTP/1.1\r\nHost: y\r\n\r\n";
    CHECK_INT(P(S(d4)), sizeof d4 - 1);
    CHECK_INT(R.req.authority_len, 0);
    static const char d5[] = "GET /a?b HTTP/1.2\r\nHost: y\r\n\r\n"; /* slow path */
    CHECK_INT(P(S(d5)), sizeof d5 - 1);
    CHECK_INT(R.req.authority_len, 0);
    CHECK_SPAN(PATH(d5), "/a");

    /* HTTP/1.2..1.9 are served as HTTP/1.1 (RFC 9110 §2.5): Host needed */
    static const char v1[] = "GET / HTTP/1.9\r\nHost: h\r\nConnection: close\r\n\r\n";
    CHECK_INT(P(S(v1)), sizeof v1 - 1);
    CHECK_INT(R.req.minor, 1);
    CHECK_INT(R.req.flags, 0);
    static const char v2[] = "GET / HTTP/1.2\r\n\r\n";
    CHECK_INT(P(S(v2)), -400);
    static const char v3[] = "POST / HTTP/1.3\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK_INT(P(S(v3)), sizeof v3 - 1);
    CHECK_INT(R.req.flags, TERN_REQ_KEEP_ALIVE | TERN_REQ_CHUNKED);

    /* CONNECT is for proxies: 400, whatever its target (nginx does the same) */
    static const char e[] = "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n";
    CHECK_INT(P(S(e)), -400);
    static const char f[] = "CONNECT [::1]:8443 HTTP/1.1\r\nHost: [::1]:8443\r\n\r\n";
    CHECK_INT(P(S(f)), -400);
    static const char f2[] = "CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_INT(P(S(f2)), -400);

    /* every visible ASCII byte is allowed in a target, except '#' */
    char all[200], req[400];
    size_t k = 0;
    all[k++] = '/';
    for (int ch = 0x21; ch <= 0x7e; ch++)
        if (ch != '#') all[k++] = (char)ch;
    all[k] = 0;
    snprintf(req, sizeof req, "GET %s HTTP/1.1\r\nHost: h\r\n\r\n", all);
    CHECK_INT(P(req, strlen(req)), strlen(req));
    CHECK_INT(R.req.target_len, k);
    const char *qm = strchr(all, '?');
    CHECK_INT(R.req.path_len, qm - all);
    CHECK_INT(R.req.query_len, k - (size_t)(qm - all) - 1);
}

static void test_headers_semantics(void) {
    static const char a[] = "GET / HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n";
    CHECK_INT(P(S(a)), sizeof a - 1);
    CHECK_INT(R.req.flags, 0);
    static const char b[] = "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n";
    CHECK_INT(P(S(b)), sizeof b - 1);
    CHECK_INT(R.req.flags, TERN_REQ_KEEP_ALIVE);
    static const char c[] = "GET / HTTP/1.0\r\nConnection: keep-alive, close\r\n\r\n";
    CHECK_INT(P(S(c)), sizeof c - 1);
    CHECK_INT(R.req.flags, 0);
    static const char d[] = "GET / HTTP/1.1\r\nHost: h\r\nConnection: ,foo , Upgrade,\r\n"
                            "Upgrade: websocket\r\n\r\n";
    CHECK_INT(P(S(d)), sizeof d - 1);
    CHECK_INT(R.req.flags, TERN_REQ_KEEP_ALIVE | TERN_REQ_UPGRADE | TERN_REQ_CONNECTION_UPGRADE);
    static const char e[] =
        "GET / HTTP/1.1\r\nHost: h\r\nconnection: x\r\nCONNECTION: CLOSE\r\n\r\n";
    CHECK_INT(P(S(e)), sizeof e - 1);
    CHECK_INT(R.req.flags, 0);

    static const char f[] = "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n"
                            "Content-Length: 18446744073709551615\r\n\r\n";
    CHECK_INT(P(S(f)), -400); /* over 2^63-1 */
    static const char g[] = "PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-Continue\r\n"
                            "Content-Length: 9223372036854775807\r\n\r\n";
    CHECK_INT(P(S(g)), sizeof g - 1);
    CHECK_INT(R.req.flags, TERN_REQ_KEEP_ALIVE | TERN_REQ_EXPECT_CONTINUE | TERN_REQ_HAS_LENGTH);
    CHECK(R.req.content_length == 9223372036854775807ull);
    static const char h[] = "PUT / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n"
                            "content-length: 000\r\n\r\n";
    CHECK_INT(P(S(h)), -417); /* RFC 9110 §10.1.1 */

    static const char i[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n";
    CHECK_INT(P(S(i)), sizeof i - 1);
    CHECK_INT(R.req.flags, TERN_REQ_KEEP_ALIVE | TERN_REQ_CHUNKED);
    static const char j[] = "POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: ,\tChunKed ,\r\n\r\n";
    CHECK_INT(P(S(j)), sizeof j - 1);
    CHECK_INT(R.req.flags, TERN_REQ_KEEP_ALIVE | TERN_REQ_CHUNKED);

    /* Host is the second header; its index is reported */
    static const char k[] = "GET / HTTP/1.1\r\nAccept: */*\r\nHost: h\r\n\r\n";
    CHECK_INT(P(S(k)), sizeof k - 1);
    CHECK_INT(R.req.host_index, 1);

    /* names that look like the known ones but are not */
    static const char l[] = "GET / HTTP/1.1\r\nHost: h\r\nContent-Lengthx: 1\r\nHos: 2\r\n"
                            "Content_Length: x\r\nTransfer-Encodings: gzip\r\nConnectionn: close"
                            "\r\nUpgrad: y\r\n\r\n";
    CHECK_INT(P(S(l)), sizeof l - 1);
    CHECK_INT(R.req.flags, TERN_REQ_KEEP_ALIVE);
}

struct bad {
    const char *s;
    int status;
};

static void test_rejections(void) {
    static const struct bad cases[] = {
        /* request line */
        /* Host with an invalid value (RFC 9112 §3.2: MUST 400) */
        {"GET / HTTP/1.1\r\nHost: a b\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: @x\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: [::1\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: h:80x\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: \"h\"\r\n\r\n", -400},
        {"GET http://a\"b/ HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"CONNECT a\"b:443 HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"GET  / HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"GET /  HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"GET / HTTP/1.1 \r\nHost: h\r\n\r\n", -400},
        {"GET\t/ HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {" GET / HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"G(T / HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"GET /\x7f HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"GET /\x80 HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"GET /a\tb HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"GET /#frag HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"GET / http/1.1\r\nHost: h\r\n\r\n", -400},
        {"GET / HTTP/1.1\nHost: h\r\n\r\n", -400},
        {"GET / HTTP/1.1\rHost: h\r\n\r\n", -400},
        {"GET / HTTP/1\r\nHost: h\r\n\r\n", -400},
        {"GET / HTTP/1.10\r\nHost: h\r\n\r\n", -400},
        {"GET / HTTP/11.1\r\nHost: h\r\n\r\n", -400},
        {"GET / HTTP/1.x\r\nHost: h\r\n\r\n", -400},
        {"GET /\r\nHost: h\r\n\r\n", -400},
        {"GET / HTTP/2.0\r\nHost: h\r\n\r\n", -505},
        {"GET / HTTP/0.9\r\nHost: h\r\n\r\n", -505},
        {"GET / HTTP/3.0\r\n\r\n", -505},
        {"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", -400},
        {"\nGET / HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"\r\rGET / HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        /* target forms */
        {"GET * HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"GET example.com:80 HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"GET ftp://example.com/ HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"GET http:///a HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"GET http://u@h/ HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"GET a/b HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"CONNECT / HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"CONNECT http://h:1/ HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"CONNECT h HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"CONNECT h: HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"CONNECT :80 HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"CONNECT h:65536 HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"CONNECT h:8x HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"CONNECT [::1 HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        {"OPTIONS ** HTTP/1.1\r\nHost: h\r\n\r\n", -400},
        /* header syntax */
        {"GET / HTTP/1.1\r\nHost : h\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost\t: h\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\n: h\r\nHost: h\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: h\r\n folded\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX: a\r\n\tfolded\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\n Host: h\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHo st: h\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x01\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\x7f\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\rb\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\nX-B: b\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\n", -400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\n\r\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: h\nX-A: a\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: h\r\nNoColon\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX\x80Y: z\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: h\r\nX-A: a\r\r\n\r\n", -400},
        /* Host */
        {"GET / HTTP/1.1\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nX-Host: h\r\n\r\n", -400},
        {"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n", -400},
        {"GET / HTTP/1.0\r\nHost: a\r\nhost: b\r\n\r\n", -400},
        /* Content-Length */
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: \r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: +5\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: -5\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5 5\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5,5\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 0x5\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 9223372036854775808\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 99999999999999999999999\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\ncontent-length: 6\r\n\r\n", -400},
        /* Transfer-Encoding */
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
         -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nContent-Length: 3\r\nTransfer-Encoding: gzip\r\n\r\n",
         -400},
        {"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n"
         "Transfer-Encoding: chunked\r\n\r\n",
         -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding:\r\n\r\n", -400},
        /* chunked not the final coding: 400 and close (RFC 9112 §6.3) */
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked;q=1\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: identity\r\n\r\n", -400},
        /* two Transfer-Encoding fields, whatever they say: 400 */
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
         -400},
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n",
         -400},
        /* chunked last after a coding we do not know: 501 */
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", -501},
        /* an expectation we cannot meet: 417, after the framing checks */
        {"PUT / HTTP/1.1\r\nHost: h\r\nExpect: something\r\n\r\n", -417},
        {"PUT / HTTP/1.1\r\nHost: h\r\nExpect:\r\n\r\n", -417},
        {"PUT / HTTP/1.1\r\nHost: h\r\nExpect: 100-continue, x\r\n\r\n", -417},
        {"PUT / HTTP/1.1\r\nHost: h\r\nExpect: x\r\nTransfer-Encoding: gzip\r\n\r\n", -400},
        /* a syntax error after a semantic one still wins (same status here) */
        {"POST / HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: gzip\r\nBad Name: x\r\n\r\n", -400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *s = cases[i].s;
        size_t n = strlen(s);
        int r = P(s, n);
        if (r != cases[i].status) fprintf(stderr, "case %zu: \"%.*s\"\n", i, (int)n, s);
        CHECK_INT(r, cases[i].status);
    }
    static const char nul[] = "GET / HTTP/1.1\r\nHost: h\r\nX-A: a\0b\r\n\r\n";
    CHECK_INT(P(S(nul)), -400);
    static const char nul_target[] = "GET /\0 HTTP/1.1\r\nHost: h\r\n\r\n";
    CHECK_INT(P(S(nul_target)), -400);
}

/* Every byte value at every position of a 40-byte value and a 40-byte
 * target, so both the 16-byte SIMD scan and the scalar tail see each. */
static void test_byte_classes(void) {
    char buf[256];
    result r;
    for (int c = 0; c < 256; c++) {
        int value_ok = c == '\t' || (c >= 0x20 && c != 0x7f);
        int target_ok = c >= 0x21 && c <= 0x7e && c != '#';
        for (int pos = 0; pos < 40; pos++) {
            int n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: h\r\nX: a%038da\r\n\r\n", 0);
            buf[28 + pos] = (char)c; /* the value is buf[28..67] */
            int want = value_ok ? n : -400;
            int got = parse_once(buf, (size_t)n, &r, &lim);
            if (got != want) fprintf(stderr, "value byte 0x%02x at %d: %d\n", c, pos, got);
            CHECK_INT(got, want);

            if (pos == 39) continue;
            n = snprintf(buf, sizeof buf, "GET /%039d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
            buf[5 + pos] = (char)c; /* the target is buf[4..43] */
            want = target_ok ? n : -400;
            got = parse_once(buf, (size_t)n, &r, &lim);
            if (got != want) fprintf(stderr, "target byte 0x%02x at %d: %d\n", c, pos, got);
            CHECK_INT(got, want);
        }
    }
}

static void test_limits(void) {
    static char buf[40000];
    tern__http_limits l = {.max_head = 200, .max_target = 50, .max_headers = 3};
    result r;

    /* target exactly at the limit, then one over: 414 even before the line ends */
    int n = snprintf(buf, sizeof buf, "GET /%049d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
    CHECK_INT(parse_split(buf, (size_t)n, &r, &l), n);
    n = snprintf(buf, sizeof buf, "GET /%050d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
    CHECK_INT(parse_split(buf, (size_t)n, &r, &l), -414);
    CHECK_INT(parse_once(buf, 4 + 51, &r, &l), -414);
    CHECK_INT(parse_once(buf, 4 + 50, &r, &l), TERN_PARSE_INCOMPLETE);

    /* three headers fit, a fourth is 431 */
    n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\n\r\n");
    CHECK_INT(parse_split(buf, (size_t)n, &r, &l), n);
    n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: h\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n");
    CHECK_INT(parse_split(buf, (size_t)n, &r, &l), -431);

    /* head exactly max_head long passes; one more byte is 431 */
    n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: h\r\nA: %0*d\r\n\r\n", 200 - 32, 0);
    CHECK_INT(n, 200);
    CHECK_INT(parse_split(buf, (size_t)n, &r, &l), 200);
    n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: h\r\nA: %0*d\r\n\r\n", 201 - 32, 0);
    CHECK_INT(parse_split(buf, (size_t)n, &r, &l), -431);
    /* an incomplete head over the limit is reported at once */
    memset(buf, 'a', 1000);
    memcpy(buf, "GET / HTTP/1.1\r\nX: ", 19);
    CHECK_INT(parse_once(buf, 200, &r, &l), TERN_PARSE_INCOMPLETE);
    CHECK_INT(parse_once(buf, 201, &r, &l), -431);
    CHECK_INT(parse_split(buf, 1000, &r, &l), -431);
    /* a request line that does not fit in max_head is 414 */
    l.max_target = 1000;
    memset(buf, 'a', 1000);
    memcpy(buf, "GET /", 5);
    CHECK_INT(parse_split(buf, 1000, &r, &l), -414);
    memcpy(buf, "GET / ", 6);
    CHECK_INT(parse_split(buf, 1000, &r, &l), -400);

    /* endless empty lines cannot hold the connection forever */
    for (int i = 0; i < 1000; i += 2) memcpy(buf + i, "\r\n", 2);
    CHECK(parse_split(buf, 1000, &r, &l) < TERN_PARSE_INCOMPLETE);

    /* default-size limits, large inputs (split checks are quadratic: once) */
    n = snprintf(buf, sizeof buf, "GET /%08192d HTTP/1.1\r\nHost: h\r\n\r\n", 0);
    CHECK_INT(parse_split(buf, (size_t)n, &r, &lim), -414);
    n = snprintf(buf, sizeof buf, "GET /%08190d HTTP/1.1\r\nHost: h\r\nX: %08000d\r\n\r\n", 0, 0);
    CHECK_INT(parse_split(buf, (size_t)n, &r, &lim), n);
    n = snprintf(buf, sizeof buf, "GET / HTTP/1.1\r\nHost: h\r\nX: %016400d\r\n\r\n", 0);
    CHECK_INT(parse_split(buf, (size_t)n, &r, &lim), -431);
}

/* Random requests assembled from valid pieces and mutations: whole,
 * prefixes and the guard page must all agree (parse_split checks it). */
static void test_random_splits(void) {
    static const char *pieces[] = {
        "Host: h\r\n",
        "Content-Length: 12\r\n",
        "Transfer-Encoding: chunked\r\n",
        "Connection: close\r\n",
        "Expect: 100-continue\r\n",
        "X: \t y \r\n",
        "A:\r\n",
        "Bad Header: x\r\n",
        "\r\n",
        " fold\r\n",
        "X: a\rb\r\n",
        "X: a\nb\r\n",
        "Upgrade: h2c\r\n",
        "\r\n\r\n",
    };
    static const char *lines[] = {
        "GET / HTTP/1.1\r\n",
        "\r\nPOST /x?y HTTP/1.0\r\n",
        "OPTIONS * HTTP/1.1\r\n",
        "GET http://a/b HTTP/1.1\r\n",
        "GET / HTTP/2.0\r\n",
        "CONNECT a:1 HTTP/1.1\r\n",
        "GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\n",
    };
    tern__http_limits l = {.max_head = 120, .max_target = 40, .max_headers = 4};
    unsigned seed = 12345;
    char buf[512];
    result r;
    int seen[4] = {0};
    for (int iter = 0; iter < 3000; iter++) {
        size_t n = 0;
        seed = seed * 1103515245u + 12345u;
        const char *rl = lines[(seed >> 16) % (sizeof lines / sizeof lines[0])];
        memcpy(buf, rl, strlen(rl));
        n += strlen(rl);
        int k = (int)((seed >> 8) % 6);
        for (int j = 0; j < k; j++) {
            seed = seed * 1103515245u + 12345u;
            const char *pc = pieces[(seed >> 16) % (sizeof pieces / sizeof pieces[0])];
            memcpy(buf + n, pc, strlen(pc));
            n += strlen(pc);
        }
        memcpy(buf + n, "\r\n", 2);
        n += 2;
        int res = parse_split(buf, n, &r, &l);
        seen[res > 0 ? 0 : res == -400 ? 1 : res == TERN_PARSE_INCOMPLETE ? 2 : 3]++;
    }
    /* the generator must exercise both outcomes */
    CHECK(seen[0] > 100);
    CHECK(seen[1] > 100);
    CHECK(seen[3] > 10);
}

/* valid Host values (the invalid ones are in test_rejections) */
static void test_host_values(void) {
    static const char *ok[] = {
        "GET / HTTP/1.1\r\nHost: 127.0.0.1:18095\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: \r\n\r\n",
        "GET / HTTP/1.1\r\nHost: xn--bcher-kva.example:8080\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: [2001:db8::1]:443\r\n\r\n",
        "GET / HTTP/1.1\r\nHost: a-b_c~d.e%20f!$&'()*+,;=\r\n\r\n",
        "GET http://example.com:8080/x HTTP/1.1\r\nHost: example.com:8080\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) CHECK_INT(P(ok[i], strlen(ok[i])), (int)strlen(ok[i]));
}

/* ---- response heads ---- */

typedef struct {
    int r;
    tern__http_response resp;
    tern__http_header h[MAXH];
} resp_result;

/* Parses s whole, then every prefix carried incrementally (the client's
 * way: the same struct, bytes only appended), each flush against the guard
 * page; every prefix must give INCOMPLETE or the final answer, and the
 * final results must match. */
static int parse_resp(const char *s, size_t n, resp_result *out, const tern__http_limits *l) {
    static resp_result inc;
    memset(out, 0, sizeof *out);
    out->resp.headers = out->h;
    out->r = tern__http_parse_response(guarded(s, n), n, &out->resp, l);
    memset(&inc, 0, sizeof inc);
    inc.resp.headers = inc.h;
    for (size_t k = 0; k <= n; k++) {
        inc.r = tern__http_parse_response(guarded(s, k), k, &inc.resp, l);
        if (inc.r == TERN_RESP_INCOMPLETE) continue;
        int ok = inc.r == out->r;
        if (ok && out->r > 0)
            ok = inc.resp.status == out->resp.status && inc.resp.minor == out->resp.minor &&
                 inc.resp.flags == out->resp.flags &&
                 inc.resp.num_headers == out->resp.num_headers &&
                 inc.resp.content_length == out->resp.content_length &&
                 inc.resp.reason_len == out->resp.reason_len &&
                 !memcmp(inc.h, out->h, out->resp.num_headers * sizeof inc.h[0]);
        if (!ok) fprintf(stderr, "response prefix %zu of \"%.*s\": %d vs %d\n", k, (int)n, s, inc.r, out->r);
        CHECK(ok);
        break;
    }
    return out->r;
}

static void test_responses(void) {
    static resp_result q;
    tern__http_limits l = {.max_head = 512, .max_target = 0, .max_headers = 8};
    static const char a[] = "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nX-A:  v \r\n\r\nhello";
    CHECK_INT(parse_resp(S(a), &q, &l), sizeof a - 1 - 5);
    CHECK_INT(q.resp.status, 200);
    CHECK_INT(q.resp.minor, 1);
    CHECK_MEM(a + q.resp.reason_off, q.resp.reason_len, "OK");
    CHECK_INT(q.resp.flags, TERN_RESP_KEEP_ALIVE | TERN_RESP_HAS_LENGTH);
    CHECK_INT(q.resp.content_length, 5);
    CHECK_INT(q.resp.num_headers, 2);
    CHECK_MEM(a + q.h[1].value_off, q.h[1].value_len, "v");
    static const char b[] = "HTTP/1.0 404 \r\nConnection: keep-alive\r\n\r\n";
    CHECK_INT(parse_resp(S(b), &q, &l), sizeof b - 1);
    CHECK_INT(q.resp.status, 404);
    CHECK_INT(q.resp.reason_len, 0);
    CHECK_INT(q.resp.flags, TERN_RESP_KEEP_ALIVE);
    static const char c[] = "HTTP/1.1 204\r\nConnection: close\r\n\r\n"; /* no SP, no reason */
    CHECK_INT(parse_resp(S(c), &q, &l), sizeof c - 1);
    CHECK_INT(q.resp.status, 204);
    CHECK_INT(q.resp.flags, 0);
    static const char d[] = "HTTP/1.1 200 A\tfine  reason\r\nTransfer-Encoding: gzip, chunked\r\n\r\n";
    CHECK_INT(parse_resp(S(d), &q, &l), sizeof d - 1);
    CHECK_INT(q.resp.flags, TERN_RESP_KEEP_ALIVE | TERN_RESP_CHUNKED);
    CHECK_MEM(d + q.resp.reason_off, q.resp.reason_len, "A\tfine  reason");
    static const char e[] = "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n";
    CHECK_INT(parse_resp(S(e), &q, &l), sizeof e - 1);
    CHECK_INT(q.resp.flags, TERN_RESP_KEEP_ALIVE | TERN_RESP_UNTIL_CLOSE);
    static const char f[] = "HTTP/1.5 103 Early Hints\r\nLink: </s.css>\r\n\r\n";
    CHECK_INT(parse_resp(S(f), &q, &l), sizeof f - 1);
    CHECK_INT(q.resp.minor, 1);
    CHECK_INT(q.resp.status, 103);
    /* Host and Expect are ignored in a response, twice or not */
    static const char g[] = "HTTP/1.1 200 OK\r\nHost: a\r\nHost: b\r\nExpect: x\r\n\r\n";
    CHECK_INT(parse_resp(S(g), &q, &l), sizeof g - 1);

    static const char *const bad[] = {
        "HTTP/1.1 999 Weird\r\n\r\n",      /* status outside 100..599 */
        "HTTP/1.1 600 X\r\n\r\n",
        "HTTP/1.1 099 X\r\n\r\n",
        "HTTP/1.1 20 OK\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/2.0 200 OK\r\n\r\n",
        "HTTP/0.9 200 OK\r\n\r\n",
        "http/1.1 200 OK\r\n\r\n",
        "HTTP/1.1  200 OK\r\n\r\n",
        "\r\nHTTP/1.1 200 OK\r\n\r\n",
        "HTTP/1.1 200 OK\n\r\n",             /* bare LF */
        "HTTP/1.1 200 OK\rX: y\r\n\r\n",  /* bare CR */
        "HTTP/1.1 200 O\x01K\r\n\r\n",    /* CTL in the reason */
        "HTTP/1.1 200 OK\r\nX: a\r\n folded\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
        "HTTP/1.1 200 OK\r\nX\x01: 0\r\n\r\n",
        ("HTTP/1.1 200 OK\r\nX: a\x7f" "b\r\n\r\n"),
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, chunked\r\n\r\n",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding:\r\n\r\n",
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        int r = parse_resp(bad[i], strlen(bad[i]), &q, &l);
        if (r != TERN_RESP_MALFORMED) fprintf(stderr, "bad response %zu: %d\n", i, r);
        CHECK_INT(r, TERN_RESP_MALFORMED);
    }
    /* limits: head size and header count */
    char big[1024];
    int n = snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\nX: %0600d\r\n\r\n", 0);
    CHECK_INT(parse_resp(big, (size_t)n, &q, &l), TERN_RESP_TOO_LARGE);
    CHECK_INT(parse_resp(big, 300, &q, &l), TERN_RESP_INCOMPLETE);
    n = snprintf(big, sizeof big, "HTTP/1.1 200 OK\r\n%s\r\n",
                 "A: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\nA: 1\r\n");
    CHECK_INT(parse_resp(big, (size_t)n, &q, &l), TERN_RESP_TOO_MANY_HEADERS);
}

int main(void) {
    guard_init();
    test_responses();
    test_host_values();
    test_basic();
    test_methods();
    test_target_forms();
    test_headers_semantics();
    test_rejections();
    test_byte_classes();
    test_limits();
    test_random_splits();
    return check_done();
}
