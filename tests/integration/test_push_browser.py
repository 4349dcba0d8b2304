"""/ws, /ws/callback, /chat and /sse opened from a page in headless Chromium (Debian
chromium driven by playwright-core from npm): the browser's own WebSocket (text and binary
echo, subprotocol, clean close) and EventSource (events with ids, the stream's end) against
the demo. scripts/deps.sh test installs chromium and playwright-core; without them the
test says why and skips, as test_dashboard does.
"""
import json
import os
import shutil
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402
from test_dashboard import CHROMIUM, HERE, NPM_DIR, tools_missing  # noqa: E402


def test_ws_and_sse_in_chromium(srv):
    why = tools_missing()
    if why:
        raise harness.Skip(why)
    data_dir = tempfile.mkdtemp(prefix="tern-chromium-")
    try:
        env = dict(os.environ, NODE_PATH=os.path.join(NPM_DIR, "node_modules"), CHROMIUM=CHROMIUM)
        p = subprocess.run(["node", os.path.join(HERE, "push_browser.js"),
                            "http://127.0.0.1:%d" % srv.port, data_dir],
                           capture_output=True, timeout=120, env=env)
    finally:
        shutil.rmtree(data_dir, ignore_errors=True)
    lines = p.stdout.decode().strip().splitlines()
    check(lines, "no output from push_browser.js: %r" % p.stderr[-2000:])
    out = json.loads(lines[-1])
    check("fatal" not in out, "push_browser.js: %s" % out.get("fatal"))
    check_eq(out["page_errors"], [], "page errors")
    r = out["result"]
    for key in ("ws", "ws_callback"):
        check_eq(r[key]["got"], ["hello, tern", "1,2,3,255"], key + " echo (text, binary)")
        check_eq(r[key]["code"], 1000, key + " close code")
    check_eq(r["ws"]["protocol"], "echo", "negotiated subprotocol")
    check("hi from a" in r["chat"], "chat broadcast: %r" % r["chat"])
    check(len(r["sse"]) >= 3, "SSE events: %r" % r["sse"])
    check(all(e["id"] for e in r["sse"][:3]), "SSE ids: %r" % r["sse"])
    print("    chromium: ws and ws/callback echoed text and binary, chat broadcast, %d SSE events"
          % len(r["sse"]))


if __name__ == "__main__":
    harness.main(globals())
