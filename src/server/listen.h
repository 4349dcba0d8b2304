/* Shared listeners and systemd internals (public side: tern/listen.h). */
#ifndef TERN_SERVER_LISTEN_H
#define TERN_SERVER_LISTEN_H

#include <stdint.h>

struct tern_server;
struct tern__worker;

/* Closes the shared listeners and removes the Unix socket files. */
void tern__listen_close_shared(struct tern_server *s);
/* The port of the first adopted TCP socket, or 0. */
uint16_t tern__listen_shared_port(const struct tern_server *s);
/* Adds (1) or removes (0) the shared listeners from w's epoll set. */
void tern__listen_watch(struct tern__worker *w, int add);
/* RELOADING=1 with MONOTONIC_USEC. */
void tern__sd_notify_reloading(void);
/* Half of WATCHDOG_USEC in ns when the watchdog is on for us, else 0. */
uint64_t tern__sd_watchdog_ns(void);

#endif
