//! The client's RST_STREAM or a lost connection cancels the handler: the handler's
//! future is dropped (its guard reports `Event::Cancelled`) within a bound, while it
//! awaits a 60 s sleep.

mod common;

use std::time::Duration;

use common::{echo, echo_client, serve_echo, Event};
use steadfast_grpc_example::echo::EchoRequest;

/// How long a cancellation may take to reach the handler.
const BOUND: Duration = Duration::from_secs(2);

fn sleeping(message: &str) -> EchoRequest {
    EchoRequest {
        sleep_ms: 60_000,
        ..echo(message)
    }
}

async fn cancelled_within_bound(server: &mut common::TestServer, name: &str) {
    let event = tokio::time::timeout(BOUND, server.events.recv())
        .await
        .unwrap_or_else(|_| panic!("handler {name:?} not cancelled within {BOUND:?}"));
    assert_eq!(event, Some(Event::Cancelled(name.into())));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_unary_call_cancels_the_handler() {
    let mut server = serve_echo().await;
    let mut client = echo_client(&server.url());
    let call = tokio::spawn(async move { client.unary(sleeping("dropped")).await });
    // Let the call reach the handler, then drop it: RST_STREAM(CANCEL).
    tokio::time::sleep(Duration::from_millis(300)).await;
    call.abort();
    let _ = call.await;
    cancelled_within_bound(&mut server, "dropped").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_a_response_stream_cancels_the_handler() {
    let mut server = serve_echo().await;
    let mut client = echo_client(&server.url());
    let request = EchoRequest {
        count: 1_000,
        sleep_ms: 50,
        ..echo("stream")
    };
    let mut stream = common::bounded(client.server_stream(request))
        .await
        .expect("stream")
        .into_inner();
    let first = common::bounded(stream.message()).await.expect("a message");
    assert_eq!(first.map(|r| r.message).as_deref(), Some("stream 0"));
    drop(stream);
    cancelled_within_bound(&mut server, "stream").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_connection_cancels_the_handler() {
    let mut server = serve_echo().await;
    // A raw HTTP/2 peer (Python h2) starts the call "lost" and closes its socket.
    let lines = common::raw_h2_peer(server.addr, "disconnect").await;
    assert!(lines.contains(&"disconnected".to_owned()), "{lines:?}");
    cancelled_within_bound(&mut server, "lost").await;
}
