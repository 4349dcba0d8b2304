/* Token buckets and the shared table: refill, burst, Retry-After, bounded
 * memory with eviction, and exact accounting under threads. */
#include <pthread.h>

#include "check.h"
#include "middleware/mw.h"

#define S 1000000000ull

static void test_bucket(void) {
    double tokens = 3;
    uint64_t stamp = 10 * S;
    /* a full bucket of 3 at 2 tokens/s: three pass at once, the fourth waits */
    for (int i = 0; i < 3; i++) CHECK_INT(tern__bucket_take(&tokens, &stamp, 10 * S, 2, 3), 0);
    CHECK_INT(tern__bucket_take(&tokens, &stamp, 10 * S, 2, 3), 1); /* 0.5 s, rounded up */
    /* half a second later one token is back */
    CHECK_INT(tern__bucket_take(&tokens, &stamp, 10 * S + S / 2, 2, 3), 0);
    CHECK_INT(tern__bucket_take(&tokens, &stamp, 10 * S + S / 2, 2, 3), 1);
    /* a long pause refills to the burst, never beyond */
    for (int i = 0; i < 3; i++) CHECK_INT(tern__bucket_take(&tokens, &stamp, 100 * S, 2, 3), 0);
    CHECK(tern__bucket_take(&tokens, &stamp, 100 * S, 2, 3) > 0);
    /* slow rates: Retry-After is whole seconds until a token is back */
    double t2 = 1;
    uint64_t s2 = 0;
    CHECK_INT(tern__bucket_take(&t2, &s2, 0, 0.1, 1), 0);
    CHECK_INT(tern__bucket_take(&t2, &s2, 0, 0.1, 1), 10);
    CHECK_INT(tern__bucket_take(&t2, &s2, 4 * S, 0.1, 1), 6);
    /* a clock that steps back (another thread's older reading) takes nothing */
    CHECK(tern__bucket_take(&t2, &s2, 1 * S, 0.1, 1) > 0);
}

static void test_table_keys_and_eviction(void) {
    tern_rate_limit *rl =
        tern_rate_limit_new(&(tern_rate_limit_opts){.rate = 1, .burst = 2, .max_clients = 16});
    CHECK(rl != NULL);
    /* two clients have separate buckets */
    CHECK_INT(tern__rate_limit_take(rl, 0x10, 5 * S), 0);
    CHECK_INT(tern__rate_limit_take(rl, 0x10, 5 * S), 0);
    CHECK(tern__rate_limit_take(rl, 0x10, 5 * S) > 0);
    CHECK_INT(tern__rate_limit_take(rl, 0x20, 5 * S), 0);
    /* 16 slots (one stripe): 40 other clients push the least recently seen
     * out; memory stays the same, and a forgotten client starts full */
    for (uint64_t k = 1; k <= 40; k++)
        CHECK_INT(tern__rate_limit_take(rl, 0x1000 + (k << 4), 6 * S), 0);
    CHECK_INT(tern__rate_limit_take(rl, 0x10, 6 * S), 0);
    CHECK_INT(tern__rate_limit_take(rl, 0x10, 6 * S), 0);
    CHECK(tern__rate_limit_take(rl, 0x10, 6 * S) > 0);
    tern_rate_limit_free(rl);
    CHECK(tern_rate_limit_new(&(tern_rate_limit_opts){.rate = 0}) == NULL);
    CHECK(tern_rate_limit_new(&(tern_rate_limit_opts){.rate = 1, .burst = 0.5}) == NULL);
}

/* Four threads hammer 8 keys at one instant: exactly burst requests per
 * key pass, however the threads interleave. */
static tern_rate_limit *shared;
static int passed[8];

static void *hammer(void *arg) {
    (void)arg;
    for (int i = 0; i < 4000; i++) {
        int k = i % 8;
        if (tern__rate_limit_take(shared, (uint64_t)(k + 1) * 0x9e3779b97f4a7c15ull, 50 * S) == 0)
            __atomic_fetch_add(&passed[k], 1, __ATOMIC_RELAXED);
    }
    return NULL;
}

static void test_threads(void) {
    shared = tern_rate_limit_new(&(tern_rate_limit_opts){.rate = 10, .burst = 100});
    pthread_t t[4];
    for (int i = 0; i < 4; i++) pthread_create(&t[i], NULL, hammer, NULL);
    for (int i = 0; i < 4; i++) pthread_join(t[i], NULL);
    for (int k = 0; k < 8; k++) CHECK_INT(passed[k], 100);
    tern_rate_limit_free(shared);
}

int main(void) {
    test_bucket();
    test_table_keys_and_eviction();
    test_threads();
    return check_done();
}
