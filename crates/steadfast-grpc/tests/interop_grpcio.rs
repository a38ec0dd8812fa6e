//! Interop with Python grpcio, a peer this project did not write, both ways: our
//! Channel against a grpcio server, and a grpcio client against our Server. The
//! Python side (`interop_grpcio.py`) generates its stubs from the same `.proto` files
//! with grpcio-tools. Every process is killed on drop; every wait is bounded.

mod common;

use std::time::Duration;

use common::python::Python;
use common::{bounded, echo, echo_client, serve_echo, Event};
use steadfast_grpc::Channel;
use steadfast_grpc_example::echo::EchoRequest;
use steadfast_grpc_example::greeter::greeter_client::GreeterClient;
use steadfast_grpc_example::greeter::HelloRequest;
use tonic::Code;

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/interop_grpcio.py");

fn python(args: &[&str]) -> Python {
    Python::start(SCRIPT, args)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn our_channel_calls_a_grpcio_server() {
    let python = python(&["server"]);
    let port = tokio::task::block_in_place(|| python.line(Duration::from_secs(60)))
        .expect("the grpcio server prints its port");
    let url = format!("http://127.0.0.1:{}", port.trim());
    let mut client = echo_client(&url);

    let reply = bounded(client.unary(echo("hello grpcio")))
        .await
        .expect("unary");
    assert_eq!(reply.into_inner().message, "hello grpcio");

    let mut request = tonic::Request::new(echo("deadline"));
    request.set_timeout(Duration::from_secs(5));
    let reply = bounded(client.unary(request))
        .await
        .expect("unary")
        .into_inner();
    assert!(
        (1..=5_000).contains(&reply.deadline_ms),
        "grpcio saw the deadline: {reply:?}"
    );

    let request = EchoRequest {
        count: 3,
        ..echo("s")
    };
    let mut stream = bounded(client.server_stream(request))
        .await
        .expect("stream")
        .into_inner();
    let mut got = Vec::new();
    while let Some(reply) = bounded(stream.message()).await.expect("message") {
        got.push(reply.message);
    }
    assert_eq!(got, ["s 0", "s 1", "s 2"]);

    let request = EchoRequest {
        fail_code: Code::NotFound as i32,
        ..echo("not here")
    };
    let status = bounded(client.unary(request)).await.expect_err("fails");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "not here");

    let mut request = tonic::Request::new(EchoRequest {
        sleep_ms: 5_000,
        ..echo("slow")
    });
    request.set_timeout(Duration::from_millis(300));
    let status = bounded(client.unary(request)).await.expect_err("too slow");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");

    let mut greeter = GreeterClient::new(Channel::from_target(&url).expect("target"));
    let status = bounded(greeter.say_hello(HelloRequest::default()))
        .await
        .expect_err("not hosted");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_grpcio_client_calls_our_server() {
    let mut server = serve_echo().await;
    let target = server.addr.to_string();
    let mut python = python(&["client", &target]);
    let lines = tokio::task::block_in_place(|| python.rest(Duration::from_secs(90)));
    let status = tokio::task::block_in_place(|| python.wait(Duration::from_secs(10)));
    assert!(
        status.success(),
        "grpcio client failed:\n{}",
        lines.join("\n")
    );
    assert_eq!(
        lines.last().map(String::as_str),
        Some("all ok"),
        "{lines:?}"
    );
    for case in [
        "unary",
        "deadline_seen",
        "server_stream",
        "status_and_message",
        "deadline_exceeded",
        "unimplemented_service",
        "cancel",
    ] {
        assert!(lines.contains(&format!("ok {case}")), "{case}: {lines:?}");
    }
    // The handlers of the call whose deadline passed and of the call the client
    // cancelled were cancelled.
    let mut events = Vec::new();
    while let Ok(event) = server.events.try_recv() {
        events.push(event);
    }
    for name in ["slow", "grpcio-cancel"] {
        let wanted = Event::Cancelled(name.into());
        while !events.contains(&wanted) {
            events.push(server.next_event().await);
        }
    }
}
