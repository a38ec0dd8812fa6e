"""The Python grpcio peer of steadfast-interop's tests (tests/interop.rs): a
grpc.testing.TestService interop server and client per grpc's
doc/interop-test-descriptions.md, written here from those descriptions.

    python3 interop_grpcio.py server PROTO_DIR OUT_DIR [--tls_dir=DIR]
        serves TestService on 127.0.0.1, prints a "SKIP case: why" line for each
        case it cannot serve as described, then "listening on 127.0.0.1:PORT";
        stops at EOF on stdin
    python3 interop_grpcio.py client PROTO_DIR OUT_DIR PORT [--tls_dir=DIR
            --server_host_override=NAME]
        runs every case against 127.0.0.1:PORT, prints one line per case:
        "PASS case", "FAIL case: why", "PARTIAL case: what was not checked" or
        "SKIP case: why"

With --tls_dir, TLS: the server uses DIR/server.pem and DIR/server.key, the client
trusts DIR/ca.pem and expects the server to be NAME.

Stubs are generated at run time from the same .proto files as the Rust side, with
grpcio-tools (pinned in scripts/requirements.txt), into OUT_DIR.

What grpcio's API cannot do, for the compression cases: a server cannot see whether
a request message was compressed (CompressedRequest), and a client can neither see
a response message's compressed flag nor send one message of a compressed call
uncompressed.
"""

import os
import queue
import sys
import threading
import time
from concurrent import futures

import grpc

CASES = [
    "empty_unary",
    "large_unary",
    "client_streaming",
    "server_streaming",
    "ping_pong",
    "empty_stream",
    "timeout_on_sleeping_server",
    "cancel_after_begin",
    "cancel_after_first_response",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
    "custom_metadata",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_compressed_streaming",
    "server_compressed_streaming",
]
ECHO_INITIAL = "x-grpc-test-echo-initial"
ECHO_TRAILING = "x-grpc-test-echo-trailing-bin"


def generate(proto_dir, out_dir):
    from grpc_tools import protoc

    args = [
        "protoc",
        f"-I{proto_dir}",
        f"--python_out={out_dir}",
        f"--grpc_python_out={out_dir}",
        "grpc/testing/empty.proto",
        "grpc/testing/messages.proto",
        "grpc/testing/test.proto",
    ]
    if protoc.main(args) != 0:
        raise SystemExit("grpc_tools.protoc failed")
    # The protos' package is grpc.testing: the generated modules import
    # `grpc.testing.*`, so the generated directory joins the grpc package's path.
    grpc.__path__.append(os.path.join(out_dir, "grpc"))
    global empty_pb2, messages_pb2, test_pb2_grpc
    from grpc.testing import empty_pb2, messages_pb2, test_pb2_grpc


def _status_code(number):
    for code in grpc.StatusCode:
        if code.value[0] == number:
            return code
    return grpc.StatusCode.UNKNOWN


def _payload(size):
    return messages_pb2.Payload(body=b"\0" * size)


# What this server cannot do as the descriptions say (printed before it listens).
SERVER_SKIPS = {
    "client_compressed_unary": "grpcio's server API does not say whether a request "
    "message was compressed, so it cannot check expect_compressed (CompressedRequest)",
    "client_compressed_streaming": "grpcio's server API does not say whether a request "
    "message was compressed, so it cannot check expect_compressed (CompressedRequest)",
}


def serve(tls_dir):
    class TestService(test_pb2_grpc.TestServiceServicer):
        def _echo_metadata(self, context):
            metadata = dict(context.invocation_metadata())
            if ECHO_INITIAL in metadata:
                context.send_initial_metadata([(ECHO_INITIAL, metadata[ECHO_INITIAL])])
            if ECHO_TRAILING in metadata:
                context.set_trailing_metadata([(ECHO_TRAILING, metadata[ECHO_TRAILING])])

        def _status(self, request, context):
            if request.HasField("response_status") and request.response_status.code:
                context.abort(
                    _status_code(request.response_status.code),
                    request.response_status.message,
                )

        def EmptyCall(self, request, context):
            return empty_pb2.Empty()

        def UnaryCall(self, request, context):
            self._echo_metadata(context)
            self._status(request, context)
            if request.response_compressed.value:
                context.set_compression(grpc.Compression.Gzip)
            return messages_pb2.SimpleResponse(payload=_payload(request.response_size))

        def _respond(self, parameters_list, context):
            """The responses of ResponseParameters, each compressed only if it asks."""
            for parameters in parameters_list:
                time.sleep(parameters.interval_us / 1e6)
                if not parameters.compressed.value:
                    context.disable_next_message_compression()
                yield messages_pb2.StreamingOutputCallResponse(payload=_payload(parameters.size))

        def _compress_if_asked(self, parameters_list, context):
            if any(p.compressed.value for p in parameters_list):
                context.set_compression(grpc.Compression.Gzip)

        def StreamingOutputCall(self, request, context):
            self._compress_if_asked(request.response_parameters, context)
            yield from self._respond(request.response_parameters, context)
            self._status(request, context)

        def StreamingInputCall(self, request_iterator, context):
            size = sum(len(request.payload.body) for request in request_iterator)
            return messages_pb2.StreamingInputCallResponse(aggregated_payload_size=size)

        def FullDuplexCall(self, request_iterator, context):
            self._echo_metadata(context)
            for request in request_iterator:
                self._status(request, context)
                self._compress_if_asked(request.response_parameters, context)
                yield from self._respond(request.response_parameters, context)

        def HalfDuplexCall(self, request_iterator, context):
            requests = list(request_iterator)
            for request in requests:
                for parameters in request.response_parameters:
                    yield messages_pb2.StreamingOutputCallResponse(
                        payload=_payload(parameters.size)
                    )

        # UnimplementedCall: the generated base class answers UNIMPLEMENTED.

    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    test_pb2_grpc.add_TestServiceServicer_to_server(TestService(), server)
    if tls_dir:
        credentials = grpc.ssl_server_credentials(
            [(_read(tls_dir, "server.key"), _read(tls_dir, "server.pem"))]
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    for case, why in SERVER_SKIPS.items():
        print(f"SKIP {case}: {why}", flush=True)
    print(f"listening on 127.0.0.1:{port}", flush=True)
    sys.stdin.read()
    server.stop(0)


def _read(directory, name):
    with open(os.path.join(directory, name), "rb") as f:
        return f.read()


class Pipe:
    """A request iterator the case writes into; close() half-closes."""

    def __init__(self):
        self._queue = queue.Queue()

    def __iter__(self):
        return self

    def __next__(self):
        item = self._queue.get()
        if item is None:
            raise StopIteration
        return item

    def add(self, request):
        self._queue.put(request)

    def close(self):
        self._queue.put(None)


class Failed(Exception):
    pass


class Partial(Exception):
    """The case passed what it could check; the message says what it could not."""


class Skipped(Exception):
    """The case cannot be run as described with grpcio's API."""


def check(condition, message):
    if not condition:
        raise Failed(message)


def expect_code(call, code):
    try:
        call()
    except grpc.RpcError as error:
        check(error.code() == code, f"expected {code}, got {error.code()} {error.details()!r}")
        return error
    raise Failed(f"succeeded, expected {code}")


def check_payload(payload, size):
    check(payload.body == b"\0" * size, f"expected {size} zero bytes, got {len(payload.body)}")


def large_request():
    return messages_pb2.SimpleRequest(response_size=314159, payload=_payload(271828))


def streaming_request(response_size, payload_size):
    return messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=response_size)],
        payload=_payload(payload_size),
    )


def empty_unary(stub, channel):
    check(stub.EmptyCall(empty_pb2.Empty(), timeout=10) == empty_pb2.Empty(), "non-empty")


def large_unary(stub, channel):
    check_payload(stub.UnaryCall(large_request(), timeout=10).payload, 314159)


def client_streaming(stub, channel):
    requests = [
        messages_pb2.StreamingInputCallRequest(payload=_payload(size))
        for size in (27182, 8, 1828, 45904)
    ]
    response = stub.StreamingInputCall(iter(requests), timeout=10)
    check(response.aggregated_payload_size == 74922, f"got {response.aggregated_payload_size}")


def server_streaming(stub, channel):
    sizes = (31415, 9, 2653, 58979)
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[messages_pb2.ResponseParameters(size=size) for size in sizes]
    )
    responses = list(stub.StreamingOutputCall(request, timeout=10))
    check(len(responses) == len(sizes), f"{len(responses)} responses")
    for response, size in zip(responses, sizes):
        check_payload(response.payload, size)


def ping_pong(stub, channel):
    pipe = Pipe()
    responses = stub.FullDuplexCall(pipe, timeout=10)
    for response_size, payload_size in ((31415, 27182), (9, 8), (2653, 1828), (58979, 45904)):
        pipe.add(streaming_request(response_size, payload_size))
        check_payload(next(responses).payload, response_size)
    pipe.close()
    check(next(responses, None) is None, "a response after the half-close")


def empty_stream(stub, channel):
    check(list(stub.FullDuplexCall(iter([]), timeout=10)) == [], "responses to nothing")


def timeout_on_sleeping_server(stub, channel):
    pipe = Pipe()
    responses = stub.FullDuplexCall(pipe, timeout=0.001)
    pipe.add(messages_pb2.StreamingOutputCallRequest(payload=_payload(27182)))
    try:
        expect_code(lambda: next(responses), grpc.StatusCode.DEADLINE_EXCEEDED)
    finally:
        pipe.close()


def cancel_after_begin(stub, channel):
    pipe = Pipe()
    future = stub.StreamingInputCall.future(pipe, timeout=10)
    time.sleep(0.1)
    future.cancel()
    check(future.cancelled(), "not cancelled")
    check(future.code() == grpc.StatusCode.CANCELLED, f"code {future.code()}")
    pipe.close()


def cancel_after_first_response(stub, channel):
    pipe = Pipe()
    responses = stub.FullDuplexCall(pipe, timeout=10)
    pipe.add(streaming_request(31415, 27182))
    check_payload(next(responses).payload, 31415)
    responses.cancel()
    expect_code(lambda: next(responses), grpc.StatusCode.CANCELLED)
    pipe.close()


def status_code_and_message(stub, channel):
    message = "test status message"
    status = messages_pb2.EchoStatus(code=2, message=message)
    error = expect_code(
        lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status), timeout=10),
        grpc.StatusCode.UNKNOWN,
    )
    check(error.details() == message, f"UnaryCall details {error.details()!r}")
    request = messages_pb2.StreamingOutputCallRequest(response_status=status)
    error = expect_code(
        lambda: list(stub.FullDuplexCall(iter([request]), timeout=10)), grpc.StatusCode.UNKNOWN
    )
    check(error.details() == message, f"FullDuplexCall details {error.details()!r}")


def special_status_message(stub, channel):
    message = "\t\ntest with whitespace\r\nand Unicode BMP \u263a and non-BMP \U0001f608\t\n"
    status = messages_pb2.EchoStatus(code=2, message=message)
    error = expect_code(
        lambda: stub.UnaryCall(messages_pb2.SimpleRequest(response_status=status), timeout=10),
        grpc.StatusCode.UNKNOWN,
    )
    check(error.details() == message, f"details {error.details()!r}")


def unimplemented_method(stub, channel):
    expect_code(
        lambda: stub.UnimplementedCall(empty_pb2.Empty(), timeout=10),
        grpc.StatusCode.UNIMPLEMENTED,
    )


def unimplemented_service(stub, channel):
    other = test_pb2_grpc.UnimplementedServiceStub(channel)
    expect_code(
        lambda: other.UnimplementedCall(empty_pb2.Empty(), timeout=10),
        grpc.StatusCode.UNIMPLEMENTED,
    )


def custom_metadata(stub, channel):
    initial = (ECHO_INITIAL, "test_initial_metadata_value")
    trailing = (ECHO_TRAILING, b"\xab\xab\xab")
    metadata = (initial, trailing)

    def check_metadata(what, initial_metadata, trailing_metadata):
        check(initial in initial_metadata, f"{what}: initial metadata {initial_metadata}")
        check(trailing in trailing_metadata, f"{what}: trailing metadata {trailing_metadata}")

    response, call = stub.UnaryCall.with_call(large_request(), metadata=metadata, timeout=10)
    check_payload(response.payload, 314159)
    check_metadata("UnaryCall", call.initial_metadata(), call.trailing_metadata())

    responses = stub.FullDuplexCall(
        iter([streaming_request(314159, 271828)]), metadata=metadata, timeout=10
    )
    received = list(responses)
    check(len(received) == 1, f"{len(received)} responses")
    check_payload(received[0].payload, 314159)
    check_metadata("FullDuplexCall", responses.initial_metadata(), responses.trailing_metadata())


def _compressed_unary_request(expect_compressed):
    return messages_pb2.SimpleRequest(
        expect_compressed=messages_pb2.BoolValue(value=expect_compressed),
        response_size=314159,
        payload=_payload(271828),
    )


def client_compressed_unary(stub, channel):
    expect_code(
        lambda: stub.UnaryCall(_compressed_unary_request(True), timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    response = stub.UnaryCall(
        _compressed_unary_request(True), compression=grpc.Compression.Gzip, timeout=10
    )
    check_payload(response.payload, 314159)
    response = stub.UnaryCall(_compressed_unary_request(False), timeout=10)
    check_payload(response.payload, 314159)


UNSEEN_FLAGS = "grpcio's client API does not show a response message's compressed flag"


def server_compressed_unary(stub, channel):
    for compressed in (True, False):
        request = messages_pb2.SimpleRequest(
            response_compressed=messages_pb2.BoolValue(value=compressed),
            response_size=314159,
            payload=_payload(271828),
        )
        check_payload(stub.UnaryCall(request, timeout=10).payload, 314159)
    raise Partial(f"{UNSEEN_FLAGS}: the calls and their payload sizes were checked")


def client_compressed_streaming(stub, channel):
    probe = messages_pb2.StreamingInputCallRequest(
        expect_compressed=messages_pb2.BoolValue(value=True), payload=_payload(27182)
    )
    expect_code(
        lambda: stub.StreamingInputCall(iter([probe]), timeout=10),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    raise Skipped(
        "grpcio's client API cannot send one message of a compressed call uncompressed "
        "(the uncompressed probe did fail with INVALID_ARGUMENT)"
    )


def server_compressed_streaming(stub, channel):
    sizes = ((True, 31415), (False, 92653))
    request = messages_pb2.StreamingOutputCallRequest(
        response_parameters=[
            messages_pb2.ResponseParameters(
                size=size, compressed=messages_pb2.BoolValue(value=compressed)
            )
            for compressed, size in sizes
        ]
    )
    responses = list(stub.StreamingOutputCall(request, timeout=10))
    check(len(responses) == len(sizes), f"{len(responses)} responses")
    for response, (_, size) in zip(responses, sizes):
        check_payload(response.payload, size)
    raise Partial(f"{UNSEEN_FLAGS}: the responses and their payload sizes were checked")


def run_client(port, tls_dir, host_override):
    if tls_dir:
        credentials = grpc.ssl_channel_credentials(root_certificates=_read(tls_dir, "ca.pem"))
        options = [("grpc.ssl_target_name_override", host_override)]
        channel = grpc.secure_channel(f"127.0.0.1:{port}", credentials, options)
    else:
        channel = grpc.insecure_channel(f"127.0.0.1:{port}")
    with channel:
        stub = test_pb2_grpc.TestServiceStub(channel)
        for case in CASES:
            try:
                globals()[case](stub, channel)
                print(f"PASS {case}", flush=True)
            except Partial as partial:
                print(f"PARTIAL {case}: {partial}", flush=True)
            except Skipped as skipped:
                print(f"SKIP {case}: {skipped}", flush=True)
            except (Failed, grpc.RpcError, StopIteration) as error:
                why = str(error).replace("\n", " ")
                print(f"FAIL {case}: {type(error).__name__} {why}", flush=True)


def main():
    positional = [arg for arg in sys.argv[1:] if not arg.startswith("--")]
    flags = dict(arg[2:].split("=", 1) for arg in sys.argv[1:] if arg.startswith("--"))
    mode, proto_dir, out_dir = positional[:3]
    tls_dir = flags.get("tls_dir")
    generate(proto_dir, out_dir)
    if mode == "server":
        serve(tls_dir)
    elif mode == "client":
        run_client(positional[3], tls_dir, flags.get("server_host_override"))
    else:
        raise SystemExit(f"unknown mode {mode}")


if __name__ == "__main__":
    main()
