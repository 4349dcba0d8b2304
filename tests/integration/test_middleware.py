"""Middleware, hooks and the access log, over real sockets.

The chain's order, short-circuits, "after" code, the error hook and the
connection hooks run on tern-test-mw-server (tests/integration/mw_server.c,
built next to tern-demo); the ready-made middleware (request ID, CORS, rate
limit) on the demo's /api/ group; the access log on the demo with
--access-log (combined and JSON lines, and a logrotate-style mv + SIGHUP).

    python3 tests/integration/test_middleware.py --binary build/tern-demo
"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

MW_SERVER = None  # set in main


def mw_binary(binary):
    return os.path.join(os.path.dirname(os.path.abspath(binary)), "tern-test-mw-server")


def get(port, path, headers=None, method="GET"):
    with harness.Conn(port) as c:
        return c.request(method, path, headers=headers or {})


# ---- the chain (tern-test-mw-server) ------------------------------------------------

def test_order_global_then_groups(srv):
    with harness.serving(mw_binary(srv.binary)) as s:
        r = get(s.port, "/plain")
        check_eq(r.status, 200, "/plain status")
        check_eq(r.header_all("X-Trace"), ["g1-before", "g2-before", "handler", "g2-after", "g1-after"],
                 "global middleware order around the handler")
        r = get(s.port, "/grp/x")
        check_eq(r.header_all("X-Trace"),
                 ["g1-before", "g2-before", "p1-before", "handler", "p1-after", "g2-after", "g1-after"],
                 "a group's middleware runs inside the global ones (registered first, still inner)")
        r = get(s.port, "/grp/deep/x")
        check_eq(r.header_all("X-Trace"),
                 ["g1-before", "g2-before", "p1-before", "p2-before", "handler", "p2-after", "p1-after",
                  "g2-after", "g1-after"], "nested groups in registration order")
        r = get(s.port, "/grp")
        check_eq(r.status, 404, "/grp (no route)")
        # (the 404 page starts from clean headers: only the after halves show)
        check("p1-after" in r.header_all("X-Trace"), "the group '/grp/' holds the path '/grp' too: %r" % r)
        r = get(s.port, "/grpx")
        check("p1-after" not in r.header_all("X-Trace") and "g1-after" in r.header_all("X-Trace"),
              "'/grpx' is not in the group '/grp/': %r" % r)
        check_eq(r.status, 404, "/grpx: routing (404) runs inside the chain")


def test_short_circuit_before(srv):
    with harness.serving(mw_binary(srv.binary)) as s:
        r = get(s.port, "/grp/x", {"X-Block": "1"})
        check_eq(r.status, 401, "the gate answered")
        check_eq(r.body, b"blocked by middleware\n", "the gate's body")
        # the gate's own answer replaced the headers set before it (tern_resp_text
        # keeps headers; the trace shows the handler and the group never ran)
        trace = r.header_all("X-Trace")
        check("handler" not in trace and "p1-before" not in trace, "chain stopped at the gate: %r" % trace)
        check_eq(trace[-2:], ["g2-after", "g1-after"], "outer middleware still ran their after code")


def test_after_changes_status_headers_body(srv):
    with harness.serving(mw_binary(srv.binary)) as s:
        r = get(s.port, "/after/x")
        check_eq(r.status, 201, "status changed after the handler")
        check_eq(r.body, b"hello+after", "body appended after the handler")
        check_eq(r.header("X-After"), "1", "header added after the handler")
        check_eq(r.header("Content-Length"), str(len(r.body)), "Content-Length follows the new body")


def test_error_hook_on_failure_and_timeout(srv):
    with harness.serving(mw_binary(srv.binary)) as s:
        r = get(s.port, "/grp/fail")
        check_eq(r.status, 502, "tern_resp_error status")
        check_eq(r.header("X-Error-Hook"), "1", "error hook ran for tern_resp_error")
        check_eq(json.loads(r.body), {"error": 502, "detail": "upstream broke"}, "hook's body")
        check("p1-after" in r.header_all("X-Trace") or r.header_all("X-Trace") == [],
              "after code runs after the hook")
        t0 = time.monotonic()
        r = get(s.port, "/grp/slow")
        took = time.monotonic() - t0
        check_eq(r.status, 503, "route deadline status")
        check_eq(r.header("X-Error-Hook"), "1", "error hook ran for the deadline")
        check_eq(json.loads(r.body), {"error": 503, "detail": "handler deadline exceeded"}, "hook's body")
        check(took < 8.0, "deadline of 300 ms answered in %.1f s (handler sleeps 10 s)" % took)
        r = get(s.port, "/plain")
        check(r.header("X-Error-Hook") is None, "no hook for a request that did not fail")


def test_connection_hooks(srv):
    with harness.serving(mw_binary(srv.binary)) as s:
        before = json.loads(get(s.port, "/conns").body)
        for _ in range(5):
            get(s.port, "/plain")
        deadline = time.monotonic() + 10
        while True:
            now = json.loads(get(s.port, "/conns").body)
            # every get() is a connection of its own, opened and closed
            if now["opened"] >= before["opened"] + 6 and now["closed"] >= before["closed"] + 6:
                break
            check(time.monotonic() < deadline, "open/close hooks counted %r after %r" % (now, before))
            time.sleep(0.05)


def test_values_from_middleware_to_handler(srv):
    with harness.serving(mw_binary(srv.binary)) as s:
        check_eq(get(s.port, "/me", {"X-Token": "42"}).body, b"user-42", "value set by the middleware")
        check_eq(get(s.port, "/me").body, b"anonymous", "no value: NULL")


def test_streamed_answer_through_middleware(srv):
    with harness.serving(mw_binary(srv.binary)) as s:
        r = get(s.port, "/grp/stream")
        check_eq(r.status, 200, "streamed status")
        check_eq(r.body, b"part\n" * 3, "streamed body intact")
        # the head left with the first piece: what the middleware set before
        # the handler is in it, what it set after is not
        check_eq(r.header_all("X-Trace"), ["g1-before", "g2-before", "p1-before"], "streamed head")


def test_cors_origin_list_and_vary(srv):
    with harness.serving(mw_binary(srv.binary)) as s:
        pre = {"Origin": "https://a.example", "Access-Control-Request-Method": "PUT",
               "Access-Control-Request-Headers": "x-token"}
        r = get(s.port, "/cors/x", pre, method="OPTIONS")
        check_eq(r.status, 204, "allowed preflight")
        check_eq(r.header("Access-Control-Allow-Origin"), "https://a.example", "the origin echoed, never *")
        check_eq(r.header("Access-Control-Allow-Credentials"), "true", "credentials")
        check_eq(r.header("Access-Control-Allow-Methods"), "GET, PUT", "methods")
        check_eq(r.header("Access-Control-Allow-Headers"), "Content-Type, X-Token", "configured headers")
        check_eq(r.header("Access-Control-Max-Age"), "120", "max-age")
        check(r.has_token("Vary", "Origin"), "Vary: Origin on the preflight: %r" % r)
        r = get(s.port, "/cors/x", dict(pre, Origin="https://evil.example"), method="OPTIONS")
        check_eq(r.status, 403, "preflight from another origin")
        check(r.header("Access-Control-Allow-Origin") is None, "no allow headers for it")
        r = get(s.port, "/cors/x", dict(pre, **{"Access-Control-Request-Method": "DELETE"}), method="OPTIONS")
        check_eq(r.status, 403, "preflight for a method not allowed")
        r = get(s.port, "/cors/x", {"Origin": "https://b.example:8443"})
        check_eq((r.status, r.header("Access-Control-Allow-Origin")), (200, "https://b.example:8443"), "actual")
        check(r.has_token("Vary", "Origin"), "Vary: Origin on the actual answer")
        r = get(s.port, "/cors/x", {"Origin": "https://evil.example"})
        check_eq(r.status, 200, "a disallowed origin's request is still served (the browser hides it)")
        check(r.header("Access-Control-Allow-Origin") is None and r.has_token("Vary", "Origin"),
              "no allow-origin, but Vary: Origin (a cache must not serve it to a.example): %r" % r)
        r = get(s.port, "/cors/x")
        check(r.has_token("Vary", "Origin"), "Vary: Origin without an Origin too: %r" % r)


def test_rate_limit_keyed_by_header(srv):
    with harness.serving(mw_binary(srv.binary)) as s:
        got = [get(s.port, "/rl/x", {"X-Client": "alice"}).status for _ in range(3)]
        check_eq(got, [200, 200, 429], "alice: a burst of 2, then one per 20 s")
        check_eq(get(s.port, "/rl/x", {"X-Client": "bob"}).status, 200, "bob has a bucket of his own")
        r = get(s.port, "/rl/x", {"X-Client": "alice"})
        check(r.status == 429 and r.header("Retry-After") in [str(i) for i in range(1, 21)],
              "429 with Retry-After: the seconds to the next token (1-20): %r" % r)


# ---- ready-made middleware on the demo's /api/ group ----------------------------------

def test_request_id_kept_or_minted(srv):
    # its own server: 130 requests in a moment are past the default --api-rate
    with harness.serving(srv.binary, ["--api-rate", 1000000]) as s:
        request_id_checks(s)


def request_id_checks(srv):
    r = get(srv.port, "/api/echo", {"X-Request-ID": "client-id.42:x"})
    check_eq(r.header("X-Request-ID"), "client-id.42:x", "a valid incoming ID is kept and echoed")
    check_eq(json.loads(r.body)["request_id"], "client-id.42:x", "and handed to the handler")
    for bad in ["has space", "x" * 129, "semi;colon"]:
        r = get(srv.port, "/api/echo", {"X-Request-ID": bad})
        rid = r.header("X-Request-ID")
        check(rid and rid != bad and re.fullmatch(r"[0-9a-f]{24}", rid),
              "an invalid incoming ID %r is replaced by a minted one, got %r" % (bad[:20], rid))
    ids = set()
    for _ in range(16):  # separate connections: SO_REUSEPORT spreads them over both workers
        with harness.Conn(srv.port) as c:
            for _ in range(8):
                r = c.request("GET", "/api/echo")
                rid = r.header("X-Request-ID")
                check_eq(json.loads(r.body)["request_id"], rid, "the handler sees the echoed ID")
                ids.add(rid)
    check_eq(len(ids), 128, "minted IDs are unique")
    workers = {i[8:12] for i in ids}
    check(len(workers) >= 1, "worker field present: %r" % workers)
    r = get(srv.port, "/plaintext")
    check(r.header("X-Request-ID") is None, "outside /api/ no middleware runs")


def test_cors_preflight_with_curl(srv):
    curl = shutil.which("curl")
    if not curl:
        print("    (curl not installed: preflight sent by hand)")
        r = get(srv.port, "/api/echo", {"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                                        "Access-Control-Request-Headers": "content-type, x-custom"},
                method="OPTIONS")
        heads = {k.lower(): v for k, v in r.headers}
        status = r.status
    else:
        out = subprocess.run([curl, "-s", "-i", "-X", "OPTIONS", "http://127.0.0.1:%d/api/echo" % srv.port,
                              "-H", "Origin: https://app.example", "-H", "Access-Control-Request-Method: POST",
                              "-H", "Access-Control-Request-Headers: content-type, x-custom"],
                             capture_output=True, timeout=20).stdout.decode()
        head = out.split("\r\n\r\n")[0].split("\r\n")
        status = int(head[0].split()[1])
        heads = {}
        for line in head[1:]:
            k, _, v = line.partition(":")
            heads.setdefault(k.strip().lower(), v.strip())
    check_eq(status, 204, "preflight answered by the middleware")
    check_eq(heads.get("access-control-allow-origin"), "*", "any origin")
    check("POST" in heads.get("access-control-allow-methods", ""), "methods: %r" % heads)
    check_eq(heads.get("access-control-allow-headers"), "content-type, x-custom", "requested headers echoed")
    check_eq(heads.get("access-control-max-age"), "600", "preflight cache")
    # a real cross-origin request: the allow header and the exposed request ID
    r = get(srv.port, "/api/echo", {"Origin": "https://app.example"})
    check_eq(r.status, 200, "actual request")
    check_eq(r.header("Access-Control-Allow-Origin"), "*", "actual request's allow-origin")
    check_eq(r.header("Access-Control-Expose-Headers"), "X-Request-ID", "request ID readable by scripts")
    check_eq(r.header("X-Content-Type-Options"), "nosniff", "security headers on the group")
    check(r.header("Strict-Transport-Security") is None, "no HSTS over plain HTTP")
    # an OPTIONS without Access-Control-Request-Method is not a preflight
    r = get(srv.port, "/api/echo", {"Origin": "https://app.example"}, method="OPTIONS")
    check_eq(r.status, 204, "plain OPTIONS answered by routing (Allow)")
    check("GET" in (r.header("Allow") or ""), "routing's Allow: %r" % r)


def test_rate_limit_429_across_two_workers(srv):
    rate = 5
    with harness.serving(srv.binary, ["--api-rate", rate]) as s:
        statuses, retry = [], []
        t0 = time.monotonic()
        for _ in range(40):  # new connections: spread over both workers, one bucket for the peer
            r = get(s.port, "/api/echo")
            statuses.append(r.status)
            if r.status == 429:
                retry.append(r.header("Retry-After"))
                check(r.header("X-Request-ID"), "a 429 still carries the request ID")
        elapsed = time.monotonic() - t0
        ok = statuses.count(200)
        allowed = rate + rate * elapsed + 1  # the burst, the refill meanwhile, rounding
        check(statuses.count(429) > 0, "no 429 in 40 quick requests at %d/s: %r" % (rate, statuses))
        check(ok <= allowed, "%d answered in %.2f s, at most %.1f allowed: the bucket is shared by "
              "the workers" % (ok, elapsed, allowed))
        check(all(v and v.isdigit() and int(v) >= 1 for v in retry), "Retry-After seconds: %r" % retry)
        time.sleep(int(retry[-1]) + 0.2)
        check_eq(get(s.port, "/api/echo").status, 200, "after Retry-After the client is served again")
        check_eq(get(s.port, "/plaintext").status, 200, "outside /api/ no limit")


def test_hsts_only_over_tls(srv):
    curl, openssl = shutil.which("curl"), shutil.which("openssl")
    if not curl or not openssl:
        print("    (curl or openssl missing: skipped)")
        return
    d = tempfile.mkdtemp(prefix="tern-mw-tls-")
    try:
        key, pem, log = os.path.join(d, "k.pem"), os.path.join(d, "c.pem"), os.path.join(d, "a.log")
        r = subprocess.run([openssl, "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                            "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-keyout", key, "-out", pem], capture_output=True, timeout=60)
        check(r.returncode == 0, "openssl: %r" % r.stderr[-300:])
        with harness.serving(srv.binary, ["--tls-cert", pem, "--tls-key", key, "--access-log", log]) as s:
            out = subprocess.run([curl, "-sik", "https://127.0.0.1:%d/api/echo" % s.port],
                                 capture_output=True, timeout=20).stdout.decode()
            check("\r\nStrict-Transport-Security: max-age=31536000\r\n" in out, "HSTS over TLS: %r" % out[:600])
            lines = wait_lines(log, 1)
            check(len(lines) == 1 and COMBINED.match(lines[0]) and lines[0].startswith("127.0.0.1 "),
                  "a TLS request's log line: %r" % lines)
    finally:
        shutil.rmtree(d, ignore_errors=True)


# ---- access log ---------------------------------------------------------------------------

COMBINED = re.compile(
    r'^(?P<peer>\S+) - - \[(?P<time>\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000)\] '
    r'"(?P<method>\S+) (?P<target>\S+) (?P<proto>HTTP/1\.[01])" (?P<status>\d{3}) (?P<bytes>\d+|-) '
    r'"(?P<referer>[^"\\]*(?:\\x[0-9a-f]{2}[^"\\]*)*)" "(?P<ua>[^"\\]*(?:\\x[0-9a-f]{2}[^"\\]*)*)" '
    r'rid=(?P<rid>\S+) us=(?P<us>\d+) up=(?P<up>\S+)$')


def wait_lines(path, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            with open(path, "rb") as f:
                lines = f.read().decode("utf-8").splitlines()
        except FileNotFoundError:
            lines = []
        if len(lines) >= n or time.monotonic() > deadline:
            return lines
        time.sleep(0.05)


def test_access_log_combined(srv):
    d = tempfile.mkdtemp(prefix="tern-alog-")
    path = os.path.join(d, "access.log")
    try:
        with harness.serving(srv.binary, ["--access-log", path]) as s:
            get(s.port, "/plaintext", {"User-Agent": 'evil "agent"\\', "Referer": "http://r.example/"})
            get(s.port, "/api/echo", {"X-Request-ID": "rid-1"})
            get(s.port, "/nope")
            with harness.Conn(s.port) as c:
                c.request("HEAD", "/plaintext")
            with harness.Conn(s.port) as c:  # refused before routing: still one line
                c.send(b"GET /a b c HTTP/1.1\r\n\r\n")
                check_eq(c.read_response().status, 400, "malformed request line")
            lines = wait_lines(path, 5)
            check_eq(len(lines), 5, "one line per request: %r" % lines)
            m = [COMBINED.match(l) for l in lines]
            check(all(m), "every line parses as combined + rid/us/up: %r" % lines)
            byt = {x["target"] + x["method"]: x for x in m}
            p = byt["/plaintextGET"]
            check_eq((p["status"], p["bytes"], p["referer"], p["rid"], p["up"]), ("200", "13", "http://r.example/", "-", "-"),
                     "plaintext line")
            check_eq(p["ua"], 'evil \\x22agent\\x22\\x5c', "quotes and backslashes escaped")
            check_eq(p["peer"], "127.0.0.1", "peer address")
            check_eq(byt["/api/echoGET"]["rid"], "rid-1", "request ID in the log")
            check_eq(byt["/nopeGET"]["status"], "404", "404 logged")
            check_eq(byt["/plaintextHEAD"]["bytes"], "-", "HEAD sends no body")
            check_eq((byt["--"]["status"], byt["--"]["proto"]), ("400", "HTTP/1.1"),
                     "a refused request: no method or target to show")
            check(all(int(x["us"]) < 10_000_000 for x in m), "durations in µs")
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_access_log_json(srv):
    d = tempfile.mkdtemp(prefix="tern-alog-")
    path = os.path.join(d, "access.json")
    try:
        with harness.serving(srv.binary, ["--access-log", path, "--access-log-format", "json"]) as s:
            get(s.port, "/api/echo", {"User-Agent": "caf\xe9 \"q\"", "X-Request-ID": "j-1"})
            with harness.Conn(s.port) as c:
                c.request("POST", "/echo", body=b"x" * 100)
            lines = wait_lines(path, 2)
            check_eq(len(lines), 2, "two lines: %r" % lines)
            recs = [json.loads(l) for l in lines]
            api = [r for r in recs if r["target"] == "/api/echo"][0]
            check_eq((api["method"], api["status"], api["request_id"], api["proto"], api["upstream_us"]),
                     ("GET", 200, "j-1", "HTTP/1.1", None), "api record")
            check_eq(api["user_agent"], "caf\xe9 \"q\"", "escaped user agent round-trips (Latin-1)")
            check(re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", api["time"]), "ISO time %r" % api["time"])
            echo = [r for r in recs if r["target"] == "/echo"][0]
            check_eq((echo["status"], echo["bytes"]), (200, 100), "echo record")
            check(isinstance(echo["duration_us"], int) and echo["referer"] is None, "types: %r" % echo)
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_access_log_reopen_on_sighup(srv):
    d = tempfile.mkdtemp(prefix="tern-alog-")
    path = os.path.join(d, "access.log")
    try:
        with harness.serving(srv.binary, ["--access-log", path]) as s:
            get(s.port, "/plaintext?first")
            check_eq(len(wait_lines(path, 1)), 1, "first line written")
            os.rename(path, path + ".1")  # logrotate's move
            get(s.port, "/plaintext?second")  # still goes to the moved file
            check_eq(len(wait_lines(path + ".1", 2)), 2, "writes follow the moved file until SIGHUP")
            s.proc.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 10
            while not os.path.exists(path):
                check(time.monotonic() < deadline, "SIGHUP did not reopen %s" % path)
                time.sleep(0.05)
            get(s.port, "/plaintext?third")
            new = wait_lines(path, 1)
            check(len(new) == 1 and "?third" in new[0], "after SIGHUP lines go to the new file: %r" % new)
            old = wait_lines(path + ".1", 2)
            check(all("?third" not in l for l in old), "the old file gets no new lines")
            check(s.alive(), "SIGHUP does not stop a server with an access log")
    finally:
        shutil.rmtree(d, ignore_errors=True)


if __name__ == "__main__":
    harness.main(globals())
