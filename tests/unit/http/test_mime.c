/* Media types from file name extensions. */
#include "check.h"
#include "http/mime.c"

static const char *t(const char *name) { return tern__mime_type(name, strlen(name)); }

int main(void) {
    /* the table must stay sorted for bsearch */
    for (size_t i = 1; i < sizeof table / sizeof table[0]; i++) CHECK(strcasecmp(table[i - 1].ext, table[i].ext) < 0);
    CHECK_STR(t("index.html"), "text/html; charset=utf-8");
    CHECK_STR(t("INDEX.HTM"), "text/html; charset=utf-8");
    CHECK_STR(t("a/b/site.css"), "text/css; charset=utf-8");
    CHECK_STR(t("app.js"), "text/javascript; charset=utf-8");
    CHECK_STR(t("data.json"), "application/json");
    CHECK_STR(t("logo.svg"), "image/svg+xml");
    CHECK_STR(t("photo.JPG"), "image/jpeg");
    CHECK_STR(t("font.woff2"), "font/woff2");
    CHECK_STR(t("site.webmanifest"), "application/manifest+json");
    CHECK_STR(t("archive.tar.gz"), "application/gzip");
    CHECK_STR(t("README"), "application/octet-stream");
    CHECK_STR(t("dir.d/README"), "application/octet-stream"); /* a dot in a folder name is no extension */
    CHECK_STR(t("trailing."), "application/octet-stream");
    CHECK_STR(t(".hidden"), "application/octet-stream");
    CHECK_STR(t("x.unknownextension"), "application/octet-stream");
    CHECK_STR(t("x.averyveryverylongextension"), "application/octet-stream");
    CHECK_STR(t(""), "application/octet-stream");
    return check_done();
}
