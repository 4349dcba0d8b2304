/* Stackful coroutines: an assembly context switch (coro_x86_64.S,
 * coro_aarch64.S) and a per-worker pool of lazily committed stacks.
 *
 * Memory layout of one coroutine (stack grows down):
 *
 *   lo                                                            hi
 *   [guard page or canary | ...... stack frames ...... | tern_coro ]
 *
 * Stacks are carved out of large mmap(MAP_NORESERVE) regions so only touched
 * pages are resident; a coroutine that parks having touched one page costs
 * one page. A region is one of two kinds (see coro.c and docs/DESIGN.md):
 *
 *  - guarded (the default, while vm.max_map_count allows): a PROT_NONE page
 *    under every stack. Overflow faults there and rt/overflow.c reports it
 *    naming the coroutine's label. The guard is never touched (no RSS) and
 *    nothing is written to the stack's bottom page.
 *  - packed (the fallback once the process's guard budget is spent, or
 *    TERN_STACK_GUARD=0): no guard; the page holding a stack's tern_coro
 *    also holds the next stack's canary, so a shallow parked coroutine
 *    still keeps one page resident. The canary is checked on every switch
 *    out (tern__coro_check); an overflow past stack_lo first corrupts the
 *    previous stack's tern_coro.
 * Not thread-safe: one pool per worker thread (the guard budget is shared
 * by all pools of the process, atomically). */
#ifndef TERN_RT_CORO_H
#define TERN_RT_CORO_H

#include <stddef.h>
#include <stdint.h>

typedef struct tern_coro tern_coro;
typedef void (*tern__coro_fn)(void *arg);

/* ThreadSanitizer build (make tsan): the scheduler tells TSan about every
 * switch (its fiber API), or it would see one thread's stack jump around. */
#include "rt/sanitizers.h"

struct tern_coro {
    void *sp; /* saved stack pointer while switched out */
    tern__coro_fn fn;
    void *arg;
    tern_coro *next; /* free list / run queue link (owner decides) */
    void *owner;     /* scheduler data (task, request), opaque here */
    void (*park_hook)(void *arg); /* scheduler-owned: see tern__sched_set_park_hook */
    void *park_arg;
    /* scheduler-owned CPU accounting (TERN_CORO_ACCOUNT): time running,
     * time ready but waiting for the CPU, and the thread CPU clock at the
     * start of the running span */
    uint64_t acct_run_ns, acct_ready_ns, acct_mark_ns;
    struct tern__stack_pool *pool;
    const char *label; /* what runs here, for overflow reports ("the handler
                          of GET /users/:id"); set by the driver, NULL = none */
    uint32_t flags;   /* scheduler-owned bits */
    int32_t result;   /* scheduler-owned: value returned by a park */
    uint64_t user[2]; /* scheduler-owned scratch */
    uint64_t serial;     /* scheduler-owned: unique per coroutine lifetime */
    uint64_t wait_token; /* scheduler-owned: current wait (tern__sched_wait_begin) */
    uint32_t pool_state; /* enum tern__stack_state, pool-owned */
#if TERN_TSAN
    void *tsan_fiber; /* scheduler-owned */
#endif
};

/* Where a stack is in its pool. COLD must be 0: a stack whose pages were
 * dropped (MADV_DONTNEED) or never touched reads as zeros, i.e. cold. */
enum tern__stack_state {
    TERN__STACK_COLD = 0, /* free, pages given back (or never carved) */
    TERN__STACK_LIVE = 1, /* handed out to a coroutine */
    TERN__STACK_WARM = 2, /* free, pages kept resident */
};

/* Bytes reserved for struct tern_coro at the top of every stack: a stack's
 * lowest address is (char *)c + TERN_CORO_CTRL_BYTES - stack_size. */
#define TERN_CORO_CTRL_BYTES 256

/* One mmap region of stacks: guarded (a PROT_NONE page under each stack,
 * stride stack_size + page) or packed (stride stack_size). */
typedef struct tern__stack_region {
    char *base;
    size_t stride;
    size_t guards; /* guard pages reserved from the process budget; 0 = packed */
    size_t carved; /* stacks carved here so far */
} tern__stack_region;

typedef struct tern__stack_pool {
    size_t stack_size;    /* bytes per stack incl. the tern_coro, page multiple */
    size_t per_region;    /* stacks per mmap region */
    size_t keep_warm;     /* free stacks kept resident; beyond: madvise(DONTNEED) */
    tern_coro *free_warm; /* free, pages possibly resident */
    tern_coro **cold;     /* free, pages returned to the kernel: a vector kept
                             outside the stacks, whose pages may be dropped */
    size_t cap_cold;
    size_t n_warm, n_cold;
    size_t n_live;  /* handed out and not yet released */
    size_t n_total; /* carved so far */
    tern__stack_region *regions; /* mmap'd regions (for munmap at destroy) */
    size_t n_regions, cap_regions;
    char *carve_next; /* next uncarved stack in the newest region */
    size_t carve_left;
    size_t page_size;    /* sysconf(_SC_PAGESIZE) at init */
    size_t region_bytes; /* length of each mmap region (room for per_region
                            guarded stacks; a packed region uses less) */
} tern__stack_pool;

/* A guarded stack starts on a page boundary (just above its guard page), so
 * its tern_coro sits on a 128-byte boundary; a packed stack starts 64 bytes
 * (its canary slot) below one, which shifts its tern_coro by 64. Bit 6 of
 * the address tells the two apart without touching memory. */
static inline int tern__coro_guarded(const tern_coro *c) {
    return ((uintptr_t)c & 64) == 0;
}
/* Lowest usable address of c's stack (a packed stack's canary word). */
static inline char *tern__coro_stack_lo(const tern_coro *c) {
    return (char *)c + TERN_CORO_CTRL_BYTES - c->pool->stack_size;
}

/* Guard pages, process-wide. Guarded and unguarded (packed) stacks that
 * exist now; for the server's metrics. */
void tern__stack_guard_stats(uint64_t *guarded, uint64_t *unguarded);
/* Test hook: from now on at most `stacks` more guarded stacks (0: none;
 * negative: back to the budget computed at start); re-arms the one-time
 * fallback warning. */
void tern__stack_guard_set_budget(long stacks);

/* stack_size is rounded up to a page multiple (minimum 16 KiB). Maps nothing
 * yet. Returns 0, or -EINVAL when stack_size is absurd (over 1 GiB). */
int tern__stack_pool_init(tern__stack_pool *p, size_t stack_size, size_t keep_warm);
void tern__stack_pool_destroy(tern__stack_pool *p);

/* Takes a stack from the pool and prepares it so that the first switch to
 * it runs fn(arg) on that stack. fn must never return (the entry trampoline
 * aborts if it does): a scheduler ends a coroutine by switching away from it
 * for the last time and calling tern__coro_release from another context.
 * Returns NULL on ENOMEM. */
tern_coro *tern__coro_create(tern__stack_pool *p, tern__coro_fn fn, void *arg);
/* Gives the stack back to its pool. Must not be the running coroutine.
 * Checks the canary first. The first keep_warm free stacks stay resident;
 * beyond that every page except the tern_coro's is madvise(DONTNEED)ed. */
void tern__coro_release(tern_coro *c);

/* Saves callee-saved registers and the stack pointer into *save_sp, then
 * restores the context saved at to_sp. Implemented in assembly. */
void tern__coro_switch(void **save_sp, void *to_sp);

/* Aborts with a clear message when a packed stack's canary was overwritten
 * (stack overflow). Cheap: a bit test, then one load and compare; nothing
 * for a guarded stack (its guard page faults instead). */
void tern__coro_check(const tern_coro *c);

/* Deepest stack use, in bytes, since the stack was carved or last went cold
 * (it scans for the lowest non-zero word, skipping non-resident pages; a
 * warm stack may report an earlier occupant's depth). Debug only: O(stack). */
size_t tern__coro_stack_size(const tern_coro *c);

#endif
