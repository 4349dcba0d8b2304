"""Hostile input: error responses never reflect request bytes (every error status the
server produces, with a marker in the target, the headers or the body), encoded and
dot-segment paths (decoded once, then resolved, never above the root), and control bytes
in header values.

The server runs with --header-timeout 1000 --body-timeout 1000 so the 408 case is quick.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, check, check_eq  # noqa: E402

SERVER_ARGS = ["--port", "0", "--workers", "2", "--host", "127.0.0.1",
               "--header-timeout", "1000", "--body-timeout", "1000"]
# HTML-ish on purpose: reflected, it would be an XSS vector in a browser
MARK = b"zq<b>mk'\"x"
MARK_T = b"zq%3Cb%3Emk"   # the same in a target, where only visible ASCII is allowed
MARKS = (b"zq<b>mk", b"zq%3cb%3emk", b"zqmk", b"zq")
H = b"Host: zq-host-zq\r\nX-Mark: " + MARK + b"\r\nUser-Agent: zq-agent\r\n"

# (name, request bytes, status)
ERRORS = [
    ("400_nul_in_header", b"GET /" + MARK_T + b" HTTP/1.1\r\n" + H + b"X-A: a\x00" + MARK +
     b"\r\n\r\n", 400),
    ("400_two_hosts", b"GET /" + MARK_T + b" HTTP/1.1\r\n" + H + b"Host: zq2\r\n\r\n", 400),
    ("400_bad_path", b"GET /users/..%2f..%2f" + MARK_T + b" HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("400_bad_chunk", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: chunked\r\n\r\n" +
     MARK + b"\r\n\r\n", 400),
    ("400_cl_te", b"POST /echo HTTP/1.1\r\n" + H +
     b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n" + MARK, 400),
    ("404_unknown_path", b"GET /" + MARK_T + b"?q=" + MARK_T + b" HTTP/1.1\r\n" + H + b"\r\n",
     404),
    ("405_wrong_method", b"DELETE /json?" + MARK_T + b" HTTP/1.1\r\n" + H + b"\r\n", 405),
    ("413_body_too_large", b"POST /echo?" + MARK_T + b" HTTP/1.1\r\n" + H +
     b"Content-Length: 17000000\r\n\r\n" + MARK, 413),
    ("414_target_too_long", b"GET /" + MARK_T * 800 + b" HTTP/1.1\r\n" + H + b"\r\n", 414),
    ("431_too_many_headers", b"GET /" + MARK_T + b" HTTP/1.1\r\n" + H +
     b"".join(b"X-%d: %s\r\n" % (i, MARK) for i in range(120)) + b"\r\n", 431),
    ("501_unknown_method", b"ZQMK /" + MARK_T + b" HTTP/1.1\r\n" + H + b"\r\n", 501),
    ("501_unknown_coding", b"POST /echo HTTP/1.1\r\n" + H + b"Transfer-Encoding: x-" +
     b"zqmk, chunked\r\n\r\n0\r\n\r\n", 501),
    ("505_version", b"GET /" + MARK_T + b" HTTP/2.0\r\n" + H + b"\r\n", 505),
]


def no_echo(r, raw_len, what):
    low_head, low_body = r.raw_head.lower(), r.body.lower()
    for m in MARKS:
        check(m not in low_body, "%s: body reflects %r: %r" % (what, m, r.body[:200]))
        check(m not in low_head, "%s: headers reflect %r: %r" % (what, m, r.raw_head[:300]))
    check(len(r.body) < 256, "%s: %d-byte error body for a %d-byte request"
          % (what, len(r.body), raw_len))


def make_error_test(name, data, status):
    def t(srv):
        with Conn(srv.port) as c:
            c.send(data)
            r = c.read_response()
            check_eq(r.status, status, name + " status (body %r)" % r.body[:100])
            check(r.body.startswith(b"%d" % status), "%s: body %r" % (name, r.body[:80]))
            no_echo(r, len(data), name)
    t.__name__ = "test_no_echo_" + name
    return t


for _n, _d, _s in ERRORS:
    globals()["test_no_echo_" + _n] = make_error_test(_n, _d, _s)


def test_no_echo_408_header_timeout(srv):
    with Conn(srv.port) as c:
        c.send(b"GET /" + MARK_T + b" HTTP/1.1\r\n" + H)   # no blank line: never completes
        t0 = time.monotonic()
        r = c.read_response()
        check_eq(r.status, 408, "incomplete head")
        check(0.9 <= time.monotonic() - t0 < 3.0, "408 after %.2f s (header timeout 1 s)"
              % (time.monotonic() - t0))
        no_echo(r, 0, "408")


def test_no_echo_408_body_timeout(srv):
    with Conn(srv.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 100\r\n\r\n" + MARK)
        r = c.read_response()
        check_eq(r.status, 408, "stalled body")
        no_echo(r, 0, "408 body")


# ---------------------------------------------------------------------------- paths

PATHS = [
    # (target, status, body or None)
    (b"/users/..%2f..%2fetc", 400, None),
    (b"/users/..%2F..%2Fetc%2Fpasswd", 400, None),
    (b"/../x", 400, None),
    (b"/%2e%2e/x", 400, None),
    (b"/%2E%2E/x", 400, None),
    (b"/a/b/../../../x", 400, None),
    (b"/.%2e/x", 400, None),
    (b"/users/%00", 400, None),
    (b"/a/../json", 200, b'{"message":"Hello, World!"}'),
    (b"/./json", 200, b'{"message":"Hello, World!"}'),
    (b"/users/x/../../json", 200, b'{"message":"Hello, World!"}'),
    (b"/users/..%2fjson", 200, b'{"message":"Hello, World!"}'),
    (b"/users/%41", 200, b'{"id":"A"}'),
    # decoded exactly once: %2541 is the three characters "%41", not "A"
    (b"/users/%2541", 200, b'{"id":"%41"}'),
    (b"/users/%22%3Cx%3E", 200, b'{"id":"\\"<x>"}'),
]


def test_encoded_and_dot_segment_paths(srv):
    bad = []
    for target, status, body in PATHS:
        with Conn(srv.port) as c:
            c.send(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\n\r\n")
            r = c.read_response()
            got = (r.status, r.body if body is not None else None)
            if got != (status, body):
                bad.append((target, got, (status, body)))
            if status == 400:
                check_eq(c.wait_closed(2), "closed", "%r: connection after 400" % target)
    check(not bad, "paths answered wrongly (target, got, want): %r" % bad)


def test_control_bytes_in_header_values(srv):
    cases = [b"a\x00b", b"a\rb", b"\x00", b"a\r", b"a\x0bb", b"a\x1bb", b"a\x7fb"]
    bad = []
    for v in cases:
        with Conn(srv.port) as c:
            c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-A: " + v + b"\r\n\r\n")
            try:
                r = c.read_response()
                status = r.status
            except harness.Closed:
                status = "closed"
            if status != 400:
                bad.append((v, status))
            elif c.wait_closed(2) != "closed":
                bad.append((v, "left open"))
    check(not bad, "header values with control bytes not refused with 400: %r" % bad)
    # and a header name holding them
    with Conn(srv.port) as c:
        c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\nX-\x00A: v\r\n\r\n")
        check_eq(c.read_response().status, 400, "NUL in a header name")


def test_server_survives_everything(srv):
    with Conn(srv.port) as c:
        r = c.request("GET", "/plaintext")
        check_eq((r.status, r.body), (200, b"Hello, World!"), "after the hostile input")


if __name__ == "__main__":
    harness.main(globals(), server_args=SERVER_ARGS)
