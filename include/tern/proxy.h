/* tern behind proxies: the real client address.
 *
 * PROXY protocol (HAProxy's, v1 text and v2 binary): with it enabled, every
 * connection to the server's listeners must come from a trusted proxy and
 * start with a PROXY header, read before TLS and HTTP under the header
 * timeout; a connection from another source, or with a malformed, missing
 * or late header, is closed without an answer. A LOCAL (v2) or UNKNOWN (v1)
 * header keeps the socket's own peer (health checks from the proxy).
 *
 * Forwarded (RFC 7239) and X-Forwarded-For are honoured only when the
 * connection's peer (after PROXY) is a trusted proxy: the client is the
 * rightmost address in the chain that is not itself a trusted proxy
 * (addresses to its left were written by the client and prove nothing).
 * Forwarded wins over X-Forwarded-For when both are present.
 *
 * tern_req_peer returns that real client; tern_req_socket_peer the TCP
 * peer itself. Nothing is computed per request unless asked. */
#ifndef TERN_PROXY_H
#define TERN_PROXY_H

#include <tern/api.h>

#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tern_server;
struct tern_ctx;

/* Trusted proxies: addresses and CIDR blocks separated by commas or
 * blanks ("127.0.0.1, 10.0.0.0/8, ::1, fd00::/8"), and "unix" for peers on
 * a Unix socket. Replaces the list. 0, -EINVAL (naming nothing: check the
 * syntax), -ENOSPC (more than 64), -EBUSY once running. */
TERN_API int tern_server_trust_proxies(struct tern_server *s, const char *list);
/* Requires a PROXY header (v1 or v2) on every connection. 0 or -EBUSY. */
TERN_API int tern_server_set_proxy_protocol(struct tern_server *s, int enabled);

/* The socket's own peer (the proxy, behind one). 0 or -errno. */
TERN_API int tern_req_socket_peer(const struct tern_ctx *ctx, struct sockaddr_storage *addr,
                                  socklen_t *len);

#ifdef __cplusplus
}
#endif
#endif
