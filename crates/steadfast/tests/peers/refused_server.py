"""An h2 server that refuses requests with RST_STREAM(REFUSED_STREAM).

Usage: refused_server.py PORT [alternate|always]

alternate (default): on each connection, the 1st, 3rd, 5th... request is refused
  as soon as its HEADERS arrive, before its body is read; the others are answered
  200 once complete.
always: every request is refused.

Answers carry x-body-length (what the body held), x-sends (how many times this
x-request-id arrived so far) and x-conn. `GET /count?id=R` is never refused nor
counted: it answers x-count (arrivals of request id R), x-refused and x-answered
(totals over the process).
"""

import sys

from h2peer import ErrorCodes, Peer, main

MODE = sys.argv[2] if len(sys.argv) > 2 else "alternate"
if MODE not in ("alternate", "always"):
    sys.exit(f"unknown mode {MODE!r}")
COUNTS = {}
TOTALS = {"refused": 0, "answered": 0}


class RefusedPeer(Peer):
    def __init__(self, sock, conn_no):
        super().__init__(sock, conn_no)
        self.received = 0

    def on_headers(self, req):
        if req.path.startswith("/count"):
            return
        self.received += 1
        with Peer.lock:
            COUNTS[req.request_id] = COUNTS.get(req.request_id, 0) + 1
            refuse = MODE == "always" or self.received % 2 == 1
            if refuse:
                TOTALS["refused"] += 1
        if refuse:
            self.reset(req.stream_id, ErrorCodes.REFUSED_STREAM)

    def on_request(self, req):
        if req.path.startswith("/count?id="):
            rid = req.path[len("/count?id="):]
            with Peer.lock:
                headers = [
                    ("x-count", str(COUNTS.get(rid, 0))),
                    ("x-refused", str(TOTALS["refused"])),
                    ("x-answered", str(TOTALS["answered"])),
                ]
            self.respond(req.stream_id, headers, b"count")
            return
        with Peer.lock:
            TOTALS["answered"] += 1
            sends = COUNTS.get(req.request_id, 0)
        self.respond(
            req.stream_id,
            [
                ("x-body-length", str(len(req.body))),
                ("x-sends", str(sends)),
                ("x-conn", str(self.conn_no)),
            ],
            b"ok",
        )


if __name__ == "__main__":
    main(RefusedPeer, sys.argv)
