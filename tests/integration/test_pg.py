"""The demo's PostgreSQL endpoints (tern_pg) against a real, throwaway PostgreSQL:
TechEmpower's /db, /queries, /updates, /fortunes; 100 parallel requests on 2 workers
with a pool of 4; a query timeout that cancels on the server; a backend killed
mid-query (that request gets a clean 5xx JSON error, the next ones succeed); the
endpoints without --pg (503)."""
import html
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402
import pg_server  # noqa: E402

PG = None  # the PgServer, started before the demo
POOL = 4
FORTUNES = [
    (1, "fortune: No such file or directory"),
    (2, "A computer scientist is someone who fixes things that aren't broken."),
    (3, "After enough decimal places, nobody gives a damn."),
    (4, "A bad random number generator: 1, 1, 1, 1, 1, 4.33e+67, 1, 1, 1"),
    (5, "A computer program does what you tell it to do, not what you want it to do."),
    (6, "Emacs is a nice operating system, but I prefer UNIX. \u2014 Tom Christaensen"),
    (7, "Any program that runs right is obsolete."),
    (8, "A list is only as strong as its weakest link. \u2014 Donald Knuth"),
    (9, "Feature: A bug with seniority."),
    (10, "Computers make very fast, very accurate mistakes."),
    (11, '<script>alert("This should not be displayed in a browser alert box.");</script>'),
    (12, "\u30d5\u30ec\u30fc\u30e0\u30ef\u30fc\u30af\u306e\u30d9\u30f3\u30c1\u30de\u30fc\u30af"),
]


def get(srv, path):
    with harness.Conn(srv.port, timeout=30) as c:
        return c.request("GET", path)


def get_json(srv, path, status=200):
    r = get(srv, path)
    check_eq(r.status, status, "GET %s status (body %r)" % (path, r.body[:300]))
    check_eq(r.header("Content-Type"), "application/json", "GET %s Content-Type" % path)
    return json.loads(r.body)


def world_table():
    rows = PG.query("SELECT id, randomnumber FROM world ORDER BY id")
    return {int(a): int(b) for a, b in (l.split("|") for l in rows.split())}


def check_rows(rows, n, what):
    check_eq(len(rows), n, what + ": rows")
    db = world_table()
    for w in rows:
        check_eq(sorted(w), ["id", "randomNumber"], what + ": keys")
        check(1 <= w["id"] <= 10000, "%s: id %r" % (what, w["id"]))
        check_eq(w["randomNumber"], db[w["id"]], "%s: randomNumber of id %d" % (what, w["id"]))


def active_sleeps():
    return PG.query("SELECT pid FROM pg_stat_activity WHERE state = 'active' "
                    "AND query LIKE 'SELECT pg_sleep%'").split()


def test_seeded_schema(srv):
    check_eq(PG.query("SELECT count(*), min(id), max(id) FROM world").strip(), "10000|1|10000",
             "world rows")
    check_eq(PG.query("SELECT count(*) FROM fortune").strip(), "12", "fortune rows")


def test_db(srv):
    for _ in range(5):
        check_rows([get_json(srv, "/db")], 1, "/db")


def test_queries_clamping(srv):
    cases = [("?queries=0", 1), ("?queries=501", 500), ("?queries=abc", 1), ("", 1),
             ("?queries=", 1), ("?queries=-3", 1), ("?queries=20", 20), ("?queries=500", 500),
             ("?queries=99999999999999999999999", 500), ("?queries=7x", 1)]
    for q, n in cases:
        rows = get_json(srv, "/queries" + q)
        check(isinstance(rows, list), "/queries%s: a JSON array" % q)
        check_rows(rows, n, "/queries" + q)


def test_updates_change_the_database(srv):
    before = world_table()
    rows = get_json(srv, "/updates?queries=20")
    check_eq(len(rows), 20, "/updates rows")
    after = world_table()
    ids = [w["id"] for w in rows]
    once = [w for w in rows if ids.count(w["id"]) == 1]
    check(once, "some id updated once")
    for w in once:
        check_eq(after[w["id"]], w["randomNumber"], "id %d in the database" % w["id"])
        check(after[w["id"]] != before[w["id"]], "id %d got a new number" % w["id"])
        check(1 <= w["randomNumber"] <= 10000, "randomNumber in range")
    changed = sum(1 for k in before if before[k] != after[k])
    check(changed <= 20, "only the requested rows changed (%d)" % changed)
    check_eq(len(get_json(srv, "/updates?queries=abc")), 1, "/updates?queries=abc")
    check_eq(len(get_json(srv, "/updates?queries=600")), 500, "/updates?queries=600")


def test_fortunes_exact_html(srv):
    r = get(srv, "/fortunes")
    check_eq(r.status, 200, "/fortunes status")
    check_eq(r.header("Content-Type"), "text/html; charset=utf-8", "/fortunes Content-Type")
    rows = FORTUNES + [(0, "Additional fortune added at request time.")]
    rows.sort(key=lambda f: f[1])
    want = ("<!DOCTYPE html><html><head><title>Fortunes</title></head><body><table>"
            "<tr><th>id</th><th>message</th></tr>" +
            "".join("<tr><td>%d</td><td>%s</td></tr>" % (i, html.escape(m, quote=True).replace(
                "&#x27;", "&#39;")) for i, m in rows) + "</table></body></html>")
    check_eq(r.body.decode("utf-8"), want, "/fortunes body")
    check(b"&lt;script&gt;alert(&quot;" in r.body, "script tag escaped")
    check(r.body.index(b"<td>11</td>") < r.body.index(b"<td>4</td>"), "sorted by message")


def test_concurrency_100_parallel(srv):
    parallel_100(srv, "tern-main")


def test_shared_pool_100_parallel(srv):
    # the other pool layout: one pool of 4 for both workers
    dsn = PG.dsn + " application_name=tern-shared"
    with harness.serving(srv.binary, ["--pg", dsn, "--pg-pool", POOL, "--pg-shared-pool"],
                         workers=2) as shared:
        parallel_100(shared, "tern-shared")


def parallel_100(srv, app):
    paths = ["/db", "/queries?queries=5", "/fortunes", "/updates?queries=3"] * 25
    results = [None] * len(paths)
    start = threading.Barrier(len(paths))

    def one(i):
        try:
            start.wait(10)
            with harness.Conn(srv.port, timeout=30) as c:
                results[i] = c.request("GET", paths[i]).status
        except Exception as e:  # noqa: BLE001 - reported below
            results[i] = repr(e)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(paths))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    bad = [(paths[i], s) for i, s in enumerate(results) if s != 200]
    check(not bad, "non-200 answers: %r" % bad[:10])
    conns = int(PG.query("SELECT count(*) FROM pg_stat_activity WHERE application_name = '%s'"
                         % app).strip())
    check(1 <= conns <= POOL, "server connections %d within the pool's %d" % (conns, POOL))


def test_timeout_cancels_on_server(srv):
    t0 = time.monotonic()
    body = get_json(srv, "/pg/sleep?ms=20000&timeout_ms=300", status=504)
    took = time.monotonic() - t0
    check_eq(body.get("sqlstate"), "57014", "query_canceled SQLSTATE")
    check(took < 5, "answered in %.2fs, not after the 20 s sleep" % took)
    deadline = time.monotonic() + 3
    while active_sleeps() and time.monotonic() < deadline:
        time.sleep(0.05)
    check_eq(active_sleeps(), [], "pg_sleep still running on the server")
    check_rows([get_json(srv, "/db")], 1, "/db after a timeout")


def test_timeouts_are_per_request(srv):
    # one worker, one connection: a 1.5 s sleep (10 s timeout) and, 50 ms
    # later, 1 s sleeps with a 100 ms timeout, while the connection is still
    # being made, so they go out in one round; the short timeouts must cancel
    # only their own statements, never the long one (1 s: longer than a
    # cancel takes to land, so it cannot land on the next statement)
    with harness.serving(srv.binary, ["--pg", PG.dsn, "--pg-pool", "1"], workers=1) as one:
        out = {}

        def req(name, path):
            with harness.Conn(one.port, timeout=30) as c:
                out[name] = c.request("GET", path)

        threads = [threading.Thread(target=req, args=("slow", "/pg/sleep?ms=1500&timeout_ms=10000"))]
        threads += [threading.Thread(target=req, args=(i, "/pg/sleep?ms=1000&timeout_ms=100"))
                    for i in range(4)]
        threads[0].start()
        time.sleep(0.05)
        for t in threads[1:]:
            t.start()
        for t in threads:
            t.join(30)
        check_eq(out["slow"].status, 200, "the long sleep (%r)" % out["slow"].body[:200])
        check(all(out[i].status == 504 for i in range(4)),
              "short ones: %r" % [(out[i].status, out[i].body[:80]) for i in range(4)])
        check_rows([get_json(one, "/db")], 1, "/db afterwards")


def test_backend_killed_mid_query(srv):
    out = {}

    def slow():
        try:
            with harness.Conn(srv.port, timeout=30) as c:
                out["r"] = c.request("GET", "/pg/sleep?ms=10000")
        except Exception as e:  # noqa: BLE001
            out["e"] = e

    t = threading.Thread(target=slow)
    t.start()
    deadline = time.monotonic() + 5
    pids = []
    while not pids and time.monotonic() < deadline:
        pids = active_sleeps()
        time.sleep(0.02)
    check(len(pids) == 1, "the sleeping backend seen in pg_stat_activity: %r" % pids)
    PG.query("SELECT pg_terminate_backend(%s)" % pids[0])
    t.join(20)
    check("r" in out, "the killed request got an answer: %r" % out.get("e"))
    r = out["r"]
    check(500 <= r.status < 600, "5xx, got %d" % r.status)
    check_eq(r.header("Content-Type"), "application/json", "error Content-Type")
    body = json.loads(r.body)
    check_eq(body.get("sqlstate"), "57P01", "admin_shutdown SQLSTATE (%r)" % body)
    for _ in range(20):
        check_rows([get_json(srv, "/db")], 1, "/db after the kill")


def test_client_gone_cancels_on_server(srv):
    # the client hangs up while its query runs: the request is cancelled and
    # so is its query, on the server
    discards = get_json(srv, "/stats")["pools"]["pg"]["discards_total"]
    c = harness.Conn(srv.port, timeout=30)
    c.send(b"GET /pg/sleep?ms=20000 HTTP/1.1\r\nHost: x\r\n\r\n")
    deadline = time.monotonic() + 5
    while not active_sleeps() and time.monotonic() < deadline:
        time.sleep(0.02)
    check(active_sleeps(), "the query started")
    c.close()
    deadline = time.monotonic() + 5
    while active_sleeps() and time.monotonic() < deadline:
        time.sleep(0.05)
    check_eq(active_sleeps(), [], "pg_sleep still running after the client left")
    check_rows([get_json(srv, "/db")], 1, "/db afterwards")
    # the connection was drained and kept, not closed
    pool = get_json(srv, "/stats")["pools"]["pg"]
    check_eq(pool["discards_total"], discards, "connections discarded")


def test_idle_connections_killed(srv):
    # every pooled connection's backend is terminated while idle: the pool's
    # validation sees it on acquire and connects again
    for _ in range(8):
        get_json(srv, "/db")
    PG.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
             "WHERE datname = 'hello_world' AND pid <> pg_backend_pid()")
    time.sleep(0.2)
    for _ in range(10):
        check_rows([get_json(srv, "/db")], 1, "/db after idle kills")
    check_rows(get_json(srv, "/queries?queries=50"), 50, "/queries after idle kills")


def test_without_pg_503(srv):
    with harness.serving(srv.binary, workers=1) as plain:
        for path in ("/db", "/queries?queries=2", "/updates", "/fortunes", "/pg/sleep"):
            body = get_json(plain, path, status=503)
            check("--pg" in body.get("error", ""), "%s: message names --pg: %r" % (path, body))


def test_unreachable_database_fails_at_start(srv):
    import subprocess
    bad = os.path.join(PG.dir, "nowhere")
    r = subprocess.run([srv.binary, "--port", "0", "--pg", "host=%s dbname=x" % bad],
                       capture_output=True, timeout=30)
    check_eq(r.returncode, 1, "exit status with an unreachable --pg")
    check(b"--pg: cannot connect" in r.stderr, "message: %r" % r.stderr[-300:])


def main():
    global PG
    why = pg_server.available()
    if why:
        # PostgreSQL is installed by scripts/deps.sh test: without it this
        # file fails rather than passing with nothing checked
        print("FAIL test_pg: %s (scripts/deps.sh test installs postgresql)" % why, flush=True)
        sys.exit(1)
    PG = pg_server.PgServer().start()
    try:
        harness.main(globals(), server_args=["--port", "0", "--workers", "2", "--host", "127.0.0.1",
                                             "--pg", PG.dsn + " application_name=tern-main",
                                             "--pg-pool", str(POOL)])
    finally:
        PG.stop()


if __name__ == "__main__":
    main()
