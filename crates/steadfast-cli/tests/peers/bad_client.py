"""A misbehaving HTTP/2 client, built on the frame and HPACK libraries of Python's h2
stack (hyperframe, hpack), for testing that a server answers each protocol error with
the frame RFC 9113 names and keeps serving other connections.

Usage: bad_client.py HOST PORT
Prints one line per scenario ("ok NAME" or "FAIL NAME: why") and exits 1 on any failure.
"""
import socket
import struct
import sys
import time

from hpack import Encoder
from hyperframe.frame import (
    DataFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame, RstStreamFrame,
    SettingsFrame, WindowUpdateFrame,
)

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
PROTOCOL_ERROR, FLOW_CONTROL_ERROR, FRAME_SIZE_ERROR, STREAM_CLOSED = 0x1, 0x3, 0x6, 0x5
COMPRESSION_ERROR = 0x9
TIMEOUT = 5.0


class Conn:
    def __init__(self, host, port):
        self.sock = socket.create_connection((host, port), timeout=TIMEOUT)
        self.buf = b""
        self.enc = Encoder()

    def send(self, *frames):
        self.sock.sendall(b"".join(f.serialize() for f in frames))

    def raw(self, data):
        self.sock.sendall(data)

    def handshake(self):
        self.raw(PREFACE)
        self.send(SettingsFrame(0))
        # Wait for the server's SETTINGS, then acknowledge it.
        while True:
            f = self.recv()
            if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                self.send(SettingsFrame(0, flags=["ACK"]))
                return

    def recv(self):
        """The next frame, or None at EOF."""
        while True:
            if len(self.buf) >= 9:
                header, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) >= 9 + length:
                    header.parse_body(memoryview(self.buf[9:9 + length]))
                    self.buf = self.buf[9 + length:]
                    return header
            try:
                chunk = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not chunk:
                return None
            self.buf += chunk

    def request_block(self, extra=()):
        headers = [(":method", "GET"), (":scheme", "http"), (":authority", "test"), (":path", "/")]
        headers.extend(extra)
        return self.enc.encode(headers)

    def get(self, stream_id):
        f = HeadersFrame(stream_id, self.request_block())
        f.flags.add("END_HEADERS")
        f.flags.add("END_STREAM")
        self.send(f)

    def expect(self, predicate, what):
        """Reads frames until one satisfies predicate; fails at EOF or a stray GOAWAY."""
        while True:
            f = self.recv()
            if f is None:
                raise AssertionError(f"connection closed before {what}")
            if predicate(f):
                return f
            if isinstance(f, GoAwayFrame):
                raise AssertionError(f"unexpected GOAWAY code={f.error_code} while waiting for {what}")

    def expect_goaway(self, code):
        g = self.expect(lambda f: isinstance(f, GoAwayFrame), f"GOAWAY({code})")
        if g.error_code != code:
            raise AssertionError(f"GOAWAY code {g.error_code}, expected {code} ({g.additional_data!r})")
        # The server closes the connection after a connection error.
        while self.recv() is not None:
            pass

    def expect_rst(self, stream_id, code):
        r = self.expect(lambda f: isinstance(f, RstStreamFrame) and f.stream_id == stream_id, f"RST_STREAM({stream_id})")
        if r.error_code != code:
            raise AssertionError(f"RST_STREAM code {r.error_code}, expected {code}")

    def expect_response(self, stream_id):
        h = self.expect(lambda f: isinstance(f, HeadersFrame) and f.stream_id == stream_id, f"response on {stream_id}")
        return h


def data_on_stream_zero(c):
    c.handshake()
    c.raw(struct.pack(">I", 3)[1:] + b"\x00\x00" + struct.pack(">I", 0) + b"abc")
    c.expect_goaway(PROTOCOL_ERROR)


def zero_window_increment_on_connection(c):
    c.handshake()
    c.raw(struct.pack(">I", 4)[1:] + b"\x08\x00" + struct.pack(">I", 0) + struct.pack(">I", 0))
    c.expect_goaway(PROTOCOL_ERROR)


def oversized_frame(c):
    c.handshake()
    c.send(PingFrame(0, opaque_data=b"12345678"))
    c.raw(struct.pack(">I", 20000)[1:] + b"\x00\x00" + struct.pack(">I", 1))
    c.expect_goaway(FRAME_SIZE_ERROR)


def bad_preface(c):
    c.raw(b"PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n")
    c.expect_goaway(PROTOCOL_ERROR)


def hpack_garbage(c):
    c.handshake()
    f = HeadersFrame(1, b"\xff\xff\xff\xff\xff\xff")
    f.flags.add("END_HEADERS")
    c.send(f)
    c.expect_goaway(COMPRESSION_ERROR)


def malformed_request_is_a_stream_error(c):
    c.handshake()
    f = HeadersFrame(1, c.request_block([("Upper-Case", "x")]))
    f.flags.add("END_HEADERS")
    f.flags.add("END_STREAM")
    c.send(f)
    c.expect_rst(1, PROTOCOL_ERROR)
    # The connection keeps serving other streams.
    c.get(3)
    c.expect_response(3)


def data_after_end_stream(c):
    c.handshake()
    c.get(1)
    c.send(DataFrame(1, b"late"))
    c.expect_rst(1, STREAM_CLOSED)
    c.get(3)
    c.expect_response(3)


def stream_window_overflow(c):
    c.handshake()
    f = HeadersFrame(1, c.request_block())
    f.flags.add("END_HEADERS")
    c.send(f)
    # Late, so the server has long seen the request: the error must not depend on it.
    time.sleep(0.2)
    c.send(WindowUpdateFrame(1, window_increment=2**31 - 1))
    c.expect_rst(1, FLOW_CONTROL_ERROR)
    c.get(3)
    c.expect_response(3)


def malformed_body_to_a_route_that_takes_no_body(c):
    # POST / is not a route (GET / is): the server must read the request to its end
    # before its 405, so a malformed body arriving late is still the protocol error it
    # is (content-length 5, 11 bytes of DATA), not ignored after an early answer.
    c.handshake()
    block = c.enc.encode([(":method", "POST"), (":scheme", "http"), (":authority", "test"),
                          (":path", "/"), ("content-length", "5")])
    f = HeadersFrame(1, block)
    f.flags.add("END_HEADERS")
    c.send(f)
    time.sleep(0.2)
    d = DataFrame(1, b"hello world")
    d.flags.add("END_STREAM")
    c.send(d)
    c.expect_rst(1, PROTOCOL_ERROR)
    c.get(3)
    c.expect_response(3)


def never_answers_rst_with_rst(c):
    c.handshake()
    f = HeadersFrame(1, c.request_block())
    f.flags.add("END_HEADERS")
    c.send(f)
    c.send(RstStreamFrame(1, error_code=0x8))
    c.send(RstStreamFrame(1, error_code=0x8))
    c.send(PingFrame(0, opaque_data=b"checkpnt"))
    while True:
        f = c.recv()
        if f is None:
            raise AssertionError("connection closed")
        if isinstance(f, RstStreamFrame):
            raise AssertionError("server answered RST_STREAM with RST_STREAM")
        if isinstance(f, PingFrame) and "ACK" in f.flags:
            return


SCENARIOS = [
    data_on_stream_zero,
    zero_window_increment_on_connection,
    oversized_frame,
    bad_preface,
    hpack_garbage,
    malformed_request_is_a_stream_error,
    data_after_end_stream,
    stream_window_overflow,
    malformed_body_to_a_route_that_takes_no_body,
    never_answers_rst_with_rst,
]


def main():
    host, port = sys.argv[1], int(sys.argv[2])
    failed = 0
    for scenario in SCENARIOS:
        c = Conn(host, port)
        try:
            scenario(c)
            print(f"ok {scenario.__name__}")
        except Exception as e:  # noqa: BLE001 - report every failure, keep going
            failed += 1
            print(f"FAIL {scenario.__name__}: {e}")
        finally:
            c.sock.close()
    # After all that, a well-behaved client is still served.
    c = Conn(host, port)
    try:
        c.handshake()
        c.get(1)
        c.expect_response(1)
        print("ok server_still_serves")
    except Exception as e:  # noqa: BLE001
        failed += 1
        print(f"FAIL server_still_serves: {e}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
