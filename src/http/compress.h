/* Response compression (gzip through zlib, brotli through libbrotlienc):
 * Accept-Encoding negotiation with q-values (RFC 9110 §12.5.3), the choice
 * of what is worth compressing, whole bodies compressed before the head is
 * written (Content-Length is the compressed size) and an encoder for
 * streamed bodies that flushes at every tern_resp_stream_write. */
#ifndef TERN_HTTP_COMPRESS_H
#define TERN_HTTP_COMPRESS_H

#include <stddef.h>

#include "tern.h"

/* Content codings, as bits of an "offered" set. */
typedef enum tern__encoding {
    TERN__ENC_IDENTITY = 0,
    TERN__ENC_GZIP = 1,
    TERN__ENC_BR = 2,
} tern__encoding;
#define TERN__ENC_BIT(e) (1u << (e))

typedef struct tern__compress_config {
    unsigned offered; /* TERN__ENC_BIT set */
    int gzip_level;   /* 1..9 */
    int br_quality;   /* 0..11 */
    size_t min_size;  /* whole bodies below this go out as they are */
} tern__compress_config;

/* The best coding of `offered` (identity is always available) for an
 * Accept-Encoding value (NULL: the header is absent, identity). Highest q
 * wins; ties prefer br, then gzip, then identity. When every coding and
 * identity are refused (q=0) identity is still returned: RFC 9110 §12.5.3
 * lets a server send it rather than a 406. */
tern__encoding tern__accept_encoding(const char *header, unsigned offered);

/* Non-zero for media types worth compressing: text/any, JSON, JavaScript,
 * XML, SVG and the +json / +xml families. type may carry parameters. */
int tern__compressible_type(const char *type, size_t len);

/* The token of a coding ("gzip", "br"), for Content-Encoding. */
const char *tern__encoding_name(tern__encoding e);

/* Compresses ctx's whole body in place (arena) when it is worth it and the
 * client accepts a coding: sets Content-Encoding and Vary. Leaves the
 * response as it is for HEAD, 204/304, 206 (Range), a body already encoded
 * (Content-Encoding set), a file body, a body under min_size or a type not
 * worth it. */
void tern__compress_body(const tern__compress_config *cc, tern_ctx *ctx);

/* Streamed bodies. begin: non-zero when the stream will be compressed (the
 * encoder is in ctx->stream_enc and the headers are set); known_length is
 * the announced length or -1. */
typedef struct tern__encoder tern__encoder;
int tern__compress_stream_begin(const tern__compress_config *cc, tern_ctx *ctx,
                                int64_t known_length);
/* Feeds len bytes (finish: the end of the body) and hands every piece of
 * output to emit; flushes so the client can decode what was written so
 * far. 0 or a negative errno (emit's, or -ENOMEM / -EIO). */
typedef int (*tern__emit_fn)(tern_ctx *ctx, const void *data, size_t len);
int tern__encoder_write(tern__encoder *e, tern_ctx *ctx, const void *data, size_t len, int finish,
                        tern__emit_fn emit);
void tern__encoder_free(tern__encoder *e);

/* One-shot compression into out (room for out_cap), for tests and the
 * bench: compressed length, or a negative errno (-ENOBUFS: out too small). */
long tern__compress_buffer(tern__encoding e, int level, const void *in, size_t len, void *out,
                           size_t out_cap);
/* An upper bound for the compressed size of len bytes. */
size_t tern__compress_bound(tern__encoding e, size_t len);

#endif
