#!/usr/bin/env bash
# tern benchmarks (`make bench`): tern-demo against nginx, the floor, h2o and
# tokio-hyper, method of ARCHITECTURE.md "Benchmark method". Each server is
# pinned to CPU 0 with one worker, the load generator to CPU 1, loopback only.
# Servers alternate inside every round (order rotated per round so none always
# runs first); RESULTS.md reports every round and the medians.
#
# Environment knobs:
#   ROUNDS=3  DURATION=5s  CONC_DURATION=10s  WARMUP=1s  IDLE_CONNS=10000
#   CONC_CONNS=5000  SCENARIOS="1 2 3 4 5 6 7 8 9 10 alog tls static pg json ws"  TERN_BIN=build/tern-demo
#   TERN_PORT=18080  ANCHORS=../shared/anchors  EXTRA="h2o tokio" (also run
#   these in scenarios 1-4; h2o is then asked for "/", its only file)
# Scenario alog (tern only): scenario 1's load on tern with and without
#   --access-log bench/out/access.log (combined format): the log's CPU per request
# Scenario 8 (tern's /memory, RSS per parked task):  MEM_TASKS="1000 100000"
# Scenario 9 (overload of /adaptive, open loop; tern only):
#   OVL_PATH=/adaptive?work_us=1000  OVL_CAP_CONNS=2 (closed-loop capacity run)
#   OVL_CAP_DURATION=10s  OVL_FACTOR=3 (offered = 3 x capacity)  OVL_SECONDS=10
#   OVL_CONNS=512 (open-loop client's keep-alive connections)
#   OVL_RECOVERY_DURATION=10s  OVL_HALF_FACTOR=0.5 (an open-loop phase at 0.5 x
#   capacity before the overload: nothing may be shed)
#   OVL_BURSTS="20:/adaptive?work_us=200 50:/adaptive?work_us=200
#   100:/adaptive?work_us=0&sleep_ms=100" (N:PATH, N requests sent at once on N
#   connections, one burst after another on a fresh server: nothing may be shed)
# Scenario 10 (fairness under a pipelining hog; tern and nginx): FAIR_DURATION
#   (default DURATION) of probes  FAIR_DEPTH=256 (requests per hog write)
#   FAIR_WINDOWS="0 256" (hog variants: 0 = writes non-stop, no bound on the
#   answers owed; W = the next batch only while <= W answers are owed)
#   FAIR_INTERVAL_MS=10 (one probe request every 10 ms)
set -u -o pipefail

cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
ROUNDS=${ROUNDS:-3}
DURATION=${DURATION:-5s}
CONC_DURATION=${CONC_DURATION:-10s}
WARMUP=${WARMUP:-1s}
IDLE_CONNS=${IDLE_CONNS:-10000}
CONC_CONNS=${CONC_CONNS:-5000}
SCENARIOS=${SCENARIOS:-1 2 3 4 5 6 7 8 9 10 alog tls static pg json ws}
TERN_BIN=${TERN_BIN:-build/tern-demo}
export TERN_ALLOW_ROOT=${TERN_ALLOW_ROOT:-1} # the demo refuses root otherwise
TERN_PORT=${TERN_PORT:-18080}
ANCHORS=$(cd "${ANCHORS:-../shared/anchors}" 2>/dev/null && pwd) || {
    echo "bench: anchors not found at ${ANCHORS:-../shared/anchors} (set ANCHORS)" >&2
    exit 1
}
EXTRA=${EXTRA:-}
MEM_TASKS=${MEM_TASKS:-1000 100000}
OVL_PATH=${OVL_PATH:-/adaptive?work_us=1000}
OVL_CAP_CONNS=${OVL_CAP_CONNS:-2}
OVL_CAP_DURATION=${OVL_CAP_DURATION:-10s}
OVL_FACTOR=${OVL_FACTOR:-3}
OVL_SECONDS=${OVL_SECONDS:-10}
OVL_CONNS=${OVL_CONNS:-512}
OVL_RECOVERY_DURATION=${OVL_RECOVERY_DURATION:-10s}
OVL_HALF_FACTOR=${OVL_HALF_FACTOR:-0.5}
OVL_BURSTS=${OVL_BURSTS:-20:/adaptive?work_us=200 50:/adaptive?work_us=200 100:/adaptive?work_us=0&sleep_ms=100}
FAIR_DURATION=${FAIR_DURATION:-$DURATION}
FAIR_DEPTH=${FAIR_DEPTH:-256}
FAIR_WINDOWS=${FAIR_WINDOWS:-0 256}
FAIR_INTERVAL_MS=${FAIR_INTERVAL_MS:-10}
OUT=$ROOT/bench/out
RES=$OUT/results.tsv
NOTES=$OUT/notes.txt

log() { echo "bench: $*" >&2; }
note() { echo "$*" >>"$NOTES"; log "$*"; }

for tool in wrk taskset python3 ps; do
    command -v $tool >/dev/null || { log "$tool missing (run scripts/deps.sh bench)"; exit 1; }
done

# ---- process bookkeeping: everything started here is killed on exit ------
TRACKED=()
descendants() {
    local p c
    for c in $(ps -o pid= --ppid "$1" 2>/dev/null); do
        echo "$c"
        descendants "$c"
    done
}
kill_tree() {
    # TERM the root first (nginx/h2o masters stop their workers themselves), KILL
    # whatever is left after 5 s. Only pids this script started and their children.
    local pid=$1 kids i
    kill -0 "$pid" 2>/dev/null || { wait "$pid" 2>/dev/null; return 0; }
    kids=$(descendants "$pid")
    kill -TERM "$pid" 2>/dev/null
    for ((i = 0; i < 50; i++)); do
        kill -0 "$pid" 2>/dev/null || break
        # A reaped child no longer answers kill -0; an unreaped zombie still does.
        case $(ps -o stat= -p "$pid" 2>/dev/null) in Z*) break ;; esac
        sleep 0.1
    done
    kill -KILL "$pid" $kids 2>/dev/null
    wait "$pid" 2>/dev/null
    return 0
}
cleanup() {
    local p
    for p in "${TRACKED[@]}"; do kill_tree "$p"; done
    TRACKED=()
}
trap cleanup EXIT
trap 'log interrupted; exit 130' INT TERM HUP
untrack() {
    local p keep=()
    for p in "${TRACKED[@]}"; do [ "$p" != "$1" ] && keep+=("$p"); done
    TRACKED=("${keep[@]}")
}

# Servers and the 10k-connection client need more than the default 1024 fds.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null
if [ "$(ulimit -n)" != unlimited ] && [ "$(ulimit -n)" -lt 20000 ]; then
    log "warning: RLIMIT_NOFILE is $(ulimit -n) (< 20000): scenarios 5 and 6 may fail"
fi

mkdir -p "$OUT/logs" "$OUT/bin"
rm -f "$OUT"/*.txt "$OUT"/logs/*.log "$RES"
: >"$RES"
: >"$NOTES"

# ---- anchors ---------------------------------------------------------------
FLOOR=$ANCHORS/floor/floor
if [ ! -x "$FLOOR" ]; then
    FLOOR=$OUT/bin/floor
    if [ ! -x "$FLOOR" ] || [ "$ANCHORS/floor/floor.c" -nt "$FLOOR" ]; then
        log "building the floor"
        gcc -O2 -o "$FLOOR" "$ANCHORS/floor/floor.c" || { note "floor: build failed"; FLOOR=""; }
    fi
fi

TOKIO=$ANCHORS/tokio-hyper/target/release/tokio-hyper-anchor
if [ ! -x "$TOKIO" ]; then
    # The anchors tree may be read-only: build a copy under bench/out.
    TOKIO=$OUT/bin/tokio-hyper/target/release/tokio-hyper-anchor
    if [ ! -x "$TOKIO" ]; then
        log "building tokio-hyper (offline, Debian crates; ~1 min)"
        rm -rf "$OUT/bin/tokio-hyper"
        cp -r "$ANCHORS/tokio-hyper" "$OUT/bin/tokio-hyper" && chmod -R u+w "$OUT/bin/tokio-hyper"
        if ! timeout 900 sh "$OUT/bin/tokio-hyper/build.sh" >"$OUT/logs/tokio-build.log" 2>&1; then
            note "tokio-hyper: build failed (offline?), skipped; see bench/out/logs/tokio-build.log"
            TOKIO=""
        fi
    fi
fi

H2O=$(command -v h2o || true)
if [ -z "$H2O" ] && [ "$(id -u)" = 0 ]; then
    log "trying apt-get install h2o"
    DEBIAN_FRONTEND=noninteractive timeout 120 apt-get install -y -qq --no-install-recommends \
        h2o >/dev/null 2>&1
    H2O=$(command -v h2o || true)
fi
[ -n "$H2O" ] || note "h2o: not installed, skipped"

NGINX=$(command -v nginx || true)
[ -n "$NGINX" ] || note "nginx: not installed (scripts/deps.sh bench), skipped"

if [ -x "$TERN_BIN" ]; then
    TERN=$ROOT/$TERN_BIN
    [ "${TERN_BIN#/}" != "$TERN_BIN" ] && TERN=$TERN_BIN
else
    TERN=""
    note "tern: $TERN_BIN not found (build it with \`make\`): tern rows skipped"
fi

# ---- servers ---------------------------------------------------------------
port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# start_server NAME: sets SRV_PID SRV_PORT SRV_PATH; returns 1 if unavailable.
start_server() {
    local name=$1 cmd p
    SRV_PATH=/plaintext
    # tern, the floor and tokio-hyper take their port as an argument: if someone
    # else's process holds the usual one, use a free one from 18100-18199.
    case $name in
    tern | tern-alog) SRV_PORT=$TERN_PORT ;;
    floor) SRV_PORT=18086 ;;
    tokio) SRV_PORT=18083 ;;
    esac
    case $name in tern | tern-alog | floor | tokio)
        if port_busy "$SRV_PORT"; then
            for ((p = 18100; p < 18200; p++)); do port_busy "$p" || break; done
            note "$name: port $SRV_PORT in use by another process, using $p"
            SRV_PORT=$p
        fi ;;
    esac
    case $name in
    tern)
        [ -n "$TERN" ] || return 1
        cmd=("$TERN" --workers 1 --port "$SRV_PORT" --host 127.0.0.1) ;;
    tern-alog)
        [ -n "$TERN" ] || return 1
        rm -f "$OUT/access.log"
        cmd=("$TERN" --workers 1 --port "$SRV_PORT" --host 127.0.0.1 --access-log "$OUT/access.log") ;;
    nginx)
        [ -n "$NGINX" ] || return 1
        SRV_PORT=18081
        cmd=("$NGINX" -e /tmp/anchor-nginx.err -c "$ANCHORS/nginx.conf") ;;
    h2o)
        [ -n "$H2O" ] || return 1
        SRV_PORT=18082 SRV_PATH=/
        mkdir -p /tmp/h2o-root && printf 'Hello, World!' >/tmp/h2o-root/index.txt
        # h2o's defaults (max-connections 1024, 10 s idle timeout) cannot hold the
        # 10,000 idle connections of scenario 5: raise both, nothing else changes.
        { cat "$ANCHORS/h2o.conf"
          printf 'max-connections: 20000\nhttp1-request-timeout: 120\n'; } >"$OUT/h2o.conf"
        cmd=("$H2O" -c "$OUT/h2o.conf") ;;
    tokio)
        [ -n "$TOKIO" ] || return 1
        cmd=("$TOKIO" "$SRV_PORT" 1) ;;
    floor)
        [ -n "$FLOOR" ] || return 1
        cmd=("$FLOOR" "$SRV_PORT") ;;
    esac
    if port_busy "$SRV_PORT"; then
        note "$name: port $SRV_PORT already in use by a process this script did not start; skipped"
        return 1
    fi
    echo "== $(date +%T) taskset -c 0 ${cmd[*]}" >>"$OUT/logs/$name.log"
    taskset -c 0 "${cmd[@]}" >>"$OUT/logs/$name.log" 2>&1 </dev/null &
    SRV_PID=$!
    TRACKED+=("$SRV_PID")
    local i
    for ((i = 0; i < 200; i++)); do
        if ! kill -0 "$SRV_PID" 2>/dev/null; then
            note "$name: exited at start-up, see bench/out/logs/$name.log"
            untrack "$SRV_PID"; wait "$SRV_PID" 2>/dev/null
            return 1
        fi
        port_busy "$SRV_PORT" && return 0
        sleep 0.05
    done
    note "$name: not listening on $SRV_PORT after 10 s"
    stop_server
    return 1
}
stop_server() {
    kill_tree "$SRV_PID"
    untrack "$SRV_PID"
}

# Server CPU time (user+system clock ticks) and VmRSS (kB), summed over the
# server and its descendants (nginx/h2o master + worker).
tree_pids() { echo "$1"; descendants "$1"; }
cpu_ticks() {
    local p s t=0 f
    for p in $(tree_pids "$1"); do
        s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        s=${s##*) }           # comm may contain spaces; fields restart at 3 (state)
        read -r -a f <<<"$s"
        t=$((t + f[11] + f[12])) # fields 14 utime, 15 stime
    done
    echo "$t"
}
rss_kb() {
    local p t=0 v
    for p in $(tree_pids "$1"); do
        v=$(awk '/^VmRSS:/ {print $2}' "/proc/$p/status" 2>/dev/null)
        t=$((t + ${v:-0}))
    done
    echo "$t"
}
CLK_TCK=$(getconf CLK_TCK)
# cpu0_ticks: "busy total" clock ticks of CPU 0 from /proc/stat. CPU 0 busy time
# not charged to the server is interference from other processes (the machine
# may be shared): RESULTS.md shows it per run as "CPU0 other %".
cpu0_ticks() {
    awk '$1 == "cpu0" { b = $2 + $3 + $4 + $7 + $8 + $9; print b, b + $5 + $6 }' /proc/stat
}
other_pct() { # other_pct "B0 T0" "B1 T1" SERVER_TICKS
    echo "$1 $2 $3" | awk '{ t = $4 - $2; if (t > 0) printf "%.1f", 100 * ($3 - $1 - $5) / t }'
}

# run_wrk FILE ARGS...: wrk pinned to CPU 1, in the background so the trap can
# stop it; the exact command line is the first line of FILE.
run_wrk() {
    local file=$1; shift
    echo "\$ taskset -c 1 wrk $(quote "$@")" >"$file"
    taskset -c 1 wrk "$@" >>"$file" 2>&1 &
    WRK_PID=$!
    TRACKED+=("$WRK_PID")
    wait "$WRK_PID"
    local rc=$?
    untrack "$WRK_PID"
    return $rc
}
record() { local IFS=$'\t'; echo "$*" >>"$RES"; }
# alive PID: the server is still running (a killed child stays a zombie until reaped).
alive() {
    kill -0 "$1" 2>/dev/null || return 1
    case $(ps -o stat= -p "$1" 2>/dev/null) in Z*) return 1 ;; esac
}
# quote ARGS...: the command line as one would type it (args with spaces in '').
quote() {
    local a s=""
    for a in "$@"; do
        case $a in *[[:space:]]* | "") s+=" '$a'" ;; *) s+=" $a" ;; esac
    done
    echo "${s# }"
}

rotate() { # rotate ROUND LIST...: LIST rotated left by ROUND-1
    local r=$1; shift
    local a=("$@") n=$#
    local i
    for ((i = 0; i < n; i++)); do echo "${a[(i + r - 1) % n]}"; done
}

# ---- scenarios ---------------------------------------------------------------
# wrk_scenario ID NAME ROUND SERVER WRK-ARGS... (URL appended by "@URL@")
wrk_scenario() {
    local id=$1 server=$2 round=$3; shift 3
    start_server "$server" || return 0
    local url="http://127.0.0.1:$SRV_PORT$SRV_PATH" args=() a
    for a in "$@"; do args+=("${a//@URL@/$url}"); done
    # Warm-up run (not measured): faults in code and buffers, fills caches.
    taskset -c 1 wrk -t1 -c64 -d"$WARMUP" "$url" >/dev/null 2>&1
    local file=$OUT/s$id-$server-r$round.txt t0 t1 c0 c1
    c0=$(cpu0_ticks)
    t0=$(cpu_ticks "$SRV_PID")
    run_wrk "$file" "${args[@]}"
    t1=$(cpu_ticks "$SRV_PID")
    c1=$(cpu0_ticks)
    alive "$SRV_PID" || { note "$server: exited during scenario $id round $round (run discarded)"
        record "scenario=$id" "server=$server" "round=$round" "wrk=${file#$ROOT/bench/}" \
            "died=1"; stop_server; return 0; }
    record "scenario=$id" "server=$server" "round=$round" "wrk=${file#$ROOT/bench/}" \
        "cpu_ticks=$((t1 - t0))" "clk_tck=$CLK_TCK" "cpu0_other=$(other_pct "$c0" "$c1" $((t1 - t0)))"
    stop_server
}

idle_scenario() {
    local server=$1 round=$2 line
    start_server "$server" || return 0
    local file=$OUT/s5-$server-r$round.txt
    echo "\$ taskset -c 1 python3 bench/idle_conns.py --port $SRV_PORT --pid $SRV_PID" \
        "--path $SRV_PATH --conns $IDLE_CONNS" >"$file"
    taskset -c 1 timeout 120 python3 bench/idle_conns.py --port "$SRV_PORT" --pid "$SRV_PID" \
        --path "$SRV_PATH" --conns "$IDLE_CONNS" >>"$file" 2>&1 &
    local cpid=$!
    TRACKED+=("$cpid")
    wait "$cpid"
    untrack "$cpid"
    line=$(grep '^conns=' "$file" | tail -1)
    [ -n "$line" ] || line="error=client_failed"
    alive "$SRV_PID" || line="error=server_exited"
    record "scenario=5" "server=$server" "round=$round" "out=${file#$ROOT/bench/}" "$line"
    stop_server
}

conc_scenario() {
    local server=$1 round=$2
    start_server "$server" || return 0
    local url="http://127.0.0.1:$SRV_PORT/concurrent"
    # Small warm-up (16 connections), then the idle baseline.
    taskset -c 1 wrk -t1 -c16 -d"$WARMUP" "$url" >/dev/null 2>&1
    sleep 0.5
    local idle mid file=$OUT/s6-$server-r$round.txt secs t0 t1 c0 c1
    idle=$(rss_kb "$SRV_PID")
    secs=${CONC_DURATION%s}
    t0=$(cpu_ticks "$SRV_PID")
    c0=$(cpu0_ticks)
    echo "\$ taskset -c 1 wrk -t1 -c$CONC_CONNS -d$CONC_DURATION --latency $url" >"$file"
    taskset -c 1 wrk -t1 -c"$CONC_CONNS" -d"$CONC_DURATION" --latency "$url" >>"$file" 2>&1 &
    WRK_PID=$!
    TRACKED+=("$WRK_PID")
    sleep "$(awk -v s="$secs" 'BEGIN { print s / 2 }')"
    mid=$(rss_kb "$SRV_PID")
    wait "$WRK_PID"
    untrack "$WRK_PID"
    t1=$(cpu_ticks "$SRV_PID")
    c1=$(cpu0_ticks)
    alive "$SRV_PID" || { note "$server: exited during scenario 6 round $round (run discarded)"
        record "scenario=6" "server=$server" "round=$round" "wrk=${file#$ROOT/bench/}" \
            "died=1"; stop_server; return 0; }
    record "scenario=6" "server=$server" "round=$round" "wrk=${file#$ROOT/bench/}" \
        "cpu_ticks=$((t1 - t0))" "clk_tck=$CLK_TCK" "rss_idle_kb=$idle" "rss_mid_kb=$mid" \
        "inflight=$CONC_CONNS" "cpu0_other=$(other_pct "$c0" "$c1" $((t1 - t0)))"
    stop_server
}

micro_scenario() {
    local src name bin first srcs flags w file
    for src in bench/micro_*.c; do
        [ -e "$src" ] || { note "micro: no bench/micro_*.c yet"; return 0; }
        name=$(basename "$src" .c)
        bin=$OUT/bin/$name
        file=$OUT/s7-$name.txt
        # The leading comment names the other sources (and any -D/-l flags) it
        # needs; keep the files that exist, skip other architectures' assembly.
        first=$(awk '{ print } /\*\// { exit }' "$src")
        srcs=() flags=()
        for w in $first; do
            w=${w%,}
            case $w in
            *_aarch64.S | *_x86_64.S | *_arm64.S)
                case $w in *"_$(uname -m)".S) ;; *) continue ;; esac ;;&
            *.c | *.S | *.s)
                if [ -f "$w" ] && [ "$w" != "$src" ]; then
                    case " ${srcs[*]} " in *" $w "*) ;; *) srcs+=("$w") ;; esac
                fi ;;
            -l* | -D*)
                case " ${flags[*]} " in *" $w "*) ;; *) flags+=("$w") ;; esac ;;
            esac
        done
        echo "\$ cc -O2 -Iinclude -Isrc ${flags[*]} $src ${srcs[*]} -o bench/out/bin/$name -lpthread" \
            >"$file"
        if ! cc -O2 -Iinclude -Isrc "${flags[@]}" "$src" "${srcs[@]}" -o "$bin" -lpthread \
            >>"$file" 2>&1; then
            record "scenario=7" "server=$name" "round=1" "out=${file#$ROOT/bench/}" "error=build"
            continue
        fi
        echo "\$ taskset -c 0 bench/out/bin/$name" >>"$file"
        local rc=0
        taskset -c 0 timeout 300 "$bin" >>"$file" 2>&1 || rc=$?
        record "scenario=7" "server=$name" "round=1" "out=${file#$ROOT/bench/}" "rc=$rc"
    done
}

# ---- scenarios 8 and 9: tern's runtime under its own endpoints ---------------
# http_get URL FILE: GET with a 120 s timeout, pinned to CPU 1; body to FILE
# (appended). Python rather than curl: python3 is already required.
http_get() {
    taskset -c 1 timeout 130 python3 -c '
import sys, urllib.request
with urllib.request.urlopen(sys.argv[1], timeout=120) as r:
    sys.stdout.write(r.read().decode() + "\n")' "$1" >>"$2" 2>&1
}
# json_kv FILE [PREFIX]: the top-level scalars of the last JSON line of FILE as
# tab-separated PREFIXkey=value fields (nothing if there is no JSON line).
json_kv() {
    python3 - "$1" "${2:-}" <<'PY'
import json, sys
d = None
for line in open(sys.argv[1]):
    line = line.strip()
    if line.startswith("{"):
        try:
            d = json.loads(line)
        except ValueError:
            pass
if d:
    print("\t".join(f"{sys.argv[2]}{k}={v}" for k, v in d.items()
                    if isinstance(v, (int, float, str)) and not isinstance(v, bool)))
PY
}

# Scenario 8: GET /memory?tasks=N as the first request of a fresh server, so
# the stack pool is cold and every task pays its full cost (runtime.c: a warm
# pool of freed stacks would hide it). One server per measurement.
memory_scenario() {
    local round=$1 n file kv
    for n in $MEM_TASKS; do
        start_server tern || return 0
        file=$OUT/s8-tern-n$n-r$round.txt
        echo "\$ taskset -c 1 python3 (urllib) GET http://127.0.0.1:$SRV_PORT/memory?tasks=$n" \
            "# first request to a fresh tern-demo --workers 1" >"$file"
        http_get "http://127.0.0.1:$SRV_PORT/memory?tasks=$n" "$file"
        echo "server VmRSS after: $(rss_kb "$SRV_PID") kB" >>"$file"
        kv=$(json_kv "$file")
        [ -n "$kv" ] || kv="error=no_json"
        alive "$SRV_PID" || kv="error=server_exited"
        record "scenario=8" "server=tern" "round=$round" "tasks=$n" "out=${file#$ROOT/bench/}" "$kv"
        stop_server
    done
}

# rss_sampler PID FILE: VmRSS (kB) of PID every 0.2 s into FILE until killed.
rss_sampler() {
    while :; do
        echo "$(date +%s.%N) $(rss_kb "$1")" >>"$2"
        sleep 0.2
    done
}

# Scenario 9: capacity of OVL_PATH (closed-loop wrk, OVL_CAP_CONNS connections;
# the default 2 keeps one request queued behind the running one, so the worker
# never idles, while the queue delay (~1 ms) stays under the level at which the
# demo's /adaptive handler cuts its work to a quarter (load level >= 50, i.e.
# >= 2.5 ms of queue delay with the 5 ms target): with -c4 or more wrk counts
# quarter-work answers and the "capacity" doubles; bench/work_us.lua prints the
# mix so this shows),
# then OVL_HALF_FACTOR x that rate open-loop for OVL_SECONDS (an ordinary
# load: nothing may be shed) and 1 s of rest, then OVL_FACTOR x that rate
# offered open-loop by bench/loadgen.c for OVL_SECONDS, then the same
# closed-loop run again at once (recovery); burst_scenario follows on a fresh
# server. /stats
# is read before and after the overload and after the recovery, VmRSS is
# sampled every 0.2 s throughout.
overload_scenario() {
    local round=$1
    [ -n "$LOADGEN" ] || return 0
    start_server tern || return 0
    local url="http://127.0.0.1:$SRV_PORT$OVL_PATH" pre=$OUT/s9-tern-r$round
    local t0 t1 c0 c1 cap_rps rate rss0 rss1 rss2 rss_max spid kv lg
    taskset -c 1 wrk -t1 -c"$OVL_CAP_CONNS" -d"$WARMUP" "$url" >/dev/null 2>&1
    # capacity and unloaded p99
    c0=$(cpu0_ticks); t0=$(cpu_ticks "$SRV_PID")
    run_wrk "$pre-capacity.txt" -t1 -c"$OVL_CAP_CONNS" -d"$OVL_CAP_DURATION" --latency \
        -s bench/work_us.lua "$url"
    t1=$(cpu_ticks "$SRV_PID"); c1=$(cpu0_ticks)
    local cap_other
    cap_other=$(other_pct "$c0" "$c1" $((t1 - t0)))
    # 200s per second only: a 503 is not served capacity
    cap_rps=$(python3 - "$pre-capacity.txt" <<'PY'
import re, sys
t = open(sys.argv[1]).read()
n = re.search(r"(\d+) requests in ([\d.]+)(ms|s|m)\b", t)
bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", t)
if n:
    secs = float(n.group(2)) * {"ms": 1e-3, "s": 1, "m": 60}[n.group(3)]
    print(f"{(int(n.group(1)) - (int(bad.group(1)) if bad else 0)) / secs:.1f}")
PY
)
    if [ -z "$cap_rps" ] || ! alive "$SRV_PID"; then
        note "tern: scenario 9 round $round: no capacity figure (see ${pre#$ROOT/}-capacity.txt)"
        record "scenario=9" "server=tern" "round=$round" "error=capacity"
        stop_server
        return 0
    fi
    rate=$(awk -v c="$cap_rps" -v f="$OVL_FACTOR" 'BEGIN { printf "%.0f", c * f }')
    # an ordinary load first: OVL_HALF_FACTOR x capacity, open loop, same
    # duration and connections as the overload; nothing may be shed
    local half_rate half_other half_kv
    half_rate=$(awk -v c="$cap_rps" -v f="$OVL_HALF_FACTOR" 'BEGIN { printf "%.0f", c * f }')
    c0=$(cpu0_ticks); t0=$(cpu_ticks "$SRV_PID")
    run_loadgen "$pre-half.txt" --port "$SRV_PORT" --path "$OVL_PATH" --rate "$half_rate" \
        --conns "$OVL_CONNS" --seconds "$OVL_SECONDS"
    t1=$(cpu_ticks "$SRV_PID"); c1=$(cpu0_ticks)
    half_other=$(other_pct "$c0" "$c1" $((t1 - t0)))
    half_kv=$(prefixed_kv "$pre-half.txt" half_)
    [ -n "$half_kv" ] || half_kv="half_error=loadgen_failed"
    echo "\$ GET /stats" >"$pre-stats-half.txt"
    http_get "http://127.0.0.1:$SRV_PORT/stats" "$pre-stats-half.txt"
    sleep 1 # the overload starts from a calm server, as before this phase existed
    : >"$pre-rss.txt"
    rss_sampler "$SRV_PID" "$pre-rss.txt" &
    spid=$!
    TRACKED+=("$spid")
    sleep 1 # a few samples of the calm baseline
    echo "\$ GET /stats" >"$pre-stats0.txt"
    http_get "http://127.0.0.1:$SRV_PORT/stats" "$pre-stats0.txt"
    rss0=$(rss_kb "$SRV_PID")
    # the overload, open loop
    c0=$(cpu0_ticks); t0=$(cpu_ticks "$SRV_PID")
    lg=(--port "$SRV_PORT" --path "$OVL_PATH" --rate "$rate" --conns "$OVL_CONNS"
        --seconds "$OVL_SECONDS" --dump "$pre-requests.txt")
    echo "overload_start $(date +%s.%N)" >>"$pre-rss.txt"
    echo "\$ taskset -c 1 bench/out/bin/loadgen $(quote "${lg[@]}")" >"$pre-overload.txt"
    taskset -c 1 "$LOADGEN" "${lg[@]}" >>"$pre-overload.txt" 2>&1 &
    local lpid=$!
    TRACKED+=("$lpid")
    wait "$lpid"
    untrack "$lpid"
    echo "overload_end $(date +%s.%N)" >>"$pre-rss.txt"
    t1=$(cpu_ticks "$SRV_PID"); c1=$(cpu0_ticks)
    local ovl_other
    ovl_other=$(other_pct "$c0" "$c1" $((t1 - t0)))
    rss1=$(rss_kb "$SRV_PID")
    echo "\$ GET /stats" >"$pre-stats1.txt"
    http_get "http://127.0.0.1:$SRV_PORT/stats" "$pre-stats1.txt"
    # recovery: the capacity run again, right away
    c0=$(cpu0_ticks); t0=$(cpu_ticks "$SRV_PID")
    run_wrk "$pre-recovery.txt" -t1 -c"$OVL_CAP_CONNS" -d"$OVL_RECOVERY_DURATION" --latency \
        -s bench/work_us.lua "$url"
    t1=$(cpu_ticks "$SRV_PID"); c1=$(cpu0_ticks)
    local rec_other
    rec_other=$(other_pct "$c0" "$c1" $((t1 - t0)))
    echo "\$ GET /stats" >"$pre-stats2.txt"
    http_get "http://127.0.0.1:$SRV_PORT/stats" "$pre-stats2.txt"
    sleep 0.5
    kill "$spid" 2>/dev/null; wait "$spid" 2>/dev/null; untrack "$spid"
    rss2=$(rss_kb "$SRV_PID")
    # largest sample between the overload's start and end markers
    rss_max=$(awk '/^overload_start/ { on = 1; next } /^overload_end/ { on = 0; next }
                   on && $2 > m { m = $2 } END { print m + 0 }' "$pre-rss.txt")
    if ! alive "$SRV_PID"; then
        note "tern: exited during scenario 9 round $round (run discarded)"
        record "scenario=9" "server=tern" "round=$round" "error=server_exited"
        stop_server
        return 0
    fi
    kv=$(grep '^offered_rps=' "$pre-overload.txt" | tail -1)
    [ -n "$kv" ] || kv="error=loadgen_failed"
    record "scenario=9" "server=tern" "round=$round" "cap=${pre#$ROOT/bench/}-capacity.txt" \
        "rec=${pre#$ROOT/bench/}-recovery.txt" "ovl=${pre#$ROOT/bench/}-overload.txt" \
        "dump=${pre#$ROOT/bench/}-requests.txt" \
        "cap_ok_rps=$cap_rps" "rss_before_kb=$rss0" "rss_during_max_kb=$rss_max" \
        "rss_end_kb=$rss1" "rss_after_kb=$rss2" "cap_cpu0_other=$cap_other" \
        "ovl_cpu0_other=$ovl_other" "rec_cpu0_other=$rec_other" \
        "cap_work=$(sed -n 's/^work_us=//p' "$pre-capacity.txt")" \
        "rec_work=$(sed -n 's/^work_us=//p' "$pre-recovery.txt")" "$kv" \
        "$(json_kv "$pre-stats0.txt" st0_)" "$(json_kv "$pre-stats1.txt" st1_)" \
        "$(json_kv "$pre-stats2.txt" st2_)" "half=${pre#$ROOT/bench/}-half.txt" \
        "half_cpu0_other=$half_other" "$half_kv" "$(json_kv "$pre-stats-half.txt" sth_)"
    stop_server
}

# run_loadgen FILE ARGS...: bench/loadgen.c pinned to CPU 1 (command line first
# in FILE), in the background so the trap can stop it.
run_loadgen() {
    local file=$1; shift
    echo "\$ taskset -c 1 bench/out/bin/loadgen $(quote "$@")" >"$file"
    taskset -c 1 "$LOADGEN" "$@" >>"$file" 2>&1 &
    local lpid=$!
    TRACKED+=("$lpid")
    wait "$lpid"
    untrack "$lpid"
}
# prefixed_kv FILE PREFIX: loadgen's summary line with PREFIX before every key.
prefixed_kv() {
    grep '^offered_rps=' "$1" | tail -1 |
        awk -v p="$2" 'BEGIN { FS = OFS = "\t" } { for (i = 1; i <= NF; i++) $i = p $i; print }'
}

# Scenario 9, bursts: on a fresh server, N requests sent at once on N
# connections (loadgen at 1,000,000 req/s for N us, once every connection is
# up), for each N:PATH of OVL_BURSTS in turn, 50 ms apart. Far below capacity
# in total: nothing may be shed.
burst_scenario() {
    local round=$1 items it n path i=0 file kv
    [ -n "$LOADGEN" ] || return 0
    read -r -a items <<<"$OVL_BURSTS"
    start_server tern || return 0
    for it in "${items[@]}"; do
        n=${it%%:*} path=${it#*:} i=$((i + 1))
        file=$OUT/s9-tern-r$round-burst$i.txt
        run_loadgen "$file" --port "$SRV_PORT" --path "$path" --rate 1000000 --conns "$n" \
            --seconds "$(awk -v n="$n" 'BEGIN { printf "%.6f", n / 1e6 }')"
        kv=$(grep '^offered_rps=' "$file" | tail -1)
        [ -n "$kv" ] || kv="error=loadgen_failed"
        alive "$SRV_PID" || kv="error=server_exited"
        record "scenario=9b" "server=tern" "round=$round" "burst=$i" "n=$n" "path=$path" \
            "out=${file#$ROOT/bench/}" "$kv"
        sleep 0.05
    done
    stop_server
}

# Scenario 10: fairness under a pipelining hog. On the server's one worker, the
# hog (bench/hog.c, mode hog) writes FAIR_DEPTH pipelined GETs per write
# non-stop on one connection while reading the answers (FAIR_WINDOWS: 0 = no
# bound on the answers owed, W = at most W owed); 0.5 s after it starts, the
# probe (same program, mode probe, a separate process) sends one GET every
# FAIR_INTERVAL_MS on its own keep-alive connection for FAIR_DURATION and times
# each. Both clients on CPU 1, the probe at SCHED_FIFO 1 when allowed.
fair_scenario() {
    local server=$1 round=$2 win=$3
    [ -n "$HOG" ] || return 0
    start_server "$server" || return 0
    local url="http://127.0.0.1:$SRV_PORT$SRV_PATH" pre=$OUT/s10-$server-w$win-r$round
    local secs=${FAIR_DURATION%s} hargs pargs hpid ppid t0 t1 c0 c1 pkv hkv
    taskset -c 1 wrk -t1 -c64 -d"$WARMUP" "$url" >/dev/null 2>&1
    hargs=(hog --port "$SRV_PORT" --path "$SRV_PATH" --depth "$FAIR_DEPTH" --window "$win"
        --seconds "$(awk -v s="$secs" 'BEGIN { print s + 1 }')")
    pargs=(probe --port "$SRV_PORT" --path "$SRV_PATH" --interval-ms "$FAIR_INTERVAL_MS"
        --seconds "$secs" --dump "$pre-latencies.txt")
    echo "\$ taskset -c 1 bench/out/bin/hog $(quote "${hargs[@]}")" >"$pre-hog.txt"
    taskset -c 1 "$HOG" "${hargs[@]}" >>"$pre-hog.txt" 2>&1 &
    hpid=$!
    TRACKED+=("$hpid")
    sleep 0.5
    echo "\$ taskset -c 1 bench/out/bin/hog $(quote "${pargs[@]}")" >"$pre-probe.txt"
    c0=$(cpu0_ticks); t0=$(cpu_ticks "$SRV_PID")
    taskset -c 1 "$HOG" "${pargs[@]}" >>"$pre-probe.txt" 2>&1 &
    ppid=$!
    TRACKED+=("$ppid")
    wait "$ppid"
    untrack "$ppid"
    t1=$(cpu_ticks "$SRV_PID"); c1=$(cpu0_ticks)
    wait "$hpid"
    untrack "$hpid"
    pkv=$(grep '^probes=' "$pre-probe.txt" | tail -1)
    hkv=$(grep '^hog_responses=' "$pre-hog.txt" | tail -1)
    [ -n "$pkv" ] || pkv="error=probe_failed"
    [ -n "$hkv" ] || hkv="hog_error=hog_failed"
    if ! alive "$SRV_PID"; then
        note "$server: exited during scenario 10 round $round (run discarded)"
        pkv="error=server_exited"
    fi
    record "scenario=10" "server=$server" "round=$round" "window=$win" \
        "probe_out=${pre#$ROOT/bench/}-probe.txt" "hog_out=${pre#$ROOT/bench/}-hog.txt" \
        "cpu_ticks=$((t1 - t0))" "clk_tck=$CLK_TCK" \
        "cpu0_other=$(other_pct "$c0" "$c1" $((t1 - t0)))" "$pkv" "$hkv"
    stop_server
}

MAIN=(tern nginx floor)
for e in $EXTRA; do MAIN+=("$e"); done

has() { case " $SCENARIOS " in *" $1 "*) return 0 ;; esac; return 1; }
LOADGEN=""
if has 9; then
    LOADGEN=$OUT/bin/loadgen
    if ! cc -O2 -o "$LOADGEN" bench/loadgen.c >"$OUT/logs/loadgen-build.log" 2>&1; then
        note "loadgen: build failed (see bench/out/logs/loadgen-build.log): scenario 9 skipped"
        LOADGEN=""
    fi
fi
HOG=""
if has 10; then
    HOG=$OUT/bin/hog
    if ! cc -O2 -o "$HOG" bench/hog.c >"$OUT/logs/hog-build.log" 2>&1; then
        note "hog: build failed (see bench/out/logs/hog-build.log): scenario 10 skipped"
        HOG=""
    fi
fi

{
    echo "date=$(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "nproc=$(nproc)"
    echo "kernel=$(uname -sr)"
    echo "cpu=$(awk -F': ' '/^model name/ {print $2; exit}' /proc/cpuinfo)"
    echo "loadavg_start=$(cut -d' ' -f1-3 /proc/loadavg)"
    echo "wrk=$(wrk -v 2>&1 | head -n 1)"
    [ -n "$NGINX" ] && echo "nginx=$("$NGINX" -v 2>&1)"
    [ -n "$H2O" ] && echo "h2o=$("$H2O" --version 2>&1 | head -n 1)"
    [ -n "$TERN" ] && echo "tern=$TERN_BIN ($(stat -c '%y' "$TERN" | cut -d. -f1))"
    echo "rounds=$ROUNDS"
    echo "duration=$DURATION"
    echo "conc_duration=$CONC_DURATION"
    echo "warmup=$WARMUP"
    echo "ulimit_n=$(ulimit -n)"
    echo "scenarios=$SCENARIOS"
    echo "mem_tasks=$MEM_TASKS"
    echo "ovl_path=$OVL_PATH"
    echo "ovl_cap_conns=$OVL_CAP_CONNS"
    echo "ovl_cap_duration=$OVL_CAP_DURATION"
    echo "ovl_factor=$OVL_FACTOR"
    echo "ovl_seconds=$OVL_SECONDS"
    echo "ovl_conns=$OVL_CONNS"
    echo "ovl_recovery_duration=$OVL_RECOVERY_DURATION"
    echo "ovl_half_factor=$OVL_HALF_FACTOR"
    echo "ovl_bursts=$OVL_BURSTS"
    echo "fair_duration=$FAIR_DURATION"
    echo "fair_depth=$FAIR_DEPTH"
    echo "fair_windows=$FAIR_WINDOWS"
    echo "fair_interval_ms=$FAIR_INTERVAL_MS"
} >"$OUT/machine.txt"

PIPE_LUA=$ANCHORS/pipeline.lua
for ((r = 1; r <= ROUNDS; r++)); do
    mapfile -t ORDER < <(rotate "$r" "${MAIN[@]}")
    log "round $r/$ROUNDS: ${ORDER[*]}"
    for s in "${ORDER[@]}"; do
        has 1 && wrk_scenario 1 "$s" "$r" -t1 -c256 -d"$DURATION" --latency @URL@
        has 2 && wrk_scenario 2 "$s" "$r" -t1 -c256 -d"$DURATION" --latency -s "$PIPE_LUA" @URL@ -- 16
        has 3 && wrk_scenario 3 "$s" "$r" -t1 -c64 -d"$DURATION" --latency -H 'Connection: close' @URL@
        has 4 && wrk_scenario 4 "$s" "$r" -t1 -c1 -d"$DURATION" --latency @URL@
    done
    if has 5; then
        for s in $(rotate "$r" tern nginx h2o tokio); do idle_scenario "$s" "$r"; done
    fi
    if has 6; then
        for s in $(rotate "$r" tern tokio); do conc_scenario "$s" "$r"; done
    fi
    if has alog; then
        for s in $(rotate "$r" tern tern-alog); do
            wrk_scenario alog "$s" "$r" -t1 -c256 -d"$DURATION" --latency @URL@
        done
    fi
    has 8 && memory_scenario "$r"
    if has 9; then
        overload_scenario "$r"
        burst_scenario "$r"
    fi
    if has 10; then
        for s in $(rotate "$r" tern nginx); do
            for w in $FAIR_WINDOWS; do fair_scenario "$s" "$r" "$w"; done
        done
    fi
done
has 7 && micro_scenario
# JSON parse and serialise MB/s: tern's reader/writer, jansson and cJSON on the
# same documents (bench/json_bench.c); SCENARIOS="json" runs it alone
if has json; then
    file=$OUT/json.txt
    echo "\$ cc -O2 -D_GNU_SOURCE -Iinclude -Isrc bench/json_bench.c -ljansson -lcjson -lm && taskset -c 0 json_bench" >"$file"
    if cc -O2 -D_GNU_SOURCE -Iinclude -Isrc bench/json_bench.c -o "$OUT/bin/json_bench" -ljansson -lcjson -lm >>"$file" 2>&1; then
        taskset -c 0 timeout 300 "$OUT/bin/json_bench" | tee -a "$file"
    else
        note "json: build failed (libjansson-dev and libcjson-dev installed? scripts/deps.sh bench)"
    fi
fi
# TLS against nginx-tls.conf (bench/tls.sh: handshakes/s, HTTPS req/s, RSS
# per idle TLS connection); SCENARIOS="tls" runs it alone
if has tls; then
    TERN_BIN=$TERN_BIN ANCHORS=$ANCHORS ROUNDS=$ROUNDS DURATION=$DURATION bench/tls.sh | tee "$OUT/tls.txt"
fi
# PostgreSQL /db and /queries?queries=20 against the tokio-postgres anchor
# (bench/pg.sh starts its own PostgreSQL; skips when there is none)
if has pg; then
    TERN_BIN=$TERN_BIN ANCHORS=$ANCHORS bench/pg.sh | tee "$OUT/pg.txt"
fi
# Static files against nginx's static server and compression CPU per
# request (bench/static.sh); SCENARIOS="static" runs it alone
if has static; then
    TERN_BIN=$TERN_BIN ANCHORS=$ANCHORS ROUNDS=$ROUNDS DURATION=$DURATION bench/static.sh | tee "$OUT/static.txt"
fi
echo "loadavg_end=$(cut -d' ' -f1-3 /proc/loadavg)" >>"$OUT/machine.txt"

python3 bench/report.py "$OUT" "$ROOT/bench/RESULTS.md" "$ANCHORS"
log "wrote bench/RESULTS.md (raw outputs in bench/out/)"
