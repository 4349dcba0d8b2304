/* tern-demo: the TechEmpower database endpoints on PostgreSQL (--pg DSN).
 *
 * /db, /queries?queries=N, /updates?queries=N and /fortunes follow the
 * TechEmpower rules (world ids 1..10000; N clamped to 1..500, a missing or
 * non-numeric N counts as 1; fortunes sorted by message, HTML-escaped, one
 * fortune added at request time). /pg/sleep runs pg_sleep under a query
 * timeout, to show (and test) a timeout that cancels on the server.
 *
 * Every query goes through tern_pg (<tern/pg.h>): libpq's asynchronous API
 * on the worker, so a handler parks on the database socket like on any
 * other. /queries and /updates send their N statements in one pipeline (one
 * round trip each way).
 *
 * Without --pg the routes still exist and answer 503 with a JSON message:
 * `make run` needs no PostgreSQL. Given an empty database, start-up creates
 * and seeds the TechEmpower schema (blocking libpq calls: the workers do not
 * run yet). */
#include <errno.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tern.h>
#include <tern/metrics.h>
#include <tern/pg.h>

#include "demo.h"

#define WORLD_ROWS 10000
#define MAX_QUERIES 500

static const char SCHEMA_SQL[] =
    "BEGIN;"
    "CREATE TABLE IF NOT EXISTS world (id integer PRIMARY KEY, randomnumber integer NOT NULL);"
    "CREATE TABLE IF NOT EXISTS fortune (id integer PRIMARY KEY, message varchar(2048) NOT NULL);"
    "INSERT INTO world (id, randomnumber) SELECT g, floor(random() * 10000 + 1)::integer "
    "  FROM generate_series(1, 10000) AS g WHERE NOT EXISTS (SELECT 1 FROM world);"
    "INSERT INTO fortune (id, message) SELECT * FROM (VALUES"
    " (1, 'fortune: No such file or directory'),"
    " (2, 'A computer scientist is someone who fixes things that aren''t broken.'),"
    " (3, 'After enough decimal places, nobody gives a damn.'),"
    " (4, 'A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1'),"
    " (5, 'A computer program does what you tell it to do, not what you want it to do.'),"
    " (6, 'Emacs is a nice operating system, but I prefer UNIX. \xe2\x80\x94 Tom Christaensen'),"
    " (7, 'Any program that runs right is obsolete.'),"
    " (8, 'A list is only as strong as its weakest link. \xe2\x80\x94 Donald Knuth'),"
    " (9, 'Feature: A bug with seniority.'),"
    " (10, 'Computers make very fast, very accurate mistakes.'),"
    " (11, '<script>alert(\"This should not be displayed in a browser alert box.\");</script>'),"
    " (12, '\xe3\x83\x95\xe3\x83\xac\xe3\x83\xbc\xe3\x83\xa0\xe3\x83\xaf\xe3\x83\xbc\xe3\x82\xaf"
    "\xe3\x81\xae\xe3\x83\x99\xe3\x83\xb3\xe3\x83\x81\xe3\x83\x9e\xe3\x83\xbc\xe3\x82\xaf')"
    " ) AS v(id, message) WHERE NOT EXISTS (SELECT 1 FROM fortune);"
    "COMMIT;"
    "ANALYZE world; ANALYZE fortune;";

static const char FORTUNE_ADDED[] = "Additional fortune added at request time.";
static const char HTML_HEAD[] = "<!DOCTYPE html><html><head><title>Fortunes</title></head><body>"
                                "<table><tr><th>id</th><th>message</th></tr>";
static const char HTML_TAIL[] = "</table></body></html>";

/* the statements' ids (tern_pg_prepare), fixed before the server runs */
static struct { int world, update, fortune, sleep; } stmt;

/* ---- helpers ---------------------------------------------------------------------- */

/* xorshift64* on this worker thread's state: ids 1..10000 */
static int random_id(void) {
    static _Thread_local uint64_t x;
    if (!x) x = tern_clock_ns() ^ ((uint64_t)(tern_worker_id() + 2) << 40) ^ 0x9e3779b97f4a7c15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    return (int)((x * 0x2545f4914f6cdd1dull >> 32) % WORLD_ROWS) + 1;
}

/* The database, or NULL after answering 503 (no --pg). */
static tern_pg *need_pg(tern_ctx *ctx) {
    tern_pg *pg = demo_app_of(ctx)->pg;
    if (!pg) tern_resp_json(ctx, 503, "{\"error\":\"no database: start tern-demo with --pg DSN\"}");
    return pg;
}

/* A failed query as a JSON error with its SQLSTATE: 504 when it timed out
 * (and was cancelled on the server), 503 when no connection could be had or
 * it broke, else 500. */
static void answer_error(tern_ctx *ctx, int r, const tern_pg_result *res) {
    int status = r == -ETIMEDOUT ? 504 : r == -ECONNRESET || r == -ECONNREFUSED ? 503 : 500;
    const char *msg = tern_json_quote(ctx, tern_pg_error(res) ? tern_pg_error(res) : strerror(-r));
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    tern_resp_set_status(ctx, status);
    tern_resp_printf(ctx, "{\"error\":%s,\"sqlstate\":\"%s\"}", msg ? msg : "\"?\"",
                     tern_pg_sqlstate(res));
}

static size_t put_int(char *out, long long v) {
    char tmp[24];
    size_t n = 0, len = 0;
    int neg = v < 0;
    unsigned long long u = neg ? 0ull - (unsigned long long)v : (unsigned long long)v;
    do {
        tmp[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (neg) out[len++] = '-';
    while (n) out[len++] = tmp[--n];
    return len;
}

static size_t put_world(char *out, long long id, long long rn) {
    size_t n = 0;
    memcpy(out, "{\"id\":", 6);
    n = 6 + put_int(out + 6, id);
    memcpy(out + n, ",\"randomNumber\":", 16);
    n += 16 + put_int(out + n + 16, rn);
    out[n++] = '}';
    return n;
}

/* TechEmpower's rule: a missing, empty or non-numeric count is 1; others are
 * clamped to 1..500 (all digits but huge: 500). */
static int queries_param(tern_ctx *ctx) {
    const char *v = NULL;
    if (tern_req_query_get(ctx, "queries", &v) < 0 || !*v) return 1;
    const char *p = v + (*v == '-' || *v == '+');
    if (!*p) return 1;
    for (const char *q = p; *q; q++)
        if (*q < '0' || *q > '9') return 1;
    if (*v == '-') return 1;
    if (strlen(p) > 6) return MAX_QUERIES;
    int n = 0;
    for (const char *q = p; *q; q++) n = n * 10 + (*q - '0'); /* digits only, at most 6 */
    return n < 1 ? 1 : n > MAX_QUERIES ? MAX_QUERIES : n;
}

/* ---- handlers --------------------------------------------------------------------- */

static void db(tern_ctx *ctx) {
    tern_pg *pg = need_pg(ctx);
    if (!pg) return;
    char id[12];
    id[put_int(id, random_id())] = 0;
    const char *params[] = {id};
    tern_pg_result *res;
    int r = tern_pg_exec(pg, stmt.world, 1, params, &res);
    if (r == 0 && tern_pg_rows(res) != 1) r = -ENOENT;
    if (r < 0) {
        answer_error(ctx, r, res);
    } else {
        char body[64];
        size_t n = put_world(body, tern_pg_int(res, 0, 0), tern_pg_int(res, 0, 1));
        tern_resp_set_header(ctx, "Content-Type", "application/json");
        tern_resp_set_body(ctx, body, n);
    }
    tern_pg_result_free(res);
}

/* N random world rows in one pipeline; 0, or -1 after answering. */
static int fetch_worlds(tern_ctx *ctx, tern_pg *pg, int n, tern_pg_op *ops, long long *rows) {
    char(*ids)[12] = tern_alloc(ctx, (size_t)n * sizeof *ids);
    const char **params = tern_alloc(ctx, (size_t)n * sizeof *params);
    if (!ids || !params) return -1;
    for (int i = 0; i < n; i++) {
        ids[i][put_int(ids[i], random_id())] = 0;
        params[i] = ids[i];
        ops[i] = (tern_pg_op){.stmt = stmt.world, .nparams = 1, .params = &params[i]};
    }
    int r = tern_pg_pipeline(pg, ops, (size_t)n, 0);
    for (int i = 0; r == 0 && i < n; i++)
        if (tern_pg_rows(ops[i].res) != 1) r = -ENOENT;
    if (r < 0) {
        int bad = 0;
        while (bad < n - 1 && !tern_pg_status(ops[bad].res)) bad++;
        answer_error(ctx, r, ops[bad].res);
    }
    for (int i = 0; i < n; i++) {
        if (r == 0) {
            rows[2 * i] = tern_pg_int(ops[i].res, 0, 0);
            rows[2 * i + 1] = tern_pg_int(ops[i].res, 0, 1);
        }
        tern_pg_result_free(ops[i].res);
    }
    return r < 0 ? -1 : 0;
}

static void answer_worlds(tern_ctx *ctx, const long long *rows, int n) {
    char *body = tern_alloc(ctx, (size_t)n * 48 + 2), *p = body;
    if (!body) return;
    *p++ = '[';
    for (int i = 0; i < n; i++) {
        if (i) *p++ = ',';
        p += put_world(p, rows[2 * i], rows[2 * i + 1]);
    }
    *p++ = ']';
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    tern_resp_set_body_static(ctx, body, (size_t)(p - body)); /* the arena outlives the send */
}

static void queries(tern_ctx *ctx) {
    tern_pg *pg = need_pg(ctx);
    if (!pg) return;
    int n = queries_param(ctx);
    tern_pg_op *ops = tern_alloc(ctx, (size_t)n * sizeof *ops);
    long long *rows = tern_alloc(ctx, (size_t)n * 2 * sizeof *rows);
    if (!ops || !rows || fetch_worlds(ctx, pg, n, ops, rows) < 0) return;
    answer_worlds(ctx, rows, n);
}

static int world_cmp(const void *a, const void *b) {
    long long x = *(const long long *)a, y = *(const long long *)b;
    return (x > y) - (x < y);
}

/* rows are (id, randomnumber) pairs */
static void sort_worlds(long long *rows, int n) {
    qsort(rows, (size_t)n, 2 * sizeof *rows, world_cmp);
}

/* /queries, then each row gets a new random number (never its old one),
 * written back with one UPDATE per row, all in one pipeline (one
 * transaction). The answer lists the rows in id order. */
static void updates(tern_ctx *ctx) {
    tern_pg *pg = need_pg(ctx);
    if (!pg) return;
    int n = queries_param(ctx);
    tern_pg_op *ops = tern_alloc(ctx, (size_t)n * sizeof *ops);
    long long *rows = tern_alloc(ctx, (size_t)n * 2 * sizeof *rows);
    char(*text)[2][12] = tern_alloc(ctx, (size_t)n * sizeof *text);
    const char *(*params)[2] = tern_alloc(ctx, (size_t)n * sizeof *params);
    if (!ops || !rows || !text || !params || fetch_worlds(ctx, pg, n, ops, rows) < 0) return;
    /* one transaction for the batch: rows locked in id order, so two
     * concurrent /updates cannot deadlock */
    sort_worlds(rows, n);
    for (int i = 0; i < n; i++) {
        int rn;
        do rn = random_id();
        while (rn == rows[2 * i + 1]);
        rows[2 * i + 1] = rn;
        text[i][0][put_int(text[i][0], rn)] = 0;
        text[i][1][put_int(text[i][1], rows[2 * i])] = 0;
        params[i][0] = text[i][0];
        params[i][1] = text[i][1];
        ops[i] = (tern_pg_op){.stmt = stmt.update, .nparams = 2, .params = params[i]};
    }
    int r = tern_pg_pipeline(pg, ops, (size_t)n, 0);
    int bad = 0;
    while (r < 0 && bad < n - 1 && !tern_pg_status(ops[bad].res)) bad++;
    if (r < 0) answer_error(ctx, r, ops[bad].res);
    for (int i = 0; i < n; i++) tern_pg_result_free(ops[i].res);
    if (r == 0) answer_worlds(ctx, rows, n);
}

typedef struct fortune {
    long long id;
    const char *msg;
} fortune;

static int fortune_cmp(const void *a, const void *b) {
    return strcmp(((const fortune *)a)->msg, ((const fortune *)b)->msg);
}

/* s HTML-escaped (& < > " ') at out; returns the bytes written (<= 6 x). */
static size_t put_escaped(char *out, const char *s) {
    size_t n = 0;
    for (; *s; s++) {
        const char *rep;
        switch (*s) {
        case '&':
            rep = "&amp;";
            break;
        case '<':
            rep = "&lt;";
            break;
        case '>':
            rep = "&gt;";
            break;
        case '"':
            rep = "&quot;";
            break;
        case '\'':
            rep = "&#39;";
            break;
        default:
            out[n++] = *s;
            continue;
        }
        size_t l = strlen(rep);
        memcpy(out + n, rep, l);
        n += l;
    }
    return n;
}

static void fortunes(tern_ctx *ctx) {
    tern_pg *pg = need_pg(ctx);
    if (!pg) return;
    tern_pg_result *res;
    int r = tern_pg_exec(pg, stmt.fortune, 0, NULL, &res);
    if (r < 0) {
        answer_error(ctx, r, res);
        tern_pg_result_free(res);
        return;
    }
    int rows = tern_pg_rows(res);
    fortune *list = tern_alloc(ctx, (size_t)(rows + 1) * sizeof *list);
    size_t cap = sizeof HTML_HEAD + sizeof HTML_TAIL + sizeof FORTUNE_ADDED + 64;
    for (int i = 0; i < rows; i++) cap += 6 * tern_pg_length(res, i, 1) + 48;
    char *body = tern_alloc(ctx, cap), *p = body;
    if (!list || !body) {
        tern_pg_result_free(res);
        return;
    }
    for (int i = 0; i < rows; i++)
        list[i] = (fortune){tern_pg_int(res, i, 0), tern_pg_value(res, i, 1)};
    list[rows] = (fortune){0, FORTUNE_ADDED};
    qsort(list, (size_t)rows + 1, sizeof *list, fortune_cmp);
    memcpy(p, HTML_HEAD, sizeof HTML_HEAD - 1);
    p += sizeof HTML_HEAD - 1;
    for (int i = 0; i <= rows; i++) {
        memcpy(p, "<tr><td>", 8);
        p += 8 + put_int(p + 8, list[i].id);
        memcpy(p, "</td><td>", 9);
        p += 9 + put_escaped(p + 9, list[i].msg);
        memcpy(p, "</td></tr>", 10);
        p += 10;
    }
    memcpy(p, HTML_TAIL, sizeof HTML_TAIL - 1);
    p += sizeof HTML_TAIL - 1;
    tern_pg_result_free(res);
    tern_resp_set_header(ctx, "Content-Type", "text/html; charset=utf-8");
    tern_resp_set_body_static(ctx, body, (size_t)(p - body));
}

/* GET /pg/sleep?ms=N&timeout_ms=T: pg_sleep(N ms) under a T ms query
 * timeout (0: the pool's default, 10 s); past it the query is cancelled on
 * the server and the answer is 504. */
static void pg_sleep(tern_ctx *ctx) {
    tern_pg *pg = need_pg(ctx);
    if (!pg) return;
    unsigned long ms, timeout;
    if (demo_query_uint(ctx, "ms", 100, 0, 60000, &ms) < 0) return;
    if (demo_query_uint(ctx, "timeout_ms", 0, 0, 60000, &timeout) < 0) return;
    char arg[12];
    arg[put_int(arg, (long long)ms)] = 0;
    const char *params[] = {arg};
    tern_pg_op op = {.stmt = stmt.sleep, .nparams = 1, .params = params};
    uint64_t t0 = tern_clock_ns();
    int r = tern_pg_pipeline(pg, &op, 1, (unsigned)timeout);
    if (r < 0)
        answer_error(ctx, r, op.res);
    else
        tern_resp_printf(ctx, "{\"slept_ms\":%lu,\"took_ms\":%llu}", ms,
                         (unsigned long long)((tern_clock_ns() - t0) / 1000000));
    tern_resp_set_header(ctx, "Content-Type", "application/json");
    tern_pg_result_free(op.res);
}

/* ---- start-up ---------------------------------------------------------------------- */

/* /stats and /metrics: the connection pool(s) as "pg" */
static void pg_metrics(void *arg, tern_metrics_writer *w) {
    tern_pool_stats st;
    tern_pg_stats(arg, &st);
    tern_pool_metrics_write(&st, w);
}

/* Creates and seeds the schema when missing (blocking: before the workers). */
static void quiet(void *arg, const char *message) {}

static int seed(const char *dsn) {
    PGconn *c = PQconnectdb(dsn);
    int r = 0;
    PQsetNoticeProcessor(c, quiet, NULL); /* "relation world already exists, skipping" */
    if (PQstatus(c) != CONNECTION_OK) {
        fprintf(stderr, "tern-demo: --pg: cannot connect: %s", PQerrorMessage(c));
        r = -ECONNREFUSED;
    } else {
        PGresult *res = PQexec(c, SCHEMA_SQL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK) {
            fprintf(stderr, "tern-demo: --pg: cannot create the schema: %s", PQerrorMessage(c));
            r = -EIO;
        }
        PQclear(res);
    }
    PQfinish(c);
    return r;
}

int demo_register_pg(tern_server *s) {
    demo_app *app = tern_server_data(s);
    int r;
    if (app->pg_dsn) {
        if ((r = seed(app->pg_dsn)) < 0) return r;
        tern_pg_config cfg;
        tern_pg_config_init(&cfg);
        /* --pg-pool is the server's total: per worker, its share */
        size_t total = app->pg_pool ? app->pg_pool : 4;
        int workers = tern_server_workers(s);
        size_t nw = workers > 0 ? (size_t)workers : 1;
        cfg.per_worker = !app->pg_shared_pool;
        cfg.max_connections = cfg.per_worker ? (total + nw - 1) / nw : total;
        app->pg = tern_pg_new(app->pg_dsn, &cfg);
        if (!app->pg) return -errno;
        int ids[4];
        ids[0] = tern_pg_prepare(app->pg, "world",
                                 "SELECT id, randomnumber FROM world WHERE id = $1", 1);
        ids[1] = tern_pg_prepare(app->pg, "update",
                                 "UPDATE world SET randomnumber = $1 WHERE id = $2", 2);
        ids[2] = tern_pg_prepare(app->pg, "fortune", "SELECT id, message FROM fortune", 0);
        ids[3] = tern_pg_prepare(app->pg, "sleep", "SELECT pg_sleep($1::float8 / 1000)", 1);
        for (int i = 0; i < 4; i++)
            if (ids[i] < 0) return ids[i];
        stmt.world = ids[0], stmt.update = ids[1], stmt.fortune = ids[2], stmt.sleep = ids[3];
        if ((r = tern_metrics_register_source(s, "pg", pg_metrics, app->pg)) < 0) return r;
    }
    if ((r = tern_route(s, TERN_GET, "/db", db)) < 0) return r;
    if ((r = tern_route(s, TERN_GET, "/queries", queries)) < 0) return r;
    if ((r = tern_route(s, TERN_GET, "/updates", updates)) < 0) return r;
    if ((r = tern_route(s, TERN_GET, "/fortunes", fortunes)) < 0) return r;
    return tern_route(s, TERN_GET, "/pg/sleep", pg_sleep);
}

void demo_pg_cleanup(tern_server *s) {
    demo_app *app = tern_server_data(s);
    if (!app->pg) return;
    tern_metrics_unregister_source(s, "pg");
    if (tern_pg_free(app->pg) == 0) app->pg = NULL;
}
