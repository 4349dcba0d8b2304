/* Forms: application/x-www-form-urlencoded bodies, decoded like the query. */
#ifndef TERN_FORM_H
#define TERN_FORM_H

#include <stddef.h>

#include <tern/api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tern_ctx tern_ctx;

/* Decoded form field (first occurrence), NULL when absent or malformed. */
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

#ifdef __cplusplus
}
#endif

#endif
