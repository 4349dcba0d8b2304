"""Shared harness for tern's integration tests.

Starts the real tern-demo binary on a free port, talks to it over real sockets and
checks that it shuts down cleanly (exit 0, no sanitizer report). Stdlib only.

Each test file defines plain functions `test_*(srv)` and ends with
`harness.main(globals())`; run it as
    python3 tests/integration/test_x.py --binary build-test/tern-demo [-k substring] [-v]
"""
import argparse
import contextlib
import email.utils
import os
import re
import resource
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LISTEN_RE = re.compile(rb"tern-demo listening on https?://([^\s/]+):(\d+) \((\d+) workers?\)")
# Anything a sanitizer prints on a real finding; the server must never print these.
SANITIZER_MARKS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                   "WARNING: ThreadSanitizer", "ERROR: UndefinedBehaviorSanitizer")
IMF_FIXDATE_RE = re.compile(
    r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), [0-3][0-9] "
    r"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) [0-9]{4} "
    r"[0-2][0-9]:[0-5][0-9]:[0-6][0-9] GMT$")
IO_TIMEOUT = 10.0


class TestFailure(AssertionError):
    pass


class Skip(Exception):
    """Raised by a test that cannot run here for a reason outside the project
    (no IPv6, not root, an optional browser that could not be installed).
    A tool scripts/deps.sh installs is no reason: its absence is a failure.
    A file with a skip and no failure exits 77, which ctest reports as
    skipped (SKIP_RETURN_CODE), not passed."""


def check(cond, msg):
    if not cond:
        raise TestFailure(msg)


def check_eq(got, want, what):
    if got != want:
        raise TestFailure("%s: got %s, want %s" % (what, short(got), short(want)))


def short(v, n=200):
    r = repr(v)
    return r if len(r) <= n else r[:n] + "...(%d chars)" % len(r)


# ---------------------------------------------------------------------------- args

def parse_args(argv=None):
    p = argparse.ArgumentParser()
    p.add_argument("--binary", help="path to tern-demo (default: build-test/ then build/)")
    p.add_argument("-k", dest="pattern", help="run only tests whose name contains this")
    p.add_argument("-v", dest="verbose", action="store_true", help="print server stderr at end")
    a = p.parse_args(argv)
    if a.binary is None:
        for cand in ("build-test/tern-demo", "build/tern-demo"):
            path = os.path.join(REPO, cand)
            if os.access(path, os.X_OK):
                a.binary = path
                break
        else:
            p.error("no tern-demo found; pass --binary")
    a.binary = os.path.abspath(a.binary)
    if not os.access(a.binary, os.X_OK):
        p.error("not executable: %s" % a.binary)
    return a


def raise_nofile_limit():
    """Soft RLIMIT_NOFILE -> hard, for us and (inherited) for the server we spawn."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return hard


# ---------------------------------------------------------------------------- server

class Server:
    def __init__(self, binary, args=None, host="127.0.0.1", workers=2, wrapper=None):
        """wrapper: a command that execs the server (e.g. ["prlimit", "--nofile=128:128"]),
        so the pid is still the server's."""
        self.binary = binary
        self.host = host
        self.workers = workers
        self.wrapper = list(wrapper or [])
        self.args = args if args is not None else [
            "--port", "0", "--workers", str(workers), "--host", host]
        self.proc = None
        self.port = None
        self.listen_line = None
        self.stderr_file = tempfile.NamedTemporaryFile(
            prefix="tern-demo-stderr-", suffix=".log", delete=False)
        self.stdout_rest = b""

    def start(self, timeout=15.0):
        env = dict(os.environ)
        # Make sanitizer findings fatal and visible; keep leak detection on.
        env.setdefault("ASAN_OPTIONS", "abort_on_error=0:detect_leaks=1")
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1")
        self.proc = subprocess.Popen(self.wrapper + [self.binary] + self.args,
                                     stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self.stderr_file, env=env)
        fd = self.proc.stdout.fileno()
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                self.kill()
                raise TestFailure("no 'listening on' line within %.0fs; stdout=%r stderr=%r"
                                  % (timeout, buf, self.stderr_text()[-2000:]))
            r, _, _ = select.select([fd], [], [], left)
            if r:
                chunk = os.read(fd, 4096)
                if not chunk:
                    self.proc.wait(5)
                    raise TestFailure("server exited (%s) before listening; stderr=%r"
                                      % (self.proc.returncode, self.stderr_text()[-2000:]))
                buf += chunk
        line, _, rest = buf.partition(b"\n")
        self.listen_line = line.decode("utf-8", "replace")
        self.stdout_rest = rest
        m = LISTEN_RE.search(line)
        if not m:
            self.kill()
            raise TestFailure("unexpected first stdout line %r" % line)
        self.port = int(m.group(2))
        # Keep draining stdout so an unexpectedly chatty server never blocks on a full pipe.
        threading.Thread(target=self._drain_stdout, daemon=True).start()
        return self

    def _drain_stdout(self):
        try:
            while True:
                chunk = self.proc.stdout.read1(65536)
                if not chunk:
                    return
                self.stdout_rest += chunk
        except (ValueError, OSError):
            return

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    @property
    def pid(self):
        return self.proc.pid

    def rss_kb(self):
        """Resident set size (VmRSS) in KiB."""
        return proc_status_kb(self.proc.pid, "VmRSS")

    def cpu_seconds(self):
        """utime + stime of the whole server process so far."""
        return proc_cpu_seconds(self.proc.pid)

    def stderr_text(self):
        try:
            with open(self.stderr_file.name, "rb") as f:
                return f.read().decode("utf-8", "replace")
        except OSError:
            return ""

    def sanitizer_report(self):
        text = self.stderr_text()
        for mark in SANITIZER_MARKS:
            i = text.find(mark)
            if i >= 0:
                return text[max(0, i - 200):i + 3000]
        return None

    def stop(self, sig=signal.SIGTERM, timeout=20.0):
        """Graceful stop; returns the exit status (or raises if it hangs)."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise TestFailure("server did not exit within %.0fs of %s"
                                  % (timeout, signal.Signals(sig).name))
        return self.proc.returncode

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)

    def cleanup(self):
        self.kill()
        try:
            os.unlink(self.stderr_file.name)
        except OSError:
            pass


def proc_status_kb(pid, field="VmRSS"):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise TestFailure("no %s in /proc/%d/status" % (field, pid))


def proc_cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        # the command name may hold spaces: fields start after the last ')'
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextlib.contextmanager
def serving(binary, extra_args=(), workers=2, host="127.0.0.1", wrapper=None, port=0):
    """Starts a server of its own for one test, yields it, then requires a clean SIGTERM
    shutdown (exit 0, no sanitizer report) unless the test already failed or stopped it."""
    srv = Server(binary, ["--port", str(port), "--workers", str(workers), "--host", host] +
                 [str(a) for a in extra_args], host=host, workers=workers, wrapper=wrapper)
    srv.start()
    ok = False
    try:
        yield srv
        ok = True
    finally:
        try:
            if ok:
                rc = srv.stop()
                check(rc == 0, "exit status %s after SIGTERM; stderr tail:\n%s"
                      % (rc, srv.stderr_text()[-3000:]))
                rep = srv.sanitizer_report()
                check(rep is None, "sanitizer report in stderr:\n%s" % rep)
            elif srv.alive():
                srv.kill()
        finally:
            srv.cleanup()


async def aread_response(reader, method="GET"):
    """Reads one Content-Length framed response from an asyncio StreamReader."""
    head = await reader.readuntil(b"\r\n\r\n")
    resp = parse_head(head)
    if method == "HEAD" or resp.status in (204, 304) or 100 <= resp.status < 200:
        return resp
    cl = resp.header("Content-Length")
    check(cl is not None and cl.isdigit(), "no Content-Length in %r" % resp.headers)
    resp.body = await reader.readexactly(int(cl))
    return resp


def percentile(values, p):
    """Nearest-rank percentile (p in 0..100) of a non-empty list."""
    v = sorted(values)
    k = max(0, min(len(v) - 1, int(-(-p * len(v) // 100)) - 1))
    return v[k]


# ---------------------------------------------------------------------------- raw HTTP

class Response:
    def __init__(self, version, status, reason, headers, body, raw_head):
        self.version = version
        self.status = status
        self.reason = reason
        self.headers = headers          # list of (name, value) str, in order
        self.body = body                # bytes
        self.raw_head = raw_head        # bytes, including the final CRLFCRLF

    def header(self, name):
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name):
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    def has_token(self, name, token):
        """True if a comma-separated header (e.g. Connection) lists token."""
        token = token.lower()
        for v in self.header_all(name):
            if token in [t.strip().lower() for t in v.split(",")]:
                return True
        return False

    def __repr__(self):
        return "<Response %s %d %s body=%s>" % (self.version, self.status, self.headers,
                                                short(self.body, 120))


class Closed(Exception):
    """The peer closed (or reset) the connection before a full response arrived."""


class Conn:
    """A raw client connection with a read buffer (responses may arrive batched)."""

    def __init__(self, port, host="127.0.0.1", timeout=IO_TIMEOUT, nodelay=True):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        if nodelay:
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self.eof = False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *a):
        self.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        if self.eof:
            raise Closed("connection closed; buffered=%s" % short(self.buf))
        try:
            chunk = self.sock.recv(262144)
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise Closed("connection closed; buffered=%s" % short(self.buf))
        self.buf += chunk

    def _read_until(self, delim, limit=1 << 20):
        while True:
            i = self.buf.find(delim)
            if i >= 0:
                out, self.buf = self.buf[:i + len(delim)], self.buf[i + len(delim):]
                return out
            if len(self.buf) > limit:
                raise TestFailure("no %r within %d bytes" % (delim, limit))
            self._fill()

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_response(self, method="GET", allow_interim=False):
        """Reads one response. 1xx responses are returned only if allow_interim."""
        while True:
            head = self._read_until(b"\r\n\r\n")
            resp = parse_head(head)
            if 100 <= resp.status < 200 and not allow_interim:
                continue
            break
        if method == "HEAD" or 100 <= resp.status < 200 or resp.status in (204, 304):
            return resp
        te = resp.header("Transfer-Encoding")
        if te is not None:
            check(te.strip().lower() == "chunked", "response TE %r" % te)
            resp.body = self._read_chunked()
            return resp
        cls = resp.header_all("Content-Length")
        if cls:
            check(len(cls) == 1, "several Content-Length headers: %r" % cls)
            check(cls[0].isdigit(), "bad Content-Length %r" % cls[0])
            resp.body = self._read_exact(int(cls[0]))
            return resp
        # No framing: body runs to close (the spec says this should never happen).
        while True:
            try:
                self._fill()
            except Closed:
                break
        resp.body, self.buf = self.buf, b""
        return resp

    def _read_chunked(self):
        body = b""
        while True:
            line = self._read_until(b"\r\n")
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                while self._read_until(b"\r\n") != b"\r\n":
                    pass
                return body
            body += self._read_exact(size)
            check(self._read_exact(2) == b"\r\n", "bad chunk terminator")

    def request(self, method, path, headers=None, body=None, version="HTTP/1.1"):
        self.send(build_request(method, path, headers, body, version))
        return self.read_response(method)

    def wait_closed(self, timeout=2.0):
        """Returns 'closed' if the peer closes within timeout, 'data' if it sends more
        bytes instead (kept in self.buf), 'timeout' otherwise."""
        if self.buf:
            return "data"
        if self.eof:
            return "closed"
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return "timeout"
        except ConnectionResetError:
            self.eof = True
            return "closed"
        finally:
            self.sock.settimeout(old)
        if not chunk:
            self.eof = True
            return "closed"
        self.buf += chunk
        return "data"


def parse_head(head):
    lines = head[:-4].split(b"\r\n")
    status_line = lines[0].decode("latin-1")
    m = re.match(r"^(HTTP/\d\.\d) (\d{3}) ?(.*)$", status_line)
    check(m is not None, "bad status line %r" % status_line)
    headers = []
    for ln in lines[1:]:
        check(b":" in ln, "bad header line %r" % ln)
        k, _, v = ln.partition(b":")
        check(k == k.strip() and k, "bad header name %r" % k)
        headers.append((k.decode("latin-1"), v.strip(b" \t").decode("latin-1")))
    return Response(m.group(1), int(m.group(2)), m.group(3), headers, b"", head)


def build_request(method, path, headers=None, body=None, version="HTTP/1.1"):
    """headers: list of (name, value) or dict; a Host header is added for HTTP/1.1 unless
    headers has one (use ('Host', None) to omit it)."""
    if headers is None:
        headers = []
    elif isinstance(headers, dict):
        headers = list(headers.items())
    names = [k.lower() for k, _ in headers]
    if version == "HTTP/1.1" and "host" not in names:
        headers = [("Host", "localhost")] + headers
    if body is not None and "content-length" not in names and "transfer-encoding" not in names:
        headers = headers + [("Content-Length", str(len(body)))]
    out = ["%s %s %s\r\n" % (method, path, version)]
    for k, v in headers:
        if v is None:
            continue
        out.append("%s: %s\r\n" % (k, v))
    out.append("\r\n")
    data = "".join(out).encode("latin-1")
    return data + (body or b"")


def check_common_headers(resp, what=""):
    """Headers every tern response must carry (demo spec)."""
    check_eq(resp.header("Server"), "tern", what + " Server header")
    date = resp.header("Date")
    check(date is not None and IMF_FIXDATE_RE.match(date), "%s Date %r not IMF-fixdate"
          % (what, date))
    ts = email.utils.parsedate_to_datetime(date).timestamp()
    check(abs(ts - time.time()) < 5, "%s Date %r is not now" % (what, date))
    check(len(resp.header_all("Date")) == 1 and len(resp.header_all("Server")) == 1,
          "%s duplicate Date/Server: %r" % (what, resp.headers))


def media_type(resp):
    ct = resp.header("Content-Type")
    return None if ct is None else ct.split(";")[0].strip().lower()


# ---------------------------------------------------------------------------- runner

def main(namespace, server_args=None, needs_server=True, before_start=None):
    """Runs every test_* function in namespace (definition order) against one server
    started for the whole file, then checks a clean SIGTERM shutdown."""
    args = parse_args()
    if before_start:
        before_start()
    tests = [(n, f) for n, f in namespace.items() if n.startswith("test_") and callable(f)]
    if args.pattern:
        tests = [(n, f) for n, f in tests if args.pattern in n]
    failed = []
    skipped = []
    srv = None
    t_file = time.monotonic()
    if needs_server:
        srv = Server(args.binary, server_args)
        try:
            srv.start()
        except Exception as e:
            print("FAIL server_start: %s" % e, flush=True)
            return sys.exit(1)
    try:
        for name, fn in tests:
            t0 = time.monotonic()
            if srv is not None and not srv.alive():
                failed.append(name)
                print("FAIL %s: server is not running (exit %s)" % (name, srv.proc.returncode),
                      flush=True)
                continue
            try:
                fn(srv) if needs_server else fn(args.binary)
                print("PASS %s (%.2fs)" % (name, time.monotonic() - t0), flush=True)
            except Skip as e:
                skipped.append(name)
                print("SKIP %s: %s" % (name, e), flush=True)
            except Exception as e:
                failed.append(name)
                tb = traceback.format_exc().rstrip().splitlines()
                where = [l for l in tb if l.strip().startswith("File") and __file__ not in l]
                print("FAIL %s (%.2fs): %s: %s\n    %s" % (
                    name, time.monotonic() - t0, type(e).__name__, e,
                    where[-1].strip() if where else ""), flush=True)
        if srv is not None:
            try:
                rc = srv.stop()
                check(rc == 0, "exit status %s after SIGTERM" % rc)
                rep = srv.sanitizer_report()
                check(rep is None, "sanitizer report in stderr:\n%s" % rep)
                print("PASS shutdown_clean", flush=True)
            except Exception as e:
                failed.append("shutdown_clean")
                print("FAIL shutdown_clean: %s\n--- stderr tail ---\n%s" % (
                    e, srv.stderr_text()[-4000:]), flush=True)
            if args.verbose:
                print("--- server stderr ---\n" + srv.stderr_text())
    finally:
        if srv is not None:
            srv.cleanup()
    total = len(tests) + (1 if srv is not None else 0)
    print("%d/%d passed in %.1fs%s%s" % (total - len(failed) - len(skipped), total,
                                        time.monotonic() - t_file,
                                        "" if not skipped else "; SKIPPED: " + ", ".join(skipped),
                                        "" if not failed else "; FAILED: " + ", ".join(failed)),
          flush=True)
    sys.exit(1 if failed else 77 if skipped else 0)
