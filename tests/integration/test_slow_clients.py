"""Slow readers: a large streamed response read slowly arrives complete and byte-exact
while the server's memory stays flat (it holds one 64 KiB piece at a time, parking while
the socket is full), and 50 slow readers at once do not slow down fast clients.

GET /stream?mb=N sends N MiB where byte i is i % 251.
"""
import multiprocessing
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, check, check_eq  # noqa: E402

PATTERN = bytes(range(251)) * 600   # ~147 KiB: any read up to 128 KiB is a slice of it
STREAM_MB = 20                      # 20 MiB at 16 KiB / 10 ms: ~13 s
READ_SIZE = 16384
READ_EVERY = 0.010
# Server RSS may grow by this much while one slow stream runs. The server holds one
# 64 KiB piece, its coroutine stack pages and (ASan build) allocator and shadow pages for
# them; measured growth on this machine: +132 KiB (ASan build). 8 MiB is > 50x that and
# still well under the 20 MiB body, so a server that buffered the body would fail.
RSS_CAP_KB = 8 * 1024


def expect(off, n):
    """Bytes [off, off + n) of the stream pattern."""
    k = off % 251
    if k + n <= len(PATTERN):
        return PATTERN[k:k + n]
    return (bytes(range(251)) * (n // 251 + 2))[k:k + n]


def open_stream(port, mb, rcvbuf=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.connect(("127.0.0.1", port))
    s.settimeout(30)
    s.sendall(b"GET /stream?mb=%d HTTP/1.1\r\nHost: x\r\n\r\n" % mb)
    head = b""
    while b"\r\n\r\n" not in head:
        chunk = s.recv(4096)
        check(chunk, "stream closed before its head")
        head += chunk
    head, _, rest = head.partition(b"\r\n\r\n")
    r = harness.parse_head(head + b"\r\n\r\n")
    check_eq(r.status, 200, "stream status")
    check_eq(r.header("Content-Length"), str(mb << 20), "stream Content-Length")
    return s, rest


def read_slowly(s, first, total, size, every, stop=None):
    """Reads the body `size` bytes per `every` seconds, checking every byte. Returns the
    number of bytes read (total unless stopped)."""
    got = 0
    data = first
    while True:
        if data:
            check(data == expect(got, len(data)), "stream bytes differ at offset %d" % got)
            got += len(data)
        if got >= total or (stop is not None and stop.is_set()):
            return got
        time.sleep(every)
        data = s.recv(min(size, total - got))
        check(data, "stream ended early at %d of %d bytes" % (got, total))


def test_slow_reader_gets_everything_with_flat_memory(srv):
    # warm the stream path (stack, arena, first sends) so the baseline includes it
    s, rest = open_stream(srv.port, 1)
    check_eq(read_slowly(s, rest, 1 << 20, 1 << 20, 0), 1 << 20, "warm-up stream")
    s.close()
    time.sleep(0.2)
    base = srv.rss_kb()
    samples = []
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            samples.append(srv.rss_kb())
            stop.wait(0.1)
    t = threading.Thread(target=sample, daemon=True)
    t.start()
    t0 = time.monotonic()
    try:
        s, rest = open_stream(srv.port, STREAM_MB)
        total = STREAM_MB << 20
        got = read_slowly(s, rest, total, READ_SIZE, READ_EVERY)
        took = time.monotonic() - t0
        # nothing after the body: the connection is still usable
        s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
        tail = s.recv(4096)
        check(tail.startswith(b"HTTP/1.1 200"), "request after the stream: %r" % tail[:60])
        s.close()
    finally:
        stop.set()
        t.join()
    peak = max(samples)
    print("    %d MiB read in %.1f s (%.2f MiB/s); server VmRSS baseline %d KiB, peak %d KiB "
          "(+%d KiB), %d samples" % (STREAM_MB, took, STREAM_MB / took, base, peak, peak - base,
                                     len(samples)))
    check_eq(got, total, "bytes received")
    check(took > 5, "the reader was not slow (%.1f s): the test measures nothing" % took)
    check(peak - base <= RSS_CAP_KB, "server RSS grew by %d KiB while streaming (cap %d KiB)"
          % (peak - base, RSS_CAP_KB))


# ---------------------------------------------------------------------------- many

def slow_readers(port, n, secs, pipe):
    """Child process: n connections each reading /stream 16 KiB every 50 ms for secs."""
    stop = threading.Event()
    results = [None] * n

    def one(i):
        try:
            s, rest = open_stream(port, 64)
            results[i] = read_slowly(s, rest, 64 << 20, READ_SIZE, 0.05, stop)
            s.close()
        except Exception as e:
            results[i] = repr(e)
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for th in threads:
        th.start()
    time.sleep(0.5)
    pipe.send("ready")
    time.sleep(secs)
    stop.set()
    for th in threads:
        th.join(30)
    pipe.send(results)


def test_50_slow_readers_do_not_starve_fast_clients(srv):
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    secs = 6.0
    p = ctx.Process(target=slow_readers, args=(srv.port, 50, secs, child))
    p.start()
    try:
        check(parent.poll(30), "slow readers did not start")
        check_eq(parent.recv(), "ready", "slow readers")
        base_rss = srv.rss_kb()
        lat = []
        t0 = time.monotonic()
        with Conn(srv.port) as c:
            while time.monotonic() - t0 < secs - 1.0:
                t = time.perf_counter()
                r = c.request("GET", "/plaintext")
                lat.append(time.perf_counter() - t)
                check_eq(r.status, 200, "fast client status")
        rss = srv.rss_kb()
        check(parent.poll(60), "slow readers did not report")
        results = parent.recv()
    finally:
        p.join(10)
        if p.is_alive():
            p.kill()
    errors = [r for r in results if not isinstance(r, int)]
    check(not errors, "%d slow readers failed: %r" % (len(errors), errors[:3]))
    p99 = harness.percentile(lat, 99) * 1e3
    print("    fast client beside 50 slow readers: %d requests, p50 %.2f ms, p99 %.2f ms, "
          "max %.2f ms; slow readers got %.1f MiB each on average; server VmRSS %d KiB"
          % (len(lat), harness.percentile(lat, 50) * 1e3, p99, max(lat) * 1e3,
             sum(results) / len(results) / 2**20, rss))
    check(min(results) > 1 << 20, "a slow reader got only %d bytes" % min(results))
    check(len(lat) >= 200, "only %d fast requests" % len(lat))
    check(p99 < 20.0, "fast client p99 %.2f ms beside 50 slow readers (want < 20 ms)" % p99)
    check(rss - base_rss < 16 * 1024, "RSS grew %d KiB during the run" % (rss - base_rss))


if __name__ == "__main__":
    harness.main(globals())
