/* Static files and response compression.
 *
 * tern_static serves the files under a folder on a path prefix:
 *
 *     tern_static(server, "/static/", "./public");
 *
 * GET and HEAD, bodies sent with sendfile(2) (read + write over TLS), Range
 * (one range: 206 with Content-Range; several: the whole file, 200;
 * unsatisfiable: 416), ETag and Last-Modified with If-None-Match,
 * If-Modified-Since (304) and If-Range, the MIME type from the extension,
 * index.html for a folder, precompressed "name.br" / "name.gz" siblings
 * chosen by Accept-Encoding (with Vary), Cache-Control. No directory
 * listings: a folder without index.html is 403. Nothing outside the folder
 * is ever served: "..", encoded slashes, NUL bytes and symlinks that leave
 * it are refused (404); symlinks that stay inside are followed.
 *
 * Response compression (tern_server_set_compression) applies to handler
 * responses, whole or streamed: gzip (zlib) or brotli, negotiated from
 * Accept-Encoding with q-values, for compressible types (text/any, JSON,
 * JavaScript, XML, SVG) above a size threshold; never for HEAD, 204, 304,
 * 206 or a body the handler already encoded (Content-Encoding set). */
#ifndef TERN_STATIC_H
#define TERN_STATIC_H

#include <stddef.h>

#include <tern/api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tern_server tern_server;

typedef struct tern_static_opts {
    const char *index; /* file served for a folder, default "index.html" */
    int max_age;       /* Cache-Control: max-age in seconds, default 3600;
                          -1 sends no Cache-Control */
    int precompressed; /* look for .br / .gz siblings, default 1 */
    int offload_open;  /* open and stat files on the offload pool
                          (tern_offload), default 0: see below */
} tern_static_opts;

/* Fills opts with the defaults above.
 *
 * offload_open: opening, stat'ing and closing a file whose inode and
 * folder entries are cached took 1.15 µs of CPU here (openat2), while the
 * trip through the offload pool added about 9 µs of CPU per request
 * (queue, thread wake-up, wake back); so opens run on the worker by
 * default. Files are opened O_NONBLOCK, so a FIFO planted in the folder
 * cannot hang the worker (it is then refused as not a regular file). On a
 * file system that can block for milliseconds (NFS, FUSE, a cold spinning
 * disk) every connection of the worker would wait: turn it on there. */
TERN_API void tern_static_opts_init(tern_static_opts *opts);

/* Serves the files under dir at prefix (which starts and ends with '/').
 * dir is opened now; returns 0, -EINVAL (bad prefix), -ENOTDIR / -ENOENT /
 * -EACCES (dir), -EEXIST (route taken), -EBUSY once the server runs, or
 * -ENOMEM. opts may be NULL for the defaults. */
TERN_API int tern_static(tern_server *s, const char *prefix, const char *dir);
TERN_API int tern_static_with(tern_server *s, const char *prefix, const char *dir,
                              const tern_static_opts *opts);

/* ---- compression ---------------------------------------------------------- */
enum tern_encoding_bits {
    TERN_ENCODING_GZIP = 1u << 0,
    TERN_ENCODING_BR = 1u << 1,
};

typedef struct tern_compression_opts {
    unsigned encodings; /* TERN_ENCODING_* offered, default both */
    int gzip_level;     /* zlib level 1-9, default 1 (as nginx): on a 10 KB
                           JSON body level 6 took 2-2.5x the CPU for an
                           output 3% smaller (1362 vs 1407 bytes) */
    int br_quality;     /* brotli quality 0-11, default 2: on a 10 KB JSON
                           body it took half the CPU of quality 4 and its
                           output was smaller (880 vs 905 bytes) */
    size_t min_size;    /* whole bodies smaller than this are sent as they
                           are, default 1024 */
} tern_compression_opts;

TERN_API void tern_compression_opts_init(tern_compression_opts *opts);
/* Turns response compression on for s (opts NULL: off, the default).
 * 0, -EINVAL (level out of range, no encoding) or -EBUSY once running. */
TERN_API int tern_server_set_compression(tern_server *s, const tern_compression_opts *opts);

#ifdef __cplusplus
}
#endif
#endif
