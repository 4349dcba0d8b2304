#!/usr/bin/env python3
"""Scale-out behind real load balancers (`make cluster-test`; docs/DEPLOY.md).

Three tern-demo instances on loopback behind nginx (upstream keep-alive, passive health
checks: max_fails, proxy_next_upstream) and HAProxy (active checks on /readyz). wrk drives
load through both while every instance is restarted in turn (SIGTERM, wait for its exit,
start it again, wait until ready); then a fourth instance is added under load. Passes only
with zero failed requests end to end: no socket error, no non-2xx response, in wrk's own
count (its Lua done() hook prints the tally).

Each instance runs with --drain-delay: on SIGTERM its /readyz turns 503 at once while it
keeps serving, HAProxy's checks (every 200 ms) take it out, then it drains. nginx has no
active checks: a refused connection is retried on the next upstream (proxy_next_upstream
error), so its clients see no failure either.

    python3 tests/cluster/cluster_test.py --binary build/tern-demo [--seconds-per-step 3]
"""
import argparse
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

TMP = tempfile.mkdtemp(prefix="tern-cluster-")
DRAIN_DELAY_MS = 1500
LUA = """
-- wrk's own tally: every response whose status is not 2xx/3xx is errors.status
done = function(summary, latency, requests)
  io.write(string.format('TALLY {"requests":%d,"connect":%d,"read":%d,"write":%d,"timeout":%d,'
    .. '"status":%d}\\n', summary.requests, summary.errors.connect, summary.errors.read,
    summary.errors.write, summary.errors.timeout, summary.errors.status))
end
"""


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


class Instance:
    def __init__(self, binary, port, n):
        self.binary, self.port, self.n, self.proc = binary, port, n, None

    def start(self):
        env = dict(os.environ, TERN_ALLOW_ROOT="1")
        self.log = open(os.path.join(TMP, "tern%d.log" % self.n), "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
             "--drain-delay", str(DRAIN_DELAY_MS), "--db", os.path.join(TMP, "db%d" % self.n)],
            stdout=subprocess.DEVNULL, stderr=self.log, env=env)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen("http://127.0.0.1:%d/readyz" % self.port, timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise SystemExit("instance %d not ready on port %d" % (self.n, self.port))

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(30)
        if rc != 0:
            raise SystemExit("instance %d exited %d (log %s)" % (self.n, rc, self.log.name))

    def requests(self):
        with urllib.request.urlopen("http://127.0.0.1:%d/stats" % self.port, timeout=2) as r:
            return json.load(r)["total_requests"]


def write(name, text):
    path = os.path.join(TMP, name)
    with open(path, "w") as f:
        f.write(text)
    return path


def start_balancers(ports, nginx_port, haproxy_port):
    servers = "\n".join("        server 127.0.0.1:%d max_fails=1 fail_timeout=2s;" % p for p in ports)
    nconf = write("nginx.conf", """worker_processes 1;
pid %s/nginx.pid;
error_log %s/nginx.err warn;
events { worker_connections 1024; }
http {
    access_log off;
    upstream tern {
%s
        keepalive 32;
    }
    server {
        listen 127.0.0.1:%d;
        location / {
            proxy_pass http://tern;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_next_upstream error timeout http_502 http_503;
            proxy_next_upstream_tries 4;
            proxy_connect_timeout 1s;
        }
    }
}
""" % (TMP, TMP, servers, nginx_port))
    hservers = "\n".join("    server t%d 127.0.0.1:%d check inter 200 fall 1 rise 2" % (i + 1, p)
                         for i, p in enumerate(ports))
    hconf = write("haproxy.cfg", """global
    maxconn 4096
defaults
    mode http
    timeout connect 1s
    timeout client 30s
    timeout server 30s
    retries 3
    option redispatch
    retry-on conn-failure empty-response response-timeout 503
frontend fe
    bind 127.0.0.1:%d
    default_backend tern
backend tern
    balance roundrobin
    option httpchk GET /readyz
    http-reuse safe
%s
""" % (haproxy_port, hservers))
    nginx = subprocess.Popen(["nginx", "-c", nconf, "-g", "daemon off;"],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    haproxy = subprocess.Popen(["haproxy", "-db", "-f", hconf], stdout=subprocess.DEVNULL,
                               stderr=open(os.path.join(TMP, "haproxy.err"), "wb"))
    time.sleep(1.0)
    for p, what in ((nginx, "nginx"), (haproxy, "haproxy")):
        if p.poll() is not None:
            raise SystemExit("%s did not start (see %s)" % (what, TMP))
    return nginx, haproxy


def wrk(port, seconds):
    lua = write("count.lua", LUA)
    return subprocess.Popen(["wrk", "-t1", "-c16", "-d%ds" % seconds, "-s", lua,
                             "http://127.0.0.1:%d/plaintext" % port],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def verdict(name, proc):
    out = proc.communicate(timeout=600)[0].decode()
    tally = json.loads(re.search(r"TALLY (\{.*\})", out).group(1))
    bad = sum(v for k, v in tally.items() if k != "requests")
    ok = tally["requests"] - tally["status"]
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    print("%-8s %8d ok, %d failed %s, %s req/s" % (name, ok, bad, tally, rps.group(1) if rps else "?"))
    return ok, bad


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", default="build/tern-demo")
    ap.add_argument("--seconds-per-step", type=float, default=3.0)
    a = ap.parse_args()
    for tool in ("nginx", "haproxy", "wrk"):
        if not shutil.which(tool):
            raise SystemExit("%s missing: scripts/deps.sh cluster installs it" % tool)
    ports = [free_port() for _ in range(4)]
    nginx_port, haproxy_port = free_port(), free_port()
    insts = [Instance(os.path.abspath(a.binary), p, i + 1) for i, p in enumerate(ports)]
    for inst in insts[:3]:
        inst.start()
    # the fourth is in both configurations from the start, down until it runs
    nginx, haproxy = start_balancers(ports, nginx_port, haproxy_port)
    step = a.seconds_per_step
    total = int(step * 6 + 3 * (DRAIN_DELAY_MS / 1000 + 2) + 4)
    loads = [("nginx", wrk(nginx_port, total)), ("haproxy", wrk(haproxy_port, total))]
    try:
        t0 = time.monotonic()
        time.sleep(step)
        for inst in insts[:3]:
            t = time.monotonic()
            inst.stop()
            inst.start()
            print("restarted instance %d (port %d) in %.1fs" % (inst.n, inst.port,
                                                                 time.monotonic() - t))
            time.sleep(step)
        insts[3].start()
        print("added instance 4 (port %d) at %.1fs" % (ports[3], time.monotonic() - t0))
        time.sleep(step * 2)
        served4 = insts[3].requests()
        results = [verdict(name, p) for name, p in loads]
    finally:
        for name, p in loads:
            if p.poll() is None:
                p.kill()
        for p in (nginx, haproxy):
            p.terminate()
            p.wait(10)
        for inst in insts:
            if inst.proc and inst.proc.poll() is None:
                inst.stop()
    print("instance 4 served %d requests after joining" % served4)
    failed = sum(bad for _, bad in results)
    if failed or served4 < 100 or any(ok == 0 for ok, _ in results):
        print("cluster-test: FAILED (logs in %s)" % TMP)
        return 1
    print("cluster-test: passed: 3 rolling restarts and one instance added, zero failed requests")
    shutil.rmtree(TMP, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
