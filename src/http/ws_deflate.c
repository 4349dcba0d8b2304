/* permessage-deflate: see ws_deflate.h. */
#include "http/ws_deflate.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

/* Compression level: the default (6) costs 2-3x the CPU of 1 for a few
 * percent on chat-like JSON; messages are small and latency matters. */
#define DEFLATE_LEVEL 1
/* 8 is zlib's default memLevel: 128 KiB of hash state beside the window */
#define DEFLATE_MEM_LEVEL 8

struct tern__ws_deflate {
    tern__ws_deflate_params p;
    z_stream def, inf;
    int def_ready, inf_ready;
    uint8_t *dbuf, *ibuf;
    size_t dcap, icap;
};

/* ---- negotiation ------------------------------------------------------------ */

static size_t trim(const char **s, size_t len) {
    while (len && (**s == ' ' || **s == '\t')) (*s)++, len--;
    while (len && ((*s)[len - 1] == ' ' || (*s)[len - 1] == '\t')) len--;
    return len;
}

static int is_name(const char *s, size_t len, const char *name) {
    return strlen(name) == len && strncasecmp(s, name, len) == 0;
}

/* One parameter of an offer: 0 accepted, -1 the offer is refused (§7.1:
 * unknown or duplicate parameters, values out of range). */
static int offer_param(const char *s, size_t len, tern__ws_deflate_params *p, unsigned *seen) {
    const char *eq = memchr(s, '=', len);
    size_t nlen = eq ? (size_t)(eq - s) : len;
    const char *name = s;
    nlen = trim(&name, nlen);
    int value = -1;
    if (eq) {
        const char *v = eq + 1;
        size_t vlen = trim(&v, len - (size_t)(v - s));
        if (vlen >= 2 && v[0] == '"' && v[vlen - 1] == '"') v++, vlen -= 2;
        if (vlen < 1 || vlen > 2) return -1;
        value = 0;
        for (size_t i = 0; i < vlen; i++) {
            if (v[i] < '0' || v[i] > '9') return -1;
            value = value * 10 + (v[i] - '0');
        }
    }
    static const char *const names[] = {"server_no_context_takeover", "client_no_context_takeover",
                                        "server_max_window_bits", "client_max_window_bits"};
    for (unsigned k = 0; k < 4; k++) {
        if (!is_name(name, nlen, names[k])) continue;
        if (*seen & (1u << k)) return -1;
        *seen |= 1u << k;
        if (k < 2) {
            if (eq) return -1;
            if (k == 0)
                p->server_no_context_takeover = 1;
            else
                p->client_no_context_takeover = 1;
            return 0;
        }
        if (k == 2) {
            /* a raw deflate window of 8 bits is refused by zlib: decline */
            if (value < 9 || value > 15) return -1;
            p->server_max_window_bits = value;
            return 0;
        }
        return (eq && (value < 8 || value > 15)) ? -1 : 0; /* we inflate any window */
    }
    return -1;
}

/* One offer ("permessage-deflate; a; b=1"): 1 acceptable. */
static int offer(const char *s, size_t len, tern__ws_deflate_params *p) {
    const char *semi = memchr(s, ';', len);
    const char *name = s;
    size_t nlen = trim(&name, semi ? (size_t)(semi - s) : len);
    if (!is_name(name, nlen, "permessage-deflate")) return 0;
    memset(p, 0, sizeof *p);
    p->server_max_window_bits = 15;
    unsigned seen = 0;
    while (semi) {
        const char *q = semi + 1;
        size_t rest = len - (size_t)(q - s);
        semi = memchr(q, ';', rest);
        size_t plen = semi ? (size_t)(semi - q) : rest;
        if (offer_param(q, plen, p, &seen) < 0) return 0;
    }
    return 1;
}

int tern__ws_deflate_negotiate(const char *offers, size_t len, int want_no_takeover,
                               tern__ws_deflate_params *p, char *resp, size_t resp_size) {
    size_t i = 0;
    while (i < len) {
        size_t s = i;
        int quoted = 0;
        while (i < len && (quoted || offers[i] != ',')) {
            if (offers[i] == '"') quoted = !quoted;
            i++;
        }
        if (offer(offers + s, i - s, p)) {
            if (want_no_takeover) p->server_no_context_takeover = 1;
            int n = snprintf(resp, resp_size, "permessage-deflate%s%s",
                             p->server_no_context_takeover ? "; server_no_context_takeover" : "",
                             p->client_no_context_takeover ? "; client_no_context_takeover" : "");
            if (p->server_max_window_bits < 15 && n > 0 && (size_t)n < resp_size)
                snprintf(resp + n, resp_size - (size_t)n, "; server_max_window_bits=%d",
                         p->server_max_window_bits);
            return 1;
        }
        i++;
    }
    return 0;
}

/* ---- messages --------------------------------------------------------------- */

tern__ws_deflate *tern__ws_deflate_new(const tern__ws_deflate_params *p) {
    tern__ws_deflate *d = calloc(1, sizeof *d);
    if (d) d->p = *p;
    return d;
}

void tern__ws_deflate_free(tern__ws_deflate *d) {
    if (!d) return;
    if (d->def_ready) deflateEnd(&d->def);
    if (d->inf_ready) inflateEnd(&d->inf);
    free(d->dbuf);
    free(d->ibuf);
    free(d);
}

static int grow(uint8_t **buf, size_t *cap, size_t need) {
    if (*cap >= need) return 0;
    size_t c = *cap ? *cap : 1024;
    while (c < need) c *= 2;
    uint8_t *b = realloc(*buf, c);
    if (!b) return -ENOMEM;
    *buf = b;
    *cap = c;
    return 0;
}

int tern__ws_deflate_message(tern__ws_deflate *d, const void *in, size_t len, const uint8_t **out,
                             size_t *out_len) {
    if (!d->def_ready) {
        memset(&d->def, 0, sizeof d->def);
        if (deflateInit2(&d->def, DEFLATE_LEVEL, Z_DEFLATED, -d->p.server_max_window_bits,
                         DEFLATE_MEM_LEVEL, Z_DEFAULT_STRATEGY) != Z_OK)
            return -ENOMEM;
        d->def_ready = 1;
    }
    size_t bound = deflateBound(&d->def, (uLong)len) + 16;
    if (grow(&d->dbuf, &d->dcap, bound) < 0) return -ENOMEM;
    d->def.next_in = (Bytef *)(uintptr_t)in;
    d->def.avail_in = (uInt)len;
    d->def.next_out = d->dbuf;
    d->def.avail_out = (uInt)d->dcap;
    /* a sync flush ends the message on a byte boundary with 00 00 ff ff,
     * which §7.2.1 has us strip */
    int r = deflate(&d->def, Z_SYNC_FLUSH);
    if (r != Z_OK || d->def.avail_in) return -ENOMEM;
    size_t n = d->dcap - d->def.avail_out;
    if (n >= 4 && memcmp(d->dbuf + n - 4, "\0\0\xff\xff", 4) == 0) n -= 4;
    if (n == 0) d->dbuf[n++] = 0; /* an empty message is one 0x00 (§7.2.3.6) */
    *out = d->dbuf;
    *out_len = n;
    if (d->p.server_no_context_takeover) {
        /* nothing carries over: give the 256 KiB of state back while idle */
        deflateEnd(&d->def);
        d->def_ready = 0;
    }
    return 0;
}

int tern__ws_inflate_message(tern__ws_deflate *d, const void *in, size_t len, size_t max,
                             const uint8_t **out, size_t *out_len) {
    if (!d->inf_ready) {
        memset(&d->inf, 0, sizeof d->inf);
        if (inflateInit2(&d->inf, -15) != Z_OK) return -ENOMEM;
        d->inf_ready = 1;
    }
    static const uint8_t tail[4] = {0, 0, 0xff, 0xff}; /* §7.2.2: appended before inflating */
    size_t n = 0;
    for (int part = 0; part < 2; part++) {
        d->inf.next_in = part ? (Bytef *)(uintptr_t)tail : (Bytef *)(uintptr_t)in;
        d->inf.avail_in = part ? 4 : (uInt)len;
        for (;;) {
            if (n == d->icap && grow(&d->ibuf, &d->icap, n + 4096) < 0) return -ENOMEM;
            d->inf.next_out = d->ibuf + n;
            d->inf.avail_out = (uInt)(d->icap - n);
            int r = inflate(&d->inf, Z_SYNC_FLUSH);
            n = d->icap - d->inf.avail_out;
            if (n > max) return -EMSGSIZE;
            if (r == Z_STREAM_END) {
                /* a final block: the next message starts a fresh stream */
                inflateReset(&d->inf);
                break;
            }
            if (r != Z_OK && r != Z_BUF_ERROR) return -EINVAL;
            /* done once the input is used up and the output was not full
             * (a full output may hide more the stream holds back) */
            if (d->inf.avail_out != 0 && (d->inf.avail_in == 0 || r == Z_BUF_ERROR)) break;
        }
    }
    *out = d->ibuf ? d->ibuf : (const uint8_t *)"";
    *out_len = n;
    if (d->p.client_no_context_takeover) {
        inflateEnd(&d->inf);
        d->inf_ready = 0;
    }
    return 0;
}
