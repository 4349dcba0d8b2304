"""One busy or hostile client must not stall the others on its worker.

A hog keeps 256 pipelined requests per write in flight, non-stop, on one connection while
reading its answers; an ordinary client on the same (only) worker sends one request every
50 ms. Before the fairness budget (a connection yields to the loop after 64 pipelined
requests or 256 KiB) the ordinary client was blocked for whole seconds in some runs. The
bounds here are generous (CI machines are noisy and this build may be sanitized); make
bench measures the same thing precisely.
"""
import os
import socket
import sys
import multiprocessing
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, check  # noqa: E402

REQ = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n"


def hog(port, stop, counts):
    """Runs in its own process: a Python thread would hold the GIL and delay the
    ordinary client's thread by the interpreter's 5 ms switch interval."""
    s = socket.create_connection(("127.0.0.1", port))
    s.setblocking(False)
    batch = REQ * 256
    pending = b""
    while not stop.is_set():
        if not pending:
            pending = batch
        try:
            n = s.send(pending)
            pending = pending[n:]
        except BlockingIOError:
            pass
        except OSError:
            break
        try:
            while True:
                d = s.recv(1 << 20)
                if not d:
                    stop.set()
                    break
                counts.value += d.count(b"Hello, World!")
        except BlockingIOError:
            pass
        except OSError:
            break
    s.close()


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p / 100.0))]


def test_pipelining_hog_does_not_stall_others(binary):
    with harness.serving(binary, workers=1) as srv:
        stop = multiprocessing.Event()
        counts = multiprocessing.Value("q", 0, lock=False)
        t = multiprocessing.Process(target=hog, args=(srv.port, stop, counts))
        t.start()
        lat = []
        try:
            time.sleep(0.3)
            with Conn(srv.port) as c:
                t_end = time.monotonic() + 3.0
                while time.monotonic() < t_end:
                    t0 = time.monotonic()
                    r = c.request("GET", "/json")
                    lat.append(time.monotonic() - t0)
                    check(r.status == 200, "ordinary client got %d" % r.status)
                    time.sleep(0.05)
        finally:
            stop.set()
            t.join(10)
            if t.is_alive():
                t.kill()
        p50, p99, mx = (percentile(lat, 50) * 1e3, percentile(lat, 99) * 1e3, max(lat) * 1e3)
        print("    hog answered %d requests; ordinary client: %d requests, p50 %.2f ms, "
              "p99 %.2f ms, max %.2f ms" % (counts.value, len(lat), p50, p99, mx))
        check(counts.value > 1000, "the hog was not served (%d answers)" % counts.value)
        check(len(lat) >= 30, "ordinary client made only %d requests in 3 s" % len(lat))
        check(p99 < 100, "ordinary client's p99 %.1f ms beside a pipelining hog" % p99)
        check(mx < 500, "ordinary client's worst %.1f ms beside a pipelining hog" % mx)


if __name__ == "__main__":
    harness.main(globals(), needs_server=False)
