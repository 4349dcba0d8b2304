"""Static files: the demo with --static on a copy of examples/demo/static plus
files made here (a 1 MiB random binary, an empty file, symlinks inside and
out of the root, a folder without index), driven by curl and raw sockets:
index, MIME types, HEAD, Range (RFC 9110 §14: single, suffix, several,
unsatisfiable, malformed, If-Range), 304 (If-None-Match wins over
If-Modified-Since, §13.2.2), precompressed siblings by Accept-Encoding,
traversal attempts (dot segments, %2e%2e, %2f, %5c, double encoding, NUL,
symlinks leaving the root), pipelining, a slow reader, and HTTPS."""
import ctypes
import gzip
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness
from harness import check, check_eq

ROOT = tempfile.mkdtemp(prefix="tern-static-test-")
DOCS = os.path.join(ROOT, "docs")
OUTSIDE = os.path.join(ROOT, "outside")
SECRET = b"root:x:0:0:secret outside the root\n"


def setup():
    shutil.copytree(os.path.join(harness.REPO, "examples", "demo", "static"), DOCS)
    os.makedirs(OUTSIDE)
    with open(os.path.join(OUTSIDE, "secret.txt"), "wb") as f:
        f.write(SECRET)
    with open(os.path.join(DOCS, "big.bin"), "wb") as f:
        f.write(os.urandom(1 << 20))
    open(os.path.join(DOCS, "empty.txt"), "wb").close()
    with open(os.path.join(DOCS, "notes.unknownext"), "wb") as f:
        f.write(b"what am I\n")
    os.makedirs(os.path.join(DOCS, "empty-folder"))
    os.symlink(os.path.join(OUTSIDE, "secret.txt"), os.path.join(DOCS, "out-link.txt"))
    os.symlink(OUTSIDE, os.path.join(DOCS, "out-dir"))
    os.symlink("../outside/secret.txt", os.path.join(DOCS, "rel-out-link.txt"))
    os.symlink("css/site.css", os.path.join(DOCS, "in-link.css"))


def local(name):
    with open(os.path.join(DOCS, name), "rb") as f:
        return f.read()


def get(srv, path, headers=None, method="GET"):
    with harness.Conn(srv.port) as c:
        return c.request(method, path, headers)


def curl(*args):
    r = subprocess.run(["curl", "-s", "--path-as-is"] + list(args), stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=60)
    check(r.returncode == 0, "curl %s: rc %d %s" % (args, r.returncode, r.stderr[-300:]))
    return r.stdout


def test_index_and_folders(srv):
    r = get(srv, "/static/")
    check_eq(r.status, 200, "/static/")
    check_eq(r.body, local("index.html"), "index body")
    check_eq(r.header("Content-Type"), "text/html; charset=utf-8", "index type")
    check_eq(get(srv, "/static/index.html").body, r.body, "index.html")
    r = get(srv, "/static/css")
    check_eq(r.status, 301, "folder without slash")
    check_eq(r.header("Location"), "/static/css/", "Location")
    check_eq(get(srv, "/static/sub/").status, 403, "folder without index: no listing")
    check_eq(get(srv, "/static/empty-folder/").status, 403, "empty folder")
    check(b"readme.txt" not in get(srv, "/static/sub/").body, "listing leaked")
    check_eq(get(srv, "/static/nope.html").status, 404, "missing file")
    check_eq(get(srv, "/static/sub/readme.txt").status, 200, "file in a folder")


def test_mime_types(srv):
    for path, want in [("css/site.css", "text/css; charset=utf-8"), ("data/sample.json", "application/json"),
                       ("big.bin", "application/octet-stream"), ("notes.unknownext", "application/octet-stream"),
                       ("data/sample.json.gz", "application/gzip")]:
        r = get(srv, "/static/" + path)
        check_eq(r.status, 200, path)
        check_eq(r.header("Content-Type"), want, path)
        check_eq(r.body, local(path), path + " body")
        check_eq(r.header("Accept-Ranges"), "bytes", path)
        check(r.header("Cache-Control") == "max-age=3600", "Cache-Control %r" % r.header("Cache-Control"))
        harness.check_common_headers(r, path)
    r = get(srv, "/static/empty.txt")
    check_eq((r.status, r.body, r.header("Content-Length")), (200, b"", "0"), "empty file")


def test_head_then_get_on_one_connection(srv):
    with harness.Conn(srv.port) as c:
        r = c.request("HEAD", "/static/big.bin")
        check_eq(r.status, 200, "HEAD")
        check_eq(r.header("Content-Length"), str(1 << 20), "HEAD length")
        check(r.header("ETag"), "HEAD ETag")
        # no body bytes may follow a HEAD answer: the next response parses
        r = c.request("GET", "/static/css/site.css")
        check_eq(r.body, local("css/site.css"), "GET after HEAD")


def test_big_file_intact(srv):
    want = hashlib.sha256(local("big.bin")).hexdigest()
    got = hashlib.sha256(curl("http://127.0.0.1:%d/static/big.bin" % srv.port)).hexdigest()
    check_eq(got, want, "1 MiB sha256 (curl)")
    with harness.Conn(srv.port) as c:
        for _ in range(3):  # keep-alive after a sendfile body
            r = c.request("GET", "/static/big.bin")
            check_eq(hashlib.sha256(r.body).hexdigest(), want, "1 MiB sha256 (keep-alive)")


def test_slow_reader_gets_every_byte(srv):
    s = socket.create_connection(("127.0.0.1", srv.port))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 32768)
    s.sendall(b"GET /static/big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    data = b""
    time.sleep(0.5)  # the server fills the socket and parks
    s.settimeout(10)
    while True:
        b = s.recv(65536)
        if not b:
            break
        data += b
        if len(data) < 100000:
            time.sleep(0.002)
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 200"), "slow reader head %r" % head[:40])
    check_eq(hashlib.sha256(body).hexdigest(), hashlib.sha256(local("big.bin")).hexdigest(), "slow reader body")


def test_pipelined_files(srv):
    with harness.Conn(srv.port) as c:
        c.send(b"".join(harness.build_request("GET", p) for p in
                        ["/static/css/site.css", "/static/big.bin", "/static/index.html", "/plaintext"]))
        check_eq(c.read_response().body, local("css/site.css"), "pipelined 1")
        check_eq(c.read_response().body, local("big.bin"), "pipelined 2")
        check_eq(c.read_response().body, local("index.html"), "pipelined 3")
        check_eq(c.read_response().status, 200, "pipelined 4")


def test_ranges(srv):
    big = local("big.bin")
    size = len(big)
    for rng, start, end in [("bytes=0-9", 0, 9), ("bytes=100-", 100, size - 1), ("bytes=-500", size - 500, size - 1),
                            ("bytes=1000-999999999", 1000, size - 1), ("bytes=0-9,10-19", 0, 19)]:
        r = get(srv, "/static/big.bin", {"Range": rng})
        check_eq(r.status, 206, rng)
        check_eq(r.header("Content-Range"), "bytes %d-%d/%d" % (start, end, size), rng)
        check_eq(r.body, big[start:end + 1], rng + " body")
    # several ranges: the whole file, 200 (a client must accept it, RFC 9110 §14.2)
    r = get(srv, "/static/big.bin", {"Range": "bytes=0-9,100-109"})
    check_eq((r.status, len(r.body)), (200, size), "multiple ranges")
    for rng in ["bytes=%d-" % size, "bytes=%d-%d" % (size + 5, size + 10), "bytes=-0"]:
        r = get(srv, "/static/big.bin", {"Range": rng})
        check_eq(r.status, 416, rng)
        check_eq(r.header("Content-Range"), "bytes */%d" % size, rng)
    for rng in ["bytes=9-0", "bytes=x-y", "pages=1-2", "bytes="]:
        r = get(srv, "/static/big.bin", {"Range": rng})
        check_eq((r.status, len(r.body)), (200, size), "malformed " + rng)
    r = get(srv, "/static/big.bin", {"Range": "bytes=0-9"}, method="HEAD")
    check_eq(r.header("Content-Length"), str(size), "Range ignored for HEAD")
    out = curl("-r", "500-1499", "http://127.0.0.1:%d/static/big.bin" % srv.port)
    check_eq(out, big[500:1500], "curl -r")


def test_if_range(srv):
    r = get(srv, "/static/big.bin")
    etag, lm = r.header("ETag"), r.header("Last-Modified")
    check(etag.startswith('"') and not etag.startswith("W/"), "strong ETag %r" % etag)
    for ir, want in [(etag, 206), ('"other"', 200), ("W/" + etag, 200), (lm, 206),
                     ("Thu, 01 Jan 1970 00:00:00 GMT", 200)]:
        r = get(srv, "/static/big.bin", {"Range": "bytes=0-99", "If-Range": ir})
        check_eq(r.status, want, "If-Range %s" % ir)


def test_not_modified(srv):
    r = get(srv, "/static/css/site.css")
    etag, lm = r.header("ETag"), r.header("Last-Modified")
    harness.IMF_FIXDATE_RE.match(lm) or check(False, "Last-Modified %r" % lm)
    for h in [{"If-None-Match": etag}, {"If-None-Match": '"a", ' + etag}, {"If-None-Match": "W/" + etag},
              {"If-None-Match": "*"}, {"If-Modified-Since": lm},
              {"If-Modified-Since": "Fri, 31 Dec 2100 23:59:59 GMT"}]:
        r = get(srv, "/static/css/site.css", h)
        check_eq(r.status, 304, "304 for %s" % h)
        check_eq(r.body, b"", "304 body")
        check_eq(r.header("ETag"), etag, "304 ETag")
        check(r.header("Content-Length") is None, "304 with Content-Length")
    # If-None-Match wins: a non-matching tag with a fresh date is a 200
    r = get(srv, "/static/css/site.css", {"If-None-Match": '"nope"', "If-Modified-Since": lm})
    check_eq(r.status, 200, "If-None-Match wins over If-Modified-Since")
    r = get(srv, "/static/css/site.css", {"If-Modified-Since": "Thu, 01 Jan 1970 00:00:00 GMT"})
    check_eq(r.status, 200, "modified since 1970")
    r = get(srv, "/static/css/site.css", {"If-Modified-Since": "garbage"})
    check_eq(r.status, 200, "unreadable date ignored")
    # a rewritten file gets a new tag
    p = os.path.join(DOCS, "changing.txt")
    with open(p, "wb") as f:
        f.write(b"one\n")
    e1 = get(srv, "/static/changing.txt").header("ETag")
    time.sleep(0.02)
    with open(p, "wb") as f:
        f.write(b"two, longer\n")
    r = get(srv, "/static/changing.txt", {"If-None-Match": e1})
    check_eq((r.status, r.body), (200, b"two, longer\n"), "changed file")


def brotli_decode(data):
    lib = ctypes.CDLL("libbrotlidec.so.1")
    out = ctypes.create_string_buffer(1 << 22)
    n = ctypes.c_size_t(len(out))
    ok = lib.BrotliDecoderDecompress(ctypes.c_size_t(len(data)), data, ctypes.byref(n), out)
    check(ok == 1, "brotli decode failed")
    return out.raw[:n.value]


def test_precompressed_siblings(srv):
    plain = local("data/sample.json")
    for ae, enc, sibling in [("br", "br", ".br"), ("gzip", "gzip", ".gz"), ("gzip, br", "br", ".br"),
                             ("br;q=0.5, gzip", "gzip", ".gz"), ("br;q=0, gzip;q=0.1", "gzip", ".gz"),
                             ("identity", None, ""), ("gzip;q=0, br;q=0", None, ""), ("deflate", None, "")]:
        r = get(srv, "/static/data/sample.json", {"Accept-Encoding": ae})
        check_eq(r.status, 200, ae)
        check_eq(r.header("Content-Encoding"), enc, "Content-Encoding for %r" % ae)
        check_eq(r.header("Content-Type"), "application/json", "type of the original for %r" % ae)
        check_eq(r.header("Vary"), "Accept-Encoding", "Vary for %r" % ae)
        check_eq(r.body, local("data/sample.json" + sibling), "body for %r" % ae)
    check_eq(gzip.decompress(local("data/sample.json.gz")), plain, "the .gz sibling")
    check_eq(brotli_decode(local("data/sample.json.br")), plain, "the .br sibling")
    r = get(srv, "/static/data/sample.json")
    check_eq((r.header("Content-Encoding"), r.body), (None, plain), "no Accept-Encoding")
    e_plain = r.header("ETag")
    r = get(srv, "/static/data/sample.json", {"Accept-Encoding": "br"})
    check(r.header("ETag") != e_plain, "each representation has its own ETag")
    out = curl("--compressed", "http://127.0.0.1:%d/static/data/sample.json" % srv.port)
    check_eq(out, plain, "curl --compressed")
    # a binary type never looks for siblings
    r = get(srv, "/static/big.bin", {"Accept-Encoding": "gzip, br"})
    check_eq((r.header("Content-Encoding"), r.header("Vary")), (None, None), "binary: no coding, no Vary")


TRAVERSALS = [
    "/static/../../../etc/passwd", "/static/%2e%2e/%2e%2e/%2e%2e/etc/passwd", "/static/%2E%2E/outside/secret.txt",
    "/static/..%2f..%2fetc%2fpasswd", "/static/..%2F..%2Foutside%2Fsecret.txt", "/static/css%2fsite.css",
    "/static/%252e%252e/outside/secret.txt", "/static/%252e%252e%252foutside%252fsecret.txt",
    "/static/..%5c..%5coutside%5csecret.txt", "/static/..\\..\\outside\\secret.txt",
    "/static/index.html%00.txt", "/static/%00", "/static/out-link.txt", "/static/rel-out-link.txt",
    "/static/out-dir/secret.txt", "/static/out-dir/", "/static//etc/passwd", "/static/./../outside/secret.txt",
    "/static/css/../../outside/secret.txt", "/static/.%2e/outside/secret.txt",
]


def test_traversal_refused(srv):
    for path in TRAVERSALS:
        with harness.Conn(srv.port) as c:
            c.send(("GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % path).encode())
            r = c.read_response()
        check(r.status in (400, 403, 404), "%s answered %d" % (path, r.status))
        check(b"root:" not in r.body and b"secret" not in r.body, "%s leaked %r" % (path, r.body[:80]))
    # curl with --path-as-is sends the dots as they are
    out = curl("-o", "/dev/null", "-w", "%{http_code}", "http://127.0.0.1:%d/static/../../etc/passwd" % srv.port)
    check(out in (b"400", b"404"), "curl dots: %r" % out)
    # a symlink that stays inside the root is followed
    r = get(srv, "/static/in-link.css")
    check_eq((r.status, r.body), (200, local("css/site.css")), "symlink inside the root")


def test_methods(srv):
    with harness.Conn(srv.port) as c:
        r = c.request("POST", "/static/index.html", body=b"x")
    check_eq(r.status, 405, "POST to a static file")


def test_offloaded_opens(srv):
    with harness.serving(srv.binary, ["--static", DOCS, "--static-offload"]) as s2:
        with harness.Conn(s2.port) as c:
            check_eq(c.request("GET", "/static/big.bin").body, local("big.bin"), "offloaded open")
            r = c.request("GET", "/static/data/sample.json", {"Accept-Encoding": "br"})
            check_eq((r.header("Content-Encoding"), r.body), ("br", local("data/sample.json.br")), "sibling")
            check_eq(c.request("GET", "/static/out-link.txt").status, 404, "escape, offloaded")
            check_eq(c.request("GET", "/static/sub/").status, 403, "folder, offloaded")
            check_eq(c.request("GET", "/static/css").status, 301, "redirect, offloaded")


def make_cert():
    key, pem = os.path.join(ROOT, "k.pem"), os.path.join(ROOT, "c.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:prime256v1", "-keyout", key, "-out", pem],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60)
    check(r.returncode == 0, "openssl req: %r" % r.stdout[-300:])
    return pem, key


def test_over_tls(srv):
    pem, key = make_cert()
    with harness.serving(srv.binary, ["--static", DOCS, "--tls-cert", pem, "--tls-key", key]) as tls:
        url = "https://localhost:%d/static/" % tls.port
        base = ["--cacert", pem, "--resolve", "localhost:%d:127.0.0.1" % tls.port]
        got = curl(*(base + [url + "big.bin"]))
        check_eq(hashlib.sha256(got).hexdigest(), hashlib.sha256(local("big.bin")).hexdigest(), "1 MiB over TLS")
        check_eq(curl(*(base + ["-r", "10-19", url + "big.bin"])), local("big.bin")[10:20], "Range over TLS")
        check_eq(curl(*(base + [url])), local("index.html"), "index over TLS")


if __name__ == "__main__":
    setup()
    try:
        harness.main(globals(), server_args=["--port", "0", "--workers", "2", "--host", "127.0.0.1",
                                             "--static", DOCS])
    finally:
        shutil.rmtree(ROOT, ignore_errors=True)
