"""GET /stats and GET /metrics on the real demo: counters move by exactly what the test
sent, throughput matches a second the test filled, Prometheus text passes `promtool check
metrics` (Debian package `prometheus`) and our own parser, and memory_rss_bytes agrees with
the kernel's VmRSS for the server's pid.

Counting rule checked here: total_requests counts every response queued, and a /stats
response is counted when it is queued, i.e. after its own figures were taken. So between
two /stats reads with N other requests in between, total_requests moves by N + 1."""
import json
import math
import os
import re
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, check, check_eq  # noqa: E402

HELLO = b"Hello, World!"

STATS_FIELDS = [
    "total_requests", "active_connections", "in_flight", "memory_rss_bytes",
    "cpu_usage_percent", "average_response_time_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms",
    "throughput_rps", "throughput_rps_10s", "loop_lag_p99_ms", "status_1xx", "status_2xx",
    "status_3xx", "status_4xx", "status_5xx", "shed_503", "rejected", "timeouts",
    "connections_opened", "uptime_seconds", "client_closed", "latency_10s", "latency_60s",
    "workers", "pools"]
WINDOW_FIELDS = ["count", "average_ms", "p50_ms", "p90_ms", "p99_ms", "p999_ms", "max_ms"]


def get_stats(conn):
    r = conn.request("GET", "/stats")
    check_eq(r.status, 200, "/stats status")
    check_eq(harness.media_type(r), "application/json", "/stats Content-Type")
    try:
        st = json.loads(r.body)
    except ValueError as e:
        raise harness.TestFailure("/stats is not JSON (%s): %r" % (e, r.body[:300]))
    for f in STATS_FIELDS:
        check(f in st, "/stats has no %r: %r" % (f, st))
    return st


def wait_for(what, fn, timeout=5.0):
    """Polls fn() until it returns a true value; the server notices closes asynchronously."""
    deadline = time.monotonic() + timeout
    while True:
        v = fn()
        if v or time.monotonic() > deadline:
            check(v, "timed out waiting for %s" % what)
            return v
        time.sleep(0.02)


# ---------------------------------------------------------------------------- /stats

def test_stats_shape(srv):
    with Conn(srv.port) as c:
        st = get_stats(c)
    for f in STATS_FIELDS:
        if f not in ("workers", "pools", "latency_10s", "latency_60s"):
            check(isinstance(st[f], (int, float)) and not isinstance(st[f], bool)
                  and st[f] >= 0, "%s = %r" % (f, st[f]))
    check_eq(len(st["workers"]), 2, "workers array length (--workers 2)")
    check_eq(sorted(w["id"] for w in st["workers"]), [0, 1], "worker ids")
    for w in st["workers"]:
        for k in ("requests", "active_connections", "in_flight"):
            check(isinstance(w.get(k), int) and w[k] >= 0, "worker %r" % w)
    check(isinstance(st["pools"], dict), "pools is an object: %r" % st["pools"])
    check_eq(sum(w["requests"] for w in st["workers"]), st["total_requests"],
             "per-worker requests sum to total_requests")
    # the reading handler itself is inside a handler
    check(st["in_flight"] >= 1, "in_flight %r excludes the /stats request" % st["in_flight"])
    check(st["p50_ms"] <= st["p90_ms"] <= st["p99_ms"] <= st["p999_ms"],
          "percentiles out of order: %r" % st)
    for key in ("latency_10s", "latency_60s"):
        check_window(st, key)


def check_window(st, key):
    """A recent window: count, then numbers (null only while the window is empty)."""
    w = st[key]
    check(isinstance(w, dict) and sorted(w) == sorted(WINDOW_FIELDS), "%s = %r" % (key, w))
    check(isinstance(w["count"], int) and w["count"] >= 0, "%s count %r" % (key, w))
    for f in WINDOW_FIELDS[1:]:
        if w["count"] == 0:
            check(w[f] is None, "%s.%s %r with no response in the window" % (key, f, w[f]))
        else:
            check(isinstance(w[f], (int, float)) and w[f] >= 0, "%s.%s = %r" % (key, f, w[f]))
    if w["count"]:
        check(w["p50_ms"] <= w["p90_ms"] <= w["p99_ms"] <= w["p999_ms"] <= w["max_ms"],
              "%s percentiles out of order: %r" % (key, w))


def test_total_requests_exact(srv):
    """(a) N=200 /plaintext requests move total_requests by exactly N + 1."""
    n, nconns = 200, 4
    with Conn(srv.port) as stats_conn:
        a = get_stats(stats_conn)
        conns = [Conn(srv.port) for _ in range(nconns)]
        try:
            for i in range(n):
                r = conns[i % nconns].request("GET", "/plaintext")
                check_eq((r.status, r.body), (200, HELLO), "request %d" % i)
            # every connection is open now: 4 + the stats connection
            b = get_stats(stats_conn)
        finally:
            for c in conns:
                c.close()
    check_eq(b["total_requests"] - a["total_requests"], n + 1,
             "total_requests delta (N plaintext + the first /stats)")
    check_eq(b["status_2xx"] - a["status_2xx"], n + 1, "status_2xx delta")
    for k in ("status_1xx", "status_3xx", "status_4xx", "status_5xx", "rejected", "shed_503"):
        check_eq(b[k] - a[k], 0, "%s delta" % k)
    check_eq(b["connections_opened"] - a["connections_opened"], nconns, "connections_opened delta")
    check_eq(sum(w["requests"] for w in b["workers"]), b["total_requests"], "per-worker sum")
    check(b["uptime_seconds"] > a["uptime_seconds"], "uptime did not advance")
    check(b["average_response_time_ms"] > 0 and b["p50_ms"] > 0, "latency not measured: %r" % b)


def test_active_connections_and_in_flight(srv):
    with Conn(srv.port) as stats_conn:
        get_stats(stats_conn)  # make sure earlier tests' connections are gone
        wait_for("earlier connections to close",
                 lambda: get_stats(stats_conn)["active_connections"] == 1)
        extra = [Conn(srv.port) for _ in range(5)]
        try:
            for c in extra:  # a request each, so the server has surely accepted them
                check_eq(c.request("GET", "/plaintext").status, 200, "extra connection")
            st = get_stats(stats_conn)
            check_eq(st["active_connections"], 6, "active_connections with 5 + 1 open")
            check_eq(sum(w["active_connections"] for w in st["workers"]), 6, "per-worker active")
            check_eq(st["in_flight"], 1, "in_flight while only /stats runs")
        finally:
            for c in extra:
                c.close()
        wait_for("active_connections back to 1",
                 lambda: get_stats(stats_conn)["active_connections"] == 1)


def test_rejected_counted(srv):
    with Conn(srv.port) as stats_conn:
        a = get_stats(stats_conn)
        with Conn(srv.port) as bad:
            bad.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n"
                     b"Content-Length: 2\r\n\r\n")
            check_eq(bad.read_response().status, 400, "duplicate Content-Length")
        with Conn(srv.port) as nf:
            check_eq(nf.request("GET", "/no/such/path").status, 404, "404")
        b = get_stats(stats_conn)
    check_eq(b["rejected"] - a["rejected"], 1, "rejected delta")
    check_eq(b["status_4xx"] - a["status_4xx"], 2, "status_4xx delta (400 + 404)")
    check_eq(b["total_requests"] - a["total_requests"], 3, "total delta (400, 404, /stats)")


def test_client_gone_is_its_own_class(srv):
    """A client that hangs up while its request is handled is counted in client_closed
    (nginx logs it as 499), never as a 5xx, although the demo answers the cancelled
    request with 503."""
    with Conn(srv.port) as stats_conn:
        a = get_stats(stats_conn)
        for _ in range(3):
            c = Conn(srv.port)
            c.send(b"GET /adaptive?work_us=0&sleep_ms=300 HTTP/1.1\r\nHost: x\r\n\r\n")
            time.sleep(0.05)
            c.close()
        b = wait_for("client_closed to count 3",
                     lambda: (lambda st: st if st["client_closed"] - a["client_closed"] >= 3
                              else None)(get_stats(stats_conn)))
    check_eq(b["client_closed"] - a["client_closed"], 3, "client_closed delta")
    check_eq(b["status_5xx"] - a["status_5xx"], 0, "status_5xx delta")


def test_throughput_one_second(srv):
    """Fill one whole CLOCK_MONOTONIC second with exactly N responses and read it back as
    throughput_rps (the last complete second). Python's time.monotonic() is the same clock."""
    n = 150
    with Conn(srv.port) as stats_conn:
        st = get_stats(stats_conn)
        # the 1 s window needs the workers to be past their first partial second
        if st["uptime_seconds"] < 2.5:
            time.sleep(2.5 - st["uptime_seconds"])
        with Conn(srv.port) as load:
            for attempt in range(5):
                now = time.monotonic()
                second = math.floor(now) + 1
                time.sleep(second + 0.05 - now)  # 50 ms into a fresh second
                for i in range(n):
                    check_eq(load.request("GET", "/plaintext").status, 200, "load")
                done = time.monotonic()
                if done >= second + 0.95:  # too slow to fit in one second: try again
                    continue
                time.sleep(second + 1.05 - done)  # into the next second
                st = get_stats(stats_conn)
                check_eq(st["throughput_rps"], float(n), "throughput_rps for second %d" % second)
                check(st["throughput_rps_10s"] >= n / 10.0,
                      "throughput_rps_10s %r < %r" % (st["throughput_rps_10s"], n / 10.0))
                return
    raise harness.TestFailure("could not send %d requests within one second in 5 tries" % n)


def test_rss_matches_vmrss(srv):
    """(c) memory_rss_bytes agrees with /proc/PID/status VmRSS within 10%."""
    with Conn(srv.port) as c:
        for _ in range(3):
            st = get_stats(c)
            with open("/proc/%d/status" % srv.proc.pid) as f:
                m = re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M)
            check(m is not None, "no VmRSS for pid %d" % srv.proc.pid)
            vm = int(m.group(1)) * 1024
            rss = st["memory_rss_bytes"]
            if abs(rss - vm) <= 0.10 * vm:
                print("    rss %d vs VmRSS %d (%.2f%%)" % (rss, vm, 100.0 * (rss - vm) / vm))
                return
            time.sleep(0.2)  # read a moment apart while the server was still growing
    raise harness.TestFailure("memory_rss_bytes %d vs VmRSS %d: more than 10%% apart" % (rss, vm))


def test_cpu_and_process(srv):
    with Conn(srv.port) as c:
        st = get_stats(c)
    ncpu = os.cpu_count() or 1
    check(0 <= st["cpu_usage_percent"] <= 100.0 * ncpu + 5, "cpu %r" % st["cpu_usage_percent"])
    # 2 workers + the main thread, at least
    check(st.get("threads", 0) >= 3, "threads %r" % st.get("threads"))
    fds = len(os.listdir("/proc/%d/fd" % srv.proc.pid))
    check(abs(st.get("open_fds", -100) - fds) <= 2, "open_fds %r vs %d in /proc" %
          (st.get("open_fds"), fds))


# ---------------------------------------------------------------------------- /metrics

SAMPLE_RE = re.compile(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$')
LABEL_RE = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(,|$)')


def parse_prometheus(text):
    """Text format 0.0.4, strictly: HELP then TYPE once per family, the family's samples
    right after it, valid names and label sets, float values, no duplicate series.
    Returns ({family: type}, {(name, frozenset(labels)): value}, [(name, labels, value)])."""
    types, samples, ordered = {}, {}, []
    family, ftype, help_for = None, None, None
    check(text.endswith("\n"), "exposition must end with a newline")
    for line in text.split("\n")[:-1]:
        if line.startswith("# HELP "):
            help_for = line.split(" ", 3)[2]
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            check(len(parts) == 4, "bad TYPE line %r" % line)
            name, t = parts[2], parts[3]
            check(name == help_for, "TYPE %s without HELP just before" % name)
            check(name not in types, "family %s declared twice" % name)
            check(t in ("counter", "gauge", "histogram", "summary"), "type %r" % t)
            types[name], family, ftype = t, name, t
            continue
        check(line and not line.startswith("#"), "unexpected line %r" % line)
        m = SAMPLE_RE.match(line)
        check(m is not None, "bad sample line %r" % line)
        name, labels_s, value_s = m.group(1), m.group(3) or "", m.group(4)
        labels, pos = {}, 0
        while pos < len(labels_s):
            lm = LABEL_RE.match(labels_s, pos)
            check(lm is not None, "bad labels in %r" % line)
            labels[lm.group(1)] = lm.group(2)
            pos = lm.end()
        value = float(value_s)  # accepts NaN, +Inf
        suffixes = {"counter": [""], "gauge": [""], "summary": ["", "_sum", "_count"],
                    "histogram": ["_bucket", "_sum", "_count"]}[ftype] if ftype else []
        check(any(name == family + s for s in suffixes),
              "sample %s outside its family (%s %s)" % (name, family, ftype))
        key = (name, frozenset(labels.items()))
        check(key not in samples, "duplicate series %r" % line)
        samples[key] = value
        ordered.append((name, labels, value))
    return types, samples, ordered


def check_histogram(ordered, samples, family):
    buckets = [(l["le"], v) for n, l, v in ordered if n == family + "_bucket"]
    check(len(buckets) >= 2 and buckets[-1][0] == "+Inf", "%s buckets %r" % (family, buckets))
    les = [float(le) for le, _ in buckets]
    check(les == sorted(les) and len(set(les)) == len(les), "%s le order %r" % (family, les))
    counts = [v for _, v in buckets]
    check(counts == sorted(counts), "%s buckets not cumulative %r" % (family, counts))
    check_eq(counts[-1], samples[(family + "_count", frozenset())], family + " +Inf vs _count")
    return counts[-1]


def get_metrics(conn):
    r = conn.request("GET", "/metrics")
    check_eq(r.status, 200, "/metrics status")
    check_eq(r.header("Content-Type"), "text/plain; version=0.0.4; charset=utf-8",
             "/metrics Content-Type")
    return r.body.decode("utf-8")


def test_metrics_format_and_values(srv):
    with Conn(srv.port) as c:
        for _ in range(20):
            c.request("GET", "/json")
        st = get_stats(c)
        text = get_metrics(c)
    types, samples, ordered = parse_prometheus(text)
    for fam, t in (("tern_requests_total", "counter"),
                   ("tern_request_duration_seconds", "histogram"),
                   ("tern_connections_active", "gauge"), ("tern_in_flight", "gauge"),
                   ("tern_process_resident_memory_bytes", "gauge"),
                   ("tern_process_cpu_percent", "gauge"), ("tern_shed_total", "counter"),
                   ("tern_uptime_seconds", "gauge")):
        check_eq(types.get(fam), t, "type of " + fam)
    check(types.get("tern_loop_lag_seconds") in ("histogram", "summary"), "tern_loop_lag_seconds")
    by_class = {dict(k[1])["status_class"]: v for k, v in samples.items()
                if k[0] == "tern_requests_total"}
    check_eq(sorted(by_class), ["1xx", "2xx", "3xx", "4xx", "5xx", "other"], "status classes")
    # /metrics read right after /stats on the same connection: one more response (the /stats)
    total = sum(by_class.values())
    check_eq(total, st["total_requests"] + 1, "tern_requests_total vs /stats total_requests")
    check_eq(by_class["2xx"], st["status_2xx"] + 1, "2xx vs /stats")
    check_eq(check_histogram(ordered, samples, "tern_request_duration_seconds"), total,
             "histogram count vs tern_requests_total")
    check_eq(samples[("tern_shed_total", frozenset())], st["shed_503"], "shed")
    check(samples[("tern_in_flight", frozenset())] >= 1, "in_flight includes /metrics")
    check(samples[("tern_process_resident_memory_bytes", frozenset())] > 1 << 20, "rss > 1 MiB")
    # the 20 /json just sent are in both recent windows, as in /stats
    for key, window in (("latency_10s", "10s"), ("latency_60s", "60s")):
        check_window(st, key)
        check(st[key]["count"] >= 20, "%s count %r after 20 requests" % (key, st[key]))
        check(st[key]["count"] <= st["total_requests"], "%s count > total" % key)
        n = samples[("tern_responses_in_window", frozenset({("window", window)}))]
        check(n >= st[key]["count"] + 1, "tern_responses_in_window %s %r vs /stats %r"
              % (window, n, st[key]["count"]))
        qs = [samples[("tern_request_latency_window_seconds",
                       frozenset({("window", window), ("percentile", q)}))]
              for q in ("50", "90", "99", "99.9")]
        check(qs == sorted(qs) and qs[0] > 0, "window %s quantiles %r" % (window, qs))
    check_eq(types.get("tern_client_closed_total"), "counter", "type of tern_client_closed_total")
    check_eq(samples[("tern_client_closed_total", frozenset())], st["client_closed"],
             "client_closed vs /stats")


def test_promtool_check_metrics(srv):
    """(b) /metrics passes `promtool check metrics` (lint included)."""
    with Conn(srv.port) as c:
        text = get_metrics(c)
    promtool = shutil.which("promtool")
    check(promtool is not None, "promtool missing (scripts/deps.sh test installs prometheus)")
    p = subprocess.run([promtool, "check", "metrics"], input=text.encode(),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    out = p.stdout.decode("utf-8", "replace")
    check(p.returncode == 0 and not out.strip(),
          "promtool check metrics: exit %d\n%s" % (p.returncode, out))


def test_head_metrics(srv):
    with Conn(srv.port) as c:
        r = c.request("HEAD", "/metrics")
        check_eq(r.status, 200, "HEAD /metrics")
        check(int(r.header("Content-Length")) > 1000, "HEAD Content-Length %r"
              % r.header("Content-Length"))
        check_eq(c.request("GET", "/plaintext").body, HELLO, "keep-alive after HEAD")


if __name__ == "__main__":
    harness.main(globals())
