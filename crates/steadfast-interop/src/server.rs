//! `grpc.testing.TestService` as `doc/interop-test-descriptions.md` ("Server") specifies
//! it, with [`EchoMetadata`], the layer that echoes the test metadata, and
//! [`WireCompression`], the layer that shows the handlers each request message's
//! compressed flag and sends each response message compressed or not as asked.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use http::{HeaderName, HeaderValue};
use http_body::{Body, Frame, SizeHint};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_stream::{Stream, StreamExt};
use tonic::body::Body as TonicBody;
use tonic::codec::CompressionEncoding;
use tonic::server::NamedService;
use tonic::{Code, Request, Response, Status, Streaming};
use tower_service::Service;

use crate::framing::{CompressionPlan, MessageFlags, PlannedBody, TapBody};
use crate::pb::test_service_server::{TestService, TestServiceServer};
use crate::pb::{
    BoolValue, EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest, SimpleResponse,
    StreamingInputCallRequest, StreamingInputCallResponse, StreamingOutputCallRequest,
    StreamingOutputCallResponse,
};

/// Echoed from the request headers into the response headers.
pub const ECHO_INITIAL: &str = "x-grpc-test-echo-initial";
/// Echoed from the request headers into the response trailers.
pub const ECHO_TRAILING: &str = "x-grpc-test-echo-trailing-bin";

/// The largest payload a request may ask for, so that a request cannot make the
/// server allocate without bound (the interop cases ask for at most 314159 bytes).
const MAX_RESPONSE_SIZE: usize = 4 << 20;

/// TestService, wrapped in [`WireCompression`] and [`EchoMetadata`], ready for
/// `steadfast_grpc::Server`. It accepts gzip, and sends it when a request asks for
/// it (`response_compressed`, `ResponseParameters.compressed`) and the client accepts
/// it (`grpc-accept-encoding`).
pub fn service() -> EchoMetadata<WireCompression<TestServiceServer<TestServiceImpl>>> {
    EchoMetadata(WireCompression(
        TestServiceServer::new(TestServiceImpl)
            .accept_compressed(CompressionEncoding::Gzip)
            .send_compressed(CompressionEncoding::Gzip),
    ))
}

/// The test server's TestService. `UnimplementedCall` is left unimplemented, as the
/// `unimplemented_method` case needs.
#[derive(Clone, Copy, Debug, Default)]
pub struct TestServiceImpl;

type ResponseStream =
    Pin<Box<dyn Stream<Item = Result<StreamingOutputCallResponse, Status>> + Send>>;

fn payload(size: i32) -> Result<Payload, Status> {
    let size = usize::try_from(size)
        .map_err(|_| Status::invalid_argument(format!("negative response size {size}")))?;
    if size > MAX_RESPONSE_SIZE {
        return Err(Status::invalid_argument(format!(
            "response size {size} is over the test server's {MAX_RESPONSE_SIZE}"
        )));
    }
    Ok(Payload {
        r#type: 0,
        body: vec![0; size],
    })
}

/// The status a request asked for with `response_status`, if any (code 0 is OK).
fn requested_status(status: Option<&EchoStatus>) -> Option<Status> {
    let status = status?;
    (status.code != 0).then(|| Status::new(Code::from_i32(status.code), status.message.clone()))
}

/// Whether a response may be compressed: only when the request asked for it.
fn compression(compressed: Option<&BoolValue>) -> tonic::codec::SingleMessageCompressionOverride {
    if asked(compressed) {
        tonic::codec::SingleMessageCompressionOverride::Inherit
    } else {
        tonic::codec::SingleMessageCompressionOverride::Disable
    }
}

fn asked(flag: Option<&BoolValue>) -> bool {
    flag.is_some_and(|flag| flag.value)
}

/// CompressedRequest: a request message with `expect_compressed` set must have come
/// with the compressed flag as it says, or the call fails with INVALID_ARGUMENT (the
/// description asks it of `true`; like grpc's C++ server, `false` is checked too).
/// `index` is the message's place in the request stream.
fn check_expect_compressed(
    expect: Option<&BoolValue>,
    flags: Option<&MessageFlags>,
    index: usize,
) -> Result<(), Status> {
    let Some(expect) = expect else {
        return Ok(());
    };
    match flags.and_then(|flags| flags.get(index)) {
        Some(compressed) if compressed == expect.value => Ok(()),
        Some(compressed) => Err(Status::invalid_argument(format!(
            "request message {index} has expect_compressed={} but came {}",
            expect.value,
            if compressed {
                "compressed"
            } else {
                "uncompressed"
            }
        ))),
        None => Err(Status::internal(format!(
            "the compressed flag of request message {index} was not seen (no WireCompression layer?)"
        ))),
    }
}

/// Sends the responses that `parameters` ask for, each after its interval, each
/// compressed only when its parameters ask (entered in `plan` before it is sent);
/// `false` when the client went away.
async fn send_responses(
    parameters: &[ResponseParameters],
    plan: &CompressionPlan,
    tx: &mpsc::Sender<Result<StreamingOutputCallResponse, Status>>,
) -> bool {
    for parameter in parameters {
        if parameter.interval_us > 0 {
            tokio::time::sleep(Duration::from_micros(
                parameter.interval_us.unsigned_abs().into(),
            ))
            .await;
        }
        let response = payload(parameter.size).map(|payload| StreamingOutputCallResponse {
            payload: Some(payload),
        });
        let failed = response.is_err();
        if !failed {
            plan.push(asked(parameter.compressed.as_ref()));
        }
        if tx.send(response).await.is_err() || failed {
            return false;
        }
    }
    true
}

/// The response of a streaming call, whose messages go compressed or not as `plan`
/// (filled by [`send_responses`]) says.
fn planned(
    rx: mpsc::Receiver<Result<StreamingOutputCallResponse, Status>>,
) -> (Response<ResponseStream>, CompressionPlan) {
    let plan = CompressionPlan::default();
    let mut response = Response::new(Box::pin(ReceiverStream::new(rx)) as ResponseStream);
    response.extensions_mut().insert(plan.clone());
    (response, plan)
}

#[tonic::async_trait]
impl TestService for TestServiceImpl {
    async fn empty_call(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Ok(Response::new(Empty {}))
    }

    async fn unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        let flags = request.extensions().get::<MessageFlags>().cloned();
        let request = request.into_inner();
        check_expect_compressed(request.expect_compressed.as_ref(), flags.as_ref(), 0)?;
        if let Some(status) = requested_status(request.response_status.as_ref()) {
            return Err(status);
        }
        let mut response = Response::new(SimpleResponse {
            payload: Some(payload(request.response_size)?),
            ..Default::default()
        });
        response
            .extensions_mut()
            .insert(compression(request.response_compressed.as_ref()));
        Ok(response)
    }

    async fn cacheable_unary_call(
        &self,
        request: Request<SimpleRequest>,
    ) -> Result<Response<SimpleResponse>, Status> {
        self.unary_call(request).await
    }

    type StreamingOutputCallStream = ResponseStream;

    async fn streaming_output_call(
        &self,
        request: Request<StreamingOutputCallRequest>,
    ) -> Result<Response<Self::StreamingOutputCallStream>, Status> {
        let request = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let (response, plan) = planned(rx);
        tokio::spawn(async move {
            if send_responses(&request.response_parameters, &plan, &tx).await {
                if let Some(status) = requested_status(request.response_status.as_ref()) {
                    let _ = tx.send(Err(status)).await;
                }
            }
        });
        Ok(response)
    }

    async fn streaming_input_call(
        &self,
        request: Request<Streaming<StreamingInputCallRequest>>,
    ) -> Result<Response<StreamingInputCallResponse>, Status> {
        let flags = request.extensions().get::<MessageFlags>().cloned();
        let mut requests = request.into_inner();
        let mut size = 0usize;
        let mut index = 0;
        while let Some(request) = requests.message().await? {
            check_expect_compressed(request.expect_compressed.as_ref(), flags.as_ref(), index)?;
            size += request.payload.map_or(0, |p| p.body.len());
            index += 1;
        }
        let aggregated_payload_size = i32::try_from(size)
            .map_err(|_| Status::invalid_argument("aggregated payload size over 2^31"))?;
        Ok(Response::new(StreamingInputCallResponse {
            aggregated_payload_size,
        }))
    }

    type FullDuplexCallStream = ResponseStream;

    async fn full_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<Self::FullDuplexCallStream>, Status> {
        let mut requests = request.into_inner();
        let (tx, rx) = mpsc::channel(4);
        let (response, plan) = planned(rx);
        tokio::spawn(async move {
            loop {
                let request = match requests.message().await {
                    Ok(Some(request)) => request,
                    Ok(None) => return,
                    Err(status) => {
                        let _ = tx.send(Err(status)).await;
                        return;
                    }
                };
                if let Some(status) = requested_status(request.response_status.as_ref()) {
                    let _ = tx.send(Err(status)).await;
                    return;
                }
                if !send_responses(&request.response_parameters, &plan, &tx).await {
                    return;
                }
            }
        });
        Ok(response)
    }

    type HalfDuplexCallStream = ResponseStream;

    async fn half_duplex_call(
        &self,
        request: Request<Streaming<StreamingOutputCallRequest>>,
    ) -> Result<Response<Self::HalfDuplexCallStream>, Status> {
        let requests: Vec<_> = request.into_inner().collect::<Result<_, _>>().await?;
        let (tx, rx) = mpsc::channel(4);
        let (response, plan) = planned(rx);
        tokio::spawn(async move {
            for request in requests {
                if !send_responses(&request.response_parameters, &plan, &tx).await {
                    return;
                }
            }
        });
        Ok(response)
    }

    async fn unimplemented_call(&self, _: Request<Empty>) -> Result<Response<Empty>, Status> {
        Err(Status::unimplemented(
            "grpc.testing.TestService/UnimplementedCall is left unimplemented on purpose",
        ))
    }
}

/// Echoes [`ECHO_INITIAL`] into the response headers and [`ECHO_TRAILING`] into the
/// response trailers, around any service (done here rather than in each handler
/// because tonic's handlers cannot set trailers on a successful unary call).
#[derive(Clone, Debug)]
pub struct EchoMetadata<S>(pub S);

impl<S: NamedService> NamedService for EchoMetadata<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<TonicBody>> for EchoMetadata<S>
where
    S: Service<http::Request<TonicBody>, Response = http::Response<TonicBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<TonicBody>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<TonicBody>) -> Self::Future {
        let initial = request.headers().get(ECHO_INITIAL).cloned();
        let trailing = request.headers().get(ECHO_TRAILING).cloned();
        let response = self.0.call(request);
        Box::pin(async move {
            let response = response.await?;
            if initial.is_none() && trailing.is_none() {
                return Ok(response);
            }
            let (mut parts, body) = response.into_parts();
            if let Some(value) = initial {
                parts
                    .headers
                    .insert(HeaderName::from_static(ECHO_INITIAL), value);
            }
            let body = TonicBody::new(WithTrailer {
                inner: body,
                trailer: trailing,
            });
            Ok(http::Response::from_parts(parts, body))
        })
    }
}

/// Shows the handlers the compressed flag of each request message (a [`MessageFlags`]
/// request extension), and sends a streaming response's messages compressed or not as
/// the handler's [`CompressionPlan`] (a response extension) says: tonic hides the
/// first and compresses all of a stream's messages or none.
#[derive(Clone, Debug)]
pub struct WireCompression<S>(pub S);

impl<S: NamedService> NamedService for WireCompression<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> Service<http::Request<TonicBody>> for WireCompression<S>
where
    S: Service<http::Request<TonicBody>, Response = http::Response<TonicBody>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<TonicBody>;
    type Error = Infallible;
    type Future =
        Pin<Box<dyn std::future::Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<TonicBody>) -> Self::Future {
        let flags = MessageFlags::default();
        let (mut parts, body) = request.into_parts();
        parts.extensions.insert(flags.clone());
        let request = http::Request::from_parts(parts, TonicBody::new(TapBody::new(body, flags)));
        let response = self.0.call(request);
        Box::pin(async move {
            let mut response = response.await?;
            Ok(
                match response.extensions_mut().remove::<CompressionPlan>() {
                    Some(plan) => response.map(|body| TonicBody::new(PlannedBody::new(body, plan))),
                    None => response,
                },
            )
        })
    }
}

/// A response body whose trailers get one more field.
struct WithTrailer {
    inner: TonicBody,
    trailer: Option<HeaderValue>,
}

impl Body for WithTrailer {
    type Data = bytes::Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let frame = match Pin::new(&mut self.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => frame,
            other => return other,
        };
        match frame.into_trailers() {
            Ok(mut trailers) => {
                if let Some(value) = self.trailer.take() {
                    trailers.insert(HeaderName::from_static(ECHO_TRAILING), value);
                }
                Poll::Ready(Some(Ok(Frame::trailers(trailers))))
            }
            Err(frame) => Poll::Ready(Some(Ok(frame))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}
