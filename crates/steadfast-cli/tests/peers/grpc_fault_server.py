"""A gRPC-shaped h2 server with one fault, for the diagnoses `steadfast call` must get
right. Built on ../../steadfast/tests/peers/h2peer.py (Python's `h2`).

Usage: grpc_fault_server.py PORT MODE [ARGS...]

Modes, each acting once a request is complete (HEADERS, body, END_STREAM):
  status CODE [MS|deadline]
                answers a Trailers-Only gRPC status CODE, at once, after MS
                milliseconds, or (`deadline`) at eight tenths of the grpc-timeout the
                request carried, as a server enforcing the caller's deadline does
  rst CODE [headers]
                resets the stream with RST_STREAM(CODE); with `headers`, after
                response HEADERS (200, application/grpc) and no trailers
  notrailers    answers HEADERS (200, application/grpc) and one empty message, and
                ends the stream without trailers (a proxy that strips them)
  details       answers RESOURCE_EXHAUSTED with rich error details
                (grpc-status-details-bin: a google.rpc.Status holding an ErrorInfo
                and a RetryInfo), encoded here by hand
  http STATUS   answers STATUS with a plain-text body and `server: edge-proxy/1.0`,
                as a load balancer does
  stall         stops reading and writing (keepalive PINGs go unanswered), holding
                the connection open
"""

import base64
import os
import sys
import time

sys.path.insert(
    0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../steadfast/tests/peers")
)

from h2peer import Peer, main  # noqa: E402

MODE = sys.argv[2] if len(sys.argv) > 2 else "stall"
ARGS = sys.argv[3:]

GRPC = [("content-type", "application/grpc")]


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def field(number, value):
    """A protobuf field: varint for ints, length-delimited for bytes."""
    if isinstance(value, int):
        return varint(number << 3) + varint(value)
    return varint(number << 3 | 2) + varint(len(value)) + value


def any_of(name, value):
    return field(1, f"type.googleapis.com/{name}".encode()) + field(2, value)


def rich_details():
    error_info = (
        field(1, b"RATE_LIMITED")
        + field(2, b"edge.example")
        + field(3, field(1, b"limit") + field(2, b"10"))
    )
    retry_info = field(1, field(1, 1) + field(2, 500_000_000))
    status = (
        field(1, 8)
        + field(2, b"quota exceeded")
        + field(3, any_of("google.rpc.ErrorInfo", error_info))
        + field(3, any_of("google.rpc.RetryInfo", retry_info))
    )
    return base64.b64encode(status).decode().rstrip("=")


def grpc_timeout_seconds(value):
    """The seconds of a grpc-timeout header (`100m`, `2S`...)."""
    units = {"H": 3600, "M": 60, "S": 1, "m": 1e-3, "u": 1e-6, "n": 1e-9}
    return int(value[:-1]) * units[value[-1]]


class GrpcFaultPeer(Peer):
    def on_request(self, req):
        print(f"request {req.method} {req.path}", flush=True)
        # What h2 queued while reading (the ACK of the client's SETTINGS above all)
        # leaves before any wait: the fault is the one named, not a missing ACK.
        self.flush()
        sid = req.stream_id
        if MODE == "status":
            code = ARGS[0]
            when = ARGS[1] if len(ARGS) > 1 else "0"
            if when == "deadline":
                timeout = req.headers.get("grpc-timeout")
                delay = grpc_timeout_seconds(timeout) * 0.8 if timeout else 0
            else:
                delay = int(when) / 1000
            time.sleep(delay)
            message = "deadline exceeded upstream" if code == "4" else "fault"
            self.h2.send_headers(
                sid,
                [(":status", "200")] + GRPC + [("grpc-status", code), ("grpc-message", message)],
                end_stream=True,
            )
            self.flush()
        elif MODE == "details":
            self.h2.send_headers(
                sid,
                [(":status", "200")]
                + GRPC
                + [
                    ("grpc-status", "8"),
                    ("grpc-message", "quota exceeded"),
                    ("grpc-status-details-bin", rich_details()),
                ],
                end_stream=True,
            )
            self.flush()
        elif MODE == "rst":
            code = int(ARGS[0], 0)
            if len(ARGS) > 1 and ARGS[1] == "headers":
                self.h2.send_headers(sid, [(":status", "200")] + GRPC)
            self.reset(sid, code)
        elif MODE == "notrailers":
            self.h2.send_headers(sid, [(":status", "200")] + GRPC)
            self.h2.send_data(sid, b"\x00\x00\x00\x00\x00", end_stream=True)
            self.flush()
        elif MODE == "http":
            status = ARGS[0]
            body = (
                f"upstream connect error or disconnect/reset before headers. "
                f"reset reason: overflow (HTTP {status} from edge-proxy)\n"
            ).encode()
            self.h2.send_headers(
                sid,
                [
                    (":status", status),
                    ("server", "edge-proxy/1.0"),
                    ("content-type", "text/plain"),
                    ("content-length", str(len(body))),
                    ("retry-after", "1"),
                ],
            )
            self.h2.send_data(sid, body, end_stream=True)
            self.flush()
        elif MODE == "stall":
            # Neither reads nor writes again: the connection's thread parks here.
            while True:
                time.sleep(3600)


if __name__ == "__main__":
    main(GrpcFaultPeer, sys.argv)
