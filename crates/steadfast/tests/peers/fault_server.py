"""An h2 server with one fault, for the diagnoses `steadfast probe` must get right.

Usage: fault_server.py PORT MODE [ARGS...]

Modes, each acting once a request is complete (HEADERS, body, END_STREAM):
  silent            reads the request and never answers (nor closes)
  goaway CODE DEBUG sends GOAWAY(CODE, last_stream_id = the request's stream, DEBUG)
                    without answering, then closes gracefully: the stream was at or
                    below last-stream-id, so the server may have processed it
  refuse            answers RST_STREAM(REFUSED_STREAM): never processed
  drain             sends GOAWAY(NO_ERROR, last_stream_id=0, "max_age"): the request's
                    stream is above it, so it was never processed; then closes
  reset             resets the TCP connection (SO_LINGER 0), like a killed process
  html STATUS       answers STATUS with an HTML error page, `server: edge-proxy/1.0`
                    and `content-type: text/html`, as a proxy or load balancer does
"""

import sys

from h2peer import ErrorCodes, Peer, main

MODE = sys.argv[2] if len(sys.argv) > 2 else "silent"
ARGS = sys.argv[3:]


class FaultPeer(Peer):
    def on_request(self, req):
        print(f"request {req.method} {req.path}", flush=True)
        if MODE == "silent":
            return
        if MODE == "goaway":
            code, debug = int(ARGS[0], 0), ARGS[1].encode()
            self.send_goaway(req.stream_id, code, debug)
            self.close_gracefully()
        elif MODE == "refuse":
            self.reset(req.stream_id, ErrorCodes.REFUSED_STREAM)
        elif MODE == "drain":
            self.send_goaway(0, 0, b"max_age")
            self.close_gracefully()
        elif MODE == "reset":
            self.close_abruptly()
        elif MODE == "html":
            status = ARGS[0] if ARGS else "502"
            page = (
                f"<html>\r\n<head><title>{status} Bad Gateway</title></head>\r\n"
                f"<body><center><h1>{status} Bad Gateway</h1></center></body>\r\n</html>\r\n"
            ).encode()
            self.h2.send_headers(
                req.stream_id,
                [
                    (":status", status),
                    ("server", "edge-proxy/1.0"),
                    ("content-type", "text/html"),
                    ("content-length", str(len(page))),
                ],
            )
            self.h2.send_data(req.stream_id, page, end_stream=True)
            self.flush()


if __name__ == "__main__":
    main(FaultPeer, sys.argv)
