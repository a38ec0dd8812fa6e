//! The compression cases: client_compressed_unary, server_compressed_unary,
//! client_compressed_streaming, server_compressed_streaming.
//!
//! tonic compresses the requests of a client made with `send_compressed` (all its
//! messages) and accepts compressed responses with `accept_compressed`; the rest —
//! seeing the flag of each response message, sending one message of a compressed
//! stream uncompressed — is [`WireChannel`]'s.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use steadfast_grpc::{Channel, ResponseBody};
use tonic::body::Body as TonicBody;
use tonic::codec::CompressionEncoding::Gzip;
use tonic::{Code, Status};
use tower_service::Service;

use super::{check_payload, ensure, expect_code, failed, zeros, Failure};
use crate::framing::{CompressionPlan, MessageFlags, PlannedBody, TapBody};
use crate::pb::test_service_client::TestServiceClient;
use crate::pb::{
    BoolValue, ResponseParameters, SimpleRequest, StreamingInputCallRequest,
    StreamingOutputCallRequest,
};

/// A [`Channel`] that records the compressed flag of every response message and,
/// given a [`CompressionPlan`], sends chosen request messages uncompressed.
#[derive(Clone, Debug)]
pub struct WireChannel {
    channel: Channel,
    received: MessageFlags,
    send_plan: Option<CompressionPlan>,
}

impl WireChannel {
    /// `channel`, its response flags recorded.
    pub fn new(channel: Channel) -> Self {
        Self {
            channel,
            received: MessageFlags::default(),
            send_plan: None,
        }
    }

    /// Sends request messages as `plan` says.
    pub fn with_plan(mut self, plan: CompressionPlan) -> Self {
        self.send_plan = Some(plan);
        self
    }

    /// The compressed flags of the response messages received so far.
    pub fn received(&self) -> &MessageFlags {
        &self.received
    }
}

impl Service<http::Request<TonicBody>> for WireChannel {
    type Response = http::Response<TapBody<ResponseBody>>;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Status>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Status>> {
        self.channel.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<TonicBody>) -> Self::Future {
        let request = match &self.send_plan {
            Some(plan) => request.map(|body| TonicBody::new(PlannedBody::new(body, plan.clone()))),
            None => request,
        };
        let received = self.received.clone();
        // Called here, not in the future: the channel reads an inherited deadline in
        // `call`.
        let response = self.channel.call(request);
        Box::pin(async move { Ok(response.await?.map(|body| TapBody::new(body, received))) })
    }
}

fn flag(value: bool) -> Option<BoolValue> {
    Some(BoolValue { value })
}

fn large_request(expect_compressed: bool) -> SimpleRequest {
    SimpleRequest {
        expect_compressed: flag(expect_compressed),
        response_size: 314_159,
        payload: zeros(271_828),
        ..Default::default()
    }
}

pub(super) async fn client_compressed_unary(channel: Channel) -> Result<(), Failure> {
    let mut plain = TestServiceClient::new(channel.clone());
    let mut compressed = TestServiceClient::new(channel).send_compressed(Gzip);
    // The probe: uncompressed, but expecting compression.
    let probe = plain.unary_call(large_request(true)).await.map(drop);
    expect_code(
        "the uncompressed probe (expect_compressed=true)",
        probe,
        Code::InvalidArgument,
    )
    .map_err(|why| format!("{why}: the server does not check CompressedRequest"))?;
    let response = compressed
        .unary_call(large_request(true))
        .await
        .map_err(failed("compressed UnaryCall"))?;
    check_payload(
        "compressed UnaryCall",
        response.get_ref().payload.as_ref(),
        314_159,
    )?;
    let response = plain
        .unary_call(large_request(false))
        .await
        .map_err(failed("uncompressed UnaryCall"))?;
    check_payload(
        "uncompressed UnaryCall",
        response.get_ref().payload.as_ref(),
        314_159,
    )?;
    Ok(())
}

pub(super) async fn server_compressed_unary(channel: Channel) -> Result<(), Failure> {
    for response_compressed in [true, false] {
        let wire = WireChannel::new(channel.clone());
        let mut client = TestServiceClient::new(wire.clone()).accept_compressed(Gzip);
        let what = format!("UnaryCall with response_compressed={response_compressed}");
        let response = client
            .unary_call(SimpleRequest {
                response_compressed: flag(response_compressed),
                response_size: 314_159,
                payload: zeros(271_828),
                ..Default::default()
            })
            .await
            .map_err(failed(&what))?;
        check_payload(&what, response.get_ref().payload.as_ref(), 314_159)?;
        let seen = wire.received().seen();
        ensure!(
            seen == [response_compressed],
            "{what}: the response's compressed flags were {seen:?}"
        );
    }
    Ok(())
}

fn input(expect_compressed: bool, size: usize) -> StreamingInputCallRequest {
    StreamingInputCallRequest {
        payload: zeros(size),
        expect_compressed: flag(expect_compressed),
    }
}

pub(super) async fn client_compressed_streaming(channel: Channel) -> Result<(), Failure> {
    // The description's procedure says the case fails if the probe fails with
    // INVALID_ARGUMENT, and its assertions that the probe must fail so: the assertions
    // are what grpc's clients (C++, Java) check.
    let probe = TestServiceClient::new(channel.clone())
        .streaming_input_call(tokio_stream::iter([input(true, 27_182)]))
        .await
        .map(drop);
    expect_code(
        "the uncompressed probe (expect_compressed=true)",
        probe,
        Code::InvalidArgument,
    )
    .map_err(|why| format!("{why}: the server does not check CompressedRequest"))?;

    // One compressed stream whose second message goes uncompressed.
    let wire = WireChannel::new(channel).with_plan(CompressionPlan::new([true, false]));
    let response = TestServiceClient::new(wire)
        .send_compressed(Gzip)
        .streaming_input_call(tokio_stream::iter([
            input(true, 27_182),
            input(false, 45_904),
        ]))
        .await
        .map_err(failed("StreamingInputCall"))?;
    let size = response.get_ref().aggregated_payload_size;
    ensure!(
        size == 73_086,
        "aggregated_payload_size {size}, expected 73086"
    );
    Ok(())
}

pub(super) async fn server_compressed_streaming(channel: Channel) -> Result<(), Failure> {
    let wire = WireChannel::new(channel);
    let mut client = TestServiceClient::new(wire.clone()).accept_compressed(Gzip);
    let parameters = [(true, 31_415), (false, 92_653)];
    let request = StreamingOutputCallRequest {
        response_parameters: parameters
            .iter()
            .map(|&(compressed, size)| ResponseParameters {
                size,
                compressed: flag(compressed),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    };
    let mut responses = client
        .streaming_output_call(request)
        .await
        .map_err(failed("StreamingOutputCall"))?
        .into_inner();
    let mut count = 0;
    while let Some(response) = responses
        .message()
        .await
        .map_err(failed("StreamingOutputCall response"))?
    {
        let Some(&(_, size)) = parameters.get(count) else {
            return Err(format!("more than {} responses", parameters.len()));
        };
        check_payload("response", response.payload.as_ref(), size as usize)?;
        count += 1;
    }
    ensure!(count == parameters.len(), "{count} responses, expected 2");
    let seen = wire.received().seen();
    let expected: Vec<bool> = parameters.iter().map(|&(c, _)| c).collect();
    ensure!(
        seen == expected,
        "the responses' compressed flags were {seen:?}, expected {expected:?}"
    );
    Ok(())
}
