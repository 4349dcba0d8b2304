/* Media types from file name extensions, for static files. */
#ifndef TERN_HTTP_MIME_H
#define TERN_HTTP_MIME_H

#include <stddef.h>

/* The Content-Type for a file name (case-insensitive extension), or
 * "application/octet-stream" when the extension is unknown or missing. */
const char *tern__mime_type(const char *name, size_t len);

#endif
