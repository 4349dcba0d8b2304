"""The demo's data endpoints over real sockets: POST /form, GET /session (signed
cookie), POST /upload (multipart streamed: small files, hostile filenames, limits,
and a 1 GB upload whose server RSS, sampled from /proc/PID/status, stays bounded)."""
import hashlib
import json
import os
import shutil
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

UPLOAD_TMP = tempfile.mkdtemp(prefix="tern-test-data-")
BOUNDARY = "----ternBoundary7MA4YWxkTrZu0gW"
# Server memory may grow this much during a 1 GB upload (sanitizer builds
# included): the body goes through 64 KiB buffers, never held whole.
RSS_BOUND_KB = 64 * 1024


def set_tmpdir():
    os.environ["TMPDIR"] = UPLOAD_TMP


def multipart(parts):
    """parts: (name, filename or None, bytes)."""
    out = []
    for name, filename, data in parts:
        disp = 'form-data; name="%s"' % name
        if filename is not None:
            disp += '; filename="%s"' % filename
        out.append(("--%s\r\nContent-Disposition: %s\r\n\r\n" % (BOUNDARY, disp)).encode() + data + b"\r\n")
    return b"".join(out) + ("--%s--\r\n" % BOUNDARY).encode()


def test_form(srv):
    with harness.Conn(srv.port) as c:
        r = c.request("POST", "/form", {"Content-Type": "application/x-www-form-urlencoded"},
                      b"a=1&b=h%C3%A9llo+w&a=2&empty")
        check_eq(r.status, 200, "status")
        check_eq(json.loads(r.body), {"fields": [["a", "1"], ["b", "h\u00e9llo w"], ["a", "2"], ["empty", ""]]},
                 "fields")
        check_eq(r.header("Content-Type"), "application/json", "type")
        r = c.request("POST", "/form", {"Content-Type": "application/x-www-form-urlencoded"}, b"a=%zz")
        check_eq(r.status, 400, "bad escape")
        r = c.request("POST", "/form", {"Content-Type": "text/plain"}, b"a=1")
        check_eq(r.status, 415, "not a form")


def test_session(srv):
    with harness.Conn(srv.port) as c:
        cookie = None
        for want in (1, 2, 3):
            r = c.request("GET", "/session", {"Cookie": cookie} if cookie else None)
            check_eq(json.loads(r.body)["count"], want, "count")
            set_cookie = r.header("Set-Cookie")
            check(set_cookie.startswith("session=%d." % want), set_cookie)
            for attr in ("Path=/", "HttpOnly", "SameSite=Lax", "Max-Age=3600"):
                check(attr in set_cookie, "%s in %s" % (attr, set_cookie))
            cookie = set_cookie.split(";")[0]
        # a forged counter: the signature no longer matches, the count restarts
        forged = "session=99." + cookie.split(".", 1)[1]
        r = c.request("GET", "/session", {"Cookie": forged})
        check_eq(json.loads(r.body), {"count": 1, "signed": False}, "forged cookie")


def test_upload_small(srv):
    data = os.urandom(200000)
    body = multipart([("note", None, "caf\u00e9".encode()), ("f", "../../etc/passwd", data),
                      ("g", "..\\..\\win.ini", b"tiny"), ("h", "\x01..", b"")])
    with harness.Conn(srv.port) as c:
        r = c.request("POST", "/upload", {"Content-Type": "multipart/form-data; boundary=" + BOUNDARY}, body)
        check_eq(r.status, 200, "status %r" % r.body[:200])
        doc = json.loads(r.body)
        check_eq(doc["fields"], {"note": "caf\u00e9"}, "fields")
        files = [(f["field"], f["filename"], f["size"], f["sha256"]) for f in doc["files"]]
        check_eq(files, [("f", "passwd", len(data), hashlib.sha256(data).hexdigest()),
                         ("g", "win.ini", 4, hashlib.sha256(b"tiny").hexdigest()),
                         ("h", "upload", 0, hashlib.sha256(b"").hexdigest())], "files")
        # the large one was kept in the demo's folder, never under its client path
        stored = os.listdir(os.path.join(UPLOAD_TMP, "tern-demo-uploads-%d" % srv.pid))
        check(any(n.endswith("-passwd") for n in stored), "stored: %r" % stored)
        # the connection serves the next request
        check_eq(c.request("GET", "/json").body, b'{"message":"Hello, World!"}', "after upload")


def test_upload_chunked_pipelined(srv):
    """A chunked upload in small chunks (delimiters split across them) with the next
    request pipelined right behind it in the same write: both answered in order."""
    data = os.urandom(70000)
    body = multipart([("f", "c.bin", data)])
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 997]), body[i:i + 997])
                      for i in range(0, len(body), 997)) + b"0\r\n\r\n"
    with harness.Conn(srv.port) as c:
        c.send(("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=%s\r\n"
                "Transfer-Encoding: chunked\r\n\r\n" % BOUNDARY).encode() + chunks +
               b"GET /json HTTP/1.1\r\nHost: x\r\n\r\n")
        r = c.read_response("POST")
        check_eq(r.status, 200, "chunked upload %r" % r.body[:200])
        f = json.loads(r.body)["files"][0]
        check_eq((f["size"], f["sha256"]), (len(data), hashlib.sha256(data).hexdigest()), "file")
        check_eq(c.read_response().body, b'{"message":"Hello, World!"}', "pipelined request")


def test_upload_limits_and_unread_body(srv):
    with harness.Conn(srv.port) as c:
        # not multipart: the handler reads nothing; the small body is drained
        # and the next request on the connection is served
        r = c.request("POST", "/upload", {"Content-Type": "text/plain"}, b"x" * 1000)
        check_eq(r.status, 415, "not multipart")
        check_eq(c.request("GET", "/json").status, 200, "next request after an unread body")
        # truncated: no close delimiter
        r = c.request("POST", "/upload", {"Content-Type": "multipart/form-data; boundary=" + BOUNDARY},
                      multipart([("a", None, b"1")])[:-10])
        check_eq(r.status, 400, "truncated")
    with harness.Conn(srv.port) as c:
        # announced over the limit (2 GiB): 413 before a byte of it is read
        c.send(("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=%s\r\n"
                "Content-Length: %d\r\n\r\n" % (BOUNDARY, 3 << 30)).encode())
        r = c.read_response("POST")
        check_eq(r.status, 413, "too large")


def test_upload_trickle_cut_off(srv):
    """Each byte within the body timeout, but far under min_body_rate (1 KiB/s):
    the streamed read fails once the grace period (body_timeout) has passed."""
    with harness.serving(srv.binary, ["--body-timeout", "500"], workers=1) as s2:
        with harness.Conn(s2.port, timeout=10) as c:
            c.send(("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=%s\r\n"
                    "Content-Length: 100000\r\n\r\n--%s\r\n" % (BOUNDARY, BOUNDARY)).encode())
            t0 = time.monotonic()
            status = None
            for _ in range(40):
                time.sleep(0.2)
                try:
                    c.send(b"x")
                except OSError:
                    break
                if c.wait_closed(0.01) != "timeout":
                    break
            r = c.read_response("POST")
            status = r.status
            took = time.monotonic() - t0
        check_eq(status, 408, "trickled upload")
        check(took < 4, "cut off after %.1f s" % took)


def test_upload_1gb_bounded_memory(srv):
    size = 1 << 30
    block = os.urandom(1 << 20)
    head = ("--%s\r\nContent-Disposition: form-data; name=\"big\"; filename=\"big.bin\"\r\n\r\n"
            % BOUNDARY).encode()
    tail = ("\r\n--%s--\r\n" % BOUNDARY).encode()
    peak = [0]
    done = threading.Event()
    base = harness.proc_status_kb(srv.pid, "VmRSS")

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], harness.proc_status_kb(srv.pid, "VmRSS"))
            time.sleep(0.05)

    t = threading.Thread(target=sample)
    t.start()
    sha = hashlib.sha256()
    t0 = time.monotonic()
    try:
        with harness.Conn(srv.port, timeout=300) as c:
            c.send(("POST /upload HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=%s\r\n"
                    "Content-Length: %d\r\n\r\n" % (BOUNDARY, len(head) + size + len(tail))).encode() + head)
            for _ in range(size // len(block)):
                c.send(block)
                sha.update(block)
            c.send(tail)
            r = c.read_response("POST")
    finally:
        done.set()
        t.join()
    took = time.monotonic() - t0
    check_eq(r.status, 200, "status %r" % r.body[:300])
    f = json.loads(r.body)["files"][0]
    check_eq((f["size"], f["sha256"]), (size, sha.hexdigest()), "size and digest")
    growth = peak[0] - base
    print("    1 GiB upload: %.1f s (%.0f MB/s), server RSS %d -> peak %d KiB (+%d KiB, bound %d)"
          % (took, size / took / 1e6, base, peak[0], growth, RSS_BOUND_KB))
    check(growth < RSS_BOUND_KB, "RSS grew %d KiB during a 1 GiB upload" % growth)
    shutil.rmtree(os.path.join(UPLOAD_TMP, "tern-demo-uploads-%d" % srv.pid), ignore_errors=True)


if __name__ == "__main__":
    try:
        harness.main(globals(), before_start=set_tmpdir)
    finally:
        shutil.rmtree(UPLOAD_TMP, ignore_errors=True)
