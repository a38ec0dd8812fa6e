"""A grpcio client under load, for steadfast-proxy's rolling-deploy tests.

    python3 grpcio_load.py load PROTO_DIR OUT_DIR HOST:PORT THREADS

Calls steadfast.test.Echo/Unary from THREADS threads, one call at a time each (5 s
timeout, the handler sleeping 2 ms), until stdin closes or says "stop"; then prints
one JSON object: {"ok": N, "failed": [{"code": ..., "details": ...}, ...]} and exits.
Prints "started" once the first call succeeded.
"""

import json
import sys
import threading


def main():
    _mode, proto_dir, out_dir, target, threads = sys.argv[1:6]
    from grpc_tools import protoc

    if protoc.main(["protoc", f"-I{proto_dir}", f"--python_out={out_dir}",
                    f"--grpc_python_out={out_dir}", "echo.proto"]) != 0:
        raise SystemExit("grpc_tools.protoc failed")
    sys.path.insert(0, out_dir)
    import grpc
    import echo_pb2
    import echo_pb2_grpc

    stop = threading.Event()
    lock = threading.Lock()
    ok = [0]
    failed = []
    started = threading.Event()

    def worker(n):
        with grpc.insecure_channel(target) as channel:
            stub = echo_pb2_grpc.EchoStub(channel)
            i = 0
            while not stop.is_set():
                i += 1
                try:
                    stub.Unary(echo_pb2.EchoRequest(message=f"{n}/{i}", sleep_ms=2), timeout=5)
                    with lock:
                        ok[0] += 1
                    if not started.is_set():
                        started.set()
                        print("started", flush=True)
                except grpc.RpcError as e:
                    with lock:
                        failed.append({"code": e.code().name, "details": e.details()})

    workers = [threading.Thread(target=worker, args=(n,)) for n in range(int(threads))]
    for w in workers:
        w.start()
    for line in sys.stdin:
        if line.strip() == "stop":
            break
    stop.set()
    for w in workers:
        w.join()
    print(json.dumps({"ok": ok[0], "failed": failed}), flush=True)


if __name__ == "__main__":
    main()
