/* tern_pg without a database server: configuration and DSN checks, the
 * statement registry and its limits, argument errors, result accessors on
 * error results, and a refused connection reported with SQLSTATE 08001 on
 * a bare scheduler (shared pool and per-worker multiplexing). The queries themselves run against a
 * real PostgreSQL in tests/integration/test_pg.py. */
#include "check.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "tern.h"
#include "tern/pg.h"

#include "sched_harness.h"

static void test_new(void) {
    tern_pg_config cfg;
    tern_pg_config_init(&cfg);
    CHECK_INT(cfg.max_connections, 4);
    CHECK_INT(cfg.per_worker, 1);
    errno = 0;
    CHECK(tern_pg_new(NULL, &cfg) == NULL && errno == EINVAL);
    errno = 0;
    CHECK(tern_pg_new("no_such_keyword=1", &cfg) == NULL && errno == EINVAL);
    cfg.max_connections = 0;
    errno = 0;
    CHECK(tern_pg_new("dbname=x", &cfg) == NULL && errno == EINVAL);
    tern_pg *pg = tern_pg_new("postgresql://localhost/x", NULL);
    CHECK(pg != NULL);
    CHECK_INT(tern_pg_free(pg), 0);
}

static void test_prepare(void) {
    tern_pg *pg = tern_pg_new("dbname=x", NULL);
    CHECK_INT(tern_pg_prepare(pg, "a", "SELECT 1", 0), 0);
    CHECK_INT(tern_pg_prepare(pg, "b", "SELECT $1", 1), 1);
    CHECK_INT(tern_pg_prepare(pg, "a", "SELECT 2", 0), -EINVAL); /* name taken */
    CHECK_INT(tern_pg_prepare(pg, "", "SELECT 2", 0), -EINVAL);
    CHECK_INT(tern_pg_prepare(pg, "c", NULL, 0), -EINVAL);
    int last = 0;
    for (int i = 2; i < 70; i++) {
        char name[16];
        snprintf(name, sizeof name, "s%d", i);
        last = tern_pg_prepare(pg, name, "SELECT 1", 0);
        if (last < 0) break;
    }
    CHECK_INT(last, -ENOSPC);
    CHECK_INT(tern_pg_free(pg), 0);
}

static void test_bad_arguments(void) {
    tern_pg *pg = tern_pg_new("dbname=x", NULL);
    tern_pg_result *res = NULL;
    /* checked before any connection is wanted: no coroutine needed */
    CHECK_INT(tern_pg_exec(pg, 5, 0, NULL, &res), -EINVAL);
    CHECK(res != NULL);
    CHECK_STR(tern_pg_sqlstate(res), "22023");
    CHECK(tern_pg_error(res) != NULL);
    CHECK_INT(tern_pg_status(res), -EINVAL);
    CHECK_INT(tern_pg_rows(res), 0);
    CHECK_INT(tern_pg_columns(res), 0);
    CHECK_STR(tern_pg_value(res, 0, 0), "");
    CHECK_INT(tern_pg_is_null(res, 0, 0), 1);
    CHECK_INT(tern_pg_int(res, 0, 0), 0);
    tern_pg_result_free(res);
    CHECK_INT(tern_pg_query(pg, "SELECT $1", 1, NULL, &res), -EINVAL); /* params missing */
    tern_pg_result_free(res);
    tern_pg_op ops[2] = {{.stmt = -1, .sql = "SELECT 1"}, {.stmt = -1, .sql = NULL}};
    CHECK_INT(tern_pg_pipeline(pg, ops, 2, 0), -EINVAL);
    CHECK(ops[0].res && ops[1].res);
    tern_pg_result_free(ops[0].res);
    tern_pg_result_free(ops[1].res);
    CHECK_INT(tern_pg_pipeline(pg, ops, 0, 0), 0);
    tern_pg_result_free(NULL);
    CHECK_INT(tern_pg_free(pg), 0);
}

/* a server that is not there: -ECONNREFUSED, SQLSTATE 08001, libpq's reason */
static void *refused(void *arg) {
    tern_pg_config cfg;
    tern_pg_config_init(&cfg);
    cfg.per_worker = arg != NULL; /* per worker: the multiplexed path */
    tern_pg *pg = tern_pg_new("host=/nonexistent-tern-dir port=1 dbname=x connect_timeout=2", &cfg);
    tern_pg_result *res;
    CHECK_INT(tern_pg_query(pg, "SELECT 1", 0, NULL, &res), -ECONNREFUSED);
    CHECK_STR(tern_pg_sqlstate(res), "08001");
    CHECK(tern_pg_error(res) && strstr(tern_pg_error(res), "cannot connect"));
    tern_pg_result_free(res);
    tern_pool_stats st;
    tern_pg_stats(pg, &st);
    CHECK_INT(st.create_failures, 1);
    CHECK_INT(st.size, 0);
    CHECK_INT(tern_pg_free(pg), 0);
    return NULL;
}

int main(void) {
    test_new();
    test_prepare();
    test_bad_arguments();
    run_main(refused, NULL);
    run_main(refused, "per worker");
    tern_offload_shutdown();
    return check_done();
}
