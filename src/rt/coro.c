/* Coroutine stacks and entry (the switch itself is coro_<arch>.S).
 *
 * Guarded regions (the default): every stack has a PROT_NONE page under it
 * and starts page-aligned; stride = stack_size + page. The guard is never
 * touched, so it costs no RSS, only a mapping: mprotect splits the region's
 * VMA, two mappings per stack. vm.max_map_count (65530 by default) bounds
 * them, so the process keeps a budget of guarded stacks (guard_init) and
 * carves packed regions once it is spent, saying so once on stderr.
 *
 * Packed regions (the fallback): stacks back to back, and the page that holds
 * one stack's control block (at its top) also holds the canary of the next
 * stack (at its bottom). The top ~3.9 KiB of every stack sit in that same
 * page, so a coroutine that parks with a shallow frame keeps exactly one page
 * resident, not two (one for the control block, one for the canary):
 *
 *   region page k*S                      page (k+1)*S
 *   [..... stack k frames ...| coro k | canary k+1 ][ stack k+1 frames ...
 *                             ^ stack top of k      ^ stack_lo of k+1
 *
 * Each packed stack therefore is [stack_lo, stack_lo + stack_size) with
 * stack_lo = (page - CANARY_SLOT) past a page boundary and the control block
 * in its last CTRL_BYTES; the region needs per_region * stack_size + one
 * page. A guarded stack writes no canary: its bottom page stays untouched,
 * and the one-page-per-parked-coroutine property holds for both kinds. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* MAP_NORESERVE, MADV_NOHUGEPAGE, mincore */
#endif
#include "rt/coro.h"

#include <assert.h>
#include <errno.h>
#include <stdalign.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#ifndef TERN_CORO_SAVE_FPU
#define TERN_CORO_SAVE_FPU 0
#endif

#include "rt/sanitizers.h"
#if TERN_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* "tern_stk" read as a little-endian word: recognisable in a hex dump, and
 * neither zero nor a plausible pointer, the values an overflow usually writes. */
#define CORO_CANARY UINT64_C(0x6b74735f6e726574)
#define CANARY_SLOT 64 /* canary word + padding: keeps the control block 64-aligned */
#define CTRL_BYTES TERN_CORO_CTRL_BYTES /* room reserved for struct tern_coro at the stack top */
#define MIN_STACK (16 * 1024)
#define MAX_STACK ((size_t)1 << 30)
#define REGION_TARGET ((size_t)64 << 20) /* bytes of stacks per mmap region */

static_assert(sizeof(tern_coro) <= CTRL_BYTES, "tern_coro must fit its reserved slot");
/* tern__coro_guarded reads the layout from bit 6 of the control block's address */
static_assert(CANARY_SLOT == 64 && CTRL_BYTES % 128 == 0, "guarded/packed told apart by bit 6");
static_assert(CTRL_BYTES % 64 == 0 && CANARY_SLOT % 64 == 0, "control block cache-aligned");
/* The assembly entry trampoline only relies on the switch frame, not on
 * struct offsets; tern__coro_start reads fn and arg in C. */

/* Called (hidden, from coro_<arch>.S) as the first frame of every coroutine. */
__attribute__((visibility("hidden"), noreturn)) void tern__coro_start(tern_coro *c);
/* Assembly trampoline that a new coroutine's first switch returns into. */
__attribute__((visibility("hidden"))) void tern__coro_entry(void);

void tern__coro_start(tern_coro *c) {
    c->fn(c->arg);
    /* Returning would pop into the zero words above the initial frame; a
     * coroutine ends by switching away for the last time instead. */
    fputs("tern: coroutine function returned; it must switch away and be released\n", stderr);
    abort();
}

static uintptr_t align_down(uintptr_t x, size_t a) {
    return x & ~(uintptr_t)(a - 1);
}
static uintptr_t align_up(uintptr_t x, size_t a) {
    return align_down(x + a - 1, a);
}

static inline tern_coro *ctrl_of(char *stack_lo, size_t stack_size) {
    return (tern_coro *)(void *)(stack_lo + stack_size - CTRL_BYTES);
}

int tern__stack_pool_init(tern__stack_pool *p, size_t stack_size, size_t keep_warm) {
    memset(p, 0, sizeof *p);
    long pg = sysconf(_SC_PAGESIZE);
    size_t page = pg > 0 ? (size_t)pg : 4096;
    if (stack_size > MAX_STACK) return -EINVAL;
    if (stack_size < MIN_STACK) stack_size = MIN_STACK;
    stack_size = align_up(stack_size, page);
    p->page_size = page;
    p->stack_size = stack_size;
    p->keep_warm = keep_warm;
    p->per_region = REGION_TARGET / (stack_size + page);
    if (p->per_region == 0) p->per_region = 1;
    /* Room for per_region guarded stacks; a packed region needs
     * per_region * stack_size + one page (the layout is shifted up by
     * page - CANARY_SLOT), which is never more. */
    p->region_bytes = p->per_region * (stack_size + page);
    return 0;
}

/* ---- the guard budget (process-wide) ------------------------------------ */

/* Mappings left for everything else (malloc arenas, thread stacks, shared
 * libraries, files) before tern takes half of what remains. */
#define MAP_MARGIN 1024

static struct {
    pthread_once_t once;
    long max_map_count;
    long budget;    /* guarded stacks this process may carve */
    long initial;   /* budget computed at the first carve */
    long reserved;  /* guard slots handed to regions (atomic) */
    long guarded;   /* guarded stacks that exist (atomic) */
    long unguarded; /* packed stacks that exist (atomic) */
    int warned;     /* the fallback was announced (atomic) */
    int off;        /* TERN_STACK_GUARD=0 */
} guards = {.once = PTHREAD_ONCE_INIT};

static long read_long_file(const char *path) {
    FILE *f = fopen(path, "r");
    long v = -1;
    if (f) {
        if (fscanf(f, "%ld", &v) != 1) v = -1;
        fclose(f);
    }
    return v;
}

static long count_maps(void) {
    FILE *f = fopen("/proc/self/maps", "r");
    if (!f) return 0;
    long n = 0;
    int ch;
    while ((ch = getc(f)) != EOF) n += ch == '\n';
    fclose(f);
    return n;
}

/* Each guarded stack costs two mappings (its guard, and the read-write
 * stack the guard splits off the next one). The process takes half of the
 * mappings left at the first carve, so libraries that map later, and
 * packed regions (one mapping per 64 MiB), still fit: with the default
 * 65530 that is about 16,000 guarded stacks per process. */
static void guard_init(void) {
    const char *env = getenv("TERN_STACK_GUARD");
    if (env && env[0] == '0' && env[1] == 0) {
        guards.off = 1;
        return;
    }
    long max = read_long_file("/proc/sys/vm/max_map_count");
    if (max <= 0) max = 65530;
    guards.max_map_count = max;
    long left = max - count_maps() - MAP_MARGIN;
    guards.budget = guards.initial = left > 0 ? left / 2 / 2 : 0;
}

static size_t guard_reserve(size_t want) {
    pthread_once(&guards.once, guard_init);
    long cur = __atomic_load_n(&guards.reserved, __ATOMIC_RELAXED);
    for (;;) {
        long left = __atomic_load_n(&guards.budget, __ATOMIC_RELAXED) - cur;
        if (left <= 0) return 0;
        long take = left < (long)want ? left : (long)want;
        if (__atomic_compare_exchange_n(&guards.reserved, &cur, cur + take, 1, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
            return (size_t)take;
    }
}

/* Once per process, when the first packed region is carved for want of
 * budget (not when guards are off on purpose). */
static void guard_fallback_warn(const char *why) {
    if (guards.off || __atomic_exchange_n(&guards.warned, 1, __ATOMIC_RELAXED)) return;
    if (why)
        fprintf(stderr, "tern: %s; further stacks rely on the canary\n", why);
    else
        fprintf(stderr,
                "tern: vm.max_map_count=%ld allows guard pages for %ld stacks; further stacks "
                "rely on the canary\n",
                guards.max_map_count, __atomic_load_n(&guards.budget, __ATOMIC_RELAXED));
}

void tern__stack_guard_stats(uint64_t *guarded, uint64_t *unguarded) {
    if (guarded) *guarded = (uint64_t)__atomic_load_n(&guards.guarded, __ATOMIC_RELAXED);
    if (unguarded) *unguarded = (uint64_t)__atomic_load_n(&guards.unguarded, __ATOMIC_RELAXED);
}

void tern__stack_guard_set_budget(long stacks) {
    pthread_once(&guards.once, guard_init);
    guards.off = 0;
    long b = stacks < 0 ? guards.initial : __atomic_load_n(&guards.reserved, __ATOMIC_RELAXED) + stacks;
    __atomic_store_n(&guards.budget, b, __ATOMIC_RELAXED);
    __atomic_store_n(&guards.warned, 0, __ATOMIC_RELAXED);
}

/* ---- regions -------------------------------------------------------------- */

void tern__stack_pool_destroy(tern__stack_pool *p) {
    for (size_t i = 0; i < p->n_regions; i++) {
        tern__stack_region *r = &p->regions[i];
        munmap(r->base, p->region_bytes);
        __atomic_fetch_sub(&guards.reserved, (long)r->guards, __ATOMIC_RELAXED);
        __atomic_fetch_sub(r->guards ? &guards.guarded : &guards.unguarded, (long)r->carved,
                           __ATOMIC_RELAXED);
    }
    free(p->regions);
    free(p->cold);
    memset(p, 0, sizeof *p);
}

static int add_region(tern__stack_pool *p) {
    if (p->n_regions == p->cap_regions) {
        size_t cap = p->cap_regions ? p->cap_regions * 2 : 16;
        tern__stack_region *r = realloc(p->regions, cap * sizeof *r);
        if (!r) return -ENOMEM;
        p->regions = r;
        p->cap_regions = cap;
    }
    /* NORESERVE: with overcommit heuristics a 25 GiB reservation for 100k
     * stacks is fine because only touched pages are ever committed. */
    char *base = mmap(NULL, p->region_bytes, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (base == MAP_FAILED) return -errno;
    /* With THP "always" the first touch of a 2 MiB-aligned span would commit
     * a huge page shared by 8 stacks: 2 MiB resident for 8 parked coroutines. */
    (void)madvise(base, p->region_bytes, MADV_NOHUGEPAGE);
    /* guards are reserved per region, at most per_region at a time: a
     * region is either guarded or packed, never mixed */
    size_t guards_got = guard_reserve(p->per_region);
    if (!guards_got) guard_fallback_warn(NULL);
    p->regions[p->n_regions++] = (tern__stack_region){
        .base = base,
        .stride = guards_got ? p->stack_size + p->page_size : p->stack_size,
        .guards = guards_got,
    };
    p->carve_next = base;
    p->carve_left = guards_got ? guards_got : p->per_region;
    return 0;
}

/* The region holding addr (regions are few: a linear scan from the newest,
 * on the cold path only). */
static tern__stack_region *region_of(const tern__stack_pool *p, const char *addr) {
    for (size_t i = p->n_regions; i-- > 0;) {
        tern__stack_region *r = &p->regions[i];
        if (addr >= r->base && addr < r->base + p->region_bytes) return r;
    }
    return NULL;
}

/* A stack's pool state, read without faulting memory in: a dropped page
 * reads as zeros (the shared zero page, no RSS), i.e. "cold". Stacks never
 * carved read as zeros too. */
static uint32_t above_state(const tern_coro *c) {
    return __atomic_load_n(&c->pool_state, __ATOMIC_RELAXED);
}

static tern_coro *carve(tern__stack_pool *p) {
    if (p->carve_left == 0 && add_region(p) < 0) return NULL;
    tern__stack_region *r = &p->regions[p->n_regions - 1];
    char *slot = p->carve_next;
    p->carve_next += r->stride;
    p->carve_left--;
    char *lo;
    if (r->guards) {
        /* Once per stack, when it is first carved: reuse costs nothing. */
        if (mprotect(slot, p->page_size, PROT_NONE) != 0) {
            /* ENOMEM: the map count is higher than the budget assumed
             * (someone else maps a lot). No more guards in this process. */
            char why[96];
            snprintf(why, sizeof why, "mprotect of a stack guard page failed (errno %d)", errno);
            __atomic_store_n(&guards.budget, 0, __ATOMIC_RELAXED);
            guard_fallback_warn(why);
            p->carve_left = 0;
            return carve(p);
        }
        lo = slot + p->page_size;
        __atomic_fetch_add(&guards.guarded, 1, __ATOMIC_RELAXED);
    } else {
        lo = slot + p->page_size - CANARY_SLOT;
        __atomic_fetch_add(&guards.unguarded, 1, __ATOMIC_RELAXED);
    }
    r->carved++;
    tern_coro *c = ctrl_of(lo, p->stack_size);
    assert(tern__coro_guarded(c) == (r->guards != 0));
    c->pool = p;
    p->n_total++;
    return c;
}

/* Lays out the frame tern__coro_switch pops (see coro_<arch>.S), so that the
 * first switch to c "returns" into tern__coro_entry with an aligned stack. */
static void build_initial_frame(tern_coro *c) {
    uintptr_t top = align_down((uintptr_t)c, 16);
    uint64_t *w = (uint64_t *)top;
#if defined(__x86_64__)
    /* Pops r15 r14 r13 r12 rbx rbp, then ret. After the ret rsp = top - 16,
     * 16-aligned, as the ABI wants just before a call. */
    w[-1] = 0;
    w[-2] = 0;
    w[-3] = (uint64_t)(uintptr_t)tern__coro_entry; /* return address */
    w[-4] = 0;                                    /* rbp: ends frame chains */
    w[-5] = (uint64_t)(uintptr_t)c;               /* rbx: the entry's argument */
    w[-6] = w[-7] = w[-8] = w[-9] = 0;            /* r12 r13 r14 r15 */
    uint64_t *sp = &w[-9];
#if TERN_CORO_SAVE_FPU
    /* Start with the creating thread's modes, like a new thread does. */
    uint32_t mxcsr;
    uint16_t fcw;
    __asm__ volatile("stmxcsr %0" : "=m"(mxcsr));
    __asm__ volatile("fnstcw %0" : "=m"(fcw));
    sp--;
    *sp = (uint64_t)mxcsr | (uint64_t)fcw << 32;
#endif
    c->sp = sp;
#elif defined(__aarch64__)
    /* 160-byte frame: x19-x28, x29, x30, d8-d15; after the ret sp = top. */
    uint64_t *sp = w - 20;
    memset(sp, 0, 160);
    sp[0] = (uint64_t)(uintptr_t)c;                /* x19 */
    sp[10] = 0;                                    /* x29 */
    sp[11] = (uint64_t)(uintptr_t)tern__coro_entry; /* x30 */
    c->sp = sp;
#else
#error "tern: no coroutine switch for this architecture"
#endif
}

tern_coro *tern__coro_create(tern__stack_pool *p, tern__coro_fn fn, void *arg) {
    tern_coro *c;
    if (p->free_warm) {
        c = p->free_warm; /* LIFO: the most recently used stack is cache-warm */
        p->free_warm = c->next;
        p->n_warm--;
    } else if (p->n_cold) {
        c = p->cold[--p->n_cold];
    } else {
        c = carve(p);
        if (!c) {
            errno = ENOMEM;
            return NULL;
        }
    }
    /* from the address, not the control block: a cold stack's control page
     * may have been dropped and read back as zeros */
    char *lo = (char *)c + CTRL_BYTES - p->stack_size;
    memset(c, 0, sizeof *c);
    c->fn = fn;
    c->arg = arg;
    c->pool = p;
    c->pool_state = TERN__STACK_LIVE;
    if (!tern__coro_guarded(c)) *(uint64_t *)(void *)lo = CORO_CANARY;
    build_initial_frame(c);
    p->n_live++;
    return c;
}

void tern__coro_release(tern_coro *c) {
    tern__stack_pool *p = c->pool;
    assert(p->n_live > 0);
    tern__coro_check(c);
#if TERN_ASAN
    /* Frames abandoned at the last switch-out keep their redzones poisoned;
     * the next coroutine on this stack would trip over them. Every frame
     * below the saved sp returned normally and unpoisoned itself. */
    char *top = (char *)c;
    if ((char *)c->sp >= tern__coro_stack_lo(c) && (char *)c->sp < top)
        ASAN_UNPOISON_MEMORY_REGION(c->sp, (size_t)(top - (char *)c->sp));
#endif
    p->n_live--;
    if (p->n_warm < p->keep_warm) {
        c->pool_state = TERN__STACK_WARM;
        c->next = p->free_warm;
        p->free_warm = c;
        p->n_warm++;
        return;
    }
    if (p->n_cold == p->cap_cold) {
        size_t cap = p->cap_cold ? p->cap_cold * 2 : 256;
        tern_coro **v = realloc(p->cold, cap * sizeof *v);
        if (!v) {
            /* cannot track it as cold: keep it warm instead (pages stay) */
            c->pool_state = TERN__STACK_WARM;
            c->next = p->free_warm;
            p->free_warm = c;
            p->n_warm++;
            return;
        }
        p->cold = v;
        p->cap_cold = cap;
    }
    c->pool_state = TERN__STACK_COLD;
    p->cold[p->n_cold++] = c;
    char *lo = tern__coro_stack_lo(c);
    if (tern__coro_guarded(c)) {
        /* the whole stack is its own, control page included */
        (void)madvise(lo, p->stack_size, MADV_DONTNEED);
        return;
    }
    /* Return every page wholly inside the stack. */
    uintptr_t from = align_up((uintptr_t)lo, p->page_size);
    uintptr_t to = align_down((uintptr_t)c, p->page_size);
    if (to > from) (void)madvise((void *)from, to - from, MADV_DONTNEED);
    /* The control block's page also holds the canary of the stack above
     * (release layout), and the page under stack_lo holds the control block
     * of the stack below. Each may go only when both of its stacks are cold:
     * a live or warm neighbour still needs its half. */
    tern__stack_region *r = region_of(p, (char *)c);
    if (!r) return;
    char *base = r->base;
    char *region_end = base + p->per_region * p->stack_size + p->page_size;
    /* the last stack of a region has the region's extra page to itself */
    tern_coro *above = (tern_coro *)(void *)((char *)c + r->stride);
    int above_free = (char *)above >= region_end || above_state(above) == TERN__STACK_COLD;
    if (above_free) (void)madvise((void *)to, p->page_size, MADV_DONTNEED);
    if ((char *)c - r->stride >= base) {
        tern_coro *below = (tern_coro *)(void *)((char *)c - r->stride);
        if (above_state(below) == TERN__STACK_COLD)
            (void)madvise((void *)align_down((uintptr_t)below, p->page_size), p->page_size,
                          MADV_DONTNEED);
    }
}

__attribute__((noinline, noreturn, cold)) static void canary_dead(const tern_coro *c) {
    /* c's own control block is intact: an overflow runs downwards, into the
     * control block of the stack below */
    fprintf(stderr,
            "tern: coroutine stack overflow in %s (stack %zu KiB, canary overwritten): raise "
            "tern_config.stack_size or move large buffers to the heap\n",
            c->label ? c->label : "a coroutine", c->pool->stack_size >> 10);
    abort();
}

void tern__coro_check(const tern_coro *c) {
    if (tern__coro_guarded(c)) return;
    if (__builtin_expect(*(const uint64_t *)(const void *)tern__coro_stack_lo(c) != CORO_CANARY, 0))
        canary_dead(c);
}

/* Reads other frames' redzones on purpose: not an ASan finding. */
__attribute__((no_sanitize("address"))) size_t tern__coro_stack_size(const tern_coro *c) {
    /* Fresh and MADV_DONTNEED'd pages read as zero, so the lowest non-zero
     * word is the deepest point any occupant reached since the stack was
     * carved or went cold. Non-resident pages are skipped with mincore so
     * the scan does not fault them in. */
    size_t page = c->pool->page_size;
    const char *lo = tern__coro_stack_lo(c) + (tern__coro_guarded(c) ? 0 : sizeof(uint64_t));
    const char *top = (const char *)c;
    for (const char *pg = (const char *)align_down((uintptr_t)lo, page); pg < top; pg += page) {
        unsigned char vec;
        if (mincore((void *)(uintptr_t)pg, page, &vec) == 0 && !(vec & 1)) continue;
        const char *a = pg < lo ? lo : pg;
        const char *end = pg + page < top ? pg + page : top;
        for (; a < end; a += sizeof(uint64_t))
            if (*(const uint64_t *)(const void *)a != 0) return (size_t)(top - a);
    }
    return 0;
}
