/* Transport: a byte stream that HTTP (server side and client side) reads and
 * writes without knowing what carries it. A plain socket now (socket.c);
 * TLS plugs in as another set of operations. Nothing above this layer calls
 * recv/send on a connection directly.
 *
 * The operations never block: they return -EAGAIN and the caller parks with
 * tern__transport_wait, which reaches whoever drives the connection through
 * the function pointer it handed over (the server parks the coroutine until
 * its epoll edge; the client waits on the fd with tern_wait_fd).
 *
 * Error convention: byte counts >= 0, or a negative errno. 0 from read is
 * the end of the stream. */
#ifndef TERN_TRANSPORT_TRANSPORT_H
#define TERN_TRANSPORT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

/* Bits the transport keeps in a flags word its driver owns (so an idle
 * server connection stays one small slot): bits 0..7 are the transport's. */
enum tern__transport_flag {
    TERN__T_READABLE = 1u << 0, /* an EPOLLIN edge not yet drained by a read */
    TERN__T_PEER_EOF = 1u << 1, /* read returned 0 */
    TERN__T_TSTAMP = 1u << 2,   /* reads carry the kernel's receive time */
    TERN__T_MASK = 0xffu,
};

typedef struct tern__transport tern__transport;

/* Parks the caller until `events` (EPOLLIN/EPOLLOUT) may be ready or the
 * absolute deadline (tern_clock_ns, 0 = none) passes: 0, -ETIMEDOUT,
 * -ECANCELED or another negative errno. */
typedef int (*tern__transport_wait_fn)(void *waiter, uint32_t events, uint64_t deadline_ns);

typedef struct tern__transport_ops {
    const char *name;
    /* bytes read, 0 at end of stream, -EAGAIN, or -errno */
    ssize_t (*read)(tern__transport *t, void *buf, size_t len);
    /* bytes written (possibly short), -EAGAIN, or -errno; `more`: more
     * output follows at once (MSG_MORE) */
    ssize_t (*writev)(tern__transport *t, const struct iovec *iov, int iovcnt, int more);
    /* up to len bytes of file fd from *offset (advanced), -EAGAIN or -errno */
    ssize_t (*sendfile)(tern__transport *t, int fd, off_t *offset, size_t len);
    /* no more output from us (FIN); 0 or -errno */
    int (*shutdown)(tern__transport *t);
    /* releases the transport's own state; the fd is the driver's to close */
    void (*release)(tern__transport *t);
    /* optional: the verified peer certificate's subject (RFC 2253) written
     * into buf, or NULL when there is none (plain socket, no client cert) */
    const char *(*peer_subject)(tern__transport *t, char *buf, size_t len);
} tern__transport_ops;

struct tern__transport {
    const tern__transport_ops *ops;
    int fd;
    uint32_t *flags;                    /* TERN__T_* bits in the driver's word */
    tern__transport_wait_fn wait;
    void *waiter;
    uint64_t arrival_ns;                /* CLOCK_REALTIME receive time of the last
                                           read (TERN__T_TSTAMP), 0 = unknown */
    void *impl;                         /* the operations' own state (TLS: the SSL *) */
    /* The direction the last operation that returned -EAGAIN needs, when it
     * is not the obvious one: a TLS read may have to write (a key update)
     * and a TLS write may have to read. 0 = the caller's own direction.
     * tern__transport_wait_io uses and clears it. */
    uint32_t want;
};

/* The plain-socket operations (socket.c). */
extern const tern__transport_ops tern__socket_ops;

/* Sets t up as a plain socket on fd. */
void tern__transport_socket(tern__transport *t, int fd, uint32_t *flags, tern__transport_wait_fn wait,
                            void *waiter);

static inline ssize_t tern__transport_read(tern__transport *t, void *buf, size_t len) {
    return t->ops->read(t, buf, len);
}
static inline ssize_t tern__transport_writev(tern__transport *t, const struct iovec *iov, int n, int more) {
    return t->ops->writev(t, iov, n, more);
}
static inline int tern__transport_wait(tern__transport *t, uint32_t events, uint64_t deadline_ns) {
    return t->wait(t->waiter, events, deadline_ns);
}
/* Parks until the transport can make progress on what last returned
 * -EAGAIN: `events` (EPOLLIN for a read, EPOLLOUT for a write) unless the
 * operation asked for the other direction (see `want`). */
static inline int tern__transport_wait_io(tern__transport *t, uint32_t events, uint64_t deadline_ns) {
    uint32_t ev = t->want ? t->want : events;
    t->want = 0;
    return t->wait(t->waiter, ev, deadline_ns);
}
static inline int tern__transport_shutdown(tern__transport *t) { return t->ops->shutdown(t); }

/* Asks the kernel for receive timestamps on t's reads (for queue delay from
 * the moment bytes reached the host). 0 or -errno. */
int tern__transport_timestamps(tern__transport *t);

/* Sends small writes at once (TCP_NODELAY); 0 or -errno. */
int tern__transport_nodelay(tern__transport *t);

/* Writes every byte of iov (modified), parking while the peer reads slowly;
 * the deadline is renewed whenever some bytes go out, so a slow but live
 * reader is never cut off (timeout_ms = 0: wait forever). 0 or -errno. */
int tern__transport_write_all(tern__transport *t, struct iovec *iov, int iovcnt, unsigned timeout_ms);

/* The peer's verified certificate subject, or NULL (see the op). */
static inline const char *tern__transport_peer_subject(tern__transport *t, char *buf, size_t len) {
    return t->ops->peer_subject ? t->ops->peer_subject(t, buf, len) : NULL;
}

#endif
