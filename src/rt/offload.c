/* Offload pool: a fixed set of pthreads running blocking calls for
 * coroutines, with a bounded queue (see include/tern/sync.h for the API and
 * rt/offload.h for how results travel back).
 *
 * The queue is a ring of pointers to job records that live on the callers'
 * coroutine stacks, so submitting allocates nothing. One mutex guards the
 * ring and counters; jobs are seconds-long at worst and microseconds at
 * best, so a lock-free queue would not show in any profile. */
#include "rt/offload.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

#include "rt/sched.h"

enum {
    JOB_QUEUED = 0,   /* in the ring or inside fn */
    JOB_DONE = 1,     /* fn returned and ret is set; the wake is being posted */
    JOB_POSTED = 2,   /* the pool thread is finished with the job */
};

#define DEFAULT_MIN_THREADS 4
#define DEFAULT_QUEUE 1024   /* 8 KiB of pointers; deeper than that, shed load */
#define MAX_THREADS 1024
#define MAX_QUEUE (1u << 20)

typedef struct offload_job {
    void *(*fn)(void *);
    void *arg;
    void *ret;
    tern__sched *sched;      /* the caller's worker */
    tern_coro *coro;        /* the caller */
    atomic_int state;
} offload_job;

static struct {
    pthread_mutex_t lock;
    pthread_cond_t work;        /* signalled when a job is queued or on stop */
    int cfg_threads;            /* 0 = default */
    size_t cfg_queue;           /* 0 = default */
    int started, stopping;
    pthread_t *threads;
    unsigned nthreads;
    offload_job **ring;
    size_t cap, head, len;
    size_t running;
    uint64_t completed, rejected;
    int atexit_done;
} pool = {
    .lock = PTHREAD_MUTEX_INITIALIZER,
    .work = PTHREAD_COND_INITIALIZER,
};

static void *pool_main(void *unused) {
    pthread_mutex_lock(&pool.lock);
    for (;;) {
        while (!pool.len && !pool.stopping) pthread_cond_wait(&pool.work, &pool.lock);
        /* on stop, finish what was queued first: each job has a parked caller */
        if (!pool.len) break;
        offload_job *job = pool.ring[pool.head];
        pool.head = (pool.head + 1) % pool.cap;
        pool.len--;
        pool.running++;
        pthread_mutex_unlock(&pool.lock);

        job->ret = job->fn(job->arg);
        tern__sched *s = job->sched;
        tern_coro *c = job->coro;
        atomic_store_explicit(&job->state, JOB_DONE, memory_order_release);
        /* the wake cannot be dropped: only out of memory makes it fail, and
         * the caller stays parked until it gets through */
        while (tern__sched_remote_wake(s, c, TERN_OFFLOAD_WAKE) < 0) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        atomic_store_explicit(&job->state, JOB_POSTED, memory_order_release);

        pthread_mutex_lock(&pool.lock);
        pool.running--;
        pool.completed++;
    }
    pthread_mutex_unlock(&pool.lock);
    return unused;
}

static unsigned default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > DEFAULT_MIN_THREADS ? (unsigned)(n > MAX_THREADS ? MAX_THREADS : n)
                                   : DEFAULT_MIN_THREADS;
}

/* Under pool.lock. Starts the threads; 0 or -errno. */
static int pool_start(void) {
    unsigned n = pool.cfg_threads > 0 ? (unsigned)pool.cfg_threads : default_threads();
    size_t q = pool.cfg_queue ? pool.cfg_queue : DEFAULT_QUEUE;
    pool.ring = malloc(q * sizeof *pool.ring);
    pool.threads = malloc(n * sizeof *pool.threads);
    if (!pool.ring || !pool.threads) {
        free(pool.ring);
        free(pool.threads);
        pool.ring = NULL;
        pool.threads = NULL;
        return -ENOMEM;
    }
    pool.cap = q;
    pool.head = pool.len = 0;
    /* pool threads take no signals: SIGINT/SIGTERM belong to the server's
     * signalfd, and a handler must not run on a thread holding a job */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    unsigned made = 0;
    int err = 0;
    for (; made < n; made++) {
        err = pthread_create(&pool.threads[made], NULL, pool_main, NULL);
        if (err) break;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (made == 0) {
        free(pool.ring);
        free(pool.threads);
        pool.ring = NULL;
        pool.threads = NULL;
        return -err;
    }
    pool.nthreads = made; /* fewer than asked if the system refused more */
    pool.started = 1;
    if (!pool.atexit_done) {
        pool.atexit_done = 1;
        atexit(tern_offload_shutdown);
    }
    return 0;
}

void tern_offload_shutdown(void) {
    pthread_mutex_lock(&pool.lock);
    if (!pool.started || pool.stopping) {
        pthread_mutex_unlock(&pool.lock);
        return;
    }
    pool.stopping = 1;
    pthread_cond_broadcast(&pool.work);
    unsigned n = pool.nthreads;
    pthread_t *threads = pool.threads;
    pthread_mutex_unlock(&pool.lock);
    for (unsigned i = 0; i < n; i++) pthread_join(threads[i], NULL);
    pthread_mutex_lock(&pool.lock);
    free(pool.threads);
    free(pool.ring);
    pool.threads = NULL;
    pool.ring = NULL;
    pool.nthreads = 0;
    pool.cap = pool.head = pool.len = 0;
    pool.started = 0;
    pool.stopping = 0;
    pthread_mutex_unlock(&pool.lock);
}

int tern_offload_configure(int threads, size_t queue_max) {
    if (threads > MAX_THREADS || queue_max > MAX_QUEUE) return -EINVAL;
    pthread_mutex_lock(&pool.lock);
    int r = 0;
    if (pool.started) {
        r = -EBUSY;
    } else {
        pool.cfg_threads = threads > 0 ? threads : 0;
        pool.cfg_queue = queue_max;
    }
    pthread_mutex_unlock(&pool.lock);
    return r;
}

void tern__offload_get_stats(tern__offload_stats *out) {
    pthread_mutex_lock(&pool.lock);
    out->threads = pool.nthreads;
    out->queue_max = pool.started ? pool.cap : (pool.cfg_queue ? pool.cfg_queue : DEFAULT_QUEUE);
    out->queued = pool.len;
    out->running = pool.running;
    out->completed = pool.completed;
    out->rejected = pool.rejected;
    pthread_mutex_unlock(&pool.lock);
}

/* Waits for the job to be POSTED whatever happens to the caller meanwhile.
 * Cancellation is sticky in the scheduler (every park returns -ECANCELED at
 * once), so the flag is set aside while waiting and put back after; a
 * cancel that arrives during the wait is remembered the same way. Returns
 * non-zero when the caller was cancelled before or during the wait. */
static int wait_job(tern__sched *s, offload_job *job) {
    tern_coro *self = s->current;
    uint32_t cancelled = self->flags & TERN_CORO_CANCELLED;
    self->flags &= ~TERN_CORO_CANCELLED;
    int consumed = 0;
    for (;;) {
        int st = atomic_load_explicit(&job->state, memory_order_acquire);
        if (st == JOB_POSTED) break;
        int r;
        if (st == JOB_DONE) {
            /* the pool thread is posting the wake right now: parking could
             * miss it (if it was already drained while we were runnable), so
             * let the loop run once and look again; this lasts microseconds */
            r = tern_yield();
        } else {
            /* not DONE yet, so the wake is not posted yet either, and it will
             * find us parked: nothing runs between this check and the park */
            r = tern__sched_park();
        }
        if (r == TERN_OFFLOAD_WAKE) consumed = 1;
        cancelled |= self->flags & TERN_CORO_CANCELLED;
        self->flags &= ~TERN_CORO_CANCELLED;
    }
    /* Our wake may still sit in the worker's remote queue (we were woken by
     * a cancel, then it was posted): apply the queue now, while we are
     * running, so it is dropped here instead of waking a later park. */
    if (!consumed) tern__sched_drain_remote(s);
    self->flags |= cancelled;
    return cancelled != 0;
}

int tern_offload(void *(*fn)(void *), void *arg, void **result) {
    if (!fn) return -EINVAL;
    tern__sched *s = tern__sched_self;
    if (!s || !s->current) {
        /* no worker to keep serving: just call it */
        void *r = fn(arg);
        if (result) *result = r;
        return 0;
    }
    offload_job job = {.fn = fn, .arg = arg, .sched = s, .coro = s->current};
    atomic_init(&job.state, JOB_QUEUED);

    pthread_mutex_lock(&pool.lock);
    if (pool.stopping) {
        pthread_mutex_unlock(&pool.lock);
        return -ESHUTDOWN;
    }
    if (!pool.started) {
        int r = pool_start();
        if (r < 0) {
            pthread_mutex_unlock(&pool.lock);
            return r == -ENOMEM ? r : -EAGAIN;
        }
    }
    if (pool.len == pool.cap) {
        pool.rejected++;
        pthread_mutex_unlock(&pool.lock);
        return -EAGAIN;
    }
    pool.ring[(pool.head + pool.len) % pool.cap] = &job;
    pool.len++;
    pthread_cond_signal(&pool.work);
    pthread_mutex_unlock(&pool.lock);

    int cancelled = wait_job(s, &job);
    if (result) *result = job.ret;
    return cancelled ? -ECANCELED : 0;
}
