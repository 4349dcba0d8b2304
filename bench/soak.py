#!/usr/bin/env python3
"""Soak test: N minutes of mixed load against a fresh tern-demo, sampling the server's
VmRSS every 10 s. Passes when memory is flat after warm-up (< 1% growth from the
--warmup mark to the end), no request had an unexpected outcome, and the server exits 0
on SIGTERM.

    python3 bench/soak.py --binary build/tern-demo --minutes 10

The load (one asyncio process, so most of the 2 CPUs stay with the server), each kind
checked byte for byte:
  keepalive  GET /plaintext, /json, /users/N on long-lived connections
  pipelined  10 requests per write, responses checked in order
  close      one request per connection with Connection: close
  post       POST /echo with Content-Length bodies (0..64 KiB)
  chunked    POST /echo with chunked bodies in random pieces (and 100-continue)
  concurrent GET /concurrent (handlers that park 18 ms)
  stream     slow readers of /stream?mb=4 (64 KiB every 20 ms), every byte checked
  malformed  a bad request per connection: the expected 4xx, then the server closes

Writes a "## Soak" section to bench/SOAK.md and, between the markers
<!-- soak:begin --> and <!-- soak:end -->, to bench/RESULTS.md (added at the end if
absent; the rest of that file belongs to bench/report.py). Exit status 0 = pass.
"""
import argparse
import asyncio
import os
import random
import re
import signal
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
LISTEN_RE = re.compile(rb"listening on http://[^\s/]+:(\d+) ")
HELLO = b"Hello, World!"
JSON = b'{"message":"Hello, World!"}'
PATTERN = bytes(range(251)) * 600
BEGIN, END = "<!-- soak:begin -->", "<!-- soak:end -->"

# (name, request, expected status)
MALFORMED = [
    ("two_hosts", b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    ("cl_te", b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("obs_fold", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400),
    ("nul", b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \x00\r\n\r\n", 400),
    ("dotdot", b"GET /../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ("garbage", b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03\r\n\r\n", 400),
    ("bad_chunk", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                  b"zz\r\n", 400),
    ("long_target", b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\nHost: a\r\n\r\n", 414),
    ("many_headers", b"GET / HTTP/1.1\r\nHost: a\r\n" +
     b"".join(b"X-%d: v\r\n" % i for i in range(120)) + b"\r\n", 431),
    ("method", b"BREW /pot HTTP/1.1\r\nHost: a\r\n\r\n", 501),
    ("coding", b"POST /echo HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 501),
    ("version", b"GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
]


class Unexpected(Exception):
    pass


def expect(cond, msg):
    if not cond:
        raise Unexpected(msg)


class Stats:
    def __init__(self):
        self.count = {}
        self.errors = {}
        self.samples = []

    def ok(self, kind, n=1):
        self.count[kind] = self.count.get(kind, 0) + n

    def error(self, kind, msg):
        self.errors.setdefault(kind, []).append(msg)


async def read_response(reader, method=b"GET"):
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head[:-4].split(b"\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3}) ", lines[0] + b" ")
    expect(m is not None, "bad status line %r" % lines[0][:80])
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(b":")
        headers[k.strip().lower()] = v.strip()
    status = int(m.group(1))
    body = b""
    if method != b"HEAD" and status not in (204, 304) and not 100 <= status < 200:
        cl = headers.get(b"content-length")
        expect(cl is not None and cl.isdigit(), "no Content-Length in %r" % head[:200])
        body = await reader.readexactly(int(cl))
    return status, headers, body


def request(method, path, extra=b"", body=None):
    h = b"%s %s HTTP/1.1\r\nHost: soak\r\n%s" % (method, path, extra)
    if body is not None:
        h += b"Content-Length: %d\r\n" % len(body)
    return h + b"\r\n" + (body or b"")


async def connect(port):
    return await asyncio.wait_for(asyncio.open_connection("127.0.0.1", port), 10)


def simple_request(rng, i):
    k = rng.randrange(3)
    if k == 0:
        return b"/plaintext", HELLO
    if k == 1:
        return b"/json", JSON
    n = rng.randrange(1 << 30)
    return b"/users/%d" % n, b'{"id":"%d"}' % n


async def keepalive(port, rng, stats, stop):
    r, w = await connect(port)
    try:
        i = 0
        while not stop.is_set() and i < 2000:   # renew connections now and then
            path, want = simple_request(rng, i)
            w.write(request(b"GET", path))
            st, h, body = await read_response(r)
            expect((st, body) == (200, want), "keepalive %s: %d %r" % (path, st, body[:80]))
            stats.ok("keepalive")
            i += 1
    finally:
        w.close()


async def pipelined(port, rng, stats, stop):
    r, w = await connect(port)
    try:
        for _ in range(200):
            if stop.is_set():
                break
            reqs = [simple_request(rng, i) for i in range(10)]
            w.write(b"".join(request(b"GET", p) for p, _ in reqs))
            for p, want in reqs:
                st, h, body = await read_response(r)
                expect((st, body) == (200, want), "pipelined %s: %d %r" % (p, st, body[:80]))
            stats.ok("pipelined", len(reqs))
    finally:
        w.close()


async def close_each(port, rng, stats, stop):
    path, want = simple_request(rng, 0)
    r, w = await connect(port)
    try:
        w.write(request(b"GET", path, b"Connection: close\r\n"))
        st, h, body = await read_response(r)
        expect((st, body) == (200, want), "close %s: %d" % (path, st))
        expect(h.get(b"connection", b"").lower() == b"close", "no Connection: close")
        expect(await asyncio.wait_for(r.read(1), 5) == b"", "server kept a closed connection")
        stats.ok("close")
    finally:
        w.close()


async def post(port, rng, stats, stop):
    r, w = await connect(port)
    try:
        for _ in range(100):
            if stop.is_set():
                break
            n = rng.choice((0, 1, 100, 1500, 16384, 65536, rng.randrange(70000)))
            body = rng.randbytes(n)
            w.write(request(b"POST", b"/echo", b"Content-Type: application/x-soak\r\n", body))
            st, h, got = await read_response(r)
            expect(st == 200 and got == body, "post %d bytes: %d, %d back" % (n, st, len(got)))
            expect(h.get(b"content-type") == b"application/x-soak", "echo Content-Type")
            stats.ok("post")
    finally:
        w.close()


async def chunked(port, rng, stats, stop):
    r, w = await connect(port)
    try:
        for _ in range(100):
            if stop.is_set():
                break
            body = rng.randbytes(rng.choice((0, 10, 5000, rng.randrange(40000))))
            pieces, off = [], 0
            while off < len(body):
                k = rng.randrange(1, 9000)
                pieces.append(b"%x\r\n%s\r\n" % (len(body[off:off + k]), body[off:off + k]))
                off += k
            cont = rng.random() < 0.3
            head = (b"POST /echo HTTP/1.1\r\nHost: soak\r\nTransfer-Encoding: chunked\r\n" +
                    (b"Expect: 100-continue\r\n" if cont else b"") + b"\r\n")
            w.write(head)
            if cont and body:
                st, _, _ = await read_response(r)
                expect(st == 100, "expected 100 Continue, got %d" % st)
            w.write(b"".join(pieces) + b"0\r\n\r\n")
            st, h, got = await read_response(r)
            if st == 100 and cont and not body:
                # sent without waiting (nothing to wait for): an interim 100 may still come
                # (RFC 9110 §10.1.1), before the final response
                st, h, got = await read_response(r)
            expect(st == 200 and got == body, "chunked %d bytes: %d, %d back"
                   % (len(body), st, len(got)))
            stats.ok("chunked")
    finally:
        w.close()


async def concurrent(port, rng, stats, stop):
    r, w = await connect(port)
    try:
        for _ in range(200):
            if stop.is_set():
                break
            w.write(request(b"GET", b"/concurrent"))
            st, h, body = await read_response(r)
            n = h.get(b"x-request-id", b"")
            expect(st == 200 and n.isdigit(), "concurrent: %d" % st)
            expect(body == b"Request %s: DB=db_data_%s, API=api_response_%s, File=file_content_%s"
                   % (n, n, n, n), "concurrent body %r" % body[:100])
            stats.ok("concurrent")
    finally:
        w.close()


async def stream(port, rng, stats, stop):
    mb = 4
    r, w = await connect(port)
    try:
        w.write(request(b"GET", b"/stream?mb=%d" % mb))
        head = await r.readuntil(b"\r\n\r\n")
        expect(head.startswith(b"HTTP/1.1 200") and b"Content-Length: %d" % (mb << 20) in head,
               "stream head %r" % head[:200])
        got = 0
        while got < mb << 20:
            data = await r.read(65536)
            expect(data, "stream ended at %d" % got)
            k = got % 251
            expect(data == PATTERN[k:k + len(data)], "stream bytes differ at %d" % got)
            got += len(data)
            await asyncio.sleep(0.02)
        stats.ok("stream")
    finally:
        w.close()


async def malformed(port, rng, stats, stop):
    name, req, want = rng.choice(MALFORMED)
    r, w = await connect(port)
    try:
        w.write(req)
        st, h, body = await read_response(r)
        expect(st == want, "malformed %s: %d, want %d" % (name, st, want))
        expect(h.get(b"connection", b"").lower() == b"close", "malformed %s: no close" % name)
        while True:   # the server may still be reading (lingering close): EOF must come
            data = await asyncio.wait_for(r.read(65536), 5)
            if not data:
                break
            raise Unexpected("malformed %s: data after the error response" % name)
        stats.ok("malformed")
    finally:
        w.close()


SCENARIOS = [  # (kind, function, parallel loops)
    ("keepalive", keepalive, 8), ("pipelined", pipelined, 2), ("close", close_each, 2),
    ("post", post, 3), ("chunked", chunked, 2), ("concurrent", concurrent, 8),
    ("stream", stream, 4), ("malformed", malformed, 1),
]


async def loop(kind, fn, port, seed, stats, stop):
    rng = random.Random(seed)
    while not stop.is_set():
        try:
            await asyncio.wait_for(fn(port, rng, stats, stop), 120)
        except Unexpected as e:
            stats.error(kind, str(e))
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                asyncio.TimeoutError) as e:
            stats.error(kind, "%s: %s" % (type(e).__name__, e))
        if kind == "malformed":
            await asyncio.sleep(0.01)


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def run_load(port, pid, seconds, stats):
    stop = asyncio.Event()
    tasks = []
    seed = 1
    for kind, fn, n in SCENARIOS:
        for _ in range(n):
            tasks.append(asyncio.create_task(loop(kind, fn, port, seed, stats, stop)))
            seed += 1
    t0 = time.monotonic()
    next_sample = t0
    while True:
        now = time.monotonic()
        if now >= next_sample:
            stats.samples.append((now - t0, rss_kb(pid), sum(stats.count.values())))
            next_sample += 10.0
            if now - t0 >= seconds:
                break
            print("  %5.0f s  VmRSS %6d KiB  %9d requests  %d errors"
                  % (now - t0, stats.samples[-1][1], stats.samples[-1][2],
                     sum(len(v) for v in stats.errors.values())), flush=True)
        await asyncio.sleep(min(0.5, max(0.0, next_sample - time.monotonic())))
    stop.set()
    await asyncio.wait(tasks, timeout=30)
    return time.monotonic() - t0


def start_server(binary, workers):
    p = subprocess.Popen([binary, "--port", "0", "--host", "127.0.0.1", "--workers", str(workers)],
                         stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    line = p.stdout.readline()
    m = LISTEN_RE.search(line)
    if not m:
        p.kill()
        sys.exit("soak: server did not start: %r" % line)
    return p, int(m.group(1))


def section(a, stats, took, verdict, growth, at_mark, final, peak_after, cpu, rc):
    total = sum(stats.count.values())
    nerr = sum(len(v) for v in stats.errors.values())
    out = ["## Soak", ""]
    out.append("`python3 bench/soak.py --binary %s --minutes %g` on %s: %s, %d workers, "
               "%.1f min of mixed load (one asyncio client process). Result: **%s**."
               % (a.binary_arg, a.minutes, time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
                  os.path.basename(a.binary), a.workers, took / 60, verdict))
    out.append("")
    out.append("| load | requests | unexpected |")
    out.append("|---|---|---|")
    for kind, _, n in SCENARIOS:
        out.append("| %s (%d loops) | %d | %d |" % (kind, n, stats.count.get(kind, 0),
                                                   len(stats.errors.get(kind, []))))
    out.append("| **total** | **%d** (%.0f/s) | **%d** |" % (total, total / took, nerr))
    out.append("")
    out.append("Server VmRSS (KiB) every 10 s: " + ", ".join(
        "%d s %d" % (t, k) for t, k, _ in stats.samples) + ".")
    out.append("")
    out.append("RSS from the %g-minute mark to the end: %d -> %d KiB (%+.2f%%; max after the "
               "mark %d KiB); limit +1%%. Server CPU %.1f s (%.0f%% of one CPU). Exit status "
               "after SIGTERM: %s." % (a.warmup, at_mark, final, growth * 100, peak_after, cpu,
                                       100 * cpu / took, rc))
    if nerr:
        out.append("")
        out.append("Unexpected outcomes (first of each kind):")
        for kind, msgs in stats.errors.items():
            out.append("- %s: %d, e.g. `%s`" % (kind, len(msgs), msgs[0][:200]))
    return "\n".join(out) + "\n"


def write_sections(text, results, soak_md):
    with open(soak_md, "w") as f:
        f.write(text)
    block = BEGIN + "\n" + text + END
    try:
        with open(results) as f:
            cur = f.read()
    except FileNotFoundError:
        cur = ""
    if BEGIN in cur and END in cur and cur.index(BEGIN) < cur.index(END):
        new = cur[:cur.index(BEGIN)] + block + cur[cur.index(END) + len(END):]
    else:
        new = cur.rstrip("\n") + ("\n\n" if cur.strip() else "") + block + "\n"
    with open(results, "w") as f:
        f.write(new)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--binary", default=os.path.join(REPO, "build", "tern-demo"))
    p.add_argument("--minutes", type=float, default=10.0)
    p.add_argument("--warmup", type=float, default=2.0,
                   help="minutes after which RSS must stay flat (default 2)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--results", default=os.path.join(HERE, "RESULTS.md"))
    p.add_argument("--soak-md", default=os.path.join(HERE, "SOAK.md"))
    a = p.parse_args()
    a.binary_arg = a.binary
    a.binary = os.path.abspath(a.binary)
    if a.warmup >= a.minutes:
        p.error("--minutes must be longer than --warmup")
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    srv, port = start_server(a.binary, a.workers)
    stats = Stats()
    print("soak: %s on port %d for %g min" % (a.binary, port, a.minutes), flush=True)
    try:
        took = asyncio.run(run_load(port, srv.pid, a.minutes * 60, stats))
        cpu = cpu_seconds(srv.pid)
        srv.send_signal(signal.SIGTERM)
        rc = srv.wait(30)
    except BaseException:
        srv.kill()
        raise
    mark = a.warmup * 60
    after = [(t, k) for t, k, _ in stats.samples if t >= mark - 1]
    at_mark, final = after[0][1], after[-1][1]
    peak_after = max(k for _, k in after)
    growth = (final - at_mark) / at_mark
    nerr = sum(len(v) for v in stats.errors.values())
    fails = []
    if growth >= 0.01:
        fails.append("RSS grew %.2f%% after warm-up" % (growth * 100))
    if nerr:
        fails.append("%d unexpected outcomes" % nerr)
    if rc != 0:
        fails.append("exit status %s" % rc)
    if sum(stats.count.values()) == 0:
        fails.append("no load")
    verdict = "PASS" if not fails else "FAIL (" + "; ".join(fails) + ")"
    text = section(a, stats, took, verdict, growth, at_mark, final, peak_after, cpu, rc)
    write_sections(text, a.results, a.soak_md)
    print(text)
    sys.exit(0 if not fails else 1)


if __name__ == "__main__":
    main()
