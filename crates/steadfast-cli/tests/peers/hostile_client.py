"""Hostile HTTP/2 clients, built on the frame and HPACK libraries of Python's h2 stack
(hyperframe, hpack), for testing that a server bounds the memory and time a slow or
malicious peer can take, and keeps serving a well-behaved client meanwhile.

Usage: hostile_client.py SCENARIO HOST PORT
Scenarios: stalled, hoard, slow_body, idle, slow_handshake, rapid_reset, hpack_bomb,
oversized_blocks.

Prints "ok NAME ..." or "FAIL NAME: why" lines, and "metric NAME VALUE" lines (for
example "metric good_client_worst_ms 3.2"), and exits 1 on any failure. While an
attack holds its resources, a well-behaved client on another connection sends GETs
(scenario "good_client"); the attack's connections are closed before it exits.
Every wait is a blocking read with a deadline: nothing sleeps for a fixed time.
"""
import socket
import sys
import time

from hpack import Encoder
from hyperframe.frame import (
    DataFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame, RstStreamFrame,
    SettingsFrame, WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
NO_ERROR, SETTINGS_TIMEOUT, CANCEL, ENHANCE_YOUR_CALM = 0x0, 0x4, 0x8, 0xb
MAX_CONCURRENT_STREAMS = 0x3
TIMEOUT = 10.0


class Closed(Exception):
    pass


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.buf = b""
        self.enc = Encoder()
        self.max_streams = None

    def send(self, *frames):
        self.sock.sendall(b"".join(f.serialize() for f in frames))

    def raw(self, data):
        self.sock.sendall(data)

    def handshake(self):
        self.raw(PREFACE)
        self.send(SettingsFrame(0))
        f = self.expect(lambda f: isinstance(f, SettingsFrame) and "ACK" not in f.flags, "SETTINGS")
        self.max_streams = f.settings.get(MAX_CONCURRENT_STREAMS)
        self.send(SettingsFrame(0, flags=["ACK"]))

    def recv(self, deadline=None):
        """The next frame; None at EOF; raises socket.timeout past `deadline`."""
        while True:
            if len(self.buf) >= 9:
                header, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) >= 9 + length:
                    header.parse_body(memoryview(self.buf[9:9 + length]))
                    self.buf = self.buf[9 + length:]
                    return header
            if deadline is not None:
                left = deadline - time.time()
                if left <= 0:
                    raise socket.timeout()
                self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                return None
            self.buf += chunk

    def expect(self, predicate, what, within=TIMEOUT, goaway_ok=False):
        deadline = time.time() + within
        while True:
            try:
                f = self.recv(deadline)
            except socket.timeout:
                raise AssertionError(f"no {what} within {within} s")
            if f is None:
                raise Closed(f"connection closed before {what}")
            if predicate(f):
                return f
            if isinstance(f, GoAwayFrame) and not goaway_ok:
                raise AssertionError(f"GOAWAY code={f.error_code} {f.additional_data!r} while waiting for {what}")

    def expect_eof(self, within=TIMEOUT):
        deadline = time.time() + within
        while True:
            try:
                if self.recv(deadline) is None:
                    return
            except socket.timeout:
                raise AssertionError(f"connection still open after {within} s")

    def headers(self, stream_id, method, path, end_stream):
        fields = [(":method", method), (":scheme", "http"), (":authority", "test"), (":path", path)]
        f = HeadersFrame(stream_id, self.enc.encode(fields))
        f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        return f

    def ping_roundtrip(self, payload=b"checkpnt"):
        """Every frame sent before this PING was read by the server."""
        self.send(PingFrame(0, opaque_data=payload))
        self.expect(lambda f: isinstance(f, PingFrame) and "ACK" in f.flags, "PING ACK")

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def good_client(host, port, requests=20):
    """A well-behaved client on its own connection: every GET / answered."""
    c = Conn(host, port)
    try:
        c.handshake()
        worst = 0.0
        for i in range(requests):
            sid = 1 + 2 * i
            start = time.time()
            c.send(c.headers(sid, "GET", "/", True))
            c.expect(lambda f: f.stream_id == sid and "END_STREAM" in f.flags, f"response {sid}")
            worst = max(worst, time.time() - start)
        print(f"ok good_client {requests} responses")
        print(f"metric good_client_worst_ms {worst * 1000:.1f}")
    finally:
        c.close()


def stalled(host, port):
    """100 streams GET /big.bin and never send WINDOW_UPDATE nor read."""
    c = Conn(host, port)
    c.handshake()
    n = min(100, c.max_streams or 100)
    c.send(*[c.headers(1 + 2 * i, "GET", "/big.bin", True) for i in range(n)])
    c.ping_roundtrip()
    print(f"metric streams {n}")
    good_client(host, port)
    # The server holds the streams, blocked on our window, until we go.
    c.close()
    print("ok stalled")


def hoard(host, port, connections=20):
    """Connections each open all the POST streams the server allows, bodies unended."""
    conns, total = [], 0
    for _ in range(connections):
        c = Conn(host, port)
        c.handshake()
        c.send(WindowUpdateFrame(0, window_increment=1 << 24))
        n = c.max_streams or 100
        frames = []
        for i in range(n):
            frames.append(c.headers(1 + 2 * i, "POST", "/echo", False))
            frames.append(DataFrame(1 + 2 * i, b"x" * 1024))
        c.send(*frames)
        conns.append(c)
        total += n
    for c in conns:
        # Echoed data arrives first; reading it is fine, the streams stay open.
        c.ping_roundtrip()
    print(f"metric streams {total}")
    print("metric holding 1")
    sys.stdout.flush()
    # Wait for the harness to measure (it writes a line on our stdin).
    sys.stdin.readline()
    good_client(host, port)
    for c in conns:
        c.close()
    print("ok hoard")


def slow_body(host, port):
    """A request body that stops after 1 KiB: reset with CANCEL, the connection lives."""
    c = Conn(host, port)
    c.handshake()
    c.send(c.headers(1, "POST", "/echo", False), DataFrame(1, b"x" * 1024))
    start = time.time()
    r = c.expect(lambda f: isinstance(f, RstStreamFrame) and f.stream_id == 1, "RST_STREAM(1)", within=20)
    print(f"metric reset_after_s {time.time() - start:.2f}")
    if r.error_code != CANCEL:
        raise AssertionError(f"RST_STREAM code {r.error_code}, expected CANCEL")
    c.ping_roundtrip()
    c.send(c.headers(3, "GET", "/", True))
    c.expect(lambda f: f.stream_id == 3 and "END_STREAM" in f.flags, "response on 3")
    c.close()
    print("ok slow_body")


def idle(host, port):
    """A handshaken connection that does nothing: GOAWAY(NO_ERROR, max_idle), then closed."""
    c = Conn(host, port)
    c.handshake()
    start = time.time()
    g = c.expect(lambda f: isinstance(f, GoAwayFrame), "GOAWAY", within=20, goaway_ok=True)
    print(f"metric goaway_after_s {time.time() - start:.2f}")
    if g.error_code != NO_ERROR or g.additional_data != b"max_idle":
        raise AssertionError(f"GOAWAY code={g.error_code} {g.additional_data!r}")
    # Answer the shutdown PING as a real client would: the final GOAWAY follows.
    p = c.expect(lambda f: isinstance(f, PingFrame) and "ACK" not in f.flags, "shutdown PING", goaway_ok=True)
    c.send(PingFrame(0, opaque_data=p.opaque_data, flags=["ACK"]))
    c.expect_eof()
    c.close()
    print("ok idle")


def slow_handshake(host, port):
    """Half the preface, then nothing: GOAWAY(SETTINGS_TIMEOUT, handshake_timeout)."""
    c = Conn(host, port)
    c.raw(PREFACE[:10])
    start = time.time()
    g = c.expect(lambda f: isinstance(f, GoAwayFrame), "GOAWAY", within=20, goaway_ok=True)
    print(f"metric goaway_after_s {time.time() - start:.2f}")
    if g.error_code != SETTINGS_TIMEOUT or g.additional_data != b"handshake_timeout":
        raise AssertionError(f"GOAWAY code={g.error_code} {g.additional_data!r}")
    c.expect_eof()
    c.close()
    print("ok slow_handshake")


def rapid_reset(host, port, connections=4):
    """HEADERS then RST_STREAM, as fast as possible, until the server says calm down."""
    for _ in range(connections):
        c = Conn(host, port)
        c.handshake()
        sid, sent = 1, 0
        try:
            while sent < 100000:
                batch = []
                for _ in range(100):
                    batch.append(c.headers(sid, "GET", "/", True))
                    batch.append(RstStreamFrame(sid, error_code=CANCEL))
                    sid += 2
                c.send(*batch)
                sent += 100
        except OSError:
            pass  # the server closed the connection under our writes
        try:
            g = c.expect(lambda f: isinstance(f, GoAwayFrame), "GOAWAY", goaway_ok=True)
        except Closed:
            g = None  # reset before we could read it: the server still cut us
        if g is not None and g.error_code != ENHANCE_YOUR_CALM:
            raise AssertionError(f"GOAWAY code {g.error_code}, expected ENHANCE_YOUR_CALM")
        print(f"metric resets_sent {sent}")
        c.close()
    good_client(host, port)
    print("ok rapid_reset")


def bomb_connection(host, port):
    """A connection whose first request put a 4,000-byte field in the HPACK table."""
    c = Conn(host, port)
    c.handshake()
    first = HeadersFrame(1, c.enc.encode(
        [(":method", "GET"), (":scheme", "http"), (":authority", "test"), (":path", "/"),
         ("x-bomb", "b" * 4000)]))
    first.flags.add("END_HEADERS")
    first.flags.add("END_STREAM")
    c.send(first)
    c.expect(lambda f: f.stream_id == 1 and "END_STREAM" in f.flags, "response on 1")
    return c


def bomb_block(references):
    # Pseudo-headers from the static table (:authority as a literal that is not
    # indexed, so that index 62 stays the bomb), then `references` times index 62.
    return bytes([0x82, 0x86, 0x84, 0x01, 4]) + b"test" + bytes([0xbe]) * references


def send_bombs(c, references, max_blocks=50):
    """Sends bomb blocks, each followed by a PING, until the server sends GOAWAY
    (which must be ENHANCE_YOUR_CALM); returns how many blocks it took."""
    for i in range(max_blocks):
        f = HeadersFrame(3 + 2 * i, bomb_block(references))
        f.flags.add("END_HEADERS")
        f.flags.add("END_STREAM")
        c.send(f, PingFrame(0, opaque_data=b"bomb%04d" % i))
        reply = c.expect(lambda f: isinstance(f, GoAwayFrame) or (isinstance(f, PingFrame) and "ACK" in f.flags),
                         "PING ACK or GOAWAY", goaway_ok=True)
        if isinstance(reply, GoAwayFrame):
            if reply.error_code != ENHANCE_YOUR_CALM:
                raise AssertionError(f"GOAWAY code {reply.error_code}, expected ENHANCE_YOUR_CALM")
            print(f"ok goaway {reply.additional_data.decode(errors='replace')}")
            c.expect_eof()
            return i + 1
    raise AssertionError(f"connection still open after {max_blocks} blocks")


def hpack_bomb(host, port):
    """70 references (282 KiB decoded from 80 bytes): cut at the first block."""
    c = bomb_connection(host, port)
    blocks = send_bombs(c, 70)
    print(f"metric blocks {blocks}")
    c.close()
    good_client(host, port)
    print("ok hpack_bomb")


def oversized_blocks(host, port):
    """20 references (80 KiB decoded, over the 64 KiB limit): a few 431s, then cut."""
    c = bomb_connection(host, port)
    blocks = send_bombs(c, 20)
    print(f"metric blocks {blocks}")
    c.close()
    good_client(host, port)
    print("ok oversized_blocks")


SCENARIOS = {f.__name__: f for f in [
    stalled, hoard, slow_body, idle, slow_handshake, rapid_reset, hpack_bomb, oversized_blocks,
]}


def main():
    name, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    try:
        SCENARIOS[name](host, port)
    except Exception as e:  # noqa: BLE001 - report the failure with its scenario
        print(f"FAIL {name}: {type(e).__name__}: {e}")
        sys.exit(1)


if __name__ == "__main__":
    main()
