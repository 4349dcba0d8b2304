/* The demo's data endpoints: a form echoed as JSON, multipart uploads
 * streamed to a temporary folder with their SHA-256, and a session counter
 * in a signed cookie. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <tern.h>

#include "demo.h"

/* POST /form: the decoded fields, in order, as a JSON array of pairs
 * (a name may repeat). */
static void form(tern_ctx *ctx) {
    const char *name, *value;
    int r = tern_form_at(ctx, 0, &name, &value);
    if (r == -EMEDIUMTYPE) {
        tern_resp_text(ctx, 415, "expected application/x-www-form-urlencoded\n");
        return;
    }
    tern_jw *w = tern_json_writer(ctx);
    if (!w) return;
    tern_jw_object_begin(w);
    tern_jw_key(w, "fields");
    tern_jw_array_begin(w);
    for (size_t i = 0; r == 0; r = tern_form_at(ctx, ++i, &name, &value)) {
        tern_jw_array_begin(w);
        tern_jw_string(w, name);
        tern_jw_string(w, value);
        tern_jw_array_end(w);
    }
    tern_jw_array_end(w);
    tern_jw_object_end(w);
    if (r != -ENOENT || tern_jw_status(w) < 0)
        tern_resp_text(ctx, 400, "malformed form field (bad %-escape or invalid UTF-8)\n");
}

/* ---- POST /upload ------------------------------------------------------------ */

#define MAX_FILES 16

/* SHA-256 of every file part as it streams in: a part's first bytes
 * (size == len) start a new digest. */
typedef struct hashes {
    EVP_MD_CTX *md[MAX_FILES];
    int n;
} hashes;

static void on_file_data(const tern_part *part, const void *data, size_t len, void *arg) {
    hashes *h = arg;
    if (part->size == len) {
        if (h->n == MAX_FILES) return;
        h->md[h->n] = EVP_MD_CTX_new();
        if (h->md[h->n]) EVP_DigestInit_ex(h->md[h->n], EVP_sha256(), NULL);
        h->n++;
    }
    if (h->n && h->md[h->n - 1]) EVP_DigestUpdate(h->md[h->n - 1], data, len);
}

static void hex_digest(EVP_MD_CTX *md, char out[65]) {
    unsigned char d[32];
    unsigned n = 0;
    if (!md) md = EVP_MD_CTX_new(), EVP_DigestInit_ex(md, EVP_sha256(), NULL); /* empty file */
    EVP_DigestFinal_ex(md, d, &n);
    EVP_MD_CTX_free(md);
    for (int i = 0; i < 32; i++) snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void upload_answer(tern_ctx *ctx, tern_part *parts, size_t n, hashes *h) {
    tern_jw *w = tern_json_writer(ctx);
    if (!w) return;
    demo_app *app = demo_app_of(ctx);
    tern_jw_object_begin(w);
    tern_jw_key(w, "files");
    tern_jw_array_begin(w);
    int k = 0;
    for (size_t i = 0; i < n; i++) {
        tern_part *p = &parts[i];
        if (!p->filename) continue;
        char hex[65];
        EVP_MD_CTX *md = p->size && k < h->n ? h->md[k++] : NULL;
        hex_digest(md, hex);
        if (p->path && (mkdir(app->upload_dir, 0700) == 0 || errno == EEXIST)) {
            char dest[1024];
            snprintf(dest, sizeof dest, "%s/%lu-%s", app->upload_dir,
                     __atomic_add_fetch(&app->uploads, 1, __ATOMIC_RELAXED), p->filename);
            tern_part_keep(ctx, p, dest);
        }
        tern_jw_object_begin(w);
        tern_jw_key(w, "field");
        tern_jw_string(w, p->name);
        tern_jw_key(w, "filename");
        tern_jw_string(w, p->filename);
        tern_jw_key(w, "size");
        tern_jw_int(w, (int64_t)p->size);
        tern_jw_key(w, "sha256");
        tern_jw_string(w, hex);
        tern_jw_object_end(w);
    }
    tern_jw_array_end(w);
    tern_jw_key(w, "fields");
    tern_jw_object_begin(w);
    for (size_t i = 0; i < n; i++) {
        if (parts[i].filename) continue;
        tern_jw_key(w, parts[i].name);
        tern_jw_string(w, parts[i].data);
    }
    tern_jw_object_end(w);
    tern_jw_object_end(w);
    if (tern_jw_status(w) < 0) tern_resp_text(ctx, 400, "field is not valid UTF-8\n");
}

static void upload(tern_ctx *ctx) {
    hashes h = {.n = 0};
    tern_multipart_limits lim = {
        .max_parts = 32, .max_total = 2ull << 30, .on_file_data = on_file_data, .arg = &h};
    tern_part *parts;
    size_t n;
    int r = tern_multipart_read(ctx, &lim, &parts, &n);
    if (r == 0) {
        upload_answer(ctx, parts, n, &h);
    } else {
        for (int i = 0; i < h.n; i++) EVP_MD_CTX_free(h.md[i]);
        int status = r == -E2BIG         ? 413
                     : r == -EMEDIUMTYPE ? 415
                     : r == -EBADMSG     ? 400
                     : r == -ETIMEDOUT   ? 408
                                         : 500;
        tern_resp_text(ctx, status, status == 413 ? "upload too large\n" : "malformed upload\n");
    }
}

/* ---- GET /session ------------------------------------------------------------ */

static void session(tern_ctx *ctx) {
    demo_app *app = demo_app_of(ctx);
    const tern_cookie_key keys[2] = {{app->session_keys[0], 32}, {app->session_keys[1], 32}};
    const char *v = tern_req_signed_cookie(ctx, "session", keys, 2);
    /* our own signed value, still read strictly: digits only, else 0 */
    unsigned long count = 0;
    for (const char *d = v; d && *d; d++) {
        if (*d < '0' || *d > '9' || count > 1000000000000ul) {
            count = 0;
            break;
        }
        count = count * 10 + (unsigned long)(*d - '0');
    }
    count++;
    char buf[24];
    snprintf(buf, sizeof buf, "%lu", count);
    tern_cookie_opts opts = {.path = "/",
                             .http_only = 1,
                             .same_site = TERN_SAMESITE_LAX,
                             .max_age = 3600,
                             .has_max_age = 1};
    tern_resp_set_signed_cookie(ctx, "session", buf, &opts, keys, 2);
    tern_jw *w = tern_json_writer(ctx);
    if (!w) return;
    tern_jw_object_begin(w);
    tern_jw_key(w, "count");
    tern_jw_int(w, (int64_t)count);
    tern_jw_key(w, "signed");
    tern_jw_bool(w, v != NULL);
    tern_jw_object_end(w);
}

int demo_register_data(tern_server *s) {
    demo_app *app = tern_server_data(s);
    /* uploads go to $TMPDIR/tern-demo-uploads-PID, made with the first one
     * (no empty folder per run), kept at exit */
    const char *tmp = getenv("TMPDIR");
    snprintf(app->upload_dir, sizeof app->upload_dir, "%s/tern-demo-uploads-%ld",
             tmp && *tmp ? tmp : "/tmp", (long)getpid());
    /* two random keys per process (sessions end with it): the first signs,
     * both verify, as during a key rotation */
    if (RAND_bytes(app->session_keys[0], 32) != 1 || RAND_bytes(app->session_keys[1], 32) != 1)
        return -EIO;
    int r = tern_route(s, TERN_POST, "/form", form);
    tern_route_opts stream = {.stream_body = 1};
    if (r == 0) r = tern_route_with(s, TERN_POST, "/upload", upload, &stream);
    if (r == 0) r = tern_route(s, TERN_GET, "/session", session);
    return r;
}
