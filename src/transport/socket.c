/* The plain-socket transport: recv/sendmsg/sendfile on a non-blocking TCP or
 * Unix socket. See transport.h. */
#include "transport/transport.h"

#include <errno.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/sendfile.h>
#include <sys/socket.h>
#include <time.h>

#include "tern.h"

/* recvmsg with the kernel's receive timestamp (SO_TIMESTAMPNS): costs more
 * than recv, so only connections that asked for it pay. */
static ssize_t recv_stamped(tern__transport *t, void *buf, size_t len) {
    union {
        char buf[CMSG_SPACE(sizeof(struct timespec))];
        struct cmsghdr align;
    } control;
    struct iovec iov = {buf, len};
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf,
                         .msg_controllen = sizeof control.buf};
    ssize_t n = recvmsg(t->fd, &msg, 0);
    if (n > 0) {
        for (struct cmsghdr *cm = CMSG_FIRSTHDR(&msg); cm; cm = CMSG_NXTHDR(&msg, cm)) {
            if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
                struct timespec ts;
                memcpy(&ts, CMSG_DATA(cm), sizeof ts);
                t->arrival_ns = (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
            }
        }
    }
    return n;
}

static ssize_t socket_read(tern__transport *t, void *buf, size_t len) {
    for (;;) {
        /* edge-triggered epoll: the edge is used up by this read; a full
         * buffer may have left bytes behind, a short read drained the socket
         * and the next edge will say when more come */
        *t->flags &= ~(uint32_t)TERN__T_READABLE;
        ssize_t n = (*t->flags & TERN__T_TSTAMP) ? recv_stamped(t, buf, len) : recv(t->fd, buf, len, 0);
        if (n > 0) {
            if ((size_t)n == len) *t->flags |= TERN__T_READABLE;
            return n;
        }
        if (n == 0) {
            *t->flags |= TERN__T_PEER_EOF;
            return 0;
        }
        if (errno == EINTR) continue;
        return -errno;
    }
}

static ssize_t socket_writev(tern__transport *t, const struct iovec *iov, int iovcnt, int more) {
    int fl = MSG_NOSIGNAL | (more ? MSG_MORE : 0);
    for (;;) {
        ssize_t r;
        if (iovcnt == 1) {
            r = send(t->fd, iov[0].iov_base, iov[0].iov_len, fl);
        } else {
            struct msghdr msg = {.msg_iov = (struct iovec *)iov, .msg_iovlen = (size_t)iovcnt};
            r = sendmsg(t->fd, &msg, fl);
        }
        if (r >= 0) return r;
        if (errno == EINTR) continue;
        return -errno;
    }
}

static ssize_t socket_sendfile(tern__transport *t, int fd, off_t *offset, size_t len) {
    for (;;) {
        ssize_t r = sendfile(t->fd, fd, offset, len);
        if (r >= 0) return r;
        if (errno == EINTR) continue;
        return -errno;
    }
}

static int socket_shutdown(tern__transport *t) { return shutdown(t->fd, SHUT_WR) == 0 ? 0 : -errno; }

static void socket_release(tern__transport *t) { (void)t; }

const tern__transport_ops tern__socket_ops = {
    .name = "tcp",
    .read = socket_read,
    .writev = socket_writev,
    .sendfile = socket_sendfile,
    .shutdown = socket_shutdown,
    .release = socket_release,
};

void tern__transport_socket(tern__transport *t, int fd, uint32_t *flags, tern__transport_wait_fn wait,
                            void *waiter) {
    *t = (tern__transport){.ops = &tern__socket_ops, .fd = fd, .flags = flags, .wait = wait, .waiter = waiter};
}

int tern__transport_timestamps(tern__transport *t) {
    if (*t->flags & TERN__T_TSTAMP) return 0;
    int one = 1;
    if (setsockopt(t->fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one) < 0) return -errno;
    *t->flags |= TERN__T_TSTAMP;
    return 0;
}

int tern__transport_nodelay(tern__transport *t) {
    int one = 1;
    return setsockopt(t->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) == 0 ? 0 : -errno;
}
