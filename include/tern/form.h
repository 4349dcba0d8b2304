/* Forms: application/x-www-form-urlencoded bodies, decoded like the query. */
#ifndef TERN_FORM_H
#define TERN_FORM_H

#include <stddef.h>
#include <stdint.h>

#include <tern/api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tern_ctx tern_ctx;

/* Decoded form field (first occurrence), NULL when absent or malformed.
 * The form is the body read whole (tern_req_body): not on a stream_body
 * route. */
TERN_API const char *tern_form(tern_ctx *ctx, const char *name);
/* The same with a reason, like tern_req_query_get: 0 with *value set
 * (decoded, '+' as space, NUL-terminated, valid for the request), -ENOENT
 * when absent, -EILSEQ when malformed (bad %-escape, encoded NUL),
 * -EMEDIUMTYPE when the body is not application/x-www-form-urlencoded,
 * -ENOMEM. */
TERN_API int tern_form_get(tern_ctx *ctx, const char *name, const char **value);
/* The i-th field in body order, decoded: 0, -ENOENT past the end, or the
 * errors above. For iterating over every field. */
TERN_API int tern_form_at(tern_ctx *ctx, size_t i, const char **name, const char **value);

/* ---- multipart/form-data (RFC 7578) -------------------------------------
 * Parsed as the body streams in (tern_req_body_read: on a route with
 * tern_route_opts.stream_body the body is never held whole): fields are
 * kept in memory, file parts too until they pass file_threshold, then in a
 * temporary file. The client's filename is data, never a path: only its
 * last segment is kept, with '/', '\\', control characters and leading
 * dots removed ("../../etc/passwd" becomes "passwd", ".." becomes NULL).
 * Temporary files are removed when the request ends unless the handler
 * moved them away with tern_part_keep. */
typedef struct tern_part {
    const char *name;         /* the form field name ("" when missing) */
    const char *filename;     /* sanitised basename; NULL for a plain field */
    const char *content_type; /* the part's Content-Type, or NULL */
    uint64_t size;            /* bytes of content */
    const char *data;         /* the content when held in memory (NUL-terminated), else NULL */
    const char *path;         /* the temporary file holding it, else NULL */
} tern_part;

typedef struct tern_multipart_limits {
    unsigned max_parts;     /* default 100 */
    size_t max_field;       /* a plain field's size, default 1 MiB */
    uint64_t max_total;     /* the whole body, default 1 GiB + 1 MiB */
    size_t file_threshold;  /* file parts larger go to a file, default 64 KiB */
    size_t max_part_header; /* a part's header block, default 8 KiB */
    const char *tmpdir;     /* for the files, default $TMPDIR or /tmp */
    /* Optional: sees every byte of every file part as it streams (hashing,
     * scanning) before it is stored. */
    void (*on_file_data)(const tern_part *part, const void *data, size_t len, void *arg);
    void *arg;
} tern_multipart_limits;

/* Reads and parses the whole multipart body. 0 with *parts (in the arena)
 * and *nparts set; -E2BIG past a limit (answer 413), -EBADMSG malformed
 * (400), -EMEDIUMTYPE not multipart/form-data or no boundary (415),
 * -ETIMEDOUT / -EPIPE / -ECANCELED from reading the body, -ENOMEM, or an
 * error of the temporary files (-ENOSPC...). lim NULL: the defaults. */
TERN_API int tern_multipart_read(tern_ctx *ctx, const tern_multipart_limits *lim, tern_part **parts,
                                 size_t *nparts);
/* Moves a part's temporary file to dest (rename: same filesystem), so it
 * outlives the request. 0 or -errno; -EINVAL for a part held in memory. */
TERN_API int tern_part_keep(tern_ctx *ctx, tern_part *part, const char *dest);

#ifdef __cplusplus
}
#endif

#endif
