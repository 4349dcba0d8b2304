"""The seed application's patterns across cores (issue "tern across cores"):
tests/integration/seed_server.c shares one static semaphore of 10 and one static pool of 4
between every request on every worker. With 2 and 4 workers and bursts of 20 and 200,
every request gets 200 or the documented 503 + Retry-After, the semaphore never has more
than 10 holders nor the pool more than 4 users, nothing aborts; a task started on another
worker hands its result back to the handler; a route with a queue serves its queue and
refuses the rest at once.
"""
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402


class Seed:
    def __init__(self, binary, workers):
        self.proc = subprocess.Popen([binary, str(workers)], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE)
        line = self.proc.stdout.readline().decode()
        m = re.search(r"listening on (\d+) \((\d+) workers\)", line)
        check(m is not None, "seed-server did not start: %r" % line)
        self.port = int(m.group(1))
        check_eq(int(m.group(2)), workers, "workers")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(20)
        err = self.proc.stderr.read().decode(errors="replace")
        return rc, err


def get(port, path, timeout=20):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    try:
        s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path.encode())
        data = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            data += d
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 "), "no response to %s: %r" % (path, data[:100]))
    status = int(head[9:12])
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        headers[k.strip().lower().decode()] = v.strip().decode()
    return status, headers, body


def burst(port, path, n):
    out = [None] * n
    errors = []

    def one(i):
        try:
            t0 = time.monotonic()
            st, h, b = get(port, path)
            out[i] = (st, h, b, time.monotonic() - t0)
        except Exception as e:  # a dropped connection is a failure, reported below
            errors.append(repr(e))
    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    check(not errors, "%d of %d requests failed without an answer: %r" % (len(errors), n,
                                                                          errors[:3]))
    return out


def check_seed(binary, workers):
    srv = Seed(binary, workers)
    try:
        for n in (20, 200):
            res = burst(srv.port, "/work", n)
            ok = [r for r in res if r[0] == 200]
            busy = [r for r in res if r[0] == 503]
            check_eq(len(ok) + len(busy), n, "answers that are 200 or 503")
            for st, h, b, _ in busy:
                check(h.get("retry-after", "").isdigit(), "503 without Retry-After: %r" % h)
            for st, h, b, _ in ok:
                d = json.loads(b)
                check(d["holders_max"] <= 10, "semaphore of 10 had %d holders" % d["holders_max"])
                check(d["users_max"] <= 4, "pool of 4 had %d users" % d["users_max"])
            print("    %d workers, burst of %d: %d x 200, %d x 503" % (workers, n, len(ok),
                                                                      len(busy)))
            check(len(ok) >= min(n, 10), "only %d of %d served" % (len(ok), n))
            ran_on = {json.loads(r[2])["worker"] for r in ok}
            if n == 200 and workers > 1:
                check(len(ran_on) > 1, "all served on one worker: %r" % ran_on)
        for _ in range(4):
            st, _, b = get(srv.port, "/remote")
            check_eq(st, 200, "/remote")
            d = json.loads(b)
            check_eq(d["sum"], 5050, "result of the task on another worker")
            if workers > 1:
                check(d["ran_on"] != d["caller"], "task ran on the caller's worker: %r" % d)
        res = burst(srv.port, "/queued", 80)
        ok = [r for r in res if r[0] == 200]
        busy = [r for r in res if r[0] == 503]
        print("    /queued (5 slots, queue of 50), burst of 80: %d x 200, %d x 503; slowest "
              "503 %.0f ms" % (len(ok), len(busy), 1000 * max([r[3] for r in busy] or [0])))
        check_eq(len(ok) + len(busy), 80, "/queued answers")
        check(len(ok) >= 50, "the queue served only %d" % len(ok))
        check(len(busy) >= 20, "a full queue refused only %d of 80" % len(busy))
    finally:
        rc, err = srv.stop()
    check_eq(rc, 0, "exit status")
    check("abort" not in err.lower() and "two workers" not in err, "stderr: %s" % err[-2000:])
    rep = [m for m in harness.SANITIZER_MARKS if m in err]
    check(not rep, "sanitizer report:\n%s" % err[-4000:])


def test_seed_two_workers(binary):
    check_seed(binary, 2)


def test_seed_four_workers(binary):
    check_seed(binary, 4)


if __name__ == "__main__":
    harness.main(globals(), needs_server=False)
