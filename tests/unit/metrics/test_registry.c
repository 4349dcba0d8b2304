/* Extra-source registry: register and unregister under opaque keys, name
 * checks, global (NULL-key) sources, iteration order and what each key
 * sees, collecting values into a writer. */
#include "check.h"
#include "metrics/registry.c"
#include "metrics/writer.c"

#include <stdlib.h>
#include <string.h>

static void pool_source(void *arg, tern_metrics_writer *w) {
    const double *v = arg;
    tern_metrics_gauge(w, "active", "Connections in use.", v[0]);
    tern_metrics_gauge(w, "idle", "Idle connections.", v[1]);
    tern_metrics_counter(w, "acquired_total", "Acquisitions.", v[2]);
    tern_metrics_gauge(w, "bad-name", "dropped", 1);
    tern_metrics_gauge(w, "9lives", "dropped", 1);
}

static void other_source(void *arg, tern_metrics_writer *w) {
    tern_metrics_gauge(w, "x", "", 1);
}

typedef struct seen {
    char names[8][64];
    void *args[8];
    int n;
} seen;

static void visit(void *ctx, const char *name, tern_metrics_source fn, void *arg) {
    seen *s = ctx;
    if (s->n < 8) {
        snprintf(s->names[s->n], sizeof s->names[0], "%s", name);
        s->args[s->n] = arg;
    }
    s->n++;
}

static void test_register_keys(void) {
    /* keys are opaque: any address will do, nothing is dereferenced */
    static int key_a, key_b;
    static double db[3] = {3, 5, 1234}, cache[3] = {1, 0, 7};
    struct tern_server *a = (struct tern_server *)&key_a, *b = (struct tern_server *)&key_b;
    CHECK_INT(tern__metrics_registry_count(), 0);
    CHECK_INT(tern_metrics_register_source(a, "db", pool_source, db), 0);
    CHECK_INT(tern_metrics_register_source(a, "db", pool_source, db), -EEXIST);
    CHECK_INT(tern_metrics_register_source(NULL, "db", pool_source, db), -EEXIST);
    CHECK_INT(tern_metrics_register_source(b, "db", pool_source, db), 0);
    CHECK_INT(tern_metrics_register_source(NULL, "cache", pool_source, cache), 0);
    CHECK_INT(tern_metrics_register_source(b, "cache", pool_source, cache), -EEXIST);
    CHECK_INT(tern__metrics_registry_add(&key_b, "upstream", other_source, NULL), 0);
    CHECK_INT(tern_metrics_register_source(a, "", pool_source, db), -EINVAL);
    CHECK_INT(tern_metrics_register_source(a, "x\ny", pool_source, db), -EINVAL);
    CHECK_INT(tern_metrics_register_source(a, "x", NULL, db), -EINVAL);
    CHECK_INT(tern_metrics_register_source(a, NULL, pool_source, db), -EINVAL);
    char longname[65];
    memset(longname, 'n', 64);
    longname[64] = 0;
    CHECK_INT(tern_metrics_register_source(a, longname, pool_source, db), -EINVAL);
    longname[63] = 0;
    CHECK_INT(tern_metrics_register_source(a, longname, pool_source, db), 0);
    CHECK_INT(tern_metrics_unregister_source(a, longname), 0);
    CHECK_INT(tern__metrics_registry_count(), 4);

    /* iteration: registration order, the key's own sources and the global ones */
    seen s = {0};
    tern__metrics_registry_each(a, visit, &s);
    CHECK_INT(s.n, 2);
    CHECK_STR(s.names[0], "db");
    CHECK(s.args[0] == db);
    CHECK_STR(s.names[1], "cache");
    memset(&s, 0, sizeof s);
    tern__metrics_registry_each(b, visit, &s);
    CHECK_INT(s.n, 3);
    CHECK_STR(s.names[0], "db");
    CHECK_STR(s.names[1], "cache");
    CHECK_STR(s.names[2], "upstream");
    memset(&s, 0, sizeof s);
    tern__metrics_registry_each(NULL, visit, &s); /* NULL key: global sources only */
    CHECK_INT(s.n, 1);
    CHECK_STR(s.names[0], "cache");
    memset(&s, 0, sizeof s);
    static int key_c;
    tern__metrics_registry_each(&key_c, visit, &s); /* unknown key: global sources */
    CHECK_INT(s.n, 1);

    /* collecting: values grouped by source, invalid names dropped */
    tern_metrics_writer w = {0};
    tern__metrics_registry_collect(a, &w);
    CHECK_INT(w.n, 6); /* db + cache, 3 valid values each */
    CHECK(w.source == NULL);
    CHECK_STR(w.items[0].source, "db");
    CHECK_STR(w.items[0].name, "active");
    CHECK(w.items[0].value == 3);
    CHECK_STR(w.items[2].name, "acquired_total");
    CHECK_INT(w.items[2].counter, 1);
    CHECK_STR(w.items[3].source, "cache");
    CHECK(w.items[5].value == 7);
    tern__metrics_writer_free(&w);
    /* outside a collect (no source running) writes are dropped */
    tern_metrics_gauge(&w, "active", "", 1);
    CHECK_INT(w.n, 0);

    /* unregister: exact key only (a global source is not removed through a key) */
    CHECK_INT(tern_metrics_unregister_source(b, "db"), 0);
    CHECK_INT(tern_metrics_unregister_source(b, "db"), -ENOENT);
    CHECK_INT(tern_metrics_unregister_source(a, "cache"), -ENOENT);
    CHECK_INT(tern_metrics_unregister_source(a, NULL), -ENOENT);
    memset(&w, 0, sizeof w);
    tern__metrics_registry_collect(b, &w);
    CHECK_INT(w.n, 4); /* global "cache" + "upstream" */
    tern__metrics_writer_free(&w);
    CHECK_INT(tern_metrics_unregister_source(NULL, "cache"), 0);
    CHECK_INT(tern_metrics_unregister_source(a, "db"), 0);
    CHECK_INT(tern__metrics_registry_remove(&key_b, "upstream"), 0);
    CHECK_INT(tern__metrics_registry_count(), 0);
    /* the name is free again once removed */
    CHECK_INT(tern_metrics_register_source(NULL, "db", pool_source, db), 0);
    CHECK_INT(tern_metrics_unregister_source(NULL, "db"), 0);
}

int main(void) {
    test_register_keys();
    return check_done();
}
