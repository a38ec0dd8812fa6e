//! The HTTP/2 connection state machine.

mod commands;
mod config;
mod event;
mod lifecycle;
mod recv;
mod send;
mod timers;

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use steadfast_hpack::{Decoder, Encoder};

pub use self::config::{Config, FloodLimits, Keepalive, PingPolicy, Role};
pub use self::event::Event;
use crate::error::{ConfigError, Error, ErrorCode, Fate, GoAway, UserError};
use crate::frame::{Settings, SettingsFrame, StreamId, WindowUpdate, DEFAULT_MAX_FRAME_SIZE};
use crate::message;
use crate::stream::{Stream, StreamState};
use crate::window::Window;

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The initial flow-control window of every stream and of the connection (§6.9.2).
const DEFAULT_WINDOW: u32 = 65_535;

/// The opaque data of the PING sent with the first GOAWAY of a graceful shutdown.
const SHUTDOWN_PING: [u8; 8] = *b"sf-drain";

#[derive(Debug)]
enum State {
    Open,
    Closed(Option<Error>),
}

#[derive(Debug)]
enum Shutdown {
    /// GOAWAY(2^31-1) and a PING were sent; waiting for the PING's ACK.
    AwaitingPing { deadline: Instant },
    /// The final GOAWAY was sent.
    Final,
}

/// A field block being reassembled from HEADERS and CONTINUATION frames.
#[derive(Debug)]
struct PartialBlock {
    stream_id: StreamId,
    block: BytesMut,
    end_stream: bool,
    self_dependent: bool,
    frames: usize,
}

/// Which side sent the RST_STREAM that closed a stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ResetBy {
    Us,
    Peer,
}

/// The peer's settings, with the RFC's initial values for the ones it did not send.
#[derive(Clone, Copy, Debug)]
struct PeerSettings {
    max_concurrent_streams: u32,
    initial_window_size: u32,
    max_frame_size: u32,
    enable_connect_protocol: bool,
}

#[derive(Debug)]
struct FloodCounters {
    window_start: Instant,
    resets: u32,
    pings: u32,
    settings: u32,
    empty_frames: u32,
}

/// One HTTP/2 connection, without I/O and without a clock.
///
/// The methods come in four kinds:
/// - getters (`&self`): [`fate`](Self::fate), [`stream_state`](Self::stream_state),
///   [`send_capacity`](Self::send_capacity), [`error`](Self::error), …
/// - `handle_*`: input from the network ([`handle_read`](Self::handle_read), or
///   [`handle_received`](Self::handle_received) after reading into
///   [`recv_buffer`](Self::recv_buffer); [`handle_eof`](Self::handle_eof)) or from a
///   timer ([`handle_timeout`](Self::handle_timeout));
/// - commands from the application: [`send_request`](Self::send_request),
///   [`send_response`](Self::send_response), [`send_data`](Self::send_data),
///   [`reset`](Self::reset), [`graceful_shutdown`](Self::graceful_shutdown), …
/// - `poll_*`: output. After any input or command, call
///   [`poll_transmit`](Self::poll_transmit) (or
///   [`poll_transmit_vectored`](Self::poll_transmit_vectored), which does not copy
///   DATA) until it writes nothing, then drain
///   [`poll_event`](Self::poll_event), then arm a timer for
///   [`poll_timeout`](Self::poll_timeout).
///
/// Every method that may act on time takes `now`; it must never go backwards. Nothing
/// that the peer sends can make a method panic or grow memory without bound: protocol
/// violations become the RST_STREAM or GOAWAY that RFC 9113 names, and an
/// [`Event::StreamError`] or [`Event::Closed`] for the application.
#[derive(Debug)]
pub struct Connection {
    role: Role,
    config: Config,
    state: State,

    /// Bytes of the client preface still expected (server), 0 once matched.
    preface_remaining: usize,
    /// The peer's first SETTINGS arrived.
    handshake_done: bool,
    /// Input not yet processed: at most the start of one frame between calls.
    recv_buf: BytesMut,
    /// `recv_buf.len()` when input was last processed: more means new bytes arrived.
    recv_seen: usize,
    /// Every frame to write, in the order it was produced, which is the order it must
    /// reach the wire (HPACK state depends on it). Between calls to `poll_transmit` it
    /// holds only control frames and HEADERS: DATA is written, and everything handed
    /// over, within `poll_transmit`.
    out: BytesMut,
    /// Output that precedes `out` on the wire, oldest first: `out` as it stood when a
    /// large DATA payload was written, then that payload itself, which is the
    /// application's `Bytes`, not a copy. Empty between calls to `poll_transmit`.
    out_chunks: VecDeque<Bytes>,
    /// Bytes in `out_chunks`.
    out_chunks_len: usize,
    /// Locally opened streams whose HEADERS sit in `out` (their fate changes from
    /// `NotSent` once `out` is handed to the transport).
    unflushed_opens: Vec<StreamId>,

    /// SETTINGS we sent and the peer has not acknowledged, oldest first.
    pending_settings: VecDeque<(Settings, Instant)>,
    /// Our settings as acknowledged by the peer.
    local: Settings,
    peer: PeerSettings,
    encoder: Encoder,
    decoder: Decoder,

    streams: crate::frame::StreamIdMap<Stream>,
    /// Locally opened streams waiting for concurrency, in id order.
    pending_open: VecDeque<StreamId>,
    /// Streams with data, trailers or END_STREAM to write.
    send_ready: VecDeque<StreamId>,
    next_local_id: u32,
    /// Locally initiated streams currently counted against the peer's limit.
    active_local: usize,
    /// Peer-initiated streams currently counted against our limit.
    active_remote: usize,
    /// The highest stream id the peer has opened (or tried to).
    last_remote_id: StreamId,
    /// The highest peer-initiated stream handed to the application.
    last_processed_remote_id: StreamId,
    /// Streams reset recently, and by whom (§5.1 "closed"): frames the peer sent
    /// before it saw our RST_STREAM are expected and ignored, while frames after its
    /// own RST_STREAM are errors. Bounded by `Config::max_reset_streams_remembered`.
    reset_streams: HashMap<StreamId, ResetBy>,
    reset_order: VecDeque<StreamId>,
    /// CONNECT streams (§8.5) on which the peer may only send DATA and stream management
    /// frames once established: requests received, requests sent (until a non-2xx
    /// final response shows no tunnel was made).
    tunnels: HashSet<StreamId>,
    partial: Option<PartialBlock>,

    /// How much we may send on the connection (may not go negative).
    send_window: Window,
    /// The largest `send_window` has been: a connection WINDOW_UPDATE that raises the
    /// window above it is not returning credit for DATA we sent (see
    /// `recv_window_update`).
    send_window_high: Window,
    /// Streams with DATA queued that wait for the connection window, in the order they
    /// ran out of it; `poll_transmit` resumes them oldest first, as far as the window
    /// reaches, so a connection WINDOW_UPDATE costs O(1) whatever the number of
    /// streams. Entries of streams removed since are skipped (see `forget_blocked`).
    conn_blocked: VecDeque<StreamId>,
    /// Streams in `conn_blocked` that are still there (flagged `Stream::conn_blocked`).
    conn_blocked_live: usize,
    /// How much the peer may send on the connection.
    recv_window: Window,
    recv_release_pending: u32,
    /// Target connection receive window.
    recv_window_target: u32,

    goaway_sent: Option<GoAway>,
    goaway_received: Option<GoAway>,
    shutdown: Option<Shutdown>,
    pings_in_flight: Vec<[u8; 8]>,
    flood: FloodCounters,
    /// Field blocks received whose header list exceeded `max_header_list_size`.
    oversized_blocks: u32,
    events: VecDeque<Event>,
    stream_available_signalled: bool,
    /// Keepalive, PING policy, idle and age (see `timers.rs`).
    timers: timers::Timers,
    /// Where RST_STREAM and GOAWAY frames are counted, if anywhere.
    frame_counters: Option<std::sync::Arc<crate::counters::FrameCounters>>,
    /// How many times `schedule` ran, so unit tests can tell O(1) from O(streams).
    #[cfg(test)]
    schedule_calls: usize,
}

impl Connection {
    /// Starts a connection. The client's preface and SETTINGS (and the server's
    /// SETTINGS) are ready in `poll_transmit` immediately. Fails when `config` has a
    /// value that could not work ([`Config::validate`]).
    pub fn new(role: Role, config: Config, now: Instant) -> Result<Self, ConfigError> {
        config.validate()?;
        let settings = config.local_settings(role);
        let mut conn = Self {
            role,
            preface_remaining: if role == Role::Server {
                PREFACE.len()
            } else {
                0
            },
            handshake_done: false,
            recv_buf: BytesMut::new(),
            recv_seen: 0,
            out: BytesMut::new(),
            out_chunks: VecDeque::new(),
            out_chunks_len: 0,
            unflushed_opens: Vec::new(),
            pending_settings: VecDeque::new(),
            // Until acknowledged, the RFC's initial values are in force (§6.5.2).
            local: Settings {
                header_table_size: Some(4096),
                enable_push: Some(true),
                max_concurrent_streams: None,
                initial_window_size: Some(DEFAULT_WINDOW),
                max_frame_size: Some(DEFAULT_MAX_FRAME_SIZE),
                max_header_list_size: None,
                enable_connect_protocol: Some(false),
            },
            peer: PeerSettings {
                max_concurrent_streams: u32::MAX,
                initial_window_size: DEFAULT_WINDOW,
                max_frame_size: DEFAULT_MAX_FRAME_SIZE,
                enable_connect_protocol: false,
            },
            encoder: Encoder::new(),
            // Until the peer acknowledges our SETTINGS, its encoder may use the
            // default 4096-byte table (RFC 7541 §4.2); a smaller size applies on ACK.
            decoder: Decoder::new((config.header_table_size as usize).max(4096)),
            streams: Default::default(),
            pending_open: VecDeque::new(),
            send_ready: VecDeque::new(),
            next_local_id: if role == Role::Client { 1 } else { 2 },
            active_local: 0,
            active_remote: 0,
            last_remote_id: StreamId::ZERO,
            last_processed_remote_id: StreamId::ZERO,
            reset_streams: HashMap::new(),
            reset_order: VecDeque::new(),
            tunnels: HashSet::new(),
            partial: None,
            send_window: Window::new(DEFAULT_WINDOW),
            send_window_high: Window::new(DEFAULT_WINDOW),
            conn_blocked: VecDeque::new(),
            conn_blocked_live: 0,
            recv_window: Window::new(DEFAULT_WINDOW),
            recv_release_pending: 0,
            recv_window_target: config.initial_connection_window.max(DEFAULT_WINDOW),
            goaway_sent: None,
            goaway_received: None,
            shutdown: None,
            pings_in_flight: Vec::new(),
            oversized_blocks: 0,
            flood: FloodCounters {
                window_start: now,
                resets: 0,
                pings: 0,
                settings: 0,
                empty_frames: 0,
            },
            events: VecDeque::new(),
            stream_available_signalled: false,
            timers: timers::Timers::new(now),
            frame_counters: None,
            #[cfg(test)]
            schedule_calls: 0,
            state: State::Open,
            config,
        };
        if role == Role::Client {
            conn.out.extend_from_slice(PREFACE);
        }
        conn.write_frame(&crate::frame::Frame::Settings(SettingsFrame::Values(
            settings,
        )));
        conn.pending_settings.push_back((settings, now));
        let extra = i64::from(conn.recv_window_target) - i64::from(DEFAULT_WINDOW);
        if extra > 0 {
            conn.recv_window.restore(extra as u32);
            conn.write_frame(&crate::frame::Frame::WindowUpdate(WindowUpdate::new(
                StreamId::ZERO,
                extra as u32,
            )));
        }
        Ok(conn)
    }

    // ---- getters ----

    /// This endpoint's role.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The fate of a locally initiated stream that is still known to the connection.
    /// Failed streams report their fate in [`Event::StreamError`].
    pub fn fate(&self, id: StreamId) -> Option<Fate> {
        self.streams.get(&id).filter(|s| s.local).map(|s| s.fate)
    }

    /// The state of a stream, or `None` once it is closed (or was never opened).
    pub fn stream_state(&self, id: StreamId) -> Option<StreamState> {
        self.streams.get(&id).map(Stream::state)
    }

    /// How many bytes of DATA may be sent on `id` right now under both flow-control
    /// windows, minus what is already queued. The application uses this for
    /// backpressure; `send_data` itself never refuses data.
    pub fn send_capacity(&self, id: StreamId) -> usize {
        let Some(s) = self.streams.get(&id) else {
            return 0;
        };
        let window = s.send_window.min(self.send_window).available();
        window.saturating_sub(s.send_queued)
    }

    /// Bytes queued on `id` and not yet written.
    pub fn buffered_send(&self, id: StreamId) -> usize {
        self.streams.get(&id).map_or(0, |s| s.send_queued)
    }

    /// How many bytes of DATA the connection-level flow-control window lets out now,
    /// shared by every stream. Data queued on streams counts against it only once
    /// written, so a runtime that fills several streams subtracts what it queued.
    pub fn connection_send_window(&self) -> usize {
        self.send_window.available()
    }

    /// True when a new stream would be sent right away rather than wait for the peer's
    /// concurrency limit, and the connection accepts new streams at all.
    pub fn can_open_stream(&self) -> bool {
        self.accepts_new_streams()
            && self.pending_open.is_empty()
            && self.active_local < self.peer.max_concurrent_streams as usize
    }

    /// True while new streams may be opened (no GOAWAY either way, not closed).
    pub fn accepts_new_streams(&self) -> bool {
        matches!(self.state, State::Open)
            && self.goaway_received.is_none()
            && self.goaway_sent.is_none()
            && self.next_local_id <= StreamId::MAX.get()
    }

    /// The peer's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until it says otherwise).
    pub fn peer_max_concurrent_streams(&self) -> u32 {
        self.peer.max_concurrent_streams
    }

    /// Streams open in each direction: (locally initiated, peer-initiated).
    pub fn active_streams(&self) -> (usize, usize) {
        (self.active_local, self.active_remote)
    }

    /// The GOAWAY the peer sent, if any.
    pub fn goaway_received(&self) -> Option<&GoAway> {
        self.goaway_received.as_ref()
    }

    /// The GOAWAY this endpoint sent, if any (the latest one).
    pub fn goaway_sent(&self) -> Option<&GoAway> {
        self.goaway_sent.as_ref()
    }

    /// The peer's first SETTINGS arrived.
    pub fn is_established(&self) -> bool {
        self.handshake_done
    }

    /// The connection is finished (gracefully or not). Output may remain.
    pub fn is_closed(&self) -> bool {
        matches!(self.state, State::Closed(_))
    }

    /// Finished and nothing left to write: the transport can be closed.
    pub fn is_done(&self) -> bool {
        self.is_closed() && self.out.is_empty() && self.out_chunks.is_empty()
    }

    /// Counts every RST_STREAM and GOAWAY frame this connection writes or reads from
    /// now on into `counters`, by error code (one relaxed atomic add per such frame;
    /// other frames are not counted). A frame counted as sent is one encoded for the
    /// transport; a client that fails before its output is written drops it unsent.
    pub fn count_frames_into(&mut self, counters: std::sync::Arc<crate::FrameCounters>) {
        self.frame_counters = Some(counters);
    }

    /// The error that ended the connection, if it failed. Sticky.
    pub fn error(&self) -> Option<&Error> {
        match &self.state {
            State::Closed(e) => e.as_ref(),
            State::Open => None,
        }
    }

    /// The earliest time at which [`handle_timeout`](Self::handle_timeout) must be
    /// called: the SETTINGS acknowledgement timeout, the graceful shutdown's PING
    /// timeout, and the timers of [`Config::keepalive`] (next PING, or the deadline of
    /// the one outstanding), [`Config::max_connection_idle`],
    /// [`Config::handshake_timeout`], [`Config::stream_recv_timeout`],
    /// [`Config::stream_send_timeout`],
    /// [`Config::max_connection_age`] and [`Config::max_connection_age_grace`]. It may
    /// lie in the past (e.g. a keepalive PING is overdue when the first stream opens
    /// after a long silence); `None` when nothing is armed.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.is_closed() {
            return None;
        }
        let settings = self
            .pending_settings
            .front()
            .map(|(_, sent)| *sent + self.config.settings_timeout);
        let shutdown = match self.shutdown {
            Some(Shutdown::AwaitingPing { deadline }) => Some(deadline),
            _ => None,
        };
        settings
            .into_iter()
            .chain(shutdown)
            .chain(self.timers_poll_timeout())
            .min()
    }

    /// The next event for the application.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    // ---- input ----

    /// Feeds bytes read from the transport (copying them; a runtime can avoid the copy
    /// with [`recv_buffer`](Self::recv_buffer) and
    /// [`handle_received`](Self::handle_received)).
    pub fn handle_read(&mut self, data: &[u8], now: Instant) {
        if self.is_closed() {
            return;
        }
        self.recv_buf.extend_from_slice(data);
        self.handle_received(now);
        // Never keep a large buffer around: a burst of frames grows it, and the frames
        // handed out share its memory until they are dropped.
        if self.recv_buf.is_empty() && self.recv_buf.capacity() > 32 << 10 {
            self.recv_buf = BytesMut::new();
        }
    }

    /// The buffer input is read into, for a runtime that reads from the transport
    /// without copying: append what the transport returns (e.g. with
    /// `tokio::io::AsyncReadExt::read_buf`), then call
    /// [`handle_received`](Self::handle_received). The bytes it already holds are
    /// input not yet processed (the start of a frame): append after them, never
    /// change them. Received DATA payloads are slices of this buffer, so they are not
    /// copied; reserve room before reading (`BytesMut::reserve`), as the payloads
    /// handed out may still share its memory. The caller decides how large a buffer
    /// to keep: the connection frees it only while no stream is open.
    pub fn recv_buffer(&mut self) -> &mut BytesMut {
        &mut self.recv_buf
    }

    /// Processes the bytes appended to [`recv_buffer`](Self::recv_buffer) since the
    /// last call (or since [`handle_read`](Self::handle_read)).
    pub fn handle_received(&mut self, now: Instant) {
        if self.is_closed() {
            // Nothing is read any more; do not keep what was appended.
            self.recv_buf = BytesMut::new();
            self.recv_seen = 0;
            return;
        }
        if self.recv_buf.len() > self.recv_seen {
            self.timers_on_read(now);
        }
        self.process_input(now);
        self.timers_sync_idle(now);
        self.recv_seen = self.recv_buf.len();
    }

    /// The transport reached EOF or failed. Streams still open fail with their fate.
    pub fn handle_eof(&mut self, _now: Instant) {
        if self.is_closed() {
            return;
        }
        self.discard_unsent_requests();
        if self.streams.is_empty() && (self.goaway_sent.is_some() || self.goaway_received.is_some())
        {
            // A GOAWAY was exchanged and nothing was in flight: the peer closing now
            // (without waiting for our shutdown PING, say) is a clean end.
            self.set_closed(None);
            return;
        }
        let error = Error::TransportClosed {
            after_goaway: self.goaway_received.clone(),
        };
        self.fail_connection(error);
    }

    /// Time has reached (or passed) [`poll_timeout`](Self::poll_timeout): acts on every
    /// timer that is due at `now` and disarms it. Calling it early does nothing.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.is_closed() || self.handshake_timed_out(now) {
            return;
        }
        if let Some((_, sent)) = self.pending_settings.front() {
            if now >= *sent + self.config.settings_timeout {
                self.connection_error(
                    ErrorCode::SETTINGS_TIMEOUT,
                    "SETTINGS not acknowledged in time",
                );
                return;
            }
        }
        if let Some(Shutdown::AwaitingPing { deadline }) = self.shutdown {
            if now >= deadline {
                self.send_final_goaway();
            }
        }
        if !self.is_closed() {
            self.timers_handle_timeout(now);
        }
    }

    // ---- internals shared by recv and send ----

    fn check_open(&self) -> Result<(), Error> {
        match &self.state {
            State::Open => Ok(()),
            State::Closed(Some(e)) => Err(e.clone()),
            State::Closed(None) => Err(UserError::GoingAway.into()),
        }
    }

    fn local_initial_window(&self) -> u32 {
        self.local.initial_window_size.unwrap_or(DEFAULT_WINDOW)
    }

    fn write_frame(&mut self, frame: &crate::frame::Frame) {
        if let Some(counters) = &self.frame_counters {
            match frame {
                crate::frame::Frame::RstStream(f) => counters.rst_stream_sent(f.code),
                crate::frame::Frame::GoAway(f) => counters.goaway_sent(f.0.code),
                _ => {}
            }
        }
        frame.encode(&mut self.out);
    }

    /// Drops every byte of output not yet handed over.
    fn clear_output(&mut self) {
        self.out.clear();
        self.out_chunks.clear();
        self.out_chunks_len = 0;
    }

    /// Encodes a field block into HEADERS + CONTINUATION frames in `out`.
    fn write_headers(&mut self, id: StreamId, fields: &message::EncodedFields, end_stream: bool) {
        self.write_field_iter(id, fields.iter(), end_stream);
    }

    /// HPACK-encodes a field block straight into `out`, behind a frame header that is
    /// filled in afterwards. This is the only place the encoder runs, and `out` the only
    /// buffer it writes to, so blocks reach the wire in encoding order; a block larger than the peer's frame size is split into
    /// HEADERS and CONTINUATION frames instead.
    fn write_field_iter<'a>(
        &mut self,
        id: StreamId,
        fields: impl IntoIterator<Item = steadfast_hpack::Field<'a>>,
        end_stream: bool,
    ) {
        let start = self.out.len();
        self.out.extend_from_slice(&[0; crate::frame::HEADER_LEN]);
        self.encoder.encode(fields, &mut self.out);
        let len = self.out.len() - start - crate::frame::HEADER_LEN;
        if len <= self.peer.max_frame_size as usize {
            let mut header = BytesMut::with_capacity(crate::frame::HEADER_LEN);
            send::write_headers_frame_header(&mut header, id, len, end_stream);
            self.out[start..start + crate::frame::HEADER_LEN].copy_from_slice(&header);
        } else {
            let block = self
                .out
                .split_off(start + crate::frame::HEADER_LEN)
                .freeze();
            self.out.truncate(start);
            send::write_field_block(
                &mut self.out,
                id,
                block,
                end_stream,
                self.peer.max_frame_size,
            );
        }
        self.timers_on_headers_or_data_sent();
    }

    fn schedule(&mut self, id: StreamId) {
        #[cfg(test)]
        {
            self.schedule_calls += 1;
        }
        if let Some(s) = self.streams.get_mut(&id) {
            if !s.scheduled && s.has_send_work() {
                s.scheduled = true;
                self.send_ready.push_back(id);
            }
        }
    }

    /// Sends the HEADERS of waiting streams while the peer's limit allows.
    fn open_pending_streams(&mut self) {
        while self.active_local < self.peer.max_concurrent_streams as usize {
            let Some(id) = self.pending_open.pop_front() else {
                break;
            };
            let Some(stream) = self.streams.get_mut(&id) else {
                continue;
            };
            let Some((fields, end_stream)) = stream.pending_open.take() else {
                continue;
            };
            let end_now = end_stream && stream.send_queued == 0;
            if end_now {
                stream.send_closed = true;
            }
            self.active_local += 1;
            self.write_headers(id, &fields, end_now);
            self.unflushed_opens.push(id);
            self.schedule(id);
        }
    }

    /// Remembers a stream this endpoint reset (or ignores, e.g. above its GOAWAY).
    fn remember_reset(&mut self, id: StreamId) {
        self.remember_reset_by(id, ResetBy::Us);
    }

    fn remember_reset_by(&mut self, id: StreamId, by: ResetBy) {
        if self.config.max_reset_streams_remembered == 0 {
            return;
        }
        if self.reset_streams.insert(id, by).is_none() {
            self.reset_order.push_back(id);
            if self.reset_order.len() > self.config.max_reset_streams_remembered {
                if let Some(old) = self.reset_order.pop_front() {
                    self.reset_streams.remove(&old);
                }
            }
        }
    }

    /// Removes a stream from every structure and returns its flow-control credit.
    fn remove_stream(&mut self, id: StreamId) -> Option<Stream> {
        let stream = self.streams.remove(&id)?;
        self.forget_blocked(&stream);
        self.tunnels.remove(&id);
        // After a burst of streams, give the map's memory back (amortized: three
        // quarters of its entries go between two shrinks).
        if self.streams.capacity() > 64 && self.streams.len() < self.streams.capacity() / 4 {
            self.streams.shrink_to(self.streams.len() * 2);
        }
        if stream.pending_open.is_none() {
            if stream.local {
                self.active_local -= 1;
                if !self.stream_available_signalled && self.accepts_new_streams() {
                    self.stream_available_signalled = true;
                }
            } else {
                self.active_remote -= 1;
            }
        }
        // Data the application never released still occupies the connection window.
        self.release_connection(stream.recv_unreleased);
        self.flush_window_updates(None);
        if stream.local {
            self.open_pending_streams();
            if self.stream_available_signalled && self.pending_open.is_empty() {
                self.stream_available_signalled = false;
                self.events.push_back(Event::StreamsAvailable);
            }
        }
        Some(stream)
    }

    /// A stream that is gone no longer waits for the connection window. Its entry stays
    /// in `conn_blocked` until skipped, but stale entries never outnumber live ones by
    /// much: the queue is compacted when they would.
    fn forget_blocked(&mut self, stream: &Stream) {
        if !stream.conn_blocked {
            return;
        }
        self.conn_blocked_live = self.conn_blocked_live.saturating_sub(1);
        if self.conn_blocked.len() > 2 * self.conn_blocked_live + 64 {
            let streams = &self.streams;
            self.conn_blocked
                .retain(|id| streams.get(id).is_some_and(|s| s.conn_blocked));
        }
    }

    /// Forgets a stream both sides ended; `by_peer`: called for the peer's
    /// END_STREAM (else for ours).
    fn maybe_close_stream(&mut self, id: StreamId, by_peer: bool) {
        if let Some(s) = self.streams.get(&id) {
            if s.send_closed && s.recv_closed {
                self.remove_stream(id);
                self.events.push_back(Event::StreamClosed {
                    id,
                    peer_ended_last: by_peer,
                });
                self.maybe_finish();
            }
        }
    }

    fn release_connection(&mut self, len: u32) {
        self.recv_release_pending = self.recv_release_pending.saturating_add(len);
    }

    /// Sends WINDOW_UPDATE for the connection and for `id` once enough was released.
    fn flush_window_updates(&mut self, id: Option<StreamId>) {
        let percent = u64::from(self.config.window_update_percent.clamp(1, 100));
        let threshold = |target: u32| (u64::from(target) * percent / 100).max(1) as u32;
        if self.recv_release_pending >= threshold(self.recv_window_target) {
            let inc = self.recv_release_pending;
            self.recv_release_pending = 0;
            if self.recv_window.is_closed() {
                self.timers.recv_connection_reopened = true;
            }
            self.recv_window.restore(inc);
            self.write_frame(&crate::frame::Frame::WindowUpdate(WindowUpdate::new(
                StreamId::ZERO,
                inc,
            )));
        }
        let target = self.local_initial_window();
        if let Some(id) = id {
            if let Some(s) = self.streams.get_mut(&id) {
                if s.recv_release_pending >= threshold(target) && !s.recv_closed {
                    let inc = s.recv_release_pending;
                    s.recv_release_pending = 0;
                    if s.recv_window.is_closed() {
                        s.recv_window_reopened = true;
                    }
                    s.recv_window.restore(inc);
                    WindowUpdate::new(id, inc).encode(&mut self.out);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
