#!/usr/bin/env python3
"""Memory and time bounds under slow or hostile peers: the same attacks against
`steadfast serve` (release build) and nghttpd, side by side.

Every attack runs against a fresh server process (pinned to CPU 0; the attacker is
free to use the other core). The server's RSS is sampled from /proc/PID/status every
10 ms: "peak" is the highest VmRSS during the attack over the RSS before it, "kept"
what is still held once the attacking connections are closed and the server has had
a second to settle.

Attacks (raw frames with Python's hyperframe and hpack, as h2's own stack does):
- stalled: 100 streams GET a 10 MiB file and never read (no WINDOW_UPDATE); a good
  client on another connection meanwhile runs h2load, whose worst latency is shown.
- hoard: 50 connections open as many POST streams as the server allows (at most 256),
  each with a request body that never ends (one 1 KiB DATA frame); the attacker opens
  its connection window and reads what it is sent, so the figure is the cost of
  holding streams.
- slow-body: one request body that stops after 1 KiB: how long until the server
  resets the stream (RST_STREAM code), within --slow-wait seconds.
- stalled-time: one download of the 10 MiB file that is never read (no
  WINDOW_UPDATE): how long until the server resets it, within --slow-wait seconds.
- rapid-reset: 20 connections each open and cancel (HEADERS then RST_STREAM) streams
  as fast as they can for 2 s (CVE-2023-44487), then close.
- hpack-bomb: one connection puts a 4 KiB header in the HPACK table, then sends
  requests that reference it 20 times each (80 KiB decoded from 20 bytes): how many
  such blocks before the server closes the connection.
- idle: connections that complete the handshake and then do nothing: how long until
  the server closes them (within --slow-wait seconds).

Usage: bench/hostile.py [--no-build] [--only ATTACK[,ATTACK]] [--slow-wait S]
                        [--steadfast-bin PATH] [--steadfast-arg ARG]...
"""
import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

from hpack import Encoder
from hyperframe.frame import (
    DataFrame, Frame, GoAwayFrame, HeadersFrame, PingFrame, RstStreamFrame, SettingsFrame,
    WindowUpdateFrame,
)

from benchlib import free_port, wait_listening

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
MAX_CONCURRENT_STREAMS = 0x3
BIG_FILE = "big.bin"
BIG_SIZE = 10 << 20




def rss_kb(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Sampler:
    """Samples a process's VmRSS every 10 ms; `peak` is the highest seen."""

    def __init__(self, pid):
        self.pid, self.peak, self.stop = pid, rss_kb(pid), False
        self.thread = threading.Thread(target=self.run, daemon=True)
        self.thread.start()

    def run(self):
        while not self.stop:
            try:
                self.peak = max(self.peak, rss_kb(self.pid))
            except OSError:
                return
            time.sleep(0.01)

    def finish(self):
        self.stop = True
        self.thread.join()
        return self.peak


class Server:
    def __init__(self, name, argv):
        self.name, self.argv = name, argv
        self.proc = None
        self.port = None

    def start(self):
        self.port = free_port()
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        self.proc = subprocess.Popen(["taskset", "-c", "0"] + argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.port)
        # Warm up: one connection with a request, so that lazily created state
        # (runtime workers, file caches) is in the baseline.
        c = Conn(self.port)
        c.handshake()
        c.get(1, "/")
        c.read_response(1)
        c.close()
        time.sleep(0.3)

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


class Conn:
    """A raw HTTP/2 client connection speaking frames."""

    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.enc = Encoder()
        self.max_streams = None
        self.closed = False

    def send(self, *frames):
        self.sock.sendall(b"".join(f.serialize() for f in frames))

    def handshake(self, window_ack=True):
        self.sock.sendall(PREFACE)
        self.send(SettingsFrame(0))
        while True:
            f = self.recv()
            if f is None:
                raise RuntimeError("closed during handshake")
            if isinstance(f, SettingsFrame) and "ACK" not in f.flags:
                self.max_streams = f.settings.get(MAX_CONCURRENT_STREAMS)
                self.send(SettingsFrame(0, flags=["ACK"]))
                return

    def recv(self):
        """The next frame, or None at EOF (or reset)."""
        while True:
            if len(self.buf) >= 9:
                header, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
                if len(self.buf) >= 9 + length:
                    header.parse_body(memoryview(self.buf[9:9 + length]))
                    self.buf = self.buf[9 + length:]
                    return header
            try:
                chunk = self.sock.recv(65536)
            except (ConnectionResetError, BrokenPipeError):
                chunk = b""
            if not chunk:
                self.closed = True
                return None
            self.buf += chunk

    def headers(self, stream_id, method, path, end_stream, extra=()):
        fields = [(":method", method), (":scheme", "http"), (":authority", "bench"), (":path", path)]
        fields.extend(extra)
        f = HeadersFrame(stream_id, self.enc.encode(fields))
        f.flags.add("END_HEADERS")
        if end_stream:
            f.flags.add("END_STREAM")
        return f

    def get(self, stream_id, path):
        self.send(self.headers(stream_id, "GET", path, True))

    def read_response(self, stream_id):
        while True:
            f = self.recv()
            if f is None:
                raise RuntimeError("closed before the response")
            if f.stream_id == stream_id and "END_STREAM" in f.flags:
                return

    def ping_roundtrip(self, data=b"benchpng"):
        """Sends a PING and reads until its ACK: every frame sent before it was read."""
        self.send(PingFrame(0, opaque_data=data))
        while True:
            f = self.recv()
            if f is None:
                return False
            if isinstance(f, PingFrame) and "ACK" in f.flags:
                return True

    def close(self):
        # shutdown() first: it sends the FIN even while another thread is blocked
        # reading this socket (close() alone would wait for that read).
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def drain(conn):
    try:
        while conn.sock.recv(65536):
            pass
    except OSError:
        pass


def settle(pid, seconds=1.0):
    time.sleep(seconds)
    return rss_kb(pid)


def good_client_latency(port, seconds=3):
    """h2load on its own connection while an attack runs: worst request latency, ms."""
    out = subprocess.run(["taskset", "-c", "1", "h2load", "-D", str(seconds), "-c", "1", "-m", "1",
                          f"http://127.0.0.1:{port}/"], capture_output=True, text=True, timeout=60).stdout
    ok = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded, (\d+) failed", out)
    m = re.search(r"time for request:\s+([\d.]+)(\w+)\s+([\d.]+)(\w+)", out)
    if not ok or not m:
        return "h2load failed"
    scale = {"us": 0.001, "ms": 1.0, "s": 1000.0}
    worst = float(m.group(3)) * scale.get(m.group(4), 1.0)
    return f"{int(ok.group(1))} ok, {int(ok.group(2))} failed, worst {worst:.1f} ms"


# ---- attacks: each returns a dict of figures ----

def attack_stalled(server):
    pid = server.proc.pid
    before = rss_kb(pid)
    sampler = Sampler(pid)
    c = Conn(server.port)
    c.handshake()
    n = min(100, c.max_streams or 100)
    for i in range(n):
        c.get(1 + 2 * i, "/" + BIG_FILE)
    c.ping_roundtrip()
    latency = good_client_latency(server.port)
    time.sleep(1)
    peak = sampler.finish()
    c.close()
    kept = settle(pid)
    return {"streams": n, "peak_kb": peak - before, "kept_kb": kept - before, "note": f"good client: {latency}"}


def attack_hoard(server, connections=50):
    pid = server.proc.pid
    before = rss_kb(pid)
    sampler = Sampler(pid)
    conns, streams = [], 0
    body = b"x" * 1024
    for _ in range(connections):
        c = Conn(server.port)
        c.handshake()
        c.send(WindowUpdateFrame(0, window_increment=1 << 24))
        n = min(256, c.max_streams or 256)
        frames = []
        for i in range(n):
            sid = 1 + 2 * i
            frames.append(c.headers(sid, "POST", "/echo", False))
            frames.append(DataFrame(sid, body))
        c.send(*frames)
        streams += n
        conns.append(c)
    for c in conns:
        c.ping_roundtrip()
    # Responses (steadfast echoes the 1 KiB) are read and dropped, so what remains is
    # the cost of holding the streams, not of data the attacker refuses to take.
    drains = [threading.Thread(target=drain, args=(c,), daemon=True) for c in conns]
    for t in drains:
        t.start()
    time.sleep(1)
    peak = sampler.finish()
    for c in conns:
        c.close()
    kept = settle(pid, 2.0)
    return {"streams": streams, "peak_kb": peak - before, "kept_kb": kept - before,
            "note": f"{connections} connections"}


def attack_slow_body(server, wait):
    c = Conn(server.port)
    c.handshake()
    c.send(c.headers(1, "POST", "/echo", False), DataFrame(1, b"x" * 1024))
    start = time.time()
    c.sock.settimeout(1.0)
    note = f"not reset within {wait:.0f} s"
    while time.time() - start < wait:
        try:
            f = c.recv()
        except socket.timeout:
            continue
        if f is None:
            note = f"connection closed after {time.time() - start:.1f} s"
            break
        if isinstance(f, RstStreamFrame) and f.stream_id == 1:
            note = f"RST_STREAM code {f.error_code} after {time.time() - start:.1f} s"
            break
        if isinstance(f, GoAwayFrame):
            note = f"GOAWAY code {f.error_code} after {time.time() - start:.1f} s"
            break
    c.close()
    return {"note": note}


def attack_rapid_reset(server, connections=20, seconds=2.0):
    pid = server.proc.pid
    before = rss_kb(pid)
    sampler = Sampler(pid)
    total, cut = [0], [0]

    def one():
        c = Conn(server.port)
        c.handshake()
        c.sock.setblocking(False)
        sid, end = 1, time.time() + seconds
        while time.time() < end:
            batch = []
            for _ in range(50):
                batch.append(c.headers(sid, "GET", "/", True))
                batch.append(RstStreamFrame(sid, error_code=0x8))
                sid += 2
            try:
                c.sock.sendall(b"".join(f.serialize() for f in batch))
                total[0] += 50
            except BlockingIOError:
                time.sleep(0.001)
            except OSError:
                cut[0] += 1
                break
            try:
                while c.sock.recv(65536):
                    pass
            except BlockingIOError:
                pass
            except OSError:
                pass
        c.close()

    threads = [threading.Thread(target=one) for _ in range(connections)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    peak = sampler.finish()
    kept = settle(pid, 2.0)
    return {"streams": total[0], "peak_kb": peak - before, "kept_kb": kept - before,
            "note": f"{connections} connections, {cut[0]} cut by the server"}


def attack_hpack_bomb(server, max_blocks=2000):
    pid = server.proc.pid
    before = rss_kb(pid)
    sampler = Sampler(pid)
    c = Conn(server.port)
    c.handshake()
    # The first request adds a 4 KiB field to the dynamic table (index 62).
    c.send(c.headers(1, "GET", "/", True, [("x-bomb", "b" * 4000)]))
    reason = f"not closed after {max_blocks} blocks"
    for i in range(max_blocks):
        # Static-table pseudo-headers (:authority not indexed, so index 62 stays the
        # bomb), then 20 references to index 62; a PING after each block tells when
        # the server has read it.
        block = bytes([0x82, 0x86, 0x84, 0x01, 0x05]) + b"bench" + bytes([0xbe]) * 20
        f = HeadersFrame(3 + 2 * i, block)
        f.flags.add("END_HEADERS")
        f.flags.add("END_STREAM")
        try:
            c.send(f, PingFrame(0, opaque_data=b"bomb%04d" % (i % 10000)))
        except OSError:
            reason = f"closed after {i + 1} blocks"
            break
        reply = None
        while reply is None:
            f = c.recv()
            if f is None:
                reply = "closed"
            elif isinstance(f, GoAwayFrame):
                reply = f"GOAWAY code {f.error_code}"
            elif isinstance(f, PingFrame) and "ACK" in f.flags:
                reply = "ack"
        if reply != "ack":
            reason = f"{reply} after {i + 1} blocks"
            break
    peak = sampler.finish()
    c.close()
    return {"peak_kb": peak - before, "note": reason}


def attack_stalled_time(server, wait):
    """One download that is never read: how long until the server resets it."""
    c = Conn(server.port)
    c.handshake()
    c.get(1, "/" + BIG_FILE)
    start = time.time()
    c.sock.settimeout(1.0)
    note = f"not reset within {wait:.0f} s"
    while time.time() - start < wait:
        try:
            f = c.recv()
        except socket.timeout:
            continue
        if f is None:
            note = f"connection closed after {time.time() - start:.1f} s"
            break
        if isinstance(f, RstStreamFrame) and f.stream_id == 1:
            note = f"RST_STREAM code {f.error_code} after {time.time() - start:.1f} s"
            break
    c.close()
    return {"note": note}


def attack_idle(server, wait):
    c = Conn(server.port)
    c.handshake()
    start = time.time()
    c.sock.settimeout(1.0)
    note = f"still open after {wait:.0f} s"
    while time.time() - start < wait:
        try:
            f = c.recv()
        except socket.timeout:
            continue
        if f is None:
            note = f"closed after {time.time() - start:.1f} s"
            break
        if isinstance(f, GoAwayFrame):
            note = f"GOAWAY code {f.error_code} {f.additional_data.decode(errors='replace')!r} after {time.time() - start:.1f} s"
            break
    c.close()
    return {"note": note}


ATTACKS = ["stalled", "hoard", "slow-body", "stalled-time", "rapid-reset", "hpack-bomb", "idle"]


def run_attack(name, server, args):
    if name == "stalled":
        return attack_stalled(server)
    if name == "hoard":
        return attack_hoard(server)
    if name == "slow-body":
        return attack_slow_body(server, args.slow_wait)
    if name == "stalled-time":
        return attack_stalled_time(server, args.slow_wait)
    if name == "rapid-reset":
        return attack_rapid_reset(server)
    if name == "hpack-bomb":
        return attack_hpack_bomb(server)
    if name == "idle":
        return attack_idle(server, args.slow_wait)
    raise ValueError(name)


def mib(kb):
    return f"{kb / 1024:+.1f}"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--only", default=",".join(ATTACKS))
    ap.add_argument("--slow-wait", type=float, default=80.0,
                    help="how long slow-body, stalled-time and idle wait for the server to act (s)")
    ap.add_argument("--steadfast-bin", default=f"{ROOT}/target/release/steadfast",
                    help="the steadfast binary (e.g. an older build, for before/after)")
    ap.add_argument("--steadfast-arg", action="append", default=[],
                    help="extra argument for steadfast serve (repeatable)")
    args = ap.parse_args()
    for tool in ("h2load", "nghttpd", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (apt-get install nghttp2-client nghttp2-server util-linux)")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "steadfast-cli"], cwd=ROOT, check=True)
    docroot = tempfile.mkdtemp()
    with open(os.path.join(docroot, "index.html"), "w") as f:
        f.write("hello from steadfast\n")
    with open(os.path.join(docroot, BIG_FILE), "wb") as f:
        f.write(os.urandom(BIG_SIZE))
    servers = [
        Server("steadfast", [args.steadfast_bin, "--threads", "1", "serve", "--listen",
                             "127.0.0.1:{port}", "--root", docroot] + args.steadfast_arg),
        Server("nghttpd", ["nghttpd", "--no-tls", "-d", docroot, "{port}"]),
    ]
    # POST /echo on nghttpd: any path; it holds the stream until the body ends.
    rows = []
    try:
        for name in args.only.split(","):
            for s in servers:
                s.start()
                try:
                    r = run_attack(name, s, args)
                finally:
                    s.stop()
                rows.append((name, s.name, r))
                print(f"{name} {s.name}: {r}", file=sys.stderr)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(docroot, ignore_errors=True)
    print("\nserver pinned to CPU 0, one runtime thread for steadfast (--threads 1); RSS in MiB over the "
          "server's RSS before the attack\n")
    print("| attack | server | streams | peak MiB | KiB/stream at peak | kept after close MiB | notes |")
    print("|---|---|---:|---:|---:|---:|---|")
    for name, server, r in rows:
        streams = r.get("streams")
        peak = r.get("peak_kb")
        per = f"{peak / streams:.1f}" if streams and peak is not None else ""
        print(f"| {name} | {server} | {streams or ''} | {mib(peak) if peak is not None else ''} | {per} | "
              f"{mib(r['kept_kb']) if 'kept_kb' in r else ''} | {r.get('note', '')} |")


if __name__ == "__main__":
    main()
