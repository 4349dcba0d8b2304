/* TLS transport: the byte stream of transport.h over OpenSSL 3 (Debian's
 * libssl), non-blocking. SSL_read/SSL_write/SSL_do_handshake map onto the
 * transport's operations: WANT_READ and WANT_WRITE become -EAGAIN with the
 * direction to wait for in t->want (tern__transport_wait_io reads it).
 *
 * Server contexts: one SSL_CTX per certificate/key pair; the first is the
 * default and carries the others, from which the SNI callback picks the
 * first whose certificate matches the requested name. A context is
 * refcounted by OpenSSL: every SSL made from it holds a reference, so a
 * reload (new default for new connections) leaves established ones on the
 * old context until they close.
 *
 * Session tickets (TLS 1.2 tickets and TLS 1.3 PSK tickets) are sealed with
 * keys of our own (tern__tls_keys) shared by every context and every
 * worker, so a client resumes on whichever worker (and after a reload); the
 * key set rotates on a schedule, and a ticket sealed with the previous key
 * still opens (it is then renewed).
 *
 * Error convention: negative errno; -EPROTO for a TLS protocol failure. */
#ifndef TERN_TRANSPORT_TLS_H
#define TERN_TRANSPORT_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "transport/transport.h"

/* The TLS operations (impl is the SSL *). */
extern const tern__transport_ops tern__tls_ops;

/* ---- session ticket keys ------------------------------------------------- */
typedef struct tern__tls_keys tern__tls_keys;
/* A fresh random key set; tickets stay valid for two periods of rotate_s. */
tern__tls_keys *tern__tls_keys_new(unsigned rotate_s);
/* Rotates if a period passed since the last rotation (any thread). */
void tern__tls_keys_tick(tern__tls_keys *k, uint64_t now_ns);
/* Seconds between rotations. */
unsigned tern__tls_keys_period(const tern__tls_keys *k);
void tern__tls_keys_free(tern__tls_keys *k);

/* ---- server ---------------------------------------------------------------- */
/* Builds the server context set from n certificate/key PEM files (the first
 * the default), with client certificate verification against client_ca
 * when it is not NULL. The result is an SSL_CTX *, or NULL with a message
 * in err. */
void *tern__tls_server_ctx_new(const char *const *certs, const char *const *keys, int n,
                               const char *client_ca, tern__tls_keys *tickets, char *err, size_t errlen);
/* Drops the caller's reference (connections keep theirs). */
void tern__tls_ctx_free(void *ctx);
/* A server-side SSL * for fd from ctx, or NULL. */
void *tern__tls_accept_new(void *ctx, int fd);

/* Waits (through t's wait, until deadline) for the first byte of a new
 * connection and tells whether it starts a TLS handshake record (0x16):
 * 1 TLS, 0 something else (plain HTTP sent to the TLS port), or -errno
 * (-ETIMEDOUT, 0 bytes: -ECONNRESET). Reads nothing (MSG_PEEK). */
int tern__tls_sniff(tern__transport *t, uint64_t deadline_ns);

/* ---- client ---------------------------------------------------------------- */
/* A client context: the system CA store (or ca_file), peer verification on
 * unless insecure, TLS 1.2+, ALPN http/1.1, and one cached session that
 * every new connection offers (resumption across pooled connections).
 * SSL_CTX *, or NULL with a message in err. */
void *tern__tls_client_ctx_new(const char *ca_file, int insecure, char *err, size_t errlen);
/* A client-side SSL * for fd, sending SNI `host` and checking the
 * certificate against it (unless the context is insecure), or NULL. */
void *tern__tls_connect_new(void *ctx, int fd, const char *host);
/* Did the handshake resume a session? */
int tern__tls_resumed(void *ssl);

/* ---- both -------------------------------------------------------------------- */
/* Sets t up as TLS over fd with the SSL * made above. */
void tern__transport_tls(tern__transport *t, void *ssl, int fd, uint32_t *flags, tern__transport_wait_fn wait,
                         void *waiter);
/* Runs the handshake on t, parking through its wait until the deadline
 * (absolute tern_clock_ns, 0 none): 0, -ETIMEDOUT, -EPROTO (a message of
 * at most errlen bytes in err if not NULL), or -errno. */
int tern__tls_handshake(tern__transport *t, uint64_t deadline_ns, char *err, size_t errlen);
/* An idle connection's check before reuse: processes records that arrived
 * meanwhile (TLS 1.3 tickets) without blocking: 0 usable, -ECONNRESET
 * closed, -EPROTO unexpected data. */
int tern__tls_idle_check(void *ssl);
/* Sends close_notify if it can without waiting, then frees the SSL *. */
void tern__tls_close(void *ssl);

#endif
