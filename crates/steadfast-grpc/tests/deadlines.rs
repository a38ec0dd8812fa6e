//! Deadlines: enforced by the server (handler cancelled, DEADLINE_EXCEEDED), by the
//! client over the whole call (head and body, RST_STREAM CANCEL), and inherited by
//! the calls a handler makes (the deadline cascade).

mod common;

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use common::{bounded, echo, echo_client, serve_echo, Event};
use http_body_util::StreamBody;
use prost::Message;
use steadfast::Fate;
use steadfast_grpc::{Channel, StatusExt};
use steadfast_grpc_example::echo::echo_client::EchoClient;
use steadfast_grpc_example::echo::{EchoReply, EchoRequest};
use tokio::sync::mpsc;
use tonic::Code;

fn with_timeout(request: EchoRequest, timeout: Duration) -> tonic::Request<EchoRequest> {
    let mut request = tonic::Request::new(request);
    request.set_timeout(timeout);
    request
}

#[tokio::test]
async fn a_slow_handler_is_cancelled_and_the_call_is_deadline_exceeded() {
    let mut server = serve_echo().await;
    let mut client = echo_client(&server.url());
    let request = EchoRequest {
        sleep_ms: 5_000,
        ..echo("slow")
    };
    let started = std::time::Instant::now();
    let status = bounded(client.unary(with_timeout(request, Duration::from_millis(200))))
        .await
        .expect_err("too slow");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(server.next_event().await, Event::Cancelled("slow".into()));
}

#[tokio::test]
async fn the_handler_sees_the_deadline() {
    let server = serve_echo().await;
    let mut client = echo_client(&server.url());
    let reply = bounded(client.unary(with_timeout(echo("x"), Duration::from_secs(3))))
        .await
        .expect("unary")
        .into_inner();
    assert!((1..=3_000).contains(&reply.deadline_ms), "{reply:?}");
    let sent = steadfast_grpc::timeout::parse(reply.grpc_timeout.as_bytes()).expect("sent");
    assert!(
        sent <= Duration::from_secs(3) && sent > Duration::from_secs(2),
        "{sent:?}"
    );
}

/// One gRPC message frame.
fn frame(message: &impl Message) -> Bytes {
    let body = message.encode_to_vec();
    let mut out = Vec::with_capacity(5 + body.len());
    out.push(0);
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out.into()
}

async fn raw_unary(url: &str, grpc_timeout: &str, request: &EchoRequest) -> http::HeaderMap {
    let client = steadfast::Client::new(steadfast::PoolConfig::default());
    let request = http::Request::builder()
        .method("POST")
        .uri(format!("{url}/steadfast.test.Echo/Unary"))
        .header("content-type", "application/grpc")
        .header("te", "trailers")
        .header("grpc-timeout", grpc_timeout)
        .body(steadfast::body::full(frame(request)))
        .expect("request");
    let response = bounded(client.send(request)).await.expect("a response");
    assert_eq!(response.status(), 200);
    response.headers().clone()
}

#[tokio::test]
async fn the_server_enforces_grpc_timeout_on_its_own() {
    // A client that does not enforce the deadline itself: the server must.
    let mut server = serve_echo().await;
    let request = EchoRequest {
        sleep_ms: 5_000,
        ..echo("raw")
    };
    let headers = raw_unary(&server.url(), "100m", &request).await;
    assert_eq!(
        headers["grpc-status"], "4",
        "Trailers-Only DEADLINE_EXCEEDED"
    );
    assert_eq!(server.next_event().await, Event::Cancelled("raw".into()));
}

#[tokio::test]
async fn a_malformed_grpc_timeout_is_internal() {
    let server = serve_echo().await;
    let headers = raw_unary(&server.url(), "123456789m", &echo("x")).await;
    assert_eq!(headers["grpc-status"], "13");
    let message = headers["grpc-message"].to_str().expect("ascii");
    assert!(message.contains("malformed"), "{message}");
}

#[tokio::test]
async fn the_deadline_cascades_through_a_second_hop() {
    let second = serve_echo().await;
    let first = serve_echo().await;
    let mut client = echo_client(&first.url());
    let request = EchoRequest {
        forward_to: second.url(),
        ..echo("two hops")
    };
    let reply = bounded(client.unary(with_timeout(request, Duration::from_secs(3))))
        .await
        .expect("unary")
        .into_inner();
    assert_eq!(reply.hops, 2);
    assert_eq!(reply.message, "two hops");
    // The second hop got the first's remaining budget, not "no deadline".
    let inherited = steadfast_grpc::timeout::parse(reply.grpc_timeout.as_bytes())
        .expect("the first hop sent grpc-timeout");
    assert!(inherited < Duration::from_secs(3), "{inherited:?}");
    assert!(inherited > Duration::from_secs(2), "{inherited:?}");
    assert!((1..3_000).contains(&reply.deadline_ms), "{reply:?}");
}

#[tokio::test]
async fn an_inherited_deadline_cancels_the_second_hop() {
    let mut second = serve_echo().await;
    let first = serve_echo().await;
    let mut client = echo_client(&first.url());
    let request = EchoRequest {
        forward_to: second.url(),
        sleep_ms: 5_000,
        ..echo("deep")
    };
    let status = bounded(client.unary(with_timeout(request, Duration::from_millis(300))))
        .await
        .expect_err("too slow");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    // The second hop's handler (which sleeps; the first forwards at once) is
    // cancelled by the deadline it inherited.
    assert_eq!(second.next_event().await, Event::Cancelled("deep".into()));
}

/// A plain HTTP/2 server that answers gRPC headers and one message, then stalls
/// without ever ending the stream (and ignores grpc-timeout): only the client can end
/// the call. Reports each request's grpc-timeout and, when the client cancels, the
/// closing of the response body.
async fn stalling_server(
    head_too: bool,
) -> (
    String,
    mpsc::UnboundedReceiver<String>,
    mpsc::UnboundedReceiver<()>,
    steadfast::ShutdownHandle,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (timeouts_tx, timeouts) = mpsc::unbounded_channel();
    let (closed_tx, closed) = mpsc::unbounded_channel();
    let server = steadfast::Server::new(steadfast::ServerConfig::default());
    let shutdown = server.shutdown_handle();
    let service = steadfast::service_fn(move |request: http::Request<steadfast::RecvBody>| {
        let timeouts_tx = timeouts_tx.clone();
        let closed_tx = closed_tx.clone();
        async move {
            let timeout = request
                .headers()
                .get("grpc-timeout")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let _ = timeouts_tx.send(timeout);
            if head_too {
                std::future::pending::<()>().await;
            }
            let (tx, rx) = mpsc::channel::<Result<http_body::Frame<Bytes>, Infallible>>(4);
            let reply = EchoReply {
                message: "first".into(),
                ..EchoReply::default()
            };
            tx.send(Ok(http_body::Frame::data(frame(&reply))))
                .await
                .expect("queued");
            tokio::spawn(async move {
                // Resolves when the response body is dropped: the stream was reset.
                tx.closed().await;
                let _ = closed_tx.send(());
            });
            let body = StreamBody::new(tokio_stream::wrappers::ReceiverStream::new(rx));
            Ok::<_, Infallible>(
                http::Response::builder()
                    .header("content-type", "application/grpc")
                    .body(body)
                    .expect("response"),
            )
        }
    });
    tokio::spawn(server.serve(listener, service));
    (url, timeouts, closed, shutdown)
}

#[tokio::test]
async fn the_client_deadline_covers_the_response_body() {
    let (url, mut timeouts, mut closed, shutdown) = stalling_server(false).await;
    let mut client = echo_client(&url);
    let request = EchoRequest {
        count: 2,
        ..echo("x")
    };
    let mut stream =
        bounded(client.server_stream(with_timeout(request, Duration::from_millis(300))))
            .await
            .expect("the head arrives")
            .into_inner();
    let first = bounded(stream.message()).await.expect("one message");
    assert_eq!(first.map(|r| r.message).as_deref(), Some("first"));
    let started = std::time::Instant::now();
    let status = bounded(stream.message())
        .await
        .expect_err("the body stalls");
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert_eq!(status.fate(), Some(Fate::Processed));
    assert!(
        status
            .message()
            .contains("300ms (set on the request (grpc-timeout)) ran out"),
        "{}",
        status.message()
    );
    let sent = timeouts.recv().await.expect("a request");
    let sent = steadfast_grpc::timeout::parse(sent.as_bytes()).expect("grpc-timeout sent");
    assert!(
        sent <= Duration::from_millis(300) && sent > Duration::from_millis(200),
        "{sent:?}"
    );
    // The stream was cancelled: the server's body was dropped.
    tokio::time::timeout(Duration::from_secs(2), closed.recv())
        .await
        .expect("the client reset the stream");
    shutdown.abort();
}

#[tokio::test]
async fn the_channel_default_timeout_covers_the_response_head() {
    let (url, _timeouts, _closed, shutdown) = stalling_server(true).await;
    let channel = Channel::builder(&url)
        .expect("target")
        .timeout(Duration::from_millis(200))
        .build();
    let mut client = EchoClient::new(channel);
    let status = bounded(client.unary(echo("x"))).await.expect_err("no head");
    assert_eq!(status.code(), Code::DeadlineExceeded, "{status:?}");
    assert!(
        status.message().contains("the channel's default timeout"),
        "{}",
        status.message()
    );
    // The request was written and the stream reset at the deadline: the server may
    // have processed it.
    assert_eq!(status.fate(), Some(Fate::MaybeProcessed), "{status:?}");
    assert!(!status.is_retry_safe());
    assert!(status
        .steadfast_error()
        .is_some_and(steadfast::Error::is_deadline_exceeded));
    shutdown.abort();
}

#[tokio::test]
async fn an_expired_inherited_budget_fails_before_sending() {
    // Explicit zero: nothing is sent, and the Status says so.
    let server = serve_echo().await;
    let mut client = echo_client(&server.url());
    let status = bounded(client.unary(with_timeout(echo("x"), Duration::ZERO)))
        .await
        .expect_err("no budget");
    assert_eq!(status.code(), Code::DeadlineExceeded);
    assert_eq!(status.fate(), Some(Fate::NotSent));
    assert!(status.is_retry_safe());
}
