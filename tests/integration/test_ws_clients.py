"""WebSocket and Server-Sent Events with clients nobody here wrote: Python's `websockets`
(Debian python3-websockets; it loads in /usr/bin/python3, so the client runs there as a
child process), Node's `ws` (npm, installed by scripts/deps.sh test into .deps/node) and
curl for /sse. Echo (text, binary, 1 MiB), ping, subprotocols, the close handshake, the
/chat room across workers, and the event stream: framing, retry, Last-Event-ID,
heartbeats, and the handler ending when curl goes away."""
import json
import os
import shutil
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

SYSTEM_PYTHON = "/usr/bin/python3"
NODE_MODULES = os.environ.get("TERN_NODE_MODULES",
                              os.path.join(harness.REPO, ".deps", "node", "node_modules"))


def have_websockets():
    return os.path.exists(SYSTEM_PYTHON) and subprocess.run(
        [SYSTEM_PYTHON, "-c", "import websockets"], capture_output=True).returncode == 0


def run_python(srv, body):
    if not have_websockets():
        raise AssertionError("python3-websockets is missing: scripts/deps.sh test installs it")
    script = "import asyncio, websockets\nPORT = %d\n%s\nasyncio.run(main())\n" % (srv.port, body)
    r = subprocess.run([SYSTEM_PYTHON, "-c", script], capture_output=True, timeout=60)
    check(r.returncode == 0, "websockets client failed:\n%s%s" % (r.stdout.decode()[-2000:],
                                                                 r.stderr.decode()[-3000:]))
    return r.stdout.decode()


def run_node(srv, body):
    node = shutil.which("node")
    check(node and os.path.isdir(os.path.join(NODE_MODULES, "ws")),
          "node or %s/ws missing (scripts/deps.sh test installs them)" % NODE_MODULES)
    script = "const WebSocket = require('ws'); const PORT = %d;\n%s" % (srv.port, body)
    env = dict(os.environ, NODE_PATH=NODE_MODULES)
    r = subprocess.run([node, "-e", script], capture_output=True, timeout=60, env=env)
    check(r.returncode == 0, "node ws client failed:\n%s%s" % (r.stdout.decode()[-2000:],
                                                              r.stderr.decode()[-3000:]))
    return r.stdout.decode()


def test_python_websockets_echo(srv):
    for path in ("/ws", "/ws/callback"):
        python_echo(srv, path)


def python_echo(srv, path):
    out = run_python(srv, "PATH = %r\n" % path + '''
async def main():
    async with websockets.connect("ws://127.0.0.1:%d%s" % (PORT, PATH), subprotocols=["echo"],
                                  max_size=None) as ws:
        assert ws.subprotocol == "echo", ws.subprotocol
        # websockets offers permessage-deflate by default (RFC 7692): accepted
        assert [e.name for e in ws.extensions] == ["permessage-deflate"], ws.extensions
        for m in ["", "hello", "κόσμε \\U0001F600", "x" * 70000]:
            await ws.send(m)
            assert await ws.recv() == m
        for m in [b"", b"\\x00\\xff" * 10, bytes(range(256)) * 4096, b"compressible " * 50000]:
            await ws.send(m)
            assert await ws.recv() == m
        # a fragmented message: websockets sends an iterable as fragments
        await ws.send(["frag", "ment", "ed"])
        assert await ws.recv() == "fragmented"
        pong = await ws.ping(b"are you there")
        await asyncio.wait_for(pong, 5)
    assert ws.close_code == 1000, ws.close_code
    # and without compression
    async with websockets.connect("ws://127.0.0.1:%d/ws" % PORT, compression=None) as ws:
        assert ws.extensions == [], ws.extensions
        await ws.send("plain")
        assert await ws.recv() == "plain"
    print("ok")
''')
    check("ok" in out, out)


def test_python_websockets_server_close_codes(srv):
    run_python(srv, '''
async def main():
    async with websockets.connect("ws://127.0.0.1:%d/chat" % PORT, max_size=None) as ws:
        await ws.recv()  # the join notice
        await ws.send("y" * 100000)  # /chat takes 64 KiB at most
        try:
            await ws.recv()
            raise SystemExit("no close")
        except websockets.ConnectionClosed as e:
            assert e.rcvd.code == 1009, e
    try:
        async with websockets.connect("ws://127.0.0.1:%d/plaintext" % PORT) as ws:
            raise SystemExit("upgraded a plain route")
    except websockets.InvalidStatusCode as e:
        assert e.status_code == 200, e
''')


def test_python_websockets_chat_room(srv):
    for query in ("", "?stackless=1"):
        python_chat(srv, query)


def python_chat(srv, query):
    out = run_python(srv, "QUERY = %r\n" % query + '''
async def main():
    members = [await websockets.connect("ws://127.0.0.1:%d/chat%s" % (PORT, QUERY)) for _ in range(6)]
    await asyncio.sleep(0.2)
    for m in members:  # drain the join notices
        while True:
            try:
                await asyncio.wait_for(m.recv(), 0.2)
            except asyncio.TimeoutError:
                break
    await members[0].send("to everyone")
    got = [await asyncio.wait_for(m.recv(), 5) for m in members]
    assert all(g.endswith(": to everyone") for g in got), got
    for m in members:
        await m.close()
    print("ok", sorted(set(g.split(":")[0] for g in got)))
''')
    check("ok" in out, out)


def test_node_ws_echo(srv):
    out = run_node(srv, r'''
const ws = new WebSocket(`ws://127.0.0.1:${PORT}/ws`, ['echo'], {perMessageDeflate: {threshold: 0}});
const sent = ['hello', 'κόσμε', 'z'.repeat(100000), Buffer.from([0, 1, 2, 255])];
let i = 0;
ws.on('open', () => {
  if (ws.protocol !== 'echo') { console.error('protocol', ws.protocol); process.exit(1); }
  if (!ws.extensions.startsWith('permessage-deflate')) { console.error('extensions', ws.extensions); process.exit(1); }
  ws.send(sent[0]);
});
ws.on('message', (data, isBinary) => {
  const want = sent[i];
  const ok = Buffer.isBuffer(want) ? isBinary && data.equals(want) : !isBinary && data.toString() === want;
  if (!ok) { console.error('mismatch at', i); process.exit(1); }
  if (++i < sent.length) ws.send(sent[i]); else ws.ping('p');
});
ws.on('pong', (d) => { ws.close(4000, 'done'); });
ws.on('close', (code) => { if (code !== 4000) { console.error('code', code); process.exit(1); } console.log('ok'); });
ws.on('error', (e) => { console.error(e); process.exit(1); });
''')
    check("ok" in out, out)


def test_node_ws_many_connections(srv):
    out = run_node(srv, r'''
const N = 200; let done = 0;
for (let k = 0; k < N; k++) {
  const ws = new WebSocket(`ws://127.0.0.1:${PORT}/ws${k % 2 ? '/callback' : ''}`);
  ws.on('open', () => ws.send(`msg ${k}`));
  ws.on('message', (d) => { if (d.toString() !== `msg ${k}`) process.exit(1); ws.close(); });
  ws.on('close', () => { if (++done === N) console.log('ok'); });
  ws.on('error', (e) => { console.error(e); process.exit(1); });
}
''')
    check("ok" in out, out)


def test_python_websockets_over_tls(srv):
    """wss:// : the WebSocket runs over the TLS transport the same way (both modes)."""
    import tempfile
    tmp = tempfile.mkdtemp(prefix="tern-wss-")
    key, cert = os.path.join(tmp, "k.pem"), os.path.join(tmp, "c.pem")
    r = subprocess.run(["openssl", "req", "-x509", "-nodes", "-days", "2", "-subj", "/CN=localhost",
                        "-addext", "subjectAltName=DNS:localhost", "-newkey", "ec",
                        "-pkeyopt", "ec_paramgen_curve:prime256v1", "-keyout", key, "-out", cert],
                       capture_output=True, timeout=60)
    check(r.returncode == 0, r.stderr.decode()[-500:])
    with harness.serving(srv.binary, ["--tls-cert", cert, "--tls-key", key]) as tls:
        run_python(tls, "CA = %r\n" % cert + '''
import ssl
async def main():
    ctx = ssl.create_default_context(cafile=CA)
    for path in ("/ws", "/ws/callback"):
        async with websockets.connect("wss://localhost:%d%s" % (PORT, path), ssl=ctx,
                                      max_size=None) as ws:
            for m in ["over TLS", "t" * 200000, b"\\x00" * 70000]:
                await ws.send(m)
                assert await ws.recv() == m
        assert ws.close_code == 1000
''')
    shutil.rmtree(tmp, ignore_errors=True)


# ---- Server-Sent Events with curl -----------------------------------------------------

def curl_sse(srv, query, headers=(), max_time=None):
    cmd = ["curl", "-sN", "-i", "http://127.0.0.1:%d/sse%s" % (srv.port, query)]
    for h in headers:
        cmd += ["-H", h]
    if max_time:
        cmd += ["--max-time", str(max_time)]
    return subprocess.run(cmd, capture_output=True, timeout=60).stdout.decode()


def parse_events(body):
    events = []
    for block in body.split("\n\n"):
        ev = {}
        for line in block.split("\n"):
            if ":" not in line or line.startswith(":"):
                continue
            k, v = line.split(":", 1)
            ev.setdefault(k, []).append(v[1:] if v.startswith(" ") else v)
        if ev:
            events.append(ev)
    return events


def test_sse_events_with_curl(srv):
    out = curl_sse(srv, "?count=3&interval_ms=50")
    head, body = out.split("\r\n\r\n", 1)
    check("content-type: text/event-stream" in head.lower(), head)
    check("cache-control: no-cache" in head.lower(), head)
    events = parse_events(body)
    check_eq(events[0].get("retry"), ["2000"], "retry field first")
    clock = [e for e in events if "data" in e]
    check_eq([e["id"][0] for e in clock], ["1", "2", "3"], "ids")
    check_eq([e["event"][0] for e in clock], ["clock"] * 3, "event names")
    for e in clock:
        d = json.loads(e["data"][0])
        check("time" in d and d["rss_bytes"] > 0, "live figures: %r" % d)


def test_sse_last_event_id_resumes(srv):
    out = curl_sse(srv, "?count=2&interval_ms=10", headers=["Last-Event-ID: 41"])
    ids = [e["id"][0] for e in parse_events(out.split("\r\n\r\n", 1)[1]) if "id" in e]
    check_eq(ids, ["42", "43"], "ids after Last-Event-ID: 41")


def test_sse_heartbeat_comments(srv):
    out = curl_sse(srv, "?count=2&interval_ms=700&heartbeat_ms=200")
    body = out.split("\r\n\r\n", 1)[1]
    check(body.count(": ping\n") >= 2, "heartbeats between events:\n%s" % body)


def stats(srv):
    with harness.Conn(srv.port) as c:
        return json.loads(c.request("GET", "/stats").body)


def test_sse_ends_when_client_goes_away(srv):
    base = stats(srv)["in_flight"]
    procs = [subprocess.Popen(["curl", "-sN", "http://127.0.0.1:%d/sse?interval_ms=50" % srv.port],
                              stdout=subprocess.PIPE) for _ in range(5)]
    for p in procs:
        check(p.stdout.readline(), "stream started")
    check(stats(srv)["in_flight"] >= base + 5, "5 streams in flight")
    for p in procs:
        p.kill()
        p.wait()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and stats(srv)["in_flight"] > base + 1:
        time.sleep(0.05)
    check(stats(srv)["in_flight"] <= base + 1, "streams ended after curl left")


if __name__ == "__main__":
    harness.main(globals())
