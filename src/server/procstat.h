/* Process figures from the kernel: resident memory, CPU use, threads, open
 * file descriptors. Each read is a few syscalls on /proc (tens of µs): fine
 * for /stats and /metrics, not for a request path. */
#ifndef TERN_SERVER_PROCSTAT_H
#define TERN_SERVER_PROCSTAT_H

#include <stdint.h>

/* Resident set size: resident pages (2nd field of /proc/self/statm) times
 * the page size. 0 or -errno. */
int tern__procstat_rss(uint64_t *bytes);
/* num_threads from /proc/self/stat, or -errno. */
int tern__procstat_threads(void);
/* Open file descriptors (entries of /proc/self/fd, not counting the one
 * used to read it), or -errno. */
int tern__procstat_open_fds(void);
/* Process CPU percent of one CPU over the window described in
 * tern_stats.cpu_usage_percent; thread-safe (one shared window under a
 * mutex). -1 if a clock could not be read. */
double tern__procstat_cpu_percent(void);

/* Time since the process started, from its start time in /proc/self/stat
 * (clock ticks since boot) and CLOCK_BOOTTIME. 0 or -errno. */
int tern__procstat_age_ns(uint64_t *ns);

/* The CPU window itself, pure so tests can feed it times. Two reference
 * samples: `b` the newest, `a` the one before. A reading is taken against
 * b when b is at least 1 s old, else against a (which then is); b moves to
 * the reading once it is 1 s old. */
typedef struct tern__cpu_window {
    uint64_t a_wall, a_cpu, b_wall, b_cpu; /* ns */
} tern__cpu_window;

#define TERN_CPU_WINDOW_MIN_NS 1000000000ull

/* Starts the window at a known sample (e.g. process start: wall, cpu 0). */
void tern__cpu_window_init(tern__cpu_window *w, uint64_t wall_ns, uint64_t cpu_ns);
/* Percent of one CPU between the chosen reference and (wall_ns, cpu_ns);
 * 0 if no wall time has passed. */
double tern__cpu_window_update(tern__cpu_window *w, uint64_t wall_ns, uint64_t cpu_ns);

#endif
