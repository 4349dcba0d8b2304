/* Incremental decoder for chunked request bodies (RFC 9112 §7.1), in place:
 * decoded bytes are compacted to the front of the caller's buffer. Chunk
 * extensions are skipped, trailer fields are read and discarded (bounded),
 * chunk sizes are hex without sign or whitespace and checked for overflow. */
#ifndef TERN_HTTP_CHUNKED_H
#define TERN_HTTP_CHUNKED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef struct tern__chunked {
    uint64_t remaining;     /* bytes left in the current chunk */
    uint64_t total;         /* decoded bytes so far */
    uint64_t max_body;      /* decoded size limit (413) */
    uint32_t state;         /* private */
    uint32_t line_len;      /* private: bytes of the current size/trailer line */
    uint32_t trailer_bytes; /* private: bound on the trailer section */
    uint32_t max_line;      /* size line bound (size + extensions), default 4 KiB */
    uint32_t max_trailer;   /* trailer section bound, default 8 KiB */
    uint64_t ext_bytes;     /* private: chunk-extension bytes so far */
    uint64_t max_ext_bytes; /* bound on all chunk extensions of the body, default none */
} tern__chunked;

/* max_body is the decoded size limit; pass UINT64_MAX for none. */
void tern__chunked_init(tern__chunked *d, uint64_t max_body);

/* Tighter framing bounds (after init; 0 keeps a default): the longest size
 * line, the trailer section, and the chunk-extension bytes of the whole
 * body (a peer sending one data byte per 4 KiB of extensions is otherwise
 * bounded only by time). Over a bound: -400 like any malformed framing. */
void tern__chunked_set_limits(tern__chunked *d, uint32_t max_line, uint32_t max_trailer,
                              uint64_t max_ext_bytes);

/* Decodes from in[0..in_len), writing body bytes to out (out may equal in:
 * output never overtakes input, so in-place decoding is safe; memmove).
 * Sets *consumed to the input bytes used and *out_len to the body bytes
 * written by this call. Returns DONE when the whole chunked body (including
 * the trailer section and its final CRLF) has been consumed — bytes after
 * it belong to the next request —, MORE when all input was consumed and
 * more is needed, BAD when malformed, TOO_LARGE over max_body.
 * Sizes are 1*HEXDIG; SP/HTAB after the size is accepted only before ';'
 * (BWS of chunk-ext). 413 is answered at the end of the size line that
 * would exceed max_body, before its data. Size lines are bounded at 4 KiB
 * (before the CR) and the trailer section at 8 KiB, else 400 (see
 * tern__chunked_set_limits). Errors and
 * completion are sticky: later calls return the same and consume nothing. */
/* What a call to tern__chunked_decode found. The two refusals carry the
 * HTTP status the server answers with as their value. */
typedef enum tern__chunked_result {
    TERN__CHUNKED_MORE = 0,         /* all input consumed, more needed */
    TERN__CHUNKED_DONE = 1,         /* the body and its trailers are complete */
    TERN__CHUNKED_BAD = -400,       /* malformed framing */
    TERN__CHUNKED_TOO_LARGE = -413, /* over max_body */
} tern__chunked_result;

tern__chunked_result tern__chunked_decode(tern__chunked *d, const char *in, size_t in_len, size_t *consumed,
                                          char *out, size_t *out_len);

#endif
