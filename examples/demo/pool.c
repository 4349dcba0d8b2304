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
 * One tern_pool per worker (created by the worker's first request): a pool
 * may serve every worker, but one per worker keeps its lock uncontended
 * and its waiters on that worker. The database is created and seeded at start-up
 * (before the workers run, so blocking is fine there), in --db PATH or in
 * /tmp/tern-demo-<pid>.db, which is removed at exit. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
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

#define MAX_WORKERS 1024 /* --workers accepts 1..1024 */
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

static char db_path[512];
static char file_path[512];
static int remove_db_at_exit; /* only the default one in /tmp */
static tern_pool *_Atomic db_pools[MAX_WORKERS];
static tern_client *_Atomic upstream;
static pthread_mutex_t upstream_lock = PTHREAD_MUTEX_INITIALIZER;

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
    j->rc = sqlite3_open_v2(db_path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
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
    open_job j = {NULL, SQLITE_ERROR};
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
    close_conn(res);
}

/* This worker's pool, created by its first request (only this worker
 * writes its slot; the metrics source on other threads only reads). */
static tern_pool *db_pool(void) {
    int w = tern_worker_id();
    if (w < 0 || w >= MAX_WORKERS) return NULL;
    tern_pool *p = atomic_load_explicit(&db_pools[w], memory_order_acquire);
    if (p) return p;
    tern_pool_config cfg = {.max_size = DB_POOL_MAX,
                            .min_idle = DB_POOL_MIN_IDLE,
                            .idle_timeout_ms = DB_IDLE_TIMEOUT_MS,
                            .create = db_create,
                            .destroy = db_destroy};
    p = tern_pool_new(&cfg);
    if (p) atomic_store_explicit(&db_pools[w], p, memory_order_release);
    return p;
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

static tern_client *upstream_client(int *err) {
    tern_client *c = atomic_load_explicit(&upstream, memory_order_acquire);
    if (c) return c;
    /* the default upstream is this server, whose port is known only once
     * bound: made at the first request. tern_client_new does no I/O, so
     * the lock is held for microseconds. */
    pthread_mutex_lock(&upstream_lock);
    c = atomic_load_explicit(&upstream, memory_order_relaxed);
    if (!c) {
        char url[64];
        snprintf(url, sizeof url, "http://127.0.0.1:%u/plaintext", demo_opts.port);
        tern_client_config cfg;
        tern_client_config_init(&cfg);
        cfg.max_connections = UPSTREAM_MAX_CONNECTIONS;
        c = tern_client_new(url, &cfg);
        if (c)
            atomic_store_explicit(&upstream, c, memory_order_release);
        else
            *err = -errno;
    }
    pthread_mutex_unlock(&upstream_lock);
    return c;
}

static void api_get(api_result *res) {
    uint64_t t0 = tern_clock_ns();
    int err = -EINVAL;
    tern_client *c = upstream_client(&err);
    if (!c) {
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
    size_t bytes;
    uint64_t fnv1a;   /* of the content: proof it was read */
    uint64_t read_us; /* open+read+close on the pool thread */
    uint64_t us;
    int err;
} file_result;

static void *read_fn(void *arg) {
    file_result *res = arg;
    uint64_t t0 = tern_clock_ns();
    int fd = open(file_path, O_RDONLY | O_CLOEXEC);
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

static int random_user(void) {
    static __thread uint64_t x;
    if (!x) x = tern_clock_ns() ^ ((uint64_t)(tern_worker_id() + 1) << 40) ^ 0x9e3779b97f4a7c15ull;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return (int)(x % DB_USERS) + 1;
}

/* ?id=N (1..2^31-1), else a random user. 0, or -1 when id is malformed. */
static int pick_user(tern_ctx *ctx, int *id) {
    const char *q = tern_req_query(ctx, "id");
    if (!q) {
        *id = random_user();
        return 0;
    }
    char *end;
    errno = 0;
    long v = strtol(q, &end, 10);
    if (errno || end == q || *end || v < 1 || v > 0x7fffffff) return -1;
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

static void pool_handler(tern_ctx *ctx) {
    uint64_t t0 = tern_clock_ns();
    db_result d = {0};
    if (pick_user(ctx, &d.id) < 0) {
        tern_resp_json(ctx, 400, "{\"error\":\"id must be an integer >= 1\"}");
        return;
    }
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
    real_steps s;
    memset(&s, 0, sizeof s);
    s.db.id = random_user();
    const char *par = tern_req_query(ctx, "parallel");
    int parallel = par && strcmp(par, "0") != 0;
    if (parallel) {
        /* three tasks on this worker; the handler parks until all end (a
         * cancelled handler cancels them and still waits: they use s) */
        tern_task *t[3] = {tern_spawn(db_task, &s), tern_spawn(api_task, &s),
                           tern_spawn(file_task, &s)};
        if (!t[0] || !t[1] || !t[2]) {
            for (int i = 0; i < 3; i++) {
                if (t[i]) tern_join(t[i], NULL);
            }
            tern_resp_json(ctx, 503, "{\"error\":\"out of memory\"}");
            return;
        }
        if (tern_join_all(t, 3, NULL) < 0) return; /* cancelled */
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

static void sqlite_source(void *arg, tern_metrics_writer *w) {
    tern_pool_stats sum = {0};
    for (int i = 0; i < MAX_WORKERS; i++) {
        tern_pool *p = atomic_load_explicit(&db_pools[i], memory_order_acquire);
        if (!p) continue;
        tern_pool_stats st;
        tern_pool_stats_read(p, &st);
        tern_pool_stats_add(&sum, &st);
    }
    tern_pool_metrics_write(&sum, w);
}

static void upstream_source(void *arg, tern_metrics_writer *w) {
    tern_client_stats st = {0};
    tern_client *c = atomic_load_explicit(&upstream, memory_order_acquire);
    if (c) tern_client_stats_read(c, &st); /* else: no request yet, all zero */
    tern_pool_metrics_write(&st.pool, w);
    tern_metrics_counter(w, "requests_total", "Upstream requests sent", (double)st.requests);
    tern_metrics_counter(w, "errors_total", "Upstream requests failed", (double)st.errors);
    tern_metrics_counter(w, "reused_total", "Requests on kept-alive connections",
                         (double)st.reused);
    tern_metrics_counter(w, "connects_total", "Upstream connections opened", (double)st.connects);
}

/* ---- start-up ------------------------------------------------------------------- */

static void remove_files(void) {
    if (remove_db_at_exit) {
        char p[600];
        unlink(db_path);
        snprintf(p, sizeof p, "%s-wal", db_path);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", db_path);
        unlink(p);
    }
    unlink(file_path);
}

static int exec_sql(sqlite3 *db, const char *sql) {
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
static int init_db(void) {
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
    rc = exec_sql(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
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
        rc = exec_sql(db, "BEGIN");
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
        if (rc == SQLITE_OK) rc = exec_sql(db, "COMMIT");
    }
    sqlite3_close(db);
    return rc == SQLITE_OK ? 0 : -EIO;
}

static int init_file(void) {
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

int demo_register_pool(tern_server *s) {
    pid_t pid = getpid();
    if (demo_opts.db_path) {
        if (strlen(demo_opts.db_path) >= sizeof db_path) return -ENAMETOOLONG;
        snprintf(db_path, sizeof db_path, "%s", demo_opts.db_path);
    } else {
        snprintf(db_path, sizeof db_path, "/tmp/tern-demo-%d.db", (int)pid);
    }
    snprintf(file_path, sizeof file_path, "/tmp/tern-demo-%d.txt", (int)pid);
    /* a --db file is the user's; the temporary files go at exit */
    remove_db_at_exit = !demo_opts.db_path;
    atexit(remove_files);
    if (remove_db_at_exit) unlink(db_path); /* left by an earlier process with our pid */
    int r = init_db();
    if (r < 0) return r;
    r = init_file();
    if (r < 0) {
        fprintf(stderr, "tern-demo: cannot write %s: %s\n", file_path, strerror(-r));
        return r;
    }
    if (demo_opts.upstream) {
        /* a bad --upstream is a start-up error, not a 502 on every request */
        tern_client_config cfg;
        tern_client_config_init(&cfg);
        cfg.max_connections = UPSTREAM_MAX_CONNECTIONS;
        tern_client *c = tern_client_new(demo_opts.upstream, &cfg);
        if (!c) {
            int e = errno;
            fprintf(stderr, "tern-demo: bad --upstream '%s': %s\n", demo_opts.upstream,
                    strerror(e));
            return -e;
        }
        atomic_store_explicit(&upstream, c, memory_order_release);
    }
    r = tern_metrics_register_source(s, "sqlite", sqlite_source, NULL);
    if (r < 0 && r != -EEXIST) return r;
    r = tern_metrics_register_source(s, "upstream", upstream_source, NULL);
    if (r < 0 && r != -EEXIST) return r;
    r = tern_route(s, TERN_GET, "/pool", pool_handler);
    if (r < 0) return r;
    return tern_route(s, TERN_GET, "/real", real_handler);
}
