/* Stack overflow reports: see overflow.h. Everything the handler does is
 * async-signal-safe: it reads the running coroutine from a TLS pointer and
 * its stack bounds from the scheduler, formats into a local buffer and calls
 * write(2) and sigaction(2). */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* REG_RSP */
#endif
#include "rt/overflow.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "rt/sched.h"

#include "rt/sanitizers.h"

/* Room for the handler and write(2); MINSIGSTKSZ grows with the CPU's
 * vector state (AVX-512 frames are ~3.5 KiB). Only touched pages are
 * resident: an unused alternate stack costs no memory. */
#define ALTSTACK_BYTES (64 * 1024)
/* How far below its stack a coroutine's stack pointer may be for a fault to
 * count as its overflow: a frame (a large local array) can jump past the
 * guard page before it touches anything. */
#define OVERFLOW_REACH ((uintptr_t)64 << 20)

static pthread_once_t install_once = PTHREAD_ONCE_INIT;
static int installed;
static struct sigaction prev_segv, prev_bus;
static __thread char *altstack; /* our mapping (guard page + stack), or NULL */

static size_t page_bytes(void) {
    long pg = sysconf(_SC_PAGESIZE);
    return pg > 0 ? (size_t)pg : 4096;
}

static uintptr_t fault_sp(void *ucv) {
    ucontext_t *uc = ucv;
#if defined(__x86_64__)
    return (uintptr_t)uc->uc_mcontext.gregs[REG_RSP];
#elif defined(__aarch64__)
    return (uintptr_t)uc->uc_mcontext.sp;
#else
    (void)uc;
    return 0;
#endif
}

static size_t put(char *buf, size_t n, size_t cap, const char *s) {
    while (*s && n < cap) buf[n++] = *s++;
    return n;
}

static size_t put_uint(char *buf, size_t n, size_t cap, uint64_t v) {
    char digits[24];
    size_t k = 0;
    do {
        digits[k++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    while (k && n < cap) buf[n++] = digits[--k];
    return n;
}

static void report(const tern_coro *c, size_t stack_size) {
    char msg[512];
    size_t n = 0, cap = sizeof msg - 1;
    n = put(msg, n, cap, "tern: stack overflow in ");
    n = put(msg, n, cap, c->label ? c->label : "a coroutine");
    n = put(msg, n, cap, " (stack ");
    n = put_uint(msg, n, cap, stack_size >> 10);
    n = put(msg, n, cap, " KiB): raise tern_config.stack_size or move large buffers to the heap\n");
    for (size_t off = 0; off < n;) {
        ssize_t w = write(2, msg + off, n - off);
        if (w <= 0 && errno != EINTR) break;
        if (w > 0) off += (size_t)w;
    }
}

/* Hands the signal on as if we were not there. For the default action that
 * means restoring it and returning: the faulting instruction runs again and
 * the kernel kills the process with the same signal (and core dump). */
static void chain(int sig, siginfo_t *si, void *uc) {
    const struct sigaction *prev = sig == SIGBUS ? &prev_bus : &prev_segv;
    if (prev->sa_flags & SA_SIGINFO) {
        if (prev->sa_sigaction) {
            prev->sa_sigaction(sig, si, uc);
            return;
        }
    } else if (prev->sa_handler != SIG_DFL && prev->sa_handler != SIG_IGN) {
        prev->sa_handler(sig);
        return;
    }
    struct sigaction dfl;
    memset(&dfl, 0, sizeof dfl);
    dfl.sa_handler = SIG_DFL;
    sigemptyset(&dfl.sa_mask);
    sigaction(sig, &dfl, NULL);
    if (si->si_code <= 0) raise(sig); /* sent by kill(2): nothing re-faults */
}

static void on_fault(int sig, siginfo_t *si, void *uc) {
    int saved_errno = errno;
    tern__sched *s = tern__sched_self;
    tern_coro *c = s ? s->current : NULL;
    if (c && si->si_code > 0) {
        size_t size = s->stacks.stack_size, page = s->stacks.page_size;
        uintptr_t lo = (uintptr_t)c + TERN_CORO_CTRL_BYTES - size;
        uintptr_t addr = (uintptr_t)si->si_addr, sp = fault_sp(uc);
        int in_guard = addr < lo && addr >= lo - page;
        int sp_below = sp < lo && lo - sp <= OVERFLOW_REACH;
        if (in_guard || sp_below) report(c, size);
    }
    errno = saved_errno;
    chain(sig, si, uc);
}

static void install(void) {
    if (TERN_ASAN) return; /* ASan's own SEGV handler reports stack overflows */
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
    sigemptyset(&sa.sa_mask);
    if (sigaction(SIGSEGV, &sa, &prev_segv) != 0) return;
    if (sigaction(SIGBUS, &sa, &prev_bus) != 0) {
        sigaction(SIGSEGV, &prev_segv, NULL);
        return;
    }
    installed = 1;
}

int tern__overflow_thread_start(void) {
    pthread_once(&install_once, install);
    if (!installed || altstack) return 0;
    stack_t cur;
    if (sigaltstack(NULL, &cur) == 0 && !(cur.ss_flags & SS_DISABLE)) return 0; /* has one */
    size_t page = page_bytes();
    /* a guard page under the alternate stack too: a handler overflowing it
     * must not scribble on whatever is mapped below */
    char *m = mmap(NULL, page + ALTSTACK_BYTES, PROT_READ | PROT_WRITE,
                   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (m == MAP_FAILED) return -errno;
    (void)mprotect(m, page, PROT_NONE);
    stack_t ss = {.ss_sp = m + page, .ss_size = ALTSTACK_BYTES, .ss_flags = 0};
    if (sigaltstack(&ss, NULL) != 0) {
        int e = -errno;
        munmap(m, page + ALTSTACK_BYTES);
        return e;
    }
    altstack = m;
    return 0;
}

void tern__overflow_thread_stop(void) {
    if (!altstack) return;
    stack_t ss = {.ss_sp = NULL, .ss_size = 0, .ss_flags = SS_DISABLE};
    (void)sigaltstack(&ss, NULL);
    munmap(altstack, page_bytes() + ALTSTACK_BYTES);
    altstack = NULL;
}
