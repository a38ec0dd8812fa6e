//! How a failure below gRPC becomes a [`tonic::Status`]: the one table of this crate.
//!
//! Sources, quoted by row below:
//! - grpc `doc/PROTOCOL-HTTP2.md`, section "Errors": the RST_STREAM code of a stream
//!   that ended without `grpc-status`, and "connection failure → UNAVAILABLE (client),
//!   CANCELLED (server)".
//! - grpc `doc/http-grpc-status-mapping.md`: the HTTP status of a response without
//!   `grpc-status` (431 as grpc-java's `httpStatusToGrpcCode` has it).
//! - grpc `doc/PROTOCOL-HTTP2.md`, "Timeouts": a deadline that passes is
//!   DEADLINE_EXCEEDED on the side that enforces it.
//!
//! Every [`Status`] made here carries the [`steadfast::Error`] as its `source()` (read
//! it back with [`StatusExt`](crate::StatusExt)), and its message is that error's
//! full sentence, with what to do — never "transport error".

use std::sync::Arc;

use http::StatusCode;
use steadfast::{ErrorCode, Initiator, Layer};
use tonic::{Code, Status};

/// The status of a call whose stream was reset with `code` by the peer and that had
/// received no `grpc-status` (PROTOCOL-HTTP2.md, "Errors").
///
/// | RST_STREAM code | status | note |
/// |---|---|---|
/// | NO_ERROR (0x0) | INTERNAL | a reset is never a successful end of a call |
/// | PROTOCOL_ERROR (0x1) | INTERNAL | |
/// | INTERNAL_ERROR (0x2) | INTERNAL | |
/// | FLOW_CONTROL_ERROR (0x3) | INTERNAL | |
/// | SETTINGS_TIMEOUT (0x4) | INTERNAL | |
/// | STREAM_CLOSED (0x5) | INTERNAL | not in grpc's table: see below |
/// | FRAME_SIZE_ERROR (0x6) | INTERNAL | |
/// | REFUSED_STREAM (0x7) | UNAVAILABLE | no processing occurred: retried transparently first |
/// | CANCEL (0x8) | CANCELLED | sent by the server |
/// | COMPRESSION_ERROR (0x9) | INTERNAL | |
/// | CONNECT_ERROR (0xa) | INTERNAL | |
/// | ENHANCE_YOUR_CALM (0xb) | RESOURCE_EXHAUSTED | |
/// | INADEQUATE_SECURITY (0xc) | PERMISSION_DENIED | |
/// | HTTP_1_1_REQUIRED (0xd), unknown codes | INTERNAL | not in grpc's table: see below |
///
/// Codes grpc's table does not list (STREAM_CLOSED, HTTP_1_1_REQUIRED, and codes
/// unknown to RFC 9113) are INTERNAL here, like the listed protocol-level codes: a
/// reset without `grpc-status` is a failure of the HTTP/2 layer, not an application
/// answer. tonic's `code_from_h2` and grpc-go's `http2ErrConvTab` return UNKNOWN for
/// them, which hides that the HTTP/2 layer failed.
pub fn code_for_reset(code: ErrorCode) -> Code {
    match code {
        ErrorCode::REFUSED_STREAM => Code::Unavailable,
        ErrorCode::CANCEL => Code::Cancelled,
        ErrorCode::ENHANCE_YOUR_CALM => Code::ResourceExhausted,
        ErrorCode::INADEQUATE_SECURITY => Code::PermissionDenied,
        // NO_ERROR, PROTOCOL_ERROR, INTERNAL_ERROR, FLOW_CONTROL_ERROR,
        // SETTINGS_TIMEOUT, FRAME_SIZE_ERROR, COMPRESSION_ERROR, CONNECT_ERROR, and the
        // codes grpc's table does not list.
        _ => Code::Internal,
    }
}

/// The status of a response that carries no `grpc-status`, from its HTTP status
/// (http-grpc-status-mapping.md).
///
/// | HTTP status | status |
/// |---|---|
/// | 400 Bad Request | INTERNAL |
/// | 401 Unauthorized | UNAUTHENTICATED |
/// | 403 Forbidden | PERMISSION_DENIED |
/// | 404 Not Found | UNIMPLEMENTED |
/// | 429 Too Many Requests | UNAVAILABLE |
/// | 431 Request Header Fields Too Large | INTERNAL |
/// | 502 Bad Gateway | UNAVAILABLE |
/// | 503 Service Unavailable | UNAVAILABLE |
/// | 504 Gateway Timeout | UNAVAILABLE |
/// | 200 OK (the call ended without `grpc-status`) | UNKNOWN |
/// | any other | UNKNOWN |
///
/// 431 is INTERNAL as in grpc-java; tonic's `infer_grpc_status` and grpc-go's
/// `HTTPStatusConvTab` lack the row and answer UNKNOWN. Informational (1xx) heads are
/// skipped by the HTTP/2 layer and never reach this table.
pub fn code_for_http_status(status: StatusCode) -> Code {
    match status.as_u16() {
        400 | 431 => Code::Internal,
        401 => Code::Unauthenticated,
        403 => Code::PermissionDenied,
        404 => Code::Unimplemented,
        429 | 502 | 503 | 504 => Code::Unavailable,
        _ => Code::Unknown,
    }
}

/// Which end of the call a failure is seen from: the two ends map a lost connection
/// differently.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Side {
    /// The caller ([`Channel`](crate::Channel)).
    Client,
    /// The handler ([`Server`](crate::Server)), reading the request.
    Server,
}

/// The status code of a call that failed with `error`, as seen from `side`.
///
/// | failure | client | server |
/// |---|---|---|
/// | the call's deadline passed | DEADLINE_EXCEEDED | DEADLINE_EXCEEDED |
/// | RST_STREAM from the peer | [`code_for_reset`] | [`code_for_reset`] |
/// | RST_STREAM sent by this library (the peer broke the protocol) | INTERNAL | INTERNAL |
/// | the stream cancelled by the local application | CANCELLED | CANCELLED |
/// | name resolution, TCP, TLS, the HTTP/2 connection (GOAWAY, closed, keepalive) | UNAVAILABLE | CANCELLED |
/// | a request the library refused to send (malformed headers) | INTERNAL | INTERNAL |
/// | the request body failed with a `Status` (tonic's encoder) | that status's code | that code |
/// | any other local failure | INTERNAL | INTERNAL |
///
/// A deadline is DEADLINE_EXCEEDED even though the stream is cancelled with
/// RST_STREAM(CANCEL): tonic's own transport answers CANCELLED ("Timeout expired"),
/// which tells the caller the wrong story (grpc-go and grpc-java agree with us).
pub fn code_for_error(error: &steadfast::Error, side: Side) -> Code {
    if error.is_deadline_exceeded() {
        return Code::DeadlineExceeded;
    }
    if let Some(steadfast_proto::Error::Reset {
        code, initiator, ..
    }) = error.proto_error()
    {
        return match initiator {
            Initiator::Remote => code_for_reset(*code),
            Initiator::Application => Code::Cancelled,
            _ => Code::Internal,
        };
    }
    match error.layer() {
        Layer::Resolve | Layer::Transport | Layer::Tls | Layer::Connection => match side {
            Side::Client => Code::Unavailable,
            Side::Server => Code::Cancelled,
        },
        _ => status_in_chain(error).map_or(Code::Internal, |s| s.code()),
    }
}

/// The [`Status`] of a call that failed with `error`: the code of
/// [`code_for_error`], the error's sentence as message (its `Display`, which says
/// what to do whenever the fate is known), the error as source.
pub fn status_for_error(error: steadfast::Error, side: Side) -> Status {
    let code = code_for_error(&error, side);
    let mut message = error.to_string();
    if let Some(hint) = error.hint() {
        message.push_str(" (");
        message.push_str(hint);
        message.push(')');
    }
    let mut status = Status::new(code, message);
    status.set_source(Arc::new(error));
    status
}

/// The [`Status`] of a response with HTTP status `status` and no `grpc-status`.
pub(crate) fn status_for_http(status: StatusCode) -> Status {
    Status::new(
        code_for_http_status(status),
        format!(
            "the server answered HTTP {status} without grpc-status: it is not a gRPC \
             endpoint, or a proxy in between answered (http-grpc-status-mapping.md)"
        ),
    )
}

/// The bytes of a non-gRPC answer's body shown in its status: enough for a load
/// balancer's one-line reason or an error page's title.
pub(crate) const HTTP_BODY_SHOWN: usize = 200;

/// The [`Status`] of a response with HTTP status `status` and no `grpc-status`, with
/// what the answer says of itself: its `server` and `content-type` headers and the
/// beginning of its body (at most [`HTTP_BODY_SHOWN`] bytes, as text).
pub(crate) fn status_for_http_answer(
    status: StatusCode,
    headers: &http::HeaderMap,
    body: &[u8],
) -> Status {
    let plain = status_for_http(status);
    let mut message = plain.message().to_owned();
    for name in [http::header::SERVER, http::header::CONTENT_TYPE] {
        if let Some(value) = headers.get(&name) {
            message.push_str(&format!(
                "; {name}: {}",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
    }
    if !body.is_empty() {
        let shown = &body[..body.len().min(HTTP_BODY_SHOWN)];
        let more = if body.len() > HTTP_BODY_SHOWN {
            "…"
        } else {
            ""
        };
        message.push_str(&format!(
            "; body: {:?}{more}",
            String::from_utf8_lossy(shown).trim_end()
        ));
    }
    Status::new(plain.code(), message)
}

/// A `Status` somewhere in the source chain of `error` (a request body that tonic's
/// encoder failed, for instance).
fn status_in_chain(error: &steadfast::Error) -> Option<&Status> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(e) = source {
        if let Some(status) = e.downcast_ref::<Status>() {
            return Some(status);
        }
        source = e.source();
    }
    None
}

/// The beginning of the (percent-encoded) `grpc-message` of tonic's size-limit
/// errors: "Error, decoded message length too large: …" and "Error, encoded …".
const TONIC_SIZE_LIMIT_MESSAGES: [&[u8]; 2] = [
    b"Error,%20decoded%20message%20length%20too%20large",
    b"Error,%20encoded%20message%20length%20too%20large",
];

/// Rewrites tonic's answer to a message above a size limit from OUT_OF_RANGE to
/// RESOURCE_EXHAUSTED, in response headers (Trailers-Only) or trailers.
///
/// | case | tonic | here | source |
/// |---|---|---|---|
/// | message above `max_decoding_message_size` / `max_encoding_message_size` | OUT_OF_RANGE | RESOURCE_EXHAUSTED | grpc `doc/statuscodes.md`: RESOURCE_EXHAUSTED for "Server … out of resources … (e.g. … message too large)"; grpc-go and grpc-java say the same |
///
/// tonic checks the length prefix against the limit before it reserves memory for
/// the message (`codec/decode.rs`), so only the code needs changing. The message is
/// tonic's, which names the limit.
pub fn fix_size_limit_code(headers: &mut http::HeaderMap) {
    // Looked up by `HeaderName` constants: a `&str` name is parsed again on every call,
    // and this runs on every response of a `Server`.
    let is_tonic_size_limit = headers.get(Status::GRPC_STATUS).map(|v| v.as_bytes()) == Some(b"11")
        && headers.get(Status::GRPC_MESSAGE).is_some_and(|m| {
            TONIC_SIZE_LIMIT_MESSAGES
                .iter()
                .any(|prefix| m.as_bytes().starts_with(prefix))
        });
    if is_tonic_size_limit {
        let code = Code::ResourceExhausted as i32;
        headers.insert(Status::GRPC_STATUS, http::HeaderValue::from(code));
    }
}

/// Emits `-bin` metadata unpadded, as PROTOCOL-HTTP2.md asks of senders ("Implementations
/// MUST accept padded and un-padded values and should emit un-padded values"): a
/// handler that echoes a value it received padded, as it came, is corrected here.
pub fn unpad_binary_metadata(headers: &mut http::HeaderMap) {
    let padded: Vec<http::HeaderName> = headers
        .iter()
        .filter(|(name, value)| name.as_str().ends_with("-bin") && value.as_bytes().ends_with(b"="))
        .map(|(name, _)| name.clone())
        .collect();
    for name in padded {
        let values: Vec<http::HeaderValue> = headers
            .get_all(&name)
            .iter()
            .map(|v| {
                let bytes = v.as_bytes();
                let end = bytes.len() - bytes.iter().rev().take_while(|b| **b == b'=').count();
                http::HeaderValue::from_bytes(&bytes[..end]).unwrap_or_else(|_| v.clone())
            })
            .collect();
        headers.remove(&name);
        for value in values {
            headers.append(name.clone(), value);
        }
    }
}

/// Removes a `grpc-status-details-bin` that is not base64, and says whether it did.
///
/// tonic's `Status::from_header_map` — which its generated clients run on every
/// Trailers-Only response and trailer section — panics on such a value
/// ("Invalid status header, expected base64 encoded value"): a peer must not be able
/// to crash the caller. The status code and message are kept; only the details,
/// which cannot be read, are dropped. Checked with tonic's own decoder settings
/// (standard alphabet, padding optional).
pub fn drop_malformed_details(headers: &mut http::HeaderMap) -> bool {
    use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
    use base64::engine::DecodePaddingMode;
    use base64::Engine as _;
    const TONIC_STANDARD: GeneralPurpose = GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    );
    let Some(value) = headers.get(Status::GRPC_STATUS_DETAILS) else {
        return false;
    };
    if TONIC_STANDARD.decode(value.as_bytes()).is_ok() {
        return false;
    }
    tracing::debug!("dropped a grpc-status-details-bin that is not base64");
    headers.remove(Status::GRPC_STATUS_DETAILS);
    true
}

#[cfg(test)]
mod tests;
