//! `steadfast call` against one fault at a time, each reproduced on 127.0.0.1 with a
//! peer this project did not write (Python `h2` servers, `openssl s_server`, grpcio,
//! raw sockets) or with `steadfast serve` and `.proto` files that do not match it:
//! the `--json` diagnosis is asserted field by field — layer, initiator, fate,
//! retry_safe, exit — and by the key words of its message and advice.

mod common;

use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);

/// `steadfast call --json ARGS`: the exit code and the one JSON object printed.
fn diagnosis(args: &[&str]) -> (i32, Value) {
    let out = run(STEADFAST, &[&["call", "--json"], args].concat(), LIMIT);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", text(&out)));
    (out.status.code().unwrap_or(-1), v)
}

fn has(v: &Value, field: &str, words: &str) -> bool {
    v[field].as_str().is_some_and(|s| s.contains(words))
}

/// A gRPC-shaped Python h2 server with one fault (tests/peers/grpc_fault_server.py).
fn grpc_fault_server(args: &[&str]) -> (Proc, SocketAddr) {
    let (proc, addr, _) = python_server("tests/peers/grpc_fault_server.py", args);
    (proc, addr)
}

/// A `.proto` file for grpc.testing's EmptyCall, as `package PACKAGE; service
/// SERVICE { rpc METHOD }`, written at test time.
fn write_proto(dir: &TempDir, package: &str, service: &str, method: &str) -> String {
    let path = dir.path(&format!("{package}.{service}.{method}.proto"));
    std::fs::write(
        &path,
        format!(
            "syntax = \"proto3\";\npackage {package};\nmessage Empty {{}}\n\
             service {service} {{\n  rpc {method}(Empty) returns (Empty);\n}}\n"
        ),
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

/// `grpc.testing.TestService/EmptyCall` through a `.proto` file, against `addr`.
fn empty_call(dir: &TempDir, addr: SocketAddr, extra: &[&str]) -> (i32, Value) {
    let proto = write_proto(dir, "grpc.testing", "TestService", "EmptyCall");
    let addr = addr.to_string();
    diagnosis(
        &[
            &["--plaintext", "--proto", &proto],
            extra,
            &[&addr, "grpc.testing.TestService/EmptyCall"],
        ]
        .concat(),
    )
}

/// A TCP listener on 127.0.0.1 that writes `greeting` to each connection, then reads
/// and never answers, holding its connections until the test ends.
fn mute_listener(greeting: &'static [u8]) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut conn in listener.incoming().flatten() {
            std::thread::spawn(move || {
                use std::io::Write;
                let _ = conn.write_all(greeting);
                let mut sink = [0; 4096];
                while matches!(conn.read(&mut sink), Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

#[test]
fn tls_faults_plaintext_to_tls_untrusted_wrong_name_and_no_alpn_h2() {
    let dir = TempDir::new("call-tls");
    // A certificate for `localhost` only.
    let cert = steadfast_testkit::self_signed(&["localhost"]);
    let (cert_path, key_path) = (dir.path("cert.pem"), dir.path("key.pem"));
    std::fs::write(&cert_path, &cert.cert_pem).unwrap();
    std::fs::write(&key_path, &cert.key_pem).unwrap();
    let (cert_arg, key_arg) = (cert_path.to_str().unwrap(), key_path.to_str().unwrap());
    let (_server, addr) = steadfast_serve(&["--tls-cert", cert_arg, "--tls-key", key_arg]);
    let ip_addr = addr.to_string();

    // h2c to a TLS port: the server's first bytes are a TLS record.
    let (code, v) = diagnosis(&["--plaintext", &ip_addr, "list"]);
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["layer"], "HTTP/2 connection", "{v}");
    assert_eq!(v["initiator"], "this endpoint", "{v}");
    assert_eq!(v["fate"], "never sent", "{v}");
    assert_eq!(v["retry_safe"], true, "{v}");
    assert!(has(&v, "message", "answered with TLS"), "{v}");
    assert!(has(&v, "advice", "drop --plaintext"), "{v}");

    // Not trusted: the client was given no root for it.
    let (code, v) = diagnosis(&[&ip_addr, "list"]);
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["layer"], "TLS", "{v}");
    assert_eq!(v["initiator"], "the peer", "{v}");
    assert_eq!(v["fate"], "never sent", "{v}");
    assert_eq!(v["retry_safe"], true, "{v}");
    assert!(has(&v, "message", "not signed by an authority"), "{v}");
    assert!(has(&v, "advice", "--cacert"), "{v}");

    // Trusted, but for another name than the one connected to.
    let (code, v) = diagnosis(&["--cacert", cert_arg, &ip_addr, "list"]);
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["layer"], "TLS", "{v}");
    assert_eq!(v["fate"], "never sent", "{v}");
    assert!(
        has(&v, "message", "it is for localhost, not 127.0.0.1"),
        "{v}"
    );
    assert!(has(&v, "advice", "a name the certificate holds"), "{v}");
    // By its name, the same server answers.
    let by_name = format!("localhost:{}", addr.port());
    let out = run(
        STEADFAST,
        &["call", "--cacert", cert_arg, &by_name, "list"],
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out));

    // TLS without ALPN h2: `openssl s_server` offers no ALPN at all.
    require("openssl", "openssl");
    let port = free_port();
    let accept = format!("127.0.0.1:{port}");
    let _openssl = Proc {
        child: Command::new("openssl")
            .args(["s_server", "-accept", &accept, "-quiet"])
            .args(["-cert", cert_arg, "-key", key_arg])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start openssl s_server"),
        name: "openssl s_server".into(),
    };
    wait_listening(([127, 0, 0, 1], port).into());
    let (code, v) = diagnosis(&["-k", &accept, "list"]);
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["layer"], "TLS", "{v}");
    assert_eq!(v["fate"], "never sent", "{v}");
    assert!(has(&v, "message", "did not negotiate HTTP/2"), "{v}");
    assert!(has(&v, "advice", "ALPN \"h2\""), "{v}");
}

#[test]
fn goaways_max_age_in_flight_and_protocol_error_show_their_debug_data() {
    let dir = TempDir::new("call-goaway");
    // The connection reached its maximum age with the call in flight (stream 1 at
    // the GOAWAY's last-stream-id), and closed before it was answered.
    let (_server, addr, _r) = fault_server(&["goaway", "0", "max_age"]);
    let (code, v) = empty_call(&dir, addr, &[]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["code"], "Unavailable", "{v}");
    assert_eq!(v["layer"], "HTTP/2 connection", "{v}");
    assert_eq!(v["initiator"], "the peer", "{v}");
    assert!(
        has(&v, "fate", "sent; the server may have processed it"),
        "{v}"
    );
    assert_eq!(v["retry_safe"], false, "{v}");
    assert!(has(&v, "goaway", "NO_ERROR"), "{v}");
    assert_eq!(v["goaway_debug"], "max_age", "{v}");
    assert!(has(&v, "advice", "maximum age"), "{v}");
    assert!(has(&v, "advice", "grace period"), "{v}");

    // PROTOCOL_ERROR: the server's debug data is the lead, shown as it came.
    let (_server, addr, _r) = fault_server(&["goaway", "0x1", "DATA on a closed stream 1"]);
    let (code, v) = empty_call(&dir, addr, &[]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["layer"], "HTTP/2 connection", "{v}");
    assert_eq!(v["initiator"], "the peer", "{v}");
    assert_eq!(v["retry_safe"], false, "{v}");
    assert!(has(&v, "goaway", "PROTOCOL_ERROR"), "{v}");
    assert_eq!(v["goaway_debug"], "DATA on a closed stream 1", "{v}");
    assert!(has(&v, "message", "DATA on a closed stream 1"), "{v}");
    assert!(has(&v, "advice", "debug data is the lead"), "{v}");
}

#[test]
fn resets_cancel_from_the_server_and_no_error_before_the_trailers() {
    let dir = TempDir::new("call-rst");
    let (_server, addr) = grpc_fault_server(&["rst", "8"]);
    let (code, v) = empty_call(&dir, addr, &[]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["code"], "Cancelled", "{v}");
    assert_eq!(v["layer"], "HTTP/2 stream", "{v}");
    assert_eq!(v["initiator"], "the peer", "{v}");
    assert!(
        has(&v, "fate", "sent; the server may have processed it"),
        "{v}"
    );
    assert_eq!(v["retry_safe"], false, "{v}");
    assert!(has(&v, "message", "reset by the peer with CANCEL"), "{v}");
    assert!(has(&v, "advice", "cancelled the stream"), "{v}");

    // Response headers, then RST_STREAM(NO_ERROR): no grpc-status ever came.
    let (_server, addr) = grpc_fault_server(&["rst", "0", "headers"]);
    let (code, v) = empty_call(&dir, addr, &[]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["code"], "Internal", "{v}");
    assert_eq!(v["layer"], "HTTP/2 stream", "{v}");
    assert_eq!(v["initiator"], "the peer", "{v}");
    assert!(has(&v, "fate", "processed by the server"), "{v}");
    assert_eq!(v["retry_safe"], false, "{v}");
    assert!(has(&v, "message", "reset by the peer with NO_ERROR"), "{v}");
    assert!(has(&v, "advice", "before its trailers"), "{v}");
}

#[test]
fn deadline_exceeded_raised_here_returned_by_the_server_or_inherited() {
    let dir = TempDir::new("call-deadline");
    // Raised here: the server never answers; the budget is named.
    let (_server, addr) = grpc_fault_server(&["stall"]);
    let (code, v) = empty_call(&dir, addr, &["--deadline", "400ms"]);
    assert_eq!(code, 14, "{v}");
    assert_eq!(v["code"], "DeadlineExceeded", "{v}");
    assert_eq!(v["layer"], "application", "{v}");
    assert_eq!(v["initiator"], "the local application", "{v}");
    assert!(
        has(&v, "fate", "sent; the server may have processed it"),
        "{v}"
    );
    assert_eq!(v["retry_safe"], false, "{v}");
    assert!(has(&v, "message", "budget of 400ms"), "{v}");
    assert!(
        has(&v, "advice", "this client's deadline (400ms) passed"),
        "{v}"
    );

    // Returned: the server answers 4 at once, far within a 5 s budget.
    let (_server, addr) = grpc_fault_server(&["status", "4"]);
    let (code, v) = empty_call(&dir, addr, &["--deadline", "5s"]);
    assert_eq!(code, 14, "{v}");
    assert_eq!(v["code"], "DeadlineExceeded", "{v}");
    assert_eq!(v["layer"], "gRPC status", "{v}");
    assert_eq!(
        v["initiator"], "the server's application (a grpc-status it sent)",
        "{v}"
    );
    assert!(has(&v, "fate", "processed"), "{v}");
    assert_eq!(v["retry_safe"], false, "{v}");
    assert!(
        has(
            &v,
            "advice",
            "the server or something behind it ran out of time"
        ),
        "{v}"
    );

    // Inherited: the server answers 4 at eight tenths of the grpc-timeout it got
    // (steadfast counts a status after three quarters of the budget as inherited).
    let (_server, addr) = grpc_fault_server(&["status", "4", "deadline"]);
    let (code, v) = empty_call(&dir, addr, &["--deadline", "3s"]);
    assert_eq!(code, 14, "{v}");
    assert_eq!(v["code"], "DeadlineExceeded", "{v}");
    assert_eq!(v["layer"], "gRPC status", "{v}");
    assert!(
        has(&v, "initiator", "enforcing the deadline this call sent"),
        "{v}"
    );
    assert_eq!(v["retry_safe"], false, "{v}");
    assert!(
        has(
            &v,
            "advice",
            "the server enforced the deadline this call sent"
        ),
        "{v}"
    );
    assert!(has(&v, "advice", "grpc-timeout 3s"), "{v}");
}

#[test]
fn unimplemented_unknown_method_unknown_service_proto_mismatch_and_handler() {
    let dir = TempDir::new("call-unimplemented");
    let (_server, addr) = steadfast_serve(&[]);
    let addr = addr.to_string();
    let call_with = |package: &str, service: &str, method: &str| {
        let proto = write_proto(&dir, package, service, method);
        let target = format!("{package}.{service}/{method}");
        diagnosis(&["--plaintext", "--proto", &proto, &addr, &target])
    };

    // A method the server's TestService does not have.
    let (code, v) = call_with("grpc.testing", "TestService", "NoSuchCall");
    assert_eq!(code, 22, "{v}");
    assert_eq!(v["code"], "Unimplemented", "{v}");
    assert_eq!(v["layer"], "gRPC status", "{v}");
    assert!(has(&v, "initiator", "no handler is registered"), "{v}");
    assert!(has(&v, "fate", "not processed"), "{v}");
    assert_eq!(v["retry_safe"], true, "{v}");
    assert!(
        has(&v, "advice", "unknown method: the server's grpc.testing.TestService has no method NoSuchCall; it has: EmptyCall, UnaryCall"),
        "{v}"
    );

    // A service the server does not have.
    let (code, v) = call_with("grpc.testing", "NoSuchService", "EmptyCall");
    assert_eq!(code, 22, "{v}");
    assert!(has(&v, "fate", "not processed"), "{v}");
    assert_eq!(v["retry_safe"], true, "{v}");
    assert!(
        has(
            &v,
            "advice",
            "unknown service: the server has no service grpc.testing.NoSuchService; it offers:"
        ),
        "{v}"
    );

    // The .proto files' package is not the server's: a proto mismatch.
    let (code, v) = call_with("testing", "TestService", "EmptyCall");
    assert_eq!(code, 22, "{v}");
    assert!(has(&v, "fate", "not processed"), "{v}");
    assert!(
        has(&v, "advice", "proto mismatch: the --proto files name the service testing.TestService, the server has grpc.testing.TestService"),
        "{v}"
    );

    // The server lists the method, and its handler answers UNIMPLEMENTED.
    let (code, v) = diagnosis(&[
        "--plaintext",
        &addr,
        "grpc.testing.TestService/UnimplementedCall",
    ]);
    assert_eq!(code, 22, "{v}");
    assert_eq!(
        v["initiator"], "the server's application (a grpc-status it sent)",
        "{v}"
    );
    assert_eq!(v["retry_safe"], false, "{v}");
    assert!(
        has(&v, "advice", "its handler answered UNIMPLEMENTED"),
        "{v}"
    );
}

#[test]
fn a_proxy_that_strips_trailers_and_load_balancer_answers_with_their_body() {
    let dir = TempDir::new("call-http");
    // HTTP 200, application/grpc, a message, END_STREAM: no grpc-status.
    let (_server, addr) = grpc_fault_server(&["notrailers"]);
    let (code, v) = empty_call(&dir, addr, &[]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["code"], "Unknown", "{v}");
    assert_eq!(v["layer"], "HTTP", "{v}");
    assert!(has(&v, "initiator", "a proxy in the path"), "{v}");
    assert!(has(&v, "fate", "ended without grpc-status"), "{v}");
    assert_eq!(v["retry_safe"], false, "{v}");
    assert!(has(&v, "message", "missing grpc-status"), "{v}");
    assert!(has(&v, "advice", "drops HTTP/2 trailers"), "{v}");

    for (status, advice) in [("503", "no healthy backend"), ("429", "rate limiting")] {
        let (_server, addr) = grpc_fault_server(&["http", status]);
        let (code, v) = empty_call(&dir, addr, &[]);
        assert_eq!(code, 4, "{v}");
        assert_eq!(v["code"], "Unavailable", "{v}");
        assert_eq!(v["layer"], "HTTP", "{v}");
        assert!(has(&v, "initiator", "proxy or load balancer"), "{v}");
        assert!(has(&v, "fate", "unknown"), "{v}");
        assert_eq!(v["retry_safe"], false, "{v}");
        assert!(
            has(&v, "message", &format!("the server answered HTTP {status}")),
            "{v}"
        );
        assert!(has(&v, "message", "server: edge-proxy/1.0"), "{v}");
        // Its body, as the load balancer wrote it.
        assert!(
            has(
                &v,
                "message",
                "body: \"upstream connect error or disconnect/reset before headers"
            ),
            "{v}"
        );
        assert!(has(&v, "advice", advice), "{status}: {v}");
    }

    // Under a retry policy too (each attempt answered 503): the last answer's body.
    let (_server, addr) = grpc_fault_server(&["http", "503"]);
    let config = r#"{"methodConfig": [{"name": [{"service": "grpc.testing.TestService"}],
        "retryPolicy": {"maxAttempts": 2, "initialBackoff": "0.01s", "maxBackoff": "0.01s",
        "backoffMultiplier": 1, "retryableStatusCodes": ["UNAVAILABLE"]}}]}"#;
    let (code, v) = empty_call(&dir, addr, &["--service-config", config]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["layer"], "HTTP", "{v}");
    assert!(has(&v, "message", "the server answered HTTP 503"), "{v}");
    assert!(has(&v, "message", "body: \"upstream connect error"), "{v}");
    // With -v, each attempt: its status, then the delay before the next.
    let proto = write_proto(&dir, "grpc.testing", "TestService", "EmptyCall");
    let out = run(
        STEADFAST,
        &[
            "call",
            "-v",
            "--plaintext",
            "--proto",
            &proto,
            "--service-config",
            config,
            &addr.to_string(),
            "grpc.testing.TestService/EmptyCall",
        ],
        LIMIT,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("gRPC attempt failed attempt=1 code=Unavailable"),
        "{err}"
    );
    assert!(err.contains("gRPC retry attempt=2 delay="), "{err}");
    assert!(
        err.contains("gRPC attempt failed attempt=2 code=Unavailable"),
        "{err}"
    );
}

#[test]
fn keepalive_timeout_no_settings_and_settings_never_acknowledged() {
    let dir = TempDir::new("call-silence");
    // The server stops reading mid-call: keepalive PINGs go unanswered.
    let (_server, addr) = grpc_fault_server(&["stall"]);
    let (code, v) = empty_call(
        &dir,
        addr,
        &[
            "--keepalive-time",
            "200ms",
            "--keepalive-timeout",
            "300ms",
            "--deadline",
            "20s",
        ],
    );
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["code"], "Unavailable", "{v}");
    assert_eq!(v["layer"], "HTTP/2 connection", "{v}");
    assert_eq!(v["initiator"], "this endpoint", "{v}");
    assert!(
        has(&v, "fate", "sent; the server may have processed it"),
        "{v}"
    );
    assert_eq!(v["retry_safe"], false, "{v}");
    assert!(
        has(
            &v,
            "message",
            "no response to a keepalive PING within 300ms"
        ),
        "{v}"
    );
    assert!(has(&v, "advice", "even PINGs"), "{v}");

    // Accepts, and sends nothing: no SETTINGS, the HTTP/2 handshake stalls.
    // (A 5 s deadline: connecting may take 4 s, the ACK 4.5 s; each timer well apart.)
    let addr = mute_listener(b"");
    let (code, v) = empty_call(&dir, addr, &["--deadline", "5s"]);
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["layer"], "HTTP/2 connection", "{v}");
    assert_eq!(v["fate"], "never sent", "{v}");
    assert_eq!(v["retry_safe"], true, "{v}");
    assert!(has(&v, "message", "the server sent no SETTINGS"), "{v}");

    // Sends its SETTINGS (empty), never acknowledges ours.
    let addr = mute_listener(b"\x00\x00\x00\x04\x00\x00\x00\x00\x00");
    let (code, v) = empty_call(&dir, addr, &["--deadline", "5s"]);
    assert_eq!(code, 4, "{v}");
    assert_eq!(v["layer"], "HTTP/2 connection", "{v}");
    assert_eq!(v["initiator"], "this endpoint", "{v}");
    assert!(has(&v, "goaway", "SETTINGS_TIMEOUT"), "{v}");
    assert!(has(&v, "advice", "never acknowledged this client's"), "{v}");
}

/// A grpcio server (tests/peers/grpcio_server.py) with grpc.health.v1.
fn grpcio_server(args: &[&str]) -> (Proc, u16) {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/grpcio_server.py");
    let mut command = Command::new("python3");
    command
        .arg(&script)
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let (proc, rx) = spawn_reporting(command, "grpcio_server.py");
    let port = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("grpcio_server.py printed its port (is grpcio installed?)")
        .trim()
        .parse()
        .expect("a port");
    (proc, port)
}

const HEALTH_PROTO: &str = "syntax = \"proto3\";\npackage grpc.health.v1;\n\
    message HealthCheckRequest { string service = 1; }\n\
    message HealthCheckResponse {\n  enum ServingStatus { UNKNOWN = 0; SERVING = 1; NOT_SERVING = 2; SERVICE_UNKNOWN = 3; }\n  ServingStatus status = 1;\n}\n\
    service Health { rpc Check(HealthCheckRequest) returns (HealthCheckResponse); }\n";

#[test]
fn proto_files_and_a_client_certificate_against_grpcio_requiring_client_auth() {
    let dir = TempDir::new("call-mtls");
    let server = steadfast_testkit::test_ca(&["localhost"]);
    let client = steadfast_testkit::test_ca(&["steadfast-call"]);
    let files = [
        ("ca.pem", &server.ca_pem),
        ("server.pem", &server.server_cert_pem),
        ("server.key", &server.server_key_pem),
        ("client-ca.pem", &client.ca_pem),
        ("client.pem", &client.server_cert_pem),
        ("client.key", &client.server_key_pem),
    ];
    for (name, pem) in files {
        std::fs::write(dir.path(name), pem).unwrap();
    }
    let path = |name: &str| dir.path(name).to_string_lossy().into_owned();
    // The .proto in a directory of its own, found through -I.
    std::fs::create_dir_all(dir.path("protos/grpc/health/v1")).unwrap();
    std::fs::write(dir.path("protos/grpc/health/v1/health.proto"), HEALTH_PROTO).unwrap();
    let (_grpcio, port) = grpcio_server(&[
        "--tls",
        &path("server.pem"),
        &path("server.key"),
        &path("client-ca.pem"),
    ]);
    let addr = format!("localhost:{port}");
    let common = [
        "--cacert".to_owned(),
        path("ca.pem"),
        "-I".to_owned(),
        path("protos"),
        "--proto".to_owned(),
        "grpc/health/v1/health.proto".to_owned(),
    ];
    let common: Vec<&str> = common.iter().map(String::as_str).collect();

    // With the client certificate: served.
    let out = run(
        STEADFAST,
        &[
            &["call"][..],
            &common,
            &["--cert", &path("client.pem"), "--key", &path("client.key")],
            &[&addr, "grpc.health.v1.Health/Check"],
        ]
        .concat(),
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out));
    let v: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(v["status"], "SERVING", "{}", text(&out));

    // Without it, the server ends the handshake: TLS, nothing sent.
    let (code, v) = diagnosis(&[&common[..], &[&addr, "grpc.health.v1.Health/Check"]].concat());
    // (TLS 1.3: the client's handshake completes first; the server then closes.)
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["layer"], "TLS", "{v}");
    assert!(has(&v, "initiator", "the peer"), "{v}");
    assert_eq!(v["fate"], "never sent", "{v}");
    assert_eq!(v["retry_safe"], true, "{v}");
    assert!(has(&v, "advice", "requires a client certificate"), "{v}");
    // A certificate signed by a CA the server does not trust for clients (the
    // server's own CA): refused the same way, and the advice is about that one.
    let (code, v) = diagnosis(
        &[
            &common[..],
            &["--cert", &path("server.pem"), "--key", &path("server.key")],
            &[&addr, "grpc.health.v1.Health/Check"],
        ]
        .concat(),
    );
    assert_eq!(code, 3, "{v}");
    assert_eq!(v["layer"], "TLS", "{v}");
    assert!(
        has(&v, "advice", "rejected this client's certificate"),
        "{v}"
    );

    // --proto lists what the files hold, without asking the server.
    let out = run(
        STEADFAST,
        &[&["call"][..], &common, &[&addr, "list"]].concat(),
        LIMIT,
    );
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "grpc.health.v1.Health"
    );
    // A file that does not parse is a usage error that names it.
    std::fs::write(dir.path("protos/broken.proto"), "message {").unwrap();
    let out = run(
        STEADFAST,
        &[
            "call",
            "--proto",
            &path("protos/broken.proto"),
            &addr,
            "list",
        ],
        LIMIT,
    );
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("broken.proto"),
        "{}",
        text(&out)
    );
}

#[test]
fn rich_error_details_are_decoded() {
    let dir = TempDir::new("call-details");
    let (_server, addr) = grpc_fault_server(&["details"]);
    let (code, v) = empty_call(&dir, addr, &[]);
    assert_eq!(code, 18, "{v}");
    assert_eq!(v["code"], "ResourceExhausted", "{v}");
    assert_eq!(v["message"], "quota exceeded", "{v}");
    assert_eq!(v["layer"], "gRPC status", "{v}");
    assert_eq!(
        v["details"],
        serde_json::json!([
            {"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "RATE_LIMITED",
             "domain": "edge.example", "metadata": {"limit": "10"}},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1.5s"},
        ]),
        "{v}"
    );
    assert!(has(&v, "advice", "back off"), "{v}");
    assert!(
        has(
            &v,
            "advice",
            "the server asks to wait 1.5s before a retry (RetryInfo)"
        ),
        "{v}"
    );
    // Without --json, one line per detail.
    let proto = write_proto(&dir, "grpc.testing", "TestService", "EmptyCall");
    let out = run(
        STEADFAST,
        &[
            "call",
            "--plaintext",
            "--proto",
            &proto,
            &addr.to_string(),
            "grpc.testing.TestService/EmptyCall",
        ],
        LIMIT,
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("  details:    {\"@type\":\"type.googleapis.com/google.rpc.ErrorInfo\""),
        "{err}"
    );
}

#[test]
fn unimplemented_from_grpcio_through_its_v1alpha_reflection_or_without_reflection() {
    let dir = TempDir::new("call-grpcio-unimplemented");
    // grpcio serves only grpc.health.v1 here; the call is for grpc.testing.
    let (_grpcio, port) = grpcio_server(&[]);
    let (code, v) = empty_call(&dir, ([127, 0, 0, 1], port).into(), &[]);
    assert_eq!(code, 22, "{v}");
    assert_eq!(v["code"], "Unimplemented", "{v}");
    assert!(has(&v, "initiator", "no handler is registered"), "{v}");
    assert!(has(&v, "fate", "not processed"), "{v}");
    assert_eq!(v["retry_safe"], true, "{v}");
    assert!(
        has(&v, "advice", "unknown service: the server has no service grpc.testing.TestService; it offers: grpc.health.v1.Health"),
        "{v}"
    );

    // Without reflection, which part is unknown cannot be told, and it says so.
    let (_grpcio, port) = grpcio_server(&["--no-reflection"]);
    let (code, v) = empty_call(&dir, ([127, 0, 0, 1], port).into(), &[]);
    assert_eq!(code, 22, "{v}");
    assert!(has(&v, "initiator", "which cannot be told"), "{v}");
    assert_eq!(v["retry_safe"], false, "{v}");
    assert!(
        has(&v, "advice", "no reflection service to tell which"),
        "{v}"
    );
    // And `list`, through reflection, says what to use instead.
    let (code, v) = diagnosis(&["--plaintext", &format!("127.0.0.1:{port}"), "list"]);
    assert_eq!(code, 22, "{v}");
    assert!(
        has(&v, "advice", "the server has no reflection service"),
        "{v}"
    );
    assert!(has(&v, "advice", "--proto FILE"), "{v}");
    assert!(
        has(&v, "initiator", "no reflection service is registered"),
        "{v}"
    );
    assert!(has(&v, "fate", "not processed"), "{v}");
    assert_eq!(v["retry_safe"], true, "{v}");
}
