//! What the proxy answers itself: when no route matches, when no backend could take
//! a call, when a backend failed before answering. Each answer tells the client the
//! call's fate in words; a call no backend processed because every one refused it is
//! refused in turn, with RST_STREAM(REFUSED_STREAM), so the client may send it again
//! (elsewhere) at no risk.

use bytes::Bytes;
use http::{header, HeaderValue, Response, StatusCode};
use steadfast::{Fate, ResetStream};
use steadfast_grpc::status::{code_for_error, Side};
use steadfast_proto::ErrorCode;
use tonic::{Code, Status};

use crate::body::ProxyBody;

/// A gRPC Trailers-Only response: HTTP 200, the status in the head, END_STREAM.
pub(crate) fn grpc_status(code: Code, message: impl Into<String>) -> Response<ProxyBody> {
    let status = Status::new(code, message);
    let mut response = Response::new(ProxyBody::empty());
    // The status's own encoding: grpc-message percent-encoded as the spec says.
    let _ = status.add_header(response.headers_mut());
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/grpc"),
    );
    response
}

fn plain(status: StatusCode, message: String) -> Response<ProxyBody> {
    let mut response = Response::new(ProxyBody::full(Bytes::from(message + "\n")));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// No route for the request.
pub(crate) fn no_route(grpc: bool, authority: Option<&str>, path: &str) -> Response<ProxyBody> {
    let message = format!(
        "steadfast proxy: no route for {}{path}",
        authority.unwrap_or("")
    );
    if grpc {
        grpc_status(Code::Unimplemented, message)
    } else {
        plain(StatusCode::NOT_FOUND, message)
    }
}

/// A malformed `grpc-timeout` (as grpc-go: INTERNAL).
pub(crate) fn bad_timeout() -> Response<ProxyBody> {
    grpc_status(Code::Internal, "steadfast proxy: malformed grpc-timeout")
}

/// The answer to a call that failed before its backend's response head arrived, by
/// its fate; `Err` resets the stream.
pub(crate) fn failed(
    error: &steadfast::Error,
    grpc: bool,
    cluster: &str,
) -> Result<Response<ProxyBody>, ResetStream> {
    let fate = error.fate();
    if error.is_deadline_exceeded() {
        let message =
            format!("steadfast proxy: deadline exceeded waiting for cluster {cluster:?} ({error})");
        return Ok(if grpc {
            grpc_status(Code::DeadlineExceeded, message)
        } else {
            plain(StatusCode::GATEWAY_TIMEOUT, message)
        });
    }
    match fate {
        // Every backend tried refused it (GOAWAY, REFUSED_STREAM): none processed it,
        // so neither did the proxy — the client may safely send it again.
        Some(Fate::Refused) => Err(ResetStream(ErrorCode::REFUSED_STREAM)),
        Some(Fate::NotSent) => {
            let message = format!(
                "steadfast proxy: no backend of cluster {cluster:?} took the call; it was never \
                 sent, so it is safe to retry: {error}"
            );
            Ok(if grpc {
                grpc_status(Code::Unavailable, message)
            } else {
                plain(StatusCode::SERVICE_UNAVAILABLE, message)
            })
        }
        Some(Fate::MaybeProcessed) => {
            let message = format!(
                "steadfast proxy: the backend of cluster {cluster:?} failed after the call was \
                 sent; it may have processed it: {error}"
            );
            Ok(if grpc {
                grpc_status(Code::Unavailable, message)
            } else {
                plain(StatusCode::BAD_GATEWAY, message)
            })
        }
        Some(Fate::Processed) | None => {
            let message = format!("steadfast proxy: cluster {cluster:?}: {error}");
            Ok(if grpc {
                grpc_status(code_for_error(error, Side::Client), message)
            } else {
                plain(StatusCode::BAD_GATEWAY, message)
            })
        }
    }
}

/// The trailers ending a gRPC response whose backend stream failed after its head:
/// the status the mapping table gives (gRPC's PROTOCOL-HTTP2.md, RST_STREAM codes),
/// and a message saying so.
pub(crate) fn grpc_trailers(error: &steadfast::Error, cluster: &str) -> http::HeaderMap {
    let code = code_for_error(error, Side::Client);
    let message = match error.fate() {
        Some(Fate::Processed) => format!(
            "steadfast proxy: the backend's stream of cluster {cluster:?} failed after it \
             had answered (it processed the call, perhaps not to its end): {error}"
        ),
        Some(Fate::MaybeProcessed) => format!(
            "steadfast proxy: the backend's stream of cluster {cluster:?} failed; it may \
             have processed the call: {error}"
        ),
        _ => format!("steadfast proxy: cluster {cluster:?}: {error}"),
    };
    let mut trailers = http::HeaderMap::new();
    let _ = Status::new(code, message).add_header(&mut trailers);
    trailers
}

/// The reset passing on a non-gRPC response's failure: the backend's own code when it
/// reset the stream, else INTERNAL_ERROR (CANCEL for a deadline).
pub(crate) fn reset_for(error: &steadfast::Error) -> ResetStream {
    if error.is_deadline_exceeded() {
        return ResetStream(ErrorCode::CANCEL);
    }
    match error.proto_error() {
        Some(steadfast_proto::Error::Reset {
            code,
            initiator: steadfast::Initiator::Remote,
            ..
        }) => ResetStream(*code),
        _ => ResetStream(ErrorCode::INTERNAL_ERROR),
    }
}

/// On a response the proxy wrote for a call no backend answered (a response
/// extension): how far the call got, for its record.
#[derive(Clone, Debug)]
pub(crate) struct Unanswered {
    pub(crate) fate: Option<Fate>,
    pub(crate) error: String,
    /// The backend connection the call failed on, if it got one.
    pub(crate) backend: Option<steadfast::ConnectionInfo>,
}

/// The error of a call every backend tried refused: recorded by the record layer,
/// which hands the server the reset (REFUSED_STREAM) inside.
#[derive(Debug)]
pub(crate) struct Refused {
    pub(crate) reset: ResetStream,
    pub(crate) unanswered: Unanswered,
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.reset, self.unanswered.error)
    }
}

impl std::error::Error for Refused {}
