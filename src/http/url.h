/* Percent-decoding, path normalisation and query lookup (RFC 3986).
 *
 * Paths are decoded and normalised before routing, the way nginx does: %XX
 * decoded (a decoded NUL is refused), "." and ".." segments resolved
 * (RFC 3986 §5.2.4), and a ".." that would climb above "/" refused, so a
 * route can never be escaped with dot segments. Slashes are not merged.
 * Decoded "%2F" becomes '/' as in nginx. */
#ifndef TERN_HTTP_URL_H
#define TERN_HTTP_URL_H

#include <stddef.h>
#include <sys/types.h>

/* Decodes and normalises the path in[0..len) (must start with '/') into out,
 * which has room for len + 1 bytes; NUL-terminates. Returns the output
 * length (never more than len), or -1 for a bad %-escape, an encoded NUL, a
 * ".." above root, or a path not starting with '/'. Raw bytes other than '%'
 * are not checked (that is the request parser's job). out may not alias in. */
ssize_t tern__path_normalize(const char *in, size_t len, char *out);

/* Non-zero when the path needs tern__path_normalize (has '%' or a dot
 * segment); zero when it can be used as is. */
int tern__path_needs_normalize(const char *in, size_t len);

/* What decoding a query value found. */
typedef enum tern__query_status {
    TERN__QUERY_OK = 0,
    TERN__QUERY_ABSENT,     /* no such parameter (for lookups) */
    TERN__QUERY_BAD_ESCAPE, /* '%' not followed by two hex digits */
    TERN__QUERY_NUL,        /* an encoded NUL (%00): the value would be cut short as
                               a C string ("/q?a=1%00evil" is not "1") */
} tern__query_status;

/* Percent-decodes in[0..len) into out (room for len + 1), decoding '+' as
 * space when plus_is_space; NUL-terminates and sets *out_len on OK. Returns
 * OK, BAD_ESCAPE or NUL (never ABSENT). */
tern__query_status tern__query_decode(const char *in, size_t len, char *out, size_t *out_len,
                                      int plus_is_space);

/* tern__query_decode as a length: the output length, or -1 for a bad escape
 * or an encoded NUL (its callers want a C string, which a NUL would cut). */
ssize_t tern__url_decode(const char *in, size_t len, char *out, int plus_is_space);

/* Finds the first parameter `name` in query q[0..qlen) ("a=1&b=2"; keys
 * compared after decoding). Sets *val and *val_len to the raw (still encoded)
 * value and returns 1, or returns 0 when absent. A key without '=' has an
 * empty value. Keys are form-decoded before comparing ('+' is a space, %XX
 * a byte; a '%' not followed by two hex digits stands for itself) and the
 * name is taken literally, so "a%20b=1" and "a+b=1" match name "a b", and
 * "c%2B%2B=1" matches "c++". val and val_len may be NULL. */
int tern__query_find(const char *q, size_t qlen, const char *name, const char **val, size_t *val_len);

#endif
