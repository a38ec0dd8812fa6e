#!/usr/bin/env python3
"""gRPC benchmark: the same grpc.testing.TestService (steadfast-interop's implementation)
on steadfast_grpc::Server and on tonic's own transport, and steadfast_grpc::Channel
against tonic's transport Channel, side by side in the same run.

Server: h2load POSTs a gRPC request body (`-d` a file holding the 5-byte-prefixed
protobuf message) to EmptyCall and to UnaryCall (100-byte payload, response_size 100),
against `grpc-bench server --impl steadfast` (current-thread runtime), `tonic-ct`
(tonic::transport::Server on a current-thread runtime) and `tonic-mt` (multi-thread
runtime; pinned to one CPU, so tokio starts one worker). h2load cannot see grpc-status,
so before each measurement a preflight sends the same body with the same headers
(Python h2) and checks :status 200, the response message and grpc-status 0 in the
trailers. Reported: req/s and the server's CPU time per call (utime + stime from
/proc/PID/stat, all threads).

Client: `grpc-bench client --impl steadfast|tonic`, one connection, --concurrency calls
in flight at once on a current-thread runtime, against one server (steadfast's by
default); calls/s and the client's CPU time per call over the measured window, as the
client process reports them.

Every server is pinned to CPU 0, h2load and the clients to CPU 1; the peers run in
turn within each round (the order rotated each round), and the median of the rounds is
reported; ratios are the medians of the per-round ratios.

Usage: bench/grpc.py [--rounds R] [--requests N] [--clients C] [--streams M]
                     [--duration S] [--concurrency K] [--only server|client] [--no-build]
"""
import argparse
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

from benchlib import cpu_seconds, free_port, grpc_preflight, machine_cpu_seconds, stop_process, wait_listening

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFEST = os.path.join(ROOT, "bench", "grpc-bench", "Cargo.toml")
BINARY = os.path.join(ROOT, "bench", "grpc-bench", "target", "release", "grpc-bench")
SERVERS = ["steadfast", "tonic-ct", "tonic-mt"]
CLIENTS = ["steadfast", "tonic"]
PAYLOAD = 100
# The method and the exact response message each call expects: EmptyCall answers an
# empty message; UnaryCall a SimpleResponse { payload: Payload { body: 100 zero bytes } }.
CALLS = {
    "empty": ("/grpc.testing.TestService/EmptyCall", b""),
    "unary100": ("/grpc.testing.TestService/UnaryCall", bytes([0x0A, PAYLOAD + 2, 0x12, PAYLOAD]) + bytes(PAYLOAD)),
}


def children_cpu_seconds():
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


class OtherLoad:
    """The CPU that processes other than this benchmark's took from its two CPUs over a
    window (this machine is shared): the busy time of CPUs 0 and 1 less the server's and
    the load generator's (a child that has been reaped), in CPUs."""

    def __init__(self, server_pid):
        self.pid = server_pid
        self.t0 = time.monotonic()
        self.m0, self.c0, self.s0 = machine_cpu_seconds(), children_cpu_seconds(), cpu_seconds(server_pid)

    def cpus(self):
        wall = time.monotonic() - self.t0
        ours = (children_cpu_seconds() - self.c0) + (cpu_seconds(self.pid) - self.s0)
        return max(0.0, (machine_cpu_seconds() - self.m0 - ours) / wall)


class Server:
    def __init__(self, impl):
        self.impl = impl
        self.proc = None
        self.port = None

    def start(self):
        self.port = free_port()
        self.proc = subprocess.Popen(["taskset", "-c", "0", BINARY, "server", "--impl", self.impl, "--port", str(self.port)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_listening(self.port)

    def stop(self):
        if self.proc:
            stop_process(self.proc)
            self.proc = None


def preflight(port, call, body):
    """One call with h2load's body and headers over Python h2: the response must be
    :status 200, one uncompressed message equal to the expected one, and grpc-status 0
    in the trailers."""
    path, expected = CALLS[call]
    want = b"\x00" + len(expected).to_bytes(4, "big") + expected
    grpc_preflight(port, path, body, want, call)


def h2load(port, args, call, body_file, n):
    path = CALLS[call][0]
    cmd = ["taskset", "-c", "1", "h2load", "-t", "1", "-n", str(n), "-c", str(args.clients), "-m", str(args.streams),
           "-d", body_file, "-H", "content-type: application/grpc", "-H", "te: trailers",
           f"http://127.0.0.1:{port}{path}"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=600).stdout
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    ok = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
    if not m or not ok or int(ok.group(1)) != n:
        raise RuntimeError(f"h2load failed:\n{out}")
    return float(m.group(1))


def run_client(impl, port, args, call):
    cmd = ["taskset", "-c", "1", BINARY, "client", "--impl", impl, "--target", f"http://127.0.0.1:{port}",
           "--call", call, "--concurrency", str(args.concurrency), "--warmup", f"{args.warmup}s",
           "--duration", f"{args.duration}s"]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=args.warmup + args.duration + 60)
    m = re.search(r"calls=(\d+) seconds=([\d.]+) cpu_seconds=([\d.]+) errors=(\d+)", out.stdout)
    if out.returncode != 0 or not m or int(m.group(4)) != 0 or int(m.group(1)) == 0:
        raise RuntimeError(f"client {impl} failed ({out.returncode}):\n{out.stdout}{out.stderr}")
    calls, seconds, cpu = int(m.group(1)), float(m.group(2)), float(m.group(3))
    return calls, seconds, cpu


def rotated(items, r):
    k = r % len(items)
    return items[k:] + items[:k]


def median(values):
    return statistics.median(values)


def server_bench(args, bodies):
    res = {(c, s): {"rps": [], "cpu_us": []} for c in CALLS for s in SERVERS}
    others = []
    for r in range(args.rounds):
        for call in CALLS:
            for impl in rotated(SERVERS, r):
                server = Server(impl)
                try:
                    server.start()
                    with open(bodies[call], "rb") as f:
                        preflight(server.port, call, f.read())
                    h2load(server.port, args, call, bodies[call], min(args.requests, 20000))  # warm up
                    cpu0 = cpu_seconds(server.proc.pid)
                    load = OtherLoad(server.proc.pid)
                    rps = h2load(server.port, args, call, bodies[call], args.requests)
                    cpu = cpu_seconds(server.proc.pid) - cpu0
                    others.append(load.cpus())
                finally:
                    server.stop()
                res[(call, impl)]["rps"].append(rps)
                res[(call, impl)]["cpu_us"].append(cpu * 1e6 / args.requests)
                print(f"round {r + 1} server {call} {impl}: {rps:,.0f} req/s, {cpu * 1e6 / args.requests:.1f} µs CPU/call "
                      f"(other processes: {others[-1]:.2f} CPUs)", file=sys.stderr)
    print(f"\n**Server**: h2load -t 1 -n {args.requests} -c {args.clients} -m {args.streams}, gRPC POST "
          f"(`-d` body file, content-type application/grpc, te trailers), server pinned to CPU 0, h2load to CPU 1, "
          f"median of {args.rounds} interleaved rounds; other processes took a median {median(others):.2f} "
          f"of the 2 CPUs meanwhile\n")
    print("| call | server | req/s | CPU µs/call | steadfast ÷ this, req/s | steadfast ÷ this, CPU/call |")
    print("|---|---|---:|---:|---:|---:|")
    for call in CALLS:
        base = res[(call, "steadfast")]
        for impl in SERVERS:
            r = res[(call, impl)]
            rps_ratio = median([a / b for a, b in zip(base["rps"], r["rps"])])
            cpu_ratio = median([a / b for a, b in zip(base["cpu_us"], r["cpu_us"])])
            ratios = "" if impl == "steadfast" else f"{rps_ratio:.2f} | {cpu_ratio:.2f}"
            print(f"| {call} | {impl} | {median(r['rps']):,.0f} | {median(r['cpu_us']):.1f} | "
                  f"{ratios if ratios else '— | —'} |")


def client_bench(args):
    res = {(c, i): {"cps": [], "cpu_us": [], "busy": []} for c in CALLS for i in CLIENTS}
    others = []
    for r in range(args.rounds):
        for call in CALLS:
            server = Server(args.client_server)
            try:
                server.start()
                for impl in rotated(CLIENTS, r):
                    load = OtherLoad(server.proc.pid)
                    calls, seconds, cpu = run_client(impl, server.port, args, call)
                    others.append(load.cpus())
                    out = res[(call, impl)]
                    out["cps"].append(calls / seconds)
                    out["cpu_us"].append(cpu * 1e6 / calls)
                    out["busy"].append(100 * cpu / seconds)
                    print(f"round {r + 1} client {call} {impl}: {calls / seconds:,.0f} calls/s, "
                          f"{cpu * 1e6 / calls:.1f} µs CPU/call ({100 * cpu / seconds:.0f}% of a CPU; other processes: {others[-1]:.2f} CPUs)", file=sys.stderr)
            finally:
                server.stop()
    print(f"\n**Client**: one connection, {args.concurrency} calls in flight, current-thread runtime, "
          f"{args.duration} s measured after {args.warmup} s of warm-up, against `grpc-bench server --impl "
          f"{args.client_server}`; server pinned to CPU 0, client to CPU 1, median of {args.rounds} interleaved rounds; other processes took a median "
          f"{median(others):.2f} of the 2 CPUs meanwhile\n")
    print("| call | client | calls/s | client CPU µs/call | client CPU busy | ours ÷ tonic, calls/s | ours ÷ tonic, CPU/call |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for call in CALLS:
        ours, theirs = res[(call, "steadfast")], res[(call, "tonic")]
        cps_ratio = median([a / b for a, b in zip(ours["cps"], theirs["cps"])])
        cpu_ratio = median([a / b for a, b in zip(ours["cpu_us"], theirs["cpu_us"])])
        for impl in CLIENTS:
            r = res[(call, impl)]
            ratios = f"{cps_ratio:.2f} | {cpu_ratio:.2f}" if impl == "steadfast" else "— | —"
            print(f"| {call} | {impl} | {median(r['cps']):,.0f} | {median(r['cpu_us']):.1f} | "
                  f"{median(r['busy']):.0f}% | {ratios} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=100000, help="h2load requests per server measurement")
    ap.add_argument("--clients", type=int, default=8, help="h2load connections")
    ap.add_argument("--streams", type=int, default=32, help="h2load streams per connection")
    ap.add_argument("--concurrency", type=int, default=256, help="client calls in flight")
    ap.add_argument("--duration", type=float, default=10, help="client measured seconds")
    ap.add_argument("--warmup", type=float, default=1, help="client warm-up seconds")
    ap.add_argument("--client-server", default="steadfast", choices=SERVERS,
                    help="the server the client benchmark calls")
    ap.add_argument("--only", choices=["server", "client"])
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    for tool in ("h2load", "taskset"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (apt-get install nghttp2-client util-linux)")
    try:
        import h2  # noqa: F401  (the preflight)
    except ImportError:
        sys.exit("Python h2 is required for the preflight (pip install h2)")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "--manifest-path", MANIFEST], cwd=ROOT, check=True)
    tmp = tempfile.mkdtemp()
    try:
        bodies = {}
        for call in CALLS:
            bodies[call] = os.path.join(tmp, f"{call}.bin")
            subprocess.run([BINARY, "body", "--call", call, "--out", bodies[call]], check=True)
        if args.only != "client":
            server_bench(args, bodies)
        if args.only != "server":
            client_bench(args)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
