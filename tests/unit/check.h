/* Minimal unit-test helpers: every test is a program whose exit status is
 * the verdict (ctest runs each one). A failed CHECK prints where and why and
 * the run continues, so one run reports every failure. The counters are
 * bumped atomically: multi-threaded tests check from several threads. */
#ifndef TERN_TEST_CHECK_H
#define TERN_TEST_CHECK_H

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

static int check_failures;
static int check_count;

#define CHECK(cond)                                                                    \
    do {                                                                               \
        __atomic_fetch_add(&check_count, 1, __ATOMIC_RELAXED);                                                                 \
        if (!(cond)) {                                                                 \
            __atomic_fetch_add(&check_failures, 1, __ATOMIC_RELAXED);                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
        }                                                                              \
    } while (0)

#define CHECK_INT(a, b)                                                                \
    do {                                                                               \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                \
        __atomic_fetch_add(&check_count, 1, __ATOMIC_RELAXED);                                                                 \
        if (check_a_ != check_b_) {                                                    \
            __atomic_fetch_add(&check_failures, 1, __ATOMIC_RELAXED);                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (%lld != %lld)\n", __FILE__, \
                    __LINE__, #a, #b, check_a_, check_b_);                             \
        }                                                                              \
    } while (0)

#define CHECK_STR(a, b)                                                                \
    do {                                                                               \
        const char *check_a_ = (a), *check_b_ = (b);                                   \
        __atomic_fetch_add(&check_count, 1, __ATOMIC_RELAXED);                                                                 \
        if (!check_a_ || !check_b_ || strcmp(check_a_, check_b_) != 0) {              \
            __atomic_fetch_add(&check_failures, 1, __ATOMIC_RELAXED);                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s == %s (\"%s\" != \"%s\")\n",       \
                    __FILE__, __LINE__, #a, #b, check_a_ ? check_a_ : "(null)",        \
                    check_b_ ? check_b_ : "(null)");                                   \
        }                                                                              \
    } while (0)

#define CHECK_MEM(p, n, s)                                                             \
    do {                                                                               \
        size_t check_n_ = (n);                                                         \
        __atomic_fetch_add(&check_count, 1, __ATOMIC_RELAXED);                                                                 \
        if (check_n_ != strlen(s) || memcmp((p), (s), check_n_) != 0) {                \
            __atomic_fetch_add(&check_failures, 1, __ATOMIC_RELAXED);                                                          \
            fprintf(stderr, "%s:%d: CHECK failed: %s == \"%s\" (got \"%.*s\")\n",       \
                    __FILE__, __LINE__, #p, (s), (int)check_n_, (const char *)(p));    \
        }                                                                              \
    } while (0)

/* Under an emulator (scripts/test-aarch64.sh runs tests in qemu-user) or
 * ThreadSanitizer (make tsan) the code runs many times slower: correctness
 * checks stay, upper bounds on elapsed time do not apply. */
#include <stdlib.h>
static inline int check_timing_strict(void) { return getenv("TERN_TEST_EMULATED") == NULL; }

static inline int check_done(void) {
    fprintf(stderr, "%d checks, %d failed\n", check_count, check_failures);
    return check_failures ? 1 : 0;
}

#endif
