#!/bin/sh
# Installs what building and testing tern needs on a fresh Debian machine,
# only when missing. Usage: scripts/deps.sh [build|test|bench]
set -e
what=${1:-build}
need=""
have() { command -v "$1" >/dev/null 2>&1; }
pkg_missing() { ! dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed"; }
have cmake || need="$need cmake"
have cc || need="$need gcc"
have make || need="$need make"
pkg_missing libsqlite3-dev && need="$need libsqlite3-dev"
pkg_missing libssl-dev && need="$need libssl-dev"
if [ "$what" = test ] || [ "$what" = bench ]; then
  have clang || need="$need clang"
  pkg_missing libclang-rt-14-dev && need="$need libclang-rt-14-dev"
  have python3 || need="$need python3"
  have curl || need="$need curl"
  have pkg-config || need="$need pkg-config"
  pkg_missing libhttp-parser-dev && need="$need libhttp-parser-dev"
  have openssl || need="$need openssl"
fi
if [ "$what" = test ]; then
  have promtool || need="$need prometheus"
  # test_service: socket activation (systemd-socket-activate, no init needed)
  have systemd-socket-activate || need="$need systemd"
  # test_proxy: HAProxy (send-proxy-v2) and nginx (stream proxy_protocol, XFF) in front
  have haproxy || need="$need haproxy"
  have nginx || need="$need nginx-light"
  [ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need="$need libnginx-mod-stream"
fi
if [ "$what" = bench ]; then
  have wrk || need="$need wrk"
  have nginx || need="$need nginx-light"
fi
if [ -n "$need" ]; then
  echo "tern: installing$need" >&2
  SUDO=""
  [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq >/dev/null 2>&1 || true
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends $need >/dev/null
fi
