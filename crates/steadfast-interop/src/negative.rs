//! The client side of grpc's `doc/negative-http2-interop-test-descriptions.md`: a
//! UnaryCall (the large_unary request) against a server that misbehaves at the HTTP/2
//! level, and what the client must make of it.
//!
//! The descriptions say that the goaway and ping responses are "1024 bytes in size";
//! grpc's own clients (grpc-go's `negative_http2_client.go`) and servers
//! (`test/http2_test`) use the requested 314159, as these cases do. For the resets
//! they only say "Call was not successful": these cases also check the status, which
//! `steadfast_grpc::status` maps from a RST_STREAM(NO_ERROR) without `grpc-status` to
//! INTERNAL. grpc-go expects INTERNAL after the headers and after the data, and UNKNOWN
//! during the data.

use std::time::Duration;

use steadfast::{Initiator, Layer};
use steadfast_grpc::{Channel, StatusExt};
use tonic::Code;

use crate::cases::{check_payload, failed, large_request, Failure};
use crate::pb::test_service_client::TestServiceClient;

/// The negative cases, each to be run against the misbehaving server of its name.
pub const NEGATIVE_CASES: &[&str] = &[
    "goaway",
    "rst_after_header",
    "rst_during_data",
    "rst_after_data",
    "ping",
    "max_streams",
];

/// The calls max_streams makes at once, after its first (the description's 10).
const CONCURRENT_CALLS: usize = 10;

/// Runs the negative case `name` on `channel`.
pub async fn run(name: &str, channel: Channel) -> Result<(), Failure> {
    match name {
        // The server answers the first call, then sends GOAWAY: the second must
        // succeed without the application doing anything (a new connection).
        "goaway" => {
            large_unary(&channel, "first UnaryCall").await?;
            large_unary(&channel, "UnaryCall after the GOAWAY").await
        }
        "rst_after_header" | "rst_during_data" | "rst_after_data" => {
            let result = TestServiceClient::new(channel)
                .unary_call(large_request())
                .await;
            match result {
                Ok(_) => Err(format!(
                    "the call succeeded although the server reset its stream ({name})"
                )),
                // The server's reset of the stream, and nothing else, failed the call.
                Err(status)
                    if status.code() == Code::Internal
                        && status.layer() == Some(Layer::Stream)
                        && status.initiator() == Some(Initiator::Remote) =>
                {
                    Ok(())
                }
                Err(status) => Err(format!(
                    "expected INTERNAL from the server's RST_STREAM(NO_ERROR) without \
                     grpc-status, got {:?} {:?} (layer {:?}, initiator {:?})",
                    status.code(),
                    status.message(),
                    status.layer(),
                    status.initiator()
                )),
            }
        }
        // The server sends PINGs around the headers and the data, and the trailers
        // only once every PING was acked: the call ends only if they were.
        "ping" => large_unary(&channel, "UnaryCall among PINGs").await,
        // SETTINGS_MAX_CONCURRENT_STREAMS is 1: the calls beyond it wait for a stream
        // and all succeed (the server counts its open streams).
        "max_streams" => {
            large_unary(&channel, "first UnaryCall").await?;
            let calls = (0..CONCURRENT_CALLS).map(|i| {
                let channel = channel.clone();
                tokio::spawn(async move {
                    large_unary(&channel, &format!("concurrent UnaryCall {i}")).await
                })
            });
            for call in calls.collect::<Vec<_>>() {
                call.await
                    .map_err(|e| format!("a concurrent call's task failed: {e}"))??;
            }
            Ok(())
        }
        other => Err(format!("unknown negative test case {other:?}")),
    }
}

async fn large_unary(channel: &Channel, what: &str) -> Result<(), Failure> {
    let mut request = tonic::Request::new(large_request());
    request.set_timeout(Duration::from_secs(5));
    let response = TestServiceClient::new(channel.clone())
        .unary_call(request)
        .await
        .map_err(failed(what))?;
    check_payload(what, response.get_ref().payload.as_ref(), 314_159)
}
