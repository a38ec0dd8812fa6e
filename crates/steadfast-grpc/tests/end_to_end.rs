//! steadfast-grpc's Channel against its Server: calls, errors, UNIMPLEMENTED, 415,
//! interceptors, and the fate of failed calls in the Status.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{bounded, echo, echo_client, serve_echo, serve_echo_with};
use steadfast::{Fate, Layer};
use steadfast_grpc::{Channel, StatusExt};
use steadfast_grpc_example::echo::echo_client::EchoClient;
use steadfast_grpc_example::echo::EchoRequest;
use steadfast_grpc_example::greeter::greeter_client::GreeterClient;
use steadfast_grpc_example::greeter::HelloRequest;
use tonic::Code;

#[tokio::test]
async fn unary_and_server_streaming_calls_work() {
    let server = serve_echo().await;
    let mut client = echo_client(&server.url());
    let reply = bounded(client.unary(echo("hi")))
        .await
        .expect("unary")
        .into_inner();
    assert_eq!(reply.message, "hi");
    assert_eq!(reply.hops, 1);
    assert_eq!(reply.deadline_ms, -1, "no deadline was set");

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
}

#[tokio::test]
async fn handler_errors_arrive_with_their_code_and_message() {
    let server = serve_echo().await;
    let mut client = echo_client(&server.url());
    let request = EchoRequest {
        fail_code: Code::NotFound as i32,
        ..echo("no such thing")
    };
    let status = bounded(client.unary(request.clone()))
        .await
        .expect_err("fails");
    assert_eq!(status.code(), Code::NotFound);
    assert_eq!(status.message(), "no such thing");
    // An answer of the server's application: no steadfast error behind it.
    assert!(status.steadfast_error().is_none());
    assert!(!status.is_retry_safe());

    // Before any message of a stream: Trailers-Only, same status.
    let status = bounded(client.server_stream(request))
        .await
        .expect_err("fails");
    assert_eq!(status.code(), Code::NotFound);
}

#[tokio::test]
async fn unknown_service_is_unimplemented() {
    let server = serve_echo().await;
    let channel = Channel::from_target(&server.url()).expect("target");
    let mut greeter = GreeterClient::new(channel);
    let status = bounded(greeter.say_hello(HelloRequest::default()))
        .await
        .expect_err("Greeter is not hosted");
    assert_eq!(status.code(), Code::Unimplemented, "{status:?}");
}

#[tokio::test]
async fn unknown_method_is_unimplemented_trailers_only() {
    let server = serve_echo().await;
    let client = steadfast::Client::new(steadfast::PoolConfig::default());
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("{}/steadfast.test.Echo/NoSuchMethod", server.url()))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .body(steadfast::body::full(Bytes::from_static(&[0, 0, 0, 0, 0])))
        .expect("request");
    let response = bounded(client.send(request)).await.expect("a response");
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["grpc-status"], "12", "Trailers-Only");
}

#[tokio::test]
async fn a_request_that_is_not_grpc_gets_415() {
    let server = serve_echo().await;
    let client = steadfast::Client::new(steadfast::PoolConfig::default());
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("{}/steadfast.test.Echo/Unary", server.url()))
        .header("content-type", "text/plain")
        .body(steadfast::body::full("hello"))
        .expect("request");
    let response = bounded(client.send(request)).await.expect("a response");
    assert_eq!(response.status(), http::StatusCode::UNSUPPORTED_MEDIA_TYPE);
    assert_eq!(response.headers()["grpc-status"], "13");
}

#[tokio::test]
async fn interceptors_see_and_add_metadata() {
    let server = serve_echo().await;
    let channel = Channel::from_target(&server.url()).expect("target");
    let mut client = EchoClient::with_interceptor(channel, |mut request: tonic::Request<()>| {
        request
            .metadata_mut()
            .insert("x-test", "intercepted".parse().expect("ascii"));
        Ok(request)
    });
    let reply = bounded(client.unary(echo("via interceptor")))
        .await
        .expect("unary");
    assert_eq!(reply.into_inner().message, "via interceptor");

    let channel = Channel::from_target(&server.url()).expect("target");
    let mut refusing = EchoClient::with_interceptor(channel, |_: tonic::Request<()>| {
        Err(tonic::Status::unauthenticated("no token"))
    });
    let status = bounded(refusing.unary(echo("x")))
        .await
        .expect_err("refused");
    assert_eq!(status.code(), Code::Unauthenticated);
}

#[tokio::test]
async fn nothing_listening_is_unavailable_never_sent() {
    // Bind and drop: a port where nothing listens.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let mut client = echo_client(&format!("http://{addr}"));
    let status = bounded(client.unary(echo("x")))
        .await
        .expect_err("nothing there");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.fate(), Some(Fate::NotSent));
    assert_eq!(status.layer(), Some(Layer::Transport));
    assert!(status.is_retry_safe());
    assert!(
        status.message().contains("TCP connect failed"),
        "the full sentence, not \"transport error\": {}",
        status.message()
    );
}

/// A server that sheds everything beyond one call per connection.
fn shedding_config() -> steadfast::ServerConfig {
    let mut config = steadfast::ServerConfig::default();
    config.max_in_flight_per_connection = Some(1);
    config
}

#[tokio::test]
async fn a_shed_call_is_retried_transparently_and_succeeds() {
    let server = serve_echo_with(shedding_config()).await;
    let mut policy = steadfast::RetryPolicy::default();
    policy.refused_retries = 10;
    policy.refused_backoff = Duration::from_millis(20);
    let channel = Channel::builder(&server.url())
        .expect("target")
        .retry_policy(policy)
        .build();
    let mut slow_client = EchoClient::new(channel.clone());
    let mut client = EchoClient::new(channel.clone());
    let slow = tokio::spawn(async move {
        let request = EchoRequest {
            sleep_ms: 300,
            ..echo("slow")
        };
        slow_client.unary(request).await
    });
    // Let the slow call take the only slot.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let reply = bounded(client.unary(echo("refused, then served")))
        .await
        .expect("retried until served");
    assert_eq!(reply.into_inner().message, "refused, then served");
    bounded(slow).await.expect("joined").expect("slow call");
    let stats = channel.client().stats();
    assert!(stats.retries_refused_stream >= 1, "{stats:?}");
}

#[tokio::test]
async fn a_shed_call_without_retry_is_unavailable_and_retry_safe() {
    let server = serve_echo_with(shedding_config()).await;
    let channel = Channel::builder(&server.url())
        .expect("target")
        .retry_policy(steadfast::RetryPolicy::disabled())
        .build();
    let mut slow_client = EchoClient::new(channel.clone());
    let mut client = EchoClient::new(channel);
    let slow = tokio::spawn(async move {
        let request = EchoRequest {
            sleep_ms: 500,
            ..echo("slow")
        };
        slow_client.unary(request).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let status = bounded(client.unary(echo("refused")))
        .await
        .expect_err("shed");
    assert_eq!(status.code(), Code::Unavailable, "{status:?}");
    assert_eq!(status.fate(), Some(Fate::Refused));
    assert_eq!(status.layer(), Some(Layer::Stream));
    assert_eq!(status.initiator(), Some(steadfast::Initiator::Remote));
    assert!(status.is_retry_safe());
    assert!(
        status.message().contains("REFUSED_STREAM"),
        "{}",
        status.message()
    );
    bounded(slow).await.expect("joined").expect("slow call");
}

#[tokio::test]
async fn a_resolver_sends_the_calls_of_a_named_target_to_its_addresses() {
    let server = serve_echo().await;
    // `.invalid` never resolves (RFC 6761): only the channel's resolver can reach it.
    let target = format!("http://server.invalid:{}", server.addr.port());
    let channel = Channel::builder(&target)
        .expect("target")
        .connect_timeout(Duration::from_secs(5))
        .resolver(steadfast::client::StaticResolver::new(vec![server.addr]))
        .build();
    let reply = bounded(EchoClient::new(channel).unary(echo("named")))
        .await
        .expect("the resolver's address answers")
        .into_inner();
    assert_eq!(reply.message, "named");
}
