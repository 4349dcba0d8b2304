"""Pipelining and arbitrary segmentation of requests: responses come back complete and in
request order no matter how the bytes are split or how long a handler parks."""
import os
import random
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, build_request, check, check_eq  # noqa: E402

HELLO = b"Hello, World!"
JSON_HELLO = b'{"message":"Hello, World!"}'


def mixed_requests(n, rng):
    reqs = []
    for i in range(n):
        kind = rng.randrange(4)
        if kind == 0:
            reqs.append((build_request("GET", "/plaintext"), HELLO))
        elif kind == 1:
            reqs.append((build_request("GET", "/json"), JSON_HELLO))
        elif kind == 2:
            reqs.append((build_request("GET", "/users/%d" % i), b'{"id":"%d"}' % i))
        else:
            body = b"echo-%d-" % i + bytes(rng.randrange(256) for _ in range(rng.randrange(64)))
            reqs.append((build_request("POST", "/echo", body=body), body))
    return reqs


def test_100_pipelined_one_write(srv):
    rng = random.Random(1)
    reqs = mixed_requests(100, rng)
    with Conn(srv.port) as c:
        c.send(b"".join(r for r, _ in reqs))
        for i, (_, want) in enumerate(reqs):
            r = c.read_response()
            check_eq((r.status, r.body), (200, want), "pipelined response %d" % i)
        # the connection is still usable afterwards, and nothing extra was sent
        check_eq(c.buf, b"", "extra bytes after 100 responses")
        check_eq(c.request("GET", "/plaintext").body, HELLO, "request after the batch")


def test_pipelined_repeat_batches(srv):
    rng = random.Random(2)
    with Conn(srv.port) as c:
        for batch in range(5):
            reqs = mixed_requests(40, rng)
            c.send(b"".join(r for r, _ in reqs))
            for i, (_, want) in enumerate(reqs):
                r = c.read_response()
                check_eq((r.status, r.body), (200, want), "batch %d response %d" % (batch, i))


def check_concurrent(r, what):
    check_eq(r.status, 200, what + " status")
    rid = r.header("X-Request-ID")
    check(rid is not None and rid.isdigit(), what + " X-Request-ID %r" % rid)
    n = int(rid)
    want = b"Request %d: DB=db_data_%d, API=api_response_%d, File=file_content_%d" % (n, n, n, n)
    check_eq(r.body, want, what + " body")
    return n


def test_parked_request_keeps_order(srv):
    seq = ["/concurrent", "/plaintext", "/json", "/concurrent", "/concurrent", "/users/9",
           "/plaintext", "/concurrent", "/json"]
    with Conn(srv.port) as c:
        t0 = time.monotonic()
        c.send(b"".join(build_request("GET", p) for p in seq))
        ids = []
        for i, p in enumerate(seq):
            r = c.read_response()
            what = "response %d (%s)" % (i, p)
            if p == "/concurrent":
                ids.append(check_concurrent(r, what))
            elif p == "/plaintext":
                check_eq((r.status, r.body), (200, HELLO), what)
            elif p == "/json":
                check_eq((r.status, r.body), (200, JSON_HELLO), what)
            else:
                check_eq((r.status, r.body), (200, b'{"id":"9"}'), what)
        elapsed = time.monotonic() - t0
        check(len(set(ids)) == len(ids), "duplicate X-Request-ID %r" % ids)
        # the /concurrent handlers sleep 18 ms in total each
        check(elapsed >= 0.018, "parked handlers did not sleep (%.3fs)" % elapsed)


def test_trickle_byte_by_byte(srv):
    req = build_request("GET", "/users/trickle", headers=[("X-Padding", "abc def"),
                                                          ("Accept", "*/*")])
    with Conn(srv.port) as c:
        for b in req:
            c.send(bytes([b]))
            time.sleep(0.001)
        r = c.read_response()
        check_eq((r.status, r.body), (200, b'{"id":"trickle"}'), "trickled GET")
        body = b"0123456789abcdef"
        req = build_request("POST", "/echo", body=body)
        for b in req:
            c.send(bytes([b]))
            time.sleep(0.001)
        r = c.read_response()
        check_eq((r.status, r.body), (200, body), "trickled POST")


def test_trickle_chunked_body(srv):
    body = (b"5\r\nhello\r\n" b"1;ext=v\r\n \r\n" b"5\r\nworld\r\n" b"0\r\nX-T: 1\r\n\r\n")
    req = build_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")]) + body
    with Conn(srv.port) as c:
        for b in req:
            c.send(bytes([b]))
            time.sleep(0.001)
        r = c.read_response()
        check_eq((r.status, r.body), (200, b"hello world"), "trickled chunked POST")


def test_split_two_writes_every_point(srv):
    """Every split point of a GET head, on one keep-alive connection."""
    req = build_request("GET", "/users/split?q=1", headers=[("Accept", "*/*"),
                                                            ("User-Agent", "tern-test")])
    with Conn(srv.port) as c:
        for cut in range(1, len(req)):
            c.send(req[:cut])
            time.sleep(0.003)   # let the server see the first part on its own
            c.send(req[cut:])
            r = c.read_response()
            check_eq((r.status, r.body), (200, b'{"id":"split"}'), "split at %d" % cut)


def test_split_post_sample(srv):
    """A sample of split points across head and body (Content-Length and chunked)."""
    rng = random.Random(3)
    body = bytes(rng.randrange(256) for _ in range(300))
    cl_req = build_request("POST", "/echo", body=body)
    ch_body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (body[:100], body[100:101],
                                                              body[101:]))
    ch_req = build_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")]) + \
        ch_body + b"0\r\n\r\n"
    with Conn(srv.port) as c:
        for name, req in (("content-length", cl_req), ("chunked", ch_req)):
            # every point near the head/body boundary and chunk lines, plus random ones
            hb = req.index(b"\r\n\r\n")
            points = set(range(max(1, hb - 6), min(len(req), hb + 12)))
            points |= set(rng.sample(range(1, len(req)), 40))
            for cut in sorted(points):
                c.send(req[:cut])
                time.sleep(0.003)
                c.send(req[cut:])
                r = c.read_response()
                check_eq((r.status, r.body), (200, body), "%s split at %d" % (name, cut))


def test_pipeline_split_across_requests(srv):
    """Ten pipelined requests sent in random-sized pieces: boundaries fall anywhere."""
    rng = random.Random(4)
    reqs = mixed_requests(10, rng)
    data = b"".join(r for r, _ in reqs)
    with Conn(srv.port) as c:
        for rep in range(5):
            i = 0
            while i < len(data):
                n = rng.randrange(1, 200)
                c.send(data[i:i + n])
                i += n
                time.sleep(0.001)
            for k, (_, want) in enumerate(reqs):
                r = c.read_response()
                check_eq((r.status, r.body), (200, want), "rep %d response %d" % (rep, k))


def test_2000_pipelined_beyond_buffers(srv):
    """~80 KB of pipelined requests (more than any single read buffer) while a reader
    thread drains ~300 KB of responses."""
    import threading
    rng = random.Random(5)
    reqs = mixed_requests(2000, rng)
    data = b"".join(r for r, _ in reqs)
    with Conn(srv.port, timeout=30) as c:
        t = threading.Thread(target=c.sock.sendall, args=(data,), daemon=True)
        t.start()
        for i, (_, want) in enumerate(reqs):
            r = c.read_response()
            check_eq((r.status, r.body), (200, want), "pipelined response %d" % i)
        t.join(10)


if __name__ == "__main__":
    harness.main(globals())
