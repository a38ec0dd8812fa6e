"""Helpers the benchmark scripts in this directory share."""

import os
import socket
import subprocess
import time

TICKS = os.sysconf("SC_CLK_TCK")


def free_port():
    """A free port on 127.0.0.1 (for servers that cannot report the one they bind)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def wait_listening(port, timeout=20):
    """Waits (bounded) until something accepts connections on 127.0.0.1:port."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.02)
    raise RuntimeError(f"nothing listens on {port}")


def cpu_seconds(pid):
    """utime + stime of a process and its threads, in seconds (/proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def machine_cpu_seconds():
    """Busy time (user, nice, system, irq, softirq, steal) of CPUs 0 and 1, in seconds."""
    total = 0
    with open("/proc/stat") as f:
        for line in f:
            cols = line.split()
            if cols[0] in ("cpu0", "cpu1"):
                total += sum(int(cols[i]) for i in (1, 2, 3, 6, 7, 8))
    return total / TICKS


def stop_process(proc):
    """Stops a server: SIGTERM (a graceful shutdown), SIGKILL after 10 s."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def grpc_preflight(port, path, body, expected, what):
    """One gRPC call with h2load's body and headers over Python h2, before a
    measurement: the response must be :status 200 with grpc-status 0 (in the trailers,
    or Trailers-Only) and exactly the `expected` response bytes (5-byte-prefixed
    messages). `what` names the call in errors."""
    import h2.config
    import h2.connection
    import h2.events

    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True, header_encoding="utf-8"))
    sock = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        conn.initiate_connection()
        conn.send_headers(1, [(":method", "POST"), (":scheme", "http"), (":path", path),
                              (":authority", f"127.0.0.1:{port}"), ("content-type", "application/grpc"),
                              ("te", "trailers")])
        conn.send_data(1, body, end_stream=True)
        sock.sendall(conn.data_to_send())
        headers, trailers, data, ended = {}, {}, b"", False
        while not ended:
            chunk = sock.recv(65536)
            if not chunk:
                raise RuntimeError(f"{what}: connection closed before the response ended")
            for event in conn.receive_data(chunk):
                if isinstance(event, h2.events.ResponseReceived):
                    headers = dict(event.headers)
                elif isinstance(event, h2.events.DataReceived):
                    data += event.data
                    conn.acknowledge_received_data(event.flow_controlled_length, 1)
                elif isinstance(event, h2.events.TrailersReceived):
                    trailers = dict(event.headers)
                elif isinstance(event, h2.events.StreamEnded):
                    ended = True
                elif isinstance(event, h2.events.StreamReset):
                    raise RuntimeError(f"{what}: stream reset ({event.error_code})")
            sock.sendall(conn.data_to_send())
    finally:
        sock.close()
    status = trailers.get("grpc-status", headers.get("grpc-status"))
    if headers.get(":status") != "200" or status != "0":
        raise RuntimeError(f"{what}: :status {headers.get(':status')}, grpc-status {status} "
                           f"({trailers.get('grpc-message', headers.get('grpc-message'))!r})")
    if data != expected:
        raise RuntimeError(f"{what}: unexpected response message {data[:32]!r}... ({len(data)} bytes)")
