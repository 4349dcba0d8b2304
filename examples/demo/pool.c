/* tern-demo: GET /pool and GET /real, resource pools doing real work.
 *
 * /pool   one SQLite query (a user and the count of their items) through a
 *         per-worker pool of sqlite3 connections, the query itself running
 *         on the offload pool so the worker never blocks on the database.
 * /real   the three waits of /concurrent, done for real: (a) that SQLite
 *         query, (b) an HTTP GET to --upstream through tern_client's
 *         kept-alive connections (default: this server's own /plaintext),
 *         (c) a file read on the offload pool. ?parallel=1 runs the three
 *         as tasks at once instead of one after another.
 * Every time reported is measured with the monotonic clock around the
 * real call; nothing is simulated.
 *
 * Each worker's demo_worker holds its own tern_pool of SQLite connections
 * and its own tern_client, made on the worker's thread before it serves
 * (demo_pool_worker_init): a pool may serve every worker, but one per
 * worker keeps its lock uncontended and its waiters on that worker. The database is
 * created and seeded at start-up (before the workers run, so blocking is
 * fine there), in --db PATH or in /tmp/tern-demo-<pid>.db, which is
 * removed when the server has stopped (demo_pool_cleanup). */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <tern.h>
#include <tern/client.h>
#include <tern/metrics.h>
#include <tern/pool.h>
#include <tern/sync.h>

#include "demo.h"

#define DB_USERS 1000
#define DB_ITEMS_PER_USER 5
/* Per worker. The offload pool runs max(4, CPUs) threads; more connections
 * per worker than that would only queue for a thread while holding a
 * connection. */
#define DB_POOL_MAX 4
#define DB_POOL_MIN_IDLE 1
#define DB_IDLE_TIMEOUT_MS 60000
#define DB_BUSY_TIMEOUT_MS 2000 /* sqlite waits this long for a write lock */
#define ACQUIRE_TIMEOUT_MS 2000
#define FILE_BYTES 16384
#define UPSTREAM_MAX_CONNECTIONS 64 /* per worker */

static const char USER_SQL[] =
    "SELECT u.id, u.name, u.email, COUNT(i.id), COALESCE(SUM(i.price_cents), 0) "
    "FROM users u LEFT JOIN items i ON i.user_id = u.id WHERE u.id = ?1 GROUP BY u.id";

static uint64_t us_since(uint64_t t0) {
    return (tern_clock_ns() - t0) / 1000;
}

/* ---- SQLite connections ------------------------------------------------------ */

typedef struct db_conn {
    sqlite3 *db;
    sqlite3_stmt *user_q;
} db_conn;

typedef struct open_job {
    const char *path;
    db_conn *conn;
    int rc;
} open_job;

static void close_conn(db_conn *c) {
    sqlite3_finalize(c->user_q);
    sqlite3_close(c->db);
    free(c);
}

/* On a pool thread: opening reads the schema from disk. */
static void *open_fn(void *arg) {
    open_job *j = arg;
    db_conn *c = calloc(1, sizeof *c);
    if (!c) {
        j->rc = SQLITE_NOMEM;
        return NULL;
    }
    /* NOMUTEX: the pool gives a connection to one caller at a time, so
     * SQLite's own per-connection mutex would only cost */
    j->rc = sqlite3_open_v2(j->path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
    if (j->rc == SQLITE_OK) {
        sqlite3_busy_timeout(c->db, DB_BUSY_TIMEOUT_MS);
        /* closing must not checkpoint the WAL: destroy runs on the worker
         * (pool rule: it must not park), and a checkpoint is disk I/O */
        sqlite3_db_config(c->db, SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, 1, (int *)NULL);
        j->rc =
            sqlite3_prepare_v3(c->db, USER_SQL, -1, SQLITE_PREPARE_PERSISTENT, &c->user_q, NULL);
    }
    if (j->rc != SQLITE_OK) {
        close_conn(c);
        return NULL;
    }
    j->conn = c;
    return NULL;
}

static int db_create(void *arg, void **res) {
    const demo_app *app = arg;
    open_job j = {app->db_path, NULL, SQLITE_ERROR};
    int r = tern_offload(open_fn, &j, NULL);
    if (r < 0) {
        if (j.conn) close_conn(j.conn); /* cancelled: the open completed anyway */
        return r;
    }
    if (!j.conn) return -EIO;
    *res = j.conn;
    return 0;
}

static void db_destroy(void *arg, void *res) {
    (void)arg;
    close_conn(res);
}

/* This worker's pool (NULL when the worker has no state). */
static tern_pool *db_pool(void) {
    demo_worker *w = tern_worker_local();
    return w ? w->db : NULL;
}

/* ---- the query -------------------------------------------------------------------- */

typedef struct db_result {
    int id; /* asked for */
    int found;
    char name[64], email[128];
    int items;
    int64_t total_cents;
    /* measured */
    uint64_t acquire_us; /* waiting for a connection (or opening one) */
    uint64_t query_us;   /* sqlite3_step on the pool thread */
    uint64_t offload_us; /* submit to wake-up: queue + query + hand-back */
    uint64_t us;         /* the whole step */
    /* failure */
    int err;  /* negative errno, 0 when fine */
    int http; /* status to answer on failure */
    char detail[160];
} db_result;

typedef struct query_job {
    db_conn *conn;
    db_result *out;
    int rc;
    uint64_t exec_ns;
} query_job;

static void copy_text(char *dst, size_t cap, const unsigned char *s) {
    snprintf(dst, cap, "%s", s ? (const char *)s : "");
}

static void *query_fn(void *arg) {
    query_job *j = arg;
    uint64_t t0 = tern_clock_ns();
    sqlite3_stmt *st = j->conn->user_q;
    sqlite3_bind_int(st, 1, j->out->id);
    j->rc = sqlite3_step(st);
    if (j->rc == SQLITE_ROW) {
        j->out->found = 1;
        copy_text(j->out->name, sizeof j->out->name, sqlite3_column_text(st, 1));
        copy_text(j->out->email, sizeof j->out->email, sqlite3_column_text(st, 2));
        j->out->items = sqlite3_column_int(st, 3);
        j->out->total_cents = sqlite3_column_int64(st, 4);
        j->rc = SQLITE_OK;
    } else if (j->rc == SQLITE_DONE) {
        j->rc = SQLITE_OK;
    } else {
        snprintf(j->out->detail, sizeof j->out->detail, "sqlite: %s", sqlite3_errmsg(j->conn->db));
    }
    sqlite3_reset(st);
    j->exec_ns = tern_clock_ns() - t0;
    return NULL;
}

static void db_fail(db_result *res, int err, int http, const char *what) {
    res->err = err;
    res->http = http;
    if (!res->detail[0]) snprintf(res->detail, sizeof res->detail, "%s: %s", what, strerror(-err));
}

/* Step (a): acquire a connection, run the query on the offload pool,
 * release. Fills res, including the failure if any. */
static void db_query(db_result *res) {
    uint64_t t0 = tern_clock_ns();
    tern_pool *p = db_pool();
    if (!p) {
        db_fail(res, -ENOMEM, 503, "database pool");
        return;
    }
    void *v;
    int r = tern_pool_acquire(p, ACQUIRE_TIMEOUT_MS, &v);
    res->acquire_us = us_since(t0);
    if (r < 0) {
        db_fail(res, r, r == -ETIMEDOUT ? 503 : 500, "database connection");
        res->us = us_since(t0);
        return;
    }
    query_job j = {.conn = v, .out = res, .rc = SQLITE_ERROR};
    uint64_t t1 = tern_clock_ns();
    r = tern_offload(query_fn, &j, NULL);
    res->offload_us = us_since(t1);
    res->query_us = j.exec_ns / 1000;
    if (r == -EAGAIN || r == -ESHUTDOWN) {
        tern_pool_release(p, v); /* never ran: the connection is fine */
        db_fail(res, r, 503, "offload pool");
    } else if (j.rc != SQLITE_OK) {
        /* a failed statement may leave the connection in an odd state:
         * replace it rather than hand it to the next request */
        tern_pool_discard(p, v);
        db_fail(res, -EIO, 500, "query");
    } else {
        tern_pool_release(p, v);
        if (r < 0) db_fail(res, r, 503, "query"); /* -ECANCELED: the client left */
    }
    res->us = us_since(t0);
}

/* ---- steps (b) and (c) ------------------------------------------------------------ */

typedef struct api_result {
    const char *url;
    int status;
    size_t bytes;
    int reused;
    uint64_t connect_us;
    uint64_t us;
    int err;
    char detail[160];
} api_result;

/* This worker's upstream client (NULL when the worker has no state). */
static tern_client *upstream_client(void) {
    demo_worker *w = tern_worker_local();
    return w ? w->upstream : NULL;
}

static void api_get(api_result *res) {
    uint64_t t0 = tern_clock_ns();
    tern_client *c = upstream_client();
    if (!c) {
        int err = -ENOMEM;
        res->err = err;
        snprintf(res->detail, sizeof res->detail, "upstream client: %s", strerror(-err));
        return;
    }
    res->url = tern_client_url(c);
    tern_client_response resp;
    int r = tern_client_get(c, NULL, &resp);
    res->us = us_since(t0);
    if (r < 0) {
        res->err = r;
        snprintf(res->detail, sizeof res->detail, "%s", strerror(-r));
        tern_client_response_free(&resp);
        return;
    }
    res->status = resp.status;
    res->bytes = resp.body_len;
    res->reused = resp.reused;
    res->connect_us = resp.connect_ns / 1000;
    tern_client_response_free(&resp);
}

typedef struct file_result {
    const char *path;
    size_t bytes;
    uint64_t fnv1a;   /* of the content: proof it was read */
    uint64_t read_us; /* open+read+close on the pool thread */
    uint64_t us;
    int err;
} file_result;

static void *read_fn(void *arg) {
    file_result *res = arg;
    uint64_t t0 = tern_clock_ns();
    int fd = open(res->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        res->err = -errno;
        return NULL;
    }
    char buf[4096];
    uint64_t h = 1469598103934665603ull;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) res->err = -errno;
        if (n <= 0) break;
        for (ssize_t i = 0; i < n; i++) h = (h ^ (unsigned char)buf[i]) * 1099511628211ull;
        res->bytes += (size_t)n;
    }
    close(fd);
    res->fnv1a = h;
    res->read_us = (tern_clock_ns() - t0) / 1000;
    return NULL;
}

static void file_read(file_result *res) {
    uint64_t t0 = tern_clock_ns();
    int r = tern_offload(read_fn, res, NULL);
    if (r < 0 && !res->err) res->err = r;
    res->us = us_since(t0);
}

/* ---- handlers ------------------------------------------------------------------- */

/* xorshift64 on the worker's own state (seeded in demo_pool_worker_init) */
static int random_user(demo_worker *w) {
    uint64_t x = w->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    w->rng = x;
    return (int)(x % DB_USERS) + 1;
}

/* ?id=N (1..2^31-1), else a random user. 0, or -1 after answering 400. */
static int pick_user(tern_ctx *ctx, demo_worker *w, int *id) {
    const char *id_raw;
    if (tern_req_query_get(ctx, "id", &id_raw) == -ENOENT) {
        *id = random_user(w);
        return 0;
    }
    unsigned long v;
    if (demo_query_uint(ctx, "id", 0, 1, 0x7fffffff, &v) < 0) return -1;
    *id = (int)v;
    return 0;
}

static const char *row_json(tern_ctx *ctx, const db_result *d) {
    if (!d->found) return "null";
    return tern_sprintf(
        ctx, "{\"id\":%d,\"name\":%s,\"email\":%s,\"items\":%d,\"total_cents\":%" PRId64 "}", d->id,
        tern_json_quote(ctx, d->name), tern_json_quote(ctx, d->email), d->items, d->total_cents);
}

static void db_error(tern_ctx *ctx, const db_result *d) {
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    tern_resp_set_status(ctx, d->http);
    if (d->http == 503) tern_resp_set_header(ctx, "Retry-After", "1");
    tern_resp_printf(ctx,
                     "{\"error\":\"database step failed\",\"step\":\"db\",\"detail\":%s,"
                     "\"errno\":%d,\"us\":%" PRIu64 "}",
                     tern_json_quote(ctx, d->detail), -d->err, d->us);
}

/* A worker whose start hook failed has no pool: say so (503) */
static demo_worker *worker_or_503(tern_ctx *ctx) {
    demo_worker *w = tern_worker_local();
    if (!w) {
        tern_resp_set_header(ctx, "Retry-After", "1");
        tern_resp_json(ctx, 503, "{\"error\":\"this worker has no database pool\"}");
    }
    return w;
}

static void pool_handler(tern_ctx *ctx) {
    uint64_t t0 = tern_clock_ns();
    db_result d = {0};
    demo_worker *w = worker_or_503(ctx);
    if (!w) return;
    if (pick_user(ctx, w, &d.id) < 0) return;
    db_query(&d);
    if (d.err == -ECANCELED) return; /* the client went away: nobody reads this */
    if (d.err) {
        db_error(ctx, &d);
        return;
    }
    tern_pool_stats st = {0};
    tern_pool *p = db_pool();
    if (p) tern_pool_stats_read(p, &st);
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    tern_resp_set_status(ctx, d.found ? 200 : 404);
    tern_resp_printf(
        ctx,
        "{\"row\":%s,\"id\":%d,\"query_us\":%" PRIu64 ",\"acquire_us\":%" PRIu64
        ",\"offload_us\":%" PRIu64 ",\"total_us\":%" PRIu64 ",\"worker\":%d,"
        "\"pool\":{\"size\":%" PRIu64 ",\"idle\":%" PRIu64 ",\"in_use\":%" PRIu64
        ",\"waiters\":%" PRIu64 ",\"max_size\":%" PRIu64 ",\"min_idle\":%" PRIu64
        ",\"created\":%" PRIu64 ",\"destroyed\":%" PRIu64 ",\"acquired\":%" PRIu64
        ",\"waited\":%" PRIu64 ",\"timeouts\":%" PRIu64 ",\"wait_us_total\":%" PRIu64 "}}",
        row_json(ctx, &d), d.id, d.query_us, d.acquire_us, d.offload_us, us_since(t0),
        tern_worker_id(), st.size, st.idle, st.in_use, st.waiters, st.max_size, st.min_idle,
        st.created, st.destroyed, st.acquired, st.waited, st.timeouts, st.wait_ns_total / 1000);
}

typedef struct real_steps {
    db_result db;
    api_result api;
    file_result file;
} real_steps;

static void *db_task(void *arg) {
    db_query(&((real_steps *)arg)->db);
    return NULL;
}

static void *api_task(void *arg) {
    api_get(&((real_steps *)arg)->api);
    return NULL;
}

static void *file_task(void *arg) {
    file_read(&((real_steps *)arg)->file);
    return NULL;
}

static void real_handler(tern_ctx *ctx) {
    uint64_t t0 = tern_clock_ns();
    demo_worker *w = worker_or_503(ctx);
    if (!w) return;
    const char *file_path = demo_app_of(ctx)->file_path;
    real_steps s;
    memset(&s, 0, sizeof s);
    s.db.id = random_user(w);
    s.file.path = file_path;
    unsigned long parallel;
    if (demo_query_uint(ctx, "parallel", 0, 0, 1, &parallel) < 0) return;
    if (parallel) {
        demo_grant g;
        if (demo_budget_take(ctx, &g, 3 * DEMO_TASK_KIB, 0) < 0) return;
        /* three tasks on this worker; the handler parks until all end (a
         * cancelled handler cancels them and still waits: they use s) */
        tern_task *t[3] = {tern_spawn(db_task, &s), tern_spawn(api_task, &s),
                           tern_spawn(file_task, &s)};
        if (!t[0] || !t[1] || !t[2]) {
            for (int i = 0; i < 3; i++) {
                if (t[i]) tern_join(t[i], NULL);
            }
            demo_budget_give(&g);
            tern_resp_json(ctx, 503, "{\"error\":\"out of memory\"}");
            return;
        }
        int r = tern_join_all(t, 3, NULL);
        demo_budget_give(&g);
        if (r < 0) return; /* cancelled */
    } else {
        db_query(&s.db);
        if (tern_cancelled()) return;
        api_get(&s.api);
        if (tern_cancelled()) return;
        file_read(&s.file);
    }
    if (tern_cancelled()) return;
    uint64_t total = us_since(t0);
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    if (s.api.err) {
        /* the upstream is what failed: a gateway error, with what the
         * other steps measured */
        tern_resp_set_status(ctx, 502);
        tern_resp_printf(ctx,
                         "{\"error\":\"upstream request failed\",\"step\":\"api\",\"url\":%s,"
                         "\"detail\":%s,\"errno\":%d,\"api_us\":%" PRIu64 ",\"total_us\":%" PRIu64
                         "}",
                         tern_json_quote(ctx, s.api.url ? s.api.url : ""),
                         tern_json_quote(ctx, s.api.detail), -s.api.err, s.api.us, total);
        return;
    }
    if (s.db.err) {
        db_error(ctx, &s.db);
        return;
    }
    if (s.file.err) {
        tern_resp_set_status(ctx, 500);
        tern_resp_printf(ctx,
                         "{\"error\":\"file read failed\",\"step\":\"file\",\"path\":%s,"
                         "\"detail\":%s}",
                         tern_json_quote(ctx, file_path),
                         tern_json_quote(ctx, strerror(-s.file.err)));
        return;
    }
    tern_resp_printf(
        ctx,
        "{\"db\":{\"us\":%" PRIu64 ",\"acquire_us\":%" PRIu64 ",\"query_us\":%" PRIu64
        ",\"row\":%s},"
        "\"api\":{\"us\":%" PRIu64 ",\"url\":%s,\"status\":%d,\"bytes\":%zu,\"reused\":%s,"
        "\"connect_us\":%" PRIu64 "},"
        "\"file\":{\"us\":%" PRIu64 ",\"read_us\":%" PRIu64 ",\"path\":%s,\"bytes\":%zu,"
        "\"fnv1a\":\"%016" PRIx64 "\"},"
        "\"total_us\":%" PRIu64 ",\"mode\":\"%s\",\"worker\":%d}",
        s.db.us, s.db.acquire_us, s.db.query_us, row_json(ctx, &s.db), s.api.us,
        tern_json_quote(ctx, s.api.url), s.api.status, s.api.bytes, s.api.reused ? "true" : "false",
        s.api.connect_us, s.file.us, s.file.read_us, tern_json_quote(ctx, file_path), s.file.bytes,
        s.file.fnv1a, total, parallel ? "parallel" : "sequential", tern_worker_id());
}

/* ---- metrics --------------------------------------------------------------------- */

/* Sum over the workers' pools and clients. Runs on whichever thread reads
 * /stats; app->lock keeps a stopping worker from freeing what is read. */
static void sqlite_source(void *arg, tern_metrics_writer *w) {
    demo_app *app = arg;
    tern_pool_stats sum = {0};
    pthread_mutex_lock(&app->lock);
    for (int i = 0; i < app->workers; i++) {
        demo_worker *dw = app->worker_states[i];
        if (!dw || !dw->db) continue;
        tern_pool_stats st;
        tern_pool_stats_read(dw->db, &st);
        tern_pool_stats_add(&sum, &st);
    }
    pthread_mutex_unlock(&app->lock);
    tern_pool_metrics_write(&sum, w);
}

static void upstream_source(void *arg, tern_metrics_writer *w) {
    demo_app *app = arg;
    tern_client_stats sum = {0};
    pthread_mutex_lock(&app->lock);
    for (int i = 0; i < app->workers; i++) {
        demo_worker *dw = app->worker_states[i];
        if (!dw || !dw->upstream) continue;
        tern_client_stats st;
        tern_client_stats_read(dw->upstream, &st);
        tern_pool_stats_add(&sum.pool, &st.pool);
        sum.requests += st.requests;
        sum.errors += st.errors;
        sum.reused += st.reused;
        sum.connects += st.connects;
    }
    pthread_mutex_unlock(&app->lock);
    tern_pool_metrics_write(&sum.pool, w);
    tern_metrics_counter(w, "requests_total", "Upstream requests sent", (double)sum.requests);
    tern_metrics_counter(w, "errors_total", "Upstream requests failed", (double)sum.errors);
    tern_metrics_counter(w, "reused_total", "Requests on kept-alive connections",
                         (double)sum.reused);
    tern_metrics_counter(w, "connects_total", "Upstream connections opened", (double)sum.connects);
}

/* ---- start-up ------------------------------------------------------------------- */

static int exec_sql(sqlite3 *db, const char *db_path, const char *sql) {
    char *msg = NULL;
    int rc = sqlite3_exec(db, sql, NULL, NULL, &msg);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "tern-demo: %s: %s\n", db_path, msg ? msg : sqlite3_errstr(rc));
        sqlite3_free(msg);
    }
    return rc;
}

/* Creates the schema and, when the users table is empty, 1000 users with 5
 * items each, in one transaction. Runs before the workers start. */
static int init_db(const char *db_path) {
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(db_path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL);
    if (rc != SQLITE_OK) {
        fprintf(stderr, "tern-demo: cannot open %s: %s\n", db_path,
                db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return -EIO;
    }
    sqlite3_busy_timeout(db, DB_BUSY_TIMEOUT_MS);
    /* WAL: readers (every /pool query) never wait for a writer, and the
     * mode is stored in the file, so every later connection has it */
    rc = exec_sql(db, db_path,
                  "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
                  "CREATE TABLE IF NOT EXISTS users(id INTEGER PRIMARY KEY, name TEXT NOT "
                  "NULL, email TEXT NOT NULL);"
                  "CREATE TABLE IF NOT EXISTS items(id INTEGER PRIMARY KEY, user_id INTEGER "
                  "NOT NULL REFERENCES users(id), title TEXT NOT NULL, price_cents INTEGER "
                  "NOT NULL);"
                  "CREATE INDEX IF NOT EXISTS items_by_user ON items(user_id);");
    sqlite3_stmt *st = NULL;
    int users = -1;
    if (rc == SQLITE_OK) rc = sqlite3_prepare_v2(db, "SELECT COUNT(*) FROM users", -1, &st, NULL);
    if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW) users = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    if (rc == SQLITE_OK && users == 0) {
        rc = exec_sql(db, db_path, "BEGIN");
        sqlite3_stmt *u = NULL, *it = NULL;
        if (rc == SQLITE_OK)
            rc = sqlite3_prepare_v2(db, "INSERT INTO users(id, name, email) VALUES(?1, ?2, ?3)", -1,
                                    &u, NULL);
        if (rc == SQLITE_OK)
            rc = sqlite3_prepare_v2(db,
                                    "INSERT INTO items(user_id, title, price_cents) "
                                    "VALUES(?1, ?2, ?3)",
                                    -1, &it, NULL);
        for (int i = 1; rc == SQLITE_OK && i <= DB_USERS; i++) {
            char name[32], email[64];
            snprintf(name, sizeof name, "user%d", i);
            snprintf(email, sizeof email, "user%d@example.com", i);
            sqlite3_bind_int(u, 1, i);
            sqlite3_bind_text(u, 2, name, -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(u, 3, email, -1, SQLITE_TRANSIENT);
            rc = sqlite3_step(u) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
            sqlite3_reset(u);
            for (int k = 1; rc == SQLITE_OK && k <= DB_ITEMS_PER_USER; k++) {
                char title[48];
                snprintf(title, sizeof title, "item %d of user %d", k, i);
                sqlite3_bind_int(it, 1, i);
                sqlite3_bind_text(it, 2, title, -1, SQLITE_TRANSIENT);
                sqlite3_bind_int(it, 3, (i * 37 + k * 101) % 10000);
                rc = sqlite3_step(it) == SQLITE_DONE ? SQLITE_OK : SQLITE_ERROR;
                sqlite3_reset(it);
            }
        }
        if (rc != SQLITE_OK)
            fprintf(stderr, "tern-demo: seeding %s: %s\n", db_path, sqlite3_errmsg(db));
        sqlite3_finalize(u);
        sqlite3_finalize(it);
        if (rc == SQLITE_OK) rc = exec_sql(db, db_path, "COMMIT");
    }
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -EIO;
}

static int init_file(const char *file_path) {
    int fd = open(file_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return -errno;
    char line[64];
    size_t written = 0;
    for (int i = 1; written < FILE_BYTES; i++) {
        int n = snprintf(line, sizeof line, "line %06d of the tern demo file, read for /real\n", i);
        size_t len = (size_t)n;
        if (written + len > FILE_BYTES) len = FILE_BYTES - written;
        if (write(fd, line, len) != (ssize_t)len) {
            int e = -errno;
            close(fd);
            return e ? e : -EIO;
        }
        written += len;
    }
    close(fd);
    return 0;
}

static tern_client *new_upstream(const char *url, const char *ca_file) {
    tern_client_config cfg;
    tern_client_config_init(&cfg);
    cfg.max_connections = UPSTREAM_MAX_CONNECTIONS;
    cfg.tls_ca_file = ca_file;
    return tern_client_new(url, &cfg);
}

int demo_pool_worker_init(demo_app *app, demo_worker *w) {
    w->rng = tern_clock_ns() ^ ((uint64_t)(w->id + 1) << 40) ^ 0x9e3779b97f4a7c15ull;
    tern_pool_config cfg = {.max_size = DB_POOL_MAX,
                            .min_idle = DB_POOL_MIN_IDLE,
                            .idle_timeout_ms = DB_IDLE_TIMEOUT_MS,
                            .create = db_create,
                            .destroy = db_destroy,
                            .arg = app};
    w->db = tern_pool_new(&cfg); /* creates nothing until its first acquire */
    if (!w->db) return -errno;
    /* the default upstream is this server, whose port is known once bound
     * (the workers start after that); tern_client_new does no I/O */
    char url[64];
    if (!app->upstream_url) snprintf(url, sizeof url, "http://127.0.0.1:%u/plaintext", app->port);
    w->upstream = new_upstream(app->upstream_url ? app->upstream_url : url, app->upstream_ca);
    if (!w->upstream) {
        int e = -errno;
        tern_pool_free(w->db);
        w->db = NULL;
        return e;
    }
    return 0;
}

/* The worker's loop has stopped: its pool and client may be freed on its
 * thread (tern_pool_free, tern_client_free). */
void demo_pool_worker_fini(demo_app *app, demo_worker *w) {
    (void)app;
    tern_client_free(w->upstream);
    w->upstream = NULL;
    if (w->db && tern_pool_free(w->db) < 0)
        fprintf(stderr, "tern-demo: worker %d: database pool still in use at exit\n", w->id);
    w->db = NULL;
}

void demo_pool_cleanup(tern_server *s) {
    demo_app *app = tern_server_data(s);
    tern_metrics_unregister_source(s, "sqlite");
    tern_metrics_unregister_source(s, "upstream");
    if (app->remove_db_at_exit && app->db_path[0]) {
        char p[600];
        unlink(app->db_path);
        snprintf(p, sizeof p, "%s-wal", app->db_path);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", app->db_path);
        unlink(p);
    }
    if (app->file_path[0]) unlink(app->file_path);
}

/* /readyz: this worker's pool can lend a database connection within a
 * second (a busy pool that lends nothing in that time is not ready). */
static int db_ready(void *arg) {
    (void)arg;
    tern_pool *p = db_pool();
    if (!p) return -ENODEV;
    void *v;
    int r = tern_pool_acquire(p, 1000, &v);
    if (r < 0) return r;
    tern_pool_release(p, v);
    return 0;
}

int demo_register_pool(tern_server *s) {
    demo_app *app = tern_server_data(s);
    pid_t pid = getpid();
    if (app->db_opt) {
        if (strlen(app->db_opt) >= sizeof app->db_path) return -ENAMETOOLONG;
        snprintf(app->db_path, sizeof app->db_path, "%s", app->db_opt);
    } else {
        snprintf(app->db_path, sizeof app->db_path, "/tmp/tern-demo-%d.db", (int)pid);
    }
    snprintf(app->file_path, sizeof app->file_path, "/tmp/tern-demo-%d.txt", (int)pid);
    /* a --db file is the user's; the temporary files go when the server stops */
    app->remove_db_at_exit = !app->db_opt;
    if (app->remove_db_at_exit) unlink(app->db_path); /* left by an earlier process with our pid */
    int r = init_db(app->db_path);
    if (r < 0) return r;
    r = init_file(app->file_path);
    if (r < 0) {
        fprintf(stderr, "tern-demo: cannot write %s: %s\n", app->file_path, strerror(-r));
        return r;
    }
    if (app->upstream_url) {
        /* a bad --upstream is a start-up error, not a 502 on every request */
        tern_client *c = new_upstream(app->upstream_url, app->upstream_ca);
        if (!c) {
            int e = errno;
            fprintf(stderr, "tern-demo: bad --upstream '%s': %s\n", app->upstream_url,
                    strerror(e));
            return -e;
        }
        tern_client_free(c);
    }
    r = tern_metrics_register_source(s, "sqlite", sqlite_source, app);
    if (r < 0 && r != -EEXIST) return r;
    r = tern_metrics_register_source(s, "upstream", upstream_source, app);
    if (r < 0 && r != -EEXIST) return r;
    r = tern_health_add_check(s, "db", db_ready, NULL);
    if (r < 0 && r != -EEXIST) return r;
    r = tern_route(s, TERN_GET, "/pool", pool_handler);
    if (r < 0) return r;
    return tern_route(s, TERN_GET, "/real", real_handler);
}
