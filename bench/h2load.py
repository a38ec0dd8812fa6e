#!/usr/bin/env python3
"""Whole-server HTTP/2 benchmark: h2load GETs against `steadfast serve`, nghttpd and a
hyper server, side by side in the same run.

Each server is pinned to CPU 0 and h2load (-t 1) to CPU 1; rounds are interleaved and
the median is reported. Besides requests/s it reports each server's CPU time per
request (from /proc/PID/stat), write syscalls per request (one extra traced run under
strace -c), peak RSS (VmHWM), and the memory of an idle connection (RSS growth while
holding many idle, handshaken HTTP/2 connections).

Usage: bench/h2load.py [--requests N] [--clients C] [--streams M] [--rounds R]
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

from benchlib import cpu_seconds, free_port, stop_process, wait_listening

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"




def status_kb(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


class Server:
    def __init__(self, name, argv):
        self.name, self.argv = name, argv
        self.proc = None

    def start(self, port):
        argv = [a.replace("{port}", str(port)) for a in self.argv]
        self.proc = subprocess.Popen(["taskset", "-c", "0"] + argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(port)

    def stop(self):
        if self.proc:
            stop_process(self.proc)
            self.proc = None


def h2load(port, args, n):
    cmd = ["taskset", "-c", "1", "h2load", "-t", "1", "-n", str(n), "-c", str(args.clients), "-m", str(args.streams),
           f"http://127.0.0.1:{port}/"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    ok = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
    if not m or not ok or int(ok.group(1)) != n:
        raise RuntimeError(f"h2load failed:\n{out}")
    return float(m.group(1))


def write_syscalls_per_request(server, port, args):
    """Runs a shorter load with strace -c attached and counts write-family syscalls."""
    n = max(args.requests // 4, 10000)
    out_file = tempfile.mktemp()
    tracer = subprocess.Popen(["strace", "-c", "-f", "-o", out_file, "-e", "trace=write,writev,sendto,sendmsg",
                               "-p", str(server.proc.pid)], stderr=subprocess.DEVNULL)
    time.sleep(0.5)
    h2load(port, args, n)
    tracer.terminate()
    tracer.wait(20)
    calls = 0
    with open(out_file) as f:
        for line in f:
            cols = line.split()
            if len(cols) >= 5 and cols[-1] in ("write", "writev", "sendto", "sendmsg"):
                calls += int(cols[3])
    os.unlink(out_file)
    return calls / n


def idle_connection_kb(server, port, count=500):
    """RSS growth per idle connection that completed the HTTP/2 handshake."""
    before = status_kb(server.proc.pid, "VmRSS")
    socks = []
    for _ in range(count):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(PREFACE + EMPTY_SETTINGS)
        socks.append(s)
    for s in socks:
        s.settimeout(5)
        s.recv(4096)  # the server's SETTINGS: it has set the connection up
    time.sleep(0.5)
    after = status_kb(server.proc.pid, "VmRSS")
    for s in socks:
        s.close()
    return (after - before) / count


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=int, default=200000)
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--streams", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    for tool in ("h2load", "nghttpd", "taskset", "strace"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (apt-get install nghttp2-client nghttp2-server util-linux strace)")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "steadfast-cli"], cwd=ROOT, check=True)
        subprocess.run(["cargo", "build", "--release", "-q", "--manifest-path", "bench/hyper-server/Cargo.toml"], cwd=ROOT, check=True)
    docroot = tempfile.mkdtemp()
    with open(os.path.join(docroot, "index.html"), "w") as f:
        f.write("hello from steadfast\n")
    servers = [
        Server("steadfast", [f"{ROOT}/target/release/steadfast", "--threads", "1", "serve", "--listen", "127.0.0.1:{port}"]),
        Server("nghttpd", ["nghttpd", "--no-tls", "-d", docroot, "{port}"]),
        Server("hyper", [f"{ROOT}/bench/hyper-server/target/release/hyper-h2-server", "127.0.0.1:{port}"]),
    ]
    results = {s.name: {"rps": [], "cpu_us": []} for s in servers}
    try:
        for r in range(args.rounds):
            for s in servers:
                port = free_port()
                s.start(port)
                h2load(port, args, min(args.requests, 20000))  # warm up
                cpu0 = cpu_seconds(s.proc.pid)
                rps = h2load(port, args, args.requests)
                cpu = cpu_seconds(s.proc.pid) - cpu0
                results[s.name]["rps"].append(rps)
                results[s.name]["cpu_us"].append(cpu * 1e6 / args.requests)
                if r == args.rounds - 1:
                    results[s.name]["writes"] = write_syscalls_per_request(s, port, args)
                    results[s.name]["idle_kb"] = idle_connection_kb(s, port)
                    results[s.name]["hwm_mb"] = status_kb(s.proc.pid, "VmHWM") / 1024
                s.stop()
                print(f"round {r + 1} {s.name}: {rps:,.0f} req/s", file=sys.stderr)
    finally:
        for s in servers:
            s.stop()
        shutil.rmtree(docroot, ignore_errors=True)
    base = statistics.median(results["nghttpd"]["rps"])
    print(f"\nh2load -t 1 -n {args.requests} -c {args.clients} -m {args.streams}, GET /, server pinned to CPU 0, "
          f"h2load to CPU 1, median of {args.rounds} interleaved rounds\n")
    print("| server | req/s | vs nghttpd | CPU µs/req | write syscalls/req | peak RSS MiB | KiB per idle conn |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for s in servers:
        r = results[s.name]
        rps = statistics.median(r["rps"])
        print(f"| {s.name} | {rps:,.0f} | {rps / base:.2f} | {statistics.median(r['cpu_us']):.2f} | "
              f"{r['writes']:.3f} | {r['hwm_mb']:.1f} | {r['idle_kb']:.1f} |")


if __name__ == "__main__":
    main()
