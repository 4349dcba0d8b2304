/* Per-worker scheduler: see sched.h. The loop's phases, in order, are in
 * tern_sched_poll: wait for IO, dispatch events, fire timers, run ready
 * coroutines. */
#include "rt/sched.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "tern.h"

__thread tern_sched *tern_sched_self;

uint64_t tern_clock_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t tern_now_ms(void) {
    tern_sched *s = tern_sched_self;
    return (s ? s->now_ns : tern_clock_ns()) / 1000000ull;
}

int tern_sched_init(tern_sched *s, int id, size_t stack_size) {
    memset(s, 0, sizeof *s);
    s->id = id;
    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    if (s->epfd < 0) return -errno;
    s->now_ns = tern_clock_ns();
    tern_wheel_init(&s->wheel, s->now_ns);
    /* keep up to 1024 warm stacks: enough for bursts of parked requests,
     * while a spike of 100k coroutines gives its pages back afterwards */
    int r = tern_stack_pool_init(&s->stacks, stack_size, 1024);
    if (r < 0) {
        close(s->epfd);
        return r;
    }
    return 0;
}

void tern_sched_destroy(tern_sched *s) {
    tern_stack_pool_destroy(&s->stacks);
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
    tern_sched *s = tern_sched_self;
    c->flags |= TERN_CORO_DONE;
    tern_coro_switch(&c->sp, s->loop_sp);
    abort(); /* a finished coroutine is never resumed */
}

tern_coro *tern_sched_coro_new(tern_sched *s, void (*fn)(void *), void *arg) {
    tern_coro *c = tern_coro_create(&s->stacks, coro_entry, NULL);
    if (!c) return NULL;
    c->arg = c;
    c->user[0] = (uint64_t)(uintptr_t)fn;
    c->user[1] = (uint64_t)(uintptr_t)arg;
    c->flags = 0;
    c->result = 0;
    c->owner = NULL;
    c->next = NULL;
    s->coros_live++;
    return c;
}

static void resume(tern_sched *s, tern_coro *c) {
    s->current = c;
    s->switches++;
    tern_coro_switch(&s->loop_sp, c->sp);
    s->current = NULL;
    tern_coro_check(c);
    if (c->flags & TERN_CORO_DONE) {
        s->coros_live--;
        tern_coro_release(c);
    }
}

void tern_sched_run_now(tern_sched *s, tern_coro *c) { resume(s, c); }

void tern_sched_enqueue(tern_sched *s, tern_coro *c) {
    if (c->flags & TERN_CORO_QUEUED) return;
    c->flags |= TERN_CORO_QUEUED;
    c->next = NULL;
    if (s->runq_tail)
        s->runq_tail->next = c;
    else
        s->runq_head = c;
    s->runq_tail = c;
}

void tern_sched_run_ready(tern_sched *s) {
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

int tern_sched_park(void) {
    tern_sched *s = tern_sched_self;
    tern_coro *c = s->current;
    if (c->flags & TERN_CORO_CANCELLED) return -ECANCELED;
    if (c->flags & TERN_CORO_PARK_HOOK) s->park_hook(c);
    c->flags |= TERN_CORO_PARKED;
    c->result = 0;
    s->switches++;
    tern_coro_switch(&c->sp, s->loop_sp);
    return c->result;
}

void tern_sched_wake(tern_coro *c, int result) {
    if (!(c->flags & TERN_CORO_PARKED)) return;
    c->flags &= ~TERN_CORO_PARKED;
    c->result = result;
    tern_sched_enqueue(tern_sched_self, c);
}

void tern_sched_cancel(tern_coro *c) {
    c->flags |= TERN_CORO_CANCELLED;
    tern_sched_wake(c, -ECANCELED);
}

typedef struct park_timer {
    tern_timer timer;
    tern_coro *coro;
} park_timer;

static void park_timer_fire(tern_timer *t) {
    park_timer *pt = (park_timer *)t;
    tern_sched *s = tern_sched_self;
    /* loop lag: how late this timer fired (metrics, fairness) */
    if (s->now_ns > t->deadline_ns && s->now_ns - t->deadline_ns > s->lag_ns_max)
        s->lag_ns_max = s->now_ns - t->deadline_ns;
    tern_sched_wake(pt->coro, -ETIMEDOUT);
}

int tern_sched_park_until(uint64_t deadline_ns) {
    if (!deadline_ns) return tern_sched_park();
    tern_sched *s = tern_sched_self;
    park_timer pt = {.timer = {.fn = park_timer_fire}, .coro = s->current};
    tern_wheel_add(&s->wheel, &pt.timer, deadline_ns);
    int r = tern_sched_park();
    tern_wheel_cancel(&s->wheel, &pt.timer);
    return r;
}

void tern_sched_poll(tern_sched *s, tern_event_fn on_event, int64_t max_wait_ns) {
    struct epoll_event evs[256];
    int64_t wait_ns = -1;
    if (s->runq_head) {
        wait_ns = 0;
    } else {
        wait_ns = tern_wheel_timeout_ns(&s->wheel, tern_clock_ns());
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
    for (int i = 0; i < n; i++) on_event(s, evs[i].data.u64, evs[i].events);
    if (s->wheel.count) tern_wheel_expire(&s->wheel, s->now_ns);
    if (s->runq_head) tern_sched_run_ready(s);
}

/* ---- public runtime calls ------------------------------------------------ */

int tern_sleep_us(uint64_t us) {
    tern_sched *s = tern_sched_self;
    if (!s || !s->current) {
        /* outside a coroutine (e.g. main thread): a plain blocking sleep */
        struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = (us % 1000000) * 1000};
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR) {
        }
        return 0;
    }
    int r = tern_sched_park_until(tern_clock_ns() + us * 1000ull);
    return r == -ETIMEDOUT ? 0 : r;
}

int tern_sleep(uint64_t ms) { return tern_sleep_us(ms * 1000ull); }

int tern_yield(void) {
    tern_sched *s = tern_sched_self;
    if (!s || !s->current) return 0;
    tern_coro *c = s->current;
    if (c->flags & TERN_CORO_CANCELLED) return -ECANCELED;
    /* ready again at once: parked and queued in one step */
    if (c->flags & TERN_CORO_PARK_HOOK) s->park_hook(c);
    tern_sched_enqueue(s, c);
    s->switches++;
    tern_coro_switch(&c->sp, s->loop_sp);
    return (c->flags & TERN_CORO_CANCELLED) ? -ECANCELED : 0;
}

int tern_wait_fd(int fd, unsigned events, int64_t timeout_ms) {
    tern_sched *s = tern_sched_self;
    if (!s || !s->current) return -EPERM;
    if (s->current->flags & TERN_CORO_CANCELLED) return -ECANCELED;
    tern_fdwait w = {.coro = s->current, .revents = 0};
    struct epoll_event ev = {.events = (events & (EPOLLIN | EPOLLOUT | EPOLLPRI)) | EPOLLONESHOT,
                             .data.u64 = (uint64_t)(uintptr_t)&w | TERN_EV_FDWAIT};
    if (timeout_ms == 0) {
        /* a poll, not a wait: ask the kernel directly */
        struct pollfd p = {.fd = fd, .events = (short)(events & (POLLIN | POLLOUT | POLLPRI))};
        int n = poll(&p, 1, 0);
        return n < 0 ? -errno : n == 0 ? 0 : p.revents;
    }
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) < 0) return -errno;
    uint64_t deadline = timeout_ms < 0 ? 0 : tern_clock_ns() + (uint64_t)timeout_ms * 1000000ull;
    int r = tern_sched_park_until(deadline);
    epoll_ctl(s->epfd, EPOLL_CTL_DEL, fd, NULL);
    if (w.revents) return (int)w.revents;
    if (r == -ETIMEDOUT) return 0;
    return r < 0 ? r : 0;
}

void tern_sched_fdwait_event(uint64_t data, uint32_t events) {
    tern_fdwait *w = (tern_fdwait *)(uintptr_t)(data & ~(uint64_t)TERN_EV_TAG_MASK);
    w->revents |= events;
    tern_sched_wake(w->coro, 0);
}
