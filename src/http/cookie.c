/* Cookies (RFC 6265): reading the Cookie header, building Set-Cookie, and
 * signed values (HMAC-SHA256, OpenSSL's libcrypto). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "http/ctx.h"
#include "tern.h"

/* cookie-octet (RFC 6265 §4.1.1): %x21 / %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E */
static int cookie_octet(unsigned char c) {
    return c >= 0x21 && c <= 0x7e && c != '"' && c != ',' && c != ';' && c != '\\';
}

static int value_valid(const char *v, size_t n) {
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        v++;
        n -= 2;
    }
    for (size_t i = 0; i < n; i++)
        if (!cookie_octet((unsigned char)v[i])) return 0;
    return 1;
}

/* av-octet for Path and Domain: any CHAR except CTLs or ';' (§4.1.1). */
static int attr_valid(const char *v) {
    for (; *v; v++)
        if ((unsigned char)*v < 0x20 || (unsigned char)*v >= 0x7f || *v == ';') return 0;
    return 1;
}

/* One Cookie header value: "a=1; b=2". The server-side reading of §5.4's
 * serialisation (and of §5.2's lenience: pairs split at ';', OWS trimmed). */
static const char *find_in(const char *h, const char *name, size_t nlen, size_t *vlen) {
    const char *p = h;
    while (*p) {
        while (*p == ' ' || *p == '\t') p++;
        const char *pair = p;
        while (*p && *p != ';') p++;
        const char *pend = p;
        if (*p) p++;
        const char *eq = memchr(pair, '=', (size_t)(pend - pair));
        if (!eq) continue;
        const char *kend = eq;
        while (kend > pair && (kend[-1] == ' ' || kend[-1] == '\t')) kend--;
        if ((size_t)(kend - pair) != nlen || memcmp(pair, name, nlen) != 0) continue;
        const char *v = eq + 1;
        while (v < pend && (*v == ' ' || *v == '\t')) v++;
        while (pend > v && (pend[-1] == ' ' || pend[-1] == '\t')) pend--;
        if (pend - v >= 2 && *v == '"' && pend[-1] == '"') {
            v++;
            pend--;
        }
        *vlen = (size_t)(pend - v);
        return v;
    }
    return NULL;
}

const char *tern_req_cookie(tern_ctx *ctx, const char *name) {
    size_t nlen = strlen(name);
    tern_str hn, hv;
    for (size_t i = 0; tern_req_header_at(ctx, i, &hn, &hv) == 0; i++) {
        if (hn.len != 6 || strncasecmp(hn.ptr, "Cookie", 6) != 0) continue;
        size_t vlen;
        const char *v = find_in(hv.ptr, name, nlen, &vlen); /* header values are NUL-terminated */
        if (!v) continue;
        char *out = tern_alloc(ctx, vlen + 1);
        if (!out) return NULL;
        memcpy(out, v, vlen);
        out[vlen] = 0;
        return out;
    }
    return NULL;
}

static size_t attrs(char *o, size_t room, const tern_cookie_opts *opts) {
    size_t n = 0;
#define ADD(...) n += (size_t)snprintf(o ? o + n : NULL, o && n < room ? room - n : 0, __VA_ARGS__)
    if (opts->path) ADD("; Path=%s", opts->path);
    if (opts->domain) ADD("; Domain=%s", opts->domain);
    if (opts->has_max_age)
        ADD("; Max-Age=%lld", (long long)(opts->max_age > 0 ? opts->max_age : 0));
    if (opts->expires) {
        /* IMF-fixdate (RFC 6265 §4.1.1 sane-cookie-date) */
        char date[40];
        struct tm tm;
        time_t t = (time_t)opts->expires;
        gmtime_r(&t, &tm);
        strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", &tm);
        ADD("; Expires=%s", date);
    }
    if (opts->secure) ADD("; Secure");
    if (opts->http_only) ADD("; HttpOnly");
    static const char *const ss[] = {NULL, "Lax", "Strict", "None"};
    if (opts->same_site > TERN_SAMESITE_UNSET && opts->same_site <= TERN_SAMESITE_NONE)
        ADD("; SameSite=%s", ss[opts->same_site]);
#undef ADD
    return n;
}

int tern_resp_set_cookie(tern_ctx *ctx, const char *name, const char *value,
                         const tern_cookie_opts *opts) {
    static const tern_cookie_opts none = {0};
    if (!opts) opts = &none;
    size_t nlen = strlen(name), vlen = strlen(value);
    if (!tern__header_name_valid(name, nlen) || !value_valid(value, vlen)) return -EINVAL;
    if ((opts->path && !attr_valid(opts->path)) || (opts->domain && !attr_valid(opts->domain)))
        return -EINVAL;
    size_t extra = attrs(NULL, 0, opts);
    size_t size = nlen + 1 + vlen + extra + 1;
    char *h = tern_alloc(ctx, size);
    if (!h) return -ENOMEM;
    memcpy(h, name, nlen);
    h[nlen] = '=';
    memcpy(h + nlen + 1, value, vlen);
    h[nlen + 1 + vlen] = 0; /* attrs writes nothing when there are none */
    attrs(h + nlen + 1 + vlen, extra + 1, opts);
    return tern_resp_add_header(ctx, "Set-Cookie", h);
}

/* ---- signed cookies -------------------------------------------------------- */

#define SIG_LEN 43 /* base64url of 32 bytes, unpadded */

static int sign(const tern_cookie_key *k, const char *name, const char *value, size_t vlen,
                char out[SIG_LEN + 1]) {
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned maclen = 0;
    /* the name is signed too: a value cannot be moved to another cookie */
    size_t nlen = strlen(name);
    unsigned char msg[512];
    if (nlen + 1 + vlen > sizeof msg) return -EINVAL;
    memcpy(msg, name, nlen);
    msg[nlen] = '=';
    memcpy(msg + nlen + 1, value, vlen);
    if (!HMAC(EVP_sha256(), k->secret, (int)k->len, msg, nlen + 1 + vlen, mac, &maclen) ||
        maclen != 32)
        return -EINVAL;
    static const char b64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    for (size_t i = 0; i < 32; i += 3) {
        unsigned v = (unsigned)mac[i] << 16 | (i + 1 < 32 ? (unsigned)mac[i + 1] << 8 : 0) |
                     (i + 2 < 32 ? mac[i + 2] : 0);
        out[o++] = b64[v >> 18 & 63];
        out[o++] = b64[v >> 12 & 63];
        if (i + 1 < 32) out[o++] = b64[v >> 6 & 63];
        if (i + 2 < 32) out[o++] = b64[v & 63];
    }
    out[o] = 0;
    return 0;
}

int tern_resp_set_signed_cookie(tern_ctx *ctx, const char *name, const char *value,
                                const tern_cookie_opts *opts, const tern_cookie_key *keys,
                                size_t nkeys) {
    if (!nkeys || !keys[0].secret || !keys[0].len) return -EINVAL;
    size_t vlen = strlen(value);
    if (!value_valid(value, vlen) || (vlen && value[0] == '"')) return -EINVAL;
    char sig[SIG_LEN + 1];
    if (sign(&keys[0], name, value, vlen, sig) < 0) return -EINVAL;
    char *signed_value = tern_sprintf(ctx, "%s.%s", value, sig);
    if (!signed_value) return -ENOMEM;
    return tern_resp_set_cookie(ctx, name, signed_value, opts);
}

const char *tern_req_signed_cookie(tern_ctx *ctx, const char *name, const tern_cookie_key *keys,
                                   size_t nkeys) {
    const char *v = tern_req_cookie(ctx, name);
    if (!v) return NULL;
    size_t n = strlen(v);
    if (n < SIG_LEN + 1 || v[n - SIG_LEN - 1] != '.') return NULL;
    size_t vlen = n - SIG_LEN - 1;
    for (size_t i = 0; i < nkeys; i++) {
        char sig[SIG_LEN + 1];
        if (!keys[i].secret || sign(&keys[i], name, v, vlen, sig) < 0) continue;
        if (CRYPTO_memcmp(sig, v + vlen + 1, SIG_LEN) == 0) {
            ((char *)v)[vlen] = 0; /* our arena copy */
            return v;
        }
    }
    return NULL;
}
