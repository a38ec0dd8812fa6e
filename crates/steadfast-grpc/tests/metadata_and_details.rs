//! `-bin` metadata is accepted padded or not and emitted unpadded (a raw HTTP/2 peer,
//! Python `h2`, sends it); rich error details (`grpc-status-details-bin`, tonic-types'
//! BadRequest / RetryInfo / ErrorInfo) round-trip through our Channel and Server.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{bounded, raw_h2_peer, serve, TestServer};
use steadfast_grpc::{Channel, Server};
use steadfast_grpc_example::greeter::greeter_client::GreeterClient;
use steadfast_grpc_example::greeter::greeter_server::{Greeter, GreeterServer};
use steadfast_grpc_example::greeter::{HelloReply, HelloRequest};
use tonic::metadata::BinaryMetadataValue;
use tonic::{Code, Request, Response, Status};
use tonic_types::ErrorDetails;

/// Echoes `x-trace-bin` (decoded, then encoded again) and its bytes in hex;
/// the name "rich" fails with every detail the test checks.
struct Greeting;

#[tonic::async_trait]
impl Greeter for Greeting {
    async fn say_hello(
        &self,
        request: Request<HelloRequest>,
    ) -> Result<Response<HelloReply>, Status> {
        if request.get_ref().name == "rich" {
            let mut details =
                ErrorDetails::with_bad_request_violation("name", "must not be \"rich\"");
            details.set_retry_info(Some(Duration::from_millis(1_500)));
            details.set_error_info(
                "NAME_TAKEN",
                "steadfast.example",
                HashMap::from([("name".to_owned(), "rich".to_owned())]),
            );
            // A path: steadfast_grpc has a `StatusExt` too.
            return Err(<Status as tonic_types::StatusExt>::with_error_details(
                Code::InvalidArgument,
                "the name is taken",
                details,
            ));
        }
        let trace = request.metadata().get_bin("x-trace-bin").cloned();
        let bytes = match &trace {
            Some(value) => value
                .to_bytes()
                .map_err(|e| Status::invalid_argument(format!("x-trace-bin: {e}")))?,
            None => Default::default(),
        };
        let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        let mut response = Response::new(HelloReply { message: hex });
        if trace.is_some() {
            // A value made from bytes, which tonic encodes without padding.
            let value = BinaryMetadataValue::from_bytes(&bytes);
            response.metadata_mut().insert_bin("x-trace-bin", value);
        }
        Ok(response)
    }

    type SayHellosStream = tokio_stream::Empty<Result<HelloReply, Status>>;

    async fn say_hellos(
        &self,
        _: Request<HelloRequest>,
    ) -> Result<Response<Self::SayHellosStream>, Status> {
        Err(Status::unimplemented("not in this test"))
    }
}

async fn serve_greeter() -> TestServer {
    let (_, events) = tokio::sync::mpsc::unbounded_channel();
    serve(
        Server::builder().add_service(GreeterServer::new(Greeting)),
        events,
    )
    .await
}

fn header<'a>(lines: &'a [String], name: &str) -> Option<&'a str> {
    let prefix = format!("{name}: ");
    lines.iter().find_map(|l| l.strip_prefix(prefix.as_str()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bin_metadata_is_accepted_padded_or_not_and_emitted_unpadded() {
    let server = serve_greeter().await;
    for case in ["padded-bin", "unpadded-bin"] {
        let lines = raw_h2_peer(server.addr, case).await;
        assert_eq!(
            header(&lines, "grpc-status"),
            Some("0"),
            "{case}: {lines:?}"
        );
        // The reply's message is "0102": HelloReply { message } after the 5-byte prefix.
        assert!(
            lines.iter().any(|l| l.ends_with(&hex("0102"))),
            "{case}: the handler decoded [1, 2]: {lines:?}"
        );
        assert_eq!(
            header(&lines, "x-trace-bin"),
            Some("AQI"),
            "{case}: {lines:?}"
        );
    }
}

/// The hex of a HelloReply whose message is `message`, as the raw peer prints data.
fn hex(message: &str) -> String {
    let mut bytes = vec![0x0a, message.len() as u8];
    bytes.extend_from_slice(message.as_bytes());
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bin_metadata_round_trips_through_our_channel() {
    let server = serve_greeter().await;
    let mut client = GreeterClient::new(Channel::from_target(&server.url()).expect("target"));
    let mut request = Request::new(HelloRequest {
        name: "bin".into(),
        count: 0,
    });
    request
        .metadata_mut()
        .insert_bin("x-trace-bin", BinaryMetadataValue::from_bytes(&[0, 255, 7]));
    let response = bounded(client.say_hello(request)).await.expect("say_hello");
    assert_eq!(response.get_ref().message, "00ff07");
    let value = response
        .metadata()
        .get_bin("x-trace-bin")
        .expect("x-trace-bin in the response");
    assert_eq!(
        value.to_bytes().expect("valid base64").as_ref(),
        [0, 255, 7]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rich_error_details_round_trip() {
    let server = serve_greeter().await;
    let mut client = GreeterClient::new(Channel::from_target(&server.url()).expect("target"));
    let request = HelloRequest {
        name: "rich".into(),
        count: 0,
    };
    let status = bounded(client.say_hello(request))
        .await
        .expect_err("the name is taken");
    assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
    assert_eq!(status.message(), "the name is taken");
    let details = tonic_types::StatusExt::get_error_details(&status);

    let bad_request = details.bad_request().expect("BadRequest");
    assert_eq!(bad_request.field_violations.len(), 1);
    assert_eq!(bad_request.field_violations[0].field, "name");
    assert_eq!(
        bad_request.field_violations[0].description,
        "must not be \"rich\""
    );
    let retry = details.retry_info().expect("RetryInfo");
    assert_eq!(retry.retry_delay, Some(Duration::from_millis(1_500)));
    let info = details.error_info().expect("ErrorInfo");
    assert_eq!(info.reason, "NAME_TAKEN");
    assert_eq!(info.domain, "steadfast.example");
    assert_eq!(info.metadata.get("name").map(String::as_str), Some("rich"));
}
