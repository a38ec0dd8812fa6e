"""A misbehaving gRPC server for the client side of grpc's
doc/negative-http2-interop-test-descriptions.md (tests/negative_http2.rs), written
here with Python's `h2` on the shared peer plumbing of crates/steadfast/tests/peers
(h2peer.py: put that directory on PYTHONPATH).

    python3 negative_http2_server.py PORT CASE

serves grpc.testing.TestService/UnaryCall on 127.0.0.1:PORT (0: any free port),
misbehaving as CASE says, and prints the port it bound as its first line. Then one
line per event the test asserts:

    call N on connection C stream S
        the N-th call the server answered (every case)
    ignored stream S on connection C after GOAWAY
        (goaway)
    connection C closed: calls K, pings sent P, acked A, max open streams M
        when a client closes a connection
    done
        at EOF on stdin, once every connection has closed (at most 10 s); then
        the server exits

Cases, as grpc's test/http2_test servers behave:
  goaway            answers the first call, then GOAWAY(last_stream_id = its stream);
                    later streams on that connection are ignored
  goaway_late       (not grpc's) the same, but the GOAWAY waits for the next stream's
                    HEADERS: that call is always the one refused, and must be
                    retried on a new connection
  rst_after_header  response headers, then RST_STREAM(NO_ERROR)
  rst_during_data   headers and half of the response message, then RST_STREAM(NO_ERROR)
  rst_after_data    headers and the whole response message, then RST_STREAM(NO_ERROR)
                    instead of trailers
  ping              PINGs before and after the headers and before and after the
                    data; the trailers wait until every PING was acked
  max_streams       SETTINGS_MAX_CONCURRENT_STREAMS = 1 from the connection preface

The response is a SimpleResponse of `response_size` zero bytes, encoded by hand (the
two fields it has need no protobuf runtime).
"""

import os
import struct
import sys
import threading

from h2.errors import ErrorCodes
from h2.events import PingAckReceived, StreamReset, WindowUpdated
from h2.settings import SettingCodes, Settings
from h2peer import Peer, main

CASE = sys.argv[2] if len(sys.argv) > 2 else ""
CALLS = [0]  # answered calls, over every connection (under Peer.lock)
PRINT_LOCK = threading.Lock()
OPEN = threading.Condition()  # guards OPEN_CONNECTIONS
OPEN_CONNECTIONS = [0]


def say(line):
    """One whole line on stdout, whichever connection's thread says it."""
    with PRINT_LOCK:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def varint(value):
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def read_varint(data, at):
    value = shift = 0
    while True:
        byte = data[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, at


def response_size(message):
    """SimpleRequest.response_size (field 2, varint); other fields are skipped."""
    at = 0
    while at < len(message):
        key, at = read_varint(message, at)
        field, wire = key >> 3, key & 7
        if wire == 0:
            value, at = read_varint(message, at)
            if field == 2:
                return value
        elif wire == 2:
            length, at = read_varint(message, at)
            at += length
        elif wire == 5:
            at += 4
        elif wire == 1:
            at += 8
        else:
            raise ValueError(f"wire type {wire}")
    return 0


def simple_response(size):
    """A length-prefixed SimpleResponse { payload: Payload { body: size zeros } }."""
    payload = b"\x12" + varint(size) + b"\0" * size
    message = b"\x0a" + varint(len(payload)) + payload
    return struct.pack(">BI", 0, len(message)) + message


class NegativePeer(Peer):
    def __init__(self, sock, conn_no):
        super().__init__(sock, conn_no)
        if CASE == "max_streams":
            self.h2.local_settings = Settings(
                client=False, initial_values={SettingCodes.MAX_CONCURRENT_STREAMS: 1}
            )
        self.sending = {}  # stream id -> [bytes left, what to do when sent]
        self.calls = 0
        self.pings_sent = 0
        self.pings_acked = 0
        self.open_streams = set()
        self.max_open = 0
        self.goaway_after = None
        self.trailers_waiting = None
        self.last_answered = None
        with OPEN:
            OPEN_CONNECTIONS[0] += 1

    # ---- what the cases share ----

    def send_headers(self, stream_id):
        self.h2.send_headers(
            stream_id, [(":status", "200"), ("content-type", "application/grpc")]
        )
        self.flush()

    def send_data(self, stream_id, data, then):
        """Sends `data` as flow control allows, then calls `then()`."""
        self.sending[stream_id] = [data, then]
        self.pump(stream_id)

    def pump(self, stream_id):
        entry = self.sending.get(stream_id)
        if entry is None:
            return
        while entry[0]:
            window = min(
                self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size
            )
            if window <= 0:
                self.flush()
                return
            chunk, entry[0] = entry[0][:window], entry[0][window:]
            self.h2.send_data(stream_id, chunk)
        del self.sending[stream_id]
        self.flush()
        entry[1]()

    def send_trailers(self, stream_id):
        self.h2.send_headers(stream_id, [("grpc-status", "0")], end_stream=True)
        self.stream_done(stream_id)
        self.flush()

    def reset_no_error(self, stream_id):
        self.sending.pop(stream_id, None)
        self.reset(stream_id, ErrorCodes.NO_ERROR)
        self.stream_done(stream_id)

    def ping(self):
        self.pings_sent += 1
        self.h2.ping(struct.pack(">Q", self.pings_sent))
        self.flush()

    def stream_done(self, stream_id):
        self.open_streams.discard(stream_id)

    def answered(self, stream_id):
        self.calls += 1
        self.last_answered = stream_id
        with Peer.lock:
            CALLS[0] += 1
            number = CALLS[0]
        say(f"call {number} on connection {self.conn_no} stream {stream_id}")

    # ---- the cases ----

    def on_headers(self, req):
        self.open_streams.add(req.stream_id)
        self.max_open = max(self.max_open, len(self.open_streams))
        if self.goaway_after is not None and req.stream_id > self.goaway_after:
            # Above the GOAWAY's last stream id: ignored, as RFC 9113 6.8 says.
            say(f"ignored stream {req.stream_id} on connection {self.conn_no} after GOAWAY")
            self.requests.pop(req.stream_id, None)
            return
        if CASE == "goaway_late" and self.calls and self.goaway_after is None:
            self.goaway_after = self.last_answered
            self.send_goaway(self.last_answered)
            say(f"ignored stream {req.stream_id} on connection {self.conn_no} after GOAWAY")
            self.requests.pop(req.stream_id, None)
            return
        if CASE == "rst_after_header":
            self.send_headers(req.stream_id)
            self.reset_no_error(req.stream_id)
        elif CASE == "ping":
            self.ping()
            self.send_headers(req.stream_id)
            self.ping()
        else:
            self.send_headers(req.stream_id)

    def on_request(self, req):
        stream_id = req.stream_id
        body = bytes(req.body)
        response = simple_response(response_size(body[5:]))
        if CASE == "rst_during_data":
            self.send_data(
                stream_id, response[: len(response) // 2], lambda: self.reset_no_error(stream_id)
            )
        elif CASE == "rst_after_data":
            self.send_data(stream_id, response, lambda: self.reset_no_error(stream_id))
        elif CASE == "ping":
            self.ping()

            def after_data():
                self.ping()
                self.trailers_waiting = stream_id
                self.maybe_send_waiting_trailers()

            self.send_data(stream_id, response, after_data)
        elif CASE == "goaway":

            def after_data():
                self.send_trailers(stream_id)
                self.answered(stream_id)
                if self.goaway_after is None:
                    self.goaway_after = stream_id
                    self.send_goaway(stream_id)

            self.send_data(stream_id, response, after_data)
        else:

            def after_data():
                self.send_trailers(stream_id)
                self.answered(stream_id)

            self.send_data(stream_id, response, after_data)

    def maybe_send_waiting_trailers(self):
        if self.trailers_waiting is not None and self.pings_acked == self.pings_sent:
            stream_id, self.trailers_waiting = self.trailers_waiting, None
            self.send_trailers(stream_id)
            self.answered(stream_id)

    # ---- events beyond those Peer handles ----

    def handle(self, event):
        super().handle(event)
        if isinstance(event, WindowUpdated):
            for stream_id in list(self.sending):
                self.pump(stream_id)
        elif isinstance(event, PingAckReceived):
            self.pings_acked += 1
            self.maybe_send_waiting_trailers()
        elif isinstance(event, StreamReset):
            self.sending.pop(event.stream_id, None)
            self.stream_done(event.stream_id)

    def serve(self):
        try:
            super().serve()
        finally:
            say(
                f"connection {self.conn_no} closed: calls {self.calls}, "
                f"pings sent {self.pings_sent}, acked {self.pings_acked}, "
                f"max open streams {self.max_open}"
            )
            with OPEN:
                OPEN_CONNECTIONS[0] -= 1
                OPEN.notify_all()


def finish_at_eof():
    """At EOF on stdin (the test's client has exited): waits for the connections to
    close, says "done" and exits."""
    sys.stdin.read()
    with OPEN:
        OPEN.wait_for(lambda: OPEN_CONNECTIONS[0] == 0, timeout=10)
    say("done")
    os._exit(0)


if __name__ == "__main__":
    threading.Thread(target=finish_at_eof, daemon=True).start()
    main(NegativePeer, sys.argv)
