#!/usr/bin/env python3
"""Server RSS per idle keep-alive connection.

Opens N keep-alive connections to 127.0.0.1:PORT, sends one GET on each and
reads the whole response, keeps them all open, and reads the server's VmRSS
(summed over the server pid and its descendants, e.g. nginx master+worker)
before and after. "Before" is taken after a warm-up of a few hundred
connections opened, used and closed, so that one-off allocations (accept
path, first buffers, lazily faulted code pages) are not charged to the idle
connections.

Prints one line of tab-separated key=value pairs on stdout (run.sh appends it
to its results file); progress and errors go to stderr.
"""
import argparse
import errno
import os
import resource
import selectors
import socket
import sys
import time


def tree_pids(root):
    """root and all its descendants, from the ppid field of /proc/*/stat."""
    children = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                s = f.read()
        except OSError:
            continue
        # comm (field 2) may contain spaces or parentheses: split after the last ')'.
        ppid = int(s[s.rindex(")") + 2:].split()[1])
        children.setdefault(ppid, []).append(int(name))
    out, todo = [], [root]
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(children.get(p, []))
    return out


def rss_kb(root):
    total = 0
    for p in tree_pids(root):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


class Conn:
    __slots__ = ("sock", "out", "buf", "done", "failed")

    def __init__(self, sock, req):
        self.sock, self.out, self.buf, self.done, self.failed = sock, req, b"", False, None


def response_complete(buf):
    """True once buf holds a full response head plus its Content-Length body."""
    end = buf.find(b"\r\n\r\n")
    if end < 0:
        return False
    clen = 0
    for line in buf[:end].split(b"\r\n")[1:]:
        k, _, v = line.partition(b":")
        if k.strip().lower() == b"content-length":
            clen = int(v.strip())
    return len(buf) >= end + 4 + clen


def open_batch(port, req, n, timeout):
    """Open n connections, send req on each, read each full response.
    Returns (open connections, number of failures)."""
    sel = selectors.DefaultSelector()
    conns = []
    for _ in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        err = s.connect_ex(("127.0.0.1", port))
        if err not in (0, errno.EINPROGRESS):
            s.close()
            conns.append(None)
            continue
        c = Conn(s, req)
        conns.append(c)
        sel.register(s, selectors.EVENT_WRITE, c)
    pending = sum(1 for c in conns if c is not None)
    deadline = time.monotonic() + timeout
    while pending and time.monotonic() < deadline:
        for key, ev in sel.select(0.2):
            c = key.data
            try:
                if ev & selectors.EVENT_WRITE:
                    k = c.sock.send(c.out)
                    c.out = c.out[k:]
                    if not c.out:
                        sel.modify(c.sock, selectors.EVENT_READ, c)
                    continue
                data = c.sock.recv(65536)
                if not data:
                    raise ConnectionError("closed by server before the response ended")
                c.buf += data
                if response_complete(c.buf):
                    c.done = True
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                c.failed = str(e)
            if c.done or c.failed:
                sel.unregister(c.sock)
                pending -= 1
    sel.close()
    ok, failed = [], 0
    for c in conns:
        if c is not None and c.done and not c.failed:
            c.buf = b""
            ok.append(c.sock)
        else:
            failed += 1
            if c is not None:
                if c.failed:
                    print(f"idle_conns: connection failed: {c.failed}", file=sys.stderr)
                c.sock.close()
    return ok, failed


def still_open(socks):
    """Count connections the server has not closed (no EOF/RST pending)."""
    sel = selectors.DefaultSelector()
    for s in socks:
        sel.register(s, selectors.EVENT_READ)
    closed = sum(1 for _ in sel.select(0))  # readable on an idle conn = EOF or error
    sel.close()
    return len(socks) - closed


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="server pid (descendants included)")
    ap.add_argument("--path", default="/plaintext")
    ap.add_argument("--conns", type=int, default=10000)
    ap.add_argument("--warmup", type=int, default=300)
    ap.add_argument("--batch", type=int, default=500)
    ap.add_argument("--settle", type=float, default=1.0, help="seconds before each RSS read")
    args = ap.parse_args()

    need = args.conns + 256
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < need:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (max(need, soft), max(need, hard)))
        except (ValueError, OSError) as e:
            sys.exit(f"idle_conns: need {need} fds, RLIMIT_NOFILE is {soft}/{hard}: {e}")

    req = f"GET {args.path} HTTP/1.1\r\nHost: 127.0.0.1:{args.port}\r\n\r\n".encode()
    for _ in range(2):
        warm, wfail = open_batch(args.port, req, args.warmup, 10)
        for s in warm:
            s.close()
    time.sleep(args.settle)
    before = rss_kb(args.pid)

    t0 = time.monotonic()
    socks, failed = [], 0
    while len(socks) + failed < args.conns:
        if time.monotonic() - t0 > 60:
            print("idle_conns: giving up after 60 s", file=sys.stderr)
            failed = args.conns - len(socks)
            break
        n = min(args.batch, args.conns - len(socks) - failed)
        ok, bad = open_batch(args.port, req, n, 15)
        socks += ok
        failed += bad
    t_open = time.monotonic() - t0
    time.sleep(args.settle)
    after = rss_kb(args.pid)
    alive = still_open(socks)
    for s in socks:
        s.close()

    per_conn = (after - before) * 1024 / max(alive, 1)
    print("\t".join([
        f"conns={args.conns}", f"opened={len(socks)}", f"failed={failed}",
        f"alive_at_read={alive}", f"rss_before_kb={before}", f"rss_after_kb={after}",
        f"bytes_per_conn={per_conn:.1f}", f"open_seconds={t_open:.2f}",
        f"warmup_failed={wfail}"]))
    return 0 if failed == 0 and alive == len(socks) else 1


if __name__ == "__main__":
    sys.exit(main())
