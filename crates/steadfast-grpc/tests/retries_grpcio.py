"""A Python grpcio server that fails calls as told, for the gRFC A6 tests
(tests/retries.rs).

    python3 retries_grpcio.py server PROTO_DIR OUT_DIR

Serves steadfast.test.Echo on 127.0.0.1, prints its port, stops at EOF on stdin.

Unary's `message` is a plan, `KEY;fail=N;code=C;pushback=P;slow=S`: the first N
attempts of KEY fail with status C (with `grpc-retry-pushback-ms: P` in the trailers
if P is given), and the first S attempts sleep 2 s first (stopping early if the call
is cancelled). Every attempt is logged; ServerStream with `message` KEY streams the log
of KEY: one reply per attempt, `n=N prev=HEADER at_ms=T end=E`, where HEADER is the
grpc-previous-rpc-attempts the attempt carried ("-" for none), T its arrival in ms
since the server started, and E how it ended: "ok", "failed", or "cancelled".
"""

import os
import sys
import threading
import time
from concurrent import futures

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from interop_grpcio import _code  # noqa: E402  (the status code lookup, shared)


def generate(proto_dir, out_dir):
    from grpc_tools import protoc

    args = ["protoc", f"-I{proto_dir}", f"--python_out={out_dir}",
            f"--grpc_python_out={out_dir}", "echo.proto"]
    if protoc.main(args) != 0:
        raise SystemExit("grpc_tools.protoc failed")
    sys.path.insert(0, out_dir)


def serve():
    import grpc
    import echo_pb2
    import echo_pb2_grpc

    started = time.monotonic()
    lock = threading.Lock()
    log = {}

    def parse(message):
        key, *fields = message.split(";")
        plan = {"fail": 0, "code": 14, "pushback": None, "slow": 0}
        for field in fields:
            name, value = field.split("=", 1)
            plan[name] = value if name == "pushback" else int(value)
        return key, plan

    class Echo(echo_pb2_grpc.EchoServicer):
        def Unary(self, request, context):
            key, plan = parse(request.message)
            prev = dict(context.invocation_metadata()).get("grpc-previous-rpc-attempts", "-")
            with lock:
                entries = log.setdefault(key, [])
                entry = {"n": len(entries) + 1, "prev": prev,
                         "at": int((time.monotonic() - started) * 1000), "end": "running"}
                entries.append(entry)
            n = entry["n"]
            if n <= plan["slow"]:
                end = time.monotonic() + 2
                while time.monotonic() < end and context.is_active():
                    time.sleep(0.005)
                if not context.is_active():
                    entry["end"] = "cancelled"
                    return echo_pb2.EchoReply()
            if n <= plan["fail"]:
                entry["end"] = "failed"
                if plan["pushback"] is not None:
                    context.set_trailing_metadata((("grpc-retry-pushback-ms", plan["pushback"]),))
                context.abort(grpc.StatusCode(_code(plan["code"])), f"attempt {n} of {key} fails")
            entry["end"] = "ok"
            return echo_pb2.EchoReply(message=f"ok after {n}")

        def ServerStream(self, request, context):
            with lock:
                entries = list(log.get(request.message, []))
            for e in entries:
                yield echo_pb2.EchoReply(
                    message=f"n={e['n']} prev={e['prev']} at_ms={e['at']} end={e['end']}")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    echo_pb2_grpc.add_EchoServicer_to_server(Echo(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(0)


if __name__ == "__main__":
    mode, proto_dir, out_dir = sys.argv[1:4]
    generate(proto_dir, out_dir)
    if mode == "server":
        serve()
    else:
        raise SystemExit(f"unknown mode {mode}")
