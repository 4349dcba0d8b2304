#!/usr/bin/env python3
"""RSS per idle WebSocket: starts tern-demo, opens N WebSocket connections to /ws (each
exchanges one echo, so its handler has run and parked in tern_ws_recv), lets them sit
idle, then the same with /ws/callback (tern_ws_on_message: no coroutine while idle), and reads the server's VmRSS from /proc before and after. For comparison, the
same for N idle HTTP keep-alive connections (one request each). Usage:
  bench/ws_idle_rss.py --binary build/tern-demo [--n 10000] [--workers 2]
Use a build without sanitizers: ASan's shadow memory and quarantine skew RSS."""
import argparse
import base64
import os
import re
import resource
import socket
import struct
import subprocess
import time


def rss_kb(pid):
    for line in open("/proc/%d/status" % pid):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def start(binary, workers):
    p = subprocess.Popen([binary, "--port", "0", "--workers", str(workers), "--host", "127.0.0.1"],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    line = p.stdout.readline().decode()
    port = int(re.search(r":(\d+) \(", line).group(1))
    return p, port


def ws_open(port, path="/ws"):
    s = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET %s HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n" % (path, key)).encode())
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += s.recv(4096)
    assert buf.startswith(b"HTTP/1.1 101"), buf[:100]
    # one masked text frame "hi" (mask 0) and its echo
    s.sendall(b"\x81\x82\0\0\0\0hi")
    got = buf.split(b"\r\n\r\n", 1)[1]
    while len(got) < 4:
        got += s.recv(4096)
    assert got[:4] == b"\x81\x02hi", got
    return s


def http_open(port):
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
    buf = b""
    while b"Hello" not in buf:
        buf += s.recv(4096)
    return s


def measure(binary, workers, n, opener, what):
    p, port = start(binary, workers)
    try:
        warm = [opener(port) for _ in range(200)]  # stacks, buffers and pools warmed
        for s in warm:
            s.close()
        time.sleep(1.0)
        before = rss_kb(p.pid)
        t0 = time.monotonic()
        conns = [opener(port) for _ in range(n)]
        took = time.monotonic() - t0
        time.sleep(2.0)
        after = rss_kb(p.pid)
        per = (after - before) * 1024.0 / n
        print("%-28s n=%d  RSS %d -> %d KiB  = %.0f bytes per connection  (opened in %.1fs)" % (
            what, n, before, after, per, took))
        for s in conns:
            s.close()
        return per
    finally:
        p.terminate()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--n", type=int, default=10000)
    ap.add_argument("--workers", type=int, default=2)
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    measure(a.binary, a.workers, a.n, http_open, "idle HTTP keep-alive")
    measure(a.binary, a.workers, a.n, ws_open, "idle WebSocket (parked recv)")
    measure(a.binary, a.workers, a.n, lambda port: ws_open(port, "/ws/callback"),
            "idle WebSocket (callback)")


if __name__ == "__main__":
    main()
