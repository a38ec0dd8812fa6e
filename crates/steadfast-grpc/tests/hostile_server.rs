//! A server that answers in ways tonic's own parsing would crash on must give the
//! caller a status, never a panic: here a `grpc-status-details-bin` that is not
//! base64 (tonic's `Status::from_header_map` panics on it), in a Trailers-Only
//! response and in trailers after a message.

mod common;

use std::convert::Infallible;

use bytes::Bytes;
use common::{bounded, echo};
use http_body_util::BodyExt;
use prost::Message;
use steadfast_grpc::{Channel, ServiceConfig};
use steadfast_grpc_example::echo::echo_client::EchoClient;
use steadfast_grpc_example::echo::EchoReply;
use tonic::Code;

/// Answers `/steadfast.test.Echo/Unary` with INTERNAL and broken details, either
/// Trailers-Only or after one reply message.
async fn hostile(trailers_only: bool) -> (String, steadfast::ShutdownHandle) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let server = steadfast::Server::new(steadfast::ServerConfig::default());
    let shutdown = server.shutdown_handle();
    let service = steadfast::service_fn(
        move |request: http::Request<steadfast::RecvBody>| async move {
            let _ = request.into_body().collect().await;
            let status = |headers: &mut http::HeaderMap| {
                headers.insert("grpc-status", http::HeaderValue::from_static("13"));
                headers.insert("grpc-message", http::HeaderValue::from_static("broken"));
                headers.insert(
                    "grpc-status-details-bin",
                    http::HeaderValue::from_static("!!not*base64!!"),
                );
            };
            let mut response = http::Response::builder()
                .header("content-type", "application/grpc")
                .body(())
                .unwrap();
            if trailers_only {
                status(response.headers_mut());
                return Ok::<_, Infallible>(response.map(|()| steadfast::body::empty()));
            }
            let reply = EchoReply {
                message: "partial".into(),
                ..EchoReply::default()
            };
            let mut frame = vec![0u8];
            frame.extend_from_slice(&(reply.encoded_len() as u32).to_be_bytes());
            reply.encode(&mut frame).unwrap();
            let mut trailers = http::HeaderMap::new();
            status(&mut trailers);
            let body = http_body_util::StreamBody::new(tokio_stream::iter([
                Ok::<_, Infallible>(http_body::Frame::data(Bytes::from(frame))),
                Ok(http_body::Frame::trailers(trailers)),
            ]));
            Ok(response.map(|()| steadfast::body::boxed(body)))
        },
    );
    tokio::spawn(server.serve(listener, service));
    (url, shutdown)
}

#[tokio::test]
async fn undecodable_status_details_become_a_status_not_a_panic() {
    for trailers_only in [true, false] {
        let (url, shutdown) = hostile(trailers_only).await;
        let mut client = EchoClient::new(Channel::from_target(&url).unwrap());
        let status = bounded(client.unary(echo("x")))
            .await
            .expect_err("the server fails the call");
        assert_eq!(status.code(), Code::Internal, "{status:?}");
        assert_eq!(status.message(), "broken");
        assert!(status.details().is_empty());
        // Through the retry path too (it reads Trailers-Only statuses itself).
        let config = r#"{"methodConfig": [{"name": [{}], "retryPolicy": {"maxAttempts": 2,
            "initialBackoff": "0.001s", "maxBackoff": "0.001s", "backoffMultiplier": 1,
            "retryableStatusCodes": ["INTERNAL"]}}]}"#;
        let channel = Channel::builder(&url)
            .unwrap()
            .service_config(ServiceConfig::from_json(config).unwrap())
            .build();
        let status = bounded(EchoClient::new(channel.clone()).unary(echo("x")))
            .await
            .expect_err("fails again");
        assert_eq!(status.code(), Code::Internal);
        // Trailers-Only INTERNAL is retried; after a message the call is committed.
        assert_eq!(channel.retry_stats().retries, u64::from(trailers_only));
        shutdown.abort();
    }
}
