/* Offload pool internals shared with the server and metrics. The public
 * calls (tern_offload, tern_offload_configure, tern_offload_shutdown) are
 * declared in include/tern/sync.h.
 *
 * How a result comes back: the caller's job record lives on its coroutine
 * stack. A pool thread runs fn, marks the job DONE, posts a wake to the
 * caller's worker with tern__sched_remote_wake, and finally marks it POSTED;
 * after that it never touches the job again. The caller returns only once
 * the job is POSTED and its wake can no longer be delivered later (it
 * drains its worker's remote queue itself if it did not consume the wake),
 * so no stale wake can cut a later, unrelated park short. */
#ifndef TERN_RT_OFFLOAD_H
#define TERN_RT_OFFLOAD_H

#include <stddef.h>
#include <stdint.h>

#include "tern/sync.h"

/* The value an offload completion wakes its caller with: positive, so no
 * timer (-ETIMEDOUT), cancellation (-ECANCELED) or plain wake (0) is
 * mistaken for it. */
#define TERN_OFFLOAD_WAKE 0x0ff10ad

typedef struct tern__offload_stats {
    unsigned threads;       /* pool threads running (0 when stopped) */
    size_t queue_max;       /* bound on queued jobs */
    size_t queued;          /* waiting for a thread */
    size_t running;         /* inside fn */
    uint64_t completed;     /* jobs finished since the process started */
    uint64_t rejected;      /* -EAGAIN answers (queue full) */
} tern__offload_stats;

/* A consistent snapshot (taken under the pool lock). */
void tern__offload_get_stats(tern__offload_stats *out);

#endif
