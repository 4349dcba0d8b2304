/* Chunked decoder: valid bodies, every refusal with its status, and the
 * same verdict and output for the whole input, every 2-way split and byte
 * by byte, in place and flush against an unreadable page. */
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "check.h"
#include "http/chunked.c"

#define GUARD_SPACE (1u << 20)
static char *guard_area;

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

typedef struct {
    int ret;
    size_t consumed; /* total input used */
    size_t out_len;
    char out[1 << 16];
} outcome;

/* Feeds s in the pieces given by cuts (ascending offsets), each piece
 * flush against the guard page and decoded in place. A piece is only
 * followed by the next one when the decoder asked for more (returned 0),
 * in which case it must have consumed everything. */
static void feed(const char *s, size_t n, const size_t *cuts, size_t ncuts, uint64_t max_body,
                 outcome *oc) {
    tern__chunked d;
    tern__chunked_init(&d, max_body);
    oc->ret = 0;
    oc->consumed = 0;
    oc->out_len = 0;
    size_t from = 0;
    for (size_t k = 0; k <= ncuts; k++) {
        size_t to = k < ncuts ? cuts[k] : n;
        size_t len = to - from;
        char *p = guard_area + GUARD_SPACE - len;
        memmove(p, s + from, len);
        size_t used = 99, got = 99;
        oc->ret = tern__chunked_decode(&d, p, len, &used, p, &got);
        CHECK(used <= len);
        CHECK(got <= used);
        memcpy(oc->out + oc->out_len, p, got);
        oc->out_len += got;
        oc->consumed += used;
        if (oc->ret != 0) return;
        CHECK_INT(used, len);
        from = to;
    }
}

static int same(const outcome *a, const outcome *b) {
    return a->ret == b->ret && a->consumed == b->consumed && a->out_len == b->out_len &&
           memcmp(a->out, b->out, a->out_len) == 0;
}

static outcome W, T;

/* Decodes whole, then every 2-way split and byte by byte; all must agree.
 * Also decodes whole into a separate output buffer (not in place). */
static int dec(const char *s, size_t n, uint64_t max_body) {
    feed(s, n, NULL, 0, max_body, &W);
    for (size_t cut = 0; cut <= n; cut++) {
        feed(s, n, &cut, 1, max_body, &T);
        if (!same(&W, &T)) {
            fprintf(stderr, "split at %zu of \"%.*s\": %d/%zu vs %d/%zu\n", cut, (int)n, s, T.ret,
                    T.consumed, W.ret, W.consumed);
            CHECK(0);
            break;
        }
    }
    static size_t cuts[1 << 16];
    for (size_t i = 0; i < n; i++) cuts[i] = i + 1;
    feed(s, n, cuts, n ? n - 1 : 0, max_body, &T);
    CHECK(same(&W, &T));

    tern__chunked d;
    tern__chunked_init(&d, max_body);
    static char out[1 << 16];
    size_t used, got;
    int r = tern__chunked_decode(&d, s, n, &used, out, &got);
    CHECK_INT(r, W.ret);
    CHECK_INT(used, W.consumed);
    CHECK(got == W.out_len && memcmp(out, W.out, got) == 0);
    /* errors and completion are sticky */
    if (r != 0) {
        CHECK_INT(tern__chunked_decode(&d, "5\r\n", 3, &used, out, &got), r);
        CHECK_INT(used, 0);
        CHECK_INT(got, 0);
        CHECK_INT(tern__chunked_decode(&d, "", 0, &used, out, &got), r);
    }
    return W.ret;
}

#define S(lit) lit, sizeof(lit) - 1
#define NOLIM UINT64_MAX
#define OUT_IS(lit) CHECK_MEM(W.out, W.out_len, lit)

static void test_valid(void) {
    CHECK_INT(dec(S("5\r\nhello\r\n0\r\n\r\n"), NOLIM), 1);
    OUT_IS("hello");
    CHECK_INT(W.consumed, 15);

    CHECK_INT(dec(S("0\r\n\r\n"), NOLIM), 1);
    OUT_IS("");

    CHECK_INT(dec(S("3\r\nabc\r\na\r\n0123456789\r\nA\r\nABCDEFGHIJ\r\n0\r\n\r\n"), NOLIM), 1);
    OUT_IS("abc0123456789ABCDEFGHIJ");

    /* leading zeros, extensions (with BWS before ';'), trailers */
    CHECK_INT(dec(S("0005;name=val;x=\"q s\"\r\nhello\r\n2 \t;e\r\n, \r\n"
                    "0;last\r\nX-Trailer: 1\r\nEmpty:\r\nObs: caf\xc3\xa9\t\r\n\r\n"),
                  NOLIM),
              1);
    OUT_IS("hello, ");

    /* bytes after the body are the next request: not consumed */
    static const char p[] = "4\r\nbody\r\n0\r\n\r\nGET / HTTP/1.1\r\n";
    CHECK_INT(dec(S(p), NOLIM), 1);
    OUT_IS("body");
    CHECK_INT(W.consumed, sizeof p - 1 - 16);

    /* incomplete bodies ask for more and keep what they decoded */
    CHECK_INT(dec(S("5\r\nhel"), NOLIM), 0);
    OUT_IS("hel");
    CHECK_INT(dec(S("5\r\nhello\r\n0\r\nX: y\r\n"), NOLIM), 0);
    OUT_IS("hello");

    /* a larger body with many chunk sizes */
    static char big[40000], want[20000];
    size_t n = 0, w = 0;
    for (int i = 1; w < 15000; i = i * 3 % 1001 + 1) {
        n += (size_t)sprintf(big + n, "%x\r\n", i);
        for (int j = 0; j < i; j++) big[n++] = want[w++] = (char)('a' + (i + j) % 26);
        memcpy(big + n, "\r\n", 2);
        n += 2;
    }
    memcpy(big + n, "0\r\n\r\n", 5);
    n += 5;
    tern__chunked d;
    tern__chunked_init(&d, NOLIM);
    size_t used, got;
    CHECK_INT(tern__chunked_decode(&d, big, n, &used, big, &got), 1);
    CHECK_INT(used, n);
    CHECK(got == w && memcmp(big, want, w) == 0);
    CHECK_INT(d.total, w);
}

static void test_limits(void) {
    /* max_body counts decoded bytes: exactly at the limit passes */
    CHECK_INT(dec(S("5\r\nhello\r\n3\r\nabc\r\n0\r\n\r\n"), 8), 1);
    CHECK_INT(dec(S("5\r\nhello\r\n4\r\nabcd\r\n0\r\n\r\n"), 8), -413);
    OUT_IS("hello"); /* refused at the size line, before its data */
    CHECK_INT(dec(S("ffffffffffffffff\r\n"), NOLIM - 1), -413);
    CHECK_INT(dec(S("ffffffffffffffff\r\n"), NOLIM), 0);
    CHECK_INT(dec(S("10000000000000000\r\n"), NOLIM), -400); /* 2^64 */
    CHECK_INT(dec(S("00000000000000000000000001\r\nx\r\n0\r\n\r\n"), NOLIM), 1);

    /* size line bound (size + extensions): 4096 bytes before CR */
    static char buf[40000];
    memcpy(buf, "1;", 2);
    memset(buf + 2, 'e', 4094);
    memcpy(buf + 4096, "\r\nx\r\n0\r\n\r\n", 10);
    CHECK_INT(dec(buf, 4106, NOLIM), 1);
    memcpy(buf, "1;", 2);
    memset(buf + 2, 'e', 4095);
    memcpy(buf + 4097, "\r\nx\r\n0\r\n\r\n", 10);
    CHECK_INT(dec(buf, 4107, NOLIM), -400);
    /* and it is per line, not per body */
    size_t n = 0;
    for (int i = 0; i < 10; i++) {
        memcpy(buf + n, "1;", 2);
        memset(buf + n + 2, 'e', 3000);
        memcpy(buf + n + 3002, "\r\nx\r\n", 5);
        n += 3007;
    }
    memcpy(buf + n, "0\r\n\r\n", 5);
    tern__chunked d;
    tern__chunked_init(&d, NOLIM);
    size_t used, got;
    CHECK_INT(tern__chunked_decode(&d, buf, n + 5, &used, buf, &got), 1);
    CHECK_INT(got, 10);

    /* trailer section bound: 8192 bytes including the final CRLF */
    memcpy(buf, "0\r\nX: ", 6);
    memset(buf + 6, 'v', 8192 - 7 - 4);
    memcpy(buf + 8192 + 3 - 4, "\r\n\r\n", 4);
    CHECK_INT(dec(buf, 8192 + 3, NOLIM), 1);
    memcpy(buf, "0\r\nX: ", 6);
    memset(buf + 6, 'v', 8192 - 7 - 3);
    memcpy(buf + 8192 + 4 - 4, "\r\n\r\n", 4);
    CHECK_INT(dec(buf, 8192 + 4, NOLIM), -400);
}

/* Tighter bounds, as the client sets them: size line, trailer section and
 * the chunk extensions of the whole body. */
static void test_set_limits(void) {
    static char buf[40000];
    tern__chunked d;
    size_t used, got;
    /* ten lines of 99 extension bytes (after the ';'): fine under 990, not 989 */
    size_t n = 0;
    for (int i = 0; i < 10; i++) {
        memcpy(buf + n, "1;", 2);
        memset(buf + n + 2, 'e', 99);
        memcpy(buf + n + 101, "\r\nx\r\n", 5);
        n += 106;
    }
    memcpy(buf + n, "0\r\n\r\n", 5);
    tern__chunked_init(&d, NOLIM);
    tern__chunked_set_limits(&d, 0, 0, 990);
    CHECK_INT(tern__chunked_decode(&d, buf, n + 5, &used, buf, &got), 1);
    CHECK_INT(got, 10);
    n = 0;
    for (int i = 0; i < 10; i++) {
        memcpy(buf + n, "1;", 2);
        memset(buf + n + 2, 'e', 99);
        memcpy(buf + n + 101, "\r\nx\r\n", 5);
        n += 106;
    }
    memcpy(buf + n, "0\r\n\r\n", 5);
    tern__chunked_init(&d, NOLIM);
    tern__chunked_set_limits(&d, 0, 0, 989);
    CHECK_INT(tern__chunked_decode(&d, buf, n + 5, &used, buf, &got), -400);
    /* size line bound of 16 */
    tern__chunked_init(&d, NOLIM);
    tern__chunked_set_limits(&d, 16, 0, 0);
    static const char ok16[] = "1;aaaaaaaaaaaaaa\r\nx\r\n0\r\n\r\n";
    CHECK_INT(tern__chunked_decode(&d, S(ok16), &used, buf, &got), 1);
    tern__chunked_init(&d, NOLIM);
    tern__chunked_set_limits(&d, 16, 0, 0);
    static const char over16[] = "1;aaaaaaaaaaaaaaa\r\nx\r\n0\r\n\r\n";
    CHECK_INT(tern__chunked_decode(&d, S(over16), &used, buf, &got), -400);
    /* trailer bound of 10 bytes, final CRLF included */
    tern__chunked_init(&d, NOLIM);
    tern__chunked_set_limits(&d, 0, 10, 0);
    static const char t10[] = "0\r\nX: abc\r\n\r\n";
    CHECK_INT(tern__chunked_decode(&d, S(t10), &used, buf, &got), 1);
    tern__chunked_init(&d, NOLIM);
    tern__chunked_set_limits(&d, 0, 10, 0);
    static const char t11[] = "0\r\nX: abcd\r\n\r\n";
    CHECK_INT(tern__chunked_decode(&d, S(t11), &used, buf, &got), -400);
}

static void test_invalid(void) {
    static const char *bad[] = {
        "", /* placeholder: empty input is incomplete, checked below */
        "-5\r\nhello\r\n0\r\n\r\n",
        "+5\r\nhello\r\n0\r\n\r\n",
        " 5\r\nhello\r\n0\r\n\r\n",
        "5 \r\nhello\r\n0\r\n\r\n",
        "5\t\r\nhello\r\n0\r\n\r\n",
        "0x5\r\nhello\r\n0\r\n\r\n",
        "5g\r\nhello\r\n0\r\n\r\n",
        ";a\r\nhello\r\n0\r\n\r\n",
        "\r\nhello\r\n0\r\n\r\n",
        "5\nhello\r\n0\r\n\r\n",
        "5\r\rhello\r\n0\r\n\r\n",
        "5 ; a\x01\r\nhello\r\n0\r\n\r\n",
        "5;a\nhello\r\n0\r\n\r\n",
        "5;a\x7f\r\nhello\r\n0\r\n\r\n",
        "5 x\r\nhello\r\n0\r\n\r\n",
        "5\r\nhelloX\r\n0\r\n\r\n",
        "5\r\nhello\n0\r\n\r\n",
        "5\r\nhello\r\r0\r\n\r\n",
        "5\r\nhello0\r\n\r\n",
        "0\r\n\n",
        "0\r\n\rX",
        "0\n\r\n",
        "0\r\nX: 1\r\n folded\r\n\r\n",
        "0\r\nX: 1\r\n\tfolded\r\n\r\n",
        "0\r\nX : 1\r\n\r\n",
        "0\r\n: 1\r\n\r\n",
        "0\r\nNoColon\r\n\r\n",
        "0\r\nX: 1\n\r\n",
        "0\r\nX: a\rb\r\n\r\n",
        "0\r\nX: a\r\n\r\r",
    };
    for (size_t i = 1; i < sizeof bad / sizeof bad[0]; i++) {
        int r = dec(bad[i], strlen(bad[i]), NOLIM);
        if (r != -400) fprintf(stderr, "case %zu: \"%s\"\n", i, bad[i]);
        CHECK_INT(r, -400);
    }
    static const char nul_size[] = "5\0\r\nhello\r\n0\r\n\r\n";
    CHECK_INT(dec(S(nul_size), NOLIM), -400);
    static const char nul_trailer[] = "0\r\nX: a\0b\r\n\r\n";
    CHECK_INT(dec(S(nul_trailer), NOLIM), -400);
    CHECK_INT(dec("", 0, NOLIM), 0);
}

int main(void) {
    guard_init();
    test_valid();
    test_limits();
    test_set_limits();
    test_invalid();
    return check_done();
}
