#!/usr/bin/env python3
"""Turn bench/out/ (raw wrk outputs + results.tsv written by run.sh) into RESULTS.md.

Usage: report.py OUT_DIR RESULTS_MD [ANCHORS_DIR]
Every figure comes from a file under OUT_DIR; nothing is estimated or filled in.
"""
import os
import re
import statistics
import sys

SERVERS = ["tern", "nginx", "floor", "h2o", "tokio"]
LABEL = {"tokio": "tokio-hyper"}
KB = 1024

# ---- parsing ---------------------------------------------------------------

UNIT_US = {"us": 1.0, "ms": 1000.0, "s": 1e6, "m": 60e6}


def to_us(v):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", v)
    return float(m.group(1)) * UNIT_US[m.group(2)] if m else None


def parse_wrk(path):
    """Figures of one wrk run: requests, duration, rps, p50/p99 (µs), errors."""
    r = {"requests": None, "rps": None, "p50": None, "p99": None, "sock_err": 0, "non2xx": 0,
         "cmd": None}
    try:
        text = open(path).read()
    except OSError:
        return r
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("$ "):
            r["cmd"] = line[2:]
        elif m := re.match(r"(\d+) requests in ([\d.]+)(\w+)", line):
            r["requests"] = int(m.group(1))
        elif m := re.match(r"Requests/sec:\s+([\d.]+)", line):
            r["rps"] = float(m.group(1))
        elif m := re.match(r"(50|99)(?:\.0+)?%\s+(\S+)", line):
            r["p" + m.group(1)] = to_us(m.group(2))
        elif line.startswith("Socket errors:"):
            r["sock_err"] = sum(int(x) for x in re.findall(r"\d+", line))
        elif m := re.match(r"Non-2xx or 3xx responses:\s+(\d+)", line):
            r["non2xx"] = int(m.group(1))
    # wrk's histogram sometimes reports 0.00us for p99 (overflow under pipelining).
    if r["p99"] is not None and r["p50"] is not None and r["p99"] < r["p50"]:
        r["p99"] = None
    return r


def load(out):
    recs = []
    path = os.path.join(out, "results.tsv")
    if os.path.exists(path):
        for line in open(path):
            line = line.rstrip("\n")
            if not line:
                continue
            d = dict(kv.split("=", 1) for kv in line.split("\t") if "=" in kv)
            if "wrk" in d:
                d.update(parse_wrk(os.path.join(out, "..", d["wrk"])))
                if d.get("died"):
                    # The server exited mid-run: its figures are not a measurement.
                    for k in ("rps", "p50", "p99", "requests"):
                        d[k] = None
                elif d["requests"]:
                    d["cpu_us"] = int(d["cpu_ticks"]) / int(d["clk_tck"]) / d["requests"] * 1e6
            recs.append(d)
    return recs


def kv_file(path):
    d = {}
    if os.path.exists(path):
        for line in open(path):
            if "=" in line:
                k, v = line.rstrip("\n").split("=", 1)
                d[k] = v
    return d


# ---- formatting ------------------------------------------------------------

def fnum(v, kind):
    if v is None:
        return "—"
    if kind == "rps":
        return f"{v:,.0f}"
    if kind == "us":
        return f"{v:.2f}" if v < 100 else f"{v:,.0f}"
    if kind == "B":
        return f"{v:,.1f}"
    if kind == "kB":
        return f"{v:,.0f}"
    return str(v)


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


def ratio(a, b):
    return a / b if a is not None and b else None


BUSY = 20  # % of CPU 0 used by other processes above which a run is marked


def busy_cell(r):
    v = r.get("cpu0_other")
    if not v:
        return "—"
    return f"⚠ {v}" if float(v) > BUSY else v


def fr(x):
    return "—" if x is None else f"{x:.2f}×"


def label(s):
    return LABEL.get(s, s)


class Report:
    def __init__(self, out, anchors):
        self.out, self.anchors = out, anchors
        self.recs = load(out)
        self.lines = []
        self.targets = []          # (scenario, target text, measured text, verdict)
        self.have_tern = any(r.get("server") == "tern" for r in self.recs)

    def w(self, s=""):
        self.lines.append(s)

    def rows(self, scen, server):
        return sorted((r for r in self.recs if r.get("scenario") == str(scen)
                       and r.get("server") == server), key=lambda r: int(r["round"]))

    def servers(self, scen):
        return [s for s in SERVERS if self.rows(scen, s)]

    def verdict(self, ok, tern_rows):
        if ok is None:
            return "—"
        v = "PASS" if ok else "FAIL"
        bad = [r for r in tern_rows if r.get("non2xx") or r.get("sock_err")
               or r.get("failed", "0") != "0" or r.get("error")]
        if bad:
            v += " (tern had errors, see table)"
        return v

    def target(self, scen, text, measured, ok):
        self.targets.append((scen, text, measured, self.verdict(ok, self.rows(scen, "tern"))))
        self.w(f"| {text} | {measured} | {self.targets[-1][3]} |")

    def commands(self, scen):
        cmds = []
        for s in self.servers(scen):
            rows = self.rows(scen, s)
            cmd = rows[0].get("cmd")
            if cmd is None and "out" in rows[0]:
                with open(os.path.join(self.out, "..", rows[0]["out"])) as f:
                    first = f.readline().strip()
                cmd = first[2:] if first.startswith("$ ") else None
            if cmd:
                cmds.append(f"    {cmd}      # {label(s)}")
        if cmds:
            self.w("```")
            self.lines.extend(c.replace("    ", "", 1) for c in cmds)
            self.w("```")

    # wrk table: one row per server per round, then the medians.
    def wrk_table(self, scen, cols):
        """cols: list of (header, key, kind). Returns {server: {key: median}}."""
        meds = {}
        self.w("| server | round | " + " | ".join(c[0] for c in cols)
               + " | CPU0 other % | errors |")
        self.w("|---|---|" + "---|" * len(cols) + "---|---|")
        for s in self.servers(scen):
            rows = self.rows(scen, s)
            for r in rows:
                err = []
                if r.get("sock_err"):
                    err.append(f"{r['sock_err']} socket")
                if r.get("non2xx"):
                    err.append(f"{r['non2xx']} non-2xx")
                if r.get("died"):
                    err.append("server exited mid-run: discarded")
                elif r.get("requests") is None:
                    err.append("no wrk output")
                self.w(f"| {label(s)} | {r['round']} | "
                       + " | ".join(fnum(r.get(k), kind) for _, k, kind in cols)
                       + f" | {busy_cell(r)} | {', '.join(err) or '0'} |")
            meds[s] = {k: med([r.get(k) for r in rows]) for _, k, _ in cols}
            self.w(f"| **{label(s)}** | **median** | "
                   + " | ".join(f"**{fnum(meds[s][k], kind)}**" for _, k, kind in cols)
                   + " | | |")
        return meds

    def per_round_ratios(self, scen, key, a, b):
        ra = {r["round"]: r.get(key) for r in self.rows(scen, a)}
        rb = {r["round"]: r.get(key) for r in self.rows(scen, b)}
        xs = [ratio(ra[k], rb.get(k)) for k in sorted(ra, key=int) if k in rb]
        return ", ".join(fr(x) for x in xs)

    def ratio_table(self, scen, meds, keys):
        others = [s for s in ("nginx", "floor", "h2o", "tokio") if s in meds]
        if "tern" not in meds or not others:
            return
        self.w()
        self.w("Ratios of medians, tern / reference (per-round ratios in brackets):")
        self.w()
        self.w("| figure | " + " | ".join(f"tern / {label(o)}" for o in others) + " |")
        self.w("|---|" + "---|" * len(others))
        for hdr, key in keys:
            cells = [f"{fr(ratio(meds['tern'][key], meds[o][key]))} "
                     f"({self.per_round_ratios(scen, key, 'tern', o)})" for o in others]
            self.w(f"| {hdr} | " + " | ".join(cells) + " |")

    def targets_head(self):
        self.w()
        self.w("| target | measured (medians) | result |")
        self.w("|---|---|---|")

    # ---- scenarios -----------------------------------------------------------

    def s1(self):
        self.w("## 1. Plaintext, keep-alive, 256 connections")
        self.w()
        self.commands(1)
        cols = [("req/s", "rps", "rps"), ("CPU µs/req", "cpu_us", "us"),
                ("p50 µs", "p50", "us"), ("p99 µs", "p99", "us")]
        m = self.wrk_table(1, cols)
        self.ratio_table(1, m, [("req/s", "rps"), ("CPU µs/req", "cpu_us")])
        self.targets_head()
        t, n, f = m.get("tern"), m.get("nginx"), m.get("floor")
        x = ratio(t and t["rps"], n and n["rps"])
        self.target(1, "req/s ≥ nginx", f"{fnum(t and t['rps'], 'rps')} vs "
                    f"{fnum(n and n['rps'], 'rps')} ({fr(x)})", None if x is None else x >= 1)
        x = ratio(t and t["cpu_us"], f and f["cpu_us"])
        self.target(1, "CPU/req ≤ 1.1× floor", f"{fnum(t and t['cpu_us'], 'us')} µs vs "
                    f"{fnum(f and f['cpu_us'], 'us')} µs ({fr(x)})",
                    None if x is None else x <= 1.1)

    def s2(self):
        self.w("## 2. Pipelined, 16 requests deep, 256 connections")
        self.w()
        self.commands(2)
        # No latency: wrk times a pipelined batch from its first request only.
        cols = [("req/s", "rps", "rps"), ("CPU µs/req", "cpu_us", "us")]
        m = self.wrk_table(2, cols)
        self.ratio_table(2, m, [("req/s", "rps"), ("CPU µs/req", "cpu_us")])
        self.targets_head()
        t, n = m.get("tern"), m.get("nginx")
        x = ratio(t and t["rps"], n and n["rps"])
        self.target(2, "req/s ≥ 5× nginx", f"{fnum(t and t['rps'], 'rps')} vs "
                    f"{fnum(n and n['rps'], 'rps')} ({fr(x)})", None if x is None else x >= 5)
        c = t and t["cpu_us"]
        self.target(2, "CPU/req ≤ 1 µs", f"{fnum(c, 'us')} µs", None if c is None else c <= 1.0)

    def s3(self):
        self.w("## 3. `Connection: close`, 64 connections")
        self.w()
        self.commands(3)
        cols = [("req/s", "rps", "rps"), ("CPU µs/req", "cpu_us", "us"),
                ("p50 µs", "p50", "us"), ("p99 µs", "p99", "us")]
        m = self.wrk_table(3, cols)
        self.ratio_table(3, m, [("req/s", "rps"), ("CPU µs/req", "cpu_us")])
        self.targets_head()
        t, n = m.get("tern"), m.get("nginx")
        x = ratio(t and t["rps"], n and n["rps"])
        self.target(3, "req/s ≥ nginx", f"{fnum(t and t['rps'], 'rps')} vs "
                    f"{fnum(n and n['rps'], 'rps')} ({fr(x)})", None if x is None else x >= 1)

    def s4(self):
        self.w("## 4. One connection, latency")
        self.w()
        self.commands(4)
        cols = [("p50 µs", "p50", "us"), ("p99 µs", "p99", "us"), ("req/s", "rps", "rps"),
                ("CPU µs/req", "cpu_us", "us")]
        m = self.wrk_table(4, cols)
        self.ratio_table(4, m, [("p50", "p50"), ("p99", "p99")])
        self.targets_head()
        t, n = m.get("tern"), m.get("nginx")
        a, b = t and t["p99"], n and n["p99"]
        self.target(4, "p99 ≤ nginx", f"{fnum(a, 'us')} µs vs {fnum(b, 'us')} µs",
                    None if a is None or b is None else a <= b)

    def s5(self):
        self.w("## 5. RSS per idle keep-alive connection (10,000 open)")
        self.w()
        self.w("Client `bench/idle_conns.py`: warm-up (2 × 300 connections opened, used, closed),"
               " VmRSS before; then 10,000 connections, one GET each, response read, all kept"
               " open; VmRSS after (1 s settle each). VmRSS summed over the server's process"
               " tree. Per connection = (after − before) / connections still open.")
        self.w()
        self.commands(5)
        self.w("| server | round | RSS before kB | RSS after kB | B / connection | opened | "
               "failed | still open |")
        self.w("|---|---|---|---|---|---|---|---|")
        meds = {}
        for s in self.servers(5):
            rows = self.rows(5, s)
            for r in rows:
                r["bpc"] = float(r["bytes_per_conn"]) if "bytes_per_conn" in r else None
                if "error" in r:
                    self.w(f"| {label(s)} | {r['round']} | client failed: see {r['out']} "
                           "| | | | | |")
                    continue
                self.w(f"| {label(s)} | {r['round']} | {r['rss_before_kb']} | "
                       f"{r['rss_after_kb']} | {fnum(r['bpc'], 'B')} | {r['opened']} | "
                       f"{r['failed']} | {r['alive_at_read']} |")
            meds[s] = med([r["bpc"] for r in rows])
            self.w(f"| **{label(s)}** | **median** | | | **{fnum(meds[s], 'B')}** | | | |")
        self.targets_head()
        t = meds.get("tern")
        self.target(5, "idle connection ≤ 100 B", f"{fnum(t, 'B')} B "
                    f"(nginx {fnum(meds.get('nginx'), 'B')} B)", None if t is None else t <= 100)

    def s6(self):
        self.w("## 6. `/concurrent` (10 + 5 + 3 ms sleeps), 5,000 connections")
        self.w()
        self.w("RSS per in-flight request = (VmRSS sampled at mid-run − idle VmRSS after a "
               "16-connection warm-up) / 5,000 (every connection always has one request in "
               "flight).")
        self.w()
        self.commands(6)
        self.w("| server | round | req/s | CPU µs/req | p50 µs | p99 µs | idle RSS kB | "
               "mid-run RSS kB | B / in-flight | CPU0 other % | errors |")
        self.w("|---|---|---|---|---|---|---|---|---|---|---|")
        meds = {}
        for s in self.servers(6):
            rows = self.rows(6, s)
            for r in rows:
                if r.get("died"):
                    r["bpi"] = None
                    self.w(f"| {label(s)} | {r['round']} | server exited mid-run: discarded "
                           "| | | | | | | | |")
                    continue
                r["bpi"] = ((int(r["rss_mid_kb"]) - int(r["rss_idle_kb"])) * KB
                            / int(r["inflight"]))
                err = []
                if r.get("sock_err"):
                    err.append(f"{r['sock_err']} socket")
                if r.get("non2xx"):
                    err.append(f"{r['non2xx']} non-2xx")
                self.w(f"| {label(s)} | {r['round']} | {fnum(r.get('rps'), 'rps')} | "
                       f"{fnum(r.get('cpu_us'), 'us')} | {fnum(r.get('p50'), 'us')} | "
                       f"{fnum(r.get('p99'), 'us')} | {r['rss_idle_kb']} | {r['rss_mid_kb']} | "
                       f"{fnum(r['bpi'], 'B')} | {busy_cell(r)} | {', '.join(err) or '0'} |")
            meds[s] = {k: med([r.get(k) for r in rows]) for k in ("rps", "cpu_us", "bpi")}
            self.w(f"| **{label(s)}** | **median** | **{fnum(meds[s]['rps'], 'rps')}** | "
                   f"**{fnum(meds[s]['cpu_us'], 'us')}** | | | | | "
                   f"**{fnum(meds[s]['bpi'], 'B')}** | | |")
        self.targets_head()
        t, k = meds.get("tern"), meds.get("tokio")
        x = ratio(t and t["rps"], k and k["rps"])
        per = self.per_round_ratios(6, "rps", "tern", "tokio") if t and k else ""
        self.target(6, "req/s ≥ 2× tokio-hyper", f"{fnum(t and t['rps'], 'rps')} vs "
                    f"{fnum(k and k['rps'], 'rps')} ({fr(x)}; rounds {per or '—'})",
                    None if x is None else x >= 2)
        b = t and t["bpi"]
        self.target(6, "≤ 5 KB (5,120 B) per in-flight request",
                    f"{fnum(b, 'B')} B (tokio-hyper {fnum(k and k['bpi'], 'B')} B)",
                    None if b is None else b <= 5 * KB)

    def s7(self):
        self.w("## 7. Micro benchmarks (`bench/micro_*.c`, pinned to CPU 0)")
        self.w()
        rows = [r for r in self.recs if r.get("scenario") == "7"]
        if not rows:
            self.w("No `bench/micro_*.c` present at run time.")
        switch = parked = None
        for r in rows:
            text = open(os.path.join(self.out, "..", r["out"])).read().rstrip()
            status = "build failed" if r.get("error") else f"exit {r.get('rc')}"
            self.w(f"`{r['server']}` ({status}):")
            self.w()
            self.w("```")
            self.w(text)
            self.w("```")
            self.w()
            if r.get("error"):
                continue
            # Output lines are "name value" (e.g. "switch_ns 3.89", "parked_rss_bytes 4085").
            kv = {}
            for line in text.splitlines():
                m = re.fullmatch(r"(\w+)\s+(-?[\d.]+)", line.strip())
                if m:
                    kv.setdefault(m.group(1), float(m.group(2)))
            if switch is None and "switch_ns" in kv:
                switch = kv["switch_ns"]
            if parked is None and "parked_rss_bytes" in kv:
                parked = (kv["parked_rss_bytes"], kv.get("parked_pte_bytes"))
        self.targets_head()
        self.target(7, "coroutine switch ≤ 10 ns (`switch_ns`)",
                    f"{switch:.2f} ns" if switch is not None else "— (no `switch_ns` line)",
                    None if switch is None else switch <= 10)
        # Judged on RSS, like the tokio anchor's "RSS per parked task"; the page
        # tables the stacks' mappings cost (not in VmRSS) are shown beside it.
        pte = "" if parked is None or parked[1] is None else \
            f" (+ {parked[1]:,.0f} B page tables, not in RSS)"
        self.target(7, "parked coroutine ≤ 4.3 KB = 4,403 B RSS (`parked_rss_bytes`)",
                    f"{parked[0]:,.0f} B{pte}" if parked else "— (no `parked_rss_bytes` line)",
                    None if parked is None else parked[0] <= 4.3 * KB)

    def write(self, path):
        mach = kv_file(os.path.join(self.out, "machine.txt"))
        notes = []
        if os.path.exists(os.path.join(self.out, "notes.txt")):
            for line in open(os.path.join(self.out, "notes.txt")):
                if line.strip() and line.strip() not in notes:
                    notes.append(line.strip())
        others = [float(r["cpu0_other"]) for r in self.recs if r.get("cpu0_other")]
        busy = med(others)
        body_start = len(self.lines)
        for s in (self.s1, self.s2, self.s3, self.s4, self.s5, self.s6, self.s7):
            s()
            self.w()
        body = self.lines[body_start:]
        self.lines = self.lines[:body_start]
        w = self.w
        w("# tern benchmark results")
        w()
        w("Generated by `make bench` (`bench/run.sh`, `bench/report.py`); raw outputs in "
          "`bench/out/` (not committed). Do not edit by hand.")
        w()
        w(f"- Date: {mach.get('date', '?')}")
        w(f"- Machine: {mach.get('nproc', '?')} CPUs, {mach.get('cpu', '?')}, "
          f"{mach.get('kernel', '?')}")
        w(f"- Load average at start / end: {mach.get('loadavg_start', '?')} / "
          f"{mach.get('loadavg_end', '?')} (other work on the machine skews wall-clock figures)")
        w(f"- Tools: {mach.get('wrk', '?')}; {mach.get('nginx', 'nginx: —')}; "
          f"{mach.get('h2o', 'h2o: —')}")
        w(f"- tern binary: {mach.get('tern', 'not built: tern rows skipped')}")
        w(f"- Rounds: {mach.get('rounds', '?')}; wrk duration {mach.get('duration', '?')} "
          f"(`/concurrent`: {mach.get('conc_duration', '?')}); warm-up "
          f"{mach.get('warmup', '?')}; RLIMIT_NOFILE {mach.get('ulimit_n', '?')}")
        w()
        w("Method (ARCHITECTURE.md \"Benchmark method\"): every server pinned to CPU 0 "
          "(`taskset -c 0`) with one worker, `wrk -t1` (or the idle-connection client) pinned "
          "to CPU 1, loopback. In every round each server is started fresh, warmed up "
          "(`wrk -t1 -c64` for the warm-up duration, not measured), measured, stopped; the "
          "server order is rotated each round. Server CPU per request = (utime + stime delta of "
          "the server's process tree from `/proc/PID/stat`) / CLK_TCK / requests wrk counted. "
          "Latencies are wrk's `--latency` percentiles. Medians over rounds; ratios are "
          "ratios of medians.")
        w()
        w("Servers: `tern-demo --workers 1 --port 18080 --host 127.0.0.1`; "
          f"nginx `-c {self.anchors}/nginx.conf` (port 18081); h2o with "
          f"`{self.anchors}/h2o.conf` plus `max-connections: 20000` and "
          "`http1-request-timeout: 120` (its defaults, 1,024 connections and 10 s, cannot hold "
          "scenario 5's 10,000 idle connections; port 18082, asked for `/`); `tokio-hyper-anchor 18083 1`; the floor `floor 18086` "
          f"(built from `{self.anchors}/floor/floor.c` with `gcc -O2`).")
        w()
        w("\"CPU0 other %\": share of CPU 0's time during the measurement not charged to the "
          "server (other processes on the server's core). Both counters are tick-sampled, so "
          "values within about ±15 points of 0 (including negative ones) mean \"quiet\".")
        nbusy = sum(1 for x in others if x > BUSY)
        if nbusy:
            w()
            w(f"**Warning: {nbusy} of {len(others)} measurements ran while other processes "
              f"took more than {BUSY}% of CPU 0 (marked ⚠; median {busy:.0f}%, max "
              f"{max(others):.0f}%).** Their wall-clock figures (req/s, latency) are depressed; "
              "CPU µs/request and memory figures are less affected. Medians resist a single "
              "disturbed round; re-run on a quiet machine for clean figures.")
        if notes:
            w()
            w("Notes from this run:")
            w()
            for n in notes:
                w(f"- {n}")
        w()
        w("## Summary of targets")
        w()
        w("| scenario | target | measured (medians) | result |")
        w("|---|---|---|---|")
        for scen, text, measured, v in self.targets:
            w(f"| {scen} | {text} | {measured} | {v} |")
        w()
        self.lines.extend(body)
        with open(path, "w") as f:
            f.write("\n".join(self.lines).rstrip() + "\n")


def main():
    out, dest = sys.argv[1], sys.argv[2]
    anchors = sys.argv[3] if len(sys.argv) > 3 else "../shared/anchors"
    Report(out, anchors).write(dest)


if __name__ == "__main__":
    main()
