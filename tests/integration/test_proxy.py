"""Real client addresses behind proxies: HAProxy (send-proxy-v2) and nginx (stream
proxy_protocol, v1) in front of a tern that requires PROXY headers from 127.0.0.1 only;
nginx (http, X-Forwarded-For) in front of one that trusts forwarded headers from 127.0.0.1;
and the refusals: an untrusted source, a missing, malformed or late header."""
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Server, check, check_eq  # noqa: E402

TMP = tempfile.mkdtemp(prefix="tern-proxy-")
STREAM_MODULE = "/usr/lib/nginx/modules/ngx_stream_module.so"
WHOAMI = b"GET /whoami HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def exchange(port, data, source="127.0.0.1", timeout=5):
    """Sends data from `source`; returns (bytes received, how it ended)."""
    s = socket.socket()
    s.bind((source, 0))
    s.settimeout(timeout)
    s.connect(("127.0.0.1", port))
    local = s.getsockname()
    out = b""
    try:
        s.sendall(data)
        while True:
            chunk = s.recv(65536)
            if not chunk:
                return out, "eof", local
            out += chunk
    except ConnectionResetError:
        return out, "reset", local
    except socket.timeout:
        return out, "timeout", local
    finally:
        s.close()


def whoami_via(port, source):
    deadline = time.monotonic() + 10
    while True:
        try:
            out, how, local = exchange(port, WHOAMI, source)
            if b"\r\n\r\n" in out:
                break
        except OSError:
            pass
        check(time.monotonic() < deadline, "no answer through the proxy on %d" % port)
        time.sleep(0.1)
    head, _, body = out.partition(b"\r\n\r\n")
    check(head.startswith(b"HTTP/1.1 200"), "status %r" % head[:60])
    return json.loads(body), local


def start(cmd, what):
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(0.5)
    if p.poll() is not None:
        raise harness.TestFailure("%s exited: %r" % (what, p.stderr.read()[-1000:]))
    return p


def stop(p):
    if p.poll() is None:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def nginx_conf(body, name):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write("""%s
worker_processes 1;
pid %s/%s.pid;
error_log %s/%s.err warn;
events { worker_connections 256; }
%s
""" % ("load_module %s;" % STREAM_MODULE if "stream {" in body else "", TMP, name, TMP, name, body))
    return path


def need(tool):
    check(shutil.which(tool) is not None,
          "%s missing: scripts/deps.sh test installs it (Debian package)" % tool)


def proxied_server(binary, extra):
    return Server(binary, ["--port", "0", "--workers", "2", "--host", "127.0.0.1",
                           "--trusted-proxies", "127.0.0.1", "--header-timeout", "1000"] + extra)


def test_haproxy_send_proxy_v2_and_nginx_proxy_protocol(binary):
    need("haproxy")
    need("nginx")
    check(os.path.exists(STREAM_MODULE), "nginx stream module missing (libnginx-mod-stream)")
    srv = proxied_server(binary, ["--proxy-protocol"]).start()
    hp, ng = free_port(), free_port()
    hcfg = os.path.join(TMP, "haproxy.cfg")
    with open(hcfg, "w") as f:
        f.write("""global
    maxconn 256
defaults
    mode http
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend fe
    bind 127.0.0.1:%d
    default_backend tern
backend tern
    option httpchk GET /readyz
    server t1 127.0.0.1:%d send-proxy-v2 check check-send-proxy inter 500
""" % (hp, srv.port))
    haproxy = nginx = None
    try:
        haproxy = start(["haproxy", "-db", "-f", hcfg], "haproxy")
        nginx = start(["nginx", "-c", nginx_conf("""stream {
    server { listen 127.0.0.1:%d; proxy_pass 127.0.0.1:%d; proxy_protocol on; }
}""" % (ng, srv.port), "stream.conf"), "-g", "daemon off;"], "nginx")
        for port, source, what in ((hp, "127.0.0.5", "HAProxy v2"), (ng, "127.0.0.6", "nginx v1")):
            doc, local = whoami_via(port, source)
            if what.startswith("nginx"):
                check_eq(doc["client"], "%s:%d" % local, "%s: the real client" % what)
            else:
                check(doc["client"].startswith(source + ":"), "%s: client %r" % (what, doc))
            check(doc["socket_peer"].startswith("127.0.0.1:"), "%s: socket peer %r" % (what, doc))
        # HAProxy's health checks (with a PROXY header) reach /readyz: the server is up
        time.sleep(1.2)
        check(haproxy.poll() is None, "haproxy still running")
    finally:
        for p in (haproxy, nginx):
            if p:
                stop(p)
        check_eq(srv.stop(), 0, "exit status")
        check(srv.sanitizer_report() is None, "sanitizer: %s" % srv.sanitizer_report())
        srv.cleanup()


def test_refusals(binary):
    srv = proxied_server(binary, ["--proxy-protocol"]).start()
    try:
        v1 = b"PROXY TCP4 1.2.3.4 5.6.7.8 1111 80\r\n"
        out, how, _ = exchange(srv.port, v1 + WHOAMI)
        check(b'"client":"1.2.3.4:1111"' in out, "trusted v1 accepted: %r" % out[-120:])
        v2 = (b"\r\n\r\n\x00\r\nQUIT\n" + bytes([0x21, 0x11]) + struct.pack("!H", 12) +
              socket.inet_aton("9.8.7.6") + socket.inet_aton("1.1.1.1") + struct.pack("!HH", 3333, 80))
        out, how, _ = exchange(srv.port, v2[:7])  # split header: the rest comes later
        # (a header cut short and then the peer gone: closed, nothing answered)
        check_eq(out, b"", "half a header, then EOF")
        cases = [(v1 + WHOAMI, "127.0.0.9", "an untrusted source"),
                 (WHOAMI, "127.0.0.1", "no header"),
                 (b"PROXY TCP4 1.2.3.999 5.6.7.8 1111 80\r\n" + WHOAMI, "127.0.0.1", "bad address"),
                 (b"PROXY TCP4 1.2.3.4\r\n" + WHOAMI, "127.0.0.1", "too few fields"),
                 (b"\r\n\r\n\x00\r\nQUIT\n\x31\x11\x00\x0c" + b"x" * 12 + WHOAMI, "127.0.0.1",
                  "v2 with version 3")]
        for data, source, what in cases:
            out, how, _ = exchange(srv.port, data, source)
            check(b"HTTP/" not in out and how in ("eof", "reset"), "%s: %r %s" % (what, out, how))
        # a header that stops coming is closed at the header timeout (1 s here); a
        # connection that sends nothing at all waits in the kernel (TCP_DEFER_ACCEPT)
        t0 = time.monotonic()
        out, how, _ = exchange(srv.port, b"PROXY TCP4 1.2", "127.0.0.1", timeout=8)
        took = time.monotonic() - t0
        check(how in ("eof", "reset") and 0.8 < took < 6, "late header: closed after %.2fs (%s)"
              % (took, how))
        # a header in two pieces is waited for
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
        s.sendall(v2[:10])
        time.sleep(0.2)
        s.sendall(v2[10:] + WHOAMI)
        out = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
        s.close()
        check(b'"client":"9.8.7.6:3333"' in out, "v2 in two pieces: %r" % out[-120:])
        check_eq(srv.stop(), 0, "exit status")
    finally:
        srv.cleanup()


def test_forwarded_headers_from_trusted_proxies_only(binary):
    need("nginx")
    srv = Server(binary, ["--port", "0", "--workers", "1", "--host", "127.0.0.1",
                          "--trusted-proxies", "127.0.0.1"]).start()
    port = free_port()
    nginx = None
    try:
        nginx = start(["nginx", "-c", nginx_conf("""http {
    access_log off;
    upstream tern { server 127.0.0.1:%d; keepalive 8; }
    server {
        listen 127.0.0.1:%d;
        location / {
            proxy_pass http://tern;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        }
    }
}""" % (srv.port, port), "http.conf"), "-g", "daemon off;"], "nginx")
        # the client claims 6.6.6.6; nginx appends what it saw: the client is that
        spoof = WHOAMI.replace(b"Host: x\r\n", b"Host: x\r\nX-Forwarded-For: 6.6.6.6\r\n")
        deadline = time.monotonic() + 10
        while True:
            out, how, local = exchange(port, spoof, "127.0.0.7")
            if b"\r\n\r\n" in out or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        doc = json.loads(out.partition(b"\r\n\r\n")[2])
        check_eq(doc["client"], "127.0.0.7:0", "rightmost untrusted address (%r)" % doc)
        # sent directly from an untrusted address, the header is ignored
        out, how, local = exchange(srv.port, spoof, "127.0.0.7")
        doc = json.loads(out.partition(b"\r\n\r\n")[2])
        check_eq(doc["client"], "%s:%d" % local, "untrusted peer's XFF ignored")
        # from a trusted one, Forwarded wins over X-Forwarded-For
        fwd = WHOAMI.replace(b"Host: x\r\n", b'Host: x\r\nForwarded: for="[2001:db8::5]:99";proto=https'
                             b"\r\nX-Forwarded-For: 7.7.7.7\r\n")
        out, how, local = exchange(srv.port, fwd, "127.0.0.1")
        doc = json.loads(out.partition(b"\r\n\r\n")[2])
        check_eq(doc["client"], "[2001:db8::5]:99", "Forwarded for=")
    finally:
        if nginx:
            stop(nginx)
        check_eq(srv.stop(), 0, "exit status")
        srv.cleanup()


if __name__ == "__main__":
    harness.main(globals(), needs_server=False)
