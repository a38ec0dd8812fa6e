"""An h2 server that drops the connection after reading a request, without answering.

Usage: abrupt_server.py PORT

Each time a request id (x-request-id) arrives complete (HEADERS, body, END_STREAM)
for an odd time (1st, 3rd...), the server resets the TCP connection without a word,
like a process killed mid-request: the client cannot know whether the request was
processed. An even arrival is answered 200 with x-count (arrivals of that id) and
x-body-length. `GET /count?id=R` answers x-count for request id R without counting.
"""

import sys

from h2peer import Peer, main

COUNTS = {}


class AbruptPeer(Peer):
    def on_request(self, req):
        if req.path.startswith("/count?id="):
            rid = req.path[len("/count?id="):]
            with Peer.lock:
                count = COUNTS.get(rid, 0)
            self.respond(req.stream_id, [("x-count", str(count))], b"count")
            return
        with Peer.lock:
            COUNTS[req.request_id] = COUNTS.get(req.request_id, 0) + 1
            count = COUNTS[req.request_id]
        if count % 2 == 1:
            self.close_abruptly()
            return
        self.respond(
            req.stream_id,
            [("x-count", str(count)), ("x-body-length", str(len(req.body)))],
            b"ok",
        )


if __name__ == "__main__":
    main(AbruptPeer, sys.argv)
