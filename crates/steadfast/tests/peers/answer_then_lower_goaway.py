"""An h2 server that answers a request's head, then takes it back with GOAWAY.

Usage: answer_then_lower_goaway.py PORT

When a request's HEADERS arrive it sends the response HEADERS (200, no END_STREAM)
and part of a body, then GOAWAY(NO_ERROR, last_stream_id=0, debug data b"lower"):
a second GOAWAY's last-stream-id may be lower than the first's, but it cannot undo a
response the client already holds. It then closes the connection gracefully. A
client must not call the failed body retry-safe: the request was processed.
"""

import sys

from h2peer import Peer, main


class AnswerThenLowerGoAway(Peer):
    def on_headers(self, req):
        self.h2.send_headers(req.stream_id, [(":status", "200")], end_stream=False)
        self.h2.send_data(req.stream_id, b"partial ", end_stream=False)
        self.flush()
        self.h2.close_connection(error_code=0, last_stream_id=0, additional_data=b"lower")
        self.close_gracefully()


if __name__ == "__main__":
    main(AnswerThenLowerGoAway, sys.argv)
