"""TLS under load and with clients nobody here wrote:
- Node's undici (the HTTP client behind Node 20's built-in fetch) over HTTPS, keep-alive;
- a handshake flood (four processes making full handshakes non-stop, plus half-open
  handshakes that stall) while an ordinary HTTPS keep-alive client on the same single
  worker keeps its latency: the per-worker cap on handshakes in progress and the
  handshake timeout protect established connections. Bounds are generous (CI machines
  are noisy; make bench measures TLS precisely).
"""
import multiprocessing
import os
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

TMP = tempfile.mkdtemp(prefix="tern-tls-load-")
CERT, KEY = os.path.join(TMP, "c.pem"), os.path.join(TMP, "k.pem")


def make_cert():
    if os.path.exists(CERT):
        return
    r = subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:P-256", "-keyout", KEY, "-out", CERT],
                       capture_output=True, timeout=60)
    check(r.returncode == 0, "openssl req: %r" % r.stderr[-300:])


NODE_CLIENT = r"""
const port = process.argv[2];
(async () => {
  let n = 0;
  for (let i = 0; i < 20; i++) {
    const r = await fetch(`https://localhost:${port}/json`);
    const j = await r.json();
    if (r.status !== 200 || j.message !== "Hello, World!") throw new Error("bad answer");
    n++;
  }
  const r = await fetch(`https://localhost:${port}/echo`, {method: "POST", body: "x".repeat(100000)});
  const t = await r.text();
  if (t.length !== 100000) throw new Error("echo length " + t.length);
  console.log("ok " + n);
})().catch(e => { console.error(String(e)); process.exit(1); });
"""


def test_node_undici_over_https(binary):
    node = shutil.which("node")
    check(node, "node missing (scripts/deps.sh test installs nodejs)")
    make_cert()
    script = os.path.join(TMP, "client.js")
    with open(script, "w") as f:
        f.write(NODE_CLIENT)
    with harness.serving(binary, ["--tls-cert", CERT, "--tls-key", KEY]) as srv:
        env = dict(os.environ, NODE_EXTRA_CA_CERTS=CERT)
        r = subprocess.run([node, script, str(srv.port)], capture_output=True, timeout=120, env=env)
        out = (r.stdout + r.stderr).decode(errors="replace")
        print("    node %s (fetch is undici): %s" % (
            subprocess.run([node, "--version"], capture_output=True).stdout.decode().strip(),
            out.strip()))
        check_eq(r.returncode, 0, "node client exit status (%s)" % out)
        check("ok 20" in out, "node client output: %s" % out)


def flood(port, stop, counts):
    ctx = ssl.create_default_context(cafile=CERT)
    while not stop.is_set():
        try:
            raw = socket.create_connection(("127.0.0.1", port), timeout=5)
            s = ctx.wrap_socket(raw, server_hostname="localhost")
            counts.value += 1
            s.close()
        except OSError:
            time.sleep(0.01)


def stall(port, stop):
    """Half-open handshakes: a ClientHello's first bytes, then nothing."""
    socks = []
    while not stop.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=5)
            s.send(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03")
            socks.append(s)
        except OSError:
            pass
        if len(socks) > 200:
            for s in socks[:100]:
                s.close()
            del socks[:100]
        time.sleep(0.005)
    for s in socks:
        s.close()


def test_handshake_flood_keeps_established_client(binary):
    make_cert()
    with harness.serving(binary, ["--tls-cert", CERT, "--tls-key", KEY,
                                  "--handshake-timeout", "1000"], workers=1) as srv:
        ctx = ssl.create_default_context(cafile=CERT)
        raw = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        s = ctx.wrap_socket(raw, server_hostname="localhost")
        req = b"GET /plaintext HTTP/1.1\r\nHost: localhost\r\n\r\n"

        def one():
            t0 = time.monotonic()
            s.sendall(req)
            buf = b""
            while not buf.endswith(b"Hello, World!"):
                d = s.recv(65536)
                check(d, "established connection closed during the flood")
                buf += d
            return time.monotonic() - t0
        base = sorted(one() for _ in range(20))
        stop = multiprocessing.Event()
        counts = multiprocessing.Value("q", 0, lock=False)
        procs = [multiprocessing.Process(target=flood, args=(srv.port, stop, counts))
                 for _ in range(4)]
        procs.append(multiprocessing.Process(target=stall, args=(srv.port, stop)))
        for p in procs:
            p.start()
        lat = []
        try:
            time.sleep(0.5)
            t_end = time.monotonic() + 3.0
            while time.monotonic() < t_end:
                lat.append(one())
                time.sleep(0.02)
        finally:
            stop.set()
            for p in procs:
                p.join(10)
                if p.is_alive():
                    p.kill()
        s.close()
        lat.sort()
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
        print("    %d full handshakes by the flood in ~3.5 s; established client: %d requests, "
              "p50 %.2f ms, p99 %.2f ms (before the flood p50 %.2f ms)"
              % (counts.value, len(lat), lat[len(lat) // 2] * 1e3, p99 * 1e3,
                 base[len(base) // 2] * 1e3))
        check(counts.value > 50, "the flood made only %d handshakes" % counts.value)
        check(len(lat) >= 30, "established client made only %d requests" % len(lat))
        check(p99 < 0.25, "established client's p99 %.1f ms during the flood" % (p99 * 1e3))


if __name__ == "__main__":
    try:
        harness.main(globals(), needs_server=False)
    finally:
        shutil.rmtree(TMP, ignore_errors=True)
