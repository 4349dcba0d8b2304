"""/dashboard in headless Chromium (Debian chromium, playwright-core from npm): the page
loads with no console error, its charts update under load, the figures it shows match
/stats within one interval; a screenshot is saved in the build folder (dashboard.png).

scripts/deps.sh test installs chromium and playwright-core (into $TERN_NPM_DIR, default
~/.cache/tern/npm); the test skips, saying why, only when they are not there."""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import Conn, check, check_eq  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
NPM_DIR = os.environ.get("TERN_NPM_DIR", os.path.expanduser("~/.cache/tern/npm"))
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")


def tools_missing():
    if not os.access(CHROMIUM, os.X_OK):
        return "no %s (Debian chromium; scripts/deps.sh test installs it)" % CHROMIUM
    if not shutil.which("node"):
        return "no node (scripts/deps.sh test installs nodejs)"
    if not os.path.isdir(os.path.join(NPM_DIR, "node_modules", "playwright-core")):
        return "no playwright-core in %s (scripts/deps.sh test installs it)" % NPM_DIR
    return None


def load(port, stop, count):
    while not stop.is_set():
        try:
            with Conn(port) as c:
                for _ in range(200):
                    if stop.is_set():
                        break
                    c.request("GET", "/plaintext")
                    count[0] += 1
        except OSError:
            time.sleep(0.01)


def test_dashboard_in_chromium(srv):
    why = tools_missing()
    if why:
        raise harness.Skip(why)
    shot = os.path.join(os.path.dirname(srv.binary), "dashboard.png")
    stop, count = threading.Event(), [0]
    threads = [threading.Thread(target=load, args=(srv.port, stop, count)) for _ in range(2)]
    for t in threads:
        t.start()
    data_dir = tempfile.mkdtemp(prefix="tern-chromium-")
    try:
        env = dict(os.environ, NODE_PATH=os.path.join(NPM_DIR, "node_modules"), CHROMIUM=CHROMIUM)
        p = subprocess.run(["node", os.path.join(HERE, "dashboard.js"),
                            "http://127.0.0.1:%d/dashboard" % srv.port, shot, data_dir],
                           capture_output=True, timeout=120, env=env)
    finally:
        stop.set()
        for t in threads:
            t.join()
        shutil.rmtree(data_dir, ignore_errors=True)
    lines = p.stdout.decode().strip().splitlines()
    check(lines, "no output from dashboard.js: %r" % p.stderr[-2000:])
    out = json.loads(lines[-1])
    check("fatal" not in out, "dashboard.js: %s" % out.get("fatal"))
    check_eq(out["status"], 200, "/dashboard status")
    check_eq(out["console_errors"] + out["page_errors"], [], "console and page errors")
    check(out["chart_changed"], "the requests/s chart did not change under load")
    check(out["updates"] >= 5, "updates: %d" % out["updates"])
    check(count[0] > 100, "load sent: %d" % count[0])
    for s in out["samples"]:
        shown, now, rps = s["shown"]["requests"], s["stats_requests"], max(s["stats_rps"], 1)
        # /stats read just after the update counts what came in since: at most about
        # one interval (1 s) of traffic more, never less
        check(shown <= now <= shown + 2 * rps + 50,
              "shown %d requests, /stats %d (%.0f/s): not within one interval" % (shown, now, rps))
        check(s["shown"]["rps"] > 0, "requests/s shown under load: %r" % s)
    check(os.path.getsize(shot) > 10000, "screenshot %s" % shot)
    print("screenshot: %s" % shot)


if __name__ == "__main__":
    harness.main(globals())
