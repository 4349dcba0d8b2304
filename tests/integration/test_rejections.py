"""Every rejection in the demo spec, each on its own raw socket: right status,
Connection: close, the server closes, the body never echoes the request, and a keep-alive
connection opened before the bad request keeps working after it."""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, check, check_eq, media_type  # noqa: E402

HELLO = b"Hello, World!"
MARK = b"zqmarker"          # put in every bad request; must never come back
H = b"Host: localhost\r\nX-Mark: zqmarker\r\n"


def hdrs(n, size=10):
    return b"".join(b"X-H%d: %s\r\n" % (i, b"v" * size) for i in range(n))


# (name, request bytes, expected status)
CASES = [
    # -- 400: malformed syntax
    ("garbage_line", b"zqmarker\r\n\r\n", 400),
    ("no_target", b"GET HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("double_space", b"GET  /zqmarker HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("request_line_extra", b"GET /zqmarker HTTP/1.1 extra\r\n" + H + b"\r\n", 400),
    ("bad_version_syntax", b"GET /zqmarker HTTX/1.1\r\n" + H + b"\r\n", 400),
    ("header_no_colon", b"GET /zqmarker HTTP/1.1\r\n" + H + b"NoColonHere\r\n\r\n", 400),
    ("empty_header_name", b"GET /zqmarker HTTP/1.1\r\n" + H + b": v\r\n\r\n", 400),
    ("bad_header_name_char", b"GET /zqmarker HTTP/1.1\r\n" + H + b"X(a): v\r\n\r\n", 400),
    ("target_not_origin_form", b"GET zqmarker HTTP/1.1\r\n" + H + b"\r\n", 400),
    # -- 400: framing smuggling vectors
    ("cl_and_te", b"POST /echo HTTP/1.1\r\n" + H +
     b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("te_and_cl", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n", 400),
    ("dup_cl_differ", b"POST /echo HTTP/1.1\r\n" + H +
     b"Content-Length: 3\r\nContent-Length: 5\r\n\r\nabcde", 400),
    ("dup_cl_same", b"POST /echo HTTP/1.1\r\n" + H +
     b"Content-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
    ("cl_list", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 3, 3\r\n\r\nabc", 400),
    ("cl_plus", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: +3\r\n\r\nabc", 400),
    ("cl_minus", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: -1\r\n\r\n", 400),
    ("cl_nondigit", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 3a\r\n\r\nabc", 400),
    ("cl_hex", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 0x3\r\n\r\nabc", 400),
    ("cl_empty", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: \r\n\r\n", 400),
    ("cl_inner_space", b"POST /echo HTTP/1.1\r\n" + H + b"Content-Length: 1 2\r\n\r\n", 400),
    ("cl_overflow", b"POST /echo HTTP/1.1\r\n" + H +
     b"Content-Length: 99999999999999999999999999\r\n\r\n", 400),
    ("cl_overflow_2p64", b"POST /echo HTTP/1.1\r\n" + H +
     b"Content-Length: 18446744073709551617\r\n\r\n", 400),
    # -- 400: header syntax
    ("obs_fold_space", b"GET /zqmarker HTTP/1.1\r\n" + H + b"X-A: a\r\n folded\r\n\r\n", 400),
    ("obs_fold_tab", b"GET /zqmarker HTTP/1.1\r\n" + H + b"X-A: a\r\n\tfolded\r\n\r\n", 400),
    ("ws_before_colon", b"GET /zqmarker HTTP/1.1\r\n" + H + b"X-A : v\r\n\r\n", 400),
    ("ws_before_colon_host", b"GET /zqmarker HTTP/1.1\r\nHost : x\r\n\r\n", 400),
    ("ws_before_first_header", b"GET /zqmarker HTTP/1.1\r\n Host: x\r\n\r\n", 400),
    ("bare_cr_in_value", b"GET /zqmarker HTTP/1.1\r\n" + H + b"X-A: a\rb\r\n\r\n", 400),
    ("bare_cr_line_end", b"GET /zqmarker HTTP/1.1\r" + H + b"\r\n", 400),
    ("nul_in_value", b"GET /zqmarker HTTP/1.1\r\n" + H + b"X-A: a\x00b\r\n\r\n", 400),
    ("ctl_in_value", b"GET /zqmarker HTTP/1.1\r\n" + H + b"X-A: a\x01b\r\n\r\n", 400),
    ("del_in_value", b"GET /zqmarker HTTP/1.1\r\n" + H + b"X-A: a\x7fb\r\n\r\n", 400),
    ("nul_in_target", b"GET /zq\x00marker HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("ctl_in_target", b"GET /zq\x01marker HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("nul_in_method", b"G\x00T /zqmarker HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("nul_in_name", b"GET /zqmarker HTTP/1.1\r\n" + H + b"X-\x00A: v\r\n\r\n", 400),
    # -- 400: Host
    ("no_host_11", b"GET /zqmarker HTTP/1.1\r\nX-Mark: zqmarker\r\n\r\n", 400),
    ("two_hosts", b"GET /zqmarker HTTP/1.1\r\n" + H + b"Host: other\r\n\r\n", 400),
    # -- 400: chunk sizes
    ("chunk_size_nonhex", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\nzz\r\nzqmarker\r\n0\r\n\r\n", 400),
    ("chunk_size_negative", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n-1\r\nzqmarker\r\n0\r\n\r\n", 400),
    ("chunk_size_overflow", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n10000000000000008\r\nzqmarker\r\n0\r\n\r\n", 400),
    ("chunk_size_empty", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n\r\nzqmarker\r\n0\r\n\r\n", 400),
    ("chunk_missing_crlf", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked\r\n\r\n3\r\nabcXX0\r\n\r\n", 400),
    # -- 400: path traversal / encoded NUL
    ("dotdot_above_root", b"GET /../zqmarker HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("dotdot_nested_above_root", b"GET /a/../../zqmarker HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("dotdot_encoded", b"GET /%2e%2e/zqmarker HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("encoded_nul", b"GET /users/zq%00marker HTTP/1.1\r\n" + H + b"\r\n", 400),
    # -- size limits
    ("target_over_8k", b"GET /" + b"a" * 8200 + b"zqmarker HTTP/1.1\r\n" + H + b"\r\n", 414),
    ("head_over_16k", b"GET /zqmarker HTTP/1.1\r\n" + H + hdrs(20, 1000) + b"\r\n", 431),
    ("one_header_over_16k", b"GET /zqmarker HTTP/1.1\r\n" + H + b"X-Big: " + b"b" * 17000 +
     b"\r\n\r\n", 431),
    ("over_100_headers", b"GET /zqmarker HTTP/1.1\r\n" + H + hdrs(99) + b"\r\n", 431),
    ("many_headers", b"GET /zqmarker HTTP/1.1\r\n" + H + hdrs(500) + b"\r\n", 431),
    # -- codings, versions, methods
    ("te_gzip_chunked", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 501),
    ("te_unknown", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: x-zqmarker, chunked\r\n\r\n0\r\n\r\n", 501),
    ("http_2_0", b"GET /zqmarker HTTP/2.0\r\n" + H + b"\r\n", 505),
    # RFC 9112 §6.3: chunked not final, or a TE list split over two fields: 400, close
    ("te_gzip_only", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: gzip\r\n\r\nzqmarker", 400),
    ("te_chunked_gzip", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n", 400),
    ("te_two_fields", b"POST /echo HTTP/1.1\r\n" + H +
     b"Transfer-Encoding: gzip\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
    ("expect_other", b"POST /echo HTTP/1.1\r\n" + H +
     b"Expect: zqmarker\r\nContent-Length: 1\r\n\r\nx", 417),
    ("connect", b"CONNECT localhost:80 HTTP/1.1\r\n" + H + b"\r\n", 400),
    ("http_0_9_style_version", b"GET /zqmarker HTTP/0.9\r\n" + H + b"\r\n", 505),
    ("unknown_method", b"BREW /zqmarker HTTP/1.1\r\n" + H + b"\r\n", 501),
]


def check_rejection(srv, name, data, want):
    with Conn(srv.port) as keep:
        # a keep-alive connection opened (and used) before the bad request
        check_eq(keep.request("GET", "/json").status, 200, name + ": keep-alive conn before")
        with Conn(srv.port) as c:
            try:
                c.send(data)
            except (BrokenPipeError, ConnectionResetError) as e:
                raise harness.TestFailure("%s: server reset while we sent (%s)" % (name, e))
            try:
                r = c.read_response()
            except harness.Closed as e:
                raise harness.TestFailure("%s: closed without a response (%s)" % (name, e))
            check_eq(r.status, want, name + " status (body %r)" % r.body[:100])
            check(r.has_token("Connection", "close"),
                  "%s: no Connection: close in %r" % (name, r.headers))
            harness.check_common_headers(r, name)
            check_eq(r.header("Content-Length"), str(len(r.body)), name + " Content-Length")
            check_eq(media_type(r), "text/plain", name + " Content-Type")
            check(r.body.startswith(b"%d" % want), "%s: body %r does not start with the status"
                  % (name, r.body[:80]))
            check(MARK not in r.body and b"aaaaaaaa" not in r.body and b"vvvvv" not in r.body,
                  "%s: body echoes the request: %r" % (name, r.body[:200]))
            check(len(r.body) < 512, "%s: body too long (%d)" % (name, len(r.body)))
            got = c.wait_closed(2.0)
            check_eq(got, "closed", name + ": server closes after the rejection (buffered %r)"
                     % c.buf[:100])
        check(srv.alive(), name + ": server died")
        check_eq(keep.request("GET", "/plaintext").body, HELLO, name + ": keep-alive conn after")


def make_test(name, data, want):
    def t(srv):
        check_rejection(srv, name, data, want)
    t.__name__ = "test_" + name
    return t


for _name, _data, _want in CASES:
    globals()["test_" + _name] = make_test(_name, _data, _want)


def test_limits_accept_at_boundary(srv):
    """Just inside each limit is accepted: 8 KiB target, 100 headers, 16 KiB head."""
    with Conn(srv.port) as c:
        path = b"/users/" + b"i" * (8192 - len(b"/users/"))
        c.send(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response()
        check_eq(r.status, 200, "8192-byte target")
        check_eq(len(r.body), len(b'{"id":""}') + 8185, "8192-byte target body length")
        c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n" + hdrs(99) + b"\r\n")
        check_eq(c.read_response().status, 200, "100 header fields")
        head = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n"
        pad = 16 * 1024 - len(head) - len(b"X-Pad: \r\n\r\n") - 64
        c.send(head + b"X-Pad: " + b"p" * pad + b"\r\n\r\n")
        check_eq(c.read_response().status, 200, "head just under 16 KiB")


def test_limits_reject_just_over(srv):
    """Just over: 8193-byte target -> 414; 101 header fields -> 431."""
    with Conn(srv.port) as c:
        path = b"/users/" + b"i" * (8193 - len(b"/users/"))
        c.send(b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n")
        check_eq(c.read_response().status, 414, "8193-byte target")
    with Conn(srv.port) as c:
        c.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n" + hdrs(100) + b"\r\n")
        check_eq(c.read_response().status, 431, "101 header fields")


def test_rejection_after_good_pipelined(srv):
    """Good requests before a bad one in the same write are answered first, in order."""
    with Conn(srv.port) as c:
        c.send(harness.build_request("GET", "/plaintext") + harness.build_request("GET", "/json")
               + b"GET /x HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n"
               + harness.build_request("GET", "/plaintext"))
        check_eq(c.read_response().body, HELLO, "first")
        check_eq(c.read_response().status, 200, "second")
        r = c.read_response()
        check_eq(r.status, 400, "third (two Host)")
        check_eq(c.wait_closed(2.0), "closed", "nothing answered after the rejection")


def test_http10_without_host_is_fine(srv):
    with Conn(srv.port) as c:
        c.send(b"GET /plaintext HTTP/1.0\r\n\r\n")
        check_eq(c.read_response().status, 200, "HTTP/1.0 without Host")


def test_http_1_2_served_as_1_1(srv):
    # RFC 9110 §2.5: a higher minor version of HTTP/1 is answered as HTTP/1.1
    with Conn(srv.port) as c:
        c.send(b"GET /plaintext HTTP/1.2\r\nHost: localhost\r\n\r\n")
        r = c.read_response()
        check_eq(r.status, 200, "HTTP/1.2 status")
        check_eq(r.body, HELLO, "HTTP/1.2 body")
        check_eq(c.request("GET", "/plaintext").status, 200, "kept alive after HTTP/1.2")


def test_stalled_head_and_body_time_out(srv):
    """Slowloris shapes: a head that never completes, one trickled forever, and a body that
    stops arriving. The config defaults are header_timeout 10 s and body_timeout 10 s
    (answered 408): each connection must get a 408 or a close within ~14 s."""
    import time
    stalled_head = Conn(srv.port)
    stalled_head.send(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n")
    trickle = Conn(srv.port)
    trickle.send(b"GET /plaintext HTTP/1.1\r\n")
    stalled_body = Conn(srv.port)
    stalled_body.send(harness.build_request("POST", "/echo", headers=[
        ("Content-Length", "100")]) + b"0123456789")
    keep = Conn(srv.port)
    check_eq(keep.request("GET", "/json").status, 200, "keep-alive conn before")
    t0 = time.monotonic()
    pending = {"stalled head": stalled_head, "trickled head": trickle,
               "stalled body": stalled_body}
    done = {}
    n = 0
    while pending and time.monotonic() - t0 < 14:
        time.sleep(0.5)
        n += 1
        try:
            trickle.send(b"X-%d: y\r\n" % n)   # one header line every 0.5 s, never ends
        except OSError:
            pass
        for name, c in list(pending.items()):
            st = c.wait_closed(0.01)
            if st == "timeout":
                continue
            if st == "data":
                try:
                    r = c.read_response()
                except harness.Closed as e:
                    raise harness.TestFailure("%s: partial response %s" % (name, e))
                check_eq(r.status, 408, name + " status")
                check(r.has_token("Connection", "close"), name + " Connection: close")
                st = c.wait_closed(2.0)
                check_eq(st, "closed", name + " closed after 408")
            done[name] = time.monotonic() - t0
            del pending[name]
    for c in (stalled_head, trickle, stalled_body):
        c.close()
    check(not pending, "still open after %.1fs: %s" % (time.monotonic() - t0, sorted(pending)))
    print("    closed after: " + ", ".join("%s %.1fs" % kv for kv in sorted(done.items())))
    for name, t in done.items():
        check(t > 8.0, "%s closed after only %.1fs (timeout is 10 s)" % (name, t))
    check_eq(keep.request("GET", "/plaintext").body, HELLO, "keep-alive conn after")
    keep.close()


if __name__ == "__main__":
    harness.main(globals())
