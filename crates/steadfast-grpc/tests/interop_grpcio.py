"""The Python grpcio side of steadfast-grpc's interop tests (tests/interop_grpcio.rs).

    python3 interop_grpcio.py server PROTO_DIR OUT_DIR
        serves steadfast.test.Echo on 127.0.0.1, prints its port, stops at EOF on stdin
    python3 interop_grpcio.py client PROTO_DIR OUT_DIR HOST:PORT
        calls a steadfast-grpc server, prints "ok CASE" per case, then "all ok"

Stubs are generated at run time from the same .proto files as the Rust side, with
grpcio-tools (pinned in scripts/requirements.txt), into OUT_DIR.
"""

import sys
import time
from concurrent import futures


def generate(proto_dir, out_dir):
    from grpc_tools import protoc

    args = [
        "protoc",
        f"-I{proto_dir}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        "echo.proto",
        "greeter.proto",
    ]
    if protoc.main(args) != 0:
        raise SystemExit("grpc_tools.protoc failed")
    sys.path.insert(0, out_dir)


def serve():
    import grpc
    import echo_pb2
    import echo_pb2_grpc

    class Echo(echo_pb2_grpc.EchoServicer):
        def _reply(self, request, context, message=None):
            remaining = context.time_remaining()
            # grpcio reports an infinite-looking number when there is no deadline.
            no_deadline = remaining is None or remaining > 1e9
            return echo_pb2.EchoReply(
                message=request.message if message is None else message,
                deadline_ms=-1 if no_deadline else int(remaining * 1000),
                hops=1,
            )

        def _sleep(self, request, context):
            end = time.monotonic() + request.sleep_ms / 1000
            while time.monotonic() < end and context.is_active():
                time.sleep(0.01)

        def Unary(self, request, context):
            self._sleep(request, context)
            if request.fail_code:
                context.abort(grpc.StatusCode(_code(request.fail_code)), request.message)
            return self._reply(request, context)

        def ServerStream(self, request, context):
            if request.fail_code:
                context.abort(grpc.StatusCode(_code(request.fail_code)), request.message)
            for i in range(request.count):
                self._sleep(request, context)
                yield self._reply(request, context, f"{request.message} {i}")

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    echo_pb2_grpc.add_EchoServicer_to_server(Echo(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    sys.stdin.read()
    server.stop(0)


def _code(number):
    import grpc

    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code.value
    raise ValueError(number)


def client(target):
    import grpc
    import echo_pb2
    import echo_pb2_grpc
    import greeter_pb2
    import greeter_pb2_grpc

    failures = []

    def case(name, check):
        try:
            check()
            print(f"ok {name}", flush=True)
        except Exception as e:  # noqa: BLE001 - reported, then the exit code says it
            failures.append(name)
            print(f"FAIL {name}: {e!r}", flush=True)

    with grpc.insecure_channel(target) as channel:
        echo = echo_pb2_grpc.EchoStub(channel)

        def unary():
            reply = echo.Unary(echo_pb2.EchoRequest(message="hello"), timeout=10)
            assert reply.message == "hello", reply
            assert reply.hops == 1, reply

        def deadline_seen():
            reply = echo.Unary(echo_pb2.EchoRequest(message="d"), timeout=5)
            # grpcio (its core) sends a little more than asked ("5010m" for 5 s).
            assert 0 < reply.deadline_ms <= 6000, reply
            assert reply.grpc_timeout, reply

        def server_stream():
            replies = [
                r.message
                for r in echo.ServerStream(
                    echo_pb2.EchoRequest(message="s", count=3), timeout=10
                )
            ]
            assert replies == ["s 0", "s 1", "s 2"], replies

        def status_and_message():
            try:
                echo.Unary(echo_pb2.EchoRequest(message="not here", fail_code=5), timeout=10)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.NOT_FOUND, e
                assert e.details() == "not here", e
                return
            raise AssertionError("no error")

        def deadline_exceeded():
            try:
                echo.Unary(echo_pb2.EchoRequest(message="slow", sleep_ms=5000), timeout=0.3)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.DEADLINE_EXCEEDED, e
                return
            raise AssertionError("no error")

        def unimplemented_service():
            greeter = greeter_pb2_grpc.GreeterStub(channel)
            try:
                greeter.SayHello(greeter_pb2.HelloRequest(name="x"), timeout=10)
            except grpc.RpcError as e:
                assert e.code() == grpc.StatusCode.UNIMPLEMENTED, e
                return
            raise AssertionError("no error")

        def cancel():
            # The handler sleeps 60 s; the Rust side checks it was cancelled.
            call = echo.Unary.future(
                echo_pb2.EchoRequest(message="grpcio-cancel", sleep_ms=60000), timeout=30
            )
            time.sleep(0.3)
            assert call.cancel(), "cancel() refused"
            assert call.cancelled(), call

        case("unary", unary)
        case("deadline_seen", deadline_seen)
        case("server_stream", server_stream)
        case("status_and_message", status_and_message)
        case("deadline_exceeded", deadline_exceeded)
        case("unimplemented_service", unimplemented_service)
        case("cancel", cancel)

    if failures:
        print(f"failed: {' '.join(failures)}", flush=True)
        raise SystemExit(1)
    print("all ok", flush=True)


def main():
    mode, proto_dir, out_dir = sys.argv[1:4]
    generate(proto_dir, out_dir)
    if mode == "server":
        serve()
    else:
        client(sys.argv[4])


if __name__ == "__main__":
    main()
