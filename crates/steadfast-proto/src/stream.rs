//! Per-stream state (RFC 9113 §5.1).

use std::collections::VecDeque;

use bytes::Bytes;

use crate::error::Fate;
use crate::frame::StreamId;
use crate::message::EncodedFields;
use crate::window::Window;

/// The state of a stream, as in the diagram of RFC 9113 §5.1, restricted to what
/// steadfast uses: server push is never enabled, so the reserved states do not occur.
///
/// ```text
///                          +--------+
///                  send H /|  idle  |\ recv H
///                        / +--------+ \
///                       v              v
///                 +--------+  send ES / recv ES  +----------+
///    half-closed  | remote | <------ +--------+ -------> |  local   | half-closed
///                 +--------+  recv ES| open  |send ES    +----------+
///                       |    +-------+--------+             |
///                       | send ES / send R / recv R   recv ES / send R / recv R
///                       v                                   v
///                          +------------------------------+
///                          |           closed              |
///                          +------------------------------+
/// ```
/// A locally opened stream stays `Idle` while it waits for the peer's
/// SETTINGS_MAX_CONCURRENT_STREAMS to allow it; its HEADERS are not yet encoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamState {
    /// Opened by the application but not yet sent (waiting for concurrency).
    Idle,
    /// Both sides may send.
    Open,
    /// We sent END_STREAM; the peer may still send.
    HalfClosedLocal,
    /// The peer sent END_STREAM; we may still send.
    HalfClosedRemote,
}

/// What ends the send side once the queued data is written.
#[derive(Debug)]
pub(crate) enum SendEnd {
    /// Nothing yet: the application may send more.
    Open,
    /// END_STREAM on the last DATA frame.
    EndStream,
    /// A trailer section with END_STREAM.
    Trailers(EncodedFields),
}

#[derive(Debug)]
pub(crate) struct Stream {
    pub(crate) id: StreamId,
    /// True for streams this endpoint opened.
    pub(crate) local: bool,
    /// Only for locally initiated streams (see [`Fate`]).
    pub(crate) fate: Fate,
    /// Headers of a locally opened stream waiting for concurrency, and END_STREAM.
    pub(crate) pending_open: Option<(EncodedFields, bool)>,

    /// We sent END_STREAM (or are about to: set when the last frame is written).
    pub(crate) send_closed: bool,
    /// The peer sent END_STREAM.
    pub(crate) recv_closed: bool,

    /// How much we may still send on this stream; a SETTINGS_INITIAL_WINDOW_SIZE
    /// decrease can make it negative (see [`Window`]).
    pub(crate) send_window: Window,
    pub(crate) send_queue: VecDeque<Bytes>,
    pub(crate) send_queued: usize,
    pub(crate) send_end: SendEnd,
    /// Present in the connection's ready queue.
    pub(crate) scheduled: bool,
    /// Present in the connection's queue of streams waiting for the connection window.
    pub(crate) conn_blocked: bool,
    /// A final response was sent (server) — 1xx responses do not count.
    pub(crate) response_sent: bool,

    /// How much the peer may still send on this stream.
    pub(crate) recv_window: Window,
    /// Bytes the application has released but we have not yet announced.
    pub(crate) recv_release_pending: u32,
    /// Bytes delivered to the application and not yet released.
    pub(crate) recv_unreleased: u32,
    /// A final response head arrived (client), or the request head (server).
    pub(crate) head_received: bool,
    /// The request was HEAD: the response has no content (RFC 9110 §9.3.2).
    pub(crate) head_request: bool,
    pub(crate) content_length: Option<u64>,
    pub(crate) body_received: u64,
    /// When the peer last moved this stream's body forward (its head, DATA with
    /// payload or END_STREAM): the start of `Config::stream_recv_timeout`. `None` when
    /// that timeout does not apply (not configured, or no body is expected).
    pub(crate) recv_activity: Option<std::time::Instant>,
    /// We reopened the peer's window for this stream after it was exhausted: its
    /// receive clock restarts at the next sweep.
    pub(crate) recv_window_reopened: bool,
    /// Every DATA byte the application ever queued on this stream; minus
    /// `send_queued`, what has been written: a count that only grows, so progress is
    /// seen without a hook in the write path.
    pub(crate) send_queued_total: u64,
    /// Since when queued DATA has not moved, and how much had been written then (for
    /// `Config::stream_send_timeout`); `None` while nothing waits or it moves.
    pub(crate) send_stalled: Option<(std::time::Instant, u64)>,
    /// The application's deadline for the stream (`Connection::set_deadline`).
    pub(crate) deadline: Option<std::time::Instant>,
}

impl Stream {
    pub(crate) fn new(id: StreamId, local: bool, send_window: Window, recv_window: Window) -> Self {
        Self {
            id,
            local,
            fate: Fate::NotSent,
            pending_open: None,
            send_closed: false,
            recv_closed: false,
            send_window,
            send_queue: VecDeque::new(),
            send_queued: 0,
            send_end: SendEnd::Open,
            scheduled: false,
            conn_blocked: false,
            response_sent: false,
            recv_window,
            recv_release_pending: 0,
            recv_unreleased: 0,
            head_received: false,
            head_request: false,
            content_length: None,
            body_received: 0,
            recv_activity: None,
            recv_window_reopened: false,
            send_queued_total: 0,
            send_stalled: None,
            deadline: None,
        }
    }

    pub(crate) fn state(&self) -> StreamState {
        match (
            self.pending_open.is_some(),
            self.send_closed,
            self.recv_closed,
        ) {
            (true, _, _) => StreamState::Idle,
            (false, false, false) => StreamState::Open,
            (false, true, false) => StreamState::HalfClosedLocal,
            // Both closed: the stream is removed right away, so callers never see this.
            (false, _, true) => StreamState::HalfClosedRemote,
        }
    }

    /// The application has ended the send side (possibly with data still queued).
    pub(crate) fn send_ended(&self) -> bool {
        self.send_closed || !matches!(self.send_end, SendEnd::Open)
    }

    /// Whether the transmit loop has something to write for this stream.
    pub(crate) fn has_send_work(&self) -> bool {
        self.pending_open.is_none()
            && !self.send_closed
            && (self.send_queued > 0 || !matches!(self.send_end, SendEnd::Open))
    }

    /// Forward-only fate update (NotSent → MaybeProcessed → Processed).
    pub(crate) fn mark_sent(&mut self) {
        if self.fate == Fate::NotSent {
            self.fate = Fate::MaybeProcessed;
        }
    }
}
