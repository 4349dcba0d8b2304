#!/usr/bin/env python3
"""Turn bench/out/ (raw wrk outputs + results.tsv written by run.sh) into RESULTS.md.

Usage: report.py OUT_DIR RESULTS_MD [ANCHORS_DIR]
Every figure comes from a file under OUT_DIR; nothing is estimated or filled in.
"""
import os
import re
import statistics
import sys

SERVERS = ["tern", "nginx", "floor", "h2o", "tokio", "tern-alog"]
LABEL = {"tokio": "tokio-hyper", "tern-alog": "tern --access-log"}
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


def dur_s(path):
    """Seconds wrk measured over ("N requests in 10.00s"), None if absent."""
    try:
        text = open(path).read()
    except OSError:
        return None
    m = re.search(r"\d+ requests in ([\d.]+)(ms|s|m)\b", text)
    return float(m.group(1)) * {"ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(2)] if m else None


def dump_by_work(path):
    """{work_us: (count, p50 µs, p99 µs)} of the 200s in a loadgen --dump file."""
    lat = {}
    try:
        f = open(path)
    except OSError:
        return {}
    with f:
        for line in f:
            v = line.split()
            if len(v) == 6 and v[1] == "200":
                lat.setdefault(int(v[4]), []).append(int(v[2]))
    out = {}
    for w, xs in lat.items():
        xs.sort()
        out[w] = (len(xs), xs[(len(xs) + 1) // 2 - 1], xs[(len(xs) * 99 + 99) // 100 - 1])
    return out


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


def pct1(x):
    return "—" if x is None else f"{x:.1f}"


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

    def s8(self):
        self.w("## 8. RSS per parked task (`/memory?tasks=N`)")
        self.w()
        self.w("One fresh `tern-demo --workers 1` (pinned to CPU 0) per measurement; `GET "
               "/memory?tasks=N` is its first request, so the stack pool is cold and every task "
               "pays its full cost. The handler spawns N tasks, waits until all of them are "
               "parked, and reports its own RSS growth (`/proc/self/statm`) over that span: "
               "`memory_per_task_bytes` = `memory_used_kb` × 1024 / `tasks_created`. Reference: "
               "a sleeping tokio task (`spawn` + `sleep`) measured 1.42 KB RSS on this machine "
               f"(`{self.anchors}/README.md`; not re-run here).")
        self.w()
        rows = [r for r in self.recs if r.get("scenario") == "8"]
        cmds = []
        for r in rows:
            with open(os.path.join(self.out, "..", r["out"])) as f:
                first = f.readline().strip()
            cmd = first[2:] if first.startswith("$ ") else None
            if cmd and cmd not in cmds:
                cmds.append(cmd)
        if cmds:
            self.w("```")
            self.lines.extend(cmds)
            self.w("```")
        self.w("| tasks | round | tasks_created | successful_tasks | memory_used_kb | "
               "memory_per_task_bytes | spawn → all parked ms |")
        self.w("|---|---|---|---|---|---|---|")
        ns = sorted({int(r["tasks"]) for r in rows})
        res = {}
        for n in ns:
            rs = sorted((r for r in rows if int(r["tasks"]) == n), key=lambda r: int(r["round"]))
            for r in rs:
                if "error" in r:
                    self.w(f"| {n:,} | {r['round']} | failed ({r['error']}): see {r['out']} "
                           "| | | | |")
                    continue
                self.w(f"| {n:,} | {r['round']} | {r['tasks_created']} | "
                       f"{r['successful_tasks']} | {r['memory_used_kb']} | "
                       f"{int(r['memory_per_task_bytes']):,} | "
                       f"{r.get('spawn_to_all_parked_ms', '—')} |")
            good = [r for r in rs if "error" not in r]
            m = {k: med([float(r[k]) for r in good]) for k in
                 ("tasks_created", "successful_tasks", "memory_used_kb", "memory_per_task_bytes")}
            complete = bool(good) and len(good) == len(rs) and all(
                int(r["tasks_created"]) == n and int(r["successful_tasks"]) == n for r in good)
            res[n] = (m, complete)
            self.w(f"| **{n:,}** | **median** | **{fnum(m['tasks_created'], 'kB')}** | "
                   f"**{fnum(m['successful_tasks'], 'kB')}** | "
                   f"**{fnum(m['memory_used_kb'], 'kB')}**"
                   f" | **{fnum(m['memory_per_task_bytes'], 'kB')}** | |")
        self.targets_head()
        for n in ns or [1000, 100000]:
            m, complete = res.get(n, ({}, False))
            b = m.get("memory_per_task_bytes")
            note = "" if complete or b is None else "; not every task created and finished"
            self.target(8, f"≤ 4.3 KB = 4,403 B RSS per task at {n:,} tasks",
                        f"{fnum(b, 'kB')} B ({fr(ratio(b, 1.42 * KB))} tokio's 1.42 KB{note})",
                        None if b is None else b <= 4.3 * KB and complete)

    def s9(self):
        mach = kv_file(os.path.join(self.out, "machine.txt"))
        path = mach.get("ovl_path", "/adaptive?work_us=1000")
        factor = mach.get("ovl_factor", "3")
        half = mach.get("ovl_half_factor", "0.5")
        self.w(f"## 9. Overload: `{path}` offered at {factor}× capacity (open loop)")
        self.w()
        self.w(f"One fresh `tern-demo --workers 1` per round, pinned to CPU 0; clients pinned to "
               f"CPU 1. (1) Capacity: closed-loop `wrk -c{mach.get('ovl_cap_conns', '?')}` for "
               f"{mach.get('ovl_cap_duration', '?')} after a warm-up; capacity C = 200 responses "
               "per second (503s excluded), unloaded p50/p99 = wrk's. (2) Overload: "
               f"`bench/loadgen.c` offers {factor} × C requests/s for "
               f"{mach.get('ovl_seconds', '?')} s, open loop (request i due at i / rate "
               f"whatever the server does) over {mach.get('ovl_conns', '?')} keep-alive "
               "connections, one request in flight per connection; latency from the due time to "
               f"the complete response, per status; before it, the same at {half} × C (an "
               "ordinary load: nothing may be shed), then `/stats`, then 1 s of rest. "
               "(3) Recovery: the capacity run again, started "
               "as soon as the overload stops. `/stats` read before and after the overload and "
               "after the recovery (its loop-lag and queue-delay p99 are cumulative since start); "
               "server VmRSS sampled every 0.2 s. (4) Bursts, on a fresh server after the "
               "above: N requests sent at once on N keep-alive connections (`loadgen` at "
               "1,000,000 req/s for N µs, once every connection is up), one burst after the "
               f"other, 50 ms apart: `{mach.get('ovl_bursts', '?')}`.")
        self.w()
        rows = sorted((r for r in self.recs if r.get("scenario") == "9"),
                      key=lambda r: int(r["round"]))
        good = [r for r in rows if "error" not in r]
        cmds = []
        for r in good:
            for key, name in (("cap", "capacity"), ("half", f"{half}× capacity"),
                              ("ovl", "overload"), ("rec", "recovery")):
                if key not in r:
                    continue
                with open(os.path.join(self.out, "..", r[key])) as f:
                    first = f.readline().strip()
                if first.startswith("$ "):
                    cmds.append(f"{first[2:]}      # {name}, round {r['round']}")
        if cmds:
            self.w("```")
            self.lines.extend(cmds)
            self.w("```")
        for r in rows:
            if "error" in r:
                self.w(f"- round {r['round']}: failed ({r['error']})")
        # derive per-round figures
        for r in good:
            cap, rec = parse_wrk(os.path.join(self.out, "..", r["cap"])), \
                parse_wrk(os.path.join(self.out, "..", r["rec"]))
            r["cap_rps"] = float(r["cap_ok_rps"])
            r["cap_p50"], r["cap_p99"], r["cap_non2xx"] = cap["p50"], cap["p99"], cap["non2xx"]
            secs = dur_s(os.path.join(self.out, "..", r["rec"]))
            r["rec_rps"] = ((rec["requests"] - rec["non2xx"]) / secs
                            if rec["requests"] is not None and secs else None)
            r["rec_p50"], r["rec_p99"], r["rec_non2xx"] = rec["p50"], rec["p99"], rec["non2xx"]
            r["rec_pct"] = 100 * r["rec_rps"] / r["cap_rps"] if r["rec_rps"] else None
            for k in ("offered_rps", "ok_rps", "ok_p50_us", "ok_p99_us", "shed_p50_us",
                      "shed_p99_us", "shed_max_us", "shed_min_us", "shed_wire_p99_us",
                      "send_lag_p99_us", "rss_before_kb", "rss_during_max_kb", "rss_end_kb",
                      "rss_after_kb", "seconds"):
                r[k + "_f"] = float(r[k]) if r.get(k) not in (None, "") else None
            r["shed_rps"] = int(r["shed"]) / float(r["seconds"])
            r["adm_ratio"] = ratio(r["ok_p99_us_f"], r["cap_p99"])
            r["rss_growth_kb"] = r["rss_during_max_kb_f"] - r["rss_before_kb_f"]
            r["rss_b_per_req"] = r["rss_growth_kb"] * KB / int(r["due"])

        def m(k):
            return med([r.get(k) for r in good])

        self.w()
        self.w("Capacity, overload and latency (µs):")
        self.w()
        self.w("| round | capacity C req/s | unloaded p50 | unloaded p99 | offered req/s | "
               "200 req/s | 503 req/s | admitted p50 | admitted p99 | admitted p99 / unloaded "
               "p99 | 503 p50 | 503 p99 | 503 min / max | other, unanswered | client send lag p99 "
               "| CPU0 other % (cap / ovl / rec) |")
        self.w("|---|" + "---|" * 15)
        for r in good:
            self.w(f"| {r['round']} | {fnum(r['cap_rps'], 'rps')}"
                   f"{' (' + str(r['cap_non2xx']) + ' 503s)' if r['cap_non2xx'] else ''} | "
                   f"{fnum(r['cap_p50'], 'us')} | {fnum(r['cap_p99'], 'us')} | "
                   f"{fnum(r['offered_rps_f'], 'rps')} | {fnum(r['ok_rps_f'], 'rps')} | "
                   f"{fnum(r['shed_rps'], 'rps')} | {fnum(r['ok_p50_us_f'], 'us')} | "
                   f"{fnum(r['ok_p99_us_f'], 'us')} | {fr(r['adm_ratio'])} | "
                   f"{fnum(r['shed_p50_us_f'], 'us')} | {fnum(r['shed_p99_us_f'], 'us')} | "
                   f"{fnum(r['shed_min_us_f'], 'us')} / {fnum(r['shed_max_us_f'], 'us')} | "
                   f"{r['other']}, {r['unanswered']} | {fnum(r['send_lag_p99_us_f'], 'us')} | "
                   f"{busy_cell({'cpu0_other': r['cap_cpu0_other']})} / "
                   f"{busy_cell({'cpu0_other': r['ovl_cpu0_other']})} / "
                   f"{busy_cell({'cpu0_other': r['rec_cpu0_other']})} |")
        self.w(f"| **median** | **{fnum(m('cap_rps'), 'rps')}** | **{fnum(m('cap_p50'), 'us')}** "
               f"| **{fnum(m('cap_p99'), 'us')}** | **{fnum(m('offered_rps_f'), 'rps')}** | "
               f"**{fnum(m('ok_rps_f'), 'rps')}** | **{fnum(m('shed_rps'), 'rps')}** | "
               f"**{fnum(m('ok_p50_us_f'), 'us')}** | **{fnum(m('ok_p99_us_f'), 'us')}** | "
               f"**{fr(ratio(m('ok_p99_us_f'), m('cap_p99')))}** | "
               f"**{fnum(m('shed_p50_us_f'), 'us')}** | **{fnum(m('shed_p99_us_f'), 'us')}** | "
               f"| | | |")
        self.w()
        self.w("503s' latency from the actual send instead of the due time (client lateness "
               "excluded), p99 µs: " + (", ".join(
                   f"round {r['round']} {fnum(r['shed_wire_p99_us_f'], 'us')}" for r in good)
                   or "—") + ". Work done by the admitted requests (the demo handler "
               "always does the full `work_us`, yielding every 100 µs), `work_us:count`: " + (", ".join(
                   f"round {r['round']} {r.get('ok_work_us', '—')}" for r in good) or "—")
               + ".")
        # admitted latency split by the work the handler did: shows whether the
        # slow answers are the full-work ones (a queue built while the handler
        # was back at full work) or not
        parts = []
        for r in good:
            by = dump_by_work(os.path.join(self.out, "..", r.get("dump", "")))
            if by:
                parts.append(f"round {r['round']}: " + "; ".join(
                    f"work_us {w}: {n:,} answers, p50 {fnum(p50, 'us')}, p99 {fnum(p99, 'us')}"
                    for w, (n, p50, p99) in sorted(by.items(), reverse=True)))
        if parts:
            self.w()
            self.w("Admitted (200) latency in µs by the work the handler did (from "
                   "`bench/out/s9-*-requests.txt`, every answer of the overload): "
                   + ". ".join(parts) + ".")
        self.w()
        self.w("Work mix of the closed-loop runs (`bench/work_us.lua`, `work_us:count`): "
               + (", ".join(f"round {r['round']} capacity {r.get('cap_work') or '—'}, "
                            f"recovery {r.get('rec_work') or '—'}" for r in good) or "—") + ".")
        self.w()
        self.w("Memory and recovery:")
        self.w()
        self.w("| round | RSS before kB | RSS max during kB | RSS at end kB | RSS after recovery "
               "kB | growth kB | growth B / offered request | recovery 200 req/s | % of C | "
               "recovery p99 µs | recovery p99 / unloaded p99 |")
        self.w("|---|" + "---|" * 10)
        for r in good:
            self.w(f"| {r['round']} | {r['rss_before_kb']} | {r['rss_during_max_kb']} | "
                   f"{r['rss_end_kb']} | {r['rss_after_kb']} | {r['rss_growth_kb']:,.0f} | "
                   f"{r['rss_b_per_req']:.2f} | {fnum(r['rec_rps'], 'rps')}"
                   f"{' (' + str(r['rec_non2xx']) + ' 503s)' if r['rec_non2xx'] else ''} | "
                   f"{pct1(r['rec_pct'])} | "
                   f"{fnum(r['rec_p99'], 'us')} | {fr(ratio(r['rec_p99'], r['cap_p99']))} |")
        self.w(f"| **median** | | | | | **{fnum(m('rss_growth_kb'), 'kB')}** | "
               f"**{fnum(m('rss_b_per_req'), 'B')}** | **{fnum(m('rec_rps'), 'rps')}** | "
               f"**{pct1(m('rec_pct'))}** | **{fnum(m('rec_p99'), 'us')}** | "
               f"**{fr(ratio(m('rec_p99'), m('cap_p99')))}** |")
        self.w()
        self.w("`/stats` (before overload → after overload → after recovery):")
        self.w()
        self.w("| round | shed_503 | 503s counted by loadgen | loop_lag_p99_ms | loop_lag_max_ms "
               "| queue_delay_p99_ms |")
        self.w("|---|---|---|---|---|---|")
        for r in good:
            def tri(k):
                return " → ".join(r.get(f"st{i}_{k}", "—") for i in range(3))
            self.w(f"| {r['round']} | {tri('shed_503')} | {r['shed']} | {tri('loop_lag_p99_ms')} "
                   f"| {tri('loop_lag_max_ms')} | {tri('queue_delay_p99_ms')} |")
        # ---- the half-capacity phase
        for r in good:
            for k in ("half_offered_rps", "half_ok_p50_us", "half_ok_p99_us", "half_ok_max_us",
                      "half_send_lag_p99_us"):
                r[k + "_f"] = float(r[k]) if r.get(k) not in (None, "") else None
            r["half_bad"] = sum(int(r.get(k, 0) or 0) for k in
                                ("half_shed", "half_other", "half_unanswered"))
            r["half_ratio"] = ratio(r["half_ok_p99_us_f"], r["cap_p99"])
        self.w()
        self.w(f"{half}× capacity, open loop ({mach.get('ovl_seconds', '?')} s, "
               f"{mach.get('ovl_conns', '?')} connections), latency µs from the due time:")
        self.w()
        self.w("| round | offered req/s | 200s | 503s | other, unanswered | p50 | p99 | max | "
               "p99 / unloaded p99 | client send lag p99 | `/stats` shed_503 after (since start) | "
               "CPU0 other % |")
        self.w("|---|" + "---|" * 11)
        for r in good:
            if "half_ok" not in r:
                self.w(f"| {r['round']} | not run ({r.get('half_error', 'older run')}) "
                       "| | | | | | | | | | |")
                continue
            self.w(f"| {r['round']} | {fnum(r['half_offered_rps_f'], 'rps')} | {r['half_ok']} | "
                   f"{r['half_shed']} | {r['half_other']}, {r['half_unanswered']} | "
                   f"{fnum(r['half_ok_p50_us_f'], 'us')} | {fnum(r['half_ok_p99_us_f'], 'us')} | "
                   f"{fnum(r['half_ok_max_us_f'], 'us')} | {fr(r['half_ratio'])} | "
                   f"{fnum(r['half_send_lag_p99_us_f'], 'us')} | {r.get('sth_shed_503', '—')} | "
                   f"{busy_cell({'cpu0_other': r.get('half_cpu0_other')})} |")
        self.w(f"| **median** | **{fnum(m('half_offered_rps_f'), 'rps')}** | | | | "
               f"**{fnum(m('half_ok_p50_us_f'), 'us')}** | **{fnum(m('half_ok_p99_us_f'), 'us')}**"
               f" | **{fnum(m('half_ok_max_us_f'), 'us')}** | "
               f"**{fr(ratio(m('half_ok_p99_us_f'), m('cap_p99')))}** | | | |")
        # ---- bursts on a fresh server
        bursts = sorted((r for r in self.recs if r.get("scenario") == "9b"),
                        key=lambda r: (int(r["round"]), int(r["burst"])))
        self.w()
        self.w("Bursts on a fresh server (latency µs from the burst's start; every request of a "
               "burst is due at once):")
        self.w()
        self.w("| round | burst | requests × path | 200s | 503s | other, unanswered | p50 | p99 "
               "| max |")
        self.w("|---|---|---|---|---|---|---|---|---|")
        for b in bursts:
            if "error" in b:
                self.w(f"| {b['round']} | {b['burst']} | {b['n']} × `{b['path']}` | failed "
                       f"({b['error']}) | | | | | |")
                continue
            self.w(f"| {b['round']} | {b['burst']} | {b['n']} × `{b['path']}` | {b['ok']} | "
                   f"{b['shed']} | {b['other']}, {b['unanswered']} | "
                   f"{fnum(float(b.get('ok_p50_us', 0)), 'us') if b.get('ok_p50_us') else '—'} | "
                   f"{fnum(float(b.get('ok_p99_us', 0)), 'us') if b.get('ok_p99_us') else '—'} | "
                   f"{fnum(float(b.get('ok_max_us', 0)), 'us') if b.get('ok_max_us') else '—'} |")
        self.targets_head()
        # wall-clock figures of this scenario are only as good as CPU 0 was free
        busy = [med([float(r[k]) for r in good if r.get(k)])
                for k in ("cap_cpu0_other", "ovl_cpu0_other", "rec_cpu0_other")]
        warn = "" if all(b is None or b <= BUSY for b in busy) else \
            (" ⚠ CPU 0 busy with other processes (median " +
             " / ".join(pct1(b) for b in busy) + "% in capacity / overload / recovery)")
        conns = int(mach.get("ovl_conns", "512"))
        a, u = m("ok_p99_us_f"), m("cap_p99")
        x = ratio(a, u)
        per = ", ".join(fr(r["adm_ratio"]) for r in good)
        self.target(9, f"admitted (200) p99 at {factor}× capacity ≤ 2× unloaded p99",
                    f"{fnum(a, 'us')} µs vs {fnum(u, 'us')} µs ({fr(x)}; rounds {per or '—'})"
                    + warn,
                    None if x is None else x <= 2)
        s = m("shed_p99_us_f")
        self.target(9, "503 sheds' p99 latency < 1 ms",
                    f"{fnum(s, 'us')} µs (fastest 503: {fnum(m('shed_min_us_f'), 'us')} µs)"
                    + warn,
                    None if s is None else s < 1000)
        g = m("rss_growth_kb")
        bound = conns * 4  # kB: one 4 KiB page per client connection
        self.target(9, f"RSS bounded: growth during overload ≤ {conns} connections × 4 KiB "
                    f"= {bound:,} kB, not proportional to offered load",
                    f"{fnum(g, 'kB')} kB ({fnum(m('rss_b_per_req'), 'B')} B per offered "
                    "request)", None if g is None else g <= bound)
        p = m("rec_pct")
        # each round against its own capacity (the machine's state varies by round)
        self.target(9, f"recovered: 200 req/s in the {mach.get('ovl_recovery_duration', '?')} "
                    "after the overload ≥ 95% of the round's capacity",
                    f"median {pct1(p)}% (rounds "
                    + ", ".join(f"{pct1(r['rec_pct'])}%" for r in good)
                    + f"); recovery p99 {fnum(m('rec_p99'), 'us')} µs vs {fnum(u, 'us')} µs "
                    "unloaded" + warn, None if p is None else p >= 95)
        halves = [r for r in good if "half_ok" in r]
        hp = m("half_ok_p99_us_f")
        self.target(9, f"0 503s (and no other failure) at {half}× capacity, open loop",
                    (f"{sum(int(r['half_shed']) for r in halves)} × 503, "
                     f"{sum(int(r['half_other']) + int(r['half_unanswered']) for r in halves)} "
                     f"other/unanswered in {len(halves)} rounds (per round: "
                     + ", ".join(str(r["half_shed"]) for r in halves)
                     + f"); p99 {fnum(hp, 'us')} µs vs {fnum(u, 'us')} µs unloaded")
                    if halves else "— (not run)",
                    None if not halves else all(r["half_bad"] == 0 for r in halves))
        okb = [b for b in bursts if "error" not in b]
        per = {}
        for b in okb:
            per.setdefault(f"{b['n']} × `{b['path']}`", []).append(b["shed"])
        self.target(9, "0 503s in bursts on a fresh server "
                    f"(`{mach.get('ovl_bursts', '?')}`)",
                    ("; ".join(f"{k}: {' + '.join(v)} × 503" for k, v in per.items())
                     + f" ({len(okb)} bursts, "
                     f"{sum(int(b['other']) + int(b['unanswered']) for b in okb)} other/"
                     f"unanswered)") if okb else "— (not run)",
                    None if not bursts else (len(okb) == len(bursts) and all(
                        int(b["shed"]) + int(b["other"]) + int(b["unanswered"]) == 0
                        for b in okb)))

    def s10(self):
        mach = kv_file(os.path.join(self.out, "machine.txt"))
        rows = [r for r in self.recs if r.get("scenario") == "10"]
        self.w("## 10. Fairness: a pipelining hog beside an ordinary client on one worker")
        self.w()
        self.w("One fresh server per measurement (tern `--workers 1`, nginx one worker), pinned "
               "to CPU 0, warmed up as in scenarios 1-4. The hog (`bench/hog.c`, mode `hog`) "
               f"writes {mach.get('fair_depth', '256')} pipelined `GET /plaintext` per write on "
               "one connection, non-stop, while reading the answers; window 0: it never waits "
               "for answers (only the TCP buffers bound what is owed: the hog of "
               "`tests/integration/test_fairness.py`, at C speed); window W: the next batch "
               "only while at most W answers are owed. 0.5 s after the hog starts, the probe "
               "(same program, mode `probe`, a separate process) sends one `GET /plaintext` "
               f"every {mach.get('fair_interval_ms', '10')} ms on its own keep-alive connection "
               f"for {mach.get('fair_duration', '?')} and times each, from the send to the "
               "complete response (nginx's anchor answers every path with `Hello, World!`). "
               "Both clients pinned to CPU 1; the probe runs at SCHED_FIFO 1 when allowed "
               "(`sched=fifo` below) so the busy hog on the same CPU never delays its "
               "wake-up. A probe whose due time passed while it waited for the previous "
               "answer is sent at once and counted as late; p50-max are from the send, the "
               "\"from due\" columns from the due time (no coordinated omission: a server "
               "that stalls the probe for long gets many late probes, whose send-based "
               "latency can look small). Hog answers/s over the hog's whole run.")
        self.w()
        cmds = []
        for r in sorted(rows, key=lambda r: (r["server"] != "tern", int(r["window"]))):
            if r["round"] != "1":
                continue
            for key in ("hog_out", "probe_out"):
                with open(os.path.join(self.out, "..", r[key])) as f:
                    first = f.readline().strip()
                if first.startswith("$ "):
                    cmds.append(f"{first[2:]}      # {label(r['server'])}")
        if cmds:
            self.w("```")
            self.lines.extend(cmds)
            self.w("```")
        keys = ("probe_p50_us", "probe_p90_us", "probe_p99_us", "probe_max_us",
                "probe_due_p99_us", "probe_due_max_us", "hog_rps")
        for r in rows:
            for k in keys:
                r[k + "_f"] = float(r[k]) if r.get(k) not in (None, "") else None
        wins = sorted({int(r["window"]) for r in rows})
        meds = {}
        for w in wins:
            self.w()
            self.w(f"Hog window {w}{' (no bound on the answers owed)' if w == 0 else ''}, "
                   "probe latency µs:")
            self.w()
            self.w("| server | round | p50 | p90 | p99 | max | p99 from due | max from due | "
                   "probes (late, errors, non-200) | hog answers/s | CPU0 other % | probe sched |")
            self.w("|---|---|---|---|---|---|---|---|---|---|---|---|")
            for srv in [x for x in SERVERS if any(r["server"] == x and int(r["window"]) == w
                                                  for r in rows)]:
                rs = sorted((r for r in rows if r["server"] == srv and int(r["window"]) == w),
                            key=lambda r: int(r["round"]))
                for r in rs:
                    if "error" in r:
                        self.w(f"| {label(srv)} | {r['round']} | failed ({r['error']}) "
                               "| | | | | | | | | |")
                        for k in keys:
                            r[k + "_f"] = None
                        continue
                    self.w(f"| {label(srv)} | {r['round']} | "
                           + " | ".join(fnum(r[k + '_f'], 'us') for k in keys[:6])
                           + f" | {r['probes']} ({r['probe_late']}, {r['probe_errors']}, "
                           f"{r['probe_non200']}) | {fnum(r['hog_rps_f'], 'rps')} | "
                           f"{busy_cell(r)} | {r.get('sched', '—')} |")
                meds[(srv, w)] = {k: med([r[k + "_f"] for r in rs]) for k in keys}
                md = meds[(srv, w)]
                self.w(f"| **{label(srv)}** | **median** | "
                       + " | ".join(f"**{fnum(md[k], 'us')}**" for k in keys[:6])
                       + f" | | **{fnum(md['hog_rps'], 'rps')}** | | |")
            t, n = meds.get(("tern", w)), meds.get(("nginx", w))
            if t and n:
                self.w()
                self.w("tern / nginx (medians): " + ", ".join(
                    f"{h} {fr(ratio(t[k], n[k]))}" for h, k in
                    (("p50", "probe_p50_us"), ("p99", "probe_p99_us"), ("max", "probe_max_us"),
                     ("hog answers/s", "hog_rps"))) + ".")
        self.targets_head()
        busy = med([float(r["cpu0_other"]) for r in rows if r.get("cpu0_other")])
        warn = "" if busy is None or busy <= BUSY else \
            f" ⚠ CPU 0 busy with other processes (median {busy:.0f}%)"
        for w in wins or [0]:
            t, n = meds.get(("tern", w)), meds.get(("nginx", w))
            a, b = t and t["probe_p99_us"], n and n["probe_p99_us"]
            bound = None if b is None else max(b, 3000.0)
            self.target(10, f"hog window {w}: tern probe p99 ≤ max(nginx probe p99, 3 ms)",
                        f"tern p50 / p99 / max {fnum(t and t['probe_p50_us'], 'us')} / "
                        f"{fnum(a, 'us')} / {fnum(t and t['probe_max_us'], 'us')} µs; nginx "
                        f"{fnum(n and n['probe_p50_us'], 'us')} / {fnum(b, 'us')} / "
                        f"{fnum(n and n['probe_max_us'], 'us')} µs; hog "
                        f"{fnum(t and t['hog_rps'], 'rps')} vs {fnum(n and n['hog_rps'], 'rps')} "
                        "answers/s" + warn,
                        None if a is None or bound is None else a <= bound)

    def s_alog(self):
        self.w("## Access log cost: plaintext with `--access-log` on and off, 256 connections")
        self.w()
        self.commands("alog")
        cols = [("req/s", "rps", "rps"), ("CPU µs/req", "cpu_us", "us"),
                ("p50 µs", "p50", "us"), ("p99 µs", "p99", "us")]
        m = self.wrk_table("alog", cols)
        self.targets_head()
        on, off = m.get("tern-alog"), m.get("tern")
        x = ratio(on and on["cpu_us"], off and off["cpu_us"])
        self.target("alog", "CPU/req with the log ≤ 1.1× without",
                    f"{fnum(on and on['cpu_us'], 'us')} µs vs {fnum(off and off['cpu_us'], 'us')} µs "
                    f"({fr(x)}; per round {self.per_round_ratios('alog', 'cpu_us', 'tern-alog', 'tern')})",
                    None if x is None else x <= 1.1)

    def write(self, path):
        mach = kv_file(os.path.join(self.out, "machine.txt"))
        notes = []
        if os.path.exists(os.path.join(self.out, "notes.txt")):
            for line in open(os.path.join(self.out, "notes.txt")):
                if line.strip() and line.strip() not in notes:
                    notes.append(line.strip())
        # every "CPU0 other" figure, scenario 9's per-phase ones included
        others = [float(v) for r in self.recs for k, v in r.items()
                  if k.endswith("cpu0_other") and v]
        busy = med(others)
        # only the scenarios this run was asked for (SCENARIOS); older runs
        # did not record the list: all of 1-7 then
        ran = mach.get("scenarios", "1 2 3 4 5 6 7").split()
        sections = (self.s1, self.s2, self.s3, self.s4, self.s5, self.s6, self.s7, self.s8,
                    self.s9, self.s10)
        body_start = len(self.lines)
        for i, s in enumerate(sections, 1):
            if str(i) not in ran:
                continue
            s()
            self.w()
        if "alog" in ran:
            self.s_alog()
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
        w(f"- Scenarios run: {' '.join(ran)}")
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
