"""A Python grpcio backend for steadfast-grpc's load-balancing test
(tests/load_balancing_grpcio.rs): steadfast.test.Echo beside grpc.health.v1.Health
(grpcio-health-checking), counting the Unary calls that reached its handler.

    python3 lb_backend.py serve PROTO_DIR OUT_DIR

prints its port, then obeys one command per line on stdin, answering each:
    count        -> "count N" (Unary calls processed so far)
    not_serving  -> "ok" once the health service says NOT_SERVING for Echo and ""
    serving      -> "ok" once it says SERVING again
    drain        -> "drained N" once a graceful stop (GOAWAY; in-flight calls get 10 s)
                    has finished; N is the final count
It stops at EOF on stdin.
"""

import sys
import threading
import time
from concurrent import futures

from interop_grpcio import generate

ECHO = "steadfast.test.Echo"


def main():
    proto_dir, out_dir = sys.argv[2:4]
    generate(proto_dir, out_dir)

    import grpc
    import echo_pb2
    import echo_pb2_grpc
    from grpc_health.v1 import health, health_pb2, health_pb2_grpc

    lock = threading.Lock()
    processed = [0]

    class Echo(echo_pb2_grpc.EchoServicer):
        def Unary(self, request, context):
            # Counted when the handler starts: a call that reached the application.
            with lock:
                processed[0] += 1
            time.sleep(request.sleep_ms / 1000)
            return echo_pb2.EchoReply(message=request.message, hops=1)

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16))
    echo_pb2_grpc.add_EchoServicer_to_server(Echo(), server)
    health_servicer = health.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    serving = health_pb2.HealthCheckResponse.SERVING
    not_serving = health_pb2.HealthCheckResponse.NOT_SERVING
    for name in (ECHO, ""):
        health_servicer.set(name, serving)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)

    for line in sys.stdin:
        command = line.strip()
        if command == "count":
            with lock:
                print(f"count {processed[0]}", flush=True)
        elif command in ("serving", "not_serving"):
            status = serving if command == "serving" else not_serving
            for name in (ECHO, ""):
                health_servicer.set(name, status)
            print("ok", flush=True)
        elif command == "drain":
            server.stop(grace=10).wait()
            with lock:
                print(f"drained {processed[0]}", flush=True)
        else:
            print(f"unknown command {command!r}", flush=True)
    server.stop(0)


if __name__ == "__main__":
    main()
