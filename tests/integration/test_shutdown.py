"""Graceful shutdown and rolling restart.

What "no request fails" means here. A client may send a request on a connection only if
the previous response on it (if any) did not say `Connection: close`. A request FAILS if
the client was entitled to send it and it got no complete response: the connection was
closed or reset before the response, or the send itself failed. A response carrying
`Connection: close` is a success; the client then stops using that connection (and
reconnects, where the test has somewhere to reconnect to). Connections refused because no
listener exists any more are not requests and are counted separately.

The server's side of the contract (DESIGN.md, conn.c): on SIGTERM it stops accepting
(taking what is already in its accept queue first), lets busy connections finish their
response with `Connection: close`, gives idle keep-alive connections a 500 ms grace counted
from their last response, in which a request that arrives is answered with `Connection:
close`, then closes them (one quiet for longer is closed at once, so an idle server exits
at once); it exits 0 once everything is closed, at the latest after --drain-timeout.
"""
import asyncio
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, check, check_eq  # noqa: E402

HELLO = b"Hello, World!"
DRAIN_MS = 5000


class Tally:
    def __init__(self):
        self.ok = 0
        self.closes = 0          # responses that announced Connection: close
        self.failed = []         # (client, what)
        self.refused = 0
        self.after = 0           # successes after a given moment
        self.mark = None

    def success(self, resp):
        self.ok += 1
        if self.mark is not None and time.monotonic() > self.mark:
            self.after += 1


def is_close(resp):
    return resp.has_token("Connection", "close")


async def one_request(reader, writer, req, tally, who):
    """Sends req, reads the response. Returns the response, or None after recording a
    failure (the caller only calls this when entitled to send)."""
    try:
        writer.write(req)
        await writer.drain()
        resp = await asyncio.wait_for(harness.aread_response(reader), 15)
    except (asyncio.IncompleteReadError, ConnectionError, OSError) as e:
        tally.failed.append((who, "%s: %s" % (type(e).__name__, e)))
        return None
    except asyncio.TimeoutError:
        tally.failed.append((who, "no response within 15 s"))
        return None
    if resp.status != 200:
        tally.failed.append((who, "status %d %r" % (resp.status, resp.body[:80])))
        return None
    tally.success(resp)
    return resp


async def keepalive_client(port, i, tally, stop):
    """Back-to-back keep-alive requests on one connection until the server announces
    close (or stop is set)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    k = 0
    try:
        while not stop.is_set():
            path = b"/concurrent" if (i + k) % 4 == 0 else b"/plaintext"
            k += 1
            resp = await one_request(reader, writer,
                                     b"GET " + path + b" HTTP/1.1\r\nHost: x\r\n\r\n",
                                     tally, i)
            if resp is None:
                return
            if is_close(resp):
                tally.closes += 1
                # the server must then close its side
                try:
                    extra = await asyncio.wait_for(reader.read(1), 3)
                except (ConnectionError, asyncio.TimeoutError) as e:
                    extra = repr(e)
                if extra != b"":
                    tally.failed.append((i, "not closed after Connection: close: %r" % extra))
                return
    finally:
        writer.close()


def test_sigterm_under_load(binary):
    with harness.serving(binary, ["--drain-timeout", str(DRAIN_MS)]) as srv:
        tally = Tally()

        async def run():
            stop = asyncio.Event()
            tasks = [asyncio.create_task(keepalive_client(srv.port, i, tally, stop))
                     for i in range(50)]
            await asyncio.sleep(1.0)
            before = tally.ok
            t_sig = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            done, pending = await asyncio.wait(tasks, timeout=DRAIN_MS / 1000 + 5)
            stop.set()
            for t in pending:
                t.cancel()
            for t in done:
                if t.exception():
                    tally.failed.append(("task", repr(t.exception())))
            return before, t_sig, len(pending)

        before, t_sig, pending = asyncio.run(run())
        try:
            rc = srv.proc.wait(DRAIN_MS / 1000 + 5)
        except Exception:
            rc = None
        took = time.monotonic() - t_sig
        print("    %d requests before SIGTERM, %d in all; %d connections told Connection: close; "
              "%d failed; exit %s %.2f s after SIGTERM"
              % (before, tally.ok, tally.closes, len(tally.failed), rc, took))
        check(before >= 500, "only %d requests before SIGTERM: no load" % before)
        check(not tally.failed, "%d requests failed: %r" % (len(tally.failed), tally.failed[:5]))
        check_eq(pending, 0, "clients still running after the drain")
        check_eq(tally.closes, 50, "connections that got Connection: close")
        check_eq(rc, 0, "exit status")
        check(took < DRAIN_MS / 1000, "exit took %.2f s (drain timeout %.1f s)"
              % (took, DRAIN_MS / 1000))


def test_inflight_requests_finish_during_drain(binary):
    """100 parked /concurrent handlers (18 ms of sleeps each) when SIGTERM arrives: every
    one completes with its full response and Connection: close."""
    with harness.serving(binary) as srv:
        async def run():
            conns = [await asyncio.open_connection("127.0.0.1", srv.port) for _ in range(100)]
            for _, w in conns:      # accepted and registered before the timed part
                w.write(b"GET /plaintext HTTP/1.1\r\nHost: x\r\n\r\n")
            for r, _ in conns:
                check_eq((await harness.aread_response(r)).body, HELLO, "warm-up")
            for _, w in conns:
                w.write(b"GET /concurrent HTTP/1.1\r\nHost: x\r\n\r\n")
            await asyncio.sleep(0.005)
            srv.proc.send_signal(signal.SIGTERM)
            res = await asyncio.gather(*(asyncio.wait_for(harness.aread_response(r), 10)
                                         for r, _ in conns), return_exceptions=True)
            for _, w in conns:
                w.close()
            return res
        res = asyncio.run(run())
        errors = [r for r in res if isinstance(r, BaseException)]
        check(not errors, "%d in-flight requests lost: %r" % (len(errors), errors[:3]))
        for r in res:
            check_eq(r.status, 200, "in-flight status")
            n = int(r.header("X-Request-ID"))
            check_eq(r.body, b"Request %d: DB=db_data_%d, API=api_response_%d, "
                     b"File=file_content_%d" % (n, n, n, n), "in-flight body")
            check(is_close(r), "in-flight response without Connection: close: %r" % r.headers)
        check_eq(srv.proc.wait(15), 0, "exit status")


def test_idle_grace_then_close(binary):
    """After SIGTERM a keep-alive connection answered just before is closed 500 ms after
    its last response, and a request that arrives within the grace is answered, with
    Connection: close."""
    with harness.serving(binary) as srv:
        with Conn(srv.port) as idle, Conn(srv.port) as late:
            check_eq(idle.request("GET", "/plaintext").status, 200, "idle conn first request")
            check_eq(late.request("GET", "/plaintext").status, 200, "late conn first request")
            t0 = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
            r = late.request("GET", "/json")
            check_eq(r.status, 200, "request within the grace")
            check(is_close(r), "response in the grace without Connection: close")
            check_eq(late.wait_closed(2), "closed", "connection after Connection: close")
            got = idle.wait_closed(3)
            took = time.monotonic() - t0
            print("    idle connection closed %.2f s after SIGTERM" % took)
            check_eq(got, "closed", "idle connection")
            check(0.3 <= took <= 1.5, "idle connection closed %.2f s after SIGTERM "
                  "(grace 0.5 s from its last response)" % took)
        check_eq(srv.proc.wait(10), 0, "exit status")


def test_idle_server_exits_at_once(binary):
    """An idle server (open keep-alive connections, none answered in the last 500 ms)
    exits on SIGTERM at once: the issue asks under 100 ms; 300 ms allows for a slow CI."""
    with harness.serving(binary) as srv:
        with Conn(srv.port) as a, Conn(srv.port) as b:
            check_eq(a.request("GET", "/plaintext").status, 200, "first request")
            check_eq(b.request("GET", "/real").status, 200, "request through the upstream")
            time.sleep(0.8)
            t0 = time.monotonic()
            srv.proc.send_signal(signal.SIGTERM)
            rc = srv.proc.wait(10)
            took = time.monotonic() - t0
            print("    idle server exited %.0f ms after SIGTERM" % (took * 1000))
            check_eq(rc, 0, "exit status")
            check(took < 0.3, "idle server took %.0f ms to exit" % (took * 1000))


# ---------------------------------------------------------------------------- restart

MIGRATE = "/proc/sys/net/ipv4/tcp_migrate_req"


def set_migrate_req():
    """Tries net.ipv4.tcp_migrate_req=1. Returns (old value or None, note)."""
    try:
        with open(MIGRATE) as f:
            old = f.read().strip()
    except OSError as e:
        return None, "tcp_migrate_req not available (%s)" % e
    try:
        with open(MIGRATE, "w") as f:
            f.write("1")
        return old, "tcp_migrate_req=1 (was %s)" % old
    except OSError as e:
        return None, "tcp_migrate_req not writable (%s); stays %s" % (e, old)


async def restart_client(port, i, tally, stop):
    """Requests until stop; reconnects after Connection: close or a failure. Odd clients
    keep connections alive, even ones open a new connection per request."""
    per_request = i % 2 == 0
    reader = writer = None
    while not stop.is_set():
        if writer is None:
            try:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            except ConnectionRefusedError:
                tally.refused += 1
                await asyncio.sleep(0.01)
                continue
        req = b"GET /plaintext HTTP/1.1\r\nHost: x\r\n%s\r\n" % (
            b"Connection: close\r\n" if per_request else b"")
        resp = await one_request(reader, writer, req, tally, i)
        if resp is None or is_close(resp):
            if resp is not None:
                tally.closes += 1
            writer.close()
            writer = None
    if writer is not None:
        writer.close()


def test_rolling_restart(binary):
    old, note = set_migrate_req()
    print("    " + note)
    a = harness.Server(binary, ["--port", "0", "--workers", "2", "--host", "127.0.0.1",
                                "--reuse-port"])
    b = None
    try:
        a.start()
        b = harness.Server(binary, ["--port", str(a.port), "--workers", "2", "--host",
                                    "127.0.0.1", "--reuse-port"])
        b.start()
        check_eq(b.port, a.port, "B's port")
        tally = Tally()

        async def run():
            stop = asyncio.Event()
            tasks = [asyncio.create_task(restart_client(a.port, i, tally, stop))
                     for i in range(20)]
            await asyncio.sleep(1.0)
            before = tally.ok
            a.proc.send_signal(signal.SIGTERM)
            t0 = time.monotonic()
            while a.proc.poll() is None and time.monotonic() - t0 < 15:
                await asyncio.sleep(0.01)
            a_took = time.monotonic() - t0
            tally.mark = time.monotonic()
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.gather(*tasks)
            return before, a_took
        before, a_took = asyncio.run(run())
        a_rc = a.proc.poll()
        print("    %d requests before SIGTERM to A, %d in all, %d after A exited (%.2f s after "
              "SIGTERM, status %s); %d failed; %d refused connects"
              % (before, tally.ok, tally.after, a_took, a_rc, len(tally.failed), tally.refused))
        check_eq(a_rc, 0, "A's exit status")
        check(before >= 200, "only %d requests before the restart" % before)
        check(tally.after >= 200, "only %d requests served by B after A exited" % tally.after)
        try:
            migrate_on = open(MIGRATE).read().strip() == "1"
        except OSError:
            migrate_on = False
        if migrate_on:
            check(not tally.failed, "%d requests failed across the restart: %r"
                  % (len(tally.failed), tally.failed[:5]))
        else:
            # Without tcp_migrate_req the kernel resets the handshakes still
            # queued on A's listener when it closes (TCP_DEFER_ACCEPT keeps
            # them out of reach of accept): a handful of fresh connections,
            # never a request the server had accepted. README documents it.
            print("    tcp_migrate_req is off: %d resets of queued handshakes tolerated"
                  % len(tally.failed))
            check(len(tally.failed) <= max(10, tally.ok // 1000),
                  "%d requests failed across the restart: %r"
                  % (len(tally.failed), tally.failed[:5]))
        check_eq(tally.refused, 0, "refused connections (B was listening all along)")
        for srv, name in ((a, "A"), (b, "B")):
            if srv is b:
                check_eq(b.stop(), 0, "B's exit status")
            rep = srv.sanitizer_report()
            check(rep is None, "%s: sanitizer report:\n%s" % (name, rep))
    finally:
        for srv in (a, b):
            if srv is not None:
                srv.cleanup()
        if old is not None:
            with open(MIGRATE, "w") as f:
                f.write(old)


if __name__ == "__main__":
    harness.main(globals(), needs_server=False, before_start=harness.raise_nofile_limit)
