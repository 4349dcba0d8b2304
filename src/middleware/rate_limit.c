/* Per-client rate limiting: a token bucket per key in a table shared by all
 * workers (see tern/middleware.h).
 *
 * The table is split in stripes of SLOTS buckets, each stripe with its own
 * lock, so workers contend only when their clients hash to the same stripe,
 * and for a few dozen instructions. Keys are 64-bit hashes seeded per table
 * (a client cannot aim its keys at one stripe without knowing the seed);
 * two clients whose 64-bit hashes collide would share a bucket, a 2^-64
 * chance per pair. A full stripe forgets its least recently seen client:
 * memory is bounded by max_clients whatever the number of clients. */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "middleware/mw.h"

#define SLOTS 16 /* per stripe: a linear scan of 16 keys beats any index */

typedef struct bucket {
    uint64_t key; /* 0: free */
    uint64_t stamp_ns;
    double tokens;
} bucket;

typedef struct stripe {
    pthread_mutex_t lock;
    bucket b[SLOTS];
} __attribute__((aligned(64))) stripe;

struct tern_rate_limit {
    double rate, burst;
    char *key_header;
    uint64_t seed;
    size_t mask; /* stripes - 1 */
    stripe *stripes;
};

unsigned tern__bucket_take(double *tokens, uint64_t *stamp_ns, uint64_t now_ns, double rate,
                           double burst) {
    if (now_ns > *stamp_ns) {
        *tokens += (double)(now_ns - *stamp_ns) * 1e-9 * rate;
        if (*tokens > burst) *tokens = burst;
        *stamp_ns = now_ns;
    }
    if (*tokens >= 1.0) {
        *tokens -= 1.0;
        return 0;
    }
    double wait = (1.0 - *tokens) / rate;
    if (wait > 86400.0) return 86400u;
    unsigned s = (unsigned)wait;
    if ((double)s < wait) s++; /* rounded up: retrying after s seconds succeeds */
    return s ? s : 1u;
}

tern_rate_limit *tern_rate_limit_new(const tern_rate_limit_opts *o) {
    if (!o || !(o->rate > 0) || (o->burst != 0 && !(o->burst >= 1))) {
        errno = EINVAL;
        return NULL;
    }
    tern_rate_limit *rl = calloc(1, sizeof *rl);
    if (!rl) return NULL;
    rl->rate = o->rate;
    rl->burst = o->burst ? o->burst : (o->rate < 1 ? 1 : o->rate);
    size_t want = o->max_clients ? o->max_clients : 65536, stripes = 1;
    while (stripes * SLOTS < want) stripes <<= 1;
    rl->mask = stripes - 1;
    rl->stripes = aligned_alloc(64, stripes * sizeof(stripe));
    rl->key_header = o->key_header ? strdup(o->key_header) : NULL;
    if (!rl->stripes || (o->key_header && !rl->key_header)) {
        tern_rate_limit_free(rl);
        errno = ENOMEM;
        return NULL;
    }
    memset(rl->stripes, 0, stripes * sizeof(stripe));
    for (size_t i = 0; i < stripes; i++) pthread_mutex_init(&rl->stripes[i].lock, NULL);
    if (getrandom(&rl->seed, sizeof rl->seed, GRND_NONBLOCK) != (ssize_t)sizeof rl->seed)
        rl->seed = (uint64_t)(uintptr_t)rl ^ 0x9e3779b97f4a7c15ull;
    return rl;
}

void tern_rate_limit_free(tern_rate_limit *rl) {
    if (!rl) return;
    if (rl->stripes)
        for (size_t i = 0; i <= rl->mask; i++) pthread_mutex_destroy(&rl->stripes[i].lock);
    free(rl->stripes);
    free(rl->key_header);
    free(rl);
}

/* FNV-1a over the bytes, started from the seed, then a splitmix64 finish
 * so every bit of the key reaches the stripe index. Never 0 (free). */
static uint64_t key_hash(uint64_t seed, const void *p, size_t n) {
    uint64_t h = 0xcbf29ce484222325ull ^ seed;
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 0x100000001b3ull;
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebull;
    h ^= h >> 31;
    return h ? h : 1;
}

/* The client's key: the header's value, or the peer's address (without
 * the port: every connection of one client shares its bucket). */
static uint64_t client_key(const tern_rate_limit *rl, tern_ctx *ctx) {
    if (rl->key_header) {
        const char *v = tern_req_header(ctx, rl->key_header);
        if (v && v[0]) return key_hash(rl->seed, v, strlen(v));
    }
    struct sockaddr_storage ss;
    socklen_t len;
    if (tern_req_peer(ctx, &ss, &len) < 0) return key_hash(rl->seed, "?", 1);
    if (ss.ss_family == AF_INET6)
        return key_hash(rl->seed, &((struct sockaddr_in6 *)&ss)->sin6_addr, 16);
    if (ss.ss_family == AF_INET)
        return key_hash(rl->seed, &((struct sockaddr_in *)&ss)->sin_addr, 4);
    return key_hash(rl->seed, "unix", 4);
}

/* 0 when the client may go on, else Retry-After in seconds. */
unsigned tern__rate_limit_take(tern_rate_limit *rl, uint64_t key, uint64_t now_ns) {
    stripe *s = &rl->stripes[key & rl->mask];
    pthread_mutex_lock(&s->lock);
    bucket *hit = NULL, *victim = &s->b[0];
    for (int i = 0; i < SLOTS; i++) {
        bucket *b = &s->b[i];
        if (b->key == key) {
            hit = b;
            break;
        }
        if (b->key == 0 ? victim->key != 0 : victim->key != 0 && b->stamp_ns < victim->stamp_ns)
            victim = b;
    }
    if (!hit) {
        /* a free slot, else the least recently seen client: forgetting it
         * only gives it a full bucket, as if it had stayed away */
        hit = victim;
        *hit = (bucket){.key = key, .stamp_ns = now_ns, .tokens = rl->burst};
    }
    unsigned wait = tern__bucket_take(&hit->tokens, &hit->stamp_ns, now_ns, rl->rate, rl->burst);
    pthread_mutex_unlock(&s->lock);
    return wait;
}

void tern_mw_rate_limit(tern_ctx *ctx, tern_next *next, void *arg) {
    tern_rate_limit *rl = arg;
    unsigned wait = tern__rate_limit_take(rl, client_key(rl, ctx), tern_clock_ns());
    if (!wait) {
        tern_next_call(next);
        return;
    }
    char v[16];
    size_t n = 0;
    char tmp[16];
    do tmp[n++] = (char)('0' + wait % 10);
    while ((wait /= 10));
    for (size_t i = 0; i < n; i++) v[i] = tmp[n - 1 - i];
    v[n] = 0;
    tern_resp_text(ctx, 429, "429 Too Many Requests: rate limit exceeded, retry later\n");
    tern_resp_set_header(ctx, "Retry-After", v);
}
