#!/usr/bin/env python3
"""Proxy benchmark: `steadfast proxy` against nginx `grpc_pass`, side by side in the
same run, with calls straight to the backend as the baseline (issue 12).

Backend: `steadfast --threads 1 serve` (grpc.testing.TestService, EmptyCall).

Throughput and latency: h2load POSTs an EmptyCall request body (`-d`, the 5-byte
prefix of an empty message) with content-type application/grpc and te trailers, at
`-t 1 -c CLIENTS -m STREAMS`, to
- **direct**: the backend itself;
- **steadfast**: `steadfast --threads 1 proxy --listen … --backend …` (h2c, round
  robin, grpc.health.v1 checks, defaults otherwise);
- **nginx**: Debian's nginx, one worker, `grpc_pass grpc://upstream` with `keepalive
  32` in the upstream block, and `keepalive_requests` raised on both sides (nginx's
  default, 1000 requests per client connection, would end h2load's connections with
  GOAWAY mid-run, and h2load does not reconnect).
h2load cannot see grpc-status, so before each measurement a preflight sends the same
call through the same path over Python h2 and checks :status 200, the empty response
message and grpc-status 0. Reported per target: req/s; p50/p99 from h2load's
per-request log (`--log-file`) and its "time for request" mean/sd, added latency vs
direct; the proxy's CPU time per call and how busy its CPU was (utime + stime from
/proc, master and worker for nginx). Then an unloaded latency run (`-c 1 -m 1`): what a
proxy adds to one call at a time.

Pinning (2 CPUs): the proxy (steadfast or nginx) alone on CPU 1, one thread / one
worker; the backend and h2load share CPU 0 — the same for both proxies, and for
direct (where CPU 1 stays idle). So a proxy is limited only by its own CPU; when it
is not saturated (its busy % well under 100), CPU 0 (backend + h2load) is the limit
and the req/s ratio understates the difference: compare CPU µs/call then.

Rolling deploy: three `steadfast serve --grace 5` backends on fixed ports (CPU 0), a
proxy in front of all three (CPU 1; nginx: one upstream with the three servers,
round robin, `keepalive 32`, defaults otherwise), and a Python grpcio client (CPU 0)
calling EmptyCall in a loop from 4 threads, one channel each (5 s deadline). Each
backend in turn gets SIGTERM, the script waits for it to exit, starts it again on the
same port, and waits until it serves calls again (its /metrics counter) before the
next. Reported: calls ok, failed, and each distinct failure (code and message) with
its count.

Rounds run the targets in an order rotated each round; medians of the rounds are
reported, ratios are medians of per-round ratios. The machine is shared: the CPU
that other processes took from CPUs 0 and 1 during the measurements is reported too.

Proxy (results of `bench/proxy.py --rounds 5 --nice -10`, 2026-12-02, 2 vCPUs shared
with other builds — other processes took a median 0.9 of the 2 CPUs; nginx 1.22.1):
- EmptyCall, 256 calls in flight: direct 41.3k req/s; steadfast proxy 15.7k req/s,
  26.5 µs proxy CPU/call; nginx keepalive 32: 5.5k, 71 µs; nginx keepalive 256: 8.5k,
  47 µs. steadfast ÷ nginx: 2.5× / 1.8× req/s, 2.8× / 1.8× less proxy CPU per call.
  Behind nginx the backend spends 64-87 µs per call instead of ~20: grpc_pass sends
  one call at a time on each upstream connection, so 256 calls in flight take 256
  backend connections (and, with keepalive 32, a new connection for most calls).
- Neither proxy saturates its CPU (~40% busy): with every hop a wake-up on a shared
  2-vCPU VM, req/s follow the machine's load (a quieter 1-round run gave steadfast 2.5×
  nginx-256, a busier 3-round one 1.4×); the CPU per call is the steadier figure.
- One call at a time, steadfast adds ~125 µs at p50, nginx ~90 µs.
- Rolling deploys (15 graceful restarts each): no call failed through either; a
  restarted backend gets calls again after ~1 s through steadfast (health checks,
  reconnect), ~11 s through nginx (max_fails=1 fail_timeout=10s).
- 256 calls in flight is also the backends' SETTINGS_MAX_CONCURRENT_STREAMS (steadfast
  serve's default), and round_robin keeps one connection per backend, so calls may
  queue in the proxy. An ad-hoc sweep hinted it costs req/s; a 3-round run with
  `--backend-max-streams 2000` did not confirm it (steadfast 15.8k req/s, 26.4 µs/call;
  p99 30 ms rather than 60; nginx-256 10.5k, 46 µs).

Usage: bench/proxy.py [--rounds R] [--requests N] [--latency-requests L] [--clients C]
                      [--streams M] [--threads T] [--settle S] [--nice N]
                      [--backend-max-streams S]
                      [--only throughput|rolling] [--no-build]
"""
import argparse
import collections
import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.request

from benchlib import cpu_seconds, free_port, grpc_preflight, machine_cpu_seconds, stop_process, wait_listening

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STEADFAST = os.path.join(ROOT, "target", "release", "steadfast")
PATH = "/grpc.testing.TestService/EmptyCall"
BODY = b"\x00\x00\x00\x00\x00"  # an uncompressed, empty message
PROXIES = ["steadfast", "nginx"]  # the rolling deploy
NGINX_KEEPALIVE = 32
BACKEND_CPU, PROXY_CPU, LOAD_CPU = "0", "1", "0"


def tree_cpu_seconds(pid):
    """cpu_seconds of a process and its live descendants (nginx: master and worker)."""
    total = 0.0
    try:
        total += cpu_seconds(pid)
        with open(f"/proc/{pid}/task/{pid}/children") as f:
            children = [int(c) for c in f.read().split()]
    except OSError:
        return total
    for c in children:
        total += tree_cpu_seconds(c)
    return total


def start(cmd, cpu, port, **kw):
    proc = subprocess.Popen(["taskset", "-c", cpu] + cmd, stdout=subprocess.DEVNULL,
                            stderr=kw.pop("stderr", subprocess.DEVNULL), **kw)
    try:
        wait_listening(port)
    except RuntimeError:
        proc.kill()
        raise RuntimeError(f"{cmd[0]} did not listen on {port}: {' '.join(cmd)}")
    return proc


BACKEND_STREAMS = None  # --backend-max-streams (None: steadfast serve's default, 256)


def backend_cmd(port, metrics=None, grace=None):
    cmd = [STEADFAST, "--threads", "1", "serve", "--listen", f"127.0.0.1:{port}"]
    if BACKEND_STREAMS:
        cmd += ["--max-concurrent-streams", str(BACKEND_STREAMS)]
    if metrics:
        cmd += ["--metrics", f"127.0.0.1:{metrics}"]
    if grace is not None:
        cmd += ["--grace", str(grace)]
    return cmd


def steadfast_cmd(port, backends):
    cmd = [STEADFAST, "--threads", "1", "proxy", "--listen", f"127.0.0.1:{port}"]
    for b in backends:
        cmd += ["--backend", f"127.0.0.1:{b}"]
    return cmd


NGINX_CONF = """\
worker_processes 1;
daemon off;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {dir}/body;
    proxy_temp_path {dir}/proxy;
    fastcgi_temp_path {dir}/fastcgi;
    uwsgi_temp_path {dir}/uwsgi;
    scgi_temp_path {dir}/scgi;
    upstream backend {{
{servers}
        keepalive {keepalive};
        keepalive_requests 1000000;
    }}
    server {{
        listen 127.0.0.1:{port} http2;
        keepalive_requests 1000000;
        location / {{
            grpc_pass grpc://backend;
        }}
    }}
}}
"""


def nginx_conf(tmp, port, backends, keepalive=NGINX_KEEPALIVE):
    d = tempfile.mkdtemp(dir=tmp, prefix="nginx-")
    os.chmod(d, 0o755)
    conf = os.path.join(d, "nginx.conf")
    servers = "\n".join(f"        server 127.0.0.1:{b};" for b in backends)
    with open(conf, "w") as f:
        f.write(NGINX_CONF.format(dir=d, port=port, servers=servers, keepalive=keepalive))
    return d, conf


def start_proxy(kind, tmp, backends, keepalive=NGINX_KEEPALIVE):
    """(process, port, config text) of a proxy in front of `backends`, on PROXY_CPU;
    nginx with `keepalive` idle upstream connections kept."""
    port = free_port()
    if kind == "steadfast":
        cmd = steadfast_cmd(port, backends)
        return start(cmd, PROXY_CPU, port), port, " ".join(cmd)
    d, conf = nginx_conf(tmp, port, backends, keepalive)
    proc = start(["nginx", "-p", d, "-c", conf], PROXY_CPU, port)
    with open(conf) as f:
        return proc, port, f.read().replace(d, "DIR")


def preflight(port):
    """One EmptyCall with h2load's body and headers over Python h2: :status 200, the
    empty message, grpc-status 0."""
    grpc_preflight(port, PATH, BODY, BODY, "preflight")


def h2load_cmd(port, n, clients, streams, body_file, log_file=None):
    cmd = ["taskset", "-c", LOAD_CPU, "h2load", "-t", "1", "-n", str(n), "-c", str(clients), "-m", str(streams),
           "-d", body_file, "-H", "content-type: application/grpc", "-H", "te: trailers"]
    if log_file:
        cmd += ["--log-file", log_file]
    return cmd + [f"http://127.0.0.1:{port}{PATH}"]


def to_us(value, unit):
    return float(value) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]


def h2load(port, n, clients, streams, body_file, log_file=None):
    if log_file and os.path.exists(log_file):
        os.remove(log_file)  # h2load appends
    out = subprocess.run(h2load_cmd(port, n, clients, streams, body_file, log_file),
                         capture_output=True, text=True, timeout=600).stdout
    m = re.search(r"finished in [\d.]+\w+, ([\d.]+) req/s", out)
    ok = re.search(r"requests: \d+ total, \d+ started, \d+ done, (\d+) succeeded", out)
    codes = re.search(r"status codes: (\d+) 2xx", out)
    if not m or not ok or int(ok.group(1)) != n or not codes or int(codes.group(1)) != n:
        raise RuntimeError(f"h2load failed:\n{out}")
    result = {"rps": float(m.group(1))}
    t = re.search(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", out)
    if t:
        result["min"], result["max"], result["mean"], result["sd"] = (
            to_us(t.group(i), t.group(i + 1)) for i in (1, 3, 5, 7))
    if log_file:
        with open(log_file) as f:
            lat = sorted(int(line.split("\t")[2]) for line in f if line.strip())
        if len(lat) != n:
            raise RuntimeError(f"h2load logged {len(lat)} requests of {n}")
        result["p50"] = lat[len(lat) // 2]
        result["p99"] = lat[min(len(lat) - 1, int(len(lat) * 0.99))]
    return result


def rotated(items, r):
    k = r % len(items)
    return items[k:] + items[:k]


def median(values):
    return statistics.median(values) if values else float("nan")


def targets(args):
    """(name, proxy kind or None, nginx keepalive): direct, steadfast, nginx with
    keepalive 32, and nginx with keepalive for every call in flight (nginx sends one
    call at a time on each upstream connection, so with fewer idle connections kept
    than calls in flight it keeps connecting and closing)."""
    wide = args.clients * args.streams
    return [("direct", None, None), ("steadfast", "steadfast", None),
            (f"nginx (keepalive {NGINX_KEEPALIVE})", "nginx", NGINX_KEEPALIVE),
            (f"nginx (keepalive {wide})", "nginx", wide)]


def throughput_bench(args, tmp):
    body = os.path.join(tmp, "empty.bin")
    with open(body, "wb") as f:
        f.write(BODY)
    order = targets(args)
    names = [t[0] for t in order]
    res = {t: collections.defaultdict(list) for t in names}
    others, configs = [], {}
    for r in range(args.rounds):
        bport = free_port()
        backend = start(backend_cmd(bport), BACKEND_CPU, bport)
        try:
            for name, kind, keepalive in rotated(order, r):
                proxy = None
                try:
                    if kind is None:
                        port = bport
                    else:
                        proxy, port, configs[name] = start_proxy(kind, tmp, [bport], keepalive)
                    preflight(port)
                    h2load(port, min(args.requests, 20000), args.clients, args.streams, body)  # warm up
                    pid = proxy.pid if proxy else None
                    cpu0 = tree_cpu_seconds(pid) if pid else 0.0
                    m0, b0, t0 = machine_cpu_seconds(), cpu_seconds(backend.pid), time.monotonic()
                    c0 = os.times()
                    log = os.path.join(tmp, "h2load.log")
                    load = h2load(port, args.requests, args.clients, args.streams, body, log)
                    wall = time.monotonic() - t0
                    c1 = os.times()
                    cpu = tree_cpu_seconds(pid) - cpu0 if pid else 0.0
                    bcpu = cpu_seconds(backend.pid) - b0
                    h2load_cpu = (c1.children_user + c1.children_system) - (c0.children_user + c0.children_system)
                    others.append(max(0.0, (machine_cpu_seconds() - m0 - cpu - bcpu - h2load_cpu) / wall))
                    quiet = h2load(port, args.latency_requests, 1, 1, body, log)
                    preflight(port)  # still answering grpc-status 0 after the load
                finally:
                    if proxy:
                        stop_process(proxy)
                out = res[name]
                for k in ("rps", "p50", "p99", "mean", "sd"):
                    out[k].append(load[k])
                out["q50"].append(quiet["p50"])
                out["q99"].append(quiet["p99"])
                out["backend_us"].append(bcpu * 1e6 / args.requests)
                out["cpu_us"].append(cpu * 1e6 / args.requests)
                out["busy"].append(100 * cpu / wall)
                print(f"round {r + 1} {name}: {load['rps']:,.0f} req/s, p50 {load['p50']} µs, p99 {load['p99']} µs, "
                      f"backend {bcpu * 1e6 / args.requests:.1f} µs CPU/call"
                      + (f", proxy {cpu * 1e6 / args.requests:.1f} µs CPU/call ({100 * cpu / wall:.0f}% busy)" if proxy else "")
                      + f"; unloaded p50 {quiet['p50']} µs p99 {quiet['p99']} µs (other processes: {others[-1]:.2f} CPUs)",
                      file=sys.stderr)
        finally:
            stop_process(backend)
    for name in names[1:]:
        for k in ("p50", "p99", "q50", "q99"):
            res[name]["add_" + k] = [a - b for a, b in zip(res[name][k], res["direct"][k])]
    cmd = " ".join(h2load_cmd("PORT", args.requests, args.clients, args.streams, "empty.bin", "LOG"))
    print(f"\n**Throughput**: `{cmd}` (`empty.bin`: the 5-byte empty EmptyCall message; a warm-up of "
          f"{min(args.requests, 20000)} requests first; grpc-status 0 checked before and after). Backend "
          f"`steadfast --threads 1 serve{backend_streams_note()}` and h2load on CPU 0, the proxy alone on CPU 1 (one thread; nginx one "
          f"worker){priority_note(args)}. Median of {args.rounds} interleaved rounds; other processes took a median "
          f"{median(others):.2f} of the 2 CPUs meanwhile.\n")
    print("| target | req/s | p50 µs | p99 µs | mean ± sd µs | added p50 / p99 µs | proxy CPU µs/call | proxy CPU busy | backend CPU µs/call |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in names:
        o = res[name]
        direct = name == "direct"
        added = "—" if direct else f"{median(o['add_p50']):+,.0f} / {median(o['add_p99']):+,.0f}"
        cpu = "— | —" if direct else f"{median(o['cpu_us']):.1f} | {median(o['busy']):.0f}%"
        print(f"| {name} | {median(o['rps']):,.0f} | {median(o['p50']):,.0f} | {median(o['p99']):,.0f} | "
              f"{median(o['mean']):,.0f} ± {median(o['sd']):,.0f} | {added} | {cpu} | {median(o['backend_us']):.1f} |")
    print()
    sf = res["steadfast"]
    for name in names[2:]:
        o = res[name]
        rps = median([a / b for a, b in zip(sf["rps"], o["rps"])])
        cpu = median([b / a for a, b in zip(sf["cpu_us"], o["cpu_us"])])
        print(f"- steadfast ÷ {name}: **{rps:.2f}×** req/s (goal ≥ 1.5×); {name} ÷ steadfast, proxy CPU per call: "
              f"**{cpu:.2f}×**")
    print(f"\n**Unloaded latency**: the same with `-c 1 -m 1 -n {args.latency_requests}` (one call at a time).\n")
    print("| target | p50 µs | p99 µs | added p50 / p99 µs |")
    print("|---|---:|---:|---:|")
    for name in names:
        o = res[name]
        added = "—" if name == "direct" else f"{median(o['add_q50']):+,.0f} / {median(o['add_q99']):+,.0f}"
        print(f"| {name} | {median(o['q50']):,.0f} | {median(o['q99']):,.0f} | {added} |")
    print(f"\nThe proxies: `{configs.get('steadfast', '')}` (ports vary); nginx {nginx_version()}, "
          f"`nginx -p DIR -c DIR/nginx.conf` with (keepalive {NGINX_KEEPALIVE}; the other run differs only there):\n")
    print("```nginx\n" + configs.get(names[2], "").rstrip() + "\n```")


def backend_streams_note():
    return f" --max-concurrent-streams {BACKEND_STREAMS}" if BACKEND_STREAMS else ""


def priority_note(args):
    return f", all at nice {args.nice}" if args.nice else ""


def nginx_version():
    out = subprocess.run(["nginx", "-v"], capture_output=True, text=True)
    return out.stderr.strip().split("/")[-1]


LOAD_SCRIPT = textwrap.dedent("""\
    import json, sys, threading, grpc
    target, threads = sys.argv[1], int(sys.argv[2])
    stop, lock, started = threading.Event(), threading.Lock(), threading.Event()
    ok, failed = [0], {}
    def worker():
        opts = [("grpc.enable_http_proxy", 0)]
        with grpc.insecure_channel(target, options=opts) as channel:
            call = channel.unary_unary("/grpc.testing.TestService/EmptyCall",
                                       request_serializer=lambda x: x, response_deserializer=lambda x: x)
            while not stop.is_set():
                try:
                    call(b"", timeout=5)
                    with lock:
                        ok[0] += 1
                    if not started.is_set():
                        started.set()
                        print("started", flush=True)
                except grpc.RpcError as e:
                    key = f"{e.code().name}: {e.details()}"
                    with lock:
                        failed[key] = failed.get(key, 0) + 1
    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for w in workers:
        w.start()
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    stop.set()
    for w in workers:
        w.join()
    print(json.dumps({"ok": ok[0], "failed": failed}), flush=True)
""")


def emptycalls_served(metrics_port):
    """EmptyCalls a backend started, from its /metrics (0 if it does not answer)."""
    try:
        text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=2).read().decode()
    except OSError:
        return 0
    total = 0
    for line in text.splitlines():
        if line.startswith("grpc_server_call_started") and "EmptyCall" in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


class RollingBackend:
    def __init__(self, port, metrics):
        self.port, self.metrics, self.proc = port, metrics, None

    def start(self):
        self.proc = start(backend_cmd(self.port, self.metrics, grace=5), BACKEND_CPU, self.port)

    def stop(self):
        """SIGTERM and wait for it to exit (it drains for at most --grace 5 s)."""
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"backend {self.port} did not exit within 15 s of SIGTERM")
        self.proc = None


def rolling_once(kind, tmp, backends, threads, settle):
    for b in backends:
        b.start()
    proxy, port, _ = start_proxy(kind, tmp, [b.port for b in backends])
    script = os.path.join(tmp, "grpcio_load.py")
    with open(script, "w") as f:
        f.write(LOAD_SCRIPT)
    env = dict(os.environ, GRPC_ENABLE_FORK_SUPPORT="0")
    load = subprocess.Popen(["taskset", "-c", LOAD_CPU, sys.executable, script, f"127.0.0.1:{port}", str(threads)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, env=env)
    back = []
    try:
        if load.stdout.readline().strip() != "started":
            raise RuntimeError("the grpcio load did not start")
        t_load = time.monotonic()
        time.sleep(settle)
        for b in backends:
            t0 = time.monotonic()
            b.stop()
            down = time.monotonic() - t0
            b.start()
            # Until the new process served calls through the proxy (bounded).
            t1 = time.monotonic()
            while emptycalls_served(b.metrics) < 20 and time.monotonic() - t1 < 30:
                time.sleep(0.05)
            back.append((down, time.monotonic() - t1, emptycalls_served(b.metrics) >= 20))
            time.sleep(settle)
        load.stdin.write("stop\n")
        load.stdin.flush()
        result = json.loads(load.stdout.readline())
        result["seconds"] = time.monotonic() - t_load
        load.wait(30)
    finally:
        if load.poll() is None:
            load.kill()
            load.wait()
        stop_process(proxy)
        for b in backends:
            if b.proc:
                stop_process(b.proc)
                b.proc = None
    return result, back


def rolling_bench(args, tmp):
    ports = [(free_port(), free_port()) for _ in range(3)]
    res = {p: {"ok": 0, "seconds": 0.0, "failed": collections.Counter(), "back": []} for p in PROXIES}
    for r in range(args.rounds):
        for kind in rotated(PROXIES, r):
            backends = [RollingBackend(p, m) for p, m in ports]
            result, back = rolling_once(kind, tmp, backends, args.threads, args.settle)
            res[kind]["ok"] += result["ok"]
            res[kind]["seconds"] += result["seconds"]
            res[kind]["failed"].update(result["failed"])
            res[kind]["back"] += back
            print(f"round {r + 1} rolling {kind}: {result['ok']} ok in {result['seconds']:.1f} s, {sum(result['failed'].values())} failed "
                  f"{dict(result['failed'])}; restarts: "
                  + ", ".join(f"down {d:.1f} s, serving again after {s:.1f} s" + ("" if ok else " (NOT SERVING)")
                              for d, s, ok in back), file=sys.stderr)
    print(f"\n**Rolling deploy**: 3 backends `steadfast --threads 1 serve --grace 5 --listen 127.0.0.1:PORT` on fixed "
          f"ports (CPU 0), restarted one at a time (SIGTERM, wait for exit, start on the same port, wait until it "
          f"served 20 calls again, {args.settle} s pause) under a Python grpcio {grpc_version()} load: {args.threads} "
          f"threads, one channel each, calling EmptyCall in a loop (5 s deadline), on CPU 0; the proxy on CPU 1 "
          f"(steadfast: `--backend` ×3; nginx: one upstream of the 3, round robin, `keepalive 32`, so `max_fails=1 "
          f"fail_timeout=10s`: a server that failed once is left out for 10 s). "
          f"Totals of {args.rounds} rounds, {3 * args.rounds} restarts per proxy.\n")
    print("| proxy | calls ok | calls failed | failures (count × code: message) | calls/s | restarted backend serving again after (median / max) |")
    print("|---|---:|---:|---|---:|---:|")
    for kind in PROXIES:
        o = res[kind]
        failures = "<br>".join(f"{n} × {msg.replace('|', '/')}" for msg, n in o["failed"].most_common()) or "none"
        backs = [s for _, s, _ in o["back"]]
        never = sum(1 for _, _, ok in o["back"] if not ok)
        back = f"{median(backs):.1f} s / {max(backs):.1f} s" + (f" ({never} never within 30 s)" if never else "")
        print(f"| {kind} | {o['ok']:,} | {sum(o['failed'].values()):,} | {failures} | {o['ok'] / o['seconds']:,.0f} | {back} |")


def grpc_version():
    # Not `import grpc`: this directory's grpc.py (the gRPC benchmark) shadows it.
    from importlib.metadata import version
    return version("grpcio")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--requests", type=int, default=200000, help="h2load requests per throughput measurement")
    ap.add_argument("--latency-requests", type=int, default=5000, help="h2load requests of the -c 1 -m 1 run")
    ap.add_argument("--clients", type=int, default=8, help="h2load connections")
    ap.add_argument("--streams", type=int, default=32, help="h2load streams per connection")
    ap.add_argument("--threads", type=int, default=4, help="grpcio client threads (rolling deploy)")
    ap.add_argument("--settle", type=float, default=1.0, help="seconds of load between restarts")
    ap.add_argument("--backend-max-streams", type=int,
                    help="the backends' SETTINGS_MAX_CONCURRENT_STREAMS (default: steadfast serve's, 256)")
    ap.add_argument("--nice", type=int, default=0,
                    help="run everything at this nice value (e.g. -10 on a machine shared with builds; needs root)")
    ap.add_argument("--only", choices=["throughput", "rolling"])
    ap.add_argument("--no-build", action="store_true")
    args = ap.parse_args()
    for tool in ("h2load", "taskset", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is required (apt-get install nghttp2-client util-linux nginx-light)")
    try:
        import h2  # noqa: F401  (the preflight)
        grpc_version()  # the rolling deploy's client (run as a script of its own)
    except ImportError as e:
        sys.exit(f"{e.name} is required (pip install h2 grpcio)")
    except Exception:
        sys.exit("grpcio is required (pip install grpcio)")
    if not args.no_build:
        subprocess.run(["cargo", "build", "--release", "-q", "-p", "steadfast-cli"], cwd=ROOT, check=True)
    global BACKEND_STREAMS
    BACKEND_STREAMS = args.backend_max_streams
    if args.nice:
        os.nice(args.nice)  # the servers, proxies and load generators inherit it
    print(f"`bench/proxy.py {' '.join(sys.argv[1:])}`")
    tmp = tempfile.mkdtemp()
    os.chmod(tmp, 0o755)  # nginx's worker (nobody) reads its directory
    try:
        if args.only != "rolling":
            throughput_bench(args, tmp)
        if args.only != "throughput":
            rolling_bench(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
