/* tern over TLS: HTTPS on the server's port (OpenSSL 3).
 *
 * Adding a certificate makes every listener of the server speak TLS only
 * (TLS 1.2 and 1.3, Mozilla's "intermediate" ciphers in the server's order,
 * no renegotiation, no compression, ALPN "http/1.1"). Plain HTTP sent to
 * that port is answered with a 400 that says so, then closed, as nginx
 * does. Handshakes run on the worker's coroutines with their own timeout
 * (tern_config.handshake_timeout_ms) and a cap per worker
 * (tern_config.max_handshakes).
 *
 * Session tickets are sealed with keys shared by all workers and rotated
 * every hour (a ticket opens for two hours), so a client resumes on any
 * worker. A running server reloads its certificate files on SIGHUP: new
 * connections get the new ones, established connections keep theirs. */
#ifndef TERN_TLS_H
#define TERN_TLS_H

#include <tern/api.h>

#include <tern.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Adds a certificate chain and its private key (PEM files). Repeatable:
 * the first pair is the default, and SNI picks the first pair whose
 * certificate names the requested host (ECDSA and RSA pairs both work).
 * The files are read now (and again on reload). 0, -EINVAL (unreadable or
 * mismatched files; the reason goes to stderr), -EBUSY (running) or
 * -ENOMEM. */
TERN_API int tern_server_add_cert(tern_server *s, const char *cert_file, const char *key_file);
/* Requires a client certificate signed by a CA in ca_file (mutual TLS).
 * Call before or after adding certificates; same errors. */
TERN_API int tern_server_set_client_ca(tern_server *s, const char *ca_file);
/* Re-reads every certificate, key and CA file: connections accepted from
 * now on use them; established ones keep the old. What SIGHUP does. 0, or
 * -EINVAL with the old files still in use. Thread-safe. */
TERN_API int tern_server_reload_certs(tern_server *s);

/* The subject (RFC 2253, "CN=client,O=Example") of the client's verified
 * certificate, in the request's arena; NULL without TLS or without a
 * verified client certificate. */
TERN_API const char *tern_req_tls_peer_subject(tern_ctx *ctx);

#ifdef __cplusplus
}
#endif

#endif
