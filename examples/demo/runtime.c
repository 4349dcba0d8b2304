/* /memory and /event-loop: the runtime measuring itself.
 *
 * GET /memory?tasks=N (default 1000, 1..100000) spawns N tasks that all
 * park at once and reports the resident memory they cost. The tasks of
 * all /memory requests together stay within the server-wide budget
 * (limits.c): four concurrent tasks=100000 used to take 1.6 GB.
 * GET /event-loop?mb=N (default 20, 1..256) runs a CPU-bound task, an IO
 * task and a mixed one side by side on this worker, with a probe task that
 * measures how late its 1 ms timers fire meanwhile (the loop lag).
 * Every number in the answers is measured by the request that reports it. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tern.h>
#include <tern/sync.h>

#include "demo.h"

#define MS 1000000ull

/* Resident set size in KiB, from /proc/self/statm (second field, pages).
 * statm is generated on read and never blocks on a disk, so reading it
 * from a handler costs a few microseconds. -1 when unavailable. */
static long rss_kb(void) {
    int fd = open("/proc/self/statm", O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    char buf[128];
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return -1;
    buf[n] = 0;
    unsigned long size, resident;
    if (sscanf(buf, "%lu %lu", &size, &resident) != 2) return -1;
    return (long)(resident * (unsigned long)sysconf(_SC_PAGESIZE) / 1024);
}

/* ---- /memory --------------------------------------------------------------- */

#define MEMORY_TASKS_DEFAULT 1000
#define MEMORY_TASKS_MAX 100000

typedef struct memory_run {
    tern_wg gate;           /* held at 1 until RSS is read: keeps every task parked */
    long started;           /* tasks that ran up to the gate */
    long ok;                /* tasks that slept their 100 µs and finished */
} memory_run;

static void *memory_task(void *arg) {
    memory_run *m = arg;
    m->started++;
    if (tern_wg_wait(&m->gate) < 0) return NULL;
    if (tern_sleep_us(100) == 0) m->ok++;
    return NULL;
}

/* RSS is process-wide: requests running at the same time on any worker
 * (another /memory, a load test) add to or take from the difference, so
 * read it on an otherwise quiet server. The stack pool also keeps up to
 * 1024 freed stacks resident per worker, so a repeat run of up to ~1000
 * tasks on the same worker reuses warm pages and shows only the task
 * handles; runs beyond the warm pool (or the first run) show the full
 * cost, about one page of stack per parked task. */
static void memory(tern_ctx *ctx) {
    unsigned long un;
    if (demo_query_uint(ctx, "tasks", MEMORY_TASKS_DEFAULT, 1, MEMORY_TASKS_MAX, &un) < 0) return;
    long n = (long)un;
    demo_grant g;
    long kib = n * DEMO_TASK_KIB + (n * (long)sizeof(tern_task *) + 1023) / 1024;
    if (demo_budget_take(ctx, &g, kib, 0) < 0) return;
    tern_task **tasks = malloc((size_t)n * sizeof *tasks);
    if (!tasks) {
        demo_budget_give(&g);
        tern_resp_text(ctx, 503, "out of memory\n");
        return;
    }
    /* touch the handle array first so its pages are not counted per task */
    memset(tasks, 0, (size_t)n * sizeof *tasks);
    memory_run m = {.started = 0, .ok = 0};
    tern_wg_init(&m.gate);
    tern_wg_add(&m.gate, 1);

    long before = rss_kb();
    uint64_t t0 = tern_clock_ns();
    long created = 0;
    while (created < n && (tasks[created] = tern_spawn(memory_task, &m)) != NULL) created++;
    /* each spawned task runs once up to the gate on the next loop passes;
     * all of them are alive and parked when started == created */
    int cancelled = 0;
    while (m.started < created) {
        if (tern_yield() < 0) {
            cancelled = 1;
            break;
        }
    }
    long peak = rss_kb();
    uint64_t t_peak = tern_clock_ns();
    tern_wg_done(&m.gate);
    /* tasks use m on this stack: join_all waits for all of them, even if
     * this request is cancelled meanwhile */
    int r = tern_join_all(tasks, (size_t)created, NULL);
    uint64_t t1 = tern_clock_ns();
    long after = rss_kb();
    free(tasks);
    demo_budget_give(&g);
    if (cancelled || r < 0) {
        tern_resp_text(ctx, 503, "cancelled\n");
        return;
    }
    long used_kb = (before >= 0 && peak >= 0) ? peak - before : 0;
    long per_task = created ? used_kb * 1024 / created : 0;
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    tern_resp_printf(ctx,
                     "{\"tasks_created\":%ld,\"successful_tasks\":%ld,\"memory_used_kb\":%ld,"
                     "\"memory_per_task_bytes\":%ld,\"rss_before_kb\":%ld,\"rss_peak_kb\":%ld,"
                     "\"rss_after_kb\":%ld,\"spawn_to_all_parked_ms\":%.2f,\"elapsed_ms\":%.2f,"
                     "\"worker\":%d}",
                     created, m.ok, used_kb, per_task, before, peak, after,
                     (double)(t_peak - t0) / 1e6, (double)(t1 - t0) / 1e6, tern_worker_id());
}

/* ---- /event-loop -------------------------------------------------------------- */

#define LAG_SAMPLES_MAX 4096

typedef struct loop_run {
    int remaining;              /* workload tasks still running */
    /* (a) CPU-bound */
    uint64_t cpu_bytes, cpu_hash, cpu_ns, cpu_busy_ns;
    unsigned long cpu_yields;
    /* (b) IO */
    uint64_t io_ns;
    int io_sleeps;
    /* (c) mixed */
    uint64_t mixed_ns, mixed_work_ns;
    int mixed_rounds;
    /* loop lag probe */
    uint32_t lag_us[LAG_SAMPLES_MAX];
    size_t lag_n;
    uint64_t lag_max_ns, lag_sum_ns;
} loop_run;

/* FNV-1a 64 over `len` pseudo-random bytes (xorshift64*), continuing from
 * *state and *hash: real work whose result the answer shows. */
static void hash_chunk(uint64_t *state, uint64_t *hash, size_t len) {
    unsigned char buf[4096];
    uint64_t x = *state, h = *hash;
    for (size_t i = 0; i < len; i += 8) {
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        uint64_t v = x * 0x2545f4914f6cdd1dull;
        memcpy(buf + i, &v, 8);
    }
    for (size_t i = 0; i < len; i++) h = (h ^ buf[i]) * 0x100000001b3ull;
    *state = x;
    *hash = h;
}

/* (a) hashes cpu_bytes, yielding after each ~1 ms of work */
static void *cpu_task(void *arg) {
    loop_run *lr = arg;
    uint64_t state = 0x9e3779b97f4a7c15ull, hash = 0xcbf29ce484222325ull;
    uint64_t t0 = tern_clock_ns(), slice = t0, busy = 0;
    for (uint64_t done = 0; done < lr->cpu_bytes; done += 4096) {
        hash_chunk(&state, &hash, 4096);
        uint64_t now = tern_clock_ns();
        if (now - slice >= MS) {
            busy += now - slice;
            lr->cpu_yields++;
            if (tern_yield() < 0) break;
            slice = tern_clock_ns();
        }
    }
    uint64_t t1 = tern_clock_ns();
    lr->cpu_busy_ns = busy + (t1 - slice);
    lr->cpu_ns = t1 - t0;
    lr->cpu_hash = hash;
    lr->remaining--;
    return NULL;
}

/* (b) 100 sleeps of 1 ms */
static void *io_task(void *arg) {
    loop_run *lr = arg;
    uint64_t t0 = tern_clock_ns();
    for (int i = 0; i < 100; i++) {
        if (tern_sleep(1) < 0) break;
        lr->io_sleeps++;
    }
    lr->io_ns = tern_clock_ns() - t0;
    lr->remaining--;
    return NULL;
}

/* (c) 10 x (1 ms of hashing + 2 ms of sleep) */
static void *mixed_task(void *arg) {
    loop_run *lr = arg;
    uint64_t state = 42, hash = 0xcbf29ce484222325ull;
    uint64_t t0 = tern_clock_ns();
    for (int i = 0; i < 10; i++) {
        uint64_t w0 = tern_clock_ns();
        while (tern_clock_ns() - w0 < MS) hash_chunk(&state, &hash, 4096);
        lr->mixed_work_ns += tern_clock_ns() - w0;
        if (tern_sleep(2) < 0) break;
        lr->mixed_rounds++;
    }
    lr->mixed_ns = tern_clock_ns() - t0;
    lr->remaining--;
    (void)hash;
    return NULL;
}

/* the probe: sleeps 1 ms again and again and records how late it woke */
static void *lag_probe(void *arg) {
    loop_run *lr = arg;
    while (lr->remaining > 0) {
        uint64_t t0 = tern_clock_ns();
        if (tern_sleep(1) < 0) break;
        uint64_t late = tern_clock_ns() - t0;
        late = late > MS ? late - MS : 0;
        if (late > lr->lag_max_ns) lr->lag_max_ns = late;
        lr->lag_sum_ns += late;
        if (lr->lag_n < LAG_SAMPLES_MAX) lr->lag_us[lr->lag_n++] = (uint32_t)(late / 1000);
    }
    return NULL;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static void event_loop(tern_ctx *ctx) {
    unsigned long mb;
    if (demo_query_uint(ctx, "mb", 20, 1, 256, &mb) < 0) return;
    demo_grant g;
    long kib = 4 * DEMO_TASK_KIB + (long)(sizeof(loop_run) + 1023) / 1024;
    if (demo_budget_take(ctx, &g, kib, (long)mb) < 0) return;
    /* 16 KiB of lag samples: on the heap, not on the handler's stack */
    loop_run *lr = calloc(1, sizeof *lr);
    if (!lr) {
        demo_budget_give(&g);
        tern_resp_text(ctx, 503, "out of memory\n");
        return;
    }
    lr->cpu_bytes = (uint64_t)mb << 20;
    lr->remaining = 3;
    uint64_t t0 = tern_clock_ns();
    tern_task *ts[4] = {tern_spawn(lag_probe, lr), tern_spawn(cpu_task, lr),
                        tern_spawn(io_task, lr), tern_spawn(mixed_task, lr)};
    size_t spawned = 0;
    for (size_t i = 0; i < 4; i++) spawned += ts[i] != NULL;
    if (spawned < 4) {
        /* a workload that never started would leave the probe running */
        for (size_t i = 1; i < 4; i++)
            if (!ts[i]) lr->remaining--;
    }
    int r = tern_join_all(ts, 4, NULL); /* NULL entries are skipped */
    uint64_t total = tern_clock_ns() - t0;
    demo_budget_give(&g);
    if (r < 0 || spawned < 4) {
        free(lr);
        tern_resp_text(ctx, 503, r < 0 ? "cancelled\n" : "out of memory\n");
        return;
    }
    uint32_t p99 = 0, p50 = 0;
    if (lr->lag_n) {
        qsort(lr->lag_us, lr->lag_n, sizeof lr->lag_us[0], cmp_u32);
        size_t i99 = (lr->lag_n * 99 + 99) / 100; /* ceil(0.99 n), nearest rank */
        p99 = lr->lag_us[i99 - 1];
        p50 = lr->lag_us[(lr->lag_n + 1) / 2 - 1];
    }
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    tern_resp_printf(
        ctx,
        "{\"cpu_task_ms\":%.2f,\"io_task_ms\":%.2f,\"mixed_task_ms\":%.2f,\"total_ms\":%.2f,"
        "\"loop_lag_max_us\":%" PRIu64 ",\"loop_lag_p99_us\":%" PRIu32 ",\"loop_lag_p50_us\":%" PRIu32
        ",\"loop_lag_mean_us\":%" PRIu64 ",\"loop_lag_samples\":%zu,"
        "\"cpu_task\":{\"bytes_hashed\":%" PRIu64 ",\"fnv1a64\":\"%016" PRIx64
        "\",\"busy_ms\":%.2f,\"yields\":%lu},"
        "\"io_task\":{\"sleeps\":%d,\"requested_ms\":100},"
        "\"mixed_task\":{\"rounds\":%d,\"work_ms\":%.2f,\"requested_sleep_ms\":20},"
        "\"worker\":%d}",
        (double)lr->cpu_ns / 1e6, (double)lr->io_ns / 1e6, (double)lr->mixed_ns / 1e6,
        (double)total / 1e6, lr->lag_max_ns / 1000, p99, p50,
        lr->lag_n ? lr->lag_sum_ns / lr->lag_n / 1000 : 0, lr->lag_n, lr->cpu_bytes, lr->cpu_hash,
        (double)lr->cpu_busy_ns / 1e6, lr->cpu_yields, lr->io_sleeps, lr->mixed_rounds,
        (double)lr->mixed_work_ns / 1e6, tern_worker_id());
    free(lr);
}

int demo_register_runtime(tern_server *s) {
    int r = tern_route(s, TERN_GET, "/memory", memory);
    if (r == 0) r = tern_route(s, TERN_GET, "/event-loop", event_loop);
    return r;
}
