/* Accept-Encoding negotiation with q-values (RFC 9110 §12.5.3), the types
 * worth compressing, and gzip output that zlib decodes back. */
#include <stdlib.h>
#include <errno.h>
#include <strings.h>
#include <zlib.h>

#include "check.h"
#include "http/compress.h"
#include "http/ctx.h"

#define BOTH (TERN__ENC_BIT(TERN__ENC_GZIP) | TERN__ENC_BIT(TERN__ENC_BR))
#define GZ TERN__ENC_BIT(TERN__ENC_GZIP)

static void negotiation(void) {
    CHECK_INT(tern__accept_encoding(NULL, BOTH), TERN__ENC_IDENTITY);
    CHECK_INT(tern__accept_encoding("", BOTH), TERN__ENC_IDENTITY);
    CHECK_INT(tern__accept_encoding("gzip", BOTH), TERN__ENC_GZIP);
    CHECK_INT(tern__accept_encoding("x-gzip", BOTH), TERN__ENC_GZIP);
    CHECK_INT(tern__accept_encoding("GZIP", BOTH), TERN__ENC_GZIP);
    CHECK_INT(tern__accept_encoding("gzip, deflate, br", BOTH), TERN__ENC_BR); /* tie: br */
    CHECK_INT(tern__accept_encoding("gzip, deflate, br", GZ), TERN__ENC_GZIP);
    CHECK_INT(tern__accept_encoding("br;q=0.5, gzip;q=0.8", BOTH), TERN__ENC_GZIP);
    CHECK_INT(tern__accept_encoding("br;q=0.8, gzip;q=0.5", BOTH), TERN__ENC_BR);
    CHECK_INT(tern__accept_encoding("br ; q=0.8 , gzip ;Q=0.9", BOTH), TERN__ENC_GZIP);
    CHECK_INT(tern__accept_encoding("gzip;q=0", BOTH), TERN__ENC_IDENTITY);
    CHECK_INT(tern__accept_encoding("gzip;q=0.000", BOTH), TERN__ENC_IDENTITY);
    CHECK_INT(tern__accept_encoding("*", BOTH), TERN__ENC_BR);
    CHECK_INT(tern__accept_encoding("*;q=0.5, br;q=0", BOTH), TERN__ENC_GZIP);
    CHECK_INT(tern__accept_encoding("identity", BOTH), TERN__ENC_IDENTITY);
    CHECK_INT(tern__accept_encoding("identity;q=1, gzip;q=0.5", BOTH), TERN__ENC_IDENTITY);
    CHECK_INT(tern__accept_encoding("identity;q=0, gzip;q=0.5", BOTH), TERN__ENC_GZIP);
    CHECK_INT(tern__accept_encoding("gzip;q=0.001, identity;q=0", BOTH), TERN__ENC_GZIP);
    CHECK_INT(tern__accept_encoding("deflate, zstd", BOTH), TERN__ENC_IDENTITY);
    /* malformed q: that coding is not acceptable */
    CHECK_INT(tern__accept_encoding("gzip;q=2", BOTH), TERN__ENC_IDENTITY);
    CHECK_INT(tern__accept_encoding("gzip;q=abc, br;q=0.1", BOTH), TERN__ENC_BR);
    CHECK_INT(tern__accept_encoding("gzip;q=0.12345", BOTH), TERN__ENC_IDENTITY);
    CHECK_INT(tern__accept_encoding(",,, gzip ,,", BOTH), TERN__ENC_GZIP);
    CHECK_INT(tern__accept_encoding("gzipx, brr", BOTH), TERN__ENC_IDENTITY);
}

static void types(void) {
    const char *yes[] = {"text/html",
                         "text/plain; charset=utf-8",
                         "application/json",
                         "TEXT/CSS",
                         "application/javascript",
                         "image/svg+xml",
                         "application/problem+json",
                         "application/atom+xml",
                         "application/json; charset=utf-8"};
    const char *no[] = {"image/png", "application/octet-stream", "application/gzip",
                        "video/mp4", "application/jsonx",        "",
                        "text"};
    for (size_t i = 0; i < sizeof yes / sizeof yes[0]; i++)
        CHECK(tern__compressible_type(yes[i], strlen(yes[i])));
    for (size_t i = 0; i < sizeof no / sizeof no[0]; i++)
        CHECK(!tern__compressible_type(no[i], strlen(no[i])));
}

static void gzip_roundtrip(void) {
    size_t len = 10000;
    char *in = malloc(len);
    for (size_t i = 0; i < len; i++) in[i] = "{\"key\": 12345, \"value\": \"abc\"}\n"[i % 31];
    for (int round = 0; round < 3; round++) { /* the thread's deflate state is reused */
        int level = round == 2 ? 1 : 6;
        size_t cap = tern__compress_bound(TERN__ENC_GZIP, len);
        unsigned char *out = malloc(cap);
        long n = tern__compress_buffer(TERN__ENC_GZIP, level, in, len, out, cap);
        CHECK(n > 0 && (size_t)n < len / 10);
        char *back = malloc(len + 1);
        z_stream z = {0};
        CHECK(inflateInit2(&z, 15 + 16) == Z_OK);
        z.next_in = out;
        z.avail_in = (uInt)n;
        z.next_out = (Bytef *)back;
        z.avail_out = (uInt)len + 1;
        CHECK(inflate(&z, Z_FINISH) == Z_STREAM_END);
        CHECK_INT(z.total_out, len);
        CHECK(memcmp(back, in, len) == 0);
        inflateEnd(&z);
        free(back);
        free(out);
    }
    /* too small an output buffer is an error, not a truncated body */
    unsigned char tiny[8];
    CHECK_INT(tern__compress_buffer(TERN__ENC_GZIP, 6, in, len, tiny, sizeof tiny), -ENOBUFS);
    size_t cap = tern__compress_bound(TERN__ENC_BR, len);
    unsigned char *out = malloc(cap);
    long n = tern__compress_buffer(TERN__ENC_BR, 4, in, len, out, cap);
    CHECK(n > 0 && (size_t)n < len / 10);
    free(out);
    free(in);
}

/* A request carrying "Accept-Encoding: gzip" and a text response of 4 KB. */
static const char head[] = "Accept-Encoding\0gzip";
static const tern__http_header hdr = {0, 15, 16, 4};
static char text[4096];

static void request(tern_ctx *ctx, unsigned method, int status) {
    tern__ctx_init(ctx);
    ctx->head = head;
    ctx->headers = &hdr;
    ctx->num_headers = 1;
    ctx->method = method;
    ctx->status = status;
    memset(text, 'a', sizeof text);
    tern_resp_set_header(ctx, "Content-Type", "text/plain");
    tern_resp_set_body_static(ctx, text, sizeof text);
}

static const char *resp_header(tern_ctx *ctx, const char *name) {
    for (uint32_t i = 0; i < ctx->num_resp; i++)
        if (strcasecmp(ctx->resp[i].name, name) == 0) return ctx->resp[i].value;
    return NULL;
}

static void whole_bodies(void) {
    tern__compress_config cc = {
        .offered = BOTH, .gzip_level = 1, .br_quality = 2, .min_size = 1024};
    tern_ctx ctx;
    request(&ctx, TERN_GET, 200);
    tern__compress_body(&cc, &ctx);
    CHECK_STR(resp_header(&ctx, "Content-Encoding"), "gzip");
    CHECK_STR(resp_header(&ctx, "Vary"), "Accept-Encoding");
    CHECK(ctx.resp_body_len < 100);
    tern__ctx_release(&ctx);

    /* never: HEAD, 206, 204/304, a coding already set, a type not worth it */
    request(&ctx, TERN_HEAD, 200);
    tern__compress_body(&cc, &ctx);
    CHECK(resp_header(&ctx, "Content-Encoding") == NULL && ctx.resp_body_len == sizeof text);
    tern__ctx_release(&ctx);
    int statuses[] = {206, 204, 304};
    for (int i = 0; i < 3; i++) {
        request(&ctx, TERN_GET, statuses[i]);
        if (statuses[i] == 206) tern_resp_set_header(&ctx, "Content-Range", "bytes 0-4095/10000");
        tern__compress_body(&cc, &ctx);
        CHECK(resp_header(&ctx, "Content-Encoding") == NULL && ctx.resp_body_len == sizeof text);
        tern__ctx_release(&ctx);
    }
    request(&ctx, TERN_GET, 200);
    tern_resp_set_header(&ctx, "Content-Encoding", "br");
    tern__compress_body(&cc, &ctx);
    CHECK_STR(resp_header(&ctx, "Content-Encoding"), "br");
    CHECK_INT(ctx.resp_body_len, sizeof text);
    tern__ctx_release(&ctx);
    request(&ctx, TERN_GET, 200);
    tern_resp_set_header(&ctx, "Content-Type", "image/png");
    tern__compress_body(&cc, &ctx);
    CHECK(resp_header(&ctx, "Content-Encoding") == NULL && resp_header(&ctx, "Vary") == NULL);
    tern__ctx_release(&ctx);
    /* the handler's own Vary keeps its value and gains Accept-Encoding once */
    request(&ctx, TERN_GET, 200);
    tern_resp_set_header(&ctx, "Vary", "Origin");
    tern__compress_body(&cc, &ctx);
    CHECK_STR(resp_header(&ctx, "Vary"), "Origin, Accept-Encoding");
    tern__ctx_release(&ctx);
    request(&ctx, TERN_GET, 200);
    tern_resp_set_header(&ctx, "Vary", "accept-encoding");
    tern__compress_body(&cc, &ctx);
    CHECK_STR(resp_header(&ctx, "Vary"), "accept-encoding");
    tern__ctx_release(&ctx);
}

int main(void) {
    negotiation();
    whole_bodies();
    types();
    gzip_roundtrip();
    return check_done();
}
