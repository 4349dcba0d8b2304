"""tern-demo as a process: flags, the listening line, port conflicts and graceful stop on
SIGINT/SIGTERM (in-flight requests finish, idle connections do not hold the exit)."""
import os
import re
import signal
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, Server, check, check_eq  # noqa: E402


def run(binary, *args, timeout=10):
    return subprocess.run([binary] + list(args), capture_output=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def clean_exit(srv, sig=signal.SIGTERM, within=None, already_signalled=False):
    t0 = time.monotonic()
    if already_signalled:   # wait only: a second signal is a different test
        try:
            rc = srv.proc.wait(20)
        except subprocess.TimeoutExpired:
            raise harness.TestFailure("no exit within 20s of %s" % sig.name)
    else:
        rc = srv.stop(sig)
    took = time.monotonic() - t0
    check_eq(rc, 0, "exit status (last signal sent: %s; stderr %r)"
             % (sig.name, srv.stderr_text()[-500:]))
    check(srv.sanitizer_report() is None, "sanitizer report:\n%s" % srv.sanitizer_report())
    if within is not None:
        check(took < within, "exit took %.2fs (> %.1fs)" % (took, within))
    return took


def test_help(binary):
    p = run(binary, "--help")
    check_eq(p.returncode, 0, "--help exit status")
    check(b"--port" in p.stdout and b"--workers" in p.stdout and b"--host" in p.stdout,
          "--help stdout lacks the flags: %r" % p.stdout[:300])


def test_bad_flags(binary):
    for args in (["--bogus"], ["--port"], ["--port", "abc"], ["--port", "65536"],
                 ["--workers", "abc"], ["extra-positional"]):
        p = run(binary, *args)
        check_eq(p.returncode, 2, "exit status for %r (stderr %r)" % (args, p.stderr[:200]))
        check(p.stderr.strip() != b"", "no message on stderr for %r" % args)
        check(b"listening" not in p.stdout, "started anyway for %r" % args)


def test_listening_line(binary):
    for workers in (1, 3):
        srv = Server(binary, ["--port", "0", "--workers", str(workers), "--host", "127.0.0.1"])
        try:
            srv.start()
            want = r"^tern-demo listening on http://127\.0\.0\.1:%d \(%d workers\)$" % (
                srv.port, workers)
            check(re.match(want, srv.listen_line), "listening line %r" % srv.listen_line)
            check(srv.port != 0, "port 0 reported")
            with Conn(srv.port) as c:
                check_eq(c.request("GET", "/plaintext").status, 200, "serves")
            clean_exit(srv)
        finally:
            srv.cleanup()


def test_port_in_use_plain_socket(binary):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    try:
        p = run(binary, "--host", "127.0.0.1", "--port", str(port), "--workers", "2")
        check_eq(p.returncode, 1, "exit status (stderr %r)" % p.stderr[:300])
        want = "tern-demo: cannot listen on 127.0.0.1:%d: Address already in use" % port
        check(want.encode() in p.stderr, "stderr %r lacks %r" % (p.stderr[:300], want))
        check(b"listening" not in p.stdout, "printed a listening line")
    finally:
        s.close()


def test_port_in_use_by_other_instance(binary):
    """SO_REUSEPORT lets any same-user socket with the option join the port; a second
    tern-demo must still refuse rather than silently take half the connections."""
    a = Server(binary).start()
    try:
        p = run(binary, "--host", "127.0.0.1", "--port", str(a.port), "--workers", "2",
                timeout=3)
        check_eq(p.returncode, 1, "second instance on port %d: exit status (stdout %r)"
                 % (a.port, p.stdout[:200]))
        check(b"Address already in use" in p.stderr, "stderr %r" % p.stderr[:300])
    except subprocess.TimeoutExpired:
        # subprocess.run has already killed that child (by its pid)
        raise harness.TestFailure("second tern-demo on port %d started and kept running "
                                  "(SO_REUSEPORT shares the port)" % a.port)
    finally:
        clean_exit(a)
        a.cleanup()


def test_sigint_clean_exit(binary):
    srv = Server(binary).start()
    try:
        with Conn(srv.port) as c:
            check_eq(c.request("GET", "/json").status, 200, "serves")
        clean_exit(srv, signal.SIGINT, within=5)
    finally:
        srv.cleanup()


def test_sigterm_drains_in_flight(binary):
    srv = Server(binary).start()
    try:
        conns = [Conn(srv.port) for _ in range(10)]
        for c in conns:
            c.send(harness.build_request("GET", "/concurrent"))
        time.sleep(0.005)   # handlers are parked in their sleeps now
        srv.proc.send_signal(signal.SIGTERM)
        for i, c in enumerate(conns):
            try:
                r = c.read_response()
            except harness.Closed as e:
                raise harness.TestFailure("in-flight request %d dropped on SIGTERM: %s" % (i, e))
            check_eq(r.status, 200, "in-flight response %d" % i)
            check(r.body.startswith(b"Request "), "body %r" % r.body)
            c.close()
        clean_exit(srv, within=5, already_signalled=True)
    finally:
        srv.cleanup()


def test_second_signal_during_drain(binary):
    """SIGTERM, then SIGINT while requests are still draining: the process must still end
    with status 0 (not be killed by the second signal after finishing the drain)."""
    srv = Server(binary).start()
    try:
        conns = [Conn(srv.port) for _ in range(10)]
        for c in conns:
            c.send(harness.build_request("GET", "/concurrent"))
        time.sleep(0.005)
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.002)
        srv.proc.send_signal(signal.SIGINT)
        for i, c in enumerate(conns):
            try:
                c.read_response()
            except harness.Closed:
                pass     # a second signal may legitimately cut the drain short
            c.close()
        clean_exit(srv, signal.SIGINT, within=5, already_signalled=True)
    finally:
        srv.cleanup()


def test_sigterm_right_after_listening_line(binary):
    """A supervisor may signal as soon as the listening line appears: the stop signals
    must already be handled by then (no death by the default action)."""
    for i in range(30):
        srv = Server(binary).start()
        try:
            srv.proc.send_signal(signal.SIGTERM)
            rc = srv.proc.wait(20)
            check_eq(rc, 0, "exit status, SIGTERM right after the listening line (try %d)" % i)
        finally:
            srv.cleanup()


def test_idle_connections_do_not_delay_exit(binary):
    srv = Server(binary).start()
    try:
        idle = [Conn(srv.port) for _ in range(50)]
        for c in idle[:25]:   # half have served a request, half never sent anything
            check_eq(c.request("GET", "/plaintext").status, 200, "serves")
        took = clean_exit(srv, within=5)
        print("    exit with 50 idle connections took %.2fs" % took)
        for c in idle[:25]:
            check_eq(c.wait_closed(1.0), "closed", "idle keep-alive connection closed")
            c.close()
        for c in idle[25:]:
            c.close()
    finally:
        srv.cleanup()


if __name__ == "__main__":
    harness.main(globals(), needs_server=False)
