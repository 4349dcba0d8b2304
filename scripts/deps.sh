#!/bin/sh
# Installs what building and testing tern needs on a fresh Debian machine,
# only when missing. Usage: scripts/deps.sh [build|test|bench|cluster]
set -e
what=${1:-build}
need=""
optional="" # large, and only one test needs it: a failed install makes that test skip
have() { command -v "$1" >/dev/null 2>&1; }
pkg_missing() { ! dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
have cmake || need="$need cmake"
have cc || need="$need gcc"
have make || need="$need make"
pkg_missing libsqlite3-dev && need="$need libsqlite3-dev"
pkg_missing libssl-dev && need="$need libssl-dev"
pkg_missing libpq-dev && need="$need libpq-dev"
pkg_missing zlib1g-dev && need="$need zlib1g-dev"
pkg_missing libbrotli-dev && need="$need libbrotli-dev"
if [ "$what" = test ] || [ "$what" = bench ]; then
  have clang || need="$need clang"
  pkg_missing libclang-rt-14-dev && need="$need libclang-rt-14-dev"
  have python3 || need="$need python3"
  have curl || need="$need curl"
  have pkg-config || need="$need pkg-config"
  pkg_missing libhttp-parser-dev && need="$need libhttp-parser-dev"
  have openssl || need="$need openssl"
fi
if [ "$what" = test ] || [ "$what" = bench ]; then
  # a throwaway PostgreSQL server for tests/integration/test_pg.py and bench/pg.sh
  pkg_missing postgresql && need="$need postgresql"
fi
if [ "$what" = test ]; then
  have promtool || need="$need prometheus"
  have testssl || need="$need testssl.sh"
  # WebSocket clients for the tests: Python's websockets (loads in /usr/bin/python3)
  pkg_missing python3-websockets && need="$need python3-websockets"
  # test_service: socket activation (systemd-socket-activate, no init needed)
  have systemd-socket-activate || need="$need systemd"
  # test_proxy: HAProxy (send-proxy-v2) and nginx (stream proxy_protocol, XFF) in front
  have haproxy || need="$need haproxy"
  have nginx || need="$need nginx-light"
  [ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need="$need libnginx-mod-stream"
  # test_dashboard: headless Chromium driven by playwright-core (npm, below)
  have chromium || optional="chromium"
  have node || need="$need nodejs"
  have npm || need="$need npm"
fi
if [ "$what" = cluster ]; then
  have python3 || need="$need python3"
  have wrk || need="$need wrk"
  have nginx || need="$need nginx-light"
  have haproxy || need="$need haproxy"
fi
if [ "$what" = bench ]; then
  have wrk || need="$need wrk"
  have nginx || need="$need nginx-light"
  # the JSON comparison (bench/json_bench.c)
  pkg_missing libjansson-dev && need="$need libjansson-dev"
  pkg_missing libcjson-dev && need="$need libcjson-dev"
fi
if [ -n "$need" ]; then
  echo "tern: installing$need" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
# Node's ws client for the WebSocket tests (and the bench's reference server), into
# .deps/node (git-ignored), only where npm exists
if { [ "$what" = test ] || [ "$what" = bench ]; } && have npm; then
  root=$(cd "$(dirname "$0")/.." && pwd)
  if [ ! -d "$root/.deps/node/node_modules/ws" ]; then
    mkdir -p "$root/.deps/node"
    npm install --no-save --no-audit --no-fund --silent --prefix "$root/.deps/node" ws >/dev/null
  fi
fi
if [ -n "$optional" ]; then
  echo "tern: installing $optional" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  [ -n "$need" ] || $SUDO apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $optional >/dev/null ||
    echo "tern: cannot install $optional: test_dashboard will skip" >&2
fi
if [ "$what" = test ]; then
  # playwright-core for test_dashboard, outside the repository (the test
  # looks in $TERN_NPM_DIR); Debian's chromium is the browser it drives
  npm_dir=${TERN_NPM_DIR:-$HOME/.cache/tern/npm}
  if [ ! -d "$npm_dir/node_modules/playwright-core" ]; then
    mkdir -p "$npm_dir"
    (cd "$npm_dir" && npm install --no-audit --no-fund --silent playwright-core@1.48.2 >/dev/null 2>&1) ||
      echo "tern: cannot install playwright-core: test_dashboard will skip" >&2
  fi
fi
