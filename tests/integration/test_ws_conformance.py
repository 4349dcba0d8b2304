"""WebSocket conformance in the style of the Autobahn test suite, over raw sockets (no
library between the test and the wire): the opening handshake (RFC 6455 §4), framing
(§5.2), masking (§5.1, §5.3), fragmentation and interleaved control frames (§5.4),
ping/pong (§5.5.2-3), reserved bits and opcodes (§5.2), UTF-8 of text (§8.1, close
1007), close codes and the closing handshake (§5.5.1, §7.4), size limits (1009), the
idle keep-alive ping, and the handler ending when the client goes away. Each test names
its section; the Autobahn case numbers are given where one matches."""
import base64
import hashlib
import json
import os
import socket
import struct
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness  # noqa: E402
from harness import check, check_eq  # noqa: E402

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONT, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


# Every test runs twice: against the sequential handlers (/ws, /chat: a coroutine parked
# in tern_ws_recv) and against the same endpoints in callback mode (tern_ws_on_message:
# no coroutine while idle). MODE maps a path to its callback-mode twin.
MODE = {}
CALLBACK_MODE = {"/ws": "/ws/callback", "/chat": "/chat?stackless=1"}


class WS:
    def __init__(self, port, path="/ws", headers=None, timeout=5.0):
        path = MODE.get(path, path)
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        key = base64.b64encode(os.urandom(16))
        h = {"Host": "localhost", "Upgrade": "websocket", "Connection": "Upgrade",
             "Sec-WebSocket-Key": key.decode(), "Sec-WebSocket-Version": "13"}
        h.update(headers or {})
        req = "GET %s HTTP/1.1\r\n" % path + "".join(
            "%s: %s\r\n" % (k, v) for k, v in h.items() if v is not None) + "\r\n"
        self.sock.sendall(req.encode())
        head = self._read_until(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status = int(lines[0].split()[1])
        self.headers = {}
        for line in lines[1:]:
            if ":" in line:
                k, v = line.split(":", 1)
                self.headers[k.strip().lower()] = v.strip()
        if self.status == 101:
            want = base64.b64encode(hashlib.sha1(key + GUID).digest()).decode()
            check_eq(self.headers.get("sec-websocket-accept"), want, "Sec-WebSocket-Accept (§4.2.2)")

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError
        self.buf += d

    def _read_until(self, delim):
        while delim not in self.buf:
            self._fill()
        i = self.buf.index(delim) + len(delim)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def _read_exact(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_raw(self, data):
        self.sock.sendall(data)

    @staticmethod
    def frame(op, payload=b"", fin=True, rsv=0, mask=True, length=None):
        n = len(payload) if length is None else length
        b0 = (0x80 if fin else 0) | (rsv << 4) | op
        m = 0x80 if mask else 0
        if n < 126:
            head = struct.pack("!BB", b0, m | n)
        elif n < 65536:
            head = struct.pack("!BBH", b0, m | 126, n)
        else:
            head = struct.pack("!BBQ", b0, m | 127, n)
        if not mask:
            return head + payload
        key = os.urandom(4)
        return head + key + bytes(c ^ key[i & 3] for i, c in enumerate(payload))

    def send(self, op, payload=b"", **kw):
        self.send_raw(self.frame(op, payload, **kw))

    def recv(self):
        """(fin, rsv, opcode, payload); EOFError when the server closed TCP."""
        b0, b1 = self._read_exact(2)
        check(not (b1 & 0x80), "server frames are not masked (§5.1)")
        n = b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._read_exact(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._read_exact(8))[0]
        return b0 >> 7, (b0 >> 4) & 7, b0 & 15, self._read_exact(n)

    def recv_data(self):
        fin, rsv, op, payload = self.recv()
        while op == OP_PING:
            fin, rsv, op, payload = self.recv()
        return op, payload

    def expect_close(self, code, what):
        """Reads to the server's close frame (data on the way is skipped), checks its
        code, and that the server then closes the TCP connection (§7.1.1)."""
        while True:
            try:
                fin, rsv, op, payload = self.recv()
            except EOFError:
                raise AssertionError("%s: connection closed without a close frame" % what)
            if op == OP_CLOSE:
                break
        got = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
        check_eq(got, code, what + ": close code")
        self.wait_eof(what)
        return payload[2:]

    def wait_eof(self, what):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            try:
                self._fill()
            except EOFError:
                return
            except (ConnectionResetError, socket.timeout):
                return
        raise AssertionError("%s: the server kept the TCP connection open" % what)

    def close(self):
        self.sock.close()


def echo(ws, op, payload):
    ws.send(op, payload)
    got = ws.recv_data()
    check_eq(got, (op, payload), "echo of %d bytes" % len(payload))


# ---- §4 opening handshake ---------------------------------------------------------------

def test_4_2_1_handshake_accept_key(srv):
    ws = WS(srv.port)
    check_eq(ws.status, 101, "status")
    check_eq(ws.headers.get("upgrade", "").lower(), "websocket", "Upgrade")
    check_eq(ws.headers.get("connection", "").lower(), "upgrade", "Connection")
    ws.close()


def test_4_2_1_missing_key_is_400(srv):
    ws = WS(srv.port, headers={"Sec-WebSocket-Key": None})
    check_eq(ws.status, 400, "no Sec-WebSocket-Key")
    ws.close()
    ws = WS(srv.port, headers={"Sec-WebSocket-Key": "c2hvcnQ="})
    check_eq(ws.status, 400, "a key that is not 16 bytes")
    ws.close()
    ws = WS(srv.port, headers={"Upgrade": "h2c"})
    check_eq(ws.status, 400, "Upgrade is not websocket")
    ws.close()


def test_4_4_unsupported_version_is_426(srv):
    ws = WS(srv.port, headers={"Sec-WebSocket-Version": "8"})
    check_eq(ws.status, 426, "version 8")
    check_eq(ws.headers.get("sec-websocket-version"), "13", "versions we speak (§4.4)")
    ws.close()


def test_4_2_2_connection_header_lists_upgrade(srv):
    ws = WS(srv.port, headers={"Connection": "keep-alive, Upgrade"})
    check_eq(ws.status, 101, "Connection: keep-alive, Upgrade")
    echo(ws, OP_TEXT, b"ok")
    ws.close()


def test_4_2_2_subprotocol_negotiation(srv):
    ws = WS(srv.port, headers={"Sec-WebSocket-Protocol": "chat, echo"})
    check_eq(ws.headers.get("sec-websocket-protocol"), "echo", "the one we speak is chosen")
    ws.close()
    ws = WS(srv.port, headers={"Sec-WebSocket-Protocol": "chat"})
    check_eq(ws.status, 101, "no common subprotocol still upgrades")
    check("sec-websocket-protocol" not in ws.headers, "no Sec-WebSocket-Protocol when none matches")
    ws.close()


# ---- §5.2 framing (Autobahn 1.x) --------------------------------------------------------

def test_5_2_payload_lengths_text_and_binary(srv):
    ws = WS(srv.port)
    for n in (0, 125, 126, 127, 128, 65535, 65536, 1 << 20):
        echo(ws, OP_TEXT, b"*" * n)
        echo(ws, OP_BINARY, bytes(i & 0xFF for i in range(n)))
    ws.close()


def test_5_2_frame_split_across_writes(srv):
    ws = WS(srv.port)
    data = ws.frame(OP_BINARY, b"0123456789" * 300)
    for i in range(0, len(data), 7):
        ws.send_raw(data[i:i + 7])
        time.sleep(0.0005)
    check_eq(ws.recv_data(), (OP_BINARY, b"0123456789" * 300), "frame sent 7 bytes at a time")
    # several frames in one write (Autobahn 1.1.8-style batching)
    ws.send_raw(b"".join(ws.frame(OP_TEXT, b"m%d" % i) for i in range(50)))
    for i in range(50):
        check_eq(ws.recv_data(), (OP_TEXT, b"m%d" % i), "batched frame %d" % i)
    ws.close()


def test_5_1_unmasked_client_frame_is_1002(srv):
    ws = WS(srv.port)
    ws.send(OP_TEXT, b"no mask", mask=False)
    ws.expect_close(1002, "unmasked frame")


def test_5_2_64bit_length_top_bit_is_1002(srv):
    ws = WS(srv.port)
    ws.send_raw(bytes([0x82, 0xFF, 0x80, 0, 0, 0, 0, 0, 0, 1]) + b"\0\0\0\0")
    ws.expect_close(1002, "64-bit length with the most significant bit set")


# ---- §5.2 reserved bits and opcodes (Autobahn 3.x, 4.x) ---------------------------------

def test_5_2_reserved_bits_are_1002(srv):
    for rsv in range(1, 8):
        ws = WS(srv.port)
        echo(ws, OP_TEXT, b"before")
        ws.send(OP_TEXT, b"rsv", rsv=rsv)
        ws.expect_close(1002, "RSV bits %d without an extension" % rsv)
    ws = WS(srv.port)
    ws.send(OP_PING, b"", rsv=4)
    ws.expect_close(1002, "RSV1 on a ping (Autobahn 3.6)")


def test_5_2_reserved_opcodes_are_1002(srv):
    for op in (3, 4, 5, 6, 7, 11, 12, 13, 14, 15):
        ws = WS(srv.port)
        ws.send(op, b"reserved")
        ws.expect_close(1002, "opcode %d" % op)


# ---- §5.4 fragmentation (Autobahn 5.x) --------------------------------------------------

def test_5_4_fragmented_text_reassembled(srv):
    ws = WS(srv.port)
    ws.send(OP_TEXT, b"fragment1 ", fin=False)
    ws.send(OP_CONT, b"fragment2 ", fin=False)
    ws.send(OP_CONT, b"fragment3", fin=True)
    check_eq(ws.recv_data(), (OP_TEXT, b"fragment1 fragment2 fragment3"), "reassembled")
    ws.send(OP_BINARY, b"\x00\x01", fin=False)
    ws.send(OP_CONT, b"", fin=False)
    ws.send(OP_CONT, b"\x02", fin=True)
    check_eq(ws.recv_data(), (OP_BINARY, b"\x00\x01\x02"), "binary with an empty fragment")
    ws.close()


def test_5_4_ping_between_fragments_is_answered(srv):
    ws = WS(srv.port)
    ws.send(OP_TEXT, b"frag", fin=False)
    ws.send(OP_PING, b"in the middle")
    fin, rsv, op, payload = ws.recv()
    check_eq((op, payload), (OP_PONG, b"in the middle"), "pong while a message is open (Autobahn 5.6)")
    ws.send(OP_CONT, b"ment", fin=True)
    check_eq(ws.recv_data(), (OP_TEXT, b"fragment"), "message after the interleaved ping")
    ws.close()


def test_5_4_continuation_without_start_is_1002(srv):
    ws = WS(srv.port)
    ws.send(OP_CONT, b"orphan", fin=True)
    ws.expect_close(1002, "continuation with nothing to continue (Autobahn 5.9)")


def test_5_4_new_message_inside_fragmented_is_1002(srv):
    ws = WS(srv.port)
    ws.send(OP_TEXT, b"one", fin=False)
    ws.send(OP_TEXT, b"two", fin=True)
    ws.expect_close(1002, "a text frame where a continuation was due")


def test_5_5_fragmented_ping_is_1002(srv):
    ws = WS(srv.port)
    ws.send(OP_PING, b"frag", fin=False)
    ws.expect_close(1002, "fragmented ping (Autobahn 5.1)")


# ---- §5.5.2-3 ping and pong (Autobahn 2.x) ----------------------------------------------

def test_5_5_2_ping_gets_pong_with_payload(srv):
    ws = WS(srv.port)
    for payload in (b"", b"hello", bytes(range(125))):
        ws.send(OP_PING, payload)
        fin, rsv, op, got = ws.recv()
        check_eq((fin, op, got), (1, OP_PONG, payload), "pong for a %d-byte ping" % len(payload))
    ws.close()


def test_5_5_control_frame_over_125_is_1002(srv):
    ws = WS(srv.port)
    ws.send(OP_PING, b"x" * 126)
    ws.expect_close(1002, "ping with 126 bytes (Autobahn 2.5)")


def test_5_5_3_unsolicited_pong_is_ignored(srv):
    ws = WS(srv.port)
    ws.send(OP_PONG, b"unasked")
    echo(ws, OP_TEXT, b"still open")
    ws.close()


def test_5_5_2_idle_ping_keepalive(srv):
    ws = WS(srv.port, path="/ws?ping_ms=100")
    fin, rsv, op, payload = ws.recv()
    check_eq(op, OP_PING, "the server pings an idle client")
    ws.send(OP_PONG, payload)
    fin, rsv, op, payload = ws.recv()
    check_eq(op, OP_PING, "and again after the next idle interval")
    # no pong this time: the server gives up after pong_timeout and closes
    t0 = time.monotonic()
    ws.wait_eof("no pong")
    check(time.monotonic() - t0 < 3, "dropped within the pong timeout")


# ---- §8.1 UTF-8 (Autobahn 6.x) ----------------------------------------------------------

def test_8_1_valid_utf8_text(srv):
    ws = WS(srv.port)
    for s in ("κόσμε", "\U0001F600 emoji", "\uFFFF", "\U0010FFFF", "ASCII"):
        echo(ws, OP_TEXT, s.encode())
    # a character split across fragments (Autobahn 6.2.3)
    b = "κόσμε".encode()
    ws.send(OP_TEXT, b[:3], fin=False)
    ws.send(OP_CONT, b[3:], fin=True)
    check_eq(ws.recv_data(), (OP_TEXT, b), "character across fragments")
    ws.close()


def test_8_1_invalid_utf8_is_1007(srv):
    for bad in (b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80\x65\x64\x69\x74\x65\x64",
                b"\xc0\xaf", b"\xf4\x90\x80\x80", b"\x80", b"\xfe", b"\xce\xba\xe1"):
        ws = WS(srv.port)
        ws.send(OP_TEXT, bad)
        ws.expect_close(1007, "invalid UTF-8 %r" % bad)


def test_8_1_invalid_utf8_fails_fast_across_fragments(srv):
    ws = WS(srv.port)
    ws.send(OP_TEXT, b"ok so far \xed\xa0", fin=False)
    ws.send(OP_CONT, b"\x80", fin=False)
    # the surrogate is complete: the close comes without the final fragment
    ws.expect_close(1007, "surrogate split across fragments (Autobahn 6.4.x fail fast)")


# ---- §5.5.1 / §7 close (Autobahn 7.x) ---------------------------------------------------

def test_7_close_1000_is_echoed(srv):
    ws = WS(srv.port)
    ws.send(OP_CLOSE, struct.pack("!H", 1000) + b"bye")
    ws.expect_close(1000, "normal close")


def test_7_close_without_code_gets_empty_close(srv):
    ws = WS(srv.port)
    ws.send(OP_CLOSE, b"")
    fin, rsv, op, payload = ws.recv()
    check_eq((op, payload), (OP_CLOSE, b""), "empty close answered with an empty close (Autobahn 7.3.1)")
    ws.wait_eof("after the empty close")


def test_7_close_one_byte_payload_is_1002(srv):
    ws = WS(srv.port)
    ws.send(OP_CLOSE, b"\x03")
    ws.expect_close(1002, "close with one byte (Autobahn 7.3.2)")


def test_7_4_invalid_close_codes_are_1002(srv):
    for code in (0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535):
        ws = WS(srv.port)
        ws.send(OP_CLOSE, struct.pack("!H", code))
        ws.expect_close(1002, "close code %d (Autobahn 7.9.x)" % code)


def test_7_4_valid_close_codes_are_echoed(srv):
    for code in (1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999):
        ws = WS(srv.port)
        ws.send(OP_CLOSE, struct.pack("!H", code))
        ws.expect_close(code, "close code %d (Autobahn 7.7.x)" % code)


def test_7_close_reason_invalid_utf8_is_1007(srv):
    ws = WS(srv.port)
    ws.send(OP_CLOSE, struct.pack("!H", 1000) + b"\xff\xfe")
    ws.expect_close(1007, "close reason that is not UTF-8 (Autobahn 7.5.1)")


def test_7_data_after_close_is_ignored(srv):
    ws = WS(srv.port)
    ws.send_raw(ws.frame(OP_CLOSE, struct.pack("!H", 1000)) + ws.frame(OP_TEXT, b"late") +
                ws.frame(OP_PING, b"late"))
    ws.expect_close(1000, "close followed by data (Autobahn 7.1.x)")


# ---- size limits (1009) -----------------------------------------------------------------

def test_7_4_1_oversize_frame_is_1009(srv):
    ws = WS(srv.port, path="/chat")  # /chat takes messages up to 64 KiB
    ws.send_raw(ws.frame(OP_TEXT, b"", length=100000)[:14])  # the header alone says it
    ws.expect_close(1009, "frame over max_message, refused on its header")


def test_7_4_1_oversize_fragmented_message_is_1009(srv):
    ws = WS(srv.port, path="/chat")
    chunk = b"a" * 30000
    ws.send(OP_TEXT, chunk, fin=False)
    ws.send(OP_CONT, chunk, fin=False)
    ws.send(OP_CONT, chunk, fin=True)
    ws.expect_close(1009, "fragments summing over max_message")


# ---- RFC 7692 permessage-deflate (Autobahn 12.x, 13.x) -----------------------------------

DEFLATE = {"Sec-WebSocket-Extensions": "permessage-deflate; client_max_window_bits"}


def inflate(payload):
    import zlib
    d = zlib.decompressobj(-15)
    return d.decompress(payload + b"\x00\x00\xff\xff")


def test_rfc7692_5_negotiation(srv):
    ws = WS(srv.port, headers=DEFLATE)
    check_eq(ws.headers.get("sec-websocket-extensions"), "permessage-deflate", "accepted as offered")
    ws.close()
    ws = WS(srv.port, headers={"Sec-WebSocket-Extensions":
                               "permessage-deflate; server_max_window_bits=8, permessage-deflate; "
                               "server_no_context_takeover; server_max_window_bits=10"})
    check_eq(ws.headers.get("sec-websocket-extensions"),
             "permessage-deflate; server_no_context_takeover; server_max_window_bits=10",
             "the first acceptable offer (zlib has no raw 8-bit window: §7.1.2.1)")
    ws.close()
    ws = WS(srv.port, headers={"Sec-WebSocket-Extensions": "permessage-deflate; bogus=1, x-webkit-deflate-frame"})
    check("sec-websocket-extensions" not in ws.headers, "no acceptable offer: no extension")
    ws.send(OP_TEXT, b"x", rsv=4)
    ws.expect_close(1002, "RSV1 without the extension")


def test_rfc7692_7_2_3_1_compressed_hello(srv):
    ws = WS(srv.port, headers=DEFLATE)
    ws.send(OP_TEXT, bytes([0xf2, 0x48, 0xcd, 0xc9, 0xc9, 0x07, 0x00]), rsv=4)  # "Hello" (§7.2.3.1)
    check_eq(ws.recv_data(), (OP_TEXT, b"Hello"), "short answer goes uncompressed")
    # the same, fragmented: RSV1 on the first frame only (§7.2.3.1's second example)
    ws.send(OP_TEXT, bytes([0xf2, 0x48, 0xcd]), rsv=4, fin=False)
    ws.send(OP_CONT, bytes([0xc9, 0xc9, 0x07, 0x00]))
    check_eq(ws.recv_data(), (OP_TEXT, b"Hello"), "fragmented compressed message")
    big = b"tern " * 1000
    ws.send(OP_TEXT, big)
    fin, rsv, op, payload = ws.recv()
    check_eq((op, rsv), (OP_TEXT, 4), "a long answer is compressed (RSV1)")
    check_eq(inflate(payload), big, "it inflates to the message")
    check(len(payload) < len(big) // 10, "and is smaller: %d bytes" % len(payload))
    ws.close()


def test_rfc7692_6_1_rsv1_on_continuation_is_1002(srv):
    ws = WS(srv.port, headers=DEFLATE)
    ws.send(OP_TEXT, bytes([0xf2, 0x48]), rsv=4, fin=False)
    ws.send(OP_CONT, bytes([0xcd, 0xc9, 0xc9, 0x07, 0x00]), rsv=4)
    ws.expect_close(1002, "RSV1 on a continuation frame")
    ws = WS(srv.port, headers=DEFLATE)
    ws.send(OP_PING, b"", rsv=4)
    ws.expect_close(1002, "RSV1 on a control frame")


def test_rfc7692_corrupt_or_oversize_compressed(srv):
    ws = WS(srv.port, headers=DEFLATE)
    ws.send(OP_BINARY, b"\xff\xff\xff\xff", rsv=4)
    ws.expect_close(1007, "data that does not inflate")
    import zlib
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    bomb = c.compress(b"\0" * 200000) + c.flush(zlib.Z_SYNC_FLUSH)
    ws = WS(srv.port, path="/chat", headers=DEFLATE)  # 64 KiB limit, on the inflated size
    ws.send(OP_BINARY, bomb[:-4], rsv=4)
    ws.expect_close(1009, "200 KB inflated from %d bytes" % (len(bomb) - 4))
    c = zlib.compressobj(9, zlib.DEFLATED, -15)
    bad = c.compress(b"ok \xed\xa0\x80") + c.flush(zlib.Z_SYNC_FLUSH)
    ws = WS(srv.port, headers=DEFLATE)
    ws.send(OP_TEXT, bad[:-4], rsv=4)
    ws.expect_close(1007, "compressed text that is not UTF-8")


# ---- the connection's life --------------------------------------------------------------

def stats(srv):
    with harness.Conn(srv.port) as c:
        return json.loads(c.request("GET", "/stats").body)


def test_client_gone_ends_the_handler(srv):
    # sequential mode: 20 handlers parked in tern_ws_recv; callback mode: none
    base = stats(srv)
    conns = [WS(srv.port) for _ in range(20)]
    for ws in conns:
        echo(ws, OP_TEXT, b"hi")
    now = stats(srv)
    check(now["active_connections"] >= base["active_connections"] + 20, "20 connections open")
    if not MODE:
        check(now["in_flight"] >= base["in_flight"] + 20, "20 WebSocket handlers in flight")
    else:
        check(now["in_flight"] <= base["in_flight"] + 1, "callback mode: no handler in flight")
    for ws in conns:
        ws.sock.close()  # no close frame: the read sees end of stream
    # (each stats() is a connection of its own, whose close may still be on its way)
    def settled(now):
        return (now["in_flight"] <= base["in_flight"] + 1 and
                now["active_connections"] <= base["active_connections"] + 2)
    deadline = time.monotonic() + 5
    now = stats(srv)
    while time.monotonic() < deadline and not settled(now):
        time.sleep(0.05)
        now = stats(srv)
    check(settled(now), "handlers ended and connections closed after the clients left: %r vs %r" % (
        {k: now[k] for k in ("in_flight", "active_connections")},
        {k: base[k] for k in ("in_flight", "active_connections")}))


def test_chat_broadcast_across_workers(srv):
    # enough members that both workers own some (SO_REUSEPORT spreads them)
    members = [WS(srv.port, path="/chat") for _ in range(8)]
    time.sleep(0.2)
    for m in members:  # the join notices
        m.sock.settimeout(0.3)
        try:
            while True:
                m.recv()
        except (socket.timeout, EOFError):
            pass
        m.sock.settimeout(5)
    workers_seen = set()
    for i, sender in enumerate(members):
        text = b"hello %d" % i
        sender.send(OP_TEXT, text)
        for m in members:
            op, payload = m.recv_data()
            check_eq(op, OP_TEXT, "relayed as text")
            check(payload.endswith(b": " + text), "member got %r, want ...%r" % (payload, text))
            workers_seen.add(payload.split(b":")[0])
    check(len(workers_seen) >= 2, "members on both workers: %r" % workers_seen)
    for m in members:
        m.send(OP_CLOSE, struct.pack("!H", 1000))
        m.expect_close(1000, "chat close")


def _callback_variant(fn):
    def run(srv):
        MODE.update(CALLBACK_MODE)
        try:
            fn(srv)
        finally:
            MODE.clear()
    return run


# the idle ping is the sequential API's (tern_ws_opts.ping_interval_ms)
for _name, _fn in list(globals().items()):
    if _name.startswith("test_") and callable(_fn) and "idle_ping" not in _name:
        globals()[_name + "__callback_mode"] = _callback_variant(_fn)

if __name__ == "__main__":
    harness.main(globals())
