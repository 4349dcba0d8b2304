#!/usr/bin/env bash
# TLS benchmarks: tern-demo over HTTPS against nginx with the anchor config
# (anchors/nginx-tls.conf), same certificate, one worker each, server pinned
# to CPU 0 and the client to CPU 1, servers alternating in each round.
#   1. new handshakes per second, full and resumed (openssl s_time, one
#      client process: with ECDSA P-256 the client's own maths is about the
#      server's, so both servers are measured against the same bound)
#   2. HTTPS keep-alive "Hello, World!" requests/s (wrk over https, 256
#      connections) and server CPU per request (/proc/PID/stat)
#   3. RSS per idle TLS keep-alive connection: IDLE_TLS_CONNS connections,
#      one request each, VmRSS before and after
# Called by bench/run.sh (scenario "tls") or alone:
#   TERN_BIN=build/tern-demo ANCHORS=../shared/anchors bench/tls.sh
# Knobs: ROUNDS=1 DURATION=5s IDLE_TLS_CONNS=5000 KEY=ec|rsa
set -u -o pipefail
cd "$(dirname "$0")/.." || exit 1
ROUNDS=${ROUNDS:-1}
DURATION=${DURATION:-5s}
IDLE_TLS_CONNS=${IDLE_TLS_CONNS:-5000}
KEY=${KEY:-ec}
TERN_BIN=${TERN_BIN:-build/tern-demo}
export TERN_ALLOW_ROOT=${TERN_ALLOW_ROOT:-1} # the demo refuses root otherwise
TERN_PORT=${TERN_TLS_PORT:-18444}
NGINX_PORT=18443
ANCHORS=$(cd "${ANCHORS:-../shared/anchors}" && pwd) || exit 1
DIR=/tmp/anchor-tls
secs=${DURATION%s}

mkdir -p "$DIR"
if [ "$KEY" = rsa ]; then keyargs=(-newkey rsa:2048); else keyargs=(-newkey ec -pkeyopt ec_paramgen_curve:P-256); fi
openssl req -x509 "${keyargs[@]}" -nodes -days 30 -subj /CN=localhost \
    -addext subjectAltName=DNS:localhost,IP:127.0.0.1 \
    -keyout "$DIR/key.pem" -out "$DIR/cert.pem" 2>/dev/null || exit 1
ulimit -n 65536 2>/dev/null || true

start() { # name -> pid in $PID, port in $PORT
    case $1 in
    tern)
        taskset -c 0 "$TERN_BIN" --host 127.0.0.1 --port "$TERN_PORT" --workers 1 \
            --tls-cert "$DIR/cert.pem" --tls-key "$DIR/key.pem" >/dev/null 2>/tmp/bench-tern-tls.err &
        PID=$! PORT=$TERN_PORT ;;
    nginx)
        taskset -c 0 nginx -e /tmp/anchor-nginx-tls.err -c "$ANCHORS/nginx-tls.conf" &
        PID=$! PORT=$NGINX_PORT ;;
    esac
    for _ in $(seq 50); do
        curl -s --cacert "$DIR/cert.pem" "https://localhost:$PORT/" >/dev/null && break
        sleep 0.1
    done
    # nginx: measure the worker, not the master
    local child
    child=$(pgrep -P "$PID" | head -1)
    SPID=${child:-$PID}
}
stop() { kill "$PID" 2>/dev/null; wait "$PID" 2>/dev/null; sleep 0.3; }
cpu_ticks() { awk '{print $14+$15}' "/proc/$1/stat"; }
rss_kb() { awk '/VmRSS/{print $2}' "/proc/$1/status"; }

handshakes() { # mode (-new|-reuse) -> connections/s
    taskset -c 1 openssl s_time -connect "127.0.0.1:$PORT" "$1" -time "$secs" 2>/dev/null |
        awk '/connections in [0-9.]+ real seconds/ {for (i=1;i<=NF;i++) if ($i=="connections") {print $(i-1)/$(i+2); exit}}'
}

keepalive() { # -> "req/s cpu_us_per_req"
    local t0 t1 out rps
    taskset -c 1 wrk -t1 -c256 -d1s "https://127.0.0.1:$PORT/" >/dev/null 2>&1 # warm-up
    t0=$(cpu_ticks "$SPID")
    out=$(taskset -c 1 wrk -t1 -c256 -d"$DURATION" "https://127.0.0.1:$PORT/" 2>&1)
    t1=$(cpu_ticks "$SPID")
    rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
    local reqs
    reqs=$(echo "$out" | awk '/requests in/ {print $1}')
    echo "$rps $(awk -v a="$t0" -v b="$t1" -v n="$reqs" -v hz="$(getconf CLK_TCK)" \
        'BEGIN {printf "%.2f", (b-a)/hz*1e6/n}')"
}

idle_rss() { # -> bytes per idle connection
    python3 - "$PORT" "$SPID" "$IDLE_TLS_CONNS" "$DIR/cert.pem" <<'EOF'
import socket, ssl, sys, time
port, pid, n, ca = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
def rss():
    for l in open("/proc/%d/status" % pid):
        if l.startswith("VmRSS:"):
            return int(l.split()[1]) * 1024
ctx = ssl.create_default_context(cafile=ca)
time.sleep(0.5)
before = rss()
conns = []
for i in range(n):
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost")
    s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
    got = b""
    while b"Hello, World!" not in got:
        got += s.recv(4096)
    conns.append(s)
time.sleep(1.0)
after = rss()
print("%.0f" % ((after - before) / n))
for s in conns:
    s.close()
EOF
}

echo "# TLS ($KEY), $(openssl version), ${DURATION} runs, $ROUNDS round(s)"
printf "%-6s %5s %12s %12s %12s %10s %14s\n" server round full_hs/s resumed_hs/s https_req/s cpu_us/req rss_B/idle_conn
for r in $(seq "$ROUNDS"); do
    order="tern nginx"
    [ $((r % 2)) -eq 0 ] && order="nginx tern"
    for s in $order; do
        start "$s"
        full=$(handshakes -new)
        resumed=$(handshakes -reuse)
        read -r rps cpu < <(keepalive)
        idle=$(idle_rss)
        printf "%-6s %5s %12s %12s %12s %10s %14s\n" "$s" "$r" "$full" "$resumed" "$rps" "$cpu" "$idle"
        stop
    done
done
