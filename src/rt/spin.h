/* A lock bit inside an atomic word, for the short critical sections of
 * objects shared by workers (sync objects, tasks, the pool): bit 0 of
 * *word is the lock, the other bits belong to the object (a semaphore keeps
 * its permit count and a "waiters queued" bit there, so its uncontended
 * paths are one compare-and-swap on the same word).
 *
 * Nothing parks or makes a system call while holding the lock. A waiter
 * spins with a pause, then yields its time slice: on a machine with fewer
 * cores than threads the holder may be preempted, and spinning through a
 * whole slice would only delay it. */
#ifndef TERN_RT_SPIN_H
#define TERN_RT_SPIN_H

#include <sched.h>
#include <stdint.h>

#define TERN__SPIN_LOCKED UINT64_C(1)

static inline void tern__spin_pause(unsigned *spins) {
    if (++*spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        __asm__ volatile("yield");
#endif
    } else {
        *spins = 0;
        sched_yield();
    }
}

/* Takes the lock; returns the word's value (lock bit set) at that moment. */
static inline uint64_t tern__spin_lock(uint64_t *word) {
    unsigned spins = 0;
    uint64_t v = __atomic_load_n(word, __ATOMIC_RELAXED);
    for (;;) {
        if (!(v & TERN__SPIN_LOCKED) &&
            __atomic_compare_exchange_n(word, &v, v | TERN__SPIN_LOCKED, 1, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return v | TERN__SPIN_LOCKED;
        tern__spin_pause(&spins);
        v = __atomic_load_n(word, __ATOMIC_RELAXED);
    }
}

/* Stores v (the object's new bits) and releases the lock in one store. */
static inline void tern__spin_unlock(uint64_t *word, uint64_t v) {
    __atomic_store_n(word, v & ~TERN__SPIN_LOCKED, __ATOMIC_RELEASE);
}

#endif
