/* What every transport shares: writing a whole message with parks. */
#include "transport/transport.h"

#include <errno.h>
#include <sys/epoll.h>

#include "tern.h"

int tern__transport_write_all(tern__transport *t, struct iovec *iov, int iovcnt, unsigned timeout_ms) {
    while (iovcnt > 0) {
        if (iov[0].iov_len == 0) {
            iov++;
            iovcnt--;
            continue;
        }
        ssize_t r = tern__transport_writev(t, iov, iovcnt, 0);
        if (r == -EAGAIN) {
            uint64_t deadline = timeout_ms ? tern_clock_ns() + (uint64_t)timeout_ms * 1000000ull : 0;
            int w = tern__transport_wait_io(t, EPOLLOUT, deadline);
            if (w < 0) return w;
            continue;
        }
        if (r < 0) return (int)r;
        size_t done = (size_t)r;
        while (iovcnt > 0 && done >= iov[0].iov_len) {
            done -= iov[0].iov_len;
            iov++;
            iovcnt--;
        }
        if (iovcnt > 0) {
            iov[0].iov_base = (char *)iov[0].iov_base + done;
            iov[0].iov_len -= done;
        }
    }
    return 0;
}
