//! Bad input gets a status, not a hang or a panic: a raw HTTP/2 peer (Python `h2`,
//! `raw_h2_peer.py`) sends malformed gRPC calls to our Server, and each must end
//! with the grpc-status the spec asks for, promptly.

mod common;

use common::{raw_h2_peer, serve, EchoService, TestServer};
use steadfast_grpc::Server;
use steadfast_grpc_example::echo::echo_server::EchoServer;
use tonic::Code;

/// The largest message the test server decodes.
const MAX_DECODING: usize = 64;

async fn serve_limited() -> TestServer {
    let (service, events) = EchoService::new();
    let server = Server::builder()
        .add_service(EchoServer::new(service).max_decoding_message_size(MAX_DECODING));
    serve(server, events).await
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
    let lines = raw_h2_peer(server.addr, "oversized").await;
    assert_eq!(grpc_status(&lines), Code::ResourceExhausted, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compressed_flag_without_grpc_encoding_is_internal() {
    let server = serve_limited().await;
    let lines = raw_h2_peer(server.addr, "compressed-no-encoding").await;
    assert_eq!(grpc_status(&lines), Code::Internal, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_cut_off_by_end_stream_is_internal() {
    let server = serve_limited().await;
    let lines = raw_h2_peer(server.addr, "truncated").await;
    assert_eq!(grpc_status(&lines), Code::Internal, "{lines:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_grpc_timeout_is_internal_with_a_clear_message() {
    let server = serve_limited().await;
    let lines = raw_h2_peer(server.addr, "bad-timeout").await;
    assert_eq!(grpc_status(&lines), Code::Internal, "{lines:?}");
    let message = lines
        .iter()
        .find_map(|l| l.strip_prefix("grpc-message: "))
        .unwrap_or_else(|| panic!("no grpc-message: {lines:?}"));
    assert!(message.contains("grpc-timeout"), "{message}");
}
