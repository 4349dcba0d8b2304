/* tern PostgreSQL client: libpq driven through its asynchronous API on the
 * worker itself. A query parks the calling coroutine on the connection's
 * socket (tern_wait_fd); no thread ever blocks on the database.
 *
 *   tern_pg_config cfg;
 *   tern_pg_config_init(&cfg);
 *   tern_pg *pg = tern_pg_new("host=/tmp port=5432 dbname=app", &cfg);
 *   int world = tern_pg_prepare(pg, "world", "SELECT randomnumber FROM world WHERE id = $1", 1);
 *   ...in a handler:
 *   const char *args[] = {"42"};
 *   tern_pg_result *res;
 *   if (tern_pg_exec(pg, world, 1, args, &res) == 0)
 *       tern_resp_printf(ctx, "%s", tern_pg_value(res, 0, 0));
 *   else
 *       tern_resp_printf(ctx, "error %s: %s", tern_pg_sqlstate(res), tern_pg_error(res));
 *   tern_pg_result_free(res);
 *
 * Connections come from a tern_pool (one per worker by default, or one shared
 * by every worker: tern_pg_config.per_worker). Each connection runs in libpq's
 * pipeline mode: tern_pg_pipeline sends several statements in one round
 * trip, with one sync point at the end: a batch is one implicit transaction
 * (all of it commits, or none; after a failing statement the server skips
 * the rest). Write batches that touch rows in a consistent order (sort by
 * key) so two of them cannot deadlock. Prepared statements are registered
 * once per tern_pg and prepared lazily on each connection, in the same round
 * trip as their first use.
 *
 * With per-worker pools a connection is multiplexed: the batches of the
 * worker's requests queue and each connection in use sends every batch
 * queued at once (each still its own transaction), so under load one write
 * serves many requests. A batch then waits behind the ones sent before it on
 * its connection: a slow statement delays the requests queued behind it (as
 * with tokio-postgres). With the shared pool a connection serves one batch
 * at a time.
 *
 * Errors: functions return 0 or a negative errno; every result a call hands
 * back is non-NULL and carries the error, if any, with its SQLSTATE:
 *   -EIO         the server refused the statement (tern_pg_sqlstate: e.g.
 *                "23505" unique_violation, "42P01" undefined_table)
 *   -ETIMEDOUT   the query outlived its timeout and was cancelled on the
 *                server (PQcancel, run on the offload pool since it blocks):
 *                SQLSTATE "57014"; or no connection within acquire_timeout_ms;
 *                multiplexed, rarely, a statement right behind one that timed
 *                out, when the cancel landed after that one had ended
 *   -ECONNRESET  the connection broke (backend terminated: "57P01", or
 *                "08006"); it is discarded from the pool and replaced
 *   -ECONNREFUSED no connection could be made ("08001")
 *   -ECANCELED   the caller was cancelled (its connection is discarded)
 *   -ENOMEM, -EINVAL (bad statement id or parameters), -EPERM (outside a
 *                coroutine)
 * Only -EIO and -ETIMEDOUT from a query leave the connection in the pool. */
#ifndef TERN_PG_H
#define TERN_PG_H

#include <tern/api.h>

#include <stddef.h>
#include <stdint.h>

#include <tern/pool.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct tern_pg tern_pg;
typedef struct tern_pg_result tern_pg_result;

typedef struct tern_pg_config {
    size_t max_connections;      /* per pool (so per worker, by default), default 4 */
    size_t min_idle;             /* kept connected in the background, default 0 */
    uint64_t idle_timeout_ms;    /* idle connections closed after, default 60000 */
    unsigned connect_timeout_ms; /* whole connection start-up, default 5000 */
    unsigned query_timeout_ms;   /* default per statement batch, 0 = none; default 10000 */
    int64_t acquire_timeout_ms;  /* waiting for a free connection, default 5000 (< 0 forever) */
    int per_worker;              /* 1 (default): one pool per worker, each of
                                    max_connections (measured faster: a connection
                                    released is handed to a waiter on the same worker,
                                    never through another worker's queue); 0: one pool
                                    shared by every worker, max_connections in all */
} tern_pg_config;

TERN_API void tern_pg_config_init(tern_pg_config *cfg);

/* A connection pool for the libpq connection string `dsn` ("host=/run/pg
 * dbname=x" or "postgresql://..."). Connects nothing yet (lazily, from the
 * first query). NULL with errno EINVAL (bad dsn or config) or ENOMEM. */
TERN_API tern_pg *tern_pg_new(const char *dsn, const tern_pg_config *cfg);
/* Closes every connection. Call it once no handler uses pg any more (for a
 * server: after tern_server_run returned). 0, or -EBUSY while connections are
 * in use. */
TERN_API int tern_pg_free(tern_pg *pg);

/* Registers a statement prepared on each connection the first time it is
 * used there. Returns its id (>= 0) for tern_pg_exec / tern_pg_op.stmt, or
 * -EINVAL (bad arguments, name taken), -ENOSPC (64 statements per tern_pg),
 * -ENOMEM. Thread-safe; callable while the server runs. */
TERN_API int tern_pg_prepare(tern_pg *pg, const char *name, const char *sql, int nparams);

/* One statement of a pipeline. Parameters are text (NULL for SQL NULL); the
 * result comes back in `res` (free it with tern_pg_result_free). */
typedef struct tern_pg_op {
    int stmt;        /* a tern_pg_prepare id, or -1 to send `sql` */
    const char *sql; /* when stmt is -1 */
    int nparams;
    const char *const *params;
    tern_pg_result *res; /* out: always set on return */
} tern_pg_op;

/* Sends every op on one connection in one round trip (pipeline mode), then
 * reads their results. timeout_ms bounds the whole batch on the server
 * (0: the config's query_timeout_ms). Returns 0 when every op succeeded, else
 * the first failure's code (see above); each op's res tells its own fate:
 * the ops after a failure were not run and carry the failure's code and
 * SQLSTATE (so do the ops not answered before a connection broke). */
TERN_API int tern_pg_pipeline(tern_pg *pg, tern_pg_op *ops, size_t n, unsigned timeout_ms);
/* One statement: tern_pg_pipeline with one op. */
TERN_API int tern_pg_query(tern_pg *pg, const char *sql, int nparams, const char *const *params,
                           tern_pg_result **res);
TERN_API int tern_pg_exec(tern_pg *pg, int stmt, int nparams, const char *const *params,
                          tern_pg_result **res);

/* ---- results ---------------------------------------------------------------- */
TERN_API int tern_pg_rows(const tern_pg_result *r);
TERN_API int tern_pg_columns(const tern_pg_result *r);
/* The value as text ("" for NULL and out of range), valid until the result
 * is freed; its length in bytes. */
TERN_API const char *tern_pg_value(const tern_pg_result *r, int row, int col);
TERN_API size_t tern_pg_length(const tern_pg_result *r, int row, int col);
TERN_API int tern_pg_is_null(const tern_pg_result *r, int row, int col);
/* The value as an integer: 0 when NULL or not a number. */
TERN_API long long tern_pg_int(const tern_pg_result *r, int row, int col);
/* Rows an INSERT/UPDATE/DELETE touched (0 for others). */
TERN_API long long tern_pg_affected(const tern_pg_result *r);
/* The error message, or NULL when the statement succeeded. */
TERN_API const char *tern_pg_error(const tern_pg_result *r);
/* The five-character SQLSTATE of the error ("00000" on success). */
TERN_API const char *tern_pg_sqlstate(const tern_pg_result *r);
/* The negative errno the statement failed with (0 on success). */
TERN_API int tern_pg_status(const tern_pg_result *r);
TERN_API void tern_pg_result_free(tern_pg_result *r);

/* The pools' figures, summed over every worker's pool (per_worker). */
TERN_API void tern_pg_stats(const tern_pg *pg, tern_pool_stats *out);

#ifdef __cplusplus
}
#endif
#endif
