//! The HTTP/2 client: one connection, over TCP (h2c with prior knowledge) or TLS.

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tracing::Instrument;

use bytes::Bytes;
use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri};
use http_body::Body;
use steadfast_proto::{Fate, Role};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};

use crate::body::{boxed, RecvBody};
use crate::driver::{Command, Driver, DriverConfig, Shared};
use crate::error::{BoxError, ConnectStep, Error, Kind};
use crate::tls;

/// Settings for a client connection.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ClientConfig {
    /// HTTP/2 settings and limits.
    pub proto: steadfast_proto::Config,
    /// Give up each step of connecting (name resolution, TCP, TLS, the HTTP/2
    /// handshake) after this long; zero means no limit. The gRPC connection-backoff
    /// spec's minimum connect timeout, 20 s, is the default.
    pub connect_timeout: Duration,
    /// TLS settings for `https` targets; `None` uses the Web PKI roots.
    pub tls: Option<Arc<rustls::ClientConfig>>,
    /// (A [`Client`](super::Client)'s connections) where frames and ends are counted.
    pub(crate) counters: Option<Arc<crate::conn_stats::ConnCounters>>,
    /// Wraps each new connection's transport (after TLS, before HTTP/2): a tap that
    /// decodes or records the frames, for diagnosis tools. `None`: the transport
    /// as it is.
    pub wrap_transport: Option<WrapTransport>,
}

/// A function that wraps a connection's transport (see
/// [`ClientConfig::wrap_transport`]).
#[derive(Clone)]
pub struct WrapTransport(pub Arc<dyn Fn(BoxIo) -> BoxIo + Send + Sync>);

impl fmt::Debug for WrapTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("WrapTransport")
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        Self {
            proto: steadfast_proto::Config::default(),
            connect_timeout: Duration::from_secs(20),
            tls: None,
            counters: None,
            wrap_transport: None,
        }
    }
}

/// A handle to send requests on one HTTP/2 connection. Cheap to clone; the connection
/// closes gracefully when the last handle is dropped and its requests are done.
#[derive(Clone, Debug)]
pub struct SendRequest {
    inner: Arc<HandleInner>,
}

#[derive(Debug)]
struct HandleInner {
    commands: mpsc::UnboundedSender<Command>,
    shared: Arc<Shared>,
    next_token: AtomicU64,
    scheme: Scheme,
    authority: Option<Authority>,
    /// The connection's address pair, noted on the errors of its requests.
    info: Option<crate::ConnectionInfo>,
}

impl Drop for HandleInner {
    fn drop(&mut self) {
        let _ = self.commands.send(Command::Shutdown {
            debug_data: Bytes::new(),
            two_phase: true,
        });
    }
}

/// A transport a client connection can run over.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send + 'static {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + 'static> Io for T {}

/// A boxed transport (TCP, or TLS over TCP).
pub type BoxIo = Box<dyn Io>;

/// Connects to `uri` (`http://` for h2c with prior knowledge, `https://` for TLS with
/// ALPN `h2`) and completes the TCP, TLS and HTTP/2 handshakes: when it returns, the
/// server's SETTINGS (its concurrency limit above all) are known, so requests never
/// overrun the limit, and a server that does not speak HTTP/2 as expected is reported
/// here, in words. Every error says which step failed and carries fate `NotSent`: no
/// request was sent.
pub async fn connect(uri: &Uri, config: &ClientConfig) -> Result<SendRequest, Error> {
    connect_to(uri, None, config).instrument(tcp_span()).await
}

/// [`connect_transport_to`] then [`handshake_for`], keeping the TCP connection's
/// address pair: every response on the connection carries it
/// ([`ConnectionInfo`](crate::ConnectionInfo) in its extensions).
pub(crate) async fn connect_to(
    uri: &Uri,
    addr: Option<std::net::SocketAddr>,
    config: &ClientConfig,
) -> Result<SendRequest, Error> {
    let (io, addrs) = transport(uri, addr, config)
        .await
        .map_err(|e| e.with_fate_if_none(Fate::NotSent))?;
    let io = match &config.wrap_transport {
        Some(wrap) => (wrap.0)(io),
        None => io,
    };
    let (_, _, _, target) = target(uri).map_err(|e| e.with_fate_if_none(Fate::NotSent))?;
    let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTP);
    let span = tracing::debug_span!("h2", role = "client", peer = %target);
    let info = addrs.map(|(local, peer)| crate::ConnectionInfo::client(peer, local));
    let (handle, ready) = start(io, scheme, uri.authority().cloned(), config, span, info)?;
    wait_ready(handle, ready, config.connect_timeout, &target).await
}

/// The span around a client connection's `h2` span: the transport records the local
/// address in it once TCP connects, so the client's records of the connection carry
/// both halves of the join key (`local` here, `peer` in `h2`).
pub(crate) fn tcp_span() -> tracing::Span {
    tracing::debug_span!("tcp", local = tracing::field::Empty)
}

/// The TCP and (for `https`) TLS part of [`connect`]: returns the transport, with
/// ALPN `h2` checked.
pub async fn connect_transport(uri: &Uri, config: &ClientConfig) -> Result<BoxIo, Error> {
    connect_transport_to(uri, None, config).await
}

/// Like [`connect_transport`], to a given address (already resolved) rather than the
/// URI's host; TLS still verifies the URI's host name.
pub async fn connect_transport_to(
    uri: &Uri,
    addr: Option<std::net::SocketAddr>,
    config: &ClientConfig,
) -> Result<BoxIo, Error> {
    let io = transport(uri, addr, config)
        .await
        .map(|(io, _)| io)
        .map_err(|e| e.with_fate_if_none(Fate::NotSent))?;
    Ok(match &config.wrap_transport {
        Some(wrap) => (wrap.0)(io),
        None => io,
    })
}

/// The (local, peer) addresses of a TCP connection.
type AddressPair = (std::net::SocketAddr, std::net::SocketAddr);

async fn transport(
    uri: &Uri,
    addr: Option<std::net::SocketAddr>,
    config: &ClientConfig,
) -> Result<(BoxIo, Option<AddressPair>), Error> {
    let (tls, host, port, target) = target(uri)?;
    let timeout = config.connect_timeout;
    let addrs = match addr {
        Some(addr) => vec![addr],
        None => {
            // Resolved here rather than inside TcpStream::connect, so a name that does
            // not resolve is reported as what it is, not as a refused connection.
            let resolving = tokio::net::lookup_host((host.as_str(), port));
            match within(timeout, resolving).await {
                None => {
                    return Err(Error::new(Kind::Timeout(ConnectStep::Resolve))
                        .context(format!("resolving {host}")))
                }
                Some(Err(source)) => {
                    let host = host.clone();
                    return Err(Error::new(Kind::Resolve { host, source }));
                }
                Some(Ok(addrs)) => addrs.collect(),
            }
        }
    };
    let target = addr.map_or(target, |a| a.to_string());
    let connecting = async {
        let mut last = std::io::Error::other("the name resolved to no address");
        for addr in &addrs {
            match TcpStream::connect(addr).await {
                Ok(tcp) => return Ok(tcp),
                Err(e) => last = e,
            }
        }
        Err(last)
    };
    let tcp = within(timeout, connecting)
        .await
        .ok_or_else(|| {
            Error::new(Kind::Timeout(ConnectStep::Tcp)).context(format!("connecting to {target}"))
        })?
        .map_err(|e| Error::new(Kind::Connect(e)).context(format!("connecting to {target}")))?;
    let _ = tcp.set_nodelay(true);
    // The client's half of the join key: the server's records carry the same pair.
    if let Ok(local) = tcp.local_addr() {
        tracing::Span::current().record("local", tracing::field::display(local));
    }
    let addrs = tcp.local_addr().ok().zip(tcp.peer_addr().ok());
    tracing::debug!(
        local = ?tcp.local_addr().ok(),
        peer = ?tcp.peer_addr().ok(),
        "TCP connected"
    );
    if !tls {
        return Ok((Box::new(tcp), addrs));
    }
    let tls_config = match &config.tls {
        Some(c) => c.clone(),
        None => tls::client_config(tls::Roots::WebPki).map_err(|message| {
            Error::new(Kind::Tls {
                message,
                mismatch: false,
            })
        })?,
    };
    let stream = within(timeout, tls::connect(tls_config, &host, tcp))
        .await
        .ok_or_else(|| {
            Error::new(Kind::Timeout(ConnectStep::Tls))
                .context(format!("TLS handshake with {target}"))
        })?
        .map_err(|e| e.context(format!("TLS handshake with {target}")))?;
    Ok((Box::new(stream), addrs))
}

/// Runs `f` within `timeout`; a zero timeout means no limit.
async fn within<F: Future>(timeout: Duration, f: F) -> Option<F::Output> {
    if timeout.is_zero() {
        return Some(f.await);
    }
    tokio::time::timeout(timeout, f).await.ok()
}

/// Starts an HTTP/2 client connection to `uri` over an established transport and
/// waits for the server's SETTINGS (up to the connect timeout). Requests without a
/// scheme or authority get `uri`'s.
pub async fn handshake_for<IO: Io>(
    io: IO,
    uri: &Uri,
    config: &ClientConfig,
) -> Result<SendRequest, Error> {
    let (_, _, _, target) = target(uri).map_err(|e| e.with_fate_if_none(Fate::NotSent))?;
    let scheme = uri.scheme().cloned().unwrap_or(Scheme::HTTP);
    let span = tracing::debug_span!("h2", role = "client", peer = %target);
    let (handle, ready) = start(io, scheme, uri.authority().cloned(), config, span, None)?;
    wait_ready(handle, ready, config.connect_timeout, &target).await
}

/// (tls, host, port, "host:port") of a target URI.
fn target(uri: &Uri) -> Result<(bool, String, u16, String), Error> {
    let tls = uri.scheme() == Some(&Scheme::HTTPS);
    let authority = uri
        .authority()
        .ok_or_else(|| Error::new(Kind::Connect(std::io::Error::other("the URI has no host"))))?;
    let port = authority.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    Ok((tls, host, port, format!("{}:{port}", authority.host())))
}

async fn wait_ready(
    handle: SendRequest,
    ready: oneshot::Receiver<()>,
    timeout: Duration,
    target: &str,
) -> Result<SendRequest, Error> {
    let result = match within(timeout, ready).await {
        Some(Ok(())) => Ok(handle),
        Some(Err(_)) => {
            let error = handle.inner.shared.closed_error();
            let hint = if error.code().is_some() || error.io_error_kind().is_some() {
                String::new()
            } else {
                " (the server closed the connection before sending HTTP/2 SETTINGS: \
                 does it expect TLS, or not speak HTTP/2 on this port?)"
                    .to_owned()
            };
            Err(error.context(format!("HTTP/2 handshake with {target}{hint}")))
        }
        None => Err(Error::new(Kind::Timeout(ConnectStep::Http2))
            .context(format!("HTTP/2 handshake with {target}"))),
    };
    // No request was sent on a connection that never became ready.
    result.map_err(|e| e.with_fate_if_none(Fate::NotSent))
}

/// Starts an HTTP/2 client connection over an established transport and waits for
/// the server's SETTINGS (up to the connect timeout).
pub async fn handshake<IO: Io>(io: IO, config: &ClientConfig) -> Result<SendRequest, Error> {
    let (handle, ready) = start(
        io,
        Scheme::HTTP,
        None,
        config,
        tracing::debug_span!("h2", role = "client"),
        None,
    )?;
    wait_ready(handle, ready, config.connect_timeout, "peer").await
}

fn start<IO>(
    io: IO,
    scheme: Scheme,
    authority: Option<Authority>,
    config: &ClientConfig,
    span: tracing::Span,
    info: Option<crate::ConnectionInfo>,
) -> Result<(SendRequest, oneshot::Receiver<()>), Error>
where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let driver_config = DriverConfig {
        proto: config.proto.clone(),
        shutdown_grace: Duration::from_secs(3600),
        shed: None,
        connection_info: info.clone(),
        stream_end: false,
        counters: config.counters.clone(),
    };
    let (driver, commands, shared, ready) = Driver::new(io, Role::Client, driver_config, None)
        .map_err(|e| Error::with_fate(Kind::Config(e), Some(Fate::NotSent), None))?;
    driver.spawn(span);
    let handle = SendRequest {
        inner: Arc::new(HandleInner {
            commands,
            shared,
            next_token: AtomicU64::new(1),
            scheme,
            authority,
            info,
        }),
    };
    Ok((handle, ready))
}

impl SendRequest {
    /// Sends a request and waits for the response head. A request without a scheme
    /// or authority gets the connection's.
    ///
    /// When more requests are in flight than the server's
    /// SETTINGS_MAX_CONCURRENT_STREAMS allows, this one waits for a free slot rather
    /// than failing. Dropping the future cancels the request (RST_STREAM CANCEL if it
    /// was sent). Every error carries the request's [`Fate`].
    pub fn send<B>(
        &self,
        request: Request<B>,
    ) -> impl Future<Output = Result<Response<RecvBody>, Error>> + Send + 'static
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        let mut head = Request::from_parts(parts, ());
        self.fill_uri(&mut head);
        let token = self.inner.next_token.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        let sent = self.inner.commands.send(Command::Request {
            request: head,
            body: boxed(body),
            token,
            tx,
        });
        let guard = CancelGuard {
            commands: self.inner.commands.clone(),
            token,
            armed: sent.is_ok(),
        };
        let shared = self.inner.shared.clone();
        let info = self.inner.info.clone();
        async move {
            let mut guard = guard;
            if !guard.armed {
                return Err(shared.not_sent_error().on_connection(info.as_ref()));
            }
            let result = rx.await;
            guard.armed = false;
            match result {
                Ok(result) => result.map_err(|e| e.on_connection(info.as_ref())),
                // The driver ended without answering (its task panicked or its
                // runtime shut down) after it accepted the request: nothing proves
                // the request was not written, so it may have been processed.
                Err(_) => Err(driver_lost(&shared).on_connection(info.as_ref())),
            }
        }
    }

    fn fill_uri(&self, head: &mut Request<()>) {
        let uri = head.uri();
        if uri.scheme().is_some() && uri.authority().is_some() {
            return;
        }
        let mut parts = uri.clone().into_parts();
        if parts.scheme.is_none() {
            parts.scheme = Some(self.inner.scheme.clone());
        }
        if parts.authority.is_none() {
            parts.authority = self.inner.authority.clone();
        }
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        if let Ok(uri) = Uri::from_parts(parts) {
            *head.uri_mut() = uri;
        }
    }

    /// True once the connection can take no more requests (closed or going away).
    pub fn is_closed(&self) -> bool {
        self.inner.shared.closed.load(Ordering::Acquire)
    }

    /// True once a GOAWAY was sent or received: requests in flight finish, new ones
    /// belong on another connection.
    pub fn is_draining(&self) -> bool {
        self.inner.shared.draining.load(Ordering::Acquire)
    }

    /// True once the server answered a request on this connection (a response head
    /// arrived). A connection that ends before that did no work: the pool counts it
    /// as a failed connection attempt for its reconnect backoff.
    pub fn has_carried_stream(&self) -> bool {
        self.inner.shared.carried_stream.load(Ordering::Acquire)
    }

    /// True once the server's SETTINGS arrived.
    pub fn is_established(&self) -> bool {
        self.inner.shared.established.load(Ordering::Acquire)
    }

    /// Requests accepted and not yet finished.
    pub fn in_flight(&self) -> usize {
        self.inner.shared.in_flight.load(Ordering::Acquire)
    }

    /// The server's SETTINGS_MAX_CONCURRENT_STREAMS (unlimited until known).
    pub fn peer_max_concurrent_streams(&self) -> u32 {
        self.inner
            .shared
            .peer_max_concurrent
            .load(Ordering::Acquire)
    }

    /// The GOAWAY the server sent, if any.
    pub fn goaway(&self) -> Option<steadfast_proto::GoAway> {
        self.inner.shared.goaway()
    }

    /// Sends a PING and waits for its acknowledgement; returns the round-trip time.
    pub async fn ping(&self) -> Result<Duration, Error> {
        let (tx, rx) = oneshot::channel();
        let start = tokio::time::Instant::now();
        self.inner
            .commands
            .send(Command::Ping { tx })
            .map_err(|_| self.inner.shared.closed_error())?;
        rx.await.map_err(|_| self.inner.shared.closed_error())?;
        Ok(start.elapsed())
    }

    /// Starts a graceful close: no new requests; those in flight finish.
    pub fn close(&self) {
        let _ = self.inner.commands.send(Command::Shutdown {
            debug_data: Bytes::new(),
            two_phase: true,
        });
    }

    /// Resolves once the connection takes no new requests: a GOAWAY was sent or
    /// received, or it closed. (A pool's subchannel waits on it to reconnect.)
    pub async fn until_draining(&self) {
        let shared = &self.inner.shared;
        loop {
            let notified = shared.state_changed.notified();
            tokio::pin!(notified);
            // Registered before the check, so a change in between is not missed.
            notified.as_mut().enable();
            if self.is_draining() || self.is_closed() {
                return;
            }
            notified.await;
        }
    }

    /// Why the connection ended, as an error (`None` while it takes requests): the
    /// server's GOAWAY, the transport's failure, or a local shutdown.
    pub fn end_reason(&self) -> Option<Error> {
        if !(self.is_draining() || self.is_closed()) {
            return None;
        }
        Some(self.inner.shared.not_sent_error())
    }

    /// True when both handles drive the same connection.
    pub fn same_connection(&self, other: &SendRequest) -> bool {
        Arc::ptr_eq(&self.inner, &other.inner)
    }
}

/// `SendRequest` as a `tower::Service`: always ready (a connection that can take no
/// more requests fails them from `call`, with fate `NotSent`, so the caller may send
/// them elsewhere); `call` is [`SendRequest::send`].
impl<B> tower_service::Service<Request<B>> for SendRequest
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<RecvBody>;
    type Error = Error;
    type Future = std::pin::Pin<Box<dyn Future<Output = Result<Response<RecvBody>, Error>> + Send>>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        Box::pin(self.send(request))
    }
}

fn driver_lost(shared: &Shared) -> Error {
    shared
        .closed_error()
        .with_fate_if_none(Fate::MaybeProcessed)
        .context("the connection task ended without answering the request")
}

struct CancelGuard {
    commands: mpsc::UnboundedSender<Command>,
    token: u64,
    armed: bool,
}

impl Drop for CancelGuard {
    fn drop(&mut self) {
        if self.armed {
            let _ = self.commands.send(Command::Cancel { token: self.token });
        }
    }
}
