//! Load balancing over subchannels: `pick_first` and `round_robin`, as gRPC's
//! `load-balancing.md`, gRFC A62 (pick_first) and A17 (client-side health checking)
//! describe them.
//!
//! Under either policy an authority has a *subchannel* per resolved address, each
//! with a [`ConnectivityState`], at most one connection and its own connection
//! backoff (gRPC's connection-backoff spec). A picker chooses, for every request
//! attempt, a READY subchannel:
//! - `round_robin` connects to every address and takes READY subchannels in turn; a
//!   subchannel whose connection drains (GOAWAY) or fails is reconnected at once (or
//!   after its backoff, when the connection did no work), and with a [`HealthCheck`]
//!   it is READY only while its backend says SERVING;
//! - `pick_first` tries the addresses in order (shuffled once per resolution with
//!   `shuffle_address_list`), one at a time, and keeps the first that connects until
//!   its connection ends; then the next request starts over from the first address.
//!   (Health checking does not apply to pick_first, as A17 says.)
//!
//! A request that finds no READY subchannel waits while one is connecting. When every
//! subchannel failed, a request with a deadline waits for one to become ready until
//! its deadline (gRPC's `waitForReady`); one without a deadline, or marked
//! [`FailFast`](super::FailFast) (what a gRPC channel does unless `waitForReady`),
//! fails at once with [`Error::no_ready_address`], fate `NotSent`, naming every
//! address with its state and last error.
//!
//! The name is resolved again when a connection receives GOAWAY, when a connection
//! attempt or a connection fails, and when every address failed, never more often
//! than [`BalanceConfig::min_resolve_interval`] (a request made inside the interval
//! is carried out at its end). Subchannels of addresses that remain keep their
//! connections; the others are shut down gracefully.
//!
//! The transparent retry by fate stays underneath: a request refused or never sent
//! on a subchannel's connection is retried, preferably on another READY subchannel.

use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use tracing::Instrument;

use http::Uri;
use tokio::sync::watch;
use tokio::time::Instant;

use super::backoff::{BackoffConfig, SplitMix64};
use super::connection::{connect_to, ClientConfig, SendRequest};
use super::picker::{self, Candidate, Decision};
use super::pool::{note_too_many_pings, Counters};
use super::resolve::Resolve;
use super::subchannel::{run_pass, run_subchannel, Subchannel};
use crate::error::Error;

/// The connectivity state of a subchannel (grpc's `connectivity-semantics-and-api.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ConnectivityState {
    /// No connection, and none being made.
    Idle,
    /// A connection is being made (or, under health checking, the backend has not
    /// answered the first health check yet).
    Connecting,
    /// Requests may be sent.
    Ready,
    /// The last connection attempt failed (the subchannel waits for its backoff), or
    /// the backend says it is not serving.
    TransientFailure,
}

impl fmt::Display for ConnectivityState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Idle => "IDLE",
            Self::Connecting => "CONNECTING",
            Self::Ready => "READY",
            Self::TransientFailure => "TRANSIENT_FAILURE",
        })
    }
}

/// How a [`Client`](super::Client) spreads requests over the addresses of an
/// authority.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum BalancePolicy {
    /// The pool's own, and the default: connections per authority
    /// ([`PoolConfig::min_connections`](super::PoolConfig) to `max_connections`),
    /// each to the next address the resolver gives, requests on the least loaded.
    LeastLoaded,
    /// gRPC's `pick_first`: one connection, to the first address that answers.
    PickFirst {
        /// Shuffle the addresses of each resolution before trying them (gRFC A62),
        /// so that clients given the same list do not all pick the same backend.
        shuffle_address_list: bool,
    },
    /// gRPC's `round_robin`: a connection to every address, requests in turn over
    /// the READY ones.
    RoundRobin,
    /// Least request with the power of two choices (Envoy's `LEAST_REQUEST`, gRFC
    /// A48): a connection to every address, like `round_robin`; each request goes to
    /// the less loaded (fewer requests in flight) of two READY subchannels drawn at
    /// random.
    LeastRequest,
}

impl BalancePolicy {
    /// Connects every address and health-checks each (`round_robin`,
    /// `least_request`), rather than keeping one connection (`pick_first`).
    fn connects_all(&self) -> bool {
        matches!(self, Self::RoundRobin | Self::LeastRequest)
    }
}

impl fmt::Display for BalancePolicy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::LeastLoaded => "least_loaded",
            Self::PickFirst { .. } => "pick_first",
            Self::RoundRobin => "round_robin",
            Self::LeastRequest => "least_request",
        })
    }
}

/// Load-balancing settings of a [`Client`](super::Client).
#[derive(Clone)]
#[non_exhaustive]
pub struct BalanceConfig {
    /// The policy. Default: [`BalancePolicy::LeastLoaded`].
    pub policy: BalancePolicy,
    /// Re-resolutions of a name are at least this far apart. Default: 30 s, as
    /// grpc's DNS resolver (`grpc.dns_min_time_between_resolutions_ms`).
    pub min_resolve_interval: Duration,
    /// Health checking of each subchannel's backend (round_robin only).
    pub health_check: Option<Arc<dyn HealthCheck>>,
}

impl Default for BalanceConfig {
    fn default() -> Self {
        Self {
            policy: BalancePolicy::LeastLoaded,
            min_resolve_interval: Duration::from_secs(30),
            health_check: None,
        }
    }
}

impl fmt::Debug for BalanceConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BalanceConfig")
            .field("policy", &self.policy)
            .field("min_resolve_interval", &self.min_resolve_interval)
            .field("health_check", &self.health_check.is_some())
            .finish()
    }
}

/// A health check run on each connection of a subchannel (gRFC A17). The HTTP/2
/// client knows nothing of gRPC: `steadfast-grpc` implements it with
/// `grpc.health.v1.Health/Watch`.
pub trait HealthCheck: Send + Sync + 'static {
    /// Watches the backend behind `connection`, telling `report` what it says, for
    /// as long as it likes (retrying with backoff when the watch fails). The future
    /// is dropped when the connection drains or closes, or the subchannel goes away.
    /// Until the first report, the subchannel is CONNECTING.
    fn watch(
        &self,
        connection: SendRequest,
        report: HealthReport,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// What the health check of a subchannel's current connection says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Health {
    /// No answer yet: the subchannel is CONNECTING.
    Unknown,
    /// The backend serves: READY.
    Serving,
    /// The backend does not serve, or the check failed (why): TRANSIENT_FAILURE.
    NotServing(String),
    /// The backend has no health service (why): checking is off for this
    /// connection, and the subchannel is READY.
    Disabled(String),
}

/// Where a [`HealthCheck`] reports. Reports about a connection the subchannel no
/// longer uses are ignored.
pub struct HealthReport {
    balancer: Weak<Balancer>,
    subchannel: Arc<Subchannel>,
    generation: u64,
}

impl fmt::Debug for HealthReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthReport")
            .field("address", &self.subchannel.addr)
            .field("generation", &self.generation)
            .finish()
    }
}

impl HealthReport {
    /// The address of the subchannel.
    pub fn address(&self) -> SocketAddr {
        self.subchannel.addr
    }

    /// The backend serves.
    pub fn serving(&self) {
        self.set(Health::Serving);
    }

    /// The backend does not serve, or the health check failed: `why` is what
    /// requests that find no ready address are told.
    pub fn not_serving(&self, why: impl Into<String>) {
        self.set(Health::NotServing(why.into()));
    }

    /// The backend cannot be checked (it has no health service): treat it as
    /// serving.
    pub fn disabled(&self, why: impl Into<String>) {
        self.set(Health::Disabled(why.into()));
    }

    fn set(&self, health: Health) {
        let Some(balancer) = self.balancer.upgrade() else {
            return;
        };
        {
            let Ok(mut sub) = self.subchannel.inner.lock() else {
                return;
            };
            if sub.generation != self.generation || sub.conn.is_none() {
                return;
            }
            if sub.health.as_ref() == Some(&health) {
                return;
            }
            tracing::debug!(address = %self.subchannel.addr, ?health, "health check");
            if let Health::NotServing(why) = &health {
                sub.last_error = Some(format!("health check: {why}"));
            }
            sub.health = Some(health);
        }
        balancer.notify();
    }
}

/// What a subchannel is doing, for diagnostics and tests
/// ([`Client::subchannels`](super::Client::subchannels)).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SubchannelInfo {
    /// The address.
    pub address: SocketAddr,
    /// Its state.
    pub state: ConnectivityState,
    /// What the health check of its connection says (`None`: no check running).
    pub health: Option<Health>,
    /// The last thing that went wrong (connect error, GOAWAY, health), if any.
    pub last_error: Option<String>,
    /// Ejected by outlier detection ([`Client::eject`](super::Client::eject)) now.
    pub ejected: bool,
}

/// The subchannels of one authority, and the picker over them.
pub(crate) struct Balancer {
    weak: Weak<Balancer>,
    uri: Uri,
    /// `scheme://host:port`, for messages.
    target: String,
    host: String,
    port: u16,
    config: BalanceConfig,
    resolver: Arc<dyn Resolve>,
    connection: ClientConfig,
    backoff: BackoffConfig,
    keepalive_time: Arc<Mutex<Option<Duration>>>,
    counters: Arc<Counters>,
    pub(super) state: Mutex<State>,
    /// Bumped on every change a waiting request may care about.
    pub(super) changed: watch::Sender<u64>,
    /// Set when the balancer is dropped: its resolution task ends.
    pub(super) stop: watch::Sender<bool>,
}

pub(super) struct State {
    pub(super) subchannels: Vec<Arc<Subchannel>>,
    /// A resolution is running or scheduled.
    resolving: bool,
    resolved_once: bool,
    last_resolution: Option<Instant>,
    resolution_error: Option<String>,
    cursor: usize,
    /// pick_first's choice.
    selected: Option<SocketAddr>,
    /// pick_first's connection pass is running.
    pub(super) pass_running: bool,
    rng: SplitMix64,
}

/// What a balancer needs from its client.
pub(crate) struct BalancerParts {
    pub(crate) uri: Uri,
    pub(crate) config: BalanceConfig,
    pub(crate) resolver: Arc<dyn Resolve>,
    pub(crate) connection: ClientConfig,
    pub(crate) backoff: BackoffConfig,
    pub(crate) keepalive_time: Arc<Mutex<Option<Duration>>>,
    pub(crate) counters: Arc<Counters>,
}

impl Drop for Balancer {
    fn drop(&mut self) {
        self.stop.send_replace(true);
        if let Ok(state) = self.state.get_mut() {
            for sub in &state.subchannels {
                sub.stop.send_replace(true);
            }
        }
    }
}

impl Balancer {
    pub(crate) fn new(parts: BalancerParts) -> Arc<Self> {
        let tls = parts.uri.scheme_str() == Some("https");
        let host = parts
            .uri
            .host()
            .unwrap_or_default()
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let port = parts.uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
        Arc::new_cyclic(|weak| Self {
            weak: weak.clone(),
            target: format!(
                "{}://{}",
                parts.uri.scheme_str().unwrap_or("http"),
                parts.uri.authority().map_or("", |a| a.as_str())
            ),
            uri: parts.uri,
            host,
            port,
            config: parts.config,
            resolver: parts.resolver,
            connection: parts.connection,
            backoff: parts.backoff,
            keepalive_time: parts.keepalive_time,
            counters: parts.counters,
            state: Mutex::new(State {
                subchannels: Vec::new(),
                resolving: false,
                resolved_once: false,
                last_resolution: None,
                resolution_error: None,
                cursor: 0,
                selected: None,
                pass_running: false,
                rng: SplitMix64::new(SplitMix64::seed()),
            }),
            changed: watch::Sender::new(0),
            stop: watch::Sender::new(false),
        })
    }

    pub(super) fn notify(&self) {
        self.changed.send_modify(|v| *v = v.wrapping_add(1));
    }

    /// A connection for the next attempt of a request, avoiding `avoid` (the one its
    /// last attempt failed on) when another subchannel is READY.
    pub(crate) async fn connection(
        &self,
        avoid: Option<&SendRequest>,
        wait_for_ready: bool,
    ) -> Result<SendRequest, Error> {
        let mut changed = self.changed.subscribe();
        loop {
            match self.decide(avoid) {
                Ok(conn) => return Ok(conn),
                Err(Some(error)) if !wait_for_ready => return Err(error),
                Err(_) => {}
            }
            // The sender lives in `self`: it cannot be dropped while we wait.
            let _ = changed.changed().await;
        }
    }

    /// What the subchannels are doing, in address order.
    pub(crate) fn subchannels(&self) -> Vec<SubchannelInfo> {
        let subs = match self.state.lock() {
            Ok(state) => state.subchannels.clone(),
            Err(_) => return Vec::new(),
        };
        subs.iter().map(|s| s.info()).collect()
    }

    /// Ejects the subchannel of `addr` until `until`; false if there is none.
    pub(crate) fn eject(&self, addr: SocketAddr, until: Instant) -> bool {
        let Ok(state) = self.state.lock() else {
            return false;
        };
        let Some(sub) = state.subchannels.iter().find(|s| s.addr == addr) else {
            return false;
        };
        if let Ok(mut s) = sub.inner.lock() {
            s.ejected_until = Some(until);
        }
        drop(state);
        self.notify();
        true
    }

    /// Waits until `done` holds for the subchannels, starting resolution and
    /// connections as a request would.
    pub(crate) async fn wait_for(&self, done: impl Fn(&[SubchannelInfo]) -> bool) {
        let mut changed = self.changed.subscribe();
        loop {
            if let Ok(mut state) = self.state.lock() {
                if state.subchannels.is_empty() {
                    self.resolve(&mut state);
                } else {
                    self.kick(&mut state);
                }
            }
            if done(&self.subchannels()) {
                return;
            }
            let _ = changed.changed().await;
        }
    }

    /// A connection, or `Err(None)` to wait for a change, or the error to fail with.
    fn decide(&self, avoid: Option<&SendRequest>) -> Result<SendRequest, Option<Error>> {
        let Ok(mut state) = self.state.lock() else {
            return Err(Some(Error::no_ready_address(
                "the balancer's state is poisoned",
            )));
        };
        if state.subchannels.is_empty() {
            if !state.resolved_once || state.resolving {
                self.resolve(&mut state);
                return Err(None);
            }
            self.resolve(&mut state);
            return Err(Some(Error::no_ready_address(format!(
                "{} has no address for {}: {}",
                self.config.policy,
                self.target,
                state
                    .resolution_error
                    .as_deref()
                    .unwrap_or("the name resolved to none")
            ))));
        }
        let views: Vec<(ConnectivityState, Option<SendRequest>)> =
            state.subchannels.iter().map(|s| s.effective()).collect();
        let candidates: Vec<Candidate> = views
            .iter()
            .zip(&state.subchannels)
            .map(|((state, conn), sub)| Candidate {
                state: *state,
                // An ejected backend is used only when no other READY one is left
                // (Envoy's panic threshold at 100%: better than failing).
                avoided: sub.is_ejected()
                    || match (conn, avoid) {
                        (Some(c), Some(a)) => c.same_connection(a),
                        _ => false,
                    },
                load: conn.as_ref().map_or(0, SendRequest::in_flight),
            })
            .collect();
        let decision = match self.config.policy {
            BalancePolicy::RoundRobin => picker::round_robin(&candidates, &mut state.cursor),
            BalancePolicy::LeastRequest => picker::least_request(&candidates, &mut state.rng),
            _ => {
                let selected = state
                    .selected
                    .and_then(|a| state.subchannels.iter().position(|s| s.addr == a));
                picker::pick_first(&candidates, selected)
            }
        };
        match decision {
            Decision::Pick(i) => {
                if let Some(conn) = views[i].1.clone() {
                    if matches!(self.config.policy, BalancePolicy::PickFirst { .. }) {
                        state.selected = Some(state.subchannels[i].addr);
                    }
                    return Ok(conn);
                }
                // A READY view always has its connection; treated as a change.
                Err(None)
            }
            Decision::Queue => {
                self.kick(&mut state);
                Err(None)
            }
            Decision::Fail => {
                self.kick(&mut state);
                // Every address failed: maybe the name points elsewhere now.
                self.resolve(&mut state);
                Err(Some(Error::no_ready_address(self.all_failed(&state))))
            }
        }
    }

    fn all_failed(&self, state: &State) -> String {
        let mut message = format!(
            "{} found no ready address for {} among {}: ",
            self.config.policy,
            self.target,
            state.subchannels.len()
        );
        for (i, sub) in state.subchannels.iter().enumerate() {
            let info = sub.info();
            if i > 0 {
                message.push_str("; ");
            }
            message.push_str(&format!("{} {}", info.address, info.state));
            if let Some(error) = info.last_error {
                message.push_str(&format!(" ({error})"));
            }
        }
        if let Some(error) = &state.resolution_error {
            message.push_str(&format!("; the last resolution failed: {error}"));
        }
        message
    }

    /// Makes sure the subchannels are being connected, as the policy wants.
    fn kick(&self, state: &mut State) {
        match self.config.policy {
            BalancePolicy::RoundRobin | BalancePolicy::LeastRequest => {
                for sub in &state.subchannels {
                    let start = sub
                        .inner
                        .lock()
                        .map(|mut s| !std::mem::replace(&mut s.task_running, true))
                        .unwrap_or(false);
                    if start {
                        tokio::spawn(run_subchannel(self.weak.clone(), sub.clone()));
                    }
                }
            }
            _ => {
                let connected = state
                    .subchannels
                    .iter()
                    .any(|s| s.inner.lock().is_ok_and(|s| s.conn.is_some()));
                if !state.pass_running && !connected {
                    state.pass_running = true;
                    tokio::spawn(run_pass(self.weak.clone()));
                }
            }
        }
    }

    /// Asks for a resolution: now, or at the end of the minimum interval since the
    /// last one; nothing if one is already running or scheduled.
    fn resolve(&self, state: &mut State) {
        if state.resolving {
            return;
        }
        state.resolving = true;
        let at = state
            .last_resolution
            .map(|t| t + self.config.min_resolve_interval);
        let weak = self.weak.clone();
        let mut stop = self.stop.subscribe();
        tokio::spawn(async move {
            if let Some(at) = at {
                tokio::select! {
                    _ = tokio::time::sleep_until(at) => {}
                    _ = stop.wait_for(|s| *s) => return,
                }
            }
            let Some(balancer) = weak.upgrade() else {
                return;
            };
            if let Ok(mut state) = balancer.state.lock() {
                state.last_resolution = Some(Instant::now());
            }
            let lookup = balancer.resolver.resolve(&balancer.host, balancer.port);
            let timeout = balancer
                .connection
                .connect_timeout
                .max(Duration::from_secs(1));
            let result = match tokio::time::timeout(timeout, lookup).await {
                Ok(result) => result,
                Err(_) => Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("no answer within {timeout:?}"),
                )),
            };
            balancer.apply_resolution(result);
        });
    }

    fn apply_resolution(&self, result: std::io::Result<Vec<SocketAddr>>) {
        self.counters.resolutions.fetch_add(1, Ordering::Relaxed);
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.resolving = false;
        state.resolved_once = true;
        match result {
            Err(e) => {
                tracing::debug!(host = %self.host, error = %e, "resolution failed; keeping the addresses");
                state.resolution_error = Some(format!("resolving {}: {e}", self.host));
            }
            Ok(addrs) if addrs.is_empty() => {
                state.resolution_error = Some(format!("resolving {}: no addresses", self.host));
            }
            Ok(resolved) => {
                state.resolution_error = None;
                let mut addrs: Vec<SocketAddr> = Vec::with_capacity(resolved.len());
                for addr in resolved {
                    if !addrs.contains(&addr) {
                        addrs.push(addr);
                    }
                }
                let same_set = addrs.len() == state.subchannels.len()
                    && addrs
                        .iter()
                        .all(|a| state.subchannels.iter().any(|s| s.addr == *a));
                if !same_set {
                    if let BalancePolicy::PickFirst {
                        shuffle_address_list: true,
                    } = self.config.policy
                    {
                        picker::shuffle(&mut addrs, &mut state.rng);
                    }
                    tracing::info!(host = %self.host, ?addrs, "resolved");
                    let old = std::mem::take(&mut state.subchannels);
                    state.subchannels = addrs
                        .iter()
                        .map(|a| {
                            old.iter()
                                .find(|s| s.addr == *a)
                                .cloned()
                                .unwrap_or_else(|| Subchannel::new(*a, &self.backoff))
                        })
                        .collect();
                    for sub in old.iter().filter(|s| !addrs.contains(&s.addr)) {
                        sub.stop.send_replace(true);
                        if let Ok(mut s) = sub.inner.lock() {
                            s.conn = None;
                        }
                    }
                    if state.selected.is_some_and(|a| !addrs.contains(&a)) {
                        state.selected = None;
                    }
                }
            }
        }
        self.kick(&mut state);
        drop(state);
        self.notify();
    }

    /// One connection attempt of `sub`; its state follows the outcome.
    pub(super) async fn connect(&self, sub: &Arc<Subchannel>) -> Result<(SendRequest, u64), Error> {
        let mut config = self.connection.clone();
        if let Ok(mut s) = sub.inner.lock() {
            s.state = ConnectivityState::Connecting;
            config.connect_timeout = s.backoff.connect_timeout();
        }
        if let (Some(keepalive), Ok(time)) =
            (config.proto.keepalive.as_mut(), self.keepalive_time.lock())
        {
            if let Some(time) = *time {
                keepalive.time = time;
            }
        }
        self.notify();
        let uri = &self.uri;
        let result = async { connect_to(uri, Some(sub.addr), &config).await }
            .instrument(super::connection::tcp_span())
            .await;
        let outcome = match result {
            Ok(conn) => {
                self.counters.connects.fetch_add(1, Ordering::Relaxed);
                let Ok(mut s) = sub.inner.lock() else {
                    return Err(Error::no_ready_address("poisoned"));
                };
                s.generation += 1;
                s.conn = Some(conn.clone());
                s.state = ConnectivityState::Ready;
                s.next_attempt = None;
                s.health = (self.config.health_check.is_some()
                    && self.config.policy.connects_all())
                .then_some(Health::Unknown);
                tracing::debug!(address = %sub.addr, "subchannel connected");
                Ok((conn, s.generation))
            }
            Err(e) => {
                self.counters
                    .connect_failures
                    .fetch_add(1, Ordering::Relaxed);
                if let Ok(mut s) = sub.inner.lock() {
                    let delay = s.backoff.next_delay();
                    tracing::debug!(address = %sub.addr, error = %e, ?delay, "subchannel connect failed");
                    s.state = ConnectivityState::TransientFailure;
                    s.last_error = Some(e.clone().without_fate().to_string());
                    s.next_attempt = Some(Instant::now() + delay);
                }
                if let Ok(mut state) = self.state.lock() {
                    self.resolve(&mut state);
                }
                Err(e)
            }
        };
        self.notify();
        outcome
    }

    /// Runs the health check on `conn` (round_robin with a check configured).
    pub(super) fn start_health_check(
        &self,
        sub: &Arc<Subchannel>,
        conn: &SendRequest,
        generation: u64,
    ) {
        let Some(check) = self.config.health_check.clone() else {
            return;
        };
        if !self.config.policy.connects_all() {
            return;
        }
        let report = HealthReport {
            balancer: self.weak.clone(),
            subchannel: sub.clone(),
            generation,
        };
        let watch = check.watch(conn.clone(), report);
        let conn = conn.clone();
        let sub = sub.clone();
        tokio::spawn(async move {
            tokio::select! {
                _ = watch => {}
                _ = conn.until_draining() => {}
                _ = sub.stopped() => {}
            }
        });
    }

    /// The connection of `sub` ended (GOAWAY or closed): back to IDLE when it did
    /// work, else TRANSIENT_FAILURE with a backoff; resolution is asked for.
    pub(super) fn connection_ended(
        &self,
        sub: &Subchannel,
        conn: &SendRequest,
        opened_at: Instant,
    ) {
        note_too_many_pings(&self.keepalive_time, conn);
        let reason = conn.end_reason().map_or_else(
            || "the connection ended".to_owned(),
            |e| e.without_fate().to_string(),
        );
        tracing::debug!(address = %sub.addr, %reason, "subchannel connection ended");
        if let Ok(mut s) = sub.inner.lock() {
            s.conn = None;
            s.health = None;
            s.last_error = Some(reason);
            if conn.has_carried_stream() {
                s.backoff.reset();
                s.next_attempt = None;
                s.state = ConnectivityState::Idle;
            } else {
                // It did no work (say, GOAWAY right after SETTINGS): a failed attempt.
                self.counters
                    .connections_unused
                    .fetch_add(1, Ordering::Relaxed);
                let delay = s.backoff.next_delay();
                s.next_attempt = Some(opened_at + delay);
                s.state = ConnectivityState::TransientFailure;
            }
        }
        if let Ok(mut state) = self.state.lock() {
            if state.selected == Some(sub.addr) {
                state.selected = None;
            }
            self.resolve(&mut state);
        }
        self.notify();
    }
}
