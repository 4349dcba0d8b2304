/* tern listeners beyond the per-worker TCP port: Unix domain sockets,
 * sockets inherited from systemd (socket activation) or any other parent,
 * the sd_notify protocol, and dropping privileges after binding.
 *
 * Shared listeners. The TCP port gets one SO_REUSEPORT listener per worker
 * (the kernel spreads connections over their queues). A Unix socket or an
 * inherited socket is one socket with one queue: every worker watches it
 * with EPOLLEXCLUSIVE (the kernel wakes one worker per connection, not
 * all of them) and accepts from it until it is empty. Splitting an
 * inherited socket per worker would mean binding new SO_REUSEPORT sockets
 * next to it, which needs the unit's ReusePort=yes and still leaves the
 * inherited queue to serve, so tern uses inherited sockets as they are.
 *
 * Dual stack: a TCP host of "::" listens on IPv6 and IPv4 (IPV6_V6ONLY is
 * cleared whatever net.ipv6.bindv6only says); "0.0.0.0" is IPv4 only,
 * "::1" or another IPv6 address that address only. */
#ifndef TERN_LISTEN_H
#define TERN_LISTEN_H

#include <tern/api.h>

#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

struct tern_server;

/* Listens on a Unix domain socket at `path` (bound now). A stale socket
 * file (nobody accepting on it) is replaced; a live one is -EADDRINUSE.
 * mode: permission bits for the socket file (e.g. 0660), or -1 for the
 * umask's; uid/gid: its owner, or (uid_t)-1/(gid_t)-1 to keep. The file is
 * removed when the server is freed. 0 or -errno (-ENAMETOOLONG, -EBUSY
 * once running). */
TERN_API int tern_server_listen_unix(struct tern_server *s, const char *path, int mode, uid_t uid,
                                     gid_t gid);
/* Adopts a listening stream socket (the server closes it). 0, -ENOTSOCK,
 * -EINVAL (not listening) or -EBUSY. */
TERN_API int tern_server_listen_fd(struct tern_server *s, int fd);
/* Adopts the sockets systemd passed (LISTEN_PID is this process,
 * LISTEN_FDS of them from fd 3) and clears those variables. Returns how
 * many (0 without socket activation) or -errno. */
TERN_API int tern_server_listen_systemd(struct tern_server *s);
/* 0: no per-worker TCP listeners (serve only the Unix and adopted sockets).
 * Default 1. 0 or -EBUSY once bound. */
TERN_API int tern_server_set_tcp(struct tern_server *s, int enabled);

/* Sends `state` ("READY=1", "STOPPING=1"...) to the service manager over
 * the NOTIFY_SOCKET datagram socket (a path, or '@' for the abstract
 * namespace). 1 when sent, 0 without NOTIFY_SOCKET, or -errno. The server
 * itself sends READY=1 once its workers run, STOPPING=1 when a drain
 * begins, RELOADING=1 (with MONOTONIC_USEC) and READY=1 around a SIGHUP
 * reload, and, when WATCHDOG_USEC is set, WATCHDOG=1 every half of it
 * while every worker's loop ticks (a stuck worker lets the watchdog fire). */
TERN_API int tern_sd_notify(const char *state);

/* After binding, before serving: switch to this user (name or numeric
 * uid) and its groups. 0, -ENOENT (no such user), -EPERM. Call between
 * tern_server_bind and tern_server_run; threads started before it keep
 * the old credentials (tern starts its workers in tern_server_run). */
TERN_API int tern_drop_privileges(const char *user);

#ifdef __cplusplus
}
#endif
#endif
