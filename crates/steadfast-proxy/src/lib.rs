//! steadfast-proxy: a gRPC-aware HTTP/2 reverse proxy that retries, on another
//! backend, every call its backends provably did not process.
//!
//! A call comes in on a listener (h2c or TLS with ALPN `h2`) and goes through:
//! - **route**: the first route whose `:authority` and path (a gRPC service or a
//!   prefix) match names a cluster; none → UNIMPLEMENTED (HTTP 404 for plain HTTP);
//! - **deadline**: the client's `grpc-timeout`, counted from the call's arrival, and
//!   the route's `timeout` if shorter; the backend is sent the time *left*, and the
//!   proxy enforces it itself (the backend stream is reset at the deadline);
//! - **forward**: the cluster's [`steadfast::Client`] picks a backend for this call
//!   (`round_robin` or `least_request`, per call, not per connection), only among
//!   backends whose `grpc.health.v1` check says SERVING; headers, body and trailers
//!   pass through as they are (Trailers-Only stays Trailers-Only), with end-to-end
//!   flow control;
//! - **retry by fate**: a call that was never sent, or that a backend refused (above
//!   a GOAWAY's last-stream-id, or RST_STREAM REFUSED_STREAM), is sent to another
//!   backend, its body replayed from a bounded buffer;
//! - **answer**: when every attempt was refused, the proxy refuses the call in turn
//!   with RST_STREAM(REFUSED_STREAM), so the client may retry it at no risk; a call
//!   no backend could take is UNAVAILABLE saying it was never sent; a backend that
//!   failed after the call was sent gives UNAVAILABLE saying it may have processed it.
//!
//! The service is a stack of small tower layers (see [`ProxyService`]): routing,
//! the call's record (access log and metrics), deadlines, and forwarding; below
//! them, the cluster's [`steadfast::Client`] does per-call balancing, retry by fate
//! and the connection pool. [`config`] is the TOML file and its checks.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod answer;
mod body;
mod cluster;
pub mod config;
mod deadline;
mod forward;
pub mod metrics;
mod outlier;
mod record;
mod router;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use steadfast::client::{DnsResolver, Resolve, SubchannelInfo};
use steadfast::{Server, ServerConfig, ShutdownHandle};
use tokio::task::JoinSet;

pub use body::ProxyBody;
pub use config::{Config, ConfigError};
pub use forward::ProxyService;

use cluster::Cluster;
use forward::Table;
use router::Route;

/// A proxy: its configuration, built into routes and clusters.
pub struct Proxy {
    config: RwLock<Config>,
    /// How `dns` clusters resolve their name.
    dns: Arc<dyn Resolve>,
    table: Arc<RwLock<Arc<Table>>>,
    metrics: Arc<metrics::ProxyMetrics>,
    listener_stats: std::sync::Mutex<Vec<steadfast::StatsHandle>>,
}

impl std::fmt::Debug for Proxy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Proxy")
            .field("config", &self.config)
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

fn build(
    config: &Config,
    old: Option<&Table>,
    dns: &Arc<dyn Resolve>,
) -> Result<Table, ConfigError> {
    config.validate()?;
    // A cluster whose configuration did not change keeps its client, and so its
    // connections and health state.
    let mut kept: HashMap<&str, Arc<Cluster>> = HashMap::new();
    if let Some(old) = old {
        for route in &old.routes {
            kept.insert(&route.cluster.config.name, route.cluster.clone());
        }
    }
    let mut clusters: HashMap<&str, Arc<Cluster>> = HashMap::new();
    for c in &config.clusters {
        let cluster = match kept.get(c.name.as_str()) {
            Some(old) if old.config == *c && old.limits == config.limits => old.clone(),
            _ => Arc::new(Cluster::new(c, &config.limits, dns)?),
        };
        clusters.insert(&c.name, cluster);
    }
    let routes = config
        .routes
        .iter()
        .enumerate()
        .map(|(i, r)| {
            // `validate` checked that the cluster exists.
            let cluster = clusters
                .get(r.cluster.as_str())
                .cloned()
                .ok_or_else(|| ConfigError {
                    key: format!("route[{i}].cluster"),
                    message: format!("no [[cluster]] is named {:?}", r.cluster),
                })?;
            Route::new(i, r, cluster).map(Arc::new)
        })
        .collect::<Result<_, _>>()?;
    Ok(Table { routes })
}

impl Proxy {
    /// Builds the routes and clusters of `config` (nothing is bound or connected yet).
    pub fn new(config: Config) -> Result<Self, ConfigError> {
        Self::with_resolver(config, DnsResolver)
    }

    /// Like [`Proxy::new`], with `dns` clusters resolved by `resolver` rather than
    /// the system's resolver (a service registry, say). It is asked as the system's
    /// would be: at a cluster's first call, then when a backend fails or goes away,
    /// at most once a second.
    pub fn with_resolver(config: Config, resolver: impl Resolve) -> Result<Self, ConfigError> {
        let dns: Arc<dyn Resolve> = Arc::new(resolver);
        let table = build(&config, None, &dns)?;
        Ok(Self {
            dns,
            config: RwLock::new(config),
            table: Arc::new(RwLock::new(Arc::new(table))),
            metrics: Arc::default(),
            listener_stats: std::sync::Mutex::default(),
        })
    }

    /// The service that forwards requests, to run on a [`steadfast::Server`] of your
    /// own; [`Proxy::bind`] runs it on the configured listeners.
    pub fn service(&self) -> ProxyService {
        ProxyService::new(self.table.clone(), self.metrics.clone())
    }

    /// Registers the proxy's metrics (see [`metrics`]) into `registry`; call it
    /// after [`Proxy::bind`] to include the listeners' counters (calls shed).
    pub fn register_metrics(&self, registry: &mut prometheus_client::registry::Registry) {
        let listeners = self
            .listener_stats
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        self.metrics
            .register(registry, self.table.clone(), listeners);
    }

    /// Replaces routes, clusters and limits without dropping a connection: calls in
    /// flight finish on the table they started with; clusters whose configuration is
    /// unchanged keep their backend connections. Listeners cannot change this way
    /// (start a new proxy on the same port instead, see [`Proxy::bind`]).
    pub fn reload(&self, config: Config) -> Result<(), ConfigError> {
        let current = self
            .config
            .read()
            .map_err(|_| ConfigError {
                key: String::new(),
                message: "the configuration lock is poisoned".into(),
            })?
            .clone();
        if current.listeners != config.listeners {
            return Err(ConfigError {
                key: "listener".into(),
                message: "listeners cannot change on reload: start a new proxy on the new \
                          addresses (SO_REUSEPORT lets it share a port) and stop this one"
                    .into(),
            });
        }
        let old = self.table.read().map(|t| t.clone()).ok();
        let table = build(&config, old.as_deref(), &self.dns)?;
        if let Ok(mut t) = self.table.write() {
            *t = Arc::new(table);
        }
        if let Ok(mut c) = self.config.write() {
            *c = config;
        }
        tracing::info!("configuration reloaded");
        Ok(())
    }

    /// The OpenMetrics text of the proxy's metrics alone, as a scrape would read
    /// them (for an endpoint of your own, or a test).
    pub fn metrics_exposition(&self) -> String {
        let mut registry = prometheus_client::registry::Registry::default();
        self.register_metrics(&mut registry);
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut text, &registry);
        text
    }

    /// Each backend of `cluster` with its state, health and last error (empty before
    /// the cluster's first call, or if there is no such cluster).
    pub fn backends(&self, cluster: &str) -> Vec<SubchannelInfo> {
        let Ok(table) = self.table.read() else {
            return Vec::new();
        };
        table
            .routes
            .iter()
            .find(|r| &*r.cluster.name == cluster)
            .map(|r| r.cluster.backends())
            .unwrap_or_default()
    }

    /// Waits until `done` holds for the backends of `cluster` (e.g. all READY),
    /// connecting them as a call would. Bound it with a timeout.
    pub async fn wait_for_backends(
        &self,
        cluster: &str,
        done: impl Fn(&[SubchannelInfo]) -> bool,
    ) -> Result<(), steadfast::Error> {
        let cluster = self.table.read().ok().and_then(|table| {
            table
                .routes
                .iter()
                .find(|r| &*r.cluster.name == cluster)
                .map(|r| r.cluster.clone())
        });
        match cluster {
            Some(c) => c.client.wait_for_subchannels(&c.uri(None), done).await,
            None => Ok(()),
        }
    }

    /// Binds every listener (with `SO_REUSEPORT`, so a new proxy can take over the
    /// port while this one drains) and serves until [`Running::shutdown`].
    pub async fn bind(self: &Arc<Self>) -> std::io::Result<Running> {
        let config = self
            .config
            .read()
            .map_err(|_| std::io::Error::other("the configuration lock is poisoned"))?
            .clone();
        let grace =
            config::parse_duration(&config.limits.shutdown_grace).map_err(std::io::Error::other)?;
        let mut tasks = JoinSet::new();
        let mut handles = Vec::new();
        let mut addrs = Vec::new();
        for l in &config.listeners {
            let addr: SocketAddr = l.address.parse().map_err(|_| {
                std::io::Error::new(
                    std::io::ErrorKind::InvalidInput,
                    format!("listener address {:?}", l.address),
                )
            })?;
            let mut server = ServerConfig::default();
            server.proto.max_concurrent_streams = config.limits.max_concurrent_streams;
            // No stream time limit unless a route sets one: long, quiet gRPC streams
            // are normal.
            server.proto.stream_recv_timeout = None;
            server.proto.stream_send_timeout = None;
            server.max_connections = config.limits.max_connections;
            server.max_in_flight = config.limits.max_in_flight;
            server.shutdown_grace = grace;
            if let Some(tls) = &l.tls {
                server.tls = Some(
                    steadfast::tls::server_config_from_pem(&tls.cert, &tls.key)
                        .map_err(std::io::Error::other)?,
                );
            }
            let listener = steadfast::bind_reuseport(addr)?;
            addrs.push(listener.local_addr()?);
            let server = Server::new(server);
            handles.push(server.shutdown_handle());
            if let Ok(mut stats) = self.listener_stats.lock() {
                stats.push(server.stats_handle());
            }
            let service = self.service();
            tasks.spawn(async move { server.serve(listener, service).await });
        }
        tracing::info!(listeners = ?addrs, "proxy serving");
        Ok(Running {
            addrs,
            handles,
            tasks,
        })
    }
}

/// A proxy's listeners, serving.
#[derive(Debug)]
pub struct Running {
    addrs: Vec<SocketAddr>,
    handles: Vec<ShutdownHandle>,
    tasks: JoinSet<std::io::Result<()>>,
}

impl Running {
    /// The addresses bound, in the configuration's order (useful with port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Stops accepting and drains every client connection with the two-phase
    /// GOAWAY: calls in flight finish (within `limits.shutdown_grace`), new ones go
    /// elsewhere. Returns when every connection is closed.
    pub async fn shutdown(mut self) -> std::io::Result<()> {
        for h in &self.handles {
            h.graceful();
        }
        self.wait().await
    }

    /// Waits for the listeners to stop (after a shutdown from a handle).
    pub async fn wait(&mut self) -> std::io::Result<()> {
        while let Some(result) = self.tasks.join_next().await {
            result.map_err(std::io::Error::other)??;
        }
        Ok(())
    }

    /// Handles that start a graceful shutdown of each listener from anywhere.
    pub fn shutdown_handles(&self) -> Vec<ShutdownHandle> {
        self.handles.clone()
    }
}
