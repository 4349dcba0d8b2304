"""A handler that overflows its coroutine stack (a 300 KiB local array on a
256 KiB stack) kills the server with SIGSEGV and a message naming the route,
instead of corrupting a neighbouring stack silently. Drives
tests/integration/overflow_server.c (tern-test-overflow-server), not the demo.
Under ASan the sanitizer's own stack-overflow/SEGV report is accepted.

    python3 tests/integration/test_stack_overflow.py --binary build/tern-test-overflow-server
"""
import argparse
import signal
import socket
import subprocess
import sys


def get(port, path):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
        return data


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    args = ap.parse_args()
    proc = subprocess.Popen([args.binary], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    line = proc.stdout.readline().decode()
    if "listening on" not in line:
        proc.kill()
        print("FAIL: no listening line: %r %r" % (line, proc.stderr.read()))
        return 1
    port = int(line.split()[-1])
    failures = []
    ok = get(port, "/ok")
    if not ok.startswith(b"HTTP/1.1 200") or not ok.endswith(b"ok"):
        failures.append("GET /ok: %r" % ok[:200])
    reply = get(port, "/users/7/overflow")
    try:
        rc = proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
        rc = proc.wait()
        failures.append("server still running after the overflow")
    err = proc.stderr.read().decode(errors="replace")
    if reply:
        failures.append("the overflowing request got an answer: %r" % reply[:200])
    asan = "AddressSanitizer" in err
    if asan:
        if rc == 0 or ("stack-overflow" not in err and "SEGV" not in err):
            failures.append("ASan build: rc %s, no stack-overflow/SEGV report:\n%s" % (rc, err[-2000:]))
    else:
        if rc != -signal.SIGSEGV:
            failures.append("exit status %s, want -SIGSEGV" % rc)
        want = ("tern: stack overflow in the handler of GET /users/:id/overflow (stack 256 KiB): "
                "raise tern_config.stack_size or move large buffers to the heap")
        if want not in err:
            failures.append("no overflow report naming the route in stderr:\n%s" % err[-2000:])
    for f in failures:
        print("FAIL:", f)
    print("test_stack_overflow: %s" % ("FAILED" if failures else "ok"))
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
