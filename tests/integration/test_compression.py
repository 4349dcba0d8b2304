"""Response compression (on in the demo): gzip and br negotiated from
Accept-Encoding with q-values (RFC 9110 §12.5.3), identity;q=0, Vary, the
1 KiB threshold, compressible types only, streamed bodies compressed per
write and decoding to the same bytes, and no compression for HEAD, 304,
Range answers or bodies that are not worth it."""
import ctypes
import gzip
import json
import os
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness
from harness import check, check_eq


def brotli_decode(data):
    lib = ctypes.CDLL("libbrotlidec.so.1")
    out = ctypes.create_string_buffer(16 << 20)
    n = ctypes.c_size_t(len(out))
    ok = lib.BrotliDecoderDecompress(ctypes.c_size_t(len(data)), data, ctypes.byref(n), out)
    check(ok == 1, "brotli decode failed")
    return out.raw[:n.value]


def decode(resp):
    enc = resp.header("Content-Encoding")
    if enc == "gzip":
        return gzip.decompress(resp.body)
    if enc == "br":
        return brotli_decode(resp.body)
    check(enc is None, "unexpected Content-Encoding %r" % enc)
    return resp.body


def echo(srv, body, ae, ctype="text/plain; charset=utf-8"):
    with harness.Conn(srv.port) as c:
        h = {"Content-Type": ctype}
        if ae is not None:
            h["Accept-Encoding"] = ae
        return c.request("POST", "/echo", h, body)


TEXT = b"".join(b"line %d: the quick brown fox jumps over the lazy dog\n" % i for i in range(200))


def test_negotiation(srv):
    for ae, want in [("gzip", "gzip"), ("br", "br"), ("gzip, br", "br"), ("gzip, deflate, br", "br"),
                     ("br;q=0.5, gzip;q=0.9", "gzip"), ("br;q=1, gzip;q=0.9", "br"), ("*", "br"),
                     ("*;q=0.5, br;q=0", "gzip"), ("identity", None), ("gzip;q=0, br;q=0", None),
                     ("identity;q=0, gzip;q=0.2", "gzip"), ("deflate", None), (None, None), ("", None),
                     ("x-gzip", "gzip"), ("GZIP", "gzip")]:
        r = echo(srv, TEXT, ae)
        check_eq(r.status, 200, str(ae))
        check_eq(r.header("Content-Encoding"), want, "coding for %r" % ae)
        check_eq(r.header("Vary"), "Accept-Encoding", "Vary for %r" % ae)
        check_eq(decode(r), TEXT, "decoded body for %r" % ae)
        if want:
            check(len(r.body) < len(TEXT) // 3, "compressed %d of %d" % (len(r.body), len(TEXT)))
            check_eq(r.header("Content-Length"), str(len(r.body)), "Content-Length is the compressed size")


def test_threshold_and_types(srv):
    small = TEXT[:1023]
    r = echo(srv, small, "gzip")
    check_eq(r.header("Content-Encoding"), None, "1023 bytes: under the threshold")
    check_eq(r.body, small, "small body")
    r = echo(srv, TEXT[:1024], "gzip")
    check_eq(r.header("Content-Encoding"), "gzip", "1024 bytes: compressed")
    for ctype, want in [("application/json", "gzip"), ("application/problem+json", "gzip"),
                        ("image/svg+xml", "gzip"), ("text/css", "gzip"),
                        ("application/octet-stream", None), ("image/png", None)]:
        r = echo(srv, TEXT, "gzip", ctype)
        check_eq(r.header("Content-Encoding"), want, ctype)
        check_eq(decode(r), TEXT, ctype + " body")
    # tiny answers stay as they are
    with harness.Conn(srv.port) as c:
        for path in ["/plaintext", "/json"]:
            r = c.request("GET", path, {"Accept-Encoding": "gzip, br"})
            check_eq(r.header("Content-Encoding"), None, path)
    # /stats is JSON over 1 KiB
    with harness.Conn(srv.port) as c:
        r = c.request("GET", "/stats", {"Accept-Encoding": "gzip"})
    check_eq(r.header("Content-Encoding"), "gzip", "/stats")
    json.loads(decode(r))


def test_not_for_head_or_encoded(srv):
    with harness.Conn(srv.port) as c:
        r = c.request("HEAD", "/stats", {"Accept-Encoding": "gzip"})
    check_eq(r.header("Content-Encoding"), None, "HEAD")
    check_eq(r.header("Content-Length") is not None, True, "HEAD length")


def test_streamed(srv):
    with harness.Conn(srv.port) as c:
        plain = c.request("GET", "/stream?mb=2&text=1").body
        check_eq(len(plain), 2 << 20, "identity stream")
        for ae in ["gzip", "br"]:
            r = c.request("GET", "/stream?mb=2&text=1", {"Accept-Encoding": ae})
            check_eq(r.header("Content-Encoding"), ae, "stream " + ae)
            check_eq(r.header("Transfer-Encoding"), "chunked", "stream framing " + ae)
            check_eq(r.header("Vary"), "Accept-Encoding", "stream Vary")
            check(len(r.body) < len(plain) // 10, "stream compressed %d" % len(r.body))
            check_eq(decode(r), plain, "stream decodes to the same bytes (%s)" % ae)
        r = c.request("GET", "/stream?mb=1", {"Accept-Encoding": "gzip"})
        check_eq(r.header("Content-Encoding"), None, "octet-stream is not compressed")
        check_eq(len(r.body), 1 << 20, "octet-stream length")
    out = subprocess.run(["curl", "-s", "--compressed", "http://127.0.0.1:%d/stream?mb=1&text=1" % srv.port],
                         stdout=subprocess.PIPE, timeout=60).stdout
    check_eq(out, plain[:1 << 20], "curl --compressed stream")


def test_streamed_flushes_per_write(srv):
    # every write is flushed (Z_SYNC_FLUSH / BROTLI_OPERATION_FLUSH): the
    # chunks decode incrementally, so a live stream is readable as it comes
    with harness.Conn(srv.port) as c:
        c.send(harness.build_request("GET", "/stream?mb=1&text=1", {"Accept-Encoding": "gzip"}))
        head = c._read_until(b"\r\n\r\n")
        check(b"Content-Encoding: gzip" in head, "head %r" % head)
        line = c._read_until(b"\r\n")
        first = c._read_exact(int(line.strip(), 16))
        d = zlib.decompressobj(16 + 15)
        out = d.decompress(first)
        check_eq(len(out), 65536, "the first chunk decodes to the first write")


def test_static_files_range_304_untouched(srv):
    """Files are sent as they are on disk (sendfile) or as their .br/.gz
    sibling: never compressed on the fly, so Range and 304 answers carry no
    coding the client did not pick through a sibling."""
    static = os.path.join(harness.REPO, "examples", "demo", "static")
    with harness.serving(srv.binary, ["--static", static]) as s2:
        with harness.Conn(s2.port) as c:
            r = c.request("GET", "/static/index.html", {"Accept-Encoding": "gzip"})
            check_eq((r.status, r.header("Content-Encoding")), (200, None), "file without sibling")
            check_eq(r.header("Vary"), "Accept-Encoding", "Vary on a text file")
            etag = r.header("ETag")
            r = c.request("GET", "/static/index.html", {"Accept-Encoding": "gzip", "Range": "bytes=0-9"})
            check_eq((r.status, r.header("Content-Encoding"), len(r.body)), (206, None, 10), "Range")
            r = c.request("GET", "/static/index.html", {"Accept-Encoding": "gzip", "If-None-Match": etag})
            check_eq((r.status, r.header("Content-Encoding")), (304, None), "304")
            r = c.request("HEAD", "/static/data/sample.json", {"Accept-Encoding": "br"})
            check_eq(r.header("Content-Encoding"), "br", "HEAD names the sibling it would send")


if __name__ == "__main__":
    harness.main(globals())
