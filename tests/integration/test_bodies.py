"""Request bodies through POST /echo: sizes, Content-Length and chunked framing,
Expect: 100-continue, the 16 MiB limit and clients that give up half-way."""
import os
import random
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, build_request, check, check_eq  # noqa: E402

MAX_BODY = 16 << 20
HELLO = b"Hello, World!"


def rand_bytes(n, seed):
    return random.Random(seed).randbytes(n)


def echo(c, body, ct=None):
    headers = [] if ct is None else [("Content-Type", ct)]
    c.send(build_request("POST", "/echo", headers=headers, body=body))
    return c.read_response()


def check_echo(r, body, what):
    check_eq(r.status, 200, what + " status")
    check_eq(r.header("Content-Length"), str(len(body)), what + " Content-Length")
    if r.body != body:
        i = next((k for k in range(min(len(r.body), len(body))) if r.body[k] != body[k]),
                 min(len(r.body), len(body)))
        raise harness.TestFailure("%s: body differs at byte %d (got %d bytes, want %d)"
                                  % (what, i, len(r.body), len(body)))


def test_sizes_content_length(srv):
    with Conn(srv.port) as c:
        for n in (0, 1, 2, 100, 4095, 4096, 4097, 65536, 1 << 20):
            body = rand_bytes(n, n)
            r = echo(c, body, "application/x-test")
            check_echo(r, body, "%d-byte body" % n)
            check_eq(r.header("Content-Type"), "application/x-test", "%d-byte Content-Type" % n)
        r = echo(c, b"abc")
        check_eq(r.header("Content-Type"), "application/octet-stream", "default Content-Type")


def test_post_without_length_is_empty(srv):
    # RFC 9112 6.3: a request with neither Content-Length nor Transfer-Encoding has no body.
    with Conn(srv.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\n\r\n" + build_request("GET", "/plaintext"))
        r = c.read_response()
        check_echo(r, b"", "POST without framing")
        check_eq(c.read_response().body, HELLO, "pipelined GET after empty POST")


def test_body_then_pipelined_request(srv):
    body = rand_bytes(70000, 7)
    with Conn(srv.port) as c:
        c.send(build_request("POST", "/echo", body=body) + build_request("GET", "/plaintext") +
               build_request("POST", "/echo", body=b"") + build_request("GET", "/json"))
        check_echo(c.read_response(), body, "first echo")
        check_eq(c.read_response().body, HELLO, "GET after body")
        check_echo(c.read_response(), b"", "empty echo")
        check_eq(c.read_response().status, 200, "last GET")


def test_exactly_max_body(srv):
    body = rand_bytes(MAX_BODY, 16)
    with Conn(srv.port, timeout=60) as c:
        check_echo(echo(c, body), body, "16 MiB body")


def chunked_encode(body, rng, trailers=(), ext=False):
    out = []
    i = 0
    while i < len(body):
        n = min(len(body) - i, rng.choice((1, 2, 7, 100, 1000, 4096, 8191, 40000, 100000)))
        size = b"%x" % n if rng.random() < 0.5 else b"%X" % n
        if ext and rng.random() < 0.2:
            size += b';name=value;flag'
        out.append(size + b"\r\n" + body[i:i + n] + b"\r\n")
        i += n
    out.append(b"0\r\n" + b"".join(b"%s: %s\r\n" % t for t in trailers) + b"\r\n")
    return b"".join(out)


def test_chunked_1mb_random_chunks_with_trailers(srv):
    rng = random.Random(11)
    body = rand_bytes(1 << 20, 11)
    enc = chunked_encode(body, rng, trailers=((b"X-Checksum", b"abc"), (b"X-Other", b"1")))
    with Conn(srv.port, timeout=30) as c:
        c.send(build_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked"),
                                                       ("Content-Type", "x/y")]) + enc)
        r = c.read_response()
        check_echo(r, body, "chunked 1 MiB")
        check_eq(r.header("Content-Type"), "x/y", "chunked Content-Type")
        check(r.header("Transfer-Encoding") is None, "response must not be chunked")
        # the connection stays in sync after the trailers
        check_eq(c.request("GET", "/plaintext").body, HELLO, "GET after chunked body")


def test_chunked_small_cases(srv):
    rng = random.Random(12)
    with Conn(srv.port) as c:
        cases = [
            (b"0\r\n\r\n", b""),                                  # empty
            (b"1\r\nA\r\n0\r\n\r\n", b"A"),
            (b"000003\r\nabc\r\n0\r\n\r\n", b"abc"),               # leading zeros
            (b"3;a=b\r\nabc\r\n0;last\r\n\r\n", b"abc"),          # extensions ignored
            (b"3\r\nabc\r\n0\r\nT1: a\r\nT2: b\r\n\r\n", b"abc"),   # trailers
        ]
        for enc, want in cases:
            c.send(build_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")])
                   + enc)
            check_echo(c.read_response(), want, "chunked %r" % enc)
        body = rand_bytes(5000, 12)
        enc = chunked_encode(body, rng, ext=True)
        c.send(build_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")]) + enc)
        check_echo(c.read_response(), body, "chunked with extensions")


def test_expect_100_continue(srv):
    body = rand_bytes(200000, 100)
    with Conn(srv.port) as c:
        c.send(build_request("POST", "/echo", headers=[("Expect", "100-continue"),
                                                       ("Content-Length", str(len(body)))]))
        r = c.read_response(allow_interim=True)
        check_eq((r.version, r.status), ("HTTP/1.1", 100), "interim response")
        check_eq(r.raw_head.split(b"\r\n")[0][:12], b"HTTP/1.1 100", "interim status line")
        c.send(body)
        check_echo(c.read_response(), body, "body after 100 Continue")
        # chunked + expect, then a plain request on the same connection
        c.send(build_request("POST", "/echo", headers=[("Expect", "100-continue"),
                                                       ("Transfer-Encoding", "chunked")]))
        r = c.read_response(allow_interim=True)
        check_eq(r.status, 100, "interim response (chunked)")
        c.send(b"4\r\nabcd\r\n0\r\n\r\n")
        check_echo(c.read_response(), b"abcd", "chunked after 100 Continue")
        check_eq(c.request("GET", "/plaintext").body, HELLO, "GET after expect")


def test_expect_100_with_zero_length(srv):
    # Nothing to wait for: a final response, and no dangling interim one after it.
    with Conn(srv.port) as c:
        c.send(build_request("POST", "/echo", headers=[("Expect", "100-continue"),
                                                       ("Content-Length", "0")]))
        r = c.read_response(allow_interim=True)
        if r.status == 100:
            r = c.read_response()
        check_echo(r, b"", "expect with empty body")
        check_eq(c.request("GET", "/plaintext").body, HELLO, "GET after")


def check_413_and_close(c, what):
    r = c.read_response()
    check_eq(r.status, 413, what + " status")
    check(r.has_token("Connection", "close"), what + " lacks Connection: close: %r" % r.headers)
    check(r.body.startswith(b"413"), what + " body %r" % r.body)
    check_eq(c.wait_closed(2.0), "closed", what + " connection close")


def test_content_length_over_limit_413(srv):
    with Conn(srv.port) as keep:
        check_eq(keep.request("GET", "/json").status, 200, "parallel conn before")
        for n in (MAX_BODY + 1, 1 << 40):
            with Conn(srv.port) as c:
                # only the head: the server must answer from Content-Length alone
                c.send(build_request("POST", "/echo", headers=[("Content-Length", str(n))]))
                check_413_and_close(c, "Content-Length %d" % n)
        with Conn(srv.port) as c:
            c.send(build_request("POST", "/echo", headers=[("Content-Length", str(MAX_BODY + 1)),
                                                           ("Expect", "100-continue")]))
            r = c.read_response(allow_interim=True)
            check_eq(r.status, 413, "no 100 Continue for an oversized body")
        check_eq(keep.request("GET", "/plaintext").body, HELLO, "parallel conn after 413")


def test_chunked_over_limit_413(srv):
    """A chunked body that grows past 16 MiB: 413 and close, even while we are still
    sending (the server must not reset the connection under its own response)."""
    with Conn(srv.port, timeout=30) as c:
        c.send(build_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")]))
        chunk = b"%x\r\n" % 65536 + bytes(65536) + b"\r\n"
        total = (MAX_BODY // 65536) + 64
        errors = []

        def sender():
            try:
                for _ in range(total):
                    c.sock.sendall(chunk)
            except OSError as e:   # expected once the server closes
                errors.append(e)
        t = threading.Thread(target=sender, daemon=True)
        t.start()
        check_413_and_close(c, "chunked > 16 MiB")
        t.join(30)


def test_partial_body_then_close(srv):
    with Conn(srv.port) as keep:
        check_eq(keep.request("GET", "/json").status, 200, "parallel conn before")
        for i in range(20):
            c = Conn(srv.port)
            if i % 2:
                c.send(build_request("POST", "/echo", headers=[("Content-Length", "100000")])
                       + bytes(1000 * i))
            else:
                c.send(build_request("POST", "/echo", headers=[("Transfer-Encoding", "chunked")])
                       + b"1000\r\n" + bytes(100 * i))
            if i % 4 == 3:   # hard close (RST) instead of FIN
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
            c.close()
        time.sleep(0.1)
        check(srv.alive(), "server died")
        check_eq(keep.request("GET", "/plaintext").body, HELLO, "parallel conn after aborts")
        with Conn(srv.port) as c:
            body = rand_bytes(1000, 5)
            check_echo(echo(c, body), body, "new conn after aborts")


def test_half_close_after_request(srv):
    # Client sends a full request then shuts its write side: the response still arrives.
    with Conn(srv.port) as c:
        c.send(build_request("POST", "/echo", body=b"bye"))
        c.sock.shutdown(socket.SHUT_WR)
        check_echo(c.read_response(), b"bye", "echo after SHUT_WR")
        check_eq(c.wait_closed(2.0), "closed", "server closes after client FIN")


def test_body_on_get_route_is_consumed(srv):
    """A body on a route that ignores it must still be read past, not parsed as the next
    request (that would be request smuggling)."""
    smuggled = b"GET /users/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"
    with Conn(srv.port) as c:
        c.send(build_request("GET", "/plaintext", body=smuggled) +
               build_request("GET", "/json"))
        check_eq(c.read_response().body, HELLO, "GET with Content-Length body")
        r = c.read_response()
        check_eq(r.body, b'{"message":"Hello, World!"}', "next request after the body")
        enc = b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
        c.send(build_request("GET", "/plaintext", headers=[("Transfer-Encoding", "chunked")])
               + enc + build_request("GET", "/json"))
        check_eq(c.read_response().body, HELLO, "GET with chunked body")
        check_eq(c.read_response().body, b'{"message":"Hello, World!"}', "next after chunked")
        check_eq(c.wait_closed(0.3), "timeout", "no extra (smuggled) response")


def test_large_echo_slow_reader(srv):
    """An 8 MiB response to a client that reads slowly: the server must cope with partial
    writes and resume on EPOLLOUT, byte-exact."""
    body = rand_bytes(8 << 20, 8)
    with Conn(srv.port, timeout=60) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        c.send(build_request("POST", "/echo", body=body))
        got = b""
        deadline = time.monotonic() + 50
        while b"\r\n\r\n" not in got or len(got) < got.index(b"\r\n\r\n") + 4 + len(body):
            check(time.monotonic() < deadline, "slow read did not finish")
            chunk = c.sock.recv(65536)
            check(chunk != b"", "closed after %d bytes" % len(got))
            got += chunk
            if len(got) < 2 << 20:
                time.sleep(0.002)     # slow for the first 2 MiB, then drain
        c.buf = got
        check_echo(c.read_response(), body, "8 MiB echo, slow reader")
        check_eq(c.request("GET", "/plaintext").body, HELLO, "GET after")


def test_pipelined_large_echoes_full_duplex(srv):
    """Several 1 MiB echoes pipelined while we keep sending: the server's writes fill our
    receive buffer; reading on another thread keeps both directions moving."""
    bodies = [rand_bytes(1 << 20, 30 + i) for i in range(6)]
    data = b"".join(build_request("POST", "/echo", body=b) for b in bodies)
    with Conn(srv.port, timeout=60) as c:
        t = threading.Thread(target=c.sock.sendall, args=(data,), daemon=True)
        t.start()
        for i, b in enumerate(bodies):
            check_echo(c.read_response(), b, "pipelined 1 MiB echo %d" % i)
        t.join(10)


if __name__ == "__main__":
    harness.main(globals())
