"""A grpcio (gRPC's C core, through Python) server with grpc.health.v1 and, when
grpcio-reflection is installed, server reflection: a peer `steadfast call` did not
write. Prints the port it bound, then serves until killed.

Usage: grpcio_server.py [--no-reflection] [--tls CERT KEY [CLIENT_CA]]
  --no-reflection  serves health only
  --tls CERT KEY   serves TLS with this certificate and key (ALPN h2)
  CLIENT_CA        and requires a client certificate signed by this CA
"""

import sys
import time
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc


def main(argv):
    reflect = "--no-reflection" not in argv
    argv = [a for a in argv if a != "--no-reflection"]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
    servicer = health.HealthServicer()
    servicer.set("", health_pb2.HealthCheckResponse.SERVING)
    health_pb2_grpc.add_HealthServicer_to_server(servicer, server)
    try:
        from grpc_reflection.v1alpha import reflection

        names = (
            health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
            reflection.SERVICE_NAME,
        )
        if reflect:
            reflection.enable_server_reflection(names, server)
    except ImportError:
        print("grpcio-reflection is not installed: no reflection", file=sys.stderr)
    if len(argv) > 1 and argv[1] == "--tls":
        cert = open(argv[2], "rb").read()
        key = open(argv[3], "rb").read()
        client_ca = open(argv[4], "rb").read() if len(argv) > 4 else None
        credentials = grpc.ssl_server_credentials(
            [(key, cert)],
            root_certificates=client_ca,
            require_client_auth=client_ca is not None,
        )
        port = server.add_secure_port("127.0.0.1:0", credentials)
    else:
        port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(port, flush=True)
    while True:
        time.sleep(3600)


if __name__ == "__main__":
    main(sys.argv)
