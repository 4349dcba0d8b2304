#!/usr/bin/env bash
# Static files and compression: tern-demo --static against nginx's static
# server of the anchor config (anchors/nginx-tls.conf, port 18087, folder
# /tmp/anchor-static, sendfile on, tcp_nopush on), one worker each, server
# pinned to CPU 0 and wrk to CPU 1, servers alternating in each round.
#   1. GET of a 1 KiB and a 1 MiB file, keep-alive: requests/s and server
#      CPU µs per request (/proc/PID/stat; nginx: its worker)
#   2. tern only: compression CPU per request of a 10 KB JSON body (POST
#      /echo, Content-Type application/json, so the body is the handler's):
#      identity, gzip and br at the default levels (1 and 2); the difference to
#      identity is what compressing costs
# Called by bench/run.sh (scenario "static") or alone:
#   TERN_BIN=build/tern-demo ANCHORS=../shared/anchors bench/static.sh
# Knobs: ROUNDS=1 DURATION=5s
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 1
ROUNDS=${ROUNDS:-1}
DURATION=${DURATION:-5s}
TERN_BIN=${TERN_BIN:-build/tern-demo}
TERN_PORT=${TERN_STATIC_PORT:-18446}
NGINX_PORT=18087
ANCHORS=$(cd "${ANCHORS:-../shared/anchors}" && pwd) || exit 1
DIR=/tmp/anchor-static
TLS=/tmp/anchor-tls

# the folder nginx serves (and tern too); the TLS server in the same config
# needs its key pair even though only the plain port is measured here
mkdir -p "$DIR" "$TLS"
[ -s "$DIR/1k.bin" ] || head -c 1024 /dev/urandom >"$DIR/1k.bin"
[ -s "$DIR/1m.bin" ] || head -c 1048576 /dev/urandom >"$DIR/1m.bin"
[ -s "$TLS/cert.pem" ] || openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
    -subj /CN=localhost -keyout "$TLS/key.pem" -out "$TLS/cert.pem" 2>/dev/null || exit 1
ulimit -n 65536 2>/dev/null || true

start() { # name -> pid in $PID, port in $PORT, measured pid in $SPID
    case $1 in
    tern)
        taskset -c 0 "$TERN_BIN" --host 127.0.0.1 --port "$TERN_PORT" --workers 1 \
            --static "$DIR" >/dev/null 2>/tmp/bench-tern-static.err &
        PID=$! PORT=$TERN_PORT ;;
    nginx)
        taskset -c 0 nginx -e /tmp/anchor-nginx-tls.err -c "$ANCHORS/nginx-tls.conf" &
        PID=$! PORT=$NGINX_PORT ;;
    esac
    for _ in $(seq 50); do
        curl -sf "http://127.0.0.1:$PORT/static/1k.bin" >/dev/null && break
        sleep 0.1
    done
    local child
    child=$(pgrep -P "$PID" | head -1)
    SPID=${child:-$PID}
}
stop() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; sleep 0.3; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }

load() { # conns path [lua] -> "req/s cpu_us_per_req MB/s"
    local conns=$1 path=$2 lua=${3:-} t0 t1 out
    local extra=()
    [ -n "$lua" ] && extra=(-s "$lua")
    taskset -c 1 wrk -t1 -c"$conns" -d1s "${extra[@]}" "http://127.0.0.1:$PORT$path" >/dev/null 2>&1 # warm-up
    t0=$(cpu_ticks "$SPID")
    out=$(taskset -c 1 wrk -t1 -c"$conns" -d"$DURATION" "${extra[@]}" "http://127.0.0.1:$PORT$path" 2>&1)
    t1=$(cpu_ticks "$SPID")
    echo "$out" | awk -v a="$t0" -v b="$t1" -v hz="$(getconf CLK_TCK)" '
        /requests in/ {n = $1}
        /Requests\/sec/ {rps = $2}
        /Transfer\/sec/ {tr = $2}
        END {printf "%s %.2f %s\n", rps, (b - a) / hz * 1e6 / n, tr}'
}

echo "# static files, ${DURATION} runs, $ROUNDS round(s); nginx $(nginx -v 2>&1 | sed 's/.*\///')"
printf "%-6s %5s %-8s %12s %10s %10s\n" server round file req/s cpu_us/req transfer/s
for r in $(seq "$ROUNDS"); do
    order="tern nginx"
    [ $((r % 2)) -eq 0 ] && order="nginx tern"
    for s in $order; do
        start "$s"
        read -r rps cpu tr < <(load 64 /static/1k.bin)
        printf "%-6s %5s %-8s %12s %10s %10s\n" "$s" "$r" 1KiB "$rps" "$cpu" "$tr"
        read -r rps cpu tr < <(load 16 /static/1m.bin)
        printf "%-6s %5s %-8s %12s %10s %10s\n" "$s" "$r" 1MiB "$rps" "$cpu" "$tr"
        stop
    done
done

# compression: a 10 KB JSON body, echoed
LUA=$(mktemp /tmp/bench-compress-XXXX.lua)
python3 - >"$LUA.body" <<'PY'
import json
rows = [{"id": i, "name": "user %d" % i, "email": "user%d@example.com" % i, "active": i % 3 != 0,
         "score": round(i * 3.7, 1)} for i in range(120)]
s = json.dumps(rows)
print(s[:10240 - 2] + "]", end="") if len(s) > 10240 else print(s, end="")
PY
echo
echo "# compression of a $(wc -c <"$LUA.body")-byte JSON body (POST /echo), tern only"
printf "%-9s %12s %10s %14s %10s\n" coding req/s cpu_us/req extra_us/req bytes_out
start tern
base=""
for enc in identity gzip br; do
    cat >"$LUA" <<EOF
wrk.method = "POST"
local f = io.open("$LUA.body", "rb"); wrk.body = f:read("*a"); f:close()
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept-Encoding"] = "$enc"
EOF
    read -r rps cpu _ < <(load 64 /echo "$LUA")
    out=$(curl -s -H "Accept-Encoding: $enc" -H "Content-Type: application/json" --data-binary @"$LUA.body" \
        "http://127.0.0.1:$PORT/echo" | wc -c)
    [ -z "$base" ] && base=$cpu
    printf "%-9s %12s %10s %14s %10s\n" "$enc" "$rps" "$cpu" "$(awk -v a="$cpu" -v b="$base" 'BEGIN {printf "%.2f", a - b}')" "$out"
done
stop
rm -f "$LUA" "$LUA.body"
