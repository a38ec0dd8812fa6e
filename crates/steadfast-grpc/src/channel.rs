//! [`Channel`]: tonic's generated clients over [`steadfast::Client`].

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::uri::{PathAndQuery, Scheme};
use http::{HeaderValue, Request, Response, Uri};
use http_body::{Body, Frame, SizeHint};
use steadfast::{Fate, PoolConfig, RecvBody, RetryPolicy};
use tokio::time::Instant;
use tonic::Status;

use crate::retry;
use crate::service_config::{LoadBalancing, ServiceConfig};
use crate::status::{status_for_error, Side};
use crate::timeout;

/// A gRPC channel to one target, for tonic's generated clients:
/// `GreeterClient::new(channel)` or `GreeterClient::with_interceptor(channel, f)`.
///
/// Cheap to clone (clones share the connection pool). It is a
/// `tower::Service<http::Request<tonic::body::Body>>` whose error is [`Status`] and
/// whose response body yields `Bytes` with `Status` errors. It is always ready:
/// failures come from `call()` (tonic would turn a `poll_ready` error into UNKNOWN).
///
/// Under it, a [`steadfast::Client`]: a request the server provably never processed
/// (never sent, refused by GOAWAY or REFUSED_STREAM) is sent again transparently, its
/// body replayed from the retry buffer. Every failure is a `Status` that says which
/// layer failed and the fate of the call ([`StatusExt`](crate::StatusExt)).
///
/// Deadlines: the earliest of `grpc-timeout` (tonic's `Request::set_timeout`), a
/// [`steadfast::Deadline`] request extension, the channel's default timeout and the
/// deadline inherited from the call being handled ([`deadline`](crate::deadline))
/// bounds the whole call, response body included. Each attempt sends the time left in
/// `grpc-timeout`. On expiry the stream is cancelled (RST_STREAM CANCEL) and the call
/// fails with DEADLINE_EXCEEDED.
#[derive(Clone)]
pub struct Channel {
    shared: Arc<Shared>,
}

struct Shared {
    client: steadfast::Client,
    /// Per-method timeouts, wait-for-ready and A6 policies.
    service_config: Option<Arc<ServiceConfig>>,
    /// `retryThrottling`, for the channel's server.
    throttle: Option<Arc<retry::Throttle>>,
    retry_counters: Arc<retry::Counters>,
    /// What is left of the channel's buffer for replaying request bodies.
    replay_buffer: Arc<steadfast::client::ByteBudget>,
    /// Calls without a method config saying otherwise wait for a connection.
    wait_for_ready: bool,
    /// `scheme://authority` of the target, given to path-only request URIs.
    scheme: Scheme,
    authority: http::uri::Authority,
    default_timeout: Option<Duration>,
    user_agent: HeaderValue,
}

impl fmt::Debug for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Channel")
            .field(
                "target",
                &format_args!("{}://{}", self.shared.scheme, self.shared.authority),
            )
            .field("default_timeout", &self.shared.default_timeout)
            .finish()
    }
}

/// A target the channel cannot use.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidTarget(pub(crate) String);

impl fmt::Display for InvalidTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidTarget {}

/// Builds a [`Channel`].
#[derive(Debug)]
pub struct ChannelBuilder {
    scheme: Scheme,
    authority: http::uri::Authority,
    pool: PoolConfig,
    default_timeout: Option<Duration>,
    user_agent: Option<String>,
    resolver: Option<SharedResolver>,
    service_config: Option<ServiceConfig>,
    wait_for_ready: bool,
    /// `dns:`/`ipv4:`/`ipv6:` targets: https when TLS settings are given, else http.
    scheme_follows_tls: bool,
    load_balancing: Option<LoadBalancing>,
    min_resolve_interval: Option<Duration>,
}

/// A resolver shared by the builder and the client it builds.
#[derive(Clone)]
struct SharedResolver(Arc<dyn steadfast::client::Resolve>);

impl fmt::Debug for SharedResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SharedResolver")
    }
}

impl steadfast::client::Resolve for SharedResolver {
    fn resolve(
        &self,
        host: &str,
        port: u16,
    ) -> Pin<Box<dyn Future<Output = std::io::Result<Vec<std::net::SocketAddr>>> + Send>> {
        self.0.resolve(host, port)
    }
}

const USER_AGENT: &str = concat!("steadfast-grpc/", env!("CARGO_PKG_VERSION"));

impl Channel {
    /// A builder for a channel to `target`: `http://host:port` (h2c with prior
    /// knowledge), `https://host:port` (TLS with ALPN `h2`), or one of grpc's naming
    /// forms — `dns:///host:port`, `ipv4:addr:port,…`, `ipv6:[addr]:port,…` — whose
    /// scheme is https when the builder is given TLS settings
    /// ([`tls_config`](ChannelBuilder::tls_config), `tls_roots`, `tls_identity`)
    /// and h2c otherwise (see the `target` table in the README).
    pub fn builder(target: &str) -> Result<ChannelBuilder, InvalidTarget> {
        let parsed = crate::target::parse(target)?;
        let scheme = parsed.scheme.clone().unwrap_or(Scheme::HTTP);
        let authority = parsed.authority;
        Ok(ChannelBuilder {
            scheme,
            authority,
            pool: {
                let mut pool = PoolConfig::default();
                // gRPC calls carry larger bodies than most HTTP requests, and a refused
                // call whose body outgrew the buffer cannot be replayed: keep as much
                // as grpc-java does per call (1 MiB; 16 MiB in all, the default).
                pool.retry.buffer_per_request = 1 << 20;
                pool
            },
            default_timeout: None,
            user_agent: None,
            resolver: None,
            service_config: None,
            wait_for_ready: false,
            scheme_follows_tls: parsed.scheme.is_none(),
            load_balancing: None,
            min_resolve_interval: None,
        }
        .with_addresses(parsed.addrs))
    }

    /// A builder for a channel to a fixed list of addresses, named `authority` (the
    /// `:authority` of each call, and the TLS server name for `https`): e.g.
    /// `Channel::balance_list("http", "greeter.internal:50051", addrs)`. One
    /// connection is kept to each address and calls go to the least loaded; a
    /// connection that fails is replaced by one to the next address that answers.
    /// With [`load_balancing`](ChannelBuilder::load_balancing) or a service config,
    /// pick_first or round_robin over these addresses instead.
    pub fn balance_list(
        scheme: &str,
        authority: &str,
        addrs: Vec<std::net::SocketAddr>,
    ) -> Result<ChannelBuilder, InvalidTarget> {
        if addrs.is_empty() {
            return Err(InvalidTarget(format!(
                "no addresses given for {authority:?}"
            )));
        }
        Ok(Self::builder(&format!("{scheme}://{authority}"))?.with_addresses(Some(addrs)))
    }

    /// A channel to `target` with the default settings.
    pub fn from_target(target: &str) -> Result<Self, InvalidTarget> {
        Ok(Self::builder(target)?.build())
    }

    /// The HTTP/2 client under the channel (its counters count retries by cause).
    pub fn client(&self) -> &steadfast::Client {
        &self.shared.client
    }

    /// The counters of the service config's retries and hedges (gRFC A6); the
    /// transparent retries underneath are in [`client`](Self::client)'s stats.
    pub fn retry_stats(&self) -> retry::RetryStats {
        self.shared.retry_counters.snapshot()
    }

    /// The timeout the builder gave every call without an earlier deadline.
    pub fn default_timeout(&self) -> Option<Duration> {
        self.shared.default_timeout
    }

    /// The service config given to the builder, if any.
    pub fn service_config(&self) -> Option<&ServiceConfig> {
        self.shared.service_config.as_deref()
    }

    /// The subchannels under a `pick_first` or `round_robin` policy: address,
    /// connectivity state, health and last error of each.
    pub fn subchannels(&self) -> Vec<steadfast::client::SubchannelInfo> {
        self.shared.client.subchannels(&self.target_uri())
    }

    /// Connects as a call would, and waits until `done` holds for the subchannels
    /// (bound it with a timeout). Returns at once without a balancing policy.
    pub async fn wait_for_subchannels(
        &self,
        done: impl Fn(&[steadfast::client::SubchannelInfo]) -> bool,
    ) {
        let _ = self
            .shared
            .client
            .wait_for_subchannels(&self.target_uri(), done)
            .await;
    }

    fn target_uri(&self) -> Uri {
        Uri::builder()
            .scheme(self.shared.scheme.clone())
            .authority(self.shared.authority.clone())
            .path_and_query("/")
            .build()
            .unwrap_or_default()
    }
}

impl ChannelBuilder {
    /// A fixed list of addresses (`ipv4:`, `ipv6:` targets, `balance_list`): without
    /// a balancing policy, one connection to each, calls on the least loaded.
    fn with_addresses(mut self, addrs: Option<Vec<std::net::SocketAddr>>) -> Self {
        if let Some(addrs) = addrs {
            self.pool.min_connections = addrs.len();
            self.pool.max_connections = self.pool.max_connections.max(addrs.len());
            self.resolver = Some(SharedResolver(Arc::new(
                steadfast::client::StaticResolver::new(addrs),
            )));
        }
        self
    }

    /// The load-balancing policy, whatever the service config says. Default: the
    /// service config's; without one, the pool's least-loaded connections.
    pub fn load_balancing(mut self, policy: LoadBalancing) -> Self {
        self.load_balancing = Some(policy);
        self
    }

    /// Under pick_first and round_robin, re-resolve the name at most this often
    /// (on GOAWAY, connection failures, every address failed). Default: 30 s.
    pub fn min_resolve_interval(mut self, interval: Duration) -> Self {
        self.min_resolve_interval = Some(interval);
        self
    }

    /// Gives up each step of connecting (resolution, TCP, TLS, the HTTP/2 handshake)
    /// after this long. Default: 20 s, gRPC's minimum connect timeout.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.pool.connection.connect_timeout = timeout;
        self.pool.backoff.min_connect_timeout = timeout;
        self
    }

    /// Wraps each new connection's transport (after TLS, before HTTP/2), e.g. with a
    /// tap that prints every frame. Default: none.
    pub fn wrap_transport(
        mut self,
        wrap: impl Fn(steadfast::client::BoxIo) -> steadfast::client::BoxIo + Send + Sync + 'static,
    ) -> Self {
        self.pool.connection.wrap_transport =
            Some(steadfast::client::WrapTransport(Arc::new(wrap)));
        self
    }

    /// How long the server may take to acknowledge this client's SETTINGS before the
    /// connection is closed with GOAWAY(SETTINGS_TIMEOUT) (RFC 9113 §6.5.3).
    /// Default: 10 s (`steadfast_proto::Config`).
    pub fn settings_timeout(mut self, timeout: Duration) -> Self {
        self.pool.connection.proto.settings_timeout = timeout;
        self
    }

    /// TLS settings for an `https` target (ALPN must offer `h2`; see
    /// [`steadfast::tls::client_config`]). Default: the Web PKI roots.
    pub fn tls_config(mut self, config: Arc<rustls::ClientConfig>) -> Self {
        self.pool.connection.tls = Some(config);
        self
    }

    /// Trust these roots for an `https` target, and present no client certificate
    /// (ALPN `h2`). Replaces [`tls_config`](Self::tls_config).
    pub fn tls_roots(self, roots: steadfast::tls::Roots) -> Result<Self, InvalidTarget> {
        let config = steadfast::tls::client_config(roots).map_err(InvalidTarget)?;
        Ok(self.tls_config(config))
    }

    /// Trust these roots and present this certificate chain and key to the server
    /// (mutual TLS). Replaces [`tls_config`](Self::tls_config).
    pub fn tls_identity(
        self,
        roots: steadfast::tls::Roots,
        chain: Vec<rustls::pki_types::CertificateDer<'static>>,
        key: rustls::pki_types::PrivateKeyDer<'static>,
    ) -> Result<Self, InvalidTarget> {
        let config = steadfast::tls::client_config_with_identity(roots, chain, key)
            .map_err(InvalidTarget)?;
        Ok(self.tls_config(config))
    }

    /// Keepalive PINGs (gRFC A8): after `time` without reading anything, a PING; no
    /// answer within `timeout` and the connection is declared dead (its calls fail
    /// with UNAVAILABLE and the fate each had). `without_calls` keeps pinging while
    /// no call is open (servers must permit it, or they answer with GOAWAY
    /// ENHANCE_YOUR_CALM "too_many_pings"). Default: off, as in grpc-go.
    pub fn keepalive(mut self, time: Duration, timeout: Duration, without_calls: bool) -> Self {
        let mut keepalive = steadfast_proto::Keepalive::new(time);
        keepalive.timeout = timeout;
        keepalive.without_calls = without_calls;
        self.pool.connection.proto.keepalive = Some(keepalive);
        self
    }

    /// The HTTP/2 receive windows this client announces: per stream and for the whole
    /// connection. Default: 1 MiB and 2 MiB (`steadfast_proto::Config`).
    pub fn windows(mut self, stream: u32, connection: u32) -> Self {
        self.pool.connection.proto.initial_stream_window = stream;
        self.pool.connection.proto.initial_connection_window = connection;
        self
    }

    /// The largest response header list (or trailer section) accepted, as RFC 9113
    /// §6.5.2 counts it; it is announced in SETTINGS_MAX_HEADER_LIST_SIZE, and a
    /// larger one resets the call's stream, which fails with INTERNAL. Default: 64 KiB.
    pub fn max_header_list_size(mut self, bytes: u32) -> Self {
        self.pool.connection.proto.max_header_list_size = bytes;
        self
    }

    /// The service config: per-method timeouts, wait-for-ready, and the retry or
    /// hedging policies of gRFC A6 with retry throttling, the load-balancing policy
    /// (`loadBalancingConfig`: pick_first, round_robin) and client-side health
    /// checking (`healthCheckConfig`, gRFC A17, round_robin only)
    /// ([`ServiceConfig::from_json`]). Default: none (no retries beyond the
    /// transparent ones of calls never processed; the pool's least-loaded
    /// connections).
    pub fn service_config(mut self, config: ServiceConfig) -> Self {
        self.service_config = Some(config);
        self
    }

    /// Whether calls wait for a connection (until their deadline) when none can be
    /// made, rather than fail at once with UNAVAILABLE; a method's `waitForReady`
    /// in the service config takes precedence. Default: false, as in gRPC.
    pub fn wait_for_ready(mut self, wait: bool) -> Self {
        self.wait_for_ready = wait;
        self
    }

    /// The deadline of calls that set none (and inherit none). Default: none.
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.default_timeout = Some(timeout);
        self
    }

    /// Put before `steadfast-grpc/VERSION` in the `user-agent` header.
    pub fn user_agent(mut self, user_agent: impl Into<String>) -> Self {
        self.user_agent = Some(user_agent.into());
        self
    }

    /// The transparent retry policy. Default: never-sent and refused calls are sent
    /// again; calls the server may have processed are not.
    pub fn retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.pool.retry = policy;
        self
    }

    /// All the HTTP/2 client's settings at once (connections, windows, keepalive,
    /// backoff), for what the builder has no method for.
    pub fn pool_config(mut self, config: PoolConfig) -> Self {
        self.pool = config;
        self
    }

    /// How the target's host is turned into addresses. Default: the system resolver.
    /// With another resolver the target's host still names the server in TLS (SNI,
    /// certificate check) and in `:authority` — what grpc's interop clients call
    /// `--server_host_override`. Asked again each time a connection is opened.
    pub fn resolver(mut self, resolver: impl steadfast::client::Resolve) -> Self {
        self.resolver = Some(SharedResolver(Arc::new(resolver)));
        self
    }

    /// The channel. No connection is made until the first call.
    pub fn build(self) -> Channel {
        let user_agent = match self.user_agent {
            Some(prefix) => HeaderValue::try_from(format!("{prefix} {USER_AGENT}"))
                .unwrap_or(HeaderValue::from_static(USER_AGENT)),
            None => HeaderValue::from_static(USER_AGENT),
        };
        let mut pool = self.pool;
        let scheme = if self.scheme_follows_tls && pool.connection.tls.is_some() {
            Scheme::HTTPS
        } else {
            self.scheme
        };
        crate::balancing::apply(
            &mut pool,
            self.load_balancing,
            self.service_config.as_ref(),
            self.min_resolve_interval,
        );
        let client = match self.resolver {
            Some(resolver) => steadfast::Client::with_resolver(pool, resolver),
            None => steadfast::Client::new(pool),
        };
        let throttle = self
            .service_config
            .as_ref()
            .and_then(ServiceConfig::retry_throttling)
            .map(|t| Arc::new(retry::Throttle::new(t)));
        Channel {
            shared: Arc::new(Shared {
                client,
                service_config: self.service_config.map(Arc::new),
                throttle,
                retry_counters: Arc::default(),
                replay_buffer: Arc::new(steadfast::client::ByteBudget::new(retry::CHANNEL_BUFFER)),
                wait_for_ready: self.wait_for_ready,
                scheme,
                authority: self.authority,
                default_timeout: self.default_timeout,
                user_agent,
            }),
        }
    }
}

/// Where a call's deadline came from, for its error message.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BudgetSource {
    /// `grpc-timeout` set on the request (tonic's `Request::set_timeout`).
    Request,
    /// A `steadfast::Deadline` request extension.
    Extension,
    /// The channel's default timeout.
    Channel,
    /// The call being handled on a `steadfast_grpc::Server`.
    Inherited,
    /// The method's `timeout` in the service config.
    ServiceConfig,
}

/// A call's deadline and how it was set.
#[derive(Clone, Copy, Debug)]
struct Budget {
    deadline: Instant,
    /// The time left when the call started.
    total: Duration,
    source: BudgetSource,
}

impl Budget {
    fn describe(&self) -> String {
        let how = match self.source {
            BudgetSource::Request => "set on the request (grpc-timeout)",
            BudgetSource::Extension => "set by a steadfast::Deadline extension",
            BudgetSource::Channel => "the channel's default timeout",
            BudgetSource::Inherited => "inherited from the call being handled",
            BudgetSource::ServiceConfig => "the method's timeout in the service config",
        };
        format!("the call's budget of {:?} ({how}) ran out", self.total)
    }

    fn exceeded(&self, fate: Option<Fate>, stream: Option<steadfast::StreamId>) -> Status {
        status_for_error(
            steadfast::Error::deadline_exceeded(fate, stream).with_context(self.describe()),
            Side::Client,
        )
    }
}

impl Shared {
    async fn call(
        self: Arc<Self>,
        request: Request<tonic::body::Body>,
        inherited: Option<Instant>,
    ) -> Result<Response<ResponseBody>, Status> {
        let (mut parts, body) = request.into_parts();
        let attempts = parts
            .extensions
            .remove::<Arc<crate::metrics::AttemptRecorder>>();
        let now = Instant::now();
        if parts.uri.scheme().is_none() {
            let path = parts
                .uri
                .path_and_query()
                .cloned()
                .unwrap_or(PathAndQuery::from_static("/"));
            parts.uri = Uri::builder()
                .scheme(self.scheme.clone())
                .authority(self.authority.clone())
                .path_and_query(path)
                .build()
                .map_err(|e| Status::internal(format!("request URI: {e}")))?;
        }
        parts
            .headers
            .insert(http::header::USER_AGENT, self.user_agent.clone());
        parts
            .headers
            .insert(http::header::TE, HeaderValue::from_static("trailers"));
        crate::status::unpad_binary_metadata(&mut parts.headers);

        let method_config = self.service_config.as_deref().and_then(|config| {
            let (service, method) = method_of(&parts);
            config.method(service, method)
        });
        if !method_config
            .and_then(|m| m.wait_for_ready)
            .unwrap_or(self.wait_for_ready)
        {
            parts.extensions.insert(steadfast::FailFast);
        }
        let mut candidates: Vec<(Instant, BudgetSource)> = Vec::with_capacity(5);
        if let Some(t) = method_config.and_then(|m| m.timeout) {
            candidates.push((now + t, BudgetSource::ServiceConfig));
        }
        if let Some(value) = parts.headers.remove(timeout::GRPC_TIMEOUT) {
            let timeout = timeout::parse(value.as_bytes())
                .map_err(|e| Status::invalid_argument(format!("the request's {e}")))?;
            candidates.push((now + timeout, BudgetSource::Request));
        }
        if let Some(d) = parts.extensions.get::<steadfast::Deadline>() {
            candidates.push((Instant::from_std(d.0), BudgetSource::Extension));
        }
        if let Some(t) = self.default_timeout {
            candidates.push((now + t, BudgetSource::Channel));
        }
        if let Some(d) = inherited {
            candidates.push((d, BudgetSource::Inherited));
        }
        let budget = candidates
            .into_iter()
            .min_by_key(|(d, _)| *d)
            .map(|(deadline, source)| Budget {
                deadline,
                total: deadline.saturating_duration_since(now),
                source,
            });
        if let Some(budget) = &budget {
            if budget.total.is_zero() {
                // grpc-go and grpc-java fail such a call before sending it too.
                return Err(budget.exceeded(Some(Fate::NotSent), None));
            }
            parts
                .extensions
                .insert(steadfast::Deadline(budget.deadline.into_std()));
            parts.extensions.insert(steadfast::TimeoutHeader {
                name: http::HeaderName::from_static(timeout::GRPC_TIMEOUT),
                format: timeout::header_value,
            });
        }

        let body = match method_config.and_then(|m| m.max_request_message_bytes) {
            Some(limit) => tonic::body::Body::new(crate::limits::LimitedRequest::new(body, limit)),
            None => body,
        };
        let response_limit = method_config.and_then(|m| m.max_response_message_bytes);
        let failure = |error: steadfast::Error| match &budget {
            Some(b) if error.is_deadline_exceeded() => b.exceeded(error.fate(), error.stream_id()),
            _ => status_for_error(error, Side::Client),
        };
        let response = match method_config.and_then(|m| m.policy.as_ref()) {
            Some(policy) => {
                let cx = retry::CallContext {
                    client: &self.client,
                    throttle: self.throttle.as_ref(),
                    counters: &self.retry_counters,
                    buffer: &self.replay_buffer,
                    deadline: budget.map(|b| b.deadline),
                    failure: &failure,
                    attempts: attempts.as_ref(),
                };
                retry::call(cx, parts, body, policy).await?
            }
            None => {
                let attempt = crate::metrics::Attempt::of(attempts.as_ref());
                let body = attempt.count(body);
                match self.client.send(Request::from_parts(parts, body)).await {
                    Ok(response) => {
                        attempt.committed();
                        response
                    }
                    Err(error) => {
                        let status = failure(error);
                        attempt.failed(status.code());
                        return Err(status);
                    }
                }
            }
        };
        let (mut parts, body) = response.into_parts();
        crate::status::drop_malformed_details(&mut parts.headers);
        if parts.status != http::StatusCode::OK
            && !parts.headers.contains_key(tonic::Status::GRPC_STATUS)
        {
            // What the answer says of itself; dropping `body` then cancels the stream
            // if it is still open.
            let shown = http_body_start(body).await;
            return Err(crate::status::status_for_http_answer(
                parts.status,
                &parts.headers,
                &shown,
            ));
        }
        let info = parts.extensions.get::<steadfast::ConnectionInfo>();
        let body = ResponseBody {
            stream: Some(body.stream_id()),
            client: info.and_then(steadfast::ConnectionInfo::local_addr),
            server: info.and_then(steadfast::ConnectionInfo::remote_addr),
            inner: Some(body),
            budget,
            limit: response_limit.map(|l| (crate::limits::MessageScanner::default(), l)),
        };
        Ok(Response::from_parts(parts, body))
    }
}

/// The first bytes of a non-gRPC answer's body (up to what its status shows), read
/// for at most a second: a body that trickles or never ends costs the call no more.
pub(crate) async fn http_body_start(mut body: RecvBody) -> Vec<u8> {
    use http_body_util::BodyExt as _;
    let limit = crate::status::HTTP_BODY_SHOWN + 1;
    let mut shown = Vec::new();
    let read = async {
        while shown.len() < limit {
            match body.frame().await {
                Some(Ok(frame)) => {
                    if let Ok(data) = frame.into_data() {
                        let take = data.len().min(limit - shown.len());
                        shown.extend_from_slice(&data[..take]);
                    }
                }
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), read).await;
    shown
}

/// The service and method a call is for: tonic's `GrpcMethod` extension, else the
/// `:path` (`/package.Service/Method`).
fn method_of(parts: &http::request::Parts) -> (&str, &str) {
    if let Some(m) = parts.extensions.get::<tonic::GrpcMethod<'static>>() {
        return (m.service(), m.method());
    }
    let path = parts.uri.path().trim_start_matches('/');
    path.split_once('/').unwrap_or((path, ""))
}

/// The body of a response on a [`Channel`]: the stream's data and trailers, with every
/// failure a [`Status`]. The call's deadline holds to its end: the connection's driver
/// resets the stream when it passes (read or not), and the body then fails with
/// DEADLINE_EXCEEDED.
pub struct ResponseBody {
    /// `None` once finished or failed.
    inner: Option<RecvBody>,
    /// The join key of the call's records: stream id, client and server address:port.
    stream: Option<steadfast::StreamId>,
    client: Option<std::net::SocketAddr>,
    server: Option<std::net::SocketAddr>,
    /// The call's deadline, to say how it was set when it passes.
    budget: Option<Budget>,
    /// `maxResponseMessageBytes`, with the boundaries of the messages so far.
    limit: Option<(crate::limits::MessageScanner, usize)>,
}

/// An empty body (what tonic's interceptors answer with when they refuse a call).
impl Default for ResponseBody {
    fn default() -> Self {
        Self {
            inner: None,
            stream: None,
            client: None,
            server: None,
            budget: None,
            limit: None,
        }
    }
}

impl fmt::Debug for ResponseBody {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseBody")
            .field("stream", &self.stream)
            .field("open", &self.inner.is_some())
            .finish()
    }
}

impl Body for ResponseBody {
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
        match Pin::new(inner).poll_frame(cx) {
            Poll::Pending => Poll::Pending,
            Poll::Ready(Some(Ok(mut frame))) => {
                if let Some(trailers) = frame.trailers_mut() {
                    crate::status::drop_malformed_details(trailers);
                    // The call's end, with the join key.
                    tracing::debug!(
                        stream = this.stream.map(tracing::field::display),
                        client = this.client.map(tracing::field::display),
                        server = this.server.map(tracing::field::display),
                        grpc_status = trailers
                            .get(tonic::Status::GRPC_STATUS)
                            .and_then(|v| v.to_str().ok()),
                        "call ended"
                    );
                }
                if let (Some(data), Some((scanner, limit))) = (frame.data_ref(), &mut this.limit) {
                    if let Err(len) = scanner.scan(data, *limit) {
                        // Dropping the body resets the stream (CANCEL).
                        this.inner = None;
                        return Poll::Ready(Some(Err(crate::limits::too_large(
                            "the response",
                            len,
                            *limit,
                            "maxResponseMessageBytes",
                        ))));
                    }
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(error))) => {
                this.inner = None;
                // Who ended the stream and how, what the server may have done.
                tracing::debug!(
                    stream = this.stream.map(tracing::field::display),
                    client = this.client.map(tracing::field::display),
                    server = this.server.map(tracing::field::display),
                    by = ?error.initiator(),
                    code = error.code().map(tracing::field::display),
                    fate = error.fate().map(tracing::field::debug),
                    %error,
                    "call failed"
                );
                Poll::Ready(Some(Err(match &this.budget {
                    Some(b) if error.is_deadline_exceeded() => {
                        b.exceeded(error.fate(), error.stream_id().or(this.stream))
                    }
                    _ => status_for_error(error, Side::Client),
                })))
            }
            Poll::Ready(None) => {
                this.inner = None;
                Poll::Ready(None)
            }
        }
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

impl tower_service::Service<Request<tonic::body::Body>> for Channel {
    type Response = Response<ResponseBody>;
    type Error = Status;
    type Future = Pin<Box<dyn Future<Output = Result<Response<ResponseBody>, Status>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Status>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<tonic::body::Body>) -> Self::Future {
        // Read here, synchronously: `call` runs inside the handler's task, where the
        // deadline of the call being handled is set.
        let inherited = crate::deadline::current();
        Box::pin(self.shared.clone().call(request, inherited))
    }
}
