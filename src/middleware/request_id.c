/* Request ID middleware: keep a valid incoming X-Request-ID or mint one,
 * and echo it in the answer (see tern/middleware.h). */
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "http/ctx.h"
#include "middleware/request_id.h"

/* A minted ID is 24 hex digits: 32 random bits chosen once per process
 * (two processes, or one restarted, do not repeat each other), the worker
 * (16 bits: workers never repeat each other) and that worker's counter
 * (48 bits, a 3-day run at 1e9 requests/s). No shared counter, no lock. */
static uint32_t process_prefix;
static pthread_once_t prefix_once = PTHREAD_ONCE_INIT;
static __thread uint64_t counter;

static void prefix_init(void) {
    uint32_t v = 0;
    if (getrandom(&v, sizeof v, GRND_NONBLOCK) != (ssize_t)sizeof v) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        v = (uint32_t)ts.tv_nsec ^ (uint32_t)ts.tv_sec ^ ((uint32_t)getpid() << 16);
    }
    process_prefix = v;
}

void tern__request_id_mint(char out[TERN__REQUEST_ID_MINTED + 1], int worker) {
    static const char hex[] = "0123456789abcdef";
    pthread_once(&prefix_once, prefix_init);
    uint64_t n = ++counter;
    uint32_t p = process_prefix;
    uint32_t wk = (uint32_t)worker & 0xffffu;
    for (int i = 7; i >= 0; i--, p >>= 4) out[i] = hex[p & 15];
    for (int i = 11; i >= 8; i--, wk >>= 4) out[i] = hex[wk & 15];
    for (int i = 23; i >= 12; i--, n >>= 4) out[i] = hex[n & 15];
    out[TERN__REQUEST_ID_MINTED] = 0;
}

void tern_mw_request_id(tern_ctx *ctx, tern_next *next, void *arg) {
    (void)arg;
    const char *in = tern_req_header(ctx, "X-Request-ID");
    if (!in || tern_req_set_id(ctx, in) < 0) {
        char id[TERN__REQUEST_ID_MINTED + 1];
        tern__request_id_mint(id, tern_worker_id());
        if (tern_req_set_id(ctx, id) < 0) { /* out of memory: ctx->oom answers 503 */
            tern_next_call(next);
            return;
        }
    }
    /* before the handler, so a streamed answer carries it too; again after,
     * because an error page starts from a clean set of headers */
    tern_resp_set_header(ctx, "X-Request-ID", ctx->request_id);
    tern_next_call(next);
    if (ctx->stream_state == TERN__STREAM_NONE)
        tern_resp_set_header(ctx, "X-Request-ID", ctx->request_id);
}
