/* Cookies (RFC 6265): the request's Cookie header, Set-Cookie, and signed
 * cookies (HMAC-SHA256 with key rotation). */
#ifndef TERN_COOKIE_H
#define TERN_COOKIE_H

#include <stddef.h>
#include <stdint.h>

#include <tern/api.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tern_ctx tern_ctx;

/* The value of cookie `name` from the request's Cookie header(s), the
 * first when it repeats, without the DQUOTEs a quoted value carries
 * (RFC 6265 §4.1.1, §5.4 as a server reads it); NULL when absent. Valid for
 * the request. */
TERN_API const char *tern_req_cookie(tern_ctx *ctx, const char *name);

typedef enum tern_same_site {
    TERN_SAMESITE_UNSET, /* no attribute */
    TERN_SAMESITE_LAX,
    TERN_SAMESITE_STRICT,
    TERN_SAMESITE_NONE, /* browsers require Secure with it: set it too */
} tern_same_site;

typedef struct tern_cookie_opts {
    const char *path;   /* Path=, NULL for none */
    const char *domain; /* Domain=, NULL for none */
    int64_t max_age;    /* Max-Age= seconds when has_max_age (0 or less
                           deletes the cookie) */
    int has_max_age;
    int64_t expires; /* Expires= (Unix seconds, IMF-fixdate), 0 for none */
    int secure;      /* Secure */
    int http_only;   /* HttpOnly */
    tern_same_site same_site;
} tern_cookie_opts;

/* Adds a Set-Cookie header. name must be a token and value cookie-octets
 * (RFC 6265 §4.1.1: no space, '"', ',', ';', '\\' or controls; a value in
 * DQUOTEs is taken as is); path and domain without ';' or controls.
 * 0, -EINVAL or -ENOMEM. opts may be NULL. */
TERN_API int tern_resp_set_cookie(tern_ctx *ctx, const char *name, const char *value,
                                  const tern_cookie_opts *opts);

/* Signing keys, newest first: a cookie is signed with keys[0] and accepted
 * when any key verifies it, so a key is rotated out by putting a new one in
 * front and dropping the old one once its cookies have expired. Keys should
 * be 32 random bytes. */
typedef struct tern_cookie_key {
    const void *secret;
    size_t len;
} tern_cookie_key;

/* Sets cookie name = value "." base64url(HMAC-SHA256(keys[0], name "=" value)).
 * value must be cookie-octets. 0, -EINVAL or -ENOMEM. */
TERN_API int tern_resp_set_signed_cookie(tern_ctx *ctx, const char *name, const char *value,
                                         const tern_cookie_opts *opts, const tern_cookie_key *keys,
                                         size_t nkeys);
/* The value of a signed cookie whose signature one of the keys verifies
 * (compared in constant time); NULL when absent, unsigned or forged. */
TERN_API const char *tern_req_signed_cookie(tern_ctx *ctx, const char *name,
                                            const tern_cookie_key *keys, size_t nkeys);

#ifdef __cplusplus
}
#endif

#endif
