#!/usr/bin/env python3
"""Bulk-transfer benchmark: 100 MiB downloads and uploads over one h2c connection,
`steadfast serve` and nghttpd side by side in the same run.

Four cases, each with h2load on one connection (-c 1):
- download, 1 stream: GET of a 100 MiB file (-n 1);
- download, 8 streams: 8 concurrent GETs of it (-n 8 -m 8);
- upload, 1 stream / 8 streams: POST of a 100 MiB body (-d FILE) to a path where the
  server reads and discards the body and answers a few bytes (steadfast:
  `POST /discard`; nghttpd: a POST to a small file, whose body it drops).

h2load advertises large windows (-w 30 -W 30) so the download is limited by the server,
not by the client. For uploads the servers' receive windows decide: both get the same,
2^S per stream and 2^C per connection (--window-bits S,C; nghttpd -w S -W C, which is
2^N - 1), by default steadfast's own defaults (1 MiB, 2 MiB); nghttpd's default (64
KiB) would measure the window rather than the stack.

Each server is pinned to CPU 0 and h2load (-t 1) to CPU 1; rounds are interleaved and
the median is reported. Per server and case: MB/s (payload bytes over h2load's wall
time, MB = 10^6 bytes), server CPU time per MB (run time of all its threads, from schedstat), and
from one extra run traced with strace -c, the server's write-family (download) or
read-family (upload) syscalls per MB.

Usage: bench/bulk.py [--rounds R] [--size-mib N] [--only download1,upload8]
                     [--window-bits S,C] [--no-build] [--no-strace]
"""
import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import free_port, wait_listening

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MIB = 1 << 20
MB = 1e6
# steadfast's default receive windows (Config::initial_stream_window,
# Config::initial_connection_window) as powers of two.
DEFAULT_WINDOW_BITS = "20,21"
WRITES = ("write", "writev", "sendto", "sendmsg", "sendfile", "sendfile64")
READS = ("read", "readv", "recvfrom", "recvmsg")

CASES = [
    ("download", 1),
    ("download", 8),
    ("upload", 1),
    ("upload", 8),
]




def cpu_seconds(pid):
    """CPU time of a process, all its threads, in seconds: the sum of their
    /proc/PID/task/TID/schedstat run times (nanoseconds; /proc/PID/stat counts in clock
    ticks, too coarse for transfers of a fraction of a second). Threads that exit
    between two readings are lost: none does here (tokio keeps its blocking threads
    for 10 s)."""
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/schedstat") as f:
                total += int(f.read().split()[0])
        except FileNotFoundError:
            pass
    return total / 1e9


class Server:
    def __init__(self, name, argv, upload_path):
        self.name, self.argv, self.upload_path = name, argv, upload_path
        self.proc = None
        self.port = None

    def start(self):
        self.port = free_port()
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        self.proc = subprocess.Popen(["taskset", "-c", "0"] + argv, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_listening(self.port)

    def stop(self):
        if self.proc:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            self.proc = None


def parse_duration(text):
    m = re.search(r"finished in ([\d.]+)(s|ms|us)\b", text)
    if not m:
        return None
    return float(m.group(1)) / {"s": 1, "ms": 1e3, "us": 1e6}[m.group(2)]


def h2load(server, kind, streams, upload_file, size):
    """Runs one case; returns the wall time in seconds (h2load's own measure)."""
    path = "/big.bin" if kind == "download" else server.upload_path
    cmd = ["taskset", "-c", "1", "h2load", "-t", "1", "-c", "1", "-n", str(streams), "-m", str(streams),
           "-w", "30", "-W", "30"]
    if kind == "upload":
        cmd += ["-d", upload_file]
    cmd.append(f"http://127.0.0.1:{server.port}{path}")
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    seconds = parse_duration(out)
    ok = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
    codes = re.search(r"status codes: (\d+) 2xx", out)
    data = re.search(r"\((\d+)\) data", out)
    if (seconds is None or not ok or int(ok.group(1)) != streams or not codes
            or int(codes.group(1)) != streams):
        raise RuntimeError(f"h2load failed against {server.name}: {' '.join(cmd)}\n{out}")
    if kind == "download" and (not data or int(data.group(1)) < size * streams):
        raise RuntimeError(f"short download from {server.name}:\n{out}")
    return seconds


def syscalls_per_mb(server, kind, streams, upload_file, size):
    """One extra run under strace -c: the server's write (download) or read (upload)
    syscalls per MB of payload."""
    out_file = tempfile.mktemp()
    names = WRITES if kind == "download" else READS
    tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out_file, "-e", "trace=" + ",".join(names),
                               "-p", str(server.proc.pid)], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    h2load(server, kind, streams, upload_file, size)
    time.sleep(0.2)
    tracer.terminate()
    tracer.wait(20)
    calls = 0
    with open(out_file) as f:
        for line in f:
            cols = line.split()
            if len(cols) >= 5 and cols[-1] in names:
                calls += int(cols[3])
    os.unlink(out_file)
    return calls / (size * streams / MB)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--size-mib", type=int, default=100)
    ap.add_argument("--no-build", action="store_true")
    ap.add_argument("--no-strace", action="store_true")
    ap.add_argument("--binary", default=f"{ROOT}/target/release/steadfast")
    ap.add_argument("--only", help="cases to run, e.g. download1,upload8")
    ap.add_argument("--window-bits", default=DEFAULT_WINDOW_BITS,
                    help="receive windows of both servers: 2^S per stream, 2^C per connection")
    ap.add_argument("--baseline", help="another steadfast binary (e.g. before a change) to run alongside, "
                    "with its default windows")
    args = ap.parse_args()
    if args.baseline and args.window_bits != DEFAULT_WINDOW_BITS:
        sys.exit("--baseline runs with its default windows: leave --window-bits at its default")
    stream_bits, conn_bits = (int(b) for b in args.window_bits.split(","))
    cases = [c for c in CASES if not args.only or f"{c[0]}{c[1]}" in args.only.split(",")]
    tools = ["h2load", "nghttpd", "taskset"] + ([] if args.no_strace else ["strace"])
    for tool in tools:
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (apt-get install nghttp2-client nghttp2-server util-linux strace)")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "steadfast-cli"], cwd=ROOT, check=True)
    size = args.size_mib * MIB
    docroot = tempfile.mkdtemp()
    big = os.path.join(docroot, "big.bin")
    with open(big, "wb") as f:
        chunk = os.urandom(MIB)
        for _ in range(args.size_mib):
            f.write(chunk)
    # nghttpd answers a POST with the file at its path, after dropping the body.
    with open(os.path.join(docroot, "discard"), "w") as f:
        f.write("ok\n")
    servers = [
        Server("steadfast", [args.binary, "--threads", "1", "serve", "--listen", "127.0.0.1:{port}",
                             "--root", docroot, "--stream-window", str(1 << stream_bits),
                             "--connection-window", str(1 << conn_bits)], "/discard"),
        Server("nghttpd", ["nghttpd", "--no-tls", "-d", docroot, "-w", str(stream_bits),
                           "-W", str(conn_bits), "{port}"], "/discard"),
    ]
    if args.baseline:
        servers.append(Server("baseline", [args.baseline, "--threads", "1", "serve", "--listen",
                                           "127.0.0.1:{port}", "--root", docroot], "/discard"))
    results = {(s.name, c): {"mbps": [], "cpu_ms": []} for s in servers for c in cases}
    try:
        for s in servers:
            s.start()
            for kind, streams in cases:  # warm up: page cache, allocator, code
                h2load(s, kind, streams, big, size)
        for r in range(args.rounds):
            for case in cases:
                kind, streams = case
                for s in servers:
                    cpu0 = cpu_seconds(s.proc.pid)
                    seconds = h2load(s, kind, streams, big, size)
                    time.sleep(0.05)  # let the server finish its side (e.g. closing streams)
                    cpu = cpu_seconds(s.proc.pid) - cpu0
                    mb = size * streams / MB
                    results[(s.name, case)]["mbps"].append(mb / seconds)
                    results[(s.name, case)]["cpu_ms"].append(cpu * 1e3 / mb)
                    print(f"round {r + 1} {kind} x{streams} {s.name}: {mb / seconds:,.0f} MB/s, "
                          f"{cpu * 1e3 / mb:.3f} ms CPU/MB", file=sys.stderr)
        if not args.no_strace:
            for case in cases:
                for s in servers:
                    results[(s.name, case)]["syscalls"] = syscalls_per_mb(s, case[0], case[1], big, size)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(docroot, ignore_errors=True)
    print(f"\nh2load -t 1 -c 1 -w 30 -W 30, {args.size_mib} MiB per stream, one connection, server pinned to "
          f"CPU 0, h2load to CPU 1, median of {args.rounds} interleaved rounds; server receive windows "
          f"2^{stream_bits} per stream, 2^{conn_bits} per connection; MB = 10^6 bytes\n")
    print("| case | steadfast MB/s | nghttpd MB/s | ratio | steadfast CPU ms/MB | nghttpd CPU ms/MB | ratio |"
          + ("" if args.no_strace else " syscalls/MB (steadfast / nghttpd) |"))
    print("|---|---:|---:|---:|---:|---:|---:|" + ("" if args.no_strace else "---:|"))
    for case in cases:
        kind, streams = case
        sf, ng = results[("steadfast", case)], results[("nghttpd", case)]
        sf_mbps, ng_mbps = statistics.median(sf["mbps"]), statistics.median(ng["mbps"])
        sf_cpu, ng_cpu = statistics.median(sf["cpu_ms"]), statistics.median(ng["cpu_ms"])
        line = (f"| {kind}, {streams} stream{'s' if streams > 1 else ''} | {sf_mbps:,.0f} | {ng_mbps:,.0f} | "
                f"{sf_mbps / ng_mbps:.2f} | {sf_cpu:.3f} | {ng_cpu:.3f} | {sf_cpu / ng_cpu:.2f} |")
        if not args.no_strace:
            what = "writes" if kind == "download" else "reads"
            line += f" {what}: {sf['syscalls']:.1f} / {ng['syscalls']:.1f} |"
        print(line)

    if args.baseline:
        print(f"\nbaseline: {args.baseline}\n")
        print("| case | baseline MB/s | steadfast MB/s | baseline CPU ms/MB | steadfast CPU ms/MB |")
        print("|---|---:|---:|---:|---:|")
        for case in cases:
            kind, streams = case
            b, sf = results[("baseline", case)], results[("steadfast", case)]
            print(f"| {kind}, {streams} stream{'s' if streams > 1 else ''} | {statistics.median(b['mbps']):,.0f} | "
                  f"{statistics.median(sf['mbps']):,.0f} | {statistics.median(b['cpu_ms']):.3f} | "
                  f"{statistics.median(sf['cpu_ms']):.3f} |")


if __name__ == "__main__":
    main()
