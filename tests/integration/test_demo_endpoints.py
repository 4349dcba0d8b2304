"""The demo's endpoint list is the same in three places: the routes registered in
examples/demo/*.c, `tern-demo --help`, and the README's endpoint table; and every listed
endpoint answers (not 404/405) on a running server."""
import glob
import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

METHODS = {"TERN_GET": "GET", "TERN_POST": "POST"}
# pg.c's routes need --pg DSN (tests/integration/test_pg.py runs them on a real
# PostgreSQL); without it they answer 503 with a JSON message naming --pg
PG_ROUTES = {"/db", "/queries", "/updates", "/fortunes", "/pg/sleep"}


def code_routes():
    routes = set()
    for path in glob.glob(os.path.join(harness.REPO, "examples", "demo", "*.c")):
        src = open(path).read()
        for meth, pattern in re.findall(r'tern_route(?:_with)?\(\s*s,\s*(TERN_\w+),\s*"([^"]+)"',
                                        src):
            routes.add((METHODS[meth], pattern))
        # tern_static(s, "/static/", dir) mounts GET PREFIX* (--static DIR)
        for prefix in re.findall(r'tern_static(?:_with)?\(\s*s,\s*"([^"]+)"', src):
            routes.add(("GET", prefix + "*"))
    return routes


def split_list(method, paths):
    return {(method, p.split("?")[0]) for p in re.split(r",\s*", paths.strip())}


def help_routes(binary):
    out = subprocess.run([binary, "--help"], capture_output=True, timeout=10).stdout.decode()
    routes = set()
    for method, paths in re.findall(r"^\s+(GET|POST) (/[^\s,]*(?:, /[^\s,]*)*)", out, re.M):
        routes |= split_list(method, paths)
    return routes


def readme_routes():
    text = open(os.path.join(harness.REPO, "README.md")).read()
    start = text.index("## The demo server")
    section = text[start:text.index("\n## ", start + 1)]
    routes = set()
    for line in section.splitlines():
        if not line.startswith("| `"):
            continue
        first_cell = line.split("|")[1]
        for method, path in re.findall(r"`(GET|POST) (/[^`]*)`", first_cell):
            routes.add((method, path.split("?")[0]))
    return routes


def test_code_help_and_readme_agree(srv):
    code, helped, readme = code_routes(), help_routes(srv.binary), readme_routes()
    check(len(code) >= 15, "routes found in the code: %r" % sorted(code))
    check_eq(sorted(helped), sorted(code), "--help endpoints vs the routes in examples/demo")
    check_eq(sorted(readme), sorted(code), "README endpoint table vs the routes in examples/demo")


def test_every_endpoint_answers(srv):
    with harness.Conn(srv.port) as c:
        for method, pattern in sorted(code_routes()):
            path = pattern.replace(":id", "7").replace("*", "index.html")
            if path == "/sse":
                path = "/sse?count=1"  # an event stream otherwise runs until the client leaves
            r = c.request(method, path, body=b"x" if method == "POST" else None)
            check(r.status not in (404, 405), "%s %s: %d" % (method, path, r.status))
            if pattern in PG_ROUTES and r.status == 503 and b"--pg" in r.body:
                continue
            check(r.status < 500, "%s %s: %d %r" % (method, path, r.status, r.body[:200]))


if __name__ == "__main__":
    harness.main(globals(), server_args=["--port", "0", "--workers", "2", "--host", "127.0.0.1",
                                         "--static", os.path.join(harness.REPO, "examples", "demo", "static")])
