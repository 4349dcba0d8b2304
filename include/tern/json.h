/* JSON in and out for handlers (RFC 8259).
 *
 * Reading: tern_json_body parses the request body into a tree that lives in
 * the request arena (freed with the request). The reader is strict: exactly
 * RFC 8259's grammar, UTF-8 only (no byte order mark, no overlong forms, no
 * encoded surrogates), no lone surrogate escapes, no control characters in
 * strings, no trailing commas, numbers that fit a double (1e400 is refused,
 * not made infinite); limits on nesting depth and input size. An error
 * tells what and at which byte offset.
 *
 *     tern_json_error err;
 *     const tern_json *doc = tern_json_body(ctx, &err);
 *     if (!doc) { tern_resp_text(ctx, 400, err.message); return; }
 *     int64_t qty;
 *     if (tern_json_int(tern_json_get(doc, "qty"), &qty) < 0) ...
 *
 * Writing: a streaming builder that appends to the response body, escapes
 * strings, refuses invalid UTF-8 and non-finite numbers, and keeps the
 * structure right (a key only inside an object, commas placed for you).
 *
 *     tern_jw *w = tern_json_writer(ctx);   // also sets Content-Type
 *     tern_jw_object_begin(w);
 *     tern_jw_key(w, "message");
 *     tern_jw_string(w, "Hello, World!");
 *     tern_jw_object_end(w);
 */
#ifndef TERN_JSON_H
#define TERN_JSON_H

#include <stddef.h>
#include <stdint.h>

#include <tern/api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tern_ctx tern_ctx;

typedef enum tern_json_type {
    TERN_JSON_NULL,
    TERN_JSON_BOOL,
    TERN_JSON_NUMBER,
    TERN_JSON_STRING,
    TERN_JSON_ARRAY,
    TERN_JSON_OBJECT,
} tern_json_type;

/* A node of a parsed document (opaque: use the accessors). */
typedef struct tern_json tern_json;

/* Where and why parsing failed. */
typedef struct tern_json_error {
    int code;         /* a negative errno: -EINVAL (syntax), -EILSEQ (bad UTF-8
                         or escape), -ERANGE (number out of range), -E2BIG
                         (too deep or too large), -ENOMEM, -ENODATA (empty) */
    size_t offset;    /* byte offset into the input */
    char message[96]; /* "offset 12: trailing comma", NUL-terminated */
} tern_json_error;

typedef struct tern_json_limits {
    unsigned max_depth; /* nested arrays/objects, default 128 */
    size_t max_bytes;   /* input size, default 16 MiB */
} tern_json_limits;

/* Parses buf[0..len) into a tree in ctx's arena (strings are copied: the
 * tree does not point into buf). NULL on failure with *err filled (err may
 * be NULL). lim NULL: the defaults. */
TERN_API const tern_json *tern_json_parse(tern_ctx *ctx, const char *buf, size_t len,
                                          const tern_json_limits *lim, tern_json_error *err);
/* The request body (read whole: not on a stream_body route) parsed with
 * the default limits. */
TERN_API const tern_json *tern_json_body(tern_ctx *ctx, tern_json_error *err);

/* Accessors; every one takes NULL (absent) and answers "absent/wrong type". */
TERN_API tern_json_type tern_json_typeof(const tern_json *v); /* TERN_JSON_NULL for NULL */
TERN_API int tern_json_is_null(const tern_json *v);           /* 1 for a JSON null only */
/* Object member by name (the first when a name repeats), NULL when absent
 * or v is no object. */
TERN_API const tern_json *tern_json_get(const tern_json *v, const char *name);
/* Array element or object member value by position, NULL past the end. */
TERN_API const tern_json *tern_json_at(const tern_json *v, size_t i);
/* An object member's name by position (NULL past the end), for iterating. */
TERN_API const char *tern_json_key_at(const tern_json *v, size_t i);
/* Elements of an array or members of an object; 0 otherwise. */
TERN_API size_t tern_json_len(const tern_json *v);
/* The decoded string (NUL-terminated; *len, if given, counts an embedded
 * \u0000 too), NULL when v is no string. */
TERN_API const char *tern_json_string(const tern_json *v, size_t *len);
/* 0, or -EINVAL (not a number / not a bool). */
TERN_API int tern_json_double(const tern_json *v, double *out);
/* 0, -EINVAL (not a number), -ERANGE (a fraction, an exponent that makes no
 * integer, or outside int64): the value is never silently truncated. */
TERN_API int tern_json_int(const tern_json *v, int64_t *out);
TERN_API int tern_json_bool(const tern_json *v, int *out);

/* ---- writer ---------------------------------------------------------------- */
typedef struct tern_jw tern_jw;

/* A writer appending to ctx's response body; sets Content-Type:
 * application/json. NULL on out of memory (the request then gets a 503). */
TERN_API tern_jw *tern_json_writer(tern_ctx *ctx);

/* Each call returns 0 or a negative errno, and the first error sticks
 * (later calls do nothing and return it): -EINVAL misplaced call (a value
 * where a key is due, end without begin), -EILSEQ invalid UTF-8, -EDOM NaN
 * or infinity, -E2BIG nesting deeper than 64, -ENOMEM. */
TERN_API int tern_jw_object_begin(tern_jw *w);
TERN_API int tern_jw_object_end(tern_jw *w);
TERN_API int tern_jw_array_begin(tern_jw *w);
TERN_API int tern_jw_array_end(tern_jw *w);
TERN_API int tern_jw_key(tern_jw *w, const char *key);
TERN_API int tern_jw_key_n(tern_jw *w, const char *key, size_t len);
TERN_API int tern_jw_string(tern_jw *w, const char *s);
TERN_API int tern_jw_string_n(tern_jw *w, const char *s, size_t len);
TERN_API int tern_jw_int(tern_jw *w, int64_t v);
/* Shortest text that reads back as the same double (%.15g, %.16g or %.17g). */
TERN_API int tern_jw_double(tern_jw *w, double v);
TERN_API int tern_jw_bool(tern_jw *w, int v);
TERN_API int tern_jw_null(tern_jw *w);
/* 0 when a complete value was written; the sticky error; or -EINPROGRESS
 * while containers are open or nothing was written yet. */
TERN_API int tern_jw_status(const tern_jw *w);

#ifdef __cplusplus
}
#endif

#endif
