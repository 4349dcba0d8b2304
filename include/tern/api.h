/* TERN_API marks the functions libtern exports. The library is built with
 * -fvisibility=hidden, so everything else (the tern__ internals) stays out of
 * libtern.so's dynamic symbol table. */
#ifndef TERN_API_H
#define TERN_API_H

#if defined(__GNUC__) || defined(__clang__)
#define TERN_API __attribute__((visibility("default")))
#else
#define TERN_API
#endif

#endif
