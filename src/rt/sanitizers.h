/* Which sanitizer this translation unit is built with, for gcc
 * (__SANITIZE_*__) and clang (__has_feature) alike: TERN_ASAN, TERN_TSAN,
 * each 0 or 1. One place, so the stack pool, the overflow reporter, the
 * parser's self-check and the tests agree. */
#ifndef TERN_RT_SANITIZERS_H
#define TERN_RT_SANITIZERS_H

#if defined(__SANITIZE_ADDRESS__)
#define TERN_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TERN_ASAN 1
#endif
#endif
#ifndef TERN_ASAN
#define TERN_ASAN 0
#endif

#if defined(__SANITIZE_THREAD__)
#define TERN_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define TERN_TSAN 1
#endif
#endif
#ifndef TERN_TSAN
#define TERN_TSAN 0
#endif

#endif
