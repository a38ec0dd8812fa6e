"""An h2 server whose every legal move is chosen at random, and which writes down
every request its application processed.

Usage: chaos_server.py PORT SEED LOG

Each complete request (HEADERS, body, END_STREAM) on a connection meets one of:
  - refused with RST_STREAM(REFUSED_STREAM) before any processing (not logged);
  - processed (its x-request-id is appended to LOG, flushed, *before* anything is
    sent about it), then: answered 200 with the request id as body; reset with a
    random error code other than REFUSED_STREAM; answered with headers and then
    reset; answered after a GOAWAY(NO_ERROR) whose last-stream-id is at or above
    every stream processed on the connection (later streams above it are ignored,
    as RFC 9113 §6.8 lets a server do); followed by GOAWAY with an error code and a
    graceful close; or followed by a crash (TCP reset, nothing more sent).

The test reads LOG back: a request the client calls retry-safe must not be in it,
and none may be in it twice.
"""

import random
import sys

from h2peer import ErrorCodes, Peer, main

SEED = int(sys.argv[2]) if len(sys.argv) > 2 else 1
LOG = open(sys.argv[3], "a", buffering=1) if len(sys.argv) > 3 else sys.stderr

RESET_CODES = [c for c in range(0, 14) if c != ErrorCodes.REFUSED_STREAM] + [0x77]


class ChaosPeer(Peer):
    def __init__(self, sock, conn_no):
        super().__init__(sock, conn_no)
        self.rng = random.Random(SEED * 1000 + conn_no)
        self.max_processed = 0
        self.goaway_last = None

    def on_request(self, req):
        sid = req.stream_id
        if self.goaway_last is not None and sid > self.goaway_last:
            return  # above our GOAWAY: ignored, never processed
        move = self.rng.random()
        if move < 0.10:
            self.reset(sid, ErrorCodes.REFUSED_STREAM)
            return
        with Peer.lock:
            LOG.write(req.request_id + "\n")
            LOG.flush()
        self.max_processed = max(self.max_processed, sid)
        if move < 0.62:
            self.respond(sid, [], req.request_id.encode())
        elif move < 0.70:
            self.reset(sid, self.rng.choice(RESET_CODES))
        elif move < 0.76:
            self.h2.send_headers(sid, [(":status", "200")], end_stream=False)
            self.flush()
            self.reset(sid, self.rng.choice(RESET_CODES))
        elif move < 0.86:
            if self.goaway_last is None:
                self.goaway_last = self.max_processed + 2 * self.rng.randrange(3)
                self.send_goaway(self.goaway_last, 0, b"chaos drain")
            self.respond(sid, [], req.request_id.encode())
        elif move < 0.93:
            code = self.rng.choice([ErrorCodes.INTERNAL_ERROR, ErrorCodes.ENHANCE_YOUR_CALM])
            self.send_goaway(self.max_processed, code, b"chaos error")
            self.close_gracefully()
        else:
            self.close_abruptly()


if __name__ == "__main__":
    main(ChaosPeer, sys.argv)
