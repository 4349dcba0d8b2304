"""tern_client against a hostile upstream, through tern-demo's /real (one worker, so a
client that held its worker would stall every other request): a flood of 102 Processing,
an endless stream of chunk extensions and a status code of 999 all end the exchange with
EPROTO (502 from the demo) promptly, while /plaintext on the same worker keeps answering;
a sane upstream afterwards is served again."""
import json
import os
import socket
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

MODE = {"name": "ok"}
UPSTREAM = socket.socket()
UPSTREAM.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
UPSTREAM.bind(("127.0.0.1", 0))
UPSTREAM.listen(64)
URL = "http://127.0.0.1:%d/x" % UPSTREAM.getsockname()[1]


def send_for(conn, data, seconds):
    """Sends data again and again until the client goes away (or `seconds`)."""
    stop = time.monotonic() + seconds
    try:
        while time.monotonic() < stop:
            conn.sendall(data)
    except OSError:
        pass


def serve_conn(conn):
    conn.settimeout(10)
    try:
        buf = b""
        while True:
            while b"\r\n\r\n" not in buf:
                chunk = conn.recv(65536)
                if not chunk:
                    return
                buf += chunk
            buf = buf.split(b"\r\n\r\n", 1)[1]
            mode = MODE["name"]
            if mode == "flood102":
                send_for(conn, b"HTTP/1.1 102 Processing\r\n\r\n" * 2000, 10)
                return
            if mode == "extflood":
                conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
                send_for(conn, (b"1;" + b"e" * 1000 + b"\r\nx\r\n") * 64, 10)
                return
            if mode == "status999":
                conn.sendall(b"HTTP/1.1 999 Weird\r\nContent-Length: 0\r\n\r\n")
                return
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
    except OSError:
        pass
    finally:
        conn.close()


def upstream_main():
    while True:
        try:
            conn, _ = UPSTREAM.accept()
        except OSError:
            return
        threading.Thread(target=serve_conn, args=(conn,), daemon=True).start()


def start_upstream():
    threading.Thread(target=upstream_main, daemon=True).start()


def get(port, path, timeout=20):
    with harness.Conn(port, timeout=timeout) as c:
        return c.request("GET", path)


def hostile(srv, mode):
    """/real against the upstream in `mode` while /plaintext is asked on the side."""
    MODE["name"] = mode
    out = {}

    def real():
        t0 = time.monotonic()
        out["resp"] = get(srv.port, "/real")
        out["took"] = time.monotonic() - t0

    t = threading.Thread(target=real)
    t.start()
    worst = 0.0
    while t.is_alive():
        t0 = time.monotonic()
        check_eq(get(srv.port, "/plaintext", timeout=5).status, 200, mode + ": /plaintext")
        worst = max(worst, time.monotonic() - t0)
        time.sleep(0.01)
    t.join()
    resp = out["resp"]
    check_eq(resp.status, 502, mode + ": /real status (body %r)" % resp.body[:200])
    d = json.loads(resp.body)
    check_eq(d["step"], "api", mode + ": failed step")
    check_eq(d["errno"], 71, mode + ": EPROTO (%r)" % d)
    check(out["took"] < 5, mode + ": answered in %.2fs" % out["took"])
    # generous: a shared machine, sanitizers; a held worker would be seconds
    check(worst < 1.0, mode + ": /plaintext waited %.2fs on the same worker" % worst)


def test_flood_of_102(srv):
    hostile(srv, "flood102")


def test_chunk_extension_flood(srv):
    hostile(srv, "extflood")


def test_status_999(srv):
    hostile(srv, "status999")


def test_sane_upstream_after(srv):
    MODE["name"] = "ok"
    resp = get(srv.port, "/real")
    check_eq(resp.status, 200, "/real with a sane upstream (body %r)" % resp.body[:200])
    check_eq(json.loads(resp.body)["api"]["status"], 200, "upstream status")


if __name__ == "__main__":
    harness.main(globals(), server_args=["--port", "0", "--workers", "1", "--host", "127.0.0.1",
                                         "--upstream", URL],
                 before_start=start_upstream)
