//! Bad input gets a status, not a hang or a panic: a raw HTTP/2 peer (Python `h2`,
//! `bad_input_h2.py`) sends malformed gRPC calls to our Server, and each must end
//! with the grpc-status the spec asks for, promptly.

mod common;

use std::time::Duration;

use common::{serve, EchoService, TestServer};
use steadfast_grpc::Server;
use steadfast_grpc_example::echo::echo_server::EchoServer;
use tonic::Code;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/bad_input_h2.py");

/// The largest message the test server decodes.
const MAX_DECODING: usize = 64;

async fn serve_limited() -> TestServer {
    let (service, events) = EchoService::new();
    let server = Server::builder()
        .add_service(EchoServer::new(service).max_decoding_message_size(MAX_DECODING));
    serve(server, events).await
}

/// What the raw peer printed for `case`: one line per header, trailer, reset; "end"
/// last. The peer is killed if it has not finished in 15 s.
async fn raw_call(server: &TestServer, case: &str) -> Vec<String> {
    let child = tokio::process::Command::new("python3")
        .arg(SCRIPT)
        .arg(server.addr.to_string())
        .arg(case)
        .kill_on_drop(true)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::inherit())
        .spawn()
        .expect("python3 runs (h2: scripts/requirements.txt)");
    let output = tokio::time::timeout(Duration::from_secs(15), child.wait_with_output())
        .await
        .expect("the raw peer finished within 15 s")
        .expect("the raw peer's output");
    assert!(output.status.success(), "raw peer failed for {case}");
    let lines: Vec<String> = String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(lines.last().map(String::as_str), Some("end"), "{lines:?}");
    lines
}

/// The grpc-status the peer received, asserting the call ended with it (no hang, no
/// bare reset).
fn grpc_status(lines: &[String]) -> Code {
    assert!(!lines.iter().any(|l| l == "timeout"), "hung: {lines:?}");
    let status = lines
        .iter()
        .find_map(|l| l.strip_prefix("grpc-status: "))
        .unwrap_or_else(|| panic!("no grpc-status: {lines:?}"));
    Code::from(status.parse::<i32>().expect("a numeric grpc-status"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_above_the_limit_is_resource_exhausted_before_it_arrives() {
    let server = serve_limited().await;
    // The prefix announces ~4 GiB and only 5 bytes follow, without END_STREAM: the
    // status can only come from the prefix, before any memory for the message.
    let lines = raw_call(&server, "oversized").await;
    assert_eq!(grpc_status(&lines), Code::ResourceExhausted, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_flag_without_grpc_encoding_is_internal() {
    let server = serve_limited().await;
    let lines = raw_call(&server, "compressed-no-encoding").await;
    assert_eq!(grpc_status(&lines), Code::Internal, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_cut_off_by_end_stream_is_internal() {
    let server = serve_limited().await;
    let lines = raw_call(&server, "truncated").await;
    assert_eq!(grpc_status(&lines), Code::Internal, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_grpc_timeout_is_internal_with_a_clear_message() {
    let server = serve_limited().await;
    let lines = raw_call(&server, "bad-timeout").await;
    assert_eq!(grpc_status(&lines), Code::Internal, "{lines:?}");
    let message = lines
        .iter()
        .find_map(|l| l.strip_prefix("grpc-message: "))
        .unwrap_or_else(|| panic!("no grpc-message: {lines:?}"));
    assert!(message.contains("grpc-timeout"), "{message}");
}
