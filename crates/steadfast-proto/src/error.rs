//! The error model of the HTTP/2 layer: error codes, who initiated a failure, and the
//! fate of a locally initiated request.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use crate::frame::StreamId;

/// An HTTP/2 error code as carried by RST_STREAM and GOAWAY (RFC 9113 §7).
///
/// Unknown codes are kept as they are: RFC 9113 §7 says they must not trigger special
/// behaviour, and a diagnostic tool must still show what the peer sent.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ErrorCode(pub u32);

impl ErrorCode {
    /// Graceful shutdown or a stream that ended without an error.
    pub const NO_ERROR: Self = Self(0x0);
    /// A protocol error not covered by a more specific code.
    pub const PROTOCOL_ERROR: Self = Self(0x1);
    /// An unexpected internal error.
    pub const INTERNAL_ERROR: Self = Self(0x2);
    /// The peer violated the flow-control protocol.
    pub const FLOW_CONTROL_ERROR: Self = Self(0x3);
    /// A SETTINGS frame was not acknowledged in time.
    pub const SETTINGS_TIMEOUT: Self = Self(0x4);
    /// A frame arrived after the stream was half-closed.
    pub const STREAM_CLOSED: Self = Self(0x5);
    /// A frame had an invalid size.
    pub const FRAME_SIZE_ERROR: Self = Self(0x6);
    /// The stream was refused before any application processing: safe to retry.
    pub const REFUSED_STREAM: Self = Self(0x7);
    /// The stream is no longer needed.
    pub const CANCEL: Self = Self(0x8);
    /// The header compression context can no longer be maintained.
    pub const COMPRESSION_ERROR: Self = Self(0x9);
    /// The connection of a CONNECT request was reset or abnormally closed.
    pub const CONNECT_ERROR: Self = Self(0xa);
    /// The peer behaves in a way that may generate excessive load.
    pub const ENHANCE_YOUR_CALM: Self = Self(0xb);
    /// The transport does not meet minimum security requirements.
    pub const INADEQUATE_SECURITY: Self = Self(0xc);
    /// The request must be made over HTTP/1.1.
    pub const HTTP_1_1_REQUIRED: Self = Self(0xd);

    /// The RFC's name for this code, or `None` for a code the RFC does not define.
    pub fn name(self) -> Option<&'static str> {
        Some(match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => return None,
        })
    }

    /// A short description of what the code means, for people reading diagnostics.
    pub fn description(self) -> &'static str {
        match self.0 {
            0x0 => "no error",
            0x1 => "protocol error detected",
            0x2 => "implementation fault",
            0x3 => "flow-control limits exceeded",
            0x4 => "settings not acknowledged in time",
            0x5 => "frame received for a closed stream",
            0x6 => "frame size incorrect",
            0x7 => "stream refused before any processing",
            0x8 => "stream cancelled",
            0x9 => "header compression state not maintained",
            0xa => "TCP connection error for CONNECT method",
            0xb => "processing capacity exceeded",
            0xc => "negotiated TLS parameters not acceptable",
            0xd => "use HTTP/1.1 for the request",
            _ => "unknown error code",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => f.write_str(name),
            None => write!(f, "unknown error code {:#x}", self.0),
        }
    }
}

impl fmt::Debug for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.name() {
            Some(name) => write!(f, "ErrorCode({name})"),
            None => write!(f, "ErrorCode({:#x})", self.0),
        }
    }
}

impl From<u32> for ErrorCode {
    fn from(code: u32) -> Self {
        Self(code)
    }
}

impl From<ErrorCode> for u32 {
    fn from(code: ErrorCode) -> Self {
        code.0
    }
}

/// Who caused a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Initiator {
    /// The local application asked for it (a reset, a cancel, a shutdown).
    Application,
    /// This library detected a protocol violation or a limit and acted on it.
    Library,
    /// The remote peer sent it.
    Remote,
}

impl fmt::Display for Initiator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Application => "the local application",
            Self::Library => "this endpoint",
            Self::Remote => "the peer",
        })
    }
}

/// What a server may have done with a locally initiated request.
///
/// Ordered from "certainly untouched" to "certainly seen"; a stream's fate only moves
/// forward, except that a GOAWAY or REFUSED_STREAM can prove `MaybeProcessed` to be
/// `Refused`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Fate {
    /// No byte of the request was handed to the transport.
    NotSent,
    /// The server guaranteed it did no processing: the stream id is above the
    /// last-stream-id of a GOAWAY it sent, or it answered RST_STREAM(REFUSED_STREAM).
    Refused,
    /// The request was sent and there is no proof either way.
    MaybeProcessed,
    /// Response headers arrived: the server saw the request.
    Processed,
}

impl Fate {
    /// True when sending the request again cannot duplicate its effects, whatever the
    /// method: the request was never sent, or the server proved it never processed it.
    pub fn is_retry_safe(self) -> bool {
        matches!(self, Self::NotSent | Self::Refused)
    }
}

impl fmt::Display for Fate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotSent => "never sent",
            Self::Refused => "refused by the server before any processing",
            Self::MaybeProcessed => "sent; the server may have processed it",
            Self::Processed => "processed by the server (response headers received)",
        })
    }
}

/// The contents of a GOAWAY frame.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GoAway {
    /// Why the connection is going away.
    pub code: ErrorCode,
    /// The highest stream id the sender may have processed; streams initiated by the
    /// receiver above it were not processed and are safe to retry.
    pub last_stream_id: StreamId,
    /// Opaque diagnostic data (often text such as `max_age` or `too_many_pings`).
    pub debug_data: Bytes,
}

impl fmt::Display for GoAway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "GOAWAY(last_stream_id={}, {}",
            self.last_stream_id, self.code
        )?;
        if !self.debug_data.is_empty() {
            write!(
                f,
                ", debug data {:?}",
                String::from_utf8_lossy(&self.debug_data)
            )?;
        }
        f.write_str(")")
    }
}

/// A failure of the HTTP/2 layer, for a stream or the whole connection.
///
/// `Clone + PartialEq` so tests can compare errors; a connection error is sticky: once
/// the connection has failed, every later operation reports the same error.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The connection ended, or is ending, with a GOAWAY.
    GoAway {
        /// The frame that was sent or received.
        goaway: GoAway,
        /// `Remote` when the peer sent it, otherwise who decided to send it.
        initiator: Initiator,
        /// What this endpoint detected, when it sent the GOAWAY itself.
        reason: Option<Cow<'static, str>>,
    },
    /// A stream was reset with RST_STREAM.
    Reset {
        /// The stream.
        stream_id: StreamId,
        /// The code carried by the RST_STREAM frame.
        code: ErrorCode,
        /// Who reset it.
        initiator: Initiator,
        /// What this endpoint detected, when it reset the stream itself.
        reason: Option<Cow<'static, str>>,
    },
    /// The transport closed (EOF or I/O error) before the connection ended cleanly.
    TransportClosed {
        /// A GOAWAY received before the transport closed, if any.
        after_goaway: Option<GoAway>,
    },
    /// The application used the API in a way the protocol does not allow.
    User(UserError),
    /// Nothing was read for `timeout` after a keepalive PING (gRFC A8): the peer or the
    /// path to it is presumed dead. No GOAWAY was sent.
    KeepaliveTimeout {
        /// How long this endpoint waited after the PING.
        timeout: Duration,
    },
}

impl Error {
    /// The HTTP/2 error code involved, if any.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::GoAway { goaway, .. } => Some(goaway.code),
            Self::Reset { code, .. } => Some(*code),
            Self::TransportClosed { .. } | Self::User(_) | Self::KeepaliveTimeout { .. } => None,
        }
    }

    /// Who caused the failure.
    pub fn initiator(&self) -> Initiator {
        match self {
            Self::GoAway { initiator, .. } | Self::Reset { initiator, .. } => *initiator,
            Self::TransportClosed { .. } => Initiator::Remote,
            Self::User(_) => Initiator::Application,
            Self::KeepaliveTimeout { .. } => Initiator::Library,
        }
    }

    /// True for failures of the whole connection, false for a single stream.
    pub fn is_connection_error(&self) -> bool {
        matches!(
            self,
            Self::GoAway { .. } | Self::TransportClosed { .. } | Self::KeepaliveTimeout { .. }
        )
    }

    pub(crate) fn library_goaway(
        code: ErrorCode,
        last_stream_id: StreamId,
        reason: impl Into<Cow<'static, str>>,
    ) -> Self {
        let reason = reason.into();
        Self::GoAway {
            goaway: GoAway {
                code,
                last_stream_id,
                debug_data: Bytes::copy_from_slice(reason.as_bytes()),
            },
            initiator: Initiator::Library,
            reason: Some(reason),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::GoAway {
                goaway,
                initiator: Initiator::Remote,
                ..
            } => write!(f, "connection closed by the peer: {goaway}"),
            Self::GoAway {
                goaway,
                initiator,
                reason: Some(reason),
            } => write!(
                f,
                "connection closed by {initiator}: {reason} (sent GOAWAY(last_stream_id={}, {}))",
                goaway.last_stream_id, goaway.code
            ),
            Self::GoAway {
                goaway,
                initiator,
                reason: None,
            } => write!(f, "connection closed by {initiator} with {goaway}"),
            Self::Reset {
                stream_id,
                code,
                initiator,
                reason,
            } => {
                write!(f, "stream {stream_id} reset by {initiator} with {code}")?;
                if let Some(reason) = reason {
                    write!(f, ": {reason}")?;
                }
                Ok(())
            }
            Self::TransportClosed { after_goaway: None } => {
                f.write_str("the transport closed without a GOAWAY")
            }
            Self::TransportClosed {
                after_goaway: Some(goaway),
            } => write!(f, "the transport closed after the peer sent {goaway}"),
            Self::User(e) => write!(f, "invalid use of the HTTP/2 connection: {e}"),
            Self::KeepaliveTimeout { timeout } => write!(
                f,
                "no response to a keepalive PING within {timeout:?}: the connection is presumed dead"
            ),
        }
    }
}

impl std::error::Error for Error {}

impl From<UserError> for Error {
    fn from(e: UserError) -> Self {
        Self::User(e)
    }
}

/// A misuse of the API by the local application. Never caused by peer bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum UserError {
    /// The stream does not exist (never opened, or already closed).
    UnknownStream(StreamId),
    /// The stream's send side is already closed.
    SendClosed(StreamId),
    /// Only clients open streams (server push is not supported).
    NotClient,
    /// Only servers send responses.
    NotServer,
    /// The response head for this stream was already sent.
    ResponseAlreadySent(StreamId),
    /// Headers that HTTP/2 forbids or that cannot be encoded.
    MalformedHeaders(Cow<'static, str>),
    /// The connection is going away (GOAWAY sent or received) and takes no new streams.
    GoingAway,
    /// All 2^31 stream ids of this connection are used up.
    StreamIdsExhausted,
    /// Another PING of ours is still waiting for its acknowledgement with this payload.
    PingInFlight,
}

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::UnknownStream(id) => write!(f, "stream {id} is not open"),
            Self::SendClosed(id) => write!(f, "stream {id} already ended its send side"),
            Self::NotClient => f.write_str("only a client can open streams"),
            Self::NotServer => f.write_str("only a server can send a response"),
            Self::ResponseAlreadySent(id) => {
                write!(f, "a response was already sent on stream {id}")
            }
            Self::MalformedHeaders(why) => write!(f, "malformed headers: {why}"),
            Self::GoingAway => f.write_str("the connection is going away and takes no new streams"),
            Self::StreamIdsExhausted => f.write_str("stream identifiers exhausted"),
            Self::PingInFlight => f.write_str("a PING with this payload is already in flight"),
        }
    }
}

impl std::error::Error for UserError {}
