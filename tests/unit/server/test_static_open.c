/* Confinement of tern_static's opens: a file under the root opens; "..",
 * absolute paths and symlinks leaving the root never do, both with
 * openat2(RESOLVE_BENEATH) and with the fallback for kernels without it
 * (openat, then the real path checked against the root's). Also the
 * request-path filter for encoded separators. */
#include "check.h"
#include "server/static.c"

static char tmpl[] = "/tmp/tern-static-open-XXXXXX";

static void put(const char *rel, const char *text) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpl, rel);
    FILE *f = fopen(p, "w");
    fputs(text, f);
    fclose(f);
}

static void link_at(const char *target, const char *rel) {
    char p[512];
    snprintf(p, sizeof p, "%s/%s", tmpl, rel);
    CHECK(symlink(target, p) == 0);
}

static int opens(const tern__static_mount *m, const char *rel) {
    int fd = open_beneath(m, rel);
    if (fd >= 0) close(fd);
    return fd >= 0;
}

int main(void) {
    CHECK(mkdtemp(tmpl) != NULL);
    char p[512];
    snprintf(p, sizeof p, "%s/root", tmpl);
    mkdir(p, 0755);
    snprintf(p, sizeof p, "%s/root/sub", tmpl);
    mkdir(p, 0755);
    put("outside.txt", "secret");
    put("root/a.txt", "a");
    put("root/sub/b.txt", "b");
    link_at("a.txt", "root/in-link.txt");
    link_at("../outside.txt", "root/out-link.txt");
    snprintf(p, sizeof p, "%s/outside.txt", tmpl);
    link_at(p, "root/out-abs-link.txt");
    link_at("..", "root/out-dir");

    /* the mount's root is tmpl/root; outside.txt lies beside it */
    tern__static_mount m = {0};
    snprintf(p, sizeof p, "%s/root", tmpl);
    m.root_fd = open(p, O_PATH | O_DIRECTORY | O_CLOEXEC);
    m.root_real = realpath(p, NULL);
    CHECK(m.root_fd >= 0 && m.root_real);
    CHECK(opens(&m, "a.txt"));
    CHECK(opens(&m, "sub/b.txt"));
    CHECK(opens(&m, "in-link.txt"));
    CHECK(opens(&m, "sub/../a.txt"));
    for (int pass = 0; pass < 2; pass++) {
        openat2_missing = pass; /* 1: the pre-5.6 fallback */
        CHECK(opens(&m, "a.txt"));
        CHECK(opens(&m, "in-link.txt"));
        CHECK(!opens(&m, "../outside.txt"));
        CHECK(!opens(&m, "sub/../../outside.txt"));
        CHECK(!opens(&m, "out-link.txt"));
        CHECK(!opens(&m, "out-abs-link.txt"));
        CHECK(!opens(&m, "out-dir/outside.txt"));
        CHECK(!opens(&m, "/etc/passwd"));
        CHECK(!opens(&m, "missing.txt"));
    }

    tern_str t1 = {"/static/a%2fb", 13}, t2 = {"/static/a%5Cb", 13}, t3 = {"/static/a%00", 12},
             t4 = {"/static/a?x=%2f", 15}, t5 = {"/static/a%2", 11};
    CHECK(raw_has_encoded_separator(t1));
    CHECK(raw_has_encoded_separator(t2));
    CHECK(raw_has_encoded_separator(t3));
    CHECK(!raw_has_encoded_separator(t4)); /* the query is not the path */
    CHECK(!raw_has_encoded_separator(t5));

    close(m.root_fd);
    free(m.root_real);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", tmpl);
    CHECK(system(cmd) == 0);
    return check_done();
}
