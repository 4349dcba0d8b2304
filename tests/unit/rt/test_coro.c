/* Coroutine switch and stack pool.
 *
 * Standalone build (from /work/main); the switch is assembly, so link it:
 *   clang -std=gnu11 -g -O1 -D_GNU_SOURCE -fsanitize=address,undefined \
 *     -fno-sanitize-recover=undefined -Iinclude -Isrc -Itests/unit \
 *     tests/unit/rt/test_coro.c src/rt/coro.c src/rt/coro_x86_64.S -o /tmp/test_coro
 * Under CMake the test links tern__static, which holds both. */
#include "check.h"
#include "rt/coro.h"

#include <errno.h>
#include <signal.h>
#include <stdalign.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "rt/sanitizers.h"
#define UNDER_ASAN TERN_ASAN

#define STACK_256K (256 * 1024)

/* One coroutine plus the context that resumes it. */
struct pair {
    tern_coro *c;
    void *main_sp;
    long value; /* passed back and forth */
    long count;
    int done;
};

static void yield_to_main(struct pair *p) {
    tern__coro_switch(&p->c->sp, p->main_sp);
}
static void resume(struct pair *p) {
    tern__coro_switch(&p->main_sp, p->c->sp);
}

/* ---- ping-pong -------------------------------------------------------- */

static void pingpong_fn(void *arg) {
    struct pair *p = arg;
    for (;;) {
        p->value = p->value * 2 + 1;
        p->count++;
        yield_to_main(p);
    }
}

static void test_ping_pong(void) {
    tern__stack_pool pool;
    CHECK_INT(tern__stack_pool_init(&pool, STACK_256K, 4), 0);
    CHECK_INT(pool.stack_size, STACK_256K);
    struct pair p = {0};
    p.c = tern__coro_create(&pool, pingpong_fn, &p);
    CHECK(p.c != NULL);
    CHECK(p.c->fn == pingpong_fn && p.c->arg == &p && p.c->pool == &pool);
    /* control block at the top, canary word at the bottom */
    CHECK((char *)p.c + sizeof *p.c <= tern__coro_stack_lo(p.c) + pool.stack_size);
    CHECK((char *)p.c >= tern__coro_stack_lo(p.c) + pool.stack_size - TERN_CORO_CTRL_BYTES);
    CHECK((uintptr_t)p.c % 64 == 0);
    int ok = 1;
    for (long i = 0; i < 1000; i++) {
        long before = p.value = i;
        resume(&p);
        if (p.value != before * 2 + 1 || p.count != i + 1) ok = 0;
        tern__coro_check(p.c);
    }
    CHECK(ok);
    CHECK_INT(p.count, 1000);
    CHECK_INT(pool.n_live, 1);
    tern__coro_release(p.c);
    CHECK_INT(pool.n_live, 0);
    tern__stack_pool_destroy(&pool);
}

/* ---- many coroutines, interleaved, switching to each other ------------ */

#define RING 64
#define ROUNDS 200

struct ring {
    tern_coro *c[RING];
    void *main_sp;
    int log[RING * ROUNDS];
    int n_log;
    int round[RING];
};
struct ring_arg {
    struct ring *r;
    int id;
};

static void ring_fn(void *arg) {
    struct ring_arg *a = arg;
    struct ring *r = a->r;
    int id = a->id;
    long local = (long)id * 1000003; /* must survive every switch */
    for (;;) {
        r->log[r->n_log++] = id * 100000 + r->round[id] + (int)(local - (long)id * 1000003);
        r->round[id]++;
        /* coroutine-to-coroutine: the last one in the ring returns to main */
        void *to = id + 1 < RING ? r->c[id + 1]->sp : r->main_sp;
        tern__coro_switch(&r->c[id]->sp, to);
    }
}

static void test_interleaved(void) {
    tern__stack_pool pool;
    CHECK_INT(tern__stack_pool_init(&pool, 64 * 1024, 8), 0);
    static struct ring r;
    struct ring_arg args[RING];
    for (int i = 0; i < RING; i++) {
        args[i] = (struct ring_arg){&r, i};
        r.c[i] = tern__coro_create(&pool, ring_fn, &args[i]);
        CHECK(r.c[i] != NULL);
    }
    for (int round = 0; round < ROUNDS; round++) tern__coro_switch(&r.main_sp, r.c[0]->sp);
    CHECK_INT(r.n_log, RING * ROUNDS);
    int ok = 1;
    for (int round = 0; round < ROUNDS; round++)
        for (int i = 0; i < RING; i++)
            if (r.log[round * RING + i] != i * 100000 + round) ok = 0;
    CHECK(ok);
    for (int i = 0; i < RING; i++) {
        tern__coro_check(r.c[i]);
        CHECK_INT(r.round[i], ROUNDS);
        tern__coro_release(r.c[i]);
    }
    CHECK_INT(pool.n_live, 0);
    CHECK_INT(pool.n_warm, 8);
    CHECK_INT(pool.n_cold, RING - 8);
    tern__stack_pool_destroy(&pool);
}

/* ---- callee-saved registers ------------------------------------------- */

/* regs_switch(save, to, in, out): loads every callee-saved register from
 * in[], calls tern__coro_switch, and when resumed stores those registers into
 * out[]. Both sides use it with different patterns, so each side sees its own
 * pattern back only if the switch saved and restored every one of them. */
void regs_switch(void **save, void *to, const uint64_t *in, uint64_t *out);
#if defined(__x86_64__)
#define N_REGS 6 /* rbx rbp r12 r13 r14 r15 */
__asm__(".text\n"
        ".p2align 4\n"
        ".globl regs_switch\n"
        ".type regs_switch, @function\n"
        "regs_switch:\n"
        "    pushq %rbp\n    pushq %rbx\n    pushq %r12\n"
        "    pushq %r13\n    pushq %r14\n    pushq %r15\n"
        "    pushq %rcx\n" /* out; also makes rsp 16-aligned for the call */
        "    movq 0(%rdx), %rbx\n    movq 8(%rdx), %rbp\n    movq 16(%rdx), %r12\n"
        "    movq 24(%rdx), %r13\n    movq 32(%rdx), %r14\n    movq 40(%rdx), %r15\n"
        "    call tern__coro_switch@PLT\n"
        "    movq (%rsp), %rcx\n"
        "    movq %rbx, 0(%rcx)\n    movq %rbp, 8(%rcx)\n    movq %r12, 16(%rcx)\n"
        "    movq %r13, 24(%rcx)\n    movq %r14, 32(%rcx)\n    movq %r15, 40(%rcx)\n"
        "    addq $8, %rsp\n"
        "    popq %r15\n    popq %r14\n    popq %r13\n"
        "    popq %r12\n    popq %rbx\n    popq %rbp\n"
        "    ret\n"
        ".size regs_switch, .-regs_switch\n");
#elif defined(__aarch64__)
#define N_REGS 19 /* x19-x28, x29, d8-d15 */
__asm__(".text\n"
        ".p2align 4\n"
        ".globl regs_switch\n"
        ".type regs_switch, %function\n"
        "regs_switch:\n"
        "    stp x29, x30, [sp, #-176]!\n"
        "    stp x19, x20, [sp, #16]\n    stp x21, x22, [sp, #32]\n"
        "    stp x23, x24, [sp, #48]\n    stp x25, x26, [sp, #64]\n"
        "    stp x27, x28, [sp, #80]\n    stp d8, d9, [sp, #96]\n"
        "    stp d10, d11, [sp, #112]\n    stp d12, d13, [sp, #128]\n"
        "    stp d14, d15, [sp, #144]\n    str x3, [sp, #160]\n"
        "    ldp x19, x20, [x2, #0]\n    ldp x21, x22, [x2, #16]\n"
        "    ldp x23, x24, [x2, #32]\n    ldp x25, x26, [x2, #48]\n"
        "    ldp x27, x28, [x2, #64]\n    ldr x29, [x2, #80]\n"
        "    ldp d8, d9, [x2, #88]\n    ldp d10, d11, [x2, #104]\n"
        "    ldp d12, d13, [x2, #120]\n    ldp d14, d15, [x2, #136]\n"
        "    bl tern__coro_switch\n"
        "    ldr x3, [sp, #160]\n"
        "    stp x19, x20, [x3, #0]\n    stp x21, x22, [x3, #16]\n"
        "    stp x23, x24, [x3, #32]\n    stp x25, x26, [x3, #48]\n"
        "    stp x27, x28, [x3, #64]\n    str x29, [x3, #80]\n"
        "    stp d8, d9, [x3, #88]\n    stp d10, d11, [x3, #104]\n"
        "    stp d12, d13, [x3, #120]\n    stp d14, d15, [x3, #136]\n"
        "    ldp x19, x20, [sp, #16]\n    ldp x21, x22, [sp, #32]\n"
        "    ldp x23, x24, [sp, #48]\n    ldp x25, x26, [sp, #64]\n"
        "    ldp x27, x28, [sp, #80]\n    ldp d8, d9, [sp, #96]\n"
        "    ldp d10, d11, [sp, #112]\n    ldp d12, d13, [sp, #128]\n"
        "    ldp d14, d15, [sp, #144]\n"
        "    ldp x29, x30, [sp], #176\n"
        "    ret\n"
        ".size regs_switch, .-regs_switch\n");
#endif

struct regs_ctx {
    struct pair p;
    uint64_t in[N_REGS], out[N_REGS];
    int rounds_ok;
};

static void regs_fn(void *arg) {
    struct regs_ctx *x = arg;
    for (unsigned round = 0;; round++) {
        for (int i = 0; i < N_REGS; i++)
            x->in[i] = UINT64_C(0xbad0000000000000) ^ ((uint64_t)round << 16) ^ (uint64_t)i;
        regs_switch(&x->p.c->sp, x->p.main_sp, x->in, x->out);
        /* resumed: our garbage must have come back intact too */
        int ok = 1;
        for (int i = 0; i < N_REGS; i++)
            if (x->out[i] != x->in[i]) ok = 0;
        x->rounds_ok += ok;
    }
}

/* Keeps many values live across a switch so the compiler parks them in
 * callee-saved registers (and spills the rest around the call). */
static double live_values_across_switch(struct pair *p, volatile double *seed) {
    double d0 = seed[0], d1 = seed[1] * 3, d2 = seed[2] + 7, d3 = seed[3] / 2;
    long a = (long)seed[0] + 11, b = (long)seed[1] * 13, c = (long)seed[2] - 17;
    long d = (long)seed[3] ^ 0x5a5a, e = a * b, f = c + d;
    resume(p);
    return d0 + d1 + d2 + d3 + (double)(a + b + c + d + e + f);
}

static void clobber_fn(void *arg) {
    struct pair *p = arg;
    for (;;) {
        /* Trash every callee-saved register this side can name. */
#if defined(__x86_64__)
        __asm__ volatile("movq $-1, %%rbx\n movq $-2, %%r12\n movq $-3, %%r13\n"
                         "movq $-4, %%r14\n movq $-5, %%r15\n"
                         :
                         :
                         : "rbx", "r12", "r13", "r14", "r15", "memory");
#elif defined(__aarch64__)
        __asm__ volatile("mov x19, #-1\n mov x20, #-2\n mov x21, #-3\n mov x22, #-4\n"
                         "mov x23, #-5\n mov x24, #-6\n mov x25, #-7\n mov x26, #-8\n"
                         "mov x27, #-9\n mov x28, #-10\n fmov d8, #-1.0\n fmov d9, #-2.0\n"
                         "fmov d10, #-3.0\n fmov d11, #-4.0\n fmov d12, #-5.0\n"
                         "fmov d13, #-6.0\n fmov d14, #-7.0\n fmov d15, #-8.0\n"
                         :
                         :
                         : "x19", "x20", "x21", "x22", "x23", "x24", "x25", "x26", "x27", "x28",
                           "d8", "d9", "d10", "d11", "d12", "d13", "d14", "d15", "memory");
#endif
        p->count++;
        yield_to_main(p);
    }
}

static void test_callee_saved(void) {
    tern__stack_pool pool;
    CHECK_INT(tern__stack_pool_init(&pool, STACK_256K, 4), 0);

    struct regs_ctx x = {0};
    x.p.c = tern__coro_create(&pool, regs_fn, &x);
    CHECK(x.p.c != NULL);
    uint64_t mine[N_REGS], back[N_REGS];
    int main_ok = 1;
    for (unsigned round = 0; round < 100; round++) {
        for (int i = 0; i < N_REGS; i++)
            mine[i] = UINT64_C(0x600d000000000000) ^ ((uint64_t)round << 20) ^ ((uint64_t)i << 4);
        regs_switch(&x.p.main_sp, x.p.c->sp, mine, back);
        for (int i = 0; i < N_REGS; i++)
            if (back[i] != mine[i]) {
                if (main_ok)
                    fprintf(stderr, "reg %d: %#" PRIx64 " != %#" PRIx64 "\n", i, back[i], mine[i]);
                main_ok = 0;
            }
    }
    CHECK(main_ok);
    CHECK_INT(x.rounds_ok, 99); /* the 100th resume has not happened */
    tern__coro_release(x.p.c);

    struct pair p = {0};
    p.c = tern__coro_create(&pool, clobber_fn, &p);
    CHECK(p.c != NULL);
    volatile double seed[4] = {1.5, 2.25, -3.0, 40.0};
    double expect = 0;
    {
        double d0 = seed[0], d1 = seed[1] * 3, d2 = seed[2] + 7, d3 = seed[3] / 2;
        long a = (long)seed[0] + 11, b = (long)seed[1] * 13, c = (long)seed[2] - 17;
        long d = (long)seed[3] ^ 0x5a5a, e = a * b, f = c + d;
        expect = d0 + d1 + d2 + d3 + (double)(a + b + c + d + e + f);
    }
    int ok = 1;
    for (int i = 0; i < 50; i++)
        if (live_values_across_switch(&p, seed) != expect) ok = 0;
    CHECK(ok);
    CHECK_INT(p.count, 50);
    tern__coro_release(p.c);
    tern__stack_pool_destroy(&pool);
}

/* ---- alignment -------------------------------------------------------- */

typedef double v2d __attribute__((vector_size(16)));

struct align_ctx {
    struct pair p;
    int max_align_ok, vec_ok, frame_ok;
    char printed[64];
};

__attribute__((noinline)) static int frame_aligned(void) {
    /* With a frame pointer, fp = sp after pushing it: 16-aligned iff the
     * caller's sp was aligned at the call, which is what the ABI promises. */
    return (uintptr_t)__builtin_frame_address(0) % 16 == 0;
}

static void align_fn(void *arg) {
    struct align_ctx *x = arg;
    alignas(max_align_t) volatile char buf[32];
    x->max_align_ok = (uintptr_t)buf % alignof(max_align_t) == 0;
    /* Aligned vector loads/stores on stack locals (movapd on x86-64) fault
     * on a misaligned stack. */
    volatile v2d a = {1.25, 2.5}, b = {4.0, 8.0};
    v2d s = a + b;
    x->vec_ok = s[0] == 5.25 && s[1] == 10.5;
    /* varargs with doubles: glibc's printf spills xmm registers with movaps */
    snprintf(x->printed, sizeof x->printed, "%.3f %g", 3.14159, s[1]);
    x->frame_ok = frame_aligned();
    yield_to_main(&x->p);
    for (;;) yield_to_main(&x->p);
}

static void test_alignment(void) {
    tern__stack_pool pool;
    CHECK_INT(tern__stack_pool_init(&pool, 20000, 1), 0);
    CHECK_INT(pool.stack_size % pool.page_size, 0);
    CHECK(pool.stack_size >= 20000);
    struct align_ctx x = {0};
    x.p.c = tern__coro_create(&pool, align_fn, &x);
    CHECK(x.p.c != NULL);
    resume(&x.p);
    CHECK(x.max_align_ok);
    CHECK(x.vec_ok);
    CHECK(x.frame_ok);
    CHECK_STR(x.printed, "3.142 10.5");
    tern__coro_release(x.p.c);
    tern__stack_pool_destroy(&pool);
    tern__stack_pool small;
    CHECK_INT(tern__stack_pool_init(&small, 100, 0), 0);
    CHECK_INT(small.stack_size, 16 * 1024);
    tern__stack_pool_destroy(&small);
    CHECK_INT(tern__stack_pool_init(&small, (size_t)4 << 30, 0), -EINVAL);
}

/* ---- release, reuse, keep_warm -> cold -------------------------------- */

#define DEEP (64 * 1024)

static void deep_fn(void *arg) {
    struct pair *p = arg;
    volatile char big[DEEP];
    for (size_t i = 0; i < sizeof big; i += 512) big[i] = (char)(i + 1);
    p->count++;
    yield_to_main(p);
    for (;;) yield_to_main(p);
}

/* Resident pages in the part of c's stack that release may return. */
static size_t resident_pages_in(const tern__stack_pool *pool, const tern_coro *c) {
    /* from the address alone: a cold stack's control block may be gone */
    size_t page = pool->page_size;
    uintptr_t lo = (uintptr_t)c + TERN_CORO_CTRL_BYTES - pool->stack_size;
    uintptr_t from = (lo + page - 1) & ~(uintptr_t)(page - 1);
    uintptr_t to = (uintptr_t)c & ~(uintptr_t)(page - 1);
    size_t n = (to - from) / page, res = 0;
    unsigned char *vec = malloc(n ? n : 1);
    if (!vec || mincore((void *)from, to - from, vec) != 0) {
        free(vec);
        return (size_t)-1;
    }
    for (size_t i = 0; i < n; i++) res += vec[i] & 1;
    free(vec);
    return res;
}

static size_t resident_pages(const tern_coro *c) { return resident_pages_in(c->pool, c); }

static void test_reuse_and_cold(void) {
    tern__stack_pool pool;
    CHECK_INT(tern__stack_pool_init(&pool, STACK_256K, 2), 0);
    struct pair p[5] = {{0}};
    for (int i = 0; i < 5; i++) {
        p[i].c = tern__coro_create(&pool, deep_fn, &p[i]);
        CHECK(p[i].c != NULL);
        resume(&p[i]);
        CHECK_INT(p[i].count, 1);
        size_t used = tern__coro_stack_size(p[i].c);
        CHECK(used >= DEEP && used < pool.stack_size);
        CHECK(resident_pages(p[i].c) >= DEEP / pool.page_size - 1);
    }
    CHECK_INT(pool.n_total, 5);
    CHECK_INT(pool.n_live, 5);
    tern_coro *c[5];
    for (int i = 0; i < 5; i++) {
        c[i] = p[i].c;
        tern__coro_release(c[i]);
    }
    CHECK_INT(pool.n_live, 0);
    CHECK_INT(pool.n_warm, 2);
    CHECK_INT(pool.n_cold, 3);
    /* first two released stay warm and resident, the other three went cold */
    CHECK(resident_pages(c[0]) >= DEEP / pool.page_size - 1);
    CHECK(resident_pages(c[1]) >= DEEP / pool.page_size - 1);
    for (int i = 2; i < 5; i++) CHECK_INT(resident_pages_in(&pool, c[i]), 0);
    /* c[2..4] are neighbours: their shared control/canary pages went too,
     * except the one c[2] shares with the warm c[1] below it */
    for (int i = 3; i < 5; i++) {
        unsigned char v = 1;
        uintptr_t top = (uintptr_t)c[i] & ~(uintptr_t)(pool.page_size - 1);
        CHECK(mincore((void *)top, pool.page_size, &v) == 0 && !(v & 1));
    }

    /* reuse: warm LIFO first, then cold LIFO, and nothing new is carved */
    tern_coro *expect_order[5] = {c[1], c[0], c[4], c[3], c[2]};
    struct pair q[5] = {{0}};
    for (int i = 0; i < 5; i++) {
        q[i].c = tern__coro_create(&pool, deep_fn, &q[i]);
        CHECK(q[i].c == expect_order[i]);
        resume(&q[i]);
        CHECK_INT(q[i].count, 1);
        tern__coro_check(q[i].c);
    }
    CHECK_INT(pool.n_total, 5);
    CHECK_INT(pool.n_warm + pool.n_cold, 0);
    for (int i = 0; i < 5; i++) tern__coro_release(q[i].c);
    tern__stack_pool_destroy(&pool);
}

/* ---- dying children: canary, returning fn, guard page ----------------- */

struct death {
    struct pair p;
    int how;
};

static void overflow_fn(void *arg) {
    struct death *d = arg;
    /* What a runaway frame does when it grows past the usable stack. */
    volatile char *lo = (volatile char *)tern__coro_stack_lo(d->p.c);
    if (d->how == 0)
        for (int i = 0; i < 64; i++) lo[i] = 'A';
    else
        lo[-1] = 'A'; /* below the stack: its guard page */
    yield_to_main(&d->p);
    for (;;) yield_to_main(&d->p);
}

static void returning_fn(void *arg) {
    (void)arg;
}

/* Runs body(how) in a child with stderr captured; returns its wait status. */
static int run_child(int how, char *err, size_t errlen) {
    int fds[2];
    if (pipe(fds) != 0) return -1;
    fflush(stderr);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        /* the canary guards packed stacks only */
        if (how == 0) tern__stack_guard_set_budget(0);
        tern__stack_pool pool;
        tern__stack_pool_init(&pool, 64 * 1024, 0);
        static struct death d;
        d.how = how;
        d.p.c = tern__coro_create(&pool, how == 2 ? returning_fn : overflow_fn, &d);
        tern__coro_check(d.p.c); /* fresh: must pass */
        resume(&d.p);
        tern__coro_check(d.p.c);
        _exit(0);
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t r;
    char sink[4096];
    while (n + 1 < errlen && (r = read(fds[0], err + n, errlen - 1 - n)) > 0) n += (size_t)r;
    err[n] = 0;
    while (read(fds[0], sink, sizeof sink) > 0) /* drain: the child must not get SIGPIPE */
        ;
    close(fds[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return st;
}

static void test_deaths(void) {
    char err[512];
    int st = run_child(0, err, sizeof err);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    CHECK(strstr(err, "tern: coroutine stack overflow") != NULL);

    st = run_child(2, err, sizeof err);
    CHECK(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT);
    CHECK(strstr(err, "coroutine function returned") != NULL);

    /* guarded by default: a write just below the stack faults */
    st = run_child(1, err, sizeof err);
    /* ASan turns the fault into a report and exit(1) */
    CHECK((WIFSIGNALED(st) && WTERMSIG(st) == SIGSEGV) ||
          (UNDER_ASAN && WIFEXITED(st) && WEXITSTATUS(st) != 0 && strstr(err, "SEGV")));
}

/* ---- 100,000 parked coroutines ---------------------------------------- */

#define N_PARKED 100000

struct parked {
    tern_coro *c;
    int id;
    int ok;
};
static void *parked_main_sp;

static void parked_fn(void *arg) {
    struct parked *x = arg;
    volatile int frame[32]; /* a small handler-sized frame */
    for (int i = 0; i < 32; i++) frame[i] = x->id + i;
    tern__coro_switch(&x->c->sp, parked_main_sp);
    int ok = 1;
    for (int i = 0; i < 32; i++)
        if (frame[i] != x->id + i) ok = 0;
    x->ok = ok;
    for (;;) tern__coro_switch(&x->c->sp, parked_main_sp);
}

static long vm_rss_kib(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kib = -1;
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "VmRSS: %ld kB", &kib) == 1) break;
    if (f) fclose(f);
    return kib;
}

static int count_maps(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    int n = 0, ch;
    while (f && (ch = fgetc(f)) != EOF) n += ch == '\n';
    if (f) fclose(f);
    return n;
}

static void test_100k_parked(void) {
    tern__stack_pool pool;
    CHECK_INT(tern__stack_pool_init(&pool, STACK_256K, 64), 0);
    struct parked *xs = calloc(N_PARKED, sizeof *xs);
    CHECK(xs != NULL);
    if (!xs) return;
    int maps_before = count_maps();
    long rss_before = vm_rss_kib();
    uint64_t guarded0, unguarded0, guarded1, unguarded1;
    tern__stack_guard_stats(&guarded0, &unguarded0);
    int created = 0;
    for (int i = 0; i < N_PARKED; i++) {
        xs[i].id = i;
        xs[i].c = tern__coro_create(&pool, parked_fn, &xs[i]);
        if (!xs[i].c) break;
        tern__coro_switch(&parked_main_sp, xs[i].c->sp);
        created++;
    }
    CHECK_INT(created, N_PARKED);
    long rss_after = vm_rss_kib();
    int maps_after = count_maps();
    tern__stack_guard_stats(&guarded1, &unguarded1);
    size_t guarded = (size_t)(guarded1 - guarded0), packed_regions = 0;
    for (size_t r = 0; r < pool.n_regions; r++) packed_regions += pool.regions[r].guards == 0;
    CHECK_INT(pool.n_live, created);
    long per = (rss_after - rss_before) * 1024 / (created ? created : 1);
    fprintf(stderr, "100k parked: %ld bytes RSS each, %zu regions, %zu guarded stacks, maps %d -> %d\n",
            per, pool.n_regions, guarded, maps_before, maps_after);
    /* guarded first, while the map budget lasts; packed after that */
    CHECK(guarded > 0 && guarded < (size_t)created);
    CHECK_INT(guarded + (size_t)(unguarded1 - unguarded0), (size_t)created);
    /* The layouts' promise, counted exactly: one resident stack page per
     * parked coroutine, guarded or packed (plus the first canary page of
     * each packed region). */
    size_t resident = 0;
    unsigned char *vec = malloc(pool.region_bytes / pool.page_size);
    CHECK(vec != NULL);
    for (size_t r = 0; vec && r < pool.n_regions; r++) {
        if (mincore(pool.regions[r].base, pool.region_bytes, vec) != 0) resident = (size_t)-1;
        for (size_t i = 0; i < pool.region_bytes / pool.page_size; i++) resident += vec[i] & 1;
    }
    free(vec);
    CHECK_INT(resident, (size_t)created + packed_regions);
    /* VmRSS also counts page tables' neighbours, ASan shadow (a page per
     * stack) and, under qemu-user, the emulator's own per-page records. */
    CHECK(per <= (long)pool.page_size * (UNDER_ASAN ? 3 : 2));
    /* two mappings per guarded stack; packed regions merge into few VMAs:
     * within vm.max_map_count */
    CHECK((size_t)(maps_after - maps_before) < 2 * guarded + 1000);
    int all_ok = 1;
    for (int i = 0; i < created; i++) {
        tern__coro_switch(&parked_main_sp, xs[i].c->sp);
        tern__coro_check(xs[i].c);
        all_ok &= xs[i].ok;
    }
    CHECK(all_ok);
    for (int i = 0; i < created; i++) tern__coro_release(xs[i].c);
    CHECK_INT(pool.n_live, 0);
    CHECK_INT(pool.n_warm, 64);
    CHECK_INT(pool.n_cold, created - 64);
    /* after the spike, the cold stacks hold no memory at all: what stays
     * resident is the 64 warm stacks' pages and their neighbours' */
    size_t after = 0;
    vec = malloc(pool.region_bytes / pool.page_size);
    for (size_t r = 0; vec && r < pool.n_regions; r++) {
        if (mincore(pool.regions[r].base, pool.region_bytes, vec) != 0) after = (size_t)-1;
        for (size_t i = 0; i < pool.region_bytes / pool.page_size; i++) after += vec[i] & 1;
    }
    free(vec);
    fprintf(stderr, "after releasing %d: %zu pages resident\n", created, after);
    CHECK(after <= 64 * 3 + pool.n_regions);
    tern__stack_pool_destroy(&pool);
    free(xs);
}

int main(void) {
    test_ping_pong();
    test_interleaved();
    test_callee_saved();
    test_alignment();
    test_reuse_and_cold(); /* guarded stacks (the default) */
    tern__stack_guard_set_budget(0);
    test_reuse_and_cold(); /* packed stacks */
    tern__stack_guard_set_budget(-1);
    test_deaths();
    test_100k_parked();
    return check_done();
}
