#!/bin/sh
# Cross-compiles the runtime's unit tests for aarch64 and runs them under
# qemu-user: the aarch64 context switch (src/rt/coro_aarch64.S) is exercised
# by the same tests as x86-64. Installs gcc-aarch64-linux-gnu and qemu-user
# when missing. Usage: scripts/test-aarch64.sh (or `make test-aarch64`).
set -eu
cd "$(dirname "$0")/.."
if ! command -v aarch64-linux-gnu-gcc >/dev/null || ! command -v qemu-aarch64 >/dev/null; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get install -y -qq gcc-aarch64-linux-gnu qemu-user >/dev/null
fi
out=build-aarch64
mkdir -p $out
CC=aarch64-linux-gnu-gcc
FLAGS="-std=gnu11 -O2 -g -static -D_GNU_SOURCE -Iinclude -Isrc -Itests/unit -Wall -Wextra"
RT="src/rt/sched.c src/rt/task.c src/rt/timer.c src/rt/sync.c src/rt/offload.c src/rt/coro_aarch64.S"
fail=0
for t in test_coro test_timer test_task test_sync; do
  case $t in
    test_coro) srcs="tests/unit/rt/$t.c src/rt/coro.c src/rt/coro_aarch64.S" ;;
    test_timer) srcs="tests/unit/rt/$t.c" ;;   # includes timer.c itself
    *) srcs="tests/unit/rt/$t.c $RT src/rt/coro.c" ;;
  esac
  $CC $FLAGS -o $out/$t $srcs -lpthread
  if TERN_TEST_EMULATED=1 qemu-aarch64 $out/$t >$out/$t.log 2>&1; then
    echo "aarch64 $t: ok ($(tail -1 $out/$t.log))"
  else
    echo "aarch64 $t: FAILED"; tail -20 $out/$t.log; fail=1
  fi
done
exit $fail
