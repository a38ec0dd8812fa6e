"""An h2 server that turns every connection away at once.

Usage: goaway_every_connection.py PORT

On each new connection it sends its SETTINGS and, in the same write,
GOAWAY(NO_ERROR, last_stream_id=0, debug data b"conn N") — N counting connections
from 1 — then reads until the client closes. No request is ever processed. A client
that treats SETTINGS as proof of a working connection, or retries never-sent requests
without a bound, reconnects in a tight loop; the debug data of the last GOAWAY it got
says how many connections it made.
"""

import sys

from h2peer import Peer, main


class GoAwayEveryConnection(Peer):
    def serve(self):
        self.h2.initiate_connection()
        self.h2.close_connection(
            error_code=0, last_stream_id=0, additional_data=f"conn {self.conn_no}".encode()
        )
        self.flush()
        self.sock.settimeout(30)
        try:
            while self.sock.recv(65536):
                pass
        except OSError:
            pass
        self.closed = True
        self.sock.close()


if __name__ == "__main__":
    main(GoAwayEveryConnection, sys.argv)
