"""A raw HTTP/2 gRPC peer (Python h2, pinned in scripts/requirements.txt) for
steadfast-grpc's tests of bad input, cancellation and metadata (tests/bad_input.rs,
tests/cancellation.rs, tests/metadata_and_details.rs).

    python3 raw_h2_peer.py HOST:PORT CASE

sends one call to /steadfast.test.Echo/Unary (the `-bin` cases: to
/steadfast.example.Greeter/SayHello) shaped by CASE, then prints every
response header and trailer as "name: value", "reset CODE" for a RST_STREAM,
"goaway CODE" for a GOAWAY, "timeout" when nothing ended the stream within 5 s,
and "end" last.

Cases: oversized (length prefix 0xfffffff0, 5 bytes sent, no END_STREAM),
compressed-no-encoding (compressed flag, no grpc-encoding), truncated (prefix 10,
3 bytes, END_STREAM), bad-timeout (grpc-timeout "1x"), padded-bin (an `-bin`
metadata value with base64 padding), unpadded-bin (the same without), disconnect
(a call whose handler sleeps 60 s; the connection is closed after 300 ms, and
"disconnected" printed).
"""

import socket
import struct
import sys
import time

import h2.config
import h2.connection
import h2.events


def frame(payload, compressed=False, length=None):
    length = len(payload) if length is None else length
    return struct.pack(">BI", 1 if compressed else 0, length) + payload


def main():
    host, port = sys.argv[1].rsplit(":", 1)
    case = sys.argv[2]
    headers = [
        (":method", "POST"),
        (":scheme", "http"),
        (":authority", sys.argv[1]),
        (":path", "/steadfast.test.Echo/Unary"),
        ("content-type", "application/grpc"),
        ("te", "trailers"),
    ]
    # EchoRequest { message: "hi" }
    message = b"\x0a\x02hi"
    end = True
    if case == "oversized":
        body = frame(b"\x0a\x02hi", length=0xFFFFFFF0)
        end = False
    elif case == "compressed-no-encoding":
        body = frame(message, compressed=True)
    elif case == "truncated":
        body = frame(b"\x0a\x01h", length=10)
    elif case == "bad-timeout":
        headers.append(("grpc-timeout", "1x"))
        body = frame(message)
    elif case in ("padded-bin", "unpadded-bin"):
        # HelloRequest { name: "hi" } has the same bytes as EchoRequest { message: "hi" }.
        headers[3] = (":path", "/steadfast.example.Greeter/SayHello")
        # b"\x01\x02" is "AQI=" in padded base64.
        headers.append(("x-trace-bin", "AQI=" if case == "padded-bin" else "AQI"))
        body = frame(message)
    elif case == "disconnect":
        # EchoRequest { message: "lost", sleep_ms: 60000 }
        body = frame(b"\x0a\x04lost\x18\xe0\xd4\x03")
    else:
        raise SystemExit(f"unknown case {case}")

    sock = socket.create_connection((host, int(port)), timeout=5)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    conn.initiate_connection()
    conn.send_headers(1, headers)
    conn.send_data(1, body, end_stream=end)
    sock.sendall(conn.data_to_send())
    if case == "disconnect":
        time.sleep(0.3)
        sock.close()
        print("disconnected")
        print("end", flush=True)
        return

    deadline = time.monotonic() + 5
    done = False
    while not done:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            print("timeout")
            break
        if not data:
            print("closed")
            break
        for event in conn.receive_data(data):
            if isinstance(event, (h2.events.ResponseReceived, h2.events.TrailersReceived)):
                for name, value in event.headers:
                    print(f"{name.decode()}: {value.decode()}")
            elif isinstance(event, h2.events.DataReceived):
                conn.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
                print(f"data {event.data.hex()}")
            elif isinstance(event, h2.events.StreamReset):
                print(f"reset {int(event.error_code)}")
                done = True
            elif isinstance(event, h2.events.ConnectionTerminated):
                print(f"goaway {int(event.error_code)}")
                done = True
            if isinstance(event, h2.events.StreamEnded):
                done = True
        out = conn.data_to_send()
        if out:
            sock.sendall(out)
    print("end", flush=True)
    sock.close()


if __name__ == "__main__":
    main()
