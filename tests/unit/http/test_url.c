/* URL helpers: path normalisation (RFC 3986 §5.2.4 plus refusal of ".." above
 * root), percent-decoding and query lookup. Every input is also run flush
 * against an unreadable page, so a one-byte over-read crashes here. */
#include "check.h"
#include "http/url.c"

#include <sys/mman.h>
#include <unistd.h>

/* Copies s[0..len) to the very end of a readable page followed by a
 * PROT_NONE page and returns it. */
static char *guard_page;
static size_t page_size;
static const char *flush(const char *s, size_t len) {
    if (!guard_page) {
        page_size = (size_t)sysconf(_SC_PAGESIZE);
        guard_page =
            mmap(NULL, 2 * page_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (guard_page == MAP_FAILED || mprotect(guard_page + page_size, page_size, PROT_NONE)) {
            perror("guard page");
            _exit(2);
        }
    }
    memcpy(guard_page + page_size - len, s, len);
    return guard_page + page_size - len;
}

#define BAD NULL

static const struct {
    const char *in, *out; /* out == BAD: refused */
} norm_cases[] = {
    {"/", "/"},
    {"/a", "/a"},
    {"/a/", "/a/"},
    {"//", "//"},
    {"/a//b", "/a//b"}, /* slashes not merged */
    {"/a/./b/../c", "/a/c"},
    {"/a/b/c/./../../g", "/a/g"},      /* RFC 3986 §5.2.4 example */
    {"/mid/content=5/../6", "/mid/6"}, /* RFC 3986 §5.2.4 example */
    /* RFC 3986 §5.4.1 / §5.4.2 dot-segment references merged with the base
     * path "/b/c/d;p" (merged path = "/b/c/" + reference, §5.2.3) */
    {"/b/c/../g", "/b/g"},
    {"/b/c/./g", "/b/c/g"},
    {"/b/c/.", "/b/c/"},
    {"/b/c/./", "/b/c/"},
    {"/b/c/..", "/b/"},
    {"/b/c/../", "/b/"},
    {"/b/c/../..", "/"},
    {"/b/c/../../", "/"},
    {"/b/c/../../g", "/g"},
    {"/b/c/../../../g", BAD},    /* RFC clamps to "/g"; tern refuses */
    {"/b/c/../../../../g", BAD}, /* RFC clamps to "/g"; tern refuses */
    {"/./g", "/g"},
    {"/../g", BAD}, /* RFC clamps to "/g" */
    {"/b/c/g.", "/b/c/g."},
    {"/b/c/.g", "/b/c/.g"},
    {"/b/c/g..", "/b/c/g.."},
    {"/b/c/..g", "/b/c/..g"},
    {"/b/c/./../g", "/b/g"},
    {"/b/c/./g/.", "/b/c/g/"},
    {"/b/c/g/./h", "/b/c/g/h"},
    {"/b/c/g/../h", "/b/c/h"},
    {"/b/c/g;x=1/./y", "/b/c/g;x=1/y"},
    {"/b/c/g;x=1/../y", "/b/c/y"},
    /* trailing and lone dot segments */
    {"/.", "/"},
    {"/./", "/"},
    {"/a/.", "/a/"},
    {"/a/./", "/a/"},
    {"/a/..", "/"},
    {"/a/../", "/"},
    {"/..", BAD},
    {"/../", BAD},
    {"/../x", BAD},
    {"/a/../../x", BAD},
    {"/a/b/../../..", BAD},
    {"/a//../b", "/a/b"}, /* ".." removes the empty segment */
    {"/a/...", "/a/..."},
    {"/.well-known/x", "/.well-known/x"},
    /* percent-decoding, then dot segments of the decoded text (nginx order) */
    {"/a%2Fb", "/a/b"},
    {"/a%2fb", "/a/b"},
    {"/%41%7e", "/A~"},
    {"/caf%C3%A9", "/caf\xc3\xa9"},
    {"/%25", "/%"},
    {"/%252e%252e/x", "/%2e%2e/x"}, /* one level of decoding only */
    {"/a/%2e/b", "/a/b"},
    {"/a/%2e%2E/b", "/b"},
    {"/a/.%2e", "/"},
    {"/%2e%2e/x", BAD},
    {"/a%2F..%2F..%2Fx", BAD},
    {"/a%2f..%2fb", "/b"},
    {"/%2e", "/"},
    {"/%00", BAD},
    {"/a%00b", BAD},
    {"/%zz", BAD},
    {"/%4", BAD},
    {"/%", BAD},
    {"/a%g1", BAD},
    {"/a%1g", BAD},
    {"", BAD},
    {"a/b", BAD},
};

static void test_normalize(void) {
    char out[256];

    for (size_t i = 0; i < sizeof norm_cases / sizeof norm_cases[0]; i++) {
        const char *in = norm_cases[i].in, *want = norm_cases[i].out;
        size_t len = strlen(in);
        ssize_t n;

        memset(out, 'X', sizeof out);
        n = tern__path_normalize(flush(in, len), len, out);
        if (!want) {
            if (n != -1) fprintf(stderr, "case %s\n", in);
            CHECK_INT(n, -1);
            continue;
        }
        if (n < 0 || strcmp(out, want) != 0) fprintf(stderr, "case %s\n", in);
        CHECK_INT(n, strlen(want));
        CHECK(n >= 0 && out[n] == '\0' && (size_t)n <= len);
        CHECK_STR(out, want);
        /* a path that needs no normalising must come out unchanged */
        if (!tern__path_needs_normalize(in, len)) CHECK_STR(out, in);
    }
}

static const struct {
    const char *in;
    int want;
} needs_cases[] = {
    {"/", 0},    {"/a/b", 0}, {"/app.js", 0},  {"/.well-known", 0}, {"/...", 0},   {"/a..b", 0},
    {"/a./", 0}, {"/a..", 0}, {"/a/.b", 0},    {"/..a", 0},         {"//", 0},     {"/.", 1},
    {"/..", 1},  {"/./a", 1}, {"/a/../b", 1},  {"/a/..", 1},        {"/a/.", 1},   {"/a/./", 1},
    {"/%41", 1}, {"/a%", 1},  {"/x.y/../", 1}, {"/.../..", 1},      {"/a%2Fb", 1},
};

static void test_needs_normalize(void) {
    for (size_t i = 0; i < sizeof needs_cases / sizeof needs_cases[0]; i++) {
        const char *in = needs_cases[i].in;
        size_t len = strlen(in);
        int got = tern__path_needs_normalize(flush(in, len), len) != 0;
        if (got != needs_cases[i].want) fprintf(stderr, "case %s\n", in);
        CHECK_INT(got, needs_cases[i].want);
    }
    CHECK_INT(tern__path_needs_normalize("", 0), 0);
}

static void test_url_decode(void) {
    static const struct {
        const char *in;
        int plus;
        const char *out; /* NULL: bad escape */
        size_t out_len;
    } cases[] = {
        {"", 0, "", 0},
        {"abc", 0, "abc", 3},
        {"a%20b", 0, "a b", 3},
        {"a+b", 1, "a b", 3},
        {"a+b", 0, "a+b", 3},
        {"%2B+", 1, "+ ", 2}, /* an encoded '+' stays a '+' */
        {"%41%4a%4A", 0, "AJJ", 3},
        {"%e2%82%AC", 0, "\xe2\x82\xac", 3},
        {"%00x", 0, NULL, 0}, /* an encoded NUL would cut the C string short */
        {"1%00evil", 1, NULL, 0},
        {"%25%32%35", 0, "%25", 3},
        {"%", 0, NULL, 0},
        {"%4", 0, NULL, 0},
        {"a%4", 1, NULL, 0},
        {"%g0", 0, NULL, 0},
        {"%0g", 0, NULL, 0},
        {"%%41", 0, NULL, 0},
    };
    char out[64];

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t len = strlen(cases[i].in);
        ssize_t n = tern__url_decode(flush(cases[i].in, len), len, out, cases[i].plus);
        if (!cases[i].out) {
            CHECK_INT(n, -1);
            continue;
        }
        CHECK_INT(n, cases[i].out_len);
        if (n >= 0) {
            CHECK(memcmp(out, cases[i].out, (size_t)n) == 0);
            CHECK_INT(out[n], 0);
        }
    }
}

#define S(lit) lit, sizeof(lit) - 1

/* The status tells a bad escape and an encoded NUL apart. */
static void test_query_decode_status(void) {
    char out[64];
    size_t n = 99;
    CHECK_INT(tern__query_decode(S("a+b%21"), out, &n, 1), TERN__QUERY_OK);
    CHECK_INT(n, 4);
    CHECK_STR(out, "a b!");
    CHECK_INT(tern__query_decode(S(""), out, &n, 1), TERN__QUERY_OK);
    CHECK_INT(n, 0);
    CHECK_INT(tern__query_decode(S("1%00evil"), out, &n, 1), TERN__QUERY_NUL);
    CHECK_INT(tern__query_decode(S("%zz"), out, &n, 1), TERN__QUERY_BAD_ESCAPE);
    CHECK_INT(tern__query_decode(S("ab%2"), out, &n, 1), TERN__QUERY_BAD_ESCAPE);
    /* left to right: whichever comes first */
    CHECK_INT(tern__query_decode(S("%00%zz"), out, &n, 1), TERN__QUERY_NUL);
    CHECK_INT(tern__query_decode(S("%zz%00"), out, &n, 1), TERN__QUERY_BAD_ESCAPE);
}

static void test_query_find(void) {
    static const struct {
        const char *q, *name, *val; /* val NULL: absent */
    } cases[] = {
        {"a=1&b=2", "a", "1"},
        {"a=1&b=2", "b", "2"},
        {"a=1&b=2", "c", NULL},
        {"", "a", NULL},
        {"", "", NULL},
        {"a=1&&b=2&", "", NULL}, /* empty parameters have no key to match */
        {"x=1&x=2", "x", "1"},   /* first wins */
        {"flag&x=1", "flag", ""},
        {"x=1&flag", "flag", ""},
        {"a=%20x+y", "a", "%20x+y"}, /* value raw */
        {"a==b", "a", "=b"},
        {"&&a=1&", "a", "1"},
        {"ab=1&a=2", "a", "2"}, /* no prefix match */
        {"a=1", "ab", NULL},
        {"A=1", "a", NULL}, /* case-sensitive */
        {"a%20b=1", "a b", "1"},
        {"a+b=1", "a b", "1"},
        {"a%20b=1", "a+b", NULL},   /* the name is literal: '+' is a plus */
        {"a%20b=1", "a%20b", NULL},
        {"c%2B%2B=1", "c++", "1"},
        {"%61=1", "a", "1"},
        {"a%3D=1", "a=", "1"}, /* an encoded '=' is part of the key */
        {"a%26b=1", "a&b", "1"},
        {"%zz=1", "%zz", "1"}, /* malformed escapes compare literally */
        {"a%=1&b=2", "a%", "1"},
        {"a%2=1", "a%2", "1"},
        {"=v", "", "v"},
        {"k=", "k", ""},
        {"a=1&b", "b", ""},
    };

    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        size_t qlen = strlen(cases[i].q);
        const char *q = flush(cases[i].q, qlen), *val = NULL;
        size_t val_len = 99;
        int found = tern__query_find(q, qlen, cases[i].name, &val, &val_len);

        if (found != (cases[i].val != NULL))
            fprintf(stderr, "case q=%s name=%s\n", cases[i].q, cases[i].name);
        CHECK_INT(found, cases[i].val != NULL);
        if (found && cases[i].val) {
            CHECK(val >= q && val + val_len <= q + qlen);
            CHECK_MEM(val, val_len, cases[i].val);
        }
    }
    CHECK_INT(tern__query_find("a=1", 3, "a", NULL, NULL), 1);
}

int main(void) {
    test_normalize();
    test_needs_normalize();
    test_url_decode();
    test_query_decode_status();
    test_query_find();
    return check_done();
}
