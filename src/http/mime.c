/* The extension table: what browsers need to render a site (text types
 * carry charset=utf-8 so nothing is sniffed), kept sorted for bsearch. */
#include "http/mime.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

typedef struct mime_entry {
    const char *ext, *type;
} mime_entry;

static const mime_entry table[] = {
    {"avif", "image/avif"},
    {"bin", "application/octet-stream"},
    {"css", "text/css; charset=utf-8"},
    {"csv", "text/csv; charset=utf-8"},
    {"gif", "image/gif"},
    {"gz", "application/gzip"},
    {"htm", "text/html; charset=utf-8"},
    {"html", "text/html; charset=utf-8"},
    {"ico", "image/x-icon"},
    {"jpeg", "image/jpeg"},
    {"jpg", "image/jpeg"},
    {"js", "text/javascript; charset=utf-8"},
    {"json", "application/json"},
    {"map", "application/json"},
    {"md", "text/markdown; charset=utf-8"},
    {"mjs", "text/javascript; charset=utf-8"},
    {"mp3", "audio/mpeg"},
    {"mp4", "video/mp4"},
    {"ogg", "audio/ogg"},
    {"otf", "font/otf"},
    {"pdf", "application/pdf"},
    {"png", "image/png"},
    {"svg", "image/svg+xml"},
    {"tar", "application/x-tar"},
    {"ttf", "font/ttf"},
    {"txt", "text/plain; charset=utf-8"},
    {"wasm", "application/wasm"},
    {"webm", "video/webm"},
    {"webmanifest", "application/manifest+json"},
    {"webp", "image/webp"},
    {"woff", "font/woff"},
    {"woff2", "font/woff2"},
    {"xml", "application/xml"},
    {"zip", "application/zip"},
};

static int compare(const void *key, const void *elem) {
    return strcasecmp(key, ((const mime_entry *)elem)->ext);
}

const char *tern__mime_type(const char *name, size_t len) {
    size_t i = len;
    while (i && name[i - 1] != '.' && name[i - 1] != '/') i--;
    if (!i || name[i - 1] != '.' || len - i == 0 || len - i > 15) return "application/octet-stream";
    char ext[16];
    memcpy(ext, name + i, len - i);
    ext[len - i] = 0;
    const mime_entry *e =
        bsearch(ext, table, sizeof table / sizeof table[0], sizeof table[0], compare);
    return e ? e->type : "application/octet-stream";
}
