/* Guard pages and stack overflow reports (rt/coro.c, rt/overflow.c).
 *
 * Each case that must die runs in a fork()ed child with stderr captured:
 * a coroutine that recurses or puts a large array on its stack dies of
 * SIGSEGV with "tern: stack overflow in <label>"; a fault that is not an
 * overflow dies without it; past the guard budget stacks are carved packed,
 * counted, and the fallback is announced once. */
#include "check.h"
#include "rt/coro.h"
#include "rt/overflow.h"
#include "rt/sched.h"

#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rt/sanitizers.h"
#define UNDER_ASAN TERN_ASAN
/* ThreadSanitizer (make tsan) takes the re-raised SIGSEGV over and exits
 * with its own status after tern's message */
#define UNDER_TSAN TERN_TSAN

#define STACK_64K (64 * 1024)
#define LABEL "the handler of GET /test/overflow"

/* Runs fn() in a child with stderr captured into err; returns the status. */
static int in_child(void (*fn)(void), char *err, size_t errlen) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        close(fds[1]);
        fn();
        _exit(check_done());
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    char sink[4096];
    while (n + 1 < errlen && (r = read(fds[0], err + n, errlen - 1 - n)) > 0) n += (size_t)r;
    err[n] = 0;
    while (read(fds[0], sink, sizeof sink) > 0) /* drain: no SIGPIPE in the child */
        ;
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

/* ---- what a handler does wrong ------------------------------------------ */

static volatile int sink_int;
static volatile int depth_limit = 1 << 30; /* never reached: the stack ends first */
static int *volatile bad_pointer = (int *)16;

__attribute__((noinline)) static int recurse(int depth) {
    volatile char frame[1024];
    frame[0] = (char)depth;
    frame[sizeof frame - 1] = (char)depth;
    if (depth >= depth_limit) return 0;
    return recurse(depth + 1) + frame[0]; /* not a tail call */
}

static void recurse_fn(void *arg) {
    (void)arg;
    sink_int = recurse(0);
}

/* The case: a local array larger than the stack. Without
 * -fstack-clash-protection the frame jumps past the guard page; memset then
 * runs up through it (or the call's return address lands below the stack). */
__attribute__((noinline)) static void big_array_fn(void *arg) {
    (void)arg;
    volatile char big[300 * 1024];
    /* through the volatile lvalue: a memset on a cast pointer lets the
     * optimiser drop the array (clang -O2 did) */
    for (size_t i = 0; i < sizeof big; i += 256) big[i] = 1;
    sink_int = big[12345];
}

static void null_fn(void *arg) {
    (void)arg;
    *(volatile int *)bad_pointer = 1;
}

static void (*child_body)(void *);

static void run_on_sched(void) {
    static tern__sched s;
    if (tern__sched_init(&s, 0, STACK_64K) < 0) _exit(90);
    tern__sched_self = &s;
    if (tern__overflow_thread_start() < 0) _exit(91);
    tern_coro *c = tern__sched_coro_new(&s, child_body, NULL);
    if (!c) _exit(92);
    if (!tern__coro_guarded(c)) _exit(93);
    c->label = LABEL;
    tern__sched_run_now(&s, c);
    _exit(0); /* not reached: the coroutine dies */
}

static int died_of_overflow(int st, const char *err) {
    if (UNDER_TSAN)
        return (WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0)) &&
               strstr(err, "tern: stack overflow in " LABEL) != NULL;
    if (UNDER_ASAN) /* ASan's own handler reports it and exits */
        return (WIFSIGNALED(st) || (WIFEXITED(st) && WEXITSTATUS(st) != 0)) &&
               (strstr(err, "stack-overflow") || strstr(err, "SEGV"));
    return WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV &&
           strstr(err, "tern: stack overflow in " LABEL " (stack 64 KiB): raise tern_config.stack_size") != NULL;
}

static void test_recursion_reported(void) {
    char err[4096];
    child_body = recurse_fn;
    int st = in_child(run_on_sched, err, sizeof err);
    CHECK(died_of_overflow(st, err));
    if (!died_of_overflow(st, err)) fprintf(stderr, "status %#x, child stderr:\n%s\n", st, err);
}

static void test_big_array_reported(void) {
    char err[4096];
    child_body = big_array_fn;
    int st = in_child(run_on_sched, err, sizeof err);
    CHECK(died_of_overflow(st, err));
    if (!died_of_overflow(st, err)) fprintf(stderr, "status %#x, child stderr:\n%s\n", st, err);
}

/* Other faults pass through untouched: same signal, no overflow message. */
static void test_other_fault_not_reported(void) {
    char err[4096];
    child_body = null_fn;
    int st = in_child(run_on_sched, err, sizeof err);
    CHECK(strstr(err, "stack overflow") == NULL);
    CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV) ||
          ((UNDER_ASAN || UNDER_TSAN) && WIFEXITED(st) && WEXITSTATUS(st) != 0 && strstr(err, "SEGV")));
}

/* ---- the budget and the fallback ---------------------------------------- */

static void fallback_body(void) {
    uint64_t g0, u0, g1, u1;
    tern__stack_guard_stats(&g0, &u0);
    tern__stack_guard_set_budget(3);
    tern__stack_pool a, b;
    CHECK_INT(tern__stack_pool_init(&a, STACK_64K, 0), 0);
    CHECK_INT(tern__stack_pool_init(&b, STACK_64K, 0), 0);
    tern_coro *c[8];
    for (int i = 0; i < 8; i++) {
        c[i] = tern__coro_create(&a, NULL, NULL);
        CHECK(c[i] != NULL);
        CHECK_INT(tern__coro_guarded(c[i]), i < 3);
        tern__coro_check(c[i]); /* packed ones got their canary */
    }
    /* a second pool (another worker) finds the budget spent too; one warning */
    tern_coro *d = tern__coro_create(&b, NULL, NULL);
    CHECK(d != NULL && !tern__coro_guarded(d));
    tern__stack_guard_stats(&g1, &u1);
    CHECK_INT(g1 - g0, 3);
    CHECK_INT(u1 - u0, 6);
    CHECK_INT(a.n_regions, 2);
    CHECK_INT(a.regions[0].guards, 3);
    CHECK_INT(a.regions[1].guards, 0);
    /* the guard is there: PROT_NONE right under a guarded stack */
    unsigned char v;
    char *guard = tern__coro_stack_lo(c[0]) - a.page_size;
    CHECK(mincore(guard, a.page_size, &v) == 0); /* mapped... */
    FILE *f = fopen("/proc/self/maps", "r");
    char line[256];
    int found = 0;
    while (f && fgets(line, sizeof line, f)) {
        unsigned long lo, hi;
        char perms[8];
        if (sscanf(line, "%lx-%lx %7s", &lo, &hi, perms) == 3 && (uintptr_t)guard >= lo &&
            (uintptr_t)guard < hi)
            found = !strcmp(perms, "---p"); /* ...and not accessible */
    }
    if (f) fclose(f);
    CHECK(found);
    /* guarded and packed stacks both recycle and go cold */
    for (int i = 0; i < 8; i++) tern__coro_release(c[i]);
    tern__coro_release(d);
    CHECK_INT(a.n_cold, 8);
    tern_coro *again = tern__coro_create(&a, NULL, NULL);
    CHECK(again == c[7] && !tern__coro_guarded(again));
    tern__coro_release(again);
    tern__stack_pool_destroy(&a);
    tern__stack_pool_destroy(&b);
    tern__stack_guard_stats(&g1, &u1);
    CHECK_INT(g1, g0); /* destroy gives the stacks and the budget back */
    CHECK_INT(u1, u0);
    /* budget back: a new pool is guarded again */
    tern__stack_guard_set_budget(-1);
    CHECK_INT(tern__stack_pool_init(&a, STACK_64K, 0), 0);
    tern_coro *e = tern__coro_create(&a, NULL, NULL);
    CHECK(e != NULL && tern__coro_guarded(e));
    tern__coro_release(e);
    tern__stack_pool_destroy(&a);
}

static void test_fallback(void) {
    char err[4096];
    int st = in_child(fallback_body, err, sizeof err);
    CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
    const char *w = strstr(err, "allows guard pages for");
    CHECK(w != NULL && strstr(err, "tern: vm.max_map_count=") != NULL);
    CHECK(w && strstr(w + 1, "allows guard pages for") == NULL); /* once */
    CHECK(strstr(err, "further stacks rely on the canary") != NULL);
    if (!(WIFEXITED(st) && WEXITSTATUS(st) == 0)) fprintf(stderr, "child:\n%s\n", err);
}

/* Guarded stacks keep one page resident when parked shallow: nothing is
 * written to their bottom page (no canary there). */
static void test_guarded_bottom_untouched(void) {
    tern__stack_pool p;
    CHECK_INT(tern__stack_pool_init(&p, 256 * 1024, 4), 0);
    tern_coro *c = tern__coro_create(&p, NULL, NULL);
    CHECK(c != NULL);
    if (!c || !tern__coro_guarded(c)) return; /* budget spent by the machine: nothing to test */
    unsigned char v = 1;
    CHECK(mincore(tern__coro_stack_lo(c), p.page_size, &v) == 0 && !(v & 1));
    tern__coro_release(c);
    tern__stack_pool_destroy(&p);
}

int main(void) {
    test_guarded_bottom_untouched();
    test_fallback();
    test_recursion_reported();
    test_big_array_reported();
    test_other_fault_not_reported();
    return check_done();
}
