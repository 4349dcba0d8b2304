"""Operating tern: /healthz and /readyz (503 the moment a drain begins, while the listener
still serves for --drain-delay), the --config file (every flag settable, errors name the
line, flags win over the file), SIGHUP reload (limits applied, restart-only settings
reported, log file reopened), and README's option table against the code."""
import os
import re
import signal
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, Server, check, check_eq  # noqa: E402
import json  # noqa: E402
import subprocess  # noqa: E402

TMP = tempfile.mkdtemp(prefix="tern-ops-")


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def get(port, path):
    with Conn(port) as c:
        r = c.request("GET", path)
        return r.status, r.body


def clean_stop(srv):
    rc = srv.stop()
    check_eq(rc, 0, "exit status (stderr %r)" % srv.stderr_text()[-800:])
    check(srv.sanitizer_report() is None, "sanitizer report: %s" % srv.sanitizer_report())


def test_health_and_ready(binary):
    srv = Server(binary, ["--port", "0", "--workers", "2", "--host", "127.0.0.1"]).start()
    try:
        st, body = get(srv.port, "/healthz")
        check_eq(st, 200, "/healthz status")
        check_eq(json.loads(body), {"status": "alive", "workers": 2}, "/healthz body")
        st, body = get(srv.port, "/readyz")
        check_eq(st, 200, "/readyz status (%r)" % body)
        doc = json.loads(body)
        check(doc["ready"] is True and doc["draining"] is False, "/readyz %r" % doc)
        check_eq(doc["checks"], {"db": "ok"}, "/readyz checks")
        clean_stop(srv)
    finally:
        srv.cleanup()


def test_readyz_503_while_draining(binary):
    srv = Server(binary, ["--port", "0", "--workers", "2", "--host", "127.0.0.1",
                          "--drain-delay", "1500"]).start()
    try:
        keep = Conn(srv.port)
        check_eq(keep.request("GET", "/readyz").status, 200, "ready before")
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.2)
        # an established connection and a new one both see the drain at once
        r = keep.request("GET", "/readyz")
        check_eq(r.status, 503, "/readyz on a kept connection after SIGTERM")
        check_eq(json.loads(r.body)["reason"], "draining", "reason")
        st, body = get(srv.port, "/readyz")
        check_eq(st, 503, "/readyz on a new connection during the delay")
        check_eq(get(srv.port, "/plaintext")[0], 200, "still serving during the delay")
        check_eq(get(srv.port, "/healthz")[0], 200, "alive while draining")
        keep.close()
        srv.proc.wait(15)
        took = time.monotonic() - t0
        check(1.4 <= took < 12, "exit %.2fs after SIGTERM with a 1.5 s delay" % took)
        check_eq(srv.proc.returncode, 0, "exit status")
        check("not ready; accepting for 1500 ms more" in srv.stderr_text(), "drain logged")
    finally:
        srv.cleanup()


def test_second_signal_cuts_the_delay(binary):
    srv = Server(binary, ["--port", "0", "--workers", "1", "--host", "127.0.0.1",
                          "--drain-delay", "60000"]).start()
    try:
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGTERM)
        srv.proc.wait(15)
        check(time.monotonic() - t0 < 10, "second SIGTERM ended the delay")
        check_eq(srv.proc.returncode, 0, "exit status")
    finally:
        srv.cleanup()


def test_config_file_sets_flags_and_flags_win(binary):
    log = os.path.join(TMP, "demo.log")
    conf = write("good.conf", "# tern-demo\n\nworkers = 3\nhost = 127.0.0.1\n"
                 "  max-connections = 50   \nport = 0\nlog-file = \"%s\"\n"
                 "reuse-port = false\ndrain-delay = 0\n" % log)
    srv = Server(binary, ["--config", conf, "--workers", "2"]).start()
    try:
        check(srv.listen_line.endswith("(2 workers)"), "flag beats file: %r" % srv.listen_line)
        check(srv.listen_line.startswith("tern-demo listening on http://127.0.0.1:"),
              "host from the file: %r" % srv.listen_line)
        check_eq(get(srv.port, "/plaintext")[0], 200, "serves")
        # SIGHUP: the file read again; a limit changes, workers needs a restart
        with open(conf, "a") as f:
            f.write("max-connections = 70\nworkers = 4\n")
        os.rename(log, log + ".1")  # logrotate moved it
        srv.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not os.path.exists(log):
            time.sleep(0.05)
        time.sleep(0.2)
        text = open(log).read() if os.path.exists(log) else ""
        check("tern: reload: max-connections 50 -> 70" in text, "reload log %r" % text)
        check("log file %s reopened" % log in text, "reopen logged: %r" % text)
        check("workers" not in text, "flag still wins on reload: %r" % text)
        check_eq(get(srv.port, "/plaintext")[0], 200, "serves after reload")
        clean_stop(srv)
        check("ERROR" not in open(log).read(), "no sanitizer report in the log")
    finally:
        srv.cleanup()


def test_bad_reload_keeps_configuration(binary):
    conf = write("reload.conf", "max-connections = 50\n")
    srv = Server(binary, ["--config", conf, "--port", "0", "--host", "127.0.0.1",
                          "--workers", "1"]).start()
    try:
        write("reload.conf", "max-connections = 70\nmax-conections = 1\n")
        srv.proc.send_signal(signal.SIGHUP)
        time.sleep(1.0)
        err = srv.stderr_text()
        check("reload.conf:2: max-conections: unknown key" in err, "error names the line: %r" % err)
        check("configuration kept" in err and "-> 70" not in err, "kept: %r" % err)
        check_eq(get(srv.port, "/plaintext")[0], 200, "serves")
        clean_stop(srv)
    finally:
        srv.cleanup()


def test_config_errors_name_the_line(binary):
    cases = [("port = 1\nbogus = 3\n", ":2: bogus: unknown key"),
             ("\n\nworkers = x\n", ":3: workers: bad value 'x' (1-1024)"),
             ("workers 3\n", ":1: expected 'key = value'"),
             ("max-body = 1\nreuse-port = maybe\n", ":2: reuse-port: bad value 'maybe'"),
             ("host = \"127.0.0.1\n", ":1: unterminated quote"),
             ("budget-mb = 1\n", ":1: budget-mb: bad value '1' (16-65536)"),
             ("config = other.conf\n", ":1: config: only on the command line"),
             ("header-timeout = -5\n", ":1: header-timeout: bad value '-5'")]
    for i, (text, want) in enumerate(cases):
        path = write("bad%d.conf" % i, text)
        p = subprocess.run([binary, "--config", path], capture_output=True, timeout=10)
        check_eq(p.returncode, 2, "exit status for %r" % text)
        check((path + want).encode() in p.stderr, "stderr %r lacks %r" % (p.stderr, path + want))
        check(b"listening" not in p.stdout, "started anyway for %r" % text)
    p = subprocess.run([binary, "--config", os.path.join(TMP, "missing.conf")],
                       capture_output=True, timeout=10)
    check_eq(p.returncode, 2, "missing file")
    check(b"No such file or directory" in p.stderr, "stderr %r" % p.stderr)


def option_names_in_code():
    src = open(os.path.join(harness.REPO, "examples", "demo", "options.c")).read()
    return set(re.findall(r'\{"([a-z0-9-]+)", (?:required|no)_argument', src)) - {"help"}


def test_readme_lists_every_option(binary):
    text = open(os.path.join(harness.REPO, "README.md")).read()
    start = text.index("### Options")
    section = text[start:text.index("\n## ", start)]
    rows = re.findall(r"^\| `([a-z0-9-]+)` \| ([^|]+)\| ([^|]+)\| ([^|]+)\|", section, re.M)
    listed = {r[0] for r in rows}
    code = option_names_in_code()
    check(len(code) >= 30, "options found in options.c: %r" % sorted(code))
    check_eq(sorted(listed), sorted(code), "README options vs options.c")
    helptext = subprocess.run([binary, "--help"], capture_output=True, timeout=10).stdout.decode()
    for name in code:
        check("--" + name in helptext, "--help lacks --%s" % name)
    # every option is accepted from a file (a value that passes its check)
    for name, default, unit, _ in rows:
        default = default.strip().strip("`")
        if not re.match(r"^[0-9]+$|^false$", default):
            continue
        path = write("one.conf", "%s = %s\n" % (name, default))
        p = subprocess.run([binary, "--config", path, "--help"], capture_output=True, timeout=10)
        check_eq((p.returncode, p.stderr), (0, b""), "'%s = %s' from a file" % (name, default))


def test_contrib_config_loads(binary):
    path = os.path.join(harness.REPO, "contrib", "systemd", "tern-demo.conf")
    p = subprocess.run([binary, "--config", path, "--help"], capture_output=True, timeout=10)
    check_eq((p.returncode, p.stderr), (0, b""), "contrib/systemd/tern-demo.conf")


if __name__ == "__main__":
    harness.main(globals(), needs_server=False)
