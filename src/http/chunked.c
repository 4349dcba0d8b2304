/* Incremental chunked-body decoder (RFC 9112 §7.1). See chunked.h.
 *
 * A byte-at-a-time state machine for the framing, memmove for the data.
 * Every decision depends only on the bytes already seen, so any split of
 * the input across calls yields the same output and the same verdict.
 *
 * Choices:
 * - chunk-size is 1*HEXDIG: no sign, no "0x", no whitespace before it. BWS
 *   (SP/HTAB) after the size is tolerated only when a ';' follows, as the
 *   chunk-ext grammar allows ("1a ;ext"); "1a \r\n" is refused.
 * - chunk extensions are skipped unparsed but may not hold CTLs (except
 *   HTAB) or a bare LF; a size line (size + extensions, before the CR) is
 *   bounded by MAX_LINE, as a peer could otherwise make us read forever.
 * - a size that would take the body past max_body is refused as soon as
 *   the size line ends (413), before any of its data is read.
 * - the trailer section is validated like header fields (token name, no
 *   space before ':', no obs-fold, no bare CR/LF, no CTLs) and discarded;
 *   it is bounded by MAX_TRAILER bytes in total, final CRLF included.
 * - errors are sticky: after -400/-413 every call returns the same. */
#include "http/chunked.h"

#include <string.h>

#define MAX_LINE 4096
#define MAX_TRAILER 8192

enum {
    S_SIZE,     /* hex digits of the chunk size (line_len counts the line) */
    S_SIZE_BWS, /* SP/HTAB after the size: a ';' must follow */
    S_EXT,      /* chunk extensions up to CR */
    S_SIZE_LF,  /* CR seen at the end of the size line */
    S_DATA,     /* remaining bytes of chunk data */
    S_DATA_CR,  /* CRLF after the data */
    S_DATA_LF,
    S_TRL_START, /* start of a trailer line, or of the final CRLF */
    S_TRL_NAME,
    S_TRL_VALUE,
    S_TRL_LF, /* CR seen at the end of a trailer field */
    S_END_LF, /* CR of the final empty line seen */
    S_DONE,
    S_ERR_400,
    S_ERR_413,
};

static inline int hexval(unsigned char c) {
    if (c >= '0' && c <= '9') return c - '0';
    c |= 0x20;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
}

/* tchar (RFC 9110 §5.6.2) for trailer field names */
static inline int is_tchar(unsigned char c) {
    if ((c | 0x20) >= 'a' && (c | 0x20) <= 'z') return 1;
    if (c >= '0' && c <= '9') return 1;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

/* field-vchar / SP / HTAB / obs-text (RFC 9110 §5.5) */
static inline int is_field_byte(unsigned char c) {
    return c == '\t' || (c >= 0x20 && c != 0x7f);
}

void tern__chunked_init(tern__chunked *d, uint64_t max_body) {
    memset(d, 0, sizeof *d);
    d->max_body = max_body;
    d->state = S_SIZE;
    d->max_line = MAX_LINE;
    d->max_trailer = MAX_TRAILER;
    d->max_ext_bytes = UINT64_MAX;
}

void tern__chunked_set_limits(tern__chunked *d, uint32_t max_line, uint32_t max_trailer,
                              uint64_t max_ext_bytes) {
    if (max_line) d->max_line = max_line;
    if (max_trailer) d->max_trailer = max_trailer;
    if (max_ext_bytes) d->max_ext_bytes = max_ext_bytes;
}

/* One byte of a chunk-size line (size, BWS, extensions): 0, or -1 when
 * malformed. */
static int size_line_byte(tern__chunked *d, unsigned char c) {
    switch (d->state) {
    case S_SIZE: {
        int h = hexval(c);
        if (h >= 0) {
            /* 16 hex digits hold 2^64-1; one more would overflow */
            if (d->remaining >> 60) return -1;
            d->remaining = d->remaining << 4 | (unsigned)h;
        } else if (d->line_len == 0) {
            return -1; /* no digit before ';', CR, SP or a sign */
        } else if (c == ';') {
            d->state = S_EXT;
        } else if (c == ' ' || c == '\t') {
            d->state = S_SIZE_BWS;
        } else if (c == '\r') {
            d->state = S_SIZE_LF;
        } else {
            return -1;
        }
        return 0;
    }
    case S_SIZE_BWS:
        if (c == ';')
            d->state = S_EXT;
        else if (c != ' ' && c != '\t')
            return -1;
        return 0;
    default: /* S_EXT */
        if (c == '\r')
            d->state = S_SIZE_LF;
        else if (!is_field_byte(c) || ++d->ext_bytes > d->max_ext_bytes)
            return -1;
        return 0;
    }
}

/* One byte of the trailer section before its final CRLF: 0 or -1. */
static int trailer_byte(tern__chunked *d, unsigned char c) {
    switch (d->state) {
    case S_TRL_START:
        if (c == '\r')
            d->state = S_END_LF;
        else if (is_tchar(c))
            d->state = S_TRL_NAME;
        else
            return -1; /* obs-fold, empty name, bare LF, ... */
        return 0;
    case S_TRL_NAME:
        if (c == ':')
            d->state = S_TRL_VALUE;
        else if (!is_tchar(c))
            return -1;
        return 0;
    case S_TRL_VALUE:
        if (c == '\r')
            d->state = S_TRL_LF;
        else if (!is_field_byte(c))
            return -1;
        return 0;
    default: /* S_TRL_LF */
        if (c != '\n') return -1;
        d->state = S_TRL_START;
        return 0;
    }
}

/* Framing bytes are bounded: the size line (before its CR) and the
 * trailer section (every byte after the last chunk's CRLF). */
static int count_framing(tern__chunked *d) {
    if (d->state >= S_TRL_START) return ++d->trailer_bytes > d->max_trailer ? -1 : 0;
    if (d->state <= S_EXT && ++d->line_len > d->max_line) return -1;
    return 0;
}

tern__chunked_result tern__chunked_decode(tern__chunked *d, const char *in, size_t in_len, size_t *consumed,
                                          char *out, size_t *out_len) {
    size_t i = 0, o = 0;
    tern__chunked_result ret = TERN__CHUNKED_MORE;
    if (in_len == 0 && d->state == S_ERR_400) ret = TERN__CHUNKED_BAD;
    while (i < in_len) {
        unsigned char c = (unsigned char)in[i];
        int bad = 0;
        switch (d->state) {
        case S_DATA: {
            size_t n = in_len - i;
            if (n > d->remaining) n = (size_t)d->remaining;
            /* out never overtakes in: o <= i always, so memmove is safe */
            if (out + o != in + i) memmove(out + o, in + i, n);
            o += n;
            i += n;
            d->remaining -= n;
            d->total += n;
            if (d->remaining == 0) d->state = S_DATA_CR;
            continue;
        }
        case S_SIZE:
        case S_SIZE_BWS:
        case S_EXT: bad = size_line_byte(d, c); break;
        case S_SIZE_LF:
            if (c != '\n') goto bad;
            if (d->remaining > d->max_body - d->total) {
                d->state = S_ERR_413;
                ret = TERN__CHUNKED_TOO_LARGE;
                goto out;
            }
            d->line_len = 0;
            if (d->remaining == 0) {
                d->state = S_TRL_START;
                d->trailer_bytes = 0;
            } else {
                d->state = S_DATA;
            }
            i++;
            continue;
        case S_DATA_CR:
            if (c != '\r') goto bad;
            d->state = S_DATA_LF;
            break;
        case S_DATA_LF:
            if (c != '\n') goto bad;
            d->state = S_SIZE;
            d->line_len = 0;
            i++;
            continue;
        case S_TRL_START:
        case S_TRL_NAME:
        case S_TRL_VALUE:
        case S_TRL_LF: bad = trailer_byte(d, c); break;
        case S_END_LF:
            if (c != '\n' || ++d->trailer_bytes > d->max_trailer) goto bad;
            d->state = S_DONE;
            i++;
            ret = TERN__CHUNKED_DONE;
            goto out;
        case S_DONE: ret = TERN__CHUNKED_DONE; goto out;
        case S_ERR_413: ret = TERN__CHUNKED_TOO_LARGE; goto out;
        default: goto bad;
        }
        if (bad || count_framing(d) < 0) goto bad;
        i++;
    }
    if (in_len == 0) {
        if (d->state == S_DONE)
            ret = TERN__CHUNKED_DONE;
        else if (d->state == S_ERR_413)
            ret = TERN__CHUNKED_TOO_LARGE;
    }
    goto out;
bad:
    d->state = S_ERR_400;
    ret = TERN__CHUNKED_BAD;
out:
    *consumed = i;
    *out_len = o;
    return ret;
}
