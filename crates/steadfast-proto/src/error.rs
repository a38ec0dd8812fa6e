//! The error model of the HTTP/2 layer: error codes, who initiated a failure, and the
//! fate of a locally initiated request.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use crate::ids::StreamId;

pub use crate::ids::{ErrorCode, GoAway};

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
    /// The deadline the application set on a stream
    /// ([`Connection::set_deadline`](crate::Connection::set_deadline)) passed: the
    /// stream was reset with CANCEL, or dropped if its HEADERS had not been sent.
    DeadlineExceeded {
        /// The stream.
        stream_id: StreamId,
    },
}

impl Error {
    /// The HTTP/2 error code involved, if any.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::GoAway { goaway, .. } => Some(goaway.code),
            Self::Reset { code, .. } => Some(*code),
            Self::TransportClosed { .. }
            | Self::User(_)
            | Self::KeepaliveTimeout { .. }
            | Self::DeadlineExceeded { .. } => None,
        }
    }

    /// Who caused the failure.
    pub fn initiator(&self) -> Initiator {
        match self {
            Self::GoAway { initiator, .. } | Self::Reset { initiator, .. } => *initiator,
            Self::TransportClosed { .. } => Initiator::Remote,
            Self::User(_) | Self::DeadlineExceeded { .. } => Initiator::Application,
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
            Self::DeadlineExceeded { stream_id } => {
                write!(f, "stream {stream_id} reached its deadline")
            }
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

/// A configuration value that cannot work: which field, its value, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    field: &'static str,
    value: String,
    reason: &'static str,
}

impl ConfigError {
    pub(crate) fn new(field: &'static str, value: impl fmt::Display, reason: &'static str) -> Self {
        Self {
            field,
            value: value.to_string(),
            reason,
        }
    }

    /// The name of the offending `Config` field.
    pub fn field(&self) -> &'static str {
        self.field
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration: {} = {} {}",
            self.field, self.value, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}
