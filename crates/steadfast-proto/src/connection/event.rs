//! What a connection reports to the application.

use bytes::Bytes;
use http::{HeaderMap, Request, Response};

use crate::error::{Error, Fate, GoAway};
use crate::frame::{Settings, StreamId};

/// Something that happened on the connection, for the application.
#[derive(Debug)]
#[non_exhaustive]
pub enum Event {
    /// (Server) The peer opened a stream with this request head.
    Request {
        /// The new stream.
        id: StreamId,
        /// The request head; the body follows as `Data` events unless `end_stream`.
        request: Request<()>,
        /// The request has no body.
        end_stream: bool,
    },
    /// (Client) An interim 1xx response.
    Informational {
        /// The stream.
        id: StreamId,
        /// The interim response.
        response: Response<()>,
    },
    /// (Client) The final response head.
    Response {
        /// The stream.
        id: StreamId,
        /// The response head; the body follows as `Data` events unless `end_stream`.
        response: Response<()>,
        /// The response has no body.
        end_stream: bool,
    },
    /// A chunk of a message body. Release it with
    /// [`Connection::release_capacity`] once consumed, so the peer may send more.
    Data {
        /// The stream.
        id: StreamId,
        /// The bytes (possibly empty when only `end_stream` is set).
        data: Bytes,
        /// The last chunk of the body.
        end_stream: bool,
    },
    /// The trailer section, which ends the stream.
    Trailers {
        /// The stream.
        id: StreamId,
        /// The trailers.
        trailers: HeaderMap,
    },
    /// A stream ended abnormally: reset by either side, refused by a GOAWAY, or lost
    /// with the connection. Not reported for resets the application asked for.
    StreamError {
        /// The stream.
        id: StreamId,
        /// What happened.
        error: Error,
        /// For locally initiated streams: what the server may have done with it.
        fate: Option<Fate>,
    },
    /// A stream completed normally: both sides sent END_STREAM and everything queued
    /// for it was written. The runtime can forget it.
    StreamClosed {
        /// The stream.
        id: StreamId,
        /// The peer's END_STREAM came last (ours was sent first): for a server, the
        /// client finished its request after the response ended.
        peer_ended_last: bool,
    },
    /// The peer's SETTINGS took effect (the first one completes the handshake).
    PeerSettings(Settings),
    /// The peer acknowledged our SETTINGS.
    SettingsAcked,
    /// The peer answered one of our PINGs.
    PingAck([u8; 8]),
    /// The peer sent GOAWAY. Locally initiated streams above its last-stream-id have
    /// already been reported as refused.
    GoAwayReceived(GoAway),
    /// Streams may be opened again: concurrency was freed.
    StreamsAvailable,
    /// The connection is finished: `None` after a graceful close, otherwise the error.
    /// Write out what `poll_transmit` still returns, then close the transport.
    Closed(Option<Error>),
}
