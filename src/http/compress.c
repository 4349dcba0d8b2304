/* Response compression: see compress.h. */
#include "http/compress.h"

#include <brotli/encode.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#include "http/ctx.h"
#include "http/h1.h"

/* ---- Accept-Encoding ------------------------------------------------------ */

/* A qvalue (RFC 9110 §12.4.2) in thousandths, or -1 when malformed. */
static int parse_q(const char *p, size_t n) {
    if (n == 0 || (p[0] != '0' && p[0] != '1')) return -1;
    int q = (p[0] - '0') * 1000;
    if (n == 1) return q;
    if (p[1] != '.' || n > 5) return -1;
    int scale = 100;
    for (size_t i = 2; i < n; i++, scale /= 10) {
        if (p[i] < '0' || p[i] > '9') return -1;
        q += (p[i] - '0') * scale;
    }
    return q > 1000 ? -1 : q;
}

static int is_ows(char c) {
    return c == ' ' || c == '\t';
}

/* One "coding;q=x" element: its name and q (default 1000). */
static void parse_element(const char *p, size_t n, const char **name, size_t *name_len, int *q) {
    while (n && is_ows(*p)) p++, n--;
    size_t i = 0;
    while (i < n && p[i] != ';' && !is_ows(p[i])) i++;
    *name = p;
    *name_len = i;
    *q = 1000;
    /* parameters: offsets into p[0..n), so every length is plainly >= 0 */
    while (i < n && p[i] != ';') i++;
    while (i < n) {
        size_t s = i + 1;
        while (s < n && is_ows(p[s])) s++;
        size_t next = s;
        while (next < n && p[next] != ';') next++;
        size_t e = next;
        while (e > s && is_ows(p[e - 1])) e--;
        if (e - s >= 2 && (p[s] == 'q' || p[s] == 'Q') && p[s + 1] == '=') {
            int v = parse_q(p + s + 2, e - s - 2);
            *q = v < 0 ? 0 : v; /* a malformed q counts as "not acceptable" */
        }
        i = next;
    }
}

static int name_eq(const char *p, size_t n, const char *lit) {
    return strlen(lit) == n && strncasecmp(p, lit, n) == 0;
}

tern__encoding tern__accept_encoding(const char *header, unsigned offered) {
    if (!header) return TERN__ENC_IDENTITY;
    int q_gzip = -1, q_br = -1, q_identity = -1, q_star = -1;
    const char *p = header;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t n = comma ? (size_t)(comma - p) : strlen(p);
        const char *name;
        size_t len;
        int q;
        parse_element(p, n, &name, &len, &q);
        if (name_eq(name, len, "gzip") || name_eq(name, len, "x-gzip"))
            q_gzip = q;
        else if (name_eq(name, len, "br"))
            q_br = q;
        else if (name_eq(name, len, "identity"))
            q_identity = q;
        else if (name_eq(name, len, "*"))
            q_star = q;
        if (!comma) break;
        p = comma + 1;
    }
    if (q_gzip < 0) q_gzip = q_star < 0 ? 0 : q_star;
    if (q_br < 0) q_br = q_star < 0 ? 0 : q_star;
    /* identity is acceptable unless refused by name or by "*;q=0" */
    if (q_identity < 0) q_identity = q_star == 0 ? 0 : 1;
    if (!(offered & TERN__ENC_BIT(TERN__ENC_GZIP))) q_gzip = 0;
    if (!(offered & TERN__ENC_BIT(TERN__ENC_BR))) q_br = 0;
    /* identity as given by q: an explicit "identity;q=0.5, gzip;q=0.4" wins
     * over gzip; unnamed identity (1 thousandth) loses to any named coding */
    if (q_br > 0 && q_br >= q_gzip && q_br >= q_identity) return TERN__ENC_BR;
    if (q_gzip > 0 && q_gzip >= q_identity) return TERN__ENC_GZIP;
    return TERN__ENC_IDENTITY;
}

const char *tern__encoding_name(tern__encoding e) {
    switch (e) {
    case TERN__ENC_GZIP:
        return "gzip";
    case TERN__ENC_BR:
        return "br";
    default:
        return "identity";
    }
}

/* ---- what is worth compressing -------------------------------------------- */

static int prefix_ci(const char *p, size_t n, const char *lit) {
    size_t l = strlen(lit);
    return n >= l && strncasecmp(p, lit, l) == 0;
}

int tern__compressible_type(const char *type, size_t len) {
    size_t n = 0;
    while (n < len && type[n] != ';' && !is_ows(type[n])) n++;
    if (prefix_ci(type, n, "text/")) return 1;
    static const char *const exact[] = {"application/json",          "application/javascript",
                                        "application/xml",           "application/x-javascript",
                                        "application/manifest+json", "image/svg+xml",
                                        "application/wasm"};
    for (size_t i = 0; i < sizeof exact / sizeof exact[0]; i++)
        if (name_eq(type, n, exact[i])) return 1;
    return (n > 5 && strncasecmp(type + n - 5, "+json", 5) == 0) ||
           (n > 4 && strncasecmp(type + n - 4, "+xml", 4) == 0);
}

static const tern__resp_header *resp_header(const tern_ctx *ctx, const char *name) {
    size_t len = strlen(name);
    for (uint32_t i = 0; i < ctx->num_resp; i++)
        if (ctx->resp[i].name_len == len && strncasecmp(ctx->resp[i].name, name, len) == 0)
            return &ctx->resp[i];
    return NULL;
}

/* Vary gets Accept-Encoding once, beside what the handler put there. */
static void add_vary(tern_ctx *ctx) {
    const tern__resp_header *v = resp_header(ctx, "Vary");
    if (!v) {
        tern_resp_add_header(ctx, "Vary", "Accept-Encoding");
        return;
    }
    char *have = tern_alloc(ctx, v->value_len + 1);
    if (!have) return;
    memcpy(have, v->value, v->value_len);
    have[v->value_len] = 0;
    if (strcasestr(have, "accept-encoding") || strcmp(have, "*") == 0) return;
    char *both = tern_sprintf(ctx, "%s, Accept-Encoding", have);
    if (both) tern_resp_set_header(ctx, "Vary", both);
}

/* The coding to use for ctx's response, or IDENTITY; adds Vary when the
 * answer depends on Accept-Encoding (a compressible type). */
static tern__encoding choose(const tern__compress_config *cc, tern_ctx *ctx) {
    if (ctx->method == TERN_HEAD || !tern__status_has_body(ctx->status) || ctx->status == 206 ||
        ctx->resp_file)
        return TERN__ENC_IDENTITY;
    const tern__resp_header *ct = resp_header(ctx, "Content-Type");
    if (!ct || !tern__compressible_type(ct->value, ct->value_len)) return TERN__ENC_IDENTITY;
    if (resp_header(ctx, "Content-Encoding") || resp_header(ctx, "Content-Range"))
        return TERN__ENC_IDENTITY;
    add_vary(ctx);
    return tern__accept_encoding(tern_req_header(ctx, "Accept-Encoding"), cc->offered);
}

/* ---- one-shot ------------------------------------------------------------- */

size_t tern__compress_bound(tern__encoding e, size_t len) {
    if (e == TERN__ENC_BR) return BrotliEncoderMaxCompressedSize(len);
    /* zlib's deflateBound for the default memLevel plus the gzip wrapper */
    return len + (len >> 12) + (len >> 14) + (len >> 25) + 13 + 18;
}

/* One deflate state per thread, reset between bodies: deflateInit2 costs a
 * 256 KiB allocation and clearing it, more than compressing 10 KB. */
static _Thread_local z_stream tls_z;
static _Thread_local int tls_z_level; /* 0: not initialised */

static pthread_key_t tls_z_key;
static pthread_once_t tls_z_once = PTHREAD_ONCE_INIT;

/* At thread exit: the deflate state's 256 KiB go back. */
static void tls_z_free(void *z) {
    deflateEnd(z);
    tls_z_level = 0;
}
static void tls_z_key_make(void) {
    pthread_key_create(&tls_z_key, tls_z_free);
}

static long gzip_buffer(int level, const void *in, size_t len, void *out, size_t out_cap) {
    z_stream *z = &tls_z;
    if (len > UINT32_MAX / 2 || out_cap > UINT32_MAX) return -E2BIG;
    if (!tls_z_level) {
        pthread_once(&tls_z_once, tls_z_key_make);
        if (deflateInit2(z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
            return -ENOMEM;
        pthread_setspecific(tls_z_key, z);
        tls_z_level = level;
    } else if (deflateReset(z) != Z_OK) {
        return -EIO;
    } else if (tls_z_level != level) {
        deflateParams(z, level, Z_DEFAULT_STRATEGY);
        tls_z_level = level;
    }
    z->next_in = (Bytef *)in;
    z->avail_in = (uInt)len;
    z->next_out = out;
    z->avail_out = (uInt)out_cap;
    int r = deflate(z, Z_FINISH);
    if (r != Z_STREAM_END) return r == Z_OK || r == Z_BUF_ERROR ? -ENOBUFS : -EIO;
    return (long)(out_cap - z->avail_out);
}

long tern__compress_buffer(tern__encoding e, int level, const void *in, size_t len, void *out,
                           size_t out_cap) {
    if (e == TERN__ENC_GZIP) return gzip_buffer(level, in, len, out, out_cap);
    if (e != TERN__ENC_BR) return -EINVAL;
    size_t n = out_cap;
    if (!BrotliEncoderCompress(level, BROTLI_DEFAULT_WINDOW, BROTLI_MODE_TEXT, len, in, &n, out))
        return -ENOBUFS;
    return (long)n;
}

void tern__compress_body(const tern__compress_config *cc, tern_ctx *ctx) {
    if (ctx->resp_body_len < cc->min_size || ctx->stream_state != TERN__STREAM_NONE) return;
    tern__encoding e = choose(cc, ctx);
    if (e == TERN__ENC_IDENTITY) return;
    size_t cap = tern__compress_bound(e, ctx->resp_body_len);
    void *out = tern_alloc(ctx, cap);
    if (!out) return; /* out of memory: the body goes out as it is */
    int level = e == TERN__ENC_GZIP ? cc->gzip_level : cc->br_quality;
    long n = tern__compress_buffer(e, level, ctx->resp_body, ctx->resp_body_len, out, cap);
    if (n < 0 || (size_t)n >= ctx->resp_body_len) return;
    ctx->resp_body = out;
    ctx->resp_body_len = (size_t)n;
    ctx->resp_body_cap = 0; /* appending to a compressed body would corrupt it */
    tern_resp_set_header(ctx, "Content-Encoding", tern__encoding_name(e));
}

/* ---- streaming ------------------------------------------------------------ */

struct tern__encoder {
    tern__encoding enc;
    z_stream z;
    BrotliEncoderState *br;
};

void tern__encoder_free(tern__encoder *e) {
    if (!e) return;
    if (e->enc == TERN__ENC_GZIP) deflateEnd(&e->z);
    if (e->br) BrotliEncoderDestroyInstance(e->br);
    free(e);
}

static tern__encoder *encoder_new(const tern__compress_config *cc, tern__encoding enc) {
    tern__encoder *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->enc = enc;
    if (enc == TERN__ENC_GZIP) {
        if (deflateInit2(&e->z, cc->gzip_level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) !=
            Z_OK) {
            free(e);
            return NULL;
        }
        return e;
    }
    e->br = BrotliEncoderCreateInstance(NULL, NULL, NULL);
    if (!e->br) {
        free(e);
        return NULL;
    }
    BrotliEncoderSetParameter(e->br, BROTLI_PARAM_QUALITY, (uint32_t)cc->br_quality);
    return e;
}

int tern__compress_stream_begin(const tern__compress_config *cc, tern_ctx *ctx,
                                int64_t known_length) {
    if (known_length >= 0 && (uint64_t)known_length < cc->min_size) return 0;
    tern__encoding enc = choose(cc, ctx);
    if (enc == TERN__ENC_IDENTITY) return 0;
    ctx->stream_enc = encoder_new(cc, enc);
    if (!ctx->stream_enc) return 0; /* out of memory: stream uncompressed */
    ctx->stream_encoded = 1;
    tern_resp_set_header(ctx, "Content-Encoding", tern__encoding_name(enc));
    tern_resp_remove_header(ctx, "Content-Length");
    return 1;
}

#define ENC_OUT 16384

static int gzip_write(tern__encoder *e, tern_ctx *ctx, const void *data, size_t len, int finish,
                      tern__emit_fn emit) {
    unsigned char out[ENC_OUT];
    e->z.next_in = (Bytef *)data;
    e->z.avail_in = (uInt)len;
    int flush = finish ? Z_FINISH : Z_SYNC_FLUSH;
    for (;;) {
        e->z.next_out = out;
        e->z.avail_out = sizeof out;
        int r = deflate(&e->z, flush);
        if (r != Z_OK && r != Z_STREAM_END && r != Z_BUF_ERROR) return -EIO;
        size_t n = sizeof out - e->z.avail_out;
        if (n) {
            int w = emit(ctx, out, n);
            if (w < 0) return w;
        }
        /* done when the flush fitted: the buffer was not filled up */
        if (r == Z_STREAM_END || (e->z.avail_out != 0 && e->z.avail_in == 0)) return 0;
    }
}

static int br_write(tern__encoder *e, tern_ctx *ctx, const void *data, size_t len, int finish,
                    tern__emit_fn emit) {
    const uint8_t *next_in = data;
    size_t avail_in = len;
    BrotliEncoderOperation op = finish ? BROTLI_OPERATION_FINISH : BROTLI_OPERATION_FLUSH;
    for (;;) {
        size_t avail_out = 0;
        if (!BrotliEncoderCompressStream(e->br, op, &avail_in, &next_in, &avail_out, NULL, NULL))
            return -EIO;
        size_t n = 0;
        const uint8_t *out = BrotliEncoderTakeOutput(e->br, &n);
        if (n) {
            int w = emit(ctx, out, n);
            if (w < 0) return w;
        }
        if (avail_in == 0 && !BrotliEncoderHasMoreOutput(e->br) &&
            (finish ? BrotliEncoderIsFinished(e->br) : 1))
            return 0;
    }
}

int tern__encoder_write(tern__encoder *e, tern_ctx *ctx, const void *data, size_t len, int finish,
                        tern__emit_fn emit) {
    return e->enc == TERN__ENC_GZIP ? gzip_write(e, ctx, data, len, finish, emit)
                                    : br_write(e, ctx, data, len, finish, emit);
}
