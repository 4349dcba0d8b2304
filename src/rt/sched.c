/* Per-worker scheduler: see sched.h. The loop's phases, in order, are in
 * tern__sched_poll: wait for IO, dispatch events, fire timers, run ready
 * coroutines. */
#include "rt/sched.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "tern.h"

__thread tern__sched *tern__sched_self;

/* Macros, not functions: a function's own entry and exit would be
 * recorded on two different fibers' shadow stacks (the switch happens in
 * between), which corrupts TSan's stack bookkeeping. */
#if TERN_TSAN
#include <sanitizer/tsan_interface.h>
#define tsan_to_coro(s, c)                                                                         \
    do {                                                                                           \
        (s)->tsan_loop_fiber = __tsan_get_current_fiber();                                         \
        __tsan_switch_to_fiber((c)->tsan_fiber, 0);                                                \
    } while (0)
#define tsan_to_loop(s) __tsan_switch_to_fiber((s)->tsan_loop_fiber, 0)
#else
#define tsan_to_coro(s, c) ((void)0)
#define tsan_to_loop(s) ((void)0)
#endif

/* Two vectors swapped under remote_lock: posters append to one while the
 * owner applies the other without the lock. Each starts with room for
 * REMOTE_INITIAL messages, so a post allocates only in bursts beyond it. */
#define REMOTE_INITIAL 256

enum tern__remote_kind {
    TERN__REMOTE_WAKE,   /* wake to.coro with result if with.token matches (0: always) */
    TERN__REMOTE_CANCEL, /* cancel to.coro if its serial is still with.token */
    TERN__REMOTE_CALL,   /* run to.fn(with.arg) on the owner's thread */
};

struct tern__remote_msg {
    enum tern__remote_kind kind;
    int result;
    union {
        tern_coro *coro;
        void (*fn)(void *);
    } to;
    union {
        uint64_t token;
        void *arg;
    } with;
};


uint64_t tern_clock_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t tern_now_ms(void) {
    tern__sched *s = tern__sched_self;
    return (s ? s->now_ns : tern_clock_ns()) / 1000000ull;
}

int tern__sched_init(tern__sched *s, int id, size_t stack_size) {
    memset(s, 0, sizeof *s);
    s->id = id;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) return -errno;
    s->now_ns = tern_clock_ns();
    tern__wheel_init(&s->wheel, s->now_ns);
    s->remote_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (s->remote_fd < 0) {
        int e = -errno;
        close(s->epfd);
        return e;
    }
    pthread_mutex_init(&s->remote_lock, NULL);
    s->remote = malloc(REMOTE_INITIAL * sizeof *s->remote);
    s->remote_spare = malloc(REMOTE_INITIAL * sizeof *s->remote_spare);
    s->remote_cap = s->remote ? REMOTE_INITIAL : 0;
    s->remote_spare_cap = s->remote_spare ? REMOTE_INITIAL : 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = (uint64_t)(uintptr_t)s | TERN__EV_REMOTE};
    epoll_ctl(s->epfd, EPOLL_CTL_ADD, s->remote_fd, &ev);
    /* keep up to 1024 warm stacks: enough for bursts of parked requests,
     * while a spike of 100k coroutines gives its pages back afterwards */
    int r = tern__stack_pool_init(&s->stacks, stack_size, 1024);
    if (r < 0) {
        close(s->epfd);
        return r;
    }
    return 0;
}

void tern__sched_destroy(tern__sched *s) {
    tern__stack_pool_destroy(&s->stacks);
    if (s->remote_fd >= 0) close(s->remote_fd);
    s->remote_fd = -1;
    pthread_mutex_destroy(&s->remote_lock);
    free(s->remote);
    free(s->remote_spare);
    if (s->epfd >= 0) close(s->epfd);
    s->epfd = -1;
}

/* Every coroutine starts here: run the body, then switch to the loop for
 * the last time; the loop releases the stack (a coroutine cannot free the
 * stack it runs on). */
static void coro_entry(void *arg) {
    tern_coro *c = arg;
    void (*fn)(void *) = (void (*)(void *))c->user[0];
    fn((void *)c->user[1]);
    tern__sched *s = tern__sched_self;
    c->flags |= TERN_CORO_DONE;
    tsan_to_loop(s);
    tern__coro_switch(&c->sp, s->loop_sp);
    abort(); /* a finished coroutine is never resumed */
}

tern_coro *tern__sched_coro_new(tern__sched *s, void (*fn)(void *), void *arg) {
    tern_coro *c = tern__coro_create(&s->stacks, coro_entry, NULL);
    if (!c) return NULL;
    c->arg = c;
    c->user[0] = (uint64_t)(uintptr_t)fn;
    c->user[1] = (uint64_t)(uintptr_t)arg;
    c->flags = 0;
    c->result = 0;
    c->owner = NULL;
    c->park_hook = NULL;
    c->park_arg = NULL;
    c->next = NULL;
    c->serial = ++s->next_serial;
    c->wait_token = 0;
#if TERN_TSAN
    c->tsan_fiber = __tsan_create_fiber(0);
#endif
    __atomic_store_n(&s->coros_live, s->coros_live + 1, __ATOMIC_RELAXED);
    return c;
}

/* CPU time of this thread: the running part of accounting counts what the
 * coroutine really got, so CPU taken by other processes is not mistaken
 * for load (a syscall, ~0.2 us: only accounted coroutines pay it). */
static uint64_t thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void resume(tern__sched *s, tern_coro *c) {
    s->current = c;
    if (c->flags & TERN_CORO_ACCOUNT) {
        /* an accounted coroutine only comes here from the run queue:
         * enqueue subtracted the time it became ready */
        c->acct_ready_ns += tern_clock_ns();
        c->acct_mark_ns = thread_cpu_ns();
        tsan_to_coro(s, c);
        tern__coro_switch(&s->loop_sp, c->sp);
        if (c->flags & TERN_CORO_ACCOUNT) c->acct_run_ns += thread_cpu_ns() - c->acct_mark_ns;
    } else {
        tsan_to_coro(s, c);
        tern__coro_switch(&s->loop_sp, c->sp);
    }
    s->current = NULL;
    tern__coro_check(c);
    if (c->flags & TERN_CORO_DONE) {
#if TERN_TSAN
        __tsan_destroy_fiber(c->tsan_fiber);
#endif
        __atomic_store_n(&s->coros_live, s->coros_live - 1, __ATOMIC_RELAXED);
        tern__coro_release(c);
    }
}

void tern__sched_run_now(tern__sched *s, tern_coro *c) { resume(s, c); }

void tern__sched_enqueue(tern__sched *s, tern_coro *c) {
    if (c->flags & TERN_CORO_QUEUED) return;
    c->flags |= TERN_CORO_QUEUED;
    if (c->flags & TERN_CORO_ACCOUNT) c->acct_ready_ns -= tern_clock_ns(); /* see resume */
    c->next = NULL;
    if (s->runq_tail)
        s->runq_tail->next = c;
    else
        s->runq_head = c;
    s->runq_tail = c;
}

void tern__sched_run_ready(tern__sched *s) {
    /* only the coroutines ready at the start: those woken or yielding
     * meanwhile wait for the next pass, after the loop has polled IO */
    tern_coro *last = s->runq_tail;
    while (s->runq_head) {
        tern_coro *c = s->runq_head;
        s->runq_head = c->next;
        if (!s->runq_head) s->runq_tail = NULL;
        c->flags &= ~TERN_CORO_QUEUED;
        resume(s, c);
        if (c == last) break;
    }
}

int tern__sched_park(void) {
    tern__sched *s = tern__sched_self;
    tern_coro *c = s->current;
    if (c->flags & TERN_CORO_CANCELLED) return -ECANCELED;
    if (c->park_hook) c->park_hook(c->park_arg);
    c->flags |= TERN_CORO_PARKED;
    c->result = 0;
    tsan_to_loop(s);
    tern__coro_switch(&c->sp, s->loop_sp);
    return c->result;
}

void tern__sched_wake(tern_coro *c, int result) {
    if (!(c->flags & TERN_CORO_PARKED)) return;
    c->flags &= ~TERN_CORO_PARKED;
    c->result = result;
    tern__sched_enqueue(tern__sched_self, c);
}

void tern__sched_cancel(tern_coro *c) {
    c->flags |= TERN_CORO_CANCELLED;
    tern__sched_wake(c, -ECANCELED);
}

void tern__sched_clear_cancel(tern_coro *c) { c->flags &= ~TERN_CORO_CANCELLED; }

void tern__sched_account_start(void) {
    tern_coro *c = tern__sched_self->current;
    c->acct_run_ns = c->acct_ready_ns = 0;
    c->acct_mark_ns = thread_cpu_ns(); /* the span running now */
    c->flags |= TERN_CORO_ACCOUNT;
}

uint64_t tern__sched_account_stop(uint64_t *run_ns) {
    tern_coro *c = tern__sched_self->current;
    uint64_t run = c->acct_run_ns + (thread_cpu_ns() - c->acct_mark_ns);
    uint64_t total = run + c->acct_ready_ns;
    if (run_ns) *run_ns = run;
    c->flags &= ~TERN_CORO_ACCOUNT;
    return total;
}

void tern__sched_set_park_hook(tern_coro *c, tern__park_hook fn, void *arg) {
    c->park_hook = fn;
    c->park_arg = arg;
}

static void fdwait_event(uint64_t data, uint32_t events);

typedef struct park_timer {
    tern__timer timer;
    tern_coro *coro;
} park_timer;

static void park_timer_fire(tern__timer *t) {
    park_timer *pt = (park_timer *)t;
    tern__sched_wake(pt->coro, -ETIMEDOUT);
}

int tern__sched_park_until(uint64_t deadline_ns) {
    if (!deadline_ns) return tern__sched_park();
    tern__sched *s = tern__sched_self;
    park_timer pt = {.timer = {.fn = park_timer_fire}, .coro = s->current};
    tern__wheel_add(&s->wheel, &pt.timer, deadline_ns);
    int r = tern__sched_park();
    tern__wheel_cancel(&s->wheel, &pt.timer);
    return r;
}

void tern__sched_poll(tern__sched *s, tern__event_fn on_event, int64_t max_wait_ns) {
    struct epoll_event evs[256];
    int64_t wait_ns = -1;
    if (s->runq_head) {
        wait_ns = 0;
    } else {
        wait_ns = tern__wheel_timeout_ns(&s->wheel, tern_clock_ns());
        /* timer slack: wake a little after the earliest deadline, so timers
         * due close together fire in one pass rather than one epoll_wait
         * each (thousands of sleeping requests would otherwise cost a
         * syscall per timer). Never early, at most TERN_TIMER_SLACK_NS late. */
        if (wait_ns > 0) wait_ns += TERN_TIMER_SLACK_NS;
        if (max_wait_ns >= 0 && (wait_ns < 0 || wait_ns > max_wait_ns)) wait_ns = max_wait_ns;
    }
    int n;
    if (wait_ns < 0) {
        n = epoll_wait(s->epfd, evs, 256, -1);
    } else {
        /* epoll_pwait2 takes a timespec, so a 1.3 ms sleep is not rounded up
         * to 2 ms as epoll_wait's millisecond timeout would */
        struct timespec ts = {.tv_sec = wait_ns / 1000000000, .tv_nsec = wait_ns % 1000000000};
        n = epoll_pwait2(s->epfd, evs, 256, &ts, NULL);
        if (n < 0 && errno == ENOSYS) {
            n = epoll_wait(s->epfd, evs, 256, (int)((wait_ns + 999999) / 1000000));
        }
    }
    s->now_ns = tern_clock_ns();
    for (int i = 0; i < n; i++) {
        uint64_t data = evs[i].data.u64;
        switch (data & TERN__EV_TAG_MASK) {
        case TERN__EV_FDWAIT: fdwait_event(data, evs[i].events); break;
        case TERN__EV_REMOTE: tern__sched_drain_remote(s); break;
        default: on_event(s, data, evs[i].events); break;
        }
    }
    if (s->wheel.count) tern__wheel_expire(&s->wheel, s->now_ns);
    if (s->runq_head) tern__sched_run_ready(s);
}

/* ---- public runtime calls ------------------------------------------------ */

int tern_sleep_us(uint64_t us) {
    tern__sched *s = tern__sched_self;
    if (!s || !s->current) {
        /* outside a coroutine (e.g. main thread): a plain blocking sleep */
        struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        }
        return 0;
    }
    /* saturate: a huge sleep (UINT64_MAX as "forever") must not wrap
     * around to a deadline in the past and return at once */
    uint64_t now = tern_clock_ns();
    uint64_t deadline = us > (UINT64_MAX - now) / 1000ull ? UINT64_MAX : now + us * 1000ull;
    int r = tern__sched_park_until(deadline);
    return r == -ETIMEDOUT ? 0 : r;
}

int tern_sleep(uint64_t ms) {
    return tern_sleep_us(ms > UINT64_MAX / 1000ull ? UINT64_MAX : ms * 1000ull);
}

int tern_yield(void) {
    tern__sched *s = tern__sched_self;
    if (!s || !s->current) return 0;
    tern_coro *c = s->current;
    /* no early return when cancelled: a CPU-bound task that finishes its
     * work despite the cancel (or ignores the result) must still let IO and
     * timers run, or it would hold the worker until it ends */
    /* ready again at once: parked and queued in one step */
    if (c->park_hook) c->park_hook(c->park_arg);
    tern__sched_enqueue(s, c);
    tsan_to_loop(s);
    tern__coro_switch(&c->sp, s->loop_sp);
    return (c->flags & TERN_CORO_CANCELLED) ? -ECANCELED : 0;
}

int tern_wait_fd(int fd, unsigned events, int64_t timeout_ms) {
    tern__sched *s = tern__sched_self;
    if (!s || !s->current) return -EPERM;
    if (s->current->flags & TERN_CORO_CANCELLED) return -ECANCELED;
    tern__fdwait w = {.coro = s->current, .revents = 0};
    struct epoll_event ev = {.events = (events & (EPOLLIN | EPOLLOUT | EPOLLPRI)) | EPOLLONESHOT,
                             .data.u64 = (uint64_t)(uintptr_t)&w | TERN__EV_FDWAIT};
    if (timeout_ms == 0) {
        /* a poll, not a wait: ask the kernel directly */
        struct pollfd p = {.fd = fd, .events = (short)(events & (POLLIN | POLLOUT | POLLPRI))};
        int n = poll(&p, 1, 0);
        return n < 0 ? -errno : n == 0 ? 0 : p.revents;
    }
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) return -errno;
    /* clamped so INT64_MAX ("forever") cannot wrap to a past deadline */
    if (timeout_ms > INT64_MAX / 1000000) timeout_ms = INT64_MAX / 1000000;
    uint64_t deadline = timeout_ms < 0 ? 0 : tern_clock_ns() + (uint64_t)timeout_ms * 1000000ull;
    int r = tern__sched_park_until(deadline);
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
    if (w.revents) return (int)w.revents;
    if (r == -ETIMEDOUT) return 0;
    return r < 0 ? r : 0;
}

static void fdwait_event(uint64_t data, uint32_t events) {
    tern__fdwait *w = (tern__fdwait *)(uintptr_t)(data & ~(uint64_t)TERN__EV_TAG_MASK);
    w->revents |= events;
    tern__sched_wake(w->coro, 0);
}

/* ---- waits other threads may end ------------------------------------------ */

uint64_t tern__sched_wait_begin(void) {
    tern__sched *s = tern__sched_self;
    tern_coro *c = s->current;
    c->wait_token = ++s->next_serial;
    return c->wait_token;
}

void tern__sched_wait_end(void) { tern__sched_self->current->wait_token = 0; }

void tern__sched_wake_token(tern_coro *c, uint64_t token, int result) {
    if (c->wait_token == token) tern__sched_wake(c, result);
}

static void retry_pause(void) {
    struct timespec ts = {0, 1000000};
    nanosleep(&ts, NULL);
}

void tern__sched_wake_from_any(tern__sched *s, tern_coro *c, uint64_t token, int result) {
    if (s == tern__sched_self) {
        tern__sched_wake_token(c, token, result);
        return;
    }
    while (tern__sched_remote_wake_token(s, c, token, result) < 0) retry_pause();
}

/* ---- the remote queue ------------------------------------------------------ */

static int remote_post(tern__sched *s, struct tern__remote_msg m) {
    pthread_mutex_lock(&s->remote_lock);
    if (s->remote_len == s->remote_cap) {
        size_t cap = s->remote_cap ? s->remote_cap * 2 : REMOTE_INITIAL;
        struct tern__remote_msg *p = realloc(s->remote, cap * sizeof *p);
        if (!p) {
            pthread_mutex_unlock(&s->remote_lock);
            return -ENOMEM;
        }
        s->remote = p;
        s->remote_cap = cap;
    }
    s->remote[s->remote_len++] = m;
    int first = s->remote_len == 1;
    pthread_mutex_unlock(&s->remote_lock);
    /* one eventfd write per batch: later posters see a non-empty queue */
    if (first) {
        uint64_t one = 1;
        ssize_t r = write(s->remote_fd, &one, sizeof one);
        (void)r;
    }
    return 0;
}

int tern__sched_remote_wake(tern__sched *s, tern_coro *c, int result) {
    return remote_post(s, (struct tern__remote_msg){
                              .kind = TERN__REMOTE_WAKE, .result = result, .to.coro = c});
}

int tern__sched_remote_wake_token(tern__sched *s, tern_coro *c, uint64_t token, int result) {
    return remote_post(s, (struct tern__remote_msg){.kind = TERN__REMOTE_WAKE,
                                                    .result = result,
                                                    .to.coro = c,
                                                    .with.token = token});
}

int tern__sched_remote_call(tern__sched *s, void (*fn)(void *), void *arg) {
    return remote_post(s, (struct tern__remote_msg){
                              .kind = TERN__REMOTE_CALL, .to.fn = fn, .with.arg = arg});
}

/* c's serial is compared before anything else is looked at: a finished
 * coroutine's stack stays mapped while its scheduler lives, and a reused
 * one carries a new serial (a dropped page reads as serial 0). */
static void cancel_if_serial(tern_coro *c, uint64_t serial) {
    if (c->serial == serial && !(c->flags & TERN_CORO_DONE)) tern__sched_cancel(c);
}

void tern__sched_cancel_from_any(tern__sched *s, tern_coro *c, uint64_t serial) {
    if (s == tern__sched_self) {
        cancel_if_serial(c, serial);
        return;
    }
    struct tern__remote_msg m = {.kind = TERN__REMOTE_CANCEL, .to.coro = c, .with.token = serial};
    while (remote_post(s, m) < 0) retry_pause();
}

void tern__sched_drain_remote(tern__sched *s) {
    uint64_t v;
    ssize_t r = read(s->remote_fd, &v, sizeof v);
    (void)r;
    pthread_mutex_lock(&s->remote_lock);
    /* swap buffers so messages are applied without the lock held */
    struct tern__remote_msg *list = s->remote;
    size_t n = s->remote_len, cap = s->remote_cap;
    s->remote = s->remote_spare;
    s->remote_cap = s->remote_spare_cap;
    s->remote_len = 0;
    pthread_mutex_unlock(&s->remote_lock);
    for (size_t i = 0; i < n; i++) {
        struct tern__remote_msg *m = &list[i];
        switch (m->kind) {
        case TERN__REMOTE_WAKE:
            if (!m->with.token || m->to.coro->wait_token == m->with.token)
                tern__sched_wake(m->to.coro, m->result);
            break;
        case TERN__REMOTE_CANCEL: cancel_if_serial(m->to.coro, m->with.token); break;
        case TERN__REMOTE_CALL: m->to.fn(m->with.arg); break;
        }
    }
    s->remote_spare = list;
    s->remote_spare_cap = cap;
}

/* ---- the scheduler group --------------------------------------------------- */

static tern__sched *group[TERN__SCHED_GROUP_MAX];
static int group_end; /* 1 + highest id ever registered (atomic) */

int tern__sched_group_add(tern__sched *s) {
    if (s->id < 0 || s->id >= TERN__SCHED_GROUP_MAX) return -EINVAL;
    tern__sched *expect = NULL;
    if (!__atomic_compare_exchange_n(&group[s->id], &expect, s, 0, __ATOMIC_RELEASE,
                                     __ATOMIC_RELAXED))
        return expect == s ? 0 : -EEXIST;
    int end = __atomic_load_n(&group_end, __ATOMIC_RELAXED);
    while (end < s->id + 1 &&
           !__atomic_compare_exchange_n(&group_end, &end, s->id + 1, 1, __ATOMIC_RELEASE,
                                        __ATOMIC_RELAXED)) {
    }
    return 0;
}

void tern__sched_group_remove(tern__sched *s) {
    if (s->id < 0 || s->id >= TERN__SCHED_GROUP_MAX) return;
    tern__sched *expect = s;
    __atomic_compare_exchange_n(&group[s->id], &expect, NULL, 0, __ATOMIC_RELEASE,
                                __ATOMIC_RELAXED);
}

tern__sched *tern__sched_group_get(int id) {
    if (id < 0 || id >= TERN__SCHED_GROUP_MAX) return NULL;
    return __atomic_load_n(&group[id], __ATOMIC_ACQUIRE);
}

uint64_t tern__sched_load(const tern__sched *s) {
    return __atomic_load_n(&s->coros_live, __ATOMIC_RELAXED) +
           __atomic_load_n(&s->incoming, __ATOMIC_RELAXED);
}

tern__sched *tern__sched_group_least_loaded(void) {
    /* the scan starts at a rotating index so that ties (say, every worker
     * idle) spread over the workers instead of all landing on worker 0 */
    static __thread unsigned rotor;
    int end = __atomic_load_n(&group_end, __ATOMIC_ACQUIRE);
    tern__sched *best = NULL;
    uint64_t best_load = UINT64_MAX;
    unsigned start = end ? rotor++ % (unsigned)end : 0;
    for (int i = 0; i < end; i++) {
        tern__sched *s = tern__sched_group_get((int)((start + (unsigned)i) % (unsigned)end));
        if (!s) continue;
        uint64_t load = tern__sched_load(s);
        if (load < best_load) {
            best = s;
            best_load = load;
        }
    }
    return best ? best : tern__sched_self;
}
