/* Shared listeners (Unix sockets, inherited sockets), systemd's
 * LISTEN_FDS and NOTIFY_SOCKET, and privilege dropping (tern/listen.h). */
#include "server/listen.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <arpa/inet.h>
#include <grp.h>
#include <netinet/in.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "server/server.h"
#include "server/worker.h"
#include "tern/listen.h"

static int add_shared(tern_server *s, int fd, char *unix_path) {
    if (s->nshared >= TERN__MAX_SHARED) return -ENOSPC;
    s->shared[s->nshared].fd = fd;
    s->shared[s->nshared].unix_path = unix_path;
    s->nshared++;
    return 0;
}

/* Another process still accepting on `path`? Then it is not ours to take. */
static int unix_path_live(const struct sockaddr_un *sa) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return 0;
    int live = connect(fd, (const struct sockaddr *)sa, sizeof *sa) == 0;
    close(fd);
    return live;
}

int tern_server_listen_unix(tern_server *s, const char *path, int mode, uid_t uid, gid_t gid) {
    if (s->workers) return -EBUSY;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (!path || !*path) return -EINVAL;
    if (strlen(path) >= sizeof sa.sun_path) return -ENAMETOOLONG;
    strcpy(sa.sun_path, path);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) return -EEXIST; /* never remove a file that is not a socket */
        if (unix_path_live(&sa)) return -EADDRINUSE;
        unlink(path); /* left by a process that died */
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    char *copy = strdup(path);
    int r = copy ? 0 : -ENOMEM;
    if (r == 0 && bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0) r = -errno;
    if (r == 0 && mode >= 0 && chmod(path, (mode_t)mode) < 0) r = -errno;
    if (r == 0 && (uid != (uid_t)-1 || gid != (gid_t)-1) && chown(path, uid, gid) < 0) r = -errno;
    if (r == 0 && listen(fd, s->cfg.backlog) < 0) r = -errno;
    if (r == 0) r = add_shared(s, fd, copy);
    if (r < 0) {
        if (copy && r != -EADDRINUSE) unlink(path);
        free(copy);
        close(fd);
    }
    return r;
}

int tern_server_listen_fd(tern_server *s, int fd) {
    if (s->workers) return -EBUSY;
    int listening = 0;
    socklen_t len = sizeof listening;
    if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &listening, &len) < 0) return -errno;
    if (!listening) return -EINVAL;
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0 || fcntl(fd, F_SETFD, FD_CLOEXEC) < 0)
        return -errno;
    return add_shared(s, fd, NULL);
}

/* sd_listen_fds(3), written out: the variables are for this pid only (a
 * child must not take its parent's sockets), the fds start at 3. */
#define SD_LISTEN_FDS_START 3

int tern_server_listen_systemd(tern_server *s) {
    const char *pid = getenv("LISTEN_PID"), *fds = getenv("LISTEN_FDS");
    if (!pid || !fds) return 0;
    char *end;
    long p = strtol(pid, &end, 10);
    if (*end || p != (long)getpid()) return 0;
    long n = strtol(fds, &end, 10);
    if (*end || n < 0 || n > TERN__MAX_SHARED) return -EINVAL;
    unsetenv("LISTEN_PID");
    unsetenv("LISTEN_FDS");
    unsetenv("LISTEN_FDNAMES");
    for (int fd = SD_LISTEN_FDS_START; fd < SD_LISTEN_FDS_START + n; fd++) {
        int r = tern_server_listen_fd(s, fd);
        if (r < 0) return r;
    }
    return (int)n;
}

int tern_server_set_tcp(tern_server *s, int enabled) {
    if (s->bound) return -EBUSY;
    s->no_tcp = !enabled;
    return 0;
}

void tern__listen_close_shared(tern_server *s) {
    for (int i = 0; i < s->nshared; i++) {
        close(s->shared[i].fd);
        if (s->shared[i].unix_path) unlink(s->shared[i].unix_path);
        free(s->shared[i].unix_path);
    }
    s->nshared = 0;
}

/* The port of the first adopted TCP socket, for tern_server_port. */
uint16_t tern__listen_shared_port(const tern_server *s) {
    for (int i = 0; i < s->nshared; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof ss;
        if (getsockname(s->shared[i].fd, (struct sockaddr *)&ss, &len) < 0) continue;
        if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
        if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    }
    return 0;
}

void tern__listen_watch(tern__worker *w, int add) {
    tern_server *s = w->server;
    for (int i = 0; i < s->nshared; i++) {
        /* EPOLLEXCLUSIVE: one worker woken per connection, not a herd;
         * edge-triggered so a worker paused at a limit is not woken again
         * and again (its retry timer accepts later) */
        struct epoll_event ev = {.events = EPOLLIN | EPOLLET | EPOLLEXCLUSIVE,
                                 .data.u64 = (uint64_t)i << 3 | TERN_EV_SHARED_LISTENER};
        epoll_ctl(w->sched.epfd, add ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, s->shared[i].fd, &ev);
    }
}

/* ---- sd_notify ------------------------------------------------------------------ */

int tern_sd_notify(const char *state) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (!path || !*path) return 0;
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    size_t n = strlen(path);
    if (n >= sizeof sa.sun_path || (path[0] != '/' && path[0] != '@')) return -EINVAL;
    memcpy(sa.sun_path, path, n);
    if (path[0] == '@') sa.sun_path[0] = 0; /* abstract namespace */
    socklen_t len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + (path[0] == '/'));
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    ssize_t w = sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa, len);
    int r = w < 0 ? -errno : 1;
    close(fd);
    return r;
}

/* RELOADING=1 must carry the CLOCK_MONOTONIC time (systemd 253+ checks). */
void tern__sd_notify_reloading(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    char msg[64];
    snprintf(msg, sizeof msg, "RELOADING=1\nMONOTONIC_USEC=%llu",
             (unsigned long long)ts.tv_sec * 1000000ull + (unsigned long long)ts.tv_nsec / 1000ull);
    (void)tern_sd_notify(msg);
}

/* WATCHDOG_USEC (for this pid): ping every half of it; 0 without. */
uint64_t tern__sd_watchdog_ns(void) {
    const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
    if (!usec) return 0;
    if (pid && strtol(pid, NULL, 10) != (long)getpid()) return 0;
    unsigned long long u = strtoull(usec, NULL, 10);
    return (uint64_t)u * 1000ull / 2;
}

/* ---- privileges ----------------------------------------------------------------- */

int tern_drop_privileges(const char *user) {
    errno = 0;
    struct passwd *pw = getpwnam(user);
    if (!pw) {
        char *end;
        long uid = strtol(user, &end, 10);
        if (*end || uid < 0 || !(pw = getpwuid((uid_t)uid))) return errno ? -errno : -ENOENT;
    }
    /* groups first: once the uid is gone, so is the right to change them */
    if (setgroups(0, NULL) < 0 && errno != EPERM) return -errno;
    if (initgroups(pw->pw_name, pw->pw_gid) < 0 && getuid() == 0) return -errno;
    if (setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0) return -errno;
    /* and no way back */
    if (pw->pw_uid != 0 && setuid(0) == 0) return -EPERM;
    return 0;
}
