//! The pooled client and the request reliability mechanism.
//!
//! [`Client`] keeps connections per authority and sends each request on one of them.
//! When a request fails, its [`Fate`] decides what happens:
//! - `NotSent`: it never left this process — sent again until the request's deadline,
//!   or [`RetryPolicy::not_sent_retries`] times when it has none;
//! - `Refused`: the server proved it did no processing (above a GOAWAY's
//!   last-stream-id, or RST_STREAM REFUSED_STREAM) — sent again once, transparently, on
//!   another connection when its own is draining (gRFC A6's rule); further retries only
//!   under an explicit policy;
//! - `MaybeProcessed`: retried only for requests marked [`Idempotent`], under the
//!   policy's budget;
//! - `Processed`: never retried.
//!
//! The body of every request is kept in a bounded retry buffer while it is sent, so a
//! retry replays it; a body that overflows the buffer ends the request's retryability.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tracing::Instrument;

use bytes::Bytes;
use http::{Request, Response, Uri};
use http_body::Body;
use steadfast_proto::Fate;

use super::backoff::{Backoff, BackoffConfig, SplitMix64};
use super::balance::{BalanceConfig, Balancer, BalancerParts, SubchannelInfo};
use super::connection::{connect_to, ClientConfig, SendRequest};
use super::replay::Replay;
use super::resolve::{DnsResolver, Resolve};
pub use super::stats::ClientStats;
pub(crate) use super::stats::Counters;
use crate::body::{boxed, RecvBody};
use crate::error::{BoxError, Error, Kind};

/// How long after a request's deadline the pool stops waiting for a connection's
/// driver to report it (which it does at the deadline itself unless it stopped).
const DRIVER_SLACK: Duration = Duration::from_secs(1);

/// A request extension: the request must complete by this instant, retries included.
///
/// It bounds the whole exchange: getting a connection, the wait for a stream slot,
/// the response head, and the response body to its last byte. The connection's driver
/// enforces it per stream, whether or not anyone is reading the body: at the deadline
/// the stream is reset with RST_STREAM(CANCEL) (or, never sent, dropped), and the
/// request — or its body, once the response head has arrived — fails with
/// [`Error::is_deadline_exceeded`] and the fate the stream had by then.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Deadline(pub Instant);

/// A request extension: on every attempt, write the time left until the request's
/// deadline ([`Deadline`] or [`PoolConfig::default_timeout`]) into this header, so a
/// retry tells the server the *remaining* budget rather than the original one (gRPC's
/// `grpc-timeout`, for instance). Without a deadline, the request's headers are sent
/// as they are.
#[derive(Clone, Debug)]
pub struct TimeoutHeader {
    /// The header to write.
    pub name: http::HeaderName,
    /// How to write the time left (never called with more than the deadline allows).
    pub format: fn(Duration) -> http::HeaderValue,
}

/// A request extension: the caller declares the request idempotent, so it may be
/// retried even when the server may have processed it (`MaybeProcessed`), within
/// [`RetryPolicy::maybe_processed_retries`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Idempotent;

/// A request extension: when no connection to the target can be made, fail at once
/// (fate `NotSent`) rather than keep trying to connect until the request's deadline.
/// gRPC calls without `waitForReady` behave so ("fail fast"); without a deadline a
/// request fails fast anyway. Under `pick_first` and `round_robin`, "no connection"
/// is every subchannel failed: the error is [`Error::is_no_ready_address`], naming
/// each address; while one is connecting the request waits either way.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FailFast;

/// A request extension: send this `:authority` instead of the URI's. The URI's
/// authority still chooses the connections (the pool's key, the name resolved, the
/// TLS server name); this is only what the server is told. A proxy forwards the
/// client's `:authority` to a backend so.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendAuthority(pub http::uri::Authority);

/// Which failed requests are sent again.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Master switch of the transparent retry (off: every failure goes to the caller).
    pub enabled: bool,
    /// How many times a `NotSent` request without a [`Deadline`] is resent. A request
    /// with a deadline is resent until the deadline; one without needs this bound, or
    /// a server that sends GOAWAY on every new connection would keep it retrying
    /// forever. The error of a request that reached the bound says so.
    pub not_sent_retries: u32,
    /// How many times a `Refused` request is resent. The first resend is immediate
    /// (gRFC A6's transparent retry); later ones wait `refused_backoff`, doubling each
    /// time (±20% jitter, at most 1 s), so an overloaded server is not stormed.
    pub refused_retries: u32,
    /// The wait before the second resend of a refused request.
    pub refused_backoff: Duration,
    /// How many times a `MaybeProcessed` request marked [`Idempotent`] is resent.
    pub maybe_processed_retries: u32,
    /// Bytes of request body kept for replay, per request.
    pub buffer_per_request: usize,
    /// Bytes of request body kept for replay across all in-flight requests.
    pub buffer_total: usize,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            enabled: true,
            not_sent_retries: 5,
            refused_retries: 1,
            refused_backoff: Duration::from_millis(10),
            maybe_processed_retries: 0,
            buffer_per_request: 64 << 10,
            buffer_total: 16 << 20,
        }
    }
}

impl RetryPolicy {
    /// No transparent retry at all.
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            ..Self::default()
        }
    }
}

/// Settings of a [`Client`].
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PoolConfig {
    /// Settings of each connection.
    pub connection: ClientConfig,
    /// Connections kept per authority even when one would do (spreads load over the
    /// addresses a name resolves to).
    pub min_connections: usize,
    /// Connections opened per authority at most; beyond, requests queue on the least
    /// loaded one.
    pub max_connections: usize,
    /// Reconnection backoff (the gRPC connection-backoff spec by default).
    pub backoff: BackoffConfig,
    /// Retry behaviour.
    pub retry: RetryPolicy,
    /// Deadline of requests that carry no [`Deadline`].
    pub default_timeout: Option<Duration>,
    /// How requests are spread over an authority's addresses (the pool's least
    /// loaded connection by default; gRPC's `pick_first` or `round_robin`).
    pub balance: BalanceConfig,
    /// How long a request without a [`Deadline`] (and not [`FailFast`]) waits for a
    /// connection when none is ready — under a balancer, every address failed or
    /// none resolved yet — before it fails, never sent. `None` (the default): it
    /// fails at once. A proxy sets it so that a backend being replaced (its name
    /// re-resolved, its address reconnected) costs its calls a wait, not a failure.
    pub ready_wait: Option<Duration>,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            connection: ClientConfig::default(),
            min_connections: 1,
            max_connections: 8,
            backoff: BackoffConfig::default(),
            retry: RetryPolicy::default(),
            default_timeout: None,
            balance: BalanceConfig::default(),
            ready_wait: None,
        }
    }
}

/// After a connection closed with GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings"), the
/// keepalive time of new connections doubles (gRFC A8).
pub(crate) fn note_too_many_pings(keepalive_time: &Mutex<Option<Duration>>, conn: &SendRequest) {
    if !conn.goaway().is_some_and(|g| {
        g.code == steadfast_proto::ErrorCode::ENHANCE_YOUR_CALM
            && &g.debug_data[..] == b"too_many_pings"
    }) {
        return;
    }
    if let Ok(mut time) = keepalive_time.lock() {
        if let Some(t) = time.as_mut() {
            *t = t.saturating_mul(2);
            tracing::warn!(keepalive_time = ?*t, "server said too_many_pings: doubling the keepalive time");
        }
    }
}

/// Why a request was sent again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum RetryCause {
    NotSent = 0,
    RefusedGoAway = 1,
    RefusedStream = 2,
    MaybeProcessed = 3,
}

impl RetryCause {
    fn name(self) -> &'static str {
        match self {
            Self::NotSent => "not sent",
            Self::RefusedGoAway => "refused by GOAWAY",
            Self::RefusedStream => "REFUSED_STREAM",
            Self::MaybeProcessed => "idempotent, maybe processed",
        }
    }
}

/// An HTTP/2 client with a connection pool per authority and transparent retry of
/// requests the server provably never processed. Cheap to clone.
#[derive(Clone)]
pub struct Client {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("stats", &self.stats())
            .finish()
    }
}

struct Inner {
    config: PoolConfig,
    resolver: Arc<dyn Resolve>,
    /// Keyed by scheme and authority (both compared case-insensitively): found
    /// without formatting a string on every request.
    authorities: Mutex<HashMap<AuthorityKey, Arc<Authority>>>,
    counters: Arc<Counters>,
    buffer_available: Arc<super::replay::ByteBudget>,
}

type AuthorityKey = (http::uri::Scheme, http::uri::Authority);

struct Authority {
    /// `scheme://authority`, for connecting and for TLS names.
    uri: Uri,
    /// The keepalive time of new connections: the configured one, doubled each time
    /// the server answers GOAWAY(ENHANCE_YOUR_CALM, "too_many_pings") (gRFC A8).
    keepalive_time: Arc<Mutex<Option<Duration>>>,
    /// The subchannels and picker, under `pick_first` and `round_robin`; `None`
    /// under the pool's own least-loaded policy (`conns`).
    balancer: Option<Arc<Balancer>>,
    conns: Mutex<Vec<SendRequest>>,
    connecting: tokio::sync::Mutex<ConnectState>,
}

struct ConnectState {
    backoff: Backoff,
    /// No attempt before this.
    next_attempt: Option<tokio::time::Instant>,
    /// Rotates over resolved addresses.
    next_addr: usize,
    /// The connection opened last, and when, until it proves itself (the server
    /// answers a request on it: the backoff starts over) or ends without doing so
    /// (it counts as a failed attempt). SETTINGS alone prove nothing: a server that
    /// sends GOAWAY right after them on every connection would otherwise be
    /// reconnected to in a tight loop.
    unproven: Option<(SendRequest, tokio::time::Instant)>,
}

impl ConnectState {
    /// Settles the backoff on what became of the last connection opened.
    fn settle(&mut self, counters: &Counters) {
        let Some((conn, opened_at)) = &self.unproven else {
            return;
        };
        if conn.has_carried_stream() {
            self.backoff.reset();
            self.next_attempt = None;
            self.unproven = None;
        } else if conn.is_draining() || conn.is_closed() {
            let delay = self.backoff.next_delay();
            tracing::debug!(
                ?delay,
                "the last connection ended before carrying any request; backing off"
            );
            counters.connections_unused.fetch_add(1, Ordering::Relaxed);
            self.next_attempt = Some(*opened_at + delay);
            self.unproven = None;
        }
        // Still open and unproven (another connection is wanted alongside it): the
        // backoff stays as it is.
    }
}

impl Client {
    /// A client resolving names with the system resolver.
    pub fn new(config: PoolConfig) -> Self {
        Self::with_resolver(config, DnsResolver)
    }

    /// A client with its own name resolution.
    pub fn with_resolver(mut config: PoolConfig, resolver: impl Resolve) -> Self {
        let counters = Arc::new(Counters::default());
        config.connection.counters = Some(counters.connections.clone());
        Self {
            inner: Arc::new(Inner {
                buffer_available: Arc::new(super::replay::ByteBudget::new(
                    config.retry.buffer_total,
                )),
                config,
                resolver: Arc::new(resolver),
                authorities: Mutex::new(HashMap::new()),
                counters,
            }),
        }
    }

    /// The counters so far.
    pub fn stats(&self) -> ClientStats {
        let c = &self.inner.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        ClientStats {
            requests: get(&c.requests),
            succeeded: get(&c.succeeded),
            failed_not_sent: get(&c.failed[0]),
            failed_refused: get(&c.failed[1]),
            failed_maybe_processed: get(&c.failed[2]),
            failed_processed: get(&c.failed[3]),
            failed_other: get(&c.failed[4]),
            retries_not_sent: get(&c.retries[0]),
            retries_refused_goaway: get(&c.retries[1]),
            retries_refused_stream: get(&c.retries[2]),
            retries_maybe_processed: get(&c.retries[3]),
            connects: get(&c.connects),
            connect_failures: get(&c.connect_failures),
            connections_unused: get(&c.connections_unused),
            resolutions: get(&c.resolutions),
            connections: c.connections.get(),
        }
    }

    /// The subchannels behind `uri`'s authority under a `pick_first` or
    /// `round_robin` policy, in address order: state, health and last error of each
    /// (empty under the least-loaded policy, or before the first request).
    pub fn subchannels(&self, uri: &Uri) -> Vec<SubchannelInfo> {
        let Some(key) = authority_key(uri) else {
            return Vec::new();
        };
        let balancer = self
            .inner
            .authorities
            .lock()
            .ok()
            .and_then(|map| map.get(&key).and_then(|a| a.balancer.clone()));
        balancer.map(|b| b.subchannels()).unwrap_or_default()
    }

    /// Outlier ejection: requests to `uri`'s authority avoid the backend at `addr`
    /// for `duration` (under `round_robin` and `least_request`): it is
    /// picked only while no other READY backend is left. False when the authority has
    /// no such subchannel (or balances with the least-loaded policy).
    pub fn eject(&self, uri: &Uri, addr: std::net::SocketAddr, duration: Duration) -> bool {
        let Some(key) = authority_key(uri) else {
            return false;
        };
        let balancer = self
            .inner
            .authorities
            .lock()
            .ok()
            .and_then(|map| map.get(&key).and_then(|a| a.balancer.clone()));
        balancer.is_some_and(|b| b.eject(addr, tokio::time::Instant::now() + duration))
    }

    /// Resolves `uri`'s name and connects its subchannels as a request would, and
    /// waits until `done` holds for them (e.g. every subchannel READY). Returns at
    /// once under the least-loaded policy. Bound it with a timeout.
    pub async fn wait_for_subchannels(
        &self,
        uri: &Uri,
        done: impl Fn(&[SubchannelInfo]) -> bool,
    ) -> Result<(), Error> {
        let authority = self.authority(uri)?;
        if let Some(balancer) = &authority.balancer {
            balancer.wait_for(done).await;
        }
        Ok(())
    }

    /// The keepalive time new connections to `uri`'s authority will use: the
    /// configured one, doubled after each GOAWAY "too_many_pings" (gRFC A8). `None`
    /// when keepalive is off or nothing was sent to that authority yet.
    pub fn keepalive_time(&self, uri: &Uri) -> Option<Duration> {
        let key = authority_key(uri)?;
        let map = self.inner.authorities.lock().ok()?;
        let time = *map.get(&key)?.keepalive_time.lock().ok()?;
        time
    }

    /// Sends a request (its URI must name the scheme and authority) and waits for the
    /// response head, retrying transparently as the module documentation describes.
    pub async fn send<B>(&self, request: Request<B>) -> Result<Response<RecvBody>, Error>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let counters = &self.inner.counters;
        counters.requests.fetch_add(1, Ordering::Relaxed);
        let result = self.send_inner(request).await;
        match &result {
            Ok(_) => counters.succeeded.fetch_add(1, Ordering::Relaxed),
            Err(e) => {
                let i = match e.fate() {
                    Some(Fate::NotSent) => 0,
                    Some(Fate::Refused) => 1,
                    Some(Fate::MaybeProcessed) => 2,
                    Some(Fate::Processed) => 3,
                    None => 4,
                };
                counters.failed[i].fetch_add(1, Ordering::Relaxed)
            }
        };
        result
    }

    async fn send_inner<B>(&self, request: Request<B>) -> Result<Response<RecvBody>, Error>
    where
        B: Body<Data = Bytes> + Send + 'static,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        let deadline = parts
            .extensions
            .get::<Deadline>()
            .map(|d| tokio::time::Instant::from_std(d.0))
            .or_else(|| {
                self.inner
                    .config
                    .default_timeout
                    .map(|t| tokio::time::Instant::now() + t)
            });
        let idempotent = parts.extensions.get::<Idempotent>().is_some();
        let fail_fast = parts.extensions.get::<FailFast>().is_some();
        let timeout_header = parts.extensions.get::<TimeoutHeader>().cloned();
        let authority = self.authority(&parts.uri)?;
        let mut parts = parts;
        if let Some(SendAuthority(sent)) = parts.extensions.remove::<SendAuthority>() {
            let mut uri = std::mem::take(&mut parts.uri).into_parts();
            uri.authority = Some(sent);
            parts.uri = Uri::from_parts(uri).unwrap_or_else(|_| authority.uri.clone());
        }
        let policy = &self.inner.config.retry;
        // The retry buffer is taken as the body is kept, not reserved up front: a
        // request holds what its body really is, up to `buffer_per_request`, and
        // gives it back when its body is done with.
        let limit = if policy.enabled {
            policy.buffer_per_request
        } else {
            0
        };
        let replay = Replay::new(boxed(body), limit, self.inner.buffer_available.clone());
        let mut refused_left = policy.refused_retries;
        let mut not_sent_left = policy.not_sent_retries;
        let mut maybe_left = if idempotent {
            policy.maybe_processed_retries
        } else {
            0
        };
        let mut avoid: Option<SendRequest> = None;
        let mut last_error: Option<Error> = None;
        let mut refused_count = 0u32;
        let mut rng = SplitMix64(SplitMix64::seed());
        loop {
            let Some(body) = replay.attempt() else {
                // Only after an overflow, which ends the loop below: kept for safety.
                return Err(last_error.unwrap_or_else(|| Error::new(Kind::ConnectionGone)));
            };
            // Under a balancer, a request with a deadline that may wait (not FailFast)
            // waits through "every address failed" for one to become ready.
            // One without a deadline waits `PoolConfig::ready_wait`, if set.
            let ready_wait = self
                .inner
                .config
                .ready_wait
                .filter(|_| deadline.is_none() && !fail_fast);
            let wait_for_ready = (deadline.is_some() || ready_wait.is_some()) && !fail_fast;
            let connection = self.connection(&authority, avoid.as_ref(), wait_for_ready);
            let connection = match (deadline, ready_wait) {
                (Some(d), _) => match tokio::time::timeout_at(d, connection).await {
                    Ok(connection) => connection,
                    // No connection ever had the request.
                    Err(_) => {
                        return Err(Error::deadline_exceeded(Some(Fate::NotSent), None)
                            .context("the deadline passed while connecting"))
                    }
                },
                (None, Some(wait)) => match tokio::time::timeout(wait, connection).await {
                    Ok(connection) => connection,
                    // Asked once more without waiting: the error says why no address
                    // is ready (or one just became so).
                    Err(_) => self.connection(&authority, avoid.as_ref(), false).await,
                },
                (None, None) => connection.await,
            };
            let (conn, result) = match connection {
                Err(e) => (None, Err(e)),
                Ok(conn) => {
                    let mut request = rebuild(&parts, body);
                    if let Some(d) = deadline {
                        if let Some(header) = &timeout_header {
                            let left = d.saturating_duration_since(tokio::time::Instant::now());
                            request
                                .headers_mut()
                                .insert(header.name.clone(), (header.format)(left));
                        }
                        // The driver enforces it on the stream, to the body's end, and
                        // answers with the stream's fate at that moment.
                        request.extensions_mut().insert(Deadline(d.into_std()));
                    }
                    let send = conn.send(request);
                    let result = match deadline {
                        // Only if the driver does not answer by then (it stopped
                        // running): the request may have been written.
                        Some(d) => tokio::time::timeout_at(d + DRIVER_SLACK, send)
                            .await
                            .unwrap_or_else(|_| {
                                Err(Error::deadline_exceeded(Some(Fate::MaybeProcessed), None))
                            }),
                        None => send.await,
                    };
                    (Some(conn), result)
                }
            };
            let error = match result {
                Ok(response) => return Ok(response),
                Err(e) => e,
            };
            if !policy.enabled || error.is_deadline_exceeded() {
                // A deadline error is final whatever its fate: the time is up.
                return Err(error);
            }
            let cause = match error.fate() {
                // No connection could be had: without a deadline, fail fast rather than
                // wait for a target that may never come back. A balancer has waited
                // already, as long as the request may (see `connection`).
                Some(Fate::NotSent)
                    if conn.is_none()
                        && (deadline.is_none() || fail_fast || authority.balancer.is_some()) =>
                {
                    return Err(error)
                }
                Some(Fate::NotSent) if deadline.is_none() && not_sent_left == 0 => {
                    return Err(error.context(format!(
                        "not retried again: the request has no deadline and was resent \
                         {} times without ever being sent (RetryPolicy::not_sent_retries)",
                        policy.not_sent_retries
                    )));
                }
                Some(Fate::NotSent) => {
                    if deadline.is_none() {
                        not_sent_left -= 1;
                    }
                    RetryCause::NotSent
                }
                Some(Fate::Refused) if refused_left > 0 => {
                    refused_left -= 1;
                    if error.goaway().is_some() {
                        RetryCause::RefusedGoAway
                    } else {
                        RetryCause::RefusedStream
                    }
                }
                Some(Fate::MaybeProcessed) if maybe_left > 0 => {
                    maybe_left -= 1;
                    RetryCause::MaybeProcessed
                }
                _ => return Err(error),
            };
            if replay.overflowed() {
                return Err(
                    error.context("not retried: the request body exceeded the retry buffer")
                );
            }
            if matches!(cause, RetryCause::RefusedGoAway | RetryCause::RefusedStream) {
                refused_count += 1;
                if refused_count > 1 {
                    let exp = policy
                        .refused_backoff
                        .saturating_mul(1 << (refused_count - 2).min(16));
                    let wait = exp
                        .min(Duration::from_secs(1))
                        .mul_f64(0.8 + 0.4 * rng.next_f64());
                    let sleep = tokio::time::sleep(wait);
                    match deadline {
                        Some(d) if tokio::time::Instant::now() + wait >= d => {
                            return Err(error.context("deadline exceeded while waiting to retry"));
                        }
                        _ => sleep.await,
                    }
                }
            }
            self.inner.counters.retries[cause as usize].fetch_add(1, Ordering::Relaxed);
            tracing::debug!(cause = cause.name(), %error, "transparent retry");
            avoid = conn;
            last_error = Some(error);
        }
    }

    fn authority(&self, uri: &Uri) -> Result<Arc<Authority>, Error> {
        let (Some(scheme), Some(authority)) = (uri.scheme(), uri.authority()) else {
            return Err(Error::with_fate(
                Kind::Proto(steadfast_proto::Error::User(
                    steadfast_proto::UserError::MalformedHeaders(
                        "the request URI needs a scheme and an authority".into(),
                    ),
                )),
                Some(Fate::NotSent),
                None,
            ));
        };
        let key = (scheme.clone(), authority.clone());
        let inner = &self.inner;
        let mut map = self
            .inner
            .authorities
            .lock()
            .map_err(|_| Error::new(Kind::ConnectionGone))?;
        if let Some(entry) = map.get(&key) {
            return Ok(entry.clone());
        }
        let uri = format!("{scheme}://{authority}");
        let entry = map.entry(key).or_insert_with(|| {
            let uri: Uri = uri.parse().unwrap_or_default();
            let keepalive_time = Arc::new(Mutex::new(
                inner
                    .config
                    .connection
                    .proto
                    .keepalive
                    .as_ref()
                    .map(|k| k.time),
            ));
            let balancer = match inner.config.balance.policy {
                super::BalancePolicy::LeastLoaded => None,
                _ => Some(Balancer::new(BalancerParts {
                    uri: uri.clone(),
                    config: inner.config.balance.clone(),
                    resolver: inner.resolver.clone(),
                    connection: inner.config.connection.clone(),
                    backoff: inner.config.backoff.clone(),
                    keepalive_time: keepalive_time.clone(),
                    counters: inner.counters.clone(),
                })),
            };
            Arc::new(Authority {
                uri,
                keepalive_time,
                balancer,
                conns: Mutex::new(Vec::new()),
                connecting: tokio::sync::Mutex::new(ConnectState {
                    backoff: Backoff::new(self.inner.config.backoff.clone(), SplitMix64::seed()),
                    next_attempt: None,
                    next_addr: 0,
                    unproven: None,
                }),
            })
        });
        Ok(entry.clone())
    }

    /// A connection for the next attempt: the least loaded usable one, or a new one.
    /// A failure to connect is reported with fate `NotSent`; the next call waits for
    /// the backoff before trying again.
    async fn connection(
        &self,
        authority: &Authority,
        avoid: Option<&SendRequest>,
        wait_for_ready: bool,
    ) -> Result<SendRequest, Error> {
        if let Some(balancer) = &authority.balancer {
            return balancer.connection(avoid, wait_for_ready).await;
        }
        if let Some(conn) = self.pick(authority, avoid) {
            return Ok(conn);
        }
        let mut state = authority.connecting.lock().await;
        // Someone else may have connected while we waited for the lock.
        if let Some(conn) = self.pick(authority, avoid) {
            return Ok(conn);
        }
        state.settle(&self.inner.counters);
        if let Some(at) = state.next_attempt {
            tokio::time::sleep_until(at).await;
        }
        match self.connect(authority, &mut state).await {
            Ok(conn) => {
                // The server's SETTINGS arrived (connect waits for them), but the
                // backoff only starts over once the connection carries a request.
                state.next_attempt = None;
                state.unproven = Some((conn.clone(), tokio::time::Instant::now()));
                if let Ok(mut conns) = authority.conns.lock() {
                    conns.push(conn.clone());
                }
                Ok(conn)
            }
            Err(e) => {
                let delay = state.backoff.next_delay();
                tracing::debug!(error = %e, ?delay, "connect failed; backing off");
                state.next_attempt = Some(tokio::time::Instant::now() + delay);
                Err(e.with_fate_if_none(Fate::NotSent))
            }
        }
    }

    /// The least loaded open, non-draining connection with a free stream, preferring
    /// one other than `avoid`; `None` when a new connection should be opened.
    fn pick(&self, authority: &Authority, avoid: Option<&SendRequest>) -> Option<SendRequest> {
        let config = &self.inner.config;
        let mut conns = authority.conns.lock().ok()?;
        conns.retain(|c| {
            if !c.is_closed() {
                return true;
            }
            note_too_many_pings(&authority.keepalive_time, c);
            false
        });
        // Runs on every request: no allocation. Prefer the least loaded usable
        // connection other than `avoid`, falling back to `avoid` itself.
        let usable = || conns.iter().filter(|c| !c.is_draining());
        let is_avoided = |c: &SendRequest| avoid.is_some_and(|a| a.same_connection(c));
        let best = usable().min_by_key(|c| (is_avoided(c), c.in_flight()))?;
        let open = usable().count();
        let has_room = (best.in_flight() as u64) < u64::from(best.peer_max_concurrent_streams());
        if open >= config.max_connections || (has_room && open >= config.min_connections) {
            // At the cap, requests queue on the least loaded connection.
            Some(best.clone())
        } else {
            None
        }
    }

    async fn connect(
        &self,
        authority: &Authority,
        state: &mut ConnectState,
    ) -> Result<SendRequest, Error> {
        let uri = &authority.uri;
        let host = uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let tls = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        let counters = &self.inner.counters;
        let addrs = self
            .inner
            .resolver
            .resolve(&host, port)
            .await
            .map_err(|source| {
                Error::new(Kind::Resolve {
                    host: host.clone(),
                    source,
                })
            })?;
        if addrs.is_empty() {
            counters.connect_failures.fetch_add(1, Ordering::Relaxed);
            return Err(Error::new(Kind::Resolve {
                host: host.clone(),
                source: std::io::Error::other("no addresses"),
            }));
        }
        let mut config = self.inner.config.connection.clone();
        // gRPC connection backoff: an attempt gets max(MIN_CONNECT_TIMEOUT, backoff).
        config.connect_timeout = state.backoff.connect_timeout();
        if let (Some(keepalive), Ok(time)) = (
            config.proto.keepalive.as_mut(),
            authority.keepalive_time.lock(),
        ) {
            if let Some(time) = *time {
                keepalive.time = time;
            }
        }
        let mut last = None;
        // Try each address once, starting after the one used last (spreads connections).
        for i in 0..addrs.len() {
            let addr = addrs[(state.next_addr + i) % addrs.len()];
            let result = async { connect_to(uri, Some(addr), &config).await }
                .instrument(super::connection::tcp_span())
                .await;
            match result {
                Ok(conn) => {
                    state.next_addr = (state.next_addr + i + 1) % addrs.len();
                    counters.connects.fetch_add(1, Ordering::Relaxed);
                    return Ok(conn);
                }
                Err(e) => {
                    counters.connect_failures.fetch_add(1, Ordering::Relaxed);
                    last = Some(e);
                }
            }
        }
        state.next_addr = (state.next_addr + 1) % addrs.len();
        Err(last.unwrap_or_else(|| Error::new(Kind::ConnectionGone)))
    }
}

/// `Client` as a `tower::Service`: always ready (connections are made, and waited
/// for, per request); `call` is [`Client::send`], transparent retry included.
impl<B> tower_service::Service<Request<B>> for Client
where
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<BoxError>,
{
    type Response = Response<RecvBody>;
    type Error = Error;
    type Future = std::pin::Pin<
        Box<dyn std::future::Future<Output = Result<Response<RecvBody>, Error>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let client = self.clone();
        Box::pin(async move { client.send(request).await })
    }
}

/// The key of `uri`'s authority.
fn authority_key(uri: &Uri) -> Option<AuthorityKey> {
    Some((uri.scheme()?.clone(), uri.authority()?.clone()))
}

/// A new attempt of the same request.
fn rebuild(
    parts: &http::request::Parts,
    body: super::replay::ReplayBody,
) -> Request<super::replay::ReplayBody> {
    let mut request = Request::new(body);
    *request.method_mut() = parts.method.clone();
    *request.uri_mut() = parts.uri.clone();
    *request.headers_mut() = parts.headers.clone();
    request
}
