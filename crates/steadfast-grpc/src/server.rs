//! [`Server`]: tonic's generated servers over [`steadfast::Server`].

use std::convert::Infallible;
use std::fmt;
use std::future::{poll_fn, Future};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use http_body::{Body, Frame, SizeHint};
use steadfast::{RecvBody, ServerConfig};
use tokio::net::TcpListener;
use tokio::time::{Instant, Sleep};
use tonic::body::Body as TonicBody;
use tonic::server::NamedService;
use tonic::service::{Routes, RoutesBuilder};
use tonic::Status;
use tower_service::Service;

use crate::status::{self, status_for_error, Side};
use crate::{deadline, timeout};

/// A gRPC server hosting tonic generated services (or any [`Routes`]) on a
/// [`steadfast::Server`], with all of its configuration: load shedding with
/// REFUSED_STREAM, gRFC A9 connection age and idleness, two-phase graceful shutdown,
/// TLS.
///
/// On top, the gRPC rules of the server side:
/// - `grpc-timeout` is parsed exactly and enforced: at expiry the handler is dropped
///   (cancelled) and the call ends with DEADLINE_EXCEEDED — Trailers-Only when no
///   response had started, in the trailers otherwise. A malformed value is INTERNAL.
/// - The deadline is readable by the handler ([`deadline::current`]) and inherited by
///   the [`Channel`](crate::Channel) calls it makes.
/// - A content type other than `application/grpc[+proto|;...]` gets HTTP 415.
/// - Unknown services and methods get UNIMPLEMENTED as Trailers-Only (tonic's routes).
/// - A request body that fails (the client reset the stream, the connection was lost)
///   reaches the handler as a `Status` (CANCELLED), not as UNKNOWN.
/// - A message above a size limit is RESOURCE_EXHAUSTED, not tonic's OUT_OF_RANGE
///   ([`status::fix_size_limit_code`]).
#[derive(Debug)]
pub struct Server {
    config: ServerConfig,
    routes: RoutesBuilder,
    /// The `NamedService` names added, `None` once `add_routes` hid some.
    names: Option<Vec<&'static str>>,
}

impl Default for Server {
    fn default() -> Self {
        Self {
            config: ServerConfig::default(),
            routes: RoutesBuilder::default(),
            names: Some(Vec::new()),
        }
    }
}

impl Server {
    /// A server with steadfast's default server configuration.
    pub fn builder() -> Self {
        Self::default()
    }

    /// Replaces the HTTP/2 server configuration (limits, shedding, A9, TLS).
    pub fn config(mut self, config: ServerConfig) -> Self {
        self.config = config;
        self
    }

    /// The HTTP/2 server configuration, to change fields in place.
    pub fn config_mut(&mut self) -> &mut ServerConfig {
        &mut self.config
    }

    /// Hosts a tonic generated service (`GreeterServer::new(impl)`), or any service
    /// with a [`NamedService`] name.
    ///
    /// The service may answer with any body of `Bytes` (tonic's interceptors wrap
    /// it: `GreeterServer::with_interceptor(greeter, check)` is hosted as is).
    pub fn add_service<S, B>(mut self, service: S) -> Self
    where
        S: Service<Request<TonicBody>, Response = Response<B>, Error = Infallible>
            + NamedService
            + Clone
            + Send
            + Sync
            + 'static,
        S::Future: Send + 'static,
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<tonic::codegen::StdError>,
    {
        if let Some(names) = &mut self.names {
            names.push(S::NAME);
        }
        self.routes.add_service(AnyBody(service));
        self
    }

    /// Hosts every service of `routes` too.
    pub fn add_routes(mut self, routes: Routes) -> Self {
        let mut all = self.routes.routes().into_axum_router();
        all = all.merge(routes.into_axum_router());
        self.routes = RoutesBuilder::from(Routes::from(all));
        self.names = None;
        self
    }

    /// The services as one `tower::Service` on steadfast's request type, for
    /// [`steadfast::Server::serve`] directly.
    pub fn into_service(self) -> GrpcService {
        GrpcService {
            routes: self.routes.routes().prepare(),
            names: self.names.map(Arc::from),
        }
    }

    /// Serves on `addr` until the process ends.
    pub async fn serve(self, addr: SocketAddr) -> std::io::Result<()> {
        self.serve_with_shutdown(addr, std::future::pending()).await
    }

    /// Serves on `addr` until `signal` completes, then shuts down gracefully
    /// (two-phase GOAWAY, in-flight calls finish within `shutdown_grace`).
    pub async fn serve_with_shutdown(
        self,
        addr: SocketAddr,
        signal: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let listener = TcpListener::bind(addr).await?;
        self.serve_with_listener(listener, signal).await
    }

    /// Serves on every transport `incoming` yields (TLS is still added per
    /// [`ServerConfig::tls`]) until it ends or `signal` completes, then shuts down
    /// gracefully. An item that is an error is logged and skipped. Handlers see no
    /// remote address for these connections ([`PeerExt`](crate::PeerExt)).
    pub async fn serve_with_incoming<I, IO, E>(
        self,
        incoming: I,
        signal: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()>
    where
        I: tokio_stream::Stream<Item = Result<IO, E>> + Send + 'static,
        IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        self.serve_with_shutdown_on(Incoming(Box::pin(incoming)), signal)
            .await
    }

    /// Serves on connections from `listener` until `signal` completes, then shuts down
    /// gracefully.
    pub async fn serve_with_listener(
        self,
        listener: TcpListener,
        signal: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        self.serve_with_shutdown_on(listener, signal).await
    }

    async fn serve_with_shutdown_on(
        self,
        listener: impl steadfast::Listener,
        signal: impl Future<Output = ()> + Send,
    ) -> std::io::Result<()> {
        let config = self.config.clone();
        let service = self.into_service();
        let server = steadfast::Server::new(config);
        let shutdown = server.shutdown_handle();
        let serving = server.serve_with(listener, service);
        tokio::pin!(serving);
        tokio::select! {
            result = &mut serving => return result,
            () = signal => shutdown.graceful(),
        }
        serving.await
    }
}

/// A service whose response body becomes tonic's, as tonic's routes need.
#[derive(Clone)]
struct AnyBody<S>(S);

impl<S: NamedService> NamedService for AnyBody<S> {
    const NAME: &'static str = S::NAME;
}

impl<S, B> Service<Request<TonicBody>> for AnyBody<S>
where
    S: Service<Request<TonicBody>, Response = Response<B>, Error = Infallible>,
    S::Future: Send + 'static,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<tonic::codegen::StdError>,
{
    type Response = Response<TonicBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<TonicBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request<TonicBody>) -> Self::Future {
        let future = self.0.call(request);
        Box::pin(async move {
            let Ok(response) = future.await;
            Ok(response.map(TonicBody::new))
        })
    }
}

/// A stream of transports as a [`steadfast::Listener`].
struct Incoming<I>(Pin<Box<I>>);

impl<I, IO, E> steadfast::Listener for Incoming<I>
where
    I: tokio_stream::Stream<Item = Result<IO, E>> + Send + 'static,
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    E: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    type Io = IO;

    async fn accept(&mut self) -> std::io::Result<Option<(IO, Option<SocketAddr>)>> {
        match poll_fn(|cx| self.0.as_mut().poll_next(cx)).await {
            Some(Ok(io)) => Ok(Some((io, None))),
            Some(Err(e)) => Err(std::io::Error::other(e)),
            None => Ok(None),
        }
    }

    fn local_addr(&self) -> Option<SocketAddr> {
        None
    }
}

/// The services of a [`Server`] as a `tower::Service` over steadfast's request type.
#[derive(Clone)]
pub struct GrpcService {
    routes: Routes,
    names: Option<Arc<[&'static str]>>,
}

impl GrpcService {
    /// The names of the services hosted (`helloworld.Greeter`), or `None` when some
    /// came through [`Server::add_routes`], whose names are not known.
    pub fn service_names(&self) -> Option<&[&'static str]> {
        self.names.as_deref()
    }
}

impl fmt::Debug for GrpcService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GrpcService").finish_non_exhaustive()
    }
}

/// True for `application/grpc`, `application/grpc+proto`, `application/grpc;...`
/// (PROTOCOL-HTTP2.md: "Content-Type → "content-type" "application/grpc" [("+proto" /
/// "+json" / {custom})]").
fn is_grpc_content_type(value: Option<&HeaderValue>) -> bool {
    let Some(value) = value.and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(rest) = value.strip_prefix("application/grpc") else {
        return false;
    };
    rest.is_empty() || rest.starts_with('+') || rest.starts_with(';')
}

/// The HTTP 415 answer to a request that is not gRPC. It carries grpc-status
/// INTERNAL too (as grpc-go does), so a gRPC client with the wrong content type still
/// learns why.
fn unsupported_media_type(content_type: Option<&HeaderValue>) -> Response<ServerBody> {
    let message = format!(
        "invalid gRPC request content-type {:?}: expected application/grpc",
        content_type.and_then(|v| v.to_str().ok()).unwrap_or("")
    );
    let mut response = Status::internal(message).into_http::<()>();
    *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
    response.map(|()| ServerBody::empty())
}

fn trailers_only(status: Status) -> Response<ServerBody> {
    status.into_http::<()>().map(|()| ServerBody::empty())
}

impl Service<Request<RecvBody>> for GrpcService {
    type Response = Response<ServerBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ServerBody>, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<RecvBody>) -> Self::Future {
        let content_type = request.headers().get(http::header::CONTENT_TYPE);
        if !is_grpc_content_type(content_type) {
            let response = unsupported_media_type(content_type);
            return Box::pin(std::future::ready(Ok(response)));
        }
        let deadline = match request.headers().get(timeout::GRPC_TIMEOUT) {
            None => None,
            Some(value) => match timeout::parse(value.as_bytes()) {
                Ok(timeout) => Some(Instant::now() + timeout),
                // grpc-go answers a malformed grpc-timeout with INTERNAL too.
                Err(e) => {
                    return Box::pin(std::future::ready(Ok(trailers_only(Status::internal(
                        e.to_string(),
                    )))))
                }
            },
        };
        let mut routes = self.routes.clone();
        let request = request.map(|body| TonicBody::new(RequestBody(body)));
        Box::pin(async move {
            let handle = async {
                // Routes are always ready (axum's router); polled for the contract.
                let Ok(()) =
                    poll_fn(|cx| Service::<Request<TonicBody>>::poll_ready(&mut routes, cx)).await;
                let Ok(response) = routes.call(request).await;
                response
            };
            let handle = deadline::scope(deadline, handle);
            let response = match deadline {
                None => handle.await,
                Some(at) => match tokio::time::timeout_at(at, handle).await {
                    Ok(response) => response,
                    // The handler future is dropped: cancelled.
                    Err(_) => return Ok(trailers_only(deadline_status())),
                },
            };
            let mut response = response.map(|body| ServerBody::new(body, deadline));
            status::fix_size_limit_code(response.headers_mut());
            status::unpad_binary_metadata(response.headers_mut());
            Ok(response)
        })
    }
}

fn deadline_status() -> Status {
    Status::deadline_exceeded(
        "the call's deadline (grpc-timeout) passed: the handler was cancelled",
    )
}

/// A request body whose failures are `Status`es (so tonic does not call them UNKNOWN).
struct RequestBody(RecvBody);

impl Body for RequestBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        Pin::new(&mut self.0)
            .poll_frame(cx)
            .map_err(|e| status_for_error(e, Side::Server))
    }

    fn is_end_stream(&self) -> bool {
        self.0.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.0.size_hint()
    }
}

/// The response body of a call on a [`Server`]: the handler's, polled with the call's
/// deadline current, and ended with DEADLINE_EXCEEDED trailers when it passes.
pub struct ServerBody {
    inner: Option<TonicBody>,
    deadline: Option<Instant>,
    sleep: Option<Pin<Box<Sleep>>>,
}

impl fmt::Debug for ServerBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServerBody")
            .field("open", &self.inner.is_some())
            .field("deadline", &self.deadline)
            .finish()
    }
}

impl ServerBody {
    fn new(inner: TonicBody, deadline: Option<Instant>) -> Self {
        Self {
            inner: Some(inner),
            deadline,
            sleep: deadline.map(|d| Box::pin(tokio::time::sleep_until(d))),
        }
    }

    fn empty() -> Self {
        Self {
            inner: None,
            deadline: None,
            sleep: None,
        }
    }
}

impl Body for ServerBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        let this = &mut *self;
        let Some(inner) = this.inner.as_mut() else {
            return Poll::Ready(None);
        };
        if let Some(sleep) = this.sleep.as_mut() {
            if sleep.as_mut().poll(cx).is_ready() {
                // Dropping the handler's body cancels its stream.
                this.inner = None;
                let mut trailers = HeaderMap::new();
                let _ = deadline_status().add_header(&mut trailers);
                return Poll::Ready(Some(Ok(Frame::trailers(trailers))));
            }
        }
        let mut polled = deadline::sync_scope(this.deadline, || Pin::new(inner).poll_frame(cx));
        match polled {
            Poll::Ready(None) => this.inner = None,
            Poll::Ready(Some(Ok(ref mut frame))) => {
                if let Some(trailers) = frame.trailers_mut() {
                    status::fix_size_limit_code(trailers);
                    status::unpad_binary_metadata(trailers);
                }
            }
            _ => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.inner
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
