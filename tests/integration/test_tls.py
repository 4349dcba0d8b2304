"""HTTPS: the demo with --tls-cert/--tls-key, driven by curl, Python's ssl and
openssl s_client; certificates made with `openssl req` in a temporary folder:
an ECDSA P-256 pair for "localhost" (the default) and an RSA 2048 pair for
"other.test" (SNI), a CA and a client certificate it signed (mTLS).

Each test starts its own server (harness.serving): exit 0 after SIGTERM and
no sanitizer report are checked for every one."""
import json
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness
from harness import check, check_eq

TMP = tempfile.mkdtemp(prefix="tern-tls-test-")


def run(cmd, **kw):
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=60, **kw)


def path(name):
    return os.path.join(TMP, name)


def make_certs():
    def req(key_args, cn, san, out):
        r = run(["openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=" + cn,
                 "-addext", "subjectAltName=" + san] + key_args +
                ["-keyout", path(out + ".key"), "-out", path(out + ".pem")])
        check(r.returncode == 0, "openssl req %s: %s" % (out, r.stdout[-500:]))
    req(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "localhost",
        "DNS:localhost,IP:127.0.0.1", "ecdsa")
    req(["-newkey", "rsa:2048"], "other.test", "DNS:other.test", "rsa")
    # a second localhost pair, for the reload test
    req(["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"], "localhost",
        "DNS:localhost,IP:127.0.0.1", "ecdsa2")
    # a CA and a client certificate it signed
    req(["-newkey", "rsa:2048", "-addext", "basicConstraints=critical,CA:TRUE"], "tern test CA",
        "DNS:ca.test", "ca")
    r = run(["openssl", "req", "-new", "-nodes", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:P-256", "-subj", "/O=tern/CN=client-1",
             "-keyout", path("client.key"), "-out", path("client.csr")])
    check(r.returncode == 0, "client csr: %s" % r.stdout[-500:])
    r = run(["openssl", "x509", "-req", "-in", path("client.csr"), "-CA", path("ca.pem"),
             "-CAkey", path("ca.key"), "-CAcreateserial", "-days", "2", "-out", path("client.pem")])
    check(r.returncode == 0, "client cert: %s" % r.stdout[-500:])


def tls_args(*extra):
    return ["--tls-cert", path("ecdsa.pem"), "--tls-key", path("ecdsa.key"),
            "--tls-cert", path("rsa.pem"), "--tls-key", path("rsa.key")] + list(extra)


def client_ctx(cafile, cert=None):
    ctx = ssl.create_default_context(cafile=cafile)
    if cert:
        ctx.load_cert_chain(path(cert + ".pem"), path(cert + ".key"))
    return ctx


def tls_connect(port, cafile, name="localhost", cert=None):
    raw = socket.create_connection(("127.0.0.1", port), timeout=10)
    return client_ctx(cafile, cert).wrap_socket(raw, server_hostname=name)


def read_response(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise harness.Closed("closed before a response head: %r" % buf)
        buf += chunk
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    length = 0
    for l in lines[1:]:
        k, _, v = l.partition(":")
        if k.strip().lower() == "content-length":
            length = int(v)
    while len(body) < length:
        chunk = s.recv(65536)
        if not chunk:
            raise harness.Closed("closed in the body")
        body += chunk
    return status, body[:length]


def get(s, target, host="localhost"):
    s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (target, host)).encode())
    return read_response(s)


def https_get(port, target="/plaintext", cafile=None, name="localhost", cert=None):
    with tls_connect(port, cafile or path("ecdsa.pem"), name, cert) as s:
        return get(s, target, name)


def peer_cn(s):
    for rdn in s.getpeercert()["subject"]:
        for k, v in rdn:
            if k == "commonName":
                return v
    return None


def s_client(port, *args, stdin_cmds=b"", wait=1.0):
    """openssl s_client; stdin stays open `wait` seconds (TLS 1.3 tickets come
    after the handshake), then closes."""
    p = subprocess.Popen(["openssl", "s_client", "-connect", "127.0.0.1:%d" % port,
                          "-servername", "localhost"] + list(args),
                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        if stdin_cmds:
            time.sleep(wait / 2)
            p.stdin.write(stdin_cmds)
            p.stdin.flush()
        time.sleep(wait)
        p.stdin.close()
    except BrokenPipeError:
        pass
    out = p.stdout.read()
    p.wait(20)
    return out.decode("utf-8", "replace")


# ---------------------------------------------------------------------------- tests

def test_curl_python_and_sni(binary):
    with harness.serving(binary, tls_args()) as srv:
        r = run(["curl", "-sS", "--cacert", path("ecdsa.pem"),
                 "https://localhost:%d/plaintext" % srv.port])
        check_eq(r.stdout, b"Hello, World!", "curl body")
        # the RSA pair, chosen by SNI
        r = run(["curl", "-sS", "--cacert", path("rsa.pem"), "--resolve",
                 "other.test:%d:127.0.0.1" % srv.port, "https://other.test:%d/json" % srv.port])
        check(r.returncode == 0 and b"Hello" in r.stdout, "curl other.test: %r" % r.stdout)
        with tls_connect(srv.port, path("rsa.pem"), "other.test") as s:
            check_eq(peer_cn(s), "other.test", "SNI other.test")
            check_eq(s.selected_alpn_protocol(), None, "no ALPN asked, none chosen")
            # keep-alive: several requests on one TLS connection
            for _ in range(3):
                check_eq(get(s, "/plaintext"), (200, b"Hello, World!"), "keep-alive response")
        with tls_connect(srv.port, path("ecdsa.pem"), "localhost") as s:
            check_eq(peer_cn(s), "localhost", "SNI localhost")
            check_eq(s.version(), "TLSv1.3", "version")
        # an unknown name gets the default (first) certificate
        ctx = ssl.create_default_context(cafile=path("ecdsa.pem"))
        ctx.check_hostname = False
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.port)),
                             server_hostname="unknown.test") as s:
            check_eq(peer_cn(s), "localhost", "default certificate")
        # a large request body and its echo cross many records
        with tls_connect(srv.port, path("ecdsa.pem")) as s:
            body_in = os.urandom(300000)
            s.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(body_in)
                      + body_in)
            st, echoed = read_response(s)
            check_eq((st, echoed == body_in), (200, True), "echo 300 kB")
        # TLS 1.2, and ALPN
        ctx = client_ctx(path("ecdsa.pem"))
        ctx.maximum_version = ssl.TLSVersion.TLSv1_2
        ctx.set_alpn_protocols(["h2", "http/1.1"])
        with ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.port)),
                             server_hostname="localhost") as s:
            check_eq(s.version(), "TLSv1.2", "TLS 1.2")
            check_eq(s.selected_alpn_protocol(), "http/1.1", "ALPN")
            check_eq(get(s, "/plaintext")[0], 200, "TLS 1.2 request")


def test_openssl_s_client(binary):
    with harness.serving(binary, tls_args()) as srv:
        out = s_client(srv.port, "-alpn", "http/1.1", "-sess_out", path("s13.pem"))
        check("ALPN protocol: http/1.1" in out, "ALPN not negotiated: %s" % out[-1500:])
        check("New, TLSv1.3" in out, "not TLS 1.3: %s" % out[-1500:])
        out = s_client(srv.port, "-sess_in", path("s13.pem"))
        check("Reused, TLSv1.3" in out, "TLS 1.3 session not resumed: %s" % out[-1500:])
        out = s_client(srv.port, "-tls1_2", "-sess_out", path("s12.pem"))
        check("New, TLSv1.2" in out, "TLS 1.2: %s" % out[-1500:])
        out = s_client(srv.port, "-tls1_2", "-sess_in", path("s12.pem"))
        check("Reused, TLSv1.2" in out, "TLS 1.2 session not resumed: %s" % out[-1500:])
        # TLS 1.0 and 1.1 are refused by the server (the client is allowed
        # to offer them: security level 0)
        for v in ("-tls1", "-tls1_1"):
            out = s_client(srv.port, v, "-cipher", "DEFAULT@SECLEVEL=0", wait=0.3)
            check("alert protocol version" in out and "Cipher is (NONE)" in out,
                  "%s accepted? %s" % (v, out[-1500:]))
        # renegotiation refused
        out = s_client(srv.port, "-tls1_2", stdin_cmds=b"R\n")
        check("RENEGOTIATING" in out and "no renegotiation" in out,
              "renegotiation not refused: %s" % out[-1500:])
        check_eq(https_get(srv.port), (200, b"Hello, World!"), "still serving")


def test_plain_http_to_tls_port(binary):
    with harness.serving(binary, tls_args()) as srv:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
            s.sendall(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
            data = b""
            while True:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
        check(data.startswith(b"HTTP/1.1 400 "), "no 400: %r" % data)
        check(b"plain HTTP request sent to HTTPS port" in data, "no explanation: %r" % data)
        check_eq(https_get(srv.port), (200, b"Hello, World!"), "HTTPS still works")


def closed_within(s, seconds):
    s.settimeout(seconds)
    try:
        while True:
            if not s.recv(4096):
                return True
    except (ConnectionResetError, BrokenPipeError):
        return True
    except socket.timeout:
        return False


def test_garbage_and_truncated_client_hello(binary):
    with harness.serving(binary, tls_args()) as srv:
        good = tls_connect(srv.port, path("ecdsa.pem"))
        check_eq(get(good, "/plaintext")[0], 200, "first request")
        # a handshake record holding garbage: closed at once
        with socket.create_connection(("127.0.0.1", srv.port)) as s:
            s.sendall(b"\x16\x03\x01\x00\x40" + os.urandom(64))
            check(closed_within(s, 5), "garbage ClientHello not closed")
        # random bytes that are not TLS at all
        with socket.create_connection(("127.0.0.1", srv.port)) as s:
            s.sendall(b"\x16" + os.urandom(300))
            check(closed_within(s, 5), "random bytes not closed")
        # a real ClientHello cut short, then the client hangs up
        hello = b""
        ctx = ssl.create_default_context()
        inc, outg = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx.wrap_bio(inc, outg, server_hostname="localhost")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            hello = outg.read()
        check(len(hello) > 100, "no ClientHello made")
        for cut in (3, 40, len(hello) // 2):
            with socket.create_connection(("127.0.0.1", srv.port)) as s:
                s.sendall(hello[:cut])
                s.shutdown(socket.SHUT_WR)
                check(closed_within(s, 5), "truncated ClientHello (%d bytes) not closed" % cut)
        # the other client never noticed
        check_eq(get(good, "/plaintext"), (200, b"Hello, World!"), "other client")
        good.close()


def test_stalled_handshake_times_out(binary):
    with harness.serving(binary, tls_args("--handshake-timeout", "1000")) as srv:
        t0 = time.monotonic()
        stalled = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", srv.port))
            s.sendall(b"\x16\x03\x01\x02\x00\x01")  # a record header promising 512 bytes
            stalled.append(s)
        # a normal client keeps being served meanwhile
        lat = []
        while time.monotonic() - t0 < 0.8:
            t = time.monotonic()
            check_eq(https_get(srv.port), (200, b"Hello, World!"), "normal client")
            lat.append(time.monotonic() - t)
        for s in stalled:
            check(closed_within(s, 4), "stalled handshake not closed")
            s.close()
        took = time.monotonic() - t0
        check(0.9 <= took < 5, "stalled handshakes closed after %.2fs (timeout 1 s)" % took)
        check(max(lat) < 1.0, "normal client slowed: max %.3fs" % max(lat))


def test_mutual_tls(binary):
    with harness.serving(binary, tls_args("--tls-client-ca", path("ca.pem"))) as srv:
        st, body = https_get(srv.port, "/tls/peer", cert="client")
        check_eq(st, 200, "status with client cert")
        check_eq(body, b"CN=client-1,O=tern", "subject seen by the handler")
        # without a client certificate: refused (TLS 1.3 says so after the
        # handshake, at the first read)
        try:
            st, body = https_get(srv.port, "/tls/peer")
            raise harness.TestFailure("served without a client certificate: %r" % body)
        except (ssl.SSLError, harness.Closed, ConnectionResetError, BrokenPipeError):
            pass
        # a certificate from another CA: refused too
        try:
            https_get(srv.port, "/tls/peer", cert="rsa")
            raise harness.TestFailure("served with a certificate of another CA")
        except (ssl.SSLError, harness.Closed, ConnectionResetError, BrokenPipeError):
            pass
    with harness.serving(binary, tls_args()) as srv:
        check_eq(https_get(srv.port, "/tls/peer"), (200, b"none"), "no mTLS: no subject")


def cert_der(port):
    with tls_connect(port, path("live.pem")) as s:
        return s.getpeercert(binary_form=True)


def test_sighup_reload(binary):
    shutil.copy(path("ecdsa.pem"), path("live.pem"))
    shutil.copy(path("ecdsa.key"), path("live.key"))
    args = ["--tls-cert", path("live.pem"), "--tls-key", path("live.key")]
    with harness.serving(binary, args) as srv:
        first = cert_der(srv.port)
        keep = tls_connect(srv.port, path("live.pem"))
        check_eq(get(keep, "/plaintext")[0], 200, "before reload")
        # load during the reload: no request may fail
        stop = threading.Event()
        errors, done = [], [0]

        def load():
            while not stop.is_set():
                try:
                    check_eq(https_get(srv.port, cafile=path("both.pem"))[0], 200, "under load")
                    done[0] += 1
                except Exception as e:
                    errors.append(repr(e))
        with open(path("both.pem"), "wb") as f:
            f.write(open(path("ecdsa.pem"), "rb").read() + open(path("ecdsa2.pem"), "rb").read())
        th = threading.Thread(target=load)
        th.start()
        time.sleep(0.3)
        shutil.copy(path("ecdsa2.pem"), path("live.pem"))
        shutil.copy(path("ecdsa2.key"), path("live.key"))
        os.kill(srv.pid, signal.SIGHUP)
        deadline = time.monotonic() + 5
        second = first
        while second == first and time.monotonic() < deadline:
            time.sleep(0.1)
            second = cert_der(srv.port)
        time.sleep(0.3)
        stop.set()
        th.join()
        check(second != first, "new connections still get the old certificate")
        check(not errors, "requests failed during the reload: %s" % errors[:3])
        check(done[0] > 5, "too few requests under load: %d" % done[0])
        # the connection made before the reload still works
        check_eq(get(keep, "/plaintext"), (200, b"Hello, World!"), "old connection after reload")
        keep.close()
        check(srv.alive(), "server died on SIGHUP")


def test_tern_client_https_upstream(binary):
    with harness.serving(binary, tls_args()) as tls_srv:
        up = "https://localhost:%d/plaintext" % tls_srv.port
        with harness.serving(binary, ["--upstream", up, "--upstream-ca", path("ecdsa.pem")],
                             workers=1) as srv:
            for i in range(3):
                with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
                    s.sendall(b"GET /real HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    st, body = read_response(s)
                check_eq(st, 200, "/real over https: %r" % body)
                doc = json.loads(body)
                api = doc.get("api") or doc.get("http") or {}
                text = json.dumps(doc)
                check('"status": 200' in text, "upstream answer not 200: %s" % text)
        # a CA that did not sign the upstream: the client refuses it
        with harness.serving(binary, ["--upstream", up, "--upstream-ca", path("rsa.pem")],
                             workers=1) as srv:
            with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as s:
                s.sendall(b"GET /real HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                st, body = read_response(s)
            check('"status": 200' not in json.dumps(json.loads(body)),
                  "an unverified upstream was used: %r" % body)


if __name__ == "__main__":
    try:
        make_certs()
        harness.main(globals(), needs_server=False)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
