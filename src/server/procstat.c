/* Process figures read from /proc and the process CPU clock. Files are read
 * with open/read into stack buffers (no stdio, no allocation). */
#include "server/procstat.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Reads a small /proc file whole; returns its length (NUL-terminated) or
 * -errno. /proc files report a size of 0, so read until EOF. */
static ssize_t read_small(const char *path, char *buf, size_t size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -errno;
    size_t len = 0;
    while (len + 1 < size) {
        ssize_t n = read(fd, buf + len, size - 1 - len);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0) break;
        len += (size_t)n;
    }
    close(fd);
    buf[len] = 0;
    return (ssize_t)len;
}

static int parse_u64(const char **p, uint64_t *out) {
    const char *s = *p;
    while (*s == ' ') s++;
    if (*s < '0' || *s > '9') return -EINVAL;
    uint64_t v = 0;
    while (*s >= '0' && *s <= '9') {
        if (v > (UINT64_MAX - 9) / 10) return -ERANGE;
        v = v * 10 + (uint64_t)(*s++ - '0');
    }
    *p = s;
    *out = v;
    return 0;
}

int tern__procstat_rss(uint64_t *bytes) {
    char buf[256];
    ssize_t n = read_small("/proc/self/statm", buf, sizeof buf);
    if (n < 0) return (int)n;
    const char *p = buf;
    uint64_t size, resident;
    if (parse_u64(&p, &size) < 0 || parse_u64(&p, &resident) < 0) return -EINVAL;
    long page = sysconf(_SC_PAGESIZE);
    if (page <= 0) return -EINVAL;
    *bytes = resident * (uint64_t)page;
    return 0;
}

/* Field `field` (1-based, as in proc(5)) of /proc/self/stat. The command
 * name (field 2) is in parentheses and may itself hold spaces and ')', so
 * counting starts after the last ')'. */
static int stat_field(int field, uint64_t *out) {
    char buf[1024];
    ssize_t n = read_small("/proc/self/stat", buf, sizeof buf);
    if (n < 0) return (int)n;
    const char *p = strrchr(buf, ')');
    if (!p || field < 3) return -EINVAL;
    p++;
    /* field 3 (state) is a letter; skip it, then fields 4.. are numbers
     * (some may be negative, but none before starttime that we need) */
    while (*p == ' ') p++;
    if (!*p) return -EINVAL;
    p++;
    for (int f = 4; f <= field; f++) {
        while (*p == ' ') p++;
        if (f == field) return parse_u64(&p, out);
        if (*p == '-') p++;
        while (*p && *p != ' ') p++;
        if (!*p) return -EINVAL;
    }
    return -EINVAL;
}

int tern__procstat_threads(void) {
    uint64_t v;
    int r = stat_field(20, &v);
    if (r < 0) return r;
    return v > 0x7fffffff ? 0x7fffffff : (int)v;
}

int tern__procstat_open_fds(void) {
    int fd = open("/proc/self/fd", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -errno;
    /* getdents64 into a stack buffer: opendir would malloc a 32 KiB DIR */
    _Alignas(8) char buf[8192];
    int count = 0;
    for (;;) {
        ssize_t n = getdents64(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = errno;
            close(fd);
            return -e;
        }
        if (n == 0) break;
        for (ssize_t off = 0; off < n;) {
            const struct dirent64 *d = (const struct dirent64 *)(void *)(buf + off);
            if (d->d_name[0] != '.') count++;
            off += d->d_reclen;
        }
    }
    close(fd);
    return count > 0 ? count - 1 : 0; /* the fd we read the directory through */
}

static uint64_t clock_ns(clockid_t id, int *ok) {
    struct timespec ts;
    if (clock_gettime(id, &ts) < 0) {
        *ok = 0;
        return 0;
    }
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int tern__procstat_age_ns(uint64_t *ns) {
    uint64_t start_ticks;
    int r = stat_field(22, &start_ticks);
    if (r < 0) return r;
    long hz = sysconf(_SC_CLK_TCK);
    int ok = 1;
    /* starttime counts from boot including suspend, like CLOCK_BOOTTIME */
    uint64_t boot = clock_ns(CLOCK_BOOTTIME, &ok);
    if (!ok || hz <= 0) return -EINVAL;
    uint64_t start = start_ticks / (uint64_t)hz * 1000000000ull +
                     start_ticks % (uint64_t)hz * 1000000000ull / (uint64_t)hz;
    *ns = boot > start ? boot - start : 0;
    return 0;
}

void tern__cpu_window_init(tern__cpu_window *w, uint64_t wall_ns, uint64_t cpu_ns) {
    w->a_wall = w->b_wall = wall_ns;
    w->a_cpu = w->b_cpu = cpu_ns;
}

double tern__cpu_window_update(tern__cpu_window *w, uint64_t wall_ns, uint64_t cpu_ns) {
    int b_old = wall_ns >= w->b_wall && wall_ns - w->b_wall >= TERN_CPU_WINDOW_MIN_NS;
    uint64_t ref_wall = b_old ? w->b_wall : w->a_wall;
    uint64_t ref_cpu = b_old ? w->b_cpu : w->a_cpu;
    double pct = 0;
    if (wall_ns > ref_wall && cpu_ns >= ref_cpu)
        pct = 100.0 * (double)(cpu_ns - ref_cpu) / (double)(wall_ns - ref_wall);
    if (b_old) {
        w->a_wall = w->b_wall;
        w->a_cpu = w->b_cpu;
        w->b_wall = wall_ns;
        w->b_cpu = cpu_ns;
    }
    return pct;
}

static pthread_mutex_t cpu_lock = PTHREAD_MUTEX_INITIALIZER;
static tern__cpu_window cpu_window;
static int cpu_window_ready;

double tern__procstat_cpu_percent(void) {
    int ok = 1;
    pthread_mutex_lock(&cpu_lock);
    uint64_t wall = clock_ns(CLOCK_MONOTONIC, &ok);
    uint64_t cpu = clock_ns(CLOCK_PROCESS_CPUTIME_ID, &ok);
    if (!ok) {
        pthread_mutex_unlock(&cpu_lock);
        return -1;
    }
    if (!cpu_window_ready) {
        /* first reading: measure from process start (CPU time 0 then) */
        uint64_t age;
        if (tern__procstat_age_ns(&age) == 0 && age < wall)
            tern__cpu_window_init(&cpu_window, wall - age, 0);
        else
            tern__cpu_window_init(&cpu_window, wall, cpu);
        cpu_window_ready = 1;
    }
    double pct = tern__cpu_window_update(&cpu_window, wall, cpu);
    pthread_mutex_unlock(&cpu_lock);
    return pct;
}
