//! The HTTP/2 server: accept loop on TCP or TLS, any `tower::Service`, and graceful
//! shutdown of the whole server.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Body;
use steadfast_proto::Role;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;
use tower_service::Service;
use tracing::Instrument;

use crate::body::{boxed, RecvBody};
use crate::conn_stats::{CloseReason, ConnCounters, ConnectionStats};
use crate::driver::{Command, Dispatch, Driver, DriverConfig, Shedding};
use crate::error::BoxError;
use crate::tls;

/// Settings for a server.
///
/// The defaults bound what a slow or hostile client can hold (see
/// [`steadfast_proto::Config::server`]):
///
/// | limit | default | when it trips |
/// |---|---|---|
/// | `proto.handshake_timeout` | 10 s | GOAWAY(SETTINGS_TIMEOUT, `handshake_timeout`) |
/// | `proto.settings_timeout` | 10 s | GOAWAY(SETTINGS_TIMEOUT) |
/// | `proto.max_connection_idle` | 5 min | GOAWAY(NO_ERROR, `max_idle`), graceful |
/// | `proto.stream_recv_timeout` | 60 s | RST_STREAM(CANCEL) on that stream |
/// | `proto.stream_send_timeout` | 60 s | RST_STREAM(CANCEL) on that stream |
/// | `proto.max_concurrent_streams` | 256 | RST_STREAM(REFUSED_STREAM) |
/// | `proto.max_header_list_size` | 64 KiB | 431 response; after `max_oversized_header_blocks` (4), or at once for an HPACK bomb, GOAWAY(ENHANCE_YOUR_CALM) |
/// | `proto.flood` | 1000 resets / PINGs / empty frames, 100 SETTINGS per 10 s | GOAWAY(ENHANCE_YOUR_CALM) |
/// | `shutdown_grace` | 30 s | also how long a finished connection waits for a client that takes none of its last bytes: then the TCP connection is dropped |
/// | `tls_handshake_timeout` | 10 s | the TCP connection is closed |
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ServerConfig {
    /// HTTP/2 settings and limits for each connection (including
    /// `max_concurrent_streams`, enforced with REFUSED_STREAM). Defaults to
    /// [`steadfast_proto::Config::server`]: start from it, not from
    /// `Config::default()`, to keep the server's timeouts.
    pub proto: steadfast_proto::Config,
    /// How long in-flight streams may take to finish once a graceful shutdown starts;
    /// then the connection is closed. Also how long a finished connection waits, with
    /// no write making progress, for the client to take its last bytes.
    pub shutdown_grace: Duration,
    /// The most connections served at once; further clients wait in the listen queue.
    pub max_connections: usize,
    /// TLS (with ALPN `h2`); `None` serves h2c with prior knowledge.
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// How long a client may take to complete the TLS handshake.
    pub tls_handshake_timeout: Duration,
    /// Load shedding: requests in the service on one connection, at most; more are
    /// refused with RST_STREAM(REFUSED_STREAM) before the service sees them, so
    /// clients retry them safely (elsewhere). Set it below `proto.max_concurrent_streams`.
    pub max_in_flight_per_connection: Option<usize>,
    /// Load shedding across the whole server.
    pub max_in_flight: Option<usize>,
    /// Put a [`StreamEnd`] in each request's extensions, which tells the service (a
    /// per-call log, say) why its stream failed: RST_STREAM received or sent (with
    /// the code), GOAWAY, or the connection lost. Off by default: it costs an
    /// allocation per request.
    pub stream_end: bool,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            proto: steadfast_proto::Config::server(),
            shutdown_grace: Duration::from_secs(30),
            max_connections: 10_000,
            tls: None,
            tls_handshake_timeout: Duration::from_secs(10),
            max_in_flight_per_connection: None,
            max_in_flight: None,
            stream_end: false,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Signal {
    Run,
    /// Drain: `two_phase` GOAWAY (or a single one), with this debug data.
    Graceful {
        two_phase: bool,
        debug_data: Bytes,
    },
    Abort,
}

/// Stops a running [`Server`] from anywhere. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ShutdownHandle {
    tx: Arc<watch::Sender<Signal>>,
}

impl ShutdownHandle {
    /// Stops accepting, sends the two-phase GOAWAY on every connection, lets in-flight
    /// requests finish within the grace period, then closes.
    pub fn graceful(&self) {
        self.drain(true, Bytes::new());
    }

    /// Like [`graceful`](Self::graceful), with debug data in the GOAWAY frames (e.g.
    /// `restart`).
    pub fn graceful_with(&self, debug_data: Bytes) {
        self.drain(true, debug_data);
    }

    /// Stops accepting and drains every connection with a single GOAWAY carrying the
    /// real last-stream-id, at once — what servers without the two-phase dance do.
    /// Requests crossing the GOAWAY on the wire are refused; the client may retry
    /// them elsewhere, safely.
    pub fn graceful_now(&self, debug_data: Bytes) {
        self.drain(false, debug_data);
    }

    fn drain(&self, two_phase: bool, debug_data: Bytes) {
        self.tx.send_if_modified(|s| {
            let change = *s == Signal::Run;
            if change {
                *s = Signal::Graceful {
                    two_phase,
                    debug_data,
                };
            }
            change
        });
    }

    /// Stops accepting and drops every connection at once, without GOAWAY, as a crash
    /// would: requests in flight are lost (their clients see `MaybeProcessed`).
    pub fn abort(&self) {
        let _ = self.tx.send(Signal::Abort);
    }
}

/// An HTTP/2 server.
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    signal: Arc<watch::Sender<Signal>>,
    shed: Arc<Shedding>,
    connections: Arc<ConnCounters>,
}

/// Counters of a [`Server`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ServerStats {
    /// Requests handed to the service.
    pub accepted: u64,
    /// Requests refused with REFUSED_STREAM by load shedding.
    pub refused: u64,
    /// Requests in the service now.
    pub in_flight: usize,
    /// Connections accepted and closed (by reason), RST_STREAM and GOAWAY frames
    /// sent and received (by code).
    pub connections: ConnectionStats,
}

/// Reads a [`Server`]'s counters from anywhere.
#[derive(Clone, Debug)]
pub struct StatsHandle(Arc<Shedding>, Arc<ConnCounters>);

impl StatsHandle {
    /// The counters now.
    pub fn get(&self) -> ServerStats {
        ServerStats {
            accepted: self.0.accepted.load(Ordering::Relaxed),
            refused: self.0.refused.load(Ordering::Relaxed),
            in_flight: self.0.in_flight.load(Ordering::Relaxed),
            connections: self.1.get(),
        }
    }
}

impl Server {
    /// A server with these settings.
    pub fn new(config: ServerConfig) -> Self {
        let (tx, _) = watch::channel(Signal::Run);
        let shed = Arc::new(Shedding {
            per_connection: config.max_in_flight_per_connection,
            per_server: config.max_in_flight,
            ..Shedding::default()
        });
        Self {
            config,
            signal: Arc::new(tx),
            shed,
            connections: Arc::default(),
        }
    }

    /// A handle to read the server's counters.
    pub fn stats_handle(&self) -> StatsHandle {
        StatsHandle(self.shed.clone(), self.connections.clone())
    }

    /// A handle that can shut the server down.
    pub fn shutdown_handle(&self) -> ShutdownHandle {
        ShutdownHandle {
            tx: self.signal.clone(),
        }
    }

    /// Serves `service` on every connection accepted from `listener`, until shut
    /// down through a [`ShutdownHandle`]; returns once every connection is closed.
    pub async fn serve<S, B>(self, listener: TcpListener, service: S) -> std::io::Result<()>
    where
        S: Service<Request<RecvBody>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        self.serve_with(listener, service).await
    }

    /// Like [`serve`](Self::serve), on the connections of any [`Listener`] (a Unix
    /// socket, connections handed over by another task, a test's in-memory pipes).
    pub async fn serve_with<L, S, B>(self, mut listener: L, service: S) -> std::io::Result<()>
    where
        L: Listener,
        S: Service<Request<RecvBody>, Response = Response<B>> + Clone + Send + 'static,
        S::Future: Send + 'static,
        S::Error: Into<BoxError>,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        // A value no client could live with fails here, before anything is accepted.
        self.config
            .proto
            .validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let mut signal = self.signal.subscribe();
        let limit = Arc::new(Semaphore::new(self.config.max_connections.max(1)));
        let acceptor = self.config.tls.clone().map(TlsAcceptor::from);
        let connections: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Command>>>> = Arc::default();
        let next_id = AtomicU64::new(0);
        let mut tasks = JoinSet::new();
        let local = listener.local_addr();
        tracing::info!(addr = ?local, tls = acceptor.is_some(), "serving HTTP/2");
        loop {
            let permit = tokio::select! {
                permit = limit.clone().acquire_owned() => permit.map_err(std::io::Error::other)?,
                _ = signal.changed() => break,
            };
            let (tcp, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(Some(a)) => a,
                    // No more connections will come: drain the ones there are.
                    Ok(None) => break,
                    Err(e) => {
                        // Per-connection accept errors (e.g. EMFILE, ECONNABORTED) must
                        // not stop the server.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                },
                _ = signal.changed() => break,
            };
            let id = next_id.fetch_add(1, Ordering::Relaxed);
            self.connections.opened();
            let config = self.config.clone();
            let acceptor = acceptor.clone();
            let dispatch = make_dispatch(service.clone());
            let connections = connections.clone();
            // The connection's span: its records carry the client's and the server's
            // address:port, half of the join key (the stream id is the other half).
            let span = tracing::debug_span!(
                "h2",
                role = "server",
                conn = id,
                peer = peer.map(tracing::field::display),
                local = local.map(tracing::field::display),
                tls = acceptor.is_some(),
                alpn = tracing::field::Empty,
            );
            let signal_now = signal.clone();
            let shed = self.shed.clone();
            let counters = self.connections.clone();
            tasks.spawn(
                async move {
                    serve_connection(
                        tcp,
                        (peer, local),
                        id,
                        config,
                        (shed, counters),
                        acceptor,
                        dispatch,
                        connections,
                        signal_now,
                    )
                    .await;
                    drop(permit);
                }
                .instrument(span),
            );
            // Reap finished connection tasks so the set does not grow.
            while tasks.try_join_next().is_some() {}
        }
        drop(listener);
        let signal_now = signal.borrow().clone();
        let senders: Vec<_> = connections
            .lock()
            .map(|c| c.values().cloned().collect())
            .unwrap_or_default();
        tracing::info!(
            connections = senders.len(),
            graceful = signal_now != Signal::Abort,
            "shutting down"
        );
        for tx in senders {
            let _ = tx.send(signal_command(&signal_now));
        }
        while tasks.join_next().await.is_some() {}
        Ok(())
    }
}

#[allow(clippy::too_many_arguments)]
async fn serve_connection<IO>(
    tcp: IO,
    (peer, local): (Option<SocketAddr>, Option<SocketAddr>),
    id: u64,
    config: ServerConfig,
    (shed, counters): (Arc<Shedding>, Arc<ConnCounters>),
    acceptor: Option<TlsAcceptor>,
    dispatch: Dispatch,
    connections: Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Command>>>>,
    signal: watch::Receiver<Signal>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut proto = config.proto.clone();
    if let Some(age) = proto.max_connection_age {
        // gRFC A9: ±10% per connection, so connections opened together do not all
        // drain together.
        let mut rng = crate::client::SplitMix64(crate::client::SplitMix64::seed() ^ id);
        proto.max_connection_age = Some(age.mul_f64(0.9 + 0.2 * rng.next_f64()));
    }
    let mut driver_config = DriverConfig {
        proto,
        shutdown_grace: config.shutdown_grace,
        shed: Some(shed),
        connection_info: None,
        stream_end: config.stream_end,
        counters: Some(counters.clone()),
    };
    let run = |commands: mpsc::UnboundedSender<Command>| {
        if let Ok(mut c) = connections.lock() {
            c.insert(id, commands.clone());
        }
        // A shutdown that began while this connection was being set up.
        let now = signal.borrow().clone();
        if now != Signal::Run {
            let _ = commands.send(signal_command(&now));
        }
    };
    match acceptor {
        Some(acceptor) => {
            let handshake =
                tokio::time::timeout(config.tls_handshake_timeout, tls::accept(&acceptor, tcp))
                    .await;
            let stream = match handshake {
                Ok(Ok(s)) => s,
                Ok(Err(why)) => {
                    tracing::debug!(?peer, %why, "TLS handshake failed");
                    counters.closed(CloseReason::TlsError);
                    return;
                }
                Err(_) => {
                    tracing::debug!(?peer, "TLS handshake timed out");
                    counters.closed(CloseReason::TlsError);
                    return;
                }
            };
            let session = stream.get_ref().1;
            if let Some(alpn) = session.alpn_protocol() {
                tracing::Span::current().record("alpn", String::from_utf8_lossy(alpn).as_ref());
            }
            let tls = TlsInfo {
                peer_certificates: session
                    .peer_certificates()
                    .map(|c| c.to_vec())
                    .unwrap_or_default(),
                server_name: session.server_name().map(str::to_owned),
            };
            driver_config.connection_info = Some(ConnectionInfo::new(peer, local, Some(tls)));
            // `serve` checked the configuration before accepting anything.
            let Ok((driver, commands, _, _)) =
                Driver::new(stream, Role::Server, driver_config, Some(dispatch))
            else {
                counters.closed(CloseReason::ProtocolError);
                return;
            };
            run(commands);
            driver.await;
        }
        None => {
            driver_config.connection_info = Some(ConnectionInfo::new(peer, local, None));
            // `serve` checked the configuration before accepting anything.
            let Ok((driver, commands, _, _)) =
                Driver::new(tcp, Role::Server, driver_config, Some(dispatch))
            else {
                counters.closed(CloseReason::ProtocolError);
                return;
            };
            run(commands);
            driver.await;
        }
    }
    if let Ok(mut c) = connections.lock() {
        c.remove(&id);
    }
    tracing::debug!(?peer, "connection closed");
}

/// A source of connections for [`Server::serve_with`].
pub trait Listener: Send + 'static {
    /// The transport of one connection.
    type Io: AsyncRead + AsyncWrite + Unpin + Send + 'static;

    /// The next connection, with the peer's address if it has one; `None` when no
    /// more will come (the server then shuts down gracefully, as if told to). An
    /// error is logged and the server goes on accepting (after 10 ms, so a
    /// persistent one such as EMFILE does not spin).
    #[allow(clippy::type_complexity)]
    fn accept(
        &mut self,
    ) -> impl Future<Output = std::io::Result<Option<(Self::Io, Option<SocketAddr>)>>> + Send;

    /// The address connections arrive at, if there is one.
    fn local_addr(&self) -> Option<SocketAddr>;
}

impl Listener for TcpListener {
    type Io = tokio::net::TcpStream;

    async fn accept(&mut self) -> std::io::Result<Option<(Self::Io, Option<SocketAddr>)>> {
        let (tcp, peer) = TcpListener::accept(self).await?;
        // Small frames (HEADERS, WINDOW_UPDATE, PING ACKs) must not wait for Nagle.
        let _ = tcp.set_nodelay(true);
        Ok(Some((tcp, Some(peer))))
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        TcpListener::local_addr(self).ok()
    }
}

/// An error a service (or its response body) returns to have the server reset the
/// stream with this code instead of INTERNAL_ERROR (a body's error otherwise resets
/// with CANCEL). A proxy uses it to refuse a request none of its backends processed
/// (`REFUSED_STREAM`, which the client may safely retry elsewhere) and to pass on a
/// backend's reset.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ResetStream(pub steadfast_proto::ErrorCode);

impl std::fmt::Display for ResetStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "reset the stream with {}", self.0)
    }
}

impl std::error::Error for ResetStream {}

/// The reset code a service's error asks for ([`ResetStream`]), else `default`.
pub(crate) fn reset_code(
    error: &BoxError,
    default: steadfast_proto::ErrorCode,
) -> steadfast_proto::ErrorCode {
    error.downcast_ref::<ResetStream>().map_or(default, |r| r.0)
}

/// Why a request's stream failed, once it has (with [`ServerConfig::stream_end`], in
/// the extensions of every request): `None` while it runs and if it ended normally.
/// The driver sets it before it drops the service's future or response body, so a
/// guard dropped with them reads it.
#[derive(Clone, Debug, Default)]
pub struct StreamEnd(Arc<std::sync::OnceLock<crate::Error>>);

impl StreamEnd {
    /// The stream's failure: [`Error::initiator`](crate::Error::initiator) says who
    /// ended it, [`Error::code`](crate::Error::code) with which code.
    pub fn error(&self) -> Option<&crate::Error> {
        self.0.get()
    }

    pub(crate) fn set(&self, error: &crate::Error) {
        let _ = self.0.set(error.clone());
    }
}

/// What the server knows of the connection a request arrived on: in the extensions
/// of every request it hands to the service (`request.extensions().get::<ConnectionInfo>()`),
/// beside the request's [`StreamId`](crate::StreamId)
/// (`request.extensions().get::<steadfast::StreamId>()`): together they are the join key
/// (client address:port, server address:port, stream id) that matches a server's record
/// of a call with the client's. A [`Client`](crate::Client)'s and a
/// [`connect`](crate::connect)ed connection's responses carry it too (TCP only), with
/// the addresses the other way round.
#[derive(Clone, Debug)]
pub struct ConnectionInfo(Arc<ConnectionInfoInner>);

#[derive(Debug)]
struct ConnectionInfoInner {
    remote_addr: Option<SocketAddr>,
    local_addr: Option<SocketAddr>,
    tls: Option<TlsInfo>,
}

#[derive(Debug)]
struct TlsInfo {
    peer_certificates: Vec<rustls::pki_types::CertificateDer<'static>>,
    server_name: Option<String>,
}

impl ConnectionInfo {
    fn new(
        remote_addr: Option<SocketAddr>,
        local_addr: Option<SocketAddr>,
        tls: Option<TlsInfo>,
    ) -> Self {
        Self(Arc::new(ConnectionInfoInner {
            remote_addr,
            local_addr,
            tls,
        }))
    }

    /// A client connection's: `local` is the client's address, `peer` the server's.
    pub(crate) fn client(peer: SocketAddr, local: SocketAddr) -> Self {
        Self::new(Some(peer), Some(local), None)
    }

    /// The peer's address: on a server, the client's; on a client's response, the
    /// server's (`None` for transports without one).
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.0.remote_addr
    }

    /// This end's address: on a server, the one the client connected to; on a
    /// client's response, the client's own.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.0.local_addr
    }

    /// True when the connection is TLS.
    pub fn is_tls(&self) -> bool {
        self.0.tls.is_some()
    }

    /// The certificate chain the client presented (mutual TLS), leaf first; empty
    /// without TLS or when the client presented none.
    pub fn peer_certificates(&self) -> &[rustls::pki_types::CertificateDer<'static>] {
        self.0
            .tls
            .as_ref()
            .map_or(&[], |t| t.peer_certificates.as_slice())
    }

    /// The server name the client asked for (TLS SNI), if any.
    pub fn server_name(&self) -> Option<&str> {
        self.0.tls.as_ref().and_then(|t| t.server_name.as_deref())
    }
}

fn signal_command(signal: &Signal) -> Command {
    match signal {
        Signal::Abort => Command::Abort,
        Signal::Graceful {
            two_phase,
            debug_data,
        } => Command::Shutdown {
            debug_data: debug_data.clone(),
            two_phase: *two_phase,
        },
        Signal::Run => Command::Shutdown {
            debug_data: Bytes::new(),
            two_phase: true,
        },
    }
}

fn make_dispatch<S, B>(service: S) -> Dispatch
where
    S: Service<Request<RecvBody>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    Box::new(move |request| {
        let mut service = service.clone();
        Box::pin(async move {
            poll_fn(|cx| service.poll_ready(cx))
                .await
                .map_err(Into::into)?;
            let response = service.call(request).await.map_err(Into::into)?;
            Ok(response.map(boxed))
        })
    })
}

/// Binds a listener with `SO_REUSEPORT`, so that a new server can take over the port
/// while the old one drains: start the new server on the same address, then shut the
/// old one down gracefully — no connection is refused in between.
pub fn bind_reuseport(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    #[cfg(unix)]
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

/// Makes a [`Service`] from an async function, without pulling in `tower`.
pub fn service_fn<F, Fut, B, E>(f: F) -> ServiceFn<F>
where
    F: FnMut(Request<RecvBody>) -> Fut,
    Fut: Future<Output = Result<Response<B>, E>>,
{
    ServiceFn(f)
}

/// A [`Service`] made by [`service_fn`].
#[derive(Clone, Copy, Debug)]
pub struct ServiceFn<F>(F);

impl<F, Fut, B, E> Service<Request<RecvBody>> for ServiceFn<F>
where
    F: FnMut(Request<RecvBody>) -> Fut,
    Fut: Future<Output = Result<Response<B>, E>>,
{
    type Response = Response<B>;
    type Error = E;
    type Future = Fut;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), E>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<RecvBody>) -> Fut {
        (self.0)(request)
    }
}
