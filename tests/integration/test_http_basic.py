"""Every demo endpoint over http.client, curl and raw sockets: status, headers, bodies,
keep-alive, HEAD/OPTIONS/404/405, HTTP/1.0 and Connection handling."""
import http.client
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, check, check_eq, check_common_headers, media_type  # noqa: E402

HELLO = b"Hello, World!"
JSON_HELLO = b'{"message":"Hello, World!"}'

# (method, path, status, media type, body) for the plain GET routes
GET_ROUTES = [
    ("/", "text/plain", HELLO),
    ("/plaintext", "text/plain", HELLO),
    ("/json", "application/json", JSON_HELLO),
    ("/users/42", "application/json", b'{"id":"42"}'),
]


def hc(srv):
    return http.client.HTTPConnection(srv.host, srv.port, timeout=harness.IO_TIMEOUT)


def hc_get(conn, method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {})
    r = conn.getresponse()
    data = r.read()
    return r, data


def check_hc_common(r, data, what):
    check_eq(r.getheader("Server"), "tern", what + " Server")
    date = r.getheader("Date")
    check(date is not None and harness.IMF_FIXDATE_RE.match(date), "%s Date %r" % (what, date))
    cl = r.getheader("Content-Length")
    check(cl is not None, "%s has no Content-Length (headers %r)" % (what, r.getheaders()))
    check_eq(int(cl), len(data), what + " Content-Length vs body")
    check(r.getheader("Transfer-Encoding") is None, what + " must not be chunked")


def test_get_routes_http_client(srv):
    conn = hc(srv)
    for path, mt, body in GET_ROUTES:
        r, data = hc_get(conn, "GET", path)
        check_eq(r.status, 200, "GET %s status" % path)
        check_eq(data, body, "GET %s body" % path)
        check_eq(r.getheader("Content-Type", "").split(";")[0].strip(), mt,
                 "GET %s Content-Type" % path)
        check_hc_common(r, data, "GET " + path)
    conn.close()


def test_concurrent_endpoint(srv):
    conn = hc(srv)
    ids = []
    for _ in range(3):
        r, data = hc_get(conn, "GET", "/concurrent")
        check_eq(r.status, 200, "/concurrent status")
        check_hc_common(r, data, "/concurrent")
        check_eq(r.getheader("Content-Type", "").split(";")[0].strip(), "text/plain",
                 "/concurrent Content-Type")
        rid = r.getheader("X-Request-ID")
        check(rid is not None and rid.isdigit() and int(rid) >= 1, "X-Request-ID %r" % rid)
        n = int(rid)
        want = "Request %d: DB=db_data_%d, API=api_response_%d, File=file_content_%d" % (
            n, n, n, n)
        check_eq(data.decode(), want, "/concurrent body")
        pt = r.getheader("X-Process-Time")
        check(pt is not None and pt.isdigit() and int(pt) >= 18000,
              "X-Process-Time %r (must be measured us >= 18000)" % pt)
        check(int(pt) < 5_000_000, "X-Process-Time %r absurdly large" % pt)
        ids.append(n)
    # one global counter: sequential requests get increasing ids
    check(ids[0] < ids[1] < ids[2], "X-Request-ID not increasing: %r" % ids)
    conn.close()


def test_echo_http_client(srv):
    conn = hc(srv)
    for ct, body in ((None, b"hello echo"), ("text/x-custom; charset=latin1", b"\x00\xff\r\n"),
                     ("application/json", b'{"a":1}')):
        headers = {} if ct is None else {"Content-Type": ct}
        r, data = hc_get(conn, "POST", "/echo", body=body, headers=headers)
        check_eq(r.status, 200, "POST /echo status")
        check_eq(data, body, "POST /echo body")
        check_eq(r.getheader("Content-Type"), ct or "application/octet-stream",
                 "POST /echo Content-Type")
        check_hc_common(r, data, "POST /echo")
    conn.close()


def curl(srv, *args):
    cmd = ["curl", "-sS", "-i", "--max-time", "10"] + list(args)
    p = subprocess.run(cmd, capture_output=True, timeout=20)
    check(p.returncode == 0, "curl %r failed rc=%d: %r" % (args, p.returncode, p.stderr))
    out = p.stdout
    # curl -i prints every response head (100 Continue too); take the last one
    while True:
        head, sep, rest = out.partition(b"\r\n\r\n")
        check(sep, "curl output has no header end: %r" % out[:300])
        resp = harness.parse_head(head + sep)
        if 100 <= resp.status < 200:
            out = rest
            continue
        resp.body = rest
        return resp


def url(srv, path):
    return "http://%s:%d%s" % (srv.host, srv.port, path)


def test_curl_routes(srv):
    for path, mt, body in GET_ROUTES:
        r = curl(srv, url(srv, path))
        check_eq(r.status, 200, "curl %s status" % path)
        check_eq(r.body, body, "curl %s body" % path)
        check_eq(media_type(r), mt, "curl %s Content-Type" % path)
        check_common_headers(r, "curl " + path)
        check_eq(r.header("Content-Length"), str(len(body)), "curl %s Content-Length" % path)
    r = curl(srv, url(srv, "/concurrent"))
    check_eq(r.status, 200, "curl /concurrent")
    check(r.body.startswith(b"Request "), "curl /concurrent body %r" % r.body)
    r = curl(srv, "-X", "POST", "-H", "Content-Type: text/plain", "--data-binary", "abc\ndef",
             url(srv, "/echo"))
    check_eq((r.status, r.body, r.header("Content-Type")), (200, b"abc\ndef", "text/plain"),
             "curl POST /echo")
    r = curl(srv, "-I", url(srv, "/json"))
    check_eq((r.status, r.header("Content-Length"), r.body), (200, str(len(JSON_HELLO)), b""),
             "curl -I /json")
    r = curl(srv, "-X", "OPTIONS", url(srv, "/plaintext"))
    check_eq(r.status, 204, "curl OPTIONS status")
    r = curl(srv, url(srv, "/does-not-exist"))
    check_eq(r.status, 404, "curl 404")
    check_common_headers(r, "curl 404")
    r = curl(srv, "-X", "DELETE", url(srv, "/json"))
    check_eq(r.status, 405, "curl 405")


def test_curl_keepalive_reuse(srv):
    # curl with two URLs reuses the connection; -w reports how many it opened.
    p = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-o", "/dev/null", "-w",
                        "%{num_connects}\n", url(srv, "/plaintext"), url(srv, "/json")],
                       capture_output=True, timeout=20)
    check_eq(p.returncode, 0, "curl rc (stderr %r)" % p.stderr)
    check_eq(p.stdout.split(), [b"1", b"0"], "curl num_connects per transfer")


def test_keepalive_same_socket(srv):
    conn = hc(srv)
    conn.connect()
    sock = conn.sock
    local = sock.getsockname()
    for i in range(10):
        path = ["/plaintext", "/json", "/users/%d" % i][i % 3]
        r, data = hc_get(conn, "GET", path)
        check_eq(r.status, 200, "request %d status" % i)
        check(r.getheader("Connection", "").lower() != "close", "server asked to close")
        check(conn.sock is sock and sock.getsockname() == local,
              "http.client reconnected at request %d" % i)
    conn.close()


def test_head(srv):
    with Conn(srv.port) as c:
        for path, mt, body in GET_ROUTES:
            # HEAD and a GET in one write: if HEAD carried a body, the GET response would
            # not parse right after the HEAD's headers.
            c.send(harness.build_request("HEAD", path) + harness.build_request("GET", path))
            h = c.read_response("HEAD")
            g = c.read_response("GET")
            check_eq(h.status, 200, "HEAD %s" % path)
            check_eq(h.header("Content-Length"), str(len(body)), "HEAD %s Content-Length" % path)
            check_eq(media_type(h), mt, "HEAD %s Content-Type" % path)
            check_common_headers(h, "HEAD " + path)
            check_eq((g.status, g.body), (200, body), "GET after HEAD %s" % path)
        c.send(harness.build_request("HEAD", "/concurrent") + harness.build_request(
            "GET", "/plaintext"))
        h = c.read_response("HEAD")
        check_eq(h.status, 200, "HEAD /concurrent")
        check(int(h.header("Content-Length") or 0) > 40, "HEAD /concurrent CL %r" % h.headers)
        check_eq(c.read_response().body, HELLO, "GET after HEAD /concurrent")


def allow_set(resp):
    a = resp.header("Allow")
    check(a is not None, "no Allow header in %r" % resp)
    return {m.strip() for m in a.split(",")}


def test_options(srv):
    with Conn(srv.port) as c:
        for path in ("/", "/plaintext", "/json", "/users/7", "/concurrent"):
            c.send(harness.build_request("OPTIONS", path) + harness.build_request("GET", "/json"))
            r = c.read_response("OPTIONS")
            check_eq(r.status, 204, "OPTIONS %s status" % path)
            check_eq(allow_set(r), {"GET", "HEAD", "OPTIONS"}, "OPTIONS %s Allow" % path)
            check_common_headers(r, "OPTIONS " + path)
            # RFC 9110 8.6: no Content-Length in a 204 (tolerate 0), and no body bytes:
            # the pipelined GET must parse right after the 204 head.
            check(r.header("Content-Length") in (None, "0"), "204 with CL %r"
                  % r.header("Content-Length"))
            check_eq(c.read_response().body, JSON_HELLO, "GET after OPTIONS %s" % path)
        r = c.request("OPTIONS", "/echo")
        check_eq(r.status, 204, "OPTIONS /echo status")
        check_eq(allow_set(r), {"POST", "OPTIONS"}, "OPTIONS /echo Allow")


def test_404(srv):
    with Conn(srv.port) as c:
        for path in ("/nope", "/plaintext/extra", "/jsonx", "/users", "/users/1/2", "/echo/x"):
            r = c.request("GET", path + "?tern-marker=1")
            check_eq(r.status, 404, "GET %s" % path)
            check_common_headers(r, "404")
            check_eq(r.header("Content-Length"), str(len(r.body)), "404 Content-Length")
            check(b"tern-marker" not in r.body, "404 body echoes the request: %r" % r.body)
        # a 404 is an ordinary response: the connection stays usable
        check_eq(c.request("GET", "/plaintext").body, HELLO, "GET after 404s")


def test_405(srv):
    with Conn(srv.port) as c:
        cases = [("POST", "/plaintext", {"GET", "HEAD", "OPTIONS"}),
                 ("DELETE", "/json", {"GET", "HEAD", "OPTIONS"}),
                 ("PUT", "/users/3", {"GET", "HEAD", "OPTIONS"}),
                 ("GET", "/echo", {"POST", "OPTIONS"}),
                 ("PATCH", "/concurrent", {"GET", "HEAD", "OPTIONS"})]
        for method, path, allow in cases:
            body = b"x" if method in ("POST", "PUT", "PATCH") else None
            r = c.request(method, path, body=body)
            check_eq(r.status, 405, "%s %s status" % (method, path))
            check_eq(allow_set(r), allow, "%s %s Allow" % (method, path))
            check_common_headers(r, "405")
        check_eq(c.request("GET", "/plaintext").body, HELLO, "GET after 405s")


def test_users_json_escaping(srv):
    cases = [
        ("/users/42", "42"),
        ("/users/a%22b", 'a"b'),                 # quote must be escaped
        ("/users/back%5Cslash", "back\\slash"),  # backslash
        ("/users/%01ctl%1F", "\x01ctl\x1f"),      # control characters -> \u00XX
        ("/users/tab%09nl%0A", "tab\tnl\n"),
        ("/users/caf%C3%A9", "caf\u00e9"),       # UTF-8 passes through
        ("/users/%3Cscript%3E", "<script>"),
    ]
    with Conn(srv.port) as c:
        for path, want in cases:
            r = c.request("GET", path)
            check_eq(r.status, 200, "GET %s status" % path)
            check_eq(media_type(r), "application/json", "GET %s Content-Type" % path)
            try:
                obj = json.loads(r.body.decode("utf-8"))
            except ValueError as e:
                raise harness.TestFailure("GET %s: invalid JSON %r (%s)" % (path, r.body, e))
            check_eq(obj, {"id": want}, "GET %s JSON" % path)
            # raw control bytes are not allowed inside JSON strings
            check(all(b >= 0x20 for b in r.body), "raw control byte in %r" % r.body)


def test_http10(srv):
    with Conn(srv.port) as c:
        c.send(b"GET /plaintext HTTP/1.0\r\n\r\n")
        r = c.read_response()
        check_eq((r.status, r.body), (200, HELLO), "HTTP/1.0 GET")
        check(r.version in ("HTTP/1.1", "HTTP/1.0"), "version %r" % r.version)
        check(not r.has_token("Connection", "keep-alive"), "1.0 default must not keep alive")
        check_eq(c.wait_closed(2.0), "closed", "HTTP/1.0 without keep-alive: server closes")
    with Conn(srv.port) as c:
        for i in range(3):
            c.send(b"GET /json HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            r = c.read_response()
            check_eq((r.status, r.body), (200, JSON_HELLO), "HTTP/1.0 keep-alive GET %d" % i)
            check(r.has_token("Connection", "keep-alive"),
                  "1.0 keep-alive response lacks Connection: keep-alive: %r" % r.headers)
        c.send(b"GET /json HTTP/1.0\r\nHost: x\r\n\r\n")
        check_eq(c.read_response().status, 200, "last 1.0 request")
        check_eq(c.wait_closed(2.0), "closed", "1.0 without keep-alive closes")


def test_connection_close(srv):
    with Conn(srv.port) as c:
        r = c.request("GET", "/plaintext", headers=[("Connection", "close")])
        check_eq((r.status, r.body), (200, HELLO), "GET with Connection: close")
        check(r.has_token("Connection", "close"), "response lacks Connection: close: %r"
              % r.headers)
        check_eq(c.wait_closed(2.0), "closed", "server closes after Connection: close")
    # Pipelined: requests after the one with Connection: close are not answered.
    with Conn(srv.port) as c:
        c.send(harness.build_request("GET", "/json") +
               harness.build_request("GET", "/plaintext", headers=[("Connection", "close")]) +
               harness.build_request("GET", "/json"))
        check_eq(c.read_response().body, JSON_HELLO, "first pipelined")
        r = c.read_response()
        check(r.has_token("Connection", "close"), "second lacks Connection: close")
        check_eq(c.wait_closed(2.0), "closed", "nothing answered after Connection: close")
    # case-insensitive token inside a list
    with Conn(srv.port) as c:
        r = c.request("GET", "/json", headers=[("Connection", "foo, CLOSE")])
        check(r.has_token("Connection", "close"), "Connection: foo, CLOSE not honored")
        check_eq(c.wait_closed(2.0), "closed", "close after list token")


def test_query_strings(srv):
    with Conn(srv.port) as c:
        for path, body in (("/json?x=1", JSON_HELLO), ("/plaintext?a=b&c", HELLO),
                           ("/?", HELLO), ("/json?x=%2F..%2F&y=/a/b?c", JSON_HELLO),
                           ("/users/5?id=9", b'{"id":"5"}')):
            r = c.request("GET", path)
            check_eq((r.status, r.body), (200, body), "GET %s" % path)
        r = c.request("GET", "/nope?x=/json")
        check_eq(r.status, 404, "query must not be routed")


def test_header_names_case_insensitive(srv):
    with Conn(srv.port) as c:
        c.send(b"POST /echo HTTP/1.1\r\nhOsT: x\r\ncontent-LENGTH: 3\r\n"
               b"CONTENT-type: text/a\r\n\r\nabc")
        r = c.read_response()
        check_eq((r.status, r.body, r.header("Content-Type")), (200, b"abc", "text/a"),
                 "mixed-case header names")


def test_absolute_form_target(srv):
    # RFC 9112 3.2.2: a server MUST accept the absolute form (Host is then ignored).
    with Conn(srv.port) as c:
        r = c.request("GET", "http://localhost/json")
        check_eq((r.status, r.body), (200, JSON_HELLO), "absolute-form GET")
        r = c.request("GET", "http://example.com:80/users/7?x=1")
        check_eq((r.status, r.body), (200, b'{"id":"7"}'), "absolute-form with port/query")


if __name__ == "__main__":
    harness.main(globals())
