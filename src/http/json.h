/* JSON reader and writer internals (public API: tern/json.h). */
#ifndef TERN_HTTP_JSON_H
#define TERN_HTTP_JSON_H

#include <stddef.h>
#include <stdint.h>

#include "tern.h"
#include "tern/json.h"

struct tern_json {
    const char *key; /* member name inside an object, else NULL */
    union {
        const char *s;           /* TERN_JSON_STRING: decoded, NUL-terminated */
        struct tern_json *items; /* TERN_JSON_ARRAY / OBJECT: len children */
    } u;
    double d;
    int64_t i;    /* exact value when flags has JF_INT */
    uint32_t len; /* string bytes or children */
    uint32_t key_len;
    uint8_t type; /* tern_json_type */
    uint8_t flags;
};

/* 1 for the bytes a string may hold as they are: printable ASCII other than
 * '"' and '\\' (one table lookup per byte in the scanning loops). */
extern const unsigned char tern__json_plain[256];

/* Length of the valid UTF-8 sequence at p (1..4; Unicode table 3-7: no
 * overlongs, no surrogates, nothing past U+10FFFF), or 0. p < end. */
size_t tern__utf8_seq(const unsigned char *p, const unsigned char *end);

#define TERN__JW_MAX_DEPTH 64

/* Writer state: which containers are open and whether a comma is due. */
typedef enum tern__jw_expect {
    TERN__JW_VALUE,  /* top level or inside an array: a value */
    TERN__JW_KEY,    /* inside an object: a key */
    TERN__JW_MEMBER, /* after a key: its value */
    TERN__JW_DONE,   /* the top-level value is complete */
} tern__jw_expect;

struct tern_jw {
    tern_ctx *ctx;
    int error;
    unsigned depth;
    tern__jw_expect expect;
    uint64_t objects;  /* bit d: the container at depth d+1 is an object */
    uint64_t nonempty; /* bit d: that container has an element already */
};

/* Starts a writer on ctx without touching its headers (bench, tests). */
void tern__jw_init(tern_jw *w, tern_ctx *ctx);

#endif
