#!/usr/bin/env bash
# PostgreSQL benchmarks: tern-demo's /db and /queries?queries=20 against the
# tokio-postgres anchor (anchors/tokio-postgres: hyper + tokio-postgres, built
# offline from Debian's crates), same throwaway database, one worker and a
# pool of 4 connections each, the server pinned to CPU 0 and wrk to CPU 1
# (PostgreSQL unpinned, as in the anchor's README), servers alternating in
# each round. Reports requests/s, server CPU µs per request and PostgreSQL CPU
# µs per request (postmaster + backends, from /proc/PID/stat).
# Called by bench/run.sh (scenario "pg") or alone:
#   TERN_BIN=build/tern-demo ANCHORS=../shared/anchors bench/pg.sh
# Knobs: ROUNDS=1 DURATION=8s CONNS=64 PG_PATHS="/db /queries?queries=20"
#   POOLS="4" (connections per server; "4 16" runs both servers at each size)
# Skips (exit 0, with a note) when PostgreSQL or the anchor is unavailable.
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 1
ROOT=$(pwd)
ROUNDS=${ROUNDS:-1}
DURATION=${DURATION:-8s}
CONNS=${CONNS:-64}
PG_PATHS=${PG_PATHS:-/db /queries?queries=20}
POOLS=${POOLS:-4}
TERN_BIN=${TERN_BIN:-build/tern-demo}
ANCHORS=$(cd "${ANCHORS:-../shared/anchors}" 2>/dev/null && pwd) || { echo "pg: anchors not found, skipped"; exit 0; }
OUT=$ROOT/bench/out
TERN_PORT=18089
TOKIO_PORT=18088
mkdir -p "$OUT/logs" "$OUT/bin"
case $TERN_BIN in /*) ;; *) TERN_BIN=$ROOT/$TERN_BIN ;; esac
[ -x "$TERN_BIN" ] || { echo "pg: $TERN_BIN not built, skipped"; exit 0; }

# ---- the anchor (the anchors tree may be read-only: build a copy) -------------
TOKIO=$ANCHORS/tokio-postgres/target/release/tokio-postgres-anchor
if [ ! -x "$TOKIO" ]; then
    TOKIO=$OUT/bin/tokio-postgres/target/release/tokio-postgres-anchor
    if [ ! -x "$TOKIO" ]; then
        echo "pg: building tokio-postgres (offline, Debian crates)" >&2
        rm -rf "$OUT/bin/tokio-postgres"
        cp -r "$ANCHORS/tokio-postgres" "$OUT/bin/tokio-postgres" && chmod -R u+w "$OUT/bin/tokio-postgres"
        timeout 1200 sh "$OUT/bin/tokio-postgres/build.sh" >"$OUT/logs/tokio-postgres-build.log" 2>&1 ||
            { echo "pg: tokio-postgres anchor: build failed, tern only (see bench/out/logs/tokio-postgres-build.log)"; TOKIO=""; }
    fi
fi

# ---- a throwaway PostgreSQL ----------------------------------------------------
PGINFO=$(python3 tests/integration/pg_server.py start 2>"$OUT/logs/pg-start.log") ||
    { echo "pg: no PostgreSQL server ($(tail -n 1 "$OUT/logs/pg-start.log")), skipped"; exit 0; }
PGDIR=${PGINFO%%$'\t'*}
DSN=${PGINFO#*$'\t'}
PIDS=()
cleanup() {
    local p
    for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    python3 tests/integration/pg_server.py stop "$PGDIR"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

ticks() { # utime+stime of the given pids, summed
    local p s t=0 f
    for p in "$@"; do
        s=$(cat "/proc/$p/stat" 2>/dev/null) || continue
        s=${s##*) }
        read -r -a f <<<"$s"
        t=$((t + f[11] + f[12]))
    done
    echo "$t"
}
# PostgreSQL's CPU: the postmaster's own and its reaped children's (cutime,
# cstime: backends that exited, e.g. connections a server discarded when wrk
# hung up mid-query) plus its live children's (backends, walwriter...)
pg_ticks() {
    local pm s f
    pm=$(head -n 1 "$PGDIR/data/postmaster.pid")
    s=$(cat "/proc/$pm/stat") || { echo 0; return; }
    s=${s##*) }
    read -r -a f <<<"$s"
    echo $((f[11] + f[12] + f[13] + f[14] + $(ticks $(ps -o pid= --ppid "$pm"))))
}
port_up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start() { # name -> PID, PORT
    case $1 in
    tern)
        PORT=$TERN_PORT
        taskset -c 0 "$TERN_BIN" --host 127.0.0.1 --port $PORT --workers 1 --pg "$DSN" --pg-pool "$POOL" \
            >>"$OUT/logs/pg-tern.log" 2>&1 </dev/null &
        ;;
    tokio)
        PORT=$TOKIO_PORT
        taskset -c 0 "$TOKIO" $PORT 1 "$DSN" "$POOL" >>"$OUT/logs/pg-tokio.log" 2>&1 </dev/null &
        ;;
    esac
    PID=$!
    PIDS+=("$PID")
    local i
    for ((i = 0; i < 200; i++)); do
        port_up $PORT && return 0
        kill -0 $PID 2>/dev/null || return 1
        sleep 0.05
    done
    return 1
}
stop() {
    kill "$PID" 2>/dev/null
    wait "$PID" 2>/dev/null
    PIDS=()
}

# tern-demo creates and seeds the schema on its first start
POOL=4
start tern || { echo "pg: tern-demo did not start with --pg (see bench/out/logs/pg-tern.log)"; exit 0; }
stop

CLK_TCK=$(getconf CLK_TCK)
printf '%-6s %4s %-22s %10s %10s %14s %16s %8s\n' server pool path "req/s" requests "server µs/req" "postgres µs/req" non2xx
servers=(tern)
[ -n "$TOKIO" ] && servers+=(tokio)
for ((r = 1; r <= ROUNDS; r++)); do
    order=("${servers[@]}")
    ((r % 2 == 0)) && [ ${#order[@]} -eq 2 ] && order=("${order[1]}" "${order[0]}")
    for POOL in $POOLS; do
    for s in "${order[@]}"; do
        for path in $PG_PATHS; do
            start "$s" || { echo "pg: $s did not start"; stop; continue; }
            url="http://127.0.0.1:$PORT$path"
            taskset -c 1 wrk -t1 -c$CONNS -d1s "$url" >/dev/null 2>&1 # warm-up
            file=$OUT/pg-$s-p$POOL-$(echo "$path" | tr -c 'a-z0-9\n' '_')-r$r.txt
            t0=$(ticks $PID)
            p0=$(pg_ticks)
            echo "\$ taskset -c 1 wrk -t1 -c$CONNS -d$DURATION $url" >"$file"
            taskset -c 1 wrk -t1 -c"$CONNS" -d"$DURATION" "$url" >>"$file" 2>&1
            t1=$(ticks $PID)
            p1=$(pg_ticks)
            stop
            rps=$(awk '/^Requests\/sec:/ {print $2}' "$file")
            n=$(awk '/requests in/ {print $1}' "$file")
            bad=$(awk '/Non-2xx/ {print $5}' "$file")
            [ -n "$n" ] && [ "$n" -gt 0 ] || { echo "pg: $s $path: no requests (see $file)"; continue; }
            printf '%-6s %4s %-22s %10s %10s %14.1f %16.1f %8s\n' "$s" "$POOL" "$path" "$rps" "$n" \
                "$(echo "$t0 $t1 $n $CLK_TCK" | awk '{print ($2 - $1) / $4 * 1e6 / $3}')" \
                "$(echo "$p0 $p1 $n $CLK_TCK" | awk '{print ($2 - $1) / $4 * 1e6 / $3}')" "${bad:-0}"
        done
    done
    done
done
