/* Request IDs (tern_mw_request_id). */
#ifndef TERN_MIDDLEWARE_REQUEST_ID_H
#define TERN_MIDDLEWARE_REQUEST_ID_H

#include "tern/middleware.h"

#define TERN__REQUEST_ID_MINTED 24
/* A fresh ID, unique across workers and processes (see request_id.c). */
void tern__request_id_mint(char out[TERN__REQUEST_ID_MINTED + 1], int worker);

#endif
