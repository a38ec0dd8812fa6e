//! The connection driver: one task per connection that owns the sans-IO
//! [`Connection`] exclusively.
//!
//! Stream handles never touch the state machine: they send [`Command`]s over a channel
//! and receive what concerns them over per-stream channels. The driver polls the
//! socket, the command channel, the bodies it sends, and its timer, all in one task,
//! and writes everything the state machine produced in one batch per turn.
//!
//! By role: `client` (requests become streams), `server` (admission, dispatch,
//! answers), `bodies` (sending bodies under flow control), `transport` (socket and
//! timer); this file holds the state, the commands, the engine's events and the
//! end of a connection.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::BytesMut;
use http::{Request, Response};
use steadfast_proto::{Connection, ErrorCode, Event, Fate, Initiator, Role, StreamId};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tracing::Instrument;

use crate::body::{recv_channel, BoxBody, RecvBody, RecvItem, RecvSender};
use crate::conn_stats::{CloseReason, ConnCounters};
use crate::error::{BoxError, Error, Kind};

mod bodies;
mod client;
mod read_buf;
mod server;
mod transport;
mod write_buf;
use read_buf::RecvBufs;
use write_buf::WriteBuf;

/// Stop reading while this much output waits for the socket.
const WRITE_HIGH_WATER: usize = 1 << 20;
/// Poll a body for more data only while less than this is queued for its stream…
const SEND_BUFFER: usize = 64 << 10;
/// …or, while the transport takes all that is written to it, less than this, as far
/// as flow control lets it leave: then one write can carry a whole transmit batch
/// (`Config::max_transmit_data`) of a single fast stream. A peer that stops reading
/// soon leaves output waiting, and each stream is back to `SEND_BUFFER`.
const SEND_BUFFER_FLOWING: usize = 256 << 10;
/// Turns of the driver loop before yielding to other tasks.
const TURNS_PER_POLL: usize = 32;
/// Bytes read from the transport before yielding to other tasks: the handlers that
/// consume received bodies then run (and release what they read) between bursts of
/// a window's size, and the memory of what they consumed is read into again.
const READ_PER_POLL: usize = 256 << 10;

/// The answer to a request: its response head and body, or the error with its fate.
pub(crate) type ResponseResult = Result<Response<RecvBody>, Error>;

/// A future that produces a response, from the server's service.
pub(crate) type ResponseFuture =
    Pin<Box<dyn Future<Output = Result<Response<BoxBody>, BoxError>> + Send>>;

/// Turns a request into a response future (a type-erased `tower::Service`).
pub(crate) type Dispatch = Box<dyn FnMut(Request<RecvBody>) -> ResponseFuture + Send>;

/// Messages from handles to the driver.
pub(crate) enum Command {
    /// (Client) Send a request.
    Request {
        request: Request<()>,
        body: BoxBody,
        token: u64,
        tx: oneshot::Sender<ResponseResult>,
    },
    /// (Client) The caller stopped waiting for this request.
    Cancel { token: u64 },
    /// (Server) A service produced its answer.
    Response {
        id: StreamId,
        result: Result<Response<BoxBody>, BoxError>,
    },
    /// A receiving body handed `len` bytes to its reader.
    Release { id: StreamId, len: usize },
    /// A receiving body was dropped before its end.
    BodyDropped { id: StreamId },
    /// Start a graceful shutdown (with GOAWAY debug data): two-phase, or a single
    /// GOAWAY with the real last-stream-id.
    Shutdown {
        debug_data: bytes::Bytes,
        two_phase: bool,
    },
    /// Close the transport now, without GOAWAY (like a crash).
    Abort,
    /// Send a PING and report when its ACK arrives.
    Ping { tx: oneshot::Sender<()> },
}

impl std::fmt::Debug for Command {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Request { .. } => "Request",
            Self::Cancel { .. } => "Cancel",
            Self::Response { .. } => "Response",
            Self::Release { .. } => "Release",
            Self::BodyDropped { .. } => "BodyDropped",
            Self::Shutdown { .. } => "Shutdown",
            Self::Abort => "Abort",
            Self::Ping { .. } => "Ping",
        })
    }
}

/// State the driver publishes for handles and pools, without locking the driver.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Closed: no request can be sent any more.
    pub(crate) closed: AtomicBool,
    /// A GOAWAY was sent or received: no new streams.
    pub(crate) draining: AtomicBool,
    /// The peer's SETTINGS arrived.
    pub(crate) established: AtomicBool,
    /// (Client) The server answered at least one request (a response head arrived):
    /// the connection did real work, so reconnect backoff may start over.
    pub(crate) carried_stream: AtomicBool,
    pub(crate) peer_max_concurrent: AtomicU32,
    /// Requests accepted by the driver and not yet finished.
    pub(crate) in_flight: AtomicUsize,
    /// Why the connection ended, if it failed.
    pub(crate) error: Mutex<Option<Error>>,
    /// The GOAWAY the peer sent, if any.
    pub(crate) goaway: Mutex<Option<steadfast_proto::GoAway>>,
    /// Woken when `draining` or `closed` becomes true (a pool's subchannel watches it).
    pub(crate) state_changed: tokio::sync::Notify,
}

impl Shared {
    pub(crate) fn new() -> Self {
        Self {
            peer_max_concurrent: AtomicU32::new(u32::MAX),
            ..Self::default()
        }
    }

    /// Marks the connection draining (no new streams), waking whoever watches.
    pub(crate) fn set_draining(&self) {
        if !self.draining.swap(true, Ordering::AcqRel) {
            self.state_changed.notify_waiters();
        }
    }

    /// Marks the connection closed (and draining), waking whoever watches.
    pub(crate) fn set_closed(&self) {
        self.set_draining();
        if !self.closed.swap(true, Ordering::AcqRel) {
            self.state_changed.notify_waiters();
        }
    }

    /// The GOAWAY the peer sent, if any.
    pub(crate) fn goaway(&self) -> Option<steadfast_proto::GoAway> {
        self.goaway.lock().ok().and_then(|g| g.clone())
    }

    /// The error of a request this connection could not send: why the connection
    /// ended (the server's GOAWAY, when that is the reason), with fate `NotSent`.
    pub(crate) fn not_sent_error(&self) -> Error {
        let closed = self.closed_error();
        match closed.proto_error() {
            Some(e) => Error::proto(e.clone(), Some(Fate::NotSent), None),
            None => match self.goaway() {
                Some(goaway) => Error::proto(
                    crate::error::remote_goaway(goaway),
                    Some(Fate::NotSent),
                    None,
                ),
                None => Error::with_fate(Kind::ConnectionGone, Some(Fate::NotSent), None),
            },
        }
    }

    pub(crate) fn closed_error(&self) -> Error {
        self.error
            .lock()
            .ok()
            .and_then(|e| e.clone())
            .unwrap_or_else(|| Error::new(Kind::ConnectionGone))
    }
}

#[derive(Default)]
struct Slot {
    /// Where received body data goes.
    recv_tx: Option<RecvSender>,
    /// (Client) Where the response goes.
    response_tx: Option<oneshot::Sender<ResponseResult>>,
    /// The body being sent.
    send_body: Option<BoxBody>,
    /// (Server) The task running the service for this request.
    handler: Option<AbortHandle>,
    /// (Client) The caller's token, to cancel by.
    token: u64,
    /// The reader dropped the received body: release incoming data at once.
    discard: bool,
    /// Our side of the stream is complete.
    send_done: bool,
    /// (Server, when asked for) Where the stream's failure is told to the service.
    end: Option<crate::server::StreamEnd>,
}

/// Per-driver settings.
#[derive(Clone, Debug)]
pub(crate) struct DriverConfig {
    pub(crate) proto: steadfast_proto::Config,
    /// How long in-flight streams may take to finish after a graceful shutdown starts.
    pub(crate) shutdown_grace: Duration,
    /// (Server) Load shedding: requests over these limits are refused with
    /// REFUSED_STREAM before the service sees them.
    pub(crate) shed: Option<Arc<Shedding>>,
    /// (Server) Put in the extensions of every request.
    pub(crate) connection_info: Option<crate::server::ConnectionInfo>,
    /// (Server) Put a [`StreamEnd`](crate::server::StreamEnd) in each request's
    /// extensions, set if the stream fails.
    pub(crate) stream_end: bool,
    /// Where this connection's RST_STREAM and GOAWAY frames and its end are counted.
    pub(crate) counters: Option<Arc<ConnCounters>>,
}

/// Server-side admission limits and counters, shared by a server's connections.
#[derive(Debug, Default)]
pub(crate) struct Shedding {
    /// Requests in the service on one connection, at most.
    pub(crate) per_connection: Option<usize>,
    /// Requests in the service across the server, at most.
    pub(crate) per_server: Option<usize>,
    /// Requests in the service now, across the server.
    pub(crate) in_flight: AtomicUsize,
    /// Requests handed to the service so far.
    pub(crate) accepted: std::sync::atomic::AtomicU64,
    /// Requests refused with REFUSED_STREAM so far.
    pub(crate) refused: std::sync::atomic::AtomicU64,
}

pub(crate) struct Driver<IO> {
    io: IO,
    conn: Connection,
    role: Role,
    commands: mpsc::UnboundedReceiver<Command>,
    commands_tx: mpsc::UnboundedSender<Command>,
    slots: steadfast_proto::StreamIdMap<Slot>,
    tokens: HashMap<u64, StreamId>,
    write_buf: WriteBuf,
    recv_bufs: RecvBufs,
    /// What may still be read in this poll (`READ_PER_POLL`).
    read_budget: usize,
    read_closed: bool,
    io_failed: bool,
    sleep: Pin<Box<tokio::time::Sleep>>,
    sleep_at: Option<Instant>,
    shared: Arc<Shared>,
    dispatch: Option<Dispatch>,
    grace: Duration,
    /// When a graceful shutdown must give up on in-flight streams.
    drain_deadline: Option<Instant>,
    /// Once the engine is finished, when to stop waiting for the socket to take the
    /// last bytes: the grace period, counted again from each write that makes progress.
    linger_until: Option<Instant>,
    pings: Vec<([u8; 8], oneshot::Sender<()>)>,
    next_ping: u64,
    /// Fired when the peer's SETTINGS arrive (dropped if the connection ends first).
    ready: Option<oneshot::Sender<()>>,
    /// Streams whose bodies are being sent.
    sending: Vec<StreamId>,
    shed: Option<Arc<Shedding>>,
    connection_info: Option<crate::server::ConnectionInfo>,
    stream_end: bool,
    /// Told to drop the transport at once.
    aborted: bool,
    /// Reused by `poll_bodies`, to avoid allocating on every turn.
    scratch: Vec<StreamId>,
    /// The first output (the preface and SETTINGS) was written.
    preface_written: bool,
    /// Where `poll_bodies` starts next (it rotates, for fairness).
    next_body: usize,
    /// Where the connection's end is counted (taken when it is).
    counters: Option<Arc<ConnCounters>>,
}

/// A new driver with what its handles need: the command channel, the shared state,
/// and the signal that the peer's SETTINGS arrived.
pub(crate) type Started<IO> = (
    Driver<IO>,
    mpsc::UnboundedSender<Command>,
    Arc<Shared>,
    oneshot::Receiver<()>,
);

fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

impl<IO> Driver<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    pub(crate) fn new(
        io: IO,
        role: Role,
        config: DriverConfig,
        dispatch: Option<Dispatch>,
    ) -> Result<Started<IO>, steadfast_proto::ConfigError> {
        let mut conn = Connection::new(role, config.proto, now())?;
        if let Some(counters) = &config.counters {
            conn.count_frames_into(counters.frames.clone());
        }
        let (ready_tx, ready_rx) = oneshot::channel();
        let (commands_tx, commands) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared::new());
        let vectored = io.is_write_vectored();
        let driver = Self {
            io,
            conn,
            role,
            commands,
            commands_tx: commands_tx.clone(),
            slots: Default::default(),
            tokens: HashMap::new(),
            write_buf: WriteBuf::new(vectored),
            recv_bufs: RecvBufs::default(),
            read_budget: READ_PER_POLL,
            read_closed: false,
            io_failed: false,
            sleep: Box::pin(tokio::time::sleep(Duration::from_secs(3600))),
            sleep_at: None,
            shared: shared.clone(),
            dispatch,
            grace: config.shutdown_grace,
            drain_deadline: None,
            linger_until: None,
            pings: Vec::new(),
            next_ping: 1,
            ready: Some(ready_tx),
            sending: Vec::new(),
            scratch: Vec::new(),
            preface_written: false,
            next_body: 0,
            counters: config.counters,
            shed: config.shed.clone(),
            connection_info: config.connection_info,
            stream_end: config.stream_end,
            aborted: false,
        };
        Ok((driver, commands_tx, shared, ready_rx))
    }

    /// Runs the driver on the current tokio runtime, inside `span`.
    pub(crate) fn spawn(self, span: tracing::Span) {
        tokio::spawn(self.instrument(span));
    }

    fn handle_command(&mut self, command: Command) {
        match command {
            Command::Request {
                request,
                body,
                token,
                tx,
            } => self.start_request(request, body, token, tx),
            Command::Cancel { token } => {
                if let Some(id) = self.tokens.remove(&token) {
                    if self.slots.remove(&id).is_some() {
                        let _ = self.conn.reset(id, ErrorCode::CANCEL);
                        self.request_finished();
                    }
                }
            }
            Command::Response { id, result } => self.start_response(id, result),
            Command::Release { id, len } => self.conn.release_capacity(id, len),
            Command::BodyDropped { id } => {
                let Some(slot) = self.slots.get_mut(&id) else {
                    return;
                };
                slot.recv_tx = None;
                slot.discard = true;
                match self.role {
                    // The client no longer wants the response.
                    Role::Client => {
                        let _ = self.conn.reset(id, ErrorCode::CANCEL);
                        self.remove_slot(id);
                    }
                    // A server that has answered completely asks the client to stop
                    // sending (RFC 9113 §8.1); otherwise it keeps answering.
                    Role::Server => {
                        if slot.send_done {
                            let _ = self.conn.reset(id, ErrorCode::NO_ERROR);
                            self.remove_slot(id);
                        }
                    }
                }
            }
            Command::Shutdown {
                debug_data,
                two_phase,
            } => self.start_shutdown(debug_data, two_phase),
            Command::Abort => {
                self.aborted = true;
                if let Ok(mut e) = self.shared.error.lock() {
                    e.get_or_insert_with(|| Error::new(Kind::ConnectionGone));
                }
            }
            Command::Ping { tx } => {
                let payload = self.next_ping.to_be_bytes();
                self.next_ping += 1;
                if self.conn.ping(payload).is_ok() {
                    self.pings.push((payload, tx));
                }
            }
        }
    }

    fn start_shutdown(&mut self, debug_data: bytes::Bytes, two_phase: bool) {
        if self.drain_deadline.is_none() {
            if two_phase {
                self.conn.graceful_shutdown_with(now(), debug_data);
            } else {
                self.conn.shutdown_now_with(now(), debug_data);
            }
            self.drain_deadline = Some(now() + self.grace);
            self.shared.set_draining();
        }
    }

    fn handle_event(&mut self, event: Event) {
        match event {
            Event::Request {
                id,
                request,
                end_stream,
            } => self.dispatch_request(id, request, end_stream),
            Event::Response {
                id,
                response,
                end_stream,
            } => {
                self.shared.carried_stream.store(true, Ordering::Release);
                let commands = self.commands_tx.clone();
                let Some(slot) = self.slots.get_mut(&id) else {
                    return;
                };
                let content_length = content_length(response.headers());
                let rx = if end_stream {
                    None
                } else {
                    let (tx, rx) = recv_channel();
                    slot.recv_tx = Some(tx);
                    Some(rx)
                };
                let (mut parts, ()) = response.into_parts();
                // The join key's address pair (the stream id is the body's).
                if let Some(info) = &self.connection_info {
                    parts.extensions.insert(info.clone());
                }
                let body = RecvBody::new(id, rx, commands, content_length);
                let delivered = slot
                    .response_tx
                    .take()
                    .is_some_and(|tx| tx.send(Ok(Response::from_parts(parts, body))).is_ok());
                if !delivered {
                    // The caller is gone: the dropped body above already asked for a
                    // reset; make sure the slot is gone.
                    slot.recv_tx = None;
                }
                self.maybe_finish_slot(id);
            }
            Event::Informational { id, response } => {
                self.shared.carried_stream.store(true, Ordering::Release);
                tracing::trace!(stream = %id, status = %response.status(), "interim response");
            }
            Event::Data {
                id,
                data,
                end_stream,
            } => {
                let len = data.len();
                let mut release = false;
                if let Some(slot) = self.slots.get_mut(&id) {
                    match &slot.recv_tx {
                        Some(tx) if !slot.discard => {
                            if tx.send(RecvItem::Data(data)).is_err() {
                                release = true;
                            }
                        }
                        _ => release = true,
                    }
                    if end_stream {
                        slot.recv_tx = None;
                    }
                } else {
                    release = true;
                }
                if release {
                    self.conn.release_capacity(id, len);
                }
                if end_stream {
                    self.maybe_finish_slot(id);
                }
            }
            Event::Trailers { id, trailers } => {
                if let Some(slot) = self.slots.get_mut(&id) {
                    if let Some(tx) = slot.recv_tx.take() {
                        let _ = tx.send(RecvItem::Trailers(Box::new(trailers)));
                    }
                }
                self.maybe_finish_slot(id);
            }
            Event::StreamError { id, error, fate } => {
                // The engine reports a GOAWAY or a dead connection to each stream
                // before its `GoAwayReceived`/`Closed` event: publish that state now,
                // or a caller woken by this error (on another worker) may pick this
                // connection again for its retry.
                self.publish_connection_state();
                let error = self.stream_error(error, fate, id);
                tracing::debug!(
                    stream = %id,
                    by = ?error.initiator(),
                    code = error.code().map(tracing::field::display),
                    fate = error.fate().map(tracing::field::debug),
                    %error,
                    "stream failed"
                );
                if let Some(mut slot) = self.slots.remove(&id) {
                    if let Some(end) = slot.end.take() {
                        end.set(&error);
                    }
                    self.tokens.remove(&slot.token);
                    shrink_if_sparse(&mut self.slots);
                    if let Some(tx) = slot.response_tx.take() {
                        let _ = tx.send(Err(error.clone()));
                    }
                    if let Some(tx) = slot.recv_tx.take() {
                        let _ = tx.send(RecvItem::Error(error));
                    }
                    if let Some(handler) = slot.handler.take() {
                        handler.abort();
                    }
                    self.request_finished();
                }
            }
            Event::PeerSettings(_) => {
                self.shared.established.store(true, Ordering::Release);
                if let Some(ready) = self.ready.take() {
                    let _ = ready.send(());
                    if self.role == Role::Client {
                        if let Some(counters) = &self.counters {
                            counters.opened();
                        }
                    }
                }
                self.shared
                    .peer_max_concurrent
                    .store(self.conn.peer_max_concurrent_streams(), Ordering::Release);
            }
            Event::StreamClosed {
                id,
                peer_ended_last,
            } => {
                // A normal end: both sides sent END_STREAM (a failure is `stream
                // failed`); `by` is the side whose END_STREAM came last.
                let by = if peer_ended_last {
                    Initiator::Remote
                } else {
                    Initiator::Application
                };
                tracing::debug!(stream = %id, end = "end_stream", ?by, "stream ended");
                self.remove_slot(id);
            }
            Event::SettingsAcked | Event::StreamsAvailable => {}
            Event::PingAck(payload) => {
                if let Some(pos) = self.pings.iter().position(|(p, _)| *p == payload) {
                    let (_, tx) = self.pings.swap_remove(pos);
                    let _ = tx.send(());
                }
            }
            Event::GoAwayReceived(goaway) => {
                tracing::debug!(%goaway, "GOAWAY received");
                if let Ok(mut g) = self.shared.goaway.lock() {
                    *g = Some(goaway);
                }
                // After the GOAWAY is readable: whoever wakes up reads it.
                self.shared.set_draining();
            }
            Event::Closed(error) => {
                self.shared.set_draining();
                self.shared.set_closed();
                if let Some(error) = error {
                    tracing::debug!(%error, "connection closed");
                    let io_error = self.io_error();
                    if let Ok(mut e) = self.shared.error.lock() {
                        // A failed read or write says more than "the transport closed".
                        *e = Some(io_error.unwrap_or_else(|| Error::proto(error, None, None)));
                    }
                }
            }
            // Events a newer engine may add need nothing here.
            _ => {}
        }
    }

    /// The error a failed stream reports. When the transport failed (a reset, not an
    /// orderly close), the I/O error is kept: "connection reset by peer" and "the
    /// peer closed the connection" are different diagnoses.
    fn stream_error(
        &self,
        error: steadfast_proto::Error,
        fate: Option<Fate>,
        id: StreamId,
    ) -> Error {
        if let steadfast_proto::Error::TransportClosed { after_goaway: None } = &error {
            if let Some(io_error) = self.io_error() {
                return io_error.for_stream(fate, id);
            }
        }
        Error::proto(error, fate, Some(id))
    }

    /// The I/O error that failed the transport, if one did.
    fn io_error(&self) -> Option<Error> {
        if !self.io_failed {
            return None;
        }
        let error = self.shared.error.lock().ok()?.clone()?;
        error.io_error_kind().is_some().then_some(error)
    }

    /// Forgets a stream once both directions are done (from the driver's view).
    fn maybe_finish_slot(&mut self, id: StreamId) {
        let done = self.slots.get(&id).is_some_and(|s| {
            s.send_done
                && s.send_body.is_none()
                && s.recv_tx.is_none()
                && s.response_tx.is_none()
                && s.handler.is_none()
        });
        if done && self.conn.stream_state(id).is_none() {
            self.remove_slot(id);
        }
    }

    fn remove_slot(&mut self, id: StreamId) {
        if let Some(slot) = self.slots.remove(&id) {
            self.tokens.remove(&slot.token);
            shrink_if_sparse(&mut self.slots);
            shrink_if_sparse(&mut self.tokens);
            if let Some(handler) = slot.handler {
                handler.abort();
            }
            self.request_finished();
        }
    }

    /// Publishes whether the connection still takes new requests, as the engine
    /// knows it now.
    fn publish_connection_state(&self) {
        if self.conn.goaway_received().is_some() {
            self.shared.set_draining();
        }
        if self.conn.is_closed() {
            self.shared.set_draining();
            self.shared.set_closed();
        }
    }

    /// A slot was removed: one request less in flight.
    fn request_finished(&self) {
        match self.role {
            Role::Client => {
                self.shared.in_flight.fetch_sub(1, Ordering::AcqRel);
            }
            Role::Server => {
                if let Some(shed) = &self.shed {
                    shed.in_flight.fetch_sub(1, Ordering::AcqRel);
                }
            }
        }
    }

    /// Logs the connection's end with its reason and counts it, once. A client
    /// connection that never completed its handshake was never counted as opened,
    /// nor is its end.
    fn count_close(&mut self) {
        let reason = self.close_reason();
        tracing::debug!(reason = %reason, "connection ended");
        let Some(counters) = self.counters.take() else {
            return;
        };
        if self.role == Role::Client && !self.shared.established.load(Ordering::Acquire) {
            return;
        }
        counters.closed(reason);
    }

    /// Why the connection ended, as far as the engine and the transport tell.
    fn close_reason(&self) -> CloseReason {
        use steadfast_proto::Error as E;
        if self.aborted {
            return CloseReason::Aborted;
        }
        let graceful = || {
            let debug = self
                .conn
                .goaway_sent()
                .or(self.conn.goaway_received())
                .map(|g| g.debug_data.as_ref());
            match debug {
                Some(b"max_age") => CloseReason::MaxAge,
                Some(b"max_idle") => CloseReason::MaxIdle,
                _ => CloseReason::Graceful,
            }
        };
        match self.conn.error() {
            // The engine finished cleanly (a failed last write changes nothing).
            None if self.conn.is_closed() => graceful(),
            _ if self.io_failed => CloseReason::IoError,
            None => CloseReason::PeerClosed,
            Some(E::GoAway {
                goaway, initiator, ..
            }) => match (*initiator, goaway.code == ErrorCode::NO_ERROR) {
                (Initiator::Remote, true) => graceful(),
                (Initiator::Remote, false) => CloseReason::PeerError,
                (_, true) => CloseReason::DrainTimeout,
                (_, false) => CloseReason::ProtocolError,
            },
            Some(E::KeepaliveTimeout { .. }) => CloseReason::KeepaliveTimeout,
            Some(E::TransportClosed { .. }) => CloseReason::PeerClosed,
            Some(_) => CloseReason::ProtocolError,
        }
    }

    fn fail_remaining(&mut self) {
        // From here on a request can no longer reach this driver: `send` fails at
        // once, which proves the request was never sent. Requests already queued are
        // answered below.
        self.commands.close();
        let error = self.shared.closed_error();
        let slots: Vec<(StreamId, Slot)> = self.slots.drain().collect();
        for (id, mut slot) in slots {
            self.request_finished();
            if let Some(tx) = slot.response_tx.take() {
                // Only the engine can prove that a request never left (its HEADERS
                // were never handed to the transport); anything else may have reached
                // the server.
                let fate = self.conn.fate(id).unwrap_or(Fate::MaybeProcessed);
                let _ = tx.send(Err(error.clone().with_fate_if_none(fate)));
            }
            if let Some(tx) = slot.recv_tx.take() {
                let _ = tx.send(RecvItem::Error(error.clone()));
            }
            if let Some(h) = slot.handler.take() {
                h.abort();
            }
        }
        for (_, tx) in self.pings.drain(..) {
            drop(tx);
        }
        while let Ok(command) = self.commands.try_recv() {
            if let Command::Request { tx, .. } = command {
                let _ = tx.send(Err(self.shared.not_sent_error()));
            }
        }
    }
}

impl<IO> Future for Driver<IO>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        this.read_budget = READ_PER_POLL;
        if !this.preface_written {
            // Our preface goes out before anything is read, so a transcript of the
            // connection (probe -v) shows it first, as the peer saw it.
            this.preface_written = true;
            this.write_buf.fill(&mut this.conn, now());
            this.poll_write(cx);
        }
        for _ in 0..TURNS_PER_POLL {
            let mut progress = false;
            while let Poll::Ready(Some(command)) = this.commands.poll_recv(cx) {
                this.handle_command(command);
                progress = true;
            }
            if this.aborted {
                // Dropping the driver drops the socket: no GOAWAY, like a crash.
                this.shared.set_closed();
                this.fail_remaining();
                this.count_close();
                return Poll::Ready(());
            }
            progress |= this.poll_read(cx);
            progress |= this.poll_bodies(cx);
            while let Some(event) = this.conn.poll_event() {
                this.handle_event(event);
                progress = true;
            }
            // While the socket does not take what is already waiting, leave the rest
            // in the engine: its queues are bounded per stream (SEND_BUFFER) and for
            // control frames (`max_pending_control_bytes`), this buffer is not.
            if this.write_buf.len() < WRITE_HIGH_WATER {
                this.write_buf.fill(&mut this.conn, now());
            } else {
                // Still tell the engine the time (early is harmless), so that clocks
                // which start at "the next call that knows the time" (idleness after
                // a stream ends) start even while nothing can be transmitted.
                this.conn.handle_timeout(now());
            }
            let wrote = this.poll_write(cx);
            progress |= wrote;
            if this.conn.is_closed() && (wrote || this.linger_until.is_none()) {
                // A peer that stopped reading cannot keep a finished connection (and
                // its write buffer) forever: it gets the grace period to take the rest.
                this.linger_until = Some(now() + this.grace);
            }
            progress |= this.poll_timer(cx);
            let gave_up = this.linger_until.is_some_and(|t| now() >= t);
            if gave_up {
                tracing::debug!("the peer took none of the last bytes within the grace period; dropping the connection");
                this.io_failed = true;
            }
            if gave_up || (this.conn.is_done() && (this.write_buf.is_empty() || this.io_failed)) {
                this.shared.set_closed();
                // The engine's last events carry each stream's fate: deliver them
                // before anything left is failed wholesale.
                while let Some(event) = this.conn.poll_event() {
                    this.handle_event(event);
                }
                this.fail_remaining();
                this.count_close();
                if !this.io_failed {
                    let _ = Pin::new(&mut this.io).poll_shutdown(cx);
                }
                return Poll::Ready(());
            }
            if !progress {
                return Poll::Pending;
            }
        }
        // Still busy: let other tasks run, then continue.
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

fn content_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Gives back a map's memory after a burst: once it holds under a quarter of its
/// capacity, it keeps room for twice what it holds. Amortized: it takes removing three
/// quarters of the entries between two shrinks.
fn shrink_if_sparse<K, V, S>(map: &mut HashMap<K, V, S>)
where
    K: Eq + std::hash::Hash,
    S: std::hash::BuildHasher,
{
    if map.capacity() > 64 && map.len() < map.capacity() / 4 {
        map.shrink_to(map.len() * 2);
    }
}
