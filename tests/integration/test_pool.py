"""Resource pools for real: GET /pool (a SQLite query through a per-worker connection pool
on the offload pool) and GET /real (SQLite query + HTTP GET through tern_client + file
read), their measured fields, 200 concurrent /real requests, pool figures in /stats, a
clear 502 when the upstream is down, and the --db / temporary database files."""
import asyncio
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402


def get_json(port, path):
    with harness.Conn(port) as c:
        resp = c.request("GET", path)
    harness.check_common_headers(resp, path)
    check_eq(harness.media_type(resp), "application/json", path + " Content-Type")
    return resp.status, json.loads(resp.body)


def is_uint(v):
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def check_row(row, uid=None):
    check(isinstance(row, dict), "row %r" % row)
    if uid is not None:
        check_eq(row["id"], uid, "row id")
    check(1 <= row["id"] <= 1000, "seeded id %r" % row)
    check_eq(row["name"], "user%d" % row["id"], "name")
    check_eq(row["email"], "user%d@example.com" % row["id"], "email")
    check_eq(row["items"], 5, "items per user")
    want_total = sum((row["id"] * 37 + k * 101) % 10000 for k in range(1, 6))
    check_eq(row["total_cents"], want_total, "SUM(price_cents) from the items table")


def fnv1a(data):
    h = 1469598103934665603
    for b in data:
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return "%016x" % h


def test_pool_query(srv):
    status, d = get_json(srv.port, "/pool?id=42")
    check_eq(status, 200, "/pool status")
    check_row(d["row"], 42)
    for f in ("query_us", "acquire_us", "offload_us", "total_us"):
        check(is_uint(d[f]), "%s = %r" % (f, d.get(f)))
    # the query ran inside the offload round trip, which ran inside the request
    check(d["offload_us"] >= d["query_us"], "offload_us %d < query_us %d"
          % (d["offload_us"], d["query_us"]))
    check(d["total_us"] >= d["offload_us"] + d["acquire_us"] - 1, "total_us %r" % d)
    check(d["total_us"] > 0, "total_us measured")
    p = d["pool"]
    check_eq(p["max_size"], 4, "per-worker max_size")
    check(1 <= p["size"] <= p["max_size"], "pool size %r" % p)
    check_eq(p["in_use"], 0, "in_use after release")
    check(p["acquired"] >= 1 and p["created"] >= 1, "pool counters %r" % p)
    # random ids, unknown ids and bad ids
    status, d = get_json(srv.port, "/pool")
    check_eq(status, 200, "/pool random status")
    check_row(d["row"])
    check_eq(d["id"], d["row"]["id"], "random id echoed")
    status, d = get_json(srv.port, "/pool?id=1001")
    check_eq((status, d["row"]), (404, None), "unknown user")
    status, d = get_json(srv.port, "/pool?id=abc")
    check_eq(status, 400, "bad id")


def test_real_steps(srv):
    for mode in ("sequential", "parallel"):
        path = "/real" if mode == "sequential" else "/real?parallel=1"
        status, d = get_json(srv.port, path)
        check_eq(status, 200, path + " status")
        check_eq(d["mode"], mode, "mode")
        check_row(d["db"]["row"])
        api, f, db = d["api"], d["file"], d["db"]
        check_eq(api["status"], 200, "upstream status")
        check_eq(api["bytes"], 13, "upstream body = our /plaintext")
        check_eq(api["url"], "http://127.0.0.1:%d/plaintext" % srv.port, "default upstream")
        check_eq(f["bytes"], 16384, "file bytes")
        with open(f["path"], "rb") as fh:
            check_eq(f["fnv1a"], fnv1a(fh.read()), "file checksum: it was really read")
        for step in (db, api, f):
            check(is_uint(step["us"]) and step["us"] > 0, "step time %r" % step)
        steps = db["us"] + api["us"] + f["us"]
        if mode == "sequential":
            check(d["total_us"] >= steps, "sequential total %d < sum %d" % (d["total_us"], steps))
        else:
            check(d["total_us"] >= max(db["us"], api["us"], f["us"]), "parallel total")
    # kept-alive upstream connections are reused
    reused = [get_json(srv.port, "/real")[1]["api"]["reused"] for _ in range(6)]
    check(any(reused), "upstream connection reused: %r" % reused)


async def real_burst(port, n):
    async def one():
        r, w = await asyncio.open_connection("127.0.0.1", port)
        try:
            w.write(b"GET /real HTTP/1.1\r\nHost: x\r\n\r\n")
            head = await r.readuntil(b"\r\n\r\n")
            resp = harness.parse_head(head)
            resp.body = await r.readexactly(int(resp.header("Content-Length")))
            return resp
        finally:
            w.close()
    return await asyncio.gather(*(one() for _ in range(n)), return_exceptions=True)


def test_200_concurrent_real(srv):
    _, before = get_json(srv.port, "/stats")
    t0 = time.monotonic()
    results = asyncio.run(asyncio.wait_for(real_burst(srv.port, 200), 60))
    elapsed = time.monotonic() - t0
    errors = [e for e in results if isinstance(e, BaseException)]
    check(not errors, "%d failed; first %r" % (len(errors), errors[0] if errors else None))
    bad = [r for r in results if r.status != 200]
    check(not bad, "%d non-200; first %r" % (len(bad), bad[0] if bad else None))
    totals = []
    for r in results:
        d = json.loads(r.body)
        check_eq((d["api"]["status"], d["file"]["bytes"]), (200, 16384), "steps")
        check_row(d["db"]["row"])
        totals.append(d["total_us"])
    totals.sort()
    print("    200 x /real in %.3f s; total_us p50 %d max %d"
          % (elapsed, totals[100], totals[-1]))
    _, after = get_json(srv.port, "/stats")
    sq, up = after["pools"]["sqlite"], after["pools"]["upstream"]
    check(sq["acquired_total"] - before["pools"]["sqlite"]["acquired_total"] >= 200,
          "sqlite acquires counted: %r" % sq)
    check(up["requests_total"] - before["pools"]["upstream"]["requests_total"] >= 200,
          "upstream requests counted: %r" % up)
    check(sq["size"] <= sq["max_size"], "sqlite pool within max: %r" % sq)
    check(up["size"] <= up["max_size"], "upstream pool within max: %r" % up)
    check_eq(sq["in_use"], 0, "no connection leaked")
    check_eq(up["in_use"], 0, "no upstream connection leaked")
    check_eq(up["errors_total"], 0, "upstream errors")
    # 200 queries at once over 4 connections per worker: most of them waited
    check(sq["waited_total"] > before["pools"]["sqlite"]["waited_total"], "queued acquires")


def test_metrics_show_pools(srv):
    with harness.Conn(srv.port) as c:
        resp = c.request("GET", "/metrics")
    text = resp.body.decode()
    for line in ('tern_pool_size{pool="sqlite"}', 'tern_pool_acquired_total{pool="upstream"}',
                 'tern_pool_wait_seconds_total{pool="sqlite"}'):
        check(line in text, "%s in /metrics" % line)


def closed_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_upstream_down_is_502(srv):
    url = "http://127.0.0.1:%d/x" % closed_port()
    other = harness.Server(srv.binary, ["--port", "0", "--workers", "2", "--host", "127.0.0.1",
                                        "--upstream", url])
    try:
        other.start()
        db = "/tmp/tern-demo-%d.db" % other.proc.pid
        check(os.path.exists(db), "default database %s exists while running" % db)
        for path in ("/real", "/real?parallel=1"):
            with harness.Conn(other.port) as c:
                resp = c.request("GET", path)
            check_eq(resp.status, 502, path + " with the upstream down")
            check_eq(harness.media_type(resp), "application/json", "502 Content-Type")
            d = json.loads(resp.body)
            check_eq(d["error"], "upstream request failed", "error")
            check_eq(d["step"], "api", "failed step")
            check_eq(d["url"], url, "url")
            check_eq(d["detail"], "Connection refused", "detail")
            check_eq(d["errno"], 111, "errno")
            check(is_uint(d["api_us"]) and is_uint(d["total_us"]), "times %r" % d)
        # the rest of the server is unaffected
        status, d = get_json(other.port, "/pool?id=7")
        check_eq(status, 200, "/pool still works")
        check_eq(other.stop(), 0, "exit status")
        check(other.sanitizer_report() is None, "sanitizer: %s" % other.sanitizer_report())
        check(not os.path.exists(db), "temporary database removed at exit")
    finally:
        other.cleanup()


def test_db_flag_keeps_file(srv):
    with tempfile.TemporaryDirectory() as tmp:
        db = os.path.join(tmp, "demo.db")
        for run in range(2):  # the second run reuses the seeded file
            other = harness.Server(srv.binary, ["--port", "0", "--workers", "1", "--host",
                                                "127.0.0.1", "--db", db])
            try:
                other.start()
                status, d = get_json(other.port, "/pool?id=1000")
                check_eq(status, 200, "run %d /pool" % run)
                check_row(d["row"], 1000)
                status, d = get_json(other.port, "/pool?id=1001")
                check_eq(status, 404, "run %d: seeded once, not twice" % run)
                check_eq(other.stop(), 0, "exit status")
                check(other.sanitizer_report() is None, "sanitizer")
            finally:
                other.cleanup()
            check(os.path.exists(db), "--db file kept after exit")
    bad = harness.Server(srv.binary, ["--port", "0", "--upstream", "ftp://example.com"])
    try:
        # start() raises TestFailure when the server exits before its
        # "listening on" line (what we want) but also when it hangs or prints
        # something else (then it kills it): so the test is on the outcome,
        # not on the exception
        listened = False
        try:
            bad.start(timeout=10)
            listened = True
        except harness.TestFailure:
            pass
        check(not listened, "a bad --upstream must stop the start; got %r" % bad.listen_line)
        code = bad.proc.wait(10)
        check(code > 0, "a bad --upstream: exit status %s, want a failure exit (not a signal)"
              % code)
        check("bad --upstream" in bad.stderr_text(), "message: %r" % bad.stderr_text())
        check(bad.sanitizer_report() is None, "sanitizer")
    finally:
        bad.cleanup()


if __name__ == "__main__":
    harness.main(globals())
