"""Listening like a service: Unix domain sockets (mode, stale file, removal at exit), IPv6
and dual stack, systemd socket activation through `systemd-socket-activate` with a fake
NOTIFY_SOCKET listener (READY=1, RELOADING=1, WATCHDOG=1, STOPPING=1), --user dropping
privileges after binding, and the refusal to serve as root unless told to."""
import os
import pwd
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, Server, check, check_eq  # noqa: E402

TMP = tempfile.mkdtemp(prefix="tern-service-")


def unix_get(path, target="/plaintext"):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(path)
    s.sendall(b"GET %s HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n" % target.encode())
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return data


def env_with(**kw):
    env = dict(os.environ)
    env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
    env.update(kw)
    return env


def finish(proc, what):
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=20)
    check_eq(proc.returncode, 0, "%s exit status (stderr %r)" % (what, err[-800:]))
    for mark in harness.SANITIZER_MARKS:
        check(mark.encode() not in err, "%s: sanitizer report %r" % (what, err[-2000:]))
    return out, err


def test_unix_socket_alongside_tcp(binary):
    path = os.path.join(TMP, "tern.sock")
    srv = Server(binary, ["--port", "0", "--workers", "2", "--host", "127.0.0.1",
                          "--unix", path, "--unix-mode", "0660"]).start()
    try:
        check_eq(stat.S_IMODE(os.stat(path).st_mode), 0o660, "socket file mode")
        for _ in range(20):  # both workers take from the one queue
            check(unix_get(path).endswith(b"Hello, World!"), "served over the Unix socket")
        with Conn(srv.port) as c:
            check_eq(c.request("GET", "/plaintext").status, 200, "and over TCP")
        check_eq(srv.stop(), 0, "exit status")
        check(not os.path.exists(path), "socket file removed at exit")
    finally:
        srv.cleanup()


def test_unix_only_stale_file_and_refusals(binary):
    path = os.path.join(TMP, "stale.sock")
    old = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old.bind(path)
    old.close()  # a socket file nobody accepts on: replaced
    p = subprocess.Popen([binary, "--tcp", "false", "--unix", path, "--workers", "1"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env_with())
    try:
        line = p.stdout.readline().decode()
        check_eq(line.strip(), "tern-demo listening on http+unix:%s (1 workers)" % path, "line")
        check(unix_get(path, "/healthz").endswith(b'"workers":1}\n'), "healthz over unix")
        # a live socket is not taken over, a plain file never removed
        q = subprocess.run([binary, "--tcp", "false", "--unix", path], capture_output=True,
                           timeout=10, env=env_with())
        check(q.returncode != 0 and b"Address already in use" in q.stderr, "live: %r" % q.stderr)
    finally:
        finish(p, "unix-only server")
    plain = os.path.join(TMP, "plain-file")
    open(plain, "w").close()
    q = subprocess.run([binary, "--tcp", "false", "--unix", plain], capture_output=True,
                       timeout=10, env=env_with())
    check(q.returncode != 0 and b"File exists" in q.stderr, "plain file: %r" % q.stderr)
    check(os.path.exists(plain), "a plain file is never removed")


def have_ipv6():
    try:
        s = socket.socket(socket.AF_INET6)
        s.bind(("::1", 0))
        s.close()
        return True
    except OSError:
        return False


def test_ipv6_and_dual_stack(binary):
    if not have_ipv6():
        raise harness.Skip("no IPv6 on this machine")
    for host, v4 in (("::", True), ("::1", False)):
        srv = Server(binary, ["--port", "0", "--workers", "1", "--host", host]).start()
        try:
            check("://[%s]:" % host in srv.listen_line, "listening line %r" % srv.listen_line)
            with Conn(srv.port, host="::1") as c:
                check_eq(c.request("GET", "/plaintext").status, 200, "IPv6 on %s" % host)
            try:
                with Conn(srv.port, host="127.0.0.1") as c:
                    ok = c.request("GET", "/plaintext").status == 200
            except OSError:
                ok = False
            check_eq(ok, v4, "IPv4 client on %s" % host)
            check_eq(srv.stop(), 0, "exit status")
        finally:
            srv.cleanup()


class NotifyListener:
    """A fake NOTIFY_SOCKET: a datagram socket that records what the server says."""

    def __init__(self):
        self.path = os.path.join(TMP, "notify.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(self.path)
        self.messages = []

    def wait_for(self, text, timeout=10):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if any(text in m for m in self.messages):
                return True
            self.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                break
        return any(text in m for m in self.messages)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def test_systemd_socket_activation_and_notify(binary):
    tool = shutil.which("systemd-socket-activate")
    check(tool is not None, "systemd-socket-activate missing: scripts/deps.sh test installs "
          "Debian's systemd package")
    notify = NotifyListener()
    port = free_port()
    p = subprocess.Popen([tool, "-l", "127.0.0.1:%d" % port, "-E", "NOTIFY_SOCKET=" + notify.path,
                          "-E", "WATCHDOG_USEC=600000", "-E", "TERN_ALLOW_ROOT=1",
                          "-E", "ASAN_OPTIONS=abort_on_error=0:detect_leaks=1",
                          binary, "--workers", "2"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        # the tool listens, then execs the server on the first connection (Accept=no)
        deadline = time.monotonic() + 10
        while True:
            try:
                c = Conn(port)
                break
            except OSError:
                check(time.monotonic() < deadline, "systemd-socket-activate never listened")
                time.sleep(0.05)
        with c:
            check_eq(c.request("GET", "/plaintext").status, 200, "served on the inherited socket")
        line = p.stdout.readline().decode()
        check_eq(line.strip(), "tern-demo listening on 1 inherited socket (port %d) (2 workers)"
                 % port, "listening line")
        check(notify.wait_for("READY=1"), "READY=1: %r" % notify.messages)
        check(notify.wait_for("WATCHDOG=1"), "WATCHDOG=1 (WATCHDOG_USEC=600000)")
        for _ in range(20):
            with Conn(port) as c:
                check_eq(c.request("GET", "/healthz").status, 200, "both workers serve")
        p.send_signal(signal.SIGHUP)
        check(notify.wait_for("RELOADING=1"), "RELOADING=1: %r" % notify.messages)
        reloading = [m for m in notify.messages if "RELOADING=1" in m][0]
        check(re.search(r"MONOTONIC_USEC=\d+", reloading), "MONOTONIC_USEC in %r" % reloading)
        i = notify.messages.index(reloading)
        notify.messages = notify.messages[i + 1:]
        check(notify.wait_for("READY=1"), "READY=1 after the reload: %r" % notify.messages)
    finally:
        out, err = finish(p, "socket-activated server")
    check(notify.wait_for("STOPPING=1", 2), "STOPPING=1: %r" % notify.messages)


def test_user_drops_privileges(binary):
    if os.geteuid() != 0:
        raise harness.Skip("needs root")
    user = pwd.getpwnam("nobody")
    # bind a port only root may bind, then serve as nobody
    for port in range(800, 900):
        try:
            s = socket.socket()
            s.bind(("127.0.0.1", port))
            s.close()
            break
        except OSError:
            continue
    env = dict(os.environ)
    env.pop("TERN_ALLOW_ROOT", None)
    srv = Server(binary, ["--port", str(port), "--workers", "2", "--host", "127.0.0.1",
                          "--user", "nobody", "--db", os.path.join(TMP, "nobody.db")])
    old = os.environ.pop("TERN_ALLOW_ROOT", None)
    try:
        srv.start()
        status = open("/proc/%d/status" % srv.pid).read()
        uid = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)\s+(\d+)", status, re.M).groups()
        check_eq(uid, (str(user.pw_uid),) * 4, "real, effective, saved, fs uid")
        with Conn(srv.port) as c:
            check_eq(c.request("GET", "/plaintext").status, 200, "serves as nobody on port %d" % port)
        check_eq(srv.stop(), 0, "exit status")
    finally:
        if old is not None:
            os.environ["TERN_ALLOW_ROOT"] = old
        srv.cleanup()


def test_refuses_root_unless_told(binary):
    if os.geteuid() != 0:
        raise harness.Skip("needs root")
    env = env_with()
    env.pop("TERN_ALLOW_ROOT", None)
    p = subprocess.run([binary, "--port", "0", "--host", "127.0.0.1"], capture_output=True,
                       timeout=10, env=env)
    check_eq(p.returncode, 2, "exit status as root")
    check(b"refusing to serve as root" in p.stderr, "stderr %r" % p.stderr)
    check(b"listening" not in p.stdout, "started anyway")
    p = subprocess.Popen([binary, "--port", "0", "--host", "127.0.0.1", "--allow-root"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    check(b"listening" in p.stdout.readline(), "--allow-root serves")
    finish(p, "--allow-root server")


if __name__ == "__main__":
    harness.main(globals(), needs_server=False)
