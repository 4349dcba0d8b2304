#!/bin/sh
# The installed package works the two ways an application finds it:
# installs BUILD into a temporary prefix, then builds examples/hello.c and
# tests/check/install_smoke.c with pkg-config (PKG_CONFIG_PATH only) and with
# a small CMake project (find_package(tern), tern::tern and
# tern::tern_static), checks the installed files name no build-tree path and
# no sanitizer flag, and runs every binary: hello must start (or fail only
# because port 8080 is taken), install_smoke must answer a request.
#
# Usage: install.sh --build DIR --source DIR --cc CC [--flags "FLAGS"]
#
# FLAGS: the sanitizer flags the library in BUILD was compiled with. The
# package itself never carries them (an application picks its own), but a
# libtern built with -fsanitize=address,undefined (make test's build) needs
# the sanitizer runtime in the program that links it; so the applications
# here are compiled and linked with the same flags. This tests the very
# package the build produced, without a second build of the library.
set -eu

build= source= cc=cc flags=
while [ $# -gt 0 ]; do
  case $1 in
    --build) build=$2; shift 2 ;;
    --source) source=$2; shift 2 ;;
    --cc) cc=$2; shift 2 ;;
    --flags) flags=$2; shift 2 ;;
    *) echo "install.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
[ -n "$build" ] && [ -n "$source" ] || { echo "usage: install.sh --build DIR --source DIR --cc CC [--flags F]" >&2; exit 2; }
build=$(cd "$build" && pwd) source=$(cd "$source" && pwd)

tmp=$(mktemp -d "${TMPDIR:-/tmp}/tern-install-XXXXXX")
pids=
cleanup() {
  for p in $pids; do kill "$p" 2>/dev/null || true; done
  rm -rf "$tmp"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
prefix=$tmp/prefix

echo "== cmake --install $build --prefix $prefix"
cmake --install "$build" --prefix "$prefix" >"$tmp/install.log" || { cat "$tmp/install.log"; fail "install"; }

echo "== the installed package names no build-tree path and no sanitizer flag"
pc=$(find "$prefix" -name tern.pc)
cfg=$(find "$prefix" -name ternConfig.cmake)
[ -n "$pc" ] || fail "no tern.pc installed"
[ -n "$cfg" ] || fail "no ternConfig.cmake installed"
for f in $pc "$(dirname "$cfg")"/*.cmake; do
  if grep -n -e "$build" -e "$source" -e "$tmp" -e "fsanitize" "$f"; then
    fail "$f names the build tree, the prefix or a sanitizer flag (lines above)"
  fi
done

# Run: for a shared library the loader must find the installed libtern
# (LD_LIBRARY_PATH: pkg-config's line sets no rpath, as for any -L/-l
# library); ldd shows it is the prefix's copy, not some other install.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1}"
libdir=$(dirname "$(dirname "$pc")")
run_env() { LD_LIBRARY_PATH=$libdir "$@"; }
check_libtern_from_prefix() {
  if run_env ldd "$1" | grep -q 'libtern\.so'; then
    run_env ldd "$1" | grep 'libtern\.so' | grep -q "$prefix" ||
      fail "$1 loads libtern from outside $prefix: $(run_env ldd "$1" | grep libtern)"
  fi
}

# hello.c listens on 8080: running 1 s, or exiting 1 (tern_server_run failed
# to bind: a race with another program), both prove the program was loaded
# and tern ran; a loader error (127), a signal
# or a sanitizer report fails.
# Every tern server binds with SO_REUSEPORT: if a server of this user already
# listens on 8080 (someone's `make run`), hello would share its port and take
# some of its connections, so then hello is only built and resolved, not run.
port_8080_listening() {
  # /proc/net/tcp*: local address ...:1F90 (8080) in state 0A (LISTEN)
  cat /proc/net/tcp /proc/net/tcp6 2>/dev/null | awk '$2 ~ /:1F90$/ && $4 == "0A" { f = 1 } END { exit !f }'
}
run_hello() {
  bin=$1
  check_libtern_from_prefix "$bin"
  if port_8080_listening; then
    echo "   $bin: built; not run (port 8080 is in use)"
    return 0
  fi
  LD_LIBRARY_PATH=$libdir "$bin" >"$tmp/out" 2>"$tmp/err" &
  pid=$!; pids="$pids $pid"
  sleep 1
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    code=0; wait "$pid" || code=$?
    [ "$code" -eq 0 ] || { cat "$tmp/err" >&2; fail "$bin: exit $code after SIGTERM"; }
  else
    code=0; wait "$pid" || code=$?
    [ "$code" -eq 1 ] || { cat "$tmp/err" >&2; fail "$bin: exit $code"; }
  fi
  if grep -q -e "Sanitizer" -e "runtime error" "$tmp/err"; then
    cat "$tmp/err" >&2; fail "$bin: sanitizer report"
  fi
  echo "   $bin: ran (exit $code)"
}

# install_smoke listens on a free port it prints; a GET / must answer.
run_smoke() {
  bin=$1
  check_libtern_from_prefix "$bin"
  rm -f "$tmp/out"
  LD_LIBRARY_PATH=$libdir "$bin" >"$tmp/out" 2>"$tmp/err" &
  pid=$!; pids="$pids $pid"
  port=
  i=0
  while [ $i -lt 100 ] && [ -z "$port" ]; do
    port=$(sed -n 's/^port \([0-9][0-9]*\)$/\1/p' "$tmp/out" 2>/dev/null || true)
    kill -0 "$pid" 2>/dev/null || break
    [ -n "$port" ] || sleep 0.1
    i=$((i + 1))
  done
  [ -n "$port" ] || { cat "$tmp/err" >&2; fail "$bin printed no port"; }
  body=$(curl -sS --max-time 10 "http://127.0.0.1:$port/") || fail "$bin: curl"
  [ "$body" = "Hello from an installed tern" ] || fail "$bin answered '$body'"
  kill -TERM "$pid"
  code=0; wait "$pid" || code=$?
  [ "$code" -eq 0 ] || { cat "$tmp/err" >&2; fail "$bin: exit $code after SIGTERM"; }
  if grep -q -e "Sanitizer" -e "runtime error" "$tmp/err"; then
    cat "$tmp/err" >&2; fail "$bin: sanitizer report"
  fi
  echo "   $bin: served GET / on port $port, exit 0"
}

echo "== pkg-config (PKG_CONFIG_PATH=$(dirname "$pc"))"
pkg() { PKG_CONFIG_PATH=$(dirname "$pc") pkg-config "$@" tern; }
echo "   cflags: $(pkg --cflags)   libs: $(pkg --libs)"
[ "$(pkg --variable=prefix)" -ef "$prefix" ] || fail "tern.pc's prefix $(pkg --variable=prefix) is not $prefix"
# shellcheck disable=SC2046,SC2086  # word splitting of the flags is meant
$cc $flags -o "$tmp/hello-pc" "$source/examples/hello.c" $(pkg --cflags --libs) ||
  fail "hello.c with pkg-config"
# shellcheck disable=SC2046,SC2086
$cc $flags -o "$tmp/smoke-pc" "$source/tests/check/install_smoke.c" $(pkg --cflags --libs) ||
  fail "install_smoke.c with pkg-config"
run_hello "$tmp/hello-pc"
run_smoke "$tmp/smoke-pc"

echo "== CMake: find_package(tern) with CMAKE_PREFIX_PATH=$prefix"
mkdir "$tmp/app"
cat >"$tmp/app/CMakeLists.txt" <<CMAKE
cmake_minimum_required(VERSION 3.18)
project(tern_app C)
find_package(tern 0.1 REQUIRED)
add_executable(hello "$source/examples/hello.c")
target_link_libraries(hello PRIVATE tern::tern)
add_executable(hello_static "$source/examples/hello.c")
target_link_libraries(hello_static PRIVATE tern::tern_static)
add_executable(smoke "$source/tests/check/install_smoke.c")
target_link_libraries(smoke PRIVATE tern::tern)
add_executable(smoke_static "$source/tests/check/install_smoke.c")
target_link_libraries(smoke_static PRIVATE tern::tern_static)
CMAKE
cmake -S "$tmp/app" -B "$tmp/app/build" -DCMAKE_PREFIX_PATH="$prefix" -DCMAKE_C_COMPILER="$cc" \
  -DCMAKE_C_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" >"$tmp/app.log" 2>&1 ||
  { cat "$tmp/app.log"; fail "configure the find_package project"; }
cmake --build "$tmp/app/build" >>"$tmp/app.log" 2>&1 || { cat "$tmp/app.log"; fail "build the find_package project"; }
ldd "$tmp/app/build/smoke_static" | grep -q libtern && fail "smoke_static links libtern.so, not libtern.a"
for b in hello hello_static; do run_hello "$tmp/app/build/$b"; done
for b in smoke smoke_static; do run_smoke "$tmp/app/build/$b"; done
echo "install: OK"
