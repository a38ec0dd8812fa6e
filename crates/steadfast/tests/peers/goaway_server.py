"""An h2 server whose first connection drains with GOAWAY mid-flight.

Usage: goaway_server.py PORT N K

On the first connection it waits until N requests are complete (HEADERS, body,
END_STREAM), then sends GOAWAY(NO_ERROR, last_stream_id = the K-th stream id it
received, debug data b"test-drain"), answers the streams at or below last_stream_id,
ignores those above, and closes the connection. Every later connection is served
normally. Each answer says where and how the request arrived:

  x-conn: the connection number (1 = the draining one)
  x-stream-id: the stream it arrived on
  x-seen: every sighting of its x-request-id so far, "conn:stream" comma-separated
  x-body-length, x-body-crc32: what the body held
  body: "request R on stream S of connection C: L bytes, crc32 X"
"""

import sys

from h2peer import Peer, crc32, main

SEEN = {}


class GoAwayPeer(Peer):
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 6
    k = int(sys.argv[3]) if len(sys.argv) > 3 else 3

    def __init__(self, sock, conn_no):
        super().__init__(sock, conn_no)
        self.order = []
        self.complete = []

    def on_headers(self, req):
        with Peer.lock:
            SEEN.setdefault(req.request_id, []).append(f"{self.conn_no}:{req.stream_id}")
        self.order.append(req.stream_id)

    def answer(self, req):
        with Peer.lock:
            seen = ",".join(SEEN.get(req.request_id, []))
        body = bytes(req.body)
        crc = f"{crc32(body):08x}"
        text = (
            f"request {req.request_id} on stream {req.stream_id} of connection "
            f"{self.conn_no}: {len(body)} bytes, crc32 {crc}"
        )
        self.respond(
            req.stream_id,
            [
                ("x-conn", str(self.conn_no)),
                ("x-stream-id", str(req.stream_id)),
                ("x-seen", seen),
                ("x-body-length", str(len(body))),
                ("x-body-crc32", crc),
            ],
            text.encode(),
        )

    def on_request(self, req):
        if self.conn_no != 1:
            self.answer(req)
            return
        self.complete.append(req)
        if len(self.complete) < self.n:
            return
        last = self.order[self.k - 1]
        # A raw GOAWAY: the streams at or below `last` are still answered below.
        self.send_goaway(last, 0, b"test-drain")
        for r in sorted(self.complete, key=lambda r: r.stream_id):
            if r.stream_id <= last:
                self.answer(r)
        self.close_gracefully()


if __name__ == "__main__":
    main(GoAwayPeer, sys.argv)
