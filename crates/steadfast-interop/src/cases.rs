//! The client's test cases, as `doc/interop-test-descriptions.md` asserts them.
//!
//! Cancellation in tonic is dropping the call: our `Channel` then resets the stream
//! (RST_STREAM CANCEL), and the case observes CANCELLED locally, as grpc's own clients
//! do when their context is cancelled.

use std::future::Future;
use std::time::Duration;

use steadfast_grpc::Channel;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::{MetadataMap, MetadataValue};
use tonic::{Code, Request, Status};

use crate::pb::test_service_client::TestServiceClient;
use crate::pb::unimplemented_service_client::UnimplementedServiceClient;
use crate::pb::{
    EchoStatus, Empty, Payload, ResponseParameters, SimpleRequest, StreamingInputCallRequest,
    StreamingOutputCallRequest,
};
use crate::server::{ECHO_INITIAL, ECHO_TRAILING};

mod compression;

pub use compression::WireChannel;

/// Every case this client implements, in the order `--test_case=all` runs them.
pub const CASES: &[&str] = &[
    "empty_unary",
    "large_unary",
    "client_streaming",
    "server_streaming",
    "ping_pong",
    "empty_stream",
    "timeout_on_sleeping_server",
    "cancel_after_begin",
    "cancel_after_first_response",
    "status_code_and_message",
    "special_status_message",
    "unimplemented_method",
    "unimplemented_service",
    "custom_metadata",
    "client_compressed_unary",
    "server_compressed_unary",
    "client_compressed_streaming",
    "server_compressed_streaming",
];

/// Why a case failed.
pub type Failure = String;

/// Runs the case named `name` on `channel`.
pub async fn run(name: &str, channel: Channel) -> Result<(), Failure> {
    let mut client = TestServiceClient::new(channel.clone());
    match name {
        "empty_unary" => empty_unary(&mut client).await,
        "large_unary" => large_unary(&mut client).await,
        "client_streaming" => client_streaming(&mut client).await,
        "server_streaming" => server_streaming(&mut client).await,
        "ping_pong" => ping_pong(&mut client).await,
        "empty_stream" => empty_stream(&mut client).await,
        "timeout_on_sleeping_server" => timeout_on_sleeping_server(&mut client).await,
        "cancel_after_begin" => cancel_after_begin(&mut client).await,
        "cancel_after_first_response" => cancel_after_first_response(&mut client).await,
        "status_code_and_message" => status_code_and_message(&mut client).await,
        "special_status_message" => special_status_message(&mut client).await,
        "unimplemented_method" => unimplemented_method(&mut client).await,
        "unimplemented_service" => unimplemented_service(channel).await,
        "custom_metadata" => custom_metadata(&mut client).await,
        "client_compressed_unary" => compression::client_compressed_unary(channel).await,
        "server_compressed_unary" => compression::server_compressed_unary(channel).await,
        "client_compressed_streaming" => compression::client_compressed_streaming(channel).await,
        "server_compressed_streaming" => compression::server_compressed_streaming(channel).await,
        other => Err(format!("unknown test case {other:?}")),
    }
}

type Client = TestServiceClient<Channel>;

macro_rules! ensure {
    ($cond:expr, $($msg:tt)+) => {
        if !$cond {
            return Err(format!($($msg)+));
        }
    };
}
use ensure;

pub(crate) fn failed(what: &str) -> impl FnOnce(Status) -> Failure + '_ {
    move |status| format!("{what}: {:?} {:?}", status.code(), status.message())
}

fn zeros(size: usize) -> Option<Payload> {
    Some(Payload {
        r#type: 0,
        body: vec![0; size],
    })
}

pub(crate) fn check_payload(
    what: &str,
    payload: Option<&Payload>,
    size: usize,
) -> Result<(), Failure> {
    let body = payload.map_or(&[][..], |p| &p.body[..]);
    ensure!(
        body.len() == size && body.iter().all(|&b| b == 0),
        "{what}: expected {size} zero bytes, got {} bytes",
        body.len()
    );
    Ok(())
}

fn streaming_request(response_size: i32, payload_size: usize) -> StreamingOutputCallRequest {
    StreamingOutputCallRequest {
        response_parameters: vec![ResponseParameters {
            size: response_size,
            ..Default::default()
        }],
        payload: zeros(payload_size),
        ..Default::default()
    }
}

/// A request stream the case writes into; dropping the sender half-closes.
fn request_stream<T>() -> (mpsc::Sender<T>, ReceiverStream<T>) {
    let (tx, rx) = mpsc::channel(4);
    (tx, ReceiverStream::new(rx))
}

fn expect_code(what: &str, result: Result<(), Status>, code: Code) -> Result<(), Failure> {
    match result {
        Ok(()) => Err(format!("{what}: succeeded, expected {code:?}")),
        Err(status) if status.code() == code => Ok(()),
        Err(status) => Err(format!(
            "{what}: expected {code:?}, got {:?} {:?}",
            status.code(),
            status.message()
        )),
    }
}

async fn empty_unary(client: &mut Client) -> Result<(), Failure> {
    let response = client
        .empty_call(Empty {})
        .await
        .map_err(failed("EmptyCall"))?;
    ensure!(
        *response.get_ref() == Empty {},
        "EmptyCall: non-empty response"
    );
    Ok(())
}

pub(crate) fn large_request() -> SimpleRequest {
    SimpleRequest {
        response_size: 314_159,
        payload: zeros(271_828),
        ..Default::default()
    }
}

async fn large_unary(client: &mut Client) -> Result<(), Failure> {
    let response = client
        .unary_call(large_request())
        .await
        .map_err(failed("UnaryCall"))?;
    check_payload("UnaryCall", response.get_ref().payload.as_ref(), 314_159)
}

async fn client_streaming(client: &mut Client) -> Result<(), Failure> {
    let requests = [27_182, 8, 1_828, 45_904].map(|size| StreamingInputCallRequest {
        payload: zeros(size),
        ..Default::default()
    });
    let response = client
        .streaming_input_call(tokio_stream::iter(requests))
        .await
        .map_err(failed("StreamingInputCall"))?;
    let size = response.get_ref().aggregated_payload_size;
    ensure!(
        size == 74_922,
        "aggregated_payload_size {size}, expected 74922"
    );
    Ok(())
}

async fn server_streaming(client: &mut Client) -> Result<(), Failure> {
    let sizes = [31_415, 9, 2_653, 58_979];
    let request = StreamingOutputCallRequest {
        response_parameters: sizes
            .iter()
            .map(|&size| ResponseParameters {
                size,
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
    for size in sizes {
        let response = responses
            .message()
            .await
            .map_err(failed("StreamingOutputCall response"))?
            .ok_or_else(|| format!("stream ended before the response of {size} bytes"))?;
        check_payload("response", response.payload.as_ref(), size as usize)?;
    }
    let extra = responses.message().await.map_err(failed("end of stream"))?;
    ensure!(extra.is_none(), "more than {} responses", sizes.len());
    Ok(())
}

async fn ping_pong(client: &mut Client) -> Result<(), Failure> {
    let (tx, requests) = request_stream();
    let pairs = [(31_415, 27_182), (9, 8), (2_653, 1_828), (58_979, 45_904)];
    // tonic returns from the call once the response headers arrive, and a server may
    // send them only with its first response (grpcio does): the first request is
    // queued before.
    let (response_size, payload_size) = pairs[0];
    tx.send(streaming_request(response_size, payload_size))
        .await
        .map_err(|_| "the request stream closed early".to_owned())?;
    let mut responses = client
        .full_duplex_call(requests)
        .await
        .map_err(failed("FullDuplexCall"))?
        .into_inner();
    for (i, (response_size, payload_size)) in pairs.into_iter().enumerate() {
        if i > 0 {
            tx.send(streaming_request(response_size, payload_size))
                .await
                .map_err(|_| "the request stream closed early".to_owned())?;
        }
        let response = responses
            .message()
            .await
            .map_err(failed("FullDuplexCall response"))?
            .ok_or("stream ended early")?;
        check_payload(
            "response",
            response.payload.as_ref(),
            response_size as usize,
        )?;
    }
    drop(tx);
    let extra = responses.message().await.map_err(failed("end of stream"))?;
    ensure!(extra.is_none(), "a response after the half-close");
    Ok(())
}

async fn empty_stream(client: &mut Client) -> Result<(), Failure> {
    let mut responses = client
        .full_duplex_call(tokio_stream::empty())
        .await
        .map_err(failed("FullDuplexCall"))?
        .into_inner();
    let first = responses.message().await.map_err(failed("end of stream"))?;
    ensure!(first.is_none(), "a response to an empty stream");
    Ok(())
}

async fn timeout_on_sleeping_server(client: &mut Client) -> Result<(), Failure> {
    // One request and no half-close: the server has nothing to answer until the
    // deadline.
    let (tx, requests) = request_stream();
    tx.send(StreamingOutputCallRequest {
        payload: zeros(27_182),
        ..Default::default()
    })
    .await
    .map_err(|_| "the request stream closed early".to_owned())?;
    let mut request = Request::new(requests);
    request.set_timeout(Duration::from_millis(1));
    let result = async {
        let mut responses = client.full_duplex_call(request).await?.into_inner();
        while responses.message().await?.is_some() {}
        Ok(())
    }
    .await;
    drop(tx);
    expect_code("FullDuplexCall", result, Code::DeadlineExceeded)
}

/// Runs `call` until `cancel` completes, then drops it: CANCELLED.
async fn cancelled<T>(
    call: impl Future<Output = Result<T, Status>>,
    cancel: impl Future<Output = ()>,
) -> Result<(), Status> {
    tokio::select! {
        result = call => result.map(drop),
        () = cancel => Err(Status::cancelled("cancelled by the client")),
    }
}

async fn cancel_after_begin(client: &mut Client) -> Result<(), Failure> {
    let (tx, requests) = request_stream::<StreamingInputCallRequest>();
    let result = cancelled(
        client.streaming_input_call(requests),
        tokio::time::sleep(Duration::from_millis(100)),
    )
    .await;
    drop(tx);
    expect_code("StreamingInputCall", result, Code::Cancelled)
}

async fn cancel_after_first_response(client: &mut Client) -> Result<(), Failure> {
    let (tx, requests) = request_stream();
    tx.send(streaming_request(31_415, 27_182))
        .await
        .map_err(|_| "the request stream closed early".to_owned())?;
    let (first, rest) = tokio::sync::oneshot::channel();
    let call = async {
        let mut responses = client.full_duplex_call(requests).await?.into_inner();
        let response = responses.message().await?;
        let _ = first.send(response);
        std::future::pending::<()>().await;
        Ok::<_, Status>(responses)
    };
    let result = cancelled(call, async {
        let _ = rest.await;
    })
    .await;
    drop(tx);
    expect_code("FullDuplexCall", result, Code::Cancelled)
}

const TEST_STATUS_MESSAGE: &str = "test status message";

async fn status_code_and_message(client: &mut Client) -> Result<(), Failure> {
    let echo = EchoStatus {
        code: 2,
        message: TEST_STATUS_MESSAGE.into(),
    };
    let check = |what: &str, result: Result<(), Status>| match result {
        Err(status)
            if status.code() == Code::Unknown && status.message() == TEST_STATUS_MESSAGE =>
        {
            Ok(())
        }
        other => Err(format!(
            "{what}: expected UNKNOWN {TEST_STATUS_MESSAGE:?}, got {other:?}"
        )),
    };
    let unary = client
        .unary_call(SimpleRequest {
            response_status: Some(echo.clone()),
            ..Default::default()
        })
        .await
        .map(drop);
    check("UnaryCall", unary)?;

    let request = StreamingOutputCallRequest {
        response_status: Some(echo),
        ..Default::default()
    };
    let duplex = async {
        let mut responses = client
            .full_duplex_call(tokio_stream::iter([request]))
            .await?
            .into_inner();
        while responses.message().await?.is_some() {}
        Ok(())
    }
    .await;
    check("FullDuplexCall", duplex)
}

async fn special_status_message(client: &mut Client) -> Result<(), Failure> {
    let message = "\t\ntest with whitespace\r\nand Unicode BMP ☺ and non-BMP 😈\t\n";
    let result = client
        .unary_call(SimpleRequest {
            response_status: Some(EchoStatus {
                code: 2,
                message: message.into(),
            }),
            ..Default::default()
        })
        .await;
    match result {
        Err(status) if status.code() == Code::Unknown && status.message() == message => Ok(()),
        Err(status) => Err(format!(
            "expected UNKNOWN {message:?}, got {:?} {:?}",
            status.code(),
            status.message()
        )),
        Ok(_) => Err("UnaryCall succeeded".into()),
    }
}

async fn unimplemented_method(client: &mut Client) -> Result<(), Failure> {
    let result = client.unimplemented_call(Empty {}).await.map(drop);
    expect_code("UnimplementedCall", result, Code::Unimplemented)
}

async fn unimplemented_service(channel: Channel) -> Result<(), Failure> {
    let result = UnimplementedServiceClient::new(channel)
        .unimplemented_call(Empty {})
        .await
        .map(drop);
    expect_code(
        "UnimplementedService/UnimplementedCall",
        result,
        Code::Unimplemented,
    )
}

const INITIAL_VALUE: &str = "test_initial_metadata_value";
const TRAILING_VALUE: &[u8] = b"\xab\xab\xab";

fn with_echo_metadata<T>(message: T) -> Request<T> {
    let mut request = Request::new(message);
    let metadata = request.metadata_mut();
    metadata.insert(ECHO_INITIAL, MetadataValue::from_static(INITIAL_VALUE));
    metadata.insert_bin(ECHO_TRAILING, MetadataValue::from_bytes(TRAILING_VALUE));
    request
}

fn check_initial(what: &str, metadata: &MetadataMap) -> Result<(), Failure> {
    let value = metadata.get(ECHO_INITIAL).map(|v| v.as_bytes());
    ensure!(
        value == Some(INITIAL_VALUE.as_bytes()),
        "{what}: initial metadata {ECHO_INITIAL} = {value:?}"
    );
    Ok(())
}

fn check_trailing(what: &str, metadata: &MetadataMap) -> Result<(), Failure> {
    let value = metadata.get_bin(ECHO_TRAILING).map(|v| v.to_bytes());
    let ok = matches!(&value, Some(Ok(bytes)) if &bytes[..] == TRAILING_VALUE);
    ensure!(ok, "{what}: trailing metadata {ECHO_TRAILING} = {value:?}");
    Ok(())
}

async fn custom_metadata(client: &mut Client) -> Result<(), Failure> {
    // tonic merges a unary call's trailers into its response metadata.
    let response = client
        .unary_call(with_echo_metadata(large_request()))
        .await
        .map_err(failed("UnaryCall"))?;
    check_payload("UnaryCall", response.get_ref().payload.as_ref(), 314_159)?;
    check_initial("UnaryCall", response.metadata())?;
    check_trailing("UnaryCall", response.metadata())?;

    let request = with_echo_metadata(tokio_stream::iter([streaming_request(314_159, 271_828)]));
    let response = client
        .full_duplex_call(request)
        .await
        .map_err(failed("FullDuplexCall"))?;
    check_initial("FullDuplexCall", response.metadata())?;
    let mut responses = response.into_inner();
    let first = responses
        .message()
        .await
        .map_err(failed("FullDuplexCall response"))?
        .ok_or("no response")?;
    check_payload("FullDuplexCall", first.payload.as_ref(), 314_159)?;
    while responses
        .message()
        .await
        .map_err(failed("end of stream"))?
        .is_some()
    {}
    let trailers = responses
        .trailers()
        .await
        .map_err(failed("trailers"))?
        .ok_or("no trailers")?;
    check_trailing("FullDuplexCall", &trailers)
}
