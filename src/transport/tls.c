/* The TLS transport on OpenSSL 3. See tls.h. */
#include "transport/tls.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

/* Mozilla's "intermediate" profile (v5.7) for TLS 1.2; TLS 1.3 keeps
 * OpenSSL's default suites, which are that profile's too. */
#define TLS12_CIPHERS                                                                              \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:"     \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"       \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define TLS_GROUPS "X25519:P-256:P-384"

/* One TLS record's worth of plaintext: writes are coalesced into one
 * record (one send) rather than one record per iovec. */
#define RECORD_MAX 16384

static __thread unsigned char coalesce_buf[RECORD_MAX];
static __thread unsigned char file_buf[RECORD_MAX];

static void error_text(char *err, size_t errlen, const char *what) {
    if (!err || !errlen) return;
    unsigned long e = ERR_peek_last_error();
    char buf[256] = "";
    if (e) ERR_error_string_n(e, buf, sizeof buf);
    snprintf(err, errlen, "%s%s%s", what, buf[0] ? ": " : "", buf);
}

/* ---- the operations ------------------------------------------------------- */

/* Reads until the buffer is full or OpenSSL needs the socket (as nginx's
 * ngx_ssl_recv does): WANT_READ means the socket was drained, so the edge
 * flag can be cleared; a full buffer may leave records inside OpenSSL
 * (SSL_pending, read-ahead) or in the socket with no epoll edge to come,
 * so READABLE stays set and the caller reads again. */
static ssize_t tls_read(tern__transport *t, void *buf, size_t len) {
    SSL *ssl = t->impl;
    size_t got = 0;
    t->want = 0;
    *t->flags &= ~(uint32_t)TERN__T_READABLE;
    while (got < len) {
        size_t done = 0;
        ERR_clear_error();
        if (SSL_read_ex(ssl, (char *)buf + got, len - got, &done)) {
            got += done;
            continue;
        }
        int e = SSL_get_error(ssl, 0);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
            if (got) {
                if (e == SSL_ERROR_WANT_WRITE) *t->flags |= TERN__T_READABLE;
                return (ssize_t)got;
            }
            t->want = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
            return -EAGAIN;
        }
        /* what follows is reported by the next read */
        if (got) {
            *t->flags |= TERN__T_READABLE;
            return (ssize_t)got;
        }
        if (e == SSL_ERROR_ZERO_RETURN) {
            *t->flags |= TERN__T_PEER_EOF;
            return 0;
        }
        if (e == SSL_ERROR_SYSCALL && errno) return errno == EPIPE ? -ECONNRESET : -errno;
        return -EPROTO;
    }
    *t->flags |= TERN__T_READABLE;
    return (ssize_t)got;
}

/* Partial-write mode (SSL_MODE_ENABLE_PARTIAL_WRITE) returns after each
 * record; after WANT_WRITE OpenSSL holds a sealed record and expects the
 * same bytes again, which the callers give (they resend what was not
 * counted as written, possibly with more behind it). */
static ssize_t tls_write_buf(tern__transport *t, const unsigned char *p, size_t n) {
    SSL *ssl = t->impl;
    size_t done = 0;
    t->want = 0;
    while (done < n) {
        size_t w = 0;
        ERR_clear_error();
        if (SSL_write_ex(ssl, p + done, n - done, &w)) {
            done += w;
            continue;
        }
        int e = SSL_get_error(ssl, 0);
        if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
            if (done) return (ssize_t)done;
            t->want = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
            return -EAGAIN;
        }
        if (done) return (ssize_t)done;
        if (e == SSL_ERROR_SYSCALL && errno) return errno == EPIPE ? -ECONNRESET : -errno;
        return -EPIPE;
    }
    return (ssize_t)done;
}

/* Writes as much as the socket takes (a short count means it is full, as
 * for send: the callers then wait for EPOLLOUT). Small pieces (stash,
 * batch, a small body) are coalesced into one record and one send. */
static ssize_t tls_writev(tern__transport *t, const struct iovec *iov, int iovcnt, int more) {
    (void)more;
    size_t total = 0, off = 0;
    int i = 0;
    while (i < iovcnt) {
        const unsigned char *p;
        size_t n = iov[i].iov_len - off;
        if (n == 0) {
            i++;
            off = 0;
            continue;
        }
        if (n >= RECORD_MAX || i == iovcnt - 1) {
            p = (const unsigned char *)iov[i].iov_base + off;
        } else {
            n = 0;
            size_t o = off;
            for (int j = i; j < iovcnt && n < RECORD_MAX; j++, o = 0) {
                size_t k = iov[j].iov_len - o;
                if (k > RECORD_MAX - n) k = RECORD_MAX - n;
                memcpy(coalesce_buf + n, (const char *)iov[j].iov_base + o, k);
                n += k;
            }
            p = coalesce_buf;
        }
        ssize_t r = tls_write_buf(t, p, n);
        if (r < 0) return total ? (ssize_t)total : r;
        total += (size_t)r;
        size_t adv = (size_t)r;
        while (i < iovcnt && adv >= iov[i].iov_len - off) {
            adv -= iov[i].iov_len - off;
            i++;
            off = 0;
        }
        off += adv;
        if ((size_t)r < n) break; /* the socket is full */
    }
    return (ssize_t)total;
}

/* No kernel TLS on these machines (no `tls` module): read + SSL_write.
 * With kTLS (SSL_OP_ENABLE_KTLS and SSL_sendfile) the file would go
 * straight from the page cache. */
static ssize_t tls_sendfile(tern__transport *t, int fd, off_t *offset, size_t len) {
    size_t total = 0;
    while (total < len) {
        size_t n = len - total < RECORD_MAX ? len - total : RECORD_MAX;
        ssize_t r;
        do r = pread(fd, file_buf, n, *offset);
        while (r < 0 && errno == EINTR);
        if (r <= 0) return total ? (ssize_t)total : r < 0 ? -errno : 0;
        ssize_t w = tls_write_buf(t, file_buf, (size_t)r);
        if (w < 0) return total ? (ssize_t)total : w;
        *offset += w;
        total += (size_t)w;
        if (w < r) break; /* the socket is full */
    }
    return (ssize_t)total;
}

/* close_notify if the socket takes it now, then FIN. */
static int tls_shutdown(tern__transport *t) {
    ERR_clear_error();
    SSL_shutdown(t->impl);
    return shutdown(t->fd, SHUT_WR) == 0 ? 0 : -errno;
}

static void tls_release(tern__transport *t) { (void)t; /* the SSL * is the driver's */ }

static const char *tls_peer_subject(tern__transport *t, char *buf, size_t len) {
    SSL *ssl = t->impl;
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (!x || SSL_get_verify_result(ssl) != X509_V_OK || !(SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER))
        return NULL;
    BIO *b = BIO_new(BIO_s_mem());
    if (!b) return NULL;
    X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253);
    int n = BIO_read(b, buf, (int)(len - 1));
    BIO_free(b);
    if (n < 0) n = 0;
    buf[n] = 0;
    return buf;
}

const tern__transport_ops tern__tls_ops = {
    .name = "tls",
    .read = tls_read,
    .writev = tls_writev,
    .sendfile = tls_sendfile,
    .shutdown = tls_shutdown,
    .release = tls_release,
    .peer_subject = tls_peer_subject,
};

void tern__transport_tls(tern__transport *t, void *ssl, int fd, uint32_t *flags, tern__transport_wait_fn wait,
                         void *waiter) {
    *t = (tern__transport){
        .ops = &tern__tls_ops, .fd = fd, .flags = flags, .wait = wait, .waiter = waiter, .impl = ssl};
}

int tern__tls_handshake(tern__transport *t, uint64_t deadline_ns, char *err, size_t errlen) {
    SSL *ssl = t->impl;
    for (;;) {
        ERR_clear_error();
        int r = SSL_do_handshake(ssl);
        if (r == 1) {
            /* the first request may have come with the client's Finished
             * and sit in OpenSSL's read-ahead: read before waiting */
            *t->flags |= TERN__T_READABLE;
            return 0;
        }
        int e = SSL_get_error(ssl, r);
        uint32_t ev;
        if (e == SSL_ERROR_WANT_READ)
            ev = EPOLLIN;
        else if (e == SSL_ERROR_WANT_WRITE)
            ev = EPOLLOUT;
        else {
            error_text(err, errlen, "handshake");
            if (e == SSL_ERROR_SYSCALL) return errno ? -errno : -ECONNRESET;
            return -EPROTO;
        }
        int w = t->wait(t->waiter, ev, deadline_ns);
        if (w < 0) return w;
    }
}

int tern__tls_sniff(tern__transport *t, uint64_t deadline_ns) {
    for (;;) {
        unsigned char b;
        ssize_t n = recv(t->fd, &b, 1, MSG_PEEK);
        if (n == 1) return b == 0x16; /* TLS record type handshake (RFC 8446 §5.1) */
        if (n == 0) return -ECONNRESET;
        if (errno == EINTR) continue;
        if (errno != EAGAIN) return -errno;
        int w = t->wait(t->waiter, EPOLLIN, deadline_ns);
        if (w < 0) return w;
    }
}

int tern__tls_idle_check(void *ssl) {
    char b;
    size_t n = 0;
    ERR_clear_error();
    if (SSL_peek_ex(ssl, &b, 1, &n)) return -EPROTO; /* data nobody asked for */
    int e = SSL_get_error(ssl, 0);
    if (e == SSL_ERROR_WANT_READ) return 0;
    return -ECONNRESET;
}

void tern__tls_close(void *ssl) {
    if (!ssl) return;
    /* close_notify (RFC 8446 §6.1) when the session is still sound */
    if (SSL_is_init_finished(ssl) && !(SSL_get_shutdown(ssl) & SSL_SENT_SHUTDOWN)) {
        ERR_clear_error();
        SSL_shutdown(ssl);
    }
    ERR_clear_error();
    SSL_free(ssl);
}

int tern__tls_resumed(void *ssl) { return SSL_session_reused(ssl); }

/* ---- session ticket keys ----------------------------------------------------- */

typedef struct ticket_key {
    unsigned char name[16];
    unsigned char aes[32];
    unsigned char hmac[32];
} ticket_key;

struct tern__tls_keys {
    pthread_mutex_t lock;
    ticket_key cur, prev;
    int have_prev;
    uint64_t rotated_ns;
    unsigned period_s;
};

static uint64_t mono_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int key_fill(ticket_key *k) {
    return RAND_bytes(k->name, sizeof k->name) == 1 && RAND_bytes(k->aes, sizeof k->aes) == 1 &&
           RAND_bytes(k->hmac, sizeof k->hmac) == 1;
}

tern__tls_keys *tern__tls_keys_new(unsigned rotate_s) {
    tern__tls_keys *k = calloc(1, sizeof *k);
    if (!k) return NULL;
    pthread_mutex_init(&k->lock, NULL);
    k->period_s = rotate_s ? rotate_s : 3600;
    k->rotated_ns = mono_ns();
    if (!key_fill(&k->cur)) {
        tern__tls_keys_free(k);
        return NULL;
    }
    return k;
}

unsigned tern__tls_keys_period(const tern__tls_keys *k) { return k->period_s; }

/* Called with the lock held. */
static void keys_rotate_due(tern__tls_keys *k, uint64_t now) {
    if (now - k->rotated_ns < (uint64_t)k->period_s * 1000000000ull) return;
    ticket_key next;
    if (!key_fill(&next)) return; /* keep the old key rather than none */
    k->prev = k->cur;
    k->have_prev = 1;
    k->cur = next;
    k->rotated_ns = now;
    OPENSSL_cleanse(&next, sizeof next);
}

void tern__tls_keys_tick(tern__tls_keys *k, uint64_t now_ns) {
    pthread_mutex_lock(&k->lock);
    keys_rotate_due(k, now_ns);
    pthread_mutex_unlock(&k->lock);
}

void tern__tls_keys_free(tern__tls_keys *k) {
    if (!k) return;
    pthread_mutex_destroy(&k->lock);
    OPENSSL_cleanse(k, sizeof *k);
    free(k);
}

static int keys_index = -1; /* SSL_CTX ex_data: the tern__tls_keys */
static int sni_index = -1;  /* SSL_CTX ex_data: the SNI table of a default context */
static int session_index = -1; /* SSL_CTX ex_data: a client's cached session */
static pthread_once_t index_once = PTHREAD_ONCE_INIT;

typedef struct sni_table {
    int n;
    SSL_CTX *ctx[]; /* [0] the default (not referenced here), [1..] owned */
} sni_table;

static void sni_table_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
    sni_table *t = ptr;
    if (!t) return;
    for (int i = 1; i < t->n; i++) SSL_CTX_free(t->ctx[i]);
    free(t);
}

typedef struct session_slot {
    pthread_mutex_t lock;
    SSL_SESSION *sess;
} session_slot;

static void session_slot_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp) {
    session_slot *s = ptr;
    if (!s) return;
    if (s->sess) SSL_SESSION_free(s->sess);
    pthread_mutex_destroy(&s->lock);
    free(s);
}

static void make_indexes(void) {
    keys_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    sni_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, sni_table_free);
    session_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, session_slot_free);
}

/* Seals (enc = 1) or opens a ticket with our shared keys: 1 ok, 2 ok but
 * sealed with the previous key (OpenSSL then issues a fresh ticket), 0 no
 * such key (full handshake), -1 error. */
static int ticket_cb(SSL *ssl, unsigned char key_name[16], unsigned char iv[EVP_MAX_IV_LENGTH],
                     EVP_CIPHER_CTX *cctx, EVP_MAC_CTX *hctx, int enc) {
    tern__tls_keys *k = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), keys_index);
    if (!k) return -1;
    ticket_key key;
    int rc = 1;
    pthread_mutex_lock(&k->lock);
    if (enc) {
        keys_rotate_due(k, mono_ns()); /* the schedule, checked where keys are used */
        key = k->cur;
    } else if (memcmp(key_name, k->cur.name, 16) == 0) {
        key = k->cur;
    } else if (k->have_prev && memcmp(key_name, k->prev.name, 16) == 0) {
        key = k->prev;
        rc = 2;
    } else {
        rc = 0;
    }
    pthread_mutex_unlock(&k->lock);
    if (rc == 0) return 0;
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_octet_string(OSSL_MAC_PARAM_KEY, key.hmac, sizeof key.hmac),
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
        OSSL_PARAM_construct_end(),
    };
    if (enc) {
        memcpy(key_name, key.name, 16);
        if (RAND_bytes(iv, EVP_CIPHER_get_iv_length(EVP_aes_256_cbc())) != 1 ||
            !EVP_EncryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key.aes, iv))
            rc = -1;
    } else if (!EVP_DecryptInit_ex(cctx, EVP_aes_256_cbc(), NULL, key.aes, iv)) {
        rc = -1;
    }
    if (rc > 0 && !EVP_MAC_CTX_set_params(hctx, params)) rc = -1;
    OPENSSL_cleanse(&key, sizeof key);
    return rc;
}

/* ---- server contexts ------------------------------------------------------------ */

static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen, const unsigned char *in,
                       unsigned int inlen, void *arg) {
    static const unsigned char ours[] = "\x08http/1.1"; /* room for "\x02h2" first, later */
    unsigned char *sel = NULL;
    if (SSL_select_next_proto(&sel, outlen, ours, sizeof ours - 1, in, inlen) != OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL; /* RFC 7301 §3.2: no_application_protocol, as nginx */
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* SNI: the first context whose certificate matches the name; the default
 * when none does (or no name was sent). */
static int servername_cb(SSL *ssl, int *alert, void *arg) {
    sni_table *t = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    if (!name || !t) return SSL_TLSEXT_ERR_OK;
    for (int i = 0; i < t->n; i++) {
        X509 *x = SSL_CTX_get0_certificate(t->ctx[i]);
        if (x && X509_check_host(x, name, 0, 0, NULL) == 1) {
            if (i > 0 && !SSL_set_SSL_CTX(ssl, t->ctx[i])) return SSL_TLSEXT_ERR_ALERT_FATAL;
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK;
}

static void common_setup(SSL_CTX *ctx) {
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* NO_RENEGOTIATION refuses a client's renegotiation in TLS 1.2 (3.0
     * has no separate NO_CLIENT_RENEGOTIATION); IGNORE_UNEXPECTED_EOF: a
     * close without close_notify is an end of stream, as HTTP's own
     * framing tells a truncated message */
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* RELEASE_BUFFERS: an idle connection keeps no 16 KiB record buffers;
     * read-ahead: one recv per burst of records instead of two per record */
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS | SSL_MODE_ENABLE_PARTIAL_WRITE |
                              SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(ctx, 1);
    SSL_CTX_set1_groups_list(ctx, TLS_GROUPS);
}

static SSL_CTX *server_ctx_one(const char *cert, const char *key, const char *client_ca,
                               tern__tls_keys *tickets, char *err, size_t errlen) {
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (!ctx) {
        error_text(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    common_setup(ctx);
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
    if (!SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS)) goto fail_msg;
    SSL_CTX_set_dh_auto(ctx, 1);
    if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
        error_text(err, errlen, cert);
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(ctx) != 1) {
        error_text(err, errlen, key);
        goto fail;
    }
    SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
    static const unsigned char sid_ctx[] = "tern";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    SSL_CTX_set_ex_data(ctx, keys_index, tickets);
    if (tickets) {
        SSL_CTX_set_tlsext_ticket_key_evp_cb(ctx, ticket_cb);
        /* a ticket opens for two periods: the one it was sealed in and the next */
        SSL_CTX_set_timeout(ctx, (long)tern__tls_keys_period(tickets) * 2);
    }
    if (client_ca) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(client_ca);
        if (!names || SSL_CTX_load_verify_locations(ctx, client_ca, NULL) != 1) {
            if (names) sk_X509_NAME_pop_free(names, X509_NAME_free);
            error_text(err, errlen, client_ca);
            goto fail;
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
fail_msg:
    error_text(err, errlen, "TLS settings");
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

void *tern__tls_server_ctx_new(const char *const *certs, const char *const *keys, int n,
                               const char *client_ca, tern__tls_keys *tickets, char *err, size_t errlen) {
    pthread_once(&index_once, make_indexes);
    if (n <= 0) {
        snprintf(err, errlen, "no certificate");
        return NULL;
    }
    sni_table *t = calloc(1, sizeof *t + (size_t)n * sizeof(SSL_CTX *));
    if (!t) return NULL;
    for (int i = 0; i < n; i++) {
        t->ctx[i] = server_ctx_one(certs[i], keys[i], client_ca, tickets, err, errlen);
        if (!t->ctx[i]) {
            for (int j = 0; j < i; j++) SSL_CTX_free(t->ctx[j]);
            free(t);
            return NULL;
        }
        t->n = i + 1;
    }
    SSL_CTX *def = t->ctx[0];
    /* the table lives as long as the default context (freed with it) */
    SSL_CTX_set_ex_data(def, sni_index, t);
    SSL_CTX_set_tlsext_servername_callback(def, servername_cb);
    SSL_CTX_set_tlsext_servername_arg(def, t);
    return def;
}

void tern__tls_ctx_free(void *ctx) { SSL_CTX_free(ctx); }

void *tern__tls_accept_new(void *ctx, int fd) {
    SSL *ssl = SSL_new(ctx);
    if (!ssl) return NULL;
    if (!SSL_set_fd(ssl, fd)) {
        SSL_free(ssl);
        return NULL;
    }
    SSL_set_accept_state(ssl);
    return ssl;
}

/* ---- client contexts ----------------------------------------------------------------- */

/* TLS 1.3 tickets arrive after the handshake: keep the newest for the next
 * connection of this client. */
static int new_session_cb(SSL *ssl, SSL_SESSION *sess) {
    session_slot *s = SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), session_index);
    if (!s) return 0;
    pthread_mutex_lock(&s->lock);
    SSL_SESSION *old = s->sess;
    s->sess = sess;
    pthread_mutex_unlock(&s->lock);
    if (old) SSL_SESSION_free(old);
    return 1; /* we keep the reference */
}

void *tern__tls_client_ctx_new(const char *ca_file, int insecure, char *err, size_t errlen) {
    pthread_once(&index_once, make_indexes);
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
    if (!ctx) {
        error_text(err, errlen, "SSL_CTX_new");
        return NULL;
    }
    common_setup(ctx);
    SSL_CTX_set_cipher_list(ctx, TLS12_CIPHERS);
    static const unsigned char alpn[] = "\x08http/1.1";
    SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1);
    if (!insecure) {
        int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL) : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            error_text(err, errlen, ca_file ? ca_file : "system CA store");
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    session_slot *s = calloc(1, sizeof *s);
    if (!s) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    pthread_mutex_init(&s->lock, NULL);
    SSL_CTX_set_ex_data(ctx, session_index, s);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
    SSL_CTX_sess_set_new_cb(ctx, new_session_cb);
    return ctx;
}

void *tern__tls_connect_new(void *ctx, int fd, const char *host) {
    SSL *ssl = SSL_new(ctx);
    if (!ssl) return NULL;
    if (!SSL_set_fd(ssl, fd)) goto fail;
    unsigned char addr[16];
    int is_ip = inet_pton(AF_INET, host, addr) == 1 || inet_pton(AF_INET6, host, addr) == 1;
    if (is_ip) {
        /* no SNI for an address (RFC 6066 §3); the certificate must name it */
        if (!X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host)) goto fail;
    } else if (!SSL_set_tlsext_host_name(ssl, host) || !SSL_set1_host(ssl, host)) {
        goto fail;
    }
    session_slot *s = SSL_CTX_get_ex_data(ctx, session_index);
    if (s) {
        pthread_mutex_lock(&s->lock);
        if (s->sess && SSL_SESSION_is_resumable(s->sess)) SSL_set_session(ssl, s->sess);
        pthread_mutex_unlock(&s->lock);
    }
    SSL_set_connect_state(ssl);
    return ssl;
fail:
    SSL_free(ssl);
    return NULL;
}
