#!/usr/bin/env bash
# WebSocket echo throughput: bench/wsload.c against tern-demo's /ws (sequential
# handler) and /ws/callback (callback mode), and against Node's `ws` echo server
# (bench/ws_node_echo.js): 64 B and 16 KiB binary messages, one in flight on each
# of 1,000 connections. Server pinned to CPU 0 (one worker), load to CPU 1.
# Reports messages/s and server CPU per message (utime+stime from /proc).
# Usage: bench/ws.sh [BUILD_DIR] (default build; a release build without sanitizers)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${1:-build}
SECS=${WS_SECONDS:-5}
CONNS=${WS_CONNS:-1000}
mkdir -p bench/out/bin
cc -O2 -o bench/out/bin/wsload bench/wsload.c
ulimit -n "$(ulimit -Hn)"

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

run() { # NAME PID PORT PATH
    local name=$1 pid=$2 port=$3 path=$4 size
    for size in 64 16384; do
        local t0 t1 out msgs
        t0=$(cpu_ticks "$pid")
        out=$(taskset -c 1 bench/out/bin/wsload -p "$port" -u "$path" -c "$CONNS" -s "$size" -d "$SECS")
        t1=$(cpu_ticks "$pid")
        msgs=$(sed -n 's/.*messages=\([0-9]*\).*/\1/p' <<<"$out")
        awk -v n="$name" -v s="$size" -v o="$out" -v m="$msgs" -v t="$((t1 - t0))" -v hz="$(getconf CLK_TCK)" \
            'BEGIN { split(o, f, /msgs_per_s=/); split(f[2], g, / /);
                     printf "%-22s %6d B  %9.0f msg/s  server CPU %.2f us/msg\n", n, s, g[1], t / hz * 1e6 / (m ? m : 1) }'
    done
}

port=$((20000 + RANDOM % 20000))
taskset -c 0 "$BUILD/tern-demo" --port "$port" --workers 1 --host 127.0.0.1 >/dev/null 2>&1 &
tern=$!
sleep 1
run "tern /ws" "$tern" "$port" /ws
run "tern /ws/callback" "$tern" "$port" /ws/callback
kill "$tern"; wait "$tern" 2>/dev/null || true

if command -v node >/dev/null && [ -d .deps/node/node_modules/ws ]; then
    port=$((port + 1))
    NODE_PATH=.deps/node/node_modules taskset -c 0 node bench/ws_node_echo.js "$port" >/dev/null &
    node_pid=$!
    sleep 1
    run "node ws" "$node_pid" "$port" /
    kill "$node_pid"; wait "$node_pid" 2>/dev/null || true
else
    echo "node ws: skipped (scripts/deps.sh bench installs it)"
fi
