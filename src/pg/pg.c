/* PostgreSQL through libpq's asynchronous API, on the worker (include/tern/pg.h).
 *
 * Only the public API is used (tern_wait_fd, tern_pool, tern_offload): the
 * module sits beside client/, below nothing, and could move to a library of
 * its own without a change here.
 *
 * A connection is non-blocking and in pipeline mode for its whole life. A
 * batch is sent as: for each op, [Parse if the statement is new on this
 * connection] Bind/Execute; then one Sync. The batch is therefore one
 * implicit transaction: a failing op makes the server skip the rest
 * (PIPELINE_ABORTED) and nothing of it commits. The results come back in the
 * same order: per op [prepare result, NULL], op result(s), NULL; then
 * PIPELINE_SYNC. */
#include <errno.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>

#include <tern.h>
#include <tern/pg.h>
#include <tern/pool.h>
#include <tern/sync.h>

#define PG_MAX_STMTS 64
#define PG_MAX_WORKERS 1024 /* tern-demo's --workers bound; more share pool 0 */
/* after a cancel, how long the server has to answer before the connection is
 * given up as stuck */
#define PG_CANCEL_GRACE_MS 2000

typedef struct pg_stmt {
    char *name, *sql;
    int nparams;
} pg_stmt;

struct tern_pg {
    char *dsn;
    tern_pg_config cfg;
    pthread_mutex_t lock; /* stmts being added, last_error */
    pg_stmt stmts[PG_MAX_STMTS];
    atomic_int nstmts; /* published with release after the slot is filled */
    char last_error[256];
    _Atomic(tern_pool *) *pools;        /* [1] shared, or [PG_MAX_WORKERS] per worker */
    struct pg_worker *_Atomic *workers; /* per worker: the multiplexing state */
    size_t npools;
};

typedef struct pg_conn {
    PGconn *conn;
    uint64_t prepared; /* bit i: pg->stmts[i] is prepared on this connection */
} pg_conn;

struct tern_pg_result {
    PGresult *pg; /* NULL for errors made here */
    int status;   /* 0 or -errno */
    char sqlstate[6];
    char *message; /* malloc'd when pg is NULL */
};

/* handed out when even an error result cannot be allocated */
static tern_pg_result pg_oom_result = {NULL, -ENOMEM, "53200", (char *)"out of memory"};

/* What waiting on a connection ended with. */
enum pg_wait_outcome {
    PG_WAIT_OK,        /* the socket is ready (or data is buffered) */
    PG_WAIT_BROKEN,    /* the connection failed: discard it */
    PG_WAIT_TIMEOUT,   /* still nothing after the cancel's grace: discard */
    PG_WAIT_CANCELLED, /* the caller was cancelled: discard */
};

/* One batch being run on one connection. */
typedef struct pg_batch {
    tern_pg *pg;
    pg_conn *c;
    uint64_t deadline_ns; /* 0: none */
    unsigned timeout_ms;
    int timed_out;               /* a cancel was sent for the statement being read */
    uint64_t cancel_ns;          /* when a cancel was last sent on this connection */
    enum pg_wait_outcome broken; /* PG_WAIT_OK while usable */
} pg_batch;

void tern_pg_config_init(tern_pg_config *cfg) {
    *cfg = (tern_pg_config){.max_connections = 4,
                            .min_idle = 0,
                            .idle_timeout_ms = 60000,
                            .connect_timeout_ms = 5000,
                            .query_timeout_ms = 10000,
                            .acquire_timeout_ms = 5000,
                            .per_worker = 1};
}

/* ---- results ------------------------------------------------------------------- */

static tern_pg_result *result_error(int status, const char *sqlstate, const char *msg) {
    tern_pg_result *r = calloc(1, sizeof *r);
    if (!r) return &pg_oom_result;
    r->message = strdup(msg ? msg : "error");
    if (!r->message) {
        free(r);
        return &pg_oom_result;
    }
    r->status = status;
    snprintf(r->sqlstate, sizeof r->sqlstate, "%s", sqlstate);
    return r;
}

/* The errno for a server error: the connection-level classes (08 connection
 * exception, 57P0x the backend is going away) break the connection. */
static int status_of_sqlstate(const char *st, int cancelled) {
    if (!strncmp(st, "08", 2) || !strncmp(st, "57P0", 4)) return -ECONNRESET;
    if (!strcmp(st, "57014") && cancelled) return -ETIMEDOUT;
    return -EIO;
}

static tern_pg_result *result_from(PGresult *p, int cancelled) {
    tern_pg_result *r = calloc(1, sizeof *r);
    if (!r) {
        PQclear(p);
        return &pg_oom_result;
    }
    r->pg = p;
    switch (PQresultStatus(p)) {
    case PGRES_TUPLES_OK:
    case PGRES_COMMAND_OK:
    case PGRES_EMPTY_QUERY:
        memcpy(r->sqlstate, "00000", 6);
        return r;
    default:
        break;
    }
    const char *st = PQresultErrorField(p, PG_DIAG_SQLSTATE);
    snprintf(r->sqlstate, sizeof r->sqlstate, "%s", st && strlen(st) == 5 ? st : "08006");
    r->status = status_of_sqlstate(r->sqlstate, cancelled);
    return r;
}

int tern_pg_rows(const tern_pg_result *r) {
    return r && r->pg ? PQntuples(r->pg) : 0;
}
int tern_pg_columns(const tern_pg_result *r) {
    return r && r->pg ? PQnfields(r->pg) : 0;
}

static int in_range(const tern_pg_result *r, int row, int col) {
    return r && r->pg && row >= 0 && col >= 0 && row < PQntuples(r->pg) && col < PQnfields(r->pg);
}

const char *tern_pg_value(const tern_pg_result *r, int row, int col) {
    return in_range(r, row, col) ? PQgetvalue(r->pg, row, col) : "";
}

size_t tern_pg_length(const tern_pg_result *r, int row, int col) {
    return in_range(r, row, col) ? (size_t)PQgetlength(r->pg, row, col) : 0;
}

int tern_pg_is_null(const tern_pg_result *r, int row, int col) {
    return in_range(r, row, col) ? PQgetisnull(r->pg, row, col) : 1;
}

long long tern_pg_int(const tern_pg_result *r, int row, int col) {
    if (tern_pg_is_null(r, row, col)) return 0;
    char *end;
    const char *v = PQgetvalue(r->pg, row, col);
    long long n = strtoll(v, &end, 10);
    return *v && !*end ? n : 0;
}

long long tern_pg_affected(const tern_pg_result *r) {
    if (!r || !r->pg) return 0;
    const char *t = PQcmdTuples(r->pg);
    return *t ? strtoll(t, NULL, 10) : 0;
}

const char *tern_pg_error(const tern_pg_result *r) {
    if (!r || !r->status) return NULL;
    if (!r->pg) return r->message;
    const char *m = PQresultErrorField(r->pg, PG_DIAG_MESSAGE_PRIMARY);
    return m ? m : PQresultErrorMessage(r->pg);
}

const char *tern_pg_sqlstate(const tern_pg_result *r) {
    return r ? r->sqlstate : "00000";
}
int tern_pg_status(const tern_pg_result *r) {
    return r ? r->status : 0;
}

void tern_pg_result_free(tern_pg_result *r) {
    if (!r || r == &pg_oom_result) return;
    if (r->pg)
        PQclear(r->pg);
    else
        free(r->message);
    free(r);
}

/* ---- connections: the pool's callbacks -------------------------------------- */

static void set_last_error(tern_pg *pg, const char *msg) {
    pthread_mutex_lock(&pg->lock);
    snprintf(pg->last_error, sizeof pg->last_error, "%s", msg);
    size_t n = strlen(pg->last_error);
    while (n && (pg->last_error[n - 1] == '\n' || pg->last_error[n - 1] == ' '))
        pg->last_error[--n] = 0;
    pthread_mutex_unlock(&pg->lock);
}

/* PQconnectStart resolves a host name with getaddrinfo, which blocks: it
 * runs on the offload pool; the rest of the handshake runs here. */
static void *connect_start(void *dsn) {
    return PQconnectStart(dsn);
}

/* Drives PQconnectPoll until the connection is up, parking on its socket. */
static int connect_poll(tern_pg *pg, PGconn *c) {
    uint64_t deadline = tern_clock_ns() + (uint64_t)pg->cfg.connect_timeout_ms * 1000000ull;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING; /* as libpq's docs begin */
    while (st != PGRES_POLLING_OK) {
        if (st == PGRES_POLLING_FAILED) return -ECONNREFUSED;
        uint64_t now = tern_clock_ns();
        if (now >= deadline) return -ETIMEDOUT;
        unsigned ev = st == PGRES_POLLING_READING ? EPOLLIN : EPOLLOUT;
        int w = tern_wait_fd(PQsocket(c), ev, (int64_t)((deadline - now + 999999) / 1000000));
        if (w < 0) return w;
        if (w == 0) return -ETIMEDOUT;
        st = PQconnectPoll(c);
    }
    return 0;
}

static int conn_create(void *arg, void **out) {
    tern_pg *pg = arg;
    void *p = NULL;
    int r = tern_offload(connect_start, pg->dsn, &p);
    PGconn *c = p;
    if (r < 0 && !c) return r;
    if (!c) return -ENOMEM;
    if (r == 0) r = PQstatus(c) == CONNECTION_BAD ? -ECONNREFUSED : connect_poll(pg, c);
    if (r == 0 && (PQsetnonblocking(c, 1) != 0 || PQenterPipelineMode(c) != 1)) r = -ECONNREFUSED;
    pg_conn *pc = r == 0 ? calloc(1, sizeof *pc) : NULL;
    if (r == 0 && !pc) r = -ENOMEM;
    if (r < 0) {
        set_last_error(pg, r == -ETIMEDOUT ? "connect timeout" : PQerrorMessage(c));
        PQfinish(c);
        return r;
    }
    pc->conn = c;
    *out = pc;
    return 0;
}

/* An idle connection has nothing to say: bytes waiting on it are the FATAL
 * message of a terminated backend (or its EOF), so it is replaced. One
 * non-blocking recv per acquire. */
static int conn_validate(void *arg, void *res) {
    pg_conn *pc = res;
    if (PQstatus(pc->conn) != CONNECTION_OK) return -ECONNRESET;
    char b;
    ssize_t n = recv(PQsocket(pc->conn), &b, 1, MSG_PEEK | MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return 0;
    return -ECONNRESET;
}

static void conn_destroy(void *arg, void *res) {
    pg_conn *pc = res;
    PQfinish(pc->conn);
    free(pc);
}

/* ---- tern_pg ------------------------------------------------------------------ */

tern_pg *tern_pg_new(const char *dsn, const tern_pg_config *cfg) {
    tern_pg_config def;
    if (!cfg) {
        tern_pg_config_init(&def);
        cfg = &def;
    }
    if (!dsn || !cfg->max_connections || cfg->min_idle > cfg->max_connections) {
        errno = EINVAL;
        return NULL;
    }
    char *err = NULL;
    PQconninfoOption *opts = PQconninfoParse(dsn, &err);
    if (!opts) {
        PQfreemem(err);
        errno = EINVAL;
        return NULL;
    }
    PQconninfoFree(opts);
    tern_pg *pg = calloc(1, sizeof *pg);
    if (!pg) return NULL;
    pg->cfg = *cfg;
    pg->npools = cfg->per_worker ? PG_MAX_WORKERS : 1;
    pg->dsn = strdup(dsn);
    pg->pools = calloc(pg->npools, sizeof *pg->pools);
    pg->workers = calloc(pg->npools, sizeof *pg->workers);
    if (!pg->dsn || !pg->pools || !pg->workers) {
        free(pg->dsn);
        free(pg->pools);
        free(pg->workers);
        free(pg);
        errno = ENOMEM;
        return NULL;
    }
    pthread_mutex_init(&pg->lock, NULL);
    return pg;
}

static tern_pool *pool_make(tern_pg *pg) {
    tern_pool_config pc = {.max_size = pg->cfg.max_connections,
                           .min_idle = pg->cfg.min_idle,
                           .idle_timeout_ms = pg->cfg.idle_timeout_ms,
                           .validate_on_acquire = 1,
                           .create = conn_create,
                           .validate = conn_validate,
                           .destroy = conn_destroy,
                           .arg = pg};
    return tern_pool_new(&pc);
}

/* The pool this worker uses, made on first use (a lost race frees its copy:
 * nothing was created in it yet). */
static tern_pool *pool_for(tern_pg *pg) {
    size_t i = 0;
    if (pg->npools > 1) {
        int w = tern_worker_id();
        i = w > 0 && (size_t)w < pg->npools ? (size_t)w : 0;
    }
    tern_pool *p = atomic_load_explicit(&pg->pools[i], memory_order_acquire);
    if (p) return p;
    tern_pool *mine = pool_make(pg);
    if (!mine) return NULL;
    if (atomic_compare_exchange_strong(&pg->pools[i], &p, mine)) return mine;
    tern_pool_free(mine);
    return p;
}

int tern_pg_free(tern_pg *pg) {
    if (!pg) return 0;
    for (size_t i = 0; i < pg->npools; i++) {
        tern_pool *p = atomic_load(&pg->pools[i]);
        if (p && tern_pool_free(p) < 0) return -EBUSY;
        atomic_store(&pg->pools[i], NULL);
    }
    for (int i = 0; i < atomic_load(&pg->nstmts); i++) {
        free(pg->stmts[i].name);
        free(pg->stmts[i].sql);
    }
    for (size_t i = 0; i < pg->npools; i++) free(atomic_load(&pg->workers[i]));
    pthread_mutex_destroy(&pg->lock);
    free(pg->workers);
    free(pg->pools);
    free(pg->dsn);
    free(pg);
    return 0;
}

int tern_pg_prepare(tern_pg *pg, const char *name, const char *sql, int nparams) {
    if (!pg || !name || !*name || !sql || nparams < 0) return -EINVAL;
    pthread_mutex_lock(&pg->lock);
    int n = atomic_load_explicit(&pg->nstmts, memory_order_relaxed), r = n;
    for (int i = 0; i < n; i++)
        if (!strcmp(pg->stmts[i].name, name)) r = -EINVAL;
    if (r >= 0 && n == PG_MAX_STMTS) r = -ENOSPC;
    if (r >= 0) {
        pg_stmt *s = &pg->stmts[n];
        s->name = strdup(name);
        s->sql = strdup(sql);
        s->nparams = nparams;
        if (!s->name || !s->sql) {
            free(s->name);
            free(s->sql);
            r = -ENOMEM;
        } else {
            atomic_store_explicit(&pg->nstmts, n + 1, memory_order_release);
        }
    }
    pthread_mutex_unlock(&pg->lock);
    return r;
}

void tern_pg_stats(const tern_pg *pg, tern_pool_stats *out) {
    memset(out, 0, sizeof *out);
    for (size_t i = 0; pg && i < pg->npools; i++) {
        tern_pool *p = atomic_load_explicit(&((tern_pg *)pg)->pools[i], memory_order_acquire);
        if (!p) continue;
        tern_pool_stats st;
        tern_pool_stats_read(p, &st);
        tern_pool_stats_add(out, &st);
    }
}

/* ---- a batch on one connection ---------------------------------------------- */

static void *cancel_run(void *cancel) {
    char err[256];
    int ok = PQcancel(cancel, err, sizeof err);
    PQfreeCancel(cancel);
    return (void *)(intptr_t)ok;
}

/* Whether a "57014 query_canceled" now is our cancel: the one sent for this
 * statement, or (multiplexed) one sent for a statement ahead of it that
 * ended before the cancel landed, so the server cancelled the next one: that
 * job then fails as a timeout too, never as an SQL error. */
static int batch_cancelled(const pg_batch *b) {
    return b->timed_out ||
           (b->cancel_ns && tern_clock_ns() - b->cancel_ns < PG_CANCEL_GRACE_MS * 1000000ull);
}

/* Asks the server to cancel what the connection runs. PQcancel opens a new
 * connection and waits for it: it runs on the offload pool. */
static void batch_cancel(pg_batch *b) {
    PGcancel *cancel = PQgetCancel(b->c->conn);
    b->timed_out = 1;
    b->cancel_ns = tern_clock_ns();
    /* -ECANCELED still ran it; any other failure never started it */
    int r = cancel ? tern_offload(cancel_run, cancel, NULL) : 0;
    if (r < 0 && r != -ECANCELED) PQfreeCancel(cancel);
}

/* Waits for `events` on the connection's socket until the batch's deadline;
 * at the deadline, cancels on the server once and allows it a grace period. */
static enum pg_wait_outcome batch_wait(pg_batch *b, unsigned events) {
    for (;;) {
        int64_t left = -1;
        if (b->deadline_ns) {
            uint64_t now = tern_clock_ns();
            left = now >= b->deadline_ns ? 0 : (int64_t)((b->deadline_ns - now + 999999) / 1000000);
        }
        int w = left == 0 ? 0 : tern_wait_fd(PQsocket(b->c->conn), events, left);
        if (w > 0) return PG_WAIT_OK;
        if (w == -ECANCELED) { /* the request is gone: stop its query too */
            batch_cancel(b);
            return PG_WAIT_CANCELLED;
        }
        if (w < 0) return PG_WAIT_BROKEN;
        if (b->timed_out) return PG_WAIT_TIMEOUT;
        batch_cancel(b);
        b->deadline_ns = tern_clock_ns() + PG_CANCEL_GRACE_MS * 1000000ull;
    }
}

/* The next result, parking while libpq needs more input. NULL with
 * b->broken set when the connection failed. */
static PGresult *batch_next(pg_batch *b, int *end) {
    PGconn *c = b->c->conn;
    while (PQisBusy(c)) {
        enum pg_wait_outcome o = batch_wait(b, EPOLLIN);
        if (o != PG_WAIT_OK) {
            b->broken = o;
            return NULL;
        }
        if (!PQconsumeInput(c)) {
            b->broken = PG_WAIT_BROKEN;
            return NULL;
        }
    }
    PGresult *r = PQgetResult(c);
    *end = r == NULL;
    return r;
}

/* One command's result: the first PGresult of it, the rest (none, outside
 * single-row mode) dropped, up to its terminating NULL. */
static PGresult *batch_read_command(pg_batch *b) {
    PGresult *first = NULL;
    for (;;) {
        int end = 0;
        PGresult *r = batch_next(b, &end);
        if (end || b->broken) return first;
        if (!first)
            first = r;
        else
            PQclear(r);
    }
}

static int batch_read_sync(pg_batch *b) {
    int end = 0;
    PGresult *r = batch_next(b, &end);
    int ok = r && PQresultStatus(r) == PGRES_PIPELINE_SYNC;
    PQclear(r);
    if (!ok && !b->broken) b->broken = PG_WAIT_BROKEN; /* out of step: do not reuse */
    return ok ? 0 : -1;
}

/* The error an op gets when the connection gave out before its answer. */
static tern_pg_result *batch_failure(pg_batch *b) {
    switch (b->broken) {
    case PG_WAIT_CANCELLED:
        return result_error(-ECANCELED, "57014", "request cancelled");
    case PG_WAIT_TIMEOUT: {
        char m[96];
        snprintf(m, sizeof m, "query timeout (%u ms): the server did not answer the cancel",
                 b->timeout_ms);
        return result_error(-ETIMEDOUT, "57014", m);
    }
    default: {
        const char *m = PQerrorMessage(b->c->conn);
        return result_error(-ECONNRESET, "08006", m && *m ? m : "connection to the server lost");
    }
    }
}

static int op_has_prepare(uint64_t sent, uint64_t *seen, int stmt) {
    if (stmt < 0 || !(sent >> stmt & 1) || (*seen >> stmt & 1)) return 0;
    *seen |= 1ull << stmt;
    return 1;
}

/* Queues every op (and the Parse of statements new on this connection). */
static int batch_send(pg_batch *b, tern_pg_op *ops, size_t n, uint64_t *prep_sent) {
    PGconn *c = b->c->conn;
    for (size_t i = 0; i < n; i++) {
        const tern_pg_op *op = &ops[i];
        int ok;
        if (op->stmt >= 0) {
            const pg_stmt *s = &b->pg->stmts[op->stmt];
            uint64_t bit = 1ull << op->stmt;
            if (!(b->c->prepared & bit) && !(*prep_sent & bit)) {
                if (!PQsendPrepare(c, s->name, s->sql, s->nparams, NULL)) return -1;
                *prep_sent |= bit;
            }
            ok = PQsendQueryPrepared(c, s->name, op->nparams, op->params, NULL, NULL, 0);
        } else {
            ok = PQsendQueryParams(c, op->sql, op->nparams, NULL, op->params, NULL, NULL, 0);
        }
        if (!ok) return -1;
    }
    /* one Sync for the batch: libpq 15's PQpipelineSync also flushes (a
     * send per statement, a wake-up of the backend per statement: /queries
     * made 21 sendto calls per request with a Sync per op) */
    return PQpipelineSync(c) ? 0 : -1;
}

/* Pushes the queued bytes out, reading meanwhile so a server that answers
 * while we still send never fills both directions' buffers. */
static int batch_flush(pg_batch *b) {
    PGconn *c = b->c->conn;
    int f;
    while ((f = PQflush(c)) == 1) {
        enum pg_wait_outcome o = batch_wait(b, EPOLLIN | EPOLLOUT);
        if (o != PG_WAIT_OK) {
            b->broken = o;
            return -1;
        }
        if (!PQconsumeInput(c)) break;
    }
    if (f != 0) b->broken = PG_WAIT_BROKEN;
    return f == 0 ? 0 : -1;
}

/* Reads every op's result in order; the prepare results are checked and
 * dropped (a failed Parse becomes its op's error). */
/* An op that did not run because an earlier one of the batch failed: it
 * carries that failure's code and SQLSTATE. */
static tern_pg_result *aborted(const tern_pg_result *first) {
    int status = first ? first->status : -EIO;
    return result_error(status, first ? first->sqlstate : "25P02",
                        "not run: an earlier statement of the pipeline failed");
}

/* Reads every op's result in order, then the batch's Sync. A Parse sent for
 * a statement new on this connection answers first (a failed one becomes
 * its op's error); after a failure the server skips the rest of the batch
 * up to the Sync (PIPELINE_ABORTED). */
static void batch_read(pg_batch *b, tern_pg_op *ops, size_t n, uint64_t prep_sent) {
    uint64_t seen = 0;
    const tern_pg_result *first = NULL; /* the first failure */
    for (size_t i = 0; i < n; i++) {
        tern_pg_result *prep_err = NULL;
        if (!b->broken && op_has_prepare(prep_sent, &seen, ops[i].stmt)) {
            PGresult *p = batch_read_command(b);
            if (p && PQresultStatus(p) == PGRES_COMMAND_OK) {
                b->c->prepared |= 1ull << ops[i].stmt;
                PQclear(p);
            } else if (p && PQresultStatus(p) == PGRES_PIPELINE_ABORTED) {
                PQclear(p);
            } else if (p) {
                prep_err = result_from(p, 0);
            }
        }
        if (b->broken) {
            tern_pg_result_free(prep_err);
            ops[i].res = batch_failure(b);
            continue;
        }
        PGresult *r = batch_read_command(b);
        if (prep_err) {
            PQclear(r);
            ops[i].res = prep_err;
        } else if (r && PQresultStatus(r) == PGRES_PIPELINE_ABORTED) {
            PQclear(r);
            ops[i].res = aborted(first);
        } else if (r) {
            ops[i].res = result_from(r, batch_cancelled(b));
        } else {
            ops[i].res = batch_failure(b);
        }
        if (!first && ops[i].res->status) first = ops[i].res;
    }
    if (!b->broken) batch_read_sync(b);
}

static int batch_run(pg_batch *b, tern_pg_op *ops, size_t n) {
    uint64_t prep_sent = 0;
    if (batch_send(b, ops, n, &prep_sent) < 0) {
        b->broken = PG_WAIT_BROKEN;
        for (size_t i = 0; i < n; i++) ops[i].res = batch_failure(b);
        return -1;
    }
    if (batch_flush(b) < 0) {
        for (size_t i = 0; i < n; i++) ops[i].res = batch_failure(b);
        return -1;
    }
    batch_read(b, ops, n, prep_sent);
    return b->broken ? -1 : 0;
}

/* Every op fails with the same error (no connection, bad arguments). */
static int fail_all(tern_pg_op *ops, size_t n, int status, const char *sqlstate, const char *msg) {
    for (size_t i = 0; i < n; i++) ops[i].res = result_error(status, sqlstate, msg);
    return status;
}

static int check_ops(tern_pg *pg, const tern_pg_op *ops, size_t n) {
    int nstmts = atomic_load_explicit(&pg->nstmts, memory_order_acquire);
    for (size_t i = 0; i < n; i++) {
        if (ops[i].stmt >= nstmts || ops[i].nparams < 0 || (ops[i].nparams && !ops[i].params))
            return -1;
        if (ops[i].stmt < 0 && !ops[i].sql) return -1;
    }
    return 0;
}

static int acquire_failure(tern_pg *pg, tern_pg_op *ops, size_t n, int r) {
    char msg[320];
    if (r == -ETIMEDOUT)
        return fail_all(ops, n, r, "08004", "no free database connection (acquire timeout)");
    if (r == -ECANCELED) return fail_all(ops, n, r, "57014", "request cancelled");
    pthread_mutex_lock(&pg->lock);
    snprintf(msg, sizeof msg, "cannot connect to the database: %s",
             pg->last_error[0] ? pg->last_error : strerror(-r));
    pthread_mutex_unlock(&pg->lock);
    return fail_all(ops, n, r == -ENOMEM ? r : -ECONNREFUSED, "08001", msg);
}

/* A connection whose caller was cancelled mid-batch (client gone, route
 * deadline): the query was cancelled on the server, but its answers are
 * still on the way. A task of the same worker reads them up to the batch's
 * Sync and returns the connection to the pool, instead of closing it and
 * making the next request connect again (a benchmark's end, a burst of
 * clients giving up). */
typedef struct pg_drain {
    tern_pg *pg;
    tern_pool *pool;
    pg_conn *c;
} pg_drain;

static void *drain_task(void *arg) {
    pg_drain *d = arg;
    pg_batch b = {.pg = d->pg,
                  .c = d->c,
                  .timed_out = 1, /* no second cancel: the grace period only */
                  .deadline_ns = tern_clock_ns() + PG_CANCEL_GRACE_MS * 1000000ull};
    int ok = batch_flush(&b) == 0;
    while (ok) {
        int end = 0;
        PGresult *r = batch_next(&b, &end);
        if (b.broken) ok = 0;
        if (r && PQresultStatus(r) == PGRES_PIPELINE_SYNC) {
            PQclear(r);
            break;
        }
        PQclear(r);
    }
    if (ok)
        tern_pool_release(d->pool, d->c);
    else
        tern_pool_discard(d->pool, d->c);
    free(d);
    return NULL;
}

static void give_back(tern_pg *pg, tern_pool *pool, pg_conn *c, enum pg_wait_outcome how) {
    pg_drain *d = how == PG_WAIT_CANCELLED ? malloc(sizeof *d) : NULL;
    tern_task *t = NULL;
    if (d) {
        *d = (pg_drain){pg, pool, c};
        t = tern_spawn(drain_task, d);
    }
    if (t) {
        tern_detach(t);
        return;
    }
    free(d);
    tern_pool_discard(pool, c);
}

/* ---- per-worker multiplexing --------------------------------------------------
 * With one pool per worker, every user of a connection runs on one thread,
 * so a connection can carry several requests' batches at once, as
 * tokio-postgres does: a request queues its batch (a job) on its worker and
 * parks on the job's semaphore; a carrier task per connection in use takes
 * every queued job, sends them all (each with its own Sync, so each is its
 * own transaction and one failing aborts nothing of the others), reads the
 * answers in order and wakes each owner. Under load one write and one
 * backend wake-up then serve many requests; when idle a job is carried at
 * once by a carrier of its own. Carriers are tasks, not the requests'
 * coroutines: a request cancelled mid-query (client gone) leaves, and its
 * answers are still read off the connection, which others are using. */
enum pg_job_state {
    PG_JOB_QUEUED, /* in the worker's queue: the owner may take it back */
    PG_JOB_SENT,   /* a carrier owns it until its answers are in */
    PG_JOB_DONE,
};

typedef struct pg_job {
    struct pg_job *next;
    enum pg_job_state state;
    int gone; /* the owner left (cancelled, timed out): the carrier frees it */
    unsigned timeout_ms;
    uint64_t prep;    /* the Parses this job's send carried */
    pg_conn *reading; /* set while a carrier reads this job's answers */
    tern_sem done;    /* released once the answers are in */
    size_t n;
    tern_pg_op ops[]; /* a copy; params and sql are read only while sending */
} pg_job;

typedef struct pg_worker {
    tern_pg *pg;
    tern_pool *pool;
    pg_job *head, *tail; /* queued jobs, FIFO */
    size_t carriers;     /* carrier tasks alive (each holds or wants a connection) */
} pg_worker;

#define PG_ROUND_MAX_OPS 4096 /* a carrier's round: enough to batch, bounded memory in libpq */

static pg_worker *worker_for(tern_pg *pg) {
    int id = tern_worker_id();
    size_t i = id > 0 && (size_t)id < pg->npools ? (size_t)id : 0;
    pg_worker *w = atomic_load_explicit(&pg->workers[i], memory_order_acquire);
    if (w) return w;
    tern_pool *pool = pool_for(pg);
    if (!pool || !(w = calloc(1, sizeof *w))) return NULL;
    *w = (pg_worker){.pg = pg, .pool = pool};
    pg_worker *none = NULL;
    if (atomic_compare_exchange_strong(&pg->workers[i], &none, w)) return w;
    free(w); /* only this worker's thread uses slot i: cannot happen, kept safe */
    return none;
}

static void job_finish(pg_job *j) {
    j->state = PG_JOB_DONE;
    if (!j->gone) {
        tern_sem_release(&j->done);
        return;
    }
    for (size_t i = 0; i < j->n; i++) tern_pg_result_free(j->ops[i].res);
    free(j);
}

/* Takes queued jobs (whole ones, up to PG_ROUND_MAX_OPS ops but at least one). */
static pg_job *take_round(pg_worker *w) {
    pg_job *first = w->head, *last = NULL;
    size_t ops = 0;
    for (pg_job *j = first; j && (!last || ops + j->n <= PG_ROUND_MAX_OPS); j = j->next) {
        j->state = PG_JOB_SENT;
        ops += j->n;
        last = j;
    }
    if (!last) return NULL;
    w->head = last->next;
    if (!w->head) w->tail = NULL;
    last->next = NULL;
    return first;
}

/* One round on connection c: send every job, then read their answers
 * (sending and flushing under the shortest timeout of the round, each job's
 * answers under its own). -1 when the connection must go. */
static int carry_round(pg_worker *w, pg_conn *c, pg_job *round) {
    unsigned timeout = 0;
    for (pg_job *j = round; j; j = j->next)
        if (!timeout || (j->timeout_ms && j->timeout_ms < timeout)) timeout = j->timeout_ms;
    pg_batch b = {.pg = w->pg, .c = c, .timeout_ms = timeout};
    if (timeout) b.deadline_ns = tern_clock_ns() + (uint64_t)timeout * 1000000ull;
    uint64_t prep = 0;
    for (pg_job *j = round; j && !b.broken; j = j->next) {
        uint64_t before = prep;
        if (batch_send(&b, j->ops, j->n, &prep) < 0) b.broken = PG_WAIT_BROKEN;
        j->prep = prep & ~before;
    }
    if (!b.broken) batch_flush(&b);
    uint64_t sent = tern_clock_ns();
    int broken = 0;
    while (round) {
        pg_job *j = round;
        round = j->next;
        if (b.broken) {
            for (size_t i = 0; i < j->n; i++) j->ops[i].res = batch_failure(&b);
        } else {
            /* each job's own timeout, counted from the send: the answers
             * before its own are in, so a cancel now is for its statement */
            b.timed_out = 0;
            b.timeout_ms = j->timeout_ms;
            b.deadline_ns = j->timeout_ms ? sent + (uint64_t)j->timeout_ms * 1000000ull : 0;
            j->reading = c;
            batch_read(&b, j->ops, j->n, j->prep);
            j->reading = NULL;
        }
        for (size_t i = 0; i < j->n; i++) broken |= j->ops[i].res->status == -ECONNRESET;
        job_finish(j);
    }
    return b.broken || broken ? -1 : 0;
}

static void *carrier_task(void *arg) {
    pg_worker *w = arg;
    void *res = NULL;
    int r = w->head ? tern_pool_acquire(w->pool, w->pg->cfg.acquire_timeout_ms, &res) : 1;
    if (r < 0) { /* no connection: every queued job fails with the reason */
        pg_job *j;
        while ((j = take_round(w)) != NULL) {
            pg_job *next;
            for (; j; j = next) {
                next = j->next;
                acquire_failure(w->pg, j->ops, j->n, r);
                job_finish(j);
            }
        }
    }
    int broken = 0;
    pg_job *round;
    while (r == 0 && !broken && (round = take_round(w)) != NULL)
        broken = carry_round(w, res, round) < 0;
    if (r == 0 && broken)
        tern_pool_discard(w->pool, res);
    else if (r == 0)
        tern_pool_release(w->pool, res);
    w->carriers--;
    return NULL;
}

static void job_unlink(pg_worker *w, pg_job *j) {
    pg_job **p = &w->head, *prev = NULL;
    while (*p && *p != j) {
        prev = *p;
        p = &(*p)->next;
    }
    if (!*p) return;
    *p = j->next;
    if (w->tail == j) w->tail = prev;
}

static int mux_pipeline(tern_pg *pg, tern_pg_op *ops, size_t n, unsigned timeout_ms) {
    pg_worker *w = worker_for(pg);
    pg_job *j = w ? calloc(1, sizeof *j + n * sizeof *ops) : NULL;
    if (!j) return fail_all(ops, n, -ENOMEM, "53200", "out of memory");
    j->n = n;
    j->timeout_ms = timeout_ms ? timeout_ms : pg->cfg.query_timeout_ms;
    memcpy(j->ops, ops, n * sizeof *ops);
    if (w->tail)
        w->tail->next = j;
    else
        w->head = j;
    w->tail = j;
    if (w->carriers < pg->cfg.max_connections) {
        tern_task *t = tern_spawn(carrier_task, w);
        if (t) {
            w->carriers++;
            tern_detach(t);
        }
    }
    if (!w->carriers) { /* no carrier could start */
        job_unlink(w, j);
        free(j);
        return fail_all(ops, n, -ENOMEM, "53200", "out of memory");
    }
    /* the carrier's own deadline (cancel + grace) normally ends it first */
    int64_t wait = j->timeout_ms ? (int64_t)j->timeout_ms + PG_CANCEL_GRACE_MS + 1000 : -1;
    if (wait > 0 && pg->cfg.acquire_timeout_ms > 0) wait += pg->cfg.acquire_timeout_ms;
    int r = tern_sem_acquire_timeout(&j->done, wait);
    if (j->state == PG_JOB_DONE) {
        int status = 0;
        for (size_t i = 0; i < n; i++) {
            ops[i].res = j->ops[i].res;
            if (!status) status = ops[i].res->status;
        }
        free(j);
        return status;
    }
    if (j->state == PG_JOB_QUEUED) {
        job_unlink(w, j);
        free(j);
    } else {
        j->gone = 1; /* its answers are still to come: the carrier frees it */
        /* its statement is the one running (the answers before it are in),
         * unless the server just finished it and started the next job's: a
         * narrow race in which the cancel hits that one instead */
        if (j->reading) {
            pg_batch b = {.pg = pg, .c = j->reading};
            batch_cancel(&b);
        }
    }
    if (r == -ECANCELED) return fail_all(ops, n, r, "57014", "request cancelled");
    return fail_all(ops, n, -ETIMEDOUT, "57014", "query timeout: no answer");
}

int tern_pg_pipeline(tern_pg *pg, tern_pg_op *ops, size_t n, unsigned timeout_ms) {
    if (!ops) return -EINVAL;
    for (size_t i = 0; i < n; i++) ops[i].res = NULL;
    if (!pg || check_ops(pg, ops, n) < 0)
        return fail_all(ops, n, -EINVAL, "22023", "bad statement or parameters");
    if (!n) return 0;
    if (pg->npools > 1) return mux_pipeline(pg, ops, n, timeout_ms);
    tern_pool *pool = pool_for(pg);
    if (!pool) return fail_all(ops, n, -ENOMEM, "53200", "out of memory");
    void *res;
    int r = tern_pool_acquire(pool, pg->cfg.acquire_timeout_ms, &res);
    if (r < 0) return acquire_failure(pg, ops, n, r);
    pg_batch b = {
        .pg = pg, .c = res, .timeout_ms = timeout_ms ? timeout_ms : pg->cfg.query_timeout_ms};
    if (b.timeout_ms) b.deadline_ns = tern_clock_ns() + (uint64_t)b.timeout_ms * 1000000ull;
    int broken = batch_run(&b, ops, n) < 0;
    for (size_t i = 0; i < n && !broken; i++) broken = ops[i].res->status == -ECONNRESET;
    if (broken)
        give_back(pg, pool, res, b.broken);
    else
        tern_pool_release(pool, res);
    for (size_t i = 0; i < n; i++)
        if (ops[i].res->status) return ops[i].res->status;
    return 0;
}

int tern_pg_query(tern_pg *pg, const char *sql, int nparams, const char *const *params,
                  tern_pg_result **res) {
    tern_pg_op op = {.stmt = -1, .sql = sql, .nparams = nparams, .params = params};
    int r = tern_pg_pipeline(pg, &op, 1, 0);
    if (res)
        *res = op.res;
    else
        tern_pg_result_free(op.res);
    return r;
}

int tern_pg_exec(tern_pg *pg, int stmt, int nparams, const char *const *params,
                 tern_pg_result **res) {
    tern_pg_op op = {.stmt = stmt < 0 ? PG_MAX_STMTS : stmt, .nparams = nparams, .params = params};
    int r = tern_pg_pipeline(pg, &op, 1, 0);
    if (res)
        *res = op.res;
    else
        tern_pg_result_free(op.res);
    return r;
}
