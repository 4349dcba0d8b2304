/* Validators for conditional requests (RFC 9110 §8.8, §13): entity tags
 * and HTTP dates. */
#ifndef TERN_HTTP_ETAG_H
#define TERN_HTTP_ETAG_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define TERN__ETAG_MAX 64

/* A strong tag "<mtime>-<size>-<inode>" in hex, quotes included, from a
 * file's stat: changes when the file is replaced or rewritten. Returns the
 * length. */
size_t tern__etag_format(char *out, int64_t mtime_ns, uint64_t size, uint64_t ino);

/* If-None-Match: non-zero when the list ("*" or tags, W/ allowed) matches
 * etag by weak comparison (§8.8.3.2). */
int tern__etag_match_weak(const char *list, const char *etag, size_t etag_len);
/* If-Range with a tag: strong comparison, a W/ tag never matches. */
int tern__etag_match_strong(const char *value, const char *etag, size_t etag_len);

/* Parses an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"); 0 or -EINVAL.
 * The obsolete formats are not accepted: a conditional with a date we cannot
 * read is ignored, which is always safe (a full 200). */
int tern__http_date_parse(const char *s, time_t *out);

#endif
