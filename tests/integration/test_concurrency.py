"""Many simultaneous connections (asyncio clients): 2,000 keep-alive connections, and
1,000 parked /concurrent handlers that must overlap instead of running one after another."""
import asyncio
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

HELLO = b"Hello, World!"
JSON_HELLO = b'{"message":"Hello, World!"}'


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    resp = harness.parse_head(head)
    cl = resp.header("Content-Length")
    check(cl is not None and cl.isdigit(), "no Content-Length in %r" % resp.headers)
    resp.body = await reader.readexactly(int(cl))
    return resp


async def open_all(srv, n):
    async def one():
        return await asyncio.open_connection(srv.host, srv.port)
    # open in waves so we measure the server, not a SYN flood against the backlog
    conns = []
    for i in range(0, n, 250):
        conns += await asyncio.gather(*(one() for _ in range(min(250, n - i))))
    return conns


def close_all(conns):
    for _, w in conns:
        w.close()


async def keepalive_2000(srv):
    n = 2000
    conns = await asyncio.wait_for(open_all(srv, n), 60)
    check_eq(len(conns), n, "connections opened")

    async def two_requests(i, r, w):
        out = []
        for k, (path, want) in enumerate(((b"/plaintext", HELLO), (b"/users/%d" % i,
                                                                    b'{"id":"%d"}' % i))):
            w.write(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            resp = await read_response(r)
            check_eq((resp.status, resp.body), (200, want), "conn %d request %d" % (i, k))
            check(resp.header("Connection") is None or
                  resp.header("Connection").lower() != "close", "conn %d closed" % i)
            out.append(resp)
        return out

    try:
        results = await asyncio.wait_for(
            asyncio.gather(*(two_requests(i, r, w) for i, (r, w) in enumerate(conns)),
                           return_exceptions=True), 60)
        errors = [(i, e) for i, e in enumerate(results) if isinstance(e, BaseException)]
        check(not errors, "%d of %d connections failed; first: conn %d %r"
              % (len(errors), n, errors[0][0], errors[0][1]) if errors else "")
        # every connection is still open (a third request on a sample of them works)
        sample = conns[::97]
        res = await asyncio.wait_for(asyncio.gather(
            *(two_requests(i * 97, r, w) for i, (r, w) in enumerate(sample))), 30)
        check_eq(len(res), len(sample), "sample still alive")
    finally:
        close_all(conns)


def test_2000_keepalive_connections(srv):
    asyncio.run(keepalive_2000(srv))


async def concurrent_1000(srv, n=1000):
    conns = await asyncio.wait_for(open_all(srv, n), 60)
    try:
        # One round trip on every connection first, so the server has accepted and
        # registered them all (with TCP_DEFER_ACCEPT it only accepts on first data): the
        # timed window below measures handler concurrency, not connection setup.
        for _, w in conns:
            w.write(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
        warm = await asyncio.wait_for(asyncio.gather(*(read_response(r) for r, _ in conns)), 60)
        check(all(x.body == HELLO for x in warm), "warm-up responses")
        req = b"GET /concurrent HTTP/1.1\r\nHost: x\r\n\r\n"
        t0 = time.monotonic()
        for _, w in conns:          # barrier: every request goes out before we await
            w.write(req)
        results = await asyncio.wait_for(asyncio.gather(
            *(read_response(r) for r, _ in conns), return_exceptions=True), 30)
        elapsed = time.monotonic() - t0
    finally:
        close_all(conns)
    errors = [e for e in results if isinstance(e, BaseException)]
    check(not errors, "%d of %d failed; first %r" % (len(errors), n, errors[0] if errors else 0))
    ids = []
    for resp in results:
        check_eq(resp.status, 200, "status")
        rid = resp.header("X-Request-ID")
        check(rid is not None and rid.isdigit(), "X-Request-ID %r" % rid)
        k = int(rid)
        want = b"Request %d: DB=db_data_%d, API=api_response_%d, File=file_content_%d" % (
            k, k, k, k)
        check_eq(resp.body, want, "body for id %d" % k)
        pt = resp.header("X-Process-Time")
        check(pt is not None and pt.isdigit() and int(pt) >= 18000, "X-Process-Time %r" % pt)
        ids.append(k)
    check_eq(len(set(ids)), n, "unique X-Request-ID values")
    return elapsed


def test_1000_concurrent_parked(srv):
    elapsed = asyncio.run(concurrent_1000(srv))
    print("    1000 x /concurrent answered in %.3f s" % elapsed)
    # each handler sleeps 18 ms; run one after another they would take 18 s
    check(elapsed >= 0.018, "faster than one handler's sleeps: %.3fs" % elapsed)
    check(elapsed < 1.0, "1000 parked handlers took %.3fs (must overlap, < 1 s)" % elapsed)


def test_fast_requests_not_blocked_by_parked(srv):
    """While 500 handlers are parked, a /plaintext on another connection is answered
    without waiting for them."""
    async def run():
        conns = await open_all(srv, 501)
        try:
            probe_r, probe_w = conns.pop()
            for _, w in conns:
                w.write(b"GET /concurrent HTTP/1.1\r\nHost: x\r\n\r\n")
            await asyncio.sleep(0.005)
            t0 = time.monotonic()
            probe_w.write(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
            resp = await asyncio.wait_for(read_response(probe_r), 10)
            fast = time.monotonic() - t0
            slow = await asyncio.wait_for(asyncio.gather(*(read_response(r) for r, _ in conns)),
                                          30)
            return resp, fast, slow
        finally:
            close_all(conns)
            probe_w.close()
    resp, fast, slow = asyncio.run(run())
    check_eq((resp.status, resp.body), (200, HELLO), "probe")
    check_eq(len(slow), 500, "parked responses")
    check(all(s.status == 200 for s in slow), "parked statuses")
    print("    /plaintext latency with 500 parked: %.1f ms" % (fast * 1000))
    check(fast < 0.5, "probe took %.3fs" % fast)


def test_many_short_connections(srv):
    """Connect, one request with Connection: close, repeat: no fd or memory build-up
    visible as failures."""
    async def one(i):
        r, w = await asyncio.open_connection(srv.host, srv.port)
        w.write(b"GET /json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        resp = await read_response(r)
        rest = await asyncio.wait_for(r.read(), 5)
        w.close()
        return resp, rest

    async def run():
        out = []
        for wave in range(6):
            out += await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(500))), 30)
        return out
    res = asyncio.run(run())
    check_eq(len(res), 3000, "responses")
    for resp, rest in res:
        check_eq((resp.status, resp.body, rest), (200, JSON_HELLO, b""), "short connection")


def test_clients_vanish_while_parked(srv):
    """300 clients send /concurrent and go away (FIN or RST) while the handler sleeps;
    the server must cancel or finish those requests cleanly (ASan checks the rest at
    shutdown) and keep serving."""
    import socket
    socks = []
    for i in range(300):
        s = socket.create_connection((srv.host, srv.port), timeout=10)
        s.sendall(b"GET /concurrent HTTP/1.1\r\nHost: x\r\n\r\n" * (1 + i % 3))
        socks.append(s)
    time.sleep(0.005)
    for i, s in enumerate(socks):
        if i % 2:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
        s.close()
    time.sleep(0.2)
    check(srv.alive(), "server died")
    with harness.Conn(srv.port) as c:
        r = c.request("GET", "/concurrent")
        check_eq(r.status, 200, "/concurrent after vanished clients")
        check_eq(c.request("GET", "/plaintext").body, HELLO, "plaintext after")


if __name__ == "__main__":
    harness.main(globals(), before_start=harness.raise_nofile_limit)
