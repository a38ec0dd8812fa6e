"""Shared plumbing of the Python HTTP/2 peers in this directory.

Each peer is an HTTP/2 (h2c, prior knowledge) server written with Python's `h2`
package, an implementation independent of steadfast's. A peer takes its port on the
command line (`0`: any free port), binds 127.0.0.1, prints the port it bound as the
first and only line of its stdout, and serves until killed. Diagnostics go to stderr.

A peer subclasses `Peer` and overrides `on_headers` (a request's HEADERS arrived) and
`on_request` (the request is complete: HEADERS, body, END_STREAM). It answers with
`respond`, refuses with `reset`, drains with `send_goaway`, and may end the
connection itself.
"""

import socket
import sys
import threading
import zlib

from h2.config import H2Configuration
from h2.connection import H2Connection
from h2.errors import ErrorCodes
from hyperframe.frame import GoAwayFrame
from h2.events import (
    ConnectionTerminated,
    DataReceived,
    RequestReceived,
    StreamEnded,
    StreamReset,
)

__all__ = ["ErrorCodes", "Peer", "Request", "main", "crc32", "log"]


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def crc32(data):
    return zlib.crc32(data) & 0xFFFFFFFF


class Request:
    """One request stream as the peer saw it."""

    def __init__(self, stream_id, headers):
        self.stream_id = stream_id
        self.headers = dict(headers)
        self.body = bytearray()
        self.complete = False

    @property
    def method(self):
        return self.headers.get(":method", "")

    @property
    def path(self):
        return self.headers.get(":path", "")

    @property
    def request_id(self):
        return self.headers.get("x-request-id", "")


class Peer:
    """One accepted connection, served on its own thread."""

    # Shared by every connection of the process (the tests read it back through
    # response headers).
    lock = threading.Lock()
    connections = 0

    def __init__(self, sock, conn_no):
        self.sock = sock
        self.conn_no = conn_no
        self.h2 = H2Connection(
            config=H2Configuration(client_side=False, header_encoding="utf-8")
        )
        self.requests = {}
        self.closed = False

    # ---- hooks ----

    def on_headers(self, req):
        """HEADERS of a request arrived (its body may follow)."""

    def on_request(self, req):
        """A request is complete."""

    # ---- actions ----

    def flush(self):
        data = self.h2.data_to_send()
        if data and not self.closed:
            self.sock.sendall(data)

    def respond(self, stream_id, headers, body=b""):
        status = [(":status", "200")]
        self.h2.send_headers(stream_id, status + list(headers), end_stream=not body)
        if body:
            self.h2.send_data(stream_id, body, end_stream=True)
        self.requests.pop(stream_id, None)
        self.flush()

    def reset(self, stream_id, code):
        self.h2.reset_stream(stream_id, error_code=code)
        self.requests.pop(stream_id, None)
        self.flush()

    def send_goaway(self, last_stream_id, code=0, debug=b""):
        """Sends GOAWAY after everything h2 has queued, serialized with hyperframe (h2's
        frame layer): h2 itself moves to CLOSED once it sends a GOAWAY and would refuse
        the responses a server may still owe streams at or below last_stream_id."""
        self.flush()
        frame = GoAwayFrame(
            stream_id=0, last_stream_id=last_stream_id, error_code=code, additional_data=debug
        )
        self.sock.sendall(frame.serialize())

    def close_gracefully(self):
        """Sends what is pending, half-closes, and waits (bounded) for the client to
        close its side, so no unread input turns the close into a TCP reset that could
        destroy responses the client has not read yet."""
        self.flush()
        self.sock.shutdown(socket.SHUT_WR)
        self.sock.settimeout(10)
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        self.closed = True
        self.sock.close()

    def close_abruptly(self):
        """Drops the connection at once with a TCP reset (SO_LINGER 0), like a killed
        process: nothing more is sent."""
        self.sock.setsockopt(
            socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00"
        )
        self.closed = True
        self.sock.close()

    # ---- loop ----

    def serve(self):
        self.h2.initiate_connection()
        # A roomy connection window: bodies of refused streams still count against it.
        self.h2.increment_flow_control_window(1 << 30)
        self.flush()
        while not self.closed:
            try:
                data = self.sock.recv(65536)
            except OSError:
                break
            if not data:
                break
            for event in self.h2.receive_data(data):
                self.handle(event)
                if self.closed:
                    break
            if not self.closed:
                self.flush()
        if not self.closed:
            self.closed = True
            self.sock.close()

    def handle(self, event):
        if isinstance(event, RequestReceived):
            req = Request(event.stream_id, event.headers)
            self.requests[event.stream_id] = req
            self.on_headers(req)
            if event.stream_ended is not None and event.stream_id in self.requests:
                req.complete = True
                self.on_request(req)
        elif isinstance(event, DataReceived):
            self.h2.acknowledge_received_data(
                event.flow_controlled_length, event.stream_id
            )
            req = self.requests.get(event.stream_id)
            if req is not None:
                req.body += event.data
        elif isinstance(event, StreamEnded):
            req = self.requests.get(event.stream_id)
            if req is not None and not req.complete:
                req.complete = True
                self.on_request(req)
        elif isinstance(event, StreamReset):
            self.requests.pop(event.stream_id, None)
        elif isinstance(event, ConnectionTerminated):
            self.flush()
            self.closed = True
            self.sock.close()


def main(peer_class, argv):
    """Binds the port given as argv[1], prints it, and serves forever."""
    port = int(argv[1]) if len(argv) > 1 else 0
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(64)
    print(listener.getsockname()[1], flush=True)
    while True:
        sock, _ = listener.accept()
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        with Peer.lock:
            Peer.connections += 1
            conn_no = Peer.connections
        peer = peer_class(sock, conn_no)

        def run(peer=peer):
            try:
                peer.serve()
            except Exception as e:  # a peer bug must show, not hang the test
                log(f"connection {peer.conn_no}: {type(e).__name__}: {e}")
                try:
                    peer.sock.close()
                except OSError:
                    pass

        threading.Thread(target=run, daemon=True).start()
